/* Float samples to 8-bit pixels, the loop the enhancement pipeline runs on every output row. */
#include "CImageIO.h"

static inline uint8_t to_u8(float v) {
    float t = (v != v ? 0.0f : (v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v))) * 255.0f;
    int i = (int)t; /* t >= 0: truncation is floor, without a call to floorf */
    return (uint8_t)(i + (t - (float)i >= 0.5f));
}

void sio_rgb_f32_to_u8(const float *src, uint8_t *dst, size_t count, size_t dst_channels) {
    if (dst_channels == 3) {
        /* RGB to RGB: one flat loop over the samples (the interleaved form below does not vectorize) */
        for (size_t k = 0; k < count * 3; k++) dst[k] = to_u8(src[k]);
        return;
    }
    for (size_t x = 0; x < count; x++) {
        for (size_t c = 0; c < 3; c++) {
            dst[x * dst_channels + c] = to_u8(src[x * 3 + c]);
        }
    }
}
