import Foundation

/// Resize ops.
func registerResizeOps(_ r: inout OpRegistry) {
    r.register("Resize", infer: Inference(inferResize), closure: makeResize)
    r.register("Upsample", infer: Inference(inferResize), closure: makeUpsample)
}

/// Output shape from constant scales or sizes: through `resizeGeometry` when every input dim is known,
/// else per axis (a scale of 1 keeps the dim, symbolic or not; a stretched size sets it).
private func inferResize(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let dt = ins.dtype(0)
    guard let x = ins.shape(0) else { return [TypeInfo(dtype: dt, shape: nil)] }
    let unknown = [TypeInfo(dtype: dt, shape: Array(repeating: .unknown, count: x.count))]
    func doubles(_ i: Int) -> [Double]? { (try? ins.at(i).constant?.readAsDoubles()) ?? nil }
    var scales: [Double]? = nil, sizes: [Int]? = nil
    var axes: [Int]? = nil, keepAspect = "stretch"
    if ctx.opType == "Upsample" && ctx.opset < 9 {
        if let f = try ctx.floats("scales") { scales = f.map(Double.init) }
        else if let h = try ctx.float("height_scale"), let w = try ctx.float("width_scale") { scales = [1, 1, Double(h), Double(w)] }
    } else if ctx.opType == "Upsample" || ctx.opset < 11 {
        scales = doubles(1)
    } else {
        axes = try ctx.ints("axes").map { try $0.map { try normalizeAxis($0, rank: x.count, "axes") } }
        keepAspect = try ctx.string("keep_aspect_ratio_policy", default: "stretch")
        if ctx.hasInput(2) {
            guard let sc = doubles(2) else { return unknown }
            if !sc.isEmpty { scales = sc }
        }
        if scales == nil, ctx.hasInput(3) {
            guard let z = ins.ints(3) else { return unknown }
            sizes = z
        }
    }
    guard scales != nil || sizes != nil else { return unknown }
    let known = x.compactMap(\.value)
    if known.count == x.count {
        let geo = try resizeGeometry(known, scales: scales, sizes: sizes, axes: axes, keepAspect: keepAspect)
        return [TypeInfo(dtype: dt, shape: geo.out.map { .known($0) })]
    }
    let ax = axes ?? Array(0..<x.count)
    var out = x
    for (i, a) in ax.enumerated() {
        if let sc = scales, i < sc.count {
            if sc[i] == 1 { out[a] = x[a]; continue }
            guard let n = x[a].value else { out[a] = .unknown; continue }
            // Not finite or past Int: the run's own geometry check reports it.
            guard let v = Int(exactly: (sc[i] * Double(n)).rounded(.down)) else { out[a] = .unknown; continue }
            out[a] = .known(v)
        } else if let z = sizes, i < z.count {
            out[a] = keepAspect == "stretch" ? .known(z[i]) : .unknown
        } else {
            return unknown
        }
    }
    return [TypeInfo(dtype: dt, shape: out)]
}

/// Resize attributes, fixed per node.
struct ResizeConfig {
    enum Mode { case nearest, linear, cubic }
    var mode: Mode = .nearest
    var coordinateMode = "half_pixel"
    var nearestMode = "round_prefer_floor"
    var cubicA = -0.75
    var excludeOutside = false
    var extrapolationValue = 0.0
    var antialias = false
    var axes: [Int]? = nil
    var keepAspect = "stretch"
}

/// Taps of one resized axis.
struct ResizeAxisTaps {
    var taps: Int
    var index: [Int]
    var weight: [Double]
    var extrapolate: [Bool]?
}

/// Source coordinate of output position `y` (reference `_compute_x_ori`).
private func sourceCoordinate(_ y: Double, _ cfg: ResizeConfig, scale: Double, inLen: Int, outLen: Int,
                              roi: (Double, Double)) -> Double {
    let outF = scale * Double(inLen)
    switch cfg.coordinateMode {
    case "align_corners": return outF == 1 ? 0 : y * Double(inLen - 1) / (outF - 1)
    case "asymmetric": return y / scale
    case "tf_crop_and_resize":
        let x = outF == 1 ? (roi.1 - roi.0) * Double(inLen - 1) / 2
            : y * (roi.1 - roi.0) * Double(inLen - 1) / (outF - 1)
        return x + roi.0 * Double(inLen - 1)
    case "pytorch_half_pixel": return outF == 1 ? -0.5 : (y + 0.5) / scale - 0.5
    case "half_pixel_symmetric":
        let adjustment = Double(outLen) / outF
        let center = Double(inLen) / 2
        return center * (1 - adjustment) + (y + 0.5) / scale - 0.5
    case "tf_half_pixel_for_nn": return (y + 0.5) / scale
    default: return (y + 0.5) / scale - 0.5  // half_pixel
    }
}

/// Cubic convolution weight (Keys kernel with parameter a).
private func cubicWeight(_ x0: Double, _ a: Double) -> Double {
    let x = abs(x0)
    if x <= 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
    if x < 2 { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
    return 0
}

/// Per-axis taps for linear/cubic (and nearest, as one tap).
func resizeAxisTaps(_ cfg: ResizeConfig, scale: Double, inLen: Int, outLen: Int, roi: (Double, Double)) -> ResizeAxisTaps {
    var taps: Int
    var start: Int  // first tap offset relative to floor(x)
    let sc = min(scale, 1.0)
    switch cfg.mode {
    case .nearest: taps = 1; start = 0
    case .linear:
        if cfg.antialias { start = Int(floor(-1 / sc)) + 1; taps = 2 - 2 * start } else { start = 0; taps = 2 }
    case .cubic:
        if cfg.antialias { start = Int(floor(-2 / sc)) + 1; taps = 2 - 2 * start } else { start = -1; taps = 4 }
    }
    var index = [Int](repeating: 0, count: outLen * taps)
    var weight = [Double](repeating: 0, count: outLen * taps)
    var extrap: [Bool]? = cfg.coordinateMode == "tf_crop_and_resize" ? [Bool](repeating: false, count: outLen) : nil
    var w = [Double](repeating: 0, count: taps)
    for j in 0..<outLen {
        let x = sourceCoordinate(Double(j), cfg, scale: scale, inLen: inLen, outLen: outLen, roi: roi)
        if extrap != nil && (x < 0 || x > Double(inLen - 1)) { extrap![j] = true }
        var f = x.rounded(.down)
        var r = x - f
        if cfg.mode == .nearest {
            var i: Int
            if r == 0 { i = Int(f) } else {
                switch cfg.nearestMode {
                case "round_prefer_ceil": i = Int(f) + (r >= 0.5 ? 1 : 0)
                case "floor": i = Int(f)
                case "ceil": i = Int(f) + 1
                default: i = Int(f) + (r > 0.5 ? 1 : 0)
                }
            }
            index[j] = min(max(i, 0), inLen - 1)
            weight[j] = 1
            continue
        }
        if r == 0 { f -= 1; r = 1 }
        switch cfg.mode {
        case .linear:
            if cfg.antialias {
                for t in 0..<taps { w[t] = max(0, min(1, 1 - abs((Double(start + t) - r) * sc))) }
            } else { w[0] = 1 - r; w[1] = r }
        case .cubic:
            if cfg.antialias {
                for t in 0..<taps { w[t] = cubicWeight(sc * (Double(start + t) - r), cfg.cubicA) }
            } else {
                let a = cfg.cubicA
                w[0] = ((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a
                w[1] = ((a + 2) * r - (a + 3)) * r * r + 1
                w[2] = ((a + 2) * (1 - r) - (a + 3)) * (1 - r) * (1 - r) + 1
                w[3] = ((a * ((1 - r) + 1) - 5 * a) * ((1 - r) + 1) + 8 * a) * ((1 - r) + 1) - 4 * a
            }
        case .nearest: break
        }
        if cfg.antialias {
            let s = w.reduce(0, +)
            if s != 0 { for t in 0..<taps { w[t] /= s } }
        }
        let fi = Int(f)
        if cfg.excludeOutside {
            var s = 0.0
            for t in 0..<taps {
                let i = fi + start + t
                if i < 0 || i >= inLen { w[t] = 0 }
                s += w[t]
            }
            if s != 0 { for t in 0..<taps { w[t] /= s } }
        }
        for t in 0..<taps {
            index[j * taps + t] = min(max(fi + start + t, 0), inLen - 1)
            weight[j * taps + t] = w[t]
        }
    }
    return ResizeAxisTaps(taps: taps, index: index, weight: weight, extrapolate: extrap)
}

/// Computes the output shape and per-axis scales from scales or sizes (reference `_interpolate_nd`).
func resizeGeometry(_ shape: [Int], scales: [Double]?, sizes: [Int]?, axes: [Int]?, keepAspect: String)
    throws -> (out: [Int], scales: [Double], resized: [Int]) {
    let rank = shape.count
    let ax = axes ?? Array(0..<rank)
    var out = shape
    var sc = [Double](repeating: 1, count: rank)
    if let s = scales {
        guard s.count == ax.count else { throw OpError("Resize: \(s.count) scales for \(ax.count) axes of input \(describeShape(shape))") }
        for (i, a) in ax.enumerated() {
            guard s[i] > 0, s[i].isFinite else { throw OpError("Resize: scales must be positive, got \(s)") }
            sc[a] = s[i]
            let o = (s[i] * Double(shape[a])).rounded(.down)
            guard o < 1e12 else { throw OpError("Resize: output size too large for scales \(s)") }
            out[a] = Int(o)
        }
    } else if let z = sizes {
        guard z.count == ax.count else { throw OpError("Resize: \(z.count) sizes for \(ax.count) axes of input \(describeShape(shape))") }
        for (i, a) in ax.enumerated() {
            guard z[i] >= 0 else { throw OpError("Resize: sizes must be non-negative, got \(z)") }
            out[a] = z[i]
            sc[a] = shape[a] == 0 ? 1 : Double(z[i]) / Double(shape[a])
        }
        if keepAspect != "stretch" {
            let vals = ax.map { sc[$0] }
            guard let s = keepAspect == "not_larger" ? vals.min() : vals.max() else { return (out, sc, ax) }
            for a in ax {
                sc[a] = s
                out[a] = Int(s * Double(shape[a]) + 0.5)
            }
        }
    } else {
        throw OpError("Resize: neither scales nor sizes is given")
    }
    return (out, sc, ax)
}

/// Runs a resize of `x` to `outShape`.
func resizeTensor(_ x: Tensor, _ cfg: ResizeConfig, outShape: [Int], scales: [Double], axes: [Int],
                  roi: [Double]?, threads: Int = 1) throws -> Tensor {
    let rank = x.rank
    let tfCrop = cfg.coordinateMode == "tf_crop_and_resize"
    let roiFor = { (a: Int) -> (Double, Double) in
        guard let r = roi, r.count == 2 * rank else { return (0, 1) }
        return (r[a], r[a + rank])
    }
    // Axes that change anything (the reference skips identity axes).
    var active: [Int] = []
    for a in axes.sorted() {
        let rr = roiFor(a)
        let identity = abs(scales[a] - 1) <= 1e-9 && outShape[a] == x.shape[a]
            && (!tfCrop || (abs(rr.0) <= 1e-9 && abs(rr.1 - 1) <= 1e-9))
        if !identity { active.append(a) }
    }
    if x.count == 0 || outShape.contains(0) { return try Tensor.zeros(x.dtype, outShape) }
    guard x.dtype != .string, x.dtype.isComputable else { throw ONNXError.unsupportedType("Resize: element type \(x.dtype)") }
    if active.isEmpty { return x.reshaped(outShape) }

    if cfg.mode == .nearest {
        // Gather by index tables on element bit patterns (exact for every type).
        let inStrides = contiguousStrides(x.shape)
        var offsets: [[Int]] = []
        for a in 0..<rank {
            if !active.contains(a) {
                offsets.append((0..<outShape[a]).map { $0 * inStrides[a] })
                continue
            }
            let t = resizeAxisTaps(cfg, scale: scales[a], inLen: x.shape[a], outLen: outShape[a], roi: roiFor(a))
            offsets.append((0..<outShape[a]).map { j in
                (t.extrapolate?[j] ?? false) ? -1 : t.index[j] * inStrides[a]
            })
        }
        let y = try Tensor.uninitialized(x.dtype, outShape)
        let fillT = try Tensor.fromDoubles([cfg.extrapolationValue], shape: [1], dtype: x.dtype)
        func gather<T>(_: T.Type) {
            resizeNearestGather(UnsafePointer(x.pointer(T.self)), y.pointer(T.self), outShape: outShape,
                                offsets: offsets, fill: fillT.pointer(T.self)[0], threads: threads)
        }
        switch x.dtype.byteSize {
        case 1: gather(UInt8.self)
        case 2: gather(UInt16.self)
        case 4: gather(UInt32.self)
        case 8: gather(UInt64.self)
        default: throw ONNXError.unsupportedType("Resize: element type \(x.dtype)")
        }
        return y
    }

    // Linear / cubic: float32 for float32/float16/bfloat16, float64 otherwise.
    if x.dtype == .float32 || x.dtype == .float16 || x.dtype == .bfloat16 {
        let src = try x.converted(to: .float32)
        let y = try resizeFloat(src, Float.self, cfg, outShape: outShape, scales: scales, active: active, roiFor: roiFor,
                                threads: threads)
        return try y.converted(to: x.dtype)
    }
    let src = try x.converted(to: .float64)
    let y = try resizeFloat(src, Double.self, cfg, outShape: outShape, scales: scales, active: active, roiFor: roiFor)
    if x.dtype == .float64 { return y }
    // Integers: round to nearest (half to even) and saturate, as the reference does.
    let (lo, hi): (Double, Double)
    switch x.dtype {
    case .int8: (lo, hi) = (-128, 127)
    case .uint8: (lo, hi) = (0, 255)
    case .int16: (lo, hi) = (-32768, 32767)
    case .uint16: (lo, hi) = (0, 65535)
    case .int32: (lo, hi) = (-2147483648, 2147483647)
    case .uint32: (lo, hi) = (0, 4294967295)
    case .int64: (lo, hi) = (-9.2233720368547758e18, 9.2233720368547748e18)
    case .uint64: (lo, hi) = (0, 1.8446744073709550e19)
    default: (lo, hi) = (-Double.infinity, Double.infinity)
    }
    let p = y.pointer(Double.self)
    for i in 0..<y.count { p[i] = min(max(p[i].rounded(.toNearestOrEven), lo), hi) }
    return try y.converted(to: x.dtype)
}

private func resizeFloat<T: BinaryFloatingPoint>(_ x: Tensor, _: T.Type, _ cfg: ResizeConfig, outShape: [Int],
                                                 scales: [Double], active: [Int],
                                                 roiFor: @escaping (Int) -> (Double, Double),
                                                 threads: Int = 1) throws -> Tensor {
    let rank = x.rank
    let tapsFor = { (a: Int) in resizeAxisTaps(cfg, scale: scales[a], inLen: x.shape[a], outLen: outShape[a], roi: roiFor(a)) }
    // Fused bilinear path for float32 when only the two innermost axes change.
    if T.self == Float.self, cfg.mode == .linear, !cfg.antialias, cfg.coordinateMode != "tf_crop_and_resize",
       rank >= 2, active.allSatisfy({ $0 >= rank - 2 }) {
        let ty = tapsFor(rank - 2), tx = tapsFor(rank - 1)
        let y = try Tensor.uninitialized(.float32, outShape)
        let planes = x.shape[..<(rank - 2)].reduce(1, *)
        let yw = ty.weight.map { Float($0) }, xw = tx.weight.map { Float($0) }
        ty.index.withUnsafeBufferPointer { yi in tx.index.withUnsafeBufferPointer { xi in
        yw.withUnsafeBufferPointer { ywp in xw.withUnsafeBufferPointer { xwp in
            resizeBilinear2DF32(x.pointer(Float.self), y.pointer(Float.self), planes: planes,
                                inH: x.shape[rank - 2], inW: x.shape[rank - 1], outH: outShape[rank - 2], outW: outShape[rank - 1],
                                yIndex: yi.baseAddress!, yWeight: ywp.baseAddress!, xIndex: xi.baseAddress!, xWeight: xwp.baseAddress!,
                                threads: threads)
        }}}}
        return y
    }
    var cur = x
    var curShape = x.shape
    let fill = T(cfg.extrapolationValue)
    for a in active {
        let t = tapsFor(a)
        var nextShape = curShape
        nextShape[a] = outShape[a]
        let next = try Tensor.uninitialized(T.dtype(), nextShape)
        let outer = curShape[..<a].reduce(1, *), inner = curShape[(a + 1)...].reduce(1, *)
        let w = t.weight.map { T($0) }
        t.index.withUnsafeBufferPointer { ip in w.withUnsafeBufferPointer { wp in
            let run = { (e: UnsafePointer<Bool>?) in
                resizeAxisPass(UnsafePointer(cur.pointer(T.self)), next.pointer(T.self), outer: outer, inLen: curShape[a],
                               outLen: outShape[a], inner: inner, taps: t.taps, index: ip.baseAddress!,
                               weight: wp.baseAddress!, extrapolate: e, fill: fill)
            }
            if let e = t.extrapolate { e.withUnsafeBufferPointer { run($0.baseAddress!) } } else { run(nil) }
        }}
        cur = next
        curShape = nextShape
    }
    return cur
}

private extension BinaryFloatingPoint {
    static func dtype() -> DType { Self.self == Double.self ? .float64 : .float32 }
}

private func parseMode(_ ctx: OpContext) throws -> ResizeConfig.Mode {
    switch try ctx.string("mode", default: "nearest") {
    case "nearest": return .nearest
    case "linear", "bilinear", "trilinear": return .linear
    case "cubic", "bicubic": return .cubic
    case let m: throw ctx.attributeError("mode", "unknown mode \(m)")
    }
}

private func makeResize(_ ctx: OpContext) throws -> OpBody {
    var cfg = ResizeConfig()
    cfg.mode = try parseMode(ctx)
    let opset = ctx.opset
    if opset < 11 {
        // Opset 10: asymmetric coordinates, nearest rounds down (as Upsample).
        cfg.coordinateMode = "asymmetric"
        cfg.nearestMode = "floor"
        guard cfg.mode != .cubic else { throw ctx.attributeError("mode", "cubic needs opset 11") }
    } else {
        cfg.coordinateMode = try ctx.string("coordinate_transformation_mode", default: "half_pixel")
        let known = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                     "tf_crop_and_resize", "tf_half_pixel_for_nn"]
        guard known.contains(cfg.coordinateMode) else {
            throw ctx.attributeError("coordinate_transformation_mode", "unknown value \(cfg.coordinateMode)")
        }
        cfg.nearestMode = try ctx.string("nearest_mode", default: "round_prefer_floor")
        guard ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"].contains(cfg.nearestMode) else {
            throw ctx.attributeError("nearest_mode", "unknown value \(cfg.nearestMode)")
        }
        cfg.cubicA = Double(try ctx.float("cubic_coeff_a", default: -0.75))
        cfg.excludeOutside = try ctx.int("exclude_outside", default: 0) != 0
        cfg.extrapolationValue = Double(try ctx.float("extrapolation_value", default: 0))
        cfg.antialias = try ctx.int("antialias", default: 0) != 0
        cfg.axes = try ctx.ints("axes")
        cfg.keepAspect = try ctx.string("keep_aspect_ratio_policy", default: "stretch")
        guard ["stretch", "not_larger", "not_smaller"].contains(cfg.keepAspect) else {
            throw ctx.attributeError("keep_aspect_ratio_policy", "unknown value \(cfg.keepAspect)")
        }
    }
    if cfg.mode == .nearest { cfg.antialias = false }
    let config = cfg
    return { inputs, env in
        let x = try inputs.required(0, "X")
        var axes: [Int]? = nil
        if let ax = config.axes {
            axes = try ax.map { try normalizeAxis($0, rank: x.rank, "axes") }
            guard Set(axes!).count == axes!.count else { throw OpError("Resize: repeated axes \(ax)") }
        }
        var scales: [Double]? = nil, sizes: [Int]? = nil, roi: [Double]? = nil
        if opset < 11 {
            scales = try inputs.required(1, "scales").readAsDoubles()
        } else {
            if let r = inputs.optional(1), r.count > 0 { roi = try r.readAsDoubles() }
            if let s = inputs.optional(2), s.count > 0 { scales = try s.readAsDoubles() }
            if scales == nil, let z = inputs.optional(3), z.count > 0 { sizes = try z.readAsInts() }
        }
        let nAx = axes?.count ?? x.rank
        if var r = roi {
            guard r.count == 2 * nAx else { throw OpError("Resize: roi has \(r.count) values, expected \(2 * nAx)") }
            if let ax = axes {
                var full = [Double](repeating: 0, count: x.rank) + [Double](repeating: 1, count: x.rank)
                for (i, a) in ax.enumerated() { full[a] = r[i]; full[a + x.rank] = r[i + nAx] }
                r = full
            }
            roi = r
        }
        let geo = try resizeGeometry(x.shape, scales: scales, sizes: sizes, axes: axes, keepAspect: config.keepAspect)
        guard resizeShapeIsSane(geo.out) else { throw OpError("Resize: output shape \(geo.out) is too large") }
        return [try resizeTensor(x, config, outShape: geo.out, scales: geo.scales, axes: geo.resized, roi: roi,
                                    threads: env.threads)]
    }
}

private func makeUpsample(_ ctx: OpContext) throws -> OpBody {
    var cfg = ResizeConfig()
    cfg.mode = try parseMode(ctx)
    guard cfg.mode != .cubic else { throw ctx.attributeError("mode", "Upsample supports nearest and linear") }
    cfg.coordinateMode = "asymmetric"
    cfg.nearestMode = "floor"
    let attrScales: [Double]?
    if ctx.opset < 9 {
        if let s = try ctx.floats("scales") {
            attrScales = s.map(Double.init)
        } else if let h = try ctx.float("height_scale"), let w = try ctx.float("width_scale") {
            attrScales = [1, 1, Double(h), Double(w)]  // opset 1
        } else {
            throw ctx.attributeError("scales", "required attribute is missing")
        }
    } else { attrScales = nil }
    let config = cfg
    return { inputs, env in
        let x = try inputs.required(0, "X")
        let scales = try attrScales ?? inputs.required(1, "scales").readAsDoubles()
        guard scales.count == x.rank else { throw OpError("Upsample: \(scales.count) scales for input \(describeShape(x.shape))") }
        let geo = try resizeGeometry(x.shape, scales: scales, sizes: nil, axes: nil, keepAspect: "stretch")
        guard resizeShapeIsSane(geo.out) else { throw OpError("Upsample: output shape \(geo.out) is too large") }
        return [try resizeTensor(x, config, outShape: geo.out, scales: geo.scales, axes: geo.resized, roi: nil,
                                    threads: env.threads)]
    }
}

/// Whether a shape's element count fits in memory terms (no overflow, at most 2^36 elements).
private func resizeShapeIsSane(_ shape: [Int]) -> Bool {
    var n = 1
    for d in shape {
        guard d >= 0 else { return false }
        let (m, o) = n.multipliedReportingOverflow(by: d)
        if o || m > (1 << 36) { return false }
        n = m
    }
    return true
}
