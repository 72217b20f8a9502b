#ifndef SWIFTONNX_SO_I8_CONV_H
#define SWIFTONNX_SO_I8_CONV_H
#include <stddef.h>
#include <stdint.h>
#include "so_i8_gemm.h"

/*
 * Direct integer convolution, any kernel size, stride, dilation and padding, group 1, exact:
 * u8 activations x s8 weights (zero point 0) -> int32, without gathering patches.
 *
 * The image is first rewritten as "quad planes" (so_u8_conv_quads): channels in groups of four,
 * each group a plane of hp x wp positions (the image with its padding around it, filled with the
 * activations' zero point), each position the group's four bytes. Position (y, x) of the padded
 * image is linear index L = y * wp + x. Output (oy, ox) is then computed at L = oy * wp + ox, and
 * its tap (ky, kx) reads index L + ky * dh * wp + kx * dw of every plane: for a run of consecutive
 * L the taps are consecutive bytes, which is the layout the VNNI instruction multiplies (four
 * bytes of one position against four weights) with no packing. Indices whose x is at or past the
 * output width are computed too and thrown away by the caller.
 *
 * A strided convolution reads the image in phases: phase (py, px) is the quad image of the padded
 * positions (Y * sh + py, X * sw + px), and tap (ky, kx) of output (oy, ox) is position
 * (oy + ky * dh / sh, ox + kx * dw / sw) of phase ((ky * dh) % sh, (kx * dw) % sw): again
 * consecutive bytes for consecutive outputs, and no tap is computed that the convolution does not
 * have. The caller lays the phases it uses one after the other and gives each step its offset.
 *
 * The zero point of the activations is not subtracted here: the caller subtracts
 * xzp * (sum of the row's weights) from each result (the padding holds xzp, so this is exact).
 */

/* Bytes after the last plane that the kernels may read (values unused). */
#define SO_I8_CONV_SLACK 256

/* Quad planes of x (c x h x w bytes): ceil(c / 4) planes of hp x wp positions of 4 bytes, position
   (y, x) holding input (y * sh - pt, x * sw - pl) where that is inside the image and `fill`
   elsewhere (strides 1: the image with its padding around it; strides above 1 sample the image:
   one phase of a strided convolution, pt and pl then possibly negative); channels past c repeat
   channel c - 1 (their weights are 0). flip: every
   image byte is xor-ed with 0x80 (signed input read as unsigned). dst holds
   ceil(c/4) * hp * wp * 4 + SO_I8_CONV_SLACK bytes. */
void so_u8_conv_quads(const uint8_t *x, size_t c, size_t h, size_t w, size_t sh, size_t sw, ptrdiff_t pt, ptrdiff_t pl,
                      size_t hp, size_t wp, uint8_t fill, int flip, uint8_t *dst);

/* Packed weights: panels of 8 output channels; in a panel, for each tap t < taps then each
   channel quad q < ceil(c / 4), the 8 channels' 4 weights (32 bytes; zero past m and past c).
   w is m x c x taps (ONNX's layout, taps = kh * kw row-major). */
size_t so_i8_conv_packed_bytes(size_t m, size_t c, size_t taps);
void so_i8_conv_pack(size_t m, size_t c, size_t taps, const int8_t *w, int8_t *dst);

/* One step per tap t and channel quad q (step s = t * ceil(c / 4) + q), its byte offset
   offs[s] = q * plane_bytes + 4 * (ky * dh * wp + kx * dw) (plane_bytes = hp * wp * 4). For each
   index l in [l0, l0 + n) whose column x = l % wp is below ow (an output; the others are skipped),
   at output position o = (l / wp) * ow + x:
       acc[i * ldc + o] (i < m) = sum over steps s, e < 4 of wpk(i, s, e) * quads[l * 4 + offs[s] + e]
   with `wpk` from so_i8_conv_pack (its first panel is row 0 here). With rq (not NULL) the results
   are requantized instead (so_i8_requant, row i to rq->y + i * rq->ldy + o; acc is not used).
   Nothing else is written. Runs the VNNI kernel when `isa` allows it and this CPU has it
   (so_i8_conv_direct_fast), the scalar reference otherwise. The kernels read whole vectors, up to
   47 indices past l0 + n - 1: at the end of the last plane, inside SO_I8_CONV_SLACK. */
void so_i8_conv_direct(int isa, size_t m, size_t steps, const int8_t *wpk, const uint8_t *quads, const size_t *offs,
                       size_t l0, size_t n, size_t wp, size_t ow, int32_t *acc, size_t ldc, const so_i8_requant *rq);

/* 1 when so_i8_conv_direct has a fast variant for this ISA level on this CPU. */
int so_i8_conv_direct_fast(int isa);
#endif
