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
