/*
 * Float32 reductions, mean / variance and the per-channel affine map (see so_reduce.h).
 *
 * Variants: *_ref (portable C), *_avx2 (8 lanes, AVX2 + FMA) and *_avx512 (16 lanes,
 * AVX-512F/BW/DQ/VL). As in f32_dwconv.c, the vector bodies are written once (the part of this
 * file under SO_REDUCE_TEMPLATE) and instantiated per ISA by including this file into itself
 * under `#pragma clang attribute push(target(...))`; the C target needs no build flags.
 *
 * One summation order for every variant, so sums agree bit for bit across ISA levels:
 *  - rows (SUM, SUM_ABS, SUM_SQUARE, PROD): blocks of RED_BLOCK elements, element i of a block in
 *    lane i % 64, the 64 lanes combined by the fixed tree of so_reduce.h, block totals in double.
 *    AVX-512 holds the 64 lanes in 4 zmm accumulators, AVX2 in 8 ymm, the reference in an array.
 *  - meanvar: 32 double lanes (element i of a run in lane i % 32), combined by a fixed tree.
 *  - middle axis: one sequential chain per output, vectorized across the inner axis.
 * Max / min: a running max with `v > m ? v : m` (maxps), which skips NaNs, plus a flag per lane
 * that records whether a NaN was seen; a flagged result is NaN. Values agree across variants; a
 * -0 / +0 tie may resolve to either sign, and a NaN result is the default quiet NaN in the vector
 * variants (the input's NaN in the reference).
 */
#ifndef SO_REDUCE_TEMPLATE

#include "so_reduce.h"
#include "so_isa.h"
#include <math.h>
#include <stdint.h>

/* Every multiply-add is an explicit fma or none: no silent contraction. */
#pragma clang fp contract(off)

#define RED_BLOCK 4096 /* elements per block of a sum-like row (64 per lane) */

static float red_identity(int op) {
    switch (op) {
    case SO_RED_MAX: return -INFINITY;
    case SO_RED_MIN: return INFINITY;
    case SO_RED_PROD: return 1.0f;
    default: return 0.0f;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Scalar reference
 * ------------------------------------------------------------------------------------------- */

/* 16 lanes -> 1: h8[l] = s[l] op s[l+8], h4[l] = h8[l] op h8[l+4], h2[l] = h4[l] op h4[l+2],
   h2[0] op h2[1]. */
static float ref_tree16(const float *s, int mul) {
    float h8[8], h4[4], h2[2];
    for (int l = 0; l < 8; l++) h8[l] = mul ? s[l] * s[l + 8] : s[l] + s[l + 8];
    for (int l = 0; l < 4; l++) h4[l] = mul ? h8[l] * h8[l + 4] : h8[l] + h8[l + 4];
    for (int l = 0; l < 2; l++) h2[l] = mul ? h4[l] * h4[l + 2] : h4[l] + h4[l + 2];
    return mul ? h2[0] * h2[1] : h2[0] + h2[1];
}

/* 64 lanes: s[l] = (L[l] op L[l+16]) op (L[l+32] op L[l+48]), then ref_tree16. */
static float ref_tree64(const float *L, int mul) {
    float s[16];
    for (int l = 0; l < 16; l++)
        s[l] = mul ? (L[l] * L[l + 16]) * (L[l + 32] * L[l + 48]) : (L[l] + L[l + 16]) + (L[l + 32] + L[l + 48]);
    return ref_tree16(s, mul);
}

/* 32 double lanes -> 1: s16[l] = L[l] + L[l+16], then halving 16 -> 8 -> 4 -> 2 -> 1 the same way. */
static double ref_tree32d(const double *L) {
    double s[16];
    for (int l = 0; l < 16; l++) s[l] = L[l] + L[l + 16];
    for (int h = 8; h >= 1; h /= 2)
        for (int l = 0; l < h; l++) s[l] = s[l] + s[l + h];
    return s[0];
}

/* The double total of a sum-like row (SUM, SUM_ABS, SUM_SQUARE, PROD) in the blocked order. */
static double ref_row_total(int op, const float *p, size_t n) {
    const int mul = op == SO_RED_PROD;
    double tot = mul ? 1.0 : 0.0;
    for (size_t b = 0; b < n; b += RED_BLOCK) {
        const size_t e = n - b < RED_BLOCK ? n : b + RED_BLOCK;
        float L[64];
        for (int l = 0; l < 64; l++) L[l] = mul ? 1.0f : 0.0f;
        for (size_t i = b; i < e; i++) {
            const float x = p[i];
            float *a = &L[(i - b) & 63];
            switch (op) {
            case SO_RED_SUM: *a += x; break;
            case SO_RED_SUM_ABS: *a += fabsf(x); break;
            case SO_RED_SUM_SQUARE: *a = fmaf(x, x, *a); break;
            default: *a *= x; break;
            }
        }
        const float t = ref_tree64(L, mul);
        if (mul) tot *= (double)t;
        else tot += (double)t;
    }
    return tot;
}

static float ref_row_minmax(int op, const float *p, size_t n) {
    float m = red_identity(op);
    for (size_t i = 0; i < n; i++) {
        const float x = p[i];
        if (op == SO_RED_MAX ? (x > m || x != x) : (x < m || x != x)) m = x;
    }
    return m;
}

static void f32_minmax_ref(const float *p, size_t n, float *mn, float *mx) {
    *mn = ref_row_minmax(SO_RED_MIN, p, n);
    *mx = ref_row_minmax(SO_RED_MAX, p, n);
}

static void f32_reduce_rows_ref(int op, const float *src, size_t rows, size_t n, float *out) {
    for (size_t r = 0; r < rows; r++) {
        const float *p = src + r * n;
        out[r] = (op == SO_RED_MAX || op == SO_RED_MIN) ? ref_row_minmax(op, p, n) : (float)ref_row_total(op, p, n);
    }
}

static void f32_reduce_middle_ref(int op, const float *src, size_t outer, size_t n, size_t inner, float *out) {
    for (size_t o = 0; o < outer; o++) {
        for (size_t j = 0; j < inner; j++) {
            const float *p = src + o * n * inner + j;
            float acc = red_identity(op);
            for (size_t k = 0; k < n; k++) {
                const float x = p[k * inner];
                switch (op) {
                case SO_RED_SUM: acc += x; break;
                case SO_RED_SUM_ABS: acc += fabsf(x); break;
                case SO_RED_SUM_SQUARE: acc = fmaf(x, x, acc); break;
                case SO_RED_MAX: if (x > acc || x != x) acc = x; break;
                case SO_RED_MIN: if (x < acc || x != x) acc = x; break;
                default: acc *= x; break;
                }
            }
            out[o * inner + j] = acc;
        }
    }
}

/* One run of meanvar: pass 1 (second == 0) adds sum(x) to *s; pass 2 adds sum((x - mu)^2), all in
   double, element i in lane i % 32. */
static void ref_mv_run(const float *p, size_t n, double mu, int second, double *s) {
    double L[32] = {0};
    for (size_t i = 0; i < n; i++) {
        const double v = (double)p[i];
        if (second) {
            const double d = v - mu;
            L[i & 31] = fma(d, d, L[i & 31]);
        } else {
            L[i & 31] += v;
        }
    }
    *s += ref_tree32d(L);
}

static void f32_meanvar_ref(const float *x, size_t groups, size_t len, size_t gap, double *mean, double *var) {
    const size_t N = groups * len;
    if (N == 0) {
        *mean = 0;
        *var = 0;
        return;
    }
    double S = 0, Q = 0;
    for (size_t g = 0; g < groups; g++) ref_mv_run(x + g * gap, len, 0.0, 0, &S);
    const double mu = S / (double)N;
    for (size_t g = 0; g < groups; g++) ref_mv_run(x + g * gap, len, mu, 1, &Q);
    *mean = mu;
    *var = Q / (double)N;
}

/* Row normalization (see so_reduce.h): the statistics of meanvar's runs, the map in float. */
static void f32_norm_rows_ref(const float *x, float *y, size_t rows, size_t cols, const float *scale,
                              const float *bias, double eps, int rms, float *mean_out, float *inv_out) {
    for (size_t r = 0; r < rows; r++) {
        const float *xs = x + r * cols;
        float *ys = y + r * cols;
        double mu = 0, q = 0;
        if (!rms && cols) {
            ref_mv_run(xs, cols, 0.0, 0, &mu);
            mu /= (double)cols;
        }
        if (cols) ref_mv_run(xs, cols, mu, 1, &q);
        const double inv = 1.0 / sqrt(q / (double)(cols ? cols : 1) + eps);
        const float m = (float)mu, iv = (float)inv;
        if (mean_out) mean_out[r] = m;
        if (inv_out) inv_out[r] = iv;
        for (size_t i = 0; i < cols; i++) {
            float v = (rms ? xs[i] : xs[i] - m) * iv * scale[i];
            ys[i] = bias ? v + bias[i] : v;
        }
    }
}

static void f32_channel_affine_ref(const float *x, float *y, size_t planes, size_t channels, size_t size,
                                   const float *scale, const float *bias) {
    for (size_t p = 0; p < planes; p++) {
        const size_t c = p % channels;
        const float s = scale[c], t = bias[c];
        const float *xs = x + p * size;
        float *ys = y + p * size;
        for (size_t i = 0; i < size; i++) ys[i] = xs[i] * s + t;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Vector variants
 * ------------------------------------------------------------------------------------------- */
#if defined(__x86_64__)
#include <immintrin.h>

#define SO_REDUCE_TEMPLATE 1

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#define W 8
#define SFX(name) name##_avx2
#include "f32_reduce.c"
#undef W
#undef SFX
#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma,f16c"))), apply_to = function)
#define W 16
#define SFX(name) name##_avx512
#include "f32_reduce.c"
#undef W
#undef SFX
#pragma clang attribute pop

#undef SO_REDUCE_TEMPLATE
#endif /* __x86_64__ */

so_f32_reduce_rows_fn so_f32_reduce_rows_select(int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX512) return f32_reduce_rows_avx512;
    if (isa >= SO_ISA_AVX2) return f32_reduce_rows_avx2;
#endif
    (void)isa;
    return f32_reduce_rows_ref;
}

so_f32_reduce_middle_fn so_f32_reduce_middle_select(int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX512) return f32_reduce_middle_avx512;
    if (isa >= SO_ISA_AVX2) return f32_reduce_middle_avx2;
#endif
    (void)isa;
    return f32_reduce_middle_ref;
}

so_f32_meanvar_fn so_f32_meanvar_select(int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX512) return f32_meanvar_avx512;
    if (isa >= SO_ISA_AVX2) return f32_meanvar_avx2;
#endif
    (void)isa;
    return f32_meanvar_ref;
}

so_f32_norm_rows_fn so_f32_norm_rows_select(int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX512) return f32_norm_rows_avx512;
    if (isa >= SO_ISA_AVX2) return f32_norm_rows_avx2;
#endif
    (void)isa;
    return f32_norm_rows_ref;
}

so_f32_minmax_fn so_f32_minmax_select(int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX512) return f32_minmax_avx512;
    if (isa >= SO_ISA_AVX2) return f32_minmax_avx2;
#endif
    (void)isa;
    return f32_minmax_ref;
}

so_f32_channel_affine_fn so_f32_channel_affine_select(int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX512) return f32_channel_affine_avx512;
    if (isa >= SO_ISA_AVX2) return f32_channel_affine_avx2;
#endif
    (void)isa;
    return f32_channel_affine_ref;
}

#else /* SO_REDUCE_TEMPLATE: W lanes, SFX(name) */

#define INL static inline __attribute__((always_inline))

/* The vector vocabulary of one width. VM: a lane mask; FT: NaN flags. */
#if W == 16
#define VF __m512
#define VM __mmask16
#define VLD(p) _mm512_loadu_ps(p)
#define VST(p, v) _mm512_storeu_ps((p), (v))
#define VSET(x) _mm512_set1_ps(x)
#define VADD(a, b) _mm512_add_ps((a), (b))
#define VSUB(a, b) _mm512_sub_ps((a), (b))
#define VMUL(a, b) _mm512_mul_ps((a), (b))
#define VMAX(a, b) _mm512_max_ps((a), (b))
#define VMIN(a, b) _mm512_min_ps((a), (b))
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VABS(a) _mm512_abs_ps(a)
#define VLDZ(p, m) _mm512_maskz_loadu_ps((m), (p))
#define VLDF(p, m, f) _mm512_mask_loadu_ps((f), (m), (p))
#define VSTM(p, v, m) _mm512_mask_storeu_ps((p), (m), (v))
#define FT __mmask16
#define F_NONE ((__mmask16)0)
#define F_UNORD(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_UNORD_Q)
#define F_OR(f, g) ((__mmask16)((f) | (g)))
#define F_ANY(f) ((f) != 0)
#define F_APPLY(f, v) _mm512_mask_blend_ps((f), (v), _mm512_set1_ps(NAN))
/* First n lanes (n clamped to [0, 16]). */
INL VM SFX(r_mask)(ptrdiff_t n) {
    return n <= 0 ? (__mmask16)0 : n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}
/* The low and high 8 lanes. */
INL __m256 SFX(r_lo8)(VF v) { return _mm512_castps512_ps256(v); }
INL __m256 SFX(r_hi8)(VF v) { return _mm512_extractf32x8_ps(v, 1); }
#else
#define VF __m256
#define VM __m256i
#define VLD(p) _mm256_loadu_ps(p)
#define VST(p, v) _mm256_storeu_ps((p), (v))
#define VSET(x) _mm256_set1_ps(x)
#define VADD(a, b) _mm256_add_ps((a), (b))
#define VSUB(a, b) _mm256_sub_ps((a), (b))
#define VMUL(a, b) _mm256_mul_ps((a), (b))
#define VMAX(a, b) _mm256_max_ps((a), (b))
#define VMIN(a, b) _mm256_min_ps((a), (b))
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VABS(a) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), (a))
#define VLDZ(p, m) _mm256_maskload_ps((p), (m))
#define VLDF(p, m, f) _mm256_blendv_ps((f), _mm256_maskload_ps((p), (m)), _mm256_castsi256_ps(m))
#define VSTM(p, v, m) _mm256_maskstore_ps((p), (m), (v))
#define FT __m256
#define F_NONE _mm256_setzero_ps()
#define F_UNORD(a, b) _mm256_cmp_ps((a), (b), _CMP_UNORD_Q)
#define F_OR(f, g) _mm256_or_ps((f), (g))
#define F_ANY(f) (_mm256_movemask_ps(f) != 0)
#define F_APPLY(f, v) _mm256_blendv_ps((v), _mm256_set1_ps(NAN), (f))
INL VM SFX(r_mask)(ptrdiff_t n) {
    const ptrdiff_t c = n < 0 ? 0 : n > 8 ? 8 : n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#endif

/* 64-lane float accumulators: NA vectors. */
#define NA (64 / W)

/* The 8-lane stage of the tree, h8 -> 1 (mul: products). */
INL float SFX(r_tree8)(__m256 h8, const int mul) {
    const __m128 lo = _mm256_castps256_ps128(h8), hi = _mm256_extractf128_ps(h8, 1);
    const __m128 h4 = mul ? _mm_mul_ps(lo, hi) : _mm_add_ps(lo, hi);
    const __m128 sh = _mm_movehl_ps(h4, h4);
    const __m128 h2 = mul ? _mm_mul_ps(h4, sh) : _mm_add_ps(h4, sh);
    const __m128 s1 = _mm_movehdup_ps(h2);
    const __m128 h1 = mul ? _mm_mul_ss(h2, s1) : _mm_add_ss(h2, s1);
    return _mm_cvtss_f32(h1);
}

/* The 64-lane tree of so_reduce.h over a[0 .. NA). */
INL float SFX(r_tree64)(const VF *a, const int mul) {
#if W == 16
    const VF s = mul ? VMUL(VMUL(a[0], a[1]), VMUL(a[2], a[3])) : VADD(VADD(a[0], a[1]), VADD(a[2], a[3]));
    const __m256 lo = SFX(r_lo8)(s), hi = SFX(r_hi8)(s);
#else
    /* ymm k holds lanes 8k .. 8k+7: lanes l and l+16 live in ymm k and k+2. */
    const __m256 lo = mul ? VMUL(VMUL(a[0], a[2]), VMUL(a[4], a[6])) : VADD(VADD(a[0], a[2]), VADD(a[4], a[6]));
    const __m256 hi = mul ? VMUL(VMUL(a[1], a[3]), VMUL(a[5], a[7])) : VADD(VADD(a[1], a[3]), VADD(a[5], a[7]));
#endif
    return SFX(r_tree8)(mul ? _mm256_mul_ps(lo, hi) : _mm256_add_ps(lo, hi), mul);
}

/* acc op= v for the sum-like ops. */
INL VF SFX(r_acc)(VF acc, VF v, const int op) {
    switch (op) {
    case SO_RED_SUM: return VADD(acc, v);
    case SO_RED_SUM_ABS: return VADD(acc, VABS(v));
    case SO_RED_SUM_SQUARE: return VFMA(v, v, acc);
    default: return VMUL(acc, v);
    }
}

/* One block (cnt <= RED_BLOCK) of a sum-like row, through the 64-lane tree. */
INL float SFX(r_block)(const float *p, size_t cnt, const int op) {
    const int mul = op == SO_RED_PROD;
    const VF id = VSET(mul ? 1.0f : 0.0f);
    VF a[NA];
    for (int k = 0; k < NA; k++) a[k] = id;
    size_t i = 0;
    for (; i + 64 <= cnt; i += 64)
        for (int k = 0; k < NA; k++) a[k] = SFX(r_acc)(a[k], VLD(p + i + k * W), op);
    if (i < cnt) {
        const ptrdiff_t rem = (ptrdiff_t)(cnt - i);
        for (int k = 0; k < NA; k++) {
            const ptrdiff_t r = rem - k * W;
            if (r <= 0) break;
            const VM m = SFX(r_mask)(r);
            const VF v = mul ? VLDF(p + i + k * W, m, id) : VLDZ(p + i + k * W, m);
            a[k] = SFX(r_acc)(a[k], v, op);
        }
    }
    return SFX(r_tree64)(a, mul);
}

/* The double total of a sum-like row. */
INL double SFX(r_total)(const float *p, size_t n, const int op) {
    const int mul = op == SO_RED_PROD;
    double tot = mul ? 1.0 : 0.0;
    for (size_t b = 0; b < n; b += RED_BLOCK) {
        const float t = SFX(r_block)(p + b, n - b < RED_BLOCK ? n - b : RED_BLOCK, op);
        if (mul) tot *= (double)t;
        else tot += (double)t;
    }
    return tot;
}

/* Lane max / min of an 8-lane vector (no NaNs in it). */
INL float SFX(r_hminmax8)(__m256 v, const int ismax) {
    __m128 h = ismax ? _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1))
                     : _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 s = _mm_movehl_ps(h, h);
    h = ismax ? _mm_max_ps(h, s) : _mm_min_ps(h, s);
    const __m128 t = _mm_movehdup_ps(h);
    h = ismax ? _mm_max_ss(h, t) : _mm_min_ss(h, t);
    return _mm_cvtss_f32(h);
}

INL float SFX(r_minmax)(const float *p, size_t n, const int ismax) {
    const VF id = VSET(ismax ? -INFINITY : INFINITY);
    VF a0 = id, a1 = id, a2 = id, a3 = id;
    FT f = F_NONE;
    size_t i = 0;
#define MM(v, a) (ismax ? VMAX((v), (a)) : VMIN((v), (a)))
    for (; i + 4 * W <= n; i += 4 * W) {
        const VF v0 = VLD(p + i), v1 = VLD(p + i + W), v2 = VLD(p + i + 2 * W), v3 = VLD(p + i + 3 * W);
        a0 = MM(v0, a0);
        a1 = MM(v1, a1);
        a2 = MM(v2, a2);
        a3 = MM(v3, a3);
        f = F_OR(f, F_OR(F_UNORD(v0, v1), F_UNORD(v2, v3)));
    }
    for (; i + W <= n; i += W) {
        const VF v = VLD(p + i);
        a0 = MM(v, a0);
        f = F_OR(f, F_UNORD(v, v));
    }
    if (i < n) {
        const VF v = VLDF(p + i, SFX(r_mask)((ptrdiff_t)(n - i)), id);
        a1 = MM(v, a1);
        f = F_OR(f, F_UNORD(v, v));
    }
    if (F_ANY(f)) return NAN;
    VF a = MM(MM(a0, a1), MM(a2, a3));
#undef MM
#if W == 16
    const __m256 h = ismax ? _mm256_max_ps(SFX(r_lo8)(a), SFX(r_hi8)(a)) : _mm256_min_ps(SFX(r_lo8)(a), SFX(r_hi8)(a));
    return SFX(r_hminmax8)(h, ismax);
#else
    return SFX(r_hminmax8)(a, ismax);
#endif
}

/* Min and max of one row in one pass (2 x 2 accumulators), NaN flags as r_minmax. */
static void SFX(f32_minmax)(const float *p, size_t n, float *mn, float *mx) {
    const VF lo = VSET(INFINITY), hi = VSET(-INFINITY);
    VF a0 = hi, a1 = hi, b0 = lo, b1 = lo;
    FT f = F_NONE;
    size_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
        const VF v0 = VLD(p + i), v1 = VLD(p + i + W);
        a0 = VMAX(v0, a0);
        a1 = VMAX(v1, a1);
        b0 = VMIN(v0, b0);
        b1 = VMIN(v1, b1);
        f = F_OR(f, F_UNORD(v0, v1));
    }
    if (i + W <= n) {
        const VF v = VLD(p + i);
        a0 = VMAX(v, a0);
        b0 = VMIN(v, b0);
        f = F_OR(f, F_UNORD(v, v));
        i += W;
    }
    if (i < n) {
        const VM m = SFX(r_mask)((ptrdiff_t)(n - i));
        const VF vh = VLDF(p + i, m, hi), vl = VLDF(p + i, m, lo);
        a1 = VMAX(vh, a1);
        b1 = VMIN(vl, b1);
        f = F_OR(f, F_UNORD(vh, vl));
    }
    if (F_ANY(f)) { *mn = NAN; *mx = NAN; return; }
    const VF a = VMAX(a0, a1), b = VMIN(b0, b1);
#if W == 16
    *mx = SFX(r_hminmax8)(_mm256_max_ps(SFX(r_lo8)(a), SFX(r_hi8)(a)), 1);
    *mn = SFX(r_hminmax8)(_mm256_min_ps(SFX(r_lo8)(b), SFX(r_hi8)(b)), 0);
#else
    *mx = SFX(r_hminmax8)(a, 1);
    *mn = SFX(r_hminmax8)(b, 0);
#endif
}

static void SFX(f32_reduce_rows)(int op, const float *src, size_t rows, size_t n, float *out) {
    switch (op) {
    case SO_RED_SUM:
        for (size_t r = 0; r < rows; r++) out[r] = (float)SFX(r_total)(src + r * n, n, SO_RED_SUM);
        break;
    case SO_RED_SUM_ABS:
        for (size_t r = 0; r < rows; r++) out[r] = (float)SFX(r_total)(src + r * n, n, SO_RED_SUM_ABS);
        break;
    case SO_RED_SUM_SQUARE:
        for (size_t r = 0; r < rows; r++) out[r] = (float)SFX(r_total)(src + r * n, n, SO_RED_SUM_SQUARE);
        break;
    case SO_RED_PROD:
        for (size_t r = 0; r < rows; r++) out[r] = (float)SFX(r_total)(src + r * n, n, SO_RED_PROD);
        break;
    case SO_RED_MAX:
        for (size_t r = 0; r < rows; r++) out[r] = SFX(r_minmax)(src + r * n, n, 1);
        break;
    case SO_RED_MIN:
        for (size_t r = 0; r < rows; r++) out[r] = SFX(r_minmax)(src + r * n, n, 0);
        break;
    default: break;
    }
}

/* acc = op(acc, v) for the middle axis, with NaN flags for max / min. */
INL VF SFX(m_step)(VF acc, VF v, FT *f, const int op) {
    switch (op) {
    case SO_RED_MAX: *f = F_OR(*f, F_UNORD(v, v)); return VMAX(v, acc);
    case SO_RED_MIN: *f = F_OR(*f, F_UNORD(v, v)); return VMIN(v, acc);
    default: return SFX(r_acc)(acc, v, op);
    }
}

/* Columns [j, j + cnt) (cnt <= 4W) of one outer slice: up to 4 register accumulators walk the
   n rows. `masked`: cnt may be short of 4W (masked loads / stores); else cnt == 4W. */
INL void SFX(m_group)(const float *base, size_t n, size_t inner, float *o, ptrdiff_t cnt, const int op,
                      const int masked) {
    const VF id = VSET(red_identity(op));
    const int minmax = op == SO_RED_MAX || op == SO_RED_MIN;
    VF a[4] = {id, id, id, id};
    FT f[4] = {F_NONE, F_NONE, F_NONE, F_NONE};
    if (!masked) {
        for (size_t k = 0; k < n; k++) {
            const float *r = base + k * inner;
            for (int v = 0; v < 4; v++) a[v] = SFX(m_step)(a[v], VLD(r + v * W), &f[v], op);
        }
        for (int v = 0; v < 4; v++) VST(o + v * W, minmax ? F_APPLY(f[v], a[v]) : a[v]);
    } else {
        const int nv = (int)((cnt + W - 1) / W);
        VM m[4];
        for (int v = 0; v < 4; v++) m[v] = SFX(r_mask)(cnt - v * W);
        for (size_t k = 0; k < n; k++) {
            const float *r = base + k * inner;
            for (int v = 0; v < 4; v++)
                if (v < nv) a[v] = SFX(m_step)(a[v], VLDF(r + v * W, m[v], id), &f[v], op);
        }
        for (int v = 0; v < 4; v++)
            if (v < nv) VSTM(o + v * W, minmax ? F_APPLY(f[v], a[v]) : a[v], m[v]);
    }
}

INL void SFX(m_run)(const float *src, size_t outer, size_t n, size_t inner, float *out, const int op) {
    for (size_t o = 0; o < outer; o++) {
        const float *base = src + o * n * inner;
        float *ob = out + o * inner;
        size_t j = 0;
        for (; j + 4 * W <= inner; j += 4 * W) SFX(m_group)(base + j, n, inner, ob + j, 4 * W, op, 0);
        if (j < inner) SFX(m_group)(base + j, n, inner, ob + j, (ptrdiff_t)(inner - j), op, 1);
    }
}

static void SFX(f32_reduce_middle)(int op, const float *src, size_t outer, size_t n, size_t inner, float *out) {
    switch (op) {
    case SO_RED_SUM: SFX(m_run)(src, outer, n, inner, out, SO_RED_SUM); break;
    case SO_RED_SUM_ABS: SFX(m_run)(src, outer, n, inner, out, SO_RED_SUM_ABS); break;
    case SO_RED_SUM_SQUARE: SFX(m_run)(src, outer, n, inner, out, SO_RED_SUM_SQUARE); break;
    case SO_RED_MAX: SFX(m_run)(src, outer, n, inner, out, SO_RED_MAX); break;
    case SO_RED_MIN: SFX(m_run)(src, outer, n, inner, out, SO_RED_MIN); break;
    case SO_RED_PROD: SFX(m_run)(src, outer, n, inner, out, SO_RED_PROD); break;
    default: break;
    }
}

/* meanvar: 32 double lanes in ND vectors of DW doubles. */
#if W == 16
#define VD __m512d
#define DW 8
#define DSET(x) _mm512_set1_pd(x)
#define DADD(a, b) _mm512_add_pd((a), (b))
#define DSUB(a, b) _mm512_sub_pd((a), (b))
#define DFMA(a, b, c) _mm512_fmadd_pd((a), (b), (c))
/* floats p[0 .. 8) as doubles; the first n only (zeros elsewhere) */
INL VD SFX(d_ld)(const float *p) { return _mm512_cvtps_pd(_mm256_loadu_ps(p)); }
INL VD SFX(d_ldn)(const float *p, ptrdiff_t n) {
    return _mm512_cvtps_pd(_mm256_maskz_loadu_ps((__mmask8)((1u << n) - 1u), p));
}
INL VD SFX(d_keep)(VD v, ptrdiff_t n) { return _mm512_maskz_mov_pd((__mmask8)((1u << n) - 1u), v); }
/* The tree of so_reduce.h's meanvar over a[0 .. 4) (zmm k holds lanes 8k .. 8k+7). */
INL double SFX(d_tree32)(const VD *a) {
    const VD s8 = DADD(DADD(a[0], a[2]), DADD(a[1], a[3]));
    const __m256d s4 = _mm256_add_pd(_mm512_castpd512_pd256(s8), _mm512_extractf64x4_pd(s8, 1));
    const __m128d s2 = _mm_add_pd(_mm256_castpd256_pd128(s4), _mm256_extractf128_pd(s4, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s2, _mm_unpackhi_pd(s2, s2)));
}
#else
#define VD __m256d
#define DW 4
#define DSET(x) _mm256_set1_pd(x)
#define DADD(a, b) _mm256_add_pd((a), (b))
#define DSUB(a, b) _mm256_sub_pd((a), (b))
#define DFMA(a, b, c) _mm256_fmadd_pd((a), (b), (c))
INL VD SFX(d_ld)(const float *p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
INL VD SFX(d_ldn)(const float *p, ptrdiff_t n) {
    const __m128i m = _mm_cmpgt_epi32(_mm_set1_epi32((int)n), _mm_setr_epi32(0, 1, 2, 3));
    return _mm256_cvtps_pd(_mm_maskload_ps(p, m));
}
INL VD SFX(d_keep)(VD v, ptrdiff_t n) {
    const __m256i m = _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
    return _mm256_and_pd(v, _mm256_castsi256_pd(m));
}
/* ymm k holds lanes 4k .. 4k+3: s16 = a[k] + a[k+4], s8 = s16[k] + s16[k+2], s4 = s8[0] + s8[1]. */
INL double SFX(d_tree32)(const VD *a) {
    const VD b0 = DADD(a[0], a[4]), b1 = DADD(a[1], a[5]), b2 = DADD(a[2], a[6]), b3 = DADD(a[3], a[7]);
    const VD s4 = DADD(DADD(b0, b2), DADD(b1, b3));
    const __m128d s2 = _mm_add_pd(_mm256_castpd256_pd128(s4), _mm256_extractf128_pd(s4, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s2, _mm_unpackhi_pd(s2, s2)));
}
#endif
#define ND (32 / DW)

/* One run of meanvar (see ref_mv_run). */
INL void SFX(mv_run)(const float *p, size_t n, double mu, const int second, double *s) {
    VD a[ND];
    for (int k = 0; k < ND; k++) a[k] = DSET(0.0);
    const VD m = DSET(mu);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        for (int k = 0; k < ND; k++) {
            const VD v = SFX(d_ld)(p + i + k * DW);
            if (second) {
                const VD d = DSUB(v, m);
                a[k] = DFMA(d, d, a[k]);
            } else {
                a[k] = DADD(a[k], v);
            }
        }
    }
    if (i < n) {
        const ptrdiff_t rem = (ptrdiff_t)(n - i);
        for (int k = 0; k < ND; k++) {
            ptrdiff_t r = rem - k * DW;
            if (r <= 0) break;
            if (r > DW) r = DW;
            const VD v = SFX(d_ldn)(p + i + k * DW, r);
            if (second) {
                const VD d = SFX(d_keep)(DSUB(v, m), r);
                a[k] = DFMA(d, d, a[k]);
            } else {
                a[k] = DADD(a[k], v);
            }
        }
    }
    *s += SFX(d_tree32)(a);
}

static void SFX(f32_meanvar)(const float *x, size_t groups, size_t len, size_t gap, double *mean, double *var) {
    const size_t N = groups * len;
    if (N == 0) {
        *mean = 0;
        *var = 0;
        return;
    }
    double S = 0, Q = 0;
    for (size_t g = 0; g < groups; g++) SFX(mv_run)(x + g * gap, len, 0.0, 0, &S);
    const double mu = S / (double)N;
    for (size_t g = 0; g < groups; g++) SFX(mv_run)(x + g * gap, len, mu, 1, &Q);
    *mean = mu;
    *var = Q / (double)N;
}

/* Row normalization (see f32_norm_rows_ref): the statistics of mv_run, the map in float lanes. */
static void SFX(f32_norm_rows)(const float *x, float *y, size_t rows, size_t cols, const float *scale,
                               const float *bias, double eps, int rms, float *mean_out, float *inv_out) {
    for (size_t r = 0; r < rows; r++) {
        const float *xs = x + r * cols;
        float *ys = y + r * cols;
        double mu = 0, q = 0;
        if (!rms && cols) {
            SFX(mv_run)(xs, cols, 0.0, 0, &mu);
            mu /= (double)cols;
        }
        if (cols) SFX(mv_run)(xs, cols, mu, 1, &q);
        const double inv = 1.0 / sqrt(q / (double)(cols ? cols : 1) + eps);
        const float mf = (float)mu, ivf = (float)inv;
        if (mean_out) mean_out[r] = mf;
        if (inv_out) inv_out[r] = ivf;
        const VF m = VSET(mf), iv = VSET(ivf);
        size_t i = 0;
        for (; i + W <= cols; i += W) {
            VF v = VLD(xs + i);
            v = VMUL(VMUL(rms ? v : VSUB(v, m), iv), VLD(scale + i));
            if (bias) v = VADD(v, VLD(bias + i));
            VST(ys + i, v);
        }
        if (i < cols) {
            const VM k = SFX(r_mask)((ptrdiff_t)(cols - i));
            VF v = VLDZ(xs + i, k);
            v = VMUL(VMUL(rms ? v : VSUB(v, m), iv), VLDZ(scale + i, k));
            if (bias) v = VADD(v, VLDZ(bias + i, k));
            VSTM(ys + i, v, k);
        }
    }
}

#undef ND
#undef DW
#undef VD
#undef DSET
#undef DADD
#undef DSUB
#undef DFMA

static void SFX(f32_channel_affine)(const float *x, float *y, size_t planes, size_t channels, size_t size,
                                    const float *scale, const float *bias) {
    for (size_t p = 0; p < planes; p++) {
        const size_t c = p % channels;
        const VF s = VSET(scale[c]), t = VSET(bias[c]);
        const float *xs = x + p * size;
        float *ys = y + p * size;
        size_t i = 0;
        for (; i + 4 * W <= size; i += 4 * W) {
            const VF v0 = VLD(xs + i), v1 = VLD(xs + i + W), v2 = VLD(xs + i + 2 * W), v3 = VLD(xs + i + 3 * W);
            VST(ys + i, VADD(VMUL(v0, s), t));
            VST(ys + i + W, VADD(VMUL(v1, s), t));
            VST(ys + i + 2 * W, VADD(VMUL(v2, s), t));
            VST(ys + i + 3 * W, VADD(VMUL(v3, s), t));
        }
        for (; i + W <= size; i += W) VST(ys + i, VADD(VMUL(VLD(xs + i), s), t));
        if (i < size) {
            const VM m = SFX(r_mask)((ptrdiff_t)(size - i));
            VSTM(ys + i, VADD(VMUL(VLDZ(xs + i, m), s), t), m);
        }
    }
}

#undef INL
#undef NA
#undef VF
#undef VM
#undef VLD
#undef VST
#undef VSET
#undef VADD
#undef VSUB
#undef VMUL
#undef VMAX
#undef VMIN
#undef VFMA
#undef VABS
#undef VLDZ
#undef VLDF
#undef VSTM
#undef FT
#undef F_NONE
#undef F_UNORD
#undef F_OR
#undef F_ANY
#undef F_APPLY

#endif /* SO_REDUCE_TEMPLATE */
