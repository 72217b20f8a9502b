#ifndef SWIFTONNX_SO_Q8_H
#define SWIFTONNX_SO_Q8_H
#include <stddef.h>
#include <stdint.h>
/*
 * Conversions between float32 and 8-bit quantized values with one scale and zero point.
 *   quantize:   y = clamp(round_half_even(x / scale) + zp, lo, hi)   (lo/hi: the 8-bit type's range)
 *   dequantize: y = (x - zp) * scale
 * as QuantizeLinear / DequantizeLinear define them, in float32. NaN quantizes to 0 clamped to
 * [lo, hi], without the zero point (as the general path does). Every variant gives the same bytes / the same floats.
 * is_signed: y (quantize) or x (dequantize) is int8, else uint8.
 */
void so_q8_quantize(const float *x, size_t n, float scale, int32_t zp, int32_t lo, int32_t hi, int is_signed,
                    void *y, int isa);
void so_q8_dequantize(const void *x, size_t n, float scale, int32_t zp, int is_signed, float *y, int isa);
/* QLinearAdd (op 0) and QLinearMul (op 1) on one row of n 8-bit values (signed or not) of A and of B,
   element i at a[i * a_step], b[i * b_step] (steps 0 or 1 run vectorized), y[i] the result's bytes:
     add: v = fma(p0, a, fma(p1, b, p2))            (p0 = sa/sc, p1 = sb/sc, p2 the zero points' term)
     mul: v = p0 * ((a - p1) * (b - p2)) + p3       (p0 = sa*sb/sc, p1, p2 the zero points, p3 = zc)
   then clamped to [lo, hi] (NaN: lo) and rounded half to even. Every variant gives the same bytes. */
void so_q8_binary_row(int op, const void *a, size_t a_step, const void *b, size_t b_step, int is_signed, float p0,
                      float p1, float p2, float p3, float lo, float hi, uint8_t *y, size_t n, int isa);
/* y = dequantize(quantize(x)): the floats a QuantizeLinear then a DequantizeLinear with the same scale
   and zero point give (every variant the same bits as so_q8_quantize then so_q8_dequantize), without
   the 8-bit tensor between them. y may be x itself. */
void so_q8_roundtrip(const float *x, size_t n, float scale, int32_t zp, int32_t lo, int32_t hi, float *y, int isa);
/* y = x rounded to the nearest integer (ties to even), for float sums known to be exact integers
   within int32 (the integer convolutions computed in float); every variant gives the same values. */
void so_f32_to_i32(const float *x, size_t n, int32_t *y, int isa);
/* y = (float)x * s (the int32 -> float conversion rounded to nearest even, then the product rounded):
   a Cast then a Mul by a scalar. y may be x itself (in place). */
void so_i32_to_f32_scaled(const int32_t *x, size_t n, float s, float *y, int isa);
/* y[i] = table[x[i]] for n bytes (a 256-entry table; y may be x). isa >= SO_ISA_AVX512 on a CPU with
   AVX-512 VBMI: 64 bytes at a time (two vpermi2b and a blend); else one byte at a time. */
void so_u8_lookup(const uint8_t *x, size_t n, const uint8_t *table, uint8_t *y, int isa);
/* dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols (dst holds the cols x rows transpose). */
void so_i32_transpose(const int32_t *src, size_t rows, size_t cols, size_t lds, int32_t *dst, size_t ldd);
/* dst[j * ldd + i] = (float)src[i * lds + j] * scale[i * scale_step] (scale_step 0: one scale): the
   transpose converted and scaled with the same two roundings as a Cast then a Mul. */
void so_i32_transpose_to_f32_scaled(const int32_t *src, size_t rows, size_t cols, size_t lds, const float *scale,
                                    size_t scale_step, float *dst, size_t ldd);
#endif
