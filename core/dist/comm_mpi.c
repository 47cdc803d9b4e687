/* The CPU ranks' collectives over Open MPI (MPI_COMM_WORLD). MPI runs with
 * MPI_THREAD_SERIALIZED: the trainer's thread makes the calls, one at a time,
 * and the thread that started MPI finalizes it after the trainer is done.
 * Errors return (MPI_ERRORS_RETURN) instead of ending the job, so a failed
 * collective becomes a one-line error of the run. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

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

static int m_bcast(void *buf, size_t bytes, int root, lt_err *err) {
    for (size_t off = 0; off < bytes; off += CHUNK) {
        size_t n = bytes - off < CHUNK ? bytes - off : CHUNK;
        int rc = MPI_Bcast((char *)buf + off, (int)n, MPI_BYTE, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "broadcast", err);
    }
    return LT_OK;
}

static int m_allreduce_f32(float *buf, size_t n, lt_err *err) {
    for (size_t off = 0; off < n; off += CHUNK) {
        size_t k = n - off < CHUNK ? n - off : CHUNK;
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf + off, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "all-reduce", err);
    }
    return LT_OK;
}

static int m_allreduce_f64(double *buf, size_t n, lt_err *err) {
    for (size_t off = 0; off < n; off += CHUNK) {
        size_t k = n - off < CHUNK ? n - off : CHUNK;
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf + off, (int)k, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
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

static int m_waitall(lt_err *err) {
    if (!nreq) return LT_OK;
    int rc = MPI_Waitall(nreq, reqs, MPI_STATUSES_IGNORE);
    nreq = 0;
    return rc == MPI_SUCCESS ? LT_OK : mpi_fail(rc, "all-reduce", err);
}

static int m_allgather_u32(uint32_t mine, uint32_t *all, lt_err *err) {
    int rc = MPI_Allgather(&mine, 1, MPI_UINT32_T, all, 1, MPI_UINT32_T, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? LT_OK : mpi_fail(rc, "all-gather", err);
}

static int m_allgather_bytes(const void *mine, size_t bytes, void *all, lt_err *err) {
    if (bytes > (size_t)INT_MAX)
        return lt_seterr(err, LT_EINVAL, "all-gather of %zu bytes per rank is too large", bytes);
    int rc = MPI_Allgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? LT_OK : mpi_fail(rc, "all-gather", err);
}

static int m_barrier(lt_err *err) {
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? LT_OK : mpi_fail(rc, "barrier", err);
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
    .waitall = m_waitall,
    .allgather_u32 = m_allgather_u32,
    .allgather_bytes = m_allgather_bytes,
    .barrier = m_barrier,
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
