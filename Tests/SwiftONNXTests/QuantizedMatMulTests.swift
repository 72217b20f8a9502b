import XCTest
@testable import SwiftONNX

/// MatMulInteger on the integer GEMM (constant B packed as Bᵀ at plan time, A read in place, the
/// product transposed back) against the general integer path (B given at run time), bit for bit;
/// and dynamic quantization's dequantization (MatMulInteger -> Cast -> Mul) fused into one
/// MatMulIntegerScaled, against the unoptimized graph bit for bit.
final class QuantizedMatMulTests: XCTestCase {
    private func op(_ type: String, domain: String = "", _ inputs: [Tensor?], constantB: Bool) throws -> Tensor {
        let names = inputs.enumerated().map { $0.element == nil ? "" : "in\($0.offset)" }
        let node = Node(name: "mm", opType: type, domain: domain, inputs: names, outputs: ["y"], attributes: [:])
        var ctx = OpContext(node: node, opset: 21, compileSubgraph: { _ in throw OpError("no subgraphs") })
        if constantB {
            for i in [1, 3] where i < inputs.count { if let t = inputs[i] { ctx.constants["in\(i)"] = t } }
        }
        guard let builder = OpRegistry.standard.builder(domain: domain, op: type) else { throw OpError("\(type) is not registered") }
        return try builder(ctx).run(inputs, RunEnv(threads: 2))[0]
    }

    private func bytes(_ n: Int, _ rng: inout SplitMix64) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next() >> 7) } }

    /// Awkward sizes (k not a multiple of 4, one row, one column, more rows than a column block,
    /// rank-3 A), both signednesses of A and B, zero points absent, per tensor (0, 255, -128, 127)
    /// and per column; saturating data (all 255 against all -128) in one case.
    func testMatMulIntegerFastPathMatchesTheGeneralPath() throws {
        var rng = SplitMix64(seed: 31)
        // (A's leading shape, k, n)
        let shapes: [([Int], Int, Int)] = [
            ([1], 1, 1), ([7], 5, 3), ([33], 257, 64), ([2, 3], 19, 40), ([100], 64, 33), ([1, 200], 9, 70), ([5], 600, 17),
        ]
        for (si, (lead, k, n)) in shapes.enumerated() {
            for (aSigned, bSigned) in [(false, true), (true, true), (false, false), (true, false)] {
                let rows = lead.reduce(1, *)
                var ab = bytes(rows * k, &rng), bb = bytes(k * n, &rng)
                if si == 1 { ab = [UInt8](repeating: aSigned ? 0x7F : 0xFF, count: ab.count); bb = [UInt8](repeating: 0x80, count: bb.count) }
                let a = aSigned ? try Tensor(shape: lead + [k], scalars: ab.map { Int8(bitPattern: $0) })
                                : try Tensor(shape: lead + [k], scalars: ab)
                let b = bSigned ? try Tensor(shape: [k, n], scalars: bb.map { Int8(bitPattern: $0) })
                                : try Tensor(shape: [k, n], scalars: bb)
                let perColumn = si % 2 == 0
                let azp: Tensor? = si == 2 ? nil : aSigned ? Tensor(scalar: Int8(si == 1 ? -128 : 5)) : Tensor(scalar: UInt8(si == 3 ? 0 : 255))
                let bzp: Tensor?
                if si == 2 { bzp = nil }
                else if perColumn {
                    bzp = bSigned ? try Tensor(shape: [n], scalars: (0..<n).map { Int8($0 % 9) - 4 })
                                  : try Tensor(shape: [n], scalars: (0..<n).map { UInt8(120 + $0 % 15) })
                } else {
                    bzp = bSigned ? Tensor(scalar: Int8(127)) : Tensor(scalar: UInt8(0))
                }
                let inputs: [Tensor?] = [a, b, azp, bzp]
                let general = try op("MatMulInteger", inputs, constantB: false)
                let fast = try op("MatMulInteger", inputs, constantB: true)
                XCTAssertEqual(fast.dtype, .int32)
                XCTAssertEqual(fast.shape, lead + [n])
                XCTAssertEqual(fast, general, "shape \(si) a signed \(aSigned) b signed \(bSigned)")
                // the fused dequantization: float(acc) * scale, one scale or one per column
                for scale in [Tensor(scalar: Float(0.0123)), try Tensor(shape: [n], scalars: (0..<n).map { Float($0 + 1) * 1.7e-3 })] {
                    let s = scale.pointer(Float.self)
                    let expected = try general.scalars(as: Int32.self).enumerated().map { Float($0.element) * s[scale.count == 1 ? 0 : $0.offset % n] }
                    for constantB in [true, false] {
                        let y = try op("MatMulIntegerScaled", domain: "com.swiftonnx", inputs + [scale], constantB: constantB)
                        XCTAssertEqual(y.shape, lead + [n])
                        XCTAssertEqual(try y.scalars(as: Float.self), expected, "shape \(si) scaled, constant B \(constantB)")
                    }
                }
            }
        }
    }

    /// What quantize_dynamic writes for a MatMul: DynamicQuantizeLinear(x) -> MatMulInteger(xq, W, xzp, wzp)
    /// -> Cast -> Mul(x_scale * w_scale) -> Add(bias). Optimized, the product and its dequantization
    /// are one MatMulIntegerScaled, and the output equals the unoptimized graph's bit for bit, with
    /// one weight scale and with one per column.
    func testDynamicMatMulDequantizationIsFused() throws {
        var rng = SplitMix64(seed: 77)
        let m = 37, k = 45, n = 24
        let wq = (0..<(k * n)).map { _ in Int8(Int(rng.below(255)) - 127) }
        let bias = (0..<n).map { _ in rng.uniform(-1, 1) }
        for perColumn in [false, true] {
            func model() throws -> Model {
                let ws = perColumn ? try Tensor(shape: [n], scalars: (0..<n).map { Float($0 + 3) * 1e-3 }) : Tensor(scalar: Float(0.0042))
                let inits: [String: Tensor] = [
                    "W": try Tensor(shape: [k, n], scalars: wq), "wzp": Tensor(scalar: Int8(0)), "ws": ws,
                    "bias": try Tensor(shape: [n], scalars: bias),
                ]
                let g = Graph(name: "g", nodes: [
                    Node(name: "dq", opType: "DynamicQuantizeLinear", domain: "", inputs: ["X"], outputs: ["xq", "xs", "xzp"], attributes: [:]),
                    Node(name: "mmi", opType: "MatMulInteger", domain: "", inputs: ["xq", "W", "xzp", "wzp"], outputs: ["acc"], attributes: [:]),
                    Node(name: "cast", opType: "Cast", domain: "", inputs: ["acc"], outputs: ["accf"], attributes: ["to": .int(1)]),
                    Node(name: "scale", opType: "Mul", domain: "", inputs: ["xs", "ws"], outputs: ["s"], attributes: [:]),
                    Node(name: "deq", opType: "Mul", domain: "", inputs: ["accf", "s"], outputs: ["yf"], attributes: [:]),
                    Node(name: "add", opType: "Add", domain: "", inputs: ["yf", "bias"], outputs: ["Y"], attributes: [:]),
                ], inputs: [ValueInfo(name: "X", type: .float32, shape: [.known(1), .known(m), .known(k)])],
                   outputs: [ValueInfo(name: "Y", type: .float32, shape: nil)], initializers: inits, valueInfo: [:])
                return Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                             opsets: ["": 21], graph: g, keepAlive: [])
            }
            let plain = try InferenceSession(model: try model(), options: .init(optimize: false))
            let fast = try InferenceSession(model: try model(), options: .init(optimize: true))
            XCTAssertEqual(fast.metadata.opHistogram["com.swiftonnx::MatMulIntegerScaled"], 1, "\(fast.metadata.opHistogram)")
            XCTAssertNil(fast.metadata.opHistogram["MatMulInteger"])
            let x = try Tensor(shape: [1, m, k], scalars: (0..<(m * k)).map { _ in rng.uniform(-3, 5) })
            let a = try XCTUnwrap(try plain.run(["X": x])["Y"]).scalars(as: Float.self)
            let b = try XCTUnwrap(try fast.run(["X": x])["Y"]).scalars(as: Float.self)
            XCTAssertEqual(a, b, "per column \(perColumn)")
        }
    }
}
