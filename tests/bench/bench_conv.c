/* bench_conv.c: throughput of the conv2d kernels on the Keras MNIST CNN's conv
 * layers at batch 128 (conv1 1->32 3x3 on 28x28, conv2 32->64 3x3 on 26x26,
 * both ReLU). For each layer it prints GFLOP/s (2*OC*K*B*P flops per pass,
 * K = C*KH*KW, P = OH*OW: a direct convolution's count, whatever the
 * algorithm does) of
 *   gemm-only    the bare cblas_sgemm calls of the im2col path for the whole
 *                batch: at its chunk shapes in its (out-channels x pixels)
 *                orientation, the same chunks in the (pixels x out-channels)
 *                orientation, and one GEMM over the whole batch
 *   im2col+gemm  the full kernel calls on the im2col path, im2col / scatter /
 *                col2im included: forward, backward dW (+db) only, backward dX
 *                only, and the whole layer forward + backward
 *   winograd     the same calls on the Winograd F(4x4, 3x3) path, for the
 *                layers that take it (conv2), and its speed-up
 *   bf16         the same calls with the bf16 GEMMs (--precision bf16-mixed:
 *                the hardware kernels, or their C model where the CPU has
 *                none), then without the tile products (lt_bf16_tiles_off):
 *                what the bf16 path costs beyond them, with the column
 *                matrix written out (-tiles col) and read from the image as
 *                B is packed (-tiles img, the kernel's way)
 *   pooled       for conv2, which a 2x2 max pool reads: its backward after
 *                the pool's as training ran it (the pool writing the
 *                output's gradient out, the layer reading it back) against
 *                the fused one (lt_conv2d_backward_pooled), in f32 and in
 *                bf16 without the tile products
 * (conv1's weight gradient takes the kernel's direct, GEMM-free path in f32,
 * so its gemm-only dW figure is what the GEMM path would have had to beat.)
 * Each figure is the best of several repeats (the machine is shared).
 * Run with OPENBLAS_NUM_THREADS=2. Usage: bench_conv [repeats] [batch] */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lathe/common.h"
#include "ops/cpu/bf16_gemm.h"
#include "ops/cpu/winograd.h"
#include "ops/kernels.h"

typedef struct layer {
    const char *name;
    int C, H, W, OC, KH, KW, stride, pad;
    int need_dinp; /* the first layer's input gradient is never needed */
    int pooled;    /* a 2x2 max pool reads its output */
} layer;

static float *randbuf(size_t n, unsigned *s) {
    float *p = malloc(n * sizeof *p);
    if (!p) {
        fprintf(stderr, "bench_conv: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        *s = *s * 1664525u + 1013904223u;
        p[i] = (float)((*s >> 8) & 0xffff) / 65536.0f - 0.5f;
    }
    return p;
}

#define BEST(var, reps, stmt)                                                                                          \
    do {                                                                                                               \
        var = 1e30;                                                                                                    \
        for (int r_ = 0; r_ < (reps); r_++) {                                                                          \
            double t0_ = lt_now();                                                                                     \
            stmt;                                                                                                      \
            double t_ = lt_now() - t0_;                                                                                \
            if (t_ < var) var = t_;                                                                                    \
        }                                                                                                              \
    } while (0)

/* Samples per im2col chunk, as conv2d.c picks them (a 4 MiB column matrix,
 * at least one chunk per thread). */
static int im2col_chunk(int B, size_t K, size_t P) {
    size_t nb = ((size_t)1 << 20) / (K * P), even = ((size_t)B + 1) / 2;
    if (nb > even) nb = even;
    return nb < 1 ? 1 : (int)nb;
}

/* The kernel calls of one layer: forward, backward dW (+db) only, backward
 * dX only, the whole layer (forward + backward as training runs it). */
static double time_call(int which, const layer *L, int B, float *inp, float *w, float *b, float *out, float *dout,
                        float *dinp, float *dw, float *db, float *scratch) {
    double t0 = lt_now();
    if (which == 0 || which == 3)
        lt_conv2d_forward(out, inp, w, b, B, L->C, L->H, L->W, L->OC, L->KH, L->KW, L->stride, L->pad, LT_ACT_RELU,
                          scratch);
    if (which == 1)
        lt_conv2d_backward(NULL, dw, db, dout, out, inp, w, B, L->C, L->H, L->W, L->OC, L->KH, L->KW, L->stride, L->pad,
                           LT_ACT_RELU, scratch);
    if (which == 2)
        lt_conv2d_backward(dinp, NULL, NULL, dout, out, inp, w, B, L->C, L->H, L->W, L->OC, L->KH, L->KW, L->stride,
                           L->pad, LT_ACT_RELU, scratch);
    if (which == 3)
        lt_conv2d_backward(L->need_dinp ? dinp : NULL, dw, db, dout, out, inp, w, B, L->C, L->H, L->W, L->OC, L->KH,
                           L->KW, L->stride, L->pad, LT_ACT_RELU, scratch);
    return lt_now() - t0;
}

/* Times the kernel calls under nv variants (set(v) switches to variant v),
 * the variants in turn within each repeat so that the machine's load swings
 * reach them alike; prints one row per variant, returns each variant's layer
 * time in tl[v]. */
static void kernel_rows_n(int nv, const char *const *labels, void (*set)(int), const layer *L, int B, int reps,
                          double gf, float *inp, float *w, float *b, float *out, float *dout, float *dinp, float *dw,
                          float *db, float *scratch, double *tl) {
    double t[4][4];
    for (int v = 0; v < nv; v++)
        for (int c = 0; c < 4; c++) t[v][c] = 1e30;
    for (int c = 0; c < 4; c++)
        for (int r = 0; r < reps; r++)
            for (int v = 0; v < nv; v++) {
                set(v);
                double x = time_call(c, L, B, inp, w, b, out, dout, dinp, dw, db, scratch);
                if (x < t[v][c]) t[v][c] = x;
            }
    int ngemm = L->need_dinp ? 3 : 2;
    for (int v = 0; v < nv; v++) {
        printf("  %-11s fwd %6.1f   dW %6.1f   dX %6.1f  GFLOP/s  (%.2f / %.2f / %.2f ms)  layer %6.1f GFLOP/s %6.2f "
               "ms\n",
               labels[v], gf / t[v][0], gf / t[v][1], gf / t[v][2], t[v][0] * 1e3, t[v][1] * 1e3, t[v][2] * 1e3,
               ngemm * gf / t[v][3], t[v][3] * 1e3);
        tl[v] = t[v][3];
    }
}

static void set_none(int v) { (void)v; }
static void set_fused(int v) { lt_conv2d_set_bf16_fused(v); }

/* Times the kernel calls with the current algorithm; returns the layer time. */
static double kernel_rows(const char *label, const layer *L, int B, int reps, double gf, float *inp, float *w, float *b,
                          float *out, float *dout, float *dinp, float *dw, float *db, float *scratch) {
    double tl;
    kernel_rows_n(1, &label, set_none, L, B, reps, gf, inp, w, b, out, dout, dinp, dw, db, scratch, &tl);
    return tl;
}

/* The backward of a layer whose output a 2x2 stride-2 max pool reads (the
 * MNIST CNN's conv2), as training runs it: the pool's fill backward writing
 * the output's gradient, then lt_conv2d_backward (unfused), against
 * lt_conv2d_backward_pooled making each plane where it reads it (fused), in
 * turns, best of reps; the results checked equal first. */
static void pooled_rows(const char *label, const layer *L, int B, int reps, float *inp, float *w, float *b, float *out,
                        float *dinp, float *dw, float *db, float *scratch) {
    int OH = (L->H + 2 * L->pad - L->KH) / L->stride + 1, OW = (L->W + 2 * L->pad - L->KW) / L->stride + 1;
    int PH = OH / 2, PW = OW / 2;
    size_t nout = (size_t)B * L->OC * OH * OW, np = (size_t)B * L->OC * PH * PW;
    size_t nin = (size_t)B * L->C * L->H * L->W, nw = (size_t)L->OC * L->C * L->KH * L->KW;
    unsigned s = 777;
    float *po = randbuf(np, &s), *gp = randbuf(np, &s), *dy = randbuf(nout, &s);
    float *chk = randbuf(nin + nw + (size_t)L->OC, &s);
    int32_t *idx = malloc(np * sizeof *idx);
    if (!idx) exit(1);
    lt_conv2d_forward(out, inp, w, b, B, L->C, L->H, L->W, L->OC, L->KH, L->KW, L->stride, L->pad, LT_ACT_RELU,
                      scratch);
    lt_maxpool2d_forward(po, idx, out, B, L->OC, OH, OW, 2, 2, 0);
    lt_pooled_grad pg = {.gp = gp, .idx = idx, .po = po, .PH = PH, .PW = PW, .fill = 1};
    double t[2] = {1e30, 1e30};
    for (int r = 0; r <= reps; r++)
        for (int v = 0; v < 2; v++) {
            memset(dinp, 0, nin * 4), memset(dw, 0, nw * 4), memset(db, 0, (size_t)L->OC * 4);
            double t0 = lt_now();
            if (v == 0) {
                lt_maxpool2d_backward_fill(dy, gp, idx, B, L->OC, OH, OW, PH, PW);
                lt_conv2d_backward(dinp, dw, db, dy, out, inp, w, B, L->C, L->H, L->W, L->OC, L->KH, L->KW, L->stride,
                                   L->pad, LT_ACT_RELU, scratch);
            } else {
                lt_conv2d_backward_pooled(dinp, dw, db, &pg, inp, w, B, L->C, L->H, L->W, L->OC, L->KH, L->KW,
                                          L->stride, L->pad, LT_ACT_RELU, scratch);
            }
            double x = lt_now() - t0;
            if (r == 0) { /* the first round checks, untimed */
                if (v == 0) {
                    memcpy(chk, dinp, nin * 4), memcpy(chk + nin, dw, nw * 4);
                    memcpy(chk + nin + nw, db, (size_t)L->OC * 4);
                } else if (memcmp(chk, dinp, nin * 4) || memcmp(chk + nin, dw, nw * 4) ||
                           memcmp(chk + nin + nw, db, (size_t)L->OC * 4)) {
                    fprintf(stderr, "bench_conv: the pooled backward differs from the pool's then the layer's\n");
                    exit(1);
                }
                continue;
            }
            if (x < t[v]) t[v] = x;
        }
    printf("  %-11s backward after its 2x2 max pool: pool's + layer's %.2f ms, fused %.2f ms (%.2fx)\n", label,
           t[0] * 1e3, t[1] * 1e3, t[0] / t[1]);
    free(po), free(gp), free(dy), free(chk), free(idx);
}

static void bench_layer(const layer *L, int B, int reps) {
    int OH = (L->H + 2 * L->pad - L->KH) / L->stride + 1, OW = (L->W + 2 * L->pad - L->KW) / L->stride + 1;
    size_t K = (size_t)L->C * L->KH * L->KW, P = (size_t)OH * OW;
    size_t nin = (size_t)B * L->C * L->H * L->W, nout = (size_t)B * L->OC * P, nw = (size_t)L->OC * K;
    size_t ns = lt_conv2d_scratch_floats(B, L->C, L->H, L->W, L->OC, L->KH, L->KW, L->stride, L->pad);
    int nb = im2col_chunk(B, K, P);
    unsigned s = 12345;
    float *inp = randbuf(nin, &s), *w = randbuf(nw, &s), *b = randbuf((size_t)L->OC, &s);
    float *out = randbuf(nout, &s), *dout = randbuf(nout, &s);
    float *dinp = randbuf(nin, &s), *dw = randbuf(nw, &s), *db = randbuf((size_t)L->OC, &s);
    float *scratch = randbuf(ns, &s);
    double gf = 2.0 * (double)L->OC * (double)K * (double)B * (double)P * 1e-9;

    /* bare GEMMs: the im2col path's chunks in both orientations, and the
     * whole batch at once (operands of the whole batch's size) */
    int N = nb * (int)P, chunks = (B + nb - 1) / nb, NB = B * (int)P;
    float *col = randbuf(K * (size_t)NB, &s), *cn = randbuf((size_t)L->OC * NB, &s);
    double t[3][3];
    for (int o = 0; o < 3; o++) {
        int n = o == 2 ? NB : N, reps_n = o == 2 ? 1 : chunks;
        BEST(
            t[o][0], reps, for (int c = 0; c < reps_n; c++) {
                if (o != 1)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L->OC, n, (int)K, 1.0f, w, (int)K, col, n,
                                0.0f, cn, n);
                else /* out^T [n, OC] = col^T [n, K] x w^T */
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, L->OC, (int)K, 1.0f, col, (int)K, w, (int)K,
                                0.0f, cn, L->OC);
            });
        BEST(
            t[o][1], reps, for (int c = 0; c < reps_n; c++) {
                if (o != 1)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L->OC, (int)K, n, 1.0f, cn, n, col, n, 1.0f,
                                dw, (int)K);
                else /* dW [OC, K] += dout^T^T [OC, n] x col^T [n, K] */
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L->OC, (int)K, n, 1.0f, cn, L->OC, col, (int)K,
                                1.0f, dw, (int)K);
            });
        BEST(
            t[o][2], reps, for (int c = 0; c < reps_n; c++) {
                if (o != 1)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, n, L->OC, 1.0f, w, (int)K, cn, n, 0.0f,
                                col, n);
                else /* dcol^T [n, K] = dout^T [n, OC] x w */
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, (int)K, L->OC, 1.0f, cn, L->OC, w, (int)K,
                                0.0f, col, (int)K);
            });
    }
    free(col), free(cn);

    printf("%s  B=%d C=%d %dx%d -> OC=%d %dx%d  K=%zu P=%zu  im2col chunk=%d samples  scratch=%.1f MB\n", L->name, B,
           L->C, L->H, L->W, L->OC, OH, OW, K, P, nb, (double)ns * 4e-6);
    const char *what[3] = {"chunks, out-channels x pixels (the kernel's)", "chunks, pixels x out-channels",
                           "one GEMM for the whole batch, out-channels x pixels"};
    for (int o = 0; o < 3; o++)
        printf("  %-11s fwd %6.1f   dW %6.1f   dX %6.1f  GFLOP/s  (%s)\n", "gemm-only", gf / t[o][0], gf / t[o][1],
               gf / t[o][2], what[o]);
    lt_conv2d_set_algo(LT_CONV_GEMM);
    double tg = kernel_rows("im2col+gemm", L, B, reps, gf, inp, w, b, out, dout, dinp, dw, db, scratch);
    lt_conv2d_set_algo(LT_CONV_AUTO);
    double tw_auto = tg;
    if (lt_winograd_ok(L->C, L->OC, L->KH, L->KW, L->stride)) {
        double tw = kernel_rows("winograd", L, B, reps, gf, inp, w, b, out, dout, dinp, dw, db, scratch);
        printf("  winograd / im2col+gemm: %.2fx the layer's speed\n", tg / tw);
        tw_auto = tw;
    }
    if (L->pooled) pooled_rows("f32", L, B, reps, inp, w, b, out, dinp, dw, db, scratch);
    /* bf16-mixed: every layer on the GEMM path with bf16 GEMMs; then the same
     * calls without the tile products, the column matrix written out (im2col)
     * and read from the image as it is packed */
    lt_bf16_impl hw = lt_bf16_available();
    lt_cpu_gemm_set_bf16(hw != LT_BF16_NONE ? hw : LT_BF16_EMULATED);
    kernel_rows(hw != LT_BF16_NONE ? "bf16" : "bf16 model", L, B, reps, gf, inp, w, b, out, dout, dinp, dw, db,
                scratch);
    lt_bf16_tiles_off(1);
    static const char *const variants[2] = {"-tiles col", "-tiles img"};
    double tv[2];
    kernel_rows_n(2, variants, set_fused, L, B, reps, gf, inp, w, b, out, dout, dinp, dw, db, scratch, tv);
    double tc = tv[0], ti = tv[1];
    lt_conv2d_set_bf16_fused(1);
    if (L->pooled) pooled_rows("-tiles img", L, B, reps, inp, w, b, out, dinp, dw, db, scratch);
    lt_bf16_tiles_off(0);
    lt_cpu_gemm_set_bf16(LT_BF16_NONE);
    printf("  bf16 outside the tile products: %.2f ms on the image, %.2f with the column matrix written (%.2fx); "
           "the f32 layer %.2f ms\n",
           ti * 1e3, tc * 1e3, tc / ti, (lt_winograd_ok(L->C, L->OC, L->KH, L->KW, L->stride) ? tw_auto : tg) * 1e3);
    free(inp), free(w), free(b), free(out), free(dout), free(dinp), free(dw), free(db), free(scratch);
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    int B = argc > 2 ? atoi(argv[2]) : 128;
    if (reps < 1) reps = 1;
    if (B < 1) B = 1;
    const layer layers[] = {
        {"conv1", 1, 28, 28, 32, 3, 3, 1, 0, 0, 0},
        {"conv2", 32, 26, 26, 64, 3, 3, 1, 0, 1, 1},
    };
    printf("OpenBLAS threads: %d\n", openblas_get_num_threads());
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) bench_layer(&layers[i], B, reps);
    return 0;
}
