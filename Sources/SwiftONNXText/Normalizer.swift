import Foundation

/// One step of a tokenizer's normalizer, as `tokenizer.json` describes it ("normalizer"): a
/// function from text to text. BERT's is `.bert`; `.sequence` applies its steps in order.
enum Normalizer: Sendable, Equatable {
    /// BertNormalizer: clean-up of control characters and whitespace, spaces around CJK ideographs,
    /// accent stripping (NFD, then nonspacing marks dropped) and lowercasing, each optional.
    case bert(cleanText: Bool, handleChineseChars: Bool, stripAccents: Bool, lowercase: Bool)
    case lowercase
    case stripAccents
    case nfd
    case nfc
    case sequence([Normalizer])

    func normalize(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        switch self {
        case let .bert(cleanText, handleChineseChars, stripAccents, lowercase):
            var s = scalars
            if cleanText { s = Self.cleanText(s) }
            if handleChineseChars { s = Self.spaceChineseCharacters(s) }
            if stripAccents { s = Self.stripAccents(s) }
            if lowercase { s = Self.lowercase(s) }
            return s
        case .lowercase: return Self.lowercase(scalars)
        case .stripAccents: return scalars.filter { !BertCharacterClass.isNonspacingMark($0) }
        case .nfd: return Self.nfd(scalars)
        case .nfc: return Self.nfc(scalars)
        case .sequence(let steps):
            return steps.reduce(scalars) { $1.normalize($0) }
        }
    }

    /// Drops NUL, U+FFFD and control characters; every whitespace character becomes a space.
    static func cleanText(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count)
        for c in s where !(c.value == 0 || c.value == 0xFFFD || BertCharacterClass.isControl(c)) {
            out.append(BertCharacterClass.isWhitespace(c) ? " " : c)
        }
        return out
    }

    /// Puts a space before and after every CJK ideograph.
    static func spaceChineseCharacters(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count)
        for c in s {
            if BertCharacterClass.isChineseCharacter(c) {
                out.append(" "); out.append(c); out.append(" ")
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// Canonical decomposition, then every nonspacing mark (Mn) removed: "é" -> "e", "が" -> "か".
    static func stripAccents(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        nfd(s).filter { !BertCharacterClass.isNonspacingMark($0) }
    }

    /// Each scalar replaced by its full lowercase mapping, without context ("Σ" is always "σ";
    /// "İ" becomes "i" and U+0307).
    static func lowercase(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count)
        for c in s {
            if c.isASCII {
                out.append(c.value >= 0x41 && c.value <= 0x5A ? Unicode.Scalar(c.value + 0x20)! : c)
            } else if c.properties.changesWhenLowercased {
                out.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars)
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// Canonical decomposition (NFD): each scalar fully decomposed (Hangul syllables into jamo), then
    /// every run of combining marks put in canonical order (stable sort by combining class). Scalars
    /// newer than Unicode 8.0 stay whole, as in `tokenizers` (see `BertCharacterClass`).
    static func nfd(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        if s.allSatisfy({ $0.isASCII }) { return s }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count + s.count / 2)
        // Runs of scalars Unicode 8.0 knows are decomposed by Foundation, one call per run.
        var start = 0
        func flush(_ end: Int) {
            if start < end {
                out.append(contentsOf: string(Array(s[start..<end])).decomposedStringWithCanonicalMapping.unicodeScalars)
            }
        }
        for (i, c) in s.enumerated() where !c.isASCII && !BertCharacterClass.isInUnicode8(c) {
            flush(i)
            out.append(c)
            start = i + 1
        }
        flush(s.count)
        // Canonical ordering: sort each run of scalars with a nonzero combining class by that class.
        var i = 0
        while i < out.count {
            guard out[i].properties.canonicalCombiningClass.rawValue != 0 else { i += 1; continue }
            var j = i
            while j < out.count && out[j].properties.canonicalCombiningClass.rawValue != 0 { j += 1 }
            if j - i > 1 {
                let run = out[i..<j].enumerated().sorted {
                    let a = $0.element.properties.canonicalCombiningClass.rawValue
                    let b = $1.element.properties.canonicalCombiningClass.rawValue
                    return a != b ? a < b : $0.offset < $1.offset
                }
                out.replaceSubrange(i..<j, with: run.map(\.element))
            }
            i = j
        }
        return out
    }

    static func nfc(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        if s.allSatisfy({ $0.isASCII }) { return s }
        return Array(string(s).precomposedStringWithCanonicalMapping.unicodeScalars)
    }

    static func string(_ s: [Unicode.Scalar]) -> String {
        var u = String.UnicodeScalarView()
        u.append(contentsOf: s)
        return String(u)
    }
}
