import CKernels
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

extension ConvGeometry {
    /// The geometry in the form of the C im2col kernel.
    var im2colGeometry: so_im2col_geom {
        so_im2col_geom(iD: iD, iH: iH, iW: iW, oD: oD, oH: oH, oW: oW, kD: kD, kH: kH, kW: kW,
                       sD: sD, sH: sH, sW: sW, dD: dD, dH: dH, dW: dW, pD: pD, pH: pH, pW: pW)
    }
}

/// The patches of the first `positions` output positions as rows: row p holds, for output position p
/// (row-major over oD, oH, oW), the inputs under the kernel in the weights' order (channel, kd, kh,
/// kw), 0 where the kernel lies over padding. `x`: `cin` planes of `g.inPlane` floats; `rows`:
/// positions x (cin * kernelSize) floats. For convolutions with a few output positions only.
func convIm2Row(_ x: UnsafePointer<Float>, cin: Int, _ g: ConvGeometry, positions: Int,
                into rows: UnsafeMutablePointer<Float>) {
    var r = rows
    for p in 0..<positions {
        let od = p / (g.oH * g.oW), oh = (p / g.oW) % g.oH, ow = p % g.oW
        for ch in 0..<cin {
            let plane = x + ch * g.inPlane
            for kd in 0..<g.kD {
                let id = od * g.sD - g.pD + kd * g.dD
                for kh in 0..<g.kH {
                    let ih = oh * g.sH - g.pH + kh * g.dH
                    let rowInside = id >= 0 && id < g.iD && ih >= 0 && ih < g.iH
                    for kw in 0..<g.kW {
                        let iw = ow * g.sW - g.pW + kw * g.dW
                        r.pointee = rowInside && iw >= 0 && iw < g.iW ? plane[(id * g.iH + ih) * g.iW + iw] : 0
                        r += 1
                    }
                }
            }
        }
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
    /// 0.5 x (1 + erf(x / sqrt 2)), and its tanh approximation (dense layers' epilogues).
    case gelu
    case geluTanh
    /// relu / hard swish, then y * scale + bias (a per-tensor affine map after the activation).
    case reluAffine(Float, Float)
    case hardSwishAffine(Float, Float)
    /// x * sigmoid(alpha x) (SiLU for alpha 1; dense layers' epilogues).
    case swish(Float)
}

/// p[i] = act(p[i] + bias + z[i]) for i in 0..<n (z optional), through the C epilogue kernel.
@inline(__always)
func finishRowF32(_ p: UnsafeMutablePointer<Float>, _ n: Int, bias: Float, z: UnsafePointer<Float>?, _ act: ConvActivation) {
    if n <= 0 { return }
    let (kind, alpha, beta) = act.kernelCode
    f32BiasActKernel(p, n, bias, z, kind, alpha, beta)
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
func convTransposeGEMM<T: BLASFloat>(x: UnsafePointer<T>, w: UnsafePointer<T>, bias: UnsafePointer<T>?,
                                     out: UnsafeMutablePointer<T>, batch: Int, cin: Int, cout: Int, group: Int,
                                     _ g: ConvGeometry) {
    let cinG = cin / group, coutG = cout / group
    let m = coutG * g.kernelSize
    let inPlane = g.inPlane, outPlane = g.outPlane
    out.update(repeating: 0, count: batch * cout * outPlane)
    if inPlane > 0 && m > 0 && cinG > 0 {
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
    if let bias {
        for n in 0..<batch {
            for oc in 0..<cout {
                let row = out + (n * cout + oc) * outPlane
                let bv = bias[oc]
                for i in 0..<outPlane { row[i] += bv }
            }
        }
    }
}

/// Float32 ConvTranspose on the packed GEMM: output channels are split over threads, each chunk
/// packing its channels' rows of W^T and running the GEMM and col2im for its own output planes only
/// (or, with fewer channels than threads and taps that never overlap, input pixels are split),
/// so chunks never write the same element; every element's arithmetic is the same whatever the chunking
/// (the packed GEMM's sums do not depend on tile position), so any thread count gives the same bits.
func convTransposeF32(x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                      out: UnsafeMutablePointer<Float>, batch: Int, cin: Int, cout: Int, group: Int,
                      _ g: ConvGeometry, threads: Int) {
    let cinG = cin / group, coutG = cout / group
    let ks = g.kernelSize
    let m = coutG * ks
    let inPlane = g.inPlane, outPlane = g.outPlane
    let flops = 2 * batch * cout * ks * cinG * inPlane
    let parallel = threads > 1 && flops >= convParallelMinFlops
    let chunks = parallel ? min(threads, max(coutG, 1)) : 1
    let tile = convTileColumns(k: m, total: inPlane)
    /// Input pixels [qa, qb) of one image and group: `a` (rows: `channels` output channels x kernel
    /// taps of W^T) times their columns, tile by tile, each tile added into `og` by col2im.
    func accumulate(_ a: F32PackedMatrix, _ xg: UnsafePointer<Float>, channels: Int, _ qa: Int, _ qb: Int,
                    _ og: UnsafeMutablePointer<Float>) {
        ScratchPool.shared.withFloats(f32PackedGemmScratchFloats(a) + a.m * tile) { buf in
            let col = buf, pb = buf + a.m * tile
            var q0 = qa
            while q0 < qb {
                let q1 = min(qb, q0 + tile)
                f32PackedGemmColumns(a, b: xg + q0, ldb: inPlane, j0: 0, j1: q1 - q0, c: col, ldc: q1 - q0,
                                     epilogue: .init(), pb: pb)
                col2imAdd(UnsafePointer(col), channels: channels, g, q0: q0, q1: q1, og)
                q0 = q1
            }
        }
    }
    // Fewer output channels than threads (a head upsampling to one channel): when no two input
    // pixels write the same output element (kernel no larger than the stride, no dilation), the
    // threads split the input pixels instead, each running the GEMM and col2im of its own columns.
    let disjoint = g.kD <= g.sD && g.kH <= g.sH && g.kW <= g.sW && g.dD == 1 && g.dH == 1 && g.dW == 1
    if parallel && coutG < threads && disjoint && inPlane >= 2 * 64 {
        out.update(repeating: 0, count: batch * cout * outPlane)
        let parts = min(threads, inPlane / 64)
        parallelFor(parts, threads: threads) { t in
            let qa = inPlane * t / parts, qb = inPlane * (t + 1) / parts
            for n in 0..<batch {
                for grp in 0..<group {
                    let og = out + (n * cout + grp * coutG) * outPlane
                    let xg = x + (n * cin + grp * cinG) * inPlane
                    let a = F32PackedMatrix(scratch: w + grp * cinG * m, m: m, k: cinG, rowStride: 1, colStride: m)
                    accumulate(a, xg, channels: coutG, qa, qb, og)
                }
            }
        }
        if let bias {
            for plane in 0..<(batch * cout) {
                let bv = bias[plane % cout]
                let row = out + plane * outPlane
                elementwiseParallelRanges(outPlane, threads: threads) { lo, hi in
                    f32BinaryVS(.add, row + lo, bv, row + lo, hi - lo)
                }
            }
        }
        return
    }
    parallelFor(chunks, threads: threads) { t in
        let c0 = t * coutG / chunks, c1 = (t + 1) * coutG / chunks
        let rows = (c1 - c0) * ks
        for n in 0..<batch {
            for grp in 0..<group {
                let og = out + (n * cout + grp * coutG + c0) * outPlane
                og.update(repeating: 0, count: (c1 - c0) * outPlane)
                if rows > 0 && cinG > 0 && inPlane > 0 {
                    let xg = x + (n * cin + grp * cinG) * inPlane
                    // Row i of this chunk's W^T block is column c0 * ks + i of the group's [cinG, m] weights.
                    let a = F32PackedMatrix(scratch: w + grp * cinG * m + c0 * ks, m: rows, k: cinG, rowStride: 1, colStride: m)
                    accumulate(a, xg, channels: c1 - c0, 0, inPlane, og)
                }
                if let bias {
                    for oc in c0..<c1 {
                        let bv = bias[grp * coutG + oc]
                        let row = og + (oc - c0) * outPlane
                        for i in 0..<outPlane { row[i] += bv }
                    }
                }
            }
        }
    }
}
