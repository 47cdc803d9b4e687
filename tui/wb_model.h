/* wb_model.h: what the workbench knows about the run, filled from replies,
 * events and snapshots of the control protocol (core/control/COMMANDS.md),
 * read with the decoders of lathe/ctl_proto.h. Bookkeeping only, no ncurses,
 * so it can be unit-tested. A body or event that does not decode changes
 * nothing and puts the decoder's one-line message in the log; the fixed-size
 * tables drop what does not fit. */
#ifndef LATHE_TUI_WB_MODEL_H
#define LATHE_TUI_WB_MODEL_H

#include <stddef.h>

#include "lathe/ctl_proto.h"

#define WB_NAME 64
#define WB_HPARAMS_MAX 64
#define WB_CHANGES_MAX 256
#define WB_LAYERS_MAX 128
#define WB_LOG_MAX 256
#define WB_LOG_LINE 240
#define WB_TOPK 5

/* A growing series of (step, value) points. When it reaches cap points, every
 * other old point is dropped, so memory stays bounded on long runs while the
 * curve keeps its shape. */
typedef struct wb_series {
    double *x, *y;
    int n, cap;
} wb_series;

enum { WB_S_TRAIN_LOSS, WB_S_VAL_LOSS, WB_S_VAL_ACC, WB_S_LR, WB_S_RATE, WB_S_COUNT };

/* The training machine's GPU, as the status's `gpu=` line says. */
typedef struct wb_gpu {
    int known; /* the status had a gpu= line */
    int ok;    /* measured; else reason says why not */
    int index;
    char name[WB_NAME + 32], reason[200];
    double util, mem_util, mem_used, mem_total, temp, power, power_limit; /* %, MiB, C, W; NaN: not given */
} wb_gpu;

/* One rank of a data-parallel run, as the status's `ranks=` lines say. */
#define WB_RANKS_MAX 64
typedef struct wb_rank {
    int rank, slow, silent;
    char host[64], device[64];
    double step, samples_per_s, age, util, mem_used, mem_total; /* NaN: not given */
} wb_rank;

typedef struct wb_status {
    char state[16], experiment[WB_NAME], device[128], run_dir[256];
    double epoch, max_epochs, step, total_steps, samples, samples_per_s, train_loss, val_loss, val_acc, test_acc, lr,
        elapsed, eta, clients;
    double batch, batches;    /* progress through the epoch, or the validation or test pass; NaN: unknown */
    double test_loss, paused; /* paused: seconds spent paused (elapsed includes them) */
    double received;          /* when this status came (lt_now() s): the clock runs on from there */
    char toolbox[128];        /* "|g| 1.23  scale 32768 (2 skipped)  bf16-mixed: cpu amx-bf16": the run's toolbox */
    wb_gpu gpu;
    int nranks; /* a data-parallel run's ranks (0: one process) */
    wb_rank ranks[WB_RANKS_MAX];
    double ranks_samples_per_s; /* their total */
    int valid;
} wb_status;

typedef struct wb_hparam {
    char name[WB_NAME], value[32];
} wb_hparam;

typedef struct wb_change {
    double step, time;
    char name[WB_NAME], old[32], now[32], client[16];
} wb_change;

typedef struct wb_layer {
    char name[WB_NAME], type[32], shape[32];
    double params, mean, std, min, max, zeros, nonfinite, weight_norm, grad_norm, update_ratio;
    double dead; /* channels all zero over the batch; NaN for an output without channels */
} wb_layer;

typedef struct wb_inspect {
    int valid, truncated, map_h, map_w, sample, channel; /* sample -1: a parameter's view */
    char layer[WB_NAME], what[16], source[32], shape[32], full_shape[32];
    double mean, std, min, max, zeros, nonfinite, hist_min, hist_max;
    double hist[20];
    int nhist;
    double *values;
    int nvalues;
} wb_inspect;

typedef struct wb_probe {
    int valid, label, pred, ntop, in_h, in_w;
    char source[128], label_name[WB_NAME], pred_name[WB_NAME], input_shape[32], layers[256];
    double prob_sum;
    struct {
        char cls[WB_NAME];
        double prob;
    } top[WB_TOPK];
    double *input;
    int ninput;
} wb_probe;

/* The last lr-find reply: the smoothed loss against the lr, the suggestion
 * (NaN: none) and, without one, why. */
typedef struct wb_lrfind {
    int valid, npoints, stopped_early;
    double suggested_lr, *lr, *smoothed; /* npoints each */
    char reason[200];
} wb_lrfind;

typedef struct wb_logline {
    int level; /* 0 info, 1 reply, 2 error, 3 command echo */
    char text[WB_LOG_LINE];
} wb_logline;

typedef struct wb_model {
    wb_status st;
    wb_series series[WB_S_COUNT];
    /* the read-only view of a fork: its parent's points up to the fork's
       step (wb_offline.c), drawn under the fork's own; parent_name[0] == 0: none */
    wb_series parent[WB_S_COUNT];
    char parent_name[WB_NAME];
    double parent_step;
    wb_hparam hp[WB_HPARAMS_MAX];
    int nhp;
    wb_change ch[WB_CHANGES_MAX];
    int nch;
    wb_layer ly[WB_LAYERS_MAX];
    int nly;
    wb_inspect insp;
    wb_probe probe;
    wb_lrfind lrf;
    wb_logline log[WB_LOG_MAX];
    int log_head, log_n; /* ring: oldest at log_head */
    unsigned version;    /* bumped on every change, so the screen knows to redraw */
} wb_model;

void wb_model_init(wb_model *m);
void wb_model_free(wb_model *m);

void wb_series_add(wb_series *s, double x, double y);
int wb_series_index(const char *name); /* WB_S_* or -1 */

/* Replies and snapshots (bodies are NUL-terminated text). */
void wb_model_status(wb_model *m, const char *body);
void wb_model_hparams(wb_model *m, const char *body);
void wb_model_changes(wb_model *m, const char *body); /* the `changes` reply */
void wb_model_history(wb_model *m, const char *body); /* replaces the series and changes */
void wb_model_layers(wb_model *m, const char *body);
void wb_model_inspect(wb_model *m, const char *body);
void wb_model_probe(wb_model *m, const char *body);
/* The `lr-find` reply: 0, or -1 when it did not decode (nothing changed). */
int wb_model_lrfind(wb_model *m, const char *body);
/* An EVENT text (point, hparam, state, anomaly, log), or one decoded already. */
void wb_model_event(wb_model *m, const char *text);
void wb_model_apply_event(wb_model *m, const lt_ctl_event *e);

void wb_model_log(wb_model *m, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* The i-th newest log line (0 = newest), or NULL. */
const wb_logline *wb_model_log_line(const wb_model *m, int i);
/* The value of an hparam, or NULL. */
const char *wb_model_hparam(const wb_model *m, const char *name);

/* What the inspector's statistics cover, to tell them from the layers pane's
 * (over the whole last batch), in at most 30 columns: "stats: sample 3 of the
 * batch", "stats: the probed input", "stats: the whole weight". */
void wb_inspect_scope(const wb_inspect *in, char *buf, size_t cap);

/* ---- the status bar's texts (wb_status_text.c) ---- */
/* Whether state names a run still going (running, paused, validating, ...). */
int wb_state_live(const char *state);
/* The clock: wall time since the fit began and the part of it spent paused,
 * running on from when the status came while the run is live. */
void wb_status_clock(const wb_status *st, double now, double *elapsed, double *paused);
/* The status bar's facts after the state, in at most width columns:
 * "epoch 2/5  step 120/2345  334 samples/s  elapsed 01:23  ETA 00:12  cpu  1 client". */
void wb_status_facts(const wb_status *st, double now, int width, char *buf, size_t cap);
/* The line under it: the epoch's or the validation's progress bar, or at the
 * end the final metrics with the test results; "" when there is nothing. */
void wb_status_progress(const wb_status *st, int width, char *buf, size_t cap);

#endif
