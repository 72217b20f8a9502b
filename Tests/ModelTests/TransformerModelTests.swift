import Foundation
import XCTest
@testable import SwiftONNX

/// The small transformers of Models/MANIFEST-transformers.tsv (BERT, GPT-2, a Llama-style decoder,
/// ViT, the Whisper encoder and decoder, T5; each exported by the TorchScript exporter at opset 17
/// and the dynamo exporter at opsets 18 and 23, by Models/export_transformers.py) against ONNX
/// Runtime's outputs stored beside them in Models/transformers/reference/<stem>/ (inputs and
/// outputs as .npy, tolerances in io.json: rtol 1e-3, atol 1e-4). Each model is also run without
/// the optimizing passes, which must agree within the same tolerance. The files are committed: no
/// set-up is needed.
final class TransformerModelTests: XCTestCase {
    func testBERT() throws { try checkFamily("bert") }
    func testGPT2() throws { try checkFamily("gpt2") }
    func testLlamaStyle() throws { try checkFamily("llama") }
    func testViT() throws { try checkFamily("vit") }
    func testWhisperEncoder() throws { try checkFamily("whisper_encoder") }
    func testWhisperDecoder() throws { try checkFamily("whisper_decoder") }
    func testT5() throws { try checkFamily("t5") }

    static let families = ["bert", "gpt2", "llama", "vit", "whisper_encoder", "whisper_decoder", "t5"]

    /// Every file of the manifest belongs to a family tested above, and each family has all three exports.
    func testManifestIsCovered() throws {
        let files = try manifestFiles()
        for f in files {
            XCTAssertTrue(Self.families.contains(String(f.prefix(while: { $0 != "." }))), "\(f) has no test")
        }
        for fam in Self.families {
            XCTAssertEqual(files.filter { $0.hasPrefix(fam + ".") }.sorted(),
                           ["ts17", "dynamo18", "dynamo23"].map { "\(fam).\($0).onnx" }.sorted(), fam)
        }
    }

    // MARK: - machinery

    static var dir: URL { RealModelTests.modelsDir.appendingPathComponent("transformers") }

    func manifestFiles() throws -> [String] {
        let url = RealModelTests.modelsDir.appendingPathComponent("MANIFEST-transformers.tsv")
        let text = try String(contentsOf: url, encoding: .utf8)
        return text.split(separator: "\n").dropFirst().compactMap { $0.split(separator: "\t").first.map(String.init) }
    }

    func checkFamily(_ family: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let files = try manifestFiles().filter { $0.hasPrefix(family + ".") }
        XCTAssertFalse(files.isEmpty, "no \(family) files in MANIFEST-transformers.tsv", file: file, line: line)
        for f in files {
            do { try run(f) } catch { XCTFail("\(f): \(error)", file: file, line: line) }
        }
    }

    func run(_ model: String) throws {
        let stem = String(model.dropLast(".onnx".count))
        try Self.compareWithReference(model: Self.dir.appendingPathComponent(model),
                                      reference: Self.dir.appendingPathComponent("reference").appendingPathComponent(stem))
    }

    /// Runs `model` on the inputs stored in `reference` (io.json, input_<i>.npy) with and without the
    /// optimizing passes; both must match the stored ONNX Runtime outputs within io.json's tolerances.
    static func compareWithReference(model url: URL, reference ref: URL) throws {
        let io = try JSONSerialization.jsonObject(with: Data(contentsOf: ref.appendingPathComponent("io.json"))) as? [String: Any]
        guard let io, let inputs = io["inputs"] as? [[String: Any]], let outputs = io["outputs"] as? [[String: Any]] else {
            throw RealModelTests.Failure(description: "\(ref.path)/io.json is unreadable")
        }
        let rtol = io["rtol"] as? Double ?? 1e-3, atol = io["atol"] as? Double ?? 1e-4
        var feeds: [String: Tensor] = [:]
        for i in inputs {
            guard let name = i["name"] as? String, let f = i["file"] as? String else { continue }
            feeds[name] = try NPY.read(contentsOf: ref.appendingPathComponent(f))
        }
        let fast = try InferenceSession(contentsOf: url)
        let plain = try InferenceSession(contentsOf: url, options: .init(optimize: false))
        let got = try fast.run(feeds), unoptimized = try plain.run(feeds)
        var problems: [String] = []
        for o in outputs {
            guard let name = o["name"] as? String, let f = o["file"] as? String else { continue }
            let want = try NPY.read(contentsOf: ref.appendingPathComponent(f))
            guard let g = got[name], let p = unoptimized[name] else { problems.append("output '\(name)' was not produced"); continue }
            if let d = RealModelTests.compare(g, want, rtol: rtol, atol: atol) { problems.append("output '\(name)' vs ONNX Runtime: \(d)") }
            if let d = RealModelTests.compare(g, p, rtol: rtol, atol: atol) { problems.append("output '\(name)' optimized vs unoptimized: \(d)") }
        }
        if !problems.isEmpty { throw RealModelTests.Failure(description: problems.joined(separator: "; ")) }
    }
}
