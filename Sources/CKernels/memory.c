#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE   /* mremap */
#endif
#include "so_memory.h"
#include <stdint.h>
#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

int so_populate(void *p, size_t bytes, size_t threshold) {
#if defined(__linux__)
    static int unsupported = 0;
    if (p == NULL || bytes < threshold || __atomic_load_n(&unsupported, __ATOMIC_RELAXED)) return 0;
    const uintptr_t page = 4096;
    uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t hi = ((uintptr_t)p + bytes) & ~(page - 1);
    if (hi <= lo) return 0;
    if (madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE) == 0) return 1;
    __atomic_store_n(&unsupported, 1, __ATOMIC_RELAXED);   /* EINVAL on kernels before 5.14 */
    return 0;
#else
    (void)p; (void)bytes; (void)threshold;
    return 0;
#endif
}

void *so_map_pages(size_t bytes) {
#if defined(__linux__)
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
#else
    (void)bytes;
    return NULL;
#endif
}

int so_move_pages(void *src, size_t bytes, void *dst) {
#if defined(__linux__)
    return mremap(src, bytes, bytes, MREMAP_MAYMOVE | MREMAP_FIXED, dst) == dst;
#else
    (void)src; (void)bytes; (void)dst;
    return 0;
#endif
}

void so_unmap_pages(void *p, size_t bytes) {
#if defined(__linux__)
    munmap(p, bytes);
#else
    (void)p; (void)bytes;
#endif
}

void so_u32_to_planes(const uint32_t *src, size_t c, size_t n, uint32_t *dst) {
    if (c == 3) {
        uint32_t *d0 = dst, *d1 = dst + n, *d2 = dst + 2 * n;
        for (size_t j = 0; j < n; j++) { d0[j] = src[3 * j]; d1[j] = src[3 * j + 1]; d2[j] = src[3 * j + 2]; }
        return;
    }
    if (c == 4) {
        uint32_t *d0 = dst, *d1 = dst + n, *d2 = dst + 2 * n, *d3 = dst + 3 * n;
        for (size_t j = 0; j < n; j++) {
            d0[j] = src[4 * j]; d1[j] = src[4 * j + 1]; d2[j] = src[4 * j + 2]; d3[j] = src[4 * j + 3];
        }
        return;
    }
    for (size_t j = 0; j < n; j++) {
        for (size_t ch = 0; ch < c; ch++) dst[ch * n + j] = src[j * c + ch];
    }
}
