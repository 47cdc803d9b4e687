/* test_pool.c: the max pool's 2x2 stride-2 kernels (pool.c: eight windows at
 * a time in vector code where the CPU has AVX2, the last block of a row
 * overlapping its predecessor) against a plain reference of PyTorch's rule,
 * bitwise: the values, the winners' positions (the first maximum in window
 * order, a NaN always wins, the last NaN in the window), and the fill
 * backward (the gradient at each winner, zero elsewhere, whatever the buffer
 * held before). Rows of 1 to 24 windows cover the vector blocks, their
 * overlapping last block and rows too short for a block; planes with an odd
 * height or width leave a row or column no window reads. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ops/kernels.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint32_t next(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

/* Few distinct values, so windows tie often; now and then a NaN or an
 * infinity. */
static float value(void) {
    uint32_t r = next() % 64;
    if (r == 0) return NAN;
    if (r == 1) return -NAN;
    if (r == 2) return INFINITY;
    if (r == 3) return -INFINITY;
    return (float)((int)(next() % 7) - 3) * 0.5f;
}

static void ref_forward(float *out, int32_t *idx, const float *inp, int planes, int H, int W) {
    int OH = H / 2, OW = W / 2;
    for (int pl = 0; pl < planes; pl++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                const float *x = inp + (size_t)pl * H * W;
                float m = -INFINITY;
                int32_t mi = -1;
                for (int i = 0; i < 2; i++)
                    for (int j = 0; j < 2; j++) {
                        int32_t p = (2 * oh + i) * W + 2 * ow + j;
                        float v = x[p];
                        if (mi < 0 || v > m || isnan(v)) m = v, mi = p;
                    }
                out[((size_t)pl * OH + oh) * OW + ow] = m;
                idx[((size_t)pl * OH + oh) * OW + ow] = mi;
            }
}

static void check_shape(int B, int C, int H, int W) {
    int OH = H / 2, OW = W / 2, planes = B * C;
    size_t n = (size_t)planes * H * W, on = (size_t)planes * OH * OW;
    float *x = malloc(n * sizeof *x), *out = malloc(on * sizeof *out), *rout = malloc(on * sizeof *rout);
    int32_t *idx = malloc(on * sizeof *idx), *ridx = malloc(on * sizeof *ridx);
    float *g = malloc(on * sizeof *g), *d = malloc(n * sizeof *d), *rd = malloc(n * sizeof *rd);
    for (size_t i = 0; i < n; i++) x[i] = value();
    for (size_t i = 0; i < on; i++) g[i] = value();
    lt_maxpool2d_forward(out, idx, x, B, C, H, W, 2, 2, 0);
    ref_forward(rout, ridx, x, planes, H, W);
    CHECK_MSG(!memcmp(out, rout, on * sizeof *out) && !memcmp(idx, ridx, on * sizeof *idx),
              "maxpool 2x2/2 forward on %dx%dx%dx%d differs from the reference", B, C, H, W);
    if (H % 2 == 0 && W % 2 == 0) { /* the fill backward: windows tiling the plane */
        for (size_t i = 0; i < n; i++) d[i] = 7.0f, rd[i] = 0.0f;
        lt_maxpool2d_backward_fill(d, g, ridx, B, C, H, W, OH, OW);
        for (int pl = 0; pl < planes; pl++)
            for (size_t i = 0; i < (size_t)OH * OW; i++)
                rd[(size_t)pl * H * W + ridx[(size_t)pl * OH * OW + i]] = g[(size_t)pl * OH * OW + i];
        CHECK_MSG(!memcmp(d, rd, n * sizeof *d), "maxpool 2x2/2 fill backward on %dx%dx%dx%d differs", B, C, H, W);
    }
    /* the accumulating backward adds onto what is there */
    for (size_t i = 0; i < n; i++) d[i] = rd[i] = 1.0f;
    lt_maxpool2d_backward(d, g, ridx, B, C, H, W, OH, OW);
    for (int pl = 0; pl < planes; pl++)
        for (size_t i = 0; i < (size_t)OH * OW; i++)
            rd[(size_t)pl * H * W + ridx[(size_t)pl * OH * OW + i]] += g[(size_t)pl * OH * OW + i];
    CHECK_MSG(!memcmp(d, rd, n * sizeof *d), "maxpool 2x2/2 backward on %dx%dx%dx%d differs", B, C, H, W);
    free(x), free(out), free(rout), free(idx), free(ridx), free(g), free(d), free(rd);
}

static void test_2x2(void) {
    static const int hs[] = {2, 3, 4, 7, 24};
    for (size_t i = 0; i < sizeof hs / sizeof *hs; i++)
        for (int W = 2; W <= 49; W++) check_shape(2, 3, hs[i], W);
    check_shape(16, 64, 24, 24); /* the MNIST CNN's pool, threads sharing the planes */
}

int main(void) {
    RUN(test_2x2);
    return check_done();
}
