import CKernels
import XCTest
@testable import SwiftONNX

/// The integer GEMM family (u8 activations x s8 weights -> s32) and requantization: every ISA
/// variant this machine runs against a plain integer sum, exactly, on awkward sizes (tails, odd k,
/// one row, one column), with zero points 0, 128 and 255 and per-row weight zero points, on inputs
/// that saturate a 16-bit pair sum (activations 255 against weights -128 / 127), and with k split
/// into blocks (accumulate).
final class Int8GemmTests: XCTestCase {
    private func bytes(_ n: Int, seed: UInt64, extreme: Bool) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        return rng.gemmBytes(n, extreme: extreme)
    }

    /// C[i][j] = sum (a - azp[i]) * (b - bzp), in Int64 so the reference itself cannot overflow.
    private func expected(_ a: [Int8], _ b: [UInt8], m: Int, n: Int, k: Int, azp: [Int32]?, bzp: Int32) -> [Int32] {
        var c = [Int32](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s: Int64 = 0
                for kk in 0..<k {
                    s += (Int64(a[i * k + kk]) - Int64(azp?[i] ?? 0)) * (Int64(b[kk * n + j]) - Int64(bzp))
                }
                c[i * n + j] = Int32(s)
            }
        }
        return c
    }

    /// Runs variant `g` with B packed in k-blocks of `kc` (a multiple of the variant's group), the
    /// zero points given to the packing and to the macro alike (a raw variant applies them there).
    private func run(_ g: UnsafePointer<so_i8_gemm>, _ a: [Int8], _ b: [UInt8], m: Int, n: Int, k: Int,
                     azp: [Int32]?, bzp: Int32, kc: Int) -> [Int32] {
        let v = g.pointee
        var c = [Int32](repeating: Int32.min, count: m * n)
        let pa = UnsafeMutableRawPointer.allocate(byteCount: so_i8_gemm_packed_a_bytes(g, m, k), alignment: 64)
        defer { pa.deallocate() }
        a.withUnsafeBufferPointer { ap in
            if let azp { azp.withUnsafeBufferPointer { v.pack_a(m, k, ap.baseAddress!, k, 1, $0.baseAddress!, pa) } }
            else { v.pack_a(m, k, ap.baseAddress!, k, 1, nil, pa) }
        }
        let kpad = (k + Int(v.kg) - 1) / Int(v.kg) * Int(v.kg)
        let paStride = Int(v.mr) * kpad * Int(v.elem_a)
        var k0 = 0
        while k0 < k {
            let kb = min(kc, k - k0)
            let pb = UnsafeMutableRawPointer.allocate(byteCount: so_i8_gemm_packed_b_bytes(g, kb, n), alignment: 64)
            defer { pb.deallocate() }
            b.withUnsafeBufferPointer { bp in v.pack_b(kb, n, bp.baseAddress! + k0 * n, n, 1, bzp, pb) }
            let kbpad = (kb + Int(v.kg) - 1) / Int(v.kg) * Int(v.kg)
            c.withUnsafeMutableBufferPointer { cp in
                let paBlock = pa + k0 * Int(v.mr) * Int(v.elem_a), pbStride = Int(v.nr) * kbpad * Int(v.elem_b)
                if let azp {
                    azp.withUnsafeBufferPointer {
                        v.macro(m, n, kb, paBlock, paStride, pb, pbStride, $0.baseAddress!, bzp, cp.baseAddress!, n, k0 == 0 ? 0 : 1, nil)
                    }
                } else {
                    v.macro(m, n, kb, paBlock, paStride, pb, pbStride, nil, bzp, cp.baseAddress!, n, k0 == 0 ? 0 : 1, nil)
                }
            }
            k0 += kb
        }
        return c
    }

    func testEveryISAMatchesTheIntegerSum() {
        let sizes: [(Int, Int, Int)] = [(1, 1, 1), (5, 7, 3), (6, 16, 2), (7, 17, 5), (13, 45, 300), (64, 100, 27),
                                        (37, 33, 513), (1, 200, 64), (200, 1, 63), (3, 700, 9), (12, 32, 1152)]
        for level in 0...Int32(so_isa_supported()) {
            let g = so_i8_gemm_select(level)!
            let name = String(cString: g.pointee.name)
            for (si, (m, n, k)) in sizes.enumerated() {
                for extreme in [false, true] {
                    let a = bytes(m * k, seed: UInt64(si * 7 + 1), extreme: extreme).map { Int8(bitPattern: $0 ^ (extreme ? 0x80 : 0)) }
                    let b = bytes(k * n, seed: UInt64(si * 7 + 2), extreme: extreme)
                    let azps: [[Int32]?] = [nil, (0..<m).map { Int32($0 % 5) - 2 }]
                    for azp in azps {
                        for bzp: Int32 in [0, 128, 255] {
                            let want = expected(a, b, m: m, n: n, k: k, azp: azp, bzp: bzp)
                            // k-blocks of any multiple of the group: the smallest, 64, and all of k
                            for kc in [k, 64, Int(g.pointee.kg)] where kc <= k || kc == k {
                                let got = run(g, a, b, m: m, n: n, k: k, azp: azp, bzp: bzp, kc: kc)
                                XCTAssertEqual(got, want, "\(name) m \(m) n \(n) k \(k) kc \(kc) extreme \(extreme) azp \(azp != nil) bzp \(bzp)")
                            }
                        }
                    }
                }
            }
        }
    }

    /// The saturating case itself: activations 255 and weights -128 / 127 in every pair (a 16-bit
    /// pair sum would be 2 * 255 * 127 = 64,770), long k, all variants exact.
    func testPairSumsThatWouldSaturate16Bits() {
        let m = 6, n = 16, k = 1024
        let a = (0..<(m * k)).map { Int8($0 % 2 == 0 ? 127 : ($0 % 3 == 0 ? -128 : 127)) }
        let b = [UInt8](repeating: 255, count: k * n)
        let want = expected(a, b, m: m, n: n, k: k, azp: nil, bzp: 0)
        for level in 0...Int32(so_isa_supported()) {
            let g = so_i8_gemm_select(level)!
            XCTAssertEqual(run(g, a, b, m: m, n: n, k: k, azp: nil, bzp: 0, kc: k), want, String(cString: g.pointee.name))
        }
    }

    /// The macro's own requantization on the last k-block (the driver's path for 8-bit outputs): every
    /// variant's bytes equal the exact integer sums requantized by the reference formula, with k in
    /// one block and in several (the earlier ones accumulated in C), row offsets into bias and scale,
    /// both output types, a fused Relu bound, zero points 0 and 255.
    func testMacroRequantizesTheLastBlock() {
        let sizes: [(Int, Int, Int)] = [(5, 7, 3), (13, 45, 300), (17, 70, 130), (8, 32, 64), (1, 33, 9)]
        for level in 0...Int32(so_isa_supported()) {
            let g = so_i8_gemm_select(level)!, v = g.pointee
            let name = String(cString: v.name)
            for (si, (m, n, k)) in sizes.enumerated() {
                let a = bytes(m * k, seed: UInt64(si + 40), extreme: false).map { Int8(bitPattern: $0) }
                let b = bytes(k * n, seed: UInt64(si + 50), extreme: si == 1)
                let bias = (0..<m).map { Int32($0 * 977 % 2001) - 1000 }
                let scale = (0..<m).map { Float(0.0007) * Float(1 + $0 % 7) }
                for (bzp, signed, lo, hi, yzp) in [(Int32(0), false, Int32(0), Int32(255), Int32(3)), (255, true, -128, 127, -4),
                                                   (128, false, 100, 255, 100)] {
                    let ints = expected(a, b, m: m, n: n, k: k, azp: nil, bzp: bzp)
                    var want = [UInt8](repeating: 0, count: m * n)
                    so_i8_requantize(m, n, ints, n, bias, scale, yzp, lo, hi, signed ? 1 : 0, &want, n, 0)   // the scalar reference
                    for kc in [k, Int(v.kg) * 16] where kc <= k {
                        var got = [UInt8](repeating: 0xAA, count: m * n)
                        let pa = UnsafeMutableRawPointer.allocate(byteCount: so_i8_gemm_packed_a_bytes(g, m, k), alignment: 64)
                        defer { pa.deallocate() }
                        a.withUnsafeBufferPointer { v.pack_a(m, k, $0.baseAddress!, k, 1, nil, pa) }
                        let kpad = (k + Int(v.kg) - 1) / Int(v.kg) * Int(v.kg), paStride = Int(v.mr) * kpad * Int(v.elem_a)
                        var c = [Int32](repeating: Int32.min, count: m * n)
                        var k0 = 0
                        while k0 < k {
                            let kb = min(kc, k - k0), kbpad = (kb + Int(v.kg) - 1) / Int(v.kg) * Int(v.kg)
                            let pb = UnsafeMutableRawPointer.allocate(byteCount: so_i8_gemm_packed_b_bytes(g, kb, n), alignment: 64)
                            defer { pb.deallocate() }
                            b.withUnsafeBufferPointer { v.pack_b(kb, n, $0.baseAddress! + k0 * n, n, 1, bzp, pb) }
                            // rows in two calls (split at a whole panel), the second one's bias, scale and
                            // output offset like the driver's
                            let split = m / 2 / Int(v.mr) * Int(v.mr)
                            for (r0, r1) in [(0, split), (split, m)] where r1 > r0 {
                                bias.withUnsafeBufferPointer { bp in
                                    scale.withUnsafeBufferPointer { sp in
                                        got.withUnsafeMutableBufferPointer { yp in
                                            var rq = so_i8_requant(bias: bp.baseAddress! + r0, scale: sp.baseAddress! + r0, yzp: yzp, lo: lo,
                                                                   hi: hi, is_signed: signed ? 1 : 0, y: yp.baseAddress! + r0 * n, ldy: n)
                                            c.withUnsafeMutableBufferPointer { cp in
                                                let last = k0 + kb == k
                                                withUnsafePointer(to: &rq) { rqp in
                                                    v.macro(r1 - r0, n, kb, pa + (r0 / Int(v.mr)) * paStride + k0 * Int(v.mr) * Int(v.elem_a),
                                                            paStride, pb, Int(v.nr) * kbpad * Int(v.elem_b), nil, bzp,
                                                            cp.baseAddress! + r0 * n, n, k0 == 0 ? 0 : 1, last ? rqp : nil)
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                            k0 += kb
                        }
                        XCTAssertEqual(got, want, "\(name) m \(m) n \(n) k \(k) kc \(kc) bzp \(bzp) signed \(signed)")
                    }
                }
            }
        }
    }

    /// Requantization: every ISA against the formula, on rounding ties, both output types, fused
    /// clamps, huge and NaN products.
    func testRequantizeMatchesTheFormula() {
        let rows = 3, cols = 37
        var c = [Int32](repeating: 0, count: rows * cols)
        for i in 0..<(rows * cols) { c[i] = Int32(i * 37 - 1500) }
        c[5] = 5; c[6] = 7; c[7] = -5; c[8] = Int32.max - 10; c[9] = Int32.min + 10   // ties at scale 0.5; huge
        let bias: [Int32] = [0, 100, -300]
        let scale: [Float] = [0.5, 0.013, .nan]
        func formula(_ acc: Int32, _ b: Int32, _ s: Float, _ zp: Int32, _ lo: Int32, _ hi: Int32) -> Int32 {
            var v = Float(acc &+ b) * s
            if !(v > -1_073_741_824) { v = -1_073_741_824 }
            if v > 1_073_741_824 { v = 1_073_741_824 }
            let q = Int32(v.rounded(.toNearestOrEven)) + zp
            return min(max(q, lo), hi)
        }
        for level in 0...Int32(so_isa_supported()) {
            for (signed, zp, lo, hi) in [(false, Int32(128), Int32(0), Int32(255)), (false, 3, 3, 255), (true, -5, -128, 127), (true, 0, 0, 100)] {
                var y = [UInt8](repeating: 0xAA, count: rows * cols)
                so_i8_requantize(rows, cols, c, cols, bias, scale, zp, lo, hi, signed ? 1 : 0, &y, cols, level)
                for i in 0..<rows {
                    for j in 0..<cols {
                        let want = formula(c[i * cols + j], bias[i], scale[i], zp, lo, hi)
                        let got = signed ? Int32(Int8(bitPattern: y[i * cols + j])) : Int32(y[i * cols + j])
                        XCTAssertEqual(got, want, "isa \(level) signed \(signed) zp \(zp) row \(i) col \(j)")
                    }
                }
            }
        }
    }
}
