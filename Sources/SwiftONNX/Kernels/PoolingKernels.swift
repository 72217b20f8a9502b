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

    init(inSize: Int, outSize: Int, kernel: Int, stride: Int, dilation: Int, padBegin: Int, padEnd: Int) {
        self.inSize = inSize; self.outSize = outSize; self.kernel = kernel
        self.stride = stride; self.dilation = dilation
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

/// Specialized float32 max pooling (no indices): the hot path in CNNs.
func poolMaxF32(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, planes: Int, axes a: [PoolAxisTable]) {
    let (ad, ah, aw) = (a[0], a[1], a[2])
    let inH = ah.inSize, inW = aw.inSize, inD = ad.inSize
    let inPlane = inD * inH * inW
    let outW = aw.outSize
    let outPlane = ad.outSize * ah.outSize * outW
    let dd = ad.dilation, dh = ah.dilation, dw = aw.dilation
    aw.start.withUnsafeBufferPointer { swp in
    aw.lo.withUnsafeBufferPointer { lwp in
    aw.hi.withUnsafeBufferPointer { hwp in
        for p in 0..<planes {
            let xp = x + p * inPlane
            var yo = y + p * outPlane
            for od in 0..<ad.outSize {
                let sd = ad.start[od], ld = ad.lo[od], hd = ad.hi[od]
                for oh in 0..<ah.outSize {
                    let sh = ah.start[oh], lh = ah.lo[oh], hh = ah.hi[oh]
                    // Initialize the output row, then fold in each contributing input row.
                    for ow in 0..<outW { yo[ow] = -Float.infinity }
                    if ld < hd && lh < hh {
                        for kd in ld..<hd {
                            let id = sd + kd * dd
                            for kh in lh..<hh {
                                let row = xp + (id * inH + sh + kh * dh) * inW
                                for ow in 0..<outW {
                                    let lw = lwp[ow], hw = hwp[ow]
                                    var m = yo[ow]
                                    var iw = swp[ow] + lw * dw
                                    var k = lw
                                    while k < hw {
                                        let v = row[iw]
                                        m = v > m ? v : m
                                        iw += dw; k += 1
                                    }
                                    yo[ow] = m
                                }
                            }
                        }
                    }
                    yo += outW
                }
            }
        }
    }}}
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
    for p in 0..<planes {
        let xp = x + p * size
        var i = 0
        if max {
            var acc = SIMD16<Float>(repeating: -.infinity)
            while i + 16 <= size {
                let v = UnsafeRawPointer(xp + i).loadUnaligned(as: SIMD16<Float>.self)
                acc = pointwiseMax(acc, v)
                i += 16
            }
            var m = acc.max()
            while i < size { m = Swift.max(m, xp[i]); i += 1 }
            y[p] = size > 0 ? m : -.infinity
        } else {
            var acc = SIMD16<Float>(repeating: 0)
            while i + 16 <= size {
                acc += UnsafeRawPointer(xp + i).loadUnaligned(as: SIMD16<Float>.self)
                i += 16
            }
            var s = acc.sum()
            while i < size { s += xp[i]; i += 1 }
            y[p] = size > 0 ? s / Float(size) : .nan
        }
    }
}

import Foundation

/// Specialized float32 average pooling: accumulates whole output rows per kernel row, with a
/// contiguous (vectorizable) inner loop over the interior when the W stride and dilation are 1.
func poolAvgF32(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, planes: Int,
                axes a: [PoolAxisTable], countIncludePad: Bool) {
    let (ad, ah, aw) = (a[0], a[1], a[2])
    let inH = ah.inSize, inW = aw.inSize, inD = ad.inSize
    let inPlane = inD * inH * inW
    let outW = aw.outSize
    let outPlane = ad.outSize * ah.outSize * outW
    let dd = ad.dilation, dh = ah.dilation, dw = aw.dilation
    // Interior columns: every tap inside the input.
    var i0 = 0, i1 = 0
    if dw == 1 && aw.stride == 1 {
        i0 = outW; i1 = 0
        for ow in 0..<outW where aw.lo[ow] == 0 && aw.hi[ow] == aw.kernel {
            i0 = min(i0, ow); i1 = max(i1, ow + 1)
        }
        if i0 >= i1 { i0 = 0; i1 = 0 }
    }
    let kw = aw.kernel
    let s0 = i1 > i0 ? aw.start[i0] : 0
    for p in 0..<planes {
        let xp = x + p * inPlane
        var yo = y + p * outPlane
        for od in 0..<ad.outSize {
            let sd = ad.start[od], ld = ad.lo[od], hd = ad.hi[od]
            for oh in 0..<ah.outSize {
                let sh = ah.start[oh], lh = ah.lo[oh], hh = ah.hi[oh]
                for ow in 0..<outW { yo[ow] = 0 }
                if ld < hd && lh < hh {
                    for kd in ld..<hd {
                        let id = sd + kd * dd
                        for kh in lh..<hh {
                            let row = xp + (id * inH + sh + kh * dh) * inW
                            for ow in 0..<outW where ow < i0 || ow >= i1 {
                                let lw = aw.lo[ow], hw = aw.hi[ow]
                                var s: Float = 0
                                var iw = aw.start[ow] + lw * dw
                                var k = lw
                                while k < hw { s += row[iw]; iw += dw; k += 1 }
                                yo[ow] += s
                            }
                            if i1 > i0 {
                                for t in 0..<kw {
                                    let src = row + s0 + t - i0
                                    for ow in i0..<i1 { yo[ow] += src[ow] }
                                }
                            }
                        }
                    }
                }
                let cd = countIncludePad ? ad.padCount[od] : hd - ld
                let ch = countIncludePad ? ah.padCount[oh] : hh - lh
                for ow in 0..<outW {
                    let cw = countIncludePad ? aw.padCount[ow] : aw.hi[ow] - aw.lo[ow]
                    let n = cd * ch * cw
                    yo[ow] = n > 0 ? yo[ow] / Float(n) : .nan
                }
                yo += outW
            }
        }
    }
}
