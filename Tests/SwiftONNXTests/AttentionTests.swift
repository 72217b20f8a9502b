import XCTest
import Foundation
@testable import SwiftONNX

/// Attention and RotaryEmbedding against plain double-precision loops written from the ONNX
/// specification, on sizes the node suite does not reach: several blocks of query rows (the kernel
/// works 32 rows at a time), grouped heads, past keys, odd head sizes, 1 and 2 threads.
final class AttentionTests: XCTestCase {
    private func random(_ shape: [Int], _ rng: inout SplitMix64, _ lo: Float = -1, _ hi: Float = 1) -> Tensor {
        let n = shape.reduce(1, *)
        return Tensor(validShape: shape, scalars: (0..<n).map { _ in rng.uniform(lo, hi) })
    }

    /// Y (b, h, i, :) from 4-D Q (b, hq, sq, d), full K / V (b, hkv, t, d / dv) and a full additive bias (b, hq, sq, t).
    private func reference(q: [Float], k: [Float], v: [Float], bias: [Double], b: Int, hq: Int, hkv: Int, sq: Int, t: Int,
                           d: Int, dv: Int, scale: Double, softcap: Double) -> [Double] {
        var y = [Double](repeating: 0, count: b * hq * sq * dv)
        for bi in 0..<b {
            for h in 0..<hq {
                let g = h / (hq / hkv)
                for i in 0..<sq {
                    var s = [Double](repeating: 0, count: t)
                    var allMasked = true
                    for j in 0..<t {
                        var dot = 0.0
                        for c in 0..<d { dot += Double(q[((bi * hq + h) * sq + i) * d + c]) * Double(k[((bi * hkv + g) * t + j) * d + c]) }
                        dot *= scale
                        if softcap > 0 { dot = softcap * tanh(dot / softcap) }
                        let bb = bias[((bi * hq + h) * sq + i) * t + j]
                        if bb != -.infinity { allMasked = false }
                        s[j] = dot + bb
                    }
                    if allMasked { continue }
                    let m = s.max()!
                    let e = s.map { exp($0 - m) }
                    let sum = e.reduce(0, +)
                    for c in 0..<dv {
                        var acc = 0.0
                        for j in 0..<t { acc += e[j] / sum * Double(v[((bi * hkv + g) * t + j) * dv + c]) }
                        y[((bi * hq + h) * sq + i) * dv + c] = acc
                    }
                }
            }
        }
        return y
    }

    func testGroupedHeadsWithPastMaskAndCausalAgainstReference() throws {
        var rng = SplitMix64(seed: 7)
        let (b, hq, hkv, sq, skv, past, d, dv) = (2, 4, 2, 70, 45, 10, 12, 9)
        let t = past + skv
        let q = random([b, hq, sq, d], &rng), k = random([b, hkv, skv, d], &rng), v = random([b, hkv, skv, dv], &rng)
        let pk = random([b, hkv, past, d], &rng), pv = random([b, hkv, past, dv], &rng)
        // A (1, hq, sq, t - 3) mask: its last 3 keys count as masked.
        let maskLen = t - 3
        let mask = random([1, hq, sq, maskLen], &rng, -2, 0.5)
        for causal in [false, true] {
            for threads in [1, 2] {
                let out = try runOp("Attention", opset: 23, [q, k, v, mask, pk, pv],
                                    ["is_causal": .int(causal ? 1 : 0), "softcap": .float(2.5)], outputs: 3, threads: threads)
                // Full K / V as the reference sees them, and the bias.
                let qs = try q.scalars(as: Float.self), ks = try k.scalars(as: Float.self), vs = try v.scalars(as: Float.self)
                let pks = try pk.scalars(as: Float.self), pvs = try pv.scalars(as: Float.self), ms = try mask.scalars(as: Float.self)
                var fk = [Float](), fv = [Float]()
                func append(_ dst: inout [Float], _ src: [Float], _ head: Int, _ len: Int, _ size: Int) {
                    let start: Int = head * len * size
                    dst.append(contentsOf: src[start ..< start + len * size])
                }
                for bi in 0..<b {
                    for g in 0..<hkv {
                        let head: Int = bi * hkv + g
                        append(&fk, pks, head, past, d); append(&fk, ks, head, skv, d)
                        append(&fv, pvs, head, past, dv); append(&fv, vs, head, skv, dv)
                    }
                }
                var bias = [Double](repeating: 0, count: b * hq * sq * t)
                for bi in 0..<b { for h in 0..<hq { for i in 0..<sq { for j in 0..<t {
                    var x = j < maskLen ? Double(ms[(h * sq + i) * maskLen + j]) : -.infinity
                    if causal && j > i + past { x = -.infinity }
                    bias[((bi * hq + h) * sq + i) * t + j] = x
                }}}}
                let want = reference(q: qs, k: fk, v: fv, bias: bias, b: b, hq: hq, hkv: hkv, sq: sq, t: t, d: d, dv: dv,
                                     scale: 1 / Double(d).squareRoot(), softcap: 2.5)
                try assertClose(out[0], want, tol: 1e-5)
                XCTAssertEqual(out[1].shape, [b, hkv, t, d])
                try assertClose(out[1], fk.map(Double.init), tol: 0)
                try assertClose(out[2], fv.map(Double.init), tol: 0)
            }
        }
    }

    /// Many keys: the kernel works in blocks of 32 query rows (scores of a block stay within 64 KB);
    /// a (b, 1, 1, keys) padding mask is the same for every row (read once per block), batch 1 fully masked.
    func testLongKeysInSeveralRowBlocksWithPaddingMask() throws {
        var rng = SplitMix64(seed: 13)
        let (b, h, sq, t, d) = (2, 2, 70, 600, 8)
        let q = random([b, h, sq, d], &rng), k = random([b, h, t, d], &rng), v = random([b, h, t, d], &rng)
        let maskValues: [Float] = (0..<(b * t)).map { $0 >= t ? -.infinity : ($0 % 7 == 3 ? -.infinity : 0) }
        let mask = Tensor(validShape: [b, 1, 1, t], scalars: maskValues)
        for threads in [1, 2] {
            let y = try runOp("Attention", opset: 23, [q, k, v, mask], [:], threads: threads)[0]
            var bias = [Double](repeating: 0, count: b * h * sq * t)
            for bi in 0..<b { for hh in 0..<h { for i in 0..<sq { for j in 0..<t {
                bias[((bi * h + hh) * sq + i) * t + j] = Double(maskValues[bi * t + j])
            }}}}
            let want = reference(q: try q.scalars(as: Float.self), k: try k.scalars(as: Float.self), v: try v.scalars(as: Float.self),
                                 bias: bias, b: b, hq: h, hkv: h, sq: sq, t: t, d: d, dv: d,
                                 scale: 1 / Double(d).squareRoot(), softcap: 0)
            try assertClose(y, want, tol: 1e-5)
        }
    }

    /// Causal self-attention over 130 tokens (two blocks of query rows, the causal bias added in the
    /// GEMM epilogue) against the reference at 1 and 2 threads, and the same with a past; each with
    /// is_causal and with the frontier given as a mask, as exporters write it.
    func testLongCausalAttentionWithAndWithoutAMask() throws {
        var rng = SplitMix64(seed: 17)
        for (sq, past) in [(130, 0), (61, 7)] {
            let (b, h, d) = (2, 3, 16)
            let t = sq + past
            let q = random([b, h, sq, d], &rng), k = random([b, h, sq, d], &rng), v = random([b, h, sq, d], &rng)
            let pk = random([b, h, past, d], &rng), pv = random([b, h, past, d], &rng)
            var fk = [Float](), fv = [Float]()
            let ks = try k.scalars(as: Float.self), vs = try v.scalars(as: Float.self)
            let pks = try pk.scalars(as: Float.self), pvs = try pv.scalars(as: Float.self)
            for head in 0..<(b * h) {
                let p0: Int = head * past * d, p1: Int = p0 + past * d
                let s0: Int = head * sq * d, s1: Int = s0 + sq * d
                fk.append(contentsOf: pks[p0..<p1]); fk.append(contentsOf: ks[s0..<s1])
                fv.append(contentsOf: pvs[p0..<p1]); fv.append(contentsOf: vs[s0..<s1])
            }
            var bias = [Double](repeating: 0, count: b * h * sq * t)
            for bh in 0..<(b * h) { for i in 0..<sq { for j in 0..<t where j > i + past {
                bias[(bh * sq + i) * t + j] = -.infinity
            }}}
            let want = reference(q: try q.scalars(as: Float.self), k: fk, v: fv, bias: bias, b: b, hq: h, hkv: h, sq: sq, t: t,
                                 d: d, dv: d, scale: 1 / Double(d).squareRoot(), softcap: 0)
            // The same frontier as an explicit mask.
            let maskValues: [Float] = (0..<(sq * t)).map { $0 % t > $0 / t + past ? -.infinity : 0 }
            let mask = Tensor(validShape: [1, 1, sq, t], scalars: maskValues)
            for threads in [1, 2] {
                let inputs: [Tensor?] = past > 0 ? [q, k, v, nil, pk, pv] : [q, k, v]
                let y = try runOp("Attention", opset: 23, inputs, ["is_causal": .int(1)], outputs: past > 0 ? 3 : 1, threads: threads)[0]
                try assertClose(y, want, tol: 1e-5)
                let masked: [Tensor?] = past > 0 ? [q, k, v, mask, pk, pv] : [q, k, v, mask]
                let ym = try runOp("Attention", opset: 23, masked, [:], outputs: past > 0 ? 3 : 1, threads: threads)[0]
                try assertClose(ym, want, tol: 1e-5)
            }
        }
    }

    /// The key-limited path (masks that hide only tails of keys: no softcap, no left window): every row
    /// of a per-head mask ends in -inf from its own key on (some from key 0, some rows starting with
    /// -inf too), with and without the causal frontier and a past, 100 query rows (groups of 24 and a
    /// rest), grouped heads, value heads wider than a register tile, 1 and 2 threads.
    func testKeyLimitedRowsAgainstReference() throws {
        var rng = SplitMix64(seed: 29)
        let (b, hq, hkv, sq, past, d, dv) = (2, 4, 2, 100, 5, 12, 40)
        let t = sq + past
        let q = random([b, hq, sq, d], &rng), k = random([b, hkv, sq, d], &rng), v = random([b, hkv, sq, dv], &rng)
        let pk = random([b, hkv, past, d], &rng), pv = random([b, hkv, past, dv], &rng)
        let maskLen = t - 2
        var maskValues = [Float](repeating: 0, count: b * hq * sq * maskLen)
        for row in 0..<(b * hq * sq) {
            let r = Int(rng.uniform(0, 1) * 1000)
            let limit = r % 11 == 0 ? 0 : r % maskLen
            let first = r % 5 == 0 ? min(limit, 3) : 0
            for j in 0..<maskLen {
                maskValues[row * maskLen + j] = j < first || j >= limit ? -.infinity : rng.uniform(-2, 0.5)
            }
        }
        let mask = Tensor(validShape: [b, hq, sq, maskLen], scalars: maskValues)
        let qs = try q.scalars(as: Float.self)
        let ks = try k.scalars(as: Float.self), vs = try v.scalars(as: Float.self)
        let pks = try pk.scalars(as: Float.self), pvs = try pv.scalars(as: Float.self)
        var fk = [Float](), fv = [Float]()
        for head in 0..<(b * hkv) {
            fk.append(contentsOf: pks[(head * past * d)..<((head + 1) * past * d)])
            fk.append(contentsOf: ks[(head * sq * d)..<((head + 1) * sq * d)])
            fv.append(contentsOf: pvs[(head * past * dv)..<((head + 1) * past * dv)])
            fv.append(contentsOf: vs[(head * sq * dv)..<((head + 1) * sq * dv)])
        }
        for causal in [false, true] {
            var bias = [Double](repeating: 0, count: b * hq * sq * t)
            for row in 0..<(b * hq * sq) {
                let i = row % sq
                for j in 0..<t {
                    var x = j < maskLen ? Double(maskValues[row * maskLen + j]) : -.infinity
                    if causal && j > i + past { x = -.infinity }
                    bias[row * t + j] = x
                }
            }
            let want = reference(q: qs, k: fk, v: fv, bias: bias, b: b, hq: hq, hkv: hkv, sq: sq, t: t, d: d, dv: dv,
                                 scale: 1 / Double(d).squareRoot(), softcap: 0)
            for threads in [1, 2] {
                let y = try runOp("Attention", opset: 23, [q, k, v, mask, pk, pv], ["is_causal": .int(causal ? 1 : 0)],
                                  outputs: 3, threads: threads)[0]
                try assertClose(y, want, tol: 1e-5)
            }
        }
    }

    func testThreeDimensionalLayoutWithWindowAndValidKeys() throws {
        var rng = SplitMix64(seed: 11)
        let (b, hq, hkv, s, d) = (2, 6, 3, 40, 8)
        let q = random([b, s, hq * d], &rng), k = random([b, s, hkv * d], &rng), v = random([b, s, hkv * d], &rng)
        let valid = [33, 40]
        let nonpad = Tensor(validShape: [b], scalars: valid.map { Int64($0) })
        let y = try runOp("Attention", opset: 24, [q, k, v, nil, nil, nil, nonpad],
                          ["is_causal": .int(1), "q_num_heads": .int(hq), "kv_num_heads": .int(hkv), "scale": .float(0.3),
                           "left_window_size": .int(5), "right_window_size": .int(-1)], threads: 2)[0]
        XCTAssertEqual(y.shape, [b, s, hq * d])
        // To 4-D for the reference.
        func heads(_ x: Tensor, _ h: Int) throws -> [Float] {
            let xs = try x.scalars(as: Float.self)
            var r = [Float](repeating: 0, count: xs.count)
            for bi in 0..<b { for hh in 0..<h { for i in 0..<s { for c in 0..<d {
                r[((bi * h + hh) * s + i) * d + c] = xs[(bi * s + i) * h * d + hh * d + c]
            }}}}
            return r
        }
        var bias = [Double](repeating: 0, count: b * hq * s * s)
        for bi in 0..<b { for h in 0..<hq { for i in 0..<s { for j in 0..<s {
            let pos = i + valid[bi] - s      // the query's position: bottom-right aligned with the valid keys
            let allowed = j <= pos && pos - j <= 5 && j < valid[bi]
            bias[((bi * hq + h) * s + i) * s + j] = allowed ? 0 : -.infinity
        }}}}
        let want4 = reference(q: try heads(q, hq), k: try heads(k, hkv), v: try heads(v, hkv), bias: bias, b: b, hq: hq, hkv: hkv,
                              sq: s, t: s, d: d, dv: d, scale: 0.3, softcap: 0)
        var want = [Double](repeating: 0, count: want4.count)
        for bi in 0..<b { for h in 0..<hq { for i in 0..<s { for c in 0..<d {
            want[(bi * s + i) * hq * d + h * d + c] = want4[((bi * hq + h) * s + i) * d + c]
        }}}}
        try assertClose(y, want, tol: 1e-5)
        // Rows with no valid key (batch 0, the first 7 queries sit before key 0) are zero.
        XCTAssertEqual(try y.scalars(as: Float.self)[0..<(hq * d)].allSatisfy { $0 == 0 }, true)
    }

    func testBadShapesAreTypedErrors() {
        let q = Tensor(validShape: [1, 2, 3, 4], scalars: [Float](repeating: 1, count: 24))
        let kBad = Tensor(validShape: [1, 2, 3, 5], scalars: [Float](repeating: 1, count: 30))
        XCTAssertThrowsError(try runOp("Attention", opset: 23, [q, kBad, kBad])) { e in
            XCTAssertTrue("\(e)".contains("head size"), "\(e)")
        }
        let q3 = Tensor(validShape: [1, 3, 8], scalars: [Float](repeating: 1, count: 24))
        XCTAssertThrowsError(try runOp("Attention", opset: 23, [q3, q3, q3])) { e in
            XCTAssertTrue("\(e)".contains("q_num_heads"), "\(e)")
        }
        let maskBad = Tensor(validShape: [3, 9], scalars: [Float](repeating: 0, count: 27))
        XCTAssertThrowsError(try runOp("Attention", opset: 23, [q, q, q, maskBad])) { e in
            XCTAssertTrue("\(e)".contains("attn_mask"), "\(e)")
        }
    }

    func testRotaryEmbeddingAgainstReference() throws {
        var rng = SplitMix64(seed: 3)
        let (b, h, s, d, rd, maxPos) = (2, 3, 5, 10, 6, 16)
        let x = random([b, h, s, d], &rng)
        let cosT = random([maxPos, rd / 2], &rng), sinT = random([maxPos, rd / 2], &rng)
        let posv: [Int64] = (0..<(b * s)).map { Int64(($0 * 7) % maxPos) }
        let pos = Tensor(validShape: [b, s], scalars: posv)
        let xs = try x.scalars(as: Float.self), cs = try cosT.scalars(as: Float.self), ss = try sinT.scalars(as: Float.self)
        for interleaved in [0, 1] {
            let y = try runOp("RotaryEmbedding", opset: 23, [x, cosT, sinT, pos],
                              ["interleaved": .int(interleaved), "rotary_embedding_dim": .int(rd)])[0]
            var want = xs.map(Double.init)
            for bi in 0..<b { for hh in 0..<h { for si in 0..<s {
                let base = ((bi * h + hh) * s + si) * d, p = Int(posv[bi * s + si])
                for t in 0..<(rd / 2) {
                    let (i1, i2) = interleaved == 1 ? (2 * t, 2 * t + 1) : (t, t + rd / 2)
                    let c = Double(cs[p * rd / 2 + t]), sn = Double(ss[p * rd / 2 + t])
                    let a = Double(xs[base + i1]), e = Double(xs[base + i2])
                    want[base + i1] = c * a - sn * e
                    want[base + i2] = sn * a + c * e
                }
            }}}
            try assertClose(y, want, tol: 1e-6)
        }
        let badPos = Tensor(validShape: [b, s], scalars: [Int64](repeating: Int64(maxPos), count: b * s))
        XCTAssertThrowsError(try runOp("RotaryEmbedding", opset: 23, [x, cosT, sinT, badPos], ["rotary_embedding_dim": .int(rd)]))
    }
}

/// FuseScaledDotProductAttention: attention spelled out (MatMul, scale, mask, Softmax, MatMul) becomes
/// one com.swiftonnx Attention with the unoptimized graph's results; what it cannot take stays.
final class ScaledDotProductAttentionFusionTests: XCTestCase {
    private let b = 2, h = 3, sq = 37, sk = 45, d = 8, dv = 6
    private let fused = "com.swiftonnx::Attention"

    private func node(_ op: String, _ ins: [String], _ out: String, _ attrs: [String: Attribute] = [:]) -> Node {
        Node(name: out, opType: op, domain: "", inputs: ins, outputs: [out], attributes: attrs)
    }

    /// Inputs Q (b, h, sq, d), K (b, h, sk, d), R (b, sk, h, d) (K before the head transpose), V (b, h, sk, dv),
    /// M (b, 1, 1, sk), N (b, 1, 1, 1), K1 (1, h, sk, d) and F (b, 1, sq, sk) (a mask whose rows 3, 10, 17, ...
    /// mask every key with -inf); constants c = sqrt(d), r = 1 / sqrt(d), q4 = d^(-1/4), zero = 0 and one = 1.
    private func check(_ nodes: [Node], fused expectFused: Bool, extraOutputs: [String] = [], opset: Int = 17,
                       fusedOp: String? = nil, transposesLeft: Int? = nil,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let fused = fusedOp ?? self.fused
        let c = Float(d).squareRoot()
        let inputs: [(String, [Int])] = [("Q", [b, h, sq, d]), ("K", [b, h, sk, d]), ("R", [b, sk, h, d]),
                                         ("V", [b, h, sk, dv]), ("M", [b, 1, 1, sk]), ("N", [b, 1, 1, 1]),
                                         ("K1", [1, h, sk, d]), ("F", [b, 1, sq, sk]),
                                         ("QS", [b, sq, h, d]), ("VS", [b, sk, h, dv])]
        let g = Graph(name: "g", nodes: nodes,
                      inputs: inputs.map { ValueInfo(name: $0.0, type: .float32, shape: $0.1.map { .known($0) }) },
                      outputs: (["Y"] + extraOutputs).map { ValueInfo(name: $0, type: .float32, shape: nil) },
                      initializers: ["c": Tensor(validShape: [], scalars: [c]), "r": Tensor(validShape: [], scalars: [1 / c]),
                                     "q4": Tensor(validShape: [], scalars: [1 / c.squareRoot()]),
                                     "zero": Tensor(validShape: [], scalars: [Float(0)]), "one": Tensor(validShape: [], scalars: [Float(1)])],
                      valueInfo: [:])
        let m = Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                      opsets: ["": opset], graph: g, keepAlive: [])
        var rng = SplitMix64(seed: 21)
        var feeds: [String: Tensor] = [:]
        for (name, shape) in inputs {
            let n = shape.reduce(1, *)
            // the mask: 0 for kept keys, -10000 for the last 5 keys of batch 1 (BERT's padding mask)
            let values: [Float] = name == "M" ? (0..<n).map { $0 >= sk && $0 % sk >= sk - 5 ? -10000 : 0 }
                                : name == "F" ? (0..<n).map { ($0 / sk) % 7 == 3 ? -.infinity : 0 }
                                              : (0..<n).map { _ in rng.uniform(-2, 2) }
            feeds[name] = Tensor(validShape: shape, scalars: values)
        }
        let plain = try InferenceSession(model: m, options: .init(optimize: false))
        let want = try XCTUnwrap(try plain.run(feeds)["Y"])
        for threads in [1, 2] {
            let fast = try InferenceSession(model: m, options: .init(threads: threads, optimize: true))
            XCTAssertEqual(fast.metadata.opHistogram[fused] != nil, expectFused, "\(fast.metadata.opHistogram)", file: file, line: line)
            if let transposesLeft {
                XCTAssertEqual(fast.metadata.opHistogram["Transpose"] ?? 0, transposesLeft, "\(fast.metadata.opHistogram)", file: file, line: line)
            }
            if expectFused {
                XCTAssertNil(fast.metadata.opHistogram["Softmax"], file: file, line: line)
                XCTAssertNil(fast.metadata.opHistogram["MatMul"], file: file, line: line)
            }
            // Bound: scores reach about 11 (|Q|, |K| < 2, d = 8), where an ulp is 9.5e-7; scaling by alpha
            // in the GEMM (fused) and dividing afterwards (unfused), on GEMMs of other orders of
            // summation, differ by a few ulps, which exp turns into the same relative error of every
            // probability, and Y sums probabilities times |V| < 2, often cancelling to near 0: atol 1e-5
            // = 2 x 5e-6. (1e-6 held on AVX2 machines by luck of their GEMMs' orders; on AVX-512 a Y of
            // 0.032 differed by 1.4e-6.)
            try assertClose(try XCTUnwrap(try fast.run(feeds)["Y"]), want, rtol: 1e-5, atol: 1e-5, file: file, line: line)
        }
    }

    func testSpelledOutAttentionBecomesOneNode() throws {
        let t = { (ins: String, out: String, p: [Int]) in self.node("Transpose", [ins], out, ["perm": .ints(p)]) }
        // BERT (TorchScript): K^T by Transpose(K, [0, 1, 3, 2]), / sqrt(d), + mask
        try check([t("K", "KT", [0, 1, 3, 2]), node("MatMul", ["Q", "KT"], "s"), node("Div", ["s", "c"], "s1"),
                   node("Add", ["s1", "M"], "s2"), node("Softmax", ["s2"], "p", ["axis": .int(-1)]),
                   node("MatMul", ["p", "V"], "Y")], fused: true)
        // K^T straight from (batch, keys, heads, size) by [0, 2, 3, 1], * (1 / sqrt(d)) with the constant first, mask first
        try check([t("R", "KT", [0, 2, 3, 1]), node("MatMul", ["Q", "KT"], "s"), node("Mul", ["r", "s"], "s1"),
                   node("Add", ["M", "s1"], "s2"), node("Softmax", ["s2"], "p", ["axis": .int(3)]),
                   node("MatMul", ["p", "V"], "Y")], fused: true)
        // a mask broadcast over the keys (widened by the op)
        try check([t("K", "KT", [0, 1, 3, 2]), node("MatMul", ["Q", "KT"], "s"), node("Add", ["s", "N"], "s2"),
                   node("Softmax", ["s2"], "p", ["axis": .int(-1)]), node("MatMul", ["p", "V"], "Y")], fused: true)
        // keys of one batch for both queries' batches: MatMul broadcasts, the kernel does not (the op computes it unfused)
        try check([t("K1", "KT", [0, 1, 3, 2]), node("MatMul", ["Q", "KT"], "s"), node("Div", ["s", "c"], "s1"),
                   node("Add", ["s1", "M"], "s2"), node("Softmax", ["s2"], "p", ["axis": .int(-1)]),
                   node("MatMul", ["p", "V"], "Y")], fused: true)
        // scaled_dot_product_attention as TorchScript exports it: Q and K^T each times d^(-1/4) (the constant
        // on either side), the probabilities through Where(IsNaN(p), 0, p); rows of F with every key at -inf
        // give NaN probabilities unfused and zeros from that Where, which the fused op gives directly
        try check([t("R", "KT", [0, 2, 3, 1]), node("Mul", ["Q", "q4"], "qs"), node("Mul", ["q4", "KT"], "ks"),
                   node("MatMul", ["qs", "ks"], "s"), node("Add", ["s", "F"], "s2"),
                   node("Softmax", ["s2"], "p", ["axis": .int(-1)]), node("IsNaN", ["p"], "nan"),
                   node("Where", ["nan", "zero", "p"], "p0"), node("MatMul", ["p0", "V"], "Y")], fused: true)
        // the same with a padding mask, scaled on one side only
        try check([t("K", "KT", [0, 1, 3, 2]), node("Mul", ["Q", "r"], "qs"), node("MatMul", ["qs", "KT"], "s"),
                   node("Add", ["M", "s"], "s2"), node("Softmax", ["s2"], "p", ["axis": .int(-1)]),
                   node("IsNaN", ["p"], "nan"), node("Where", ["nan", "zero", "p"], "p0"),
                   node("MatMul", ["p0", "V"], "Y")], fused: true)
        // a scalar added to every score (a rank-0 "mask", widened by the op)
        try check([t("K", "KT", [0, 1, 3, 2]), node("MatMul", ["Q", "KT"], "s"), node("Add", ["s", "r"], "s2"),
                   node("Softmax", ["s2"], "p", ["axis": .int(-1)]), node("MatMul", ["p", "V"], "Y")], fused: true)
        // no scale, no mask; K^T made some other way (a transpose is added)
        try check([t("K", "KT0", [0, 1, 3, 2]), node("Relu", ["KT0"], "KT"), node("MatMul", ["Q", "KT"], "s"),
                   node("Softmax", ["s"], "p", ["axis": .int(-1)]), node("MatMul", ["p", "V"], "Y")], fused: true)
    }

    /// Heads split by Transpose(X, [0, 2, 1, 3]) before attention and merged by the same transpose after
    /// it are read and written in place (AttentionHeadsInPlace): no transpose is left, for the spelled-out
    /// attention and for opset 23's Attention; a transpose whose result has another reader stays.
    func testHeadTransposesAroundAttentionAreReadInPlace() throws {
        let t = { (ins: String, out: String, p: [Int]) in self.node("Transpose", [ins], out, ["perm": .ints(p)]) }
        // TorchScript's BERT: Q, K^T (from R by [0, 2, 3, 1]) and V split from (batch, sequence, heads, size), Y merged
        try check([t("QS", "Q2", [0, 2, 1, 3]), t("R", "KT", [0, 2, 3, 1]), t("VS", "V2", [0, 2, 1, 3]),
                   node("MatMul", ["Q2", "KT"], "s"), node("Div", ["s", "c"], "s1"), node("Add", ["s1", "M"], "s2"),
                   node("Softmax", ["s2"], "p", ["axis": .int(-1)]), node("MatMul", ["p", "V2"], "Y0"),
                   t("Y0", "Y", [0, 2, 1, 3])], fused: true, transposesLeft: 0)
        // only V and Y in place; the split Q also feeds an output, so its transpose stays
        try check([t("QS", "Q2", [0, 2, 1, 3]), t("K", "KT", [0, 1, 3, 2]), t("VS", "V2", [0, 2, 1, 3]),
                   node("MatMul", ["Q2", "KT"], "s"), node("Softmax", ["s"], "p", ["axis": .int(-1)]),
                   node("MatMul", ["p", "V2"], "Y0"), t("Y0", "Y", [0, 2, 1, 3])],
                  fused: true, extraOutputs: ["Q2"], transposesLeft: 1)
        // the keys' batch broadcast, which the kernel does not take: the op transposes back and computes unfused
        try check([t("QS", "Q2", [0, 2, 1, 3]), t("K1", "KT", [0, 1, 3, 2]), node("MatMul", ["Q2", "KT"], "s"),
                   node("Softmax", ["s"], "p", ["axis": .int(-1)]), node("MatMul", ["p", "V"], "Y0"),
                   t("Y0", "Y", [0, 2, 1, 3])], fused: true, transposesLeft: 0)
        // opset 23's Attention with a mask, all three inputs split and the output merged; and causal
        let std = "Attention"
        try check([t("QS", "Q2", [0, 2, 1, 3]), t("R", "K2", [0, 2, 1, 3]), t("VS", "V2", [0, 2, 1, 3]),
                   node("Attention", ["Q2", "K2", "V2", "M"], "Y0"), t("Y0", "Y", [0, 2, 1, 3])],
                  fused: true, opset: 23, fusedOp: std, transposesLeft: 0)
        try check([t("QS", "Q2", [0, 2, 1, 3]), t("R", "K2", [0, 2, 1, 3]),
                   node("Attention", ["Q2", "K2", "V"], "Y0", ["is_causal": .int(1), "scale": .float(0.3)]),
                   t("Y0", "Y", [0, 2, 1, 3])], fused: true, opset: 23, fusedOp: std, transposesLeft: 0)
        // another permutation is not a head transpose
        try check([t("QS", "Q2", [0, 2, 1, 3]), t("R", "K2", [0, 2, 1, 3]), t("VS", "V2", [0, 2, 1, 3]),
                   node("Attention", ["Q2", "K2", "V2"], "Y0"), t("Y0", "Y", [2, 1, 0, 3])],
                  fused: true, opset: 23, fusedOp: std, transposesLeft: 1)
    }

    func testWhatAttentionCannotTakeIsLeftAlone() throws {
        let t = { (ins: String, out: String, p: [Int]) in self.node("Transpose", [ins], out, ["perm": .ints(p)]) }
        // the probabilities are also an output
        try check([t("K", "KT", [0, 1, 3, 2]), node("MatMul", ["Q", "KT"], "s"), node("Softmax", ["s"], "p", ["axis": .int(-1)]),
                   node("MatMul", ["p", "V"], "Y")], fused: false, extraOutputs: ["p"])
        // NaN probabilities replaced by 1, not 0: not the fused op's rows
        try check([t("K", "KT", [0, 1, 3, 2]), node("MatMul", ["Q", "KT"], "s"), node("Add", ["s", "F"], "s2"),
                   node("Softmax", ["s2"], "p", ["axis": .int(-1)]), node("IsNaN", ["p"], "nan"),
                   node("Where", ["nan", "one", "p"], "p0"), node("MatMul", ["p0", "V"], "Y")], fused: false)
        // softmax over another axis (opset 17's default axis is the last, so name one)
        try check([t("K", "KT", [0, 1, 3, 2]), node("MatMul", ["Q", "KT"], "s"), node("Softmax", ["s"], "p", ["axis": .int(2)]),
                   node("MatMul", ["p", "V"], "Y")], fused: false)
    }
}
