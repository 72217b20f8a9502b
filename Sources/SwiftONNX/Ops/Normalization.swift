import Foundation

/// Normalization ops.
func registerNormalizationOps(_ r: inout OpRegistry) {
    r.register("BatchNormalization", infer: Inference { ctx, ins in
        // Training outputs (running or saved mean and variance) are per channel.
        let stats = TypeInfo(dtype: ins.dtype(3) ?? ins.dtype(0), shape: ins.shape(0).flatMap { $0.count >= 2 ? [$0[1]] : nil })
        return [ins.at(0).type] + Array(repeating: stats, count: max(ctx.outputCount - 1, 0))
    }, closure: makeBatchNorm)
    r.register("InstanceNormalization", infer: .sameAsFirst, closure: makeInstanceNorm)
    r.register("LayerNormalization", infer: Inference { ctx, ins in
        // Mean and InvStdDev keep the leading dims and set the normalized ones to 1.
        guard let x = ins.shape(0) else { return [ins.at(0).type] }
        var axis = try ctx.int("axis", default: -1)
        if axis < 0 { axis += x.count }
        guard axis >= 0 && axis <= x.count else { return [ins.at(0).type] }
        let stats = TypeInfo(dtype: .float32, shape: Array(x[..<axis]) + Array(repeating: .known(1), count: x.count - axis))
        return [ins.at(0).type, stats, stats]
    }, closure: makeLayerNorm)
    r.register("GroupNormalization", infer: .sameAsFirst, closure: makeGroupNorm)
    r.register("LRN", infer: .sameAsFirst, closure: makeLRN)
    r.register("LpNormalization", infer: .sameAsFirst, closure: makeLpNorm)
    r.register("MeanVarianceNormalization", infer: .sameAsFirst, closure: makeMVN)
    r.register("RMSNormalization", infer: .sameAsFirst, closure: makeRMSNorm)
    registerContribNormalizations(&r)
    r.rewrite(.cleanup, FuseNormalizationFormulas())   // before the fusions take its Mul / Add / Div
    r.register(FuseChannelAffine.opType, domain: "com.swiftonnx", infer: .sameAsFirst, closure: makeChannelAffine)
    r.rewrite(.fuse, FuseChannelAffine())
}

/// Converts a float-typed tensor to float32 for computation, or throws for other types.
private func asF32(_ t: Tensor, _ op: String, _ what: String = "X") throws -> Tensor {
    guard t.dtype.isFloatingPoint else {
        throw ONNXError.unsupportedType("\(op): \(what) has element type \(t.dtype) (expected a float type)")
    }
    return try t.converted(to: .float32)
}

/// Reads a per-channel parameter as float32 values, checking its length.
private func params(_ t: Tensor, _ n: Int, _ op: String, _ what: String) throws -> [Float] {
    guard t.count == n else { throw OpError("\(op): \(what) has \(t.count) elements \(describeShape(t.shape)), expected \(n)") }
    return try asF32(t, op, what).scalars(as: Float.self)
}

private func makeBatchNorm(_ ctx: OpContext) throws -> OpBody {
    let eps = Double(try ctx.float("epsilon", default: 1e-5))
    let momentum = Double(try ctx.float("momentum", default: 0.9))
    let training: Bool
    if ctx.opset >= 14 {
        training = try ctx.int("training_mode", default: 0) != 0
    } else if ctx.opset < 7 {
        training = try ctx.int("is_test", default: 0) == 0 && ctx.outputCount > 1
    } else {
        training = ctx.outputCount > 1
    }
    let legacyOutputs = ctx.opset < 14
    let outputCount = ctx.outputCount
    return { inputs, _ in
        let x0 = try inputs.required(0, "X")
        guard x0.rank >= 2 else { throw OpError("BatchNormalization: X must have rank >= 2, got \(describeShape(x0.shape))") }
        let x = try asF32(x0, "BatchNormalization")
        let n = x.shape[0], c = x.shape[1]
        let size = x.shape.dropFirst(2).reduce(1, *)
        let y = try Tensor.uninitialized(.float32, x.shape)
        let xp = x.pointer(Float.self), yp = y.pointer(Float.self)
        let sT = try inputs.required(1, "scale"), bT = try inputs.required(2, "B")
        let mT = try inputs.required(3, "mean"), vT = try inputs.required(4, "var")
        // Opsets < 9 with spatial=0 give one parameter per (channel, position).
        if !training && sT.count == c * size && size > 1 && sT.count != c {
            let s = try params(sT, c * size, "BatchNormalization", "scale"), b = try params(bT, c * size, "BatchNormalization", "B")
            let m = try params(mT, c * size, "BatchNormalization", "mean"), v = try params(vT, c * size, "BatchNormalization", "var")
            var a = [Float](repeating: 0, count: c * size), t = a
            for i in 0..<(c * size) {
                a[i] = Float(Double(s[i]) / (Double(v[i]) + eps).squareRoot())
                t[i] = b[i] - m[i] * a[i]
            }
            for bIdx in 0..<n {
                let xb = xp + bIdx * c * size, yb = yp + bIdx * c * size
                for i in 0..<(c * size) { yb[i] = xb[i] * a[i] + t[i] }
            }
            return [try y.converted(to: x0.dtype)]
        }
        let s = try params(sT, c, "BatchNormalization", "scale"), b = try params(bT, c, "BatchNormalization", "B")
        let m = try params(mT, c, "BatchNormalization", "mean"), v = try params(vT, c, "BatchNormalization", "var")
        var useMean = m.map(Double.init), useVar = v.map(Double.init)
        var batchMean = [Double](repeating: 0, count: c), batchVar = batchMean
        if training {
            for ch in 0..<c {
                let st = meanVarianceStridedF32(xp + ch * size, groups: n, len: size, gap: c * size)
                batchMean[ch] = st.mean; batchVar[ch] = st.variance
            }
            useMean = batchMean; useVar = batchVar
        }
        let (a, t) = batchNormAffine(scale: s, bias: b, mean: useMean, variance: useVar, epsilon: eps)
        if y.count > 0 {
            a.withUnsafeBufferPointer { ap in t.withUnsafeBufferPointer { tp in
                channelAffineF32(xp, yp, planes: n * c, channels: c, size: size, a: ap.baseAddress!, b: tp.baseAddress!)
            }}
        }
        var outs = [try y.converted(to: x0.dtype)]
        if outputCount > 1 {
            func vec(_ d: [Double]) throws -> Tensor { try Tensor(validShape: [c], scalars: d.map { Float($0) }).converted(to: mT.dtype) }
            let runMean = (0..<c).map { Double(m[$0]) * momentum + batchMean[$0] * (1 - momentum) }
            let runVar = (0..<c).map { Double(v[$0]) * momentum + batchVar[$0] * (1 - momentum) }
            if training {
                outs.append(try vec(runMean)); outs.append(try vec(runVar))
                if legacyOutputs { outs.append(try vec(batchMean)); outs.append(try vec(batchVar)) }
            } else {
                outs.append(mT); outs.append(vT)
                if legacyOutputs { outs.append(mT); outs.append(vT) }
            }
        }
        return outs
    }
}

/// com.swiftonnx::ChannelAffine(X, scale, bias), attributes activation / activation_params:
/// y = act(x * scale[c] + bias[c]) over X laid out (N, C, ...), one pass (what BatchNormalization
/// and the per-channel Mul / Add / activation after it become, see FuseChannelAffine).
private func makeChannelAffine(_ ctx: OpContext) throws -> OpBody {
    let act = try parseActivation(ctx)
    let (kind, alpha, beta) = act.kernelCode
    return { inputs, env in
        let x = try inputs.required(0, "X")
        let s = try inputs.required(1, "scale"), b = try inputs.required(2, "bias")
        guard x.dtype == .float32, s.dtype == .float32, b.dtype == .float32 else {
            throw OpError("ChannelAffine: X, scale and bias must be float32, got \(x.dtype), \(s.dtype), \(b.dtype)")
        }
        guard x.rank >= 2 else { throw OpError("ChannelAffine: X must have rank >= 2, got \(describeShape(x.shape))") }
        let n = x.shape[0], c = x.shape[1]
        guard s.count == c, b.count == c else {
            throw OpError("ChannelAffine: scale and bias need \(c) values for X \(describeShape(x.shape)), got \(s.count) and \(b.count)")
        }
        let size = x.shape.dropFirst(2).reduce(1, *)
        let y = try Tensor.uninitialized(.float32, x.shape)
        let planes = n * c
        if planes * size == 0 { return [y] }
        let xp = UnsafePointer(x.pointer(Float.self)), yp = y.pointer(Float.self)
        let sp = UnsafePointer(s.pointer(Float.self)), bp = UnsafePointer(b.pointer(Float.self))
        let chunks = env.threads > 1 && planes * size >= 1 << 16 ? min(env.threads, planes) : 1
        let affine = f32ChannelAffineKernel, unary = f32UnaryKernel
        parallelFor(chunks, threads: env.threads) { t in
            let lo = planes * t / chunks, hi = planes * (t + 1) / chunks
            for p in lo..<hi {
                let ch = p % c
                affine(xp + p * size, yp + p * size, 1, 1, size, sp + ch, bp + ch)
                if act != .none { unary(kind, yp + p * size, yp + p * size, size, alpha, beta) }
            }
        }
        return [y]
    }
}

private func makeInstanceNorm(_ ctx: OpContext) throws -> OpBody {
    let eps = Double(try ctx.float("epsilon", default: 1e-5))
    return { inputs, _ in
        let x0 = try inputs.required(0, "input")
        guard x0.rank >= 2 else { throw OpError("InstanceNormalization: input must have rank >= 2, got \(describeShape(x0.shape))") }
        let x = try asF32(x0, "InstanceNormalization")
        let n = x.shape[0], c = x.shape[1]
        let size = x.shape.dropFirst(2).reduce(1, *)
        let s = try params(try inputs.required(1, "scale"), c, "InstanceNormalization", "scale")
        let b = try params(try inputs.required(2, "B"), c, "InstanceNormalization", "B")
        let y = try Tensor.uninitialized(.float32, x.shape)
        let xp = x.pointer(Float.self), yp = y.pointer(Float.self)
        var a = [Float](repeating: 0, count: n * c), t = a
        for p in 0..<(n * c) {
            let ch = p % c
            let st = meanVarianceF32(xp + p * size, size)
            let ad = Double(s[ch]) / (st.variance + eps).squareRoot()
            a[p] = Float(ad); t[p] = Float(Double(b[ch]) - st.mean * ad)
        }
        if y.count > 0 {
            a.withUnsafeBufferPointer { ap in t.withUnsafeBufferPointer { tp in
                channelAffineF32(xp, yp, planes: n * c, channels: n * c, size: size, a: ap.baseAddress!, b: tp.baseAddress!)
            }}
        }
        return [try y.converted(to: x0.dtype)]
    }
}

/// Expands a tensor broadcastable (numpy rules) to `shape` into a float32 array.
private func expandF32(_ t: Tensor, to shape: [Int], _ op: String, _ what: String) throws -> [Float] {
    let f = try asF32(t, op, what)
    guard t.rank <= shape.count, (try? broadcastShapes(t.shape, shape)) == shape else {
        throw OpError("\(op): \(what) of shape \(describeShape(t.shape)) does not broadcast to \(describeShape(shape))")
    }
    let src = f.pointer(Float.self)
    var out = [Float](repeating: 0, count: shape.reduce(1, *))
    out.withUnsafeMutableBufferPointer { o in
        forEachStrided(shape, broadcastStrides(t.shape, to: shape)) { i, s in o[i] = src[s] }
    }
    return out
}

private func makeLayerNorm(_ ctx: OpContext) throws -> OpBody {
    let axisAttr = try ctx.int("axis", default: -1)
    let eps = Double(try ctx.float("epsilon", default: 1e-5))
    let stash = try ctx.int("stash_type", default: 1)
    guard stash == 1 || stash == 11 || stash == 16 || stash == 10 else {
        throw ctx.attributeError("stash_type", "unsupported value \(stash)")
    }
    let nOut = ctx.outputCount
    return { inputs, _ in
        let x0 = try inputs.required(0, "X")
        let axis = try normalizeAxis(axisAttr, rank: x0.rank)
        let x = try asF32(x0, "LayerNormalization")
        let normShape = Array(x.shape[axis...])
        let rows = x.shape[..<axis].reduce(1, *), cols = normShape.reduce(1, *)
        // Scale and B as float32 rows of the normalized shape: read in place when they are that already
        // (the usual 1-D weights), else broadcast into a copy.
        func row(_ t: Tensor, _ what: String) throws -> Tensor {
            if t.dtype == .float32 && t.shape == normShape { return t }
            return Tensor(validShape: normShape, scalars: try expandF32(t, to: normShape, "LayerNormalization", what))
        }
        let scale = try row(try inputs.required(1, "Scale"), "Scale")
        let bias = try inputs.optional(2).map { try row($0, "B") }
        let y = try Tensor.uninitialized(.float32, x.shape)
        let statShape = Array(x.shape[..<axis]) + [Int](repeating: 1, count: x.rank - axis)
        let mean = nOut > 1 ? try Tensor.uninitialized(.float32, statShape) : nil
        let inv = nOut > 2 ? try Tensor.uninitialized(.float32, statShape) : nil
        layerNormF32(x.pointer(Float.self), y.pointer(Float.self), rows: rows, cols: cols, scale: scale.pointer(Float.self),
                     bias: bias.map { UnsafePointer($0.pointer(Float.self)) }, epsilon: eps,
                     meanOut: mean?.pointer(Float.self), invStdOut: inv?.pointer(Float.self))
        var outs = [try y.converted(to: x0.dtype)]
        if let mean { outs.append(try mean.converted(to: x0.dtype)) }
        if let inv { outs.append(try inv.converted(to: x0.dtype)) }
        return outs
    }
}

private func makeGroupNorm(_ ctx: OpContext) throws -> OpBody {
    guard let groups = try ctx.int("num_groups"), groups > 0 else { throw ctx.attributeError("num_groups", "required positive attribute") }
    let eps = Double(try ctx.float("epsilon", default: 1e-5))
    let opset = ctx.opset
    return { inputs, _ in
        let x0 = try inputs.required(0, "X")
        guard x0.rank >= 2 else { throw OpError("GroupNormalization: X must have rank >= 2, got \(describeShape(x0.shape))") }
        let x = try asF32(x0, "GroupNormalization")
        let n = x.shape[0], c = x.shape[1]
        guard c % groups == 0 else { throw OpError("GroupNormalization: \(c) channels are not divisible by num_groups \(groups)") }
        let size = x.shape.dropFirst(2).reduce(1, *)
        let sT = try inputs.required(1, "scale"), bT = try inputs.required(2, "bias")
        let cpg = c / groups
        // Opset 18: one scale/bias per group; opset 21: one per channel.
        let perChannel = opset >= 21 ? true : (sT.count == c && sT.count != groups)
        let s = try params(sT, perChannel ? c : groups, "GroupNormalization", "scale")
        let b = try params(bT, perChannel ? c : groups, "GroupNormalization", "bias")
        let y = try Tensor.uninitialized(.float32, x.shape)
        let xp = x.pointer(Float.self), yp = y.pointer(Float.self)
        var a = [Float](repeating: 0, count: n * c), t = a
        for bi in 0..<n {
            for g in 0..<groups {
                let st = meanVarianceF32(xp + (bi * c + g * cpg) * size, cpg * size)
                let inv = 1 / (st.variance + eps).squareRoot()
                for k in 0..<cpg {
                    let ch = g * cpg + k
                    let sc = Double(perChannel ? s[ch] : s[g]), bb = Double(perChannel ? b[ch] : b[g])
                    a[bi * c + ch] = Float(sc * inv)
                    t[bi * c + ch] = Float(bb - st.mean * sc * inv)
                }
            }
        }
        if y.count > 0 {
            a.withUnsafeBufferPointer { ap in t.withUnsafeBufferPointer { tp in
                channelAffineF32(xp, yp, planes: n * c, channels: n * c, size: size, a: ap.baseAddress!, b: tp.baseAddress!)
            }}
        }
        return [try y.converted(to: x0.dtype)]
    }
}

private func makeLRN(_ ctx: OpContext) throws -> OpBody {
    guard let size = try ctx.int("size"), size > 0 else { throw ctx.attributeError("size", "required positive attribute") }
    let alpha = try ctx.float("alpha", default: 1e-4), beta = try ctx.float("beta", default: 0.75)
    let bias = try ctx.float("bias", default: 1)
    return { inputs, _ in
        let x0 = try inputs.required(0, "X")
        guard x0.rank >= 2 else { throw OpError("LRN: X must have rank >= 2, got \(describeShape(x0.shape))") }
        let x = try asF32(x0, "LRN")
        let y = try Tensor.uninitialized(.float32, x.shape)
        if y.count > 0 {
            lrnF32(x.pointer(Float.self), y.pointer(Float.self), n: x.shape[0], c: x.shape[1],
                   size: x.shape.dropFirst(2).reduce(1, *), window: size, alpha: alpha, beta: beta, bias: bias)
        }
        return [try y.converted(to: x0.dtype)]
    }
}

private func makeLpNorm(_ ctx: OpContext) throws -> OpBody {
    let axisAttr = try ctx.int("axis", default: -1)
    let p = try ctx.int("p", default: 2)
    guard p == 1 || p == 2 else { throw ctx.attributeError("p", "must be 1 or 2, got \(p)") }
    return { inputs, _ in
        let x0 = try inputs.required(0, "input")
        let axis = try normalizeAxis(axisAttr, rank: x0.rank, scalarAllowed: true)
        let x = try asF32(x0, "LpNormalization")
        let y = try Tensor.uninitialized(.float32, x.shape)
        let outer = x.shape[..<axis].reduce(1, *), len = x.rank == 0 ? 1 : x.shape[axis]
        let inner = x.rank == 0 ? 1 : x.shape[(axis + 1)...].reduce(1, *)
        let xp = x.pointer(Float.self), yp = y.pointer(Float.self)
        var norm = [Float](repeating: 0, count: inner)
        for o in 0..<outer {
            let base = o * len * inner
            for i in 0..<inner { norm[i] = 0 }
            for k in 0..<len {
                let row = xp + base + k * inner
                for i in 0..<inner { let v = row[i]; norm[i] += p == 1 ? abs(v) : v * v }
            }
            if p == 2 { for i in 0..<inner { norm[i] = norm[i].squareRoot() } }
            for k in 0..<len {
                let off = base + k * inner
                for i in 0..<inner { yp[off + i] = norm[i] == 0 ? 0 : xp[off + i] / norm[i] }
            }
        }
        return [try y.converted(to: x0.dtype)]
    }
}

private func makeMVN(_ ctx: OpContext) throws -> OpBody {
    let axesAttr = try ctx.ints("axes") ?? [0, 2, 3]
    return { inputs, _ in
        let x0 = try inputs.required(0, "X")
        let rank = x0.rank
        var reduce = [Bool](repeating: false, count: rank)
        for a in axesAttr { reduce[try normalizeAxis(a, rank: rank, "axes")] = true }
        let x = try asF32(x0, "MeanVarianceNormalization")
        // Map each element to its slot among the kept (non-reduced) axes.
        var keptStrides = [Int](repeating: 0, count: rank)
        var acc = 1
        for d in stride(from: rank - 1, through: 0, by: -1) where !reduce[d] { keptStrides[d] = acc; acc *= x.shape[d] }
        let kept = acc
        let groupSize = max(x.count / max(kept, 1), 1)
        let xp = x.pointer(Float.self)
        var sum = [Double](repeating: 0, count: kept), sq = sum
        forEachStrided(x.shape, keptStrides) { i, k in sum[k] += Double(xp[i]) }
        for k in 0..<kept { sum[k] /= Double(groupSize) }
        forEachStrided(x.shape, keptStrides) { i, k in let d = Double(xp[i]) - sum[k]; sq[k] += d * d }
        let denom = sq.map { Float(($0 / Double(groupSize)).squareRoot() + 1e-9) }
        let mean = sum.map { Float($0) }
        let y = try Tensor.uninitialized(.float32, x.shape)
        let yp = y.pointer(Float.self)
        forEachStrided(x.shape, keptStrides) { i, k in yp[i] = (xp[i] - mean[k]) / denom[k] }
        return [try y.converted(to: x0.dtype)]
    }
}

private func makeRMSNorm(_ ctx: OpContext) throws -> OpBody {
    let axisAttr = try ctx.int("axis", default: -1)
    let eps = Double(try ctx.float("epsilon", default: 1e-5))
    return { inputs, _ in
        let x0 = try inputs.required(0, "X")
        let axis = try normalizeAxis(axisAttr, rank: x0.rank)
        let x = try asF32(x0, "RMSNormalization")
        let normShape = Array(x.shape[axis...])
        let rows = x.shape[..<axis].reduce(1, *), cols = normShape.reduce(1, *)
        // the scale read in place when it is float32 of the normalized shape already (the usual 1-D weight)
        let s0 = try inputs.required(1, "scale")
        let scale = s0.dtype == .float32 && s0.shape == normShape
            ? s0 : Tensor(validShape: normShape, scalars: try expandF32(s0, to: normShape, "RMSNormalization", "scale"))
        let y = try Tensor.uninitialized(.float32, x.shape)
        rmsNormF32(x.pointer(Float.self), y.pointer(Float.self), rows: rows, cols: cols, scale: scale.pointer(Float.self),
                   epsilon: eps, invStdOut: nil)
        return [try y.converted(to: x0.dtype)]
    }
}

// MARK: - rewrites owned by this family

/// Per-channel affine chains that no Conv absorbs become one com.swiftonnx::ChannelAffine pass
/// over the data, y = act(x * scale[c] + bias[c]):
/// - BatchNormalization in inference mode with constant parameters (what FoldBatchNormIntoConv
///   leaves: pre-activation BN as in DenseNet, BN after a Concat or a pooling) becomes
///   ChannelAffine with scale = s / sqrt(var + eps) and bias = B - mean * scale, computed as the
///   BatchNormalization kernel computes them, so the result is bit-identical;
/// - a ChannelAffine whose only reader is Mul or Add by a per-channel constant (Caffe2's
///   BN + scale layers) absorbs it (scale and bias multiplied, or bias shifted);
/// - a ChannelAffine whose only reader is an activation (Relu, Clip, ...) applies it.
struct FuseChannelAffine: GraphPass {
    let name = "fuse-channel-affine"
    static let opType = "ChannelAffine"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        var changed = false
        // 1. BatchNormalization -> ChannelAffine.
        let producers = graph.producers()
        for (i, bn) in graph.nodes.enumerated() where bn.opType == "BatchNormalization" && bn.isStandardDomain {
            // A BatchNormalization after a Conv is FoldBatchNormIntoConv's to fold.
            if let pi = producers[bn.inputs.first ?? ""], graph.nodes[pi].opType == "Conv" { continue }
            guard let (scale, bias) = inferenceAffine(bn, graph: graph, opsets: opsets) else { continue }
            let sName = uniqueName(graph, bn.outputs[0] + "_affine_scale")
            graph.initializers[sName] = scale
            let bName = uniqueName(graph, bn.outputs[0] + "_affine_bias")
            graph.initializers[bName] = bias
            graph.nodes[i] = Node(name: bn.name, opType: Self.opType, domain: FuseConvActivation.domain,
                                  inputs: [bn.inputs[0], sName, bName], outputs: [bn.outputs[0]], attributes: [:])
            changed = true
        }
        // 1b. A Mul or Add by a per-channel constant that no Conv absorbs (input normalization as
        // (x * s) + b, a learnable affine block after a pooling) starts a ChannelAffine when its only
        // reader is one more step it can absorb (alone it would save nothing).
        do {
            let uses = graph.useCounts()
            let outputs = graph.outputNames
            let readers = graph.readers()
            var started = Set<String>()
            for (i, n) in graph.nodes.enumerated() where (n.opType == "Mul" || n.opType == "Add") && n.isStandardDomain {
                guard n.inputs.count == 2, n.outputs.count == 1 else { continue }
                guard let k = (0..<2).first(where: { graph.initializers[n.inputs[$0]] == nil && graph.initializers[n.inputs[1 - $0]] != nil }) else { continue }
                // After an affine map (a converted BatchNormalization or a chain started here) step 2 absorbs it.
                if started.contains(n.inputs[k]) { continue }
                if let pi = producers[n.inputs[k]] {
                    let p = graph.nodes[pi]
                    if Self.isAffine(p) || p.opType == "BatchNormalization" { continue }
                    // the middle of a chain of constant Mul / Add: its start (or a BN before it) takes it
                    if (p.opType == "Mul" || p.opType == "Add") && p.inputs.contains(where: { graph.initializers[$0] != nil }) { continue }
                }
                guard
                      let start = standalone(n, x: n.inputs[k], constant: n.inputs[1 - k], graph: graph, producers: producers) else { continue }
                let y = n.outputs[0]
                guard uses[y] == 1, !outputs.contains(y), let ri = readers[y] else { continue }
                let next = graph.nodes[ri]
                let other = next.inputs.count == 2 ? next.inputs.first(where: { $0 != y }) : nil
                let absorbable = next.isStandardDomain && next.outputs.count == 1 && !next.hasSubgraph
                    && ((next.inputs.first == y && FuseConvActivation.activation(next, graph: graph) != nil)
                        || ((next.opType == "Mul" || next.opType == "Add") && other.map { graph.initializers[$0] != nil } == true))
                guard absorbable else { continue }
                let sName = uniqueName(graph, y + "_affine_scale")
                graph.initializers[sName] = start.0
                let bName = uniqueName(graph, y + "_affine_bias")
                graph.initializers[bName] = start.1
                graph.nodes[i] = Node(name: n.name, opType: Self.opType, domain: FuseConvActivation.domain,
                                      inputs: [n.inputs[k], sName, bName], outputs: [y], attributes: [:])
                started.insert(y)
                changed = true
            }
        }
        // 2. and 3. each ChannelAffine absorbs its only reader while that is a per-channel Mul/Add
        // or an activation. One walk with the use maps built once: an absorbed node keeps its
        // index until the end, and the value the chain now ends in has the absorbed node's readers.
        let uses = graph.useCounts()
        let outputs = graph.outputNames
        let readers = graph.readers()
        var absorbedNodes = Set<Int>()
        for ai in graph.nodes.indices where Self.isAffine(graph.nodes[ai]) && !absorbedNodes.contains(ai) {
            var fused = graph.nodes[ai]
            while true {
                let y = fused.outputs[0]
                guard uses[y] == 1, !outputs.contains(y), let ri = readers[y], ri != ai, !absorbedNodes.contains(ri) else { break }
                let next = graph.nodes[ri]
                guard next.isStandardDomain, next.outputs.count == 1, !next.hasSubgraph else { break }
                if fused.attributes["activation"] == nil, next.inputs.first == y, let (kind, params) = FuseConvActivation.activation(next, graph: graph) {
                    fused.attributes["activation"] = .string(kind)
                    fused.attributes["activation_params"] = .floats(params)
                } else if fused.attributes["activation"] == nil, next.opType == "Mul" || next.opType == "Add",
                          next.inputs.count == 2, let (s, b) = merged(fused, next, graph: graph) {
                    let sName = uniqueName(graph, next.outputs[0] + "_affine_scale")
                    graph.initializers[sName] = s
                    let bName = uniqueName(graph, next.outputs[0] + "_affine_bias")
                    graph.initializers[bName] = b
                    fused.inputs = [fused.inputs[0], sName, bName]
                } else {
                    break
                }
                fused.outputs = next.outputs
                absorbedNodes.insert(ri)
                changed = true
            }
            graph.nodes[ai] = fused
        }
        graph.removeNodes(at: absorbedNodes)
        if changed { graph.pruneUnusedInitializers() }
        return changed
    }

    /// (scale, bias) of Mul or Add of x by a per-channel float32 constant, when x has a known
    /// channel count and no Conv produces it (FoldConvAffine folds those into the weights).
    private func standalone(_ n: Node, x: String, constant: String, graph: Graph, producers: [String: Int]) -> (Tensor, Tensor)? {
        if let pi = producers[x], graph.nodes[pi].opType == "Conv" || graph.nodes[pi].opType == "FusedConv" { return nil }
        guard let info = graph.info(of: x), info.type == .float32,
              let shape = info.shape, shape.count >= 2, case .known(let c) = shape[1], c >= 1,
              let t = graph.initializers[constant], t.dtype == .float32,
              let per = perChannelConstant(t, channels: c, outputRank: shape.count) else { return nil }
        if n.opType == "Mul" {
            return (Tensor(validShape: [c], scalars: per), Tensor(validShape: [c], scalars: [Float](repeating: 0, count: c)))
        }
        return (Tensor(validShape: [c], scalars: [Float](repeating: 1, count: c)), Tensor(validShape: [c], scalars: per))
    }

    /// A ChannelAffine node (X, scale, bias) -> Y.
    static func isAffine(_ n: Node) -> Bool {
        n.opType == Self.opType && n.domain == FuseConvActivation.domain && n.outputs.count == 1 && n.inputs.count == 3
    }

    /// Known rank and float32 type of a value, else nil.
    private func float32Rank(_ graph: Graph, _ name: String) -> Int? {
        guard let v = graph.info(of: name), v.type == .float32, let s = v.shape else { return nil }
        return s.count
    }

    /// (scale, bias) of an inference-mode BatchNormalization with constant float32 parameters.
    private func inferenceAffine(_ bn: Node, graph: Graph, opsets: [String: Int]) -> (Tensor, Tensor)? {
        guard bn.inputs.count == 5, bn.outputs.count >= 1, !bn.outputs[0].isEmpty,
              bn.outputs.dropFirst().allSatisfy({ $0.isEmpty }) else { return nil }
        let opset = opsets[""] ?? 1
        if opset >= 14, case .int(let t)? = bn.attributes["training_mode"], t != 0 { return nil }
        if opset < 7, case .int(let t)? = bn.attributes["is_test"], t == 0 { return nil }
        if opset < 9, case .int(let sp)? = bn.attributes["spatial"], sp == 0 { return nil }
        guard let rank = float32Rank(graph, bn.inputs[0]), rank >= 2 else { return nil }
        let ps = bn.inputs[1...4].map { graph.initializers[$0] }
        guard let s = ps[0], let b = ps[1], let m = ps[2], let v = ps[3] else { return nil }
        let c = s.count
        guard c >= 1, [s, b, m, v].allSatisfy({ $0.dtype == .float32 && $0.rank == 1 && $0.count == c }) else { return nil }
        if let xs = graph.valueInfo[bn.inputs[0]]?.shape, case .known(let xc) = xs[1], xc != c { return nil }
        var eps: Float = 1e-5
        if case .float(let e)? = bn.attributes["epsilon"] { eps = e }
        let (a, t) = batchNormAffine(scale: Array(s.buffer(Float.self)), bias: Array(b.buffer(Float.self)),
                                     mean: m.buffer(Float.self).map(Double.init), variance: v.buffer(Float.self).map(Double.init),
                                     epsilon: Double(eps))
        return (Tensor(validShape: [c], scalars: a), Tensor(validShape: [c], scalars: t))
    }

    /// The affine map followed by Mul or Add with a per-channel constant, as one affine map.
    private func merged(_ affine: Node, _ next: Node, graph: Graph) -> (Tensor, Tensor)? {
        let y = affine.outputs[0]
        guard let k = next.inputs.firstIndex(of: y), next.inputs[1 - k] != y,
              let t = graph.initializers[next.inputs[1 - k]], t.dtype == .float32,
              let rank = float32Rank(graph, affine.inputs[0]), rank >= 2,
              let s0 = graph.initializers[affine.inputs[1]], let b0 = graph.initializers[affine.inputs[2]],
              let per = perChannelConstant(t, channels: s0.count, outputRank: rank) else { return nil }
        var s = Array(s0.buffer(Float.self)), b = Array(b0.buffer(Float.self))
        if next.opType == "Mul" {
            for c in 0..<s.count { s[c] *= per[c]; b[c] *= per[c] }
        } else {
            for c in 0..<s.count { b[c] += per[c] }
        }
        return (Tensor(validShape: [s.count], scalars: s), Tensor(validShape: [b.count], scalars: b))
    }
}

// MARK: - ONNX Runtime's normalizations (what its transformer optimizer emits)

/// The statistics outputs of a row normalization: the input's shape with its last dimension 1.
private func rowStatsType(_ ins: [InferenceInput]) -> TypeInfo {
    TypeInfo(dtype: .float32, shape: ins.shape(0).map { Array($0.dropLast()) + [.known(1)] })
}

private func registerContribNormalizations(_ r: inout OpRegistry) {
    let ms = "com.microsoft"
    // SkipLayerNormalization(input, skip, gamma, beta?, bias?) -> output, mean?, inv_std_var?, input_skip_bias_sum?
    r.register("SkipLayerNormalization", domain: ms, infer: Inference { _, ins in
        [ins.at(0).type, rowStatsType(ins), rowStatsType(ins), ins.at(0).type]
    }) { ctx in try makeSkipNorm(ctx, simplified: false) }
    // SkipSimplifiedLayerNormalization(input, skip, gamma, bias?) -> output, mean?, inv_std_var?, input_skip_bias_sum?
    r.register("SkipSimplifiedLayerNormalization", domain: ms, infer: Inference { _, ins in
        [ins.at(0).type, rowStatsType(ins), rowStatsType(ins), ins.at(0).type]
    }) { ctx in try makeSkipNorm(ctx, simplified: true) }
    // SimplifiedLayerNormalization(X, scale) -> Y, inv_std_var? (ONNX Runtime registers it in the ONNX
    // domain): RMS normalization over the axes from `axis` on.
    r.register("SimplifiedLayerNormalization", infer: Inference { ctx, ins in
        guard let x = ins.shape(0) else { return [ins.at(0).type, TypeInfo(dtype: .float32, shape: nil)] }
        var axis = try ctx.int("axis", default: -1)
        if axis < 0 { axis += x.count }
        guard axis >= 0 && axis <= x.count else { return [ins.at(0).type] }
        return [ins.at(0).type, TypeInfo(dtype: .float32, shape: Array(x[..<axis]) + Array(repeating: .known(1), count: x.count - axis))]
    }, closure: makeSimplifiedLayerNorm)
    // EmbedLayerNormalization(input_ids, segment_ids?, word_embedding, position_embedding,
    // segment_embedding?, gamma, beta, mask?, position_ids?) -> output, mask_index, embedding_sum?
    r.register("EmbedLayerNormalization", domain: ms, infer: Inference { _, ins in
        let ids = ins.shape(0), hidden = ins.shape(2)?.last
        let out = TypeInfo(dtype: ins.dtype(2), shape: ids.flatMap { s in hidden.map { s + [$0] } })
        return [out, TypeInfo(dtype: .int32, shape: ids.map { [$0[0]] }), out]
    }, closure: makeEmbedLayerNorm)
}

/// Scale (gamma), beta and bias of a contrib normalization: float32 vectors of the hidden size.
private func hiddenVector(_ t: Tensor?, _ hidden: Int, _ op: String, _ what: String) throws -> Tensor? {
    guard let t else { return nil }
    guard t.count == hidden, t.rank >= 1, t.shape.last == hidden else {
        throw OpError("\(op): \(what) is \(describeShape(t.shape)), expected \(hidden) values (the input's last dimension)")
    }
    return try asF32(t, op, what)
}

/// SkipLayerNormalization / SkipSimplifiedLayerNormalization: s = input + skip (+ bias), normalized
/// over the last dimension (LayerNorm with gamma and beta, or RMS with gamma). skip has the input's
/// shape or broadcasts to it (e.g. (1, S, H) or (S, H)). The optional outputs are the row mean (zero
/// for the simplified form, as ONNX Runtime writes it), 1/std and s itself.
private func makeSkipNorm(_ ctx: OpContext, simplified: Bool) throws -> OpBody {
    let op = simplified ? "SkipSimplifiedLayerNormalization" : "SkipLayerNormalization"
    let eps = Double(try ctx.float("epsilon", default: 1e-12))
    let wantMean = ctx.hasOutput(1), wantInv = ctx.hasOutput(2), wantSum = ctx.hasOutput(3)
    let nOut = ctx.outputCount
    return { inputs, _ in
        let x0 = try inputs.required(0, "input")
        guard x0.rank >= 1, let hidden = x0.shape.last else { throw OpError("\(op): input must have rank >= 1, got a scalar") }
        let x = try asF32(x0, op, "input")
        let skip0 = try inputs.required(1, "skip")
        let gamma = try hiddenVector(try inputs.required(2, "gamma"), hidden, op, "gamma")!
        let beta = simplified ? nil : try hiddenVector(inputs.optional(3), hidden, op, "beta")
        let bias = try hiddenVector(inputs.optional(simplified ? 3 : 4), hidden, op, "bias")
        let rows = hidden == 0 ? 0 : x.count / hidden
        // s = input + skip + bias (the order ONNX Runtime adds them in).
        let sum = try Tensor.uninitialized(.float32, x.shape)
        let xp = x.pointer(Float.self), sp = sum.pointer(Float.self)
        if skip0.shape == x.shape {
            let k = try asF32(skip0, op, "skip").pointer(Float.self)
            for i in 0..<x.count { sp[i] = xp[i] + k[i] }
        } else {
            let k = try expandF32(skip0, to: x.shape, op, "skip")
            for i in 0..<x.count { sp[i] = xp[i] + k[i] }
        }
        if let bias {
            let b = bias.pointer(Float.self)
            for r in 0..<rows { let row = sp + r * hidden; for i in 0..<hidden { row[i] += b[i] } }
        }
        let y = try Tensor.uninitialized(.float32, x.shape)
        let statShape = Array(x.shape.dropLast()) + [1]
        let mean = wantMean ? try Tensor.zeros(.float32, statShape) : nil
        let inv = wantInv ? try Tensor.uninitialized(.float32, statShape) : nil
        if simplified {
            rmsNormF32(sp, y.pointer(Float.self), rows: rows, cols: hidden, scale: gamma.pointer(Float.self),
                           epsilon: eps, invStdOut: inv?.pointer(Float.self))
        } else {
            layerNormF32(sp, y.pointer(Float.self), rows: rows, cols: hidden, scale: gamma.pointer(Float.self),
                         bias: beta.map { UnsafePointer($0.pointer(Float.self)) }, epsilon: eps,
                         meanOut: mean?.pointer(Float.self), invStdOut: inv?.pointer(Float.self))
        }
        var outs = [try y.converted(to: x0.dtype)]
        let empty = try Tensor.uninitialized(.float32, [0])
        if nOut > 1 { outs.append(mean ?? empty) }
        if nOut > 2 { outs.append(inv ?? empty) }
        if nOut > 3 { outs.append(wantSum ? try sum.converted(to: x0.dtype) : empty) }
        return outs
    }
}

private func makeSimplifiedLayerNorm(_ ctx: OpContext) throws -> OpBody {
    let op = "SimplifiedLayerNormalization"
    let axisAttr = try ctx.int("axis", default: -1)
    let eps = Double(try ctx.float("epsilon", default: 1e-5))
    let wantInv = ctx.hasOutput(1)
    return { inputs, _ in
        let x0 = try inputs.required(0, "X")
        let axis = try normalizeAxis(axisAttr, rank: x0.rank)
        let x = try asF32(x0, op)
        let normShape = Array(x.shape[axis...])
        let rows = x.shape[..<axis].reduce(1, *), cols = normShape.reduce(1, *)
        let s0 = try inputs.required(1, "scale")
        let scale = s0.dtype == .float32 && s0.shape == normShape
            ? s0 : Tensor(validShape: normShape, scalars: try expandF32(s0, to: normShape, op, "scale"))
        let y = try Tensor.uninitialized(.float32, x.shape)
        let statShape = Array(x.shape[..<axis]) + [Int](repeating: 1, count: x.rank - axis)
        let inv = wantInv ? try Tensor.uninitialized(.float32, statShape) : nil
        rmsNormF32(x.pointer(Float.self), y.pointer(Float.self), rows: rows, cols: cols, scale: scale.pointer(Float.self),
                       epsilon: eps, invStdOut: inv?.pointer(Float.self))
        var outs = [try y.converted(to: x0.dtype)]
        if let inv { outs.append(inv) }
        return outs
    }
}

/// EmbedLayerNormalization: for token (b, s), e = word[input_ids] + position[position_ids or s]
/// (+ segment[segment_ids]), layer-normalized with gamma and beta. mask_index counts the entries of
/// each row of mask that are exactly 1, as ONNX Runtime does (0 without a mask); embedding_sum is e.
private func makeEmbedLayerNorm(_ ctx: OpContext) throws -> OpBody {
    let op = "EmbedLayerNormalization"
    let eps = Double(try ctx.float("epsilon", default: 1e-12))
    let wantSum = ctx.hasOutput(2)
    let nOut = ctx.outputCount
    return { inputs, _ in
        let ids0 = try inputs.required(0, "input_ids")
        guard ids0.rank == 2, !ids0.dtype.isFloatingPoint else {
            throw OpError("\(op): input_ids must be a 2-D integer tensor (batch, sequence), got \(ids0.dtype) \(describeShape(ids0.shape))")
        }
        let (batch, seq) = (ids0.shape[0], ids0.shape[1])
        let word0 = try inputs.required(2, "word_embedding")
        let word = try asF32(word0, op, "word_embedding")
        let pos = try asF32(try inputs.required(3, "position_embedding"), op, "position_embedding")
        guard word.rank == 2, pos.rank == 2, pos.shape[1] == word.shape[1] else {
            throw OpError("\(op): word_embedding \(describeShape(word.shape)) and position_embedding \(describeShape(pos.shape)) must be 2-D with the same hidden size")
        }
        let hidden = word.shape[1]
        let segIds0 = inputs.optional(1), seg0 = inputs.optional(4)
        guard (segIds0 == nil) == (seg0 == nil) else {
            throw OpError("\(op): segment_ids and segment_embedding must be given together")
        }
        let seg = try seg0.map { try asF32($0, op, "segment_embedding") }
        if let seg, seg.rank != 2 || seg.shape[1] != hidden {
            throw OpError("\(op): segment_embedding \(describeShape(seg.shape)) must be 2-D with hidden size \(hidden)")
        }
        let gamma = try hiddenVector(try inputs.required(5, "gamma"), hidden, op, "gamma")!
        let beta = try hiddenVector(try inputs.required(6, "beta"), hidden, op, "beta")!
        let ids = try ids0.readAsInts()
        let segIds = try segIds0.map { t -> [Int] in
            guard t.shape == ids0.shape else { throw OpError("\(op): segment_ids \(describeShape(t.shape)) must match input_ids \(describeShape(ids0.shape))") }
            return try t.readAsInts()
        }
        var positions = [Int](repeating: 0, count: batch * seq)
        if let p = inputs.optional(8) {
            let v = try p.readAsInts()
            guard p.count == batch * seq || p.count == seq else {
                throw OpError("\(op): position_ids \(describeShape(p.shape)) must be (batch \(batch), sequence \(seq)) or (1, \(seq))")
            }
            for i in 0..<positions.count { positions[i] = v[p.count == seq ? i % seq : i] }
        } else {
            for i in 0..<positions.count { positions[i] = i % seq }
        }
        let out = try Tensor.uninitialized(.float32, [batch, seq, hidden])
        let sum = try Tensor.uninitialized(.float32, [batch, seq, hidden])
        let wp = word.pointer(Float.self), pp = pos.pointer(Float.self), sp = seg?.pointer(Float.self)
        let e = sum.pointer(Float.self)
        for t in 0..<(batch * seq) {
            let w = ids[t], p = positions[t]
            guard w >= 0, w < word.shape[0] else { throw OpError("\(op): input id \(w) at (\(t / seq), \(t % seq)) is outside the \(word.shape[0]) word embeddings") }
            guard p >= 0, p < pos.shape[0] else { throw OpError("\(op): position \(p) at (\(t / seq), \(t % seq)) is outside the \(pos.shape[0]) position embeddings") }
            let row = e + t * hidden, wr = wp + w * hidden, pr = pp + p * hidden
            for i in 0..<hidden { row[i] = wr[i] + pr[i] }
            if let segIds, let sp, let seg {
                let g = segIds[t]
                guard g >= 0, g < seg.shape[0] else { throw OpError("\(op): segment id \(g) at (\(t / seq), \(t % seq)) is outside the \(seg.shape[0]) segment embeddings") }
                let sr = sp + g * hidden
                for i in 0..<hidden { row[i] += sr[i] }
            }
        }
        layerNormF32(e, out.pointer(Float.self), rows: batch * seq, cols: hidden, scale: gamma.pointer(Float.self),
                     bias: UnsafePointer(beta.pointer(Float.self)), epsilon: eps, meanOut: nil, invStdOut: nil)
        var maskIndex = [Int32](repeating: 0, count: batch)
        if let m = inputs.optional(7) {
            guard m.shape == ids0.shape else { throw OpError("\(op): mask \(describeShape(m.shape)) must match input_ids \(describeShape(ids0.shape))") }
            let v = try m.readAsInts()
            for b in 0..<batch { maskIndex[b] = Int32(v[(b * seq)..<((b + 1) * seq)].reduce(0) { $0 + ($1 == 1 ? 1 : 0) }) }
        }
        var outs = [try out.converted(to: word0.dtype)]
        if nOut > 1 { outs.append(Tensor(validShape: [batch], scalars: maskIndex)) }
        if nOut > 2 { outs.append(wantSum ? try sum.converted(to: word0.dtype) : try Tensor.uninitialized(.float32, [0])) }
        return outs
    }
}

// MARK: - normalizations written out as formulas

/// Layer and RMS normalization over the last axis written out as element-wise ops (exports before
/// opset 17, and every Llama / T5 export's RMSNorm) become one op:
/// - LayerNormalization(x, gamma, beta) from
///   `d = x - ReduceMean(x); (d / Sqrt(ReduceMean(d^2) + eps)) [* gamma] [+ beta]`;
/// - RMSNormalization(x, gamma) from
///   `x * Reciprocal(Sqrt(ReduceMean(x^2) + eps))` (or `x / Sqrt(...)`, `x * (1 / Sqrt(...))`) `[* gamma]`.
/// d^2 may be Pow(d, 2) or Mul(d, d); ReduceMean must reduce exactly the last axis, keeping it; eps,
/// gamma and beta are float32 constants (gamma and beta one value per element of the last axis).
/// One pass over each row instead of six to nine, and no intermediates. The fused ops compute the
/// statistics in double, so results differ from the unfused float32 ops in the last bits.
struct FuseNormalizationFormulas: GraphPass {
    let name = "fuse-normalization-formulas"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        let uses = graph.useCounts()
        let producers = graph.producers()
        let readers = graph.readerLists()
        let outputs = graph.outputNames
        var removed = Set<Int>()
        var changed = false
        func single(_ v: String) -> Bool { uses[v] == 1 && !outputs.contains(v) }
        func node(_ v: String, _ op: String) -> (Int, Node)? {
            guard let i = producers[v], !removed.contains(i) else { return nil }
            let n = graph.nodes[i]
            guard n.opType == op, n.isStandardDomain, n.outputs.count == 1 else { return nil }
            return (i, n)
        }
        func scalar(_ name: String) -> Float? {
            guard let t = graph.initializers[name], t.dtype == .float32, t.count == 1 else { return nil }
            return t.pointer(Float.self)[0]
        }
        func rank(_ v: String) -> Int? { graph.infoOrConstant(of: v)?.shape?.count }
        /// The input of ReduceMean over the last axis only, keeping it.
        func meanOfLastAxis(_ v: String) -> (Int, String)? {
            guard let (i, n) = node(v, "ReduceMean"), let x = n.inputs.first else { return nil }
            let keep: Int
            if case .int(let k)? = n.attributes["keepdims"] { keep = k } else { keep = 1 }
            guard keep == 1 else { return nil }
            var axes: [Int]? = nil
            if case .ints(let a)? = n.attributes["axes"] { axes = a }
            if n.inputs.count > 1, !n.inputs[1].isEmpty { axes = try? graph.initializers[n.inputs[1]]?.readAsInts() }
            guard let a = axes, a.count == 1, a[0] == -1 || rank(x).map({ a[0] == $0 - 1 && $0 >= 1 }) == true else { return nil }
            return (i, x)
        }
        /// The value squared: Pow(v, 2) or Mul(v, v).
        func squared(_ v: String) -> (Int, String)? {
            if let (i, p) = node(v, "Pow"), p.inputs.count == 2, scalar(p.inputs[1]) == 2 { return (i, p.inputs[0]) }
            if let (i, m) = node(v, "Mul"), m.inputs.count == 2, m.inputs[0] == m.inputs[1] { return (i, m.inputs[0]) }
            return nil
        }
        /// Sqrt(ReduceMean(s^2) + eps): (nodes, s, eps, how many times the square reads s).
        func rootMeanSquare(_ v: String) -> ([Int], String, Float, Int)? {
            guard single(v), let (si, sq) = node(v, "Sqrt"), let a = sq.inputs.first, single(a),
                  let (ai, add) = node(a, "Add"), add.inputs.count == 2 else { return nil }
            for k in 0..<2 {
                guard let eps = scalar(add.inputs[1 - k]), single(add.inputs[k]),
                      let (mi, x2) = meanOfLastAxis(add.inputs[k]), single(x2), let (pi, s) = squared(x2) else { continue }
                return ([si, ai, mi, pi], s, eps, graph.nodes[pi].opType == "Mul" ? 2 : 1)
            }
            return nil
        }
        /// v = s / RMS: Div(s, Sqrt(..)), Mul(s, Reciprocal(Sqrt(..))) or Mul(s, Div(1, Sqrt(..))):
        /// (nodes, s, eps, how many times they read s).
        func normalized(_ v: String) -> ([Int], String, Float, Int)? {
            if let (i, d) = node(v, "Div"), d.inputs.count == 2, let (ns, s, eps, r) = rootMeanSquare(d.inputs[1]), s == d.inputs[0] {
                return ([i] + ns, s, eps, r + 1)
            }
            guard let (i, m) = node(v, "Mul"), m.inputs.count == 2 else { return nil }
            for k in 0..<2 {
                let r = m.inputs[1 - k], s = m.inputs[k]
                guard single(r) else { continue }
                if let (ri, rc) = node(r, "Reciprocal"), let (ns, s2, eps, n) = rootMeanSquare(rc.inputs[0]), s2 == s {
                    return ([i, ri] + ns, s, eps, n + 1)
                }
                if let (di, d) = node(r, "Div"), d.inputs.count == 2, scalar(d.inputs[0]) == 1,
                   let (ns, s2, eps, n) = rootMeanSquare(d.inputs[1]), s2 == s {
                    return ([i, di] + ns, s, eps, n + 1)
                }
            }
            return nil
        }
        /// The single reader of v when it is a Mul or Add by a float32 constant of one value per element of
        /// the last axis (size `n`): (reader index, constant name).
        func affineStep(_ v: String, _ op: String, _ n: Int?) -> (Int, String)? {
            guard single(v), let rs = readers[v], rs.count == 1, !removed.contains(rs[0]) else { return nil }
            let r = graph.nodes[rs[0]]
            guard r.opType == op, r.isStandardDomain, r.inputs.count == 2, r.outputs.count == 1 else { return nil }
            let c = r.inputs[0] == v ? r.inputs[1] : r.inputs[0]
            guard let t = graph.initializers[c], t.dtype == .float32, t.rank >= 1, t.count == t.shape.last,
                  n == nil || t.count == n else { return nil }
            return (rs[0], c)
        }
        for (i, top) in graph.nodes.enumerated() where !removed.contains(i) && top.isStandardDomain && top.outputs.count == 1 {
            guard top.opType == "Div" || top.opType == "Mul", let out = top.outputs.first,
                  let (ns, s, eps, reads) = normalized(out), Set(ns).isDisjoint(with: removed) else { continue }
            // LayerNorm: s = x - ReduceMean(x), read only by the nodes removed with it. Otherwise RMS of s,
            // which stays (other nodes may read it).
            var x = s, kind = "RMSNormalization", dead = ns
            if let (bi, sub) = node(s, "Sub"), sub.inputs.count == 2, uses[s] == reads, !outputs.contains(s),
               single(sub.inputs[1]), let (mi, mx) = meanOfLastAxis(sub.inputs[1]), mx == sub.inputs[0] {
                x = sub.inputs[0]; kind = "LayerNormalization"; dead += [bi, mi]
            }
            guard graph.infoOrConstant(of: x)?.type == .float32 else { continue }
            var n = graph.infoOrConstant(of: x)?.shape?.last?.value
            var last = out, at = i
            var gamma: String? = nil, beta: String? = nil
            if let (gi, g) = affineStep(last, "Mul", n) {
                gamma = g; n = graph.initializers[g]?.count; dead.append(at); at = gi; last = graph.nodes[gi].outputs[0]
            }
            if kind == "LayerNormalization", let (bi, b) = affineStep(last, "Add", n) {
                beta = b; dead.append(at); at = bi; last = graph.nodes[bi].outputs[0]
            }
            guard let n else { continue }   // no scale and no known width: nothing to size the ones by
            if gamma == nil {
                let ones = uniqueName(graph, "\(out)_norm_scale")
                graph.initializers[ones] = Tensor(validShape: [n], scalars: [Float](repeating: 1, count: n))
                gamma = ones
            }
            graph.nodes[at] = Node(name: graph.nodes[at].name, opType: kind, domain: "",
                                   inputs: [x, gamma!] + (beta.map { [$0] } ?? []), outputs: [last],
                                   attributes: ["axis": .int(-1), "epsilon": .float(eps)])
            removed.formUnion(Set(dead).subtracting([at]))
            changed = true
        }
        if changed {
            graph.removeNodes(at: removed)
            graph.pruneUnusedInitializers()
        }
        return changed
    }
}
