/* The CUDA backend's base against the CPU backend: memory and copies (alloc,
 * set, get, copy, fill, the async copies on both streams), the training-state
 * ops (sum_squares within 1e-12 relative, the others bitwise) and the five
 * optimizer rules (a few steps over tensors of 1, 7 and 1000003 floats and
 * enough small ones to need two fused launches; bitwise), the kept failure
 * reported at the next sync. Without a usable GPU: one line, "cuda: skipped:
 * <reason>", and success.
 *
 * "Bitwise" treats any two NaNs as equal: the GPU writes its canonical NaN
 * where the CPU propagates an operand's payload. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lathe/device.h"
#include "lathe/ops.h"
#ifdef LATHE_HAVE_CUDA
#include "ops/cuda/cuda_backend.h"
#endif

static const lt_backend *cu;
static const size_t sizes[] = {1, 7, 1000003};
#define NSIZES (sizeof sizes / sizeof *sizes)

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(void) { /* [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

static float *host_random(size_t n, float scale) {
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = scale * frand();
    return x;
}

static float *dev_from(const float *h, size_t n) {
    lt_err err = {0};
    float *d = lt_dev_alloc(cu, n * sizeof(float), LT_MEM_STEP, &err);
    CHECK_MSG(d != NULL, "%s", err.msg);
    if (d && h) CHECK_MSG(lt_dev_set(cu, d, h, n * sizeof(float), &err) == LT_OK, "%s", err.msg);
    return d;
}

static float *dev_read(const float *d, size_t n) {
    lt_err err = {0};
    float *h = malloc(n * sizeof *h);
    CHECK_MSG(lt_dev_get(cu, h, d, n * sizeof(float), &err) == LT_OK, "%s", err.msg);
    return h;
}

/* 1 when a and b hold the same bits (any NaN equals any NaN) */
static int same_bits(const float *a, const float *b, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) && isnan(b[i])) continue;
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) {
            fprintf(stderr, "%s: element %zu of %zu: cuda %.9g, cpu %.9g\n", what, i, n, a[i], b[i]);
            return 0;
        }
    }
    return 1;
}

/* ---- the context ---- */
static void test_context(void) {
    lt_err err = {0};
    CHECK(lt_backend_cuda(&err) == cu);
    CHECK(lt_backend_of(LT_DEV_CUDA) == cu);
    CHECK(lt_dev_kind(cu) == LT_DEV_CUDA);
    CHECK(strncmp(lt_dev_name(cu), "cuda:0 ", 7) == 0 && strlen(lt_dev_name(cu)) > 7);
    for (lt_math m = LT_MATH_F32; m <= LT_MATH_FP16; m++)
        CHECK_MSG(lt_dev_set_math(cu, m, &err) == LT_OK, "%s: %s", lt_math_name(m), err.msg);
    CHECK(lt_dev_set_math(cu, LT_MATH_F32, &err) == LT_OK);
    CHECK(lt_dev_sync(cu, NULL, &err) == LT_OK);
}

/* ---- memory and copies ---- */
static void test_memory(void) {
    lt_err err = {0};
    void *empty = lt_dev_alloc(cu, 0, LT_MEM_MODEL, &err);
    CHECK(empty != NULL);
    lt_dev_free(cu, empty, LT_MEM_MODEL);
    for (size_t k = 0; k < NSIZES; k++) {
        size_t n = sizes[k], bytes = n * sizeof(float);
        float *d = lt_dev_alloc(cu, bytes, LT_MEM_OPTIM, &err);
        CHECK_MSG(d != NULL, "%s", err.msg);
        if (!d) return;
        CHECK((uintptr_t)d % 64 == 0);
        CHECK(lt_dev_host(cu, d) == NULL);
        float *zero = calloc(n, sizeof *zero), *h = dev_read(d, n);
        CHECK_MSG(memcmp(h, zero, bytes) == 0, "alloc of %zu floats not zeroed", n);
        free(h);

        float *x = host_random(n, 3.0f);
        CHECK(lt_dev_set(cu, d, x, bytes, &err) == LT_OK);
        h = dev_read(d, n);
        CHECK_MSG(memcmp(h, x, bytes) == 0, "set/get of %zu floats", n);
        free(h);

        /* device -> device, whole and at an offset inside the buffer */
        float *d2 = dev_from(NULL, n);
        CHECK(lt_dev_copy(cu, d2, d, bytes, &err) == LT_OK);
        h = dev_read(d2, n);
        CHECK_MSG(memcmp(h, x, bytes) == 0, "copy of %zu floats", n);
        free(h);
        if (n > 1) {
            CHECK(lt_dev_copy(cu, d2 + 1, d, (n - 1) * sizeof(float), &err) == LT_OK);
            h = dev_read(d2, n);
            CHECK(h[0] == x[0] && memcmp(h + 1, x, (n - 1) * sizeof(float)) == 0);
            free(h);
        }

        /* fill: the CPU's bits for +0 (memset), -0, a value, NaN and inf */
        const float vals[] = {0.0f, -0.0f, 3.5f, NAN, -INFINITY};
        float *ref = malloc(bytes);
        for (size_t v = 0; v < sizeof vals / sizeof *vals; v++) {
            lt_dev_fill(NULL, ref, vals[v], n);
            lt_dev_fill(cu, d2, vals[v], n);
            h = dev_read(d2, n);
            CHECK_MSG(memcmp(h, ref, bytes) == 0, "fill %g over %zu floats", vals[v], n);
            free(h);
        }

        /* async round trips on the training stream and the side stream */
#ifdef LATHE_HAVE_CUDA
        lt_stream *streams[] = {NULL, (lt_stream *)(void *)lt_cuda_ctx.side};
#else
        lt_stream *streams[] = {NULL};
#endif
        for (size_t s = 0; s < sizeof streams / sizeof *streams; s++) {
            float *y = host_random(n, 1.0f), *back = calloc(n, sizeof *back);
            CHECK(lt_dev_set_async(cu, d2, y, bytes, streams[s], &err) == LT_OK);
            CHECK(lt_dev_sync(cu, streams[s], &err) == LT_OK);
            CHECK(lt_dev_get_async(cu, back, d2, bytes, streams[s], &err) == LT_OK);
            CHECK(lt_dev_sync(cu, streams[s], &err) == LT_OK);
            CHECK_MSG(memcmp(back, y, bytes) == 0, "async round trip of %zu floats on stream %zu", n, s);
            free(y);
            free(back);
        }
        free(ref);
        free(zero);
        free(x);
        lt_dev_free(cu, d, LT_MEM_OPTIM);
        lt_dev_free(cu, d2, LT_MEM_STEP);
    }
    CHECK(lt_dev_sync(cu, NULL, &err) == LT_OK);
}

/* ---- reductions, scale, clamp ---- */
static void test_state_ops(void) {
    lt_err err = {0};
    for (size_t k = 0; k < NSIZES; k++) {
        size_t n = sizes[k], bytes = n * sizeof(float);
        float *x = host_random(n, 4.0f);
        float *d = dev_from(x, n);
        if (!d) return;

        double s_cpu = lt_dev_sum_squares(NULL, x, n), s_cu = lt_dev_sum_squares(cu, d, n);
        CHECK_MSG(fabs(s_cu - s_cpu) <= 1e-12 * fabs(s_cpu), "sum_squares over %zu: cuda %.17g, cpu %.17g", n, s_cu,
                  s_cpu);

        CHECK(lt_dev_any_above(cu, d, n, 4.0f) == lt_dev_any_above(NULL, x, n, 4.0f));
        CHECK(lt_dev_any_above(cu, d, n, 0.01f) == lt_dev_any_above(NULL, x, n, 0.01f));
        CHECK(lt_dev_count_nonfinite(cu, d, n) == 0);

        /* non-finite values and a denormal, at the ends and inside */
        x[n - 1] = NAN;
        if (n > 1) x[0] = INFINITY;
        if (n > 2) x[n / 2] = -INFINITY;
        if (n > 3) x[1] = 1e-40f;
        CHECK(lt_dev_set(cu, d, x, bytes, &err) == LT_OK);
        CHECK(lt_dev_count_nonfinite(cu, d, n) == lt_dev_count_nonfinite(NULL, x, n));
        CHECK(lt_dev_any_above(cu, d, n, 1e30f) == 1 && lt_dev_any_above(NULL, x, n, 1e30f) == 1);

        lt_dev_scale(NULL, x, n, 0.37f);
        lt_dev_scale(cu, d, n, 0.37f);
        float *h = dev_read(d, n);
        CHECK(same_bits(h, x, n, "scale"));
        free(h);

        lt_dev_clamp(NULL, x, n, 0.5f);
        lt_dev_clamp(cu, d, n, 0.5f);
        h = dev_read(d, n);
        CHECK(same_bits(h, x, n, "clamp"));
        CHECK(isnan(h[n - 1])); /* NaN stays NaN */
        free(h);

        free(x);
        lt_dev_free(cu, d, LT_MEM_STEP);
    }
    CHECK(lt_dev_sync(cu, NULL, &err) == LT_OK);
}

/* ---- the optimizer rules ---- */
#define NT 53 /* 3 sizes + 50 small tensors: two fused launches */

typedef struct variant {
    const char *name;
    lt_update_rule rule;
    int flags; /* rule-specific, below */
} variant;

enum { F_WD = 1, F_MOM = 2, F_NESTEROV = 4, F_DECOUPLED = 8, F_AMSGRAD = 16, F_CENTERED = 32, F_BIG_W = 64 };

/* The coefficients of step t (1-based) as core/optim computes them. */
static lt_update coefs(const variant *v, int t) {
    lt_update u = {.rule = v->rule};
    int f = v->flags;
    switch (v->rule) {
    case LT_UPDATE_SGD:
        u.c.sgd = (lt_sgd_coef){.lr = 0.05f,
                                .wd = 1e-3f,
                                .mom = 0.9f,
                                .one_minus_damp = f & F_NESTEROV ? 1.0f : 0.9f,
                                .has_wd = !!(f & F_WD),
                                .has_mom = !!(f & F_MOM),
                                .nesterov = !!(f & F_NESTEROV),
                                .first = t == 1};
        break;
    case LT_UPDATE_ADAM: {
        double lr = 1e-3, b1 = f & F_BIG_W ? 0.3 : 0.9, b2 = 0.999, wd = 0.01;
        u.c.adam = (lt_adam_coef){.wd = (float)wd,
                                  .decay = (float)(1.0 - lr * wd),
                                  .w1 = (float)(1.0 - b1),
                                  .beta2 = (float)b2,
                                  .c2 = (float)(1.0 - b2),
                                  .bc2_sqrt = (float)sqrt(1.0 - pow(b2, t)),
                                  .eps = 1e-8f,
                                  .neg_step = (float)(-lr / (1.0 - pow(b1, t))),
                                  .coupled_wd = (f & F_WD) && !(f & F_DECOUPLED),
                                  .decoupled_wd = (f & F_WD) && (f & F_DECOUPLED),
                                  .amsgrad = !!(f & F_AMSGRAD)};
        break;
    }
    case LT_UPDATE_ADADELTA:
        u.c.adadelta = (lt_adadelta_coef){
            .neg_lr = -1.0f, .rho = 0.9f, .c = (float)(1.0 - 0.9), .eps = 1e-6f, .wd = 0.01f, .has_wd = !!(f & F_WD)};
        break;
    case LT_UPDATE_RMSPROP: {
        double alpha = f & F_BIG_W ? 0.3 : 0.99;
        u.c.rmsprop = (lt_rmsprop_coef){.neg_lr = -0.01f,
                                        .alpha = (float)alpha,
                                        .c = (float)(1.0 - alpha),
                                        .w = (float)(1.0 - alpha),
                                        .eps = 1e-8f,
                                        .wd = 0.01f,
                                        .mom = 0.9f,
                                        .has_wd = !!(f & F_WD),
                                        .has_mom = !!(f & F_MOM),
                                        .centered = !!(f & F_CENTERED)};
        break;
    }
    case LT_UPDATE_ADAGRAD:
        u.c.adagrad = (lt_adagrad_coef){.neg_clr = (float)(-0.01 / (1.0 + (t - 1) * 1e-3)),
                                        .eps = 1e-10f,
                                        .wd = 0.01f,
                                        .init = f & F_WD ? 0.0f : 0.1f,
                                        .has_wd = !!(f & F_WD),
                                        .first = t == 1};
        break;
    }
    return u;
}

/* which state slots the rule uses with these flags (the others stay NULL) */
static int uses_slot(const variant *v, int s) {
    switch (v->rule) {
    case LT_UPDATE_SGD: return s == 0 && (v->flags & F_MOM);
    case LT_UPDATE_ADAM: return s < 2 || (v->flags & F_AMSGRAD);
    case LT_UPDATE_ADADELTA: return s < 2;
    case LT_UPDATE_RMSPROP: return s == 0 || (s == 1 && (v->flags & F_MOM)) || (s == 2 && (v->flags & F_CENTERED));
    case LT_UPDATE_ADAGRAD: return s == 0;
    }
    return 0;
}

static void run_variant(const variant *v) {
    size_t n[NT];
    for (int i = 0; i < NT; i++) n[i] = i < (int)NSIZES ? sizes[i] : 1 + (size_t)(i * 13) % 97;
    lt_update_tensor hts[NT], dts[NT];
    for (int i = 0; i < NT; i++) {
        hts[i] = (lt_update_tensor){.p = host_random(n[i], 1.0f), .n = n[i]};
        dts[i] = (lt_update_tensor){.p = dev_from(hts[i].p, n[i]), .n = n[i]};
        for (int s = 0; s < 3; s++) {
            if (!uses_slot(v, s)) continue;
            hts[i].s[s] = calloc(n[i], sizeof(float)); /* the optimizer's zeroed state */
            dts[i].s[s] = dev_from(NULL, n[i]);
        }
    }
    for (int t = 1; t <= 3; t++) {
        for (int i = 0; i < NT; i++) {
            float *g = host_random(n[i], 0.5f);
            free((void *)hts[i].g);
            if (dts[i].g) lt_dev_free(cu, (void *)dts[i].g, LT_MEM_STEP);
            hts[i].g = g;
            dts[i].g = dev_from(g, n[i]);
        }
        lt_update u = coefs(v, t);
        lt_dev_optim_update(NULL, &u, NT, hts);
        lt_dev_optim_update(cu, &u, NT, dts);
    }
    lt_err err = {0};
    CHECK_MSG(lt_dev_sync(cu, NULL, &err) == LT_OK, "%s: %s", v->name, err.msg);
    char what[96];
    for (int i = 0; i < NT; i++) {
        float *h = dev_read(dts[i].p, n[i]);
        snprintf(what, sizeof what, "%s: tensor %d p", v->name, i);
        CHECK(same_bits(h, hts[i].p, n[i], what));
        free(h);
        for (int s = 0; s < 3; s++) {
            if (!hts[i].s[s]) continue;
            h = dev_read(dts[i].s[s], n[i]);
            snprintf(what, sizeof what, "%s: tensor %d s[%d]", v->name, i, s);
            CHECK(same_bits(h, hts[i].s[s], n[i], what));
            free(h);
            free(hts[i].s[s]);
            lt_dev_free(cu, dts[i].s[s], LT_MEM_OPTIM);
        }
        free(hts[i].p);
        free((void *)hts[i].g);
        lt_dev_free(cu, dts[i].p, LT_MEM_MODEL);
        lt_dev_free(cu, (void *)dts[i].g, LT_MEM_STEP);
    }
}

static void test_optim_update(void) {
    static const variant variants[] = {
        {"sgd", LT_UPDATE_SGD, 0},
        {"sgd wd momentum", LT_UPDATE_SGD, F_WD | F_MOM},
        {"sgd nesterov", LT_UPDATE_SGD, F_WD | F_MOM | F_NESTEROV},
        {"adam", LT_UPDATE_ADAM, 0},
        {"adam coupled wd", LT_UPDATE_ADAM, F_WD},
        {"adamw amsgrad", LT_UPDATE_ADAM, F_WD | F_DECOUPLED | F_AMSGRAD},
        {"adam beta1 0.3 amsgrad", LT_UPDATE_ADAM, F_BIG_W | F_AMSGRAD},
        {"adadelta", LT_UPDATE_ADADELTA, 0},
        {"adadelta wd", LT_UPDATE_ADADELTA, F_WD},
        {"rmsprop", LT_UPDATE_RMSPROP, 0},
        {"rmsprop momentum", LT_UPDATE_RMSPROP, F_MOM},
        {"rmsprop centered momentum wd", LT_UPDATE_RMSPROP, F_CENTERED | F_MOM | F_WD},
        {"rmsprop centered alpha 0.3", LT_UPDATE_RMSPROP, F_CENTERED | F_BIG_W},
        {"adagrad", LT_UPDATE_ADAGRAD, 0},
        {"adagrad wd", LT_UPDATE_ADAGRAD, F_WD},
    };
    for (size_t i = 0; i < sizeof variants / sizeof *variants; i++) run_variant(&variants[i]);
}

/* ---- a failed call, reported at the next sync ---- */
#ifdef LATHE_HAVE_CUDA
static void test_kept_error(void) {
    lt_err err = {0};
    CHECK(lt_dev_sync(cu, NULL, &err) == LT_OK);
    float *d = dev_from(NULL, 7);

    /* a real failure: no device has 2^62 bytes for the workspace */
    CHECK(lt_cu_workspace((size_t)1 << 62) == NULL);
    CHECK(lt_dev_sum_squares(cu, d, 7) < 0); /* pending: the norm is poisoned */
    CHECK(lt_dev_count_nonfinite(cu, d, 7) == 7);
    int rc = lt_dev_sync(cu, NULL, &err);
    CHECK(rc < 0);
    CHECK_STR_CONTAINS(err.msg, "synchronising");
    CHECK_STR_CONTAINS(lt_cuda_ctx.err_msg, "cudaMallocAsync");
    CHECK(lt_dev_sync(cu, NULL, &err) == LT_OK); /* reported once, then cleared */
    void *w = lt_cu_workspace(1000);
    CHECK(w != NULL && lt_cuda_ctx.ws_bytes >= 1000);
    CHECK(lt_cu_workspace(10) == w); /* grows only */

    /* the first failure is kept; get reports it; a side stream leaves it */
    CHECK(!LT_CU(cudaErrorInvalidValue));
    CHECK(!LT_CUBLAS(CUBLAS_STATUS_ALLOC_FAILED));
    CHECK_STR_CONTAINS(lt_cuda_ctx.err_msg, "cudaErrorInvalidValue");
    CHECK(lt_dev_sync(cu, (lt_stream *)(void *)lt_cuda_ctx.side, &err) == LT_OK);
    float h[7];
    CHECK(lt_dev_get(cu, h, d, sizeof h, &err) == LT_EINVAL);
    CHECK(lt_dev_get(cu, h, d, sizeof h, &err) == LT_OK);
    CHECK(!LT_CUDNN(CUDNN_STATUS_NOT_SUPPORTED));
    CHECK(lt_dev_sync(cu, NULL, &err) == LT_EUNSUPPORTED);
    CHECK(lt_dev_sync(cu, NULL, &err) == LT_OK);
    lt_dev_free(cu, d, LT_MEM_STEP);
}
#endif

int main(void) {
    lt_err err = {0};
    cu = lt_backend_cuda(&err);
    if (!cu) {
        printf("cuda: skipped: %s\n", err.msg);
        return 0;
    }
    printf("cuda: %s\n", lt_dev_name(cu));
    RUN(test_context);
    RUN(test_memory);
    RUN(test_state_ops);
    RUN(test_optim_update);
#ifdef LATHE_HAVE_CUDA
    RUN(test_kept_error);
#endif
    return check_done();
}
