/* lathe/lrfind.h: the learning-rate range test, as Lightning's
 * Tuner.lr_find / LearningRateFinder callback.
 *
 * From the trainer's current weights, num_training real training steps (the
 * experiment's training_step, backward, optimizer step) on the next training
 * batches, with the lr swept exponentially from min_lr to max_lr:
 *   lr_i = min_lr * (max_lr / min_lr)^(i / (num_training - 1)),  i = 0..n-1
 * Each loss is smoothed with a bias-corrected exponential moving average
 * (beta 0.98):
 *   avg_i = beta * avg_{i-1} + (1 - beta) * loss_i,  smoothed_i = avg_i / (1 - beta^(i+1))
 * and the sweep stops early once smoothed_i > early_stop_threshold * best
 * smoothed loss so far (checked from i = 1 on), or at a non-finite loss.
 * The suggestion is the lr at the steepest descent of the smoothed losses:
 * argmin of np.gradient over the finite smoothed losses, skipping the first 10
 * and the last point, kept only when the curve shows a clear descent
 * (lt_lrfind_judge): a sweep from weights that already train well is flat
 * noise until it diverges, and its steepest point means nothing.
 *
 * Afterwards everything the sweep touched is as it was, bit for bit: the
 * parameters, gradients and buffers, the optimizer's state and step count,
 * every hparam, the trainer's RNG, its step/epoch/samples counters and the
 * other per-step statistics, the logged metrics, and the train loader's
 * position. (Only the layers' last outputs, graph memory, then hold the
 * sweep's last batch.) */
#ifndef LATHE_LRFIND_H
#define LATHE_LRFIND_H

#include "lathe/train.h"

#define LT_LRFIND_BETA 0.98
#define LT_LRFIND_SKIP_BEGIN 10
#define LT_LRFIND_SKIP_END 1

typedef struct lt_lrfind_point {
    double lr;       /* the lr this step ran with */
    double loss;     /* the batch's training loss */
    double smoothed; /* bias-corrected moving average; NaN after a non-finite loss */
} lt_lrfind_point;

typedef struct lt_lrfind_opts {
    double min_lr, max_lr;       /* 0 < min_lr < max_lr (defaults 1e-8, 1) */
    int num_training;            /* steps in a full sweep, >= 2 (default 100) */
    double early_stop_threshold; /* <= 0 or NaN: never stop early (default 4) */
    /* optional: called after every step (progress), on the caller's thread */
    void (*on_point)(const lt_lrfind_point *p, int i, int n, void *user);
    void *user;
} lt_lrfind_opts;

void lt_lrfind_opts_defaults(lt_lrfind_opts *o);

typedef struct lt_lrfind_result {
    lt_lrfind_point *points; /* [steps], owned (lt_lrfind_result_free) */
    int steps;               /* steps run (points recorded) */
    int stopped_early;       /* diverged before num_training steps */
    int suggestion;          /* index into points; -1 when none */
    double suggested_lr;     /* points[suggestion].lr, NaN when none */
    char no_suggestion[200]; /* why there is none ("" when there is one) */
    double min_loss;         /* the smallest finite smoothed loss, NaN when none */
} lt_lrfind_result;

void lt_lrfind_result_free(lt_lrfind_result *r);

/* Runs the sweep on t (an initialised trainer, between steps) and puts it
 * back. *r is overwritten (free it with lt_lrfind_result_free, also after an
 * error). On an error during the sweep the trainer is still restored and the
 * message names the step. */
int lt_lrfind_run(lt_trainer *t, const lt_lrfind_opts *o, lt_lrfind_result *r, lt_err *err);

/* Lightning's suggestion rule on n smoothed losses: drop the first skip_begin
 * and the last skip_end points, then the non-finite ones; the index (into the
 * full array) of the most negative gradient over what remains, or -1 when fewer
 * than 2 points remain. x NULL: np.gradient(y) (unit spacing, the rule as
 * documented); x given: np.gradient(y, x) with those coordinates (Lightning
 * 2.x passes the lrs, torch.gradient(losses, spacing=[lrs])). */
int lt_lrfind_suggest(const double *y, const double *x, int n, int skip_begin, int skip_end);

/* Whether the steepest-descent point at index suggestion of the n points is
 * a clear descent: 1, or 0 with the reason in why[cap]. Refused when
 *   - the raw loss, as the mean of LT_LRFIND_WINDOW batches in a row, never
 *     falls below the first such mean by LT_LRFIND_MIN_FALL of it and by 4
 *     standard deviations of the batch-to-batch noise, or
 *   - the smoothed slope there is within LT_LRFIND_NOISE_Z standard deviations
 *     of what batch-to-batch noise alone gives the smoothed curve at that
 *     index (the noise taken from the raw losses' successive differences; the
 *     bias-corrected average is noisiest near the start, where a flat sweep's
 *     "steepest" point tends to land).
 * Only points up to the first non-finite loss count. */
#define LT_LRFIND_MIN_FALL 0.10
#define LT_LRFIND_WINDOW 10
#define LT_LRFIND_NOISE_Z 5.0
int lt_lrfind_judge(const lt_lrfind_point *p, int n, int suggestion, char *why, size_t cap);

#endif
