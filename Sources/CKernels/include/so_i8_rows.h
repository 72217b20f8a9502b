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

/* Requantization per output channel (column): clamp(round_half_even((acc + bias[j]) * scale[j]) + yzp, lo, hi). */
typedef struct so_i8_rows_requant {
    const int32_t *bias;
    const float *scale;
    int32_t yzp, lo, hi;
    int is_signed;
} so_i8_rows_requant;

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

/*
 * A convolution with output positions as rows (group 1, any kernel, stride and dilation), for
 * small maps, where a tile of 8 positions x 32 output channels wastes fewer lanes than one of 48
 * positions of a padded row x 8 channels (so_i8_conv_direct): a 7 x 7 map is 49 of 56 rows
 * rather than 49 of 64 lanes, 14 x 14 196 of 200 rather than of 224.
 *
 * The image is given as "position quads" (so_u8_quads_by_position): padded positions (hp x wp, one
 * set per phase of a strided convolution, as for so_i8_conv_direct), each position's cq channel
 * quads consecutive (pos_bytes = cq * 4 bytes). Output o (o = oy * ow + ox) is padded position
 * L = oy * wp + ox, and its tap t reads the cq quads at img + L * pos_bytes + tap_offs[t]. The
 * weights are B of so_i8_rows_pack with k = taps * cq * 4 (row (t * cq + q) * 4 + e holding input
 * channel 4q + e of tap t, zero past the channels) and n = m.
 *
 * Outputs [o0, o1) are requantized per channel j (as so_i8_requant, with bias[j] and scale[j]) to
 * y[o * ldy + j], positions as rows (the caller transposes to planes).
 */
void so_i8_conv_rows(int isa, size_t m, size_t taps, size_t cq, const int8_t *packed, const uint8_t *img,
                     const size_t *tap_offs, size_t o0, size_t o1, size_t ow, size_t wp, const so_i8_rows_requant *rq,
                     uint8_t *y, size_t ldy);

/* The weights of so_i8_conv_rows (k = taps * ceil(c / 4) * 4, n = m; so_i8_rows_packed_bytes(k, m)
   bytes) from w, m x c x taps (ONNX's layout, taps = kh * kw row-major). */
void so_i8_conv_rows_pack(size_t m, size_t c, size_t taps, const int8_t *w, int8_t *dst);

/* Quads by position from quad planes (so_u8_conv_quads): planes cq x positions of 4 bytes become
   positions x cq of 4 bytes (a transpose of 32-bit values). */
void so_u8_quads_by_position(const uint8_t *planes, size_t cq, size_t positions, uint8_t *dst);

/* Bytes: dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols. */
void so_u8_transpose(const uint8_t *src, size_t rows, size_t cols, size_t lds, uint8_t *dst, size_t ldd);

#endif
