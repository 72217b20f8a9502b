import CKernels
import Foundation

/// Conv ops: Conv, ConvTranspose, and the internal com.swiftonnx FusedConv
/// (Conv + optional residual input Z + activation in one pass).
func registerConvOps(_ r: inout OpRegistry) {
    r.register("Conv") { ctx in try makeConvOperator(ctx, fused: false) }
    r.register("FusedConv", domain: "com.swiftonnx") { ctx in try makeConvOperator(ctx, fused: true) }
    r.register("ConvTranspose") { ctx in try makeConvTransposeOperator(ctx) }
}

// MARK: attributes and geometry

private struct ConvAttributes {
    let autoPad: String
    let dilations: [Int]?
    let group: Int
    let kernelShape: [Int]?
    let pads: [Int]?
    let strides: [Int]?
    let outputPadding: [Int]?
    let outputShape: [Int]?

    init(_ ctx: OpContext) throws {
        autoPad = try ctx.string("auto_pad", default: "NOTSET")
        guard ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"].contains(autoPad) else {
            throw ctx.attributeError("auto_pad", "unknown value '\(autoPad)'")
        }
        group = try ctx.int("group", default: 1)
        guard group >= 1 else { throw ctx.attributeError("group", "must be >= 1, got \(group)") }
        dilations = try ctx.ints("dilations")
        if let d = dilations, d.contains(where: { $0 < 1 }) { throw ctx.attributeError("dilations", "must be >= 1, got \(d)") }
        strides = try ctx.ints("strides")
        if let s = strides, s.contains(where: { $0 < 1 }) { throw ctx.attributeError("strides", "must be >= 1, got \(s)") }
        kernelShape = try ctx.ints("kernel_shape")
        if let k = kernelShape, k.contains(where: { $0 < 1 }) { throw ctx.attributeError("kernel_shape", "must be >= 1, got \(k)") }
        pads = try ctx.ints("pads")
        if let p = pads, p.contains(where: { $0 < 0 }) { throw ctx.attributeError("pads", "must be >= 0, got \(p)") }
        outputPadding = try ctx.ints("output_padding")
        if let p = outputPadding, p.contains(where: { $0 < 0 }) { throw ctx.attributeError("output_padding", "must be >= 0, got \(p)") }
        outputShape = try ctx.ints("output_shape")
    }

    func list(_ v: [Int]?, _ name: String, rank: Int, default d: Int) throws -> [Int] {
        guard let v = v else { return [Int](repeating: d, count: rank) }
        guard v.count == rank else { throw OpError("\(name) has \(v.count) values, expected \(rank) for \(rank) spatial dims") }
        return v
    }

    /// Validates kernel_shape against the weights' spatial dims.
    func kernel(_ wShape: [Int], rank: Int) throws -> [Int] {
        let k = Array(wShape.dropFirst(2))
        if let ks = kernelShape, ks != k {
            throw OpError("kernel_shape \(ks) does not match the weights' spatial shape \(k)")
        }
        return k
    }
}

/// Builds normalized 3-D geometry from per-dim values of a 1..3-D problem.
private func makeGeometry(input: [Int], output: [Int], kernel: [Int], strides: [Int], dilations: [Int], padBegin: [Int]) -> ConvGeometry {
    var g = ConvGeometry()
    func at(_ a: [Int], _ i: Int, _ d: Int) -> Int {
        let j = i - (3 - a.count)
        return j >= 0 ? a[j] : d
    }
    g.iD = at(input, 0, 1); g.iH = at(input, 1, 1); g.iW = at(input, 2, 1)
    g.oD = at(output, 0, 1); g.oH = at(output, 1, 1); g.oW = at(output, 2, 1)
    g.kD = at(kernel, 0, 1); g.kH = at(kernel, 1, 1); g.kW = at(kernel, 2, 1)
    g.sD = at(strides, 0, 1); g.sH = at(strides, 1, 1); g.sW = at(strides, 2, 1)
    g.dD = at(dilations, 0, 1); g.dH = at(dilations, 1, 1); g.dW = at(dilations, 2, 1)
    g.pD = at(padBegin, 0, 0); g.pH = at(padBegin, 1, 0); g.pW = at(padBegin, 2, 0)
    return g
}

/// Floor division (Python's //).
@inline(__always) private func floorDiv(_ a: Int, _ b: Int) -> Int {
    let q = a / b
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q
}

private func checkSpatialRank(_ x: Tensor, _ w: Tensor, _ op: String) throws -> Int {
    guard x.rank >= 3 else { throw OpError("\(op): input X must have rank >= 3 (N, C, spatial...), got shape \(describeShape(x.shape))") }
    guard w.rank == x.rank else {
        throw OpError("\(op): weights W of shape \(describeShape(w.shape)) must have the rank of X \(describeShape(x.shape))")
    }
    let r = x.rank - 2
    guard r <= 3 else { throw OpError("\(op): \(r) spatial dims are not supported (1 to 3 are)") }
    return r
}

/// Conv geometry and output spatial shape.
private func convGeometry(_ a: ConvAttributes, x: [Int], w: [Int]) throws -> (ConvGeometry, [Int]) {
    let r = x.count - 2
    let input = Array(x.dropFirst(2))
    let kernel = try a.kernel(w, rank: r)
    let strides = try a.list(a.strides, "strides", rank: r, default: 1)
    let dil = try a.list(a.dilations, "dilations", rank: r, default: 1)
    var pb = [Int](repeating: 0, count: r), pe = pb
    var out = [Int](repeating: 0, count: r)
    for i in 0..<r {
        let ek = (kernel[i] - 1) * dil[i] + 1
        switch a.autoPad {
        case "SAME_UPPER", "SAME_LOWER":
            out[i] = (input[i] + strides[i] - 1) / strides[i]
            let total = max(0, (out[i] - 1) * strides[i] + ek - input[i])
            if a.autoPad == "SAME_UPPER" { pb[i] = total / 2; pe[i] = total - pb[i] } else { pe[i] = total / 2; pb[i] = total - pe[i] }
        case "VALID":
            out[i] = input[i] >= ek ? (input[i] - ek) / strides[i] + 1 : 0
        default:
            if let p = a.pads {
                guard p.count == 2 * r else { throw OpError("pads has \(p.count) values, expected \(2 * r)") }
                pb[i] = p[i]; pe[i] = p[i + r]
            }
            let span = input[i] + pb[i] + pe[i] - ek
            guard span >= 0 else {
                throw OpError("Conv: padded input size \(input[i] + pb[i] + pe[i]) along spatial dim \(i) is smaller than the dilated kernel \(ek)")
            }
            out[i] = span / strides[i] + 1
        }
    }
    var g = makeGeometry(input: input, output: out, kernel: kernel, strides: strides, dilations: dil, padBegin: pb)
    // A 2-D conv over an N x 1 plane with an k x 1 kernel is a 1-D conv along H: run it as one along W,
    // where rows are long (the memory layout of plane and weights is the same either way).
    if g.iD == 1 && g.kD == 1 && g.iW == 1 && g.kW == 1 && g.oW == 1 && g.pW == 0 && g.iH > 1 {
        swap(&g.iH, &g.iW); swap(&g.oH, &g.oW); swap(&g.kH, &g.kW)
        swap(&g.sH, &g.sW); swap(&g.dH, &g.dW); swap(&g.pH, &g.pW)
    }
    return (g, out)
}

// MARK: Conv / FusedConv

/// The `activation` / `activation_params` attributes of the internal fused ops (FusedConv, ChannelAffine).
func parseActivation(_ ctx: OpContext) throws -> ConvActivation {
    let name = try ctx.string("activation", default: "")
    let p = try ctx.floats("activation_params") ?? []
    func param(_ i: Int, _ d: Float) -> Float { i < p.count ? p[i] : d }
    switch name {
    case "", "Identity": return .none
    case "Relu": return .relu
    case "LeakyRelu": return .leakyRelu(param(0, 0.01))
    case "Clip": return .clip(param(0, -Float.infinity), param(1, Float.infinity))
    case "Sigmoid": return .sigmoid
    case "HardSigmoid": return .hardSigmoid(param(0, 0.2), param(1, 0.5))
    case "HardSwish": return .hardSwish
    case "Tanh": return .tanh
    default: throw ctx.attributeError("activation", "unsupported activation '\(name)'")
    }
}

private func makeConvOperator(_ ctx: OpContext, fused: Bool) throws -> any Operator {
    let attrs = try ConvAttributes(ctx)
    let act: ConvActivation = fused ? try parseActivation(ctx) : .none
    let opName = fused ? "FusedConv" : "Conv"
    // Constant float32 weights are packed for the GEMM once, here (one packed matrix per group).
    // 3x3 stride-1 convolutions with enough channels run as Winograd F(2x2, 3x3), their weights
    // transformed and packed here instead.
    var prepacked: ConvPackedWeights? = nil
    var winograd: WinogradWeights? = nil
    if let w = ctx.constantInput(1), w.dtype == .float32, w.rank >= 3, attrs.group >= 1,
       w.shape[0] % attrs.group == 0, w.count > 0 {
        if WinogradWeights.suits(weightShape: w.shape, group: attrs.group, strides: attrs.strides, dilations: attrs.dilations) {
            winograd = WinogradWeights(w.pointer(Float.self), outChannels: w.shape[0], inChannels: w.shape[1])
        } else {
            prepacked = ConvPackedWeights(w, group: attrs.group)
        }
    }
    let packed = prepacked, wino = winograd
    return ClosureOperator { inputs, env in
        let x = try inputs.required(0, "input X")
        let w = try inputs.required(1, "weights W")
        let b = inputs.optional(2)
        let z = fused ? inputs.optional(3) : nil
        guard w.dtype == x.dtype, b.map({ $0.dtype == x.dtype }) ?? true, z.map({ $0.dtype == x.dtype }) ?? true else {
            throw OpError("\(opName): inputs must share one element type, got X \(x.dtype), W \(w.dtype)"
                          + (b.map { ", B \($0.dtype)" } ?? "") + (z.map { ", Z \($0.dtype)" } ?? ""))
        }
        switch x.dtype {
        case .float32:
            return [try convFloat32(x, w, b, z, attrs, act, env, opName, packed: packed, winograd: wino)]
        case .float64:
            if act != .none || z != nil {
                let r = try convFloat32(x.converted(to: .float32), w.converted(to: .float32), b?.converted(to: .float32),
                                        z?.converted(to: .float32), attrs, act, env, opName)
                return [try r.converted(to: .float64)]
            }
            return [try convGeneric(Double.self, x, w, b, attrs, opName)]
        case .float16, .bfloat16:
            let r = try convFloat32(x.converted(to: .float32), w.converted(to: .float32), b?.converted(to: .float32),
                                    z?.converted(to: .float32), attrs, act, env, opName)
            return [try r.converted(to: x.dtype)]
        default:
            throw ONNXError.unsupportedType("\(opName): element type \(x.dtype) (float16, bfloat16, float32, float64 are supported)")
        }
    }
}

/// Checks channel counts and bias; returns (N, C, M).
private func checkConvShapes(_ x: Tensor, _ w: Tensor, _ b: Tensor?, group: Int, _ op: String) throws -> (Int, Int, Int) {
    let n = x.shape[0], c = x.shape[1], m = w.shape[0]
    guard w.shape[1] * group == c else {
        throw OpError("\(op): X has \(c) channels but W \(describeShape(w.shape)) with group \(group) expects \(w.shape[1] * group)")
    }
    guard m % group == 0 else { throw OpError("\(op): \(m) output channels are not divisible by group \(group)") }
    if let b = b, b.count != m || b.rank != 1 {
        throw OpError("\(op): bias B of shape \(describeShape(b.shape)) must be 1-D with \(m) elements")
    }
    return (n, c, m)
}

/// Multiply-adds below which a convolution runs on one thread (waking a worker costs more).
let convParallelMinFlops = 1 << 21

/// Conv weights (M x C/group x kernel) packed per group for the packed GEMM.
final class ConvPackedWeights: @unchecked Sendable {
    let groups: [F32PackedMatrix]
    let shape: [Int]
    init(_ w: Tensor, group: Int) {
        shape = w.shape
        let m = w.shape[0] / group
        let k = w.count / w.shape[0]
        let p = UnsafePointer(w.pointer(Float.self))
        groups = (0..<group).map { g in F32PackedMatrix(p + g * m * k, m: m, k: k, rowStride: k) }
    }
}

private func convFloat32(_ x: Tensor, _ w: Tensor, _ b: Tensor?, _ z: Tensor?, _ attrs: ConvAttributes,
                         _ act: ConvActivation, _ env: RunEnv, _ op: String, packed: ConvPackedWeights? = nil,
                         winograd: WinogradWeights? = nil) throws -> Tensor {
    _ = try checkSpatialRank(x, w, op)
    let (n, c, m) = try checkConvShapes(x, w, b, group: attrs.group, op)
    let (g, outSpatial) = try convGeometry(attrs, x: x.shape, w: w.shape)
    let outShape = [n, m] + outSpatial
    if let z = z, z.shape != outShape {
        throw OpError("\(op): residual Z of shape \(describeShape(z.shape)) must match the output shape \(describeShape(outShape))")
    }
    let out = Tensor.uninitialized(.float32, outShape)
    let total = out.count
    if total == 0 { return out }
    let outPlane = g.outPlane
    let xp = UnsafePointer(x.pointer(Float.self)), wp = UnsafePointer(w.pointer(Float.self))
    let op_ = out.pointer(Float.self)
    let bp: UnsafePointer<Float>? = b.map { UnsafePointer($0.pointer(Float.self)) }
    let zp: UnsafePointer<Float>? = z.map { UnsafePointer($0.pointer(Float.self)) }
    guard gemmSizesFit(m, c * g.kernelSize, outPlane, g.inPlane) else { throw OpError("\(op): sizes are too large for BLAS") }

    // Depthwise (each group has one input channel), 2-D or 1-D: direct kernel.
    if attrs.group == c && attrs.group > 1 && w.shape[1] == 1 && g.kD == 1 && g.iD == 1 {
        let mult = m / c
        let ks = g.kernelSize
        let planes = n * m
        var geom = so_dw_geom(iH: Int32(g.iH), iW: Int32(g.iW), oH: Int32(g.oH), oW: Int32(g.oW),
                              kH: Int32(g.kH), kW: Int32(g.kW), sH: Int32(g.sH), sW: Int32(g.sW),
                              dH: Int32(g.dH), dW: Int32(g.dW), pH: Int32(g.pH), pW: Int32(g.pW))
        let (kind, alpha, beta) = act.kernelCode
        let threads = env.threads
        let blocked = f32DepthwiseConv2DBlocked
        if mult == 1 && depthwiseBlockedWins(geom) {
            // Channel blocks of `lanes` planes, interleaved channel-last by the kernel.
            let lanes = Int(blocked.lanes)
            let blocks = (c + lanes - 1) / lanes
            let units = n * blocks
            let chunks = threads > 1 && units > 1 && total * ks >= convParallelMinFlops / 2 ? min(threads, units) : 1
            let scratchBytes = blocked.scratch(&geom)
            parallelFor(chunks, threads: threads) { t in
                let lo = units * t / chunks, hi = units * (t + 1) / chunks
                ScratchPool.shared.with(bytes: scratchBytes) { scratch in
                    var gm = geom
                    for u in lo..<hi {
                        let img = u / blocks, c0 = (u - img * blocks) * lanes
                        let nc = min(lanes, c - c0)
                        let plane0 = img * m + c0
                        blocked.run(&gm, nc, xp + plane0 * g.inPlane, g.inPlane, wp + c0 * ks, bp.map { $0 + c0 },
                                    zp.map { $0 + plane0 * outPlane }, kind, alpha, beta, op_ + plane0 * outPlane,
                                    scratch)
                    }
                }
            }
            return out
        }
        let scratchBytes = so_f32_dwconv2d_scratch(&geom)
        let kernel = f32DepthwiseConv2D
        let chunks = threads > 1 && planes > 1 && total * ks >= convParallelMinFlops / 2 ? min(threads, planes) : 1
        parallelFor(chunks, threads: threads) { t in
            let lo = planes * t / chunks, hi = planes * (t + 1) / chunks
            ScratchPool.shared.with(bytes: scratchBytes) { scratch in
                var gm = geom
                for i in lo..<hi {
                    let img = i / m, oc = i - img * m
                    let ic = oc / mult
                    kernel(&gm, xp + (img * c + ic) * g.inPlane, wp + oc * ks, bp?[oc] ?? 0,
                           zp.map { $0 + i * outPlane }, kind, alpha, beta, op_ + i * outPlane, scratch)
                }
            }
        }
        return out
    }

    if let wg = winograd, attrs.group == 1, w.rank == 4, wg.outChannels == m, wg.inChannels == c,
       g.iD == 1, g.kD == 1, g.kH == 3, g.kW == 3, g.sH == 1, g.sW == 1, g.dH == 1, g.dW == 1 {
        convForwardWinograd(x: xp, weights: wg, bias: bp, z: zp, act: act, out: op_, batch: n, g, threads: env.threads)
        return out
    }
    // A 1x1 convolution of a 1x1 plane (a squeeze-excite or classifier head) is a matrix-vector
    // product: the GEMV kernel reads the weights once, where a GEMM tile would be 1 column wide.
    if g.isPointwise && g.inPlane == 1 && attrs.group == 1 && z == nil {
        let (kind, alpha, beta) = act.kernelCode
        // the n images are the rows of X (n x C) and Y (n x M)
        f32Gemv.pointee.dot!(n, c, xp, c, wp, c, op_, m, 0, m, bp, kind, alpha, beta)
        return out
    }
    let weights = packed.flatMap { $0.shape == w.shape ? $0 : nil } ?? ConvPackedWeights(w, group: attrs.group)
    convForwardPacked(x: xp, weights: weights, bias: bp, z: zp, act: act, out: op_, batch: n, cin: c, cout: m,
                      group: attrs.group, g, threads: env.threads)
    return out
}

/// Convolution through the packed GEMM: 1x1 convolutions read the input plane directly; others go
/// through im2col in column tiles, each tile's GEMM applying bias, residual and activation.
/// Columns (output positions) are split over threads.
func convForwardPacked(x: UnsafePointer<Float>, weights: ConvPackedWeights, bias: UnsafePointer<Float>?,
                       z: UnsafePointer<Float>?, act: ConvActivation, out: UnsafeMutablePointer<Float>,
                       batch: Int, cin: Int, cout: Int, group: Int, _ g: ConvGeometry, threads: Int) {
    let cinG = cin / group, coutG = cout / group
    let inPlane = g.inPlane, outPlane = g.outPlane
    if outPlane == 0 || cout == 0 { return }
    let pointwise = g.isPointwise
    for n in 0..<batch {
        for grp in 0..<group {
            let a = weights.groups[grp]
            let k = a.k
            let xg = x + (n * cin + grp * cinG) * inPlane
            let base = (n * cout + grp * coutG) * outPlane
            let og = out + base
            var ep = F32GemmEpilogue()
            ep.bias = bias.map { $0 + grp * coutG }
            ep.z = z.map { $0 + base }
            ep.ldz = outPlane
            ep.act = act
            if pointwise {
                f32PackedGemm(a, b: xg, ldb: inPlane, n: outPlane, c: og, ldc: outPlane, epilogue: ep, threads: threads)
                continue
            }
            let nr = a.nr
            let flops = coutG * k * outPlane
            let workers = flops >= convParallelMinFlops ? threads : 1
            // Column tiles of the im2col matrix: about 4 MB of columns, a multiple of the panel width,
            // and at least one tile per worker.
            var tile = max(nr, min(F32GemmBlocking.nc, (1 << 20) / max(k, 1) / nr * nr))
            if workers > 1 { tile = max(nr, min(tile, ((outPlane + workers - 1) / workers + nr - 1) / nr * nr)) }
            let tiles = (outPlane + tile - 1) / tile
            var geom = g.im2colGeometry
            let toColumns = f32Im2colPacked
            parallelFor(tiles, threads: workers) { t in
                let p0 = t * tile, p1 = min(outPlane, p0 + tile)
                // The column tile is written straight into the GEMM's packed panels.
                ScratchPool.shared.withFloats(so_f32_im2col_packed_floats(Int32(nr), k, p1 - p0)) { buf in
                    toColumns(xg, cinG, &geom, p0, p1, Int32(nr), buf)
                    var e = ep
                    e.z = ep.z.map { $0 + p0 }
                    f32PackedGemmPanels(a, pb: buf, n: p1 - p0, c: og + p0, ldc: outPlane, epilogue: e)
                }
            }
        }
    }
}

private func convGeneric<T: BLASFloat>(_: T.Type, _ x: Tensor, _ w: Tensor, _ b: Tensor?, _ attrs: ConvAttributes,
                                       _ op: String) throws -> Tensor {
    _ = try checkSpatialRank(x, w, op)
    let (n, c, m) = try checkConvShapes(x, w, b, group: attrs.group, op)
    let (g, outSpatial) = try convGeometry(attrs, x: x.shape, w: w.shape)
    let out = Tensor.uninitialized(T.dtype, [n, m] + outSpatial)
    if out.count == 0 { return out }
    guard gemmSizesFit(m, c * g.kernelSize, g.outPlane, g.inPlane) else { throw OpError("\(op): sizes are too large for BLAS") }
    let op_ = out.pointer(T.self)
    let bp: UnsafePointer<T>? = b.map { UnsafePointer($0.pointer(T.self)) }
    let outPlane = g.outPlane
    convForwardGEMM(x: x.pointer(T.self), w: w.pointer(T.self), out: op_, batch: n, cin: c, cout: m,
                    group: attrs.group, g) { img, oc0, count, p0, p1 in
        guard let bp = bp else { return }
        for r in 0..<count {
            let row = op_ + (img * m + oc0 + r) * outPlane + p0
            let bv = bp[oc0 + r]
            for i in 0..<(p1 - p0) { row[i] += bv }
        }
    }
    return out
}

// MARK: ConvTranspose

private func makeConvTransposeOperator(_ ctx: OpContext) throws -> any Operator {
    let attrs = try ConvAttributes(ctx)
    return ClosureOperator { inputs, _ in
        let x = try inputs.required(0, "input X")
        let w = try inputs.required(1, "weights W")
        let b = inputs.optional(2)
        guard w.dtype == x.dtype, b.map({ $0.dtype == x.dtype }) ?? true else {
            throw OpError("ConvTranspose: inputs must share one element type, got X \(x.dtype), W \(w.dtype)")
        }
        switch x.dtype {
        case .float32: return [try convTransposeGeneric(Float.self, x, w, b, attrs)]
        case .float64: return [try convTransposeGeneric(Double.self, x, w, b, attrs)]
        case .float16, .bfloat16:
            let r = try convTransposeGeneric(Float.self, x.converted(to: .float32), w.converted(to: .float32),
                                             b?.converted(to: .float32), attrs)
            return [try r.converted(to: x.dtype)]
        default:
            throw ONNXError.unsupportedType("ConvTranspose: element type \(x.dtype) (float16, bfloat16, float32, float64 are supported)")
        }
    }
}

private func convTransposeGeneric<T: BLASFloat>(_: T.Type, _ x: Tensor, _ w: Tensor, _ b: Tensor?,
                                                _ a: ConvAttributes) throws -> Tensor {
    let r = try checkSpatialRank(x, w, "ConvTranspose")
    let n = x.shape[0], c = x.shape[1]
    guard w.shape[0] == c else {
        throw OpError("ConvTranspose: X has \(c) channels but W \(describeShape(w.shape)) has \(w.shape[0]) input channels")
    }
    guard c % a.group == 0 else { throw OpError("ConvTranspose: \(c) input channels are not divisible by group \(a.group)") }
    let m = w.shape[1] * a.group
    if let b = b, b.count != m || b.rank != 1 {
        throw OpError("ConvTranspose: bias B of shape \(describeShape(b.shape)) must be 1-D with \(m) elements")
    }
    let input = Array(x.shape.dropFirst(2))
    let kernel = try a.kernel(w.shape, rank: r)
    let strides = try a.list(a.strides, "strides", rank: r, default: 1)
    let dil = try a.list(a.dilations, "dilations", rank: r, default: 1)
    let outPad = try a.list(a.outputPadding, "output_padding", rank: r, default: 0)
    var requested: [Int]? = nil
    if let os = a.outputShape {
        if os.count == r { requested = os } else if os.count == r + 2 { requested = Array(os.dropFirst(2)) } else {
            throw OpError("ConvTranspose: output_shape \(os) must have \(r) values")
        }
    }
    var pb = [Int](repeating: 0, count: r), pe = pb, out = pb
    let same = a.autoPad == "SAME_UPPER" || a.autoPad == "SAME_LOWER"
    for i in 0..<r {
        let ek = (kernel[i] - 1) * dil[i] + 1
        let full = strides[i] * (input[i] - 1) + outPad[i] + ek
        if same && a.pads == nil {
            out[i] = requested?[i] ?? input[i] * strides[i]
            let total = full - out[i]
            if a.autoPad == "SAME_UPPER" { pb[i] = floorDiv(total, 2); pe[i] = total - pb[i] } else {
                pe[i] = floorDiv(total, 2); pb[i] = total - pe[i]
            }
        } else {
            if let p = a.pads, a.autoPad != "VALID" {
                guard p.count == 2 * r else { throw OpError("pads has \(p.count) values, expected \(2 * r)") }
                pb[i] = p[i]; pe[i] = p[i + r]
            }
            out[i] = requested?[i] ?? (full - pb[i] - pe[i])
        }
        guard out[i] >= 0 else { throw OpError("ConvTranspose: computed output size \(out[i]) along spatial dim \(i) is negative") }
    }
    let g = makeGeometry(input: input, output: out, kernel: kernel, strides: strides, dilations: dil, padBegin: pb)
    let result = Tensor.uninitialized(T.dtype, [n, m] + out)
    if result.count == 0 { return result }
    guard gemmSizesFit(m * g.kernelSize, c, g.inPlane, g.outPlane) else { throw OpError("ConvTranspose: sizes are too large for BLAS") }
    let rp = result.pointer(T.self)
    convTransposeGEMM(x: x.pointer(T.self), w: w.pointer(T.self), out: rp, batch: n, cin: c, cout: m, group: a.group, g)
    if let b = b {
        let bp = b.pointer(T.self), plane = g.outPlane
        for img in 0..<n {
            for oc in 0..<m {
                let row = rp + (img * m + oc) * plane
                let bv = bp[oc]
                for i in 0..<plane { row[i] += bv }
            }
        }
    }
    return result
}
