#ifndef SWIFTONNX_SO_MEMORY_H
#define SWIFTONNX_SO_MEMORY_H
#include <stddef.h>
#include <stdint.h>
/* Backs the whole pages inside [p, p + bytes) with memory now, in one system call
 * (Linux MADV_POPULATE_WRITE), instead of one page fault per 4 KiB page at first touch: on the
 * virtual machines of this project that is about 40% cheaper for a buffer written in full
 * (fresh weights, packed panels, an arena slab). Only for buffers of `threshold` bytes or more;
 * a no-op elsewhere or when the kernel lacks it. Returns 1 if the pages were populated. */
int so_populate(void *p, size_t bytes, size_t threshold);

/* Page-granular anonymous memory for PageRecycler (Linux; elsewhere so_map_pages returns NULL).
 * so_map_pages: `bytes` (a page multiple) of fresh read-write memory, not populated, or NULL.
 * so_move_pages: moves the mapping [src, src + bytes) to dst (replacing what was mapped there)
 * without copying (mremap); returns 1 on success. so_unmap_pages: unmaps [p, p + bytes). */
void *so_map_pages(size_t bytes);
int so_move_pages(void *src, size_t bytes, void *dst);
void so_unmap_pages(void *p, size_t bytes);

/* dst[ch * n + j] = src[j * c + ch] for ch < c, j < n: n positions of c interleaved 4-byte values
   (channels last) to c planes of n (channels first), in one pass along src. */
void so_u32_to_planes(const uint32_t *src, size_t c, size_t n, uint32_t *dst);

/* dst[j * c + ch] = src[ch * plane_stride + j] for ch < c, j < n: c planes of n 4-byte values,
   `plane_stride` apart, interleaved channels last (the inverse move; DepthToSpace's inner step,
   NCHW to NHWC with few channels), in one pass along dst. */
void so_u32_from_planes(const uint32_t *src, size_t plane_stride, size_t c, size_t n, uint32_t *dst);
#endif
