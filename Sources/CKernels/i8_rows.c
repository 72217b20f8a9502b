/*
 * Integer matrix product in its natural orientation (see so_i8_rows.h):
 *   rows_scalar       the reference (plain C, one sum per element, from the packed B)
 *   rows_8x32_vnni    AVX-512 VNNI: 8 rows of A read in place, four bytes of a row broadcast and
 *                     multiplied by 32 columns' four weights (vpdpbusd) into 16 zmm accumulators
 * Both compute the same integers, and the float output with the same two roundings.
 * The same tile over a convolution's output positions (so_i8_conv_rows: conv_rows_scalar and
 * conv_rows_8x32_vnni), each row's four bytes read at its position plus the tap's offset, results
 * requantized in registers.
 */
#include "so_isa.h"
#include "so_i8_rows.h"
#include "so_i8_gemm.h"
#include "i8_shared.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define PANEL 32

size_t so_i8_rows_packed_bytes(size_t k, size_t n) {
    const size_t kpad = (k + 3) / 4 * 4;
    return (n + PANEL - 1) / PANEL * PANEL * kpad;
}

void so_i8_rows_pack(size_t k, size_t n, const int8_t *b, size_t ldb, int8_t *dst, int32_t *colsum) {
    const size_t kpad = (k + 3) / 4 * 4, panels = (n + PANEL - 1) / PANEL;
    memset(dst, 0, so_i8_rows_packed_bytes(k, n));
    for (size_t p = 0; p < panels; p++) {
        int8_t *panel = dst + p * PANEL * kpad;
        for (size_t kk = 0; kk < k; kk++) {
            for (size_t c = 0; c < PANEL && p * PANEL + c < n; c++) {
                panel[(kk / 4) * PANEL * 4 + c * 4 + kk % 4] = b[kk * ldb + p * PANEL + c];
            }
        }
    }
    if (colsum) {
        for (size_t j = 0; j < n; j++) {
            int32_t s = 0;
            for (size_t kk = 0; kk < k; kk++) s += b[kk * ldb + j];
            colsum[j] = s;
        }
    }
}

/* v (wrapping int32) stored as the output asks. */
static inline void store_one(const so_i8_rows_out *o, size_t i, size_t j, uint32_t v) {
    if (o->scale) {
        ((float *)o->y)[i * o->ldy + j] = (float)(int32_t)v * o->scale[o->per_column ? j : 0];
    } else {
        ((int32_t *)o->y)[i * o->ldy + j] = (int32_t)v;
    }
}

static void rows_scalar(size_t i0, size_t i1, size_t n, size_t k, const uint8_t *a, size_t lda,
                        const int8_t *pb, const so_i8_rows_out *o) {
    const size_t kpad = (k + 3) / 4 * 4;
    for (size_t i = i0; i < i1; i++) {
        const uint8_t *ar = a + i * lda;
        uint32_t rs = 0;
        if (o->bzp) for (size_t kk = 0; kk < k; kk++) rs += ar[kk];
        for (size_t j = 0; j < n; j++) {
            const int8_t *panel = pb + (j / PANEL) * PANEL * kpad;
            const size_t c = j % PANEL;
            uint32_t s = 0;
            for (size_t kk = 0; kk < k; kk++) {
                s += (uint32_t)((int32_t)ar[kk] * (int32_t)panel[(kk / 4) * PANEL * 4 + c * 4 + kk % 4]);
            }
            if (o->corr) s += (uint32_t)o->corr[j];
            if (o->bzp) s -= (uint32_t)o->bzp[j] * rs;
            store_one(o, i, j, s);
        }
    }
}

static inline int32_t requant_value(int32_t acc, int32_t bias, float scale, int32_t yzp, int32_t lo, int32_t hi) {
    float v = (float)(int32_t)((uint32_t)acc + (uint32_t)bias) * scale;
    if (!(v > -1073741824.0f)) v = -1073741824.0f;
    if (v > 1073741824.0f) v = 1073741824.0f;
    int32_t q = (int32_t)nearbyintf(v) + yzp;
    return q < lo ? lo : q > hi ? hi : q;
}

static void conv_rows_scalar(size_t m, size_t taps, size_t cq, const int8_t *pb, const uint8_t *img, const size_t *tap_offs,
                             size_t o0, size_t o1, size_t ow, size_t wp, const so_i8_rows_requant *rq, uint8_t *y, size_t ldy) {
    const size_t k = taps * cq * 4, kpad = k, pos_bytes = cq * 4;
    for (size_t o = o0; o < o1; o++) {
        const uint8_t *base = img + ((o / ow) * wp + o % ow) * pos_bytes;
        for (size_t j = 0; j < m; j++) {
            const int8_t *panel = pb + (j / PANEL) * PANEL * kpad;
            const size_t c = j % PANEL;
            uint32_t s = 0;
            for (size_t t = 0; t < taps; t++) {
                const uint8_t *xs = base + tap_offs[t];
                for (size_t kk = 0; kk < cq * 4; kk++) {
                    const size_t row = t * cq * 4 + kk;
                    s += (uint32_t)((int32_t)xs[kk] * (int32_t)panel[(row / 4) * PANEL * 4 + c * 4 + row % 4]);
                }
            }
            const int32_t q = requant_value((int32_t)s, rq->bias ? rq->bias[j] : 0, rq->scale[j], rq->yzp, rq->lo, rq->hi);
            y[o * ldy + j] = (uint8_t)q;
        }
    }
}

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"))), apply_to = function)

static inline __attribute__((always_inline)) int32_t quad(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* The lane masks of a panel's two 16-column halves when `cols` (1 ... 32) of its columns are real. */
static inline __attribute__((always_inline)) void panel_masks(size_t cols, __mmask16 *m0, __mmask16 *m1) {
    *m0 = cols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1);
    *m1 = cols >= 32 ? (__mmask16)0xFFFF : cols > 16 ? (__mmask16)((1u << (cols - 16)) - 1) : 0;
}

/* Sum of n bytes, 64 at a time (vpsadbw). */
static inline uint32_t byte_sum(const uint8_t *p, size_t n) {
    __m512i acc = _mm512_setzero_si512();
    const __m512i zero = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) acc = _mm512_add_epi64(acc, _mm512_sad_epu8(_mm512_loadu_si512(p + i), zero));
    if (i < n) {
        __mmask64 m = (__mmask64)(~0ULL >> (64 - (n - i)));
        acc = _mm512_add_epi64(acc, _mm512_sad_epu8(_mm512_maskz_loadu_epi8(m, p + i), zero));
    }
    return (uint32_t)_mm512_reduce_add_epi64(acc);
}

static void rows_8x32_vnni(size_t i0, size_t i1, size_t n, size_t k, const uint8_t *a, size_t lda,
                           const int8_t *pb, const so_i8_rows_out *o) {
    const size_t kpad = (k + 3) / 4 * 4, kq = k / 4, rem = k % 4, panels = (n + PANEL - 1) / PANEL;
    for (size_t i = i0; i < i1; i += 8) {
        const size_t rows = i1 - i < 8 ? i1 - i : 8;
        /* a short last strip computes its last row again in the missing rows and stores only its own */
        const uint8_t *r0 = a + i * lda;
        const uint8_t *r1 = a + (i + (rows > 1 ? 1 : rows - 1)) * lda, *r2 = a + (i + (rows > 2 ? 2 : rows - 1)) * lda;
        const uint8_t *r3 = a + (i + (rows > 3 ? 3 : rows - 1)) * lda, *r4 = a + (i + (rows > 4 ? 4 : rows - 1)) * lda;
        const uint8_t *r5 = a + (i + (rows > 5 ? 5 : rows - 1)) * lda, *r6 = a + (i + (rows > 6 ? 6 : rows - 1)) * lda;
        const uint8_t *r7 = a + (i + (rows > 7 ? 7 : rows - 1)) * lda;
        const uint8_t *rp[8] = {r0, r1, r2, r3, r4, r5, r6, r7};
        /* the last quad of a row whose k is not a multiple of 4, read without passing the row's end
           (the packed weights are zero past k) */
        int32_t tail[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        if (rem) for (int r = 0; r < 8; r++) memcpy(&tail[r], rp[r] + 4 * kq, rem);
        uint32_t rsum[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        if (o->bzp) for (size_t r = 0; r < rows; r++) rsum[r] = byte_sum(rp[r], k);
        for (size_t p = 0; p < panels; p++) {
            const int8_t *bp = pb + p * PANEL * kpad;
            __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
            __m512i c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00;
            __m512i c70 = c00, c71 = c00;
#define SO_ROWS_STEP(A0, A1, A2, A3, A4, A5, A6, A7, B)                                                     \
            do {                                                                                            \
                const __m512i b0 = _mm512_loadu_si512((B)), b1 = _mm512_loadu_si512((B) + 64);               \
                __m512i av;                                                                                 \
                av = _mm512_set1_epi32(A0); c00 = _mm512_dpbusd_epi32(c00, av, b0); c01 = _mm512_dpbusd_epi32(c01, av, b1); \
                av = _mm512_set1_epi32(A1); c10 = _mm512_dpbusd_epi32(c10, av, b0); c11 = _mm512_dpbusd_epi32(c11, av, b1); \
                av = _mm512_set1_epi32(A2); c20 = _mm512_dpbusd_epi32(c20, av, b0); c21 = _mm512_dpbusd_epi32(c21, av, b1); \
                av = _mm512_set1_epi32(A3); c30 = _mm512_dpbusd_epi32(c30, av, b0); c31 = _mm512_dpbusd_epi32(c31, av, b1); \
                av = _mm512_set1_epi32(A4); c40 = _mm512_dpbusd_epi32(c40, av, b0); c41 = _mm512_dpbusd_epi32(c41, av, b1); \
                av = _mm512_set1_epi32(A5); c50 = _mm512_dpbusd_epi32(c50, av, b0); c51 = _mm512_dpbusd_epi32(c51, av, b1); \
                av = _mm512_set1_epi32(A6); c60 = _mm512_dpbusd_epi32(c60, av, b0); c61 = _mm512_dpbusd_epi32(c61, av, b1); \
                av = _mm512_set1_epi32(A7); c70 = _mm512_dpbusd_epi32(c70, av, b0); c71 = _mm512_dpbusd_epi32(c71, av, b1); \
            } while (0)
            for (size_t q = 0; q < kq; q++) {
                const size_t off = 4 * q;
                SO_ROWS_STEP(quad(r0 + off), quad(r1 + off), quad(r2 + off), quad(r3 + off), quad(r4 + off),
                             quad(r5 + off), quad(r6 + off), quad(r7 + off), (const uint8_t *)bp + q * PANEL * 4);
            }
            if (rem) {
                SO_ROWS_STEP(tail[0], tail[1], tail[2], tail[3], tail[4], tail[5], tail[6], tail[7],
                             (const uint8_t *)bp + kq * PANEL * 4);
            }
            const __m512i acc[16] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71};
            const size_t j0 = p * PANEL;
            __mmask16 m0, m1;
            panel_masks(n - j0 < PANEL ? n - j0 : PANEL, &m0, &m1);
            const __m512i corr0 = o->corr ? _mm512_maskz_loadu_epi32(m0, o->corr + j0) : _mm512_setzero_si512();
            const __m512i corr1 = o->corr ? _mm512_maskz_loadu_epi32(m1, o->corr + j0 + 16) : _mm512_setzero_si512();
            const __m512i z0 = o->bzp ? _mm512_maskz_loadu_epi32(m0, o->bzp + j0) : _mm512_setzero_si512();
            const __m512i z1 = o->bzp ? _mm512_maskz_loadu_epi32(m1, o->bzp + j0 + 16) : _mm512_setzero_si512();
            __m512 s0 = _mm512_setzero_ps(), s1 = s0;
            if (o->scale) {
                if (o->per_column) {
                    s0 = _mm512_maskz_loadu_ps(m0, o->scale + j0);
                    s1 = _mm512_maskz_loadu_ps(m1, o->scale + j0 + 16);
                } else {
                    s0 = s1 = _mm512_set1_ps(o->scale[0]);
                }
            }
            for (size_t r = 0; r < rows; r++) {
                const __m512i vr = _mm512_set1_epi32((int32_t)rsum[r]);
                __m512i v0 = _mm512_add_epi32(acc[2 * r], corr0), v1 = _mm512_add_epi32(acc[2 * r + 1], corr1);
                if (o->bzp) {
                    v0 = _mm512_sub_epi32(v0, _mm512_mullo_epi32(z0, vr));
                    v1 = _mm512_sub_epi32(v1, _mm512_mullo_epi32(z1, vr));
                }
                if (o->scale) {
                    float *y = (float *)o->y + (i + r) * o->ldy + j0;
                    _mm512_mask_storeu_ps(y, m0, _mm512_mul_ps(_mm512_cvtepi32_ps(v0), s0));
                    if (m1) _mm512_mask_storeu_ps(y + 16, m1, _mm512_mul_ps(_mm512_cvtepi32_ps(v1), s1));
                } else {
                    int32_t *y = (int32_t *)o->y + (i + r) * o->ldy + j0;
                    _mm512_mask_storeu_epi32(y, m0, v0);
                    if (m1) _mm512_mask_storeu_epi32(y + 16, m1, v1);
                }
            }
        }
    }
}

/* 8 output positions (rows) x 32 channels of a convolution (so_i8_conv_rows). */
static void conv_rows_8x32_vnni(size_t m, size_t taps, size_t cq, const int8_t *pb, const uint8_t *img, const size_t *tap_offs,
                                size_t o0, size_t o1, size_t ow, size_t wp, const so_i8_rows_requant *rq, uint8_t *y, size_t ldy) {
    const size_t kpad = taps * cq * 4, pos_bytes = cq * 4, panels = (m + PANEL - 1) / PANEL;
    const __m512i vzp = _mm512_set1_epi32(rq->yzp);
    __m512 vflo, vfhi;
    requant16_bounds(rq->yzp, rq->lo, rq->hi, &vflo, &vfhi);
    for (size_t o = o0; o < o1; o += 8) {
        const size_t rows = o1 - o < 8 ? o1 - o : 8;
        const uint8_t *rp[8];
        for (size_t r = 0; r < 8; r++) {
            const size_t oo = o + (r < rows ? r : rows - 1);
            rp[r] = img + ((oo / ow) * wp + oo % ow) * pos_bytes;
        }
        for (size_t p = 0; p < panels; p++) {
            const uint8_t *bp = (const uint8_t *)(pb + p * PANEL * kpad);
            __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
            __m512i c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00;
            __m512i c70 = c00, c71 = c00;
            for (size_t t = 0; t < taps; t++) {
                const size_t off = tap_offs[t];
                const uint8_t *r0 = rp[0] + off, *r1 = rp[1] + off, *r2 = rp[2] + off, *r3 = rp[3] + off;
                const uint8_t *r4 = rp[4] + off, *r5 = rp[5] + off, *r6 = rp[6] + off, *r7 = rp[7] + off;
                for (size_t q = 0; q < cq; q++, bp += PANEL * 4) {
                    const size_t qo = 4 * q;
                    SO_ROWS_STEP(quad(r0 + qo), quad(r1 + qo), quad(r2 + qo), quad(r3 + qo), quad(r4 + qo),
                                 quad(r5 + qo), quad(r6 + qo), quad(r7 + qo), bp);
                }
            }
            const __m512i acc[16] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71};
            const size_t j0 = p * PANEL;
            __mmask16 m0, m1;
            panel_masks(m - j0 < PANEL ? m - j0 : PANEL, &m0, &m1);
            const __m512i b0 = rq->bias ? _mm512_maskz_loadu_epi32(m0, rq->bias + j0) : _mm512_setzero_si512();
            const __m512i b1 = rq->bias ? _mm512_maskz_loadu_epi32(m1, rq->bias + j0 + 16) : _mm512_setzero_si512();
            const __m512 s0 = _mm512_maskz_loadu_ps(m0, rq->scale + j0), s1 = _mm512_maskz_loadu_ps(m1, rq->scale + j0 + 16);
            for (size_t r = 0; r < rows; r++) {
                uint8_t *yo = y + (o + r) * ldy + j0;
                _mm_mask_storeu_epi8(yo, m0, requant16_avx512(acc[2 * r], b0, s0, vzp, vflo, vfhi));
                if (m1) _mm_mask_storeu_epi8(yo + 16, m1, requant16_avx512(acc[2 * r + 1], b1, s1, vzp, vflo, vfhi));
            }
        }
    }
}
#undef SO_ROWS_STEP

#pragma clang attribute pop
#endif

int so_i8_rows_fast(int isa) {
#if defined(__x86_64__)
    return isa >= SO_ISA_AVX512 && so_isa_supported() >= SO_ISA_AVX512 && so_cpu_has_avx512vnni();
#else
    (void)isa;
    return 0;
#endif
}

void so_i8_rows_gemm(int isa, size_t i0, size_t i1, size_t n, size_t k, const uint8_t *a, size_t lda,
                     const int8_t *packed, const so_i8_rows_out *out) {
    if (i1 <= i0 || n == 0) return;
#if defined(__x86_64__)
    if (so_i8_rows_fast(isa)) { rows_8x32_vnni(i0, i1, n, k, a, lda, packed, out); return; }
#endif
    rows_scalar(i0, i1, n, k, a, lda, packed, out);
}

void so_i8_conv_rows(int isa, size_t m, size_t taps, size_t cq, const int8_t *packed, const uint8_t *img,
                     const size_t *tap_offs, size_t o0, size_t o1, size_t ow, size_t wp, const so_i8_rows_requant *rq,
                     uint8_t *y, size_t ldy) {
    if (o1 <= o0 || m == 0) return;
#if defined(__x86_64__)
    if (so_i8_rows_fast(isa)) { conv_rows_8x32_vnni(m, taps, cq, packed, img, tap_offs, o0, o1, ow, wp, rq, y, ldy); return; }
#endif
    conv_rows_scalar(m, taps, cq, packed, img, tap_offs, o0, o1, ow, wp, rq, y, ldy);
}

void so_u8_quads_by_position(const uint8_t *planes, size_t cq, size_t positions, uint8_t *dst) {
    const uint32_t *src = (const uint32_t *)(const void *)planes;
    uint32_t *d = (uint32_t *)(void *)dst;
    /* blocks of 16 positions, so that both sides stay in a few cache lines */
    for (size_t p0 = 0; p0 < positions; p0 += 16) {
        const size_t p1 = positions - p0 < 16 ? positions : p0 + 16;
        for (size_t q = 0; q < cq; q++) {
            const uint32_t *s = src + q * positions;
            for (size_t p = p0; p < p1; p++) d[p * cq + q] = s[p];
        }
    }
}

#if defined(__x86_64__)
/* One 16 x 16 block: four rounds of "row 2j, 2j + 1 = the byte interleave of rows j and j + 8",
   each a rotation by one bit of the 8-bit index (row, column); four of them swap row and column. */
static inline void transpose_16x16(const uint8_t *src, size_t lds, uint8_t *dst, size_t ldd) {
    __m128i r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm_loadu_si128((const __m128i *)(src + (size_t)i * lds));
    for (int round = 0; round < 4; round++) {
        for (int j = 0; j < 8; j++) {
            t[2 * j] = _mm_unpacklo_epi8(r[j], r[j + 8]);
            t[2 * j + 1] = _mm_unpackhi_epi8(r[j], r[j + 8]);
        }
        for (int i = 0; i < 16; i++) r[i] = t[i];
    }
    for (int i = 0; i < 16; i++) _mm_storeu_si128((__m128i *)(dst + (size_t)i * ldd), r[i]);
}
#endif

void so_u8_transpose(const uint8_t *src, size_t rows, size_t cols, size_t lds, uint8_t *dst, size_t ldd) {
    for (size_t i0 = 0; i0 < rows; i0 += 16) {
        const size_t i1 = rows - i0 < 16 ? rows : i0 + 16;
        for (size_t j0 = 0; j0 < cols; j0 += 16) {
            const size_t j1 = cols - j0 < 16 ? cols : j0 + 16;
#if defined(__x86_64__)
            if (i1 - i0 == 16 && j1 - j0 == 16) { transpose_16x16(src + i0 * lds + j0, lds, dst + j0 * ldd + i0, ldd); continue; }
#endif
            for (size_t j = j0; j < j1; j++) {
                for (size_t i = i0; i < i1; i++) dst[j * ldd + i] = src[i * lds + j];
            }
        }
    }
}

void so_i8_conv_rows_pack(size_t m, size_t c, size_t taps, const int8_t *w, int8_t *dst) {
    const size_t cq = (c + 3) / 4, k = taps * cq * 4, panels = (m + PANEL - 1) / PANEL;
    memset(dst, 0, so_i8_rows_packed_bytes(k, m));
    /* row (t * cq + q) * 4 + e of B is channel 4q + e of tap t: in a panel, quad t * cq + q of
       column jj holds its four channels' weights of tap t */
    for (size_t p = 0; p < panels; p++) {
        int8_t *panel = dst + p * PANEL * k;
        for (size_t jj = 0; jj < PANEL && p * PANEL + jj < m; jj++) {
            const int8_t *wj = w + (p * PANEL + jj) * c * taps;
            for (size_t ch = 0; ch < c; ch++) {
                for (size_t t = 0; t < taps; t++) {
                    panel[(t * cq + ch / 4) * PANEL * 4 + jj * 4 + ch % 4] = wj[ch * taps + t];
                }
            }
        }
    }
}
