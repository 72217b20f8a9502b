/*
 * Integer GEMM family (u8 activations x s8 weights -> s32, exact) and requantization.
 *   i8_gemm_4x8_scalar   the reference (plain C, one int32 sum per element)
 *   i8_gemm_6x16_avx2    AVX2: values packed as int16 pairs with their zero points subtracted,
 *                        vpmaddwd into 12 ymm int32 accumulators
 *   i8_gemm_8x32_avx512vnni  AVX-512 VNNI: the bytes packed as they are, in quads of k; vpdpbusd
 *                        (u8 activations x s8 weights, four products per int32 lane) into 16 zmm
 *                        accumulators; the zero points applied afterwards through the weights' row
 *                        sums and the activations' column sums
 * All variants compute the same integers (see so_i8_gemm.h).
 */
#include "so_isa.h"
#include "so_i8_gemm.h"
#include "i8_shared.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static void requantize_scalar(size_t rows, size_t cols, const int32_t *c, size_t ldc, const int32_t *bias,
                              const float *scale, int32_t yzp, int32_t lo, int32_t hi, int is_signed,
                              void *y, size_t ldy);

size_t so_i8_gemm_packed_a_bytes(const so_i8_gemm *g, size_t m, size_t k) {
    size_t kpad = (k + (size_t)g->kg - 1) / (size_t)g->kg * (size_t)g->kg;
    return ((m + (size_t)g->mr - 1) / (size_t)g->mr) * (size_t)g->mr * kpad * (size_t)g->elem_a;
}

size_t so_i8_gemm_packed_b_bytes(const so_i8_gemm *g, size_t kc, size_t nc) {
    size_t kpad = (kc + (size_t)g->kg - 1) / (size_t)g->kg * (size_t)g->kg;
    return ((nc + (size_t)g->nr - 1) / (size_t)g->nr) * (size_t)g->nr * kpad * (size_t)g->elem_b;
}

/* d[i] = s[2i] for i < n (stride-2 taps): 16 at a time with SSE2 (the low bytes of 16-bit lanes). */
static inline void gather_even(const uint8_t *s, size_t n, uint8_t *d) {
    size_t i = 0;
#if defined(__x86_64__)
    const __m128i lowBytes = _mm_set1_epi16(0x00FF);
    /* the last vector reads s[2i + 31]; the loop stops while that is still inside the run's bytes
       (s[0 .. 2n - 2]) */
    for (; i + 16 <= n && 2 * i + 32 <= 2 * n - 1; i += 16) {
        __m128i a = _mm_and_si128(_mm_loadu_si128((const __m128i *)(s + 2 * i)), lowBytes);
        __m128i b = _mm_and_si128(_mm_loadu_si128((const __m128i *)(s + 2 * i + 16)), lowBytes);
        _mm_storeu_si128((__m128i *)(d + i), _mm_packus_epi16(a, b));
    }
#endif
    for (; i < n; i++) d[i] = s[2 * i];
}

void so_u8_im2col(const uint8_t *x, size_t c, size_t h, size_t w, size_t kh, size_t kw, size_t sh, size_t sw,
                  size_t dh, size_t dw, ptrdiff_t pt, ptrdiff_t pl, size_t oh, size_t ow, uint8_t fill, size_t p0,
                  size_t p1, uint8_t *col) {
    const size_t n = p1 - p0;
    if (p1 <= p0 || ow == 0) return;
    (void)oh;
    const size_t oy0 = p0 / ow, a0 = p0 - oy0 * ow;   /* where the first position is */
    for (size_t ch = 0; ch < c; ch++) {
        const uint8_t *plane = x + ch * h * w;
        for (size_t ky = 0; ky < kh; ky++) {
            for (size_t kx = 0; kx < kw; kx++) {
                uint8_t *row = col + ((ch * kh + ky) * kw + kx) * n;
                const ptrdiff_t x0 = (ptrdiff_t)(kx * dw) - pl;
                /* output columns whose tap is inside the image: lo <= ox < hi */
                ptrdiff_t lo = x0 >= 0 ? 0 : (-x0 + (ptrdiff_t)sw - 1) / (ptrdiff_t)sw;
                ptrdiff_t hi = (ptrdiff_t)w - x0 <= 0 ? 0 : ((ptrdiff_t)w - x0 + (ptrdiff_t)sw - 1) / (ptrdiff_t)sw;
                if (lo > (ptrdiff_t)ow) lo = (ptrdiff_t)ow;
                if (hi > (ptrdiff_t)ow) hi = (ptrdiff_t)ow;
                if (hi < lo) hi = lo;
                /* the positions [p0, p1) run over output rows, each a segment [a, b) of columns */
                size_t oy = oy0, a = a0;
                for (size_t p = p0; p < p1; oy++, a = 0) {
                    const size_t b = p1 - p >= ow - a ? ow : a + (p1 - p);
                    uint8_t *dst = row + (p - p0);   /* column a of output row oy */
                    const ptrdiff_t iy = (ptrdiff_t)(oy * sh) - pt + (ptrdiff_t)(ky * dh);
                    p += b - a;
                    if (iy < 0 || iy >= (ptrdiff_t)h) { memset(dst, fill, b - a); continue; }
                    const ptrdiff_t pa = (ptrdiff_t)a, pb = (ptrdiff_t)b;
                    const ptrdiff_t s0 = lo > pa ? lo : pa, s1 = hi < pb ? hi : pb;   /* inside: [s0, s1) */
                    if (s1 <= s0) { memset(dst, fill, b - a); continue; }
                    const uint8_t *src = plane + (size_t)iy * w;
                    if (s0 > pa) memset(dst, fill, (size_t)(s0 - pa));
                    if (sw == 1) {
                        memcpy(dst + (s0 - pa), src + s0 + x0, (size_t)(s1 - s0));
                    } else if (sw == 2) {
                        gather_even(src + s0 * 2 + x0, (size_t)(s1 - s0), dst + (s0 - pa));
                    } else {
                        for (ptrdiff_t ox = s0; ox < s1; ox++) dst[ox - pa] = src[ox * (ptrdiff_t)sw + x0];
                    }
                    if (s1 < pb) memset(dst + (s1 - pa), fill, (size_t)(pb - s1));
                }
            }
        }
    }
}

void so_i8_flip_sign(uint8_t *p, size_t count) {
    for (size_t i = 0; i < count; i++) p[i] ^= 0x80;
}

/* ---- int16 packing (shared by the reference and the AVX2 variant) ----
 * A panel: for each group of kg values, mr rows x kg int16; B panel: for each group, nr columns x kg
 * int16. Zero points are subtracted here, so padding (zero) adds nothing. */

static inline __attribute__((always_inline))
void pack_a_i16(int mr, int kg, size_t m, size_t k, const int8_t *a, size_t rs, size_t cs, const int32_t *azp,
                int16_t *dst) {
    size_t kpad = (k + (size_t)kg - 1) / (size_t)kg * (size_t)kg;
    for (size_t p = 0; p < m; p += (size_t)mr) {
        size_t rows = m - p < (size_t)mr ? m - p : (size_t)mr;
        for (size_t k0 = 0; k0 < kpad; k0 += (size_t)kg) {
            for (size_t r = 0; r < (size_t)mr; r++) {
                int32_t z = (r < rows && azp) ? azp[p + r] : 0;
                for (size_t t = 0; t < (size_t)kg; t++) {
                    size_t kk = k0 + t;
                    dst[r * (size_t)kg + t] = (r < rows && kk < k) ? (int16_t)((int32_t)a[(p + r) * rs + kk * cs] - z) : 0;
                }
            }
            dst += (size_t)mr * (size_t)kg;
        }
    }
}

static inline __attribute__((always_inline))
void pack_b_i16(int nr, int kg, size_t kc, size_t nc, const uint8_t *b, size_t rs, size_t cs, int32_t bzp,
                int16_t *dst) {
    size_t kpad = (kc + (size_t)kg - 1) / (size_t)kg * (size_t)kg;
    for (size_t q = 0; q < nc; q += (size_t)nr) {
        size_t cols = nc - q < (size_t)nr ? nc - q : (size_t)nr;
        for (size_t k0 = 0; k0 < kpad; k0 += (size_t)kg) {
            if (kg == 2 && cs == 1 && cols == (size_t)nr && k0 + 1 < kc) {
                const uint8_t *r0 = b + k0 * rs + q, *r1 = r0 + rs;
                for (int c = 0; c < nr; c++) {
                    dst[2 * c] = (int16_t)((int32_t)r0[c] - bzp);
                    dst[2 * c + 1] = (int16_t)((int32_t)r1[c] - bzp);
                }
            } else {
                for (size_t c = 0; c < (size_t)nr; c++) {
                    for (size_t t = 0; t < (size_t)kg; t++) {
                        size_t kk = k0 + t;
                        dst[c * (size_t)kg + t] = (c < cols && kk < kc) ? (int16_t)((int32_t)b[kk * rs + (q + c) * cs] - bzp) : 0;
                    }
                }
            }
            dst += (size_t)nr * (size_t)kg;
        }
    }
}

/* ---- scalar reference ---- */

static void i8_pack_a_scalar(size_t m, size_t k, const int8_t *a, size_t rs, size_t cs, const int32_t *azp, void *dst) {
    pack_a_i16(4, 2, m, k, a, rs, cs, azp, (int16_t *)dst);
}

static void i8_pack_b_scalar(size_t kc, size_t nc, const uint8_t *b, size_t rs, size_t cs, int32_t bzp, void *dst) {
    pack_b_i16(8, 2, kc, nc, b, rs, cs, bzp, (int16_t *)dst);
}

static void i8_gemm_4x8_scalar(size_t mc, size_t nc, size_t kc, const void *pa, size_t pa_stride, const void *pb,
                               size_t pb_stride, const int32_t *azp, int32_t bzp, int32_t *c, size_t ldc,
                               int accumulate, const so_i8_requant *rq) {
    (void)azp; (void)bzp;   /* subtracted at packing */
    const size_t mr = 4, nr = 8, groups = (kc + 1) / 2;
    for (size_t p = 0; p < mc; p += mr) {
        const int16_t *ap = (const int16_t *)((const char *)pa + (p / mr) * pa_stride);
        size_t rows = mc - p < mr ? mc - p : mr;
        for (size_t q = 0; q < nc; q += nr) {
            const int16_t *bp = (const int16_t *)((const char *)pb + (q / nr) * pb_stride);
            size_t cols = nc - q < nr ? nc - q : nr;
            for (size_t r = 0; r < rows; r++) {
                for (size_t j = 0; j < cols; j++) {
                    int32_t s = 0;
                    for (size_t g = 0; g < groups; g++) {
                        s += (int32_t)ap[g * mr * 2 + r * 2] * bp[g * nr * 2 + j * 2]
                           + (int32_t)ap[g * mr * 2 + r * 2 + 1] * bp[g * nr * 2 + j * 2 + 1];
                    }
                    int32_t *o = c + (p + r) * ldc + q + j;
                    *o = accumulate ? *o + s : s;
                }
            }
        }
    }
    if (rq) requantize_scalar(mc, nc, c, ldc, rq->bias, rq->scale, rq->yzp, rq->lo, rq->hi, rq->is_signed, rq->y, rq->ldy);
}

static const so_i8_gemm i8_gemm_scalar = {
    SO_ISA_SCALAR, 4, 8, 2, 2, 2, 0, "i8_gemm_4x8_scalar",
    i8_pack_a_scalar, i8_pack_b_scalar, i8_gemm_4x8_scalar,
};

/* Requantization, one value: the reference of every variant. */
static inline __attribute__((always_inline))
int32_t requant_one(int32_t acc, int32_t bias, float scale, int32_t yzp, int32_t lo, int32_t hi) {
    float v = (float)(acc + bias) * scale;
    /* Far outside every 8-bit range either way: bounded to +-2^30 first (NaN to the lower bound),
       so the conversion and the zero point's add stay in int32. */
    if (!(v > -1073741824.0f)) v = -1073741824.0f;
    if (v > 1073741824.0f) v = 1073741824.0f;
    int32_t q = (int32_t)nearbyintf(v) + yzp;   /* the default rounding: to nearest, ties to even */
    return q < lo ? lo : q > hi ? hi : q;
}

static void requantize_scalar(size_t rows, size_t cols, const int32_t *c, size_t ldc, const int32_t *bias,
                              const float *scale, int32_t yzp, int32_t lo, int32_t hi, int is_signed,
                              void *y, size_t ldy) {
    for (size_t i = 0; i < rows; i++) {
        int32_t b = bias ? bias[i] : 0;
        const int32_t *ci = c + i * ldc;
        if (is_signed) {
            int8_t *yi = (int8_t *)y + i * ldy;
            for (size_t j = 0; j < cols; j++) yi[j] = (int8_t)requant_one(ci[j], b, scale[i], yzp, lo, hi);
        } else {
            uint8_t *yi = (uint8_t *)y + i * ldy;
            for (size_t j = 0; j < cols; j++) yi[j] = (uint8_t)requant_one(ci[j], b, scale[i], yzp, lo, hi);
        }
    }
}

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)

static void requantize_avx2(size_t rows, size_t cols, const int32_t *c, size_t ldc, const int32_t *bias,
                            const float *scale, int32_t yzp, int32_t lo, int32_t hi, int is_signed,
                            void *y, size_t ldy);

static void i8_pack_a_avx2(size_t m, size_t k, const int8_t *a, size_t rs, size_t cs, const int32_t *azp, void *dst) {
    pack_a_i16(6, 2, m, k, a, rs, cs, azp, (int16_t *)dst);
}

/* Full 16-column panels of a row-major block two rows at a time: 16 bytes of each row widened to
   int16 minus the zero point, interleaved into (row k, row k+1) pairs per column. The rest (an odd
   last row, a partial last panel, strided B) goes through the shared packing. */
static void i8_pack_b_avx2(size_t kc, size_t nc, const uint8_t *b, size_t rs, size_t cs, int32_t bzp, void *dst) {
    if (cs != 1 || nc < 16) { pack_b_i16(16, 2, kc, nc, b, rs, cs, bzp, (int16_t *)dst); return; }
    const size_t full = nc / 16 * 16, kpad = (kc + 1) / 2 * 2;
    const __m256i vz = _mm256_set1_epi16((short)bzp);
    int16_t *out = (int16_t *)dst;
    for (size_t q = 0; q < full; q += 16) {
        int16_t *panel = out + (q / 16) * 16 * kpad;
        size_t k0 = 0;
        for (; k0 + 1 < kc; k0 += 2) {
            __m256i r0 = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(b + k0 * rs + q))), vz);
            __m256i r1 = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(b + (k0 + 1) * rs + q))), vz);
            /* unpack works within 128-bit lanes: lo = columns 0-3 | 8-11, hi = 4-7 | 12-15 */
            __m256i lo = _mm256_unpacklo_epi16(r0, r1), hi = _mm256_unpackhi_epi16(r0, r1);
            int16_t *d = panel + k0 * 16;
            _mm256_storeu_si256((__m256i *)d, _mm256_permute2x128_si256(lo, hi, 0x20));
            _mm256_storeu_si256((__m256i *)(d + 16), _mm256_permute2x128_si256(lo, hi, 0x31));
        }
        if (k0 < kc) {   /* odd k: the last row paired with zero */
            __m256i r0 = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(b + k0 * rs + q))), vz);
            __m256i z = _mm256_setzero_si256();
            __m256i lo = _mm256_unpacklo_epi16(r0, z), hi = _mm256_unpackhi_epi16(r0, z);
            int16_t *d = panel + k0 * 16;
            _mm256_storeu_si256((__m256i *)d, _mm256_permute2x128_si256(lo, hi, 0x20));
            _mm256_storeu_si256((__m256i *)(d + 16), _mm256_permute2x128_si256(lo, hi, 0x31));
        }
    }
    if (full < nc) pack_b_i16(16, 2, kc, nc - full, b + full, rs, cs, bzp, out + (full / 16) * 16 * kpad);
}

/* One 6 x 16 tile over `groups` pairs of k: 12 accumulators (rows x two halves of 8 columns). */
static inline __attribute__((always_inline))
void tile_6x16_avx2(size_t groups, const int16_t *ap, const int16_t *bp, int32_t *c, size_t ldc, size_t rows,
                    size_t cols, int accumulate) {
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256i c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const int32_t *a32 = (const int32_t *)ap;
    for (size_t g = 0; g < groups; g++) {
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(bp + g * 32));
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(bp + g * 32 + 16));
        const int32_t *ar = a32 + g * 6;
        __m256i a;
        a = _mm256_set1_epi32(ar[0]);
        c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(a, b0)); c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(a, b1));
        a = _mm256_set1_epi32(ar[1]);
        c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(a, b0)); c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(a, b1));
        a = _mm256_set1_epi32(ar[2]);
        c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(a, b0)); c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(a, b1));
        a = _mm256_set1_epi32(ar[3]);
        c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(a, b0)); c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(a, b1));
        a = _mm256_set1_epi32(ar[4]);
        c40 = _mm256_add_epi32(c40, _mm256_madd_epi16(a, b0)); c41 = _mm256_add_epi32(c41, _mm256_madd_epi16(a, b1));
        a = _mm256_set1_epi32(ar[5]);
        c50 = _mm256_add_epi32(c50, _mm256_madd_epi16(a, b0)); c51 = _mm256_add_epi32(c51, _mm256_madd_epi16(a, b1));
    }
    __m256i acc[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
    if (cols == 16) {
        for (size_t r = 0; r < rows; r++) {
            int32_t *o = c + r * ldc;
            __m256i v0 = acc[2 * r], v1 = acc[2 * r + 1];
            if (accumulate) {
                v0 = _mm256_add_epi32(v0, _mm256_loadu_si256((const __m256i *)o));
                v1 = _mm256_add_epi32(v1, _mm256_loadu_si256((const __m256i *)(o + 8)));
            }
            _mm256_storeu_si256((__m256i *)o, v0);
            _mm256_storeu_si256((__m256i *)(o + 8), v1);
        }
    } else {
        int32_t buf[16];
        for (size_t r = 0; r < rows; r++) {
            int32_t *o = c + r * ldc;
            _mm256_storeu_si256((__m256i *)buf, acc[2 * r]);
            _mm256_storeu_si256((__m256i *)(buf + 8), acc[2 * r + 1]);
            for (size_t j = 0; j < cols; j++) o[j] = accumulate ? o[j] + buf[j] : buf[j];
        }
    }
}

static void i8_gemm_6x16_avx2(size_t mc, size_t nc, size_t kc, const void *pa, size_t pa_stride, const void *pb,
                              size_t pb_stride, const int32_t *azp, int32_t bzp, int32_t *c, size_t ldc,
                              int accumulate, const so_i8_requant *rq) {
    (void)azp; (void)bzp;   /* subtracted at packing */
    const size_t mr = 6, nr = 16, groups = (kc + 1) / 2;
    for (size_t q = 0; q < nc; q += nr) {
        const int16_t *bp = (const int16_t *)((const char *)pb + (q / nr) * pb_stride);
        size_t cols = nc - q < nr ? nc - q : nr;
        for (size_t p = 0; p < mc; p += mr) {
            const int16_t *ap = (const int16_t *)((const char *)pa + (p / mr) * pa_stride);
            size_t rows = mc - p < mr ? mc - p : mr;
            tile_6x16_avx2(groups, ap, bp, c + p * ldc + q, ldc, rows, cols, accumulate);
        }
    }
    if (rq) requantize_avx2(mc, nc, c, ldc, rq->bias, rq->scale, rq->yzp, rq->lo, rq->hi, rq->is_signed, rq->y, rq->ldy);
}

static const so_i8_gemm i8_gemm_avx2 = {
    SO_ISA_AVX2, 6, 16, 2, 2, 2, 0, "i8_gemm_6x16_avx2",
    i8_pack_a_avx2, i8_pack_b_avx2, i8_gemm_6x16_avx2,
};

static void requantize_avx2(size_t rows, size_t cols, const int32_t *c, size_t ldc, const int32_t *bias,
                            const float *scale, int32_t yzp, int32_t lo, int32_t hi, int is_signed,
                            void *y, size_t ldy) {
    const __m256 big = _mm256_set1_ps(1073741824.0f), nbig = _mm256_set1_ps(-1073741824.0f);
    const __m256i vzp = _mm256_set1_epi32(yzp), vlo = _mm256_set1_epi32(lo), vhi = _mm256_set1_epi32(hi);
    for (size_t i = 0; i < rows; i++) {
        int32_t b = bias ? bias[i] : 0;
        const int32_t *ci = c + i * ldc;
        __m256i vb = _mm256_set1_epi32(b);
        __m256 vs = _mm256_set1_ps(scale[i]);
        size_t j = 0;
        for (; j + 8 <= cols; j += 8) {
            __m256i acc = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(ci + j)), vb);
            __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), vs);
            v = _mm256_min_ps(_mm256_max_ps(v, nbig), big);   /* as the reference (maxps gives nbig for NaN) */
            __m256i s = _mm256_add_epi32(_mm256_cvtps_epi32(v), vzp);   /* to nearest, ties to even */
            s = _mm256_min_epi32(_mm256_max_epi32(s, vlo), vhi);
            __m128i s16 = _mm_packs_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            __m128i s8 = is_signed ? _mm_packs_epi16(s16, s16) : _mm_packus_epi16(s16, s16);
            _mm_storel_epi64((__m128i *)((char *)y + i * ldy + j), s8);
        }
        for (; j < cols; j++) {
            int32_t v = requant_one(ci[j], b, scale[i], yzp, lo, hi);
            if (is_signed) ((int8_t *)y)[i * ldy + j] = (int8_t)v; else ((uint8_t *)y)[i * ldy + j] = (uint8_t)v;
        }
    }
}

#pragma clang attribute pop
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,fma"))), apply_to = function)

/* ---- AVX-512 VNNI: raw bytes in quads of k ----
 * A panel: for each quad, 8 rows x 4 signed bytes (32 bytes); B panel: for each quad, 32 columns x 4
 * unsigned bytes (128 bytes, column j's four values at 4j). Padding (k past the end, rows past m,
 * columns past n) is 0, which adds nothing to a product or a sum. The zero points cannot be
 * subtracted from bytes without leaving their range, so the macro applies them:
 *     sum (a - az)(b - bz) = sum a*b - bz * sum a - az * sum b + kc * az * bz. */

static void i8_pack_a_vnni(size_t m, size_t k, const int8_t *a, size_t rs, size_t cs, const int32_t *azp, void *dst) {
    (void)azp;   /* applied by the macro */
    const size_t mr = 8, kpad = (k + 3) / 4 * 4;
    int8_t *d = (int8_t *)dst;
    for (size_t p = 0; p < m; p += mr) {
        size_t rows = m - p < mr ? m - p : mr;
        for (size_t k0 = 0; k0 < kpad; k0 += 4) {
            for (size_t r = 0; r < mr; r++) {
                for (size_t t = 0; t < 4; t++) {
                    size_t kk = k0 + t;
                    d[r * 4 + t] = (r < rows && kk < k) ? a[(p + r) * rs + kk * cs] : 0;
                }
            }
            d += mr * 4;
        }
    }
}

static void i8_pack_b_vnni(size_t kc, size_t nc, const uint8_t *b, size_t rs, size_t cs, int32_t bzp, void *dst) {
    (void)bzp;   /* applied by the macro */
    const size_t nr = 32, kpad = (kc + 3) / 4 * 4;
    uint8_t *out = (uint8_t *)dst;
    const size_t full = cs == 1 ? nc / nr * nr : 0;
    for (size_t q = 0; q < full; q += nr) {
        uint8_t *panel = out + (q / nr) * nr * kpad;
        size_t k0 = 0;
        for (; k0 + 4 <= kc; k0 += 4) {
            const uint8_t *s0 = b + k0 * rs + q, *s1 = s0 + rs, *s2 = s1 + rs, *s3 = s2 + rs;
            uint8_t *d = panel + k0 * nr;
            quads_16(_mm_loadu_si128((const __m128i *)s0), _mm_loadu_si128((const __m128i *)s1),
                     _mm_loadu_si128((const __m128i *)s2), _mm_loadu_si128((const __m128i *)s3), d);
            quads_16(_mm_loadu_si128((const __m128i *)(s0 + 16)), _mm_loadu_si128((const __m128i *)(s1 + 16)),
                     _mm_loadu_si128((const __m128i *)(s2 + 16)), _mm_loadu_si128((const __m128i *)(s3 + 16)), d + 64);
        }
        if (k0 < kc) {   /* the last 1-3 rows, with zero rows after them */
            __m128i r[4][2];
            for (size_t t = 0; t < 4; t++) {
                for (size_t h = 0; h < 2; h++) {
                    r[t][h] = k0 + t < kc ? _mm_loadu_si128((const __m128i *)(b + (k0 + t) * rs + q + 16 * h))
                                          : _mm_setzero_si128();
                }
            }
            uint8_t *d = panel + k0 * nr;
            quads_16(r[0][0], r[1][0], r[2][0], r[3][0], d);
            quads_16(r[0][1], r[1][1], r[2][1], r[3][1], d + 64);
        }
    }
    for (size_t q = full; q < nc; q += nr) {   /* a partial last panel, or strided B */
        size_t cols = nc - q < nr ? nc - q : nr;
        uint8_t *d = out + (q / nr) * nr * kpad;
        if (rs == 1) {   /* B = X transposed (columns are rows of X): each quad is 4 consecutive bytes */
            size_t kfull = kc / 4 * 4;
            for (size_t k0 = 0; k0 < kpad; k0 += 4) {
                for (size_t j = 0; j < nr; j++) {
                    uint32_t v = 0;
                    if (j < cols) {
                        const uint8_t *s = b + k0 + (q + j) * cs;
                        if (k0 < kfull) memcpy(&v, s, 4);
                        else for (size_t t = 0; k0 + t < kc; t++) v |= (uint32_t)s[t] << (8 * t);
                    }
                    memcpy(d + j * 4, &v, 4);
                }
                d += nr * 4;
            }
            continue;
        }
        for (size_t k0 = 0; k0 < kpad; k0 += 4) {
            for (size_t j = 0; j < nr; j++) {
                for (size_t t = 0; t < 4; t++) {
                    size_t kk = k0 + t;
                    d[j * 4 + t] = (j < cols && kk < kc) ? b[kk * rs + (q + j) * cs] : 0;
                }
            }
            d += nr * 4;
        }
    }
}

/* Row r of an 8 x 32 tile (sums a0, a1): the zero points applied (rs: the rows' sums of A, cs0/cs1 the
   columns' sums of B), then stored, added to C, or requantized (rq) and stored as bytes. */
static inline __attribute__((always_inline))
void epilogue_row_vnni(__m512i a0, __m512i a1, size_t r, size_t kc, const int32_t *rs, __m512i cs0, __m512i cs1,
                       const int32_t *azp, int32_t bzp, int32_t *c, size_t ldc, __mmask16 m0, __mmask16 m1,
                       int accumulate, const so_i8_requant *rq, size_t row0, size_t col0, __m512i vzp, __m512 vlo,
                       __m512 vhi) {
    int32_t az = azp ? azp[r] : 0;
    /* - bz * sum a + kc * az * bz, then - az * sum b */
    /* in wrapping unsigned arithmetic: the parts may pass 2^31, the total fits int32 */
    uint32_t f = (uint32_t)kc * (uint32_t)az * (uint32_t)bzp - (uint32_t)bzp * (uint32_t)rs[r];
    __m512i v0 = a0, v1 = a1;
    if (az) {
        __m512i vaz = _mm512_set1_epi32(az);
        v0 = _mm512_sub_epi32(v0, _mm512_mullo_epi32(vaz, cs0));
        v1 = _mm512_sub_epi32(v1, _mm512_mullo_epi32(vaz, cs1));
    }
    int32_t *o = c + r * ldc;
    if (accumulate) {
        v0 = _mm512_add_epi32(v0, _mm512_maskz_loadu_epi32(m0, o));
        v1 = _mm512_add_epi32(v1, _mm512_maskz_loadu_epi32(m1, o + 16));
    }
    if (rq) {   /* requantized in registers, as requantize_avx512 does; the fix joins the bias (one add) */
        const size_t i = row0 + r;
        const __m512i vb = _mm512_set1_epi32((int32_t)(f + (uint32_t)(rq->bias ? rq->bias[i] : 0)));
        const __m512 vs = _mm512_set1_ps(rq->scale[i]);
        uint8_t *yo = (uint8_t *)rq->y + i * rq->ldy + col0;
        _mm_mask_storeu_epi8(yo, m0, requant16_avx512(v0, vb, vs, vzp, vlo, vhi));
        _mm_mask_storeu_epi8(yo + 16, m1, requant16_avx512(v1, vb, vs, vzp, vlo, vhi));
        return;
    }
    const __m512i fix = _mm512_set1_epi32((int32_t)f);
    _mm512_mask_storeu_epi32(o, m0, _mm512_add_epi32(v0, fix));
    _mm512_mask_storeu_epi32(o + 16, m1, _mm512_add_epi32(v1, fix));
}

/* One 8 x 32 tile over `quads` quads of k, the zero points applied, stored or added to C. rowsum: the
   8 rows' sums of A over the block (from vnni_row_sums). */
static inline __attribute__((always_inline))
void tile_8x32_vnni(size_t quads, size_t kc, const int8_t *ap, const uint8_t *bp, __m256i rowsum,
                    const int32_t *azp, int32_t bzp, int32_t *c, size_t ldc, size_t rows, size_t cols,
                    int accumulate, const so_i8_requant *rq, size_t row0, size_t col0) {
    __m512i acc[8][2];
    for (int r = 0; r < 8; r++) { acc[r][0] = _mm512_setzero_si512(); acc[r][1] = _mm512_setzero_si512(); }
    const int32_t *a32 = (const int32_t *)ap;
    for (size_t g = 0; g < quads; g++) {
        __m512i b0 = _mm512_loadu_si512((const void *)(bp + g * 128));
        __m512i b1 = _mm512_loadu_si512((const void *)(bp + g * 128 + 64));
        const int32_t *ar = a32 + g * 8;
        for (int r = 0; r < 8; r++) {
            __m512i a = _mm512_set1_epi32(ar[r]);
            acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], b0, a);
            acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], b1, a);
        }
    }
    /* column sums of B, only when some row has a weight zero point */
    __m512i cs0 = _mm512_setzero_si512(), cs1 = cs0;
    if (azp) {
        const __m512i ones = _mm512_set1_epi8(1);
        for (size_t g = 0; g < quads; g++) {
            cs0 = _mm512_dpbusd_epi32(cs0, _mm512_loadu_si512((const void *)(bp + g * 128)), ones);
            cs1 = _mm512_dpbusd_epi32(cs1, _mm512_loadu_si512((const void *)(bp + g * 128 + 64)), ones);
        }
    }
    int32_t rs[8];
    _mm256_storeu_si256((__m256i *)rs, rowsum);
    const __mmask16 m0 = cols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1);
    const __mmask16 m1 = cols >= 32 ? (__mmask16)0xFFFF : cols > 16 ? (__mmask16)((1u << (cols - 16)) - 1) : 0;
    const __m512i vzp = _mm512_set1_epi32(rq ? rq->yzp : 0);
    __m512 vlo = _mm512_setzero_ps(), vhi = _mm512_setzero_ps();
    if (rq) requant16_bounds(rq->yzp, rq->lo, rq->hi, &vlo, &vhi);
    /* a full tile's rows with a constant count, so that the accumulators stay in registers (a
       variable count made the compiler keep them on the stack); a partial tile's with a loop */
    if (rows == 8) {
        for (int r = 0; r < 8; r++)
            epilogue_row_vnni(acc[r][0], acc[r][1], (size_t)r, kc, rs, cs0, cs1, azp, bzp, c, ldc, m0, m1, accumulate, rq,
                              row0, col0, vzp, vlo, vhi);
    } else {
        for (size_t r = 0; r < rows; r++)
            epilogue_row_vnni(acc[r][0], acc[r][1], r, kc, rs, cs0, cs1, azp, bzp, c, ldc, m0, m1, accumulate, rq,
                              row0, col0, vzp, vlo, vhi);
    }
}

static void i8_gemm_8x32_vnni(size_t mc, size_t nc, size_t kc, const void *pa, size_t pa_stride, const void *pb,
                              size_t pb_stride, const int32_t *azp, int32_t bzp, int32_t *c, size_t ldc,
                              int accumulate, const so_i8_requant *rq) {
    const size_t mr = 8, nr = 32, quads = (kc + 3) / 4;
    const __m256i ones = _mm256_set1_epi8(1);
    for (size_t p = 0; p < mc; p += mr) {
        const int8_t *ap = (const int8_t *)pa + (p / mr) * pa_stride;
        size_t rows = mc - p < mr ? mc - p : mr;
        /* the 8 rows' sums over this block (each quad's 32 bytes are the rows' four values each),
           needed only for a nonzero bzp; four chains, as one would wait on vpdpbusd's latency */
        __m256i rowsum = _mm256_setzero_si256();
        if (bzp != 0) {
            __m256i s1 = rowsum, s2 = rowsum, s3 = rowsum;
            size_t g = 0;
            for (; g + 4 <= quads; g += 4) {
                rowsum = _mm256_dpbusd_epi32(rowsum, ones, _mm256_loadu_si256((const __m256i *)(ap + g * 32)));
                s1 = _mm256_dpbusd_epi32(s1, ones, _mm256_loadu_si256((const __m256i *)(ap + g * 32 + 32)));
                s2 = _mm256_dpbusd_epi32(s2, ones, _mm256_loadu_si256((const __m256i *)(ap + g * 32 + 64)));
                s3 = _mm256_dpbusd_epi32(s3, ones, _mm256_loadu_si256((const __m256i *)(ap + g * 32 + 96)));
            }
            for (; g < quads; g++) rowsum = _mm256_dpbusd_epi32(rowsum, ones, _mm256_loadu_si256((const __m256i *)(ap + g * 32)));
            rowsum = _mm256_add_epi32(_mm256_add_epi32(rowsum, s1), _mm256_add_epi32(s2, s3));
        }
        const int32_t *az = azp ? azp + p : NULL;
        for (size_t q = 0; q < nc; q += nr) {
            const uint8_t *bp = (const uint8_t *)pb + (q / nr) * pb_stride;
            size_t cols = nc - q < nr ? nc - q : nr;
            tile_8x32_vnni(quads, kc, ap, bp, rowsum, az, bzp, c + p * ldc + q, ldc, rows, cols, accumulate, rq, p, q);
        }
    }
}

static const so_i8_gemm i8_gemm_vnni = {
    SO_ISA_AVX512, 8, 32, 4, 1, 1, 1, "i8_gemm_8x32_avx512vnni",
    i8_pack_a_vnni, i8_pack_b_vnni, i8_gemm_8x32_vnni,
};

#pragma clang attribute pop

/* As requantize_avx2, 16 lanes at a time (AVX-512 F/BW/VL; no VNNI needed). */
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))
static void requantize_avx512(size_t rows, size_t cols, const int32_t *c, size_t ldc, const int32_t *bias,
                              const float *scale, int32_t yzp, int32_t lo, int32_t hi, int is_signed,
                              void *y, size_t ldy) {
    const __m512i vzp = _mm512_set1_epi32(yzp);
    __m512 vlo, vhi;
    requant16_bounds(yzp, lo, hi, &vlo, &vhi);
    for (size_t i = 0; i < rows; i++) {
        const int32_t *ci = c + i * ldc;
        uint8_t *yi = (uint8_t *)y + i * ldy;
        const __m512i vb = _mm512_set1_epi32(bias ? bias[i] : 0);
        const __m512 vs = _mm512_set1_ps(scale[i]);
        for (size_t j = 0; j < cols; j += 16) {
            __mmask16 m = cols - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (cols - j)) - 1);
            _mm_mask_storeu_epi8(yi + j, m, requant16_avx512(_mm512_maskz_loadu_epi32(m, ci + j), vb, vs, vzp, vlo, vhi));
        }
    }
    (void)is_signed;
}
#endif

const so_i8_gemm *so_i8_gemm_select(int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX512 && so_cpu_has_avx512vnni()) return &i8_gemm_vnni;
    if (isa >= SO_ISA_AVX2) return &i8_gemm_avx2;
#endif
    (void)isa;
    return &i8_gemm_scalar;
}

void so_i8_requantize(size_t rows, size_t cols, const int32_t *c, size_t ldc, const int32_t *bias,
                      const float *scale, int32_t yzp, int32_t lo, int32_t hi, int is_signed,
                      void *y, size_t ldy, int isa) {
#if defined(__x86_64__)
    if (isa >= SO_ISA_AVX512) { requantize_avx512(rows, cols, c, ldc, bias, scale, yzp, lo, hi, is_signed, y, ldy); return; }
    if (isa >= SO_ISA_AVX2) { requantize_avx2(rows, cols, c, ldc, bias, scale, yzp, lo, hi, is_signed, y, ldy); return; }
#endif
    (void)isa;
    requantize_scalar(rows, cols, c, ldc, bias, scale, yzp, lo, hi, is_signed, y, ldy);
}
