/* test_kernels_gemm.c: gradient checks of the linear, conv2d and pooling kernels.
 * Every gradient a backward pass produces is compared with a central finite
 * difference of loss = sum(r * out) for a fixed random r (so dout = r), with
 * the float kernels' outputs summed in double. These ops are piecewise linear
 * in each input, so the difference is exact up to rounding except where a
 * perturbation crosses a kink (a ReLU turning on/off, a max-pool winner
 * changing): such coordinates are detected from the activation pattern and
 * skipped. Gradients start from random values, so a backward that overwrites
 * instead of accumulating fails. Also checks that chunked (large-batch) conv
 * matches sample-by-sample calls and that NULL gradients are skipped. */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "ops/kernels.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static float urand(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

static float *rnd(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = urand();
    return p;
}

static float *dup(const float *s, size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    memcpy(p, s, n * sizeof *p);
    return p;
}

/* One op under test: up to 3 parameter arrays, a forward into out, a backward
 * accumulating into grads[], and an optional pattern (which ReLUs are on,
 * which inputs won a max-pool) to detect kinks. */
typedef struct op {
    const char *name;
    int np;
    float *p[3];
    size_t pn[3];
    size_t nout;
    void (*fwd)(struct op *o, float *out);
    void (*bwd)(struct op *o, float **g, float *dout, const float *out);
    void (*pattern)(struct op *o, const float *out, int32_t *pat);
    int cfg[12];
    float *scratch;
    int32_t *idx;
} op;

static double loss(op *o, float *out, const float *r) {
    o->fwd(o, out);
    double s = 0;
    for (size_t i = 0; i < o->nout; i++) s += (double)r[i] * out[i];
    return s;
}

/* Checks every gradient of o at up to max_coords coordinates per parameter. */
static void gradcheck(op *o, float eps, double tol, size_t max_coords) {
    float *out = malloc(o->nout * sizeof *out), *r = rnd(o->nout), *dout = dup(r, o->nout);
    int32_t *pat0 = calloc(o->nout, sizeof *pat0), *pat1 = calloc(o->nout, sizeof *pat1);
    float *g[3] = {0}, *g0[3] = {0};
    for (int k = 0; k < o->np; k++) {
        g0[k] = rnd(o->pn[k]);
        g[k] = dup(g0[k], o->pn[k]);
    }
    o->fwd(o, out);
    if (o->pattern) o->pattern(o, out, pat0);
    o->bwd(o, g, dout, out);
    int checked = 0, skipped = 0;
    for (int k = 0; k < o->np; k++) {
        size_t n = o->pn[k], step = n > max_coords ? n / max_coords : 1;
        for (size_t i = (size_t)k % step; i < n; i += step) {
            float x0 = o->p[k][i], xp = x0 + eps, xm = x0 - eps;
            int kink = 0;
            o->p[k][i] = xp;
            double lp = loss(o, out, r);
            if (o->pattern) {
                o->pattern(o, out, pat1);
                kink |= memcmp(pat0, pat1, o->nout * sizeof *pat0) != 0;
            }
            o->p[k][i] = xm;
            double lm = loss(o, out, r);
            if (o->pattern) {
                o->pattern(o, out, pat1);
                kink |= memcmp(pat0, pat1, o->nout * sizeof *pat0) != 0;
            }
            o->p[k][i] = x0;
            if (kink) {
                skipped++;
                continue;
            }
            double num = (lp - lm) / ((double)xp - (double)xm);
            double ana = (double)g[k][i] - (double)g0[k][i];
            double s = fabs(num) > 1 ? fabs(num) : 1;
            if (fabs(num - ana) > tol * s) {
                fprintf(stderr, "%s: grad %d[%zu] numeric %.6g analytic %.6g\n", o->name, k, i, num, ana);
                check_case_failed_ = 1;
                goto done;
            }
            checked++;
        }
    }
done:
    /* a healthy check tests most coordinates; kinks are rare */
    CHECK_MSG(checked > 4 * skipped, "%s: %d checked, %d skipped at kinks", o->name, checked, skipped);
    for (int k = 0; k < o->np; k++) free(g[k]), free(g0[k]);
    free(out), free(r), free(dout), free(pat0), free(pat1);
}

static void relu_pattern(op *o, const float *out, int32_t *pat) {
    for (size_t i = 0; i < o->nout; i++) pat[i] = out[i] > 0.0f;
}

/* ---- linear: cfg = B, IN, OUT, act ---- */
static void lin_fwd(op *o, float *out) {
    int *c = o->cfg;
    lt_linear_forward(out, o->p[0], o->p[1], o->p[2], c[0], c[1], c[2], (lt_act)c[3]);
}
static void lin_bwd(op *o, float **g, float *dout, const float *out) {
    int *c = o->cfg;
    lt_linear_backward(g[0], g[1], g[2], dout, out, o->p[0], o->p[1], c[0], c[1], c[2], (lt_act)c[3]);
}
static void check_linear(int B, int IN, int OUT, lt_act act) {
    op o = {.name = "linear", .np = 3, .fwd = lin_fwd, .bwd = lin_bwd, .cfg = {B, IN, OUT, act}};
    o.pn[0] = (size_t)B * IN, o.pn[1] = (size_t)OUT * IN, o.pn[2] = (size_t)OUT;
    for (int k = 0; k < 3; k++) o.p[k] = rnd(o.pn[k]);
    o.nout = (size_t)B * OUT;
    if (act == LT_ACT_RELU) o.pattern = relu_pattern;
    gradcheck(&o, 1e-2f, 2e-3, 400);
    for (int k = 0; k < 3; k++) free(o.p[k]);
}

static void test_linear_grad(void) {
    check_linear(3, 5, 4, LT_ACT_NONE);
    check_linear(4, 9, 6, LT_ACT_RELU);
    check_linear(1, 1, 1, LT_ACT_NONE);
}

/* ---- conv2d: cfg = B, C, H, W, OC, KH, KW, stride, pad, act ---- */
#define CONV_ARGS(c) c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]
static void conv_fwd(op *o, float *out) {
    int *c = o->cfg;
    lt_conv2d_forward(out, o->p[0], o->p[1], o->p[2], CONV_ARGS(c), (lt_act)c[9], o->scratch);
}
static void conv_bwd(op *o, float **g, float *dout, const float *out) {
    int *c = o->cfg;
    lt_conv2d_backward(g[0], g[1], g[2], dout, out, o->p[0], o->p[1], CONV_ARGS(c), (lt_act)c[9], o->scratch);
}
static void check_conv(int B, int C, int H, int W, int OC, int KH, int KW, int stride, int pad, lt_act act,
                       size_t max_coords) {
    op o = {
        .name = "conv2d", .np = 3, .fwd = conv_fwd, .bwd = conv_bwd, .cfg = {B, C, H, W, OC, KH, KW, stride, pad, act}};
    int OH = (H + 2 * pad - KH) / stride + 1, OW = (W + 2 * pad - KW) / stride + 1;
    o.pn[0] = (size_t)B * C * H * W, o.pn[1] = (size_t)OC * C * KH * KW, o.pn[2] = (size_t)OC;
    for (int k = 0; k < 3; k++) o.p[k] = rnd(o.pn[k]);
    o.nout = (size_t)B * OC * OH * OW;
    o.scratch = malloc(lt_conv2d_scratch_floats(B, C, H, W, OC, KH, KW, stride, pad) * sizeof(float));
    if (act == LT_ACT_RELU) o.pattern = relu_pattern;
    gradcheck(&o, 1e-2f, 2e-3, max_coords);
    for (int k = 0; k < 3; k++) free(o.p[k]);
    free(o.scratch);
}

static void test_conv2d_grad(void) {
    check_conv(2, 3, 6, 5, 4, 3, 3, 1, 0, LT_ACT_RELU, 1000);
    check_conv(2, 2, 7, 7, 3, 3, 3, 2, 1, LT_ACT_NONE, 1000); /* stride 2, padding 1 */
    check_conv(2, 2, 8, 7, 3, 3, 3, 2, 1, LT_ACT_RELU, 1000);
    check_conv(3, 2, 6, 6, 2, 2, 3, 1, 1, LT_ACT_RELU, 1000);  /* non-square kernel */
    check_conv(2, 1, 9, 9, 5, 3, 3, 1, 0, LT_ACT_RELU, 1000);  /* single input channel */
    check_conv(2, 2, 6, 7, 3, 3, 3, 1, 1, LT_ACT_RELU, 1000);  /* small-C direct dW, padding 1 */
    check_conv(2, 4, 6, 6, 3, 3, 3, 1, 1, LT_ACT_RELU, 1000);  /* GEMM dW, padding 1 */
    check_conv(2, 4, 4, 20, 2, 3, 3, 1, 0, LT_ACT_NONE, 1000); /* rows of 18: 16 + overlapping tail */
    check_conv(2, 3, 5, 5, 4, 1, 1, 2, 0, LT_ACT_NONE, 1000);  /* 1x1, stride 2 */
    /* several batch chunks; no ReLU, which would put some kink within eps of
     * almost every weight perturbation at this size. On the im2col path: at
     * this size the finite differences of the Winograd forward's rounding
     * exceed the tolerance (its accuracy against a double reference is
     * checked in test_conv_winograd.c) */
    lt_conv2d_set_algo(LT_CONV_GEMM);
    check_conv(27, 32, 14, 14, 8, 3, 3, 1, 0, LT_ACT_NONE, 60);
    lt_conv2d_set_algo(LT_CONV_AUTO);
    /* Winograd F(4x4, 3x3): whole and partial tiles, padding 0, 1, 2 */
    check_conv(2, 8, 6, 6, 8, 3, 3, 1, 0, LT_ACT_RELU, 1000);
    check_conv(2, 8, 7, 9, 8, 3, 3, 1, 1, LT_ACT_RELU, 1000);
    check_conv(1, 9, 5, 6, 10, 3, 3, 1, 2, LT_ACT_NONE, 1000);
}

/* ---- pooling: cfg = B, C, H, W, K, stride, pad ---- */
static void mp_fwd(op *o, float *out) {
    int *c = o->cfg;
    lt_maxpool2d_forward(out, o->idx, o->p[0], c[0], c[1], c[2], c[3], c[4], c[5], c[6]);
}
static void mp_bwd(op *o, float **g, float *dout, const float *out) {
    int *c = o->cfg;
    lt_maxpool2d_backward(g[0], dout, o->idx, c[0], c[1], c[2], c[3], c[7], c[8]);
}
static void mp_pattern(op *o, const float *out, int32_t *pat) { memcpy(pat, o->idx, o->nout * sizeof *pat); }
static void ap_fwd(op *o, float *out) {
    int *c = o->cfg;
    lt_avgpool2d_forward(out, o->p[0], c[0], c[1], c[2], c[3], c[4], c[5], c[6]);
}
static void ap_bwd(op *o, float **g, float *dout, const float *out) {
    int *c = o->cfg;
    lt_avgpool2d_backward(g[0], dout, c[0], c[1], c[2], c[3], c[4], c[5], c[6]);
}
static void check_pool(int is_max, int B, int C, int H, int W, int K, int stride, int pad) {
    int OH = (H + 2 * pad - K) / stride + 1, OW = (W + 2 * pad - K) / stride + 1;
    op o = {.name = is_max ? "maxpool2d" : "avgpool2d", .np = 1, .cfg = {B, C, H, W, K, stride, pad, OH, OW}};
    o.pn[0] = (size_t)B * C * H * W;
    o.p[0] = rnd(o.pn[0]);
    o.nout = (size_t)B * C * OH * OW;
    o.idx = calloc(o.nout, sizeof *o.idx);
    o.fwd = is_max ? mp_fwd : ap_fwd;
    o.bwd = is_max ? mp_bwd : ap_bwd;
    if (is_max) o.pattern = mp_pattern;
    gradcheck(&o, 1e-3f, 2e-3, 1000);
    free(o.p[0]), free(o.idx);
}

static void test_pool_grad(void) {
    check_pool(1, 2, 3, 6, 6, 2, 2, 0);
    check_pool(1, 2, 2, 7, 5, 2, 2, 0); /* odd sizes: last row/column unused */
    check_pool(1, 2, 2, 7, 7, 3, 2, 1); /* padding 1 */
    check_pool(0, 2, 3, 6, 6, 2, 2, 0);
    check_pool(0, 2, 2, 7, 7, 3, 2, 1);
    check_pool(0, 1, 2, 5, 6, 3, 1, 1);
}

/* Max pool: padding never wins, ties keep the first, NaN propagates. */
static void test_maxpool_rules(void) {
    float x[4] = {-5, -7, -6, -8}, out[1];
    int32_t idx[1];
    lt_maxpool2d_forward(out, idx, x, 1, 1, 2, 2, 3, 2, 1); /* 3x3 window over a padded 2x2 plane */
    CHECK(out[0] == -5.0f && idx[0] == 0);
    float t[4] = {1, 3, 3, 2};
    lt_maxpool2d_forward(out, idx, t, 1, 1, 2, 2, 2, 2, 0);
    CHECK(out[0] == 3.0f && idx[0] == 1);
    float n[4] = {1, NAN, 3, 2};
    lt_maxpool2d_forward(out, idx, n, 1, 1, 2, 2, 2, 2, 0);
    CHECK(isnan(out[0]) && idx[0] == 1);
}

/* A multi-chunk batch gives the same results as one sample at a time, and NULL
 * gradients are skipped without touching the others. */
static void test_conv2d_chunks(void) {
    enum { B = 27, C = 32, H = 14, W = 14, OC = 8, KH = 3, KW = 3, OH = 12, OW = 12 };
    size_t nin = (size_t)B * C * H * W, nout = (size_t)B * OC * OH * OW, nw = (size_t)OC * C * KH * KW;
    size_t sin1 = nin / B, sout1 = nout / B;
    float *x = rnd(nin), *w = rnd(nw), *b = rnd(OC), *r = rnd(nout);
    float *out = calloc(nout, 4), *out1 = calloc(nout, 4);
    float *dx = calloc(nin, 4), *dw = calloc(nw, 4), *db = calloc(OC, 4);
    float *dx1 = calloc(nin, 4), *dw1 = calloc(nw, 4), *db1 = calloc(OC, 4);
    float *dxonly = calloc(nin, 4);
    float *s = malloc(lt_conv2d_scratch_floats(B, C, H, W, OC, KH, KW, 1, 0) * 4);
    float *s1 = malloc(lt_conv2d_scratch_floats(1, C, H, W, OC, KH, KW, 1, 0) * 4);
    /* really chunked: past a few chunks the workspace does not grow with the batch */
    CHECK(lt_conv2d_scratch_floats(4 * B, C, H, W, OC, KH, KW, 1, 0) ==
          lt_conv2d_scratch_floats(8 * B, C, H, W, OC, KH, KW, 1, 0));
    CHECK(lt_conv2d_scratch_floats(B, C, H, W, OC, KH, KW, 1, 0) <=
          lt_conv2d_scratch_floats(4 * B, C, H, W, OC, KH, KW, 1, 0));
    lt_conv2d_forward(out, x, w, b, B, C, H, W, OC, KH, KW, 1, 0, LT_ACT_RELU, s);
    float *d = dup(r, nout);
    lt_conv2d_backward(dx, dw, db, d, out, x, w, B, C, H, W, OC, KH, KW, 1, 0, LT_ACT_RELU, s);
    memcpy(d, r, nout * 4);
    lt_conv2d_backward(dxonly, NULL, NULL, d, out, x, w, B, C, H, W, OC, KH, KW, 1, 0, LT_ACT_RELU, s);
    for (int i = 0; i < B; i++) {
        lt_conv2d_forward(out1 + i * sout1, x + i * sin1, w, b, 1, C, H, W, OC, KH, KW, 1, 0, LT_ACT_RELU, s1);
        memcpy(d, r + i * sout1, sout1 * 4);
        lt_conv2d_backward(dx1 + i * sin1, dw1, db1, d, out1 + i * sout1, x + i * sin1, w, 1, C, H, W, OC, KH, KW, 1, 0,
                           LT_ACT_RELU, s1);
    }
    CHECK(check_max_rel_err(out, out1, nout) < 1e-5);
    CHECK(check_max_rel_err(dx, dx1, nin) < 1e-5);
    CHECK(check_max_rel_err(dw, dw1, nw) < 1e-5);
    CHECK(check_max_rel_err(db, db1, OC) < 1e-5);
    CHECK(memcmp(dx, dxonly, nin * 4) == 0);
    free(x), free(w), free(b), free(r), free(out), free(out1), free(dx), free(dw), free(db);
    free(dx1), free(dw1), free(db1), free(dxonly), free(s), free(s1), free(d);
}

int main(void) {
    RUN(test_linear_grad);
    RUN(test_conv2d_grad);
    RUN(test_pool_grad);
    RUN(test_maxpool_rules);
    RUN(test_conv2d_chunks);
    return check_done();
}
