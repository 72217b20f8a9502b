/*
 * Direct integer convolution (see so_i8_conv.h): quad planes, weight packing, and the kernel.
 *   conv_direct_scalar      the reference (plain C, one int32 sum per element)
 *   conv_direct_8x48_vnni   AVX-512 VNNI: 8 output channels x 48 positions in 24 zmm accumulators
 *                           (16 or 32 for the last few positions);
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
#include "i8_shared.h"
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
            quads_16(_mm_xor_si128(_mm_loadu_si128((const __m128i *)(r0 + i)), vf),
                     _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r1 + i)), vf),
                     _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r2 + i)), vf),
                     _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r3 + i)), vf), d + 4 * i);
        }
    } else if (s == 2) {
        /* the even bytes of 32 (the low bytes of 16-bit lanes); the last vector reads byte 2i + 31,
           which must lie inside the run's bytes 0 .. 2n - 2 */
        const __m128i low = _mm_set1_epi16(0x00FF);
        for (; i + 16 <= n && 2 * i + 32 <= 2 * n - 1; i += 16) {
#define EVEN16(r) _mm_xor_si128(_mm_packus_epi16(_mm_and_si128(_mm_loadu_si128((const __m128i *)((r) + 2 * i)), low), \
                                                 _mm_and_si128(_mm_loadu_si128((const __m128i *)((r) + 2 * i + 16)), low)), vf)
            quads_16(EVEN16(r0), EVEN16(r1), EVEN16(r2), EVEN16(r3), d + 4 * i);
#undef EVEN16
        }
    }
    /* 8 at a time (rows of small maps are often shorter than 16): the same interleave on 8 bytes
       of each row; stride 2 reads bytes 2i .. 2i + 15, inside the run while i + 8 < n */
    if (s == 1 || s == 2) {
        const __m128i low = _mm_set1_epi16(0x00FF);
        for (; s == 1 ? i + 8 <= n : i + 8 < n; i += 8) {
            __m128i a0, a1, a2, a3;
            if (s == 1) {
                a0 = _mm_loadl_epi64((const __m128i *)(r0 + i)); a1 = _mm_loadl_epi64((const __m128i *)(r1 + i));
                a2 = _mm_loadl_epi64((const __m128i *)(r2 + i)); a3 = _mm_loadl_epi64((const __m128i *)(r3 + i));
            } else {
#define EVEN8(r) _mm_packus_epi16(_mm_and_si128(_mm_loadu_si128((const __m128i *)((r) + 2 * i)), low), _mm_setzero_si128())
                a0 = EVEN8(r0); a1 = EVEN8(r1); a2 = EVEN8(r2); a3 = EVEN8(r3);
#undef EVEN8
            }
            const __m128i t0 = _mm_unpacklo_epi8(_mm_xor_si128(a0, vf), _mm_xor_si128(a1, vf));
            const __m128i t1 = _mm_unpacklo_epi8(_mm_xor_si128(a2, vf), _mm_xor_si128(a3, vf));
            _mm_storeu_si128((__m128i *)(d + 4 * i), _mm_unpacklo_epi16(t0, t1));
            _mm_storeu_si128((__m128i *)(d + 4 * i + 16), _mm_unpackhi_epi16(t0, t1));
        }
    }
#endif
    for (; i < n; i++) {
        d[4 * i] = r0[i * s] ^ fx; d[4 * i + 1] = r1[i * s] ^ fx;
        d[4 * i + 2] = r2[i * s] ^ fx; d[4 * i + 3] = r3[i * s] ^ fx;
    }
}

void so_u8_conv_quads(const uint8_t *x, size_t c, size_t h, size_t w, size_t sh, size_t sw, ptrdiff_t pt, ptrdiff_t pl,
                      size_t hp, size_t wp, uint8_t fill, int flip, uint8_t *dst) {
    const size_t cq = (c + 3) / 4, plane = hp * wp * 4;
    const uint8_t fx = flip ? 0x80 : 0;
    const ptrdiff_t ssw = (ptrdiff_t)sw, ssh = (ptrdiff_t)sh, iw = (ptrdiff_t)w, ih = (ptrdiff_t)h;
    /* columns x of the quad image inside the input: xlo <= x < xhi (input column x * sw - pl) */
    ptrdiff_t xlo = pl > 0 ? (pl + ssw - 1) / ssw : 0;
    ptrdiff_t xhi = iw + pl > 0 ? (iw + pl + ssw - 1) / ssw : 0;
    if (xhi > (ptrdiff_t)wp) xhi = (ptrdiff_t)wp;
    if (xlo > xhi) xlo = xhi;
    const size_t n = (size_t)(xhi - xlo);
    const ptrdiff_t ix0 = xlo * ssw - pl;
    for (size_t q = 0; q < cq; q++) {
        uint8_t *p = dst + q * plane;
        const uint8_t *ch[4];
        for (size_t e = 0; e < 4; e++) ch[e] = x + (4 * q + e < c ? 4 * q + e : c - 1) * h * w;
        for (size_t y = 0; y < hp; y++) {
            uint8_t *row = p + y * wp * 4;
            const ptrdiff_t iy = (ptrdiff_t)y * ssh - pt;   /* input row */
            if (iy < 0 || iy >= ih || n == 0) { memset(row, fill, wp * 4); continue; }
            const size_t off = (size_t)(iy * iw + ix0);
            memset(row, fill, (size_t)xlo * 4);
            interleave_rows(ch[0] + off, ch[1] + off, ch[2] + off, ch[3] + off, n, sw, fx, row + xlo * 4);
            if ((size_t)xhi < wp) memset(row + xhi * 4, fill, (wp - (size_t)xhi) * 4);
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
                               size_t l0, size_t n, size_t wp, size_t ow, int32_t *acc, size_t ldc, const so_i8_requant *rq) {
    const size_t panel = steps * 32;
    for (size_t i = 0; i < m; i++) {
        const int8_t *wr = wpk + (i / 8) * panel + (i % 8) * 4;
        for (size_t l = l0; l < l0 + n; l++) {
            const size_t oy = l / wp, ox = l - oy * wp;
            if (ox >= ow) continue;
            int32_t s = 0;
            const uint8_t *xl = quads + l * 4;
            for (size_t st = 0; st < steps; st++) {
                const int8_t *ws = wr + st * 32;
                const uint8_t *xs = xl + offs[st];
                for (size_t e = 0; e < 4; e++) s += (int32_t)ws[e] * (int32_t)xs[e];
            }
            const size_t o = oy * ow + ox;
            if (rq) {
                so_i8_requantize(1, 1, &s, 1, rq->bias ? rq->bias + i : NULL, rq->scale + i, rq->yzp, rq->lo, rq->hi,
                                 rq->is_signed, (uint8_t *)rq->y + i * rq->ldy + o, rq->ldy, SO_ISA_SCALAR);
            } else {
                acc[i * ldc + o] = s;
            }
        }
    }
}

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,fma"))), apply_to = function)
static inline __mmask16 lanes16(size_t cols, size_t from) {
    return cols >= from + 16 ? (__mmask16)0xFFFF : cols > from ? (__mmask16)((1u << (cols - from)) - 1) : 0;
}

/* One tile: 8 output channels (rows of the panel at ap) x nv * 16 indices from l (cols of them
   computed), stored at their output positions (so_i8_conv_direct). */
static inline __attribute__((always_inline))
void tile_8xv_vnni(const int nv, size_t steps, const int32_t *ap, const uint8_t *quads, const size_t *offs, size_t rows,
                   size_t cols, size_t l, size_t wp, size_t ow, int32_t *acc, size_t ldc, const so_i8_requant *rq, size_t row0) {
    const uint8_t *base = quads + l * 4;
    __m512i c[8][3];
    for (int r = 0; r < 8; r++) for (int v = 0; v < nv; v++) c[r][v] = _mm512_setzero_si512();
    const int32_t *a = ap;
    for (size_t st = 0; st < steps; st++, a += 8) {
        const uint8_t *bs = base + offs[st];
        __m512i b[3];
        for (int v = 0; v < nv; v++) b[v] = _mm512_loadu_si512((const void *)(bs + 64 * v));
        for (int r = 0; r < 8; r++) {
            const __m512i w = _mm512_set1_epi32(a[r]);
            for (int v = 0; v < nv; v++) c[r][v] = _mm512_dpbusd_epi32(c[r][v], b[v], w);
        }
    }
    /* where each vector's lanes go: runs of consecutive outputs (a run ends at an output
       row's end), each a lane mask and the output position of the vector's lane 0 in that run */
    __mmask16 km[3][16];
    ptrdiff_t ko[3][16];
    int runs[3];
    for (int v = 0; v < nv; v++) {
        const size_t lv = l + 16 * (size_t)v, end = lv + (cols > 16 * (size_t)v ? (cols - 16 * (size_t)v < 16 ? cols - 16 * (size_t)v : 16) : 0);
        int nr = 0;
        for (size_t x = lv; x < end;) {
            const size_t oy = x / wp, ox = x - oy * wp;
            if (ox >= ow) { x = (oy + 1) * wp; continue; }
            const size_t re = end < oy * wp + ow ? end : oy * wp + ow;
            km[v][nr] = (__mmask16)(((1u << (re - lv)) - 1) & ~((1u << (x - lv)) - 1));
            ko[v][nr] = (ptrdiff_t)(oy * ow + ox) - (ptrdiff_t)(x - lv);
            nr++;
            x = re;
        }
        runs[v] = nr;
    }
    if (rq) {   /* requantized in registers (requant16_avx512), bytes stored */
        const __m512i vzp = _mm512_set1_epi32(rq->yzp);
            __m512 vlo, vhi;
            requant16_bounds(rq->yzp, rq->lo, rq->hi, &vlo, &vhi);
        for (size_t r = 0; r < rows; r++) {
            const size_t i = row0 + r;
            const __m512i vb = _mm512_set1_epi32(rq->bias ? rq->bias[i] : 0);
            const __m512 vs = _mm512_set1_ps(rq->scale[i]);
            uint8_t *yo = (uint8_t *)rq->y + i * rq->ldy;
            for (int v = 0; v < nv; v++) {
                const __m128i q = requant16_avx512(c[r][v], vb, vs, vzp, vlo, vhi);
                for (int u = 0; u < runs[v]; u++) _mm_mask_storeu_epi8(yo + ko[v][u], km[v][u], q);
            }
        }
        return;
    }
    for (size_t r = 0; r < rows; r++) {
        int32_t *o = acc + (row0 + r) * ldc;
        for (int v = 0; v < nv; v++) {
            for (int u = 0; u < runs[v]; u++) _mm512_mask_storeu_epi32(o + ko[v][u], km[v][u], c[r][v]);
        }
    }
}

/* Tiles of 48 positions, and one of 16 or 32 for what is left (rather than a 48 mostly empty). */
static void conv_direct_8x48_vnni(size_t m, size_t steps, const int8_t *wpk, const uint8_t *quads, const size_t *offs,
                                  size_t l0, size_t n, size_t wp, size_t ow, int32_t *acc, size_t ldc, const so_i8_requant *rq) {
    const size_t panel = steps * 32;
    for (size_t p = 0; p < m; p += 8) {
        const int32_t *ap = (const int32_t *)(wpk + (p / 8) * panel);
        const size_t rows = m - p < 8 ? m - p : 8;
        for (size_t j = 0; j < n;) {
            const size_t left = n - j, l = l0 + j;
            if (left > 32) { tile_8xv_vnni(3, steps, ap, quads, offs, rows, left < 48 ? left : 48, l, wp, ow, acc, ldc, rq, p); j += 48; }
            else if (left > 16) { tile_8xv_vnni(2, steps, ap, quads, offs, rows, left, l, wp, ow, acc, ldc, rq, p); j += 32; }
            else { tile_8xv_vnni(1, steps, ap, quads, offs, rows, left, l, wp, ow, acc, ldc, rq, p); j += 16; }
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
                       size_t l0, size_t n, size_t wp, size_t ow, int32_t *acc, size_t ldc, const so_i8_requant *rq) {
#if defined(__x86_64__)
    if (so_i8_conv_direct_fast(isa)) {
        conv_direct_8x48_vnni(m, steps, wpk, quads, offs, l0, n, wp, ow, acc, ldc, rq);
        return;
    }
#endif
    conv_direct_scalar(m, steps, wpk, quads, offs, l0, n, wp, ow, acc, ldc, rq);
}
