import Foundation
import SwiftONNX

/// Sentence embeddings with a BERT-style encoder (sentence-transformers models such as
/// paraphrase-MiniLM-L3-v2 or all-MiniLM-L6-v2 exported to ONNX): texts are tokenized with the
/// model's `tokenizer.json`, run through the model in batches padded to their longest text, and the
/// token vectors of each text are averaged over its attention mask (mean pooling), then scaled to
/// length 1 (L2 normalization), as sentence-transformers' pipeline does.
///
/// ```swift
/// let embedder = try SentenceEmbedder(modelDirectory: URL(fileURLWithPath: "Models/cache/paraphrase-MiniLM-L3-v2"))
/// let v = try embedder.embed(["A man is eating food.", "A man is eating bread."])
/// print(Pooling.cosineSimilarity(v[0], v[1]))
/// ```
///
/// The model must take `input_ids` (int64 or int32, [batch, tokens]); `attention_mask` and
/// `token_type_ids` are fed when it declares them, and no other input is allowed. The token vectors
/// are the output named `last_hidden_state` or `token_embeddings` when there is one, else the first
/// float output of rank 3 ([batch, tokens, dimension]); `hiddenOutput` overrides. Inputs of fixed
/// sizes are honoured: a fixed token count pads (and truncates) every text to it, a fixed batch size
/// runs that many texts at a time.
public struct SentenceEmbedder: Sendable {
    /// The model's session.
    public let session: InferenceSession
    /// The tokenizer: the model's `tokenizer.json`, with padding to the longest text of a batch and
    /// the file's truncation (or `maxLength`).
    public let tokenizer: WordPieceTokenizer
    /// The model file.
    public let modelPath: String
    /// The output whose token vectors are pooled.
    public let hiddenOutput: String
    /// The token vectors' length when the model declares it (384 for MiniLM), else nil.
    public let dimension: Int?

    private let idsType: DType
    private let feedsMask: Bool
    private let maskType: DType
    private let feedsTypeIds: Bool
    private let typeIdsType: DType
    /// The batch size the model's inputs fix (nil: any).
    private let fixedBatch: Int?

    /// Loads `model.onnx` (or the only `.onnx` file) and `tokenizer.json` from a folder.
    ///
    /// - Parameters:
    ///   - modelDirectory: The folder holding the model and `tokenizer.json`.
    ///   - maxLength: The most tokens per text, [CLS] and [SEP] included (longer texts are cut); nil
    ///     for the tokenizer file's truncation, or no limit when it has none.
    ///   - options: The session's options (threads, memory limit).
    ///   - hiddenOutput: The output to pool; nil to pick it as the type's documentation says.
    /// - Throws: `TextError.modelNotFound` when the folder holds no model or several without a
    ///   `model.onnx`, `.fileNotFound` when `tokenizer.json` is missing, and the errors of
    ///   ``init(modelURL:tokenizerURL:maxLength:options:hiddenOutput:)``.
    public init(modelDirectory: URL, maxLength: Int? = nil, options: SessionOptions = .init(),
                hiddenOutput: String? = nil) throws(TextError) {
        let dir = modelDirectory.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory) else {
            throw .fileNotFound(path: dir, what: "model folder")
        }
        guard isDirectory.boolValue else { throw .modelNotFound(directory: dir, reason: "is a file, not a folder") }
        let model = try Self.modelFile(in: modelDirectory)
        try self.init(modelURL: model, tokenizerURL: modelDirectory.appendingPathComponent("tokenizer.json"),
                      maxLength: maxLength, options: options, hiddenOutput: hiddenOutput)
    }

    /// Loads a model file and a `tokenizer.json` file.
    ///
    /// - Parameters:
    ///   - modelURL: The `.onnx` file.
    ///   - tokenizerURL: The `tokenizer.json` file (a WordPiece tokenizer).
    ///   - maxLength: The most tokens per text, special tokens included; nil for the tokenizer
    ///     file's truncation, or no limit when it has none.
    ///   - options: The session's options (threads, memory limit).
    ///   - hiddenOutput: The output to pool; nil to pick it as the type's documentation says.
    /// - Throws: `TextError.fileNotFound`, `.invalidTokenizer` or `.unsupportedTokenizer` for the
    ///   tokenizer, `.model` when the model cannot be loaded, `.modelContract` when it lacks
    ///   `input_ids`, takes other inputs, or has no output of token vectors, `.invalidArgument` for a
    ///   `maxLength` under 1 or without room for the special tokens.
    public init(modelURL: URL, tokenizerURL: URL, maxLength: Int? = nil, options: SessionOptions = .init(),
                hiddenOutput: String? = nil) throws(TextError) {
        var tokenizer = try WordPieceTokenizer(contentsOf: tokenizerURL)
        if let maxLength {
            guard maxLength > tokenizer.specialTokenCount else {
                throw .invalidArgument("the maximum length \(maxLength) leaves no room for text after the "
                                       + "\(tokenizer.specialTokenCount) special tokens")
            }
            tokenizer.truncation = Truncation(maxLength: maxLength, direction: tokenizer.truncation?.direction ?? .right)
        }
        var padding = tokenizer.padding ?? Padding()
        padding.length = .longest
        padding.padToMultipleOf = nil
        tokenizer.padding = padding

        let path = modelURL.path
        guard FileManager.default.fileExists(atPath: path) else { throw .fileNotFound(path: path, what: "model") }
        let session: InferenceSession
        do {
            session = try InferenceSession(contentsOf: modelURL, options: options)
        } catch {
            throw .model(error)
        }
        self.session = session
        modelPath = path

        func intType(_ name: String) throws(TextError) -> DType? {
            guard let info = session.input(named: name) else { return nil }
            let t = info.type ?? .int64
            guard t == .int64 || t == .int32 else {
                throw .modelContract(path: path, reason: "input '\(name)' is \(t), expected int64 or int32")
            }
            if let dims = info.dimensions, dims.count != 2 {
                throw .modelContract(path: path, reason: "input '\(name)' has rank \(dims.count), expected [batch, tokens]")
            }
            return t
        }
        guard let ids = try intType("input_ids") else {
            throw .modelContract(path: path, reason: "the model has no input 'input_ids' (its inputs: "
                                 + session.inputs.map { "'\($0.name)'" }.joined(separator: ", ") + ")")
        }
        idsType = ids
        let mask = try intType("attention_mask")
        feedsMask = mask != nil
        maskType = mask ?? .int64
        let typeIds = try intType("token_type_ids")
        feedsTypeIds = typeIds != nil
        typeIdsType = typeIds ?? .int64
        let known: Set<String> = ["input_ids", "attention_mask", "token_type_ids"]
        if let other = session.inputs.first(where: { !known.contains($0.name) }) {
            throw .modelContract(path: path, reason: "input '\(other.name)' is not one a text encoder takes "
                                 + "(input_ids, attention_mask, token_type_ids)")
        }
        // Sizes the inputs fix: a fixed token count pads every text to it (and truncates to it), a
        // fixed batch size makes every run that many texts (a short batch is filled with empty ones).
        var fixedTokens: Int?
        var fixedBatch: Int?
        for info in session.inputs {
            guard let dims = info.dimensions, dims.count == 2 else { continue }
            if let t = dims[1] { fixedTokens = min(fixedTokens ?? t, t) }
            if let b = dims[0] {
                guard b >= 1, fixedBatch == nil || fixedBatch == b else {
                    throw .modelContract(path: path, reason: "input '\(info.name)' fixes the batch size to \(b), "
                                         + "which the other inputs do not")
                }
                fixedBatch = b
            }
        }
        if let n = fixedTokens {
            guard n > tokenizer.specialTokenCount else {
                throw .modelContract(path: path, reason: "its inputs take \(n) tokens per text, no room for text "
                                     + "after the \(tokenizer.specialTokenCount) special tokens")
            }
            tokenizer.truncation = Truncation(maxLength: min(tokenizer.truncation?.maxLength ?? n, n),
                                              direction: tokenizer.truncation?.direction ?? .right)
            var fixed = tokenizer.padding ?? Padding()
            fixed.length = .fixed(n)
            tokenizer.padding = fixed
        }
        self.fixedBatch = fixedBatch
        self.tokenizer = tokenizer

        let chosen: ValueInfo
        if let hiddenOutput {
            guard let o = session.output(named: hiddenOutput) else {
                throw .modelContract(path: path, reason: "the model has no output '\(hiddenOutput)' (its outputs: "
                                     + session.outputs.map { "'\($0.name)'" }.joined(separator: ", ") + ")")
            }
            chosen = o
        } else if let o = session.outputs.first(where: { $0.name == "last_hidden_state" || $0.name == "token_embeddings" }) {
            chosen = o
        } else if let o = session.outputs.first(where: { $0.type == .float32 && $0.shape?.count == 3 }) {
            chosen = o
        } else {
            throw .modelContract(path: path, reason: "no float output of shape [batch, tokens, dimension] to pool "
                                 + "(outputs: " + session.outputs.map { "'\($0.name)'" }.joined(separator: ", ") + ")")
        }
        self.hiddenOutput = chosen.name
        dimension = chosen.dimensions?.last ?? nil
    }

    /// `model.onnx` in `directory`, else its only `.onnx` file.
    static func modelFile(in directory: URL) throws(TextError) -> URL {
        let named = directory.appendingPathComponent("model.onnx")
        if FileManager.default.fileExists(atPath: named.path) { return named }
        let entries: [String]
        do { entries = try FileManager.default.contentsOfDirectory(atPath: directory.path) } catch {
            throw .io(path: directory.path, reason: "cannot list the folder: \(error.localizedDescription)")
        }
        let models = entries.filter { $0.lowercased().hasSuffix(".onnx") }.sorted()
        switch models.count {
        case 1: return directory.appendingPathComponent(models[0])
        case 0: throw .modelNotFound(directory: directory.path, reason: "no model.onnx (or other .onnx file) in it")
        default:
            throw .modelNotFound(directory: directory.path, reason: "several .onnx files (\(models.joined(separator: ", "))) "
                                 + "and none named model.onnx; name the model with its path")
        }
    }

    /// The embedding of each text, in order: mean of its token vectors, scaled to length 1 when
    /// `normalize` is true.
    ///
    /// - Parameters:
    ///   - texts: The texts (any length; longer ones are truncated to the tokenizer's maximum).
    ///   - normalize: Scale each vector to Euclidean length 1 (the default), as sentence-transformers'
    ///     Normalize module does; false gives the mean-pooled vectors.
    ///   - batchSize: Texts per model run; texts are grouped by token count so padding stays short.
    ///     A model whose inputs fix the batch size runs that many texts at a time instead.
    /// - Throws: `TextError.model` when a run fails, `.modelContract` when the output is not
    ///   [batch, tokens, dimension] float32, `.invalidArgument` for a batch size under 1.
    public func embed(_ texts: [String], normalize: Bool = true, batchSize: Int = 32) throws(TextError) -> [[Float]] {
        guard batchSize >= 1 else { throw .invalidArgument("the batch size must be at least 1 (got \(batchSize))") }
        let batchSize = fixedBatch ?? batchSize
        var unpadded = tokenizer
        unpadded.padding = nil
        // Longest first, so each batch holds texts of similar length (as sentence-transformers does).
        var lengths: [Int] = []
        lengths.reserveCapacity(texts.count)
        for t in texts { lengths.append(try unpadded.encode(t).count) }
        let order = texts.indices.sorted { lengths[$0] != lengths[$1] ? lengths[$0] > lengths[$1] : $0 < $1 }
        var out = [[Float]](repeating: [], count: texts.count)
        var start = 0
        while start < order.count {
            let chunk = Array(order[start..<min(start + batchSize, order.count)])
            let vectors = try embedBatch(chunk.map { texts[$0] })
            for (i, v) in zip(chunk, vectors) { out[i] = normalize ? Pooling.l2Normalized(v) : v }
            start += batchSize
        }
        return out
    }

    /// The embedding of one text (see ``embed(_:normalize:batchSize:)``).
    ///
    /// - Parameters:
    ///   - text: The text.
    ///   - normalize: Scale the vector to Euclidean length 1 (the default).
    public func embed(_ text: String, normalize: Bool = true) throws(TextError) -> [Float] {
        try embed([text], normalize: normalize)[0]
    }

    /// Mean-pooled vectors of one padded batch.
    private func embedBatch(_ texts: [String]) throws(TextError) -> [[Float]] {
        if let fixedBatch, texts.count < fixedBatch {
            return Array(try embedBatch(texts + Array(repeating: "", count: fixedBatch - texts.count)).prefix(texts.count))
        }
        let encodings = try tokenizer.encodeBatch(texts)
        let batch = encodings.count
        let tokens = encodings.first?.count ?? 0
        let mask = encodings.flatMap(\.attentionMask)
        func tensor(_ values: [Int], _ type: DType) throws(TextError) -> Tensor {
            do {
                if type == .int32 { return try Tensor(shape: [batch, tokens], scalars: values.map { Int32(truncatingIfNeeded: $0) }) }
                return try Tensor(shape: [batch, tokens], scalars: values.map { Int64($0) })
            } catch {
                throw .model(error)
            }
        }
        var feeds: [String: Tensor] = ["input_ids": try tensor(encodings.flatMap(\.ids), idsType)]
        if feedsMask { feeds["attention_mask"] = try tensor(mask, maskType) }
        if feedsTypeIds { feeds["token_type_ids"] = try tensor(encodings.flatMap(\.typeIds), typeIdsType) }
        let result: [String: Tensor]
        do { result = try session.run(feeds, outputs: [hiddenOutput]) } catch { throw .model(error) }
        guard let hidden = result[hiddenOutput] else {
            throw .modelContract(path: modelPath, reason: "the run gave no output '\(hiddenOutput)'")
        }
        guard hidden.dtype == .float32, hidden.rank == 3, hidden.shape[0] == batch, hidden.shape[1] == tokens else {
            throw .modelContract(path: modelPath, reason: "output '\(hiddenOutput)' is \(hidden.dtype) \(hidden.shape), "
                                 + "expected float32 [\(batch), \(tokens), dimension]")
        }
        let dim = hidden.shape[2]
        return hidden.withUnsafeBufferPointer(as: Float.self) {
            Pooling.mean(hidden: $0, mask: mask, batch: batch, tokens: tokens, dimension: dim)
        }
    }
}
