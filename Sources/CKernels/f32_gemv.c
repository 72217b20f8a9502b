/*
 * f32 GEMV family: X (m x k, m small) times a weight matrix, unpacked, at memory bandwidth.
 *   f32_gemv_scalar   the reference (plain C, fmaf chains)
 *   f32_gemv_avx2     AVX2 + FMA: two 8-lane accumulators per dot output
 *   f32_gemv_avx512   AVX-512: one 16-lane accumulator per dot output, masked tails
 * The order of every sum is fixed by so_gemv.h, so all variants give bit-identical results.
 *
 * dot (W n x k): an mr x nr tile keeps mr*nr accumulators of 16 lanes in registers; each vector
 * step loads 16 floats of each of the mr X rows and of the nr W rows, so the nr W rows stream side
 * by side and every W float is used mr times (AVX-512: 4 x 4 tiles; AVX2: 1 x 4 and 2 x 2).
 * Column blocks of 4 W rows are the outer loop and groups of X rows the inner one, so for larger m
 * the block of W is re-read from L2, not from memory. The k % 16 tail is one more vector step with
 * zero-filled (masked) loads.
 *
 * axpy (W k x n): Y itself holds the accumulators, a block of nb columns of all m rows at a time
 * (L1 / L2). For each group of KI consecutive W rows (8 for AVX-512, 4 otherwise), a tile of up to
 * 4 Y rows by 1-4 vectors of columns is loaded into registers, takes the KI fused multiply-adds in
 * order of i (every W vector loaded once, used by the mr rows) and is stored back. W streams once,
 * KI rows side by side, in contiguous segments of nb floats; then the block gets bias and activation.
 */
#include "so_isa.h"
#include "so_gemv.h"
#include "so_eltwise.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* Every multiply-add is an explicit fma or none: no contraction of `a * b + c`. */
#pragma clang fp contract(off)

/* ---- shared helpers (plain C; inlined into each variant) ---- */

/* Activations the kernels apply themselves; the others go through so_f32_unary_select. */
static inline int gemv_inline_act(int act) {
    return act == SO_ACT_IDENTITY || act == SO_ACT_RELU || act == SO_ACT_LEAKY_RELU || act == SO_ACT_CLIP;
}

/* The inline activations, rounded as the unary reference (f32_unary.c) rounds them. Other kinds: v. */
static inline __attribute__((always_inline)) float gemv_act(float v, int act, float a, float b) {
    switch (act) {
    case SO_ACT_RELU: return v < 0 ? 0.0f : v;
    case SO_ACT_LEAKY_RELU: return v < 0 ? v * a : v;
    case SO_ACT_CLIP: {
        float t = v < a ? a : v;
        return t > b ? b : t;
    }
    default: return v;
    }
}

/* One finished dot output: the reduced sum, + bias, then an inline activation. */
static inline __attribute__((always_inline))
float gemv_finish(float s, const float *bias, size_t c, int act, float alpha, float beta) {
    if (bias) s = s + bias[c];
    return gemv_act(s, act, alpha, beta);
}

/* The dot form's reduction tree over 16 lane sums. */
static inline __attribute__((always_inline)) float gemv_tree16(const float *s) {
    float t[8], u[4];
    for (int l = 0; l < 8; l++) t[l] = s[l] + s[l + 8];
    for (int l = 0; l < 4; l++) u[l] = t[l] + t[l + 4];
    float v0 = u[0] + u[2], v1 = u[1] + u[3];
    return v0 + v1;
}

/* Non-inline activations of the dot form, over the finished rows. */
static inline __attribute__((always_inline))
void dot_unary_rows(size_t m, float *y, size_t ldy, size_t j0, size_t j1, int act, float alpha, float beta,
                    so_f32_unary_fn unary) {
    if (gemv_inline_act(act) || j1 <= j0) return;
    for (size_t r = 0; r < m; r++) unary(act, y + r * ldy + j0, y + r * ldy + j0, j1 - j0, alpha, beta);
}

/* yr[j] = act(yr[j] + b[j]) for j < nc (b may be NULL); loops the variants' compilers vectorize. */
#define GEMV_MAP(EXPR)                                                          \
    do {                                                                        \
        if (b) {                                                                \
            for (size_t j = 0; j < nc; j++) { float v = yr[j] + b[j]; yr[j] = (EXPR); } \
        } else {                                                                \
            for (size_t j = 0; j < nc; j++) { float v = yr[j]; yr[j] = (EXPR); } \
        }                                                                       \
    } while (0)

static inline __attribute__((always_inline))
void axpy_epilogue(float *restrict yr, size_t nc, const float *restrict b, int act, float alpha, float beta,
                   so_f32_unary_fn unary) {
    const float a = alpha, hi = beta;
    switch (act) {
    case SO_ACT_IDENTITY:
        if (b) GEMV_MAP(v);
        break;
    case SO_ACT_RELU: GEMV_MAP(v < 0 ? 0.0f : v); break;
    case SO_ACT_LEAKY_RELU: GEMV_MAP(v < 0 ? v * a : v); break;
    case SO_ACT_CLIP: GEMV_MAP((v < a ? a : v) > hi ? hi : (v < a ? a : v)); break;
    default:
        if (b) GEMV_MAP(v);
        unary(act, yr, yr, nc, alpha, beta);
        break;
    }
}
#undef GEMV_MAP

/* axpy column blocks: at most GEMV_AXPY_BLOCK_FLOATS floats of Y (m rows x nb columns, 128 KB: L2
   holds it, and the W segments stay long: the whole row for m = 1 and n <= 32768). Measured on Zen 4
   (n = k = 4096): 8K..64K floats are within noise of each other, 4K is ~10% slower at m = 4. */
#ifndef GEMV_AXPY_BLOCK_FLOATS
#define GEMV_AXPY_BLOCK_FLOATS 32768
#endif

static inline size_t axpy_block(size_t m) {
    size_t nb = (size_t)GEMV_AXPY_BLOCK_FLOATS / m;
    nb &= ~(size_t)63;
    return nb < 64 ? 64 : nb;
}

/* Rows r < mr of y (ldy), columns [0, nc): continue each chain with KI W rows,
   y[r][j] = fma(x[r][ii], w[ii][j], y[r][j]) for ii = 0 .. KI-1 (x: ldx, w: ldw). */
typedef void (*axpy_tile_fn)(size_t nc, const float *x, size_t ldx, const float *w, size_t ldw, float *y,
                             size_t ldy);

/* The axpy loop nest shared by the variants: column blocks outside; in a block, groups of ki W rows,
   and in a group, the X rows 4 at a time (tilek[mr-1]; tile1[mr-1] for the last k % ki W rows). */
static inline __attribute__((always_inline))
void axpy_driver(const axpy_tile_fn *tilek, const axpy_tile_fn *tile1, size_t ki, size_t m, size_t k, const float *x,
                 size_t ldx, const float *w, size_t ldw, float *y, size_t ldy, size_t j0, size_t j1,
                 const float *bias, int act, float alpha, float beta, so_f32_unary_fn unary) {
    if (m == 0) return;
    const size_t nb = axpy_block(m);
    for (size_t jb = j0; jb < j1; jb += nb) {
        const size_t nc = j1 - jb < nb ? j1 - jb : nb;
        for (size_t r = 0; r < m; r++) memset(y + r * ldy + jb, 0, nc * sizeof(float)); /* acc = +0 */
        size_t i = 0;
        for (; i + ki <= k; i += ki)
            for (size_t r0 = 0; r0 < m; r0 += 4)
                tilek[(m - r0 < 4 ? m - r0 : 4) - 1](nc, x + r0 * ldx + i, ldx, w + i * ldw + jb, ldw,
                                                     y + r0 * ldy + jb, ldy);
        for (; i < k; i++)
            for (size_t r0 = 0; r0 < m; r0 += 4)
                tile1[(m - r0 < 4 ? m - r0 : 4) - 1](nc, x + r0 * ldx + i, ldx, w + i * ldw + jb, ldw,
                                                     y + r0 * ldy + jb, ldy);
        for (size_t r = 0; r < m; r++)
            axpy_epilogue(y + r * ldy + jb, nc, bias ? bias + jb : NULL, act, alpha, beta, unary);
    }
}

/* dot: one tile of mr X rows (x, ldx) by nr W rows (w, ldw) into y (ldy); bias is at the tile's
   first column (or NULL). */
typedef void (*dot_tile_fn)(size_t k, const float *x, size_t ldx, const float *w, size_t ldw, float *y,
                            size_t ldy, const float *bias, int act, float alpha, float beta);

/* The dot loop nest shared by the vector variants: column blocks of jb W rows outside, groups of
   up to gmax X rows inside; group size mr runs main[mr-1] tiles of nrs[mr-1] columns and tail[mr-1]
   tiles of 1 column for what is left of the block. */
static inline __attribute__((always_inline))
void dot_driver(const dot_tile_fn *main, const dot_tile_fn *tail, const size_t *nrs, size_t jb, size_t gmax, size_t m,
                size_t k, const float *x, size_t ldx, const float *w, size_t ldw, float *y, size_t ldy,
                size_t j0, size_t j1, const float *bias, int act, float alpha, float beta) {
    for (size_t j = j0; j < j1; j += jb) {
        const size_t jn = j1 - j < jb ? j1 - j : jb;
        for (size_t r0 = 0; r0 < m; r0 += gmax) {
            const size_t mr = m - r0 < gmax ? m - r0 : gmax;
            const size_t nr = nrs[mr - 1];
            const float *xr = x + r0 * ldx;
            float *yr = y + r0 * ldy;
            size_t c = 0;
            for (; c + nr <= jn; c += nr)
                main[mr - 1](k, xr, ldx, w + (j + c) * ldw, ldw, yr + j + c, ldy, bias ? bias + j + c : NULL,
                             act, alpha, beta);
            for (; c < jn; c++)
                tail[mr - 1](k, xr, ldx, w + (j + c) * ldw, ldw, yr + j + c, ldy, bias ? bias + j + c : NULL,
                             act, alpha, beta);
        }
    }
}

/* ---- scalar reference ---- */

static void f32_gemv_dot_scalar(size_t m, size_t k, const float *x, size_t ldx, const float *w, size_t ldw,
                                float *y, size_t ldy, size_t j0, size_t j1, const float *bias, int act,
                                float alpha, float beta) {
    const size_t kfull = k & ~(size_t)15, rem = k - kfull;
    for (size_t j = j0; j < j1; j++) {
        const float *wj = w + j * ldw;
        for (size_t r = 0; r < m; r++) {
            const float *xr = x + r * ldx;
            float s[16];
            for (int l = 0; l < 16; l++) s[l] = 0.0f;
            for (size_t i = 0; i < kfull; i += 16)
                for (int l = 0; l < 16; l++) s[l] = fmaf(xr[i + l], wj[i + l], s[l]);
            if (rem) {
                /* the zero-filled tail step: lanes past k take fma(0, 0, s) (turns a -0 into +0) */
                for (size_t l = 0; l < 16; l++)
                    s[l] = l < rem ? fmaf(xr[kfull + l], wj[kfull + l], s[l]) : fmaf(0.0f, 0.0f, s[l]);
            }
            y[r * ldy + j] = gemv_finish(gemv_tree16(s), bias, j, act, alpha, beta);
        }
    }
    dot_unary_rows(m, y, ldy, j0, j1, act, alpha, beta, so_f32_unary_select(SO_ISA_SCALAR));
}

/* The reference does the X rows one at a time (mr only says how many). */
static inline __attribute__((always_inline))
void axpy_tile_scalar(const int MR, const int KI, size_t nc, const float *x, size_t ldx, const float *w,
                      size_t ldw, float *y, size_t ldy) {
    for (int r = 0; r < MR; r++) {
        const float *xr = x + r * ldx;
        float *restrict yr = y + r * ldy;
        for (size_t j = 0; j < nc; j++) {
            float a = yr[j];
            for (int ii = 0; ii < KI; ii++) a = fmaf(xr[ii], w[ii * ldw + j], a);
            yr[j] = a;
        }
    }
}

/* The tiles of a variant, axpy_<isa>_<mr>_k (KI W rows) and axpy_<isa>_<mr>_1, and their tables
   axpy_tk_<isa>[mr-1], axpy_t1_<isa>[mr-1], from axpy_tile_<isa>(MR, KI, ...). */
#define AXPY_TILE(ISA, MR, KN, KI)                                                                          \
    static void axpy_##ISA##_##MR##_##KN(size_t nc, const float *x, size_t ldx, const float *w, size_t ldw, \
                                         float *y, size_t ldy) {                                           \
        axpy_tile_##ISA(MR, KI, nc, x, ldx, w, ldw, y, ldy);                                               \
    }
#define AXPY_TILES(ISA, KI)                                                                                 \
    AXPY_TILE(ISA, 1, k, KI) AXPY_TILE(ISA, 2, k, KI) AXPY_TILE(ISA, 3, k, KI) AXPY_TILE(ISA, 4, k, KI)     \
    AXPY_TILE(ISA, 1, 1, 1) AXPY_TILE(ISA, 2, 1, 1) AXPY_TILE(ISA, 3, 1, 1) AXPY_TILE(ISA, 4, 1, 1)         \
    static const axpy_tile_fn axpy_tk_##ISA[4] = {axpy_##ISA##_1_k, axpy_##ISA##_2_k, axpy_##ISA##_3_k,     \
                                                  axpy_##ISA##_4_k};                                       \
    static const axpy_tile_fn axpy_t1_##ISA[4] = {axpy_##ISA##_1_1, axpy_##ISA##_2_1, axpy_##ISA##_3_1,     \
                                                  axpy_##ISA##_4_1};

#ifndef GEMV_AXPY_KI_SCALAR
#define GEMV_AXPY_KI_SCALAR 4
#endif
AXPY_TILES(scalar, GEMV_AXPY_KI_SCALAR)

static void f32_gemv_axpy_scalar(size_t m, size_t k, const float *x, size_t ldx, const float *w, size_t ldw,
                                 float *y, size_t ldy, size_t j0, size_t j1, const float *bias, int act,
                                 float alpha, float beta) {
    axpy_driver(axpy_tk_scalar, axpy_t1_scalar, GEMV_AXPY_KI_SCALAR, m, k, x, ldx, w, ldw, y, ldy, j0, j1, bias, act, alpha,
                beta, so_f32_unary_select(SO_ISA_SCALAR));
}

static const so_f32_gemv gemv_scalar = {
    SO_ISA_SCALAR, "f32_gemv_scalar", f32_gemv_dot_scalar, f32_gemv_axpy_scalar,
};

#if defined(__x86_64__)

/* ---- AVX2 ---- */
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)

/* The tree over lanes lo[0..7] = s[0..7], hi[0..7] = s[8..15]. */
static inline __attribute__((always_inline)) float tree16_avx2(__m256 lo, __m256 hi) {
    __m256 a = _mm256_add_ps(lo, hi);                                             /* s[l] + s[l+8] */
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1)); /* + [l+4] */
    __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));                                 /* + [l+2] */
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_movehdup_ps(c)));                       /* [0] + [1] */
}

/* mr x nr outputs (mr <= 4, nr <= 4), two 8-lane accumulators each. */
static inline __attribute__((always_inline))
void dot_tile_avx2(const int MR, const int NR, size_t k, const float *x, size_t ldx, const float *w, size_t ldw,
                   float *y, size_t ldy, const float *bias, int act, float alpha, float beta) {
    __m256 lo[4][4], hi[4][4];
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
#pragma clang loop unroll(full)
        for (int c = 0; c < NR; c++) lo[r][c] = hi[r][c] = _mm256_setzero_ps();
    }
    size_t i = 0;
    for (; i + 16 <= k; i += 16) {
        __m256 xl[4], xh[4];
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) {
            xl[r] = _mm256_loadu_ps(x + r * ldx + i);
            xh[r] = _mm256_loadu_ps(x + r * ldx + i + 8);
        }
#pragma clang loop unroll(full)
        for (int c = 0; c < NR; c++) {
            __m256 wl = _mm256_loadu_ps(w + c * ldw + i), wh = _mm256_loadu_ps(w + c * ldw + i + 8);
#pragma clang loop unroll(full)
            for (int r = 0; r < MR; r++) {
                lo[r][c] = _mm256_fmadd_ps(xl[r], wl, lo[r][c]);
                hi[r][c] = _mm256_fmadd_ps(xh[r], wh, hi[r][c]);
            }
        }
    }
    if (i < k) { /* the tail step: lanes past k load zeros */
        const int rem = (int)(k - i);
        const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i ml = _mm256_cmpgt_epi32(_mm256_set1_epi32(rem), iota);
        const __m256i mh = _mm256_cmpgt_epi32(_mm256_set1_epi32(rem - 8), iota);
        __m256 xl[4], xh[4];
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) {
            xl[r] = _mm256_maskload_ps(x + r * ldx + i, ml);
            xh[r] = _mm256_maskload_ps(x + r * ldx + i + 8, mh);
        }
#pragma clang loop unroll(full)
        for (int c = 0; c < NR; c++) {
            __m256 wl = _mm256_maskload_ps(w + c * ldw + i, ml), wh = _mm256_maskload_ps(w + c * ldw + i + 8, mh);
#pragma clang loop unroll(full)
            for (int r = 0; r < MR; r++) {
                lo[r][c] = _mm256_fmadd_ps(xl[r], wl, lo[r][c]);
                hi[r][c] = _mm256_fmadd_ps(xh[r], wh, hi[r][c]);
            }
        }
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
#pragma clang loop unroll(full)
        for (int c = 0; c < NR; c++)
            y[r * ldy + c] = gemv_finish(tree16_avx2(lo[r][c], hi[r][c]), bias, (size_t)c, act, alpha, beta);
    }
}

#define DOT_TILE_AVX2(MR, NR)                                                                               \
    static void dot_avx2_##MR##x##NR(size_t k, const float *x, size_t ldx, const float *w, size_t ldw,     \
                                     float *y, size_t ldy, const float *bias, int act, float alpha,        \
                                     float beta) {                                                         \
        dot_tile_avx2(MR, NR, k, x, ldx, w, ldw, y, ldy, bias, act, alpha, beta);                          \
    }
DOT_TILE_AVX2(1, 4)
DOT_TILE_AVX2(2, 2)
DOT_TILE_AVX2(1, 1)
DOT_TILE_AVX2(2, 1)
#undef DOT_TILE_AVX2

/* 16 ymm registers hold 2*mr*nr accumulators plus the loaded vectors: 1x4 and 2x2 tiles, and X rows
   in groups of 2 (a 4x1 tile would read 4 bytes of X from L2 per byte of W: ~30% slower at m = 4). */
static const dot_tile_fn dot_main_avx2[2] = {dot_avx2_1x4, dot_avx2_2x2};
static const dot_tile_fn dot_tail_avx2[2] = {dot_avx2_1x1, dot_avx2_2x1};
static const size_t dot_nr_avx2[2] = {4, 2};

static void f32_gemv_dot_avx2(size_t m, size_t k, const float *x, size_t ldx, const float *w, size_t ldw,
                              float *y, size_t ldy, size_t j0, size_t j1, const float *bias, int act,
                              float alpha, float beta) {
    dot_driver(dot_main_avx2, dot_tail_avx2, dot_nr_avx2, 4, 2, m, k, x, ldx, w, ldw, y, ldy, j0, j1, bias, act,
               alpha, beta);
    dot_unary_rows(m, y, ldy, j0, j1, act, alpha, beta, so_f32_unary_select(SO_ISA_AVX2));
}

/* axpy: mr X rows by KI W rows; column chunks of CV ymm per row in registers (4 for mr = 1,
   2 for mr = 2, 1 for mr >= 3: 16 registers), then single vectors, then a masked rest. Each W
   vector is loaded once and used by the mr rows. */
static inline __attribute__((always_inline))
void axpy_tile_avx2(const int MR, const int KI, size_t nc, const float *x, size_t ldx, const float *w, size_t ldw,
                    float *y, size_t ldy) {
    const int CV = MR == 1 ? 4 : MR == 2 ? 2 : 1;
    size_t j = 0;
    for (; j + 8 * (size_t)CV <= nc; j += 8 * (size_t)CV) {
        __m256 acc[4][4];
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) {
#pragma clang loop unroll(full)
            for (int q = 0; q < CV; q++) acc[r][q] = _mm256_loadu_ps(y + r * ldy + j + 8 * q);
        }
#pragma clang loop unroll(full)
        for (int ii = 0; ii < KI; ii++) {
#pragma clang loop unroll(full)
            for (int q = 0; q < CV; q++) {
                __m256 wv = _mm256_loadu_ps(w + ii * ldw + j + 8 * q);
#pragma clang loop unroll(full)
                for (int r = 0; r < MR; r++)
                    acc[r][q] = _mm256_fmadd_ps(_mm256_broadcast_ss(x + r * ldx + ii), wv, acc[r][q]);
            }
        }
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) {
#pragma clang loop unroll(full)
            for (int q = 0; q < CV; q++) _mm256_storeu_ps(y + r * ldy + j + 8 * q, acc[r][q]);
        }
    }
    for (; j + 8 <= nc; j += 8) {
        __m256 acc[4];
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) acc[r] = _mm256_loadu_ps(y + r * ldy + j);
#pragma clang loop unroll(full)
        for (int ii = 0; ii < KI; ii++) {
            __m256 wv = _mm256_loadu_ps(w + ii * ldw + j);
#pragma clang loop unroll(full)
            for (int r = 0; r < MR; r++) acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(x + r * ldx + ii), wv, acc[r]);
        }
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) _mm256_storeu_ps(y + r * ldy + j, acc[r]);
    }
    if (j < nc) {
        const __m256i mk = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(nc - j)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256 acc[4];
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) acc[r] = _mm256_maskload_ps(y + r * ldy + j, mk);
#pragma clang loop unroll(full)
        for (int ii = 0; ii < KI; ii++) {
            __m256 wv = _mm256_maskload_ps(w + ii * ldw + j, mk);
#pragma clang loop unroll(full)
            for (int r = 0; r < MR; r++) acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(x + r * ldx + ii), wv, acc[r]);
        }
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) _mm256_maskstore_ps(y + r * ldy + j, mk, acc[r]);
    }
}

/* 4 W rows per pass (8 measured ~5% slower at m = 4). */
#ifndef GEMV_AXPY_KI_AVX2
#define GEMV_AXPY_KI_AVX2 4
#endif
AXPY_TILES(avx2, GEMV_AXPY_KI_AVX2)

static void f32_gemv_axpy_avx2(size_t m, size_t k, const float *x, size_t ldx, const float *w, size_t ldw,
                               float *y, size_t ldy, size_t j0, size_t j1, const float *bias, int act,
                               float alpha, float beta) {
    axpy_driver(axpy_tk_avx2, axpy_t1_avx2, GEMV_AXPY_KI_AVX2, m, k, x, ldx, w, ldw, y, ldy, j0, j1, bias, act, alpha, beta,
                so_f32_unary_select(SO_ISA_AVX2));
}

#pragma clang attribute pop

static const so_f32_gemv gemv_avx2 = {
    SO_ISA_AVX2, "f32_gemv_avx2", f32_gemv_dot_avx2, f32_gemv_axpy_avx2,
};

/* ---- AVX-512 ---- */
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma,f16c"))), apply_to = function)

static inline __attribute__((always_inline)) float tree16_avx512(__m512 v) {
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)); /* s[l] + s[l+8] */
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));     /* + [l+4] */
    __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));                                     /* + [l+2] */
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_movehdup_ps(c)));                           /* [0] + [1] */
}

/* mr x nr outputs (mr <= 4, nr <= 4), one 16-lane accumulator each. */
static inline __attribute__((always_inline))
void dot_tile_avx512(const int MR, const int NR, size_t k, const float *x, size_t ldx, const float *w,
                     size_t ldw, float *y, size_t ldy, const float *bias, int act, float alpha, float beta) {
    __m512 acc[4][4];
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
#pragma clang loop unroll(full)
        for (int c = 0; c < NR; c++) acc[r][c] = _mm512_setzero_ps();
    }
    size_t i = 0;
    for (; i + 16 <= k; i += 16) {
        __m512 xv[4];
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) xv[r] = _mm512_loadu_ps(x + r * ldx + i);
#pragma clang loop unroll(full)
        for (int c = 0; c < NR; c++) {
            __m512 wv = _mm512_loadu_ps(w + c * ldw + i);
#pragma clang loop unroll(full)
            for (int r = 0; r < MR; r++) acc[r][c] = _mm512_fmadd_ps(xv[r], wv, acc[r][c]);
        }
    }
    if (i < k) { /* the tail step: lanes past k load zeros */
        const __mmask16 mk = (__mmask16)((1u << (k - i)) - 1u);
        __m512 xv[4];
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) xv[r] = _mm512_maskz_loadu_ps(mk, x + r * ldx + i);
#pragma clang loop unroll(full)
        for (int c = 0; c < NR; c++) {
            __m512 wv = _mm512_maskz_loadu_ps(mk, w + c * ldw + i);
#pragma clang loop unroll(full)
            for (int r = 0; r < MR; r++) acc[r][c] = _mm512_fmadd_ps(xv[r], wv, acc[r][c]);
        }
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
#pragma clang loop unroll(full)
        for (int c = 0; c < NR; c++)
            y[r * ldy + c] = gemv_finish(tree16_avx512(acc[r][c]), bias, (size_t)c, act, alpha, beta);
    }
}

#define DOT_TILE_AVX512(MR, NR)                                                                             \
    static void dot_avx512_##MR##x##NR(size_t k, const float *x, size_t ldx, const float *w, size_t ldw,   \
                                       float *y, size_t ldy, const float *bias, int act, float alpha,      \
                                       float beta) {                                                       \
        dot_tile_avx512(MR, NR, k, x, ldx, w, ldw, y, ldy, bias, act, alpha, beta);                        \
    }
DOT_TILE_AVX512(1, 4)
DOT_TILE_AVX512(2, 4)
DOT_TILE_AVX512(3, 4)
DOT_TILE_AVX512(4, 4)
DOT_TILE_AVX512(1, 1)
DOT_TILE_AVX512(2, 1)
DOT_TILE_AVX512(3, 1)
DOT_TILE_AVX512(4, 1)
#undef DOT_TILE_AVX512

static const dot_tile_fn dot_main_avx512[4] = {dot_avx512_1x4, dot_avx512_2x4, dot_avx512_3x4, dot_avx512_4x4};
static const dot_tile_fn dot_tail_avx512[4] = {dot_avx512_1x1, dot_avx512_2x1, dot_avx512_3x1, dot_avx512_4x1};
static const size_t dot_nr_avx512[4] = {4, 4, 4, 4};

static void f32_gemv_dot_avx512(size_t m, size_t k, const float *x, size_t ldx, const float *w, size_t ldw,
                                float *y, size_t ldy, size_t j0, size_t j1, const float *bias, int act,
                                float alpha, float beta) {
    dot_driver(dot_main_avx512, dot_tail_avx512, dot_nr_avx512, 4, 4, m, k, x, ldx, w, ldw, y, ldy, j0, j1, bias,
               act, alpha, beta);
    dot_unary_rows(m, y, ldy, j0, j1, act, alpha, beta, so_f32_unary_select(SO_ISA_AVX512));
}

/* axpy: mr X rows by KI W rows; column chunks of CV zmm per row in registers (4 for mr <= 2,
   2 for mr >= 3), then single vectors, then a masked rest. Each W vector is loaded once and used by
   the mr rows (x broadcast from memory). */
static inline __attribute__((always_inline))
void axpy_tile_avx512(const int MR, const int KI, size_t nc, const float *x, size_t ldx, const float *w,
                      size_t ldw, float *y, size_t ldy) {
    const int CV = MR <= 2 ? 4 : 2;
    size_t j = 0;
    for (; j + 16 * (size_t)CV <= nc; j += 16 * (size_t)CV) {
        __m512 acc[4][4];
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) {
#pragma clang loop unroll(full)
            for (int q = 0; q < CV; q++) acc[r][q] = _mm512_loadu_ps(y + r * ldy + j + 16 * q);
        }
#pragma clang loop unroll(full)
        for (int ii = 0; ii < KI; ii++) {
#pragma clang loop unroll(full)
            for (int q = 0; q < CV; q++) {
                __m512 wv = _mm512_loadu_ps(w + ii * ldw + j + 16 * q);
#pragma clang loop unroll(full)
                for (int r = 0; r < MR; r++) acc[r][q] = _mm512_fmadd_ps(_mm512_set1_ps(x[r * ldx + ii]), wv, acc[r][q]);
            }
        }
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) {
#pragma clang loop unroll(full)
            for (int q = 0; q < CV; q++) _mm512_storeu_ps(y + r * ldy + j + 16 * q, acc[r][q]);
        }
    }
    for (; j + 16 <= nc; j += 16) {
        __m512 acc[4];
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) acc[r] = _mm512_loadu_ps(y + r * ldy + j);
#pragma clang loop unroll(full)
        for (int ii = 0; ii < KI; ii++) {
            __m512 wv = _mm512_loadu_ps(w + ii * ldw + j);
#pragma clang loop unroll(full)
            for (int r = 0; r < MR; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(x[r * ldx + ii]), wv, acc[r]);
        }
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) _mm512_storeu_ps(y + r * ldy + j, acc[r]);
    }
    if (j < nc) {
        const __mmask16 mk = (__mmask16)((1u << (nc - j)) - 1u);
        __m512 acc[4];
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) acc[r] = _mm512_maskz_loadu_ps(mk, y + r * ldy + j);
#pragma clang loop unroll(full)
        for (int ii = 0; ii < KI; ii++) {
            __m512 wv = _mm512_maskz_loadu_ps(mk, w + ii * ldw + j);
#pragma clang loop unroll(full)
            for (int r = 0; r < MR; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(x[r * ldx + ii]), wv, acc[r]);
        }
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) _mm512_mask_storeu_ps(y + r * ldy + j, mk, acc[r]);
    }
}

/* 8 W rows per pass (~10% faster than 4 at m = 4; the same at m = 1). */
#ifndef GEMV_AXPY_KI_AVX512
#define GEMV_AXPY_KI_AVX512 8
#endif
AXPY_TILES(avx512, GEMV_AXPY_KI_AVX512)

static void f32_gemv_axpy_avx512(size_t m, size_t k, const float *x, size_t ldx, const float *w, size_t ldw,
                                 float *y, size_t ldy, size_t j0, size_t j1, const float *bias, int act,
                                 float alpha, float beta) {
    axpy_driver(axpy_tk_avx512, axpy_t1_avx512, GEMV_AXPY_KI_AVX512, m, k, x, ldx, w, ldw, y, ldy, j0, j1, bias, act, alpha,
                beta, so_f32_unary_select(SO_ISA_AVX512));
}

#pragma clang attribute pop

static const so_f32_gemv gemv_avx512 = {
    SO_ISA_AVX512, "f32_gemv_avx512", f32_gemv_dot_avx512, f32_gemv_axpy_avx512,
};

#endif /* __x86_64__ */

const so_f32_gemv *so_f32_gemv_select(int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX512) return &gemv_avx512;
    if (isa >= SO_ISA_AVX2) return &gemv_avx2;
#endif
    (void)isa;
    return &gemv_scalar;
}
