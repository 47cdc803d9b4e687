/* Lightning's loop flags, each with a check that fails when the flag is
 * ignored: fast_dev_run, overfit_batches, max_time, check_val_every_n_epoch,
 * the sanity validation, and an lr scheduler stepped by the trainer with a
 * hand-set lr overriding it; --precision and --matmul-precision as the
 * command line parses them, and what the cpu makes of --matmul-precision. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../tui/flags.h"
#include "check.h"
#include "trainer_fixture.h"
#include "lathe/profiler.h"
#include "lathe/sched.h"
#include "lathe/train.h"

static void config(lt_config *c) {
    fixture_config(c,
                   (fixture_spec){.batch_size = 32, .max_epochs = 1, .train_batches = 6, .val_batches = 2, .seed = 9});
}

typedef struct counts {
    int val, test, eval_start;
} counts;

static void on_eval_end(lt_trainer *t, lt_stage s, void *u) {
    counts *c = u;
    if (s == LT_STAGE_VAL)
        c->val++;
    else
        c->test++;
}

static void on_eval_start(lt_trainer *t, lt_stage s, void *u) { ((counts *)u)->eval_start++; }

static int fit(lt_trainer *t, const lt_experiment *e, const lt_config *c, counts *k, lt_err *err) {
    int rc = fixture_trainer(t, e, c);
    if (rc) return rc;
    t->cb = (lt_trainer_callbacks){.user = k, .on_eval_end = on_eval_end, .on_eval_start = on_eval_start};
    return lt_trainer_fit(t, err);
}

static void test_fast_dev_run(void) {
    static lt_trainer t;
    lt_config c;
    counts k = {0};
    lt_err err = {0};
    config(&c);
    c.max_epochs = 5;
    c.fast_dev_run = 2;
    c.run_test = 1;
    CHECK(fit(&t, lt_experiment_find("mlp"), &c, &k, &err) == LT_OK);
    CHECK(t.step == 2 && t.epoch == 1);
    CHECK(t.mod.val_set.n == 64 && t.mod.test_set.n == 64);
    CHECK(k.val == 1 && k.test == 1);
    lt_trainer_free(&t);
}

static void test_overfit_batches(void) {
    static lt_trainer t;
    lt_config c;
    counts k = {0};
    lt_err err = {0};
    config(&c);
    c.overfit_batches = (lt_limit){2, 0};
    c.max_epochs = 40;
    c.limit_train_batches = (lt_limit){1.0, 1};
    CHECK(fit(&t, lt_experiment_find("mlp"), &c, &k, &err) == LT_OK);
    CHECK(t.mod.train_set.n == 64 && t.step == 80);
    /* the same 64 samples, learnt by heart, and validated on */
    CHECK_MSG(t.val_acc > 0.95, "val_acc %.3f on the overfit batches", t.val_acc);
    CHECK(t.train_loss < 0.2);
    lt_trainer_free(&t);
}

static void test_max_time(void) {
    static lt_trainer t;
    lt_config c;
    counts k = {0};
    lt_err err = {0};
    config(&c);
    c.max_epochs = 100000;
    c.max_time = 1.0;
    c.run_test = 1;
    double t0 = lt_now();
    CHECK(fit(&t, lt_experiment_find("mlp"), &c, &k, &err) == LT_OK);
    double dt = lt_now() - t0;
    /* the stop is proven by the reason and the epoch count; the clock bound only
       catches a fit that ignores --max-time (loaded CI machines take >10 s) */
    CHECK_MSG(dt >= 1.0 && dt < 300, "took %.1f s", dt);
    CHECK(t.epoch < 100000 && t.step > 0);
    CHECK_STR_CONTAINS(t.stop_reason, "--max-time");
    CHECK(k.test == 1); /* a timed-out fit still tests, as Lightning does */
    lt_trainer_free(&t);
}

static void test_check_val_every_n_epoch(void) {
    static lt_trainer t;
    lt_config c;
    counts k = {0};
    lt_err err = {0};
    config(&c);
    c.max_epochs = 4;
    c.check_val_every_n_epoch = 2;
    c.num_sanity_val_steps = 0;
    CHECK(fit(&t, lt_experiment_find("mlp"), &c, &k, &err) == LT_OK);
    CHECK_MSG(k.val == 2, "%d validations in 4 epochs", k.val);
    lt_trainer_free(&t);
}

static int broken_val(lt_module *m, lt_graph *g, const lt_batch *b, lt_tensor *x, lt_err *err) {
    return lt_seterr(err, LT_EINVAL, "validation_step is broken");
}

static void test_sanity_check(void) {
    static lt_trainer t;
    lt_config c;
    counts k = {0};
    lt_err err = {0};
    config(&c);
    /* the sanity pass is silent: no callbacks, nothing recorded */
    CHECK(fit(&t, lt_experiment_find("mlp"), &c, &k, &err) == LT_OK);
    CHECK(k.val == 1 && k.eval_start == 1);
    lt_trainer_free(&t);
    /* a broken validation_step fails before the first training step */
    static lt_experiment broken;
    broken = *lt_experiment_find("mlp");
    broken.validation_step = broken_val;
    memset(&k, 0, sizeof k);
    CHECK(fit(&t, &broken, &c, &k, &err) != LT_OK);
    CHECK(t.step == 0);
    CHECK_STR_CONTAINS(err.msg, "validation_step is broken");
    lt_trainer_free(&t);
}

static void test_scheduler(void) {
    static lt_trainer t;
    lt_config c;
    counts k = {0};
    lt_err err = {0};
    double lr;
    config(&c);
    c.max_epochs = 3;
    c.lr = 0.01;
    snprintf(c.lr_scheduler, sizeof c.lr_scheduler, "step:step_size=1,gamma=0.5");
    CHECK(fit(&t, lt_experiment_find("mlp"), &c, &k, &err) == LT_OK);
    CHECK(lt_optim_get(t.opt, "lr", &lr, &err) == LT_OK);
    CHECK_NEAR(lr, 0.01 * 0.125, 1e-9);
    lt_trainer_free(&t);
    /* per step, with a hand-set lr the schedule continues from */
    config(&c);
    c.lr = 0.01;
    c.max_steps = 4;
    snprintf(c.lr_scheduler, sizeof c.lr_scheduler, "exponential:gamma=0.5,interval=step");
    CHECK(fixture_trainer(&t, lt_experiment_find("mlp"), &c) == LT_OK);
    CHECK(lt_trainer_hparam_set(&t, "lr", 0.4, &err) == LT_OK);
    CHECK(lt_trainer_fit(&t, &err) == LT_OK);
    CHECK(lt_optim_get(t.opt, "lr", &lr, &err) == LT_OK);
    CHECK_NEAR(lr, 0.4 / 16, 1e-9);
    lt_trainer_free(&t);
    /* a bad spec is refused at init */
    config(&c);
    snprintf(c.lr_scheduler, sizeof c.lr_scheduler, "sawtooth:teeth=3");
    CHECK(lt_trainer_init(&t, lt_experiment_find("mlp"), &c, &err) != LT_OK);
    CHECK_STR_CONTAINS(err.msg, "sawtooth");
    lt_trainer_free(&t);
}

/* `set lr` under a schedule is applied once, through the schedule: the
 * optimizer and the schedule never disagree, even when the schedule refuses
 * the value (a warmup cannot rescale from an lr of 0). Applied to the
 * optimizer directly as well, the refused value ran until the next scheduler
 * step undid it, while the set reported success. */
static void test_set_lr_applied_once(void) {
    static lt_trainer t;
    lt_config c;
    lt_err err = {0};
    double lr;
    config(&c);
    c.lr = 0;
    c.max_steps = 3;
    snprintf(c.lr_scheduler, sizeof c.lr_scheduler, "warmup_cosine:warmup=5,t_max=10,interval=step");
    CHECK(lt_trainer_init(&t, lt_experiment_find("mlp"), &c, &err) == LT_OK);
    CHECK(lt_trainer_hparam_set(&t, "lr", 0.1, &err) == LT_ESTATE);
    CHECK_STR_CONTAINS(err.msg, "rescale");
    CHECK(lt_optim_get(t.opt, "lr", &lr, &err) == LT_OK);
    CHECK_MSG(lr == lt_sched_lr(t.sched) && lr == 0, "optimizer lr %g, schedule lr %g", lr, lt_sched_lr(t.sched));
    CHECK(t.lr == 0);
    lt_trainer_free(&t);
    /* accepted: the optimizer runs the hand-set value, and the schedule continues from it */
    config(&c);
    c.lr = 0.01;
    c.max_steps = 2;
    snprintf(c.lr_scheduler, sizeof c.lr_scheduler, "warmup_cosine:warmup=5,t_max=10,interval=step");
    CHECK(lt_trainer_init(&t, lt_experiment_find("mlp"), &c, &err) == LT_OK);
    double first = lt_sched_lr(t.sched);
    CHECK(lt_trainer_hparam_set(&t, "lr", 3 * first, &err) == LT_OK);
    CHECK(lt_optim_get(t.opt, "lr", &lr, &err) == LT_OK && lr == 3 * first && lt_sched_lr(t.sched) == lr);
    CHECK(lt_trainer_fit(&t, &err) == LT_OK);
    lt_sched *twin = lt_sched_create(c.lr_scheduler, 3 * 0.01, &err); /* the warmup rescaled by 3 */
    CHECK(twin && lt_sched_step(twin, NAN, &err) == LT_OK && lt_sched_step(twin, NAN, &err) == LT_OK);
    CHECK(lt_optim_get(t.opt, "lr", &lr, &err) == LT_OK);
    CHECK_MSG(twin && fabs(lr - lt_sched_lr(twin)) < 1e-15, "lr %.17g, twin %.17g", lr, twin ? lt_sched_lr(twin) : 0);
    lt_sched_free(twin);
    lt_trainer_free(&t);
}

static void test_profiler(void) {
    static lt_trainer t;
    lt_config c;
    counts k = {0};
    lt_err err = {0};
    config(&c);
    c.max_steps = 3;
    c.profiler = 1;
    CHECK(fit(&t, lt_experiment_find("mlp"), &c, &k, &err) == LT_OK);
    static char rep[16384];
    lt_prof_report(t.prof, rep, sizeof rep);
    CHECK_STR_CONTAINS(rep, "training_step");
    CHECK_STR_CONTAINS(rep, "backward");
    CHECK_STR_CONTAINS(rep, "optimizer_step");
    CHECK_STR_CONTAINS(rep, "Dense forward");
    CHECK_STR_CONTAINS(rep, "linear backward");
    CHECK_STR_CONTAINS(rep, "sanity check");
    for (int i = 0; i < t.prof->n; i++)
        if (!strcmp(t.prof->e[i].name, "optimizer_step")) CHECK(t.prof->e[i].calls == 3);
    lt_trainer_free(&t);
    /* off by default */
    config(&c);
    c.max_steps = 1;
    CHECK(fit(&t, lt_experiment_find("mlp"), &c, &k, &err) == LT_OK);
    CHECK(t.prof == NULL);
    lt_trainer_free(&t);
}

static void test_val_check_interval(void) {
    static lt_trainer t;
    lt_config c;
    counts k = {0};
    lt_err err = {0};
    config(&c);
    c.max_epochs = 2;
    c.num_sanity_val_steps = 0;
    c.val_check_interval = (lt_limit){0.5, 1}; /* twice an epoch */
    CHECK(fit(&t, lt_experiment_find("mlp"), &c, &k, &err) == LT_OK);
    CHECK_MSG(k.val == 4, "%d validations", k.val);
    lt_trainer_free(&t);
    memset(&k, 0, sizeof k);
    config(&c);
    c.max_epochs = 2;
    c.num_sanity_val_steps = 0;
    c.val_check_interval = (lt_limit){4, 0}; /* every 4 steps: steps 4, 8, 12 */
    CHECK(fit(&t, lt_experiment_find("mlp"), &c, &k, &err) == LT_OK);
    CHECK_MSG(k.val == 3, "%d validations", k.val);
    lt_trainer_free(&t);
}

/* a NaN put into one gradient after backward: --detect-anomaly stops at that
 * step naming the layer's weight gradients; without it the NaN reaches the
 * weights and only the next loss shows it */
static int g_poison_at;
static void poison(lt_module *m) {
    static int calls;
    if (++calls == g_poison_at) m->model.params[2].grad[7] = NAN; /* dense_2.weight */
}

static void test_detect_anomaly_gradient(void) {
    static lt_experiment e;
    static lt_trainer t;
    e = *lt_experiment_find("mlp");
    e.on_after_backward = poison;
    lt_config c;
    counts k = {0};
    lt_err err = {0};
    config(&c);
    c.detect_anomaly = 1;
    g_poison_at = 3;
    CHECK(fit(&t, &e, &c, &k, &err) != LT_OK);
    CHECK_STR_CONTAINS(err.msg, "anomaly");
    CHECK_STR_CONTAINS(err.msg, "dense_2");
    CHECK(t.step == 2 && t.anomaly.step == 2); /* the poisoned step was not applied */
    CHECK(isfinite(t.mod.model.params[2].data[7]));
    lt_trainer_free(&t);
    config(&c);
    g_poison_at = 3 + 3; /* the hook's call count goes on */
    CHECK(fit(&t, &e, &c, &k, &err) != LT_OK);
    CHECK_STR_CONTAINS(err.msg, "training loss");
    lt_trainer_free(&t);
}

/* cli_parse on argv; the stderr it writes goes to err (cap bytes) */
static int parse(cli_opts *o, char *err, size_t cap, int argc, char **argv) {
    const char *pos[2];
    int npos;
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *f = tmpfile();
    if (saved < 0 || !f) return -1;
    dup2(fileno(f), STDERR_FILENO);
    cli_opts_defaults(o);
    int rc = cli_parse(argc, argv, 0, o, pos, 2, &npos);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(f);
    size_t n = fread(err, 1, cap - 1, f);
    err[n] = '\0';
    fclose(f);
    return rc;
}

static void test_precision_flags_parse(void) {
    cli_opts o;
    char e[512];
    CHECK(parse(&o, e, sizeof e, 0, NULL) == 0);
    CHECK(o.cfg.matmul_precision == LT_MATMUL_HIGHEST && o.cfg.precision == LT_PREC_32); /* the defaults */
    static const struct {
        const char *flag, *value;
        int want;
    } good[] = {
        {"--matmul-precision", "highest", LT_MATMUL_HIGHEST}, {"--matmul-precision", "high", LT_MATMUL_HIGH},
        {"--matmul-precision", "medium", LT_MATMUL_MEDIUM},   {"--precision", "32", LT_PREC_32},
        {"--precision", "bf16-mixed", LT_PREC_BF16_MIXED},    {"--precision", "16-mixed", LT_PREC_16_MIXED},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char *argv[] = {(char *)good[i].flag, (char *)good[i].value};
        CHECK_MSG(parse(&o, e, sizeof e, 2, argv) == 0, "%s %s: %s", good[i].flag, good[i].value, e);
        int got = !strcmp(good[i].flag, "--precision") ? o.cfg.precision : o.cfg.matmul_precision;
        CHECK_MSG(got == good[i].want, "%s %s gave %d", good[i].flag, good[i].value, got);
    }
    char *eq[] = {"--matmul-precision=medium"};
    CHECK(parse(&o, e, sizeof e, 1, eq) == 0 && o.cfg.matmul_precision == LT_MATMUL_MEDIUM);
    /* a bad value: exit status 2 and one line naming the flag and the choices */
    char *bad[] = {"--matmul-precision", "low"};
    CHECK(parse(&o, e, sizeof e, 2, bad) == 2);
    CHECK_STR_CONTAINS(e, "--matmul-precision: 'low' is not one of highest|high|medium");
    CHECK_MSG(strchr(e, '\n') == e + strlen(e) - 1, "not one line: %s", e);
    char *bad2[] = {"--matmul-precision", "HIGH"};
    CHECK(parse(&o, e, sizeof e, 2, bad2) == 2);
    char *missing[] = {"--matmul-precision"};
    CHECK(parse(&o, e, sizeof e, 1, missing) == 2);
    CHECK_STR_CONTAINS(e, "--matmul-precision needs a value");
    char *badp[] = {"--precision", "8-bit"};
    CHECK(parse(&o, e, sizeof e, 2, badp) == 2);
    CHECK_STR_CONTAINS(e, "--precision: '8-bit' is not one of 32|bf16-mixed|16-mixed");
}

/* --matmul-precision high|medium on the cpu: accepted, said once in the
 * trainer's note, and the run is bitwise the one of highest (f32 GEMMs) */
static void test_matmul_precision_cpu(void) {
    static lt_trainer hi, t;
    lt_config c;
    lt_err err = {0};
    config(&c);
    c.max_steps = 3;
    CHECK(fixture_trainer(&hi, lt_experiment_find("mlp"), &c) == LT_OK);
    CHECK(hi.note[0] == '\0' && hi.math == LT_MATH_F32);
    CHECK(lt_trainer_fit(&hi, &err) == LT_OK);
    for (int mp = LT_MATMUL_HIGH; mp <= LT_MATMUL_MEDIUM; mp++) {
        config(&c);
        c.max_steps = 3;
        c.matmul_precision = mp;
        CHECK(fixture_trainer(&t, lt_experiment_find("mlp"), &c) == LT_OK);
        char want[96];
        snprintf(want, sizeof want, "--matmul-precision %s: the cpu computes f32 GEMMs; the setting applies on a GPU",
                 lt_matmul_precision_name(mp));
        CHECK_MSG(!strcmp(t.note, want), "note '%s'", t.note);
        CHECK(t.math == LT_MATH_F32 && t.warnings == 0);
        CHECK(lt_trainer_fit(&t, &err) == LT_OK);
        CHECK_MSG(t.train_loss == hi.train_loss, "%s: loss %.9g vs %.9g", lt_matmul_precision_name(mp), t.train_loss,
                  hi.train_loss);
        CHECK(!memcmp(t.mod.model.mem, hi.mod.model.mem, t.mod.model.nparam_floats * sizeof(float)));
        lt_trainer_free(&t);
    }
    lt_trainer_free(&hi);
}

int main(void) {
    RUN(test_precision_flags_parse);
    if (!check_have(CHECK_DATA_DIR)) return 77;
    RUN(test_matmul_precision_cpu);
    RUN(test_fast_dev_run);
    RUN(test_overfit_batches);
    RUN(test_max_time);
    RUN(test_check_val_every_n_epoch);
    RUN(test_sanity_check);
    RUN(test_scheduler);
    RUN(test_set_lr_applied_once);
    RUN(test_profiler);
    RUN(test_val_check_interval);
    RUN(test_detect_anomaly_gradient);
    return check_done();
}
