import XCTest
import Foundation
@testable import SwiftONNX

/// FuseNormalizationFormulas: layer and RMS normalization written out as element-wise ops become one
/// LayerNormalization / RMSNormalization node, with the same results as the unfused graph (within
/// float32 rounding: the fused ops accumulate in double); what does not match is left alone.
final class NormalizationFormulaTests: XCTestCase {
    private let (rows, width) = (6, 40)

    private func n(_ op: String, _ ins: [String], _ out: String, _ attrs: [String: Attribute] = [:]) -> Node {
        Node(name: out, opType: op, domain: "", inputs: ins, outputs: [out], attributes: attrs)
    }
    private func mean(_ x: String, _ out: String, axis: Int = -1, keep: Int = 1, opset: Int) -> [Node] {
        opset >= 18 ? [n("ReduceMean", [x, "axes_\(axis)"], out, ["keepdims": .int(keep)])]
                    : [n("ReduceMean", [x], out, ["axes": .ints([axis]), "keepdims": .int(keep)])]
    }

    /// Runs the nodes (input X (2, rows, width), output Y) optimized and not; returns the optimized op histogram.
    @discardableResult
    private func check(_ nodes: [Node], opset: Int, extraOutputs: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> [String: Int] {
        var rng = SplitMix64(seed: 5)
        let gamma = Tensor(validShape: [width], scalars: (0..<width).map { _ in rng.uniform(0.5, 1.5) })
        let beta = Tensor(validShape: [width], scalars: (0..<width).map { _ in rng.uniform(-1, 1) })
        var inits: [String: Tensor] = ["gamma": gamma, "beta": beta, "two": Tensor(scalar: Float(2)),
                                       "one": Tensor(scalar: Float(1)), "eps": Tensor(scalar: Float(1e-5))]
        for a in [-1, 1, 2] { inits["axes_\(a)"] = Tensor(validShape: [1], scalars: [Int64(a)]) }
        let g = Graph(name: "g", nodes: nodes,
                      inputs: [ValueInfo(name: "X", type: .float32, shape: [.known(2), .known(rows), .known(width)])],
                      outputs: (["Y"] + extraOutputs).map { ValueInfo(name: $0, type: .float32, shape: nil) },
                      initializers: inits, valueInfo: [:])
        let m = Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                      opsets: ["": opset], graph: g, keepAlive: [])
        let x = Tensor(validShape: [2, rows, width], scalars: (0..<(2 * rows * width)).map { _ in rng.uniform(-3, 3) + 0.5 })
        let want = try InferenceSession(model: m, options: .init(optimize: false)).run(["X": x])
        let fast = try InferenceSession(model: m, options: .init(optimize: true))
        let got = try fast.run(["X": x])
        for name in ["Y"] + extraOutputs {
            try assertClose(try XCTUnwrap(got[name]), try XCTUnwrap(want[name]), rtol: 1e-5, atol: 1e-5, file: file, line: line)
        }
        return fast.metadata.opHistogram
    }

    func testLayerNormFormulaBecomesOneNode() throws {
        for opset in [13, 18] {
            for square in ["Pow", "Mul"] {
                for affine in [0, 1, 2] {   // none, gamma, gamma and beta
                    var nodes = mean("X", "mu", opset: opset) + [n("Sub", ["X", "mu"], "d")]
                    nodes.append(square == "Pow" ? n("Pow", ["d", "two"], "d2") : n("Mul", ["d", "d"], "d2"))
                    nodes += mean("d2", "var", opset: opset)
                    nodes += [n("Add", ["var", "eps"], "ve"), n("Sqrt", ["ve"], "sd"),
                              n("Div", ["d", "sd"], affine == 0 ? "Y" : "nrm")]
                    if affine >= 1 { nodes.append(n("Mul", ["nrm", "gamma"], affine == 1 ? "Y" : "sc")) }
                    if affine == 2 { nodes.append(n("Add", ["sc", "beta"], "Y")) }
                    let ops = try check(nodes, opset: opset)
                    XCTAssertEqual(ops, ["LayerNormalization": 1], "opset \(opset), \(square), affine \(affine)")
                }
            }
        }
    }

    func testRMSNormFormulaBecomesOneNode() throws {
        for opset in [13, 18] {
            for form in ["reciprocal", "div", "one-over"] {
                var nodes = [n("Pow", ["X", "two"], "x2")] + mean("x2", "ms", opset: opset)
                nodes += [n("Add", ["eps", "ms"], "ve"), n("Sqrt", ["ve"], "r")]
                switch form {
                case "reciprocal": nodes += [n("Reciprocal", ["r"], "inv"), n("Mul", ["X", "inv"], "nrm")]
                case "div": nodes += [n("Div", ["X", "r"], "nrm")]
                default: nodes += [n("Div", ["one", "r"], "inv"), n("Mul", ["inv", "X"], "nrm")]
                }
                nodes.append(n("Mul", ["gamma", "nrm"], "Y"))
                // X also feeds a residual add, as in every transformer block.
                nodes.append(n("Add", ["X", "Y"], "Z"))
                let ops = try check(nodes, opset: opset, extraOutputs: ["Z"])
                XCTAssertEqual(ops["RMSNormalization"], 1, "opset \(opset), \(form): \(ops)")
                XCTAssertNil(ops["ReduceMean"])
            }
        }
    }

    /// Llama's RMSNorm as the TorchScript exporter writes it: `.to(float32)` of values that are float32
    /// already becomes Casts to float around the formula; they change nothing and are removed, and the
    /// formula between them fuses.
    func testRMSNormBetweenSameTypeCastsBecomesOneNode() throws {
        let float = Attribute.int(1)
        var nodes = [n("Cast", ["X"], "xf", ["to": float]), n("Pow", ["xf", "two"], "x2")] + mean("x2", "ms", opset: 17)
        nodes += [n("Add", ["ms", "eps"], "ve"), n("Sqrt", ["ve"], "r"), n("Div", ["one", "r"], "inv"),
                  n("Mul", ["xf", "inv"], "nrm"), n("Cast", ["nrm"], "nc", ["to": float]), n("Mul", ["gamma", "nc"], "Y"),
                  n("Cast", ["X"], "xd", ["to": .int(11)]), n("Cast", ["xd"], "Z", ["to": float])]   // a real round trip stays
        let ops = try check(nodes, opset: 17, extraOutputs: ["Z"])
        XCTAssertEqual(ops["RMSNormalization"], 1, "\(ops)")
        XCTAssertEqual(ops["Cast"], 2, "\(ops)")
        XCTAssertNil(ops["ReduceMean"])
    }

    func testWhatIsNotANormalizationIsLeftAlone() throws {
        func rms(axis: Int = -1, readSquare: Bool = false) -> [Node] {
            var nodes = [n("Pow", ["X", "two"], "x2")] + mean("x2", "ms", axis: axis, opset: 18)
            nodes += [n("Add", ["ms", "eps"], "ve"), n("Sqrt", ["ve"], "r"), n("Div", ["X", "r"], "Y")]
            if readSquare { nodes.append(n("Identity", ["x2"], "S")) }
            return nodes
        }
        // Mean over the middle axis, and an intermediate that is also read elsewhere.
        XCTAssertNil(try check(rms(axis: 1), opset: 18)["RMSNormalization"])
        XCTAssertNil(try check(rms(readSquare: true), opset: 18, extraOutputs: ["S"])["RMSNormalization"])
        // LayerNorm whose centred values are read elsewhere: fused as RMS of them is fine, never as LayerNorm.
        var nodes = mean("X", "mu", opset: 18) + [n("Sub", ["X", "mu"], "d"), n("Pow", ["d", "two"], "d2")]
        nodes += mean("d2", "var", opset: 18) + [n("Add", ["var", "eps"], "ve"), n("Sqrt", ["ve"], "sd"), n("Div", ["d", "sd"], "Y")]
        let ops = try check(nodes, opset: 18, extraOutputs: ["d"])
        XCTAssertNil(ops["LayerNormalization"], "\(ops)")
    }
}
