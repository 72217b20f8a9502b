#ifndef SWIFTONNX_SO_ISA_H
#define SWIFTONNX_SO_ISA_H
#include <stddef.h>
#include <stdint.h>

/* ISA levels, in increasing order. */
#define SO_ISA_SCALAR 0   /* portable C: the reference of every family */
#define SO_ISA_AVX2   1   /* AVX2 + FMA + F16C */
#define SO_ISA_AVX512 2   /* AVX-512 F/BW/DQ/VL + FMA */

/* Highest level this CPU runs (checked once, with cpuid and the OS's xsave state). */
int so_isa_supported(void);
/* The level kernels are chosen for: so_isa_supported() capped by the environment variable
   SWIFTONNX_ISA (scalar | avx2 | avx512), read once. */
int so_isa_selected(void);
/* "scalar", "avx2", "avx512". */
const char *so_isa_name(int level);
/* 1 when the CPU runs AVX-512 VNNI (vpdpbusd). */
int so_cpu_has_avx512vnni(void);
/* 1 when the CPU runs AVX-512 VBMI (vpermb / vpermi2b) with BW. */
int so_cpu_has_avx512vbmi(void);

#endif
