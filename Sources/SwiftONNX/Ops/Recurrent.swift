/// Recurrent ops: RNN, GRU, LSTM (all opsets; layout from 14). Computed in float32
/// (float16 / bfloat16 / float64 inputs are converted in and out).
func registerRecurrentOps(_ r: inout OpRegistry) {
    let infer = Inference(inferRecurrent)
    r.register("RNN", infer: infer, closure: { ctx in try buildRecurrent(ctx, .rnn) })
    r.register("GRU", infer: infer, closure: { ctx in try buildRecurrent(ctx, .gru) })
    r.register("LSTM", infer: infer, closure: { ctx in try buildRecurrent(ctx, .lstm) })
}

/// Y is [seq, directions, batch, hidden] (layout 1: [batch, seq, directions, hidden]); Y_h and Y_c are
/// [directions, batch, hidden] (layout 1: [batch, directions, hidden]).
fileprivate func inferRecurrent(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let dt = ins.dtype(0)
    let layout = ctx.opset >= 14 ? try ctx.int("layout", default: 0) : 0
    let dirs = try ctx.string("direction", default: "forward") == "bidirectional" ? 2 : 1
    guard let x = ins.shape(0), x.count == 3, let hidden = try ctx.int("hidden_size") else {
        return Array(repeating: TypeInfo(dtype: dt, shape: nil), count: 3)
    }
    let (seq, batch) = layout == 0 ? (x[0], x[1]) : (x[1], x[0])
    let h: Dim = .known(hidden), d: Dim = .known(dirs)
    let y: [Dim] = layout == 0 ? [seq, d, batch, h] : [batch, seq, d, h]
    let state: [Dim] = layout == 0 ? [d, batch, h] : [batch, d, h]
    return [TypeInfo(dtype: dt, shape: y), TypeInfo(dtype: dt, shape: state), TypeInfo(dtype: dt, shape: state)]
}

fileprivate enum RecurrentKind {
    case rnn, gru, lstm
    var gates: Int { switch self { case .rnn: return 1; case .gru: return 3; case .lstm: return 4 } }
    var name: String { switch self { case .rnn: return "RNN"; case .gru: return "GRU"; case .lstm: return "LSTM" } }
    var defaultActivations: [String] {
        switch self {
        case .rnn: return ["Tanh"]
        case .gru: return ["Sigmoid", "Tanh"]
        case .lstm: return ["Sigmoid", "Tanh", "Tanh"]
        }
    }
}

/// Parses `activations` with `activation_alpha` / `activation_beta`: each function that takes alpha
/// (beta) consumes the next entry of that list, or gets its default when the list is exhausted.
fileprivate func parseActivations(_ ctx: OpContext, kind: RecurrentKind, numDirections: Int) throws -> [RNNActivation] {
    let perDir = kind.defaultActivations.count
    var names = try ctx.strings("activations") ?? []
    if names.isEmpty { names = Array(repeating: kind.defaultActivations, count: numDirections).flatMap { $0 } }
    if names.count == perDir && numDirections == 2 { names += names }
    guard names.count == perDir * numDirections else {
        throw ctx.attributeError("activations", "needs \(perDir * numDirections) functions for \(numDirections) direction(s), got \(names.count)")
    }
    let alphas = try ctx.floats("activation_alpha") ?? []
    let betas = try ctx.floats("activation_beta") ?? []
    var ai = 0, bi = 0
    var result: [RNNActivation] = []
    for n in names {
        guard let k = RNNActivation.kind(named: n) else {
            throw ctx.attributeError("activations", "unsupported activation function '\(n)'")
        }
        var (a, b) = RNNActivation.defaults(k)
        let use = RNNActivation.usage(k)
        if use.alpha, ai < alphas.count { a = alphas[ai]; ai += 1 }
        if use.beta, bi < betas.count { b = betas[bi]; bi += 1 }
        result.append(RNNActivation(kind: k, alpha: a, beta: b))
    }
    return result
}

/// A float32 copy of `t` with its first two axes swapped ([a, b, ...] -> [b, a, ...]).
fileprivate func swapLeadingAxes(_ t: Tensor) throws -> Tensor {
    let a = t.shape[0], b = t.shape[1]
    let inner = t.shape.dropFirst(2).reduce(1, *)
    var shape = t.shape
    shape.swapAt(0, 1)
    let out = try Tensor.uninitialized(.float32, shape)
    let src = t.pointer(Float.self), dst = out.pointer(Float.self)
    if inner > 0 {
        for i in 0..<a { for j in 0..<b { (dst + (j * a + i) * inner).update(from: src + (i * b + j) * inner, count: inner) } }
    }
    return out
}

fileprivate func toFloat32(_ t: Tensor, _ op: String) throws -> Tensor {
    switch t.dtype {
    case .float32: return t
    case .float16, .float64, .bfloat16: return try t.converted(to: .float32)
    default: throw ONNXError.unsupportedType("\(op): element type \(t.dtype) (expected a floating-point type)")
    }
}

fileprivate func buildRecurrent(_ ctx: OpContext, _ kind: RecurrentKind)
    throws -> OpBody {
    let op = kind.name
    let direction = try ctx.string("direction", default: "forward")
    guard ["forward", "reverse", "bidirectional"].contains(direction) else {
        throw ctx.attributeError("direction", "must be forward, reverse or bidirectional, got '\(direction)'")
    }
    let numDir = direction == "bidirectional" ? 2 : 1
    let hiddenAttr = try ctx.int("hidden_size")
    if let h = hiddenAttr, h <= 0 { throw ctx.attributeError("hidden_size", "must be positive, got \(h)") }
    let clip = try ctx.float("clip")
    if let c = clip, !(c > 0) { throw ctx.attributeError("clip", "must be positive, got \(c)") }
    let layout = ctx.opset >= 14 ? try ctx.int("layout", default: 0) : 0
    guard layout == 0 || layout == 1 else { throw ctx.attributeError("layout", "must be 0 or 1, got \(layout)") }
    let linearBeforeReset = try ctx.int("linear_before_reset", default: 0) != 0
    let inputForget = try ctx.int("input_forget", default: 0) != 0
    let acts = try parseActivations(ctx, kind: kind, numDirections: numDir)
    let perDir = kind.defaultActivations.count
    let G = kind.gates
    let wantY = ctx.hasOutput(0)

    return { inputs, _ in
        let xIn = try inputs.required(0, "X")
        let dtype = xIn.dtype
        guard xIn.rank == 3 else { throw OpError("\(op): X must have rank 3, got shape \(describeShape(xIn.shape))") }
        var x = try toFloat32(xIn, op)
        if layout == 1 { x = try swapLeadingAxes(x) }
        let seq = x.shape[0], batch = x.shape[1], inSize = x.shape[2]
        let w = try toFloat32(try inputs.required(1, "W"), op)
        let r = try toFloat32(try inputs.required(2, "R"), op)
        guard r.rank == 3, r.shape[0] == numDir, r.shape[1] % G == 0, r.shape[1] / G == r.shape[2] else {
            throw OpError("\(op): R must have shape [\(numDir), \(G)*hidden, hidden], got \(describeShape(r.shape))")
        }
        let H = r.shape[2]
        if let h = hiddenAttr, h != H { throw OpError("\(op): hidden_size is \(h) but R has shape \(describeShape(r.shape))") }
        guard w.shape == [numDir, G * H, inSize] else {
            throw OpError("\(op): W must have shape [\(numDir), \(G * H), \(inSize)], got \(describeShape(w.shape))")
        }
        var bias: Tensor? = nil
        if let bt = inputs.optional(3) {
            bias = try toFloat32(bt, op)
            guard bt.shape == [numDir, 2 * G * H] else {
                throw OpError("\(op): B must have shape [\(numDir), \(2 * G * H)], got \(describeShape(bt.shape))")
            }
        }
        var lens = [Int](repeating: seq, count: batch)
        if let sl = inputs.optional(4) {
            let v = try sl.readAsInts()
            guard v.count == batch else { throw OpError("\(op): sequence_lens has \(v.count) entries, batch size is \(batch)") }
            for (b, l) in v.enumerated() {
                guard l >= 0 && l <= seq else { throw OpError("\(op): sequence_lens[\(b)] = \(l) is outside [0, \(seq)]") }
                lens[b] = l
            }
        }
        func state(_ i: Int, _ what: String) throws -> Tensor? {
            guard let t = inputs.optional(i) else { return nil }
            var s = try toFloat32(t, op)
            let expect = layout == 0 ? [numDir, batch, H] : [batch, numDir, H]
            guard s.shape == expect else {
                throw OpError("\(op): \(what) must have shape \(describeShape(expect)), got \(describeShape(s.shape))")
            }
            if layout == 1 { s = try swapLeadingAxes(s) }
            return s
        }
        let h0 = try state(5, "initial_h")
        let c0 = kind == .lstm ? try state(6, "initial_c") : nil
        var peep: Tensor? = nil
        if kind == .lstm, let pt = inputs.optional(7) {
            peep = try toFloat32(pt, op)
            guard pt.shape == [numDir, 3 * H] else {
                throw OpError("\(op): P must have shape [\(numDir), \(3 * H)], got \(describeShape(pt.shape))")
            }
        }

        let dims = RecurrentShape(seq: seq, batch: batch, input: inSize, hidden: H)
        let y: Tensor? = wantY ? try Tensor.zeros(.float32, [seq, numDir, batch, H]) : nil
        let yh = try Tensor.uninitialized(.float32, [numDir, batch, H])
        let yc = try Tensor.uninitialized(.float32, [numDir, batch, H])
        let xp = UnsafePointer(x.pointer(Float.self))
        for d in 0..<numDir {
            let reverse = direction == "reverse" || d == 1
            let wp = UnsafePointer(w.pointer(Float.self) + d * G * H * inSize)
            let rp = UnsafePointer(r.pointer(Float.self) + d * G * H * H)
            let bp = bias.map { UnsafePointer($0.pointer(Float.self) + d * 2 * G * H) }
            let h0p = h0.map { UnsafePointer($0.pointer(Float.self) + d * batch * H) }
            let yp = y.map { $0.pointer(Float.self) + d * batch * H }
            let ts = numDir * batch * H
            let hOut = yh.pointer(Float.self) + d * batch * H
            let a = Array(acts[(d * perDir)..<((d + 1) * perDir)])
            switch kind {
            case .rnn:
                rnnDirectionF32(dims, x: xp, w: wp, r: rp, bias: bp, h0: h0p, lens: lens, reverse: reverse,
                                clip: clip, f: a[0], y: yp, yTimeStride: ts, hOut: hOut)
            case .gru:
                gruDirectionF32(dims, x: xp, w: wp, r: rp, bias: bp, h0: h0p, lens: lens, reverse: reverse,
                                clip: clip, linearBeforeReset: linearBeforeReset, f: a[0], g: a[1],
                                y: yp, yTimeStride: ts, hOut: hOut)
            case .lstm:
                let c0p = c0.map { UnsafePointer($0.pointer(Float.self) + d * batch * H) }
                let pp = peep.map { UnsafePointer($0.pointer(Float.self) + d * 3 * H) }
                lstmDirectionF32(dims, x: xp, w: wp, r: rp, bias: bp, peepholes: pp, h0: h0p, c0: c0p,
                                 lens: lens, reverse: reverse, clip: clip, inputForget: inputForget,
                                 f: a[0], g: a[1], h: a[2], y: yp, yTimeStride: ts,
                                 hOut: hOut, cOut: yc.pointer(Float.self) + d * batch * H)
            }
        }
        withExtendedLifetime((x, w, r, bias, h0, c0, peep)) {}

        // Back to the caller's layout and element type.
        var outY = try y ?? Tensor.zeros(dtype, [0])
        var outH = yh, outC = yc
        if layout == 1 {
            if let yv = y {
                // [seq, dir, batch, H] -> [batch, seq, dir, H]
                let t = try Tensor.uninitialized(.float32, [batch, seq, numDir, H])
                let s = yv.pointer(Float.self), dp = t.pointer(Float.self)
                for ti in 0..<seq { for d in 0..<numDir { for b in 0..<batch {
                    (dp + ((b * seq + ti) * numDir + d) * H).update(from: s + ((ti * numDir + d) * batch + b) * H, count: H)
                } } }
                outY = t
            }
            outH = try swapLeadingAxes(yh)
            outC = try swapLeadingAxes(yc)
        }
        if dtype != .float32 {
            if y != nil { outY = try outY.converted(to: dtype) }
            outH = try outH.converted(to: dtype)
            if kind == .lstm { outC = try outC.converted(to: dtype) }
        }
        return kind == .lstm ? [outY, outH, outC] : [outY, outH]
    }
}
