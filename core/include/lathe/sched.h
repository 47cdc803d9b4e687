/* lathe/sched.h: learning-rate schedulers with the exact sequences of
 * torch.optim.lr_scheduler, as small state machines the trainer drives.
 *
 * A scheduler owns one number, the current lr. The trainer copies it into the
 * optimizer (lt_sched_apply, or lt_optim_set(o, "lr", lt_sched_lr(s))) after
 * lt_sched_create, after every lt_sched_step, lt_sched_override and
 * lt_sched_state_load. With that, lt_sched_lr after k steps equals PyTorch's
 * optimizer.param_groups[0]["lr"] after k scheduler.step() calls on an
 * optimizer created with lr=base_lr (one param group); each kind evaluates the
 * same formula as PyTorch's get_lr (recursive where PyTorch is recursive), in
 * double precision.
 *
 * Spec string: "kind" or "kind:key=value,key=value,...". Spaces around keys and
 * values are ignored; a key may appear once. Kinds, their PyTorch class, keys
 * and defaults (keys without a default are required):
 *
 *   step           StepLR             step_size (int >= 1), gamma=0.1
 *   multistep      MultiStepLR        milestones (ints >= 0, ';'-separated,
 *                                     non-decreasing; a repeated milestone
 *                                     applies gamma once per repeat), gamma=0.1
 *   exponential    ExponentialLR      gamma
 *   cosine         CosineAnnealingLR  t_max (int >= 1; T_max also accepted),
 *                                     eta_min=0. PyTorch's recursive form, so
 *                                     past t_max the lr rises again (period
 *                                     2*t_max) as in PyTorch.
 *   warmup_cosine  SequentialLR([LinearLR(start_factor, end_factor,
 *                                total_iters=warmup), CosineAnnealingLR(t_max,
 *                                eta_min)], milestones=[warmup]):
 *                                     warmup (int >= 0), t_max (int >= 1, counts
 *                                     the steps after the warmup),
 *                                     start_factor=1/3 in (0,1], end_factor=1 in
 *                                     [0,1], eta_min=0. The lr rises linearly
 *                                     from base_lr*start_factor, is base_lr at
 *                                     step `warmup`, then follows the cosine.
 *   onecycle       OneCycleLR         max_lr=base_lr, total_steps (int >= 1) or
 *                                     both epochs and steps_per_epoch (ints >= 1;
 *                                     total_steps = their product),
 *                                     pct_start=0.3 in [0,1],
 *                                     anneal_strategy=cos|linear, div_factor=25,
 *                                     final_div_factor=1e4, three_phase=0|1.
 *                                     base_lr is not used (as in PyTorch the
 *                                     schedule starts at max_lr/div_factor).
 *                                     Only the lr is scheduled: PyTorch's
 *                                     cycle_momentum (momentum/beta1 cycling)
 *                                     is not done. As in PyTorch, total_steps+1
 *                                     lrs exist (steps 0..total_steps); a
 *                                     further step fails with LT_ESTATE.
 *   plateau        ReduceLROnPlateau  mode=min|max, factor=0.1 in [0,1),
 *                                     patience=10, threshold=1e-4 (>= 0),
 *                                     threshold_mode=rel|abs, cooldown=0,
 *                                     min_lr=0, eps=1e-8. Each step takes the
 *                                     monitored metric. A NaN metric is never
 *                                     an improvement (a bad epoch), as in
 *                                     PyTorch.
 *
 * Keys every kind accepts, read by the trainer (Lightning's lr_scheduler
 * config; the scheduler itself does not use them):
 *   interval=epoch|step  when the trainer calls lt_sched_step: after every
 *                        `frequency` optimizer steps or epochs. Default epoch.
 *   frequency=N          N >= 1, default 1.
 *   monitor=NAME         the metric fed to a plateau step (letters, digits,
 *                        '_', '.', '/', '-'; at most 63). Default "val_loss"
 *                        for plateau, "" (none) for the other kinds.
 *
 * Numbers are C decimal floats ("1e-4", "0.1"); ints may be written "1e3" but
 * must be integral. NaN and Inf are refused. Example:
 *   "warmup_cosine:warmup=5,start_factor=0.01,t_max=95,interval=step"
 *
 * Not thread-safe: one thread drives a scheduler. */
#ifndef LATHE_SCHED_H
#define LATHE_SCHED_H

#include <stddef.h>

#include "lathe/common.h"
#include "lathe/optim.h"

typedef struct lt_sched lt_sched;

enum { LT_SCHED_EPOCH = 0, LT_SCHED_STEP = 1 }; /* lt_sched_interval() values */

/* Enough for every lt_sched_state_str result, including the terminating 0. */
#define LT_SCHED_STATE_MAX 256

/* Parses spec (see above) and takes PyTorch's constructor step, so
 * lt_sched_lr() is the lr for the first optimizer step (base_lr for most kinds;
 * base_lr*start_factor for warmup_cosine; max_lr/div_factor for onecycle).
 * base_lr: the optimizer's lr, finite and >= 0. An unknown kind gives
 * LT_ENOTFOUND listing the kinds; an unknown key LT_ENOTFOUND listing the keys
 * of that kind; a missing, malformed or out-of-range value LT_EINVAL naming the
 * key. Returns NULL on failure. */
lt_sched *lt_sched_create(const char *spec, double base_lr, lt_err *err);
void lt_sched_free(lt_sched *s);

const char *lt_sched_kind(const lt_sched *s);    /* "step", "plateau", ... */
const char *lt_sched_spec(const lt_sched *s);    /* the spec as given to create */
int lt_sched_interval(const lt_sched *s);        /* LT_SCHED_EPOCH or LT_SCHED_STEP */
int lt_sched_frequency(const lt_sched *s);       /* >= 1 */
const char *lt_sched_monitor(const lt_sched *s); /* "" when none */
int lt_sched_needs_metric(const lt_sched *s);    /* 1 for plateau, else 0 */

/* The current lr. */
double lt_sched_lr(const lt_sched *s);
/* Number of lt_sched_step calls so far (PyTorch's last_epoch; for
 * warmup_cosine the SequentialLR's). */
long lt_sched_steps(const lt_sched *s);

/* One scheduler step (PyTorch's scheduler.step(), or step(metric) for
 * plateau). metric: the monitored value for plateau; other kinds ignore it
 * (pass NAN). Fails only for onecycle past total_steps (LT_ESTATE, nothing
 * changes). */
int lt_sched_step(lt_sched *s, double metric, lt_err *err);

/* The lr was set by hand (lr finite and >= 0, else LT_EINVAL): the schedule
 * continues from that value. Per kind:
 *   step, multistep, exponential, cosine, plateau, and warmup_cosine once its
 *     cosine phase has begun (lt_sched_steps() >= warmup): the current lr
 *     becomes `lr` and later steps apply their update to it, exactly as these
 *     PyTorch schedulers behave after `param_groups[0]["lr"] = lr` (they
 *     compute each lr from the previous one). For cosine the ratio form
 *     scales (lr - eta_min); the restart step after each 2*t_max period still
 *     adds from the original base_lr, as PyTorch does.
 *   warmup_cosine during the warmup: the current lr becomes `lr` and base_lr is
 *     multiplied by lr/old_lr, so the rest of the warmup and the whole cosine
 *     phase follow the schedule a scheduler created with that base_lr would
 *     (PyTorch would snap back to the original base_lr at the milestone).
 *   onecycle: initial, max and min lr are all multiplied by lr/old_lr, so the
 *     curve passes through `lr` now and keeps its shape (PyTorch would ignore
 *     the value at the next step).
 * Where a ratio is needed and the current lr is 0 (or negative, possible at
 * onecycle's last linear step), LT_ESTATE and nothing changes. */
int lt_sched_override(lt_sched *s, double lr, lt_err *err);

/* lt_optim_set(o, "lr", lt_sched_lr(s), err); fails as that does, e.g. for
 * the negative lr onecycle's linear anneal extrapolates to at its very last
 * step (step total_steps), which PyTorch would use. */
int lt_sched_apply(const lt_sched *s, lt_optim *o, lt_err *err);

/* Progress for checkpoints, as one line of text (no spaces), e.g.
 *   "lt1:plateau:e=12,lr=0.0005,base=0.001,best=0.53,bad=3,cool=0"
 * Doubles are written with 17 significant digits, so a round trip is exact.
 * The hyperparameters are not in it: store lt_sched_spec() beside it and
 * recreate from that spec before loading. state_str writes into buf (cap
 * bytes, LT_SCHED_STATE_MAX always suffices); LT_EINVAL when it does not fit.
 * state_load validates the whole string (format, kind matches, every field
 * present once and in range) and changes nothing on failure (LT_EFORMAT). */
int lt_sched_state_str(const lt_sched *s, char *buf, size_t cap, lt_err *err);
int lt_sched_state_load(lt_sched *s, const char *str, lt_err *err);

#endif
