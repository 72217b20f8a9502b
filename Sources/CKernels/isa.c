#include "so_isa.h"
#include <stdlib.h>
#include <string.h>

static int detect(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("fma"))
        return SO_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return SO_ISA_AVX2;
#endif
    return SO_ISA_SCALAR;
}

static int supported_level = -1;
static int selected_level = -1;

int so_isa_supported(void) {
    int v = __atomic_load_n(&supported_level, __ATOMIC_RELAXED);
    if (v < 0) {
        v = detect();
        __atomic_store_n(&supported_level, v, __ATOMIC_RELAXED);
    }
    return v;
}

int so_isa_selected(void) {
    int v = __atomic_load_n(&selected_level, __ATOMIC_RELAXED);
    if (v < 0) {
        v = so_isa_supported();
        const char *cap = getenv("SWIFTONNX_ISA");
        if (cap) {
            int c = v;
            if (strcmp(cap, "scalar") == 0) c = SO_ISA_SCALAR;
            else if (strcmp(cap, "avx2") == 0) c = SO_ISA_AVX2;
            else if (strcmp(cap, "avx512") == 0) c = SO_ISA_AVX512;
            if (c < v) v = c;
        }
        __atomic_store_n(&selected_level, v, __ATOMIC_RELAXED);
    }
    return v;
}

const char *so_isa_name(int level) {
    switch (level) {
    case SO_ISA_AVX512: return "avx512";
    case SO_ISA_AVX2: return "avx2";
    default: return "scalar";
    }
}

int so_cpu_has_avx512vbmi(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bw");
#else
    return 0;
#endif
}

int so_cpu_has_avx512vnni(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw");
#else
    return 0;
#endif
}
