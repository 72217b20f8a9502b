#ifndef SWIFTONNX_SO_ELTWISE_H
#define SWIFTONNX_SO_ELTWISE_H
#include <stddef.h>

/* Unary float32 maps (activations). alpha/beta: leaky_relu(alpha), clip(alpha = min, beta = max),
   hard_sigmoid(alpha, beta), elu(alpha), selu(alpha, beta = gamma), celu(alpha),
   thresholded_relu(alpha), swish(alpha). RELU_AFFINE and HARD_SWISH_AFFINE are relu / hard_swish
   followed by alpha * y + beta (the multiply and the add rounded separately, as Mul then Add would):
   a convolution's activation with the per-tensor affine map after it (PP-LCNet's learnable affine
   block) in the same epilogue. */
enum {
    SO_ACT_IDENTITY = 0, SO_ACT_RELU, SO_ACT_LEAKY_RELU, SO_ACT_CLIP, SO_ACT_SIGMOID,
    SO_ACT_HARD_SIGMOID, SO_ACT_HARD_SWISH, SO_ACT_TANH, SO_ACT_GELU, SO_ACT_GELU_TANH,
    SO_ACT_ELU, SO_ACT_SELU, SO_ACT_CELU, SO_ACT_SOFTSIGN, SO_ACT_THRESHOLDED_RELU, SO_ACT_SWISH,
    SO_ACT_EXP, SO_ACT_ERF, SO_ACT_ABS, SO_ACT_NEG, SO_ACT_SQRT, SO_ACT_FLOOR, SO_ACT_CEIL,
    SO_ACT_ROUND, SO_ACT_RECIPROCAL, SO_ACT_SIGN, SO_ACT_RELU_AFFINE, SO_ACT_HARD_SWISH_AFFINE,
    SO_ACT_COUNT
};

/* dst[i] = act(src[i]) for i < n; dst == src is allowed.
   Semantics (f32_unary.c has the details): NaN propagates through every kind except
   THRESHOLDED_RELU (x > alpha ? x : 0, so NaN -> 0); RELU / LEAKY / CLIP keep -0 and NaN as
   `x < 0 ? 0 : x` does; ABS clears the sign bit (abs(-0) = +0); SIGN(NaN) = NaN, SIGN(-0) = +0;
   ROUND is round half to even; SQRT / RECIPROCAL / FLOOR / CEIL are exact IEEE. The vector
   variants compute exp, sigmoid, tanh, erf, gelu, gelu_tanh, elu, selu, celu, swish with
   polynomials (within ~2e-7 relative of libm, 2e-6 guaranteed by the tests); the other kinds are
   bit-identical to the reference. ELU / SELU / CELU use expm1. Unknown kinds act as IDENTITY. */
typedef void (*so_f32_unary_fn)(int kind, const float *src, float *dst, size_t n, float alpha, float beta);
so_f32_unary_fn so_f32_unary_select(int isa);

/* p[i] = act(p[i] + bias + (z ? z[i] : 0)) for i < n (the conv / GEMM epilogue), rounded as
   (p[i] + z[i]) + bias, or p[i] + bias without z. */
typedef void (*so_f32_bias_act_fn)(float *p, size_t n, float bias, const float *z, int kind, float alpha, float beta);
so_f32_bias_act_fn so_f32_bias_act_select(int isa);

/* Binary float32 arithmetic. MAX / MIN propagate NaN (numpy maximum / minimum):
   a is NaN ? a : b is NaN ? b : (a < b ? b : a) for MAX, (b < a ? b : a) for MIN; equal values
   (-0 / +0) give a. All variants are bit-identical (up to the payload of NaN from two NaNs). */
enum { SO_BIN_ADD = 0, SO_BIN_SUB, SO_BIN_MUL, SO_BIN_DIV, SO_BIN_MAX, SO_BIN_MIN };
/* out[i] = a[i*as] op b[i*bs] for i < n, where as, bs are 0 (broadcast a scalar) or 1;
   out may alias a or b. Division divides (no reciprocal), so results round like the reference. */
typedef void (*so_f32_binary_fn)(int op, const float *a, size_t as, const float *b, size_t bs, float *out, size_t n);
so_f32_binary_fn so_f32_binary_select(int isa);

/* Softmax (log = 0) or LogSoftmax (log = 1) over `rows` contiguous rows of length n; dst may
   equal src. Per row: m = max (NaN-propagating), softmax e_i = exp(x_i - m), y_i = e_i * (1 / sum e);
   log: y_i = (x_i - m) - log(sum e). A NaN or +inf in a row, or a row of -inf, gives a NaN row. */
typedef void (*so_f32_softmax_fn)(const float *src, float *dst, size_t rows, size_t n, int log);
so_f32_softmax_fn so_f32_softmax_select(int isa);

#endif
