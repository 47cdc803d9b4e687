/* lathe/callbacks.h: Lightning's EarlyStopping and ModelCheckpoint decisions,
 * as plain state machines the trainer feeds with monitored values. They
 * decide; the trainer acts (stops, writes, deletes). */
#ifndef LATHE_CALLBACKS_H
#define LATHE_CALLBACKS_H

#include <math.h>

#include "lathe/common.h"

/* ---- EarlyStopping(monitor, min_delta, patience, mode, check_finite,
 *      stopping_threshold, divergence_threshold) ---- */
typedef struct lt_early_stopping {
    char monitor[32];
    int mode_max;                /* 0: "min", 1: "max" */
    double min_delta;            /* >= 0; an improvement must beat best by more */
    int patience;                /* checks without improvement before stopping */
    int check_finite;            /* stop when the monitored value is NaN/Inf */
    double stopping_threshold;   /* NAN: off; stop once the value is better than this */
    double divergence_threshold; /* NAN: off; stop once the value is worse than this */
    /* state */
    double best;
    int wait;
    int stopped;
    char reason[256];
} lt_early_stopping;

void lt_early_stopping_init(lt_early_stopping *es, const char *monitor, int mode_max, int patience, double min_delta);
/* Feeds one monitored value; returns 1 when training should stop (reason set). */
int lt_early_stopping_update(lt_early_stopping *es, double value);

/* ---- ModelCheckpoint(monitor, mode, save_top_k, save_last, every_n_epochs,
 *      every_n_train_steps) ---- */
#define LT_CKPT_MAX_TOPK 64
typedef struct lt_ckpt_policy {
    char monitor[32]; /* "" : no metric; keeps the newest save_top_k */
    int mode_max;
    int save_top_k; /* -1: keep all; 0: none (last only, if save_last) */
    int save_last;
    int every_n_epochs;       /* 0: not by epoch */
    long every_n_train_steps; /* 0: not by step */
    /* state: the kept checkpoints and their scores */
    int nkept;
    char kept[LT_CKPT_MAX_TOPK][256];
    double kept_score[LT_CKPT_MAX_TOPK];
    long kept_order[LT_CKPT_MAX_TOPK];
    long saves;
    char best_path[256];
    double best_score;
} lt_ckpt_policy;

void lt_ckpt_policy_init(lt_ckpt_policy *p);
/* Whether a checkpoint is due at the end of an epoch (0-based epoch just
 * finished) or after a training step. */
int lt_ckpt_due_epoch(const lt_ckpt_policy *p, long epoch);
int lt_ckpt_due_step(const lt_ckpt_policy *p, long step);
/* Offers a new candidate with its monitored score. Returns 1 when it should
 * be written (kept among the top k), 0 when not. When writing it pushes out
 * another, *evict is set to that path (caller deletes the file after the new
 * one is safely written); else evict[0] == 0. */
int lt_ckpt_offer(lt_ckpt_policy *p, const char *path, double score, char *evict, size_t evict_len);

#endif
