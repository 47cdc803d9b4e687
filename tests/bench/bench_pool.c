/* bench_pool.c: the max pool of the Keras MNIST CNN (2x2, stride 2, on its
 * conv2 output [B, 64, 24, 24], batch 128 by default), forward and the fill
 * backward (the one training runs: the windows tile the plane), as lathe runs
 * them side by side with the plain scalar loops (kept here as the peer:
 * window by window, and for the backward a memset of the plane then the
 * winners' scatter, the way lathe ran it before its fill backward wrote each
 * row pair once, eight windows at a time where the CPU has AVX2), on the
 * same buffers, in turns, who goes first alternating. Prints ms per
 * call (best of the repeats), the bytes moved per second, and the ratio.
 * Results are checked equal before timing. Threads: OMP_NUM_THREADS (the
 * kernel shares planes among them; the scalar peer here runs on one thread,
 * so compare at OMP_NUM_THREADS=1). Usage: bench_pool [repeats] [batch] */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lathe/common.h"
#include "ops/kernels.h"

static void scalar_forward(float *out, int32_t *idx, const float *inp, size_t planes, int H, int W) {
    int OH = H / 2, OW = W / 2;
    for (size_t pl = 0; pl < planes; pl++) {
        const float *x = inp + pl * (size_t)H * W;
        float *o = out + pl * (size_t)OH * OW;
        int32_t *ix = idx + pl * (size_t)OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            const float *r0 = x + (size_t)(2 * oh) * W, *r1 = r0 + W;
            for (int ow = 0; ow < OW; ow++) {
                int iw = 2 * ow;
                float m = r0[iw];
                int32_t mi = 2 * oh * W + iw;
                if (r0[iw + 1] > m || isnan(r0[iw + 1])) m = r0[iw + 1], mi = 2 * oh * W + iw + 1;
                if (r1[iw] > m || isnan(r1[iw])) m = r1[iw], mi = (2 * oh + 1) * W + iw;
                if (r1[iw + 1] > m || isnan(r1[iw + 1])) m = r1[iw + 1], mi = (2 * oh + 1) * W + iw + 1;
                o[(size_t)oh * OW + ow] = m;
                ix[(size_t)oh * OW + ow] = mi;
            }
        }
    }
}

static void scalar_fill(float *dinp, const float *dout, const int32_t *idx, size_t planes, int H, int W) {
    size_t HW = (size_t)H * W, OP = HW / 4;
    for (size_t pl = 0; pl < planes; pl++) {
        float *d = dinp + pl * HW;
        memset(d, 0, HW * sizeof(float));
        for (size_t i = 0; i < OP; i++) d[idx[pl * OP + i]] = dout[pl * OP + i];
    }
}

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "bench_pool: out of memory\n");
        exit(1);
    }
    return p;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 20, B = argc > 2 ? atoi(argv[2]) : 128;
    if (reps < 1 || B < 1) {
        fprintf(stderr, "usage: bench_pool [repeats >= 1] [batch >= 1]\n");
        return 2;
    }
    const int C = 64, H = 24, W = 24, OH = 12, OW = 12;
    size_t n = (size_t)B * C * H * W, on = n / 4, planes = (size_t)B * C;
    float *x = xmalloc(n * sizeof *x), *o1 = xmalloc(on * sizeof *o1), *o2 = xmalloc(on * sizeof *o2);
    int32_t *i1 = xmalloc(on * sizeof *i1), *i2 = xmalloc(on * sizeof *i2);
    float *g = xmalloc(on * sizeof *g), *d1 = xmalloc(n * sizeof *d1), *d2 = xmalloc(n * sizeof *d2);
    unsigned s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((s >> 8) & 0xff) / 256.0f - 0.5f; /* ReLU outputs tie at 0 often: so do these */
        if (x[i] < 0) x[i] = 0;
    }
    for (size_t i = 0; i < on; i++) g[i] = (float)(i % 97) * 0.01f;
    lt_maxpool2d_forward(o1, i1, x, B, C, H, W, 2, 2, 0);
    scalar_forward(o2, i2, x, planes, H, W);
    lt_maxpool2d_backward_fill(d1, g, i1, B, C, H, W, OH, OW);
    scalar_fill(d2, g, i2, planes, H, W);
    if (memcmp(o1, o2, on * sizeof *o1) || memcmp(i1, i2, on * sizeof *i1) || memcmp(d1, d2, n * sizeof *d1)) {
        fprintf(stderr, "bench_pool: lathe's pool differs from the scalar loops\n");
        return 1;
    }
    double tf[2] = {1e30, 1e30}, tb[2] = {1e30, 1e30};
    /* in turns, and who goes first alternates: each call finds the caches as
       the other left them */
    for (int r = 0; r < 2 * reps; r++) {
        for (int k = 0; k < 2; k++) {
            int lathe = (r + k) % 2 == 0;
            double t0 = lt_now();
            if (lathe)
                lt_maxpool2d_forward(o1, i1, x, B, C, H, W, 2, 2, 0);
            else
                scalar_forward(o2, i2, x, planes, H, W);
            double t1 = lt_now();
            if (lathe)
                lt_maxpool2d_backward_fill(d1, g, i1, B, C, H, W, OH, OW);
            else
                scalar_fill(d2, g, i2, planes, H, W);
            double t2 = lt_now();
            if (t1 - t0 < tf[!lathe]) tf[!lathe] = t1 - t0;
            if (t2 - t1 < tb[!lathe]) tb[!lathe] = t2 - t1;
        }
    }
    /* bytes: forward reads the input, writes values and winners; the fill
       backward reads the gradient and winners, writes the input's gradient */
    double bf = (double)(n + 2 * on) * 4, bb = bf;
    printf("maxpool 2x2/2 on [%d, %d, %d, %d], best of %d\n", B, C, H, W, reps);
    printf("%-22s %9s %9s %9s\n", "", "lathe ms", "scalar ms", "ratio");
    printf("%-22s %9.3f %9.3f %8.2fx   (lathe %.1f GB/s)\n", "forward", tf[0] * 1e3, tf[1] * 1e3, tf[1] / tf[0],
           bf / tf[0] / 1e9);
    printf("%-22s %9.3f %9.3f %8.2fx   (lathe %.1f GB/s)\n", "backward (fill)", tb[0] * 1e3, tb[1] * 1e3, tb[1] / tb[0],
           bb / tb[0] / 1e9);
    free(x), free(o1), free(o2), free(i1), free(i2), free(g), free(d1), free(d2);
    return 0;
}
