/// The tokens `tokenizer.json` lists under "added_tokens" ([CLS], [SEP], [MASK]...): found in the
/// text before anything else, each kept whole as its own id. Tokens marked `normalized: false` are
/// matched in the raw text (so "[SEP]" typed in a sentence is the separator, but "[sep]" is not);
/// the others in the normalized text between those. Matching is leftmost, then longest.
struct AddedVocabulary: Sendable {
    struct Token: Sendable {
        let id: Int
        let content: [Unicode.Scalar]
        let lstrip: Bool
        let rstrip: Bool
    }

    /// Matched before normalization, longest first.
    let raw: [Token]
    /// Matched after normalization (contents normalized), longest first.
    let normalized: [Token]

    init(raw: [Token], normalized: [Token]) {
        self.raw = raw.filter { !$0.content.isEmpty }.sorted { $0.content.count > $1.content.count }
        self.normalized = normalized.filter { !$0.content.isEmpty }.sorted { $0.content.count > $1.content.count }
    }

    /// A piece of text: either an added token (its id) or text for the normalizer and the model.
    enum Piece {
        case token(id: Int, content: [Unicode.Scalar])
        case text([Unicode.Scalar])
    }

    /// Splits `text` at the matches of `tokens`; whitespace next to a token marked lstrip / rstrip
    /// goes with it.
    static func split(_ text: [Unicode.Scalar], on tokens: [Token]) -> [Piece] {
        if tokens.isEmpty || text.isEmpty { return [.text(text)] }
        var pieces: [Piece] = []
        var textStart = 0
        var i = 0
        while i < text.count {
            guard let t = tokens.first(where: { matches($0.content, in: text, at: i) }) else { i += 1; continue }
            var start = i
            var end = i + t.content.count
            if t.lstrip { while start > textStart && BertCharacterClass.isWhitespace(text[start - 1]) { start -= 1 } }
            if t.rstrip { while end < text.count && BertCharacterClass.isWhitespace(text[end]) { end += 1 } }
            if start > textStart { pieces.append(.text(Array(text[textStart..<start]))) }
            pieces.append(.token(id: t.id, content: t.content))
            textStart = end
            i = end
        }
        if textStart < text.count { pieces.append(.text(Array(text[textStart...]))) }
        return pieces
    }

    private static func matches(_ pattern: [Unicode.Scalar], in text: [Unicode.Scalar], at i: Int) -> Bool {
        guard i + pattern.count <= text.count else { return false }
        for k in 0..<pattern.count where text[i + k] != pattern[k] { return false }
        return true
    }
}
