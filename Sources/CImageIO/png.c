#define _POSIX_C_SOURCE 200809L /* fmemopen, open_memstream */
#include "CImageIO.h"
#include "sio_stream.h"
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    jmp_buf jmp;
    char message[256];
} sio_png_err;

static void sio_png_error_fn(png_structp png, png_const_charp msg) {
    sio_png_err *e = (sio_png_err *)png_get_error_ptr(png);
    if (msg && strcmp(msg, "Read Error") == 0) msg = "unexpected end of file (the file is truncated)";
    snprintf(e->message, sizeof(e->message), "%s", msg ? msg : "libpng error");
    longjmp(e->jmp, 1);
}

static void sio_png_warning_fn(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg; /* warnings (e.g. unknown chunks, bad iCCP) are not failures */
}

/* Sets the transforms every read uses, then updates the info. Called after png_read_info. */
static void sio_png_transforms(png_structp png, png_infop info) {
    int color = png_get_color_type(png, info);
    int depth = png_get_bit_depth(png, info);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (depth == 16) png_set_swap(png);
#endif
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
}

/* Opens `path` (or, when mem is not NULL, the memlen bytes at mem) and checks the signature; on
   success *out_file is set. */
static int sio_png_open(const char *path, const void *mem, size_t memlen, FILE **out_file, char *err, size_t errlen) {
    if (mem && memlen < 8) {
        sio_set_err(err, errlen, "not a PNG file (shorter than its signature)");
        return SIO_CORRUPT;
    }
    FILE *f = mem ? fmemopen((void *)mem, memlen, "rb") : fopen(path, "rb");
    if (!f) {
        sio_set_err(err, errlen, strerror(errno));
        return SIO_IO;
    }
    unsigned char sig[8];
    if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8) != 0) {
        fclose(f);
        sio_set_err(err, errlen, "not a PNG file (bad signature)");
        return SIO_CORRUPT;
    }
    *out_file = f;
    return SIO_OK;
}

static int sio_png_read_impl(const char *path, const void *mem, size_t memlen, void *pixels, size_t capacity,
                             const sio_info *expected, sio_info *info_out, char *err, size_t errlen) {
    FILE *f = NULL;
    int rc = sio_png_open(path, mem, memlen, &f, err, errlen);
    if (rc) return rc;
    sio_png_err e;
    e.message[0] = 0;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &e, sio_png_error_fn, sio_png_warning_fn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        if (png) png_destroy_read_struct(&png, NULL, NULL);
        fclose(f);
        sio_set_err(err, errlen, "out of memory creating the PNG decoder");
        return SIO_IO;
    }
    png_bytep *volatile rows = NULL;
    if (setjmp(e.jmp)) {
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        sio_set_err(err, errlen, e.message[0] ? e.message : "libpng error");
        return SIO_CORRUPT;
    }
    png_init_io(png, f);
    png_set_sig_bytes(png, 8);
    /* Our own ceiling is checked by the caller; keep libpng's default limits generous but finite. */
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_read_info(png, info);
    sio_png_transforms(png, info);
    sio_info got;
    got.width = (int32_t)png_get_image_width(png, info);
    got.height = (int32_t)png_get_image_height(png, info);
    got.channels = (int32_t)png_get_channels(png, info);
    got.bit_depth = (int32_t)png_get_bit_depth(png, info);
    if (info_out) *info_out = got;
    if (!pixels) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        return SIO_OK;
    }
    if (!expected || got.width != expected->width || got.height != expected->height ||
        got.channels != expected->channels || got.bit_depth != expected->bit_depth) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        sio_set_err(err, errlen, "the file changed while it was being read");
        return SIO_MISMATCH;
    }
    size_t rowbytes = (size_t)got.width * (size_t)got.channels * (size_t)(got.bit_depth / 8);
    if (png_get_rowbytes(png, info) != rowbytes || rowbytes * (size_t)got.height > capacity) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        sio_set_err(err, errlen, "pixel buffer too small for the PNG image");
        return SIO_MISMATCH;
    }
    rows = (png_bytep *)malloc(sizeof(png_bytep) * (size_t)got.height);
    if (!rows) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        sio_set_err(err, errlen, "out of memory");
        return SIO_IO;
    }
    for (int32_t y = 0; y < got.height; y++) rows[y] = (png_bytep)pixels + rowbytes * (size_t)y;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    free(rows);
    rows = NULL;
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    return SIO_OK;
}

int sio_png_info(const char *path, sio_info *info, char *err, size_t errlen) {
    return sio_png_read_impl(path, NULL, 0, NULL, 0, NULL, info, err, errlen);
}

int sio_png_read(const char *path, void *pixels, size_t capacity, const sio_info *expected, char *err, size_t errlen) {
    if (!pixels) {
        sio_set_err(err, errlen, "no pixel buffer");
        return SIO_MISMATCH;
    }
    return sio_png_read_impl(path, NULL, 0, pixels, capacity, expected, NULL, err, errlen);
}

int sio_png_info_mem(const void *bytes, size_t count, sio_info *info, char *err, size_t errlen) {
    return sio_png_read_impl(NULL, bytes, count, NULL, 0, NULL, info, err, errlen);
}

int sio_png_read_mem(const void *bytes, size_t count, void *pixels, size_t capacity, const sio_info *expected,
                     char *err, size_t errlen) {
    if (!pixels) {
        sio_set_err(err, errlen, "no pixel buffer");
        return SIO_MISMATCH;
    }
    return sio_png_read_impl(NULL, bytes, count, pixels, capacity, expected, NULL, err, errlen);
}

/* The layout check both writers make before opening anything. */
static int sio_png_layout_ok(int32_t width, int32_t height, int32_t channels, int32_t bit_depth, char *err,
                             size_t errlen) {
    if (channels < 1 || channels > 4 || (bit_depth != 8 && bit_depth != 16) || width <= 0 || height <= 0) {
        sio_set_err(err, errlen, "unsupported PNG layout");
        return 0;
    }
    return 1;
}

int sio_png_write(const char *path, const void *pixels, int32_t width, int32_t height, int32_t channels,
                  int32_t bit_depth, int32_t threads, char *err, size_t errlen) {
    if (!sio_png_layout_ok(width, height, channels, bit_depth, err, errlen)) return SIO_UNSUPPORTED;
    sio_sink s;
    if (sio_sink_open(&s, path, err, errlen)) return SIO_IO;
    int rc = sio_png_encode(s.f, pixels, width, height, channels, bit_depth, threads, err, errlen);
    return sio_sink_close(&s, rc, NULL, NULL, err, errlen);
}

int sio_png_write_mem(const void *pixels, int32_t width, int32_t height, int32_t channels, int32_t bit_depth,
                      int32_t threads, void **out, size_t *out_count, char *err, size_t errlen) {
    *out = NULL;
    *out_count = 0;
    if (!sio_png_layout_ok(width, height, channels, bit_depth, err, errlen)) return SIO_UNSUPPORTED;
    sio_sink s;
    if (sio_sink_open(&s, NULL, err, errlen)) return SIO_IO;
    int rc = sio_png_encode(s.f, pixels, width, height, channels, bit_depth, threads, err, errlen);
    return sio_sink_close(&s, rc, out, out_count, err, errlen);
}
