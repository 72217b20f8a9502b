import CKernels
import Foundation
/// Pooling kernels: pointers, sizes and precomputed per-axis window tables. Spatial ranks 1-3 are
/// handled as 3-D (leading spatial dims of size 1), so one set of loops serves every rank.

/// For one spatial axis: where each output window starts (may be negative) and which kernel taps
/// fall inside the input (`lo..<hi`) and inside the padded extent (`padCount`).
struct PoolAxisTable {
    var inSize: Int
    var outSize: Int
    var kernel: Int
    var stride: Int
    var dilation: Int
    /// First input coordinate of each window (start = o*stride - padBegin).
    var start: [Int]
    /// First and one-past-last kernel tap inside [0, inSize).
    var lo: [Int]
    var hi: [Int]
    /// Taps inside [-padBegin, inSize + padEnd) (for count_include_pad).
    var padCount: [Int]
    var padBegin: Int
    var padEnd: Int

    init(inSize: Int, outSize: Int, kernel: Int, stride: Int, dilation: Int, padBegin: Int, padEnd: Int) {
        self.inSize = inSize; self.outSize = outSize; self.kernel = kernel
        self.stride = stride; self.dilation = dilation
        self.padBegin = padBegin; self.padEnd = padEnd
        start = []; lo = []; hi = []; padCount = []
        start.reserveCapacity(outSize); lo.reserveCapacity(outSize); hi.reserveCapacity(outSize)
        padCount.reserveCapacity(outSize)
        for o in 0..<outSize {
            let s = o * stride - padBegin
            var l = 0
            while l < kernel && s + l * dilation < 0 { l += 1 }
            var h = kernel
            while h > l && s + (h - 1) * dilation >= inSize { h -= 1 }
            var pc = 0
            for k in 0..<kernel where s + k * dilation < inSize + padEnd { pc += 1 }
            start.append(s); lo.append(l); hi.append(h); padCount.append(pc)
        }
    }

    /// The identity axis used to lift 1-D/2-D pooling to 3-D.
    static let unit = PoolAxisTable(inSize: 1, outSize: 1, kernel: 1, stride: 1, dilation: 1, padBegin: 0, padEnd: 0)
}

/// Max pooling over `planes` planes of a 3-D spatial volume. `indices` (optional) receives the flat
/// index into the whole input (row-major, or column-major over spatial dims when `columnMajor`).
/// Windows with no element inside the input get `lowest` and index -1... (cannot happen with valid pads).
func poolMaxKernel<T: Comparable>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>,
                                   indices: UnsafeMutablePointer<Int64>?, columnMajor: Bool,
                                   planes: Int, axes a: [PoolAxisTable], lowest: T) {
    let (ad, ah, aw) = (a[0], a[1], a[2])
    let inH = ah.inSize, inW = aw.inSize, inD = ad.inSize
    let inPlane = inD * inH * inW
    let outPlane = ad.outSize * ah.outSize * aw.outSize
    let dd = ad.dilation, dh = ah.dilation, dw = aw.dilation
    for p in 0..<planes {
        let xp = x + p * inPlane
        var yo = p * outPlane
        for od in 0..<ad.outSize {
            let sd = ad.start[od], ld = ad.lo[od], hd = ad.hi[od]
            for oh in 0..<ah.outSize {
                let sh = ah.start[oh], lh = ah.lo[oh], hh = ah.hi[oh]
                for ow in 0..<aw.outSize {
                    let sw = aw.start[ow], lw = aw.lo[ow], hw = aw.hi[ow]
                    var m = lowest
                    var best = -1
                    var first = true
                    if ld < hd && lh < hh && lw < hw {
                        for kd in ld..<hd {
                            let id = sd + kd * dd
                            for kh in lh..<hh {
                                let ih = sh + kh * dh
                                let rowOff = (id * inH + ih) * inW
                                var iw = sw + lw * dw
                                for _ in lw..<hw {
                                    let v = xp[rowOff + iw]
                                    if first || v > m { m = v; best = rowOff + iw; first = false }
                                    iw += dw
                                }
                            }
                        }
                    }
                    y[yo] = m
                    if let ind = indices {
                        if best < 0 {
                            ind[yo] = -1
                        } else if columnMajor {
                            let w = best % inW, h = (best / inW) % inH, d = best / (inW * inH)
                            ind[yo] = Int64(p * inPlane + d + h * inD + w * inD * inH)
                        } else {
                            ind[yo] = Int64(p * inPlane + best)
                        }
                    }
                    yo += 1
                }
            }
        }
    }
}

/// The C kernels' geometry for 3-D axis tables (depth, height, width).
func poolGeometry(_ a: [PoolAxisTable]) -> so_pool_geom {
    let (d, h, w) = (a[0], a[1], a[2])
    return so_pool_geom(iD: Int32(d.inSize), iH: Int32(h.inSize), iW: Int32(w.inSize),
                        oD: Int32(d.outSize), oH: Int32(h.outSize), oW: Int32(w.outSize),
                        kD: Int32(d.kernel), kH: Int32(h.kernel), kW: Int32(w.kernel),
                        sD: Int32(d.stride), sH: Int32(h.stride), sW: Int32(w.stride),
                        dD: Int32(d.dilation), dH: Int32(h.dilation), dW: Int32(w.dilation),
                        pD: Int32(d.padBegin), pH: Int32(h.padBegin), pW: Int32(w.padBegin),
                        eD: Int32(d.padEnd), eH: Int32(h.padEnd), eW: Int32(w.padEnd))
}

/// Runs `body(p0, p1, scratch)` over plane ranges, split over threads when the work is large.
private func poolPlanes(_ planes: Int, work: Int, threads: Int, scratchBytes: Int,
                        _ body: (Int, Int, UnsafeMutableRawPointer) -> Void) {
    let chunks = threads > 1 && planes > 1 && work >= 1 << 16 ? min(threads, planes) : 1
    parallelFor(chunks, threads: threads) { t in
        let p0 = planes * t / chunks, p1 = planes * (t + 1) / chunks
        if p1 > p0 { ScratchPool.shared.with(bytes: scratchBytes) { body(p0, p1, $0) } }
    }
}

/// float32 max pooling (no indices), the hot path in CNNs: the C kernels.
func poolMaxF32(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, planes: Int, axes a: [PoolAxisTable],
                threads: Int = 1) {
    var g = poolGeometry(a)
    let inPlane = a[0].inSize * a[1].inSize * a[2].inSize
    let outPlane = a[0].outSize * a[1].outSize * a[2].outSize
    let kernel = f32MaxPoolKernel
    poolPlanes(planes, work: planes * outPlane * a[1].kernel * a[2].kernel, threads: threads,
               scratchBytes: so_f32_pool_scratch(&g)) { p0, p1, scratch in
        var gg = g
        kernel(&gg, x + p0 * inPlane, y + p0 * outPlane, p1 - p0, scratch)
    }
}

/// 8-bit max pooling of 2-D planes (axes[0] a unit axis), signed or unsigned bytes: the same bytes
/// as pooling their float values.
func poolMaxU8(_ x: UnsafeRawPointer, _ y: UnsafeMutableRawPointer, signed: Bool, planes: Int, axes a: [PoolAxisTable],
               threads: Int = 1) {
    var g = poolGeometry(a)
    let inPlane = a[1].inSize * a[2].inSize, outPlane = a[1].outSize * a[2].outSize
    let isa = selectedISA
    poolPlanes(planes, work: planes * outPlane * a[1].kernel * a[2].kernel, threads: threads,
               scratchBytes: so_u8_maxpool_scratch(&g)) { p0, p1, scratch in
        var gg = g
        so_u8_maxpool(&gg, x.assumingMemoryBound(to: UInt8.self) + p0 * inPlane, y.assumingMemoryBound(to: UInt8.self) + p0 * outPlane,
                      p1 - p0, signed ? 1 : 0, scratch, isa)
    }
}

/// Average or Lp pooling on floats. kind 0: average; 1: Lp with exponent p.
/// `countIncludePad`: divide by taps inside the padded extent instead of taps inside the input.
func poolAvgLpKernel<T: BinaryFloatingPoint>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, planes: Int,
                                             axes a: [PoolAxisTable], lp: Bool, p: T, countIncludePad: Bool) {
    let (ad, ah, aw) = (a[0], a[1], a[2])
    let inH = ah.inSize, inW = aw.inSize, inD = ad.inSize
    let inPlane = inD * inH * inW
    let outW = aw.outSize
    let outPlane = ad.outSize * ah.outSize * outW
    let dd = ad.dilation, dh = ah.dilation, dw = aw.dilation
    let p1 = p == 1, p2 = p == 2
    for pl in 0..<planes {
        let xp = x + pl * inPlane
        var yo = y + pl * outPlane
        for od in 0..<ad.outSize {
            let sd = ad.start[od], ld = ad.lo[od], hd = ad.hi[od]
            for oh in 0..<ah.outSize {
                let sh = ah.start[oh], lh = ah.lo[oh], hh = ah.hi[oh]
                for ow in 0..<outW {
                    let sw = aw.start[ow], lw = aw.lo[ow], hw = aw.hi[ow]
                    var s: T = 0
                    if ld < hd && lh < hh && lw < hw {
                        for kd in ld..<hd {
                            let id = sd + kd * dd
                            for kh in lh..<hh {
                                let row = xp + (id * inH + sh + kh * dh) * inW
                                var iw = sw + lw * dw
                                if !lp {
                                    for _ in lw..<hw { s += row[iw]; iw += dw }
                                } else if p2 {
                                    for _ in lw..<hw { let v = row[iw]; s += v * v; iw += dw }
                                } else if p1 {
                                    for _ in lw..<hw { s += abs(row[iw]); iw += dw }
                                } else {
                                    for _ in lw..<hw {
                                        s += T(Foundation.pow(Double(abs(row[iw])), Double(p))); iw += dw
                                    }
                                }
                            }
                        }
                    }
                    if lp {
                        yo[ow] = p2 ? s.squareRoot() : (p1 ? s : T(Foundation.pow(Double(s), 1 / Double(p))))
                    } else {
                        let n = countIncludePad ? ad.padCount[od] * ah.padCount[oh] * aw.padCount[ow]
                            : (hd - ld) * (hh - lh) * (hw - lw)
                        yo[ow] = n > 0 ? s / T(n) : T.nan
                    }
                }
                yo += outW
            }
        }
    }
}

/// Mean (or max) of each contiguous plane of `size` elements.
func globalPoolF32(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, planes: Int, size: Int, max: Bool) {
    f32GlobalPoolKernel(x, y, planes, size, max ? 1 : 0)
}


/// float32 average pooling: the C kernels.
func poolAvgF32(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, planes: Int,
                axes a: [PoolAxisTable], countIncludePad: Bool, threads: Int = 1) {
    let inPlane = a[0].inSize * a[1].inSize * a[2].inSize
    let outPlane = a[0].outSize * a[1].outSize * a[2].outSize
    // One window covering each whole plane, no padding (a network's closing 7 x 7 pool on a 7 x 7
    // map): the mean of each plane, which the global pooling reduces along contiguous memory rather
    // than one output lane per plane.
    if outPlane == 1, inPlane > 0, a.allSatisfy({ $0.kernel == $0.inSize && $0.dilation == 1 && $0.padBegin == 0 && $0.padEnd == 0 }) {
        globalPoolF32(x, y, planes: planes, size: inPlane, max: false)
        return
    }
    var g = poolGeometry(a)
    let kernel = f32AvgPoolKernel
    poolPlanes(planes, work: planes * outPlane * a[1].kernel * a[2].kernel, threads: threads,
               scratchBytes: so_f32_pool_scratch(&g)) { p0, p1, scratch in
        var gg = g
        kernel(&gg, x + p0 * inPlane, y + p0 * outPlane, p1 - p0, countIncludePad ? 1 : 0, scratch)
    }
}
