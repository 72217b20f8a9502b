import Foundation
import XCTest
@testable import SwiftONNXText

/// The tokenizer against the `tokenizers` package (0.23.3) on the sentences of
/// Models/make_text_reference.py (Resources/tokenizer_reference.json): ids, type ids and attention
/// masks equal, token for token, under five settings.
final class TokenizerReferenceTests: XCTestCase {
    nonisolated(unsafe) static let reference: [String: Any] = (try? TextTestFiles.json("tokenizer_reference.json")) ?? [:]
    var sentences: [String] { Self.reference["sentences"] as? [String] ?? [] }

    func base() throws -> WordPieceTokenizer { try WordPieceTokenizer(contentsOf: TextTestFiles.tokenizer) }

    func testReferenceIsThere() {
        XCTAssertGreaterThanOrEqual(sentences.count, 300, "Resources/tokenizer_reference.json: run Models/make_text_reference.py")
    }

    func testPlain() throws {
        var t = try base()
        t.truncation = nil
        t.padding = nil
        let want = try rows("plain")
        try compare("plain", sentences.map { try t.encode($0) }, want)
        // The tokens as text too, byte for byte.
        for (i, (s, w)) in zip(sentences, want).enumerated() {
            let got = try t.encode(s).tokens.map { Array($0.utf8) }
            let expected = (w["tokens"] as? [String] ?? []).map { Array($0.utf8) }
            XCTAssertEqual(got, expected, "tokens of sentence \(i) \(s.debugDescription)")
        }
    }

    func testTruncatedTo16() throws {
        var t = try base()
        t.truncation = Truncation(maxLength: 16)
        t.padding = nil
        try compare("truncated16", sentences.map { try t.encode($0) }, try rows("truncated16"))
    }

    func testBatchesPaddedToLongest() throws {
        var t = try base()
        t.truncation = nil
        t.padding = Padding()
        try compare("batch_longest", try batches(t), try rows("batch_longest"))
    }

    func testLeftTruncationAndLeftPaddingToMultipleOf8() throws {
        var t = try base()
        t.truncation = Truncation(maxLength: 16, direction: .left)
        t.padding = Padding(direction: .left, padToMultipleOf: 8)
        try compare("left", try batches(t), try rows("left_truncated16_left_padded_multiple8"))
    }

    /// The file's own settings: truncation to 128 and padding Fixed 128.
    func testFileSettings() throws {
        let t = try base()
        XCTAssertEqual(t.truncation, Truncation(maxLength: 128))
        XCTAssertEqual(t.padding, Padding(length: .fixed(128), padToken: "[PAD]"))
        try compare("file_settings_first40", try t.encodeBatch(Array(sentences.prefix(40))), try rows("file_settings_first40"))
        XCTAssertEqual(try t.encode("Hello").count, 128)
    }

    func testVocabulary() throws {
        let t = try base()
        XCTAssertEqual(t.vocabularySize, 30522)
        XCTAssertEqual(t.id(of: "[CLS]"), 101)
        XCTAssertEqual(t.id(of: "##s"), 2015)
        XCTAssertNil(t.id(of: "not-a-token"))
        XCTAssertEqual(t.specialTokenCount, 2)
    }

    // MARK: - helpers

    func rows(_ key: String) throws -> [[String: Any]] {
        let r = try XCTUnwrap(Self.reference[key] as? [[String: Any]], "no '\(key)' in tokenizer_reference.json")
        return r
    }

    func batches(_ t: WordPieceTokenizer) throws -> [Encoding] {
        let size = Self.reference["batch_size"] as? Int ?? 8
        var out: [Encoding] = []
        for i in stride(from: 0, to: sentences.count, by: size) {
            out += try t.encodeBatch(Array(sentences[i..<min(i + size, sentences.count)]))
        }
        return out
    }

    func compare(_ name: String, _ got: [Encoding], _ want: [[String: Any]], file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(got.count, want.count, "\(name): number of encodings", file: file, line: line)
        var mismatches = 0
        for (i, (g, w)) in zip(got, want).enumerated() {
            let ids = w["ids"] as? [Int], types = w["type_ids"] as? [Int], mask = w["attention_mask"] as? [Int]
            if g.ids != ids || g.typeIds != types || g.attentionMask != mask {
                mismatches += 1
                XCTFail("\(name) #\(i) \(sentences[i].debugDescription):\n got  \(g.ids) \(g.typeIds) \(g.attentionMask)\n want "
                        + "\(ids ?? []) \(types ?? []) \(mask ?? [])", file: file, line: line)
                if mismatches > 10 { return }
            }
        }
    }
}
