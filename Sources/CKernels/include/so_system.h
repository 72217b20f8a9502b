#ifndef SWIFTONNX_SO_SYSTEM_H
#define SWIFTONNX_SO_SYSTEM_H
/* Idle time of the whole machine so far, summed over its CPUs, in nanoseconds (the `idle` field
 * of /proc/stat's first line, whose unit is the clock tick, 10 ms on Linux: differences are good
 * to about one tick per read). -1 where it cannot be read (not Linux, no /proc). Used by the thread
 * governor to tell whether a core is free without running on it. */
long long so_machine_idle_ns(void);
#endif
