/// A text as the model takes it: token ids with their type ids and attention mask, all the same
/// length (padding included), and the tokens as text.
public struct Encoding: Sendable, Equatable {
    /// The token ids, special tokens and padding included.
    public var ids: [Int]
    /// The segment (token type) of each token: 0 for a single text.
    public var typeIds: [Int]
    /// 1 for a token of the text (special tokens included), 0 for padding.
    public var attentionMask: [Int]
    /// The tokens as text ("[CLS]", "hello", "##s", "[PAD]").
    public var tokens: [String]

    /// An encoding of the given ids, type ids, attention mask and tokens (all the same length).
    ///
    /// - Parameters:
    ///   - ids: The token ids.
    ///   - typeIds: The type id of each token.
    ///   - attentionMask: 1 for each token of the text, 0 for padding.
    ///   - tokens: The tokens as text.
    public init(ids: [Int], typeIds: [Int], attentionMask: [Int], tokens: [String]) {
        self.ids = ids
        self.typeIds = typeIds
        self.attentionMask = attentionMask
        self.tokens = tokens
    }

    /// The number of tokens, padding included.
    public var count: Int { ids.count }
}

/// Which end of a sequence truncation cuts, or padding fills.
public enum Side: Sendable, Equatable {
    /// The end: truncation keeps the first tokens, padding goes after the text.
    case right
    /// The start: truncation keeps the last tokens, padding goes before the text.
    case left
}

/// How long encodings may be: longer ones lose tokens of the text (never the special tokens the
/// template adds) until they fit, as `tokenizers` does for a single sequence.
public struct Truncation: Sendable, Equatable {
    /// The most tokens of an encoding, special tokens included (at least the number of special tokens).
    public var maxLength: Int
    /// The end the text's tokens are taken from.
    public var direction: Side

    /// Truncation to `maxLength` tokens, special tokens included, from `direction`.
    ///
    /// - Parameters:
    ///   - maxLength: The most tokens of an encoding, special tokens included.
    ///   - direction: `.right` keeps the first tokens of the text, `.left` the last.
    public init(maxLength: Int, direction: Side = .right) {
        self.maxLength = maxLength
        self.direction = direction
    }
}

/// How encodings are padded: to the longest of a batch or to a fixed length, then up to a multiple.
public struct Padding: Sendable, Equatable {
    /// The length padding brings encodings to.
    public enum Length: Sendable, Equatable {
        /// The longest encoding of the batch (a single text is not padded).
        case longest
        /// This many tokens (longer encodings are left as they are).
        case fixed(Int)
    }

    /// The length to pad to.
    public var length: Length
    /// Where the padding goes.
    public var direction: Side
    /// When set, the padded length is rounded up to a multiple of this.
    public var padToMultipleOf: Int?
    /// The id of the padding token.
    public var padId: Int
    /// The type id padding gets.
    public var padTypeId: Int
    /// The padding token as text.
    public var padToken: String

    /// Padding to `length` with `padToken` (`padId`), on `direction`.
    ///
    /// - Parameters:
    ///   - length: `.longest` of the batch, or `.fixed(n)` tokens.
    ///   - direction: Where the padding goes.
    ///   - padToMultipleOf: Round the padded length up to a multiple of this (nil: no rounding).
    ///   - padId: The padding token's id.
    ///   - padTypeId: The type id of padding.
    ///   - padToken: The padding token as text.
    public init(length: Length = .longest, direction: Side = .right, padToMultipleOf: Int? = nil,
                padId: Int = 0, padTypeId: Int = 0, padToken: String = "[PAD]") {
        self.length = length
        self.direction = direction
        self.padToMultipleOf = padToMultipleOf
        self.padId = padId
        self.padTypeId = padTypeId
        self.padToken = padToken
    }

    /// The length encodings of a batch whose longest has `longest` tokens are padded to.
    func target(longest: Int) -> Int {
        var n: Int
        switch length {
        case .longest: n = longest
        case .fixed(let f): n = f
        }
        if let m = padToMultipleOf, m > 0, n % m != 0 {
            let (rounded, overflow) = n.addingReportingOverflow(m - n % m)
            n = overflow ? n : rounded
        }
        return n
    }

    /// `e` padded to `length` tokens (unchanged when it is as long already).
    func pad(_ e: Encoding, to length: Int) -> Encoding {
        let missing = length - e.count
        guard missing > 0 else { return e }
        var out = e
        switch direction {
        case .right:
            out.ids += Array(repeating: padId, count: missing)
            out.typeIds += Array(repeating: padTypeId, count: missing)
            out.attentionMask += Array(repeating: 0, count: missing)
            out.tokens += Array(repeating: padToken, count: missing)
        case .left:
            out.ids = Array(repeating: padId, count: missing) + e.ids
            out.typeIds = Array(repeating: padTypeId, count: missing) + e.typeIds
            out.attentionMask = Array(repeating: 0, count: missing) + e.attentionMask
            out.tokens = Array(repeating: padToken, count: missing) + e.tokens
        }
        return out
    }
}
