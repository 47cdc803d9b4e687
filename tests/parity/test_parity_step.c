/* One full training step of mnist_cnn against PyTorch (gen_step_fixtures.py):
 * forward, cross-entropy, backward through every layer, one Adadelta step.
 * Weights and inputs come from the same formula on both sides. The step runs
 * on every backend present: the CPU, the hostless test backend (the CPU's
 * kernels on memory the host cannot touch) and the CUDA backend on a machine
 * with a GPU; values travel through lathe/device.h's calls. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "fixture.h"
#include "hostless_backend.h"
#include "lathe/device.h"
#include "lathe/ops.h"
#include "lathe/train.h"

#define B 8
#define STRIDE 97

static void formula(float *out, size_t n, double phase, double scale) {
    for (size_t i = 0; i < n; i++) out[i] = (float)(scale * sin(0.37 * (double)i + phase));
}

static fx_file fx;
static const lt_backend *be; /* the backend under test */

/* n floats at src (be's memory) in a host buffer of the caller's */
static const float *host(const float *src, size_t n) {
    static float buf[1 << 21];
    lt_err err = {0};
    if (n > sizeof buf / sizeof buf[0]) n = sizeof buf / sizeof buf[0];
    CHECK_MSG(lt_dev_get(be, buf, src, n * sizeof(float), &err) == LT_OK, "%s", err.msg);
    return buf;
}

static void compare(const char *name, const float *dev, size_t n, size_t stride) {
    const float *got = host(dev, n);
    const fx_array *a = fx_get(&fx, name);
    CHECK_MSG(a != NULL, "fixture lacks %s", name);
    if (!a) return;
    static float buf[1 << 20];
    size_t k = 0;
    for (size_t i = 0; i < n && k < (sizeof buf / sizeof buf[0]); i += stride) buf[k++] = got[i];
    CHECK_MSG(k == a->n, "%s: %zu values vs %zu in the fixture", name, k, a->n);
    if (k != a->n) return;
    double e = check_max_rel_err(buf, a->data, k);
    CHECK_MSG(e <= 1e-4, "%s on %s: relative error %g", name, lt_dev_name(be), e);
}

static void test_step(void) {
    lt_config cfg;
    lt_rng rng;
    lt_err err = {0};
    lt_module m;
    lt_config_defaults(&cfg);
    cfg.backend = be;
    lt_rng_seed(&rng, 1);
    CHECK(lt_module_build_model(&m, lt_experiment_find("mnist_cnn"), &cfg, &rng, &err) == LT_OK);
    lt_model *md = &m.model;
    for (int k = 0; k < md->nparams; k++) {
        lt_param *p = &md->params[k];
        size_t rows = 0;
        for (int i = 0; i < md->nlayers; i++) {
            lt_layer *l = &md->layers[i];
            if (l->weight.data == p->data) rows = (size_t)l->weight.shape[0];
        }
        double scale = rows ? 1.0 / sqrt((double)(p->n / rows)) : 0.05;
        static float w[1 << 21];
        formula(w, p->n, 0.1 * (k + 1), scale);
        CHECK(lt_dev_set(be, p->data, w, p->n * sizeof(float), &err) == LT_OK);
    }
    for (int i = 0; i < md->nlayers; i++)
        if (md->layers[i].kind == LT_LAYER_DROPOUT) md->layers[i].p = 0.0f;

    static float x[B * 784];
    formula(x, B * 784, 0.0, 1.0);
    for (int i = 0; i < B * 784; i++) x[i] = (float)(0.5 + 0.5 * (double)x[i]);
    int32_t y[B];
    for (int b = 0; b < B; b++) y[b] = (3 * b + 1) % 10;

    lt_graph g;
    lt_graph_init(&g, be, &rng, &err);
    lt_graph_bind(&g, be);
    int shape[4] = {B, 1, 28, 28};
    lt_tensor *in = lt_graph_from_host(&g, x, shape, 4, &err);
    lt_tensor *logits = lt_model_forward(md, &g, in, &err);
    CHECK_MSG(logits != NULL, "%s", err.msg);
    if (!logits) return;
    lt_tensor *loss = lt_cross_entropy(&g, logits, y, &err);
    CHECK(lt_backward(&g, loss, &err) == LT_OK);
    compare("logits", logits->data, logits->numel, 1);
    compare("loss", loss->data, 1, 1);
    for (int k = 0; k < md->nparams; k++) {
        lt_param *p = &md->params[k];
        char name[128];
        if (!strcmp(p->name, "dense_1.weight")) {
            double s = 0, ss = 0;
            const float *gr = host(p->grad, p->n);
            for (size_t i = 0; i < p->n; i++) s += gr[i], ss += (double)gr[i] * gr[i];
            snprintf(name, sizeof name, "%s.grad_sampled", p->name);
            compare(name, p->grad, p->n, STRIDE);
            const fx_array *fs = fx_get(&fx, "dense_1.weight.grad_sum");
            const fx_array *fss = fx_get(&fx, "dense_1.weight.grad_sumsq");
            if (fs && fss) {
                CHECK_NEAR(s, fs->data[0], 1e-3);
                CHECK_NEAR(ss, fss->data[0], 1e-4);
            }
        } else {
            snprintf(name, sizeof name, "%s.grad", p->name);
            compare(name, p->grad, p->n, 1);
        }
    }
    lt_optim *o = m.exp->configure_optimizers(&m, 1.0, &err);
    CHECK(o != NULL);
    CHECK(lt_optim_step(o, &err) == LT_OK);
    for (int k = 0; k < md->nparams; k++) {
        lt_param *p = &md->params[k];
        char name[128];
        int sampled = !strcmp(p->name, "dense_1.weight");
        snprintf(name, sizeof name, "%s.after%s", p->name, sampled ? "_sampled" : "");
        compare(name, p->data, p->n, sampled ? STRIDE : 1);
    }
    lt_optim_free(o);
    lt_graph_free(&g);
    lt_model_free(md);
}

int main(void) {
    if (fx_load(&fx, LATHE_FIXTURE_DIR "/step.fix")) return 1;
    lt_err err = {0};
    const lt_backend *cuda = lt_backend_cuda(&err);
    const lt_backend *all[3] = {lt_backend_cpu(), hostless(), cuda};
    lt_backend_of_override(LT_DEV_CUDA, NULL);
    if (!cuda) printf("cuda: skipped: %s\n", err.msg);
    for (int b = 0; b < 3; b++) {
        if (!(be = all[b])) continue;
        lt_backend_of_override(LT_DEV_CUDA, be == all[1] ? be : NULL);
        printf("%s:\n", lt_dev_name(be));
        RUN(test_step);
    }
    fx_free(&fx);
    return check_done();
}
