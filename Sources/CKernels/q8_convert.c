/*
 * float32 <-> 8-bit quantized conversions (QuantizeLinear / DequantizeLinear with one scale):
 * a scalar reference and an AVX2 variant giving the same results (see so_q8.h); the QLinearAdd / QLinearMul
 * row kernel also in AVX-512.
 */
#include "so_isa.h"
#include "so_q8.h"
#include <math.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#pragma clang fp contract(off)

static inline __attribute__((always_inline))
int32_t quantize_one(float x, float scale, int32_t zp, int32_t lo, int32_t hi) {
    float v = x / scale;
    if (v != v) return 0 < lo ? lo : 0 > hi ? hi : 0;   /* NaN: 0, clamped (no zero point) */
    if (v < -1073741824.0f) v = -1073741824.0f;   /* far outside every 8-bit range: keeps int32 exact */
    if (v > 1073741824.0f) v = 1073741824.0f;
    int32_t q = (int32_t)nearbyintf(v) + zp;   /* the default rounding: to nearest, ties to even */
    return q < lo ? lo : q > hi ? hi : q;
}

static void quantize_scalar(const float *x, size_t n, float scale, int32_t zp, int32_t lo, int32_t hi, int is_signed,
                            void *y) {
    if (is_signed) { int8_t *o = (int8_t *)y; for (size_t i = 0; i < n; i++) o[i] = (int8_t)quantize_one(x[i], scale, zp, lo, hi); }
    else { uint8_t *o = (uint8_t *)y; for (size_t i = 0; i < n; i++) o[i] = (uint8_t)quantize_one(x[i], scale, zp, lo, hi); }
}

static void dequantize_scalar(const void *x, size_t n, float scale, int32_t zp, int is_signed, float *y) {
    if (is_signed) { const int8_t *p = (const int8_t *)x; for (size_t i = 0; i < n; i++) y[i] = (float)((int32_t)p[i] - zp) * scale; }
    else { const uint8_t *p = (const uint8_t *)x; for (size_t i = 0; i < n; i++) y[i] = (float)((int32_t)p[i] - zp) * scale; }
}

static void roundtrip_scalar(const float *x, size_t n, float scale, int32_t zp, int32_t lo, int32_t hi, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = (float)(quantize_one(x[i], scale, zp, lo, hi) - zp) * scale;
}

static void i32_to_f32_scaled_scalar(const int32_t *x, size_t n, float s, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = (float)x[i] * s;
}

/* QLinearAdd / QLinearMul, one row: see so_q8.h */
static inline __attribute__((always_inline)) float q8_binary_one(int op, float a, float b, float p0, float p1, float p2,
                                                                 float p3) {
    return op == 0 ? fmaf(p0, a, fmaf(p1, b, p2)) : p0 * ((a - p1) * (b - p2)) + p3;
}

static inline __attribute__((always_inline)) float q8_load(const void *x, size_t i, int is_signed) {
    return is_signed ? (float)((const int8_t *)x)[i] : (float)((const uint8_t *)x)[i];
}

static void q8_binary_row_scalar(int op, const void *a, size_t a_step, const void *b, size_t b_step, int is_signed,
                                 float p0, float p1, float p2, float p3, float lo, float hi, uint8_t *y, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = q8_binary_one(op, q8_load(a, i * a_step, is_signed), q8_load(b, i * b_step, is_signed), p0, p1, p2, p3);
        if (!(v >= lo)) v = lo;   /* NaN too */
        if (v > hi) v = hi;
        y[i] = (uint8_t)(int32_t)nearbyintf(v);
    }
}

static void f32_to_i32_scalar(const float *x, size_t n, int32_t *y) {
    for (size_t i = 0; i < n; i++) y[i] = (int32_t)nearbyintf(x[i]);
}

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)

/* quantize_avx2's lanes, then dequantize_avx2's, without the bytes in between, on floats:
 * (clamp(round(x / s) + zp, lo, hi) - zp) * s = clamp(round(x / s), lo - zp, hi - zp) * s, every
 * value in between a small integer (exact). maxps(NaN, lo) gives lo; where NaN's value (0 clamped,
 * minus zp) is another, a blend puts it in. Adding +0 turns a -0 from the rounding into the +0 the
 * integer path converts, before the product (whose sign then follows the scale's, as there). */
static void roundtrip_avx2(const float *x, size_t n, float scale, int32_t zp, int32_t lo, int32_t hi, float *y) {
    const __m256 vs = _mm256_set1_ps(scale), flo = _mm256_set1_ps((float)(lo - zp)), fhi = _mm256_set1_ps((float)(hi - zp));
    const int32_t nanq = 0 < lo ? lo : 0 > hi ? hi : 0;
    const __m256 fnan = _mm256_set1_ps((float)(nanq - zp)), zero = _mm256_setzero_ps();
    size_t i = 0;
    if (nanq == lo) {
        for (; i + 8 <= n; i += 8) {
            __m256 v = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(x + i), vs), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            v = _mm256_add_ps(_mm256_min_ps(_mm256_max_ps(v, flo), fhi), zero);
            _mm256_storeu_ps(y + i, _mm256_mul_ps(v, vs));
        }
    } else {
        for (; i + 8 <= n; i += 8) {
            __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i), vs);
            __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
            v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            v = _mm256_add_ps(_mm256_blendv_ps(_mm256_min_ps(_mm256_max_ps(v, flo), fhi), fnan, nan), zero);
            _mm256_storeu_ps(y + i, _mm256_mul_ps(v, vs));
        }
    }
    if (i < n) roundtrip_scalar(x + i, n - i, scale, zp, lo, hi, y + i);
}

static void i32_to_f32_scaled_avx2(const int32_t *x, size_t n, float s, float *y) {
    const __m256 vs = _mm256_set1_ps(s);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(x + i))), vs));
    if (i < n) i32_to_f32_scaled_scalar(x + i, n - i, s, y + i);
}

static inline __attribute__((always_inline)) __m256 q8_load8(const void *x, size_t i, size_t step, int is_signed) {
    if (step == 0) return _mm256_set1_ps(q8_load(x, 0, is_signed));
    __m128i v = _mm_loadl_epi64((const __m128i *)((const uint8_t *)x + i));
    return _mm256_cvtepi32_ps(is_signed ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v));
}

static inline __attribute__((always_inline)) __m256i q8_binary8(int op, __m256 x, __m256 z, __m256 v0, __m256 v1, __m256 v2,
                                                               __m256 v3, __m256 vlo, __m256 vhi) {
    __m256 v;
    if (op == 0) v = _mm256_fmadd_ps(v0, x, _mm256_fmadd_ps(v1, z, v2));
    else v = _mm256_add_ps(_mm256_mul_ps(v0, _mm256_mul_ps(_mm256_sub_ps(x, v1), _mm256_sub_ps(z, v2))), v3);
    v = _mm256_min_ps(_mm256_max_ps(v, vlo), vhi);   /* maxps(NaN, lo) gives lo, as the reference */
    return _mm256_cvtps_epi32(v);
}

/* One specialization per (op, signedness, steps): constant arguments, so the loop has no branch
   but its own. 16 values per step: two vectors of 8, packed together to 16 bytes. */
static inline __attribute__((always_inline)) void q8_binary_row_avx2_body(
        int op, const void *a, size_t a_step, const void *b, size_t b_step, int is_signed,
        float p0, float p1, float p2, float p3, float lo, float hi, uint8_t *y, size_t n) {
    const __m256 v0 = _mm256_set1_ps(p0), v1 = _mm256_set1_ps(p1), v2 = _mm256_set1_ps(p2), v3 = _mm256_set1_ps(p3);
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i q0 = q8_binary8(op, q8_load8(a, i, a_step, is_signed), q8_load8(b, i, b_step, is_signed), v0, v1, v2, v3, vlo, vhi);
        __m256i q1 = q8_binary8(op, q8_load8(a, i + 8, a_step, is_signed), q8_load8(b, i + 8, b_step, is_signed), v0, v1, v2, v3, vlo, vhi);
        /* the values are in the output type's range: packs to 16 bits (lanes interleaved), then to
           bytes with that type's saturation, and the 32-bit groups back in order */
        __m256i q16 = _mm256_packs_epi32(q0, q1);   /* [q0 0-3, q1 0-3, q0 4-7, q1 4-7] */
        __m128i lo16 = _mm256_castsi256_si128(q16), hi16 = _mm256_extracti128_si256(q16, 1);
        __m128i q8 = is_signed ? _mm_packs_epi16(lo16, hi16) : _mm_packus_epi16(lo16, hi16);   /* q0 0-3, q1 0-3, q0 4-7, q1 4-7 */
        q8 = _mm_shuffle_epi32(q8, _MM_SHUFFLE(3, 1, 2, 0));
        _mm_storeu_si128((__m128i *)(y + i), q8);
    }
    for (; i + 8 <= n; i += 8) {
        __m256i q = q8_binary8(op, q8_load8(a, i, a_step, is_signed), q8_load8(b, i, b_step, is_signed), v0, v1, v2, v3, vlo, vhi);
        __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        __m128i q8 = is_signed ? _mm_packs_epi16(q16, q16) : _mm_packus_epi16(q16, q16);
        _mm_storel_epi64((__m128i *)(y + i), q8);
    }
    if (i < n) {
        const uint8_t *at = (const uint8_t *)a + (a_step ? i : 0), *bt = (const uint8_t *)b + (b_step ? i : 0);
        q8_binary_row_scalar(op, at, a_step, bt, b_step, is_signed, p0, p1, p2, p3, lo, hi, y + i, n - i);
    }
}

#define Q8_BINARY_CASE(OP, SIGNED, AS, BS) \
    if (op == OP && is_signed == SIGNED && a_step == AS && b_step == BS) { \
        q8_binary_row_avx2_body(OP, a, AS, b, BS, SIGNED, p0, p1, p2, p3, lo, hi, y, n); return; }
#define Q8_BINARY_STEPS(OP, SIGNED) \
    Q8_BINARY_CASE(OP, SIGNED, 1, 1) Q8_BINARY_CASE(OP, SIGNED, 1, 0) Q8_BINARY_CASE(OP, SIGNED, 0, 1)

static void q8_binary_row_avx2(int op, const void *a, size_t a_step, const void *b, size_t b_step, int is_signed,
                               float p0, float p1, float p2, float p3, float lo, float hi, uint8_t *y, size_t n) {
    Q8_BINARY_STEPS(0, 0) Q8_BINARY_STEPS(0, 1) Q8_BINARY_STEPS(1, 0) Q8_BINARY_STEPS(1, 1)
    q8_binary_row_scalar(op, a, a_step, b, b_step, is_signed, p0, p1, p2, p3, lo, hi, y, n);   /* other steps */
}

static void f32_to_i32_avx2(const float *x, size_t n, int32_t *y) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_si256((__m256i *)(y + i), _mm256_cvtps_epi32(_mm256_loadu_ps(x + i)));
    if (i < n) f32_to_i32_scalar(x + i, n - i, y + i);
}

/* On floats: clamp(round(x / s) + zp, lo, hi), exact (the sum of the rounded quotient and the zero
 * point is rounded only far outside [lo, hi], where it clamps the same). maxps(NaN, lo) gives lo;
 * where NaN's value (0, clamped) is another, a blend puts it in. */
static void quantize_avx2(const float *x, size_t n, float scale, int32_t zp, int32_t lo, int32_t hi, int is_signed,
                          void *y) {
    const __m256 vs = _mm256_set1_ps(scale), vzp = _mm256_set1_ps((float)zp);
    const __m256 flo = _mm256_set1_ps((float)lo), fhi = _mm256_set1_ps((float)hi);
    const int32_t nanq = 0 < lo ? lo : 0 > hi ? hi : 0;
    const __m256 fnan = _mm256_set1_ps((float)nanq);
    const int blend = nanq != lo;
    uint8_t *o = (uint8_t *)y;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i), vs);
        __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
        v = _mm256_add_ps(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), vzp);
        v = _mm256_min_ps(_mm256_max_ps(v, flo), fhi);
        if (blend) v = _mm256_blendv_ps(v, fnan, nan);
        __m256i q = _mm256_cvtps_epi32(v);
        __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        __m128i q8 = is_signed ? _mm_packs_epi16(q16, q16) : _mm_packus_epi16(q16, q16);
        _mm_storel_epi64((__m128i *)(o + i), q8);
    }
    if (i < n) quantize_scalar(x + i, n - i, scale, zp, lo, hi, is_signed, o + i);
}

static void dequantize_avx2(const void *x, size_t n, float scale, int32_t zp, int is_signed, float *y) {
    const __m256 vs = _mm256_set1_ps(scale);
    const __m256i vzp = _mm256_set1_epi32(zp);
    const uint8_t *p = (const uint8_t *)x;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i b = _mm_loadl_epi64((const __m128i *)(p + i));
        __m256i w = is_signed ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(w, vzp)), vs));
    }
    if (i < n) dequantize_scalar(p + i, n - i, scale, zp, is_signed, y + i);
}

#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma"))), apply_to = function)

/* The AVX2 row kernel's arithmetic, 16 lanes at a time (the same operations per element, so the
   same bits), with a masked tail. */
static inline __attribute__((always_inline)) __m512 q8_load16(const void *x, size_t i, size_t step, int is_signed,
                                                              __mmask16 m) {
    if (step == 0) return _mm512_set1_ps(q8_load(x, 0, is_signed));
    __m128i v = _mm_maskz_loadu_epi8(m, (const uint8_t *)x + i);
    return _mm512_cvtepi32_ps(is_signed ? _mm512_cvtepi8_epi32(v) : _mm512_cvtepu8_epi32(v));
}

static inline __attribute__((always_inline)) void q8_binary_row_avx512_body(
        int op, const void *a, size_t a_step, const void *b, size_t b_step, int is_signed,
        float p0, float p1, float p2, float p3, float lo, float hi, uint8_t *y, size_t n) {
    const __m512 v0 = _mm512_set1_ps(p0), v1 = _mm512_set1_ps(p1), v2 = _mm512_set1_ps(p2), v3 = _mm512_set1_ps(p3);
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 x = q8_load16(a, i, a_step, is_signed, m), z = q8_load16(b, i, b_step, is_signed, m), v;
        if (op == 0) v = _mm512_fmadd_ps(v0, x, _mm512_fmadd_ps(v1, z, v2));
        else v = _mm512_add_ps(_mm512_mul_ps(v0, _mm512_mul_ps(_mm512_sub_ps(x, v1), _mm512_sub_ps(z, v2))), v3);
        v = _mm512_min_ps(_mm512_max_ps(v, vlo), vhi);   /* maxps(NaN, lo) gives lo, as the reference */
        /* in the output type's range now: the low byte of each lane is its bit pattern */
        _mm_mask_storeu_epi8(y + i, m, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v)));
    }
}

#define Q8_BINARY_CASE512(OP, SIGNED, AS, BS) \
    if (op == OP && is_signed == SIGNED && a_step == AS && b_step == BS) { \
        q8_binary_row_avx512_body(OP, a, AS, b, BS, SIGNED, p0, p1, p2, p3, lo, hi, y, n); return 1; }
#define Q8_BINARY_STEPS512(OP, SIGNED) \
    Q8_BINARY_CASE512(OP, SIGNED, 1, 1) Q8_BINARY_CASE512(OP, SIGNED, 1, 0) Q8_BINARY_CASE512(OP, SIGNED, 0, 1)

/* 1 when the steps are ones this kernel takes (0 or 1 each, not both 0). */
static int q8_binary_row_avx512(int op, const void *a, size_t a_step, const void *b, size_t b_step, int is_signed,
                                float p0, float p1, float p2, float p3, float lo, float hi, uint8_t *y, size_t n) {
    Q8_BINARY_STEPS512(0, 0) Q8_BINARY_STEPS512(0, 1) Q8_BINARY_STEPS512(1, 0) Q8_BINARY_STEPS512(1, 1)
    return 0;
}

#pragma clang attribute pop
#endif

void so_q8_quantize(const float *x, size_t n, float scale, int32_t zp, int32_t lo, int32_t hi, int is_signed,
                    void *y, int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX2) { quantize_avx2(x, n, scale, zp, lo, hi, is_signed, y); return; }
#endif
    (void)isa;
    quantize_scalar(x, n, scale, zp, lo, hi, is_signed, y);
}

void so_q8_dequantize(const void *x, size_t n, float scale, int32_t zp, int is_signed, float *y, int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX2) { dequantize_avx2(x, n, scale, zp, is_signed, y); return; }
#endif
    (void)isa;
    dequantize_scalar(x, n, scale, zp, is_signed, y);
}

void so_f32_to_i32(const float *x, size_t n, int32_t *y, int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX2) { f32_to_i32_avx2(x, n, y); return; }
#endif
    (void)isa;
    f32_to_i32_scalar(x, n, y);
}

void so_i32_to_f32_scaled(const int32_t *x, size_t n, float s, float *y, int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX2) { i32_to_f32_scaled_avx2(x, n, s, y); return; }
#endif
    (void)isa;
    i32_to_f32_scaled_scalar(x, n, s, y);
}

void so_q8_roundtrip(const float *x, size_t n, float scale, int32_t zp, int32_t lo, int32_t hi, float *y, int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX2) { roundtrip_avx2(x, n, scale, zp, lo, hi, y); return; }
#endif
    (void)isa;
    roundtrip_scalar(x, n, scale, zp, lo, hi, y);
}

void so_q8_binary_row(int op, const void *a, size_t a_step, const void *b, size_t b_step, int is_signed, float p0,
                      float p1, float p2, float p3, float lo, float hi, uint8_t *y, size_t n, int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX512 && q8_binary_row_avx512(op, a, a_step, b, b_step, is_signed, p0, p1, p2, p3, lo, hi, y, n)) return;
    if (isa >= SO_ISA_AVX2) { q8_binary_row_avx2(op, a, a_step, b, b_step, is_signed, p0, p1, p2, p3, lo, hi, y, n); return; }
#endif
    (void)isa;
    q8_binary_row_scalar(op, a, a_step, b, b_step, is_signed, p0, p1, p2, p3, lo, hi, y, n);
}

/* ---- transposition of integer GEMM results (a matrix product computed as (X W)ᵀ = Wᵀ Xᵀ) ---- */

/* Blocks of 16 x 16: the reads and the writes both stay within a few cache lines per block. */
#define SO_T_BLOCK 16

void so_i32_transpose(const int32_t *src, size_t rows, size_t cols, size_t lds, int32_t *dst, size_t ldd) {
    for (size_t i0 = 0; i0 < rows; i0 += SO_T_BLOCK) {
        size_t i1 = i0 + SO_T_BLOCK < rows ? i0 + SO_T_BLOCK : rows;
        for (size_t j0 = 0; j0 < cols; j0 += SO_T_BLOCK) {
            size_t j1 = j0 + SO_T_BLOCK < cols ? j0 + SO_T_BLOCK : cols;
            for (size_t j = j0; j < j1; j++) {
                for (size_t i = i0; i < i1; i++) dst[j * ldd + i] = src[i * lds + j];
            }
        }
    }
}

void so_i32_transpose_to_f32_scaled(const int32_t *src, size_t rows, size_t cols, size_t lds, const float *scale,
                                    size_t scale_step, float *dst, size_t ldd) {
    for (size_t i0 = 0; i0 < rows; i0 += SO_T_BLOCK) {
        size_t i1 = i0 + SO_T_BLOCK < rows ? i0 + SO_T_BLOCK : rows;
        for (size_t j0 = 0; j0 < cols; j0 += SO_T_BLOCK) {
            size_t j1 = j0 + SO_T_BLOCK < cols ? j0 + SO_T_BLOCK : cols;
            for (size_t j = j0; j < j1; j++) {
                for (size_t i = i0; i < i1; i++) dst[j * ldd + i] = (float)src[i * lds + j] * scale[i * scale_step];
            }
        }
    }
}

/* ---- 256-entry byte tables (LookupTable, QLinearSigmoid, requantizing QLinearConcat inputs) ---- */

static void u8_lookup_scalar(const uint8_t *x, size_t n, const uint8_t *table, uint8_t *y) {
    for (size_t i = 0; i < n; i++) y[i] = table[x[i]];
}

#if defined(__x86_64__)
/* Bits 0-6 of a byte pick one of 128 entries from a pair of 64-byte quarters (vpermi2b); bit 7 picks
   the pair. */
__attribute__((target("avx512f,avx512bw,avx512vbmi")))
static void u8_lookup_vbmi(const uint8_t *x, size_t n, const uint8_t *table, uint8_t *y) {
    const __m512i t0 = _mm512_loadu_si512((const void *)table), t1 = _mm512_loadu_si512((const void *)(table + 64));
    const __m512i t2 = _mm512_loadu_si512((const void *)(table + 128)), t3 = _mm512_loadu_si512((const void *)(table + 192));
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const __m512i v = _mm512_loadu_si512((const void *)(x + i));
        const __m512i lo = _mm512_permutex2var_epi8(t0, v, t1), hi = _mm512_permutex2var_epi8(t2, v, t3);
        _mm512_storeu_si512((void *)(y + i), _mm512_mask_blend_epi8(_mm512_movepi8_mask(v), lo, hi));
    }
    if (i < n) {
        const __mmask64 m = (__mmask64)((~0ULL) >> (64 - (n - i)));
        const __m512i v = _mm512_maskz_loadu_epi8(m, x + i);
        const __m512i lo = _mm512_permutex2var_epi8(t0, v, t1), hi = _mm512_permutex2var_epi8(t2, v, t3);
        _mm512_mask_storeu_epi8(y + i, m, _mm512_mask_blend_epi8(_mm512_movepi8_mask(v), lo, hi));
    }
}
#endif

void so_u8_lookup(const uint8_t *x, size_t n, const uint8_t *table, uint8_t *y, int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX512 && so_cpu_has_avx512vbmi()) { u8_lookup_vbmi(x, n, table, y); return; }
#endif
    (void)isa;
    u8_lookup_scalar(x, n, table, y);
}
