/// Normalization kernels: per-channel affine maps, row statistics, LRN.

/// y[p, i] = x[p, i] * a[p % channels] + b[p % channels] for `planes` planes of `size` elements
/// (planes run over batch x channels).
func channelAffineF32(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, planes: Int, channels: Int,
                      size: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>) {
    for p in 0..<planes {
        let c = p % channels
        let s = a[c], t = b[c]
        let xs = x + p * size, ys = y + p * size
        let sv = SIMD16<Float>(repeating: s), tv = SIMD16<Float>(repeating: t)
        var i = 0
        while i + 16 <= size {
            let v = UnsafeRawPointer(xs + i).loadUnaligned(as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(ys + i).storeBytes(of: v * sv + tv, as: SIMD16<Float>.self)
            i += 16
        }
        while i < size { ys[i] = xs[i] * s + t; i += 1 }
    }
}

/// Mean and (population) variance of `n` contiguous floats, accumulated in double.
func meanVarianceF32(_ x: UnsafePointer<Float>, _ n: Int) -> (mean: Double, variance: Double) {
    guard n > 0 else { return (0, 0) }
    var acc = SIMD8<Float>(repeating: 0)
    var s = 0.0
    var i = 0
    // Blocked float sums folded into a double keep accuracy and speed.
    while i + 8 <= n {
        acc += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
        i += 8
        if i & 1023 == 0 { s += Double(acc.sum()); acc = .init(repeating: 0) }
    }
    s += Double(acc.sum())
    while i < n { s += Double(x[i]); i += 1 }
    let mean = s / Double(n)
    let m = Float(mean)
    var vacc = SIMD8<Float>(repeating: 0)
    let mv = SIMD8<Float>(repeating: m)
    var v = 0.0
    i = 0
    while i + 8 <= n {
        let d = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self) - mv
        vacc += d * d
        i += 8
        if i & 1023 == 0 { v += Double(vacc.sum()); vacc = .init(repeating: 0) }
    }
    v += Double(vacc.sum())
    while i < n { let d = Double(x[i]) - mean; v += d * d; i += 1 }
    return (mean, v / Double(n))
}

/// Mean and variance over a strided set: `groups` runs of `len` contiguous floats, `gap` apart.
func meanVarianceStridedF32(_ x: UnsafePointer<Float>, groups: Int, len: Int, gap: Int) -> (mean: Double, variance: Double) {
    let n = groups * len
    guard n > 0 else { return (0, 0) }
    var s = 0.0
    for g in 0..<groups { s += meanVarianceSum(x + g * gap, len) }
    let mean = s / Double(n)
    var v = 0.0
    for g in 0..<groups {
        let p = x + g * gap
        for i in 0..<len { let d = Double(p[i]) - mean; v += d * d }
    }
    return (mean, v / Double(n))
}

@inline(__always) private func meanVarianceSum(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
    var s = 0.0
    for i in 0..<n { s += Double(x[i]) }
    return s
}

/// Layer normalization of `rows` rows of `cols` floats: y = (x - mean) * invStd * scale + bias.
/// Writes per-row mean and 1/std when asked.
func layerNormF32(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
                  scale: UnsafePointer<Float>, bias: UnsafePointer<Float>?, epsilon: Double,
                  meanOut: UnsafeMutablePointer<Float>?, invStdOut: UnsafeMutablePointer<Float>?) {
    for r in 0..<rows {
        let xs = x + r * cols, ys = y + r * cols
        let (mean, variance) = meanVarianceF32(xs, cols)
        let inv = 1 / (variance + epsilon).squareRoot()
        meanOut?[r] = Float(mean)
        invStdOut?[r] = Float(inv)
        let m = Float(mean), iv = Float(inv)
        if let b = bias {
            for i in 0..<cols { ys[i] = (xs[i] - m) * iv * scale[i] + b[i] }
        } else {
            for i in 0..<cols { ys[i] = (xs[i] - m) * iv * scale[i] }
        }
    }
}

/// Local response normalization across channels of an [N, C, size] float tensor.
func lrnF32(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, n: Int, c: Int, size: Int,
            window: Int, alpha: Float, beta: Float, bias: Float) {
    let before = (window - 1) / 2, after = window - 1 - before
    let scale = alpha / Float(window)
    var sq = [Float](repeating: 0, count: size)
    for b in 0..<n {
        let xb = x + b * c * size, yb = y + b * c * size
        for ch in 0..<c {
            for i in 0..<size { sq[i] = 0 }
            let lo = max(0, ch - before), hi = min(c - 1, ch + after)
            if lo <= hi {
                for k in lo...hi {
                    let xk = xb + k * size
                    for i in 0..<size { sq[i] += xk[i] * xk[i] }
                }
            }
            let xc = xb + ch * size, yc = yb + ch * size
            if beta == 0.75 {
                for i in 0..<size {
                    let d = bias + scale * sq[i]
                    let r = d.squareRoot()
                    yc[i] = xc[i] / (r * r.squareRoot())
                }
            } else {
                for i in 0..<size { yc[i] = xc[i] / Float(Foundation.pow(Double(bias + scale * sq[i]), Double(beta))) }
            }
        }
    }
}

import Foundation
