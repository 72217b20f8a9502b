import XCTest
@testable import SwiftONNX

/// QLinearConv on the integer GEMM (constant weights packed at plan time) against the general
/// integer path (weights given at run time), bit for bit; and the QDQ lowering (LowerQDQConv)
/// against the unoptimized float path of the same graph.
final class QuantizedConvTests: XCTestCase {
    private func qlinearConv(_ inputs: [Tensor?], attrs: [String: Attribute], domain: String = "",
                             constantWeights: Bool) throws -> Tensor {
        let names = inputs.enumerated().map { $0.element == nil ? "" : "in\($0.offset)" }
        let node = Node(name: "qc", opType: "QLinearConv", domain: domain, inputs: names, outputs: ["y"], attributes: attrs)
        var ctx = OpContext(node: node, opset: 21, compileSubgraph: { _ in throw OpError("no subgraphs") })
        if constantWeights {
            for i in [3, 4, 5] where i < inputs.count { if let t = inputs[i] { ctx.constants["in\(i)"] = t } }
        }
        guard let builder = OpRegistry.standard.builder(domain: domain, op: "QLinearConv") else { throw OpError("not registered") }
        return try builder(ctx).run(inputs, RunEnv(threads: 2))[0]
    }

    private func bytes(_ n: Int, _ rng: inout SplitMix64) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next() >> 7) } }

    func testPackedPathMatchesTheGeneralPath() throws {
        var rng = SplitMix64(seed: 17)
        // (batch, c, h, w, m, kernel, stride, pad, dilation)
        let shapes: [(Int, Int, Int, Int, Int, Int, Int, Int, Int)] = [
            (1, 3, 17, 15, 8, 7, 2, 3, 1), (2, 16, 9, 9, 20, 1, 1, 0, 1), (1, 5, 8, 11, 13, 3, 1, 1, 1),
            (1, 7, 10, 10, 6, 3, 2, 0, 2), (1, 32, 6, 5, 70, 3, 1, 1, 1), (1, 4, 1, 1, 3, 1, 1, 0, 1),
            // more output positions than one block of the driver's columns (96), blocks starting
            // and ending inside output rows
            (1, 6, 23, 19, 10, 3, 1, 1, 1), (2, 5, 30, 27, 9, 3, 2, 1, 1),
            // a 7 x 7 stride-2 stem
            (2, 3, 41, 38, 16, 7, 2, 3, 1),
        ]
        for (si, (n, c, h, w, m, k, s, p, d)) in shapes.enumerated() {
            // symmetric: signed weights with zero point 0, which the direct kernels take
            for (xSigned, wSigned, symmetric) in [(false, true, false), (true, true, false), (false, false, false), (true, false, false),
                                                  (false, true, true), (true, true, true)] {
                let xb = bytes(n * c * h * w, &rng), wb = bytes(m * c * k * k, &rng)
                let x = xSigned ? try Tensor(shape: [n, c, h, w], scalars: xb.map { Int8(bitPattern: $0) })
                                : try Tensor(shape: [n, c, h, w], scalars: xb)
                let wt = wSigned ? try Tensor(shape: [m, c, k, k], scalars: wb.map { Int8(bitPattern: $0) })
                                 : try Tensor(shape: [m, c, k, k], scalars: wb)
                let perChannel = si % 2 == 0
                let ws = try Tensor(shape: perChannel ? [m] : [], scalars: (0..<(perChannel ? m : 1)).map { _ in rng.uniform(0.001, 0.01) })
                let wzpCount = perChannel ? m : 1
                let wzp = wSigned ? try Tensor(shape: perChannel ? [m] : [], scalars: (0..<wzpCount).map { symmetric ? 0 : Int8($0 % 5) - 2 })
                                  : try Tensor(shape: perChannel ? [m] : [], scalars: (0..<wzpCount).map { UInt8(120 + $0 % 9) })
                let xzp = xSigned ? Tensor(scalar: Int8(-7)) : Tensor(scalar: UInt8(si % 2 == 0 ? 0 : 255))
                let ys = Tensor(scalar: Float(0.37)), yzp = xSigned ? Tensor(scalar: Int8(3)) : Tensor(scalar: UInt8(128))
                let bias = try Tensor(shape: [m], scalars: (0..<m).map { _ in Int32(rng.below(20001)) - 10000 })
                let attrs: [String: Attribute] = ["kernel_shape": .ints([k, k]), "strides": .ints([s, s]),
                                                  "pads": .ints([p, p, p, p]), "dilations": .ints([d, d])]
                let inputs: [Tensor?] = [x, Tensor(scalar: Float(0.05)), xzp, wt, ws, wzp, ys, yzp, bias]
                let general = try qlinearConv(inputs, attrs: attrs, constantWeights: false)
                let packed = try qlinearConv(inputs, attrs: attrs, constantWeights: true)
                XCTAssertEqual(packed.shape, general.shape)
                XCTAssertEqual(packed, general, "shape \(si) x signed \(xSigned) w signed \(wSigned) symmetric \(symmetric)")
                for act: [String: Attribute] in [["activation": .string("Relu")],
                                                 ["activation": .string("Clip"), "activation_params": .floats([-1, 2])]] {
                    let a = attrs.merging(act) { $1 }
                    let g2 = try qlinearConv(inputs, attrs: a, domain: "com.swiftonnx", constantWeights: false)
                    let p2 = try qlinearConv(inputs, attrs: a, domain: "com.swiftonnx", constantWeights: true)
                    XCTAssertEqual(p2, g2, "shape \(si) activation \(act)")
                }
            }
        }
    }

    /// Depthwise QLinearConv (group == channels) on the direct integer kernel (symmetric weights) or
    /// the exact float depthwise kernel against the general integer path, bit for bit: awkward plane
    /// sizes, strides, dilations and padding, both signednesses, zero points 0 and 255, weights at the
    /// ends of their range (the largest products).
    func testDepthwisePathMatchesTheGeneralPath() throws {
        var rng = SplitMix64(seed: 23)
        // (batch, c, h, w, kernel h, kernel w, stride, pad, dilation)
        let shapes: [(Int, Int, Int, Int, Int, Int, Int, Int, Int)] = [
            (1, 3, 17, 15, 3, 3, 1, 1, 1), (2, 9, 9, 9, 5, 5, 2, 2, 1), (1, 5, 8, 11, 3, 3, 2, 1, 1),
            (1, 7, 10, 10, 3, 3, 1, 2, 2), (1, 16, 6, 5, 7, 7, 1, 3, 1), (1, 4, 1, 1, 3, 3, 1, 1, 1),
            (1, 2, 40, 33, 1, 5, 1, 2, 1), (1, 3, 130, 140, 3, 3, 1, 1, 1),   // the last: planes too large for the blocked kernel
        ]
        for (si, (n, c, h, w, kh, kw, s, p, d)) in shapes.enumerated() {
            // symmetric: signed weights with zero point 0, which the direct kernels take
            for (xSigned, wSigned, symmetric) in [(false, true, false), (true, true, false), (false, false, false), (true, false, false),
                                                  (false, true, true), (true, true, true)] {
                var xb = bytes(n * c * h * w, &rng), wb = bytes(c * kh * kw, &rng)
                if si == 1 {   // saturating data: every product at its largest magnitude
                    xb = xb.map { $0 & 1 == 0 ? 0 : 255 }
                    wb = wb.map { $0 & 1 == 0 ? 0x80 : 0x7f }
                }
                let x = xSigned ? try Tensor(shape: [n, c, h, w], scalars: xb.map { Int8(bitPattern: $0) })
                                : try Tensor(shape: [n, c, h, w], scalars: xb)
                let wt = wSigned ? try Tensor(shape: [c, 1, kh, kw], scalars: wb.map { Int8(bitPattern: $0) })
                                 : try Tensor(shape: [c, 1, kh, kw], scalars: wb)
                let perChannel = si % 2 == 0
                let ws = try Tensor(shape: perChannel ? [c] : [], scalars: (0..<(perChannel ? c : 1)).map { _ in rng.uniform(0.001, 0.01) })
                let wzpCount = perChannel ? c : 1
                let wzp = wSigned ? try Tensor(shape: perChannel ? [c] : [], scalars: (0..<wzpCount).map { symmetric ? 0 : Int8($0 % 5) - 2 })
                                  : try Tensor(shape: perChannel ? [c] : [], scalars: (0..<wzpCount).map { UInt8(si == 1 ? 0 : 120 + $0 % 9) })
                let xzp = xSigned ? Tensor(scalar: Int8(si == 1 ? 127 : -7)) : Tensor(scalar: UInt8(si % 2 == 0 ? 0 : 255))
                let ys = Tensor(scalar: Float(0.37)), yzp = xSigned ? Tensor(scalar: Int8(3)) : Tensor(scalar: UInt8(128))
                let bias = try Tensor(shape: [c], scalars: (0..<c).map { _ in Int32(rng.below(20001)) - 10000 })
                let attrs: [String: Attribute] = ["kernel_shape": .ints([kh, kw]), "strides": .ints([s, s]), "group": .int(c),
                                                  "pads": .ints([p, p, p, p]), "dilations": .ints([d, d])]
                let inputs: [Tensor?] = [x, Tensor(scalar: Float(0.05)), xzp, wt, ws, wzp, ys, yzp, bias]
                let general = try qlinearConv(inputs, attrs: attrs, constantWeights: false)
                let fast = try qlinearConv(inputs, attrs: attrs, constantWeights: true)
                XCTAssertEqual(fast.shape, general.shape)
                XCTAssertEqual(fast, general, "shape \(si) x signed \(xSigned) w signed \(wSigned) symmetric \(symmetric)")
                let a = attrs.merging(["activation": .string("Relu")]) { $1 }
                XCTAssertEqual(try qlinearConv(inputs, attrs: a, domain: "com.swiftonnx", constantWeights: true),
                               try qlinearConv(inputs, attrs: a, domain: "com.swiftonnx", constantWeights: false), "shape \(si) Relu")
            }
        }
    }

    private func convInteger(_ inputs: [Tensor?], attrs: [String: Attribute], constantWeights: Bool) throws -> Tensor {
        let names = inputs.enumerated().map { $0.element == nil ? "" : "in\($0.offset)" }
        let node = Node(name: "ci", opType: "ConvInteger", domain: "", inputs: names, outputs: ["y"], attributes: attrs)
        var ctx = OpContext(node: node, opset: 21, compileSubgraph: { _ in throw OpError("no subgraphs") })
        if constantWeights {
            for i in [1, 3] where i < inputs.count { if let t = inputs[i] { ctx.constants["in\(i)"] = t } }
        }
        guard let builder = OpRegistry.standard.builder(domain: "", op: "ConvInteger") else { throw OpError("not registered") }
        return try builder(ctx).run(inputs, RunEnv(threads: 2))[0]
    }

    /// ConvInteger with constant weights (the integer GEMM, or the depthwise kernel) against the
    /// general integer path, bit for bit, int32 output: group 1 and depthwise, both signednesses,
    /// zero points per tensor and per channel, absent zero points.
    func testConvIntegerFastPathsMatchTheGeneralPath() throws {
        var rng = SplitMix64(seed: 29)
        // (batch, c, h, w, m, kernel, stride, pad, depthwise)
        let shapes: [(Int, Int, Int, Int, Int, Int, Int, Int, Bool)] = [
            (1, 3, 17, 15, 8, 3, 2, 1, false), (2, 16, 9, 9, 20, 1, 1, 0, false), (1, 33, 5, 7, 5, 3, 1, 1, false),
            (1, 12, 11, 9, 12, 3, 1, 1, true), (2, 5, 8, 8, 5, 5, 2, 2, true),
        ]
        for (si, (n, c, h, w, m, k, s, p, dw)) in shapes.enumerated() {
            // symmetric: signed weights with zero point 0, which the direct kernels take
            for (xSigned, wSigned, symmetric) in [(false, true, false), (true, true, false), (false, false, false), (true, false, false),
                                                  (false, true, true), (true, true, true)] {
                let cin = dw ? 1 : c
                let xb = bytes(n * c * h * w, &rng), wb = bytes(m * cin * k * k, &rng)
                let x = xSigned ? try Tensor(shape: [n, c, h, w], scalars: xb.map { Int8(bitPattern: $0) })
                                : try Tensor(shape: [n, c, h, w], scalars: xb)
                let wt = wSigned ? try Tensor(shape: [m, cin, k, k], scalars: wb.map { Int8(bitPattern: $0) })
                                 : try Tensor(shape: [m, cin, k, k], scalars: wb)
                let perChannel = si % 2 == 1
                let zc = perChannel ? m : 1, zs: [Int] = perChannel ? [m] : []
                let wzp: Tensor? = si == 2 ? nil : wSigned ? try Tensor(shape: zs, scalars: (0..<zc).map { Int8($0 % 7) - 3 })
                                                           : try Tensor(shape: zs, scalars: (0..<zc).map { UInt8(125 + $0 % 7) })
                let xzp: Tensor? = si == 2 ? nil : xSigned ? Tensor(scalar: Int8(-100)) : Tensor(scalar: UInt8(si == 0 ? 255 : 0))
                var attrs: [String: Attribute] = ["kernel_shape": .ints([k, k]), "strides": .ints([s, s]), "pads": .ints([p, p, p, p])]
                if dw { attrs["group"] = .int(c) }
                let inputs: [Tensor?] = [x, wt, xzp, wzp]
                let general = try convInteger(inputs, attrs: attrs, constantWeights: false)
                let fast = try convInteger(inputs, attrs: attrs, constantWeights: true)
                XCTAssertEqual(fast.dtype, .int32)
                XCTAssertEqual(fast, general, "shape \(si) x signed \(xSigned) w signed \(wSigned) symmetric \(symmetric)")
            }
        }
    }

    /// x -> DequantizeLinear -> Conv (weights and bias DequantizeLinear of constants) -> Relu ->
    /// QuantizeLinear -> DequantizeLinear -> y: optimized, one QLinearConv (com.swiftonnx, Relu) and
    /// the final DequantizeLinear; its output equals the float path's within one quantization step.
    func testQDQConvBecomesOneQLinearConv() throws {
        var rng = SplitMix64(seed: 5)
        let c = 6, m = 10, xs: Float = 0.02
        let wsv = (0..<m).map { _ in rng.uniform(0.002, 0.02) }
        let wqv = (0..<(m * c * 9)).map { _ in Int8(Int(rng.below(255)) - 127) }
        let bqv = (0..<m).map { _ in Int32(rng.below(2001)) - 1000 }
        func model() throws -> Model {
            let inits: [String: Tensor] = [
                "xs": Tensor(scalar: xs), "xzp": Tensor(scalar: UInt8(128)),
                "wq": try Tensor(shape: [m, c, 3, 3], scalars: wqv),
                "ws": try Tensor(shape: [m], scalars: wsv), "wzp": try Tensor(shape: [m], scalars: [Int8](repeating: 0, count: m)),
                "bq": try Tensor(shape: [m], scalars: bqv),
                "bs": try Tensor(shape: [m], scalars: wsv.map { xs * $0 }), "bzp": try Tensor(shape: [m], scalars: [Int32](repeating: 0, count: m)),
                "ys": Tensor(scalar: Float(0.03)), "yzp": Tensor(scalar: UInt8(0)),
            ]
            let g = Graph(name: "g", nodes: [
                Node(name: "dqx", opType: "DequantizeLinear", domain: "", inputs: ["X", "xs", "xzp"], outputs: ["xf"], attributes: [:]),
                Node(name: "dqw", opType: "DequantizeLinear", domain: "", inputs: ["wq", "ws", "wzp"], outputs: ["wf"], attributes: ["axis": .int(0)]),
                Node(name: "dqb", opType: "DequantizeLinear", domain: "", inputs: ["bq", "bs", "bzp"], outputs: ["bf"], attributes: ["axis": .int(0)]),
                Node(name: "conv", opType: "Conv", domain: "", inputs: ["xf", "wf", "bf"], outputs: ["cf"],
                     attributes: ["pads": .ints([1, 1, 1, 1])]),
                Node(name: "relu", opType: "Relu", domain: "", inputs: ["cf"], outputs: ["rf"], attributes: [:]),
                Node(name: "q", opType: "QuantizeLinear", domain: "", inputs: ["rf", "ys", "yzp"], outputs: ["yq"], attributes: [:]),
                Node(name: "dqy", opType: "DequantizeLinear", domain: "", inputs: ["yq", "ys", "yzp"], outputs: ["Y"], attributes: [:]),
            ], inputs: [ValueInfo(name: "X", type: .uint8, shape: [.known(1), .known(c), .known(9), .known(7)])],
               outputs: [ValueInfo(name: "Y", type: .float32, shape: nil)], initializers: inits, valueInfo: [:])
            return Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                         opsets: ["": 21], graph: g, keepAlive: [])
        }
        let plain = try InferenceSession(model: try model(), options: .init(optimize: false))
        let fast = try InferenceSession(model: try model(), options: .init(optimize: true))
        XCTAssertEqual(fast.metadata.opHistogram, ["com.swiftonnx::QLinearConv": 1, "DequantizeLinear": 1], "\(fast.metadata.opHistogram)")
        let x = try Tensor(shape: [1, c, 9, 7], scalars: (0..<(c * 63)).map { _ in UInt8(truncatingIfNeeded: rng.next() >> 9) })
        let a = try XCTUnwrap(try plain.run(["X": x])["Y"]).doubles()
        let b = try XCTUnwrap(try fast.run(["X": x])["Y"]).doubles()
        XCTAssertEqual(a.count, b.count)
        XCTAssertTrue(a.contains(0) && a.contains { $0 > 0.5 }, "the data exercises the Relu and the range")
        var differing = 0
        for (u, v) in zip(a, b) where u != v {
            differing += 1
            XCTAssertEqual(u, v, accuracy: 0.03 * 1.0001, "at most one step of the output scale apart")
        }
        XCTAssertLessThanOrEqual(differing, a.count / 50, "float and integer rounding agree almost everywhere")
    }

    /// x -> Neg -> QuantizeLinear -> DequantizeLinear -> Relu, and x -> Mul -> QuantizeLinear whose
    /// bytes two DequantizeLinear read (one feeding a Sigmoid, one a graph output): optimized, the first
    /// pair is one QuantizeDequantizeLinear, the second stays as it was; the floats equal the
    /// unoptimized path's bit for bit, for both zero point types, on values that round at ties,
    /// saturate and are NaN.
    func testQuantizeDequantizePairsBecomeOnePass() throws {
        for signed in [false, true] {
            func model(qOut: Bool) throws -> Model {
                let zp = signed ? Tensor(scalar: Int8(-3)) : Tensor(scalar: UInt8(131))
                let inits: [String: Tensor] = ["b": Tensor(scalar: Float(0.25)), "s": Tensor(scalar: Float(0.5)), "z": zp,
                                               "s2": Tensor(scalar: Float(0.5)), "z2": zp]
                let nodes = [
                    Node(name: "neg", opType: "Neg", domain: "", inputs: ["X"], outputs: ["a"], attributes: [:]),
                    Node(name: "q", opType: "QuantizeLinear", domain: "", inputs: ["a", "s", "z"], outputs: ["aq"], attributes: [:]),
                    Node(name: "dq1", opType: "DequantizeLinear", domain: "", inputs: ["aq", "s2", "z2"], outputs: ["d1"], attributes: [:]),
                    Node(name: "relu", opType: "Relu", domain: "", inputs: ["d1"], outputs: ["Y1"], attributes: [:]),
                    Node(name: "mul", opType: "Mul", domain: "", inputs: ["X", "b"], outputs: ["m"], attributes: [:]),
                    Node(name: "q2", opType: "QuantizeLinear", domain: "", inputs: ["m", "s", "z"], outputs: ["mq"], attributes: [:]),
                    Node(name: "dq2", opType: "DequantizeLinear", domain: "", inputs: ["mq", "s", "z"], outputs: ["d2"], attributes: [:]),
                    Node(name: "dq3", opType: "DequantizeLinear", domain: "", inputs: ["mq", "s", "z"], outputs: ["Y3"], attributes: [:]),
                    Node(name: "sig", opType: "Sigmoid", domain: "", inputs: ["d2"], outputs: ["Y2"], attributes: [:]),
                ]
                var outs = [ValueInfo(name: "Y1", type: .float32, shape: nil), ValueInfo(name: "Y2", type: .float32, shape: nil),
                            ValueInfo(name: "Y3", type: .float32, shape: nil)]
                if qOut { outs.append(ValueInfo(name: "aq", type: signed ? .int8 : .uint8, shape: nil)) }
                let g = Graph(name: "g", nodes: nodes, inputs: [ValueInfo(name: "X", type: .float32, shape: [.known(2), .known(37)])],
                              outputs: outs, initializers: inits, valueInfo: [:])
                return Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                             opsets: ["": 21], graph: g, keepAlive: [])
            }
            var xs: [Float] = (0..<74).map { Float($0 - 37) * 0.75 - 0.25 }   // ties at multiples of 0.25, beyond the range
            xs[3] = .nan; xs[4] = 1e30; xs[5] = -1e30; xs[6] = .infinity
            let x = try Tensor(shape: [2, 37], scalars: xs)
            for qOut in [false, true] {
                let plain = try InferenceSession(model: try model(qOut: qOut), options: .init(optimize: false))
                let fast = try InferenceSession(model: try model(qOut: qOut), options: .init(optimize: true))
                let h = fast.metadata.opHistogram
                XCTAssertEqual(h["com.swiftonnx::QuantizeDequantizeLinear"], qOut ? nil : 1, "\(h)")
                XCTAssertEqual(h["DequantizeLinear"], qOut ? 3 : 2, "\(h)")
                XCTAssertEqual(h["QuantizeLinear"], qOut ? 2 : 1, "\(h)")
                let a = try plain.run(["X": x]), b = try fast.run(["X": x])
                for name in ["Y1", "Y2", "Y3"] + (qOut ? ["aq"] : []) {
                    XCTAssertEqual(try XCTUnwrap(a[name]).bytes(), try XCTUnwrap(b[name]).bytes(), "\(name) signed \(signed)")
                }
            }
        }
    }

    /// Add/Sub/Mul/Div -> QuantizeLinear -> DequantizeLinear becomes one ArithmeticQuantizeDequantize;
    /// its floats equal the unoptimized path's bit for bit for every broadcast form (same shape, scalar
    /// on either side, per channel, a row against a column), both zero point types, 1 and 2 threads,
    /// maps larger than the epilogue's stretch and not a multiple of 8, ties, saturation and NaN. An
    /// Add whose result another op also reads is not fused this way.
    func testArithmeticQuantizeDequantizeFusion() throws {
        let c = 5, h = 37, w = 61   // 11285 values: several 4096-value stretches, odd tails
        let shapes: [(String, [Int], [Int])] = [
            ("Add", [1, c, h, w], [1, c, h, w]), ("Mul", [1, c, h, w], []), ("Sub", [1], [1, c, h, w]),
            ("Div", [1, c, h, w], [1, c, 1, 1]), ("Add", [1, c, h, 1], [1, 1, 1, w]),
        ]
        for signed in [false, true] {
            for (op, sa, sb) in shapes {
                let zp = signed ? Tensor(scalar: Int8(-3)) : Tensor(scalar: UInt8(131))
                let model = { (extraReader: Bool) throws -> Model in
                    var nodes = [
                        Node(name: "op", opType: op, domain: "", inputs: ["A", "B"], outputs: ["a"], attributes: [:]),
                        Node(name: "q", opType: "QuantizeLinear", domain: "", inputs: ["a", "s", "z"], outputs: ["aq"], attributes: [:]),
                        Node(name: "dq", opType: "DequantizeLinear", domain: "", inputs: ["aq", "s", "z"], outputs: ["Y"], attributes: [:]),
                    ]
                    var outs = [ValueInfo(name: "Y", type: .float32, shape: nil)]
                    if extraReader {
                        nodes.append(Node(name: "r", opType: "Relu", domain: "", inputs: ["a"], outputs: ["R"], attributes: [:]))
                        outs.append(ValueInfo(name: "R", type: .float32, shape: nil))
                    }
                    let g = Graph(name: "g", nodes: nodes,
                                  inputs: [ValueInfo(name: "A", type: .float32, shape: sa.map { .known($0) }),
                                           ValueInfo(name: "B", type: .float32, shape: sb.map { .known($0) })],
                                  outputs: outs, initializers: ["s": Tensor(scalar: Float(0.25)), "z": zp], valueInfo: [:])
                    return Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                                 opsets: ["": 21], graph: g, keepAlive: [])
                }
                func values(_ shape: [Int], _ k: Int) throws -> Tensor {
                    let n = shape.reduce(1, *)
                    var v: [Float] = (0..<n).map { i in Float((i * 7 + k * 13) % 211 - 105) * 0.375 + (k == 1 ? 0.5 : 0.125) }
                    if n > 10 { v[3] = .nan; v[4] = 1e30; v[5] = -1e30; v[6] = .infinity }
                    return try Tensor(shape: shape, scalars: v)
                }
                let feeds = ["A": try values(sa, 0), "B": try values(sb, 1)]
                for extra in [false, true] {
                    let plain = try InferenceSession(model: try model(extra), options: .init(optimize: false))
                    let reference = try plain.run(feeds)
                    for threads in [1, 2] {
                        let fast = try InferenceSession(model: try model(extra), options: .init(threads: threads, optimize: true))
                        let hist = fast.metadata.opHistogram
                        // With another reader the op's result must stay: no ArithmeticQuantizeDequantize (an
                        // ElementwiseChain that writes both may take the pair then).
                        XCTAssertEqual(hist["com.swiftonnx::ArithmeticQuantizeDequantize"], extra ? nil : 1, "\(op) \(hist)")
                        if !extra { XCTAssertNil(hist[op], "\(op) \(hist)") }
                        let got = try fast.run(feeds)
                        for name in ["Y"] + (extra ? ["R"] : []) {
                            XCTAssertEqual(try XCTUnwrap(got[name]).bytes(), try XCTUnwrap(reference[name]).bytes(),
                                           "\(op) \(sa) \(sb) \(name) signed \(signed) threads \(threads)")
                        }
                    }
                }
            }
        }
    }

    /// DequantizeLinear -> unary op -> QuantizeLinear becomes one LookupTable with the same bytes as the
    /// three ops, for every op LowerQDQUnary takes: every byte value at many offsets of a 1001-value
    /// tensor (vector bodies and tails), both 8-bit types.
    func testQDQUnaryOpsBecomeLookupTables() throws {
        let n = 1001
        for signed in [false, true] {
            let dt: DType = signed ? .int8 : .uint8
            let zx = signed ? Tensor(scalar: Int8(-7)) : Tensor(scalar: UInt8(121))
            let zy = signed ? Tensor(scalar: Int8(-100)) : Tensor(scalar: UInt8(30))
            let xs = signed ? try Tensor(shape: [1, n], scalars: (0..<n).map { Int8(truncatingIfNeeded: $0 * 7) })
                            : try Tensor(shape: [1, n], scalars: (0..<n).map { UInt8(truncatingIfNeeded: $0 * 7) })
            // the arithmetic ops by a one-value constant, x first and (Add, Mul) second
            let arithmetic = ["Add", "Sub", "Mul", "Div"].map { ($0, false) } + [("Add", true), ("Mul", true)]
            for (op, constantFirst) in LowerQDQUnary.ops.sorted().map({ ($0, false) }) + arithmetic {
                var inits: [String: Tensor] = ["sx": Tensor(scalar: Float(0.047)), "zx": zx, "sy": Tensor(scalar: Float(0.0123)), "zy": zy]
                var opInputs = ["d"]
                var attrs: [String: Attribute] = [:]
                if LowerQDQUnary.arithmetic.contains(op) {
                    inits["k"] = try Tensor(shape: [1, 1], scalars: [Float(op == "Div" ? 6 : op == "Mul" ? 0.37 : 0.71)])
                    opInputs = constantFirst ? ["k", "d"] : ["d", "k"]
                }
                if op == "Clip" { inits["lo"] = Tensor(scalar: Float(-0.5)); inits["hi"] = Tensor(scalar: Float(1.75)); opInputs += ["lo", "hi"] }
                if op == "LeakyRelu" { attrs["alpha"] = .float(0.13) }
                if op == "HardSigmoid" { attrs["alpha"] = .float(0.2); attrs["beta"] = .float(0.45) }
                let nodes = [
                    Node(name: "dq", opType: "DequantizeLinear", domain: "", inputs: ["X", "sx", "zx"], outputs: ["d"], attributes: [:]),
                    Node(name: "op", opType: op, domain: "", inputs: opInputs, outputs: ["f"], attributes: attrs),
                    Node(name: "q", opType: "QuantizeLinear", domain: "", inputs: ["f", "sy", "zy"], outputs: ["Y"], attributes: [:]),
                ]
                let g = Graph(name: "g", nodes: nodes, inputs: [ValueInfo(name: "X", type: dt, shape: [.known(1), .known(n)])],
                              outputs: [ValueInfo(name: "Y", type: dt, shape: nil)], initializers: inits, valueInfo: [:])
                let model = Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                                  opsets: ["": 21], graph: g, keepAlive: [])
                let plain = try InferenceSession(model: model, options: .init(optimize: false))
                let fast = try InferenceSession(model: model, options: .init(optimize: true))
                XCTAssertEqual(fast.metadata.opHistogram["com.swiftonnx::LookupTable"], 1, "\(op) \(fast.metadata.opHistogram)")
                let want = try XCTUnwrap(plain.run(["X": xs])["Y"]).bytes(), got = try XCTUnwrap(fast.run(["X": xs])["Y"]).bytes()
                let first = zip(want, got).enumerated().first { $0.element.0 != $0.element.1 }
                XCTAssertNil(first, "\(op) constant first \(constantFirst) signed \(signed): first difference \(String(describing: first))")
            }
        }
    }

    /// The op's float result read besides by a float op (PP-OCR's hard swish divided by 6, which a
    /// squeeze-excitation pool also reads): each of its two QuantizeLinear nodes (different scales)
    /// becomes a table, the op stays for the float reader, and every output equals the unoptimized
    /// graph's bit for bit.
    func testQDQUnaryWithOtherReadersKeepsTheOp() throws {
        let n = 777
        for op in ["Div", "HardSigmoid"] {
            let inits: [String: Tensor] = ["sx": Tensor(scalar: Float(0.047)), "zx": Tensor(scalar: UInt8(121)),
                                           "sy": Tensor(scalar: Float(0.0123)), "zy": Tensor(scalar: UInt8(30)),
                                           "sy2": Tensor(scalar: Float(0.031)), "zy2": Tensor(scalar: UInt8(0)),
                                           "k": Tensor(scalar: Float(6))]
            let nodes = [
                Node(name: "dq", opType: "DequantizeLinear", domain: "", inputs: ["X", "sx", "zx"], outputs: ["d"], attributes: [:]),
                Node(name: "op", opType: op, domain: "", inputs: op == "Div" ? ["d", "k"] : ["d"], outputs: ["f"], attributes: [:]),
                Node(name: "q", opType: "QuantizeLinear", domain: "", inputs: ["f", "sy", "zy"], outputs: ["Y"], attributes: [:]),
                Node(name: "pool", opType: "ReduceMean", domain: "", inputs: ["f"], outputs: ["P"], attributes: ["keepdims": .int(0)]),
                Node(name: "q2", opType: "QuantizeLinear", domain: "", inputs: ["f", "sy2", "zy2"], outputs: ["Y2"], attributes: [:]),
            ]
            let g = Graph(name: "g", nodes: nodes, inputs: [ValueInfo(name: "X", type: .uint8, shape: [.known(1), .known(n)])],
                          outputs: ["Y", "P", "Y2"].map { ValueInfo(name: $0, type: $0 == "P" ? .float32 : .uint8, shape: nil) },
                          initializers: inits, valueInfo: [:])
            let model = Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                              opsets: ["": 17], graph: g, keepAlive: [])
            let plain = try InferenceSession(model: model, options: .init(optimize: false))
            let fast = try InferenceSession(model: model, options: .init(optimize: true))
            XCTAssertEqual(fast.metadata.opHistogram["com.swiftonnx::LookupTable"], 2, "\(op) \(fast.metadata.opHistogram)")
            XCTAssertEqual(fast.metadata.opHistogram["QuantizeLinear"], nil, "\(op) \(fast.metadata.opHistogram)")
            XCTAssertEqual(fast.metadata.opHistogram[op], 1, "\(op) \(fast.metadata.opHistogram)")
            let xs = try Tensor(shape: [1, n], scalars: (0..<n).map { UInt8(truncatingIfNeeded: $0 * 7) })
            let want = try plain.run(["X": xs]), got = try fast.run(["X": xs])
            for name in ["Y", "P", "Y2"] {
                XCTAssertEqual(try XCTUnwrap(got[name]).bytes(), try XCTUnwrap(want[name]).bytes(), "\(op) \(name)")
            }
        }
    }

    /// What quantize_dynamic writes for a Conv: DynamicQuantizeLinear(x) -> ConvInteger -> Cast ->
    /// Mul(x_scale * w_scale) -> Add(bias), here followed by a per-channel Mul and Add and a Clip (one
    /// ChannelAffine chain) or by a decomposed hard swish (a lone bias Add, then the activation) and a
    /// scalar Mul and Add (a learnable affine block: a second map after the activation). Optimized,
    /// each convolution is one ConvIntegerScaled that took the affine maps and the activation in,
    /// and the output equals the unoptimized graph's bit for bit.
    func testDynamicConvDequantizationTakesTheAffineChainIn() throws {
        var rng = SplitMix64(seed: 41)
        let c = 5, m = 7, h = 9, w = 11
        func weights(_ n: Int) -> [Int8] { (0..<n).map { _ in Int8(Int(rng.below(255)) - 127) } }
        func floats(_ n: Int, _ lo: Float, _ hi: Float) -> [Float] { (0..<n).map { _ in rng.uniform(lo, hi) } }
        let w1 = weights(m * c * 9), w2 = weights(m * m)
        let b1 = floats(m, -1, 1), s1 = floats(m, 0.5, 2), t1 = floats(m, -0.5, 0.5), b2 = floats(m, -1, 1)
        func model() throws -> Model {
            let inits: [String: Tensor] = [
                "w1": try Tensor(shape: [m, c, 3, 3], scalars: w1), "w2": try Tensor(shape: [m, m, 1, 1], scalars: w2),
                "wzp": Tensor(scalar: Int8(0)), "ws1": Tensor(scalar: Float(0.003)), "ws2": Tensor(scalar: Float(0.005)),
                "b1": try Tensor(shape: [m, 1, 1], scalars: b1), "s1": try Tensor(shape: [1, m, 1, 1], scalars: s1),
                "t1": try Tensor(shape: [m, 1, 1], scalars: t1), "b2": try Tensor(shape: [m, 1, 1], scalars: b2),
                "lo": Tensor(scalar: Float(-0.5)), "hi": Tensor(scalar: Float(2.5)),
                "lab_s": Tensor(scalar: Float(0.83)), "lab_b": Tensor(scalar: Float(-0.21)),
            ]
            func node(_ op: String, _ ins: [String], _ outs: [String], _ attrs: [String: Attribute] = [:]) -> Node {
                Node(name: outs[0] + "_node", opType: op, domain: "", inputs: ins, outputs: outs, attributes: attrs)
            }
            let g = Graph(name: "g", nodes: [
                node("DynamicQuantizeLinear", ["X"], ["xq", "xs", "xzp"]),
                node("ConvInteger", ["xq", "w1", "xzp", "wzp"], ["acc1"], ["pads": .ints([1, 1, 1, 1])]),
                node("Cast", ["acc1"], ["f1"], ["to": .int(1)]),
                node("Mul", ["xs", "ws1"], ["sc1"]),
                node("Mul", ["f1", "sc1"], ["d1"]),
                node("Add", ["d1", "b1"], ["a1"]),
                node("Mul", ["a1", "s1"], ["m1"]),
                node("Add", ["m1", "t1"], ["n1"]),
                node("Clip", ["n1", "lo", "hi"], ["r1"]),
                node("DynamicQuantizeLinear", ["r1"], ["rq", "rs", "rzp"]),
                node("ConvInteger", ["rq", "w2", "rzp", "wzp"], ["acc2"]),
                node("Cast", ["acc2"], ["f2"], ["to": .int(1)]),
                node("Mul", ["rs", "ws2"], ["sc2"]),
                node("Mul", ["f2", "sc2"], ["d2"]),
                node("Add", ["d2", "b2"], ["a2"]),
                node("HardSigmoid", ["a2"], ["hs"], ["alpha": .float(1.0 / 6), "beta": .float(0.5)]),
                node("Mul", ["a2", "hs"], ["hw"]),
                node("Mul", ["hw", "lab_s"], ["hm"]),
                node("Add", ["hm", "lab_b"], ["h2"]),
                node("DynamicQuantizeLinear", ["h2"], ["Y", "ys", "yzp"]),
            ], inputs: [ValueInfo(name: "X", type: .float32, shape: [.known(2), .known(c), .known(h), .known(w)])],
               outputs: [ValueInfo(name: "Y", type: .uint8, shape: nil), ValueInfo(name: "h2", type: .float32, shape: nil)],
               initializers: inits, valueInfo: [:])
            return Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                         opsets: ["": 21], graph: g, keepAlive: [])
        }
        let plain = try InferenceSession(model: try model(), options: .init(optimize: false))
        let fast = try InferenceSession(model: try model(), options: .init(optimize: true))
        let histogram = fast.metadata.opHistogram
        XCTAssertEqual(histogram["com.swiftonnx::ConvIntegerScaled"], 2, "\(histogram)")
        for op in ["ConvInteger", "Cast", "Add", "Clip", "HardSigmoid", "HardSwish", "com.swiftonnx::ChannelAffine"] {
            XCTAssertNil(histogram[op], "\(op): \(histogram)")
        }
        let x = try Tensor(shape: [2, c, h, w], scalars: floats(2 * c * h * w, -2, 3))
        let a = try plain.run(["X": x]), b = try fast.run(["X": x])
        let af = try XCTUnwrap(a["h2"]).scalars(as: Float.self), bf = try XCTUnwrap(b["h2"]).scalars(as: Float.self)
        XCTAssertEqual(af.map(\.bitPattern), bf.map(\.bitPattern))
        XCTAssertEqual(try XCTUnwrap(a["Y"]).scalars(as: UInt8.self), try XCTUnwrap(b["Y"]).scalars(as: UInt8.self))
    }
}
