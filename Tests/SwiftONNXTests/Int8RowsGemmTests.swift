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
        return (0..<n).map { _ in
            let r = rng.next()
            if extreme { return r % 2 == 0 ? 255 : (r % 3 == 0 ? 0 : 128) }
            return UInt8(truncatingIfNeeded: r >> 11)
        }
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
}
