import CKernels
import Foundation

/// A float32 matrix A (m x k) packed once into the GEMM's row panels (weights, at plan time).
final class F32PackedMatrix: @unchecked Sendable {   // @unchecked: raw pointers, written once at packing, read-only after
    let gemm: UnsafePointer<so_f32_gemm>
    let m: Int, k: Int
    let data: UnsafeMutablePointer<Float>

    /// Element (i, kk) of A is at a[i * rowStride + kk * colStride].
    convenience init(_ a: UnsafePointer<Float>, m: Int, k: Int, rowStride: Int, colStride: Int = 1,
                     gemm: UnsafePointer<so_f32_gemm> = f32Gemm) throws {
        let storage = try FloatBuffer(count: so_f32_gemm_packed_a_floats(gemm.pointee.mr, m, k))
        self.init(packing: a, m: m, k: k, rowStride: rowStride, colStride: colStride, gemm: gemm,
                  into: storage.data, owner: storage)
    }

    /// Packed for one kernel call (scratch: not counted in the session's memory budget), in a buffer
    /// of `ScratchPool.shared` that goes back to the pool with the matrix: a fresh mapping per call
    /// cost a dense layer of 128 x 1536 inputs 0.3 ms of page population (Zen 1), 9% of its GEMM.
    convenience init(scratch a: UnsafePointer<Float>, m: Int, k: Int, rowStride: Int, colStride: Int = 1,
                     gemm: UnsafePointer<so_f32_gemm> = f32Gemm) {
        let storage = PooledScratch(floats: so_f32_gemm_packed_a_floats(gemm.pointee.mr, m, k))
        self.init(packing: a, m: m, k: k, rowStride: rowStride, colStride: colStride, gemm: gemm,
                  into: storage.data, owner: storage)
    }

    private init(packing a: UnsafePointer<Float>, m: Int, k: Int, rowStride: Int, colStride: Int,
                 gemm: UnsafePointer<so_f32_gemm>, into data: UnsafeMutablePointer<Float>, owner: AnyObject) {
        self.gemm = gemm
        self.m = m
        self.k = k
        self.data = data
        self.owner = owner
        gemm.pointee.pack_a(m, k, a, rowStride, colStride, data)
    }

    /// Storage for an m x k matrix in the packed layout at `data`, memory that `owner` keeps alive
    /// (several matrices carved from one allocation).
    init(packedStorageAt data: UnsafeMutablePointer<Float>, m: Int, k: Int, owner: AnyObject,
         gemm: UnsafePointer<so_f32_gemm> = f32Gemm) {
        self.gemm = gemm
        self.m = m
        self.k = k
        self.data = data
        self.owner = owner
    }

    /// Keeps `data` alive.
    private let owner: AnyObject

    var mr: Int { Int(gemm.pointee.mr) }
    var nr: Int { Int(gemm.pointee.nr) }
}

/// A float32 matrix B (k x n) packed once into the GEMM's column panels, each covering all of k
/// (panel q at data + q * nr * k): a dense layer's weights, packed at plan time so that every run
/// reads them as contiguous panels (read in place, rows of a wide B are a multiple of 4 KB apart and
/// fall into a few L1 sets).
final class F32PackedPanels: @unchecked Sendable {   // @unchecked: a raw pointer, written once at packing, read-only after
    let gemm: UnsafePointer<so_f32_gemm>
    let k: Int, n: Int
    let data: UnsafeMutablePointer<Float>
    private let owner: FloatBuffer

    /// Element (kk, j) of B at b[kk * n + j].
    init(_ b: UnsafePointer<Float>, k: Int, n: Int, gemm: UnsafePointer<so_f32_gemm> = f32Gemm) throws {
        self.gemm = gemm
        self.k = k
        self.n = n
        owner = try FloatBuffer(count: so_f32_gemm_packed_b_floats(gemm.pointee.nr, k, n))
        data = owner.data
        if k > 0 && n > 0 { gemm.pointee.pack_b(k, n, b, n, 1, data) }
    }

    var nr: Int { Int(gemm.pointee.nr) }
}

/// C = act(A * B + columnBias + Z) for row-major A (m x k) and C (m x n), B packed in panels; the
/// columns split over up to `threads` workers on panel boundaries. A is read in place (the kernels'
/// macro_rowa): packing it was a serial pass before the split, 9% of MiniLM's samples at 2 threads.
func f32PackedDense(m: Int, a: UnsafePointer<Float>, b: F32PackedPanels, c: UnsafeMutablePointer<Float>,
                    epilogue: F32GemmEpilogue, threads: Int) {
    let k = b.k, n = b.n, nr = b.nr
    if m == 0 || n == 0 { return }
    let panels = (n + nr - 1) / nr
    let chunks = threads > 1 && m * n * k >= convParallelMinFlops ? min(threads, panels) : 1
    parallelFor(chunks, threads: threads) { t in
        let p0 = panels * t / chunks, p1 = panels * (t + 1) / chunks
        let j0 = p0 * nr, j1 = min(n, p1 * nr)
        if j0 >= j1 { return }
        f32RowAGemmPanels(m: m, a: a, lda: k, gemm: b.gemm, pb: b.data + p0 * nr * k, k: k, n: j1 - j0, c: c + j0,
                          ldc: n, epilogue: epilogue, col: j0)
    }
}

/// C[0..<m, 0..<n) (C at column `col` of the product) = A * B, A row-major (rows lda apart) and read in
/// place, B (k x n) in packed panels of nr columns covering all of k (panel q at pb + q * nr * k; the first
/// k rows of panels packed for panelK rows when given), with
/// the epilogue (its column terms taken from column `col`). Single-threaded.
func f32RowAGemmPanels(m: Int, a: UnsafePointer<Float>, lda: Int, gemm: UnsafePointer<so_f32_gemm>,
                       pb: UnsafePointer<Float>, k: Int, n: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                       epilogue: F32GemmEpilogue, col: Int = 0, panelK: Int? = nil) {
    // The panels were packed for panelK >= k rows (the first k used): panel q at pb + q * nr * panelK.
    let panelK = panelK ?? k
    let g = gemm.pointee
    let nr = Int(g.nr), mr = Int(g.mr)
    if m == 0 || n <= 0 { return }
    if k == 0 {
        for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) }
        if !epilogue.isEmpty {
            var e = epilogue   // its column terms from this block's first column
            e.columnBias = e.columnBias.map { $0 + col }
            e.z = e.z.map { $0 + col }
            applyEpilogueRows(c, ldc: ldc, rows: m, j0: 0, j1: n, e)
        }
        return
    }
    let kc = min(F32GemmBlocking.kc, Int(SO_F32_GEMM_ROWA_KC_MAX))
    let mcBlock = max(mr, F32GemmBlocking.mc / mr * mr)
    var pc = 0
    while pc < k {
        let kcb = min(kc, k - pc)
        let last: Int32 = pc + kcb >= k ? 1 : 0, acc: Int32 = pc > 0 ? 1 : 0
        var ic = 0
        while ic < m {
            let mcb = min(mcBlock, m - ic)
            let ap = a + ic * lda + pc, cp = c + ic * ldc
            if epilogue.isEmpty || last == 0 {
                g.macro_rowa(mcb, n, kcb, ap, lda, pb + pc * nr, nr * panelK, cp, ldc, acc, last, nil)
            } else {
                var ep = epilogue.c(row: ic, col: col)
                g.macro_rowa(mcb, n, kcb, ap, lda, pb + pc * nr, nr * panelK, cp, ldc, acc, last, &ep)
            }
            ic += mcb
        }
        pc += kcb
    }
}

/// What the GEMM applies to each output tile while it is in cache:
/// act(acc + bias[row] + columnBias[col] + z), each sum rounded in that order.
struct F32GemmEpilogue {
    var bias: UnsafePointer<Float>? = nil
    /// Added to every row (a dense layer's bias, one per output column).
    var columnBias: UnsafePointer<Float>? = nil
    var z: UnsafePointer<Float>? = nil
    var ldz: Int = 0
    var act: ConvActivation = .none

    var isEmpty: Bool { bias == nil && columnBias == nil && z == nil && act == .none }

    /// The C form, offset to the block at (row, col).
    func c(row: Int, col: Int) -> so_gemm_epilogue {
        let (kind, alpha, beta) = act.kernelCode
        return so_gemm_epilogue(bias: bias.map { $0 + row }, cbias: columnBias.map { $0 + col },
                                z: z.map { $0 + row * ldz + col }, ldz: ldz, act: kind, alpha: alpha, beta: beta)
    }
}

extension ConvActivation {
    /// (SO_ACT_* kind, alpha, beta) for the C kernels.
    var kernelCode: (Int32, Float, Float) {
        switch self {
        case .none: return (Int32(SO_ACT_IDENTITY), 0, 0)
        case .relu: return (Int32(SO_ACT_RELU), 0, 0)
        case .leakyRelu(let a): return (Int32(SO_ACT_LEAKY_RELU), a, 0)
        case .clip(let lo, let hi): return (Int32(SO_ACT_CLIP), lo, hi)
        case .sigmoid: return (Int32(SO_ACT_SIGMOID), 0, 0)
        case .hardSigmoid(let a, let b): return (Int32(SO_ACT_HARD_SIGMOID), a, b)
        case .hardSwish: return (Int32(SO_ACT_HARD_SWISH), 0, 0)
        case .tanh: return (Int32(SO_ACT_TANH), 0, 0)
        case .gelu: return (Int32(SO_ACT_GELU), 0, 0)
        case .geluTanh: return (Int32(SO_ACT_GELU_TANH), 0, 0)
        case .reluAffine(let s, let b): return (Int32(SO_ACT_RELU_AFFINE), s, b)
        case .hardSwishAffine(let s, let b): return (Int32(SO_ACT_HARD_SWISH_AFFINE), s, b)
        case .swish(let a): return (Int32(SO_ACT_SWISH), a, 0)
        }
    }
}

/// Reusable scratch buffers (B panels, im2col columns), so steady-state runs do not go back to
/// the allocator for large blocks.
final class ScratchPool: Sendable {
    static let shared = ScratchPool()
    /// Free buffers and their sizes.
    private let free = Locked([(pointer: UnsafeMutableRawPointer, bytes: Int)]())

    /// A buffer of at least `bytes` bytes, 64-byte aligned, for the duration of `body`.
    func with<R>(bytes: Int, _ body: (UnsafeMutableRawPointer) throws -> R) rethrows -> R {
        let b = take(bytes: bytes)
        defer { give(b) }
        return try body(b.pointer)
    }

    /// A buffer of at least `bytes` bytes, 64-byte aligned, until it is given back with `give`.
    func take(bytes: Int) -> (pointer: UnsafeMutableRawPointer, bytes: Int) {
        let need = max(bytes, 64)
        let reused = free.withLock { free -> (pointer: UnsafeMutableRawPointer, bytes: Int)? in
            // the smallest that fits, so a small request does not take the buffer a large one needs
            guard let i = free.indices.filter({ free[$0].bytes >= need }).min(by: { free[$0].bytes < free[$1].bytes })
            else { return nil }
            return free.remove(at: i)
        }
        return reused ?? (UnsafeMutableRawPointer.allocate(byteCount: need, alignment: 64), need)
    }

    /// Returns a buffer from `take` to the pool (which keeps up to 16; others are freed).
    func give(_ b: (pointer: UnsafeMutableRawPointer, bytes: Int)) {
        let kept = free.withLock { free -> Bool in
            guard free.count < 16 else { return false }
            free.append(b)
            return true
        }
        if !kept { b.pointer.deallocate() }
    }

    func withFloats<R>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        try with(bytes: count * MemoryLayout<Float>.stride) { try body($0.assumingMemoryBound(to: Float.self)) }
    }
}

/// Floats from `ScratchPool.shared`, given back to the pool when this object goes.
final class PooledScratch: @unchecked Sendable {   // @unchecked: a raw pointer, used by one kernel call at a time
    let data: UnsafeMutablePointer<Float>
    private let block: (pointer: UnsafeMutableRawPointer, bytes: Int)

    init(floats: Int) {
        block = ScratchPool.shared.take(bytes: max(floats, 1) * MemoryLayout<Float>.stride)
        data = block.pointer.bindMemory(to: Float.self, capacity: max(floats, 1))
    }

    deinit { ScratchPool.shared.give(block) }
}

/// Block sizes of the packed GEMM driver.
enum F32GemmBlocking {
    static let kc = 384
    static let mc = 256
    static let nc = 512
    /// Up to this many rows of A, B is read in place (macro_direct) rather than packed: with few row
    /// tiles per B panel the packing pass costs more than it saves (Zen 3: 2x faster at m = 16, even
    /// at m = 128, slower from m = 256 on large planes).
    static let directMaxRows = 160
}

/// C[rows, cols) = A * B over columns [j0, j1) of B (k x n, element (kk, j) at b[kk * ldb + j]),
/// writing C (row-major, ldc) with the epilogue. Single-threaded; `pb` holds a packed B block.
func f32PackedGemmColumns(_ a: F32PackedMatrix, b: UnsafePointer<Float>, ldb: Int, j0: Int, j1: Int,
                          c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: F32GemmEpilogue,
                          pb: UnsafeMutablePointer<Float>, ncMax: Int = F32GemmBlocking.nc, direct: Bool? = nil) {
    let g = a.gemm.pointee
    let m = a.m, k = a.k, mr = a.mr
    if m == 0 || j1 <= j0 { return }
    if k == 0 {
        for i in 0..<m { (c + i * ldc + j0).update(repeating: 0, count: j1 - j0) }
        if !epilogue.isEmpty { applyEpilogueRows(c, ldc: ldc, rows: m, j0: j0, j1: j1, epilogue) }
        return
    }
    let kc = F32GemmBlocking.kc
    // Row blocks start on panel boundaries: a multiple of mr.
    let mcBlock = max(mr, F32GemmBlocking.mc / mr * mr)
    let direct = direct ?? (m <= F32GemmBlocking.directMaxRows)
    var jc = j0
    while jc < j1 {
        let nc = min(ncMax, j1 - jc)
        var pc = 0
        while pc < k {
            let kcb = min(kc, k - pc)
            if direct {
                f32GemmKBlock(a, pc: pc, kcb: kcb, mcBlock: mcBlock, pb: b + pc * ldb + jc, pbStride: 0, n: nc,
                              c: c, ldc: ldc, col: jc, epilogue: epilogue, directLdb: ldb)
            } else {
                g.pack_b(kcb, nc, b + pc * ldb + jc, ldb, 1, pb)
                f32GemmKBlock(a, pc: pc, kcb: kcb, mcBlock: mcBlock, pb: pb, pbStride: a.nr * kcb, n: nc,
                              c: c, ldc: ldc, col: jc, epilogue: epilogue)
            }
            pc += kcb
        }
        jc += nc
    }
}

/// C[rows, 0..<n) = A * B where B (k x n) is already in packed panels of nr columns covering all of
/// k (panel q at pb + q * nr * k, as so_f32_im2col_packed and the Winograd input transform write
/// it), with the epilogue. Single-threaded; no packing pass.
func f32PackedGemmPanels(_ a: F32PackedMatrix, pb: UnsafePointer<Float>, n: Int,
                         c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: F32GemmEpilogue) {
    let m = a.m, k = a.k, mr = a.mr, nr = a.nr
    if m == 0 || n <= 0 { return }
    if k == 0 {
        for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) }
        if !epilogue.isEmpty { applyEpilogueRows(c, ldc: ldc, rows: m, j0: 0, j1: n, epilogue) }
        return
    }
    let kc = F32GemmBlocking.kc
    let mcBlock = max(mr, F32GemmBlocking.mc / mr * mr)
    var pc = 0
    while pc < k {
        let kcb = min(kc, k - pc)
        f32GemmKBlock(a, pc: pc, kcb: kcb, mcBlock: mcBlock, pb: pb + pc * nr, pbStride: nr * k, n: n,
                      c: c, ldc: ldc, col: 0, epilogue: epilogue)
        pc += kcb
    }
}

/// One k-block [pc, pc + kcb) of C[0..<m, col..<col + n) += A * B over all row blocks: B's panels at
/// pb, pbStride floats apart, or with directLdb > 0, B's rows in place at pb, directLdb apart; the
/// epilogue is applied with the last k-block.
@inline(__always)
private func f32GemmKBlock(_ a: F32PackedMatrix, pc: Int, kcb: Int, mcBlock: Int, pb: UnsafePointer<Float>,
                           pbStride: Int, n: Int, c: UnsafeMutablePointer<Float>, ldc: Int, col: Int,
                           epilogue: F32GemmEpilogue, directLdb: Int = 0) {
    let g = a.gemm.pointee
    let m = a.m, k = a.k, mr = a.mr
    let last: Int32 = pc + kcb >= k ? 1 : 0
    var ic = 0
    while ic < m {
        let mcb = min(mcBlock, m - ic)
        let pa = a.data + (ic / mr) * mr * k + pc * mr
        let cp = c + ic * ldc + col, acc: Int32 = pc > 0 ? 1 : 0
        func macro(_ ep: UnsafePointer<so_gemm_epilogue>?) {
            if directLdb > 0 {
                g.macro_direct(mcb, n, kcb, pa, mr * k, pb, directLdb, cp, ldc, acc, last, ep)
            } else {
                g.macro(mcb, n, kcb, pa, mr * k, pb, pbStride, cp, ldc, acc, last, ep)
            }
        }
        if epilogue.isEmpty || last == 0 {
            macro(nil)
        } else {
            var ep = epilogue.c(row: ic, col: col)
            macro(&ep)
        }
        ic += mcb
    }
}

/// Scalar epilogue for the k == 0 corner (no product to fuse into).
private func applyEpilogueRows(_ c: UnsafeMutablePointer<Float>, ldc: Int, rows: Int, j0: Int, j1: Int,
                               _ e: F32GemmEpilogue) {
    for r in 0..<rows {
        let row = c + r * ldc + j0
        if let cb = e.columnBias {   // the row is all zeros here: 0 + cb + bias == 0 + bias + cb
            for j in 0..<(j1 - j0) { row[j] += cb[j0 + j] }
        }
        finishRowF32(row, j1 - j0, bias: e.bias?[r] ?? 0, z: e.z.map { $0 + r * e.ldz + j0 }, e.act)
    }
}

/// Floats of B-panel scratch one worker of `f32PackedGemmColumns` needs.
func f32PackedGemmScratchFloats(_ a: F32PackedMatrix, ncMax: Int = F32GemmBlocking.nc) -> Int {
    so_f32_gemm_packed_b_floats(a.gemm.pointee.nr, min(F32GemmBlocking.kc, max(a.k, 1)), ncMax) + 64
}

/// C = A * B (+ epilogue) for B with n columns, split over `threads` workers by columns.
func f32PackedGemm(_ a: F32PackedMatrix, b: UnsafePointer<Float>, ldb: Int, n: Int,
                   c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: F32GemmEpilogue = .init(), threads: Int = 1) {
    let nr = a.nr
    let flops = a.m * a.k * n
    let chunks = threads > 1 && flops >= convParallelMinFlops ? min(threads, max(1, (n + nr - 1) / nr)) : 1
    let scratch = f32PackedGemmScratchFloats(a)
    if chunks == 1 {
        ScratchPool.shared.withFloats(scratch) { pb in
            f32PackedGemmColumns(a, b: b, ldb: ldb, j0: 0, j1: n, c: c, ldc: ldc, epilogue: epilogue, pb: pb)
        }
        return
    }
    let panels = (n + nr - 1) / nr
    parallelFor(chunks, threads: threads) { t in
        let p0 = panels * t / chunks, p1 = panels * (t + 1) / chunks
        let j0 = min(n, p0 * nr), j1 = min(n, p1 * nr)
        if j0 >= j1 { return }
        ScratchPool.shared.withFloats(scratch) { pb in
            f32PackedGemmColumns(a, b: b, ldb: ldb, j0: j0, j1: j1, c: c, ldc: ldc, epilogue: epilogue, pb: pb)
        }
    }
}
