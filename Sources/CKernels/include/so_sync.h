#ifndef SWIFTONNX_SO_SYNC_H
#define SWIFTONNX_SO_SYNC_H
/* The few atomics the thread pool needs (Swift's Synchronization module needs newer OS releases). */
long so_atomic_load(const long *p);          /* acquire */
void so_atomic_add(long *p, long v);         /* release */
long so_atomic_fetch_add(long *p, long v);   /* acquire-release; returns the old value */
void so_cpu_relax(void);                     /* a spin-wait hint (x86 pause) */
#endif
