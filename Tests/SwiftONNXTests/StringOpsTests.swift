import Foundation
import XCTest
@testable import SwiftONNX

/// The string ops against Python's results for the same calls (str.split, re.fullmatch, str.lower /
/// str.upper), written out here. (The ONNX node suite's string cases run them too.)
final class StringOpsTests: XCTestCase {
    func testSplitIsPythonsSplit() {
        // ("a,b,,c".split(","), "  a  b ".split(), "a b c".split(None, 1), "x".split("xx"), "".split(), "".split(","))
        XCTAssertEqual(pythonSplit("a,b,,c", delimiter: ",", maxsplit: nil), ["a", "b", "", "c"])
        XCTAssertEqual(pythonSplit("  a  b ", delimiter: nil, maxsplit: nil), ["a", "b"])
        XCTAssertEqual(pythonSplit("  a  b ", delimiter: "", maxsplit: nil), ["a", "b"])
        XCTAssertEqual(pythonSplit("a b  c ", delimiter: nil, maxsplit: 1), ["a", "b  c "])
        XCTAssertEqual(pythonSplit("a,b,c", delimiter: ",", maxsplit: 1), ["a", "b,c"])
        XCTAssertEqual(pythonSplit("x", delimiter: "xx", maxsplit: nil), ["x"])
        XCTAssertEqual(pythonSplit("", delimiter: nil, maxsplit: nil), [])
        XCTAssertEqual(pythonSplit("", delimiter: ",", maxsplit: nil), [""])
        XCTAssertEqual(pythonSplit("é-ü--", delimiter: "-", maxsplit: nil), ["é", "ü", "", ""])
    }

    func testSplitConcatMatchAndNormalize() throws {
        let x = Tensor(validShape: [3], strings: ["a-b", "c", "d--e-f"])
        let split = try runOp("StringSplit", opset: 20, [x], ["delimiter": .string("-")], outputs: 2)
        XCTAssertEqual(split[0].shape, [3, 4])
        XCTAssertEqual(try split[0].strings(), ["a", "b", "", "", "c", "", "", "", "d", "", "e", "f"])
        XCTAssertEqual(try split[1].scalars(as: Int64.self), [2, 1, 4])
        // broadcasting: [3] ++ [1]
        let cat = try runOp("StringConcat", opset: 20, [x, Tensor(validShape: [1], strings: ["!"])])[0]
        XCTAssertEqual(try cat.strings(), ["a-b!", "c!", "d--e-f!"])
        // a full match, not a search: "ab" does not fully match "a"; alternation binds inside the group
        let re = try runOp("RegexFullMatch", opset: 20, [Tensor(validShape: [4], strings: ["a", "ab", "b", "xa"])],
                           ["pattern": .string("a|ab")])[0]
        XCTAssertEqual(try re.scalars(as: Bool.self), [true, true, false, false])
        let norm = try runOp("StringNormalizer", opset: 10, [Tensor(validShape: [1, 3], strings: ["Stop", "go", "STOP"])],
                             ["stopwords": .strings(["stop"]), "case_change_action": .string("UPPER")])[0]
        XCTAssertEqual(norm.shape, [1, 1])
        XCTAssertEqual(try norm.strings(), ["GO"])
        XCTAssertThrowsError(try runOp("RegexFullMatch", opset: 20, [x], ["pattern": .string("(")]))
        XCTAssertThrowsError(try runOp("StringConcat", opset: 20, [x, sinTensor([3])]))
    }
}
