/// Per-op type and shape inference rules (key "domain::OpType"). Rules return what they can tell;
/// anything uncertain stays unknown. Symbolic dims flow through ops that keep them.
func registerInferenceRules(_ r: inout [String: InferenceRule]) {
    func add(_ ops: [String], domain: String = "", _ rule: @escaping InferenceRule) {
        for op in ops { r[domain + "::" + op] = rule }
    }
    let sameAsFirst: InferenceRule = { _, ins in [ins.first?.type ?? .unknown] }
    add(["Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Sin", "Cos", "Tan",
         "Asin", "Acos", "Atan", "Sinh", "Cosh", "Tanh", "Asinh", "Acosh", "Atanh", "Erf", "Sigmoid", "HardSigmoid",
         "Relu", "LeakyRelu", "Elu", "Selu", "Celu", "Softplus", "Softsign", "Mish", "Gelu", "HardSwish",
         "ThresholdedRelu", "Clip", "Identity", "BatchNormalization", "InstanceNormalization", "LayerNormalization",
         "GroupNormalization", "LRN", "Softmax", "LogSoftmax", "Hardmax", "LpNormalization", "MeanVarianceNormalization",
         "CumSum", "Not", "BitwiseNot", "Shrink", "Trilu", "ReverseSequence"], sameAsFirst)
    add(["Dropout"]) { _, ins in [ins.first?.type ?? .unknown, TypeInfo(dtype: .bool, shape: ins.first?.type.shape)] }
    add(["IsNaN", "IsInf"]) { _, ins in [TypeInfo(dtype: .bool, shape: ins.first?.type.shape)] }

    let broadcastRule: (DType?) -> InferenceRule = { fixed in
        { _, ins in
            let shapes = ins.map(\.type.shape)
            let shape: [Dim]? = shapes.contains { $0 == nil } ? nil : broadcastDims(shapes.map { $0! })
            return [TypeInfo(dtype: fixed ?? ins.first?.type.dtype, shape: shape)]
        }
    }
    add(["Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean", "PRelu", "BitShift",
         "BitwiseAnd", "BitwiseOr", "BitwiseXor"], broadcastRule(nil))
    add(["Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "And", "Or", "Xor"], broadcastRule(.bool))
    add(["Where"]) { _, ins in
        guard ins.count == 3 else { return [.unknown] }
        let shapes = ins.map(\.type.shape)
        let shape: [Dim]? = shapes.contains { $0 == nil } ? nil : broadcastDims(shapes.map { $0! })
        return [TypeInfo(dtype: ins[1].type.dtype, shape: shape)]
    }
    add(["Cast"]) { ctx, ins in
        [TypeInfo(dtype: (try? ctx.int("to")).flatMap { $0.flatMap { DType(onnxCode: Int32($0)) } }, shape: ins.first?.type.shape)]
    }
    add(["CastLike"]) { _, ins in [TypeInfo(dtype: ins.count > 1 ? ins[1].type.dtype : nil, shape: ins.first?.type.shape)] }
    add(["Shape"]) { ctx, ins in
        guard let s = ins.first?.type.shape else { return [TypeInfo(dtype: .int64, shape: [.unknown])] }
        var start = (try? ctx.int("start", default: 0)) ?? 0, end = (try? ctx.int("end", default: s.count)) ?? s.count
        if start < 0 { start += s.count }
        if end < 0 { end += s.count }
        start = min(max(start, 0), s.count)
        end = min(max(end, 0), s.count)
        return [TypeInfo(dtype: .int64, shape: [.known(max(0, end - start))])]
    }
    add(["Size"]) { _, _ in [TypeInfo(dtype: .int64, shape: [])] }
    add(["Conv", "ConvInteger"]) { ctx, ins in [convLike(ctx, ins, channelsFromWeight: true)] }
    add(["ChannelAffine"], domain: "com.swiftonnx", sameAsFirst)
    add(["FusedConv"], domain: "com.swiftonnx") { ctx, ins in [convLike(ctx, ins, channelsFromWeight: true)] }
    add(["MaxPool", "AveragePool", "LpPool"]) { ctx, ins in
        let t = convLike(ctx, ins, channelsFromWeight: false)
        return [t, TypeInfo(dtype: .int64, shape: t.shape)]
    }
    add(["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"]) { _, ins in
        guard let s = ins.first?.type.shape, s.count >= 2 else { return [TypeInfo(dtype: ins.first?.type.dtype, shape: nil)] }
        return [TypeInfo(dtype: ins[0].type.dtype, shape: [s[0], s[1]] + Array(repeating: .known(1), count: s.count - 2))]
    }
    add(["MatMul", "MatMulInteger"]) { ctx, ins in
        let dt: DType? = ctx.opType == "MatMulInteger" ? .int32 : ins.first?.type.dtype
        guard ins.count >= 2, let a = ins[0].type.shape, let b = ins[1].type.shape, !a.isEmpty, !b.isEmpty else {
            return [TypeInfo(dtype: dt, shape: nil)]
        }
        let a2 = a.count == 1 ? [.known(1)] + a : a
        let b2 = b.count == 1 ? b + [.known(1)] : b
        guard let batch = broadcastDims([Array(a2.dropLast(2)), Array(b2.dropLast(2))]) else { return [TypeInfo(dtype: dt, shape: nil)] }
        var s = batch
        if a.count > 1 { s.append(a2[a2.count - 2]) }
        if b.count > 1 { s.append(b2[b2.count - 1]) }
        return [TypeInfo(dtype: dt, shape: s)]
    }
    add(["Gemm"]) { ctx, ins in
        guard ins.count >= 2, let a = ins[0].type.shape, let b = ins[1].type.shape, a.count == 2, b.count == 2 else {
            return [TypeInfo(dtype: ins.first?.type.dtype, shape: nil)]
        }
        let ta = ((try? ctx.int("transA", default: 0)) ?? 0) != 0, tb = ((try? ctx.int("transB", default: 0)) ?? 0) != 0
        return [TypeInfo(dtype: ins[0].type.dtype, shape: [ta ? a[1] : a[0], tb ? b[0] : b[1]])]
    }
    add(["Flatten"]) { ctx, ins in
        guard let s = ins.first?.type.shape else { return [TypeInfo(dtype: ins.first?.type.dtype, shape: nil)] }
        var axis = (try? ctx.int("axis", default: 1)) ?? 1
        if axis < 0 { axis += s.count }
        guard axis >= 0 && axis <= s.count else { return [.unknown] }
        return [TypeInfo(dtype: ins[0].type.dtype, shape: [product(s[..<axis]), product(s[axis...])])]
    }
    add(["Reshape"]) { ctx, ins in
        let dt = ins.first?.type.dtype
        guard ins.count >= 2, let target = try? ins[1].constant?.readAsInts() else { return [TypeInfo(dtype: dt, shape: nil)] }
        let allowZero = ((try? ctx.int("allowzero", default: 0)) ?? 0) != 0
        let src = ins[0].type.shape
        var out: [Dim] = []
        var inferAt = -1
        for (i, d) in target.enumerated() {
            if d == -1 { inferAt = i; out.append(.unknown) }
            else if d == 0 && !allowZero { out.append(src.flatMap { i < $0.count ? $0[i] : nil } ?? .unknown) }
            else { out.append(.known(d)) }
        }
        if inferAt >= 0, let src, let total = product(src[...]).value {
            let rest = out.enumerated().filter { $0.offset != inferAt }.map(\.element)
            if let r = product(rest[...]).value, r > 0 { out[inferAt] = .known(total / r) }
        }
        return [TypeInfo(dtype: dt, shape: out)]
    }
    add(["Transpose"]) { ctx, ins in
        guard let s = ins.first?.type.shape else { return [TypeInfo(dtype: ins.first?.type.dtype, shape: nil)] }
        let perm = ((try? ctx.ints("perm")) ?? nil) ?? Array((0..<s.count).reversed())
        guard perm.count == s.count, perm.allSatisfy({ $0 >= 0 && $0 < s.count }) else { return [.unknown] }
        return [TypeInfo(dtype: ins[0].type.dtype, shape: perm.map { s[$0] })]
    }
    add(["Concat"]) { ctx, ins in
        let dt = ins.first?.type.dtype
        guard let first = ins.first?.type.shape, ins.allSatisfy({ $0.type.shape?.count == first.count }),
              var axis = (try? ctx.int("axis")) ?? nil else { return [TypeInfo(dtype: dt, shape: nil)] }
        if axis < 0 { axis += first.count }
        guard axis >= 0 && axis < first.count else { return [.unknown] }
        var out = first
        var total: Int? = 0
        for i in ins { if let v = i.type.shape![axis].value, let t = total { total = t + v } else { total = nil } }
        out[axis] = total.map { .known($0) } ?? .unknown
        return [TypeInfo(dtype: dt, shape: out)]
    }
    add(["Unsqueeze"]) { ctx, ins in
        let dt = ins.first?.type.dtype
        let axes = ((try? ctx.ints("axes")) ?? nil) ?? (ins.count > 1 ? (try? ins[1].constant?.readAsInts()) ?? nil : nil)
        guard let s = ins.first?.type.shape, let axes else { return [TypeInfo(dtype: dt, shape: nil)] }
        let rank = s.count + axes.count
        let norm = Set(axes.map { $0 < 0 ? $0 + rank : $0 })
        var out: [Dim] = []
        var k = 0
        for i in 0..<rank {
            if norm.contains(i) { out.append(.known(1)) } else if k < s.count { out.append(s[k]); k += 1 }
        }
        return [TypeInfo(dtype: dt, shape: out)]
    }
    add(["Squeeze"]) { ctx, ins in
        let dt = ins.first?.type.dtype
        guard let s = ins.first?.type.shape else { return [TypeInfo(dtype: dt, shape: nil)] }
        let axes = ((try? ctx.ints("axes")) ?? nil) ?? (ins.count > 1 ? (try? ins[1].constant?.readAsInts()) ?? nil : nil)
        if let axes {
            let norm = Set(axes.map { $0 < 0 ? $0 + s.count : $0 })
            return [TypeInfo(dtype: dt, shape: s.enumerated().filter { !norm.contains($0.offset) }.map(\.element))]
        }
        guard s.allSatisfy({ $0.value != nil }) else { return [TypeInfo(dtype: dt, shape: nil)] }
        return [TypeInfo(dtype: dt, shape: s.filter { $0.value != 1 })]
    }
    let reduceRule: InferenceRule = { ctx, ins in
        let dt = ins.first?.type.dtype
        guard let s = ins.first?.type.shape else { return [TypeInfo(dtype: dt, shape: nil)] }
        let keep = ((try? ctx.int("keepdims", default: 1)) ?? 1) != 0
        var axes = ((try? ctx.ints("axes")) ?? nil)
        if axes == nil, ins.count > 1 {
            guard let c = ins[1].constant else { return [TypeInfo(dtype: dt, shape: nil)] }
            axes = try? c.readAsInts()
        }
        let all = axes == nil || axes!.isEmpty
        if all && ((try? ctx.int("noop_with_empty_axes", default: 0)) ?? 0) != 0 { return [ins[0].type] }
        let norm = Set((axes ?? []).map { $0 < 0 ? $0 + s.count : $0 })
        var out: [Dim] = []
        for (i, d) in s.enumerated() {
            if all || norm.contains(i) { if keep { out.append(.known(1)) } } else { out.append(d) }
        }
        return [TypeInfo(dtype: dt, shape: out)]
    }
    add(["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
         "ReduceLogSumExp", "ReduceSumSquare"], reduceRule)
    add(["ArgMax", "ArgMin"]) { ctx, ins in
        guard let s = ins.first?.type.shape else { return [TypeInfo(dtype: .int64, shape: nil)] }
        var axis = (try? ctx.int("axis", default: 0)) ?? 0
        if axis < 0 { axis += s.count }
        let keep = ((try? ctx.int("keepdims", default: 1)) ?? 1) != 0
        var out = s
        if axis >= 0 && axis < s.count { if keep { out[axis] = .known(1) } else { out.remove(at: axis) } }
        return [TypeInfo(dtype: .int64, shape: out)]
    }
    add(["Gather"]) { ctx, ins in
        let dt = ins.first?.type.dtype
        guard ins.count == 2, let s = ins[0].type.shape, let idx = ins[1].type.shape else { return [TypeInfo(dtype: dt, shape: nil)] }
        var axis = (try? ctx.int("axis", default: 0)) ?? 0
        if axis < 0 { axis += s.count }
        guard axis >= 0 && axis < s.count else { return [.unknown] }
        return [TypeInfo(dtype: dt, shape: Array(s[..<axis]) + idx + Array(s[(axis + 1)...]))]
    }
    add(["ConstantOfShape"]) { ctx, ins in
        let v = (try? ctx.tensor("value")) ?? nil
        let shape = (try? ins.first?.constant?.readAsInts()).flatMap { $0 }?.map { Dim.known($0) }
        return [TypeInfo(dtype: v?.dtype ?? .float32, shape: shape)]
    }
}

func product(_ dims: ArraySlice<Dim>) -> Dim {
    var p = 1
    for d in dims { guard let v = d.value else { return .unknown }; p *= v }
    return .known(p)
}

/// Broadcast of declared shapes; nil when incompatible.
func broadcastDims(_ shapes: [[Dim]]) -> [Dim]? {
    let rank = shapes.map(\.count).max() ?? 0
    var out = [Dim](repeating: .known(1), count: rank)
    for s in shapes {
        let off = rank - s.count
        for (i, d) in s.enumerated() {
            let j = off + i
            let cur = out[j]
            if cur == d || d == .known(1) { continue }
            if cur == .known(1) { out[j] = d; continue }
            if case .known(let a) = cur, case .known(let b) = d, a != b { return nil }
            if case .known = cur { continue }      // known vs symbolic/unknown: the known size wins
            if case .known = d { out[j] = d; continue }
            out[j] = .unknown
        }
    }
    return out
}

/// Output type of Conv/FusedConv/pooling from input shape and attributes (NOTSET/SAME/VALID padding).
private func convLike(_ ctx: OpContext, _ ins: [InferenceInput], channelsFromWeight: Bool) -> TypeInfo {
    let dt = ins.first?.type.dtype
    guard let x = ins.first?.type.shape, x.count >= 3 else { return TypeInfo(dtype: dt, shape: nil) }
    let spatial = x.count - 2
    var kernel = ((try? ctx.ints("kernel_shape")) ?? nil)
    var channels: Dim = x[1]
    if channelsFromWeight {
        guard ins.count > 1, let w = ins[1].type.shape, w.count == x.count else { return TypeInfo(dtype: dt, shape: nil) }
        channels = w[0]
        if kernel == nil { kernel = w.dropFirst(2).compactMap(\.value) }
    }
    guard let k = kernel, k.count == spatial else { return TypeInfo(dtype: dt, shape: nil) }
    let strides = ((try? ctx.ints("strides")) ?? nil) ?? Array(repeating: 1, count: spatial)
    let dil = ((try? ctx.ints("dilations")) ?? nil) ?? Array(repeating: 1, count: spatial)
    let pads = ((try? ctx.ints("pads")) ?? nil) ?? Array(repeating: 0, count: 2 * spatial)
    let autoPad = ((try? ctx.string("auto_pad")) ?? nil) ?? "NOTSET"
    let ceil = ((try? ctx.int("ceil_mode", default: 0)) ?? 0) != 0
    guard strides.count == spatial, dil.count == spatial, pads.count == 2 * spatial else { return TypeInfo(dtype: dt, shape: nil) }
    var out: [Dim] = [x[0], channels]
    for i in 0..<spatial {
        guard let n = x[2 + i].value else { out.append(.unknown); continue }
        let ek = (k[i] - 1) * dil[i] + 1
        switch autoPad {
        case "SAME_UPPER", "SAME_LOWER": out.append(.known((n + strides[i] - 1) / strides[i]))
        case "VALID": out.append(.known((n - ek) / strides[i] + 1))
        default:
            let span = n + pads[i] + pads[i + spatial] - ek
            let o = ceil ? (span + strides[i] - 1) / strides[i] + 1 : span / strides[i] + 1
            out.append(.known(max(o, 0)))
        }
    }
    return TypeInfo(dtype: dt, shape: out)
}
