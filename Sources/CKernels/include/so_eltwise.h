#ifndef SWIFTONNX_SO_ELTWISE_H
#define SWIFTONNX_SO_ELTWISE_H
#include <stddef.h>

/* Unary float32 maps (activations). alpha/beta: leaky_relu(alpha), clip(alpha = min, beta = max),
   hard_sigmoid(alpha, beta), elu(alpha), selu(alpha, beta = gamma), celu(alpha),
   thresholded_relu(alpha), swish(alpha). */
enum {
    SO_ACT_IDENTITY = 0, SO_ACT_RELU, SO_ACT_LEAKY_RELU, SO_ACT_CLIP, SO_ACT_SIGMOID,
    SO_ACT_HARD_SIGMOID, SO_ACT_HARD_SWISH, SO_ACT_TANH, SO_ACT_GELU, SO_ACT_GELU_TANH,
    SO_ACT_ELU, SO_ACT_SELU, SO_ACT_CELU, SO_ACT_SOFTSIGN, SO_ACT_THRESHOLDED_RELU, SO_ACT_SWISH,
    SO_ACT_EXP, SO_ACT_ERF, SO_ACT_ABS, SO_ACT_NEG, SO_ACT_SQRT, SO_ACT_FLOOR, SO_ACT_CEIL,
    SO_ACT_ROUND, SO_ACT_RECIPROCAL, SO_ACT_SIGN, SO_ACT_COUNT
};

/* dst[i] = act(src[i]) for i < n; dst == src is allowed. */
typedef void (*so_f32_unary_fn)(int kind, const float *src, float *dst, size_t n, float alpha, float beta);
so_f32_unary_fn so_f32_unary_select(int isa);

/* p[i] = act(p[i] + bias + (z ? z[i] : 0)) for i < n (the conv / GEMM epilogue). */
typedef void (*so_f32_bias_act_fn)(float *p, size_t n, float bias, const float *z, int kind, float alpha, float beta);
so_f32_bias_act_fn so_f32_bias_act_select(int isa);

/* Binary float32 arithmetic. */
enum { SO_BIN_ADD = 0, SO_BIN_SUB, SO_BIN_MUL, SO_BIN_DIV, SO_BIN_MAX, SO_BIN_MIN };
/* out[i] = a[i*as] op b[i*bs] for i < n, where as, bs are 0 (broadcast a scalar) or 1;
   out may alias a or b. Division divides (no reciprocal), so results round like the reference. */
typedef void (*so_f32_binary_fn)(int op, const float *a, size_t as, const float *b, size_t bs, float *out, size_t n);
so_f32_binary_fn so_f32_binary_select(int isa);

/* Softmax (log = 0) or LogSoftmax (log = 1) over `rows` contiguous rows of length n. */
typedef void (*so_f32_softmax_fn)(const float *src, float *dst, size_t rows, size_t n, int log);
so_f32_softmax_fn so_f32_softmax_select(int isa);

#endif
