/* safetensors: C round trip with metadata, every malformed-header case
 * refused with its message, atomic replace under a simulated full disk, and
 * (when a Python with `safetensors` is present) the real reader on our file
 * and our reader on the real writer's file. */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "check_python.h"
#include "lathe/atomic_file.h"
#include "lathe/safetensors.h"

static char dir[256];

static void path_in_dir(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

/* The tensors tests/e2e/check_safetensors_reader.py expects. */
#define ODD_NAME "odd \"name\"\\\n\xc3\xa9"
#define NOTE "line1\nline2 \"q\" \\ tab\t \xc3\xa9 \xe2\x9c\x93"
static float w6[6] = {-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f}, b4[4] = {0.1f, 0.2f, 0.3f, 0.4f}, odd1[1] = {3.5f};
static int64_t step1 = 1234567890123LL;
static uint8_t mask5[5] = {0, 1, 255, 7, 128};

static int roundtrip_tensors(lt_st_tensor *t, lt_st_meta *m) {
    lt_st_tensor tt[6] = {
        {"conv1.weight", LT_ST_F32, 2, {2, 3}, w6}, {"conv1.bias", LT_ST_F32, 1, {4}, b4},
        {"step", LT_ST_I64, 0, {0}, &step1},        {"empty", LT_ST_F32, 2, {0, 5}, NULL},
        {"mask", LT_ST_U8, 1, {5}, mask5},          {ODD_NAME, LT_ST_F32, 1, {1}, odd1},
    };
    lt_st_meta mm[3] = {{"epoch", "3"}, {"note", NOTE}, {"ctrl", "\x01\x1f"}};
    memcpy(t, tt, sizeof tt);
    memcpy(m, mm, sizeof mm);
    return 6;
}

static void test_roundtrip(void) {
    lt_st_tensor t[6];
    lt_st_meta m[3];
    int n = roundtrip_tensors(t, m);
    char path[512];
    path_in_dir(path, sizeof path, "rt.safetensors");
    lt_err err;
    CHECK_MSG(lt_st_save(path, t, n, m, 3, &err) == LT_OK, "%s", err.msg);
    lt_st_file f;
    CHECK_MSG(lt_st_load(path, &f, &err) == LT_OK, "%s", err.msg);
    CHECK(f.ntensors == 6 && f.nmeta == 3);
    for (int i = 0; i < n && f.ntensors == 6; i++) {
        const lt_st_tensor *g = lt_st_find(&f, t[i].name);
        CHECK_MSG(g != NULL, "missing %s", t[i].name);
        if (!g) continue;
        CHECK(g == &f.tensors[i]); /* header order kept */
        CHECK(g->dtype == t[i].dtype && g->ndim == t[i].ndim);
        for (int d = 0; d < g->ndim; d++) CHECK(g->shape[d] == t[i].shape[d]);
        size_t nb = lt_st_nbytes(g);
        CHECK(nb == lt_st_nbytes(&t[i]));
        CHECK(nb == 0 || memcmp(g->data, t[i].data, nb) == 0);
    }
    const lt_st_tensor *w = lt_st_find(&f, "conv1.weight");
    CHECK(w && ((uintptr_t)w->data % 8) == 0); /* first tensor: buffer is 8-aligned */
    CHECK(lt_st_find(&f, "nope") == NULL);
    CHECK(lt_st_meta_get(&f, "note") && !strcmp(lt_st_meta_get(&f, "note"), NOTE));
    CHECK(lt_st_meta_get(&f, "ctrl") && !strcmp(lt_st_meta_get(&f, "ctrl"), "\x01\x1f"));
    CHECK(lt_st_meta_get(&f, "missing") == NULL);
    lt_st_free(&f);
    lt_st_free(&f); /* idempotent */

    /* Header layout: 8-byte length, '{', padded so the buffer is 8-aligned. */
    FILE *fp = fopen(path, "rb");
    unsigned char h[9] = {0};
    CHECK(fp && fread(h, 1, 9, fp) == 9);
    if (fp) fclose(fp);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | h[i];
    CHECK(hl % 8 == 0 && h[8] == '{');

    /* Writer refuses bad input. */
    lt_st_tensor dup[2] = {{"a", LT_ST_F32, 1, {1}, b4}, {"a", LT_ST_F32, 1, {1}, b4}};
    CHECK(lt_st_save(path, dup, 2, NULL, 0, &err) == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "used twice");
    lt_st_tensor neg = {"a", LT_ST_F32, 1, {-1}, b4};
    CHECK(lt_st_save(path, &neg, 1, NULL, 0, &err) == LT_EINVAL);
    lt_st_tensor bad_utf8 = {"\xff", LT_ST_F32, 1, {1}, b4};
    CHECK(lt_st_save(path, &bad_utf8, 1, NULL, 0, &err) == LT_EINVAL);
    /* ...and leaves the earlier file in place. */
    CHECK(lt_st_load(path, &f, &err) == LT_OK && f.ntensors == 6);
    lt_st_free(&f);
}

/* Builds a file from a header string and a buffer of nbuf bytes (value i). */
static int load_bytes(const char *header, size_t nbuf, lt_st_file *f, lt_err *err) {
    size_t hl = strlen(header);
    unsigned char *b = malloc(8 + hl + nbuf);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    for (size_t i = 0; i < nbuf; i++) b[8 + hl + i] = (unsigned char)i;
    int rc = lt_st_load_mem("x.safetensors", b, 8 + hl + nbuf, f, err);
    free(b);
    return rc;
}

static void expect_bad(const char *header, size_t nbuf, const char *msg) {
    lt_st_file f;
    lt_err err;
    lt_err_clear(&err);
    int rc = load_bytes(header, nbuf, &f, &err);
    CHECK_MSG(rc == LT_EFORMAT, "accepted %s (rc %d)", header, rc);
    CHECK_MSG(strncmp(err.msg, "x.safetensors: ", 15) == 0 && strstr(err.msg, msg) && !strchr(err.msg, '\n'),
              "header %s: message \"%s\" lacks \"%s\"", header, err.msg, msg);
    CHECK(f.ntensors == 0 && f.tensors == NULL);
}

#define T1(dt, shape, off) "\"t\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":" off "}"

static void test_malformed(void) {
    lt_st_file f;
    lt_err err;
    /* The baselines are accepted, so each case below fails for its own reason. */
    CHECK(load_bytes("{" T1("F32", "[2]", "[0,8]") "}", 8, &f, &err) == LT_OK);
    lt_st_free(&f);
    CHECK(load_bytes("{}", 0, &f, &err) == LT_OK && f.ntensors == 0);
    lt_st_free(&f);
    /* \u escapes (a surrogate pair too), whitespace, trailing padding. */
    CHECK_MSG(load_bytes("{ \"\\u00e9\\ud83d\\ude00\" : { \"shape\" : [ ] , \"dtype\":\"U8\",\r\n"
                         "\"data_offsets\":[0,1]}, \"__metadata__\":{}}   ",
                         1, &f, &err) == LT_OK,
              "%s", err.msg);
    CHECK(f.ntensors == 1 && lt_st_find(&f, "\xc3\xa9\xf0\x9f\x98\x80") != NULL);
    lt_st_free(&f);

    /* Length field and truncation. */
    unsigned char tiny[5] = {1, 0, 0, 0, 0};
    CHECK(lt_st_load_mem("x.safetensors", tiny, 5, &f, &err) == LT_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "x.safetensors: truncated (5 bytes");
    unsigned char huge[16] = {0, 0, 0, 0, 0, 0, 0, 0x61, '{', '}'};
    CHECK(lt_st_load_mem("x.safetensors", huge, 16, &f, &err) == LT_EFORMAT);
    CHECK_STR_CONTAINS(
        err.msg, "x.safetensors: not a safetensors file (header length 6989586621679009792 exceeds file size 16)");
    expect_bad("{" T1("F32", "[2]", "[0,8]") "}", 4, "data_offsets [0, 8] out of range (data buffer is 4 bytes)");
    expect_bad("{", 0, "header length 1 is too small");
    expect_bad("[]", 0, "header does not start with '{'");

    /* JSON syntax, with the byte offset in the file (8 + header offset). */
    expect_bad("{\"t\":{\"dtype\":\"F32\" \"shape\":[2],\"data_offsets\":[0,8]}}", 8,
               "bad header at byte 28: expected ',' or '}' in tensor 't'");
    expect_bad("{" T1("F32", "[2]", "[0,8]") "}x", 8, "unexpected bytes after the header object");
    expect_bad("{\"t", 0, "unterminated string");
    expect_bad("{\"t\\q\":{}}", 0, "bad escape '\\q'");
    expect_bad("{\"\\ud800\":{}}", 0, "unpaired surrogate");
    expect_bad("{\"\\u00zz\":{}}", 0, "bad \\u escape");
    expect_bad("{\"\\u0000\":{}}", 0, "NUL character");
    expect_bad("{\"a\tb\":{}}", 0, "control character in string");
    expect_bad("{\"\xc0\xaf\":{}}", 0, "invalid UTF-8");
    expect_bad("{" T1("F32", "[2]", "[0,8]") ",}", 8, "expected '\"'");
    expect_bad("{" T1("F32", "[2.0]", "[0,8]") "}", 8, "expected an integer, not a fraction");
    expect_bad("{" T1("F32", "[-2]", "[0,8]") "}", 8, "expected a non-negative integer");
    expect_bad("{" T1("F32", "[02]", "[0,8]") "}", 8, "leading zero");
    expect_bad("{" T1("F32", "[99999999999999999999]", "[0,8]") "}", 8, "integer too large");
    expect_bad("{" T1("F32", "[1,1,1,1,1,1,1,1,1]", "[0,4]") "}", 4, "shape has more than 8 entries");
    expect_bad("{" T1("F32", "[2]", "[0,8,9]") "}", 8, "data_offsets has more than 2 entries");
    expect_bad("{" T1("F32", "[2]", "[0]") "}", 8, "needs 2 entries");

    /* Tensor entries. */
    expect_bad("{" T1("F33", "[2]", "[0,8]") "}", 8, "unknown dtype 'F33' for tensor 't'");
    expect_bad("{\"t\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype of tensor 't' is not a string");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "tensor 't' lacks shape");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8,
               "unknown key 'x' in tensor 't'");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"dtype\":\"F32\"}}", 8, "repeated key 'dtype'");
    expect_bad("{" T1("F32", "[2]", "[0,8]") "," T1("F32", "[2]", "[8,16]") "}", 16, "tensor name 't' appears twice");
    expect_bad("{" T1("F32", "[4294967296,4294967296,4]", "[0,8]") "}", 8, "shape byte size overflows");

    /* Offsets against the buffer. */
    expect_bad("{" T1("F32", "[2]", "[0,12]") "}", 12, "data_offsets span 12 bytes but F32 shape needs 8");
    expect_bad("{" T1("F32", "[2]", "[8,0]") "}", 8, "data_offsets [8, 0] out of range");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
               12, "tensor 'b' overlaps tensor 'a'");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
               12, "hole of 4 unused bytes in the data buffer before tensor 'b'");
    expect_bad("{" T1("F32", "[2]", "[0,8]") "}", 12, "4 unused bytes at the end of the data buffer");

    /* Metadata. */
    expect_bad("{\"__metadata__\":{\"epoch\":3}}", 0, "metadata value for key 'epoch' is not a string");
    expect_bad("{\"__metadata__\":{\"a\":\"1\"},\"__metadata__\":{}}", 0, "repeated __metadata__");
    expect_bad("{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", 0, "metadata key 'a' appears twice");
    expect_bad("{\"__metadata__\":[]}", 0, "expected '{'");
    /* A name with a newline must not break the one-line message. */
    expect_bad("{\"a\\nb\":{\"dtype\":\"Q\"}}", 0, "unknown dtype 'Q' for tensor 'a?b'");
}

static void test_load_file_errors(void) {
    char path[512];
    lt_st_file f;
    lt_err err;
    path_in_dir(path, sizeof path, "missing.safetensors");
    CHECK(lt_st_load(path, &f, &err) == LT_EIO);
    CHECK_STR_CONTAINS(err.msg, "missing.safetensors: cannot open: No such file");
    /* A sparse file big enough to pass the size check but over the cap. */
    path_in_dir(path, sizeof path, "big.safetensors");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    unsigned char len8[8] = {0x01, 0xE1, 0xF5, 0x05, 0, 0, 0, 0}; /* 100000001 */
    CHECK(fd >= 0 && write(fd, len8, 8) == 8 && ftruncate(fd, 100000100) == 0);
    if (fd >= 0) close(fd);
    CHECK(lt_st_load(path, &f, &err) == LT_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "big.safetensors: header length 100000001 exceeds the 100000000-byte limit");
    unlink(path);
    /* A valid file cut short. */
    lt_st_tensor t = {"w", LT_ST_F32, 1, {4}, (float[4]){1, 2, 3, 4}};
    path_in_dir(path, sizeof path, "cut.safetensors");
    CHECK(lt_st_save(path, &t, 1, NULL, 0, &err) == LT_OK);
    struct stat st;
    CHECK(stat(path, &st) == 0 && truncate(path, st.st_size - 3) == 0);
    CHECK(lt_st_load(path, &f, &err) == LT_EFORMAT);
    CHECK_STR_CONTAINS(err.msg,
                       "cut.safetensors: tensor 'w': data_offsets [0, 16] out of range (data buffer is 13 bytes)");
    unlink(path);
    /* Folder as a file. */
    CHECK(lt_st_load(dir, &f, &err) == LT_EIO);
    CHECK_STR_CONTAINS(err.msg, "not a regular file");
}

/* The old checkpoint must survive a save that fails half way. */
static void test_atomic_failure(void) {
    char path[512], tmp[600];
    path_in_dir(path, sizeof path, "ckpt.safetensors");
    lt_err err;
    float old[4] = {1, 2, 3, 4};
    lt_st_tensor t = {"w", LT_ST_F32, 1, {4}, old};
    lt_st_meta m = {"epoch", "1"};
    CHECK(lt_st_save(path, &t, 1, &m, 1, &err) == LT_OK);

    int pfd[2];
    CHECK(pipe(pfd) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {4096, 4096};
        setrlimit(RLIMIT_FSIZE, &rl);
        static float big[65536];
        lt_st_tensor bt = {"w", LT_ST_F32, 1, {65536}, big};
        lt_st_meta bm = {"epoch", "2"};
        int rc = lt_st_save(path, &bt, 1, &bm, 1, &err);
        if (write(pfd[1], err.msg, strlen(err.msg) + 1) < 0) _exit(3);
        _exit(rc == LT_EIO ? 0 : 1);
    }
    close(pfd[1]);
    char msg[LT_ERR_MSG_MAX] = {0};
    CHECK(read(pfd[0], msg, sizeof msg - 1) > 0);
    close(pfd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d, message %s", status, msg);
    CHECK_STR_CONTAINS(msg, "ckpt.safetensors: write failed: File too large");
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)pid);
    CHECK_MSG(access(tmp, F_OK) != 0, "temp file %s left behind", tmp);
    lt_st_file f;
    CHECK(lt_st_load(path, &f, &err) == LT_OK);
    const lt_st_tensor *w = lt_st_find(&f, "w");
    CHECK(w && w->shape[0] == 4 && !memcmp(w->data, old, 16));
    CHECK(lt_st_meta_get(&f, "epoch") && !strcmp(lt_st_meta_get(&f, "epoch"), "1"));
    lt_st_free(&f);

    /* Rename onto a folder fails after the data is written: no temp left. */
    char sub[512];
    path_in_dir(sub, sizeof sub, "adir");
    CHECK(mkdir(sub, 0755) == 0);
    CHECK(lt_st_save(sub, &t, 1, NULL, 0, &err) == LT_EIO);
    CHECK_STR_CONTAINS(err.msg, "rename failed");
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", sub, (long)getpid());
    CHECK(access(tmp, F_OK) != 0);
    rmdir(sub);
    /* No folder at all. */
    CHECK(lt_st_save("/nonexistent/lathe/x.safetensors", &t, 1, NULL, 0, &err) == LT_EIO);
    CHECK_STR_CONTAINS(err.msg, "cannot create temp file");
    /* The plain helper. */
    path_in_dir(sub, sizeof sub, "plain.txt");
    CHECK(lt_atomic_write_file(sub, "hello", 5, &err) == LT_OK);
    struct stat st;
    CHECK(stat(sub, &st) == 0 && st.st_size == 5);
    unlink(sub);
    unlink(path);
}

static const char *st_python(void) { return check_python_with("safetensors.numpy"); }

static void test_real_reader(void) {
    const char *py = st_python();
    if (!py) {
        printf("skipped: no safetensors python\n");
        return;
    }
    lt_st_tensor t[6];
    lt_st_meta m[3];
    int n = roundtrip_tensors(t, m);
    char path[512], ref[512], cmd[2048];
    path_in_dir(path, sizeof path, "py.safetensors");
    path_in_dir(ref, sizeof ref, "ref.safetensors");
    lt_err err;
    CHECK_MSG(lt_st_save(path, t, n, m, 3, &err) == LT_OK, "%s", err.msg);
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/e2e/check_safetensors_reader.py' '%s' '%s'", py, LATHE_SOURCE_DIR, path,
             ref);
    int st = system(cmd);
    CHECK_MSG(st == 0, "%s exited with %d", cmd, st);
    /* Our reader on the reference writer's file. */
    lt_st_file f;
    CHECK_MSG(lt_st_load(ref, &f, &err) == LT_OK, "%s", err.msg);
    const lt_st_tensor *a = lt_st_find(&f, "a"), *b = lt_st_find(&f, "b"), *c = lt_st_find(&f, "c");
    CHECK(a && a->dtype == LT_ST_F32 && a->ndim == 2 && a->shape[0] == 3 && a->shape[1] == 4);
    if (a)
        for (int i = 0; i < 12; i++) {
            float v;
            memcpy(&v, (const char *)a->data + 4 * i, 4);
            CHECK(v == (float)i);
        }
    int64_t bv[2] = {0, 0};
    if (b) memcpy(bv, b->data, 16);
    CHECK(b && b->dtype == LT_ST_I64 && bv[0] == -1 && bv[1] == (1LL << 40));
    CHECK(c && c->dtype == LT_ST_U8 && c->ndim == 1 && c->shape[0] == 0);
    CHECK(lt_st_meta_get(&f, "k") && !strcmp(lt_st_meta_get(&f, "k"), "v\xc3\xa9"));
    lt_st_free(&f);
    unlink(path);
    unlink(ref);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s/lathe_st_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_roundtrip);
    RUN(test_malformed);
    RUN(test_load_file_errors);
    RUN(test_atomic_failure);
    RUN(test_real_reader);
    char rm[512];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    if (system(rm) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_done();
}
