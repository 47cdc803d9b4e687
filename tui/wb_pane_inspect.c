/* wb_pane_inspect.c: the tensor inspector: the last `inspect` reply as
 * statistics, a histogram, and the values as a shaded 2-D map or a grid of
 * numbers. Its keys re-send the inspect with another channel or view. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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

/* The dimensions of a shape such as "64x24x24"; returns how many. */
static int dims_of(const char *shape, int d[8]) {
    int n = 0;
    for (const char *p = shape; *p && n < 8; n++) {
        d[n] = atoi(p);
        p += strcspn(p, "x");
        p += *p == 'x';
    }
    return n;
}

/* What [ and ] step through in the shown view, and how many there are. */
enum { STEP_NONE, STEP_CHANNEL, STEP_ROW, STEP_SAMPLE };
static int step_kind(const wb_inspect *in, int *count) {
    int d[8], nd = dims_of(in->shape, d), fd[8], nf = dims_of(in->full_shape, fd);
    int out = !strcmp(in->what, "output");
    *count = 1;
    if (out && nd == 3) return *count = d[0], STEP_CHANNEL;
    if (out) return *count = !strcmp(in->source, "batch") && nf > 0 ? fd[0] : 1, STEP_SAMPLE;
    if (!strcmp(in->what, "bias") || nd < 2) return STEP_NONE;
    *count = d[0];
    return nd == 4 ? STEP_CHANNEL : STEP_ROW; /* conv [O][I][K][K]: output channel; dense [O][I]: unit */
}

static void inspect_draw(wb *w, void *self, const wb_rect *r) {
    const wb_inspect *in = &w->m.insp;
    char t[256];
    if (!in->valid) {
        wb_title(w, r, "inspect");
        if (w->offline) {
            wb_put(r->y + 1, r->x, r->w, "(no tensors: inspecting needs a live run, and this one has ended)");
            return;
        }
        wb_put(r->y + 1, r->x, r->w, "No tensor yet: type  :inspect <layer> [output|weight|grad|bias] [--channel C]");
        wb_put(r->y + 2, r->x, r->w, "or press Enter on a row of the layers pane.");
        return;
    }
    int count, kind = step_kind(in, &count);
    static const char *const steps[] = {"", "  [ ] channel", "  [ ] row", "  [ ] sample"};
    char where[48] = ""; /* a parameter has no sample */
    if (in->sample >= 0) snprintf(where, sizeof where, ", sample %d", in->sample);
    snprintf(t, sizeof t, "inspect %s %s (%s%s, channel %d)%s%s  o w g b view", in->layer, in->what, in->source, where,
             in->channel, count > 1 ? steps[kind] : "", strcmp(in->what, "output") ? "" : "  { } sample");
    wb_title(w, r, t);
    int sw = 30; /* stats column */
    char a[32], b[32];
    int y = r->y + 1;
    wb_inspect_scope(in, t, sizeof t); /* not the layers pane's batch statistics */
    wb_attr(w, WB_C_DIM, 0);
    wb_put(y++, r->x, sw, t);
    wb_attr(w, 0, 0);
    wb_putf(y++, r->x, sw, "shape  %s", in->shape);
    wb_putf(y++, r->x, sw, "full   %s", in->full_shape);
    wb_fmt_val(in->mean, a, sizeof a);
    wb_fmt_val(in->std, b, sizeof b);
    wb_putf(y++, r->x, sw, "mean   %-9s std %s", a, b);
    wb_fmt_val(in->min, a, sizeof a);
    wb_fmt_val(in->max, b, sizeof b);
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
            wb_fmt_val(in->values[i], a, sizeof a);
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

/* ---- keys: another view, channel, row or sample of the shown layer ----
 * The server takes --sample only for outputs (an explicit one reads the batch,
 * not the probe) and --channel only where there are channels or rows: a
 * CxHxW output, a conv kernel's output channel, a dense weight's row. So each
 * key sends just the flags that apply to the view it asks for. */

/* The output channel the shown view is about, -1 when it has none: a CxHxW
 * output's channel, or a conv kernel's output channel (the same numbers). */
static int view_channel(const wb_inspect *in) {
    int d[8], nd = dims_of(in->shape, d);
    if (!strcmp(in->what, "output")) return nd == 3 ? in->channel : -1;
    return nd == 4 ? in->channel : -1;
}

/* inspect <layer> <what> [--sample S] [--channel C]; a flag left out when < 0. */
static void reinspect(wb *w, const char *what, int sample, int channel) {
    char line[160];
    int n = snprintf(line, sizeof line, "inspect %s %s", w->m.insp.layer, what);
    if (sample >= 0) n += snprintf(line + n, sizeof line - (size_t)n, " --sample %d", sample);
    if (channel >= 0) snprintf(line + n, sizeof line - (size_t)n, " --channel %d", channel);
    wb_send(w, line, 0);
}

/* The shown output's sample when it came from the batch: kept across a
 * channel step (a probe's output stays the probe's, so no --sample). */
static int kept_sample(const wb_inspect *in) {
    return !strcmp(in->what, "output") && !strcmp(in->source, "batch") ? in->sample : -1;
}

static int step_channel(wb *w, void *self, int ch) {
    const wb_inspect *in = &w->m.insp;
    if (!in->valid) return 0;
    int count, kind = step_kind(in, &count), by = ch == ']' ? 1 : -1;
    if (kind == STEP_NONE || count <= 1) {
        wb_model_log(&w->m, 1, "%s %s: nothing to step through with [ ]", in->layer, in->what);
        return 1;
    }
    if (kind == STEP_SAMPLE) { /* an output without channels: the next sample (wrapping) */
        int s = kept_sample(in);
        reinspect(w, in->what, ((s < 0 ? 0 : s + by) + count) % count, -1);
        return 1;
    }
    int c = (in->channel + by + count) % count;
    reinspect(w, in->what, kept_sample(in), c);
    return 1;
}

static int step_sample(wb *w, void *self, int ch) {
    const wb_inspect *in = &w->m.insp;
    if (!in->valid) return 0;
    if (strcmp(in->what, "output")) {
        wb_model_log(&w->m, 1, "%s %s: a parameter has no samples (o shows the output)", in->layer, in->what);
        return 1;
    }
    int fd[8], nf = dims_of(in->full_shape, fd), s = kept_sample(in);
    int count = !strcmp(in->source, "batch") && nf > 0 ? fd[0] : 1;
    /* from a probe's output: the batch's first sample */
    int next = s < 0 ? 0 : (s + (ch == '}' ? 1 : -1) + count) % count;
    reinspect(w, "output", next, view_channel(in));
    return 1;
}

static int choose_view(wb *w, void *self, int ch) {
    const wb_inspect *in = &w->m.insp;
    if (!in->valid) return 0;
    const char *what = ch == 'o' ? "output" : ch == 'w' ? "weight" : ch == 'g' ? "grad" : "bias";
    int channel = view_channel(in);
    if (ch == 'b') channel = -1; /* a bias is one vector */
    /* weight <-> grad: the same row of the same shape */
    if ((ch == 'w' || ch == 'g') && (!strcmp(in->what, "weight") || !strcmp(in->what, "grad"))) channel = in->channel;
    reinspect(w, what, ch == 'o' ? kept_sample(in) : -1, channel);
    return 1;
}

static const wb_binding inspect_bindings[] = {
    /* the title says which one [ ] steps in the shown view */
    {{'[', ']'}, "[ ]", "channel/row (or sample)", NULL, NULL, step_channel},
    {{'{', '}'}, "{ }", "sample", NULL, NULL, step_sample},
    {{'o', 'w', 'g', 'b'}, "o w g b", "view", NULL, NULL, choose_view},
};
static const wb_keymap inspect_keys = WB_KEYMAP("inspect", inspect_bindings);

static int inspect_key(wb *w, void *self, int ch) { return wb_keymap_run(&inspect_keys, w, self, ch); }

const wb_pane wb_pane_inspect = {"inspect", 0, inspect_draw, inspect_key, wb_pane_no_resize, &inspect_keys};
