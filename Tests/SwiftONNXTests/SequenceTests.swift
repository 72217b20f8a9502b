import Foundation
import XCTest
@testable import SwiftONNX

/// Sequence and optional values and their ops, against values worked out by hand (numpy's
/// array_split / concatenate / stack for the same calls); the ONNX node suite's sequence and
/// optional cases run them too.
final class SequenceTests: XCTestCase {
    private func ints(_ t: Tensor) throws -> [Int64] { try t.scalars(as: Int64.self) }
    private func range(_ shape: [Int]) throws -> Tensor {
        try Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { Int64($0) })
    }
    private func session(_ g: Graph, opset: Int = 18, optimize: Bool = true) throws -> InferenceSession {
        let m = Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                      opsets: ["": opset], graph: g, keepAlive: [])
        return try InferenceSession(model: m, options: .init(optimize: optimize))
    }

    func testPublicValues() throws {
        let a = try range([2]), b = try range([3])
        let s = try Tensor(sequence: [a, b], elementType: .int64)
        XCTAssertEqual(s.kind, .sequence(.tensor))
        XCTAssertEqual(s.sequenceElements?.count, 2)
        XCTAssertEqual(s.shape, [0])
        XCTAssertEqual(s.description, "Sequence(int64, 2 tensors)")
        XCTAssertNil(a.sequenceElements)
        XCTAssertThrowsError(try Tensor(sequence: [a, sinTensor([2])], elementType: .int64)) { e in
            guard case ONNXError.invalidInput(_, let why) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(why.contains("element #1 is float32"), why)
        }
        XCTAssertThrowsError(try Tensor(sequence: [s], elementType: .int64))
        let o = try Tensor(optional: s, elementType: .int64)
        XCTAssertEqual(o.kind, .optional(.sequence(.tensor)))
        XCTAssertEqual(o.optionalElement?.sequenceElements?.count, 2)
        let empty = try Tensor(optional: nil, elementType: .float32)
        XCTAssertTrue(empty.isOptional)
        XCTAssertNil(empty.optionalElement)
        XCTAssertThrowsError(try Tensor(optional: o, elementType: .int64))
        // Equality looks inside: same tensors, equal; other tensors or another kind, not.
        XCTAssertEqual(s, try Tensor(sequence: [try range([2]), try range([3])], elementType: .int64))
        XCTAssertNotEqual(s, try Tensor(sequence: [a, a], elementType: .int64))
        XCTAssertNotEqual(s, try Tensor(sequence: [a], elementType: .int64))
        XCTAssertNotEqual(s, try Tensor(optional: nil, elementType: .int64, elementKind: .sequence(.tensor)))
        XCTAssertEqual(empty, try Tensor(optional: nil, elementType: .float32))
        XCTAssertNotEqual(o, try Tensor(optional: try Tensor(sequence: [a], elementType: .int64), elementType: .int64))
        // Neither a TensorProto nor a .npy file holds a sequence.
        XCTAssertThrowsError(try TensorProto.encode(s, name: "s"))
        XCTAssertThrowsError(try NPY.encode(s))
    }

    func testInsertAtEraseLength() throws {
        let a = try range([1]), b = try range([2]), c = try range([3])
        let s = try runOp("SequenceConstruct", opset: 11, [a, b])[0]
        let front = try runOp("SequenceInsert", opset: 11, [s, c, Tensor(scalar: Int64(0))])[0]
        XCTAssertEqual(front.sequenceElements!.map(\.shape), [[3], [1], [2]])
        let back = try runOp("SequenceInsert", opset: 11, [s, c])[0]
        XCTAssertEqual(back.sequenceElements!.map(\.shape), [[1], [2], [3]])
        let middle = try runOp("SequenceInsert", opset: 11, [s, c, Tensor(scalar: Int32(-1))])[0]
        XCTAssertEqual(middle.sequenceElements!.map(\.shape), [[1], [3], [2]])
        // The input sequence is a value: inserting made new sequences, s is unchanged.
        XCTAssertEqual(s.sequenceElements!.count, 2)
        XCTAssertEqual(try ints(runOp("SequenceAt", opset: 11, [back, Tensor(scalar: Int64(-1))])[0]), [0, 1, 2])
        XCTAssertEqual(try ints(runOp("SequenceLength", opset: 11, [back])[0]), [3])
        let erased = try runOp("SequenceErase", opset: 11, [back, Tensor(scalar: Int64(1))])[0]
        XCTAssertEqual(erased.sequenceElements!.map(\.shape), [[1], [3]])
        let last = try runOp("SequenceErase", opset: 11, [back])[0]
        XCTAssertEqual(last.sequenceElements!.map(\.shape), [[1], [2]])
        let empty = try runOp("SequenceEmpty", opset: 11, [], ["dtype": .int(7)])[0]
        XCTAssertEqual(empty.dtype, .int64)
        XCTAssertEqual(try ints(runOp("SequenceLength", opset: 11, [empty])[0]), [0])

        // Typed errors: positions out of range, another element type, a tensor for a sequence.
        func fails(_ op: String, _ inputs: [Tensor?], _ words: String, _ attrs: [String: Attribute] = [:]) {
            XCTAssertThrowsError(try runOp(op, opset: 11, inputs, attrs)) { e in
                XCTAssertTrue("\(e)".contains(words), "\(op): \(e)")
            }
        }
        fails("SequenceAt", [s, Tensor(scalar: Int64(2))], "position 2 is out of range for a sequence of 2 tensors")
        fails("SequenceAt", [s, Tensor(scalar: Int64(-3))], "out of range")
        fails("SequenceInsert", [s, c, Tensor(scalar: Int64(3))], "out of range")
        fails("SequenceInsert", [s, sinTensor([2])], "the tensor is float32; the sequence holds int64")
        fails("SequenceErase", [empty], "empty sequence")
        fails("SequenceAt", [s, sinTensor([])], "position must be int32 or int64")
        fails("SequenceLength", [a], "not a sequence")
        fails("SequenceEmpty", [], "not a tensor element type", ["dtype": .int(99)])
    }

    func testSplitToSequenceAndConcatFromSequence() throws {
        let x = try range([5, 2])
        // No split: one element per index along the axis; keepdims 0 drops the axis.
        let ones = try runOp("SplitToSequence", opset: 11, [x], ["axis": .int(0), "keepdims": .int(0)])[0]
        XCTAssertEqual(ones.sequenceElements!.map(\.shape), Array(repeating: [2], count: 5))
        XCTAssertEqual(try ints(ones.sequenceElements![3]), [6, 7])
        // A scalar split: chunks of 2 and a last chunk of 1 (np.array_split(x, [2, 4])).
        let chunks = try runOp("SplitToSequence", opset: 11, [x, Tensor(scalar: Int64(2))])[0]
        XCTAssertEqual(chunks.sequenceElements!.map(\.shape), [[2, 2], [2, 2], [1, 2]])
        XCTAssertEqual(try ints(chunks.sequenceElements![2]), [8, 9])
        // Sizes along axis 1 (negative axis).
        let cols = try runOp("SplitToSequence", opset: 11, [x, try Tensor(shape: [2], scalars: [Int64(1), 1])], ["axis": .int(-1)])[0]
        XCTAssertEqual(try ints(cols.sequenceElements![1]), [1, 3, 5, 7, 9])
        // Back together: np.concatenate(chunks, 0) == x; np.stack(ones, 1).
        let joined = try runOp("ConcatFromSequence", opset: 11, [chunks], ["axis": .int(0)])[0]
        XCTAssertEqual(joined.shape, [5, 2])
        XCTAssertEqual(try ints(joined), try ints(x))
        let stacked = try runOp("ConcatFromSequence", opset: 11, [ones], ["axis": .int(-1), "new_axis": .int(1)])[0]
        XCTAssertEqual(stacked.shape, [2, 5])
        XCTAssertEqual(try ints(stacked), [0, 2, 4, 6, 8, 1, 3, 5, 7, 9])

        XCTAssertThrowsError(try runOp("SplitToSequence", opset: 11, [x, try Tensor(shape: [2], scalars: [Int64(2), 2])]))
        XCTAssertThrowsError(try runOp("SplitToSequence", opset: 11, [x, Tensor(scalar: Int64(0))]))
        XCTAssertThrowsError(try runOp("ConcatFromSequence", opset: 11, [try Tensor(sequence: [], elementType: .int64)], ["axis": .int(0)])) { e in
            XCTAssertTrue("\(e)".contains("the sequence is empty"), "\(e)")
        }
        XCTAssertThrowsError(try runOp("ConcatFromSequence", opset: 11, [chunks], ["axis": .int(2)]))
    }

    func testOptionalOps() throws {
        let t = try range([2])
        let o = try runOp("Optional", opset: 15, [t])[0]
        XCTAssertEqual(o.kind, .optional(.tensor))
        XCTAssertEqual(try runOp("OptionalHasElement", opset: 18, [o])[0].scalars(as: Bool.self), [true])
        XCTAssertEqual(try ints(runOp("OptionalGetElement", opset: 18, [o])[0]), [0, 1])
        let none = try runOp("Optional", opset: 15, [nil], ["type": .type(.tensor, .int64)])[0]
        XCTAssertNil(none.optionalElement)
        XCTAssertEqual(none.dtype, .int64)
        XCTAssertEqual(try runOp("OptionalHasElement", opset: 18, [none])[0].scalars(as: Bool.self), [false])
        XCTAssertEqual(try runOp("OptionalHasElement", opset: 18, [nil])[0].scalars(as: Bool.self), [false])
        XCTAssertEqual(try runOp("OptionalHasElement", opset: 18, [t])[0].scalars(as: Bool.self), [true])
        XCTAssertThrowsError(try runOp("OptionalGetElement", opset: 18, [none])) { e in
            XCTAssertTrue("\(e)".contains("empty"), "\(e)")
        }
        XCTAssertThrowsError(try runOp("Optional", opset: 15, [nil]))   // no input and no type
    }

    /// A graph: a sequence built, mapped through a body (Add of each element and an outer tensor),
    /// then concatenated; fed and returned through the session API, optimized and not.
    func testSequenceThroughASession() throws {
        let body = graph("body", [node("Add", ["e", "k"], ["y"])], inputs: [vi("e"), vi("k")], outputs: [vi("y")])
        let g = graph("main", [
            node("SequenceInsert", ["seq", "x"], ["s2"]),
            node("SequenceMap", ["s2", "k"], ["mapped"], ["body": .graph(body)]),
            node("ConcatFromSequence", ["mapped"], ["joined"], ["axis": .int(0)]),
            node("SequenceLength", ["mapped"], ["n"]),
        ], inputs: [ValueInfo(name: "seq", type: .float32, shape: nil, kind: .sequence(.tensor)),
                    vi("x", .float32, [.symbolic("m")]), vi("k", .float32, [.known(1)])],
           outputs: [vi("joined"), vi("n"), ValueInfo(name: "mapped", type: .float32, shape: nil, kind: .sequence(.tensor))])
        for optimize in [false, true] {
            let s = try session(g, opset: 17, optimize: optimize)
            XCTAssertEqual(s.inputs[0].kind, .sequence(.tensor))
            XCTAssertEqual(s.outputs[2].kind, .sequence(.tensor))
            let seq = try Tensor(sequence: [try Tensor(shape: [2], scalars: [Float(1), 2])], elementType: .float32)
            let out = try s.run(["seq": seq, "x": try Tensor(shape: [3], scalars: [Float(3), 4, 5]),
                                 "k": try Tensor(shape: [1], scalars: [Float(10)])])
            XCTAssertEqual(try out["joined"]!.scalars(as: Float.self), [11, 12, 13, 14, 15])
            XCTAssertEqual(try out["n"]!.scalars(as: Int64.self), [2])
            XCTAssertEqual(out["mapped"]!.sequenceElements!.map(\.shape), [[2], [3]])
            // A tensor where the model takes a sequence, and the reverse: typed errors naming the input.
            XCTAssertThrowsError(try s.run(["seq": try range([2]), "x": sinTensor([3]), "k": sinTensor([1])])) { e in
                guard case ONNXError.invalidInput(let name, let why) = e else { return XCTFail("\(e)") }
                XCTAssertEqual(name, "seq")
                XCTAssertTrue(why.contains("sequence(tensor)"), why)
            }
            XCTAssertThrowsError(try s.run(["seq": seq, "x": seq, "k": sinTensor([1])]))
            // A sequence of another element type.
            let ints = try Tensor(sequence: [try range([2])], elementType: .int64)
            XCTAssertThrowsError(try s.run(["seq": ints, "x": sinTensor([3]), "k": sinTensor([1])]))
        }
    }

    /// A sequence reaching an op that takes tensors fails with a typed error naming the node, before
    /// the op reads anything.
    func testAContainerOnATensorOpIsRefused() throws {
        let g = graph("main", [
            node("SequenceConstruct", ["x"], ["s"]),
            node("Relu", ["s"], ["y"]),
        ], inputs: [vi("x", .float32, [.known(2)])], outputs: [vi("y")])
        let s = try session(g, opset: 17, optimize: false)
        XCTAssertThrowsError(try s.run(["x": sinTensor([2])])) { e in
            guard case ONNXError.nodeFailed(let node, let op, let why) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(op, "Relu")
            XCTAssertEqual(node, "Relu_y")
            XCTAssertTrue(why.contains("sequence(tensor)"), why)
        }
    }

    /// SequenceProto and OptionalProto files as numpy_helper.from_list / from_optional write them.
    func testDecodingSequenceAndOptionalFiles() throws {
        // from_list([np.array([1, 2], np.int64), np.array([[3]], np.int64)], "s")
        let seqBytes: [UInt8] = [10, 1, 115, 16, 1, 26, 22, 8, 2, 16, 7, 74, 16, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,
                                 26, 16, 8, 1, 8, 1, 16, 7, 74, 8, 3, 0, 0, 0, 0, 0, 0, 0]
        let (name, s) = try TensorProto.decodeSequence(seqBytes)
        XCTAssertEqual(name, "s")
        XCTAssertEqual(s.sequenceElements?.map(\.shape), [[2], [1, 1]])
        XCTAssertEqual(try ints(s.sequenceElements![1]), [3])
        // from_optional(None, "o", elem_type=TENSOR)
        let (_, none) = try TensorProto.decodeOptional([10, 1, 111, 16, 1], elementType: .int32)
        XCTAssertNil(none.optionalElement)
        XCTAssertEqual(none.dtype, .int32)
        XCTAssertThrowsError(try TensorProto.decodeSequence([0xFF, 0xFF, 0xFF]))
    }
}
