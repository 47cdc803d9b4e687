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
} D = {.world = 1};

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
    return lt_dist_start_with(D.comm, rank, world);
}

int lt_dist_start_with(const lt_dist_comm *comm, int rank, int world) {
    D.started = 1;
    D.comm = comm;
    D.rank = rank;
    D.world = world;
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
    if (D.comm) D.comm->finalize();
    D.comm = NULL;
}

int lt_dist_rank(void) { return D.rank; }
int lt_dist_world(void) { return D.comm ? D.world : 1; }
int lt_dist_local_rank(void) { return D.local_rank; }
void lt_dist_set_step(long step) { atomic_store(&D.step, step); }

static void arm(void) { atomic_store(&D.since, now_s()); }
static int disarm(int rc) {
    atomic_store(&D.since, 0.0);
    return rc;
}

int lt_dist_bcast_f32(float *buf, size_t n, int root, lt_err *err) {
    return lt_dist_bcast_bytes(buf, n * sizeof *buf, root, err);
}

/* A broadcast may wait on a paused rank 0 for as long as the pause lasts: the
 * watchdog does not time it. */
int lt_dist_bcast_bytes(void *buf, size_t bytes, int root, lt_err *err) {
    if (!D.comm) return LT_OK;
    return D.comm->bcast(buf, bytes, root, err);
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
    return disarm(D.comm->waitall(err));
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
