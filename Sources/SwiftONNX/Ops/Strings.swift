import Foundation

/// The string family: StringConcat (opset 20, with broadcasting), StringSplit (opset 20, Python's
/// str.split semantics), RegexFullMatch (opset 20; RE2-syntax patterns run by the linear-time
/// RegexMatcher, so no pattern can backtrack for ever or give up with a wrong answer) and
/// StringNormalizer (opset 10: stopword removal and case change).
func registerStringOps(_ r: inout OpRegistry) {
    r.register("StringConcat", infer: .broadcast(.string)) { _ in
        { inputs, _ in
            let a = try stringInput(try inputs.required(0, "X"), "StringConcat", "X")
            let b = try stringInput(try inputs.required(1, "Y"), "StringConcat", "Y")
            let shape = try broadcastShapes(a.shape, b.shape)
            let sa = broadcastStrides(a.shape, to: shape), sb = broadcastStrides(b.shape, to: shape)
            let xa = a.storage.strings, xb = b.storage.strings
            var out = [String](repeating: "", count: shape.reduce(1, *))
            forEachStrided(shape, sa) { o, i in out[o] = xa[i] }
            forEachStrided(shape, sb) { o, i in out[o] += xb[i] }
            return [Tensor(validShape: shape, strings: out)]
        }
    }
    r.register("StringSplit", infer: Inference { _, ins in
        let s = ins.shape(0)
        return [TypeInfo(dtype: .string, shape: s.map { $0 + [.unknown] }), TypeInfo(dtype: .int64, shape: s)]
    }, closure: makeStringSplit)
    r.register("RegexFullMatch", infer: Inference { _, ins in [TypeInfo(dtype: .bool, shape: ins.shape(0))] },
               closure: makeRegexFullMatch)
    r.register("StringNormalizer", infer: Inference { _, ins in
        let s = ins.shape(0)
        return [TypeInfo(dtype: .string, shape: s.map { $0.map { _ in Dim.unknown } })]
    }, closure: makeStringNormalizer)
}

private func stringInput(_ t: Tensor, _ op: String, _ name: String) throws -> Tensor {
    guard t.dtype == .string else { throw ONNXError.unsupportedType("\(op): \(name) has element type \(t.dtype) (expected string)") }
    return t
}

/// Python's str.split: with a delimiter, every occurrence splits (empty pieces kept); without one (or
/// an empty one), runs of whitespace split and leading/trailing whitespace gives no piece. At most
/// `maxsplit` splits when it is given; the rest of the string is the last piece.
func pythonSplit(_ s: String, delimiter: String?, maxsplit: Int?) -> [String] {
    let limit = maxsplit ?? Int.max
    if let d = delimiter, !d.isEmpty {
        var pieces: [String] = []
        var rest = Substring(s)
        while pieces.count < limit, let r = rest.range(of: d) {
            pieces.append(String(rest[..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        pieces.append(String(rest))
        return pieces
    }
    var pieces: [String] = []
    var i = s.startIndex
    func skipSpace() { while i < s.endIndex, s[i].isWhitespace { i = s.index(after: i) } }
    skipSpace()
    while i < s.endIndex {
        if pieces.count == limit { pieces.append(String(s[i...])); break }
        let start = i
        while i < s.endIndex, !s[i].isWhitespace { i = s.index(after: i) }
        pieces.append(String(s[start..<i]))
        skipSpace()
    }
    return pieces
}

/// StringSplit(X) -> substrings (X's shape + [most pieces], padded with ""), length (pieces per element).
private func makeStringSplit(_ ctx: OpContext) throws -> OpBody {
    let delimiter = try ctx.string("delimiter")
    let maxsplit = try ctx.int("maxsplit")
    if let m = maxsplit, m < 0 { throw ctx.attributeError("maxsplit", "must be at least 0, got \(m)") }
    return { inputs, _ in
        let x = try stringInput(try inputs.required(0, "X"), "StringSplit", "X")
        let pieces = x.storage.strings.map { pythonSplit($0, delimiter: delimiter, maxsplit: maxsplit) }
        let width = pieces.map(\.count).max() ?? 0
        var out = [String](repeating: "", count: pieces.count * width)
        for (i, p) in pieces.enumerated() { for (j, s) in p.enumerated() { out[i * width + j] = s } }
        return [Tensor(validShape: x.shape + [width], strings: out),
                Tensor(validShape: x.shape, scalars: pieces.map { Int64($0.count) })]
    }
}

/// RegexFullMatch(X) -> Y: whether each whole string matches `pattern` (RE2 syntax, compiled once
/// into RegexMatcher's NFA; matching is linear in pattern size x string length).
private func makeRegexFullMatch(_ ctx: OpContext) throws -> OpBody {
    guard let pattern = try ctx.string("pattern") else { throw ctx.attributeError("pattern", "is required") }
    let matcher: RegexMatcher
    do { matcher = try RegexMatcher(pattern: pattern) } catch {
        throw ctx.attributeError("pattern", "'\(pattern)' is not a regular expression this runtime reads: \(error)")
    }
    return { inputs, _ in
        let x = try stringInput(try inputs.required(0, "X"), "RegexFullMatch", "X")
        let matches = x.storage.strings.map { matcher.fullMatch($0) }
        return [Tensor(validShape: x.shape, scalars: matches)]
    }
}

/// StringNormalizer(X) -> Y: X ([C] or [1, C]) without its stopwords (compared case-insensitively
/// unless is_case_sensitive), then lowercased / uppercased by case_change_action; every string
/// removed gives one empty string.
private func makeStringNormalizer(_ ctx: OpContext) throws -> OpBody {
    let action = try ctx.string("case_change_action", default: "NONE")
    guard ["NONE", "LOWER", "UPPER"].contains(action) else {
        throw ctx.attributeError("case_change_action", "must be NONE, LOWER or UPPER, got '\(action)'")
    }
    let caseSensitive = try ctx.int("is_case_sensitive", default: 0) != 0
    let stopwords = try ctx.strings("stopwords") ?? []
    let stops = Set(caseSensitive ? stopwords : stopwords.map { $0.lowercased() })
    return { inputs, _ in
        let x = try stringInput(try inputs.required(0, "X"), "StringNormalizer", "X")
        guard x.rank == 1 || (x.rank == 2 && x.shape[0] == 1) else {
            throw OpError("StringNormalizer: X must be [C] or [1, C], got \(describeShape(x.shape))")
        }
        var kept = x.storage.strings.filter { !stops.contains(caseSensitive ? $0 : $0.lowercased()) }
        if action == "LOWER" { kept = kept.map { $0.lowercased() } } else if action == "UPPER" { kept = kept.map { $0.uppercased() } }
        if kept.isEmpty { kept = [""] }
        return [Tensor(validShape: x.rank == 1 ? [kept.count] : [1, kept.count], strings: kept)]
    }
}
