import CKernels
import XCTest
@testable import SwiftONNX

/// The packed f32 GEMM family: every ISA variant this machine runs against the scalar reference
/// and against a plain fma chain, bit for bit (the family defines each element as the same
/// sequential chain of fused multiply-adds, so there is no tolerance), on awkward sizes, with
/// every epilogue, through the Swift driver's k-, m- and n-blocking.
final class PackedGemmTests: XCTestCase {
    private func values(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in Float(Int(rng.next() % 2001) - 1000) / 997 }
    }

    private func expected(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, bias: [Float]?, columnBias: [Float]? = nil,
                          z: [Float]?, act: ConvActivation) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var acc: Float = 0
                for kk in 0..<k { acc = acc.addingProduct(a[i * k + kk], b[kk * n + j]) }
                if let bias = bias { acc += bias[i] }
                if let columnBias { acc += columnBias[j] }
                if let z = z { acc += z[i * n + j] }
                switch act {
                case .relu: acc = acc < 0 ? 0 : acc
                case .clip(let lo, let hi): acc = acc < lo ? lo : (acc > hi ? hi : acc)
                case .leakyRelu(let s): acc = acc < 0 ? acc * s : acc
                case .hardSigmoid(let a, let b):
                    var t = acc * a
                    t = t + b
                    acc = t < 0 ? 0 : (t > 1 ? 1 : t)
                case .hardSwish:
                    var t = acc * (1 / 6 as Float)
                    t = t + 0.5
                    acc = acc * (t < 0 ? 0 : (t > 1 ? 1 : t))
                default: break
                }
                c[i * n + j] = acc
            }
        }
        return c
    }

    func testEveryISAMatchesTheFMAChainBitForBit() throws {
        let sizes: [(Int, Int, Int)] = [(1, 1, 1), (5, 7, 3), (8, 32, 16), (13, 45, 300), (64, 100, 27),
                                        (37, 33, 513), (6, 16, 1), (9, 17, 257), (300, 40, 20), (3, 700, 9)]
        let acts: [ConvActivation] = [.none, .relu, .clip(-0.5, 0.5), .leakyRelu(0.1), .hardSigmoid(0.2, 0.5), .hardSwish]
        for level in 0...Int32(so_isa_supported()) {
          let gemm = so_f32_gemm_select(level)!
          // B packed per k-block (macro) and B read in place (macro_direct)
          for direct in [false, true] {
            for (m, n, k) in sizes {
                let a = values(m * k, seed: UInt64(m * 31 + k)), b = values(k * n, seed: UInt64(n * 17 + k))
                let bias = values(m, seed: 5), z = values(m * n, seed: 9), columnBias = values(n, seed: 11)
                for (ai, act) in acts.enumerated() {
                    let useZ = ai % 2 == 1
                    let useColumns = ai >= 2   // with and without the row bias and Z
                    let want = expected(a, b, m: m, n: n, k: k, bias: ai == 0 || ai == 4 ? nil : bias,
                                        columnBias: useColumns ? columnBias : nil, z: useZ ? z : nil, act: act)
                    var got = [Float](repeating: .nan, count: m * n)
                    try a.withUnsafeBufferPointer { ap in
                        try b.withUnsafeBufferPointer { bp in
                            try bias.withUnsafeBufferPointer { biasp in
                              try columnBias.withUnsafeBufferPointer { cbp in
                                try z.withUnsafeBufferPointer { zp in
                                    try got.withUnsafeMutableBufferPointer { cp in
                                        let packed = try F32PackedMatrix(ap.baseAddress!, m: m, k: k, rowStride: k, gemm: gemm)
                                        var ep = F32GemmEpilogue()
                                        if ai != 0 && ai != 4 { ep.bias = biasp.baseAddress }
                                        if useColumns { ep.columnBias = cbp.baseAddress }
                                        if useZ { ep.z = zp.baseAddress; ep.ldz = n }
                                        ep.act = act
                                        // small n blocks so the driver's column blocking is exercised too
                                        let scratch = f32PackedGemmScratchFloats(packed, ncMax: 48)
                                        let pb = UnsafeMutablePointer<Float>.allocate(capacity: scratch)
                                        defer { pb.deallocate() }
                                        f32PackedGemmColumns(packed, b: bp.baseAddress!, ldb: n, j0: 0, j1: n,
                                                             c: cp.baseAddress!, ldc: n, epilogue: ep, pb: pb, ncMax: 48,
                                                             direct: direct)
                                    }
                                }
                              }
                            }
                        }
                    }
                    let bad = zip(got, want).filter { $0.0.bitPattern != $0.1.bitPattern }.count
                    XCTAssertEqual(bad, 0, "\(String(cString: gemm.pointee.name)) direct \(direct) m \(m) n \(n) k \(k) act \(act) column bias \(useColumns): \(bad) elements differ")
                }
            }
          }
        }
    }

    /// Dense layers (f32PackedDense): weights packed once into panels, activations read in place by
    /// macro_rowa (whole row tiles from A's rows, a last partial tile copied), through the driver's
    /// k- and row-blocking and the 2-thread column split.
    func testDenseWithUnpackedActivationsMatchesTheFMAChainBitForBit() throws {
        let sizes: [(Int, Int, Int)] = [(1, 1, 1), (5, 7, 3), (6, 16, 384), (7, 33, 385), (13, 45, 800), (32, 96, 64),
                                        (2, 17, 1000), (9, 64, 257), (300, 40, 20), (11, 1, 9), (70, 333, 129)]
        let acts: [ConvActivation] = [.none, .relu, .clip(-0.5, 0.5), .hardSwish]
        for level in 0...Int32(so_isa_supported()) {
            let gemm = so_f32_gemm_select(level)!
            for (m, n, k) in sizes {
                let a = values(m * k, seed: UInt64(m * 13 + k)), b = values(k * n, seed: UInt64(n * 7 + k))
                let z = values(m * n, seed: 21), columnBias = values(n, seed: 23)
                let weights = try b.withUnsafeBufferPointer { try F32PackedPanels($0.baseAddress!, k: k, n: n, gemm: gemm) }
                for (ai, act) in acts.enumerated() {
                    let useZ = ai % 2 == 1, useColumns = ai >= 1
                    let want = expected(a, b, m: m, n: n, k: k, bias: nil, columnBias: useColumns ? columnBias : nil,
                                        z: useZ ? z : nil, act: act)
                    for threads in [1, 2] {
                        var got = [Float](repeating: .nan, count: m * n)
                        a.withUnsafeBufferPointer { ap in
                            columnBias.withUnsafeBufferPointer { cbp in
                                z.withUnsafeBufferPointer { zp in
                                    got.withUnsafeMutableBufferPointer { cp in
                                        var ep = F32GemmEpilogue()
                                        if useColumns { ep.columnBias = cbp.baseAddress }
                                        if useZ { ep.z = zp.baseAddress; ep.ldz = n }
                                        ep.act = act
                                        f32PackedDense(m: m, a: ap.baseAddress!, b: weights, c: cp.baseAddress!,
                                                       epilogue: ep, threads: threads)
                                    }
                                }
                            }
                        }
                        let bad = zip(got, want).filter { $0.0.bitPattern != $0.1.bitPattern }.count
                        XCTAssertEqual(bad, 0, "\(String(cString: gemm.pointee.name)) dense m \(m) n \(n) k \(k) act \(act) threads \(threads): \(bad) elements differ")
                    }
                }
            }
        }
    }

    func testThreadedGemmMatchesSingleThreaded() throws {
        let m = 70, n = 333, k = 129
        let a = values(m * k, seed: 1), b = values(k * n, seed: 2)
        var one = [Float](repeating: 0, count: m * n), two = one
        try a.withUnsafeBufferPointer { ap in
            try b.withUnsafeBufferPointer { bp in
                let packed = try F32PackedMatrix(ap.baseAddress!, m: m, k: k, rowStride: k)
                one.withUnsafeMutableBufferPointer { f32PackedGemm(packed, b: bp.baseAddress!, ldb: n, n: n, c: $0.baseAddress!, ldc: n, threads: 1) }
                two.withUnsafeMutableBufferPointer { f32PackedGemm(packed, b: bp.baseAddress!, ldb: n, n: n, c: $0.baseAddress!, ldc: n, threads: 2) }
            }
        }
        XCTAssertEqual(one, two)
    }

    /// Identical rows of A give identical rows of C wherever they fall in a tile: the property the
    /// all-equal weights of the light ONNX models (SqueezeNet's 1000 classes) depend on.
    func testIdenticalRowsGiveIdenticalOutputs() throws {
        let m = 1000, n = 29, k = 512
        let row = values(k, seed: 3)
        let a = (0..<m).flatMap { _ in row }
        let b = values(k * n, seed: 4).map { $0 * 1e4 }
        var c = [Float](repeating: 0, count: m * n)
        try a.withUnsafeBufferPointer { ap in
            try b.withUnsafeBufferPointer { bp in
                let packed = try F32PackedMatrix(ap.baseAddress!, m: m, k: k, rowStride: k)
                c.withUnsafeMutableBufferPointer { f32PackedGemm(packed, b: bp.baseAddress!, ldb: n, n: n, c: $0.baseAddress!, ldc: n) }
            }
        }
        for i in 1..<m { XCTAssertEqual(Array(c[i * n..<(i + 1) * n]), Array(c[0..<n]), "row \(i)") }
    }
}
