import XCTest
import Foundation
@testable import SwiftONNX

/// The com.microsoft attention ops on what ONNX Runtime's CPU build cannot compute, so the model
/// tests (ContribOpModelTests, against ONNX Runtime's outputs) cannot cover it: MultiHeadAttention's
/// packed layouts must give what the same numbers give laid out as separate Q, K and V; and bad
/// inputs must be typed errors naming what is wrong.
final class AttentionContribTests: XCTestCase {
    private let ms = "com.microsoft"

    private func random(_ shape: [Int], _ rng: inout SplitMix64) -> Tensor {
        Tensor(validShape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in rng.uniform(-1, 1) })
    }

    /// (batch, length, heads, size) tensors interleaved on a new axis after the heads:
    /// (batch, length, heads, parts, size).
    private func pack(_ parts: [Tensor]) -> Tensor {
        let s = parts[0].shape
        let (rows, size) = (s[0] * s[1] * s[2], s[3])
        var out = [Float](repeating: 0, count: rows * parts.count * size)
        for (k, t) in parts.enumerated() {
            let p = t.pointer(Float.self)
            for r in 0..<rows { for c in 0..<size { out[(r * parts.count + k) * size + c] = p[r * size + c] } }
        }
        return Tensor(validShape: [s[0], s[1], s[2], parts.count, size], scalars: out)
    }

    private func flat(_ t: Tensor) -> Tensor {   // (b, l, n, h) -> (b, l, n * h)
        Tensor(dtype: t.dtype, shape: [t.shape[0], t.shape[1], t.shape[2] * t.shape[3]], storage: t.storage)
    }

    func testPackedQKVEqualsSeparateInputs() throws {
        var rng = SplitMix64(seed: 11)
        let (b, s, n, h) = (2, 37, 3, 8)
        let q = random([b, s, n, h], &rng), k = random([b, s, n, h], &rng), v = random([b, s, n, h], &rng)
        let bias = random([3 * n * h], &rng)
        let mask = Tensor(validShape: [b], scalars: [Int32(s), Int32(s - 5)])
        for withBias in [false, true] {
            for causal in [0, 1] {
                let attrs: [String: Attribute] = ["num_heads": .int(n), "unidirectional": .int(causal)]
                let separate = try runOp("MultiHeadAttention", domain: ms, [flat(q), flat(k), flat(v), withBias ? bias : nil, mask], attrs, threads: 2)[0]
                let packed = try runOp("MultiHeadAttention", domain: ms, [pack([q, k, v]), nil, nil, withBias ? bias : nil, mask], attrs, threads: 2)[0]
                XCTAssertEqual(packed.shape, [b, s, n * h])
                try assertClose(packed, separate, rtol: 0, atol: 1e-6)
            }
        }
    }

    func testPackedKVEqualsSeparateInputs() throws {
        var rng = SplitMix64(seed: 12)
        let (b, s, l, n, h) = (2, 5, 9, 4, 4)
        let q = random([b, s, n * h], &rng), k = random([b, l, n, h], &rng), v = random([b, l, n, h], &rng)
        let bias = random([3 * n * h], &rng)
        for withBias in [false, true] {
            let attrs: [String: Attribute] = ["num_heads": .int(n)]
            let separate = try runOp("MultiHeadAttention", domain: ms, [q, flat(k), flat(v), withBias ? bias : nil], attrs)[0]
            let packed = try runOp("MultiHeadAttention", domain: ms, [q, pack([k, v]), nil, withBias ? bias : nil], attrs)[0]
            try assertClose(packed, separate, rtol: 0, atol: 1e-6)
        }
    }

    func testBadInputsAreTypedErrors() throws {
        var rng = SplitMix64(seed: 13)
        let x = random([1, 4, 8], &rng)
        func expectError(_ what: String, _ body: () throws -> Void) {
            XCTAssertThrowsError(try body(), what) { e in
                XCTAssertFalse("\(e)".isEmpty)
            }
        }
        // Attention: weights whose rows do not match the input's hidden size.
        expectError("weights") { _ = try runOp("Attention", domain: ms, [x, random([6, 24], &rng)], ["num_heads": .int(2)]) }
        // Attention: a 4-D (Megatron) mask.
        XCTAssertThrowsError(try runOp("Attention", domain: ms, [x, random([8, 24], &rng), nil,
                                                                  Tensor(validShape: [1, 1, 4, 4], scalars: [Int32](repeating: 1, count: 16))],
                                       ["num_heads": .int(2)])) { e in
            XCTAssertTrue("\(e)".contains("mask_index"), "\(e)")
        }
        // MultiHeadAttention: hidden size not divisible by the heads.
        expectError("heads") { _ = try runOp("MultiHeadAttention", domain: ms, [x, x, x], ["num_heads": .int(3)]) }
        // GroupQueryAttention: seqlens_k beyond the present length.
        let kv = random([1, 4, 4], &rng)
        XCTAssertThrowsError(try runOp("GroupQueryAttention", domain: ms,
                                       [x, kv, kv, nil, nil, Tensor(validShape: [1], scalars: [Int32(9)]), Tensor(validShape: [], scalars: [Int32(4)])],
                                       ["num_heads": .int(2), "kv_num_heads": .int(1)])) { e in
            XCTAssertTrue("\(e)".contains("seqlens_k"), "\(e)")
        }
        // GroupQueryAttention: kv_num_heads not dividing num_heads.
        expectError("kv heads") {
            _ = try runOp("GroupQueryAttention", domain: ms, [x, kv, kv], ["num_heads": .int(2), "kv_num_heads": .int(3)])
        }
        // EmbedLayerNormalization: an id outside the vocabulary.
        let ids = Tensor(validShape: [1, 2], scalars: [Int32(0), Int32(7)])
        XCTAssertThrowsError(try runOp("EmbedLayerNormalization", domain: ms,
                                       [ids, nil, random([5, 4], &rng), random([3, 4], &rng), nil, random([4], &rng), random([4], &rng)],
                                       outputs: 2)) { e in
            XCTAssertTrue("\(e)".contains("input id 7"), "\(e)")
        }
        // SkipLayerNormalization: a skip that does not broadcast.
        expectError("skip") {
            _ = try runOp("SkipLayerNormalization", domain: ms, [x, random([3, 8], &rng), random([8], &rng)])
        }
    }
}
