/// The WordPiece model: a word becomes the longest vocabulary entry that starts it, then the longest
/// entry (written with the continuing-subword prefix, "##") that starts the rest, and so on; a word
/// with a piece no entry matches, or longer than `maxInputCharsPerWord` scalars, becomes the unknown
/// token as a whole.
///
/// Entries are looked up by their UTF-8 bytes, as `tokenizers` does: Swift's `String` equality is
/// canonical equivalence, under which a Hangul syllable and its jamo, or "é" and "e" + U+0301, would
/// be the same entry.
struct WordPieceModel: Sendable {
    /// Entry (UTF-8 bytes) -> id.
    let vocabulary: [[UInt8]: Int]
    let unknownToken: String
    let unknownId: Int
    let continuingSubwordPrefix: String
    let maxInputCharsPerWord: Int

    init(vocabulary: [String: Int], unknownToken: String, unknownId: Int, continuingSubwordPrefix: String,
         maxInputCharsPerWord: Int) {
        var bytes: [[UInt8]: Int] = [:]
        bytes.reserveCapacity(vocabulary.count)
        for (k, v) in vocabulary { bytes[Array(k.utf8)] = v }
        self.vocabulary = bytes
        self.unknownToken = unknownToken
        self.unknownId = unknownId
        self.continuingSubwordPrefix = continuingSubwordPrefix
        self.maxInputCharsPerWord = maxInputCharsPerWord
    }

    /// The tokens of one word, as (id, token) pairs.
    func tokenize(_ word: [Unicode.Scalar]) -> [(id: Int, token: String)] {
        if word.count > maxInputCharsPerWord { return [(unknownId, unknownToken)] }
        // The word's UTF-8 bytes and where each scalar starts in them.
        var bytes: [UInt8] = []
        var starts: [Int] = []
        bytes.reserveCapacity(word.count * 2)
        starts.reserveCapacity(word.count + 1)
        for c in word {
            starts.append(bytes.count)
            UTF8.encode(c) { bytes.append($0) }
        }
        starts.append(bytes.count)
        let prefix = Array(continuingSubwordPrefix.utf8)

        var pieces: [(id: Int, token: String)] = []
        var start = 0
        var piece: [UInt8] = []
        while start < word.count {
            var end = word.count
            var found: Int?
            while start < end {
                piece.removeAll(keepingCapacity: true)
                if start > 0 { piece.append(contentsOf: prefix) }
                piece.append(contentsOf: bytes[starts[start]..<starts[end]])
                if let id = vocabulary[piece] { found = id; break }
                end -= 1
            }
            guard let id = found else { return [(unknownId, unknownToken)] }
            pieces.append((id, String(decoding: piece, as: UTF8.self)))
            start = end
        }
        return pieces
    }
}
