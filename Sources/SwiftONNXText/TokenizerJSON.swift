import Foundation

/// Reads the parts of a WordPiece tokenizer from a `tokenizer.json` file (the format of the
/// `tokenizers` library): model, normalizer, pre-tokenizer, post-processor, added tokens, and the
/// truncation and padding settings. Anything it does not implement is refused with
/// `TextError.unsupportedTokenizer`, anything malformed with `TextError.invalidTokenizer`.
struct TokenizerJSON {
    let source: String
    var model: WordPieceModel
    var normalizer: Normalizer?
    var preTokenizer: PreTokenizer?
    var postProcessor: PostProcessor
    var addedVocabulary: AddedVocabulary
    var truncation: Truncation?
    var padding: Padding?

    typealias Object = [String: Any]

    init(data: Data, source: String) throws(TextError) {
        self.source = source
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: data, options: [])
        } catch {
            // Foundation's description is generic; its debug description says what and where.
            let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? error.localizedDescription
            throw .invalidTokenizer(path: source, reason: "not valid JSON (\(detail))")
        }
        guard let object = root as? Object else {
            throw .invalidTokenizer(path: source, reason: "the top level is not a JSON object")
        }
        let reader = Reader(source: source)
        model = try reader.model(object["model"])
        normalizer = try reader.normalizer(object["normalizer"], at: "normalizer")
        preTokenizer = try reader.preTokenizer(object["pre_tokenizer"], at: "pre_tokenizer")
        postProcessor = try reader.postProcessor(object["post_processor"], vocabulary: model)
        addedVocabulary = try reader.addedVocabulary(object["added_tokens"], normalizer: normalizer)
        truncation = try reader.truncation(object["truncation"])
        padding = try reader.padding(object["padding"])
    }

    /// Typed access to the JSON values, each failure naming the field.
    struct Reader {
        let source: String

        /// The largest padding length or multiple accepted from a file: padding allocates that many
        /// tokens per text, so a hostile file must not make it allocate terabytes.
        static let lengthCeiling = 1 << 20

        func invalid(_ reason: String) -> TextError { .invalidTokenizer(path: source, reason: reason) }

        func isNull(_ v: Any?) -> Bool { v == nil || v is NSNull }

        func object(_ v: Any?, _ field: String) throws(TextError) -> Object {
            guard let o = v as? Object else { throw invalid("'\(field)' is missing or not an object") }
            return o
        }

        func string(_ v: Any?, _ field: String, default d: String? = nil) throws(TextError) -> String {
            if isNull(v), let d { return d }
            guard let s = v as? String else { throw invalid("'\(field)' is missing or not a string") }
            return s
        }

        func int(_ v: Any?, _ field: String, default d: Int? = nil) throws(TextError) -> Int {
            if isNull(v), let d { return d }
            if let i = v as? Int { return i }
            if let x = v as? Double, x == x.rounded(), abs(x) < 1e15 { return Int(x) }
            throw invalid("'\(field)' is missing or not an integer")
        }

        func bool(_ v: Any?, _ field: String, default d: Bool) throws(TextError) -> Bool {
            if isNull(v) { return d }
            guard let b = v as? Bool else { throw invalid("'\(field)' is not true or false") }
            return b
        }

        func type(_ o: Object, _ field: String) throws(TextError) -> String {
            try string(o["type"], "\(field).type")
        }

        func model(_ v: Any?) throws(TextError) -> WordPieceModel {
            let m = try object(v, "model")
            // Files written by old versions of the library may leave out the type.
            let kind = isNull(m["type"]) ? (m["continuing_subword_prefix"] != nil ? "WordPiece" : "unknown") : try type(m, "model")
            guard kind == "WordPiece" else { throw .unsupportedTokenizer(path: source, component: "model", type: kind) }
            guard let raw = m["vocab"] as? Object else { throw invalid("'model.vocab' is missing or not an object") }
            var vocabulary: [String: Int] = [:]
            vocabulary.reserveCapacity(raw.count)
            for (token, id) in raw {
                let i = try int(id, "model.vocab[\"\(token)\"]")
                guard i >= 0 else { throw invalid("'model.vocab[\"\(token)\"]' is negative") }
                vocabulary[token] = i
            }
            let unk = try string(m["unk_token"], "model.unk_token", default: "[UNK]")
            guard let unkId = vocabulary[unk] else { throw invalid("the unknown token '\(unk)' is not in model.vocab") }
            let maxChars = try int(m["max_input_chars_per_word"], "model.max_input_chars_per_word", default: 100)
            guard maxChars >= 0 else { throw invalid("'model.max_input_chars_per_word' is negative") }
            return WordPieceModel(vocabulary: vocabulary, unknownToken: unk, unknownId: unkId,
                                  continuingSubwordPrefix: try string(m["continuing_subword_prefix"], "model.continuing_subword_prefix", default: "##"),
                                  maxInputCharsPerWord: maxChars)
        }

        func normalizer(_ v: Any?, at field: String) throws(TextError) -> Normalizer? {
            if isNull(v) { return nil }
            let o = try object(v, field)
            let kind = try type(o, field)
            switch kind {
            case "BertNormalizer":
                let lowercase = try bool(o["lowercase"], "\(field).lowercase", default: true)
                return .bert(cleanText: try bool(o["clean_text"], "\(field).clean_text", default: true),
                             handleChineseChars: try bool(o["handle_chinese_chars"], "\(field).handle_chinese_chars", default: true),
                             // null: strip accents when lowercasing, as BERT's uncased models do
                             stripAccents: try bool(o["strip_accents"], "\(field).strip_accents", default: lowercase),
                             lowercase: lowercase)
            case "Lowercase": return .lowercase
            case "StripAccents": return .stripAccents
            case "NFD": return .nfd
            case "NFC": return .nfc
            case "Sequence":
                guard let list = o["normalizers"] as? [Any] else { throw invalid("'\(field).normalizers' is missing or not a list") }
                var steps: [Normalizer] = []
                for (k, item) in list.enumerated() {
                    if let n = try normalizer(item, at: "\(field).normalizers[\(k)]") { steps.append(n) }
                }
                return .sequence(steps)
            default:
                throw .unsupportedTokenizer(path: source, component: "normalizer", type: kind)
            }
        }

        func preTokenizer(_ v: Any?, at field: String) throws(TextError) -> PreTokenizer? {
            if isNull(v) { return nil }
            let o = try object(v, field)
            let kind = try type(o, field)
            switch kind {
            case "BertPreTokenizer": return .bert
            case "WhitespaceSplit": return .whitespaceSplit
            case "Sequence":
                guard let list = o["pretokenizers"] as? [Any] else { throw invalid("'\(field).pretokenizers' is missing or not a list") }
                var steps: [PreTokenizer] = []
                for (k, item) in list.enumerated() {
                    if let p = try preTokenizer(item, at: "\(field).pretokenizers[\(k)]") { steps.append(p) }
                }
                return .sequence(steps)
            default:
                throw .unsupportedTokenizer(path: source, component: "pre_tokenizer", type: kind)
            }
        }

        func postProcessor(_ v: Any?, vocabulary: WordPieceModel) throws(TextError) -> PostProcessor {
            if isNull(v) { return .none }
            let o = try object(v, "post_processor")
            let kind = try type(o, "post_processor")
            switch kind {
            case "BertProcessing":
                func pair(_ key: String) throws(TextError) -> (String, Int) {
                    guard let p = o[key] as? [Any], p.count == 2 else { throw invalid("'post_processor.\(key)' is not a [token, id] pair") }
                    return (try string(p[0], "post_processor.\(key)[0]"), try int(p[1], "post_processor.\(key)[1]"))
                }
                let (cls, clsId) = try pair("cls")
                let (sep, sepId) = try pair("sep")
                return PostProcessor(single: [.special(ids: [clsId], tokens: [cls], typeId: 0), .sequence(typeId: 0),
                                              .special(ids: [sepId], tokens: [sep], typeId: 0)])
            case "TemplateProcessing":
                guard let single = o["single"] as? [Any] else { throw invalid("'post_processor.single' is missing or not a list") }
                let specials = isNull(o["special_tokens"]) ? [:] : try object(o["special_tokens"], "post_processor.special_tokens")
                var items: [PostProcessor.Item] = []
                for (k, raw) in single.enumerated() {
                    let field = "post_processor.single[\(k)]"
                    let item = try object(raw, field)
                    if let s = item["SpecialToken"] {
                        let st = try object(s, "\(field).SpecialToken")
                        let name = try string(st["id"], "\(field).SpecialToken.id")
                        let typeId = try int(st["type_id"], "\(field).SpecialToken.type_id", default: 0)
                        guard let entry = specials[name] as? Object else {
                            throw invalid("the template's special token '\(name)' is not in post_processor.special_tokens")
                        }
                        guard let rawIds = entry["ids"] as? [Any], let rawTokens = entry["tokens"] as? [Any],
                              rawIds.count == rawTokens.count else {
                            throw invalid("post_processor.special_tokens['\(name)'] needs lists 'ids' and 'tokens' of one length")
                        }
                        var ids: [Int] = []
                        var tokens: [String] = []
                        for (j, (i, t)) in zip(rawIds, rawTokens).enumerated() {
                            ids.append(try int(i, "post_processor.special_tokens['\(name)'].ids[\(j)]"))
                            tokens.append(try string(t, "post_processor.special_tokens['\(name)'].tokens[\(j)]"))
                        }
                        items.append(.special(ids: ids, tokens: tokens, typeId: typeId))
                    } else if let s = item["Sequence"] {
                        let sq = try object(s, "\(field).Sequence")
                        let name = try string(sq["id"], "\(field).Sequence.id")
                        guard name == "A" else { throw invalid("the single-sequence template uses sequence '\(name)' (expected A)") }
                        items.append(.sequence(typeId: try int(sq["type_id"], "\(field).Sequence.type_id", default: 0)))
                    } else {
                        throw invalid("'\(field)' is neither a SpecialToken nor a Sequence")
                    }
                }
                guard items.contains(where: { if case .sequence = $0 { return true } else { return false } }) else {
                    throw invalid("the single-sequence template has no Sequence item")
                }
                return PostProcessor(single: items)
            default:
                throw .unsupportedTokenizer(path: source, component: "post_processor", type: kind)
            }
        }

        func addedVocabulary(_ v: Any?, normalizer: Normalizer?) throws(TextError) -> AddedVocabulary {
            if isNull(v) { return AddedVocabulary(raw: [], normalized: []) }
            guard let list = v as? [Any] else { throw invalid("'added_tokens' is not a list") }
            var raw: [AddedVocabulary.Token] = []
            var normalized: [AddedVocabulary.Token] = []
            for (k, item) in list.enumerated() {
                let field = "added_tokens[\(k)]"
                let o = try object(item, field)
                let content = try string(o["content"], "\(field).content")
                if try bool(o["single_word"], "\(field).single_word", default: false) {
                    throw .unsupportedTokenizer(path: source, component: "added token '\(content)'", type: "single_word")
                }
                let id = try int(o["id"], "\(field).id")
                let lstrip = try bool(o["lstrip"], "\(field).lstrip", default: false)
                let rstrip = try bool(o["rstrip"], "\(field).rstrip", default: false)
                let special = try bool(o["special"], "\(field).special", default: false)
                // The library's default: special tokens are matched as written, others normalized.
                if try bool(o["normalized"], "\(field).normalized", default: !special) {
                    let scalars = normalizer?.normalize(Array(content.unicodeScalars)) ?? Array(content.unicodeScalars)
                    normalized.append(.init(id: id, content: scalars, lstrip: lstrip, rstrip: rstrip))
                } else {
                    raw.append(.init(id: id, content: Array(content.unicodeScalars), lstrip: lstrip, rstrip: rstrip))
                }
            }
            return AddedVocabulary(raw: raw, normalized: normalized)
        }

        func side(_ v: Any?, _ field: String) throws(TextError) -> Side {
            switch try string(v, field, default: "Right") {
            case "Right": return .right
            case "Left": return .left
            case let other: throw invalid("'\(field)' is '\(other)' (expected Right or Left)")
            }
        }

        func truncation(_ v: Any?) throws(TextError) -> Truncation? {
            if isNull(v) { return nil }
            let o = try object(v, "truncation")
            let maxLength = try int(o["max_length"], "truncation.max_length")
            guard maxLength >= 0 else { throw invalid("'truncation.max_length' is negative") }
            return Truncation(maxLength: maxLength, direction: try side(o["direction"], "truncation.direction"))
        }

        func padding(_ v: Any?) throws(TextError) -> Padding? {
            if isNull(v) { return nil }
            let o = try object(v, "padding")
            var length = Padding.Length.longest
            if let s = o["strategy"] as? String {
                guard s == "BatchLongest" else { throw .unsupportedTokenizer(path: source, component: "padding", type: s) }
            } else if let s = o["strategy"] as? Object, s.count == 1, let fixed = s["Fixed"] {
                let n = try int(fixed, "padding.strategy.Fixed")
                guard (0...Self.lengthCeiling).contains(n) else {
                    throw invalid("'padding.strategy.Fixed' is \(n) (expected 0 to \(Self.lengthCeiling))")
                }
                length = .fixed(n)
            } else if !isNull(o["strategy"]) {
                throw invalid("'padding.strategy' is neither \"BatchLongest\" nor {\"Fixed\": N}")
            }
            let multiple = isNull(o["pad_to_multiple_of"]) ? nil : try int(o["pad_to_multiple_of"], "padding.pad_to_multiple_of")
            if let multiple, !(0...Self.lengthCeiling).contains(multiple) {
                throw invalid("'padding.pad_to_multiple_of' is \(multiple) (expected 0 to \(Self.lengthCeiling))")
            }
            return Padding(length: length, direction: try side(o["direction"], "padding.direction"),
                           padToMultipleOf: multiple,
                           padId: try int(o["pad_id"], "padding.pad_id", default: 0),
                           padTypeId: try int(o["pad_type_id"], "padding.pad_type_id", default: 0),
                           padToken: try string(o["pad_token"], "padding.pad_token", default: "[PAD]"))
        }
    }
}
