/* The simple profiler: named wall-time accumulators and a sorted report. */
#include "lathe/profiler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lathe/common.h"

void lt_prof_init(lt_profiler *p) {
    memset(p, 0, sizeof *p);
    p->start = lt_now();
}

void lt_prof_add(lt_profiler *p, const char *name, double seconds) {
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->e[i].name, name)) {
            p->e[i].total += seconds;
            p->e[i].calls++;
            return;
        }
    if (p->n == LT_PROF_MAX) return;
    lt_prof_entry *e = &p->e[p->n++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->total = seconds;
    e->calls = 1;
}

void lt_prof_hook(void *profiler, const char *name, double seconds) { lt_prof_add(profiler, name, seconds); }

static int by_total(const void *a, const void *b) {
    double x = ((const lt_prof_entry *)a)->total, y = ((const lt_prof_entry *)b)->total;
    return x < y ? 1 : x > y ? -1 : 0;
}

size_t lt_prof_report(const lt_profiler *p, char *out, size_t cap) {
    lt_prof_entry sorted[LT_PROF_MAX];
    memcpy(sorted, p->e, (size_t)p->n * sizeof sorted[0]);
    qsort(sorted, (size_t)p->n, sizeof sorted[0], by_total);
    double wall = lt_now() - p->start;
    size_t o = 0;
    int k = snprintf(out, cap, "%-32s %12s %10s %12s %8s\n", "Action", "Mean (ms)", "Calls", "Total (s)", "Percent");
    if (k > 0) o += (size_t)k;
    k = snprintf(out + (o < cap ? o : cap), o < cap ? cap - o : 0, "%-32s %12s %10s %12.3f %8s\n", "Total", "-", "-",
                 wall, "100 %");
    if (k > 0) o += (size_t)k;
    for (int i = 0; i < p->n && o < cap; i++) {
        const lt_prof_entry *e = &sorted[i];
        k = snprintf(out + o, cap - o, "%-32s %12.3f %10ld %12.3f %7.1f %%\n", e->name,
                     1e3 * e->total / (double)e->calls, e->calls, e->total, wall > 0 ? 100.0 * e->total / wall : 0.0);
        if (k > 0) o += (size_t)k;
    }
    return o < cap ? o : cap;
}
