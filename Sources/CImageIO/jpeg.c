#define _POSIX_C_SOURCE 200809L /* fmemopen, open_memstream */
#include "CImageIO.h"
#include "sio_stream.h"
#include <stdlib.h>
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jmp;
    int fatal_warning; /* a warning that means the data is truncated or corrupt */
    char message[JMSG_LENGTH_MAX + 32];
} sio_jpeg_err;

static void sio_jpeg_error_exit(j_common_ptr cinfo) {
    sio_jpeg_err *e = (sio_jpeg_err *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->message);
    longjmp(e->jmp, 1);
}

static void sio_jpeg_emit_message(j_common_ptr cinfo, int level) {
    sio_jpeg_err *e = (sio_jpeg_err *)cinfo->err;
    if (level < 0) {
        int code = cinfo->err->msg_code;
        if (code == JWRN_JPEG_EOF || code == JWRN_HUFF_BAD_CODE) {
            if (!e->fatal_warning) (*cinfo->err->format_message)(cinfo, e->message);
            e->fatal_warning = 1;
        }
        cinfo->err->num_warnings++;
    }
}

/* Reads `path`, or when mem is not NULL the memlen bytes at mem. */
static int sio_jpeg_read_impl(const char *path, const void *mem, size_t memlen, uint8_t *pixels, size_t capacity,
                              const sio_info *expected, sio_info *info_out, char *err, size_t errlen) {
    if (mem && memlen == 0) {
        sio_set_err(err, errlen, "no bytes");
        return SIO_CORRUPT;
    }
    FILE *f = mem ? fmemopen((void *)mem, memlen, "rb") : fopen(path, "rb");
    if (!f) {
        sio_set_err(err, errlen, strerror(errno));
        return SIO_IO;
    }
    struct jpeg_decompress_struct cinfo;
    sio_jpeg_err e;
    memset(&e, 0, sizeof(e));
    cinfo.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = sio_jpeg_error_exit;
    e.pub.emit_message = sio_jpeg_emit_message;
    volatile int code = SIO_CORRUPT;
    if (setjmp(e.jmp)) {
        jpeg_destroy_decompress(&cinfo);
        fclose(f);
        sio_set_err(err, errlen, e.message[0] ? e.message : "libjpeg error");
        return code;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    if (e.fatal_warning) longjmp(e.jmp, 1);
    int channels;
    if (cinfo.jpeg_color_space == JCS_GRAYSCALE) {
        cinfo.out_color_space = JCS_GRAYSCALE;
        channels = 1;
    } else if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&cinfo);
        fclose(f);
        sio_set_err(err, errlen, "CMYK JPEG images are not supported");
        return SIO_UNSUPPORTED;
    } else {
        cinfo.out_color_space = JCS_RGB;
        channels = 3;
    }
    sio_info got = {(int32_t)cinfo.image_width, (int32_t)cinfo.image_height, channels, 8};
    if (info_out) *info_out = got;
    if (!pixels) {
        jpeg_destroy_decompress(&cinfo);
        fclose(f);
        return SIO_OK;
    }
    if (!expected || got.width != expected->width || got.height != expected->height || got.channels != expected->channels) {
        jpeg_destroy_decompress(&cinfo);
        fclose(f);
        sio_set_err(err, errlen, "the file changed while it was being read");
        return SIO_MISMATCH;
    }
    size_t rowbytes = (size_t)got.width * (size_t)channels;
    if (rowbytes * (size_t)got.height > capacity) {
        jpeg_destroy_decompress(&cinfo);
        fclose(f);
        sio_set_err(err, errlen, "pixel buffer too small for the JPEG image");
        return SIO_MISMATCH;
    }
    jpeg_start_decompress(&cinfo);
    if ((int)cinfo.output_components != channels || (int32_t)cinfo.output_width != got.width ||
        (int32_t)cinfo.output_height != got.height) {
        jpeg_destroy_decompress(&cinfo);
        fclose(f);
        sio_set_err(err, errlen, "unexpected JPEG output layout");
        return SIO_UNSUPPORTED;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + rowbytes * (size_t)cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
        if (e.fatal_warning) longjmp(e.jmp, 1);
    }
    jpeg_finish_decompress(&cinfo);
    if (e.fatal_warning) longjmp(e.jmp, 1);
    jpeg_destroy_decompress(&cinfo);
    fclose(f);
    return SIO_OK;
}

int sio_jpeg_info(const char *path, sio_info *info, char *err, size_t errlen) {
    return sio_jpeg_read_impl(path, NULL, 0, NULL, 0, NULL, info, err, errlen);
}

int sio_jpeg_read(const char *path, uint8_t *pixels, size_t capacity, const sio_info *expected, char *err, size_t errlen) {
    if (!pixels) {
        sio_set_err(err, errlen, "no pixel buffer");
        return SIO_MISMATCH;
    }
    return sio_jpeg_read_impl(path, NULL, 0, pixels, capacity, expected, NULL, err, errlen);
}

int sio_jpeg_info_mem(const void *bytes, size_t count, sio_info *info, char *err, size_t errlen) {
    return sio_jpeg_read_impl(NULL, bytes, count, NULL, 0, NULL, info, err, errlen);
}

int sio_jpeg_read_mem(const void *bytes, size_t count, uint8_t *pixels, size_t capacity, const sio_info *expected,
                      char *err, size_t errlen) {
    if (!pixels) {
        sio_set_err(err, errlen, "no pixel buffer");
        return SIO_MISMATCH;
    }
    return sio_jpeg_read_impl(NULL, bytes, count, pixels, capacity, expected, NULL, err, errlen);
}

/* Encodes into the open stream f (which the caller closes). */
static int sio_jpeg_write_to(FILE *f, const uint8_t *pixels, int32_t width, int32_t height, int32_t channels,
                             int32_t quality, char *err, size_t errlen) {
    struct jpeg_compress_struct cinfo;
    sio_jpeg_err e;
    memset(&e, 0, sizeof(e));
    cinfo.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = sio_jpeg_error_exit;
    e.pub.emit_message = sio_jpeg_emit_message;
    if (setjmp(e.jmp)) {
        jpeg_destroy_compress(&cinfo);
        sio_set_err(err, errlen, e.message[0] ? e.message : "libjpeg error");
        return SIO_IO;
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = channels;
    cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality < 1 ? 1 : (quality > 100 ? 100 : quality), TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    size_t rowbytes = (size_t)width * (size_t)channels;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + rowbytes * (size_t)cinfo.next_scanline);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    return SIO_OK;
}

/* The layout check both writers make before opening anything. */
static int sio_jpeg_layout_ok(int32_t width, int32_t height, int32_t channels, char *err, size_t errlen) {
    if ((channels != 1 && channels != 3) || width <= 0 || height <= 0 || width > 65500 || height > 65500) {
        sio_set_err(err, errlen, "unsupported JPEG layout (gray or RGB, at most 65500 pixels a side)");
        return 0;
    }
    return 1;
}

int sio_jpeg_write(const char *path, const uint8_t *pixels, int32_t width, int32_t height, int32_t channels,
                   int32_t quality, char *err, size_t errlen) {
    if (!sio_jpeg_layout_ok(width, height, channels, err, errlen)) return SIO_UNSUPPORTED;
    sio_sink s;
    if (sio_sink_open(&s, path, err, errlen)) return SIO_IO;
    int rc = sio_jpeg_write_to(s.f, pixels, width, height, channels, quality, err, errlen);
    return sio_sink_close(&s, rc, NULL, NULL, err, errlen);
}

int sio_jpeg_write_mem(const uint8_t *pixels, int32_t width, int32_t height, int32_t channels, int32_t quality,
                       void **out, size_t *out_count, char *err, size_t errlen) {
    *out = NULL;
    *out_count = 0;
    if (!sio_jpeg_layout_ok(width, height, channels, err, errlen)) return SIO_UNSUPPORTED;
    sio_sink s;
    if (sio_sink_open(&s, NULL, err, errlen)) return SIO_IO;
    int rc = sio_jpeg_write_to(s.f, pixels, width, height, channels, quality, err, errlen);
    return sio_sink_close(&s, rc, out, out_count, err, errlen);
}
