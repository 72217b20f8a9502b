#ifndef SWIFTONNX_SO_DWCONV_H
#define SWIFTONNX_SO_DWCONV_H
#include <stddef.h>

/* Geometry of one 2-D depthwise plane: input iH x iW, output oH x oW, kernel kH x kW,
   strides, dilations and begin pads (zero padding). Strides and dilations are >= 1, kernel sizes
   >= 1, pads >= 0 (any size, also larger than the kernel or the plane); the end pads are implied by
   oH / oW (taps past the input read zeros). */
typedef struct so_dw_geom {
    int iH, iW, oH, oW, kH, kW, sH, sW, dH, dW, pH, pW;
} so_dw_geom;

/* Bytes of scratch so_f32_dwconv2d needs for geometry g (0 when it needs none). */
size_t so_f32_dwconv2d_scratch(const so_dw_geom *g);

/* One output plane of a depthwise convolution: out = act(conv(x, w) + bias + z) where x is one
   iH x iW input plane, w the kH*kW taps, z (optional) a residual of the output's shape, and act
   one of SO_ACT_* with alpha/beta. `scratch` holds so_f32_dwconv2d_scratch(g) bytes (any alignment;
   one buffer per concurrent call; the reference accepts NULL).
   Rounding, all variants: acc = bias, acc = fma(x, w, acc) over the taps in row-major order, then
   with z: (acc + z) + 0, then act; so the sums are bit-identical across ISA levels and only the
   activation's approximation (see so_f32_unary_fn) may differ. out must not alias x or z. */
typedef void (*so_f32_dwconv2d_fn)(const so_dw_geom *g, const float *x, const float *w, float bias,
                                   const float *z, int act, float alpha, float beta,
                                   float *out, void *scratch);
so_f32_dwconv2d_fn so_f32_dwconv2d_select(int isa);

/*
 * Channel-blocked form: `nc` planes at once (channel c reads x + c * x_stride, taps w + c * kH*kW,
 * bias[c] (bias may be NULL: 0), residual z + c * oH*oW (z may be NULL), writes out + c * oH*oW).
 * The planes are taken `lanes` at a time and interleaved channel-last into a zero-padded scratch
 * image, so every vector holds one pixel of `lanes` channels: small planes (a 14x14 or 7x7 map, where
 * a row is one or two vectors wide, most of them edge vectors) and strided convolutions run on full
 * vectors with no masks, several independent accumulators, and no phase split. Same rounding as
 * so_f32_dwconv2d: acc = bias, fma over the taps in row-major order (padding taps add fma(0, w, acc)),
 * then the same epilogue per plane; the sums are bit-identical to so_f32_dwconv2d at every level.
 * `scratch` holds scratch(g) bytes (any alignment). out must not alias x or z.
 */
typedef struct so_f32_dwconv2d_cb {
    int isa;
    int lanes;           /* planes interleaved per pass (vector width in floats; 1 for the reference) */
    const char *name;    /* e.g. "f32_dwconv2d_cb8_avx2" */
    size_t (*scratch)(const so_dw_geom *g);
    void (*run)(const so_dw_geom *g, size_t nc, const float *x, size_t x_stride, const float *w,
                const float *bias, const float *z, int act, float alpha, float beta, float *out, void *scratch);
} so_f32_dwconv2d_cb;
const so_f32_dwconv2d_cb *so_f32_dwconv2d_cb_select(int isa);

#endif
