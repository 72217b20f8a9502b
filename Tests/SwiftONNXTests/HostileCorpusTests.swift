import Foundation
import XCTest
@testable import SwiftONNX

/// The hostile-input corpus (Resources/hostile, written by make_hostile.py): every case must end in
/// its ONNXError case with its message, quickly, through the API in the order `swift-onnx run`
/// uses (inputs read, session created, run). scripts/check_hostile_cli.py runs the same cases
/// through the command line (exit status, stderr, time and memory).
final class HostileCorpusTests: XCTestCase {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Resources/hostile")

    struct Case {
        let file: String, inputs: [(name: String, file: String)], error: String, message: String
    }

    static func cases() throws -> [Case] {
        let text = try String(contentsOf: corpus.appendingPathComponent("cases.tsv"), encoding: .utf8)
        return text.split(separator: "\n").dropFirst().map { line in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            let inputs = f[1] == "-" ? [] : f[1].split(separator: " ").map { spec -> (String, String) in
                let p = spec.split(separator: "=", maxSplits: 1).map(String.init)
                return (p[0], p[1])
            }
            return Case(file: f[0], inputs: inputs, error: f[2], message: f[3])
        }
    }

    static func readInput(_ path: String) throws -> Tensor {
        if path.hasSuffix(".pb") {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            return try TensorProto.decode([UInt8](data), path: path).tensor
        }
        return try NPY.read(path: path)
    }

    func testEveryHostileCaseGivesItsTypedError() throws {
        let cases = try Self.cases()
        XCTAssertGreaterThanOrEqual(cases.count, 40)
        // The symlink case: a link inside the model's folder to a file outside it.
        let outside = FileManager.default.temporaryDirectory.appendingPathComponent("swiftonnx-outside-\(getpid()).bin")
        try Data(count: 8).write(to: outside)
        let link = Self.corpus.appendingPathComponent("link_to_outside.bin")
        try? FileManager.default.removeItem(at: link)
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: outside)
        defer {
            try? FileManager.default.removeItem(at: link)
            try? FileManager.default.removeItem(at: outside)
        }
        var seen = Set<String>()
        for c in cases {
            let label = "\(c.file) \(c.inputs.map { "\($0.name)=\($0.file)" }.joined(separator: " "))"
            XCTAssertTrue(seen.insert(label).inserted, "duplicate case \(label)")
            let start = Date()
            do {
                var feeds: [String: Tensor] = [:]
                for (name, file) in c.inputs {
                    feeds[name] = try Self.readInput(Self.corpus.appendingPathComponent(file).path)
                }
                let session = try InferenceSession(contentsOf: Self.corpus.appendingPathComponent(c.file))
                _ = try session.run(feeds)
                XCTFail("\(label): no error (expected \(c.error): \(c.message))")
            } catch let e as ONNXError {
                let kind = Mirror(reflecting: e).children.first?.label ?? "\(e)"
                XCTAssertEqual(kind, c.error, "\(label): \(e)")
                XCTAssertTrue("\(e)".contains(c.message), "\(label): '\(e)' does not say '\(c.message)'")
                XCTAssertEqual(e.localizedDescription, "\(e)", label)
            } catch {
                XCTFail("\(label): not an ONNXError: \(error)")
            }
            XCTAssertLessThan(Date().timeIntervalSince(start), 2, label)
        }
    }

    /// Found by the fuzzer (Fuzz/regressions/model/topk-scalar-axis.onnx): TopK on a scalar indexed
    /// axis 0 of an empty shape in shape inference. A scalar has no axes: a typed error, for every op
    /// that takes an axis (LpNormalization alone treats a scalar as one element, as before).
    func testAxisOfAScalarIsATypedError() throws {
        let url = HostileCorpusTests.corpus.deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz/regressions/model/topk-scalar-axis.onnx")
        // Shape inference leaves the shape unknown; the run refuses the axis.
        let s = try InferenceSession(contentsOf: url)
        XCTAssertThrowsError(try s.run(["x": Tensor(scalar: Int64(3)), "k": Tensor(shape: [1], scalars: [Int64(1)])])) { e in
            XCTAssertTrue("\(e)".contains("TopK: input must have rank >= 1"), "\(e)")
        }
        XCTAssertThrowsError(try normalizeAxis(0, rank: 0))
        XCTAssertThrowsError(try normalizeAxis(-1, rank: 0))
        XCTAssertEqual(try normalizeAxis(0, rank: 0, scalarAllowed: true), 0)
        XCTAssertEqual(try normalizeAxis(-1, rank: 3), 2)
        XCTAssertThrowsError(try normalizeAxis(Int.min, rank: 3))
    }
}
