/* Checkpoints: the trainer's whole state in one safetensors file.
 *
 * The tensors live in their backend's memory (the model's, the optimizer's).
 * A save reads them through lt_dev_map_read: zero-copy where the host can
 * address the memory (the CPU), else into host copies (lt_dev_get); a load
 * writes them with lt_dev_set. */
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <zlib.h>

#include "lathe/checkpoint.h"
#include "lathe/runfolder.h"
#include "lathe/safetensors.h"
#include "lathe/sched.h"
#include "lathe/strbuf.h"
#include "train/trainer_callbacks.h"

#define MAX_META 128
#define MAX_TENSORS 512

typedef struct ckpt_list {
    lt_st_tensor t[MAX_TENSORS];
    char names[MAX_TENSORS][160];
    float *dst[MAX_TENSORS];           /* where each tensor lives in the trainer */
    const lt_backend *be[MAX_TENSORS]; /* whose memory dst is */
    const void *mapped[MAX_TENSORS];   /* a save: dst as the host reads it */
    int n;
} ckpt_list;

static int add(ckpt_list *l, const char *name, float *data, const lt_backend *be, const int *shape, int ndim,
               lt_err *err) {
    if (l->n == MAX_TENSORS) return lt_seterr(err, LT_EINVAL, "checkpoint: more than %d tensors", MAX_TENSORS);
    lt_st_tensor *t = &l->t[l->n];
    snprintf(l->names[l->n], sizeof l->names[0], "%s", name);
    t->name = l->names[l->n];
    t->dtype = LT_ST_F32;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->data = data;
    l->dst[l->n] = data;
    l->be[l->n] = be;
    l->mapped[l->n] = NULL;
    l->n++;
    return LT_OK;
}

/* The tensors of a trainer, in a fixed order: model params, buffers, optimizer state. */
static int collect(lt_trainer *t, ckpt_list *l, int with_optimizer, lt_err *err) {
    lt_model *m = &t->mod.model;
    l->n = 0;
    int rc;
    for (int i = 0; i < m->nlayers; i++) {
        lt_layer *ly = &m->layers[i];
        char name[160];
        lt_tensor *ts[6] = {&ly->weight, &ly->bias, &ly->weight_hh, &ly->bias_hh, &ly->running_mean, &ly->running_var};
        const char *suffix[6] = {lt_layer_param_suffix(ly, 0),
                                 lt_layer_param_suffix(ly, 1),
                                 lt_layer_param_suffix(ly, 2),
                                 lt_layer_param_suffix(ly, 3),
                                 "running_mean",
                                 "running_var"};
        for (int k = 0; k < 6; k++) {
            if (!ts[k]->numel) continue;
            snprintf(name, sizeof name, "%s.%s", ly->name, suffix[k]);
            if ((rc = add(l, name, ts[k]->data, m->be, ts[k]->shape, ts[k]->ndim, err))) return rc;
        }
    }
    if (!with_optimizer) return LT_OK;
    for (int i = 0; i < lt_optim_state_count(t->opt); i++) {
        const char *sname;
        float *data;
        size_t n;
        lt_optim_state_get(t->opt, i, &sname, &data, &n);
        char name[160];
        snprintf(name, sizeof name, "optimizer.%s", sname);
        int shape[1] = {(int)n};
        if ((rc = add(l, name, data, lt_optim_backend(t->opt), shape, 1, err))) return rc;
    }
    return LT_OK;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const lt_st_tensor *)a)->name, ((const lt_st_tensor *)b)->name);
}

static int by_key(const void *a, const void *b) {
    return strcmp((*(const lt_st_meta *const *)a)->key, (*(const lt_st_meta *const *)b)->key);
}

/* zlib CRC-32 of every tensor's bytes in name order, then (with_meta) of every
 * metadata entry but crc32 itself as key NUL value NUL, in key order. */
static uint32_t checkpoint_crc(const lt_st_tensor *ts, int n, const lt_st_meta *meta, int nmeta, int with_meta) {
    const lt_st_tensor **order = malloc((size_t)(n ? n : 1) * sizeof *order);
    if (!order) return 0;
    for (int i = 0; i < n; i++) order[i] = &ts[i];
    for (int i = 1; i < n; i++) /* insertion sort: n is small */
        for (int j = i; j > 0 && strcmp(order[j - 1]->name, order[j]->name) > 0; j--) {
            const lt_st_tensor *tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < n; i++) {
        size_t left = lt_st_nbytes(order[i]);
        const Bytef *p = order[i]->data;
        while (left) { /* crc32 takes a uInt length */
            uInt chunk = left > (1u << 30) ? (1u << 30) : (uInt)left;
            crc = crc32(crc, p, chunk);
            p += chunk;
            left -= chunk;
        }
    }
    free(order);
    if (!with_meta) return (uint32_t)crc;
    const lt_st_meta **keys = malloc((size_t)(nmeta ? nmeta : 1) * sizeof *keys);
    if (!keys) return 0;
    int nk = 0;
    for (int i = 0; i < nmeta; i++)
        if (strcmp(meta[i].key, "crc32") != 0) keys[nk++] = &meta[i];
    qsort(keys, (size_t)nk, sizeof *keys, by_key);
    for (int i = 0; i < nk; i++) {
        crc = crc32(crc, (const Bytef *)keys[i]->key, (uInt)strlen(keys[i]->key) + 1);
        crc = crc32(crc, (const Bytef *)keys[i]->value, (uInt)strlen(keys[i]->value) + 1);
    }
    free(keys);
    return (uint32_t)crc;
}

/* The first tensor of ts holding a NaN or an infinity, or NULL. */
static const char *first_nonfinite(const lt_st_tensor *ts, int n) {
    for (int i = 0; i < n; i++) {
        if (ts[i].dtype != LT_ST_F32) continue;
        const float *x = ts[i].data;
        size_t m = lt_st_nbytes(&ts[i]) / sizeof(float);
        for (size_t k = 0; k < m; k++)
            if (!isfinite(x[k])) return ts[i].name;
    }
    return NULL;
}

/* The metadata: keys and values one after the other in one buffer, each with
 * its NUL; the lt_st_meta pointers are set once the buffer stops growing. */
typedef struct meta_list {
    lt_sb text;
    size_t at[MAX_META][2];
    lt_st_meta m[MAX_META];
    int n, full;
} meta_list;

static void meta_add(meta_list *b, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void meta_add(meta_list *b, const char *key, const char *fmt, ...) {
    if (b->n == MAX_META) {
        b->full = 1;
        return;
    }
    b->at[b->n][0] = b->text.n;
    lt_sb_append(&b->text, key, strlen(key) + 1);
    b->at[b->n][1] = b->text.n;
    va_list ap;
    va_start(ap, fmt);
    lt_sb_vprintf(&b->text, fmt, ap);
    va_end(ap);
    lt_sb_append(&b->text, "", 1);
    b->n++;
}

/* meta_add for the callbacks' keys (lt_tcb_put). */
static void meta_put(void *ctx, const char *key, const char *value) { meta_add(ctx, key, "%s", value); }

/* Points the lt_st_meta entries into the buffer (valid until it grows). */
static void meta_point(meta_list *b) {
    for (int i = 0; i < b->n; i++) {
        b->m[i].key = b->text.p + b->at[i][0];
        b->m[i].value = b->text.p + b->at[i][1];
    }
}

static int meta_save(const char *path, ckpt_list *l, meta_list *b, lt_err *err) {
    int rc;
    if (b->full)
        rc = lt_seterr(err, LT_EINVAL, "checkpoint: more than %d metadata entries", MAX_META);
    else if (b->text.oom)
        rc = lt_seterr(err, LT_ENOMEM, "checkpoint: out of memory for the metadata");
    else {
        meta_point(b);
        rc = lt_st_save(path, l->t, l->n, b->m, b->n, err);
    }
    lt_sb_free(&b->text);
    return rc;
}

/* Points every tensor of l at a host-readable view of its memory (in l's
 * original order, before any sort), or gives back what it took and fails. */
static int map_all(ckpt_list *l, lt_err *err) {
    for (int i = 0; i < l->n; i++) {
        l->mapped[i] = lt_dev_map_read(l->be[i], l->dst[i], lt_st_nbytes(&l->t[i]), err);
        if (!l->mapped[i]) {
            while (i--) lt_dev_unmap(l->be[i], l->dst[i], l->mapped[i]);
            return err && err->code ? err->code : LT_ENOMEM;
        }
        l->t[i].data = l->mapped[i];
    }
    return LT_OK;
}

static void unmap_all(ckpt_list *l) {
    for (int i = 0; i < l->n; i++) lt_dev_unmap(l->be[i], l->dst[i], l->mapped[i]);
}

static int save_mapped(lt_trainer *t, ckpt_list *l, const char *path, lt_err *err);

int lt_checkpoint_save(lt_trainer *t, const char *path, lt_err *err) {
    static ckpt_list l; /* large; saves run on the trainer thread only */
    int rc = collect(t, &l, 1, err);
    if (rc || (rc = map_all(&l, err))) return rc;
    rc = save_mapped(t, &l, path, err);
    unmap_all(&l);
    return rc;
}

/* The save proper, over host-readable tensors (l->t[i].data). */
static int save_mapped(lt_trainer *t, ckpt_list *l, const char *path, lt_err *err) {
    meta_list mb = {0};
    const char *bad = first_nonfinite(l->t, l->n);
    if (bad)
        return lt_seterr(err, LT_ESTATE,
                         "checkpoint %s not written: %s holds NaN or inf at step %ld (an earlier checkpoint is kept)",
                         path, bad, t->step);
    qsort(l->t, (size_t)l->n, sizeof l->t[0], by_name);
    size_t le, lb;
    lt_loader_position(t->train_loader, &le, &lb);
    size_t epoch = t->epoch;
    int epoch_end_pending = 0;
    if (le == t->epoch && lb >= t->batches_per_epoch) {
        /* saved at the end of an epoch: the loader resumes at the start of the
           next one; the epoch too, unless the epoch's end (its scheduler tick,
           hooks and callbacks) is still to run, as after its last step */
        le = t->epoch + 1;
        lb = 0;
        epoch_end_pending = t->epoch_end_pending;
        if (!epoch_end_pending) epoch = le;
    }
    meta_add(&mb, "format", "%s", LT_CKPT_FORMAT);
    meta_add(&mb, "format_version", "%d", LT_CKPT_VERSION);
    meta_add(&mb, "experiment", "%s", t->exp->name);
    char shp[64];
    meta_add(&mb, "input_shape", "%s", lt_shape_str(t->mod.in_shape, t->mod.in_ndim, shp, sizeof shp));
    meta_add(&mb, "epoch", "%zu", epoch);
    meta_add(&mb, "step", "%ld", t->step);
    meta_add(&mb, "samples", "%ld", t->samples);
    meta_add(&mb, "loader_epoch", "%zu", le);
    meta_add(&mb, "loader_batch", "%zu", lb);
    /* data parallel: the world the loader position belongs to (every rank is
       at that batch of its own share); a world of 1 writes none */
    if (t->world > 1) meta_add(&mb, "world", "%d", t->world);
    meta_add(&mb, "seed", "%" PRIu64, t->cfg.seed);
    meta_add(&mb, "rng", "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, t->rng.s[0], t->rng.s[1], t->rng.s[2],
             t->rng.s[3]);
    meta_add(&mb, "optimizer", "%s", lt_optim_kind(t->opt));
    meta_add(&mb, "optimizer_steps", "%ld", lt_optim_steps(t->opt));
    meta_add(&mb, "val_loss", "%.17g", t->val_loss); /* exact: callbacks compare with it */
    meta_add(&mb, "val_acc", "%.17g", t->val_acc);
    meta_add(&mb, "train_loss", "%.17g", t->train_loss);
    /* what the fit loop still owes this step: a due validation, the epoch's end */
    meta_add(&mb, "val_pending", "%d", t->val_pending ? 1 : 0);
    meta_add(&mb, "epoch_end_pending", "%d", epoch_end_pending);
    lt_tcb_state_save(t, meta_put, &mb);
    for (int i = 0; i < lt_trainer_hparam_count(t); i++) {
        char buf[96], key[128];
        double v;
        const char *name = lt_trainer_hparam_name(t, i, buf, sizeof buf);
        if (lt_trainer_hparam_get(t, name, &v, NULL)) continue;
        snprintf(key, sizeof key, "hparam.%s", name);
        meta_add(&mb, key, "%.17g", v);
    }
    if (t->sched) {
        char st[LT_SCHED_STATE_MAX];
        if (lt_sched_state_str(t->sched, st, sizeof st, err)) {
            lt_sb_free(&mb.text);
            return err ? err->code : LT_EINVAL;
        }
        meta_add(&mb, "lr_scheduler", "%s", lt_sched_spec(t->sched));
        meta_add(&mb, "lr_scheduler_state", "%s", st);
    }
    /* the CRC covers the metadata written so far: point at it first */
    uint32_t crc = 0;
    if (!mb.full && !mb.text.oom) {
        meta_point(&mb);
        crc = checkpoint_crc(l->t, l->n, mb.m, mb.n, 1);
    }
    meta_add(&mb, "crc32", "%08" PRIx32, crc);
    return meta_save(path, l, &mb, err);
}

/* ---- loading ---- */
/* A count in the metadata: decimal digits only (no sign, no blanks), at most
 * LONG_MAX, so that it fits the trainer's counters. */
static int meta_u64(const lt_st_file *f, const char *path, const char *key, uint64_t *out, lt_err *err) {
    const char *v = lt_st_meta_get(f, key);
    if (!v || !*v) return lt_seterr(err, LT_EFORMAT, "%s: checkpoint metadata lacks %s", path, key);
    if (strspn(v, "0123456789") != strlen(v) || strlen(v) > 19)
        return lt_seterr(err, LT_EFORMAT, "%s: checkpoint metadata %s='%.32s' is not a count", path, key, v);
    *out = strtoull(v, NULL, 10);
    if (*out > (uint64_t)LONG_MAX)
        return lt_seterr(err, LT_EFORMAT, "%s: checkpoint metadata %s='%s' is out of range", path, key, v);
    return LT_OK;
}

/* The world a checkpoint was written in (its "world", 1 when absent) against
 * this run's: another world resumes only at an epoch boundary (the loader's
 * next batch the first of an epoch), where every rank's share of the order
 * starts afresh; in the middle of an epoch the position is one within the
 * shares of the world that wrote it. */
static int check_world(const lt_st_file *f, const char *path, int world, lt_err *err) {
    uint64_t w = 1, le = 0, lb = 0;
    int rc;
    if (lt_st_meta_get(f, "world") && (rc = meta_u64(f, path, "world", &w, err))) return rc;
    if (w == 0) return lt_seterr(err, LT_EFORMAT, "%s: checkpoint metadata world='0' is not a world size", path);
    if (w == (uint64_t)world) return LT_OK;
    if ((rc = meta_u64(f, path, "loader_epoch", &le, err)) || (rc = meta_u64(f, path, "loader_batch", &lb, err)))
        return rc;
    if (lb == 0) return LT_OK;
    return lt_seterr(err, LT_EINVAL,
                     "%s: written by a run of %" PRIu64 " rank%s in the middle of epoch %" PRIu64
                     " (after batch %" PRIu64 "); this run has %d: resume it on %" PRIu64
                     ", or from a checkpoint at an epoch's end",
                     path, w, w == 1 ? "" : "s", le + 1, lb, world, w);
}

int lt_checkpoint_check_world(const char *path, int world, lt_err *err) {
    lt_st_file f = {0};
    int rc = lt_st_load(path, &f, err);
    if (!rc) rc = check_world(&f, path, world, err);
    lt_st_free(&f);
    return rc;
}

/* What the fit loop still owed at the checkpoint's step (absent in older
 * files: nothing): pending[0] a due validation, pending[1] the end of the
 * epoch before `epoch`, whose next batch (the loader's) is then the next
 * epoch's first. */
static int read_pending(const lt_st_file *f, const char *path, uint64_t epoch, uint64_t le, uint64_t lb, int pending[2],
                        lt_err *err) {
    static const char *const keys[2] = {"val_pending", "epoch_end_pending"};
    for (int i = 0; i < 2; i++) {
        const char *v = lt_st_meta_get(f, keys[i]);
        if (!v) continue;
        if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
            return lt_seterr(err, LT_EFORMAT, "%s: checkpoint metadata %s='%.32s' is not 0 or 1", path, keys[i], v);
        pending[i] = v[0] == '1';
    }
    if (pending[1] && (le != epoch + 1 || lb != 0))
        return lt_seterr(err, LT_EFORMAT,
                         "%s: checkpoint metadata: an epoch end pending at loader position %" PRIu64 ":%" PRIu64
                         " in epoch %" PRIu64,
                         path, le, lb, epoch);
    return LT_OK;
}

/* Opens and validates a checkpoint against the trainer's model; fills the list
 * of (file tensor -> trainer memory) pairs. Changes nothing. */
static int open_checked(lt_trainer *t, const char *path, int with_optimizer, lt_st_file *f, ckpt_list *l,
                        const lt_st_tensor **src, lt_err *err) {
    int rc = lt_st_load(path, f, err);
    if (rc) return rc;
    const char *fmt = lt_st_meta_get(f, "format");
    if (!fmt || strcmp(fmt, LT_CKPT_FORMAT) != 0)
        return lt_seterr(err, LT_EFORMAT, "%s: a safetensors file but not a lathe checkpoint (no format=%s)", path,
                         LT_CKPT_FORMAT);
    const char *ver = lt_st_meta_get(f, "format_version");
    int version = ver && (!strcmp(ver, "1") || !strcmp(ver, "2")) ? ver[0] - '0' : 0;
    if (!version)
        return lt_seterr(err, LT_EFORMAT, "%s: checkpoint format version %s, this lathe reads %d", path,
                         ver ? ver : "(none)", LT_CKPT_VERSION);
    const char *exp = lt_st_meta_get(f, "experiment");
    if (!exp || strcmp(exp, t->exp->name) != 0)
        return lt_seterr(err, LT_EINVAL, "%s: a checkpoint of experiment '%s', not '%s'", path, exp ? exp : "?",
                         t->exp->name);
    const char *crc = lt_st_meta_get(f, "crc32");
    char have[16];
    snprintf(have, sizeof have, "%08" PRIx32, checkpoint_crc(f->tensors, f->ntensors, f->meta, f->nmeta, version >= 2));
    if (!crc || strcmp(crc, have) != 0)
        return lt_seterr(err, LT_EFORMAT, "%s: corrupted: CRC-32 of the tensors is %s, the checkpoint says %s", path,
                         have, crc ? crc : "(none)");
    const char *bad = first_nonfinite(f->tensors, f->ntensors);
    if (bad) return lt_seterr(err, LT_EFORMAT, "%s: tensor %s holds NaN or inf: refusing to load it", path, bad);
    /* a checkpoint says the input shape it was trained on (older ones do not) */
    const char *ishape = lt_st_meta_get(f, "input_shape");
    char here[64];
    lt_shape_str(t->mod.in_shape, t->mod.in_ndim, here, sizeof here);
    if (ishape && strcmp(ishape, here) != 0)
        return lt_seterr(err, LT_ESHAPE, "%s: a checkpoint of a model for %.40s inputs; the data here is %s", path,
                         ishape, here);
    if ((rc = collect(t, l, with_optimizer, err))) return rc;
    if (with_optimizer) {
        const char *kind = lt_st_meta_get(f, "optimizer");
        if (!kind || strcmp(kind, lt_optim_kind(t->opt)) != 0)
            return lt_seterr(err, LT_EINVAL, "%s: optimizer state is for %s, this run uses %s", path, kind ? kind : "?",
                             lt_optim_kind(t->opt));
    }
    for (int i = 0; i < l->n; i++) {
        const lt_st_tensor *s = lt_st_find(f, l->t[i].name);
        if (!s)
            return lt_seterr(err, LT_EINVAL, "%s: no tensor %s: not a checkpoint of this model", path, l->t[i].name);
        int same = s->dtype == LT_ST_F32 && s->ndim == l->t[i].ndim;
        for (int d = 0; same && d < s->ndim; d++) same = s->shape[d] == l->t[i].shape[d];
        if (!same) {
            char want[64] = "", got[64] = "";
            size_t o = 0;
            for (int d = 0; d < l->t[i].ndim; d++)
                o += (size_t)snprintf(want + o, sizeof want - o, d ? "x%" PRId64 : "%" PRId64, l->t[i].shape[d]);
            o = 0;
            for (int d = 0; d < s->ndim; d++)
                o += (size_t)snprintf(got + o, sizeof got - o, d ? "x%" PRId64 : "%" PRId64, s->shape[d]);
            return lt_seterr(err, LT_EINVAL, "%s: tensor %s is %s %s, the model needs F32 %s", path, s->name,
                             lt_st_dtype_name(s->dtype), got, want);
        }
        src[i] = s;
    }
    return LT_OK;
}

static int copy_in(const ckpt_list *l, const lt_st_tensor **src, lt_err *err) {
    int rc = LT_OK;
    for (int i = 0; !rc && i < l->n; i++) rc = lt_dev_set(l->be[i], l->dst[i], src[i]->data, lt_st_nbytes(src[i]), err);
    return rc;
}

int lt_checkpoint_load_weights(lt_trainer *t, const char *path, lt_err *err) {
    static ckpt_list l;
    static const lt_st_tensor *src[MAX_TENSORS];
    lt_st_file f = {0};
    int rc = open_checked(t, path, 0, &f, &l, src, err);
    if (!rc) rc = copy_in(&l, src, err);
    lt_st_free(&f);
    return rc;
}

/* The hparams of a checkpoint, each through the trainer's setter, whose answer
 * counts: a value it refuses (batch_size 0, a dropout rate of 1.5) fails the
 * load and the ones set before it are put back (their values before are kept
 * in saved_hp; loads run on one thread). */
#define MAX_HP MAX_META
static double saved_hp[MAX_HP];

static void restore_upto(lt_trainer *t, const lt_st_file *f, int upto) {
    for (int i = 0, k = 0; i < upto && k < MAX_HP; i++)
        if (!strncmp(f->meta[i].key, "hparam.", 7)) lt_trainer_hparam_set(t, f->meta[i].key + 7, saved_hp[k++], NULL);
}

static void restore_hparams(lt_trainer *t, const lt_st_file *f) { restore_upto(t, f, f->nmeta); }

static int apply_hparams(lt_trainer *t, const lt_st_file *f, const char *path, lt_err *err) {
    for (int i = 0, k = 0; i < f->nmeta; i++) {
        if (strncmp(f->meta[i].key, "hparam.", 7) != 0) continue;
        const char *name = f->meta[i].key + 7;
        if (k == MAX_HP) {
            restore_upto(t, f, i);
            return lt_seterr(err, LT_EFORMAT, "%s: more than %d hparams", path, MAX_HP);
        }
        lt_trainer_hparam_get(t, name, &saved_hp[k], NULL);
        lt_err e = {0};
        if (lt_trainer_hparam_set(t, name, strtod(f->meta[i].value, NULL), &e)) {
            restore_upto(t, f, i);
            return lt_seterr(err, LT_EINVAL, "%s: hparam %s=%s refused: %s", path, name, f->meta[i].value, e.msg);
        }
        k++;
    }
    return LT_OK;
}

int lt_checkpoint_load(lt_trainer *t, const char *path, lt_err *err) {
    static ckpt_list l;
    static const lt_st_tensor *src[MAX_TENSORS];
    lt_st_file f = {0};
    int rc = open_checked(t, path, 1, &f, &l, src, err);
    uint64_t epoch = 0, step = 0, samples = 0, le = 0, lb = 0, osteps = 0;
    if (!rc && !(rc = meta_u64(&f, path, "epoch", &epoch, err)) && !(rc = meta_u64(&f, path, "step", &step, err)) &&
        !(rc = meta_u64(&f, path, "samples", &samples, err)) && !(rc = meta_u64(&f, path, "loader_epoch", &le, err)) &&
        !(rc = meta_u64(&f, path, "loader_batch", &lb, err)) &&
        !(rc = meta_u64(&f, path, "optimizer_steps", &osteps, err)) && !(rc = check_world(&f, path, t->world, err))) {
        const char *rs = lt_st_meta_get(&f, "rng");
        lt_rng rng = {{0}};
        if (!rs || strlen(rs) != 64)
            rc = lt_seterr(err, LT_EFORMAT, "%s: checkpoint metadata lacks the RNG state", path);
        for (int i = 0; !rc && i < 4; i++) {
            char part[17];
            memcpy(part, rs + 16 * i, 16);
            part[16] = '\0';
            char *end;
            rng.s[i] = strtoull(part, &end, 16);
            if (*end) rc = lt_seterr(err, LT_EFORMAT, "%s: checkpoint RNG state is not hexadecimal", path);
        }
        /* hparams: each must exist and be a finite number */
        for (int i = 0; !rc && i < f.nmeta; i++) {
            if (strncmp(f.meta[i].key, "hparam.", 7) != 0) continue;
            double cur, v;
            char *end;
            if (lt_trainer_hparam_get(t, f.meta[i].key + 7, &cur, NULL))
                rc = lt_seterr(err, LT_EINVAL, "%s: hparam %s does not exist in this run", path, f.meta[i].key + 7);
            else if (!*f.meta[i].value || (v = strtod(f.meta[i].value, &end), *end) || !isfinite(v))
                rc = lt_seterr(err, LT_EFORMAT, "%s: hparam %s='%.32s' is not a finite number", path, f.meta[i].key + 7,
                               f.meta[i].value);
        }
        /* the schedule continues where it was (same spec required) */
        const char *sspec = lt_st_meta_get(&f, "lr_scheduler"), *sstate = lt_st_meta_get(&f, "lr_scheduler_state");
        if (!rc && t->sched && sspec && strcmp(sspec, lt_sched_spec(t->sched)) != 0)
            rc = lt_seterr(err, LT_EINVAL, "%s: saved with --lr-scheduler '%s', this run uses '%s'", path, sspec,
                           lt_sched_spec(t->sched));
        int pending[2] = {0, 0};
        void *cbs = NULL;
        if (!rc) rc = read_pending(&f, path, epoch, le, lb, pending, err);
        if (!rc) rc = lt_tcb_state_parse(t, &f, path, &cbs, err);
        if (!rc && t->sched && sstate) rc = lt_sched_state_load(t->sched, sstate, err);
        if (!rc) rc = apply_hparams(t, &f, path, err);
        if (!rc && (rc = lt_loader_seek(t->train_loader, (size_t)le, (size_t)lb, err))) restore_hparams(t, &f);
        if (!rc && (rc = copy_in(&l, src, err))) restore_hparams(t, &f);
        if (!rc) {
            lt_optim_set_steps(t->opt, (long)osteps);
            if (t->sched) lt_sched_apply(t->sched, t->opt, NULL);
            t->rng = rng;
            t->epoch = (size_t)epoch;
            t->step = (long)step;
            t->samples = (long)samples;
            const char *vl = lt_st_meta_get(&f, "val_loss"), *va = lt_st_meta_get(&f, "val_acc");
            t->val_loss = vl ? strtod(vl, NULL) : NAN;
            t->val_acc = va ? strtod(va, NULL) : NAN;
            const char *tl = lt_st_meta_get(&f, "train_loss");
            t->train_loss = tl ? strtod(tl, NULL) : NAN;
            t->val_pending = pending[0];
            t->epoch_end_pending = pending[1];
            lt_tcb_state_apply(t, cbs);
            cbs = NULL;
        }
        free(cbs);
    }
    lt_st_free(&f);
    return rc;
}

/* What the newest run folder under dir says when no run has a last.safetensors:
 * how it ended (or that it was killed, or runs still), at which step, and
 * the newest other checkpoint it has, for --resume FILE. */
static void why_no_last(const char *dir, char *buf, size_t cap) {
    buf[0] = '\0';
    DIR *d = opendir(dir);
    if (!d) return;
    long newest = -1;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        if (strncmp(de->d_name, "version_", 8) != 0 || !de->d_name[8]) continue;
        long v = strtol(de->d_name + 8, &end, 10);
        if (!*end && v > newest) newest = v;
    }
    closedir(d);
    if (newest < 0) return;
    char run[2400], ck[2500], best[256] = "";
    snprintf(run, sizeof run, "%.2300s/version_%ld", dir, newest);
    long step = -1;
    lt_run_metrics m;
    if (lt_run_read_metrics(run, &m, NULL) == LT_OK) {
        for (long r = 0; r < m.nrows; r++) {
            double v = lt_run_metrics_at(&m, r, m.step_col);
            if (v > step) step = (long)v;
        }
        lt_run_metrics_free(&m);
    }
    lt_run_status st;
    const char *how;
    char howbuf[64];
    if (lt_run_folder_live(run))
        how = "is still running";
    else if (lt_run_read_status(run, &st, NULL) == LT_OK && st.state[0])
        how = (snprintf(howbuf, sizeof howbuf, "ended %s", st.state), howbuf);
    else
        how = "was killed";
    /* the newest epoch=E-step=S checkpoint it wrote */
    snprintf(ck, sizeof ck, "%s/checkpoints", run);
    long best_step = -1;
    if ((d = opendir(ck))) {
        while ((de = readdir(d))) {
            size_t e;
            long s;
            if (sscanf(de->d_name, "epoch=%zu-step=%ld.safetensors", &e, &s) == 2 && s > best_step &&
                strlen(de->d_name) < sizeof best && !strcmp(de->d_name + strlen(de->d_name) - 12, ".safetensors")) {
                best_step = s;
                snprintf(best, sizeof best, "%s", de->d_name);
            }
        }
        closedir(d);
    }
    char at[48] = "";
    if (step >= 0) snprintf(at, sizeof at, " at step %ld", step);
    if (best[0])
        snprintf(buf, cap, "; the newest, version_%ld, %s%s before its first last.safetensors: --resume %.1000s/%s",
                 newest, how, at, ck, best);
    else
        snprintf(buf, cap, "; the newest, version_%ld, %s%s before its first checkpoint", newest, how, at);
}

int lt_checkpoint_find_last(const char *root, const char *name, char *out, size_t cap, lt_err *err) {
    char dir[2048];
    snprintf(dir, sizeof dir, "%s%s%s", root && *root ? root : "logs", name && *name ? "/" : "", name ? name : "");
    DIR *d = opendir(dir);
    if (!d) return lt_seterr(err, LT_ENOTFOUND, "--resume last: no runs in %s", dir);
    double best = -1;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "version_", 8) != 0) continue;
        char path[2400];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s/checkpoints/last.safetensors", dir, de->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        double t = (double)st.st_mtim.tv_sec + 1e-9 * (double)st.st_mtim.tv_nsec;
        if (t > best && strlen(path) < cap) {
            best = t;
            snprintf(out, cap, "%s", path);
        }
    }
    closedir(d);
    if (best < 0) {
        char why[1600];
        why_no_last(dir, why, sizeof why);
        return lt_seterr(err, LT_ENOTFOUND,
                         "--resume last: no run under %s has checkpoints/last.safetensors%s (last.safetensors is "
                         "written with --save-last at each checkpoint)",
                         dir, why);
    }
    return LT_OK;
}
