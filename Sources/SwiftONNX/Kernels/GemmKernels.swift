import CKernels
import COpenBLAS

/// Row-major GEMM drivers: C = alpha * op(A) * op(B) + beta * C.
/// Float and Double go to OpenBLAS; integer types use plain wrapping loops.
/// Sizes must fit in Int32 (callers check with `gemmSizesFit`).

/// Whether every size fits a BLAS int.
@inline(__always) func gemmSizesFit(_ sizes: Int...) -> Bool {
    sizes.allSatisfy { $0 >= 0 && $0 <= Int(Int32.max) }
}

/// Element types with a BLAS GEMM.
protocol BLASFloat: BinaryFloatingPoint, CastableScalar {
    static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                     alpha: Self, a: UnsafePointer<Self>, lda: Int,
                     b: UnsafePointer<Self>, ldb: Int,
                     beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
}

/// Scales (or zeroes) an m x n block of C when there is nothing to multiply (k == 0).
@inline(__always) private func scaleBlock<T: BinaryFloatingPoint>(_ c: UnsafeMutablePointer<T>, m: Int, n: Int, ldc: Int, beta: T) {
    for i in 0..<m {
        let row = c + i * ldc
        if beta == 0 { row.update(repeating: 0, count: n) } else { for j in 0..<n { row[j] *= beta } }
    }
}

/// Rows of A from which a float32 GEMM goes through the packed microkernels rather than OpenBLAS
/// (below, the GEMV kernels or OpenBLAS).
let f32PackedGemmMinRows = 8

extension BLASFloat {
    /// The same GEMM with its rows of C split over up to `threads` threads of the runtime's pool
    /// (OpenBLAS itself always runs single-threaded, so its threads never compete with ours).
    static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                     alpha: Self, a: UnsafePointer<Self>, lda: Int,
                     b: UnsafePointer<Self>, ldb: Int,
                     beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int, threads: Int) {
        // A few rows of float32 (fully-connected layers at batch 1..4): the unpacked GEMV kernels
        // stream B once at memory bandwidth (OpenBLAS's sgemm runs 4x slower at m = 1).
        if Self.self == Float.self, m >= 1, m <= 4, n > 0, k > 0, alpha == 1, !transA || (m == 1 && lda == 1) {
            f32SmallGemm(transB: transB, m: m, n: n, k: k, a: UnsafeRawPointer(a).assumingMemoryBound(to: Float.self),
                         lda: transA ? k : lda, b: UnsafeRawPointer(b).assumingMemoryBound(to: Float.self), ldb: ldb,
                         beta: unsafeBitCast(beta, to: Float.self),
                         c: UnsafeMutableRawPointer(c).assumingMemoryBound(to: Float.self), ldc: ldc, threads: threads)
            return
        }
        // Float32 with B as it is (MatMul's weights or activations, Gemm without transB): A is packed
        // into the runtime's own row panels (m x k, a small copy) and the packed GEMM microkernels
        // chosen for this CPU run it, B's panels packed block by block. On the project's Zen 3 this
        // runs a transformer-sized product (128 x 384 x 1536) about 12% faster than OpenBLAS's sgemm
        // (interleaved A/B of the two builds: 4.5-4.6 ms against 5.2-5.3 ms).
        if Self.self == Float.self, !transB, alpha == 1, beta == 0, m >= f32PackedGemmMinRows, n >= 16, k >= 8 {
            let af = UnsafeRawPointer(a).assumingMemoryBound(to: Float.self)
            let packed = F32PackedMatrix(scratch: af, m: m, k: k, rowStride: transA ? 1 : lda, colStride: transA ? lda : 1)
            f32PackedGemm(packed, b: UnsafeRawPointer(b).assumingMemoryBound(to: Float.self), ldb: ldb, n: n,
                          c: UnsafeMutableRawPointer(c).assumingMemoryBound(to: Float.self), ldc: ldc, threads: threads)
            return
        }
        let chunks = threads > 1 && m >= 2 && m * n * k >= convParallelMinFlops ? min(threads, m) : 1
        if chunks == 1 {
            gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                 beta: beta, c: c, ldc: ldc)
            return
        }
        parallelFor(chunks, threads: threads) { t in
            let r0 = m * t / chunks, r1 = m * (t + 1) / chunks
            if r1 <= r0 { return }
            gemm(transA: transA, transB: transB, m: r1 - r0, n: n, k: k, alpha: alpha,
                 a: transA ? a + r0 : a + r0 * lda, lda: lda, b: b, ldb: ldb, beta: beta, c: c + r0 * ldc, ldc: ldc)
        }
    }
}

/// C = act(A * B + columnBias + Z) (the epilogue's terms, in that order) for row-major A (m x k),
/// B (k x n) and C (m x n): a dense layer. Through the packed microkernels with the epilogue fused
/// where they take the sizes, else the GEMM followed by the same epilogue, row by row.
func f32Dense(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
              epilogue: F32GemmEpilogue, threads: Int) {
    if m >= f32PackedGemmMinRows, n >= 16, k >= 8 {
        let packed = F32PackedMatrix(scratch: a, m: m, k: k, rowStride: k)
        f32PackedGemm(packed, b: b, ldb: n, n: n, c: c, ldc: n, epilogue: epilogue, threads: threads)
        return
    }
    Float.gemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: n,
               beta: 0, c: c, ldc: n, threads: threads)
    if epilogue.isEmpty { return }
    for r in 0..<m {
        let row = c + r * n
        if let cb = epilogue.columnBias {
            for j in 0..<n { row[j] += cb[j] }
        }
        if epilogue.z != nil || epilogue.act != .none {
            finishRowF32(row, n, bias: 0, z: epilogue.z.map { $0 + r * epilogue.ldz }, epilogue.act)
        }
    }
}

/// The float32 GEMV family (few rows of X times a weight matrix), chosen once for this CPU (a
/// `static const` C table, never written; see f32Gemm).
nonisolated(unsafe) let f32Gemv: UnsafePointer<so_f32_gemv> = so_f32_gemv_select(selectedISA)

/// C = A * op(B) + beta * C for m <= 4 rows of A, through the GEMV kernels, output columns split over
/// the pool. B is n x k (transB) or k x n.
func f32SmallGemm(transB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                  beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int) {
    let kernel = transB ? f32Gemv.pointee.dot! : f32Gemv.pointee.axpy!
    let chunks = threads > 1 && m * n * k >= convParallelMinFlops ? min(threads, max(1, n / 64)) : 1
    func product(into y: UnsafeMutablePointer<Float>, ldy: Int) {
        parallelFor(chunks, threads: threads) { t in
            // column ranges on 16-column boundaries
            let j0 = (n * t / chunks) / 16 * 16, j1 = t == chunks - 1 ? n : (n * (t + 1) / chunks) / 16 * 16
            if j1 > j0 { kernel(m, k, a, lda, b, ldb, y, ldy, j0, j1, nil, Int32(SO_ACT_IDENTITY), 0, 0) }
        }
    }
    if beta == 0 {
        product(into: c, ldy: ldc)
        return
    }
    ScratchPool.shared.withFloats(m * n) { y in
        product(into: y, ldy: n)
        for i in 0..<m {
            let cr = c + i * ldc, yr = y + i * n
            for j in 0..<n { cr[j] = beta * cr[j] + yr[j] }
        }
    }
}

extension Float: BLASFloat {
    static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                     alpha: Float, a: UnsafePointer<Float>, lda: Int,
                     b: UnsafePointer<Float>, ldb: Int,
                     beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if k == 0 || alpha == 0 { scaleBlock(c, m: m, n: n, ldc: ldc, beta: beta); return }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(max(lda, 1)), b, Int32(max(ldb, 1)),
                    beta, c, Int32(max(ldc, 1)))
    }
}

extension Double: BLASFloat {
    static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                     alpha: Double, a: UnsafePointer<Double>, lda: Int,
                     b: UnsafePointer<Double>, ldb: Int,
                     beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if k == 0 || alpha == 0 { scaleBlock(c, m: m, n: n, ldc: ldc, beta: beta); return }
        cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(max(lda, 1)), b, Int32(max(ldb, 1)),
                    beta, c, Int32(max(ldc, 1)))
    }
}

/// Integer GEMM with wrapping arithmetic: C = op(A) * op(B) (C is overwritten).
func integerGemm<T: FixedWidthInteger>(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                                       a: UnsafePointer<T>, lda: Int, b: UnsafePointer<T>, ldb: Int,
                                       c: UnsafeMutablePointer<T>, ldc: Int) {
    for i in 0..<m {
        let crow = c + i * ldc
        crow.update(repeating: 0, count: n)
        for p in 0..<k {
            let av = transA ? a[p * lda + i] : a[i * lda + p]
            if av == 0 { continue }
            if transB {
                for j in 0..<n { crow[j] = crow[j] &+ av &* b[j * ldb + p] }
            } else {
                let brow = b + p * ldb
                for j in 0..<n { crow[j] = crow[j] &+ av &* brow[j] }
            }
        }
    }
}
