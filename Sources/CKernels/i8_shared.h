/* Helpers shared by the integer GEMM (i8_gemm.c), the direct convolution (i8_conv.c) and the
   depthwise one (i8_dwconv.c): byte quads (SSE2) and requantization of 16 int32 lanes in AVX-512
   registers. Private to CKernels. */
#ifndef SWIFTONNX_I8_SHARED_H
#define SWIFTONNX_I8_SHARED_H
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>

/* Four rows of 16 bytes interleaved into 16 quads (column j's bytes at 4j..4j+3). */
static inline __attribute__((always_inline))
void quads_16(__m128i r0, __m128i r1, __m128i r2, __m128i r3, uint8_t *d) {
    __m128i t0 = _mm_unpacklo_epi8(r0, r1), t1 = _mm_unpackhi_epi8(r0, r1);
    __m128i t2 = _mm_unpacklo_epi8(r2, r3), t3 = _mm_unpackhi_epi8(r2, r3);
    _mm_storeu_si128((__m128i *)d, _mm_unpacklo_epi16(t0, t2));
    _mm_storeu_si128((__m128i *)(d + 16), _mm_unpackhi_epi16(t0, t2));
    _mm_storeu_si128((__m128i *)(d + 32), _mm_unpacklo_epi16(t1, t3));
    _mm_storeu_si128((__m128i *)(d + 48), _mm_unpackhi_epi16(t1, t3));
}

/* Requantization of 16 int32 values (acc + bias) * scale, with the reference's results: the product
   clamped to [lo - yzp, hi - yzp] (maxps gives the lower bound for NaN), rounded to nearest even,
   plus the zero point. The bounds are integers, so clamping before rounding equals the reference's
   clamping after it, and the clamp also keeps the conversion in range (the reference's +-2^30
   bound). The low byte of each lane is the output's bit pattern. vflo / vfhi: lo - yzp, hi - yzp
   as floats (exact: |lo|, |hi|, |yzp| are below 2^24). Shared by requantize_avx512, the VNNI
   tile's epilogue and the direct convolution's. */
static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512dq,avx512vl,fma")))
__m128i requant16_avx512(__m512i acc, __m512i vb, __m512 vs, __m512i vzp, __m512 vflo, __m512 vfhi) {
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc, vb)), vs);
    v = _mm512_min_ps(_mm512_max_ps(v, vflo), vfhi);
    return _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(v), vzp));
}

/* The float bounds requant16_avx512 takes for output range [lo, hi] and zero point yzp. */
static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512dq,avx512vl,fma")))
void requant16_bounds(int32_t yzp, int32_t lo, int32_t hi, __m512 *vflo, __m512 *vfhi) {
    *vflo = _mm512_set1_ps((float)((int64_t)lo - yzp));
    *vfhi = _mm512_set1_ps((float)((int64_t)hi - yzp));
}

#endif
#endif
