/* wb_pane.c: every pane by number, the state each one owns, and the
 * scrolling keys that the lists share. The panes are in wb_pane_<name>.c. */
#include <curses.h>
#include <stdlib.h>

#include "wb.h"

const wb_pane *const wb_panes[WB_NALLPANES] = {
    [WB_P_CURVES] = &wb_pane_curves,   [WB_P_HPARAMS] = &wb_pane_hparams, [WB_P_LAYERS] = &wb_pane_layers,
    [WB_P_INSPECT] = &wb_pane_inspect, [WB_P_PROBE] = &wb_pane_probe,     [WB_P_LOG] = &wb_pane_log,
    [WB_P_GPU] = &wb_pane_gpu,         [WB_P_STATUS] = &wb_pane_status,   [WB_P_MESSAGES] = &wb_pane_messages,
    [WB_P_FOOTER] = &wb_pane_footer,   [WB_P_HELP] = &wb_pane_help,       [WB_P_LRFIND] = &wb_pane_lrfind,
};

int wb_panes_init(wb *w) {
    for (int p = 0; p < WB_NALLPANES; p++) {
        size_t n = wb_panes[p]->state_size;
        /* zeroed state is every pane's starting state */
        w->pane_state[p] = n ? calloc(1, n) : NULL;
        if (n && !w->pane_state[p]) {
            wb_panes_free(w);
            return -1;
        }
    }
    return 0;
}

void wb_panes_free(wb *w) {
    for (int p = 0; p < WB_NALLPANES; p++) {
        free(w->pane_state[p]);
        w->pane_state[p] = NULL;
    }
}

void wb_pane_draw(wb *w, int p, const wb_rect *r) { wb_panes[p]->draw(w, w->pane_state[p], r); }
int wb_pane_key(wb *w, int p, int ch) { return wb_panes[p]->key(w, w->pane_state[p], ch); }
void wb_pane_resize(wb *w, int p, const wb_rect *r) { wb_panes[p]->resize(w, w->pane_state[p], r); }

int wb_pane_no_key(wb *w, void *self, int ch) { return 0; }
void wb_pane_no_resize(wb *w, void *self, const wb_rect *r) {}

/* ---- scrolling a list back from its newest row ---- */

#define PAGE 10

static int scroll_line(wb *w, void *self, int ch) {
    wb_scroll *s = self;
    if (ch == KEY_UP || ch == 'k')
        s->back++;
    else if (s->back > 0)
        s->back--;
    return 1;
}

static int scroll_page(wb *w, void *self, int ch) {
    wb_scroll *s = self;
    if (ch == KEY_PPAGE)
        s->back += PAGE;
    else
        s->back = s->back > PAGE ? s->back - PAGE : 0;
    return 1;
}

static int scroll_newest(wb *w, void *self, int ch) {
    ((wb_scroll *)self)->back = 0;
    return 1;
}

static const wb_binding scroll_bindings[] = {
    {{KEY_UP, 'k', KEY_DOWN, 'j'}, "Up/Down", "scroll", NULL, NULL, scroll_line},
    {{KEY_PPAGE, KEY_NPAGE}, "PgUp/PgDn", "page", NULL, NULL, scroll_page},
    {{KEY_END}, "End", "newest", NULL, NULL, scroll_newest},
};
const wb_keymap wb_keys_scroll = WB_KEYMAP("scrolling", scroll_bindings);
