/* test_kernels_elem.c: the element-wise, softmax, dropout, batch-norm and loss
 * kernels of core/ops/cpu/.
 *
 * Gradients: every backward is checked against central finite differences of
 * L = sum_i g_i y_i (g a random upstream gradient) for several shapes. The
 * gradient buffers start at random values, the analytic gradient is read as
 * (after - before), and a second backward call must add the same amount again,
 * so a kernel that overwrites instead of accumulating fails. */
#include <stdlib.h>

#include "check.h"
#include "ops/kernels.h"

#define MAXIN 3

/* One gradient check: inputs x[0..nin), output y [ny]; fwd fills y from x,
 * bwd accumulates into dx using g and the state left by fwd. */
typedef struct gcase {
    int nin;
    float *x[MAXIN], *dx[MAXIN];
    size_t nx[MAXIN];
    float *y, *g;
    size_t ny;
    void (*fwd)(struct gcase *c);
    void (*bwd)(struct gcase *c);
    /* op parameters and state */
    int R, C, B, HW;
    float alpha, p;
    int32_t *labels;
    float *aux, *aux2, *aux3, *aux4; /* probs, mask, save_mean/invstd, running stats */
    uint64_t seed;
} gcase;

static lt_rng trng;

static float urand(float lo, float hi) { return lo + (hi - lo) * lt_rng_uniform(&trng); }

static float *rand_buf(size_t n, float lo, float hi) {
    float *a = malloc((n ? n : 1) * sizeof *a);
    for (size_t i = 0; i < n; i++) a[i] = urand(lo, hi);
    return a;
}

/* values with |v| >= gap, so kinks at 0 (relu, elu) stay away from the stencil */
static float *rand_away0(size_t n, float lo, float hi, float gap) {
    float *a = rand_buf(n, lo, hi);
    for (size_t i = 0; i < n; i++)
        if (fabsf(a[i]) < gap) a[i] = a[i] < 0 ? -gap : gap;
    return a;
}

static double weighted(const gcase *c) {
    double s = 0.0;
    for (size_t i = 0; i < c->ny; i++) s += (double)c->g[i] * c->y[i];
    return s;
}

/* Central differences with step h; |analytic - numeric| <= tol * max(1, max|numeric|). */
static void gradcheck(gcase *c, float h, double tol, const char *what) {
    double *num[MAXIN];
    for (int k = 0; k < c->nin; k++) {
        num[k] = malloc((c->nx[k] ? c->nx[k] : 1) * sizeof(double));
        for (size_t i = 0; i < c->nx[k]; i++) {
            float keep = c->x[k][i];
            c->x[k][i] = keep + h;
            c->fwd(c);
            double lp = weighted(c);
            c->x[k][i] = keep - h;
            c->fwd(c);
            double lm = weighted(c);
            c->x[k][i] = keep;
            num[k][i] = (lp - lm) / (2.0 * (double)h);
        }
    }
    c->fwd(c); /* state for backward at the unperturbed point */
    float *before[MAXIN];
    for (int k = 0; k < c->nin; k++) {
        c->dx[k] = rand_buf(c->nx[k], -1.0f, 1.0f);
        before[k] = malloc((c->nx[k] ? c->nx[k] : 1) * sizeof(float));
        memcpy(before[k], c->dx[k], c->nx[k] * sizeof(float));
    }
    c->bwd(c);
    for (int k = 0; k < c->nin; k++) {
        double scale = 1.0, worst = 0.0;
        size_t at = 0;
        for (size_t i = 0; i < c->nx[k]; i++) scale = fmax(scale, fabs(num[k][i]));
        for (size_t i = 0; i < c->nx[k]; i++) {
            double e = fabs(((double)c->dx[k][i] - before[k][i]) - num[k][i]);
            if (e > worst) worst = e, at = i;
        }
        CHECK_MSG(worst <= tol * scale, "%s input %d: |analytic - numeric| = %g at %zu (scale %g)", what, k, worst, at,
                  scale);
    }
    /* a second backward adds the same gradient again */
    float *once[MAXIN];
    for (int k = 0; k < c->nin; k++) {
        once[k] = malloc((c->nx[k] ? c->nx[k] : 1) * sizeof(float));
        memcpy(once[k], c->dx[k], c->nx[k] * sizeof(float));
    }
    c->bwd(c);
    for (int k = 0; k < c->nin; k++) {
        double worst = 0.0;
        for (size_t i = 0; i < c->nx[k]; i++) {
            double want = 2.0 * once[k][i] - before[k][i];
            worst = fmax(worst, fabs(c->dx[k][i] - want) / fmax(1.0, fabs(want)));
        }
        CHECK_MSG(worst <= 1e-5, "%s input %d: backward does not accumulate (err %g)", what, k, worst);
        free(num[k]);
        free(before[k]);
        free(once[k]);
        free(c->dx[k]);
    }
}

static void free_case(gcase *c) {
    for (int k = 0; k < c->nin; k++) free(c->x[k]);
    free(c->y);
    free(c->g);
    free(c->aux);
    free(c->aux2);
    free(c->aux3);
    free(c->aux4);
    free(c->labels);
}

/* ---- element-wise activations ---- */
enum { A_RELU, A_TANH, A_SIGMOID, A_GELU, A_ELU };
static int act_kind;

static void act_fwd(gcase *c) {
    size_t n = c->nx[0];
    switch (act_kind) {
    case A_RELU: lt_relu_forward(c->y, c->x[0], n); break;
    case A_TANH: lt_tanh_forward(c->y, c->x[0], n); break;
    case A_SIGMOID: lt_sigmoid_forward(c->y, c->x[0], n); break;
    case A_GELU: lt_gelu_forward(c->y, c->x[0], n); break;
    default: lt_elu_forward(c->y, c->x[0], n, c->alpha); break;
    }
}

static void act_bwd(gcase *c) {
    size_t n = c->nx[0];
    switch (act_kind) {
    case A_RELU: lt_relu_backward(c->dx[0], c->g, c->x[0], c->y, n); break;
    case A_TANH: lt_tanh_backward(c->dx[0], c->g, c->x[0], c->y, n); break;
    case A_SIGMOID: lt_sigmoid_backward(c->dx[0], c->g, c->x[0], c->y, n); break;
    case A_GELU: lt_gelu_backward(c->dx[0], c->g, c->x[0], c->y, n); break;
    default: lt_elu_backward(c->dx[0], c->g, c->x[0], c->y, n, c->alpha); break;
    }
}

static void check_act(int kind, const char *name, float alpha) {
    static const size_t sizes[] = {1, 7, 16, 37, 100};
    act_kind = kind;
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        gcase c = {0};
        size_t n = sizes[s];
        c.nin = 1;
        c.nx[0] = c.ny = n;
        c.x[0] = rand_away0(n, -4.0f, 4.0f, 0.05f);
        c.y = rand_buf(n, 0, 0);
        c.g = rand_buf(n, -1.0f, 1.0f);
        c.alpha = alpha;
        c.fwd = act_fwd;
        c.bwd = act_bwd;
        gradcheck(&c, 2e-3f, 2e-3, name);
        free_case(&c);
    }
}

static void test_relu_grad(void) { check_act(A_RELU, "relu", 0); }
static void test_tanh_grad(void) { check_act(A_TANH, "tanh", 0); }
static void test_sigmoid_grad(void) { check_act(A_SIGMOID, "sigmoid", 0); }
static void test_gelu_grad(void) { check_act(A_GELU, "gelu", 0); }
static void test_elu_grad(void) {
    check_act(A_ELU, "elu(1)", 1.0f);
    check_act(A_ELU, "elu(0.3)", 0.3f);
}

/* forward values against double-precision libm, over a wide range incl. tails */
static void test_act_values(void) {
    enum { N = 4001 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    for (int i = 0; i < N; i++) x[i] = -20.0f + 40.0f * (float)i / (N - 1);
    double worst[5] = {0};
    lt_tanh_forward(y, x, N);
    for (int i = 0; i < N; i++) worst[0] = fmax(worst[0], fabs(y[i] - tanh(x[i])));
    lt_sigmoid_forward(y, x, N);
    for (int i = 0; i < N; i++)
        worst[1] = fmax(worst[1], fabs(y[i] - 1.0 / (1.0 + exp(-(double)x[i]))) / (1.0 / (1.0 + exp(-(double)x[i]))));
    lt_gelu_forward(y, x, N);
    for (int i = 0; i < N; i++) worst[2] = fmax(worst[2], fabs(y[i] - 0.5 * x[i] * erfc(-x[i] / sqrt(2.0))));
    lt_elu_forward(y, x, N, 1.5f);
    for (int i = 0; i < N; i++) worst[3] = fmax(worst[3], fabs(y[i] - (x[i] > 0 ? x[i] : 1.5 * expm1((double)x[i]))));
    lt_relu_forward(y, x, N);
    for (int i = 0; i < N; i++) worst[4] = fmax(worst[4], fabs(y[i] - (x[i] > 0 ? x[i] : 0.0)));
    CHECK_MSG(worst[0] < 3e-7, "tanh abs err %g", worst[0]);
    CHECK_MSG(worst[1] < 1e-6, "sigmoid rel err %g", worst[1]);
    CHECK_MSG(worst[2] < 3e-6, "gelu abs err %g", worst[2]);
    CHECK_MSG(worst[3] < 5e-7, "elu abs err %g", worst[3]);
    CHECK(worst[4] == 0.0);
    /* small arguments keep relative accuracy (no cancellation) */
    float tiny[3] = {1e-6f, -1e-6f, 3e-4f}, ty[3];
    lt_tanh_forward(ty, tiny, 3);
    for (int i = 0; i < 3; i++) CHECK_NEAR(ty[i] / tanh(tiny[i]), 1.0, 1e-6);
    lt_elu_forward(ty, tiny, 3, 1.0f);
    CHECK_NEAR(ty[1] / expm1(-1e-6), 1.0, 1e-6);
    /* extremes: saturation and no overflow to NaN */
    float ex[4] = {-1000.0f, 1000.0f, -90.0f, 90.0f}, ey[4];
    lt_sigmoid_forward(ey, ex, 4);
    CHECK(ey[0] == 0.0f && ey[1] == 1.0f && ey[2] >= 0.0f && ey[3] == 1.0f);
    lt_tanh_forward(ey, ex, 4);
    CHECK(ey[0] == -1.0f && ey[1] == 1.0f);
    lt_gelu_forward(ey, ex, 4);
    CHECK(ey[0] == 0.0f && ey[1] == 1000.0f);
    /* NaN propagates (a diverged run must show NaN, not a made-up number) */
    enum { NN = 40 }; /* long enough for the vectorised loop bodies */
    float nx[NN], ny[NN];
    for (int i = 0; i < NN; i++) nx[i] = (i % 2) ? NAN : -NAN;
    int nonnan = 0;
    lt_relu_forward(ny, nx, NN);
    for (int i = 0; i < NN; i++) nonnan += !isnan(ny[i]);
    lt_tanh_forward(ny, nx, NN);
    for (int i = 0; i < NN; i++) nonnan += !isnan(ny[i]);
    lt_sigmoid_forward(ny, nx, NN);
    for (int i = 0; i < NN; i++) nonnan += !isnan(ny[i]);
    lt_gelu_forward(ny, nx, NN);
    for (int i = 0; i < NN; i++) nonnan += !isnan(ny[i]);
    lt_elu_forward(ny, nx, NN, 1.0f);
    for (int i = 0; i < NN; i++) nonnan += !isnan(ny[i]);
    CHECK_MSG(nonnan == 0, "%d outputs of NaN inputs are not NaN", nonnan);
    float sx[3] = {1.0f, NAN, 0.0f}, sy[3];
    lt_softmax_forward(sy, sx, 1, 3);
    CHECK(isnan(sy[1]));
    lt_log_softmax_forward(sy, sx, 1, 3);
    CHECK(isnan(sy[1]));
    free(x);
    free(y);
}

/* ---- softmax / log-softmax ---- */
static int sm_log;
static void sm_fwd(gcase *c) {
    if (sm_log)
        lt_log_softmax_forward(c->y, c->x[0], c->R, c->C);
    else
        lt_softmax_forward(c->y, c->x[0], c->R, c->C);
}
static void sm_bwd(gcase *c) {
    if (sm_log)
        lt_log_softmax_backward(c->dx[0], c->g, c->y, c->R, c->C);
    else
        lt_softmax_backward(c->dx[0], c->g, c->y, c->R, c->C);
}

static void test_softmax_grad(void) {
    static const int shapes[][2] = {{1, 1}, {3, 5}, {2, 17}, {4, 40}};
    for (int lg = 0; lg < 2; lg++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            gcase c = {0};
            sm_log = lg;
            c.R = shapes[s][0];
            c.C = shapes[s][1];
            size_t n = (size_t)c.R * c.C;
            c.nin = 1;
            c.nx[0] = c.ny = n;
            c.x[0] = rand_buf(n, -3.0f, 3.0f);
            c.y = rand_buf(n, 0, 0);
            c.g = rand_buf(n, -1.0f, 1.0f);
            c.fwd = sm_fwd;
            c.bwd = sm_bwd;
            gradcheck(&c, 2e-3f, 2e-3, lg ? "log_softmax" : "softmax");
            free_case(&c);
        }
}

/* rows sum to 1, no overflow for huge logits, in-place works */
static void test_softmax_values(void) {
    float x[2 * 40], y[2 * 40], z[2 * 40];
    for (int i = 0; i < 80; i++) x[i] = urand(-5.0f, 5.0f) + (i < 40 ? 0.0f : 1000.0f);
    lt_softmax_forward(y, x, 2, 40);
    lt_log_softmax_forward(z, x, 2, 40);
    for (int r = 0; r < 2; r++) {
        double s = 0.0, m = -INFINITY;
        for (int j = 0; j < 40; j++) m = fmax(m, x[r * 40 + j]);
        for (int j = 0; j < 40; j++) s += exp((double)x[r * 40 + j] - m);
        double sum = 0.0;
        for (int j = 0; j < 40; j++) {
            double want = exp((double)x[r * 40 + j] - m) / s;
            sum += y[r * 40 + j];
            CHECK_NEAR(y[r * 40 + j], want, 1e-6);
            CHECK_NEAR(z[r * 40 + j], (double)x[r * 40 + j] - m - log(s), 2e-5 * fmax(1.0, fabs(m)));
        }
        CHECK_NEAR(sum, 1.0, 1e-5);
    }
    memcpy(z, x, sizeof x);
    lt_log_softmax_forward(z, z, 2, 40);
    float w[80];
    lt_log_softmax_forward(w, x, 2, 40);
    CHECK(memcmp(z, w, sizeof z) == 0);
}

/* ---- dropout ---- */
static void do_fwd(gcase *c) {
    lt_rng r;
    lt_rng_seed(&r, c->seed); /* the same mask at every evaluation */
    lt_dropout_forward(c->y, c->aux, c->x[0], c->nx[0], c->p, &r);
}
static void do_bwd(gcase *c) { lt_dropout_backward(c->dx[0], c->g, c->aux, c->nx[0]); }

static void test_dropout_grad(void) {
    static const size_t sizes[] = {1, 5, 64, 385};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        gcase c = {0};
        size_t n = sizes[s];
        c.nin = 1;
        c.nx[0] = c.ny = n;
        c.x[0] = rand_buf(n, -2.0f, 2.0f);
        c.y = rand_buf(n, 0, 0);
        c.g = rand_buf(n, -1.0f, 1.0f);
        c.aux = rand_buf(n, 0, 0);
        c.p = 0.3f;
        c.seed = 77 + s;
        c.fwd = do_fwd;
        c.bwd = do_bwd;
        gradcheck(&c, 2e-3f, 2e-3, "dropout");
        free_case(&c);
    }
}

static void test_dropout_stats(void) {
    enum { N = 200003 };
    float *x = rand_buf(N, 0.5f, 2.0f), *y = malloc(N * sizeof *y), *m = malloc(N * sizeof *m);
    float *y2 = malloc(N * sizeof *y2), *m2 = malloc(N * sizeof *m2);
    static const float ps[] = {0.1f, 0.5f, 0.9f};
    for (size_t t = 0; t < 3; t++) {
        float p = ps[t], scale = 1.0f / (1.0f - p);
        lt_rng r;
        lt_rng_seed(&r, 1234);
        lt_dropout_forward(y, m, x, N, p, &r);
        size_t kept = 0, bad = 0;
        for (size_t i = 0; i < N; i++) {
            if (m[i] != 0.0f) kept++;
            if (m[i] != 0.0f && m[i] != scale) bad++;
            if (y[i] != x[i] * m[i]) bad++;
        }
        double frac = (double)kept / N, sd = sqrt(p * (1.0 - p) / N);
        CHECK_MSG(fabs(frac - (1.0 - p)) < 5.0 * sd, "p=%g: kept fraction %g", (double)p, frac);
        CHECK_MSG(bad == 0, "p=%g: %zu masks are neither 0 nor 1/(1-p)", (double)p, bad);
        /* the same seed gives the same mask; another seed a different one */
        lt_rng_seed(&r, 1234);
        lt_dropout_forward(y2, m2, x, N, p, &r);
        CHECK(memcmp(m, m2, N * sizeof *m) == 0);
        lt_rng_seed(&r, 1235);
        lt_dropout_forward(y2, m2, x, N, p, &r);
        CHECK(memcmp(m, m2, N * sizeof *m) != 0);
    }
    /* the documented scheme exactly: three 21-bit fields per draw, dropped when
     * the field is below round(p * 2^21) */
    {
        enum { M = 1000 };
        lt_rng r1, r2;
        lt_rng_seed(&r1, 42);
        lt_rng_seed(&r2, 42);
        lt_dropout_forward(y, m, x, M, 0.3f, &r1);
        uint32_t thr = (uint32_t)(0.3 * 2097152.0 + 0.5);
        size_t diff = 0;
        uint64_t u = 0;
        for (size_t i = 0; i < M; i++) {
            if (i % 3 == 0) u = lt_rng_u64(&r2);
            uint32_t f = (uint32_t)(u >> (21 * (i % 3))) & 0x1FFFFFu;
            diff += m[i] != (f < thr ? 0.0f : 1.0f / (1.0f - 0.3f));
        }
        CHECK_MSG(diff == 0, "%zu masks differ from the 21-bit scheme", diff);
        CHECK(memcmp(&r1, &r2, sizeof r1) == 0); /* ceil(M/3) draws consumed */
    }
    /* consecutive draws from one rng differ (the state advances) */
    lt_rng r;
    lt_rng_seed(&r, 9);
    lt_dropout_forward(y, m, x, 1000, 0.5f, &r);
    lt_dropout_forward(y2, m2, x, 1000, 0.5f, &r);
    CHECK(memcmp(m, m2, 1000 * sizeof *m) != 0);
    /* neighbouring elements are not correlated (3 elements share one draw) */
    double both = 0;
    lt_rng_seed(&r, 5);
    lt_dropout_forward(y, m, x, N, 0.5f, &r);
    for (size_t i = 0; i + 1 < N; i++) both += (m[i] != 0.0f) && (m[i + 1] != 0.0f);
    CHECK_MSG(fabs(both / (N - 1) - 0.25) < 0.01, "P(both kept) = %g", both / (N - 1));
    /* p = 1 drops everything without NaN */
    lt_dropout_forward(y, m, x, 100, 1.0f, &r);
    for (int i = 0; i < 100; i++) CHECK(y[i] == 0.0f && m[i] == 0.0f);
    free(x);
    free(y);
    free(m);
    free(y2);
    free(m2);
}

/* ---- batch-norm (training mode) ---- */
static void bn_fwd(gcase *c) {
    /* running stats are side effects here; aux4 holds scratch copies */
    lt_batchnorm2d_forward(c->y, c->aux3, c->aux3 + c->C, c->x[0], c->x[1], c->x[2], c->aux4, c->aux4 + c->C, c->B,
                           c->C, c->HW, 0.1f, 1e-5f, 1);
}
static void bn_bwd(gcase *c) {
    lt_batchnorm2d_backward(c->dx[0], c->dx[1], c->dx[2], c->g, c->x[0], c->x[1], c->aux3, c->aux3 + c->C, c->B, c->C,
                            c->HW);
}

static void test_batchnorm_grad(void) {
    static const int shapes[][3] = {{2, 3, 5}, {4, 2, 1}, {3, 2, 17}, {2, 1, 40}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        gcase c = {0};
        c.B = shapes[s][0];
        c.C = shapes[s][1];
        c.HW = shapes[s][2];
        size_t n = (size_t)c.B * c.C * c.HW;
        c.nin = 3;
        c.nx[0] = c.ny = n;
        c.nx[1] = c.nx[2] = (size_t)c.C;
        c.x[0] = rand_buf(n, -2.0f, 3.0f);
        c.x[1] = rand_buf(c.C, 0.5f, 1.5f);
        c.x[2] = rand_buf(c.C, -0.5f, 0.5f);
        c.y = rand_buf(n, 0, 0);
        c.g = rand_buf(n, -1.0f, 1.0f);
        c.aux3 = rand_buf(2 * (size_t)c.C, 0, 0);
        c.aux4 = rand_buf(2 * (size_t)c.C, 0.5f, 1.0f);
        c.fwd = bn_fwd;
        c.bwd = bn_bwd;
        gradcheck(&c, 2e-3f, 3e-3, "batchnorm2d");
        free_case(&c);
    }
}

/* running statistics after a few steps against a double reference; then eval
 * mode normalises with them */
static void test_batchnorm_running(void) {
    enum { B = 4, C = 3, HW = 10, N = B * C * HW };
    const float mom = 0.1f, eps = 1e-5f;
    float rm[C], rv[C], x[N], y[N], sm[C], si[C], gamma[C], beta[C];
    double wm[C], wv[C];
    for (int c = 0; c < C; c++) {
        rm[c] = 0.0f, rv[c] = 1.0f, wm[c] = 0.0, wv[c] = 1.0;
        gamma[c] = urand(0.5f, 2.0f), beta[c] = urand(-1.0f, 1.0f);
    }
    for (int step = 0; step < 4; step++) {
        for (int i = 0; i < N; i++) x[i] = urand(-1.0f, 1.0f) * (float)(step + 1) + 2.0f;
        lt_batchnorm2d_forward(y, sm, si, x, gamma, beta, rm, rv, B, C, HW, mom, eps, 1);
        for (int c = 0; c < C; c++) {
            double s = 0, ss = 0;
            for (int b = 0; b < B; b++)
                for (int i = 0; i < HW; i++) s += x[(b * C + c) * HW + i];
            double mean = s / (B * HW);
            for (int b = 0; b < B; b++)
                for (int i = 0; i < HW; i++) ss += pow(x[(b * C + c) * HW + i] - mean, 2);
            wm[c] = (1 - mom) * wm[c] + mom * mean;
            wv[c] = (1 - mom) * wv[c] + mom * ss / (B * HW - 1);
            CHECK_NEAR(sm[c], mean, 1e-6);
            CHECK_NEAR(si[c], 1.0 / sqrt(ss / (B * HW) + eps), 1e-5);
            /* training output is normalised with the batch (biased) statistics */
            for (int b = 0; b < B; b++)
                for (int i = 0; i < HW; i++) {
                    int k = (b * C + c) * HW + i;
                    CHECK_NEAR(y[k], (x[k] - mean) / sqrt(ss / (B * HW) + eps) * gamma[c] + beta[c], 1e-5);
                }
        }
    }
    for (int c = 0; c < C; c++) {
        CHECK_NEAR(rm[c], wm[c], 1e-5);
        CHECK_NEAR(rv[c], wv[c], 1e-5);
    }
    float rm2[C], rv2[C];
    memcpy(rm2, rm, sizeof rm);
    memcpy(rv2, rv, sizeof rv);
    lt_batchnorm2d_forward(y, NULL, NULL, x, gamma, beta, rm, rv, B, C, HW, mom, eps, 0);
    CHECK(memcmp(rm, rm2, sizeof rm) == 0 && memcmp(rv, rv2, sizeof rv) == 0); /* eval leaves them */
    for (int k = 0; k < N; k++) {
        int c = (k / HW) % C;
        CHECK_NEAR(y[k], (x[k] - wm[c]) / sqrt(wv[c] + eps) * gamma[c] + beta[c], 1e-5);
    }
}

/* ---- losses: y is the scalar loss, g its upstream gradient ---- */
static void ce_fwd(gcase *c) { c->y[0] = lt_cross_entropy_forward(c->aux, c->x[0], c->labels, c->B, c->C); }
static void ce_bwd(gcase *c) { lt_cross_entropy_backward(c->dx[0], c->g[0], c->aux, c->labels, c->B, c->C); }
static void nll_fwd(gcase *c) { c->y[0] = lt_nll_forward(c->x[0], c->labels, c->B, c->C); }
static void nll_bwd(gcase *c) { lt_nll_backward(c->dx[0], c->g[0], c->labels, c->B, c->C); }
static void mse_fwd(gcase *c) { c->y[0] = lt_mse_forward(c->x[0], c->x[1], c->nx[0]); }
static void mse_bwd(gcase *c) { lt_mse_backward(c->dx[0], c->dx[1], c->g[0], c->x[0], c->x[1], c->nx[0]); }

static void test_loss_grad(void) {
    static const int shapes[][2] = {{1, 3}, {5, 7}, {4, 40}, {6, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int kind = 0; kind < 3; kind++) {
            gcase c = {0};
            c.B = shapes[s][0];
            c.C = shapes[s][1];
            size_t n = (size_t)c.B * c.C;
            c.nin = kind == 2 ? 2 : 1;
            c.nx[0] = c.nx[1] = n;
            c.ny = 1;
            c.x[0] = rand_buf(n, -3.0f, 3.0f);
            if (kind == 2) c.x[1] = rand_buf(n, -3.0f, 3.0f);
            c.y = rand_buf(1, 0, 0);
            c.g = rand_buf(1, 0.5f, 2.0f);
            c.aux = rand_buf(n, 0, 0);
            c.labels = malloc(c.B * sizeof *c.labels);
            for (int b = 0; b < c.B; b++) c.labels[b] = (int32_t)lt_rng_below(&trng, (uint64_t)c.C);
            c.fwd = kind == 0 ? ce_fwd : kind == 1 ? nll_fwd : mse_fwd;
            c.bwd = kind == 0 ? ce_bwd : kind == 1 ? nll_bwd : mse_bwd;
            gradcheck(&c, 2e-3f, 2e-3, kind == 0 ? "cross_entropy" : kind == 1 ? "nll" : "mse");
            free_case(&c);
        }
}

static void test_loss_values(void) {
    /* cross-entropy stays finite and exact for a hopeless label: 0 - (-200) */
    float logits[2 * 3] = {0.0f, -200.0f, 0.0f, 1.0f, 2.0f, 3.0f}, probs[6];
    int32_t lab[2] = {1, 2};
    float l = lt_cross_entropy_forward(probs, logits, lab, 2, 3);
    double row1 = log(exp(1.0) + exp(2.0) + exp(3.0)) - 3.0;
    CHECK_NEAR(l, ((200.0 + log(2.0)) + row1) / 2.0, 1e-6);
    CHECK_NEAR(probs[0], 0.5, 1e-7);
    CHECK_NEAR(probs[3] + probs[4] + probs[5], 1.0, 1e-6);
    /* cross-entropy == nll(log_softmax) */
    float lsm[6];
    lt_log_softmax_forward(lsm, logits, 2, 3);
    CHECK_NEAR(lt_nll_forward(lsm, lab, 2, 3), l, 1e-5);
    /* mse over a length that spans several summation blocks */
    enum { N = 10007 };
    float *a = rand_buf(N, -1.0f, 1.0f), *b = rand_buf(N, -1.0f, 1.0f);
    double s = 0;
    for (int i = 0; i < N; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    CHECK_NEAR(lt_mse_forward(a, b, N), s / N, 1e-6);
    free(a);
    free(b);
}

/* NULL gradient pointers are skipped */
static void test_null_grads(void) {
    float x[4] = {1, -1, 2, -2}, y[4] = {0}, g[4] = {1, 1, 1, 1}, m[4] = {0};
    int32_t lab[2] = {0, 1};
    lt_relu_backward(NULL, g, x, y, 4);
    lt_tanh_backward(NULL, g, x, y, 4);
    lt_sigmoid_backward(NULL, g, x, y, 4);
    lt_gelu_backward(NULL, g, x, y, 4);
    lt_elu_backward(NULL, g, x, y, 4, 1.0f);
    lt_softmax_backward(NULL, g, x, 2, 2);
    lt_log_softmax_backward(NULL, g, x, 2, 2);
    lt_dropout_backward(NULL, g, m, 4);
    lt_cross_entropy_backward(NULL, 1.0f, x, lab, 2, 2);
    lt_nll_backward(NULL, 1.0f, lab, 2, 2);
    float dt[4] = {0};
    lt_mse_backward(NULL, dt, 1.0f, x, g, 4);
    CHECK_NEAR(dt[1], -2.0 * (-1.0 - 1.0) / 4.0, 1e-7);
    float mean[1] = {0}, inv[1] = {1}, db[1] = {0};
    lt_batchnorm2d_backward(NULL, NULL, db, g, x, NULL, mean, inv, 4, 1, 1);
    CHECK(db[0] == 4.0f);
}

int main(void) {
    lt_rng_seed(&trng, 20240601);
    RUN(test_relu_grad);
    RUN(test_tanh_grad);
    RUN(test_sigmoid_grad);
    RUN(test_gelu_grad);
    RUN(test_elu_grad);
    RUN(test_act_values);
    RUN(test_softmax_grad);
    RUN(test_softmax_values);
    RUN(test_dropout_grad);
    RUN(test_dropout_stats);
    RUN(test_batchnorm_grad);
    RUN(test_batchnorm_running);
    RUN(test_loss_grad);
    RUN(test_loss_values);
    RUN(test_null_grads);
    return check_done();
}
