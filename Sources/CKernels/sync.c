#include "so_sync.h"

long so_atomic_load(const long *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void so_atomic_add(long *p, long v) { __atomic_add_fetch(p, v, __ATOMIC_RELEASE); }
long so_atomic_fetch_add(long *p, long v) { return __atomic_fetch_add(p, v, __ATOMIC_ACQ_REL); }
void so_cpu_relax(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
