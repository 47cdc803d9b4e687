/* wb_pane_layers.c: the layers pane: a table of the model's layers with the
 * statistics of the last training batch, as many columns as fit (chosen when
 * the pane's width changes), and a selected row that Enter inspects. */
#include <curses.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "wb.h"

typedef struct col {
    const char *head;
    int width, prio; /* lower prio = kept first when the screen is narrow */
} col;

static const col layer_cols[] = {
    {"name", 14, 0}, {"type", 12, 1}, {"shape", 10, 2}, {"params", 7, 4}, {"mean", 9, 3}, {"std", 9, 3}, {"min", 9, 6},
    {"max", 9, 6},   {"zeros", 6, 5}, {"dead", 5, 3},   {"nonfin", 6, 5}, {"grad", 9, 4}, {"upd", 9, 5},
};
#define NCOLS (int)(sizeof layer_cols / sizeof layer_cols[0])

static void layer_cell(const wb_layer *l, int c, char *buf, size_t cap) {
    switch (c) {
    case 0: snprintf(buf, cap, "%s", l->name); break;
    case 1: snprintf(buf, cap, "%s", l->type); break;
    case 2: snprintf(buf, cap, "%s", l->shape); break;
    case 3: wb_fmt_count(l->params, buf, cap); break;
    case 4: wb_fmt_val(l->mean, buf, cap); break;
    case 5: wb_fmt_val(l->std, buf, cap); break;
    case 6: wb_fmt_val(l->min, buf, cap); break;
    case 7: wb_fmt_val(l->max, buf, cap); break;
    case 8: snprintf(buf, cap, isfinite(l->zeros) ? "%.0f%%" : "-", l->zeros * 100); break;
    case 9: wb_fmt_num(l->dead, buf, cap); break; /* channels all zero over the batch, "-" without channels */
    case 10: wb_fmt_num(l->nonfinite, buf, cap); break;
    case 11: wb_fmt_num(l->grad_norm, buf, cap); break;
    default: wb_fmt_num(l->update_ratio, buf, cap); break;
    }
}

typedef struct layers {
    int sel;        /* the selected row */
    int width;      /* the width the columns were chosen for */
    int use[NCOLS]; /* 1: the column is shown */
    int total;      /* columns used by the shown ones */
} layers;

/* Keeps columns by priority until the width is used up. */
static void choose_columns(layers *s, int width) {
    memset(s->use, 0, sizeof s->use);
    s->total = 0;
    s->width = width;
    for (int p = 0; p <= 6; p++)
        for (int c = 0; c < NCOLS; c++)
            if (layer_cols[c].prio == p && s->total + layer_cols[c].width + 1 <= width) {
                s->use[c] = 1;
                s->total += layer_cols[c].width + 1;
            }
}

static void layers_resize(wb *w, void *self, const wb_rect *r) { choose_columns(self, r->w); }

static void layers_draw(wb *w, void *self, const wb_rect *r) {
    layers *s = self;
    if (s->width != r->w) choose_columns(s, r->w);
    wb_title(w, r, "layers (stats over the whole last training batch; Enter inspects the selected layer)");
    wb_attr(w, WB_C_DIM, 1);
    for (int c = 0, x = r->x; c < NCOLS; c++)
        if (s->use[c]) {
            wb_putf(r->y + 1, x, layer_cols[c].width, c < 3 ? "%-*s" : "%*s", layer_cols[c].width, layer_cols[c].head);
            x += layer_cols[c].width + 1;
        }
    wb_attr(w, 0, 0);
    if (!w->m.nly)
        wb_put(r->y + 2, r->x, r->w,
               w->offline ? "(no layers snapshot in this run: a run that has ended keeps its curves, hparams and log)"
                          : "(waiting for the layers snapshot)");
    if (s->sel >= w->m.nly) s->sel = w->m.nly ? w->m.nly - 1 : 0;
    int rows = r->h - 2, first = 0;
    if (s->sel >= rows) first = s->sel - rows + 1;
    for (int i = first; i < w->m.nly && i - first < rows; i++) {
        const wb_layer *l = &w->m.ly[i];
        int bad = isfinite(l->nonfinite) && l->nonfinite > 0;
        attrset((i == s->sel ? A_REVERSE : 0) | (bad && w->colors ? COLOR_PAIR(WB_C_BAD) : 0));
        if (i == s->sel) mvhline(r->y + 2 + i - first, r->x, ' ', s->total);
        for (int c = 0, x = r->x; c < NCOLS; c++) {
            if (!s->use[c]) continue;
            char buf[64];
            layer_cell(l, c, buf, sizeof buf);
            wb_putf(r->y + 2 + i - first, x, layer_cols[c].width, c < 3 ? "%-*s" : "%*s", layer_cols[c].width, buf);
            x += layer_cols[c].width + 1;
        }
    }
    wb_attr(w, 0, 0);
}

static int select_row(wb *w, void *self, int ch) {
    layers *s = self;
    if (ch == KEY_UP || ch == 'k') {
        if (s->sel > 0) s->sel--;
    } else if (s->sel + 1 < w->m.nly) {
        s->sel++;
    }
    return 1;
}

static int inspect_row(wb *w, void *self, int ch) {
    layers *s = self;
    if (s->sel < w->m.nly) {
        char line[128];
        snprintf(line, sizeof line, "inspect %s", w->m.ly[s->sel].name);
        wb_send(w, line, 1);
        w->pane = WB_P_INSPECT;
    }
    return 1;
}

static const wb_binding layers_bindings[] = {
    {{KEY_UP, 'k', KEY_DOWN, 'j'}, "Up/Down", "select", NULL, NULL, select_row},
    {{'\r', '\n', KEY_ENTER}, "Enter", "inspects", NULL, NULL, inspect_row},
};
static const wb_keymap layers_keys = WB_KEYMAP("layers", layers_bindings);

static int layers_key(wb *w, void *self, int ch) { return wb_keymap_run(&layers_keys, w, self, ch); }

const wb_pane wb_pane_layers = {"layers", sizeof(layers), layers_draw, layers_key, layers_resize, &layers_keys};
