/*
 * Binary float32 arithmetic: out[i] = a[i*as] op b[i*bs], as / bs in {0, 1}.
 *
 * Variants: f32_binary_ref (portable C), f32_binary_avx2 (8 lanes), f32_binary_avx512 (16 lanes).
 * The vector body is written once below and instantiated per ISA by including this file into
 * itself under `#pragma clang attribute push(target(...))` (see f32_unary.c).
 *
 * Semantics (all variants agree bit for bit, except the payload of a NaN produced from two NaN
 * inputs):
 *   ADD SUB MUL DIV: one IEEE operation each; division divides (no reciprocal), nothing is fused.
 *   MAX: a is NaN ? a : b is NaN ? b : (a < b ? b : a)     (numpy maximum: NaN propagates;
 *   MIN: a is NaN ? a : b is NaN ? b : (b < a ? b : a)      equal values, e.g. -0 / +0, give a)
 * A broadcast operand (step 0) is read once, before anything is written, so `out` may alias it.
 * Steps other than 0 / 1 are accepted and run the reference loop.
 */
#ifndef SO_BINARY_TEMPLATE

#include "so_eltwise.h"
#include "so_isa.h"
#include <math.h>

#pragma clang fp contract(off)

/* ---------------------------------------------------------------------------------------------
 * Scalar reference
 * ------------------------------------------------------------------------------------------- */

static inline float ref_max(float x, float y) { return x != x ? x : (y != y ? y : (x < y ? y : x)); }
static inline float ref_min(float x, float y) { return x != x ? x : (y != y ? y : (y < x ? y : x)); }

/* One loop per (op, operand pattern); the element pair is (x, y). */
#define REF_BIN(EXPR)                                                                           \
    do {                                                                                        \
        if (as == 1 && bs == 1) {                                                               \
            for (size_t i = 0; i < n; i++) { float x = a[i], y = b[i]; out[i] = (EXPR); }       \
        } else if (as == 1 && bs == 0) {                                                        \
            for (size_t i = 0; i < n; i++) { float x = a[i], y = b0; out[i] = (EXPR); }         \
        } else if (as == 0 && bs == 1) {                                                        \
            for (size_t i = 0; i < n; i++) { float x = a0, y = b[i]; out[i] = (EXPR); }         \
        } else {                                                                                \
            for (size_t i = 0; i < n; i++) {                                                    \
                float x = as ? a[i * as] : a0, y = bs ? b[i * bs] : b0;                         \
                out[i] = (EXPR);                                                                \
            }                                                                                   \
        }                                                                                       \
    } while (0)

static void f32_binary_ref(int op, const float *a, size_t as, const float *b, size_t bs, float *out, size_t n) {
    if (n == 0) return;
    /* A broadcast operand is read once up front: `out` may be the same memory. */
    const float a0 = a[0], b0 = b[0];
    switch (op) {
    case SO_BIN_ADD: REF_BIN(x + y); break;
    case SO_BIN_SUB: REF_BIN(x - y); break;
    case SO_BIN_MUL: REF_BIN(x * y); break;
    case SO_BIN_DIV: REF_BIN(x / y); break;
    case SO_BIN_MAX: REF_BIN(ref_max(x, y)); break;
    case SO_BIN_MIN: REF_BIN(ref_min(x, y)); break;
    default: REF_BIN(((void)y, x)); break; /* unknown op: copies a */
    }
}
#undef REF_BIN

/* ---------------------------------------------------------------------------------------------
 * Vector instantiations (x86-64 only)
 * ------------------------------------------------------------------------------------------- */
#if defined(__x86_64__)
#include <immintrin.h>

typedef float so_b_vf8 __attribute__((ext_vector_type(8), aligned(4)));
typedef int so_b_vi8 __attribute__((ext_vector_type(8), aligned(4)));
typedef float so_b_vf16 __attribute__((ext_vector_type(16), aligned(4)));
typedef int so_b_vi16 __attribute__((ext_vector_type(16), aligned(4)));

#define SO_BINARY_TEMPLATE 1

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#define W 8
#define VF so_b_vf8
#define VI so_b_vi8
#define SFX(name) name##_avx2
#include "f32_binary.c"
#undef W
#undef VF
#undef VI
#undef SFX
#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma"))), apply_to = function)
#define W 16
#define VF so_b_vf16
#define VI so_b_vi16
#define SFX(name) name##_avx512
#include "f32_binary.c"
#undef W
#undef VF
#undef VI
#undef SFX
#pragma clang attribute pop

#undef SO_BINARY_TEMPLATE
#endif /* __x86_64__ */

so_f32_binary_fn so_f32_binary_select(int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX512) return f32_binary_avx512;
    if (isa >= SO_ISA_AVX2) return f32_binary_avx2;
#endif
    (void)isa;
    return f32_binary_ref;
}

#else /* SO_BINARY_TEMPLATE: W lanes, VF / VI, SFX(name) */

#define VLD(p) (*(const VF *)(p))
#define VST(p, v) (*(VF *)(p) = (v))

static inline __attribute__((always_inline)) VF SFX(b_loadn)(const float *p, size_t r) {
#if W == 16
    return (VF)_mm512_maskz_loadu_ps((__mmask16)((1u << r) - 1u), p);
#else
    const VI iota = {0, 1, 2, 3, 4, 5, 6, 7};
    return (VF)_mm256_maskload_ps(p, (__m256i)(iota < (int)r));
#endif
}

static inline __attribute__((always_inline)) void SFX(b_storen)(float *p, VF v, size_t r) {
#if W == 16
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << r) - 1u), (__m512)v);
#else
    const VI iota = {0, 1, 2, 3, 4, 5, 6, 7};
    _mm256_maskstore_ps(p, (__m256i)(iota < (int)r), (__m256)v);
#endif
}

static inline __attribute__((always_inline)) VF SFX(b_max)(VF x, VF y) {
    VF r = x < y ? y : x;
    r = y != y ? y : r;
    return x != x ? x : r;
}

static inline __attribute__((always_inline)) VF SFX(b_min)(VF x, VF y) {
    VF r = y < x ? y : x;
    r = y != y ? y : r;
    return x != x ? x : r;
}

/* One loop per (op, operand pattern); X / Y are the operand vectors at offset i. */
#define SO_BLOOP(X, Y, EXPR)                                                  \
    do {                                                                      \
        size_t i = 0;                                                         \
        for (; i + 2 * W <= n; i += 2 * W) {                                  \
            VF x, y, x1, y1;                                                  \
            x = X(i); y = Y(i);                                               \
            x1 = X(i + W); y1 = Y(i + W);                                     \
            VF r0 = (EXPR);                                                   \
            x = x1; y = y1;                                                   \
            VF r1 = (EXPR);                                                   \
            VST(out + i, r0);                                                 \
            VST(out + i + W, r1);                                             \
        }                                                                     \
        if (i + W <= n) {                                                     \
            VF x = X(i), y = Y(i);                                            \
            VST(out + i, (EXPR));                                             \
            i += W;                                                           \
        }                                                                     \
        if (i < n) {                                                          \
            size_t r = n - i;                                                 \
            VF x = X##N(i, r), y = Y##N(i, r);                                \
            SFX(b_storen)(out + i, (EXPR), r);                                \
        }                                                                     \
    } while (0)

#define AV(i) VLD(a + (i))
#define AVN(i, r) SFX(b_loadn)(a + (i), (r))
#define AS(i) as0
#define ASN(i, r) as0
#define BV(i) VLD(b + (i))
#define BVN(i, r) SFX(b_loadn)(b + (i), (r))
#define BS(i) bs0
#define BSN(i, r) bs0

#define SO_BPATTERNS(EXPR)                                                    \
    do {                                                                      \
        if (as && bs) SO_BLOOP(AV, BV, EXPR);                                 \
        else if (as) SO_BLOOP(AV, BS, EXPR);                                  \
        else SO_BLOOP(AS, BV, EXPR);                                          \
    } while (0)

static void SFX(f32_binary)(int op, const float *a, size_t as, const float *b, size_t bs, float *out, size_t n) {
    if (n == 0) return;
    if (as > 1 || bs > 1 || (as == 0 && bs == 0) || (unsigned)op > SO_BIN_MIN) {
        f32_binary_ref(op, a, as, b, bs, out, n);
        return;
    }
    /* Broadcast operands are read before any store (out may alias them). */
    const VF as0 = (VF)a[0], bs0 = (VF)b[0];
    switch (op) {
    case SO_BIN_ADD: SO_BPATTERNS(x + y); break;
    case SO_BIN_SUB: SO_BPATTERNS(x - y); break;
    case SO_BIN_MUL: SO_BPATTERNS(x * y); break;
    case SO_BIN_DIV: SO_BPATTERNS(x / y); break;
    case SO_BIN_MAX: SO_BPATTERNS(SFX(b_max)(x, y)); break;
    case SO_BIN_MIN: SO_BPATTERNS(SFX(b_min)(x, y)); break;
    default: break;
    }
}

#undef SO_BPATTERNS
#undef SO_BLOOP
#undef AV
#undef AVN
#undef AS
#undef ASN
#undef BV
#undef BVN
#undef BS
#undef BSN
#undef VLD
#undef VST

#endif /* SO_BINARY_TEMPLATE */
