import CKernels
import XCTest
@testable import SwiftONNX

/// Quantization-family ops. Expected values were computed with numpy following the ONNX reference
/// (rint = round half to even, float32 division); integer results are exact, floats within 1e-6.
final class QuantizationTests: XCTestCase {
    private func run(_ op: String, _ inputs: [Tensor?], attrs: [String: Attribute] = [:], opset: Int = 21,
                     outputs: Int = 1) throws -> [Tensor] {
        let node = Node(name: "n", opType: op, domain: "",
                        inputs: inputs.enumerated().map { $0.element == nil ? "" : "in\($0.offset)" },
                        outputs: (0..<outputs).map { "y\($0)" }, attributes: attrs)
        let ctx = OpContext(node: node, opset: opset, compileSubgraph: { _ in throw OpError("no subgraphs") })
        guard let builder = OpRegistry.standard.builder(domain: "", op: op) else { throw OpError("\(op) is not registered") }
        return try builder(ctx).run(inputs, RunEnv(threads: 1))
    }

    let xq: [Float] = [-1.5, -0.25, 0, 0.3, 1.25, 2.5, 100, -100]

    /// The float <-> 8-bit conversion kernels (quantize, dequantize, their round trip) at every ISA level
    /// this CPU runs against the scalar reference, bit for bit: ties at every multiple of half a step,
    /// values just beside them, -0, NaN, infinities, huge and tiny values, both signednesses with zero
    /// points at both ends of the range, lengths with and without vector tails, the round trip in place.
    func testConversionKernelsMatchTheirReference() {
        /// Where two results first differ (the arrays are too long to print).
        func firstDifference<T: Equatable>(_ a: [T], _ b: [T]) -> String {
            guard let i = zip(a, b).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset else { return "none" }
            return "index \(i): \(a[i]) vs \(b[i])"
        }
        var rng = SplitMix64(seed: 2026)
        for scale: Float in [0.5, 0.0371, 3e-5, 17, 0, -0.25] {
            var xs: [Float] = (-600...600).map { Float($0) * 0.5 * scale }   // ties (scale 0: zeros)
            xs += xs.map { $0.nextUp } + xs.map { $0.nextDown }
            xs += [-0.0, .nan, -.nan, .infinity, -.infinity, 1e30, -1e30, .leastNonzeroMagnitude, -Float.leastNormalMagnitude]
            xs += (0..<200).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
            for n in [xs.count, 1, 7, 8, 9, 23] {
                let x = Array(xs.prefix(n))
                for (signed, zps) in [(Int32(0), [Int32(0), 131, 255]), (1, [-128, -3, 0, 127])] {
                    let (lo, hi): (Int32, Int32) = signed == 1 ? (-128, 127) : (0, 255)
                    for zp in zps {
                        var want = [UInt8](repeating: 0, count: n), got = want
                        so_q8_quantize(x, n, scale, zp, lo, hi, signed, &want, 0)
                        so_q8_quantize(x, n, scale, zp, lo, hi, signed, &got, so_isa_supported())
                        XCTAssertTrue(got == want, "quantize scale \(scale) zp \(zp) n \(n): \(firstDifference(got, want))")
                        var wantF = [Float](repeating: 0, count: n), gotF = wantF
                        so_q8_dequantize(want, n, scale, zp, signed, &wantF, 0)
                        so_q8_dequantize(want, n, scale, zp, signed, &gotF, so_isa_supported())
                        XCTAssertTrue(gotF.map(\.bitPattern) == wantF.map(\.bitPattern),
                                      "dequantize scale \(scale) zp \(zp) n \(n): \(firstDifference(gotF.map(\.bitPattern), wantF.map(\.bitPattern)))")
                        // The round trip equals quantize then dequantize, in place too.
                        var rt = x
                        rt.withUnsafeMutableBufferPointer { p in
                            so_q8_roundtrip(p.baseAddress, n, scale, zp, lo, hi, p.baseAddress, so_isa_supported())
                        }
                        var rt0 = [Float](repeating: 0, count: n)
                        so_q8_roundtrip(x, n, scale, zp, lo, hi, &rt0, 0)
                        XCTAssertTrue(rt.map(\.bitPattern) == wantF.map(\.bitPattern),
                                      "round trip scale \(scale) zp \(zp) n \(n): \(firstDifference(rt.map(\.bitPattern), wantF.map(\.bitPattern)))")
                        XCTAssertTrue(rt0.map(\.bitPattern) == wantF.map(\.bitPattern),
                                      "scalar round trip scale \(scale) zp \(zp) n \(n): \(firstDifference(rt0.map(\.bitPattern), wantF.map(\.bitPattern)))")
                    }
                }
            }
        }
    }

    func testQuantizePerTensorRoundsHalfToEven() throws {
        let x = try Tensor(shape: [8], scalars: xq)
        let u = try run("QuantizeLinear", [x, Tensor(scalar: Float(0.5)), Tensor(scalar: UInt8(10))])[0]
        XCTAssertEqual(u.dtype, .uint8)
        XCTAssertEqual(try u.scalars(as: UInt8.self), [7, 10, 10, 11, 12, 15, 210, 0])
        let s = try run("QuantizeLinear", [x, Tensor(scalar: Float(0.5)), Tensor(scalar: Int8(-3))])[0]
        XCTAssertEqual(try s.scalars(as: Int8.self), [-6, -3, -3, -2, -1, 2, 127, -128])
        // No zero point: uint8, or output_dtype from opset 21.
        XCTAssertEqual(try run("QuantizeLinear", [x, Tensor(scalar: Float(0.5))])[0].dtype, .uint8)
        let i16 = try run("QuantizeLinear", [x, Tensor(scalar: Float(0.5))], attrs: ["output_dtype": .int(Int(DType.int16.rawValue))])[0]
        XCTAssertEqual(try i16.scalars(as: Int16.self), [-3, 0, 0, 1, 2, 5, 200, -200])
    }

    /// Found by the fuzzer (Fuzz/regressions/model/quantize-zero-scale.onnx): a zero scale makes
    /// x / 0 = NaN for x = 0, which trapped converting to an integer. Infinities saturate, NaN gives 0
    /// clamped to the range, on the float32 fast path and on the others (float16 x, int32 x).
    func testQuantizeZeroScaleSaturatesWithoutTrapping() throws {
        let x = try Tensor(shape: [3], scalars: [Float]([0, 2, -2]))
        let u = try run("QuantizeLinear", [x, Tensor(scalar: Float(0)), Tensor(scalar: UInt8(10))])[0]
        XCTAssertEqual(try u.scalars(as: UInt8.self), [0, 255, 0])
        let s = try run("QuantizeLinear", [x, Tensor(scalar: Float(0)), Tensor(scalar: Int8(0))])[0]
        XCTAssertEqual(try s.scalars(as: Int8.self), [0, 127, -128])
        let xi = try Tensor(shape: [3], scalars: [Int32]([0, 5, -5]))
        let si = try run("QuantizeLinear", [xi, Tensor(scalar: Float(0)), Tensor(scalar: Int8(0))])[0]
        XCTAssertEqual(try si.scalars(as: Int8.self), [0, 127, -128])
        let xh = try Tensor(shape: [3], scalars: [Float16]([0, 2, -2]))
        let sh = try run("QuantizeLinear", [xh, Tensor(scalar: Float16(0)), Tensor(scalar: Int8(0))])[0]
        XCTAssertEqual(try sh.scalars(as: Int8.self), [0, 127, -128])
    }

    func testQuantizeBlockedAndInt4() throws {
        let x = try Tensor(shape: [2, 4], scalars: [Float]([1, 2, 3, 4, -1, -2, -3, -4]))
        let s = try Tensor(shape: [2, 2], scalars: [Float]([0.5, 1, 2, 0.25]))
        let z = try Tensor(shape: [2, 2], scalars: [Int8](repeating: 0, count: 4))
        let y = try run("QuantizeLinear", [x, s, z], attrs: ["axis": .int(1), "block_size": .int(2)])[0]
        XCTAssertEqual(try y.scalars(as: Int8.self), [2, 4, 3, 4, 0, -1, -12, -16])
        // int4 saturates to [-8, 7], stored one element per byte.
        let q4 = try run("QuantizeLinear", [x, Tensor(scalar: Float(0.25)),
                                            try Tensor(dtype: .int4, shape: [], bytes: [0])])[0]
        XCTAssertEqual(q4.dtype, .int4)
        XCTAssertEqual(q4.bytes().map { Int8(bitPattern: $0) }, [4, 7, 7, 7, -4, -8, -8, -8])
        // Bad blocked scale shape.
        XCTAssertThrowsError(try run("QuantizeLinear", [x, Tensor(shape: [2, 3], scalars: [Float](repeating: 1, count: 6))],
                                     attrs: ["axis": .int(1), "block_size": .int(2)]))
    }

    func testDequantizePerAxis() throws {
        let x = try Tensor(shape: [1, 2, 3], scalars: [Int8]([0, 1, 2, 3, 4, 5]))
        let y = try run("DequantizeLinear", [x, Tensor(shape: [2], scalars: [Float]([0.5, 2])),
                                             try Tensor(shape: [2], scalars: [Int8]([1, -1]))], attrs: ["axis": .int(1)])[0]
        XCTAssertEqual(try y.scalars(as: Float.self), [-0.5, 0, 0.5, 8, 10, 12])
        XCTAssertThrowsError(try run("DequantizeLinear", [x, Tensor(shape: [3], scalars: [Float]([1, 1, 1]))], attrs: ["axis": .int(1)]))
        XCTAssertThrowsError(try run("DequantizeLinear", [x, Tensor(scalar: Float(1)), Tensor(scalar: UInt8(0))]))
    }

    func testFloat8RoundTrip() {
        let f = SmallFloatFormat.e4m3fn
        XCTAssertEqual(f.maxFinite, 448)
        for code in 0..<256 where code & 0x7F != 0x7F {
            let v = f.decode(UInt8(code))
            XCTAssertEqual(f.encode(v, saturate: true), code == 0x80 ? 0x80 : UInt8(code), "code \(code) value \(v)")
        }
        XCTAssertEqual(f.encode(1000, saturate: true), 0x7E)
        XCTAssertEqual(SmallFloatFormat.e5m2.maxFinite, 57344)
        XCTAssertEqual(SmallFloatFormat.e5m2.encode(1e6, saturate: false), 0x7C)  // +inf
    }

    func testDynamicQuantizeLinear() throws {
        let x = try Tensor(shape: [6], scalars: [Float]([0, 2, -3, 1000, -254, -1.5]))
        let r = try run("DynamicQuantizeLinear", [x], outputs: 3)
        XCTAssertEqual(try r[0].scalars(as: UInt8.self), [52, 52, 51, 255, 0, 52])
        XCTAssertEqual(try r[1].scalars(as: Float.self)[0], 4.917646884918213, accuracy: 1e-6)
        XCTAssertEqual(try r[2].scalars(as: UInt8.self), [52])
    }

    func testMatMulInteger() throws {
        let a = try Tensor(shape: [4, 3], scalars: [UInt8]([11, 7, 3, 10, 6, 2, 9, 5, 1, 8, 4, 0]))
        let b = try Tensor(shape: [3, 2], scalars: [UInt8]([1, 4, 2, 5, 3, 6]))
        let y = try run("MatMulInteger", [a, b, Tensor(scalar: UInt8(12)), Tensor(scalar: UInt8(0))])[0]
        XCTAssertEqual(y.dtype, .int32)
        XCTAssertEqual(try y.scalars(as: Int32.self), [-38, -83, -44, -98, -50, -113, -56, -128])
        let yr = try run("MatMulInteger", [a, b, Tensor(shape: [4], scalars: [UInt8]([1, 2, 3, 4])),
                                           try Tensor(shape: [2], scalars: [UInt8]([1, 2]))])[0]
        XCTAssertEqual(try yr.scalars(as: Int32.self), [10, 46, 4, 28, -2, 10, -8, -8])
        XCTAssertThrowsError(try run("MatMulInteger", [a, a]))
    }

    func testQLinearMatMul() throws {
        let a = try Tensor(shape: [2, 4], scalars: [UInt8]([208, 236, 0, 238, 3, 214, 255, 29]))
        let b = try Tensor(shape: [4, 3], scalars: [UInt8]([152, 51, 244, 60, 26, 255, 0, 127, 246, 127, 254, 247]))
        let y = try run("QLinearMatMul", [a, Tensor(scalar: Float(0.0066)), Tensor(scalar: UInt8(113)),
                                          b, Tensor(scalar: Float(0.00705)), Tensor(scalar: UInt8(114)),
                                          Tensor(scalar: Float(0.0107)), Tensor(scalar: UInt8(118))], opset: 10)[0]
        XCTAssertEqual(try y.scalars(as: UInt8.self), [168, 115, 255, 1, 66, 151])
    }

    func testConvIntegerWithPadding() throws {
        let x = try Tensor(shape: [1, 1, 3, 3], scalars: (2...10).map { UInt8($0) })
        let w = try Tensor(shape: [1, 1, 2, 2], scalars: [UInt8](repeating: 1, count: 4))
        let y = try run("ConvInteger", [x, w, Tensor(scalar: UInt8(1))], attrs: ["pads": .ints([1, 1, 1, 1])], opset: 10)[0]
        XCTAssertEqual(y.shape, [1, 1, 4, 4])
        XCTAssertEqual(try y.scalars(as: Int32.self), [1, 3, 5, 3, 5, 12, 16, 9, 11, 24, 28, 15, 7, 15, 17, 9])
        // QLinearConv with unit scales and a bias reproduces the same sums (+ bias), saturated to uint8.
        let q = try run("QLinearConv", [x, Tensor(scalar: Float(1)), Tensor(scalar: UInt8(1)), w, Tensor(scalar: Float(1)),
                                        Tensor(scalar: UInt8(0)), Tensor(scalar: Float(2)), Tensor(scalar: UInt8(0)),
                                        try Tensor(shape: [1], scalars: [Int32(1)])],
                        attrs: ["pads": .ints([1, 1, 1, 1])], opset: 10)[0]
        // (sum + 1) / 2 rounded half to even.
        XCTAssertEqual(try q.scalars(as: UInt8.self), [1, 2, 3, 2, 3, 6, 8, 5, 6, 12, 14, 8, 4, 8, 9, 5])
        XCTAssertThrowsError(try run("ConvInteger", [x, Tensor(shape: [1, 2, 2, 2], scalars: [UInt8](repeating: 1, count: 8))]))
    }

    func testDropoutAndNMS() throws {
        let x = try Tensor(shape: [2, 2], scalars: [Float]([1, 2, 3, 4]))
        let r = try run("Dropout", [x], opset: 13, outputs: 2)
        XCTAssertEqual(try r[0].scalars(as: Float.self), [1, 2, 3, 4])
        XCTAssertEqual(try r[1].scalars(as: Bool.self), [true, true, true, true])
        XCTAssertThrowsError(try run("Dropout", [x, Tensor(scalar: Float(0.5)), Tensor(scalar: true)], opset: 13))
        // Two overlapping boxes and one apart; IoU of the first two is 0.81 > 0.5.
        let boxes = try Tensor(shape: [1, 3, 4], scalars: [Float]([0, 0, 1, 1, 0, 0.1, 1, 1.1, 0, 5, 1, 6]))
        let scores = try Tensor(shape: [1, 1, 3], scalars: [Float]([0.9, 0.95, 0.3]))
        let sel = try run("NonMaxSuppression", [boxes, scores, Tensor(shape: [1], scalars: [Int64(3)]),
                                                try Tensor(shape: [1], scalars: [Float(0.5)])], opset: 11)[0]
        XCTAssertEqual(sel.shape, [2, 3])
        XCTAssertEqual(try sel.scalars(as: Int64.self), [0, 0, 1, 0, 0, 2])
    }
}
