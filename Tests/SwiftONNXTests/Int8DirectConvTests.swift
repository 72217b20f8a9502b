import CKernels
import XCTest
@testable import SwiftONNX

/// The direct integer convolution family (Sources/CKernels/i8_conv.c, without gathered patches;
/// strided convolutions read the image's phases): the fast kernel against the scalar reference on every index of a block, kept and
/// dropped alike; the driver (`int8DirectConv2D`) against a plain integer convolution, and,
/// requantized, against the patch-gathering GEMM path byte for byte. Random geometries (odd
/// channel counts, 1 x 1 to 5 x 5 kernels, dilations, uneven padding, images narrower than the
/// kernel's reach), unsigned and signed activations, zero points 0, 128 and 255 (signed -128 and
/// 127), and saturating values (255 against -128 / 127). All comparisons are exact.
final class Int8DirectConvTests: XCTestCase {
    private struct Case {
        var c, h, w, m, kh, kw, dh, dw, pt, pl, pb, pr: Int
        var sh = 1, sw = 1
        var oh: Int { (h + pt + pb - (kh - 1) * dh - 1) / sh + 1 }
        var ow: Int { (w + pl + pr - (kw - 1) * dw - 1) / sw + 1 }
        var strided: Bool { sh != 1 || sw != 1 }
        /// The quad planes' size (so_i8_conv.h), for one phase (stride 1, or strided 1 x 1).
        var hp: Int { strided ? oh : h + pt + pb }
        var wp: Int { strided ? ow : w + pl + pr }
        var geo: Int8ConvGeometry {
            Int8ConvGeometry(c: c, h: h, w: w, m: m, kh: kh, kw: kw, sh: sh, sw: sw, dh: dh, dw: dw, padTop: pt, padLeft: pl, oh: oh, ow: ow)
        }
    }

    private func cases() -> [Case] {
        var rng = SplitMix64(seed: 0xD1EC7)
        func r(_ lo: Int, _ hi: Int) -> Int { lo + Int(rng.next() % UInt64(hi - lo + 1)) }
        var out: [Case] = [
            Case(c: 32, h: 14, w: 14, m: 32, kh: 3, kw: 3, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1),
            Case(c: 64, h: 7, w: 7, m: 70, kh: 3, kw: 3, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1),
            Case(c: 3, h: 20, w: 37, m: 9, kh: 5, kw: 5, dh: 1, dw: 1, pt: 2, pl: 2, pb: 2, pr: 2),
            Case(c: 5, h: 9, w: 40, m: 17, kh: 1, kw: 1, dh: 1, dw: 1, pt: 1, pl: 0, pb: 0, pr: 2),
            Case(c: 8, h: 3, w: 3, m: 8, kh: 3, kw: 3, dh: 2, dw: 2, pt: 2, pl: 2, pb: 2, pr: 2),
            Case(c: 64, h: 56, w: 56, m: 40, kh: 1, kw: 1, dh: 1, dw: 1, pt: 0, pl: 0, pb: 0, pr: 0, sh: 2, sw: 2),
            Case(c: 7, h: 9, w: 70, m: 9, kh: 1, kw: 1, dh: 1, dw: 1, pt: 1, pl: 2, pb: 0, pr: 1, sh: 3, sw: 2),
            // strided K x K: ResNet's 3 x 3 stride 2 (four phases), a stem, no padding (negative
            // phase offsets), stride 3 with dilation 2 (phases chosen by ky * dh % sh)
            Case(c: 32, h: 14, w: 14, m: 24, kh: 3, kw: 3, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1, sh: 2, sw: 2),
            Case(c: 4, h: 23, w: 30, m: 16, kh: 7, kw: 7, dh: 1, dw: 1, pt: 3, pl: 3, pb: 3, pr: 3, sh: 2, sw: 2),
            Case(c: 9, h: 11, w: 12, m: 13, kh: 3, kw: 2, dh: 1, dw: 1, pt: 0, pl: 0, pb: 0, pr: 0, sh: 2, sw: 2),
            Case(c: 6, h: 17, w: 19, m: 10, kh: 3, kw: 3, dh: 2, dw: 2, pt: 2, pl: 1, pb: 0, pr: 2, sh: 3, sw: 3),
        ]
        while out.count < 80 {
            if out.count % 4 == 0 {   // strided K x K
                var k = Case(c: r(1, 13), h: r(1, 20), w: r(1, 20), m: r(1, 21), kh: r(1, 5), kw: r(1, 5), dh: r(1, 2), dw: r(1, 2),
                             pt: r(0, 2), pl: r(0, 2), pb: r(0, 2), pr: r(0, 2), sh: r(2, 3), sw: r(1, 3))
                if k.oh < 1 || k.ow < 1 { k.pb += (k.kh - 1) * k.dh; k.pr += (k.kw - 1) * k.dw }
                out.append(k)
                continue
            }
            if out.count % 5 == 0 {   // strided 1 x 1
                out.append(Case(c: r(1, 13), h: r(1, 40), w: r(1, 40), m: r(1, 21), kh: 1, kw: 1, dh: 1, dw: 1,
                                pt: r(0, 1), pl: r(0, 1), pb: r(0, 1), pr: r(0, 1), sh: r(1, 3), sw: r(1, 3)))
                continue
            }
            let kh = r(1, 5), kw = r(1, 5), dh = r(1, 2), dw = r(1, 2)
            var k = Case(c: r(1, 13), h: r(1, 12), w: r(1, 12), m: r(1, 21), kh: kh, kw: kw, dh: dh, dw: dw,
                         pt: r(0, 2), pl: r(0, 2), pb: r(0, 2), pr: r(0, 2))
            if k.oh < 1 || k.ow < 1 { k.pb += (kh - 1) * dh; k.pr += (kw - 1) * dw }
            out.append(k)
        }
        return out
    }

    func testFastKernelMatchesTheReferenceOnEveryIndex() throws {
        let fast = Int32(SO_ISA_AVX512)
        if so_i8_conv_direct_fast(fast) == 0 { throw XCTSkip("no fast direct kernel on this CPU (the reference runs; see the driver tests)") }
        var rng = SplitMix64(seed: 11)
        for (ci, k) in cases().enumerated() {
            // one set of quad planes here; the phases of strided K x K kernels are the driver's
            if k.strided && k.kh * k.kw > 1 { continue }
            let extreme = ci % 3 == 0
            let x = rng.kernelBytes(k.c * k.h * k.w, extreme: extreme)
            let w = rng.kernelWeights(k.m * k.c * k.kh * k.kw, extreme: extreme)
            let hp = k.hp, wp = k.wp, cq = (k.c + 3) / 4, plane = hp * wp * 4
            var quads = [UInt8](repeating: 0, count: cq * plane + Int(SO_I8_CONV_SLACK))
            so_u8_conv_quads(x, k.c, k.h, k.w, k.sh, k.sw, k.pt, k.pl, hp, wp, 255, 0, &quads)
            var packed = [Int8](repeating: 0, count: so_i8_conv_packed_bytes(k.m, k.c, k.kh * k.kw))
            so_i8_conv_pack(k.m, k.c, k.kh * k.kw, w, &packed)
            var offs = [Int]()
            for ky in 0..<k.kh { for kx in 0..<k.kw { for q in 0..<cq { offs.append(q * plane + (ky * k.dh * wp + kx * k.dw) * 4) } } }
            let lend = (k.oh - 1) * wp + k.ow
            // the whole range at once, and a block starting inside it; int32 and requantized
            let count = k.m * k.oh * k.ow
            for l0 in Set([0, lend / 3]) {
                let n = lend - l0
                var ref = [Int32](repeating: -1, count: count + 64), got = ref
                so_i8_conv_direct(Int32(SO_ISA_SCALAR), k.m, offs.count, packed, quads, offs, l0, n, wp, k.ow, &ref, k.oh * k.ow, nil)
                so_i8_conv_direct(fast, k.m, offs.count, packed, quads, offs, l0, n, wp, k.ow, &got, k.oh * k.ow, nil)
                XCTAssertEqual(got, ref, "case \(ci) \(k) l0 \(l0)")
                let bias = (0..<k.m).map { Int32($0 * 37 % 101) - 50 }, scale = (0..<k.m).map { Float($0 % 7 + 1) * 3e-4 }
                var q8 = [[UInt8]]()
                for level in [Int32(SO_ISA_SCALAR), fast] {
                    var y = [UInt8](repeating: 0xA5, count: count + 64)
                    bias.withUnsafeBufferPointer { bp in
                        scale.withUnsafeBufferPointer { sp in
                            y.withUnsafeMutableBytes { yp in
                                var rq = so_i8_requant(bias: bp.baseAddress, scale: sp.baseAddress, yzp: 9, lo: 0, hi: 255, is_signed: 0,
                                                       y: yp.baseAddress, ldy: k.oh * k.ow)
                                so_i8_conv_direct(level, k.m, offs.count, packed, quads, offs, l0, n, wp, k.ow, nil, 0, &rq)
                            }
                        }
                    }
                    q8.append(y)
                }
                XCTAssertEqual(q8[1], q8[0], "requantized, case \(ci) \(k) l0 \(l0)")
            }
        }
    }

    private func packedDirect(_ k: Case, _ w: [Int8]) throws -> Int8DirectConvWeights {
        try w.withUnsafeBufferPointer { try Int8DirectConvWeights(m: k.m, c: k.c, kh: k.kh, kw: k.kw, weights: $0.baseAddress!) }
    }

    func testDriverMatchesAPlainIntegerConvolution() throws {
        var rng = SplitMix64(seed: 12)
        for (ci, k) in cases().enumerated() {
            let extreme = ci % 3 == 1, signed = ci % 2 == 1
            let x = rng.kernelBytes(k.c * k.h * k.w, extreme: extreme)
            let w = rng.kernelWeights(k.m * k.c * k.kh * k.kw, extreme: extreme)
            let zp: Int32 = signed ? [-128, 0, 127][ci % 3] : [0, 128, 255][ci % 3]
            let packed = try packedDirect(k, w)
            let want = naiveIntegerConv(k.geo, depthwise: false, x, signed: signed, zp: zp, w.map { Int64($0) })
            for threads in [1, 2] {
                let count = k.m * k.oh * k.ow
                let y = x.withUnsafeBufferPointer { xp in
                    int32Sums(count: count, ldy: k.oh * k.ow) { out in
                        int8DirectConv2D(x: xp.baseAddress!, flip: signed, xzp: zp, k.geo, packed, out, threads: threads)
                    }
                }
                XCTAssertEqual(Array(y[..<count]), want, "case \(ci) \(k) signed \(signed) zp \(zp) threads \(threads)")
                XCTAssertEqual(Array(y[count...]), [Int32](repeating: 0x5A5A5A5A, count: 64), "wrote past the output, case \(ci)")
            }
        }
    }

    func testRequantizedDriverMatchesThePatchPath() throws {
        var rng = SplitMix64(seed: 13)
        for (ci, k) in cases().enumerated() {
            let extreme = ci % 4 == 2, signedOut = ci % 2 == 0
            let x = rng.kernelBytes(k.c * k.h * k.w, extreme: extreme)
            let w = rng.kernelWeights(k.m * k.c * k.kh * k.kw, extreme: extreme)
            let zp: Int32 = [0, 128, 255, 3][ci % 4]
            let direct = try packedDirect(k, w)
            let gemm = try w.withUnsafeBufferPointer {
                try Int8PackedWeights(m: k.m, k: k.c * k.kh * k.kw, weights: $0.baseAddress!, zeroPoints: nil)
            }
            let bias = (0..<k.m).map { _ in Int32(truncatingIfNeeded: rng.next() % 20001) - 10000 }
            let scale = (0..<k.m).map { _ in Float(rng.next() % 1000 + 1) * 1e-5 }
            let count = k.m * k.oh * k.ow
            var outs = [[UInt8]]()
            for useDirect in [false, true] {
                let y = x.withUnsafeBufferPointer { xp in
                    requantizedBytes(count: count, ldy: k.oh * k.ow, bias: bias, scale: scale, signedOut: signedOut) { out in
                        if useDirect {
                            int8DirectConv2D(x: xp.baseAddress!, flip: false, xzp: zp, k.geo, direct, out, threads: 2)
                        } else {
                            int8Conv2D(x: xp.baseAddress!, xzp: zp, k.geo, gemm, out, threads: 1)
                        }
                    }
                }
                XCTAssertEqual(Array(y[count...]), [UInt8](repeating: 0xA5, count: 64), "wrote past the output, case \(ci)")
                outs.append(Array(y[..<count]))
            }
            XCTAssertEqual(outs[1], outs[0], "case \(ci) \(k)")
        }
    }
}
