/* The NCCL implementation's host-side bookkeeping, apart from NCCL and CUDA
 * so that every build compiles it and its tests run without a GPU: the
 * ledger of bucket all-reduces and their events, NCCL's results as lathe's
 * error codes and lines, and which device a local rank takes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist_impl.h"

int lt_dist_ledger_add(lt_dist_ledger *l, void *buf, size_t n, lt_err *err) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        lt_dist_bucket *b = realloc(l->b, (size_t)cap * sizeof *b);
        if (!b) return lt_seterr(err, LT_ENOMEM, "rank %d: out of memory for all-reduce buckets", lt_dist_rank());
        memset(b + l->cap, 0, (size_t)(cap - l->cap) * sizeof *b);
        l->b = b;
        l->cap = cap;
    }
    lt_dist_bucket *b = &l->b[l->n++];
    b->buf = buf;
    b->n = n;
    b->done = 0;
    return LT_OK;
}

int lt_dist_ledger_test(lt_dist_ledger *l, lt_dist_ledger_query q, void *ctx, int *done, lt_err *err) {
    int all = 1;
    for (int i = 0; i < l->n; i++) {
        lt_dist_bucket *b = &l->b[i];
        if (b->done) continue;
        if (i >= l->launched) {
            all = 0;
            continue;
        }
        int rc = q(ctx, b, err);
        if (rc < 0) return rc;
        if (rc > 0)
            b->done = 1;
        else
            all = 0;
    }
    *done = all;
    if (all) l->n = l->launched = 0;
    return LT_OK;
}

void lt_dist_ledger_free(lt_dist_ledger *l, void (*free_event)(void *event)) {
    for (int i = 0; i < l->cap; i++)
        if (l->b[i].event && free_event) free_event(l->b[i].event);
    free(l->b);
    memset(l, 0, sizeof *l);
}

/* ncclResult_t: 0 success, 1 unhandled CUDA error, 2 system error, 3
 * internal error, 4 invalid argument, 5 invalid usage, 6 remote error, 7 in
 * progress (nccl.h; the numbers are NCCL's ABI) */
int lt_dist_nccl_code(int result) {
    switch (result) {
    case 0: return LT_OK;
    case 4:
    case 5: return LT_EINVAL;
    default: return LT_EIO;
    }
}

int lt_dist_nccl_fail(int result, const char *call, const char *text, lt_err *err) {
    int code = lt_dist_nccl_code(result);
    if (code == LT_OK) code = LT_EIO; /* a failure all the same */
    char t[160];
    snprintf(t, sizeof t, "%s", text && *text ? text : "no text");
    for (char *p = t; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    size_t k = strlen(t);
    while (k && t[k - 1] == ' ') t[--k] = '\0';
    return lt_seterr(err, code, "rank %d: %s failed: %s (ncclResult_t %d)", lt_dist_rank(), call, t, result);
}

int lt_dist_check_devices(int devices, int gpus, lt_err *err) {
    if (devices <= gpus) return LT_OK;
    return lt_seterr(err, LT_EINVAL, "--devices %d but this node has %d GPU%s (cudaGetDeviceCount)", devices, gpus,
                     gpus == 1 ? "" : "s");
}

int lt_dist_pick_device(const char *visible, int local_rank, char *out, size_t cap, lt_err *err) {
    if (!visible || !*visible) {
        snprintf(out, cap, "%d", local_rank);
        return LT_OK;
    }
    int entries = 1;
    for (const char *p = visible; *p; p++) entries += *p == ',';
    if (entries == 1) {
        snprintf(out, cap, "%s", visible);
        return LT_OK;
    }
    if (local_rank >= entries)
        return lt_seterr(err, LT_EINVAL, "local rank %d has no GPU: CUDA_VISIBLE_DEVICES=%.64s names %d", local_rank,
                         visible, entries);
    const char *p = visible;
    for (int i = 0; i < local_rank; i++) p = strchr(p, ',') + 1;
    size_t len = strcspn(p, ",");
    if (!len) return lt_seterr(err, LT_EINVAL, "CUDA_VISIBLE_DEVICES=%.64s has an empty entry", visible);
    snprintf(out, cap, "%.*s", (int)len, p);
    return LT_OK;
}
