/* Float samples to 8-bit pixels, the loop the enhancement pipeline runs on every output row. */
#include "CImageIO.h"

void sio_rgb_f32_to_u8(const float *src, uint8_t *dst, size_t count, size_t dst_channels) {
    for (size_t x = 0; x < count; x++) {
        for (size_t c = 0; c < 3; c++) {
            float v = src[x * 3 + c];
            float t = (v != v ? 0.0f : (v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v))) * 255.0f;
            int i = (int)t; /* t >= 0: truncation is floor, without a call to floorf */
            dst[x * dst_channels + c] = (uint8_t)(i + (t - (float)i >= 0.5f));
        }
    }
}
