/* lathe/profiler.h: Lightning's SimpleProfiler (--profiler simple): wall time
 * per trainer hook (training_step, backward, optimizer_step, data loading,
 * validation, callbacks) and per op kind (each layer kind's forward, each op's
 * backward). Recording costs two clock reads per measured action. */
#ifndef LATHE_PROFILER_H
#define LATHE_PROFILER_H

#include <stddef.h>

#define LT_PROF_MAX 64

typedef struct lt_prof_entry {
    char name[48];
    double total; /* seconds */
    long calls;
} lt_prof_entry;

typedef struct lt_profiler {
    lt_prof_entry e[LT_PROF_MAX];
    int n;
    double start; /* lt_now() when created */
} lt_profiler;

void lt_prof_init(lt_profiler *p);
/* Adds one call of `seconds` to the named action (names past LT_PROF_MAX are dropped). */
void lt_prof_add(lt_profiler *p, const char *name, double seconds);
/* lt_prof_add with the profiler as a void pointer: the graph's timing hook
 * (lt_graph.timed, timed_ctx = the profiler). */
void lt_prof_hook(void *profiler, const char *name, double seconds);
/* The report as text: one row per action, slowest total first, with mean ms,
 * calls, total s and the share of the time since init. Returns bytes written. */
size_t lt_prof_report(const lt_profiler *p, char *out, size_t cap);

#endif
