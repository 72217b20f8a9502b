import Foundation
import XCTest
import SwiftONNXText

/// Bad or unsupported tokenizer files end in a typed TextError that says what is wrong, never a crash.
final class TokenizerErrorTests: XCTestCase {
    func expectError(_ json: String, _ check: (TextError) -> Bool, file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try WordPieceTokenizer(json: Data(json.utf8), source: "t.json")
            XCTFail("no error for \(json)", file: file, line: line)
        } catch {
            XCTAssertTrue(check(error), "unexpected error: \(error)", file: file, line: line)
            XCTAssertFalse(error.localizedDescription.isEmpty, file: file, line: line)
        }
    }

    static let vocab = ###"{"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "[PAD]": 3, "hello": 4, "world": 5, "##s": 6}"###
    static func wordPiece(_ extra: String = "") -> String {
        #"{"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": "# + vocab + "}" + extra + "}"
    }

    func testMissingFile() {
        do {
            _ = try WordPieceTokenizer(contentsOf: URL(fileURLWithPath: "/nonexistent/tokenizer.json"))
            XCTFail("no error")
        } catch {
            XCTAssertEqual(error, .fileNotFound(path: "/nonexistent/tokenizer.json", what: "tokenizer"))
            XCTAssertEqual(error.description, "tokenizer '/nonexistent/tokenizer.json' does not exist")
        }
    }

    func testFolderInsteadOfFile() throws {
        let dir = try TextTestFiles.temporaryFolder(self)
        XCTAssertThrowsError(try WordPieceTokenizer(contentsOf: dir)) { e in
            XCTAssertTrue("\(e)".contains("is a folder"), "\(e)")
        }
    }

    func testBadJSON() {
        expectError("{\"model\": ") { if case .invalidTokenizer(_, let r) = $0 { return r.contains("not valid JSON") } else { return false } }
        expectError("[1, 2]") { if case .invalidTokenizer(_, let r) = $0 { return r.contains("not a JSON object") } else { return false } }
        expectError("{}") { if case .invalidTokenizer(_, let r) = $0 { return r.contains("'model'") } else { return false } }
        expectError(#"{"model": {"type": "WordPiece"}}"#) { if case .invalidTokenizer(_, let r) = $0 { return r.contains("model.vocab") } else { return false } }
        expectError(#"{"model": {"type": "WordPiece", "vocab": {"a": "x"}}}"#) {
            if case .invalidTokenizer(_, let r) = $0 { return r.contains("not an integer") } else { return false }
        }
        expectError(#"{"model": {"type": "WordPiece", "vocab": {"a": 0}}}"#) {
            if case .invalidTokenizer(_, let r) = $0 { return r.contains("unknown token '[UNK]'") } else { return false }
        }
        expectError(Self.wordPiece(#", "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "[X]"}}], "special_tokens": {}}"#)) {
            if case .invalidTokenizer(_, let r) = $0 { return r.contains("'[X]'") } else { return false }
        }
        expectError(Self.wordPiece(#", "padding": {"strategy": {"Fixed": -1}}"#)) {
            if case .invalidTokenizer(_, let r) = $0 { return r.contains("Fixed") } else { return false }
        }
        // A hostile padding length is refused before anything is allocated.
        expectError(Self.wordPiece(#", "padding": {"strategy": {"Fixed": 1000000000000}}"#)) {
            if case .invalidTokenizer(_, let r) = $0 { return r.contains("expected 0 to 1048576") } else { return false }
        }
        expectError(Self.wordPiece(#", "padding": {"strategy": "BatchLongest", "pad_to_multiple_of": 99999999999}"#)) {
            if case .invalidTokenizer(_, let r) = $0 { return r.contains("pad_to_multiple_of") } else { return false }
        }
        expectError(Self.wordPiece(#", "padding": {"strategy": "BatchLongest", "direction": "Up"}"#)) {
            if case .invalidTokenizer(_, let r) = $0 { return r.contains("expected Right or Left") } else { return false }
        }
        expectError(Self.wordPiece(#", "truncation": {"max_length": -4}"#)) {
            if case .invalidTokenizer(_, let r) = $0 { return r.contains("negative") } else { return false }
        }
        expectError(Self.wordPiece(#", "added_tokens": [{"id": 9, "content": "[X]", "single_word": true}]"#)) {
            if case .unsupportedTokenizer(_, _, let type) = $0 { return type == "single_word" } else { return false }
        }
        expectError(Self.wordPiece(#", "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "NFKC"}]}"#)) {
            $0 == .unsupportedTokenizer(path: "t.json", component: "normalizer", type: "NFKC")
        }
        expectError(Self.wordPiece(#", "normalizer": {"lowercase": true}"#)) {
            if case .invalidTokenizer(_, let r) = $0 { return r.contains("normalizer.type") } else { return false }
        }
    }

    func testUnsupportedComponents() {
        expectError(#"{"model": {"type": "BPE", "vocab": {}, "merges": []}}"#) { $0 == .unsupportedTokenizer(path: "t.json", component: "model", type: "BPE") }
        expectError(#"{"model": {"type": "Unigram", "vocab": []}}"#) { $0 == .unsupportedTokenizer(path: "t.json", component: "model", type: "Unigram") }
        expectError(Self.wordPiece(#", "normalizer": {"type": "Precompiled"}"#)) {
            $0 == .unsupportedTokenizer(path: "t.json", component: "normalizer", type: "Precompiled")
        }
        expectError(Self.wordPiece(#", "pre_tokenizer": {"type": "ByteLevel"}"#)) {
            $0 == .unsupportedTokenizer(path: "t.json", component: "pre_tokenizer", type: "ByteLevel")
        }
        expectError(Self.wordPiece(#", "post_processor": {"type": "RobertaProcessing"}"#)) {
            $0 == .unsupportedTokenizer(path: "t.json", component: "post_processor", type: "RobertaProcessing")
        }
        let message = TextError.unsupportedTokenizer(path: "t.json", component: "model", type: "BPE").description
        XCTAssertEqual(message, "tokenizer 't.json': model of type 'BPE' is not supported (supported: a WordPiece model with BERT's normalizer and pre-tokenizer)")
    }

    /// A minimal tokenizer: no normalizer, pre-tokenizer or post-processor.
    func testMinimalTokenizer() throws {
        var t = try WordPieceTokenizer(json: Data(Self.wordPiece().utf8))
        XCTAssertEqual(try t.encode("hellos").tokens, ["hello", "##s"])
        XCTAssertEqual(try t.encode("").ids, [])
        t.truncation = Truncation(maxLength: 1)
        XCTAssertEqual(try t.encode("hellos").ids, [4])
    }

    func testBertProcessingAndTruncationWithoutRoom() throws {
        let json = Self.wordPiece(#", "pre_tokenizer": {"type": "BertPreTokenizer"}, "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 2], "cls": ["[CLS]", 1]}"#)
        var t = try WordPieceTokenizer(json: Data(json.utf8))
        XCTAssertEqual(try t.encode("hello worlds!").tokens, ["[CLS]", "hello", "world", "##s", "[UNK]", "[SEP]"])
        t.truncation = Truncation(maxLength: 1)
        XCTAssertThrowsError(try t.encode("hello")) { e in
            XCTAssertTrue("\(e)".contains("no room for the 2 special tokens"), "\(e)")
        }
    }
}
