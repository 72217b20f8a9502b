import Foundation
import XCTest
@testable import SwiftONNX

private func model(_ g: Graph, opset: Int = 17) -> Model {
    Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
          opsets: ["": opset], graph: g, keepAlive: [])
}

private func opTypes(_ g: Graph) -> [String] { g.nodes.map(\.opType) }

/// Plans made for input shapes (ShapePlans) and the rewrite that makes them pay: constant If inlining.
final class ShapePlanTests: XCTestCase {
    /// x [1, 2, h, 5] -> Conv 1x1 (constant weights) -> y; h == 1 ? relu(y) : -y (the condition
    /// computed from Shape(y), as exporters write batch checks). Neither branch changes the weights
    /// (Relu fuses into the conv's epilogue), so the plans share them.
    private func branchyModel() -> Model {
        let w = Tensor(validShape: [3, 2, 1, 1], scalars: [Float(1), 2, -1, 0.5, 0.25, 3])
        let thenG = graph("then", [node("Relu", ["y"], ["ty"])], outputs: [vi("ty")])
        let elseG = graph("else", [node("Neg", ["y"], ["ey"])], outputs: [vi("ey")])
        let g = graph("main", [
            node("Conv", ["x", "w"], ["y"]),
            node("Shape", ["y"], ["s"]),
            node("Gather", ["s", "two_i"], ["h"]),
            node("Equal", ["h", "one_i"], ["c"]),
            node("If", ["c"], ["z"], ["then_branch": .graph(thenG), "else_branch": .graph(elseG)]),
        ], inputs: [vi("x", .float32, [1, 2, "h", 5])], outputs: [vi("z", .float32)],
           initializers: ["w": w, "two_i": Tensor(scalar: Int64(2)), "one_i": Tensor(scalar: Int64(1))])
        return model(g)
    }

    /// The result computed by hand (in Double), to compare within float rounding.
    private func expected(_ x: Tensor) throws -> [Double] {
        let h = x.shape[2], xs = try x.scalars(as: Float.self).map(Double.init)
        let w: [Double] = [1, 2, -1, 0.5, 0.25, 3]
        var out: [Double] = []
        for m in 0..<3 {
            for p in 0..<(h * 5) {
                let y = w[2 * m] * xs[p] + w[2 * m + 1] * xs[h * 5 + p]
                out.append(h == 1 ? max(y, 0) : -y)
            }
        }
        return out
    }

    func testSecondRunOfAShapeGetsItsOwnPlanWithTheBranchInlined() throws {
        let session = try InferenceSession(model: branchyModel(), options: .init())
        guard let shapePlans = session.shapePlans else { return XCTFail("a model with a symbolic input dim gets shape plans") }
        XCTAssertEqual(session.prepared.count, 1, "the conv weights are prepared once")
        let x1 = sinTensor([1, 2, 1, 5])
        let first = try session.run(["x": x1])["z"]!
        XCTAssertEqual(shapePlans.count, 0, "a shape seen once keeps the general plan")
        let second = try session.run(["x": x1])["z"]!
        XCTAssertEqual(shapePlans.count, 1, "the second run of a shape plans for it")
        let third = try session.run(["x": x1])["z"]!
        try assertClose(first, try expected(x1), tol: 1e-5)
        XCTAssertEqual(first.bytes(), second.bytes())
        XCTAssertEqual(first.bytes(), third.bytes())
        let steps = shapePlans.plans.values.first!.steps.map(\.opType)
        XCTAssertFalse(steps.contains("If") || steps.contains("Shape") || steps.contains("Equal"),
                       "Shape, the comparison and the If fold away once the shape is known: \(steps)")
        XCTAssertEqual(session.prepared.count, 1, "the shape plan shares the prepared conv weights")

        // Another shape takes the other branch; its own plan comes on its second run.
        let x3 = sinTensor([1, 2, 3, 5], 0.11)
        let a = try session.run(["x": x3])["z"]!
        XCTAssertEqual(shapePlans.count, 1)
        let b = try session.run(["x": x3])["z"]!
        XCTAssertEqual(shapePlans.count, 2)
        try assertClose(a, try expected(x3), tol: 1e-5)
        XCTAssertEqual(a.bytes(), b.bytes())
        // The first shape's plan is still used and still right.
        XCTAssertEqual(try session.run(["x": x1])["z"]!.bytes(), first.bytes())
        // Steady state of a shape plan: no system allocation for tensors.
        let before = session.memory.systemAllocations
        _ = try session.run(["x": x1])
        XCTAssertEqual(session.memory.systemAllocations - before, 0)
    }

    /// `prepare(inputShapes:)` plans a shape before its first run: that run uses the plan and records
    /// its memory, the second follows the pattern (one slab), the third allocates nothing; results
    /// equal an unprepared session's. Shapes that do not fit are the run's typed errors.
    func testPreparedShapeIsPlannedBeforeItsFirstRun() throws {
        let session = try InferenceSession(model: branchyModel(), options: .init())
        guard let shapePlans = session.shapePlans else { return XCTFail("a model with a symbolic input dim gets shape plans") }
        try session.prepare(inputShapes: ["x": [1, 2, 3, 5]])
        XCTAssertEqual(shapePlans.count, 1, "prepared before any run")
        try session.prepare(inputShapes: ["x": [1, 2, 3, 5]])
        XCTAssertEqual(shapePlans.count, 1, "preparing again does nothing")
        let x = sinTensor([1, 2, 3, 5], 0.3)
        let first = try session.run(["x": x])["z"]!
        try assertClose(first, try expected(x), tol: 1e-5)
        XCTAssertEqual(shapePlans.count, 1, "the first run used the prepared plan (no second plan)")
        XCTAssertNotNil(session.memory.pattern(for: MemoryPlanner.signature([x])), "the first run recorded its memory")
        let s0 = session.memory.systemAllocations
        XCTAssertEqual(try session.run(["x": x])["z"]!.bytes(), first.bytes())
        XCTAssertLessThanOrEqual(session.memory.systemAllocations - s0, 2, "the second run: a slab and its output")
        let s1 = session.memory.systemAllocations
        _ = try session.run(["x": x])
        XCTAssertEqual(session.memory.systemAllocations - s1, 0)
        let plain = try InferenceSession(model: branchyModel(), options: .init())
        XCTAssertEqual(try plain.run(["x": x])["z"]!.bytes(), first.bytes())

        XCTAssertThrowsError(try session.prepare(inputShapes: ["x": [1, 3, 3, 5]])) { e in
            guard case .inputShapeMismatch(input: "x", _, _)? = e as? ONNXError else { return XCTFail("\(e)") }
        }
        XCTAssertThrowsError(try session.prepare(inputShapes: ["y": [1, 2, 3, 5]])) { e in
            XCTAssertEqual(e as? ONNXError, .unknownInput("y"))
        }
        XCTAssertThrowsError(try session.prepare(inputShapes: [:])) { e in
            XCTAssertEqual(e as? ONNXError, .missingInput("x"))
        }
    }

    func testFixedShapesAndUnoptimizedSessionsHaveNoShapePlans() throws {
        XCTAssertNil(try InferenceSession(model: branchyModel(), options: .init(optimize: false)).shapePlans)
        let g = graph("main", [node("Relu", ["x"], ["y"])], inputs: [vi("x", .float32, [2, 3])], outputs: [vi("y")])
        XCTAssertNil(try InferenceSession(model: model(g), options: .init()).shapePlans)
    }

    /// Shape arithmetic in every layer of a deep stack (as TorchScript exports write each Reshape's
    /// target): each layer's Shape can fold only once the Reshape before it has a known output, so
    /// folding a layer per round of the pass manager (8 rounds) left the later layers computing their
    /// shapes at run time. Constant folding now infers types as it walks: the plan for the input shape
    /// has no Shape, Gather, Concat or Unsqueeze left, and computes what the general plan computes.
    func testShapeArithmeticOfEveryLayerFoldsInThePlanForAnInputShape() throws {
        var nodes: [Node] = []
        var prev = "x"
        let layers = 20
        for i in 0..<layers {
            nodes += [
                node("Neg", [prev], ["a\(i)"]),
                node("Shape", ["a\(i)"], ["s\(i)"]),
                node("Gather", ["s\(i)", "one_i"], ["n\(i)"]),
                node("Unsqueeze", ["n\(i)", "zero_1"], ["u\(i)"]),
                node("Concat", ["u\(i)", "minus_one"], ["t\(i)"], ["axis": .int(0)]),
                node("Reshape", ["a\(i)", "t\(i)"], ["y\(i)"]),
            ]
            prev = "y\(i)"
        }
        let g = graph("main", nodes, inputs: [vi("x", .float32, [1, "n", 4])], outputs: [vi(prev, .float32)],
                      initializers: ["one_i": Tensor(scalar: Int64(1)), "zero_1": Tensor(validShape: [1], scalars: [Int64(0)]),
                                     "minus_one": Tensor(validShape: [1], scalars: [Int64(-1)])])
        let session = try InferenceSession(model: model(g, opset: 17), options: .init())
        let x = sinTensor([1, 3, 4])
        let first = try session.run(["x": x])[prev]!
        let second = try session.run(["x": x])[prev]!
        XCTAssertEqual(first.shape, [4, 3], "[3, 4] and [4, 3] by turns: each layer keeps dim 1 of its input first")
        XCTAssertEqual(try first.scalars(as: Float.self), try x.scalars(as: Float.self), "an even number of negations")
        XCTAssertEqual(first.bytes(), second.bytes())
        guard let plan = session.shapePlans?.plans.values.first else { return XCTFail("the second run of a shape plans for it") }
        let steps = plan.steps.map(\.opType)
        for op in ["Shape", "Gather", "Unsqueeze", "Concat"] {
            XCTAssertFalse(steps.contains(op), "\(op) is left in the plan for the input shape: \(steps)")
        }
    }

    /// ViT as TorchScript writes it: the head transposes around attention also feed Shape nodes, and
    /// the attention output goes through a Reshape to its own shape (computed from those Shapes)
    /// before its transpose. In the plan for input shapes the Shapes fold, the Reshape becomes an
    /// Identity and goes, and the attention reads and writes the heads in place: no Transpose is left.
    /// Checked against the unoptimized path at 1 and 2 threads, on the first (general) and second
    /// (specialized) runs.
    func testHeadTransposesBehindFoldedShapesAndASameShapeReshapeGoInThePlanForAnInputShape() throws {
        let t = { (ins: String, out: String, p: [Int]) in node("Transpose", [ins], [out], ["perm": .ints(p)]) }
        let g = graph("main", [
            t("QS", "Q2", [0, 2, 1, 3]), t("R", "KT", [0, 2, 3, 1]), t("VS", "V2", [0, 2, 1, 3]),
            node("Shape", ["Q2"], ["qs"]), node("Gather", ["qs", "one_i"], ["h"]), node("Unsqueeze", ["h", "zero_1"], ["hu"]),
            node("Shape", ["V2"], ["vs"]), node("Gather", ["vs", "two_i"], ["n"]), node("Unsqueeze", ["n", "zero_1"], ["nu"]),
            node("Mul", ["Q2", "c"], ["Qc"]), node("Mul", ["KT", "c"], ["KTc"]),
            node("MatMul", ["Qc", "KTc"], ["s"]), node("Softmax", ["s"], ["p"], ["axis": .int(-1)]),
            node("MatMul", ["p", "V2"], ["Y0"]),
            node("Concat", ["minus_one", "hu", "nu", "d"], ["target"], ["axis": .int(0)]),
            node("Reshape", ["Y0", "target"], ["Y1"]),
            t("Y1", "Y2", [0, 2, 1, 3]),
            node("Reshape", ["Y2", "merge"], ["Y"]),
        ], inputs: [vi("QS", .float32, ["b", "n", 2, 4]), vi("R", .float32, ["b", "n", 2, 4]), vi("VS", .float32, ["b", "n", 2, 4])],
           outputs: [vi("Y", .float32)],
           initializers: ["one_i": Tensor(scalar: Int64(1)), "two_i": Tensor(scalar: Int64(2)),
                          "zero_1": Tensor(validShape: [1], scalars: [Int64(0)]), "minus_one": Tensor(validShape: [1], scalars: [Int64(-1)]),
                          "d": Tensor(validShape: [1], scalars: [Int64(4)]), "merge": Tensor(validShape: [3], scalars: [Int64(0), 0, 8]),
                          "c": Tensor(scalar: Float(0.7))])
        let feeds = ["QS": sinTensor([2, 5, 2, 4], 0.31), "R": sinTensor([2, 5, 2, 4], 0.53), "VS": sinTensor([2, 5, 2, 4], 0.17)]
        let reference = try InferenceSession(model: model(g), options: .init(optimize: false)).run(feeds)["Y"]!
        XCTAssertEqual(reference.shape, [2, 5, 8])
        for threads in [1, 2] {
            let session = try InferenceSession(model: model(g), options: .init(threads: threads))
            for _ in 0..<2 { try assertClose(try session.run(feeds)["Y"]!, reference, rtol: 1e-5, atol: 1e-6) }
            guard let plan = session.shapePlans?.plans.values.first else { return XCTFail("the second run of a shape plans for it") }
            let steps = plan.steps.map(\.opType)
            XCTAssertFalse(steps.contains("Transpose"), "\(steps)")
            XCTAssertEqual(steps.filter { $0 == "Attention" }.count, 1, "\(steps)")
        }
    }

    func testOnlyAFewShapePlansAreKept() throws {
        let session = try InferenceSession(model: branchyModel(), options: .init())
        for h in 1...6 {
            let x = sinTensor([1, 2, h, 5], Double(h))
            for _ in 0..<2 {
                try assertClose(try session.run(["x": x])["z"]!, try expected(x), tol: 1e-5)
            }
        }
        XCTAssertEqual(session.shapePlans?.count, 4)
    }

    /// The chosen branch's values are renamed where their names are taken in the graph; a nested If
    /// that reads them keeps working; the result equals the graph run as written.
    func testInlinedBranchWithClashingNamesMatchesThePlainPath() throws {
        // branch (taken): y = x + k (its own k), nested If(c2) on y, outputs (nested, y)
        let innerThen = graph("inner_then", [node("Identity", ["y"], ["iy"])], outputs: [vi("iy")])
        let innerElse = graph("inner_else", [node("Neg", ["y"], ["ny"])], outputs: [vi("ny")])
        let chosen = graph("then", [
            node("Add", ["x", "k"], ["y"]),
            node("If", ["c2"], ["n"], ["then_branch": .graph(innerThen), "else_branch": .graph(innerElse)]),
        ], outputs: [vi("n"), vi("y")], initializers: ["k": try Tensor(shape: [2], scalars: [Float(1), 2])])
        let other = graph("else", [node("Identity", ["x"], ["ox"])], outputs: [vi("ox"), vi("x")])
        func main() -> Graph {
            graph("main", [
                node("If", ["c"], ["o1", "o2"], ["then_branch": .graph(chosen.deepCopy()), "else_branch": .graph(other.deepCopy())]),
                node("Mul", ["o1", "x"], ["y"]),          // "y" is taken outside the branch too
                node("Add", ["y", "k"], ["z"]),           // and so is "k"
            ], inputs: [vi("x", .float32, [2]), vi("c2", .bool, [])], outputs: [vi("z"), vi("o2")],
               initializers: ["c": Tensor(scalar: true), "k": Tensor(validShape: [2], scalars: [Float(100), 200])])
        }
        let optimized = main()
        try PassManager.standard.run(on: optimized, opsets: ["": 17])
        XCTAssertFalse(opTypes(optimized).filter { $0 == "If" }.count > 1)
        XCTAssertTrue(opTypes(optimized).contains("Add"), "the branch's nodes are in the main graph: \(opTypes(optimized))")
        let plainPlan = try PlanBuilder(registry: .standard, opsets: ["": 17]).compile(main())
        let optPlan = try PlanBuilder(registry: .standard, opsets: ["": 17]).compile(optimized)
        let x = try Tensor(shape: [2], scalars: [Float(3), -5])
        for c2 in [true, false] {
            let feeds = ["x": x, "c2": Tensor(scalar: c2)]
            let want = try plainPlan.run(feeds, env: RunEnv(threads: 1))
            let got = try optPlan.run(feeds, env: RunEnv(threads: 1))
            XCTAssertEqual(try got.map { try $0.scalars(as: Float.self) }, try want.map { try $0.scalars(as: Float.self) })
            // by hand: y = x + [1, 2] = [4, -3]; n = ±y; z = n * x + [100, 200]; o2 = y
            let n: [Float] = c2 ? [4, -3] : [-4, 3]
            XCTAssertEqual(try got[0].scalars(as: Float.self), [n[0] * 3 + 100, n[1] * -5 + 200])
            XCTAssertEqual(try got[1].scalars(as: Float.self), [4, -3])
        }
    }
}
