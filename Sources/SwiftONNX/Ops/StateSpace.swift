import Foundation

/// The state-space family (opset 27): CausalConvWithState, the stateful causal depthwise 1-D
/// convolution that Mamba and Gated DeltaNet blocks run before their scan, and LinearAttention, the
/// recurrent attention of those blocks (linear, gated, delta and gated delta rules). Float16 and
/// bfloat16 tensors are computed in float32 and converted back.
func registerStateSpaceOps(_ r: inout OpRegistry) {
    r.register("CausalConvWithState", infer: Inference { _, ins in inferCausalConvWithState(ins) },
               closure: makeCausalConvWithState)
    r.register("LinearAttention", infer: Inference { ctx, ins in try inferLinearAttention(ctx, ins) },
               closure: makeLinearAttention)
}

/// output: the input's type and shape; present_state: (batch, channels, kernel size - 1).
private func inferCausalConvWithState(_ ins: [InferenceInput]) -> [TypeInfo] {
    let x = ins.at(0).type
    var state = TypeInfo(dtype: x.dtype, shape: nil)
    if let s = x.shape, s.count == 3, let w = ins.shape(1), w.count == 3 {
        state.shape = [s[0], s[1], w[2].value.map { .known(max($0 - 1, 0)) } ?? .unknown]
    }
    return [x, state]
}

/// CausalConvWithState(input, weight, bias?, past_state?) -> output, present_state.
/// input (batch, channels, length) is prefixed along the length by past_state (batch, channels, k - 1),
/// zeros when absent; output[b, c, t] = bias[c] + sum_j weight[c, 0, j] * padded[b, c, t + j], then
/// x * sigmoid(x) for activation 'silu' / 'swish'; present_state is the last k - 1 positions of the
/// padded sequence (the carry of the next decoding step).
private func makeCausalConvWithState(_ ctx: OpContext) throws -> OpBody {
    let op = "CausalConvWithState"
    let activation = try ctx.string("activation", default: "none")
    guard ["none", "silu", "swish"].contains(activation) else {
        throw ctx.attributeError("activation", "must be 'silu', 'swish' or 'none', got '\(activation)'")
    }
    let silu = activation != "none"
    return { inputs, _ in
        let x0 = try inputs.required(0, "input")
        let x = try floatInput(x0, op, "input"), w = try floatInput(try inputs.required(1, "weight"), op, "weight")
        guard x.rank == 3 else { throw OpError("\(op): input must be (batch, channels, length), got \(describeShape(x.shape))") }
        let (batch, channels, length) = (x.shape[0], x.shape[1], x.shape[2])
        guard w.rank == 3, w.shape[0] == channels, w.shape[1] == 1, w.shape[2] >= 1 else {
            throw OpError("\(op): weight must be (channels \(channels), 1, kernel size >= 1), got \(describeShape(w.shape))")
        }
        let k = w.shape[2], carry = k - 1
        var bias: Tensor? = nil
        if let b = inputs.optional(2) {
            bias = try floatInput(b, op, "bias")
            guard b.shape == [channels] else { throw OpError("\(op): bias must be (channels \(channels)), got \(describeShape(b.shape))") }
        }
        var past: Tensor? = nil
        if let p = inputs.optional(3) {
            past = try floatInput(p, op, "past_state")
            guard p.shape == [batch, channels, carry] else {
                throw OpError("\(op): past_state must be (batch \(batch), channels \(channels), kernel size - 1 = \(carry)), got \(describeShape(p.shape))")
            }
        }
        let y = try Tensor.uninitialized(.float32, [batch, channels, length])
        let state = try Tensor.uninitialized(.float32, [batch, channels, carry])
        let xp = x.pointer(Float.self), wp = w.pointer(Float.self), yp = y.pointer(Float.self), sp = state.pointer(Float.self)
        let bp = bias?.pointer(Float.self), pp = past?.pointer(Float.self)
        var padded = [Float](repeating: 0, count: carry + length)
        withExtendedLifetime((x, w, bias, past)) {
            padded.withUnsafeMutableBufferPointer { buf in
                let row = buf.baseAddress!
                for bc in 0..<(batch * channels) {
                    let c = bc % channels
                    if let pp { row.update(from: pp + bc * carry, count: carry) } else { row.update(repeating: 0, count: carry) }
                    (row + carry).update(from: xp + bc * length, count: length)
                    let wc = wp + c * k, out = yp + bc * length
                    let b0 = bp?[c] ?? 0
                    for t in 0..<length {
                        var acc: Float = 0
                        for j in 0..<k { acc += wc[j] * row[t + j] }
                        let v = acc + b0
                        out[t] = silu ? v / (1 + Foundation.exp(-v)) : v
                    }
                    (sp + bc * carry).update(from: row + length, count: carry)
                }
            }
        }
        return [try y.converted(to: x0.dtype), try state.converted(to: x0.dtype)]
    }
}

// MARK: - LinearAttention

/// output: (batch, length, q_num_heads * d_v), the query's type; present_state: (batch,
/// kv_num_heads, d_k, d_v).
private func inferLinearAttention(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let q = ins.at(0).type, k = ins.shape(1), v = ins.shape(2)
    var outs = [TypeInfo(dtype: q.dtype, shape: nil), TypeInfo(dtype: q.dtype, shape: nil)]
    guard let qh = try ctx.int("q_num_heads"), let kvh = try ctx.int("kv_num_heads"), qh > 0, kvh > 0,
          let qs = q.shape, qs.count == 3, let k, k.count == 3, let v, v.count == 3 else { return outs }
    func per(_ d: Dim, _ h: Int) -> Dim { d.value.map { $0 % h == 0 ? .known($0 / h) : .unknown } ?? .unknown }
    let dv = per(v[2], kvh)
    outs[0].shape = [qs[0], qs[1], dv.value.map { .known($0 * qh) } ?? .unknown]
    outs[1].shape = [qs[0], .known(kvh), per(k[2], kvh), dv]
    return outs
}

/// LinearAttention(query, key, value, past_state?, decay?, beta?) -> output, present_state: the
/// recurrent ("linear") attention of Mamba-2 / Gated DeltaNet layers, one step per position t with a
/// (d_k x d_v) state S per key/value head, from past_state (zeros when absent):
///   linear       S = S + k v^T
///   gated        S = exp(g) S + k v^T
///   delta        S = S + k (beta (v - S^T k))^T
///   gated_delta  S' = exp(g) S;  S = S' + k (beta (v - S'^T k))^T
/// and o_t = scale * S^T q_t for each query head, which reads the state of its key/value head
/// (q_num_heads / kv_num_heads query heads per state). query, key, value, decay and beta are packed
/// (batch, length, heads * size); decay g is per key dimension (heads * d_k) or per head, beta per
/// head or one per position; scale defaults to 1 / sqrt(d_k).
private func makeLinearAttention(_ ctx: OpContext) throws -> OpBody {
    let op = "LinearAttention"
    guard let qHeads = try ctx.int("q_num_heads"), let kvHeads = try ctx.int("kv_num_heads"), qHeads > 0, kvHeads > 0,
          qHeads % kvHeads == 0 else {
        throw ctx.attributeError("q_num_heads", "q_num_heads and kv_num_heads must be positive, q_num_heads a multiple of kv_num_heads")
    }
    let rule = try ctx.string("update_rule", default: "gated_delta")
    guard ["linear", "gated", "delta", "gated_delta"].contains(rule) else {
        throw ctx.attributeError("update_rule", "must be 'linear', 'gated', 'delta' or 'gated_delta', got '\(rule)'")
    }
    let gated = rule == "gated" || rule == "gated_delta", delta = rule == "delta" || rule == "gated_delta"
    let scaleAttr = try ctx.float("scale")
    return { inputs, _ in
        let q0 = try inputs.required(0, "query")
        let q = try floatInput(q0, op, "query"), k = try floatInput(try inputs.required(1, "key"), op, "key")
        let v = try floatInput(try inputs.required(2, "value"), op, "value")
        guard q.rank == 3, k.rank == 3, v.rank == 3 else {
            throw OpError("\(op): query, key and value must be (batch, length, heads * size), got \(describeShape(q.shape)), \(describeShape(k.shape)), \(describeShape(v.shape))")
        }
        let (batch, length) = (q.shape[0], q.shape[1])
        guard k.shape[0] == batch, v.shape[0] == batch, k.shape[1] == length, v.shape[1] == length else {
            throw OpError("\(op): query \(describeShape(q.shape)), key \(describeShape(k.shape)) and value \(describeShape(v.shape)) differ in batch or length")
        }
        guard q.shape[2] % qHeads == 0, k.shape[2] % kvHeads == 0, v.shape[2] % kvHeads == 0,
              q.shape[2] / qHeads == k.shape[2] / kvHeads else {
            throw OpError("\(op): query \(describeShape(q.shape)) / key \(describeShape(k.shape)) / value \(describeShape(v.shape)) do not split into \(qHeads) query and \(kvHeads) key/value heads of one key size")
        }
        let dk = q.shape[2] / qHeads, dv = v.shape[2] / kvHeads, group = qHeads / kvHeads
        let state = try Tensor.uninitialized(.float32, [batch, kvHeads, dk, dv])
        let sp = state.pointer(Float.self)
        var past: Tensor? = nil
        if let p = inputs.optional(3) {
            past = try floatInput(p, op, "past_state")
            guard p.shape == [batch, kvHeads, dk, dv] else {
                throw OpError("\(op): past_state must be (batch \(batch), kv heads \(kvHeads), d_k \(dk), d_v \(dv)), got \(describeShape(p.shape))")
            }
            sp.update(from: past!.pointer(Float.self), count: state.count)
        } else {
            sp.update(repeating: 0, count: state.count)
        }
        // decay: per key dimension (heads * d_k) or per head; beta: per head or one per position
        var decay: Tensor? = nil, beta: Tensor? = nil
        var decayPerDim = false, betaPerHead = false
        if gated {
            guard let g = inputs.optional(4) else { throw OpError("\(op): update_rule '\(rule)' needs the decay input") }
            decay = try floatInput(g, op, "decay")
            guard g.rank == 3, g.shape[0] == batch, g.shape[1] == length, g.shape[2] == kvHeads * dk || g.shape[2] == kvHeads else {
                throw OpError("\(op): decay must be (batch \(batch), length \(length), \(kvHeads * dk) or \(kvHeads)), got \(describeShape(g.shape))")
            }
            decayPerDim = g.shape[2] == kvHeads * dk && dk != 1
        }
        if delta {
            guard let b = inputs.optional(5) else { throw OpError("\(op): update_rule '\(rule)' needs the beta input") }
            beta = try floatInput(b, op, "beta")
            guard b.rank == 3, b.shape[0] == batch, b.shape[1] == length, b.shape[2] == kvHeads || b.shape[2] == 1 else {
                throw OpError("\(op): beta must be (batch \(batch), length \(length), \(kvHeads) or 1), got \(describeShape(b.shape))")
            }
            betaPerHead = b.shape[2] == kvHeads && kvHeads != 1
        }
        let scale = scaleAttr ?? 1 / Float(dk).squareRoot()
        let y = try Tensor.uninitialized(.float32, [batch, length, qHeads * dv])
        let qp = q.pointer(Float.self), kp = k.pointer(Float.self), vp = v.pointer(Float.self), yp = y.pointer(Float.self)
        let gp = decay?.pointer(Float.self), bp = beta?.pointer(Float.self)
        let gWidth = decayPerDim ? kvHeads * dk : kvHeads, bWidth = betaPerHead ? kvHeads : 1
        var diff = [Float](repeating: 0, count: dv)
        withExtendedLifetime((q, k, v, past, decay, beta)) {
            diff.withUnsafeMutableBufferPointer { db in
                let d = db.baseAddress!
                for b in 0..<batch {
                    for t in 0..<length {
                        let bt = b * length + t
                        for h in 0..<kvHeads {
                            let s = sp + (b * kvHeads + h) * dk * dv
                            let kt = kp + bt * kvHeads * dk + h * dk, vt = vp + bt * kvHeads * dv + h * dv
                            if let gp {
                                for i in 0..<dk {
                                    let e = Foundation.exp(gp[bt * gWidth + (decayPerDim ? h * dk + i : h)])
                                    let row = s + i * dv
                                    for j in 0..<dv { row[j] *= e }
                                }
                            }
                            if let bp {
                                let bet = bp[bt * bWidth + (betaPerHead ? h : 0)]
                                // beta (v - S^T k) with the (decayed) state
                                for j in 0..<dv { d[j] = 0 }
                                for i in 0..<dk {
                                    let ki = kt[i], row = s + i * dv
                                    for j in 0..<dv { d[j] += row[j] * ki }
                                }
                                for j in 0..<dv { d[j] = bet * (vt[j] - d[j]) }
                            } else {
                                for j in 0..<dv { d[j] = vt[j] }
                            }
                            for i in 0..<dk {
                                let ki = kt[i], row = s + i * dv
                                for j in 0..<dv { row[j] += ki * d[j] }
                            }
                            // the query heads of this state: o = scale * S^T q
                            for g in 0..<group {
                                let hq = h * group + g
                                let qt = qp + bt * qHeads * dk + hq * dk, out = yp + bt * qHeads * dv + hq * dv
                                for j in 0..<dv { out[j] = 0 }
                                for i in 0..<dk {
                                    let qi = qt[i], row = s + i * dv
                                    for j in 0..<dv { out[j] += qi * row[j] }
                                }
                                for j in 0..<dv { out[j] *= scale }
                            }
                        }
                    }
                }
            }
        }
        return [try y.converted(to: q0.dtype), try state.converted(to: q0.dtype)]
    }
}
