#ifndef SWIFTONNX_SO_GEMV_H
#define SWIFTONNX_SO_GEMV_H
#include <stddef.h>

/*
 * Float32 products of a few rows by a weight matrix (fully-connected layers at batch 1..4):
 * Y (m x n) = act(X (m x k) * op(W) + bias), without packing. Meant for small m (1..4); any
 * m >= 1 is correct. For m <= 4 each W float is loaded once per call (the rows of X are re-read
 * from cache instead), so these kernels run at memory bandwidth where a packed GEMM with m = 1
 * does not; larger m is done in groups of rows that re-read a cache-sized block of W.
 *
 * Both forms have the signature so_f32_gemv_fn:
 *   x: row r at x + r*ldx (k floats);  y: row r at y + r*ldy;  ldx >= k, ldy >= j1.
 *   [j0, j1): the output columns computed, as absolute indices: only y[r][j0 ..< j1] is written,
 *     only the W data of those columns is read, bias is indexed by the absolute column (bias[j]).
 *     Threads may run disjoint column ranges of one product concurrently (same x, w, y pointers).
 *   bias: bias[j] added to column j, or NULL.
 *   act, alpha, beta: an SO_ACT_* of so_eltwise.h applied last. IDENTITY, RELU, LEAKY_RELU and
 *     CLIP are applied in the kernel (bit-identical in every variant); the other kinds go through
 *     so_f32_unary_select(isa) on the finished outputs (so their approximation is the ISA's).
 *   y must not alias x, w or bias. k == 0 gives act(bias) (or act(0)); m == 0 or j0 >= j1 does nothing.
 *
 * dot:  W is n x k row-major (row j at w + j*ldw, ldw >= k): Y[r][j] = sum_i X[r][i] * W[j][i]
 *       (ONNX Gemm with transB = 1). Summation order, every variant and every output position:
 *       16 lane partial sums s[0..15] from +0.0f; lane l is the sequential chain
 *       s[l] = fma(X[r][i], W[j][i], s[l]) over i = l, l+16, l+32, ... (< k), in increasing i; when
 *       k % 16 != 0, the lanes l >= k % 16 then take one more step s[l] = fma(0, 0, s[l]) (the
 *       zero-filled tail of a vector step). Then the tree s[l] += s[l+8] (l < 8), s[l] += s[l+4]
 *       (l < 4), s[l] += s[l+2] (l < 2), s[0] + s[1]; then + bias[j]; then act.
 * axpy: W is k x n row-major (row i at w + i*ldw, ldw >= j1): Y[r][j] = sum_i X[r][i] * W[i][j]
 *       (ONNX MatMul x * W, Gemm with transB = 0). Each output is the sequential chain
 *       acc = fma(X[r][i], W[i][j], acc) over i = 0 .. k-1 from acc = +0.0f; then + bias[j]; then act.
 *       Y doubles as the accumulator: columns are done in blocks that stay in cache (L1 / L2)
 *       while W streams.
 * So the sums (and the inline activations) are bit-identical across ISA levels and independent of
 * m, of [j0, j1) and of the position of an output.
 */
typedef void (*so_f32_gemv_fn)(size_t m, size_t k, const float *x, size_t ldx, const float *w, size_t ldw,
                               float *y, size_t ldy, size_t j0, size_t j1, const float *bias, int act,
                               float alpha, float beta);

typedef struct so_f32_gemv {
    int isa;
    const char *name;      /* e.g. "f32_gemv_avx512" */
    so_f32_gemv_fn dot;    /* W n x k (transB = 1) */
    so_f32_gemv_fn axpy;   /* W k x n */
} so_f32_gemv;

/* The variant for ISA level isa (the best at or below it). */
const so_f32_gemv *so_f32_gemv_select(int isa);

#endif
