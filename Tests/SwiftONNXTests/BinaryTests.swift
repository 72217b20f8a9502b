import XCTest
@testable import SwiftONNX

/// Binary-family ops. Literal expectations were computed with numpy (float32 unless stated);
/// float comparisons use a tolerance of 1e-6 relative (1e-7 absolute) unless stated.
final class BinaryTests: XCTestCase {

    // MARK: helpers

    private func run(_ op: String, _ inputs: [Tensor?], attrs: [String: Attribute] = [:], opset: Int = 21,
                     threads: Int = 1) throws -> Tensor {
        let node = Node(name: "n", opType: op, domain: "",
                        inputs: inputs.enumerated().map { $0.element == nil ? "" : "in\($0.offset)" },
                        outputs: ["y"], attributes: attrs)
        let ctx = OpContext(node: node, opset: opset, compileSubgraph: { _ in throw OpError("no subgraphs") })
        guard let builder = OpRegistry.standard.builder(domain: "", op: op) else {
            throw OpError("\(op) is not registered")
        }
        return try builder(ctx).run(inputs, RunEnv(threads: threads))[0]
    }

    private func assertClose(_ got: [Float], _ want: [Float], rtol: Float = 1e-6, atol: Float = 1e-7,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, "count", file: file, line: line)
        for (i, (g, w)) in zip(got, want).enumerated() {
            if w.isNaN { XCTAssertTrue(g.isNaN, "[\(i)] want NaN, got \(g)", file: file, line: line); continue }
            XCTAssertLessThanOrEqual(abs(g - w), atol + rtol * abs(w), "[\(i)] got \(g), want \(w)", file: file, line: line)
        }
    }

    /// Deterministic pseudo-random floats in [-4, 4).
    private func values(_ n: Int, seed: UInt64) -> [Float] {
        var s = seed &* 6364136223846793005 &+ 1442695040888963407
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float((s >> 40) & 0xFFFF) / 8192 - 4
        }
    }

    /// Plain index-math broadcast reference.
    private func naive(_ a: [Float], _ sa: [Int], _ b: [Float], _ sb: [Int], _ f: (Float, Float) -> Float) -> ([Float], [Int]) {
        let out = try! broadcastShapes(sa, sb)
        let stA = broadcastStrides(sa, to: out), stB = broadcastStrides(sb, to: out)
        let n = out.reduce(1, *)
        var r = [Float](repeating: 0, count: n)
        for i in 0..<n {
            var rem = i, oa = 0, ob = 0
            for d in stride(from: out.count - 1, through: 0, by: -1) {
                let k = rem % out[d]; rem /= out[d]
                oa += k * stA[d]; ob += k * stB[d]
            }
            r[i] = f(a[oa], b[ob])
        }
        return (r, out)
    }

    // MARK: float32 fast paths against the index-math reference

    func testFloatArithmeticBroadcastPatterns() throws {
        let cases: [([Int], [Int])] = [
            ([2, 3, 33, 17], [2, 3, 33, 17]),   // same shape
            ([2, 3, 33, 17], [1]),              // scalar right
            ([], [2, 3, 5]),                    // scalar left (0-d)
            ([2, 3, 33, 17], [1, 3, 1, 1]),     // per-channel
            ([2, 3, 33, 17], [3, 1, 1]),        // per-channel, lower rank
            ([2, 3, 33, 17], [17]),             // bias on last dim
            ([2, 1, 33, 1], [3, 1, 17]),        // both broadcast
            ([5, 1], [1, 7]),                   // outer product
            ([4, 0, 3], [1, 3]),                // empty
        ]
        let ops: [(String, (Float, Float) -> Float)] = [("Add", { $0 + $1 }), ("Sub", { $0 - $1 }),
                                                       ("Mul", { $0 * $1 }), ("Div", { $0 / $1 })]
        for (sa, sb) in cases {
            let a = values(sa.reduce(1, *), seed: 1), b = values(sb.reduce(1, *), seed: 2).map { $0 == 0 ? 0.5 : $0 }
            for (name, f) in ops {
                for (x, y, shx, shy) in [(a, b, sa, sb), (b, a, sb, sa)] {
                    let (want, shape) = naive(x, shx, y, shy, f)
                    let got = try run(name, [Tensor(shape: shx, scalars: x), Tensor(shape: shy, scalars: y)])
                    XCTAssertEqual(got.shape, shape, "\(name) \(shx) \(shy)")
                    XCTAssertEqual(try got.scalars(as: Float.self), want, "\(name) \(shx) \(shy)")  // bit-exact
                }
            }
        }
    }

    func testFloatArithmeticThreaded() throws {
        let sa = [2, 16, 128, 128], sb = [16, 1, 1]
        let a = values(sa.reduce(1, *), seed: 3), b = values(16, seed: 4)
        for threads in [1, 2] {
            let (want, _) = naive(a, sa, b, sb, { $0 * $1 })
            let got = try run("Mul", [Tensor(shape: sa, scalars: a), Tensor(shape: sb, scalars: b)], threads: threads)
            XCTAssertEqual(try got.scalars(as: Float.self), want)
            let (want2, _) = naive(a, sa, a, sa, { $0 - $1 })
            let got2 = try run("Sub", [Tensor(shape: sa, scalars: a), Tensor(shape: sa, scalars: a)], threads: threads)
            XCTAssertEqual(try got2.scalars(as: Float.self), want2)
        }
    }

    func testKernelInPlace() {
        var a: [Float] = (0..<37).map { Float($0) }
        let b: [Float] = (0..<37).map { Float($0) * 0.5 }
        a.withUnsafeMutableBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                f32BinaryVV(.add, pa.baseAddress!, pb.baseAddress!, pa.baseAddress!, 37)
                f32BinaryVS(.mul, pa.baseAddress!, 2, pa.baseAddress!, 37)
            }
        }
        XCTAssertEqual(a, (0..<37).map { Float($0) * 3 })
    }

    func testNumpyLiterals() throws {
        let a = try Tensor(shape: [2, 3, 4], scalars: (0..<24).map { Float($0) * 0.5 - 5 })
        let b = try Tensor(shape: [3, 1], scalars: [Float(1.5), -2, 4])
        assertClose(try run("Div", [a, b]).scalars(), [
            -3.3333332538604736, -3.0, -2.6666667461395264, -2.3333332538604736, 1.5, 1.25, 1.0, 0.75, -0.25, -0.125,
            0.0, 0.125, 0.6666666865348816, 1.0, 1.3333333730697632, 1.6666666269302368, -1.5, -1.75, -2.0, -2.25,
            1.25, 1.375, 1.5, 1.625])
        assertClose(try run("Sub", [a, b]).scalars(), [
            -6.5, -6.0, -5.5, -5.0, -1.0, -0.5, 0.0, 0.5, -5.0, -4.5, -4.0, -3.5, -0.5, 0.0, 0.5, 1.0, 5.0, 5.5, 6.0,
            6.5, 1.0, 1.5, 2.0, 2.5])
        // PRelu with a slope along the last dim.
        let p = try run("PRelu", [a, Tensor(shape: [4], scalars: [Float(0.1), 0.2, 0.3, 0.4])])
        assertClose(Array(try p.scalars(as: Float.self).prefix(12)), [
            -0.5, -0.9000000357627869, -1.2000000476837158, -1.399999976158142, -0.30000001192092896, -0.5,
            -0.6000000238418579, -0.6000000238418579, -0.10000000149011612, -0.10000000149011612, 0.0, 0.5])
    }

    // MARK: integer semantics

    func testIntegerDivModTruncation() throws {
        let x = try Tensor(shape: [5], scalars: [Int8(-7), 7, -7, 7, -128])
        let y = try Tensor(shape: [5], scalars: [Int8(2), -2, -2, 2, -1])
        XCTAssertEqual(try run("Div", [x, y]).scalars(as: Int8.self), [-3, -3, 3, 3, -128])   // C truncation, MIN/-1 wraps
        XCTAssertEqual(try run("Mod", [x, y]).scalars(as: Int8.self), [1, -1, -1, 1, 0])     // np.mod
        XCTAssertEqual(try run("Mod", [x, y], attrs: ["fmod": .int(1)]).scalars(as: Int8.self), [-1, 1, -1, 1, 0])  // np.fmod
        // Division and modulo by zero give 0 rather than trapping.
        let z = try Tensor(shape: [1], scalars: [Int32(0)])
        XCTAssertEqual(try run("Div", [Tensor(shape: [2], scalars: [Int32(5), -5]), z]).scalars(as: Int32.self), [0, 0])
        XCTAssertEqual(try run("Mod", [Tensor(shape: [2], scalars: [Int32(5), -5]), z]).scalars(as: Int32.self), [0, 0])
        // uint8 wraps.
        XCTAssertEqual(try run("Add", [Tensor(shape: [2], scalars: [UInt8(250), 3]),
                                       try Tensor(shape: [], scalars: [UInt8(10)])]).scalars(as: UInt8.self), [4, 13])
    }

    func testFloatModPythonSign() throws {
        let x = try Tensor(shape: [4], scalars: [Float(-4.3), 7.2, 5.0, -0.0])
        let y = try Tensor(shape: [4], scalars: [Float(2.1), -3.4, -8.0, 2.0])
        assertClose(try run("Mod", [x, y]).scalars(), [1.9999995231628418, -3.000000476837158, -3.0, 0.0])
        assertClose(try run("Mod", [x, y], attrs: ["fmod": .int(1)]).scalars(), [-0.1, 0.4, 5.0, -0.0], rtol: 1e-5, atol: 1e-6)
        XCTAssertThrowsError(try run("Mod", [x, y], attrs: ["fmod": .int(2)]))
    }

    func testBitShift() throws {
        let x = try Tensor(shape: [4], scalars: [Int8(-128), 16, -3, 1])
        let s = try Tensor(shape: [4], scalars: [Int8(1), 2, 9, -1])
        XCTAssertEqual(try run("BitShift", [x, s], attrs: ["direction": .string("LEFT")]).scalars(as: Int8.self), [0, 64, 0, 0])
        XCTAssertEqual(try run("BitShift", [x, s], attrs: ["direction": .string("RIGHT")]).scalars(as: Int8.self), [-64, 4, -1, 0])
        XCTAssertThrowsError(try run("BitShift", [x, s], attrs: ["direction": .string("UP")]))
        XCTAssertEqual(try run("BitwiseXor", [Tensor(shape: [2], scalars: [UInt16(0xF0F0), 0x00FF]),
                                              try Tensor(shape: [1], scalars: [UInt16(0xFFFF)])]).scalars(as: UInt16.self),
                       [0x0F0F, 0xFF00])
    }

    // MARK: Pow with mixed types

    func testPowMixedTypes() throws {
        let f = try run("Pow", [Tensor(shape: [3], scalars: [Float(1.5), 2, -3]), Tensor(shape: [3], scalars: [Int64(2), 3, -1])])
        assertClose(try f.scalars(), [2.25, 8.0, -0.3333333432674408])
        let i = try run("Pow", [Tensor(shape: [3], scalars: [Int32(2), 3, -4]), Tensor(shape: [3], scalars: [Float(0.5), 2, 3])])
        XCTAssertEqual(i.dtype, .int32)
        XCTAssertEqual(try i.scalars(as: Int32.self), [1, 9, -64])
        let ii = try run("Pow", [Tensor(shape: [3], scalars: [Int64(3), -2, 2]), Tensor(shape: [], scalars: [Int64(3)])])
        XCTAssertEqual(try ii.scalars(as: Int64.self), [27, -8, 8])
        let sq = try run("Pow", [Tensor(shape: [3], scalars: [Float(-1.5), 0, 3]), Tensor(shape: [], scalars: [Float(2)])])
        XCTAssertEqual(try sq.scalars(as: Float.self), [2.25, 0, 9])
    }

    // MARK: comparisons, logic, Where

    func testComparisonsAndLogic() throws {
        let a = try Tensor(shape: [2, 2], scalars: [Float(1), 2, 3, .nan])
        let b = try Tensor(shape: [2], scalars: [Float(2), 2])
        XCTAssertEqual(try run("Greater", [a, b]).scalars(as: Bool.self), [false, false, true, false])
        XCTAssertEqual(try run("LessOrEqual", [a, b]).scalars(as: Bool.self), [true, true, false, false])
        XCTAssertEqual(try run("Equal", [a, b]).scalars(as: Bool.self), [false, true, false, false])
        let s = try run("Equal", [Tensor(shape: [3], strings: ["a", "b", "c"]), Tensor(shape: [1], strings: ["b"])])
        XCTAssertEqual(try s.scalars(as: Bool.self), [false, true, false])
        let t = try Tensor(shape: [2, 1], scalars: [true, false]), u = try Tensor(shape: [2], scalars: [true, false])
        XCTAssertEqual(try run("Xor", [t, u]).scalars(as: Bool.self), [false, true, true, false])
        XCTAssertEqual(try run("And", [t, u]).scalars(as: Bool.self), [true, false, false, false])
        XCTAssertEqual(try run("Equal", [t, u]).scalars(as: Bool.self), [true, false, false, true])
        XCTAssertThrowsError(try run("And", [a, b]))
    }

    func testWhere() throws {
        let c = try Tensor(shape: [2, 1], scalars: [true, false])
        let x = try Tensor(shape: [3], scalars: [Int64(1), 2, 3]), y = try Tensor(shape: [], scalars: [Int64(-1)])
        let r = try run("Where", [c, x, y])
        XCTAssertEqual(r.shape, [2, 3])
        XCTAssertEqual(try r.scalars(as: Int64.self), [1, 2, 3, -1, -1, -1])
        let rs = try run("Where", [c, Tensor(shape: [1], strings: ["yes"]), Tensor(shape: [2, 2], strings: ["a", "b", "c", "d"])])
        XCTAssertEqual(try rs.strings(), ["yes", "yes", "c", "d"])
        XCTAssertThrowsError(try run("Where", [x, x, y]))   // condition not bool
    }

    // MARK: variadic

    func testVariadic() throws {
        let m = try Tensor(shape: [2, 3], scalars: [Float(1), 2, 3, 4, 5, 6])
        let n = try Tensor(shape: [3], scalars: [Float(10), 20, 30])
        let o = try Tensor(shape: [2, 1], scalars: [Float(100), 200])
        assertClose(try run("Mean", [m, n, o]).scalars(), [37.0, 40.66666793823242, 44.33333206176758,
                                                           71.33333587646484, 75.0, 78.66666412353516])
        assertClose(try run("Sum", [m, n, o]).scalars(), [111, 122, 133, 214, 225, 236])
        let mx = try run("Max", [Tensor(shape: [1, 3], scalars: [Float(1), .nan, 3]), Tensor(shape: [2, 1], scalars: [Float(2), 0.5]),
                                 try Tensor(shape: [], scalars: [Float(1)])])
        assertClose(try mx.scalars(), [2, .nan, 3, 1, .nan, 3])
        let mn = try run("Min", [Tensor(shape: [3], scalars: [Int16(1), -5, 3]), Tensor(shape: [3], scalars: [Int16(0), 2, 9])])
        XCTAssertEqual(try mn.scalars(as: Int16.self), [0, -5, 3])
        let one = try run("Sum", [m])
        XCTAssertEqual(try one.scalars(as: Float.self), try m.scalars(as: Float.self))
        XCTAssertThrowsError(try run("Max", [m, Tensor(shape: [4], scalars: [Float(1), 2, 3, 4])]))
    }

    // MARK: float16 / bfloat16 and errors

    func testHalfTypes() throws {
        let a = try Tensor.fromDoubles([1.5, -2, 3], shape: [3], dtype: .float16)
        let b = try Tensor.fromDoubles([0.5], shape: [1], dtype: .float16)
        let r = try run("Add", [a, b])
        XCTAssertEqual(r.dtype, .float16)
        XCTAssertEqual(try r.doubles(), [2, -1.5, 3.5])
        let bf = try run("Mul", [try a.converted(to: .bfloat16), try b.converted(to: .bfloat16)])
        XCTAssertEqual(bf.dtype, .bfloat16)
        XCTAssertEqual(try bf.doubles(), [0.75, -1, 1.5])
        XCTAssertEqual(try run("Less", [a, b]).scalars(as: Bool.self), [false, true, false])
    }

    func testErrors() throws {
        let a = try Tensor(shape: [2, 3], scalars: [Float](repeating: 1, count: 6))
        XCTAssertThrowsError(try run("Add", [a, Tensor(shape: [2], scalars: [Float(1), 2])]))         // bad broadcast
        XCTAssertThrowsError(try run("Add", [a, Tensor(shape: [3], scalars: [Int32(1), 2, 3])]))      // type mismatch
        XCTAssertThrowsError(try run("Add", [a, nil]))                                                 // missing input
        XCTAssertThrowsError(try run("Add", [Tensor(shape: [1], scalars: [true]), Tensor(shape: [1], scalars: [true])]))
        XCTAssertThrowsError(try run("BitwiseAnd", [a, a]))
        XCTAssertThrowsError(try run("PRelu", [a, Tensor(shape: [4], scalars: [Float](repeating: 1, count: 4))]))
    }

    // MARK: legacy broadcast (opset < 7)

    func testLegacyBroadcast() throws {
        let a = try Tensor(shape: [2, 3, 2], scalars: (0..<12).map { Float($0) })
        let b = try Tensor(shape: [3], scalars: [Float(100), 200, 300])
        let r = try run("Add", [a, b], attrs: ["broadcast": .int(1), "axis": .int(1)], opset: 6)
        XCTAssertEqual(try r.scalars(as: Float.self),
                       [100, 101, 202, 203, 304, 305, 106, 107, 208, 209, 310, 311])
        // Without broadcast=1 the shapes must match.
        XCTAssertThrowsError(try run("Add", [a, b], opset: 6))
        // Default axis: suffix match.
        let c = try Tensor(shape: [2], scalars: [Float(10), 20])
        let s = try run("Mul", [a, c], attrs: ["broadcast": .int(1)], opset: 1)
        XCTAssertEqual(Array(try s.scalars(as: Float.self).prefix(4)), [0, 20, 20, 60])
        XCTAssertThrowsError(try run("Add", [a, b], attrs: ["broadcast": .int(1), "axis": .int(2)], opset: 6))
    }
}

/// Timing of the op layer (not a correctness test): runs only with BINARY_BENCH=1, meant for
/// `swift test -c release -Xswiftc -enable-testing --filter BinaryBench`.
final class BinaryBench: XCTestCase {
    func testTimings() throws {
        guard ProcessInfo.processInfo.environment["BINARY_BENCH"] == "1" else { return }
        func time(_ name: String, _ op: String, _ inputs: [Tensor]) throws {
            let node = Node(name: "n", opType: op, domain: "", inputs: inputs.indices.map { "i\($0)" },
                            outputs: ["y"], attributes: [:])
            let ctx = OpContext(node: node, opset: 21, compileSubgraph: { _ in throw OpError("none") })
            let k = try OpRegistry.standard.builder(domain: "", op: op)!(ctx)
            _ = try k.run(inputs, RunEnv(threads: 1))
            var best = Double.infinity
            for _ in 0..<10 {
                let t0 = DispatchTime.now().uptimeNanoseconds
                _ = try k.run(inputs, RunEnv(threads: 1))
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            }
            print(String(format: "BENCH %-36@ %8.3f ms", name as NSString, best))
        }
        let shape = [1, 64, 128, 128], n = shape.reduce(1, *)
        let f = try Tensor(shape: shape, scalars: (0..<n).map { Float($0 % 97) - 40 })
        let c = try Tensor(shape: [64, 1, 1], scalars: (0..<64).map { Float($0) + 1 })
        let i32 = try Tensor(shape: shape, scalars: (0..<n).map { Int32($0 % 97) })
        let ci = try Tensor(shape: [64, 1, 1], scalars: (0..<64).map { Int32($0) + 1 })
        try time("f32 Add same shape (1M)", "Add", [f, f])
        try time("f32 Mul per-channel", "Mul", [f, c])
        try time("f32 Div per-channel", "Div", [f, c])
        try time("i32 Add same shape", "Add", [i32, i32])
        try time("i32 Div per-channel", "Div", [i32, ci])
        try time("f32 Max same shape", "Max", [f, f])
        try time("f32 PRelu per-channel", "PRelu", [f, c])
        try time("f32 Greater per-channel", "Greater", [f, c])
        try time("Where f32", "Where", [try run2("Greater", f, c), f, c])
        try time("f32 Pow ^2", "Pow", [f, Tensor(shape: [], scalars: [Float(2)])])
        try time("f32 Pow ^3", "Pow", [f, Tensor(shape: [], scalars: [Float(3)])])
    }

    private func run2(_ op: String, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        let node = Node(name: "n", opType: op, domain: "", inputs: ["a", "b"], outputs: ["y"], attributes: [:])
        let ctx = OpContext(node: node, opset: 21, compileSubgraph: { _ in throw OpError("none") })
        return try OpRegistry.standard.builder(domain: "", op: op)!(ctx).run([a, b], RunEnv(threads: 1))[0]
    }
}

extension BinaryTests {
    /// Where over every inner-step pattern (operands varying or broadcast along the row), against index math.
    func testWhereBroadcastPatterns() throws {
        let shapes: [[Int]] = [[2, 3, 5], [3, 1], [5], [1], [2, 1, 5]]
        for sc in shapes {
            for sx in shapes {
                for sy in shapes {
                    let out = try broadcastShapes([sc, sx, sy])
                    let nc = sc.reduce(1, *), nx = sx.reduce(1, *), ny = sy.reduce(1, *)
                    let c = (0..<nc).map { $0 % 3 != 1 }
                    let x = (0..<nx).map { Int32($0) }, y = (0..<ny).map { Int32(-1 - $0) }
                    let got = try run("Where", [Tensor(shape: sc, scalars: c), Tensor(shape: sx, scalars: x),
                                                try Tensor(shape: sy, scalars: y)])
                    XCTAssertEqual(got.shape, out)
                    let stc = broadcastStrides(sc, to: out), stx = broadcastStrides(sx, to: out),
                        sty = broadcastStrides(sy, to: out)
                    var want: [Int32] = []
                    for i in 0..<out.reduce(1, *) {
                        var rem = i, oc = 0, ox = 0, oy = 0
                        for d in stride(from: out.count - 1, through: 0, by: -1) {
                            let k = rem % out[d]; rem /= out[d]
                            oc += k * stc[d]; ox += k * stx[d]; oy += k * sty[d]
                        }
                        want.append(c[oc] ? x[ox] : y[oy])
                    }
                    XCTAssertEqual(try got.scalars(as: Int32.self), want, "\(sc) \(sx) \(sy)")
                }
            }
        }
    }
}
