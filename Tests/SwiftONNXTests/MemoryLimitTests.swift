import Foundation
import XCTest
@testable import SwiftONNX

/// SessionOptions.memoryLimit: what would cross it fails with a typed error, before allocating,
/// saying where; what fits runs; the session's count of bytes in use goes back down.
final class MemoryLimitTests: XCTestCase {
    private func model(_ g: Graph) -> Model {
        Model(irVersion: 8, producerName: "", producerVersion: "", domain: "", modelVersion: 0, docString: "",
              opsets: ["": 17], graph: g, keepAlive: [])
    }

    private func limitError(_ e: Error, file: StaticString = #filePath, line: UInt = #line)
        -> (during: String, requested: Int, inUse: Int, limit: Int)? {
        guard case let .memoryLimitExceeded(during, requested, inUse, limit)? = e as? ONNXError else {
            XCTFail("expected memoryLimitExceeded, got \(e)", file: file, line: line)
            return nil
        }
        XCTAssertTrue("\(e)".contains("SessionOptions.memoryLimit"), "\(e)", file: file, line: line)
        return (during, requested, inUse, limit)
    }

    func testDefaultIsThreeQuartersOfPhysicalMemory() {
        let physical = Int(ProcessInfo.processInfo.physicalMemory)
        XCTAssertEqual(SessionOptions().memoryLimit, physical / 4 * 3)
        XCTAssertEqual(SessionOptions(memoryLimit: -5).memoryLimit, 0)
    }

    /// Expand's output size comes from a tensor fed at run time: the run that would need 16 MiB
    /// under an 8 MiB limit fails at that node, and the session runs on afterwards.
    func testDataDependentAllocationOverTheLimitFailsAtItsNode() throws {
        let g = graph("g", [node("Expand", ["x", "s"], ["y"])],
                      inputs: [vi("x", .float32, [1]), vi("s", .int64, [2])], outputs: [vi("y", .float32)])
        let s = try InferenceSession(model: model(g), options: .init(memoryLimit: 8 << 20))
        XCTAssertEqual(s.memoryInUse, 0)
        let x = try Tensor(shape: [1], scalars: [Float(1.5)])
        do {
            let y = try XCTUnwrap(try s.run(["x": x, "s": try Tensor(shape: [2], scalars: [Int64(256), 1024])])["y"])
            XCTAssertEqual(y.shape, [256, 1024])
            XCTAssertEqual(s.memoryInUse, 1 << 20, "the output the caller holds is counted")
            XCTAssertEqual(try y.scalars(as: Float.self).last, 1.5)
        }
        XCTAssertEqual(s.memoryInUse, 0, "released with the output")
        XCTAssertThrowsError(try s.run(["x": x, "s": try Tensor(shape: [2], scalars: [Int64(4096), 1024])])) { e in
            guard let m = limitError(e) else { return }
            XCTAssertEqual(m.during, "node 'Expand_y' (Expand)")
            XCTAssertEqual(m.requested, 16 << 20)
            XCTAssertEqual(m.inUse, 0)
            XCTAssertEqual(m.limit, 8 << 20)
        }
        XCTAssertEqual(s.memoryInUse, 0)
        let y = try s.run(["x": x, "s": try Tensor(shape: [2], scalars: [Int64(2), 3])])["y"]
        XCTAssertEqual(y?.shape, [2, 3])
    }

    /// An input shape whose intermediates would cross the limit fails; smaller ones run, also after.
    func testInputShapeOverTheLimitFails() throws {
        let g = graph("g", [node("Relu", ["x"], ["r"]), node("Neg", ["r"], ["y"])],
                      inputs: [vi("x", .float32, ["n", 1024])], outputs: [vi("y", .float32)])
        let s = try InferenceSession(model: model(g), options: .init(memoryLimit: 6 << 20))
        // n = 512: 2 MiB for r and 2 MiB for y, 4 MiB at most at once
        for _ in 0..<3 {
            let y = try s.run(["x": try Tensor(shape: [512, 1024], scalars: [Float](repeating: -2, count: 512 * 1024))])["y"]
            XCTAssertEqual(try y?.scalars(as: Float.self).first, 0)
        }
        XCTAssertEqual(s.memoryInUse, 0)
        // n = 1024: r takes 4 MiB, y another 4 MiB while r is alive
        XCTAssertThrowsError(try s.run(["x": try Tensor(shape: [1024, 1024], scalars: [Float](repeating: 1, count: 1 << 20))])) { e in
            guard let m = limitError(e) else { return }
            XCTAssertEqual(m.during, "node 'Neg_y' (Neg)")
            XCTAssertEqual(m.requested, 4 << 20)
            XCTAssertEqual(m.inUse, 4 << 20)
        }
        XCTAssertEqual(s.memoryInUse, 0)
        let y = try s.run(["x": try Tensor(shape: [2, 1024], scalars: [Float](repeating: 3, count: 2048))])["y"]
        XCTAssertEqual(try y?.scalars(as: Float.self).first, -3)
    }

    /// The weights of a model file count from the first one loaded.
    func testWeightsOverTheLimitAreRefusedWhileLoading() throws {
        let url = resource("conv_bn_relu.onnx")
        let full = try InferenceSession(contentsOf: url)
        XCTAssertGreaterThan(full.memoryInUse, 0, "weights are counted")
        XCTAssertThrowsError(try InferenceSession(contentsOf: url, options: .init(memoryLimit: 64))) { e in
            guard let m = limitError(e) else { return }
            XCTAssertEqual(m.during, "loading '\(url.path)'")
            XCTAssertEqual(m.limit, 64)
        }
        let bytes = try [UInt8](Data(contentsOf: url))
        XCTAssertThrowsError(try InferenceSession(modelBytes: bytes, options: .init(memoryLimit: 64))) { e in
            XCTAssertEqual(limitError(e)?.during, "loading the model bytes")
        }
    }

    /// Weights packed for the kernels at plan time count too: a limit that holds the raw weights
    /// but not their packed form fails at the convolution being planned.
    func testPackedWeightsOverTheLimitFailWhilePlanning() throws {
        let w = sinTensor([64, 64, 3, 3])   // 147 KiB; made outside the session, so not counted
        let g = graph("g", [node("Conv", ["x", "w"], ["y"], ["pads": .ints([1, 1, 1, 1])])],
                      inputs: [vi("x", .float32, [1, 64, 16, 16])], outputs: [vi("y", .float32)], initializers: ["w": w])
        XCTAssertThrowsError(try InferenceSession(model: model(g), options: .init(memoryLimit: 100_000))) { e in
            XCTAssertEqual(limitError(e)?.during, "planning node 'Conv_y' (Conv)")
        }
        let s = try InferenceSession(model: model(g), options: .init(memoryLimit: 8 << 20))
        XCTAssertGreaterThan(s.memoryInUse, 147_456, "the Winograd-transformed weights are counted")
        let x = sinTensor([1, 64, 16, 16])
        let y = try XCTUnwrap(try s.run(["x": x])["y"])
        XCTAssertEqual(y.shape, [1, 64, 16, 16])
    }
}
