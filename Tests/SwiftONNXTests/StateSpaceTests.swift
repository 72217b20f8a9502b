import Foundation
import XCTest
@testable import SwiftONNX

/// CausalConvWithState against a direct Double computation of its definition, and its typed errors.
/// (The ONNX node suite's 13 cases run it too: ConformanceTests.)
final class StateSpaceTests: XCTestCase {
    /// padded = past ++ x along the length; y[t] = bias + sum_j w[j] padded[t + j] (silu after);
    /// the state is the last k - 1 padded values.
    private func reference(x: [Float], w: [Float], bias: [Float]?, past: [Float]?, batch: Int, channels: Int,
                           length: Int, k: Int, silu: Bool) -> (y: [Double], state: [Double]) {
        var y: [Double] = [], state: [Double] = []
        for b in 0..<batch {
            for c in 0..<channels {
                let bc = b * channels + c
                var padded = (0..<(k - 1)).map { j in past.map { Double($0[bc * (k - 1) + j]) } ?? 0 }
                padded += (0..<length).map { Double(x[bc * length + $0]) }
                for t in 0..<length {
                    var v = bias.map { Double($0[c]) } ?? 0
                    for j in 0..<k { v += Double(w[c * k + j]) * padded[t + j] }
                    y.append(silu ? v / (1 + exp(-v)) : v)
                }
                state += padded[length...]
            }
        }
        return (y, state)
    }

    func testAgainstTheDefinition() throws {
        var rng = SplitMix64(seed: 9)
        for (batch, channels, length, k) in [(2, 3, 7, 4), (1, 1, 1, 1), (2, 5, 2, 4), (1, 4, 9, 3)] {
            for (withBias, withPast, activation) in [(false, false, "none"), (true, true, "silu"), (true, false, "swish"), (false, true, "none")] {
                let x = (0..<(batch * channels * length)).map { _ in rng.uniform(-2, 2) }
                let w = (0..<(channels * k)).map { _ in rng.uniform(-1, 1) }
                let bias = withBias ? (0..<channels).map { _ in rng.uniform(-1, 1) } : nil
                let past = withPast ? (0..<(batch * channels * (k - 1))).map { _ in rng.uniform(-2, 2) } : nil
                let out = try runOp("CausalConvWithState", opset: 27,
                                    [Tensor(validShape: [batch, channels, length], scalars: x),
                                     Tensor(validShape: [channels, 1, k], scalars: w),
                                     bias.map { Tensor(validShape: [channels], scalars: $0) },
                                     past.map { Tensor(validShape: [batch, channels, k - 1], scalars: $0) }],
                                    ["activation": .string(activation)], outputs: 2)
                let want = reference(x: x, w: w, bias: bias, past: past, batch: batch, channels: channels, length: length,
                                     k: k, silu: activation != "none")
                XCTAssertEqual(out[0].shape, [batch, channels, length])
                XCTAssertEqual(out[1].shape, [batch, channels, k - 1])
                try assertClose(out[0], want.y, tol: 1e-5)
                try assertClose(out[1], want.state, tol: 0)
            }
        }
    }

    func testBadInputsAreTypedErrors() {
        let x = sinTensor([1, 2, 5]), w = sinTensor([2, 1, 3])
        func fails(_ ins: [Tensor?], _ needle: String, attrs: [String: Attribute] = [:], line: UInt = #line) {
            XCTAssertThrowsError(try runOp("CausalConvWithState", opset: 27, ins, attrs, outputs: 2), line: line) { e in
                XCTAssertTrue("\(e)".contains(needle), "\(e)", line: line)
            }
        }
        fails([sinTensor([2, 5]), w], "input must be (batch, channels, length)")
        fails([x, sinTensor([3, 1, 3])], "weight must be (channels 2")
        fails([x, w, sinTensor([3])], "bias must be (channels 2)")
        fails([x, w, nil, sinTensor([1, 2, 3])], "past_state must be (batch 1, channels 2, kernel size - 1 = 2)")
        fails([x, w], "activation", attrs: ["activation": .string("relu")])
    }
}

/// LinearAttention against the recurrences of its definition computed in Double (every rule, grouped
/// query heads, per-dimension and per-head decay, beta per head or per position, a past state or none).
final class LinearAttentionTests: XCTestCase {
    func testEveryRuleAgainstTheRecurrence() throws {
        var rng = SplitMix64(seed: 17)
        for (batch, length, qHeads, kvHeads, dk, dv) in [(2, 5, 4, 2, 3, 4), (1, 1, 2, 2, 4, 2), (1, 6, 3, 1, 2, 5)] {
            for rule in ["linear", "gated", "delta", "gated_delta"] {
                for (perDim, perHead, withPast) in [(true, true, false), (false, false, true)] {
                    let gated = rule.hasPrefix("gated"), delta = rule.hasSuffix("delta")
                    let q = (0..<(batch * length * qHeads * dk)).map { _ in rng.uniform(-1, 1) }
                    let k = (0..<(batch * length * kvHeads * dk)).map { _ in rng.uniform(-1, 1) }
                    let v = (0..<(batch * length * kvHeads * dv)).map { _ in rng.uniform(-1, 1) }
                    let gw = perDim ? kvHeads * dk : kvHeads, bw = perHead ? kvHeads : 1
                    let g = (0..<(batch * length * gw)).map { _ in rng.uniform(-1, 0) }
                    let be = (0..<(batch * length * bw)).map { _ in rng.uniform(0, 1) }
                    let past = (0..<(batch * kvHeads * dk * dv)).map { _ in rng.uniform(-1, 1) }
                    let out = try runOp("LinearAttention", opset: 27, [
                        Tensor(validShape: [batch, length, qHeads * dk], scalars: q),
                        Tensor(validShape: [batch, length, kvHeads * dk], scalars: k),
                        Tensor(validShape: [batch, length, kvHeads * dv], scalars: v),
                        withPast ? Tensor(validShape: [batch, kvHeads, dk, dv], scalars: past) : nil,
                        gated ? Tensor(validShape: [batch, length, gw], scalars: g) : nil,
                        delta ? Tensor(validShape: [batch, length, bw], scalars: be) : nil,
                    ], ["q_num_heads": .int(qHeads), "kv_num_heads": .int(kvHeads), "update_rule": .string(rule)], outputs: 2)
                    // the recurrence in Double
                    let scale = 1 / Double(dk).squareRoot(), group = qHeads / kvHeads
                    var y = [Double](repeating: 0, count: batch * length * qHeads * dv)
                    var states: [Double] = []
                    for b in 0..<batch {
                        for h in 0..<kvHeads {
                            var s = (0..<(dk * dv)).map { withPast ? Double(past[(b * kvHeads + h) * dk * dv + $0]) : 0 }
                            for t in 0..<length {
                                let bt = b * length + t
                                let kt = (0..<dk).map { Double(k[(bt * kvHeads + h) * dk + $0]) }
                                let vt = (0..<dv).map { Double(v[(bt * kvHeads + h) * dv + $0]) }
                                if gated {
                                    for i in 0..<dk {
                                        let e = exp(Double(g[bt * gw + (perDim ? h * dk + i : h)]))
                                        for j in 0..<dv { s[i * dv + j] *= e }
                                    }
                                }
                                var w = vt
                                if delta {
                                    let bet = Double(be[bt * bw + (perHead ? h : 0)])
                                    for j in 0..<dv {
                                        let r = (0..<dk).reduce(0.0) { $0 + s[$1 * dv + j] * kt[$1] }
                                        w[j] = bet * (vt[j] - r)
                                    }
                                }
                                for i in 0..<dk { for j in 0..<dv { s[i * dv + j] += kt[i] * w[j] } }
                                for gi in 0..<group {
                                    let hq = h * group + gi
                                    for j in 0..<dv {
                                        let o = (0..<dk).reduce(0.0) { $0 + Double(q[(bt * qHeads + hq) * dk + $1]) * s[$1 * dv + j] }
                                        y[(bt * qHeads + hq) * dv + j] = scale * o
                                    }
                                }
                            }
                            states += s
                        }
                    }
                    XCTAssertEqual(out[0].shape, [batch, length, qHeads * dv])
                    XCTAssertEqual(out[1].shape, [batch, kvHeads, dk, dv])
                    try assertClose(out[0], y, tol: 1e-5)
                    try assertClose(out[1], states, tol: 1e-5)
                }
            }
        }
    }

    func testBadInputsAreTypedErrors() {
        let q = sinTensor([1, 2, 8]), k = sinTensor([1, 2, 8]), v = sinTensor([1, 2, 8])
        let heads: [String: Attribute] = ["q_num_heads": .int(2), "kv_num_heads": .int(2)]
        func fails(_ ins: [Tensor?], _ attrs: [String: Attribute], _ needle: String, line: UInt = #line) {
            XCTAssertThrowsError(try runOp("LinearAttention", opset: 27, ins, attrs, outputs: 2), line: line) { e in
                XCTAssertTrue("\(e)".contains(needle), "\(e)", line: line)
            }
        }
        fails([q, k, v], heads, "needs the decay input")   // gated_delta by default
        fails([q, k, v, nil, sinTensor([1, 2, 2])], heads, "needs the beta input")
        fails([q, k, v], ["q_num_heads": .int(3), "kv_num_heads": .int(2)], "q_num_heads")
        fails([q, k, v], heads.merging(["update_rule": .string("softmax")]) { $1 }, "update_rule")
        fails([q, sinTensor([1, 3, 8]), v], heads.merging(["update_rule": .string("linear")]) { $1 }, "differ in batch or length")
        fails([q, k, v, sinTensor([1, 2, 4, 3])], heads.merging(["update_rule": .string("linear")]) { $1 }, "past_state must be")
    }
}
