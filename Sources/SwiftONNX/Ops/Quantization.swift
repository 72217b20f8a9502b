import Foundation

/// Quantization ops: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QLinearMatMul,
/// QLinearConv, MatMulInteger, ConvInteger.
func registerQuantizationOps(_ r: inout OpRegistry) {
    /// The type named by output_dtype, if set.
    @Sendable func outputDType(_ ctx: OpContext) throws -> DType? {
        let code = try ctx.int("output_dtype", default: 0)
        return code == 0 ? nil : DType(onnxCode: Int32(code))
    }
    r.register("QuantizeLinear", infer: Inference { ctx, ins in
        [TypeInfo(dtype: try outputDType(ctx) ?? ins.dtype(2) ?? (ctx.hasInput(2) ? nil : .uint8), shape: ins.shape(0))]
    }, closure: makeQuantizeLinear)
    r.register("DequantizeLinear", infer: Inference { ctx, ins in
        [TypeInfo(dtype: try outputDType(ctx) ?? ins.dtype(1), shape: ins.shape(0))]
    }, closure: makeDequantizeLinear)
    r.register("DynamicQuantizeLinear", infer: Inference { _, ins in
        [TypeInfo(dtype: .uint8, shape: ins.shape(0)), TypeInfo(dtype: .float32, shape: []), TypeInfo(dtype: .uint8, shape: [])]
    }) { _ in
        return { inputs, _ in try dynamicQuantizeLinear(try inputs.required(0)) }
    }
    r.register("MatMulInteger", infer: Inference { _, ins in
        [TypeInfo(dtype: .int32, shape: matMulOutputShape(ins.shape(0), ins.shape(1)))]
    }) { _ in
        return { inputs, _ in
            let a = try inputs.required(0), b = try inputs.required(1)
            return [try integerMatMul(a, b, aZP: inputs.optional(2), bZP: inputs.optional(3), "MatMulInteger")]
        }
    }
    r.register("QLinearMatMul", infer: Inference { _, ins in
        [TypeInfo(dtype: ins.dtype(7) ?? ins.dtype(0), shape: matMulOutputShape(ins.shape(0), ins.shape(3)))]
    }) { _ in
        return { inputs, _ in
            let a = try inputs.required(0), b = try inputs.required(3)
            let aScale = try inputs.required(1, "a_scale"), bScale = try inputs.required(4, "b_scale")
            let yScale = try inputs.required(6, "y_scale")
            let yZP = inputs.optional(7)
            let acc = try integerMatMul(a, b, aZP: inputs.optional(2), bZP: inputs.optional(5), "QLinearMatMul")
            let m = a.rank == 1 ? 1 : a.shape[a.rank - 2]
            let n = b.rank == 1 ? 1 : b.shape[b.rank - 1]
            // Multiplier per (row, column): a_scale may be per row, b_scale per column.
            let asv = try floatValues(aScale), bsv = try floatValues(bScale), ysv = try floatValues(yScale)
            guard asv.count == 1 || asv.count == m else { throw OpError("QLinearMatMul: a_scale must be a scalar or have \(m) elements") }
            guard bsv.count == 1 || bsv.count == n else { throw OpError("QLinearMatMul: b_scale must be a scalar or have \(n) elements") }
            guard ysv.count == 1 else { throw OpError("QLinearMatMul: y_scale must be a scalar") }
            let sdt = aScale.dtype
            let outType = yZP?.dtype ?? a.dtype
            let zps = try yZP.map { try $0.readAsInts() } ?? [0]
            guard zps.count == 1 else { throw OpError("QLinearMatMul: y_zero_point must be a scalar") }
            let (lo, hi) = try quantRange(outType, "QLinearMatMul")
            let out = try Tensor.uninitialized(outType, acc.shape)
            let ap = acc.pointer(Int32.self)
            var mult = [Double](repeating: 0, count: m * n)
            for i in 0..<m {
                for j in 0..<n {
                    let p = roundTo(sdt, asv[asv.count == 1 ? 0 : i] * bsv[bsv.count == 1 ? 0 : j])
                    mult[i * n + j] = Double(roundTo(sdt, p / ysv[0]))
                }
            }
            let zp = Double(zps[0])
            let mn = m * n
            try storeQuantized(out, count: acc.count) { e in
                let v = (Double(ap[e]) * mult[mn == 0 ? 0 : e % mn] + zp).rounded(.toNearestOrEven)
                return saturatedInt32(v, Double(lo), Double(hi))
            }
            return [out]
        }
    }
    r.register("ConvInteger", infer: Inference { ctx, ins in
        [try convOutputType(ctx, ins, weightInput: 1, dtype: .int32)]
    }) { ctx in
        let p = try ConvParams(ctx)
        return { inputs, _ in
            [try integerConv(try inputs.required(0), try inputs.required(1), xZP: inputs.optional(2),
                             wZP: inputs.optional(3), p, "ConvInteger")]
        }
    }
    r.register("QLinearConv", infer: Inference { ctx, ins in
        [try convOutputType(ctx, ins, weightInput: 3, dtype: ins.dtype(7) ?? ins.dtype(0))]
    }) { ctx in
        let p = try ConvParams(ctx)
        return { inputs, _ in
            let x = try inputs.required(0), w = try inputs.required(3)
            var acc = try integerConv(x, w, xZP: inputs.optional(2), wZP: inputs.optional(5), p, "QLinearConv")
            let m = w.shape[0]
            let spatial = acc.count / Swift.max(acc.shape[0] * m, 1)
            if let bias = inputs.optional(8) {
                guard bias.count == m else { throw OpError("QLinearConv: B must have \(m) elements, got \(bias.count)") }
                let bv = try bias.readAsInts()
                let a2 = try Tensor.uninitialized(.int32, acc.shape)
                let s = acc.pointer(Int32.self), d = a2.pointer(Int32.self)
                for e in 0..<acc.count { d[e] = s[e] &+ Int32(truncatingIfNeeded: bv[(e / spatial) % m]) }
                acc = a2
            }
            let xs = try floatValues(try inputs.required(1, "x_scale"))
            let ws = try floatValues(try inputs.required(4, "w_scale"))
            let ys = try floatValues(try inputs.required(6, "y_scale"))
            guard xs.count == 1, ys.count == 1 else { throw OpError("QLinearConv: x_scale and y_scale must be scalars") }
            guard ws.count == 1 || ws.count == m else { throw OpError("QLinearConv: w_scale must be a scalar or have \(m) elements") }
            let yZP = inputs.optional(7)
            let outType = yZP?.dtype ?? x.dtype
            let zps = try yZP.map { try $0.readAsInts() } ?? [0]
            guard zps.count == 1 else { throw OpError("QLinearConv: y_zero_point must be a scalar") }
            let (lo, hi) = try quantRange(outType, "QLinearConv")
            let mult = (0..<m).map { Double(xs[0] * ws[ws.count == 1 ? 0 : $0] / ys[0]) }
            let zp = Double(zps[0])
            let ap = acc.pointer(Int32.self)
            let out = try Tensor.uninitialized(outType, acc.shape)
            try storeQuantized(out, count: acc.count) { e in
                let v = (Double(ap[e]) * mult[(e / spatial) % m] + zp).rounded(.toNearestOrEven)
                return saturatedInt32(v, Double(lo), Double(hi))
            }
            return [out]
        }
    }
}

// MARK: - helpers

/// Values of a (float16 / bfloat16 / float32 / float64) tensor as Float.
private func floatValues(_ t: Tensor) throws -> [Float] {
    if t.dtype == .float32 { return try t.scalars(as: Float.self) }
    return try t.readAsDoubles().map { Float($0) }
}

/// Rounds a float32 result to the precision of `dt` (to mimic arithmetic done in float16 / bfloat16).
@inline(__always) private func roundTo(_ dt: DType, _ v: Float) -> Float {
    switch dt {
    case .float16: return Float(Float16(v))
    case .bfloat16: return BFloat16(v).floatValue
    default: return v
    }
}

/// Integer range of a quantized element type.
private func quantRange(_ dt: DType, _ op: String) throws -> (Int32, Int32) {
    switch dt {
    case .uint8: return (0, 255)
    case .int8: return (-128, 127)
    case .uint16: return (0, 65535)
    case .int16: return (-32768, 32767)
    case .uint4: return (0, 15)
    case .int4: return (-8, 7)
    case .uint2: return (0, 3)
    case .int2: return (-2, 1)
    default: throw ONNXError.unsupportedType("\(op): quantized type \(dt)")
    }
}

/// Writes `value(e)` (already clamped to the type's range) into each element of an integer tensor.
private func storeQuantized(_ out: Tensor, count: Int, _ value: (Int) -> Int32) throws {
    switch out.dtype {
    case .uint8, .uint4, .uint2:
        let p = out.pointer(UInt8.self); for e in 0..<count { p[e] = UInt8(truncatingIfNeeded: value(e)) }
    case .int8, .int4, .int2:
        let p = out.pointer(Int8.self); for e in 0..<count { p[e] = Int8(truncatingIfNeeded: value(e)) }
    case .uint16:
        let p = out.pointer(UInt16.self); for e in 0..<count { p[e] = UInt16(truncatingIfNeeded: value(e)) }
    case .int16:
        let p = out.pointer(Int16.self); for e in 0..<count { p[e] = Int16(truncatingIfNeeded: value(e)) }
    case .int32:
        let p = out.pointer(Int32.self); for e in 0..<count { p[e] = value(e) }
    default:
        throw ONNXError.unsupportedType("quantized output type \(out.dtype)")
    }
}

private func smallFloatFormat(_ dt: DType) -> SmallFloatFormat? {
    switch dt {
    case .float8e4m3fn: return .e4m3fn
    case .float8e4m3fnuz: return .e4m3fnuz
    case .float8e5m2: return .e5m2
    case .float8e5m2fnuz: return .e5m2fnuz
    case .float4e2m1: return .e2m1
    default: return nil
    }
}

/// Elements of a quantized tensor as Float (integers exactly, float8/float4 decoded).
private func quantizedValues(_ t: Tensor) throws -> [Float] {
    if let f = smallFloatFormat(t.dtype) {
        let p = t.pointer(UInt8.self)
        return (0..<t.count).map { f.decode(p[$0]) }
    }
    switch t.dtype {
    case .uint8, .uint4, .uint2: let p = t.pointer(UInt8.self); return (0..<t.count).map { Float(p[$0]) }
    case .int8, .int4, .int2: let p = t.pointer(Int8.self); return (0..<t.count).map { Float(p[$0]) }
    case .uint16: let p = t.pointer(UInt16.self); return (0..<t.count).map { Float(p[$0]) }
    case .int16: let p = t.pointer(Int16.self); return (0..<t.count).map { Float(p[$0]) }
    case .int32: let p = t.pointer(Int32.self); return (0..<t.count).map { Float(p[$0]) }
    default: throw ONNXError.unsupportedType("quantized type \(t.dtype)")
    }
}

/// How a scale / zero-point tensor maps onto x viewed as (outer, d, inner) along the quantization axis:
/// the parameter index of element (o, a, j) is o*outerStride + (a / block)*axisStride + j*innerStride.
private struct QuantLayout {
    var outer = 1, d = 1, inner = 1
    var outerStride = 0, axisStride = 0, innerStride = 0, block = 1

    init(x: [Int], param: [Int], axisAttr: Int, blockSize: Int, _ op: String) throws {
        let count = param.reduce(1, *)
        if x.isEmpty || (count == 1 && blockSize == 0) || (param.isEmpty) {
            inner = x.reduce(1, *)
            guard count == 1 else { throw OpError("\(op): scale must hold one value for a scalar input") }
            return
        }
        let axis = try normalizeAxis(axisAttr, rank: x.count)
        (outer, d, inner) = splitAt(x, axis)
        if blockSize > 0 {
            guard param.count == x.count else {
                throw OpError("\(op): blocked scale shape \(describeShape(param)) must have the rank of x \(describeShape(x))")
            }
            for i in 0..<x.count where i != axis && param[i] != x[i] {
                throw OpError("\(op): blocked scale shape \(describeShape(param)) does not match x \(describeShape(x)) off axis \(axis)")
            }
            guard param[axis] == (x[axis] + blockSize - 1) / blockSize else {
                throw OpError("\(op): scale dim \(param[axis]) does not match ceil(\(x[axis]) / block_size \(blockSize))")
            }
            block = blockSize
            innerStride = 1
            axisStride = inner
            outerStride = param[axis] * inner
        } else {
            guard param.count == 1, param[0] == d else {
                throw OpError("\(op): per-axis scale shape \(describeShape(param)) must be [\(d)] for axis \(axis) of \(describeShape(x))")
            }
            axisStride = 1
        }
    }

    /// Calls body(elementIndex, paramIndex) in memory order.
    @inline(__always) func forEach(_ body: (Int, Int) -> Void) {
        var e = 0
        for o in 0..<outer {
            for a in 0..<d {
                let pb = o * outerStride + (a / block) * axisStride
                if innerStride == 0 {
                    for _ in 0..<inner { body(e, pb); e += 1 }
                } else {
                    for j in 0..<inner { body(e, pb + j); e += 1 }
                }
            }
        }
    }
}

// MARK: - QuantizeLinear

private func makeQuantizeLinear(_ ctx: OpContext) throws -> OpBody {
    let axisAttr = try ctx.int("axis", default: 1)
    let saturate = try ctx.int("saturate", default: 1) != 0
    let blockSize = try ctx.int("block_size", default: 0)
    guard blockSize >= 0 else { throw ctx.attributeError("block_size", "must be >= 0") }
    let outputDTypeCode = try ctx.int("output_dtype", default: 0)
    let outputDType = outputDTypeCode == 0 ? nil : DType(onnxCode: Int32(outputDTypeCode))
    if outputDTypeCode != 0 && outputDType == nil { throw ctx.attributeError("output_dtype", "unknown type \(outputDTypeCode)") }
    let precisionCode = try ctx.int("precision", default: 0)
    let precision = precisionCode == 0 ? nil : DType(onnxCode: Int32(precisionCode))
    return { inputs, _ in
        let x = try inputs.required(0)
        let scale = try inputs.required(1, "y_scale")
        let zpT = inputs.optional(2)
        var outType = outputDType ?? .uint8
        if let zpT {
            if let od = outputDType, od != zpT.dtype {
                throw OpError("QuantizeLinear: output_dtype \(od) differs from zero point type \(zpT.dtype)")
            }
            outType = zpT.dtype
        }
        let layout = try QuantLayout(x: x.shape, param: scale.shape, axisAttr: axisAttr, blockSize: blockSize, "QuantizeLinear")
        if let zpT, zpT.shape != scale.shape && !(zpT.count == 1 && scale.count == 1) {
            throw OpError("QuantizeLinear: zero point shape \(describeShape(zpT.shape)) differs from scale shape \(describeShape(scale.shape))")
        }
        let sv = try floatValues(scale)
        let zv: [Float] = try zpT.map { try quantizedValues($0) } ?? [Float](repeating: 0, count: sv.count)
        // Division precision: the precision attribute, else x's type (float16/bfloat16 round their quotient).
        let divType: DType = precision ?? (x.dtype == scale.dtype ? x.dtype : .float32)
        let out = try Tensor.uninitialized(outType, x.shape)
        if x.count == 0 { return [out] }

        if let fmt = smallFloatFormat(outType) {
            let xv = try floatValues(x)
            let p = out.pointer(UInt8.self)
            let addZP = outType == .float4e2m1
            layout.forEach { e, s in
                var q = roundTo(divType, xv[e] / sv[s])
                if addZP { q += zv[s] }
                p[e] = fmt.encode(q, saturate: saturate)
            }
            return [out]
        }
        let (lo, hi) = try quantRange(outType, "QuantizeLinear")
        let flo = Float(lo), fhi = Float(hi)
        if x.dtype == .float32 && divType == .float32 && layout.innerStride == 0 {
            // Fast path: contiguous runs share one scale.
            let xp = x.pointer(Float.self)
            var q = [Int32](repeating: 0, count: x.count)
            q.withUnsafeMutableBufferPointer { qb in
                var e = 0
                for o in 0..<layout.outer {
                    for a in 0..<layout.d {
                        let pi = o * layout.outerStride + (a / layout.block) * layout.axisStride
                        let s = sv[pi], z = zv[pi]
                        for _ in 0..<layout.inner {
                            let v = (xp[e] / s).rounded(.toNearestOrEven) + z
                            qb[e] = saturatedInt32(v, flo, fhi)
                            e += 1
                        }
                    }
                }
            }
            try storeQuantized(out, count: x.count) { q[$0] }
            return [out]
        }
        var q = [Int32](repeating: 0, count: x.count)
        if x.dtype == .int32 {
            let xp = x.pointer(Int32.self)
            layout.forEach { e, s in
                let v = (Double(xp[e]) / Double(sv[s])).rounded(.toNearestOrEven) + Double(zv[s])
                q[e] = saturatedInt32(v, Double(lo), Double(hi))
            }
        } else {
            guard x.dtype.isFloatingPoint else { throw ONNXError.unsupportedType("QuantizeLinear: input type \(x.dtype)") }
            let xv = try floatValues(x)
            layout.forEach { e, s in
                let v = roundTo(divType, xv[e] / sv[s]).rounded(.toNearestOrEven) + zv[s]
                q[e] = saturatedInt32(v, flo, fhi)
            }
        }
        try storeQuantized(out, count: x.count) { q[$0] }
        return [out]
    }
}

// MARK: - DequantizeLinear

private func makeDequantizeLinear(_ ctx: OpContext) throws -> OpBody {
    let axisAttr = try ctx.int("axis", default: 1)
    let blockSize = try ctx.int("block_size", default: 0)
    guard blockSize >= 0 else { throw ctx.attributeError("block_size", "must be >= 0") }
    let outputDTypeCode = try ctx.int("output_dtype", default: 0)
    let outputDType = outputDTypeCode == 0 ? nil : DType(onnxCode: Int32(outputDTypeCode))
    if outputDTypeCode != 0 && outputDType == nil { throw ctx.attributeError("output_dtype", "unknown type \(outputDTypeCode)") }
    return { inputs, _ in
        let x = try inputs.required(0)
        let scale = try inputs.required(1, "x_scale")
        let zpT = inputs.optional(2)
        let layout = try QuantLayout(x: x.shape, param: scale.shape, axisAttr: axisAttr, blockSize: blockSize, "DequantizeLinear")
        let isSmallFloat = smallFloatFormat(x.dtype) != nil
        if let zpT {
            if !isSmallFloat && zpT.dtype != x.dtype {
                throw OpError("DequantizeLinear: zero point type \(zpT.dtype) differs from input type \(x.dtype)")
            }
            if zpT.count != scale.count { throw OpError("DequantizeLinear: zero point and scale sizes differ") }
        }
        let outType = outputDType ?? scale.dtype
        guard outType.isFloatingPoint else { throw ONNXError.unsupportedType("DequantizeLinear: output type \(outType)") }
        let sv = try floatValues(scale)
        let zv: [Float] = (isSmallFloat ? nil : try zpT.map { try quantizedValues($0) }) ?? [Float](repeating: 0, count: sv.count)
        if x.count == 0 { return [try Tensor.uninitialized(outType, x.shape)] }
        let y = try Tensor.uninitialized(.float32, x.shape)
        let yp = y.pointer(Float.self)
        switch x.dtype {
        case .uint8:
            let xp = x.pointer(UInt8.self)
            layout.forEach { e, s in yp[e] = (Float(xp[e]) - zv[s]) * sv[s] }
        case .int8:
            let xp = x.pointer(Int8.self)
            layout.forEach { e, s in yp[e] = (Float(xp[e]) - zv[s]) * sv[s] }
        case .int32:
            let xp = x.pointer(Int32.self)
            layout.forEach { e, s in yp[e] = Float((Double(xp[e]) - Double(zv[s])) * Double(sv[s])) }
        default:
            let xv = try quantizedValues(x)
            layout.forEach { e, s in yp[e] = (xv[e] - zv[s]) * sv[s] }
        }
        return [try y.converted(to: outType)]
    }
}

// MARK: - DynamicQuantizeLinear

private func dynamicQuantizeLinear(_ x: Tensor) throws -> [Tensor] {
    guard x.dtype == .float32 else { throw ONNXError.unsupportedType("DynamicQuantizeLinear: input type \(x.dtype)") }
    let n = x.count
    let xp = x.pointer(Float.self)
    var mx: Float = 0, mn: Float = 0
    if n > 0 {
        mx = Swift.max(0, f32ReduceRow(xp, n, .max))
        mn = Swift.min(0, f32ReduceRow(xp, n, .min))
    }
    let scale: Float = (mx == mn ? 1 : (mx - mn)) / 255
    let initialZP = 0 - mn / scale
    let zp = Swift.min(255, Swift.max(0, initialZP)).rounded(.toNearestOrEven)
    let y = try Tensor.uninitialized(.uint8, x.shape)
    let yp = y.pointer(UInt8.self)
    for i in 0..<n {
        let v = (xp[i] / scale).rounded(.toNearestOrEven) + zp
        yp[i] = UInt8(Swift.min(255, Swift.max(0, v.isNaN ? 0 : v)))
    }
    return [y, Tensor(scalar: scale), Tensor(scalar: UInt8(zp))]
}

// MARK: - integer matmul

/// Integer values of an 8-bit (or 16-bit) tensor as Int32.
private func int32Values(_ t: Tensor, _ op: String) throws -> [Int32] {
    switch t.dtype {
    case .uint8: let p = t.pointer(UInt8.self); return (0..<t.count).map { Int32(p[$0]) }
    case .int8: let p = t.pointer(Int8.self); return (0..<t.count).map { Int32(p[$0]) }
    case .uint16: let p = t.pointer(UInt16.self); return (0..<t.count).map { Int32(p[$0]) }
    case .int16: let p = t.pointer(Int16.self); return (0..<t.count).map { Int32(p[$0]) }
    case .int32: return try t.scalars(as: Int32.self)
    default: throw ONNXError.unsupportedType("\(op): element type \(t.dtype)")
    }
}

/// (A - a_zp) · (B - b_zp) with numpy matmul broadcasting; int32 output.
/// a_zp: scalar or per row of A (M values); b_zp: scalar or per column of B (N values).
private func integerMatMul(_ a: Tensor, _ b: Tensor, aZP: Tensor?, bZP: Tensor?, _ op: String) throws -> Tensor {
    guard a.rank >= 1, b.rank >= 1 else { throw OpError("\(op): inputs must have rank >= 1") }
    let aShape = a.rank == 1 ? [1, a.shape[0]] : a.shape
    let bShape = b.rank == 1 ? [b.shape[0], 1] : b.shape
    let m = aShape[aShape.count - 2], k = aShape[aShape.count - 1]
    let k2 = bShape[bShape.count - 2], n = bShape[bShape.count - 1]
    guard k == k2 else { throw OpError("\(op): shapes \(describeShape(a.shape)) and \(describeShape(b.shape)) cannot be multiplied") }
    let aBatch = Array(aShape.dropLast(2)), bBatch = Array(bShape.dropLast(2))
    let batch = try broadcastShapes(aBatch, bBatch)
    var outShape = batch + [m, n]
    if a.rank == 1 { outShape.remove(at: outShape.count - 2) }
    if b.rank == 1 { outShape.removeLast() }

    var av = try int32Values(a, op), bv = try int32Values(b, op)
    if let aZP {
        guard aZP.dtype == a.dtype else { throw OpError("\(op): a_zero_point type \(aZP.dtype) differs from A's \(a.dtype)") }
        let z = try int32Values(aZP, op)
        if z.count == 1 { for i in 0..<av.count { av[i] &-= z[0] } }
        else if z.count == m { for i in 0..<av.count { av[i] &-= z[(i / Swift.max(k, 1)) % m] } }
        else { throw OpError("\(op): a_zero_point must be a scalar or have \(m) elements, got \(z.count)") }
    }
    if let bZP {
        guard bZP.dtype == b.dtype else { throw OpError("\(op): b_zero_point type \(bZP.dtype) differs from B's \(b.dtype)") }
        let z = try int32Values(bZP, op)
        if z.count == 1 { for i in 0..<bv.count { bv[i] &-= z[0] } }
        else if z.count == n { for i in 0..<bv.count { bv[i] &-= z[i % n] } }
        else { throw OpError("\(op): b_zero_point must be a scalar or have \(n) elements, got \(z.count)") }
    }
    let out = try Tensor.uninitialized(.int32, outShape)
    let batchCount = batch.reduce(1, *)
    if out.count == 0 { return out }
    // Matrix offsets of each batch entry in A and B.
    var aOffs = [Int](repeating: 0, count: batchCount), bOffs = [Int](repeating: 0, count: batchCount)
    let aStr = broadcastStrides(aBatch, to: batch), bStr = broadcastStrides(bBatch, to: batch)
    forEachStrided(batch, aStr) { i, off in aOffs[i] = off * m * k }
    forEachStrided(batch, bStr) { i, off in bOffs[i] = off * k * n }
    if batch.isEmpty { aOffs = [0]; bOffs = [0] }
    let cp = out.pointer(Int32.self)
    av.withUnsafeBufferPointer { ab in
        bv.withUnsafeBufferPointer { bb in
            for t in 0..<batchCount {
                i32Gemm(ab.baseAddress! + aOffs[t], bb.baseAddress! + bOffs[t], cp + t * m * n, m: m, n: n, k: k)
            }
        }
    }
    return out
}

// MARK: - integer convolution

private struct ConvParams {
    var autoPad: String
    var dilations: [Int]?
    var group: Int
    var kernelShape: [Int]?
    var pads: [Int]?
    var strides: [Int]?

    init(_ ctx: OpContext) throws {
        autoPad = try ctx.string("auto_pad", default: "NOTSET")
        dilations = try ctx.ints("dilations")
        group = try ctx.int("group", default: 1)
        kernelShape = try ctx.ints("kernel_shape")
        pads = try ctx.ints("pads")
        strides = try ctx.ints("strides")
        guard group >= 1 else { throw ctx.attributeError("group", "must be >= 1") }
        guard ["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"].contains(autoPad) else {
            throw ctx.attributeError("auto_pad", "unknown value \(autoPad)")
        }
    }
}

private func integerConv(_ x: Tensor, _ w: Tensor, xZP: Tensor?, wZP: Tensor?, _ p: ConvParams, _ op: String) throws -> Tensor {
    guard x.rank >= 3, w.rank == x.rank else {
        throw OpError("\(op): x \(describeShape(x.shape)) and w \(describeShape(w.shape)) must have the same rank >= 3")
    }
    let sd = x.rank - 2
    let nBatch = x.shape[0], c = x.shape[1], m = w.shape[0]
    let inSp = Array(x.shape[2...]), kSp = Array(w.shape[2...])
    if let ks = p.kernelShape, ks != kSp { throw OpError("\(op): kernel_shape \(ks) differs from weights \(describeShape(w.shape))") }
    guard c % p.group == 0, m % p.group == 0, w.shape[1] == c / p.group else {
        throw OpError("\(op): channels \(c) / weights \(describeShape(w.shape)) do not fit group \(p.group)")
    }
    let strides = p.strides ?? [Int](repeating: 1, count: sd)
    let dil = p.dilations ?? [Int](repeating: 1, count: sd)
    guard strides.count == sd, dil.count == sd, strides.allSatisfy({ $0 > 0 }), dil.allSatisfy({ $0 > 0 }) else {
        throw OpError("\(op): strides/dilations must have \(sd) positive values")
    }
    var pb = [Int](repeating: 0, count: sd), pe = [Int](repeating: 0, count: sd)
    var outSp = [Int](repeating: 0, count: sd)
    for d in 0..<sd {
        let ek = (kSp[d] - 1) * dil[d] + 1
        switch p.autoPad {
        case "SAME_UPPER", "SAME_LOWER":
            outSp[d] = (inSp[d] + strides[d] - 1) / strides[d]
            let total = Swift.max(0, (outSp[d] - 1) * strides[d] + ek - inSp[d])
            if p.autoPad == "SAME_UPPER" { pb[d] = total / 2; pe[d] = total - pb[d] } else { pe[d] = total / 2; pb[d] = total - pe[d] }
        case "VALID":
            outSp[d] = inSp[d] >= ek ? (inSp[d] - ek) / strides[d] + 1 : 0
        default:
            if let pads = p.pads {
                guard pads.count == 2 * sd, pads.allSatisfy({ $0 >= 0 }) else { throw OpError("\(op): pads must have \(2 * sd) non-negative values") }
                pb[d] = pads[d]; pe[d] = pads[d + sd]
            }
            let padded = inSp[d] + pb[d] + pe[d]
            outSp[d] = padded >= ek ? (padded - ek) / strides[d] + 1 : 0
        }
    }
    let out = try Tensor.uninitialized(.int32, [nBatch, m] + outSp)
    if out.count == 0 { return out }

    // Zero points.
    var xz: Int32 = 0
    if let xZP {
        guard xZP.dtype == x.dtype else { throw OpError("\(op): x_zero_point type \(xZP.dtype) differs from x's \(x.dtype)") }
        let z = try int32Values(xZP, op)
        guard z.count == 1 else { throw OpError("\(op): x_zero_point must be a scalar") }
        xz = z[0]
    }
    var wv = try int32Values(w, op)
    let kCount = kSp.reduce(1, *)
    let perM = wv.count / Swift.max(m, 1)
    if let wZP {
        guard wZP.dtype == w.dtype else { throw OpError("\(op): w_zero_point type \(wZP.dtype) differs from w's \(w.dtype)") }
        let z = try int32Values(wZP, op)
        if z.count == 1 { for i in 0..<wv.count { wv[i] &-= z[0] } }
        else if z.count == m { for i in 0..<wv.count { wv[i] &-= z[i / perM] } }
        else { throw OpError("\(op): w_zero_point must be a scalar or have \(m) elements") }
    }
    let xv = try int32Values(x, op)

    // Padded plane geometry.
    let padSp = (0..<sd).map { inSp[$0] + pb[$0] + pe[$0] }
    let padPlane = padSp.reduce(1, *)
    let padStr = contiguousStrides(padSp)
    var kOff = [Int](repeating: 0, count: kCount)
    let kStr = contiguousStrides(kSp)
    for kk in 0..<kCount {
        var off = 0
        for d in 0..<sd { off += ((kk / kStr[d]) % kSp[d]) * dil[d] * padStr[d] }
        kOff[kk] = off
    }
    let outCount = outSp.reduce(1, *)
    var oOff = [Int](repeating: 0, count: outCount)
    let oStr = contiguousStrides(outSp)
    for o in 0..<outCount {
        var off = 0
        for d in 0..<sd { off += ((o / oStr[d]) % outSp[d]) * strides[d] * padStr[d] }
        oOff[o] = off
    }
    let inPlane = inSp.reduce(1, *)
    let inStr = contiguousStrides(inSp)
    // Interior offset of each input element in the padded plane.
    var inToPad = [Int](repeating: 0, count: inPlane)
    for i in 0..<inPlane {
        var off = 0
        for d in 0..<sd { off += ((i / inStr[d]) % inSp[d] + pb[d]) * padStr[d] }
        inToPad[i] = off
    }
    var xp = [Int32](repeating: 0, count: c * padPlane)
    let yp = out.pointer(Int32.self)
    for b in 0..<nBatch {
        for ch in 0..<c {
            let src = (b * c + ch) * inPlane, dst = ch * padPlane
            for i in 0..<inPlane { xp[dst + inToPad[i]] = xv[src + i] &- xz }
        }
        xp.withUnsafeBufferPointer { xb in
            wv.withUnsafeBufferPointer { wb in
                kOff.withUnsafeBufferPointer { kb in
                    oOff.withUnsafeBufferPointer { ob in
                        i32ConvDirect(xb.baseAddress!, padPlane: padPlane, wb.baseAddress!, yp + b * m * outCount,
                                      group: p.group, cPerGroup: c / p.group, mPerGroup: m / p.group,
                                      kernelOffsets: kb, outOffsets: ob)
                    }
                }
            }
        }
    }
    return out
}

/// v clamped to [lo, hi] (inside Int32's range) as an integer; NaN (0 / 0 with a zero scale) gives
/// 0 clamped to the range, never a trap.
@inline(__always)
func saturatedInt32<F: BinaryFloatingPoint>(_ v: F, _ lo: F, _ hi: F) -> Int32 {
    Int32(v.isNaN ? Swift.min(Swift.max(0, lo), hi) : Swift.min(Swift.max(v, lo), hi))
}
