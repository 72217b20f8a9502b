/*
 * Softmax / LogSoftmax over contiguous float32 rows.
 *
 * Variants: f32_softmax_ref (portable C, libm expf, double-precision row sum),
 * f32_softmax_avx2 (8 lanes), f32_softmax_avx512 (16 lanes); the vector body is written once and
 * instantiated per ISA by including this file into itself (see f32_unary.c).
 *
 * Numerics, per row x of length n (the reductions of ReductionKernels.swift f32SoftmaxRows):
 *   m = max(x) (the reference lets a NaN stick, the vector variants skip it: either way a NaN
 *       anywhere makes the whole row NaN, like numpy, through the row's sum);
 *   softmax:    e_i = exp(x_i - m), s = sum e_i, y_i = e_i * (1 / s);
 *   logsoftmax: s = sum exp(x_i - m), y_i = (x_i - m) - log(s).
 * (The Swift LogSoftmax computed x_i - (m + log s); (x_i - m) - log s is the ONNX formula and does
 * not lose the low bits of log s when |m| is large.) A row of all -inf, or with +inf, gives NaN
 * (inf - inf), as the reference formula does. The vector exp is the polynomial of f32_unary.c.
 * dst may equal src. n == 0 does nothing.
 */
#ifndef SO_SOFTMAX_TEMPLATE

#include "so_eltwise.h"
#include "so_isa.h"
#include <math.h>

#pragma clang fp contract(off)

/* ---------------------------------------------------------------------------------------------
 * Scalar reference
 * ------------------------------------------------------------------------------------------- */

static float ref_row_max(const float *x, size_t n) {
    float m = x[0];
    for (size_t i = 1; i < n; i++)
        if (x[i] > m || x[i] != x[i]) m = x[i];   /* once m is NaN it stays NaN */
    return m;
}

static void f32_softmax_ref(const float *src, float *dst, size_t rows, size_t n, int log) {
    if (n == 0) return;
    for (size_t r = 0; r < rows; r++) {
        const float *x = src + r * n;
        float *y = dst + r * n;
        float m = ref_row_max(x, n);
        double s = 0;
        if (log) {
            for (size_t i = 0; i < n; i++) s += expf(x[i] - m);
            float ls = logf((float)s);
            for (size_t i = 0; i < n; i++) y[i] = (x[i] - m) - ls;
        } else {
            for (size_t i = 0; i < n; i++) {
                float e = expf(x[i] - m);
                y[i] = e;
                s += e;
            }
            float inv = 1.0f / (float)s;
            for (size_t i = 0; i < n; i++) y[i] *= inv;
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Vector instantiations (x86-64 only)
 * ------------------------------------------------------------------------------------------- */
#if defined(__x86_64__)
#include <immintrin.h>

typedef float so_s_vf8 __attribute__((ext_vector_type(8), aligned(4)));
typedef int so_s_vi8 __attribute__((ext_vector_type(8), aligned(4)));
typedef float so_s_vf16 __attribute__((ext_vector_type(16), aligned(4)));
typedef int so_s_vi16 __attribute__((ext_vector_type(16), aligned(4)));

#define SO_SOFTMAX_TEMPLATE 1

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#define W 8
#define VF so_s_vf8
#define VI so_s_vi8
#define SFX(name) name##_avx2
#include "f32_softmax.c"
#undef W
#undef VF
#undef VI
#undef SFX
#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma"))), apply_to = function)
#define W 16
#define VF so_s_vf16
#define VI so_s_vi16
#define SFX(name) name##_avx512
#include "f32_softmax.c"
#undef W
#undef VF
#undef VI
#undef SFX
#pragma clang attribute pop

#undef SO_SOFTMAX_TEMPLATE
#endif /* __x86_64__ */

so_f32_softmax_fn so_f32_softmax_select(int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX512) return f32_softmax_avx512;
    if (isa >= SO_ISA_AVX2) return f32_softmax_avx2;
#endif
    (void)isa;
    return f32_softmax_ref;
}

#else /* SO_SOFTMAX_TEMPLATE: W lanes, VF / VI, SFX(name) */

#define FMA(a, b, c) __builtin_elementwise_fma((a), (b), (c))
#define VLD(p) (*(const VF *)(p))
#define VST(p, v) (*(VF *)(p) = (v))

/* Lane mask (all ones in lanes < r) as an integer vector, r <= W. */
static inline __attribute__((always_inline)) VI SFX(s_lanes)(size_t r) {
#if W == 16
    const VI iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
#else
    const VI iota = {0, 1, 2, 3, 4, 5, 6, 7};
#endif
    return iota < (int)r;
}

/* The first r < W lanes of p; the other lanes read as `fill`. */
static inline __attribute__((always_inline)) VF SFX(s_loadn)(const float *p, size_t r, float fill) {
#if W == 16
    return (VF)_mm512_mask_loadu_ps((__m512)(VF)fill, (__mmask16)((1u << r) - 1u), p);
#else
    VI m = SFX(s_lanes)(r);
    VF v = (VF)_mm256_maskload_ps(p, (__m256i)m);
    return m ? v : (VF)fill;
#endif
}

static inline __attribute__((always_inline)) void SFX(s_storen)(float *p, VF v, size_t r) {
#if W == 16
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << r) - 1u), (__m512)v);
#else
    _mm256_maskstore_ps(p, (__m256i)SFX(s_lanes)(r), (__m256)v);
#endif
}

#include "vexp_template.h"

/* The larger of m and x, skipping a NaN x: the maximum only shifts the exponents, and a NaN in a row
   reaches every output through the row's sum anyway (exp(NaN - m) = NaN, so the sum, its reciprocal
   or logarithm and every y_i are NaN). One vmaxps instead of two compares and a blend. */
static inline __attribute__((always_inline)) VF SFX(s_vmax)(VF m, VF x) {
#if W == 16
    return (VF)_mm512_max_ps((__m512)x, (__m512)m);   /* x NaN: m */
#else
    return (VF)_mm256_max_ps((__m256)x, (__m256)m);
#endif
}

/* Horizontal sum and max as trees of in-register shuffles (lane i with lane i + W/2, then W/4, ...):
 * a short row's softmax is these reductions' latency, which a spill to the stack and a serial scalar
 * loop made several times longer. The max is exact in any order; the sum
 * adds in the tree's order. */
#if W == 16
#define S_HALF(v) __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7)
#define S_QUARTER(v) __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11)
#define S_EIGHTH(v) __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13)
#define S_PAIR(v) __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14)
#else
#define S_QUARTER(v) __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3)
#define S_EIGHTH(v) __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5)
#define S_PAIR(v) __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6)
#endif

static inline __attribute__((always_inline)) float SFX(s_hsum)(VF v) {
#if W == 16
    v += S_HALF(v);
#endif
    v += S_QUARTER(v);
    v += S_EIGHTH(v);
    v += S_PAIR(v);
    return v[0];
}

static inline __attribute__((always_inline)) float SFX(s_hmax)(VF v) {
#if W == 16
    v = SFX(s_vmax)(v, S_HALF(v));
#endif
    v = SFX(s_vmax)(v, S_QUARTER(v));
    v = SFX(s_vmax)(v, S_EIGHTH(v));
    v = SFX(s_vmax)(v, S_PAIR(v));
    return v[0];
}

#undef S_HALF
#undef S_QUARTER
#undef S_EIGHTH
#undef S_PAIR

static float SFX(s_row_max)(const float *x, size_t n) {
    VF m0 = (VF)-INFINITY, m1 = m0, m2 = m0, m3 = m0;
    size_t i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
        m0 = SFX(s_vmax)(m0, VLD(x + i));
        m1 = SFX(s_vmax)(m1, VLD(x + i + W));
        m2 = SFX(s_vmax)(m2, VLD(x + i + 2 * W));
        m3 = SFX(s_vmax)(m3, VLD(x + i + 3 * W));
    }
    for (; i + W <= n; i += W) m0 = SFX(s_vmax)(m0, VLD(x + i));
    if (i < n) m1 = SFX(s_vmax)(m1, SFX(s_loadn)(x + i, n - i, -INFINITY));
    m0 = SFX(s_vmax)(SFX(s_vmax)(m0, m1), SFX(s_vmax)(m2, m3));
    return SFX(s_hmax)(m0);
}

/* Softmax (not log) of four rows of n < 4W each, their steps interleaved: each row's arithmetic is
 * exactly that of the one-row loop below (same lanes, same sums in the same order), but a short row
 * is a chain of dependent steps (max, exp, sum, reciprocal) with little work in each, so four
 * independent chains side by side keep the vector units busy (attention over a few dozen keys). */
static inline __attribute__((always_inline)) void SFX(s_softmax4_short)(const float *src, float *dst, size_t n,
                                                                       const size_t nf) {
    const size_t r = n - nf * W;   /* nf = n / W whole vectors (a constant of each call), then r lanes */
    VF a[4][3], b[4], m[4], s[4];
    for (int k = 0; k < 4; k++) {
        const float *x = src + k * n;
        for (size_t j = 0; j < nf; j++) a[k][j] = VLD(x + j * W);
        b[k] = r ? SFX(s_loadn)(x + nf * W, r, -INFINITY) : (VF)-INFINITY;
    }
    for (int k = 0; k < 4; k++) {
        /* as s_row_max: m0 takes the whole vectors, m1 the tail */
        VF m0 = (VF)-INFINITY;
        for (size_t j = 0; j < nf; j++) m0 = SFX(s_vmax)(m0, a[k][j]);
        m[k] = (VF)SFX(s_hmax)(SFX(s_vmax)(m0, SFX(s_vmax)((VF)-INFINITY, b[k])));
    }
    for (int k = 0; k < 4; k++) {
        VF s0 = (VF)0.0f, s1 = s0;
        for (size_t j = 0; j < nf; j++) {
            a[k][j] = SFX(v_exp_nonpos)(a[k][j] - m[k]);
            s0 += a[k][j];
        }
        if (r) {
            /* the tail as the one-row loop loads it (fill 0); its dead lanes are not summed */
            b[k] = SFX(v_exp_nonpos)((SFX(s_lanes)(r) ? b[k] : (VF)0.0f) - m[k]);
            s1 += SFX(s_lanes)(r) ? b[k] : (VF)0.0f;
        }
        s[k] = s0 + s1;   /* = (s0 + s1) + (s2 + s3) of the one-row loop, where s2 = s3 = 0 */
    }
    for (int k = 0; k < 4; k++) {
        const VF iv = (VF)(1.0f / SFX(s_hsum)(s[k]));
        float *y = dst + k * n;
        for (size_t j = 0; j < nf; j++) VST(y + j * W, a[k][j] * iv);
        if (r) SFX(s_storen)(y + nf * W, b[k] * iv, r);
    }
}

/* y_i = exp(x_i - m) for one row; returns the lanes of the row sum, (s0 + s1) + (s2 + s3). */
static inline __attribute__((always_inline)) VF SFX(s_exp_row)(const float *x, float *y, size_t n, const VF mv) {
    VF s0 = (VF)0.0f, s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
        VF e0 = SFX(v_exp_nonpos)(VLD(x + i) - mv);
        VF e1 = SFX(v_exp_nonpos)(VLD(x + i + W) - mv);
        VF e2 = SFX(v_exp_nonpos)(VLD(x + i + 2 * W) - mv);
        VF e3 = SFX(v_exp_nonpos)(VLD(x + i + 3 * W) - mv);
        VST(y + i, e0);
        VST(y + i + W, e1);
        VST(y + i + 2 * W, e2);
        VST(y + i + 3 * W, e3);
        s0 += e0;
        s1 += e1;
        s2 += e2;
        s3 += e3;
    }
    for (; i + W <= n; i += W) {
        VF e = SFX(v_exp_nonpos)(VLD(x + i) - mv);
        VST(y + i, e);
        s0 += e;
    }
    if (i < n) {
        VF e = SFX(v_exp_nonpos)(SFX(s_loadn)(x + i, n - i, 0.0f) - mv);
        SFX(s_storen)(y + i, e, n - i);
        s1 += SFX(s_lanes)(n - i) ? e : (VF)0.0f;
    }
    return (s0 + s1) + (s2 + s3);
}

/* y_i *= inv over one row. */
static inline __attribute__((always_inline)) void SFX(s_scale_row)(float *y, size_t n, const VF iv) {
    size_t i = 0;
    for (; i + W <= n; i += W) VST(y + i, VLD(y + i) * iv);
    if (i < n) SFX(s_storen)(y + i, SFX(s_loadn)(y + i, n - i, 0.0f) * iv, n - i);
}

static void SFX(f32_softmax)(const float *src, float *dst, size_t rows, size_t n, int log) {
    if (n == 0) return;
    size_t row = 0;
    if (!log && n < 4 * W) {
        for (; row + 4 <= rows; row += 4) {
            const float *x = src + row * n;
            float *y = dst + row * n;
            switch (n / W) {   /* each case inlined with its count of whole vectors */
            case 0: SFX(s_softmax4_short)(x, y, n, 0); break;
            case 1: SFX(s_softmax4_short)(x, y, n, 1); break;
            case 2: SFX(s_softmax4_short)(x, y, n, 2); break;
            default: SFX(s_softmax4_short)(x, y, n, 3); break;
            }
        }
    }
    if (!log) {
        /* Four rows at a time, phase by phase (maxima; exponentials and sums; reciprocals; scaling):
           each row's arithmetic is the one-row loop's, but the latency of one row's horizontal max,
           sum and reciprocal overlaps the other rows' work (128 keys, Zen 4: 67 -> 45 ns a row, with the
           one-vmaxps maximum). */
        for (; row + 4 <= rows; row += 4) {
            const float *x0 = src + row * n;
            float *y0 = dst + row * n;
            float m[4], inv[4];
            VF s[4];
            for (int k = 0; k < 4; k++) m[k] = SFX(s_row_max)(x0 + k * n, n);
            for (int k = 0; k < 4; k++) s[k] = SFX(s_exp_row)(x0 + k * n, y0 + k * n, n, (VF)m[k]);
            for (int k = 0; k < 4; k++) inv[k] = 1.0f / SFX(s_hsum)(s[k]);
            for (int k = 0; k < 4; k++) SFX(s_scale_row)(y0 + k * n, n, (VF)inv[k]);
        }
    }
    for (; row < rows; row++) {
        const float *x = src + row * n;
        float *y = dst + row * n;
        const float m = SFX(s_row_max)(x, n);
        const VF mv = (VF)m;
        VF s0 = (VF)0.0f, s1 = s0, s2 = s0, s3 = s0;
        size_t i = 0;
        if (log) {
            for (; i + 4 * W <= n; i += 4 * W) {
                s0 += SFX(v_exp_nonpos)(VLD(x + i) - mv);
                s1 += SFX(v_exp_nonpos)(VLD(x + i + W) - mv);
                s2 += SFX(v_exp_nonpos)(VLD(x + i + 2 * W) - mv);
                s3 += SFX(v_exp_nonpos)(VLD(x + i + 3 * W) - mv);
            }
            for (; i + W <= n; i += W) s0 += SFX(v_exp_nonpos)(VLD(x + i) - mv);
            if (i < n) {
                /* dead lanes: -inf - m = -inf, e^-inf = 0 (m is finite here, else all is NaN) */
                VF e = SFX(v_exp_nonpos)(SFX(s_loadn)(x + i, n - i, -INFINITY) - mv);
                s1 += SFX(s_lanes)(n - i) ? e : (VF)0.0f;
            }
            const float ls = logf(SFX(s_hsum)((s0 + s1) + (s2 + s3)));
            const VF lv = (VF)ls;
            for (i = 0; i + W <= n; i += W) VST(y + i, (VLD(x + i) - mv) - lv);
            if (i < n) SFX(s_storen)(y + i, (SFX(s_loadn)(x + i, n - i, 0.0f) - mv) - lv, n - i);
        } else {
            const float inv = 1.0f / SFX(s_hsum)(SFX(s_exp_row)(x, y, n, mv));
            SFX(s_scale_row)(y, n, (VF)inv);
        }
    }
}

#undef FMA
#undef VLD
#undef VST

#endif /* SO_SOFTMAX_TEMPLATE */
