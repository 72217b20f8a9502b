/// Resize kernels: separable passes over precomputed per-axis tap tables, a fused 2-D bilinear
/// kernel for the innermost two axes, and a nearest-neighbour gather over index tables.

/// Along one axis of an [outer, inLen, inner] tensor: dst[o, j, i] = sum_t w[j*taps+t] * src[o, idx[j*taps+t], i];
/// rows flagged in `extrapolate` get `fill` instead.
func resizeAxisPass<T: BinaryFloatingPoint>(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>,
                                            outer: Int, inLen: Int, outLen: Int, inner: Int, taps: Int,
                                            index: UnsafePointer<Int>, weight: UnsafePointer<T>,
                                            extrapolate: UnsafePointer<Bool>?, fill: T) {
    for o in 0..<outer {
        let s = src + o * inLen * inner
        let d = dst + o * outLen * inner
        if inner == 1 {
            for j in 0..<outLen {
                if let e = extrapolate, e[j] { d[j] = fill; continue }
                var acc: T = 0
                let base = j * taps
                for t in 0..<taps { acc += weight[base + t] * s[index[base + t]] }
                d[j] = acc
            }
        } else {
            for j in 0..<outLen {
                let drow = d + j * inner
                if let e = extrapolate, e[j] {
                    for i in 0..<inner { drow[i] = fill }
                    continue
                }
                let base = j * taps
                let w0 = weight[base]
                let r0 = s + index[base] * inner
                for i in 0..<inner { drow[i] = w0 * r0[i] }
                for t in 1..<max(taps, 1) {
                    let w = weight[base + t]
                    if w == 0 { continue }
                    let r = s + index[base + t] * inner
                    for i in 0..<inner { drow[i] += w * r[i] }
                }
            }
        }
    }
}

/// Fused bilinear resize of the two innermost axes of `planes` float planes. Each output row blends
/// two horizontally resized input rows, which are cached while consecutive output rows share them.
func resizeBilinear2DF32(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, planes: Int,
                         inH: Int, inW: Int, outH: Int, outW: Int,
                         yIndex: UnsafePointer<Int>, yWeight: UnsafePointer<Float>,
                         xIndex: UnsafePointer<Int>, xWeight: UnsafePointer<Float>, threads: Int = 1) {
    // Planes split over threads when the output is large enough (each worker has its own row cache).
    let chunks = threads > 1 && planes > 1 && planes * outH * outW >= 2 * elementwiseMinPerThread ? min(threads, planes) : 1
    parallelFor(chunks, threads: threads) { t in
        let p0 = planes * t / chunks, p1 = planes * (t + 1) / chunks
        if p0 >= p1 { return }
        ScratchPool.shared.withFloats(2 * max(outW, 1)) { rows in
            resizeBilinearPlanes(src, dst, p0..<p1, inH: inH, inW: inW, outH: outH, outW: outW, yIndex: yIndex,
                                 yWeight: yWeight, xIndex: xIndex, xWeight: xWeight, rowA: rows, rowB: rows + max(outW, 1))
        }
    }
}

private func resizeBilinearPlanes(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ planes: Range<Int>,
                                  inH: Int, inW: Int, outH: Int, outW: Int,
                                  yIndex: UnsafePointer<Int>, yWeight: UnsafePointer<Float>,
                                  xIndex: UnsafePointer<Int>, xWeight: UnsafePointer<Float>,
                                  rowA: UnsafeMutablePointer<Float>, rowB: UnsafeMutablePointer<Float>) {
    @inline(__always) func horizontal(_ row: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) {
        for j in 0..<outW {
            let i0 = xIndex[2 * j], i1 = xIndex[2 * j + 1]
            out[j] = xWeight[2 * j] * row[i0] + xWeight[2 * j + 1] * row[i1]
        }
    }
    for p in planes {
        let sp = src + p * inH * inW
        var dp = dst + p * outH * outW
        var a = rowA, b = rowB
        var aRow = -1, bRow = -1
        for oy in 0..<outH {
            let r0 = yIndex[2 * oy], r1 = yIndex[2 * oy + 1]
            // Make `a` hold r0 and `b` hold r1, reusing what is cached.
            if aRow != r0 {
                if bRow == r0 { swap(&a, &b); swap(&aRow, &bRow) } else { horizontal(sp + r0 * inW, a); aRow = r0 }
            }
            if bRow != r1 { horizontal(sp + r1 * inW, b); bRow = r1 }
            let w0 = yWeight[2 * oy], w1 = yWeight[2 * oy + 1]
            let v0 = SIMD16<Float>(repeating: w0), v1 = SIMD16<Float>(repeating: w1)
            var j = 0
            while j + 16 <= outW {
                let x0 = UnsafeRawPointer(a + j).loadUnaligned(as: SIMD16<Float>.self)
                let x1 = UnsafeRawPointer(b + j).loadUnaligned(as: SIMD16<Float>.self)
                UnsafeMutableRawPointer(dp + j).storeBytes(of: v0 * x0 + v1 * x1, as: SIMD16<Float>.self)
                j += 16
            }
            while j < outW { dp[j] = w0 * a[j] + w1 * b[j]; j += 1 }
            dp += outW
        }
    }
}

/// Nearest-neighbour gather: out[j0, ..., jn] = src[sum_a offsets[a][ja]], or `fill` where any
/// offset is negative (extrapolation). T is the element's bit pattern type.
func resizeNearestGather<T>(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>,
                            outShape: [Int], offsets: [[Int]], fill: T, threads: Int = 1) {
    let rank = outShape.count
    let total = outShape.reduce(1, *)
    if total == 0 { return }
    if rank == 0 { dst[0] = src[0]; return }
    let innerLen = outShape[rank - 1]
    let rows = innerLen == 0 ? 0 : total / innerLen
    // Output rows split over threads when the output is large enough.
    let chunks = threads > 1 && rows > 1 && total >= 2 * elementwiseMinPerThread ? min(threads, rows) : 1
    parallelFor(chunks, threads: threads) { t in
        let r0 = rows * t / chunks, r1 = rows * (t + 1) / chunks
        if r0 < r1 { resizeNearestRows(src, dst, r0..<r1, outShape: outShape, offsets: offsets, fill: fill) }
    }
}

/// Output rows `rows` (of the innermost axis) of resizeNearestGather.
private func resizeNearestRows<T>(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>, _ rows: Range<Int>,
                                  outShape: [Int], offsets: [[Int]], fill: T) {
    let rank = outShape.count
    let innerLen = outShape[rank - 1]
    let total = rows.count * innerLen
    let last = offsets[rank - 1]
    // the multi-index of the first row
    var idx = [Int](repeating: 0, count: rank)
    var r = rows.lowerBound
    for a in stride(from: rank - 2, through: 0, by: -1) {
        idx[a] = r % outShape[a]
        r /= outShape[a]
    }
    var prevBase = Int.min
    var prevRow: UnsafeMutablePointer<T>? = nil
    // An integer upscale of the innermost axis (offsets 0, 0, 1, 1, 2, 2, ... for 2x): each input
    // element is written `factor` times, without the per-element offset table.
    var factor = 0
    if innerLen > 0, let l = last.last, l >= 0, innerLen % (l + 1) == 0 {
        let f = innerLen / (l + 1)
        if last.indices.allSatisfy({ last[$0] == $0 / f }) { factor = f }
    }
    last.withUnsafeBufferPointer { lp in
        var out = dst + rows.lowerBound * innerLen
        var done = 0
        while done < total {
            var base = 0
            var outside = false
            for a in 0..<(rank - 1) {
                let o = offsets[a][idx[a]]
                if o < 0 { outside = true }
                base += o
            }
            if outside {
                for j in 0..<innerLen { out[j] = fill }
            } else if base == prevBase, let pr = prevRow {
                out.update(from: pr, count: innerLen)
            } else {
                let row = src + base
                switch factor {
                case 1: out.update(from: row, count: innerLen)
                case 2:
                    for i in 0..<(innerLen / 2) {
                        let v = row[i]
                        out[2 * i] = v
                        out[2 * i + 1] = v
                    }
                case 0:
                    for j in 0..<innerLen {
                        let o = lp[j]
                        out[j] = o < 0 ? fill : src[base + o]
                    }
                default:
                    var j = 0
                    for i in 0..<(innerLen / factor) {
                        let v = row[i]
                        for _ in 0..<factor { out[j] = v; j += 1 }
                    }
                }
                prevBase = base
                prevRow = out
            }
            out += innerLen
            done += innerLen
            var a = rank - 2
            while a >= 0 {
                idx[a] += 1
                if idx[a] < outShape[a] { break }
                idx[a] = 0
                a -= 1
            }
        }
    }
}
