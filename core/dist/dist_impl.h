/* core/dist: the implementations' entry points (private to the layer). */
#ifndef LATHE_DIST_IMPL_H
#define LATHE_DIST_IMPL_H

#include "lathe/dist.h"

/* Open MPI (comm_mpi.c): starts MPI for the world the environment names and
 * returns its table; NULL with err filled when this build has no MPI or MPI
 * does not start. *rank and *world get what MPI says. */
const lt_dist_comm *lt_dist_mpi_start(int *rank, int *world, lt_err *err);

/* What a wait in a collective does between its tests (dist.c): heartbeats in
 * and out, and the idle function (lt_dist_set_idle), each when due. */
void lt_dist_waiting(void);

/* lt_dist_init's end: comm is the implementation of this process, rank of
 * world; rank 0 listens for the heartbeats where the table has them, and the
 * watchdog starts (the tests hand in a table of their own). */
int lt_dist_start_with(const lt_dist_comm *comm, int rank, int world, lt_err *err);

/* NCCL (comm_nccl.c, built with the CUDA backend: LATHE_HAVE_NCCL): chooses
 * this process's GPU by its local rank (CUDA_VISIBLE_DEVICES, before CUDA or
 * MPI start), starts MPI for the bootstrap when the world is more than 1,
 * makes the communicator and checks it with one small all-reduce, broadcast
 * and bucket round; NULL with err filled on failure. *rank and *world as
 * above. */
const lt_dist_comm *lt_dist_nccl_start(const lt_dist_env *e, int *rank, int *world, lt_err *err);
/* What it found: "nccl 2.28.3, rank 0 of 2 on cuda:0 NVIDIA H100 ..., check all-reduce ok". */
const char *lt_dist_nccl_info(void);
int lt_dist_nccl_gpu_count(int *n, lt_err *err);

/* The CUDA backend's training stream (a cudaStream_t; core/ops/cuda/
 * backend_cuda.c), NULL until the backend has its context. */
void *lt_cuda_training_stream(void);

/* ---- host-side bookkeeping of the NCCL implementation (nccl_book.c,
 * compiled in every build, so its tests need no GPU) ---- */

/* One bucket all-reduce: queued by iallreduce, launched (with the others
 * queued, in one ncclGroupStart/End) by the next testall or waitall, finished
 * when its event (recorded on the stream after the launch) has passed. */
typedef struct lt_dist_bucket {
    void *buf;
    size_t n;
    void *event; /* a cudaEvent_t, made on first use and kept for the next round */
    int done;
} lt_dist_bucket;

typedef struct lt_dist_ledger {
    lt_dist_bucket *b;
    int n, cap;   /* buckets in this round; entries allocated (their events kept) */
    int launched; /* b[0, launched) are launched */
} lt_dist_ledger;

/* Queues a bucket (its event, if the entry had one, kept). */
int lt_dist_ledger_add(lt_dist_ledger *l, void *buf, size_t n, lt_err *err);
/* The launched, unfinished buckets asked: q returns 1 (finished), 0 (not
 * yet) or a negative code with err filled, which test returns at once.
 * *done: every bucket queued is launched and finished; the round is then
 * over (n = 0; the entries' events stay for the next round). */
typedef int (*lt_dist_ledger_query)(void *ctx, lt_dist_bucket *b, lt_err *err);
int lt_dist_ledger_test(lt_dist_ledger *l, lt_dist_ledger_query q, void *ctx, int *done, lt_err *err);
/* Frees the entries, each event through free_event (NULL: none). */
void lt_dist_ledger_free(lt_dist_ledger *l, void (*free_event)(void *event));

/* An ncclResult_t as an LT_E* code. */
int lt_dist_nccl_code(int result);
/* The one-line error of a failed NCCL call: "rank R: <call> failed: <text>
 * (ncclResult_t <result>)", newlines of the text made spaces; returns the
 * code. */
int lt_dist_nccl_fail(int result, const char *call, const char *text, lt_err *err);
/* The device a local rank takes, as CUDA_VISIBLE_DEVICES should name it:
 * visible unset or empty: the local rank's number; one entry (a launcher that
 * gives each task its GPU, srun --gpus-per-task): that entry; a list: its
 * local_rank-th entry, an error when the list is shorter. */
int lt_dist_pick_device(const char *visible, int local_rank, char *out, size_t cap, lt_err *err);

#endif
