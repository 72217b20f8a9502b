import Foundation

/// ONNX Runtime's attention ops (domain com.microsoft), in the form its transformer optimizer and
/// Optimum exports write them: Attention (the Q/K/V projection fused in), MultiHeadAttention,
/// GroupQueryAttention and RotaryEmbedding. They run on the attention kernel of ONNX's Attention.
/// Masks are additive as in ONNX Runtime: a masked key adds `mask_filter_value` (-10000 by
/// default) to its score rather than removing the key, so a row whose keys are all masked averages
/// every value as ONNX Runtime's does; future keys of a causal (unidirectional) row are removed.
func registerAttentionContribOps(_ r: inout OpRegistry) {
    let ms = "com.microsoft"
    r.register("Attention", domain: ms, infer: Inference { ctx, ins in try inferContribAttention(ctx, ins) },
               closure: makeContribAttention)
    r.register("MultiHeadAttention", domain: ms, infer: Inference { ctx, ins in try inferMultiHeadAttention(ctx, ins) },
               closure: makeMultiHeadAttention)
    r.register("GroupQueryAttention", domain: ms, infer: Inference { ctx, ins in try inferGroupQueryAttention(ctx, ins) },
               closure: makeGroupQueryAttention)
    // RotaryEmbedding(input, position_ids, cos_cache, sin_cache): ONNX's op with its inputs in another
    // order and position_ids also as one offset.
    r.register("RotaryEmbedding", domain: ms, infer: .sameAsFirst, closure: makeContribRotaryEmbedding)
}

// MARK: - shared

/// The additive key mask of ONNX Runtime's mask formats as float32 (batch, rows, keys), rows 1 (one
/// mask for every query row) or the query length:
/// - (batch): keys at or after each batch's end position are masked (right padding);
/// - (2 * batch): the end positions, then the start positions (keys before the start are masked too);
/// - (batch, keys): 0 masks a key, anything else keeps it;
/// - (batch, queries, keys): the same for every query row.
private func contribKeyMask(_ m: Tensor, batch: Int, queries: Int, keys: Int, filter: Float, _ op: String, _ what: String) throws -> Tensor {
    guard !m.dtype.isFloatingPoint, m.dtype != .bool, m.dtype != .string else {
        throw OpError("\(op): \(what) must be an integer tensor (int32), got \(m.dtype)")
    }
    let v = try m.readAsInts()
    switch m.shape {
    case [batch], [2 * batch]:
        let t = try Tensor.zeros(.float32, [batch, 1, keys])
        let p = t.pointer(Float.self)
        for b in 0..<batch {
            let row = p + b * keys
            let end = min(max(v[b], 0), keys)
            for j in end..<keys { row[j] = filter }
            if m.count == 2 * batch {
                let start = min(max(v[batch + b], 0), keys)
                for j in 0..<start { row[j] = filter }
            }
        }
        return t
    case [batch, keys], [batch, queries, keys]:
        let rows = m.rank == 2 ? 1 : queries
        let t = try Tensor.uninitialized(.float32, [batch, rows, keys])
        let p = t.pointer(Float.self)
        for i in 0..<v.count { p[i] = v[i] > 0 ? 0 : filter }
        return t
    default:
        throw OpError("\(op): \(what) \(describeShape(m.shape)) is not a supported mask: expected (batch \(batch)), (2 * batch), (batch, \(keys) keys) or (batch, \(queries) queries, \(keys) keys)")
    }
}

/// Runs the attention kernel with ONNX Runtime's masking: a key mask (from `contribKeyMask`), an
/// attention_bias (batch or 1, heads or 1, queries, keys) added to the scores after it, and a causal
/// frontier: query row i sees keys up to offset + i (offset: the past length, or per batch), except
/// that ONNX Runtime's Attention and MultiHeadAttention never mask the last query row, which matters
/// when there are more keys than past + queries (cross attention): that row then sees every key.
/// `biasKeysMayBeFewer`: attention_bias may cover fewer keys than there are (GroupQueryAttention's
/// covers the valid ones); the rest are masked. `validKeys` (per batch): keys at or beyond are masked.
private func contribAttention(_ p: AttentionProblem, q: AttentionView, k: AttentionView, v: AttentionView, y: AttentionOutView,
                              keyMask: Tensor?, attentionBias: Tensor?, causal: Bool, offsets: [Int], threads: Int,
                              _ op: String, leftWindow: Int = -1, validKeys: [Int] = [], biasKeysMayBeFewer: Bool = false,
                              lastRowUnmasked: Bool = true) throws {
    var bias = AttentionBias()
    var combined: Tensor? = nil
    let (batch, heads, rows, keys) = (p.batch, p.qHeads, p.qLength, p.kvLength)
    // The causal quirk needs an explicit mask: the kernel's frontier masks every row alike.
    var mask = keyMask
    var causalInKernel = causal
    if causal && lastRowUnmasked && rows > 0 && (0..<batch).contains(where: { offsets[$0] + rows < keys }) {
        let t = try Tensor.uninitialized(.float32, [batch, rows, keys])
        let d = t.pointer(Float.self)
        for b in 0..<batch {
            for i in 0..<rows {
                let row = d + (b * rows + i) * keys
                if let m = keyMask {
                    let mr = m.pointer(Float.self) + (b * m.shape[1] + (m.shape[1] == 1 ? 0 : i)) * keys
                    row.update(from: mr, count: keys)
                } else {
                    row.update(repeating: 0, count: keys)
                }
                if i < rows - 1 {
                    let first = max(0, offsets[b] + i + 1)
                    if first < keys { for j in first..<keys { row[j] = -Float.infinity } }
                }
            }
        }
        mask = t
        causalInKernel = false
    }
    if let ab0 = attentionBias {
        let ab = try floatInput(ab0, op, "attention_bias")
        guard ab.rank == 4, ab.shape[0] == batch || ab.shape[0] == 1, ab.shape[1] == heads || ab.shape[1] == 1,
              ab.shape[2] == rows, ab.shape[3] == keys || biasKeysMayBeFewer && ab.shape[3] <= keys else {
            throw OpError("\(op): attention_bias \(describeShape(ab.shape)) must be (batch \(batch) or 1, heads \(heads) or 1, queries \(rows), keys \(keys))")
        }
        let width = ab.shape[3]
        let sb = ab.shape[0] == 1 ? 0 : ab.shape[1] * rows * width, sh = ab.shape[1] == 1 ? 0 : rows * width
        if let m = mask {
            // Both: one (batch, heads, queries, keys) sum.
            let t = try Tensor.uninitialized(.float32, [batch, heads, rows, keys])
            let dst = t.pointer(Float.self), a = ab.pointer(Float.self), mp = m.pointer(Float.self)
            let mRows = m.shape[1]
            for b in 0..<batch {
                for h in 0..<heads {
                    for i in 0..<rows {
                        let d = dst + ((b * heads + h) * rows + i) * keys
                        let ar = a + b * sb + h * sh + i * width, mr = mp + (b * mRows + (mRows == 1 ? 0 : i)) * keys
                        for j in 0..<width { d[j] = mr[j] + ar[j] }
                        for j in width..<keys { d[j] = -Float.infinity }
                    }
                }
            }
            combined = t
            bias.mask = UnsafePointer(dst)
            bias.maskStride = (heads * rows * keys, rows * keys, keys)
            bias.maskLength = keys
        } else {
            combined = ab
            bias.mask = UnsafePointer(ab.pointer(Float.self))
            bias.maskStride = (sb, sh, width)
            bias.maskLength = width
        }
    } else if let m = mask {
        combined = m
        bias.mask = UnsafePointer(m.pointer(Float.self))
        bias.maskStride = (m.shape[1] * keys, 0, m.shape[1] == 1 ? 0 : keys)
        bias.maskLength = keys
    }
    if causalInKernel {
        bias.causal = true
        bias.offsets = offsets
    }
    if leftWindow >= 0 {
        bias.leftWindow = leftWindow
        bias.offsets = offsets
    }
    bias.validKeys = validKeys
    withExtendedLifetime(combined) {
        f32Attention(p, q: q, k: k, v: v, y: y, bias: bias, scores: nil, threads: threads)
    }
}

/// Writes past and current keys (or values) of each (batch, head) as (batch, heads, past + current,
/// size) at `dst`: the present state.
private func writePresent(_ dst: UnsafeMutablePointer<Float>, past: UnsafePointer<Float>?, pastLength: Int,
                          current: AttentionView, batch: Int, heads: Int, length: Int, size: Int) {
    let total = pastLength + length
    for b in 0..<batch {
        for h in 0..<heads {
            let d = dst + (b * heads + h) * total * size
            if let past { d.update(from: past + (b * heads + h) * pastLength * size, count: pastLength * size) }
            let src = current.at(b, h)
            for r in 0..<length { (d + (pastLength + r) * size).update(from: src + r * current.row, count: size) }
        }
    }
}

/// A (batch, heads, rows, size) tensor as an attention view.
private func headMajorView(_ t: Tensor) -> AttentionView {
    let (heads, rows, size) = (t.shape[1], t.shape[2], t.shape[3])
    return AttentionView(base: t.pointer(Float.self), batch: heads * rows * size, head: rows * size, row: size)
}

private func positive(_ v: Int?) -> Int? { v.flatMap { $0 > 0 ? $0 : nil } }

// MARK: - Attention (com.microsoft)

private func inferContribAttention(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let dt = ins.dtype(0)
    var outs = [TypeInfo(dtype: dt, shape: nil), TypeInfo(dtype: dt, shape: nil)]
    guard let x = ins.shape(0), x.count == 3, let w = ins.shape(1), w.count == 2, let total = w[1].value else { return outs }
    let sizes = try ctx.ints("qkv_hidden_sizes")
    let dv = sizes.map { $0.count == 3 ? $0[2] : 0 } ?? total / 3
    outs[0].shape = [x[0], x[1], .known(dv)]
    if let heads = try ctx.int("num_heads"), heads > 0, let p = ins.shape(4), p.count == 5, dv % heads == 0 {
        let kvLen: Dim = (p[3].value != nil && x[1].value != nil) ? .known(p[3].value! + x[1].value!) : .unknown
        outs[1].shape = [.known(2), x[0], .known(heads), kvLen, .known(dv / heads)]
    }
    return Array(outs.prefix(max(ctx.outputCount, 1)))
}

/// Attention(input, weights, bias?, mask_index?, past?, attention_bias?, past_sequence_length?) ->
/// output, present?: Q, K and V are input x weights + bias, split along the columns (hidden, hidden,
/// v_hidden; qkv_hidden_sizes when they differ); past (2, batch, heads, past, head size) is prepended
/// to K and V, which present returns. Constant weights are packed for the GEMM when the plan is made.
private func makeContribAttention(_ ctx: OpContext) throws -> OpBody {
    let op = "Attention"
    guard let heads = positive(try ctx.int("num_heads")) else { throw ctx.attributeError("num_heads", "required positive attribute") }
    let sizesAttr = try ctx.ints("qkv_hidden_sizes")
    if let s = sizesAttr, s.count != 3 || s.contains(where: { $0 <= 0 }) {
        throw ctx.attributeError("qkv_hidden_sizes", "must be three positive sizes, got \(s)")
    }
    let causal = try ctx.int("unidirectional", default: 0) != 0
    let scaleAttr = try ctx.float("scale")
    let filter = try ctx.float("mask_filter_value", default: -10000)
    guard try ctx.int("do_rotary", default: 0) == 0 else { throw ctx.attributeError("do_rotary", "rotary embedding inside Attention is not supported") }
    guard try ctx.int("past_present_share_buffer", default: 0) == 0 else {
        throw ctx.attributeError("past_present_share_buffer", "a past/present buffer shared in place is not supported")
    }
    var panels: F32PackedPanels? = nil
    if let w = ctx.constantInput(1), w.dtype == .float32, w.rank == 2, w.count > 0 {
        panels = try ctx.prepare(w, kind: "f32-dense-panels") { try F32PackedPanels(w.pointer(Float.self), k: w.shape[0], n: w.shape[1]) }
        ctx.releaseConstantValues(1)
    }
    let packed = panels
    let wantPresent = ctx.hasOutput(1)
    let outputCount = ctx.outputCount
    return { inputs, env in
        let x0 = try inputs.required(0, "input"), w0 = try inputs.required(1, "weights")
        let x = try floatInput(x0, op, "input")
        guard x.rank == 3 else { throw OpError("\(op): input must be (batch, sequence, hidden), got \(describeShape(x.shape))") }
        guard w0.rank == 2, w0.shape[0] == x.shape[2] else {
            throw OpError("\(op): weights \(describeShape(w0.shape)) must be (\(x.shape[2]) input hidden, q + k + v hidden)")
        }
        let (batch, seq, dIn) = (x.shape[0], x.shape[1], x.shape[2])
        let dTotal = w0.shape[1]
        let (dq, dk, dv) = sizesAttr.map { ($0[0], $0[1], $0[2]) } ?? (dTotal / 3, dTotal / 3, dTotal / 3)
        guard dq + dk + dv == dTotal, dq == dk, dq % heads == 0, dv % heads == 0 else {
            throw OpError("\(op): weights' \(dTotal) columns do not split into Q, K, V hidden sizes \(dq), \(dk), \(dv) of \(heads) heads (Q and K equal)")
        }
        let headSize = dq / heads, vHeadSize = dv / heads
        // The projection: (batch * seq, dTotal).
        let qkv = try Tensor.uninitialized(.float32, [batch, seq, dTotal])
        let biasT = try inputs.optional(2).map { b -> Tensor in
            guard b.count == dTotal else { throw OpError("\(op): bias has \(b.count) values, expected \(dTotal)") }
            return try floatInput(b, op, "bias")
        }
        let m = batch * seq
        if m > 0 && dTotal > 0 {
            let epilogue = F32GemmEpilogue(columnBias: biasT.map { UnsafePointer($0.pointer(Float.self)) })
            if let packed, packed.k == dIn, packed.n == dTotal {
                f32PackedDense(m: m, a: x.pointer(Float.self), b: packed, c: qkv.pointer(Float.self), epilogue: epilogue, threads: env.threads)
            } else {
                let w = try floatInput(w0, op, "weights")
                guard gemmSizesFit(m, dTotal, dIn) else { throw OpError("\(op): sizes are too large for BLAS") }
                f32Dense(m: m, n: dTotal, k: dIn, a: x.pointer(Float.self), b: w.pointer(Float.self), c: qkv.pointer(Float.self),
                         epilogue: epilogue, threads: env.threads)
            }
        }
        let base = UnsafePointer(qkv.pointer(Float.self))
        let qv = AttentionView(base: base, batch: seq * dTotal, head: headSize, row: dTotal)
        var kv = AttentionView(base: base + dq, batch: seq * dTotal, head: headSize, row: dTotal)
        var vv = AttentionView(base: base + dq + dk, batch: seq * dTotal, head: vHeadSize, row: dTotal)
        // Past and present: (2, batch, heads, length, head size).
        var pastLength = 0
        var present: Tensor? = nil
        let past = try inputs.optional(4).map { try floatInput($0, op, "past") }
        if let past {
            guard past.rank == 5, past.shape[0] == 2, past.shape[1] == batch, past.shape[2] == heads, past.shape[4] == headSize,
                  vHeadSize == headSize else {
                throw OpError("\(op): past \(describeShape(past.shape)) must be (2, batch \(batch), heads \(heads), past length, head size \(headSize)), with equal Q, K and V sizes")
            }
            pastLength = past.shape[3]
        }
        let total = pastLength + seq
        if past != nil || wantPresent {
            guard vHeadSize == headSize else { throw OpError("\(op): present needs equal K and V head sizes (\(headSize), \(vHeadSize))") }
            let t = try Tensor.uninitialized(.float32, [2, batch, heads, total, headSize])
            let half = batch * heads * total * headSize
            let pp = past.map { UnsafePointer($0.pointer(Float.self)) }
            let dst = t.pointer(Float.self)
            writePresent(dst, past: pp, pastLength: pastLength, current: kv, batch: batch, heads: heads, length: seq, size: headSize)
            writePresent(dst + half, past: pp.map { $0 + batch * heads * pastLength * headSize }, pastLength: pastLength,
                         current: vv, batch: batch, heads: heads, length: seq, size: headSize)
            present = t
            kv = AttentionView(base: UnsafePointer(dst), batch: heads * total * headSize, head: total * headSize, row: headSize)
            vv = AttentionView(base: UnsafePointer(dst) + half, batch: heads * total * headSize, head: total * headSize, row: headSize)
        }
        let keyMask = try inputs.optional(3).map {
            try contribKeyMask($0, batch: batch, queries: seq, keys: total, filter: filter, op, "mask_index")
        }
        let y = try Tensor.uninitialized(.float32, [batch, seq, dv])
        let yv = AttentionOutView(base: y.pointer(Float.self), batch: seq * dv, head: vHeadSize, row: dv)
        let problem = AttentionProblem(batch: batch, qHeads: heads, kvHeads: heads, qLength: seq, kvLength: total,
                                       headSize: headSize, valueHeadSize: vHeadSize,
                                       scale: scaleAttr ?? 1 / Float(headSize).squareRoot())
        try withExtendedLifetime((qkv, present)) {
            try contribAttention(problem, q: qv, k: kv, v: vv, y: yv, keyMask: keyMask, attentionBias: inputs.optional(5),
                                 causal: causal, offsets: [Int](repeating: pastLength, count: batch), threads: env.threads, op)
        }
        var outs = [try y.converted(to: x0.dtype)]
        if outputCount > 1 { outs.append(try present?.converted(to: x0.dtype) ?? Tensor.uninitialized(x0.dtype, [0])) }
        return outs
    }
}

// MARK: - MultiHeadAttention (com.microsoft)

private func inferMultiHeadAttention(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let dt = ins.dtype(0)
    var outs = [TypeInfo](repeating: TypeInfo(dtype: dt, shape: nil), count: max(ctx.outputCount, 1))
    guard let heads = positive(try ctx.int("num_heads")), let q = ins.shape(0) else { return outs }
    var vHidden: Dim = .unknown
    if q.count == 5, let h = q[4].value { vHidden = .known(heads * h) }
    else if let v = ins.shape(2), v.count == 3 { vHidden = v[2] }
    else if let v = ins.shape(2), v.count == 4, let h = v[3].value { vHidden = .known(heads * h) }
    else if let k = ins.shape(1), k.count == 5, let h = k[4].value { vHidden = .known(heads * h) }
    if q.count >= 3 { outs[0].shape = [q[0], q[1], vHidden] }
    return outs
}

/// Q, K or V plus its slice of the bias, as a new (batch, length, heads * size) tensor.
private func withBias(_ x: AttentionView, _ bias: UnsafePointer<Float>, batch: Int, heads: Int, length: Int, size: Int) throws -> Tensor {
    let t = try Tensor.uninitialized(.float32, [batch, length, heads * size])
    let d = t.pointer(Float.self)
    for b in 0..<batch {
        for h in 0..<heads {
            let src = x.at(b, h), bh = bias + h * size
            for r in 0..<length {
                let s = src + r * x.row, o = d + (b * length + r) * heads * size + h * size
                for c in 0..<size { o[c] = s[c] + bh[c] }
            }
        }
    }
    return t
}

/// A (batch, length, heads * size) tensor as an attention view.
private func tokenMajorView(_ t: Tensor, heads: Int) -> AttentionView {
    let (length, hidden) = (t.shape[1], t.shape[2])
    return AttentionView(base: t.pointer(Float.self), batch: length * hidden, head: hidden / heads, row: hidden)
}

/// MultiHeadAttention(query, key?, value?, bias?, key_padding_mask?, attention_bias?, past_key?,
/// past_value?) -> output, present_key?, present_value?. Q, K, V come as (batch, length, hidden)
/// each; K and V as (batch, heads, length, head size) (cross attention with projected keys);
/// packed as query (batch, sequence, heads, 3, head size); or packed K and V as key (batch, length,
/// heads, 2, head size). The bias (3 x hidden) is added to Q, K and V; past_key / past_value
/// (batch, heads, past, head size) are prepended to K and V and returned as present.
private func makeMultiHeadAttention(_ ctx: OpContext) throws -> OpBody {
    let op = "MultiHeadAttention"
    guard let heads = positive(try ctx.int("num_heads")) else { throw ctx.attributeError("num_heads", "required positive attribute") }
    let causal = try ctx.int("unidirectional", default: 0) != 0
    let scaleAttr = try ctx.float("scale")
    let filter = try ctx.float("mask_filter_value", default: -10000)
    let wantPresent = ctx.hasOutput(1) || ctx.hasOutput(2)
    let outputCount = ctx.outputCount
    if ctx.hasOutput(3) { throw OpError("\(op): the qk output is not supported") }
    if ctx.hasInput(8) || ctx.hasInput(9) {
        throw OpError("\(op): past_sequence_length and cache_indirection (beam search buffers shared in place) are not supported")
    }
    return { inputs, env in
        let q0 = try inputs.required(0, "query")
        let q = try floatInput(q0, op, "query")
        let key = try inputs.optional(1).map { try floatInput($0, op, "key") }
        let value = try inputs.optional(2).map { try floatInput($0, op, "value") }
        let bias = try inputs.optional(3).map { try floatInput($0, op, "bias") }
        guard q.rank == 3 || q.rank == 5 else {
            throw OpError("\(op): query must be (batch, sequence, hidden) or packed (batch, sequence, heads, 3, head size), got \(describeShape(q.shape))")
        }
        let batch = q.shape[0], seq = q.shape[1]
        var qv: AttentionView, kv: AttentionView, vv: AttentionView
        var headSize: Int, vHeadSize: Int, kvLen: Int
        var qkBias = true   // whether the bias covers K and V (not for keys given per head)
        if q.rank == 5 {
            guard key == nil, value == nil, q.shape[2] == heads, q.shape[3] == 3 else {
                throw OpError("\(op): packed query \(describeShape(q.shape)) must be (batch, sequence, heads \(heads), 3, head size) with key and value omitted")
            }
            headSize = q.shape[4]; vHeadSize = headSize; kvLen = seq
            let base = UnsafePointer(q.pointer(Float.self)), row = heads * 3 * headSize
            qv = AttentionView(base: base, batch: seq * row, head: 3 * headSize, row: row)
            kv = AttentionView(base: base + headSize, batch: seq * row, head: 3 * headSize, row: row)
            vv = AttentionView(base: base + 2 * headSize, batch: seq * row, head: 3 * headSize, row: row)
        } else {
            let hidden = q.shape[2]
            guard hidden % heads == 0 else { throw OpError("\(op): query hidden size \(hidden) is not divisible by num_heads \(heads)") }
            headSize = hidden / heads
            qv = AttentionView(base: q.pointer(Float.self), batch: seq * hidden, head: headSize, row: hidden)
            guard let key else { throw OpError("\(op): key is required unless query is packed (batch, sequence, heads, 3, head size)") }
            guard key.shape.first == batch else { throw OpError("\(op): key \(describeShape(key.shape)) and query \(describeShape(q.shape)) differ in batch") }
            switch key.rank {
            case 5:
                guard value == nil, key.shape[2] == heads, key.shape[3] == 2, key.shape[4] == headSize else {
                    throw OpError("\(op): packed key \(describeShape(key.shape)) must be (batch, length, heads \(heads), 2, head size \(headSize)) with value omitted")
                }
                kvLen = key.shape[1]; vHeadSize = headSize
                let base = UnsafePointer(key.pointer(Float.self)), row = heads * 2 * headSize
                kv = AttentionView(base: base, batch: kvLen * row, head: 2 * headSize, row: row)
                vv = AttentionView(base: base + headSize, batch: kvLen * row, head: 2 * headSize, row: row)
            case 3:
                guard let value, value.rank == 3, value.shape[0] == batch, value.shape[1] == key.shape[1], key.shape[2] == hidden,
                      value.shape[2] % heads == 0 else {
                    throw OpError("\(op): key \(describeShape(key.shape)) / value \(describeShape(value?.shape ?? [])) must be (batch, length, hidden \(hidden)) / (batch, length, v hidden divisible by \(heads))")
                }
                kvLen = key.shape[1]; vHeadSize = value.shape[2] / heads
                kv = tokenMajorView(key, heads: heads); vv = tokenMajorView(value, heads: heads)
            case 4:
                guard let value, value.rank == 4, key.shape[1] == heads, key.shape[3] == headSize, value.shape[0] == batch,
                      value.shape[1] == heads, value.shape[2] == key.shape[2] else {
                    throw OpError("\(op): key \(describeShape(key.shape)) / value \(describeShape(value?.shape ?? [])) must be (batch, heads \(heads), length, head size \(headSize)) each")
                }
                kvLen = key.shape[2]; vHeadSize = value.shape[3]
                kv = headMajorView(key); vv = headMajorView(value)
                qkBias = false
            default:
                throw OpError("\(op): key must have rank 3, 4 or 5, got \(describeShape(key.shape))")
            }
        }
        var keep: [Tensor] = []
        if let bias {
            let b = UnsafePointer(bias.pointer(Float.self))
            let need = heads * (2 * headSize + vHeadSize)
            guard bias.count == need else { throw OpError("\(op): bias has \(bias.count) values, expected \(need) (Q, K and V hidden sizes)") }
            let qb = try withBias(qv, b, batch: batch, heads: heads, length: seq, size: headSize)
            keep.append(qb); qv = tokenMajorView(qb, heads: heads)
            if qkBias {
                let kb = try withBias(kv, b + heads * headSize, batch: batch, heads: heads, length: kvLen, size: headSize)
                let vb = try withBias(vv, b + 2 * heads * headSize, batch: batch, heads: heads, length: kvLen, size: vHeadSize)
                keep += [kb, vb]; kv = tokenMajorView(kb, heads: heads); vv = tokenMajorView(vb, heads: heads)
            }
        }
        // Past and present: (batch, heads, length, head size) each.
        let pk = try inputs.optional(6).map { try floatInput($0, op, "past_key") }
        let pv = try inputs.optional(7).map { try floatInput($0, op, "past_value") }
        guard (pk == nil) == (pv == nil) else { throw OpError("\(op): past_key and past_value must be given together") }
        var pastLength = 0
        if let pk, let pv {
            guard pk.rank == 4, pv.rank == 4, pk.shape[0] == batch, pk.shape[1] == heads, pk.shape[3] == headSize,
                  pv.shape[0] == batch, pv.shape[1] == heads, pv.shape[2] == pk.shape[2], pv.shape[3] == vHeadSize else {
                throw OpError("\(op): past_key \(describeShape(pk.shape)) / past_value \(describeShape(pv.shape)) must be (batch \(batch), heads \(heads), past length, head sizes \(headSize) / \(vHeadSize))")
            }
            pastLength = pk.shape[2]
        }
        let total = pastLength + kvLen
        var presentK: Tensor? = nil, presentV: Tensor? = nil
        if pk != nil || wantPresent {
            let ck = try Tensor.uninitialized(.float32, [batch, heads, total, headSize])
            let cv = try Tensor.uninitialized(.float32, [batch, heads, total, vHeadSize])
            writePresent(ck.pointer(Float.self), past: pk.map { UnsafePointer($0.pointer(Float.self)) }, pastLength: pastLength,
                         current: kv, batch: batch, heads: heads, length: kvLen, size: headSize)
            writePresent(cv.pointer(Float.self), past: pv.map { UnsafePointer($0.pointer(Float.self)) }, pastLength: pastLength,
                         current: vv, batch: batch, heads: heads, length: kvLen, size: vHeadSize)
            presentK = ck; presentV = cv
            kv = headMajorView(ck); vv = headMajorView(cv)
        }
        let keyMask = try inputs.optional(4).map {
            try contribKeyMask($0, batch: batch, queries: seq, keys: total, filter: filter, op, "key_padding_mask")
        }
        let dv = heads * vHeadSize
        let y = try Tensor.uninitialized(.float32, [batch, seq, dv])
        let yv = AttentionOutView(base: y.pointer(Float.self), batch: seq * dv, head: vHeadSize, row: dv)
        let problem = AttentionProblem(batch: batch, qHeads: heads, kvHeads: heads, qLength: seq, kvLength: total,
                                       headSize: headSize, valueHeadSize: vHeadSize,
                                       scale: scaleAttr ?? 1 / Float(headSize).squareRoot())
        try withExtendedLifetime((q, key, value, keep, presentK, presentV)) {
            try contribAttention(problem, q: qv, k: kv, v: vv, y: yv, keyMask: keyMask, attentionBias: inputs.optional(5),
                                 causal: causal, offsets: [Int](repeating: pastLength, count: batch), threads: env.threads, op)
        }
        var outs = [try y.converted(to: q0.dtype)]
        let empty = try Tensor.uninitialized(q0.dtype, [0])
        if outputCount > 1 { outs.append(try presentK?.converted(to: q0.dtype) ?? empty) }
        if outputCount > 2 { outs.append(try presentV?.converted(to: q0.dtype) ?? empty) }
        return outs
    }
}

// MARK: - RotaryEmbedding (com.microsoft)

/// RotaryEmbedding(input, position_ids, cos_cache, sin_cache): position_ids is (batch, sequence), or
/// one offset for positions offset, offset + 1, ...; otherwise ONNX's RotaryEmbedding.
private func makeContribRotaryEmbedding(_ ctx: OpContext) throws -> OpBody {
    let op = "RotaryEmbedding"
    guard try ctx.int("is_packed_batching", default: 0) == 0 else {
        throw ctx.attributeError("is_packed_batching", "packed batching is not supported")
    }
    let rotate = try makeRotaryEmbedding(ctx, headsFromCache: true)
    return { inputs, env in
        let x = try inputs.required(0, "input"), pos = try inputs.required(1, "position_ids")
        let cos = try inputs.required(2, "cos_cache"), sin = try inputs.required(3, "sin_cache")
        guard x.rank == 3 || x.rank == 4 else { throw OpError("\(op): input must have rank 3 or 4, got \(describeShape(x.shape))") }
        let batch = x.shape[0], seq = x.rank == 3 ? x.shape[1] : x.shape[2]
        var ids = pos
        if pos.count == 1 && !(batch == 1 && seq == 1 && pos.rank == 2) {
            let offset = try pos.readAsInts()[0]
            var v = [Int64](repeating: 0, count: batch * seq)
            for i in 0..<v.count { v[i] = Int64(offset + i % seq) }
            ids = Tensor(validShape: [batch, seq], scalars: v)
        }
        return try rotate([x, cos, sin, ids], env)
    }
}

// MARK: - GroupQueryAttention (com.microsoft)

private func inferGroupQueryAttention(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let dt = ins.dtype(0)
    var outs = [TypeInfo](repeating: TypeInfo(dtype: dt, shape: nil), count: max(ctx.outputCount, 1))
    guard let heads = positive(try ctx.int("num_heads")), let kvHeads = positive(try ctx.int("kv_num_heads")),
          let q = ins.shape(0), q.count == 3 else { return outs }
    if ins.shape(1) != nil {
        outs[0].shape = q
    } else if let d = q[2].value, d % (heads + 2 * kvHeads) == 0 {
        outs[0].shape = [q[0], q[1], .known(d / (heads + 2 * kvHeads) * heads)]
    }
    return outs
}

/// GroupQueryAttention(query, key?, value?, past_key?, past_value?, seqlens_k, total_sequence_length,
/// cos_cache?, sin_cache?, position_ids?, attention_bias?) -> output, present_key, present_value:
/// attention (causal unless causal = 0) of num_heads query heads over kv_num_heads key/value heads.
/// Batch b holds T_b = seqlens_k[b] + 1 tokens in all; the new tokens are its last `sequence` ones,
/// or its first in a first prompt (sequence = total_sequence_length; rows past T_b are right padding,
/// computed over the T_b keys), written into the present state (batch, kv heads, max(past buffer,
/// total), head size, zero where no token is) after the batch's past tokens. Query row i of batch b
/// sits at position P_b + i (P_b the past tokens) and sees keys below T_b, up to its own position when
/// causal, and only the local_window_size most recent ones when that is set. Scores are scaled,
/// softcapped (softcap x tanh(s / softcap)) and then attention_bias is added. With do_rotary the
/// rotary embedding is applied to Q and K at the tokens' positions first (the past is stored rotated).
private func makeGroupQueryAttention(_ ctx: OpContext) throws -> OpBody {
    let op = "GroupQueryAttention"
    guard let heads = positive(try ctx.int("num_heads")) else { throw ctx.attributeError("num_heads", "required positive attribute") }
    guard let kvHeads = positive(try ctx.int("kv_num_heads")), heads % kvHeads == 0 else {
        throw ctx.attributeError("kv_num_heads", "required positive attribute dividing num_heads \(heads)")
    }
    let scaleAttr = try ctx.float("scale", default: 0)
    let softcap = try ctx.float("softcap", default: 0)
    let window = try ctx.int("local_window_size", default: -1)
    let causal = try ctx.int("causal", default: 1) != 0
    let rotary = try ctx.int("do_rotary", default: 0) != 0
    let interleaved = try ctx.int("rotary_interleaved", default: 0) != 0
    guard try ctx.int("smooth_softmax", default: 0) == 0, !ctx.hasInput(11) else {
        throw OpError("\(op): smooth_softmax and head_sink are not supported")
    }
    if ctx.hasOutput(3) { throw OpError("\(op): the output_qk output is not supported") }
    let outputCount = ctx.outputCount
    return { inputs, env in
        let q0 = try inputs.required(0, "query")
        let q = try floatInput(q0, op, "query")
        guard q.rank == 3 else { throw OpError("\(op): query must be (batch, sequence, hidden), got \(describeShape(q.shape))") }
        let (batch, seq) = (q.shape[0], q.shape[1])
        let packed = inputs.optional(1) == nil
        let headSize: Int
        var qT: Tensor, kT: Tensor, vT: Tensor   // (batch, seq, heads * head size) each, rotated
        if packed {
            guard inputs.optional(2) == nil, q.shape[2] % (heads + 2 * kvHeads) == 0 else {
                throw OpError("\(op): packed query \(describeShape(q.shape)) must hold (num_heads \(heads) + 2 x kv_num_heads \(kvHeads)) heads, with value omitted too")
            }
            headSize = q.shape[2] / (heads + 2 * kvHeads)
            let row = q.shape[2], base = UnsafePointer(q.pointer(Float.self))
            func slice(_ offset: Int, _ n: Int) throws -> Tensor {
                let t = try Tensor.uninitialized(.float32, [batch, seq, n * headSize])
                let d = t.pointer(Float.self)
                for r in 0..<(batch * seq) { (d + r * n * headSize).update(from: base + r * row + offset, count: n * headSize) }
                return t
            }
            qT = try slice(0, heads); kT = try slice(heads * headSize, kvHeads); vT = try slice((heads + kvHeads) * headSize, kvHeads)
        } else {
            let k = try floatInput(try inputs.required(1, "key"), op, "key"), v = try floatInput(try inputs.required(2, "value"), op, "value")
            guard q.shape[2] % heads == 0 else { throw OpError("\(op): query hidden \(q.shape[2]) is not divisible by num_heads \(heads)") }
            headSize = q.shape[2] / heads
            guard k.shape == [batch, seq, kvHeads * headSize], v.shape == k.shape else {
                throw OpError("\(op): key \(describeShape(k.shape)) and value \(describeShape(v.shape)) must be (batch \(batch), sequence \(seq), kv_num_heads x head size \(kvHeads * headSize))")
            }
            qT = q; kT = k; vT = v
        }
        // Lengths.
        let seqlens = try inputs.required(5, "seqlens_k").readAsInts()
        guard seqlens.count == batch else { throw OpError("\(op): seqlens_k has \(seqlens.count) values for batch \(batch)") }
        let totalT = try inputs.required(6, "total_sequence_length").readAsInts()
        guard totalT.count == 1, totalT[0] >= 0 else { throw OpError("\(op): total_sequence_length must be one non-negative value") }
        let total = totalT[0]
        let pk = try inputs.optional(3).map { try floatInput($0, op, "past_key") }
        let pv = try inputs.optional(4).map { try floatInput($0, op, "past_value") }
        guard (pk == nil) == (pv == nil) else { throw OpError("\(op): past_key and past_value must be given together") }
        var pastBuffer = 0
        if let pk, let pv {
            guard pk.rank == 4, pk.shape[0] == batch, pk.shape[1] == kvHeads, pk.shape[3] == headSize, pv.shape == pk.shape else {
                throw OpError("\(op): past_key \(describeShape(pk.shape)) / past_value \(describeShape(pv.shape)) must be (batch \(batch), kv heads \(kvHeads), length, head size \(headSize)) each")
            }
            pastBuffer = pk.shape[2]
        }
        // A first prompt (the whole sequence is new) ignores what the past holds.
        let firstPrompt = seq == total
        let presentLength = max(pastBuffer, total)
        var pastLengths = [Int](repeating: 0, count: batch)
        for b in 0..<batch {
            let t = seqlens[b] + 1
            guard t >= 1, t <= presentLength else {
                throw OpError("\(op): seqlens_k[\(b)] = \(seqlens[b]) is outside 0..<\(presentLength) (the present length)")
            }
            pastLengths[b] = firstPrompt ? 0 : t - seq
            guard pastLengths[b] >= 0, pastLengths[b] <= pastBuffer || pk == nil && pastLengths[b] == 0 else {
                throw OpError("\(op): batch \(b) holds \(t) tokens, fewer than the \(seq) new ones, or more past tokens than past_key's \(pastBuffer)")
            }
        }
        // Rotary embedding of Q and K at each token's position.
        if rotary {
            let cos = try floatInput(try inputs.required(7, "cos_cache"), op, "cos_cache")
            let sin = try floatInput(try inputs.required(8, "sin_cache"), op, "sin_cache")
            guard cos.rank == 2, sin.shape == cos.shape, 2 * cos.shape[1] <= headSize else {
                throw OpError("\(op): cos_cache \(describeShape(cos.shape)) / sin_cache \(describeShape(sin.shape)) must be (positions, rotary dim / 2) with rotary dim at most the head size \(headSize)")
            }
            var positions = [Int](repeating: 0, count: batch * seq)
            if let p = inputs.optional(9) {
                let v = try p.readAsInts()
                guard v.count == batch * seq else { throw OpError("\(op): position_ids \(describeShape(p.shape)) must be (batch \(batch), sequence \(seq))") }
                // ONNX Runtime reads only the first id in a first prompt and counts on from it.
                positions = firstPrompt ? (0..<(batch * seq)).map { v[0] + $0 % seq } : v
            } else {
                for b in 0..<batch { for s in 0..<seq { positions[b * seq + s] = pastLengths[b] + s } }
            }
            let half = cos.shape[1], cp = cos.pointer(Float.self), sp = sin.pointer(Float.self)
            func rotated(_ t: Tensor, _ n: Int) throws -> Tensor {
                let out = try Tensor.uninitialized(.float32, t.shape)
                let src = t.pointer(Float.self), dst = out.pointer(Float.self)
                for r in 0..<(batch * seq) {
                    let pos = positions[r]
                    guard pos >= 0, pos < cos.shape[0] else { throw OpError("\(op): position \(pos) is outside the \(cos.shape[0]) rotary cache positions") }
                    for h in 0..<n {
                        let off = (r * n + h) * headSize
                        f32RotateRow(src + off, dst + off, headSize: headSize, dim: 2 * half, cos: cp + pos * half, sin: sp + pos * half,
                                     interleaved: interleaved)
                    }
                }
                return out
            }
            qT = try rotated(qT, heads); kT = try rotated(kT, kvHeads)
        }
        // Present: past tokens, then the new ones; positions no token reaches are zero.
        let presentK = try Tensor.zeros(.float32, [batch, kvHeads, presentLength, headSize])
        let presentV = try Tensor.zeros(.float32, [batch, kvHeads, presentLength, headSize])
        for (present, past, cur) in [(presentK, pk, kT), (presentV, pv, vT)] {
            let d = present.pointer(Float.self), c = cur.pointer(Float.self)
            for b in 0..<batch {
                for h in 0..<kvHeads {
                    let dst = d + (b * kvHeads + h) * presentLength * headSize
                    if let past, pastLengths[b] > 0 {
                        dst.update(from: past.pointer(Float.self) + (b * kvHeads + h) * pastBuffer * headSize, count: pastLengths[b] * headSize)
                    }
                    for s in 0..<seq where pastLengths[b] + s < presentLength {
                        (dst + (pastLengths[b] + s) * headSize).update(from: c + ((b * seq + s) * kvHeads + h) * headSize, count: headSize)
                    }
                }
            }
        }
        let y = try Tensor.uninitialized(.float32, [batch, seq, heads * headSize])
        let yv = AttentionOutView(base: y.pointer(Float.self), batch: seq * heads * headSize, head: headSize, row: heads * headSize)
        var problem = AttentionProblem(batch: batch, qHeads: heads, kvHeads: kvHeads, qLength: seq, kvLength: presentLength,
                                       headSize: headSize, valueHeadSize: headSize,
                                       scale: scaleAttr != 0 ? scaleAttr : 1 / Float(headSize).squareRoot())
        problem.softcap = softcap
        try withExtendedLifetime((qT, presentK, presentV)) {
            try contribAttention(problem, q: tokenMajorView(qT, heads: heads), k: headMajorView(presentK), v: headMajorView(presentV),
                                 y: yv, keyMask: nil, attentionBias: inputs.optional(10), causal: causal, offsets: pastLengths,
                                 threads: env.threads, op, leftWindow: window > 0 ? window - 1 : -1,
                                 validKeys: seqlens.map { $0 + 1 }, biasKeysMayBeFewer: true, lastRowUnmasked: false)
        }
        var outs = [try y.converted(to: q0.dtype)]
        if outputCount > 1 { outs.append(try presentK.converted(to: q0.dtype)) }
        if outputCount > 2 { outs.append(try presentV.converted(to: q0.dtype)) }
        return outs
    }
}
