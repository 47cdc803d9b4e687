/* wb_pane_inspect.c: the tensor inspector: the last `inspect` reply as
 * statistics, a histogram, and the values as a shaded 2-D map or a grid of
 * numbers. Its keys re-send the inspect with another channel or view. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "wb.h"

/* A histogram as vertical bars over rows x width cells. */
static void histogram(wb *w, int y, int x, int rows, int width, const double *h, int n) {
    double mx = 0;
    for (int i = 0; i < n; i++) mx = fmax(mx, h[i]);
    if (n <= 0 || width < n) return;
    int per = width / n;
    wb_attr(w, WB_C_ACC, 0);
    for (int i = 0; i < n; i++)
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < per; k++)
                wb_put(y + r, x + i * per + k, 1, wb_vbar_glyph(mx > 0 ? h[i] / mx : 0, r, rows, w->utf8));
    wb_attr(w, 0, 0);
}

static void inspect_draw(wb *w, void *self, const wb_rect *r) {
    const wb_inspect *in = &w->m.insp;
    char t[256];
    if (!in->valid) {
        wb_title(w, r, "inspect");
        wb_put(r->y + 1, r->x, r->w, "No tensor yet: type  :inspect <layer> [output|weight|grad|bias] [--channel C]");
        wb_put(r->y + 2, r->x, r->w, "or press Enter on a row of the layers pane.");
        return;
    }
    snprintf(t, sizeof t, "inspect %s %s (%s, sample %d, channel %d)  [ ] channel  o w g b view", in->layer, in->what,
             in->source, in->sample, in->channel);
    wb_title(w, r, t);
    int sw = 30; /* stats column */
    char a[32], b[32];
    int y = r->y + 1;
    wb_putf(y++, r->x, sw, "shape  %s", in->shape);
    wb_putf(y++, r->x, sw, "full   %s", in->full_shape);
    wb_fmt_num(in->mean, a, sizeof a);
    wb_fmt_num(in->std, b, sizeof b);
    wb_putf(y++, r->x, sw, "mean   %-9s std %s", a, b);
    wb_fmt_num(in->min, a, sizeof a);
    wb_fmt_num(in->max, b, sizeof b);
    wb_putf(y++, r->x, sw, "min    %-9s max %s", a, b);
    snprintf(a, sizeof a, "%.1f%%", in->zeros * 100);
    wb_fmt_num(in->nonfinite, b, sizeof b);
    wb_putf(y++, r->x, sw, "zeros  %-9s nonfin %s", a, b);
    if (in->nhist > 0 && y + 3 < r->y + r->h) {
        int hrows = r->h >= 20 ? 5 : 3;
        if (y + hrows + 1 >= r->y + r->h) hrows = r->y + r->h - y - 2;
        wb_putf(y++, r->x, sw, "histogram (%d bins)", in->nhist);
        if (hrows > 0) histogram(w, y, r->x, hrows, sw - sw % in->nhist, in->hist, in->nhist);
        y += hrows > 0 ? hrows : 0;
        wb_fmt_num(in->hist_min, a, sizeof a);
        wb_fmt_num(in->hist_max, b, sizeof b);
        wb_putf(y++, r->x, sw, "%-*s%s", sw - 1 - (int)strlen(b), a, b);
    }
    int mx = r->x + sw + 2, mw = r->w - sw - 2;
    int my = r->y + 1, mh = r->h - 1;
    if (mw < 8) return;
    if (in->map_h > 0 && in->map_w > 0 && in->values) {
        int used = wb_draw_map(w, my, mx, mh - 1, mw, in->values, in->map_h, in->map_w);
        wb_map_caption(in->values, in->map_h, in->map_w, in->truncated, t, sizeof t);
        wb_attr(w, WB_C_DIM, 0);
        wb_put(my + used, mx, mw, t);
        wb_attr(w, 0, 0);
    } else if (in->values) {
        /* values as a grid of numbers */
        int per = mw / 10, rows = mh - 1;
        if (per < 1) per = 1;
        for (int i = 0; i < in->nvalues && i / per < rows; i++) {
            wb_fmt_num(in->values[i], a, sizeof a);
            wb_putf(my + i / per, mx + (i % per) * 10, 9, "%9s", a);
        }
        if (in->nvalues > per * rows || in->truncated) {
            wb_attr(w, WB_C_DIM, 0);
            wb_putf(my + rows, mx, mw, "... %d values shown of %s", per * rows < in->nvalues ? per * rows : in->nvalues,
                    in->full_shape);
            wb_attr(w, 0, 0);
        }
    }
}

/* Re-sends the shown inspect with one thing changed. */
static void reinspect(wb *w, const char *what, int channel) {
    char line[160];
    snprintf(line, sizeof line, "inspect %s %s --sample %d --channel %d", w->m.insp.layer, what, w->m.insp.sample,
             channel < 0 ? 0 : channel);
    wb_send(w, line, 0);
}

static int step_channel(wb *w, void *self, int ch) {
    const wb_inspect *in = &w->m.insp;
    if (!in->valid) return 0;
    reinspect(w, in->what, ch == ']' ? in->channel + 1 : in->channel - 1);
    return 1;
}

static int choose_view(wb *w, void *self, int ch) {
    const wb_inspect *in = &w->m.insp;
    if (!in->valid) return 0;
    reinspect(w, ch == 'o' ? "output" : ch == 'w' ? "weight" : ch == 'g' ? "grad" : "bias", in->channel);
    return 1;
}

static const wb_binding inspect_bindings[] = {
    {{'[', ']'}, "[ ]", "channel", NULL, NULL, step_channel},
    {{'o', 'w', 'g', 'b'}, "o w g b", "view", NULL, NULL, choose_view},
};
static const wb_keymap inspect_keys = WB_KEYMAP("inspect", inspect_bindings);

static int inspect_key(wb *w, void *self, int ch) { return wb_keymap_run(&inspect_keys, w, self, ch); }

const wb_pane wb_pane_inspect = {"inspect", 0, inspect_draw, inspect_key, wb_pane_no_resize, &inspect_keys};
