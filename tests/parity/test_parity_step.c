/* One full training step of mnist_cnn against PyTorch (gen_step_fixtures.py):
 * forward, cross-entropy, backward through every layer, one Adadelta step.
 * Weights and inputs come from the same formula on both sides. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "fixture.h"
#include "lathe/train.h"

#define B 8
#define STRIDE 97

static void formula(float *out, size_t n, double phase, double scale) {
    for (size_t i = 0; i < n; i++) out[i] = (float)(scale * sin(0.37 * (double)i + phase));
}

static fx_file fx;

static void compare(const char *name, const float *got, size_t n, size_t stride) {
    const fx_array *a = fx_get(&fx, name);
    CHECK_MSG(a != NULL, "fixture lacks %s", name);
    if (!a) return;
    static float buf[1 << 20];
    size_t k = 0;
    for (size_t i = 0; i < n && k < (sizeof buf / sizeof buf[0]); i += stride) buf[k++] = got[i];
    CHECK_MSG(k == a->n, "%s: %zu values vs %zu in the fixture", name, k, a->n);
    if (k != a->n) return;
    double e = check_max_rel_err(buf, a->data, k);
    CHECK_MSG(e <= 1e-4, "%s: relative error %g", name, e);
}

static void test_step(void) {
    lt_config cfg;
    lt_rng rng;
    lt_err err = {0};
    lt_module m;
    lt_config_defaults(&cfg);
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
        formula(p->data, p->n, 0.1 * (k + 1), scale);
    }
    for (int i = 0; i < md->nlayers; i++)
        if (md->layers[i].kind == LT_LAYER_DROPOUT) md->layers[i].p = 0.0f;

    static float x[B * 784];
    formula(x, B * 784, 0.0, 1.0);
    for (int i = 0; i < B * 784; i++) x[i] = (float)(0.5 + 0.5 * (double)x[i]);
    int32_t y[B];
    for (int b = 0; b < B; b++) y[b] = (3 * b + 1) % 10;

    lt_graph g;
    lt_graph_init(&g, NULL, &rng, &err);
    int shape[4] = {B, 1, 28, 28};
    lt_tensor *in = lt_graph_wrap(&g, x, NULL, shape, 4, 0);
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
            for (size_t i = 0; i < p->n; i++) s += p->grad[i], ss += (double)p->grad[i] * p->grad[i];
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
    RUN(test_step);
    fx_free(&fx);
    return check_done();
}
