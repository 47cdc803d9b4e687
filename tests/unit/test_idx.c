/* IDX reader and MNIST-folder loader: good files (raw and gzip, every type),
 * every rejected header and body, and the installed Fashion-MNIST when present. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "lathe/data.h"

static char tmpdir[64];

static const char *tpath(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* Writes bytes to tmpdir/name, gzip-compressed when the name ends in .gz. */
static void write_file(const char *name, const void *p, size_t n) {
    const char *path = tpath(name);
    size_t len = strlen(name);
    if (len > 3 && strcmp(name + len - 3, ".gz") == 0) {
        gzFile gz = gzopen(path, "wb");
        CHECK(gz != NULL);
        if (!gz) return;
        if (n) CHECK(gzwrite(gz, p, (unsigned)n) == (int)n);
        CHECK(gzclose(gz) == Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        CHECK(f != NULL);
        if (!f) return;
        if (n) CHECK(fwrite(p, 1, n, f) == n);
        fclose(f);
    }
}

/* Builds an IDX image: header with `type`, dims[0..ndim), then `data_bytes`
 * bytes (pattern i*7+3). Returns the total size; buf must be large enough. */
static size_t make_idx(uint8_t *buf, int type, int ndim, const uint32_t *dims, size_t data_bytes) {
    size_t k = 0;
    buf[k++] = 0;
    buf[k++] = 0;
    buf[k++] = (uint8_t)type;
    buf[k++] = (uint8_t)ndim;
    for (int d = 0; d < ndim; d++) {
        buf[k++] = (uint8_t)(dims[d] >> 24);
        buf[k++] = (uint8_t)(dims[d] >> 16);
        buf[k++] = (uint8_t)(dims[d] >> 8);
        buf[k++] = (uint8_t)dims[d];
    }
    for (size_t i = 0; i < data_bytes; i++) buf[k++] = (uint8_t)(i * 7 + 3);
    return k;
}

/* Loads name and expects failure whose message names the file and contains `what`. */
static void expect_error(const char *name, const char *what) {
    lt_idx idx;
    lt_err err;
    lt_err_clear(&err);
    int rc = lt_idx_load(tpath(name), &idx, &err);
    CHECK_MSG(rc < 0, "%s loaded but should fail with \"%s\"", name, what);
    CHECK(err.code == rc);
    CHECK(idx.data == NULL);
    CHECK_STR_CONTAINS(err.msg, name);
    CHECK_STR_CONTAINS(err.msg, what);
    CHECK(strchr(err.msg, '\n') == NULL);
}

static void test_good_u8_raw_and_gz(void) {
    uint8_t buf[256];
    uint32_t dims[3] = {2, 3, 4};
    size_t n = make_idx(buf, LT_IDX_U8, 3, dims, 24);
    write_file("u8.idx", buf, n);
    write_file("u8.idx.gz", buf, n);
    const char *names[2] = {"u8.idx", "u8.idx.gz"};
    for (int f = 0; f < 2; f++) {
        lt_idx idx;
        lt_err err;
        int rc = lt_idx_load(tpath(names[f]), &idx, &err);
        CHECK_MSG(rc == LT_OK, "%s: %s", names[f], err.msg);
        if (rc != LT_OK) continue;
        CHECK(idx.type == LT_IDX_U8 && idx.ndim == 3 && idx.count == 24);
        CHECK(idx.dims[0] == 2 && idx.dims[1] == 3 && idx.dims[2] == 4 && idx.dims[3] == 0);
        const uint8_t *p = idx.data;
        for (int i = 0; i < 24; i++) CHECK(p[i] == (uint8_t)(i * 7 + 3));
        lt_idx_free(&idx);
        CHECK(idx.data == NULL);
    }
}

/* Multi-byte types come back in host order. */
static void test_good_wide_types(void) {
    uint8_t buf[256];
    uint32_t dims[4] = {1, 2, 1, 2};
    size_t k = make_idx(buf, LT_IDX_I16, 4, dims, 0);
    int16_t i16[4] = {1, -2, 300, -32768};
    for (int i = 0; i < 4; i++) {
        buf[k++] = (uint8_t)((uint16_t)i16[i] >> 8);
        buf[k++] = (uint8_t)i16[i];
    }
    write_file("i16.idx.gz", buf, k);
    lt_idx idx;
    lt_err err;
    CHECK_MSG(lt_idx_load(tpath("i16.idx.gz"), &idx, &err) == LT_OK, "%s", err.msg);
    CHECK(idx.ndim == 4 && idx.count == 4);
    for (int i = 0; i < 4 && idx.data; i++) CHECK(((int16_t *)idx.data)[i] == i16[i]);
    lt_idx_free(&idx);

    uint32_t d1[1] = {3};
    k = make_idx(buf, LT_IDX_F32, 1, d1, 0);
    float f[3] = {1.5f, -0.25f, 3e20f};
    for (int i = 0; i < 3; i++) {
        uint32_t u;
        memcpy(&u, &f[i], 4);
        for (int b = 3; b >= 0; b--) buf[k++] = (uint8_t)(u >> (8 * b));
    }
    write_file("f32.idx", buf, k);
    CHECK_MSG(lt_idx_load(tpath("f32.idx"), &idx, &err) == LT_OK, "%s", err.msg);
    CHECK(idx.type == LT_IDX_F32 && idx.count == 3);
    for (int i = 0; i < 3 && idx.data; i++) CHECK(((float *)idx.data)[i] == f[i]);
    lt_idx_free(&idx);

    k = make_idx(buf, LT_IDX_F64, 1, d1, 0);
    double g[3] = {1.0 / 3.0, -1e300, 0.0};
    for (int i = 0; i < 3; i++) {
        uint64_t u;
        memcpy(&u, &g[i], 8);
        for (int b = 7; b >= 0; b--) buf[k++] = (uint8_t)(u >> (8 * b));
    }
    write_file("f64.idx", buf, k);
    CHECK_MSG(lt_idx_load(tpath("f64.idx"), &idx, &err) == LT_OK, "%s", err.msg);
    for (int i = 0; i < 3 && idx.data; i++) CHECK(((double *)idx.data)[i] == g[i]);
    lt_idx_free(&idx);

    k = make_idx(buf, LT_IDX_I32, 1, d1, 0);
    int32_t v[3] = {-1, 0x12345678, 7};
    for (int i = 0; i < 3; i++)
        for (int b = 3; b >= 0; b--) buf[k++] = (uint8_t)((uint32_t)v[i] >> (8 * b));
    write_file("i32.idx", buf, k);
    CHECK_MSG(lt_idx_load(tpath("i32.idx"), &idx, &err) == LT_OK, "%s", err.msg);
    for (int i = 0; i < 3 && idx.data; i++) CHECK(((int32_t *)idx.data)[i] == v[i]);
    lt_idx_free(&idx);
}

static void test_header_errors(void) {
    uint8_t buf[256];
    uint32_t dims[4] = {2, 2, 2, 2};
    lt_idx idx;
    lt_err err;
    CHECK(lt_idx_load(tpath("missing.idx"), &idx, &err) == LT_EIO);
    CHECK_STR_CONTAINS(err.msg, "missing.idx");
    CHECK_STR_CONTAINS(err.msg, "No such file");
    expect_error("missing.idx.gz", "cannot open");
    CHECK(lt_idx_load(tmpdir, &idx, &err) == LT_EIO); /* a folder */
    CHECK_STR_CONTAINS(err.msg, "directory");

    size_t n = make_idx(buf, LT_IDX_U8, 1, dims, 2);
    buf[1] = 0x03;
    write_file("magic.idx", buf, n);
    expect_error("magic.idx", "bad magic 0x0003");

    n = make_idx(buf, 0x0A, 1, dims, 2);
    write_file("type.idx.gz", buf, n);
    expect_error("type.idx.gz", "unsupported data type 0x0a");

    n = make_idx(buf, LT_IDX_U8, 0, dims, 0);
    write_file("ndim0.idx", buf, n);
    expect_error("ndim0.idx", "unsupported number of dimensions 0");
    n = make_idx(buf, LT_IDX_U8, 5, (uint32_t[5]){1, 1, 1, 1, 1}, 1);
    write_file("ndim5.idx", buf, n);
    expect_error("ndim5.idx", "unsupported number of dimensions 5");

    /* 2^32-1 cubed overflows 64 bits; and 70000 x 28 x 28 f64 is merely over the cap. */
    n = make_idx(buf, LT_IDX_U8, 3, (uint32_t[3]){0xffffffffu, 0xffffffffu, 0xffffffffu}, 4);
    write_file("overflow.idx", buf, n);
    expect_error("overflow.idx", "too large");
    n = make_idx(buf, LT_IDX_F64, 4, (uint32_t[4]){70000, 28, 28, 10}, 0);
    write_file("huge.idx.gz", buf, n);
    expect_error("huge.idx.gz", "exceed the 2147483648-byte limit");

    write_file("empty.idx", buf, 0);
    expect_error("empty.idx", "truncated header");
    n = make_idx(buf, LT_IDX_U8, 3, dims, 0);
    write_file("shorthdr.idx", buf, n - 5); /* 3 dims need 16 header bytes */
    expect_error("shorthdr.idx", "truncated header: 3 dimensions need 16 header bytes, file has 11");
    write_file("shorthdr.idx.gz", buf, 3);
    expect_error("shorthdr.idx.gz", "truncated header");
}

static void test_body_errors(void) {
    uint8_t buf[2048];
    uint32_t dims[3] = {10, 10, 10};
    size_t n = make_idx(buf, LT_IDX_U8, 3, dims, 1000);
    write_file("trunc.idx", buf, n - 1);
    expect_error("trunc.idx", "truncated: header says 1000 data bytes, file has 999");
    write_file("trunc.idx.gz", buf, 16 + 10);
    expect_error("trunc.idx.gz", "truncated: header says 1000 data bytes, file has 10");
    uint8_t gzb[4096];
    write_file("whole.idx.gz", buf, n);
    FILE *f = fopen(tpath("whole.idx.gz"), "rb");
    size_t gn = f ? fread(gzb, 1, sizeof gzb, f) : 0;
    if (f) fclose(f);
    write_file("cut.raw", gzb, gn - 4); /* drop the length field of the trailer */
    rename(tpath("cut.raw"), tpath("notrailer.idx.gz"));
    expect_error("notrailer.idx.gz", "truncated gzip stream: trailer missing (1000 bytes decompressed)");

    buf[n] = 0xAB;
    buf[n + 1] = 0xCD;
    write_file("trail.idx", buf, n + 2);
    expect_error("trail.idx", "trailing garbage: 2 bytes after the 1000 data bytes");
    write_file("trail.idx.gz", buf, n + 1);
    expect_error("trail.idx.gz", "trailing garbage: 1 bytes");

    /* Multi-byte elements: 3 i32 need 12 bytes. */
    n = make_idx(buf, LT_IDX_I32, 1, (uint32_t[1]){3}, 11);
    write_file("trunc32.idx", buf, n);
    expect_error("trunc32.idx", "header says 12 data bytes, file has 11");
}

/* Compresses buf to a .gz file, then damages it: flipped bytes mid-stream, and
 * a stream cut off before its end. */
static void test_corrupt_gzip(void) {
    static uint8_t buf[20000];
    uint32_t dims[2] = {100, 190};
    size_t n = make_idx(buf, LT_IDX_U8, 2, dims, 19000);
    for (size_t i = 12; i < n; i++) buf[i] = (uint8_t)(rand() & 0x3f); /* poorly compressible */
    write_file("good.idx.gz", buf, n);
    lt_idx idx;
    lt_err err;
    CHECK_MSG(lt_idx_load(tpath("good.idx.gz"), &idx, &err) == LT_OK, "%s", err.msg);
    CHECK(idx.data && memcmp(idx.data, buf + 12, 19000) == 0);
    lt_idx_free(&idx);

    FILE *f = fopen(tpath("good.idx.gz"), "rb");
    CHECK(f != NULL);
    if (!f) return;
    static uint8_t gz[40000];
    size_t gn = fread(gz, 1, sizeof gz, f);
    fclose(f);
    CHECK(gn > 1000);

    for (size_t k = 0; k < 16; k++) gz[gn / 2 + k] ^= 0x5a;
    write_file("flip.raw", gz, gn); /* raw write: keep the damaged gzip bytes */
    rename(tpath("flip.raw"), tpath("flip.idx.gz"));
    expect_error("flip.idx.gz", "corrupt gzip stream");
    for (size_t k = 0; k < 16; k++) gz[gn / 2 + k] ^= 0x5a;

    gz[gn - 6] ^= 0x01; /* CRC-32 in the trailer */
    write_file("crc.raw", gz, gn);
    rename(tpath("crc.raw"), tpath("crc.idx.gz"));
    expect_error("crc.idx.gz", "corrupt gzip stream: incorrect data check");
    gz[gn - 6] ^= 0x01;

    write_file("cut.raw", gz, gn / 2);
    rename(tpath("cut.raw"), tpath("cut.idx.gz"));
    expect_error("cut.idx.gz", "truncated gzip stream: header says 19000 data bytes (");
}

/* Writes an MNIST-style folder: n images of h x w and nl labels (values from lab). */
static void write_mnist(const char *sub, const char *prefix, int gz, uint32_t n, uint32_t h, uint32_t w, uint32_t nl,
                        const uint8_t *lab) {
    static uint8_t buf[65536];
    char name[256];
    snprintf(name, sizeof name, "%s", tpath(sub));
    mkdir(name, 0700);
    size_t k = make_idx(buf, LT_IDX_U8, 3, (uint32_t[3]){n, h, w}, (size_t)n * h * w);
    snprintf(name, sizeof name, "%s/%s-images-idx3-ubyte%s", sub, prefix, gz ? ".gz" : "");
    write_file(name, buf, k);
    k = make_idx(buf, LT_IDX_U8, 1, &nl, 0);
    memcpy(buf + k, lab, nl);
    snprintf(name, sizeof name, "%s/%s-labels-idx1-ubyte%s", sub, prefix, gz ? ".gz" : "");
    write_file(name, buf, k + nl);
}

static void test_mnist_folder(void) {
    uint8_t lab[8] = {0, 9, 3, 3, 5, 1, 2, 8};
    write_mnist("fashion-small", "t10k", 1, 8, 4, 5, 8, lab);
    write_mnist("fashion-small", "train", 0, 6, 4, 5, 6, lab);
    lt_dataset ds;
    lt_err err;
    int rc = lt_mnist_load(tpath("fashion-small"), 0, &ds, &err);
    CHECK_MSG(rc == LT_OK, "%s", err.msg);
    if (rc == LT_OK) {
        CHECK(ds.n == 8 && ds.ndim == 3 && ds.shape[0] == 1 && ds.shape[1] == 4 && ds.shape[2] == 5);
        CHECK(ds.sample_size == 20 && ds.num_classes == 10);
        CHECK(strcmp(ds.class_names[9], "Ankle boot") == 0);
        CHECK(strcmp(ds.name, "fashion-mnist/test") == 0);
        for (int i = 0; i < 8; i++) CHECK(ds.y[i] == lab[i]);
        for (int i = 0; i < 160; i++) CHECK(ds.x[i] == (float)(uint8_t)(i * 7 + 3) / 255.0f);
        lt_dataset_free(&ds);
    }
    rc = lt_mnist_load(tpath("fashion-small"), 1, &ds, &err);
    CHECK_MSG(rc == LT_OK && ds.n == 6, "%s", err.msg);
    lt_dataset_free(&ds);

    write_mnist("digits", "train", 0, 3, 2, 2, 3, lab);
    rc = lt_mnist_load(tpath("digits"), 1, &ds, &err);
    CHECK_MSG(rc == LT_OK, "%s", err.msg);
    if (rc == LT_OK) CHECK(strcmp(ds.class_names[3], "3") == 0 && strcmp(ds.name, "mnist/train") == 0);
    lt_dataset_free(&ds);

    CHECK(lt_mnist_load(tpath("digits"), 0, &ds, &err) == LT_ENOTFOUND);
    CHECK_STR_CONTAINS(err.msg, "t10k-images-idx3-ubyte.gz");

    write_mnist("count", "train", 1, 6, 2, 2, 5, lab);
    CHECK(lt_mnist_load(tpath("count"), 1, &ds, &err) == LT_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "train-labels-idx1-ubyte.gz: 5 labels but 6 images");
    CHECK(ds.x == NULL);

    uint8_t bad[4] = {1, 2, 10, 3};
    write_mnist("range", "train", 0, 4, 2, 2, 4, bad);
    CHECK(lt_mnist_load(tpath("range"), 1, &ds, &err) == LT_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "train-labels-idx1-ubyte: label 10 of sample 2 is out of range 0..9");

    /* Labels stored as images: wrong shape for their role. */
    write_mnist("shape", "train", 0, 4, 2, 2, 4, lab);
    static uint8_t buf[64];
    size_t k = make_idx(buf, LT_IDX_U8, 2, (uint32_t[2]){4, 1}, 4);
    char name[128];
    snprintf(name, sizeof name, "%s", "shape/train-labels-idx1-ubyte");
    write_file(name, buf, k);
    CHECK(lt_mnist_load(tpath("shape"), 1, &ds, &err) == LT_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "train-labels-idx1-ubyte: expected u8 labels with 1 dimension");
}

static void test_installed_fashion_mnist(void) {
    const char *dir = "/usr/share/datasets/fashion-mnist";
    if (access(dir, R_OK) != 0) {
        printf("note: %s not installed, skipping the full Fashion-MNIST load\n", dir);
        return;
    }
    const size_t want[2] = {10000, 60000};
    for (int train = 0; train < 2; train++) {
        lt_dataset ds;
        lt_err err;
        int rc = lt_mnist_load(dir, train, &ds, &err);
        CHECK_MSG(rc == LT_OK, "%s", err.msg);
        if (rc != LT_OK) continue;
        CHECK(ds.n == want[train] && ds.sample_size == 784 && ds.shape[1] == 28 && ds.shape[2] == 28);
        CHECK(strcmp(ds.class_names[0], "T-shirt/top") == 0);
        size_t per[10] = {0};
        int ok = 1;
        for (size_t i = 0; i < ds.n; i++) {
            if (ds.y[i] < 0 || ds.y[i] > 9)
                ok = 0;
            else
                per[ds.y[i]]++;
        }
        CHECK(ok);
        for (int c = 0; c < 10; c++) CHECK(per[c] == ds.n / 10); /* Fashion-MNIST is balanced */
        float lo = 1, hi = 0;
        for (size_t i = 0; i < ds.n * ds.sample_size; i++) {
            if (ds.x[i] < lo) lo = ds.x[i];
            if (ds.x[i] > hi) hi = ds.x[i];
        }
        CHECK(lo == 0.0f && hi == 1.0f);
        lt_dataset_free(&ds);
    }
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lathe-test-idx-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_good_u8_raw_and_gz);
    RUN(test_good_wide_types);
    RUN(test_header_errors);
    RUN(test_body_errors);
    RUN(test_corrupt_gzip);
    RUN(test_mnist_folder);
    RUN(test_installed_fashion_mnist);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_done();
}
