/* test_parity_optim.c: every optimizer against torch.optim. The fixture
 * (tests/parity/fixtures/optim.fix, made by gen_optim_fixtures.py) holds three
 * initial parameters, five gradients and, per configuration, PyTorch's
 * parameters after each step and its state after the last; lathe replays the
 * same steps and must match at relative error <= 1e-5 (f32 arithmetic in the
 * same order as ATen's kernels; the difference left is rounding, e.g. ATen's
 * vectorised lerp uses a fused multiply-add). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixture.h"
#include "lathe/optim.h"

#define TOL 1e-5
#define STEPS 5
#define NP 3

static const char *const pnames[NP] = {"w1", "b1", "w2"};

typedef struct hpv {
    const char *name;
    double v;
} hpv;

/* Same table as CONFIGS in gen_optim_fixtures.py (checked against the hp.*
 * arrays the fixture records). */
static const struct cfg {
    const char *name, *kind;
    hpv hp[5];
} cfgs[] = {
    {"sgd_plain", "sgd", {{"lr", 0.1}}},
    {"sgd_nesterov", "sgd", {{"lr", 0.05}, {"momentum", 0.9}, {"nesterov", 1}, {"weight_decay", 0.01}}},
    {"sgd_dampening", "sgd", {{"lr", 0.05}, {"momentum", 0.8}, {"dampening", 0.3}}},
    {"adam", "adam", {{"lr", 0.01}}},
    {"adam_amsgrad", "adam", {{"lr", 0.01}, {"beta2", 0.9}, {"amsgrad", 1}, {"weight_decay", 0.05}}},
    {"adamw", "adamw", {{"lr", 0.01}, {"weight_decay", 0.1}}},
    {"adadelta_keras", "adadelta", {{"lr", 1.0}, {"rho", 0.95}, {"eps", 1e-7}}},
    {"adadelta_default", "adadelta", {{NULL, 0}}},
    {"rmsprop", "rmsprop", {{"lr", 0.01}}},
    {"rmsprop_centered", "rmsprop", {{"lr", 0.01}, {"centered", 1}, {"momentum", 0.9}, {"weight_decay", 0.01}}},
    {"adagrad",
     "adagrad",
     {{"lr", 0.1}, {"lr_decay", 0.05}, {"weight_decay", 0.1}, {"initial_accumulator_value", 0.1}}},
};
#define NCFG ((int)(sizeof cfgs / sizeof cfgs[0]))

static fx_file fx;

static const fx_array *getf(const char *fmt, const char *a, const char *b, const char *c) {
    char name[128];
    snprintf(name, sizeof name, fmt, a, b, c);
    return fx_get(&fx, name);
}

static void run_cfg(const struct cfg *c) {
    float *data[NP] = {0}, *grad[NP] = {0};
    lt_param params[NP];
    for (int p = 0; p < NP; p++) {
        const fx_array *a = getf("init.%s%s%s", pnames[p], "", "");
        CHECK(a != NULL);
        if (!a) return;
        data[p] = malloc(a->n * sizeof(float));
        grad[p] = malloc(a->n * sizeof(float));
        memcpy(data[p], a->data, a->n * sizeof(float));
        params[p] = (lt_param){pnames[p], data[p], grad[p], a->n};
    }
    lt_err err = {0};
    lt_optim *o = lt_optim_create(c->kind, params, NP, &err);
    CHECK_MSG(o != NULL, "%s: %s", c->name, err.msg);
    if (!o) goto out;

    int nhp_set = 0;
    for (int h = 0; h < 5 && c->hp[h].name; h++, nhp_set++) {
        CHECK_MSG(lt_optim_set(o, c->hp[h].name, c->hp[h].v, &err) == LT_OK, "%s: %s", c->name, err.msg);
        const fx_array *ref = getf("%s.hp.%s%s", c->name, c->hp[h].name, "");
        CHECK_MSG(ref && ref->n == 1 && fabs(ref->data[0] - c->hp[h].v) <= 1e-6 * fabs(c->hp[h].v),
                  "%s.%s differs from the fixture", c->name, c->hp[h].name);
    }
    /* The fixture must not hold hparams this table lacks. */
    char prefix[64];
    int nhp_fx = 0;
    snprintf(prefix, sizeof prefix, "%s.hp.", c->name);
    for (int i = 0; i < fx.count; i++) nhp_fx += strncmp(fx.arrays[i].name, prefix, strlen(prefix)) == 0;
    CHECK_MSG(nhp_fx == nhp_set, "%s: fixture has %d hparams, table %d", c->name, nhp_fx, nhp_set);

    for (int k = 1; k <= STEPS; k++) {
        char step[16], gname[16];
        snprintf(step, sizeof step, "step%d", k);
        snprintf(gname, sizeof gname, "%d", k);
        for (int p = 0; p < NP; p++) {
            const fx_array *g = getf("grad.%s.%s%s", gname, pnames[p], "");
            CHECK(g && g->n == params[p].n);
            if (g) memcpy(grad[p], g->data, g->n * sizeof(float));
        }
        CHECK(lt_optim_step(o, &err) == LT_OK);
        CHECK(lt_optim_steps(o) == k);
        for (int p = 0; p < NP; p++) {
            const fx_array *ref = getf("%s.%s.%s", c->name, step, pnames[p]);
            CHECK(ref && ref->n == params[p].n);
            if (!ref) continue;
            double e = check_max_rel_err(data[p], ref->data, ref->n);
            CHECK_MSG(e <= TOL, "%s step %d %s: rel err %.3g", c->name, k, pnames[p], e);
        }
    }

    /* State after the last step, for every buffer PyTorch holds. */
    int compared = 0;
    for (int i = 0; i < lt_optim_state_count(o); i++) {
        const char *sname;
        float *sdata;
        size_t n;
        CHECK(lt_optim_state_get(o, i, &sname, &sdata, &n) == LT_OK);
        char full[128];
        snprintf(full, sizeof full, "%s.state.%s", c->name, sname);
        for (int j = 0; j < fx.count; j++) {
            if (strcmp(fx.arrays[j].name, full) != 0) continue;
            CHECK(fx.arrays[j].n == n);
            double e = check_max_rel_err(sdata, fx.arrays[j].data, n);
            CHECK_MSG(e <= TOL, "%s: rel err %.3g", full, e);
            compared++;
        }
    }
    /* Every state array in the fixture was found under lathe's name. */
    int in_fx = 0;
    snprintf(prefix, sizeof prefix, "%s.state.", c->name);
    for (int i = 0; i < fx.count; i++) in_fx += strncmp(fx.arrays[i].name, prefix, strlen(prefix)) == 0;
    CHECK_MSG(compared == in_fx && (in_fx > 0) == (strcmp(c->name, "sgd_plain") != 0),
              "%s: compared %d of %d state arrays", c->name, compared, in_fx);
    lt_optim_free(o);
out:
    for (int p = 0; p < NP; p++) {
        free(data[p]);
        free(grad[p]);
    }
}

static void test_all_configs(void) {
    for (int i = 0; i < NCFG; i++) run_cfg(&cfgs[i]);
}

int main(void) {
    if (fx_load(&fx, LATHE_FIXTURE_DIR "/optim.fix") != 0) {
        fprintf(stderr, "cannot load optim.fix\n");
        return 1;
    }
    RUN(test_all_configs);
    fx_free(&fx);
    return check_done();
}
