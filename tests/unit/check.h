/* check.h: the unit tests' assertions. Each test file is one executable and one
 * CTest test; it runs its cases with RUN(fn) and ends with `return check_done();`,
 * which prints "N passed, M failed" and returns non-zero when anything failed. */
#ifndef LATHE_CHECK_H
#define LATHE_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

static int check_passed_, check_failed_, check_case_failed_;

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                                   \
            check_case_failed_ = 1;                                                                                    \
        }                                                                                                              \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                                           \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);                                   \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
            check_case_failed_ = 1;                                                                                    \
        }                                                                                                              \
    } while (0)

/* |a-b| <= tol * max(1, |b|) */
#define CHECK_NEAR(a, b, tol)                                                                                          \
    do {                                                                                                               \
        double a_ = (double)(a), b_ = (double)(b);                                                                     \
        double s_ = fabs(b_) > 1.0 ? fabs(b_) : 1.0;                                                                   \
        if (!(fabs(a_ - b_) <= (tol)*s_)) {                                                                            \
            fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s=%.9g vs %s=%.9g (tol %g)\n", __FILE__, __LINE__, #a, a_, #b, \
                    b_, (double)(tol));                                                                                \
            check_case_failed_ = 1;                                                                                    \
        }                                                                                                              \
    } while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                                                                \
    CHECK_MSG(strstr((hay), (needle)) != NULL, "\"%s\" does not contain \"%s\"", (hay), (needle))

/* The data the training tests run on (Debian's dataset-fashion-mnist). */
#define CHECK_DATA_DIR "/usr/share/datasets/fashion-mnist"

/* Whether path exists; when not, says the tests that need it are skipped. */
static inline int check_have(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0) return 1;
    printf("skipped: %s is not installed\n", path);
    return 0;
}

/* Binds dir/control.sock as a run's control socket; listening (a live run)
 * or not (close it at once for a stale socket). Returns the descriptor. */
static inline int check_control_socket(const char *dir, int listening) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s/control.sock", dir);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    if (listening) CHECK(listen(fd, 4) == 0);
    return fd;
}

#define RUN(fn)                                                                                                        \
    do {                                                                                                               \
        check_case_failed_ = 0;                                                                                        \
        fn();                                                                                                          \
        if (check_case_failed_) {                                                                                      \
            check_failed_++;                                                                                           \
            fprintf(stderr, "FAIL %s\n", #fn);                                                                         \
        } else {                                                                                                       \
            check_passed_++;                                                                                           \
        }                                                                                                              \
    } while (0)

static inline int check_done(void) {
    printf("%d passed, %d failed\n", check_passed_, check_failed_);
    return check_failed_ ? 1 : 0;
}

/* Largest relative error max|a-b| / max(max|b|, 1e-6) over n floats. */
static inline double check_max_rel_err(const float *a, const float *b, size_t n) {
    double maxdiff = 0, maxref = 1e-6;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > maxdiff || d != d) maxdiff = d != d ? INFINITY : d;
        if (fabs((double)b[i]) > maxref) maxref = fabs((double)b[i]);
    }
    return maxdiff / maxref;
}

#endif
