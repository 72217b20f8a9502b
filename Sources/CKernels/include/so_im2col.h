#ifndef SWIFTONNX_SO_IM2COL_H
#define SWIFTONNX_SO_IM2COL_H
#include <stddef.h>

/*
 * im2col straight into the packed-B layout of the f32 GEMM (so_gemm.h), so a convolution's column
 * matrix is written once and read by the micro-kernels with no separate packing pass.
 *
 * The column matrix of `channels` input planes (each iD x iH x iW) has k = channels * kD * kH * kW
 * rows (c, kd, kh, kw) and one column per output position p in [p0, p1) (flattened over
 * oD * oH * oW); element (row, p) is x[c][od*sD - pD + kd*dD][oh*sH - pH + kh*dH][ow*sW - pW + kw*dW],
 * or 0 where that falls outside the input (zero padding).
 *
 * Packed layout: panels of nr columns covering all k rows. Column j = p - p0 lies in panel j / nr,
 * lane j % nr; element (row, j) is at dst[(j / nr) * nr * k + row * nr + j % nr]. Lanes past the
 * last column of the last panel are zero. So the panels of a k-block [k0, k0 + kc) start at
 * dst + q * nr * k + k0 * nr: the GEMM macro-kernel reads them with pb_stride = nr * k.
 */
typedef struct so_im2col_geom {
    long iD, iH, iW;
    long oD, oH, oW;
    long kD, kH, kW;
    long sD, sH, sW;
    long dD, dH, dW;
    long pD, pH, pW;   /* begin pads */
} so_im2col_geom;

/* Floats the packed columns of k rows and `cols` columns take with panels of nr columns. */
size_t so_f32_im2col_packed_floats(int nr, size_t k, size_t cols);

/* nr: 1 to 32 (the GEMM families' panel widths are 8, 16 and 32). */
typedef void (*so_f32_im2col_packed_fn)(const float *x, size_t channels, const so_im2col_geom *g,
                                        size_t p0, size_t p1, int nr, float *dst);

/* The variant for ISA level isa (all variants write identical values: it only moves data). */
so_f32_im2col_packed_fn so_f32_im2col_packed_select(int isa);

#endif
