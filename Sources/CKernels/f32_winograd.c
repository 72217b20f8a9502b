/*
 * Winograd F(2x2, 3x3) transforms (see so_winograd.h). The transforms are written once as
 * plain C over contiguous rows of tiles and instantiated per ISA (scalar reference, AVX2,
 * AVX-512) with per-function target attributes; the compiler vectorizes them for each level.
 * Every variant performs the same additions in the same order, so all give identical results.
 *
 *   B^T = | 1  0 -1  0 |    G = | 1    0    0   |    A^T = | 1  1  1  0 |
 *         | 0  1  1  0 |        | 1/2  1/2  1/2 |          | 0  1 -1 -1 |
 *         | 0 -1  1  0 |        | 1/2 -1/2  1/2 |
 *         | 0  1  0 -1 |        | 0    0    1   |
 */
#include "so_isa.h"
#include "so_winograd.h"
#include "so_eltwise.h"
#include <string.h>

#pragma clang fp contract(off)

/* u[xi] = (G g G^T)[xi] for one 3x3 kernel g (row-major). */
static inline __attribute__((always_inline)) void weight_tile(const float *g, float u[16]) {
    float t[4][3]; /* G g */
    for (int c = 0; c < 3; c++) {
        float g0 = g[c], g1 = g[3 + c], g2 = g[6 + c];
        t[0][c] = g0;
        t[1][c] = 0.5f * (g0 + g1 + g2);
        t[2][c] = 0.5f * (g0 - g1 + g2);
        t[3][c] = g2;
    }
    for (int r = 0; r < 4; r++) { /* (G g) G^T */
        float a = t[r][0], b = t[r][1], c = t[r][2];
        u[r * 4 + 0] = a;
        u[r * 4 + 1] = 0.5f * (a + b + c);
        u[r * 4 + 2] = 0.5f * (a - b + c);
        u[r * 4 + 3] = c;
    }
}

void so_f32_wino2x2_weights(size_t outc, size_t inc, const float *w, float *u) {
    const size_t plane = outc * inc;
    for (size_t oc = 0; oc < outc; oc++) {
        for (size_t ic = 0; ic < inc; ic++) {
            float t[16];
            weight_tile(w + (oc * inc + ic) * 9, t);
            for (int xi = 0; xi < 16; xi++) u[(size_t)xi * plane + oc * inc + ic] = t[xi];
        }
    }
}

/* Packed form, a block of input channels of one panel at a time: the panel's 3x3 kernels are first
 * gathered into nine planes (g[k][j], j = ic * mr + r over the block: the packed order), then the
 * 16 U values of every (ic, r) are computed with weight_tile over contiguous j (a loop the
 * compiler vectorizes; same bits) and stored sequentially into each dst[xi], instead of 16
 * scattered stores per kernel. */
#define WINO_WEIGHT_BLOCK 1024   /* floats per plane: 9 planes of 4 KiB, about L1's size */
static inline __attribute__((always_inline))
void weights_packed_body(size_t outc, size_t inc, const float *w, int mr, float *const *dst) {
    const size_t smr = (size_t)mr;
    const size_t panels = (outc + smr - 1) / smr;
    const size_t icb = WINO_WEIGHT_BLOCK / smr > 0 ? WINO_WEIGHT_BLOCK / smr : 1;
    float g[9][WINO_WEIGHT_BLOCK];
    for (size_t p = 0; p < panels; p++) {
        for (size_t i0 = 0; i0 < inc; i0 += icb) {
            const size_t i1 = i0 + icb < inc ? i0 + icb : inc;
            const size_t n = (i1 - i0) * smr;
            for (size_t r = 0; r < smr; r++) {
                const size_t oc = p * smr + r;
                if (oc >= outc) {   /* rows past outC stay zero */
                    for (size_t ic = i0; ic < i1; ic++)
                        for (int k = 0; k < 9; k++) g[k][(ic - i0) * smr + r] = 0;
                    continue;
                }
                const float *src = w + (oc * inc + i0) * 9;
                for (size_t ic = i0; ic < i1; ic++, src += 9)
                    for (int k = 0; k < 9; k++) g[k][(ic - i0) * smr + r] = src[k];
            }
            const size_t at = p * smr * inc + i0 * smr;
            float *restrict d[16];
            for (int xi = 0; xi < 16; xi++) d[xi] = dst[xi] + at;
            for (size_t j = 0; j < n; j++) {
                float gk[9], u[16];
                for (int k = 0; k < 9; k++) gk[k] = g[k][j];
                weight_tile(gk, u);
                for (int xi = 0; xi < 16; xi++) d[xi][j] = u[xi];
            }
        }
    }
}

static void weights_packed_scalar(size_t outc, size_t inc, const float *w, int mr, float *const *dst) {
    weights_packed_body(outc, inc, w, mr, dst);
}
#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
static void weights_packed_avx2(size_t outc, size_t inc, const float *w, int mr, float *const *dst) {
    weights_packed_body(outc, inc, w, mr, dst);
}
#pragma clang attribute pop
#endif

void so_f32_wino2x2_weights_packed(size_t outc, size_t inc, const float *w, int mr, float *const *dst) {
#if defined(__x86_64__)
    if (so_isa_selected() >= SO_ISA_AVX2) { weights_packed_avx2(outc, inc, w, mr, dst); return; }
#endif
    weights_packed_scalar(outc, inc, w, mr, dst);
}

size_t so_f32_wino2x2_scratch_floats(size_t bw) { return 9 * (2 * bw + 4) + 16; }   /* rows 4..7: B^T d; 8: zeros */

/* The transforms' inner loops take their outputs as restrict parameters: clang keeps that
 * no-alias promise when it inlines them (it ignores restrict on local pointers), which is what
 * lets it vectorize the loops at each ISA level. */
static inline __attribute__((always_inline))
void input_rows(const float *d0, const float *d1, const float *d2, const float *d3, float *restrict r0,
                float *restrict r1, float *restrict r2, float *restrict r3, size_t width) {
    for (size_t j = 0; j < width; j++) {
        r0[j] = d0[j] - d2[j];
        r1[j] = d1[j] + d2[j];
        r2[j] = d2[j] - d1[j];
        r3[j] = d1[j] - d3[j];
    }
}

static inline __attribute__((always_inline))
void input_cols(const float *s, float *restrict o0, float *restrict o1, float *restrict o2, float *restrict o3,
                size_t len) {
    for (size_t tx = 0; tx < len; tx++) {
        float a = s[2 * tx], b = s[2 * tx + 1], c = s[2 * tx + 2], d = s[2 * tx + 3];
        o0[tx] = a - c;
        o1[tx] = b + c;
        o2[tx] = c - b;
        o3[tx] = b - d;
    }
}

static inline __attribute__((always_inline))
void output_tiles(const float *const *q, float *restrict y0, float *restrict y1, size_t tw) {
    for (size_t tx = 0; tx < tw; tx++) {
        /* A^T m: two rows of four */
        float s00 = q[0][tx] + q[4][tx] + q[8][tx];
        float s01 = q[1][tx] + q[5][tx] + q[9][tx];
        float s02 = q[2][tx] + q[6][tx] + q[10][tx];
        float s03 = q[3][tx] + q[7][tx] + q[11][tx];
        float s10 = q[4][tx] - q[8][tx] - q[12][tx];
        float s11 = q[5][tx] - q[9][tx] - q[13][tx];
        float s12 = q[6][tx] - q[10][tx] - q[14][tx];
        float s13 = q[7][tx] - q[11][tx] - q[15][tx];
        /* (A^T m) A */
        y0[2 * tx] = s00 + s01 + s02;
        y0[2 * tx + 1] = s01 - s02 - s03;
        y1[2 * tx] = s10 + s11 + s12;
        y1[2 * tx + 1] = s11 - s12 - s13;
    }
}

static inline __attribute__((always_inline))
void input_body(const float *x, size_t inc, size_t ih, size_t iw, long ph, long pw, size_t ty0, size_t ty1,
                size_t tx0, size_t tx1, size_t nr, float *restrict v, float *restrict scratch) {
    const size_t bw = tx1 - tx0;              /* tiles per tile row of the block */
    const size_t width = 2 * bw + 2;          /* padded columns one tile row of the block reads */
    const size_t stride = 2 * bw + 4;
    const size_t nt = (ty1 - ty0) * bw;
    const size_t ntp = (nt + nr - 1) / nr * nr;   /* tiles rounded up to whole panels */
    const size_t xistride = inc * ntp;
    const size_t panel = nr * inc;                /* floats between consecutive panels */
    float *rr[4];
    for (int r = 0; r < 4; r++) rr[r] = scratch + (4 + r) * stride;
    float *zero = scratch + 8 * stride;           /* a row of zero padding (rows above or below) */
    memset(zero, 0, width * sizeof(float));
    /* padded column j reads input column c0 + j; columns lo..<hi of the padded row hold data. The
       row combinations run on those columns straight from the input rows (no copy); the padding
       columns combine zeros, so B^T d is zero there. */
    const long c0 = 2 * (long)tx0 - pw;
    long lo = c0 < 0 ? -c0 : 0;
    long hi = (long)iw - c0;
    if (hi > (long)width) hi = (long)width;
    if (lo > (long)width) lo = (long)width;
    if (hi < lo) hi = lo;
    for (size_t ic = 0; ic < inc; ic++) {
        const float *plane = x + ic * ih * iw;
        for (size_t ty = ty0; ty < ty1; ty++) {
            const float *rows[4];
            for (int r = 0; r < 4; r++) {
                long y = (long)(2 * ty) - ph + r;
                rows[r] = (y < 0 || y >= (long)ih) ? zero : plane + (size_t)y * iw + (size_t)(c0 + lo);
            }
            /* B^T d: row combinations */
            for (int i = 0; i < 4; i++) {
                if (lo > 0) memset(rr[i], 0, (size_t)lo * sizeof(float));
                if ((size_t)hi < width) memset(rr[i] + hi, 0, (width - (size_t)hi) * sizeof(float));
            }
            if (hi > lo)
                input_rows(rows[0], rows[1], rows[2], rows[3], rr[0] + lo, rr[1] + lo, rr[2] + lo, rr[3] + lo,
                           (size_t)(hi - lo));
            /* (B^T d) B: column combinations per tile, written in runs that stay inside one panel */
            const size_t t0 = (ty - ty0) * bw;
            for (size_t bx = 0; bx < bw;) {
                const size_t t = t0 + bx, lane = t % nr;
                size_t len = nr - lane;
                if (len > bw - bx) len = bw - bx;
                float *base = v + (t / nr) * panel + ic * nr + lane;
                for (int i = 0; i < 4; i++) {
                    input_cols(rr[i] + 2 * bx, base + (size_t)(i * 4 + 0) * xistride, base + (size_t)(i * 4 + 1) * xistride,
                               base + (size_t)(i * 4 + 2) * xistride, base + (size_t)(i * 4 + 3) * xistride, len);
                }
                bx += len;
            }
        }
    }
    /* lanes past the last tile of the last panel are zero (the GEMM reads whole panels) */
    if (ntp > nt) {
        const size_t lane = nt % nr;
        for (int xi = 0; xi < 16; xi++)
            for (size_t ic = 0; ic < inc; ic++)
                memset(v + (size_t)xi * xistride + (nt / nr) * panel + ic * nr + lane, 0, (nr - lane) * sizeof(float));
    }
}


static inline __attribute__((always_inline))
void output_body(const float *m, size_t outc, size_t ty0, size_t ty1, size_t tx0, size_t tx1, size_t oh, size_t ow,
                 const float *bias, const float *z, int act, float alpha, float beta, float *out,
                 float *restrict scratch, so_f32_bias_act_fn finish, so_f32_unary_fn unary) {
    const size_t bw = tx1 - tx0;
    const size_t nt = (ty1 - ty0) * bw;
    const size_t xistride = outc * nt;
    const size_t stride = 2 * bw + 4;
    float *restrict y0 = scratch, *restrict y1 = scratch + stride;
    const size_t plane = oh * ow;
    /* the block's output columns; a block at the right edge of an odd width has one fewer */
    const size_t ox0 = 2 * tx0;
    const size_t cols = ox0 + 2 * bw <= ow ? 2 * bw : ow - ox0;
    for (size_t oc = 0; oc < outc; oc++) {
        const float *mo = m + oc * nt;
        float bv = bias ? bias[oc] : 0.0f;
        for (size_t ty = ty0; ty < ty1; ty++) {
            const size_t off = (ty - ty0) * bw;
            const float *q[16];
            for (int xi = 0; xi < 16; xi++) q[xi] = mo + (size_t)xi * xistride + off;
            const size_t oy = 2 * ty;
            const int two = oy + 1 < oh;
            float *d0 = out + oc * plane + oy * ow + ox0, *d1 = d0 + ow;
            if (two && cols == 2 * bw) {
                output_tiles(q, d0, d1, bw);      /* straight into the output rows */
            } else {
                output_tiles(q, y0, y1, bw);
                memcpy(d0, y0, cols * sizeof(float));
                if (two) memcpy(d1, y1, cols * sizeof(float));
            }
            for (int r = 0; r < 1 + two; r++) {
                float *dst = r == 0 ? d0 : d1;
                const float *zr = z ? z + oc * plane + (oy + (size_t)r) * ow + ox0 : NULL;
                if (zr || bias) finish(dst, cols, bv, zr, act, alpha, beta);
                else if (act != SO_ACT_IDENTITY) unary(act, dst, dst, cols, alpha, beta);
            }
        }
    }
}

static void input_scalar(const float *x, size_t inc, size_t ih, size_t iw, long ph, long pw, size_t ty0,
                         size_t ty1, size_t tx0, size_t tx1, size_t nr, float *v, float *scratch) {
    input_body(x, inc, ih, iw, ph, pw, ty0, ty1, tx0, tx1, nr, v, scratch);
}
static void output_scalar(const float *m, size_t outc, size_t ty0, size_t ty1, size_t tx0, size_t tx1, size_t oh,
                          size_t ow, const float *bias, const float *z, int act, float alpha, float beta, float *out,
                          float *scratch) {
    output_body(m, outc, ty0, ty1, tx0, tx1, oh, ow, bias, z, act, alpha, beta, out, scratch,
                so_f32_bias_act_select(SO_ISA_SCALAR), so_f32_unary_select(SO_ISA_SCALAR));
}

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
static void input_avx2(const float *x, size_t inc, size_t ih, size_t iw, long ph, long pw, size_t ty0,
                       size_t ty1, size_t tx0, size_t tx1, size_t nr, float *v, float *scratch) {
    input_body(x, inc, ih, iw, ph, pw, ty0, ty1, tx0, tx1, nr, v, scratch);
}
static void output_avx2(const float *m, size_t outc, size_t ty0, size_t ty1, size_t tx0, size_t tx1, size_t oh,
                        size_t ow, const float *bias, const float *z, int act, float alpha, float beta, float *out,
                        float *scratch) {
    output_body(m, outc, ty0, ty1, tx0, tx1, oh, ow, bias, z, act, alpha, beta, out, scratch,
                so_f32_bias_act_select(SO_ISA_AVX2), so_f32_unary_select(SO_ISA_AVX2));
}
#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c"))), apply_to = function)
static void input_avx512(const float *x, size_t inc, size_t ih, size_t iw, long ph, long pw, size_t ty0,
                         size_t ty1, size_t tx0, size_t tx1, size_t nr, float *v, float *scratch) {
    input_body(x, inc, ih, iw, ph, pw, ty0, ty1, tx0, tx1, nr, v, scratch);
}
static void output_avx512(const float *m, size_t outc, size_t ty0, size_t ty1, size_t tx0, size_t tx1, size_t oh,
                          size_t ow, const float *bias, const float *z, int act, float alpha, float beta, float *out,
                          float *scratch) {
    output_body(m, outc, ty0, ty1, tx0, tx1, oh, ow, bias, z, act, alpha, beta, out, scratch,
                so_f32_bias_act_select(SO_ISA_AVX512), so_f32_unary_select(SO_ISA_AVX512));
}
#pragma clang attribute pop
#endif

so_f32_wino2x2_input_fn so_f32_wino2x2_input_select(int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX512) return input_avx512;
    if (isa >= SO_ISA_AVX2) return input_avx2;
#endif
    (void)isa;
    return input_scalar;
}

so_f32_wino2x2_output_fn so_f32_wino2x2_output_select(int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX512) return output_avx512;
    if (isa >= SO_ISA_AVX2) return output_avx2;
#endif
    (void)isa;
    return output_scalar;
}
