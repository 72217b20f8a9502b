import Foundation
import XCTest
@testable import SwiftONNX

/// The folder of committed test models (Tests/SwiftONNXTests/Resources).
let testResources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Resources")

func resource(_ name: String) -> URL { testResources.appendingPathComponent(name) }

func loadPB(_ name: String) throws -> Tensor {
    try decodeTensorProto(bytes: [UInt8](Data(contentsOf: resource(name)))).tensor
}

/// Asserts |a - b| <= atol + rtol * |b| element-wise, with equal shapes.
func assertClose(_ a: Tensor, _ b: Tensor, rtol: Double = 1e-4, atol: Double = 1e-5,
                 file: StaticString = #filePath, line: UInt = #line) throws {
    XCTAssertEqual(a.shape, b.shape, "shape", file: file, line: line)
    XCTAssertEqual(a.dtype, b.dtype, "dtype", file: file, line: line)
    let x = try a.doubles(), y = try b.doubles()
    for i in 0..<min(x.count, y.count) where !(abs(x[i] - y[i]) <= atol + rtol * abs(y[i])) {
        XCTFail("element \(i): \(x[i]) vs \(y[i])", file: file, line: line)
        return
    }
}

/// A temporary directory removed at the end of the test.
func temporaryDirectory() throws -> URL {
    let d = FileManager.default.temporaryDirectory.appendingPathComponent("swiftonnx-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
    return d
}
