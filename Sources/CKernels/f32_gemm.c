/*
 * f32 GEMM family: packing and macro-kernels over register-blocked micro-tiles.
 *   f32_gemm_4x8_scalar    the reference (plain C, fmaf chains)
 *   f32_gemm_6x16_avx2     AVX2 + FMA, 12 ymm accumulators
 *   f32_gemm_8x32_avx512   AVX-512, 16 zmm accumulators, masked edges
 * Every element is the chain acc = fma(a[i][kk], b[kk][j], acc) for kk = 0..k-1 from acc = 0, so
 * all variants give bit-identical results (see so_gemm.h).
 */
#include "so_isa.h"
#include "so_gemm.h"
#include "so_eltwise.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#pragma clang fp contract(off)

size_t so_f32_gemm_packed_a_floats(int mr, size_t m, size_t k) {
    return ((m + (size_t)mr - 1) / (size_t)mr) * (size_t)mr * k;
}

size_t so_f32_gemm_packed_b_floats(int nr, size_t kc, size_t nc) {
    return ((nc + (size_t)nr - 1) / (size_t)nr) * (size_t)nr * kc;
}

/* ---- shared helpers (plain C; inlined into the ISA variants, which vectorize them) ---- */

static inline __attribute__((always_inline))
void pack_a_body(int mr, size_t m, size_t k, const float *a, size_t rs, size_t cs, float *dst) {
    for (size_t p = 0; p < m; p += (size_t)mr) {
        size_t rows = m - p < (size_t)mr ? m - p : (size_t)mr;
        for (size_t kk = 0; kk < k; kk++) {
            for (size_t r = 0; r < rows; r++) dst[r] = a[(p + r) * rs + kk * cs];
            for (size_t r = rows; r < (size_t)mr; r++) dst[r] = 0.0f;
            dst += mr;
        }
    }
}

static inline __attribute__((always_inline))
void pack_b_body(int nr, size_t kc, size_t nc, const float *b, size_t rs, size_t cs, float *dst) {
    for (size_t q = 0; q < nc; q += (size_t)nr) {
        size_t cols = nc - q < (size_t)nr ? nc - q : (size_t)nr;
        if (cs == 1 && cols == (size_t)nr) {
            for (size_t kk = 0; kk < kc; kk++) {
                const float *src = b + kk * rs + q;
                for (int c = 0; c < nr; c++) dst[c] = src[c];
                dst += nr;
            }
        } else {
            for (size_t kk = 0; kk < kc; kk++) {
                const float *src = b + kk * rs + q * cs;
                for (size_t c = 0; c < cols; c++) dst[c] = src[c * cs];
                for (size_t c = cols; c < (size_t)nr; c++) dst[c] = 0.0f;
                dst += nr;
            }
        }
    }
}

/* Applies the epilogue to a rows x cols block of C (edge tiles and the reference). */
static inline __attribute__((always_inline))
void epilogue_rows(float *c, size_t ldc, size_t rows, size_t cols, const so_gemm_epilogue *ep,
                   so_f32_unary_fn unary) {
    for (size_t r = 0; r < rows; r++) {
        float *row = c + r * ldc;
        if (ep->bias) {
            float bv = ep->bias[r];
            for (size_t j = 0; j < cols; j++) row[j] += bv;
        }
        if (ep->cbias) {
            for (size_t j = 0; j < cols; j++) row[j] += ep->cbias[j];
        }
        if (ep->z) {
            const float *zr = ep->z + r * ep->ldz;
            for (size_t j = 0; j < cols; j++) row[j] += zr[j];
        }
        if (ep->act != SO_ACT_IDENTITY) unary(ep->act, row, row, cols, ep->alpha, ep->beta);
    }
}

/* ---- scalar reference: 4x8 tiles ---- */

#define REF_MR 4
#define REF_NR 8

static void f32_gemm_pack_a_scalar(size_t m, size_t k, const float *a, size_t rs, size_t cs, float *dst) {
    pack_a_body(REF_MR, m, k, a, rs, cs, dst);
}

static void f32_gemm_pack_b_scalar(size_t kc, size_t nc, const float *b, size_t rs, size_t cs, float *dst) {
    pack_b_body(REF_NR, kc, nc, b, rs, cs, dst);
}

static inline __attribute__((always_inline))
void gemm_4x8_scalar_body(size_t mc, size_t nc, size_t kc, const float *pa, size_t pa_stride, const float *pb,
                          size_t pb_stride, size_t bs, int direct, float *c, size_t ldc, int accumulate, int last,
                          const so_gemm_epilogue *ep) {
    for (size_t i0 = 0; i0 < mc; i0 += REF_MR) {
        const float *a = pa + (i0 / REF_MR) * pa_stride;
        size_t rows = mc - i0 < REF_MR ? mc - i0 : REF_MR;
        for (size_t j0 = 0; j0 < nc; j0 += REF_NR) {
            const float *b = direct ? pb + j0 : pb + (j0 / REF_NR) * pb_stride;
            size_t cols = nc - j0 < REF_NR ? nc - j0 : REF_NR;
            for (size_t r = 0; r < rows; r++) {
                for (size_t j = 0; j < cols; j++) {
                    float *cp = c + (i0 + r) * ldc + j0 + j;
                    float acc = accumulate ? *cp : 0.0f;
                    for (size_t kk = 0; kk < kc; kk++) acc = fmaf(a[kk * REF_MR + r], b[kk * bs + j], acc);
                    *cp = acc;
                }
            }
        }
    }
    if (last && ep) epilogue_rows(c, ldc, mc, nc, ep, so_f32_unary_select(SO_ISA_SCALAR));
}

static void f32_gemm_4x8_scalar(size_t mc, size_t nc, size_t kc, const float *pa, size_t pa_stride,
                                const float *pb, size_t pb_stride, float *c, size_t ldc, int accumulate, int last,
                                const so_gemm_epilogue *ep) {
    gemm_4x8_scalar_body(mc, nc, kc, pa, pa_stride, pb, pb_stride, REF_NR, 0, c, ldc, accumulate, last, ep);
}

static void f32_gemm_4x8_scalar_direct(size_t mc, size_t nc, size_t kc, const float *pa, size_t pa_stride,
                                       const float *b, size_t ldb, float *c, size_t ldc, int accumulate, int last,
                                       const so_gemm_epilogue *ep) {
    gemm_4x8_scalar_body(mc, nc, kc, pa, pa_stride, b, 0, ldb, 1, c, ldc, accumulate, last, ep);
}

static void f32_gemm_4x8_scalar_rowa(size_t mc, size_t nc, size_t kc, const float *a, size_t lda, const float *pb,
                                     size_t pb_stride, float *c, size_t ldc, int accumulate, int last,
                                     const so_gemm_epilogue *ep) {
    for (size_t i = 0; i < mc; i++) {
        for (size_t j = 0; j < nc; j++) {
            const float *b = pb + (j / REF_NR) * pb_stride + j % REF_NR;
            float *cp = c + i * ldc + j;
            float acc = accumulate ? *cp : 0.0f;
            for (size_t kk = 0; kk < kc; kk++) acc = fmaf(a[i * lda + kk], b[kk * REF_NR], acc);
            *cp = acc;
        }
    }
    if (last && ep) epilogue_rows(c, ldc, mc, nc, ep, so_f32_unary_select(SO_ISA_SCALAR));
}

static const so_f32_gemm gemm_scalar = {
    SO_ISA_SCALAR, REF_MR, REF_NR, "f32_gemm_4x8_scalar",
    f32_gemm_pack_a_scalar, f32_gemm_pack_b_scalar, f32_gemm_4x8_scalar, f32_gemm_4x8_scalar_direct,
    f32_gemm_4x8_scalar_rowa,
};

#if defined(__x86_64__)

/* Activations the micro-kernels apply in registers; others go through the unary family. */
static inline int inline_act(int act) {
    return act == SO_ACT_IDENTITY || act == SO_ACT_RELU || act == SO_ACT_CLIP || act == SO_ACT_LEAKY_RELU
        || act == SO_ACT_HARD_SIGMOID || act == SO_ACT_HARD_SWISH;
}

/* Columns per stripe for an activation applied after the tiles (a whole stripe of rows in one
   unary call each): Zen 1, GELU after a 128 x 384 x 1536 dense layer, 16-column calls cost
   4.3 ns per element, 128-column calls 3.7. */
#define SO_GEMM_ACT_COLS 128

/* When *ep has an activation the tiles do not apply in registers: points *ep at a copy of it
   without the activation (in *tile_ep) and returns the original, for act_ep_stripe; else NULL. */
static inline __attribute__((always_inline))
const so_gemm_epilogue *split_act(const so_gemm_epilogue **ep, so_gemm_epilogue *tile_ep) {
    const so_gemm_epilogue *act_ep = *ep;
    if (!act_ep || inline_act(act_ep->act)) return NULL;
    *tile_ep = *act_ep;
    tile_ep->act = SO_ACT_IDENTITY;
    *ep = tile_ep;
    return act_ep;
}

/* With the block's columns [*from, done) stored, applies ep->act to them once they make a whole
   stripe or reach nc. */
static inline __attribute__((always_inline))
void act_ep_stripe(const so_gemm_epilogue *ep, int isa, float *c, size_t ldc, size_t mc, size_t nc, size_t done,
                   size_t *from) {
    if (done < nc && done - *from < SO_GEMM_ACT_COLS) return;
    so_f32_unary_fn unary = so_f32_unary_select(isa);
    for (size_t r = 0; r < mc; r++)
        unary(ep->act, c + r * ldc + *from, c + r * ldc + *from, done - *from, ep->alpha, ep->beta);
    *from = done;
}

/* ---- AVX2: 6x16 ---- */
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)

#define A2_MR 6
#define A2_NR 16

static void f32_gemm_pack_a_avx2(size_t m, size_t k, const float *a, size_t rs, size_t cs, float *dst) {
    pack_a_body(A2_MR, m, k, a, rs, cs, dst);
}

static void f32_gemm_pack_b_avx2(size_t kc, size_t nc, const float *b, size_t rs, size_t cs, float *dst) {
    pack_b_body(A2_NR, kc, nc, b, rs, cs, dst);
}

/* t < 0 ? 0 : (t > 1 ? 1 : t), NaN kept, exactly as the unary family's hard sigmoid clamp. */
static inline __m256 hsig_avx2(__m256 t) {
    t = _mm256_blendv_ps(t, _mm256_setzero_ps(), _mm256_cmp_ps(t, _mm256_setzero_ps(), _CMP_LT_OQ));
    return _mm256_blendv_ps(t, _mm256_set1_ps(1.0f), _mm256_cmp_ps(t, _mm256_set1_ps(1.0f), _CMP_GT_OQ));
}

static inline __m256 act_avx2(__m256 v, int act, float alpha, float beta) {
    switch (act) {
    /* unfused multiply and add, like the unary family */
    case SO_ACT_HARD_SIGMOID:
        return hsig_avx2(_mm256_add_ps(_mm256_mul_ps(v, _mm256_set1_ps(alpha)), _mm256_set1_ps(beta)));
    case SO_ACT_HARD_SWISH:
        return _mm256_mul_ps(v, hsig_avx2(_mm256_add_ps(_mm256_mul_ps(v, _mm256_set1_ps(1.0f / 6.0f)),
                                                         _mm256_set1_ps(0.5f))));
    case SO_ACT_RELU: return _mm256_max_ps(_mm256_setzero_ps(), v);              /* NaN stays NaN */
    case SO_ACT_CLIP: return _mm256_min_ps(_mm256_set1_ps(beta), _mm256_max_ps(_mm256_set1_ps(alpha), v));
    case SO_ACT_LEAKY_RELU: {
        __m256 neg = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ);
        return _mm256_blendv_ps(v, _mm256_mul_ps(v, _mm256_set1_ps(alpha)), neg);
    }
    default: return v;
    }
}

/* Lanes [0, n) of two 8-float halves (n in 0..16): the masks of a partial tile's columns. */
static inline __attribute__((always_inline)) void col_masks_avx2(int n, __m256i *m0, __m256i *m1) {
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    *m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), iota);
    *m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - 8), iota);
}

/* One 6x16 tile, of which the first `rows` rows (1..6) and `cols` columns (1..16) are C's, into c
   (ldc); epilogue when ep != NULL (bias relative to the tile's first row, z at the tile's first
   element with leading dim ldz). A's element (r, kk) is at a[r * ars + kk * acs] (packed panels:
   ars = 1, acs = 6; row-major A: ars = lda, acs = 1). Only the first `live` rows (a constant) are
   multiplied; rows from `rows` to `live` come from the zero padding of packed A and are never stored;
   columns past `cols` are masked: nothing outside the tile is read or written. */
static inline __attribute__((always_inline))
void ukr_6x16_avx2(size_t kc, const float *a, size_t ars, size_t acs, const float *b, size_t bs, int bmask,
                   float *c, size_t ldc,
                   int accumulate, const so_gemm_epilogue *ep, const float *z, size_t ldz, int rows, int cols,
                   const int two, const int live) {
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    const int full = cols == A2_NR;
    __m256i m0, m1;
    col_masks_avx2(cols, &m0, &m1);
#define SO_LD(p, lo, hi)                                                                                \
    do {                                                                                                \
        if (full) { lo = _mm256_loadu_ps(p); hi = _mm256_loadu_ps((p) + 8); }                          \
        else { lo = _mm256_maskload_ps(p, m0); hi = _mm256_maskload_ps((p) + 8, m1); }                 \
    } while (0)
#define SO_ST(p, lo, hi)                                                                                \
    do {                                                                                                \
        if (full) { _mm256_storeu_ps(p, lo); _mm256_storeu_ps((p) + 8, hi); }                          \
        else { _mm256_maskstore_ps(p, m0, lo); _mm256_maskstore_ps((p) + 8, m1, hi); }                 \
    } while (0)
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_ps();
    if (accumulate) {
        if (live > 0) SO_LD(c + 0 * ldc, c00, c01);
        if (live > 1 && rows > 1) SO_LD(c + 1 * ldc, c10, c11);
        if (live > 2 && rows > 2) SO_LD(c + 2 * ldc, c20, c21);
        if (live > 3 && rows > 3) SO_LD(c + 3 * ldc, c30, c31);
        if (live > 4 && rows > 4) SO_LD(c + 4 * ldc, c40, c41);
        if (live > 5 && rows > 5) SO_LD(c + 5 * ldc, c50, c51);
    }
    /* cols <= 8 (two == 0): the right half is all padding; only the left half is multiplied. */
    if (!two) {
        for (size_t kk = 0; kk < kc; kk++) {
            const __m256 b0 = bmask ? _mm256_maskload_ps(b, m0) : _mm256_loadu_ps(b);
            if (live > 0) c00 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 0 * ars), b0, c00);
            if (live > 1) c10 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 1 * ars), b0, c10);
            if (live > 2) c20 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 2 * ars), b0, c20);
            if (live > 3) c30 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 3 * ars), b0, c30);
            if (live > 4) c40 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 4 * ars), b0, c40);
            if (live > 5) c50 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 5 * ars), b0, c50);
            a += acs;
            b += bs;
        }
        kc = 0;
    }
    for (size_t kk = 0; kk < kc; kk++) {
        __m256 b0, b1;
        if (bmask) { b0 = _mm256_maskload_ps(b, m0); b1 = _mm256_maskload_ps(b + 8, m1); }
        else { b0 = _mm256_loadu_ps(b); b1 = _mm256_loadu_ps(b + 8); }
        /* Packed panels are one stream per k-block; 32 steps (2 KB) ahead keeps the first row tile
           from waiting on weights not in cache where the stream crosses pages (Zen 1, a 32-row
           dense layer over 28 MB of weights: 1000 -> 930 us). Later tiles find the lines in L1. */
        if (!bmask && bs == A2_NR) _mm_prefetch((const char *)(b + 32 * A2_NR), _MM_HINT_T0);
        __m256 av;
        if (live > 0) { av = _mm256_broadcast_ss(a + 0 * ars); c00 = _mm256_fmadd_ps(av, b0, c00); c01 = _mm256_fmadd_ps(av, b1, c01); }
        if (live > 1) { av = _mm256_broadcast_ss(a + 1 * ars); c10 = _mm256_fmadd_ps(av, b0, c10); c11 = _mm256_fmadd_ps(av, b1, c11); }
        if (live > 2) { av = _mm256_broadcast_ss(a + 2 * ars); c20 = _mm256_fmadd_ps(av, b0, c20); c21 = _mm256_fmadd_ps(av, b1, c21); }
        if (live > 3) { av = _mm256_broadcast_ss(a + 3 * ars); c30 = _mm256_fmadd_ps(av, b0, c30); c31 = _mm256_fmadd_ps(av, b1, c31); }
        if (live > 4) { av = _mm256_broadcast_ss(a + 4 * ars); c40 = _mm256_fmadd_ps(av, b0, c40); c41 = _mm256_fmadd_ps(av, b1, c41); }
        if (live > 5) { av = _mm256_broadcast_ss(a + 5 * ars); c50 = _mm256_fmadd_ps(av, b0, c50); c51 = _mm256_fmadd_ps(av, b1, c51); }
        a += acs;
        b += bs;
    }
    if (ep) {
        if (ep->bias) {
            const float *bi = ep->bias;
            __m256 v;
            v = _mm256_set1_ps(bi[0]); c00 = _mm256_add_ps(c00, v); c01 = _mm256_add_ps(c01, v);
            v = _mm256_set1_ps(rows > 1 ? bi[1] : 0.0f); c10 = _mm256_add_ps(c10, v); c11 = _mm256_add_ps(c11, v);
            v = _mm256_set1_ps(rows > 2 ? bi[2] : 0.0f); c20 = _mm256_add_ps(c20, v); c21 = _mm256_add_ps(c21, v);
            v = _mm256_set1_ps(rows > 3 ? bi[3] : 0.0f); c30 = _mm256_add_ps(c30, v); c31 = _mm256_add_ps(c31, v);
            v = _mm256_set1_ps(rows > 4 ? bi[4] : 0.0f); c40 = _mm256_add_ps(c40, v); c41 = _mm256_add_ps(c41, v);
            v = _mm256_set1_ps(rows > 5 ? bi[5] : 0.0f); c50 = _mm256_add_ps(c50, v); c51 = _mm256_add_ps(c51, v);
        }
        if (ep->cbias) {
            __m256 lo, hi;
            SO_LD(ep->cbias, lo, hi);
            c00 = _mm256_add_ps(c00, lo); c01 = _mm256_add_ps(c01, hi);
            c10 = _mm256_add_ps(c10, lo); c11 = _mm256_add_ps(c11, hi);
            c20 = _mm256_add_ps(c20, lo); c21 = _mm256_add_ps(c21, hi);
            c30 = _mm256_add_ps(c30, lo); c31 = _mm256_add_ps(c31, hi);
            c40 = _mm256_add_ps(c40, lo); c41 = _mm256_add_ps(c41, hi);
            c50 = _mm256_add_ps(c50, lo); c51 = _mm256_add_ps(c51, hi);
        }
        if (z) {
            __m256 lo, hi;
#define SO_ADDZ(r, x0, x1)                                                                              \
            if (rows > r) { SO_LD(z + r * ldz, lo, hi); x0 = _mm256_add_ps(x0, lo); x1 = _mm256_add_ps(x1, hi); }
            SO_ADDZ(0, c00, c01) SO_ADDZ(1, c10, c11) SO_ADDZ(2, c20, c21)
            SO_ADDZ(3, c30, c31) SO_ADDZ(4, c40, c41) SO_ADDZ(5, c50, c51)
#undef SO_ADDZ
        }
        int act = ep->act;
        if (act != SO_ACT_IDENTITY && inline_act(act)) {
            float al = ep->alpha, be = ep->beta;
            c00 = act_avx2(c00, act, al, be); c01 = act_avx2(c01, act, al, be);
            c10 = act_avx2(c10, act, al, be); c11 = act_avx2(c11, act, al, be);
            c20 = act_avx2(c20, act, al, be); c21 = act_avx2(c21, act, al, be);
            c30 = act_avx2(c30, act, al, be); c31 = act_avx2(c31, act, al, be);
            c40 = act_avx2(c40, act, al, be); c41 = act_avx2(c41, act, al, be);
            c50 = act_avx2(c50, act, al, be); c51 = act_avx2(c51, act, al, be);
        }
    }
    SO_ST(c + 0 * ldc, c00, c01);
    if (live > 1 && rows > 1) SO_ST(c + 1 * ldc, c10, c11);
    if (live > 2 && rows > 2) SO_ST(c + 2 * ldc, c20, c21);
    if (live > 3 && rows > 3) SO_ST(c + 3 * ldc, c30, c31);
    if (live > 4 && rows > 4) SO_ST(c + 4 * ldc, c40, c41);
    if (live > 5 && rows > 5) SO_ST(c + 5 * ldc, c50, c51);
#undef SO_LD
#undef SO_ST
    if (ep && !inline_act(ep->act)) {
        so_f32_unary_fn unary = so_f32_unary_select(SO_ISA_AVX2);
        for (int r = 0; r < rows; r++) unary(ep->act, c + r * ldc, c + r * ldc, (size_t)cols, ep->alpha, ep->beta);
    }
}

/* A tile of `rows` rows multiplies only those rows (a constant per instance), not the zero padding
   of packed A: m = 32 is five full tiles and one of two rows, which at six rows cost a sixth of the
   GEMM for nothing. Each element's FMA chain is the same in every instance. */
#define UKR_6X16_ROWS(...)                                                                              \
    do {                                                                                                \
        switch (rows) {                                                                                 \
        case 1: ukr_6x16_avx2(__VA_ARGS__, 1); break;                                                   \
        case 2: ukr_6x16_avx2(__VA_ARGS__, 2); break;                                                   \
        case 3: ukr_6x16_avx2(__VA_ARGS__, 3); break;                                                   \
        case 4: ukr_6x16_avx2(__VA_ARGS__, 4); break;                                                   \
        default: ukr_6x16_avx2(__VA_ARGS__, A2_MR); break;                                              \
        }                                                                                               \
    } while (0)

/* direct = 0: B in packed panels (pb_stride apart, nr floats per kk); 1: B row-major in place,
   pb at column 0 of the block, bs = its leading dimension (partial panels read with lane masks). */
static inline __attribute__((always_inline))
void gemm_6x16_avx2_body(size_t mc, size_t nc, size_t kc, const float *pa, size_t pa_stride, const float *pb,
                         size_t pb_stride, size_t bs, int direct, float *c, size_t ldc, int accumulate, int last,
                         const so_gemm_epilogue *ep, const int rowa, const float *tail) {
    if (!last) ep = NULL;
    /* An activation the tile does not apply in registers (GELU, sigmoid, tanh, ...) runs once a
       stripe of SO_GEMM_ACT_COLS columns is stored, over each row of it. */
    so_gemm_epilogue tile_ep;
    const so_gemm_epilogue *act_ep = split_act(&ep, &tile_ep);
    size_t act_from = 0;
    for (size_t j0 = 0; j0 < nc; j0 += A2_NR) {
        const float *b = direct ? pb + j0 : pb + (j0 / A2_NR) * pb_stride;
        const int cols = nc - j0 < A2_NR ? (int)(nc - j0) : A2_NR;
        for (size_t i0 = 0; i0 < mc; i0 += A2_MR) {
            const float *a = rowa ? tail : pa + (i0 / A2_MR) * pa_stride;
            const int rows = mc - i0 < A2_MR ? (int)(mc - i0) : A2_MR;
            float *ct = c + i0 * ldc + j0;
            so_gemm_epilogue local;
            const so_gemm_epilogue *e = NULL;
            if (ep) {
                local = *ep;
                if (local.bias) local.bias += i0;
                if (local.cbias) local.cbias += j0;
                e = &local;
            }
            const float *z = ep && ep->z ? ep->z + i0 * ep->ldz + j0 : NULL;
            const size_t ldz = ep ? ep->ldz : 0;
            /* The next stripe's lines of these rows, requested now: C's rows are ldc apart, more
               streams than the hardware prefetcher follows, so an output not in cache would
               otherwise wait on every line (3 -> 64 channel stem conv: 2.2 against 1.1 ms). */
            if (j0 + A2_NR < nc) {
                const float *pf = ct + A2_NR;
                for (int r = 0; r < rows; r++) {
                    _mm_prefetch((const char *)(pf + r * ldc), _MM_HINT_T0);
                    _mm_prefetch((const char *)(pf + r * ldc + A2_NR - 1), _MM_HINT_T0);
                }
            }
            if (rowa && rows == A2_MR) {
                /* a whole tile of row-major A: broadcasts from its rows in place */
                const float *ar = pa + i0 * pa_stride;
                if (cols <= 8) ukr_6x16_avx2(kc, ar, pa_stride, 1, b, A2_NR, 0, ct, ldc, accumulate, e, z, ldz, rows, cols, 0, A2_MR);
                else ukr_6x16_avx2(kc, ar, pa_stride, 1, b, A2_NR, 0, ct, ldc, accumulate, e, z, ldz, rows, cols, 1, A2_MR);
            } else if (cols <= 8) {
                if (!direct) UKR_6X16_ROWS(kc, a, 1, A2_MR, b, A2_NR, 0, ct, ldc, accumulate, e, z, ldz, rows, cols, 0);
                else UKR_6X16_ROWS(kc, a, 1, A2_MR, b, bs, 1, ct, ldc, accumulate, e, z, ldz, rows, cols, 0);
            } else if (!direct) {
                UKR_6X16_ROWS(kc, a, 1, A2_MR, b, A2_NR, 0, ct, ldc, accumulate, e, z, ldz, rows, cols, 1);
            } else if (cols == A2_NR) {
                UKR_6X16_ROWS(kc, a, 1, A2_MR, b, bs, 0, ct, ldc, accumulate, e, z, ldz, rows, cols, 1);
            } else {
                UKR_6X16_ROWS(kc, a, 1, A2_MR, b, bs, 1, ct, ldc, accumulate, e, z, ldz, rows, cols, 1);
            }
        }
        if (act_ep) act_ep_stripe(act_ep, SO_ISA_AVX2, c, ldc, mc, nc, j0 + (size_t)cols, &act_from);
    }
}

static void f32_gemm_6x16_avx2(size_t mc, size_t nc, size_t kc, const float *pa, size_t pa_stride,
                               const float *pb, size_t pb_stride, float *c, size_t ldc, int accumulate, int last,
                               const so_gemm_epilogue *ep) {
    gemm_6x16_avx2_body(mc, nc, kc, pa, pa_stride, pb, pb_stride, A2_NR, 0, c, ldc, accumulate, last, ep, 0, NULL);
}

static void f32_gemm_6x16_avx2_direct(size_t mc, size_t nc, size_t kc, const float *pa, size_t pa_stride,
                                      const float *b, size_t ldb, float *c, size_t ldc, int accumulate, int last,
                                      const so_gemm_epilogue *ep) {
    gemm_6x16_avx2_body(mc, nc, kc, pa, pa_stride, b, 0, ldb, 1, c, ldc, accumulate, last, ep, 0, NULL);
}

static void f32_gemm_6x16_avx2_rowa(size_t mc, size_t nc, size_t kc, const float *a, size_t lda, const float *pb,
                                    size_t pb_stride, float *c, size_t ldc, int accumulate, int last,
                                    const so_gemm_epilogue *ep) {
    float tail[A2_MR * SO_F32_GEMM_ROWA_KC_MAX] __attribute__((aligned(32)));
    const size_t full = mc / A2_MR * A2_MR;
    if (full < mc) pack_a_body(A2_MR, mc - full, kc, a + full * lda, lda, 1, tail);
    gemm_6x16_avx2_body(mc, nc, kc, a, lda, pb, pb_stride, A2_NR, 0, c, ldc, accumulate, last, ep, 1, tail);
}

#pragma clang attribute pop

static const so_f32_gemm gemm_avx2 = {
    SO_ISA_AVX2, A2_MR, A2_NR, "f32_gemm_6x16_avx2",
    f32_gemm_pack_a_avx2, f32_gemm_pack_b_avx2, f32_gemm_6x16_avx2, f32_gemm_6x16_avx2_direct,
    f32_gemm_6x16_avx2_rowa,
};

/* ---- AVX-512: 8x32 ---- */
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma,f16c"))), apply_to = function)

#define A5_MR 8
#define A5_NR 32

static void f32_gemm_pack_a_avx512(size_t m, size_t k, const float *a, size_t rs, size_t cs, float *dst) {
    pack_a_body(A5_MR, m, k, a, rs, cs, dst);
}

static void f32_gemm_pack_b_avx512(size_t kc, size_t nc, const float *b, size_t rs, size_t cs, float *dst) {
    if (cs != 1) { pack_b_body(A5_NR, kc, nc, b, rs, cs, dst); return; }
    for (size_t q = 0; q < nc; q += A5_NR) {
        size_t cols = nc - q < A5_NR ? nc - q : A5_NR;
        __mmask16 m0 = (__mmask16)(cols >= 16 ? 0xFFFF : ((1u << cols) - 1));
        __mmask16 m1 = (__mmask16)(cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : ((1u << (cols - 16)) - 1));
        const float *src = b + q;
        for (size_t kk = 0; kk < kc; kk++) {
            _mm512_storeu_ps(dst, _mm512_maskz_loadu_ps(m0, src));
            _mm512_storeu_ps(dst + 16, _mm512_maskz_loadu_ps(m1, src + 16));
            src += rs;
            dst += A5_NR;
        }
    }
}

static inline __m512 hsig_avx512(__m512 t) {
    t = _mm512_mask_mov_ps(t, _mm512_cmp_ps_mask(t, _mm512_setzero_ps(), _CMP_LT_OQ), _mm512_setzero_ps());
    return _mm512_mask_mov_ps(t, _mm512_cmp_ps_mask(t, _mm512_set1_ps(1.0f), _CMP_GT_OQ), _mm512_set1_ps(1.0f));
}

static inline __m512 act_avx512(__m512 v, int act, float alpha, float beta) {
    switch (act) {
    case SO_ACT_HARD_SIGMOID:
        return hsig_avx512(_mm512_add_ps(_mm512_mul_ps(v, _mm512_set1_ps(alpha)), _mm512_set1_ps(beta)));
    case SO_ACT_HARD_SWISH:
        return _mm512_mul_ps(v, hsig_avx512(_mm512_add_ps(_mm512_mul_ps(v, _mm512_set1_ps(1.0f / 6.0f)),
                                                           _mm512_set1_ps(0.5f))));
    case SO_ACT_RELU: return _mm512_max_ps(_mm512_setzero_ps(), v);
    case SO_ACT_CLIP: return _mm512_min_ps(_mm512_set1_ps(beta), _mm512_max_ps(_mm512_set1_ps(alpha), v));
    case SO_ACT_LEAKY_RELU: {
        __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
        return _mm512_mask_mul_ps(v, neg, v, _mm512_set1_ps(alpha));
    }
    default: return v;
    }
}

/* One 8x32 tile with `rows` valid rows and column masks m0, m1. */
static inline __attribute__((always_inline))
void ukr_8x32_avx512(size_t kc, const float *a, size_t ars, size_t acs, const float *b, size_t bs, int bmask,
                     float *c, size_t ldc,
                     int accumulate,
                     size_t rows, __mmask16 m0, __mmask16 m1, const so_gemm_epilogue *ep,
                     const float *bias, const float *cbias, const float *z, size_t ldz, const int two) {
    __m512 acc[A5_MR][2];
#pragma clang loop unroll(full)
    for (int r = 0; r < A5_MR; r++) {
        if (accumulate && (size_t)r < rows) {
            acc[r][0] = _mm512_maskz_loadu_ps(m0, c + r * ldc);
            acc[r][1] = _mm512_maskz_loadu_ps(m1, c + r * ldc + 16);
        } else {
            acc[r][0] = _mm512_setzero_ps();
            acc[r][1] = _mm512_setzero_ps();
        }
    }
    /* cols <= 16 (two == 0): the right half is all padding; only the left half is multiplied. */
    if (!two) {
        for (size_t kk = 0; kk < kc; kk++) {
            const __m512 b0 = bmask ? _mm512_maskz_loadu_ps(m0, b) : _mm512_loadu_ps(b);
#pragma clang loop unroll(full)
            for (int r = 0; r < A5_MR; r++) acc[r][0] = _mm512_fmadd_ps(_mm512_set1_ps(a[r * ars]), b0, acc[r][0]);
            a += acs;
            b += bs;
        }
        kc = 0;
    }
    for (size_t kk = 0; kk < kc; kk++) {
        __m512 b0, b1;
        if (bmask) { b0 = _mm512_maskz_loadu_ps(m0, b); b1 = _mm512_maskz_loadu_ps(m1, b + 16); }
        else { b0 = _mm512_loadu_ps(b); b1 = _mm512_loadu_ps(b + 16); }
#pragma clang loop unroll(full)
        for (int r = 0; r < A5_MR; r++) {
            __m512 av = _mm512_set1_ps(a[r * ars]);
            acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
        }
        a += acs;
        b += bs;
    }
    if (ep) {
        int act = ep->act;
        int fused = inline_act(act);
        __m512 cb0 = _mm512_setzero_ps(), cb1 = _mm512_setzero_ps();
        if (cbias) { cb0 = _mm512_maskz_loadu_ps(m0, cbias); cb1 = _mm512_maskz_loadu_ps(m1, cbias + 16); }
#pragma clang loop unroll(full)
        for (int r = 0; r < A5_MR; r++) {
            if ((size_t)r >= rows) break;
            if (bias) {
                __m512 bv = _mm512_set1_ps(bias[r]);
                acc[r][0] = _mm512_add_ps(acc[r][0], bv);
                acc[r][1] = _mm512_add_ps(acc[r][1], bv);
            }
            if (cbias) {
                acc[r][0] = _mm512_add_ps(acc[r][0], cb0);
                acc[r][1] = _mm512_add_ps(acc[r][1], cb1);
            }
            if (z) {
                acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_maskz_loadu_ps(m0, z + r * ldz));
                acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_maskz_loadu_ps(m1, z + r * ldz + 16));
            }
            if (fused && act != SO_ACT_IDENTITY) {
                acc[r][0] = act_avx512(acc[r][0], act, ep->alpha, ep->beta);
                acc[r][1] = act_avx512(acc[r][1], act, ep->alpha, ep->beta);
            }
        }
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < A5_MR; r++) {
        if ((size_t)r >= rows) break;
        _mm512_mask_storeu_ps(c + r * ldc, m0, acc[r][0]);
        _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc[r][1]);
    }
    if (ep && !inline_act(ep->act)) {
        so_f32_unary_fn unary = so_f32_unary_select(SO_ISA_AVX512);
        size_t cols = (size_t)__builtin_popcount(m0) + (size_t)__builtin_popcount(m1);
        for (size_t r = 0; r < rows; r++) unary(ep->act, c + r * ldc, c + r * ldc, cols, ep->alpha, ep->beta);
    }
}

static inline __attribute__((always_inline))
void gemm_8x32_avx512_body(size_t mc, size_t nc, size_t kc, const float *pa, size_t pa_stride, const float *pb,
                           size_t pb_stride, size_t bs, int direct, float *c, size_t ldc, int accumulate, int last,
                           const so_gemm_epilogue *ep, const int rowa, const float *tail) {
    if (!last) ep = NULL;
    /* activations not applied in registers: per stripe of rows, as in gemm_6x16_avx2_body */
    so_gemm_epilogue tile_ep;
    const so_gemm_epilogue *act_ep = split_act(&ep, &tile_ep);
    size_t act_from = 0;
    for (size_t j0 = 0; j0 < nc; j0 += A5_NR) {
        const float *b = direct ? pb + j0 : pb + (j0 / A5_NR) * pb_stride;
        size_t cols = nc - j0 < A5_NR ? nc - j0 : A5_NR;
        __mmask16 m0 = (__mmask16)(cols >= 16 ? 0xFFFF : ((1u << cols) - 1));
        __mmask16 m1 = (__mmask16)(cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : ((1u << (cols - 16)) - 1));
        for (size_t i0 = 0; i0 < mc; i0 += A5_MR) {
            const float *a = rowa ? tail : pa + (i0 / A5_MR) * pa_stride;
            size_t rows = mc - i0 < A5_MR ? mc - i0 : A5_MR;
            const float *bias = ep && ep->bias ? ep->bias + i0 : NULL;
            const float *cbias = ep && ep->cbias ? ep->cbias + j0 : NULL;
            const float *z = ep && ep->z ? ep->z + i0 * ep->ldz + j0 : NULL;
            float *ct = c + i0 * ldc + j0;
            const size_t ldz = ep ? ep->ldz : 0;
            /* The next stripe's lines of these rows, as in gemm_6x16_avx2_body. */
            if (j0 + A5_NR < nc) {
                const float *pf = ct + A5_NR;
                for (size_t r = 0; r < rows; r++) {
                    _mm_prefetch((const char *)(pf + r * ldc), _MM_HINT_T0);
                    _mm_prefetch((const char *)(pf + r * ldc + 16), _MM_HINT_T0);
                    _mm_prefetch((const char *)(pf + r * ldc + A5_NR - 1), _MM_HINT_T0);
                }
            }
            if (rowa && rows == A5_MR) {
                /* a whole tile of row-major A: broadcasts from its rows in place */
                const float *ar = pa + i0 * pa_stride;
                if (cols <= 16) ukr_8x32_avx512(kc, ar, pa_stride, 1, b, A5_NR, 0, ct, ldc, accumulate, rows, m0, m1, ep, bias, cbias, z, ldz, 0);
                else ukr_8x32_avx512(kc, ar, pa_stride, 1, b, A5_NR, 0, ct, ldc, accumulate, rows, m0, m1, ep, bias, cbias, z, ldz, 1);
            } else if (cols <= 16) {
                if (!direct) ukr_8x32_avx512(kc, a, 1, A5_MR, b, A5_NR, 0, ct, ldc, accumulate, rows, m0, m1, ep, bias, cbias, z, ldz, 0);
                else ukr_8x32_avx512(kc, a, 1, A5_MR, b, bs, 1, ct, ldc, accumulate, rows, m0, m1, ep, bias, cbias, z, ldz, 0);
            } else if (!direct) {
                ukr_8x32_avx512(kc, a, 1, A5_MR, b, A5_NR, 0, ct, ldc, accumulate, rows, m0, m1, ep, bias, cbias, z, ldz, 1);
            } else if (cols == A5_NR) {
                ukr_8x32_avx512(kc, a, 1, A5_MR, b, bs, 0, ct, ldc, accumulate, rows, m0, m1, ep, bias, cbias, z, ldz, 1);
            } else {
                ukr_8x32_avx512(kc, a, 1, A5_MR, b, bs, 1, ct, ldc, accumulate, rows, m0, m1, ep, bias, cbias, z, ldz, 1);
            }
        }
        if (act_ep) act_ep_stripe(act_ep, SO_ISA_AVX512, c, ldc, mc, nc, j0 + cols, &act_from);
    }
}

static void f32_gemm_8x32_avx512(size_t mc, size_t nc, size_t kc, const float *pa, size_t pa_stride,
                                 const float *pb, size_t pb_stride, float *c, size_t ldc, int accumulate, int last,
                                 const so_gemm_epilogue *ep) {
    gemm_8x32_avx512_body(mc, nc, kc, pa, pa_stride, pb, pb_stride, A5_NR, 0, c, ldc, accumulate, last, ep, 0, NULL);
}

static void f32_gemm_8x32_avx512_direct(size_t mc, size_t nc, size_t kc, const float *pa, size_t pa_stride,
                                        const float *b, size_t ldb, float *c, size_t ldc, int accumulate, int last,
                                        const so_gemm_epilogue *ep) {
    gemm_8x32_avx512_body(mc, nc, kc, pa, pa_stride, b, 0, ldb, 1, c, ldc, accumulate, last, ep, 0, NULL);
}

static void f32_gemm_8x32_avx512_rowa(size_t mc, size_t nc, size_t kc, const float *a, size_t lda, const float *pb,
                                      size_t pb_stride, float *c, size_t ldc, int accumulate, int last,
                                      const so_gemm_epilogue *ep) {
    float tail[A5_MR * SO_F32_GEMM_ROWA_KC_MAX] __attribute__((aligned(64)));
    const size_t full = mc / A5_MR * A5_MR;
    if (full < mc) pack_a_body(A5_MR, mc - full, kc, a + full * lda, lda, 1, tail);
    gemm_8x32_avx512_body(mc, nc, kc, a, lda, pb, pb_stride, A5_NR, 0, c, ldc, accumulate, last, ep, 1, tail);
}

#pragma clang attribute pop

static const so_f32_gemm gemm_avx512 = {
    SO_ISA_AVX512, A5_MR, A5_NR, "f32_gemm_8x32_avx512",
    f32_gemm_pack_a_avx512, f32_gemm_pack_b_avx512, f32_gemm_8x32_avx512, f32_gemm_8x32_avx512_direct,
    f32_gemm_8x32_avx512_rowa,
};

#endif /* __x86_64__ */

const so_f32_gemm *so_f32_gemm_select(int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX512) return &gemm_avx512;
    if (isa >= SO_ISA_AVX2) return &gemm_avx2;
#endif
    (void)isa;
    return &gemm_scalar;
}
