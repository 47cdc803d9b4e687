/* wb_pane_help.c: the help overlay, drawn where the panes were: the keys from
 * the key tables (wb_help.c) and the commands. Any key closes it (wb_keys.c),
 * so it has no keys of its own. */
#include "wb.h"

static void help_draw(wb *w, void *self, const wb_rect *r) {
    char text[4096];
    wb_help_text(r->w, text, sizeof text);
    /* a run that has ended: its steering keys and commands answer that it has */
    wb_title(w, r, w->offline ? "help  (" WB_READ_ONLY ": spc, n, v, A and set, pause, step need a live run)" : "help");
    const char *p = text;
    for (int i = 0; *p && i + 1 < r->h; i++) {
        int n = 0;
        while (p[n] && p[n] != '\n') n++;
        wb_putf(r->y + 1 + i, r->x, r->w, "%.*s", n, p);
        p += n + (p[n] == '\n');
    }
}

const wb_pane wb_pane_help = {"help", 0, help_draw, wb_pane_no_key, wb_pane_no_resize, &wb_keys_none};
