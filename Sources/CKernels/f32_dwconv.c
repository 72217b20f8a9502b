/*
 * One output plane of a 2-D depthwise convolution (float32), with the fused epilogue
 * out = act(conv(x, w) + bias + z).
 *
 * Variants: f32_dwconv2d_ref (portable C), f32_dwconv2d_avx2 (8 lanes), f32_dwconv2d_avx512
 * (16 lanes). The vector body is written once and instantiated per ISA by including this file
 * into itself under `#pragma clang attribute push(target(...))` (see f32_unary.c).
 *
 * Summation order (all variants, so the conv sums agree bit for bit): acc = bias, then
 * acc = fma(x, w, acc) over the taps in row-major (kh, kw) order. The reference skips taps that
 * fall in the zero padding; the vector code adds fma(0, w, acc) = acc for them (the same value,
 * unless a weight is inf / NaN, or up to the sign of a zero sum). Then the epilogue, per output row
 * while it is in cache: with z, p = (p + z) + 0 then act (so_f32_bias_act with bias 0); without z,
 * p = act(p) (so_f32_unary); nothing for SO_ACT_IDENTITY without z. The activation is the one of
 * so_eltwise.h at the same ISA level, so it matches f32_unary's accuracy and special values.
 *
 * Vector algorithm. Every tap (kh, kw) of output row oh reads input row ih = oh*sH - pH + kh*dH
 * at columns ow*sW + kw*dW - pW; rows outside the input read a zero row.
 *  - Stride 1 (sW == 1): the taps read the input rows in place. Output vectors whose taps are all
 *    inside the row are plain loads; the few at the row ends (left / right padding) load each tap
 *    with a lane mask (masked loads touch nothing outside the row, the other lanes are the zero
 *    padding). With sH == dH == 1, two output rows are computed per pass from kH + 1 input rows,
 *    so each input vector loaded feeds both (the fast 3x3 / 5x5 / 7x7 stride-1 path).
 *  - Strides >= 2 (phased): each input row, the first time an output row needs it, is
 *    zero-padded and split by column phase into sW rows P[pw][c] = xpad[c*sW + pw] in the scratch
 *    buffer (stride 2: masked loads + a vector deinterleave, no scalar code). Tap (kh, kw) then
 *    reads phase (kw*dW) % sW at offset (kw*dW) / sW, so an output row is, for every tap, one
 *    contiguous vector stream with no edge cases.
 * The taps are unrolled (compile-time kH, kW) for 3x3, 5x5 and 7x7, a loop otherwise; several
 * vectors per step, then single vectors, then one masked vector: nothing outside the input plane,
 * the output plane, z and the scratch is read or written.
 *
 * Scratch: so_f32_dwconv2d_scratch(g) bytes, any alignment (it is aligned to 64 inside):
 * kH + kW + 2 sW + 1 + R words, a zero row of max(iW, sW * rw) floats, and for sW >= 2 the
 * phase rows of R input rows, R * sW * rw floats, rw = oW + (kW-1)*dW/sW rounded up to 16, where
 * R = (kH-1)*dH + 1: input row ih goes to slot ih % R, so the rows one output row reads never
 * share a slot, a row is prepared once, and the scratch does not grow with the image's height. The
 * reference needs none (scratch may be NULL for it).
 */
#ifndef SO_DWCONV_TEMPLATE

#include "so_dwconv.h"
#include "so_eltwise.h"
#include "so_isa.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

#pragma clang fp contract(off)

/* ---------------------------------------------------------------------------------------------
 * Scalar reference
 * ------------------------------------------------------------------------------------------- */

/* The epilogue on n floats of output (a whole plane or one row). */
static void dw_epilogue(float *p, size_t n, const float *z, int act, float alpha, float beta,
                        so_f32_bias_act_fn bias_act, so_f32_unary_fn unary) {
    if (z) bias_act(p, n, 0.0f, z, act, alpha, beta);
    else if (act != SO_ACT_IDENTITY) unary(act, p, p, n, alpha, beta);
}

static void f32_dwconv2d_ref(const so_dw_geom *g, const float *x, const float *w, float bias,
                             const float *z, int act, float alpha, float beta, float *out, void *scratch) {
    (void)scratch;
    const ptrdiff_t iH = g->iH, iW = g->iW, oH = g->oH, oW = g->oW, kH = g->kH, kW = g->kW;
    if (oH <= 0 || oW <= 0) return;
    for (ptrdiff_t oh = 0; oh < oH; oh++) {
        for (ptrdiff_t ow = 0; ow < oW; ow++) {
            float acc = bias;
            for (ptrdiff_t kh = 0; kh < kH; kh++) {
                ptrdiff_t ih = oh * g->sH - g->pH + kh * g->dH;
                if (ih < 0 || ih >= iH) continue;
                for (ptrdiff_t kw = 0; kw < kW; kw++) {
                    ptrdiff_t iw = ow * g->sW - g->pW + kw * g->dW;
                    if (iw < 0 || iw >= iW) continue;
                    acc = fmaf(x[ih * iW + iw], w[kh * kW + kw], acc);
                }
            }
            out[oh * oW + ow] = acc;
        }
    }
    dw_epilogue(out, (size_t)(oH * oW), z, act, alpha, beta, so_f32_bias_act_select(SO_ISA_SCALAR),
                so_f32_unary_select(SO_ISA_SCALAR));
}

/* ---------------------------------------------------------------------------------------------
 * Scratch layout (shared by so_f32_dwconv2d_scratch and the vector variants)
 * ------------------------------------------------------------------------------------------- */

typedef struct dw_layout {
    ptrdiff_t rw;        /* phase-row width: oW + max column shift of a tap */
    ptrdiff_t stride;    /* floats from one phase row to the next (rw rounded up to 16) */
    ptrdiff_t zlen;      /* floats in the zero row */
    size_t ptr_off;      /* kH + 1 row pointers */
    size_t off_off;      /* kW column offsets (ptrdiff_t) */
    size_t rng_off;      /* per column phase: first and end column holding input (2 * sW ptrdiff_t) */
    ptrdiff_t ring;      /* phase-row slots: (kH - 1) * dH + 1, the input rows one output row reads */
    size_t flag_off;     /* ring ptrdiff_t: the input row each slot holds (-1: none) */
    size_t zero_off;     /* the zero row (64-aligned) */
    size_t rows_off;     /* ring * sW phase rows of `stride` floats (64-aligned; none for sW == 1) */
    size_t total;        /* bytes from the 64-aligned base */
} dw_layout;

static size_t dw_round(size_t v, size_t a) { return (v + a - 1) / a * a; }

static void dw_layout_of(const so_dw_geom *g, dw_layout *L) {
    const ptrdiff_t iH = g->iH > 0 ? g->iH : 0, iW = g->iW > 0 ? g->iW : 0;
    const ptrdiff_t kH = g->kH > 0 ? g->kH : 0, kW = g->kW > 0 ? g->kW : 0;
    const ptrdiff_t sW = g->sW > 0 ? g->sW : 1, oW = g->oW > 0 ? g->oW : 0;
    const ptrdiff_t shmax = kW > 0 ? ((kW - 1) * g->dW) / sW : 0;
    L->rw = oW + (shmax > 0 ? shmax : 0);
    L->stride = (ptrdiff_t)dw_round((size_t)L->rw, 16);
    ptrdiff_t z = sW * L->stride;
    if (z < iW) z = iW;
    L->zlen = (ptrdiff_t)dw_round((size_t)z, 16);
    L->ptr_off = 0;
    L->off_off = L->ptr_off + (size_t)(kH + 1) * sizeof(const float *);
    L->rng_off = L->off_off + (size_t)kW * sizeof(ptrdiff_t);
    L->ring = kH > 0 ? (kH - 1) * (g->dH > 0 ? g->dH : 1) + 1 : 1;
    L->flag_off = L->rng_off + 2 * (size_t)sW * sizeof(ptrdiff_t);
    L->zero_off = dw_round(L->flag_off + (size_t)L->ring * sizeof(ptrdiff_t), 64);
    L->rows_off = L->zero_off + (size_t)L->zlen * sizeof(float);
    /* Stride 1 reads the input in place (no phase rows); must agree with the kernels' `direct`. */
    const size_t phase_rows = sW == 1 ? 0 : (size_t)L->ring * (size_t)sW * (size_t)L->stride;
    L->total = L->rows_off + phase_rows * sizeof(float);
}

size_t so_f32_dwconv2d_scratch(const so_dw_geom *g) {
    if (g->oH <= 0 || g->oW <= 0) return 0;
    dw_layout L;
    dw_layout_of(g, &L);
    return L.total + 64; /* + alignment slack */
}

/* ceil(a / b) for b > 0 and any sign of a. */
static inline ptrdiff_t dw_ceil_div(ptrdiff_t a, ptrdiff_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

static inline ptrdiff_t dw_clamp(ptrdiff_t v, ptrdiff_t lo, ptrdiff_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* Columns c of phase pw that hold input (not padding): [*lo, *hi) within [0, rw). */
static inline void dw_phase_range(ptrdiff_t iW, ptrdiff_t pW, ptrdiff_t sW, ptrdiff_t pw, ptrdiff_t rw,
                                  ptrdiff_t *lo, ptrdiff_t *hi) {
    ptrdiff_t l = dw_clamp(dw_ceil_div(pW - pw, sW), 0, rw);
    ptrdiff_t h = dw_clamp(dw_ceil_div(iW + pW - pw, sW), l, rw);
    *lo = l;
    *hi = h;
}

/* ---------------------------------------------------------------------------------------------
 * Channel-blocked layout (so_f32_dwconv2d_cb): a zero-padded image of Hp x Wp pixels of `lanes`
 * channels each, the taps transposed to one vector of `lanes` channels per tap, and the tap offsets.
 * ------------------------------------------------------------------------------------------- */

typedef struct dw_cb_layout {
    ptrdiff_t Hp, Wp;    /* padded image: the rows / columns the taps of the output plane reach */
    size_t wt_off;       /* kH*kW*lanes floats: the taps, channel-interleaved */
    size_t toff_off;     /* kH*kW ptrdiff_t: float offset of each tap from a pixel's base */
    size_t total;        /* bytes from the 64-aligned base */
} dw_cb_layout;

static void dw_cb_layout_of(const so_dw_geom *g, ptrdiff_t lanes, dw_cb_layout *L) {
    const ptrdiff_t kH = g->kH > 0 ? g->kH : 0, kW = g->kW > 0 ? g->kW : 0;
    const ptrdiff_t oH = g->oH > 0 ? g->oH : 0, oW = g->oW > 0 ? g->oW : 0;
    L->Hp = oH > 0 && kH > 0 ? (oH - 1) * g->sH + (kH - 1) * g->dH + 1 : 0;
    L->Wp = oW > 0 && kW > 0 ? (oW - 1) * g->sW + (kW - 1) * g->dW + 1 : 0;
    L->wt_off = dw_round((size_t)(L->Hp * L->Wp * lanes) * sizeof(float), 64);
    L->toff_off = L->wt_off + dw_round((size_t)(kH * kW * lanes) * sizeof(float), 64);
    L->total = L->toff_off + (size_t)(kH * kW) * sizeof(ptrdiff_t);
}

static size_t dw_cb_scratch_lanes(const so_dw_geom *g, ptrdiff_t lanes) {
    if (g->oH <= 0 || g->oW <= 0) return 0;
    dw_cb_layout L;
    dw_cb_layout_of(g, lanes, &L);
    return L.total + 64;
}

static size_t dw_cb_scratch_ref(const so_dw_geom *g) { (void)g; return 0; }

/* The reference of the blocked form: the per-plane reference, plane by plane. */
static void f32_dwconv2d_cb_ref(const so_dw_geom *g, size_t nc, const float *x, size_t x_stride, const float *w,
                                const float *bias, const float *z, int act, float alpha, float beta, float *out,
                                void *scratch) {
    const size_t taps = (size_t)(g->kH > 0 ? g->kH : 0) * (size_t)(g->kW > 0 ? g->kW : 0);
    const size_t plane = (size_t)(g->oH > 0 ? g->oH : 0) * (size_t)(g->oW > 0 ? g->oW : 0);
    for (size_t c = 0; c < nc; c++)
        f32_dwconv2d_ref(g, x + c * x_stride, w + c * taps, bias ? bias[c] : 0.0f, z ? z + c * plane : NULL, act,
                         alpha, beta, out + c * plane, scratch);
}

static const so_f32_dwconv2d_cb dw_cb_ref = {SO_ISA_SCALAR, 1, "f32_dwconv2d_cb1_ref", dw_cb_scratch_ref,
                                             f32_dwconv2d_cb_ref};

/* ---------------------------------------------------------------------------------------------
 * Vector instantiations (x86-64 only)
 * ------------------------------------------------------------------------------------------- */
#if defined(__x86_64__)
#include <immintrin.h>

typedef float so_d_vf8 __attribute__((ext_vector_type(8), aligned(4)));
typedef int so_d_vi8 __attribute__((ext_vector_type(8), aligned(4)));
typedef float so_d_vf16 __attribute__((ext_vector_type(16), aligned(4)));
typedef int so_d_vi16 __attribute__((ext_vector_type(16), aligned(4)));

#define SO_DWCONV_TEMPLATE 1

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#define W 8
#define VF so_d_vf8
#define VI so_d_vi8
#define SFX(name) name##_avx2
#define SO_LEVEL SO_ISA_AVX2
#include "f32_dwconv.c"
#undef W
#undef VF
#undef VI
#undef SFX
#undef SO_LEVEL
#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma"))), apply_to = function)
#define W 16
#define VF so_d_vf16
#define VI so_d_vi16
#define SFX(name) name##_avx512
#define SO_LEVEL SO_ISA_AVX512
#include "f32_dwconv.c"
#undef W
#undef VF
#undef VI
#undef SFX
#undef SO_LEVEL
#pragma clang attribute pop

#undef SO_DWCONV_TEMPLATE
#endif /* __x86_64__ */

so_f32_dwconv2d_fn so_f32_dwconv2d_select(int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX512) return f32_dwconv2d_avx512;
    if (isa >= SO_ISA_AVX2) return f32_dwconv2d_avx2;
#endif
    (void)isa;
    return f32_dwconv2d_ref;
}

const so_f32_dwconv2d_cb *so_f32_dwconv2d_cb_select(int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX512) return &dw_cb_avx512;
    if (isa >= SO_ISA_AVX2) return &dw_cb_avx2;
#endif
    (void)isa;
    return &dw_cb_ref;
}

#else /* SO_DWCONV_TEMPLATE: W lanes, VF / VI, SFX(name), SO_LEVEL */

#define FMA(a, b, c) __builtin_elementwise_fma((a), (b), (c))
#define VLD(p) (*(const VF *)(p))
#define VST(p, v) (*(VF *)(p) = (v))

#if W == 16
typedef __mmask16 SFX(dmask);
static inline __attribute__((always_inline)) SFX(dmask) SFX(d_mask)(ptrdiff_t r) {
    return (__mmask16)((1u << r) - 1u);
}
static inline __attribute__((always_inline)) VF SFX(d_loadn)(const float *p, SFX(dmask) m) {
    return (VF)_mm512_maskz_loadu_ps(m, p);
}
static inline __attribute__((always_inline)) void SFX(d_storen)(float *p, VF v, SFX(dmask) m) {
    _mm512_mask_storeu_ps(p, m, (__m512)v);
}
#else
typedef __m256i SFX(dmask);
static inline __attribute__((always_inline)) SFX(dmask) SFX(d_mask)(ptrdiff_t r) {
    const VI iota = {0, 1, 2, 3, 4, 5, 6, 7};
    return (__m256i)(iota < (int)r);
}
static inline __attribute__((always_inline)) VF SFX(d_loadn)(const float *p, SFX(dmask) m) {
    return (VF)_mm256_maskload_ps(p, m);
}
static inline __attribute__((always_inline)) void SFX(d_storen)(float *p, VF v, SFX(dmask) m) {
    _mm256_maskstore_ps(p, m, (__m256)v);
}
#endif

/* Lanes [lo, hi) of a vector, 0 <= lo <= hi <= W. */
#if W == 16
static inline __attribute__((always_inline)) SFX(dmask) SFX(d_lanes)(ptrdiff_t lo, ptrdiff_t hi) {
    return (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}
#else
static inline __attribute__((always_inline)) SFX(dmask) SFX(d_lanes)(ptrdiff_t lo, ptrdiff_t hi) {
    const VI iota = {0, 1, 2, 3, 4, 5, 6, 7};
    return (__m256i)((iota >= (int)lo) & (iota < (int)hi));
}
#endif

/*
 * o[j] = bias + sum over (kh, kw) of w[kh*KW + kw] * R[kh][off[kw] + j], for j in [j0, j1), with
 * the taps accumulated by fma in row-major order; every address read must be valid. KH / KW are
 * compile-time constants in the unrolled instantiations.
 */
static inline __attribute__((always_inline)) void SFX(dw_span_body)(float *restrict o, ptrdiff_t j0, ptrdiff_t j1,
                                                                  const float *const *restrict R,
                                                                  const ptrdiff_t *restrict off,
                                                                  const float *restrict w, float bias,
                                                                  const int KH, const int KW) {
    const VF b = (VF)bias;
    ptrdiff_t j = j0;
    for (; j + 4 * W <= j1; j += 4 * W) {
        VF a0 = b, a1 = b, a2 = b, a3 = b;
        for (int kh = 0; kh < KH; kh++) {
            const float *r = R[kh] + j;
            for (int kw = 0; kw < KW; kw++) {
                const float *p = r + off[kw];
                const VF wt = (VF)w[kh * KW + kw];
                a0 = FMA(VLD(p), wt, a0);
                a1 = FMA(VLD(p + W), wt, a1);
                a2 = FMA(VLD(p + 2 * W), wt, a2);
                a3 = FMA(VLD(p + 3 * W), wt, a3);
            }
        }
        VST(o + j, a0);
        VST(o + j + W, a1);
        VST(o + j + 2 * W, a2);
        VST(o + j + 3 * W, a3);
    }
    for (; j + W <= j1; j += W) {
        VF a0 = b;
        for (int kh = 0; kh < KH; kh++) {
            const float *r = R[kh] + j;
            for (int kw = 0; kw < KW; kw++) a0 = FMA(VLD(r + off[kw]), (VF)w[kh * KW + kw], a0);
        }
        VST(o + j, a0);
    }
    if (j < j1) {
        const SFX(dmask) m = SFX(d_mask)(j1 - j);
        VF a0 = b;
        for (int kh = 0; kh < KH; kh++) {
            const float *r = R[kh] + j;
            for (int kw = 0; kw < KW; kw++) a0 = FMA(SFX(d_loadn)(r + off[kw], m), (VF)w[kh * KW + kw], a0);
        }
        SFX(d_storen)(o + j, a0, m);
    }
}

/*
 * Stride-1 edge vector: outputs [j, min(j + W, oW)) of a row read in place, where some taps fall
 * outside the input row [0, iW): each tap loads only its lanes inside the row (masked loads, so
 * nothing outside is touched; the others count as zero padding).
 */
static inline __attribute__((always_inline)) void SFX(dw_edge)(float *restrict o, ptrdiff_t j, ptrdiff_t oW,
                                                             const float *const *restrict R,
                                                             const ptrdiff_t *restrict off,
                                                             const float *restrict w, float bias, const int KH,
                                                             const int KW, ptrdiff_t iW) {
    const ptrdiff_t nl = oW - j < W ? oW - j : W;
    VF acc = (VF)bias;
    for (int kh = 0; kh < KH; kh++) {
        for (int kw = 0; kw < KW; kw++) {
            const ptrdiff_t e = j + off[kw]; /* input column of lane 0 */
            const ptrdiff_t lo = e < 0 ? -e : 0;
            const ptrdiff_t hi = iW - e < nl ? iW - e : nl;
            if (hi <= lo) continue;
            /* lane 0's address may lie outside the plane: form it as an integer */
            const float *p = (const float *)((uintptr_t)R[kh] + (uintptr_t)(e * (ptrdiff_t)sizeof(float)));
            acc = FMA(SFX(d_loadn)(p, SFX(d_lanes)(lo, hi)), (VF)w[kh * KW + kw], acc);
        }
    }
    SFX(d_storen)(o + j, acc, SFX(d_mask)(nl));
}

/* A stride-1 row read in place: R[kh] = input row (or the zero row), off[kw] = kw*dW - pW. */
static inline __attribute__((always_inline)) void SFX(dw_row_s1_body)(float *restrict o, ptrdiff_t oW,
                                                                    const float *const *restrict R,
                                                                    const ptrdiff_t *restrict off,
                                                                    const float *restrict w, float bias,
                                                                    const int KH, const int KW, ptrdiff_t iW) {
    if (KW == 0) {
        SFX(dw_span_body)(o, 0, oW, R, off, w, bias, KH, KW);
        return;
    }
    /* Outputs j whose taps are all inside the row: -off[0] <= j < iW - off[KW-1]. */
    const ptrdiff_t lo = -off[0];
    ptrdiff_t hi = iW - off[KW - 1];
    if (hi > oW) hi = oW;
    ptrdiff_t j = 0;
    for (; j < oW && j < lo; j += W) SFX(dw_edge)(o, j, oW, R, off, w, bias, KH, KW, iW);
    if (j < hi) {
        const ptrdiff_t e = j + (hi - j) / W * W;
        SFX(dw_span_body)(o, j, e, R, off, w, bias, KH, KW);
        j = e;
    }
    for (; j < oW; j += W) SFX(dw_edge)(o, j, oW, R, off, w, bias, KH, KW, iW);
}

/*
 * Two output rows o0 = row oh, o1 = row oh + 1 of a plane with sH = dH = 1: R[0 .. KH] are the
 * KH + 1 input rows they read, so every input vector loaded feeds both rows (row oh takes input
 * rows 0 .. KH-1 as kh, row oh+1 takes rows 1 .. KH). The per-output tap order stays row-major.
 * Columns [j0, j1), every address inside the input rows.
 */
#if W == 16
#define SO_NB 4 /* vectors per row per step */
#else
#define SO_NB 2
#endif
static inline __attribute__((always_inline)) void SFX(dw_span2_body)(float *restrict o0, float *restrict o1,
                                                                   ptrdiff_t j0, ptrdiff_t j1,
                                                                   const float *const *restrict R,
                                                                   const ptrdiff_t *restrict off,
                                                                   const float *restrict w, float bias,
                                                                   const int KH, const int KW) {
    const VF b = (VF)bias;
    ptrdiff_t j = j0;
    for (; j + SO_NB * W <= j1; j += SO_NB * W) {
        VF a[SO_NB], c[SO_NB];
        for (int k = 0; k < SO_NB; k++) a[k] = c[k] = b;
        for (int r = 0; r <= KH; r++) {
            const float *rp = R[r] + j;
            for (int kw = 0; kw < KW; kw++) {
                const float *p = rp + off[kw];
                VF v[SO_NB];
                for (int k = 0; k < SO_NB; k++) v[k] = VLD(p + k * W);
                if (r < KH) {
                    const VF wt = (VF)w[r * KW + kw];
                    for (int k = 0; k < SO_NB; k++) a[k] = FMA(v[k], wt, a[k]);
                }
                if (r > 0) {
                    const VF wt = (VF)w[(r - 1) * KW + kw];
                    for (int k = 0; k < SO_NB; k++) c[k] = FMA(v[k], wt, c[k]);
                }
            }
        }
        for (int k = 0; k < SO_NB; k++) {
            VST(o0 + j + k * W, a[k]);
            VST(o1 + j + k * W, c[k]);
        }
    }
    for (; j < j1; j += W) {
        const int full = j + W <= j1;
        const SFX(dmask) m = SFX(d_mask)(full ? W : j1 - j);
        VF a = b, c = b;
        for (int r = 0; r <= KH; r++) {
            const float *rp = R[r] + j;
            for (int kw = 0; kw < KW; kw++) {
                const VF v = full ? VLD(rp + off[kw]) : SFX(d_loadn)(rp + off[kw], m);
                if (r < KH) a = FMA(v, (VF)w[r * KW + kw], a);
                if (r > 0) c = FMA(v, (VF)w[(r - 1) * KW + kw], c);
            }
        }
        if (full) {
            VST(o0 + j, a);
            VST(o1 + j, c);
        } else {
            SFX(d_storen)(o0 + j, a, m);
            SFX(d_storen)(o1 + j, c, m);
        }
    }
}
#undef SO_NB

/* The two-row form of dw_edge. The lane masks of the taps (the same for every input row) are
   computed once when KW <= 8. */
static inline __attribute__((always_inline)) void SFX(dw_edge2)(float *restrict o0, float *restrict o1, ptrdiff_t j,
                                                              ptrdiff_t oW, const float *const *restrict R,
                                                              const ptrdiff_t *restrict off,
                                                              const float *restrict w, float bias, const int KH,
                                                              const int KW, ptrdiff_t iW) {
    const ptrdiff_t nl = oW - j < W ? oW - j : W;
    SFX(dmask) mk[8];
    int ok[8];
    const int pre = KW <= 8;
    if (pre) {
        for (int kw = 0; kw < KW; kw++) {
            const ptrdiff_t e = j + off[kw];
            const ptrdiff_t lo = e < 0 ? -e : 0;
            const ptrdiff_t hi = iW - e < nl ? iW - e : nl;
            ok[kw] = hi > lo;
            mk[kw] = SFX(d_lanes)(lo, hi > lo ? hi : lo);
        }
    }
    VF a = (VF)bias, c = (VF)bias;
    for (int r = 0; r <= KH; r++) {
        for (int kw = 0; kw < KW; kw++) {
            const ptrdiff_t e = j + off[kw];
            SFX(dmask) m;
            if (pre) {
                if (!ok[kw]) continue;
                m = mk[kw];
            } else {
                const ptrdiff_t lo = e < 0 ? -e : 0;
                const ptrdiff_t hi = iW - e < nl ? iW - e : nl;
                if (hi <= lo) continue;
                m = SFX(d_lanes)(lo, hi);
            }
            const float *p = (const float *)((uintptr_t)R[r] + (uintptr_t)(e * (ptrdiff_t)sizeof(float)));
            const VF v = SFX(d_loadn)(p, m);
            if (r < KH) a = FMA(v, (VF)w[r * KW + kw], a);
            if (r > 0) c = FMA(v, (VF)w[(r - 1) * KW + kw], c);
        }
    }
    const SFX(dmask) ms = SFX(d_mask)(nl);
    SFX(d_storen)(o0 + j, a, ms);
    SFX(d_storen)(o1 + j, c, ms);
}

/* Rows oh, oh + 1 (o, o + oW) of a stride-1 plane with sH = dH = 1, read in place. */
static inline __attribute__((always_inline)) void SFX(dw_row2_s1_body)(float *restrict o, ptrdiff_t oW,
                                                                     const float *const *restrict R,
                                                                     const ptrdiff_t *restrict off,
                                                                     const float *restrict w, float bias,
                                                                     const int KH, const int KW, ptrdiff_t iW) {
    float *o1 = o + oW;
    if (KW == 0) {
        SFX(dw_span2_body)(o, o1, 0, oW, R, off, w, bias, KH, KW);
        return;
    }
    const ptrdiff_t lo = -off[0];
    ptrdiff_t hi = iW - off[KW - 1];
    if (hi > oW) hi = oW;
    ptrdiff_t j = 0;
    for (; j < oW && j < lo; j += W) SFX(dw_edge2)(o, o1, j, oW, R, off, w, bias, KH, KW, iW);
    if (j < hi) {
        const ptrdiff_t e = j + (hi - j) / W * W;
        SFX(dw_span2_body)(o, o1, j, e, R, off, w, bias, KH, KW);
        j = e;
    }
    for (; j < oW; j += W) SFX(dw_edge2)(o, o1, j, oW, R, off, w, bias, KH, KW, iW);
}

/* Row kernels: (o, oW, R, off, w, bias, kH, kW, iW). `phased`: R[kh] are padded phase rows, every
   read is inside them; `s1`: stride 1, R[kh] are the input rows themselves. */
typedef void (*SFX(dw_row_fn))(float *o, ptrdiff_t oW, const float *const *R, const ptrdiff_t *off,
                               const float *w, float bias, int kH, int kW, ptrdiff_t iW);

#define SO_DW_ROWS(NAME, KH, KW)                                                                         \
    static void SFX(f32_dwconv2d_phased_##NAME)(float *o, ptrdiff_t oW, const float *const *R,           \
                                                const ptrdiff_t *off, const float *w, float bias, int kH, \
                                                int kW, ptrdiff_t iW) {                                  \
        (void)kH; (void)kW; (void)iW;                                                                    \
        SFX(dw_span_body)(o, 0, oW, R, off, w, bias, KH, KW);                                            \
    }                                                                                                    \
    static void SFX(f32_dwconv2d_s1_##NAME)(float *o, ptrdiff_t oW, const float *const *R,               \
                                            const ptrdiff_t *off, const float *w, float bias, int kH,     \
                                            int kW, ptrdiff_t iW) {                                      \
        (void)kH; (void)kW;                                                                              \
        SFX(dw_row_s1_body)(o, oW, R, off, w, bias, KH, KW, iW);                                         \
    }                                                                                                    \
    static void SFX(f32_dwconv2d_s1x2_##NAME)(float *o, ptrdiff_t oW, const float *const *R,             \
                                              const ptrdiff_t *off, const float *w, float bias, int kH,   \
                                              int kW, ptrdiff_t iW) {                                    \
        (void)kH; (void)kW;                                                                              \
        SFX(dw_row2_s1_body)(o, oW, R, off, w, bias, KH, KW, iW);                                        \
    }

SO_DW_ROWS(3x3, 3, 3)
SO_DW_ROWS(5x5, 5, 5)
SO_DW_ROWS(7x7, 7, 7)
SO_DW_ROWS(any, kH, kW)
#undef SO_DW_ROWS

/* d[0 .. n) = 0. */
static inline __attribute__((always_inline)) void SFX(dw_zero)(float *d, ptrdiff_t n) {
    ptrdiff_t i = 0;
    for (; i + W <= n; i += W) VST(d + i, (VF)0.0f);
    if (i < n) SFX(d_storen)(d + i, (VF)0.0f, SFX(d_mask)(n - i));
}

/* The lanes of input row [0, iW) among W floats starting at column s (a masked load). */
static inline __attribute__((always_inline)) VF SFX(dw_load_row)(const float *xr, ptrdiff_t s, ptrdiff_t iW) {
    ptrdiff_t lo = s < 0 ? -s : 0, hi = iW - s;
    if (hi > W) hi = W;
    if (hi <= lo) return (VF)0.0f;
    if (lo == 0 && hi == W) return VLD(xr + s);
    const float *p = (const float *)((uintptr_t)xr + (uintptr_t)(s * (ptrdiff_t)sizeof(float)));
    return SFX(d_loadn)(p, SFX(d_lanes)(lo, hi));
}

/*
 * Zero-padded, phase-split copy of input row xr into dst: sW rows of `stride` floats,
 * dst[pw*stride + c] = xpad[c*sW + pw] for c in [0, rw) (and up to rw rounded up to W for sW = 2).
 * rng[2*pw], rng[2*pw+1]: the columns of phase pw that hold input (dw_phase_range).
 */
static void SFX(dw_prep_row)(float *dst, const float *xr, const ptrdiff_t *rng, ptrdiff_t iW, ptrdiff_t pW,
                             ptrdiff_t sW, ptrdiff_t rw, ptrdiff_t stride) {
    if (sW == 1) {
        for (ptrdiff_t c = 0; c < rw; c += W) VST(dst + c, SFX(dw_load_row)(xr, c - pW, iW));
        return;
    }
    if (sW == 2) {
        /* Each step: 2W input floats from column 2c - pW (masked at the row ends, so the pads come
           out as zeros), deinterleaved into W floats of each phase. */
#if W == 16
#define SO_EVEN 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30
#define SO_ODD 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31
#else
#define SO_EVEN 0, 2, 4, 6, 8, 10, 12, 14
#define SO_ODD 1, 3, 5, 7, 9, 11, 13, 15
#endif
        float *d0 = dst, *d1 = dst + stride;
        for (ptrdiff_t c = 0; c < rw; c += W) {
            const ptrdiff_t s = 2 * c - pW;
            VF a, b;
            if (s >= 0 && s + 2 * W <= iW) {
                a = VLD(xr + s);
                b = VLD(xr + s + W);
            } else {
                a = SFX(dw_load_row)(xr, s, iW);
                b = SFX(dw_load_row)(xr, s + W, iW);
            }
            VST(d0 + c, __builtin_shufflevector(a, b, SO_EVEN));
            VST(d1 + c, __builtin_shufflevector(a, b, SO_ODD));
        }
#undef SO_EVEN
#undef SO_ODD
        return;
    }
    for (ptrdiff_t pw = 0; pw < sW; pw++) {
        float *d = dst + pw * stride;
        const ptrdiff_t l = rng[2 * pw], h = rng[2 * pw + 1];
        SFX(dw_zero)(d, l);
        SFX(dw_zero)(d + h, rw - h);
        /* strides >= 3 (rare): a scalar gather */
        const float *s = xr + (l * sW + pw - pW);
#pragma clang loop vectorize(disable)
        for (ptrdiff_t c = l; c < h; c++, s += sW) d[c] = *s;
    }
}

static void SFX(f32_dwconv2d)(const so_dw_geom *g, const float *x, const float *w, float bias, const float *z,
                              int act, float alpha, float beta, float *out, void *scratch) {
    const ptrdiff_t iH = g->iH, iW = g->iW, oH = g->oH, oW = g->oW;
    const ptrdiff_t kH = g->kH > 0 ? g->kH : 0, kW = g->kW > 0 ? g->kW : 0;
    const ptrdiff_t sH = g->sH, sW = g->sW, dH = g->dH, dW = g->dW, pH = g->pH, pW = g->pW;
    if (oH <= 0 || oW <= 0) return;

    dw_layout L;
    dw_layout_of(g, &L);
    char *base = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    const float **R = (const float **)(void *)(base + L.ptr_off);
    ptrdiff_t *off = (ptrdiff_t *)(void *)(base + L.off_off);
    ptrdiff_t *rng = (ptrdiff_t *)(void *)(base + L.rng_off);
    ptrdiff_t *held = (ptrdiff_t *)(void *)(base + L.flag_off);
    float *zero = (float *)(void *)(base + L.zero_off);
    float *rows = (float *)(void *)(base + L.rows_off);
    const ptrdiff_t stride = L.stride, rw = L.rw, rowBlock = sW * stride;

    /* Stride 1 reads the input rows in place (two output rows per pass when sH = dH = 1); larger
       strides read phase-split, zero-padded copies of the rows. (dw_layout_of sizes the scratch on
       the same condition.) */
    const int direct = sW == 1;
    const int pairs = direct && sH == 1 && dH == 1;
    memset(zero, 0, (size_t)L.zlen * sizeof(float));
    for (ptrdiff_t kw = 0; kw < kW; kw++) {
        ptrdiff_t c = kw * dW;
        off[kw] = direct ? c - pW : (c % sW) * stride + c / sW;
    }
    if (!direct) {
        for (ptrdiff_t r = 0; r < L.ring; r++) held[r] = -1;
        for (ptrdiff_t pw = 0; pw < sW; pw++) dw_phase_range(iW, pW, sW, pw, rw, &rng[2 * pw], &rng[2 * pw + 1]);
    }

    SFX(dw_row_fn) row, row2 = NULL;
#define SO_PICK(NAME)                                                                                   \
    do {                                                                                                \
        row = direct ? SFX(f32_dwconv2d_s1_##NAME) : SFX(f32_dwconv2d_phased_##NAME);                   \
        if (pairs) row2 = SFX(f32_dwconv2d_s1x2_##NAME);                                                \
    } while (0)
    if (kH == 3 && kW == 3) SO_PICK(3x3);
    else if (kH == 5 && kW == 5) SO_PICK(5x5);
    else if (kH == 7 && kW == 7) SO_PICK(7x7);
    else SO_PICK(any);
#undef SO_PICK

    const so_f32_bias_act_fn bias_act = so_f32_bias_act_select(SO_LEVEL);
    const so_f32_unary_fn unary = so_f32_unary_select(SO_LEVEL);

    for (ptrdiff_t oh = 0; oh < oH;) {
        float *o = out + oh * oW;
        const ptrdiff_t ih0 = oh * sH - pH;
        if (row2 && oh + 1 < oH) {
            for (ptrdiff_t r = 0; r <= kH; r++) {
                const ptrdiff_t ih = ih0 + r;
                R[r] = ih < 0 || ih >= iH ? zero : x + ih * iW;
            }
            row2(o, oW, R, off, w, bias, (int)kH, (int)kW, iW);
            dw_epilogue(o, (size_t)(2 * oW), z ? z + oh * oW : NULL, act, alpha, beta, bias_act, unary);
            oh += 2;
            continue;
        }
        for (ptrdiff_t kh = 0; kh < kH; kh++) {
            const ptrdiff_t ih = ih0 + kh * dH;
            if (ih < 0 || ih >= iH) {
                R[kh] = zero;
            } else if (direct) {
                R[kh] = x + ih * iW;
            } else {
                const ptrdiff_t slot = ih % L.ring;
                float *pr = rows + slot * rowBlock;
                if (held[slot] != ih) {
                    SFX(dw_prep_row)(pr, x + ih * iW, rng, iW, pW, sW, rw, stride);
                    held[slot] = ih;
                }
                R[kh] = pr;
            }
        }
        row(o, oW, R, off, w, bias, (int)kH, (int)kW, iW);
        dw_epilogue(o, (size_t)oW, z ? z + oh * oW : NULL, act, alpha, beta, bias_act, unary);
        oh += 1;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Channel-blocked form (so_f32_dwconv2d_cb): W planes interleaved channel-last.
 * ------------------------------------------------------------------------------------------- */

/* In-register W x W transpose: r[i][j] becomes r[j][i]. log2(W) rounds of the perfect shuffle
   (row 2i, 2i+1 <- the low / high halves of rows i and i + W/2, interleaved). */
static inline __attribute__((always_inline)) void SFX(cb_transpose)(VF *r) {
#if W == 16
#define SO_LO 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23
#define SO_HI 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31
#else
#define SO_LO 0, 8, 1, 9, 2, 10, 3, 11
#define SO_HI 4, 12, 5, 13, 6, 14, 7, 15
#endif
    for (int stage = 1; stage < W; stage *= 2) {
        VF t[W];
#pragma clang loop unroll(full)
        for (int i = 0; i < W / 2; i++) {
            t[2 * i] = __builtin_shufflevector(r[i], r[i + W / 2], SO_LO);
            t[2 * i + 1] = __builtin_shufflevector(r[i], r[i + W / 2], SO_HI);
        }
#pragma clang loop unroll(full)
        for (int i = 0; i < W; i++) r[i] = t[i];
    }
#undef SO_LO
#undef SO_HI
}

/* One block of W output pixels (flattened index p0 .. p0 + W, the last `np` <= W of them real):
   base[p] is the padded-image address of pixel p's tap (0, 0). Returns the W accumulators
   transposed, so v[c] holds channel c's W pixels. */
static inline __attribute__((always_inline)) void SFX(cb_block)(VF *v, const float *const *base,
                                                                const float *restrict wt,
                                                                const ptrdiff_t *restrict toff, VF b,
                                                                const int KH, const int KW) {
    VF acc[W];
#pragma clang loop unroll(full)
    for (int p = 0; p < W; p++) acc[p] = b;
    for (int t = 0; t < KH * KW; t++) {
        const VF wv = VLD(wt + t * W);
        const ptrdiff_t o = toff[t];
#pragma clang loop unroll(full)
        for (int p = 0; p < W; p++) acc[p] = FMA(VLD(base[p] + o), wv, acc[p]);
    }
    SFX(cb_transpose)(acc);
#pragma clang loop unroll(full)
    for (int p = 0; p < W; p++) v[p] = acc[p];
}

typedef void (*SFX(cb_plane_fn))(const so_dw_geom *g, ptrdiff_t nb, const float *P, ptrdiff_t Wp,
                                 const float *wt, const ptrdiff_t *toff, VF b, float *out, ptrdiff_t plane);

/* All output pixels of the padded image P for nb <= W planes, written to out + c * plane. */
static inline __attribute__((always_inline)) void SFX(cb_plane_body)(const so_dw_geom *g, ptrdiff_t nb,
                                                                     const float *P, ptrdiff_t Wp,
                                                                     const float *wt, const ptrdiff_t *toff,
                                                                     VF b, float *out, ptrdiff_t plane,
                                                                     const int KH, const int KW) {
    const ptrdiff_t oW = g->oW, sH = g->sH, sW = g->sW;
    ptrdiff_t oh = 0, ow = 0;
    for (ptrdiff_t p0 = 0; p0 < plane; p0 += W) {
        const ptrdiff_t np = plane - p0 < W ? plane - p0 : W;
        const float *base[W];
        ptrdiff_t h = oh, c = ow;
#pragma clang loop unroll(full)
        for (int p = 0; p < W; p++) {
            base[p] = P + (h * sH * Wp + c * sW) * W;
            /* pixels past the plane repeat the last one (their lanes are not stored) */
            if (p + 1 < np && ++c == oW) { c = 0; h++; }
        }
        /* advance to the next block's first pixel */
        ow += W;
        while (ow >= oW) { ow -= oW; oh++; }
        VF v[W];
        SFX(cb_block)(v, base, wt, toff, b, KH, KW);
        if (np == W) {
            for (ptrdiff_t ch = 0; ch < nb; ch++) VST(out + ch * plane + p0, v[ch]);
        } else {
            const SFX(dmask) m = SFX(d_mask)(np);
            for (ptrdiff_t ch = 0; ch < nb; ch++) SFX(d_storen)(out + ch * plane + p0, v[ch], m);
        }
    }
}

#define SO_CB_PLANE(NAME, KH, KW)                                                                       \
    static void SFX(f32_dwconv2d_cb_##NAME)(const so_dw_geom *g, ptrdiff_t nb, const float *P, ptrdiff_t Wp, \
                                            const float *wt, const ptrdiff_t *toff, VF b, float *out,       \
                                            ptrdiff_t plane) {                                             \
        SFX(cb_plane_body)(g, nb, P, Wp, wt, toff, b, out, plane, KH, KW);                                  \
    }
SO_CB_PLANE(3x3, 3, 3)
SO_CB_PLANE(5x5, 5, 5)
SO_CB_PLANE(7x7, 7, 7)
SO_CB_PLANE(any, g->kH, g->kW)
#undef SO_CB_PLANE

static void SFX(f32_dwconv2d_cb)(const so_dw_geom *g, size_t nc, const float *x, size_t x_stride, const float *w,
                                 const float *bias, const float *z, int act, float alpha, float beta, float *out,
                                 void *scratch) {
    const ptrdiff_t iH = g->iH, iW = g->iW, oH = g->oH, oW = g->oW;
    const ptrdiff_t kH = g->kH > 0 ? g->kH : 0, kW = g->kW > 0 ? g->kW : 0, pH = g->pH, pW = g->pW;
    if (oH <= 0 || oW <= 0 || nc == 0) return;
    const ptrdiff_t plane = oH * oW, taps = kH * kW;
    dw_cb_layout L;
    dw_cb_layout_of(g, W, &L);
    char *base = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    float *P = (float *)(void *)base;
    float *wt = (float *)(void *)(base + L.wt_off);
    ptrdiff_t *toff = (ptrdiff_t *)(void *)(base + L.toff_off);
    const ptrdiff_t Hp = L.Hp, Wp = L.Wp;
    for (ptrdiff_t kh = 0; kh < kH; kh++)
        for (ptrdiff_t kw = 0; kw < kW; kw++) toff[kh * kW + kw] = (kh * g->dH * Wp + kw * g->dW) * W;
    /* input columns copied into the image: iw in [0, cw), at image column pW + iw */
    ptrdiff_t cw = Wp - pW < iW ? Wp - pW : iW;
    if (cw < 0) cw = 0;
    const ptrdiff_t colEnd = pW < Wp ? pW + cw : Wp; /* first column past the input */
    const ptrdiff_t padL = pW < Wp ? pW : Wp;

    SFX(cb_plane_fn) planeFn;
    if (kH == 3 && kW == 3) planeFn = SFX(f32_dwconv2d_cb_3x3);
    else if (kH == 5 && kW == 5) planeFn = SFX(f32_dwconv2d_cb_5x5);
    else if (kH == 7 && kW == 7) planeFn = SFX(f32_dwconv2d_cb_7x7);
    else planeFn = SFX(f32_dwconv2d_cb_any);

    const so_f32_bias_act_fn bias_act = so_f32_bias_act_select(SO_LEVEL);
    const so_f32_unary_fn unary = so_f32_unary_select(SO_LEVEL);

    for (size_t c0 = 0; c0 < nc; c0 += W) {
        const ptrdiff_t nb = nc - c0 < (size_t)W ? (ptrdiff_t)(nc - c0) : W;
        /* taps and bias, channel-interleaved (missing channels 0) */
        for (ptrdiff_t t = 0; t < taps; t++)
            for (ptrdiff_t ch = 0; ch < W; ch++) wt[t * W + ch] = ch < nb ? w[(c0 + ch) * taps + t] : 0.0f;
        VF b = (VF)0.0f;
        if (bias)
            for (ptrdiff_t ch = 0; ch < nb; ch++) b[ch] = bias[c0 + ch];
        /* the padded image */
        for (ptrdiff_t r = 0; r < Hp; r++) {
            float *row = P + r * Wp * W;
            const ptrdiff_t ih = r - pH;
            if (ih < 0 || ih >= iH || cw == 0) {
                SFX(dw_zero)(row, Wp * W);
                continue;
            }
            SFX(dw_zero)(row, padL * W);
            SFX(dw_zero)(row + colEnd * W, (Wp - colEnd) * W);
            const float *src = x + c0 * x_stride + ih * iW;
            for (ptrdiff_t iw = 0; iw < cw; iw += W) {
                const ptrdiff_t n = cw - iw < W ? cw - iw : W;
                VF v[W];
                if (n == W) {
                    for (ptrdiff_t ch = 0; ch < W; ch++) v[ch] = ch < nb ? VLD(src + ch * x_stride + iw) : (VF)0.0f;
                } else {
                    const SFX(dmask) m = SFX(d_mask)(n);
                    for (ptrdiff_t ch = 0; ch < W; ch++)
                        v[ch] = ch < nb ? SFX(d_loadn)(src + ch * x_stride + iw, m) : (VF)0.0f;
                }
                SFX(cb_transpose)(v);
                float *d = row + (pW + iw) * W;
                for (ptrdiff_t j = 0; j < n; j++) VST(d + j * W, v[j]);
            }
        }
        float *o = out + c0 * plane;
        planeFn(g, nb, P, Wp, wt, toff, b, o, plane);
        for (ptrdiff_t ch = 0; ch < nb; ch++)
            dw_epilogue(o + ch * plane, (size_t)plane, z ? z + (c0 + ch) * plane : NULL, act, alpha, beta, bias_act,
                        unary);
    }
}

static size_t SFX(dw_cb_scratch)(const so_dw_geom *g) { return dw_cb_scratch_lanes(g, W); }

static const so_f32_dwconv2d_cb SFX(dw_cb) = {SO_LEVEL, W, W == 16 ? "f32_dwconv2d_cb16_avx512" : "f32_dwconv2d_cb8_avx2",
                                              SFX(dw_cb_scratch), SFX(f32_dwconv2d_cb)};

#undef FMA
#undef VLD
#undef VST

#endif /* SO_DWCONV_TEMPLATE */
