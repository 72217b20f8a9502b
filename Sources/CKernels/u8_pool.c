/*
 * 8-bit max pooling (so_pool.h): quantized models pool their bytes directly. Signed bytes are
 * pooled as unsigned ones with the sign bit flipped (x ^ 0x80 keeps their order), and flipped
 * back. Per output row: the vertical max of the window's input rows into a row buffer padded with
 * the lowest value, then the horizontal max along it (16 outputs at a time for strides 1 and 2).
 */
#include "so_pool.h"
#include "so_isa.h"
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__)
#include <emmintrin.h>
#endif

/* The row buffer: [0, pW) and [pW + iW, end) padding; past what the windows read, 64 bytes of
   slack for the vector blocks that run past the last output (strides <= 2: 16 outputs read at
   most 32 + 31 bytes beyond their first). */
static size_t row_len(const so_pool_geom *g) {
    size_t need = (size_t)(g->oW - 1) * (size_t)g->sW + (size_t)(g->kW - 1) * (size_t)g->dW + 1;
    size_t have = (size_t)g->pW + (size_t)g->iW;
    return (need > have ? need : have) + 64;
}

size_t so_u8_maxpool_scratch(const so_pool_geom *g) { return row_len(g) + 16; }

/* buf[pW + ix] = max over the valid rows of (x[row][ix] ^ flip); 0 (the lowest) elsewhere. */
static void vertical(const so_pool_geom *g, const uint8_t *x, const uint8_t *x_end, int oy, uint8_t flip, int vec, uint8_t *buf,
                     size_t len) {
    const size_t iw = (size_t)g->iW, pw = (size_t)g->pW;
    uint8_t *t = buf + pw;
    memset(buf, 0, pw);
    int first = 1;
    for (int ky = 0; ky < g->kH; ky++) {
        const int iy = oy * g->sH - g->pH + ky * g->dH;
        if (iy < 0 || iy >= g->iH) continue;
        const uint8_t *r = x + (size_t)iy * iw;
        size_t i = 0;
#if defined(__x86_64__)
        if (vec) {
            const __m128i f = _mm_set1_epi8((char)flip);
            for (; i < iw; i += 16) {
                __m128i v;
                if (r + i + 16 <= x_end) {   /* past the row end: the next row's bytes, undone below */
                    v = _mm_loadu_si128((const __m128i *)(r + i));
                } else {   /* the input's last bytes, without reading past them */
                    uint8_t tail[16] = {0};
                    memcpy(tail, r + i, iw - i);
                    v = _mm_loadu_si128((const __m128i *)tail);
                }
                v = _mm_xor_si128(v, f);
                if (!first) v = _mm_max_epu8(v, _mm_loadu_si128((const __m128i *)(t + i)));
                _mm_storeu_si128((__m128i *)(t + i), v);
            }
        }
#endif
        for (; i < iw; i++) {
            const uint8_t v = r[i] ^ flip;
            t[i] = first || v > t[i] ? v : t[i];
        }
        first = 0;
    }
    if (first) memset(t, 0, iw);   /* no input row under the window */
    memset(t + iw, 0, len - pw - iw);
}

/* y[ox] = max over kx of buf[ox * sW + kx * dW], flipped back. */
static void horizontal(const so_pool_geom *g, const uint8_t *buf, uint8_t flip, int vec, uint8_t *y) {
    const int ow = g->oW, sw = g->sW, dw = g->dW, kw = g->kW;
    int ox = 0;
#if defined(__x86_64__)
    if (vec && (sw == 1 || sw == 2)) {
        const __m128i f = _mm_set1_epi8((char)flip), low = _mm_set1_epi16(0x00FF);
        for (; ox < ow; ox += 16) {
            __m128i m = _mm_setzero_si128();
            for (int kx = 0; kx < kw; kx++) {
                const uint8_t *b = buf + (size_t)ox * (size_t)sw + (size_t)kx * (size_t)dw;
                __m128i v;
                if (sw == 1) {
                    v = _mm_loadu_si128((const __m128i *)b);
                } else {   /* the even bytes of 32: b[0], b[2], ..., b[30] */
                    const __m128i v0 = _mm_and_si128(_mm_loadu_si128((const __m128i *)b), low);
                    const __m128i v1 = _mm_and_si128(_mm_loadu_si128((const __m128i *)(b + 16)), low);
                    v = _mm_packus_epi16(v0, v1);
                }
                m = _mm_max_epu8(m, v);
            }
            m = _mm_xor_si128(m, f);
            if (ox + 16 <= ow) {
                _mm_storeu_si128((__m128i *)(y + ox), m);
            } else {
                uint8_t tail[16];
                _mm_storeu_si128((__m128i *)tail, m);
                memcpy(y + ox, tail, (size_t)(ow - ox));
            }
        }
        return;
    }
#endif
    for (; ox < ow; ox++) {
        uint8_t m = 0;
        for (int kx = 0; kx < kw; kx++) {
            const uint8_t v = buf[(size_t)ox * (size_t)sw + (size_t)kx * (size_t)dw];
            m = v > m ? v : m;
        }
        y[ox] = m ^ flip;
    }
}

void so_u8_maxpool(const so_pool_geom *g, const uint8_t *x, uint8_t *y, size_t planes, int is_signed, void *scratch,
                   int isa) {
    const uint8_t flip = is_signed ? 0x80 : 0;
    const int vec = isa > 0;
    const size_t len = row_len(g);
    const size_t in_plane = (size_t)g->iH * (size_t)g->iW, out_plane = (size_t)g->oH * (size_t)g->oW;
    uint8_t *buf = (uint8_t *)scratch;
    const uint8_t *x_end = x + planes * in_plane;
    for (size_t p = 0; p < planes; p++) {
        const uint8_t *xp = x + p * in_plane;
        uint8_t *yp = y + p * out_plane;
        for (int oy = 0; oy < g->oH; oy++) {
            vertical(g, xp, x_end, oy, flip, vec, buf, len);
            horizontal(g, buf, flip, vec, yp + (size_t)oy * (size_t)g->oW);
        }
    }
}
