/* The GPU ranks' collectives (--accelerator gpu --strategy ddp): NCCL for
 * device buffers, MPI (comm_mpi.c's table) for the bootstrap and the host's
 * small collectives (the ranks' reports, barriers, the step's command
 * broadcast, the metric sums).
 *
 * Device: one GPU per process. Before CUDA or MPI start, CUDA_VISIBLE_DEVICES
 * is narrowed to the local rank's GPU (lt_dist_pick_device), so that device 0
 * of this process, the one the CUDA backend takes, is that GPU; the
 * communicator is made on it (rank 0's ncclGetUniqueId broadcast over MPI,
 * then ncclCommInitRank).
 *
 * Streams: the collectives run on the CUDA backend's training stream
 * (lt_cuda_training_stream), in order with the kernels that write the
 * gradients and the optimizer's that read them; before the backend has its
 * context, on a stream of this file's own. A buffer goes to NCCL when
 * cudaPointerGetAttributes says device (or managed) memory, else to MPI.
 *
 * Buckets: iallreduce queues a bucket (nccl_book.c's ledger); the next
 * testall launches the queued ones in one ncclGroupStart/End and records a
 * CUDA event per bucket after them, and asks the events (cudaEventQuery);
 * the waits (lt_dist_waitall) loop on it. Every test polls
 * ncclCommGetAsyncError, so a peer's failure returns as an error line.
 *
 * Errors: every NCCL call's failure is one line naming the call and
 * ncclGetErrorString's text (lt_dist_nccl_fail); a CUDA call's names the call
 * and cudaGetErrorString's. The watchdog (dist.c) polls async_error and calls
 * cancel (ncclCommAbort) on a timeout or a fault before it ends the process.
 */
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dist/dist_impl.h"

static struct {
    ncclComm_t comm;
    const lt_dist_comm *mpi; /* the bootstrap and the host's collectives; NULL in a world of 1 */
    int rank, world;
    cudaStream_t own; /* the stream before the backend has its own */
    cudaEvent_t sync; /* the blocking collectives' completion */
    lt_dist_ledger ledger;
    int host_inflight; /* host buckets handed to MPI's iallreduce */
    _Atomic int cancelled;
    char info[256];
} N;

static int nccl_fail(ncclResult_t rc, const char *call, lt_err *err) {
    return lt_dist_nccl_fail((int)rc, call, ncclGetErrorString(rc), err);
}

static int cuda_fail(cudaError_t rc, const char *call, lt_err *err) {
    (void)cudaGetLastError();
    return lt_seterr(err, rc == cudaErrorMemoryAllocation ? LT_ENOMEM : LT_EIO, "rank %d: %s failed: error %d %s: %s",
                     N.rank, call, (int)rc, cudaGetErrorName(rc), cudaGetErrorString(rc));
}

#define NC(call, what)                                                                                                 \
    do {                                                                                                               \
        ncclResult_t nc_rc_ = (call);                                                                                  \
        if (nc_rc_ != ncclSuccess && nc_rc_ != ncclInProgress) return nccl_fail(nc_rc_, what, err);                    \
    } while (0)
#define CU(call, what)                                                                                                 \
    do {                                                                                                               \
        cudaError_t cu_rc_ = (call);                                                                                   \
        if (cu_rc_ != cudaSuccess) return cuda_fail(cu_rc_, what, err);                                                \
    } while (0)

static cudaStream_t stream(void) {
    void *s = lt_cuda_training_stream();
    return s ? (cudaStream_t)s : N.own;
}

static int on_device(const void *p) {
    struct cudaPointerAttributes a;
    if (!p || cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

/* the communicator's own fault, if any (a peer gone, a network error) */
static int n_async_error(lt_err *err) {
    if (!N.comm || atomic_load(&N.cancelled)) return LT_OK;
    ncclResult_t a = ncclSuccess;
    NC(ncclCommGetAsyncError(N.comm, &a), "ncclCommGetAsyncError");
    return a == ncclSuccess || a == ncclInProgress ? LT_OK
                                                   : nccl_fail(a, "an NCCL collective (asynchronous error)", err);
}

/* until ev has passed, the communicator's faults checked between polls */
static int wait_event(cudaEvent_t ev, lt_err *err) {
    for (unsigned spins = 0;; spins++) {
        cudaError_t rc = cudaEventQuery(ev);
        if (rc == cudaSuccess) return LT_OK;
        if (rc != cudaErrorNotReady) return cuda_fail(rc, "cudaEventQuery", err);
        if (atomic_load(&N.cancelled))
            return lt_seterr(err, LT_EIO, "rank %d: the NCCL communicator was aborted", N.rank);
        int arc = n_async_error(err);
        if (arc) return arc;
        struct timespec ts = {0, spins < 1000 ? 2000 : 50000}; /* 2 us, after 2 ms 50 us */
        nanosleep(&ts, NULL);
    }
}

/* a blocking collective: launched on the stream, finished on return */
static int finish(lt_err *err) {
    CU(cudaEventRecord(N.sync, stream()), "cudaEventRecord");
    return wait_event(N.sync, err);
}

static int n_bcast(void *buf, size_t bytes, int root, lt_err *err) {
    if (!on_device(buf)) return N.mpi ? N.mpi->bcast(buf, bytes, root, err) : LT_OK;
    NC(ncclBroadcast(buf, buf, bytes, ncclUint8, root, N.comm, stream()), "ncclBroadcast");
    return finish(err);
}

static int n_allreduce_f32(float *buf, size_t n, lt_err *err) {
    if (!on_device(buf)) return N.mpi ? N.mpi->allreduce_f32(buf, n, err) : LT_OK;
    NC(ncclAllReduce(buf, buf, n, ncclFloat32, ncclSum, N.comm, stream()), "ncclAllReduce");
    return finish(err);
}

static int n_allreduce_f64(double *buf, size_t n, lt_err *err) {
    if (!on_device(buf)) return N.mpi ? N.mpi->allreduce_f64(buf, n, err) : LT_OK;
    NC(ncclAllReduce(buf, buf, n, ncclFloat64, ncclSum, N.comm, stream()), "ncclAllReduce");
    return finish(err);
}

static int n_iallreduce_f32(float *buf, size_t n, lt_err *err) {
    if (!on_device(buf)) {
        if (!N.mpi) return LT_OK;
        N.host_inflight = 1;
        return N.mpi->iallreduce_f32(buf, n, err);
    }
    return lt_dist_ledger_add(&N.ledger, buf, n, err);
}

/* the queued buckets in one group, then an event after each */
static int launch(lt_err *err) {
    lt_dist_ledger *l = &N.ledger;
    if (l->launched == l->n) return LT_OK;
    cudaStream_t s = stream();
    NC(ncclGroupStart(), "ncclGroupStart");
    for (int i = l->launched; i < l->n; i++) {
        ncclResult_t rc = ncclAllReduce(l->b[i].buf, l->b[i].buf, l->b[i].n, ncclFloat32, ncclSum, N.comm, s);
        if (rc != ncclSuccess && rc != ncclInProgress) {
            (void)ncclGroupEnd();
            return nccl_fail(rc, "ncclAllReduce", err);
        }
    }
    NC(ncclGroupEnd(), "ncclGroupEnd");
    for (int i = l->launched; i < l->n; i++) {
        if (!l->b[i].event) {
            cudaEvent_t ev;
            CU(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming), "cudaEventCreateWithFlags");
            l->b[i].event = ev;
        }
        CU(cudaEventRecord((cudaEvent_t)l->b[i].event, s), "cudaEventRecord");
    }
    l->launched = l->n;
    return LT_OK;
}

static int query(void *ctx, lt_dist_bucket *b, lt_err *err) {
    (void)ctx;
    cudaError_t rc = cudaEventQuery((cudaEvent_t)b->event);
    if (rc == cudaSuccess) return 1;
    if (rc != cudaErrorNotReady) return cuda_fail(rc, "cudaEventQuery", err);
    int arc = n_async_error(err);
    return arc ? arc : 0;
}

static int n_testall(int *done, lt_err *err) {
    int rc = launch(err);
    if (!rc) rc = lt_dist_ledger_test(&N.ledger, query, NULL, done, err);
    if (rc || !N.host_inflight) return rc;
    int host_done = 0;
    if ((rc = N.mpi->testall(&host_done, err))) return rc;
    if (host_done) N.host_inflight = 0;
    *done = *done && host_done;
    return LT_OK;
}

static int wait_bucket(void *ctx, lt_dist_bucket *b, lt_err *err) {
    (void)ctx;
    int rc = wait_event((cudaEvent_t)b->event, err);
    return rc ? rc : 1;
}

static int n_waitall(lt_err *err) {
    int done = 0, rc = launch(err);
    if (!rc) rc = lt_dist_ledger_test(&N.ledger, wait_bucket, NULL, &done, err);
    for (int host_done = 0; !rc && N.host_inflight;)
        if (!(rc = N.mpi->testall(&host_done, err)) && host_done) N.host_inflight = 0;
    return rc;
}

/* the host's requests and heartbeats: MPI's, where there is a world of more than one */
static int n_msg_send(int to, int kind, const void *buf, size_t n, lt_err *err) {
    if (!N.mpi) return lt_seterr(err, LT_EINVAL, "a world of one has no rank %d", to);
    return N.mpi->msg_send(to, kind, buf, n, err);
}

static int n_msg_take(int from, int kind, char **buf, size_t *n, int *got, lt_err *err) {
    *got = 0;
    return N.mpi ? N.mpi->msg_take(from, kind, buf, n, got, err) : LT_OK;
}

static int n_beat_listen(size_t bytes, lt_err *err) { return N.mpi ? N.mpi->beat_listen(bytes, err) : LT_OK; }

static int n_beat_send(const void *rec, size_t bytes, int *sent, lt_err *err) {
    *sent = 0;
    return N.mpi ? N.mpi->beat_send(rec, bytes, sent, err) : LT_OK;
}

static int n_beat_poll(void *table, int *got, lt_err *err) { return N.mpi ? N.mpi->beat_poll(table, got, err) : LT_OK; }

static void n_beat_close(void) {
    if (N.mpi) N.mpi->beat_close();
}

static int n_allgather_u32(uint32_t mine, uint32_t *all, lt_err *err) {
    if (N.mpi) return N.mpi->allgather_u32(mine, all, err);
    all[0] = mine;
    return LT_OK;
}

static int n_allgather_bytes(const void *mine, size_t bytes, void *all, lt_err *err) {
    if (N.mpi) return N.mpi->allgather_bytes(mine, bytes, all, err);
    memmove(all, mine, bytes);
    return LT_OK;
}

static int n_barrier(lt_err *err) { return N.mpi ? N.mpi->barrier(err) : LT_OK; }

/* from the watchdog's thread: the kernels waiting on the other ranks end */
static void n_cancel(void) {
    if (atomic_exchange(&N.cancelled, 1) || !N.comm) return;
    (void)ncclCommAbort(N.comm);
}

static void n_abort(int code) {
    n_cancel();
    if (N.mpi) N.mpi->abort(code);
}

static void free_event(void *ev) { (void)cudaEventDestroy((cudaEvent_t)ev); }

static void n_finalize(void) {
    if (N.comm && !atomic_load(&N.cancelled)) {
        (void)cudaStreamSynchronize(stream());
        (void)ncclCommDestroy(N.comm);
    }
    N.comm = NULL;
    lt_dist_ledger_free(&N.ledger, free_event);
    if (N.sync) (void)cudaEventDestroy(N.sync);
    if (N.own) (void)cudaStreamDestroy(N.own);
    N.sync = NULL;
    N.own = NULL;
    if (N.mpi) N.mpi->finalize();
    N.mpi = NULL;
}

static const lt_dist_comm nccl_comm = {
    .name = "nccl",
    .bcast = n_bcast,
    .allreduce_f32 = n_allreduce_f32,
    .allreduce_f64 = n_allreduce_f64,
    .iallreduce_f32 = n_iallreduce_f32,
    .testall = n_testall,
    .msg_send = n_msg_send,
    .msg_take = n_msg_take,
    .beat_listen = n_beat_listen,
    .beat_send = n_beat_send,
    .beat_poll = n_beat_poll,
    .beat_close = n_beat_close,
    .allgather_u32 = n_allgather_u32,
    .allgather_bytes = n_allgather_bytes,
    .barrier = n_barrier,
    .abort = n_abort,
    .finalize = n_finalize,
    .async_error = n_async_error,
    .cancel = n_cancel,
};

/* The new communicator's check: two buckets (one group), a blocking f32 and
 * f64 all-reduce and a broadcast from rank 0, of small integers (exact in
 * float), compared with what the sums must be. */
#define CHECK_N 256
static int self_check(lt_err *err) {
    float *d = NULL;
    double *dd = NULL;
    static float h[4 * CHECK_N];
    static double hd[CHECK_N];
    int w = N.world, r = N.rank, rc = LT_OK;
    for (int i = 0; i < CHECK_N; i++) {
        h[i] = (float)(r + 1);                          /* bucket a: sum w(w+1)/2 */
        h[CHECK_N + i] = (float)(2 * r + i);            /* bucket b: sum w(w-1) + w i */
        h[2 * CHECK_N + i] = 1.0f;                      /* blocking f32: w */
        h[3 * CHECK_N + i] = r == 0 ? (float)i : -1.0f; /* broadcast from 0: i */
        hd[i] = 0.5;                                    /* blocking f64: w / 2 */
    }
    CU(cudaMalloc((void **)&d, sizeof h), "cudaMalloc");
    if (cudaMalloc((void **)&dd, sizeof hd) != cudaSuccess) {
        (void)cudaFree(d);
        return cuda_fail(cudaErrorMemoryAllocation, "cudaMalloc", err);
    }
    cudaStream_t s = stream();
    cudaError_t crc = cudaMemcpyAsync(d, h, sizeof h, cudaMemcpyHostToDevice, s);
    if (crc == cudaSuccess) crc = cudaMemcpyAsync(dd, hd, sizeof hd, cudaMemcpyHostToDevice, s);
    if (crc != cudaSuccess) rc = cuda_fail(crc, "cudaMemcpyAsync", err);
    if (!rc) rc = n_iallreduce_f32(d, CHECK_N, err);
    if (!rc) rc = n_iallreduce_f32(d + CHECK_N, CHECK_N, err);
    if (!rc) rc = n_waitall(err);
    if (!rc) rc = n_allreduce_f32(d + 2 * CHECK_N, CHECK_N, err);
    if (!rc) rc = n_allreduce_f64(dd, CHECK_N, err);
    if (!rc) rc = n_bcast(d + 3 * CHECK_N, CHECK_N * sizeof(float), 0, err);
    if (!rc && (crc = cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost)) == cudaSuccess)
        crc = cudaMemcpy(hd, dd, sizeof hd, cudaMemcpyDeviceToHost);
    if (!rc && crc != cudaSuccess) rc = cuda_fail(crc, "cudaMemcpy", err);
    for (int i = 0; !rc && i < CHECK_N; i++) {
        float want[4] = {(float)(w * (w + 1) / 2), (float)(w * (w - 1) + w * i), (float)w, (float)i};
        for (int k = 0; !rc && k < 4; k++)
            if (h[k * CHECK_N + i] != want[k])
                rc = lt_seterr(err, LT_EIO, "rank %d: the NCCL check gave %g at %d of part %d, expected %g", r,
                               (double)h[k * CHECK_N + i], i, k, (double)want[k]);
        if (!rc && hd[i] != 0.5 * w)
            rc = lt_seterr(err, LT_EIO, "rank %d: the NCCL check gave %g at %d of the f64 sum, expected %g", r, hd[i],
                           i, 0.5 * w);
    }
    (void)cudaFree(d);
    (void)cudaFree(dd);
    return rc;
}

static int start(const lt_dist_env *e, int *rank, int *world, lt_err *err) {
    /* this process's GPU: device 0 once CUDA_VISIBLE_DEVICES names it alone */
    char dev[64];
    int rc = lt_dist_pick_device(getenv("CUDA_VISIBLE_DEVICES"), e->local_rank, dev, sizeof dev, err);
    if (rc) return rc;
    setenv("CUDA_VISIBLE_DEVICES", dev, 1);
    if (e->world > 1) {
        if (!(N.mpi = lt_dist_mpi_start(rank, world, err))) return err ? err->code : LT_EIO;
    } else {
        *rank = 0;
        *world = 1;
    }
    N.rank = *rank;
    N.world = *world;
    CU(cudaSetDevice(0), "cudaSetDevice");
    struct cudaDeviceProp prop;
    CU(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if (N.rank == 0) NC(ncclGetUniqueId(&id), "ncclGetUniqueId");
    if (N.mpi && (rc = N.mpi->bcast(&id, sizeof id, 0, err))) return rc;
    NC(ncclCommInitRank(&N.comm, N.world, id, N.rank), "ncclCommInitRank");
    CU(cudaStreamCreateWithFlags(&N.own, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    CU(cudaEventCreateWithFlags(&N.sync, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    if ((rc = self_check(err))) return rc;
    int v = 0;
    NC(ncclGetVersion(&v), "ncclGetVersion");
    snprintf(N.info, sizeof N.info,
             "nccl %d.%d.%d, rank %d of %d on cuda:0 %.100s (CUDA_VISIBLE_DEVICES=%s), check "
             "all-reduce ok",
             v / 10000, v / 100 % 100, v % 100, N.rank, N.world, prop.name, dev);
    return LT_OK;
}

const lt_dist_comm *lt_dist_nccl_start(const lt_dist_env *e, int *rank, int *world, lt_err *err) {
    memset(&N, 0, sizeof N);
    N.rank = e->rank;
    if (start(e, rank, world, err)) {
        if (N.comm) (void)ncclCommDestroy(N.comm);
        N.comm = NULL;
        n_finalize();
        return NULL;
    }
    return &nccl_comm;
}

const char *lt_dist_nccl_info(void) { return N.info; }

/* Why cudaGetDeviceCount found no usable GPU, as the CUDA backend says it. */
static const char *no_gpu_reason(int rc) {
    switch (rc) {
    case 34: return "no CUDA driver (only its stub library)"; /* cudaErrorStubLibrary */
    case 35: return "no CUDA driver";                         /* cudaErrorInsufficientDriver */
    case 100: return "no CUDA device";                        /* cudaErrorNoDevice */
    default: return "CUDA unusable";
    }
}

/* In a child: this process's CUDA must start after CUDA_VISIBLE_DEVICES is
 * narrowed to its local rank's device, which the count comes before. */
int lt_dist_nccl_gpu_count(int *n, lt_err *err) {
    struct {
        int rc, n;
        char name[64], text[160];
    } r;
    memset(&r, 0, sizeof r);
    int fd[2];
    if (pipe(fd) != 0) return lt_seterr(err, LT_EIO, "counting the GPUs: pipe failed");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        cudaError_t rc = cudaGetDeviceCount(&r.n);
        r.rc = (int)rc;
        if (rc != cudaSuccess) {
            snprintf(r.name, sizeof r.name, "%s", cudaGetErrorName(rc));
            snprintf(r.text, sizeof r.text, "%s", cudaGetErrorString(rc));
        }
        ssize_t k = write(fd[1], &r, sizeof r);
        _exit(k == (ssize_t)sizeof r ? 0 : 1);
    }
    close(fd[1]);
    ssize_t got = 0;
    if (pid > 0) {
        ssize_t k;
        while (got < (ssize_t)sizeof r && (k = read(fd[0], (char *)&r + got, sizeof r - (size_t)got)) > 0) got += k;
        int st = 0;
        waitpid(pid, &st, 0);
    }
    close(fd[0]);
    if (pid < 0) return lt_seterr(err, LT_EIO, "counting the GPUs: fork failed");
    if (got != (ssize_t)sizeof r) return lt_seterr(err, LT_EIO, "counting the GPUs: the child process gave no answer");
    r.name[sizeof r.name - 1] = r.text[sizeof r.text - 1] = '\0';
    if (r.rc != 0)
        return lt_seterr(err, LT_EUNSUPPORTED, "%s (cudaGetDeviceCount: error %d %s: %s)", no_gpu_reason(r.rc), r.rc,
                         r.name, r.text);
    if (r.n < 1) return lt_seterr(err, LT_EUNSUPPORTED, "no CUDA device (cudaGetDeviceCount found none)");
    *n = r.n;
    return LT_OK;
}
