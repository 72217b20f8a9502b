import Foundation

/// Geometry of a convolution with up to 3 spatial dims, normalized to (D, H, W): missing leading
/// dims have size 1, kernel 1, stride 1, dilation 1 and no padding. `p*` are the begin pads.
struct ConvGeometry: Sendable {
    var iD = 1, iH = 1, iW = 1
    var oD = 1, oH = 1, oW = 1
    var kD = 1, kH = 1, kW = 1
    var sD = 1, sH = 1, sW = 1
    var dD = 1, dH = 1, dW = 1
    var pD = 0, pH = 0, pW = 0

    var inPlane: Int { iD * iH * iW }
    var outPlane: Int { oD * oH * oW }
    var kernelSize: Int { kD * kH * kW }
    /// 1x1(x1) kernel, stride 1, no padding: the input plane is already the column matrix.
    var isPointwise: Bool {
        kernelSize == 1 && sD == 1 && sH == 1 && sW == 1 && pD == 0 && pH == 0 && pW == 0
            && oD == iD && oH == iH && oW == iW
    }
}

/// The range of `i` in [0, count) for which `i * stride + off` lies in [0, limit).
@inline(__always) func convValidRange(off: Int, stride: Int, limit: Int, count: Int) -> (Int, Int) {
    let lo = off >= 0 ? 0 : (-off + stride - 1) / stride
    let hi = off >= limit ? 0 : (limit - off + stride - 1) / stride
    let h = min(hi, count)
    return (min(lo, h), h)
}

// MARK: im2col / col2im

/// Writes the column matrix for `channels` input planes at `x` and output positions [p0, p1)
/// (flattened over oD*oH*oW) into `col`: rows (c, kd, kh, kw), `p1 - p0` columns.
func im2col<T: BinaryFloatingPoint>(_ x: UnsafePointer<T>, channels: Int, _ g: ConvGeometry,
                                    p0: Int, p1: Int, _ col: UnsafeMutablePointer<T>) {
    let n = p1 - p0
    if n <= 0 { return }
    let inPlane = g.inPlane
    var k = 0
    for c in 0..<channels {
        let xc = x + c * inPlane
        for kd in 0..<g.kD {
            for kh in 0..<g.kH {
                for kw in 0..<g.kW {
                    let dst = col + k * n
                    k += 1
                    let off = kw * g.dW - g.pW
                    let (lo, hi) = convValidRange(off: off, stride: g.sW, limit: g.iW, count: g.oW)
                    var p = p0
                    while p < p1 {
                        let r = p / g.oW
                        let ow0 = p - r * g.oW
                        let ow1 = min(g.oW, ow0 + (p1 - p))
                        let od = r / g.oH, oh = r - od * g.oH
                        let id = od * g.sD - g.pD + kd * g.dD
                        let ih = oh * g.sH - g.pH + kh * g.dH
                        let d = dst + (p - p0 - ow0)   // d[ow] is this position's slot
                        let a = max(ow0, lo), b = min(ow1, hi)
                        if id < 0 || id >= g.iD || ih < 0 || ih >= g.iH || a >= b {
                            (d + ow0).update(repeating: 0, count: ow1 - ow0)
                        } else {
                            if a > ow0 { (d + ow0).update(repeating: 0, count: a - ow0) }
                            let base = (id * g.iH + ih) * g.iW + off
                            if g.sW == 1 {
                                (d + a).update(from: xc + (base + a), count: b - a)
                            } else {
                                let s = g.sW
                                for ow in a..<b { d[ow] = xc[base + ow * s] }
                            }
                            if ow1 > b { (d + b).update(repeating: 0, count: ow1 - b) }
                        }
                        p += ow1 - ow0
                    }
                }
            }
        }
    }
}

/// ConvTranspose scatter: adds the column matrix (rows (oc, kd, kh, kw) over input positions
/// [q0, q1) flattened over iD*iH*iW) into `channels` output planes at `out`.
/// Here the geometry's i* sizes are the ConvTranspose input and o* its output.
func col2imAdd<T: BinaryFloatingPoint>(_ col: UnsafePointer<T>, channels: Int, _ g: ConvGeometry,
                                       q0: Int, q1: Int, _ out: UnsafeMutablePointer<T>) {
    let n = q1 - q0
    if n <= 0 { return }
    let outPlane = g.outPlane
    var k = 0
    for c in 0..<channels {
        let oc = out + c * outPlane
        for kd in 0..<g.kD {
            for kh in 0..<g.kH {
                for kw in 0..<g.kW {
                    let src = col + k * n
                    k += 1
                    let off = kw * g.dW - g.pW
                    let (lo, hi) = convValidRange(off: off, stride: g.sW, limit: g.oW, count: g.iW)
                    var q = q0
                    while q < q1 {
                        let r = q / g.iW
                        let iw0 = q - r * g.iW
                        let iw1 = min(g.iW, iw0 + (q1 - q))
                        let id = r / g.iH, ih = r - id * g.iH
                        let od = id * g.sD - g.pD + kd * g.dD
                        let oh = ih * g.sH - g.pH + kh * g.dH
                        let a = max(iw0, lo), b = min(iw1, hi)
                        if od >= 0 && od < g.oD && oh >= 0 && oh < g.oH && a < b {
                            let s = src + (q - q0 - iw0)
                            let base = (od * g.oH + oh) * g.oW + off
                            let st = g.sW
                            for iw in a..<b { oc[base + iw * st] += s[iw] }
                        }
                        q += iw1 - iw0
                    }
                }
            }
        }
    }
}

// MARK: activation epilogue (float32)

/// An activation applied to a conv output while it is in cache.
enum ConvActivation: Sendable, Equatable {
    case none
    case relu
    case leakyRelu(Float)
    case clip(Float, Float)
    case sigmoid
    case hardSigmoid(Float, Float)
    case hardSwish
    case tanh
}

/// p[i] = act(p[i] + bias + z[i]) for i in 0..<n (z optional).
func finishRowF32(_ p: UnsafeMutablePointer<Float>, _ n: Int, bias: Float, z: UnsafePointer<Float>?, _ act: ConvActivation) {
    if n <= 0 { return }
    if bias != 0 || z != nil {
        let bv = SIMD16<Float>(repeating: bias)
        var i = 0
        if let z = z {
            while i + 16 <= n {
                let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
                    + UnsafeRawPointer(z + i).loadUnaligned(as: SIMD16<Float>.self) + bv
                UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: SIMD16<Float>.self)
                i += 16
            }
            while i < n { p[i] = p[i] + z[i] + bias; i += 1 }
        } else {
            while i + 16 <= n {
                let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self) + bv
                UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: SIMD16<Float>.self)
                i += 16
            }
            while i < n { p[i] += bias; i += 1 }
        }
    }
    applyActivationF32(p, n, act)
}

/// In-place activation over n floats.
func applyActivationF32(_ p: UnsafeMutablePointer<Float>, _ n: Int, _ act: ConvActivation) {
    @inline(__always) func simdMap(_ f: (SIMD16<Float>) -> SIMD16<Float>, _ s: (Float) -> Float) {
        var i = 0
        while i + 16 <= n {
            let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(p + i).storeBytes(of: f(v), as: SIMD16<Float>.self)
            i += 16
        }
        while i < n { p[i] = s(p[i]); i += 1 }
    }
    switch act {
    case .none:
        return
    case .relu:
        let z = SIMD16<Float>(repeating: 0)
        simdMap({ $0.replacing(with: z, where: $0 .< z) }, { $0 < 0 ? 0 : $0 })
    case .leakyRelu(let a):
        let z = SIMD16<Float>(repeating: 0)
        simdMap({ $0.replacing(with: $0 * a, where: $0 .< z) }, { $0 < 0 ? $0 * a : $0 })
    case .clip(let lo, let hi):
        let l = SIMD16<Float>(repeating: lo), h = SIMD16<Float>(repeating: hi)
        simdMap({ v in
            var r = v.replacing(with: l, where: v .< l)
            r = r.replacing(with: h, where: r .> h)
            return r
        }, { v in v < lo ? lo : (v > hi ? hi : v) })
    case .hardSigmoid(let a, let b):
        let z = SIMD16<Float>(repeating: 0), o = SIMD16<Float>(repeating: 1)
        simdMap({ v in
            var r = v * a + b
            r = r.replacing(with: z, where: r .< z)
            return r.replacing(with: o, where: r .> o)
        }, { v in min(max(v * a + b, 0), 1) })
    case .hardSwish:
        let z = SIMD16<Float>(repeating: 0), o = SIMD16<Float>(repeating: 1)
        simdMap({ v in
            var r = v * (1.0 / 6.0) + 0.5
            r = r.replacing(with: z, where: r .< z)
            return v * r.replacing(with: o, where: r .> o)
        }, { v in v * min(max(v * (1.0 / 6.0) + 0.5, 0), 1) })
    case .sigmoid:
        for i in 0..<n {
            let v = p[i]
            p[i] = v >= 0 ? 1 / (1 + Foundation.exp(-v)) : Foundation.exp(v) / (1 + Foundation.exp(v))
        }
    case .tanh:
        for i in 0..<n { p[i] = Foundation.tanh(p[i]) }
    }
}

// MARK: GEMM-based convolution

/// Columns per im2col tile: keeps the column buffer around `budget` elements.
@inline(__always) func convTileColumns(k: Int, total: Int, budget: Int = 1 << 22, minimum: Int = 256) -> Int {
    max(1, min(total, max(minimum, budget / max(k, 1))))
}

/// Convolution as (im2col +) GEMM for NC(D)(H)W tensors.
/// x: batch x cin x inPlane, w: cout x (cin/group) x kernelSize, out: batch x cout x outPlane.
/// `epilogue(n, oc0, ocCount, p0, p1)` runs after each output tile (rows oc0..<oc0+ocCount,
/// positions p0..<p1 of image n) is written, while it is in cache.
func convForwardGEMM<T: BLASFloat>(x: UnsafePointer<T>, w: UnsafePointer<T>, out: UnsafeMutablePointer<T>,
                                   batch: Int, cin: Int, cout: Int, group: Int, _ g: ConvGeometry,
                                   epilogue: (Int, Int, Int, Int, Int) -> Void) {
    let cinG = cin / group, coutG = cout / group
    let k = cinG * g.kernelSize
    let inPlane = g.inPlane, outPlane = g.outPlane
    if outPlane == 0 || cout == 0 { return }
    let pointwise = g.isPointwise
    let tile = pointwise ? convTileColumns(k: coutG, total: outPlane, budget: 1 << 21, minimum: 4096)
                         : convTileColumns(k: k, total: outPlane)
    let colBuf: UnsafeMutablePointer<T>? = pointwise ? nil : .allocate(capacity: max(k * tile, 1))
    defer { colBuf?.deallocate() }
    for n in 0..<batch {
        for grp in 0..<group {
            let xg = x + (n * cin + grp * cinG) * inPlane
            let wg = w + grp * coutG * k
            let og = out + (n * cout + grp * coutG) * outPlane
            var p0 = 0
            while p0 < outPlane {
                let p1 = min(outPlane, p0 + tile)
                if k == 0 {
                    for r in 0..<coutG { (og + r * outPlane + p0).update(repeating: 0, count: p1 - p0) }
                } else if let col = colBuf {
                    im2col(xg, channels: cinG, g, p0: p0, p1: p1, col)
                    T.gemm(transA: false, transB: false, m: coutG, n: p1 - p0, k: k, alpha: 1, a: wg, lda: k,
                           b: col, ldb: p1 - p0, beta: 0, c: og + p0, ldc: outPlane)
                } else {
                    T.gemm(transA: false, transB: false, m: coutG, n: p1 - p0, k: k, alpha: 1, a: wg, lda: k,
                           b: xg + p0, ldb: inPlane, beta: 0, c: og + p0, ldc: outPlane)
                }
                epilogue(n, grp * coutG, coutG, p0, p1)
                p0 = p1
            }
        }
    }
}

/// ConvTranspose as GEMM + col2im. x: batch x cin x inPlane; w: cin x (cout/group) x kernelSize;
/// out: batch x cout x outPlane (overwritten; bias not added).
func convTransposeGEMM<T: BLASFloat>(x: UnsafePointer<T>, w: UnsafePointer<T>, out: UnsafeMutablePointer<T>,
                                     batch: Int, cin: Int, cout: Int, group: Int, _ g: ConvGeometry) {
    let cinG = cin / group, coutG = cout / group
    let m = coutG * g.kernelSize
    let inPlane = g.inPlane, outPlane = g.outPlane
    out.update(repeating: 0, count: batch * cout * outPlane)
    if inPlane == 0 || m == 0 || cinG == 0 { return }
    let tile = convTileColumns(k: m, total: inPlane)
    let col = UnsafeMutablePointer<T>.allocate(capacity: max(m * tile, 1))
    defer { col.deallocate() }
    for n in 0..<batch {
        for grp in 0..<group {
            let xg = x + (n * cin + grp * cinG) * inPlane
            let wg = w + grp * cinG * m
            let og = out + (n * cout + grp * coutG) * outPlane
            var q0 = 0
            while q0 < inPlane {
                let q1 = min(inPlane, q0 + tile)
                T.gemm(transA: true, transB: false, m: m, n: q1 - q0, k: cinG, alpha: 1, a: wg, lda: m,
                       b: xg + q0, ldb: inPlane, beta: 0, c: col, ldc: q1 - q0)
                col2imAdd(col, channels: coutG, g, q0: q0, q1: q1, og)
                q0 = q1
            }
        }
    }
}

// MARK: depthwise (float32, direct)

/// One output plane of a 2-D depthwise convolution (g.iD == g.oD == g.kD == 1):
/// out = act(conv(x, w) + bias + z). x: one input plane, w: kH*kW weights.
func depthwiseConv2DPlaneF32(x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: Float,
                             z: UnsafePointer<Float>?, act: ConvActivation,
                             out: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
    let oW = g.oW
    // Fast path: 3x3, stride 1, dilation 1 — one pass per row with all 9 taps in registers.
    if g.kH == 3 && g.kW == 3 && g.sH == 1 && g.sW == 1 && g.dH == 1 && g.dW == 1 {
        depthwise3x3s1PlaneF32(x: x, w: w, bias: bias, out: out, g)
    } else {
        depthwisePhasedPlaneF32(x: x, w: w, bias: bias, out: out, g)
    }
    if z != nil || act != .none {
        finishRowF32(out, g.oH * oW, bias: 0, z: z, act)
    }
}

/// Any kernel size, stride, dilation and padding. The zero-padded input plane is split once into
/// sH*sW phase planes (rows and columns by remainder modulo the stride), each `rw` wide. Every tap
/// then reads one phase plane at a fixed offset, so the whole output plane, computed `rw` wide,
/// is one contiguous SIMD axpy per tap; the extra columns are dropped when copying out.
func depthwisePhasedPlaneF32(x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: Float,
                             out: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
    let sH = g.sH, sW = g.sW, iH = g.iH, iW = g.iW, oH = g.oH, oW = g.oW
    // Padded extent needed to cover every tap of every output.
    let needH = (oH - 1) * sH + (g.kH - 1) * g.dH + 1
    let needW = (oW - 1) * sW + (g.kW - 1) * g.dW + 1
    let rh = (needH + sH - 1) / sH, rw = (needW + sW - 1) / sW
    let phaseSize = rh * rw
    let slack = rw + 16
    let phases = sH * sW
    withUnsafeTemporaryAllocation(of: Float.self, capacity: phases * phaseSize + slack + oH * rw) { buf in
        let base = buf.baseAddress!
        // Reads past the last phase plane land in the zeroed slack, never in the output.
        (base + phases * phaseSize).update(repeating: 0, count: slack)
        let wide = base + phases * phaseSize + slack
        // Phase planes: P[ph][pw][r][c] = xpad[r*sH + ph][c*sW + pw].
        for ph in 0..<sH {
            for pw in 0..<sW {
                let plane = base + (ph * sW + pw) * phaseSize
                for r in 0..<rh {
                    let row = plane + r * rw
                    let ih = r * sH + ph - g.pH
                    if ih < 0 || ih >= iH {
                        row.update(repeating: 0, count: rw)
                        continue
                    }
                    let src = x + ih * iW
                    let (lo, hi) = convValidRange(off: pw - g.pW, stride: sW, limit: iW, count: rw)
                    if lo > 0 { row.update(repeating: 0, count: lo) }
                    if sW == 1 {
                        if hi > lo { row.advanced(by: lo).update(from: src + (lo + pw - g.pW), count: hi - lo) }
                    } else {
                        var c = lo, iw = lo * sW + pw - g.pW
                        while c < hi { row[c] = src[iw]; c += 1; iw += sW }
                    }
                    if hi < rw { row.advanced(by: max(hi, lo)).update(repeating: 0, count: rw - max(hi, lo)) }
                }
            }
        }
        let n = oH * rw
        let taps = g.kH * g.kW
        // Offsets of every tap into the phase planes; all taps accumulate in registers per 16 outputs.
        withUnsafeTemporaryAllocation(of: Int.self, capacity: taps) { offs in
            for kh in 0..<g.kH {
                let offH = kh * g.dH
                let ph = offH % sH, shH = offH / sH
                for kw in 0..<g.kW {
                    let offW = kw * g.dW
                    let pw = offW % sW, shW = offW / sW
                    offs[kh * g.kW + kw] = (ph * sW + pw) * phaseSize + shH * rw + shW
                }
            }
            // The last tap may read up to `shW` floats past its phase plane; those feed only dropped
            // columns, and the buffer has slack behind the phases (the wide plane starts there).
            let bv = SIMD16<Float>(repeating: bias)
            var i = 0
            while i + 16 <= n {
                var acc = bv
                for t in 0..<taps {
                    let v = UnsafeRawPointer(base + offs[t] + i).loadUnaligned(as: SIMD16<Float>.self)
                    acc = acc.addingProduct(v, SIMD16<Float>(repeating: w[t]))
                }
                UnsafeMutableRawPointer(wide + i).storeBytes(of: acc, as: SIMD16<Float>.self)
                i += 16
            }
            while i < n {
                var acc = bias
                for t in 0..<taps { acc += base[offs[t] + i] * w[t] }
                wide[i] = acc
                i += 1
            }
        }
        for oh in 0..<oH {
            (out + oh * oW).update(from: wide + oh * rw, count: oW)
        }
    }
}

/// y[i] += a * x[i]
@inline(__always) func axpyF32(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ a: Float, _ n: Int) {
    let av = SIMD16<Float>(repeating: a)
    var i = 0
    while i + 16 <= n {
        let xv = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
        let yv = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(y + i).storeBytes(of: yv + xv * av, as: SIMD16<Float>.self)
        i += 16
    }
    while i < n { y[i] += a * x[i]; i += 1 }
}

/// 3x3 stride-1 dilation-1 depthwise plane with any padding.
private func depthwise3x3s1PlaneF32(x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: Float,
                                    out: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
    let oW = g.oW, iW = g.iW, iH = g.iH, pW = g.pW
    let w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6], w7 = w[7], w8 = w[8]
    let v0 = SIMD16<Float>(repeating: w0), v1 = SIMD16<Float>(repeating: w1), v2 = SIMD16<Float>(repeating: w2)
    let v3 = SIMD16<Float>(repeating: w3), v4 = SIMD16<Float>(repeating: w4), v5 = SIMD16<Float>(repeating: w5)
    let v6 = SIMD16<Float>(repeating: w6), v7 = SIMD16<Float>(repeating: w7), v8 = SIMD16<Float>(repeating: w8)
    let bv = SIMD16<Float>(repeating: bias)
    // Interior columns: ow - pW >= 0 and ow - pW + 2 < iW.
    let (lo0, hi0) = convValidRange(off: -pW, stride: 1, limit: iW, count: oW)
    let (lo2, hi2) = convValidRange(off: 2 - pW, stride: 1, limit: iW, count: oW)
    let cLo = max(lo0, lo2), cHi = min(hi0, hi2)
    for oh in 0..<g.oH {
        let orow = out + oh * oW
        let ih0 = oh - g.pH
        if ih0 >= 0 && ih0 + 2 < iH && cLo < cHi {
            let r0 = x + ih0 * iW - pW, r1 = r0 + iW, r2 = r1 + iW
            var ow = cLo
            while ow + 16 <= cHi {
                @inline(__always) func ld(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
                    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
                }
                var acc = bv + ld(r0 + ow) * v0
                acc += ld(r0 + ow + 1) * v1
                acc += ld(r0 + ow + 2) * v2
                acc += ld(r1 + ow) * v3
                acc += ld(r1 + ow + 1) * v4
                acc += ld(r1 + ow + 2) * v5
                acc += ld(r2 + ow) * v6
                acc += ld(r2 + ow + 1) * v7
                acc += ld(r2 + ow + 2) * v8
                UnsafeMutableRawPointer(orow + ow).storeBytes(of: acc, as: SIMD16<Float>.self)
                ow += 16
            }
            while ow < cHi {
                let a = r0 + ow, b = r1 + ow, c = r2 + ow
                var s = bias + a[0] * w0
                s += a[1] * w1; s += a[2] * w2
                s += b[0] * w3; s += b[1] * w4; s += b[2] * w5
                s += c[0] * w6; s += c[1] * w7; s += c[2] * w8
                orow[ow] = s
                ow += 1
            }
            // Border columns.
            @inline(__always) func border(_ ow: Int) {
                var s = bias
                for kh in 0..<3 {
                    let irow = x + (ih0 + kh) * iW
                    for kw in 0..<3 {
                        let iw = ow - pW + kw
                        if iw >= 0 && iw < iW { s += w[kh * 3 + kw] * irow[iw] }
                    }
                }
                orow[ow] = s
            }
            for ow in 0..<cLo { border(ow) }
            for ow in cHi..<oW { border(ow) }
        } else {
            orow.update(repeating: bias, count: oW)
            for kh in 0..<3 {
                let ih = ih0 + kh
                if ih < 0 || ih >= iH { continue }
                let irow = x + ih * iW
                for kw in 0..<3 {
                    let off = kw - pW
                    let (lo, hi) = convValidRange(off: off, stride: 1, limit: iW, count: oW)
                    if lo < hi { axpyF32(orow + lo, irow + (lo + off), w[kh * 3 + kw], hi - lo) }
                }
            }
        }
    }
}
