/* TensorBoard event writer: CRC-32C vectors, record framing read back in C,
 * a simulated full disk, and (when a Python with tensorboard is present) the
 * real TensorBoard reader via tests/e2e/check_tb_reader.py. */
#include <float.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "check_python.h"
#include "lathe/tbevents.h"

/* Bit-at-a-time CRC-32C: an independent reference for the table version. */
static uint32_t crc_ref(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

static void test_crc32c(void) {
    CHECK(lt_crc32c("123456789", 9) == 0xE3069283u);
    CHECK(lt_crc32c("", 0) == 0);
    uint8_t z[32], ff[32], inc[32];
    for (int i = 0; i < 32; i++) z[i] = 0, ff[i] = 0xFF, inc[i] = (uint8_t)i;
    /* RFC 3720 (iSCSI) B.4 vectors. */
    CHECK(lt_crc32c(z, 32) == 0x8A9136AAu);
    CHECK(lt_crc32c(ff, 32) == 0x62A8AB43u);
    CHECK(lt_crc32c(inc, 32) == 0x46DD794Eu);
    uint8_t buf[1031];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 131 + 7);
    for (size_t n = 0; n <= sizeof buf; n += 13) {
        CHECK(lt_crc32c(buf, n) == crc_ref(buf, n));
        size_t cut = n / 3;
        CHECK(lt_crc32c_update(lt_crc32c(buf, cut), buf + cut, n - cut) == crc_ref(buf, n));
    }
    /* Unaligned start. */
    CHECK(lt_crc32c(buf + 3, 100) == crc_ref(buf + 3, 100));
    uint32_t c = 0xE3069283u;
    CHECK(lt_crc32c_mask(c) == (uint32_t)(((c >> 15) | (c << 17)) + 0xA282EAD8u));
    CHECK(lt_crc32c_masked("123456789", 9) == lt_crc32c_mask(0xE3069283u));
}

/* ---- a small record and protobuf reader for the checks ---- */

typedef struct rec {
    uint8_t *data;
    size_t len;
} rec;

static uint64_t rd_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Reads all records of a file, checking both CRCs; returns the count or -1
 * on any framing error (and reports it). */
static int read_records(const char *path, rec *out, int max) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    int n = 0;
    uint8_t hdr[12];
    size_t got;
    while ((got = fread(hdr, 1, 12, f)) == 12) {
        uint64_t len = rd_le(hdr, 8);
        if ((uint32_t)rd_le(hdr + 8, 4) != lt_crc32c_mask(crc_ref(hdr, 8)) || len > (1u << 24)) {
            fprintf(stderr, "record %d: bad length crc\n", n);
            n = -1;
            break;
        }
        uint8_t *d = malloc(len + 4);
        if (fread(d, 1, len + 4, f) != len + 4 || (uint32_t)rd_le(d + len, 4) != lt_crc32c_mask(crc_ref(d, len)) ||
            n == max) {
            fprintf(stderr, "record %d: truncated or bad data crc\n", n);
            free(d);
            n = -1;
            break;
        }
        out[n].data = d;
        out[n++].len = len;
    }
    if (n >= 0 && got != 0) {
        fprintf(stderr, "torn record at the end (%zu bytes)\n", got);
        n = -1;
    }
    fclose(f);
    return n;
}

static void free_records(rec *r, int n) {
    for (int i = 0; i < n; i++) free(r[i].data);
}

/* Finds field `field` in a message; returns its payload (for wire type 2),
 * or its raw 8/4 bytes or varint value. NULL when absent. */
static const uint8_t *pb_find(const uint8_t *p, size_t n, uint32_t field, size_t *len, uint64_t *val) {
    size_t i = 0;
    while (i < n) {
        uint64_t key = 0, v = 0;
        for (int s = 0; i < n; s += 7) {
            key |= (uint64_t)(p[i] & 0x7F) << s;
            if (!(p[i++] & 0x80)) break;
        }
        int wt = (int)(key & 7);
        const uint8_t *at = p + i;
        size_t l = 0;
        if (wt == 0) {
            for (int s = 0; i < n; s += 7) {
                v |= (uint64_t)(p[i] & 0x7F) << s;
                if (!(p[i++] & 0x80)) break;
            }
            at = NULL;
        } else if (wt == 1 || wt == 5) {
            l = wt == 1 ? 8 : 4;
            v = rd_le(p + i, (int)l);
        } else if (wt == 2) {
            for (int s = 0; i < n; s += 7) {
                l |= (size_t)(p[i] & 0x7F) << s;
                if (!(p[i++] & 0x80)) break;
            }
            at = p + i;
        } else {
            return NULL;
        }
        i += l;
        if (i > n) return NULL;
        if ((key >> 3) == field) {
            if (len) *len = l;
            if (val) *val = v;
            return at ? at : p; /* non-NULL marks "found" for varints */
        }
    }
    return NULL;
}

static double as_double(uint64_t bits) {
    double d;
    memcpy(&d, &bits, 8);
    return d;
}

static char tmpdir[256];

static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/lathe_tb_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    CHECK(mkdtemp(tmpdir) != NULL);
}

static void remove_dir(const char *dir, const char *file) {
    if (file) unlink(file);
    rmdir(dir);
}

static void test_framing(void) {
    make_tmpdir();
    lt_err err;
    double t0 = (double)time(NULL);
    lt_tb_writer *w = lt_tb_open(tmpdir, &err);
    CHECK_MSG(w != NULL, "%s", err.msg);
    if (!w) return;
    char path[512];
    snprintf(path, sizeof path, "%s", lt_tb_path(w));
    CHECK_STR_CONTAINS(path, "/events.out.tfevents.");
    CHECK(lt_tb_scalar(w, "loss", 7, 0.25, &err) == LT_OK);
    CHECK(lt_tb_scalar(w, "neg", -3, -1.5, &err) == LT_OK);
    CHECK(lt_tb_scalar(w, "", 1, 1.0, &err) == LT_EINVAL);
    CHECK(lt_tb_close(w, &err) == LT_OK);
    double t1 = (double)time(NULL) + 1;

    rec r[8];
    int n = read_records(path, r, 8);
    CHECK_MSG(n == 3, "%d records", n);
    if (n != 3) {
        free_records(r, n > 0 ? n : 0);
        return;
    }
    size_t l;
    uint64_t v;
    const uint8_t *s = pb_find(r[0].data, r[0].len, 3, &l, NULL);
    CHECK(s && l == 13 && !memcmp(s, "brain.Event:2", 13));
    for (int i = 0; i < 3; i++) {
        CHECK(pb_find(r[i].data, r[i].len, 1, NULL, &v) != NULL);
        CHECK_MSG(as_double(v) >= t0 && as_double(v) <= t1, "wall_time %f", as_double(v));
    }
    CHECK(pb_find(r[1].data, r[1].len, 2, NULL, &v) && v == 7);
    CHECK(pb_find(r[2].data, r[2].len, 2, NULL, &v) && (int64_t)v == -3);
    size_t sl, vl, tl;
    const uint8_t *sum = pb_find(r[1].data, r[1].len, 5, &sl, NULL);
    const uint8_t *val = sum ? pb_find(sum, sl, 1, &vl, NULL) : NULL;
    const uint8_t *tag = val ? pb_find(val, vl, 1, &tl, NULL) : NULL;
    CHECK(tag && tl == 4 && !memcmp(tag, "loss", 4));
    CHECK(val && pb_find(val, vl, 2, NULL, &v) && v == 0x3E800000u); /* 0.25f */
    free_records(r, n);
    remove_dir(tmpdir, path);
}

/* A full disk: the writer must report it, keep the file free of torn
 * records, and write again once space is back. Runs in a child because it
 * lowers RLIMIT_FSIZE (writes past it fail with EFBIG once SIGXFSZ is
 * ignored). */
static void test_disk_full(void) {
    make_tmpdir();
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        signal(SIGXFSZ, SIG_IGN);
        lt_err err;
        lt_tb_writer *w = lt_tb_open(tmpdir, &err);
        if (!w) _exit(2);
        if (write(pfd[1], lt_tb_path(w), strlen(lt_tb_path(w)) + 1) < 0) _exit(2);
        struct stat st;
        stat(lt_tb_path(w), &st);
        struct rlimit rl;
        getrlimit(RLIMIT_FSIZE, &rl);
        struct rlimit small = {(rlim_t)st.st_size + 200, rl.rlim_max};
        setrlimit(RLIMIT_FSIZE, &small);
        int fails = 0, oks = 0;
        for (int i = 0; i < 40; i++) {
            if (lt_tb_scalar(w, "loss", i, i, &err) != LT_OK || lt_tb_flush(w, &err) != LT_OK) {
                fails++;
                if (err.code != LT_EIO || !strstr(err.msg, "File too large")) _exit(3);
            } else {
                oks++;
            }
        }
        setrlimit(RLIMIT_FSIZE, &rl);
        for (int i = 100; i < 103; i++)
            if (lt_tb_scalar(w, "after", i, i, &err) != LT_OK) _exit(4);
        if (lt_tb_close(w, &err) != LT_OK) _exit(5);
        _exit(fails >= 30 && oks >= 3 ? 0 : 6);
    }
    close(pfd[1]);
    char path[512] = {0};
    ssize_t k = read(pfd[0], path, sizeof path - 1);
    close(pfd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    CHECK(k > 0);
    rec r[64];
    int n = read_records(path, r, 64);
    /* file_version, the scalars that fit, then the 3 written after. */
    CHECK_MSG(n >= 7 && n < 20, "%d whole records", n);
    if (n > 0) {
        size_t sl, vl, tl;
        const uint8_t *sum = pb_find(r[n - 1].data, r[n - 1].len, 5, &sl, NULL);
        const uint8_t *val = sum ? pb_find(sum, sl, 1, &vl, NULL) : NULL;
        const uint8_t *tag = val ? pb_find(val, vl, 1, &tl, NULL) : NULL;
        CHECK(tag && tl == 5 && !memcmp(tag, "after", 5));
    }
    free_records(r, n > 0 ? n : 0);
    remove_dir(tmpdir, path);
}

static void test_open_errors(void) {
    lt_err err;
    lt_err_clear(&err);
    CHECK(lt_tb_open("/nonexistent/dir/for/lathe", &err) == NULL);
    CHECK(err.code == LT_EIO);
    CHECK_STR_CONTAINS(err.msg, "/nonexistent/dir/for/lathe/events.out.tfevents.");
    CHECK_STR_CONTAINS(err.msg, "No such file");
    CHECK(lt_tb_close(NULL, &err) == LT_OK);
}

/* Writes the run that tests/e2e/check_tb_reader.py expects. */
static int write_known_run(const char *dir, lt_err *err) {
    lt_tb_writer *w = lt_tb_open(dir, err);
    if (!w) return err->code;
    int rc = 0;
    for (int s = 0; s < 10 && !rc; s++) rc = lt_tb_scalar(w, "loss", s, 1.0 / (s + 1), err);
    if (!rc) rc = lt_tb_scalar(w, "val/acc", 9, 0.875, err);
    if (!rc)
        rc = lt_tb_text(w, "notes", 0,
                        "# Run notes\n*lr* = 0.01, na\xc3\xafve \xc3\xbcn\xc3\xaf"
                        "code \xe2\x9c\x93 \"quoted\"",
                        err);
    float x[1002];
    for (int i = 0; i < 1000; i++) x[i] = (float)((i - 500) * 0.01);
    x[1000] = NAN;
    x[1001] = INFINITY;
    if (!rc) rc = lt_tb_histogram(w, "weights", 3, x, 1002, err);
    lt_tb_hp_info info[] = {{"lr", LT_TB_HP_FLOAT64}, {"optimizer", LT_TB_HP_STRING}, {"augment", LT_TB_HP_BOOL}};
    const char *metrics[] = {"loss", "val/acc"};
    if (!rc) rc = lt_tb_hparams_experiment(w, info, 3, metrics, 2, err);
    lt_tb_hp_value hv[] = {{.name = "lr", .type = LT_TB_HP_FLOAT64, .number = 0.01},
                           {.name = "optimizer", .type = LT_TB_HP_STRING, .string = "adam"},
                           {.name = "augment", .type = LT_TB_HP_BOOL, .boolean = 1}};
    if (!rc) rc = lt_tb_hparams_session_start(w, hv, 3, "grp", 1700000000.5, err);
    if (!rc) rc = lt_tb_hparams_session_end(w, LT_TB_STATUS_SUCCESS, 1700000100.25, err);
    int rc2 = lt_tb_close(w, err);
    return rc ? rc : rc2;
}

static const char *tb_python(void) { return check_python_with("tensorboard"); }

static void test_real_reader(void) {
    make_tmpdir();
    lt_err err;
    int rc = write_known_run(tmpdir, &err);
    CHECK_MSG(rc == LT_OK, "%s", err.msg);
    const char *py = tb_python();
    if (!py) {
        printf("skipped: no tensorboard python\n");
    } else {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "'%s' '%s/tests/e2e/check_tb_reader.py' '%s'", py, LATHE_SOURCE_DIR, tmpdir);
        int st = system(cmd);
        CHECK_MSG(st == 0, "%s exited with %d", cmd, st);
    }
    char rm[512];
    snprintf(rm, sizeof rm, "rm -rf '%s'", tmpdir);
    CHECK(system(rm) == 0);
}

int main(void) {
    RUN(test_crc32c);
    RUN(test_framing);
    RUN(test_disk_full);
    RUN(test_open_errors);
    RUN(test_real_reader);
    return check_done();
}
