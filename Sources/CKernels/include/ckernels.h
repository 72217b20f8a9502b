#ifndef SWIFTONNX_CKERNELS_H
#define SWIFTONNX_CKERNELS_H
#include <stdint.h>
/// 1 when the CPU runs AVX-512 VNNI (vpdpbusd), checked at run time.
int swiftonnx_cpu_has_avx512vnni(void);
/// 1 when the CPU runs AVX2 and FMA.
int swiftonnx_cpu_has_avx2_fma(void);
#endif
