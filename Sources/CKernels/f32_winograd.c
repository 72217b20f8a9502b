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

/* Padded column j of a block's tile row reads input column c0 + j; of its `width` columns, lo..<hi
   hold data (the rest is zero padding). */
static inline __attribute__((always_inline))
void data_columns(long c0, size_t iw, size_t width, long *lo, long *hi) {
    long l = c0 < 0 ? -c0 : 0, h = (long)iw - c0;
    if (h > (long)width) h = (long)width;
    if (l > (long)width) l = (long)width;
    if (h < l) h = l;
    *lo = l;
    *hi = h;
}

/* Lanes past the last of nt tiles in the last panel of each of the `positions` V matrices are zero
   (the GEMM reads whole panels of nr tiles). */
static void zero_tail_lanes(float *v, int positions, size_t inc, size_t nt, size_t nr) {
    const size_t ntp = (nt + nr - 1) / nr * nr, lane = nt % nr;
    if (ntp == nt) return;
    for (int xi = 0; xi < positions; xi++)
        for (size_t ic = 0; ic < inc; ic++)
            memset(v + (size_t)xi * inc * ntp + (nt / nr) * nr * inc + ic * nr + lane, 0, (nr - lane) * sizeof(float));
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
    long lo, hi;
    data_columns(c0, iw, width, &lo, &hi);
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
    zero_tail_lanes(v, 16, inc, nt, nr);
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

/* One transform pair per ISA level: the same C compiled with that level's target attribute, the
 * epilogue kernels of the same level. */
#define SO_WINO_PAIR(tag, level, input_body, output_body)                                                     \
    static void input_##tag(const float *x, size_t inc, size_t ih, size_t iw, long ph, long pw, size_t ty0,     \
                            size_t ty1, size_t tx0, size_t tx1, size_t nr, float *v, float *scratch) {           \
        input_body(x, inc, ih, iw, ph, pw, ty0, ty1, tx0, tx1, nr, v, scratch);                                  \
    }                                                                                                           \
    static void output_##tag(const float *m, size_t outc, size_t ty0, size_t ty1, size_t tx0, size_t tx1,       \
                             size_t oh, size_t ow, const float *bias, const float *z, int act, float alpha,     \
                             float beta, float *out, float *scratch) {                                          \
        output_body(m, outc, ty0, ty1, tx0, tx1, oh, ow, bias, z, act, alpha, beta, out, scratch,               \
                    so_f32_bias_act_select(level), so_f32_unary_select(level));                                 \
    }

/* The variant's three levels and its two select functions. */
#define SO_WINO_VARIANT(v, input_body, output_body)                                                             \
    SO_WINO_PAIR(v##_scalar, SO_ISA_SCALAR, input_body, output_body)                                            \
    SO_WINO_X86(v, input_body, output_body)                                                                     \
    so_f32_wino2x2_input_fn so_f32_wino##v##_input_select(int isa) {                                            \
        SO_WINO_X86_PICK(input_##v, isa)                                                                        \
        (void)isa;                                                                                              \
        return input_##v##_scalar;                                                                              \
    }                                                                                                           \
    so_f32_wino2x2_output_fn so_f32_wino##v##_output_select(int isa) {                                          \
        SO_WINO_X86_PICK(output_##v, isa)                                                                       \
        (void)isa;                                                                                              \
        return output_##v##_scalar;                                                                             \
    }

#if defined(__x86_64__)
#define SO_WINO_X86(v, input_body, output_body)                                                                 \
    _Pragma("clang attribute push(__attribute__((target(\"avx2,fma,f16c\"))), apply_to = function)")          \
    SO_WINO_PAIR(v##_avx2, SO_ISA_AVX2, input_body, output_body)                                                \
    _Pragma("clang attribute pop")                                                                              \
    _Pragma("clang attribute push(__attribute__((target(\"avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c\"))), apply_to = function)") \
    SO_WINO_PAIR(v##_avx512, SO_ISA_AVX512, input_body, output_body)                                            \
    _Pragma("clang attribute pop")
#define SO_WINO_X86_PICK(fn, isa)                                                                               \
    if ((isa) >= SO_ISA_AVX512) return fn##_avx512;                                                             \
    if ((isa) >= SO_ISA_AVX2) return fn##_avx2;
#else
#define SO_WINO_X86(v, input_body, output_body)
#define SO_WINO_X86_PICK(fn, isa)
#endif

SO_WINO_VARIANT(2x2, input_body, output_body)

/* ------------------------------------------------------------------------------------------------
 * Winograd F(4x4, 3x3): each 4x4 output tile from a 6x6 input patch, 36 multiplies per 16 outputs
 * (2.25 per output against 4 for F(2x2, 3x3) and 9 direct), interpolation points 0, 1, -1, 2, -2
 * and infinity:
 *
 *   B^T = | 4  0 -5  0  1  0 |   G = |  1/4     0     0  |   A^T = | 1  1  1  1  1  0 |
 *         | 0 -4 -4  1  1  0 |       | -1/6  -1/6  -1/6  |         | 0  1 -1  2 -2  0 |
 *         | 0  4 -4 -1  1  0 |       | -1/6   1/6  -1/6  |         | 0  1  1  4  4  0 |
 *         | 0 -2 -1  2  1  0 |       |  1/24  1/12  1/6  |         | 0  1 -1  8 -8  1 |
 *         | 0  2 -1 -2  1  0 |       |  1/24 -1/12  1/6  |
 *         | 0  4  0 -5  0  1 |       |  0     0     1    |
 *
 * The layout is F(2x2)'s with 6x6 = 36 positions xi and tiles of 4x4 outputs: tile (ty, tx)
 * covers output rows 4ty..4ty+3 and columns 4tx..4tx+3 and reads input rows 4ty - pH + r and
 * columns 4tx - pW + c (r, c < 6). The weight transform runs in double precision (plan time).
 * ---------------------------------------------------------------------------------------------- */

/* u[xi] = (G g G^T)[xi] for one 3x3 kernel g (row-major), in double, rounded once. */
static void weight_tile4(const float *g, float u[36]) {
    double t[6][3]; /* G g */
    for (int c = 0; c < 3; c++) {
        double g0 = g[c], g1 = g[3 + c], g2 = g[6 + c];
        t[0][c] = g0 / 4.0;
        t[1][c] = -(g0 + g1 + g2) / 6.0;
        t[2][c] = -(g0 - g1 + g2) / 6.0;
        t[3][c] = g0 / 24.0 + g1 / 12.0 + g2 / 6.0;
        t[4][c] = g0 / 24.0 - g1 / 12.0 + g2 / 6.0;
        t[5][c] = g2;
    }
    for (int r = 0; r < 6; r++) { /* (G g) G^T */
        double a = t[r][0], b = t[r][1], c = t[r][2];
        u[r * 6 + 0] = (float)(a / 4.0);
        u[r * 6 + 1] = (float)(-(a + b + c) / 6.0);
        u[r * 6 + 2] = (float)(-(a - b + c) / 6.0);
        u[r * 6 + 3] = (float)(a / 24.0 + b / 12.0 + c / 6.0);
        u[r * 6 + 4] = (float)(a / 24.0 - b / 12.0 + c / 6.0);
        u[r * 6 + 5] = (float)c;
    }
}

void so_f32_wino4x4_weights(size_t outc, size_t inc, const float *w, float *u) {
    const size_t plane = outc * inc;
    for (size_t oc = 0; oc < outc; oc++) {
        for (size_t ic = 0; ic < inc; ic++) {
            float t[36];
            weight_tile4(w + (oc * inc + ic) * 9, t);
            for (int xi = 0; xi < 36; xi++) u[(size_t)xi * plane + oc * inc + ic] = t[xi];
        }
    }
}

/* Plan time only: one kernel at a time, stored at its place in each packed panel. */
void so_f32_wino4x4_weights_packed(size_t outc, size_t inc, const float *w, int mr, float *const *dst) {
    const size_t smr = (size_t)mr;
    const size_t panels = (outc + smr - 1) / smr;
    for (size_t p = 0; p < panels; p++) {
        for (size_t r = 0; r < smr; r++) {
            const size_t oc = p * smr + r;
            for (size_t ic = 0; ic < inc; ic++) {
                float u[36];
                if (oc < outc) weight_tile4(w + (oc * inc + ic) * 9, u);
                else memset(u, 0, sizeof u);   /* rows past outC stay zero */
                const size_t at = p * smr * inc + ic * smr + r;
                for (int xi = 0; xi < 36; xi++) dst[xi][at] = u[xi];
            }
        }
    }
}

size_t so_f32_wino4x4_scratch_floats(size_t bw) { return 7 * (4 * bw + 8) + 24 * (bw + 8) + 16; }   /* rows 0..5: B^T d; 6: zeros; 6 x 4 phases */

static inline __attribute__((always_inline))
void input_rows4(const float *d0, const float *d1, const float *d2, const float *d3, const float *d4,
                 const float *d5, float *restrict r0, float *restrict r1, float *restrict r2, float *restrict r3,
                 float *restrict r4, float *restrict r5, size_t width) {
    for (size_t j = 0; j < width; j++) {
        const float a1 = d1[j], a2 = d2[j], a3 = d3[j], a4 = d4[j];
        r0[j] = (4.0f * d0[j] - 5.0f * a2) + a4;
        r1[j] = (a3 + a4) - 4.0f * (a1 + a2);
        r2[j] = 4.0f * (a1 - a2) + (a4 - a3);
        r3[j] = 2.0f * (a3 - a1) + (a4 - a2);
        r4[j] = 2.0f * (a1 - a3) + (a4 - a2);
        r5[j] = (4.0f * a1 - 5.0f * a3) + d5[j];
    }
}

/* The column pass in two steps, both loops the compiler vectorizes without a scalar tail: the
   row of padded columns split into its four phases (e_k[t] = s[4t + k], t <= bw: an interleaved
   group with no gaps), then per tile the six columns 4tx..4tx+5 = e0..e3[tx], e0[tx + 1],
   e1[tx + 1], all contiguous loads. (Reading s[4tx..4tx+5] directly leaves gaps in the
   interleaved loads, and the vectorized loop then ran its last vector's worth of tiles scalar.) */
static inline __attribute__((always_inline))
void input_phases4(const float *s, float *restrict e0, float *restrict e1, float *restrict e2, float *restrict e3,
                   size_t n) {
    for (size_t t = 0; t < n; t++) {
        e0[t] = s[4 * t];
        e1[t] = s[4 * t + 1];
        e2[t] = s[4 * t + 2];
        e3[t] = s[4 * t + 3];
    }
}

static inline __attribute__((always_inline))
void input_cols4(const float *e0, const float *e1, const float *e2, const float *e3, float *restrict o0,
                 float *restrict o1, float *restrict o2, float *restrict o3, float *restrict o4, float *restrict o5,
                 size_t len) {
    for (size_t tx = 0; tx < len; tx++) {
        const float a0 = e0[tx], a1 = e1[tx], a2 = e2[tx], a3 = e3[tx], a4 = e0[tx + 1], a5 = e1[tx + 1];
        o0[tx] = (4.0f * a0 - 5.0f * a2) + a4;
        o1[tx] = (a3 + a4) - 4.0f * (a1 + a2);
        o2[tx] = 4.0f * (a1 - a2) + (a4 - a3);
        o3[tx] = 2.0f * (a3 - a1) + (a4 - a2);
        o4[tx] = 2.0f * (a1 - a3) + (a4 - a2);
        o5[tx] = (4.0f * a1 - 5.0f * a3) + a5;
    }
}

/* One tile of A^T m A is straight-line code (the six columns and four rows spelled out), so the
   loop over tiles vectorizes: 36 contiguous loads and four interleaved groups of four stores. */
#define SO_WINO4_COL(c)                                                                            \
    const float k##c##_m0 = q[c][tx], k##c##_m1 = q[6 + c][tx], k##c##_m2 = q[12 + c][tx],                \
                k##c##_m3 = q[18 + c][tx], k##c##_m4 = q[24 + c][tx], k##c##_m5 = q[30 + c][tx];           \
    const float k##c##_p12 = k##c##_m1 + k##c##_m2, k##c##_n12 = k##c##_m1 - k##c##_m2;                           \
    const float k##c##_p34 = k##c##_m3 + k##c##_m4, k##c##_n34 = k##c##_m3 - k##c##_m4;                           \
    const float s0_##c = (k##c##_m0 + k##c##_p12) + k##c##_p34;                                          \
    const float s1_##c = k##c##_n12 + 2.0f * k##c##_n34;                                              \
    const float s2_##c = k##c##_p12 + 4.0f * k##c##_p34;                                              \
    const float s3_##c = (k##c##_n12 + 8.0f * k##c##_n34) + k##c##_m5;
/* the epilogue while the values are in registers, rounded as so_f32_bias_act: (v + z) + bias,
   or v + bias without z; add, use_z and relu are constants at every call */
#define SO_WINO4_EP(v, zr, k)                                                                      \
    (relu ? wino4_relu(add ? (use_z ? ((v) + zr[4 * tx + k]) + bv : (v) + bv) : (v))              \
          : (add ? (use_z ? ((v) + zr[4 * tx + k]) + bv : (v) + bv) : (v)))
#define SO_WINO4_ROW(y, zr, r)                                                                     \
    {                                                                                              \
        const float p12 = s##r##_1 + s##r##_2, n12 = s##r##_1 - s##r##_2;                         \
        const float p34 = s##r##_3 + s##r##_4, n34 = s##r##_3 - s##r##_4;                         \
        y[4 * tx] = SO_WINO4_EP((s##r##_0 + p12) + p34, zr, 0);                                   \
        y[4 * tx + 1] = SO_WINO4_EP(n12 + 2.0f * n34, zr, 1);                                     \
        y[4 * tx + 2] = SO_WINO4_EP(p12 + 4.0f * p34, zr, 2);                                     \
        y[4 * tx + 3] = SO_WINO4_EP((n12 + 8.0f * n34) + s##r##_5, zr, 3);                        \
    }
static inline __attribute__((always_inline)) float wino4_relu(float v) { return v < 0.0f ? 0.0f : v; }

/* Four output rows of tw tiles; with add, act(Y + bias + z) applied on the way out (z rows z0..z3
   read when use_z; act ReLU when relu, else identity). */
static inline __attribute__((always_inline))
void output_tiles4(const float *const *q, float *restrict y0, float *restrict y1, float *restrict y2,
                   float *restrict y3, size_t tw, const int add, const int use_z, const int relu, float bv,
                   const float *z0, const float *z1, const float *z2, const float *z3) {
    for (size_t tx = 0; tx < tw; tx++) {
        SO_WINO4_COL(0) SO_WINO4_COL(1) SO_WINO4_COL(2) SO_WINO4_COL(3) SO_WINO4_COL(4) SO_WINO4_COL(5)
        SO_WINO4_ROW(y0, z0, 0)
        SO_WINO4_ROW(y1, z1, 1)
        SO_WINO4_ROW(y2, z2, 2)
        SO_WINO4_ROW(y3, z3, 3)
    }
}
#undef SO_WINO4_EP
#undef SO_WINO4_COL
#undef SO_WINO4_ROW

static inline __attribute__((always_inline))
void input_body4(const float *x, size_t inc, size_t ih, size_t iw, long ph, long pw, size_t ty0, size_t ty1,
                 size_t tx0, size_t tx1, size_t nr, float *restrict v, float *restrict scratch) {
    const size_t bw = tx1 - tx0;
    const size_t width = 4 * bw + 2;          /* padded columns one tile row of the block reads */
    const size_t stride = 4 * bw + 8;
    const size_t nt = (ty1 - ty0) * bw;
    const size_t ntp = (nt + nr - 1) / nr * nr;
    const size_t xistride = inc * ntp;
    const size_t panel = nr * inc;
    float *rr[6];
    for (int r = 0; r < 6; r++) rr[r] = scratch + (size_t)r * stride;
    float *zero = scratch + 6 * stride;
    memset(zero, 0, width * sizeof(float));
    /* the phases of each transformed row: ph[i][k] holds bw + 1 values */
    const size_t pstride = bw + 8;
    float *phs[6][4];
    for (int i = 0; i < 6; i++)
        for (int k = 0; k < 4; k++) phs[i][k] = scratch + 7 * stride + (size_t)(i * 4 + k) * pstride;
    /* the two columns past `width` that the phase split reads (never used in a result) */
    for (int r = 0; r < 6; r++) rr[r][width] = rr[r][width + 1] = 0.0f;
    const long c0 = 4 * (long)tx0 - pw;
    long lo, hi;
    data_columns(c0, iw, width, &lo, &hi);
    for (size_t ic = 0; ic < inc; ic++) {
        const float *plane = x + ic * ih * iw;
        for (size_t ty = ty0; ty < ty1; ty++) {
            const float *rows[6];
            for (int r = 0; r < 6; r++) {
                long y = (long)(4 * ty) - ph + r;
                rows[r] = (y < 0 || y >= (long)ih) ? zero : plane + (size_t)y * iw + (size_t)(c0 + lo);
            }
            for (int i = 0; i < 6; i++) {
                if (lo > 0) memset(rr[i], 0, (size_t)lo * sizeof(float));
                if ((size_t)hi < width) memset(rr[i] + hi, 0, (width - (size_t)hi) * sizeof(float));
            }
            if (hi > lo)
                input_rows4(rows[0], rows[1], rows[2], rows[3], rows[4], rows[5], rr[0] + lo, rr[1] + lo, rr[2] + lo,
                            rr[3] + lo, rr[4] + lo, rr[5] + lo, (size_t)(hi - lo));
            for (int i = 0; i < 6; i++) input_phases4(rr[i], phs[i][0], phs[i][1], phs[i][2], phs[i][3], bw + 1);
            const size_t t0 = (ty - ty0) * bw;
            for (size_t bx = 0; bx < bw;) {
                const size_t t = t0 + bx, lane = t % nr;
                size_t len = nr - lane;
                if (len > bw - bx) len = bw - bx;
                float *base = v + (t / nr) * panel + ic * nr + lane;
                for (int i = 0; i < 6; i++) {
                    float *b = base + (size_t)(i * 6) * xistride;
                    input_cols4(phs[i][0] + bx, phs[i][1] + bx, phs[i][2] + bx, phs[i][3] + bx, b, b + xistride,
                                b + 2 * xistride, b + 3 * xistride, b + 4 * xistride, b + 5 * xistride, len);
                }
                bx += len;
            }
        }
    }
    zero_tail_lanes(v, 36, inc, nt, nr);
}

static inline __attribute__((always_inline))
void output_body4(const float *m, size_t outc, size_t ty0, size_t ty1, size_t tx0, size_t tx1, size_t oh, size_t ow,
                  const float *bias, const float *z, int act, float alpha, float beta, float *out,
                  float *restrict scratch, so_f32_bias_act_fn finish, so_f32_unary_fn unary) {
    const size_t bw = tx1 - tx0;
    const size_t nt = (ty1 - ty0) * bw;
    const size_t xistride = outc * nt;
    const size_t stride = 4 * bw + 8;
    float *ys[4];
    for (int r = 0; r < 4; r++) ys[r] = scratch + (size_t)r * stride;
    const size_t plane = oh * ow;
    const size_t ox0 = 4 * tx0;
    const size_t cols = ox0 + 4 * bw <= ow ? 4 * bw : ow - ox0;
    for (size_t oc = 0; oc < outc; oc++) {
        const float *mo = m + oc * nt;
        float bv = bias ? bias[oc] : 0.0f;
        for (size_t ty = ty0; ty < ty1; ty++) {
            const size_t off = (ty - ty0) * bw;
            const float *q[36];
            for (int xi = 0; xi < 36; xi++) q[xi] = mo + (size_t)xi * xistride + off;
            const size_t oy = 4 * ty;
            const size_t nrows = oy + 4 <= oh ? 4 : oh - oy;
            float *d[4];
            for (int r = 0; r < 4; r++) d[r] = out + oc * plane + (oy + (size_t)r) * ow + ox0;
            if (nrows == 4 && cols == 4 * bw && (act == SO_ACT_IDENTITY || act == SO_ACT_RELU)) {
                /* whole tiles, epilogue fused: straight into the output rows */
                const float *zr[4] = {NULL, NULL, NULL, NULL};
                if (z)
                    for (int r = 0; r < 4; r++) zr[r] = z + oc * plane + (oy + (size_t)r) * ow + ox0;
                const int relu = act == SO_ACT_RELU;
                if (z && relu)
                    output_tiles4(q, d[0], d[1], d[2], d[3], bw, 1, 1, 1, bv, zr[0], zr[1], zr[2], zr[3]);
                else if (z)
                    output_tiles4(q, d[0], d[1], d[2], d[3], bw, 1, 1, 0, bv, zr[0], zr[1], zr[2], zr[3]);
                else if (bias && relu)
                    output_tiles4(q, d[0], d[1], d[2], d[3], bw, 1, 0, 1, bv, NULL, NULL, NULL, NULL);
                else if (bias)
                    output_tiles4(q, d[0], d[1], d[2], d[3], bw, 1, 0, 0, bv, NULL, NULL, NULL, NULL);
                else if (relu)
                    output_tiles4(q, d[0], d[1], d[2], d[3], bw, 0, 0, 1, 0.0f, NULL, NULL, NULL, NULL);
                else
                    output_tiles4(q, d[0], d[1], d[2], d[3], bw, 0, 0, 0, 0.0f, NULL, NULL, NULL, NULL);
                continue;
            }
            if (nrows == 4 && cols == 4 * bw) {
                output_tiles4(q, d[0], d[1], d[2], d[3], bw, 0, 0, 0, 0.0f, NULL, NULL, NULL, NULL);
            } else {
                output_tiles4(q, ys[0], ys[1], ys[2], ys[3], bw, 0, 0, 0, 0.0f, NULL, NULL, NULL, NULL);
                for (size_t r = 0; r < nrows; r++) memcpy(d[r], ys[r], cols * sizeof(float));
            }
            for (size_t r = 0; r < nrows; r++) {
                const float *zr = z ? z + oc * plane + (oy + r) * ow + ox0 : NULL;
                if (zr || bias) finish(d[r], cols, bv, zr, act, alpha, beta);
                else if (act != SO_ACT_IDENTITY) unary(act, d[r], d[r], cols, alpha, beta);
            }
        }
    }
}

SO_WINO_VARIANT(4x4, input_body4, output_body4)
