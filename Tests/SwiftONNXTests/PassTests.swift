import Foundation
import XCTest
@testable import SwiftONNX

/// Every pass is checked against the unoptimized path and against ONNX Runtime's output.
final class PassTests: XCTestCase {
    func testOptimizedMatchesUnoptimizedAndReference() throws {
        let x = try loadPB("conv_bn_relu_input.pb")
        let reference = try loadPB("conv_bn_relu_output.pb")
        let plain = try InferenceSession(contentsOf: resource("conv_bn_relu.onnx"), options: .init(optimize: false))
        let fast = try InferenceSession(contentsOf: resource("conv_bn_relu.onnx"), options: .init(optimize: true))
        XCTAssertEqual(plain.metadata.opHistogram["BatchNormalization"], 1)
        XCTAssertNil(fast.metadata.opHistogram["BatchNormalization"], "BN should be folded: \(fast.metadata.opHistogram)")
        XCTAssertNil(fast.metadata.opHistogram["Relu"], "Relu should be fused: \(fast.metadata.opHistogram)")
        XCTAssertNil(fast.metadata.opHistogram["Identity"])
        XCTAssertEqual(fast.metadata.opHistogram["com.swiftonnx::FusedConv"], 2)
        let a = try plain.run(["X": x])["Y"]!
        let b = try fast.run(["X": x])["Y"]!
        try assertClose(a, reference, rtol: 1e-4, atol: 1e-4)
        try assertClose(b, reference, rtol: 1e-4, atol: 1e-4)
        try assertClose(b, a, rtol: 1e-4, atol: 1e-4)
    }

    func testConstantFoldingEvaluatesConstantSubgraphs() throws {
        // Y = X + (B + B): the inner Add has constant inputs and is folded away.
        let b = try Tensor(shape: [2], scalars: [Float(1), 2])
        let g = Graph(name: "g", nodes: [
            Node(name: "inner", opType: "Add", domain: "", inputs: ["B", "B"], outputs: ["BB"], attributes: [:]),
            Node(name: "outer", opType: "Add", domain: "", inputs: ["X", "BB"], outputs: ["Y"], attributes: [:]),
        ], inputs: [ValueInfo(name: "X", type: .float32, shape: [2])],
           outputs: [ValueInfo(name: "Y", type: .float32, shape: [2])], initializers: ["B": b], valueInfo: [:])
        let changed = try ConstantFolding().apply(to: g, opsets: ["": 17])
        XCTAssertTrue(changed)
        XCTAssertEqual(g.nodes.map(\.name), ["outer"])
        XCTAssertEqual(try XCTUnwrap(g.initializers["BB"]).scalars(as: Float.self), [2, 4])
        XCTAssertNil(g.initializers["B"], "unused initializer pruned")
    }

    func testDropoutWithUnreadMaskIsRemovedAndReadMaskKept() throws {
        func graph(maskIsOutput: Bool) -> Graph {
            Graph(name: "g", nodes: [
                Node(name: "relu", opType: "Relu", domain: "", inputs: ["X"], outputs: ["R"], attributes: [:]),
                Node(name: "drop", opType: "Dropout", domain: "", inputs: ["R"], outputs: ["D", "M"], attributes: [:]),
                Node(name: "neg", opType: "Neg", domain: "", inputs: ["D"], outputs: ["Y"], attributes: [:]),
            ], inputs: [ValueInfo(name: "X", type: .float32, shape: [3])],
               outputs: [ValueInfo(name: "Y", type: .float32, shape: [3])]
                + (maskIsOutput ? [ValueInfo(name: "M", type: .bool, shape: [3])] : []),
               initializers: [:], valueInfo: [:])
        }
        let g = graph(maskIsOutput: false)
        XCTAssertTrue(try RemoveIdentity().apply(to: g, opsets: ["": 13]))
        XCTAssertEqual(g.nodes.map(\.name), ["relu", "neg"])
        XCTAssertEqual(g.nodes[1].inputs, ["R"])
        let kept = graph(maskIsOutput: true)
        XCTAssertFalse(try RemoveIdentity().apply(to: kept, opsets: ["": 13]))
        XCTAssertEqual(kept.nodes.count, 3)
    }

    /// BatchNormalization folding scales weights in place when the graph holds the only reference
    /// to memory of its own and one Conv reads them (no second copy of a model's weights at load);
    /// weights two Convs share, or that someone outside the graph holds, are copied, not changed.
    func testBatchNormFoldingScalesPrivateWeightsInPlaceAndCopiesShared() throws {
        let c = 3
        func bnInputs(_ p: String) -> [String: Tensor] {
            [p + "s": Tensor(validShape: [c], scalars: [Float(2), 0.5, -1]), p + "b": Tensor(validShape: [c], scalars: [Float(1), 0, -2]),
             p + "m": Tensor(validShape: [c], scalars: [Float(0.5), -1, 0]), p + "v": Tensor(validShape: [c], scalars: [Float(3), 0, 1])]
        }
        func weights() throws -> Tensor {
            let t = try Tensor.uninitialized(.float32, [c, 2, 1, 1])
            for i in 0..<t.count { t.pointer(Float.self)[i] = Float(i + 1) }
            return t
        }
        let held = try Tensor(shape: [c, 2, 1, 1], scalars: (0..<6).map { Float($0) - 2.5 })
        var inits = bnInputs("a").merging(bnInputs("b")) { a, _ in a }.merging(bnInputs("c")) { a, _ in a }.merging(bnInputs("d")) { a, _ in a }
        inits["wPrivate"] = try weights()
        inits["wShared"] = try weights()
        inits["wHeld"] = held
        let privateStorage = ObjectIdentifier(inits["wPrivate"]!.storage)
        let sharedStorage = ObjectIdentifier(inits["wShared"]!.storage)
        func convBN(_ p: String, _ w: String) -> [Node] {
            [Node(name: p + "conv", opType: "Conv", domain: "", inputs: ["X", w], outputs: [p + "C"], attributes: [:]),
             Node(name: p + "bn", opType: "BatchNormalization", domain: "", inputs: [p + "C", p + "s", p + "b", p + "m", p + "v"],
                  outputs: [p + "Y"], attributes: ["epsilon": .float(1e-3)])]
        }
        let g = Graph(name: "g", nodes: convBN("a", "wPrivate") + convBN("b", "wShared") + convBN("c", "wShared") + convBN("d", "wHeld"),
                      inputs: [vi("X", .float32, [.known(1), .known(2), .known(4), .known(4)])],
                      outputs: ["aY", "bY", "cY", "dY"].map { vi($0, .float32) }, initializers: inits, valueInfo: [:])
        inits = [:]
        XCTAssertTrue(try FoldBatchNormIntoConv().apply(to: g, opsets: ["": 15]))
        XCTAssertEqual(g.nodes.map(\.opType), ["Conv", "Conv", "Conv", "Conv"])
        let scale: [Float] = [2, 0.5, -1], variance: [Float] = [3, 0, 1]
        func expected(_ w: [Float]) -> [Float] {
            (0..<6).map { i in w[i] * (scale[i / 2] / (variance[i / 2] + 1e-3).squareRoot()) }
        }
        let folded = try g.nodes.map { try XCTUnwrap(g.initializers[$0.inputs[1]]) }
        let original = (0..<6).map { Float($0 + 1) }
        for w in folded.prefix(3) { XCTAssertEqual(try w.scalars(as: Float.self), expected(original)) }
        XCTAssertEqual(try folded[3].scalars(as: Float.self), expected(try held.scalars(as: Float.self)))
        XCTAssertEqual(ObjectIdentifier(folded[0].storage), privateStorage, "one reader, private memory: scaled in place")
        XCTAssertNotEqual(ObjectIdentifier(folded[1].storage), sharedStorage, "two readers: a copy")
        XCTAssertNotEqual(ObjectIdentifier(folded[1].storage), ObjectIdentifier(folded[2].storage))
        XCTAssertEqual(try held.scalars(as: Float.self), (0..<6).map { Float($0) - 2.5 }, "a tensor held outside the graph is not changed")
        XCTAssertNil(g.initializers["wShared"], "the unread original is pruned")
    }

    func testShapeOfKnownShapeIsFolded() throws {
        let g = Graph(name: "g", nodes: [
            Node(name: "shape", opType: "Shape", domain: "", inputs: ["X"], outputs: ["S"], attributes: [:]),
        ], inputs: [ValueInfo(name: "X", type: .float32, shape: [2, 3, 5])],
           outputs: [ValueInfo(name: "S", type: nil, shape: nil)], initializers: [:], valueInfo: [:])
        XCTAssertTrue(try ConstantFolding().apply(to: g, opsets: ["": 17]))
        XCTAssertEqual(try XCTUnwrap(g.initializers["S"]).scalars(as: Int64.self), [2, 3, 5])
        XCTAssertTrue(g.nodes.isEmpty)
    }
}

final class ResidualFusionTests: XCTestCase {
    func testConvAddReluBecomesOneFusedConv() throws {
        let x = try loadPB("conv_residual_input.pb")
        let reference = try loadPB("conv_residual_output.pb")
        let plain = try InferenceSession(contentsOf: resource("conv_residual.onnx"), options: .init(optimize: false))
        let fast = try InferenceSession(contentsOf: resource("conv_residual.onnx"), options: .init(optimize: true))
        XCTAssertEqual(fast.metadata.opHistogram, ["com.swiftonnx::FusedConv": 1], "\(fast.metadata.opHistogram)")
        let a = try XCTUnwrap(try plain.run(["X": x])["Y"])
        let b = try XCTUnwrap(try fast.run(["X": x])["Y"])
        try assertClose(a, reference, rtol: 1e-4, atol: 1e-4)
        try assertClose(b, a, rtol: 1e-4, atol: 1e-4)
    }
}

/// BatchNormalization -> Mul -> Add -> Relu with per-channel constants (DenseNet's Caffe2 export,
/// after a Concat so no Conv absorbs it) becomes one ChannelAffine, checked against the plain path.
final class ChannelAffineFusionTests: XCTestCase {
    private func model() -> Model {
        var rng = SplitMix64(seed: 3)
        func vec(_ n: Int, _ lo: Float, _ hi: Float) -> Tensor { Tensor(validShape: [n], scalars: (0..<n).map { _ in rng.uniform(lo, hi) }) }
        let c = 5
        let inits: [String: Tensor] = [
            "s": vec(c, 0.5, 2), "b": vec(c, -1, 1), "m": vec(c, -1, 1), "v": vec(c, 0.1, 3),
            "mul": Tensor(validShape: [c, 1, 1], scalars: (0..<c).map { _ in rng.uniform(-2, 2) }),
            "add": Tensor(validShape: [1, c, 1, 1], scalars: (0..<c).map { _ in rng.uniform(-1, 1) }),
        ]
        let g = Graph(name: "g", nodes: [
            Node(name: "bn", opType: "BatchNormalization", domain: "", inputs: ["X", "s", "b", "m", "v"], outputs: ["B"],
                 attributes: ["epsilon": .float(1e-3)]),
            Node(name: "mul", opType: "Mul", domain: "", inputs: ["B", "mul"], outputs: ["M"], attributes: [:]),
            Node(name: "add", opType: "Add", domain: "", inputs: ["add", "M"], outputs: ["A"], attributes: [:]),
            Node(name: "relu", opType: "Relu", domain: "", inputs: ["A"], outputs: ["Y"], attributes: [:]),
        ], inputs: [ValueInfo(name: "X", type: .float32, shape: [.known(2), .known(c), .known(3), .known(7)])],
           outputs: [ValueInfo(name: "Y", type: .float32, shape: nil)], initializers: inits, valueInfo: [:])
        return Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                     opsets: ["": 15], graph: g, keepAlive: [])
    }

    func testBatchNormScaleShiftReluBecomesOneChannelAffine() throws {
        let plain = try InferenceSession(model: model(), options: .init(optimize: false))
        let fast = try InferenceSession(model: model(), options: .init(optimize: true))
        XCTAssertEqual(fast.metadata.opHistogram, ["com.swiftonnx::ChannelAffine": 1], "\(fast.metadata.opHistogram)")
        var rng = SplitMix64(seed: 9)
        let x = try Tensor(shape: [2, 5, 3, 7], scalars: (0..<210).map { _ in rng.uniform(-3, 3) })
        let a = try XCTUnwrap(try plain.run(["X": x])["Y"])
        let b = try XCTUnwrap(try fast.run(["X": x])["Y"])
        XCTAssertTrue(try a.doubles().contains { $0 == 0 } && a.doubles().contains { $0 > 0 }, "the test data exercises the Relu")
        try assertClose(b, a, rtol: 1e-5, atol: 1e-6)
    }

    func testInputNormalizationMulAddBecomesOneChannelAffine() throws {
        func model() -> Model {
            let g = Graph(name: "g", nodes: [
                Node(name: "scale", opType: "Mul", domain: "", inputs: ["s", "X"], outputs: ["M"], attributes: [:]),
                Node(name: "shift", opType: "Add", domain: "", inputs: ["M", "b"], outputs: ["Y"], attributes: [:]),
            ], inputs: [ValueInfo(name: "X", type: .float32, shape: [.known(1), .known(3), .known(4), .known(5)])],
               outputs: [ValueInfo(name: "Y", type: .float32, shape: nil)],
               initializers: ["s": Tensor(validShape: [3, 1, 1], scalars: [Float(0.5), -2, 3]),
                              "b": Tensor(validShape: [1, 3, 1, 1], scalars: [Float(-0.25), 1, 0.125])], valueInfo: [:])
            return Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                         opsets: ["": 15], graph: g, keepAlive: [])
        }
        let plain = try InferenceSession(model: model(), options: .init(optimize: false))
        let fast = try InferenceSession(model: model(), options: .init(optimize: true))
        XCTAssertEqual(fast.metadata.opHistogram, ["com.swiftonnx::ChannelAffine": 1], "\(fast.metadata.opHistogram)")
        var rng = SplitMix64(seed: 4)
        let x = try Tensor(shape: [1, 3, 4, 5], scalars: (0..<60).map { _ in rng.uniform(-3, 3) })
        let a = try XCTUnwrap(try plain.run(["X": x])["Y"])
        let b = try XCTUnwrap(try fast.run(["X": x])["Y"])
        // x * s + b in the same two roundings: equal.
        XCTAssertEqual(try b.doubles(), try a.doubles())
    }
}

final class ResidualScaleFusionTests: XCTestCase {
    /// x + x * s with s per channel (a residual squeeze-and-excitation block) becomes one ResidualMul
    /// pass, either operand order, known or symbolic sizes, with the bits of the plain path. A
    /// same-shaped s (nothing to gain) and an x * s read twice stay as they are.
    func testResidualScaleBecomesOnePass() throws {
        func model(swapAdd: Bool, swapMul: Bool, fullScale: Bool = false, mulReadTwice: Bool = false,
                   symbolic: Bool = false) -> Model {
            var nodes = [
                Node(name: "gap", opType: "GlobalAveragePool", domain: "", inputs: ["X"], outputs: ["P"], attributes: [:]),
                // (a same-shaped scale is Tanh(X): Sigmoid(X) times X would be SiLU, which FuseSiLU takes)
                Node(name: "sig", opType: fullScale ? "Tanh" : "Sigmoid", domain: "", inputs: [fullScale ? "X" : "P"],
                     outputs: ["S"], attributes: [:]),
                Node(name: "mul", opType: "Mul", domain: "", inputs: swapMul ? ["S", "X"] : ["X", "S"], outputs: ["M"], attributes: [:]),
                Node(name: "add", opType: "Add", domain: "", inputs: swapAdd ? ["M", "X"] : ["X", "M"], outputs: ["Y"], attributes: [:]),
            ]
            var outs = [ValueInfo(name: "Y", type: .float32, shape: nil)]
            if mulReadTwice {
                nodes.append(Node(name: "neg", opType: "Neg", domain: "", inputs: ["M"], outputs: ["N"], attributes: [:]))
                outs.append(ValueInfo(name: "N", type: .float32, shape: nil))
            }
            let shape: [Dim] = symbolic ? [.symbolic("n"), .known(6), .symbolic("h"), .symbolic("w")]
                                        : [.known(2), .known(6), .known(5), .known(7)]
            let g = Graph(name: "g", nodes: nodes, inputs: [ValueInfo(name: "X", type: .float32, shape: shape)],
                          outputs: outs, initializers: [:], valueInfo: [:])
            return Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                         opsets: ["": 15], graph: g, keepAlive: [])
        }
        var rng = SplitMix64(seed: 17)
        let x = try Tensor(shape: [2, 6, 5, 7], scalars: (0..<420).map { _ in rng.uniform(-3, 3) })
        for (swapAdd, swapMul, symbolic) in [(false, false, false), (true, false, false), (false, true, false),
                                             (true, true, false), (false, false, true)] {
            let plain = try InferenceSession(model: model(swapAdd: swapAdd, swapMul: swapMul, symbolic: symbolic),
                                             options: .init(optimize: false))
            let fast = try InferenceSession(model: model(swapAdd: swapAdd, swapMul: swapMul, symbolic: symbolic),
                                            options: .init(optimize: true))
            XCTAssertEqual(fast.metadata.opHistogram,
                           ["GlobalAveragePool": 1, "Sigmoid": 1, "com.swiftonnx::ResidualMul": 1], "\(fast.metadata.opHistogram)")
            let a = try XCTUnwrap(try plain.run(["X": x])["Y"])
            for _ in 0..<3 {   // a model with symbolic sizes gets its shape plan on the second run
                let b = try XCTUnwrap(try fast.run(["X": x])["Y"])
                XCTAssertEqual(b.shape, [2, 6, 5, 7])
                XCTAssertEqual(try b.doubles(), try a.doubles())
            }
        }
        for m in [model(swapAdd: false, swapMul: false, fullScale: true),
                  model(swapAdd: false, swapMul: false, mulReadTwice: true)] {
            let fast = try InferenceSession(model: m, options: .init(optimize: true))
            let plain = try InferenceSession(model: m, options: .init(optimize: false))
            XCTAssertEqual(fast.metadata.opHistogram["Mul"], 1, "\(fast.metadata.opHistogram)")
            XCTAssertEqual(fast.metadata.opHistogram["Add"], 1, "\(fast.metadata.opHistogram)")
            XCTAssertEqual(try XCTUnwrap(try fast.run(["X": x])["Y"]).doubles(), try XCTUnwrap(try plain.run(["X": x])["Y"]).doubles())
        }
    }
}

/// PP-LCNet's learnable affine block after a convolution's activation (Conv -> HardSwish -> Mul by a
/// scalar -> Add of a scalar, and the same after Relu) goes into the FusedConv's epilogue: one op
/// per convolution, the same bits as the plain path (through the GEMM, depthwise and Winograd
/// convolutions).
final class ConvPostAffineFusionTests: XCTestCase {
    private func model() -> Model {
        var rng = SplitMix64(seed: 21)
        func t(_ shape: [Int], _ lo: Float, _ hi: Float) -> Tensor {
            Tensor(validShape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in rng.uniform(lo, hi) })
        }
        let c = 24
        var inits: [String: Tensor] = [
            "w1": t([c, 8, 1, 1], -0.5, 0.5), "b1": t([c], -0.2, 0.2),
            "w2": t([c, 1, 3, 3], -0.5, 0.5), "b2": t([c], -0.2, 0.2),
            "w3": t([c, c, 3, 3], -0.2, 0.2),
        ]
        let convs = [
            Node(name: "c1", opType: "Conv", domain: "", inputs: ["X", "w1", "b1"], outputs: ["C1"], attributes: [:]),
            Node(name: "h1", opType: "HardSwish", domain: "", inputs: ["C1"], outputs: ["H1"], attributes: [:]),
            Node(name: "c2", opType: "Conv", domain: "", inputs: ["A1", "w2", "b2"], outputs: ["C2"],
                 attributes: ["group": .int(c), "pads": .ints([1, 1, 1, 1])]),
            Node(name: "r2", opType: "Relu", domain: "", inputs: ["C2"], outputs: ["H2"], attributes: [:]),
            Node(name: "c3", opType: "Conv", domain: "", inputs: ["A2", "w3"], outputs: ["C3"],
                 attributes: ["pads": .ints([1, 1, 1, 1])]),
            Node(name: "h3", opType: "HardSwish", domain: "", inputs: ["C3"], outputs: ["H3"], attributes: [:]),
        ]
        // each activation is followed by Mul by a scalar (rank 1) and Add of a scalar (rank 0)
        var nodes: [Node] = []
        for (i, h) in ["H1", "H2", "H3"].enumerated() {
            nodes += convs[(2 * i)..<(2 * i + 2)]
            let s = "as\(i)", b = "ab\(i)"
            inits[s] = Tensor(validShape: [1], scalars: [rng.uniform(0.5, 1.5)])
            inits[b] = Tensor(validShape: [], scalars: [rng.uniform(-0.5, 0.5)])
            nodes.append(Node(name: "mul\(i)", opType: "Mul", domain: "", inputs: [s, h], outputs: ["M\(i)"], attributes: [:]))
            nodes.append(Node(name: "add\(i)", opType: "Add", domain: "", inputs: ["M\(i)", b],
                              outputs: [i == 2 ? "Y" : "A\(i + 1)"], attributes: [:]))
        }
        let g = Graph(name: "g", nodes: nodes,
                      inputs: [ValueInfo(name: "X", type: .float32, shape: [.known(1), .known(8), .known(12), .known(10)])],
                      outputs: [ValueInfo(name: "Y", type: .float32, shape: nil)], initializers: inits, valueInfo: [:])
        return Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                     opsets: ["": 15], graph: g, keepAlive: [])
    }

    func testActivationThenScalarAffineGoesIntoTheConvEpilogue() throws {
        let plain = try InferenceSession(model: model(), options: .init(optimize: false))
        let fast = try InferenceSession(model: model(), options: .init(optimize: true))
        XCTAssertEqual(fast.metadata.opHistogram, ["com.swiftonnx::FusedConv": 3], "\(fast.metadata.opHistogram)")
        var rng = SplitMix64(seed: 5)
        let x = try Tensor(shape: [1, 8, 12, 10], scalars: (0..<960).map { _ in rng.uniform(-3, 3) })
        let a = try XCTUnwrap(try plain.run(["X": x])["Y"])
        let b = try XCTUnwrap(try fast.run(["X": x])["Y"])
        XCTAssertEqual(a.shape, [1, 24, 12, 10])
        // the conv and activation round as before and the affine map is a Mul then an Add: equal bits
        XCTAssertEqual(try b.doubles(), try a.doubles())
    }
}
