/* The learning-rate finder: Lightning's suggestion rule against numpy's
 * np.gradient on fixed curves, and real sweeps on a slice of Fashion-MNIST
 * (mlp and mnist_cnn, batch 32, 20 training batches per epoch so the sweeps
 * cross an epoch boundary): the lr sequence, the smoothing, the suggestion,
 * early stop on divergence, and a bit-exact restore of the trainer (a step
 * after the sweep equals a step of a twin trainer that never swept). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "trainer_fixture.h"
#include "lathe/lrfind.h"

/* ---- the suggestion rule (expected indices from numpy) ---- */

static void test_suggest_rule(void) {
    /* np.gradient(y[1:-1]) has its first minimum (-0.25, a tie) at index 6 */
    double y[11] = {1.0, 0.9, 0.8, 0.75, 0.8, 0.8, 0.8, 0.3, 0.3, 0.3, 0.4};
    double x[11];
    for (int i = 0; i < 11; i++) x[i] = 1e-4 * pow(1e4, i / 10.0);
    CHECK(lt_lrfind_suggest(y, NULL, 11, 1, 1) == 6);
    /* np.gradient(y[1:-1], x[1:-1]): the early small drop is steepest per unit lr */
    CHECK(lt_lrfind_suggest(y, x, 11, 1, 1) == 1);

    double z[16] = {5, 4.9, 4.8, 4.7, 4.5, 4.0, 3.0, 2.5, 2.3, 2.2, 2.15, 2.1, 2.3, 3.0, 5.0, 9.0};
    CHECK(lt_lrfind_suggest(z, NULL, 16, 2, 1) == 5);
    /* a non-finite point is dropped before the gradient (numpy on the rest: index 5) */
    z[6] = NAN;
    CHECK(lt_lrfind_suggest(z, NULL, 16, 2, 1) == 5);
    z[6] = 3.0;
    /* the skipped ends never win, even when steepest there */
    z[0] = 100;
    z[15] = -100;
    CHECK(lt_lrfind_suggest(z, NULL, 16, 2, 1) == 5);
    /* too few points after skipping */
    CHECK(lt_lrfind_suggest(z, NULL, 12, 10, 1) == -1);
    CHECK(lt_lrfind_suggest(z, NULL, 13, 10, 1) == 10); /* a two-point tie: the first */
    double w[5] = {NAN, 1, NAN, NAN, 2};
    CHECK(lt_lrfind_suggest(w, NULL, 5, 0, 1) == -1);
}

/* ---- no descent, no suggestion ---- */

/* A standard normal from a seeded xorshift (Box-Muller): crafted noise. */
static double gauss(uint64_t *s) {
    double u[2];
    for (int k = 0; k < 2; k++) {
        *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
        u[k] = ((double)(*s >> 11) + 0.5) / 9007199254740992.0;
    }
    return sqrt(-2 * log(u[0])) * cos(6.283185307179586 * u[1]);
}

/* n points of loss curve(i) + sigma * noise, smoothed as the sweep does;
 * returns Lightning's suggestion index. */
static int craft(lt_lrfind_point *p, int n, double (*curve)(int, int), double sigma, uint64_t seed) {
    double avg = 0, y[200];
    for (int i = 0; i < n; i++) {
        p[i].lr = 1e-8 * pow(1e8, (double)i / (n - 1));
        p[i].loss = curve(i, n) + sigma * gauss(&seed);
        avg = LT_LRFIND_BETA * avg + (1 - LT_LRFIND_BETA) * p[i].loss;
        y[i] = p[i].smoothed = avg / (1 - pow(LT_LRFIND_BETA, i + 1));
    }
    return lt_lrfind_suggest(y, NULL, n, LT_LRFIND_SKIP_BEGIN, LT_LRFIND_SKIP_END);
}

static double flat(int i, int n) { return 0.3; }
/* a sweep mid-run: flat, then diverging over the last fifth */
static double flat_then_up(int i, int n) { return i < 4 * n / 5 ? 0.3 : 0.3 * exp((i - 4 * n / 5) * 0.15); }
/* a sweep from fresh weights: 2.3 falling to 0.6 around the middle, then diverging */
static double descent(int i, int n) { return 0.6 + 1.7 / (1 + exp((i - n / 2.0) / 5)) + (i > 85 ? (i - 85) * 0.3 : 0); }
/* a small dip, 3% of the loss: real perhaps, but nothing to pick an lr by */
static double dip(int i, int n) { return 1.0 - 0.03 / (1 + exp(-(i - n / 2.0) / 4)); }

static void test_no_descent(void) {
    lt_lrfind_point p[100];
    char why[200];
    int refused = 0, kept = 0, trials = 200;
    for (uint64_t seed = 1; seed <= (uint64_t)trials; seed++) {
        /* flat batch-to-batch noise, as mid-run: Lightning's rule still names a point */
        int k = craft(p, 100, flat, 0.08, seed);
        CHECK(k >= LT_LRFIND_SKIP_BEGIN);
        refused += !lt_lrfind_judge(p, 100, k, why, sizeof why);
        k = craft(p, 100, flat_then_up, 0.08, seed * 7919);
        refused += !lt_lrfind_judge(p, 100, k, why, sizeof why);
        /* a clear descent under the same noise keeps its suggestion, inside the fall */
        k = craft(p, 100, descent, 0.08, seed * 104729);
        int ok = lt_lrfind_judge(p, 100, k, why, sizeof why);
        CHECK_MSG(ok, "seed %llu: descent refused at %d: %s", (unsigned long long)seed, k, why);
        CHECK_MSG(k > 35 && k < 80, "seed %llu: suggestion at %d", (unsigned long long)seed, k);
        kept += ok;
    }
    CHECK_MSG(refused == 2 * trials, "%d of %d flat sweeps refused", refused, 2 * trials);
    CHECK(kept == trials);
    /* the reasons */
    int k = craft(p, 100, flat, 0.08, 42);
    CHECK(!lt_lrfind_judge(p, 100, k, why, sizeof why));
    CHECK_STR_CONTAINS(why, "no clear descent");
    k = craft(p, 100, dip, 0.0, 1);
    CHECK(!lt_lrfind_judge(p, 100, k, why, sizeof why));
    CHECK_STR_CONTAINS(why, "less than 0.1 (10% of it");
    /* no noise at all: a clean descent is kept, a flat line is not */
    k = craft(p, 100, descent, 0.0, 1);
    CHECK(lt_lrfind_judge(p, 100, k, why, sizeof why) && why[0] == 0);
    k = craft(p, 100, flat, 0.0, 1);
    CHECK(!lt_lrfind_judge(p, 100, k, why, sizeof why));
    /* a non-finite loss ends what counts */
    k = craft(p, 100, descent, 0.05, 3);
    for (int i = 20; i < 100; i++) p[i].loss = p[i].smoothed = NAN;
    CHECK(!lt_lrfind_judge(p, 100, k, why, sizeof why));
}

/* ---- trainer state, captured for bitwise comparison ---- */

typedef struct state {
    float *mem, *ost;
    size_t nmem, nost;
    long osteps;
    double hp[64];
    int nhp;
    lt_rng rng;
    long step, samples;
    size_t epoch, pos_epoch, pos_batch;
    double lr, train_loss;
    int batch_size, nmetrics;
    lt_metric metrics[LT_MAX_METRICS];
} state;

static void capture(lt_trainer *t, state *s) {
    memset(s, 0, sizeof *s);
    lt_model *md = &t->mod.model;
    s->nmem = 2 * md->nparam_floats + md->nbuffer_floats;
    s->mem = malloc(s->nmem * sizeof(float));
    memcpy(s->mem, md->mem, s->nmem * sizeof(float));
    s->nost = lt_optim_state_floats(t->opt);
    s->ost = malloc(s->nost * sizeof(float) + 1);
    lt_optim_state_save(t->opt, s->ost, NULL);
    s->osteps = lt_optim_steps(t->opt);
    s->nhp = lt_trainer_hparam_count(t);
    for (int i = 0; i < s->nhp && i < 64; i++) {
        char buf[96];
        lt_trainer_hparam_get(t, lt_trainer_hparam_name(t, i, buf, sizeof buf), &s->hp[i], NULL);
    }
    s->rng = t->rng;
    s->step = t->step;
    s->samples = t->samples;
    s->epoch = t->epoch;
    lt_loader_position(t->train_loader, &s->pos_epoch, &s->pos_batch);
    s->lr = t->lr;
    s->train_loss = t->train_loss;
    s->batch_size = t->batch_size;
    s->nmetrics = t->mod.nmetrics;
    memcpy(s->metrics, t->mod.metrics, sizeof s->metrics);
}

static void release(state *s) {
    free(s->mem);
    free(s->ost);
}

static void check_same(const state *a, const state *b, const char *what) {
    CHECK_MSG(a->nmem == b->nmem && !memcmp(a->mem, b->mem, a->nmem * sizeof(float)),
              "%s: parameters, gradients or buffers differ", what);
    CHECK_MSG(a->nost == b->nost && !memcmp(a->ost, b->ost, a->nost * sizeof(float)), "%s: optimizer state differs",
              what);
    CHECK_MSG(a->osteps == b->osteps, "%s: optimizer steps %ld vs %ld", what, a->osteps, b->osteps);
    CHECK_MSG(a->nhp == b->nhp && !memcmp(a->hp, b->hp, sizeof a->hp), "%s: hparams differ", what);
    CHECK_MSG(!memcmp(&a->rng, &b->rng, sizeof a->rng), "%s: rng differs", what);
    CHECK_MSG(a->step == b->step && a->samples == b->samples && a->epoch == b->epoch,
              "%s: counters step %ld/%ld samples %ld/%ld epoch %zu/%zu", what, a->step, b->step, a->samples, b->samples,
              a->epoch, b->epoch);
    CHECK_MSG(a->pos_epoch == b->pos_epoch && a->pos_batch == b->pos_batch, "%s: loader at %zu:%zu vs %zu:%zu", what,
              a->pos_epoch, a->pos_batch, b->pos_epoch, b->pos_batch);
    CHECK_MSG(!memcmp(&a->lr, &b->lr, sizeof a->lr) && a->batch_size == b->batch_size, "%s: lr or batch size", what);
    CHECK_MSG(!memcmp(&a->train_loss, &b->train_loss, sizeof a->train_loss), "%s: train_loss %.9g vs %.9g", what,
              a->train_loss, b->train_loss);
    CHECK_MSG(a->nmetrics == b->nmetrics && !memcmp(a->metrics, b->metrics, sizeof a->metrics), "%s: metrics", what);
}

/* ---- real sweeps ---- */

static void make(lt_trainer *t, const char *exp, int batch, const char *sched) {
    lt_config cfg;
    fixture_config(
        &cfg,
        (fixture_spec){.batch_size = batch, .max_epochs = 100, .train_batches = 20, .val_batches = 2, .seed = 11});
    snprintf(cfg.lr_scheduler, sizeof cfg.lr_scheduler, "%s", sched ? sched : "");
    fixture_trainer(t, lt_experiment_find(exp), &cfg);
}

static int fit_to(lt_trainer *t, long steps) {
    lt_err err = {0};
    t->cfg.max_steps = steps;
    int rc = lt_trainer_fit(t, &err);
    CHECK_MSG(rc == LT_OK, "%s", err.msg);
    return rc;
}

/* on_point: whether the weights moved away from the snapshot during the sweep,
 * so the restore check below is known to restore something */
typedef struct probe {
    lt_trainer *t;
    const state *before;
    int moved, calls;
} probe;

static void on_point(const lt_lrfind_point *p, int i, int n, void *user) {
    probe *pr = user;
    (void)p;
    (void)n;
    pr->calls = i + 1;
    lt_model *md = &pr->t->mod.model;
    if (memcmp(md->mem, pr->before->mem, md->nparam_floats * sizeof(float)) != 0) pr->moved = 1;
}

/* Warm up two twin trainers 3 steps, sweep one, compare, then 3 more steps on both. */
static void restore_case(const char *exp, const char *sched, int ntrain, double max_lr, lt_lrfind_result *out) {
    static lt_trainer a, b;
    make(&a, exp, 32, sched);
    make(&b, exp, 32, sched);
    if (fit_to(&a, 3) || fit_to(&b, 3)) return;
    state before, after, sa, sb;
    capture(&a, &before);
    lt_lrfind_opts o;
    lt_lrfind_opts_defaults(&o);
    o.num_training = ntrain;
    o.max_lr = max_lr;
    probe pr = {&a, &before, 0, 0};
    o.on_point = on_point;
    o.user = &pr;
    lt_err err = {0};
    int rc = lt_lrfind_run(&a, &o, out, &err);
    CHECK_MSG(rc == LT_OK, "%s", err.msg);
    CHECK(pr.moved && pr.calls == out->steps);
    capture(&a, &after);
    check_same(&before, &after, exp);
    /* more real steps on each: the sweep left no trace */
    if (!fit_to(&a, 6) && !fit_to(&b, 6)) {
        capture(&a, &sa);
        capture(&b, &sb);
        CHECK(sa.step == 6);
        check_same(&sa, &sb, "after a step");
        release(&sa);
        release(&sb);
    }
    printf("%s: %d steps%s, suggested lr %.4g (index %d%s%s), min smoothed loss %.4f\n", exp, out->steps,
           out->stopped_early ? " (stopped early)" : "", out->suggested_lr, out->suggestion,
           out->no_suggestion[0] ? ": " : "", out->no_suggestion, out->min_loss);
    release(&before);
    release(&after);
    lt_trainer_free(&a);
    lt_trainer_free(&b);
}

/* The suggestion lies strictly inside the sweep, outside the skipped ends, at a
 * point where the smoothed loss goes down. */
static void check_suggestion(const lt_lrfind_result *r, const lt_lrfind_opts *o) {
    int k = r->suggestion;
    CHECK_MSG(k >= LT_LRFIND_SKIP_BEGIN && k < r->steps - LT_LRFIND_SKIP_END, "suggestion index %d of %d", k, r->steps);
    if (k < 1 || k >= r->steps - 1) return;
    CHECK(r->suggested_lr == r->points[k].lr);
    CHECK(r->suggested_lr > o->min_lr && r->suggested_lr < o->max_lr);
    CHECK_MSG(r->points[k + 1].smoothed < r->points[k - 1].smoothed, "smoothed %.6g -> %.6g around the suggestion",
              r->points[k - 1].smoothed, r->points[k + 1].smoothed);
}

static void check_sequence(const lt_lrfind_result *r, const lt_lrfind_opts *o, int n) {
    CHECK(r->steps >= 2);
    CHECK(r->points[0].lr == o->min_lr);
    double ratio = pow(o->max_lr / o->min_lr, 1.0 / (n - 1));
    for (int i = 1; i < r->steps; i++) CHECK_NEAR(r->points[i].lr / r->points[i - 1].lr, ratio, 1e-12);
    for (int i = 0; i < r->steps; i++) CHECK_NEAR(r->points[i].lr, o->min_lr * pow(ratio, i), 1e-12 * r->points[i].lr);
    if (r->steps == n) CHECK(r->points[n - 1].lr == o->max_lr);
    /* Lightning's bias-corrected moving average of the raw losses */
    double avg = 0;
    for (int i = 0; i < r->steps; i++) {
        if (!isfinite(r->points[i].loss)) break;
        avg = 0.98 * avg + 0.02 * r->points[i].loss;
        CHECK_NEAR(r->points[i].smoothed, avg / (1 - pow(0.98, i + 1)), 1e-12);
    }
}

static void test_mlp_sweep(void) {
    lt_lrfind_result r;
    lt_lrfind_opts o;
    lt_lrfind_opts_defaults(&o);
    o.max_lr = 1e-2; /* Adam at most 1e-2: the loss keeps falling, no early stop */
    restore_case("mlp", NULL, 50, o.max_lr, &r);
    CHECK_MSG(r.steps == 50 && !r.stopped_early, "%d steps, stopped early %d", r.steps, r.stopped_early);
    check_sequence(&r, &o, 50);
    check_suggestion(&r, &o);
    double lo = INFINITY;
    for (int i = 0; i < r.steps; i++) lo = fmin(lo, r.points[i].smoothed);
    CHECK(r.min_loss == lo);
    /* the sweep really trained: the last batches' loss is well below the first's,
       and the (lagging) smoothed curve has turned down */
    CHECK(r.points[r.steps - 1].loss < 0.8 * r.points[0].loss);
    CHECK(r.points[r.steps - 1].smoothed < r.points[0].smoothed);
    lt_lrfind_result_free(&r);
}

static void test_cnn_sweep(void) {
    lt_lrfind_result r;
    lt_lrfind_opts o;
    lt_lrfind_opts_defaults(&o);
    restore_case("mnist_cnn", NULL, 40, o.max_lr, &r);
    check_sequence(&r, &o, 40);
    /* 40 steps from 1e-8 to 1: only the last few lrs do anything, and the loss
       falls by about 2%; Lightning's rule would still name a point */
    CHECK_MSG(r.suggestion == -1 && isnan(r.suggested_lr), "suggested %g", r.suggested_lr);
    CHECK_STR_CONTAINS(r.no_suggestion, "no clear descent");
    lt_lrfind_result_free(&r);
}

/* With a step-wise lr scheduler the schedule goes on after the sweep exactly as
 * in the twin that never swept (the sweep sets the optimizer's lr directly, not
 * as a hand-set lr the schedule would continue from). */
static void test_sweep_with_scheduler(void) {
    lt_lrfind_result r;
    restore_case("mlp", "step:step_size=2,gamma=0.5,interval=step", 30, 1e-2, &r);
    CHECK(r.steps == 30);
    lt_lrfind_result_free(&r);
}

/* Adam up to lr 1e6 blows up: the sweep stops once the smoothed loss passes 4x
 * the best, well before the end, and still restores everything. */
static void test_early_stop(void) {
    lt_lrfind_result r;
    lt_lrfind_opts o;
    lt_lrfind_opts_defaults(&o);
    o.min_lr = 1e-4;
    o.max_lr = 1e6;
    o.num_training = 60;
    static lt_trainer t;
    make(&t, "mlp", 32, NULL);
    state before, after;
    capture(&t, &before);
    lt_err err = {0};
    int rc = lt_lrfind_run(&t, &o, &r, &err);
    CHECK_MSG(rc == LT_OK, "%s", err.msg);
    capture(&t, &after);
    check_same(&before, &after, "diverging sweep");
    CHECK_MSG(r.stopped_early && r.steps < 60, "%d steps", r.steps);
    check_sequence(&r, &o, 60);
    if (r.steps >= 2) {
        const lt_lrfind_point *last = &r.points[r.steps - 1];
        double best = INFINITY;
        for (int i = 0; i < r.steps - 1; i++) best = fmin(best, r.points[i].smoothed);
        CHECK_MSG(!isfinite(last->loss) || last->smoothed > 4 * best, "last smoothed %.4g, best %.4g", last->smoothed,
                  best);
        /* and not before: every earlier point was within the threshold */
        double b2 = r.points[0].smoothed;
        for (int i = 1; i < r.steps - 1; i++) {
            CHECK(r.points[i].smoothed <= 4 * b2);
            b2 = fmin(b2, r.points[i].smoothed);
        }
    }
    printf("diverging sweep: stopped after %d of 60 steps at lr %.3g\n", r.steps, r.points[r.steps - 1].lr);
    lt_lrfind_result_free(&r);
    release(&before);
    release(&after);
    lt_trainer_free(&t);
}

static void test_bad_opts(void) {
    static lt_trainer t;
    make(&t, "mlp", 32, NULL);
    state before, after;
    capture(&t, &before);
    lt_lrfind_opts o;
    lt_lrfind_result r;
    lt_err err = {0};
    lt_lrfind_opts_defaults(&o);
    o.min_lr = 0;
    CHECK(lt_lrfind_run(&t, &o, &r, &err) == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "min_lr");
    lt_lrfind_result_free(&r);
    lt_lrfind_opts_defaults(&o);
    o.max_lr = 1e-9;
    CHECK(lt_lrfind_run(&t, &o, &r, &err) == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "max_lr");
    lt_lrfind_result_free(&r);
    lt_lrfind_opts_defaults(&o);
    o.num_training = 1;
    CHECK(lt_lrfind_run(&t, &o, &r, &err) == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "num_training");
    CHECK(r.steps == 0 && r.suggestion == -1 && isnan(r.suggested_lr));
    lt_lrfind_result_free(&r);
    capture(&t, &after);
    check_same(&before, &after, "refused sweep");
    release(&before);
    release(&after);
    lt_trainer_free(&t);
}

int main(void) {
    RUN(test_suggest_rule);
    RUN(test_no_descent);
    if (!check_have(CHECK_DATA_DIR)) return check_done() ? 1 : 77;
    RUN(test_bad_opts);
    RUN(test_mlp_sweep);
    RUN(test_early_stop);
    RUN(test_sweep_with_scheduler);
    RUN(test_cnn_sweep);
    return check_done();
}
