/* The distributed layer's state: this process's place among the ranks, the
 * chosen implementation's table, and the watchdog on collectives. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dist/dist_impl.h"

static int env_int(const char *name, int fallback) {
    const char *v = getenv(name);
    if (!v || !*v) return fallback;
    char *end;
    long x = strtol(v, &end, 10);
    return *end || x < 0 || x > 1 << 24 ? fallback : (int)x;
}

void lt_dist_env_read(lt_dist_env *e) {
    memset(e, 0, sizeof *e);
    e->world = 1;
    e->launcher = "";
    if (getenv("OMPI_COMM_WORLD_SIZE")) {
        e->launcher = "mpirun";
        e->world = env_int("OMPI_COMM_WORLD_SIZE", 1);
        e->rank = env_int("OMPI_COMM_WORLD_RANK", 0);
        e->local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0);
        e->node = env_int("OMPI_COMM_WORLD_NODE_RANK", 0);
    } else if (getenv("SLURM_PROCID") && getenv("SLURM_NTASKS")) {
        e->launcher = "srun";
        e->world = env_int("SLURM_NTASKS", 1);
        e->rank = env_int("SLURM_PROCID", 0);
        e->local_rank = env_int("SLURM_LOCALID", 0);
        e->node = env_int("SLURM_NODEID", 0);
    }
    if (e->world < 1) e->world = 1;
}

static struct {
    int started;
    int gpu; /* GPU ranks: the NCCL implementation (lt_dist_use_gpu) */
    int rank, world, local_rank;
    const lt_dist_comm *comm;
    /* the watchdog: when the current collective began (0: none in flight) */
    _Atomic long step;
    _Atomic double since;
    pthread_t thread;
    int thread_started;
    _Atomic int quit;
    double timeout;
    /* heartbeats (the training thread's side) */
    lt_dist_report mine; /* this rank's last report, sent again while it waits */
    int have_mine;
    double last_sent, last_tick, last_idle;
    int in_waiting; /* lt_dist_waiting is running (the idle function may wait too) */
    double waited;  /* seconds spent in collectives (lt_dist_waited) */
    void (*idle)(void *ctx);
    void *idle_ctx;
    int in_bcast; /* waiting in a broadcast: requests from rank 0 are answered */
    lt_dist_answer_fn answer;
    void *answer_ctx;
    uint32_t ask_seq; /* rank 0: the last request's number */
    /* rank 0's table, read by other threads under beat_mu */
    lt_dist_report *table;
    double *seen;
    int *got;
} D = {.world = 1};
static pthread_mutex_t beat_mu = PTHREAD_MUTEX_INITIALIZER;

int lt_dist_have_mpi(void) {
#ifdef LATHE_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

int lt_dist_have_nccl(void) {
#ifdef LATHE_HAVE_NCCL
    return 1;
#else
    return 0;
#endif
}

void lt_dist_use_gpu(int on) { D.gpu = on; }

const char *lt_dist_comm_name(void) { return D.comm ? D.comm->name : ""; }

const char *lt_dist_comm_info(void) {
#ifdef LATHE_HAVE_NCCL
    if (D.comm && !strcmp(D.comm->name, "nccl")) return lt_dist_nccl_info();
#endif
    return "";
}

int lt_dist_gpu_count(int *n, lt_err *err) {
    *n = 0;
#ifdef LATHE_HAVE_NCCL
    return lt_dist_nccl_gpu_count(n, err);
#else
    return lt_seterr(err, LT_EUNSUPPORTED, "not compiled in (CMake found no CUDA toolkit with cuDNN and NCCL)");
#endif
}

double lt_dist_timeout(void) {
    const char *v = getenv("LATHE_DIST_TIMEOUT");
    double t = v && *v ? atof(v) : 30.0;
    return t > 0 ? t : 30.0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The fault path: the core's one place that prints and ends the process, as
 * no caller is left to tell (the trainer's thread is stuck in MPI). */
static void *watchdog(void *arg) {
    (void)arg;
    while (!atomic_load(&D.quit)) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        double since = atomic_load(&D.since);
        lt_err e = {0};
        if (D.comm->async_error && D.comm->async_error(&e)) {
            /* NCCL's own fault (a peer gone, a network error): the other
               ranks learn of it through their communicators or the launcher */
            fprintf(stderr, "%s at step %ld; aborting\n", e.msg, atomic_load(&D.step));
            fflush(stderr);
            if (D.comm->cancel) D.comm->cancel();
            _exit(134);
        }
        if (since > 0 && now_s() - since > D.timeout) {
            fprintf(stderr, "rank %d: no all-reduce completion for %.0f s at step %ld; aborting\n", D.rank, D.timeout,
                    atomic_load(&D.step));
            fflush(stderr);
            /* ncclCommAbort ends this rank's kernels that wait on the others */
            if (D.comm->cancel) D.comm->cancel();
            /* MPI_Abort from here would break MPI_THREAD_SERIALIZED (the trainer's
               thread is inside MPI): the launcher ends the other ranks when
               this one exits with an error */
            _exit(134);
        }
    }
    return NULL;
}

int lt_dist_init(lt_err *err) {
    if (D.started) return LT_OK;
    lt_dist_env e;
    lt_dist_env_read(&e);
    D.rank = e.rank;
    D.world = e.world;
    D.local_rank = e.local_rank;
    D.started = 1;
    /* LATHE_DIST_NCCL=1: a GPU rank in a world of 1 still goes through NCCL */
    const char *force = getenv("LATHE_DIST_NCCL");
    if (e.world <= 1 && !(D.gpu && force && !strcmp(force, "1"))) return LT_OK;
    int rank = 0, world = 1;
    if (D.gpu) {
#ifdef LATHE_HAVE_NCCL
        D.comm = lt_dist_nccl_start(&e, &rank, &world, err);
#else
        lt_seterr(err, LT_EUNSUPPORTED, "GPU ranks need NCCL, and this build has no CUDA backend");
#endif
    } else {
        D.comm = lt_dist_mpi_start(&rank, &world, err);
    }
    if (!D.comm) {
        D.world = 1;
        return err ? err->code : LT_EUNSUPPORTED;
    }
    if (rank != e.rank || world != e.world) {
        lt_seterr(err, LT_EINVAL, "MPI says rank %d of %d, %s's environment rank %d of %d", rank, world, e.launcher,
                  e.rank, e.world);
        D.comm->finalize();
        D.comm = NULL;
        D.world = 1;
        return LT_EINVAL;
    }
    return lt_dist_start_with(D.comm, rank, world, err);
}

int lt_dist_start_with(const lt_dist_comm *comm, int rank, int world, lt_err *err) {
    D.started = 1;
    D.comm = comm;
    D.rank = rank;
    D.world = world;
    if (rank == 0) {
        D.table = calloc((size_t)world, sizeof *D.table);
        D.seen = calloc((size_t)world, sizeof *D.seen);
        D.got = calloc((size_t)world, sizeof *D.got);
    }
    int rc = rank == 0 && (!D.table || !D.seen || !D.got)
                 ? lt_seterr(err, LT_ENOMEM, "rank 0: out of memory for the ranks' reports")
             : comm->beat_listen ? comm->beat_listen(sizeof(lt_dist_report), err)
                                 : LT_OK;
    if (rc) {
        lt_dist_finalize();
        D.world = 1;
        return rc;
    }
    D.timeout = lt_dist_timeout();
    atomic_store(&D.since, 0.0);
    atomic_store(&D.quit, 0);
    if (pthread_create(&D.thread, NULL, watchdog, NULL) == 0) D.thread_started = 1;
    return LT_OK;
}

void lt_dist_finalize(void) {
    if (D.thread_started) {
        atomic_store(&D.quit, 1);
        pthread_join(D.thread, NULL);
        D.thread_started = 0;
    }
    if (D.comm) {
        if (D.comm->beat_close) D.comm->beat_close();
        D.comm->finalize();
    }
    D.comm = NULL;
    pthread_mutex_lock(&beat_mu);
    free(D.table);
    free(D.seen);
    free(D.got);
    D.table = NULL;
    D.seen = NULL;
    D.got = NULL;
    pthread_mutex_unlock(&beat_mu);
    D.have_mine = 0;
}

int lt_dist_rank(void) { return D.rank; }
int lt_dist_world(void) { return D.comm ? D.world : 1; }
int lt_dist_local_rank(void) { return D.local_rank; }
void lt_dist_set_step(long step) { atomic_store(&D.step, step); }

static void arm(void) { atomic_store(&D.since, now_s()); }
static int disarm(int rc) {
    D.waited += now_s() - atomic_load(&D.since);
    atomic_store(&D.since, 0.0);
    return rc;
}

double lt_dist_waited(void) { return D.waited; }

int lt_dist_bcast_f32(float *buf, size_t n, int root, lt_err *err) {
    return lt_dist_bcast_bytes(buf, n * sizeof *buf, root, err);
}

/* A broadcast may wait on a paused rank 0 for as long as the pause lasts: the
 * watchdog does not time it. */
int lt_dist_bcast_bytes(void *buf, size_t bytes, int root, lt_err *err) {
    if (!D.comm) return LT_OK;
    double t0 = now_s();
    D.in_bcast = 1;
    int rc = D.comm->bcast(buf, bytes, root, err);
    D.in_bcast = 0;
    D.waited += now_s() - t0;
    return rc;
}

int lt_dist_allreduce_sum_f32(float *buf, size_t n, lt_err *err) {
    if (!D.comm) return LT_OK;
    arm();
    return disarm(D.comm->allreduce_f32(buf, n, err));
}

int lt_dist_allreduce_sum_f64(double *buf, size_t n, lt_err *err) {
    if (!D.comm) return LT_OK;
    arm();
    return disarm(D.comm->allreduce_f64(buf, n, err));
}

int lt_dist_iallreduce_sum_f32(float *buf, size_t n, lt_err *err) {
    if (!D.comm) return LT_OK;
    return D.comm->iallreduce_f32(buf, n, err);
}

int lt_dist_progress(lt_err *err) {
    if (!D.comm) return LT_OK;
    int done = 0;
    return D.comm->testall(&done, err);
}

int lt_dist_waitall(lt_err *err) {
    if (!D.comm) return LT_OK;
    arm();
    int done = 0, rc;
    while (!(rc = D.comm->testall(&done, err)) && !done) lt_dist_waiting();
    return disarm(rc);
}

/* ---- heartbeats ---- */

static int beat_send(double now, lt_err *err) {
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    D.mine.sent = (double)wall.tv_sec + wall.tv_nsec * 1e-9;
    int sent = 0;
    if (!D.comm->beat_send) return LT_OK; /* a table without heartbeats */
    int rc = D.comm->beat_send(&D.mine, sizeof D.mine, &sent, err);
    if (!rc && sent) D.last_sent = now;
    return rc;
}

/* rank 0: what has arrived into the table, stamped now */
static int beat_poll(double now, lt_err *err) {
    if (!D.comm->beat_poll) return LT_OK;
    pthread_mutex_lock(&beat_mu);
    int rc = D.comm->beat_poll(D.table, D.got, err);
    for (int r = 1; r < D.world; r++)
        if (D.got[r]) {
            D.got[r] = 0;
            D.table[r].host[sizeof D.table[r].host - 1] = '\0';
            D.table[r].device[sizeof D.table[r].device - 1] = '\0';
            D.seen[r] = now;
        }
    pthread_mutex_unlock(&beat_mu);
    return rc;
}

int lt_dist_beat(const lt_dist_report *mine, lt_err *err) {
    if (!D.comm) return LT_OK;
    double now = lt_now();
    D.mine = *mine;
    D.have_mine = 1;
    if (D.rank != 0) return now - D.last_sent >= LT_DIST_BEAT_S ? beat_send(now, err) : LT_OK;
    pthread_mutex_lock(&beat_mu);
    /* the others are counted from rank 0's first report, not from MPI's start */
    for (int r = 1; r < D.world && D.seen[0] <= 0; r++)
        if (D.seen[r] <= 0) D.seen[r] = now;
    D.table[0] = *mine;
    D.seen[0] = now;
    pthread_mutex_unlock(&beat_mu);
    return beat_poll(now, err);
}

/* ---- requests from rank 0 ---- */

/* a request: [u32 number][bytes]; an answer: [u32 number][i32 code][text] */
typedef struct msg_head {
    uint32_t seq;
    int32_t code;
} msg_head;

/* a rank other than 0, in the step's broadcast: one waiting request answered */
static void answer_one(void) {
    char *req = NULL, *ans = NULL;
    size_t n = 0, an = 0;
    int got = 0;
    if (!D.comm->msg_take || D.comm->msg_take(0, 0, &req, &n, &got, NULL) || !got) return;
    lt_err e = {0};
    msg_head h = {0, LT_OK};
    if (n >= sizeof h.seq) memcpy(&h.seq, req, sizeof h.seq);
    if (n < sizeof h.seq)
        h.code = lt_seterr(&e, LT_EFORMAT, "rank %d: a request of %zu bytes", D.rank, n);
    else if (!D.answer)
        h.code = lt_seterr(&e, LT_EUNSUPPORTED, "rank %d answers no requests", D.rank);
    else
        h.code = D.answer(D.answer_ctx, req + sizeof h.seq, n - sizeof h.seq, &ans, &an, &e);
    if (h.code) {
        free(ans);
        ans = NULL;
        an = strlen(e.msg);
    }
    char *out = malloc(sizeof h + an);
    if (out) {
        memcpy(out, &h, sizeof h);
        memcpy(out + sizeof h, ans ? ans : e.msg, an);
        D.comm->msg_send(0, 1, out, sizeof h + an, NULL);
    }
    free(out);
    free(ans);
    free(req);
}

static int ask(int rank, const void *req, size_t len, char **answer, size_t *n, double timeout_s, lt_err *err) {
    *answer = NULL;
    *n = 0;
    if (!D.comm) return lt_seterr(err, LT_EINVAL, "a run of one process has no rank %d", rank);
    if (D.rank != 0) return lt_seterr(err, LT_EINVAL, "rank %d cannot ask other ranks (rank 0 does)", D.rank);
    if (rank <= 0 || rank >= D.world)
        return lt_seterr(err, LT_EINVAL, "rank %d is out of range (ranks 1 to %d can be asked)", rank, D.world - 1);
    if (!D.comm->msg_send || !D.comm->msg_take)
        return lt_seterr(err, LT_EUNSUPPORTED, "this run's collectives (%s) carry no requests to rank %d", D.comm->name,
                         rank);
    uint32_t seq = ++D.ask_seq;
    char *msg = malloc(sizeof seq + len);
    if (!msg) return lt_seterr(err, LT_ENOMEM, "out of memory for a request");
    memcpy(msg, &seq, sizeof seq);
    memcpy(msg + sizeof seq, req, len);
    int rc = D.comm->msg_send(rank, 0, msg, sizeof seq + len, err);
    free(msg);
    if (rc) return rc;
    double t0 = lt_now();
    for (;;) {
        char *buf = NULL;
        size_t bn = 0;
        int got = 0;
        if ((rc = D.comm->msg_take(rank, 1, &buf, &bn, &got, err))) return rc;
        msg_head h;
        if (got && bn >= sizeof h) {
            memcpy(&h, buf, sizeof h);
            if (h.seq == seq) { /* an older request's late answer is passed over */
                if (h.code)
                    rc = lt_seterr(err, h.code, "%.*s", (int)(bn - sizeof h), buf + sizeof h);
                else if (!(*answer = malloc(bn - sizeof h + 1)))
                    rc = lt_seterr(err, LT_ENOMEM, "out of memory for rank %d's answer", rank);
                else {
                    memcpy(*answer, buf + sizeof h, bn - sizeof h);
                    (*answer)[bn - sizeof h] = '\0';
                    *n = bn - sizeof h;
                }
                free(buf);
                return rc;
            }
        }
        free(buf);
        if (got) continue;
        if (lt_now() - t0 > timeout_s)
            return lt_seterr(err, LT_EIO, "rank %d did not answer within %.0f s", rank, timeout_s);
        lt_dist_poll(NULL);
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* rank 0 asks from a command: its waits serve no clients meanwhile (the idle
   function would run commands inside this one), only the heartbeats */
int lt_dist_ask(int rank, const void *req, size_t len, char **answer, size_t *n, double timeout_s, lt_err *err) {
    int was = D.in_waiting;
    D.in_waiting = 1;
    int rc = ask(rank, req, len, answer, n, timeout_s, err);
    D.in_waiting = was;
    return rc;
}

void lt_dist_set_answer(lt_dist_answer_fn fn, void *ctx) {
    D.answer = fn;
    D.answer_ctx = ctx;
}

/* Heartbeat faults here are left to the collective being waited for, which
   meets the same MPI: it reports them. */
void lt_dist_waiting(void) {
    if (!D.comm || D.in_waiting) return;
    double now = lt_now();
    if (now - D.last_tick < 0.002) return;
    D.last_tick = now;
    D.in_waiting = 1;
    if (D.rank == 0)
        lt_dist_poll(NULL);
    else if (D.rank != 0 && D.have_mine && now - D.last_sent >= LT_DIST_BEAT_S) {
        beat_send(now, NULL);
    }
    if (D.rank != 0 && D.in_bcast) answer_one();
    if (D.idle && now - D.last_idle >= LT_DIST_IDLE_S) {
        D.last_idle = now;
        D.idle(D.idle_ctx);
    }
    D.in_waiting = 0;
}

int lt_dist_poll(lt_err *err) {
    if (!D.comm || D.rank != 0 || !D.table) return LT_OK;
    double now = lt_now();
    pthread_mutex_lock(&beat_mu);
    if (D.seen[0] > 0) D.seen[0] = now;
    pthread_mutex_unlock(&beat_mu);
    return beat_poll(now, err);
}

int lt_dist_reports(lt_dist_report *out, double *seen, int n) {
    pthread_mutex_lock(&beat_mu);
    int k = 0;
    if (D.table && D.seen[0] > 0 && n > 0) {
        k = n < D.world ? n : D.world;
        memcpy(out, D.table, (size_t)k * sizeof *out);
        memcpy(seen, D.seen, (size_t)k * sizeof *seen);
    }
    pthread_mutex_unlock(&beat_mu);
    return k;
}

void lt_dist_set_idle(void (*fn)(void *ctx), void *ctx) {
    D.idle = fn;
    D.idle_ctx = ctx;
}

int lt_dist_allgather_u32(uint32_t mine, uint32_t *all, lt_err *err) {
    if (!D.comm) {
        all[0] = mine;
        return LT_OK;
    }
    arm();
    return disarm(D.comm->allgather_u32(mine, all, err));
}

int lt_dist_allgather_bytes(const void *mine, size_t bytes, void *all, lt_err *err) {
    if (!D.comm) {
        memmove(all, mine, bytes);
        return LT_OK;
    }
    arm();
    return disarm(D.comm->allgather_bytes(mine, bytes, all, err));
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void lt_dist_mark(const double *rate, const double *age, int n, double silent_after, int *slow, int *silent) {
    double *sorted = n > 0 ? malloc((size_t)n * sizeof *sorted) : NULL;
    int k = 0;
    for (int i = 0; sorted && i < n; i++)
        if (isfinite(rate[i])) sorted[k++] = rate[i];
    double median = NAN;
    if (k > 0) {
        qsort(sorted, (size_t)k, sizeof *sorted, cmp_double);
        median = k % 2 ? sorted[k / 2] : 0.5 * (sorted[k / 2 - 1] + sorted[k / 2]);
    }
    free(sorted);
    for (int i = 0; i < n; i++) {
        slow[i] = n > 1 && median > 0 && isfinite(rate[i]) && rate[i] < LT_DIST_SLOW_FRACTION * median;
        silent[i] = age[i] > silent_after;
    }
}

int lt_dist_barrier(lt_err *err) {
    if (!D.comm) return LT_OK;
    arm();
    return disarm(D.comm->barrier(err));
}

void lt_dist_abort(int code) {
    if (D.comm) D.comm->abort(code);
    exit(code);
}
