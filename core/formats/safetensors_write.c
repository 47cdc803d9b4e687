/* safetensors writer: header JSON padded to 8 bytes, tensors contiguous in the
 * given order, written atomically (lathe/atomic_file.h); see lathe/safetensors.h. */
#define _POSIX_C_SOURCE 200809L
#include "lathe/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lathe/atomic_file.h"
#include "lathe/strbuf.h"
#include "formats/st_internal.h"

/* ---- writer ---- */

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
    lt_sb h = {0};
    lt_sb_puts(&h, "{");
    if (nmeta) {
        lt_sb_puts(&h, "\"__metadata__\":{");
        for (int i = 0; i < nmeta; i++) {
            if (i) lt_sb_puts(&h, ",");
            lt_sb_json_str(&h, meta[i].key);
            lt_sb_puts(&h, ":");
            lt_sb_json_str(&h, meta[i].value);
        }
        lt_sb_puts(&h, "}");
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        uint64_t nb = lt_st_nbytes(&t[i]);
        if (i || nmeta) lt_sb_puts(&h, ",");
        lt_sb_json_str(&h, t[i].name);
        lt_sb_puts(&h, ":{\"dtype\":\"");
        lt_sb_puts(&h, lt_st_dtype_name(t[i].dtype));
        lt_sb_puts(&h, "\",\"shape\":[");
        for (int d = 0; d < t[i].ndim; d++) lt_sb_printf(&h, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        lt_sb_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + nb));
        off += nb;
    }
    lt_sb_puts(&h, "}");
    while (h.n % 8) lt_sb_puts(&h, " "); /* the buffer then starts 8-aligned */
    if (h.oom) {
        lt_sb_free(&h);
        return lt_seterr(err, LT_ENOMEM, "%s: out of memory building the header", path);
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
    lt_afile *f = lt_afile_open(path, err);
    if (!f) {
        lt_sb_free(&h);
        return err ? err->code : LT_EIO;
    }
    rc = lt_afile_write(f, len8, 8, err);
    if (!rc) rc = lt_afile_write(f, h.p, h.n, err);
    for (int i = 0; i < n && !rc; i++) rc = lt_afile_write(f, t[i].data, lt_st_nbytes(&t[i]), err);
    lt_sb_free(&h);
    if (rc) {
        lt_afile_abort(f);
        return rc;
    }
    return lt_afile_commit(f, err);
}
