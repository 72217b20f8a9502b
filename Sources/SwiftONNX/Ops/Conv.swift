import CKernels
import Foundation

/// Conv ops: Conv, ConvTranspose, and the internal com.swiftonnx FusedConv
/// (Conv + optional residual input Z + activation in one pass).
func registerConvOps(_ r: inout OpRegistry) {
    let conv = Inference { ctx, ins in [try convOutputType(ctx, ins, weightInput: 1)] }
    r.register("Conv", infer: conv) { ctx in try makeConvOperator(ctx, fused: false) }
    r.register("FusedConv", domain: "com.swiftonnx", infer: conv) { ctx in try makeConvOperator(ctx, fused: true) }
    r.register("ConvTranspose", infer: Inference(inferConvTranspose)) { ctx in try makeConvTransposeOperator(ctx) }
    r.rewrite(.fold, FoldBatchNormIntoConv())
    r.rewrite(.fold, FoldConvAffine())
    r.rewrite(.fuse, FuseConvAdd())
    r.rewrite(.fuse, FuseConvActivation())
    r.rewrite(.fuse, FuseConvPostAffine())
}

// MARK: inference

/// Output type of a convolution from the input and weight shapes and the attributes (NOTSET/SAME/VALID
/// padding): channels from the weights at input `weightInput`; element type `dtype` or the input's.
func convOutputType(_ ctx: OpContext, _ ins: [InferenceInput], weightInput: Int, dtype: DType? = nil) throws -> TypeInfo {
    let dt = dtype ?? ins.dtype(0)
    guard let x = ins.shape(0), x.count >= 3, let w = ins.shape(weightInput), w.count == x.count else {
        return TypeInfo(dtype: dt, shape: nil)
    }
    let spatial = x.count - 2
    let kernel = ((try? ctx.ints("kernel_shape")) ?? nil) ?? w.dropFirst(2).compactMap(\.value)
    let strides = ((try? ctx.ints("strides")) ?? nil) ?? Array(repeating: 1, count: spatial)
    let dil = ((try? ctx.ints("dilations")) ?? nil) ?? Array(repeating: 1, count: spatial)
    let pads = ((try? ctx.ints("pads")) ?? nil) ?? Array(repeating: 0, count: 2 * spatial)
    let autoPad = ((try? ctx.string("auto_pad")) ?? nil) ?? "NOTSET"
    var out: [Dim] = [x[0], w[0]]
    guard kernel.count == spatial, strides.count == spatial, dil.count == spatial, pads.count == 2 * spatial else {
        return TypeInfo(dtype: dt, shape: out + Array(repeating: .unknown, count: spatial))
    }
    for i in 0..<spatial {
        guard let n = x[2 + i].value else { out.append(.unknown); continue }
        // Non-positive sizes: the op's own checks report them when it is built.
        guard strides[i] > 0, kernel[i] > 0, dil[i] > 0 else { out.append(.unknown); continue }
        let ek = try sizeSum(sizeProduct(kernel[i] - 1, dil[i], "Conv"), 1, "Conv")
        switch autoPad {
        case "SAME_UPPER", "SAME_LOWER": out.append(.known(try sizeSum(n, strides[i] - 1, "Conv") / strides[i]))
        case "VALID": out.append(.known(try sizeDifference(n, ek, "Conv") / strides[i] + 1))
        default:
            let padded = try sizeSum(sizeSum(n, pads[i], "Conv"), pads[i + spatial], "Conv")
            out.append(.known(max(try sizeDifference(padded, ek, "Conv") / strides[i] + 1, 0)))
        }
    }
    return TypeInfo(dtype: dt, shape: out)
}

/// ConvTranspose: output channels W.shape[1] * group; spatial sizes from output_shape, or
/// stride * (in - 1) + output_padding + effective kernel - pads (SAME: in * stride).
private func inferConvTranspose(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let dt = ins.dtype(0)
    guard let x = ins.shape(0), x.count >= 3, let w = ins.shape(1), w.count == x.count else {
        return [TypeInfo(dtype: dt, shape: nil)]
    }
    let a = try ConvAttributes(ctx)
    let r = x.count - 2
    let channels: Dim = try w[1].value.map { .known(try sizeProduct($0, a.group, "ConvTranspose")) } ?? .unknown
    var out: [Dim] = [x[0], channels]
    let kernel = a.kernelShape ?? w.dropFirst(2).compactMap(\.value)
    guard kernel.count == r else { return [TypeInfo(dtype: dt, shape: out + Array(repeating: .unknown, count: r))] }
    let strides = try a.list(a.strides, "strides", rank: r, default: 1)
    let dil = try a.list(a.dilations, "dilations", rank: r, default: 1)
    let outPad = try a.list(a.outputPadding, "output_padding", rank: r, default: 0)
    var requested: [Int]? = nil
    if let os = a.outputShape { requested = os.count == r + 2 ? Array(os.dropFirst(2)) : os }
    let pads = a.autoPad == "VALID" ? nil : a.pads
    let same = a.autoPad == "SAME_UPPER" || a.autoPad == "SAME_LOWER"
    for i in 0..<r {
        if let q = requested, q.count == r { out.append(.known(q[i])); continue }
        guard let n = x[2 + i].value else { out.append(.unknown); continue }
        let op = "ConvTranspose"
        guard strides[i] > 0, kernel[i] > 0, dil[i] > 0 else { out.append(.unknown); continue }
        if same && pads == nil { out.append(.known(try sizeProduct(n, strides[i], op))); continue }
        let ek = try sizeSum(sizeProduct(kernel[i] - 1, dil[i], op), 1, op)
        let full = try sizeSum(sizeSum(sizeProduct(strides[i], n - 1, op), outPad[i], op), ek, op)
        let p = try pads.map { $0.count == 2 * r ? try sizeSum($0[i], $0[i + r], op) : 0 } ?? 0
        out.append(.known(try sizeDifference(full, p, op)))
    }
    return [TypeInfo(dtype: dt, shape: out)]
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
    case "Gelu": return .gelu
    case "GeluTanh": return .geluTanh
    case "ReluAffine": return .reluAffine(param(0, 1), param(1, 0))
    case "HardSwishAffine": return .hardSwishAffine(param(0, 1), param(1, 0))
    case "Swish": return .swish(param(0, 1))
    default: throw ctx.attributeError("activation", "unsupported activation '\(name)'")
    }
}

private func makeConvOperator(_ ctx: OpContext, fused: Bool) throws -> any Operator {
    let attrs = try ConvAttributes(ctx)
    let act: ConvActivation = fused ? try parseActivation(ctx) : .none
    let opName = fused ? "FusedConv" : "Conv"
    // Constant float32 weights are packed for the GEMM once, here (one packed matrix per group).
    // 3x3 stride-1 convolutions with enough channels run as Winograd (F(4x4, 3x3) on large maps,
    // F(2x2, 3x3) otherwise), their weights transformed and packed here instead.
    var prepacked: ConvPackedWeights? = nil
    var winograd: [WinogradWeights] = []
    var released = false
    if let w = ctx.constantInput(1), w.dtype == .float32, w.rank >= 3, attrs.group >= 1,
       w.shape[0] % attrs.group == 0, w.count > 0 {
        // With the input's shape known (a static model, a plan for one input signature) the path
        // is known now: only it gets its weights prepared, and when that is a packed form the
        // stored weights are never read again (the plan may free them).
        let winogradSuits = WinogradWeights.suits(weightShape: w.shape, group: attrs.group, strides: attrs.strides,
                                                  dilations: attrs.dilations)
        var knownGeometry: ConvGeometry? = nil
        let known: ConvPath? = ctx.inputShape(0).flatMap { xs in
            guard xs.count == w.rank, xs.count >= 3, xs[1] == w.shape[1] * attrs.group,
                  let (g, _) = try? convGeometry(attrs, x: xs, w: w.shape) else { return nil }
            knownGeometry = g
            return convPath(attrs, g, batch: xs[0], cin: xs[1], weightShape: w.shape, residual: fused && ctx.hasInput(3),
                            winogradReady: winogradSuits)
        }
        let depthwise = w.rank <= 4 && w.shape[1] == 1 && attrs.group > 1   // always the depthwise kernel, on the stored weights
        if known == .winograd || (known == nil && winogradSuits) {
            let m = w.shape[0], c = w.shape[1]
            let variants = knownGeometry.map { [WinogradVariant.preferred(outChannels: m, inChannels: c, outputHeight: $0.oH,
                                                                          outputWidth: $0.oW)] }
                ?? WinogradVariant.candidates(outChannels: m, inChannels: c)
            winograd = try variants.map { variant in
                try ctx.prepare(w, kind: "winograd-f\(variant.tile)x3") {
                    try WinogradWeights(w.pointer(Float.self), outChannels: m, inChannels: c, variant: variant)
                }
            }
        } else if known == .packed || (known == nil && !depthwise) {
            prepacked = try ctx.prepare(w, kind: "conv-gemm-group\(attrs.group)") { try ConvPackedWeights(w, group: attrs.group) }
        }
        if known == .winograd || known == .packed {
            ctx.releaseConstantValues(1)
            released = true
        }
    }
    let packed = prepacked, wino = winograd, weightsReleased = released
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
            return [try convFloat32(x, w, b, z, attrs, act, env, opName, packed: packed, winograd: wino,
                                    weightsReleased: weightsReleased)]
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

/// How a float32 convolution runs. Decided from shapes alone, by the plan when it knows the
/// input's shape (to prepare only what the path reads) and by every run.
private enum ConvPath {
    /// each group one input channel: the direct depthwise kernel on the stored weights
    case depthwise
    /// 3x3, stride 1, group 1: Winograd (F(2x2, 3x3) or F(4x4, 3x3)) on transformed weights
    case winograd
    /// 1x1 on a 1x1 plane (a squeeze-excite or classifier head): GEMV on the stored weights
    case gemvPointwise
    /// at most 4 output positions per image: rows of patches times the stored weights (GEMV)
    case gemvRows
    /// im2col (or the plane itself, 1x1) times packed weights
    case packed
}

private func convPath(_ attrs: ConvAttributes, _ g: ConvGeometry, batch n: Int, cin c: Int, weightShape w: [Int],
                      residual: Bool, winogradReady: Bool) -> ConvPath {
    if attrs.group == c && attrs.group > 1 && w[1] == 1 && g.kD == 1 && g.iD == 1 { return .depthwise }
    // Few output channels on a small map (PP-OCR det's 96 -> 24 neck convolution on an 8 x 10 map: 20
    // tiles): the Winograd transforms outweigh its 16 small GEMMs, and im2col + one GEMM is faster
    // (Zen 3: 0.07 against 0.11 ms; at 80 tiles, or 512 channels on a 7 x 7 map, Winograd wins).
    let smallForWinograd = ((g.oH + 1) / 2) * ((g.oW + 1) / 2) < 32 && w[0] < 64
    if winogradReady, !smallForWinograd, attrs.group == 1, w.count == 4, g.iD == 1, g.kD == 1, g.kH == 3, g.kW == 3,
       g.sH == 1, g.sW == 1, g.dH == 1, g.dW == 1 { return .winograd }
    if g.isPointwise && g.inPlane == 1 && attrs.group == 1 && !residual { return .gemvPointwise }
    if g.outPlane <= 4 && attrs.group == 1 && !residual && n * g.outPlane <= 16 { return .gemvRows }
    return .packed
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
/// The same for depthwise convolutions, which do far fewer multiply-adds per byte and per microsecond
/// (a 3x3 stride-2 depthwise layer of 48 channels, 0.55 M multiply-adds, takes about 100 us on Zen 3).
let depthwiseParallelMinFlops = 1 << 18

/// Conv weights (M x C/group x kernel) packed per group for the packed GEMM.
final class ConvPackedWeights: Sendable {
    let groups: [F32PackedMatrix]
    let shape: [Int]
    init(_ w: Tensor, group: Int) throws {
        shape = w.shape
        let m = w.shape[0] / group
        let k = w.count / w.shape[0]
        let p = UnsafePointer(w.pointer(Float.self))
        groups = try (0..<group).map { g in try F32PackedMatrix(p + g * m * k, m: m, k: k, rowStride: k) }
    }
}

private func convFloat32(_ x: Tensor, _ w: Tensor, _ b: Tensor?, _ z: Tensor?, _ attrs: ConvAttributes,
                         _ act: ConvActivation, _ env: RunEnv, _ op: String, packed: ConvPackedWeights? = nil,
                         winograd: [WinogradWeights] = [], weightsReleased: Bool = false) throws -> Tensor {
    _ = try checkSpatialRank(x, w, op)
    let (n, c, m) = try checkConvShapes(x, w, b, group: attrs.group, op)
    let (g, outSpatial) = try convGeometry(attrs, x: x.shape, w: w.shape)
    let outShape = [n, m] + outSpatial
    if let z = z, z.shape != outShape {
        throw OpError("\(op): residual Z of shape \(describeShape(z.shape)) must match the output shape \(describeShape(outShape))")
    }
    let out = try Tensor.uninitialized(.float32, outShape)
    let total = out.count
    if total == 0 { return out }
    let outPlane = g.outPlane
    let xp = UnsafePointer(x.pointer(Float.self)), wp = UnsafePointer(w.pointer(Float.self))
    let op_ = out.pointer(Float.self)
    let bp: UnsafePointer<Float>? = b.map { UnsafePointer($0.pointer(Float.self)) }
    let zp: UnsafePointer<Float>? = z.map { UnsafePointer($0.pointer(Float.self)) }
    guard gemmSizesFit(m, c * g.kernelSize, outPlane, g.inPlane) else { throw OpError("\(op): sizes are too large for BLAS") }
    // the prepared Winograd weights of the variant this shape runs (the plan prepared it, or every
    // candidate when it did not know the shape)
    let wantVariant = WinogradVariant.preferred(outChannels: m, inChannels: c, outputHeight: g.oH, outputWidth: g.oW)
    let wino = winograd.first { $0.variant == wantVariant && $0.outChannels == m && $0.inChannels == c }
        ?? winograd.first { $0.outChannels == m && $0.inChannels == c }
    let winogradReady = wino != nil
    let path = convPath(attrs, g, batch: n, cin: c, weightShape: w.shape, residual: z != nil, winogradReady: winogradReady)
    if weightsReleased && !(path == .winograd || (path == .packed && packed?.shape == w.shape)) {
        throw OpError("\(op): the plan released the weights for the input shape it was made for, but X has shape \(describeShape(x.shape))")
    }

    // Depthwise (each group has one input channel), 2-D or 1-D: direct kernel.
    if path == .depthwise {
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
            let chunks = threads > 1 && units > 1 && total * ks >= depthwiseParallelMinFlops ? min(threads, units) : 1
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
        let chunks = threads > 1 && planes > 1 && total * ks >= depthwiseParallelMinFlops ? min(threads, planes) : 1
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

    if path == .winograd, let wg = wino {
        convForwardWinograd(x: xp, weights: wg, bias: bp, z: zp, act: act, out: op_, batch: n, g, threads: env.threads)
        return out
    }
    // A 1x1 convolution of a 1x1 plane (a squeeze-excite or classifier head) is a matrix-vector
    // product: the GEMV kernel reads the weights once, where a GEMM tile would be 1 column wide.
    if path == .gemvPointwise {
        let (kind, alpha, beta) = act.kernelCode
        // the n images are the rows of X (n x C) and Y (n x M)
        f32Gemv.pointee.dot!(n, c, xp, c, wp, c, op_, m, 0, m, bp, kind, alpha, beta)
        return out
    }
    // A few output positions (a frame of a 1-D signal, a map reduced to 2x2): each position's patch
    // is one row and the GEMV kernel streams the weights (M x K as stored) once for all rows, where
    // the packed GEMM would fill most of its 16-column panels with idle columns.
    if path == .gemvRows {
        let k = c * g.kernelSize
        let (kind, alpha, beta) = act.kernelCode
        ScratchPool.shared.withFloats(outPlane * (k + m)) { buf in
            let rows = buf, y = buf + outPlane * k
            for img in 0..<n {
                convIm2Row(xp + img * c * g.inPlane, cin: c, g, positions: outPlane, into: rows)
                f32Gemv.pointee.dot!(outPlane, k, rows, k, wp, k, y, m, 0, m, bp, kind, alpha, beta)
                let o = op_ + img * m * outPlane
                for p in 0..<outPlane { for j in 0..<m { o[j * outPlane + p] = y[p * m + j] } }
            }
        }
        return out
    }
    let weights = try packed.flatMap { $0.shape == w.shape ? $0 : nil } ?? ConvPackedWeights(w, group: attrs.group)
    convForwardPacked(x: xp, weights: weights, bias: bp, z: zp, act: act, out: op_, batch: n, cin: c, cout: m,
                      group: attrs.group, g, threads: env.threads)
    return out
}

/// Convolution through the packed GEMM: 1x1 convolutions read the input plane directly; others go
/// through im2col in column tiles, each tile's GEMM applying bias, residual and activation.
/// Columns (output positions) are split over threads, or the groups of a grouped convolution whose
/// groups are too small to split.
func convForwardPacked(x: UnsafePointer<Float>, weights: ConvPackedWeights, bias: UnsafePointer<Float>?,
                       z: UnsafePointer<Float>?, act: ConvActivation, out: UnsafeMutablePointer<Float>,
                       batch: Int, cin: Int, cout: Int, group: Int, _ g: ConvGeometry, threads: Int) {
    let cinG = cin / group, coutG = cout / group
    let inPlane = g.inPlane, outPlane = g.outPlane
    if outPlane == 0 || cout == 0 { return }
    let pointwise = g.isPointwise
    // One group of one image, its GEMM split over `workers` threads by columns.
    func runGroup(_ n: Int, _ grp: Int, workers: Int) {
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
            f32PackedGemm(a, b: xg, ldb: inPlane, n: outPlane, c: og, ldc: outPlane, epilogue: ep, threads: workers)
            return
        }
        let nr = a.nr
        let flops = coutG * k * outPlane
        let workers = flops >= convParallelMinFlops ? workers : 1
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
    // Grouped convolutions whose groups are each too small to split (ShuffleNet's 1x1 convolutions
    // of 4 groups of 34 channels) split the groups over the threads instead, when all together are
    // worth it and there are at least as many groups as threads.
    let units = batch * group
    let groupFlops = coutG * weights.groups[0].k * outPlane
    if threads > 1 && group > 1 && units >= threads && groupFlops < convParallelMinFlops
        && groupFlops * units >= convParallelMinFlops {
        parallelFor(units, threads: threads) { u in runGroup(u / group, u % group, workers: 1) }
        return
    }
    for n in 0..<batch {
        for grp in 0..<group { runGroup(n, grp, workers: threads) }
    }
}

private func convGeneric<T: BLASFloat>(_: T.Type, _ x: Tensor, _ w: Tensor, _ b: Tensor?, _ attrs: ConvAttributes,
                                       _ op: String) throws -> Tensor {
    _ = try checkSpatialRank(x, w, op)
    let (n, c, m) = try checkConvShapes(x, w, b, group: attrs.group, op)
    let (g, outSpatial) = try convGeometry(attrs, x: x.shape, w: w.shape)
    let out = try Tensor.uninitialized(T.dtype, [n, m] + outSpatial)
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
    return ClosureOperator { inputs, env in
        let x = try inputs.required(0, "input X")
        let w = try inputs.required(1, "weights W")
        let b = inputs.optional(2)
        let threads = env.threads
        guard w.dtype == x.dtype, b.map({ $0.dtype == x.dtype }) ?? true else {
            throw OpError("ConvTranspose: inputs must share one element type, got X \(x.dtype), W \(w.dtype)")
        }
        switch x.dtype {
        case .float32: return [try convTransposeGeneric(Float.self, x, w, b, attrs, threads: threads)]
        case .float64: return [try convTransposeGeneric(Double.self, x, w, b, attrs, threads: threads)]
        case .float16, .bfloat16:
            let r = try convTransposeGeneric(Float.self, x.converted(to: .float32), w.converted(to: .float32),
                                             b?.converted(to: .float32), attrs, threads: threads)
            return [try r.converted(to: x.dtype)]
        default:
            throw ONNXError.unsupportedType("ConvTranspose: element type \(x.dtype) (float16, bfloat16, float32, float64 are supported)")
        }
    }
}

private func convTransposeGeneric<T: BLASFloat>(_: T.Type, _ x: Tensor, _ w: Tensor, _ b: Tensor?,
                                                _ a: ConvAttributes, threads: Int) throws -> Tensor {
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
    let result = try Tensor.uninitialized(T.dtype, [n, m] + out)
    if result.count == 0 { return result }
    guard gemmSizesFit(m * g.kernelSize, c, g.inPlane, g.outPlane) else { throw OpError("ConvTranspose: sizes are too large for BLAS") }
    let rp = result.pointer(T.self)
    if T.self == Float.self {
        convTransposeF32(x: x.pointer(Float.self), w: w.pointer(Float.self), bias: b.map { UnsafePointer($0.pointer(Float.self)) },
                         out: result.pointer(Float.self), batch: n, cin: c, cout: m, group: a.group, g, threads: threads)
    } else {
        convTransposeGEMM(x: x.pointer(T.self), w: w.pointer(T.self), bias: b.map { UnsafePointer($0.pointer(T.self)) },
                          out: rp, batch: n, cin: c, cout: m, group: a.group, g)
    }
    return result
}

// MARK: - rewrites owned by this family

/// Conv followed by BatchNormalization (inference) becomes one Conv with scaled weights and a new bias.
struct FoldBatchNormIntoConv: GraphPass {
    let name = "fold-batchnorm-into-conv"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        var changed = false
        var uses = graph.useCounts()
        var producers = graph.producers()
        let outputs = graph.outputNames
        var removed = Set<Int>()
        for (bi, bn) in graph.nodes.enumerated() where bn.opType == "BatchNormalization" && bn.isStandardDomain {
            guard bn.inputs.count == 5, bn.outputs.filter({ !$0.isEmpty }).count == 1,
                  let ci = producers[bn.inputs[0]], !removed.contains(ci) else { continue }
            let conv = graph.nodes[ci]
            guard conv.opType == "Conv", conv.isStandardDomain, conv.outputs.count == 1,
                  uses[conv.outputs[0]] == 1, !outputs.contains(conv.outputs[0]) else { continue }
            if case .int(let t)? = bn.attributes["training_mode"], t != 0 { continue }
            // Only the weights' type and shape here: holding the tensor would keep takeForRewrite from scaling it in place.
            guard let wShape = graph.initializers[conv.inputs[1]].flatMap({ $0.dtype == .float32 ? $0.shape : nil }), wShape.count >= 3,
                  let scale = graph.initializers[bn.inputs[1]], let bias = graph.initializers[bn.inputs[2]],
                  let mean = graph.initializers[bn.inputs[3]], let variance = graph.initializers[bn.inputs[4]],
                  wShape[0] > 0, [scale, bias, mean, variance].allSatisfy({ $0.dtype == .float32 && $0.count == wShape[0] }) else { continue }
            var b: Tensor? = nil
            if conv.inputs.count > 2 && !conv.inputs[2].isEmpty {
                guard let cb = graph.initializers[conv.inputs[2]], cb.dtype == .float32, cb.count == wShape[0] else { continue }
                b = cb
            }
            var eps: Float = 1e-5
            if case .float(let e)? = bn.attributes["epsilon"] { eps = e }
            guard let (w, nw) = try graph.takeForRewrite(conv.inputs[1], uses: uses) else { continue }
            let cout = wShape[0]
            let nb = try Tensor.uninitialized(.float32, [cout])
            let nbp = nb.pointer(Float.self)
            let sp = scale.pointer(Float.self), bp = bias.pointer(Float.self)
            let mp = mean.pointer(Float.self), vp = variance.pointer(Float.self)
            let s = (0..<cout).map { sp[$0] / (vp[$0] + eps).squareRoot() }
            scaleOutputChannels(w, into: nw, by: s)
            for c in 0..<cout {
                let cb = b.map { $0.pointer(Float.self)[c] } ?? 0
                nbp[c] = (cb - mp[c]) * s[c] + bp[c]
            }
            let wName = uniqueName(graph, conv.inputs[1] + "_bnfolded")
            let bName = uniqueName(graph, bn.outputs[0] + "_bias")
            graph.initializers[wName] = nw
            graph.initializers[bName] = nb
            var fused = conv
            fused.inputs = [conv.inputs[0], wName, bName]
            fused.outputs = [bn.outputs[0]]
            fused.name = conv.name
            graph.nodes[ci] = fused
            removed.insert(bi)
            uses[conv.outputs[0]] = 0
            producers[bn.outputs[0]] = ci
            changed = true
        }
        if changed {
            graph.removeNodes(at: removed)
            graph.pruneUnusedInitializers()
        }
        return changed
    }
}

/// target[c, ...] = source[c, ...] * scale[c] for each output channel c of float32 conv weights
/// (target may be source: Graph.takeForRewrite), one rounding per element, with the vector kernel.
private func scaleOutputChannels(_ source: Tensor, into target: Tensor, by scale: [Float]) {
    let per = source.count / scale.count
    let sp = source.pointer(Float.self), tp = target.pointer(Float.self)
    for c in scale.indices {
        var s = scale[c]
        f32BinaryKernel(Int32(SO_BIN_MUL), sp + c * per, 1, &s, 0, tp + c * per, per)
    }
}

/// A name not yet used by any initializer or value of the graph.
func uniqueName(_ graph: Graph, _ base: String) -> String {
    func taken(_ name: String) -> Bool {
        graph.initializers[name] != nil || graph.inputs.contains { $0.name == name }
            || graph.nodes.contains { $0.outputs.contains(name) || $0.inputs.contains(name) }
    }
    if !taken(base) { return base }
    var used = Set(graph.initializers.keys)
    for n in graph.nodes { used.formUnion(n.outputs); used.formUnion(n.inputs) }
    used.formUnion(graph.inputs.map(\.name))
    var i = 1
    while used.contains("\(base)_\(i)") { i += 1 }
    return "\(base)_\(i)"
}

/// Conv followed by Mul or Add with a constant per-output-channel operand (BatchNormalization
/// exported as Mul + Add, as in Inception v2, or a plain scale/shift) folds into the Conv's
/// weights and bias: Mul by s scales output channel c's weights and bias by s[c]; Add of a adds
/// a[c] to its bias. Only when the Conv's output has no other reader.
struct FoldConvAffine: GraphPass {
    let name = "fold-conv-affine"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        var changed = false
        var uses = graph.useCounts()
        var producers = graph.producers()
        let outputs = graph.outputNames
        var removed = Set<Int>()
        for (ni, node) in graph.nodes.enumerated() where (node.opType == "Mul" || node.opType == "Add") && node.isStandardDomain {
            guard node.inputs.count == 2, node.outputs.count == 1, !removed.contains(ni) else { continue }
            for k in 0..<2 {
                let x = node.inputs[k], other = node.inputs[1 - k]
                guard let ci = producers[x], !removed.contains(ci), ci != ni,
                      let t = graph.initializers[other], t.dtype == .float32 else { continue }
                let conv = graph.nodes[ci]
                guard conv.opType == "Conv", conv.isStandardDomain, conv.outputs.count == 1, uses[x] == 1,
                      !outputs.contains(x), conv.inputs.count >= 2,
                      let wShape = graph.initializers[conv.inputs[1]].flatMap({ $0.dtype == .float32 ? $0.shape : nil }),
                      wShape.count >= 3, wShape[0] > 0 else { continue }
                let cout = wShape[0]
                guard let perChannel = perChannelConstant(t, channels: cout, outputRank: wShape.count) else { continue }
                var bias: [Float] = [Float](repeating: 0, count: cout)
                if conv.inputs.count > 2 && !conv.inputs[2].isEmpty {
                    guard let b = graph.initializers[conv.inputs[2]], b.dtype == .float32, b.count == cout else { continue }
                    bias = Array(b.buffer(Float.self))
                }
                var newInputs = conv.inputs
                while newInputs.count < 3 { newInputs.append("") }
                if node.opType == "Mul" {
                    guard let (w, nw) = try graph.takeForRewrite(conv.inputs[1], uses: uses) else { continue }
                    scaleOutputChannels(w, into: nw, by: perChannel)
                    for c in 0..<cout { bias[c] *= perChannel[c] }
                    let wName = uniqueName(graph, conv.inputs[1] + "_scaled")
                    graph.initializers[wName] = nw
                    newInputs[1] = wName
                } else {
                    for c in 0..<cout { bias[c] += perChannel[c] }
                }
                let bName = uniqueName(graph, node.outputs[0] + "_bias")
                graph.initializers[bName] = Tensor(validShape: [cout], scalars: bias)
                newInputs[2] = bName
                var fused = conv
                fused.inputs = newInputs
                fused.outputs = node.outputs
                graph.nodes[ci] = fused
                removed.insert(ni)
                uses[x] = 0
                producers[node.outputs[0]] = ci
                changed = true
                break
            }
        }
        if changed {
            graph.removeNodes(at: removed)
            graph.pruneUnusedInitializers()
        }
        return changed
    }
}

/// Conv whose output is only added (Add, or Sum of two) to another tensor of exactly the same shape (a residual
/// connection) becomes com.swiftonnx::FusedConv with that tensor as its fourth input `Z`, added
/// while the output tile is in cache. A following activation is then fused by FuseConvActivation.
struct FuseConvAdd: GraphPass {
    let name = "fuse-conv-add"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        var changed = false
        let uses = graph.useCounts()
        let producers = graph.producers()
        let outputs = graph.outputNames
        var removed = Set<Int>()
        // A two-input Sum of same-shaped tensors is the same Add (ResNet's Caffe2 exports use Sum).
        for (ai, add) in graph.nodes.enumerated() where (add.opType == "Add" || add.opType == "Sum") && add.isStandardDomain {
            guard add.inputs.count == 2, add.outputs.count == 1, add.opType == "Sum" || (opsets[""] ?? 1) >= 7 else { continue }
            for (k, x) in add.inputs.enumerated() {
                guard let ci = producers[x], !removed.contains(ci), ci != ai else { continue }
                let conv = graph.nodes[ci]
                let plainConv = conv.opType == "Conv" && conv.isStandardDomain
                let fusedNoAct = conv.opType == "FusedConv" && conv.domain == FuseConvActivation.domain
                    && conv.attributes["activation"] == nil && conv.inputs.count < 4
                guard plainConv || fusedNoAct, conv.outputs.count == 1, uses[x] == 1, !outputs.contains(x) else { continue }
                let z = add.inputs[1 - k]
                guard !z.isEmpty, z != x, graph.sameKnownFloatShape(x, z) else { continue }
                // Z must be available before the conv runs: not produced by a node that reads the conv's output.
                var fused = conv
                fused.domain = FuseConvActivation.domain
                fused.opType = "FusedConv"
                while fused.inputs.count < 3 { fused.inputs.append("") }
                fused.inputs.append(z)
                fused.outputs = add.outputs
                graph.nodes[ci] = fused
                removed.insert(ai)
                changed = true
                break
            }
        }
        if changed {
            graph.removeNodes(at: removed)
        }
        return changed
    }
}

/// Conv followed by an activation (Relu, LeakyRelu, Clip with constant bounds, Sigmoid, HardSigmoid,
/// HardSwish, Tanh) becomes com.swiftonnx::FusedConv, which applies the activation while the output is in cache.
struct FuseConvActivation: GraphPass {
    let name = "fuse-conv-activation"
    static let domain = "com.swiftonnx"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        var changed = false
        let uses = graph.useCounts()
        let producers = graph.producers()
        let outputs = graph.outputNames
        var removed = Set<Int>()
        for (ai, act) in graph.nodes.enumerated() where act.isStandardDomain {
            guard let x = act.inputs.first, let ci = producers[x], !removed.contains(ci) else { continue }
            let conv = graph.nodes[ci]
            let plainConv = conv.opType == "Conv" && conv.isStandardDomain
            let fusedNoAct = conv.opType == "FusedConv" && conv.domain == Self.domain && conv.attributes["activation"] == nil
            guard plainConv || fusedNoAct, conv.outputs.count == 1,
                  uses[x] == 1, !outputs.contains(x), act.outputs.count == 1 else { continue }
            guard let (kind, params) = Self.activation(act, graph: graph) else { continue }
            var fused = conv
            fused.domain = Self.domain
            fused.opType = "FusedConv"
            fused.attributes["activation"] = .string(kind)
            fused.attributes["activation_params"] = .floats(params)
            fused.outputs = act.outputs
            graph.nodes[ci] = fused
            removed.insert(ai)
            changed = true
        }
        if changed {
            graph.removeNodes(at: removed)
            graph.pruneUnusedInitializers()
        }
        return changed
    }

    /// (activation name, parameters) of a node FusedConv and ChannelAffine can apply, else nil.
    static func activation(_ n: Node, graph: Graph) -> (String, [Float])? {
        func f(_ key: String, _ d: Float) -> Float {
            if case .float(let v)? = n.attributes[key] { return v }
            return d
        }
        switch n.opType {
        case "Relu": return ("Relu", [])
        case "LeakyRelu": return ("LeakyRelu", [f("alpha", 0.01)])
        case "Sigmoid": return ("Sigmoid", [])
        case "Tanh": return ("Tanh", [])
        case "HardSigmoid": return ("HardSigmoid", [f("alpha", 0.2), f("beta", 0.5)])
        case "HardSwish": return ("HardSwish", [])
        case "Clip":
            var lo = -Float.greatestFiniteMagnitude, hi = Float.greatestFiniteMagnitude
            if n.inputs.count > 1 {
                for (k, name) in n.inputs.enumerated().dropFirst() where !name.isEmpty {
                    guard let t = graph.initializers[name], t.dtype == .float32, t.count == 1 else { return nil }
                    if k == 1 { lo = t.pointer(Float.self)[0] } else { hi = t.pointer(Float.self)[0] }
                }
            } else {
                lo = f("min", lo)
                hi = f("max", hi)
            }
            return ("Clip", [lo, hi])
        default: return nil
        }
    }
}

/// FusedConv with a Relu or HardSwish activation whose only reader is a ChannelAffine (without
/// activation) with the same scale and the same bias for every channel (PP-LCNet's learnable affine
/// block, y = s * act(conv(x)) + b) takes the affine map into its epilogue (activations ReluAffine /
/// HardSwishAffine, parameters [s, b]), rounded as the ChannelAffine rounds it: one pass over the
/// output fewer.
struct FuseConvPostAffine: GraphPass {
    let name = "fuse-conv-post-affine"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        var changed = false
        let uses = graph.useCounts()
        let readers = graph.readers()
        let outputs = graph.outputNames
        var removed = Set<Int>()
        for (ci, conv) in graph.nodes.enumerated()
        where conv.opType == "FusedConv" && conv.domain == FuseConvActivation.domain && conv.outputs.count == 1 {
            guard case .string(let act)? = conv.attributes["activation"], act == "Relu" || act == "HardSwish" else { continue }
            let y = conv.outputs[0]
            guard uses[y] == 1, !outputs.contains(y), let ai = readers[y], !removed.contains(ai) else { continue }
            let affine = graph.nodes[ai]
            guard FuseChannelAffine.isAffine(affine), affine.inputs[0] == y, affine.attributes["activation"] == nil,
                  let s = Self.uniform(graph.initializers[affine.inputs[1]]),
                  let b = Self.uniform(graph.initializers[affine.inputs[2]]) else { continue }
            var fused = conv
            fused.attributes["activation"] = .string(act + "Affine")
            fused.attributes["activation_params"] = .floats([s, b])
            fused.outputs = affine.outputs
            graph.nodes[ci] = fused
            removed.insert(ai)
            changed = true
        }
        if changed {
            graph.removeNodes(at: removed)
            graph.pruneUnusedInitializers()
        }
        return changed
    }

    /// The value every element of a non-empty float32 constant has (bit for bit), else nil.
    static func uniform(_ t: Tensor?) -> Float? {
        guard let t = t, t.dtype == .float32, t.count >= 1 else { return nil }
        let p = t.pointer(Float.self)
        let v = p[0]
        for i in 1..<t.count where p[i].bitPattern != v.bitPattern { return nil }
        return v
    }
}
