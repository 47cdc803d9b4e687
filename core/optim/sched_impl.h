/* optim/sched_impl.h: private to the scheduler files. The lt_sched object,
 * shared by sched_parse.c (spec string -> hyperparameters) and sched.c (the
 * step rules, override, checkpoint state). */
#ifndef LATHE_SCHED_IMPL_H
#define LATHE_SCHED_IMPL_H

#include "lathe/sched.h"

typedef enum {
    SK_STEP,
    SK_MULTISTEP,
    SK_EXPONENTIAL,
    SK_COSINE,
    SK_WARMUP_COSINE,
    SK_ONECYCLE,
    SK_PLATEAU,
} sched_kind;

#define SCHED_MAX_MILESTONES 64
#define SCHED_MONITOR_MAX 64         /* bytes, with the terminating 0 */
#define SCHED_SPEC_MAX 1024          /* bytes of spec string accepted */
#define SCHED_INT_MAX 1000000000000L /* largest int hyperparameter (1e12) */

struct lt_sched {
    sched_kind kind;
    char *spec; /* copy of the create argument */
    int interval, frequency;
    char monitor[SCHED_MONITOR_MAX];

    /* Progress (what lt_sched_state_str saves). */
    long e;      /* PyTorch's last_epoch: steps taken */
    double lr;   /* current lr */
    double base; /* PyTorch's initial_lr / base_lrs[0] */

    /* step / multistep / exponential */
    long step_size;
    double gamma;
    long milestones[SCHED_MAX_MILESTONES]; /* non-decreasing */
    int nmilestones;

    /* cosine and warmup_cosine */
    long t_max, warmup;
    double eta_min, start_factor, end_factor;

    /* onecycle: lo/hi/lo_end are PyTorch's group initial_lr, max_lr, min_lr
     * (progress: override rescales them). phase_end[i] is PyTorch's
     * _schedule_phases[i]["end_step"], a float step index. */
    double lo, hi, lo_end;
    long total_steps;
    double pct_start, div_factor, final_div_factor;
    int anneal_linear, three_phase, nphases;
    double phase_end[3];

    /* plateau; best/bad/cool are progress (best, num_bad_epochs,
     * cooldown_counter). */
    int mode_max, thr_abs;
    double factor, threshold, min_lr, eps;
    long patience, cooldown;
    double best;
    long bad, cool;
};

const char *lt_sched_kind_name_(sched_kind k);
/* Fills s's kind, hyperparameters and trainer fields from spec; the progress
 * fields are left for sched.c. base_lr is only read for onecycle's default
 * max_lr. */
int lt_sched_parse_spec_(lt_sched *s, const char *spec, double base_lr, lt_err *err);

#endif
