/* The CPU ranks' collectives over Open MPI (MPI_COMM_WORLD). MPI runs with
 * MPI_THREAD_SERIALIZED: the trainer's thread makes the calls, one at a time,
 * and the thread that started MPI finalizes it after the trainer is done.
 * Errors return (MPI_ERRORS_RETURN) instead of ending the job, so a failed
 * collective becomes a one-line error of the run. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist/dist_impl.h"

#ifdef LATHE_HAVE_MPI
#include <mpi.h>

static int mpi_fail(int rc, const char *what, lt_err *err) {
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return lt_seterr(err, LT_EIO, "rank %d: %s failed: %s", lt_dist_rank(), what, msg);
}

/* MPI counts are ints: long buffers go in pieces */
#define CHUNK ((size_t)INT_MAX / 8)

static int m_allreduce_f32(float *buf, size_t n, lt_err *err) {
    for (size_t off = 0; off < n; off += CHUNK) {
        size_t k = n - off < CHUNK ? n - off : CHUNK;
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf + off, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "all-reduce", err);
    }
    return LT_OK;
}

/* the requests in flight (one per bucket piece), finished by m_waitall */
static MPI_Request *reqs;
static int nreq, capreq;

static int m_iallreduce_f32(float *buf, size_t n, lt_err *err) {
    for (size_t off = 0; off < n; off += CHUNK) {
        size_t k = n - off < CHUNK ? n - off : CHUNK;
        if (nreq == capreq) {
            int cap = capreq ? 2 * capreq : 64;
            MPI_Request *r = realloc(reqs, (size_t)cap * sizeof *r);
            if (!r) return lt_seterr(err, LT_ENOMEM, "rank %d: out of memory for all-reduce requests", lt_dist_rank());
            reqs = r;
            capreq = cap;
        }
        int rc = MPI_Iallreduce(MPI_IN_PLACE, buf + off, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &reqs[nreq]);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "all-reduce", err);
        nreq++;
    }
    return LT_OK;
}

static int m_testall(int *done, lt_err *err) {
    *done = 1;
    if (!nreq) return LT_OK;
    int rc = MPI_Testall(nreq, reqs, done, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "all-reduce", err);
    if (*done) nreq = 0;
    return LT_OK;
}

/* A collective's requests to completion, tested in a loop that lets the
   heartbeats and rank 0's clients be served meanwhile (lt_dist_waiting). */
static int wait_reqs(MPI_Request *r, int n, const char *what, lt_err *err) {
    for (;;) {
        int done = 0;
        int rc = MPI_Testall(n, r, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, what, err);
        if (done) return LT_OK;
        lt_dist_waiting();
    }
}

static int m_bcast(void *buf, size_t bytes, int root, lt_err *err) {
    for (size_t off = 0; off < bytes; off += CHUNK) {
        size_t n = bytes - off < CHUNK ? bytes - off : CHUNK;
        MPI_Request r;
        int rc = MPI_Ibcast((char *)buf + off, (int)n, MPI_BYTE, root, MPI_COMM_WORLD, &r);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "broadcast", err);
        if ((rc = wait_reqs(&r, 1, "broadcast", err))) return rc;
    }
    return LT_OK;
}

static int m_allreduce_f64(double *buf, size_t n, lt_err *err) {
    for (size_t off = 0; off < n; off += CHUNK) {
        size_t k = n - off < CHUNK ? n - off : CHUNK;
        MPI_Request r;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, buf + off, (int)k, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &r);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "all-reduce", err);
        if ((rc = wait_reqs(&r, 1, "all-reduce", err))) return rc;
    }
    return LT_OK;
}

static int m_allgather_u32(uint32_t mine, uint32_t *all, lt_err *err) {
    MPI_Request r;
    int rc = MPI_Iallgather(&mine, 1, MPI_UINT32_T, all, 1, MPI_UINT32_T, MPI_COMM_WORLD, &r);
    return rc == MPI_SUCCESS ? wait_reqs(&r, 1, "all-gather", err) : mpi_fail(rc, "all-gather", err);
}

static int m_allgather_bytes(const void *mine, size_t bytes, void *all, lt_err *err) {
    if (bytes > (size_t)INT_MAX)
        return lt_seterr(err, LT_EINVAL, "all-gather of %zu bytes per rank is too large", bytes);
    MPI_Request r;
    int rc = MPI_Iallgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD, &r);
    return rc == MPI_SUCCESS ? wait_reqs(&r, 1, "all-gather", err) : mpi_fail(rc, "all-gather", err);
}

static int m_barrier(lt_err *err) {
    MPI_Request r;
    int rc = MPI_Ibarrier(MPI_COMM_WORLD, &r);
    return rc == MPI_SUCCESS ? wait_reqs(&r, 1, "barrier", err) : mpi_fail(rc, "barrier", err);
}

/* ---- requests between two ranks ---- */

#define MSG_TAG 7412 /* + kind: 7412 requests, 7413 answers */

static int m_msg_send(int to, int kind, const void *buf, size_t n, lt_err *err) {
    if (n > (size_t)INT_MAX) return lt_seterr(err, LT_EINVAL, "a message of %zu bytes is too large", n);
    MPI_Request r;
    int rc = MPI_Isend(buf, (int)n, MPI_BYTE, to, MSG_TAG + kind, MPI_COMM_WORLD, &r);
    return rc == MPI_SUCCESS ? wait_reqs(&r, 1, "send", err) : mpi_fail(rc, "send", err);
}

static int m_msg_take(int from, int kind, char **buf, size_t *n, int *got, lt_err *err) {
    int flag = 0, count = 0;
    MPI_Status st;
    *got = 0;
    int rc = MPI_Iprobe(from < 0 ? MPI_ANY_SOURCE : from, MSG_TAG + kind, MPI_COMM_WORLD, &flag, &st);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "probe", err);
    if (!flag) return LT_OK;
    MPI_Get_count(&st, MPI_BYTE, &count);
    char *b = malloc((size_t)count + 1);
    if (!b) return lt_seterr(err, LT_ENOMEM, "out of memory for a message of %d bytes", count);
    rc = MPI_Recv(b, count, MPI_BYTE, st.MPI_SOURCE, MSG_TAG + kind, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) {
        free(b);
        return mpi_fail(rc, "receive", err);
    }
    b[count] = '\0';
    *buf = b;
    *n = (size_t)count;
    *got = 1;
    return LT_OK;
}

/* ---- heartbeats ---- */

#define BEAT_TAG 7411        /* the heartbeats' messages, apart from every collective's */
#define BEAT_DRAIN 16        /* rounds of one poll: a backlog of older reports is passed over */
static MPI_Request *beat_rq; /* rank 0: the receive posted from each rank (rank 0's own: none) */
static char *beat_in;        /* rank 0: world x beat_bytes, where they arrive */
static int *beat_idx;
static int beat_world;
static size_t beat_bytes;
static MPI_Request beat_out = MPI_REQUEST_NULL; /* the other ranks: the one in flight */
static char *beat_outbuf;

static int beat_post(int r, lt_err *err) {
    int rc = MPI_Irecv(beat_in + (size_t)r * beat_bytes, (int)beat_bytes, MPI_BYTE, r, BEAT_TAG, MPI_COMM_WORLD,
                       &beat_rq[r]);
    return rc == MPI_SUCCESS ? LT_OK : mpi_fail(rc, "heartbeat receive", err);
}

static int m_beat_listen(size_t bytes, lt_err *err) {
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &beat_world);
    if (bytes == 0 || bytes > 4096) return lt_seterr(err, LT_EINVAL, "a heartbeat of %zu bytes", bytes);
    beat_bytes = bytes;
    if (rank != 0) {
        beat_outbuf = malloc(bytes);
        return beat_outbuf ? LT_OK : lt_seterr(err, LT_ENOMEM, "rank %d: out of memory for heartbeats", rank);
    }
    beat_rq = malloc((size_t)beat_world * sizeof *beat_rq);
    beat_in = malloc((size_t)beat_world * bytes);
    beat_idx = malloc((size_t)beat_world * sizeof *beat_idx);
    if (!beat_rq || !beat_in || !beat_idx) return lt_seterr(err, LT_ENOMEM, "rank 0: out of memory for heartbeats");
    beat_rq[0] = MPI_REQUEST_NULL;
    for (int r = 1; r < beat_world; r++) {
        int rc = beat_post(r, err);
        if (rc) return rc;
    }
    return LT_OK;
}

static int m_beat_send(const void *rec, size_t bytes, int *sent, lt_err *err) {
    *sent = 0;
    if (!beat_outbuf || bytes != beat_bytes) return LT_OK;
    if (beat_out != MPI_REQUEST_NULL) {
        int done = 0;
        int rc = MPI_Test(&beat_out, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "heartbeat send", err);
        if (!done) return LT_OK;
    }
    memcpy(beat_outbuf, rec, bytes);
    int rc = MPI_Isend(beat_outbuf, (int)bytes, MPI_BYTE, 0, BEAT_TAG, MPI_COMM_WORLD, &beat_out);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "heartbeat send", err);
    *sent = 1;
    return LT_OK;
}

static int m_beat_poll(void *table, int *got, lt_err *err) {
    if (!beat_rq) return LT_OK;
    for (int round = 0; round < BEAT_DRAIN; round++) {
        int n = 0;
        int rc = MPI_Testsome(beat_world, beat_rq, &n, beat_idx, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "heartbeat receive", err);
        if (n == MPI_UNDEFINED || n == 0) break;
        for (int i = 0; i < n; i++) {
            int r = beat_idx[i];
            memcpy((char *)table + (size_t)r * beat_bytes, beat_in + (size_t)r * beat_bytes, beat_bytes);
            got[r] = 1;
            if ((rc = beat_post(r, err))) return rc;
        }
    }
    return LT_OK;
}

static void m_beat_close(void) {
    for (int r = 0; beat_rq && r < beat_world; r++)
        if (beat_rq[r] != MPI_REQUEST_NULL) {
            MPI_Cancel(&beat_rq[r]);
            MPI_Wait(&beat_rq[r], MPI_STATUS_IGNORE);
        }
    /* a small message goes out eagerly: the one in flight completes on its
       own, rank 0 listening or not */
    int done = beat_out == MPI_REQUEST_NULL;
    for (int i = 0; !done && i < 200; i++) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        if (MPI_Test(&beat_out, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) break;
        if (!done) nanosleep(&ts, NULL);
    }
    if (done) {
        free(beat_outbuf);
        beat_outbuf = NULL;
    } else { /* its buffer stays with it */
        MPI_Request_free(&beat_out);
    }
    free(beat_rq);
    free(beat_in);
    free(beat_idx);
    beat_rq = NULL;
    beat_in = NULL;
    beat_idx = NULL;
}

static void m_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

static void m_finalize(void) {
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
}

static const lt_dist_comm mpi_comm = {
    .name = "mpi",
    .bcast = m_bcast,
    .allreduce_f32 = m_allreduce_f32,
    .allreduce_f64 = m_allreduce_f64,
    .iallreduce_f32 = m_iallreduce_f32,
    .testall = m_testall,
    .allgather_u32 = m_allgather_u32,
    .allgather_bytes = m_allgather_bytes,
    .barrier = m_barrier,
    .msg_send = m_msg_send,
    .msg_take = m_msg_take,
    .beat_listen = m_beat_listen,
    .beat_send = m_beat_send,
    .beat_poll = m_beat_poll,
    .beat_close = m_beat_close,
    .abort = m_abort,
    .finalize = m_finalize,
};

const lt_dist_comm *lt_dist_mpi_start(int *rank, int *world, lt_err *err) {
    int provided = 0;
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
    if (rc != MPI_SUCCESS) {
        lt_seterr(err, LT_EIO, "MPI_Init_thread failed (error %d)", rc);
        return NULL;
    }
    if (provided < MPI_THREAD_SERIALIZED) {
        lt_seterr(err, LT_EUNSUPPORTED, "this MPI gives thread level %d, lathe needs MPI_THREAD_SERIALIZED", provided);
        MPI_Finalize();
        return NULL;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    MPI_Comm_size(MPI_COMM_WORLD, world);
    return &mpi_comm;
}

#else

const lt_dist_comm *lt_dist_mpi_start(int *rank, int *world, lt_err *err) {
    (void)rank;
    (void)world;
    lt_seterr(err, LT_EUNSUPPORTED, "this build has no MPI (install libopenmpi-dev and configure again)");
    return NULL;
}

#endif
