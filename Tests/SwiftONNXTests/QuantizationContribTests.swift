import CKernels
import XCTest
@testable import SwiftONNX

/// The com.microsoft QOperator ops (QLinearAdd, QLinearMul, QLinearSigmoid, QLinearLeakyRelu,
/// QLinearSoftmax, QLinearGlobalAveragePool, QLinearAveragePool, QLinearConcat, QGemm). The
/// expected outputs in the generated block were computed with onnxruntime 1.32 (CPU provider) by
/// Resources/make_quantization_contrib.py, which rewrites that block; every case must match
/// ORT's bytes (Softmax is allowed one step, see `check`).
final class QuantizationContribTests: XCTestCase {
    /// The QLinearAdd / QLinearMul row kernel: every ISA level this CPU runs against the scalar
    /// reference, byte for byte: both ops, both signednesses, element and broadcast steps, tails,
    /// saturating parameters.
    func testBinaryRowKernelMatchesItsReference() {
        var rng = SplitMix64(seed: 77)
        for n in [1, 7, 8, 9, 31, 100] {
            let a = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next() >> 17) }
            let b = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next() >> 19) }
            for op: Int32 in [0, 1] {
                for signed: Int32 in [0, 1] {
                    let (lo, hi): (Float, Float) = signed == 1 ? (-128, 127) : (0, 255)
                    for (aStep, bStep) in [(1, 1), (1, 0), (0, 1)] {
                        for (p0, p1, p2, p3) in [(Float(0.37), Float(0.81), Float(12.5), Float(3)), (0.013, 100, -7, 128), (5.5, 0.5, 0.25, -2)] {
                            var want = [UInt8](repeating: 0, count: n), got = want
                            so_q8_binary_row(op, a, aStep, b, bStep, signed, p0, p1, p2, p3, lo, hi, &want, n, 0)
                            so_q8_binary_row(op, a, aStep, b, bStep, signed, p0, p1, p2, p3, lo, hi, &got, n, so_isa_supported())
                            XCTAssertEqual(got, want, "n \(n) op \(op) signed \(signed) steps \(aStep),\(bStep) params \(p0)")
                        }
                    }
                }
            }
        }
    }

    /// DequantizeLinear -> Add / Mul -> QuantizeLinear becomes QLinearAdd / QLinearMul (LowerQDQBinary):
    /// a chain of both (a constant operand, a broadcast one) against the unoptimized ops, both 8-bit
    /// types, random bytes and bytes making ties. The lowered ops compute from ratios of scales, so a
    /// value next to a rounding boundary may move one step: at most one step anywhere, and on at most
    /// 1% of the values. An Add whose float result is also read elsewhere is not lowered.
    func testQDQAddAndMulBecomeQLinearOps() throws {
        let shape = [1, 3, 20, 30], n = 1800
        for signed in [false, true] {
            let dt: DType = signed ? .int8 : .uint8
            func z(_ v: Int) -> Tensor { signed ? Tensor(scalar: Int8(v - 128)) : Tensor(scalar: UInt8(v)) }
            func bytes(_ f: (Int) -> Int, _ shape: [Int]) throws -> Tensor {
                let c = shape.reduce(1, *)
                return signed ? try Tensor(shape: shape, scalars: (0..<c).map { Int8(truncatingIfNeeded: f($0) - 128) })
                              : try Tensor(shape: shape, scalars: (0..<c).map { UInt8(truncatingIfNeeded: f($0)) })
            }
            for extraReader in [false, true] {
                let inits: [String: Tensor] = [
                    "sa": Tensor(scalar: Float(0.02)), "za": z(128), "sb": Tensor(scalar: Float(0.04)), "zb": z(100),
                    "sy": Tensor(scalar: Float(0.03)), "zy": z(120), "sc": Tensor(scalar: Float(0.01)), "zc": z(10),
                    "C": try bytes({ 7 * $0 + 3 }, [3, 1, 1]), "sm": Tensor(scalar: Float(0.05)), "zm": z(128),
                ]
                func node(_ op: String, _ ins: [String], _ out: String) -> Node {
                    Node(name: out, opType: op, domain: "", inputs: ins, outputs: [out], attributes: [:])
                }
                var nodes = [
                    node("DequantizeLinear", ["A", "sa", "za"], "a"), node("DequantizeLinear", ["B", "sb", "zb"], "b"),
                    node("Add", ["a", "b"], "s"), node("QuantizeLinear", ["s", "sy", "zy"], "Y1"),
                    node("DequantizeLinear", ["Y1", "sy", "zy"], "y1"), node("DequantizeLinear", ["C", "sc", "zc"], "c"),
                    node("Mul", ["y1", "c"], "m"), node("QuantizeLinear", ["m", "sm", "zm"], "Y2"),
                ]
                var outs = [ValueInfo(name: "Y1", type: dt, shape: nil), ValueInfo(name: "Y2", type: dt, shape: nil)]
                if extraReader {
                    nodes.append(node("Relu", ["s"], "R"))
                    outs.append(ValueInfo(name: "R", type: .float32, shape: nil))
                }
                let g = Graph(name: "g", nodes: nodes,
                              inputs: [ValueInfo(name: "A", type: dt, shape: shape.map { .known($0) }),
                                       ValueInfo(name: "B", type: dt, shape: shape.map { .known($0) })],
                              outputs: outs, initializers: inits, valueInfo: [:])
                let model = Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                                  opsets: ["": 21], graph: g, keepAlive: [])
                var rng = SplitMix64(seed: 5)
                let randomA = (0..<n).map { _ in Int(rng.next() % 256) }, randomB = (0..<n).map { _ in Int(rng.next() % 256) }
                // Ties: a·0.02/0.03 + b·0.04/0.03 lands on halves for many pairs of small multiples.
                for feeds in [["A": try bytes({ randomA[$0] }, shape), "B": try bytes({ randomB[$0] }, shape)],
                              ["A": try bytes({ 128 + ($0 % 7) * 3 }, shape), "B": try bytes({ 100 + ($0 % 5) * 3 }, shape)]] {
                    let plain = try InferenceSession(model: model, options: .init(optimize: false))
                    let fast = try InferenceSession(model: model, options: .init(optimize: true))
                    let hist = fast.metadata.opHistogram
                    XCTAssertEqual(hist["com.microsoft::QLinearAdd"], extraReader ? nil : 1, "\(hist)")
                    XCTAssertEqual(hist["com.microsoft::QLinearMul"], 1, "\(hist)")
                    let want = try plain.run(feeds), got = try fast.run(feeds)
                    for name in ["Y1", "Y2"] {
                        let w = try XCTUnwrap(want[name]), h = try XCTUnwrap(got[name])
                        let wv = signed ? try w.scalars(as: Int8.self).map(Int.init) : try w.scalars(as: UInt8.self).map(Int.init)
                        let hv = signed ? try h.scalars(as: Int8.self).map(Int.init) : try h.scalars(as: UInt8.self).map(Int.init)
                        let diffs = zip(wv, hv).map { abs($0 - $1) }
                        XCTAssertLessThanOrEqual(diffs.max() ?? 0, 1, "\(name) signed \(signed)")
                        XCTAssertLessThanOrEqual(diffs.filter { $0 > 0 }.count, n / 100, "\(name) signed \(signed)")
                    }
                    if extraReader {
                        XCTAssertEqual(try XCTUnwrap(want["R"]).bytes(), try XCTUnwrap(got["R"]).bytes())
                    }
                }
            }
        }
    }

    private func run(_ op: String, _ inputs: [Tensor?], _ attrs: [String: Attribute] = [:]) throws -> Tensor {
        let node = Node(name: "n", opType: op, domain: "com.microsoft",
                        inputs: inputs.enumerated().map { $0.element == nil ? "" : "in\($0.offset)" },
                        outputs: ["y"], attributes: attrs)
        let ctx = OpContext(node: node, opset: 1, compileSubgraph: { _ in throw OpError("no subgraphs") })
        guard let builder = OpRegistry.standard.builder(domain: "com.microsoft", op: op) else {
            throw OpError("com.microsoft \(op) is not registered")
        }
        return try builder(ctx).run(inputs, RunEnv(threads: 1))[0]
    }

    private func u8(_ shape: [Int], _ v: [UInt8]) -> Tensor { Tensor(validShape: shape, scalars: v) }
    private func i8(_ shape: [Int], _ v: [Int8]) -> Tensor { Tensor(validShape: shape, scalars: v) }
    private func i32(_ shape: [Int], _ v: [Int32]) -> Tensor { Tensor(validShape: shape, scalars: v) }
    private func f32(_ shape: [Int], _ v: [Float]) -> Tensor { Tensor(validShape: shape, scalars: v) }

    /// Runs `op` and compares with ORT's output: same type and shape; 8-bit values equal (QLinearSoftmax:
    /// within one step, ORT's table of exponentials sums in its own order), floats within 1e-6 relative.
    private func check(_ op: String, _ inputs: [Tensor?], _ attrs: [String: Attribute], expect: Tensor,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let y = try run(op, inputs, attrs)
        XCTAssertEqual(y.dtype, expect.dtype, "\(op) type", file: file, line: line)
        XCTAssertEqual(y.shape, expect.shape, "\(op) shape", file: file, line: line)
        let got = try y.doubles(), want = try expect.doubles()
        guard got.count == want.count else { return }
        let tol = expect.dtype == .float32 ? 1e-6 * (want.map(abs).max() ?? 0) : (op == "QLinearSoftmax" ? 1 : 0)
        for (i, (g, w)) in zip(got, want).enumerated() where abs(g - w) > tol {
            XCTFail("\(op) element \(i): got \(g), onnxruntime \(w)", file: file, line: line)
        }
    }

    func testAgainstOnnxRuntime() throws {
        // BEGIN GENERATED by Resources/make_quantization_contrib.py
        // Add uint8, same shape
        try check("QLinearAdd", [u8([2, 3], [253, 81, 215, 101, 121, 113]), f32([], [0.05]), u8([], [128]), u8([2, 3], [55, 69, 44, 247, 86, 49]), f32([], [0.03]), u8([], [100]), f32([], [0.07]), u8([], [120])],
                  [:], expect: u8([2, 3], [190, 73, 158, 164, 109, 87]))
        // Add int8, B broadcast along rows ([2, 3, 4] + [3, 1])
        try check("QLinearAdd", [i8([2, 3, 4], [-62, -78, 28, -114, 17, 21, 51, 57, -76, 30, -108, -92, 70, -59, -55, 23, -25, 35, 104, -38, 29, 62, -15, -6]), f32([], [0.02]), i8([], [-5]), i8([3, 1], [-30, -55, 55]), f32([], [0.04]), i8([], [7]), f32([], [0.05]), i8([], [3])],
                  [:], expect: i8([2, 3, 4], [-49, -56, -13, -70, -38, -36, -24, -22, 13, 55, 0, 7, 3, -48, -47, -15, -55, -31, -3, -60, 55, 68, 37, 41]))
        // Add uint8, scalar first operand broadcast ([1] + [2, 5]), zero points 0
        try check("QLinearAdd", [u8([1], [127]), f32([], [0.1]), u8([], [0]), u8([2, 5], [89, 105, 133, 160, 13, 10, 144, 139, 73, 144]), f32([], [0.02]), u8([], [0]), f32([], [0.06]), u8([], [0])],
                  [:], expect: u8([2, 5], [241, 247, 255, 255, 216, 215, 255, 255, 236, 255]))
        // Add int8 saturating (small C_scale)
        try check("QLinearAdd", [i8([8], [-128, -100, -1, 0, 1, 100, 127, 50]), f32([], [0.1]), i8([], [0]), i8([8], [-128, -50, 0, 0, 3, 100, 127, -50]), f32([], [0.1]), i8([], [0]), f32([], [0.01]), i8([], [0])],
                  [:], expect: i8([8], [-128, -128, -10, 0, 40, 127, 127, 0]))
        // Mul uint8, both broadcast ([2, 1, 4] * [3, 1])
        try check("QLinearMul", [u8([2, 1, 4], [9, 123, 145, 39, 2, 23, 53, 191]), f32([], [0.02]), u8([], [120]), u8([3, 1], [83, 196, 16]), f32([], [0.03]), u8([], [130]), f32([], [0.01]), u8([], [128])],
                  [:], expect: u8([2, 3, 4], [255, 120, 58, 255, 0, 140, 227, 0, 255, 107, 0, 255, 255, 255, 255, 0, 0, 0, 0, 255, 255, 255, 255, 0]))
        // Mul int8 saturating, same shape
        try check("QLinearMul", [i8([8], [-128, -64, -1, 0, 1, 64, 127, 90]), f32([], [0.05]), i8([], [-2]), i8([8], [127, 100, -128, 5, 2, -100, 127, 90]), f32([], [0.05]), i8([], [1]), f32([], [0.02]), i8([], [-10])],
                  [:], expect: i8([8], [-128, -128, -26, -9, -10, -128, 127, 127]))
        // Sigmoid uint8
        try check("QLinearSigmoid", [u8([3, 5], [163, 215, 42, 145, 66, 52, 61, 106, 88, 94, 60, 255, 117, 210, 52]), f32([], [0.05]), u8([], [128]), f32([], [0.00390625]), u8([], [0])],
                  [:], expect: u8([3, 5], [218, 253, 3, 179, 11, 6, 9, 64, 31, 40, 8, 255, 94, 252, 6]))
        // Sigmoid int8, output zero point -128
        try check("QLinearSigmoid", [i8([2, 6], [-113, 31, 65, 24, 64, 18, -16, -15, -21, -73, -106, -80]), f32([], [0.04]), i8([], [3]), f32([], [0.00390625]), i8([], [-128])],
                  [:], expect: i8([2, 6], [-126, 65, 108, 51, 107, 37, -46, -44, -57, -116, -125, -119]))
        // LeakyRelu uint8, alpha 0.1
        try check("QLinearLeakyRelu", [u8([2, 6], [102, 31, 102, 185, 91, 183, 202, 210, 207, 76, 81, 63]), f32([], [0.05]), u8([], [128]), f32([], [0.04]), u8([], [20])],
                  ["alpha": .float(0.1)], expect: u8([2, 6], [17, 8, 17, 91, 15, 89, 112, 122, 119, 13, 14, 12]))
        // LeakyRelu int8, default alpha, saturating
        try check("QLinearLeakyRelu", [i8([12], [-29, 69, 91, 27, 66, -42, -127, -56, -111, -19, -24, -74]), f32([], [0.1]), i8([], [0]), f32([], [0.02]), i8([], [-100])],
                  [:], expect: i8([12], [-101, 127, 127, 35, 127, -102, -106, -103, -106, -101, -101, -104]))
        // Softmax uint8, last axis, opset 13
        try check("QLinearSoftmax", [u8([2, 5], [145, 152, 203, 207, 132, 220, 4, 100, 89, 193]), f32([], [0.1]), u8([], [128]), f32([], [0.00390625]), u8([], [0])],
                  ["axis": .int(-1), "opset": .int(13)], expect: u8([2, 5], [0, 1, 102, 153, 0, 240, 0, 0, 0, 16]))
        // Softmax int8, axis 1 of [2, 3, 2], opset 13
        try check("QLinearSoftmax", [i8([2, 3, 2], [-58, -43, -99, 51, -66, 111, 56, -68, 69, -1, 64, 48]), f32([], [0.08]), i8([], [0]), f32([], [0.00390625]), i8([], [-128])],
                  ["axis": .int(1), "opset": .int(13)], expect: i8([2, 3, 2], [36, -128, -122, -126, -42, 126, -83, -128, -2, -123, -43, 123]))
        // Softmax uint8, opset 12 (coerced to 2-D at axis 1)
        try check("QLinearSoftmax", [u8([2, 2, 3], [238, 86, 43, 122, 17, 205, 31, 154, 239, 148, 145, 49]), f32([], [0.05]), u8([], [100]), f32([], [0.00390625]), u8([], [0])],
                  ["axis": .int(1), "opset": .int(12)], expect: u8([2, 2, 3], [214, 0, 0, 1, 0, 41, 0, 4, 248, 3, 2, 0]))
        // GlobalAveragePool uint8 NCHW
        try check("QLinearGlobalAveragePool", [u8([2, 3, 2, 3], [128, 67, 132, 78, 63, 193, 157, 199, 23, 254, 204, 119, 126, 45, 169, 247, 137, 250, 12, 105, 22, 33, 175, 207, 75, 222, 128, 238, 63, 203, 103, 77, 145, 214, 139, 220]), f32([], [0.05]), u8([], [128]), f32([], [0.03]), u8([], [120])],
                  ["channels_last": .int(0)], expect: u8([2, 3, 1, 1], [90, 172, 177, 61, 165, 156]))
        // GlobalAveragePool int8 channels_last
        try check("QLinearGlobalAveragePool", [i8([2, 2, 3, 4], [-123, 109, 123, -72, -42, 51, 17, -73, -75, -103, -100, 91, -46, 42, 38, -64, 46, 42, 84, -114, -21, 23, 63, 35, 104, 27, -104, -18, -115, 12, -36, -26, -15, 42, -36, -18, 15, -40, 64, -6, 12, 46, 86, -69, 46, -77, -52, -125]), f32([], [0.05]), i8([], [-3]), f32([], [0.01]), i8([], [5])],
                  ["channels_last": .int(1)], expect: i8([2, 1, 1, 4], [-128, 127, 127, -128, 59, 28, -45, -128]))
        // GlobalAveragePool uint8, 2 elements per channel, same scale (halves: ties, odd y_zero_point)
        try check("QLinearGlobalAveragePool", [u8([1, 8, 2, 1], [138, 56, 55, 29, 104, 77, 81, 124, 131, 9, 188, 65, 145, 40, 30, 229]), f32([], [0.05]), u8([], [100]), f32([], [0.05]), u8([], [101])],
                  ["channels_last": .int(0)], expect: u8([1, 8, 1, 1], [98, 43, 91, 103, 71, 127, 93, 131]))
        // AveragePool uint8 NCHW, 2x2 stride 2, end pads, pads not counted
        try check("QLinearAveragePool", [u8([1, 2, 3, 3], [80, 212, 112, 155, 182, 169, 44, 103, 106, 166, 200, 245, 200, 85, 28, 114, 51, 125]), f32([], [0.05]), u8([], [128]), f32([], [0.04]), u8([], [110])],
                  ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2]), "pads": .ints([0, 0, 1, 1])], expect: u8([1, 2, 2, 2], [147, 126, 42, 82, 153, 121, 53, 106]))
        // AveragePool int8 channels_last, 2x2 stride 1, pads counted
        try check("QLinearAveragePool", [i8([1, 3, 3, 2], [98, -40, 21, -116, -32, -35, 117, 44, 3, 26, 109, 41, 25, 53, -1, 119, -31, -83]), f32([], [0.05]), i8([], [4]), f32([], [0.05]), i8([], [-4])],
                  ["kernel_shape": .ints([2, 2]), "pads": .ints([1, 1, 0, 0]), "count_include_pad": .int(1), "channels_last": .int(1)], expect: i8([1, 3, 3, 2], [20, -15, 24, -45, -9, -44, 48, -5, 52, -30, 17, -29, 30, 18, 28, 52, 12, 18]))
        // AveragePool uint8, ceil_mode window over the edge, pads counted (ORT divides by the whole kernel)
        try check("QLinearAveragePool", [u8([1, 1, 5, 5], [26, 241, 146, 85, 205, 147, 172, 239, 68, 98, 105, 64, 128, 185, 26, 158, 193, 113, 196, 80, 79, 254, 72, 166, 7]), f32([], [0.05]), u8([], [128]), f32([], [0.05]), u8([], [128])],
                  ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2]), "ceil_mode": .int(1), "count_include_pad": .int(1)], expect: u8([1, 1, 3, 3], [146, 134, 140, 130, 156, 90, 147, 124, 98]))
        // AveragePool int8, 1-D, same scale in and out (halves: ties)
        try check("QLinearAveragePool", [i8([1, 2, 9], [83, -91, 121, 118, -6, 22, -38, -128, 22, -88, 100, 74, -41, 26, 101, 90, -41, 112]), f32([], [0.05]), i8([], [3]), f32([], [0.05]), i8([], [3])],
                  ["kernel_shape": .ints([2]), "strides": .ints([1])], expect: i8([1, 2, 8], [-4, 15, 119, 56, 8, -8, -83, -53, 6, 87, 16, -8, 64, 96, 24, 36]))
        // Concat uint8 axis 1, second input quantized like Y (copied)
        try check("QLinearConcat", [f32([], [0.05]), u8([], [128]), u8([2, 2, 2], [87, 227, 172, 227, 193, 56, 234, 46]), f32([], [0.1]), u8([], [100]), u8([2, 1, 2], [24, 62, 200, 236]), f32([], [0.05]), u8([], [128]), u8([2, 3, 2], [51, 233, 212, 77, 113, 216, 167, 100, 106, 196, 72, 108]), f32([], [0.02]), u8([], [0])],
                  ["axis": .int(1)], expect: u8([2, 6, 2], [102, 255, 255, 255, 24, 62, 148, 221, 213, 159, 173, 214, 255, 40, 255, 20, 200, 236, 195, 168, 170, 206, 157, 171]))
        // Concat int8 axis -1, saturating requantization
        try check("QLinearConcat", [f32([], [0.01]), i8([], [0]), i8([2, 3], [-105, 22, -47, 59, -78, -104]), f32([], [0.05]), i8([], [10]), i8([2, 2], [-34, 81, 47, -110]), f32([], [0.005]), i8([], [-3])],
                  ["axis": .int(-1)], expect: i8([2, 5], [-128, 60, -128, -16, 42, 127, -128, -128, 25, -53]))
        // Concat int8, input scale half of Y's (ties), odd Y zero point
        try check("QLinearConcat", [f32([], [0.2]), i8([], [-7]), i8([1, 10], [37, -97, 6, -6, 17, -75, 16, 0, 125, 1]), f32([], [0.1]), i8([], [4])],
                  ["axis": .int(0)], expect: i8([1, 10], [9, -57, -6, -12, 0, -47, -1, -9, 53, -9]))
        // QGemm u8u8, per-column b_scale and b_zero_point, int32 C, quantized output
        try check("QGemm", [u8([3, 5], [18, 133, 48, 130, 230, 15, 168, 70, 235, 141, 20, 59, 219, 146, 18]), f32([], [0.02]), u8([], [120]), u8([5, 4], [140, 102, 31, 226, 94, 31, 226, 109, 41, 246, 71, 179, 109, 225, 204, 181, 22, 108, 24, 149]), f32([4], [0.023525713, 0.012677168, 0.027528334, 0.015010087]), u8([4], [143, 145, 138, 143]), i32([4], [-307, 311, 389, -418]), f32([], [0.1]), u8([], [128])],
                  [:], expect: u8([3, 4], [95, 109, 158, 95, 111, 135, 255, 104, 148, 198, 196, 120]))
        // QGemm s8s8, transA and transB, alpha 0.5, float output
        try check("QGemm", [i8([5, 3], [-125, 49, 113, -41, -47, -88, 114, -119, -123, -125, 52, -13, 93, 2, 27]), f32([], [0.02]), i8([], [3]), i8([4, 5], [-14, -60, -103, -54, 29, -100, -36, -111, 67, 96, -110, -3, -62, 122, 63, 89, -77, -12, 83, -32]), f32([], [0.01]), i8([], [0]), nil],
                  ["alpha": .float(0.5), "transA": .int(1), "transB": .int(1)], expect: f32([3, 4], [0.2521, 0.2127, -0.2616, -2.284, 1.2247, 1.3929, 0.8569, 1.3507, 1.8457999, 0.74939996, -0.4455, 1.6213]))
        // QGemm u8u8, multiplier 0.5 (ties), odd y_zero_point
        try check("QGemm", [u8([2, 1], [236, 62]), f32([], [0.5]), u8([], [128]), u8([1, 6], [0, 3, 0, 3, 1, 1]), f32([], [1.0]), u8([], [0]), nil, f32([], [1.0]), u8([], [101])],
                  [:], expect: u8([2, 6], [101, 255, 101, 255, 155, 155, 101, 2, 101, 2, 68, 68]))
        // END GENERATED
    }

    /// Omitted zero points are zeros (ORT's type inference wants them present, so this is not in the generated block).
    func testOmittedZeroPointsAreZero() throws {
        let a = u8([4], [0, 7, 200, 255]), b = u8([4], [3, 90, 1, 255]), s = f32([], [0.05]), z = u8([], [0])
        for op in ["QLinearAdd", "QLinearMul"] {
            let explicit = try run(op, [a, s, z, b, s, z, s, z]), omitted = try run(op, [a, s, nil, b, s, nil, s, nil])
            XCTAssertEqual(try omitted.scalars(as: UInt8.self), try explicit.scalars(as: UInt8.self), op)
        }
        let sig = try run("QLinearSigmoid", [a, s, nil, f32([], [1 / 256]), nil])
        XCTAssertEqual(try sig.scalars(as: UInt8.self), try run("QLinearSigmoid", [a, s, z, f32([], [1 / 256]), z]).scalars(as: UInt8.self))
    }

    /// Every byte pair through QLinearAdd and QLinearMul against the float formula (dequantize, op,
    /// quantize half to even): at most one step apart (ORT folds and fuses its float arithmetic, so
    /// ties may fall either way), and equal almost everywhere.
    func testAllBytePairsWithinOneStep() throws {
        let a = u8([256, 256], (0..<65536).map { UInt8($0 / 256) }), b = u8([256, 256], (0..<65536).map { UInt8($0 % 256) })
        let (sa, sb, sc): (Float, Float, Float) = (0.031, 0.017, 0.043)
        for add in [true, false] {
            let sy = add ? sc : sc * 4
            let y = try run(add ? "QLinearAdd" : "QLinearMul",
                            [a, f32([], [sa]), u8([], [131]), b, f32([], [sb]), u8([], [97]), f32([], [sy]), u8([], [120])])
            let yp = try y.scalars(as: UInt8.self)
            var off = 0
            for i in 0..<65536 {
                let x1 = Double(i / 256 - 131) * Double(sa), x2 = Double(i % 256 - 97) * Double(sb)
                let f = ((add ? x1 + x2 : x1 * x2) / Double(sy)).rounded(.toNearestOrEven) + 120
                let want = min(max(f, 0), 255)
                XCTAssertLessThanOrEqual(abs(Double(yp[i]) - want), 1, "add \(add) pair \(i)")
                if Double(yp[i]) != want { off += 1 }
            }
            XCTAssertLessThan(off, 20, "add \(add): \(off) of 65536 off by one")
        }
    }

    func testMalformedInputsThrow() throws {
        let a = u8([2], [1, 2])
        let s = f32([], [0.1])
        // Zero point of another type than A.
        XCTAssertThrowsError(try run("QLinearAdd", [a, s, i8([], [0]), a, s, u8([], [0]), s, u8([], [0])])) {
            XCTAssertTrue("\($0)".contains("QLinearAdd"), "\($0)")
        }
        // Scale that is not a scalar.
        XCTAssertThrowsError(try run("QLinearMul", [a, f32([2], [0.1, 0.2]), nil, a, s, nil, s, nil]))
        // Shapes that do not broadcast.
        XCTAssertThrowsError(try run("QLinearAdd", [u8([3], [1, 2, 3]), s, nil, a, s, nil, s, nil]))
        // Float data.
        XCTAssertThrowsError(try run("QLinearSigmoid", [f32([2], [1, 2]), s, nil, s, nil]))
        // A and B of different types.
        XCTAssertThrowsError(try run("QLinearAdd", [a, s, nil, i8([2], [1, 2]), s, nil, s, nil]))
        // Concat: inputs that differ off the axis, and a missing triple member.
        XCTAssertThrowsError(try run("QLinearConcat", [s, u8([], [0]), u8([1, 2], [1, 2]), s, u8([], [0]),
                                                       u8([2, 1], [1, 2]), s, u8([], [0])], ["axis": .int(1)]))
        XCTAssertThrowsError(try run("QLinearConcat", [s, u8([], [0]), u8([1, 2], [1, 2]), s], ["axis": .int(1)]))
        // Global pooling of a rank-2 tensor; QGemm with mismatched inner dimensions.
        XCTAssertThrowsError(try run("QLinearGlobalAveragePool", [a.reshaped([1, 2]), s, u8([], [0]), s, u8([], [0])]))
        XCTAssertThrowsError(try run("QGemm", [u8([2, 3], [1, 2, 3, 4, 5, 6]), s, u8([], [0]), u8([2, 2], [1, 2, 3, 4]),
                                               s, u8([], [0]), nil, s, u8([], [0])]))
        // QLinearSoftmax needs its opset attribute.
        XCTAssertThrowsError(try run("QLinearSoftmax", [a, s, nil, s, u8([], [0])], ["axis": .int(-1)]))
    }

    /// A QOperator chain loaded as a model: shape inference and the session see the com.microsoft ops.
    func testSessionRunsContribChain() throws {
        let g = graph("q", [
            node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
            Node(name: "add", opType: "QLinearAdd", domain: "com.microsoft",
                 inputs: ["xq", "s", "z", "xq", "s", "z", "s2", "z"], outputs: ["sq"], attributes: [:]),
            Node(name: "gap", opType: "QLinearGlobalAveragePool", domain: "com.microsoft",
                 inputs: ["sq", "s2", "z", "s2", "z"], outputs: ["pq"], attributes: [:]),
            node("DequantizeLinear", ["pq", "s2", "z"], ["y"]),
        ], inputs: [vi("x", .float32, [1, 2, 2, 2])], outputs: [vi("y", .float32)],
           initializers: ["s": Tensor(scalar: Float(0.1)), "s2": Tensor(scalar: Float(0.2)), "z": Tensor(scalar: UInt8(10))])
        let m = Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                      opsets: ["": 19, "com.microsoft": 1], graph: g, keepAlive: [])
        let session = try InferenceSession(model: m, options: .init())
        let x = try Tensor(shape: [1, 2, 2, 2], scalars: [Float]([0, 0.1, 0.2, 0.3, -0.4, -0.2, 1, 1]))
        let y = try session.run(["x": x])["y"]!
        XCTAssertEqual(y.shape, [1, 2, 1, 1])
        // Channel 0: x + x = 0, 0.2, 0.4, 0.6 -> 0, 1, 2, 3 steps of 0.2; mean 1.5 steps -> 2 (half to even) -> 0.4.
        // Channel 1: -0.8, -0.4, 2, 2 -> -4, -2, 10, 10; mean 3.5 -> 4 -> 0.8.
        try assertClose(y, [0.4, 0.8], tol: 1e-6)
    }
}
