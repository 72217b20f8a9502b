import Foundation

// Element-wise binary kernels over pointers, and the broadcast loop driver they run under.
// Nothing here knows about tensors, graphs or op names.
//
// In-place use: every kernel reads element i of each input before it writes element i of `out`,
// so `out` may be the same memory as `a` or `b` (exactly, not a shifted overlap).

// MARK: - broadcast loop plan

/// A numpy-style broadcast of N operands to one output shape, collapsed to as few dims as possible:
/// size-1 output dims are dropped and adjacent dims that are contiguous for every operand are merged.
/// The output is walked as rows of `inner` elements; in a row operand k advances by `innerSteps[k]`
/// (1 when it varies along the row, 0 when it is broadcast along it).
struct BroadcastLoop: Sendable {
    /// Collapsed outer dims (everything but the inner one).
    let outer: [Int]
    /// Per operand: strides (in elements) along the outer dims.
    let outerStrides: [[Int]]
    let inner: Int
    let innerSteps: [Int]
    /// Number of output elements.
    let total: Int

    /// `shapes[k]` must be broadcastable to `outShape` (rank <= outShape's, dims equal or 1).
    init(outShape: [Int], shapes: [[Int]]) {
        let rank = outShape.count
        let n = shapes.count
        // Broadcast strides, aligned right.
        var strides = [[Int]](repeating: [Int](repeating: 0, count: rank), count: n)
        for k in 0..<n {
            let s = shapes[k]
            let off = rank - s.count
            var acc = 1
            for i in stride(from: s.count - 1, through: 0, by: -1) {
                if s[i] != 1 { strides[k][off + i] = acc }
                acc *= s[i]
            }
        }
        // Drop size-1 output dims, merge contiguous neighbours (from the inside out).
        var dims: [Int] = []
        var st = [[Int]](repeating: [], count: n)
        for i in 0..<rank where outShape[i] != 1 {
            if let last = dims.last {
                var mergeable = true
                for k in 0..<n where strides[k][i] * outShape[i] != st[k][st[k].count - 1] {
                    mergeable = false
                    break
                }
                // For stride-0 (broadcast) on both it merges too: 0 * d == 0.
                if mergeable {
                    dims[dims.count - 1] = last * outShape[i]
                    for k in 0..<n { st[k][st[k].count - 1] = strides[k][i] }
                    continue
                }
            }
            dims.append(outShape[i])
            for k in 0..<n { st[k].append(strides[k][i]) }
        }
        if dims.isEmpty {
            dims = [1]
            for k in 0..<n { st[k] = [0] }
        }
        inner = dims[dims.count - 1]
        innerSteps = st.map { $0[$0.count - 1] }
        outer = Array(dims.dropLast())
        outerStrides = st.map { Array($0.dropLast()) }
        total = outShape.reduce(1, *)
    }

    /// Calls `body(offsets, outOffset, length)` for each row piece of output elements in `range`,
    /// where `offsets[k]` is operand k's element offset at the piece start.
    @inline(__always)
    func forEachRow(in range: Range<Int>, _ body: (UnsafeMutablePointer<Int>, Int, Int) -> Void) {
        if range.isEmpty || inner == 0 { return }
        let n = innerSteps.count
        let od = outer.count
        withUnsafeTemporaryAllocation(of: Int.self, capacity: n + od + n) { tmp in
            let offs = tmp.baseAddress!
            let idx = offs + n
            let rowBase = idx + od
            // Decompose the start row into the outer index.
            var row = range.lowerBound / inner
            var col = range.lowerBound % inner
            for k in 0..<n { rowBase[k] = 0 }
            var d = od - 1
            while d >= 0 {
                let i = row % outer[d]
                row /= outer[d]
                idx[d] = i
                for k in 0..<n { rowBase[k] += i * outerStrides[k][d] }
                d -= 1
            }
            var pos = range.lowerBound
            let end = range.upperBound
            while pos < end {
                let len = Swift.min(inner - col, end - pos)
                for k in 0..<n { offs[k] = rowBase[k] + col * innerSteps[k] }
                body(offs, pos, len)
                pos += len
                col = 0
                // Advance the outer index.
                var d = od - 1
                while d >= 0 {
                    idx[d] += 1
                    for k in 0..<n { rowBase[k] += outerStrides[k][d] }
                    if idx[d] < outer[d] { break }
                    for k in 0..<n { rowBase[k] -= outerStrides[k][d] * outer[d] }
                    idx[d] = 0
                    d -= 1
                }
            }
        }
    }

    /// Splits the output into contiguous element ranges, one per worker, and runs them
    /// (concurrently when `threads` > 1 and the work is large enough to pay for it).
    @inline(__always)
    func run(threads: Int, minPerThread: Int = elementwiseMinPerThread,
             _ body: (UnsafeMutablePointer<Int>, Int, Int) -> Void) {
        let workers = Swift.max(1, Swift.min(threads, total / Swift.max(minPerThread, 1)))
        if workers <= 1 {
            forEachRow(in: 0..<total, body)
            return
        }
        let chunk = (total + workers - 1) / workers
        parallelFor(workers, threads: threads) { w in
            let lo = w * chunk, hi = Swift.min(total, lo + chunk)
            if lo < hi { forEachRow(in: lo..<hi, body) }
        }
    }
}

/// Elements per worker below which an elementwise op stays on fewer threads: 32K floats (128 kB) take
/// tens of microseconds, far more than handing a range to a pool worker that is still watching for
/// the next job between ops.
let elementwiseMinPerThread = 1 << 15

/// Runs `body(lo, hi)` over [0, n) split into contiguous pieces, concurrently when worth it.
func elementwiseParallelRanges(_ n: Int, threads: Int, minPerThread: Int = elementwiseMinPerThread,
                               _ body: (Int, Int) -> Void) {
    let workers = Swift.max(1, Swift.min(threads, n / Swift.max(minPerThread, 1)))
    if workers <= 1 { if n > 0 { body(0, n) }; return }
    // Chunks rounded to 16 elements keep SIMD loops aligned to each other.
    let chunk = ((n + workers - 1) / workers + 15) & ~15
    parallelFor(workers, threads: threads) { w in
        let lo = w * chunk, hi = Swift.min(n, lo + chunk)
        if lo < hi { body(lo, hi) }
    }
}

// MARK: - float32 arithmetic kernels

/// The float32 ops with SIMD kernels.
enum F32BinaryOp: Sendable {
    case add, sub, mul, div
}

/// out[i] = a[i] op b[i] for i in 0..<n. `out` may alias `a` or `b`.
@inline(__always)
func f32BinaryVV(_ op: F32BinaryOp, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                 _ out: UnsafeMutablePointer<Float>, _ n: Int) {
    f32BinaryKernel(op.kernelCode, a, 1, b, 1, out, n)
}

/// out[i] = a[i] op b for i in 0..<n. `out` may alias `a`. Division divides (no reciprocal).
@inline(__always)
func f32BinaryVS(_ op: F32BinaryOp, _ a: UnsafePointer<Float>, _ b: Float,
                 _ out: UnsafeMutablePointer<Float>, _ n: Int) {
    withUnsafePointer(to: b) { bp in f32BinaryKernel(op.kernelCode, a, 1, bp, 0, out, n) }
}

/// out[i] = a op b[i] for i in 0..<n. `out` may alias `b`.
@inline(__always)
func f32BinarySV(_ op: F32BinaryOp, _ a: Float, _ b: UnsafePointer<Float>,
                 _ out: UnsafeMutablePointer<Float>, _ n: Int) {
    withUnsafePointer(to: a) { ap in f32BinaryKernel(op.kernelCode, ap, 0, b, 1, out, n) }
}

/// One row: `aStep`/`bStep` are 1 (varies) or 0 (broadcast); any other step takes a scalar loop.
@inline(__always)
func f32BinaryRow(_ op: F32BinaryOp, _ a: UnsafePointer<Float>, _ aStep: Int, _ b: UnsafePointer<Float>, _ bStep: Int,
                  _ out: UnsafeMutablePointer<Float>, _ n: Int) {
    switch (aStep, bStep) {
    case (1, 1): f32BinaryVV(op, a, b, out, n)
    case (1, 0): f32BinaryVS(op, a, b[0], out, n)
    case (0, 1): f32BinarySV(op, a[0], b, out, n)
    default:
        for i in 0..<n {
            let x = a[i * aStep], y = b[i * bStep]
            switch op {
            case .add: out[i] = x + y
            case .sub: out[i] = x - y
            case .mul: out[i] = x * y
            case .div: out[i] = x / y
            }
        }
    }
}

/// Broadcasting float32 binary op: `a` of `aShape` op `b` of `bShape` into `out` of `outShape`
/// (the numpy broadcast of the two). `out` may alias an input whose shape equals `outShape`.
/// `epilogue`, when given, is applied in place to every stretch of `out` right after it is written
/// (at most `epilogueChunk` values, still in L1): a second element-wise pass fused into this one.
func f32BinaryBroadcast(_ op: F32BinaryOp, _ a: UnsafePointer<Float>, _ aShape: [Int],
                        _ b: UnsafePointer<Float>, _ bShape: [Int],
                        _ out: UnsafeMutablePointer<Float>, _ outShape: [Int], threads: Int = 1,
                        epilogue: ((UnsafeMutablePointer<Float>, Int) -> Void)? = nil) {
    let n = outShape.reduce(1, *)
    let aCount = aShape.reduce(1, *), bCount = bShape.reduce(1, *)
    /// body(lo, hi) over lo..<hi, in stretches the epilogue follows while they are in L1.
    @inline(__always)
    func stretches(_ lo: Int, _ hi: Int, _ body: (Int, Int) -> Void) {
        guard let epilogue else { body(lo, hi); return }
        var l = lo
        while l < hi {
            let h = Swift.min(hi, l + epilogueChunk)
            body(l, h)
            epilogue(out + l, h - l)
            l = h
        }
    }
    // Fast paths with no loop plan: same element count (same shape), or a scalar side.
    if aCount == n && bCount == n {
        elementwiseParallelRanges(n, threads: threads) { lo, hi in
            stretches(lo, hi) { l, h in f32BinaryVV(op, a + l, b + l, out + l, h - l) }
        }
        return
    }
    if bCount == 1 && aCount == n {
        let s = b[0]
        elementwiseParallelRanges(n, threads: threads) { lo, hi in
            stretches(lo, hi) { l, h in f32BinaryVS(op, a + l, s, out + l, h - l) }
        }
        return
    }
    if aCount == 1 && bCount == n {
        let s = a[0]
        elementwiseParallelRanges(n, threads: threads) { lo, hi in
            stretches(lo, hi) { l, h in f32BinarySV(op, s, b + l, out + l, h - l) }
        }
        return
    }
    // Per-channel ([N,C,H,W] op [1,C,1,1]) and every other pattern: rows of the collapsed loop.
    let plan = BroadcastLoop(outShape: outShape, shapes: [aShape, bShape])
    let sa = plan.innerSteps[0], sb = plan.innerSteps[1]
    plan.run(threads: threads) { offs, o, len in
        stretches(o, o + len) { l, h in
            f32BinaryRow(op, a + offs[0] + (l - o) * sa, sa, b + offs[1] + (l - o) * sb, sb, out + l, h - l)
        }
    }
}

/// The stretch `f32BinaryBroadcast` hands its epilogue: 16 KB of floats.
let epilogueChunk = 4096

/// out = x + x * s with numpy broadcasting, in one pass: the product of each stretch of a row is
/// written to `out` and summed with x while still in L1. The product is rounded before the sum, so
/// the bits equal a Mul followed by an Add.
func f32ResidualMul(_ x: UnsafePointer<Float>, _ xShape: [Int], _ s: UnsafePointer<Float>, _ sShape: [Int],
                    _ out: UnsafeMutablePointer<Float>, _ outShape: [Int], threads: Int = 1) {
    let plan = BroadcastLoop(outShape: outShape, shapes: [xShape, sShape])
    let sx = plan.innerSteps[0], ss = plan.innerSteps[1]
    plan.run(threads: threads) { offs, o, len in
        var done = 0
        while done < len {
            let n = Swift.min(2048, len - done)
            let xr = x + offs[0] + done * sx, orow = out + o + done
            f32BinaryRow(.mul, xr, sx, s + offs[1] + done * ss, ss, orow, n)
            f32BinaryRow(.add, xr, sx, orow, 1, orow, n)
            done += n
        }
    }
}

// MARK: - generic broadcast drivers (any element types, scalar inner loops)

/// out = op(a, b) with numpy broadcasting, on one thread. Generic and inlined so `op` specializes into
/// the loops at the call site (spreading it over threads would call `op` through a closure context per
/// element, which costs ~10x on these memory-bound loops; the float32 paths above thread instead).
/// `out` may alias an input whose shape equals `outShape`.
@inline(__always)
func binaryBroadcast<A, B, C>(_ a: UnsafePointer<A>, _ aShape: [Int], _ b: UnsafePointer<B>, _ bShape: [Int],
                              _ out: UnsafeMutablePointer<C>, _ outShape: [Int], _ op: (A, B) -> C) {
    let n = outShape.reduce(1, *)
    let aCount = aShape.reduce(1, *), bCount = bShape.reduce(1, *)
    if aCount == n && bCount == n {
        for i in 0..<n { out[i] = op(a[i], b[i]) }
        return
    }
    let plan = BroadcastLoop(outShape: outShape, shapes: [aShape, bShape])
    let sa = plan.innerSteps[0], sb = plan.innerSteps[1]
    plan.forEachRow(in: 0..<plan.total) { offs, o, len in
        let pa = a + offs[0], pb = b + offs[1], po = out + o
        if sa == 1 && sb == 1 {
            for i in 0..<len { po[i] = op(pa[i], pb[i]) }
        } else if sa == 1 && sb == 0 {
            let y = pb[0]
            for i in 0..<len { po[i] = op(pa[i], y) }
        } else if sa == 0 && sb == 1 {
            let x = pa[0]
            for i in 0..<len { po[i] = op(x, pb[i]) }
        } else {
            for i in 0..<len { po[i] = op(pa[i * sa], pb[i * sb]) }
        }
    }
}

/// out = op(a, b, c) with numpy broadcasting of three operands, on one thread (see `binaryBroadcast`).
@inline(__always)
func ternaryBroadcast<A, B, C, D>(_ a: UnsafePointer<A>, _ aShape: [Int], _ b: UnsafePointer<B>, _ bShape: [Int],
                                  _ c: UnsafePointer<C>, _ cShape: [Int],
                                  _ out: UnsafeMutablePointer<D>, _ outShape: [Int], _ op: (A, B, C) -> D) {
    let plan = BroadcastLoop(outShape: outShape, shapes: [aShape, bShape, cShape])
    let sa = plan.innerSteps[0], sb = plan.innerSteps[1], sc = plan.innerSteps[2]
    plan.forEachRow(in: 0..<plan.total) { offs, o, len in
        let pa = a + offs[0], pb = b + offs[1], pc = c + offs[2], po = out + o
        // Steps are 1 (varies along the row) or 0 (broadcast): loops with no stride math vectorize.
        switch (sa, sb, sc) {
        case (1, 1, 1): for i in 0..<len { po[i] = op(pa[i], pb[i], pc[i]) }
        case (1, 1, 0): let z = pc[0]; for i in 0..<len { po[i] = op(pa[i], pb[i], z) }
        case (1, 0, 1): let y = pb[0]; for i in 0..<len { po[i] = op(pa[i], y, pc[i]) }
        case (1, 0, 0): let y = pb[0], z = pc[0]; for i in 0..<len { po[i] = op(pa[i], y, z) }
        case (0, 1, 1): let x = pa[0]; for i in 0..<len { po[i] = op(x, pb[i], pc[i]) }
        case (0, 1, 0): let x = pa[0], z = pc[0]; for i in 0..<len { po[i] = op(x, pb[i], z) }
        case (0, 0, 1): let x = pa[0], y = pb[0]; for i in 0..<len { po[i] = op(x, y, pc[i]) }
        default: for i in 0..<len { po[i] = op(pa[i * sa], pb[i * sb], pc[i * sc]) }
        }
    }
}

// MARK: - scalar semantics shared by the ops

/// numpy `mod` for floats (Python sign rule: the result takes the divisor's sign).
@inline(__always) func numpyFloatMod<T: BinaryFloatingPoint>(_ a: T, _ b: T) -> T {
    if b == 0 { return .nan }
    var m = a.truncatingRemainder(dividingBy: b)
    if m != 0 {
        if (b < 0) != (m < 0) { m += b }
    } else {
        m = b < 0 ? -0.0 : 0.0
    }
    return m
}

/// C-style truncating integer division; x/0 gives 0 and MIN/-1 wraps (no traps).
@inline(__always) func cTruncatingDiv<T: FixedWidthInteger>(_ a: T, _ b: T) -> T {
    if b == 0 { return 0 }
    return a.dividedReportingOverflow(by: b).partialValue
}

/// Integer remainder: `python` gives the divisor's sign (numpy mod), else C's fmod sign. x%0 gives 0.
@inline(__always) func onnxIntMod<T: FixedWidthInteger>(_ a: T, _ b: T, python: Bool) -> T {
    if b == 0 { return 0 }
    var r = a.remainderReportingOverflow(dividingBy: b).partialValue
    if python && r != 0 && ((r < 0) != (b < 0)) { r = r &+ b }
    return r
}

/// Integer power with wrapping; a negative exponent gives the truncated 1/base^-e.
@inline(__always) func wrappingIntPow<T: FixedWidthInteger>(_ base: T, _ e: Int64) -> T {
    if e < 0 {
        if base == 1 { return 1 }
        if T.isSigned && base == 0 &- 1 { return (e & 1) == 0 ? 1 : base }
        return 0
    }
    var result: T = 1, b = base, k = e
    while k > 0 {
        if k & 1 == 1 { result = result &* b }
        k >>= 1
        if k > 0 { b = b &* b }
    }
    return result
}

/// ONNX BitShift: shifts of a negative amount or of at least the bit width give 0
/// (or -1 for a right shift of a negative signed value); left shifts wrap.
@inline(__always) func onnxBitShift<T: FixedWidthInteger>(_ a: T, _ s: T, left: Bool) -> T {
    if s < 0 || s >= T.bitWidth { return (!left && a < 0) ? (0 &- 1) : 0 }
    let k = Int(s)
    return left ? a << k : a >> k
}
