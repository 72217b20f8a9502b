#ifndef SWIFTONNX_COPENBLAS_SHIM_H
#define SWIFTONNX_COPENBLAS_SHIM_H
#include <cblas.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* How capable an OpenBLAS x86-64 core's kernels are (higher: wider vectors). */
static inline int swiftonnx_openblas_core_rank(const char *name) {
    if (name == NULL) return 0;
    static const char *order[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Barcelona",
                                  "Bulldozer", "Piledriver", "Steamroller", "Excavator", "Sandybridge",
                                  "Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"};
    for (int i = 0; i < (int)(sizeof(order) / sizeof(order[0])); i++)
        if (strcasecmp(name, order[i]) == 0) return i + 1;
    return 0;
}

/*
 * OPENBLAS_CORETYPE, when set in the environment, forces OpenBLAS's kernels for the whole process.
 * Machine images set it for other tools (e.g. to Haswell), which halves sgemm speed on AVX-512 CPUs.
 * When it forces a core weaker than the one OpenBLAS detects for this CPU, re-initialize OpenBLAS
 * with the detected core (the variable is left as it was). SWIFTONNX_KEEP_OPENBLAS_CORETYPE=1 keeps
 * the forced core. Call once, before any BLAS work. Returns 1 when it switched.
 * The entry points are looked up at run time: OpenBLAS builds without DYNAMIC_ARCH lack them.
 */
static inline int swiftonnx_openblas_use_detected_core(void) {
    const char *forced = getenv("OPENBLAS_CORETYPE");
    if (forced == NULL || getenv("SWIFTONNX_KEEP_OPENBLAS_CORETYPE") != NULL) return 0;
    void (*init)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init");
    void (*quit)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit");
    if (init == NULL || quit == NULL) return 0;
    char saved[64];
    strncpy(saved, forced, sizeof(saved) - 1);
    saved[sizeof(saved) - 1] = 0;
    int forcedRank = swiftonnx_openblas_core_rank(openblas_get_corename());
    unsetenv("OPENBLAS_CORETYPE");
    quit();
    init();
    int switched = 1;
    if (swiftonnx_openblas_core_rank(openblas_get_corename()) <= forcedRank) {
        /* Detection is no better: go back to what the environment asked for. */
        setenv("OPENBLAS_CORETYPE", saved, 1);
        quit();
        init();
        switched = 0;
    }
    setenv("OPENBLAS_CORETYPE", saved, 1);
    return switched;
}

/*
 * With one thread, OpenBLAS's idle worker threads still spin (sched_yield) for a while after
 * start-up and after each wake-up, taking a core from whatever else runs on a shared machine.
 * Stops them; OpenBLAS starts them again by itself if a later call asks for more threads.
 * Returns 1 when it stopped them.
 */
static inline int swiftonnx_openblas_stop_workers(void) {
    int (*shutdown)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "blas_thread_shutdown_");
    if (shutdown == NULL) return 0;
    shutdown();
    return 1;
}
#endif
