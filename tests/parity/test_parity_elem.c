/* test_parity_elem.c: the element-wise, softmax, batch-norm and loss kernels
 * against PyTorch references (tests/parity/gen_elem_fixtures.py -> elem.fix).
 * Every output and gradient must match with relative error <= 1e-4
 * (max |ours - torch| / max |torch| over the array). Gradient buffers start at
 * zero, so backward's accumulation gives the gradient itself. */
#include <stdlib.h>

#include "check.h"
#include "fixture.h"
#include "ops/kernels.h"

#define TOL 1e-4

static fx_file fx;

static const fx_array *get(const char *name, const char *field) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", name, field);
    const fx_array *a = fx_get(&fx, key);
    CHECK_MSG(a != NULL, "fixture array %s missing", key);
    return a;
}

static float *zeros(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static void expect(const char *name, const char *field, const float *ours, const fx_array *ref) {
    double e = check_max_rel_err(ours, ref->data, ref->n);
    CHECK_MSG(e <= TOL, "%s.%s: relative error %g", name, field, e);
}

static void act_case(const char *name) {
    const fx_array *cfg = get(name, "cfg"), *x = get(name, "x"), *y = get(name, "y"), *g = get(name, "dout"),
                   *dx = get(name, "dx");
    if (!cfg || !x || !y || !g || !dx) return;
    size_t n = x->n;
    float alpha = cfg->data[1];
    float *out = zeros(n), *din = zeros(n);
    if (!strncmp(name, "relu", 4)) {
        lt_relu_forward(out, x->data, n);
        lt_relu_backward(din, g->data, x->data, out, n);
    } else if (!strncmp(name, "tanh", 4)) {
        lt_tanh_forward(out, x->data, n);
        lt_tanh_backward(din, g->data, x->data, out, n);
    } else if (!strncmp(name, "sigmoid", 7)) {
        lt_sigmoid_forward(out, x->data, n);
        lt_sigmoid_backward(din, g->data, x->data, out, n);
    } else if (!strncmp(name, "gelu", 4)) {
        lt_gelu_forward(out, x->data, n);
        lt_gelu_backward(din, g->data, x->data, out, n);
    } else {
        lt_elu_forward(out, x->data, n, alpha);
        lt_elu_backward(din, g->data, x->data, out, n, alpha);
    }
    expect(name, "y", out, y);
    expect(name, "dx", din, dx);
    free(out);
    free(din);
}

static void test_activations(void) {
    static const char *names[] = {"relu_37", "relu_300", "tanh_37", "tanh_300", "sigmoid_37", "sigmoid_300",
                                  "gelu_37", "gelu_300", "elu_37",  "elu_300",  "elu_a07"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) act_case(names[i]);
}

static void softmax_case(const char *name, int log) {
    const fx_array *cfg = get(name, "cfg"), *x = get(name, "x"), *y = get(name, "y"), *g = get(name, "dout"),
                   *dx = get(name, "dx");
    if (!cfg || !x || !y || !g || !dx) return;
    int R = (int)cfg->data[0], C = (int)cfg->data[1];
    float *out = zeros(x->n), *din = zeros(x->n);
    if (log) {
        lt_log_softmax_forward(out, x->data, R, C);
        lt_log_softmax_backward(din, g->data, out, R, C);
    } else {
        lt_softmax_forward(out, x->data, R, C);
        lt_softmax_backward(din, g->data, out, R, C);
    }
    expect(name, "y", out, y);
    expect(name, "dx", din, dx);
    free(out);
    free(din);
}

static void test_softmax(void) {
    static const char *shapes[] = {"1x1", "3x10", "4x37", "2x100", "big"};
    char name[64];
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        snprintf(name, sizeof name, "softmax_%s", shapes[i]);
        softmax_case(name, 0);
        snprintf(name, sizeof name, "log_softmax_%s", shapes[i]);
        softmax_case(name, 1);
    }
}

static void batchnorm_case(const char *name) {
    const fx_array *cfg = get(name, "cfg"), *x = get(name, "x"), *gamma = get(name, "gamma"), *beta = get(name, "beta"),
                   *rm0 = get(name, "rm0"), *rv0 = get(name, "rv0"), *rm1 = get(name, "rm1"), *rv1 = get(name, "rv1"),
                   *y = get(name, "y"), *g = get(name, "dout"), *dx = get(name, "dx"), *dgamma = get(name, "dgamma"),
                   *dbeta = get(name, "dbeta");
    if (!cfg || !x || !gamma || !beta || !rm0 || !rv0 || !rm1 || !rv1 || !y || !g || !dx || !dgamma || !dbeta) return;
    int B = (int)cfg->data[0], C = (int)cfg->data[1], HW = (int)cfg->data[2], training = cfg->data[3] != 0.0f;
    float momentum = cfg->data[4], eps = cfg->data[5];
    float *out = zeros(x->n), *din = zeros(x->n), *dg = zeros(C), *db = zeros(C);
    float *rm = zeros(C), *rv = zeros(C), *sm = zeros(C), *si = zeros(C);
    memcpy(rm, rm0->data, C * sizeof *rm);
    memcpy(rv, rv0->data, C * sizeof *rv);
    lt_batchnorm2d_forward(out, sm, si, x->data, gamma->data, beta->data, rm, rv, B, C, HW, momentum, eps, training);
    expect(name, "y", out, y);
    expect(name, "running_mean", rm, rm1);
    expect(name, "running_var", rv, rv1);
    /* backward exists for training mode only (eval graphs record no backward) */
    if (training) {
        lt_batchnorm2d_backward(din, dg, db, g->data, x->data, gamma->data, sm, si, B, C, HW);
        expect(name, "dx", din, dx);
        expect(name, "dgamma", dg, dgamma);
        expect(name, "dbeta", db, dbeta);
    }
    free(out);
    free(din);
    free(dg);
    free(db);
    free(rm);
    free(rv);
    free(sm);
    free(si);
}

static void test_batchnorm(void) {
    batchnorm_case("bn_train_a");
    batchnorm_case("bn_train_b");
    batchnorm_case("bn_train_c");
    batchnorm_case("bn_eval");
}

static int32_t *labels_of(const fx_array *a) {
    int32_t *l = malloc(a->n * sizeof *l);
    for (size_t i = 0; i < a->n; i++) l[i] = (int32_t)a->data[i];
    return l;
}

static void class_loss_case(const char *name, int nll) {
    const fx_array *cfg = get(name, "cfg"), *x = get(name, "x"), *lab = get(name, "labels"), *loss = get(name, "loss"),
                   *dloss = get(name, "dloss"), *dx = get(name, "dx");
    if (!cfg || !x || !lab || !loss || !dloss || !dx) return;
    int B = (int)cfg->data[0], C = (int)cfg->data[1];
    int32_t *labels = labels_of(lab);
    float *din = zeros(x->n), l;
    if (nll) {
        l = lt_nll_forward(x->data, labels, B, C);
        lt_nll_backward(din, dloss->data[0], labels, B, C);
    } else {
        const fx_array *probs = get(name, "probs");
        float *p = zeros(x->n);
        l = lt_cross_entropy_forward(p, x->data, labels, B, C);
        if (probs) expect(name, "probs", p, probs);
        lt_cross_entropy_backward(din, dloss->data[0], p, labels, B, C);
        free(p);
    }
    expect(name, "loss", &l, loss);
    expect(name, "dx", din, dx);
    free(din);
    free(labels);
}

static void mse_case(const char *name) {
    const fx_array *pred = get(name, "pred"), *target = get(name, "target"), *loss = get(name, "loss"),
                   *dloss = get(name, "dloss"), *dpred = get(name, "dpred"), *dtarget = get(name, "dtarget");
    if (!pred || !target || !loss || !dloss || !dpred || !dtarget) return;
    float *dp = zeros(pred->n), *dt = zeros(pred->n);
    float l = lt_mse_forward(pred->data, target->data, pred->n);
    lt_mse_backward(dp, dt, dloss->data[0], pred->data, target->data, pred->n);
    expect(name, "loss", &l, loss);
    expect(name, "dpred", dp, dpred);
    expect(name, "dtarget", dt, dtarget);
    free(dp);
    free(dt);
}

static void test_losses(void) {
    class_loss_case("ce_a", 0);
    class_loss_case("ce_b", 0);
    class_loss_case("ce_c", 0);
    class_loss_case("nll_a", 1);
    class_loss_case("nll_b", 1);
    mse_case("mse_a");
    mse_case("mse_b");
}

int main(void) {
    if (fx_load(&fx, LATHE_FIXTURE_DIR "/elem.fix") != 0) {
        fprintf(stderr, "cannot load %s/elem.fix\n", LATHE_FIXTURE_DIR);
        return 1;
    }
    RUN(test_activations);
    RUN(test_softmax);
    RUN(test_batchnorm);
    RUN(test_losses);
    fx_free(&fx);
    return check_done();
}
