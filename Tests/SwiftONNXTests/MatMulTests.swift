import Foundation
import XCTest
@testable import SwiftONNX

// References: numpy float64 on the sin-based inputs of ConvTests.swift (sinData); tolerance 1e-4 relative.
final class MatMulTests: XCTestCase {
    func testBatchBroadcast() throws {
        let expected: [Float] = [0.5385645, -0.03089907, -0.5764928, -0.676741, -0.254201, -0.1232576, 0.2278818, 0.4029805, 0.2667734, -0.07551844, -0.5609164, 0.07222389, 0.6495706, 0.7251185, 0.2405062, 0.7057841, 0.4025119, -0.2117042, -0.662377, -0.601358, -0.3306889, -0.0200993, 0.3060172, 0.3957328, 0.1797415, -0.7657523, -0.4061568, 0.2671983, 0.7341405, 0.6339529, 0.5855414, 0.6719818, 0.2393105, -0.3782302, -0.7035848, -0.4034323, -0.259894, 0.08441465, 0.3635123, 0.3617936, -0.6587011, -0.7191118, -0.2240025, 0.4441507, 0.7691936, 0.02153917, -0.2147844, -0.2851852, -0.135278, 0.1191326, 0.5648224, -0.1111736, -0.701287, -0.7496503, -0.2189023, 0.08088755, 0.1946239, 0.1580116, -0.0006659892, -0.1588291, 0.1918249, -0.05355449, -0.2575626, -0.2626014, -0.0647784, 0.8005385, 0.396445, -0.3139056, -0.7817615, -0.6457, -0.04665267, 0.1254471, 0.2006379, 0.1208342, -0.05231493, 0.2839813, 0.1294879, -0.125036, -0.2829685, -0.2223055, 0.7101992, 0.7425936, 0.201328, -0.4954651, -0.8095072, -0.1551915, 0.005176398, 0.1615455, 0.1931193, 0.07550682]
        let expectedShape = [2, 3, 3, 5]
        let y = try runTestOp("MatMul", [:], [sinData([2, 1, 3, 4]), sinData([3, 4, 5], 0.91, 0.3)])
        try assertClose(y, expected, shape: expectedShape)
        let y64 = try runTestOp("MatMul", [:], [try sinData([2, 1, 3, 4]).converted(to: .float64),
                                           try sinData([3, 4, 5], 0.91, 0.3).converted(to: .float64)])
        try assertClose(y64, expected, shape: expectedShape, tol: 1e-6)
    }

    func testOneDimensionalPromotion() throws {
        let expected: [Float] = [0.4239277, 0.01755449, -0.4023797, 0.274434, 0.5204889, 0.3644617]
        let expectedShape = [2, 3]
        let y = try runTestOp("MatMul", [:], [sinData([4]), sinData([2, 4, 3], 0.91, 0.3)])
        try assertClose(y, expected, shape: expectedShape)
        let dot = try runTestOp("MatMul", [:], [Tensor(shape: [3], scalars: [Float(1), 2, 3]), Tensor(shape: [3], scalars: [Float(4), 5, 6])])
        XCTAssertEqual(dot.shape, [])
        XCTAssertEqual(try dot.scalars(as: Float.self), [32])
    }

    func testFoldedBatchAndIntegers() throws {
        // [2,3,2] x [2,2] folds into one GEMM.
        let a = try Tensor(shape: [2, 3, 2], scalars: (0..<12).map { Float($0) })
        let b = try Tensor(shape: [2, 2], scalars: [Float(1), 2, 3, 4])
        let y = try runTestOp("MatMul", [:], [a, b])
        XCTAssertEqual(y.shape, [2, 3, 2])
        XCTAssertEqual(try y.scalars(as: Float.self), [3, 4, 11, 16, 19, 28, 27, 40, 35, 52, 43, 64])
        let ai = try Tensor(shape: [2, 3], scalars: [Int32(1), -2, 3, 4, 5, -6])
        let bi = try Tensor(shape: [3, 2], scalars: [Int32(7), 8, 9, 10, 11, 12])
        let yi = try runTestOp("MatMul", [:], [ai, bi])
        XCTAssertEqual(try yi.scalars(as: Int32.self), [22, 24, 7, 10])
        let yu = try runTestOp("MatMul", [:], [try ai.converted(to: .uint64), try bi.converted(to: .uint64)])
        XCTAssertEqual(yu.dtype, .uint64)
    }

    func testGemmAllAttributes() throws {
        let expected: [Float] = [0.7482978, 1.249174, 1.473639, -1.475165, -2.034522, 0.7133011, 1.073525, 1.817196, -1.90304, -1.626436, 0.5817624, 1.013406, 2.054346, -2.259519, -1.237362]
        let expectedShape = [3, 5]
        let y = try runTestOp("Gemm", ["transA": .int(1), "transB": .int(1), "alpha": .float(0.5), "beta": .float(2)],
                              [sinData([4, 3]), sinData([5, 4], 0.91, 0.3), sinData([1, 5], 1.3)])
        try assertClose(y, expected, shape: expectedShape)
        let y16 = try runTestOp("Gemm", ["transA": .int(1), "transB": .int(1), "alpha": .float(0.5), "beta": .float(2)],
                                [try sinData([4, 3]).converted(to: .bfloat16), try sinData([5, 4], 0.91, 0.3).converted(to: .bfloat16),
                                 try sinData([1, 5], 1.3).converted(to: .bfloat16)])
        XCTAssertEqual(y16.dtype, .bfloat16)
        try assertClose(y16, expected, shape: expectedShape, tol: 5e-2)
    }

    func testGemmIntegerAndScalarC() throws {
        let a = try Tensor(shape: [2, 2], scalars: [Int64(1), 2, 3, 4])
        let b = try Tensor(shape: [2, 2], scalars: [Int64(5), 6, 7, 8])
        let c = try Tensor(shape: [], scalars: [Int64(10)])
        let y = try runTestOp("Gemm", [:], [a, b, c])
        XCTAssertEqual(try y.scalars(as: Int64.self), [29, 32, 53, 60])
        let yf = try runTestOp("Gemm", ["beta": .float(0.5)], [try a.converted(to: .float32), try b.converted(to: .float32),
                                                              try Tensor(shape: [2, 1], scalars: [Float(2), 4])])
        XCTAssertEqual(try yf.scalars(as: Float.self), [20, 23, 45, 52])
    }

    func testErrors() throws {
        XCTAssertThrowsError(try runTestOp("MatMul", [:], [sinData([2, 3]), sinData([4, 2])]))
        XCTAssertThrowsError(try runTestOp("MatMul", [:], [sinData([2, 3, 4]), sinData([3, 4, 2])]))  // batch 2 vs 3
        XCTAssertThrowsError(try runTestOp("Gemm", [:], [sinData([2, 3]), sinData([3, 4]), sinData([3])]))  // C not broadcastable
        XCTAssertThrowsError(try runTestOp("Gemm", [:], [sinData([2, 3, 1]), sinData([3, 4])]))
        XCTAssertThrowsError(try runTestOp("Gemm", opset: 6, [:], [sinData([2, 3]), sinData([3, 4]), sinData([4])]))  // broadcast=0
    }
}

/// Float32 GEMMs from 8 rows up run on the packed microkernels (A packed per call): MatMul, batched
/// MatMul and Gemm with transA against double-precision loops, on sizes with tails in every
/// dimension, 1 and 2 threads.
final class PackedMatMulPathTests: XCTestCase {
    func testPackedPathAgainstDoubleLoops() throws {
        var rng = SplitMix64(seed: 21)
        for (m, k, n) in [(8, 8, 16), (37, 19, 45), (130, 70, 33), (9, 300, 17)] {
            let a = (0..<(2 * m * k)).map { _ in rng.uniform(-1, 1) }, b = (0..<(k * n)).map { _ in rng.uniform(-1, 1) }
            var want = [Double](repeating: 0, count: 2 * m * n)
            for bt in 0..<2 { for i in 0..<m { for j in 0..<n {
                var s = 0.0
                for p in 0..<k { s += Double(a[(bt * m + i) * k + p]) * Double(b[p * n + j]) }
                want[(bt * m + i) * n + j] = s
            }}}
            for threads in [1, 2] {
                let y = try runOp("MatMul", opset: 13, [Tensor(validShape: [2, m, k], scalars: a), Tensor(validShape: [k, n], scalars: b)],
                                  threads: threads)[0]
                XCTAssertEqual(y.shape, [2, m, n])
                try assertClose(y, want, tol: 1e-5)
                // Gemm with A given transposed: (A^T)^T B for the first batch.
                var at = [Float](repeating: 0, count: m * k)
                for i in 0..<m { for p in 0..<k { at[p * m + i] = a[i * k + p] } }
                let g = try runOp("Gemm", opset: 13, [Tensor(validShape: [k, m], scalars: at), Tensor(validShape: [k, n], scalars: b)],
                                  ["transA": .int(1)], threads: threads)[0]
                try assertClose(g, Array(want[0..<(m * n)]), tol: 1e-5)
            }
        }
    }
}

/// FuseMatMulBias and FuseMatMulEpilogue: dense layers (MatMul by a 2-D constant, + bias, + residual,
/// activation) become one com.swiftonnx FusedMatMul, with the unoptimized graph's results.
final class MatMulFusionTests: XCTestCase {
    private let fused = "com.swiftonnx::FusedMatMul"

    private func values(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in rng.uniform(-1, 1) }
    }

    /// X [2, rows, k] times W [k, n]; constants W, b (shape biasShape), and a second input R [2, rows, n].
    private func model(_ nodes: [Node], rows: Int, k: Int, n: Int, biasShape: [Int], extraOutputs: [String] = []) throws -> Model {
        let inits: [String: Tensor] = [
            "W": try Tensor(shape: [k, n], scalars: values(k * n, seed: 1)),
            "b": try Tensor(shape: biasShape, scalars: values(biasShape.reduce(1, *), seed: 2)),
        ]
        let g = Graph(name: "g", nodes: nodes,
                      inputs: [ValueInfo(name: "X", type: .float32, shape: [.known(2), .known(rows), .known(k)]),
                               ValueInfo(name: "R", type: .float32, shape: [.known(2), .known(rows), .known(n)])],
                      outputs: (["Y"] + extraOutputs).map { ValueInfo(name: $0, type: .float32, shape: nil) },
                      initializers: inits, valueInfo: [:])
        return Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                     opsets: ["": 20], graph: g, keepAlive: [])
    }

    /// `m` is made anew for every session: a session that packs the weights releases them from the model.
    private func check(_ m: @autoclosure () throws -> Model, histogram: [String: Int], rows: Int, k: Int, n: Int,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let plain = try InferenceSession(model: try m(), options: .init(optimize: false))
        let x = try Tensor(shape: [2, rows, k], scalars: values(2 * rows * k, seed: 3).map { $0 * 3 })
        let r = try Tensor(shape: [2, rows, n], scalars: values(2 * rows * n, seed: 4))
        for threads in [1, 2] {
            let fast = try InferenceSession(model: try m(), options: .init(threads: threads, optimize: true))
            XCTAssertEqual(fast.metadata.opHistogram, histogram, file: file, line: line)
            let a = try XCTUnwrap(try plain.run(["X": x, "R": r])["Y"])
            let b = try XCTUnwrap(try fast.run(["X": x, "R": r])["Y"])
            try assertClose(b, a, rtol: 1e-6, atol: 1e-6, file: file, line: line)
        }
    }

    private func node(_ op: String, _ ins: [String], _ out: String, _ attrs: [String: Attribute] = [:]) -> Node {
        Node(name: out, opType: op, domain: "", inputs: ins, outputs: [out], attributes: attrs)
    }

    func testBiasResidualAndActivationGoIntoTheGemm() throws {
        // (sizes: the packed microkernels with tails; and few rows, through the plain GEMM and the row epilogue)
        for (rows, k, n) in [(13, 40, 37), (2, 9, 5), (70, 96, 200)] {
            // BERT's intermediate layer: Gelu(X W + b)
            try check(try model([node("MatMul", ["X", "W"], "t"), node("Add", ["t", "b"], "u"), node("Gelu", ["u"], "Y")],
                                rows: rows, k: k, n: n, biasShape: [n]), histogram: [fused: 1], rows: rows, k: k, n: n)
            // its output layer: (X W + b) + R, bias first and rank 3
            try check(try model([node("MatMul", ["X", "W"], "t"), node("Add", ["b", "t"], "u"), node("Add", ["R", "u"], "Y")],
                                rows: rows, k: k, n: n, biasShape: [1, 1, n]), histogram: [fused: 1], rows: rows, k: k, n: n)
            // no bias: X W + R, then Relu after the residual; the tanh Gelu
            try check(try model([node("MatMul", ["X", "W"], "t"), node("Add", ["t", "R"], "u"), node("Relu", ["u"], "Y")],
                                rows: rows, k: k, n: n, biasShape: [n]), histogram: [fused: 1], rows: rows, k: k, n: n)
            try check(try model([node("MatMul", ["X", "W"], "t"), node("Add", ["t", "b"], "u"),
                                 node("Gelu", ["u"], "Y", ["approximate": .string("tanh")])],
                                rows: rows, k: k, n: n, biasShape: [n]), histogram: [fused: 1], rows: rows, k: k, n: n)
        }
    }

    /// Where shape inference cannot follow (X and R of unknown shapes, as after a Reshape to a computed
    /// shape), the dense layer is fused all the same: the bias and the activation always fit, and a
    /// residual whose shape turns out to differ from the product's at run time (here R broadcasts over
    /// the batch) is added afterwards, as Add would, before the activation.
    func testDenseLayersOfUnknownShapesAreFusedAndCheckedAtRunTime() throws {
        let (rows, k, n) = (13, 40, 37)
        for rShape in [[2, rows, n], [rows, n], [1, n]] {
            func m() throws -> Model {
                let inits: [String: Tensor] = [
                    "W": try Tensor(shape: [k, n], scalars: values(k * n, seed: 1)),
                    "b": try Tensor(shape: [n], scalars: values(n, seed: 2)),
                ]
                let nodes = [node("MatMul", ["X", "W"], "t"), node("Add", ["t", "b"], "u"), node("Add", ["u", "R"], "v"),
                             node("Relu", ["v"], "Y")]
                let g = Graph(name: "g", nodes: nodes,
                              inputs: [ValueInfo(name: "X", type: .float32, shape: nil), ValueInfo(name: "R", type: .float32, shape: nil)],
                              outputs: [ValueInfo(name: "Y", type: .float32, shape: nil)], initializers: inits, valueInfo: [:])
                return Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                             opsets: ["": 20], graph: g, keepAlive: [])
            }
            let x = try Tensor(shape: [2, rows, k], scalars: values(2 * rows * k, seed: 3).map { $0 * 3 })
            let r = try Tensor(shape: rShape, scalars: values(rShape.reduce(1, *), seed: 4))
            let want = try XCTUnwrap(try InferenceSession(model: try m(), options: .init(optimize: false)).run(["X": x, "R": r])["Y"])
            for threads in [1, 2] {
                let fast = try InferenceSession(model: try m(), options: .init(threads: threads, optimize: true))
                XCTAssertEqual(fast.metadata.opHistogram, [fused: 1], "R \(rShape)")
                let got = try XCTUnwrap(try fast.run(["X": x, "R": r])["Y"])
                XCTAssertEqual(got.shape, [2, rows, n])
                try assertClose(got, want, rtol: 1e-6, atol: 1e-6)
            }
        }
    }

    /// An activation after a Reshape of the product goes into the product's epilogue and the Reshape
    /// moves the activated result (GPT-2's Conv1D as TorchScript exports it: Reshape to 2-D, Gemm,
    /// Reshape back, Gelu). A Reshape whose result has another reader keeps the activation apart.
    func testActivationAfterAReshapeOfTheProductGoesIntoTheEpilogue() throws {
        let (rows, k, n) = (13, 40, 36)
        let shape = Tensor(validShape: [4], scalars: [Int64(2), Int64(rows), Int64(n / 4), Int64(4)])
        func m(_ nodes: [Node], extraOutputs: [String] = []) throws -> Model {
            let base = try model(nodes, rows: rows, k: k, n: n, biasShape: [n], extraOutputs: extraOutputs)
            base.graph.initializers["s"] = shape
            return base
        }
        try check(try m([node("MatMul", ["X", "W"], "t"), node("Add", ["t", "b"], "u"), node("Reshape", ["u", "s"], "v"),
                         node("Gelu", ["v"], "Y")]), histogram: [fused: 1, "Reshape": 1], rows: rows, k: k, n: n)
        try check(try m([node("MatMul", ["X", "W"], "t"), node("Reshape", ["t", "s"], "v"), node("Relu", ["v"], "Y")]),
                  histogram: [fused: 1, "Reshape": 1], rows: rows, k: k, n: n)
        let plain = try InferenceSession(model: try m([node("MatMul", ["X", "W"], "t"), node("Reshape", ["t", "s"], "v"),
                                                        node("Relu", ["v"], "Y")], extraOutputs: ["v"]), options: .init())
        XCTAssertEqual(plain.metadata.opHistogram, [fused: 1, "Reshape": 1, "Relu": 1], "the reshaped product is also an output")
    }

    /// SiLU written out (Mul(y, Sigmoid(y)), Llama's MLP gate) becomes Swish (FuseSiLU), which a dense
    /// layer's epilogue takes; with the sigmoid read elsewhere too, both stay.
    func testSiLUBecomesSwishAndGoesIntoTheEpilogue() throws {
        for (rows, k, n) in [(13, 40, 37), (2, 9, 5), (70, 96, 200)] {
            try check(try model([node("MatMul", ["X", "W"], "t"), node("Add", ["t", "b"], "u"), node("Sigmoid", ["u"], "s"),
                                 node("Mul", ["u", "s"], "Y")], rows: rows, k: k, n: n, biasShape: [n]),
                      histogram: [fused: 1], rows: rows, k: k, n: n)
            try check(try model([node("MatMul", ["X", "W"], "t"), node("Sigmoid", ["t"], "s"), node("Mul", ["s", "t"], "Y")],
                                rows: rows, k: k, n: n, biasShape: [n]),
                      histogram: [fused: 1], rows: rows, k: k, n: n)
        }
        // SiLU of an input: a Swish of its own.
        try check(try model([node("Sigmoid", ["X"], "s"), node("Mul", ["X", "s"], "v"), node("MatMul", ["v", "W"], "Y")],
                            rows: 13, k: 40, n: 37, biasShape: [37]),
                  histogram: ["Swish": 1, fused: 1], rows: 13, k: 40, n: 37)
        // The sigmoid is also an output: nothing fuses but the dense layer.
        let both = try InferenceSession(model: try model([node("MatMul", ["X", "W"], "t"), node("Sigmoid", ["t"], "s"),
                                                          node("Mul", ["t", "s"], "Y")], rows: 13, k: 40, n: 37,
                                                         biasShape: [37], extraOutputs: ["s"]), options: .init())
        XCTAssertEqual(both.metadata.opHistogram, [fused: 1, "Sigmoid": 1, "Mul": 1])
    }

    /// PackDenseMatMul: a MatMul by a 2-D constant with nothing to fuse (Llama's projections, a head)
    /// is a FusedMatMul without epilogue, its weights packed once.
    func testPlainMatMulByAConstantBecomesAPackedDenseLayer() throws {
        for (rows, k, n) in [(1, 40, 37), (2, 9, 5), (13, 40, 37), (70, 96, 200), (32, 64, 1000)] {
            try check(try model([node("MatMul", ["X", "W"], "Y")], rows: rows, k: k, n: n, biasShape: [n]),
                      histogram: [fused: 1], rows: rows, k: k, n: n)
        }
    }

    /// DenseGemm: Gemm as a dense layer (transB 0 or 1, bias [N], [1, N] or none, an activation after)
    /// becomes one FusedMatMul; other Gemms stay.
    func testGemmAsADenseLayerBecomesAFusedMatMul() throws {
        let rows = 13, k = 40, n = 37
        func m(_ nodes: [Node], transposedW: Bool, cShape: [Int]) throws -> Model {
            let inits: [String: Tensor] = [
                "W": try Tensor(shape: transposedW ? [n, k] : [k, n], scalars: values(k * n, seed: 1)),
                "c": try Tensor(shape: cShape, scalars: values(cShape.reduce(1, *), seed: 2)),
            ]
            let g = Graph(name: "g", nodes: nodes,
                          inputs: [ValueInfo(name: "X", type: .float32, shape: [.known(rows), .known(k)])],
                          outputs: [ValueInfo(name: "Y", type: .float32, shape: nil)], initializers: inits, valueInfo: [:])
            return Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                         opsets: ["": 20], graph: g, keepAlive: [])
        }
        let x = try Tensor(shape: [rows, k], scalars: values(rows * k, seed: 3).map { $0 * 3 })
        let cases: [(nodes: [Node], transposedW: Bool, cShape: [Int], histogram: [String: Int])] = [
            ([node("Gemm", ["X", "W", "c"], "t", ["transB": .int(1)]), node("Relu", ["t"], "Y")], true, [n], [fused: 1]),
            ([node("Gemm", ["X", "W", "c"], "Y")], false, [1, n], [fused: 1]),
            ([node("Gemm", ["X", "W"], "t", ["transB": .int(1)]), node("Gelu", ["t"], "Y")], true, [n], [fused: 1]),
            // not a dense layer: alpha, a bias per row and column, A transposed
            ([node("Gemm", ["X", "W", "c"], "Y", ["alpha": .float(0.5)])], false, [n], ["Gemm": 1]),
            ([node("Gemm", ["X", "W", "c"], "Y")], false, [rows, n], ["Gemm": 1]),
        ]
        // A of unknown shape (GPT-2's, after a Reshape to a computed shape): fused, and still held to Gemm's 2-D A
        let open = try m([node("Gemm", ["X", "W", "c"], "Y", ["transB": .int(1)])], transposedW: true, cShape: [n])
        open.graph.inputs = [ValueInfo(name: "X", type: .float32, shape: nil)]
        let session = try InferenceSession(model: open, options: .init(optimize: true))
        XCTAssertEqual(session.metadata.opHistogram, [fused: 1])
        XCTAssertThrowsError(try session.run(["X": try Tensor(shape: [1, rows, k], scalars: values(rows * k, seed: 5))])) { e in
            XCTAssertTrue("\(e)".contains("Gemm: A and B must be 2-D"), "\(e)")
        }
        for (i, c) in cases.enumerated() {
            let want = try XCTUnwrap(try InferenceSession(model: try m(c.nodes, transposedW: c.transposedW, cShape: c.cShape),
                                                          options: .init(optimize: false)).run(["X": x])["Y"])
            for threads in [1, 2] {
                let fast = try InferenceSession(model: try m(c.nodes, transposedW: c.transposedW, cShape: c.cShape),
                                                options: .init(threads: threads, optimize: true))
                XCTAssertEqual(fast.metadata.opHistogram, c.histogram, "case \(i)")
                let got = try XCTUnwrap(try fast.run(["X": x])["Y"])
                XCTAssertEqual(got.shape, [rows, n])
                try assertClose(got, want, rtol: 1e-5, atol: 1e-5)
            }
        }
    }

    func testWhatTheEpilogueCannotTakeIsLeftAlone() throws {
        let rows = 13, k = 40, n = 37
        // a bias that varies by row is not a column bias (the product alone is still a packed dense layer)
        try check(try model([node("MatMul", ["X", "W"], "t"), node("Add", ["t", "b"], "Y")], rows: rows, k: k, n: n,
                            biasShape: [rows, n]), histogram: [fused: 1, "Add": 1], rows: rows, k: k, n: n)
        // the product is also read elsewhere (a graph output)
        try check(try model([node("MatMul", ["X", "W"], "t"), node("Add", ["t", "b"], "Y")], rows: rows, k: k, n: n,
                            biasShape: [n], extraOutputs: ["t"]), histogram: [fused: 1, "Add": 1], rows: rows, k: k, n: n)
        // an activation before the residual add stays before it: act(X W + b) + R
        try check(try model([node("MatMul", ["X", "W"], "t"), node("Add", ["t", "b"], "u"), node("Relu", ["u"], "v"),
                             node("Add", ["v", "R"], "Y")], rows: rows, k: k, n: n, biasShape: [n]),
                  histogram: [fused: 1, "Add": 1], rows: rows, k: k, n: n)
    }
}
