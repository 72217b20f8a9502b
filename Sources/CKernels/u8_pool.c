/*
 * 8-bit max pooling (so_pool.h): quantized models pool their bytes directly. Signed bytes are
 * pooled as unsigned ones with the sign bit flipped (x ^ 0x80 keeps their order), and flipped
 * back. Per output row: the vertical max of the window's input rows into a row buffer padded with
 * the lowest value, then the horizontal max along it, a vector of outputs at a time for strides 1
 * and 2. The vector body is written once for a width V (under U8_POOL_TEMPLATE) and instantiated
 * for AVX2 (32 bytes) by including this file into itself.
 */
#ifndef U8_POOL_TEMPLATE

#include "so_pool.h"
#include "so_isa.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* The row buffer: [0, pW) and [pW + iW, end) padding; past what the windows read, 128 bytes of
   slack for the vector blocks that run past the last output (strides <= 2: a block of V outputs
   reads at most 2V + V - 1 bytes beyond its first, V <= 32). */
static size_t row_len(const so_pool_geom *g) {
    size_t need = (size_t)(g->oW - 1) * (size_t)g->sW + (size_t)(g->kW - 1) * (size_t)g->dW + 1;
    size_t have = (size_t)g->pW + (size_t)g->iW;
    return (need > have ? need : have) + 128;
}

size_t so_u8_maxpool_scratch(const so_pool_geom *g) { return row_len(g) + 32; }

/* The input rows under output row oy's window: their count, into rows[]. */
static int window_rows(const so_pool_geom *g, int oy, int *rows) {
    int n = 0;
    for (int ky = 0; ky < g->kH; ky++) {
        const int iy = oy * g->sH - g->pH + ky * g->dH;
        if (iy >= 0 && iy < g->iH) rows[n++] = iy;
    }
    return n;
}

static void pool_plane_scalar(const so_pool_geom *g, const uint8_t *x, uint8_t *y, uint8_t flip, uint8_t *buf, int *rows) {
    const size_t iw = (size_t)g->iW;
    uint8_t *t = buf + g->pW;
    for (int oy = 0; oy < g->oH; oy++) {
        const int n = window_rows(g, oy, rows);
        memset(t, 0, iw);
        for (int r = 0; r < n; r++) {
            const uint8_t *s = x + (size_t)rows[r] * iw;
            for (size_t i = 0; i < iw; i++) {
                const uint8_t v = s[i] ^ flip;
                t[i] = v > t[i] ? v : t[i];
            }
        }
        uint8_t *yo = y + (size_t)oy * (size_t)g->oW;
        for (int ox = 0; ox < g->oW; ox++) {
            uint8_t m = 0;
            for (int kx = 0; kx < g->kW; kx++) {
                const uint8_t v = buf[(size_t)ox * (size_t)g->sW + (size_t)kx * (size_t)g->dW];
                m = v > m ? v : m;
            }
            yo[ox] = m ^ flip;
        }
    }
}

#if defined(__x86_64__)
#define U8_POOL_TEMPLATE
#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#define V 32
#define SFX(name) name##_avx2
#include "u8_pool.c"
#undef V
#undef SFX
#pragma clang attribute pop
#undef U8_POOL_TEMPLATE
#endif

void so_u8_maxpool(const so_pool_geom *g, const uint8_t *x, uint8_t *y, size_t planes, int is_signed, void *scratch,
                   int isa) {
    const uint8_t flip = is_signed ? 0x80 : 0;
    const size_t len = row_len(g);
    const size_t in_plane = (size_t)g->iH * (size_t)g->iW, out_plane = (size_t)g->oH * (size_t)g->oW;
    uint8_t *buf = (uint8_t *)scratch;
    const uint8_t *x_end = x + planes * in_plane;
    uint8_t *y_end = y + planes * out_plane;
    int rows_small[16];
    int *rows = g->kH <= 16 ? rows_small : (int *)malloc(sizeof(int) * (size_t)g->kH);
    memset(buf, 0, len);
    for (size_t p = 0; p < planes; p++) {
        const uint8_t *xp = x + p * in_plane;
        uint8_t *yp = y + p * out_plane;
#if defined(__x86_64__)
        const int vec = g->sW <= 2;
        if (vec && isa >= SO_ISA_AVX2) { pool_plane_avx2(g, xp, x_end, yp, y_end, flip, buf, rows); continue; }
#endif
        pool_plane_scalar(g, xp, yp, flip, buf, rows);
    }
    (void)x_end; (void)y_end; (void)isa;
    if (rows != rows_small) free(rows);
}

#else /* U8_POOL_TEMPLATE: V bytes per vector, SFX(name) */

#if V != 32
#error "u8_pool.c: the template is written for V == 32 (AVX2)"
#endif
#define VT __m256i
#define VLD(p) _mm256_loadu_si256((const __m256i *)(p))
#define VST(p, v) _mm256_storeu_si256((__m256i *)(p), (v))
#define VSET8(c) _mm256_set1_epi8((char)(c))
#define VSET16(c) _mm256_set1_epi16((short)(c))
#define VZERO() _mm256_setzero_si256()
#define VXOR(a, b) _mm256_xor_si256((a), (b))
#define VAND(a, b) _mm256_and_si256((a), (b))
#define VMAX(a, b) _mm256_max_epu8((a), (b))
/* packus works per 128-bit lane: put the 64-bit quarters back in order */
#define VPACK(a, b) _mm256_permute4x64_epi64(_mm256_packus_epi16((a), (b)), 0xD8)

/* One plane. Vertical: buf[pW + ix] = max over the window's rows of x[row][ix] ^ flip, V bytes at a
   time; a load past a row's end reads the next row's bytes (within the input: x_end), stored past
   iW and zeroed again. Horizontal: V outputs at a time; a block past the row's end stores into the
   next row (rewritten after) unless it would pass the output's end (y_end). */
static void SFX(pool_plane)(const so_pool_geom *g, const uint8_t *x, const uint8_t *x_end, uint8_t *y, uint8_t *y_end,
                            uint8_t flip, uint8_t *buf, int *rows) {
    const size_t iw = (size_t)g->iW;
    const int ow = g->oW, sw = g->sW, dw = g->dW, kw = g->kW;
    uint8_t *t = buf + g->pW;
    const VT f = VSET8(flip), low = VSET16(0x00FF);
    for (int oy = 0; oy < g->oH; oy++) {
        const int n = window_rows(g, oy, rows);
        if (n == 0) memset(t, 0, iw);   /* no input row under the window: the lowest value */
        for (int r = 0; r < n; r++) {
            const uint8_t *s = x + (size_t)rows[r] * iw;
            for (size_t i = 0; i < iw; i += V) {
                VT v;
                if (s + i + V <= x_end) {
                    v = VLD(s + i);
                } else {   /* the input's last bytes, without reading past them */
                    uint8_t tail[V] = {0};
                    memcpy(tail, s + i, iw - i);
                    v = VLD(tail);
                }
                v = VXOR(v, f);
                if (r > 0) v = VMAX(v, VLD(t + i));
                VST(t + i, v);
            }
        }
        memset(t + iw, 0, V);
        uint8_t *yo = y + (size_t)oy * (size_t)ow;
        for (int ox = 0; ox < ow; ox += V) {
            VT m = VZERO();
            for (int kx = 0; kx < kw; kx++) {
                const uint8_t *b = buf + (size_t)ox * (size_t)sw + (size_t)kx * (size_t)dw;
                if (sw == 1) {
                    m = VMAX(m, VLD(b));
                } else {   /* the even bytes of 2V: b[0], b[2], ... */
                    m = VMAX(m, VPACK(VAND(VLD(b), low), VAND(VLD(b + V), low)));
                }
            }
            m = VXOR(m, f);
            if (yo + ox + V <= y_end) {
                VST(yo + ox, m);
            } else {
                uint8_t tail[V];
                VST(tail, m);
                memcpy(yo + ox, tail, (size_t)(ow - ox));
            }
        }
    }
}

#undef VT
#undef VLD
#undef VST
#undef VSET8
#undef VSET16
#undef VZERO
#undef VXOR
#undef VAND
#undef VMAX
#undef VPACK

#endif /* U8_POOL_TEMPLATE */
