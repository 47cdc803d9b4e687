/* wb_panes2.c: the layers table, the tensor inspector (last `inspect` reply)
 * and the probe (last `feed` reply). */
#include <curses.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wb.h"

/* ---- layers ---- */

typedef struct col {
    const char *head;
    int width, prio; /* lower prio = kept first when the screen is narrow */
} col;

static const col layer_cols[] = {
    {"name", 14, 0}, {"type", 12, 1}, {"shape", 10, 2}, {"params", 7, 4}, {"mean", 9, 3}, {"std", 9, 3},
    {"min", 9, 6},   {"max", 9, 6},   {"zeros", 6, 5},  {"nonfin", 6, 5}, {"grad", 9, 4}, {"upd", 9, 5},
};
#define NCOLS (int)(sizeof layer_cols / sizeof layer_cols[0])

static void layer_cell(const wb_layer *l, int c, char *buf, size_t cap) {
    switch (c) {
    case 0: snprintf(buf, cap, "%s", l->name); break;
    case 1: snprintf(buf, cap, "%s", l->type); break;
    case 2: snprintf(buf, cap, "%s", l->shape); break;
    case 3: wb_fmt_count(l->params, buf, cap); break;
    case 4: wb_fmt_num(l->mean, buf, cap); break;
    case 5: wb_fmt_num(l->std, buf, cap); break;
    case 6: wb_fmt_num(l->min, buf, cap); break;
    case 7: wb_fmt_num(l->max, buf, cap); break;
    case 8: snprintf(buf, cap, isfinite(l->zeros) ? "%.0f%%" : "-", l->zeros * 100); break;
    case 9: wb_fmt_num(l->nonfinite, buf, cap); break;
    case 10: wb_fmt_num(l->grad_norm, buf, cap); break;
    default: wb_fmt_num(l->update_ratio, buf, cap); break;
    }
}

void wb_layers_draw(wb *w, const wb_rect *r) {
    /* Keep columns by priority until the width is used up. */
    int use[NCOLS] = {0}, total = 0;
    for (int p = 0; p <= 6; p++)
        for (int c = 0; c < NCOLS; c++)
            if (layer_cols[c].prio == p && total + layer_cols[c].width + 1 <= r->w) {
                use[c] = 1;
                total += layer_cols[c].width + 1;
            }
    wb_title(w, r, "layers (last training batch; Enter inspects the selected layer)");
    wb_attr(w, WB_C_DIM, 1);
    for (int c = 0, x = r->x; c < NCOLS; c++)
        if (use[c]) {
            wb_putf(r->y + 1, x, layer_cols[c].width, c < 3 ? "%-*s" : "%*s", layer_cols[c].width, layer_cols[c].head);
            x += layer_cols[c].width + 1;
        }
    wb_attr(w, 0, 0);
    if (!w->m.nly) wb_put(r->y + 2, r->x, r->w, "(waiting for the layers snapshot)");
    if (w->layer_sel >= w->m.nly) w->layer_sel = w->m.nly ? w->m.nly - 1 : 0;
    int rows = r->h - 2, first = 0;
    if (w->layer_sel >= rows) first = w->layer_sel - rows + 1;
    for (int i = first; i < w->m.nly && i - first < rows; i++) {
        const wb_layer *l = &w->m.ly[i];
        int bad = isfinite(l->nonfinite) && l->nonfinite > 0;
        attrset((i == w->layer_sel ? A_REVERSE : 0) | (bad && w->colors ? COLOR_PAIR(WB_C_BAD) : 0));
        if (i == w->layer_sel) mvhline(r->y + 2 + i - first, r->x, ' ', total);
        for (int c = 0, x = r->x; c < NCOLS; c++) {
            if (!use[c]) continue;
            char buf[64];
            layer_cell(l, c, buf, sizeof buf);
            wb_putf(r->y + 2 + i - first, x, layer_cols[c].width, c < 3 ? "%-*s" : "%*s", layer_cols[c].width, buf);
            x += layer_cols[c].width + 1;
        }
    }
    wb_attr(w, 0, 0);
}

int wb_layers_key(wb *w, int ch) {
    switch (ch) {
    case KEY_UP:
    case 'k':
        if (w->layer_sel > 0) w->layer_sel--;
        return 1;
    case KEY_DOWN:
    case 'j':
        if (w->layer_sel + 1 < w->m.nly) w->layer_sel++;
        return 1;
    case '\r':
    case '\n':
    case KEY_ENTER:
        if (w->layer_sel < w->m.nly) {
            char line[128];
            snprintf(line, sizeof line, "inspect %s", w->m.ly[w->layer_sel].name);
            wb_send(w, line, 1);
            w->pane = WB_P_INSPECT;
        }
        return 1;
    }
    return 0;
}

/* ---- inspector ---- */

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

void wb_inspect_draw(wb *w, const wb_rect *r) {
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
        wb_attr(w, WB_C_DIM, 0);
        wb_putf(my + used, mx, mw, "map %dx%d, shaded from min (blank) to max%s", in->map_h, in->map_w,
                in->truncated ? ", truncated" : "");
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

int wb_inspect_key(wb *w, int ch) {
    const wb_inspect *in = &w->m.insp;
    if (!in->valid) return 0;
    switch (ch) {
    case ']': reinspect(w, in->what, in->channel + 1); return 1;
    case '[': reinspect(w, in->what, in->channel - 1); return 1;
    case 'o': reinspect(w, "output", in->channel); return 1;
    case 'w': reinspect(w, "weight", in->channel); return 1;
    case 'g': reinspect(w, "grad", in->channel); return 1;
    case 'b': reinspect(w, "bias", in->channel); return 1;
    }
    return 0;
}

/* ---- probe ---- */

void wb_probe_draw(wb *w, const wb_rect *r) {
    const wb_probe *p = &w->m.probe;
    if (!p->valid) {
        wb_title(w, r, "probe");
        wb_put(r->y + 1, r->x, r->w, "No probe yet: type  :feed test <I>  |  :feed random  |  :feed misclassified");
        return;
    }
    char t[256];
    snprintf(t, sizeof t, "probe %s  (r random, m misclassified, [ ] previous/next test sample)", p->source);
    wb_title(w, r, t);
    int used = 0, iw = 0;
    if (p->in_h > 0 && p->in_w > 0) {
        int rows, cols;
        wb_map_fit(p->in_h, p->in_w, r->h - 2, r->w / 2, &rows, &cols);
        used = wb_draw_map(w, r->y + 1, r->x, rows, cols, p->input, p->in_h, p->in_w);
        iw = cols;
        wb_attr(w, WB_C_DIM, 0);
        wb_putf(r->y + 1 + used, r->x, r->w, "input %s", p->input_shape);
        wb_attr(w, 0, 0);
    }
    int x = r->x + iw + 3, cw = r->w - iw - 3, y = r->y + 1;
    if (cw < 20) {
        x = r->x;
        cw = r->w;
        y = r->y + used + 2;
    }
    int right = p->label >= 0 && p->pred == p->label;
    wb_putf(y++, x, cw, "label      %d %s", p->label, p->label_name);
    wb_attr(w, p->label < 0 ? 0 : right ? WB_C_OK : WB_C_BAD, 1);
    wb_putf(y++, x, cw, "prediction %d %s  %s", p->pred, p->pred_name,
            p->label < 0 ? ""
            : right      ? "(right)"
                         : "(WRONG)");
    wb_attr(w, 0, 0);
    y++;
    wb_put(y++, x, cw, "top predictions");
    int bw = cw - 24;
    if (bw > 40) bw = 40;
    for (int i = 0; i < p->ntop && y < r->y + r->h; i++) {
        char bar[256];
        wb_bar(p->top[i].prob, bw > 0 ? bw : 0, w->utf8, bar, sizeof bar);
        wb_attr(w, i == 0 ? WB_C_ACC : 0, i == 0);
        wb_putf(y++, x, cw, "%-12.12s %6.2f%% %s", p->top[i].cls, p->top[i].prob * 100, bar);
    }
    wb_attr(w, WB_C_DIM, 0);
    if (p->layers[0] && y + 1 < r->y + r->h) wb_putf(++y, x, cw, "inspect now shows this input at: %s", p->layers);
    wb_attr(w, 0, 0);
}

int wb_probe_key(wb *w, int ch) {
    char line[64];
    int idx = -1;
    if (!strncmp(w->m.probe.source, "test:", 5)) idx = atoi(w->m.probe.source + 5);
    switch (ch) {
    case 'r': wb_send(w, "feed random", 0); return 1;
    case 'm': wb_send(w, "feed misclassified", 0); return 1;
    case ']':
    case '[':
        if (idx < 0) return 1;
        snprintf(line, sizeof line, "feed test %d", ch == ']' ? idx + 1 : idx > 0 ? idx - 1 : 0);
        wb_send(w, line, 0);
        return 1;
    }
    return 0;
}
