import Foundation
import XCTest
@testable import SwiftONNX

/// ONNX Runtime's transformer contrib ops (com.microsoft Attention, MultiHeadAttention,
/// GroupQueryAttention, RotaryEmbedding, SkipLayerNormalization, SkipSimplifiedLayerNormalization,
/// EmbedLayerNormalization, FastGelu, BiasGelu, Gelu, QuickGelu, and SimplifiedLayerNormalization)
/// against ONNX Runtime's outputs: one-op models in many configurations, and the exports of
/// Models/transformers rewritten by ONNX Runtime's transformer optimizer, the form models ship in.
/// Made by Models/make_contrib.py, listed in Models/MANIFEST-contrib.tsv, committed under
/// Models/transformers/contrib with their inputs and outputs (reference/<stem>/). Each model is also
/// run without the optimizing passes.
final class ContribOpModelTests: XCTestCase {
    static var dir: URL { TransformerModelTests.dir.appendingPathComponent("contrib") }

    func manifest() throws -> [(file: String, op: String)] {
        let url = RealModelTests.modelsDir.appendingPathComponent("MANIFEST-contrib.tsv")
        let text = try String(contentsOf: url, encoding: .utf8)
        return text.split(separator: "\n").dropFirst().compactMap {
            let f = $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return f.count >= 2 ? (f[0], f[1]) : nil
        }
    }

    func check(where include: (String, String) -> Bool, file: StaticString = #filePath, line: UInt = #line) throws {
        let models = try manifest().filter { include($0.file, $0.op) }
        XCTAssertFalse(models.isEmpty, "no models selected in MANIFEST-contrib.tsv", file: file, line: line)
        for m in models {
            let stem = String(m.file.dropLast(".onnx".count))
            do {
                try TransformerModelTests.compareWithReference(model: Self.dir.appendingPathComponent(m.file),
                                                               reference: Self.dir.appendingPathComponent("reference").appendingPathComponent(stem))
            } catch {
                XCTFail("\(m.file): \(error)", file: file, line: line)
            }
        }
    }

    func testAttention() throws { try check { f, op in op == "Attention" && !f.contains("ortopt") } }
    func testMultiHeadAttention() throws { try check { f, op in op == "MultiHeadAttention" && !f.contains("ortopt") } }
    func testGroupQueryAttention() throws { try check { f, op in op == "GroupQueryAttention" && !f.contains("ortopt") } }
    func testRotaryEmbedding() throws { try check { f, op in op == "RotaryEmbedding" && !f.contains("ortopt") } }
    func testNormalizations() throws {
        try check { f, op in op.hasSuffix("LayerNormalization") && !f.contains("ortopt") }
    }
    func testGeluFamily() throws { try check { f, op in op.hasSuffix("Gelu") && !f.contains("ortopt") } }
    /// The exports rewritten by ONNX Runtime's transformer optimizer.
    func testOptimizedExports() throws { try check { f, _ in f.contains("ortopt") } }

    /// The real paraphrase-MiniLM-L3-v2 rewritten by ONNX Runtime's transformer optimizer (Attention with
    /// the QKV projection fused in and mask_filter_value = float lowest, EmbedLayerNormalization,
    /// SkipLayerNormalization, BiasGelu): made in set-up from the fetched model (69 MB, not committed)
    /// by `Models/make_contrib.py --minilm Models/cache/contrib`.
    func testOptimizedMiniLM() throws {
        let dir = RealModelTests.modelsDir.appendingPathComponent("cache/contrib")
        let stem = "paraphrase-MiniLM-L3-v2.ortopt"
        let model = dir.appendingPathComponent(stem + ".onnx")
        guard FileManager.default.fileExists(atPath: model.path) else {
            return XCTFail("\(model.path) is missing: run ./scripts/setup.sh (it runs Models/make_contrib.py --minilm Models/cache/contrib)")
        }
        try TransformerModelTests.compareWithReference(model: model, reference: dir.appendingPathComponent("reference").appendingPathComponent(stem))
    }

    /// Every model of the manifest is picked by one of the tests above.
    func testManifestIsCovered() throws {
        let known = ["Attention", "MultiHeadAttention", "GroupQueryAttention", "RotaryEmbedding"]
        for m in try manifest() where !m.file.contains("ortopt") {
            XCTAssertTrue(known.contains(m.op) || m.op.hasSuffix("LayerNormalization") || m.op.hasSuffix("Gelu"), "\(m.file) (\(m.op)) has no test")
        }
    }
}
