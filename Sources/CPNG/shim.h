#ifndef SWIFTONNX_CPNG_SHIM_H
#define SWIFTONNX_CPNG_SHIM_H
#include <png.h>
#endif
