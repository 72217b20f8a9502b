import Foundation

/// Spatial sampling ops: GridSample (opsets 16 and 20: 1-3 spatial dims; nearest, linear and cubic;
/// zeros, border and reflection padding) and AffineGrid (opset 20: the sampling grid of a batch of
/// affine matrices). Float tensors of any float type, computed in float32.
func registerSamplingOps(_ r: inout OpRegistry) {
    r.register("GridSample", infer: Inference { _, ins in
        guard let x = ins.shape(0), let g = ins.shape(1), x.count >= 3, g.count == x.count else {
            return [TypeInfo(dtype: ins.dtype(0), shape: nil)]
        }
        return [TypeInfo(dtype: ins.dtype(0), shape: [x[0], x[1]] + Array(g[1..<(g.count - 1)]))]
    }, closure: makeGridSample)
    r.register("AffineGrid", infer: Inference { _, ins in
        guard let size = ins.ints(1), size.count == 4 || size.count == 5 else { return [TypeInfo(dtype: ins.dtype(0), shape: nil)] }
        return [TypeInfo(dtype: ins.dtype(0), shape: ([size[0]] + Array(size[2...]) + [size.count - 2]).map { .known($0) })]
    }, closure: makeAffineGrid)
}

private enum GridPadding { case zeros, border, reflection }
private enum GridMode { case nearest, linear, cubic }

/// Reflects x into [lo, hi] by its nearest border, as often as needed.
@inline(__always)
private func reflect(_ x: Float, _ lo: Float, _ hi: Float) -> Float {
    let range = hi - lo
    guard range > 0 else { return lo }
    if x < lo {
        let dx = lo - x, n = (dx / range).rounded(.towardZero), r = dx - n * range
        return n.truncatingRemainder(dividingBy: 2) == 0 ? lo + r : hi - r
    }
    if x > hi {
        let dx = x - hi, n = (dx / range).rounded(.towardZero), r = dx - n * range
        return n.truncatingRemainder(dividingBy: 2) == 0 ? hi - r : lo + r
    }
    return x
}

/// Keys' cubic convolution weights (alpha -0.75) of the 4 neighbours x0-1...x0+2 at fraction t.
@inline(__always)
private func cubicWeights(_ t: Float) -> (Float, Float, Float, Float) {
    let a: Float = -0.75
    let x0 = t + 1, x1 = t, x2 = 1 - t, x3 = 2 - t
    return (((a * x0 - 5 * a) * x0 + 8 * a) * x0 - 4 * a,
            ((a + 2) * x1 - (a + 3)) * x1 * x1 + 1,
            ((a + 2) * x2 - (a + 3)) * x2 * x2 + 1,
            ((a * x3 - 5 * a) * x3 + 8 * a) * x3 - 4 * a)
}

private func makeGridSample(_ ctx: OpContext) throws -> OpBody {
    let op = "GridSample"
    let modeName = try ctx.string("mode", default: ctx.opset >= 20 ? "linear" : "bilinear")
    let mode: GridMode
    switch modeName {
    case "nearest": mode = .nearest
    case "linear", "bilinear": mode = .linear
    case "cubic", "bicubic": mode = .cubic
    default: throw ctx.attributeError("mode", "must be nearest, linear or cubic, got '\(modeName)'")
    }
    let padName = try ctx.string("padding_mode", default: "zeros")
    let padding: GridPadding
    switch padName {
    case "zeros": padding = .zeros
    case "border": padding = .border
    case "reflection": padding = .reflection
    default: throw ctx.attributeError("padding_mode", "must be zeros, border or reflection, got '\(padName)'")
    }
    let align = try ctx.int("align_corners", default: 0) != 0
    return { inputs, _ in
        let x0 = try inputs.required(0, "X"), g0 = try inputs.required(1, "grid")
        guard x0.dtype.isFloatingPoint, g0.dtype.isFloatingPoint else {
            throw ONNXError.unsupportedType("\(op): X (\(x0.dtype)) and grid (\(g0.dtype)) must be float tensors")
        }
        let r = x0.rank - 2
        guard (1...3).contains(r), g0.rank == x0.rank, g0.shape[0] == x0.shape[0], g0.shape[g0.rank - 1] == r else {
            throw OpError("\(op): X \(describeShape(x0.shape)) and grid \(describeShape(g0.shape)) do not fit: grid must be (N, spatial..., \(max(r, 0))) for X of rank 3 to 5")
        }
        guard mode != .cubic || r == 2 else { throw OpError("\(op): cubic mode supports 2 spatial dimensions only, X has \(r)") }
        let x = try x0.converted(to: .float32), g = try g0.converted(to: .float32)
        let n = x.shape[0], c = x.shape[1]
        let dims = Array(x.shape[2...])
        let outSpatial = Array(g.shape[1..<(g.rank - 1)])
        let points = outSpatial.reduce(1, *), plane = dims.reduce(1, *)
        let y = try Tensor.uninitialized(.float32, [n, c] + outSpatial)
        let xp = x.pointer(Float.self), gp = g.pointer(Float.self), yp = y.pointer(Float.self)
        var strides = [Int](repeating: 1, count: r)
        for i in stride(from: r - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * dims[i + 1] }
        let lo = dims.map { _ in align ? Float(0) : Float(-0.5) }, hi = dims.map { align ? Float($0 - 1) : Float($0) - 0.5 }
        // Per point: up to 4 neighbours per dim, each an offset (-1 when it reads zero) and a weight.
        var idx = [[Int]](repeating: [], count: r), wts = [[Float]](repeating: [], count: r)
        /// The element offset of index i along dim d after padding, or -1 for a zero.
        func resolve(_ i: Int, _ d: Int) -> Int {
            if i >= 0 && i < dims[d] { return i * strides[d] }
            switch padding {
            case .zeros: return -1
            case .border: return min(max(i, 0), dims[d] - 1) * strides[d]
            case .reflection:
                let v = Int(reflect(Float(i), lo[d], hi[d]))
                return min(max(v, 0), dims[d] - 1) * strides[d]
            }
        }
        for b in 0..<n {
            for p in 0..<points {
                let gr = gp + (b * points + p) * r
                for d in 0..<r {
                    // grid's last axis lists x (innermost dim) first.
                    let v = gr[r - 1 - d], len = Float(dims[d])
                    var coord = align ? (v + 1) / 2 * (len - 1) : ((v + 1) * len - 1) / 2
                    if mode == .nearest { coord = coord.rounded(.toNearestOrEven) }
                    if coord < lo[d] || coord > hi[d] {
                        if padding == .border { coord = min(max(coord, 0), len - 1) }
                        else if padding == .reflection { coord = reflect(coord, lo[d], hi[d]) }
                    }
                    // A NaN or far-away coordinate (hostile grids) reads only outside pixels: every
                    // neighbour of -4 or of len + 4 is outside, so the result is the same and the
                    // index arithmetic below stays in range.
                    coord = coord.isNaN ? -4 : min(max(coord, -4), len + 4)
                    switch mode {
                    case .nearest:
                        idx[d] = [resolve(Int(coord.rounded(.towardZero)), d)]; wts[d] = [1]
                    case .linear:
                        let f = coord.rounded(.down), i0 = Int(f), t = coord - f
                        idx[d] = [resolve(i0, d), resolve(i0 + 1, d)]; wts[d] = [1 - t, t]
                    case .cubic:
                        let f = coord.rounded(.down), i0 = Int(f), w = cubicWeights(coord - f)
                        idx[d] = [resolve(i0 - 1, d), resolve(i0, d), resolve(i0 + 1, d), resolve(i0 + 2, d)]
                        wts[d] = [w.0, w.1, w.2, w.3]
                    }
                }
                for ch in 0..<c {
                    let src = xp + (b * c + ch) * plane
                    var acc: Float = 0
                    switch r {
                    case 1:
                        for (i, w) in zip(idx[0], wts[0]) where i >= 0 { acc += w * src[i] }
                    case 2:
                        for (i, wi) in zip(idx[0], wts[0]) {
                            var row: Float = 0
                            for (j, wj) in zip(idx[1], wts[1]) where i >= 0 && j >= 0 { row += wj * src[i + j] }
                            acc += wi * row
                        }
                    default:
                        for (i, wi) in zip(idx[0], wts[0]) {
                            var plane2: Float = 0
                            for (j, wj) in zip(idx[1], wts[1]) {
                                var row: Float = 0
                                for (k, wk) in zip(idx[2], wts[2]) where i >= 0 && j >= 0 && k >= 0 { row += wk * src[i + j + k] }
                                plane2 += wj * row
                            }
                            acc += wi * plane2
                        }
                    }
                    yp[(b * c + ch) * points + p] = acc
                }
            }
        }
        return [try y.converted(to: x0.dtype)]
    }
}

private func makeAffineGrid(_ ctx: OpContext) throws -> OpBody {
    let op = "AffineGrid"
    let align = try ctx.int("align_corners", default: 0) != 0
    return { inputs, _ in
        let t0 = try inputs.required(0, "theta")
        guard t0.dtype.isFloatingPoint else { throw ONNXError.unsupportedType("\(op): theta has element type \(t0.dtype) (expected a float type)") }
        let size = try (try inputs.required(1, "size")).readAsInts()
        guard size.count == 4 || size.count == 5 else { throw OpError("\(op): size must have 4 (2-D) or 5 (3-D) values, got \(size)") }
        let r = size.count - 2
        let n = size[0], spatial = Array(size[2...])
        guard size.allSatisfy({ $0 >= 0 }), t0.shape == [n, r, r + 1] else {
            throw OpError("\(op): theta \(describeShape(t0.shape)) must be (\(n), \(r), \(r + 1)) for size \(size)")
        }
        let points = try checkedProduct(spatial, op)
        let theta = try t0.converted(to: .float32)
        let y = try Tensor.uninitialized(.float32, [n] + spatial + [r])
        let tp = theta.pointer(Float.self), yp = y.pointer(Float.self)
        // Base coordinates per dim in [-1, 1] (pixel centres, or corners when aligned).
        let base: [[Float]] = spatial.map { len in
            (0..<len).map { i in
                if align { return len > 1 ? -1 + 2 * Float(i) / Float(len - 1) : -1 }
                return -1 + (2 * Float(i) + 1) / Float(len)
            }
        }
        var homo = [Float](repeating: 1, count: r + 1)
        for b in 0..<n {
            let th = tp + b * r * (r + 1)
            for p in 0..<points {
                // (x, y[, z]) with x along the innermost dim.
                var rest = p
                for d in stride(from: r - 1, through: 0, by: -1) {
                    homo[r - 1 - d] = base[d][rest % spatial[d]]
                    rest /= spatial[d]
                }
                for o in 0..<r {
                    var acc: Float = 0
                    for k in 0...r { acc += th[o * (r + 1) + k] * homo[k] }
                    yp[(b * points + p) * r + o] = acc
                }
            }
        }
        return [try y.converted(to: t0.dtype)]
    }
}
