/* wb_pane_footer.c: the footer: the keys that work now (from the key tables,
 * wb_help.c) and, right-aligned when there is room, the panes' tabs. */
#include <curses.h>
#include <stdio.h>
#include <string.h>

#include "wb.h"

static void footer_draw(wb *w, void *self, const wb_rect *r) {
    char buf[256];
    wb_footer_keys(w, r->w, buf, sizeof buf);
    wb_attr(w, WB_C_BAR, 0);
    mvhline(r->y, 0, ' ', r->w);
    wb_put(r->y, 0, r->w, buf);
    /* The pane tabs, right-aligned when there is room. */
    char tabs[128] = "";
    size_t len = 0;
    for (int i = 0; i < WB_NPANES; i++)
        len += (size_t)snprintf(tabs + len, sizeof tabs - len, i == w->pane ? "[%s]" : " %s ", wb_panes[i]->name);
    int need = (int)strlen(buf) + (int)len + 2;
    if (need <= r->w) {
        int x = r->w - (int)len - 1;
        for (int i = 0; i < WB_NPANES; i++) {
            char t[32];
            snprintf(t, sizeof t, i == w->pane ? "[%s]" : " %s ", wb_panes[i]->name);
            wb_attr(w, WB_C_BAR, i == w->pane);
            wb_put(r->y, x, r->w - x, t);
            x += (int)strlen(t);
        }
    }
    wb_attr(w, 0, 0);
}

const wb_pane wb_pane_footer = {"footer", 0, footer_draw, wb_pane_no_key, wb_pane_no_resize, &wb_keys_none};
