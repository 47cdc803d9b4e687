/* lathe lr-find <experiment> [--min-lr X] [--max-lr X] [--num-training N]
 * [trainer flags]: the learning-rate range test (lathe/lrfind.h) from the
 * trainer's initial weights (or --resume's), drawn as a plot of the smoothed
 * loss against the lr on a log axis (braille, or ASCII outside a UTF-8
 * locale or with LATHE_ASCII set), then one key=value line for scripts:
 *   suggested_lr=<x> steps=<n> min_loss=<y> */
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
#define YLAB 9 /* columns of y labels */

static void progress(const lt_lrfind_point *p, int i, int n, void *user) {
    (void)user;
    fprintf(stderr, "\rlr-find: step %d/%d  lr %-9.3g loss %-8.4f", i + 1, n, p->lr, p->loss);
    fflush(stderr);
}

/* Puts s into row at column col when it fits inside [0, w) and does not run
 * over text already there (spaces are free). */
static void place(char *row, int w, int col, const char *s) {
    int n = (int)strlen(s);
    if (col < 0) col = 0;
    if (col + n > w) col = w - n;
    if (col < 0) return;
    for (int i = -1; i <= n; i++)
        if (col + i >= 0 && col + i < w && row[col + i] != ' ') return;
    memcpy(row + col, s, (size_t)n);
}

/* The plot: y labels at the top, middle and bottom rows, the canvas, an x axis
 * with a tick at every power of ten, and a '^' under the suggestion. */
static void print_plot(const lt_lrfind_result *r, int utf8, FILE *f) {
    int n = r->steps;
    double *x = malloc((size_t)n * sizeof *x + 1), *y = malloc((size_t)n * sizeof *y + 1);
    wb_canvas c;
    if (!x || !y || wb_canvas_init(&c, PLOT_W, PLOT_H)) {
        free(x);
        free(y);
        return;
    }
    for (int i = 0; i < n; i++) {
        x[i] = r->points[i].lr;
        y[i] = r->points[i].smoothed;
    }
    wb_axis ax = {x[0], x[n - 1], 1}, ay = {0, 1, 0};
    int have = wb_range(y, n, 0, &ay.lo, &ay.hi);
    int sx = -1; /* the suggestion's dot column */
    if (r->suggestion >= 0) {
        sx = (int)lround(wb_axis_pos(&ax, r->suggested_lr, 2 * PLOT_W));
        /* a dotted vertical line (braille only: in ASCII it would look like the curve) */
        for (int py = 0; utf8 && py < 4 * PLOT_H; py += 3) wb_canvas_dot(&c, sx, py, 1);
    }
    if (have) wb_plot_xy(&c, x, y, n, &ax, &ay, 0);

    const char *vbar = utf8 ? "\xE2\x94\x82" : "|";
    fprintf(f, "%*s smoothed training loss\n", YLAB, "");
    for (int cy = 0; cy < PLOT_H; cy++) {
        char lab[32] = "";
        if (have && (cy == 0 || cy == PLOT_H - 1 || cy == PLOT_H / 2)) {
            /* the value at the cell row's middle */
            double v = ay.hi - (ay.hi - ay.lo) * (cy + 0.5) / PLOT_H;
            wb_fmt_num(v, lab, sizeof lab);
        }
        fprintf(f, "%*s %s", YLAB - 1, lab, vbar);
        char cell[8];
        for (int cx = 0; cx < PLOT_W; cx++) {
            wb_canvas_cell(&c, cx, cy, utf8, cell);
            fputs(cell, f);
        }
        fputc('\n', f);
    }
    /* the x axis: ticks at powers of ten, labelled where the labels fit */
    char axis[PLOT_W + 1], labels[PLOT_W + 1];
    memset(axis, '-', PLOT_W);
    memset(labels, ' ', PLOT_W);
    axis[PLOT_W] = labels[PLOT_W] = 0;
    for (int e = (int)ceil(log10(ax.lo) - 1e-9); e <= (int)floor(log10(ax.hi) + 1e-9); e++) {
        int col = (int)(wb_axis_pos(&ax, pow(10, e), 2 * PLOT_W) / 2);
        if (col < 0 || col >= PLOT_W) continue;
        axis[col] = '+';
        char s[16];
        snprintf(s, sizeof s, "1e%d", e);
        if (e == 0) snprintf(s, sizeof s, "1");
        place(labels, PLOT_W, col - (int)strlen(s) / 2, s);
    }
    if (sx >= 0) axis[sx / 2] = '^';
    fprintf(f, "%*s +%s\n", YLAB - 1, "", axis);
    fprintf(f, "%*s  %s  lr (log)\n", YLAB - 1, "", labels);
    wb_canvas_free(&c);
    free(x);
    free(y);
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
    if (r.suggestion < 0)
        fprintf(stderr, "lathe: no suggestion: too few points after skipping the first %d and the last %d\n",
                LT_LRFIND_SKIP_BEGIN, LT_LRFIND_SKIP_END);
    printf("suggested_lr=%.6g steps=%d min_loss=%.6f\n", r.suggested_lr, r.steps, r.min_loss);
    lt_lrfind_result_free(&r);
    lt_trainer_free(&t);
    return 0;
}
