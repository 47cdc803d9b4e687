/* lathe/dist.h: the distributed layer. Who this process is among the ranks of
 * a data-parallel run (rank, world size, local rank, node) and the
 * collectives the trainer needs: broadcast of a float buffer or a small byte
 * blob, all-reduce sums of floats and doubles, all-gather of one 32-bit word
 * or of a fixed-size byte record per rank, barrier, abort. The collectives go through a small table (lt_dist_comm) so
 * that another implementation (NCCL for GPU ranks) can sit beside the CPU one
 * (Open MPI, core/dist/comm_mpi.c).
 *
 * A world of 1 needs no MPI at all: every collective is then a no-op. A
 * process started by mpirun (OMPI_COMM_WORLD_*) or srun (SLURM_*) knows its
 * place from the environment before MPI starts; lt_dist_init starts MPI with
 * MPI_THREAD_SERIALIZED (the trainer makes its MPI calls from its own thread,
 * one at a time; the thread that called lt_dist_init finalizes after it).
 *
 * Faults: MPI errors return (MPI_ERRORS_RETURN) as LT_EIO with a one-line
 * message naming the rank and the step; a watchdog thread ends the process
 * when one collective has not completed for LATHE_DIST_TIMEOUT seconds
 * (default 30): "rank R: no all-reduce completion for 30 s at step S;
 * aborting". */
#ifndef LATHE_DIST_H
#define LATHE_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "lathe/common.h"

typedef struct lt_dist_env {
    int rank, world, local_rank, node;
    const char *launcher; /* "mpirun", "srun" or "" (not launched) */
} lt_dist_env;

/* Reads the launcher's environment (Open MPI first, then SLURM); without a
 * launcher: rank 0 of a world of 1. Needs no MPI. */
void lt_dist_env_read(lt_dist_env *e);

/* The collectives of one implementation. Every call returns LT_OK or a
 * negative LT_E* code with err filled. */
typedef struct lt_dist_comm {
    const char *name; /* "mpi" */
    int (*bcast)(void *buf, size_t bytes, int root, lt_err *err);
    int (*allreduce_f32)(float *buf, size_t n, lt_err *err);
    int (*allreduce_f64)(double *buf, size_t n, lt_err *err);
    /* non-blocking all-reduce sums in place: started in the same order on
       every rank, progressed by testall (*done: all finished, the requests
       gone), which the wait also loops on; the implementation keeps the
       requests in flight. The blocking collectives here wait the same way,
       so that heartbeats and rank 0's clients are served meanwhile */
    int (*iallreduce_f32)(float *buf, size_t n, lt_err *err);
    int (*testall)(int *done, lt_err *err);
    int (*allgather_u32)(uint32_t mine, uint32_t *all, lt_err *err);
    /* bytes from every rank into all (world * bytes, rank order) */
    int (*allgather_bytes)(const void *mine, size_t bytes, void *all, lt_err *err);
    int (*barrier)(lt_err *err);
    /* optional (NULL: `inspect --rank` refused, no heartbeats): requests
       between rank 0 and another rank, under tags of their own
       (kind 0: a request, 1: an answer): msg_send sends bytes to rank `to`;
       msg_take takes the first waiting message of that kind from rank
       `from` (*got 0: none yet) into *buf (malloc'd, *n bytes) */
    int (*msg_send)(int to, int kind, const void *buf, size_t n, lt_err *err);
    int (*msg_take)(int from, int kind, char **buf, size_t *n, int *got, lt_err *err);
    /* heartbeats, point-to-point to rank 0 under a tag of their own:
       beat_listen posts rank 0's receive from every other rank (records of
       bytes each); beat_send starts this rank's next one unless the last is
       still in flight (*sent 0 then); beat_poll takes in, on rank 0, what has
       arrived (the newest record of each rank into table, world x bytes in
       rank order, got[r] set) and posts the receives again; beat_close
       cancels what is posted and lets what is in flight go */
    int (*beat_listen)(size_t bytes, lt_err *err);
    int (*beat_send)(const void *rec, size_t bytes, int *sent, lt_err *err);
    int (*beat_poll)(void *table, int *got, lt_err *err);
    void (*beat_close)(void);
    void (*abort)(int code);
    void (*finalize)(void);
    /* optional (NULL: none): a fault the implementation learns of on its own
       (NCCL's asynchronous error), polled by the watchdog: LT_OK, or a code
       with err filled */
    int (*async_error)(lt_err *err);
    /* optional: ends what is in flight (ncclCommAbort) so that the process
       can exit while a collective hangs; the watchdog calls it */
    void (*cancel)(void);
} lt_dist_comm;

/* 1 when this build has the MPI implementation (LATHE_HAVE_MPI). */
int lt_dist_have_mpi(void);
/* 1 when this build has the GPU ranks' implementation over NCCL
 * (core/dist/comm_nccl.c, built with the CUDA backend). */
int lt_dist_have_nccl(void);
/* Before lt_dist_init: this process is a GPU rank (--accelerator gpu
 * --strategy ddp), so lt_dist_init starts the NCCL implementation: MPI for
 * the bootstrap and the host buffers' collectives, NCCL for device buffers on
 * the CUDA backend's training stream. LATHE_DIST_NCCL=1 starts it for a world
 * of 1 too (the path checked on one GPU). */
void lt_dist_use_gpu(int on);
/* The implementation in use: "mpi", "nccl", or "" when there is none. */
const char *lt_dist_comm_name(void);
/* What the NCCL implementation found when it started (version, device, its
 * check all-reduce), one line; "" for another implementation. */
const char *lt_dist_comm_info(void);
/* The GPUs this node has (cudaGetDeviceCount, asked in a child process so
 * that this one's CUDA starts only after its local rank's device is chosen).
 * LT_OK with *n, or a code with err: "no CUDA driver (cudaGetDeviceCount:
 * ...)" as the CUDA backend says it, or "not compiled in". */
int lt_dist_gpu_count(int *n, lt_err *err);
/* --devices (ranks per node) against the GPUs this node has: LT_OK, or
 * LT_EINVAL with "--devices 4 but this node has 1 GPU (cudaGetDeviceCount)". */
int lt_dist_check_devices(int devices, int gpus, lt_err *err);
/* Starts the communication for a world of more than one (MPI_Init_thread),
 * checks that MPI agrees with the environment. A world of 1: nothing. */
int lt_dist_init(lt_err *err);
/* Ends it (MPI_Finalize); the watchdog stops. */
void lt_dist_finalize(void);
int lt_dist_rank(void);
int lt_dist_world(void);
int lt_dist_local_rank(void);
/* The step the next collectives belong to (for the watchdog's line and errors). */
void lt_dist_set_step(long step);

/* The collectives; in a world of 1 they return LT_OK at once. */
int lt_dist_bcast_f32(float *buf, size_t n, int root, lt_err *err);
int lt_dist_bcast_bytes(void *buf, size_t bytes, int root, lt_err *err);
int lt_dist_allreduce_sum_f32(float *buf, size_t n, lt_err *err);
int lt_dist_allreduce_sum_f64(double *buf, size_t n, lt_err *err);
/* Non-blocking sums for gradient buckets: start one (every rank in the same
 * order), let the ones in flight progress (between backward ops), wait for
 * all of them (the watchdog times the wait). No-ops in a world of 1. */
int lt_dist_iallreduce_sum_f32(float *buf, size_t n, lt_err *err);
int lt_dist_progress(lt_err *err);
int lt_dist_waitall(lt_err *err);
int lt_dist_allgather_u32(uint32_t mine, uint32_t *all, lt_err *err);
/* Every rank's bytes (the same count on each) into all, rank r's at
 * r * bytes; in a world of 1 a copy. */
int lt_dist_allgather_bytes(const void *mine, size_t bytes, void *all, lt_err *err);
int lt_dist_barrier(lt_err *err);
/* Ends every rank (MPI_Abort); in a world of 1, exit(code). */
void lt_dist_abort(int code);

/* What each rank reports to rank 0 while it trains, as a heartbeat: who and
 * where it is, its step, its samples/s over about its last second, and the
 * samples per second of its own work (that interval less its
 * waits for the other ranks: the slow rank of a run in lockstep has the low
 * one). A fixed record of plain bytes: every rank runs the same build. */
typedef struct lt_dist_report {
    int32_t rank, pad;
    int64_t step;
    double samples_per_s;
    double work_per_s; /* NaN: not measured */
    double sent;       /* the rank's own clock (CLOCK_REALTIME, s) when it sent this */
    char host[64];     /* gethostname, NUL-terminated */
    char device[96];   /* lt_dev_name of the rank's backend */
} lt_dist_report;

/* Heartbeats. Every rank sends its report to rank 0 (MPI_Isend) at each
 * step's end, at most every LT_DIST_BEAT_S, and again every LT_DIST_BEAT_S
 * while it waits in a collective (it is alive, waiting for the others, or
 * held by a pause on rank 0). Rank 0 keeps a receive posted per rank and
 * tests them at the step's end, while it waits in a collective and while it
 * is paused, stamping when each rank's report arrived:
 * a rank that is stopped or slow ages while the others stay fresh. Every MPI
 * call stays on the thread that trains. In a world of 1: nothing. */
#define LT_DIST_BEAT_S 0.1

/* This rank's report at a step's end: sent when due; on rank 0 its own row
 * and what has arrived from the others. */
int lt_dist_beat(const lt_dist_report *mine, lt_err *err);

/* Rank 0, between steps (a pause): takes in what has arrived and counts
 * itself as heard from. Elsewhere nothing. */
int lt_dist_poll(lt_err *err);

/* Rank 0's table, from any thread: the first n reports (n at most the
 * world) and when each arrived (lt_now() s; 0: not yet) into out and seen.
 * Returns how many were copied: 0 in a world of 1, on the other ranks, and
 * before rank 0's own first report. */
int lt_dist_reports(lt_dist_report *out, double *seen, int n);

/* A function the waits in collectives call on the training thread, at most
 * every LT_DIST_IDLE_S, so that rank 0 answers its clients while another rank
 * holds it up. It must make no MPI call and change nothing a collective in
 * flight uses. NULL: none. */
#define LT_DIST_IDLE_S 0.05
void lt_dist_set_idle(void (*fn)(void *ctx), void *ctx);

#define LT_DIST_SLOW_FRACTION 0.8 /* slow: samples/s below this share of the ranks' median */
#define LT_DIST_SILENT_S 5.0      /* silent: no report for longer than this (seconds) */

/* Marks the slow and the silent ranks among n: slow[i] when rate[i] is below
 * LT_DIST_SLOW_FRACTION x the median of the rates (finite ones, median > 0),
 * silent[i] when age[i] (seconds since its last report) exceeds silent_after.
 * A world of one rank is never slow. */
void lt_dist_mark(const double *rate, const double *age, int n, double silent_after, int *slow, int *silent);

/* Asking another rank, from rank 0 at a step boundary (the others wait in
 * the step's broadcast then): req's len bytes go to rank `rank`, which
 * answers with the function it set (lt_dist_set_answer) from that wait; its
 * answer comes back in *answer (malloc'd, *n bytes), or its error in err.
 * Gives up after timeout_s. Refused (LT_EINVAL) in a world of 1, on other
 * ranks than 0 and for a rank out of range or 0 itself. */
int lt_dist_ask(int rank, const void *req, size_t len, char **answer, size_t *n, double timeout_s, lt_err *err);

/* How this rank answers rank 0's requests: fn fills *answer (malloc'd, *n
 * bytes) and returns LT_OK, or returns an LT_E* code with err filled (sent
 * back as rank 0's error). Called on the training thread while the rank
 * waits in the step's broadcast. NULL: requests are refused. */
typedef int (*lt_dist_answer_fn)(void *ctx, const char *req, size_t len, char **answer, size_t *n, lt_err *err);
void lt_dist_set_answer(lt_dist_answer_fn fn, void *ctx);

/* Seconds this rank has spent in collectives so far (waiting for the others,
 * mostly): its own work is the rest. */
double lt_dist_waited(void);

/* The watchdog's limit in seconds (LATHE_DIST_TIMEOUT, default 30). */
double lt_dist_timeout(void);

#endif
