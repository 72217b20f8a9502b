import CKernels
import XCTest
@testable import SwiftONNX

/// The natural-orientation integer product (`so_i8_rows_gemm`: u8 rows read in place x packed s8
/// columns, MatMulInteger with a constant B): the VNNI kernel against the scalar reference bit for
/// bit, and both against a plain Int64 sum, on awkward sizes (k not a multiple of 4, one row, row
/// strips that do not fill 8 rows, columns that do not fill a 32-column panel), zero points 0, 128
/// and 255 for the activations and per-column ones for the weights, saturating bytes, and the
/// three outputs (int32, float times one scale, float times a scale per column).
final class Int8RowsGemmTests: XCTestCase {
    private let sizes: [(m: Int, n: Int, k: Int)] = [(1, 1, 1), (7, 5, 3), (8, 32, 4), (9, 33, 257), (17, 64, 257),
                                                     (3, 214, 512), (20, 100, 13), (64, 31, 1000), (16, 48, 2)]

    private func bytes(_ n: Int, seed: UInt64, extreme: Bool) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        return rng.gemmBytes(n, extreme: extreme)
    }

    /// sum (a - azp) * (b - bzp[j]) in Int64 (a: m x k, b: k x n signed).
    private func expected(_ a: [UInt8], _ b: [Int8], m: Int, n: Int, k: Int, azp: Int32, bzp: [Int32]?) -> [Int64] {
        var c = [Int64](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s: Int64 = 0
                for kk in 0..<k { s += (Int64(a[i * k + kk]) - Int64(azp)) * (Int64(b[kk * n + j]) - Int64(bzp?[j] ?? 0)) }
                c[i * n + j] = s
            }
        }
        return c
    }

    private enum Output { case int32, scale, perColumn }

    /// Rows [i0, i1) of the product at ISA level `isa`; the rest of the output keeps a marker.
    private func run(isa: Int32, _ a: [UInt8], _ b: [Int8], m: Int, n: Int, k: Int, azp: Int32, bzp: [Int32]?,
                     _ output: Output, scales: [Float], rows: Range<Int>) -> [UInt32] {
        var packed = [Int8](repeating: 0, count: so_i8_rows_packed_bytes(k, n))
        var colsum = [Int32](repeating: 0, count: n)
        so_i8_rows_pack(k, n, b, n, &packed, &colsum)
        let corr = (0..<n).map { j in (0 &- azp) &* colsum[j] &+ Int32(k) &* azp &* (bzp?[j] ?? 0) }
        var y = [UInt32](repeating: 0xDEAD_BEEF, count: m * n)
        corr.withUnsafeBufferPointer { cp in
            scales.withUnsafeBufferPointer { sp in
                func go(_ zp: UnsafePointer<Int32>?) {
                    y.withUnsafeMutableBytes { yp in
                        var o = so_i8_rows_out(corr: cp.baseAddress, bzp: zp, scale: output == .int32 ? nil : sp.baseAddress,
                                               per_column: output == .perColumn ? 1 : 0, y: yp.baseAddress, ldy: n)
                        so_i8_rows_gemm(isa, rows.lowerBound, rows.upperBound, n, k, a, k, packed, &o)
                    }
                }
                if let bzp { bzp.withUnsafeBufferPointer { go($0.baseAddress) } } else { go(nil) }
            }
        }
        return y
    }

    private func check(isa: Int32) {
        for (si, s) in sizes.enumerated() {
            let (m, n, k) = s
            for extreme in [false, true] {
                let a = bytes(m * k, seed: UInt64(si * 11 + 1), extreme: extreme)
                let b = bytes(k * n, seed: UInt64(si * 11 + 2), extreme: extreme).map { Int8(bitPattern: $0 ^ (extreme ? 0x80 : 0)) }
                let scales = (0..<n).map { Float(0.001) * Float($0 % 7 + 1) + 1e-5 }
                for azp: Int32 in [0, 128, 255] {
                    for bzp in [nil, (0..<n).map { Int32($0 % 5) - 2 }] {
                        let want = expected(a, b, m: m, n: n, k: k, azp: azp, bzp: bzp)
                        let ranges = m > 2 ? [0..<m, 1..<(m - 1)] : [0..<m]
                        for rows in ranges {
                            for output in [Output.int32, .scale, .perColumn] {
                                let label = "isa \(isa) m \(m) n \(n) k \(k) extreme \(extreme) azp \(azp) bzp \(bzp != nil) \(output) rows \(rows)"
                                let got = run(isa: isa, a, b, m: m, n: n, k: k, azp: azp, bzp: bzp, output, scales: scales, rows: rows)
                                var bad = 0
                                for i in 0..<m {
                                    for j in 0..<n {
                                        let v = got[i * n + j]
                                        guard rows.contains(i) else { if v != 0xDEAD_BEEF { bad += 1 }; continue }
                                        let w = want[i * n + j]
                                        switch output {
                                        case .int32: if Int64(Int32(bitPattern: v)) != w { bad += 1 }
                                        case .scale, .perColumn:
                                            let sc = scales[output == .perColumn ? j : 0]
                                            if Float(bitPattern: v) != Float(Int32(w)) * sc { bad += 1 }
                                        }
                                    }
                                }
                                XCTAssertEqual(bad, 0, label)
                            }
                        }
                    }
                }
            }
        }
    }

    func testReferenceMatchesTheIntegerSum() {
        check(isa: Int32(SO_ISA_SCALAR))
    }

    func testFastKernelMatchesTheIntegerSum() throws {
        let fast = Int32(SO_ISA_AVX512)
        if so_i8_rows_fast(fast) == 0 { throw XCTSkip("no AVX-512 VNNI on this CPU: MatMulInteger runs on the transposed integer GEMM") }
        check(isa: fast)
    }

    /// The driver (`int8MatMulRows`): zero-point corrections, row strips split over 2 threads, float
    /// output per column; at the scalar level too, so that it runs on every machine.
    func testDriverMatchesThePlainProduct() {
        let (m, n, k) = (301, 70, 259)
        let a = bytes(m * k, seed: 5, extreme: false)
        let b = bytes(k * n, seed: 6, extreme: false).map { Int8(bitPattern: $0) }
        let bzp = (0..<n).map { Int32($0 % 3) - 1 }
        let scales = (0..<n).map { Float($0 + 1) * 1e-4 }
        let want = expected(a, b, m: m, n: n, k: k, azp: 131, bzp: bzp)
        let w = Int8RowsWeights(k: k, n: n, weights: b, zeroPoints: bzp)
        var levels = [Int32(SO_ISA_SCALAR)]
        if so_i8_rows_fast(Int32(SO_ISA_AVX512)) != 0 { levels.append(Int32(SO_ISA_AVX512)) }
        for isa in levels {
            for threads in [1, 2] {
                var y = [Float](repeating: .nan, count: m * n)
                a.withUnsafeBufferPointer { ap in
                    scales.withUnsafeBufferPointer { sp in
                        y.withUnsafeMutableBytes { yp in
                            int8MatMulRows(x: ap.baseAddress!, rows: m, ldx: k, xzp: 131, w, scale: sp.baseAddress, perColumn: true,
                                           y: yp.baseAddress!, threads: threads, isa: isa)
                        }
                    }
                }
                let bad = (0..<(m * n)).filter { y[$0] != Float(Int32(want[$0])) * scales[$0 % n] }.count
                XCTAssertEqual(bad, 0, "isa \(isa) threads \(threads)")
            }
        }
    }

    /// The convolution on position rows (`int8ConvRows2D`, `so_i8_conv_rows`) against a plain integer
    /// convolution requantized by the scalar reference, byte for byte, at the scalar level and (where
    /// the CPU has it) the VNNI one: strided (phases, negative phase offsets without padding),
    /// dilated, 1 x 1 and 7 x 7 kernels, channel counts off multiples of 4 and of 32, signed and
    /// unsigned activations and outputs, zero points 0, 128 and 255, saturating values, 1 and 2 threads.
    func testConvolutionOnPositionRowsMatchesAPlainConvolution() {
        struct Case { var c, h, w, m, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr: Int }
        let cases = [
            Case(c: 32, h: 14, w: 14, m: 40, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1),
            Case(c: 13, h: 7, w: 7, m: 33, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1),
            Case(c: 24, h: 14, w: 13, m: 70, kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1),
            Case(c: 9, h: 11, w: 12, m: 5, kh: 3, kw: 2, sh: 2, sw: 2, dh: 1, dw: 1, pt: 0, pl: 0, pb: 0, pr: 0),
            Case(c: 6, h: 17, w: 15, m: 17, kh: 3, kw: 3, sh: 3, sw: 2, dh: 2, dw: 2, pt: 2, pl: 1, pb: 0, pr: 2),
            Case(c: 40, h: 14, w: 14, m: 64, kh: 1, kw: 1, sh: 2, sw: 2, dh: 1, dw: 1, pt: 0, pl: 0, pb: 0, pr: 0),
            Case(c: 8, h: 9, w: 10, m: 31, kh: 7, kw: 7, sh: 1, sw: 1, dh: 1, dw: 1, pt: 3, pl: 3, pb: 3, pr: 3),
            Case(c: 16, h: 1, w: 1, m: 8, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1, pt: 0, pl: 0, pb: 0, pr: 0),
        ]
        var rng = SplitMix64(seed: 21)
        var levels = [Int32(SO_ISA_SCALAR)]
        if so_i8_rows_fast(Int32(SO_ISA_AVX512)) != 0 { levels.append(Int32(SO_ISA_AVX512)) }
        for (ci, k) in cases.enumerated() {
            let oh = (k.h + k.pt + k.pb - (k.kh - 1) * k.dh - 1) / k.sh + 1, ow = (k.w + k.pl + k.pr - (k.kw - 1) * k.dw - 1) / k.sw + 1
            let geo = Int8ConvGeometry(c: k.c, h: k.h, w: k.w, m: k.m, kh: k.kh, kw: k.kw, sh: k.sh, sw: k.sw, dh: k.dh, dw: k.dw,
                                       padTop: k.pt, padLeft: k.pl, oh: oh, ow: ow)
            let extreme = ci % 3 == 2, signedIn = ci % 2 == 1, signedOut = ci % 3 == 0
            let x = rng.kernelBytes(k.c * k.h * k.w, extreme: extreme)
            let w = rng.kernelWeights(k.m * k.c * k.kh * k.kw, extreme: extreme)
            let zp: Int32 = signedIn ? [-128, 0, 127][ci % 3] : [0, 128, 255][ci % 3]
            let sums = naiveIntegerConv(geo, depthwise: false, x, signed: signedIn, zp: zp, w.map { Int64($0) })
            let bias = (0..<k.m).map { _ in Int32(truncatingIfNeeded: rng.next() % 20001) - 10000 }
            let scale = (0..<k.m).map { _ in Float(rng.next() % 1000 + 1) * 1e-5 }
            let p = oh * ow, count = k.m * p
            var want = [UInt8](repeating: 0xA5, count: count + 64)
            bias.withUnsafeBufferPointer { bp in
                scale.withUnsafeBufferPointer { sp in
                    want.withUnsafeMutableBytes { wp in
                        so_i8_requantize(k.m, p, sums, p, bp.baseAddress, sp.baseAddress, signedOut ? -3 : 7, signedOut ? -128 : 0,
                                         signedOut ? 127 : 255, signedOut ? 1 : 0, wp.baseAddress, p, Int32(SO_ISA_SCALAR))
                    }
                }
            }
            let packed = w.withUnsafeBufferPointer { Int8ConvRowsWeights(m: k.m, c: k.c, kh: k.kh, kw: k.kw, weights: $0.baseAddress!) }
            for isa in levels {
                for threads in [1, 2] {
                    let y = x.withUnsafeBufferPointer { xp in
                        requantizedBytes(count: count, ldy: p, bias: bias, scale: scale, signedOut: signedOut) { out in
                            guard case .requantized(let rq, let yp, let ldy) = out else { return }
                            int8ConvRows2D(x: xp.baseAddress!, flip: signedIn, xzp: zp, geo, packed, rq, yp, ldy: ldy, threads: threads, isa: isa)
                        }
                    }
                    XCTAssertEqual(y, want, "case \(ci) \(k) isa \(isa) threads \(threads)")
                }
            }
        }
    }

    /// The byte transpose that turns position rows into planes (16 x 16 blocks in registers, the
    /// edges one by one), on sizes around the block, with leading dimensions wider than the matrix.
    func testByteTransposeMatchesThePlainOne() {
        var rng = SplitMix64(seed: 31)
        for (rows, cols) in [(1, 1), (16, 16), (17, 33), (49, 512), (196, 40), (3, 70), (64, 15)] {
            let lds = cols + 3, ldd = rows + 5
            let src = rng.gemmBytes(rows * lds, extreme: false)
            var got = [UInt8](repeating: 0xA5, count: cols * ldd)
            so_u8_transpose(src, rows, cols, lds, &got, ldd)
            var want = [UInt8](repeating: 0xA5, count: cols * ldd)
            for i in 0..<rows { for j in 0..<cols { want[j * ldd + i] = src[i * lds + j] } }
            XCTAssertEqual(got, want, "\(rows) x \(cols)")
        }
    }
}
