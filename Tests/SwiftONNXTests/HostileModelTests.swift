import Foundation
import XCTest
@testable import SwiftONNX

/// Protobuf wire bytes written by hand, for models no exporter would write.
private struct Wire {
    var bytes: [UInt8] = []
    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    mutating func int(_ field: Int, _ v: Int) { varint(UInt64(field << 3)); varint(UInt64(v)) }
    mutating func bytesField(_ field: Int, _ b: [UInt8]) { varint(UInt64(field << 3 | 2)); varint(UInt64(b.count)); bytes += b }
    mutating func string(_ field: Int, _ s: String) { bytesField(field, Array(s.utf8)) }
}

/// A ModelProto whose graph holds `levels` If nodes nested through their then_branch: every
/// level adds three message levels (graph -> node -> attribute), so the deepest message (the
/// innermost graph's node) is at 3 + 3 * levels: the model, its graph, the levels, that node.
private func nestedIfModel(levels: Int, opset: Int = 13) -> [UInt8] {
    var inner = Wire()   // innermost graph: y = Identity(x)
    var id = Wire(); id.string(1, "x"); id.string(2, "y"); id.string(4, "Identity")
    inner.bytesField(1, id.bytes)
    inner.string(2, "g\(levels)")
    var out = Wire(); out.string(1, "y")
    inner.bytesField(12, out.bytes)
    var graph = inner.bytes
    for level in stride(from: levels - 1, through: 0, by: -1) {
        var attr = Wire(); attr.string(1, "then_branch"); attr.bytesField(6, graph); attr.int(20, 5)
        var node = Wire(); node.string(1, "c"); node.string(2, "y"); node.string(4, "If"); node.bytesField(5, attr.bytes)
        var g = Wire(); g.bytesField(1, node.bytes); g.string(2, "g\(level)")
        var o = Wire(); o.string(1, "y"); g.bytesField(12, o.bytes)
        graph = g.bytes
    }
    var opsetID = Wire(); opsetID.int(2, opset)
    var model = Wire(); model.int(1, 8); model.bytesField(8, opsetID.bytes); model.bytesField(7, graph)
    return model.bytes
}

final class HostileModelTests: XCTestCase {
    func testNestingDepthIsMeasuredOnTheWire() {
        for levels in [0, 1, 5, 30] {
            let bytes = nestedIfModel(levels: levels)
            XCTAssertEqual(bytes.withUnsafeBytes { ProtoNesting.depth($0) }, 3 + 3 * levels, "\(levels) levels")
        }
        // The walk stops as soon as the limit is passed.
        XCTAssertEqual(nestedIfModel(levels: 40).withUnsafeBytes { ProtoNesting.depth($0) }, ProtoNesting.maxDepth + 1)
    }

    /// Thousands of nested subgraphs used to overflow the stack (SIGSEGV) in protobuf-c's recursive
    /// unpacking; now the loader refuses them before anything recurses.
    func testDeeplyNestedSubgraphsAreRefusedNotCrashed() throws {
        for levels in [33, 3000] {
            let bytes = nestedIfModel(levels: levels)
            XCTAssertThrowsError(try InferenceSession(modelBytes: bytes)) { e in
                guard case .invalidModel(_, let reason)? = e as? ONNXError else { return XCTFail("\(levels) levels: \(e)") }
                XCTAssertTrue(reason.contains("nest more than 100 levels"), reason)
            }
        }
        // The same file on disk takes the mapped path.
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("swiftonnx-nested-\(getpid()).onnx")
        try Data(nestedIfModel(levels: 3000)).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        XCTAssertThrowsError(try InferenceSession(contentsOf: url)) { e in
            guard case .invalidModel(let path, _)? = e as? ONNXError else { return XCTFail("\(e)") }
            XCTAssertEqual(path, url.path)
        }
        // 30 levels (93 message levels) are within the limit: the loader reads the whole tree.
        let model = try nestedIfModel(levels: 30).withUnsafeBytes { try ModelLoader.load(bytes: Array($0)) }
        var depth = 0
        var g: Graph? = model.graph
        while let cur = g, let n = cur.nodes.first, case .graph(let sub)? = n.attributes["then_branch"] { depth += 1; g = sub }
        XCTAssertEqual(depth, 30)
    }

    func testOpsetsAndIRVersionsBeyondTheNewestAreRefused() throws {
        func relu(opsets: [String: Int], ir: Int = 8) -> Model {
            let g = graph("g", [node("Relu", ["x"], ["y"])], inputs: [vi("x", .float32, [2])], outputs: [vi("y", .float32, [2])])
            return Model(irVersion: ir, producerName: "", producerVersion: "", domain: "", modelVersion: 0, docString: "",
                         opsets: opsets, graph: g, keepAlive: [])
        }
        XCTAssertNoThrow(try InferenceSession(model: relu(opsets: ["": 28]), options: .init()))
        XCTAssertThrowsError(try InferenceSession(model: relu(opsets: ["": 29]), options: .init())) { e in
            XCTAssertEqual(e as? ONNXError, .unsupportedOpset(domain: "", version: 29, newest: 28))
            XCTAssertEqual("\(e)", "the model imports opset 29 of ai.onnx; this runtime supports ai.onnx opsets 1 to 28")
        }
        XCTAssertThrowsError(try InferenceSession(model: relu(opsets: ["": 1000]), options: .init())) { e in
            XCTAssertEqual(e as? ONNXError, .unsupportedOpset(domain: "", version: 1000, newest: 28))
        }
        XCTAssertThrowsError(try InferenceSession(model: relu(opsets: ["": 0]), options: .init())) { e in
            XCTAssertEqual(e as? ONNXError, .unsupportedOpset(domain: "", version: 0, newest: 28))
        }
        XCTAssertThrowsError(try InferenceSession(model: relu(opsets: ["": 17, "ai.onnx.ml": 99]), options: .init())) { e in
            XCTAssertEqual(e as? ONNXError, .unsupportedOpset(domain: "ai.onnx.ml", version: 99, newest: 5))
        }
        XCTAssertThrowsError(try InferenceSession(model: relu(opsets: ["": 17], ir: 15), options: .init())) { e in
            XCTAssertEqual(e as? ONNXError, .unsupportedIRVersion(version: 15, newest: 14))
        }
        // A domain this runtime has no version table for is judged op by op, as before.
        XCTAssertNoThrow(try InferenceSession(model: relu(opsets: ["": 17, "com.example": 400]), options: .init()))
    }

    /// Public initializers throw a typed error on inconsistent arguments instead of trapping.
    func testTensorInitializersThrowOnInconsistentArguments() throws {
        func reason(_ body: () throws -> Tensor) -> String? {
            do { _ = try body(); return nil } catch let ONNXError.invalidInput(_, reason) { return reason } catch { return "\(error)" }
        }
        XCTAssertEqual(reason { try Tensor(shape: [2, 3], scalars: [Float](repeating: 0, count: 5)) },
                       "5 scalars do not fill shape [2, 3] (6 elements)")
        XCTAssertEqual(reason { try Tensor(shape: [2, -3], scalars: [Float]()) }, "negative dimension in [2, -3]")
        XCTAssertEqual(reason { try Tensor(shape: [1 << 40, 1 << 40], scalars: [Int64]()) }, "shape [1099511627776, 1099511627776] is too large")
        XCTAssertEqual(reason { try Tensor(shape: [3], strings: ["a"]) }, "1 strings do not fill shape [3] (3 elements)")
        XCTAssertEqual(reason { try Tensor(dtype: .float32, shape: [-1], bytes: []) }, "negative dimension in [-1]")
        let t = try Tensor(shape: [2, 2], scalars: [1, 2, 3, 4] as [Float])
        XCTAssertEqual(try t.scalars(as: Float.self), [1, 2, 3, 4])
        XCTAssertEqual(try Tensor(shape: [0, 5], scalars: [Float]()).shape, [0, 5])
    }
}
