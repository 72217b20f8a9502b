import CKernels
import XCTest
@testable import SwiftONNX

/// Winograd F(2x2, 3x3) and F(4x4, 3x3) against the im2col + packed-GEMM convolution (the
/// family's reference path) on awkward sizes, and their transform kernels bit-identical across
/// every ISA level this CPU runs.
final class WinogradTests: XCTestCase {
    private func geometry(_ ih: Int, _ iw: Int, pads: (Int, Int, Int, Int)) -> ConvGeometry {
        var g = ConvGeometry()
        g.iH = ih; g.iW = iw
        g.kH = 3; g.kW = 3
        g.pH = pads.0; g.pW = pads.1
        g.oH = ih + pads.0 + pads.2 - 2
        g.oW = iw + pads.1 + pads.3 - 2
        return g
    }

    func testMatchesIm2colConvolution() throws {
        var rng = SplitMix64(seed: 11)
        // (batch, C, M, H, W, pads top/left/bottom/right)
        let cases: [(Int, Int, Int, Int, Int, (Int, Int, Int, Int))] = [
            (1, 16, 16, 8, 8, (1, 1, 1, 1)), (1, 17, 19, 7, 9, (1, 1, 1, 1)), (2, 16, 33, 5, 6, (0, 0, 0, 0)),
            (1, 24, 16, 3, 3, (1, 1, 1, 1)), (1, 16, 40, 1, 12, (1, 1, 1, 1)), (1, 31, 17, 13, 2, (2, 1, 0, 2)),
            (1, 64, 48, 29, 31, (1, 1, 1, 1)), (1, 16, 16, 4, 4, (0, 2, 1, 0)),
            // Few tiles and enough work for 2 threads: the threads split the 16 GEMMs, not the tile rows.
            (1, 128, 96, 7, 7, (1, 1, 1, 1)), (2, 96, 64, 6, 9, (1, 1, 1, 1)),
            // Wide rows: a tile row is split into column blocks (in place in the middle, copied with
            // the zero padding at the edges; an odd width leaves the last block one column short).
            (1, 16, 16, 6, 301, (1, 1, 1, 1)), (1, 40, 24, 3, 530, (1, 0, 1, 2)), (2, 64, 64, 4, 259, (0, 0, 0, 0)),
        ]
        for (batch, c, m, h, w, pads) in cases {
            let g = geometry(h, w, pads: pads)
            let x = (0..<(batch * c * h * w)).map { _ in Float(rng.uniform(-1, 1)) }
            let wt = (0..<(m * c * 9)).map { _ in Float(rng.uniform(-1, 1)) }
            let bias = (0..<m).map { _ in Float(rng.uniform(-1, 1)) }
            let z = (0..<(batch * m * g.outPlane)).map { _ in Float(rng.uniform(-1, 1)) }
            let wTensor = try Tensor(shape: [m, c, 3, 3], scalars: wt)
            let packed = try ConvPackedWeights(wTensor, group: 1)
            for variant in [WinogradVariant.f2x2, .f4x4] {
            let wino = try WinogradWeights(wTensor.pointer(Float.self), outChannels: m, inChannels: c, variant: variant)
            for (act, threads) in [(ConvActivation.relu, 1), (.none, 2), (.clip(-0.5, 0.5), 2)] {
                var want = [Float](repeating: 0, count: batch * m * g.outPlane), got = want
                x.withUnsafeBufferPointer { xp in bias.withUnsafeBufferPointer { bp in z.withUnsafeBufferPointer { zp in
                    want.withUnsafeMutableBufferPointer { o in
                        convForwardPacked(x: xp.baseAddress!, weights: packed, bias: bp.baseAddress!, z: zp.baseAddress!,
                                          act: act, out: o.baseAddress!, batch: batch, cin: c, cout: m, group: 1, g, threads: 1)
                    }
                    got.withUnsafeMutableBufferPointer { o in
                        convForwardWinograd(x: xp.baseAddress!, weights: wino, bias: bp.baseAddress!, z: zp.baseAddress!,
                                            act: act, out: o.baseAddress!, batch: batch, g, threads: threads)
                    }
                }}}
                // Each output sums 9c products of magnitude <= 1: allow relative 1e-5 of that bound
                // (F(2x2, 3x3)), 4e-5 (F(4x4, 3x3): its transforms' coefficients, up to 8 in A^T).
                let tol = Float(9 * c + 2) * (variant == .f2x2 ? 1e-5 : 4e-5)
                var worst: Float = 0
                for i in 0..<want.count { worst = max(worst, abs(got[i] - want[i])) }
                for i in 0..<want.count where !(abs(got[i] - want[i]) <= tol) {
                    XCTFail("\(variant) C \(c) M \(m) \(h)x\(w) pads \(pads) act \(act) threads \(threads): element \(i) \(got[i]) vs \(want[i])")
                    break
                }
                if ProcessInfo.processInfo.environment["SWIFTONNX_WINO_REPORT"] != nil {
                    print("winograd \(variant) C \(c) M \(m) \(h)x\(w): max abs diff \(worst) (tol \(tol))")
                }
            }
            }
        }
    }

    /// Any thread count gives the same bits, whether the threads split tile rows (large maps) or the
    /// 16 GEMMs (small maps).
    func testThreadsGiveTheSameBits() throws {
        var rng = SplitMix64(seed: 5)
        for (c, m, h, w) in [(128, 96, 7, 7), (64, 48, 29, 31), (96, 64, 14, 14), (32, 32, 5, 400)] {
            var g = ConvGeometry()
            g.iH = h; g.iW = w; g.kH = 3; g.kW = 3; g.pH = 1; g.pW = 1; g.oH = h; g.oW = w
            let x = (0..<(c * h * w)).map { _ in Float(rng.uniform(-1, 1)) }
            let wt = try Tensor(shape: [m, c, 3, 3], scalars: (0..<(m * c * 9)).map { _ in Float(rng.uniform(-1, 1)) })
            for variant in [WinogradVariant.f2x2, .f4x4] {
            let wino = try WinogradWeights(wt.pointer(Float.self), outChannels: m, inChannels: c, variant: variant)
            var outs: [[Float]] = []
            for threads in [1, 2, 3] {
                var o = [Float](repeating: 0, count: m * h * w)
                x.withUnsafeBufferPointer { xp in o.withUnsafeMutableBufferPointer { op in
                    convForwardWinograd(x: xp.baseAddress!, weights: wino, bias: nil, z: nil, act: .relu,
                                        out: op.baseAddress!, batch: 1, g, threads: threads)
                }}
                outs.append(o)
            }
            for k in 1..<outs.count {
                XCTAssertEqual(zip(outs[0], outs[k]).filter { $0.0.bitPattern != $0.1.bitPattern }.count, 0,
                               "\(variant) C \(c) M \(m) \(h)x\(w) threads \(k + 1)")
            }
            }
        }
    }

    func testPackedWeightTransformMatchesTransformThenPack() throws {
        var rng = SplitMix64(seed: 8)
        for (m, c) in [(16, 16), (17, 5), (3, 33), (40, 24), (7, 400), (13, 171)] {
            let w = (0..<(m * c * 9)).map { _ in rng.uniform(-1, 1) }
            for variant in [WinogradVariant.f2x2, .f4x4] {
            let np = variant.positions
            var u = [Float](repeating: 0, count: np * m * c)
            if variant == .f2x2 { so_f32_wino2x2_weights(m, c, w, &u) } else { so_f32_wino4x4_weights(m, c, w, &u) }
            let wino = try WinogradWeights(w, outChannels: m, inChannels: c, variant: variant)
            let count = so_f32_gemm_packed_a_floats(f32Gemm.pointee.mr, m, c)
            for xi in 0..<np {
                let want = try u.withUnsafeBufferPointer { try F32PackedMatrix($0.baseAddress! + xi * m * c, m: m, k: c, rowStride: c) }
                let same = (0..<count).allSatisfy { wino.u[xi].data[$0].bitPattern == want.data[$0].bitPattern }
                XCTAssertTrue(same, "\(variant) U[\(xi)] for \(m)x\(c) differs from transform-then-pack")
            }
            }
        }
    }

    func testTransformsIdenticalAcrossISALevels() throws {
        for variant in [WinogradVariant.f2x2, .f4x4] {
            try transformsIdenticalAcrossISALevels(variant)
        }
    }

    private func transformsIdenticalAcrossISALevels(_ variant: WinogradVariant) throws {
        var rng = SplitMix64(seed: 5)
        let c = 5, m = 3
        let ts = variant.tile, np = variant.positions
        // sizes that leave partial tiles at the right and bottom edges, 5 tile columns either way
        let (h, w) = variant == .f2x2 ? (9, 11) : (15, 19)
        let g = geometry(h, w, pads: (1, 1, 1, 1))
        let tw = (g.oW + ts - 1) / ts, th = (g.oH + ts - 1) / ts, nt = tw * th
        let x = (0..<(c * h * w)).map { _ in Float(rng.uniform(-2, 2)) }
        let mIn = (0..<(np * m * nt)).map { _ in Float(rng.uniform(-2, 2)) }
        let bias = (0..<m).map { _ in Float(rng.uniform(-1, 1)) }
        var scratch = [Float](repeating: 0, count: variant.scratchFloats(tw))
        let inputSelect = variant == .f2x2 ? so_f32_wino2x2_input_select : so_f32_wino4x4_input_select
        let outputSelect = variant == .f2x2 ? so_f32_wino2x2_output_select : so_f32_wino4x4_output_select
        // V in packed panels of nr tiles (a partial last panel, zero lanes written)
        let nr = 8
        // the whole map as one block, and column blocks: the left edge, the middle, the right edge
        for (tx0, tx1) in [(0, tw), (0, 2), (2, 4), (3, tw)] {
            let bt = th * (tx1 - tx0), btp = (bt + nr - 1) / nr * nr
            func run(_ level: Int32) -> ([Float], [Float]) {
                var v = [Float](repeating: .nan, count: np * c * btp)
                var out = [Float](repeating: .nan, count: m * g.outPlane)
                inputSelect(level)!(x, c, h, w, 1, 1, 0, th, tx0, tx1, nr, &v, &scratch)
                outputSelect(level)!(mIn, m, 0, th, tx0, tx1, g.oH, g.oW, bias, nil, Int32(SO_ACT_RELU), 0, 0,
                                     &out, &scratch)
                return (v, out)
            }
            let reference = run(Int32(SO_ISA_SCALAR))
            XCTAssertFalse(reference.0.contains { $0.isNaN }, "\(variant) input transform left values unwritten, tiles \(tx0)..<\(tx1)")
            // the block writes its own output columns only
            let written = (0..<(m * g.outPlane)).filter { !reference.1[$0].isNaN }.count
            XCTAssertEqual(written, m * g.oH * (min(ts * tx1, g.oW) - ts * tx0), "\(variant) output columns of tiles \(tx0)..<\(tx1)")
            for level in 1...max(1, Int32(so_isa_supported())) where level <= Int32(so_isa_supported()) {
                let r = run(level)
                XCTAssertEqual(r.0.map(\.bitPattern), reference.0.map(\.bitPattern), "\(variant) input transform, ISA \(isaName(level)), tiles \(tx0)..<\(tx1)")
                XCTAssertEqual(r.1.map(\.bitPattern), reference.1.map(\.bitPattern), "\(variant) output transform, ISA \(isaName(level)), tiles \(tx0)..<\(tx1)")
            }
        }
    }
}
