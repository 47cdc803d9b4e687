/* The GPU ranks' collectives (core/dist/comm_nccl.c) as far as a machine
 * without a GPU can check them: the ledger of bucket all-reduces and their
 * events, NCCL's results as one-line errors (with NCCL's own texts when the
 * build has NCCL), the --devices check, the device a local rank takes, the
 * watchdog with an implementation's asynchronous fault and hang (a fake
 * table: one line, the communicator cancelled, exit 134), and the GPU
 * count's answer. With a GPU: a world of 1 through NCCL
 * (LATHE_DIST_NCCL=1): the communicator's check, buckets, a blocking sum and
 * a broadcast of device memory. Without one, that part says why in one line,
 * "nccl: skipped: ...". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dist/dist_impl.h"
#include "lathe/dist.h"

#ifdef LATHE_HAVE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>
#endif

#include "check.h"

/* a fake event: a counter of polls until it passes, or a failure */
typedef struct fake_event {
    int polls_left, fail, freed;
} fake_event;

static int fake_query(void *ctx, lt_dist_bucket *b, lt_err *err) {
    int *asked = ctx;
    (*asked)++;
    fake_event *e = b->event;
    if (e->fail) return lt_seterr(err, LT_EIO, "rank 0: cudaEventQuery failed: fake");
    return e->polls_left-- <= 0;
}

static void fake_free(void *ev) { ((fake_event *)ev)->freed++; }

static void test_ledger(void) {
    lt_dist_ledger l = {0};
    lt_err err = {0};
    float a[4], b[4], c[4];
    fake_event ev[3] = {{0, 0, 0}, {2, 0, 0}, {0, 0, 0}};
    CHECK(lt_dist_ledger_add(&l, a, 4, &err) == LT_OK);
    CHECK(lt_dist_ledger_add(&l, b, 4, &err) == LT_OK);
    CHECK(l.n == 2 && l.launched == 0 && l.b[0].buf == a && l.b[1].n == 4);
    int done = 1, asked = 0;
    /* nothing launched yet: not done, nothing asked */
    CHECK(lt_dist_ledger_test(&l, fake_query, &asked, &done, &err) == LT_OK);
    CHECK(!done && asked == 0);
    /* launched with their events: the first passes, the second not yet */
    l.b[0].event = &ev[0];
    l.b[1].event = &ev[1];
    l.launched = 2;
    CHECK(lt_dist_ledger_test(&l, fake_query, &asked, &done, &err) == LT_OK);
    CHECK(!done && asked == 2 && l.b[0].done && !l.b[1].done);
    /* a third queued (not launched) keeps the round open after the second passes */
    CHECK(lt_dist_ledger_add(&l, c, 4, &err) == LT_OK);
    asked = 0;
    CHECK(lt_dist_ledger_test(&l, fake_query, &asked, &done, &err) == LT_OK);
    CHECK(!done && asked == 1); /* the first is not asked again */
    CHECK(lt_dist_ledger_test(&l, fake_query, &asked, &done, &err) == LT_OK);
    CHECK(!done && l.b[1].done && !l.b[2].done);
    l.b[2].event = &ev[2];
    l.launched = 3;
    CHECK(lt_dist_ledger_test(&l, fake_query, &asked, &done, &err) == LT_OK);
    CHECK(done && l.n == 0 && l.launched == 0);
    /* the next round reuses the entries' events */
    CHECK(lt_dist_ledger_add(&l, c, 2, &err) == LT_OK);
    CHECK(l.b[0].event == &ev[0] && l.b[0].buf == c && l.b[0].n == 2 && !l.b[0].done);
    /* a failed query is returned at once, with its line */
    ev[0].fail = 1;
    l.launched = 1;
    CHECK(lt_dist_ledger_test(&l, fake_query, &asked, &done, &err) == LT_EIO);
    CHECK_STR_CONTAINS(err.msg, "cudaEventQuery failed");
    /* many buckets: the entries grow, the events kept */
    for (int i = 0; i < 40; i++) CHECK(lt_dist_ledger_add(&l, a, 1, &err) == LT_OK);
    CHECK(l.n == 41 && l.cap >= 41 && l.b[1].event == &ev[1] && l.b[2].event == &ev[2] && !l.b[40].event);
    lt_dist_ledger_free(&l, fake_free);
    CHECK(ev[0].freed == 1 && ev[1].freed == 1 && ev[2].freed == 1);
    CHECK(l.b == NULL && l.n == 0 && l.cap == 0);
}

static void test_nccl_errors(void) {
    lt_err err = {0};
    CHECK(lt_dist_nccl_code(0) == LT_OK);
    CHECK(lt_dist_nccl_code(4) == LT_EINVAL && lt_dist_nccl_code(5) == LT_EINVAL);
    CHECK(lt_dist_nccl_code(1) == LT_EIO && lt_dist_nccl_code(2) == LT_EIO && lt_dist_nccl_code(6) == LT_EIO);
    CHECK(lt_dist_nccl_fail(2, "ncclAllReduce", "unhandled system error\n(run with NCCL_DEBUG=INFO)\n", &err) ==
          LT_EIO);
    CHECK_MSG(!strcmp(err.msg, "rank 0: ncclAllReduce failed: unhandled system error (run with NCCL_DEBUG=INFO) "
                               "(ncclResult_t 2)"),
              "%s", err.msg);
    CHECK(lt_dist_nccl_fail(5, "ncclCommInitRank", NULL, &err) == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "ncclCommInitRank failed: no text (ncclResult_t 5)");
    /* success handed in is a failure all the same (a caller's misuse) */
    CHECK(lt_dist_nccl_fail(0, "ncclGroupEnd", "no error", &err) == LT_EIO);
#ifdef LATHE_HAVE_NCCL
    /* NCCL's own texts, which need no GPU */
    CHECK(lt_dist_nccl_fail(ncclRemoteError, "ncclBroadcast", ncclGetErrorString(ncclRemoteError), &err) == LT_EIO);
    CHECK_STR_CONTAINS(err.msg, "ncclBroadcast failed: ");
    CHECK_STR_CONTAINS(err.msg, ncclGetErrorString(ncclRemoteError));
    CHECK(!strchr(err.msg, '\n'));
    CHECK(lt_dist_nccl_code(ncclInvalidArgument) == LT_EINVAL && lt_dist_nccl_code(ncclSystemError) == LT_EIO);
#endif
}

static void test_devices_and_pick(void) {
    lt_err err = {0};
    CHECK(lt_dist_check_devices(1, 1, &err) == LT_OK && lt_dist_check_devices(2, 8, &err) == LT_OK);
    CHECK(lt_dist_check_devices(4, 1, &err) == LT_EINVAL);
    CHECK_MSG(!strcmp(err.msg, "--devices 4 but this node has 1 GPU (cudaGetDeviceCount)"), "%s", err.msg);
    CHECK(lt_dist_check_devices(3, 2, &err) == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "--devices 3 but this node has 2 GPUs");
    char out[32];
    CHECK(lt_dist_pick_device(NULL, 3, out, sizeof out, &err) == LT_OK && !strcmp(out, "3"));
    CHECK(lt_dist_pick_device("", 0, out, sizeof out, &err) == LT_OK && !strcmp(out, "0"));
    CHECK(lt_dist_pick_device("GPU-1234", 2, out, sizeof out, &err) == LT_OK && !strcmp(out, "GPU-1234"));
    CHECK(lt_dist_pick_device("4,5,6", 0, out, sizeof out, &err) == LT_OK && !strcmp(out, "4"));
    CHECK(lt_dist_pick_device("4,5,6", 2, out, sizeof out, &err) == LT_OK && !strcmp(out, "6"));
    CHECK(lt_dist_pick_device("4,5", 2, out, sizeof out, &err) == LT_EINVAL);
    CHECK_MSG(!strcmp(err.msg, "local rank 2 has no GPU: CUDA_VISIBLE_DEVICES=4,5 names 2"), "%s", err.msg);
    CHECK(lt_dist_pick_device("4,,6", 1, out, sizeof out, &err) == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "empty entry");
}

/* ---- the watchdog with an implementation's fault and hang (a fake table) ---- */
static int cancel_fd = -1; /* cancel writes a byte here */
static int polls;

static int fake_async(lt_err *err) {
    if (++polls < 3) return LT_OK;
    return lt_dist_nccl_fail(6, "an NCCL collective (asynchronous error)",
                             "remote process exited or there was a network error", err);
}
static int fake_no_fault(lt_err *err) {
    (void)err;
    return LT_OK;
}
static void fake_cancel(void) {
    if (write(cancel_fd, "c", 1) != 1) _exit(3);
}
static int fake_hang(float *buf, size_t n, lt_err *err) {
    (void)buf, (void)n, (void)err;
    sleep(20);
    return LT_OK;
}
static void fake_finalize(void) {}

static void fault_body(void) {
    static const lt_dist_comm t = {
        .name = "fake", .async_error = fake_async, .cancel = fake_cancel, .finalize = fake_finalize};
    lt_dist_start_with(&t, 1, 2, NULL);
    lt_dist_set_step(7);
    sleep(10);
}

static void hang_body(void) {
    static const lt_dist_comm t = {.name = "fake",
                                   .allreduce_f32 = fake_hang,
                                   .async_error = fake_no_fault,
                                   .cancel = fake_cancel,
                                   .finalize = fake_finalize};
    setenv("LATHE_DIST_TIMEOUT", "1", 1);
    lt_dist_start_with(&t, 1, 2, NULL);
    lt_dist_set_step(9);
    float x = 0;
    lt_err err = {0};
    lt_dist_allreduce_sum_f32(&x, 1, &err);
}

/* body in a child whose stderr comes back in text; its exit status, or -1 */
static int in_child(void (*body)(void), char *text, size_t cap, int *cancelled) {
    int out[2], mark[2];
    if (pipe(out) || pipe(mark)) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], STDERR_FILENO);
        close(out[0]);
        close(mark[0]);
        cancel_fd = mark[1];
        body();
        _exit(0); /* the watchdog should have ended it */
    }
    close(out[1]);
    close(mark[1]);
    size_t got = 0;
    ssize_t k;
    while (got + 1 < cap && (k = read(out[0], text + got, cap - 1 - got)) > 0) got += (size_t)k;
    text[got] = '\0';
    char c;
    *cancelled = read(mark[0], &c, 1) == 1;
    close(out[0]);
    close(mark[0]);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_watchdog(void) {
    char text[1024];
    int cancelled = 0;
    /* NCCL's asynchronous error: one line naming the rank, the call, the text and the step; the communicator aborted */
    int st = in_child(fault_body, text, sizeof text, &cancelled);
    CHECK_MSG(st == 134, "exit %d", st);
    CHECK_MSG(!strcmp(text, "rank 1: an NCCL collective (asynchronous error) failed: remote process exited or there "
                            "was a network error (ncclResult_t 6) at step 7; aborting\n"),
              "%s", text);
    CHECK(cancelled);
    /* a collective that never completes: the timeout's line, the communicator aborted */
    st = in_child(hang_body, text, sizeof text, &cancelled);
    CHECK_MSG(st == 134, "exit %d", st);
    CHECK_MSG(!strcmp(text, "rank 1: no all-reduce completion for 1 s at step 9; aborting\n"), "%s", text);
    CHECK(cancelled);
}

/* The count answers in one line: a number, or why there is none. */
static int gpus;
static char why[sizeof((lt_err *)0)->msg];
static void test_gpu_count(void) {
    lt_err err = {0};
    int n = -1, rc = lt_dist_gpu_count(&n, &err);
    CHECK(lt_dist_have_nccl() == 0 || lt_dist_have_nccl() == 1);
    if (rc) {
        CHECK(n == 0 && err.msg[0] && !strchr(err.msg, '\n'));
        if (lt_dist_have_nccl())
            CHECK_MSG(strstr(err.msg, "cudaGetDeviceCount") != NULL, "%s", err.msg);
        else
            CHECK_STR_CONTAINS(err.msg, "not compiled in");
        snprintf(why, sizeof why, "%s", err.msg);
        return;
    }
    CHECK(n >= 1);
    gpus = n;
}

#ifdef LATHE_HAVE_NCCL
/* A world of 1 through NCCL, on device memory. */
static void test_world_of_one_on_gpu(void) {
    setenv("LATHE_DIST_NCCL", "1", 1);
    lt_dist_use_gpu(1);
    lt_err err = {0};
    int rc = lt_dist_init(&err);
    CHECK_MSG(rc == LT_OK, "%s", err.msg);
    if (rc) return;
    CHECK(!strcmp(lt_dist_comm_name(), "nccl"));
    CHECK_STR_CONTAINS(lt_dist_comm_info(), "check all-reduce ok");
    printf("nccl: %s\n", lt_dist_comm_info());
    enum { N = 1000 };
    static float h[2 * N];
    for (int i = 0; i < 2 * N; i++) h[i] = (float)i * 0.5f;
    float *d = NULL;
    CHECK(cudaMalloc((void **)&d, sizeof h) == cudaSuccess);
    CHECK(cudaMemcpy(d, h, sizeof h, cudaMemcpyHostToDevice) == cudaSuccess);
    /* a pageable copy may still be in flight on the legacy stream, which the
       communicator's non-blocking stream does not wait for */
    CHECK(cudaDeviceSynchronize() == cudaSuccess);
    lt_dist_set_step(3);
    CHECK(lt_dist_iallreduce_sum_f32(d, N, &err) == LT_OK);
    CHECK(lt_dist_progress(&err) == LT_OK);
    CHECK(lt_dist_iallreduce_sum_f32(d + N, N, &err) == LT_OK);
    CHECK_MSG(lt_dist_waitall(&err) == LT_OK, "%s", err.msg);
    CHECK_MSG(lt_dist_allreduce_sum_f32(d, 2 * N, &err) == LT_OK, "%s", err.msg);
    CHECK_MSG(lt_dist_bcast_f32(d, 2 * N, 0, &err) == LT_OK, "%s", err.msg);
    static float back[2 * N];
    CHECK(cudaMemcpy(back, d, sizeof back, cudaMemcpyDeviceToHost) == cudaSuccess);
    CHECK(!memcmp(back, h, sizeof h)); /* a sum over one rank is the rank's own */
    /* host buffers stay on the host's path */
    double m[2] = {1.5, 2.5};
    CHECK(lt_dist_allreduce_sum_f64(m, 2, &err) == LT_OK && m[0] == 1.5 && m[1] == 2.5);
    CHECK(lt_dist_barrier(&err) == LT_OK);
    cudaFree(d);
    lt_dist_finalize();
}
#endif

int main(void) {
    RUN(test_ledger);
    RUN(test_nccl_errors);
    RUN(test_devices_and_pick);
    RUN(test_watchdog);
    RUN(test_gpu_count);
#ifdef LATHE_HAVE_NCCL
    if (gpus > 0)
        RUN(test_world_of_one_on_gpu);
    else
        printf("nccl: skipped: no usable GPU: %s\n", why);
#else
    printf("nccl: skipped: this build has no NCCL (%s)\n", gpus > 0 ? "a GPU is present" : why);
#endif
    return check_done();
}
