import CKernels
/// Normalization kernels: per-channel affine maps, row statistics, LRN.

/// y[p, i] = x[p, i] * a[p % channels] + b[p % channels] for `planes` planes of `size` elements
/// (planes run over batch x channels). A multiply then an add (no FMA), like the reference.
func channelAffineF32(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, planes: Int, channels: Int,
                      size: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>) {
    f32ChannelAffineKernel(x, y, planes, channels, size, a, b)
}

/// BatchNormalization as a per-channel affine map y = x * a + t: a = scale / sqrt(variance + epsilon),
/// t = bias - mean * a, computed in double and rounded once (the op, and the pass that turns it into
/// ChannelAffine, share this so both give the same values).
func batchNormAffine(scale: [Float], bias: [Float], mean: [Double], variance: [Double],
                     epsilon: Double) -> (a: [Float], t: [Float]) {
    var a = [Float](repeating: 0, count: scale.count), t = a
    for ch in 0..<scale.count {
        let ad = Double(scale[ch]) / (variance[ch] + epsilon).squareRoot()
        a[ch] = Float(ad)
        t[ch] = Float(Double(bias[ch]) - mean[ch] * ad)
    }
    return (a, t)
}

/// Mean and (population) variance of `n` contiguous floats, accumulated in double.
func meanVarianceF32(_ x: UnsafePointer<Float>, _ n: Int) -> (mean: Double, variance: Double) {
    meanVarianceStridedF32(x, groups: 1, len: n, gap: n)
}

/// Mean and variance over a strided set: `groups` runs of `len` contiguous floats, `gap` apart.
func meanVarianceStridedF32(_ x: UnsafePointer<Float>, groups: Int, len: Int, gap: Int) -> (mean: Double, variance: Double) {
    guard groups * len > 0 else { return (0, 0) }
    var mean = 0.0, variance = 0.0
    f32MeanVarianceKernel(x, groups, len, gap, &mean, &variance)
    return (mean, variance)
}

/// Layer normalization of `rows` rows of `cols` floats: y = (x - mean) * invStd * scale + bias.
/// Writes per-row mean and 1/std when asked.
func layerNormF32(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
                  scale: UnsafePointer<Float>, bias: UnsafePointer<Float>?, epsilon: Double,
                  meanOut: UnsafeMutablePointer<Float>?, invStdOut: UnsafeMutablePointer<Float>?) {
    guard rows > 0 else { return }
    f32NormRowsKernel(x, y, rows, cols, scale, bias, epsilon, 0, meanOut, invStdOut)
}

/// RMS normalization of `rows` rows of `cols` floats: y = x * invRMS * scale (+ bias), with
/// invRMS = 1 / sqrt(mean(x^2) + eps), the statistic in double. Writes per-row invRMS when asked.
func rmsNormF32(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
                scale: UnsafePointer<Float>, bias: UnsafePointer<Float>? = nil, epsilon: Double,
                invStdOut: UnsafeMutablePointer<Float>?) {
    guard rows > 0 else { return }
    f32NormRowsKernel(x, y, rows, cols, scale, bias, epsilon, 1, nil, invStdOut)
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
