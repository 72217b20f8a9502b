import Foundation
import XCTest
@testable import SwiftONNX

final class LoaderTests: XCTestCase {
    func testModelMetadataAndGraph() throws {
        let m = try ModelLoader.load(path: resource("conv_bn_relu.onnx").path)
        XCTAssertEqual(m.opsets[""], 17)
        XCTAssertEqual(m.graph.nodes.map(\.opType), ["Conv", "BatchNormalization", "Relu", "Identity", "Conv", "Clip"])
        XCTAssertEqual(m.graph.initializers["W1"]?.shape, [8, 3, 3, 3])
        XCTAssertEqual(m.graph.inputs.map(\.name), ["X"])
        if case .ints(let p)? = m.graph.nodes[0].attributes["pads"] { XCTAssertEqual(p, [1, 1, 1, 1]) } else { XCTFail("pads") }
    }

    func testWeightsAliasTheParsedMessage() throws {
        let m = try ModelLoader.load(path: resource("conv_bn_relu.onnx").path)
        let w = m.graph.initializers["W1"]!
        XCTAssertNotNil(w.storage.owner, "raw_data should be aliased, not copied")
    }

    func testTensorProtoEncodings() throws {
        // float_data, int64_data and raw_data encodings of the same values decode alike.
        let x = try loadPB("conv_bn_relu_input.pb")
        XCTAssertEqual(x.dtype, .float32)
        XCTAssertEqual(x.shape, [1, 3, 10, 12])
    }

    func testDuplicateAndUndefinedValuesAreGraphErrors() throws {
        let dup = Graph(name: "g", nodes: [
            Node(name: "a", opType: "Identity", domain: "", inputs: ["X"], outputs: ["Y"], attributes: [:]),
            Node(name: "b", opType: "Identity", domain: "", inputs: ["X"], outputs: ["Y"], attributes: [:]),
        ], inputs: [ValueInfo(name: "X", type: .float32, shape: [1])],
           outputs: [ValueInfo(name: "Y", type: nil, shape: nil)], initializers: [:], valueInfo: [:])
        XCTAssertThrowsError(try PlanBuilder(registry: .standard, opsets: ["": 17]).compile(dup)) { e in
            XCTAssertTrue("\(e)".contains("produced twice"), "\(e)")
        }
        let undefined = Graph(name: "g", nodes: [
            Node(name: "a", opType: "Identity", domain: "", inputs: ["nowhere"], outputs: ["Y"], attributes: [:]),
        ], inputs: [], outputs: [ValueInfo(name: "Y", type: nil, shape: nil)], initializers: [:], valueInfo: [:])
        XCTAssertThrowsError(try PlanBuilder(registry: .standard, opsets: ["": 17]).compile(undefined)) { e in
            XCTAssertTrue("\(e)".contains("'nowhere'"), "\(e)")
        }
        let cycle = Graph(name: "g", nodes: [
            Node(name: "a", opType: "Identity", domain: "", inputs: ["B"], outputs: ["A"], attributes: [:]),
            Node(name: "b", opType: "Identity", domain: "", inputs: ["A"], outputs: ["B"], attributes: [:]),
        ], inputs: [], outputs: [ValueInfo(name: "A", type: nil, shape: nil)], initializers: [:], valueInfo: [:])
        XCTAssertThrowsError(try PlanBuilder(registry: .standard, opsets: ["": 17]).compile(cycle)) { e in
            XCTAssertTrue("\(e)".contains("cycle"), "\(e)")
        }
    }
}
