/*
 * Unary float32 maps (activations) and the conv / GEMM epilogue p = act(p + z + bias).
 *
 * Variants: f32_unary_ref / f32_bias_act_ref (portable C, libm), and the vector bodies below
 * instantiated twice: *_avx2 (8 lanes, AVX2 + FMA) and *_avx512 (16 lanes, AVX-512F/BW/DQ/VL).
 *
 * Layout of this file: the first pass (SO_UNARY_TEMPLATE undefined) holds the reference and the
 * selectors; it includes this same file twice with SO_UNARY_TEMPLATE defined, once per ISA, under
 * `#pragma clang attribute push(target(...))`, so the vector body is written once and every
 * function of an instantiation is compiled for that ISA only. No build flags are needed.
 *
 * Numerics (vector variants): exp, sigmoid, tanh, erf, erfc are the polynomials of
 * ElementwiseKernels.swift, evaluated with FMA (max relative error ~1e-6 against libm, usually a
 * few 1e-7). Two deliberate accuracy improvements over the Swift code: elu / selu / celu use
 * expm1 (the exp polynomial without its leading 1 for |x| < ln2/2, so there is no cancellation
 * near 0), and erfc's e^{-a^2} carries the rounding error of a^2 (matters for a > ~5, i.e. the
 * far negative tail of exact gelu). Special values: NaN propagates through every kind except
 * thresholded_relu (NaN -> 0, as `x > alpha ? x : 0` says) and sign of NaN is NaN; exp overflows
 * to +inf and underflows gradually to 0; abs clears the sign bit (abs(-0) = +0, unlike the Swift
 * `x < 0 ? -x : x`); round is round-half-to-even; sqrt / reciprocal / floor / ceil are IEEE exact.
 */
#ifndef SO_UNARY_TEMPLATE

#include "so_eltwise.h"
#include "so_isa.h"
#include <math.h>
#include <string.h>

/* Every multiply-add below is written as an explicit fma or not at all: no silent contraction,
   so the reference rounds the same on every platform. */
#pragma clang fp contract(off)

/* ---------------------------------------------------------------------------------------------
 * Scalar reference
 * ------------------------------------------------------------------------------------------- */

static float ref_sigmoid(float x) {
    if (x >= 0) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);              /* NaN lands here and propagates */
    return e / (1.0f + e);
}

/* Round half to even, independent of the FP environment's rounding mode. */
static float ref_roundeven(float x) {
    if (!(fabsf(x) < 8388608.0f)) return x;   /* NaN, inf, or already an integer (|x| >= 2^23) */
    float r = floorf(x);
    float d = x - r;                           /* exact */
    if (d > 0.5f || (d == 0.5f && fmodf(r, 2.0f) != 0.0f)) r += 1.0f;
    return copysignf(r, x);                    /* -0.3 -> -0 */
}

static float ref_sign(float x) {
    if (x > 0) return 1.0f;
    if (x < 0) return -1.0f;
    return x != x ? x : 0.0f;
}

/* One loop per kind (the simple ones auto-vectorize on the baseline ISA). */
#define REF_LOOP(EXPR)                                       \
    do {                                                     \
        for (size_t i = 0; i < n; i++) {                     \
            float x = src[i];                                \
            dst[i] = (EXPR);                                 \
        }                                                    \
    } while (0)

static void f32_unary_ref(int kind, const float *src, float *dst, size_t n, float alpha, float beta) {
    const float a = alpha, b = beta;
    switch (kind) {
    case SO_ACT_RELU: REF_LOOP(x < 0 ? 0.0f : x); break;
    case SO_ACT_LEAKY_RELU: REF_LOOP(x < 0 ? x * a : x); break;
    case SO_ACT_CLIP: REF_LOOP((x < a ? a : x) > b ? b : (x < a ? a : x)); break;
    case SO_ACT_SIGMOID: REF_LOOP(ref_sigmoid(x)); break;
    case SO_ACT_HARD_SIGMOID: {
        for (size_t i = 0; i < n; i++) {
            float t = src[i] * a + b;
            t = t < 0 ? 0.0f : t;
            dst[i] = t > 1 ? 1.0f : t;
        }
        break;
    }
    case SO_ACT_HARD_SWISH: {
        for (size_t i = 0; i < n; i++) {
            float x = src[i];
            float t = x * (1.0f / 6.0f) + 0.5f;
            t = t < 0 ? 0.0f : t;
            dst[i] = x * (t > 1 ? 1.0f : t);
        }
        break;
    }
    case SO_ACT_RELU_AFFINE: REF_LOOP((x < 0 ? 0.0f : x) * a + b); break;
    case SO_ACT_HARD_SWISH_AFFINE: {
        for (size_t i = 0; i < n; i++) {
            float x = src[i];
            float t = x * (1.0f / 6.0f) + 0.5f;
            t = t < 0 ? 0.0f : t;
            dst[i] = (x * (t > 1 ? 1.0f : t)) * a + b;
        }
        break;
    }
    case SO_ACT_TANH: REF_LOOP(tanhf(x)); break;
    case SO_ACT_GELU: REF_LOOP(0.5f * x * erfcf(x * -0.70710678118654752f)); break;
    case SO_ACT_GELU_TANH:
        /* 0.5 (1 + tanh(u)) = sigmoid(2u) */
        REF_LOOP(x * ref_sigmoid((x + 0.044715f * x * x * x) * (2.0f * 0.79788456080286536f)));
        break;
    case SO_ACT_ELU: REF_LOOP(x < 0 ? a * expm1f(x) : x); break;
    case SO_ACT_SELU: REF_LOOP(b * (x <= 0 ? a * expm1f(x) : x)); break;
    case SO_ACT_CELU: REF_LOOP(x < 0 ? a * expm1f(x / a) : x); break;
    case SO_ACT_SOFTSIGN: REF_LOOP(x / (1.0f + fabsf(x))); break;
    case SO_ACT_THRESHOLDED_RELU: REF_LOOP(x > a ? x : 0.0f); break;
    case SO_ACT_SWISH: REF_LOOP(x * ref_sigmoid(x * a)); break;
    case SO_ACT_EXP: REF_LOOP(expf(x)); break;
    case SO_ACT_ERF: REF_LOOP(erff(x)); break;
    case SO_ACT_ABS: REF_LOOP(fabsf(x)); break;
    case SO_ACT_NEG: REF_LOOP(-x); break;
    case SO_ACT_SQRT: REF_LOOP(sqrtf(x)); break;
    case SO_ACT_FLOOR: REF_LOOP(floorf(x)); break;
    case SO_ACT_CEIL: REF_LOOP(ceilf(x)); break;
    case SO_ACT_ROUND: REF_LOOP(ref_roundeven(x)); break;
    case SO_ACT_RECIPROCAL: REF_LOOP(1.0f / x); break;
    case SO_ACT_SIGN: REF_LOOP(ref_sign(x)); break;
    default: /* SO_ACT_IDENTITY and unknown kinds */
        if (dst != src && n) memmove(dst, src, n * sizeof(float));
        break;
    }
}
#undef REF_LOOP

static void f32_bias_act_ref(float *p, size_t n, float bias, const float *z, int kind, float alpha, float beta) {
    if (z) {
        for (size_t i = 0; i < n; i++) p[i] = (p[i] + z[i]) + bias;
    } else {
        for (size_t i = 0; i < n; i++) p[i] = p[i] + bias;
    }
    f32_unary_ref(kind, p, p, n, alpha, beta);
}

/* ---------------------------------------------------------------------------------------------
 * Vector instantiations (x86-64 only)
 * ------------------------------------------------------------------------------------------- */
#if defined(__x86_64__)
#include <immintrin.h>

/* aligned(4): a dereference is an unaligned load / store. */
typedef float so_u_vf8 __attribute__((ext_vector_type(8), aligned(4)));
typedef int so_u_vi8 __attribute__((ext_vector_type(8), aligned(4)));
typedef float so_u_vf16 __attribute__((ext_vector_type(16), aligned(4)));
typedef int so_u_vi16 __attribute__((ext_vector_type(16), aligned(4)));

#define SO_UNARY_TEMPLATE 1

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#define W 8
#define VF so_u_vf8
#define VI so_u_vi8
#define SFX(name) name##_avx2
#include "f32_unary.c"
#undef W
#undef VF
#undef VI
#undef SFX
#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma"))), apply_to = function)
#define W 16
#define VF so_u_vf16
#define VI so_u_vi16
#define SFX(name) name##_avx512
#include "f32_unary.c"
#undef W
#undef VF
#undef VI
#undef SFX
#pragma clang attribute pop

#undef SO_UNARY_TEMPLATE
#endif /* __x86_64__ */

/* ---------------------------------------------------------------------------------------------
 * Selectors
 * ------------------------------------------------------------------------------------------- */

so_f32_unary_fn so_f32_unary_select(int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX512) return f32_unary_avx512;
    if (isa >= SO_ISA_AVX2) return f32_unary_avx2;
#endif
    (void)isa;
    return f32_unary_ref;
}

so_f32_bias_act_fn so_f32_bias_act_select(int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX512) return f32_bias_act_avx512;
    if (isa >= SO_ISA_AVX2) return f32_bias_act_avx2;
#endif
    (void)isa;
    return f32_bias_act_ref;
}

#else /* SO_UNARY_TEMPLATE: the vector body, W lanes, VF / VI vector types, SFX(name) suffix */

#define FMA(a, b, c) __builtin_elementwise_fma((a), (b), (c))
#define VLD(p) (*(const VF *)(p))
#define VST(p, v) (*(VF *)(p) = (v))

/* Loads / stores the first r < W lanes; the other lanes read as 0 and are never touched. */
static inline __attribute__((always_inline)) VF SFX(u_loadn)(const float *p, size_t r) {
#if W == 16
    return (VF)_mm512_maskz_loadu_ps((__mmask16)((1u << r) - 1u), p);
#else
    const VI iota = {0, 1, 2, 3, 4, 5, 6, 7};
    return (VF)_mm256_maskload_ps(p, (__m256i)(iota < (int)r));
#endif
}

static inline __attribute__((always_inline)) void SFX(u_storen)(float *p, VF v, size_t r) {
#if W == 16
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << r) - 1u), (__m512)v);
#else
    const VI iota = {0, 1, 2, 3, 4, 5, 6, 7};
    _mm256_maskstore_ps(p, (__m256i)(iota < (int)r), (__m256)v);
#endif
}

#include "vexp_template.h"

/* e^x core: returns e^x, and em = e^r - 1 (the polynomial without its 1) with ni = n, where
   x = n ln2 + r. */
static inline __attribute__((always_inline)) VF SFX(u_exp_core)(VF x, VF *em, VI *ni_out) {
    VF xc = x > 89.0f ? (VF)89.0f : x;
    xc = xc < -104.0f ? (VF)-104.0f : xc;
    VI ni;
    VF q = SFX(v_exp_reduced)(xc, &ni); /* e^r - 1 */
    /* 2^n as two factors so that both overflow to inf and gradual underflow come out right. */
    VI n1 = ni >> 1;
    VI n2 = ni - n1;
    VF s1 = (VF)((n1 + 127) << 23);
    VF s2 = (VF)((n2 + 127) << 23);
    *em = q;
    *ni_out = ni;
    return ((q + 1.0f) * s1) * s2;
}

static inline __attribute__((always_inline)) VF SFX(u_exp)(VF x) {
    VF em;
    VI ni;
    VF y = SFX(u_exp_core)(x, &em, &ni);
    return x != x ? x : y;
}

/* e^x - 1 without cancellation near 0: for n = 0 (|x| <= ln2/2) the polynomial itself. */
static inline __attribute__((always_inline)) VF SFX(u_expm1)(VF x) {
    VF em;
    VI ni;
    VF y = SFX(u_exp_core)(x, &em, &ni);
    y = ni == 0 ? em : y - 1.0f;
    return x != x ? x : y;
}

/* 1/(1+e^-x), from e^-|x| so both tails are accurate. */
static inline __attribute__((always_inline)) VF SFX(u_sigmoid)(VF x) {
    VF ax = x < 0.0f ? -x : x;
    VF e = SFX(u_exp)(-ax);
    VF s = 1.0f / (1.0f + e);
    return x < 0.0f ? e * s : s;
}

/* tanh: odd polynomial for |x| < 0.625 (Cephes tanhf), 1 - 2/(e^{2|x|}+1) above. */
static inline __attribute__((always_inline)) VF SFX(u_tanh)(VF x) {
    VF ax = x < 0.0f ? -x : x;
    VF s = x * x;
    VF p = (VF)-5.70498872745e-3f;
    p = FMA(p, s, (VF)2.06390887954e-2f);
    p = FMA(p, s, (VF)-5.37397155531e-2f);
    p = FMA(p, s, (VF)1.33314422036e-1f);
    p = FMA(p, s, (VF)-3.33332819422e-1f);
    VF small = FMA(p * s, x, x);
    VF e = SFX(u_exp)(2.0f * (ax > 20.0f ? (VF)20.0f : ax));
    VF big = 1.0f - 2.0f / (e + 1.0f);
    big = x < 0.0f ? -big : big;
    VF y = ax < 0.625f ? small : big;
    return x != x ? x : y;
}

/* erfc(a) for a >= 1: e^{-a^2} P(1/a) on [1,2), e^{-a^2}/a R(1/a^2) on [2, inf). */
static inline __attribute__((always_inline)) VF SFX(u_erfc_tail)(VF a) {
    VF q = 1.0f / a;
    VF p = (VF)-0.017914503789147492f;
    p = FMA(p, q, (VF)0.11921096424272225f);
    p = FMA(p, q, (VF)-0.3470140356999265f);
    p = FMA(p, q, (VF)0.5623822587818967f);
    p = FMA(p, q, (VF)-0.49307901626466494f);
    p = FMA(p, q, (VF)0.044272253621740365f);
    p = FMA(p, q, (VF)0.5595811635944887f);
    p = FMA(p, q, (VF)0.0001444905457453149f);
    VF y = q * q;
    VF r = (VF)-1.047766399936249e+1f;
    r = FMA(r, y, (VF)1.297719955372516e+1f);
    r = FMA(r, y, (VF)-7.495518717768503e+0f);
    r = FMA(r, y, (VF)2.921019019210786e+0f);
    r = FMA(r, y, (VF)-1.015265279202700e+0f);
    r = FMA(r, y, (VF)4.218463358204948e-1f);
    r = FMA(r, y, (VF)-2.820767439740514e-1f);
    r = FMA(r, y, (VF)5.641895067754075e-1f);
    r = r * q;
    VF poly = a < 2.0f ? p : r;
    VF ac = a > 10.0f ? (VF)10.0f : a;
    /* e^{-(hi + lo)} = e^{-hi} (1 - lo) where hi + lo = ac^2 exactly. */
    VF hi = ac * ac;
    VF lo = FMA(ac, ac, -hi);
    VF ep = SFX(u_exp)(-hi) * poly;
    return FMA(-lo, ep, ep);
}

/* erf(x) for |x| < 1: x T(x^2) (Cephes erff). */
static inline __attribute__((always_inline)) VF SFX(u_erf_small)(VF x) {
    VF z = x * x;
    VF t = (VF)7.853861353153693e-5f;
    t = FMA(t, z, (VF)-8.010193625184903e-4f);
    t = FMA(t, z, (VF)5.188327685732524e-3f);
    t = FMA(t, z, (VF)-2.685381193529856e-2f);
    t = FMA(t, z, (VF)1.128358514861418e-1f);
    t = FMA(t, z, (VF)-3.761262582423300e-1f);
    t = FMA(t, z, (VF)1.128379165726710e+0f);
    return x * t;
}

static inline __attribute__((always_inline)) VF SFX(u_erf)(VF x) {
    VF ax = x < 0.0f ? -x : x;
    VF small = SFX(u_erf_small)(x);
    VF big = 1.0f - SFX(u_erfc_tail)(ax < 1.0f ? (VF)1.0f : ax);
    big = x < 0.0f ? -big : big;
    VF y = ax < 1.0f ? small : big;
    return x != x ? x : y;
}

/* GELU x * Phi(x), Phi(x) = erfc(-x / sqrt2) / 2, from one approximation of erfc on [0, inf):
   erfc(a) = t * exp(-a^2 + P(t)), t = 1 / (1 + a/2), P of degree 9 (the Chebyshev fit published in
   Numerical Recipes, section 6.2: relative error below 1.2e-7 for every a >= 0). Phi(x) is erfc(a)/2
   for x < 0 and 1 - erfc(a)/2 for x >= 0 (a = |x| / sqrt2), so the negative tail keeps its relative
   accuracy. -a^2 + P is carried as an unevaluated sum (a^2 split exactly with an fma, the addition's
   rounding recovered with two-sum), so the float rounding of an argument near -a^2 does not
   multiply into the result. One exp and no second branch: on Zen 1 this runs in ~0.8x the time of
   erfc from separate small-argument and tail approximations (4.6 ns per element; 3.6 with the
   exp of non-positive arguments). */
static inline __attribute__((always_inline)) VF SFX(u_gelu)(VF x) {
    VF a = (x < 0.0f ? -x : x) * 0.70710678118654752f;
    a = a > 10.5f ? (VF)10.5f : a;       /* erfc(10.5) underflows to 0; keeps a^2 finite for x = +-inf */
    VF t = 1.0f / FMA(a, (VF)0.5f, (VF)1.0f);
    /* P(t) in Estrin's scheme: a dependency chain of 4 fmas instead of 9 */
    VF t2 = t * t, t4 = t2 * t2, t8 = t4 * t4;
    VF q0 = FMA((VF)1.00002368f, t, (VF)-1.26551223f);
    VF q1 = FMA((VF)0.09678418f, t, (VF)0.37409196f);
    VF q2 = FMA((VF)0.27886807f, t, (VF)-0.18628806f);
    VF q3 = FMA((VF)1.48851587f, t, (VF)-1.13520398f);
    VF q4 = FMA((VF)0.17087277f, t, (VF)-0.82215223f);
    VF p = FMA(q4, t8, FMA(FMA(q3, t2, q2), t4, FMA(q1, t2, q0)));
    VF hi = a * a;
    VF lo = FMA(a, a, -hi);              /* a^2 = hi + lo exactly */
    VF s = p - hi;                       /* two-sum: p - hi = s + e exactly */
    VF bp = s - p;
    VF e = (p - (s - bp)) + (-hi - bp);
    VF ex = SFX(v_exp_nonpos)(s);        /* s <= ~0; 0 below -87.33: x < -13.1, where |x Phi(x)| < 2e-38 */
    VF erfc = (t * ex) * ((e - lo) + 1.0f);
    VF half = 0.5f * erfc;
    VF phi = x < 0.0f ? half : 1.0f - half;
    return x * phi;
}

static inline __attribute__((always_inline)) VF SFX(u_sign)(VF v) {
    VF s = (VF)0.0f;
    s = v > 0.0f ? (VF)1.0f : s;
    s = v < 0.0f ? (VF)-1.0f : s;
    return v != v ? v : s;
}

/*
 * The loops. x = src[i] (addb == 0), or x = (src[i] + z[i]) + bias (addb, hasz), or
 * x = src[i] + bias (addb, !hasz); addb / hasz are compile-time constants in every caller, so
 * each loop is branch-free: full vectors, then one masked vector.
 */
#define SO_LOAD_X(v, i, r)                                                          \
    do {                                                                            \
        (v) = (r) >= W ? VLD(src + (i)) : SFX(u_loadn)(src + (i), (r));             \
        if (addb) {                                                                 \
            if (hasz) (v) = (v) + ((r) >= W ? VLD(z + (i)) : SFX(u_loadn)(z + (i), (r))); \
            (v) = (v) + bias;                                                       \
        }                                                                           \
    } while (0)

#define SO_MAP(EXPR)                                                                \
    do {                                                                            \
        size_t i = 0;                                                               \
        for (; i + W <= n; i += W) {                                                \
            VF v;                                                                   \
            SO_LOAD_X(v, i, (size_t)W);                                             \
            VST(dst + i, (EXPR));                                                   \
        }                                                                           \
        if (i < n) {                                                                \
            size_t r = n - i;                                                       \
            VF v;                                                                   \
            SO_LOAD_X(v, i, r);                                                     \
            SFX(u_storen)(dst + i, (EXPR), r);                                      \
        }                                                                           \
    } while (0)

#define HSIG(t) ((t) < 0.0f ? (VF)0.0f : ((t) > 1.0f ? (VF)1.0f : (t)))

/* The cheap kinds (fused with the bias / residual add in bias_act). Returns 0 for other kinds. */
static inline __attribute__((always_inline)) int SFX(act_cheap)(int kind, const float *src, float *dst, size_t n,
                                                              float alpha, float beta, const int addb,
                                                              const int hasz, float bias, const float *z) {
    const float a = alpha, b = beta;
    switch (kind) {
    case SO_ACT_IDENTITY:
        if (addb) SO_MAP(v);
        else if (dst != src && n) memmove(dst, src, n * sizeof(float));
        return 1;
    case SO_ACT_RELU: SO_MAP(v < 0.0f ? (VF)0.0f : v); return 1;
    case SO_ACT_LEAKY_RELU: SO_MAP(v < 0.0f ? v * a : v); return 1;
    case SO_ACT_CLIP: {
        const VF lo = (VF)a, hi = (VF)b;
        SO_MAP((v < lo ? lo : v) > hi ? hi : (v < lo ? lo : v));
        return 1;
    }
    /* unfused v*a + b, like the reference */
    case SO_ACT_HARD_SIGMOID: SO_MAP(HSIG(v * a + b)); return 1;
    case SO_ACT_HARD_SWISH: SO_MAP(v * HSIG(v * (1.0f / 6.0f) + 0.5f)); return 1;
    case SO_ACT_RELU_AFFINE: SO_MAP((v < 0.0f ? (VF)0.0f : v) * a + b); return 1;
    case SO_ACT_HARD_SWISH_AFFINE: SO_MAP((v * HSIG(v * (1.0f / 6.0f) + 0.5f)) * a + b); return 1;
    default: return 0;
    }
}

static void SFX(f32_unary)(int kind, const float *src, float *dst, size_t n, float alpha, float beta) {
    if (SFX(act_cheap)(kind, src, dst, n, alpha, beta, 0, 0, 0.0f, NULL)) return;
    const int addb = 0, hasz = 0;
    const float bias = 0.0f, *z = NULL;
    const float a = alpha, b = beta;
    switch (kind) {
    case SO_ACT_SIGMOID: SO_MAP(SFX(u_sigmoid)(v)); break;
    case SO_ACT_TANH: SO_MAP(SFX(u_tanh)(v)); break;
    case SO_ACT_GELU: SO_MAP(SFX(u_gelu)(v)); break;
    case SO_ACT_GELU_TANH:
        SO_MAP(v * SFX(u_sigmoid)((v + 0.044715f * v * v * v) * (2.0f * 0.79788456080286536f)));
        break;
    case SO_ACT_ELU: SO_MAP(v < 0.0f ? a * SFX(u_expm1)(v) : v); break;
    case SO_ACT_SELU: SO_MAP(b * (v <= 0.0f ? a * SFX(u_expm1)(v) : v)); break;
    case SO_ACT_CELU: SO_MAP(v < 0.0f ? a * SFX(u_expm1)(v / a) : v); break;
    case SO_ACT_SOFTSIGN: SO_MAP(v / (1.0f + __builtin_elementwise_abs(v))); break;
    case SO_ACT_THRESHOLDED_RELU: SO_MAP(v > a ? v : (VF)0.0f); break;
    case SO_ACT_SWISH: SO_MAP(v * SFX(u_sigmoid)(v * a)); break;
    case SO_ACT_EXP: SO_MAP(SFX(u_exp)(v)); break;
    case SO_ACT_ERF: SO_MAP(SFX(u_erf)(v)); break;
    case SO_ACT_ABS: SO_MAP(__builtin_elementwise_abs(v)); break;
    case SO_ACT_NEG: SO_MAP(-v); break;
    case SO_ACT_SQRT: SO_MAP(__builtin_elementwise_sqrt(v)); break;
    case SO_ACT_FLOOR: SO_MAP(__builtin_elementwise_floor(v)); break;
    case SO_ACT_CEIL: SO_MAP(__builtin_elementwise_ceil(v)); break;
    case SO_ACT_ROUND: SO_MAP(__builtin_elementwise_roundeven(v)); break;
    case SO_ACT_RECIPROCAL: SO_MAP(1.0f / v); break;
    case SO_ACT_SIGN: SO_MAP(SFX(u_sign)(v)); break;
    default: /* unknown kinds: identity */
        if (dst != src && n) memmove(dst, src, n * sizeof(float));
        break;
    }
}

static void SFX(f32_bias_act)(float *p, size_t n, float bias, const float *z, int kind, float alpha, float beta) {
    /* Cheap kinds: one fused pass. */
    if (z ? SFX(act_cheap)(kind, p, p, n, alpha, beta, 1, 1, bias, z)
          : SFX(act_cheap)(kind, p, p, n, alpha, beta, 1, 0, bias, NULL))
        return;
    /* The others: the add, then the activation, on blocks that stay in L1. */
    for (size_t i0 = 0; i0 < n; i0 += 2048) {
        const size_t m = n - i0 < 2048 ? n - i0 : 2048;
        if (z) SFX(act_cheap)(SO_ACT_IDENTITY, p + i0, p + i0, m, 0.0f, 0.0f, 1, 1, bias, z + i0);
        else SFX(act_cheap)(SO_ACT_IDENTITY, p + i0, p + i0, m, 0.0f, 0.0f, 1, 0, bias, NULL);
        SFX(f32_unary)(kind, p + i0, p + i0, m, alpha, beta);
    }
}

#undef HSIG
#undef SO_MAP
#undef SO_LOAD_X

#undef FMA
#undef VLD
#undef VST

#endif /* SO_UNARY_TEMPLATE */
