import Foundation
import XCTest
@testable import SwiftONNX

final class SessionTests: XCTestCase {
    func testInputsOutputsAndRun() throws {
        let s = try InferenceSession(contentsOf: resource("add_relu.onnx"))
        XCTAssertEqual(s.inputs, [ValueInfo(name: "X", type: .float32, shape: ["batch", 4])])
        XCTAssertEqual(s.outputs.map(\.name), ["Y"])
        let x = try Tensor(shape: [2, 4], scalars: [Float](arrayLiteral: 1, 1, 1, 1, -1, 2, -3, 4))
        let y = try XCTUnwrap(try s.run(["X": x])["Y"])
        XCTAssertEqual(try y.scalars(as: Float.self), [1.5, 0, 3, 0, 0, 1, 0, 1])
    }

    func testMissingUnknownWrongTypeWrongShapeInputs() throws {
        let s = try InferenceSession(contentsOf: resource("add_relu.onnx"))
        let good = try Tensor(shape: [1, 4], scalars: [Float](repeating: 0, count: 4))
        XCTAssertThrowsError(try s.run([:])) { XCTAssertEqual($0 as? ONNXError, .missingInput("X")) }
        XCTAssertThrowsError(try s.run(["X": good, "Z": good])) { XCTAssertEqual($0 as? ONNXError, .unknownInput("Z")) }
        let ints = try Tensor(shape: [1, 4], scalars: [Int32](repeating: 0, count: 4))
        XCTAssertThrowsError(try s.run(["X": ints])) {
            XCTAssertEqual($0 as? ONNXError, .inputTypeMismatch(input: "X", expected: .float32, got: .int32))
        }
        let wrong = try Tensor(shape: [1, 5], scalars: [Float](repeating: 0, count: 5))
        XCTAssertThrowsError(try s.run(["X": wrong])) { e in
            XCTAssertEqual(e as? ONNXError, .inputShapeMismatch(input: "X", expected: ["batch", 4], got: [1, 5]))
            XCTAssertTrue("\(e)".contains("expected shape [\"batch\", 4], got [1, 5]"), "\(e)")
        }
        let rank3 = try Tensor(shape: [1, 1, 4], scalars: [Float](repeating: 0, count: 4))
        XCTAssertThrowsError(try s.run(["X": rank3])) { XCTAssertNotNil($0 as? ONNXError) }
    }

    /// localizedDescription (what apps show) says what was wrong, not "The operation could not be completed".
    func testErrorsHaveALocalizedDescription() throws {
        XCTAssertThrowsError(try InferenceSession(path: "/nonexistent/model.onnx")) { e in
            XCTAssertTrue(e.localizedDescription.contains("/nonexistent/model.onnx"), e.localizedDescription)
            XCTAssertEqual(e.localizedDescription, "\(e)")
        }
        let e: Error = ONNXError.missingInput("X")
        XCTAssertEqual(e.localizedDescription, "missing input 'X'")
    }

    func testTruncatedFileIsAClearError() throws {
        let bytes = try [UInt8](Data(contentsOf: resource("conv_bn_relu.onnx")))
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for cut in [bytes.count / 2, bytes.count - 7, 10] {
            let url = dir.appendingPathComponent("truncated-\(cut).onnx")
            try Data(bytes[0..<cut]).write(to: url)
            XCTAssertThrowsError(try InferenceSession(contentsOf: url)) { e in
                guard case .invalidModel(let path, _)? = e as? ONNXError else { return XCTFail("\(e)") }
                XCTAssertEqual(path, url.path)
            }
        }
    }

    func testNotAnOnnxFileIsAClearError() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let samples: [String: [UInt8]] = [
            "text.onnx": Array("hello, this is not a model\n".utf8),
            "png.onnx": [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52],
            "empty.onnx": [],
            "zeros.onnx": [UInt8](repeating: 0, count: 64),
        ]
        for (name, bytes) in samples {
            let url = dir.appendingPathComponent(name)
            try Data(bytes).write(to: url)
            XCTAssertThrowsError(try InferenceSession(contentsOf: url), name) { e in
                guard case .invalidModel? = e as? ONNXError else { return XCTFail("\(name): \(e)") }
            }
        }
        XCTAssertThrowsError(try InferenceSession(contentsOf: dir.appendingPathComponent("absent.onnx"))) { e in
            guard case .io? = e as? ONNXError else { return XCTFail("\(e)") }
        }
        XCTAssertThrowsError(try InferenceSession(contentsOf: dir)) { e in
            guard case .io? = e as? ONNXError else { return XCTFail("\(e)") }
        }
    }

    func testUnknownOperatorNamesDomainAndOpset() throws {
        XCTAssertThrowsError(try InferenceSession(contentsOf: resource("unknown_op.onnx"))) { e in
            XCTAssertEqual(e as? ONNXError, .unsupportedOperator(op: "FrobnicateTensor", domain: "com.example", opset: 3, node: "mystery"))
            XCTAssertEqual("\(e)", "unsupported operator com.example::FrobnicateTensor (opset 3) at node 'mystery'")
        }
    }

    func testExternalDataIsMappedAndEscapesAreRefused() throws {
        let s = try InferenceSession(contentsOf: resource("external/external.onnx"))
        let y = try XCTUnwrap(try s.run(["X": Tensor(shape: [2, 3], scalars: [Float](repeating: 1, count: 6))])["Y"])
        XCTAssertEqual(try y.scalars(as: Float.self), [1, 2, 3, 4, 5, 6])
        XCTAssertThrowsError(try InferenceSession(contentsOf: resource("external/escaping.onnx"))) { e in
            XCTAssertTrue("\(e)".contains("escapes the model's folder"), "\(e)")
        }
    }

    func testConcurrentRunsFromFourThreads() throws {
        let s = try InferenceSession(contentsOf: resource("conv_bn_relu.onnx"))
        let x = try loadPB("conv_bn_relu_input.pb")
        let expected = try s.run(["X": x])["Y"]!
        let inputs = try (0..<4).map { k in
            try Tensor(shape: x.shape, scalars: (try! x.scalars(as: Float.self)).map { $0 * Float(k + 1) })
        }
        let serial = try inputs.map { try s.run(["X": $0])["Y"]!.scalars(as: Float.self) }
        let results = Locked([[Float]](repeating: [], count: 4))
        let errors = Locked([String]())
        DispatchQueue.concurrentPerform(iterations: 4) { k in
            do {
                for _ in 0..<20 {
                    let r = try s.run(["X": inputs[k]])["Y"]!.scalars(as: Float.self)
                    results.withLock { $0[k] = r }
                    if r != serial[k] { throw ONNXError.invalidGraph("thread \(k) got a different result") }
                }
            } catch {
                errors.withLock { $0.append("\(error)") }
            }
        }
        XCTAssertEqual(errors.current, [])
        XCTAssertEqual(results.current, serial)
        XCTAssertEqual(try s.run(["X": x])["Y"]!.scalars(as: Float.self), try expected.scalars(as: Float.self))
    }
}
