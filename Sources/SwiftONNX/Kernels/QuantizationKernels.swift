import Foundation

// Integer kernels for quantized ops: int32-accumulating GEMM and direct N-d convolution, plus
// float8 / float4 encoding and decoding. Pointers, sizes and parameters only.

/// c[m×n] = a[m×k] · b[k×n] (row-major, wrapping int32 arithmetic).
func i32Gemm(_ a: UnsafePointer<Int32>, _ b: UnsafePointer<Int32>, _ c: UnsafeMutablePointer<Int32>, m: Int, n: Int, k: Int) {
    c.update(repeating: 0, count: m * n)
    for i in 0..<m {
        let crow = c + i * n
        let arow = a + i * k
        for p in 0..<k {
            let av = arow[p]
            if av == 0 { continue }
            let brow = b + p * n
            for j in 0..<n { crow[j] = crow[j] &+ av &* brow[j] }
        }
    }
}

/// Direct convolution of one image, int32 accumulation, over a zero-padded input.
/// - xp: padded input [C, padPlane] (zero points already subtracted; padding is 0).
/// - w: weights [M, C/group, kernelCount] (zero points already subtracted).
/// - y: output [M, outCount], overwritten.
/// - kernelOffsets[kk]: offset in a padded plane of kernel tap kk (dilation applied).
/// - outOffsets[o]: offset in a padded plane of output position o's window origin (stride applied).
func i32ConvDirect(_ xp: UnsafePointer<Int32>, padPlane: Int, _ w: UnsafePointer<Int32>, _ y: UnsafeMutablePointer<Int32>,
                   group: Int, cPerGroup: Int, mPerGroup: Int,
                   kernelOffsets: UnsafeBufferPointer<Int>, outOffsets: UnsafeBufferPointer<Int>) {
    let kc = kernelOffsets.count, oc = outOffsets.count
    guard let ob = outOffsets.baseAddress else { return }
    y.update(repeating: 0, count: group * mPerGroup * oc)
    for g in 0..<group {
        for mm in 0..<mPerGroup {
            let m = g * mPerGroup + mm
            let yrow = y + m * oc
            for c in 0..<cPerGroup {
                let wrow = w + (m * cPerGroup + c) * kc
                let plane = xp + (g * cPerGroup + c) * padPlane
                for kk in 0..<kc {
                    let wv = wrow[kk]
                    if wv == 0 { continue }
                    let base = plane + kernelOffsets[kk]
                    for o in 0..<oc { yrow[o] = yrow[o] &+ wv &* base[ob[o]] }
                }
            }
        }
    }
}

// MARK: float8 / float4

/// Bit layout of a small float format.
struct SmallFloatFormat: Sendable {
    let expBits: Int
    let mantBits: Int
    let bias: Int
    /// "fnuz": no negative zero, the pattern 0x80 is NaN, no infinities.
    let fnuz: Bool
    /// IEEE-like: the all-ones exponent holds inf and NaN (e5m2).
    let ieee: Bool
    let bits: Int

    static let e4m3fn = SmallFloatFormat(expBits: 4, mantBits: 3, bias: 7, fnuz: false, ieee: false, bits: 8)
    static let e4m3fnuz = SmallFloatFormat(expBits: 4, mantBits: 3, bias: 8, fnuz: true, ieee: false, bits: 8)
    static let e5m2 = SmallFloatFormat(expBits: 5, mantBits: 2, bias: 15, fnuz: false, ieee: true, bits: 8)
    static let e5m2fnuz = SmallFloatFormat(expBits: 5, mantBits: 2, bias: 16, fnuz: true, ieee: false, bits: 8)
    static let e2m1 = SmallFloatFormat(expBits: 2, mantBits: 1, bias: 1, fnuz: false, ieee: false, bits: 4)

    var signBit: UInt8 { UInt8(1) << UInt8(bits - 1) }
    var expMax: Int { (1 << expBits) - 1 }

    /// Largest finite value.
    var maxFinite: Float {
        let mantMax: Int
        let e: Int
        if ieee { e = expMax - 1; mantMax = (1 << mantBits) - 1 }
        else if fnuz || bits == 4 { e = expMax; mantMax = (1 << mantBits) - 1 }
        else { e = expMax; mantMax = (1 << mantBits) - 2 }  // e4m3fn: S.1111.111 is NaN
        return Float(sign: .plus, exponent: e - bias, significand: 1 + Float(mantMax) / Float(1 << mantBits))
    }

    var nanCode: UInt8 {
        if fnuz { return 0x80 }
        if ieee { return 0x7F }
        return 0x7F  // e4m3fn
    }

    func decode(_ code: UInt8) -> Float {
        let c = code & UInt8((1 << bits) - 1)
        if fnuz && c == 0x80 { return .nan }
        let neg = (c & signBit) != 0
        let e = Int((c >> UInt8(mantBits)) & UInt8(expMax))
        let m = Int(c & UInt8((1 << mantBits) - 1))
        var v: Float
        if ieee && e == expMax {
            v = m == 0 ? .infinity : .nan
        } else if !ieee && !fnuz && bits == 8 && e == expMax && m == (1 << mantBits) - 1 {
            v = .nan
        } else if e == 0 {
            v = Float(m) / Float(1 << mantBits) * Float(sign: .plus, exponent: 1 - bias, significand: 1)
        } else {
            v = (1 + Float(m) / Float(1 << mantBits)) * Float(sign: .plus, exponent: e - bias, significand: 1)
        }
        return neg ? -v : v
    }

    /// Rounds to nearest even. Out of range: the largest finite value when saturating, else inf
    /// (IEEE-like) or NaN.
    func encode(_ x: Float, saturate: Bool) -> UInt8 {
        if x.isNaN { return bits == 4 ? 0x7 : nanCode }  // float4 has no NaN: reference gives max
        let neg = x.sign == .minus
        let a = abs(x)
        let maxF = maxFinite
        func overflow() -> UInt8 {
            if saturate || bits == 4 { return encodeMagnitude(maxF, neg) }
            if ieee { return (neg ? signBit : 0) | UInt8(expMax << mantBits) }
            return nanCode
        }
        if a.isInfinite { return overflow() }
        let minExp = 1 - bias
        var e = a == 0 ? minExp : Int(a.exponent)
        if e < minExp { e = minExp }
        let quantum = Float(sign: .plus, exponent: e - mantBits, significand: 1)
        let r = (a / quantum).rounded(.toNearestOrEven) * quantum
        if r > maxF { return overflow() }
        return encodeMagnitude(r, neg)
    }

    private func encodeMagnitude(_ r: Float, _ neg: Bool) -> UInt8 {
        let s: UInt8 = neg ? signBit : 0
        if r == 0 { return fnuz ? 0 : s }
        let minExp = 1 - bias
        let e = Int(r.exponent)
        if e < minExp {
            let m = Int((r / Float(sign: .plus, exponent: minExp - mantBits, significand: 1)).rounded())
            return s | UInt8(m)
        }
        let m = Int(((r / Float(sign: .plus, exponent: e, significand: 1)) - 1) * Float(1 << mantBits))
        return s | UInt8((e + bias) << mantBits) | UInt8(m)
    }
}
