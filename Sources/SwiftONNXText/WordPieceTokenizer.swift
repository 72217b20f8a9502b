import Foundation

/// A WordPiece tokenizer (BERT's) read from a `tokenizer.json` file of the Hugging Face `tokenizers`
/// library, giving the same tokens as that library: added tokens ([CLS], [SEP]...) found first,
/// BERT's normalizer (control characters dropped, whitespace unified, spaces around CJK ideographs,
/// accents stripped through NFD, lowercase), BERT's pre-tokenizer (whitespace and punctuation),
/// greedy longest-match WordPiece with `[UNK]` for words it cannot cover, the post-processor's
/// `[CLS] … [SEP]`, then truncation and padding.
///
/// ```swift
/// var tokenizer = try WordPieceTokenizer(contentsOf: URL(fileURLWithPath: "tokenizer.json"))
/// tokenizer.padding = Padding()                    // pad batches to their longest text
/// let e = try tokenizer.encode("Hello, world!")   // e.ids: [101, 7592, 1010, 2088, 999, 102]
/// ```
public struct WordPieceTokenizer: Sendable {
    /// Where the description was read from (for messages).
    public let source: String
    /// Truncation applied by ``encode(_:)`` and ``encodeBatch(_:)``: from `tokenizer.json`, nil for none.
    public var truncation: Truncation?
    /// Padding applied by ``encode(_:)`` and ``encodeBatch(_:)``: from `tokenizer.json`, nil for none.
    public var padding: Padding?

    let model: WordPieceModel
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let postProcessor: PostProcessor
    let addedVocabulary: AddedVocabulary

    /// Reads the tokenizer from a `tokenizer.json` file.
    ///
    /// - Parameter url: The `tokenizer.json` file.
    /// - Throws: `TextError.fileNotFound` or `.io` when the file cannot be read, `.invalidTokenizer`
    ///   when it is not a valid description, `.unsupportedTokenizer` when it describes another kind of
    ///   tokenizer (BPE, Unigram, other normalizers or pre-tokenizers).
    public init(contentsOf url: URL) throws(TextError) {
        let path = url.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .fileNotFound(path: path, what: "tokenizer")
        }
        guard !isDirectory.boolValue else { throw .io(path: path, reason: "is a folder, not a tokenizer.json file") }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw .io(path: path, reason: "cannot be read: \(error.localizedDescription)")
        }
        try self.init(json: data, source: path)
    }

    /// Reads the tokenizer from the contents of a `tokenizer.json` file; `source` names it in errors.
    ///
    /// - Parameters:
    ///   - json: The file's bytes.
    ///   - source: What to call the description in error messages (a path).
    /// - Throws: `TextError.invalidTokenizer` or `.unsupportedTokenizer`, as ``init(contentsOf:)``.
    public init(json: Data, source: String = "<tokenizer.json data>") throws(TextError) {
        let parts = try TokenizerJSON(data: json, source: source)
        self.source = source
        model = parts.model
        normalizer = parts.normalizer
        preTokenizer = parts.preTokenizer
        postProcessor = parts.postProcessor
        addedVocabulary = parts.addedVocabulary
        truncation = parts.truncation
        padding = parts.padding
    }

    /// The number of entries of the vocabulary (the largest id plus one for BERT's).
    public var vocabularySize: Int { model.vocabulary.count }

    /// The id of a vocabulary entry, compared byte for byte; nil when it is not in the vocabulary.
    ///
    /// - Parameter token: The entry as written in the vocabulary ("hello", "##s", "[CLS]").
    public func id(of token: String) -> Int? { model.vocabulary[Array(token.utf8)] }

    /// How many special tokens the post-processor adds to a text ([CLS] and [SEP]: 2).
    public var specialTokenCount: Int { postProcessor.addedTokenCount }

    /// The tokens of `text` before special tokens, truncation and padding: (id, token) pairs.
    ///
    /// - Parameter text: Any text.
    public func tokenize(_ text: String) -> [(id: Int, token: String)] {
        var out: [(id: Int, token: String)] = []
        let scalars = Array(text.unicodeScalars)
        for piece in AddedVocabulary.split(scalars, on: addedVocabulary.raw) {
            switch piece {
            case let .token(id, content):
                out.append((id, Normalizer.string(content)))
            case .text(let raw):
                let normalized = normalizer?.normalize(raw) ?? raw
                for inner in AddedVocabulary.split(normalized, on: addedVocabulary.normalized) {
                    switch inner {
                    case let .token(id, content):
                        out.append((id, Normalizer.string(content)))
                    case .text(let s):
                        let words = preTokenizer?.split([s]) ?? (s.isEmpty ? [] : [s])
                        for w in words { out.append(contentsOf: model.tokenize(w)) }
                    }
                }
            }
        }
        return out
    }

    /// The encoding of one text: tokens, then truncation (when set), the special tokens of the
    /// post-processor, and padding (when set: `.longest` leaves a single text as it is, `.fixed`
    /// pads it).
    ///
    /// - Parameter text: Any text.
    /// - Throws: `TextError.invalidArgument` when the truncation length leaves no room for the
    ///   special tokens.
    public func encode(_ text: String) throws(TextError) -> Encoding {
        let e = try encodeUnpadded(text)
        guard let padding else { return e }
        return padding.pad(e, to: padding.target(longest: e.count))
    }

    /// The encodings of several texts, each truncated (when set) and all padded (when set) to the
    /// same length: the longest of them with `.longest`.
    ///
    /// - Parameter texts: The texts, in the order of the encodings returned.
    /// - Throws: `TextError.invalidArgument` as ``encode(_:)``.
    public func encodeBatch(_ texts: [String]) throws(TextError) -> [Encoding] {
        var out: [Encoding] = []
        out.reserveCapacity(texts.count)
        for t in texts { out.append(try encodeUnpadded(t)) }
        guard let padding else { return out }
        let target = padding.target(longest: out.map(\.count).max() ?? 0)
        return out.map { padding.pad($0, to: target) }
    }

    private func encodeUnpadded(_ text: String) throws(TextError) -> Encoding {
        var pieces = tokenize(text)
        if let truncation {
            let room = truncation.maxLength - postProcessor.addedTokenCount
            guard room >= 0 else {
                throw .invalidArgument("truncation to \(truncation.maxLength) tokens leaves no room for the "
                                       + "\(postProcessor.addedTokenCount) special tokens")
            }
            if pieces.count > room {
                switch truncation.direction {
                case .right: pieces = Array(pieces.prefix(room))
                case .left: pieces = Array(pieces.suffix(room))
                }
            }
        }
        var e = Encoding(ids: [], typeIds: [], attentionMask: [], tokens: [])
        for item in postProcessor.single {
            switch item {
            case let .special(ids, tokens, typeId):
                e.ids += ids
                e.tokens += tokens
                e.typeIds += Array(repeating: typeId, count: ids.count)
            case .sequence(let typeId):
                e.ids += pieces.map(\.id)
                e.tokens += pieces.map(\.token)
                e.typeIds += Array(repeating: typeId, count: pieces.count)
            }
        }
        e.attentionMask = Array(repeating: 1, count: e.ids.count)
        return e
    }
}
