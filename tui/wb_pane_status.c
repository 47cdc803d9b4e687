/* wb_pane_status.c: the status bar: experiment, state, epoch and step,
 * samples/s, elapsed (paused apart) and ETA, clients, device and what the
 * run's toolbox reports, terser below 90 columns (wb_status_text.c); under
 * it the progress bar of the epoch or of the validation, and at the end the
 * final metrics with the test results. */
#include <curses.h>
#include <stdio.h>
#include <string.h>

#include "wb.h"

static void status_draw(wb *w, void *self, const wb_rect *r) {
    const wb_status *st = &w->m.st;
    char state[24], buf[256];
    wb_attr(w, WB_C_BAR, 0);
    mvhline(r->y, 0, ' ', r->w);
    int x = 1;
    wb_attr(w, WB_C_BAR, 1);
    wb_putf(r->y, x, r->w - x, "%s", st->experiment[0] ? st->experiment : "lathe");
    x += (int)strlen(st->experiment[0] ? st->experiment : "lathe") + 2;
    const char *sname = w->gone[0] ? "gone" : st->state;
    size_t i = 0;
    for (; sname[i] && i < sizeof state - 1; i++)
        state[i] = (char)(sname[i] >= 'a' && sname[i] <= 'z' ? sname[i] - 32 : sname[i]);
    state[i] = 0;
    if (x < r->w) {
        attrset(A_BOLD | A_REVERSE | (w->colors ? COLOR_PAIR(wb_state_color(w->gone[0] ? "gone" : sname)) : 0));
        wb_putf(r->y, x, r->w - x, " %s ", state);
        x += (int)strlen(state) + 3;
    }
    wb_attr(w, WB_C_BAR, 0);
    wb_status_facts(st, lt_now(), r->w - x - 1, buf, sizeof buf);
    if (x < r->w) wb_put(r->y, x, r->w - x - 1, buf);
    wb_attr(w, 0, 0);
    /* the row under it: the epoch's or the validation's progress, or the end's metrics */
    if (r->h >= 2 && st->valid) {
        wb_status_progress(st, r->w - 2, buf, sizeof buf);
        wb_put(r->y + 1, 1, r->w - 2, buf);
    }
}

const wb_pane wb_pane_status = {"status", 0, status_draw, wb_pane_no_key, wb_pane_no_resize, &wb_keys_none};
