/*
 * im2col into packed GEMM panels (see so_im2col.h). One plain-C body, instantiated per ISA so the
 * compiler vectorizes the copies for each level; every variant writes the same values.
 */
#include "so_isa.h"
#include "so_im2col.h"
#include <stdint.h>
#include <string.h>

size_t so_f32_im2col_packed_floats(int nr, size_t k, size_t cols) {
    return ((cols + (size_t)nr - 1) / (size_t)nr) * (size_t)nr * k;
}

typedef float im2col_v8 __attribute__((ext_vector_type(8), aligned(4)));

/* All k rows of a panel whose nr columns lie in one output row, whose tap (0, 0, 0) reads input
   (id0, ih0, iw0) for the first column; returns the end of the panel. */
static inline __attribute__((always_inline))
float *panel_whole(float *restrict d, const float *x, size_t channels, const so_im2col_geom *g, long id0, long ih0,
                   long iw0, long nr) {
    const long kD = g->kD, kH = g->kH, kW = g->kW, iD = g->iD, iH = g->iH, iW = g->iW;
    const long sW = g->sW, dD = g->dD, dH = g->dH, dW = g->dW;
    const long inPlane = iD * iH * iW;
    /* the taps whose runs lie inside the input row: kw in [kwLo, kwHi) */
    long kwLo = 0, kwHi = kW;
    while (kwLo < kW && iw0 + kwLo * dW < 0) kwLo++;
    while (kwHi > kwLo && iw0 + (kwHi - 1) * dW + (nr - 1) * sW >= iW) kwHi--;
    const int room2 = sW == 2 && iw0 + (kwHi - 1) * dW + 2 * nr <= iW; /* stride-2 vector loads stay inside */
    for (long c = 0; c < (long)channels; c++) {
        const float *xc = x + c * inPlane;
        for (long kd = 0; kd < kD; kd++) {
            const long id = id0 + kd * dD;
            for (long kh = 0; kh < kH; kh++) {
                const long ih = ih0 + kh * dH;
                if (id < 0 || id >= iD || ih < 0 || ih >= iH) {
                    for (long i = 0; i < nr * kW; i++) d[i] = 0.0f;
                    d += nr * kW;
                    continue;
                }
                const float *row = xc + (id * iH + ih) * iW + iw0;
                long kw = 0;
                for (; kw < kwLo; kw++, d += nr)
                    for (long i = 0; i < nr; i++) {
                        const long iw = iw0 + kw * dW + i * sW;
                        d[i] = iw >= 0 && iw < iW ? row[kw * dW + i * sW] : 0.0f;
                    }
                if (sW == 1) {
                    for (; kw < kwHi; kw++, d += nr)
                        for (long i = 0; i < nr; i += 8)
                            *(im2col_v8 *)(d + i) = *(const im2col_v8 *)(row + kw * dW + i);
                } else if (room2) {
                    for (; kw < kwHi; kw++, d += nr)
                        for (long i = 0; i < nr; i += 8) {
                            const float *s = row + kw * dW + 2 * i;
                            const im2col_v8 a = *(const im2col_v8 *)s, b = *(const im2col_v8 *)(s + 8);
                            *(im2col_v8 *)(d + i) = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
                        }
                } else {
                    for (; kw < kwHi; kw++, d += nr)
                        for (long i = 0; i < nr; i++) d[i] = row[kw * dW + i * sW];
                }
                for (; kw < kW; kw++, d += nr)
                    for (long i = 0; i < nr; i++) {
                        const long iw = iw0 + kw * dW + i * sW;
                        d[i] = iw >= 0 && iw < iW ? row[kw * dW + i * sW] : 0.0f;
                    }
            }
        }
    }
    return d;
}

/* A 2-D panel whose columns do not lie in one output row (small planes, the last panel): for a tap
   (kh, kw) the lanes' input offsets and whether they fall in the padding are the same for every
   channel, so they are found once per tap and each channel's row of the panel is a gather with
   them (lanes past `cols` and padding read as zero). Returns the end of the panel. */
static inline __attribute__((always_inline))
float *panel_gather(float *restrict d, const float *x, size_t channels, const so_im2col_geom *g, long ps,
                    long cols, long nr) {
    const long kH = g->kH, kW = g->kW, iH = g->iH, iW = g->iW, oW = g->oW;
    const long taps = kH * kW, inPlane = iH * iW;
    long ihb[32], iwb[32];
    for (long lane = 0; lane < nr; lane++) {
        const long p = ps + lane, oh = p / oW, ow = p - oh * oW;
        ihb[lane] = lane < cols ? oh * g->sH - g->pH : -(1L << 40);   /* past cols: never inside */
        iwb[lane] = ow * g->sW - g->pW;
    }
    for (long kh = 0; kh < kH; kh++) {
        for (long kw = 0; kw < kW; kw++) {
            int32_t off[32], inside[32];
            for (long lane = 0; lane < nr; lane++) {
                const long ih = ihb[lane] + kh * g->dH, iw = iwb[lane] + kw * g->dW;
                const int in = ih >= 0 && ih < iH && iw >= 0 && iw < iW;
                inside[lane] = in ? -1 : 0;
                off[lane] = in ? (int32_t)(ih * iW + iw) : 0;
            }
            float *restrict o = d + (kh * kW + kw) * nr;
            for (long c = 0; c < (long)channels; c++, o += taps * nr) {
                const float *xc = x + c * inPlane;
                /* every lane loads (offset 0 for padding), then padding is selected away: no branches */
                for (long lane = 0; lane < nr; lane++) {
                    const float v = xc[off[lane]];
                    o[lane] = inside[lane] ? v : 0.0f;
                }
            }
        }
    }
    return d + (long)channels * taps * nr;
}

/*
 * Panel by panel (each panel's nr * k floats are written in order). A panel's columns are split
 * into runs that lie in one output row (one run when the panel does, up to nr on tiny planes); per
 * row of the column matrix a run is one strided run of an input row (vector copies for a whole
 * panel at strides 1 and 2) or zeros for a padding row, with bounds checked per element only where
 * the run touches the left / right padding.
 */
static inline __attribute__((always_inline))
void im2col_body(const float *x, size_t channels, const so_im2col_geom *g, size_t p0, size_t p1, int nr_,
                 float *dst) {
    if (p1 <= p0) return;
    const long nr = nr_;
    const long n = (long)(p1 - p0);
    const long kD = g->kD, kH = g->kH, kW = g->kW;
    const long iD = g->iD, iH = g->iH, iW = g->iW, oH = g->oH, oW = g->oW;
    const long sD = g->sD, sH = g->sH, sW = g->sW, dD = g->dD, dH = g->dH, dW = g->dW;
    const long pD = g->pD, pH = g->pH, pW = g->pW;
    const long k = (long)channels * kD * kH * kW;
    const long inPlane = iD * iH * iW, oHW = oH * oW;
    const long panels = (n + nr - 1) / nr;
    /* runs of the current panel: first lane, length, input origin of tap (0, 0, 0) */
    long rLane[32], rLen[32], rId[32], rIh[32], rIw[32];
    for (long q = 0; q < panels; q++) {
        float *restrict d = dst + q * nr * k;
        const long ps = (long)p0 + q * nr;
        const long cols = n - q * nr < nr ? n - q * nr : nr;
        long runs = 0;
        {
            long od = ps / oHW, rem = ps - od * oHW, oh = rem / oW, ow = rem - oh * oW;
            for (long lane = 0; lane < cols;) {
                long len = oW - ow < cols - lane ? oW - ow : cols - lane;
                rLane[runs] = lane;
                rLen[runs] = len;
                rId[runs] = od * sD - pD;
                rIh[runs] = oh * sH - pH;
                rIw[runs] = ow * sW - pW;
                runs++;
                lane += len;
                ow += len;
                if (ow == oW) { ow = 0; if (++oh == oH) { oh = 0; od++; } }
            }
        }
        if (runs == 1 && cols == nr) {
            d = panel_whole(d, x, channels, g, rId[0], rIh[0], rIw[0], nr);
            continue;
        }
        if (iD == 1 && kD == 1 && g->oD == 1 && inPlane < (1L << 31)) {
            d = panel_gather(d, x, channels, g, ps, cols, nr);
            continue;
        }
        for (long c = 0; c < (long)channels; c++) {
            const float *xc = x + c * inPlane;
            for (long kd = 0; kd < kD; kd++)
            for (long kh = 0; kh < kH; kh++)
            for (long kw = 0; kw < kW; kw++, d += nr) {
                for (long r = 0; r < runs; r++) {
                    float *restrict dd = d + rLane[r];
                    const long len = rLen[r];
                    const long id = rId[r] + kd * dD, ih = rIh[r] + kh * dH;
                    if (id < 0 || id >= iD || ih < 0 || ih >= iH) {
                        for (long i = 0; i < len; i++) dd[i] = 0.0f;
                        continue;
                    }
                    const float *row = xc + (id * iH + ih) * iW;
                    const long iw0 = rIw[r] + kw * dW;
                    if (iw0 >= 0 && iw0 + (len - 1) * sW < iW) {
                        if (sW == 1) {
                            for (long i = 0; i < len; i++) dd[i] = row[iw0 + i];
                        } else {
                            for (long i = 0; i < len; i++) dd[i] = row[iw0 + i * sW];
                        }
                    } else {
                        for (long i = 0; i < len; i++) {
                            const long iw = iw0 + i * sW;
                            dd[i] = iw >= 0 && iw < iW ? row[iw] : 0.0f;
                        }
                    }
                }
                for (long i = cols; i < nr; i++) d[i] = 0.0f; /* lanes past the last column */
            }
        }
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
