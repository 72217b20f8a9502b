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
