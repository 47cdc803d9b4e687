/* wb_pane_curves.c: the curves pane: training loss raw and smoothed,
 * validation loss, validation accuracy and the learning rate against the step,
 * with a marker at every hparam change; for a fork in the read-only view the
 * parent's curves up to the fork's step, dim, under the fork's own. It owns its zoom and pan; log scale
 * and follow are the screen's keys (wb_keys.c) and live in struct wb. */
#include <curses.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wb.h"

typedef struct curves {
    int zoom;       /* the window shows 1/2^zoom of the run */
    double pan_end; /* the window's right edge in steps when not following */
} curves;

/* ---- plotting into a rectangle ---- */

typedef struct plot_line {
    const double *x, *y;
    int n, color;
} plot_line;

/* The legend's colour key: the title's names of the lines, from column x0 of
 * its row on, each written again in its line's colour ("train, smoothed, val"). */
static void legend(wb *w, const wb_rect *r, int x0, const char *const *names, const plot_line *lines, int nl) {
    if (!w->colors || r->h < 4) return;
    int x = r->x + x0;
    for (int l = 0; l < nl && x < r->x + r->w; l++) {
        int n = (int)strlen(names[l]);
        wb_attr(w, lines[l].color, 1);
        wb_put(r->y, x, r->x + r->w - x, names[l]);
        x += n + 2; /* ", " */
    }
    wb_attr(w, 0, 0);
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define YLAB 8 /* columns of y-axis labels */

/* A plot in r: row 0 the label, then the canvas, the last row the x axis with
 * a '^' under every hparam change. */
static void plot(wb *w, const wb_rect *r, const char *label, const plot_line *lines, int nl, int logy, double xlo,
                 double xhi) {
    if (r->h < 4 || r->w < YLAB + 6) return;
    wb_title(w, r, label);
    int cw = r->w - YLAB - 1, chh = r->h - 2;
    wb_canvas c;
    if (wb_canvas_init(&c, cw, chh)) return;
    /* The y range over the points inside the x window. */
    double lo = INFINITY, hi = -INFINITY;
    for (int l = 0; l < nl; l++) {
        for (int i = 0; i < lines[l].n; i++) {
            if (lines[l].x[i] < xlo || lines[l].x[i] > xhi) continue;
            double a, b;
            if (wb_range(&lines[l].y[i], 1, logy, &a, &b)) {
                lo = fmin(lo, lines[l].y[i]);
                hi = fmax(hi, lines[l].y[i]);
            }
        }
    }
    int have = lo <= hi;
    if (have) {
        double both[2] = {lo, hi};
        wb_range(both, 2, logy, &lo, &hi);
    }
    wb_axis ax = {xlo, xhi, 0}, ay = {lo, hi, logy};
    /* hparam changes: dotted vertical lines, drawn first so curves win the cell colour */
    for (int i = 0; i < w->m.nch; i++) {
        double s = w->m.ch[i].step;
        if (!(s >= xlo && s <= xhi)) continue;
        int px = (int)lround(wb_axis_pos(&ax, s, 2 * cw));
        for (int y = 0; y < 4 * chh; y += 3) wb_canvas_dot(&c, px, y, WB_C_MARK);
    }
    if (have)
        for (int l = 0; l < nl; l++) wb_plot_xy(&c, lines[l].x, lines[l].y, lines[l].n, &ax, &ay, lines[l].color);
    char out[8], num[32];
    for (int cy = 0; cy < chh; cy++)
        for (int cx = 0; cx < cw; cx++) {
            if (wb_canvas_cell(&c, cx, cy, w->utf8, out) == 1 && out[0] == ' ') continue;
            wb_attr(w, c.color[(size_t)cy * cw + cx], 0);
            wb_put(r->y + 1 + cy, r->x + YLAB + 1 + cx, 1, out);
        }
    wb_attr(w, WB_C_DIM, 0);
    for (int cy = 0; cy < chh; cy++) wb_put(r->y + 1 + cy, r->x + YLAB, 1, w->utf8 ? "\xE2\x94\x82" : "|");
    if (have) {
        wb_fmt_num(hi, num, sizeof num);
        wb_putf(r->y + 1, r->x, YLAB, "%*s", YLAB, num);
        wb_fmt_num(lo, num, sizeof num);
        wb_putf(r->y + chh, r->x, YLAB, "%*s", YLAB, num);
        if (chh >= 5) {
            double mid = logy ? sqrt(lo * hi) : (lo + hi) / 2;
            wb_fmt_num(mid, num, sizeof num);
            wb_putf(r->y + 1 + chh / 2, r->x, YLAB, "%*s", YLAB, num);
        }
    } else {
        wb_put(r->y + 1 + chh / 2, r->x + YLAB + 2, cw - 2, "(no points yet)");
    }
    /* x axis: markers at changes, then the window's first and last step */
    int ya = r->y + r->h - 1;
    wb_attr(w, WB_C_MARK, 1);
    for (int i = 0; i < w->m.nch; i++) {
        double s = w->m.ch[i].step;
        if (s >= xlo && s <= xhi) wb_put(ya, r->x + YLAB + 1 + (int)(wb_axis_pos(&ax, s, 2 * cw) / 2), 1, "^");
    }
    wb_attr(w, WB_C_DIM, 0);
    wb_fmt_count(xlo, num, sizeof num);
    wb_putf(ya, r->x + YLAB + 1, cw, "%s", num);
    wb_fmt_count(xhi, num, sizeof num);
    wb_putf(ya, r->x + r->w - (int)strlen(num), (int)strlen(num), "%s", num);
    wb_attr(w, 0, 0);
    wb_canvas_free(&c);
}

/* The x window [lo, hi] in steps: the whole run, or 1/2^zoom of it ending at
 * the newest point (follow) or at the panned position. */
static void x_window(wb *w, const curves *c, double *lo, double *hi) {
    double a = 0, b = 1;
    for (int s = 0; s < WB_S_COUNT; s++) {
        const wb_series *ser = &w->m.series[s];
        if (ser->n) b = fmax(b, ser->x[ser->n - 1]);
    }
    if (isfinite(w->m.st.step)) b = fmax(b, w->m.st.step);
    double span = (b - a) / (double)(1 << c->zoom);
    double end = w->follow ? b : fmin(fmax(c->pan_end, a + span), b);
    *lo = fmax(a, end - span);
    *hi = end;
}

static void curves_draw(wb *w, void *self, const wb_rect *r) {
    const curves *c = self;
    const wb_series *tl = &w->m.series[WB_S_TRAIN_LOSS];
    double xlo, xhi;
    x_window(w, c, &xlo, &xhi);
    double *sm = tl->n ? malloc((size_t)tl->n * sizeof *sm) : NULL;
    if (sm) wb_smooth(tl->y, tl->n, 0.9, sm);
    /* a fork in the read-only view: its parent's points up to the fork, dim, under its own */
    const wb_series *pa = w->m.parent;
    char label[240], fork_note[120] = "";
    if (w->m.parent_name[0])
        snprintf(fork_note, sizeof fork_note, "  dim: parent %s to step %.0f, then this fork", w->m.parent_name,
                 w->m.parent_step);
    snprintf(label, sizeof label, "loss: train, smoothed, val%s%s  zoom x%d%s", w->logscale ? "  [log]" : "",
             w->follow ? "  [follow]" : "", 1 << c->zoom, fork_note);
    plot_line loss[5] = {
        {pa[WB_S_TRAIN_LOSS].x, pa[WB_S_TRAIN_LOSS].y, pa[WB_S_TRAIN_LOSS].n, WB_C_DIM},
        {pa[WB_S_VAL_LOSS].x, pa[WB_S_VAL_LOSS].y, pa[WB_S_VAL_LOSS].n, WB_C_DIM},
        {tl->x, tl->y, tl->n, WB_C_RAW},
        {tl->x, sm ? sm : tl->y, sm ? tl->n : 0, WB_C_SMOOTH},
        {w->m.series[WB_S_VAL_LOSS].x, w->m.series[WB_S_VAL_LOSS].y, w->m.series[WB_S_VAL_LOSS].n, WB_C_VAL},
    };
    wb_rect rl = *r;
    if (r->h >= 14) rl.h = r->h * 3 / 5;
    plot(w, &rl, label, loss, 5, w->logscale, xlo, xhi);
    legend(w, &rl, 6, (const char *const[]){"train", "smoothed", "val"}, loss + 2, 3);
    free(sm);
    if (r->h < 14) return;
    wb_rect ra = {r->y + rl.h, r->x, r->h - rl.h, r->w / 2};
    wb_rect rr = {r->y + rl.h, r->x + r->w / 2 + 1, r->h - rl.h, r->w - r->w / 2 - 1};
    const wb_series *va = &w->m.series[WB_S_VAL_ACC], *lr = &w->m.series[WB_S_LR];
    char t[64], num[32];
    wb_fmt_num(va->n ? va->y[va->n - 1] : NAN, num, sizeof num);
    snprintf(t, sizeof t, "val acc %s", num);
    plot_line la[2] = {{pa[WB_S_VAL_ACC].x, pa[WB_S_VAL_ACC].y, pa[WB_S_VAL_ACC].n, WB_C_DIM},
                       {va->x, va->y, va->n, WB_C_ACC}};
    plot(w, &ra, t, la, 2, 0, xlo, xhi);
    legend(w, &ra, 0, (const char *const[]){"val acc"}, la + 1, 1);
    wb_fmt_num(w->m.st.lr, num, sizeof num);
    snprintf(t, sizeof t, "learning rate %s", num);
    /* an lr change is a step at the change's marker, not a ramp between the log points around it */
    double at[WB_CHANGES_MAX];
    int nat = 0;
    for (int i = 0; i < w->m.nch; i++)
        if (!strcmp(w->m.ch[i].name, "lr")) at[nat++] = w->m.ch[i].step;
    qsort(at, (size_t)nat, sizeof *at, by_value);
    double *px = lr->n ? malloc(3 * (size_t)lr->n * sizeof *px) : NULL;
    double *py = lr->n ? malloc(3 * (size_t)lr->n * sizeof *py) : NULL;
    plot_line ll[2] = {{pa[WB_S_LR].x, pa[WB_S_LR].y, pa[WB_S_LR].n, WB_C_DIM}, {lr->x, lr->y, lr->n, WB_C_LR}};
    if (px && py) ll[1] = (plot_line){px, py, wb_step_points(lr->x, lr->y, lr->n, at, nat, px, py), WB_C_LR};
    plot(w, &rr, t, ll, 2, w->logscale, xlo, xhi);
    legend(w, &rr, 0, (const char *const[]){"learning rate"}, ll + 1, 1);
    free(px);
    free(py);
}

static int zoom(wb *w, void *self, int ch) {
    curves *c = self;
    if (ch == '+' || ch == '=') {
        if (c->zoom < 10) c->zoom++;
    } else if (c->zoom > 0) {
        c->zoom--;
    }
    return 1;
}

static int pan(wb *w, void *self, int ch) {
    curves *c = self;
    double lo, hi;
    x_window(w, c, &lo, &hi);
    w->follow = 0;
    c->pan_end = hi + (ch == KEY_LEFT || ch == 'h' ? -0.25 : 0.25) * (hi - lo);
    return 1;
}

static const wb_binding curves_bindings[] = {
    {{'+', '=', '-', '_'}, "+ -", "zoom", NULL, NULL, zoom},
    {{KEY_LEFT, KEY_RIGHT, 'h', 'l'}, "Left/Right", "pan", NULL, NULL, pan},
};
static const wb_keymap curves_keys = WB_KEYMAP("curves", curves_bindings);

static int curves_key(wb *w, void *self, int ch) { return wb_keymap_run(&curves_keys, w, self, ch); }

const wb_pane wb_pane_curves = {"curves", sizeof(curves), curves_draw, curves_key, wb_pane_no_resize, &curves_keys};
