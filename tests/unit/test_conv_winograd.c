/* test_conv_winograd.c: the Winograd F(4x4, 3x3) convolution path
 * (core/ops/cpu/winograd.c) against a direct convolution in double precision
 * and against the im2col + GEMM path: output, input, weight and bias gradients
 * for whole and partial tiles, padding 0..2, ReLU and none, one and several
 * batch chunks; gradients accumulate; NULL gradients are skipped; results are
 * bitwise repeatable and the same with the vector (AVX-512) and the portable
 * transform loops; and which layers take the path. */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "ops/cpu/winograd.h"
#include "ops/kernels.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static float urand(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

static float *rnd(size_t n, float scale) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = urand() * scale;
    return p;
}

/* max |a - ref| / max |ref| */
static double rel_err(const float *a, const double *ref, size_t n) {
    double e = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]);
        if (d > e || isnan(d)) e = isnan(d) ? INFINITY : d;
        if (fabs(ref[i]) > m) m = fabs(ref[i]);
    }
    return m > 0 ? e / m : e;
}

typedef struct shape {
    int B, C, H, W, OC, pad;
    lt_act act;
} shape;

/* Direct convolution in double: out, and the gradients for the output
 * gradient r masked by the ReLU pattern of fout, the float output of the
 * kernel under test (where an output is within rounding of 0, the double and
 * the float result may fall on different sides: the gradient follows the
 * kernel's own forward, as autograd does). */
static void reference(const shape *s, const float *x, const float *w, const float *b, const float *r, const float *fout,
                      double *out, double *dx, double *dw, double *db) {
    int OH = s->H + 2 * s->pad - 2, OW = s->W + 2 * s->pad - 2;
    for (int n = 0; n < s->B; n++)
        for (int o = 0; o < s->OC; o++)
            for (int y = 0; y < OH; y++)
                for (int xo = 0; xo < OW; xo++) {
                    double a = b[o];
                    for (int c = 0; c < s->C; c++)
                        for (int i = 0; i < 3; i++)
                            for (int j = 0; j < 3; j++) {
                                int iy = y + i - s->pad, ix = xo + j - s->pad;
                                if (iy < 0 || iy >= s->H || ix < 0 || ix >= s->W) continue;
                                a += (double)x[((size_t)(n * s->C + c) * s->H + iy) * s->W + ix] *
                                     w[((o * s->C + c) * 3 + i) * 3 + j];
                            }
                    size_t k = ((size_t)(n * s->OC + o) * OH + y) * OW + xo;
                    if (s->act == LT_ACT_RELU && a < 0) a = 0;
                    out[k] = a;
                    double g = s->act == LT_ACT_RELU && !(fout[k] > 0) ? 0.0 : r[k];
                    db[o] += g;
                    for (int c = 0; c < s->C; c++)
                        for (int i = 0; i < 3; i++)
                            for (int j = 0; j < 3; j++) {
                                int iy = y + i - s->pad, ix = xo + j - s->pad;
                                if (iy < 0 || iy >= s->H || ix < 0 || ix >= s->W) continue;
                                size_t xi = ((size_t)(n * s->C + c) * s->H + iy) * s->W + ix;
                                size_t wi = ((size_t)(o * s->C + c) * 3 + i) * 3 + j;
                                dx[xi] += g * w[wi];
                                dw[wi] += g * x[xi];
                            }
                }
}

/* Runs conv2d forward and backward with the current algorithm; the gradients
 * start from g0 (copied). */
typedef struct result {
    float *out, *dx, *dw, *db;
} result;

static result run(const shape *s, const float *x, const float *w, const float *b, const float *r, const float *g0x,
                  const float *g0w, const float *g0b) {
    int OH = s->H + 2 * s->pad - 2, OW = s->W + 2 * s->pad - 2;
    size_t ni = (size_t)s->B * s->C * s->H * s->W, no = (size_t)s->B * s->OC * OH * OW, nw = (size_t)s->OC * s->C * 9;
    result res = {malloc(no * 4), malloc(ni * 4), malloc(nw * 4), malloc((size_t)s->OC * 4)};
    memcpy(res.dx, g0x, ni * 4), memcpy(res.dw, g0w, nw * 4), memcpy(res.db, g0b, (size_t)s->OC * 4);
    float *scratch = malloc(lt_conv2d_scratch_floats(s->B, s->C, s->H, s->W, s->OC, 3, 3, 1, s->pad) * 4);
    float *d = malloc(no * 4);
    memcpy(d, r, no * 4);
    lt_conv2d_forward(res.out, x, w, b, s->B, s->C, s->H, s->W, s->OC, 3, 3, 1, s->pad, s->act, scratch);
    lt_conv2d_backward(res.dx, res.dw, res.db, d, res.out, x, w, s->B, s->C, s->H, s->W, s->OC, 3, 3, 1, s->pad, s->act,
                       scratch);
    free(scratch), free(d);
    return res;
}

static void release(result *r) { free(r->out), free(r->dx), free(r->dw), free(r->db); }

static void check_shape(shape s) {
    int OH = s.H + 2 * s.pad - 2, OW = s.W + 2 * s.pad - 2;
    size_t ni = (size_t)s.B * s.C * s.H * s.W, no = (size_t)s.B * s.OC * OH * OW, nw = (size_t)s.OC * s.C * 9;
    float *x = rnd(ni, 1.0f), *w = rnd(nw, 0.3f), *b = rnd((size_t)s.OC, 0.5f), *r = rnd(no, 1.0f);
    float *g0x = rnd(ni, 1.0f), *g0w = rnd(nw, 1.0f), *g0b = rnd((size_t)s.OC, 1.0f);
    double *out = calloc(no, 8), *dx = calloc(ni, 8), *dw = calloc(nw, 8), *db = calloc((size_t)s.OC, 8);
    CHECK(lt_winograd_ok(s.C, s.OC, 3, 3, 1));
    result wg = run(&s, x, w, b, r, g0x, g0w, g0b);
    reference(&s, x, w, b, r, wg.out, out, dx, dw, db);
    for (size_t i = 0; i < ni; i++) dx[i] += g0x[i];
    for (size_t i = 0; i < nw; i++) dw[i] += g0w[i];
    for (int i = 0; i < s.OC; i++) db[i] += g0b[i];

    /* F(4x4, 3x3) in f32: a few 1e-6 of the largest value (im2col: ~1e-7) */
    double eo = rel_err(wg.out, out, no), ex = rel_err(wg.dx, dx, ni), ew = rel_err(wg.dw, dw, nw),
           eb = rel_err(wg.db, db, (size_t)s.OC);
    CHECK_MSG(eo < 2e-5 && ex < 2e-5 && ew < 2e-5 && eb < 2e-6,
              "B=%d C=%d %dx%d OC=%d pad=%d act=%d: errors out %.2g dx %.2g dw %.2g db %.2g", s.B, s.C, s.H, s.W, s.OC,
              s.pad, (int)s.act, eo, ex, ew, eb);

    /* the same call again: bitwise the same */
    result again = run(&s, x, w, b, r, g0x, g0w, g0b);
    CHECK(memcmp(again.out, wg.out, no * 4) == 0 && memcmp(again.dx, wg.dx, ni * 4) == 0 &&
          memcmp(again.dw, wg.dw, nw * 4) == 0 && memcmp(again.db, wg.db, (size_t)s.OC * 4) == 0);

    /* the portable transform loops give bitwise the same as the vector ones */
    lt_winograd_set_vector(0);
    result scalar = run(&s, x, w, b, r, g0x, g0w, g0b);
    lt_winograd_set_vector(1);
    CHECK_MSG(memcmp(scalar.out, wg.out, no * 4) == 0 && memcmp(scalar.dx, wg.dx, ni * 4) == 0 &&
                  memcmp(scalar.dw, wg.dw, nw * 4) == 0 && memcmp(scalar.db, wg.db, (size_t)s.OC * 4) == 0,
              "B=%d C=%d %dx%d OC=%d pad=%d: vector and portable transforms differ", s.B, s.C, s.H, s.W, s.OC, s.pad);

    /* the im2col path agrees */
    lt_conv2d_set_algo(LT_CONV_GEMM);
    result gm = run(&s, x, w, b, r, g0x, g0w, g0b);
    lt_conv2d_set_algo(LT_CONV_AUTO);
    CHECK(rel_err(gm.out, out, no) < 2e-6);
    if (s.act == LT_ACT_NONE) /* (with ReLU its mask may differ from the Winograd output's near 0) */
        CHECK(rel_err(gm.dx, dx, ni) < 2e-6 && rel_err(gm.dw, dw, nw) < 2e-6 &&
              rel_err(gm.db, db, (size_t)s.OC) < 2e-6);

    /* NULL gradients are skipped; the others come out the same */
    float *only = malloc(ni * 4), *d = malloc(no * 4);
    float *scratch = malloc(lt_conv2d_scratch_floats(s.B, s.C, s.H, s.W, s.OC, 3, 3, 1, s.pad) * 4);
    memcpy(only, g0x, ni * 4), memcpy(d, r, no * 4);
    lt_conv2d_backward(only, NULL, NULL, d, wg.out, x, w, s.B, s.C, s.H, s.W, s.OC, 3, 3, 1, s.pad, s.act, scratch);
    CHECK(memcmp(only, wg.dx, ni * 4) == 0);
    float *wonly = malloc(nw * 4), *bonly = malloc((size_t)s.OC * 4);
    memcpy(wonly, g0w, nw * 4), memcpy(bonly, g0b, (size_t)s.OC * 4);
    lt_conv2d_backward(NULL, wonly, bonly, d, wg.out, x, w, s.B, s.C, s.H, s.W, s.OC, 3, 3, 1, s.pad, s.act, scratch);
    CHECK(memcmp(wonly, wg.dw, nw * 4) == 0 && memcmp(bonly, wg.db, (size_t)s.OC * 4) == 0);

    free(only), free(d), free(scratch), free(wonly), free(bonly);
    release(&wg), release(&again), release(&gm), release(&scalar);
    free(x), free(w), free(b), free(r), free(g0x), free(g0w), free(g0b);
    free(out), free(dx), free(dw), free(db);
}

static void test_whole_tiles(void) {
    check_shape((shape){2, 8, 10, 10, 8, 0, LT_ACT_NONE}); /* 8x8 out: 2x2 tiles */
    check_shape((shape){3, 16, 6, 6, 12, 1, LT_ACT_RELU}); /* 6x6 -> 6x6 with padding: partial tiles */
    check_shape((shape){3, 8, 38, 66, 9, 0, LT_ACT_RELU}); /* 16 tiles a row: every block whole (vector paths) */
}

static void test_partial_tiles(void) {
    check_shape((shape){2, 9, 13, 11, 10, 1, LT_ACT_RELU}); /* 13x11 out */
    check_shape((shape){1, 8, 5, 7, 8, 2, LT_ACT_NONE});    /* padding 2 */
    check_shape((shape){2, 8, 3, 3, 9, 0, LT_ACT_RELU});    /* a 1x1 output: one tile, 15 of 16 cut off */
    check_shape((shape){2, 8, 30, 67, 8, 0, LT_ACT_NONE});  /* 17 tiles a row, the last cut: whole and cut blocks */
}

/* The MNIST CNN's conv2 (32 -> 64, 26x26 -> 24x24) over several chunks. */
static void test_mnist_conv2(void) { check_shape((shape){40, 32, 26, 26, 64, 0, LT_ACT_RELU}); }

static void test_dispatch(void) {
    CHECK(lt_winograd_ok(32, 64, 3, 3, 1));
    CHECK(!lt_winograd_ok(1, 32, 3, 3, 1)); /* conv1: too few input channels for the transforms to pay */
    CHECK(!lt_winograd_ok(32, 4, 3, 3, 1));
    CHECK(!lt_winograd_ok(32, 64, 3, 3, 2));
    CHECK(!lt_winograd_ok(32, 64, 5, 5, 1));
    CHECK(!lt_winograd_ok(32, 64, 3, 1, 1));
    /* the workspace covers both algorithms, so the switch is safe between steps */
    size_t s = lt_conv2d_scratch_floats(128, 32, 26, 26, 64, 3, 3, 1, 0);
    CHECK(s >= lt_winograd_scratch_floats(128, 32, 26, 26, 64, 0));
}

int main(void) {
    RUN(test_dispatch);
    RUN(test_whole_tiles);
    RUN(test_partial_tiles);
    RUN(test_mnist_conv2);
    return check_done();
}
