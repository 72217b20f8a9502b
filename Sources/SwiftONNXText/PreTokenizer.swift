/// A tokenizer's pre-tokenizer, as `tokenizer.json` describes it ("pre_tokenizer"): splits normalized
/// text into words, each given to the model alone.
enum PreTokenizer: Sendable, Equatable {
    /// BertPreTokenizer: whitespace separates words and is dropped; every punctuation character is a
    /// word of its own.
    case bert
    /// WhitespaceSplit: whitespace separates words and is dropped.
    case whitespaceSplit
    /// Each step splits the words of the one before.
    case sequence([PreTokenizer])

    func split(_ words: [[Unicode.Scalar]]) -> [[Unicode.Scalar]] {
        switch self {
        case .bert: return words.flatMap { Self.splitBert($0, punctuation: true) }
        case .whitespaceSplit: return words.flatMap { Self.splitBert($0, punctuation: false) }
        case .sequence(let steps): return steps.reduce(words) { $1.split($0) }
        }
    }

    private static func splitBert(_ s: [Unicode.Scalar], punctuation: Bool) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for c in s {
            if BertCharacterClass.isWhitespace(c) {
                if !current.isEmpty { words.append(current); current = [] }
            } else if punctuation && BertCharacterClass.isPunctuation(c) {
                if !current.isEmpty { words.append(current); current = [] }
                words.append([c])
            } else {
                current.append(c)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }
}
