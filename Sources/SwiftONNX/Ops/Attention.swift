import Foundation

/// The attention family: Attention (opsets 23-25: masks, causal, grouped key/value heads, past
/// key/value, softcap, scale, sliding windows, valid key counts), RotaryEmbedding (opset 23) and
/// TensorScatter (opset 24, the key/value cache update).
/// Float16 and bfloat16 tensors are computed in float32 and converted back.
func registerAttentionOps(_ r: inout OpRegistry) {
    r.register("Attention", infer: Inference { ctx, ins in try inferAttention(ctx, ins) }, closure: makeAttention)
    // The same op for attention that FuseScaledDotProductAttention found spelled out in older opsets.
    r.register("Attention", domain: FuseScaledDotProductAttention.domain,
               infer: Inference { ctx, ins in try inferAttention(ctx, ins) }, closure: makeSpelledOutAttention)
    r.rewrite(.fold, FuseScaledDotProductAttention())   // before the fusions: they would take its Div, Add or MatMuls
    r.rewrite(.fuse, AttentionHeadsInPlace())
    r.register("RotaryEmbedding", infer: .sameAsFirst) { ctx in try makeRotaryEmbedding(ctx) }
    r.register("TensorScatter", infer: .sameAsFirst, closure: makeTensorScatter)
    registerAttentionContribOps(&r)
}

/// A float tensor as float32 (float16 / bfloat16 / double converted), or a typed error naming the input.
func floatInput(_ t: Tensor, _ op: String, _ what: String) throws -> Tensor {
    guard t.dtype.isFloatingPoint else {
        throw ONNXError.unsupportedType("\(op): \(what) has element type \(t.dtype) (expected a float type)")
    }
    return try t.converted(to: .float32)
}

private func dimProduct(_ a: Dim?, _ b: Dim?) -> Dim {
    if let x = a?.value, let y = b?.value { return .known(x * y) }
    return .unknown
}

/// An attribute of the Attention nodes `AttentionHeadsInPlace` made (never in a model file): four
/// flags for Q, K, V and Y, each 1 when that 4-D tensor is held as (batch, sequence, heads, size), the
/// [0, 2, 1, 3] transpose of the (batch, heads, sequence, size) the op is defined on. The kernel reads
/// and writes such a tensor in place with strides (as it does 3-D inputs), so the exporters'
/// head-splitting and head-merging Transposes around attention are not computed.
let attentionSequenceMajorAttribute = "swiftonnx_sequence_major"

/// The four flags of `attentionSequenceMajorAttribute` on `node` (all false when absent).
func attentionSequenceMajor(_ node: Node) -> [Bool] {
    guard case .ints(let f)? = node.attributes[attentionSequenceMajorAttribute] else { return [false, false, false, false] }
    return (0..<4).map { $0 < f.count && f[$0] != 0 }
}

/// The error for a tensor held sequence-major that turns out not to be 4-D at run time.
private func notFourDimensional(_ what: String, _ shape: [Int]) -> OpError {
    OpError("Attention: \(what) \(describeShape(shape)) must have rank 4 (it stands in place of a head transpose, perm [0, 2, 1, 3])")
}

/// Dims 1 and 2 of a 4-D shape swapped: (batch, sequence, heads, size) <-> (batch, heads, sequence, size).
func swappingHeadsAndSequence<T>(_ s: [T], _ flag: Bool) -> [T] {
    guard flag, s.count == 4 else { return s }
    return [s[0], s[2], s[1], s[3]]
}

private func inferAttention(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let major = attentionSequenceMajor(ctx.node)
    var outs = try inferAttentionLogical(ctx, ins.enumerated().map { k, x in
        k < 3 ? InferenceInput(type: TypeInfo(dtype: x.type.dtype, shape: x.type.shape.map { swappingHeadsAndSequence($0, major[k]) }),
                               constant: nil) : x
    })
    if let y = outs.first?.shape { outs[0].shape = swappingHeadsAndSequence(y, major[3]) }
    return outs
}

/// Attention's inference on (batch, heads, sequence, size) inputs.
private func inferAttentionLogical(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let qt = ins.at(0).type, kt = ins.at(1).type, vt = ins.at(2).type
    var outs = [TypeInfo(dtype: qt.dtype, shape: nil), TypeInfo(dtype: kt.dtype, shape: nil),
                TypeInfo(dtype: vt.dtype, shape: nil), TypeInfo(dtype: qt.dtype, shape: nil)]
    outs = Array(outs.prefix(max(ctx.outputCount, 1)))
    guard let q = qt.shape, let k = kt.shape, let v = vt.shape, q.count == k.count, k.count == v.count,
          q.count == 3 || q.count == 4 else { return outs }
    let past = ins.shape(4)
    func total(_ seq: Dim) -> Dim {
        guard ctx.hasInput(4) else { return seq }
        guard let p = past, p.count == 4, let a = p[2].value, let s = seq.value else { return .unknown }
        return .known(a + s)
    }
    if q.count == 4 {
        outs[0].shape = [q[0], q[1], q[2], v[3]]
        let kvLen = total(k[2])
        if outs.count > 1 { outs[1].shape = [k[0], k[1], kvLen, k[3]] }
        if outs.count > 2 { outs[2].shape = [v[0], v[1], kvLen, v[3]] }
        if outs.count > 3 { outs[3].shape = [q[0], q[1], q[2], kvLen] }
    } else {
        let qh = try ctx.int("q_num_heads"), kvh = try ctx.int("kv_num_heads")
        let qHeads: Dim = qh.map { .known($0) } ?? .unknown, kvHeads: Dim = kvh.map { .known($0) } ?? .unknown
        func perHead(_ d: Dim, _ heads: Int?) -> Dim {
            guard let x = d.value, let h = heads, h > 0, x % h == 0 else { return .unknown }
            return .known(x / h)
        }
        let dv = perHead(v[2], kvh), dk = perHead(k[2], kvh)
        outs[0].shape = [q[0], q[1], dimProduct(qHeads, dv)]
        let kvLen = total(k[1])
        if outs.count > 1 { outs[1].shape = [k[0], kvHeads, kvLen, dk] }
        if outs.count > 2 { outs[2].shape = [v[0], kvHeads, kvLen, dv] }
        if outs.count > 3 { outs[3].shape = [q[0], qHeads, q[1], kvLen] }
    }
    return outs
}

/// Attention(Q, K, V, attn_mask?, past_key?, past_value?, nonpad_kv_seqlen?) -> Y, present_key?,
/// present_value?, qk_matmul_output?. Q, K, V are (batch, heads, sequence, head size) or
/// (batch, sequence, heads * head size) with q_num_heads / kv_num_heads.
private func makeAttention(_ ctx: OpContext) throws -> OpBody {
    let op = "Attention"
    let causal = try ctx.int("is_causal", default: 0) != 0
    let qHeadsAttr = try ctx.int("q_num_heads"), kvHeadsAttr = try ctx.int("kv_num_heads")
    let modeCode = try ctx.int("qk_matmul_output_mode", default: 0)
    guard let stage = AttentionScoresStage(rawValue: modeCode) else {
        throw ctx.attributeError("qk_matmul_output_mode", "must be 0, 1, 2 or 3, got \(modeCode)")
    }
    let scaleAttr = try ctx.float("scale")
    let softcap = try ctx.float("softcap", default: 0)
    let left = try ctx.int("left_window_size", default: -1), right = try ctx.int("right_window_size", default: -1)
    guard left >= -1 else { throw ctx.attributeError("left_window_size", "must be -1 or at least 0, got \(left)") }
    guard right >= -1 else { throw ctx.attributeError("right_window_size", "must be -1 or at least 0, got \(right)") }
    let wantPresent = ctx.hasOutput(1) || ctx.hasOutput(2)
    let wantScores = ctx.hasOutput(3)
    let outputCount = ctx.outputCount
    let major = attentionSequenceMajor(ctx.node)
    return { inputs, env in
        let q0 = try inputs.required(0, "Q"), k0 = try inputs.required(1, "K"), v0 = try inputs.required(2, "V")
        let q = try floatInput(q0, op, "Q"), k = try floatInput(k0, op, "K"), v = try floatInput(v0, op, "V")
        // Shapes as the op sees them: (batch, heads, sequence, size) for 4-D tensors held sequence-major.
        let qs = swappingHeadsAndSequence(q.shape, major[0]), ks = swappingHeadsAndSequence(k.shape, major[1])
        let vs = swappingHeadsAndSequence(v.shape, major[2])
        for (t, name, flag) in [(q, "Q", major[0]), (k, "K", major[1]), (v, "V", major[2])] where flag && t.rank != 4 {
            throw notFourDimensional(name, t.shape)
        }
        guard q.rank == k.rank, k.rank == v.rank, q.rank == 3 || q.rank == 4 else {
            throw OpError("\(op): Q, K and V must all have rank 3 or all rank 4, got \(describeShape(qs)), \(describeShape(ks)), \(describeShape(vs))")
        }
        let batch = qs[0]
        var qHeads: Int, kvHeads: Int, qLen: Int, kvLen: Int, headSize: Int, vHeadSize: Int
        if q.rank == 4 {
            (qHeads, qLen, headSize) = (qs[1], qs[2], qs[3])
            (kvHeads, kvLen) = (ks[1], ks[2])
            guard ks[3] == headSize else {
                throw OpError("\(op): K's head size \(ks[3]) differs from Q's \(headSize) (Q \(describeShape(qs)), K \(describeShape(ks)))")
            }
            guard vs[1] == kvHeads, vs[2] == kvLen else {
                throw OpError("\(op): V \(describeShape(vs)) does not match K \(describeShape(ks)) in heads and sequence length")
            }
            vHeadSize = vs[3]
        } else {
            guard let qh = qHeadsAttr, let kvh = kvHeadsAttr, qh > 0, kvh > 0 else {
                throw OpError("\(op): 3-D inputs need positive q_num_heads and kv_num_heads attributes")
            }
            (qHeads, kvHeads, qLen, kvLen) = (qh, kvh, qs[1], ks[1])
            guard qs[2] % qh == 0, ks[2] % kvh == 0, vs[2] % kvh == 0 else {
                throw OpError("\(op): hidden sizes Q \(qs[2]), K \(ks[2]), V \(vs[2]) are not divisible by q_num_heads \(qh) / kv_num_heads \(kvh)")
            }
            headSize = qs[2] / qh
            guard ks[2] / kvh == headSize else {
                throw OpError("\(op): K's head size \(ks[2] / kvh) differs from Q's \(headSize)")
            }
            guard vs[1] == kvLen else {
                throw OpError("\(op): V's sequence length \(vs[1]) differs from K's \(kvLen)")
            }
            vHeadSize = vs[2] / kvh
        }
        guard ks[0] == batch, vs[0] == batch else {
            throw OpError("\(op): batch sizes differ: Q \(describeShape(qs)), K \(describeShape(ks)), V \(describeShape(vs))")
        }
        guard kvHeads > 0, qHeads % kvHeads == 0 else {
            throw OpError("\(op): \(qHeads) query heads are not a multiple of \(kvHeads) key/value heads")
        }
        // Past key/value (always 4-D) are prepended along the sequence.
        let pastK = inputs.optional(4), pastV = inputs.optional(5)
        guard (pastK == nil) == (pastV == nil) else { throw OpError("\(op): past_key and past_value must be given together") }
        var pastLen = 0
        var pk: Tensor? = nil, pv: Tensor? = nil
        if let a = pastK, let c = pastV {
            pk = try floatInput(a, op, "past_key"); pv = try floatInput(c, op, "past_value")
            guard a.shape.count == 4, c.shape.count == 4, a.shape[0] == batch, a.shape[1] == kvHeads, a.shape[3] == headSize,
                  c.shape[0] == batch, c.shape[1] == kvHeads, c.shape[2] == a.shape[2], c.shape[3] == vHeadSize else {
                throw OpError("\(op): past_key \(describeShape(a.shape)) / past_value \(describeShape(c.shape)) do not match (batch \(batch), kv heads \(kvHeads), head sizes \(headSize) / \(vHeadSize))")
            }
            pastLen = a.shape[2]
        }
        let total = pastLen + kvLen
        // Views of the inputs: (b, h) matrices of rows.
        // (3-D and sequence-major 4-D tensors: rows of all heads interleaved)
        func view(_ t: Tensor, heads: Int, len: Int, size: Int, sequenceMajor: Bool) -> AttentionView {
            t.rank == 4 && !sequenceMajor
                ? AttentionView(base: t.pointer(Float.self), batch: heads * len * size, head: len * size, row: size)
                : AttentionView(base: t.pointer(Float.self), batch: len * heads * size, head: size, row: heads * size)
        }
        let qv = view(q, heads: qHeads, len: qLen, size: headSize, sequenceMajor: major[0])
        var kv = view(k, heads: kvHeads, len: kvLen, size: headSize, sequenceMajor: major[1])
        var vv = view(v, heads: kvHeads, len: kvLen, size: vHeadSize, sequenceMajor: major[2])
        var presentK: Tensor? = nil, presentV: Tensor? = nil
        if pk != nil || wantPresent {
            func present(_ cur: AttentionView, _ past: Tensor?, size: Int) throws -> Tensor {
                let t = try Tensor.uninitialized(.float32, [batch, kvHeads, total, size])
                let dst = t.pointer(Float.self)
                for b in 0..<batch {
                    for h in 0..<kvHeads {
                        let d = dst + ((b * kvHeads + h) * total) * size
                        if let p = past { d.update(from: p.pointer(Float.self) + ((b * kvHeads + h) * pastLen) * size, count: pastLen * size) }
                        let src = cur.at(b, h)
                        for r in 0..<kvLen { (d + (pastLen + r) * size).update(from: src + r * cur.row, count: size) }
                    }
                }
                return t
            }
            let ck = try present(kv, pk, size: headSize), cv = try present(vv, pv, size: vHeadSize)
            presentK = ck; presentV = cv
            kv = AttentionView(base: ck.pointer(Float.self), batch: kvHeads * total * headSize, head: total * headSize, row: headSize)
            vv = AttentionView(base: cv.pointer(Float.self), batch: kvHeads * total * vHeadSize, head: total * vHeadSize, row: vHeadSize)
        }
        // The bias: mask, causal frontier, window, valid keys.
        var bias = AttentionBias()
        var maskF32: Tensor? = nil
        if let m = inputs.optional(3) {
            let mf: Tensor
            if m.dtype == .bool {
                let src = m.pointer(Bool.self)
                mf = try Tensor.uninitialized(.float32, m.shape)
                let d = mf.pointer(Float.self)
                for i in 0..<m.count { d[i] = src[i] ? 0 : -Float.infinity }
            } else {
                mf = try floatInput(m, op, "attn_mask")
            }
            guard (1...4).contains(m.rank) else {
                throw OpError("\(op): attn_mask must have rank 1 to 4, got \(describeShape(m.shape))")
            }
            let len = m.shape[m.rank - 1]
            guard len <= total else {
                throw OpError("\(op): attn_mask's last dimension \(len) exceeds the \(total) keys (past \(pastLen) + current \(kvLen))")
            }
            // Right-aligned broadcast of the leading dims against (batch, heads, query rows).
            let target = [batch, qHeads, qLen]
            var strides = [0, 0, 0]
            var step = len
            for axis in stride(from: m.rank - 2, through: 0, by: -1) {
                let t = 2 - (m.rank - 2 - axis)
                let d = m.shape[axis]
                guard d == target[t] || d == 1 else {
                    throw OpError("\(op): attn_mask \(describeShape(m.shape)) does not broadcast to (batch \(batch), heads \(qHeads), queries \(qLen), keys \(total))")
                }
                strides[t] = d == 1 ? 0 : step
                step *= d
            }
            maskF32 = mf
            bias.mask = UnsafePointer(mf.pointer(Float.self))
            bias.maskStride = (strides[0], strides[1], strides[2])
            bias.maskLength = len
        }
        bias.causal = causal
        bias.leftWindow = left; bias.rightWindow = right
        if let np = inputs.optional(6) {
            guard pastK == nil else { throw OpError("\(op): nonpad_kv_seqlen cannot be combined with past_key / past_value") }
            // Counts beyond [-1, keys + queries] act as their bound (all keys masked, or every key and
            // the whole causal frontier visible), which keeps the frontier arithmetic in range.
            let valid = try np.readAsInts().map { min(max($0, -1), total + qLen) }
            guard valid.count == batch else {
                throw OpError("\(op): nonpad_kv_seqlen has \(valid.count) values for batch \(batch)")
            }
            bias.validKeys = valid
            bias.offsets = valid.map { $0 - qLen }
        } else if pastLen > 0 {
            bias.offsets = [Int](repeating: pastLen, count: batch)
        }
        let scale = scaleAttr ?? 1 / Float(headSize).squareRoot()
        let problem = AttentionProblem(batch: batch, qHeads: qHeads, kvHeads: kvHeads, qLength: qLen, kvLength: total,
                                       headSize: headSize, valueHeadSize: vHeadSize, scale: scale, softcap: softcap)
        let yShape = q.rank == 4 ? swappingHeadsAndSequence([batch, qHeads, qLen, vHeadSize], major[3]) : [batch, qLen, qHeads * vHeadSize]
        let y = try Tensor.uninitialized(.float32, yShape)
        let yv = q.rank == 4 && !major[3]
            ? AttentionOutView(base: y.pointer(Float.self), batch: qHeads * qLen * vHeadSize, head: qLen * vHeadSize, row: vHeadSize)
            : AttentionOutView(base: y.pointer(Float.self), batch: qLen * qHeads * vHeadSize, head: vHeadSize, row: qHeads * vHeadSize)
        var scoresT: Tensor? = nil
        var scores: (view: AttentionOutView, stage: AttentionScoresStage)? = nil
        if wantScores {
            let t = try Tensor.uninitialized(.float32, [batch, qHeads, qLen, total])
            scoresT = t
            scores = (AttentionOutView(base: t.pointer(Float.self), batch: qHeads * qLen * total, head: qLen * total, row: total), stage)
        }
        withExtendedLifetime((q, k, v, maskF32, presentK, presentV)) {
            f32Attention(problem, q: qv, k: kv, v: vv, y: yv, bias: bias, scores: scores, threads: env.threads)
        }
        var outs = [try y.converted(to: q0.dtype)]
        let empty = try Tensor.uninitialized(q0.dtype, [0])
        if outputCount > 1 { outs.append(try presentK?.converted(to: k0.dtype) ?? empty) }
        if outputCount > 2 { outs.append(try presentV?.converted(to: v0.dtype) ?? empty) }
        if outputCount > 3 { outs.append(try scoresT?.converted(to: q0.dtype) ?? empty) }
        return outs
    }
}

/// RotaryEmbedding(X, cos_cache, sin_cache, position_ids?): X is (batch, heads, sequence, head size)
/// or (batch, sequence, heads * head size) with num_heads. The first rotary_embedding_dim values of
/// each head (all by default) are rotated in pairs; the caches are (max position, dim / 2) indexed
/// by position_ids, or (batch, sequence, dim / 2) without them.
/// `headsFromCache`: a 3-D X without num_heads has heads of 2 x the caches' last dimension
/// (com.microsoft's RotaryEmbedding); ONNX's requires num_heads there.
func makeRotaryEmbedding(_ ctx: OpContext, headsFromCache: Bool = false) throws -> OpBody {
    let op = "RotaryEmbedding"
    let interleaved = try ctx.int("interleaved", default: 0) != 0
    let dimAttr = try ctx.int("rotary_embedding_dim", default: 0)
    let numHeadsAttr = try ctx.int("num_heads", default: 0)
    return { inputs, _ in
        let x0 = try inputs.required(0, "X")
        let x = try floatInput(x0, op, "X")
        let cosT = try floatInput(try inputs.required(1, "cos_cache"), op, "cos_cache")
        let sinT = try floatInput(try inputs.required(2, "sin_cache"), op, "sin_cache")
        guard x.rank == 3 || x.rank == 4 else { throw OpError("\(op): X must have rank 3 or 4, got \(describeShape(x.shape))") }
        let batch = x.shape[0]
        let heads: Int, seq: Int, headSize: Int
        if x.rank == 4 {
            (heads, seq, headSize) = (x.shape[1], x.shape[2], x.shape[3])
        } else {
            var numHeads = numHeadsAttr
            if numHeads == 0 && headsFromCache, let c = cosT.shape.last, c > 0, x.shape[2] % (2 * c) == 0 {
                numHeads = x.shape[2] / (2 * c)
            }
            guard numHeads > 0, x.shape[2] % numHeads == 0 else {
                throw OpError("\(op): 3-D X \(describeShape(x.shape)) needs num_heads dividing its last dimension (num_heads \(numHeads))")
            }
            (heads, seq, headSize) = (numHeads, x.shape[1], x.shape[2] / numHeads)
        }
        let dim = dimAttr == 0 ? headSize : dimAttr
        guard dim > 0, dim <= headSize, dim % 2 == 0 else {
            throw OpError("\(op): rotary_embedding_dim \(dim) must be even and at most the head size \(headSize)")
        }
        let half = dim / 2
        guard cosT.shape == sinT.shape, cosT.shape.last == half else {
            throw OpError("\(op): cos_cache \(describeShape(cosT.shape)) and sin_cache \(describeShape(sinT.shape)) must match and end in \(half) (rotary dim / 2)")
        }
        // The cache row of (b, s).
        var rows = [Int](repeating: 0, count: batch * seq)
        if let pos = inputs.optional(3) {
            let p = try pos.readAsInts()
            guard cosT.rank == 2 else { throw OpError("\(op): with position_ids the caches must be 2-D, got \(describeShape(cosT.shape))") }
            guard pos.shape == [batch, seq] || pos.shape == [1, seq] else {
                throw OpError("\(op): position_ids \(describeShape(pos.shape)) must be (batch \(batch), sequence \(seq))")
            }
            let maxPos = cosT.shape[0]
            for b in 0..<batch {
                for s in 0..<seq {
                    let v = p[(pos.shape[0] == 1 ? 0 : b) * seq + s]
                    guard v >= 0, v < maxPos else { throw OpError("\(op): position id \(v) is outside the cache's \(maxPos) positions") }
                    rows[b * seq + s] = v
                }
            }
        } else {
            guard cosT.shape == [batch, seq, half] else {
                throw OpError("\(op): without position_ids the caches must be (batch \(batch), sequence \(seq), \(half)), got \(describeShape(cosT.shape))")
            }
            for i in 0..<rows.count { rows[i] = i }
        }
        let y = try Tensor.uninitialized(.float32, x.shape)
        let xp = x.pointer(Float.self), yp = y.pointer(Float.self)
        let cp = cosT.pointer(Float.self), sp = sinT.pointer(Float.self)
        for b in 0..<batch {
            for h in 0..<heads {
                for s in 0..<seq {
                    let off = x.rank == 4 ? ((b * heads + h) * seq + s) * headSize : ((b * seq + s) * heads + h) * headSize
                    let r = rows[b * seq + s] * half
                    f32RotateRow(xp + off, yp + off, headSize: headSize, dim: dim, cos: cp + r, sin: sp + r, interleaved: interleaved)
                }
            }
        }
        return [try y.converted(to: x0.dtype)]
    }
}

/// TensorScatter(past_cache, update, write_indices?): a copy of the cache with, for each batch b,
/// the update's rows written along `axis` from write_indices[b] on (wrapping around in "circular"
/// mode). Any element type; the bytes are copied.
private func makeTensorScatter(_ ctx: OpContext) throws -> OpBody {
    let op = "TensorScatter"
    let mode = try ctx.string("mode", default: "linear")
    guard mode == "linear" || mode == "circular" else { throw ctx.attributeError("mode", "must be linear or circular, got '\(mode)'") }
    let axisAttr = try ctx.int("axis", default: -2)
    return { inputs, _ in
        let cache = try inputs.required(0, "past_cache"), update = try inputs.required(1, "update")
        guard cache.dtype == update.dtype, cache.dtype != .string else {
            throw ONNXError.unsupportedType("\(op): past_cache (\(cache.dtype)) and update (\(update.dtype)) must be one non-string type")
        }
        let axis = try normalizeAxis(axisAttr, rank: cache.rank)
        guard axis >= 1, update.rank == cache.rank,
              (0..<cache.rank).allSatisfy({ $0 == axis ? update.shape[$0] <= cache.shape[$0] : update.shape[$0] == cache.shape[$0] }) else {
            throw OpError("\(op): update \(describeShape(update.shape)) does not fit past_cache \(describeShape(cache.shape)) along axis \(axisAttr) (axis must not be the batch axis)")
        }
        let batch = cache.shape[0]
        let starts = try inputs.optional(2).map { try $0.readAsInts() } ?? [Int](repeating: 0, count: batch)
        guard starts.count == batch else { throw OpError("\(op): write_indices has \(starts.count) values for batch \(batch)") }
        let maxLen = cache.shape[axis], len = update.shape[axis]
        let perBatch = cache.shape[1..<axis].reduce(1, *)
        let inner = cache.shape[(axis + 1)...].reduce(1, *) * cache.dtype.byteSize
        let out = try Tensor.uninitialized(cache.dtype, cache.shape)
        let dst = UnsafeMutableRawPointer(out.pointer(UInt8.self)), src = UnsafeRawPointer(update.pointer(UInt8.self))
        dst.copyMemory(from: UnsafeRawPointer(cache.pointer(UInt8.self)), byteCount: cache.count * cache.dtype.byteSize)
        for o in 0..<(batch * perBatch) {
            let b = o / perBatch
            for s in 0..<len {
                var at = starts[b] &+ s
                if mode == "circular" { at = ((at % maxLen) + maxLen) % maxLen }
                guard at >= 0, at < maxLen else {
                    throw OpError("\(op): write index \(starts[b]) + \(s) is outside the cache's \(maxLen) positions (batch \(b))")
                }
                (dst + (o * maxLen + at) * inner).copyMemory(from: src + (o * len + s) * inner, byteCount: inner)
            }
        }
        return [out]
    }
}

// MARK: - Head transposes read in place

/// Attention(Transpose(X, [0, 2, 1, 3]), ...) reads X in place, and Transpose(Attention(...), [0, 2, 1, 3])
/// becomes the attention's own output: exporters split heads with Reshape + Transpose before attention
/// and merge them with Transpose + Reshape after it (four copies of the activations per layer), while
/// the kernel reads and writes any of Q, K, V and Y with strides (`attentionSequenceMajorAttribute`).
/// Only a transpose whose result has no other reader is taken; the op checks at run time that such a
/// tensor is 4-D, as the transpose did.
struct AttentionHeadsInPlace: GraphPass {
    let name = "attention-heads-in-place"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        let uses = graph.useCounts()
        let producers = graph.producers()
        let readers = graph.readers()
        let outputs = graph.outputNames
        let headSwap: [Int] = [0, 2, 1, 3]
        func isHeadTranspose(_ n: Node) -> Bool {
            guard n.opType == "Transpose", n.isStandardDomain, n.inputs.count == 1, n.outputs.count == 1,
                  case .ints(let p)? = n.attributes["perm"] else { return false }
            return p == headSwap
        }
        var removed = Set<Int>()
        for i in graph.nodes.indices where graph.nodes[i].opType == "Attention"
            && (graph.nodes[i].isStandardDomain || graph.nodes[i].domain == FuseScaledDotProductAttention.domain) {
            var node = graph.nodes[i]
            var flags = attentionSequenceMajor(node)
            var changed = false
            for k in 0..<min(3, node.inputs.count) where !flags[k] {
                let x = node.inputs[k]
                guard !x.isEmpty, uses[x] == 1, !outputs.contains(x), let ti = producers[x], !removed.contains(ti),
                      isHeadTranspose(graph.nodes[ti]) else { continue }
                node.inputs[k] = graph.nodes[ti].inputs[0]
                flags[k] = true
                removed.insert(ti)
                changed = true
            }
            if !flags[3], let y = node.outputs.first, !y.isEmpty, uses[y] == 1, !outputs.contains(y),
               let ti = readers[y], !removed.contains(ti), isHeadTranspose(graph.nodes[ti]) {
                node.outputs[0] = graph.nodes[ti].outputs[0]
                flags[3] = true
                removed.insert(ti)
                changed = true
            }
            if changed {
                node.attributes[attentionSequenceMajorAttribute] = .ints(flags.map { $0 ? 1 : 0 })
                graph.nodes[i] = node
            }
        }
        graph.removeNodes(at: removed)
        return !removed.isEmpty
    }
}

// MARK: - Scaled-dot-product attention spelled out

/// MatMul(Softmax(MatMul(Q, K^T) [/ c or * c] [+ mask], last axis), V) over 4-D (batch, heads,
/// sequence, head size) float32 values, as exporters before opset 23 write attention, becomes one
/// com.swiftonnx::Attention(Q, K, V, mask) with scale 1/c (or c) (`makeSpelledOutAttention`): the
/// attention kernel computes it a block of query rows at a time, so the (queries x keys) scores of all
/// heads are never stored and the six nodes' passes over them become one. K^T given as
/// Transpose(K, [0, 1, 3, 2]) is read as K; as Transpose(R, [0, 2, 3, 1]) of R (batch, keys, heads,
/// head size), the K read is R transposed to [0, 2, 1, 3]; otherwise a transpose of K^T is added.
/// Scalar factors on Q and K^T join the scale (TorchScript's scaled_dot_product_attention multiplies
/// each by the square root of the scale), and Where(IsNaN(P), 0, P) after the softmax (its "safe
/// softmax") is the fused op's own rule for rows with every key masked. A NaN that comes from the
/// inputs themselves, which that Where would also have turned into 0, propagates instead.
struct FuseScaledDotProductAttention: GraphPass {
    let name = "fuse-scaled-dot-product-attention"
    static let domain = "com.swiftonnx"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        let uses = graph.useCounts()
        let producers = graph.producers()
        let outputs = graph.outputNames
        var removed = Set<Int>()
        var replacements: [Int: [Node]] = [:]
        func single(_ name: String) -> Bool { uses[name] == 1 && !outputs.contains(name) }
        func shape(_ name: String) -> [Dim]? { graph.infoOrConstant(of: name)?.shape }
        func isF32(_ name: String) -> Bool { graph.infoOrConstant(of: name)?.type == .float32 }
        func scalarConstant(_ name: String) -> Float? {
            guard let t = graph.initializers[name], t.dtype == .float32, t.count == 1 else { return nil }
            return t.pointer(Float.self)[0]
        }
        func node(_ name: String, _ op: String) -> (Int, Node)? {
            guard let i = producers[name], !removed.contains(i), replacements[i] == nil else { return nil }
            let n = graph.nodes[i]
            return n.opType == op && n.isStandardDomain && n.outputs.count == 1 ? (i, n) : nil
        }
        func perm(_ n: Node) -> [Int]? { if case .ints(let p)? = n.attributes["perm"] { return p }; return nil }
        /// An operand, or X of Mul(X, c) / Mul(c, X) with a scalar constant c (used once).
        func scaledOperand(_ name: String) -> (name: String, scale: Float, chain: [Int]) {
            guard single(name), let (i, n) = node(name, "Mul"), n.inputs.count == 2 else { return (name, 1, []) }
            for k in 0..<2 {
                if let c = scalarConstant(n.inputs[1 - k]), c != 0, c.isFinite { return (n.inputs[k], c, [i]) }
            }
            return (name, 1, [])
        }
        /// The scores' root MatMul(Q, K^T), through an optional Div / Mul by a scalar constant; Q and
        /// K^T may each be scaled by a constant first (TorchScript writes scaled_dot_product_attention
        /// as MatMul(Q * sqrt(scale), K^T * sqrt(scale))).
        func scores(_ name: String) -> (matmul: Int, scale: Float, chain: [Int], q: String, kt: String)? {
            guard single(name) else { return nil }
            func root(_ i: Int, _ mm: Node, _ scale: Float, _ chain: [Int]) -> (matmul: Int, scale: Float, chain: [Int], q: String, kt: String) {
                let q = scaledOperand(mm.inputs[0]), kt = scaledOperand(mm.inputs[1])
                return (i, scale * q.scale * kt.scale, chain + q.chain + kt.chain, q.name, kt.name)
            }
            if let (i, mm) = node(name, "MatMul"), mm.inputs.count == 2 { return root(i, mm, 1, []) }
            for op in ["Div", "Mul"] {
                guard let (i, n) = node(name, op), n.inputs.count == 2 else { continue }
                for k in 0..<2 where op == "Mul" || k == 0 {
                    guard let c = scalarConstant(n.inputs[1 - k]), c != 0, c.isFinite, single(n.inputs[k]),
                          let (mi, mm) = node(n.inputs[k], "MatMul"), mm.inputs.count == 2 else { continue }
                    return root(mi, mm, op == "Div" ? 1 / c : c, [i])
                }
            }
            return nil
        }
        /// Whether `name` is a one-element float32 constant equal to 0.
        func zeroConstant(_ name: String) -> Bool {
            guard let t = graph.initializers[name], t.dtype == .float32, t.count == 1 else { return false }
            return t.pointer(Float.self)[0] == 0
        }
        var serial = 0
        for (oi, out) in graph.nodes.enumerated() where out.opType == "MatMul" && out.isStandardDomain {
            guard out.inputs.count == 2, out.outputs.count == 1, replacements[oi] == nil, !removed.contains(oi),
                  single(out.inputs[0]) else { continue }
            // The probabilities, or Where(IsNaN(P), 0, P) of them (the "safe softmax" of exported
            // scaled_dot_product_attention: a row whose every key is masked gives zeros, as the fused
            // op's rows do).
            var probabilities = out.inputs[0]
            var safe: [Int] = []
            if let (wi, w) = node(probabilities, "Where"), w.inputs.count == 3, zeroConstant(w.inputs[1]),
               single(w.inputs[0]), let (ni, isNaN) = node(w.inputs[0], "IsNaN"), isNaN.inputs == [w.inputs[2]],
               uses[w.inputs[2]] == 2, !outputs.contains(w.inputs[2]) {
                probabilities = w.inputs[2]
                safe = [wi, ni]
            } else if !single(probabilities) {
                continue
            }
            guard let (si, softmax) = node(probabilities, "Softmax"), softmax.inputs.count == 1 else { continue }
            var axis = (opsets[""] ?? 1) >= 13 ? -1 : 1
            if case .int(let a)? = softmax.attributes["axis"] { axis = a }
            guard axis == -1 || axis == 3 else { continue }
            // The mask, if the softmax reads an Add, and the scores.
            var found: (matmul: Int, scale: Float, chain: [Int], q: String, kt: String)? = nil
            var mask: String? = nil
            var chain = [si] + safe
            if let (ai, add) = node(softmax.inputs[0], "Add"), add.inputs.count == 2, single(softmax.inputs[0]) {
                for k in 0..<2 {
                    if let f = scores(add.inputs[k]) { found = f; mask = add.inputs[1 - k]; chain.append(ai); break }
                }
            } else {
                found = scores(softmax.inputs[0])
            }
            guard let (mi, scale, more, q, kt) = found else { continue }
            chain += more
            let mm = graph.nodes[mi]
            let v = out.inputs[1]
            // Ranks where shape inference knows them (the general plan of a model with symbolic sizes
            // may not): 4 for Q, K^T and V, at most 4 for the mask. The op checks the sizes at run time
            // and computes the unfused way what its kernel does not take, so the general plan and the
            // plans for input shapes fuse alike and give the same results.
            func rank(_ name: String) -> Int? { shape(name)?.count }
            guard isF32(q), isF32(kt), isF32(v), rank(q) ?? 4 == 4, rank(kt) ?? 4 == 4, rank(v) ?? 4 == 4 else { continue }
            if let mask { guard isF32(mask), rank(mask) ?? 4 <= 4 else { continue } }
            // K as (batch, heads, keys, head size).
            var added: [Node] = []
            var k: String
            var ktTranspose: Int? = nil
            if let (ti, t) = node(kt, "Transpose"), t.inputs.count == 1, let p = perm(t), p == [0, 1, 3, 2] || p == [0, 2, 3, 1] {
                if p == [0, 1, 3, 2] {
                    k = t.inputs[0]
                } else {
                    k = "\(kt)__attention_keys"
                    added.append(Node(name: "\(t.name)__keys", opType: "Transpose", domain: "", inputs: [t.inputs[0]],
                                      outputs: [k], attributes: ["perm": .ints([0, 2, 1, 3])]))
                }
                if single(kt) { ktTranspose = ti }
            } else {
                guard rank(kt) == 4 else { continue }
                k = "\(kt)__attention_keys"
                added.append(Node(name: "\(mm.name)__keys", opType: "Transpose", domain: "", inputs: [kt], outputs: [k],
                                  attributes: ["perm": .ints([0, 1, 3, 2])]))
            }
            serial += 1
            added.append(Node(name: out.name.isEmpty ? "attention_\(serial)" : out.name, opType: "Attention", domain: Self.domain,
                              inputs: [q, k, v] + (mask.map { [$0] } ?? []), outputs: out.outputs,
                              attributes: ["scale": .float(scale)]))
            replacements[oi] = added
            removed.formUnion(chain + [mi])
            if let ktTranspose { removed.insert(ktTranspose) }
        }
        if replacements.isEmpty { return false }
        var nodes: [Node] = []
        for (i, n) in graph.nodes.enumerated() where !removed.contains(i) {
            if let r = replacements[i] { nodes += r } else { nodes.append(n) }
        }
        graph.nodes = nodes
        return true
    }
}

/// com.swiftonnx::Attention(Q, K, V, mask?) with a scale (FuseScaledDotProductAttention's node):
/// MatMul(Softmax(MatMul(Q, K^T) * scale + mask), V) with numpy broadcasting. The attention kernel
/// takes 4-D Q, K, V of one batch size and head count (or one key/value head) and a mask that
/// broadcasts to (batch, heads, queries, keys) (a mask of one key column is widened first); anything
/// else is computed the unfused way. Rows whose every score is -inf give zeros, not NaN, both ways.
private func makeSpelledOutAttention(_ ctx: OpContext) throws -> OpBody {
    let kernel = try makeAttention(ctx)
    let scale = try ctx.float("scale") ?? 1
    let major = attentionSequenceMajor(ctx.node)
    return { inputs, env in
        let q0 = try inputs.required(0, "Q"), k0 = try inputs.required(1, "K"), v0 = try inputs.required(2, "V")
        var mask = inputs.optional(3)
        // (batch, heads, sequence, size) shapes of tensors held sequence-major
        let qs = swappingHeadsAndSequence(q0.shape, major[0]), ks = swappingHeadsAndSequence(k0.shape, major[1])
        let vs = swappingHeadsAndSequence(v0.shape, major[2])
        var fits = q0.dtype == .float32 && k0.dtype == .float32 && v0.dtype == .float32 && q0.rank == 4 && k0.rank == 4 && v0.rank == 4
            && ks[0] == qs[0] && vs[0] == qs[0] && ks[3] == qs[3]
            && (ks[1] == qs[1] || ks[1] == 1) && vs[1] == ks[1] && vs[2] == ks[2]
        if fits, let m = mask {
            let target = [qs[0], qs[1], qs[2], ks[2]]
            fits = m.dtype == .float32 && m.rank <= 4
                && zip(m.shape.reversed(), target.reversed()).allSatisfy { $0 == $1 || $0 == 1 }
            if fits && (m.rank == 0 || m.shape[m.rank - 1] != ks[2]) {   // one value for every key: widened
                let rows = m.count, keys = ks[2]
                let wide = try Tensor.uninitialized(.float32, Array(m.shape.dropLast()) + [keys])
                let src = m.pointer(Float.self), dst = wide.pointer(Float.self)
                for r in 0..<rows { (dst + r * keys).update(repeating: src[r], count: keys) }
                mask = wide
            }
        }
        if fits { return Array(try kernel([q0, k0, v0, mask], env).prefix(1)) }
        // The unfused computation, on the tensors as the op is defined (transposed back where held sequence-major).
        func logical(_ t: Tensor, _ flag: Bool, _ name: String) throws -> Tensor {
            guard flag else { return t }
            guard t.rank == 4 else { throw notFourDimensional(name, t.shape) }
            return try transposed(t, [0, 2, 1, 3])
        }
        let q = try logical(q0, major[0], "Q"), k = try logical(k0, major[1], "K"), v = try logical(v0, major[2], "V")
        guard k.rank >= 2 else { throw OpError("Attention: K must have rank >= 2, got \(describeShape(k.shape))") }
        var perm = Array(0..<k.rank)
        perm.swapAt(k.rank - 1, k.rank - 2)
        var s = try matMul(q, try transposed(k, perm), threads: env.threads)
        s = try arithmetic(.mul, s, try Tensor(scalar: scale).converted(to: s.dtype), threads: env.threads, "Attention")
        if let mask { s = try arithmetic(.add, s, mask, threads: env.threads, "Attention") }
        let p = try s.converted(to: .float32)
        let n = p.shape.last ?? 1
        if p.count > 0 && n > 0 {
            // As the kernel: a row whose every score is -inf (every key masked) gets zeros.
            let base = p.pointer(Float.self)
            for r in 0..<(p.count / n) {
                let row = base + r * n
                if (0..<n).allSatisfy({ row[$0] == -.infinity }) { row.update(repeating: 0, count: n) }
                else { f32SoftmaxRows(row, row, rows: 1, n: n, kind: .softmax) }
            }
        }
        let y = try matMul(try p.converted(to: s.dtype), v, threads: env.threads)
        if major[3] {
            guard y.rank == 4 else { throw notFourDimensional("the output", y.shape) }
            return [try transposed(y, [0, 2, 1, 3])]
        }
        return [y]
    }
}
