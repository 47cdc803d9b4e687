/* wb_screen.c: ncurses helpers shared by the panes, and the fixed rows of the
 * screen: the status bar, the message area and the footer of keys. */
#include <curses.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wb.h"

void wb_put(int y, int x, int maxw, const char *s) {
    if (maxw <= 0 || y < 0 || x < 0 || y >= LINES || x >= COLS) return;
    if (x + maxw > COLS) maxw = COLS - x;
    /* Count bytes for at most maxw code points (every glyph we draw is one
     * column wide), so a UTF-8 sequence is never cut in half. */
    int cols = 0, bytes = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, bytes++) {
        if ((*p & 0xC0) != 0x80) {
            if (cols == maxw) break;
            cols++;
        }
    }
    mvaddnstr(y, x, s, bytes);
}

void wb_putf(int y, int x, int maxw, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    wb_put(y, x, maxw, buf);
}

void wb_attr(wb *w, int pair, int bold) {
    attr_t a = bold ? A_BOLD : A_NORMAL;
    if (pair == WB_C_DIM && !w->colors) a |= A_DIM;
    if (pair == WB_C_BAR && !w->colors) a |= A_REVERSE;
    attrset(a | (w->colors && pair ? COLOR_PAIR(pair) : 0));
}

void wb_title(wb *w, const wb_rect *r, const char *title) {
    wb_attr(w, WB_C_TITLE, 1);
    wb_put(r->y, r->x, r->w, title);
    wb_attr(w, 0, 0);
}

int wb_state_color(const char *s) {
    if (!strcmp(s, "running")) return WB_C_OK;
    if (!strcmp(s, "paused") || !strcmp(s, "stepping") || !strcmp(s, "stopping")) return WB_C_WARN;
    if (!strcmp(s, "validating") || !strcmp(s, "testing")) return WB_C_INFO;
    if (!strcmp(s, "done")) return WB_C_INFO;
    return WB_C_BAD; /* failed, gone, connecting */
}

void wb_draw_status(wb *w) {
    const wb_status *st = &w->m.st;
    const wb_rect *r = &w->r_status;
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

void wb_draw_footer(wb *w) {
    const wb_rect *r = &w->r_footer;
    const char *keys = w->focus_cmd  ? "Enter run  Esc leave  Tab complete  Up/Down history  Ctrl-R search"
                       : r->w >= 100 ? "spc pause  n step  v validate  tab pane  : cmd  ? help  L log  f follow"
                                     : "spc:pause n:step v:validate tab:pane ::cmd ?:help L:log f:follow";
    char buf[256];
    snprintf(buf, sizeof buf, " %s  %s", keys,
             w->focus_cmd  ? ""
             : w->owns_run ? (r->w >= 100 ? "q close" : "q:close")
                           : (r->w >= 100 ? "q detach" : "q:detach"));
    wb_attr(w, WB_C_BAR, 0);
    mvhline(r->y, 0, ' ', r->w);
    wb_put(r->y, 0, r->w, buf);
    /* The pane tabs, right-aligned when there is room. */
    char tabs[128] = "";
    size_t len = 0;
    for (int i = 0; i < WB_NPANES; i++)
        len += (size_t)snprintf(tabs + len, sizeof tabs - len, i == w->pane ? "[%s]" : " %s ", wb_panes[i].name);
    int need = (int)strlen(buf) + (int)len + 2;
    if (need <= r->w) {
        int x = r->w - (int)len - 1;
        for (int i = 0; i < WB_NPANES; i++) {
            char t[32];
            snprintf(t, sizeof t, i == w->pane ? "[%s]" : " %s ", wb_panes[i].name);
            wb_attr(w, WB_C_BAR, i == w->pane);
            wb_put(r->y, x, r->w - x, t);
            x += (int)strlen(t);
        }
    }
    wb_attr(w, 0, 0);
}

void wb_draw_messages(wb *w) {
    const wb_rect *r = &w->r_msg;
    for (int i = 0; i < r->h; i++) {
        const wb_logline *l = wb_model_log_line(&w->m, r->h - 1 - i);
        if (!l) continue;
        wb_attr(w, l->level == 2 ? WB_C_BAD : l->level == 3 ? WB_C_DIM : 0, l->level == 2);
        wb_put(r->y + i, r->x, r->w, l->text);
    }
    wb_attr(w, 0, 0);
}

int wb_draw_map(wb *w, int y, int x, int maxr, int maxc, const double *v, int h, int wd) {
    int rows, cols;
    wb_map_fit(h, wd, maxr, maxc, &rows, &cols);
    if (rows <= 0 || cols <= 0) return 0;
    double *grid = malloc((size_t)rows * cols * sizeof *grid);
    if (!grid) return 0;
    wb_map_resample(v, h, wd, grid, rows, cols);
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < rows * cols; i++)
        if (isfinite(grid[i])) {
            lo = fmin(lo, grid[i]);
            hi = fmax(hi, grid[i]);
        }
    int levels = wb_shade_levels(w->utf8);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            wb_put(y + r, x + c, 1,
                   wb_shade_glyph(wb_shade_level(grid[(size_t)r * cols + c], lo, hi, levels), w->utf8));
    free(grid);
    return rows;
}
