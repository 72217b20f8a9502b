#ifndef SWIFTONNX_SO_I8_DWCONV_H
#define SWIFTONNX_SO_I8_DWCONV_H
#include <stddef.h>
#include <stdint.h>
#include "so_dwconv.h"
#include "so_i8_gemm.h"

/*
 * Depthwise integer convolution (one kH x kW filter per channel), exact: u8 activations (or s8 ones
 * read as unsigned, `flip`) x s8 weights -> int32, any strides, dilations and padding (so_dw_geom).
 *
 * The kernel columns are taken four at a time: each input row is rewritten once, with its padding,
 * as a row of "windows" (quad i holding the four bytes at padded column sW * i .. sW * i + 3), so
 * that kernel columns 4h .. 4h + 3 of 16 consecutive outputs are 16 consecutive quads, and one
 * vpdpbusd multiplies four taps of 16 outputs: 3 instructions per 16 outputs for a 3 x 3 filter,
 * 10 for a 5 x 5.
 * Padding holds the activations' zero point `zp` (in the unsigned domain); the caller's per-channel
 * `corr` (typically -zp * the filter's sum) is added to every sum.
 */

/* Packed filters: per channel, for each kernel row, ceil(kW / 4) quads of 4 bytes (columns 4h .. 4h + 3;
   0 past kW). w is c x kH x kW (ONNX's layout). */
size_t so_i8_dwconv_packed_bytes(size_t c, size_t kh, size_t kw);
void so_i8_dwconv_pack(size_t c, size_t kh, size_t kw, const int8_t *w, int8_t *dst);

/* Scratch bytes so_i8_dwconv needs for geometry g (one buffer per concurrent call, any alignment). */
size_t so_i8_dwconv_scratch(const so_dw_geom *g);

/* nc channels: channel ch reads x + ch * x_stride (iH x iW bytes; flip: each byte xor 0x80) and
   filters wpk + ch * packed bytes per channel, and its sums
       s(oy, ox) = corr[ch] + sum over taps of w(ky, kx) * x(oy * sH + ky * dH - pH, ox * sW + kx * dW - pW)
   (x outside the plane reading zp) go to acc + ch * ldc + oy * oW + ox, or with rq (not NULL)
   requantized (so_i8_requant: bias[ch], scale[ch], to (uint8_t *)rq->y + ch * rq->ldy + oy * oW + ox;
   acc unused). corr NULL: 0. Runs the VNNI kernel when `isa` allows it, this CPU has it and the
   geometry is one it takes (so_i8_dwconv_fast), the scalar reference otherwise (which needs no scratch). */
void so_i8_dwconv(int isa, const so_dw_geom *g, size_t nc, const uint8_t *x, size_t x_stride, int flip, uint8_t zp,
                  const int8_t *wpk, const int32_t *corr, int32_t *acc, size_t ldc, const so_i8_requant *rq, void *scratch);

/* 1 when so_i8_dwconv has a fast variant for this ISA level on this CPU and geometry g (NULL: for
   some geometry): column strides 1 and 2, column dilation 1, at most 64 kernel rows. */
int so_i8_dwconv_fast(int isa, const so_dw_geom *g);
#endif
