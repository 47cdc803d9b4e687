/* wb_pane_messages.c: the message area above the command line: the newest
 * lines of the log (errors in red, typed commands dim; a long one wrapped), or a rule while the
 * log pane shows them already. */
#include "wb.h"

static void messages_draw(wb *w, void *self, const wb_rect *r) {
    if (w->pane == WB_P_LOG && !w->help && !w->lrfind) {
        /* the log pane is on screen and ends with these very lines: not twice */
        wb_attr(w, WB_C_DIM, 0);
        for (int x = 0; x < r->w; x++) wb_put(r->y + r->h - 1, r->x + x, 1, w->utf8 ? "\xE2\x94\x80" : "-");
        wb_attr(w, 0, 0);
        return;
    }
    /* the newest lines, wrapped: a long one (inspect's list of layers) is read whole */
    const wb_logline *l;
    for (int i = 0, y = r->y + r->h - 1; y >= r->y && (l = wb_model_log_line(&w->m, i)); i++)
        y = wb_put_log_up(w, l, y, r->y, r->x, r->w);
}

const wb_pane wb_pane_messages = {"messages", 0, messages_draw, wb_pane_no_key, wb_pane_no_resize, &wb_keys_none};
