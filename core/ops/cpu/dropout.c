/* ops/cpu/dropout.c: inverted dropout, forward and backward over n floats.
 *
 * Each element gets 21 random bits, three elements per lt_rng_u64 draw (bits
 * 0-20, 21-41, 42-62), so a 128x9216 activation costs ~393k generator calls
 * instead of 1.2M. An element is dropped when its bits are below
 * round(p * 2^21): the drop probability is p to within 2^-22 (2.4e-7). Bits are
 * unpacked into a small stack buffer per chunk so that the masking loop itself is
 * branch-free and vectorises. For a given rng state and n the mask is fully
 * determined: chunk k always consumes ceil(len_k / 3) draws. */
#include "ops/kernels.h"

#define DROP_BITS 21
#define DROP_CHUNK 384 /* elements per chunk, a multiple of 3 (1.5 KiB of stack) */

void lt_dropout_forward(float *out, float *mask, const float *inp, size_t n, float p, lt_rng *rng) {
    const uint32_t one = 1u << DROP_BITS, lowmask = one - 1u;
    uint32_t thr;
    float scale;
    if (p >= 1.0f) { /* everything dropped; avoid 1/0 */
        thr = one;
        scale = 0.0f;
    } else {
        double t = (double)(p > 0.0f ? p : 0.0f) * (double)one + 0.5;
        thr = (uint32_t)t;
        scale = 1.0f / (1.0f - p);
    }
    uint32_t bits[DROP_CHUNK];
    for (size_t i = 0; i < n; i += DROP_CHUNK) {
        size_t len = n - i < DROP_CHUNK ? n - i : DROP_CHUNK;
        for (size_t k = 0; k < len; k += 3) {
            uint64_t u = lt_rng_u64(rng);
            bits[k] = (uint32_t)u & lowmask;
            bits[k + 1] = (uint32_t)(u >> DROP_BITS) & lowmask;
            bits[k + 2] = (uint32_t)(u >> (2 * DROP_BITS)) & lowmask;
        }
        const float *x = inp + i;
        float *y = out + i, *mk = mask + i;
        for (size_t k = 0; k < len; k++) {
            float m = bits[k] >= thr ? scale : 0.0f;
            mk[k] = m;
            y[k] = x[k] * m;
        }
    }
}

void lt_dropout_backward(float *dinp, const float *dout, const float *mask, size_t n) {
    if (!dinp) return;
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * mask[i];
}
