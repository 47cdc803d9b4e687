/* test_conv_pool.c: a max pool that is the only reader of a conv2d's output
 * hands its gradient to the convolution's backward (lathe/graph.h,
 * lt_conv2d_backward_pooled), which makes the output's gradient plane by
 * plane where it reads it. Checked bitwise against the pool's backward
 * followed by lt_conv2d_backward:
 *   - the kernel, on every path the convolution takes (Winograd, im2col +
 *     GEMM, the direct weight gradient of a one-channel layer, stride 2),
 *     f32 and the bf16 GEMMs (their C model), with and without the fused
 *     ReLU (its outputs tie at 0 in the pool's windows), the fill and the
 *     adding pool backward (overlapping windows, an edge left over), several
 *     chunks on the threads;
 *   - the graph: a conv -> pool -> ... step with the fusion on and off gives
 *     the same gradients, bit for bit, under a rounding hook too; the
 *     convolution's output gradient is left unmade when fused, and a second
 *     reader of that output (or windows that do not tile it) keeps the
 *     unfused way. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lathe/ops.h"
#include "ops/cpu/bf16_gemm.h"
#include "ops/kernels.h"

static uint64_t seed = 0x9e3779b97f4a7c15ull;
static float urand(void) {
    seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
    return (float)(seed >> 40) / 8388608.0f - 1.0f;
}

typedef struct kcase {
    const char *name;
    int B, C, H, W, OC, K, stride, pad;
    lt_act act;
    int pk, ps; /* the pool's window and stride */
    lt_conv_algo algo;
    lt_bf16_impl bf16;
} kcase;

static void check_kernel(const kcase *k) {
    lt_conv2d_set_algo(k->algo);
    lt_cpu_gemm_set_bf16(k->bf16);
    int OH = (k->H + 2 * k->pad - k->K) / k->stride + 1, OW = (k->W + 2 * k->pad - k->K) / k->stride + 1;
    int PH = (OH - k->pk) / k->ps + 1, PW = (OW - k->pk) / k->ps + 1;
    int fill = k->pk == k->ps && OH % k->pk == 0 && OW % k->pk == 0;
    size_t ni = (size_t)k->B * k->C * k->H * k->W, nw = (size_t)k->OC * k->C * k->K * k->K;
    size_t no = (size_t)k->B * k->OC * OH * OW, np = (size_t)k->B * k->OC * PH * PW;
    size_t ns = lt_conv2d_scratch_floats(k->B, k->C, k->H, k->W, k->OC, k->K, k->K, k->stride, k->pad);
    float *inp = malloc(ni * 4), *w = malloc(nw * 4), *b = malloc((size_t)k->OC * 4), *y = malloc(no * 4);
    float *po = malloc(np * 4), *gp = malloc(np * 4), *dy = malloc(no * 4), *scratch = malloc(ns * 4);
    int32_t *idx = malloc(np * 4);
    float *dinp[2], *dw[2], *db[2];
    for (size_t i = 0; i < ni; i++) inp[i] = urand();
    for (size_t i = 0; i < nw; i++) w[i] = urand() * 0.5f;
    for (int i = 0; i < k->OC; i++) b[i] = urand() * 0.2f - 0.1f;
    for (size_t i = 0; i < np; i++) gp[i] = urand();
    gp[np / 2] = -0.0f; /* a negative zero is copied as it is */
    lt_conv2d_forward(y, inp, w, b, k->B, k->C, k->H, k->W, k->OC, k->K, k->K, k->stride, k->pad, k->act, scratch);
    lt_maxpool2d_forward(po, idx, y, k->B, k->OC, OH, OW, k->pk, k->ps, 0);
    for (int f = 0; f < 2; f++) {
        dinp[f] = malloc(ni * 4), dw[f] = malloc(nw * 4), db[f] = malloc((size_t)k->OC * 4);
        for (size_t i = 0; i < ni; i++) dinp[f][i] = 0.25f; /* the gradients add onto what is there */
        for (size_t i = 0; i < nw; i++) dw[f][i] = 0.5f;
        for (int i = 0; i < k->OC; i++) db[f][i] = -1.0f;
    }
    /* the unfused way, as the graph runs it on a fresh gradient */
    if (fill) {
        for (size_t i = 0; i < no; i++) dy[i] = NAN; /* the fill backward writes every element */
        lt_maxpool2d_backward_fill(dy, gp, idx, k->B, k->OC, OH, OW, PH, PW);
    } else {
        memset(dy, 0, no * 4);
        lt_maxpool2d_backward(dy, gp, idx, k->B, k->OC, OH, OW, PH, PW);
    }
    lt_conv2d_backward(dinp[0], dw[0], db[0], dy, y, inp, w, k->B, k->C, k->H, k->W, k->OC, k->K, k->K, k->stride,
                       k->pad, k->act, scratch);
    lt_pooled_grad pg = {.gp = gp, .idx = idx, .po = po, .PH = PH, .PW = PW, .fill = fill};
    for (size_t i = 0; i < ns; i++) scratch[i] = NAN; /* nothing is read from an earlier call */
    lt_conv2d_backward_pooled(dinp[1], dw[1], db[1], &pg, inp, w, k->B, k->C, k->H, k->W, k->OC, k->K, k->K, k->stride,
                              k->pad, k->act, scratch);
    CHECK_MSG(!memcmp(dinp[0], dinp[1], ni * 4), "%s: the input gradient differs", k->name);
    CHECK_MSG(!memcmp(dw[0], dw[1], nw * 4), "%s: the weight gradient differs", k->name);
    CHECK_MSG(!memcmp(db[0], db[1], (size_t)k->OC * 4), "%s: the bias gradient differs", k->name);
    /* only the weight gradient, and only the bias gradient */
    for (int f = 0; f < 2; f++) memset(dw[f], 0, nw * 4), memset(db[f], 0, (size_t)k->OC * 4);
    lt_conv2d_backward(NULL, dw[0], NULL, dy, y, inp, w, k->B, k->C, k->H, k->W, k->OC, k->K, k->K, k->stride, k->pad,
                       k->act, scratch);
    lt_conv2d_backward_pooled(NULL, dw[1], NULL, &pg, inp, w, k->B, k->C, k->H, k->W, k->OC, k->K, k->K, k->stride,
                              k->pad, k->act, scratch);
    lt_conv2d_backward(NULL, NULL, db[0], dy, y, inp, w, k->B, k->C, k->H, k->W, k->OC, k->K, k->K, k->stride, k->pad,
                       k->act, scratch);
    lt_conv2d_backward_pooled(NULL, NULL, db[1], &pg, inp, w, k->B, k->C, k->H, k->W, k->OC, k->K, k->K, k->stride,
                              k->pad, k->act, scratch);
    CHECK_MSG(!memcmp(dw[0], dw[1], nw * 4) && !memcmp(db[0], db[1], (size_t)k->OC * 4),
              "%s: a weight or bias gradient alone differs", k->name);
    for (int f = 0; f < 2; f++) free(dinp[f]), free(dw[f]), free(db[f]);
    free(inp), free(w), free(b), free(y), free(po), free(gp), free(dy), free(scratch), free(idx);
    lt_conv2d_set_algo(LT_CONV_AUTO);
    lt_cpu_gemm_set_bf16(LT_BF16_NONE);
}

static void test_kernel(void) {
    static const kcase cases[] = {
        {"conv2 shape, Winograd", 13, 32, 26, 26, 64, 3, 1, 0, LT_ACT_RELU, 2, 2, LT_CONV_AUTO, LT_BF16_NONE},
        {"conv2 shape, im2col + GEMM", 13, 32, 26, 26, 64, 3, 1, 0, LT_ACT_RELU, 2, 2, LT_CONV_GEMM, LT_BF16_NONE},
        {"conv2 shape, bf16 GEMMs", 13, 32, 26, 26, 64, 3, 1, 0, LT_ACT_RELU, 2, 2, LT_CONV_AUTO, LT_BF16_EMULATED},
        {"Winograd, no activation, padded", 5, 8, 9, 11, 9, 3, 1, 1, LT_ACT_NONE, 2, 2, LT_CONV_AUTO, LT_BF16_NONE},
        {"one channel, direct weight gradient", 7, 1, 14, 14, 8, 3, 1, 1, LT_ACT_RELU, 2, 2, LT_CONV_AUTO,
         LT_BF16_NONE},
        {"one channel, bf16 (direct dW f32)", 7, 1, 14, 14, 8, 3, 1, 1, LT_ACT_RELU, 2, 2, LT_CONV_AUTO,
         LT_BF16_EMULATED},
        {"stride 2, 5x5 kernel", 4, 3, 17, 17, 6, 5, 2, 2, LT_ACT_RELU, 2, 2, LT_CONV_AUTO, LT_BF16_NONE},
        {"overlapping 3x3/2 pool (adding backward)", 4, 8, 12, 12, 8, 3, 1, 0, LT_ACT_RELU, 3, 2, LT_CONV_AUTO,
         LT_BF16_NONE},
        {"an edge left over (adding backward), GEMM", 3, 2, 9, 10, 5, 3, 1, 0, LT_ACT_RELU, 2, 2, LT_CONV_GEMM,
         LT_BF16_NONE},
        {"an edge left over, bf16", 3, 2, 9, 10, 5, 3, 1, 0, LT_ACT_NONE, 2, 2, LT_CONV_GEMM, LT_BF16_EMULATED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_kernel(&cases[i]);
}

/* ---- the graph ---- */

static lt_rng rng;

static lt_tensor *leaf(lt_graph *g, const int *shape, int nd, float scale) {
    lt_tensor *t = lt_graph_tensor(g, shape, nd);
    for (size_t i = 0; i < t->numel; i++) t->data[i] = scale * lt_rng_normal(&rng);
    t->requires_grad = 1;
    return t;
}

/* bf16's rounding, as a mixed-precision hook would apply it */
static void round_bf16(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = lt_bf16_to_f32(lt_bf16_from_f32(x[i]));
}

typedef struct gres {
    float grads[4][4096];
    int conv_grad_made; /* the convolution's output got a gradient of its own */
} gres;

/* x -> conv (ReLU) -> max pool (k, stride) -> tanh -> sum; with second, the
 * convolution's output is read by a square too (sum added to the loss). */
static void run_graph(gres *r, int fuse, int rounding, int k, int stride, int second) {
    lt_graph g;
    lt_err err = {0};
    lt_rng_seed(&rng, 11);
    lt_graph_set_pool_fusion(fuse);
    CHECK(lt_graph_init(&g, NULL, &rng, &err) == LT_OK);
    if (rounding) g.round = round_bf16;
    int xs[4] = {5, 8, 10, 10}, ws[4] = {8, 8, 3, 3}, bs[1] = {8};
    lt_tensor *p[3] = {leaf(&g, xs, 4, 1), leaf(&g, ws, 4, 0.3f), leaf(&g, bs, 1, 0.1f)};
    lt_tensor *y = lt_conv2d(&g, p[0], p[1], p[2], 1, 0, LT_FUSE_RELU, &err);
    /* the square is recorded first, so that its backward runs after the
       pool's: the pool alone must not take the output's gradient over */
    lt_tensor *sq = second ? lt_sum(&g, lt_mul(&g, y, y, &err), &err) : NULL;
    lt_tensor *loss = lt_sum(&g, lt_tanh(&g, lt_maxpool2d(&g, y, k, stride, 0, &err), &err), &err);
    if (second) loss = lt_add(&g, loss, sq, &err);
    CHECK_MSG(loss != NULL, "%s", err.msg);
    if (!loss) return;
    CHECK(lt_backward(&g, loss, &err) == LT_OK);
    for (int i = 0; i < 3; i++) memcpy(r->grads[i], p[i]->grad, p[i]->numel * sizeof(float));
    r->conv_grad_made = y->grad != NULL;
    lt_graph_free(&g);
    lt_graph_set_pool_fusion(1);
}

static void test_graph(void) {
    static gres a, b;
    for (int rounding = 0; rounding < 2; rounding++) {
        run_graph(&a, 0, rounding, 2, 2, 0);
        run_graph(&b, 1, rounding, 2, 2, 0);
        CHECK_MSG(!memcmp(a.grads, b.grads, sizeof a.grads), "fused and unfused gradients differ (rounding %d)",
                  rounding);
        CHECK_MSG(a.conv_grad_made && !b.conv_grad_made, "the fusion did not run as asked (off %d, on %d)",
                  a.conv_grad_made, b.conv_grad_made);
    }
    /* a second reader of the convolution's output: not fused, same results */
    run_graph(&a, 0, 0, 2, 2, 1);
    run_graph(&b, 1, 0, 2, 2, 1);
    CHECK_MSG(!memcmp(a.grads, b.grads, sizeof a.grads) && b.conv_grad_made,
              "with a second reader: fused %d, or the gradients differ", !b.conv_grad_made);
    /* windows that do not tile the output (3x3 stride 2 on 8x8): not fused */
    run_graph(&a, 0, 0, 3, 2, 0);
    run_graph(&b, 1, 0, 3, 2, 0);
    CHECK_MSG(!memcmp(a.grads, b.grads, sizeof a.grads) && b.conv_grad_made,
              "overlapping windows: fused %d, or the gradients differ", !b.conv_grad_made);
}

int main(void) {
    RUN(test_kernel);
    RUN(test_graph);
    return check_done();
}
