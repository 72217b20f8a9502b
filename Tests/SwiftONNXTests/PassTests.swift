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
        let b = Tensor(shape: [2], scalars: [Float(1), 2])
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
        func vec(_ n: Int, _ lo: Float, _ hi: Float) -> Tensor { Tensor(shape: [n], scalars: (0..<n).map { _ in rng.uniform(lo, hi) }) }
        let c = 5
        let inits: [String: Tensor] = [
            "s": vec(c, 0.5, 2), "b": vec(c, -1, 1), "m": vec(c, -1, 1), "v": vec(c, 0.1, 3),
            "mul": Tensor(shape: [c, 1, 1], scalars: (0..<c).map { _ in rng.uniform(-2, 2) }),
            "add": Tensor(shape: [1, c, 1, 1], scalars: (0..<c).map { _ in rng.uniform(-1, 1) }),
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
        let x = Tensor(shape: [2, 5, 3, 7], scalars: (0..<210).map { _ in rng.uniform(-3, 3) })
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
               initializers: ["s": Tensor(shape: [3, 1, 1], scalars: [Float(0.5), -2, 3]),
                              "b": Tensor(shape: [1, 3, 1, 1], scalars: [Float(-0.25), 1, 0.125])], valueInfo: [:])
            return Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                         opsets: ["": 15], graph: g, keepAlive: [])
        }
        let plain = try InferenceSession(model: model(), options: .init(optimize: false))
        let fast = try InferenceSession(model: model(), options: .init(optimize: true))
        XCTAssertEqual(fast.metadata.opHistogram, ["com.swiftonnx::ChannelAffine": 1], "\(fast.metadata.opHistogram)")
        var rng = SplitMix64(seed: 4)
        let x = Tensor(shape: [1, 3, 4, 5], scalars: (0..<60).map { _ in rng.uniform(-3, 3) })
        let a = try XCTUnwrap(try plain.run(["X": x])["Y"])
        let b = try XCTUnwrap(try fast.run(["X": x])["Y"])
        // x * s + b in the same two roundings: equal.
        XCTAssertEqual(try b.doubles(), try a.doubles())
    }
}
