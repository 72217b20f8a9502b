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

/// y (m x n, 8-bit, row stride ldy bytes) = requantize(W (packed) x B), B (k x n, u8, rows `ldb`
/// apart) minus its zero point `bzp`. Column blocks run on up to `threads` threads.
func int8GemmRequantized(_ w: Int8PackedWeights, b: UnsafePointer<UInt8>, ldb: Int, n: Int, bzp: Int32,
                         _ rq: Int8Requantization, y: UnsafeMutableRawPointer, ldy: Int, threads: Int) {
    let g = i8Gemm.pointee
    let m = w.m, k = w.k
    let mr = Int(g.mr), nr = Int(g.nr), kg = Int(g.kg)
    let blocks = (n + int8NC - 1) / int8NC
    let kcMax = min(int8KC, (k + kg - 1) / kg * kg)
    let pbBytes = so_i8_gemm_packed_b_bytes(i8Gemm, kcMax, int8NC)
    let isa = selectedISA
    // Each thread takes a contiguous run of column blocks and keeps its packing and accumulator
    // buffers for all of them.
    let workers = max(1, min(threads, blocks))
    parallelFor(workers, threads: workers) { t in
        let first = blocks * t / workers, last = blocks * (t + 1) / workers
        if first >= last { return }
        let pb = UnsafeMutableRawPointer.allocate(byteCount: pbBytes, alignment: 64)
        let acc = UnsafeMutablePointer<Int32>.allocate(capacity: m * int8NC)
        defer { pb.deallocate(); acc.deallocate() }
        for blk in first..<last {
            let q0 = blk * int8NC, nb = min(int8NC, n - q0)
            var k0 = 0
            while k0 < k {
                let kc = min(kcMax, k - k0)
                let kcpad = (kc + kg - 1) / kg * kg
                g.pack_b(kc, nb, b + k0 * ldb + q0, ldb, 1, bzp, pb)
                var m0 = 0
                while m0 < m {
                    let mc = min(int8MC, m - m0)
                    let pa = w.pointer + (m0 / mr) * w.panelStride + k0 * mr * Int(g.elem_a)
                    g.macro(mc, nb, kc, pa, w.panelStride, pb, nr * kcpad * Int(g.elem_b), acc + m0 * nb, nb, k0 == 0 ? 0 : 1)
                    m0 += mc
                }
                k0 += kc
            }
            so_i8_requantize(m, nb, acc, nb, rq.bias, rq.scale, rq.zeroPoint, rq.lo, rq.hi, rq.signedOutput ? 1 : 0,
                             y + q0, ldy, isa)
        }
    }
}

/// One image's 2-D convolution (group 1) on u8 activations x (c x h x w) with zero point xzp:
/// y (m x oh x ow, 8-bit) = requantize(conv). Pointwise convolutions read x in place; others
/// gather their patches first (im2col; padding reads as the zero point, so it adds nothing).
func int8Conv2D(x: UnsafePointer<UInt8>, xzp: Int32, _ geo: Int8ConvGeometry, _ w: Int8PackedWeights,
                _ rq: Int8Requantization, y: UnsafeMutableRawPointer, threads: Int) {
    let n = geo.oh * geo.ow
    if geo.isPointwise {
        int8GemmRequantized(w, b: x, ldb: n, n: n, bzp: xzp, rq, y: y, ldy: n, threads: threads)
        return
    }
    let k = geo.c * geo.kh * geo.kw
    let col = UnsafeMutablePointer<UInt8>.allocate(capacity: max(k * n, 1))
    defer { col.deallocate() }
    let fill = UInt8(truncatingIfNeeded: xzp)
    let parts = max(1, min(threads, geo.c))
    parallelFor(parts, threads: parts) { t in
        so_u8_im2col(x, geo.h, geo.w, geo.kh, geo.kw, geo.sh, geo.sw, geo.dh, geo.dw, geo.padTop, geo.padLeft,
                     geo.oh, geo.ow, fill, geo.c * t / parts, geo.c * (t + 1) / parts, col)
    }
    int8GemmRequantized(w, b: col, ldb: n, n: n, bzp: xzp, rq, y: y, ldy: n, threads: threads)
}
