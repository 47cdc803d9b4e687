/* wb_pane_status.c: the status bar: experiment, state, epoch and step,
 * samples/s, elapsed and ETA, device, clients and what the run's toolbox
 * reports, terser below 100 columns. */
#include <curses.h>
#include <stdio.h>
#include <string.h>

#include "wb.h"

static void status_draw(wb *w, void *self, const wb_rect *r) {
    const wb_status *st = &w->m.st;
    char state[24], rate[16], el[16], eta[16], buf[256];
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
    wb_fmt_count(st->samples_per_s, rate, sizeof rate);
    wb_fmt_dur(st->elapsed, el, sizeof el);
    wb_fmt_dur(st->eta, eta, sizeof eta);
    if (r->w >= 100)
        snprintf(buf, sizeof buf, "epoch %.0f/%.0f  step %.0f/%.0f  %s/s  %s ETA %s  %s  %.0f client%s", st->epoch,
                 st->max_epochs, st->step, st->total_steps, rate, el, eta, st->device[0] ? st->device : "-",
                 st->clients, st->clients == 1 ? "" : "s");
    else /* 80 columns: the same facts, terser */
        snprintf(buf, sizeof buf, "ep %.0f/%.0f step %.0f/%.0f %s/s %s<%s %s %.0fcl", st->epoch, st->max_epochs,
                 st->step, st->total_steps, rate, el, eta, st->device[0] ? st->device : "-", st->clients);
    if (st->toolbox[0] && strlen(buf) + strlen(st->toolbox) + 2 < sizeof buf) {
        strcat(buf, "  ");
        strcat(buf, st->toolbox);
    }
    /* Unknown numbers print as "nan": show a dash instead. */
    for (char *p; (p = strstr(buf, "nan"));) memmove(p + 1, p + 3, strlen(p + 3) + 1), *p = '-';
    if (x < r->w) wb_put(r->y, x, r->w - x - 1, buf);
    wb_attr(w, 0, 0);
}

const wb_pane wb_pane_status = {"status", 0, status_draw, wb_pane_no_key, wb_pane_no_resize, &wb_keys_none};
