import Foundation
import XCTest
@testable import SwiftONNX

// MARK: - small graph-building helpers

/// The control-flow tests run on the standard ops.
private let testRegistry = OpRegistry.standard

private func runGraph(_ g: Graph, _ feeds: [String: Tensor], registry: OpRegistry = testRegistry, opset: Int = 17) throws -> [Tensor] {
    let plan = try PlanBuilder(registry: registry, opsets: ["": opset]).compile(g)
    return try plan.run(feeds, env: RunEnv(threads: 1))
}

private func floats(_ t: Tensor) throws -> [Float] { try t.scalars(as: Float.self) }

final class ControlFlowTests: XCTestCase {
    // MARK: If

    /// Nested If whose branches read outer-scope values two levels up; only Identity (standard registry).
    func testIfOuterScopeNestedIdentityOnly() throws {
        // inner: c2 ? x : y      (x, y from the main graph)
        let innerThen = graph("inner_then", [node("Identity", ["x"], ["ix"])], outputs: [vi("ix")])
        let innerElse = graph("inner_else", [node("Identity", ["y"], ["iy"])], outputs: [vi("iy")])
        // outer then: (inner If, x) ; outer else: (y directly as an output, z initializer)
        let outerThen = graph("outer_then", [
            node("If", ["c2"], ["inner"], ["then_branch": .graph(innerThen), "else_branch": .graph(innerElse)]),
        ], outputs: [vi("inner"), vi("x")])
        let outerElse = graph("outer_else", [node("Identity", ["k"], ["kk"])], outputs: [vi("y"), vi("kk")],
                              initializers: ["k": try Tensor(shape: [2], scalars: [Float(7), 8])])
        let main = graph("main", [
            node("If", ["c1"], ["o1", "o2"], ["then_branch": .graph(outerThen), "else_branch": .graph(outerElse)]),
        ], inputs: [vi("c1"), vi("c2"), vi("x"), vi("y")], outputs: [vi("o1"), vi("o2")])
        let x = try Tensor(shape: [2], scalars: [Float(1), 2]), y = try Tensor(shape: [2], scalars: [Float(3), 4])
        func go(_ c1: Bool, _ c2: Bool) throws -> [[Float]] {
            try runGraph(main, ["c1": Tensor(scalar: c1), "c2": Tensor(scalar: c2), "x": x, "y": y],
                    registry: .standard).map(floats)
        }
        XCTAssertEqual(try go(true, true), [[1, 2], [1, 2]])
        XCTAssertEqual(try go(true, false), [[3, 4], [1, 2]])
        XCTAssertEqual(try go(false, true), [[3, 4], [7, 8]])
        XCTAssertEqual(try go(false, false), [[3, 4], [7, 8]])
    }

    /// Branches compute with outer values and produce different shapes; the condition may be [1].
    func testIfComputesAndShapesDiffer() throws {
        let thenG = graph("then", [node("Add", ["x", "y"], ["s"])], outputs: [vi("s")])
        let elseG = graph("else", [node("Identity", ["w"], ["ww"])], outputs: [vi("ww")],
                          initializers: ["w": try Tensor(shape: [3], scalars: [Float(9), 9, 9])])
        let g = graph("main", [node("If", ["c"], ["out"], ["then_branch": .graph(thenG), "else_branch": .graph(elseG)])],
                      inputs: [vi("c"), vi("x"), vi("y")], outputs: [vi("out")])
        let x = try Tensor(shape: [2], scalars: [Float(1), 2]), y = try Tensor(shape: [2], scalars: [Float(10), 20])
        let a = try runGraph(g, ["c": Tensor(shape: [1], scalars: [true]), "x": x, "y": y])
        XCTAssertEqual(try floats(a[0]), [11, 22])
        let b = try runGraph(g, ["c": Tensor(shape: [1], scalars: [false]), "x": x, "y": y])
        XCTAssertEqual(b[0].shape, [3])
    }

    func testIfErrors() throws {
        let thenG = graph("then", [node("Identity", ["x"], ["a"])], outputs: [vi("a")])
        let elseG = graph("else", [node("Identity", ["x"], ["b"])], outputs: [vi("b")])
        let g = graph("main", [node("If", ["c"], ["out"], ["then_branch": .graph(thenG), "else_branch": .graph(elseG)])],
                      inputs: [vi("c"), vi("x")], outputs: [vi("out")])
        let x = try Tensor(shape: [1], scalars: [Float(1)])
        // A condition with two elements.
        XCTAssertThrowsError(try runGraph(g, ["c": Tensor(shape: [2], scalars: [true, false]), "x": x]))
        // A branch with fewer outputs than the node.
        let g2 = graph("main", [node("If", ["c"], ["o1", "o2"], ["then_branch": .graph(thenG), "else_branch": .graph(elseG)])],
                       inputs: [vi("c"), vi("x")], outputs: [vi("o1")])
        XCTAssertThrowsError(try runGraph(g2, ["c": Tensor(scalar: true), "x": x]))
        // Missing else_branch.
        let g3 = graph("main", [node("If", ["c"], ["out"], ["then_branch": .graph(thenG)])],
                       inputs: [vi("c"), vi("x")], outputs: [vi("out")])
        XCTAssertThrowsError(try runGraph(g3, ["c": Tensor(scalar: true), "x": x]))
    }

    // MARK: Loop

    /// body(i, cond, x) -> (cond, x + step, scan: x + step, scan: i); step is an outer-scope value.
    private func counterBody(condFromLess: Bool, width: Int = 2) -> Graph {
        var nodes = [node("Add", ["x_in", "step"], ["x_out"]),
                     node("Identity", ["x_out"], ["scan_x"]),
                     node("Identity", ["i"], ["scan_i"])]
        if condFromLess {
            nodes.append(node("Less", ["x_out", "limit"], ["cond_out"]))
        } else {
            nodes.append(node("Identity", ["cond_in"], ["cond_out"]))
        }
        return graph("body", nodes, inputs: [vi("i", .int64, []), vi("cond_in", .bool, []), vi("x_in", .float32, [.known(width)])],
                     outputs: [vi("cond_out"), vi("x_out"), vi("scan_x", .float32, [.known(width)]), vi("scan_i", .int64, [])])
    }

    func testLoopTripCountWithScanOutputs() throws {
        let g = graph("main", [node("Loop", ["M", "", "x0"], ["x_final", "xs", "is"], ["body": .graph(counterBody(condFromLess: false))])],
                      inputs: [vi("M"), vi("x0"), vi("step")], outputs: [vi("x_final"), vi("xs"), vi("is")])
        let out = try runGraph(g, ["M": Tensor(scalar: Int64(4)), "x0": Tensor(shape: [2], scalars: [Float(1), 2]),
                              "step": try Tensor(shape: [2], scalars: [Float(0.5), -1])])
        XCTAssertEqual(try floats(out[0]), [3, -2])
        XCTAssertEqual(out[1].shape, [4, 2])
        XCTAssertEqual(try floats(out[1]), [1.5, 1, 2, 0, 2.5, -1, 3, -2])
        XCTAssertEqual(try out[2].scalars(as: Int64.self), [0, 1, 2, 3])
    }

    func testLoopConditionOnlyAndBoth() throws {
        let body = counterBody(condFromLess: true, width: 1)
        let g = graph("main", [node("Loop", ["", "c", "x0"], ["x_final", "xs", "is"], ["body": .graph(body)])],
                      inputs: [vi("c"), vi("x0"), vi("step"), vi("limit")], outputs: [vi("x_final"), vi("xs"), vi("is")])
        let feeds: [String: Tensor] = ["c": Tensor(scalar: true), "x0": try Tensor(shape: [1], scalars: [Float(0)]),
                                       "step": Tensor(scalar: Float(1)), "limit": Tensor(scalar: Float(3))]
        let out = try runGraph(g, feeds)
        // x = 1 (1<3), 2 (2<3), 3 (stop): three iterations, the last one's outputs included.
        XCTAssertEqual(try floats(out[0]), [3])
        XCTAssertEqual(try floats(out[1]), [1, 2, 3])
        XCTAssertEqual(try out[2].scalars(as: Int64.self), [0, 1, 2])
        // Initial condition false: no iteration.
        var f2 = feeds
        f2["c"] = Tensor(scalar: false)
        let out2 = try runGraph(g, f2)
        XCTAssertEqual(try floats(out2[0]), [0])
        XCTAssertEqual(out2[1].shape, [0, 1])   // from the body's declared output shape
        XCTAssertEqual(out2[2].shape, [0])
        XCTAssertEqual(out2[2].dtype, DType.int64)
        // Both M and cond: M wins when smaller.
        let gBoth = graph("main", [node("Loop", ["M", "c", "x0"], ["x_final", "xs", "is"], ["body": .graph(body)])],
                          inputs: [vi("M"), vi("c"), vi("x0"), vi("step"), vi("limit")],
                          outputs: [vi("x_final"), vi("xs"), vi("is")])
        var f3 = feeds
        f3["M"] = try Tensor(shape: [1], scalars: [Int64(2)])
        XCTAssertEqual(try floats(try runGraph(gBoth, f3)[0]), [2])
        f3["M"] = Tensor(scalar: Int64(10))
        XCTAssertEqual(try floats(try runGraph(gBoth, f3)[0]), [3])
    }

    func testLoopErrors() throws {
        // Body with the wrong number of inputs is rejected when the plan is built.
        let badBody = graph("body", [node("Identity", ["cond_in"], ["cond_out"])],
                            inputs: [vi("i"), vi("cond_in")], outputs: [vi("cond_out")])
        let g = graph("main", [node("Loop", ["M", "", "x0"], ["x_final"], ["body": .graph(badBody)])],
                      inputs: [vi("M"), vi("x0")], outputs: [vi("x_final")])
        XCTAssertThrowsError(try runGraph(g, ["M": Tensor(scalar: Int64(1)), "x0": Tensor(scalar: Float(0))]))
        // Scan outputs whose shape changes between iterations.
        let body = graph("body", [node("Identity", ["cond_in"], ["cond_out"]),
                                  node("Unsqueeze", ["x_in"], ["x_out"], ["axes": .ints([0])]),
                                  node("Identity", ["x_out"], ["scan"])],
                         inputs: [vi("i"), vi("cond_in"), vi("x_in")], outputs: [vi("cond_out"), vi("x_out"), vi("scan")])
        let g2 = graph("main", [node("Loop", ["M", "", "x0"], ["x_final", "s"], ["body": .graph(body)])],
                       inputs: [vi("M"), vi("x0")], outputs: [vi("x_final"), vi("s")])
        XCTAssertThrowsError(try runGraph(g2, ["M": Tensor(scalar: Int64(3)), "x0": Tensor(scalar: Float(0))]))
        // M of the wrong kind.
        XCTAssertThrowsError(try runGraph(g2, ["M": Tensor(scalar: Float(3)), "x0": Tensor(scalar: Float(0))]))
    }

    // MARK: Scan

    /// body(s, a, b) -> (s + a + b, scan: s + a + b)
    private func sumBody() -> Graph {
        graph("body", [node("Add", ["s", "a"], ["t"]), node("Add", ["t", "b"], ["s_out"]), node("Identity", ["s_out"], ["y"])],
              inputs: [vi("s"), vi("a"), vi("b")], outputs: [vi("s_out"), vi("y")])
    }

    /// Opset 9+: input axes [1, 0], directions [reverse, forward]; output axis 1, reversed.
    /// Reference computed with numpy.
    func testScan9AxesAndDirections() throws {
        let g = graph("main", [node("Scan", ["s0", "A", "B"], ["s_final", "Y"], [
            "body": .graph(sumBody()), "num_scan_inputs": .int(2),
            "scan_input_axes": .ints([1, 0]), "scan_input_directions": .ints([1, 0]),
            "scan_output_axes": .ints([-1]), "scan_output_directions": .ints([1]),
        ])], inputs: [vi("s0"), vi("A"), vi("B")], outputs: [vi("s_final"), vi("Y")])
        let out = try runGraph(g, ["s0": Tensor.zeros(.float32, [2]),
                              "A": try Tensor(shape: [2, 3], scalars: (0..<6).map { Float($0) }),
                              "B": try Tensor(shape: [3, 2], scalars: (0..<6).map { Float($0 * 10) })], opset: 11)
        XCTAssertEqual(try floats(out[0]), [63, 102])
        XCTAssertEqual(out[1].shape, [2, 3])
        XCTAssertEqual(try floats(out[1]), [63, 23, 2, 102, 49, 15])
    }

    func testScan9Errors() throws {
        let g = graph("main", [node("Scan", ["s0", "A", "B"], ["s_final", "Y"], [
            "body": .graph(sumBody()), "num_scan_inputs": .int(2),
        ])], inputs: [vi("s0"), vi("A"), vi("B")], outputs: [vi("s_final"), vi("Y")])
        // Sequence lengths disagree.
        XCTAssertThrowsError(try runGraph(g, ["s0": Tensor.zeros(.float32, [2]), "A": Tensor.zeros(.float32, [3, 2]),
                                         "B": Tensor.zeros(.float32, [4, 2])], opset: 9))
        // Axis out of range.
        let g2 = graph("main", [node("Scan", ["s0", "A", "B"], ["s_final", "Y"], [
            "body": .graph(sumBody()), "num_scan_inputs": .int(2), "scan_input_axes": .ints([2, 0]),
        ])], inputs: [vi("s0"), vi("A"), vi("B")], outputs: [vi("s_final"), vi("Y")])
        XCTAssertThrowsError(try runGraph(g2, ["s0": Tensor.zeros(.float32, [2]), "A": Tensor.zeros(.float32, [3, 2]),
                                          "B": Tensor.zeros(.float32, [3, 2])], opset: 9))
        // Missing num_scan_inputs.
        let g3 = graph("main", [node("Scan", ["s0", "A", "B"], ["s_final", "Y"], ["body": .graph(sumBody())])],
                       inputs: [vi("s0"), vi("A"), vi("B")], outputs: [vi("s_final"), vi("Y")])
        XCTAssertThrowsError(try runGraph(g3, [:], opset: 9))
    }

    /// Opset 8: batch axis 0, sequence_lens [3, 2], reversed input; short sequences are zero-padded.
    func testScan8SequenceLengthsReverse() throws {
        let body = graph("body", [node("Add", ["s", "x"], ["s_out"]), node("Identity", ["s_out"], ["y"])],
                         inputs: [vi("s"), vi("x")], outputs: [vi("s_out"), vi("y")])
        let g = graph("main", [node("Scan", ["lens", "s0", "X"], ["s_final", "Y"], [
            "body": .graph(body), "num_scan_inputs": .int(1), "directions": .ints([1]),
        ])], inputs: [vi("lens"), vi("s0"), vi("X")], outputs: [vi("s_final"), vi("Y")])
        let out = try runGraph(g, ["lens": Tensor(shape: [2], scalars: [Int32(3), 2]),
                              "s0": Tensor.zeros(.float32, [2, 2]),
                              "X": try Tensor(shape: [2, 3, 2], scalars: (1...12).map { Float($0) })], opset: 8)
        XCTAssertEqual(out[0].shape, [2, 2])
        XCTAssertEqual(try floats(out[0]), [9, 12, 16, 18])
        XCTAssertEqual(out[1].shape, [2, 3, 2])
        XCTAssertEqual(try floats(out[1]), [5, 6, 8, 10, 9, 12, 9, 10, 16, 18, 0, 0])
        // Without sequence_lens every batch entry runs the full length.
        let g2 = graph("main", [node("Scan", ["", "s0", "X"], ["s_final", "Y"], [
            "body": .graph(body), "num_scan_inputs": .int(1),
        ])], inputs: [vi("s0"), vi("X")], outputs: [vi("s_final"), vi("Y")])
        let out2 = try runGraph(g2, ["s0": Tensor.zeros(.float32, [2, 2]),
                                "X": try Tensor(shape: [2, 3, 2], scalars: (1...12).map { Float($0) })], opset: 8)
        XCTAssertEqual(try floats(out2[0]), [9, 12, 27, 30])
        // sequence_lens beyond the sequence.
        XCTAssertThrowsError(try runGraph(g, ["lens": Tensor(shape: [2], scalars: [Int32(4), 2]),
                                         "s0": Tensor.zeros(.float32, [2, 2]),
                                         "X": Tensor.zeros(.float32, [2, 3, 2])], opset: 8))
    }

    // MARK: ONNX conformance models whose bodies need ops of other families

    /// Runs test_loop11 and the test_scan* node tests with the test registry (Add, Mul, Slice, Unsqueeze).
    func testConformanceModelsWithTestOps() throws {
        let cases = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Conformance/cases")
        var ran = 0
        for name in ["test_loop11", "test_scan_sum", "test_scan9_sum", "test_scan9_scalar", "test_scan9_multi_state"] {
            let dir = cases.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("model.onnx").path) else { continue }
            let model = try ModelLoader.load(path: dir.appendingPathComponent("model.onnx").path)
            let plan = try PlanBuilder(registry: testRegistry, opsets: model.opsets).compile(model.graph)
            let ds = dir.appendingPathComponent("test_data_set_0")
            var feeds: [String: Tensor] = [:]
            for (k, inp) in model.graph.inputs.enumerated() {
                let bytes = try [UInt8](Data(contentsOf: ds.appendingPathComponent("input_\(k).pb")))
                feeds[inp.name] = try TensorProto.decode(bytes).tensor
            }
            let outs = try plan.run(feeds, env: RunEnv(threads: 1))
            for (j, got) in outs.enumerated() {
                let bytes = try [UInt8](Data(contentsOf: ds.appendingPathComponent("output_\(j).pb")))
                let want = try TensorProto.decode(bytes).tensor
                XCTAssertEqual(got.shape, want.shape, "\(name) output \(j)")
                XCTAssertEqual(got.dtype, want.dtype, "\(name) output \(j)")
                let a = try got.readAsDoubles(), b = try want.readAsDoubles()
                for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-5, "\(name) output \(j)") }
            }
            ran += 1
        }
        if ran == 0 { throw XCTSkip("conformance cases are not generated") }
    }
}
