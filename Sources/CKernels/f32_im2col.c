/*
 * im2col into packed GEMM panels (see so_im2col.h). One plain-C body, instantiated per ISA so the
 * compiler vectorizes the copies for each level; every variant writes the same values.
 */
#include "so_isa.h"
#include "so_im2col.h"
#include <string.h>

size_t so_f32_im2col_packed_floats(int nr, size_t k, size_t cols) {
    return ((cols + (size_t)nr - 1) / (size_t)nr) * (size_t)nr * k;
}

/* Writes columns [j, j + len) of one row (all in one panel, starting at lane `lane`) from
   output positions ow0 .. ow0 + len - 1 of one output row, where the input row is `src`
   (NULL: the whole row is padding) and input column = ow * sw + off. */
static inline __attribute__((always_inline))
void piece(float *restrict d, const float *restrict src, long ow0, long len, long sw, long off, long lo, long hi) {
    if (!src) { memset(d, 0, (size_t)len * sizeof(float)); return; }
    long a = ow0 > lo ? ow0 : lo, b = ow0 + len < hi ? ow0 + len : hi;
    if (b <= a) { memset(d, 0, (size_t)len * sizeof(float)); return; }
    if (a > ow0) memset(d, 0, (size_t)(a - ow0) * sizeof(float));
    float *restrict dd = d + (a - ow0);
    const float *s = src + a * sw + off;
    long n = b - a;
    if (sw == 1) {
        for (long i = 0; i < n; i++) dd[i] = s[i];
    } else if (sw == 2) {
        for (long i = 0; i < n; i++) dd[i] = s[2 * i];
    } else {
        for (long i = 0; i < n; i++) dd[i] = s[i * sw];
    }
    if (ow0 + len > b) memset(d + (b - ow0), 0, (size_t)(ow0 + len - b) * sizeof(float));
}

static inline __attribute__((always_inline))
void im2col_body(const float *x, size_t channels, const so_im2col_geom *g, size_t p0, size_t p1, int nr_,
                 float *dst) {
    if (p1 <= p0) return;
    const long nr = nr_;
    const long n = (long)(p1 - p0);
    const long ksz = g->kD * g->kH * g->kW;
    const long k = (long)channels * ksz;
    const long panelStride = nr * k;
    const long inPlane = g->iD * g->iH * g->iW;
    long row = 0;
    for (long c = 0; c < (long)channels; c++) {
        const float *xc = x + c * inPlane;
        for (long kd = 0; kd < g->kD; kd++)
        for (long kh = 0; kh < g->kH; kh++)
        for (long kw = 0; kw < g->kW; kw++, row++) {
            const long off = kw * g->dW - g->pW;
            /* valid output columns: 0 <= ow * sW + off < iW */
            long lo = off >= 0 ? 0 : (-off + g->sW - 1) / g->sW;
            long hi = off >= g->iW ? 0 : (g->iW - off + g->sW - 1) / g->sW;
            if (hi > g->oW) hi = g->oW;
            if (lo > hi) lo = hi;
            /* walk the columns once: output row by output row, each run split at panel edges */
            float *panel = dst + row * nr;   /* row `row` of the current panel */
            long lane = 0;
            long r = (long)p0 / g->oW;
            long ow0 = (long)p0 - r * g->oW;
            long od = r / g->oH, oh = r - od * g->oH;
            long p = (long)p0;
            while (p < (long)p1) {
                long ow1 = g->oW;
                if (ow1 - ow0 > (long)p1 - p) ow1 = ow0 + ((long)p1 - p);
                const long id = od * g->sD - g->pD + kd * g->dD;
                const long ih = oh * g->sH - g->pH + kh * g->dH;
                const float *src = (id < 0 || id >= g->iD || ih < 0 || ih >= g->iH)
                    ? NULL : xc + (id * g->iH + ih) * g->iW;
                for (long ow = ow0; ow < ow1;) {
                    long len = nr - lane;
                    if (len > ow1 - ow) len = ow1 - ow;
                    piece(panel + lane, src, ow, len, g->sW, off, lo, hi);
                    ow += len;
                    lane += len;
                    if (lane == nr) { lane = 0; panel += panelStride; }
                }
                p += ow1 - ow0;
                ow0 = 0;
                if (++oh == g->oH) { oh = 0; od++; }
            }
        }
    }
    /* zero lanes past the last column */
    const long tail = n % nr;
    if (tail) {
        float *last = dst + (n / nr) * panelStride;
        for (long rr = 0; rr < k; rr++) memset(last + rr * nr + tail, 0, (size_t)(nr - tail) * sizeof(float));
    }
}

/* The GEMM's panel widths as compile-time constants (the lane arithmetic becomes shifts and masks). */
#define IM2COL_DISPATCH                                                    \
    switch (nr) {                                                          \
    case 8: im2col_body(x, channels, g, p0, p1, 8, dst); break;            \
    case 16: im2col_body(x, channels, g, p0, p1, 16, dst); break;          \
    case 32: im2col_body(x, channels, g, p0, p1, 32, dst); break;          \
    default: im2col_body(x, channels, g, p0, p1, nr, dst); break;          \
    }

static void im2col_packed_scalar(const float *x, size_t channels, const so_im2col_geom *g, size_t p0, size_t p1,
                                 int nr, float *dst) {
    IM2COL_DISPATCH
}

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
static void im2col_packed_avx2(const float *x, size_t channels, const so_im2col_geom *g, size_t p0, size_t p1,
                               int nr, float *dst) {
    IM2COL_DISPATCH
}
#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c"))), apply_to = function)
static void im2col_packed_avx512(const float *x, size_t channels, const so_im2col_geom *g, size_t p0, size_t p1,
                                 int nr, float *dst) {
    IM2COL_DISPATCH
}
#pragma clang attribute pop
#endif

so_f32_im2col_packed_fn so_f32_im2col_packed_select(int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX512) return im2col_packed_avx512;
    if (isa >= SO_ISA_AVX2) return im2col_packed_avx2;
#endif
    (void)isa;
    return im2col_packed_scalar;
}
