#ifndef SWIFTONNX_SO_REDUCE_H
#define SWIFTONNX_SO_REDUCE_H
#include <stddef.h>

/*
 * Float32 reductions (ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare cores, softmax statistics),
 * mean / variance (LayerNorm, InstanceNorm, GroupNorm, BatchNorm training) and the per-channel
 * affine map (BatchNorm inference, the apply step of the other norms).
 *
 * Every family has a scalar reference (level SO_ISA_SCALAR) and AVX2 / AVX-512 variants;
 * `*_select(isa)` returns the best variant at or below `isa`. All variants of a family give the
 * same bits for sums, products, mean and variance (they share one summation order, below); max
 * and min agree as values (a tie between -0 and +0 may come out with either sign) and give a NaN
 * whenever the reduced set holds one.
 */

/* The core accumulation (post-processing such as mean's divide or L2's sqrt is the caller's). */
enum {
    SO_RED_SUM = 0,     /* x            identity 0   */
    SO_RED_SUM_ABS,     /* |x|          identity 0   */
    SO_RED_SUM_SQUARE,  /* x*x (fused)  identity 0   */
    SO_RED_MAX,         /* NaN wins     identity -inf */
    SO_RED_MIN,         /* NaN wins     identity +inf */
    SO_RED_PROD,        /*              identity 1   */
    SO_RED_COUNT
};

/*
 * Contiguous rows: out[r] = reduce(src[r*n ..< r*n + n]) for r < rows (n == 0 gives the identity).
 *
 * Summation order of SUM / SUM_ABS / SUM_SQUARE / PROD: the row is cut into blocks of 4096
 * elements from its start; in a block, element i goes to lane i % 64 (64 float accumulators,
 * lanes past the end of the row are left at the identity); each block's 64 lanes are combined by
 * a fixed tree (s[l] = (L[l] + L[l+16]) + (L[l+32] + L[l+48]), then halving 16 -> 8 -> 4 -> 2 ->
 * 1) and added into (multiplied into) a double total; the result is the total rounded to float.
 * SUM_SQUARE accumulates with fma(x, x, acc).
 */
typedef void (*so_f32_reduce_rows_fn)(int op, const float *src, size_t rows, size_t n, float *out);
so_f32_reduce_rows_fn so_f32_reduce_rows_select(int isa);

/*
 * Middle axis of (outer, n, inner): out[o*inner + j] = reduce over k < n of
 * src[(o*n + k)*inner + j]. Each output is one sequential float chain over k starting from the
 * identity (acc += x, acc = fma(x, x, acc), acc *= x, ...), vectorized across j: the same order
 * as the Swift f32ReduceMiddle. Use the rows kernel when inner == 1.
 */
typedef void (*so_f32_reduce_middle_fn)(int op, const float *src, size_t outer, size_t n, size_t inner,
                                        float *out);
so_f32_reduce_middle_fn so_f32_reduce_middle_select(int isa);

/*
 * Mean and population variance of `groups` runs of `len` contiguous floats, the runs `gap`
 * floats apart (groups == 1: one contiguous row of len floats; gap is ignored then).
 * N = groups * len; N == 0 gives mean = var = 0. Everything in double: pass 1 sums the floats as
 * doubles, mean = total / N; pass 2 sums fma(d, d) with d = (double)x - mean; var = total2 / N.
 * Order: element i of a run goes to lane i % 32 (32 double accumulators); a run's lanes are
 * combined by the fixed tree s16[l] = L[l] + L[l+16], then halving 16 -> 8 -> 4 -> 2 -> 1, and
 * the runs' totals added in order.
 */
typedef void (*so_f32_meanvar_fn)(const float *x, size_t groups, size_t len, size_t gap, double *mean,
                                  double *var);
so_f32_meanvar_fn so_f32_meanvar_select(int isa);

/*
 * Normalization of `rows` contiguous rows of `cols` floats over each row (LayerNormalization,
 * RMSNormalization and ONNX Runtime's (Skip)(Simplified)LayerNormalization); y may equal x.
 *   rms == 0: mean and population variance as so_f32_meanvar computes them (groups 1: the same
 *             lanes and tree, in double), inv = 1 / sqrt(var + eps) in double, and
 *             y[i] = ((x[i] - (float)mean) * (float)inv) * scale[i] (+ bias[i] when bias != NULL);
 *   rms == 1: q = the sum of x^2 as meanvar's second pass with mean 0 (fma in double lanes),
 *             inv = 1 / sqrt(q / cols + eps), y[i] = (x[i] * (float)inv) * scale[i] (+ bias[i]).
 * Each product and sum of the map is rounded to float in that order (no fma), so every variant
 * gives the same bits. mean_out / inv_out (either may be NULL) get each row's (float)mean (0 for
 * rms) and (float)inv.
 */
typedef void (*so_f32_norm_rows_fn)(const float *x, float *y, size_t rows, size_t cols, const float *scale,
                                    const float *bias, double eps, int rms, float *mean_out, float *inv_out);
so_f32_norm_rows_fn so_f32_norm_rows_select(int isa);

/* The minimum and the maximum of n floats in one pass (n == 0: +inf and -inf); both NaN when one
   is NaN. Values agree with SO_RED_MIN / SO_RED_MAX rows across variants (a -0 / +0 tie may
   resolve to either sign). */
typedef void (*so_f32_minmax_fn)(const float *p, size_t n, float *mn, float *mx);
so_f32_minmax_fn so_f32_minmax_select(int isa);

/*
 * y[p*size + i] = x[p*size + i] * scale[p % channels] + bias[p % channels] for p < planes,
 * i < size: a multiply, then an add (two roundings, no fma), as the Swift channelAffineF32 does.
 * y == x is allowed.
 */
typedef void (*so_f32_channel_affine_fn)(const float *x, float *y, size_t planes, size_t channels, size_t size,
                                         const float *scale, const float *bias);
so_f32_channel_affine_fn so_f32_channel_affine_select(int isa);

#endif
