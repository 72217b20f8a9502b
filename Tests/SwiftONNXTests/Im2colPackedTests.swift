import CKernels
import XCTest
@testable import SwiftONNX

/// so_f32_im2col_packed at every ISA level this CPU runs, bit for bit against its reference: the
/// row-major im2col followed by the GEMM family's own B packing (so_f32_gemm.pack_b over all of k),
/// on awkward geometries (strides, dilations, asymmetric and large pads, 1-D, 3-D, column ranges
/// that start and end inside a row and inside a panel); and a convolution through it against a
/// plain direct loop.
final class Im2colPackedTests: XCTestCase {
    private struct Case {
        var c: Int, i: (Int, Int, Int), k: (Int, Int, Int), s: (Int, Int, Int), d: (Int, Int, Int), p: (Int, Int, Int)
        var end: (Int, Int, Int) = (0, 0, 0)
    }

    private func geometry(_ t: Case) -> ConvGeometry {
        var g = ConvGeometry()
        (g.iD, g.iH, g.iW) = t.i
        (g.kD, g.kH, g.kW) = t.k
        (g.sD, g.sH, g.sW) = t.s
        (g.dD, g.dH, g.dW) = t.d
        (g.pD, g.pH, g.pW) = t.p
        func out(_ i: Int, _ k: Int, _ s: Int, _ d: Int, _ p0: Int, _ p1: Int) -> Int { (i + p0 + p1 - (k - 1) * d - 1) / s + 1 }
        g.oD = out(g.iD, g.kD, g.sD, g.dD, g.pD, t.end.0)
        g.oH = out(g.iH, g.kH, g.sH, g.dH, g.pH, t.end.1)
        g.oW = out(g.iW, g.kW, g.sW, g.dW, g.pW, t.end.2)
        return g
    }

    private let cases: [Case] = [
        Case(c: 3, i: (1, 17, 19), k: (1, 3, 3), s: (1, 2, 2), d: (1, 1, 1), p: (0, 0, 0)),
        Case(c: 2, i: (1, 9, 11), k: (1, 3, 3), s: (1, 1, 1), d: (1, 1, 1), p: (0, 1, 1), end: (0, 1, 1)),
        Case(c: 5, i: (1, 12, 13), k: (1, 5, 3), s: (1, 3, 2), d: (1, 2, 1), p: (0, 2, 3), end: (0, 1, 0)),
        Case(c: 1, i: (1, 4, 4), k: (1, 3, 3), s: (1, 1, 1), d: (1, 1, 1), p: (0, 4, 4), end: (0, 4, 4)),
        Case(c: 4, i: (1, 1, 37), k: (1, 1, 5), s: (1, 1, 3), d: (1, 1, 2), p: (0, 0, 2), end: (0, 0, 1)),
        Case(c: 2, i: (5, 6, 7), k: (3, 2, 3), s: (2, 1, 2), d: (1, 2, 1), p: (1, 1, 1), end: (1, 0, 1)),
        Case(c: 3, i: (1, 30, 40), k: (1, 7, 7), s: (1, 2, 2), d: (1, 1, 1), p: (0, 3, 3), end: (0, 3, 3)),
        // wide rows: whole panels inside one output row (vector copies at strides 1 and 2, taps at
        // the padded row ends, dilated taps)
        Case(c: 2, i: (1, 5, 70), k: (1, 3, 3), s: (1, 1, 1), d: (1, 1, 1), p: (0, 1, 1), end: (0, 1, 1)),
        Case(c: 2, i: (1, 4, 67), k: (1, 3, 5), s: (1, 1, 2), d: (1, 1, 2), p: (0, 1, 3), end: (0, 0, 2)),
        Case(c: 1, i: (1, 3, 64), k: (1, 1, 1), s: (1, 1, 1), d: (1, 1, 1), p: (0, 0, 0)),
        Case(c: 3, i: (1, 1, 100), k: (1, 1, 7), s: (1, 1, 2), d: (1, 1, 1), p: (0, 0, 3), end: (0, 0, 3)),
        Case(c: 2, i: (2, 3, 90), k: (2, 2, 3), s: (1, 2, 3), d: (1, 1, 2), p: (1, 1, 2), end: (0, 0, 2)),
    ]

    func testMatchesIm2colThenPackAtEveryLevel() {
        var rng = SplitMix64(seed: 21)
        for t in cases {
            let g = geometry(t)
            let x = (0..<(t.c * g.inPlane)).map { _ in rng.uniform(-1, 1) }
            let k = t.c * g.kernelSize
            let total = g.outPlane
            // whole plane, and ranges starting/ending mid-row and mid-panel
            let ranges = [(0, total), (min(5, total), max(min(5, total), total - 3)), (min(1, total), min(total, 23))]
            var geom = g.im2colGeometry
            for level in Int32(0)...Int32(so_isa_supported()) {
                let gemm = so_f32_gemm_select(level)!
                let nr = Int(gemm.pointee.nr)
                for (p0, p1) in ranges where p1 > p0 {
                    let n = p1 - p0
                    var col = [Float](repeating: .nan, count: k * n)
                    x.withUnsafeBufferPointer { xp in
                        col.withUnsafeMutableBufferPointer { im2col(xp.baseAddress!, channels: t.c, g, p0: p0, p1: p1, $0.baseAddress!) }
                    }
                    let count = so_f32_im2col_packed_floats(Int32(nr), k, n)
                    var want = [Float](repeating: .nan, count: count)
                    gemm.pointee.pack_b(k, n, col, n, 1, &want)
                    var got = [Float](repeating: .nan, count: count)
                    so_f32_im2col_packed_select(level)(x, t.c, &geom, p0, p1, Int32(nr), &got)
                    XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern),
                                   "ISA \(isaName(level)) geometry \(t) columns \(p0)..<\(p1)")
                }
            }
        }
    }

    /// A convolution through the packed-im2col path (convForwardPacked) against a direct loop in Double.
    func testConvolutionMatchesDirectLoop() throws {
        var rng = SplitMix64(seed: 4)
        for (t, m, threads) in [(cases[0], 7, 1), (cases[2], 13, 2), (cases[5], 5, 2), (cases[6], 64, 2)] {
            let g = geometry(t)
            let k = t.c * g.kernelSize
            let x = (0..<(t.c * g.inPlane)).map { _ in rng.uniform(-1, 1) }
            let w = (0..<(m * k)).map { _ in rng.uniform(-1, 1) }
            let packed = try ConvPackedWeights(Tensor(validShape: [m, t.c, t.k.0, t.k.1, t.k.2], scalars: w), group: 1)
            var got = [Float](repeating: .nan, count: m * g.outPlane)
            x.withUnsafeBufferPointer { xp in
                got.withUnsafeMutableBufferPointer { o in
                    convForwardPacked(x: xp.baseAddress!, weights: packed, bias: nil, z: nil, act: .none,
                                      out: o.baseAddress!, batch: 1, cin: t.c, cout: m, group: 1, g, threads: threads)
                }
            }
            for oc in 0..<m {
                for od in 0..<g.oD { for oh in 0..<g.oH { for ow in 0..<g.oW {
                    var acc = 0.0
                    for c in 0..<t.c { for kd in 0..<g.kD { for kh in 0..<g.kH { for kw in 0..<g.kW {
                        let id = od * g.sD - g.pD + kd * g.dD, ih = oh * g.sH - g.pH + kh * g.dH, iw = ow * g.sW - g.pW + kw * g.dW
                        guard id >= 0, id < g.iD, ih >= 0, ih < g.iH, iw >= 0, iw < g.iW else { continue }
                        let wi = ((oc * t.c + c) * g.kD + kd) * g.kH * g.kW + kh * g.kW + kw
                        acc += Double(w[wi]) * Double(x[((c * g.iD + id) * g.iH + ih) * g.iW + iw])
                    }}}}
                    let o = got[oc * g.outPlane + (od * g.oH + oh) * g.oW + ow]
                    // k products of magnitude <= 1, float32 accumulation
                    if !(abs(Double(o) - acc) <= Double(k) * 1e-6 + 1e-6) {
                        XCTFail("geometry \(t) M \(m): output (\(oc), \(od), \(oh), \(ow)) \(o) vs \(acc)")
                        return
                    }
                }}}
            }
        }
    }
}
