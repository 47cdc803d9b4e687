/* wb_pane_probe.c: the probe: the last `feed` reply as the input drawn as an
 * image, its label, the prediction and the top classes with bars. Its keys
 * feed another sample. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wb.h"

static void probe_draw(wb *w, void *self, const wb_rect *r) {
    const wb_probe *p = &w->m.probe;
    if (!p->valid) {
        wb_title(w, r, "probe");
        wb_put(r->y + 1, r->x, r->w,
               w->offline ? "(no probe: feeding an input needs a live run, and this one has ended)"
                          : "No probe yet: type  :feed test <I>  |  :feed random  |  :feed misclassified");
        return;
    }
    char t[256];
    snprintf(t, sizeof t, "probe %s  (r random, m misclassified, [ ] previous/next test sample)", p->source);
    wb_title(w, r, t);
    int used = 0, iw = 0;
    if (p->in_h > 0 && p->in_w > 0) {
        int rows, cols;
        wb_map_fit(p->in_h, p->in_w, r->h - 2, r->w / 2, &rows, &cols);
        used = wb_draw_map(w, r->y + 1, r->x, rows, cols, p->input, p->in_h, p->in_w);
        iw = cols;
        wb_attr(w, WB_C_DIM, 0);
        wb_putf(r->y + 1 + used, r->x, r->w, "input %s", p->input_shape);
        wb_attr(w, 0, 0);
    }
    int x = r->x + iw + 3, cw = r->w - iw - 3, y = r->y + 1;
    if (cw < 20) {
        x = r->x;
        cw = r->w;
        y = r->y + used + 2;
    }
    int right = p->label >= 0 && p->pred == p->label;
    wb_putf(y++, x, cw, "label      %d %s", p->label, p->label_name);
    wb_attr(w, p->label < 0 ? 0 : right ? WB_C_OK : WB_C_BAD, 1);
    wb_putf(y++, x, cw, "prediction %d %s  %s", p->pred, p->pred_name,
            p->label < 0 ? ""
            : right      ? "(right)"
                         : "(WRONG)");
    wb_attr(w, 0, 0);
    y++;
    wb_put(y++, x, cw, "top predictions");
    int bw = cw - 24;
    if (bw > 40) bw = 40;
    for (int i = 0; i < p->ntop && y < r->y + r->h; i++) {
        char bar[256];
        wb_bar(p->top[i].prob, bw > 0 ? bw : 0, w->utf8, bar, sizeof bar);
        wb_attr(w, i == 0 ? WB_C_ACC : 0, i == 0);
        wb_putf(y++, x, cw, "%-12.12s %6.2f%% %s", p->top[i].cls, p->top[i].prob * 100, bar);
    }
    wb_attr(w, WB_C_DIM, 0);
    if (p->layers[0] && y + 1 < r->y + r->h) wb_putf(++y, x, cw, "inspect now shows this input at: %s", p->layers);
    wb_attr(w, 0, 0);
}

static int feed_random(wb *w, void *self, int ch) {
    wb_send(w, "feed random", 0);
    return 1;
}

static int feed_misclassified(wb *w, void *self, int ch) {
    wb_send(w, "feed misclassified", 0);
    return 1;
}

/* The test sample before or after the shown one (when a test sample is shown). */
static int feed_neighbour(wb *w, void *self, int ch) {
    if (strncmp(w->m.probe.source, "test:", 5)) return 1;
    int idx = atoi(w->m.probe.source + 5);
    if (idx < 0) return 1;
    char line[64];
    snprintf(line, sizeof line, "feed test %d", ch == ']' ? idx + 1 : idx > 0 ? idx - 1 : 0);
    wb_send(w, line, 0);
    return 1;
}

static const wb_binding probe_bindings[] = {
    {{'r'}, "r", "random", NULL, NULL, feed_random},
    {{'m'}, "m", "misclassified", NULL, NULL, feed_misclassified},
    {{'[', ']'}, "[ ]", "previous/next test sample", NULL, NULL, feed_neighbour},
};
static const wb_keymap probe_keys = WB_KEYMAP("probe", probe_bindings);

static int probe_key(wb *w, void *self, int ch) { return wb_keymap_run(&probe_keys, w, self, ch); }

const wb_pane wb_pane_probe = {"probe", 0, probe_draw, probe_key, wb_pane_no_resize, &probe_keys};
