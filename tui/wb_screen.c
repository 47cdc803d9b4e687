/* wb_screen.c: ncurses helpers shared by the panes. */
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

int wb_put_log_up(wb *w, const wb_logline *l, int y, int ytop, int x, int width) {
    int st[16], ln[16], k = wb_wrap(l->text, width, st, ln, 16);
    char piece[WB_LOG_LINE];
    wb_attr(w, l->level == 2 ? WB_C_BAD : l->level == 3 ? WB_C_DIM : 0, l->level == 2);
    for (int j = k - 1; j >= 0 && y >= ytop; j--, y--) {
        snprintf(piece, sizeof piece, "%.*s", ln[j], l->text + st[j]);
        wb_put(y, x, width, piece);
    }
    wb_attr(w, 0, 0);
    return y;
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
    if (!strcmp(s, "validating") || !strcmp(s, "testing") || !strcmp(s, "lr-find") || !strcmp(s, "checkpointing"))
        return WB_C_INFO;
    if (!strcmp(s, "done") || !strcmp(s, "stopped")) return WB_C_INFO;
    if (!strcmp(s, "interrupted")) return WB_C_WARN;
    return WB_C_BAD; /* failed, gone, connecting */
}

int wb_draw_map(wb *w, int y, int x, int maxr, int maxc, const double *v, int h, int wd) {
    int rows, cols;
    wb_map_fit(h, wd, maxr, maxc, &rows, &cols);
    if (rows <= 0 || cols <= 0) return 0;
    int *lv = malloc((size_t)rows * cols * sizeof *lv);
    if (!lv) return 0;
    wb_map_shade(v, h, wd, rows, cols, wb_shade_levels(w->utf8), lv);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) wb_put(y + r, x + c, 1, wb_shade_glyph(lv[(size_t)r * cols + c], w->utf8));
    free(lv);
    return rows;
}
