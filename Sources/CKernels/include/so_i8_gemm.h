#ifndef SWIFTONNX_SO_I8_GEMM_H
#define SWIFTONNX_SO_I8_GEMM_H
#include <stddef.h>
#include <stdint.h>

/*
 * Integer GEMM, exact: C (m x n, int32, leading dimension ldc) =
 *     sum over kk of (A[i][kk] - azp[i]) * (B[kk][j] - bzp)
 * with A (m x k) signed 8-bit (the weights; one zero point per row) and B (k x n) unsigned 8-bit
 * (the activations; one zero point). Other signedness combinations map onto this one exactly:
 * an unsigned weight w with zero point z is the signed w - 128 with zero point z - 128, a signed
 * activation x with zero point z is the unsigned x + 128 with zero point z + 128 (see
 * so_i8_flip_sign).
 *
 * Every variant gives the same int32 values (integer arithmetic has no rounding; sums are exact
 * as long as they fit int32: |k| * 255 * 255 < 2^31, k below 33,000). No 16-bit intermediate ever
 * saturates: the AVX2 variant multiplies 16-bit values (zero points already subtracted at
 * packing, |v| <= 255) into 32-bit pair sums (vpmaddwd), rather than summing u8 x s8 pairs in 16
 * bits (vpmaddubsw), which overflows for large weights and activations.
 *
 * Packing. k is taken in groups of `kg` consecutive values (padded with zeros to a multiple of kg;
 * kpad = k rounded up to kg). A is packed once (weights, at plan time) into panels of mr rows:
 * panel p holds, for each group g < kpad / kg, the mr rows' kg values of that group (rows past m are
 * zero), elem_a bytes each; a k-block starting at k0 (a multiple of kg) of panel p starts at byte
 * (p * mr * kpad + k0 * mr) * elem_a. B is packed per k-block of kc rows into panels of nr columns:
 * panel q holds, for each group, the nr columns' kg values (columns past n are zero).
 */

/* Requantization of a macro call's results (see so_i8_requantize): row i (of the call), column j
   becomes clamp(round_half_even((acc + bias[i]) * scale[i]) + yzp, lo, hi) at y + i*ldy + j. */
typedef struct so_i8_requant {
    const int32_t *bias;   /* one per row of the call, NULL: 0 */
    const float *scale;    /* one per row of the call */
    int32_t yzp, lo, hi;
    int is_signed;
    void *y;
    size_t ldy;
} so_i8_requant;

typedef struct so_i8_gemm {
    int isa;
    int mr, nr, kg;
    int elem_a, elem_b;  /* bytes per packed value of A and of B */
    int raw;             /* 1: the packing keeps the bytes as they are and the macro applies the zero
                            points (azp, bzp); 0: the packing subtracts them and the macro ignores them */
    const char *name;    /* e.g. "i8_gemm_6x16_avx2" */
    /* Packs A (element (i, kk) at a[i*rs + kk*cs]) minus its row's zero point azp[i] (azp NULL:
       zero; a raw variant keeps the bytes) into mr-row panels; dst holds
       so_i8_gemm_packed_a_bytes(g, m, k) bytes. */
    void (*pack_a)(size_t m, size_t k, const int8_t *a, size_t rs, size_t cs, const int32_t *azp, void *dst);
    /* Packs a kc x nc block of B (element (kk, j) at b[kk*rs + j*cs]) minus bzp (a raw variant
       keeps the bytes) into nr-column panels; dst holds so_i8_gemm_packed_b_bytes(g, kc, nc) bytes. */
    void (*pack_b)(size_t kc, size_t nc, const uint8_t *b, size_t rs, size_t cs, int32_t bzp, void *dst);
    /* C[0..mc)[0..nc) (+)= A-panels * B-panels over one k-block of kc values (kc a multiple of kg
       except for the last block). `pa` points at the first A panel's k-block, consecutive A panels
       are `pa_stride` bytes apart (mr * kpad * elem_a for panels covering all of k); `pb` at the
       first B panel, consecutive B panels `pb_stride` bytes apart (nr * kcpad * elem_b for a block
       packed by pack_b). azp: the zero points of these mc rows (NULL: all zero), bzp: B's, the same
       as given to the packing (a raw variant applies them here). accumulate = 0: C is overwritten;
       1: added to. rq non-NULL (the last k-block): the results (C's values added when accumulating)
       are requantized to rq's 8-bit output instead, and C may or may not be written. */
    void (*macro)(size_t mc, size_t nc, size_t kc, const void *pa, size_t pa_stride, const void *pb,
                  size_t pb_stride, const int32_t *azp, int32_t bzp, int32_t *c, size_t ldc, int accumulate,
                  const so_i8_requant *rq);
} so_i8_gemm;

size_t so_i8_gemm_packed_a_bytes(const so_i8_gemm *g, size_t m, size_t k);
size_t so_i8_gemm_packed_b_bytes(const so_i8_gemm *g, size_t kc, size_t nc);

/* The variant for ISA level isa (the best at or below it; at SO_ISA_AVX512, the VNNI variant when
   the CPU has AVX-512 VNNI, else the AVX2 one). */
const so_i8_gemm *so_i8_gemm_select(int isa);

/* The patches of a c x h x w u8 image for a kh x kw convolution (strides sh, sw, dilations dh, dw,
 * padding top/left pt, pl, output oh x ow) under output positions [p0, p1) (position oy * ow + ox):
 * row ((ch * kh + ky) * kw + kx) of col (p1 - p0 bytes each) holds the input under that tap at each
 * of those positions, `fill` where the tap falls in the padding. */
void so_u8_im2col(const uint8_t *x, size_t c, size_t h, size_t w, size_t kh, size_t kw, size_t sh, size_t sw,
                  size_t dh, size_t dw, ptrdiff_t pt, ptrdiff_t pl, size_t oh, size_t ow, uint8_t fill, size_t p0,
                  size_t p1, uint8_t *col);

/* In place: bytes ^= 0x80 (signed <-> unsigned with the value shifted by 128). */
void so_i8_flip_sign(uint8_t *p, size_t count);

/*
 * Requantization of int32 accumulators to 8 bits, row by row (a row is an output channel):
 *     y = clamp(round_half_even((acc + bias[i]) * scale[i]) + yzp, lo, hi)
 * where acc is C[i][j], bias (NULL: 0) and scale are per row, and lo/hi the output type's range
 * narrowed by a fused Relu/Clip. The float product is computed as ONNX Runtime and the ONNX
 * reference do: (float)(acc + bias) * scale, in float32, rounded to nearest even.
 * Writes rows x cols values at y + i*ldy + j, unsigned (is_signed 0) or signed.
 */
void so_i8_requantize(size_t rows, size_t cols, const int32_t *c, size_t ldc, const int32_t *bias,
                      const float *scale, int32_t yzp, int32_t lo, int32_t hi, int is_signed,
                      void *y, size_t ldy, int isa);

#endif
