#ifndef SWIFTONNX_SIO_STREAM_H
#define SWIFTONNX_SIO_STREAM_H
/* What the PNG and JPEG code share: error text, and the stream an encoder writes to, a file or a
   growing memory buffer (private to CImageIO). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void sio_set_err(char *err, size_t errlen, const char *msg) {
    if (err && errlen) snprintf(err, errlen, "%s", msg);
}

/* Where an encoder's bytes go: the file `path`, or when path is NULL a malloc'd buffer. */
typedef struct {
    FILE *f;
    char *buf;
    size_t len;
} sio_sink;

/* Opens the sink; 0 on success, SIO_IO (with the reason in err) otherwise. */
static inline int sio_sink_open(sio_sink *s, const char *path, char *err, size_t errlen) {
    s->buf = NULL;
    s->len = 0;
    s->f = path ? fopen(path, "wb") : open_memstream(&s->buf, &s->len);
    if (!s->f) {
        sio_set_err(err, errlen, strerror(errno));
        return SIO_IO;
    }
    return SIO_OK;
}

/* Closes the sink after an encoder returned rc; a failed close is SIO_IO. For a memory sink, on
   success *out holds *out_count bytes for the caller to free(3); on failure nothing is kept. */
static inline int sio_sink_close(sio_sink *s, int rc, void **out, size_t *out_count, char *err, size_t errlen) {
    if (fclose(s->f) != 0 && rc == SIO_OK) {
        sio_set_err(err, errlen, strerror(errno));
        rc = SIO_IO;
    }
    if (!out) return rc;
    if (rc != SIO_OK) {
        free(s->buf);
        return rc;
    }
    *out = s->buf;
    *out_count = s->len;
    return SIO_OK;
}
/* The PNG encoder (png_encode.c): writes the whole file to f, compressing on up to `threads` threads. */
int sio_png_encode(FILE *f, const void *pixels, int32_t width, int32_t height, int32_t channels, int32_t bit_depth,
                   int32_t threads, char *err, size_t errlen);
#endif
