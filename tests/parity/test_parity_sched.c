/* test_parity_sched.c: every scheduler against torch.optim.lr_scheduler. The
 * fixture (tests/parity/fixtures/sched.fix, made by gen_sched_fixtures.py)
 * holds, per configuration, lathe's spec string, the base lr, PyTorch's lr
 * after construction and after each step, the metrics fed to plateau and the
 * hand-set lrs; lathe replays them and must match at relative error <= 1e-6
 * (both compute in double with the same formulas; the fixture stores f32, so
 * the expected difference is f32 rounding, ~6e-8). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixture.h"
#include "lathe/sched.h"

#define TOL 1e-6

static fx_file fx;

/* The array called name, or NULL without a message (optional arrays). */
static const fx_array *find_opt(const char *name) {
    for (int i = 0; i < fx.count; i++)
        if (strcmp(fx.arrays[i].name, name) == 0) return &fx.arrays[i];
    return NULL;
}

static const fx_array *getf(const char *cfg, const char *what) {
    char name[128];
    snprintf(name, sizeof name, "%s.%s", cfg, what);
    return fx_get(&fx, name);
}

/* Character codes stored as f32 -> a C string in buf. */
static int to_string(const fx_array *a, char *buf, size_t cap) {
    if (!a || a->n + 1 > cap) return -1;
    for (size_t i = 0; i < a->n; i++) buf[i] = (char)(int)a->data[i];
    buf[a->n] = '\0';
    return 0;
}

static int configs_run;

static void run_cfg(const char *cfg) {
    char spec[512], name[160];
    const fx_array *a_spec = getf(cfg, "spec"), *a_base = getf(cfg, "base_lr"), *a_lr = getf(cfg, "lr");
    CHECK(a_spec && a_base && a_lr);
    if (!a_spec || !a_base || !a_lr || to_string(a_spec, spec, sizeof spec)) return;
    snprintf(name, sizeof name, "%s.metric", cfg);
    const fx_array *a_metric = find_opt(name);
    snprintf(name, sizeof name, "%s.override", cfg);
    const fx_array *a_ov = find_opt(name);
    int nsteps = (int)a_lr->n - 1;
    CHECK(!a_metric || (int)a_metric->n == nsteps);

    lt_err err = {0};
    lt_sched *s = lt_sched_create(spec, a_base->data[0], &err);
    CHECK_MSG(s != NULL, "%s: %s", cfg, err.msg);
    if (!s) return;
    CHECK(lt_sched_needs_metric(s) == (a_metric != NULL));
    double worst = 0, worst_got = 0;
    int worst_k = -1;
    size_t ov = 0;
    for (int k = 0; k <= nsteps; k++) {
        if (k > 0) {
            double m = a_metric ? a_metric->data[k - 1] : NAN;
            int rc = lt_sched_step(s, m, &err);
            CHECK_MSG(rc == LT_OK, "%s step %d: %s", cfg, k, err.msg);
        }
        if (a_ov && ov + 1 < a_ov->n && (int)a_ov->data[ov] == k) {
            CHECK_MSG(lt_sched_override(s, a_ov->data[ov + 1], &err) == LT_OK, "%s: %s", cfg, err.msg);
            ov += 2;
        }
        double ref = a_lr->data[k], got = lt_sched_lr(s);
        double rel = fabs(got - ref) / fmax(fabs(ref), 1e-30);
        if (ref == 0 && got == 0) rel = 0;
        if (isnan(rel)) rel = INFINITY;
        if (rel > worst) {
            worst = rel;
            worst_k = k;
            worst_got = got;
        }
    }
    CHECK_MSG(worst <= TOL, "%s: rel err %.3g at step %d (lathe %.9g, torch %.9g)", cfg, worst, worst_k, worst_got,
              worst_k >= 0 ? a_lr->data[worst_k] : 0.0);
    CHECK_MSG(!a_ov || ov == a_ov->n, "%s: overrides not all applied", cfg);
    printf("%-24s %4d steps  max rel err %.2e\n", cfg, nsteps, worst);
    configs_run++;
    lt_sched_free(s);
}

static void test_all(void) {
    char names[2048];
    const fx_array *a = fx_get(&fx, "configs");
    CHECK(a != NULL && to_string(a, names, sizeof names) == 0);
    if (!a) return;
    for (char *p = strtok(names, " "); p; p = strtok(NULL, " ")) run_cfg(p);
    /* Every kind is covered. */
    CHECK(configs_run >= 20);
}

int main(void) {
    if (fx_load(&fx, LATHE_FIXTURE_DIR "/sched.fix") != 0) return 1;
    RUN(test_all);
    fx_free(&fx);
    return check_done();
}
