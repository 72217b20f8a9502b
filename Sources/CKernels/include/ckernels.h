#ifndef SWIFTONNX_CKERNELS_H
#define SWIFTONNX_CKERNELS_H
/*
 * The innermost loops of SwiftONNX. Every kernel family has a portable scalar reference and
 * ISA-specific variants compiled per function with __attribute__((target(...))), so the package
 * needs no build flags. A family's `*_select(isa)` returns the variant for an ISA level, or the
 * best one at or below it. Kernels know nothing of graphs: pointers, sizes and parameters only.
 */
#include "so_isa.h"
#include "so_gemm.h"
#include "so_gemv.h"
#include "so_dwconv.h"
#include "so_eltwise.h"
#include "so_pool.h"
#include "so_reduce.h"
#include "so_winograd.h"
#include "so_im2col.h"
#include "so_sync.h"
#include "so_memory.h"
#include "so_system.h"
#include "so_i8_gemm.h"
#include "so_i8_conv.h"
#include "so_i8_dwconv.h"
#include "so_i8_rows.h"
#include "so_q8.h"
#endif
