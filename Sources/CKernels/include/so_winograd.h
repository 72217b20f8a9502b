#ifndef SWIFTONNX_SO_WINOGRAD_H
#define SWIFTONNX_SO_WINOGRAD_H
#include <stddef.h>

/*
 * Winograd F(2x2, 3x3) for 3x3 convolutions with stride 1 and dilation 1 (float32, NCHW).
 * Each 2x2 output tile comes from a 4x4 input patch: V = B^T d B (input transform),
 * U = G g G^T (weight transform, once at plan time), M = sum over input channels of U * V
 * elementwise, done as 16 GEMMs (one per position xi of the 4x4 transformed tile:
 * M[xi] (outC x tiles) = U[xi] (outC x inC) * V[xi] (inC x tiles)), then Y = A^T M A (output
 * transform) with the epilogue act(Y + bias + z). 16 multiplies per 4 outputs instead of 36.
 *
 * Tiles: tw = ceil(oW / 2) per row, th = ceil(oH / 2) rows; tile (ty, tx) covers output rows
 * 2ty, 2ty+1 and columns 2tx, 2tx+1 and reads input rows 2ty - pH + r, columns 2tx - pW + c
 * (r, c < 4; outside the input is zero padding). A block is the tile rows [ty0, ty1) by the tile
 * columns [tx0, tx1): its nt = (ty1 - ty0) * bw tiles (bw = tx1 - tx0) are numbered
 * t = (ty - ty0) * bw + (tx - tx0). Blocks a few hundred KB in size keep V and M in cache.
 *
 * Buffers of a block: V[xi] in packed-B panels (see the input transform), and M[xi][oc][t] at
 * m + xi * (outC * nt) + oc * nt + t, row-major with leading dim nt.
 */

/* U[xi][oc][ic] = (G g G^T)[xi] at u + xi * outC * inC + oc * inC + ic, for w (outC x inC x 3 x 3). */
void so_f32_wino2x2_weights(size_t outc, size_t inc, const float *w, float *u);

/* The same U written straight into the GEMM's packed-A layout (so_gemm.h: panels of mr rows,
   rows past outC zero): dst[xi] holds so_f32_gemm_packed_a_floats(mr, outC, inC) floats. */
void so_f32_wino2x2_weights_packed(size_t outc, size_t inc, const float *w, int mr, float *const *dst);

/* Floats of scratch the input and output transforms need for blocks bw tiles wide. */
size_t so_f32_wino2x2_scratch_floats(size_t bw);

/* V of one block, from one image's input planes x (inC planes of iH x iW), written straight into
   the GEMM's packed-B layout with panels of nr columns (tiles): with ntp = nt rounded up to a
   multiple of nr, V[xi] starts at v + xi * inC * ntp, and tile t of input channel ic is at
   V[xi] + (t / nr) * nr * inC + ic * nr + t % nr; lanes past the last tile are zero. */
typedef void (*so_f32_wino2x2_input_fn)(const float *x, size_t inc, size_t ih, size_t iw, long ph, long pw,
                                        size_t ty0, size_t ty1, size_t tx0, size_t tx1, size_t nr, float *v,
                                        float *scratch);
/* Output planes (outC planes of oH x oW at out, z likewise, may be NULL; bias[oc] may be NULL)
   of one block from its M, with out = act(Y + bias + z), act an SO_ACT_* code. */
typedef void (*so_f32_wino2x2_output_fn)(const float *m, size_t outc, size_t ty0, size_t ty1, size_t tx0,
                                         size_t tx1, size_t oh, size_t ow, const float *bias, const float *z,
                                         int act, float alpha, float beta, float *out, float *scratch);

so_f32_wino2x2_input_fn so_f32_wino2x2_input_select(int isa);
so_f32_wino2x2_output_fn so_f32_wino2x2_output_select(int isa);

/*
 * Winograd F(4x4, 3x3): the same layout and contracts with 36 positions xi (6x6 transformed
 * tiles) and 4x4 output tiles: tw = ceil(oW / 4), th = ceil(oH / 4); tile (ty, tx) covers output
 * rows 4ty..4ty+3 and columns 4tx..4tx+3 and reads input rows 4ty - pH + r, columns 4tx - pW + c
 * (r, c < 6). 36 multiplies per 16 outputs instead of 144; the transforms' larger coefficients
 * (up to 8 in A^T) cost some precision against F(2x2, 3x3).
 */
void so_f32_wino4x4_weights(size_t outc, size_t inc, const float *w, float *u);
void so_f32_wino4x4_weights_packed(size_t outc, size_t inc, const float *w, int mr, float *const *dst);
size_t so_f32_wino4x4_scratch_floats(size_t bw);
so_f32_wino2x2_input_fn so_f32_wino4x4_input_select(int isa);
so_f32_wino2x2_output_fn so_f32_wino4x4_output_select(int isa);

#endif
