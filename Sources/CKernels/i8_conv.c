/*
 * Direct integer convolution (see so_i8_conv.h): quad planes, weight packing, and the kernel.
 *   conv_direct_scalar      the reference (plain C, one int32 sum per element)
 *   conv_direct_8x48_vnni   AVX-512 VNNI: 8 output channels x 48 positions in 24 zmm accumulators;
 *                           each step loads the 48 positions' four bytes of one tap and channel
 *                           quad straight from the quad planes (three 64-byte loads) and multiplies
 *                           them with the 8 channels' four weights (broadcast) by vpdpbusd; results
 *                           requantized in registers when asked
 * Both give the same integers: sums of at most 2^31 / (255 * 128) products never overflow for the
 * sizes the caller allows.
 */
#include "so_isa.h"
#include "so_i8_conv.h"
#include "so_i8_gemm.h"
#include "i8_requant16.h"
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* Four rows' bytes r[e][i * s] (i < n) interleaved into n quads at d, each byte xor-ed with fx. */
static void interleave_rows(const uint8_t *r0, const uint8_t *r1, const uint8_t *r2, const uint8_t *r3, size_t n, size_t s,
                            uint8_t fx, uint8_t *d) {
    size_t i = 0;
#if defined(__x86_64__)
    const __m128i vf = _mm_set1_epi8((char)fx);
    if (s == 1) {
        for (; i + 16 <= n; i += 16) {
            __m128i a = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r0 + i)), vf);
            __m128i b = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r1 + i)), vf);
            __m128i c = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r2 + i)), vf);
            __m128i e = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r3 + i)), vf);
            __m128i t0 = _mm_unpacklo_epi8(a, b), t1 = _mm_unpackhi_epi8(a, b);
            __m128i t2 = _mm_unpacklo_epi8(c, e), t3 = _mm_unpackhi_epi8(c, e);
            _mm_storeu_si128((__m128i *)(d + 4 * i), _mm_unpacklo_epi16(t0, t2));
            _mm_storeu_si128((__m128i *)(d + 4 * i + 16), _mm_unpackhi_epi16(t0, t2));
            _mm_storeu_si128((__m128i *)(d + 4 * i + 32), _mm_unpacklo_epi16(t1, t3));
            _mm_storeu_si128((__m128i *)(d + 4 * i + 48), _mm_unpackhi_epi16(t1, t3));
        }
    } else if (s == 2) {
        /* the even bytes of 32 (the low bytes of 16-bit lanes); the last vector reads byte 2i + 31,
           which must lie inside the run's bytes 0 .. 2n - 2 */
        const __m128i low = _mm_set1_epi16(0x00FF);
        for (; i + 16 <= n && 2 * i + 32 <= 2 * n - 1; i += 16) {
#define EVEN16(r) _mm_xor_si128(_mm_packus_epi16(_mm_and_si128(_mm_loadu_si128((const __m128i *)((r) + 2 * i)), low), \
                                                 _mm_and_si128(_mm_loadu_si128((const __m128i *)((r) + 2 * i + 16)), low)), vf)
            __m128i a = EVEN16(r0), b = EVEN16(r1), c = EVEN16(r2), e = EVEN16(r3);
#undef EVEN16
            __m128i t0 = _mm_unpacklo_epi8(a, b), t1 = _mm_unpackhi_epi8(a, b);
            __m128i t2 = _mm_unpacklo_epi8(c, e), t3 = _mm_unpackhi_epi8(c, e);
            _mm_storeu_si128((__m128i *)(d + 4 * i), _mm_unpacklo_epi16(t0, t2));
            _mm_storeu_si128((__m128i *)(d + 4 * i + 16), _mm_unpackhi_epi16(t0, t2));
            _mm_storeu_si128((__m128i *)(d + 4 * i + 32), _mm_unpacklo_epi16(t1, t3));
            _mm_storeu_si128((__m128i *)(d + 4 * i + 48), _mm_unpackhi_epi16(t1, t3));
        }
    }
#endif
    for (; i < n; i++) {
        d[4 * i] = r0[i * s] ^ fx; d[4 * i + 1] = r1[i * s] ^ fx;
        d[4 * i + 2] = r2[i * s] ^ fx; d[4 * i + 3] = r3[i * s] ^ fx;
    }
}

void so_u8_conv_quads(const uint8_t *x, size_t c, size_t h, size_t w, size_t sh, size_t sw, size_t pt, size_t pl,
                      size_t hp, size_t wp, uint8_t fill, int flip, uint8_t *dst) {
    const size_t cq = (c + 3) / 4, plane = hp * wp * 4;
    const uint8_t fx = flip ? 0x80 : 0;
    /* columns x of the quad image inside the input: xlo <= x < xhi (input column x * sw - pl) */
    size_t xlo = (pl + sw - 1) / sw, xhi = (w + pl + sw - 1) / sw;
    if (xhi > wp) xhi = wp;
    if (xlo > xhi) xlo = xhi;
    const size_t n = xhi - xlo, ix0 = xlo * sw - pl;
    for (size_t q = 0; q < cq; q++) {
        uint8_t *p = dst + q * plane;
        const uint8_t *ch[4];
        for (size_t e = 0; e < 4; e++) ch[e] = x + (4 * q + e < c ? 4 * q + e : c - 1) * h * w;
        for (size_t y = 0; y < hp; y++) {
            uint8_t *row = p + y * wp * 4;
            const size_t ys = y * sh;   /* input row ys - pt */
            if (ys < pt || ys - pt >= h || n == 0) { memset(row, fill, wp * 4); continue; }
            const size_t off = (ys - pt) * w + ix0;
            memset(row, fill, xlo * 4);
            interleave_rows(ch[0] + off, ch[1] + off, ch[2] + off, ch[3] + off, n, sw, fx, row + xlo * 4);
            if (xhi < wp) memset(row + xhi * 4, fill, (wp - xhi) * 4);
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

static void conv_direct_scalar(size_t m, size_t steps, const int8_t *wpk, const uint8_t *quads, const size_t *offs,
                               size_t l0, size_t n, int32_t *acc, size_t ldc, const so_i8_requant *rq) {
    const size_t panel = steps * 32;
    int32_t row[64];
    for (size_t i = 0; i < m; i++) {
        const int8_t *wr = wpk + (i / 8) * panel + (i % 8) * 4;
        for (size_t j0 = 0; j0 < n; j0 += 64) {
            const size_t cols = n - j0 < 64 ? n - j0 : 64;
            for (size_t j = 0; j < cols; j++) {
                int32_t s = 0;
                const uint8_t *xj = quads + (l0 + j0 + j) * 4;
                for (size_t st = 0; st < steps; st++) {
                    const int8_t *ws = wr + st * 32;
                    const uint8_t *xs = xj + offs[st];
                    for (size_t e = 0; e < 4; e++) s += (int32_t)ws[e] * (int32_t)xs[e];
                }
                row[j] = s;
            }
            if (rq) {
                so_i8_requantize(1, cols, row, cols, rq->bias ? rq->bias + i : NULL, rq->scale + i, rq->yzp, rq->lo, rq->hi,
                                 rq->is_signed, (uint8_t *)rq->y + i * rq->ldy + j0, rq->ldy, SO_ISA_SCALAR);
            } else {
                memcpy(acc + i * ldc + j0, row, cols * sizeof(int32_t));
            }
        }
    }
}

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,fma"))), apply_to = function)
static inline __mmask16 lanes16(size_t cols, size_t from) {
    return cols >= from + 16 ? (__mmask16)0xFFFF : cols > from ? (__mmask16)((1u << (cols - from)) - 1) : 0;
}

static void conv_direct_8x48_vnni(size_t m, size_t steps, const int8_t *wpk, const uint8_t *quads, const size_t *offs,
                                  size_t l0, size_t n, int32_t *acc, size_t ldc, const so_i8_requant *rq) {
    const size_t panel = steps * 32;
    for (size_t p = 0; p < m; p += 8) {
        const int32_t *ap = (const int32_t *)(wpk + (p / 8) * panel);
        const size_t rows = m - p < 8 ? m - p : 8;
        for (size_t j = 0; j < n; j += 48) {
            const size_t cols = n - j < 48 ? n - j : 48;
            __m512i c0[8], c1[8], c2[8];
            for (int r = 0; r < 8; r++) { c0[r] = _mm512_setzero_si512(); c1[r] = c0[r]; c2[r] = c0[r]; }
            const int32_t *a = ap;
            const uint8_t *base = quads + (l0 + j) * 4;
            for (size_t st = 0; st < steps; st++, a += 8) {
                const uint8_t *b = base + offs[st];
                const __m512i b0 = _mm512_loadu_si512((const void *)b);
                const __m512i b1 = _mm512_loadu_si512((const void *)(b + 64));
                const __m512i b2 = _mm512_loadu_si512((const void *)(b + 128));
                for (int r = 0; r < 8; r++) {
                    const __m512i w = _mm512_set1_epi32(a[r]);
                    c0[r] = _mm512_dpbusd_epi32(c0[r], b0, w);
                    c1[r] = _mm512_dpbusd_epi32(c1[r], b1, w);
                    c2[r] = _mm512_dpbusd_epi32(c2[r], b2, w);
                }
            }
            const __mmask16 k0 = lanes16(cols, 0), k1 = lanes16(cols, 16), k2 = lanes16(cols, 32);
            if (rq) {   /* requantized in registers (requant16_avx512), bytes stored */
                const __m512i vzp = _mm512_set1_epi32(rq->yzp), vlo = _mm512_set1_epi32(rq->lo), vhi = _mm512_set1_epi32(rq->hi);
                for (size_t r = 0; r < rows; r++) {
                    const size_t i = p + r;
                    const __m512i vb = _mm512_set1_epi32(rq->bias ? rq->bias[i] : 0);
                    const __m512 vs = _mm512_set1_ps(rq->scale[i]);
                    uint8_t *yo = (uint8_t *)rq->y + i * rq->ldy + j;
                    _mm_mask_storeu_epi8(yo, k0, requant16_avx512(c0[r], vb, vs, vzp, vlo, vhi));
                    _mm_mask_storeu_epi8(yo + 16, k1, requant16_avx512(c1[r], vb, vs, vzp, vlo, vhi));
                    _mm_mask_storeu_epi8(yo + 32, k2, requant16_avx512(c2[r], vb, vs, vzp, vlo, vhi));
                }
                continue;
            }
            for (size_t r = 0; r < rows; r++) {
                int32_t *o = acc + (p + r) * ldc + j;
                _mm512_mask_storeu_epi32(o, k0, c0[r]);
                _mm512_mask_storeu_epi32(o + 16, k1, c1[r]);
                _mm512_mask_storeu_epi32(o + 32, k2, c2[r]);
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

void so_i8_conv_direct(int isa, size_t m, size_t steps, const int8_t *wpk, const uint8_t *quads, const size_t *offs,
                       size_t l0, size_t n, int32_t *acc, size_t ldc, const so_i8_requant *rq) {
#if defined(__x86_64__)
    if (so_i8_conv_direct_fast(isa)) {
        conv_direct_8x48_vnni(m, steps, wpk, quads, offs, l0, n, acc, ldc, rq);
        return;
    }
#endif
    conv_direct_scalar(m, steps, wpk, quads, offs, l0, n, acc, ldc, rq);
}
