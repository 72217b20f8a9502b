/// Unary elementwise kernels on contiguous float32 buffers (SIMD16<Float>), plus the vectorized
/// exp / erf / tanh / sigmoid approximations they use. Kernels take pointers, counts and parameters only.
///
/// Accuracy (checked against numpy in ElementwiseTests): exp, sigmoid, tanh, erf have a max
/// relative error below 1e-6 over their normal-number range.

import Foundation

typealias F32x16 = SIMD16<Float>

/// Activations that can run in place on float32 data (and that conv/matmul can fuse).
/// Parameters: leakyRelu(alpha), clip(alpha = min, beta = max), hardSigmoid(alpha, beta),
/// elu(alpha), selu(alpha, beta = gamma), celu(alpha), thresholdedRelu(alpha), swish(alpha).
enum ActivationKind: Sendable, Equatable {
    case identity
    case relu, leakyRelu, clip, sigmoid, hardSigmoid, hardSwish, tanh
    /// Exact gelu: 0.5·x·(1 + erf(x/√2)).
    case gelu
    /// Gelu with the tanh approximation.
    case geluTanh
    case elu, selu, celu, softsign, thresholdedRelu, swish
    case softplus, mish
    case exp, erf
    case abs, neg, sqrt, floor, ceil, round, reciprocal, sign
}

// MARK: vector math

@inline(__always) func f32Splat(_ v: Float) -> F32x16 { F32x16(repeating: v) }

/// e^x, max relative error ~2e-7 for normal results; overflows to +inf, underflows through
/// subnormals to 0, NaN propagates.
@inline(__always) func expF32x16(_ x: F32x16) -> F32x16 {
    var xc = x.replacing(with: 89.0, where: x .> 89.0)
    xc = xc.replacing(with: -104.0, where: xc .< -104.0)
    let magic: Float = 12582912.0  // 1.5·2^23: adding it rounds to an integer in the low mantissa bits
    let t = xc * 1.44269504088896341 + magic
    let n = t - magic
    let ni = unsafeBitCast(t, to: SIMD16<Int32>.self) &- 0x4B40_0000
    var r = xc - n * 0.693359375
    r = r - n * -2.12194440e-4
    var p = f32Splat(1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    p = p * (r * r) + r + 1.0
    // 2^n as two factors so both overflow to inf and gradual underflow come out right.
    let n1 = ni &>> 1
    let n2 = ni &- n1
    let s1 = unsafeBitCast((n1 &+ 127) &<< 23, to: F32x16.self)
    let s2 = unsafeBitCast((n2 &+ 127) &<< 23, to: F32x16.self)
    let y = p * s1 * s2
    return y.replacing(with: x, where: x .!= x)
}

/// 1/(1+e^-x), computed from e^-|x| so it is accurate in both tails.
@inline(__always) func sigmoidF32x16(_ x: F32x16) -> F32x16 {
    let ax = x.replacing(with: -x, where: x .< 0)
    let e = expF32x16(-ax)
    let s = 1.0 / (1.0 + e)
    return s.replacing(with: e * s, where: x .< 0)
}

/// tanh: odd polynomial for |x| < 0.625 (Cephes tanhf), 1 - 2/(e^{2|x|}+1) above.
@inline(__always) func tanhF32x16(_ x: F32x16) -> F32x16 {
    let ax = x.replacing(with: -x, where: x .< 0)
    let s = x * x
    var p = f32Splat(-5.70498872745e-3)
    p = p * s + 2.06390887954e-2
    p = p * s - 5.37397155531e-2
    p = p * s + 1.33314422036e-1
    p = p * s - 3.33332819422e-1
    let small = p * s * x + x
    let e = expF32x16(2.0 * ax.replacing(with: 20.0, where: ax .> 20.0))
    var big = 1.0 - 2.0 / (e + 1.0)
    big = big.replacing(with: -big, where: x .< 0)
    let y = big.replacing(with: small, where: ax .< 0.625)
    return y.replacing(with: x, where: x .!= x)
}

/// erfc(a) for a >= 1 (relative error < 1e-6 down to the float underflow at a≈9.2):
/// e^{-a²}·P(1/a) on [1,2) and e^{-a²}/a·R(1/a²) on [2,∞).
@inline(__always) func erfcTailF32x16(_ a: F32x16) -> F32x16 {
    let q = 1.0 / a
    var p = f32Splat(-0.017914503789147492)
    p = p * q + 0.11921096424272225
    p = p * q - 0.3470140356999265
    p = p * q + 0.5623822587818967
    p = p * q - 0.49307901626466494
    p = p * q + 0.044272253621740365
    p = p * q + 0.5595811635944887
    p = p * q + 0.0001444905457453149
    let y = q * q
    var r = f32Splat(-1.047766399936249e+1)
    r = r * y + 1.297719955372516e+1
    r = r * y - 7.495518717768503e+0
    r = r * y + 2.921019019210786e+0
    r = r * y - 1.015265279202700e+0
    r = r * y + 4.218463358204948e-1
    r = r * y - 2.820767439740514e-1
    r = r * y + 5.641895067754075e-1
    r = r * q
    let poly = r.replacing(with: p, where: a .< 2.0)
    let ac = a.replacing(with: 10.0, where: a .> 10.0)
    return expF32x16(-(ac * ac)) * poly
}

/// erf(x) for |x| < 1: x·T(x²) (Cephes erff).
@inline(__always) func erfSmallF32x16(_ x: F32x16) -> F32x16 {
    let z = x * x
    var t = f32Splat(7.853861353153693e-5)
    t = t * z - 8.010193625184903e-4
    t = t * z + 5.188327685732524e-3
    t = t * z - 2.685381193529856e-2
    t = t * z + 1.128358514861418e-1
    t = t * z - 3.761262582423300e-1
    t = t * z + 1.128379165726710e+0
    return x * t
}

@inline(__always) func erfF32x16(_ x: F32x16) -> F32x16 {
    let ax = x.replacing(with: -x, where: x .< 0)
    let small = erfSmallF32x16(x)
    var big = 1.0 - erfcTailF32x16(ax.replacing(with: 1.0, where: ax .< 1.0))
    big = big.replacing(with: -big, where: x .< 0)
    let y = big.replacing(with: small, where: ax .< 1.0)
    return y.replacing(with: x, where: x .!= x)
}

/// erfc(z) with relative accuracy for all z (used by exact gelu's negative tail).
@inline(__always) func erfcF32x16(_ z: F32x16) -> F32x16 {
    let mid = 1.0 - erfSmallF32x16(z)                       // |z| < 1
    let az = z.replacing(with: -z, where: z .< 0)
    let t = erfcTailF32x16(az.replacing(with: 1.0, where: az .< 1.0))   // erfc(|z|) for |z| >= 1
    let tail = t.replacing(with: 2.0 - t, where: z .< 0)
    let y = tail.replacing(with: mid, where: az .< 1.0)
    return y.replacing(with: z, where: z .!= z)
}

// MARK: loops

/// Applies `f` to 16 floats at a time from `src` to `dst` (which may be the same buffer).
@inline(__always)
func mapF32x16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int,
               _ f: (F32x16) -> F32x16) {
    var i = 0
    while i &+ 16 <= n {
        let v = UnsafeRawPointer(src + i).loadUnaligned(as: F32x16.self)
        UnsafeMutableRawPointer(dst + i).storeBytes(of: f(v), as: F32x16.self)
        i &+= 16
    }
    let rest = n &- i
    if rest > 0 {
        var v = F32x16(repeating: 0)
        for j in 0..<rest { v[j] = src[i &+ j] }
        let r = f(v)
        for j in 0..<rest { dst[i &+ j] = r[j] }
    }
}

/// Applies a scalar function element by element (for ops without a vector form).
@inline(__always)
func mapF32(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int, _ f: (Float) -> Float) {
    for i in 0..<n { dst[i] = f(src[i]) }
}

/// Runs an activation from `src` to `dst` (n floats; src == dst is allowed).
func activationF32(_ kind: ActivationKind, _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int,
                   alpha: Float = 0, beta: Float = 0) {
    if let code = kind.kernelCode {
        f32UnaryKernel(code, src, dst, n, alpha, beta)
        return
    }
    switch kind {
    case .identity:
        if UnsafePointer(dst) != src { dst.update(from: src, count: n) }
    case .relu:
        mapF32x16(src, dst, n) { $0.replacing(with: 0, where: $0 .< 0) }
    case .leakyRelu:
        let a = alpha
        mapF32x16(src, dst, n) { $0.replacing(with: $0 * a, where: $0 .< 0) }
    case .clip:
        let lo = alpha, hi = beta
        mapF32x16(src, dst, n) { v in
            let t = v.replacing(with: lo, where: v .< lo)
            return t.replacing(with: hi, where: t .> hi)
        }
    case .sigmoid:
        mapF32x16(src, dst, n) { sigmoidF32x16($0) }
    case .hardSigmoid:
        let a = alpha, b = beta
        mapF32x16(src, dst, n) { v in
            let t = v * a + b
            let u = t.replacing(with: 0, where: t .< 0)
            return u.replacing(with: 1, where: u .> 1)
        }
    case .hardSwish:
        mapF32x16(src, dst, n) { v in
            let t = v * (1.0 / 6.0) + 0.5
            let u = t.replacing(with: 0, where: t .< 0)
            return v * u.replacing(with: 1, where: u .> 1)
        }
    case .tanh:
        mapF32x16(src, dst, n) { tanhF32x16($0) }
    case .gelu:
        mapF32x16(src, dst, n) { v in 0.5 * v * erfcF32x16(v * -0.70710678118654752) }
    case .geluTanh:
        // 0.5·(1 + tanh(u)) = sigmoid(2u): no cancellation in the negative tail.
        mapF32x16(src, dst, n) { v in
            let u = (v + 0.044715 * v * v * v) * (2.0 * 0.79788456080286536)
            return v * sigmoidF32x16(u)
        }
    case .elu:
        let a = alpha
        mapF32x16(src, dst, n) { v in v.replacing(with: a * (expF32x16(v) - 1.0), where: v .< 0) }
    case .selu:
        let a = alpha, g = beta
        mapF32x16(src, dst, n) { v in
            g * v.replacing(with: a * expF32x16(v) - a, where: v .<= 0)
        }
    case .celu:
        let a = alpha, inv = 1 / alpha
        mapF32x16(src, dst, n) { v in
            v.replacing(with: a * (expF32x16(v * inv) - 1.0), where: v .< 0)
        }
    case .softsign:
        mapF32x16(src, dst, n) { v in v / (1.0 + v.replacing(with: -v, where: v .< 0)) }
    case .thresholdedRelu:
        let a = alpha
        mapF32x16(src, dst, n) { v in v.replacing(with: 0, where: .!(v .> a)) }
    case .swish:
        let a = alpha
        mapF32x16(src, dst, n) { v in v * sigmoidF32x16(v * a) }
    case .softplus:
        mapF32(src, dst, n) { x in
            let e = Foundation.exp(x > 0 ? -x : x)
            return (x > 0 ? x : 0) + Foundation.log1p(e)
        }
    case .mish:
        mapF32(src, dst, n) { x in
            // tanh(log(1+e^x)) = (e^2x + 2e^x) / (e^2x + 2e^x + 2); for large x it is 1.
            if x > 20 { return x }
            let e = Foundation.exp(x)
            let num = e * (e + 2)
            return x * num / (num + 2)
        }
    case .exp:
        mapF32x16(src, dst, n) { expF32x16($0) }
    case .erf:
        mapF32x16(src, dst, n) { erfF32x16($0) }
    case .abs:
        mapF32x16(src, dst, n) { $0.replacing(with: -$0, where: $0 .< 0) }
    case .neg:
        mapF32x16(src, dst, n) { -$0 }
    case .sqrt:
        mapF32x16(src, dst, n) { $0.squareRoot() }
    case .floor:
        mapF32x16(src, dst, n) { $0.rounded(.down) }
    case .ceil:
        mapF32x16(src, dst, n) { $0.rounded(.up) }
    case .round:
        mapF32x16(src, dst, n) { $0.rounded(.toNearestOrEven) }
    case .reciprocal:
        mapF32x16(src, dst, n) { 1.0 / $0 }
    case .sign:
        mapF32x16(src, dst, n) { v in
            var s = F32x16(repeating: 0)
            s = s.replacing(with: 1, where: v .> 0)
            s = s.replacing(with: -1, where: v .< 0)
            return s.replacing(with: v, where: v .!= v)
        }
    }
}

/// Runs an activation in place on n contiguous floats (for fusion into conv / matmul epilogues).
func applyActivationF32(_ kind: ActivationKind, _ p: UnsafeMutablePointer<Float>, _ n: Int, alpha: Float, beta: Float) {
    activationF32(kind, UnsafePointer(p), p, n, alpha: alpha, beta: beta)
}
