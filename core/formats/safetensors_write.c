/* safetensors writer: header JSON padded to 8 bytes, tensors contiguous in the
 * given order, written atomically (lathe/atomic_file.h); see lathe/safetensors.h. */
#define _POSIX_C_SOURCE 200809L
#include "lathe/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lathe/atomic_file.h"
#include "formats/st_internal.h"

/* ---- writer ---- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int failed;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap - b->len < n) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_json_string(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': sb_put(b, "\\\"", 2); break;
        case '\\': sb_put(b, "\\\\", 2); break;
        case '\n': sb_put(b, "\\n", 2); break;
        case '\r': sb_put(b, "\\r", 2); break;
        case '\t': sb_put(b, "\\t", 2); break;
        case '\b': sb_put(b, "\\b", 2); break;
        case '\f': sb_put(b, "\\f", 2); break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *p);
                sb_put(b, esc, 6);
            } else {
                sb_put(b, (const char *)p, 1);
            }
        }
    }
    sb_put(b, "\"", 1);
}

static int check_save_args(const char *path, const lt_st_tensor *t, int n, const lt_st_meta *meta, int nmeta,
                           lt_err *err) {
    if (n < 0 || nmeta < 0 || (n && !t) || (nmeta && !meta))
        return lt_seterr(err, LT_EINVAL, "%s: bad tensor or metadata list", path);
    for (int i = 0; i < n; i++) {
        uint64_t nb;
        const char *nm = t[i].name;
        if (!nm || !nm[0] || !lt_st_utf8_valid(nm) || !strcmp(nm, "__metadata__"))
            return lt_seterr(err, LT_EINVAL, "%s: tensor %d has an empty, reserved or non-UTF-8 name", path, i);
        if (lt_st_bytes(t[i].dtype, t[i].ndim, t[i].shape, &nb) != 0)
            return lt_seterr(err, LT_EINVAL, "%s: tensor '%s' has a bad dtype, rank or shape", path, nm);
        if (nb && !t[i].data) return lt_seterr(err, LT_EINVAL, "%s: tensor '%s' has no data", path, nm);
        for (int j = 0; j < i; j++)
            if (!strcmp(t[j].name, nm))
                return lt_seterr(err, LT_EINVAL, "%s: tensor name '%s' is used twice", path, nm);
    }
    for (int i = 0; i < nmeta; i++) {
        if (!meta[i].key || !meta[i].value || !lt_st_utf8_valid(meta[i].key) || !lt_st_utf8_valid(meta[i].value))
            return lt_seterr(err, LT_EINVAL, "%s: metadata entry %d is NULL or not UTF-8", path, i);
        for (int j = 0; j < i; j++)
            if (!strcmp(meta[j].key, meta[i].key))
                return lt_seterr(err, LT_EINVAL, "%s: metadata key '%s' is used twice", path, meta[i].key);
    }
    return LT_OK;
}

int lt_st_save(const char *path, const lt_st_tensor *t, int n, const lt_st_meta *meta, int nmeta, lt_err *err) {
    if (!path) return lt_seterr(err, LT_EINVAL, "safetensors: NULL path");
    int rc = check_save_args(path, t, n, meta, nmeta, err);
    if (rc) return rc;
    sbuf h = {0};
    char num[64];
    sb_str(&h, "{");
    if (nmeta) {
        sb_str(&h, "\"__metadata__\":{");
        for (int i = 0; i < nmeta; i++) {
            if (i) sb_str(&h, ",");
            sb_json_string(&h, meta[i].key);
            sb_str(&h, ":");
            sb_json_string(&h, meta[i].value);
        }
        sb_str(&h, "}");
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        uint64_t nb = lt_st_nbytes(&t[i]);
        if (i || nmeta) sb_str(&h, ",");
        sb_json_string(&h, t[i].name);
        sb_str(&h, ":{\"dtype\":\"");
        sb_str(&h, lt_st_dtype_name(t[i].dtype));
        sb_str(&h, "\",\"shape\":[");
        for (int d = 0; d < t[i].ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
            sb_str(&h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)(off + nb));
        sb_str(&h, num);
        off += nb;
    }
    sb_str(&h, "}");
    while (h.len % 8) sb_str(&h, " "); /* the buffer then starts 8-aligned */
    if (h.failed) {
        free(h.p);
        return lt_seterr(err, LT_ENOMEM, "%s: out of memory building the header", path);
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    lt_afile *f = lt_afile_open(path, err);
    if (!f) {
        free(h.p);
        return err ? err->code : LT_EIO;
    }
    rc = lt_afile_write(f, len8, 8, err);
    if (!rc) rc = lt_afile_write(f, h.p, h.len, err);
    for (int i = 0; i < n && !rc; i++) rc = lt_afile_write(f, t[i].data, lt_st_nbytes(&t[i]), err);
    free(h.p);
    if (rc) {
        lt_afile_abort(f);
        return rc;
    }
    return lt_afile_commit(f, err);
}
