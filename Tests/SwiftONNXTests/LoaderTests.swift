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

    /// Misaligned weights are copied out of the model file with pread while it loads: the bytes equal
    /// the mapping's at any offset; a range outside the mapping, or a read after the load, is refused.
    func testMappedFileReadCopiesTheMappedBytes() throws {
        let path = NSTemporaryDirectory() + "swiftonnx-mapped-\(getpid()).bin"
        let bytes = (0..<20_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try MappedFile(path: path)
        let base = UnsafeRawPointer(try XCTUnwrap(file.base))
        let dst = UnsafeMutableRawPointer.allocate(byteCount: 20_000, alignment: 64)
        defer { dst.deallocate() }
        for (offset, count) in [(0, 20_000), (1, 4099), (4095, 3), (19_999, 1)] {
            XCTAssertTrue(file.read(UnsafeRawBufferPointer(start: base + offset, count: count), into: dst))
            XCTAssertEqual(Array(UnsafeRawBufferPointer(start: dst, count: count)), Array(bytes[offset..<(offset + count)]))
        }
        XCTAssertFalse(file.read(UnsafeRawBufferPointer(start: base + 19_999, count: 2), into: dst))
        file.finishLoading()
        XCTAssertFalse(file.read(UnsafeRawBufferPointer(start: base, count: 4), into: dst))
        XCTAssertEqual(base.load(fromByteOffset: 5, as: UInt8.self), bytes[5], "the mapping outlives the load")
    }

    /// Weights split out of the unpacked message (RawDataSplit) decode to the same tensors as
    /// weights protobuf-c unpacks, and the stripped message is the same model otherwise.
    func testRawDataSplitGivesTheSameModel() throws {
        let bytes = try [UInt8](Data(contentsOf: resource("conv_bn_relu.onnx")))
        try bytes.withUnsafeBytes { buf in
            XCTAssertNil(RawDataSplit.split(buf), "no raw_data of 4 KiB or more here: nothing to split")
            let split = try XCTUnwrap(RawDataSplit.split(buf, minBytes: 16))
            XCTAssertFalse(split.slices.isEmpty)
            XCTAssertLessThan(split.message.count, bytes.count)
            let whole = try XCTUnwrap(unpackModelProto(buf))
            let stripped = try XCTUnwrap(split.message.withUnsafeBytes { unpackModelProto($0) })
            let g0 = try XCTUnwrap(whole.pointer.pointee.graph).pointee, g1 = try XCTUnwrap(stripped.pointer.pointee.graph).pointee
            XCTAssertEqual(g0.n_initializer, g1.n_initializer)
            XCTAssertEqual(g0.n_node, g1.n_node)
            for i in 0..<g0.n_initializer {
                let a = try decodeTensor(g0.initializer[i]!, owner: whole, external: nil)
                let raw = split.slices[i].map { UnsafeRawBufferPointer(rebasing: buf[$0]) }
                XCTAssertEqual(raw == nil, g1.initializer[i]!.pointee.has_raw_data != 0, "initializer \(i): split out or kept")
                let b = try decodeTensor(g1.initializer[i]!, owner: stripped, external: nil, raw: raw, rawOwner: stripped)
                XCTAssertEqual(cString(g0.initializer[i]!.pointee.name), cString(g1.initializer[i]!.pointee.name))
                XCTAssertEqual(a.shape, b.shape)
                XCTAssertEqual(try a.doubles(), try b.doubles())
            }
            // Not protobuf wire format (a group wire type, a length past the end): no split.
            for junk: [UInt8] in [[0x3B, 0x01], [0x3A, 0x7F, 0x00], [0x00], [0xFF, 0xFF]] {
                junk.withUnsafeBytes { XCTAssertNil(RawDataSplit.split($0, minBytes: 1)) }
            }
        }
        // Loading a file goes through the split and runs as before.
        let x = try loadPB("conv_bn_relu_input.pb")
        let reference = try loadPB("conv_bn_relu_output.pb")
        let session = try InferenceSession(contentsOf: resource("conv_bn_relu.onnx"), options: .init(optimize: false))
        try assertClose(try XCTUnwrap(try session.run(["X": x])["Y"]), reference, rtol: 1e-4, atol: 1e-4)
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
