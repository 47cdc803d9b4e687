/* libFuzzer target for lt_idx_load. Built with -DLATHE_FUZZ=ON under clang
 * (see README: "Fuzzing"); .ci/run runs it for a minute from
 * tests/fuzz/corpus/idx.
 *
 * The first input byte picks how the rest reaches the reader: even, as the
 * file's raw bytes (which may themselves be a gzip stream); odd, gzip-compressed
 * by the harness first, so mutations of the IDX header and body also get
 * exercised behind a valid gzip layer. The reader takes a path, so the bytes go
 * to an in-memory file named /proc/self/fd/N. Any successful load must agree
 * with its own header. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "lathe/data.h"

static int fd = -1;
static char path[64];

/* Gzip-wraps in[0..n) into a fresh buffer (windowBits 31 = gzip framing). */
static uint8_t *gzip_bytes(const uint8_t *in, size_t n, size_t *out_n) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK) return NULL;
    size_t cap = deflateBound(&z, (uLong)n) + 32;
    uint8_t *out = malloc(cap);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = out ? deflate(&z, Z_FINISH) : Z_MEM_ERROR;
    *out_n = cap - z.avail_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (fd < 0) {
        fd = memfd_create("fuzz_idx", 0);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    uint8_t *owned = NULL;
    if (data[0] & 1) {
        owned = gzip_bytes(body, n, &n);
        if (!owned) return 0;
        body = owned;
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, body, n, 0) != (ssize_t)n) abort();
    free(owned);

    lt_idx idx;
    lt_err err;
    lt_err_clear(&err);
    int rc = lt_idx_load(path, &idx, &err);
    if (rc == LT_OK) {
        size_t count = 1;
        for (int d = 0; d < idx.ndim; d++) count *= idx.dims[d];
        if (idx.ndim < 1 || idx.ndim > 4 || count != idx.count || !idx.data || !lt_idx_type_size(idx.type)) abort();
        /* touch every byte so ASan sees an undersized buffer */
        volatile uint8_t sink = 0;
        const uint8_t *p = idx.data;
        for (size_t i = 0; i < count * lt_idx_type_size(idx.type); i++) sink ^= p[i];
        (void)sink;
    } else if (err.code != rc || !strstr(err.msg, path) || strchr(err.msg, '\n')) {
        abort(); /* every failure is one line naming the file */
    }
    lt_idx_free(&idx);
    return 0;
}
