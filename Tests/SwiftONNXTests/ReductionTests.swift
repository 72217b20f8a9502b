import XCTest
@testable import SwiftONNX

/// Reduction-family ops. Literal expectations come from numpy (float32 input x below, computed in
/// float32 / float64 as numpy does); float comparisons use 1e-5 relative + 1e-6 absolute unless stated.
final class ReductionTests: XCTestCase {
    private func run(_ op: String, _ inputs: [Tensor?], attrs: [String: Attribute] = [:], opset: Int = 21,
                     outputs: Int = 1) throws -> [Tensor] {
        let node = Node(name: "n", opType: op, domain: "",
                        inputs: inputs.enumerated().map { $0.element == nil ? "" : "in\($0.offset)" },
                        outputs: (0..<outputs).map { "y\($0)" }, attributes: attrs)
        let ctx = OpContext(node: node, opset: opset, compileSubgraph: { _ in throw OpError("no subgraphs") })
        guard let builder = OpRegistry.standard.builder(domain: "", op: op) else { throw OpError("\(op) is not registered") }
        return try builder(ctx).run(inputs, RunEnv(threads: 1))
    }

    private func assertClose(_ got: [Float], _ want: [Float], rtol: Float = 1e-5, atol: Float = 1e-6,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, "count", file: file, line: line)
        for (i, (g, w)) in zip(got, want).enumerated() {
            if w.isNaN { XCTAssertTrue(g.isNaN, "[\(i)] want NaN, got \(g)", file: file, line: line); continue }
            XCTAssertLessThanOrEqual(abs(g - w), atol + rtol * abs(w), "[\(i)] got \(g), want \(w)", file: file, line: line)
        }
    }

    // numpy: rng = default_rng(0); x = round(standard_normal((2,3,4)), 3) as float32
    let xv: [Float] = [0.126, -0.132, 0.64, 0.105, -0.536, 0.362, 1.304, 0.947, -0.704, -1.265, -0.623, 0.041,
                       -2.325, -0.219, -1.246, -0.732, -0.544, -0.316, 0.412, 1.043, -0.129, 1.366, -0.665, 0.352]
    var x: Tensor { Tensor(validShape: [2, 3, 4], scalars: xv) }
    func axes(_ a: [Int64]) -> Tensor { Tensor(validShape: [a.count], scalars: a) }

    func testReduceSumMiddleAxisKeepdims() throws {
        let y = try run("ReduceSum", [x, axes([1])])[0]
        XCTAssertEqual(y.shape, [2, 1, 4])
        assertClose(try y.scalars(), [-1.114, -1.035, 1.321, 1.093, -2.998, 0.831, -1.499, 0.663])
    }

    func testReduceSumAttributeFormBeforeOpset13() throws {
        let y = try run("ReduceSum", [x], attrs: ["axes": .ints([1]), "keepdims": .int(0)], opset: 11)[0]
        XCTAssertEqual(y.shape, [2, 4])
        assertClose(try y.scalars(), [-1.114, -1.035, 1.321, 1.093, -2.998, 0.831, -1.499, 0.663])
    }

    func testReduceMeanLastAxis() throws {
        let y = try run("ReduceMean", [x, axes([-1])], attrs: ["keepdims": .int(0)], opset: 18)[0]
        XCTAssertEqual(y.shape, [2, 3])
        assertClose(try y.scalars(), [0.18475, 0.51925, -0.63775, -1.1305, 0.14875, 0.231])
    }

    func testReduceMaxNonContiguousAxes() throws {
        // axes (0, 2) are not one block: generic path.
        let y = try run("ReduceMax", [x, axes([0, 2])], attrs: ["keepdims": .int(0)])[0]
        XCTAssertEqual(y.shape, [3])
        assertClose(try y.scalars(), [0.64, 1.304, 1.366])
    }

    func testReduceL2AllAndLogSumExp() throws {
        let l2 = try run("ReduceL2", [x])[0]
        XCTAssertEqual(l2.shape, [1, 1, 1])
        assertClose(try l2.scalars(), [4.1951375])
        let lse = try run("ReduceLogSumExp", [x, axes([1])], attrs: ["keepdims": .int(0)])[0]
        assertClose(try lse.scalars(), [0.79478675, 0.95350146, 1.81104195, 1.55403662,
                                        0.44287604, 1.69598651, 0.83800972, 1.55615783])
    }

    func testNoopWithEmptyAxesAndEmptySet() throws {
        let y = try run("ReduceSumSquare", [x, axes([])], attrs: ["noop_with_empty_axes": .int(1)])[0]
        XCTAssertEqual(y.shape, [2, 3, 4])
        assertClose(try y.scalars(), xv.map { $0 * $0 })
        // Reducing an empty axis gives the identity: sum 0, prod 1, max -inf, mean NaN.
        let e = try Tensor(shape: [2, 0, 4], scalars: [Float]())
        assertClose(try run("ReduceSum", [e, axes([1])])[0].scalars(), [Float](repeating: 0, count: 8))
        assertClose(try run("ReduceProd", [e, axes([1])])[0].scalars(), [Float](repeating: 1, count: 8))
        XCTAssertEqual(try run("ReduceMax", [e, axes([1])])[0].scalars(as: Float.self), [Float](repeating: -.infinity, count: 8))
        let i8 = try Tensor(shape: [0], scalars: [Int8]())
        XCTAssertEqual(try run("ReduceMin", [i8], attrs: ["keepdims": .int(0)])[0].scalars(as: Int8.self), [127])
    }

    func testReduceIntegerAndBool() throws {
        let xi = try Tensor(shape: [2, 3], scalars: [Int32]([1, -2, 3, 4, 5, -6]))
        XCTAssertEqual(try run("ReduceSum", [xi, axes([1])], attrs: ["keepdims": .int(0)])[0].scalars(as: Int32.self), [2, 3])
        XCTAssertEqual(try run("ReduceProd", [xi, axes([0])], attrs: ["keepdims": .int(0)])[0].scalars(as: Int32.self), [4, -10, -18])
        let b = try Tensor(shape: [2, 2], scalars: [true, false, false, false])
        XCTAssertEqual(try run("ReduceMax", [b, axes([1])], attrs: ["keepdims": .int(0)])[0].scalars(as: Bool.self), [true, false])
    }

    func testRepeatedAxisThrows() {
        XCTAssertThrowsError(try run("ReduceSum", [x, axes([1, -2])]))
        XCTAssertThrowsError(try run("ReduceSum", [x, axes([3])]))
    }

    func testLargeFloat32PathsMatchDouble() throws {
        // Rows of 1000 (SIMD kernels) and a strided middle reduction against Double sums.
        let n = 1000, rows = 7
        let v = (0..<(rows * n)).map { Float(sin(Double($0) * 0.37)) * 3 }
        let t = try Tensor(shape: [rows, n], scalars: v)
        let mean = try run("ReduceMean", [t, axes([1])], attrs: ["keepdims": .int(0)])[0]
        let mid = try run("ReduceSum", [t, axes([0])], attrs: ["keepdims": .int(0)])[0]
        let mx = try run("ReduceMax", [t, axes([1])], attrs: ["keepdims": .int(0)])[0]
        var wantMean = [Float](), wantMax = [Float](), wantMid = [Float](repeating: 0, count: n)
        for r in 0..<rows {
            let row = v[(r * n)..<((r + 1) * n)]
            wantMean.append(Float(row.reduce(0.0) { $0 + Double($1) } / Double(n)))
            wantMax.append(row.max()!)
            for j in 0..<n { wantMid[j] += v[r * n + j] }
        }
        assertClose(try mean.scalars(), wantMean, rtol: 1e-4, atol: 1e-5)
        assertClose(try mid.scalars(), wantMid, rtol: 1e-5, atol: 1e-5)
        XCTAssertEqual(try mx.scalars(as: Float.self), wantMax)
        // Global pooling shape: reduce H, W of N,C,H,W.
        let img = try Tensor(shape: [1, 7, 1, n], scalars: v)
        let gp = try run("ReduceMean", [img, axes([2, 3])])[0]
        XCTAssertEqual(gp.shape, [1, 7, 1, 1])
        assertClose(try gp.scalars(), wantMean, rtol: 1e-4, atol: 1e-5)
    }

    func testArgMaxArgMin() throws {
        let y = try run("ArgMax", [x], attrs: ["axis": .int(2), "keepdims": .int(0)])[0]
        XCTAssertEqual(try y.scalars(as: Int64.self), [2, 2, 3, 1, 3, 1])
        let t = try Tensor(shape: [4], scalars: [Float]([1, 3, 3, 0]))
        XCTAssertEqual(try run("ArgMax", [t])[0].scalars(as: Int64.self), [1])
        XCTAssertEqual(try run("ArgMax", [t], attrs: ["select_last_index": .int(1)])[0].scalars(as: Int64.self), [2])
        XCTAssertEqual(try run("ArgMin", [t])[0].scalars(as: Int64.self), [3])
    }

    func testSoftmaxLastAxisAndAxis1() throws {
        let y = try run("Softmax", [x], opset: 13)[0]
        assertClose(try y.scalars(), [0.22605103, 0.17464596, 0.37794957, 0.22135346, 0.07063457, 0.1733859,
                                      0.44475332, 0.31122616, 0.21002004, 0.11984544, 0.2277396, 0.44239491,
                                      0.05856333, 0.48111612, 0.17227784, 0.28804266, 0.10260182, 0.12887666,
                                      0.26689512, 0.50162643, 0.13051233, 0.58199835, 0.07636065, 0.21112864])
        let y1 = try run("Softmax", [x], attrs: ["axis": .int(1)], opset: 13)[0]
        assertClose(try y1.scalars(), [0.51232976, 0.33773243, 0.31004372, 0.23479639, 0.26426926, 0.55349565,
                                       0.60227454, 0.54496342, 0.22340102, 0.10877199, 0.08768172, 0.22024018,
                                       0.06279523, 0.14734381, 0.12443029, 0.10145319, 0.37273929, 0.13372275,
                                       0.65311003, 0.59860229, 0.56446546, 0.7189334, 0.22245963, 0.29994449])
        // Before opset 13, axis=1 coerces to 2-D [2, 12]: each batch sums to 1.
        let old = try run("Softmax", [x], attrs: ["axis": .int(1)], opset: 11)[0].scalars(as: Float.self)
        XCTAssertEqual(old[0..<12].reduce(0, +), 1, accuracy: 1e-5)
        XCTAssertEqual(old[12..<24].reduce(0, +), 1, accuracy: 1e-5)
    }

    func testSoftmaxSIMDRowsAgainstDouble() throws {
        let n = 77
        let v = (0..<(3 * n)).map { Float(cos(Double($0) * 1.3)) * 20 }
        let t = try Tensor(shape: [3, n], scalars: v)
        let y = try run("Softmax", [t], opset: 13)[0].scalars(as: Float.self)
        let ly = try run("LogSoftmax", [t], opset: 13)[0].scalars(as: Float.self)
        for r in 0..<3 {
            let row = v[(r * n)..<((r + 1) * n)].map(Double.init)
            let m = row.max()!
            let s = row.reduce(0) { $0 + Foundation.exp($1 - m) }
            for j in 0..<n {
                let want = Foundation.exp(row[j] - m) / s
                XCTAssertEqual(Double(y[r * n + j]), want, accuracy: 1e-6 + 1e-5 * want)
                XCTAssertEqual(Double(ly[r * n + j]), row[j] - m - Foundation.log(s), accuracy: 1e-4)
            }
        }
    }

    func testVectorExpAccuracy() {
        for base in stride(from: -87.0, to: 88.0, by: 0.731) {
            let xs = SIMD16<Float>((0..<16).map { Float(base) + Float($0) * 0.043 })
            let e = f32ExpV(xs)
            for i in 0..<16 {
                let want = Foundation.exp(Double(xs[i]))
                if want > Double(Float.greatestFiniteMagnitude) { continue }
                XCTAssertEqual(Double(e[i]), want, accuracy: want * 1e-6 + 1e-37, "exp(\(xs[i]))")
            }
        }
    }

    func testHardmaxCumSumTopK() throws {
        let t = try Tensor(shape: [2, 3], scalars: [Float]([1, 3, 3, -1, 0, -2]))
        XCTAssertEqual(try run("Hardmax", [t], opset: 13)[0].scalars(as: Float.self), [0, 1, 0, 0, 1, 0])
        let c = try Tensor(shape: [5], scalars: [Int32]([1, 2, 3, 4, 5]))
        let ax = Tensor(scalar: Int32(0))
        XCTAssertEqual(try run("CumSum", [c, ax])[0].scalars(as: Int32.self), [1, 3, 6, 10, 15])
        XCTAssertEqual(try run("CumSum", [c, ax], attrs: ["exclusive": .int(1), "reverse": .int(1)])[0].scalars(as: Int32.self),
                       [14, 12, 9, 5, 0])
        let tk = try Tensor(shape: [6], scalars: [Float]([3, 1, 3, 2, 5, 3]))
        let r = try run("TopK", [tk, Tensor(shape: [1], scalars: [Int64(3)])], outputs: 2)
        XCTAssertEqual(try r[0].scalars(as: Float.self), [5, 3, 3])
        XCTAssertEqual(try r[1].scalars(as: Int64.self), [4, 0, 2])
        let s = try run("TopK", [tk, Tensor(shape: [1], scalars: [Int64(2)])], attrs: ["largest": .int(0)], outputs: 2)
        XCTAssertEqual(try s[1].scalars(as: Int64.self), [1, 3])
        XCTAssertThrowsError(try run("TopK", [tk, Tensor(shape: [1], scalars: [Int64(7)])], outputs: 2))
    }

    func testEinsum() throws {
        let a = try Tensor(shape: [2, 3], scalars: [Float]([1, 2, 3, 4, 5, 6]))
        let b = try Tensor(shape: [3, 2], scalars: [Float]([1, 0, 0, 1, 1, 1]))
        XCTAssertEqual(try run("Einsum", [a, b], attrs: ["equation": .string("ij,jk->ik")])[0].scalars(as: Float.self), [4, 5, 10, 11])
        XCTAssertEqual(try run("Einsum", [a], attrs: ["equation": .string("ij->ji")])[0].shape, [3, 2])
        XCTAssertEqual(try run("Einsum", [a], attrs: ["equation": .string("ij->")])[0].scalars(as: Float.self), [21])
        let sq = try Tensor(shape: [2, 2, 2], scalars: [Float]([1, 2, 3, 4, 5, 6, 7, 8]))
        XCTAssertEqual(try run("Einsum", [sq], attrs: ["equation": .string("...ii->...i")])[0].scalars(as: Float.self), [1, 4, 5, 8])
        XCTAssertThrowsError(try run("Einsum", [a, b], attrs: ["equation": .string("ij,kj->ik")]))
    }
}
