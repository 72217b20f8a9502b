#ifndef SWIFTONNX_CIMAGEIO_H
#define SWIFTONNX_CIMAGEIO_H
/*
 * PNG and JPEG reading and writing through libpng and libjpeg(-turbo); PNG files are written by
 * our own encoder over zlib (png_encode.c).
 * Both libraries report errors with setjmp/longjmp; every longjmp stays inside these C functions,
 * which return 0 on success or a nonzero SIO_* code, with a message in `err` (NUL-terminated).
 * Pixels are interleaved, rows packed (stride = width * channels * bytes per sample); 16-bit
 * samples are in the machine's byte order.
 */
#include <stddef.h>
#include <stdint.h>

enum {
    SIO_OK = 0,
    SIO_IO = 1,          /* cannot open, read or write the file */
    SIO_CORRUPT = 2,     /* the decoder rejected the data (corrupt or truncated) */
    SIO_UNSUPPORTED = 3, /* a valid file this code cannot handle (e.g. CMYK JPEG) */
    SIO_MISMATCH = 4,    /* the file changed between reading its header and its pixels */
};

typedef struct {
    int32_t width;
    int32_t height;
    int32_t channels;  /* 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA (after expansion of palettes, tRNS, low bit depths) */
    int32_t bit_depth; /* 8 or 16 */
} sio_info;

int sio_png_info(const char *path, sio_info *info, char *err, size_t errlen);
/* Reads the pixels into `pixels` (capacity bytes), which must hold width*height*channels*(depth/8). */
int sio_png_read(const char *path, void *pixels, size_t capacity, const sio_info *expected, char *err, size_t errlen);
/* Writes a PNG (Paeth-filtered rows, zlib level 1 run-length strategy, png_encode.c) with up to
   `threads` threads compressing strips of rows; the file does not depend on the thread count. */
int sio_png_write(const char *path, const void *pixels, int32_t width, int32_t height, int32_t channels,
                  int32_t bit_depth, int32_t threads, char *err, size_t errlen);

/* count RGB pixels of float samples (3 per pixel, any value) to 8 bits at dst, dst_channels bytes
   apart (3 or 4; a fourth byte is left alone): clamped to [0, 1] (NaN to 0), times 255, rounded half
   away from zero. */
void sio_rgb_f32_to_u8(const float *src, uint8_t *dst, size_t count, size_t dst_channels);

int sio_jpeg_info(const char *path, sio_info *info, char *err, size_t errlen);
int sio_jpeg_read(const char *path, uint8_t *pixels, size_t capacity, const sio_info *expected, char *err, size_t errlen);
/* channels 1 (gray) or 3 (RGB); quality 1...100. */
int sio_jpeg_write(const char *path, const uint8_t *pixels, int32_t width, int32_t height, int32_t channels,
                   int32_t quality, char *err, size_t errlen);
/* The same on a file's bytes in memory (count bytes at `bytes`), and encoding into a malloc'd
   buffer: on success *out holds *out_count bytes that the caller frees with free(3). */
int sio_png_info_mem(const void *bytes, size_t count, sio_info *info, char *err, size_t errlen);
int sio_png_read_mem(const void *bytes, size_t count, void *pixels, size_t capacity, const sio_info *expected,
                     char *err, size_t errlen);
int sio_png_write_mem(const void *pixels, int32_t width, int32_t height, int32_t channels, int32_t bit_depth,
                      int32_t threads, void **out, size_t *out_count, char *err, size_t errlen);
int sio_jpeg_info_mem(const void *bytes, size_t count, sio_info *info, char *err, size_t errlen);
int sio_jpeg_read_mem(const void *bytes, size_t count, uint8_t *pixels, size_t capacity, const sio_info *expected,
                      char *err, size_t errlen);
int sio_jpeg_write_mem(const uint8_t *pixels, int32_t width, int32_t height, int32_t channels, int32_t quality,
                       void **out, size_t *out_count, char *err, size_t errlen);
#endif
