/* wb_pane_hparams.c: the hparams pane: the run's hparams (those changed by
 * hand in bold) and, beside them or below on a narrow screen, the history of
 * changes, which scrolls back from the newest. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "wb.h"

static void hparams_draw(wb *w, void *self, const wb_rect *r) {
    const wb_scroll *sc = self;
    int left = r->w >= 60 ? 34 : r->w;
    wb_rect t = {r->y, r->x, 1, left};
    wb_title(w, &t, "hparams");
    if (!w->m.nhp) wb_put(r->y + 1, r->x, left, "(waiting for the run)");
    for (int i = 0; i < w->m.nhp && i + 1 < r->h; i++) {
        const wb_hparam *h = &w->m.hp[i];
        /* bold when changed by hand during this run */
        int changed = 0;
        for (int k = 0; k < w->m.nch; k++) changed |= !strcmp(w->m.ch[k].name, h->name);
        wb_attr(w, changed ? WB_C_MARK : 0, changed);
        wb_putf(r->y + 1 + i, r->x, left - 1, "%-20s %s", h->name, h->value);
    }
    wb_attr(w, 0, 0);
    int cx = r->x + left + 1, cw = r->w - left - 1, y0 = r->y;
    if (left == r->w) { /* narrow: changes below */
        cx = r->x;
        cw = r->w;
        y0 = r->y + w->m.nhp + 2;
    }
    if (cw < 20 || y0 >= r->y + r->h - 1) return;
    wb_rect ct = {y0, cx, 1, cw};
    wb_title(w, &ct, "changes (step  name  old -> new  client)");
    int rows = r->y + r->h - y0 - 1;
    if (!w->m.nch) wb_put(y0 + 1, cx, cw, "(none yet)");
    int first = w->m.nch - rows - sc->back;
    if (first < 0) first = 0;
    for (int i = first, y = y0 + 1; i < w->m.nch && y < r->y + r->h; i++, y++) {
        const wb_change *c = &w->m.ch[i];
        char s[32];
        wb_fmt_count(c->step, s, sizeof s);
        wb_putf(y, cx, cw, "%7s  %-16s %s -> %s  %s", isfinite(c->step) ? s : "-", c->name, c->old, c->now, c->client);
    }
}

static int hparams_key(wb *w, void *self, int ch) { return wb_keymap_run(&wb_keys_scroll, w, self, ch); }

const wb_pane wb_pane_hparams = {"hparams",   sizeof(wb_scroll), hparams_draw,
                                 hparams_key, wb_pane_no_resize, &wb_keys_scroll};
