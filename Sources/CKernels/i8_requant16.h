/* Requantization of 16 int32 lanes in AVX-512 registers, shared by the integer GEMM (i8_gemm.c) and
   the direct convolution (i8_conv.c). Private to CKernels. */
#ifndef SWIFTONNX_I8_REQUANT16_H
#define SWIFTONNX_I8_REQUANT16_H
#if defined(__x86_64__)
#include <immintrin.h>

/* Requantization of 16 int32 values (acc + bias) * scale, the reference's operations on 16 lanes:
   bounded to +-2^30 (maxps gives the lower bound for NaN), rounded to nearest even, plus the zero
   point, clamped to [lo, hi]; the low byte of each lane is then the output's bit pattern. Shared by
   requantize_avx512, the VNNI tile's epilogue and the direct convolution's. */
static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512dq,avx512vl,fma")))
__m128i requant16_avx512(__m512i acc, __m512i vb, __m512 vs, __m512i vzp, __m512i vlo, __m512i vhi) {
    const __m512 big = _mm512_set1_ps(1073741824.0f), nbig = _mm512_set1_ps(-1073741824.0f);
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc, vb)), vs);
    v = _mm512_min_ps(_mm512_max_ps(v, nbig), big);
    __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(v), vzp);
    q = _mm512_min_epi32(_mm512_max_epi32(q, vlo), vhi);
    return _mm512_cvtepi32_epi8(q);
}

#endif
#endif
