import CKernels

/// Data-movement kernels for the shape op family. They take pointers, shapes and strides and
/// know nothing of tensors or ops. They are generic over the element type `T`; callers pass a
/// fixed-width integer of the element's byte size (UInt8/16/32/64) for every plain type, or
/// `String` for string tensors, so one specialization serves many ONNX types.
enum ShapeKernels {

    /// Copies `n` elements (a block copy for n > 1).
    @inline(__always)
    static func copyBlock<T>(_ dst: UnsafeMutablePointer<T>, _ src: UnsafePointer<T>, _ n: Int) {
        if n == 1 { dst.pointee = src.pointee } else if n > 1 { dst.update(from: src, count: n) }
    }

    /// Drops size-1 dims and merges dims that are contiguous with their inner neighbour.
    /// Returns nil when the shape holds no element.
    static func simplify(shape: [Int], strides: [Int]) -> (shape: [Int], strides: [Int])? {
        var sh: [Int] = [], st: [Int] = []
        sh.reserveCapacity(shape.count); st.reserveCapacity(shape.count)
        for (d, s) in zip(shape, strides) {
            if d == 0 { return nil }
            if d == 1 { continue }
            sh.append(d); st.append(s)
        }
        // Merge from the inside out.
        var i = sh.count - 2
        while i >= 0 {
            if st[i] == st[i + 1] * sh[i + 1] {
                sh[i] *= sh[i + 1]
                st[i] = st[i + 1]
                sh.remove(at: i + 1); st.remove(at: i + 1)
            }
            i -= 1
        }
        return (sh, st)
    }

    /// dst (contiguous, `shape`) [i] = src[offset + Σ idx_d * strides_d].
    /// Strides may be zero (broadcast) or negative (reversed slices).
    static func stridedCopy<T>(src: UnsafePointer<T>, offset: Int, strides: [Int], shape: [Int],
                               dst: UnsafeMutablePointer<T>) {
        guard let (sh, st) = simplify(shape: shape, strides: strides) else { return }
        let rank = sh.count
        if rank == 0 { dst.pointee = src[offset]; return }
        let inner = sh[rank - 1], innerStride = st[rank - 1]

        // Few channels moved from last to first (an NHWC image to NCHW): one pass along the source,
        // each element to its channel's plane.
        if rank >= 2, st[rank - 2] == 1, st[rank - 1] == sh[rank - 2], sh[rank - 2] <= 8 {
            let c = sh[rank - 2], n = sh[rank - 1]
            var outerShape = sh, outerSrc = st
            outerShape[rank - 1] = 1; outerShape[rank - 2] = 1
            outerSrc[rank - 1] = 0; outerSrc[rank - 2] = 0
            forEachOffset(shape: outerShape, aStrides: outerSrc, bStrides: contiguousStridesK(outerShape).map { $0 * c * n }) { so, dof in
                let s = src + (offset + so), d = dst + dof
                if MemoryLayout<T>.size == 4 {
                    so_u32_to_planes(UnsafeRawPointer(s).assumingMemoryBound(to: UInt32.self), c, n,
                                     UnsafeMutableRawPointer(d).assumingMemoryBound(to: UInt32.self))
                } else {
                    for j in 0..<n { for ch in 0..<c { d[ch * n + j] = s[j * c + ch] } }
                }
            }
            return
        }
        // Few planes interleaved channels last (DepthToSpace's inner step, NCHW to NHWC with few
        // channels): one pass along the destination, every position takes one value of each plane.
        if rank >= 2, MemoryLayout<T>.size == 4, st[rank - 2] == 1, inner <= 8, innerStride >= sh[rank - 2] {
            let c = inner, n = sh[rank - 2]
            var outerShape = sh, outerSrc = st
            outerShape[rank - 1] = 1; outerShape[rank - 2] = 1
            outerSrc[rank - 1] = 0; outerSrc[rank - 2] = 0
            forEachOffset(shape: outerShape, aStrides: outerSrc, bStrides: contiguousStridesK(outerShape).map { $0 * c * n }) { so, dof in
                so_u32_from_planes(UnsafeRawPointer(src + (offset + so)).assumingMemoryBound(to: UInt32.self), innerStride, c, n,
                                   UnsafeMutableRawPointer(dst + dof).assumingMemoryBound(to: UInt32.self))
            }
            return
        }
        // A permutation that moves the unit-stride dim away from the inside: blocked transpose.
        if innerStride != 1 && rank >= 2, let k = st.firstIndex(of: 1), inner >= 2, sh[k] >= 4 {
            let dstStrides = contiguousStridesK(sh)
            let rows = sh[k], cols = inner, dk = dstStrides[k]
            var outerShape = sh, outerSrc = st, outerDst = dstStrides
            outerShape[rank - 1] = 1; outerShape[k] = 1
            outerSrc[rank - 1] = 0; outerSrc[k] = 0
            outerDst[rank - 1] = 0; outerDst[k] = 0
            forEachOffset(shape: outerShape, aStrides: outerSrc, bStrides: outerDst) { so, dof in
                transpose2D(src: src + (offset + so), srcColStride: innerStride,
                            dst: dst + dof, dstRowStride: dk, rows: rows, cols: cols)
            }
            return
        }

        let outerCount = sh.count == 1 ? 1 : sh[0..<(rank - 1)].reduce(1, *)
        var idx = [Int](repeating: 0, count: rank)
        var base = offset
        var o = 0
        for _ in 0..<outerCount {
            let d = dst + o
            if innerStride == 1 {
                copyBlock(d, src + base, inner)
            } else if innerStride == 0 {
                d.update(repeating: src[base], count: inner)
            } else {
                var off = base
                for j in 0..<inner { d[j] = src[off]; off += innerStride }
            }
            o += inner
            var a = rank - 2
            while a >= 0 {
                idx[a] += 1
                base += st[a]
                if idx[a] < sh[a] { break }
                base -= st[a] * sh[a]
                idx[a] = 0
                a -= 1
            }
        }
    }

    static func contiguousStridesK(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) { s[i] = acc; acc *= shape[i] }
        return s
    }

    /// Calls body(aOffset, bOffset) for every index of `shape`, offsets from two stride sets.
    static func forEachOffset(shape: [Int], aStrides: [Int], bStrides: [Int], _ body: (Int, Int) -> Void) {
        let rank = shape.count
        let n = shape.reduce(1, *)
        if n == 0 { return }
        var idx = [Int](repeating: 0, count: rank)
        var a = 0, b = 0
        for _ in 0..<n {
            body(a, b)
            var d = rank - 1
            while d >= 0 {
                idx[d] += 1
                a += aStrides[d]; b += bStrides[d]
                if idx[d] < shape[d] { break }
                a -= aStrides[d] * shape[d]; b -= bStrides[d] * shape[d]
                idx[d] = 0
                d -= 1
            }
        }
    }

    /// dst[r * dstRowStride + c] = src[r + c * srcColStride], in cache-sized tiles. The inner loop
    /// runs along whichever side has the smaller far stride (large power-of-two strides thrash L1 sets),
    /// or along the rows when there are few columns.
    static func transpose2D<T>(src: UnsafePointer<T>, srcColStride: Int, dst: UnsafeMutablePointer<T>,
                               dstRowStride: Int, rows: Int, cols: Int) {
        if cols < 8 || srcColStride > dstRowStride {
            // Inner loop over r: contiguous reads, writes strided by dstRowStride.
            let rt = 64, ct = 8
            var c0 = 0
            while c0 < cols {
                let c1 = min(c0 + ct, cols)
                var r0 = 0
                while r0 < rows {
                    let r1 = min(r0 + rt, rows)
                    for c in c0..<c1 {
                        let s = src + c * srcColStride
                        var d = dst + (r0 * dstRowStride + c)
                        for r in r0..<r1 { d.pointee = s[r]; d += dstRowStride }
                    }
                    r0 = r1
                }
                c0 = c1
            }
            return
        }
        let tile = 32
        var r0 = 0
        while r0 < rows {
            let r1 = min(r0 + tile, rows)
            var c0 = 0
            while c0 < cols {
                let c1 = min(c0 + tile, cols)
                for r in r0..<r1 {
                    let d = dst + r * dstRowStride
                    var s = src + (r + c0 * srcColStride)
                    for c in c0..<c1 { d[c] = s.pointee; s += srcColStride }
                }
                c0 = c1
            }
            r0 = r1
        }
    }

    /// Gather along an axis: src is [outer, axisDim, inner], indices already validated in [0, axisDim).
    static func gather<T>(src: UnsafePointer<T>, dst: UnsafeMutablePointer<T>, outer: Int, axisDim: Int,
                          inner: Int, indices: UnsafePointer<Int>, indexCount: Int) {
        var d = dst
        for o in 0..<outer {
            let s = src + o * axisDim * inner
            if inner == 1 {
                for j in 0..<indexCount { d[j] = s[indices[j]] }
                d += indexCount
            } else {
                for j in 0..<indexCount {
                    copyBlock(d, s + indices[j] * inner, inner)
                    d += inner
                }
            }
        }
    }

    /// Concatenation along an axis: each part is [outer, part_i] contiguous, output is [outer, Σ part_i].
    static func concat<T>(parts: [(UnsafePointer<T>, Int)], dst: UnsafeMutablePointer<T>, outer: Int) {
        let total = parts.reduce(0) { $0 + $1.1 }
        for (p, len) in parts where len > 0 {
            var d = dst, s = p
            for _ in 0..<outer {
                copyBlock(d, s, len)
                d += total; s += len
            }
        }
        _ = total
    }

    /// Keeps the lower (upper=false) or upper triangle of each [rows, cols] matrix, other elements
    /// set to `zero`. The diagonal offset is k.
    static func trilu<T>(src: UnsafePointer<T>, dst: UnsafeMutablePointer<T>, batch: Int, rows: Int, cols: Int,
                         k: Int, upper: Bool, zero: T) {
        for b in 0..<batch {
            for i in 0..<rows {
                let s = src + (b * rows + i) * cols, d = dst + (b * rows + i) * cols
                // Lower keeps j <= i + k; upper keeps j >= i + k.
                let edge = i + k
                if upper {
                    let z = min(max(edge, 0), cols)
                    if z > 0 { d.update(repeating: zero, count: z) }
                    copyBlock(d + z, s + z, cols - z)
                } else {
                    let keep = min(max(edge + 1, 0), cols)
                    copyBlock(d, s, keep)
                    if cols - keep > 0 { (d + keep).update(repeating: zero, count: cols - keep) }
                }
            }
        }
    }

    /// One row of a pad: dst[j] for j in 0..<n from runs (dstStart, srcStart or -1 for fill, length).
    @inline(__always)
    static func padRow<T>(src: UnsafePointer<T>, dst: UnsafeMutablePointer<T>, runs: [(Int, Int, Int)], fill: T) {
        for (ds, ss, len) in runs {
            if ss < 0 { (dst + ds).update(repeating: fill, count: len) } else { copyBlock(dst + ds, src + ss, len) }
        }
    }
}
