import Foundation

/// A complex fast Fourier transform in Double of one length `count` (n >= 1) and one direction:
/// X[k] = sum_t x[t] e^(-+2 pi i k t / n), minus in the exponent forward, plus inverse, unscaled (the
/// caller applies 1 / n to an inverse). Lines are split real and imaginary arrays.
///
/// Two algorithms, chosen by n's prime factors:
/// - mixed radix (every prime factor at most ``FFTPlan/largestRadix``; powers of two, and lengths
///   such as 400, 1000 or 4095): a self-sorting (Stockham) decimation-in-frequency Cooley-Tukey
///   transform, one pass per factor (radix 4 while it divides, then 2, 3 and the other primes as
///   direct p-point sums), ping-ponging between the line and a scratch buffer, no bit reversal.
///   A length that is itself a small prime is one pass of the direct sum.
/// - Bluestein's chirp z-transform (a prime factor above the radix limit): with c[j] = e^(-+pi i j² / n),
///   X[k] = c[k] sum_t (x[t] c[t]) conj(c[k - t]), a circular convolution computed with
///   power-of-two transforms of length m >= 2n - 1; the transform of the chirp is made once per plan.
///
/// Twiddles are cos and sin of 2 pi k / n computed directly for every k of a table (j² mod 2n for
/// the chirp), so their error does not grow with n; the transform's error grows like log n.
/// A plan owns its scratch buffers: one plan serves one thread at a time.
final class FFTPlan {
    let count: Int
    let inverse: Bool
    /// Prime factors up to this are passes of the mixed-radix transform; a larger one sends the
    /// length to Bluestein.
    static let largestRadix = 64

    private enum Method {
        case mixedRadix(radices: [Int])
        case bluestein(Bluestein)
    }

    private let method: Method
    /// cos and (direction-signed) sin of 2 pi k / n, k < n (mixed radix only).
    private let cosT: UnsafeMutablePointer<Double>
    private let sinT: UnsafeMutablePointer<Double>
    /// The mixed-radix passes' other buffer (n values each), and a radix's inputs (generic passes).
    private let scratchRe: UnsafeMutablePointer<Double>
    private let scratchIm: UnsafeMutablePointer<Double>
    private let radixRe: UnsafeMutablePointer<Double>
    private let radixIm: UnsafeMutablePointer<Double>
    private let tableCount: Int
    private let radixCount: Int

    /// Bluestein's state: the chirp c (n values), the transform of conj(c) laid out circularly and
    /// scaled by 1 / m, the work line (m values) and the power-of-two forward plan of length m.
    private final class Bluestein {
        let m: Int
        let plan: FFTPlan
        let chirpRe: UnsafeMutablePointer<Double>, chirpIm: UnsafeMutablePointer<Double>
        let kernelRe: UnsafeMutablePointer<Double>, kernelIm: UnsafeMutablePointer<Double>
        let workRe: UnsafeMutablePointer<Double>, workIm: UnsafeMutablePointer<Double>
        let n: Int

        init(n: Int, inverse: Bool) {
            self.n = n
            var m = 1
            while m < 2 * n - 1 { m <<= 1 }
            self.m = m
            plan = FFTPlan(count: m, inverse: false)
            chirpRe = .allocate(capacity: n); chirpIm = .allocate(capacity: n)
            kernelRe = .allocate(capacity: m); kernelIm = .allocate(capacity: m)
            workRe = .allocate(capacity: m); workIm = .allocate(capacity: m)
            let sign: Double = inverse ? 1 : -1
            let twoN = 2 * n
            for j in 0..<n {
                // e^(sign pi i j² / n): j² taken mod 2n (the chirp's period) keeps the angle below 2 pi
                let r = (j % twoN) * (j % twoN) % twoN
                let angle = Double.pi * Double(r) / Double(n)
                chirpRe[j] = cos(angle); chirpIm[j] = sign * sin(angle)
            }
            kernelRe.initialize(repeating: 0, count: m); kernelIm.initialize(repeating: 0, count: m)
            for j in 0..<n {
                kernelRe[j] = chirpRe[j]; kernelIm[j] = -chirpIm[j]
                if j > 0 { kernelRe[m - j] = chirpRe[j]; kernelIm[m - j] = -chirpIm[j] }
            }
            plan.transform(re: kernelRe, im: kernelIm)
            let scale = 1 / Double(m)
            for k in 0..<m { kernelRe[k] *= scale; kernelIm[k] *= scale }
            workRe.initialize(repeating: 0, count: m); workIm.initialize(repeating: 0, count: m)
        }

        deinit {
            for p in [chirpRe, chirpIm, kernelRe, kernelIm, workRe, workIm] { p.deallocate() }
        }

        func transform(re: UnsafeMutablePointer<Double>, im: UnsafeMutablePointer<Double>) {
            for t in 0..<n {
                let cr = chirpRe[t], ci = chirpIm[t]
                workRe[t] = re[t] * cr - im[t] * ci
                workIm[t] = re[t] * ci + im[t] * cr
            }
            for t in n..<m { workRe[t] = 0; workIm[t] = 0 }
            plan.transform(re: workRe, im: workIm)
            // times the kernel's transform, conjugated: the inverse transform is conj(forward(conj(.)))
            for k in 0..<m {
                let ar = workRe[k], ai = workIm[k], br = kernelRe[k], bi = kernelIm[k]
                workRe[k] = ar * br - ai * bi
                workIm[k] = -(ar * bi + ai * br)
            }
            plan.transform(re: workRe, im: workIm)
            for k in 0..<n {
                let ar = workRe[k], ai = -workIm[k], cr = chirpRe[k], ci = chirpIm[k]
                re[k] = ar * cr - ai * ci
                im[k] = ar * ci + ai * cr
            }
        }
    }

    /// A plan for transforms of `count` points (at least 1), forward or inverse.
    init(count n: Int, inverse: Bool) {
        precondition(n >= 1, "FFTPlan: the length must be at least 1 (\(n))")
        count = n
        self.inverse = inverse
        var radices: [Int] = []
        var rest = n
        while rest % 4 == 0 { radices.append(4); rest /= 4 }
        if rest % 2 == 0 { radices.append(2); rest /= 2 }
        var p = 3
        while p * p <= rest {
            while rest % p == 0 { radices.append(p); rest /= p }
            p += 2
        }
        if rest > 1 { radices.append(rest) }
        if let largest = radices.max(), largest > FFTPlan.largestRadix {
            method = .bluestein(Bluestein(n: n, inverse: inverse))
            tableCount = 0
            radixCount = 0
        } else {
            method = .mixedRadix(radices: radices)
            tableCount = n
            radixCount = radices.max() ?? 1
        }
        cosT = .allocate(capacity: tableCount); sinT = .allocate(capacity: tableCount)
        scratchRe = .allocate(capacity: tableCount); scratchIm = .allocate(capacity: tableCount)
        radixRe = .allocate(capacity: radixCount); radixIm = .allocate(capacity: radixCount)
        let sign: Double = inverse ? 1 : -1
        for k in 0..<tableCount {
            let angle = 2 * Double.pi * Double(k) / Double(n)
            cosT[k] = cos(angle); sinT[k] = sign * sin(angle)
        }
        scratchRe.initialize(repeating: 0, count: tableCount); scratchIm.initialize(repeating: 0, count: tableCount)
        radixRe.initialize(repeating: 0, count: radixCount); radixIm.initialize(repeating: 0, count: radixCount)
    }

    deinit {
        for p in [cosT, sinT, scratchRe, scratchIm, radixRe, radixIm] { p.deallocate() }
    }

    /// Whether this length runs Bluestein's algorithm (for tests and diagnostics).
    var usesBluestein: Bool {
        if case .bluestein = method { return true }
        return false
    }

    /// Transforms one line of `count` complex values in place.
    func transform(re: UnsafeMutablePointer<Double>, im: UnsafeMutablePointer<Double>) {
        switch method {
        case .bluestein(let b): b.transform(re: re, im: im)
        case .mixedRadix(let radices): stockham(radices, re, im)
        }
    }

    /// Transforms one line held in arrays of `count` values.
    func transform(re: inout [Double], im: inout [Double]) {
        precondition(re.count == count && im.count == count, "FFTPlan: a line of \(re.count) values for a plan of \(count)")
        re.withUnsafeMutableBufferPointer { r in
            im.withUnsafeMutableBufferPointer { i in transform(re: r.baseAddress!, im: i.baseAddress!) }
        }
    }

    /// The mixed-radix passes. A pass of radix p over sub-transforms of length len = p * m, `s` of them
    /// interleaved (stride s), reads x[q + s (j + r m)] for r < p and writes the p-point sums, the u-th
    /// multiplied by the twiddle W_len^(j u), to y[q + s (p j + u)]: the next pass sees s p interleaved
    /// transforms of length m, and after the last the output is in natural order.
    private func stockham(_ radices: [Int], _ re: UnsafeMutablePointer<Double>, _ im: UnsafeMutablePointer<Double>) {
        let n = count
        var xr = re, xi = im, yr = scratchRe, yi = scratchIm
        var len = n, s = 1
        let cosT = self.cosT, sinT = self.sinT
        let sign: Double = inverse ? 1 : -1
        for p in radices {
            let m = len / p
            let tw = n / len   // W_len^e is table entry e * tw
            switch p {
            case 2:
                for j in 0..<m {
                    let wr = cosT[j * tw], wi = sinT[j * tw]
                    let i0 = s * j, i1 = i0 + s * m, o = 2 * s * j
                    for q in 0..<s {
                        let ar = xr[i0 + q], ai = xi[i0 + q], br = xr[i1 + q], bi = xi[i1 + q]
                        yr[o + q] = ar + br; yi[o + q] = ai + bi
                        let dr = ar - br, di = ai - bi
                        yr[o + s + q] = dr * wr - di * wi; yi[o + s + q] = dr * wi + di * wr
                    }
                }
            case 4:
                for j in 0..<m {
                    let w1r = cosT[j * tw], w1i = sinT[j * tw]
                    let w2r = cosT[2 * j * tw], w2i = sinT[2 * j * tw]
                    let w3r = cosT[3 * j * tw], w3i = sinT[3 * j * tw]
                    let i0 = s * j, step = s * m, o = 4 * s * j
                    for q in 0..<s {
                        let a0r = xr[i0 + q], a0i = xi[i0 + q]
                        let a1r = xr[i0 + step + q], a1i = xi[i0 + step + q]
                        let a2r = xr[i0 + 2 * step + q], a2i = xi[i0 + 2 * step + q]
                        let a3r = xr[i0 + 3 * step + q], a3i = xi[i0 + 3 * step + q]
                        let t0r = a0r + a2r, t0i = a0i + a2i, t1r = a0r - a2r, t1i = a0i - a2i
                        let t2r = a1r + a3r, t2i = a1i + a3i
                        // (a1 - a3) times W_4 = sign i
                        let t3r = -sign * (a1i - a3i), t3i = sign * (a1r - a3r)
                        yr[o + q] = t0r + t2r; yi[o + q] = t0i + t2i
                        let y1r = t1r + t3r, y1i = t1i + t3i
                        let y2r = t0r - t2r, y2i = t0i - t2i
                        let y3r = t1r - t3r, y3i = t1i - t3i
                        yr[o + s + q] = y1r * w1r - y1i * w1i; yi[o + s + q] = y1r * w1i + y1i * w1r
                        yr[o + 2 * s + q] = y2r * w2r - y2i * w2i; yi[o + 2 * s + q] = y2r * w2i + y2i * w2r
                        yr[o + 3 * s + q] = y3r * w3r - y3i * w3i; yi[o + 3 * s + q] = y3r * w3i + y3i * w3r
                    }
                }
            case 3:
                let h = sign * 0.866_025_403_784_438_6   // sign sin(2 pi / 3) = sign sqrt(3) / 2
                for j in 0..<m {
                    let w1r = cosT[j * tw], w1i = sinT[j * tw]
                    let w2r = cosT[2 * j * tw], w2i = sinT[2 * j * tw]
                    let i0 = s * j, step = s * m, o = 3 * s * j
                    for q in 0..<s {
                        let a0r = xr[i0 + q], a0i = xi[i0 + q]
                        let a1r = xr[i0 + step + q], a1i = xi[i0 + step + q]
                        let a2r = xr[i0 + 2 * step + q], a2i = xi[i0 + 2 * step + q]
                        let tr = a1r + a2r, ti = a1i + a2i, dr = a1r - a2r, di = a1i - a2i
                        let cr = a0r - 0.5 * tr, ci = a0i - 0.5 * ti
                        // X1 = c + h i d, X2 = c - h i d
                        let y1r = cr - h * di, y1i = ci + h * dr
                        let y2r = cr + h * di, y2i = ci - h * dr
                        yr[o + q] = a0r + tr; yi[o + q] = a0i + ti
                        yr[o + s + q] = y1r * w1r - y1i * w1i; yi[o + s + q] = y1r * w1i + y1i * w1r
                        yr[o + 2 * s + q] = y2r * w2r - y2i * w2i; yi[o + 2 * s + q] = y2r * w2i + y2i * w2r
                    }
                }
            default:
                // a direct p-point sum; W_p^e is table entry e * (n / p)
                let tp = n / p
                let ar = radixRe, ai = radixIm
                for j in 0..<m {
                    let i0 = s * j, step = s * m, o = p * s * j
                    for q in 0..<s {
                        for r in 0..<p { ar[r] = xr[i0 + r * step + q]; ai[r] = xi[i0 + r * step + q] }
                        for u in 0..<p {
                            var sr = 0.0, si = 0.0, e = 0
                            for r in 0..<p {
                                let cr = cosT[e * tp], ci = sinT[e * tp]
                                sr += ar[r] * cr - ai[r] * ci
                                si += ar[r] * ci + ai[r] * cr
                                e += u
                                if e >= p { e -= p }
                            }
                            let t = (j * u) * tw
                            let wr = cosT[t], wi = sinT[t]
                            yr[o + u * s + q] = sr * wr - si * wi; yi[o + u * s + q] = sr * wi + si * wr
                        }
                    }
                }
            }
            swap(&xr, &yr); swap(&xi, &yi)
            len = m
            s *= p
        }
        if xr != re {
            re.update(from: xr, count: n)
            im.update(from: xi, count: n)
        }
    }
}
