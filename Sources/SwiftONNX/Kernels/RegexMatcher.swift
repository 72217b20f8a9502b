/// A linear-time matcher for whole-string matches of regular expressions in RE2 syntax.
///
/// The pattern is parsed (without recursion, so deep nesting cannot exhaust the stack) into a small
/// syntax tree, compiled by Thompson's construction into an NFA program, and run by simulating the
/// set of live NFA states over the string's Unicode scalars. Each state is visited at most once per
/// scalar, so a match costs O(program size x text length) time and O(program size) memory whatever
/// the pattern: there is no backtracking, so no pattern/text pair can hang or give up silently.
///
/// Only accept/reject of the whole string is answered (no captures, no search), which is all
/// RegexFullMatch needs; for that answer greedy and lazy quantifiers are the same.
///
/// Syntax (RE2's): literals; escapes `\a \f \t \n \r \v \\ \.` etc., `\x41`, `\x{263a}`, octal `\012`
/// and `\0`; `\Q...\E`; `.` (not `\n` unless flag s); classes `[...]`, `[^...]` with ranges, escapes,
/// Perl classes and POSIX classes `[[:alpha:]]` / `[[:^alpha:]]`; `\d \D \s \S \w \W` (ASCII, as in
/// RE2: `\s` is `[\t\n\f\r ]`); Unicode general categories `\pL \p{Lu} \P{N} \p{^P}` and `\p{Any}`;
/// `|`; groups `( )`, `(?: )`, `(?P<name> )`, `(?<name> )`; `* + ? {n} {n,} {n,m}` and their lazy
/// forms; `^ $ \A \z \b \B` (word boundaries on ASCII word characters); flags `i m s U` as `(?flags)`,
/// `(?flags-flags)` and `(?flags:...)`. Case-insensitive matching uses the simple (one-scalar) case
/// mappings of Unicode, so `(?i)k` also matches the Kelvin sign and `(?i)σ` matches `ς` and `Σ`.
///
/// Rejected with a `RegexPatternError` naming the construct and its position (counted in Unicode
/// scalars from 0): backreferences, lookahead/lookbehind, atomic groups, possessive and nested
/// quantifiers, `\Z`, `\C`, Unicode script classes such as `\p{Greek}`, unknown escapes, unbalanced
/// parentheses or brackets, repetition counts above 1000 (also when nested counts multiply past
/// 1000, as RE2 does), more than 1000 nested groups, and programs of more than 100_000 NFA states.
struct RegexMatcher: Sendable {
    static let maxRepeat = 1000
    static let maxStates = 100_000
    static let maxNesting = 1000

    private let program: [RegexInst]
    private let classes: [RegexClass]

    init(pattern: String) throws {
        var parser = RegexParser(pattern)
        let tree = try parser.parse()
        let size = RegexCompiler.size(of: tree, limit: Self.maxStates)
        guard size < Self.maxStates else {
            throw RegexPatternError("the pattern needs more than \(Self.maxStates) NFA states (too large, or too many repetitions)")
        }
        var compiler = RegexCompiler()
        compiler.program.reserveCapacity(size + 1)
        compiler.emit(tree)
        compiler.program.append(.match)
        program = compiler.program
        classes = parser.classes
    }

    /// Number of instructions of the compiled NFA (for tests).
    var stateCount: Int { program.count }

    /// Whether the whole of `s` matches the pattern.
    func fullMatch(_ s: String) -> Bool {
        var run = RegexRun(program: program, classes: classes)
        return run.fullMatch(s)
    }
}

/// A pattern the matcher does not accept.
struct RegexPatternError: Error, CustomStringConvertible, Sendable {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

// MARK: - Syntax tree

enum RegexAssertion: Sendable {
    case beginText, endText, beginLine, endLine, wordBoundary, notWordBoundary
}

indirect enum RegexNode {
    case empty
    case scalar(UInt32)
    case cls(Int)
    case anyScalar
    case anyNotNewline
    case assertion(RegexAssertion)
    case concat([RegexNode])
    case alternate([RegexNode])
    /// max < 0: unbounded. `counted`: written as `{...}` (only those count toward RE2's 1000 limit).
    case repetition(RegexNode, min: Int, max: Int, counted: Bool)
}

// MARK: - Character classes

/// A set of Unicode scalars: explicit ranges plus class items (Perl/POSIX classes, Unicode general
/// categories, each possibly negated), optionally negated as a whole, optionally case-insensitive
/// (a scalar is in the set when it or one of its simple case variants is). ASCII answers are
/// precomputed into a 128-bit table.
struct RegexClass: Sendable {
    enum Item: Sendable {
        case ranges([ClosedRange<UInt32>], negated: Bool)
        case categories(UInt32, negated: Bool)   // bit mask over RegexClass.categoryBit
    }

    var ranges: [ClosedRange<UInt32>] = []
    var items: [Item] = []
    var negated = false
    var foldCase = false
    private var asciiLow: UInt64 = 0, asciiHigh: UInt64 = 0

    /// Sorts and merges the ranges and fills the ASCII table.
    mutating func finish() {
        ranges.sort { $0.lowerBound < $1.lowerBound }
        var merged: [ClosedRange<UInt32>] = []
        for r in ranges {
            if let last = merged.last, r.lowerBound <= last.upperBound &+ 1 {
                if r.upperBound > last.upperBound { merged[merged.count - 1] = last.lowerBound...r.upperBound }
            } else {
                merged.append(r)
            }
        }
        ranges = merged
        asciiLow = 0; asciiHigh = 0
        for c in UInt32(0)..<128 where slowMatches(c, variants: RegexClass.caseVariants(c)) {
            if c < 64 { asciiLow |= 1 << UInt64(c) } else { asciiHigh |= 1 << UInt64(c - 64) }
        }
    }

    /// Membership of `c`; `folds` caches c's case variants across the classes tested at one position.
    @inline(__always)
    func matches(_ c: UInt32, _ folds: inout [UInt32]?) -> Bool {
        if c < 64 { return asciiLow & (1 << UInt64(c)) != 0 }
        if c < 128 { return asciiHigh & (1 << UInt64(c - 64)) != 0 }
        if !foldCase { return contains(c) != negated }
        if folds == nil { folds = RegexClass.caseVariants(c) }
        return slowMatches(c, variants: folds!)
    }

    private func slowMatches(_ c: UInt32, variants: [UInt32]) -> Bool {
        var hit = contains(c)
        if !hit && foldCase {
            for v in variants where v != c && contains(v) { hit = true; break }
        }
        return hit != negated
    }

    /// Membership before negation and case folding.
    private func contains(_ c: UInt32) -> Bool {
        var lo = 0, hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[mid].upperBound < c { lo = mid + 1 } else { hi = mid }
        }
        if lo < ranges.count && ranges[lo].lowerBound <= c { return true }
        for item in items {
            switch item {
            case .ranges(let rs, let neg):
                if rs.contains(where: { $0.contains(c) }) != neg { return true }
            case .categories(let mask, let neg):
                if (mask & RegexClass.categoryMask(of: c) != 0) != neg { return true }
            }
        }
        return false
    }

    /// `c` and its simple (single-scalar) lower/upper/title case mappings, and theirs, so that
    /// every member of a case orbit such as {s, S, ſ} or {k, K, K} reaches the others.
    static func caseVariants(_ c: UInt32) -> [UInt32] {
        if c < 128 {
            if c >= 65 && c <= 90 { return [c, c + 32] }
            if c >= 97 && c <= 122 { return [c, c - 32] }
            return [c]
        }
        guard let u = Unicode.Scalar(c), u.properties.changesWhenCaseMapped else { return [c] }
        var out: [UInt32] = [c]
        func single(_ s: String) -> UInt32? {
            var it = s.unicodeScalars.makeIterator()
            guard let a = it.next(), it.next() == nil else { return nil }
            return a.value
        }
        func addMappings(of x: Unicode.Scalar) {
            let p = x.properties
            for m in [p.lowercaseMapping, p.uppercaseMapping, p.titlecaseMapping] {
                if let v = single(m), !out.contains(v) { out.append(v) }
            }
        }
        addMappings(of: u)
        for v in out.dropFirst() { if let w = Unicode.Scalar(v) { addMappings(of: w) } }
        return out
    }

    // General categories as bits of a UInt32.
    static let categoryCodes: [String] = ["Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No",
                                          "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So",
                                          "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn"]

    static func categoryMask(of c: UInt32) -> UInt32 {
        guard let u = Unicode.Scalar(c) else { return 1 << 27 }   // surrogate code points (not in Strings)
        let i: UInt32
        switch u.properties.generalCategory {
        case .uppercaseLetter: i = 0
        case .lowercaseLetter: i = 1
        case .titlecaseLetter: i = 2
        case .modifierLetter: i = 3
        case .otherLetter: i = 4
        case .nonspacingMark: i = 5
        case .spacingMark: i = 6
        case .enclosingMark: i = 7
        case .decimalNumber: i = 8
        case .letterNumber: i = 9
        case .otherNumber: i = 10
        case .connectorPunctuation: i = 11
        case .dashPunctuation: i = 12
        case .openPunctuation: i = 13
        case .closePunctuation: i = 14
        case .initialPunctuation: i = 15
        case .finalPunctuation: i = 16
        case .otherPunctuation: i = 17
        case .mathSymbol: i = 18
        case .currencySymbol: i = 19
        case .modifierSymbol: i = 20
        case .otherSymbol: i = 21
        case .spaceSeparator: i = 22
        case .lineSeparator: i = 23
        case .paragraphSeparator: i = 24
        case .control: i = 25
        case .format: i = 26
        case .surrogate: i = 27
        case .privateUse: i = 28
        case .unassigned: i = 29
        @unknown default: i = 29
        }
        return 1 << i
    }

    /// The mask for a Unicode class name: `Any`, a one-letter group (`L`) or a two-letter category (`Lu`).
    static func categoryMask(named name: String) -> UInt32? {
        if name == "Any" { return (1 << 30) - 1 }
        var mask: UInt32 = 0
        for (i, code) in categoryCodes.enumerated() {
            if code == name || (name.count == 1 && code.hasPrefix(name)) { mask |= 1 << UInt32(i) }
        }
        // RE2's C group is Cc Cf Co Cs (unassigned code points are not in it).
        if name == "C" { mask &= ~(1 << 29) }
        return mask == 0 ? nil : mask
    }

    static let digit: [ClosedRange<UInt32>] = [48...57]
    static let space: [ClosedRange<UInt32>] = [9...10, 12...13, 32...32]   // RE2's \s: no \v
    static let word: [ClosedRange<UInt32>] = [48...57, 65...90, 95...95, 97...122]

    static func posix(_ name: String) -> [ClosedRange<UInt32>]? {
        switch name {
        case "alnum": return [48...57, 65...90, 97...122]
        case "alpha": return [65...90, 97...122]
        case "ascii": return [0...127]
        case "blank": return [9...9, 32...32]
        case "cntrl": return [0...31, 127...127]
        case "digit": return [48...57]
        case "graph": return [33...126]
        case "lower": return [97...122]
        case "print": return [32...126]
        case "punct": return [33...47, 58...64, 91...96, 123...126]
        case "space": return [9...13, 32...32]
        case "upper": return [65...90]
        case "word": return word
        case "xdigit": return [48...57, 65...70, 97...102]
        default: return nil
        }
    }
}

// MARK: - Parser

private struct RegexFlags {
    var caseInsensitive = false, dotAll = false, multiLine = false, ungreedy = false
}

/// An iterative parser: groups are kept on an explicit stack of frames, so nesting depth costs heap,
/// not call stack.
struct RegexParser {
    private let s: [Unicode.Scalar]
    private var pos = 0
    private var flags = RegexFlags()
    private(set) var classes: [RegexClass] = []
    private var groupNames: Set<String> = []
    /// Whether the last item of the current concatenation may take a quantifier / already has one.
    private var canRepeat = false
    private var afterRepeat = false

    private struct Frame {
        var alternatives: [RegexNode] = []
        var concat: [RegexNode] = []
        var savedFlags: RegexFlags
        var openPos: Int
    }

    init(_ pattern: String) { s = Array(pattern.unicodeScalars) }

    private func error(_ what: String, at p: Int) -> RegexPatternError {
        RegexPatternError("\(what) at position \(p)")
    }

    private func peek(_ offset: Int = 0) -> Unicode.Scalar? {
        pos + offset < s.count ? s[pos + offset] : nil
    }

    private func text(_ from: Int, _ to: Int) -> String {
        var out = ""
        let a = max(0, min(from, s.count)), b = max(a, min(s.count, to))
        out.unicodeScalars.append(contentsOf: s[a..<b])
        return out
    }

    mutating func parse() throws -> RegexNode {
        var stack: [Frame] = []
        var cur = Frame(savedFlags: flags, openPos: -1)
        func finish(_ f: Frame) -> RegexNode {
            let last = RegexParser.concatNode(f.concat)
            return f.alternatives.isEmpty ? last : .alternate(f.alternatives + [last])
        }
        func push(_ open: Int, _ saved: RegexFlags) throws {
            guard stack.count < RegexMatcher.maxNesting else {
                throw error("groups nested more than \(RegexMatcher.maxNesting) deep", at: open)
            }
            stack.append(cur)
            cur = Frame(savedFlags: saved, openPos: open)
            canRepeat = false; afterRepeat = false
        }
        func atom(_ n: RegexNode) {
            cur.concat.append(n)
            canRepeat = true; afterRepeat = false
        }

        while pos < s.count {
            let c = s[pos]
            switch c {
            case "(":
                let open = pos
                pos += 1
                guard peek() == "?" else { try push(open, flags); continue }
                pos += 1
                guard let d = peek() else { throw error("missing ) for group '(?'", at: open) }
                switch d {
                case "=", "!":
                    throw error("lookahead '(?\(d)' is not supported (RE2 has no lookaround)", at: open)
                case "<" where peek(1) == "=" || peek(1) == "!":
                    throw error("lookbehind '(?<\(peek(1)!)' is not supported (RE2 has no lookaround)", at: open)
                case ">":
                    throw error("atomic group '(?>' is not supported", at: open)
                case "#":
                    throw error("comment group '(?#' is not supported", at: open)
                case "P", "<":
                    if d == "P" {
                        pos += 1
                        if peek() == "=" { throw error("backreference '(?P=' is not supported", at: open) }
                        if peek() == ">" { throw error("recursion '(?P>' is not supported", at: open) }
                        guard peek() == "<" else { throw error("invalid named group '(?P'", at: open) }
                    }
                    pos += 1
                    let nameStart = pos
                    while let e = peek(), e != ">" { pos += 1 }
                    guard peek() == ">" else { throw error("missing > in named group", at: open) }
                    let name = text(nameStart, pos)
                    guard !name.isEmpty, name.unicodeScalars.allSatisfy({ $0 == "_" || $0.properties.isAlphabetic || $0.properties.numericType == .decimal }) else {
                        throw error("invalid group name '\(name)'", at: open)
                    }
                    guard groupNames.insert(name).inserted else { throw error("duplicate group name '\(name)'", at: open) }
                    pos += 1
                    try push(open, flags)
                default:
                    // Flags: (?flags), (?flags-flags), (?flags:...), (?flags-flags:...), and (?:...)
                    var newFlags = flags
                    var negate = false, sawFlag = false, sawNegatedFlag = false
                    flagLoop: while true {
                        guard let f = peek() else { throw error("missing ) for the group", at: open) }
                        pos += 1
                        switch f {
                        case "i", "s", "m", "U":
                            switch f {
                            case "i": newFlags.caseInsensitive = !negate
                            case "s": newFlags.dotAll = !negate
                            case "m": newFlags.multiLine = !negate
                            default: newFlags.ungreedy = !negate
                            }
                            sawFlag = true
                            if negate { sawNegatedFlag = true }
                        case "-":
                            guard !negate else { throw error("invalid flag group '\(text(open, pos))'", at: open) }
                            negate = true
                        case ":", ")":
                            guard !negate || sawNegatedFlag else {
                                throw error("invalid flag group '\(text(open, pos))' (no flag after '-')", at: open)
                            }
                            if f == ")" {
                                guard sawFlag else { throw error("empty flag group '\(text(open, pos))'", at: open) }
                                flags = newFlags
                                canRepeat = false; afterRepeat = false
                            } else {
                                let saved = flags
                                flags = newFlags
                                try push(open, saved)
                            }
                            break flagLoop
                        default:
                            throw error("unsupported group syntax or flag '\(text(open, pos))'", at: open)
                        }
                    }
                }
            case "|":
                cur.alternatives.append(RegexParser.concatNode(cur.concat))
                cur.concat = []
                canRepeat = false; afterRepeat = false
                pos += 1
            case ")":
                guard let parent = stack.popLast() else { throw error("unmatched ')'", at: pos) }
                let node = finish(cur)
                flags = cur.savedFlags
                cur = parent
                pos += 1
                atom(node)
            case "*", "+", "?":
                let at = pos
                pos += 1
                try repeatLast(&cur.concat, min: c == "+" ? 1 : 0, max: c == "?" ? 1 : -1, counted: false, op: String(c), at: at)
            case "{":
                if let (lo, hi, end) = countedRepetition(at: pos) {
                    let at = pos
                    pos = end
                    guard lo <= RegexMatcher.maxRepeat, hi <= RegexMatcher.maxRepeat else {
                        throw error("repetition count in '\(text(at, end))' exceeds \(RegexMatcher.maxRepeat)", at: at)
                    }
                    guard hi < 0 || lo <= hi else { throw error("invalid repetition '\(text(at, end))' (min > max)", at: at) }
                    try repeatLast(&cur.concat, min: lo, max: hi, counted: true, op: text(at, end), at: at)
                } else {
                    pos += 1
                    atom(literal(c.value))
                }
            case "[":
                atom(try parseClass())
            case ".":
                pos += 1
                atom(flags.dotAll ? .anyScalar : .anyNotNewline)
            case "^":
                pos += 1
                atom(.assertion(flags.multiLine ? .beginLine : .beginText))
            case "$":
                pos += 1
                atom(.assertion(flags.multiLine ? .endLine : .endText))
            case "\\":
                if peek(1) == "Q" {
                    // \Q...\E: everything up to \E (or the end) is literal.
                    pos += 2
                    while pos < s.count {
                        if s[pos] == "\\" && peek(1) == "E" { pos += 2; break }
                        atom(literal(s[pos].value))
                        pos += 1
                    }
                    continue
                }
                let at = pos
                switch try parseEscape(inClass: false) {
                case .scalar(let v): atom(literal(v))
                case .item(let item): atom(classNode(ranges: [], items: [item], negated: false))
                case .assertion(let a): atom(.assertion(a))
                case .endQuote: throw error("'\\E' without '\\Q'", at: at)
                }
            default:
                pos += 1
                atom(literal(c.value))
            }
        }
        if let open = stack.isEmpty ? nil : cur.openPos {
            throw error("missing ) for the group opened", at: open)
        }
        return finish(cur)
    }

    static func concatNode(_ xs: [RegexNode]) -> RegexNode {
        xs.isEmpty ? .empty : xs.count == 1 ? xs[0] : .concat(xs)
    }

    /// Applies a quantifier (already consumed) to the last item of `concat`, then takes a lazy `?`.
    private mutating func repeatLast(_ concat: inout [RegexNode], min: Int, max: Int, counted: Bool, op: String, at: Int) throws {
        guard canRepeat, let last = concat.last else {
            throw error("missing argument to repetition operator '\(op)'", at: at)
        }
        guard !afterRepeat else {
            throw error("bad repetition operator '\(op)' (a quantifier cannot follow another quantifier)", at: at)
        }
        if peek() == "?" { pos += 1 }   // lazy: same answer for a full match
        if peek() == "+" {
            throw error("possessive quantifier '\(op)+' is not supported", at: at)
        }
        if counted {
            // RE2 also rejects counted repetitions nested so that their counts multiply past 1000.
            let k = max >= 0 ? max : min
            if k > 0, !RegexParser.repeatBudgetOK(last, budget: RegexMatcher.maxRepeat / k) {
                throw error("nested repetition counts multiply to more than \(RegexMatcher.maxRepeat) at '\(op)'", at: at)
            }
        }
        concat[concat.count - 1] = .repetition(last, min: min, max: max, counted: counted)
        afterRepeat = true
    }

    private static func repeatBudgetOK(_ n: RegexNode, budget: Int) -> Bool {
        if budget == 0 { return false }
        switch n {
        case .concat(let xs), .alternate(let xs): return xs.allSatisfy { repeatBudgetOK($0, budget: budget) }
        case .repetition(let x, let lo, let hi, let counted):
            let k = hi >= 0 ? hi : lo
            return repeatBudgetOK(x, budget: counted && k > 0 ? budget / k : budget)
        default: return true
        }
    }

    /// `{n}`, `{n,}` or `{n,m}` at `p`: (min, max or -1, index after `}`); nil when the text there
    /// is not a repetition (then `{` is a literal, as in RE2; so are `{,n}` and leading zeros).
    private func countedRepetition(at p: Int) -> (Int, Int, Int)? {
        var i = p + 1
        func number() -> Int? {
            let start = i
            var v = 0
            while i < s.count, s[i] >= "0", s[i] <= "9" {
                v = Swift.min(v * 10 + Int(s[i].value - 48), 1_000_000)
                i += 1
            }
            if i == start || (i - start > 1 && s[start] == "0") { return nil }
            return v
        }
        guard let lo = number() else { return nil }
        var hi = lo
        if i < s.count && s[i] == "," {
            i += 1
            if i < s.count && s[i] == "}" { hi = -1 } else {
                guard let h = number() else { return nil }
                hi = h
            }
        }
        guard i < s.count && s[i] == "}" else { return nil }
        return (lo, hi, i + 1)
    }

    private mutating func literal(_ v: UInt32) -> RegexNode {
        guard flags.caseInsensitive else { return .scalar(v) }
        let variants = RegexClass.caseVariants(v)
        if variants.count == 1 { return .scalar(v) }
        return classNode(ranges: variants.map { $0...$0 }, items: [], negated: false)
    }

    private mutating func classNode(ranges: [ClosedRange<UInt32>], items: [RegexClass.Item], negated: Bool) -> RegexNode {
        var cls = RegexClass()
        cls.ranges = ranges
        cls.items = items
        cls.negated = negated
        cls.foldCase = flags.caseInsensitive
        cls.finish()
        classes.append(cls)
        return .cls(classes.count - 1)
    }

    private enum Escape {
        case scalar(UInt32)
        case item(RegexClass.Item)
        case assertion(RegexAssertion)
        case endQuote
    }

    /// Parses the escape at `pos` (a backslash) and moves past it.
    private mutating func parseEscape(inClass: Bool) throws -> Escape {
        let at = pos
        pos += 1
        guard let c = peek() else { throw error("trailing backslash at the end of the pattern", at: at) }
        pos += 1
        func isOctal(_ u: Unicode.Scalar?) -> Bool { u.map { $0 >= "0" && $0 <= "7" } ?? false }
        func hexValue(_ u: Unicode.Scalar) -> UInt32? {
            switch u {
            case "0"..."9": return u.value - 48
            case "a"..."f": return u.value - 87
            case "A"..."F": return u.value - 55
            default: return nil
            }
        }
        switch c {
        case "1"..."7" where isOctal(peek()), "0":
            // Octal: \0, \0nn, \nnn (a single non-zero digit would be a backreference).
            var v = c.value - 48
            var digits = 1
            while digits < 3, isOctal(peek()) { v = v * 8 + (peek()!.value - 48); pos += 1; digits += 1 }
            return .scalar(v)
        case "1"..."9":
            throw error("backreference '\\\(c)' is not supported", at: at)
        case "x":
            guard let d = peek() else { throw error("incomplete escape '\\x'", at: at) }
            if d == "{" {
                pos += 1
                var v: UInt32 = 0, n = 0
                while let e = peek(), let h = hexValue(e) {
                    v = v * 16 + h; n += 1; pos += 1
                    if v > 0x10FFFF { throw error("escape '\(text(at, pos))' is beyond U+10FFFF", at: at) }
                }
                guard n > 0, peek() == "}" else { throw error("invalid escape '\(text(at, pos + 1))'", at: at) }
                pos += 1
                guard Unicode.Scalar(v) != nil else { throw error("escape '\(text(at, pos))' is a surrogate code point", at: at) }
                return .scalar(v)
            }
            guard let h1 = hexValue(d), let d2 = peek(1), let h2 = hexValue(d2) else {
                throw error("invalid escape '\(text(at, pos + 2))' (expected \\xHH or \\x{H...})", at: at)
            }
            pos += 2
            return .scalar(h1 * 16 + h2)
        case "a": return .scalar(7)
        case "f": return .scalar(12)
        case "t": return .scalar(9)
        case "n": return .scalar(10)
        case "r": return .scalar(13)
        case "v": return .scalar(11)
        case "d", "D": return .item(.ranges(RegexClass.digit, negated: c == "D"))
        case "s", "S": return .item(.ranges(RegexClass.space, negated: c == "S"))
        case "w", "W": return .item(.ranges(RegexClass.word, negated: c == "W"))
        case "p", "P":
            var negated = c == "P"
            var name: String
            guard let d = peek() else { throw error("incomplete Unicode class '\\\(c)'", at: at) }
            if d == "{" {
                let start = pos + 1
                while let e = peek(), e != "}" { pos += 1 }
                guard peek() == "}" else { throw error("missing } in Unicode class '\(text(at, pos))'", at: at) }
                name = text(start, pos)
                pos += 1
            } else {
                name = String(Character(d))
                pos += 1
            }
            if name.hasPrefix("^") { negated.toggle(); name.removeFirst() }
            guard let mask = RegexClass.categoryMask(named: name) else {
                throw error("unknown or unsupported Unicode class '\(text(at, pos))' (general categories such as L, Lu, N, Nd, P, S, Z and Any are supported; scripts such as Greek are not)", at: at)
            }
            return .item(.categories(mask, negated: negated))
        case "A" where !inClass: return .assertion(.beginText)
        case "z" where !inClass: return .assertion(.endText)
        case "b" where !inClass: return .assertion(.wordBoundary)
        case "B" where !inClass: return .assertion(.notWordBoundary)
        case "E" where !inClass: return .endQuote
        case "Z":
            throw error("'\\Z' is not supported (RE2 has no \\Z; use \\z)", at: at)
        case "C":
            throw error("'\\C' (any byte) is not supported", at: at)
        default:
            if c.isASCII && !(c.properties.isAlphabetic || (c >= "0" && c <= "9")) {
                return .scalar(c.value)   // escaped punctuation (and \_)
            }
            throw error("invalid escape '\\\(c)'\(inClass ? " in a character class" : "")", at: at)
        }
    }

    /// Parses the class at `pos` (a `[`).
    private mutating func parseClass() throws -> RegexNode {
        let open = pos
        pos += 1
        var negated = false
        if peek() == "^" { negated = true; pos += 1 }
        var ranges: [ClosedRange<UInt32>] = []
        var items: [RegexClass.Item] = []
        var first = true
        while true {
            guard let c = peek() else { throw error("missing ] for the character class opened", at: open) }
            if c == "]" && !first { pos += 1; break }
            first = false
            if c == "[", peek(1) == ":" {
                // POSIX class [:name:] or [:^name:]
                var j = pos + 2
                while j + 1 < s.count && !(s[j] == ":" && s[j + 1] == "]") { j += 1 }
                if j + 1 < s.count {
                    var name = text(pos + 2, j)
                    var neg = false
                    if name.hasPrefix("^") { neg = true; name.removeFirst() }
                    guard let rs = RegexClass.posix(name) else {
                        throw error("invalid POSIX class '\(text(pos, j + 2))'", at: pos)
                    }
                    items.append(.ranges(rs, negated: neg))
                    pos = j + 2
                    continue
                }
            }
            let lo: UInt32
            if c == "\\" {
                let at = pos
                switch try parseEscape(inClass: true) {
                case .scalar(let v): lo = v
                case .item(let item): items.append(item); continue
                default: throw error("invalid escape in a character class", at: at)
                }
            } else {
                lo = c.value
                pos += 1
            }
            if peek() == "-", let after = peek(1), after != "]" {
                let dash = pos
                pos += 1
                let hi: UInt32
                if after == "\\" {
                    guard case .scalar(let v) = try parseEscape(inClass: true) else {
                        throw error("invalid character class range '\(text(dash - 1, pos))'", at: dash)
                    }
                    hi = v
                } else {
                    hi = after.value
                    pos += 1
                }
                guard lo <= hi else { throw error("invalid character class range '\(text(dash - 1, pos))' (start after end)", at: dash) }
                ranges.append(lo...hi)
            } else {
                ranges.append(lo...lo)
            }
        }
        return classNode(ranges: ranges, items: items, negated: negated)
    }
}

// MARK: - NFA

enum RegexInst: Sendable {
    case scalar(UInt32)            // consume this scalar, go to pc + 1
    case cls(Int32)                // consume a scalar of class i, go to pc + 1
    case anyScalar                 // consume any scalar
    case anyNotNewline             // consume any scalar but \n
    case split(Int32, Int32)       // go to both
    case jump(Int32)
    case assert(RegexAssertion)    // go to pc + 1 when the assertion holds here
    case match
}

struct RegexCompiler {
    var program: [RegexInst] = []

    /// Number of instructions `emit` produces for `n`, saturating just above `limit`.
    static func size(of n: RegexNode, limit: Int) -> Int {
        func cap(_ v: Int) -> Int { Swift.min(v, limit + 1) }
        switch n {
        case .empty: return 0
        case .scalar, .cls, .anyScalar, .anyNotNewline, .assertion: return 1
        case .concat(let xs):
            return xs.reduce(0) { cap($0 + size(of: $1, limit: limit)) }
        case .alternate(let xs):
            return xs.reduce(2 * (xs.count - 1)) { cap($0 + size(of: $1, limit: limit)) }
        case .repetition(let x, let lo, let hi, _):
            let k = size(of: x, limit: limit)
            if hi < 0 { return lo == 0 ? cap(k + 2) : cap(lo * k + 1) }
            return cap(lo * k + (hi - lo) * (k + 1))
        }
    }

    mutating func emit(_ n: RegexNode) {
        switch n {
        case .empty: break
        case .scalar(let v): program.append(.scalar(v))
        case .cls(let i): program.append(.cls(Int32(i)))
        case .anyScalar: program.append(.anyScalar)
        case .anyNotNewline: program.append(.anyNotNewline)
        case .assertion(let a): program.append(.assert(a))
        case .concat(let xs): for x in xs { emit(x) }
        case .alternate(let xs):
            // split(L1, next); L1: x0; jump end; next: split(L2, next2); ... ; last alternative; end:
            var jumps: [Int] = []
            for x in xs.dropLast() {
                let split = program.count
                program.append(.split(0, 0))
                emit(x)
                jumps.append(program.count)
                program.append(.jump(0))
                program[split] = .split(Int32(split + 1), Int32(program.count))
            }
            emit(xs[xs.count - 1])
            for j in jumps { program[j] = .jump(Int32(program.count)) }
        case .repetition(let x, let lo, let hi, _):
            if hi < 0 {
                if lo == 0 {
                    // L: split(L+1, end); x; jump L; end:
                    let l = program.count
                    program.append(.split(0, 0))
                    emit(x)
                    program.append(.jump(Int32(l)))
                    program[l] = .split(Int32(l + 1), Int32(program.count))
                } else {
                    for _ in 0..<(lo - 1) { emit(x) }
                    // L: x; split(L, next)
                    let l = program.count
                    emit(x)
                    program.append(.split(Int32(l), Int32(program.count + 1)))
                }
            } else {
                for _ in 0..<lo { emit(x) }
                // (x(x(x)?)?)? as: split(body, end); x; split(body, end); x; ... end:
                // every skip goes straight to the end, so the closure stays small.
                var splits: [Int] = []
                for _ in 0..<(hi - lo) {
                    splits.append(program.count)
                    program.append(.split(0, 0))
                    emit(x)
                }
                for sp in splits { program[sp] = .split(Int32(sp + 1), Int32(program.count)) }
            }
        }
    }
}

// MARK: - Simulation

/// The state-set simulation: `current` holds the consuming (and match) instructions live before the
/// next scalar; each step follows those that accept it and closes over the non-consuming ones.
private struct RegexRun {
    let program: [RegexInst]
    let classes: [RegexClass]
    var mark: [UInt32]
    var generation: UInt32 = 0
    var stack: [Int32] = []
    static let none = UInt32.max

    init(program: [RegexInst], classes: [RegexClass]) {
        self.program = program
        self.classes = classes
        mark = [UInt32](repeating: 0, count: program.count)
    }

    @inline(__always)
    static func isWord(_ c: UInt32) -> Bool {
        (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 95
    }

    mutating func newGeneration() {
        if generation == UInt32.max - 1 {
            for i in mark.indices { mark[i] = 0 }
            generation = 0
        }
        generation += 1
    }

    /// Adds the closure of `start` to `list`, at the position between `before` and `after`
    /// (`none` at the ends of the text).
    mutating func addClosure(_ start: Int32, to list: inout [Int32], before: UInt32, after: UInt32) {
        stack.append(start)
        while let pc = stack.popLast() {
            let i = Int(pc)
            if mark[i] == generation { continue }
            mark[i] = generation
            switch program[i] {
            case .jump(let t): stack.append(t)
            case .split(let a, let b): stack.append(b); stack.append(a)
            case .assert(let a):
                let holds: Bool
                switch a {
                case .beginText: holds = before == Self.none
                case .endText: holds = after == Self.none
                case .beginLine: holds = before == Self.none || before == 10
                case .endLine: holds = after == Self.none || after == 10
                case .wordBoundary, .notWordBoundary:
                    let w1 = before != Self.none && Self.isWord(before)
                    let w2 = after != Self.none && Self.isWord(after)
                    holds = (w1 != w2) == (a == .wordBoundary)
                }
                if holds { stack.append(pc + 1) }
            default: list.append(pc)
            }
        }
    }

    mutating func fullMatch(_ s: String) -> Bool {
        var it = s.unicodeScalars.makeIterator()
        var c = it.next()?.value ?? Self.none
        var list: [Int32] = []
        newGeneration()
        addClosure(0, to: &list, before: Self.none, after: c)
        var nextList: [Int32] = []
        while c != Self.none {
            if list.isEmpty { return false }
            let after = it.next()?.value ?? Self.none
            newGeneration()
            nextList.removeAll(keepingCapacity: true)
            var folds: [UInt32]? = nil
            for pc in list {
                let ok: Bool
                switch program[Int(pc)] {
                case .scalar(let v): ok = v == c
                case .cls(let k): ok = classes[Int(k)].matches(c, &folds)
                case .anyScalar: ok = true
                case .anyNotNewline: ok = c != 10
                default: ok = false
                }
                if ok { addClosure(pc + 1, to: &nextList, before: c, after: after) }
            }
            swap(&list, &nextList)
            c = after
        }
        return list.contains { if case .match = program[Int($0)] { return true } else { return false } }
    }
}
