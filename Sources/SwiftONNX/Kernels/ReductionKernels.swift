import CKernels
import Foundation

// Float32 reduction, softmax and scan kernels. They take pointers, sizes and parameters only.
//
// Layout convention: a tensor viewed as (outer, n, inner), reducing or normalizing along `n`.
// `inner == 1` means contiguous rows (the fast case: LayerNorm-like last-axis ops, global pooling).

/// The core accumulation a float32 reduction performs (post-processing such as mean's divide or
/// L2's sqrt is applied by the caller).
enum F32ReduceCore {
    case sum, sumAbs, sumSquare, max, min, prod
}

// MARK: contiguous rows (inner == 1)

/// The C row reductions (so_reduce.h): used for max and min.
let f32ReduceRowsKernel: so_f32_reduce_rows_fn = so_f32_reduce_rows_select(selectedISA)!

/// out[r] = reduce(src[r*n ..< r*n+n]) for r in 0..<rows.
func f32ReduceRows(_ src: UnsafePointer<Float>, rows: Int, n: Int, core: F32ReduceCore, out: UnsafeMutablePointer<Float>) {
    for r in 0..<rows {
        out[r] = f32ReduceRow(src + r * n, n, core)
    }
}

@inline(__always)
private func loadV(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inline(__always)
private func storeV(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}

/// Reduces one contiguous row of `n` floats.
func f32ReduceRow(_ p: UnsafePointer<Float>, _ n: Int, _ core: F32ReduceCore) -> Float {
    switch core {
    case .sum: return f32Sum(p, n)
    case .sumAbs:
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>()
        var i = 0
        while i + 32 <= n {
            let v0 = loadV(p + i), v1 = loadV(p + i + 16)
            a0 += v0.replacing(with: -v0, where: v0 .< 0)
            a1 += v1.replacing(with: -v1, where: v1 .< 0)
            i += 32
        }
        var s = (a0 + a1).sum()
        while i < n { s += abs(p[i]); i += 1 }
        return s
    case .sumSquare:
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>()
        var i = 0
        while i + 32 <= n {
            let v0 = loadV(p + i), v1 = loadV(p + i + 16)
            a0 = a0 + v0 * v0
            a1 = a1 + v1 * v1
            i += 32
        }
        var s = (a0 + a1).sum()
        while i < n { s += p[i] * p[i]; i += 1 }
        return s
    case .max, .min:
        // The C kernel (NaN wins): SIMD16's pointwiseMax/Min compile to scalar code here.
        var m: Float = 0
        f32ReduceRowsKernel(Int32(core == .max ? SO_RED_MAX : SO_RED_MIN), p, 1, n, &m)
        return m
    case .prod:
        var s: Float = 1
        for i in 0..<n { s *= p[i] }
        return s
    }
}

/// Sum of a contiguous row with four SIMD16 accumulators.
@inline(__always)
func f32Sum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
    var i = 0
    while i + 64 <= n {
        a0 += loadV(p + i); a1 += loadV(p + i + 16)
        a2 += loadV(p + i + 32); a3 += loadV(p + i + 48)
        i += 64
    }
    while i + 16 <= n { a0 += loadV(p + i); i += 16 }
    var s = ((a0 + a1) + (a2 + a3)).sum()
    while i < n { s += p[i]; i += 1 }
    return s
}

// MARK: strided (inner > 1)

/// out[o*inner + j] = reduce over k of src[(o*n + k)*inner + j]. Vectorized across `inner`.
func f32ReduceMiddle(_ src: UnsafePointer<Float>, outer: Int, n: Int, inner: Int, core: F32ReduceCore,
                     out: UnsafeMutablePointer<Float>) {
    let initial: Float
    switch core {
    case .sum, .sumAbs, .sumSquare: initial = 0
    case .max: initial = -.infinity
    case .min: initial = .infinity
    case .prod: initial = 1
    }
    for o in 0..<outer {
        let acc = out + o * inner
        acc.update(repeating: initial, count: inner)
        let base = src + o * n * inner
        for k in 0..<n {
            let row = base + k * inner
            var j = 0
            switch core {
            case .sum:
                while j + 16 <= inner { storeV(loadV(acc + j) + loadV(row + j), acc + j); j += 16 }
                while j < inner { acc[j] += row[j]; j += 1 }
            case .sumAbs:
                while j < inner { acc[j] += abs(row[j]); j += 1 }
            case .sumSquare:
                while j + 16 <= inner { let v = loadV(row + j); storeV(loadV(acc + j) + v * v, acc + j); j += 16 }
                while j < inner { acc[j] += row[j] * row[j]; j += 1 }
            case .max:
                while j < inner { if row[j] > acc[j] || row[j].isNaN { acc[j] = row[j] }; j += 1 }
            case .min:
                while j < inner { if row[j] < acc[j] || row[j].isNaN { acc[j] = row[j] }; j += 1 }
            case .prod:
                while j < inner { acc[j] *= row[j]; j += 1 }
            }
        }
    }
}

// MARK: vectorized exp

/// exp(x) for 16 lanes: Cody-Waite range reduction and a degree-6 polynomial (relative error ~2e-7).
/// Inputs below about -87.3 give 0, above 88.7 give +inf; NaN stays NaN.
@inline(__always)
func f32ExpV(_ x: SIMD16<Float>) -> SIMD16<Float> {
    let xc = pointwiseMin(pointwiseMax(x, SIMD16(repeating: -87.33654)), SIMD16(repeating: 88.72283))
    let log2e = SIMD16<Float>(repeating: 1.44269504088896341)
    let n = (xc * log2e).rounded(.toNearestOrEven)
    let r = xc - n * SIMD16(repeating: 0.693359375) + n * SIMD16(repeating: 2.12194440e-4)
    // exp(r) on |r| <= ln2/2
    var p = SIMD16<Float>(repeating: 1.9875691500e-4)
    p = p * r + SIMD16(repeating: 1.3981999507e-3)
    p = p * r + SIMD16(repeating: 8.3334519073e-3)
    p = p * r + SIMD16(repeating: 4.1665795894e-2)
    p = p * r + SIMD16(repeating: 1.6666665459e-1)
    p = p * r + SIMD16(repeating: 5.0000001201e-1)
    p = p * (r * r) + r + SIMD16(repeating: 1)
    // 2^n via the exponent bits; n in [-126, 128] after clamping. Split to stay in range.
    let ni = SIMD16<Int32>(n, rounding: .towardZero)
    let half = ni &>> 1
    let bias = SIMD16<Int32>(repeating: 127)
    let s1 = unsafeBitCast((half &+ bias) &<< 23, to: SIMD16<Float>.self)
    let s2 = unsafeBitCast(((ni &- half) &+ bias) &<< 23, to: SIMD16<Float>.self)
    var y = p * s1 * s2
    y = y.replacing(with: 0, where: x .< SIMD16(repeating: -87.33654))
    y = y.replacing(with: Float.infinity, where: x .> SIMD16(repeating: 88.72283))
    y = y.replacing(with: x, where: x .!= x)
    return y
}

// MARK: softmax family

enum SoftmaxKind { case softmax, logSoftmax }

/// Softmax / LogSoftmax over contiguous rows of length n.
func f32SoftmaxRows(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, rows: Int, n: Int, kind: SoftmaxKind) {
    guard n > 0 else { return }
    f32SoftmaxKernel(src, dst, rows, n, kind == .logSoftmax ? 1 : 0)
}

/// Softmax / LogSoftmax along the middle dim of (outer, n, inner), inner > 1.
/// `scratch` must hold `2 * inner` floats.
func f32SoftmaxMiddle(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, outer: Int, n: Int, inner: Int,
                      kind: SoftmaxKind, scratch: UnsafeMutablePointer<Float>) {
    guard n > 0 else { return }
    let mx = scratch
    for o in 0..<outer {
        let x = src + o * n * inner, y = dst + o * n * inner
        f32ReduceMiddle(x, outer: 1, n: n, inner: inner, core: .max, out: mx)
        for k in 0..<n {
            let xr = x + k * inner, yr = y + k * inner
            var j = 0
            while j + 16 <= inner { storeV(f32ExpV(loadV(xr + j) - loadV(mx + j)), yr + j); j += 16 }
            while j < inner { yr[j] = Foundation.exp(xr[j] - mx[j]); j += 1 }
        }
        let sums = scratch + inner
        f32ReduceMiddle(UnsafePointer(y), outer: 1, n: n, inner: inner, core: .sum, out: sums)
        switch kind {
        case .softmax:
            for j in 0..<inner { sums[j] = 1 / sums[j] }
            for k in 0..<n {
                let yr = y + k * inner
                var j = 0
                while j + 16 <= inner { storeV(loadV(yr + j) * loadV(sums + j), yr + j); j += 16 }
                while j < inner { yr[j] *= sums[j]; j += 1 }
            }
        case .logSoftmax:
            for j in 0..<inner { sums[j] = mx[j] + Foundation.log(sums[j]) }
            for k in 0..<n {
                let xr = x + k * inner, yr = y + k * inner
                for j in 0..<inner { yr[j] = xr[j] - sums[j] }
            }
        }
    }
}

/// Double-precision softmax along the middle dim of (outer, n, inner) (any inner, including 1).
func f64SoftmaxMiddle(_ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, outer: Int, n: Int, inner: Int,
                      kind: SoftmaxKind) {
    guard n > 0 else { return }
    for o in 0..<outer {
        for j in 0..<inner {
            let base = o * n * inner + j
            var m = -Double.infinity
            for k in 0..<n { let v = x[base + k * inner]; if v > m || v.isNaN { m = v } }
            var s = 0.0
            for k in 0..<n { s += Foundation.exp(x[base + k * inner] - m) }
            switch kind {
            case .softmax:
                for k in 0..<n { y[base + k * inner] = Foundation.exp(x[base + k * inner] - m) / s }
            case .logSoftmax:
                let sub = m + Foundation.log(s)
                for k in 0..<n { y[base + k * inner] = x[base + k * inner] - sub }
            }
        }
    }
}
