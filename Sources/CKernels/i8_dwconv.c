/*
 * Depthwise integer convolution (see so_i8_dwconv.h).
 *   dwconv_scalar   the reference (plain C, one int32 sum per output, taps in the padding reading zp)
 *   dwconv_vnni     AVX-512 VNNI: each input row is rewritten once, with its padding, as a row of
 *                   "windows" (quad i = the four bytes at column sW * i .. sW * i + 3: a vpermd and a
 *                   vpshufb per 16), so that four kernel columns of 16 outputs are 16 consecutive
 *                   quads; up to 8 vectors of 16 outputs of a row in zmm accumulators, one vpdpbusd
 *                   per vector per (kernel row, four columns); requantized in registers and stored
 *                   with masked byte stores
 * Both give the same integers (sums of at most kH * kW products of 255 * 128 never overflow for
 * the filter sizes the caller allows).
 */
#include "so_isa.h"
#include "so_i8_dwconv.h"
#include "i8_shared.h"
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* Quads per kernel row: columns 4h .. 4h + 3 for h < ceil(kW / 4). */
static size_t quads_of(size_t kw) { return (kw + 3) / 4; }

size_t so_i8_dwconv_packed_bytes(size_t c, size_t kh, size_t kw) { return c * kh * quads_of(kw) * 4; }

void so_i8_dwconv_pack(size_t c, size_t kh, size_t kw, const int8_t *w, int8_t *dst) {
    const size_t hq = quads_of(kw);
    for (size_t ch = 0; ch < c; ch++)
        for (size_t ky = 0; ky < kh; ky++)
            for (size_t h = 0; h < hq; h++)
                for (size_t j = 0; j < 4; j++) {
                    const size_t kx = 4 * h + j;
                    *dst++ = kx < kw ? w[(ch * kh + ky) * kw + kx] : 0;
                }
}

static void dwconv_scalar(const so_dw_geom *g, size_t nc, const uint8_t *x, size_t x_stride, int flip, uint8_t zp,
                          const int8_t *wpk, const int32_t *corr, int32_t *acc, size_t ldc, const so_i8_requant *rq) {
    const uint8_t fx = flip ? 0x80 : 0;
    const size_t hq = quads_of((size_t)g->kW), per = (size_t)g->kH * hq * 4;
    for (size_t ch = 0; ch < nc; ch++) {
        const uint8_t *xc = x + ch * x_stride;
        const int8_t *wc = wpk + ch * per;
        for (int oy = 0; oy < g->oH; oy++) {
            for (int ox = 0; ox < g->oW; ox++) {
                int32_t s = corr ? corr[ch] : 0;
                for (int ky = 0; ky < g->kH; ky++) {
                    const long iy = (long)oy * g->sH + (long)ky * g->dH - g->pH;
                    for (int kx = 0; kx < g->kW; kx++) {
                        const long ix = (long)ox * g->sW + (long)kx * g->dW - g->pW;
                        const int32_t v = (iy >= 0 && iy < g->iH && ix >= 0 && ix < g->iW)
                                              ? (int32_t)(xc[iy * g->iW + ix] ^ fx) : (int32_t)zp;
                        s += (int32_t)wc[((size_t)ky * hq + (size_t)kx / 4) * 4 + (size_t)kx % 4] * v;
                    }
                }
                const size_t o = (size_t)oy * (size_t)g->oW + (size_t)ox;
                if (rq) {
                    so_i8_requantize(1, 1, &s, 1, rq->bias ? rq->bias + ch : NULL, rq->scale + ch, rq->yzp, rq->lo, rq->hi,
                                     rq->is_signed, (uint8_t *)rq->y + ch * rq->ldy + o, rq->ldy, SO_ISA_SCALAR);
                } else {
                    acc[ch * ldc + o] = s;
                }
            }
        }
    }
}

/* The fast kernel's buffer: window rows of nsq quads (a multiple of 16). */
typedef struct dw_layout { size_t hq, nsq, sq_bytes; } dw_layout;

static dw_layout layout_of(const so_dw_geom *g) {
    dw_layout l;
    const size_t sw = (size_t)g->sW, ow16 = ((size_t)g->oW + 15) / 16 * 16;
    l.hq = quads_of((size_t)g->kW);
    l.nsq = (ow16 + 4 * (l.hq - 1) / (sw ? sw : 1) + 15) / 16 * 16;
    l.sq_bytes = ((size_t)g->iH + 1) * l.nsq * 4;   /* one window row per input row, then one of zp */
    return l;
}

static int fast_geometry(const so_dw_geom *g) {
    return (g->sW == 1 || g->sW == 2) && g->dW == 1 && g->kH <= 64;
}

size_t so_i8_dwconv_scratch(const so_dw_geom *g) {
    const dw_layout l = layout_of(g);
    return l.sq_bytes + 64;
}

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,fma"))), apply_to = function)
static inline __mmask16 lanes16(size_t cols, size_t from) {
    return cols >= from + 16 ? (__mmask16)0xFFFF : cols > from ? (__mmask16)((1u << (cols - from)) - 1) : 0;
}

/* nr output rows x nv vectors of 16 outputs from column ob: for kernel row ky and quad h, the windows
   at rows[r * 64 + ky] + (ob + 4h / sW) quads times the four weights wq[ky * hq + h]; row r stored
   requantized to yb + r * ow or as int32 to ab + r * ow (left: outputs of a row from ob on). Narrow
   rows take several rows at a time, so that at least four sums are in flight. */
static inline __attribute__((always_inline))
void dw_block_vnni(const int nr, const int nv, const uint8_t *const *rows, size_t kh, size_t hq, size_t hstep,
                   const int32_t *wq, size_t ob, size_t ow, size_t left, int32_t corr, const so_i8_requant *rq, __m512i vb,
                   __m512 vs, __m512i vzp, __m512 vlo, __m512 vhi, uint8_t *yb, int32_t *ab) {
    __m512i c[4][8];
    for (int r = 0; r < nr; r++) for (int v = 0; v < nv; v++) c[r][v] = _mm512_set1_epi32(corr);
    for (size_t ky = 0; ky < kh; ky++) {
        const uint8_t *b[4];
        for (int r = 0; r < nr; r++) b[r] = rows[r * 64 + ky] + ob * 4;
        for (size_t h = 0; h < hq; h++) {
            const __m512i w = _mm512_set1_epi32(wq[ky * hq + h]);
            for (int r = 0; r < nr; r++) {
                for (int v = 0; v < nv; v++)
                    c[r][v] = _mm512_dpbusd_epi32(c[r][v], _mm512_loadu_si512((const void *)(b[r] + h * hstep + 64 * v)), w);
            }
        }
    }
    for (int r = 0; r < nr; r++) {
        if (rq) {
            for (int v = 0; v < nv; v++)
                _mm_mask_storeu_epi8(yb + r * ow + 16 * v, lanes16(left, 16 * (size_t)v), requant16_avx512(c[r][v], vb, vs, vzp, vlo, vhi));
        } else {
            for (int v = 0; v < nv; v++) _mm512_mask_storeu_epi32(ab + r * ow + 16 * v, lanes16(left, 16 * (size_t)v), c[r][v]);
        }
    }
}

/* Bits [lo, hi) of a 64-bit mask (0 <= lo, hi <= 64). */
static inline uint64_t bits64(long lo, long hi) {
    if (lo < 0) lo = 0;
    if (hi > 64) hi = 64;
    if (hi <= lo) return 0;
    const uint64_t upto = hi == 64 ? ~(uint64_t)0 : (((uint64_t)1 << hi) - 1);
    return upto & ~(((uint64_t)1 << lo) - 1);
}

/* Window row of input row src (iw bytes, pl columns of padding before it, `fill` around it): quad i =
   padded bytes sw * i .. sw * i + 3, each xor vf, for i < n (a multiple of 16). The padding comes
   from masked loads (which read nothing outside the row), with no padded copy of the row. */
static inline void windows_row(const uint8_t *src, long iw, long pl, size_t n, size_t sw, __m512i vfill, __m512i vf,
                               uint8_t *d) {
    if (sw == 1) {
        const __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6);
        const __m512i sh = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6));
        for (size_t i = 0; i < n; i += 16) {
            const long c0 = (long)i - pl;   /* input column of padded column i */
            const __mmask32 m = (__mmask32)bits64(-c0, iw - c0 < 32 ? iw - c0 : 32);
            __m512i v = _mm512_castsi256_si512(_mm256_mask_loadu_epi8(_mm512_castsi512_si256(vfill), m, src + c0));
            v = _mm512_shuffle_epi8(_mm512_permutexvar_epi32(idx, v), sh);
            _mm512_storeu_si512((void *)(d + 4 * i), _mm512_xor_si512(v, vf));
        }
    } else {
        const __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9);
        const __m512i sh = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9));
        for (size_t i = 0; i < n; i += 16) {
            const long c0 = 2 * (long)i - pl;
            const __mmask64 m = (__mmask64)bits64(-c0, iw - c0 < 64 ? iw - c0 : 64);
            __m512i v = _mm512_mask_loadu_epi8(vfill, m, src + c0);
            v = _mm512_shuffle_epi8(_mm512_permutexvar_epi32(idx, v), sh);
            _mm512_storeu_si512((void *)(d + 4 * i), _mm512_xor_si512(v, vf));
        }
    }
}

static void dwconv_vnni(const so_dw_geom *g, size_t nc, const uint8_t *x, size_t x_stride, int flip, uint8_t zp,
                        const int8_t *wpk, const int32_t *corr, int32_t *acc, size_t ldc, const so_i8_requant *rq,
                        void *scratch) {
    const dw_layout l = layout_of(g);
    const size_t ih = (size_t)g->iH, iw = (size_t)g->iW, oh = (size_t)g->oH, ow = (size_t)g->oW;
    const size_t kh = (size_t)g->kH, sh = (size_t)g->sH, sw = (size_t)g->sW;
    const size_t dh = (size_t)g->dH, pt = (size_t)g->pH, pl = (size_t)g->pW;
    const uint8_t fx = flip ? 0x80 : 0, fill = zp ^ fx;   /* padding bytes before the xor */
    uint8_t *sq = (uint8_t *)scratch, *sqfill = sq + ih * l.nsq * 4;
    const size_t per = kh * l.hq * 4, hstep = 4 * 4 / sw;   /* quad h + 1's windows are 4 / sW quads on */
    const __m512i vf = _mm512_set1_epi8((char)fx), vfill = _mm512_set1_epi8((char)fill);
    memset(sqfill, zp, l.nsq * 4);
    const __m512i vzp = _mm512_set1_epi32(rq ? rq->yzp : 0);
    __m512 vlo = _mm512_setzero_ps(), vhi = _mm512_setzero_ps();
    if (rq) requant16_bounds(rq->yzp, rq->lo, rq->hi, &vlo, &vhi);
    const uint8_t *rows[4 * 64];
    for (size_t ch = 0; ch < nc; ch++) {
        const uint8_t *xc = x + ch * x_stride;
        /* the window rows of every input row */
        for (size_t r = 0; r < ih; r++) windows_row(xc + r * iw, (long)iw, (long)pl, l.nsq, sw, vfill, vf, sq + r * l.nsq * 4);
        const int32_t *wq = (const int32_t *)(const void *)(wpk + ch * per);
        const int32_t cc = corr ? corr[ch] : 0;
        const __m512i vb = _mm512_set1_epi32(rq && rq->bias ? rq->bias[ch] : 0);
        const __m512 vs = _mm512_set1_ps(rq ? rq->scale[ch] : 0);
        /* rows at a time: 4 when a row is one or two vectors, 2 up to four, else 1 */
        const size_t vecs = (ow + 15) / 16, step = vecs <= 2 ? 4 : vecs <= 4 ? 2 : 1;
        for (size_t oy = 0; oy < oh;) {
            const size_t nr = oh - oy >= step ? step : oh - oy >= 2 && step >= 2 ? 2 : 1;
            for (size_t r = 0; r < nr; r++) {
                for (size_t ky = 0; ky < kh; ky++) {
                    const size_t pr = (oy + r) * sh + ky * dh;
                    rows[r * 64 + ky] = pr >= pt && pr - pt < ih ? sq + (pr - pt) * l.nsq * 4 : sqfill;
                }
            }
            uint8_t *yrow = rq ? (uint8_t *)rq->y + ch * rq->ldy + oy * ow : NULL;
            int32_t *arow = rq ? NULL : acc + ch * ldc + oy * ow;
            for (size_t ob = 0; ob < ow; ob += 128) {
                const size_t rest = ow - ob, nv = ((rest < 128 ? rest : 128) + 15) / 16;
                uint8_t *yb = yrow ? yrow + ob : NULL;
                int32_t *ab = arow ? arow + ob : NULL;
#define DW_BLOCK(NR, NV) dw_block_vnni(NR, NV, rows, kh, l.hq, hstep, wq, ob, ow, rest, cc, rq, vb, vs, vzp, vlo, vhi, yb, ab)
                if (nr == 4) {
                    if (nv == 1) DW_BLOCK(4, 1); else DW_BLOCK(4, 2);
                } else if (nr == 2) {
                    switch (nv) {
                    case 1: DW_BLOCK(2, 1); break;
                    case 2: DW_BLOCK(2, 2); break;
                    case 3: DW_BLOCK(2, 3); break;
                    default: DW_BLOCK(2, 4); break;
                    }
                } else {
                    switch (nv) {
                    case 1: DW_BLOCK(1, 1); break;
                    case 2: DW_BLOCK(1, 2); break;
                    case 3: DW_BLOCK(1, 3); break;
                    case 4: DW_BLOCK(1, 4); break;
                    case 5: DW_BLOCK(1, 5); break;
                    case 6: DW_BLOCK(1, 6); break;
                    case 7: DW_BLOCK(1, 7); break;
                    default: DW_BLOCK(1, 8); break;
                    }
                }
#undef DW_BLOCK
            }
            oy += nr;
        }
    }
}
#pragma clang attribute pop
#endif

int so_i8_dwconv_fast(int isa, const so_dw_geom *g) {
#if defined(__x86_64__)
    return isa >= SO_ISA_AVX512 && so_cpu_has_avx512vnni() && (!g || fast_geometry(g));
#else
    (void)isa; (void)g;
    return 0;
#endif
}

void so_i8_dwconv(int isa, const so_dw_geom *g, size_t nc, const uint8_t *x, size_t x_stride, int flip, uint8_t zp,
                  const int8_t *wpk, const int32_t *corr, int32_t *acc, size_t ldc, const so_i8_requant *rq, void *scratch) {
#if defined(__x86_64__)
    if (scratch && so_i8_dwconv_fast(isa, g)) {
        dwconv_vnni(g, nc, x, x_stride, flip, zp, wpk, corr, acc, ldc, rq, scratch);
        return;
    }
#else
    (void)scratch;
#endif
    dwconv_scalar(g, nc, x, x_stride, flip, zp, wpk, corr, acc, ldc, rq);
}
