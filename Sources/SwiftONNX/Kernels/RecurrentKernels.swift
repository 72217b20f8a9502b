import COpenBLAS
import Foundation

/// Kernels for RNN, GRU and LSTM in float32. They know nothing of tensors: pointers, sizes, parameters.
///
/// Shared layout conventions (ONNX layout 0):
/// - `x`: [seq, batch, input] row-major.
/// - `w`: [gates*hidden, input], `r`: [gates*hidden, hidden] (one direction).
/// - `y` (optional): written at y + t*yTimeStride + b*hidden for the state after time step t.
///   Positions a batch entry does not reach (t >= its sequence length) are left untouched
///   (callers pre-zero `y`).
/// - `hOut` (and `cOut`): [batch, hidden] final states (the last valid step of each batch entry).
/// - `lens`: per batch entry sequence length (<= seq).

/// An activation function of the recurrent ops, with its alpha/beta.
struct RNNActivation: Sendable {
    enum Kind: Sendable {
        case sigmoid, tanh, relu, hardSigmoid, affine, leakyRelu, thresholdedRelu, scaledTanh, elu, softsign, softplus
    }
    var kind: Kind
    var alpha: Float
    var beta: Float

    /// Whether the function takes alpha / beta (in ONNX's activation_alpha / activation_beta lists).
    static func usage(_ k: Kind) -> (alpha: Bool, beta: Bool) {
        switch k {
        case .affine, .scaledTanh, .hardSigmoid: return (true, true)
        case .leakyRelu, .thresholdedRelu, .elu: return (true, false)
        default: return (false, false)
        }
    }

    static func defaults(_ k: Kind) -> (Float, Float) {
        switch k {
        case .leakyRelu: return (0.01, 0)
        case .hardSigmoid: return (0.2, 0.5)
        case .elu, .thresholdedRelu: return (1, 0)
        case .affine: return (1, 0)
        case .scaledTanh: return (1, 1)
        default: return (0, 0)
        }
    }

    static func kind(named s: String) -> Kind? {
        switch s.lowercased() {
        case "sigmoid": return .sigmoid
        case "tanh": return .tanh
        case "relu": return .relu
        case "hardsigmoid": return .hardSigmoid
        case "affine": return .affine
        case "leakyrelu": return .leakyRelu
        case "thresholdedrelu": return .thresholdedRelu
        case "scaledtanh": return .scaledTanh
        case "elu": return .elu
        case "softsign": return .softsign
        case "softplus": return .softplus
        default: return nil
        }
    }

    /// Applies the function in place to n values.
    func apply(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
        let a = alpha, b = beta
        switch kind {
        case .sigmoid: mapSIMD8(p, n, fastSigmoid)
        case .tanh: mapSIMD8(p, n, fastTanh)
        case .relu: for i in 0..<n { p[i] = max(p[i], 0) }
        case .hardSigmoid: for i in 0..<n { p[i] = min(max(a * p[i] + b, 0), 1) }
        case .affine: for i in 0..<n { p[i] = a * p[i] + b }
        case .leakyRelu: for i in 0..<n { let v = p[i]; p[i] = v >= 0 ? v : a * v }
        case .thresholdedRelu: for i in 0..<n { let v = p[i]; p[i] = v > a ? v : 0 }
        case .scaledTanh: for i in 0..<n { p[i] = a * tanhf(b * p[i]) }
        case .elu: for i in 0..<n { let v = p[i]; p[i] = v >= 0 ? v : a * (expf(v) - 1) }
        case .softsign: for i in 0..<n { let v = p[i]; p[i] = v / (1 + abs(v)) }
        case .softplus:
            for i in 0..<n {
                let v = p[i]
                p[i] = v > 0 ? v + log1pf(expf(-v)) : log1pf(expf(v))
            }
        }
    }
}

// MARK: vectorized sigmoid / tanh (the per-step gate math is dominated by them)

/// Applies `f` to n floats in place, 8 at a time (the tail goes through a padded vector).
@inline(__always) private func mapSIMD8(_ p: UnsafeMutablePointer<Float>, _ n: Int, _ f: (SIMD8<Float>) -> SIMD8<Float>) {
    var i = 0
    let raw = UnsafeMutableRawPointer(p)
    while i + 8 <= n {
        let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        raw.storeBytes(of: f(v), toByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    if i < n {
        var v = SIMD8<Float>(repeating: 0)
        for k in 0..<(n - i) { v[k] = p[i + k] }
        let r = f(v)
        for k in 0..<(n - i) { p[i + k] = r[k] }
    }
}

// SIMD float comparisons (.<, clamped, pointwiseMin) are scalarized by the Swift compiler here,
// so clamps and selects below use integer bit operations, which vectorize.

/// Lane mask (all ones) where |x| < c, as Int32 lanes.
@inline(__always) private func magnitudeBelow(_ x: SIMD8<Float>, _ c: Float) -> SIMD8<Int32> {
    let ax = unsafeBitCast(unsafeBitCast(x, to: SIMD8<Int32>.self) & SIMD8(repeating: 0x7FFF_FFFF), to: SIMD8<Float>.self)
    return unsafeBitCast(ax - SIMD8(repeating: c), to: SIMD8<Int32>.self) &>> 31
}

/// m ? a : b, lane-wise, with m from `magnitudeBelow`.
@inline(__always) private func select8(_ m: SIMD8<Int32>, _ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
    let ai = unsafeBitCast(a, to: SIMD8<Int32>.self), bi = unsafeBitCast(b, to: SIMD8<Int32>.self)
    return unsafeBitCast((ai & m) | (bi & ~m), to: SIMD8<Float>.self)
}

/// Clamps x to [-c, c] keeping its sign (NaN becomes ±c).
@inline(__always) private func clampMagnitude8(_ x: SIMD8<Float>, _ c: Float) -> SIMD8<Float> {
    let sign = unsafeBitCast(x, to: SIMD8<Int32>.self) & SIMD8(repeating: Int32(bitPattern: 0x8000_0000))
    let cs = unsafeBitCast(SIMD8<Int32>(repeating: Int32(bitPattern: c.bitPattern)) | sign, to: SIMD8<Float>.self)
    return select8(magnitudeBelow(x, c), x, cs)
}

/// exp(x) for x in [-87.3, 87.3] (inputs are clamped there): Cephes polynomial, ~1 ulp.
@inline(__always) func fastExp(_ x0: SIMD8<Float>) -> SIMD8<Float> {
    let x1 = clampMagnitude8(x0, 87.3)
    // n = round(x / ln 2) through the 1.5 * 2^23 trick (round to nearest, no SSE4 needed).
    let magic = SIMD8<Float>(repeating: 12582912.0)
    let t = x1 * SIMD8(repeating: 1.44269504088896341) + magic
    let fx = t - magic
    var x = x1 - fx * SIMD8(repeating: 0.693359375)
    x = x - fx * SIMD8(repeating: -2.12194440e-4)
    var y = SIMD8<Float>(repeating: 1.9875691500e-4)
    y = y * x + SIMD8(repeating: 1.3981999507e-3)
    y = y * x + SIMD8(repeating: 8.3334519073e-3)
    y = y * x + SIMD8(repeating: 4.1665795894e-2)
    y = y * x + SIMD8(repeating: 1.6666665459e-1)
    y = y * x + SIMD8(repeating: 5.0000001201e-1)
    y = y * (x * x) + x + SIMD8(repeating: 1)
    let bits = unsafeBitCast(t, to: SIMD8<UInt32>.self)
    let scale = unsafeBitCast((bits &+ 127) &<< 23, to: SIMD8<Float>.self)
    return y * scale
}

@inline(__always) func fastSigmoid(_ x: SIMD8<Float>) -> SIMD8<Float> {
    SIMD8<Float>(repeating: 1) / (SIMD8<Float>(repeating: 1) + fastExp(-x))
}

/// tanh by a 13/6 rational approximation on [-7.9, 7.9] (Eigen's float tanh; saturates beyond).
@inline(__always) func fastTanh(_ x0: SIMD8<Float>) -> SIMD8<Float> {
    let x = clampMagnitude8(x0, 7.90531110763549805)
    let x2 = x * x
    var p = x2 * SIMD8(repeating: -2.76076847742355e-16) + SIMD8(repeating: 2.00018790482477e-13)
    p = p * x2 + SIMD8(repeating: -8.60467152213735e-11)
    p = p * x2 + SIMD8(repeating: 5.12229709037114e-08)
    p = p * x2 + SIMD8(repeating: 1.48572235717979e-05)
    p = p * x2 + SIMD8(repeating: 6.37261928875436e-04)
    p = p * x2 + SIMD8(repeating: 4.89352455891786e-03)
    p = p * x
    var q = x2 * SIMD8(repeating: 1.19825839466702e-06) + SIMD8(repeating: 1.18534705686654e-04)
    q = q * x2 + SIMD8(repeating: 2.26843463243900e-03)
    q = q * x2 + SIMD8(repeating: 4.89352518554385e-03)
    let r = p / q
    // Tiny |x|: tanh(x) = x to float precision.
    return select8(magnitudeBelow(x0, 0.0004), x0, r)
}

@inline(__always) private func clipInPlace(_ p: UnsafeMutablePointer<Float>, _ n: Int, _ clip: Float?) {
    guard let c = clip else { return }
    for i in 0..<n { p[i] = min(max(p[i], -c), c) }
}

/// out[rows, n] (leading dimension ldOut) = bias (broadcast, may be nil) + a[rows, k] · bT[n, k]^T.
private func projectRows(_ a: UnsafePointer<Float>, rows: Int, k: Int, bT: UnsafePointer<Float>, n: Int,
                         bias: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>, ldOut: Int) {
    if rows == 0 || n == 0 { return }
    if let bias = bias {
        for r in 0..<rows { (out + r * ldOut).update(from: bias, count: n) }
    } else {
        for r in 0..<rows { (out + r * ldOut).update(repeating: 0, count: n) }
    }
    if k == 0 { return }
    if rows == 1 {
        // One row (a single step of batch 1, as streaming models run): GEMV reads the weights once,
        // where GEMM would first pack all of them.
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(k), 1, bT, Int32(k), a, 1, 1, out, 1)
        return
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(n), Int32(k),
                1, a, Int32(k), bT, Int32(k), 1, out, Int32(ldOut))
}

/// out[batch, n] (ld ldOut) += h[batch, k] · rT[n, k]^T, using GEMV for a single row.
@inline(__always)
private func recurrentAccumulate(_ h: UnsafePointer<Float>, batch: Int, k: Int, rT: UnsafePointer<Float>, n: Int,
                                 out: UnsafeMutablePointer<Float>, ldOut: Int, beta: Float = 1) {
    if batch == 0 || n == 0 { return }
    if k == 0 {
        if beta == 0 { for b in 0..<batch { (out + b * ldOut).update(repeating: 0, count: n) } }
        return
    }
    if batch == 1 {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(k), 1, rT, Int32(k), h, 1, beta, out, 1)
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(batch), Int32(n), Int32(k),
                    1, h, Int32(k), rT, Int32(k), beta, out, Int32(ldOut))
    }
}

/// The time index processed at step s for a batch entry of length len.
@inline(__always) private func timeIndex(_ s: Int, _ len: Int, _ reverse: Bool) -> Int { reverse ? len - 1 - s : s }

struct RecurrentShape {
    var seq: Int
    var batch: Int
    var input: Int
    var hidden: Int
}

/// One direction of a simple RNN: H = f(X·Wᵀ + H·Rᵀ + Wb + Rb).
func rnnDirectionF32(_ d: RecurrentShape, x: UnsafePointer<Float>, w: UnsafePointer<Float>, r: UnsafePointer<Float>,
                     bias: UnsafePointer<Float>?, h0: UnsafePointer<Float>?, lens: [Int], reverse: Bool,
                     clip: Float?, f: RNNActivation,
                     y: UnsafeMutablePointer<Float>?, yTimeStride: Int, hOut: UnsafeMutablePointer<Float>) {
    let H = d.hidden, B = d.batch
    let biasSum = combinedBias(bias, gates: 1, hidden: H, recurrentGates: 1)
    defer { biasSum?.deallocate() }
    let xp = UnsafeMutablePointer<Float>.allocate(capacity: max(d.seq * B * H, 1))
    defer { xp.deallocate() }
    projectRows(x, rows: d.seq * B, k: d.input, bT: w, n: H, bias: biasSum, out: xp, ldOut: H)

    let hPrev = UnsafeMutablePointer<Float>.allocate(capacity: max(B * H, 1))
    defer { hPrev.deallocate() }
    if let h0 = h0 { hPrev.update(from: h0, count: B * H) } else { hPrev.update(repeating: 0, count: B * H) }
    let gates = UnsafeMutablePointer<Float>.allocate(capacity: max(B * H, 1))
    defer { gates.deallocate() }
    let steps = lens.max() ?? 0
    for s in 0..<steps {
        for b in 0..<B {
            let g = gates + b * H
            if s < lens[b] { g.update(from: xp + (timeIndex(s, lens[b], reverse) * B + b) * H, count: H) }
            else { g.update(repeating: 0, count: H) }
        }
        recurrentAccumulate(hPrev, batch: B, k: H, rT: r, n: H, out: gates, ldOut: H)
        for b in 0..<B where s < lens[b] {
            let g = gates + b * H
            clipInPlace(g, H, clip)
            f.apply(g, H)
            (hPrev + b * H).update(from: g, count: H)
            if let y = y { (y + timeIndex(s, lens[b], reverse) * yTimeStride + b * H).update(from: g, count: H) }
        }
    }
    hOut.update(from: hPrev, count: B * H)
}

/// Sum of input and recurrent biases for the first `recurrentGates` gates (the rest take only Wb).
/// bias layout: [Wb (gates*H), Rb (gates*H)]. nil when there is no bias.
private func combinedBias(_ bias: UnsafePointer<Float>?, gates: Int, hidden H: Int, recurrentGates: Int)
    -> UnsafeMutablePointer<Float>? {
    guard let bias = bias else { return nil }
    let n = gates * H
    let out = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
    for i in 0..<n { out[i] = bias[i] + (i < recurrentGates * H ? bias[n + i] : 0) }
    return out
}

/// One direction of a GRU (gates z, r, h).
func gruDirectionF32(_ d: RecurrentShape, x: UnsafePointer<Float>, w: UnsafePointer<Float>, r: UnsafePointer<Float>,
                     bias: UnsafePointer<Float>?, h0: UnsafePointer<Float>?, lens: [Int], reverse: Bool,
                     clip: Float?, linearBeforeReset: Bool, f: RNNActivation, g: RNNActivation,
                     y: UnsafeMutablePointer<Float>?, yTimeStride: Int, hOut: UnsafeMutablePointer<Float>) {
    let H = d.hidden, B = d.batch, G = 3 * H
    // With linear_before_reset the recurrent h bias goes inside the reset product; otherwise it is additive.
    let biasSum = combinedBias(bias, gates: 3, hidden: H, recurrentGates: linearBeforeReset ? 2 : 3)
    defer { biasSum?.deallocate() }
    let xp = UnsafeMutablePointer<Float>.allocate(capacity: max(d.seq * B * G, 1))
    defer { xp.deallocate() }
    projectRows(x, rows: d.seq * B, k: d.input, bT: w, n: G, bias: biasSum, out: xp, ldOut: G)

    let hPrev = UnsafeMutablePointer<Float>.allocate(capacity: max(B * H, 1))
    defer { hPrev.deallocate() }
    if let h0 = h0 { hPrev.update(from: h0, count: B * H) } else { hPrev.update(repeating: 0, count: B * H) }
    let gates = UnsafeMutablePointer<Float>.allocate(capacity: max(B * G, 1))
    defer { gates.deallocate() }
    let aux = UnsafeMutablePointer<Float>.allocate(capacity: max(B * G, 1))   // r⊙H, or H·Rᵀ
    defer { aux.deallocate() }
    let rbh: UnsafePointer<Float>? = (linearBeforeReset && bias != nil) ? bias! + 5 * H : nil
    let steps = lens.max() ?? 0
    for s in 0..<steps {
        for b in 0..<B {
            let gp = gates + b * G
            if s < lens[b] { gp.update(from: xp + (timeIndex(s, lens[b], reverse) * B + b) * G, count: G) }
            else { gp.update(repeating: 0, count: G) }
        }
        if linearBeforeReset {
            recurrentAccumulate(hPrev, batch: B, k: H, rT: r, n: G, out: aux, ldOut: G, beta: 0)
            for b in 0..<B where s < lens[b] {
                let gp = gates + b * G, ap = aux + b * G
                for j in 0..<(2 * H) { gp[j] += ap[j] }
                clipInPlace(gp, 2 * H, clip)
                f.apply(gp, 2 * H)
                let rr = gp + H, hh = gp + 2 * H, ah = ap + 2 * H
                if let rbh = rbh { for j in 0..<H { hh[j] += rr[j] * (ah[j] + rbh[j]) } }
                else { for j in 0..<H { hh[j] += rr[j] * ah[j] } }
            }
        } else {
            // z and r: gates[:, 0..<2H] += H·R[0..<2H]ᵀ
            if B == 1 {
                recurrentAccumulate(hPrev, batch: 1, k: H, rT: r, n: 2 * H, out: gates, ldOut: G)
            } else if H > 0 {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(B), Int32(2 * H), Int32(H),
                            1, hPrev, Int32(H), r, Int32(H), 1, gates, Int32(G))
            }
            for b in 0..<B {
                let gp = gates + b * G
                clipInPlace(gp, 2 * H, clip)
                f.apply(gp, 2 * H)
                let rr = gp + H, hp = hPrev + b * H, ap = aux + b * H
                for j in 0..<H { ap[j] = rr[j] * hp[j] }
            }
            // h: gates[:, 2H..<3H] += (r⊙H)·Rhᵀ
            if B == 1 {
                recurrentAccumulate(aux, batch: 1, k: H, rT: r + 2 * H * H, n: H, out: gates + 2 * H, ldOut: G)
            } else if H > 0 {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(B), Int32(H), Int32(H),
                            1, aux, Int32(H), r + 2 * H * H, Int32(H), 1, gates + 2 * H, Int32(G))
            }
        }
        for b in 0..<B where s < lens[b] {
            let gp = gates + b * G
            let z = gp, hh = gp + 2 * H
            clipInPlace(hh, H, clip)
            g.apply(hh, H)
            let hp = hPrev + b * H
            for j in 0..<H { hp[j] = (1 - z[j]) * hh[j] + z[j] * hp[j] }
            if let y = y { (y + timeIndex(s, lens[b], reverse) * yTimeStride + b * H).update(from: hp, count: H) }
        }
    }
    hOut.update(from: hPrev, count: B * H)
}

/// One direction of an LSTM (gates i, o, f, c; peepholes i, o, f).
func lstmDirectionF32(_ d: RecurrentShape, x: UnsafePointer<Float>, w: UnsafePointer<Float>, r: UnsafePointer<Float>,
                      bias: UnsafePointer<Float>?, peepholes: UnsafePointer<Float>?,
                      h0: UnsafePointer<Float>?, c0: UnsafePointer<Float>?, lens: [Int], reverse: Bool,
                      clip: Float?, inputForget: Bool, f: RNNActivation, g: RNNActivation, h: RNNActivation,
                      y: UnsafeMutablePointer<Float>?, yTimeStride: Int,
                      hOut: UnsafeMutablePointer<Float>, cOut: UnsafeMutablePointer<Float>) {
    let H = d.hidden, B = d.batch, G = 4 * H
    let biasSum = combinedBias(bias, gates: 4, hidden: H, recurrentGates: 4)
    defer { biasSum?.deallocate() }
    let xp = UnsafeMutablePointer<Float>.allocate(capacity: max(d.seq * B * G, 1))
    defer { xp.deallocate() }
    projectRows(x, rows: d.seq * B, k: d.input, bT: w, n: G, bias: biasSum, out: xp, ldOut: G)

    let hPrev = UnsafeMutablePointer<Float>.allocate(capacity: max(B * H, 1))
    defer { hPrev.deallocate() }
    let cPrev = UnsafeMutablePointer<Float>.allocate(capacity: max(B * H, 1))
    defer { cPrev.deallocate() }
    if let h0 = h0 { hPrev.update(from: h0, count: B * H) } else { hPrev.update(repeating: 0, count: B * H) }
    if let c0 = c0 { cPrev.update(from: c0, count: B * H) } else { cPrev.update(repeating: 0, count: B * H) }
    let gates = UnsafeMutablePointer<Float>.allocate(capacity: max(B * G, 1))
    defer { gates.deallocate() }
    let tmp = UnsafeMutablePointer<Float>.allocate(capacity: max(H, 1))
    defer { tmp.deallocate() }
    let steps = lens.max() ?? 0
    for s in 0..<steps {
        for b in 0..<B {
            let gp = gates + b * G
            if s < lens[b] { gp.update(from: xp + (timeIndex(s, lens[b], reverse) * B + b) * G, count: G) }
            else { gp.update(repeating: 0, count: G) }
        }
        recurrentAccumulate(hPrev, batch: B, k: H, rT: r, n: G, out: gates, ldOut: G)
        for b in 0..<B where s < lens[b] {
            let gi = gates + b * G, go = gi + H, gf = gi + 2 * H, gc = gi + 3 * H
            let cp = cPrev + b * H, hp = hPrev + b * H
            if let p = peepholes {
                let pi = p, pf = p + 2 * H
                for j in 0..<H { gi[j] += pi[j] * cp[j] }
                if !inputForget { for j in 0..<H { gf[j] += pf[j] * cp[j] } }
            }
            clipInPlace(gi, H, clip)
            f.apply(gi, H)
            if inputForget {
                for j in 0..<H { gf[j] = 1 - gi[j] }
            } else {
                clipInPlace(gf, H, clip)
                f.apply(gf, H)
            }
            clipInPlace(gc, H, clip)
            g.apply(gc, H)
            for j in 0..<H { cp[j] = gf[j] * cp[j] + gi[j] * gc[j] }
            if let p = peepholes {
                let po = p + H
                for j in 0..<H { go[j] += po[j] * cp[j] }
            }
            clipInPlace(go, H, clip)
            f.apply(go, H)
            tmp.update(from: cp, count: H)
            h.apply(tmp, H)
            for j in 0..<H { hp[j] = go[j] * tmp[j] }
            if let y = y { (y + timeIndex(s, lens[b], reverse) * yTimeStride + b * H).update(from: hp, count: H) }
        }
    }
    hOut.update(from: hPrev, count: B * H)
    cOut.update(from: cPrev, count: B * H)
}
