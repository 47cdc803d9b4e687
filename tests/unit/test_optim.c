/* test_optim.c: the optimizer object (core/optim): creation errors, the
 * hyperparameter table and its validation, that a set value is used by the next
 * step, zero_grad, state enumeration, checkpoint round trips and that the
 * vector loops' tail handles every length alike. The update rules themselves
 * are checked against PyTorch by tests/parity/test_parity_optim.c. */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "lathe/optim.h"

static const char *const kinds[] = {"sgd", "adam", "adamw", "adadelta", "rmsprop", "adagrad"};
#define NKINDS 6

/* Two parameters ("a.weight" 11 floats, "a.bias" 3) with fixed values. */
typedef struct fixture {
    float w[11], gw[11], b[3], gb[3];
    lt_param p[2];
} fixture;

static void fixture_init(fixture *f) {
    for (int i = 0; i < 11; i++) {
        f->w[i] = 0.1f * (float)(i - 5);
        f->gw[i] = 0.05f * (float)((i * 7) % 5 - 2) + 0.01f;
    }
    for (int i = 0; i < 3; i++) {
        f->b[i] = 0.3f * (float)i;
        f->gb[i] = -0.2f + 0.1f * (float)i;
    }
    f->p[0] = (lt_param){"a.weight", f->w, f->gw, 11};
    f->p[1] = (lt_param){"a.bias", f->b, f->gb, 3};
}

static void test_unknown_kind(void) {
    fixture f;
    fixture_init(&f);
    lt_err err = {0};
    CHECK(lt_optim_create("adamax", f.p, 2, &err) == NULL);
    CHECK(err.code == LT_ENOTFOUND);
    CHECK_STR_CONTAINS(err.msg, "adamax");
    for (int k = 0; k < NKINDS; k++) CHECK_STR_CONTAINS(err.msg, kinds[k]);
    lt_err_clear(&err);
    CHECK(lt_optim_create(NULL, f.p, 2, &err) == NULL && err.code == LT_ENOTFOUND);
}

static void test_bad_params(void) {
    fixture f;
    fixture_init(&f);
    lt_err err = {0};
    CHECK(lt_optim_create("sgd", f.p, 0, &err) == NULL && err.code == LT_EINVAL);
    CHECK(lt_optim_create("sgd", NULL, 2, &err) == NULL && err.code == LT_EINVAL);
    lt_param dup[2] = {f.p[0], f.p[0]};
    CHECK(lt_optim_create("sgd", dup, 2, &err) == NULL && err.code == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "a.weight");
    lt_param nograd = {"x", f.w, NULL, 11};
    CHECK(lt_optim_create("adam", &nograd, 1, &err) == NULL && err.code == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "grad");
    lt_param noname = {NULL, f.w, f.gw, 11};
    CHECK(lt_optim_create("adam", &noname, 1, &err) == NULL && err.code == LT_EINVAL);
    /* An empty parameter is allowed and left alone. */
    lt_param empty[2] = {f.p[0], {"e", NULL, NULL, 0}};
    lt_optim *o = lt_optim_create("adam", empty, 2, &err);
    CHECK_MSG(o != NULL, "%s", err.msg);
    CHECK(o && lt_optim_step(o, &err) == LT_OK);
    lt_optim_free(o);
}

/* Defaults of every kind, in table order. */
static const struct {
    const char *kind;
    int n;
    const char *names[6];
    double defs[6];
} tables[] = {
    {"sgd", 5, {"lr", "momentum", "dampening", "weight_decay", "nesterov"}, {1e-3, 0, 0, 0, 0}},
    {"adam", 6, {"lr", "beta1", "beta2", "eps", "weight_decay", "amsgrad"}, {1e-3, 0.9, 0.999, 1e-8, 0, 0}},
    {"adamw", 6, {"lr", "beta1", "beta2", "eps", "weight_decay", "amsgrad"}, {1e-3, 0.9, 0.999, 1e-8, 1e-2, 0}},
    {"adadelta", 4, {"lr", "rho", "eps", "weight_decay"}, {1.0, 0.9, 1e-6, 0}},
    {"rmsprop", 6, {"lr", "alpha", "eps", "weight_decay", "momentum", "centered"}, {1e-2, 0.99, 1e-8, 0, 0, 0}},
    {"adagrad", 5, {"lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"}, {1e-2, 0, 0, 0, 1e-10}},
};

static void test_hparam_table(void) {
    fixture f;
    fixture_init(&f);
    lt_err err = {0};
    for (int t = 0; t < NKINDS; t++) {
        lt_optim *o = lt_optim_create(tables[t].kind, f.p, 2, &err);
        CHECK_MSG(o != NULL, "%s", err.msg);
        if (!o) continue;
        CHECK(strcmp(lt_optim_kind(o), tables[t].kind) == 0);
        CHECK(lt_optim_hparam_count(o) == tables[t].n);
        CHECK(lt_optim_hparam_name(o, -1) == NULL && lt_optim_hparam_name(o, tables[t].n) == NULL);
        for (int i = 0; i < tables[t].n; i++) {
            const char *nm = lt_optim_hparam_name(o, i);
            CHECK_MSG(nm && strcmp(nm, tables[t].names[i]) == 0, "%s hparam %d", tables[t].kind, i);
            double v = -1;
            CHECK(lt_optim_get(o, tables[t].names[i], &v, &err) == LT_OK);
            CHECK_NEAR(v, tables[t].defs[i], 1e-15);
        }
        lt_optim_free(o);
    }
}

static void test_unknown_hparam(void) {
    fixture f;
    fixture_init(&f);
    lt_err err = {0};
    lt_optim *o = lt_optim_create("sgd", f.p, 2, &err);
    double v = 42;
    CHECK(lt_optim_get(o, "lrr", &v, &err) == LT_ENOTFOUND);
    CHECK(v == 42);
    CHECK_STR_CONTAINS(err.msg, "lrr");
    CHECK_STR_CONTAINS(err.msg, "momentum");
    CHECK_STR_CONTAINS(err.msg, "nesterov");
    lt_err_clear(&err);
    CHECK(lt_optim_set(o, "beta1", 0.5, &err) == LT_ENOTFOUND); /* an adam name, not sgd's */
    CHECK_STR_CONTAINS(err.msg, "beta1");
    CHECK(lt_optim_set(o, NULL, 0.5, &err) == LT_ENOTFOUND);
    lt_optim_free(o);
}

/* Tries value on kind's hparam: must be refused with a message naming it and
 * leave every hparam unchanged. */
static void expect_refused(lt_optim *o, const char *name, double value) {
    int n = lt_optim_hparam_count(o);
    double before[8], after[8];
    for (int i = 0; i < n; i++) lt_optim_get(o, lt_optim_hparam_name(o, i), &before[i], NULL);
    lt_err err = {0};
    int rc = lt_optim_set(o, name, value, &err);
    CHECK_MSG(rc == LT_EINVAL, "%s %s=%g accepted", lt_optim_kind(o), name, value);
    CHECK_STR_CONTAINS(err.msg, name);
    for (int i = 0; i < n; i++) {
        lt_optim_get(o, lt_optim_hparam_name(o, i), &after[i], NULL);
        CHECK_MSG(memcmp(&before[i], &after[i], sizeof(double)) == 0, "%s %s changed by refused %s=%g",
                  lt_optim_kind(o), lt_optim_hparam_name(o, i), name, value);
    }
}

static void expect_ok(lt_optim *o, const char *name, double value) {
    lt_err err = {0};
    CHECK_MSG(lt_optim_set(o, name, value, &err) == LT_OK, "%s %s=%g: %s", lt_optim_kind(o), name, value, err.msg);
    double v = -1;
    lt_optim_get(o, name, &v, NULL);
    CHECK(v == value);
}

static void test_refused_values(void) {
    fixture f;
    fixture_init(&f);
    lt_err err = {0};
    for (int k = 0; k < NKINDS; k++) {
        lt_optim *o = lt_optim_create(kinds[k], f.p, 2, &err);
        if (!o) continue;
        for (int i = 0; i < lt_optim_hparam_count(o); i++) {
            const char *nm = lt_optim_hparam_name(o, i);
            expect_refused(o, nm, NAN);
            expect_refused(o, nm, INFINITY);
            expect_refused(o, nm, -INFINITY);
            expect_refused(o, nm, -1e-3);
            if (!strcmp(nm, "eps")) expect_refused(o, nm, 0.0);
            if (!strncmp(nm, "beta", 4) || !strcmp(nm, "rho") || !strcmp(nm, "alpha")) {
                expect_refused(o, nm, 1.0);
                expect_ok(o, nm, 0.0);
                expect_ok(o, nm, 0.5);
            }
            if (!strcmp(nm, "amsgrad") || !strcmp(nm, "centered") || !strcmp(nm, "nesterov"))
                expect_refused(o, nm, 0.5);
            if (!strcmp(nm, "dampening")) expect_refused(o, nm, 1.5);
        }
        expect_ok(o, "lr", 0.0);
        expect_ok(o, "lr", 3.0);
        lt_optim_free(o);
    }
}

static void test_nesterov_rules(void) {
    fixture f;
    fixture_init(&f);
    lt_err err = {0};
    lt_optim *o = lt_optim_create("sgd", f.p, 2, &err);
    expect_refused(o, "nesterov", 1); /* momentum is 0 */
    expect_ok(o, "momentum", 0.9);
    expect_ok(o, "dampening", 0.1);
    expect_refused(o, "nesterov", 1); /* dampening is not 0 */
    expect_ok(o, "dampening", 0);
    expect_ok(o, "nesterov", 1);
    expect_refused(o, "momentum", 0);
    expect_refused(o, "dampening", 0.2);
    expect_ok(o, "nesterov", 0);
    expect_ok(o, "momentum", 0);
    lt_optim_free(o);
}

/* lr = 0 leaves the params unchanged; a new lr is used by the next step. */
static void test_set_lr_used(void) {
    fixture f;
    fixture_init(&f);
    lt_err err = {0};
    for (int k = 0; k < NKINDS; k++) {
        fixture_init(&f);
        lt_optim *o = lt_optim_create(kinds[k], f.p, 2, &err);
        if (!o) continue;
        float w0[11];
        memcpy(w0, f.w, sizeof w0);
        expect_ok(o, "lr", 0.0);
        CHECK(lt_optim_step(o, &err) == LT_OK);
        CHECK_MSG(memcmp(w0, f.w, sizeof w0) == 0, "%s moved with lr=0", kinds[k]);
        expect_ok(o, "lr", 0.1);
        CHECK(lt_optim_step(o, &err) == LT_OK);
        CHECK_MSG(memcmp(w0, f.w, sizeof w0) != 0, "%s did not move with lr=0.1", kinds[k]);
        CHECK(lt_optim_steps(o) == 2);
        lt_optim_free(o);
    }
    /* Plain SGD: exactly p - lr*g. */
    fixture_init(&f);
    lt_optim *o = lt_optim_create("sgd", f.p, 2, &err);
    float w0[11];
    memcpy(w0, f.w, sizeof w0);
    expect_ok(o, "lr", 0.5);
    lt_optim_step(o, &err);
    for (int i = 0; i < 11; i++) CHECK_NEAR(f.w[i], w0[i] - 0.5f * f.gw[i], 1e-7);
    lt_optim_free(o);
}

static void test_zero_grad(void) {
    fixture f;
    fixture_init(&f);
    lt_err err = {0};
    lt_optim *o = lt_optim_create("rmsprop", f.p, 2, &err);
    lt_optim_zero_grad(o);
    for (int i = 0; i < 11; i++) CHECK(f.gw[i] == 0.0f);
    for (int i = 0; i < 3; i++) CHECK(f.gb[i] == 0.0f);
    float w0[11];
    memcpy(w0, f.w, sizeof w0);
    lt_optim_step(o, &err); /* zero grads: rmsprop does not move */
    CHECK(memcmp(w0, f.w, sizeof w0) == 0);
    lt_optim_free(o);
}

static void test_state_enumeration(void) {
    static const struct {
        const char *kind;
        int nslots;
        const char *slots[3];
    } st[] = {
        {"sgd", 1, {"momentum_buffer"}},
        {"adam", 3, {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}},
        {"adamw", 3, {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}},
        {"adadelta", 2, {"square_avg", "acc_delta"}},
        {"rmsprop", 3, {"square_avg", "momentum_buffer", "grad_avg"}},
        {"adagrad", 1, {"sum"}},
    };
    fixture f;
    fixture_init(&f);
    lt_err err = {0};
    for (int k = 0; k < NKINDS; k++) {
        lt_optim *o = lt_optim_create(st[k].kind, f.p, 2, &err);
        if (!o) continue;
        CHECK(lt_optim_state_count(o) == 2 * st[k].nslots);
        float *prev_end = NULL;
        for (int i = 0; i < lt_optim_state_count(o); i++) {
            const char *name = NULL;
            float *data = NULL;
            size_t n = 0;
            CHECK(lt_optim_state_get(o, i, &name, &data, &n) == LT_OK);
            int p = i / st[k].nslots, s = i % st[k].nslots;
            char want[64];
            snprintf(want, sizeof want, "%s.%s", f.p[p].name, st[k].slots[s]);
            CHECK_MSG(name && strcmp(name, want) == 0, "%s state %d: %s, want %s", st[k].kind, i, name, want);
            CHECK(n == f.p[p].n);
            CHECK(data != NULL && ((uintptr_t)data % 64) == 0);
            CHECK(prev_end == NULL || data >= prev_end); /* buffers do not overlap */
            prev_end = data + n;
            for (size_t j = 0; j < n; j++) CHECK(data[j] == 0.0f); /* zeroed */
        }
        CHECK(lt_optim_state_get(o, -1, NULL, NULL, NULL) == LT_EINVAL);
        CHECK(lt_optim_state_get(o, lt_optim_state_count(o), NULL, NULL, NULL) == LT_EINVAL);
        /* the flat snapshot: every buffer in order, and back */
        size_t total = lt_optim_state_floats(o), at = 0;
        CHECK(total == (size_t)st[k].nslots * (f.p[0].n + f.p[1].n));
        float *snap = malloc(total * sizeof(float)), *back = malloc(total * sizeof(float));
        for (size_t j = 0; j < total; j++) snap[j] = (float)j;
        lt_optim_state_load(o, snap, NULL);
        for (int i = 0; i < lt_optim_state_count(o); i++) {
            float *data;
            size_t n;
            lt_optim_state_get(o, i, NULL, &data, &n);
            for (size_t j = 0; j < n; j++) CHECK(data[j] == (float)(at + j));
            at += n;
        }
        lt_optim_state_save(o, back, NULL);
        CHECK(memcmp(snap, back, total * sizeof(float)) == 0);
        free(snap), free(back);
        lt_optim_free(o);
    }
}

/* Runs kind with a few non-default hparams for `steps` steps of grads that
 * change each step (seeded by the step number). */
static void set_cfg(lt_optim *o) {
    const char *k = lt_optim_kind(o);
    lt_optim_set(o, "lr", 0.05, NULL);
    if (!strcmp(k, "sgd")) {
        lt_optim_set(o, "momentum", 0.9, NULL);
        lt_optim_set(o, "dampening", 0.25, NULL);
    }
    if (!strcmp(k, "adam") || !strcmp(k, "adamw")) lt_optim_set(o, "amsgrad", 1, NULL);
    if (!strcmp(k, "rmsprop")) {
        lt_optim_set(o, "momentum", 0.5, NULL);
        lt_optim_set(o, "centered", 1, NULL);
    }
    if (!strcmp(k, "adagrad")) {
        lt_optim_set(o, "lr_decay", 0.1, NULL);
        lt_optim_set(o, "initial_accumulator_value", 0.2, NULL);
    }
}

static void fill_grads(fixture *f, int step) {
    for (int i = 0; i < 11; i++) f->gw[i] = 0.1f * (float)(((i + 3) * (step + 5)) % 7 - 3) + 0.01f * (float)step;
    for (int i = 0; i < 3; i++) f->gb[i] = 0.05f * (float)((i * step) % 5) - 0.1f;
}

/* A checkpoint (params, state buffers, step count) copied into a fresh
 * optimizer continues exactly like the original. */
static void test_checkpoint_roundtrip(void) {
    lt_err err = {0};
    for (int k = 0; k < NKINDS; k++) {
        fixture a, b;
        fixture_init(&a);
        fixture_init(&b);
        lt_optim *oa = lt_optim_create(kinds[k], a.p, 2, &err);
        lt_optim *ob = lt_optim_create(kinds[k], b.p, 2, &err);
        if (!oa || !ob) {
            CHECK(0);
            continue;
        }
        set_cfg(oa);
        set_cfg(ob);
        for (int s = 1; s <= 3; s++) {
            fill_grads(&a, s);
            lt_optim_step(oa, &err);
        }
        memcpy(b.w, a.w, sizeof a.w);
        memcpy(b.b, a.b, sizeof a.b);
        for (int i = 0; i < lt_optim_state_count(oa); i++) {
            float *da, *db;
            size_t na, nb;
            lt_optim_state_get(oa, i, NULL, &da, &na);
            lt_optim_state_get(ob, i, NULL, &db, &nb);
            CHECK(na == nb);
            memcpy(db, da, na * sizeof(float));
        }
        lt_optim_set_steps(ob, lt_optim_steps(oa));
        CHECK(lt_optim_steps(ob) == 3);
        for (int s = 4; s <= 6; s++) {
            fill_grads(&a, s);
            fill_grads(&b, s);
            lt_optim_step(oa, &err);
            lt_optim_step(ob, &err);
        }
        CHECK_MSG(memcmp(a.w, b.w, sizeof a.w) == 0 && memcmp(a.b, b.b, sizeof a.b) == 0, "%s: restored run differs",
                  kinds[k]);
        lt_optim_free(oa);
        lt_optim_free(ob);
    }
    fixture f;
    fixture_init(&f);
    lt_optim *o = lt_optim_create("sgd", f.p, 2, &err);
    lt_optim_set_steps(o, -5);
    CHECK(lt_optim_steps(o) == 0);
    lt_optim_free(o);
}

/* One parameter of 37 floats (four full vectors and a tail of 5) must update
 * exactly like 37 parameters of one float each (each a tail alone). */
static void test_tail_lengths(void) {
    enum { N = 37 };
    lt_err err = {0};
    for (int k = 0; k < NKINDS; k++) {
        float big[N], gbig[N], small[N], gsmall[N];
        lt_param one = {"big", big, gbig, N}, many[N];
        char names[N][8];
        for (int i = 0; i < N; i++) {
            big[i] = small[i] = 0.02f * (float)(i - 18);
            snprintf(names[i], sizeof names[i], "s%d", i);
            many[i] = (lt_param){names[i], &small[i], &gsmall[i], 1};
        }
        lt_optim *ob = lt_optim_create(kinds[k], &one, 1, &err);
        lt_optim *os = lt_optim_create(kinds[k], many, N, &err);
        if (!ob || !os) {
            CHECK(0);
            continue;
        }
        set_cfg(ob);
        set_cfg(os);
        lt_optim_set(ob, "weight_decay", 0.01, NULL);
        lt_optim_set(os, "weight_decay", 0.01, NULL);
        for (int s = 1; s <= 4; s++) {
            for (int i = 0; i < N; i++) gbig[i] = gsmall[i] = 0.1f * (float)((i * (s + 2)) % 9 - 4) + 0.003f * s;
            lt_optim_step(ob, &err);
            lt_optim_step(os, &err);
        }
        CHECK_MSG(memcmp(big, small, sizeof big) == 0, "%s: vector and tail paths differ", kinds[k]);
        lt_optim_free(ob);
        lt_optim_free(os);
    }
}

/* adagrad's sums start at initial_accumulator_value set before the first step;
 * sgd's first momentum step copies the gradient (no dampening). */
static void test_first_step_state(void) {
    fixture f;
    fixture_init(&f);
    lt_err err = {0};
    lt_optim *o = lt_optim_create("adagrad", f.p, 2, &err);
    expect_ok(o, "initial_accumulator_value", 0.5);
    lt_optim_step(o, &err);
    float *sum;
    lt_optim_state_get(o, 0, NULL, &sum, NULL);
    for (int i = 0; i < 11; i++) CHECK_NEAR(sum[i], 0.5f + f.gw[i] * f.gw[i], 1e-6);
    lt_optim_free(o);

    fixture_init(&f);
    o = lt_optim_create("sgd", f.p, 2, &err);
    expect_ok(o, "momentum", 0.9);
    expect_ok(o, "dampening", 0.5);
    float *buf;
    lt_optim_state_get(o, 0, NULL, &buf, NULL);
    lt_optim_step(o, &err);
    for (int i = 0; i < 11; i++) CHECK(buf[i] == f.gw[i]);
    lt_optim_step(o, &err);
    for (int i = 0; i < 11; i++) CHECK_NEAR(buf[i], 0.9f * f.gw[i] + 0.5f * f.gw[i], 1e-6);
    lt_optim_free(o);
}

int main(void) {
    RUN(test_unknown_kind);
    RUN(test_bad_params);
    RUN(test_hparam_table);
    RUN(test_unknown_hparam);
    RUN(test_refused_values);
    RUN(test_nesterov_rules);
    RUN(test_set_lr_used);
    RUN(test_zero_grad);
    RUN(test_state_enumeration);
    RUN(test_checkpoint_roundtrip);
    RUN(test_tail_lengths);
    RUN(test_first_step_state);
    return check_done();
}
