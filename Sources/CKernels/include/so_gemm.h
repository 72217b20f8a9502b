#ifndef SWIFTONNX_SO_GEMM_H
#define SWIFTONNX_SO_GEMM_H
#include <stddef.h>

/*
 * Packed float32 GEMM: C (m x n, row-major, leading dimension ldc) = A (m x k) * B (k x n),
 * with an optional epilogue applied to each output tile while it is in registers or L1.
 *
 * A is packed once (weights, at plan time) into panels of `mr` rows covering all of k:
 * panel p holds, for each kk < k, the mr values A[p*mr + r][kk] (rows past m are zero), so the
 * panels of a k-block [k0, k0+kc) start at packed + p*mr*k + k0*mr.
 * B is packed per k-block into panels of `nr` columns: panel q holds, for each kk < kc,
 * the nr values B[k0+kk][q*nr + c] (columns past n are zero).
 *
 * Every element of C is the same sequential chain of fused multiply-adds over kk = 0, 1, ..., k-1
 * starting from 0, whatever the ISA, the tile shape or where the element falls in a tile: results
 * are bit-identical across variants and independent of position (zero padding adds exact zeros).
 */

typedef struct so_gemm_epilogue {
    const float *bias;   /* bias[row] added to every element of that row of C, or NULL */
    const float *cbias;  /* cbias[col] added to every row of C (a dense layer's bias), or NULL; after bias */
    const float *z;      /* residual added after the biases, laid out like C with leading dim ldz, or NULL */
    size_t ldz;
    int act;             /* SO_ACT_* of so_eltwise.h, applied last */
    float alpha, beta;   /* its parameters */
} so_gemm_epilogue;

typedef struct so_f32_gemm {
    int isa;
    int mr, nr;
    const char *name;    /* e.g. "f32_gemm_8x32_avx512" */
    /* Packs A (element (i, kk) at a[i*rs + kk*cs]: rs = lda, cs = 1 for row-major, swapped for
       transposed) into mr-row panels: dst holds so_f32_gemm_packed_a_floats(mr, m, k) floats. */
    void (*pack_a)(size_t m, size_t k, const float *a, size_t rs, size_t cs, float *dst);
    /* Packs a kc x nc block of B (element (kk, j) at b[kk*rs + j*cs]) into nr-column panels:
       dst holds so_f32_gemm_packed_b_floats(nr, kc, nc) floats. */
    void (*pack_b)(size_t kc, size_t nc, const float *b, size_t rs, size_t cs, float *dst);
    /* C[0..mc)[0..nc) (+)= A-panels * B-panels over one k-block of length kc. `pa` points at the
       first A panel's k-block, consecutive A panels are `pa_stride` floats apart; `pb` points at
       the first B panel's k-block, consecutive B panels are `pb_stride` floats apart (nr * kc for
       a block packed by pack_b; nr * k for panels covering all of k, as so_f32_im2col_packed
       writes them). accumulate = 0: C is overwritten; 1: the chain continues from C. ep (may be NULL)
       is applied when last != 0 (the final k-block); its bias and z are relative to this block
       (bias[i] for row i of the block, z + i*ldz + j). */
    void (*macro)(size_t mc, size_t nc, size_t kc, const float *pa, size_t pa_stride, const float *pb,
                  size_t pb_stride, float *c, size_t ldc, int accumulate, int last, const so_gemm_epilogue *ep);
    /* macro with B read in place, unpacked: element (kk, j) of the k-block at b[kk * ldb + j] (b at
       the block's first row and column; nothing past column nc is read). No packing pass: faster
       when few row tiles reuse each B panel (small m) or B is used once. Same results, bit for bit. */
    void (*macro_direct)(size_t mc, size_t nc, size_t kc, const float *pa, size_t pa_stride, const float *b,
                         size_t ldb, float *c, size_t ldc, int accumulate, int last, const so_gemm_epilogue *ep);
    /* macro with A read in place, unpacked: element (i, kk) of the k-block at a[i * lda + kk] (a at the
       block's first row and column), B in packed panels as for macro; kc <= SO_F32_GEMM_ROWA_KC_MAX.
       No packing pass for A (a dense layer's activations): whole row tiles broadcast from A's rows,
       a last partial tile is copied once per call, and no row past mc is read. Same results, bit for
       bit. */
    void (*macro_rowa)(size_t mc, size_t nc, size_t kc, const float *a, size_t lda, const float *pb,
                       size_t pb_stride, float *c, size_t ldc, int accumulate, int last, const so_gemm_epilogue *ep);
} so_f32_gemm;

/* The longest k-block macro_rowa takes. */
#define SO_F32_GEMM_ROWA_KC_MAX 512

/* Floats of packed A for m x k with panels of mr rows. */
size_t so_f32_gemm_packed_a_floats(int mr, size_t m, size_t k);
/* Floats of a packed kc x nc block of B with panels of nr columns. */
size_t so_f32_gemm_packed_b_floats(int nr, size_t kc, size_t nc);

/* The variant for ISA level isa (the best at or below it). */
const so_f32_gemm *so_f32_gemm_select(int isa);

#endif
