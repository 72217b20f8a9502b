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
