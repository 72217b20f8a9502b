import CKernels
import XCTest
@testable import SwiftONNX

/// The com.microsoft QOperator ops (QLinearAdd, QLinearMul, QLinearSigmoid, QLinearLeakyRelu,
/// QLinearSoftmax, QLinearGlobalAveragePool, QLinearAveragePool, QLinearConcat, QGemm). The
/// expected outputs in the generated block were computed with onnxruntime 1.32 (CPU provider) by
/// Resources/make_quantization_contrib.py, which rewrites that block; every case must match
/// ORT's bytes (Softmax is allowed one step, see `check`).
final class QuantizationContribTests: XCTestCase {
    /// The QLinearAdd / QLinearMul row kernel: every ISA level this CPU runs against the scalar
    /// reference, byte for byte: both ops, both signednesses, element and broadcast steps, tails,
    /// saturating parameters.
    func testBinaryRowKernelMatchesItsReference() {
        var rng = SplitMix64(seed: 77)
        for n in [1, 7, 8, 9, 31, 100] {
            let a = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next() >> 17) }
            let b = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next() >> 19) }
            for op: Int32 in [0, 1] {
                for signed: Int32 in [0, 1] {
                    let (lo, hi): (Float, Float) = signed == 1 ? (-128, 127) : (0, 255)
                    for (aStep, bStep) in [(1, 1), (1, 0), (0, 1)] {
                        for (p0, p1, p2, p3) in [(Float(0.37), Float(0.81), Float(12.5), Float(3)), (0.013, 100, -7, 128), (5.5, 0.5, 0.25, -2)] {
                            var want = [UInt8](repeating: 0, count: n), got = want
                            so_q8_binary_row(op, a, aStep, b, bStep, signed, p0, p1, p2, p3, lo, hi, &want, n, 0)
                            so_q8_binary_row(op, a, aStep, b, bStep, signed, p0, p1, p2, p3, lo, hi, &got, n, so_isa_supported())
                            XCTAssertEqual(got, want, "n \(n) op \(op) signed \(signed) steps \(aStep),\(bStep) params \(p0)")
                        }
                    }
                }
            }
        }
    }

    /// A node with one output named after it, for the QDQ graphs below.
    private func qdqNode(_ op: String, _ ins: [String], _ out: String, _ attrs: [String: Attribute] = [:]) -> Node {
        Node(name: out, opType: op, domain: "", inputs: ins, outputs: [out], attributes: attrs)
    }

    /// A model (opset 21) of `nodes` with 8-bit inputs A and B of type `dt` and `shape`.
    private func qdqModel(_ nodes: [Node], _ dt: DType, _ shape: [Int], outputs: [ValueInfo], _ inits: [String: Tensor]) -> Model {
        let g = Graph(name: "g", nodes: nodes,
                      inputs: [ValueInfo(name: "A", type: dt, shape: shape.map { .known($0) }),
                               ValueInfo(name: "B", type: dt, shape: shape.map { .known($0) })],
                      outputs: outputs, initializers: inits, valueInfo: [:])
        return Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                     opsets: ["": 21], graph: g, keepAlive: [])
    }

    /// DequantizeLinear -> Concat / MaxPool / Reshape / Transpose -> QuantizeLinear with one scale and zero
    /// point run on the bytes (LowerQDQDataMovement): the same bytes as the unoptimized ops, exactly, for
    /// both 8-bit types. A Concat whose inputs have other scales becomes QLinearConcat (the same
    /// bytes too: its tables are the unfused ops on each byte); a MaxPool whose output scale differs
    /// keeps its float ops.
    func testQDQDataMovementRunsOnBytes() throws {
        let shape = [1, 3, 9, 10], n = 270
        for signed in [false, true] {
            let dt: DType = signed ? .int8 : .uint8
            func z(_ v: Int) -> Tensor { signed ? Tensor(scalar: Int8(v - 128)) : Tensor(scalar: UInt8(v)) }
            func bytes(_ v: [Int]) throws -> Tensor {
                signed ? try Tensor(shape: shape, scalars: v.map { Int8(truncatingIfNeeded: $0 - 128) })
                       : try Tensor(shape: shape, scalars: v.map { UInt8(truncatingIfNeeded: $0) })
            }
            let inits: [String: Tensor] = ["s": Tensor(scalar: Float(0.037)), "z": z(97), "s2": Tensor(scalar: Float(0.05)),
                                           "shape": try Tensor(shape: [2], scalars: [Int64(3), -1])]
            func node(_ op: String, _ ins: [String], _ out: String, _ attrs: [String: Attribute] = [:]) -> Node { qdqNode(op, ins, out, attrs) }
            let nodes = [
                node("DequantizeLinear", ["A", "s", "z"], "a"), node("DequantizeLinear", ["B", "s", "z"], "b"),
                node("Concat", ["a", "b"], "c", ["axis": .int(1)]), node("QuantizeLinear", ["c", "s", "z"], "Y1"),
                node("DequantizeLinear", ["Y1", "s", "z"], "y1"),
                node("MaxPool", ["y1"], "p", ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])]),
                node("QuantizeLinear", ["p", "s", "z"], "P"), node("DequantizeLinear", ["P", "s", "z"], "pp"),
                node("Transpose", ["pp"], "t", ["perm": .ints([0, 1, 3, 2])]), node("QuantizeLinear", ["t", "s", "z"], "T"),
                node("DequantizeLinear", ["T", "s", "z"], "tt"), node("Reshape", ["tt", "shape"], "r"),
                node("QuantizeLinear", ["r", "s", "z"], "Y2"),
                // inputs of two scales (QLinearConcat); left alone: an output scale other than the input's
                node("DequantizeLinear", ["B", "s2", "z"], "b2"), node("Concat", ["a", "b2"], "c3", ["axis": .int(0)]),
                node("QuantizeLinear", ["c3", "s", "z"], "Y3"),
                node("MaxPool", ["b"], "p4", ["kernel_shape": .ints([2, 2])]), node("QuantizeLinear", ["p4", "s2", "z"], "Y4"),
            ]
            let model = qdqModel(nodes, dt, shape, outputs: ["Y1", "Y2", "Y3", "Y4"].map { ValueInfo(name: $0, type: dt, shape: nil) }, inits)
            var rng = SplitMix64(seed: 13)
            let feeds = ["A": try bytes((0..<n).map { _ in Int(rng.next() % 256) }),
                         "B": try bytes((0..<n).map { _ in Int(rng.next() % 256) })]
            let plain = try InferenceSession(model: model, options: .init(optimize: false))
            let fast = try InferenceSession(model: model, options: .init(optimize: true))
            let hist = fast.metadata.opHistogram
            XCTAssertEqual(hist["QuantizeLinear"], 1, "Y4 keeps its own: \(hist)")
            XCTAssertEqual(hist["com.microsoft::QLinearConcat"], 1, "Y3: \(hist)")
            XCTAssertEqual(hist["Transpose"], 1, "\(hist)")
            let want = try plain.run(feeds), got = try fast.run(feeds)
            for name in ["Y1", "Y2", "Y3", "Y4"] {
                XCTAssertEqual(try XCTUnwrap(got[name]).shape, try XCTUnwrap(want[name]).shape, name)
                XCTAssertEqual(try XCTUnwrap(got[name]).bytes(), try XCTUnwrap(want[name]).bytes(), "\(name) signed \(signed)")
            }
        }
    }

    /// A residual block's end, DequantizeLinear x2 -> Sum (or Add) -> Relu -> QuantizeLinear, becomes one
    /// com.swiftonnx::QLinearAdd with relu = 1 (LowerQDQBinary), against the unoptimized ops: both 8-bit
    /// types, zero points inside the range so Relu clips about half the values; at most one step
    /// anywhere and on at most 1% of the values (the ratios of scales, as for QLinearAdd), and never
    /// below the output zero point. A Relu whose float output is also read elsewhere keeps the ops.
    /// LookupTable(x) read only by QLinearMul / QLinearAdd(x, table(x)) becomes one LookupTable
    /// (FuseLookupTableBinary): the same bytes as the two ops, for both 8-bit types and both operand
    /// orders; and a QDQ hard swish (DequantizeLinear -> HardSigmoid -> QuantizeLinear, then x times it
    /// between pairs) ends as one table. The table kernel at every level equals the scalar one.
    func testTableThenBinaryOfItsInputIsOneTable() throws {
        var rng = SplitMix64(seed: 15)
        let table = (0..<256).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        for n in [0, 1, 63, 64, 65, 200, 1000] {
            let x = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            var want = [UInt8](repeating: 0, count: n), got = want
            so_u8_lookup(x, n, table, &want, 0)
            so_u8_lookup(x, n, table, &got, so_isa_supported())
            XCTAssertEqual(got, want, "n \(n)")
            XCTAssertEqual(want, x.map { table[Int($0)] })
        }
        let shape = [1, 3, 7, 11], n = 231
        for signed in [false, true] {
            for (op, tableFirst) in [("QLinearMul", false), ("QLinearMul", true), ("QLinearAdd", false)] {
                let dt: DType = signed ? .int8 : .uint8
                func z(_ v: Int) -> Tensor { signed ? Tensor(scalar: Int8(v - 128)) : Tensor(scalar: UInt8(v)) }
                let inits: [String: Tensor] = ["table": try Tensor(shape: [256], scalars: table), "sa": Tensor(scalar: Float(0.02)),
                                               "za": z(140), "st": Tensor(scalar: Float(0.004)), "zt": z(0),
                                               "sy": Tensor(scalar: Float(0.03)), "zy": z(60)]
                let binIns = tableFirst ? ["t", "st", "zt", "A", "sa", "za", "sy", "zy"] : ["A", "sa", "za", "t", "st", "zt", "sy", "zy"]
                let nodes = [Node(name: "t", opType: "LookupTable", domain: "com.swiftonnx", inputs: ["A", "table"], outputs: ["t"], attributes: [:]),
                             Node(name: "b", opType: op, domain: "com.microsoft", inputs: binIns, outputs: ["Y"], attributes: [:])]
                let graph = qdqModel(nodes, dt, shape, outputs: [ValueInfo(name: "Y", type: dt, shape: nil)], inits).graph
                let model = Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                                  opsets: ["": 21, "com.microsoft": 1, "com.swiftonnx": 1], graph: graph, keepAlive: [])
                let a = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                let feed = signed ? try Tensor(shape: shape, scalars: a.map { Int8(bitPattern: $0) }) : try Tensor(shape: shape, scalars: a)
                let plain = try InferenceSession(model: model, options: .init(optimize: false))
                let fast = try InferenceSession(model: model, options: .init(optimize: true))
                XCTAssertEqual(fast.metadata.opHistogram, ["com.swiftonnx::LookupTable": 1], "\(fast.metadata.opHistogram)")
                let w = try XCTUnwrap(try plain.run(["A": feed, "B": feed])["Y"]), g = try XCTUnwrap(try fast.run(["A": feed, "B": feed])["Y"])
                XCTAssertEqual(g, w, "\(op) signed \(signed) table first \(tableFirst)")
            }
        }
        // a QLinearMul / QLinearAdd by a one-value constant, then a table of that table: one table, the same bytes
        for signed in [false, true] {
            let dt: DType = signed ? .int8 : .uint8
            func z(_ v: Int) -> Tensor { signed ? Tensor(scalar: Int8(v - 128)) : Tensor(scalar: UInt8(v)) }
            let k = signed ? try Tensor(shape: [1], scalars: [Int8(77)]) : try Tensor(shape: [1], scalars: [UInt8(201)])
            let inits: [String: Tensor] = ["table": try Tensor(shape: [256], scalars: table), "sa": Tensor(scalar: Float(0.02)),
                                           "za": z(140), "k": k, "sk": Tensor(scalar: Float(0.01)), "zk": z(128),
                                           "sm": Tensor(scalar: Float(0.03)), "zm": z(60), "sy": Tensor(scalar: Float(0.05)), "zy": z(100)]
            let nodes = [Node(name: "m", opType: "QLinearMul", domain: "com.microsoft", inputs: ["A", "sa", "za", "k", "sk", "zk", "sm", "zm"],
                              outputs: ["m"], attributes: [:]),
                         Node(name: "a", opType: "QLinearAdd", domain: "com.microsoft", inputs: ["k", "sk", "zk", "m", "sm", "zm", "sy", "zy"],
                              outputs: ["a"], attributes: [:]),
                         Node(name: "t", opType: "LookupTable", domain: "com.swiftonnx", inputs: ["a", "table"], outputs: ["Y"], attributes: [:])]
            let graph = qdqModel(nodes, dt, shape, outputs: [ValueInfo(name: "Y", type: dt, shape: nil)], inits).graph
            let model = Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                              opsets: ["": 21, "com.microsoft": 1, "com.swiftonnx": 1], graph: graph, keepAlive: [])
            let plain = try InferenceSession(model: model, options: .init(optimize: false))
            let fast = try InferenceSession(model: model, options: .init(optimize: true))
            XCTAssertEqual(fast.metadata.opHistogram, ["com.swiftonnx::LookupTable": 1], "\(fast.metadata.opHistogram)")
            let a = (0..<n).map { UInt8(truncatingIfNeeded: $0 * 3) }
            let feed = signed ? try Tensor(shape: shape, scalars: a.map { Int8(bitPattern: $0) }) : try Tensor(shape: shape, scalars: a)
            XCTAssertEqual(try XCTUnwrap(try fast.run(["A": feed, "B": feed])["Y"]), try XCTUnwrap(try plain.run(["A": feed, "B": feed])["Y"]),
                           "constant operand, table of a table, signed \(signed)")
        }
        // the QDQ form: x * HardSigmoid(x) between quantization pairs
        let inits: [String: Tensor] = ["s": Tensor(scalar: Float(0.05)), "z": Tensor(scalar: UInt8(128)),
                                       "sh": Tensor(scalar: Float(1.0 / 255)), "zh": Tensor(scalar: UInt8(0)),
                                       "sy": Tensor(scalar: Float(0.04)), "zy": Tensor(scalar: UInt8(20))]
        let nodes = [qdqNode("DequantizeLinear", ["A", "s", "z"], "a"),
                     qdqNode("HardSigmoid", ["a"], "h", ["alpha": .float(1.0 / 6), "beta": .float(0.5)]),
                     qdqNode("QuantizeLinear", ["h", "sh", "zh"], "hq"), qdqNode("DequantizeLinear", ["hq", "sh", "zh"], "hf"),
                     qdqNode("Mul", ["a", "hf"], "m"), qdqNode("QuantizeLinear", ["m", "sy", "zy"], "Y")]
        let model = qdqModel(nodes, .uint8, shape, outputs: [ValueInfo(name: "Y", type: .uint8, shape: nil)], inits)
        let fast = try InferenceSession(model: model, options: .init(optimize: true))
        XCTAssertEqual(fast.metadata.opHistogram, ["com.swiftonnx::LookupTable": 1], "\(fast.metadata.opHistogram)")
        let plain = try InferenceSession(model: model, options: .init(optimize: false))
        let feed = try Tensor(shape: shape, scalars: (0..<n).map { UInt8($0 % 256) })
        let w = try XCTUnwrap(try plain.run(["A": feed, "B": feed])["Y"]).scalars(as: UInt8.self)
        let g = try XCTUnwrap(try fast.run(["A": feed, "B": feed])["Y"]).scalars(as: UInt8.self)
        XCTAssertTrue(zip(w, g).allSatisfy { abs(Int($0) - Int($1)) <= 1 }, "within one step of the float path")
    }

    func testQDQSumReluBecomesQLinearAddWithRelu() throws {
        let shape = [1, 4, 15, 30], n = 1800
        for signed in [false, true] {
            for (op, extraReader) in [("Sum", false), ("Add", false), ("Sum", true)] {
                let dt: DType = signed ? .int8 : .uint8
                func z(_ v: Int) -> Tensor { signed ? Tensor(scalar: Int8(v - 128)) : Tensor(scalar: UInt8(v)) }
                func bytes(_ v: [Int]) throws -> Tensor {
                    signed ? try Tensor(shape: shape, scalars: v.map { Int8(truncatingIfNeeded: $0 - 128) })
                           : try Tensor(shape: shape, scalars: v.map { UInt8(truncatingIfNeeded: $0) })
                }
                let inits: [String: Tensor] = ["sa": Tensor(scalar: Float(0.02)), "za": z(140), "sb": Tensor(scalar: Float(0.05)),
                                               "zb": z(110), "sy": Tensor(scalar: Float(0.03)), "zy": z(60)]
                let node = { (op: String, ins: [String], out: String) in self.qdqNode(op, ins, out) }
                var nodes = [node("DequantizeLinear", ["A", "sa", "za"], "a"), node("DequantizeLinear", ["B", "sb", "zb"], "b"),
                             node(op, ["a", "b"], "s"), node("Relu", ["s"], "r"), node("QuantizeLinear", ["r", "sy", "zy"], "Y")]
                var outs = [ValueInfo(name: "Y", type: dt, shape: nil)]
                if extraReader {
                    nodes.append(node("Neg", ["r"], "R"))
                    outs.append(ValueInfo(name: "R", type: .float32, shape: nil))
                }
                let model = qdqModel(nodes, dt, shape, outputs: outs, inits)
                var rng = SplitMix64(seed: 9)
                let feeds = ["A": try bytes((0..<n).map { _ in Int(rng.next() % 256) }),
                             "B": try bytes((0..<n).map { _ in Int(rng.next() % 256) })]
                let plain = try InferenceSession(model: model, options: .init(optimize: false))
                let fast = try InferenceSession(model: model, options: .init(optimize: true))
                let hist = fast.metadata.opHistogram
                XCTAssertEqual(hist["com.swiftonnx::QLinearAdd"], extraReader ? nil : 1, "\(hist)")
                XCTAssertEqual(hist["Relu"], extraReader ? 1 : nil, "\(hist)")
                let want = try plain.run(feeds), got = try fast.run(feeds)
                let w = try XCTUnwrap(want["Y"]), h = try XCTUnwrap(got["Y"])
                let wv = signed ? try w.scalars(as: Int8.self).map(Int.init) : try w.scalars(as: UInt8.self).map(Int.init)
                let hv = signed ? try h.scalars(as: Int8.self).map(Int.init) : try h.scalars(as: UInt8.self).map(Int.init)
                let zy = signed ? 60 - 128 : 60
                XCTAssertGreaterThan(wv.filter { $0 == zy }.count, n / 5, "Relu clips a good share")
                XCTAssertGreaterThanOrEqual(hv.min() ?? zy, zy, "\(op) signed \(signed)")
                let diffs = zip(wv, hv).map { abs($0 - $1) }
                XCTAssertLessThanOrEqual(diffs.max() ?? 0, 1, "\(op) signed \(signed)")
                XCTAssertLessThanOrEqual(diffs.filter { $0 > 0 }.count, n / 100, "\(op) signed \(signed)")
                if extraReader { XCTAssertEqual(try XCTUnwrap(want["R"]).bytes(), try XCTUnwrap(got["R"]).bytes()) }
            }
        }
    }

    /// DequantizeLinear -> Add / Mul -> QuantizeLinear becomes QLinearAdd / QLinearMul (LowerQDQBinary):
    /// a chain of both (a constant operand, a broadcast one) against the unoptimized ops, both 8-bit
    /// types, random bytes and bytes making ties. The lowered ops compute from ratios of scales, so a
    /// value next to a rounding boundary may move one step: at most one step anywhere, and on at most
    /// 1% of the values. An Add whose float result is also read elsewhere is not lowered.
    func testQDQAddAndMulBecomeQLinearOps() throws {
        let shape = [1, 3, 20, 30], n = 1800
        for signed in [false, true] {
            let dt: DType = signed ? .int8 : .uint8
            func z(_ v: Int) -> Tensor { signed ? Tensor(scalar: Int8(v - 128)) : Tensor(scalar: UInt8(v)) }
            func bytes(_ f: (Int) -> Int, _ shape: [Int]) throws -> Tensor {
                let c = shape.reduce(1, *)
                return signed ? try Tensor(shape: shape, scalars: (0..<c).map { Int8(truncatingIfNeeded: f($0) - 128) })
                              : try Tensor(shape: shape, scalars: (0..<c).map { UInt8(truncatingIfNeeded: f($0)) })
            }
            for extraReader in [false, true] {
                let inits: [String: Tensor] = [
                    "sa": Tensor(scalar: Float(0.02)), "za": z(128), "sb": Tensor(scalar: Float(0.04)), "zb": z(100),
                    "sy": Tensor(scalar: Float(0.03)), "zy": z(120), "sc": Tensor(scalar: Float(0.01)), "zc": z(10),
                    "C": try bytes({ 7 * $0 + 3 }, [3, 1, 1]), "sm": Tensor(scalar: Float(0.05)), "zm": z(128),
                ]
                func node(_ op: String, _ ins: [String], _ out: String) -> Node {
                    Node(name: out, opType: op, domain: "", inputs: ins, outputs: [out], attributes: [:])
                }
                var nodes = [
                    node("DequantizeLinear", ["A", "sa", "za"], "a"), node("DequantizeLinear", ["B", "sb", "zb"], "b"),
                    node("Add", ["a", "b"], "s"), node("QuantizeLinear", ["s", "sy", "zy"], "Y1"),
                    node("DequantizeLinear", ["Y1", "sy", "zy"], "y1"), node("DequantizeLinear", ["C", "sc", "zc"], "c"),
                    node("Mul", ["y1", "c"], "m"), node("QuantizeLinear", ["m", "sm", "zm"], "Y2"),
                ]
                var outs = [ValueInfo(name: "Y1", type: dt, shape: nil), ValueInfo(name: "Y2", type: dt, shape: nil)]
                if extraReader {
                    nodes.append(node("Relu", ["s"], "R"))
                    outs.append(ValueInfo(name: "R", type: .float32, shape: nil))
                }
                let g = Graph(name: "g", nodes: nodes,
                              inputs: [ValueInfo(name: "A", type: dt, shape: shape.map { .known($0) }),
                                       ValueInfo(name: "B", type: dt, shape: shape.map { .known($0) })],
                              outputs: outs, initializers: inits, valueInfo: [:])
                let model = Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                                  opsets: ["": 21], graph: g, keepAlive: [])
                var rng = SplitMix64(seed: 5)
                let randomA = (0..<n).map { _ in Int(rng.next() % 256) }, randomB = (0..<n).map { _ in Int(rng.next() % 256) }
                // Ties: a·0.02/0.03 + b·0.04/0.03 lands on halves for many pairs of small multiples.
                for feeds in [["A": try bytes({ randomA[$0] }, shape), "B": try bytes({ randomB[$0] }, shape)],
                              ["A": try bytes({ 128 + ($0 % 7) * 3 }, shape), "B": try bytes({ 100 + ($0 % 5) * 3 }, shape)]] {
                    let plain = try InferenceSession(model: model, options: .init(optimize: false))
                    let fast = try InferenceSession(model: model, options: .init(optimize: true))
                    let hist = fast.metadata.opHistogram
                    XCTAssertEqual(hist["com.microsoft::QLinearAdd"], extraReader ? nil : 1, "\(hist)")
                    XCTAssertEqual(hist["com.microsoft::QLinearMul"], 1, "\(hist)")
                    let want = try plain.run(feeds), got = try fast.run(feeds)
                    for name in ["Y1", "Y2"] {
                        let w = try XCTUnwrap(want[name]), h = try XCTUnwrap(got[name])
                        let wv = signed ? try w.scalars(as: Int8.self).map(Int.init) : try w.scalars(as: UInt8.self).map(Int.init)
                        let hv = signed ? try h.scalars(as: Int8.self).map(Int.init) : try h.scalars(as: UInt8.self).map(Int.init)
                        let diffs = zip(wv, hv).map { abs($0 - $1) }
                        XCTAssertLessThanOrEqual(diffs.max() ?? 0, 1, "\(name) signed \(signed)")
                        XCTAssertLessThanOrEqual(diffs.filter { $0 > 0 }.count, n / 100, "\(name) signed \(signed)")
                    }
                    if extraReader {
                        XCTAssertEqual(try XCTUnwrap(want["R"]).bytes(), try XCTUnwrap(got["R"]).bytes())
                    }
                }
            }
        }
    }

    private func run(_ op: String, _ inputs: [Tensor?], _ attrs: [String: Attribute] = [:]) throws -> Tensor {
        let node = Node(name: "n", opType: op, domain: "com.microsoft",
                        inputs: inputs.enumerated().map { $0.element == nil ? "" : "in\($0.offset)" },
                        outputs: ["y"], attributes: attrs)
        let ctx = OpContext(node: node, opset: 1, compileSubgraph: { _ in throw OpError("no subgraphs") })
        guard let builder = OpRegistry.standard.builder(domain: "com.microsoft", op: op) else {
            throw OpError("com.microsoft \(op) is not registered")
        }
        return try builder(ctx).run(inputs, RunEnv(threads: 1))[0]
    }

    private func u8(_ shape: [Int], _ v: [UInt8]) -> Tensor { Tensor(validShape: shape, scalars: v) }
    private func i8(_ shape: [Int], _ v: [Int8]) -> Tensor { Tensor(validShape: shape, scalars: v) }
    private func i32(_ shape: [Int], _ v: [Int32]) -> Tensor { Tensor(validShape: shape, scalars: v) }
    private func f32(_ shape: [Int], _ v: [Float]) -> Tensor { Tensor(validShape: shape, scalars: v) }

    /// Runs `op` and compares with ORT's output: same type and shape; 8-bit values equal (QLinearSoftmax:
    /// within one step, ORT's table of exponentials sums in its own order), floats within 1e-6 relative.
    private func check(_ op: String, _ inputs: [Tensor?], _ attrs: [String: Attribute], expect: Tensor,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let y = try run(op, inputs, attrs)
        XCTAssertEqual(y.dtype, expect.dtype, "\(op) type", file: file, line: line)
        XCTAssertEqual(y.shape, expect.shape, "\(op) shape", file: file, line: line)
        let got = try y.doubles(), want = try expect.doubles()
        guard got.count == want.count else { return }
        let tol = expect.dtype == .float32 ? 1e-6 * (want.map(abs).max() ?? 0) : (op == "QLinearSoftmax" ? 1 : 0)
        for (i, (g, w)) in zip(got, want).enumerated() where abs(g - w) > tol {
            XCTFail("\(op) element \(i): got \(g), onnxruntime \(w)", file: file, line: line)
        }
    }

    func testAgainstOnnxRuntime() throws {
        // BEGIN GENERATED by Resources/make_quantization_contrib.py
        // Add uint8, same shape
        try check("QLinearAdd", [u8([2, 3], [253, 81, 215, 101, 121, 113]), f32([], [0.05]), u8([], [128]), u8([2, 3], [55, 69, 44, 247, 86, 49]), f32([], [0.03]), u8([], [100]), f32([], [0.07]), u8([], [120])],
                  [:], expect: u8([2, 3], [190, 73, 158, 164, 109, 87]))
        // Add int8, B broadcast along rows ([2, 3, 4] + [3, 1])
        try check("QLinearAdd", [i8([2, 3, 4], [-62, -78, 28, -114, 17, 21, 51, 57, -76, 30, -108, -92, 70, -59, -55, 23, -25, 35, 104, -38, 29, 62, -15, -6]), f32([], [0.02]), i8([], [-5]), i8([3, 1], [-30, -55, 55]), f32([], [0.04]), i8([], [7]), f32([], [0.05]), i8([], [3])],
                  [:], expect: i8([2, 3, 4], [-49, -56, -13, -70, -38, -36, -24, -22, 13, 55, 0, 7, 3, -48, -47, -15, -55, -31, -3, -60, 55, 68, 37, 41]))
        // Add uint8, scalar first operand broadcast ([1] + [2, 5]), zero points 0
        try check("QLinearAdd", [u8([1], [127]), f32([], [0.1]), u8([], [0]), u8([2, 5], [89, 105, 133, 160, 13, 10, 144, 139, 73, 144]), f32([], [0.02]), u8([], [0]), f32([], [0.06]), u8([], [0])],
                  [:], expect: u8([2, 5], [241, 247, 255, 255, 216, 215, 255, 255, 236, 255]))
        // Add int8 saturating (small C_scale)
        try check("QLinearAdd", [i8([8], [-128, -100, -1, 0, 1, 100, 127, 50]), f32([], [0.1]), i8([], [0]), i8([8], [-128, -50, 0, 0, 3, 100, 127, -50]), f32([], [0.1]), i8([], [0]), f32([], [0.01]), i8([], [0])],
                  [:], expect: i8([8], [-128, -128, -10, 0, 40, 127, 127, 0]))
        // Mul uint8, both broadcast ([2, 1, 4] * [3, 1])
        try check("QLinearMul", [u8([2, 1, 4], [9, 123, 145, 39, 2, 23, 53, 191]), f32([], [0.02]), u8([], [120]), u8([3, 1], [83, 196, 16]), f32([], [0.03]), u8([], [130]), f32([], [0.01]), u8([], [128])],
                  [:], expect: u8([2, 3, 4], [255, 120, 58, 255, 0, 140, 227, 0, 255, 107, 0, 255, 255, 255, 255, 0, 0, 0, 0, 255, 255, 255, 255, 0]))
        // Mul int8 saturating, same shape
        try check("QLinearMul", [i8([8], [-128, -64, -1, 0, 1, 64, 127, 90]), f32([], [0.05]), i8([], [-2]), i8([8], [127, 100, -128, 5, 2, -100, 127, 90]), f32([], [0.05]), i8([], [1]), f32([], [0.02]), i8([], [-10])],
                  [:], expect: i8([8], [-128, -128, -26, -9, -10, -128, 127, 127]))
        // Sigmoid uint8
        try check("QLinearSigmoid", [u8([3, 5], [163, 215, 42, 145, 66, 52, 61, 106, 88, 94, 60, 255, 117, 210, 52]), f32([], [0.05]), u8([], [128]), f32([], [0.00390625]), u8([], [0])],
                  [:], expect: u8([3, 5], [218, 253, 3, 179, 11, 6, 9, 64, 31, 40, 8, 255, 94, 252, 6]))
        // Sigmoid int8, output zero point -128
        try check("QLinearSigmoid", [i8([2, 6], [-113, 31, 65, 24, 64, 18, -16, -15, -21, -73, -106, -80]), f32([], [0.04]), i8([], [3]), f32([], [0.00390625]), i8([], [-128])],
                  [:], expect: i8([2, 6], [-126, 65, 108, 51, 107, 37, -46, -44, -57, -116, -125, -119]))
        // LeakyRelu uint8, alpha 0.1
        try check("QLinearLeakyRelu", [u8([2, 6], [102, 31, 102, 185, 91, 183, 202, 210, 207, 76, 81, 63]), f32([], [0.05]), u8([], [128]), f32([], [0.04]), u8([], [20])],
                  ["alpha": .float(0.1)], expect: u8([2, 6], [17, 8, 17, 91, 15, 89, 112, 122, 119, 13, 14, 12]))
        // LeakyRelu int8, default alpha, saturating
        try check("QLinearLeakyRelu", [i8([12], [-29, 69, 91, 27, 66, -42, -127, -56, -111, -19, -24, -74]), f32([], [0.1]), i8([], [0]), f32([], [0.02]), i8([], [-100])],
                  [:], expect: i8([12], [-101, 127, 127, 35, 127, -102, -106, -103, -106, -101, -101, -104]))
        // Softmax uint8, last axis, opset 13
        try check("QLinearSoftmax", [u8([2, 5], [145, 152, 203, 207, 132, 220, 4, 100, 89, 193]), f32([], [0.1]), u8([], [128]), f32([], [0.00390625]), u8([], [0])],
                  ["axis": .int(-1), "opset": .int(13)], expect: u8([2, 5], [0, 1, 102, 153, 0, 240, 0, 0, 0, 16]))
        // Softmax int8, axis 1 of [2, 3, 2], opset 13
        try check("QLinearSoftmax", [i8([2, 3, 2], [-58, -43, -99, 51, -66, 111, 56, -68, 69, -1, 64, 48]), f32([], [0.08]), i8([], [0]), f32([], [0.00390625]), i8([], [-128])],
                  ["axis": .int(1), "opset": .int(13)], expect: i8([2, 3, 2], [36, -128, -122, -126, -42, 126, -83, -128, -2, -123, -43, 123]))
        // Softmax uint8, opset 12 (coerced to 2-D at axis 1)
        try check("QLinearSoftmax", [u8([2, 2, 3], [238, 86, 43, 122, 17, 205, 31, 154, 239, 148, 145, 49]), f32([], [0.05]), u8([], [100]), f32([], [0.00390625]), u8([], [0])],
                  ["axis": .int(1), "opset": .int(12)], expect: u8([2, 2, 3], [214, 0, 0, 1, 0, 41, 0, 4, 248, 3, 2, 0]))
        // GlobalAveragePool uint8 NCHW
        try check("QLinearGlobalAveragePool", [u8([2, 3, 2, 3], [128, 67, 132, 78, 63, 193, 157, 199, 23, 254, 204, 119, 126, 45, 169, 247, 137, 250, 12, 105, 22, 33, 175, 207, 75, 222, 128, 238, 63, 203, 103, 77, 145, 214, 139, 220]), f32([], [0.05]), u8([], [128]), f32([], [0.03]), u8([], [120])],
                  ["channels_last": .int(0)], expect: u8([2, 3, 1, 1], [90, 172, 177, 61, 165, 156]))
        // GlobalAveragePool int8 channels_last
        try check("QLinearGlobalAveragePool", [i8([2, 2, 3, 4], [-123, 109, 123, -72, -42, 51, 17, -73, -75, -103, -100, 91, -46, 42, 38, -64, 46, 42, 84, -114, -21, 23, 63, 35, 104, 27, -104, -18, -115, 12, -36, -26, -15, 42, -36, -18, 15, -40, 64, -6, 12, 46, 86, -69, 46, -77, -52, -125]), f32([], [0.05]), i8([], [-3]), f32([], [0.01]), i8([], [5])],
                  ["channels_last": .int(1)], expect: i8([2, 1, 1, 4], [-128, 127, 127, -128, 59, 28, -45, -128]))
        // GlobalAveragePool uint8, 2 elements per channel, same scale (halves: ties, odd y_zero_point)
        try check("QLinearGlobalAveragePool", [u8([1, 8, 2, 1], [138, 56, 55, 29, 104, 77, 81, 124, 131, 9, 188, 65, 145, 40, 30, 229]), f32([], [0.05]), u8([], [100]), f32([], [0.05]), u8([], [101])],
                  ["channels_last": .int(0)], expect: u8([1, 8, 1, 1], [98, 43, 91, 103, 71, 127, 93, 131]))
        // AveragePool uint8 NCHW, 2x2 stride 2, end pads, pads not counted
        try check("QLinearAveragePool", [u8([1, 2, 3, 3], [80, 212, 112, 155, 182, 169, 44, 103, 106, 166, 200, 245, 200, 85, 28, 114, 51, 125]), f32([], [0.05]), u8([], [128]), f32([], [0.04]), u8([], [110])],
                  ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2]), "pads": .ints([0, 0, 1, 1])], expect: u8([1, 2, 2, 2], [147, 126, 42, 82, 153, 121, 53, 106]))
        // AveragePool int8 channels_last, 2x2 stride 1, pads counted
        try check("QLinearAveragePool", [i8([1, 3, 3, 2], [98, -40, 21, -116, -32, -35, 117, 44, 3, 26, 109, 41, 25, 53, -1, 119, -31, -83]), f32([], [0.05]), i8([], [4]), f32([], [0.05]), i8([], [-4])],
                  ["kernel_shape": .ints([2, 2]), "pads": .ints([1, 1, 0, 0]), "count_include_pad": .int(1), "channels_last": .int(1)], expect: i8([1, 3, 3, 2], [20, -15, 24, -45, -9, -44, 48, -5, 52, -30, 17, -29, 30, 18, 28, 52, 12, 18]))
        // AveragePool uint8, ceil_mode window over the edge, pads counted (ORT divides by the whole kernel)
        try check("QLinearAveragePool", [u8([1, 1, 5, 5], [26, 241, 146, 85, 205, 147, 172, 239, 68, 98, 105, 64, 128, 185, 26, 158, 193, 113, 196, 80, 79, 254, 72, 166, 7]), f32([], [0.05]), u8([], [128]), f32([], [0.05]), u8([], [128])],
                  ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2]), "ceil_mode": .int(1), "count_include_pad": .int(1)], expect: u8([1, 1, 3, 3], [146, 134, 140, 130, 156, 90, 147, 124, 98]))
        // AveragePool int8, 1-D, same scale in and out (halves: ties)
        try check("QLinearAveragePool", [i8([1, 2, 9], [83, -91, 121, 118, -6, 22, -38, -128, 22, -88, 100, 74, -41, 26, 101, 90, -41, 112]), f32([], [0.05]), i8([], [3]), f32([], [0.05]), i8([], [3])],
                  ["kernel_shape": .ints([2]), "strides": .ints([1])], expect: i8([1, 2, 8], [-4, 15, 119, 56, 8, -8, -83, -53, 6, 87, 16, -8, 64, 96, 24, 36]))
        // Concat uint8 axis 1, second input quantized like Y (copied)
        try check("QLinearConcat", [f32([], [0.05]), u8([], [128]), u8([2, 2, 2], [87, 227, 172, 227, 193, 56, 234, 46]), f32([], [0.1]), u8([], [100]), u8([2, 1, 2], [24, 62, 200, 236]), f32([], [0.05]), u8([], [128]), u8([2, 3, 2], [51, 233, 212, 77, 113, 216, 167, 100, 106, 196, 72, 108]), f32([], [0.02]), u8([], [0])],
                  ["axis": .int(1)], expect: u8([2, 6, 2], [102, 255, 255, 255, 24, 62, 148, 221, 213, 159, 173, 214, 255, 40, 255, 20, 200, 236, 195, 168, 170, 206, 157, 171]))
        // Concat int8 axis -1, saturating requantization
        try check("QLinearConcat", [f32([], [0.01]), i8([], [0]), i8([2, 3], [-105, 22, -47, 59, -78, -104]), f32([], [0.05]), i8([], [10]), i8([2, 2], [-34, 81, 47, -110]), f32([], [0.005]), i8([], [-3])],
                  ["axis": .int(-1)], expect: i8([2, 5], [-128, 60, -128, -16, 42, 127, -128, -128, 25, -53]))
        // Concat int8, input scale half of Y's (ties), odd Y zero point
        try check("QLinearConcat", [f32([], [0.2]), i8([], [-7]), i8([1, 10], [37, -97, 6, -6, 17, -75, 16, 0, 125, 1]), f32([], [0.1]), i8([], [4])],
                  ["axis": .int(0)], expect: i8([1, 10], [9, -57, -6, -12, 0, -47, -1, -9, 53, -9]))
        // QGemm u8u8, per-column b_scale and b_zero_point, int32 C, quantized output
        try check("QGemm", [u8([3, 5], [18, 133, 48, 130, 230, 15, 168, 70, 235, 141, 20, 59, 219, 146, 18]), f32([], [0.02]), u8([], [120]), u8([5, 4], [140, 102, 31, 226, 94, 31, 226, 109, 41, 246, 71, 179, 109, 225, 204, 181, 22, 108, 24, 149]), f32([4], [0.023525713, 0.012677168, 0.027528334, 0.015010087]), u8([4], [143, 145, 138, 143]), i32([4], [-307, 311, 389, -418]), f32([], [0.1]), u8([], [128])],
                  [:], expect: u8([3, 4], [95, 109, 158, 95, 111, 135, 255, 104, 148, 198, 196, 120]))
        // QGemm s8s8, transA and transB, alpha 0.5, float output
        try check("QGemm", [i8([5, 3], [-125, 49, 113, -41, -47, -88, 114, -119, -123, -125, 52, -13, 93, 2, 27]), f32([], [0.02]), i8([], [3]), i8([4, 5], [-14, -60, -103, -54, 29, -100, -36, -111, 67, 96, -110, -3, -62, 122, 63, 89, -77, -12, 83, -32]), f32([], [0.01]), i8([], [0]), nil],
                  ["alpha": .float(0.5), "transA": .int(1), "transB": .int(1)], expect: f32([3, 4], [0.2521, 0.2127, -0.2616, -2.284, 1.2247, 1.3929, 0.8569, 1.3507, 1.8457999, 0.74939996, -0.4455, 1.6213]))
        // QGemm u8u8, multiplier 0.5 (ties), odd y_zero_point
        try check("QGemm", [u8([2, 1], [236, 62]), f32([], [0.5]), u8([], [128]), u8([1, 6], [0, 3, 0, 3, 1, 1]), f32([], [1.0]), u8([], [0]), nil, f32([], [1.0]), u8([], [101])],
                  [:], expect: u8([2, 6], [101, 255, 101, 255, 155, 155, 101, 2, 101, 2, 68, 68]))
        // MatMulNBits 4-bit, default zero point, K a multiple of the block
        try check("MatMulNBits", [f32([3, 32], [-0.20299666, 1.3944129, 1.5606258, -1.1061549, 0.4648784, 0.18018031, 0.19412374, 1.9896569, 1.0407745, 0.9118424, -1.1620998, -0.7144193, 0.33993232, 0.45569623, 1.2078083, -0.73147786, -1.393566, -0.27879468, 0.18635167, 0.7767064, 0.21423095, -0.28248888, -0.3678886, -0.35402375, 0.79934156, -1.0923686, -1.6066842, 1.1257944, 0.1777417, 0.061812356, -0.13222092, -1.2127944, -1.6173067, 0.692768, 0.8871658, -0.16172771, -0.28550845, -1.8614107, -1.7227043, -0.96207905, -0.11064698, 0.67864764, 0.70969087, -0.041671958, 1.3831484, -0.71739656, 0.34875596, -0.05012958, -0.79129076, -0.09816935, -0.35868746, -2.109356, 0.21955581, -0.39004245, 1.7374713, 1.3170775, -1.1360338, 0.33379754, 1.7805116, -1.1969099, -0.9957908, 1.7419405, -1.1360486, 0.91297364, -1.371055, 0.6421652, -1.0246899, -0.73194194, -0.35801813, 0.31520134, 0.118752174, 0.6778031, -1.3119895, 0.118046515, -1.412918, 2.1892967, -0.06816256, -0.38159665, -0.17300026, 0.26503745, -1.7673646, -0.27197754, -0.8210261, 0.31507832, -0.1024288, 0.2887646, 0.9597407, -1.7034833, 1.0262622, 0.534083, -0.20618413, 0.9846719, 1.213247, 0.4034045, -0.29102004, -0.1948388]), u8([5, 2, 8], [109, 18, 81, 45, 183, 44, 23, 252, 120, 254, 145, 90, 36, 64, 177, 87, 208, 164, 207, 142, 237, 203, 245, 254, 118, 25, 37, 15, 3, 17, 98, 113, 50, 107, 126, 210, 183, 110, 139, 215, 239, 46, 122, 178, 178, 124, 206, 248, 238, 118, 231, 77, 249, 53, 251, 155, 146, 98, 209, 111, 119, 247, 170, 33, 104, 108, 95, 187, 89, 16, 3, 106, 129, 27, 135, 77, 103, 171, 109, 14]), f32([10], [0.03723562, 0.042943288, 0.021944862, 0.04052685, 0.02983475, 0.022967692, 0.012365404, 0.0117048435, 0.01000231, 0.023254603])],
                  ["K": .int(32), "N": .int(5), "bits": .int(4), "block_size": .int(16)], expect: f32([3, 5], [0.005923331, 0.63677865, -0.68053883, 0.4750645, 0.5567764, -0.6304023, 0.92679095, 1.2550719, -0.11026117, -0.023118202, -0.89420706, 0.2510343, -0.8997088, 0.30952236, 0.47067738]))
        // MatMulNBits 4-bit, packed zero points (odd block count), K not a multiple of the block, bias, batch dims
        try check("MatMulNBits", [f32([2, 3, 40], [2.1806138, -0.15027775, 0.02085485, -0.92593014, -0.68614525, 0.033648077, 0.49833947, 1.1691356, -2.6387773, -0.1500068, 0.96889657, 1.041449, 1.7498217, 1.074519, -0.88649946, 1.3257018, -0.24968445, -1.1099873, -1.5910916, -1.0409844, -1.5471367, -0.14237812, -1.2489728, 1.3617787, -0.4148184, -2.9578176, -0.005927651, -1.450281, -0.6451295, -0.2847525, -0.46485096, -0.51025337, 0.8094953, -0.05653277, -0.45911586, 1.9197294, 0.9073367, 0.14399162, -0.3544721, -0.37441382, 0.23423901, -2.066537, 0.38440853, -1.0088475, 1.4283425, -1.2929097, -0.614935, 1.0842919, -0.5914284, 0.4734999, 1.6507236, 0.05723926, -1.4672114, -2.1343377, 0.15281345, -0.08261133, -0.016792929, -0.5156352, -0.1177352, -0.5563558, 1.2746592, -0.009799323, -0.547495, -0.95888364, 0.7857113, 1.6120112, -0.23955996, -0.1615869, 0.04520219, -0.15448622, 0.6471953, 0.20747358, 0.29051748, 1.8871499, 1.5023769, -0.020128852, 2.0601616, 1.323219, -0.761489, 1.3206277, -1.153609, -0.5675491, -1.2806214, -0.09561246, 1.955983, -0.7561548, 0.56392664, -1.1802777, -0.8206506, 1.7920132, 0.28316727, -0.059953697, -0.65807843, 1.0883138, -2.1874857, 1.3392084, -1.7081621, 1.1980201, 0.08892818, 0.067764066, -0.05488693, 0.38818818, -0.29437256, -0.4701677, 0.1837801, -0.24195597, 0.95142996, -0.97299796, 0.19503243, 1.1758474, -0.9242377, -1.6998497, 1.664171, -0.8758162, -0.6533616, -0.53012514, 0.949226, -1.3000703, -0.74634916, 0.22013271, 2.2800233, 0.3336763, -0.9787033, -0.7697484, 0.31921223, -0.30656493, 1.453457, -0.60682565, -0.38209915, 0.65087944, -0.124331966, 0.6106388, 1.2337965, -1.6914282, 1.6630238, 1.0364426, 0.009379737, -1.072498, 0.78134364, 1.0901647, 0.081980966, 2.42622, 2.19528, 0.42073417, -0.7135574, 0.17693913, 0.12967095, -0.81154925, 1.3594714, 0.58383155, -1.559781, -2.2444077, 1.6331031, 0.4179816, -0.8805145, -0.1800718, 1.3483951, -2.3970559, 1.0366198, 0.16918029, 2.2011938, 2.2076082, 0.05716643, 0.10243691, -0.9030414, 0.06272201, -0.24734443, 2.0957103, 1.0033379, 0.72982544, -0.17348479, -0.17394343, 0.9218422, -0.40743074, 1.0059664, -1.4067614, 0.81278497, -0.5666606, -1.6869996, -0.25446957, 0.6354221, 0.08333791, -1.0079813, -1.5581694, 0.5714023, 0.14902213, -0.34615973, -0.1122036, -0.62598556, 0.755655, -0.633671, 0.4541519, 0.012214081, -0.5478706, 1.1954116, 0.93226177, 0.5350971, -1.4981514, -0.4459132, 0.52107996, 1.8449982, 1.3659973, 1.2336091, 0.36028147, -1.330211, 0.007775495, -0.6936869, 0.66886663, 0.85877746, -0.11028978, -2.0886269, -0.29673558, 0.8318631, -0.109932594, 0.273077, 0.32392162, 0.27268186, 0.64574534, 0.1885734, -1.2115414, 0.24414527, 0.5221295, -1.7054504, -0.32623842, -1.3805858, -1.4109255, -0.22761488, -0.3402864, 1.5659146, -1.6247367, -0.9034599, -0.58450425, -2.1716733, -1.0503757, -0.90185803, -0.26666576, 0.14437102, 0.8433119, 1.0661064, -0.039653514]), u8([6, 3, 8], [47, 9, 18, 221, 98, 51, 180, 123, 254, 151, 37, 187, 209, 128, 169, 41, 154, 34, 77, 15, 195, 189, 180, 64, 221, 84, 99, 91, 153, 123, 106, 185, 213, 89, 172, 225, 154, 98, 52, 113, 24, 11, 58, 147, 152, 211, 233, 143, 94, 221, 219, 202, 71, 99, 107, 248, 188, 142, 253, 121, 84, 82, 37, 163, 58, 44, 182, 169, 59, 17, 22, 162, 223, 26, 208, 178, 68, 145, 86, 2, 139, 119, 141, 171, 132, 201, 1, 53, 169, 225, 94, 225, 203, 202, 126, 24, 218, 36, 246, 229, 16, 226, 139, 81, 115, 197, 22, 160, 37, 14, 201, 66, 71, 140, 217, 15, 63, 43, 154, 96, 32, 205, 151, 42, 219, 216, 65, 236, 146, 133, 109, 184, 12, 221, 186, 207, 92, 2, 60, 187, 156, 175, 27, 198]), f32([18], [0.027367951, 0.012557508, 0.041845333, 0.035803497, 0.039084133, 0.01628127, 0.038311917, 0.047545988, 0.014656336, 0.012524514, 0.038010363, 0.030132202, 0.04899651, 0.012390205, 0.032253776, 0.01581229, 0.04281977, 0.04295286]), u8([12], [56, 150, 29, 23, 240, 241, 243, 39, 116, 178, 92, 163]), nil, f32([6], [-0.367562, 0.114123695, 0.4250372, -0.2560235, -0.5927108, 0.63490885])],
                  ["K": .int(40), "N": .int(6), "bits": .int(4), "block_size": .int(16)], expect: f32([2, 3, 6], [-0.2752062, -3.0789368, 6.561684, 4.2537436, 3.5722315, -1.3174455, 0.04540029, 0.88626397, -0.76879174, -0.4276538, -1.4643317, 2.380825, -0.5927663, 0.28666195, -0.5577289, -0.2740948, -1.9577665, 1.6761374, 1.7641852, 0.95455456, 2.4546213, -0.012479678, 0.0077115893, 0.9954705, -0.8937217, -1.143081, 3.7295032, 1.7573172, 1.5377352, -1.1520631, -0.27391598, -0.8965845, 5.672326, 2.137994, 0.99983376, -1.574733]))
        // MatMulNBits 8-bit, packed zero points, block 32
        try check("MatMulNBits", [f32([2, 70], [0.7869265, 0.6191636, 0.62578446, 1.4089009, -0.57331944, 0.6483389, -0.06434892, -0.052105736, 0.49770352, -1.487463, 1.825118, -0.953901, -0.4970481, 2.5228877, -1.5007403, 1.2314956, 0.89240354, -2.2443624, -0.14244762, 0.12221669, 1.3067641, -0.17821684, 1.3082802, 0.29192075, -0.13320869, -0.09707997, 1.3677756, 1.5903316, 0.21576975, 0.07542213, -0.6265717, -0.91436774, -1.066439, 1.8062238, 0.36824334, -0.73076, 1.0559689, 1.5882312, 0.34232068, 0.83413005, -0.5191206, -2.1944509, 1.5028051, 1.1223612, -1.9678892, -0.32401296, -0.24772097, -1.0542929, -1.0569216, -0.8616317, -0.80979186, 0.16588321, 1.4356881, 2.4197867, -1.2171229, -0.84989023, 0.20254612, -1.219477, 1.3008392, 1.6101059, 0.37543947, 1.4239777, 0.95232826, -0.1205865, -0.8819159, 0.08186758, -1.5541711, 0.13815491, -1.9042693, 0.12263334, -1.183654, 0.35239995, 0.336703, 0.96750075, 0.72235626, 0.1410828, -0.1265181, 0.17773812, 0.7969731, 0.48730972, 1.293609, 1.4435202, 0.64542663, -0.53751254, 0.6749333, 0.5699205, -0.21013263, 0.59999, 1.7514533, 2.133466, 0.7202822, 2.2657523, -0.5931598, 0.14951907, -0.9779208, -1.4078363, -1.0290911, -0.3698621, 1.7314246, 0.2773175, 0.49845535, 0.9485553, 0.33567533, 0.6932513, -1.0722235, -0.3654916, -0.07070762, 0.15390629, -0.5951424, 1.5399514, -1.1366589, 0.006159106, -0.2281015, 3.2260695, 1.8134289, 0.8470183, 0.08051543, -0.19649032, 3.1364238, -1.2932509, 0.7411795, 1.1121435, -1.6740541, -0.5885229, -0.18255952, -1.318946, -0.64273024, 0.7237558, 0.12692407, 0.91296935, -0.22955579, 0.4471817, -0.9917044, 0.6115691, 0.26327363, 1.1912612, 1.469783, -1.3737965, 0.94603753, -0.9469208]), u8([3, 3, 32], [73, 178, 157, 131, 165, 127, 139, 64, 80, 229, 151, 63, 96, 193, 214, 170, 211, 155, 160, 198, 182, 98, 51, 102, 245, 58, 6, 159, 37, 193, 231, 105, 140, 127, 161, 230, 33, 169, 118, 173, 232, 77, 43, 250, 244, 197, 180, 47, 205, 37, 70, 252, 80, 141, 88, 172, 174, 246, 246, 11, 128, 216, 9, 242, 193, 41, 188, 203, 228, 176, 72, 130, 244, 144, 52, 95, 211, 30, 255, 78, 94, 33, 83, 20, 253, 16, 174, 70, 22, 193, 31, 36, 81, 172, 141, 99, 33, 246, 247, 249, 55, 250, 211, 19, 135, 187, 206, 130, 51, 65, 52, 53, 47, 247, 189, 169, 235, 87, 209, 50, 184, 66, 196, 7, 130, 98, 44, 171, 8, 228, 18, 27, 177, 24, 118, 171, 218, 108, 14, 243, 110, 218, 227, 176, 25, 67, 200, 88, 51, 132, 68, 91, 203, 28, 124, 77, 107, 5, 85, 68, 254, 168, 157, 50, 149, 153, 100, 167, 105, 111, 80, 6, 125, 246, 250, 93, 9, 20, 215, 138, 99, 144, 148, 102, 236, 210, 31, 148, 187, 178, 177, 200, 196, 97, 132, 157, 24, 99, 121, 74, 226, 42, 191, 153, 132, 41, 155, 38, 233, 42, 254, 181, 100, 100, 240, 92, 21, 19, 46, 124, 32, 252, 212, 184, 73, 219, 122, 49, 2, 197, 104, 59, 168, 98, 63, 79, 240, 181, 197, 180, 249, 171, 175, 219, 171, 12, 180, 176, 151, 124, 149, 21, 157, 93, 127, 143, 112, 26, 67, 87, 123, 78, 111, 231, 215, 65, 211, 127, 254, 245, 100, 84, 238, 253, 3, 60, 129, 228, 33, 227, 228, 242, 105, 122, 48, 244, 241, 230]), f32([9], [0.04066582, 0.047218703, 0.031769093, 0.04476821, 0.038866945, 0.016689364, 0.033326037, 0.02744124, 0.037794225]), u8([9], [194, 192, 116, 25, 107, 165, 98, 185, 209])],
                  ["K": .int(70), "N": .int(3), "bits": .int(8), "block_size": .int(32)], expect: f32([2, 3], [-68.45969, 47.372063, -1.7332742, 17.108557, 102.50679, 18.028053]))
        // MatMulNBits 2-bit, float zero points, bias
        try check("MatMulNBits", [f32([1, 2, 48], [-0.5762263, -0.6738238, -0.04164499, -0.3037629, 1.2317654, -1.1154099, 1.5309467, -0.748748, -1.2136661, 1.2965429, 1.8804832, -0.5091, -0.6953079, 1.120173, -0.31758863, 0.9466151, 1.4238464, -1.9796, -0.8175248, -0.7845171, -1.3336489, 3.3152585, -0.83279675, 0.54489875, -0.18428709, -0.095096625, -0.29378718, 0.4507742, 0.07049168, -1.5898861, 0.81003296, -1.0027388, -0.061568964, -0.42235848, -0.0028734521, -0.9399859, 0.37264642, -1.9079748, -0.5830074, 0.7541911, 0.11953061, 0.86169165, -0.70794326, -0.13526836, -0.8113742, -0.55608934, -0.6141893, 1.4214497, 1.5676116, 0.7648468, -0.7661691, -1.2906026, -0.7576816, -0.3713415, -0.5989297, 0.7223572, -1.0231283, 0.10044485, -0.8295564, -0.49243015, 0.26303414, -0.75142694, 1.9277793, 0.8173373, 0.14274867, 0.25958344, 0.28988925, -1.9916507, 0.2904654, 0.35236043, 0.28831878, 1.3126631, -0.027023876, -0.8892818, -0.5217433, 0.58168924, 1.0024459, 0.92798215, -0.95073116, -1.2331492, 0.97170407, 0.7729614, -0.20920539, 0.5435218, 0.3663766, -1.3299099, -2.784644, -0.74892205, 0.13255978, 0.4781109, -0.2853356, -2.185799, 0.32060817, -0.8001684, -0.6791186, 0.10513072]), u8([4, 3, 4], [49, 166, 14, 41, 83, 136, 186, 110, 135, 124, 182, 208, 54, 74, 100, 196, 128, 99, 106, 140, 52, 61, 150, 34, 109, 221, 219, 234, 80, 175, 195, 249, 244, 233, 168, 146, 15, 13, 69, 179, 181, 169, 67, 249, 140, 104, 213, 147]), f32([12], [0.040324852, 0.031891726, 0.02425923, 0.04476644, 0.038920097, 0.04350344, 0.02108262, 0.048633505, 0.049067736, 0.025339982, 0.015129346, 0.028189]), f32([12], [2.8541622, 2.8873718, 2.4706864, 0.99556977, 2.9092705, 1.9940794, 0.3652794, 1.3642919, 2.781876, 1.7927967, 1.3186289, 0.87165314]), nil, f32([4], [-0.7306761, 0.6925035, -0.3883629, 1.6654575])],
                  ["K": .int(48), "N": .int(4), "bits": .int(2), "block_size": .int(16)], expect: f32([1, 2, 4], [-0.3299775, 0.42371085, -0.0844118, 1.2469711, -0.6460196, 0.35234302, -0.15321337, 1.7897055]))
        // END GENERATED
    }

    /// Omitted zero points are zeros (ORT's type inference wants them present, so this is not in the generated block).
    func testOmittedZeroPointsAreZero() throws {
        let a = u8([4], [0, 7, 200, 255]), b = u8([4], [3, 90, 1, 255]), s = f32([], [0.05]), z = u8([], [0])
        for op in ["QLinearAdd", "QLinearMul"] {
            let explicit = try run(op, [a, s, z, b, s, z, s, z]), omitted = try run(op, [a, s, nil, b, s, nil, s, nil])
            XCTAssertEqual(try omitted.scalars(as: UInt8.self), try explicit.scalars(as: UInt8.self), op)
        }
        let sig = try run("QLinearSigmoid", [a, s, nil, f32([], [1 / 256]), nil])
        XCTAssertEqual(try sig.scalars(as: UInt8.self), try run("QLinearSigmoid", [a, s, z, f32([], [1 / 256]), z]).scalars(as: UInt8.self))
    }

    /// Every byte pair through QLinearAdd and QLinearMul against the float formula (dequantize, op,
    /// quantize half to even): at most one step apart (ORT folds and fuses its float arithmetic, so
    /// ties may fall either way), and equal almost everywhere.
    func testAllBytePairsWithinOneStep() throws {
        let a = u8([256, 256], (0..<65536).map { UInt8($0 / 256) }), b = u8([256, 256], (0..<65536).map { UInt8($0 % 256) })
        let (sa, sb, sc): (Float, Float, Float) = (0.031, 0.017, 0.043)
        for add in [true, false] {
            let sy = add ? sc : sc * 4
            let y = try run(add ? "QLinearAdd" : "QLinearMul",
                            [a, f32([], [sa]), u8([], [131]), b, f32([], [sb]), u8([], [97]), f32([], [sy]), u8([], [120])])
            let yp = try y.scalars(as: UInt8.self)
            var off = 0
            for i in 0..<65536 {
                let x1 = Double(i / 256 - 131) * Double(sa), x2 = Double(i % 256 - 97) * Double(sb)
                let f = ((add ? x1 + x2 : x1 * x2) / Double(sy)).rounded(.toNearestOrEven) + 120
                let want = min(max(f, 0), 255)
                XCTAssertLessThanOrEqual(abs(Double(yp[i]) - want), 1, "add \(add) pair \(i)")
                if Double(yp[i]) != want { off += 1 }
            }
            XCTAssertLessThan(off, 20, "add \(add): \(off) of 65536 off by one")
        }
    }

    func testMalformedInputsThrow() throws {
        let a = u8([2], [1, 2])
        let s = f32([], [0.1])
        // Zero point of another type than A.
        XCTAssertThrowsError(try run("QLinearAdd", [a, s, i8([], [0]), a, s, u8([], [0]), s, u8([], [0])])) {
            XCTAssertTrue("\($0)".contains("QLinearAdd"), "\($0)")
        }
        // Scale that is not a scalar.
        XCTAssertThrowsError(try run("QLinearMul", [a, f32([2], [0.1, 0.2]), nil, a, s, nil, s, nil]))
        // Shapes that do not broadcast.
        XCTAssertThrowsError(try run("QLinearAdd", [u8([3], [1, 2, 3]), s, nil, a, s, nil, s, nil]))
        // Float data.
        XCTAssertThrowsError(try run("QLinearSigmoid", [f32([2], [1, 2]), s, nil, s, nil]))
        // A and B of different types.
        XCTAssertThrowsError(try run("QLinearAdd", [a, s, nil, i8([2], [1, 2]), s, nil, s, nil]))
        // Concat: inputs that differ off the axis, and a missing triple member.
        XCTAssertThrowsError(try run("QLinearConcat", [s, u8([], [0]), u8([1, 2], [1, 2]), s, u8([], [0]),
                                                       u8([2, 1], [1, 2]), s, u8([], [0])], ["axis": .int(1)]))
        XCTAssertThrowsError(try run("QLinearConcat", [s, u8([], [0]), u8([1, 2], [1, 2]), s], ["axis": .int(1)]))
        // Global pooling of a rank-2 tensor; QGemm with mismatched inner dimensions.
        XCTAssertThrowsError(try run("QLinearGlobalAveragePool", [a.reshaped([1, 2]), s, u8([], [0]), s, u8([], [0])]))
        XCTAssertThrowsError(try run("QGemm", [u8([2, 3], [1, 2, 3, 4, 5, 6]), s, u8([], [0]), u8([2, 2], [1, 2, 3, 4]),
                                               s, u8([], [0]), nil, s, u8([], [0])]))
        // QLinearSoftmax needs its opset attribute.
        XCTAssertThrowsError(try run("QLinearSoftmax", [a, s, nil, s, u8([], [0])], ["axis": .int(-1)]))
    }

    /// A QOperator chain loaded as a model: shape inference and the session see the com.microsoft ops.
    func testSessionRunsContribChain() throws {
        let g = graph("q", [
            node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
            Node(name: "add", opType: "QLinearAdd", domain: "com.microsoft",
                 inputs: ["xq", "s", "z", "xq", "s", "z", "s2", "z"], outputs: ["sq"], attributes: [:]),
            Node(name: "gap", opType: "QLinearGlobalAveragePool", domain: "com.microsoft",
                 inputs: ["sq", "s2", "z", "s2", "z"], outputs: ["pq"], attributes: [:]),
            node("DequantizeLinear", ["pq", "s2", "z"], ["y"]),
        ], inputs: [vi("x", .float32, [1, 2, 2, 2])], outputs: [vi("y", .float32)],
           initializers: ["s": Tensor(scalar: Float(0.1)), "s2": Tensor(scalar: Float(0.2)), "z": Tensor(scalar: UInt8(10))])
        let m = Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                      opsets: ["": 19, "com.microsoft": 1], graph: g, keepAlive: [])
        let session = try InferenceSession(model: m, options: .init())
        let x = try Tensor(shape: [1, 2, 2, 2], scalars: [Float]([0, 0.1, 0.2, 0.3, -0.4, -0.2, 1, 1]))
        let y = try session.run(["x": x])["y"]!
        XCTAssertEqual(y.shape, [1, 2, 1, 1])
        // Channel 0: x + x = 0, 0.2, 0.4, 0.6 -> 0, 1, 2, 3 steps of 0.2; mean 1.5 steps -> 2 (half to even) -> 0.4.
        // Channel 1: -0.8, -0.4, 2, 2 -> -4, -2, 10, 10; mean 3.5 -> 4 -> 0.8.
        try assertClose(y, [0.4, 0.8], tol: 1e-6)
    }
}
