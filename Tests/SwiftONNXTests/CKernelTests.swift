import Foundation
import XCTest
import CKernels

/// The C microkernels of the CKernels target: at every ISA level this CPU runs (1 ... so_isa_supported()),
/// the selected variant against the scalar reference (level SO_ISA_SCALAR), on awkward sizes with seeded
/// inputs that include special values. Kernels whose vector form is the same IEEE operations as the
/// reference must match bit for bit (NaN matching any NaN); the polynomial approximations (exp, sigmoid,
/// tanh, erf, gelu, elu, ...) within 2e-6 relative + 1e-7 absolute of libm.
final class CKernelTests: XCTestCase {

    // MARK: helpers

    static let specials: [Float] = [
        0, -0.0, .infinity, -.infinity, .nan, -Float.nan, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
        .leastNormalMagnitude, -.leastNormalMagnitude, .leastNormalMagnitude / 1024, -.leastNormalMagnitude / 1024,
        .leastNonzeroMagnitude, 1, -1, 0.5, -0.5,
        1.5, -1.5, 2.5, -2.5, 3, -3, 0.625, -0.625, 0.3465, -0.3467, 2, -2, 88.5, 88.72, 88.8, 89, 100, -87.3,
        -88, -100, -103.9, -104, -105, 8_388_607.5, -8_388_607.5, 8_388_608, 1e30, -1e30, 20, -20, 9.2, -9.2,
        14, -14, 1e-7, -1e-7, 0.9, 1e-3, -1e-3,
    ]

    /// A mix of moderate values, wide values, magnitudes over the whole float range, and specials.
    static func value(_ r: inout SplitMix64) -> Float {
        let c = r.below(100)
        if c < 50 { return r.uniform(-12, 12) }
        if c < 65 { return r.uniform(-110, 110) }
        if c < 85 {
            let m = Float(pow(10.0, Double(r.uniform(-44, 38))))
            return r.below(2) == 0 ? m : -m
        }
        return specials[r.below(specials.count)]
    }

    /// Levels with a vector variant on this CPU (empty when only the reference runs, e.g. on arm64).
    static var vectorLevels: [Int32] {
        let top = Int(so_isa_supported())
        return top >= 1 ? (1...top).map { Int32($0) } : []
    }

    static let sizes = [0, 1, 7, 15, 16, 17, 33, 47, 63, 1000, 4099]

    static func params(_ kind: Int) -> (Float, Float) {
        switch kind {
        case Int(SO_ACT_LEAKY_RELU): return (0.1, 0)
        case Int(SO_ACT_CLIP): return (-1.5, 2.25)
        case Int(SO_ACT_HARD_SIGMOID): return (0.2, 0.5)
        case Int(SO_ACT_ELU): return (1.3, 0)
        case Int(SO_ACT_SELU): return (1.67326319217681884765625, 1.05070102214813232421875)
        case Int(SO_ACT_CELU): return (0.7, 0)
        case Int(SO_ACT_THRESHOLDED_RELU): return (0.9, 0)
        case Int(SO_ACT_SWISH): return (1.702, 0)
        case Int(SO_ACT_RELU_AFFINE): return (0.8125, -0.3)
        case Int(SO_ACT_HARD_SWISH_AFFINE): return (1.1, 0.0625)
        default: return (0, 0)
        }
    }

    /// Kinds computed with polynomial approximations in the vector variants (the others are exact).
    static func approximate(_ kind: Int) -> Bool {
        let approx = [SO_ACT_SIGMOID, SO_ACT_TANH, SO_ACT_GELU, SO_ACT_GELU_TANH, SO_ACT_ELU, SO_ACT_SELU,
                      SO_ACT_CELU, SO_ACT_SWISH, SO_ACT_EXP, SO_ACT_ERF].map { Int($0) }
        return approx.contains(kind)
    }

    static func sameBits(_ g: Float, _ e: Float) -> Bool {
        (g.isNaN && e.isNaN) || g.bitPattern == e.bitPattern
    }

    static func close(_ kind: Int, _ g: Float, _ e: Float) -> Bool {
        if !approximate(kind) { return sameBits(g, e) }
        if g.isNaN || e.isNaN { return g.isNaN && e.isNaN }
        if g == e { return true }
        if !g.isFinite || !e.isFinite { return false }
        return abs(Double(g) - Double(e)) <= 1e-7 + 2e-6 * abs(Double(e))
    }

    /// n floats (+ 16 sentinel floats after them to catch writes past the end).
    final class Buffer {
        let count: Int
        let p: UnsafeMutablePointer<Float>
        static let sentinel = Float(bitPattern: 0x7FC0_1234)
        init(_ count: Int) {
            self.count = count
            p = .allocate(capacity: count + 16)
            p.initialize(repeating: 0, count: count)
            (p + count).initialize(repeating: Buffer.sentinel, count: 16)
        }
        deinit { p.deallocate() }
        var c: UnsafePointer<Float> { UnsafePointer(p) }
        subscript(i: Int) -> Float {
            get { p[i] }
            set { p[i] = newValue }
        }
        var tailIntact: Bool { (0..<16).allSatisfy { p[count + $0].bitPattern == Buffer.sentinel.bitPattern } }
        func copy(from o: Buffer) { p.update(from: o.p, count: min(count, o.count)) }
    }

    /// Collects mismatches, reports the first few.
    struct Mismatches {
        var count = 0
        var messages: [String] = []
        mutating func add(_ m: @autoclosure () -> String) {
            count += 1
            if messages.count < 8 { messages.append(m()) }
        }
        func report(_ what: String, file: StaticString = #filePath, line: UInt = #line) {
            if count > 0 {
                XCTFail("\(what): \(count) mismatches; first: \(messages.joined(separator: " | "))", file: file, line: line)
            }
        }
    }

    // MARK: unary activations, bias + residual + activation

    func testUnaryMatchesReference() {
        let ref = so_f32_unary_select(Int32(SO_ISA_SCALAR))!
        var rng = SplitMix64(seed: 1)
        var bad = Mismatches()
        for level in Self.vectorLevels {
            let fast = so_f32_unary_select(level)!
            for kind in 0..<Int(SO_ACT_COUNT) {
                let (a, b) = Self.params(kind)
                for n in Self.sizes {
                    let src = Buffer(n), want = Buffer(n), got = Buffer(n), inPlace = Buffer(n)
                    for i in 0..<n { src[i] = Self.value(&rng) }
                    ref(Int32(kind), src.c, want.p, n, a, b)
                    fast(Int32(kind), src.c, got.p, n, a, b)
                    inPlace.copy(from: src)
                    fast(Int32(kind), inPlace.c, inPlace.p, n, a, b)
                    for i in 0..<n {
                        if !Self.close(kind, got[i], want[i]) {
                            bad.add("kind \(kind) level \(level) n \(n) x \(src[i]): \(got[i]) vs \(want[i])")
                        }
                        if !Self.sameBits(inPlace[i], got[i]) { bad.add("kind \(kind) level \(level) n \(n) in place at \(i)") }
                    }
                    if !got.tailIntact || !inPlace.tailIntact { bad.add("kind \(kind) level \(level) n \(n) wrote past n") }
                }
            }
        }
        bad.report("unary")
    }

    func testBiasActMatchesReference() {
        let ref = so_f32_bias_act_select(Int32(SO_ISA_SCALAR))!
        var rng = SplitMix64(seed: 2)
        var bad = Mismatches()
        for level in Self.vectorLevels {
            let fast = so_f32_bias_act_select(level)!
            for kind in 0..<Int(SO_ACT_COUNT) {
                let (a, b) = Self.params(kind)
                for n in Self.sizes {
                    for withZ in [false, true] {
                        let p0 = Buffer(n), z = Buffer(n), want = Buffer(n), got = Buffer(n)
                        for i in 0..<n {
                            p0[i] = i % 9 == 0 ? Self.value(&rng) : rng.uniform(-8, 8)
                            z[i] = rng.uniform(-2, 2)
                        }
                        let bias: Float = withZ ? -0.25 : 0.75
                        want.copy(from: p0)
                        got.copy(from: p0)
                        ref(want.p, n, bias, withZ ? z.c : nil, Int32(kind), a, b)
                        fast(got.p, n, bias, withZ ? z.c : nil, Int32(kind), a, b)
                        for i in 0..<n where !Self.close(kind, got[i], want[i]) {
                            bad.add("kind \(kind) z \(withZ) level \(level) n \(n) i \(i): \(got[i]) vs \(want[i])")
                        }
                        if !got.tailIntact { bad.add("kind \(kind) level \(level) n \(n) wrote past n") }
                    }
                }
            }
        }
        bad.report("bias_act")
    }

    /// Special values of the reference itself (the vector variants are checked against it above).
    func testUnaryReferenceSemantics() {
        let ref = so_f32_unary_select(Int32(SO_ISA_SCALAR))!
        func run(_ kind: Int32, _ x: [Float], _ a: Float = 0, _ b: Float = 0) -> [Float] {
            var y = [Float](repeating: 0, count: x.count)
            x.withUnsafeBufferPointer { s in
                y.withUnsafeMutableBufferPointer { d in ref(kind, s.baseAddress!, d.baseAddress!, x.count, a, b) }
            }
            return y
        }
        // Round half to even, sign of zero kept.
        let r = run(Int32(SO_ACT_ROUND), [0.5, 1.5, 2.5, -0.5, -2.5, -0.3, 8_388_607.5, 3.7])
        XCTAssertEqual(r, [0, 2, 2, -0.0, -2, -0.0, 8_388_608, 4])
        XCTAssertTrue(r[3].sign == .minus && r[5].sign == .minus)
        // NaN propagates (relu, clip, sigmoid, tanh, exp, sign), thresholded_relu maps NaN to 0.
        for k in [SO_ACT_RELU, SO_ACT_CLIP, SO_ACT_SIGMOID, SO_ACT_TANH, SO_ACT_EXP, SO_ACT_SIGN, SO_ACT_GELU] {
            XCTAssertTrue(run(Int32(k), [.nan], -1, 1)[0].isNaN, "kind \(k)")
        }
        XCTAssertEqual(run(Int32(SO_ACT_THRESHOLDED_RELU), [.nan, 2, 0.5], 1), [0, 2, 0])
        XCTAssertEqual(run(Int32(SO_ACT_SIGN), [-0.0, 3, -2]), [0, 1, -1])
        XCTAssertEqual(run(Int32(SO_ACT_EXP), [.infinity, -.infinity, 100, -110]), [.infinity, 0, .infinity, 0])
        XCTAssertEqual(run(Int32(SO_ACT_ABS), [-0.0])[0].sign, .plus)
        // The affine kinds are the activation, then Mul, then Add, each rounded (no fma).
        let xs: [Float] = [-2, -0.5, 0.1, 1.7, 2.9, 3.5, 7]
        let (s, t): (Float, Float) = (1.1, -0.3)
        let hs = run(Int32(SO_ACT_HARD_SWISH), xs), rl = run(Int32(SO_ACT_RELU), xs)
        XCTAssertEqual(run(Int32(SO_ACT_HARD_SWISH_AFFINE), xs, s, t), hs.map { ($0 * s) + t })
        XCTAssertEqual(run(Int32(SO_ACT_RELU_AFFINE), xs, s, t), rl.map { ($0 * s) + t })
    }

    // MARK: binary arithmetic

    func testBinaryMatchesReference() {
        let ref = so_f32_binary_select(Int32(SO_ISA_SCALAR))!
        var rng = SplitMix64(seed: 3)
        var bad = Mismatches()
        let ops = [SO_BIN_ADD, SO_BIN_SUB, SO_BIN_MUL, SO_BIN_DIV, SO_BIN_MAX, SO_BIN_MIN].map { Int32($0) }
        for level in Self.vectorLevels {
            let fast = so_f32_binary_select(level)!
            for op in ops {
                for n in Self.sizes where n > 0 {
                    for (aStep, bStep) in [(1, 1), (1, 0), (0, 1)] {
                        let na = aStep == 1 ? n : 1, nb = bStep == 1 ? n : 1
                        let a = Buffer(na), b = Buffer(nb), want = Buffer(n), got = Buffer(n)
                        for i in 0..<na { a[i] = Self.value(&rng) }
                        for i in 0..<nb { b[i] = (i % 5 == 0 && i < na) ? a[i] : Self.value(&rng) }
                        if n > 3 && aStep == 1 && bStep == 1 { a[1] = -0.0; b[1] = 0; a[2] = 0; b[2] = -0.0 }
                        ref(op, a.c, aStep, b.c, bStep, want.p, n)
                        fast(op, a.c, aStep, b.c, bStep, got.p, n)
                        for i in 0..<n where !Self.sameBits(got[i], want[i]) {
                            bad.add("op \(op) steps \(aStep),\(bStep) level \(level) n \(n) i \(i): \(got[i]) vs \(want[i])")
                        }
                        if !got.tailIntact { bad.add("op \(op) level \(level) n \(n) wrote past n") }
                        // out aliasing an operand
                        let alias = Buffer(n)
                        alias.copy(from: a)
                        fast(op, alias.c, aStep, b.c, bStep, alias.p, n)
                        for i in 0..<n where !Self.sameBits(alias[i], want[i]) {
                            bad.add("op \(op) steps \(aStep),\(bStep) level \(level) n \(n) out = a, i \(i)")
                        }
                        alias.copy(from: b)
                        fast(op, a.c, aStep, alias.c, bStep, alias.p, n)
                        for i in 0..<n where !Self.sameBits(alias[i], want[i]) {
                            bad.add("op \(op) steps \(aStep),\(bStep) level \(level) n \(n) out = b, i \(i)")
                        }
                    }
                }
            }
        }
        bad.report("binary")
    }

    func testBinaryMaxMinNaNAndSignedZero() {
        let xs: [Float] = [.nan, 1, .nan, -0.0, 0, 2, -.infinity, 3]
        let ys: [Float] = [1, .nan, 4, 0, -0.0, 2, 5, .infinity]
        let a = Buffer(8), b = Buffer(8), mx = Buffer(8), mn = Buffer(8)
        for i in 0..<8 { a[i] = xs[i]; b[i] = ys[i] }
        for level in [Int32(SO_ISA_SCALAR)] + Self.vectorLevels {
            let f = so_f32_binary_select(level)!
            f(Int32(SO_BIN_MAX), a.c, 1, b.c, 1, mx.p, 8)
            f(Int32(SO_BIN_MIN), a.c, 1, b.c, 1, mn.p, 8)
            XCTAssertTrue(mx[0].isNaN && mx[1].isNaN && mx[2].isNaN, "max NaN, level \(level)")
            XCTAssertTrue(mn[0].isNaN && mn[1].isNaN && mn[2].isNaN, "min NaN, level \(level)")
            // Equal values give a: max(-0, +0) = -0, max(+0, -0) = +0.
            XCTAssertEqual(mx[3].sign, .minus, "level \(level)")
            XCTAssertEqual(mx[4].sign, .plus, "level \(level)")
            XCTAssertEqual([mx[5], mx[6], mx[7]], [2, 5, .infinity], "level \(level)")
            XCTAssertEqual([mn[5], mn[6], mn[7]], [2, -.infinity, 3], "level \(level)")
        }
    }

    // MARK: softmax

    func testSoftmaxMatchesReference() {
        let ref = so_f32_softmax_select(Int32(SO_ISA_SCALAR))!
        var rng = SplitMix64(seed: 4)
        var bad = Mismatches()
        for level in Self.vectorLevels {
            let fast = so_f32_softmax_select(level)!
            for log in [Int32(0), 1] {
                for n in Self.sizes {
                    for rows in [1, 4, 7] {
                        let total = rows * n
                        let x = Buffer(total), want = Buffer(total), got = Buffer(total), inPlace = Buffer(total)
                        for r in 0..<rows {
                            let pattern = (r + n + Int(log)) % 7
                            for i in 0..<n {
                                var v = rng.uniform(-20, 20)
                                switch pattern {
                                case 1: v += 10_000  // large offset: the max subtraction matters
                                case 2: if i % 3 == 0 { v = -.infinity }  // masked positions
                                case 3: if i == n / 2 { v = .nan }
                                case 4: if i == n / 3 { v = .infinity }
                                case 5: v = -.infinity
                                case 6: v = rng.uniform(-200, 200)
                                default: break
                                }
                                x[r * n + i] = v
                            }
                        }
                        ref(x.c, want.p, rows, n, log)
                        fast(x.c, got.p, rows, n, log)
                        inPlace.copy(from: x)
                        fast(inPlace.c, inPlace.p, rows, n, log)
                        // Rows one at a time give the same bits as rows taken together (short rows go four
                        // at a time, interleaved, with each row's own arithmetic unchanged).
                        let single = Buffer(total)
                        for r in 0..<rows { fast(x.c + r * n, single.p + r * n, 1, n, log) }
                        for i in 0..<total where !Self.sameBits(single[i], got[i]) {
                            bad.add("log \(log) level \(level) n \(n) rows \(rows): row \(i / n) alone differs at \(i % n)")
                        }
                        for i in 0..<total {
                            let g = got[i], e = want[i]
                            let ok: Bool
                            if g.isNaN || e.isNaN { ok = g.isNaN && e.isNaN }
                            else if g == e { ok = true }
                            else if !g.isFinite || !e.isFinite { ok = false }
                            else {
                                let d = abs(Double(g) - Double(e))
                                ok = log == 1 ? d <= 2e-6 + 2e-6 * abs(Double(e)) : d <= 1e-9 + 4e-6 * abs(Double(e))
                            }
                            if !ok { bad.add("log \(log) level \(level) n \(n) rows \(rows) i \(i): \(g) vs \(e)") }
                            if !Self.sameBits(inPlace[i], g) { bad.add("log \(log) level \(level) n \(n) in place at \(i)") }
                        }
                        if !got.tailIntact { bad.add("log \(log) level \(level) n \(n) wrote past the rows") }
                    }
                }
            }
        }
        bad.report("softmax")
    }

    // MARK: depthwise convolution

    /// Runs one geometry at every vector level against the reference; the conv sums are bit-identical
    /// (same fma order), so only the activation's approximation may differ.
    func checkDepthwise(_ g: so_dw_geom, act: Int, withZ: Bool, rng: inout SplitMix64, _ bad: inout Mismatches) {
        let ref = so_f32_dwconv2d_select(Int32(SO_ISA_SCALAR))!
        let inCount = Int(g.iH) * Int(g.iW), kCount = Int(g.kH) * Int(g.kW)
        let outCount = g.oH > 0 && g.oW > 0 ? Int(g.oH) * Int(g.oW) : 0
        let x = Buffer(inCount), w = Buffer(kCount), z = Buffer(outCount), want = Buffer(outCount)
        for i in 0..<inCount { x[i] = rng.uniform(-2, 2) }
        for i in 0..<kCount { w[i] = rng.uniform(-1, 1) }
        for i in 0..<outCount { z[i] = rng.uniform(-1, 1) }
        let bias = rng.uniform(-0.5, 0.5)
        let (a, b) = Self.params(act)
        withUnsafePointer(to: g) { gp in
            let bytes = so_f32_dwconv2d_scratch(gp)
            ref(gp, x.c, w.c, bias, withZ ? z.c : nil, Int32(act), a, b, want.p, nil)
            for level in Self.vectorLevels {
                let fast = so_f32_dwconv2d_select(level)!
                let got = Buffer(outCount)
                // Scratch only 16-byte aligned.
                let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes + 64, alignment: 64)
                defer { raw.deallocate() }
                fast(gp, x.c, w.c, bias, withZ ? z.c : nil, Int32(act), a, b, got.p, raw + 16)
                for i in 0..<outCount where !(Self.close(act, got[i], want[i]) || got[i] == want[i]) {
                    bad.add("level \(level) in \(g.iH)x\(g.iW) out \(g.oH)x\(g.oW) k \(g.kH)x\(g.kW) s \(g.sH),\(g.sW) "
                            + "d \(g.dH),\(g.dW) p \(g.pH),\(g.pW) act \(act) z \(withZ) at \(i): \(got[i]) vs \(want[i])")
                }
                if !got.tailIntact { bad.add("level \(level) k \(g.kH)x\(g.kW) wrote past the output plane") }
            }
        }
    }

    static func outDim(_ i: Int, _ k: Int, _ s: Int, _ d: Int, _ p0: Int, _ p1: Int) -> Int {
        let t = i + p0 + p1 - ((k - 1) * d + 1)
        return t < 0 ? 0 : t / s + 1
    }

    static func geom(_ iH: Int, _ iW: Int, _ oH: Int, _ oW: Int, _ kH: Int, _ kW: Int, _ sH: Int, _ sW: Int,
                     _ dH: Int, _ dW: Int, _ pH: Int, _ pW: Int) -> so_dw_geom {
        so_dw_geom(iH: Int32(iH), iW: Int32(iW), oH: Int32(oH), oW: Int32(oW), kH: Int32(kH), kW: Int32(kW),
                   sH: Int32(sH), sW: Int32(sW), dH: Int32(dH), dW: Int32(dW), pH: Int32(pH), pW: Int32(pW))
    }

    func testDepthwiseMatchesReference() {
        var rng = SplitMix64(seed: 5)
        var bad = Mismatches()
        // (wide rows too: more vectors away from the row ends)
        let planes = [(1, 1), (3, 5), (7, 9), (13, 17), (32, 32), (2, 40), (4, 67), (3, 130)]
        let kernels = [(1, 1), (3, 3), (5, 5), (3, 1), (7, 7), (1, 4)]
        var cycle = 0
        for (iH, iW) in planes {
            for (ki, (kH, kW)) in kernels.enumerated() {
                for s in 1...3 {
                    for d in 1...2 {
                        for p in [0, 1, 3] {
                            let sW = s == 3 && iH % 2 == 1 ? 1 : s   // also mixed strides
                            let dW = d == 2 && ki % 2 == 1 ? 1 : d   // and mixed dilations
                            let pW = (p + ki) % 4
                            let eH = rng.below(4), eW = rng.below(4)  // end pads
                            let g = Self.geom(iH, iW, Self.outDim(iH, kH, s, d, p, eH), Self.outDim(iW, kW, sW, dW, pW, eW),
                                              kH, kW, s, sW, d, dW, p, pW)
                            checkDepthwise(g, act: Int(SO_ACT_IDENTITY), withZ: false, rng: &rng, &bad)
                            checkDepthwise(g, act: cycle % Int(SO_ACT_COUNT), withZ: cycle % 2 == 1, rng: &rng, &bad)
                            cycle += 1
                        }
                    }
                }
            }
        }
        bad.report("depthwise")
    }

    /// Every activation, with and without a residual, on mobile-net-like planes (3x3 / 5x5 / 7x7, strides 1 and 2),
    /// and degenerate geometries: no output rows, pads larger than the plane, 1x1 outputs.
    func testDepthwiseEpilogueAndEdgeCases() {
        var rng = SplitMix64(seed: 6)
        var bad = Mismatches()
        let planes = [
            Self.geom(32, 32, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1), Self.geom(33, 31, 17, 16, 3, 3, 2, 2, 1, 1, 1, 1),
            Self.geom(20, 20, 20, 20, 5, 5, 1, 1, 1, 1, 2, 2), Self.geom(21, 19, 11, 10, 5, 5, 2, 2, 1, 1, 2, 2),
            Self.geom(14, 14, 14, 14, 7, 7, 1, 1, 1, 1, 3, 3), Self.geom(9, 70, 9, 70, 5, 5, 1, 1, 1, 1, 2, 2),
            Self.geom(6, 112, 6, 112, 3, 3, 1, 1, 1, 1, 1, 1),
        ]
        for g in planes {
            for act in 0..<Int(SO_ACT_COUNT) {
                for withZ in [false, true] { checkDepthwise(g, act: act, withZ: withZ, rng: &rng, &bad) }
            }
        }
        let degenerate = [
            Self.geom(5, 5, 0, 5, 3, 3, 1, 1, 1, 1, 1, 1), Self.geom(1, 1, 7, 7, 1, 1, 1, 1, 1, 1, 3, 3),
            Self.geom(1, 1, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1), Self.geom(2, 2, 1, 1, 3, 3, 2, 2, 1, 1, 1, 1),
            Self.geom(4, 4, 9, 9, 1, 1, 1, 1, 1, 1, 5, 5), Self.geom(3, 3, 3, 3, 3, 3, 1, 1, 2, 2, 2, 2),
        ]
        for g in degenerate {
            for withZ in [false, true] { checkDepthwise(g, act: Int(SO_ACT_RELU), withZ: withZ, rng: &rng, &bad) }
        }
        bad.report("depthwise epilogue / edge cases")
    }

    /// The channel-blocked kernel at every level (and the reference form) on `nc` planes against the
    /// per-plane reference (activation tolerance) and the per-plane kernel of the same level (same bits):
    /// channel counts around the block width, planes not 16-float aligned apart, bias absent or present.
    func checkDepthwiseBlocked(_ g: so_dw_geom, nc: Int, act: Int, withZ: Bool, withBias: Bool,
                               rng: inout SplitMix64, _ bad: inout Mismatches) {
        let ref = so_f32_dwconv2d_select(Int32(SO_ISA_SCALAR))!
        let inPlane = Int(g.iH) * Int(g.iW), xStride = inPlane + 3, kCount = Int(g.kH) * Int(g.kW)
        let plane = g.oH > 0 && g.oW > 0 ? Int(g.oH) * Int(g.oW) : 0
        let x = Buffer(nc * xStride), w = Buffer(nc * kCount), z = Buffer(nc * plane), bias = Buffer(nc)
        let want = Buffer(nc * plane)
        for i in 0..<(nc * xStride) { x[i] = rng.uniform(-2, 2) }
        for i in 0..<(nc * kCount) { w[i] = rng.uniform(-1, 1) }
        for i in 0..<(nc * plane) { z[i] = rng.uniform(-1, 1) }
        for i in 0..<nc { bias[i] = withBias ? rng.uniform(-0.5, 0.5) : 0 }
        let (a, b) = Self.params(act)
        withUnsafePointer(to: g) { gp in
            for ch in 0..<nc {
                ref(gp, x.c + ch * xStride, w.c + ch * kCount, bias[ch], withZ ? z.c + ch * plane : nil, Int32(act), a, b,
                    want.p + ch * plane, nil)
            }
            for level in [Int32(SO_ISA_SCALAR)] + Self.vectorLevels {
                let blocked = so_f32_dwconv2d_cb_select(level).pointee
                let plain = so_f32_dwconv2d_select(level)!
                let same = Buffer(nc * plane), got = Buffer(nc * plane)
                let bytes = max(blocked.scratch(gp), so_f32_dwconv2d_scratch(gp))
                let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes + 64, alignment: 64)
                defer { raw.deallocate() }
                for ch in 0..<nc {
                    plain(gp, x.c + ch * xStride, w.c + ch * kCount, bias[ch], withZ ? z.c + ch * plane : nil, Int32(act),
                          a, b, same.p + ch * plane, raw + 16)
                }
                blocked.run(gp, nc, x.c, xStride, w.c, withBias ? bias.c : nil, withZ ? z.c : nil, Int32(act), a, b,
                            got.p, raw + 16)
                let where_ = "level \(level) nc \(nc) in \(g.iH)x\(g.iW) out \(g.oH)x\(g.oW) k \(g.kH)x\(g.kW) "
                    + "s \(g.sH),\(g.sW) d \(g.dH),\(g.dW) p \(g.pH),\(g.pW) act \(act) z \(withZ)"
                for i in 0..<(nc * plane) {
                    if !(Self.close(act, got[i], want[i]) || got[i] == want[i]) {
                        bad.add("\(where_) at \(i): \(got[i]) vs reference \(want[i])")
                    } else if !Self.sameBits(got[i], same[i]) && !(got[i].isNaN && same[i].isNaN) {
                        bad.add("\(where_) at \(i): \(got[i]) vs per-plane \(same[i])")
                    }
                }
                if !got.tailIntact { bad.add("\(where_) wrote past the output planes") }
            }
        }
    }

    func testDepthwiseBlockedMatchesPerPlane() {
        var rng = SplitMix64(seed: 7)
        var bad = Mismatches()
        let planes = [(1, 1), (3, 5), (7, 7), (14, 14), (13, 17), (2, 40), (28, 28)]
        let kernels = [(3, 3), (5, 5), (1, 1), (7, 7), (3, 1), (2, 4)]
        let channels = [1, 7, 8, 9, 16, 17, 33]
        var cycle = 0
        for (iH, iW) in planes {
            for (ki, (kH, kW)) in kernels.enumerated() {
                for s in 1...3 {
                    for p in [0, 1, 3] {
                        let d = cycle % 3 == 2 ? 2 : 1
                        let sW = s == 3 && iH % 2 == 1 ? 1 : s
                        let pW = (p + ki) % 4
                        let eH = rng.below(4), eW = rng.below(4)
                        let g = Self.geom(iH, iW, Self.outDim(iH, kH, s, d, p, eH), Self.outDim(iW, kW, sW, d, pW, eW),
                                          kH, kW, s, sW, d, d, p, pW)
                        checkDepthwiseBlocked(g, nc: channels[cycle % channels.count], act: cycle % Int(SO_ACT_COUNT),
                                              withZ: cycle % 2 == 1, withBias: cycle % 3 != 0, rng: &rng, &bad)
                        cycle += 1
                    }
                }
            }
        }
        let degenerate = [
            Self.geom(5, 5, 0, 5, 3, 3, 1, 1, 1, 1, 1, 1), Self.geom(1, 1, 7, 7, 1, 1, 1, 1, 1, 1, 3, 3),
            Self.geom(2, 2, 1, 1, 3, 3, 2, 2, 1, 1, 1, 1), Self.geom(4, 4, 9, 9, 1, 1, 1, 1, 1, 1, 5, 5),
            Self.geom(3, 3, 3, 3, 3, 3, 1, 1, 2, 2, 2, 2), Self.geom(6, 6, 2, 2, 3, 3, 1, 1, 1, 1, 0, 0),
        ]
        for g in degenerate {
            for nc in [1, 9] {
                checkDepthwiseBlocked(g, nc: nc, act: Int(SO_ACT_RELU), withZ: nc == 9, withBias: true, rng: &rng, &bad)
            }
        }
        bad.report("blocked depthwise")
    }

    /// The reference against a direct evaluation in Double (taps, padding, bias, residual).
    func testDepthwiseReferenceValues() {
        let ref = so_f32_dwconv2d_select(Int32(SO_ISA_SCALAR))!
        // 3x4 input, 2x2 kernel, stride (1, 2), dilation (2, 1), pads (1, 1): output 2x3.
        let g = Self.geom(3, 4, 2, 3, 2, 2, 1, 2, 2, 1, 1, 1)
        let x = Buffer(12), w = Buffer(4), z = Buffer(6), out = Buffer(6)
        for i in 0..<12 { x[i] = Float(i) - 5 }
        let ws: [Float] = [0.5, -1, 2, 0.25]
        for i in 0..<4 { w[i] = ws[i] }
        for i in 0..<6 { z[i] = Float(i + 1) }
        withUnsafePointer(to: g) { gp in ref(gp, x.c, w.c, 0.125, z.c, Int32(SO_ACT_IDENTITY), 0, 0, out.p, nil) }
        var expected = [Float]()
        for oh in 0..<2 {
            for ow in 0..<3 {
                var acc = 0.125
                for kh in 0..<2 {
                    for kw in 0..<2 {
                        let ih = oh - 1 + kh * 2, iw = ow * 2 - 1 + kw
                        if ih >= 0 && ih < 3 && iw >= 0 && iw < 4 { acc += Double(x[ih * 4 + iw]) * Double(ws[kh * 2 + kw]) }
                    }
                }
                expected.append(Float(acc + Double(z[oh * 3 + ow])))
            }
        }
        XCTAssertEqual((0..<6).map { out[$0] }, expected)
    }
}
