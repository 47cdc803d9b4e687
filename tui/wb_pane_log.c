/* wb_pane_log.c: the log pane: replies, events and errors, newest at the
 * bottom, scrolling back through the model's ring of lines. */
#include "wb.h"

static void log_draw(wb *w, void *self, const wb_rect *r) {
    wb_scroll *s = self;
    wb_title(w, r, "log (replies, events; Up/Down/PgUp/PgDn scroll)");
    int rows = r->h - 1;
    int maxs = w->m.log_n - rows;
    if (s->back > maxs) s->back = maxs > 0 ? maxs : 0;
    /* from the newest shown up, long lines wrapped */
    const wb_logline *l;
    for (int i = 0, y = r->y + rows; y > r->y && (l = wb_model_log_line(&w->m, s->back + i)); i++)
        y = wb_put_log_up(w, l, y, r->y + 1, r->x, r->w);
}

static int log_key(wb *w, void *self, int ch) { return wb_keymap_run(&wb_keys_scroll, w, self, ch); }

const wb_pane wb_pane_log = {"log", sizeof(wb_scroll), log_draw, log_key, wb_pane_no_resize, &wb_keys_scroll};
