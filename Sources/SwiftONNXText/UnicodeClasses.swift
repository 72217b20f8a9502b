/// The character classes BERT's normalizer and pre-tokenizer use, on Unicode scalars (what the
/// `tokenizers` library calls a char), from the standard library's Unicode properties.
///
/// The `tokenizers` library takes general categories (control, punctuation, nonspacing mark) from
/// tables of Unicode 8.0, and the standard library knows a newer Unicode: a scalar assigned after 8.0
/// has no category for `tokenizers` (it is neither control, punctuation nor mark), and the few whose
/// category changed since are listed in `unicode8Categories`. Whitespace (a stable property),
/// canonical decomposition and lowercasing follow current Unicode in both. Checked against
/// `tokenizers` on every code point (`UnicodeClassTests`).
enum BertCharacterClass {
    /// The Unicode version of the general categories `tokenizers` uses.
    static let categoryVersion = (major: 8, minor: 0)

    /// Scalars whose general category in Unicode 8.0 differs from today's (those that matter here:
    /// punctuation, marks and controls).
    static let unicode8Categories: [UInt32: Unicode.GeneralCategory] = [
        0x166D: .otherPunctuation,   // CANADIAN SYLLABICS CHI SIGN: So since Unicode 12
        0x111C9: .otherPunctuation,  // SHARADA SANDHI MARK: Mn since Unicode 12
        0x1734: .nonspacingMark,     // HANUNOO SIGN PAMUDPOD: Mc since Unicode 14
        0x1171E: .nonspacingMark,    // AHOM CONSONANT SIGN MEDIAL RA: Mc since Unicode 14
        0x1885: .otherLetter,        // MONGOLIAN LETTER ALI GALI BALUDA: Mn since Unicode 9
        0x1886: .otherLetter,        // MONGOLIAN LETTER ALI GALI THREE BALUDA: Mn since Unicode 9
        0xA9BD: .spacingMark,        // JAVANESE CONSONANT SIGN KERET: Mn since Unicode 12
    ]

    /// Whether `tokenizers`' tables know the scalar (assigned by Unicode 8.0): newer scalars are not
    /// decomposed by its NFD either.
    static func isInUnicode8(_ c: Unicode.Scalar) -> Bool {
        if c.isASCII { return true }
        guard let age = c.properties.age else { return false }
        return (age.major, age.minor) <= (categoryVersion.major, categoryVersion.minor)
    }

    /// The general category as `tokenizers` sees it: `.unassigned` for a scalar newer than Unicode 8.0.
    static func category(_ c: Unicode.Scalar) -> Unicode.GeneralCategory {
        if c.isASCII { return c.properties.generalCategory }
        if let old = unicode8Categories[c.value] { return old }
        return isInUnicode8(c) ? c.properties.generalCategory : .unassigned
    }

    /// Tab, newline and carriage return count as whitespace, never as control characters.
    private static func isTabOrNewline(_ c: Unicode.Scalar) -> Bool {
        c.value == 0x09 || c.value == 0x0A || c.value == 0x0D
    }

    /// Whitespace: tab, newline, carriage return and every scalar with the White_Space property
    /// (space, no-break spaces, the U+2000 block, line and paragraph separators, ideographic space...).
    static func isWhitespace(_ c: Unicode.Scalar) -> Bool {
        if c.isASCII { return c == " " || (0x09...0x0D).contains(c.value) }
        return c.properties.isWhitespace
    }

    /// A character clean-up removes: categories Cc, Cf, Co (and Cs, which no scalar has) except tab,
    /// newline and carriage return; unassigned code points stay. Vertical tab, form feed and U+0085
    /// are Cc, so they are removed, not turned into spaces.
    static func isControl(_ c: Unicode.Scalar) -> Bool {
        if isTabOrNewline(c) { return false }
        if c.isASCII { return c.value < 0x20 || c.value == 0x7F }
        switch category(c) {
        case .control, .format, .privateUse, .surrogate: return true
        default: return false
        }
    }

    /// Punctuation: the ASCII symbols BERT treats as punctuation (! to /, : to @, [ to `, { to ~,
    /// which includes $, +, <, =, >, ^, `, | and ~ that Unicode calls symbols) and every P* category.
    static func isPunctuation(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if c.isASCII {
            return (0x21...0x2F).contains(v) || (0x3A...0x40).contains(v) || (0x5B...0x60).contains(v) || (0x7B...0x7E).contains(v)
        }
        switch category(c) {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// A CJK ideograph (the CJK Unified Ideographs blocks and extensions A to E, and the compatibility
    /// ideographs): the normalizer puts spaces around each, so each becomes a word of its own.
    static func isChineseCharacter(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }

    /// A nonspacing mark (Mn): what accent stripping removes after canonical decomposition.
    static func isNonspacingMark(_ c: Unicode.Scalar) -> Bool {
        !c.isASCII && category(c) == .nonspacingMark
    }
}
