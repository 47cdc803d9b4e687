/* test_sched.c: learning-rate schedulers apart from PyTorch parity (that is
 * tests/parity/test_parity_sched.c): spec parsing and its error messages, the
 * trainer fields, hand overrides that rescale a schedule, the checkpoint state
 * line (round trip continues identically; malformed lines refused without a
 * change), onecycle's end, and lt_sched_apply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lathe/sched.h"

/* Expects create to fail with code and a message containing each needle. */
static void expect_fail(const char *spec, double base, int code, const char *needle1, const char *needle2) {
    lt_err err = {0};
    lt_sched *s = lt_sched_create(spec, base, &err);
    CHECK_MSG(s == NULL, "spec '%s' was accepted", spec ? spec : "(null)");
    lt_sched_free(s);
    CHECK_MSG(err.code == code, "spec '%s': code %d, want %d (%s)", spec ? spec : "(null)", err.code, code, err.msg);
    CHECK_MSG(strchr(err.msg, '\n') == NULL && err.msg[0], "spec '%s': message '%s'", spec, err.msg);
    if (needle1) CHECK_STR_CONTAINS(err.msg, needle1);
    if (needle2) CHECK_STR_CONTAINS(err.msg, needle2);
}

static void test_spec_errors(void) {
    expect_fail("stepp:step_size=3", 0.1, LT_ENOTFOUND, "stepp", "warmup_cosine");
    expect_fail("", 0.1, LT_EINVAL, "no kind", "plateau");
    expect_fail(NULL, 0.1, LT_EINVAL, "NULL", NULL);
    expect_fail("step:step_size=3,gama=0.5", 0.1, LT_ENOTFOUND, "'gama'", "gamma");
    expect_fail("cosine:t_max=10,patience=3", 0.1, LT_ENOTFOUND, "'patience'", "eta_min");
    expect_fail("step", 0.1, LT_EINVAL, "step_size", NULL);
    expect_fail("step:gamma=0.5", 0.1, LT_EINVAL, "needs step_size", NULL);
    expect_fail("step:step_size=0", 0.1, LT_EINVAL, "step_size=0", NULL);
    expect_fail("step:step_size=2.5", 0.1, LT_EINVAL, "step_size=2.5", "integer");
    expect_fail("step:step_size=3,gamma=abc", 0.1, LT_EINVAL, "gamma=abc", "number");
    expect_fail("step:step_size=3,gamma=nan", 0.1, LT_EINVAL, "gamma=nan", NULL);
    expect_fail("step:step_size=3,gamma=inf", 0.1, LT_EINVAL, "gamma=inf", NULL);
    expect_fail("step:step_size=3,gamma=-1", 0.1, LT_EINVAL, "gamma=-1", "range");
    expect_fail("step:step_size=3,gamma=0.5x", 0.1, LT_EINVAL, "gamma=0.5x", NULL);
    expect_fail("step:step_size=3,step_size=4", 0.1, LT_EINVAL, "step_size given twice", NULL);
    expect_fail("cosine:t_max=3,T_max=4", 0.1, LT_EINVAL, "t_max given twice", NULL);
    expect_fail("step:step_size", 0.1, LT_EINVAL, "'step_size' is not key=value", NULL);
    expect_fail("step:step_size=", 0.1, LT_EINVAL, "step_size= has no value", NULL);
    expect_fail("step:=3", 0.1, LT_EINVAL, "empty key", NULL);
    expect_fail("step:step_size=3,", 0.1, LT_EINVAL, "key=value", NULL);
    expect_fail("exponential", 0.1, LT_EINVAL, "gamma", NULL);
    expect_fail("multistep:gamma=0.5", 0.1, LT_EINVAL, "milestones", NULL);
    expect_fail("multistep:milestones=30;10", 0.1, LT_EINVAL, "non-decreasing", NULL);
    expect_fail("multistep:milestones=30;;80", 0.1, LT_EINVAL, "milestones", NULL);
    expect_fail("multistep:milestones=-1;3", 0.1, LT_EINVAL, "milestones=-1", NULL);
    expect_fail("cosine:eta_min=0", 0.1, LT_EINVAL, "t_max", NULL);
    expect_fail("warmup_cosine:t_max=10", 0.1, LT_EINVAL, "warmup", NULL);
    expect_fail("warmup_cosine:warmup=3,t_max=10,start_factor=0", 0.1, LT_EINVAL, "start_factor=0", NULL);
    expect_fail("warmup_cosine:warmup=3,t_max=10,end_factor=1.5", 0.1, LT_EINVAL, "end_factor=1.5", NULL);
    expect_fail("onecycle:max_lr=0.1", 0.1, LT_EINVAL, "total_steps", NULL);
    expect_fail("onecycle:max_lr=0.1,epochs=3", 0.1, LT_EINVAL, "steps_per_epoch", NULL);
    expect_fail("onecycle:total_steps=10,epochs=3,steps_per_epoch=2", 0.1, LT_EINVAL, "not both", NULL);
    expect_fail("onecycle:total_steps=10", 0.0, LT_EINVAL, "max_lr", NULL);
    expect_fail("onecycle:total_steps=10,pct_start=1.5", 0.1, LT_EINVAL, "pct_start=1.5", NULL);
    expect_fail("onecycle:total_steps=10,anneal_strategy=cosine", 0.1, LT_EINVAL, "anneal_strategy=cosine", NULL);
    expect_fail("onecycle:total_steps=10,three_phase=yes", 0.1, LT_EINVAL, "three_phase=yes", NULL);
    /* PyTorch divides by zero here: pct_start*total_steps = 1, or pct_start 1. */
    expect_fail("onecycle:total_steps=10,pct_start=0.1", 0.1, LT_EINVAL, "phase 1", NULL);
    expect_fail("onecycle:total_steps=10,pct_start=1", 0.1, LT_EINVAL, "phase 2", NULL);
    expect_fail("plateau:factor=1", 0.1, LT_EINVAL, "factor=1", NULL);
    expect_fail("plateau:mode=median", 0.1, LT_EINVAL, "mode=median", "min or max");
    expect_fail("plateau:threshold_mode=pct", 0.1, LT_EINVAL, "threshold_mode=pct", NULL);
    expect_fail("plateau:patience=-1", 0.1, LT_EINVAL, "patience=-1", NULL);
    expect_fail("plateau:interval=batch", 0.1, LT_EINVAL, "interval=batch", "epoch or step");
    expect_fail("plateau:frequency=0", 0.1, LT_EINVAL, "frequency=0", NULL);
    expect_fail("plateau:monitor=val loss", 0.1, LT_EINVAL, "monitor=val loss", NULL);
    expect_fail("exponential:gamma=0.9", -0.1, LT_EINVAL, "base lr", NULL);
    expect_fail("exponential:gamma=0.9", NAN, LT_EINVAL, "base lr", NULL);
    char longspec[1200];
    memset(longspec, ' ', sizeof longspec - 1);
    longspec[sizeof longspec - 1] = '\0';
    expect_fail(longspec, 0.1, LT_EINVAL, "longer", NULL);
}

static void test_fields(void) {
    lt_err err = {0};
    lt_sched *s = lt_sched_create("plateau", 0.1, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    if (!s) return;
    CHECK(strcmp(lt_sched_kind(s), "plateau") == 0);
    CHECK(strcmp(lt_sched_monitor(s), "val_loss") == 0);
    CHECK(lt_sched_interval(s) == LT_SCHED_EPOCH);
    CHECK(lt_sched_frequency(s) == 1);
    CHECK(lt_sched_needs_metric(s) == 1);
    lt_sched_free(s);

    const char *spec = " step : step_size=3 , gamma = 0.5, interval=step,frequency=4,monitor=train/loss_epoch ";
    s = lt_sched_create(spec, 1.0, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    if (!s) return;
    CHECK(strcmp(lt_sched_kind(s), "step") == 0);
    CHECK(strcmp(lt_sched_spec(s), spec) == 0);
    CHECK(lt_sched_interval(s) == LT_SCHED_STEP);
    CHECK(lt_sched_frequency(s) == 4);
    CHECK(strcmp(lt_sched_monitor(s), "train/loss_epoch") == 0);
    CHECK(lt_sched_needs_metric(s) == 0);
    /* StepLR by hand: 1 1 1 0.5 0.5 0.5 0.25 */
    const double want[] = {1, 1, 1, 0.5, 0.5, 0.5, 0.25};
    for (int k = 0; k < 7; k++) {
        if (k) CHECK(lt_sched_step(s, NAN, &err) == LT_OK);
        CHECK_NEAR(lt_sched_lr(s), want[k], 0);
        CHECK(lt_sched_steps(s) == k);
    }
    lt_sched_free(s);

    s = lt_sched_create("cosine:t_max=10,interval=epoch", 0.1, &err);
    CHECK(s && strcmp(lt_sched_monitor(s), "") == 0 && lt_sched_interval(s) == LT_SCHED_EPOCH);
    lt_sched_free(s);
    /* warmup_cosine starts at base*start_factor and reaches base at warmup. */
    s = lt_sched_create("warmup_cosine:warmup=4,start_factor=0.25,t_max=10", 0.2, &err);
    CHECK(s != NULL);
    if (!s) return;
    CHECK_NEAR(lt_sched_lr(s), 0.05, 1e-15);
    for (int k = 0; k < 4; k++) lt_sched_step(s, NAN, &err);
    CHECK_NEAR(lt_sched_lr(s), 0.2, 1e-15);
    for (int k = 0; k < 10; k++) lt_sched_step(s, NAN, &err);
    CHECK_NEAR(lt_sched_lr(s), 0.0, 1e-15);
    lt_sched_free(s);
}

/* Steps a and b n times each (with metric(k) for plateau) and returns the
 * largest relative difference of their lrs. */
static double metric_at(int k) { return 1.0 / (1 + k % 13) + 0.01 * (k % 3); }

static double max_rel_diff(lt_sched *a, lt_sched *b, int n) {
    lt_err err = {0};
    double worst = 0;
    for (int k = 0; k < n; k++) {
        int ra = lt_sched_step(a, metric_at(k), &err), rb = lt_sched_step(b, metric_at(k), &err);
        if (ra != rb) return INFINITY;
        double x = lt_sched_lr(a), y = lt_sched_lr(b);
        double d = x == y ? 0 : fabs(x - y) / fmax(fabs(y), 1e-300);
        if (!(d <= worst)) worst = d;
    }
    return worst;
}

static void test_override_rescale(void) {
    lt_err err = {0};
    /* warmup_cosine in its warmup: continues as if created with base*k. */
    lt_sched *a = lt_sched_create("warmup_cosine:warmup=6,start_factor=0.1,t_max=30,eta_min=0.001", 0.1, &err);
    lt_sched *b = lt_sched_create("warmup_cosine:warmup=6,start_factor=0.1,t_max=30,eta_min=0.001", 0.3, &err);
    CHECK(a && b);
    if (!a || !b) goto out1;
    for (int k = 0; k < 2; k++) lt_sched_step(a, NAN, &err), lt_sched_step(b, NAN, &err);
    CHECK(lt_sched_override(a, 3 * lt_sched_lr(a), &err) == LT_OK);
    CHECK_NEAR(lt_sched_lr(a), lt_sched_lr(b), 1e-15);
    CHECK(max_rel_diff(a, b, 50) < 1e-12);
out1:
    lt_sched_free(a);
    lt_sched_free(b);

    /* ... and in its cosine phase, as PyTorch after a hand-set lr: the next
     * lr is eta_min + ratio * (lr - eta_min). */
    a = lt_sched_create("warmup_cosine:warmup=2,t_max=10,eta_min=0.01", 0.1, &err);
    CHECK(a != NULL);
    if (a) {
        for (int k = 0; k < 5; k++) lt_sched_step(a, NAN, &err);
        CHECK(lt_sched_override(a, 0.5, &err) == LT_OK);
        lt_sched_step(a, NAN, &err);
        double pi = 3.14159265358979323846;
        double ratio = (1 + cos(pi * 4 / 10)) / (1 + cos(pi * 3 / 10));
        CHECK_NEAR(lt_sched_lr(a), 0.01 + ratio * (0.5 - 0.01), 1e-14);
        lt_sched_free(a);
    }

    /* onecycle: the curve scales through the new value. */
    a = lt_sched_create("onecycle:max_lr=0.1,total_steps=80,anneal_strategy=linear", 0.01, &err);
    b = lt_sched_create("onecycle:max_lr=0.05,total_steps=80,anneal_strategy=linear", 0.01, &err);
    CHECK(a && b);
    if (a && b) {
        for (int k = 0; k < 30; k++) lt_sched_step(a, NAN, &err), lt_sched_step(b, NAN, &err);
        CHECK(lt_sched_override(a, lt_sched_lr(a) / 2, &err) == LT_OK);
        CHECK(max_rel_diff(a, b, 50) < 1e-12);
    }
    lt_sched_free(a);
    lt_sched_free(b);

    /* Refusals change nothing. */
    a = lt_sched_create("warmup_cosine:warmup=3,t_max=10", 0.0, &err);
    CHECK(a != NULL);
    if (a) {
        CHECK(lt_sched_override(a, 0.1, &err) == LT_ESTATE);
        CHECK_STR_CONTAINS(err.msg, "rescale");
        CHECK(lt_sched_lr(a) == 0.0);
        CHECK(lt_sched_override(a, -1, &err) == LT_EINVAL);
        CHECK(lt_sched_override(a, NAN, &err) == LT_EINVAL);
        CHECK(lt_sched_override(a, INFINITY, &err) == LT_EINVAL);
        CHECK(lt_sched_lr(a) == 0.0);
        lt_sched_free(a);
    }
    /* plateau: the lr is simply the new one, and later cuts apply to it. */
    a = lt_sched_create("plateau:patience=0,factor=0.5", 0.1, &err);
    CHECK(a != NULL);
    if (a) {
        lt_sched_step(a, 1.0, &err);
        CHECK(lt_sched_override(a, 0.8, &err) == LT_OK);
        lt_sched_step(a, 2.0, &err); /* worse: cut at once */
        CHECK_NEAR(lt_sched_lr(a), 0.4, 1e-15);
        lt_sched_free(a);
    }
}

static const char *const state_specs[] = {
    "step:step_size=7,gamma=0.5",
    "multistep:milestones=3;9;9;20,gamma=0.3",
    "exponential:gamma=0.97",
    "cosine:t_max=11,eta_min=0.001",
    "warmup_cosine:warmup=5,start_factor=0.01,t_max=20,eta_min=1e-4",
    "warmup_cosine:warmup=40,t_max=20",
    "onecycle:max_lr=0.3,total_steps=60,three_phase=1",
    "plateau:mode=max,factor=0.5,patience=1,cooldown=2,min_lr=1e-4",
    "plateau:threshold_mode=abs,threshold=0.01,patience=2",
};
#define NSTATE ((int)(sizeof state_specs / sizeof state_specs[0]))

/* Saves a after `at` steps (with a hand override at step 11 when at > 11),
 * loads the line into a fresh b, and checks both then run identically; every
 * save point from 0 to 30 is tried so the plateau counters are caught mid-way. */
static void test_state_round_trip(void) {
    lt_err err = {0};
    char st[LT_SCHED_STATE_MAX];
    for (int i = 0; i < NSTATE; i++) {
        for (int at = 0; at <= 30; at++) {
            lt_sched *a = lt_sched_create(state_specs[i], 0.1, &err);
            lt_sched *b = lt_sched_create(state_specs[i], 0.1, &err);
            CHECK_MSG(a && b, "%s: %s", state_specs[i], err.msg);
            if (!a || !b) goto next;
            for (int k = 0; k < at; k++) {
                lt_sched_step(a, metric_at(k), &err);
                if (k == 11) CHECK(lt_sched_override(a, lt_sched_lr(a) * 0.7, &err) == LT_OK);
            }
            CHECK(lt_sched_state_str(a, st, sizeof st, &err) == LT_OK);
            CHECK(strchr(st, ' ') == NULL);
            CHECK_MSG(lt_sched_state_load(b, st, &err) == LT_OK, "%s: %s (%s)", state_specs[i], err.msg, st);
            CHECK(lt_sched_lr(a) == lt_sched_lr(b) && lt_sched_steps(a) == lt_sched_steps(b));
            double d = max_rel_diff(a, b, 30);
            CHECK_MSG(d == 0, "%s saved at %d: after load the runs differ by %g", state_specs[i], at, d);
            /* Too small a buffer is refused. */
            CHECK(lt_sched_state_str(a, st, 10, &err) == LT_EINVAL);
        next:
            lt_sched_free(a);
            lt_sched_free(b);
        }
    }
}

static void test_state_errors(void) {
    lt_err err = {0};
    lt_sched *s = lt_sched_create("plateau:cooldown=2", 0.1, &err);
    lt_sched *c = lt_sched_create("onecycle:total_steps=10", 0.1, &err);
    CHECK(s && c);
    if (!s || !c) goto out;
    const char *bad[] = {
        NULL,
        "",
        "lt2:plateau:e=1,lr=0.1,base=0.1,best=1,bad=0,cool=0",
        "lt1:step:e=1,lr=0.1,base=0.1",
        "lt1:plateau",
        "lt1:plateau:e=1,lr=0.1,base=0.1,best=1,bad=0",
        "lt1:plateau:e=1,lr=0.1,base=0.1,best=1,bad=0,cool=0,cool=0",
        "lt1:plateau:e=1,lr=0.1,base=0.1,best=1,bad=0,cool=0,x=1",
        "lt1:plateau:e=1,lr=0.1,base=0.1,best=1,bad=0,cool=3",
        "lt1:plateau:e=1.5,lr=0.1,base=0.1,best=1,bad=0,cool=0",
        "lt1:plateau:e=-1,lr=0.1,base=0.1,best=1,bad=0,cool=0",
        "lt1:plateau:e=1,lr=nan,base=0.1,best=1,bad=0,cool=0",
        "lt1:plateau:e=1,lr=inf,base=0.1,best=1,bad=0,cool=0",
        "lt1:plateau:e=1,lr=0.1,base=-0.1,best=1,bad=0,cool=0",
        "lt1:plateau:e=1,lr=0.1x,base=0.1,best=1,bad=0,cool=0",
        "lt1:plateau:e=1,lr=,base=0.1,best=1,bad=0,cool=0",
        "lt1:plateau:e=1,lr=0.1,base=0.1,best=nan,bad=0,cool=0",
        "lt1:plateau:e=1;lr=0.1,base=0.1,best=1,bad=0,cool=0",
        "lt1:plateau:e=1,lr=0.1,base=0.1,best=1,bad=0,cool=0,lo=1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(lt_sched_state_load(s, bad[i], &err) == LT_EFORMAT, "accepted '%s'", bad[i] ? bad[i] : "NULL");
        CHECK(lt_sched_steps(s) == 0 && lt_sched_lr(s) == 0.1);
    }
    CHECK(lt_sched_state_load(c, "lt1:onecycle:e=11,lr=0.1,base=0.1,lo=0.1,hi=0.1,lo_end=0.1", &err) == LT_EFORMAT);
    CHECK(lt_sched_state_load(c, "lt1:onecycle:e=3,lr=0.1,base=0.1,lo=0.1,hi=0,lo_end=0.1", &err) == LT_EFORMAT);
    CHECK(lt_sched_state_load(c, "lt1:onecycle:e=10,lr=0.1,base=0.1,lo=0.1,hi=1,lo_end=0.1", &err) == LT_OK);
    CHECK(lt_sched_steps(c) == 10);
    /* A plateau's initial best (+inf) survives the text round trip. */
    char st[LT_SCHED_STATE_MAX];
    CHECK(lt_sched_state_str(s, st, sizeof st, &err) == LT_OK);
    CHECK_STR_CONTAINS(st, "best=inf");
    CHECK(lt_sched_state_load(s, st, &err) == LT_OK);

    /* Mutated state lines: never a crash; a refusal changes nothing. */
    lt_sched *p = lt_sched_create("plateau:cooldown=2,patience=1", 0.1, &err);
    CHECK(p != NULL);
    for (int k = 0; p && k < 5; k++) lt_sched_step(p, metric_at(k), &err);
    if (p) CHECK(lt_sched_state_str(p, st, sizeof st, &err) == LT_OK);
    unsigned rng = 12345;
    for (int t = 0; p && t < 20000; t++) {
        char m[LT_SCHED_STATE_MAX];
        strcpy(m, st);
        size_t n = strlen(m);
        for (int j = 0; j < 1 + t % 3; j++) {
            rng = rng * 1103515245u + 12345u;
            size_t at = (rng >> 8) % n;
            rng = rng * 1103515245u + 12345u;
            m[at] = (char)(rng >> 16 & 0xff ? rng >> 16 & 0xff : '0');
        }
        if (t % 7 == 0) m[(rng >> 4) % n] = '\0';
        double lr0 = lt_sched_lr(p);
        long e0 = lt_sched_steps(p);
        if (lt_sched_state_load(p, m, &err) != LT_OK) {
            CHECK(lt_sched_lr(p) == lr0 && lt_sched_steps(p) == e0);
        } else {
            CHECK(isfinite(lt_sched_lr(p)) && lt_sched_steps(p) >= 0);
            lt_sched_state_load(p, st, &err); /* back to the saved state */
        }
    }
    lt_sched_free(p);
out:
    lt_sched_free(s);
    lt_sched_free(c);
}

static void test_onecycle_end(void) {
    lt_err err = {0};
    lt_sched *s = lt_sched_create("onecycle:max_lr=0.1,epochs=2,steps_per_epoch=5", 0.5, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    if (!s) return;
    CHECK_NEAR(lt_sched_lr(s), 0.1 / 25, 1e-15);
    for (int k = 0; k < 10; k++) CHECK(lt_sched_step(s, NAN, &err) == LT_OK);
    double last = lt_sched_lr(s);
    CHECK(lt_sched_step(s, NAN, &err) == LT_ESTATE);
    CHECK_STR_CONTAINS(err.msg, "total_steps=10");
    CHECK(lt_sched_lr(s) == last && lt_sched_steps(s) == 10);
    lt_sched_free(s);
}

static void test_apply(void) {
    lt_err err = {0};
    float w[2] = {1, 2}, g[2] = {0, 0};
    lt_param p = {"w", w, g, 2};
    lt_optim *o = lt_optim_create("sgd", &p, 1, &err);
    lt_sched *s = lt_sched_create("exponential:gamma=0.5", 0.2, &err);
    CHECK(o && s);
    if (o && s) {
        double lr = 0;
        lt_sched_step(s, NAN, &err);
        CHECK(lt_sched_apply(s, o, &err) == LT_OK);
        CHECK(lt_optim_get(o, "lr", &lr, &err) == LT_OK);
        CHECK(lr == 0.1);
    }
    lt_sched_free(s);
    lt_optim_free(o);
}

int main(void) {
    RUN(test_spec_errors);
    RUN(test_fields);
    RUN(test_override_rescale);
    RUN(test_state_round_trip);
    RUN(test_state_errors);
    RUN(test_onecycle_end);
    RUN(test_apply);
    return check_done();
}
