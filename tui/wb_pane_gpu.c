/* wb_pane_gpu.c: the GPU pane: the device the run trains on and the training
 * machine's GPU as its session measures it (NVML, the status's gpu= line):
 * utilisation and memory as bars, temperature, power against its limit. On a
 * cpu run it says so first; without NVML, why there are no figures. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "wb.h"

#define LABEL 11 /* columns of the labels on the left */

/* A value of a bar, or its text when unknown. */
static void bar_row(wb *w, int y, const wb_rect *r, const char *label, double v, double max, const char *text,
                    int pair) {
    wb_putf(y, r->x, LABEL, "%s", label);
    int bw = r->w - LABEL - 2 - 28;
    if (bw > 40) bw = 40;
    int x = r->x + LABEL;
    if (bw >= 6 && isfinite(v) && isfinite(max) && max > 0) {
        char bar[256];
        wb_bar(v / max, bw, w->utf8, bar, sizeof bar);
        wb_put(y, x, 1, "[");
        wb_attr(w, pair, 0);
        wb_put(y, x + 1, bw, bar);
        wb_attr(w, 0, 0);
        wb_put(y, x + 1 + bw, 1, "]");
        x += bw + 3;
    }
    wb_put(y, x, r->x + r->w - x, text);
}

/* text over at most rows rows of width cols from y, broken at blanks; returns the rows used */
static int wrapped(int y, int x, int cols, int rows, const char *text) {
    int used = 0;
    const char *p = text;
    while (*p && used < rows && cols > 0) {
        int n = (int)strlen(p);
        if (n > cols) {
            n = cols;
            while (n > cols / 2 && p[n] != ' ') n--;
            if (p[n] != ' ') n = cols;
        }
        char line[512];
        snprintf(line, sizeof line, "%.*s", n, p);
        wb_put(y + used++, x, cols, line);
        p += n;
        while (*p == ' ') p++;
    }
    return used;
}

static void gpu_draw(wb *w, void *self, const wb_rect *r) {
    const wb_status *st = &w->m.st;
    const wb_gpu *g = &st->gpu;
    wb_title(w, r, "gpu (the training machine's, measured by its session)");
    int y = r->y + 1, end = r->y + r->h;
    if (!st->valid) {
        wb_put(y, r->x, r->w, "(waiting for the run)");
        return;
    }
    int cpu = !strncmp(st->device, "cpu", 3);
    wb_putf(y, r->x, LABEL, "trains on");
    wb_attr(w, cpu ? WB_C_WARN : WB_C_OK, 1);
    wb_put(y, r->x + LABEL, r->w - LABEL, st->device[0] ? st->device : "-");
    wb_attr(w, 0, 0);
    if (cpu && y + 1 < end) wb_put(++y, r->x + LABEL, r->w - LABEL, "the run trains on the cpu");
    y += 2;
    if (y >= end) return;
    if (!g->known) {
        wb_put(y, r->x, r->w, "the run does not report its machine's GPU");
        return;
    }
    char what[32];
    snprintf(what, sizeof what, "GPU %d", g->index);
    wb_putf(y, r->x, LABEL, "%s", what);
    if (!g->ok) {
        wb_attr(w, WB_C_BAD, 0);
        wrapped(y, r->x + LABEL, r->w - LABEL, end - y, g->reason);
        wb_attr(w, 0, 0);
        return;
    }
    wb_attr(w, 0, 1);
    wb_put(y, r->x + LABEL, r->w - LABEL, g->name);
    wb_attr(w, 0, 0);
    if (cpu && ++y < end) wb_put(y, r->x + LABEL, r->w - LABEL, "(not used by this run)");
    char text[128];
    if (++y < end) {
        if (isfinite(g->util))
            snprintf(text, sizeof text, "%3.0f%%  (memory busy %.0f%%)", g->util, g->mem_util);
        else
            snprintf(text, sizeof text, "-");
        bar_row(w, y, r, "util", g->util, 100, text, WB_C_OK);
    }
    if (++y < end) {
        double frac = g->mem_total > 0 ? g->mem_used / g->mem_total : NAN;
        if (isfinite(g->mem_used) && isfinite(g->mem_total))
            snprintf(text, sizeof text, "%.0f / %.0f MiB  %.0f%%", g->mem_used, g->mem_total, 100 * frac);
        else
            snprintf(text, sizeof text, "-");
        bar_row(w, y, r, "memory", g->mem_used, g->mem_total, text, frac > 0.9 ? WB_C_WARN : WB_C_INFO);
    }
    if (++y < end) {
        wb_putf(y, r->x, LABEL, "temp");
        wb_attr(w, g->temp >= 90 ? WB_C_BAD : g->temp >= 80 ? WB_C_WARN : 0, g->temp >= 80);
        if (isfinite(g->temp))
            wb_putf(y, r->x + LABEL, r->w - LABEL, "%.0f C", g->temp);
        else
            wb_put(y, r->x + LABEL, r->w - LABEL, "-");
        wb_attr(w, 0, 0);
    }
    if (++y < end) {
        if (isfinite(g->power) && isfinite(g->power_limit))
            snprintf(text, sizeof text, "%.0f / %.0f W", g->power, g->power_limit);
        else if (isfinite(g->power))
            snprintf(text, sizeof text, "%.0f W", g->power);
        else
            snprintf(text, sizeof text, "-");
        bar_row(w, y, r, "power", g->power, g->power_limit, text, WB_C_LR);
    }
}

const wb_pane wb_pane_gpu = {"gpu", 0, gpu_draw, wb_pane_no_key, wb_pane_no_resize, &wb_keys_none};
