/* wb_pane_lrfind.c: the lr-find view, drawn where the panes were when an
 * lr-find reply arrives: the smoothed loss against the lr as `lathe lr-find`
 * draws it (wb_lrfind_plot), the suggestion or why there is none. Any key
 * closes it; A applies the suggestion (wb_keys.c), so it has no keys of its
 * own. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wb.h"

static void lrfind_draw(wb *w, void *self, const wb_rect *r) {
    const wb_lrfind *f = &w->m.lrf;
    char t[320];
    if (isfinite(f->suggested_lr))
        snprintf(t, sizeof t, "lr-find: suggested lr %.4g (^)  A applies it, any other key closes", f->suggested_lr);
    else
        snprintf(t, sizeof t, "lr-find: no suggestion  (any key closes)");
    wb_title(w, r, t);
    int y = r->y + 1;
    if (!isfinite(f->suggested_lr)) {
        wb_attr(w, WB_C_WARN, 0);
        wb_put(y++, r->x, r->w, f->reason[0] ? f->reason : "no suggestion");
        wb_attr(w, 0, 0);
    }
    if (f->stopped_early) wb_put(y++, r->x, r->w, "the sweep stopped early: the loss diverged");
    int pw = r->w - WB_LRFIND_YLAB - 2, ph = r->y + r->h - y - 3;
    if (pw > 70) pw = 70;
    if (f->npoints < 2 || pw < 10 || ph < 3) return;
    size_t cap = (size_t)(ph + 3) * ((size_t)pw * 3 + 64) + 64;
    char *buf = malloc(cap);
    if (!buf) return;
    wb_lrfind_plot(f->lr, f->smoothed, f->npoints, f->suggested_lr, pw, ph, w->utf8, buf, cap);
    for (char *p = buf, *nl; *p && y < r->y + r->h; p = nl + 1, y++) {
        if (!(nl = strchr(p, '\n'))) break;
        *nl = '\0';
        wb_put(y, r->x, r->w, p);
    }
    free(buf);
}

const wb_pane wb_pane_lrfind = {"lr-find", 0, lrfind_draw, wb_pane_no_key, wb_pane_no_resize, &wb_keys_none};
