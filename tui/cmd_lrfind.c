/* lathe lr-find <experiment> [--min-lr X] [--max-lr X] [--num-training N]
 * [trainer flags]: the learning-rate range test (lathe/lrfind.h) from the
 * trainer's initial weights (or --resume's), drawn as a plot of the smoothed
 * loss against the lr on a log axis (braille, or ASCII outside a UTF-8
 * locale or with LATHE_ASCII set), then one key=value line for scripts:
 *   suggested_lr=<x> steps=<n> min_loss=<y>  (suggested_lr=none, and why on stderr,
 * when the curve shows no clear descent) */
#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "flags.h"
#include "lathe/lrfind.h"
#include "wb_draw.h"

#define PLOT_W 70 /* canvas cells */
#define PLOT_H 16

static void progress(const lt_lrfind_point *p, int i, int n, void *user) {
    (void)user;
    fprintf(stderr, "\rlr-find: step %d/%d  lr %-9.3g loss %-8.4f", i + 1, n, p->lr, p->loss);
    fflush(stderr);
}

/* The plot (wb_draw.h, the same as the workbench's lr-find view). */
static void print_plot(const lt_lrfind_result *r, int utf8, FILE *f) {
    int n = r->steps;
    double *x = malloc((size_t)n * sizeof *x + 1), *y = malloc((size_t)n * sizeof *y + 1);
    size_t cap = (size_t)(PLOT_H + 3) * (PLOT_W * 3 + 64) + 64;
    char *buf = malloc(cap);
    if (x && y && buf) {
        for (int i = 0; i < n; i++) {
            x[i] = r->points[i].lr;
            y[i] = r->points[i].smoothed;
        }
        if (wb_lrfind_plot(x, y, n, r->suggested_lr, PLOT_W, PLOT_H, utf8, buf, cap)) fputs(buf, f);
    }
    free(x);
    free(y);
    free(buf);
}

static int use_utf8(void) {
    setlocale(LC_CTYPE, "");
    return wb_locale_utf8();
}

int cmd_lrfind(int argc, char **argv) {
    cli_opts o;
    const lt_experiment *e = cli_experiment(
        argc, argv, &o, "lathe lr-find <experiment> [--min-lr X] [--max-lr X] [--num-training N] [flags]");
    if (!e) return 2;
    lt_lrfind_opts lo;
    lt_lrfind_opts_defaults(&lo);
    if (o.min_lr > 0) lo.min_lr = o.min_lr;
    if (o.max_lr > 0) lo.max_lr = o.max_lr;
    if (o.num_training > 0) lo.num_training = o.num_training;
    if (isatty(2)) lo.on_point = progress;
    /* nothing to check or log: the sweep is thrown away */
    o.cfg.ckpt_dir[0] = '\0';
    o.cfg.run_test = 0;

    static lt_trainer t;
    lt_lrfind_result r;
    memset(&r, 0, sizeof r);
    lt_err err = {0};
    if (lt_trainer_init(&t, e, &o.cfg, &err)) {
        fprintf(stderr, "lathe: %s\n", err.msg);
        lt_trainer_free(&t);
        return 2;
    }
    int rc = lt_lrfind_run(&t, &lo, &r, &err);
    if (lo.on_point) fputc('\n', stderr);
    if (rc) {
        fprintf(stderr, "lathe: %s\n", err.msg);
        lt_lrfind_result_free(&r);
        lt_trainer_free(&t);
        return rc == LT_EINVAL ? 2 : 1;
    }
    printf("lr-find %s: batch %d, %s, lr %.3g to %.3g over %d steps\n", e->name, t.batch_size, lt_optim_kind(t.opt),
           lo.min_lr, lo.max_lr, lo.num_training);
    if (r.steps > 0) print_plot(&r, use_utf8(), stdout);
    if (r.stopped_early)
        printf("stopped early after %d steps at lr %.3g: the loss diverged\n", r.steps, r.points[r.steps - 1].lr);
    if (r.suggestion >= 0)
        printf("suggestion (^): lr %.4g at step %d, where the smoothed loss %.4f falls fastest\n", r.suggested_lr,
               r.suggestion, r.points[r.suggestion].smoothed);
    if (r.suggestion < 0) fprintf(stderr, "lathe: no suggestion: %s\n", r.no_suggestion);
    if (r.suggestion >= 0)
        printf("suggested_lr=%.6g steps=%d min_loss=%.6f\n", r.suggested_lr, r.steps, r.min_loss);
    else
        printf("suggested_lr=none steps=%d min_loss=%.6f\n", r.steps, r.min_loss);
    lt_lrfind_result_free(&r);
    lt_trainer_free(&t);
    return 0;
}
