#ifndef SWIFTONNX_CJPEG_SHIM_H
#define SWIFTONNX_CJPEG_SHIM_H
#include <stdio.h>
#include <jpeglib.h>
#endif
