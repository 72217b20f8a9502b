#ifndef SWIFTONNX_CFUZZ_H
#define SWIFTONNX_CFUZZ_H
#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry point for programs with their own main (LLVM 11 and later). Only referenced
   by swift-onnx-fuzz when it is built with -DFUZZING and -sanitize=fuzzer (Fuzz/run.sh). */
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
