import Foundation
import XCTest
@testable import SwiftONNXText

/// Every Unicode code point, alone, against what `tokenizers` (0.23.3) does with it
/// (Resources/unicode_reference.json from Models/make_text_reference.py): removed by clean-up,
/// whitespace, punctuation (a word of its own), CJK ideograph, or kept; and its normalization
/// (accents stripped through NFD, lowercased) when that changes it.
final class UnicodeClassTests: XCTestCase {
    func testEveryCodePoint() throws {
        let ref = try TextTestFiles.json("unicode_reference.json")
        let runs = try XCTUnwrap(ref["runs"] as? [[Int]])
        let normalized = try XCTUnwrap(ref["normalized"] as? [String: String])
        let bert = Normalizer.bert(cleanText: true, handleChineseChars: true, stripAccents: true, lowercase: true)
        var classMismatches = 0
        var normalizationMismatches = 0
        for (r, run) in runs.enumerated() {
            let end = r + 1 < runs.count ? runs[r + 1][0] : 0x110000
            for cp in run[0]..<end {
                guard let c = Unicode.Scalar(UInt32(cp)) else {
                    XCTAssertEqual(run[1], 9, "U+\(String(cp, radix: 16)) is not a scalar")
                    continue
                }
                let kind: Int
                if c.value == 0 || c.value == 0xFFFD || BertCharacterClass.isControl(c) { kind = 1 }
                else if BertCharacterClass.isWhitespace(c) { kind = 2 }
                else if BertCharacterClass.isChineseCharacter(c) { kind = 4 }
                else if BertCharacterClass.isPunctuation(c) { kind = 3 }
                else { kind = 0 }
                if kind != run[1] {
                    classMismatches += 1
                    if classMismatches <= 20 { XCTFail("U+\(String(cp, radix: 16, uppercase: true)): class \(kind), tokenizers \(run[1])") }
                }
                guard kind == 0 || kind == 3 || kind == 4 else { continue }
                let isHangul = (0xAC00...0xD7A3).contains(cp)
                if isHangul && normalized[String(cp)] == nil { continue }  // sampled
                var out = bert.normalize([c])
                if kind == 4 { out = Array(out.dropFirst().dropLast()) }
                let want = normalized[String(cp)].map { Array($0.unicodeScalars) } ?? [c]
                if out != want {
                    normalizationMismatches += 1
                    if normalizationMismatches <= 20 {
                        XCTFail("U+\(String(cp, radix: 16, uppercase: true)): normalized to \(out.map { String($0.value, radix: 16) }), "
                                + "tokenizers \(want.map { String($0.value, radix: 16) })")
                    }
                }
            }
        }
        XCTAssertEqual(classMismatches, 0)
        XCTAssertEqual(normalizationMismatches, 0)
    }
}
