/* The training-state entries of the CPU backend (lathe/device.h) against the
 * host loops they replaced, bit for bit: the optimizer update rules (scalar
 * forms of core/optim's former vector loops, same operations in the same
 * order), the trainer's gradient norm and clipping, the loss scaler's
 * overflow check and unscale, the anomaly watch's count, zero-grad. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lathe/device.h"
#include "lathe/nn.h"
#include "lathe/ops.h"
#include "lathe/optim.h"
#include "lathe/precision.h"

#define N 37 /* four full 8-float vectors and a tail */

static float urand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 65536.0f;
}

typedef struct bufs {
    float p[N], g[N], s[3][N];
} bufs;

static void fill(bufs *b, unsigned seed) {
    for (int i = 0; i < N; i++) {
        b->p[i] = urand(&seed) * 2 - 1;
        b->g[i] = urand(&seed) * 2 - 1;
        for (int k = 0; k < 3; k++) b->s[k][i] = urand(&seed) * 0.5f + (k == 1 ? 0.0f : 0.01f);
    }
}

static float lerp(float a, float b, float w) { return fabsf(w) < 0.5f ? a + w * (b - a) : b - (b - a) * (1.0f - w); }

/* the former loops, one element at a time */
static void ref_update(const lt_update *u, bufs *b) {
    for (int i = 0; i < N; i++) {
        float P = b->p[i], G = b->g[i];
        float *s0 = &b->s[0][i], *s1 = &b->s[1][i], *s2 = &b->s[2][i];
        switch (u->rule) {
        case LT_UPDATE_SGD: {
            lt_sgd_coef c = u->c.sgd;
            if (c.has_wd) G = G + c.wd * P;
            if (c.has_mom) {
                float B = c.first ? G : *s0 * c.mom + c.one_minus_damp * G;
                *s0 = B;
                G = c.nesterov ? G + c.mom * B : B;
            }
            b->p[i] = P + (-c.lr) * G;
            break;
        }
        case LT_UPDATE_ADAM: {
            lt_adam_coef c = u->c.adam;
            if (c.decoupled_wd) P = P * c.decay;
            if (c.coupled_wd) G = G + c.wd * P;
            float M = lerp(*s0, G, c.w1), V = *s1 * c.beta2 + c.c2 * G * G;
            *s0 = M, *s1 = V;
            if (c.amsgrad) V = *s2 = *s2 > V ? *s2 : V;
            float denom = sqrtf(V) / c.bc2_sqrt + c.eps;
            b->p[i] = P + c.neg_step * M / denom;
            break;
        }
        case LT_UPDATE_ADADELTA: {
            lt_adadelta_coef c = u->c.adadelta;
            if (c.has_wd) G = G + c.wd * P;
            float S = *s0 * c.rho + c.c * G * G, A = *s1;
            float delta = sqrtf(A + c.eps) / sqrtf(S + c.eps) * G;
            *s0 = S, *s1 = A * c.rho + c.c * delta * delta;
            b->p[i] = P + c.neg_lr * delta;
            break;
        }
        case LT_UPDATE_RMSPROP: {
            lt_rmsprop_coef c = u->c.rmsprop;
            if (c.has_wd) G = G + c.wd * P;
            float S = *s0 * c.alpha + c.c * G * G, avg;
            *s0 = S;
            if (c.centered) {
                float A = *s2 = lerp(*s2, G, c.w);
                avg = sqrtf(S + (-1.0f) * A * A) + c.eps;
            } else {
                avg = sqrtf(S) + c.eps;
            }
            if (c.has_mom) {
                *s1 = *s1 * c.mom + G / avg;
                b->p[i] = P + c.neg_lr * *s1;
            } else {
                b->p[i] = P + c.neg_lr * G / avg;
            }
            break;
        }
        case LT_UPDATE_ADAGRAD: {
            lt_adagrad_coef c = u->c.adagrad;
            if (c.has_wd) G = G + c.wd * P;
            float S = (c.first ? c.init : *s0) + 1.0f * G * G;
            *s0 = S;
            b->p[i] = P + c.neg_clr * G / (sqrtf(S) + c.eps);
            break;
        }
        }
    }
}

static void check_rule(const char *what, const lt_update *u) {
    bufs a, b;
    fill(&a, 7);
    fill(&b, 7);
    for (int step = 0; step < 3; step++) { /* state carried across steps */
        lt_update_tensor t = {.p = a.p, .g = a.g, .s = {a.s[0], a.s[1], a.s[2]}, .n = N};
        lt_dev_optim_update(NULL, u, 1, &t);
        ref_update(u, &b);
    }
    CHECK_MSG(memcmp(&a, &b, sizeof a) == 0, "%s differs from the host loop", what);
}

static void test_update_rules(void) {
    lt_update u = {.rule = LT_UPDATE_SGD};
    u.c.sgd = (lt_sgd_coef){.lr = 0.1f, .wd = 0.01f, .mom = 0.9f, .one_minus_damp = 0.8f, .has_wd = 1, .has_mom = 1};
    check_rule("sgd momentum", &u);
    u.c.sgd.nesterov = 1, u.c.sgd.first = 1;
    check_rule("sgd nesterov first", &u);
    u.c.sgd = (lt_sgd_coef){.lr = 0.05f};
    check_rule("sgd plain", &u);
    u.rule = LT_UPDATE_ADAM;
    u.c.adam = (lt_adam_coef){.wd = 0.01f,
                              .w1 = 0.1f,
                              .beta2 = 0.999f,
                              .c2 = 0.001f,
                              .bc2_sqrt = 0.0447f,
                              .eps = 1e-8f,
                              .neg_step = -0.01f,
                              .coupled_wd = 1,
                              .amsgrad = 1};
    check_rule("adam amsgrad", &u);
    u.c.adam.coupled_wd = 0, u.c.adam.decoupled_wd = 1, u.c.adam.decay = 0.999f, u.c.adam.amsgrad = 0;
    u.c.adam.w1 = 0.7f; /* the other branch of lerp */
    check_rule("adamw", &u);
    u.rule = LT_UPDATE_ADADELTA;
    u.c.adadelta = (lt_adadelta_coef){.neg_lr = -1.0f, .rho = 0.95f, .c = 0.05f, .eps = 1e-7f, .wd = 0.1f, .has_wd = 1};
    check_rule("adadelta", &u);
    u.rule = LT_UPDATE_RMSPROP;
    u.c.rmsprop = (lt_rmsprop_coef){.neg_lr = -0.01f,
                                    .alpha = 0.99f,
                                    .c = 0.01f,
                                    .w = 0.01f,
                                    .eps = 1e-8f,
                                    .mom = 0.5f,
                                    .has_mom = 1,
                                    .centered = 1};
    check_rule("rmsprop centered momentum", &u);
    u.c.rmsprop.has_mom = 0, u.c.rmsprop.centered = 0, u.c.rmsprop.has_wd = 1, u.c.rmsprop.wd = 0.01f;
    check_rule("rmsprop", &u);
    u.rule = LT_UPDATE_ADAGRAD;
    u.c.adagrad = (lt_adagrad_coef){.neg_clr = -0.01f, .eps = 1e-10f, .init = 0.1f, .first = 1};
    check_rule("adagrad first", &u);
    u.c.adagrad.first = 0, u.c.adagrad.has_wd = 1, u.c.adagrad.wd = 0.2f;
    check_rule("adagrad", &u);
}

/* one call over several tensors is the tensors one by one */
static void test_update_many(void) {
    bufs a[2], b[2];
    lt_update u = {.rule = LT_UPDATE_ADAM};
    u.c.adam = (lt_adam_coef){
        .w1 = 0.1f, .beta2 = 0.999f, .c2 = 0.001f, .bc2_sqrt = 0.0447f, .eps = 1e-8f, .neg_step = -0.01f};
    lt_update_tensor ts[2];
    for (int k = 0; k < 2; k++) {
        fill(&a[k], 11 + k);
        fill(&b[k], 11 + k);
        ts[k] = (lt_update_tensor){.p = a[k].p, .g = a[k].g, .s = {a[k].s[0], a[k].s[1], a[k].s[2]}, .n = N - k};
    }
    lt_dev_optim_update(NULL, &u, 2, ts);
    for (int k = 0; k < 2; k++) {
        lt_update_tensor t = {.p = b[k].p, .g = b[k].g, .s = {b[k].s[0], b[k].s[1], b[k].s[2]}, .n = N - k};
        lt_dev_optim_update(NULL, &u, 1, &t);
    }
    CHECK(memcmp(a, b, sizeof a) == 0);
}

/* an optimizer step is the backend's update with the kind's coefficients */
static void test_optim_step_through_backend(void) {
    bufs a, b;
    fill(&a, 3);
    fill(&b, 3);
    lt_param prm = {.name = "w", .data = a.p, .grad = a.g, .n = N};
    lt_err err = {0};
    lt_optim *o = lt_optim_create("adam", &prm, 1, &err);
    CHECK(o && lt_optim_backend(o) == lt_backend_cpu());
    if (!o) return;
    CHECK(lt_optim_step(o, &err) == LT_OK);
    memset(b.s, 0, sizeof b.s); /* fresh state */
    double bc2 = 1.0 - pow(0.999, 1.0);
    lt_update u = {.rule = LT_UPDATE_ADAM};
    u.c.adam = (lt_adam_coef){.wd = 0,
                              .decay = 1.0f,
                              .w1 = (float)(1.0 - 0.9),
                              .beta2 = 0.999f,
                              .c2 = (float)(1.0 - 0.999),
                              .bc2_sqrt = (float)sqrt(bc2),
                              .eps = 1e-8f,
                              .neg_step = (float)(-(1e-3 / (1.0 - 0.9)))};
    ref_update(&u, &b);
    CHECK(memcmp(a.p, b.p, sizeof a.p) == 0);
    const char *name;
    float *m;
    size_t n;
    CHECK(lt_optim_state_get(o, 0, &name, &m, &n) == LT_OK && n == N && memcmp(m, b.s[0], sizeof b.s[0]) == 0);
    lt_optim_zero_grad(o);
    for (int i = 0; i < N; i++) CHECK(a.g[i] == 0.0f);
    lt_optim_free(o);
    lt_param other = {.name = "v", .data = a.p, .grad = a.g, .n = N, .device = LT_DEV_CUDA};
    CHECK(lt_optim_create("sgd", &other, 1, &err) == NULL && err.code == LT_EUNSUPPORTED);
}

static void fill_grads(float *g, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) g[i] = (urand(&seed) - 0.5f) * 3.0f;
}

static void test_norm_and_clipping(void) {
    enum { M = 1001 };
    static float a[M], b[M];
    fill_grads(a, M, 5);
    memcpy(b, a, sizeof a);
    /* trainer.c grad_norm, as it was */
    double s = 0;
    for (size_t i = 0; i < M; i++) s += (double)b[i] * b[i];
    double got = lt_dev_sum_squares(NULL, a, M);
    CHECK(memcmp(&got, &s, sizeof s) == 0);
    CHECK(lt_dev_sum_squares(NULL, a, 0) == 0.0);
    /* clip by norm: gr[i] *= c */
    float c = (float)(0.5 / (sqrt(s) + 1e-6));
    lt_dev_scale(NULL, a, M, c);
    for (size_t i = 0; i < M; i++) b[i] *= c;
    CHECK(memcmp(a, b, sizeof a) == 0);
    /* clip by value, with a NaN and infinities */
    a[3] = b[3] = NAN;
    a[4] = b[4] = INFINITY;
    a[5] = b[5] = -INFINITY;
    float fv = 0.1f;
    lt_dev_clamp(NULL, a, M, fv);
    for (size_t i = 0; i < M; i++) b[i] = b[i] > fv ? fv : b[i] < -fv ? -fv : b[i];
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(isnan(a[3]) && a[4] == fv && a[5] == -fv);
}

static void test_scaler_and_anomaly(void) {
    enum { M = 70000 }; /* past the count's parallel threshold */
    float *a = malloc(M * sizeof *a), *b = malloc(M * sizeof *b);
    if (!a || !b) {
        CHECK(0);
        free(a);
        free(b);
        return;
    }
    fill_grads(a, M, 9);
    memcpy(b, a, M * sizeof *a);
    lt_grad_scaler s;
    lt_grad_scaler_init(&s);
    CHECK(lt_dev_any_above(NULL, a, M, LT_FP16_MAX) == 0);
    CHECK(lt_grad_scaler_unscale(&s, NULL, a, M) == 1);
    float inv = (float)(1.0 / 65536.0);
    for (size_t i = 0; i < M; i++) b[i] *= inv;
    CHECK(memcmp(a, b, M * sizeof *a) == 0 && s.good_steps == 1);
    a[M - 1] = 70000.0f; /* past fp16's range: skipped, backed off, untouched */
    memcpy(b, a, M * sizeof *a);
    CHECK(lt_grad_scaler_unscale(&s, NULL, a, M) == 0);
    CHECK(memcmp(a, b, M * sizeof *a) == 0 && s.scale == 32768.0 && s.skipped == 1);
    a[M - 1] = NAN;
    CHECK(lt_dev_any_above(NULL, a, M, LT_FP16_MAX) == 1);
    /* the anomaly watch's count */
    a[0] = INFINITY, a[100] = -INFINITY, a[M / 2] = NAN;
    size_t want = 0;
    for (size_t i = 0; i < M; i++) want += !isfinite(a[i]);
    CHECK(want == 4 && lt_dev_count_nonfinite(NULL, a, M) == want);
    CHECK(lt_dev_count_nonfinite(NULL, a + 1, 50) == 0);
    free(a);
    free(b);
}

/* lt_model_zero_grad: every gradient float +0, the parameters untouched */
static void test_model_zero_grad(void) {
    lt_model m;
    lt_model_init(&m);
    lt_rng rng;
    lt_rng_seed(&rng, 3);
    lt_err err = {0};
    CHECK(lt_model_linear(&m, "fc", 5, 4, 0, &err) == LT_OK && lt_model_finalize(&m, &rng, &err) == LT_OK);
    float *gr = m.mem + m.nparam_floats;
    for (size_t i = 0; i < m.nparam_floats; i++) gr[i] = -2.0f;
    float p0 = m.mem[0];
    lt_model_zero_grad(&m);
    for (size_t i = 0; i < m.nparam_floats; i++) CHECK(memcmp(&gr[i], &(float){0.0f}, 4) == 0);
    CHECK(m.mem[0] == p0);
    lt_model_free(&m);
}

int main(void) {
    RUN(test_update_rules);
    RUN(test_update_many);
    RUN(test_optim_step_through_backend);
    RUN(test_norm_and_clipping);
    RUN(test_scaler_and_anomaly);
    RUN(test_model_zero_grad);
    return check_done();
}
