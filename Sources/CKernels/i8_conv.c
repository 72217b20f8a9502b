/*
 * Direct integer convolution (see so_i8_conv.h): quad planes, weight packing, and the kernel.
 *   conv_direct_scalar      the reference (plain C, one int32 sum per element)
 *   conv_direct_8x32_vnni   AVX-512 VNNI: 8 output channels x 32 positions in 16 zmm accumulators;
 *                           each step loads the 32 positions' four bytes of one tap and channel
 *                           quad straight from the quad planes (two 64-byte loads) and multiplies
 *                           them with the 8 channels' four weights (broadcast) by vpdpbusd
 * Both give the same integers: sums of at most 2^31 / (255 * 128) products never overflow for the
 * sizes the caller allows.
 */
#include "so_isa.h"
#include "so_i8_conv.h"
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

void so_u8_conv_quads(const uint8_t *x, size_t c, size_t h, size_t w, size_t pt, size_t pl, size_t hp, size_t wp,
                      uint8_t fill, int flip, uint8_t *dst) {
    const size_t cq = (c + 3) / 4, plane = hp * wp * 4;
    const uint8_t fx = flip ? 0x80 : 0;
    for (size_t q = 0; q < cq; q++) {
        uint8_t *p = dst + q * plane;
        const uint8_t *ch[4];
        for (size_t e = 0; e < 4; e++) ch[e] = x + (4 * q + e < c ? 4 * q + e : c - 1) * h * w;
        for (size_t y = 0; y < hp; y++) {
            uint8_t *row = p + y * wp * 4;
            if (y < pt || y >= pt + h) { memset(row, fill, wp * 4); continue; }
            const size_t iy = y - pt;
            const size_t left = pl < wp ? pl : wp;
            memset(row, fill, left * 4);
            size_t n = w < wp - left ? w : wp - left;
            const uint8_t *r0 = ch[0] + iy * w, *r1 = ch[1] + iy * w, *r2 = ch[2] + iy * w, *r3 = ch[3] + iy * w;
            uint8_t *d = row + left * 4;
            size_t i = 0;
#if defined(__x86_64__)
            const __m128i vf = _mm_set1_epi8((char)fx);
            for (; i + 16 <= n; i += 16) {
                __m128i a = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r0 + i)), vf);
                __m128i b = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r1 + i)), vf);
                __m128i cc = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r2 + i)), vf);
                __m128i dd = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r3 + i)), vf);
                __m128i t0 = _mm_unpacklo_epi8(a, b), t1 = _mm_unpackhi_epi8(a, b);
                __m128i t2 = _mm_unpacklo_epi8(cc, dd), t3 = _mm_unpackhi_epi8(cc, dd);
                _mm_storeu_si128((__m128i *)(d + 4 * i), _mm_unpacklo_epi16(t0, t2));
                _mm_storeu_si128((__m128i *)(d + 4 * i + 16), _mm_unpackhi_epi16(t0, t2));
                _mm_storeu_si128((__m128i *)(d + 4 * i + 32), _mm_unpacklo_epi16(t1, t3));
                _mm_storeu_si128((__m128i *)(d + 4 * i + 48), _mm_unpackhi_epi16(t1, t3));
            }
#endif
            for (; i < n; i++) {
                d[4 * i] = r0[i] ^ fx; d[4 * i + 1] = r1[i] ^ fx;
                d[4 * i + 2] = r2[i] ^ fx; d[4 * i + 3] = r3[i] ^ fx;
            }
            if (left + n < wp) memset(d + 4 * n, fill, (wp - left - n) * 4);
        }
    }
    memset(dst + cq * plane, fill, SO_I8_CONV_SLACK);
}

size_t so_i8_conv_packed_bytes(size_t m, size_t c, size_t taps) {
    return (m + 7) / 8 * 8 * taps * ((c + 3) / 4) * 4;
}

void so_i8_conv_pack(size_t m, size_t c, size_t taps, const int8_t *w, int8_t *dst) {
    const size_t cq = (c + 3) / 4;
    for (size_t p = 0; p < m; p += 8) {
        for (size_t t = 0; t < taps; t++) {
            for (size_t q = 0; q < cq; q++) {
                for (size_t r = 0; r < 8; r++) {
                    for (size_t e = 0; e < 4; e++) {
                        size_t i = p + r, ch = 4 * q + e;
                        *dst++ = (i < m && ch < c) ? w[(i * c + ch) * taps + t] : 0;
                    }
                }
            }
        }
    }
}

static void conv_direct_scalar(size_t m, size_t cq, size_t taps, const int8_t *wpk, const uint8_t *quads,
                               size_t plane_bytes, const size_t *toff, size_t l0, size_t n, int32_t *acc, size_t ldc) {
    const size_t panel = taps * cq * 32;
    for (size_t i = 0; i < m; i++) {
        const int8_t *wr = wpk + (i / 8) * panel + (i % 8) * 4;
        for (size_t j = 0; j < n; j++) {
            int32_t s = 0;
            for (size_t t = 0; t < taps; t++) {
                for (size_t q = 0; q < cq; q++) {
                    const int8_t *wq = wr + (t * cq + q) * 32;
                    const uint8_t *xq = quads + q * plane_bytes + (l0 + j) * 4 + toff[t];
                    for (size_t e = 0; e < 4; e++) s += (int32_t)wq[e] * (int32_t)xq[e];
                }
            }
            acc[i * ldc + j] = s;
        }
    }
}

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"))), apply_to = function)
static void conv_direct_8x32_vnni(size_t m, size_t cq, size_t taps, const int8_t *wpk, const uint8_t *quads,
                                  size_t plane_bytes, const size_t *toff, size_t l0, size_t n, int32_t *acc, size_t ldc) {
    const size_t panel = taps * cq * 32;
    for (size_t p = 0; p < m; p += 8) {
        const int32_t *ap = (const int32_t *)(wpk + (p / 8) * panel);
        const size_t rows = m - p < 8 ? m - p : 8;
        for (size_t j = 0; j < n; j += 32) {
            const size_t cols = n - j < 32 ? n - j : 32;
            __m512i c0[8], c1[8];
            for (int r = 0; r < 8; r++) { c0[r] = _mm512_setzero_si512(); c1[r] = _mm512_setzero_si512(); }
            const int32_t *a = ap;
            const uint8_t *base = quads + (l0 + j) * 4;
            for (size_t t = 0; t < taps; t++) {
                const uint8_t *bt = base + toff[t];
                for (size_t q = 0; q < cq; q++, a += 8) {
                    const __m512i b0 = _mm512_loadu_si512((const void *)(bt + q * plane_bytes));
                    const __m512i b1 = _mm512_loadu_si512((const void *)(bt + q * plane_bytes + 64));
                    for (int r = 0; r < 8; r++) {
                        const __m512i w = _mm512_set1_epi32(a[r]);
                        c0[r] = _mm512_dpbusd_epi32(c0[r], b0, w);
                        c1[r] = _mm512_dpbusd_epi32(c1[r], b1, w);
                    }
                }
            }
            const __mmask16 k0 = cols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1);
            const __mmask16 k1 = cols >= 32 ? (__mmask16)0xFFFF : cols > 16 ? (__mmask16)((1u << (cols - 16)) - 1) : 0;
            for (size_t r = 0; r < rows; r++) {
                int32_t *o = acc + (p + r) * ldc + j;
                _mm512_mask_storeu_epi32(o, k0, c0[r]);
                _mm512_mask_storeu_epi32(o + 16, k1, c1[r]);
            }
        }
    }
}
#pragma clang attribute pop
#endif

int so_i8_conv_direct_fast(int isa) {
#if defined(__x86_64__)
    return isa >= SO_ISA_AVX512 && so_cpu_has_avx512vnni();
#else
    (void)isa;
    return 0;
#endif
}

void so_i8_conv_direct(int isa, size_t m, size_t cq, size_t taps, const int8_t *wpk, const uint8_t *quads,
                       size_t plane_bytes, const size_t *toff, size_t l0, size_t n, int32_t *acc, size_t ldc) {
#if defined(__x86_64__)
    if (so_i8_conv_direct_fast(isa)) {
        conv_direct_8x32_vnni(m, cq, taps, wpk, quads, plane_bytes, toff, l0, n, acc, ldc);
        return;
    }
#endif
    conv_direct_scalar(m, cq, taps, wpk, quads, plane_bytes, toff, l0, n, acc, ldc);
}
