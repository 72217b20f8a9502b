import ArgumentParser
import Foundation
import SwiftONNX
import SwiftONNXText

/// `swift-onnx embed MODEL_DIR TEXT...`: sentence embeddings (mean pooling, L2 normalization) with a
/// BERT-style encoder and its tokenizer.json; prints them, saves them, or compares the texts.
struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Embed texts with a sentence encoder (BERT-style ONNX model + WordPiece tokenizer.json).",
        discussion: """
            MODEL_DIR holds model.onnx (or a single .onnx file) and tokenizer.json; --model FILE (with \
            --tokenizer FILE, default tokenizer.json beside the model) names them instead, and then every \
            argument is a text. Each text is tokenized as the tokenizers library does ([CLS] ... [SEP], \
            truncated to the tokenizer's maximum or --max-length), run through the model, mean-pooled over \
            its tokens and scaled to length 1 (unless --no-normalize). scripts/setup.sh prepares \
            Models/cache/paraphrase-MiniLM-L3-v2/.
            """)

    @Argument(help: ArgumentHelp("MODEL_DIR, then the texts (only the texts with --model).", valueName: "MODEL_DIR TEXT"))
    var arguments: [String] = []

    @Option(help: ArgumentHelp("The .onnx model file (instead of MODEL_DIR).", valueName: "FILE"))
    var model: String?

    @Option(name: .customLong("texts-from"),
            help: ArgumentHelp("More texts from a file: a JSON array of strings (.json), else one text per line.", valueName: "FILE"))
    var textsFrom: String?

    @Option(help: ArgumentHelp("The tokenizer.json file (default: tokenizer.json beside the model).", valueName: "FILE"))
    var tokenizer: String?

    @Option(help: ArgumentHelp("Save the vectors, one row per text: .npy (float32 [texts, dimension]) or .json.", valueName: "FILE"))
    var output: String?

    @Flag(help: "Print the cosine similarity of the two texts (of every pair, as a matrix, for more).")
    var similarity = false

    @Flag(name: .customLong("no-normalize"), help: "Keep the mean-pooled vectors as they are (no L2 normalization).")
    var noNormalize = false

    @Option(name: .customLong("max-length"), help: ArgumentHelp("The most tokens per text, [CLS] and [SEP] included (default: the tokenizer's truncation).", valueName: "N"))
    var maxLength: Int?

    @Flag(help: "Print every value of each vector (default: the first --dims values and the norm).")
    var full = false

    @Option(help: "How many leading values of each vector to print without --full.")
    var dims = 8

    @Flag(help: "Print nothing but the similarities (with --similarity) or nothing at all (with --output).")
    var quiet = false

    @Option(name: .customLong("batch-size"), help: "Texts per model run.")
    var batchSize = 32

    @Option(help: "Threads for the kernels.")
    var threads = 1

    func validate() throws {
        let texts = model == nil ? Array(arguments.dropFirst()) : arguments
        if model == nil && arguments.isEmpty { throw ValidationError("give MODEL_DIR (or --model FILE) and at least one text") }
        if texts.isEmpty && textsFrom == nil { throw ValidationError("give at least one text to embed") }
        if model == nil && tokenizer != nil { throw ValidationError("--tokenizer goes with --model (MODEL_DIR holds its tokenizer.json)") }
        if similarity && texts.count < 2 && textsFrom == nil { throw ValidationError("--similarity needs at least two texts") }
        if let maxLength, maxLength < 3 { throw ValidationError("--max-length must be at least 3 ([CLS], a token, [SEP])") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
        if threads < 1 { throw ValidationError("--threads must be at least 1") }
        if dims < 0 { throw ValidationError("--dims must not be negative") }
    }

    func run() throws {
        try reportingErrors { try embed() }
    }

    private func embed() throws {
        var texts = model == nil ? Array(arguments.dropFirst()) : arguments
        if let textsFrom { texts += try Self.readTexts(textsFrom) }
        if texts.isEmpty { throw CLIError("--texts-from '\(textsFrom ?? "")' holds no text") }
        if similarity && texts.count < 2 { throw CLIError("--similarity needs at least two texts") }
        if let output {
            let lower = output.lowercased()
            guard lower.hasSuffix(".npy") || lower.hasSuffix(".json") else {
                throw CLIError("--output '\(output)': give a .npy or .json file name")
            }
            try OutputFolders.checkFileTarget(output, what: "--output")
        }
        let options = SessionOptions(threads: threads)
        let embedder: SentenceEmbedder
        if let model {
            let modelURL = URL(fileURLWithPath: model)
            let tokenizerURL = tokenizer.map { URL(fileURLWithPath: $0) }
                ?? modelURL.deletingLastPathComponent().appendingPathComponent("tokenizer.json")
            embedder = try SentenceEmbedder(modelURL: modelURL, tokenizerURL: tokenizerURL, maxLength: maxLength, options: options)
        } else {
            embedder = try SentenceEmbedder(modelDirectory: URL(fileURLWithPath: arguments[0]), maxLength: maxLength, options: options)
        }
        let vectors = try embedder.embed(texts, normalize: !noNormalize, batchSize: batchSize)
        let dimension = vectors.first?.count ?? 0

        if let output { try save(vectors, texts: texts, to: output, embedder: embedder) }
        if !quiet {
            for (i, (text, v)) in zip(texts, vectors).enumerated() {
                let count = try embedder.tokenizer.encode(text).count
                let shown = full ? v : Array(v.prefix(dims))
                let values = shown.map { String(format: "%.6f", $0) }.joined(separator: ", ")
                let more = shown.count < v.count ? ", ..." : ""
                print("[\(i)] \(Self.quoted(text, limit: 60))  tokens \(count)  dim \(dimension)  norm "
                      + String(format: "%.6f", Pooling.norm(v)))
                print("    [\(values)\(more)]")
            }
            if let output { print("saved \(vectors.count) x \(dimension) float32 -> \(output)") }
        }
        if similarity {
            if texts.count == 2 {
                print(String(format: "cosine similarity: %.6f", Pooling.cosineSimilarity(vectors[0], vectors[1])))
            } else {
                print("cosine similarity (row i, column j = text [i] vs text [j]):")
                func padded(_ s: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
                print(padded("", 6) + texts.indices.map { padded("[\($0)]", 9) }.joined())
                for i in texts.indices {
                    let row = texts.indices.map { String(format: "%9.4f", Pooling.cosineSimilarity(vectors[i], vectors[$0])) }
                    print(padded("[\(i)]", 6) + row.joined())
                }
            }
        }
    }

    private func save(_ vectors: [[Float]], texts: [String], to path: String, embedder: SentenceEmbedder) throws {
        let dimension = vectors.first?.count ?? 0
        if path.lowercased().hasSuffix(".npy") {
            let t = try Tensor(shape: [vectors.count, dimension], scalars: vectors.flatMap { $0 })
            try NPY.write(t, path: path)
            return
        }
        let object: [String: Any] = [
            "model": embedder.modelPath,
            "output": embedder.hiddenOutput,
            "normalized": !noNormalize,
            "texts": texts,
            "embeddings": vectors.map { $0.map { Double($0) } },
        ]
        let data: Data
        do { data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) } catch {
            throw CLIError("cannot encode the vectors as JSON: \(error.localizedDescription)")
        }
        guard FileManager.default.createFile(atPath: path, contents: data) else { throw CLIError("cannot write '\(path)'") }
    }

    /// The texts of a file: a JSON array of strings (.json), else one text per line.
    static func readTexts(_ path: String) throws -> [String] {
        guard ModelLocation.isFile(path) else {
            throw CLIError(ModelLocation.isDirectory(path) ? "--texts-from '\(path)' is a folder" : "--texts-from '\(path)' does not exist")
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read --texts-from '\(path)'") }
        if path.lowercased().hasSuffix(".json") {
            guard let texts = (try? JSONSerialization.jsonObject(with: data)) as? [String] else {
                throw CLIError("--texts-from '\(path)': expected a JSON array of strings")
            }
            return texts
        }
        guard let text = String(data: data, encoding: .utf8) else { throw CLIError("--texts-from '\(path)' is not UTF-8 text") }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.hasSuffix("\r") ? String($0.dropLast()) : String($0)
        }
        if lines.last == "" { lines.removeLast() }
        return lines
    }

    /// The text in quotes, newlines and tabs escaped, cut to `limit` characters.
    static func quoted(_ text: String, limit: Int) -> String {
        var s = text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
            .replacingOccurrences(of: "\t", with: "\\t").replacingOccurrences(of: "\r", with: "\\r")
        if s.count > limit { s = String(s.prefix(limit - 1)) + "…" }
        return "\"\(s)\""
    }
}
