#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE   /* mremap */
#endif
#include "so_memory.h"
#include "so_isa.h"
#include <stdint.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

int so_populate(void *p, size_t bytes, size_t threshold) {
#if defined(__linux__)
    static int unsupported = 0;
    if (p == NULL || bytes < threshold || __atomic_load_n(&unsupported, __ATOMIC_RELAXED)) return 0;
    const uintptr_t page = 4096;
    uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t hi = ((uintptr_t)p + bytes) & ~(page - 1);
    if (hi <= lo) return 0;
    if (madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE) == 0) return 1;
    __atomic_store_n(&unsupported, 1, __ATOMIC_RELAXED);   /* EINVAL on kernels before 5.14 */
    return 0;
#else
    (void)p; (void)bytes; (void)threshold;
    return 0;
#endif
}

void *so_map_pages(size_t bytes) {
#if defined(__linux__)
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
#else
    (void)bytes;
    return NULL;
#endif
}

int so_move_pages(void *src, size_t bytes, void *dst) {
#if defined(__linux__)
    return mremap(src, bytes, bytes, MREMAP_MAYMOVE | MREMAP_FIXED, dst) == dst;
#else
    (void)src; (void)bytes; (void)dst;
    return 0;
#endif
}

void so_unmap_pages(void *p, size_t bytes) {
#if defined(__linux__)
    munmap(p, bytes);
#else
    (void)p; (void)bytes;
#endif
}

#if defined(__x86_64__)
/* Three channels, 16 positions at a time: the 48 values in three vectors, each plane gathered by two
   two-source permutes (its values among the first 32, then the rest from the third vector). */
__attribute__((target("avx512f")))
static size_t planes3_avx512(const uint32_t *src, size_t n, uint32_t *d0, uint32_t *d1, uint32_t *d2) {
    __m512i lo[3], hi[3];
    for (int p = 0; p < 3; p++) {
        int32_t a[16], b[16];
        for (int j = 0; j < 16; j++) {
            const int k = 3 * j + p;
            a[j] = k < 32 ? k : 0;
            b[j] = k < 32 ? j : 16 + (k - 32);
        }
        lo[p] = _mm512_loadu_si512((const void *)a);
        hi[p] = _mm512_loadu_si512((const void *)b);
    }
    uint32_t *d[3] = {d0, d1, d2};
    size_t j = 0;
    for (; j + 16 <= n; j += 16) {
        const __m512i v0 = _mm512_loadu_si512((const void *)(src + 3 * j)), v1 = _mm512_loadu_si512((const void *)(src + 3 * j + 16));
        const __m512i v2 = _mm512_loadu_si512((const void *)(src + 3 * j + 32));
        for (int p = 0; p < 3; p++)
            _mm512_storeu_si512((void *)(d[p] + j), _mm512_permutex2var_epi32(_mm512_permutex2var_epi32(v0, lo[p], v1), hi[p], v2));
    }
    return j;
}
#endif

void so_u32_to_planes(const uint32_t *src, size_t c, size_t n, uint32_t *dst) {
    if (c == 3) {
        uint32_t *d0 = dst, *d1 = dst + n, *d2 = dst + 2 * n;
        size_t j = 0;
#if defined(__x86_64__)
        if (so_isa_selected() >= SO_ISA_AVX512) j = planes3_avx512(src, n, d0, d1, d2);
#endif
        for (; j < n; j++) { d0[j] = src[3 * j]; d1[j] = src[3 * j + 1]; d2[j] = src[3 * j + 2]; }
        return;
    }
    if (c == 4) {
        uint32_t *d0 = dst, *d1 = dst + n, *d2 = dst + 2 * n, *d3 = dst + 3 * n;
        for (size_t j = 0; j < n; j++) {
            d0[j] = src[4 * j]; d1[j] = src[4 * j + 1]; d2[j] = src[4 * j + 2]; d3[j] = src[4 * j + 3];
        }
        return;
    }
    for (size_t j = 0; j < n; j++) {
        for (size_t ch = 0; ch < c; ch++) dst[ch * n + j] = src[j * c + ch];
    }
}

void so_u32_from_planes(const uint32_t *src, size_t plane_stride, size_t c, size_t n, uint32_t *dst) {
    size_t j = 0;
    if (c == 2) {
        const uint32_t *s0 = src, *s1 = src + plane_stride;
#if defined(__x86_64__)
        /* SSE2 (every x86-64): 4 positions of both planes per step, unpacked into 8 values */
        for (; j + 4 <= n; j += 4) {
            __m128i a = _mm_loadu_si128((const __m128i *)(s0 + j)), b = _mm_loadu_si128((const __m128i *)(s1 + j));
            _mm_storeu_si128((__m128i *)(dst + 2 * j), _mm_unpacklo_epi32(a, b));
            _mm_storeu_si128((__m128i *)(dst + 2 * j + 4), _mm_unpackhi_epi32(a, b));
        }
#endif
        for (; j < n; j++) { dst[2 * j] = s0[j]; dst[2 * j + 1] = s1[j]; }
        return;
    }
    if (c == 4) {
        const uint32_t *s0 = src, *s1 = src + plane_stride, *s2 = src + 2 * plane_stride, *s3 = src + 3 * plane_stride;
#if defined(__x86_64__)
        /* a 4x4 transpose per step: 4 positions of the 4 planes into 16 values */
        for (; j + 4 <= n; j += 4) {
            __m128i a = _mm_loadu_si128((const __m128i *)(s0 + j)), b = _mm_loadu_si128((const __m128i *)(s1 + j));
            __m128i e = _mm_loadu_si128((const __m128i *)(s2 + j)), f = _mm_loadu_si128((const __m128i *)(s3 + j));
            __m128i ab0 = _mm_unpacklo_epi32(a, b), ab1 = _mm_unpackhi_epi32(a, b);
            __m128i ef0 = _mm_unpacklo_epi32(e, f), ef1 = _mm_unpackhi_epi32(e, f);
            _mm_storeu_si128((__m128i *)(dst + 4 * j), _mm_unpacklo_epi64(ab0, ef0));
            _mm_storeu_si128((__m128i *)(dst + 4 * j + 4), _mm_unpackhi_epi64(ab0, ef0));
            _mm_storeu_si128((__m128i *)(dst + 4 * j + 8), _mm_unpacklo_epi64(ab1, ef1));
            _mm_storeu_si128((__m128i *)(dst + 4 * j + 12), _mm_unpackhi_epi64(ab1, ef1));
        }
#endif
        for (; j < n; j++) {
            dst[4 * j] = s0[j]; dst[4 * j + 1] = s1[j]; dst[4 * j + 2] = s2[j]; dst[4 * j + 3] = s3[j];
        }
        return;
    }
    for (; j < n; j++) {
        for (size_t ch = 0; ch < c; ch++) dst[j * c + ch] = src[ch * plane_stride + j];
    }
}
