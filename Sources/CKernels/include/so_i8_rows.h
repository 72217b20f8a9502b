#ifndef SWIFTONNX_SO_I8_ROWS_H
#define SWIFTONNX_SO_I8_ROWS_H
#include <stddef.h>
#include <stdint.h>

/*
 * Integer matrix product in its natural orientation, for MatMulInteger with a constant right-hand
 * side: Y (m x n) from A (m x k, unsigned bytes, row-major with leading dimension lda, read in
 * place: nothing is packed per call) and a constant B (k x n, signed bytes) packed once:
 *     s[i][j] = sum over kk of A[i][kk] * B[kk][j]                  (exact, int32)
 *     v[i][j] = s[i][j] + corr[j] - bzp[j] * rowsum(A[i])            (wrapping int32 arithmetic)
 * with corr[j] typically -azp * colsum(B[:, j]) + k * azp * bzp[j], so that v is
 * sum (A - azp)(B - bzp), exact whenever that fits int32 (k below 33,000). The result is stored as
 * int32, or as float32 (float)v * scale[j] (scale per column) or (float)v * scale[0]: the same two
 * roundings as a Cast to float and a Mul.
 *
 * With AVX-512 VNNI, a tile is 8 rows x 32 columns: one vpdpbusd multiplies a row's four
 * consecutive bytes (broadcast) by four values of 16 columns. This is the transpose of so_i8_gemm's
 * orientation, which packs the activations per call and transposes the product back.
 *
 * Packed B: 32-column panels; panel p holds, for each quad of k (kpad = k rounded up to 4), 32
 * columns x 4 signed bytes (column j's four values at 4j), zero past k and past n.
 */

size_t so_i8_rows_packed_bytes(size_t k, size_t n);
/* b: element (kk, j) at b[kk * ldb + j]; also writes colsum[j] = sum over kk of b (colsum may be NULL). */
void so_i8_rows_pack(size_t k, size_t n, const int8_t *b, size_t ldb, int8_t *dst, int32_t *colsum);

typedef struct so_i8_rows_out {
    const int32_t *corr;   /* n values added to every row (NULL: 0) */
    const int32_t *bzp;    /* n weight zero points (NULL: all 0; then no row sums are taken) */
    const float *scale;    /* NULL: int32 output; else float output times scale[per_column ? j : 0] */
    int per_column;
    void *y;               /* element (i, j) at y + i * ldy + j (int32_t or float) */
    size_t ldy;
} so_i8_rows_out;

/* Rows [i0, i1) of Y (rows of A at a + i * lda; out.y is the whole output, row i written at i).
   Runs the VNNI variant when `isa` is SO_ISA_AVX512 and this CPU has AVX-512 VNNI, the scalar
   reference otherwise; both give the same values. */
void so_i8_rows_gemm(int isa, size_t i0, size_t i1, size_t n, size_t k, const uint8_t *a, size_t lda,
                     const int8_t *packed, const so_i8_rows_out *out);

/* 1 when so_i8_rows_gemm has a fast variant at this ISA level on this CPU. */
int so_i8_rows_fast(int isa);

#endif
