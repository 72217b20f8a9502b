import CKernels
import XCTest

/// The C pooling / reduction / normalization kernels (so_pool.h, so_reduce.h): every ISA level this
/// machine runs against the scalar reference, on awkward sizes, pads, strides, dilations and ceil_mode
/// windows. Max / min must match as values (NaN with NaN), sums, products, mean / variance and the
/// affine map bit for bit (every level shares one summation order); the reference itself is checked
/// against a plain Double oracle with a tolerance. Deterministic data (seeded SplitMix64).
final class CPoolReduceKernelTests: XCTestCase {
    private struct Rng {
        var state: UInt64
        init(_ seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        /// Uniform in [-1, 1).
        mutating func float() -> Float { Float(Double(next() >> 11) / 9_007_199_254_740_992.0 * 2 - 1) }
        mutating func floats(_ n: Int) -> [Float] { (0..<n).map { _ in float() } }
    }

    private var levels: [Int32] { Array(0...so_isa_supported()) }

    private static func same(_ a: Float, _ b: Float) -> Bool { a == b || (a.isNaN && b.isNaN) }
    private static func sameBits(_ a: Float, _ b: Float) -> Bool { a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) }

    // MARK: pooling

    /// Output size as the op's geometry computes it for explicit pads (nil when the kernel does not fit).
    private static func outSize(_ input: Int, k: Int, s: Int, d: Int, pb: Int, pe: Int, ceil: Bool) -> Int? {
        let ek = (k - 1) * d + 1
        let span = input + pb + pe - ek
        if span < 0 { return nil }
        var o = (ceil ? (span + s - 1) / s : span / s) + 1
        if ceil && (o - 1) * s >= input + pb { o -= 1 }
        return o >= 1 ? o : nil
    }

    /// Taps [lo, hi) inside the input and the count inside the padded extent, as PoolAxisTable.
    private static func window(_ o: Int, input: Int, k: Int, s: Int, d: Int, pb: Int, pe: Int) -> (lo: Int, hi: Int, pad: Int) {
        let st = o * s - pb
        var lo = 0
        while lo < k && st + lo * d < 0 { lo += 1 }
        var hi = k
        while hi > lo && st + (hi - 1) * d >= input { hi -= 1 }
        var pad = 0
        for t in 0..<k where st + t * d < input + pe { pad += 1 }
        return (lo, hi, pad)
    }

    /// Double-precision oracle (2-D geometry, iD = 1). kind 0: max, 1: average, 2: average with pads.
    private static func oracle(_ g: so_pool_geom, _ x: [Float], planes: Int, kind: Int) -> [Float] {
        let iH = Int(g.iH), iW = Int(g.iW), oH = Int(g.oH), oW = Int(g.oW)
        var y = [Float](repeating: 0, count: planes * oH * oW)
        for p in 0..<planes {
            for oh in 0..<oH {
                let wh = window(oh, input: iH, k: Int(g.kH), s: Int(g.sH), d: Int(g.dH), pb: Int(g.pH), pe: Int(g.eH))
                for ow in 0..<oW {
                    let ww = window(ow, input: iW, k: Int(g.kW), s: Int(g.sW), d: Int(g.dW), pb: Int(g.pW), pe: Int(g.eW))
                    var s = 0.0
                    var m = -Float.infinity
                    for kh in wh.lo..<max(wh.lo, wh.hi) {
                        let ih = oh * Int(g.sH) - Int(g.pH) + kh * Int(g.dH)
                        for kw in ww.lo..<max(ww.lo, ww.hi) {
                            let iw = ow * Int(g.sW) - Int(g.pW) + kw * Int(g.dW)
                            let v = x[(p * iH + ih) * iW + iw]
                            s += Double(v)
                            m = v > m ? v : m
                        }
                    }
                    let n = kind == 2 ? wh.pad * ww.pad : (wh.hi - wh.lo) * (ww.hi - ww.lo)
                    y[(p * oH + oh) * oW + ow] = kind == 0 ? m : (n > 0 ? Float(s / Double(n)) : .nan)
                }
            }
        }
        return y
    }

    private func runPool(_ g: so_pool_geom, _ x: [Float], planes: Int, kind: Int, level: Int32, scratch: Bool) -> [Float] {
        var geom = g
        let outCount = planes * Int(g.oD) * Int(g.oH) * Int(g.oW)
        var y = [Float](repeating: -12345, count: outCount + 16)
        let scratchBytes = scratch ? so_f32_pool_scratch(&geom) : 0
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(scratchBytes, 1) + 8, alignment: 16)
        defer { buffer.deallocate() }
        let s: UnsafeMutableRawPointer? = scratch ? buffer + 4 : nil  // deliberately not 64-byte aligned
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                if kind == 0 {
                    so_f32_maxpool_select(level)!(&geom, xp.baseAddress, yp.baseAddress, planes, s)
                } else {
                    so_f32_avgpool_select(level)!(&geom, xp.baseAddress, yp.baseAddress, planes, Int32(kind == 2 ? 1 : 0), s)
                }
            }
        }
        for i in outCount..<(outCount + 16) where y[i] != -12345 {
            XCTFail("level \(level) kind \(kind): wrote past the output")
            break
        }
        return Array(y[0..<outCount])
    }

    private func describe(_ g: so_pool_geom) -> String {
        "in \(g.iD)x\(g.iH)x\(g.iW) out \(g.oD)x\(g.oH)x\(g.oW) k \(g.kD)x\(g.kH)x\(g.kW) s \(g.sD),\(g.sH),\(g.sW) " +
            "d \(g.dD),\(g.dH),\(g.dW) pads \(g.pD),\(g.pH),\(g.pW) / \(g.eD),\(g.eH),\(g.eW)"
    }

    /// Every level against the reference, and (2-D) the reference against the Double oracle.
    private func checkPool(_ g: so_pool_geom, planes: Int, rng: inout Rng, nanEvery: UInt64 = 0) {
        let inCount = planes * Int(g.iD) * Int(g.iH) * Int(g.iW)
        var x = rng.floats(inCount)
        if nanEvery > 0 { for i in 0..<inCount where rng.next() % nanEvery == 0 { x[i] = .nan } }
        for kind in 0..<3 {
            let want = runPool(g, x, planes: planes, kind: kind, level: 0, scratch: false)
            if g.iD == 1 {
                let orc = Self.oracle(g, x, planes: planes, kind: kind)
                for i in 0..<want.count {
                    let ok = kind == 0 ? Self.same(want[i], orc[i])
                        : (Self.same(want[i], orc[i]) || abs(want[i] - orc[i]) <= 4e-6 * (1 + abs(orc[i])))
                    if !ok {
                        XCTFail("reference kind \(kind) \(describe(g)) at \(i): \(want[i]) vs oracle \(orc[i])")
                        break
                    }
                }
            }
            for level in levels.dropFirst() {
                for useScratch in [false, true] {
                    let got = runPool(g, x, planes: planes, kind: kind, level: level, scratch: useScratch)
                    for i in 0..<want.count where !Self.same(got[i], want[i]) {
                        XCTFail("level \(level) kind \(kind) \(describe(g)) planes \(planes) at \(i): \(got[i]) vs reference \(want[i])")
                        break
                    }
                }
            }
        }
    }

    private static func geom2D(h: Int, w: Int, kh: Int, kw: Int, s: Int, d: Int, pb: Int, pe: Int, ceil: Bool) -> so_pool_geom? {
        guard let oh = outSize(h, k: kh, s: s, d: d, pb: pb, pe: pe, ceil: ceil),
              let ow = outSize(w, k: kw, s: s, d: d, pb: pb, pe: pe, ceil: ceil) else { return nil }
        return so_pool_geom(iD: 1, iH: Int32(h), iW: Int32(w), oD: 1, oH: Int32(oh), oW: Int32(ow),
                            kD: 1, kH: Int32(kh), kW: Int32(kw), sD: 1, sH: Int32(s), sW: Int32(s),
                            dD: 1, dH: Int32(d), dW: Int32(d), pD: 0, pH: Int32(pb), pW: Int32(pb),
                            eD: 0, eH: Int32(pe), eW: Int32(pe))
    }

    func testPoolingEveryLevelMatchesReference() {
        var rng = Rng(42)
        let small: [(Int, Int)] = [(1, 1), (1, 7), (3, 5), (7, 7), (13, 17), (14, 14)]
        let kernels: [(Int, Int)] = [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (7, 7), (1, 3), (3, 1), (2, 5)]
        for (h, w) in small {
            for (kh, kw) in kernels {
                for s in 1...3 {
                    for d in 1...2 {
                        for pad in 0...3 {
                            for ceil in [false, true] {
                                // asymmetric end pads too
                                let pe = (pad + (ceil ? 1 : 0)) % 4
                                guard let g = Self.geom2D(h: h, w: w, kh: kh, kw: kw, s: s, d: d, pb: pad, pe: pe, ceil: ceil) else { continue }
                                checkPool(g, planes: h * w <= 64 ? 3 : 1, rng: &rng)
                            }
                        }
                    }
                }
            }
        }
    }

    func testPoolingLargePlanesAndFastPaths() {
        var rng = Rng(7)
        // (size, kernel, stride, pad begin, pad end, ceil): the network shapes (3x3s2, 2x2s2, 3x3s1p1) and a few others
        let cases: [(Int, Int, Int, Int, Int, Bool)] = [
            (112, 3, 2, 1, 1, false), (112, 3, 2, 0, 0, true), (56, 3, 2, 0, 0, true), (56, 2, 2, 0, 0, false),
            (56, 3, 1, 1, 1, false), (28, 3, 1, 1, 1, false), (14, 3, 1, 1, 1, false), (7, 3, 1, 1, 1, false),
            (56, 5, 1, 2, 2, false), (56, 7, 3, 3, 2, true), (35, 3, 2, 0, 0, false), (17, 2, 2, 0, 0, true),
            (147, 3, 2, 0, 0, false), (71, 3, 2, 1, 0, true),
        ]
        for (n, k, s, pb, pe, ceil) in cases {
            guard let g = Self.geom2D(h: n, w: n, kh: k, kw: k, s: s, d: 1, pb: pb, pe: pe, ceil: ceil) else {
                XCTFail("bad case \(n) \(k) \(s)")
                continue
            }
            checkPool(g, planes: 2, rng: &rng)
        }
        // rectangular planes, dilation on the fast-path kernels (takes the generic path)
        if let g = Self.geom2D(h: 20, w: 61, kh: 3, kw: 3, s: 2, d: 2, pb: 2, pe: 1, ceil: true) { checkPool(g, planes: 2, rng: &rng) }
        if let g = Self.geom2D(h: 9, w: 100, kh: 3, kw: 3, s: 1, d: 1, pb: 1, pe: 1, ceil: false) { checkPool(g, planes: 2, rng: &rng) }
    }

    /// 8-bit max pooling (so_u8_maxpool), scalar and vector, both signednesses, against the float
    /// reference on the bytes' values: random 2-D geometries (strides 1 to 3, dilations, pads,
    /// ceil_mode) and the network shapes, widths with and without 16-output tails; no write past the output.
    func testU8MaxPoolMatchesFloatPooling() {
        var rng = Rng(123)
        var geoms: [so_pool_geom] = []
        for (n, k, s, pb, pe, ceil) in [(111, 3, 2, 0, 0, true), (55, 3, 2, 0, 0, true), (56, 3, 1, 1, 1, false), (112, 2, 2, 0, 0, false),
                                        (40, 3, 2, 1, 1, false), (33, 5, 1, 2, 2, false)] {
            if let g = Self.geom2D(h: n, w: n, kh: k, kw: k, s: s, d: 1, pb: pb, pe: pe, ceil: ceil) { geoms.append(g) }
        }
        for _ in 0..<80 {
            let h = 1 + Int(rng.next() % 20), w = 1 + Int(rng.next() % 70)
            let kh = 1 + Int(rng.next() % 4), kw = 1 + Int(rng.next() % 5)
            let s = 1 + Int(rng.next() % 3), d = 1 + Int(rng.next() % 2), pb = Int(rng.next() % 3), pe = Int(rng.next() % 3)
            if let g = Self.geom2D(h: h, w: w, kh: kh, kw: kw, s: s, d: d, pb: pb, pe: pe, ceil: rng.next() % 2 == 0) { geoms.append(g) }
        }
        for g in geoms {
            var geom = g
            let planes = 2
            let inCount = planes * Int(g.iH) * Int(g.iW), outCount = planes * Int(g.oH) * Int(g.oW)
            let bytes = (0..<inCount).map { _ in UInt8(truncatingIfNeeded: rng.next() >> 11) }
            for signed in [false, true] {
                let values = bytes.map { signed ? Float(Int8(bitPattern: $0)) : Float($0) }
                let pooled = runPool(g, values, planes: planes, kind: 0, level: 0, scratch: false)
                let lowest: Float = signed ? -128 : 0
                let want = pooled.prefix(outCount).map { v -> UInt8 in
                    let q = v == -.infinity ? lowest : v
                    return signed ? UInt8(bitPattern: Int8(q)) : UInt8(q)
                }
                for isa in Int32(0)...so_isa_supported() {
                    var y = [UInt8](repeating: 0xA5, count: outCount + 16)
                    let scratch = UnsafeMutableRawPointer.allocate(byteCount: so_u8_maxpool_scratch(&geom), alignment: 1)
                    defer { scratch.deallocate() }
                    bytes.withUnsafeBufferPointer { xp in
                        y.withUnsafeMutableBufferPointer { so_u8_maxpool(&geom, xp.baseAddress, $0.baseAddress, planes, signed ? 1 : 0, scratch, isa) }
                    }
                    XCTAssertEqual(Array(y.prefix(outCount)), want, "isa \(isa) signed \(signed) \(describe(g))")
                    XCTAssertTrue(y.suffix(16).allSatisfy { $0 == 0xA5 }, "isa \(isa): wrote past the output")
                }
            }
        }
    }

    func testPoolingNaNsAndDepth() {
        var rng = Rng(99)
        for t in 0..<60 {
            let iD = t % 3 == 0 ? 1 + Int(rng.next() % 4) : 1
            let iH = 1 + Int(rng.next() % 15), iW = 1 + Int(rng.next() % 40)
            let kD = iD > 1 ? 1 + Int(rng.next() % 3) : 1
            let kH = 1 + Int(rng.next() % 4), kW = 1 + Int(rng.next() % 5)
            let sD = 1 + Int(rng.next() % 2), sH = 1 + Int(rng.next() % 3), sW = 1 + Int(rng.next() % 4)
            let dH = 1 + Int(rng.next() % 2), dW = 1 + Int(rng.next() % 3)
            let pD = kD > 1 ? Int(rng.next() % 2) : 0, pH = Int(rng.next() % 3), pW = Int(rng.next() % 4)
            let eH = Int(rng.next() % 3), eW = Int(rng.next() % 4)
            let ceil = rng.next() % 2 == 0
            guard let oD = Self.outSize(iD, k: kD, s: sD, d: 1, pb: pD, pe: pD, ceil: ceil),
                  let oH = Self.outSize(iH, k: kH, s: sH, d: dH, pb: pH, pe: eH, ceil: ceil),
                  let oW = Self.outSize(iW, k: kW, s: sW, d: dW, pb: pW, pe: eW, ceil: ceil) else { continue }
            let g = so_pool_geom(iD: Int32(iD), iH: Int32(iH), iW: Int32(iW), oD: Int32(oD), oH: Int32(oH), oW: Int32(oW),
                                 kD: Int32(kD), kH: Int32(kH), kW: Int32(kW), sD: Int32(sD), sH: Int32(sH), sW: Int32(sW),
                                 dD: 1, dH: Int32(dH), dW: Int32(dW), pD: Int32(pD), pH: Int32(pH), pW: Int32(pW),
                                 eD: Int32(pD), eH: Int32(eH), eW: Int32(eW))
            checkPool(g, planes: 1 + Int(rng.next() % 3), rng: &rng, nanEvery: t % 2 == 0 ? 5 : 0)
        }
    }

    func testGlobalPool() {
        var rng = Rng(5)
        for size in [0, 1, 7, 15, 16, 17, 49, 64, 196, 1000, 4097] {
            let planes = 3
            for withNaN in [false, true] {
                var x = rng.floats(planes * size)
                if withNaN && size > 0 {
                    x[size / 2] = .nan
                    for i in size..<(2 * size) { x[i] = .nan }  // plane 1: only NaNs
                }
                for isMax in [Int32(0), 1] {
                    var want = [Float](repeating: 0, count: planes)
                    x.withUnsafeBufferPointer { xp in
                        want.withUnsafeMutableBufferPointer { so_f32_global_pool_select(0)!(xp.baseAddress, $0.baseAddress, planes, size, isMax) }
                    }
                    for p in 0..<planes {
                        var s = 0.0
                        var m = -Float.infinity
                        for i in 0..<size { let v = x[p * size + i]; s += Double(v); m = v > m ? v : m }
                        let o: Float = isMax != 0 ? m : (size > 0 ? Float(s / Double(size)) : .nan)
                        XCTAssertTrue(Self.same(o, want[p]) || abs(o - want[p]) <= 1e-6 * (1 + abs(o)),
                                      "global reference size \(size) max \(isMax) plane \(p): \(want[p]) vs \(o)")
                    }
                    for level in levels.dropFirst() {
                        var got = [Float](repeating: 0, count: planes)
                        x.withUnsafeBufferPointer { xp in
                            got.withUnsafeMutableBufferPointer { so_f32_global_pool_select(level)!(xp.baseAddress, $0.baseAddress, planes, size, isMax) }
                        }
                        for p in 0..<planes {
                            XCTAssertTrue(isMax != 0 ? Self.same(got[p], want[p]) : Self.sameBits(got[p], want[p]),
                                          "global level \(level) size \(size) max \(isMax) plane \(p): \(got[p]) vs \(want[p])")
                        }
                    }
                }
            }
        }
    }

    // MARK: reductions

    private static let ops: [(Int32, String)] = [
        (Int32(SO_RED_SUM), "sum"), (Int32(SO_RED_SUM_ABS), "sumAbs"), (Int32(SO_RED_SUM_SQUARE), "sumSquare"),
        (Int32(SO_RED_MAX), "max"), (Int32(SO_RED_MIN), "min"), (Int32(SO_RED_PROD), "prod"),
    ]

    private static func isMinMax(_ op: Int32) -> Bool { op == Int32(SO_RED_MAX) || op == Int32(SO_RED_MIN) }

    private static func data(_ n: Int, op: Int32, rng: inout Rng) -> [Float] {
        // products of values near 1 stay in range
        op == Int32(SO_RED_PROD) ? (0..<n).map { _ in 1 + rng.float() * 0.01 } : rng.floats(n)
    }

    private static func oracleRow(_ op: Int32, _ x: ArraySlice<Float>) -> Double {
        switch op {
        case Int32(SO_RED_SUM): return x.reduce(0.0) { $0 + Double($1) }
        case Int32(SO_RED_SUM_ABS): return x.reduce(0.0) { $0 + Double(abs($1)) }
        case Int32(SO_RED_SUM_SQUARE): return x.reduce(0.0) { $0 + Double($1) * Double($1) }
        case Int32(SO_RED_PROD): return x.reduce(1.0) { $0 * Double($1) }
        case Int32(SO_RED_MAX): return Double(x.reduce(-Float.infinity) { ($1 > $0 || $1.isNaN) ? $1 : $0 })
        default: return Double(x.reduce(Float.infinity) { ($1 < $0 || $1.isNaN) ? $1 : $0 })
        }
    }

    func testReduceRowsEveryLevelMatchesReference() {
        var rng = Rng(11)
        for (op, name) in Self.ops {
            for n in [0, 1, 7, 15, 16, 17, 31, 33, 63, 64, 65, 100, 1000, 4095, 4096, 4097, 10000] {
                for rows in [1, 3] {
                    for nanMode in 0..<3 where nanMode == 0 || n > 0 {
                        var x = Self.data(rows * n, op: op, rng: &rng)
                        if nanMode == 1 { x[Int(rng.next() % UInt64(rows * n))] = .nan }
                        if nanMode == 2 { x[rows * n - 1 - Int(rng.next() % UInt64(min(n, 5)))] = .nan }  // in the tail
                        var want = [Float](repeating: 0, count: rows)
                        x.withUnsafeBufferPointer { xp in
                            want.withUnsafeMutableBufferPointer { so_f32_reduce_rows_select(0)!(op, xp.baseAddress, rows, n, $0.baseAddress) }
                        }
                        for r in 0..<rows {
                            let slice = x[(r * n)..<(r * n + n)]
                            let o = Self.oracleRow(op, slice)
                            if Self.isMinMax(op) || o.isNaN {
                                XCTAssertTrue(Self.same(want[r], Float(o)), "\(name) reference n \(n): \(want[r]) vs \(o)")
                            } else {
                                let scale = op == Int32(SO_RED_SUM) ? Self.oracleRow(Int32(SO_RED_SUM_ABS), slice) : abs(o)
                                XCTAssertLessThanOrEqual(abs(Double(want[r]) - o), 1e-5 * scale + 1e-30, "\(name) reference n \(n)")
                            }
                        }
                        for level in levels.dropFirst() {
                            var got = [Float](repeating: 0, count: rows + 4)
                            x.withUnsafeBufferPointer { xp in
                                got.withUnsafeMutableBufferPointer { so_f32_reduce_rows_select(level)!(op, xp.baseAddress, rows, n, $0.baseAddress) }
                            }
                            for r in 0..<rows {
                                let ok = Self.isMinMax(op) ? Self.same(got[r], want[r]) : Self.sameBits(got[r], want[r])
                                XCTAssertTrue(ok, "\(name) level \(level) n \(n) rows \(rows) nan \(nanMode): \(got[r]) vs \(want[r])")
                            }
                            XCTAssertEqual(got[rows], 0, "\(name) level \(level): wrote past the output")
                        }
                    }
                }
            }
        }
    }

    /// The one-pass min and max (DynamicQuantizeLinear's range) at every level: the same values as the
    /// MIN and MAX rows of the reference, NaN (both) when a NaN is anywhere, including the tail.
    func testMinMaxEveryLevelMatchesTheReductions() {
        var rng = Rng(12)
        for n in [0, 1, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000, 4097] {
            for nanMode in 0..<3 where nanMode == 0 || n > 0 {
                var x = rng.floats(n).map { $0 * 100 }
                if nanMode == 1 { x[Int(rng.next() % UInt64(n))] = .nan }
                if nanMode == 2 { x[n - 1 - Int(rng.next() % UInt64(min(n, 5)))] = .nan }
                var wantMin: Float = 0, wantMax: Float = 0
                x.withUnsafeBufferPointer { xp in
                    so_f32_reduce_rows_select(0)!(Int32(SO_RED_MIN), xp.baseAddress, 1, n, &wantMin)
                    so_f32_reduce_rows_select(0)!(Int32(SO_RED_MAX), xp.baseAddress, 1, n, &wantMax)
                }
                for level in levels {
                    var lo: Float = 0, hi: Float = 0
                    x.withUnsafeBufferPointer { so_f32_minmax_select(level)!($0.baseAddress, n, &lo, &hi) }
                    XCTAssertTrue(Self.same(lo, wantMin) && Self.same(hi, wantMax),
                                  "level \(level) n \(n) nan \(nanMode): (\(lo), \(hi)) vs (\(wantMin), \(wantMax))")
                }
            }
        }
    }

    func testReduceMiddleEveryLevelMatchesReference() {
        var rng = Rng(13)
        for (op, name) in Self.ops {
            for n in [0, 1, 7, 15, 16, 17, 33, 1000] {
                for inner in [1, 3, 16, 17, 31, 64, 65, 100] where n * inner <= 40_000 {
                    for outer in [1, 2] {
                        let total = outer * n * inner, count = outer * inner
                        var x = Self.data(total, op: op, rng: &rng)
                        if total > 0 && (n + inner) % 2 == 0 { for _ in 0..<3 { x[Int(rng.next() % UInt64(total))] = .nan } }
                        var want = [Float](repeating: 0, count: count)
                        x.withUnsafeBufferPointer { xp in
                            want.withUnsafeMutableBufferPointer {
                                so_f32_reduce_middle_select(0)!(op, xp.baseAddress, outer, n, inner, $0.baseAddress)
                            }
                        }
                        // the reference is the plain sequential chain of f32ReduceMiddle
                        for o in 0..<outer {
                            for j in 0..<inner {
                                var acc: Float
                                switch op {
                                case Int32(SO_RED_MAX): acc = -.infinity
                                case Int32(SO_RED_MIN): acc = .infinity
                                case Int32(SO_RED_PROD): acc = 1
                                default: acc = 0
                                }
                                for k in 0..<n {
                                    let v = x[(o * n + k) * inner + j]
                                    switch op {
                                    case Int32(SO_RED_SUM): acc += v
                                    case Int32(SO_RED_SUM_ABS): acc += abs(v)
                                    case Int32(SO_RED_SUM_SQUARE): acc = acc.addingProduct(v, v)
                                    case Int32(SO_RED_MAX): if v > acc || v.isNaN { acc = v }
                                    case Int32(SO_RED_MIN): if v < acc || v.isNaN { acc = v }
                                    default: acc *= v
                                    }
                                }
                                XCTAssertTrue(Self.sameBits(acc, want[o * inner + j]), "\(name) middle reference n \(n) inner \(inner)")
                            }
                        }
                        for level in levels.dropFirst() {
                            var got = [Float](repeating: 0, count: count + 4)
                            x.withUnsafeBufferPointer { xp in
                                got.withUnsafeMutableBufferPointer {
                                    so_f32_reduce_middle_select(level)!(op, xp.baseAddress, outer, n, inner, $0.baseAddress)
                                }
                            }
                            for j in 0..<count {
                                let ok = Self.isMinMax(op) ? Self.same(got[j], want[j]) : Self.sameBits(got[j], want[j])
                                if !ok {
                                    XCTFail("\(name) middle level \(level) outer \(outer) n \(n) inner \(inner) at \(j): \(got[j]) vs \(want[j])")
                                    break
                                }
                            }
                            XCTAssertEqual(got[count], 0, "\(name) middle level \(level): wrote past the output")
                        }
                    }
                }
            }
        }
    }

    func testMeanVarianceEveryLevelMatchesReference() {
        var rng = Rng(17)
        for len in [0, 1, 7, 15, 16, 17, 33, 100, 1000, 2047, 2048, 2049, 5000, 30000] {
            for groups in [1, 3] {
                for offset in [Float(0), 1000] {
                    let gap = len + 5
                    let total = groups == 1 ? len : (groups - 1) * gap + len
                    let x = (0..<total).map { _ in offset + rng.float() }
                    var m0 = 0.0, v0 = 0.0
                    x.withUnsafeBufferPointer { so_f32_meanvar_select(0)!($0.baseAddress, groups, len, gap, &m0, &v0) }
                    // two-pass Double oracle
                    let count = groups * len
                    var s = 0.0
                    for g in 0..<groups { for i in 0..<len { s += Double(x[g * gap + i]) } }
                    let mu = count > 0 ? s / Double(count) : 0
                    var q = 0.0
                    for g in 0..<groups { for i in 0..<len { let d = Double(x[g * gap + i]) - mu; q += d * d } }
                    let va = count > 0 ? q / Double(count) : 0
                    // accumulated in double: close to the two-pass Double oracle
                    XCTAssertLessThanOrEqual(abs(m0 - mu), 1e-12 * (abs(mu) + 1), "mean len \(len) groups \(groups) offset \(offset)")
                    XCTAssertLessThanOrEqual(abs(v0 - va), 1e-10 * va + 1e-15, "variance len \(len) groups \(groups) offset \(offset)")
                    for level in levels.dropFirst() {
                        var m1 = 0.0, v1 = 0.0
                        x.withUnsafeBufferPointer { so_f32_meanvar_select(level)!($0.baseAddress, groups, len, gap, &m1, &v1) }
                        XCTAssertEqual(m1.bitPattern, m0.bitPattern, "mean level \(level) len \(len) groups \(groups)")
                        XCTAssertEqual(v1.bitPattern, v0.bitPattern, "variance level \(level) len \(len) groups \(groups)")
                    }
                }
            }
        }
    }

    /// LayerNorm / RMSNorm rows: the reference against a double oracle, every level bit for bit
    /// against the reference (statistics, outputs, in place), tails of every length.
    func testNormRowsEveryLevelMatchesReference() {
        var rng = Rng(23)
        for cols in [0, 1, 7, 15, 16, 17, 31, 33, 64, 100, 384, 1000] {
            for rms in [Int32(0), 1] {
                for withBias in [false, true] {
                    let rows = 3
                    let x = (0..<(rows * cols)).map { i in (i % 5 == 0 ? 40 : 1) * rng.float() + (rms == 0 ? 3 : 0) }
                    let scale = rng.floats(cols).map { $0 * 2 }, bias = rng.floats(cols)
                    let eps = 1e-5
                    func run(_ level: Int32, inPlace: Bool) -> (y: [Float], mean: [Float], inv: [Float]) {
                        var y = inPlace ? x : [Float](repeating: .nan, count: rows * cols)
                        var mean = [Float](repeating: .nan, count: rows), inv = mean
                        let fn = so_f32_norm_rows_select(level)!
                        scale.withUnsafeBufferPointer { sp in
                            bias.withUnsafeBufferPointer { bp in
                                y.withUnsafeMutableBufferPointer { yp in
                                    mean.withUnsafeMutableBufferPointer { mp in
                                        inv.withUnsafeMutableBufferPointer { ip in
                                            if inPlace {
                                                fn(yp.baseAddress, yp.baseAddress, rows, cols, sp.baseAddress,
                                                   withBias ? bp.baseAddress : nil, eps, rms, mp.baseAddress, ip.baseAddress)
                                            } else {
                                                x.withUnsafeBufferPointer { xp in
                                                    fn(xp.baseAddress, yp.baseAddress, rows, cols, sp.baseAddress,
                                                       withBias ? bp.baseAddress : nil, eps, rms, mp.baseAddress, ip.baseAddress)
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        return (y, mean, inv)
                    }
                    let ref = run(0, inPlace: false)
                    // the reference against a double oracle
                    for r in 0..<rows {
                        let row = x[(r * cols)..<((r + 1) * cols)].map(Double.init)
                        let mu = rms == 1 || cols == 0 ? 0 : row.reduce(0, +) / Double(cols)
                        let q = row.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / Double(max(cols, 1))
                        let inv = 1 / (q + eps).squareRoot()
                        let what = "cols \(cols) rms \(rms) bias \(withBias) row \(r)"
                        XCTAssertEqual(Double(ref.mean[r]), mu, accuracy: 1e-6 * (abs(mu) + 1), what)
                        XCTAssertEqual(Double(ref.inv[r]), inv, accuracy: 1e-6 * inv, what)
                        for i in 0..<cols {
                            let want = (row[i] - mu) * inv * Double(scale[i]) + (withBias ? Double(bias[i]) : 0)
                            XCTAssertEqual(Double(ref.y[r * cols + i]), want, accuracy: 1e-5 * (abs(want) + 1), "\(what) col \(i)")
                        }
                    }
                    for level in levels.dropFirst() {
                        for inPlace in [false, true] {
                            let got = run(level, inPlace: inPlace)
                            let what = "level \(level) cols \(cols) rms \(rms) bias \(withBias) in place \(inPlace)"
                            XCTAssertEqual(got.mean.map(\.bitPattern), ref.mean.map(\.bitPattern), what)
                            XCTAssertEqual(got.inv.map(\.bitPattern), ref.inv.map(\.bitPattern), what)
                            XCTAssertEqual(got.y.map(\.bitPattern), ref.y.map(\.bitPattern), what)
                        }
                    }
                }
            }
        }
    }

    func testChannelAffineEveryLevelMatchesReference() {
        var rng = Rng(19)
        for size in [0, 1, 7, 15, 16, 17, 33, 64, 100, 3136] {
            for (planes, channels) in [(1, 1), (4, 1), (6, 3), (10, 5), (7, 7)] {
                let n = planes * size
                let x = rng.floats(n).map { $0 * 10 }
                let scale = rng.floats(channels).map { $0 * 3 }, bias = rng.floats(channels)
                var want = [Float](repeating: 0, count: n)
                x.withUnsafeBufferPointer { xp in
                    want.withUnsafeMutableBufferPointer { yp in
                        scale.withUnsafeBufferPointer { sp in
                            bias.withUnsafeBufferPointer { bp in
                                so_f32_channel_affine_select(0)!(xp.baseAddress, yp.baseAddress, planes, channels, size, sp.baseAddress, bp.baseAddress)
                            }
                        }
                    }
                }
                for i in 0..<n {
                    let c = (i / size) % channels
                    let product = x[i] * scale[c]
                    XCTAssertEqual((product + bias[c]).bitPattern, want[i].bitPattern, "affine reference size \(size) at \(i)")
                }
                for level in levels.dropFirst() {
                    var got = [Float](repeating: 0, count: n + 4)
                    var inPlace = x + [0, 0, 0, 0]
                    x.withUnsafeBufferPointer { xp in
                        got.withUnsafeMutableBufferPointer { yp in
                            scale.withUnsafeBufferPointer { sp in
                                bias.withUnsafeBufferPointer { bp in
                                    so_f32_channel_affine_select(level)!(xp.baseAddress, yp.baseAddress, planes, channels, size, sp.baseAddress, bp.baseAddress)
                                }
                            }
                        }
                    }
                    inPlace.withUnsafeMutableBufferPointer { yp in
                        scale.withUnsafeBufferPointer { sp in
                            bias.withUnsafeBufferPointer { bp in
                                so_f32_channel_affine_select(level)!(yp.baseAddress, yp.baseAddress, planes, channels, size, sp.baseAddress, bp.baseAddress)
                            }
                        }
                    }
                    for i in 0..<n where got[i].bitPattern != want[i].bitPattern || inPlace[i].bitPattern != want[i].bitPattern {
                        XCTFail("affine level \(level) planes \(planes) channels \(channels) size \(size) at \(i)")
                        break
                    }
                    XCTAssertEqual(got[n], 0, "affine level \(level): wrote past the output")
                    XCTAssertEqual(inPlace[n], 0, "affine level \(level) in place: wrote past the output")
                }
            }
        }
    }
}
