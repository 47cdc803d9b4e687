/* IDX reader. The file is opened through zlib, which reads gzip streams and
 * passes any other bytes through unchanged, so one code path serves both .gz
 * and raw files. Everything in the header is checked before it is believed;
 * the data buffer grows only as bytes actually arrive, so a header that lies
 * about a huge size cannot make us allocate more than the file really holds
 * (plus at most a doubling step). */
#include "lathe/data.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

size_t lt_idx_type_size(int type) {
    switch (type) {
    case LT_IDX_U8:
    case LT_IDX_I8: return 1;
    case LT_IDX_I16: return 2;
    case LT_IDX_I32:
    case LT_IDX_F32: return 4;
    case LT_IDX_F64: return 8;
    default: return 0;
    }
}

/* Reads up to n bytes; returns how many arrived (short only at end of input or
 * on a stream error, which the caller tells apart through gzerror). */
static size_t read_full(gzFile gz, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        size_t want = n - got;
        if (want > (1u << 30)) want = 1u << 30; /* gzread counts in unsigned/int */
        int r = gzread(gz, (char *)buf + got, (unsigned)want);
        if (r <= 0) break;
        got += (size_t)r;
    }
    return got;
}

/* After a short or failed read: fills err for a stream-level problem (corrupt
 * or cut-off gzip data) and returns its code, or returns LT_OK when the input
 * simply ended cleanly, leaving the message to the caller. `expected` says
 * what should have come ("header says 1000 data bytes"), got how many bytes of
 * decompressed output did. */
static int stream_error(gzFile gz, const char *path, const char *expected, size_t got, lt_err *err) {
    int errnum = Z_OK;
    const char *msg = gzerror(gz, &errnum);
    if (errnum == Z_OK || errnum == Z_STREAM_END) return LT_OK;
    if (errnum == Z_BUF_ERROR)
        return lt_seterr(err, LT_EFORMAT, "%s: truncated gzip stream: %s (%zu bytes decompressed)", path, expected,
                         got);
    if (errnum == Z_MEM_ERROR) return lt_seterr(err, LT_ENOMEM, "%s: out of memory decompressing", path);
    if (errnum == Z_ERRNO) return lt_seterr(err, LT_EIO, "%s: read failed: %s", path, strerror(errno));
    /* zlib prefixes the message with its name for the stream, "<fd:N>: ". */
    const char *tail = msg ? strstr(msg, ">: ") : NULL;
    if (tail) msg = tail + 3;
    return lt_seterr(err, LT_EFORMAT, "%s: corrupt gzip stream: %s", path, msg ? msg : "unknown error");
}

/* IDX stores big-endian; convert n elements of `size` bytes in place. */
static void to_host_order(uint8_t *p, size_t n, size_t size) {
    const uint16_t probe = 1;
    if (size == 1 || *(const uint8_t *)&probe == 0) return; /* big-endian host: nothing to do */
    for (size_t i = 0; i < n; i++, p += size)
        for (size_t a = 0, b = size - 1; a < b; a++, b--) {
            uint8_t t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

/* Reads exactly `total` data bytes into a fresh buffer that starts small and
 * doubles, so memory tracks the bytes really present. */
static int read_data(gzFile gz, const char *path, size_t total, void **out, lt_err *err) {
    size_t cap = total < ((size_t)1 << 20) ? total : ((size_t)1 << 20);
    size_t got = 0;
    uint8_t *buf = lt_malloc(cap, err);
    if (!buf) return LT_ENOMEM;
    for (;;) {
        size_t n = read_full(gz, buf + got, cap - got);
        got += n;
        if (got == total) break;
        if (got < cap) { /* input ended before the header's promise */
            free(buf);
            char what[64];
            snprintf(what, sizeof what, "header says %zu data bytes", total);
            int rc = stream_error(gz, path, what, got, err);
            if (rc != LT_OK) return rc;
            return lt_seterr(err, LT_EFORMAT, "%s: truncated: header says %zu data bytes, file has %zu", path, total,
                             got);
        }
        size_t ncap = cap * 2 < total ? cap * 2 : total;
        uint8_t *nb = realloc(buf, ncap);
        if (!nb) {
            free(buf);
            return lt_seterr(err, LT_ENOMEM, "%s: out of memory reading %zu data bytes", path, total);
        }
        buf = nb;
        cap = ncap;
    }
    *out = buf;
    return LT_OK;
}

/* The data must end the file. Reading past it also makes zlib check the gzip
 * trailer (CRC-32 and length), which is what catches most corruption. */
static int check_end(gzFile gz, const char *path, size_t total, lt_err *err) {
    char tmp[4096];
    size_t extra = 0;
    for (;;) {
        int r = gzread(gz, tmp, sizeof tmp);
        if (r <= 0) break;
        extra += (size_t)r;
        if (extra > LT_IDX_MAX_BYTES) break; /* enough to say it is garbage */
    }
    int rc = stream_error(gz, path, "trailer missing", total, err);
    if (rc != LT_OK) return rc;
    if (extra)
        return lt_seterr(err, LT_EFORMAT,
                         "%s: trailing garbage: %s%zu bytes after the %zu data bytes the header declares", path,
                         extra > LT_IDX_MAX_BYTES ? "over " : "", extra, total);
    return LT_OK;
}

static int load_gz(gzFile gz, const char *path, lt_idx *out, lt_err *err) {
    uint8_t h[4 + 4 * LT_IDX_MAX_DIMS];
    size_t got = read_full(gz, h, 4);
    if (got < 4) {
        int rc = stream_error(gz, path, "header needs at least 8 bytes", got, err);
        if (rc != LT_OK) return rc;
        return lt_seterr(err, LT_EFORMAT, "%s: truncated header: file has %zu bytes, an IDX header needs at least 8",
                         path, got);
    }
    if (h[0] != 0 || h[1] != 0)
        return lt_seterr(err, LT_EFORMAT, "%s: bad magic 0x%02x%02x (an IDX file starts with two zero bytes)", path,
                         h[0], h[1]);
    int type = h[2], ndim = h[3];
    size_t esize = lt_idx_type_size(type);
    if (!esize)
        return lt_seterr(err, LT_EFORMAT,
                         "%s: unsupported data type 0x%02x (expected 0x08, 0x09, 0x0b, 0x0c, 0x0d or 0x0e)", path,
                         type);
    if (ndim < 1 || ndim > LT_IDX_MAX_DIMS)
        return lt_seterr(err, LT_EFORMAT, "%s: unsupported number of dimensions %d (expected 1..%d)", path, ndim,
                         LT_IDX_MAX_DIMS);
    size_t hbytes = 4 * (size_t)ndim;
    got = read_full(gz, h + 4, hbytes);
    if (got < hbytes) {
        char what[64];
        snprintf(what, sizeof what, "header needs %zu bytes", 4 + hbytes);
        int rc = stream_error(gz, path, what, 4 + got, err);
        if (rc != LT_OK) return rc;
        return lt_seterr(err, LT_EFORMAT, "%s: truncated header: %d dimensions need %zu header bytes, file has %zu",
                         path, ndim, 4 + hbytes, 4 + got);
    }

    /* Element count with overflow checks: every partial product must keep the
     * byte size within the cap. A zero dimension makes an empty (valid) file. */
    uint32_t dims[LT_IDX_MAX_DIMS] = {0};
    size_t count = 1;
    int zero = 0, big = 0;
    for (int d = 0; d < ndim; d++) {
        const uint8_t *p = h + 4 + 4 * d;
        dims[d] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (dims[d] == 0)
            zero = 1;
        else if (!big && count > LT_IDX_MAX_BYTES / esize / dims[d])
            big = 1;
        else if (!big)
            count *= dims[d];
    }
    if (zero)
        count = 0;
    else if (big) {
        char shape[64] = "";
        size_t len = 0;
        for (int d = 0; d < ndim; d++)
            len += (size_t)snprintf(shape + len, sizeof shape - len, "%s%u", d ? "x" : "", dims[d]);
        return lt_seterr(err, LT_EFORMAT,
                         "%s: data too large: dimensions %s of %zu-byte elements exceed the %zu-byte limit", path,
                         shape, esize, LT_IDX_MAX_BYTES);
    }
    size_t total = count * esize;

    void *data = NULL;
    if (total) {
        int rc = read_data(gz, path, total, &data, err);
        if (rc != LT_OK) return rc;
    } else if (!(data = lt_malloc(1, err))) {
        return LT_ENOMEM;
    }
    int rc = check_end(gz, path, total, err);
    if (rc != LT_OK) {
        free(data);
        return rc;
    }
    to_host_order(data, count, esize);
    out->type = type;
    out->ndim = ndim;
    memcpy(out->dims, dims, sizeof dims);
    out->count = count;
    out->data = data;
    return LT_OK;
}

int lt_idx_load(const char *path, lt_idx *out, lt_err *err) {
    memset(out, 0, sizeof *out);
    if (!path) return lt_seterr(err, LT_EINVAL, "idx: no path given");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return lt_seterr(err, LT_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int e = fstat(fd, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
    if (e) {
        close(fd);
        return lt_seterr(err, LT_EIO, "%s: cannot read: %s", path, strerror(e));
    }
    gzFile gz = gzdopen(fd, "rb");
    if (!gz) {
        close(fd);
        return lt_seterr(err, LT_ENOMEM, "%s: cannot start decompression", path);
    }
    gzbuffer(gz, 1u << 17); /* fewer read() calls on the 26 MB training images */
    int rc = load_gz(gz, path, out, err);
    gzclose_r(gz); /* also closes fd */
    if (rc != LT_OK) memset(out, 0, sizeof *out);
    return rc;
}

void lt_idx_free(lt_idx *idx) {
    if (!idx) return;
    free(idx->data);
    memset(idx, 0, sizeof *idx);
}
