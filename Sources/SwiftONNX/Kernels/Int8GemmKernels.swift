import CKernels

// The integer GEMM family (Sources/CKernels/i8_gemm.c): u8 activations x s8 weights -> exact int32,
// then requantization to 8 bits. Drivers for quantized convolutions and matrix products.

/// The integer GEMM micro-kernel family chosen for this CPU (static const C data, never written).
nonisolated(unsafe) let i8Gemm: UnsafePointer<so_i8_gemm> = so_i8_gemm_select(selectedISA)

/// Signed 8-bit weights (m rows of k), packed once for the integer GEMM with each row's zero
/// point subtracted. Shared by every plan of a session (`OpContext.prepare`).
final class Int8PackedWeights: Sendable {
    let m: Int, k: Int
    private let buffer: FloatBuffer
    /// Bytes between consecutive panels of `mr` rows.
    let panelStride: Int
    /// The rows' zero points, nil when all are 0 (a raw variant applies them in its macro).
    let zeroPoints: [Int32]?
    var pointer: UnsafeRawPointer { UnsafeRawPointer(buffer.data) }

    /// `weights[i * k + kk]`; `zeroPoints` nil (all 0) or one per row. Throws `memoryLimitExceeded`.
    init(m: Int, k: Int, weights: UnsafePointer<Int8>, zeroPoints: [Int32]?) throws {
        self.m = m
        self.k = k
        let g = i8Gemm.pointee
        let bytes = so_i8_gemm_packed_a_bytes(i8Gemm, m, k)
        buffer = try FloatBuffer(count: (bytes + 3) / 4)
        let kpad = (k + Int(g.kg) - 1) / Int(g.kg) * Int(g.kg)
        panelStride = Int(g.mr) * kpad * Int(g.elem_a)
        self.zeroPoints = zeroPoints.flatMap { $0.allSatisfy { $0 == 0 } ? nil : $0 }
        if let zeroPoints {
            zeroPoints.withUnsafeBufferPointer { g.pack_a(m, k, weights, k, 1, $0.baseAddress!, buffer.data) }
        } else {
            g.pack_a(m, k, weights, k, 1, nil, buffer.data)
        }
    }
}

/// How an integer matrix product's int32 results become 8-bit outputs, row by row:
/// y = clamp(round_half_even((acc + bias[i]) * scale[i]) + zeroPoint, lo, hi).
struct Int8Requantization {
    var bias: UnsafePointer<Int32>?
    var scale: UnsafePointer<Float>
    var zeroPoint: Int32
    var lo: Int32, hi: Int32
    var signedOutput: Bool
}

/// Geometry of a 2-D convolution of one image (NCHW), group 1.
struct Int8ConvGeometry: Equatable {
    var c: Int, h: Int, w: Int
    var m: Int, kh: Int, kw: Int
    var sh: Int, sw: Int, dh: Int, dw: Int
    var padTop: Int, padLeft: Int
    var oh: Int, ow: Int

    var isPointwise: Bool { kh == 1 && kw == 1 && sh == 1 && sw == 1 && padTop == 0 && padLeft == 0 && oh == h && ow == w }
}

/// Block sizes of the integer GEMM driver: k-blocks of `kc` (a multiple of every variant's group),
/// `mc` rows of weights per block (a multiple of every variant's panel rows), columns in blocks of
/// `nc` (a multiple of every variant's panel columns) handed to the threads.
private let int8KC = 512, int8MC = 96, int8NC = 96
/// Column blocks whose patches one gather makes.
private let int8PatchBlocks = 8

/// Where an integer product's m x n int32 results go: requantized to 8 bits (row stride `ldy`
/// bytes), or stored as they are (row stride `ldy` values). Both pointers address column 0 of row 0.
enum Int8GemmOutput {
    case requantized(Int8Requantization, UnsafeMutableRawPointer, ldy: Int)
    case int32(UnsafeMutablePointer<Int32>, ldy: Int)
}

/// Where the integer GEMM's right-hand side B (k x n, u8) comes from: a matrix (rows `ldb` apart),
/// or the patches of an image under each output position of a convolution, gathered a few blocks of
/// columns at a time (`int8PatchBlocks`) into a buffer that stays in cache while it is packed (no
/// k x n copy; fewer, longer runs per gather than block by block).
enum Int8GemmSource {
    case matrix(UnsafePointer<UInt8>, ldb: Int)
    /// B = Xᵀ for a row-major X of n rows of k (rows `ldx` apart): column j of B is row j of X.
    case rows(UnsafePointer<UInt8>, ldx: Int)
    case patches(UnsafePointer<UInt8>, Int8ConvGeometry, fill: UInt8)
}

/// out = W (packed) x (B - bzp), B (k x n). Column blocks run on up to `threads` threads.
func int8Gemm(_ w: Int8PackedWeights, _ source: Int8GemmSource, n: Int, bzp: Int32, _ out: Int8GemmOutput, threads: Int) {
    let g = i8Gemm.pointee
    let m = w.m, k = w.k
    let mr = Int(g.mr), nr = Int(g.nr), kg = Int(g.kg)
    let blocks = (n + int8NC - 1) / int8NC
    let kcMax = min(int8KC, (k + kg - 1) / kg * kg)
    let pbBytes = so_i8_gemm_packed_b_bytes(i8Gemm, kcMax, int8NC)
    let isa = selectedISA
    let azp = w.zeroPoints
    // Each thread takes a contiguous run of column blocks and keeps its packing and accumulator
    // buffers for all of them.
    let workers = max(1, min(threads, blocks))
    parallelFor(workers, threads: workers) { t in
        let first = blocks * t / workers, last = blocks * (t + 1) / workers
        if first >= last { return }
        let pb = UnsafeMutableRawPointer.allocate(byteCount: pbBytes, alignment: 64)
        var accBuffer: UnsafeMutablePointer<Int32>? = nil
        if case .requantized = out { accBuffer = .allocate(capacity: m * int8NC) }
        let gatherWidth = min(int8PatchBlocks * int8NC, n - first * int8NC)
        var patches: UnsafeMutablePointer<UInt8>? = nil
        if case .patches = source { patches = .allocate(capacity: max(k * gatherWidth, 1)) }
        defer { pb.deallocate(); accBuffer?.deallocate(); patches?.deallocate() }
        var gathered = (start: 0, width: 0)   // the positions whose patches are in `patches`
        for blk in first..<last {
            let q0 = blk * int8NC, nb = min(int8NC, n - q0)
            // this block's columns of B: element (kk, j) at b[kk * rs + j * cs]
            let (b, rs, cs): (UnsafePointer<UInt8>, Int, Int)
            switch source {
            case .matrix(let x, let ld): (b, rs, cs) = (x + q0, ld, 1)
            case .rows(let x, let ld): (b, rs, cs) = (x + q0 * ld, 1, ld)
            case .patches(let x, let geo, let fill):
                if q0 + nb > gathered.start + gathered.width {
                    let width = min(gatherWidth, last * int8NC - q0, n - q0)
                    so_u8_im2col(x, geo.c, geo.h, geo.w, geo.kh, geo.kw, geo.sh, geo.sw, geo.dh, geo.dw, geo.padTop, geo.padLeft,
                                 geo.oh, geo.ow, fill, q0, q0 + width, patches!)
                    gathered = (q0, width)
                }
                (b, rs, cs) = (UnsafePointer(patches! + (q0 - gathered.start)), gathered.width, 1)
            }
            // int32 results go straight to the output; 8-bit ones through the accumulators.
            let (acc, ldc): (UnsafeMutablePointer<Int32>, Int)
            switch out {
            case .requantized: (acc, ldc) = (accBuffer!, nb)
            case .int32(let y, let ldy): (acc, ldc) = (y + q0, ldy)
            }
            var k0 = 0
            while k0 < k {
                let kc = min(kcMax, k - k0)
                let kcpad = (kc + kg - 1) / kg * kg
                g.pack_b(kc, nb, b + k0 * rs, rs, cs, bzp, pb)
                var m0 = 0
                while m0 < m {
                    let mc = min(int8MC, m - m0)
                    let pa = w.pointer + (m0 / mr) * w.panelStride + k0 * mr * Int(g.elem_a)
                    let c = acc + m0 * ldc, first: Int32 = k0 == 0 ? 0 : 1
                    // the last k-block of 8-bit outputs: requantized by the macro, as its tiles finish
                    var rqc: so_i8_requant? = nil
                    if k0 + kc == k, case .requantized(let rq, let y, let ldy) = out {
                        rqc = so_i8_requant(bias: rq.bias.map { $0 + m0 }, scale: rq.scale + m0, yzp: rq.zeroPoint, lo: rq.lo,
                                            hi: rq.hi, is_signed: rq.signedOutput ? 1 : 0, y: y + m0 * ldy + q0, ldy: ldy)
                    }
                    func call(_ rqPointer: UnsafePointer<so_i8_requant>?) {
                        if let azp {
                            azp.withUnsafeBufferPointer {
                                g.macro(mc, nb, kc, pa, w.panelStride, pb, nr * kcpad * Int(g.elem_b), $0.baseAddress! + m0, bzp,
                                        c, ldc, first, rqPointer)
                            }
                        } else {
                            g.macro(mc, nb, kc, pa, w.panelStride, pb, nr * kcpad * Int(g.elem_b), nil, bzp, c, ldc, first, rqPointer)
                        }
                    }
                    if var r = rqc { withUnsafePointer(to: &r) { call($0) } } else { call(nil) }
                    m0 += mc
                }
                k0 += kc
            }
            if k == 0, case .int32(let y, let ldy) = out {
                for i in 0..<m { (y + i * ldy + q0).update(repeating: 0, count: nb) }
            }
            if k == 0, case .requantized(let rq, let y, let ldy) = out {
                acc.update(repeating: 0, count: m * nb)
                so_i8_requantize(m, nb, acc, nb, rq.bias, rq.scale, rq.zeroPoint, rq.lo, rq.hi, rq.signedOutput ? 1 : 0,
                                 y + q0, ldy, isa)
            }
        }
    }
}

/// One image's 2-D convolution (group 1) on u8 activations x (c x h x w) with zero point xzp:
/// out (m x oh x ow, rows oh * ow apart) = conv. Pointwise convolutions read x in place; others
/// gather their patches block by block (padding reads as the zero point, so it adds nothing).
func int8Conv2D(x: UnsafePointer<UInt8>, xzp: Int32, _ geo: Int8ConvGeometry, _ w: Int8PackedWeights,
                _ out: Int8GemmOutput, threads: Int) {
    let n = geo.oh * geo.ow
    let source: Int8GemmSource = geo.isPointwise ? .matrix(x, ldb: n) : .patches(x, geo, fill: UInt8(truncatingIfNeeded: xzp))
    int8Gemm(w, source, n: n, bzp: xzp, out, threads: threads)
}

/// (X - xzp) · (B - bzp) for X (rows x k of u8, rows `ldx` apart) and the packed weights holding Bᵀ
/// (w.m = B's columns): `out` receives the transpose, w.m x rows (its row j is column j of the product).
func int8MatMulTransposed(x: UnsafePointer<UInt8>, rows: Int, ldx: Int, xzp: Int32, _ w: Int8PackedWeights,
                          _ out: Int8GemmOutput, threads: Int) {
    int8Gemm(w, .rows(x, ldx: ldx), n: rows, bzp: xzp, out, threads: threads)
}

/// Depthwise filters (one kh x kw filter per channel, multiplier 1) minus their zero points, as
/// floats: the integer depthwise convolution runs on the float depthwise kernel, exactly. Every
/// product (|x - xzp| <= 255 times |w - wzp| <= 255) and every partial sum of at most
/// `maxTaps` of them is an integer below 2^24, which float32 holds exactly, so the float sums are
/// the integer sums whatever the order of the additions.
///
/// Where every filter value minus its zero point fits a signed byte (symmetric s8 weights, as the
/// quantization tools make) and the CPU has AVX-512 VNNI, the filters are also packed for the direct
/// integer kernel (`so_i8_dwconv`), which the convolution then runs on instead.
final class Int8DepthwiseWeights: Sendable {
    static let maxTaps = (1 << 24) / (255 * 255)
    let c: Int, kh: Int, kw: Int
    let taps: [Float]
    /// The filters packed for `so_i8_dwconv` (nil: the float kernel runs), and each one's sum.
    let packed: [Int8]?
    let sums: [Int32]

    /// `weights[ch * kh * kw + t]` (signed or unsigned bytes), zero points nil (0) or one per channel.
    init?(c: Int, kh: Int, kw: Int, weights: [Int32], zeroPoints: [Int32]?, isa: Int32 = selectedISA) {
        guard kh * kw <= Self.maxTaps, weights.count == c * kh * kw else { return nil }
        self.c = c; self.kh = kh; self.kw = kw
        let per = kh * kw
        let differences = weights.enumerated().map { $0.element - (zeroPoints?[$0.offset / per] ?? 0) }
        taps = differences.map { Float($0) }
        sums = (0..<c).map { ch in differences[ch * per..<(ch + 1) * per].reduce(0, +) }
        if so_i8_dwconv_fast(isa, nil) != 0, differences.allSatisfy({ $0 >= -128 && $0 <= 127 }) {
            let bytes = differences.map { Int8($0) }
            packed = [Int8](unsafeUninitializedCapacity: so_i8_dwconv_packed_bytes(c, kh, kw)) { buf, n in
                so_i8_dwconv_pack(c, kh, kw, bytes, buf.baseAddress)
                n = buf.count
            }
        } else {
            packed = nil
        }
    }
}

/// One image's depthwise 2-D convolution (geo.c == geo.m, one filter per channel) on 8-bit
/// activations x (signed or unsigned, zero point xzp): out row ch = the channel's output plane.
/// Each plane is converted to exact floats (x - xzp), convolved by the float depthwise kernel with
/// zero padding (the zero point's value), and its sums turned back into integers.
func int8DepthwiseConv2D(x: UnsafeRawPointer, xSigned: Bool, xzp: Int32, _ geo: Int8ConvGeometry,
                         _ w: Int8DepthwiseWeights, _ out: Int8GemmOutput, threads: Int) {
    var geom = so_dw_geom(iH: Int32(geo.h), iW: Int32(geo.w), oH: Int32(geo.oh), oW: Int32(geo.ow),
                          kH: Int32(geo.kh), kW: Int32(geo.kw), sH: Int32(geo.sh), sW: Int32(geo.sw),
                          dH: Int32(geo.dh), dW: Int32(geo.dw), pH: Int32(geo.padTop), pW: Int32(geo.padLeft))
    let inPlane = geo.h * geo.w, outPlane = geo.oh * geo.ow, taps = geo.kh * geo.kw
    let kernelScratch = so_f32_dwconv2d_scratch(&geom)
    // Scratch per thread: the float input plane, the float sums, their int32 values, the kernel's own.
    let floatsBytes = (inPlane + outPlane) * 4, accBytes = outPlane * 4
    let scratchBytes = floatsBytes + accBytes + kernelScratch + 64
    let c = geo.c, isa = selectedISA
    let chunks = threads > 1 && c > 1 && c * outPlane * taps >= depthwiseParallelMinFlops ? min(threads, c) : 1
    if let packed = w.packed, so_i8_dwconv_fast(isa, &geom) != 0 {
        // The direct integer kernel: padding reads the zero point, whose products the
        // per-channel correction -zp * sum takes away.
        let zp = xSigned ? xzp + 128 : xzp
        let corr = w.sums.map { -zp &* $0 }
        let bytes = so_i8_dwconv_scratch(&geom)
        let xb = x.assumingMemoryBound(to: UInt8.self)
        packed.withUnsafeBufferPointer { pk in
            corr.withUnsafeBufferPointer { cr in
                parallelFor(chunks, threads: chunks) { t in
                    let lo = c * t / chunks, hi = c * (t + 1) / chunks
                    guard hi > lo else { return }
                    ScratchPool.shared.with(bytes: bytes) { scratch in
                        var gm = geom
                        let wp = pk.baseAddress! + lo * (pk.count / c)
                        switch out {
                        case .int32(let y, let ldy):
                            so_i8_dwconv(isa, &gm, hi - lo, xb + lo * inPlane, inPlane, xSigned ? 1 : 0, UInt8(zp), wp,
                                         cr.baseAddress! + lo, y + lo * ldy, ldy, nil, scratch)
                        case .requantized(let rq, let y, let ldy):
                            var r = so_i8_requant(bias: rq.bias.map { $0 + lo }, scale: rq.scale + lo, yzp: rq.zeroPoint,
                                                  lo: rq.lo, hi: rq.hi, is_signed: rq.signedOutput ? 1 : 0,
                                                  y: y + lo * ldy, ldy: ldy)
                            so_i8_dwconv(isa, &gm, hi - lo, xb + lo * inPlane, inPlane, xSigned ? 1 : 0, UInt8(zp), wp,
                                         cr.baseAddress! + lo, nil, 0, &r, scratch)
                        }
                    }
                }
            }
        }
        return
    }
    let kernel = f32DepthwiseConv2D
    let blocked = f32DepthwiseConv2DBlocked
    /// Float sums of planes [c0, c0 + nc) at `yf` (nc planes) back to integers, then to `out`.
    func finish(_ yf: UnsafeMutablePointer<Float>, _ c0: Int, _ nc: Int, _ acc: UnsafeMutablePointer<Int32>) {
        switch out {
        case .int32(let y, let ldy):
            for j in 0..<nc { so_f32_to_i32(yf + j * outPlane, outPlane, y + (c0 + j) * ldy, isa) }
        case .requantized(let rq, let y, let ldy):
            for j in 0..<nc {
                so_f32_to_i32(yf + j * outPlane, outPlane, acc, isa)
                so_i8_requantize(1, outPlane, acc, outPlane, rq.bias.map { $0 + c0 + j }, rq.scale + c0 + j, rq.zeroPoint,
                                 rq.lo, rq.hi, rq.signedOutput ? 1 : 0, y + (c0 + j) * ldy, ldy, isa)
            }
        }
    }
    if depthwiseBlockedWins(geom) {
        // Small or strided planes: `lanes` channels at a time on the channel-blocked kernel.
        let lanes = Int(blocked.lanes)
        let blocks = (c + lanes - 1) / lanes
        let bChunks = min(chunks, blocks)
        let blockBytes = lanes * (inPlane + outPlane) * 4 + accBytes + blocked.scratch(&geom) + 64
        w.taps.withUnsafeBufferPointer { wt in
            let wp = wt.baseAddress!
            parallelFor(bChunks, threads: bChunks) { t in
                ScratchPool.shared.with(bytes: blockBytes) { scratch in
                    let xf = scratch.assumingMemoryBound(to: Float.self)
                    let yf = xf + lanes * inPlane
                    let acc = (scratch + lanes * (inPlane + outPlane) * 4).assumingMemoryBound(to: Int32.self)
                    let ks = scratch + lanes * (inPlane + outPlane) * 4 + accBytes
                    var gm = geom
                    for blk in (blocks * t / bChunks)..<(blocks * (t + 1) / bChunks) {
                        let c0 = blk * lanes, nc = min(lanes, c - c0)
                        so_q8_dequantize(x + c0 * inPlane, nc * inPlane, 1, xzp, xSigned ? 1 : 0, xf, isa)
                        blocked.run(&gm, nc, xf, inPlane, wp + c0 * taps, nil, nil, Int32(SO_ACT_IDENTITY), 0, 0, yf, ks)
                        finish(yf, c0, nc, acc)
                    }
                }
            }
        }
        return
    }
    w.taps.withUnsafeBufferPointer { wt in
        let wp = wt.baseAddress!
        parallelFor(chunks, threads: chunks) { t in
            let lo = c * t / chunks, hi = c * (t + 1) / chunks
            ScratchPool.shared.with(bytes: scratchBytes) { scratch in
                let xf = scratch.assumingMemoryBound(to: Float.self)
                let yf = xf + inPlane
                let acc = (scratch + floatsBytes).assumingMemoryBound(to: Int32.self)
                let ks = scratch + floatsBytes + accBytes
                var gm = geom
                for ch in lo..<hi {
                    so_q8_dequantize(x + ch * inPlane, inPlane, 1, xzp, xSigned ? 1 : 0, xf, isa)
                    kernel(&gm, xf, wp + ch * taps, 0, nil, Int32(SO_ACT_IDENTITY), 0, 0, yf, kernelScratch > 0 ? ks : nil)
                    finish(yf, ch, 1, acc)
                }
            }
        }
    }
}

/// Each row's sum of a rows x k matrix of signed weights (wrapping, as the kernels' sums).
func int8RowSums(_ weights: UnsafePointer<Int8>, rows: Int, k: Int) -> [Int32] {
    (0..<rows).map { i in (0..<k).reduce(Int32(0)) { $0 &+ Int32(weights[i * k + $1]) } }
}

/// The bias that also takes away the activations' zero point from a direct convolution's sums,
/// per output channel: bias[i] - zp * (channel's weight sum) (bias nil: 0). The padding holds zp,
/// so this is exact.
func zeroPointBias(_ zp: Int32, _ rowSums: [Int32], _ bias: UnsafePointer<Int32>?) -> [Int32] {
    rowSums.indices.map { (bias?[$0] ?? 0) &- zp &* rowSums[$0] }
}

/// Weights of a convolution (group 1, zero point 0) packed for the direct integer kernel
/// (`so_i8_conv_pack`), with each output channel's weight sum (for the activations' zero point).
/// Shared by every plan of a session (`OpContext.prepare`).
final class Int8DirectConvWeights: Sendable {
    let m: Int, c: Int, kh: Int, kw: Int
    private let buffer: FloatBuffer
    let rowSums: [Int32]
    /// Bytes of one panel of 8 output channels.
    let panelBytes: Int
    var pointer: UnsafePointer<Int8> { UnsafeRawPointer(buffer.data).assumingMemoryBound(to: Int8.self) }

    /// Whether the direct kernel is used for these shapes on this CPU: every sum fits int32
    /// (k * 255 * 128 < 2^31), and the kernel has a fast variant here.
    static func applies(c: Int, kh: Int, kw: Int) -> Bool {
        (c + 3) / 4 * 4 * kh * kw < 65_000 && so_i8_conv_direct_fast(selectedISA) != 0
    }

    /// `weights` m x c x kh x kw signed bytes (zero point 0). Throws `memoryLimitExceeded`.
    init(m: Int, c: Int, kh: Int, kw: Int, weights: UnsafePointer<Int8>) throws {
        self.m = m; self.c = c; self.kh = kh; self.kw = kw
        let taps = kh * kw
        let bytes = so_i8_conv_packed_bytes(m, c, taps)
        buffer = try FloatBuffer(count: (bytes + 3) / 4)
        panelBytes = taps * ((c + 3) / 4) * 32
        so_i8_conv_pack(m, c, taps, weights, UnsafeMutableRawPointer(buffer.data).assumingMemoryBound(to: Int8.self))
        let k = c * taps
        rowSums = int8RowSums(weights, rows: m, k: k)
    }
}

/// Padded positions per block of the direct convolution, and output channels per call.
private let directBlock = 96, directChannels = 64

/// One image's convolution by the direct kernel: x (c x h x w bytes, signed when `flip`, zero point
/// `xzp` of its own type), results as `out` says (m x oh * ow). The image is rewritten once as quad
/// planes (padding holding the zero point), one set per phase of a strided convolution (see
/// so_i8_conv.h); blocks of positions and of output channels run on up to `threads` threads.
func int8DirectConv2D(x: UnsafePointer<UInt8>, flip: Bool, xzp: Int32, _ geo: Int8ConvGeometry, _ w: Int8DirectConvWeights,
                      _ out: Int8GemmOutput, threads: Int) {
    precondition(geo.c == w.c && geo.m == w.m && geo.kh == w.kh && geo.kw == w.kw && geo.sh >= 1 && geo.sw >= 1)
    let zp = flip ? xzp + 128 : xzp   // in the unsigned domain
    let ph = Int8ConvPhases(geo)
    let wp = ph.wp, cq = (geo.c + 3) / 4, planeBytes = ph.hp * wp * 4, phaseBytes = cq * planeBytes
    let quads = UnsafeMutablePointer<UInt8>.allocate(capacity: ph.phases.count * phaseBytes + Int(SO_I8_CONV_SLACK))
    defer { quads.deallocate() }
    ph.writeQuads(x, geo, fill: zp, flip: flip, quads)
    // one step per tap and channel quad: its byte offset from a position's bytes in the first plane
    var offs = [Int]()
    for t in 0..<(geo.kh * geo.kw) {
        for q in 0..<cq { offs.append(ph.tapPhase[t] * phaseBytes + q * planeBytes + ph.tapShift[t] * 4) }
    }
    let m = geo.m
    var bias: UnsafePointer<Int32>? = nil
    if case .requantized(let rq, _, _) = out { bias = rq.bias }
    let fix = zeroPointBias(zp, w.rowSums, bias)
    let lend = (geo.oh - 1) * wp + geo.ow   // past the last output's index
    let blocks = (lend + directBlock - 1) / directBlock, chunks = (m + directChannels - 1) / directChannels
    let items = blocks * chunks
    let isa = selectedISA
    let workers = max(1, min(threads, items))
    offs.withUnsafeBufferPointer { op in
        fix.withUnsafeBufferPointer { fp in
            parallelFor(workers, threads: workers) { t in
                for item in items * t / workers ..< items * (t + 1) / workers {
                    let l0 = (item / chunks) * directBlock, n = min(directBlock, lend - l0)
                    let m0 = (item % chunks) * directChannels, mm = min(directChannels, m - m0)
                    let wpk = w.pointer + (m0 / 8) * w.panelBytes
                    switch out {
                    case .requantized(let rq, let y, let ldy):
                        var r = so_i8_requant(bias: fp.baseAddress! + m0, scale: rq.scale + m0, yzp: rq.zeroPoint, lo: rq.lo, hi: rq.hi,
                                              is_signed: rq.signedOutput ? 1 : 0, y: y + m0 * ldy, ldy: ldy)
                        so_i8_conv_direct(isa, mm, offs.count, wpk, quads, op.baseAddress!, l0, n, wp, geo.ow, nil, 0, &r)
                    case .int32(let y, let ldy):
                        so_i8_conv_direct(isa, mm, offs.count, wpk, quads, op.baseAddress!, l0, n, wp, geo.ow, y + m0 * ldy, ldy, nil)
                    }
                }
            }
        }
    }
    if case .int32(let y, let ldy) = out {
        let plane = geo.oh * geo.ow
        for i in 0..<m {
            let row = y + i * ldy, f = fix[i]
            for j in 0..<plane { row[j] = row[j] &+ f }
        }
    }
}

/// A constant right-hand side B (k x n signed bytes, zero points nil or one per column) packed for the
/// natural-orientation product (`so_i8_rows_gemm`, AVX-512 VNNI): the activations are read in place
/// and the product is written row-major, with nothing packed or transposed per call. Nil where this
/// CPU (at the selected ISA) has no fast variant: the transposed GEMM path runs then.
final class Int8RowsWeights: Sendable {
    let k: Int, n: Int
    let packed: [Int8]
    /// Each column's sum of B (for the activations' zero point).
    let columnSums: [Int32]
    let zeroPoints: [Int32]?

    /// Whether this path runs a k x n product on this CPU (at ISA level `isa`).
    static func applies(k: Int, n: Int, isa: Int32 = selectedISA) -> Bool {
        so_i8_rows_fast(isa) != 0 && k > 0 && n > 0 && k < 33_000
    }

    /// `weights[kk * n + j]` (k x n values).
    init(k: Int, n: Int, weights: [Int8], zeroPoints: [Int32]?) {
        precondition(weights.count == k * n, "Int8RowsWeights: \(weights.count) weights for \(k) x \(n)")
        self.k = k
        self.n = n
        var sums = [Int32](repeating: 0, count: n)
        packed = [Int8](unsafeUninitializedCapacity: so_i8_rows_packed_bytes(k, n)) { buf, count in
            sums.withUnsafeMutableBufferPointer { so_i8_rows_pack(k, n, weights, n, buf.baseAddress, $0.baseAddress) }
            count = buf.count
        }
        columnSums = sums
        self.zeroPoints = zeroPoints.flatMap { $0.allSatisfy { $0 == 0 } ? nil : $0 }
    }
}

/// (X - xzp) · (B - bzp) for X (rows x k of u8, rows `ldx` apart), row-major into `y` (row stride
/// n): int32, or float32 times `scale` (one value, or one per column when `perColumn`). Row strips
/// run on up to `threads` threads.
func int8MatMulRows(x: UnsafePointer<UInt8>, rows: Int, ldx: Int, xzp: Int32, _ w: Int8RowsWeights,
                    scale: UnsafePointer<Float>?, perColumn: Bool, y: UnsafeMutableRawPointer, threads: Int, isa: Int32 = selectedISA) {
    let n = w.n, k = w.k
    // corr[j] = -xzp * colsum[j] + k * xzp * bzp[j], wrapping as the kernel's sums do
    var corr = [Int32](repeating: 0, count: n)
    for j in 0..<n {
        var c = (0 &- xzp) &* w.columnSums[j]
        if let z = w.zeroPoints { c = c &+ Int32(truncatingIfNeeded: k) &* xzp &* z[j] }
        corr[j] = c
    }
    let strips = (rows + 7) / 8
    let workers = threads > 1 && rows * n * k >= 1 << 20 ? min(threads, strips) : 1
    corr.withUnsafeBufferPointer { cb in
        func run(_ zp: UnsafePointer<Int32>?) {
            let out = so_i8_rows_out(corr: cb.baseAddress, bzp: zp, scale: scale, per_column: perColumn ? 1 : 0, y: y, ldy: n)
            w.packed.withUnsafeBufferPointer { pb in
                withUnsafePointer(to: out) { o in
                    if workers == 1 {
                        so_i8_rows_gemm(isa, 0, rows, n, k, x, ldx, pb.baseAddress, o)
                    } else {
                        let p = pb.baseAddress, op = o
                        parallelFor(workers, threads: workers) { t in
                            let i0 = strips * t / workers * 8, i1 = min(rows, strips * (t + 1) / workers * 8)
                            so_i8_rows_gemm(isa, i0, i1, n, k, x, ldx, p, op)
                        }
                    }
                }
            }
        }
        if let z = w.zeroPoints { z.withUnsafeBufferPointer { run($0.baseAddress) } } else { run(nil) }
    }
}

/// Where a convolution's taps are in its quad planes, one set per phase (so_i8_conv.h): the planes'
/// padded size, the phases some tap reads (py * sw + px, in order), and each tap's phase index and
/// position shift (rows, columns).
struct Int8ConvPhases {
    let hp: Int, wp: Int
    let phases: [Int]
    /// Per tap (ky * kw + kx): the index of its phase in `phases`, and its shift in positions (shiftRows * wp + shiftCols).
    let tapPhase: [Int], tapShift: [Int]

    init(_ geo: Int8ConvGeometry) {
        let rowPhase = (0..<geo.kh).map { ($0 * geo.dh) % geo.sh }, rowShift = (0..<geo.kh).map { ($0 * geo.dh) / geo.sh }
        let colPhase = (0..<geo.kw).map { ($0 * geo.dw) % geo.sw }, colShift = (0..<geo.kw).map { ($0 * geo.dw) / geo.sw }
        hp = geo.oh + rowShift.max()!
        wp = geo.ow + colShift.max()!
        var ph = [Int]()
        for py in Set(rowPhase).sorted() { for px in Set(colPhase).sorted() { ph.append(py * geo.sw + px) } }
        phases = ph
        var tp = [Int](), ts = [Int]()
        for ky in 0..<geo.kh {
            for kx in 0..<geo.kw {
                tp.append(ph.firstIndex(of: rowPhase[ky] * geo.sw + colPhase[kx])!)
                ts.append(rowShift[ky] * wp + colShift[kx])
            }
        }
        tapPhase = tp
        tapShift = ts
    }

    /// Writes each phase's quad planes (`phaseBytes` apart, in order: each phase's slack is
    /// overwritten by the next, the last one's stays) of x (c x h x w bytes) into `dst`.
    func writeQuads(_ x: UnsafePointer<UInt8>, _ geo: Int8ConvGeometry, fill: Int32, flip: Bool, _ dst: UnsafeMutablePointer<UInt8>) {
        let phaseBytes = (geo.c + 3) / 4 * hp * wp * 4
        for (i, ph) in phases.enumerated() {
            let py = ph / geo.sw, px = ph % geo.sw
            so_u8_conv_quads(x, geo.c, geo.h, geo.w, geo.sh, geo.sw, geo.padTop - py, geo.padLeft - px, hp, wp,
                             UInt8(truncatingIfNeeded: fill), flip ? 1 : 0, dst + i * phaseBytes)
        }
    }
}

/// Weights of a convolution (group 1, zero point 0) packed for the position-rows kernel
/// (`so_i8_conv_rows`: tiles of 8 output positions x 32 output channels, for small maps), with each
/// output channel's weight sum. Shared by every plan of a session (`OpContext.prepare`).
final class Int8ConvRowsWeights: Sendable {
    let m: Int, c: Int, kh: Int, kw: Int
    let packed: [Int8]
    let rowSums: [Int32]

    /// Whether the kernel runs here (AVX-512 VNNI) and every sum fits int32.
    static func applies(c: Int, kh: Int, kw: Int, isa: Int32 = selectedISA) -> Bool {
        (c + 3) / 4 * 4 * kh * kw < 65_000 && so_i8_rows_fast(isa) != 0
    }

    /// Whether a convolution with an `oh` x `ow` output runs faster on position rows than on the
    /// direct kernel, measured on Zen 4 with ResNet-50 QDQ: its 3 x 3 convolutions on 14 x 14 maps
    /// 0.62 -> 0.57 ms, on 7 x 7 maps 0.73 -> 0.64, stride 2 into 7 x 7 0.77 -> 0.69. Pointwise
    /// stride-1 ones stay on the GEMM, which reads them in place (its 1 x 1 on 14 x 14 maps took
    /// 0.35 ms on rows against 0.30).
    static func prefers(oh: Int, ow: Int, c: Int, kh: Int, kw: Int, strided: Bool) -> Bool {
        oh * ow <= 256 && c >= 8 && (kh * kw > 1 || strided)
    }

    /// `weights` m x c x kh x kw signed bytes (zero point 0).
    init(m: Int, c: Int, kh: Int, kw: Int, weights: UnsafePointer<Int8>) {
        self.m = m; self.c = c; self.kh = kh; self.kw = kw
        let taps = kh * kw, k = taps * ((c + 3) / 4) * 4
        packed = [Int8](unsafeUninitializedCapacity: so_i8_rows_packed_bytes(k, m)) { buf, count in
            so_i8_conv_rows_pack(m, c, taps, weights, buf.baseAddress)
            count = buf.count
        }
        rowSums = int8RowSums(weights, rows: m, k: c * taps)
    }
}

/// Output positions per block of the position-rows convolution, and output channels per call.
private let rowsBlock = 32, rowsChannels = 64

/// One image's convolution on position rows (`so_i8_conv_rows`), requantized: x (c x h x w bytes,
/// signed when `flip`, zero point `xzp` of its own type) into `out`'s m planes. The image is
/// rewritten once as quads by position (one set per phase); the results are made position by
/// position and transposed into the planes.
func int8ConvRows2D(x: UnsafePointer<UInt8>, flip: Bool, xzp: Int32, _ geo: Int8ConvGeometry, _ w: Int8ConvRowsWeights,
                    _ rq: Int8Requantization, _ y: UnsafeMutableRawPointer, ldy: Int, threads: Int, isa: Int32 = selectedISA) {
    precondition(geo.c == w.c && geo.m == w.m && geo.kh == w.kh && geo.kw == w.kw && geo.sh >= 1 && geo.sw >= 1)
    let zp = flip ? xzp + 128 : xzp   // in the unsigned domain
    let ph = Int8ConvPhases(geo)
    let cq = (geo.c + 3) / 4, positions = ph.hp * ph.wp, phaseBytes = cq * positions * 4
    let planes = UnsafeMutablePointer<UInt8>.allocate(capacity: ph.phases.count * phaseBytes + Int(SO_I8_CONV_SLACK))
    let image = UnsafeMutablePointer<UInt8>.allocate(capacity: ph.phases.count * phaseBytes)
    let p = geo.oh * geo.ow, m = geo.m
    let rows = UnsafeMutablePointer<UInt8>.allocate(capacity: p * m)   // results, positions as rows
    defer { planes.deallocate(); image.deallocate(); rows.deallocate() }
    ph.writeQuads(x, geo, fill: zp, flip: flip, planes)
    for i in 0..<ph.phases.count { so_u8_quads_by_position(planes + i * phaseBytes, cq, positions, image + i * phaseBytes) }
    let offs = (0..<(geo.kh * geo.kw)).map { ph.tapPhase[$0] * phaseBytes + ph.tapShift[$0] * cq * 4 }
    let fix = zeroPointBias(zp, w.rowSums, rq.bias)
    let kpad = geo.kh * geo.kw * cq * 4
    let blocks = (p + rowsBlock - 1) / rowsBlock, chunks = (m + rowsChannels - 1) / rowsChannels
    let items = blocks * chunks
    let workers = max(1, min(threads, items))
    offs.withUnsafeBufferPointer { op in
        fix.withUnsafeBufferPointer { fp in
            w.packed.withUnsafeBufferPointer { pb in
                parallelFor(workers, threads: workers) { t in
                    for item in items * t / workers ..< items * (t + 1) / workers {
                        let o0 = (item / chunks) * rowsBlock, o1 = min(p, o0 + rowsBlock)
                        let m0 = (item % chunks) * rowsChannels, mm = min(rowsChannels, m - m0)
                        var r = so_i8_rows_requant(bias: fp.baseAddress! + m0, scale: rq.scale + m0, yzp: rq.zeroPoint, lo: rq.lo,
                                                   hi: rq.hi, is_signed: rq.signedOutput ? 1 : 0)
                        so_i8_conv_rows(isa, mm, op.count, cq, pb.baseAddress! + m0 * kpad, image, op.baseAddress!, o0, o1,
                                        geo.ow, ph.wp, &r, rows + m0, m)
                    }
                }
            }
        }
    }
    so_u8_transpose(rows, p, m, m, y.assumingMemoryBound(to: UInt8.self), ldy)
}
