/* wb_pane_gpu.c: the GPU pane: the device the run trains on and the training
 * machine's GPU as its session measures it (NVML, the status's gpu= line):
 * utilisation and memory as bars, temperature, power against its limit. On a
 * cpu run it says so first; without NVML, why there are no figures. A
 * data-parallel run adds its ranks (the status's ranks= lines) above the GPU:
 * one row per rank with its host, device, step, samples/s, GPU utilisation
 * and memory ("-" on a CPU rank) and the age of its last heartbeat, a slow
 * or silent rank marked, and the total samples/s. */
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

/* A data-parallel run's ranks: one row each (a slow or silent one marked),
 * then their total; returns the rows used. */
static int ranks_draw(wb *w, const wb_status *st, const wb_rect *r, int y, int end) {
    int y0 = y;
    if (y >= end) return 0;
    wb_attr(w, 0, 1);
    wb_putf(y++, r->x, r->w, "%-4s %-12s %-12s %7s %9s %4s %11s %5s", "rank", "host", "device", "step", "samples/s",
            "util", "memory MiB", "beat");
    wb_attr(w, 0, 0);
    for (int i = 0; i < st->nranks && y < end; i++, y++) {
        const wb_rank *k = &st->ranks[i];
        char util[16], mem[32], step[24], rate[24], age[16];
        if (isfinite(k->util))
            snprintf(util, sizeof util, "%.0f%%", k->util);
        else
            snprintf(util, sizeof util, "-");
        if (isfinite(k->mem_used) && isfinite(k->mem_total))
            snprintf(mem, sizeof mem, "%.0f/%.0f", k->mem_used, k->mem_total);
        else
            snprintf(mem, sizeof mem, "-");
        if (isfinite(k->step))
            snprintf(step, sizeof step, "%.0f", k->step);
        else
            snprintf(step, sizeof step, "-");
        if (isfinite(k->samples_per_s))
            snprintf(rate, sizeof rate, "%.1f", k->samples_per_s);
        else
            snprintf(rate, sizeof rate, "-");
        if (isfinite(k->age))
            snprintf(age, sizeof age, "%.1fs", k->age);
        else
            snprintf(age, sizeof age, "-");
        wb_putf(y, r->x, r->w, "%-4d %-12.12s %-12.12s %7s %9s %4s %11s %5s", k->rank, k->host, k->device, step, rate,
                util, mem, age);
        const char *mark = k->silent ? "SILENT" : k->slow ? "SLOW" : NULL;
        int mx = r->x + 4 + 1 + 12 + 1 + 12 + 1 + 7 + 1 + 9 + 1 + 4 + 1 + 11 + 1 + 5 + 1;
        if (mark && mx < r->x + r->w) {
            wb_attr(w, k->silent ? WB_C_BAD : WB_C_WARN, 1);
            wb_put(y, mx, r->x + r->w - mx, mark);
            wb_attr(w, 0, 0);
        }
    }
    if (y < end) {
        char total[32];
        if (isfinite(st->ranks_samples_per_s))
            snprintf(total, sizeof total, "%.1f", st->ranks_samples_per_s);
        else
            snprintf(total, sizeof total, "-");
        wb_attr(w, 0, 1);
        wb_putf(y++, r->x, r->w, "%-4s %-12s %-12s %7s %9s", "all", "", "", "", total);
        wb_attr(w, 0, 0);
    }
    return y - y0;
}

static void gpu_draw(wb *w, void *self, const wb_rect *r) {
    const wb_status *st = &w->m.st;
    const wb_gpu *g = &st->gpu;
    wb_title(w, r,
             st->nranks > 1 ? "gpu and ranks (rank 0's machine; the ranks as rank 0 hears them)"
                            : "gpu (the training machine's, measured by its session)");
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
    if (st->nranks > 1) y += ranks_draw(w, st, r, y, end) + 1;
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
