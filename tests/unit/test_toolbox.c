/* The trainer's toolbox: gradient clipping (norm and value) bounds what the
 * optimizer sees, and gradient accumulation over N batches matches one batch N
 * times larger. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "trainer_fixture.h"
#include "lathe/train.h"

static void config(lt_config *c) {
    fixture_config(c, (fixture_spec){.batch_size = 32, .max_epochs = 1, .val_batches = 1, .seed = 5});
}

static double model_grad_norm(const lt_model *m, double *maxabs) {
    const float *g = m->mem + m->nparam_floats;
    double s = 0;
    *maxabs = 0;
    for (size_t i = 0; i < m->nparam_floats; i++) {
        s += (double)g[i] * g[i];
        if (fabs(g[i]) > *maxabs) *maxabs = fabs(g[i]);
    }
    return sqrt(s);
}

static void test_clip_norm(void) {
    static lt_trainer t;
    lt_config c;
    lt_err err = {0};
    config(&c);
    c.max_steps = 2;
    c.gradient_clip_val = 0.05;
    CHECK(fixture_trainer(&t, lt_experiment_find("mlp"), &c) == LT_OK);
    CHECK(lt_trainer_fit(&t, &err) == LT_OK);
    double maxabs, n = model_grad_norm(&t.mod.model, &maxabs);
    CHECK_MSG(t.grad_norm > 0.05, "pre-clip norm %g should exceed the bound for this test to mean anything",
              t.grad_norm);
    CHECK_MSG(n <= 0.05 * (1 + 1e-4), "clipped norm %g > 0.05", n);
    CHECK(n > 0.049);
    lt_trainer_free(&t);
}

static void test_clip_value(void) {
    static lt_trainer t;
    lt_config c;
    lt_err err = {0};
    config(&c);
    c.max_steps = 1;
    c.gradient_clip_val = 1e-3;
    c.gradient_clip_by_value = 1;
    CHECK(fixture_trainer(&t, lt_experiment_find("mlp"), &c) == LT_OK);
    CHECK(lt_trainer_fit(&t, &err) == LT_OK);
    double maxabs;
    model_grad_norm(&t.mod.model, &maxabs);
    CHECK_MSG(maxabs <= 1e-3 + 1e-9, "max |grad| %g > 1e-3", maxabs);
    CHECK(maxabs > 0.9e-3); /* the bound was reached: some gradient was clamped */
    lt_trainer_free(&t);
}

/* mlp has no dropout, so 2 batches of 32 accumulated == 1 batch of 64 */
static void test_accumulation_matches_big_batch(void) {
    static lt_trainer a, b;
    lt_config c;
    lt_err err = {0};
    config(&c);
    c.batch_size = 64;
    c.max_steps = 4;
    CHECK(fixture_trainer(&a, lt_experiment_find("mlp"), &c) == LT_OK);
    CHECK(lt_trainer_fit(&a, &err) == LT_OK);
    config(&c);
    c.batch_size = 32;
    c.accumulate_grad_batches = 2;
    c.max_steps = 4;
    CHECK(fixture_trainer(&b, lt_experiment_find("mlp"), &c) == LT_OK);
    CHECK(lt_trainer_fit(&b, &err) == LT_OK);
    CHECK(a.step == 4 && b.step == 4 && b.samples == 256);
    size_t n = a.mod.model.nparam_floats;
    double e = check_max_rel_err(b.mod.model.mem, a.mod.model.mem, n);
    CHECK_MSG(e < 1e-4, "accumulated weights differ from the big batch's by %g", e);
    /* and without accumulation (plain 32s) they clearly differ */
    static lt_trainer d;
    config(&c);
    c.max_steps = 4;
    CHECK(fixture_trainer(&d, lt_experiment_find("mlp"), &c) == LT_OK);
    CHECK(lt_trainer_fit(&d, &err) == LT_OK);
    CHECK(check_max_rel_err(d.mod.model.mem, a.mod.model.mem, n) > 1e-3);
    lt_trainer_free(&a);
    lt_trainer_free(&b);
    lt_trainer_free(&d);
}

/* A NaN injected into conv2d_2's weights: the watch names conv2d_2's output,
 * the first non-finite value in forward order. */
static void test_anomaly_names_layer(void) {
    static lt_trainer t;
    lt_config c;
    lt_err err = {0};
    config(&c);
    c.max_steps = 1;
    CHECK(fixture_trainer(&t, lt_experiment_find("mnist_cnn"), &c) == LT_OK);
    lt_anomaly a;
    CHECK(lt_trainer_find_anomaly(&t, &a) == 0);
    lt_layer *l = lt_model_find(&t.mod.model, "conv2d_2");
    l->weight.data[5] = NAN;
    CHECK(lt_trainer_fit(&t, &err) != LT_OK); /* the loss is NaN */
    CHECK_STR_CONTAINS(err.msg, "NaN");
    CHECK(lt_trainer_find_anomaly(&t, &a) == 1);
    CHECK(a.layer == 1 && !strcmp(a.what, "output"));
    CHECK_STR_CONTAINS(a.message, "conv2d_2");
    lt_trainer_free(&t);
}

int main(void) {
    if (!check_have(CHECK_DATA_DIR)) return 77;
    RUN(test_clip_norm);
    RUN(test_clip_value);
    RUN(test_accumulation_matches_big_batch);
    RUN(test_anomaly_names_layer);
    return check_done();
}
