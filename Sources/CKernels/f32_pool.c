/*
 * Float32 max / average pooling of planes and global pooling (see so_pool.h).
 *
 * Variants: *_ref (portable C: the obvious loops over every output and its clamped window),
 * *_avx2 (8 lanes) and *_avx512 (16 lanes). The vector bodies are written once (the part of this
 * file under SO_POOL_TEMPLATE) and instantiated per ISA by including this file into itself under
 * `#pragma clang attribute push(target(...))`, so the C target needs no build flags.
 *
 * Vector algorithm, per output row (od, oh). The input rows of the window (every valid (kd, kh)
 * tap) are reduced column by column into a "vertical row" T, padded: T[t] holds input column
 * t - pW, reduced over the rows (max from -inf, which also turns NaN into -inf; or the sum from the
 * first row), and the identity (-inf / 0) outside the input, so windows running into the pads or
 * past the end (ceil_mode) need no clamping. T is computed in aligned blocks of W columns with
 * masked loads at the borders (p_vblock), so nothing outside the input rows is read. Then tap kw of
 * output column ow is T[ow*sW + kw*dW]:
 *  - fused fast paths, T never stored: kW 3 / sW 2 (the ResNet / GoogLeNet / SqueezeNet /
 *    Inception 3x3s2 max pool), kW 2 / sW 2, and kW 3 / sW 1 (3x3s1p1 max / average), all with
 *    dW 1 and any H / D geometry and pads. Stride 2 deinterleaves two T blocks in registers into
 *    E = T[2j] and O = T[2j+1], the third tap is E shifted one lane; stride 1 takes the taps as
 *    lane shifts of two T blocks. Up to 3 window rows run with the row pointers in registers.
 *  - everything else: T is stored in the scratch, split by the W stride into phase rows
 *    P[ph][q] = T[q*sW + ph] (sW == 1: P is T; sW == 2: a vector deinterleave; sW > 2: a scalar
 *    loop), and tap kw is the contiguous stream P[(kw*dW) % sW][ow + (kw*dW) / sW].
 * The taps are reduced with vector max / add (average: then divided by the float tap count) and
 * stored with a masked tail.
 *
 * Numerics: max skips NaNs (every variant); average sums each window column over its rows, then
 * the columns left to right, identically in every variant (pad columns add +0, which changes at
 * most the sign of a zero), then divides (no reciprocal) by the count as the Swift code does.
 */
#ifndef SO_POOL_TEMPLATE

#include "so_pool.h"
#include "so_reduce.h"
#include "so_isa.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#pragma clang fp contract(off)

/* The window of output o along one axis: taps [lo, hi) lie inside the input, `pad` taps inside
   the padded extent [-padBegin, in + padEnd). As PoolAxisTable.init. */
typedef struct pool_win {
    int lo, hi, pad;
} pool_win;

static pool_win pool_axis(ptrdiff_t o, int in, int k, int s, int d, int pb, int pe) {
    const ptrdiff_t st = o * s - pb;
    pool_win w;
    int lo = 0;
    while (lo < k && st + (ptrdiff_t)lo * d < 0) lo++;
    int hi = k;
    while (hi > lo && st + (ptrdiff_t)(hi - 1) * d >= in) hi--;
    int pc = 0;
    for (int t = 0; t < k; t++)
        if (st + (ptrdiff_t)t * d < (ptrdiff_t)in + pe) pc++;
    w.lo = lo;
    w.hi = hi;
    w.pad = pc;
    return w;
}

/* ---------------------------------------------------------------------------------------------
 * Scalar reference
 * ------------------------------------------------------------------------------------------- */

static void pool_ref(const so_pool_geom *g, const float *x, float *y, size_t planes, int avg, int incl) {
    const ptrdiff_t inPlane = (ptrdiff_t)g->iD * g->iH * g->iW;
    const ptrdiff_t outPlane = (ptrdiff_t)g->oD * g->oH * g->oW;
    if (outPlane <= 0) return;
    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + (ptrdiff_t)p * inPlane;
        float *yp = y + (ptrdiff_t)p * outPlane;
        for (ptrdiff_t od = 0; od < g->oD; od++) {
            const pool_win wd = pool_axis(od, g->iD, g->kD, g->sD, g->dD, g->pD, g->eD);
            for (ptrdiff_t oh = 0; oh < g->oH; oh++) {
                const pool_win wh = pool_axis(oh, g->iH, g->kH, g->sH, g->dH, g->pH, g->eH);
                for (ptrdiff_t ow = 0; ow < g->oW; ow++) {
                    const pool_win ww = pool_axis(ow, g->iW, g->kW, g->sW, g->dW, g->pW, g->eW);
                    float acc = avg ? 0.0f : -INFINITY;
                    for (int kw = ww.lo; kw < ww.hi; kw++) {
                        const ptrdiff_t iw = ow * g->sW - g->pW + (ptrdiff_t)kw * g->dW;
                        float col = 0.0f;
                        for (int kd = wd.lo; kd < wd.hi; kd++) {
                            const ptrdiff_t id = od * g->sD - g->pD + (ptrdiff_t)kd * g->dD;
                            for (int kh = wh.lo; kh < wh.hi; kh++) {
                                const ptrdiff_t ih = oh * g->sH - g->pH + (ptrdiff_t)kh * g->dH;
                                const float v = xp[(id * g->iH + ih) * g->iW + iw];
                                if (avg) col += v;
                                else if (v > acc) acc = v;
                            }
                        }
                        if (avg) acc += col;
                    }
                    if (avg) {
                        const int n = incl ? wd.pad * wh.pad * ww.pad : (wd.hi - wd.lo) * (wh.hi - wh.lo) * (ww.hi - ww.lo);
                        acc = n > 0 ? acc / (float)n : NAN;
                    }
                    yp[(od * g->oH + oh) * g->oW + ow] = acc;
                }
            }
        }
    }
}

static void f32_maxpool2d_ref(const so_pool_geom *g, const float *x, float *y, size_t planes, void *scratch) {
    (void)scratch;
    pool_ref(g, x, y, planes, 0, 0);
}

static void f32_avgpool2d_ref(const so_pool_geom *g, const float *x, float *y, size_t planes, int count_include_pad,
                              void *scratch) {
    (void)scratch;
    pool_ref(g, x, y, planes, 1, count_include_pad != 0);
}

static void f32_global_pool_ref(const float *x, float *y, size_t planes, size_t size, int is_max) {
    if (is_max) {
        for (size_t p = 0; p < planes; p++) {
            const float *xp = x + p * size;
            float m = -INFINITY;
            for (size_t i = 0; i < size; i++)
                if (xp[i] > m) m = xp[i];
            y[p] = m;
        }
    } else {
        so_f32_reduce_rows_select(SO_ISA_SCALAR)(SO_RED_SUM, x, planes, size, y);
        for (size_t p = 0; p < planes; p++) y[p] = size > 0 ? y[p] / (float)size : NAN;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Scratch layout of the vector variants (floats unless said; every part a multiple of 16 floats,
 * so every part is 64-byte aligned after the base):
 *   T     Tlen floats: the padded vertical row, Q*sW used, slack for whole-vector reads
 *   P     sW rows of PS floats when sW > 1 (the phases), none when sW == 1 (P is T)
 *   cnt   round16(oW) floats: the per-column tap counts of average pooling (as floats)
 *   rows  kD*kH row pointers
 *   taps  kW offsets (ptrdiff_t) into P
 *   wins  the oD + oH windows of the D and H axes (pool_win)
 * ------------------------------------------------------------------------------------------- */

typedef struct pool_layout {
    ptrdiff_t Q, span, Tlen, PS, nP, ncnt, nrows, ntaps, nwin;
    size_t bytes;
} pool_layout;

static ptrdiff_t round16(ptrdiff_t n) { return (n + 15) & ~(ptrdiff_t)15; }

static pool_layout pool_layout_of(const so_pool_geom *g) {
    pool_layout L;
    const ptrdiff_t oW = g->oW > 0 ? g->oW : 0;
    L.Q = oW + ((ptrdiff_t)(g->kW - 1) * g->dW) / g->sW;
    L.span = L.Q * g->sW;
    /* horizontal reads of T (sW == 1) reach Q + 15; the deinterleave reads 2*round16(Q) */
    L.Tlen = round16((L.span > 2 * L.Q ? L.span : 2 * L.Q) + 64);
    L.PS = g->sW > 1 ? round16(L.Q) + 32 : 0;
    L.nP = g->sW > 1 ? g->sW * L.PS : 0;
    L.ncnt = round16(oW) + 16;
    L.nrows = (ptrdiff_t)g->kD * g->kH;
    L.ntaps = g->kW;
    L.nwin = (ptrdiff_t)(g->oD > 0 ? g->oD : 0) + (g->oH > 0 ? g->oH : 0);
    L.bytes = 64 + sizeof(float) * (size_t)(L.Tlen + L.nP + L.ncnt) + sizeof(const float *) * (size_t)L.nrows +
              sizeof(ptrdiff_t) * (size_t)L.ntaps + sizeof(pool_win) * (size_t)L.nwin;
    return L;
}

size_t so_f32_pool_scratch(const so_pool_geom *g) { return pool_layout_of(g).bytes; }

/* ---------------------------------------------------------------------------------------------
 * Vector variants
 * ------------------------------------------------------------------------------------------- */
#if defined(__x86_64__)
#include <immintrin.h>

#define SO_POOL_TEMPLATE 1

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#define W 8
#define SFX(name) name##_avx2
#define SO_LEVEL SO_ISA_AVX2
#include "f32_pool.c"
#undef W
#undef SFX
#undef SO_LEVEL
#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma,f16c"))), apply_to = function)
#define W 16
#define SFX(name) name##_avx512
#define SO_LEVEL SO_ISA_AVX512
#include "f32_pool.c"
#undef W
#undef SFX
#undef SO_LEVEL
#pragma clang attribute pop

#undef SO_POOL_TEMPLATE
#endif /* __x86_64__ */

so_f32_maxpool_fn so_f32_maxpool_select(int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX512) return f32_maxpool2d_avx512;
    if (isa >= SO_ISA_AVX2) return f32_maxpool2d_avx2;
#endif
    (void)isa;
    return f32_maxpool2d_ref;
}

so_f32_avgpool_fn so_f32_avgpool_select(int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX512) return f32_avgpool2d_avx512;
    if (isa >= SO_ISA_AVX2) return f32_avgpool2d_avx2;
#endif
    (void)isa;
    return f32_avgpool2d_ref;
}

so_f32_global_pool_fn so_f32_global_pool_select(int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX512) return f32_global_pool_avx512;
    if (isa >= SO_ISA_AVX2) return f32_global_pool_avx2;
#endif
    (void)isa;
    return f32_global_pool_ref;
}

#else /* SO_POOL_TEMPLATE: W lanes, SFX(name), SO_LEVEL */

#define INL static inline __attribute__((always_inline))

#if W == 16
#define VF __m512
#define VM __mmask16
#define VLD(p) _mm512_loadu_ps(p)
#define VST(p, v) _mm512_storeu_ps((p), (v))
#define VSET(x) _mm512_set1_ps(x)
#define VADD(a, b) _mm512_add_ps((a), (b))
#define VMUL(a, b) _mm512_mul_ps((a), (b))
#define VDIV(a, b) _mm512_div_ps((a), (b))
#define VMAX(a, b) _mm512_max_ps((a), (b))
#define VLDF(p, m, f) _mm512_mask_loadu_ps((f), (m), (p))
#define VSTM(p, v, m) _mm512_mask_storeu_ps((p), (m), (v))
INL VM SFX(p_mask)(ptrdiff_t n) {
    return n <= 0 ? (__mmask16)0 : n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}
/* (evens, odds) of the 2W floats a:b */
INL void SFX(p_deint)(VF a, VF b, VF *e, VF *o) {
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    *e = _mm512_permutex2var_ps(a, ie, b);
    *o = _mm512_permutex2var_ps(a, io, b);
}
/* Lanes [lo, hi), 0 <= lo <= hi <= 16. */
INL VM SFX(p_range)(ptrdiff_t lo, ptrdiff_t hi) { return (VM)(SFX(p_mask)(hi) & ~SFX(p_mask)(lo)); }
/* [cur[n] .. cur[15], next[0] .. next[n-1]] */
INL VF SFX(p_shift1)(VF cur, VF next) {
    return _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(next), _mm512_castps_si512(cur), 1));
}
INL VF SFX(p_shift2)(VF cur, VF next) {
    return _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(next), _mm512_castps_si512(cur), 2));
}
INL float SFX(p_hmax)(VF v) {
    __m256 h = _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 q = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_max_ps(q, _mm_movehl_ps(q, q));
    q = _mm_max_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}
#else
#define VF __m256
#define VM __m256i
#define VLD(p) _mm256_loadu_ps(p)
#define VST(p, v) _mm256_storeu_ps((p), (v))
#define VSET(x) _mm256_set1_ps(x)
#define VADD(a, b) _mm256_add_ps((a), (b))
#define VMUL(a, b) _mm256_mul_ps((a), (b))
#define VDIV(a, b) _mm256_div_ps((a), (b))
#define VMAX(a, b) _mm256_max_ps((a), (b))
#define VLDF(p, m, f) _mm256_blendv_ps((f), _mm256_maskload_ps((p), (m)), _mm256_castsi256_ps(m))
#define VSTM(p, v, m) _mm256_maskstore_ps((p), (m), (v))
INL VM SFX(p_mask)(ptrdiff_t n) {
    const ptrdiff_t c = n < 0 ? 0 : n > 8 ? 8 : n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
INL void SFX(p_deint)(VF a, VF b, VF *e, VF *o) {
    /* [a0 a2 b0 b2 | a4 a6 b4 b6] -> 64-bit lanes (0, 2, 1, 3) -> [a0 a2 a4 a6 b0 b2 b4 b6] */
    const __m256 se = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    const __m256 so = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    *e = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(se), _MM_SHUFFLE(3, 1, 2, 0)));
    *o = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(so), _MM_SHUFFLE(3, 1, 2, 0)));
}
INL VM SFX(p_range)(ptrdiff_t lo, ptrdiff_t hi) {
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)lo), iota),
                               _mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), iota));
}
/* [cur[n] .. cur[7], next[0] .. next[n-1]]: t = [cur.hi, next.lo], then a byte align per 128 bits. */
INL VF SFX(p_shift1)(VF cur, VF next) {
    const __m256 t = _mm256_permute2f128_ps(cur, next, 0x21);
    return _mm256_castsi256_ps(_mm256_alignr_epi8(_mm256_castps_si256(t), _mm256_castps_si256(cur), 4));
}
INL VF SFX(p_shift2)(VF cur, VF next) {
    const __m256 t = _mm256_permute2f128_ps(cur, next, 0x21);
    return _mm256_castsi256_ps(_mm256_alignr_epi8(_mm256_castps_si256(t), _mm256_castps_si256(cur), 8));
}
INL float SFX(p_hmax)(VF v) {
    __m128 q = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_max_ps(q, _mm_movehl_ps(q, q));
    q = _mm_max_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}
#endif

/* Input column c of a row as an address, for masked loads whose first lanes lie in the left pad
   (those lanes are never read). */
INL const float *SFX(p_at)(const float *row, ptrdiff_t c) {
    return (const float *)((uintptr_t)row + (uintptr_t)(c * (ptrdiff_t)sizeof(float)));
}

/* W consecutive columns of the padded vertical row: lane l is input column c0 + l reduced over the
   nr rows (max from -inf, which turns NaN into -inf; or the sum from the first row), the identity
   for columns outside [0, iW). Reads nothing outside the rows. */
INL VF SFX(p_vblock)(const float *const *rows, int nr, ptrdiff_t c0, ptrdiff_t iW, const int avg) {
    const VF id = VSET(avg ? 0.0f : -INFINITY);
    if (nr <= 0) return id;
    VF a;
    if (c0 >= 0 && c0 + W <= iW) {
        a = VLD(rows[0] + c0);
        if (!avg) a = VMAX(a, id);
        for (int i = 1; i < nr; i++) a = avg ? VADD(a, VLD(rows[i] + c0)) : VMAX(VLD(rows[i] + c0), a);
        return a;
    }
    const ptrdiff_t lo = c0 < 0 ? -c0 : 0, hi = iW - c0 < W ? iW - c0 : W;
    if (hi <= lo) return id;
    const VM m = SFX(p_range)(lo, hi);
    a = VLDF(SFX(p_at)(rows[0], c0), m, id);
    if (!avg) a = VMAX(a, id);
    for (int i = 1; i < nr; i++) {
        const VF v = VLDF(SFX(p_at)(rows[i], c0), m, id);
        a = avg ? VADD(a, v) : VMAX(v, a);
    }
    return a;
}

/* Average: r / (cnt[ow ..] * cdh); max: r. Then the store, masked past oW. */
INL void SFX(p_put)(float *yr, ptrdiff_t ow, ptrdiff_t oW, VF r, const int avg, const float *cnt, VF vc) {
    if (avg) r = VDIV(r, VMUL(VLD(cnt + ow), vc));
    if (ow + W <= oW) VST(yr + ow, r);
    else VSTM(yr + ow, r, SFX(p_mask)(oW - ow));
}

/* Fused row, kW 2 or 3, sW 2, dW 1: the vertical blocks are deinterleaved in registers into
   E = T[2j], O = T[2j+1]; the third tap T[2j+2] is E shifted by one lane (with the next block's
   first lane). */
INL void SFX(p_row_s2)(float *yr, ptrdiff_t oW, const float *const *rows, int nr, ptrdiff_t pW, ptrdiff_t iW,
                       const int K, const int avg, const float *cnt, float cdh) {
    const VF vc = VSET(cdh);
    VF E, O;
    SFX(p_deint)(SFX(p_vblock)(rows, nr, -pW, iW, avg), SFX(p_vblock)(rows, nr, W - pW, iW, avg), &E, &O);
    for (ptrdiff_t ow = 0; ow < oW; ow += W) {
        const ptrdiff_t t = 2 * (ow + W) - pW; /* input column of the next block */
        VF r;
        if (K == 3) {
            VF En, On;
            SFX(p_deint)(SFX(p_vblock)(rows, nr, t, iW, avg), SFX(p_vblock)(rows, nr, t + W, iW, avg), &En, &On);
            const VF S = SFX(p_shift1)(E, En);
            r = avg ? VADD(VADD(E, O), S) : VMAX(S, VMAX(O, E));
            E = En;
            O = On;
        } else {
            r = avg ? VADD(E, O) : VMAX(O, E);
            if (ow + W < oW)
                SFX(p_deint)(SFX(p_vblock)(rows, nr, t, iW, avg), SFX(p_vblock)(rows, nr, t + W, iW, avg), &E, &O);
        }
        SFX(p_put)(yr, ow, oW, r, avg, cnt, vc);
    }
}

/* Fused row, kW 3, sW 1, dW 1: taps T[j], T[j+1], T[j+2] as lane shifts of two vertical blocks. */
INL void SFX(p_row_s1k3)(float *yr, ptrdiff_t oW, const float *const *rows, int nr, ptrdiff_t pW, ptrdiff_t iW,
                         const int avg, const float *cnt, float cdh) {
    const VF vc = VSET(cdh);
    VF V = SFX(p_vblock)(rows, nr, -pW, iW, avg);
    for (ptrdiff_t ow = 0; ow < oW; ow += W) {
        const VF Vn = SFX(p_vblock)(rows, nr, ow + W - pW, iW, avg);
        const VF S1 = SFX(p_shift1)(V, Vn), S2 = SFX(p_shift2)(V, Vn);
        const VF r = avg ? VADD(VADD(V, S1), S2) : VMAX(S2, VMAX(S1, V));
        V = Vn;
        SFX(p_put)(yr, ow, oW, r, avg, cnt, vc);
    }
}

/* Generic row, horizontal part: yr[ow] = reduce over the K taps of P[tap[k] + ow] (the tap streams
   hold no NaN). Whole-vector reads stay inside the scratch slack. */
INL void SFX(p_horizontal)(float *yr, ptrdiff_t oW, const float *P, const ptrdiff_t *tap, const int K,
                           const int avg, const float *cnt, float cdh) {
    const VF vc = VSET(cdh);
    for (ptrdiff_t ow = 0; ow < oW; ow += W) {
        VF a = VLD(P + tap[0] + ow);
        for (int k = 1; k < K; k++) {
            const VF v = VLD(P + tap[k] + ow);
            a = avg ? VADD(a, v) : VMAX(v, a);
        }
        SFX(p_put)(yr, ow, oW, a, avg, cnt, vc);
    }
}

/* The pooling driver. FAST: KW / SW / DW are the constants of a fused row kernel. */
INL void SFX(p_drive)(const so_pool_geom *g, const float *x, float *y, size_t planes, const int avg, const int incl,
                      void *scratch, const int FAST, const int KW, const int SW, const int DW) {
    const ptrdiff_t oD = g->oD, oH = g->oH, oW = g->oW;
    if (oD <= 0 || oH <= 0 || oW <= 0 || planes == 0) return;
    const pool_layout L = pool_layout_of(g);
    void *owned = NULL;
    if (!scratch) {
        owned = malloc(L.bytes);
        if (!owned) { /* out of memory: the reference needs no scratch */
            pool_ref(g, x, y, planes, avg, incl);
            return;
        }
        scratch = owned;
    }
    float *T = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    float *P = SW > 1 ? T + L.Tlen : T;
    float *cnt = T + L.Tlen + L.nP;
    const float **rows = (const float **)(cnt + L.ncnt);
    ptrdiff_t *taps = (ptrdiff_t *)(rows + L.nrows);
    pool_win *winD = (pool_win *)(taps + L.ntaps), *winH = winD + oD;
    for (ptrdiff_t od = 0; od < oD; od++) winD[od] = pool_axis(od, g->iD, g->kD, g->sD, g->dD, g->pD, g->eD);
    for (ptrdiff_t oh = 0; oh < oH; oh++) winH[oh] = pool_axis(oh, g->iH, g->kH, g->sH, g->dH, g->pH, g->eH);

    if (!FAST) {
        /* slack past the vertical blocks: any finite value (it feeds only lanes past oW) */
        for (ptrdiff_t i = 0; i < L.Tlen; i++) T[i] = 0.0f;
        if (SW > 1) memset(P, 0, sizeof(float) * (size_t)L.nP);
        for (int k = 0; k < KW; k++) taps[k] = (ptrdiff_t)((k * DW) % SW) * L.PS + (k * DW) / SW;
    }
    if (avg) {
        for (ptrdiff_t ow = 0; ow < L.ncnt; ow++) {
            float c = 1.0f;
            if (ow < oW) {
                const pool_win ww = pool_axis(ow, g->iW, KW, SW, DW, g->pW, g->eW);
                c = (float)(incl ? ww.pad : ww.hi - ww.lo);
            }
            cnt[ow] = c;
        }
    }

    const ptrdiff_t iH = g->iH, iW = g->iW, pW = g->pW;
    const ptrdiff_t inPlane = (ptrdiff_t)g->iD * iH * iW, outPlane = oD * oH * oW;
    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + (ptrdiff_t)p * inPlane;
        float *yr = y + (ptrdiff_t)p * outPlane;
        for (ptrdiff_t od = 0; od < oD; od++) {
            const pool_win wd = winD[od];
            for (ptrdiff_t oh = 0; oh < oH; oh++, yr += oW) {
                const pool_win wh = winH[oh];
                int nr = 0;
                for (int kd = wd.lo; kd < wd.hi; kd++) {
                    const ptrdiff_t id = od * g->sD - g->pD + (ptrdiff_t)kd * g->dD;
                    for (int kh = wh.lo; kh < wh.hi; kh++) {
                        const ptrdiff_t ih = oh * g->sH - g->pH + (ptrdiff_t)kh * g->dH;
                        rows[nr++] = xp + (id * iH + ih) * iW;
                    }
                }
                const float cdh = (float)(incl ? wd.pad * wh.pad : (wd.hi - wd.lo) * (wh.hi - wh.lo));
                if (FAST) {
                    /* up to 3 rows as a constant count with the pointers in registers (max may
                       repeat a row: max(a, a) = a) */
#define SO_FAST_ROW(RR, NR)                                                        \
    do {                                                                           \
        if (SW == 2) SFX(p_row_s2)(yr, oW, RR, NR, pW, iW, KW, avg, cnt, cdh);     \
        else SFX(p_row_s1k3)(yr, oW, RR, NR, pW, iW, avg, cnt, cdh);               \
    } while (0)
                    const float *r3[3] = {NULL, NULL, NULL};
                    if (nr >= 1 && nr <= 3) {
                        r3[0] = rows[0];
                        r3[1] = rows[nr > 1 ? 1 : 0];
                        r3[2] = rows[nr > 2 ? 2 : nr - 1];
                    }
                    if (nr >= 1 && nr <= 3 && !avg) SO_FAST_ROW(r3, 3);
                    else if (nr == 3) SO_FAST_ROW(r3, 3);
                    else if (nr == 2) SO_FAST_ROW(r3, 2);
                    else if (nr == 1) SO_FAST_ROW(r3, 1);
                    else SO_FAST_ROW(rows, nr);
#undef SO_FAST_ROW
                    continue;
                }
                /* generic: the padded vertical row T (aligned whole blocks), the phase split, taps */
                for (ptrdiff_t t = 0; t < L.span; t += W) VST(T + t, SFX(p_vblock)(rows, nr, t - pW, iW, avg));
                if (SW == 2) {
                    for (ptrdiff_t q = 0; q < L.Q; q += W) {
                        VF e, o;
                        SFX(p_deint)(VLD(T + 2 * q), VLD(T + 2 * q + W), &e, &o);
                        VST(P + q, e);
                        VST(P + L.PS + q, o);
                    }
                } else if (SW > 2) {
                    for (int ph = 0; ph < SW; ph++) {
                        float *d = P + ph * L.PS;
                        const float *s = T + ph;
#pragma clang loop vectorize(disable)
                        for (ptrdiff_t q = 0; q < L.Q; q++) d[q] = s[q * SW];
                    }
                }
                SFX(p_horizontal)(yr, oW, P, taps, KW, avg, cnt, cdh);
            }
        }
    }
    free(owned);
}

/* Fast paths (W axis: kernel x stride, dilation 1; any H / D geometry and pads) and the generic.
   Kept out of line so each is one named function of its own (objdump shows them). */
#define FP static __attribute__((noinline)) void
FP SFX(f32_maxpool2d_3x3s2)(const so_pool_geom *g, const float *x, float *y, size_t planes, void *s) {
    SFX(p_drive)(g, x, y, planes, 0, 0, s, 1, 3, 2, 1);
}
FP SFX(f32_maxpool2d_2x2s2)(const so_pool_geom *g, const float *x, float *y, size_t planes, void *s) {
    SFX(p_drive)(g, x, y, planes, 0, 0, s, 1, 2, 2, 1);
}
FP SFX(f32_maxpool2d_3x3s1)(const so_pool_geom *g, const float *x, float *y, size_t planes, void *s) {
    SFX(p_drive)(g, x, y, planes, 0, 0, s, 1, 3, 1, 1);
}
FP SFX(f32_maxpool2d_any)(const so_pool_geom *g, const float *x, float *y, size_t planes, void *s) {
    SFX(p_drive)(g, x, y, planes, 0, 0, s, 0, g->kW, g->sW, g->dW);
}
FP SFX(f32_avgpool2d_3x3s2)(const so_pool_geom *g, const float *x, float *y, size_t planes, int incl, void *s) {
    SFX(p_drive)(g, x, y, planes, 1, incl != 0, s, 1, 3, 2, 1);
}
FP SFX(f32_avgpool2d_2x2s2)(const so_pool_geom *g, const float *x, float *y, size_t planes, int incl, void *s) {
    SFX(p_drive)(g, x, y, planes, 1, incl != 0, s, 1, 2, 2, 1);
}
FP SFX(f32_avgpool2d_3x3s1)(const so_pool_geom *g, const float *x, float *y, size_t planes, int incl, void *s) {
    SFX(p_drive)(g, x, y, planes, 1, incl != 0, s, 1, 3, 1, 1);
}
FP SFX(f32_avgpool2d_any)(const so_pool_geom *g, const float *x, float *y, size_t planes, int incl, void *s) {
    SFX(p_drive)(g, x, y, planes, 1, incl != 0, s, 0, g->kW, g->sW, g->dW);
}

#undef FP

static void SFX(f32_maxpool2d)(const so_pool_geom *g, const float *x, float *y, size_t planes, void *scratch) {
    if (g->dW == 1 && g->kW == 3 && g->sW == 2) SFX(f32_maxpool2d_3x3s2)(g, x, y, planes, scratch);
    else if (g->dW == 1 && g->kW == 2 && g->sW == 2) SFX(f32_maxpool2d_2x2s2)(g, x, y, planes, scratch);
    else if (g->dW == 1 && g->kW == 3 && g->sW == 1) SFX(f32_maxpool2d_3x3s1)(g, x, y, planes, scratch);
    else SFX(f32_maxpool2d_any)(g, x, y, planes, scratch);
}

static void SFX(f32_avgpool2d)(const so_pool_geom *g, const float *x, float *y, size_t planes, int incl,
                               void *scratch) {
    if (g->dW == 1 && g->kW == 3 && g->sW == 2) SFX(f32_avgpool2d_3x3s2)(g, x, y, planes, incl, scratch);
    else if (g->dW == 1 && g->kW == 2 && g->sW == 2) SFX(f32_avgpool2d_2x2s2)(g, x, y, planes, incl, scratch);
    else if (g->dW == 1 && g->kW == 3 && g->sW == 1) SFX(f32_avgpool2d_3x3s1)(g, x, y, planes, incl, scratch);
    else SFX(f32_avgpool2d_any)(g, x, y, planes, incl, scratch);
}

/* Max of n floats skipping NaNs (-inf when empty). */
INL float SFX(g_max)(const float *p, size_t n) {
    const VF ninf = VSET(-INFINITY);
    VF a0 = ninf, a1 = ninf, a2 = ninf, a3 = ninf;
    size_t i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
        a0 = VMAX(VLD(p + i), a0);
        a1 = VMAX(VLD(p + i + W), a1);
        a2 = VMAX(VLD(p + i + 2 * W), a2);
        a3 = VMAX(VLD(p + i + 3 * W), a3);
    }
    for (; i + W <= n; i += W) a0 = VMAX(VLD(p + i), a0);
    if (i < n) a1 = VMAX(VLDF(p + i, SFX(p_mask)((ptrdiff_t)(n - i)), ninf), a1);
    return SFX(p_hmax)(VMAX(VMAX(a0, a1), VMAX(a2, a3)));
}

static void SFX(f32_global_pool)(const float *x, float *y, size_t planes, size_t size, int is_max) {
    if (is_max) {
        for (size_t p = 0; p < planes; p++) y[p] = SFX(g_max)(x + p * size, size);
    } else {
        so_f32_reduce_rows_select(SO_LEVEL)(SO_RED_SUM, x, planes, size, y);
        for (size_t p = 0; p < planes; p++) y[p] = size > 0 ? y[p] / (float)size : NAN;
    }
}

#undef INL
#undef VF
#undef VM
#undef VLD
#undef VST
#undef VSET
#undef VADD
#undef VMUL
#undef VDIV
#undef VMAX
#undef VLDF
#undef VSTM

#endif /* SO_POOL_TEMPLATE */
