#ifndef SWIFTONNX_SO_POOL_H
#define SWIFTONNX_SO_POOL_H
#include <stddef.h>
#include <stdint.h>

/*
 * Float32 max and average pooling of planes (NCHW: one plane per (n, c)), 2-D with an optional
 * depth axis (3-D pooling; set iD = oD = kD = sD = dD = 1, pD = eD = 0 for 2-D and, for 1-D,
 * the same on the H axis).
 *
 * Windows, per axis (as the Swift PoolAxisTable): output o starts at input coordinate
 * o*stride - padBegin; tap t reads coordinate start + t*dilation. Taps outside [0, in) are skipped
 * (the window is clamped; that is how ceil_mode windows that run past the padded input behave).
 * Taps inside [-padBegin, in + padEnd) are the "padded extent" count_include_pad divides by, so the
 * end pads e* matter only for average pooling with count_include_pad.
 *
 * Max: NaN inputs are ignored (as `m = v > m ? v : m` from -inf does); a window without any
 * input tap (or only NaNs) gives -inf.
 * Average: sum / n in float, n = taps inside the input (count_include_pad == 0) or taps inside the
 * padded extent (1), as a float of the integer count; n == 0 gives NaN. The sum of a window is
 * taken column by column: each input column of the window is summed over its (depth, row) taps
 * in order, then the column sums left to right. Every variant gives the same values (they may
 * differ only in the sign of a zero result).
 */
typedef struct so_pool_geom {
    int iD, iH, iW;   /* input plane (volume) */
    int oD, oH, oW;   /* output plane */
    int kD, kH, kW;   /* kernel */
    int sD, sH, sW;   /* strides (>= 1) */
    int dD, dH, dW;   /* dilations (>= 1) */
    int pD, pH, pW;   /* begin pads (>= 0) */
    int eD, eH, eW;   /* end pads (>= 0; count_include_pad only) */
} so_pool_geom;

/* Bytes of scratch the vector variants want for geometry g (any alignment: it is aligned to 64
   inside). Passing scratch = NULL makes a kernel allocate (and free) it itself. The reference
   needs none. */
size_t so_f32_pool_scratch(const so_pool_geom *g);

/* `planes` planes: input plane p at x + p*iD*iH*iW, output plane p at y + p*oD*oH*oW. */
typedef void (*so_f32_maxpool_fn)(const so_pool_geom *g, const float *x, float *y, size_t planes, void *scratch);
so_f32_maxpool_fn so_f32_maxpool_select(int isa);

typedef void (*so_f32_avgpool_fn)(const so_pool_geom *g, const float *x, float *y, size_t planes,
                                  int count_include_pad, void *scratch);
so_f32_avgpool_fn so_f32_avgpool_select(int isa);

/*
 * Global pooling of `planes` contiguous planes of `size` floats: y[p] = mean (is_max == 0) or
 * max (is_max != 0) of x[p*size ..< p*size + size].
 * Mean: the SO_RED_SUM row sum of so_reduce.h (blocked, double block totals) rounded to float,
 * divided by (float)size; size == 0 gives NaN. Max: NaN inputs ignored as in max pooling;
 * size == 0 (or only NaNs) gives -inf.
 */
typedef void (*so_f32_global_pool_fn)(const float *x, float *y, size_t planes, size_t size, int is_max);
so_f32_global_pool_fn so_f32_global_pool_select(int isa);

/* 8-bit max pooling of 2-D planes (iD = oD = kD = 1; pads and windows as above), bytes read as
   int8 (is_signed) or uint8; a window without input taps gives the type's lowest value. The same
   bytes as pooling their float values. scratch: so_u8_maxpool_scratch(g) bytes (not NULL).
   isa 0: the scalar reference; SO_ISA_AVX2 and above: 32 bytes at a time (AVX2); strides above 2 run the
   reference. */
size_t so_u8_maxpool_scratch(const so_pool_geom *g);
void so_u8_maxpool(const so_pool_geom *g, const uint8_t *x, uint8_t *y, size_t planes, int is_signed, void *scratch,
                   int isa);

#endif
