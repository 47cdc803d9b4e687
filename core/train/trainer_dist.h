/* The trainer's data-parallel steps (trainer_dist.c), private to train/. */
#ifndef LATHE_TRAINER_DIST_H
#define LATHE_TRAINER_DIST_H

#include "lathe/train.h"

/* Records the hparams every rank starts from (the commands' baseline). */
int dist_hparams_init(lt_trainer *t, lt_err *err);
/* The evaluation sets against the world: one of fewer rows than ranks (but
 * not empty) is refused at setup, as every rank finds. */
int dist_check_sets(lt_trainer *t, lt_err *err);
/* Rank 0's parameters and buffers (batch-norm running statistics) to every
 * rank, at start. */
int dist_broadcast_model(lt_trainer *t, lt_err *err);
/* Gradients averaged over the ranks in flat buckets (reverse layer order).
 * dist_grads_begin before the backward of a step's last batch: overlap set,
 * the graph's node_done hook starts each bucket's all-reduce as soon as its
 * gradients are final; dist_average_grads after the backward starts the rest,
 * waits for all, divides by the world size, then broadcasts rank 0's buffers. */
int dist_grads_begin(lt_trainer *t, int overlap, lt_err *err);
int dist_average_grads(lt_trainer *t, lt_err *err);
void dist_grads_free(lt_trainer *t);
/* The step boundary: rank 0's decisions (stop, changed hparams) broadcast
 * and applied on every rank at the same step. */
int dist_sync_commands(lt_trainer *t, lt_err *err);
/* Rank 0 between two steps: the step broadcast with its validate flag set
 * (every other rank, waiting in dist_sync_commands, evaluates its share and
 * waits again), then rank 0's own share; the figures are the whole set's. */
int dist_validate(lt_trainer *t, lt_err *err);
/* This rank's share of an evaluation set: every world-th row from `rank`, no
 * padding, so that the ranks together cover the set once. */
int dist_eval_shard(const lt_trainer *t, const lt_subset *set, lt_subset *out, lt_err *err);
/* The logged metrics' sums and weights summed over the ranks. */
int dist_reduce_metrics(lt_trainer *t, lt_err *err);
/* weights_crc (parameters and buffers) and ranks_agree after an epoch. */
int dist_weights_check(lt_trainer *t, lt_err *err);

#endif
