/* wb_layout.c: where things go on the screen. The terminal's size picks one
 * of two layouts: from 80x24 the status bar, one pane, the messages, the
 * command line and the footer; from 130 columns the curves with a pane beside
 * them. The layout also says which panes take keys, and draws the frame. */
#include <curses.h>

#include "wb.h"

void wb_layout_compute(wb_layout *l, int rows, int cols) {
    int H = rows, W = cols;
    int nmsg = H >= 30 ? 3 : H >= 16 ? 2 : 1;
    l->status = (wb_rect){0, 0, 2, W}; /* the bar and the progress line under it */
    l->footer = (wb_rect){H - 1, 0, 1, W};
    l->cmd = (wb_rect){H - 2, 0, 1, W};
    l->msg = (wb_rect){H - 2 - nmsg, 0, nmsg, W};
    int mh = H - 3 - nmsg - 1; /* the progress line between the status bar and the pane */
    if (mh < 1) mh = 1;
    if (W >= 130) {
        int lw = W * 11 / 20;
        l->main = (wb_rect){2, 0, mh, lw - 1};
        l->side = (wb_rect){2, lw + 1, mh, W - lw - 1};
        l->wide = 1;
    } else {
        l->main = (wb_rect){2, 0, mh, W};
        l->side = (wb_rect){0, 0, 0, 0};
        l->wide = 0;
    }
}

/* On a wide screen, the pane beside the curves: the chosen one, or the
 * hparams when the chosen one is the curves themselves. Derived from w->pane
 * at each use, so a pane chosen by a command shows at once. */
int wb_side_pane(const wb *w) { return w->pane == WB_P_CURVES ? WB_P_HPARAMS : w->pane; }

/* The rectangle pane p is drawn in under this layout. */
static const wb_rect *rect_of(const wb *w, int p) {
    switch (p) {
    case WB_P_STATUS: return &w->lay.status;
    case WB_P_MESSAGES: return &w->lay.msg;
    case WB_P_FOOTER: return &w->lay.footer;
    case WB_P_HELP:
    case WB_P_LRFIND:
    case WB_P_CURVES: return &w->lay.main;
    default: return w->lay.wide ? &w->lay.side : &w->lay.main;
    }
}

void wb_layout_apply(wb *w) {
    getmaxyx(stdscr, w->rows, w->cols);
    wb_layout_compute(&w->lay, w->rows, w->cols);
    for (int p = 0; p < WB_NALLPANES; p++) wb_pane_resize(w, p, rect_of(w, p));
}

/* The pane beside the curves takes its keys first; the curves get the rest. */
int wb_layout_key_panes(const wb *w, int out[2]) {
    if (!w->lay.wide) {
        out[0] = w->pane;
        return 1;
    }
    out[0] = wb_side_pane(w);
    out[1] = WB_P_CURVES;
    return 2;
}

void wb_draw_frame(wb *w) {
    erase();
    if (w->rows < 8 || w->cols < 30) {
        wb_put(0, 0, w->cols, "lathe: the terminal is too small");
        refresh();
        return;
    }
    wb_pane_draw(w, WB_P_STATUS, &w->lay.status);
    if (w->help) {
        wb_pane_draw(w, WB_P_HELP, &w->lay.main);
    } else if (w->lrfind) {
        wb_pane_draw(w, WB_P_LRFIND, &w->lay.main);
    } else if (w->lay.wide) {
        wb_pane_draw(w, WB_P_CURVES, &w->lay.main);
        wb_attr(w, WB_C_DIM, 0);
        for (int y = 0; y < w->lay.side.h; y++)
            wb_put(w->lay.side.y + y, w->lay.side.x - 1, 1, w->utf8 ? "\xE2\x94\x82" : "|");
        wb_attr(w, 0, 0);
        wb_pane_draw(w, wb_side_pane(w), &w->lay.side);
    } else {
        wb_pane_draw(w, w->pane, &w->lay.main);
    }
    wb_pane_draw(w, WB_P_MESSAGES, &w->lay.msg);
    wb_pane_draw(w, WB_P_FOOTER, &w->lay.footer);
    wb_rl_draw(w, &w->lay.cmd); /* last: it leaves the cursor on the command line */
    refresh();
}
