/* ops/cpu/dropout.c: inverted dropout, forward and backward over n floats.
 *
 * Each element gets 21 random bits, three elements per 64-bit draw (bits 0-20,
 * 21-41, 42-62), so a 128x9216 activation costs ~393k draws instead of 1.2M. An
 * element is dropped when its bits are below round(p * 2^21): the drop
 * probability is p to within 2^-22 (2.4e-7). Bits are unpacked into a small
 * stack buffer per chunk so that the masking loop itself is branch-free and
 * vectorises. For a given rng state and n the mask is fully determined: chunk k
 * always consumes ceil(len_k / 3) draws.
 *
 * The draws are exactly lt_rng_u64's stream (xoshiro256**, core/rng.c), stepped
 * here on a register copy of the state that is written back at the end: calling
 * lt_rng_u64 through memory cost ~5.7 ns a draw (the state round-trips through
 * stores and loads every call), the register copy ~1 ns. The unit test checks the
 * masks and the final state against lt_rng_u64 itself. */
#include "ops/kernels.h"

#define DROP_BITS 21
#define DROP_CHUNK 384 /* elements per chunk, a multiple of 3 (1.5 KiB of stack) */

static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* one xoshiro256** step, identical to lt_rng_u64 */
static inline uint64_t xoshiro_next(uint64_t *s0, uint64_t *s1, uint64_t *s2, uint64_t *s3) {
    uint64_t result = rotl64(*s1 * 5, 7) * 9;
    uint64_t t = *s1 << 17;
    *s2 ^= *s0;
    *s3 ^= *s1;
    *s1 ^= *s2;
    *s0 ^= *s3;
    *s2 ^= t;
    *s3 = rotl64(*s3, 45);
    return result;
}

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
    uint64_t s0 = rng->s[0], s1 = rng->s[1], s2 = rng->s[2], s3 = rng->s[3];
    for (size_t i = 0; i < n; i += DROP_CHUNK) {
        size_t len = n - i < DROP_CHUNK ? n - i : DROP_CHUNK;
        for (size_t k = 0; k < len; k += 3) {
            uint64_t u = xoshiro_next(&s0, &s1, &s2, &s3);
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
    rng->s[0] = s0;
    rng->s[1] = s1;
    rng->s[2] = s2;
    rng->s[3] = s3;
}

void lt_dropout_backward(float *dinp, const float *dout, const float *mask, size_t n) {
    if (!dinp) return;
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * mask[i];
}
