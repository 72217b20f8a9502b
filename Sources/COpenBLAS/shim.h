#ifndef SWIFTONNX_COPENBLAS_SHIM_H
#define SWIFTONNX_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
