/* ModelCheckpoint, EarlyStopping and terminate-on-NaN, wired into the fit loop.
 * A failed checkpoint write never stops training: it is recorded in
 * t->warning and the run carries on (the previous checkpoint stays intact). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lathe/atomic_file.h"
#include "lathe/callbacks.h"
#include "lathe/checkpoint.h"
#include "lathe/safetensors.h"
#include "train/trainer_callbacks.h"

typedef struct tcb_state {
    lt_ckpt_policy ckpt;
    lt_early_stopping es;
    int es_on;
    long last_saved_step;
} tcb_state;

int lt_tcb_init(lt_trainer *t, lt_err *err) {
    tcb_state *s = calloc(1, sizeof *s);
    if (!s) return lt_seterr(err, LT_ENOMEM, "out of memory");
    const lt_config *c = &t->cfg;
    lt_ckpt_policy_init(&s->ckpt);
    snprintf(s->ckpt.monitor, sizeof s->ckpt.monitor, "%s", c->ckpt_monitor);
    s->ckpt.mode_max = c->ckpt_mode_max;
    s->ckpt.save_top_k = c->save_top_k;
    s->ckpt.save_last = c->save_last;
    s->ckpt.every_n_epochs = c->ckpt_every_n_epochs;
    s->ckpt.every_n_train_steps = c->ckpt_every_n_train_steps;
    s->last_saved_step = -1;
    if (c->es_monitor[0]) {
        s->es_on = 1;
        lt_early_stopping_init(&s->es, c->es_monitor, c->es_mode_max, c->es_patience, c->es_min_delta);
        s->es.stopping_threshold = c->es_stopping_threshold;
        s->es.divergence_threshold = c->es_divergence_threshold;
        s->es.check_finite = c->es_check_finite;
    }
    if (c->ckpt_dir[0] && mkdir(c->ckpt_dir, 0755) != 0 && errno != EEXIST) {
        free(s);
        return lt_seterr(err, LT_EIO, "%s: cannot create the checkpoint folder: %s", c->ckpt_dir, strerror(errno));
    }
    if (c->ckpt_dir[0]) lt_tcb_clean_stale(t, c->ckpt_dir);
    t->callbacks = s;
    return LT_OK;
}

void lt_tcb_free(lt_trainer *t) {
    free(t->callbacks);
    t->callbacks = NULL;
}

static void warn(lt_trainer *t, const char *msg) {
    snprintf(t->warning, sizeof t->warning, "%s", msg);
    t->warnings++;
    if (t->cb.on_warning) t->cb.on_warning(t, t->warning, t->cb.user);
}

/* Temporary files of writes a kill cut short (".tmp.<pid>" of a dead pid),
 * removed before this run writes into their folder; said once in the note. */
static void clean_stale(lt_trainer *t, const char *dir) {
    int n = lt_afile_clean_stale(dir);
    if (n <= 0) return;
    size_t o = strlen(t->note);
    if (o + 2 < sizeof t->note)
        snprintf(t->note + o, sizeof t->note - o, "%s%.300s: removed %d temporary file(s) a killed write left",
                 o ? "; " : "", dir, n);
}

void lt_tcb_clean_stale(lt_trainer *t, const char *dir) { clean_stale(t, dir); }

int lt_trainer_set_checkpoint_dir(lt_trainer *t, const char *dir, lt_err *err) {
    if (strlen(dir) >= sizeof t->cfg.ckpt_dir) return lt_seterr(err, LT_EINVAL, "%s: path too long", dir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return lt_seterr(err, LT_EIO, "%s: cannot create the checkpoint folder: %s", dir, strerror(errno));
    snprintf(t->cfg.ckpt_dir, sizeof t->cfg.ckpt_dir, "%s", dir);
    clean_stale(t, dir);
    return LT_OK;
}

int lt_trainer_save_checkpoint(lt_trainer *t, const char *path, lt_err *err) {
    if (t->cb.on_checkpoint) t->cb.on_checkpoint(t, 1, t->cb.user);
    int rc = lt_checkpoint_save(t, path, err);
    if (t->cb.on_checkpoint) t->cb.on_checkpoint(t, 0, t->cb.user);
    if (!rc) {
        snprintf(t->last_ckpt, sizeof t->last_ckpt, "%s", path);
        t->ckpt_saved++;
    } else {
        t->ckpt_failed++;
    }
    return rc;
}

/* The top-k list names checkpoints relative to the checkpoint folder, so that
 * a resumed run (writing into a folder of its own) carries the list on
 * without ever deleting a file of the run it resumed from. */
static void save_due(lt_trainer *t) {
    tcb_state *s = t->callbacks;
    if (!s || !t->cfg.ckpt_dir[0] || s->last_saved_step == t->step) return;
    s->last_saved_step = t->step;
    lt_err err = {0};
    char name[96], path[1100], evict[256]; /* path: as t->last_ckpt */
    snprintf(name, sizeof name, "epoch=%zu-step=%ld.safetensors", t->epoch, t->step);
    snprintf(path, sizeof path, "%.1000s/%s", t->cfg.ckpt_dir, name);
    double score = s->ckpt.monitor[0] ? lt_trainer_metric(t, s->ckpt.monitor) : NAN;
    static lt_ckpt_policy before; /* large; saves run on the trainer thread only */
    before = s->ckpt;
    if (lt_ckpt_offer(&s->ckpt, name, score, evict, sizeof evict)) {
        if (lt_trainer_save_checkpoint(t, path, &err)) {
            /* the new file is not there: the list stays as it was, and the
               one it would have replaced stays listed and on disk */
            s->ckpt = before;
            warn(t, err.msg);
        } else if (evict[0]) {
            snprintf(path, sizeof path, "%.1000s/%.95s", t->cfg.ckpt_dir, evict);
            if (unlink(path) != 0 && errno != ENOENT) {
                char msg[LT_ERR_MSG_MAX];
                snprintf(msg, sizeof msg, "%.300s: cannot remove an old checkpoint: %s", path, strerror(errno));
                warn(t, msg);
            }
        }
    }
    if (s->ckpt.save_last) {
        snprintf(path, sizeof path, "%s/last.safetensors", t->cfg.ckpt_dir);
        if (lt_trainer_save_checkpoint(t, path, &err)) warn(t, err.msg);
    }
}

void lt_tcb_after_step(lt_trainer *t) {
    tcb_state *s = t->callbacks;
    if (s && lt_ckpt_due_step(&s->ckpt, t->step)) save_due(t);
}

void lt_tcb_after_val(lt_trainer *t) {
    tcb_state *s = t->callbacks;
    if (!s || !s->es_on) return;
    if (lt_early_stopping_update(&s->es, lt_trainer_metric(t, s->es.monitor))) {
        t->stop_requested = 1;
        t->early_stopped = 1;
        snprintf(t->stop_reason, sizeof t->stop_reason, "early stopping: %s", s->es.reason);
    }
}

void lt_tcb_epoch_end(lt_trainer *t) {
    tcb_state *s = t->callbacks;
    if (s && lt_ckpt_due_epoch(&s->ckpt, (long)t->epoch)) save_due(t);
}

void lt_tcb_nonfinite(lt_trainer *t) {
    /* the weights in memory are still those before the bad step */
    if (!t->cfg.ckpt_dir[0]) return;
    lt_err err = {0};
    char path[1100];
    snprintf(path, sizeof path, "%s/last.safetensors", t->cfg.ckpt_dir);
    if (lt_trainer_save_checkpoint(t, path, &err)) warn(t, err.msg);
}

/* ---- the callbacks' state in a checkpoint ----
 * EarlyStopping's best, wait count and verdict, and ModelCheckpoint's top-k
 * list, best and save count, so that a resumed run decides as the run it
 * continues would have. Each part is restored only when the resumed run
 * monitors the same metric in the same mode (another monitor starts afresh,
 * as the state would mean nothing to it). */
void lt_tcb_state_save(const lt_trainer *t, lt_tcb_put put, void *ctx) {
    const tcb_state *s = t->callbacks;
    if (!s) return;
    char v[LT_CKPT_MAX_TOPK * 300 + 64];
    if (s->es_on) {
        put(ctx, "early_stopping.monitor", s->es.monitor);
        put(ctx, "early_stopping.mode", s->es.mode_max ? "max" : "min");
        snprintf(v, sizeof v, "%.17g", s->es.best);
        put(ctx, "early_stopping.best", v);
        snprintf(v, sizeof v, "%d", s->es.wait);
        put(ctx, "early_stopping.wait", v);
        snprintf(v, sizeof v, "%d", s->es.stopped);
        put(ctx, "early_stopping.stopped", v);
        put(ctx, "early_stopping.reason", s->es.reason);
    }
    const lt_ckpt_policy *p = &s->ckpt;
    put(ctx, "model_checkpoint.monitor", p->monitor);
    put(ctx, "model_checkpoint.mode", p->mode_max ? "max" : "min");
    snprintf(v, sizeof v, "%ld", p->saves);
    put(ctx, "model_checkpoint.saves", v);
    snprintf(v, sizeof v, "%.17g", p->best_score);
    put(ctx, "model_checkpoint.best_score", v);
    put(ctx, "model_checkpoint.best", p->best_path);
    snprintf(v, sizeof v, "%ld", s->last_saved_step);
    put(ctx, "model_checkpoint.last_saved_step", v);
    /* "name score order" entries, comma-separated (names are ours: no blank, no comma) */
    size_t o = 0;
    v[0] = '\0';
    for (int i = 0; i < p->nkept && o < sizeof v; i++)
        o += (size_t)snprintf(v + o, sizeof v - o, "%s%s %.17g %ld", i ? "," : "", p->kept[i], p->kept_score[i],
                              p->kept_order[i]);
    put(ctx, "model_checkpoint.kept", v);
}

/* A number of the metadata: the whole value (inf and nan allowed). */
static int meta_num(const lt_st_file *f, const char *path, const char *key, double lo, double hi, double *out,
                    lt_err *err) {
    const char *v = lt_st_meta_get(f, key);
    char *end;
    if (!v) return lt_seterr(err, LT_EFORMAT, "%s: checkpoint metadata lacks %s", path, key);
    *out = strtod(v, &end);
    if (!*v || *end || *out < lo || *out > hi)
        return lt_seterr(err, LT_EFORMAT, "%s: checkpoint metadata %s='%.32s' is not valid", path, key, v);
    return LT_OK;
}

/* A checkpoint's own file name: no folder, nothing to climb out with. */
static int plain_name(const char *n, size_t len) {
    return len > 0 && len < 256 && !memchr(n, '/', len) && !(len == 1 && n[0] == '.') &&
           !(len == 2 && n[0] == '.' && n[1] == '.');
}

static int parse_kept(lt_ckpt_policy *p, const char *v, const char *path, lt_err *err) {
    p->nkept = 0;
    for (const char *e = v; *e;) {
        const char *end = strchr(e, ',');
        size_t len = end ? (size_t)(end - e) : strlen(e);
        char item[400];
        const char *sp = memchr(e, ' ', len);
        if (p->nkept == LT_CKPT_MAX_TOPK || len >= sizeof item || !sp || !plain_name(e, (size_t)(sp - e)))
            return lt_seterr(err, LT_EFORMAT, "%s: checkpoint metadata model_checkpoint.kept is not valid", path);
        memcpy(item, e, len);
        item[len] = '\0';
        item[sp - e] = '\0';
        char *q, *num = item + (sp - e) + 1;
        double score = strtod(num, &q);
        long order = q != num && *q == ' ' ? strtol(q + 1, &q, 10) : -1;
        if (*q || order < 0)
            return lt_seterr(err, LT_EFORMAT, "%s: checkpoint metadata model_checkpoint.kept is not valid", path);
        memcpy(p->kept[p->nkept], item, (size_t)(sp - e) + 1); /* plain_name: under 256 bytes */
        p->kept_score[p->nkept] = score;
        p->kept_order[p->nkept++] = order;
        e = end ? end + 1 : e + len;
    }
    return LT_OK;
}

static int parse_es(lt_early_stopping *es, const lt_st_file *f, const char *path, lt_err *err) {
    const char *mon = lt_st_meta_get(f, "early_stopping.monitor"), *mode = lt_st_meta_get(f, "early_stopping.mode");
    if (!mon || !mode || strcmp(mon, es->monitor) != 0 || strcmp(mode, es->mode_max ? "max" : "min") != 0)
        return LT_OK; /* saved without early stopping, or watching something else */
    double best = 0, wait = 0, stopped = 0;
    int rc = meta_num(f, path, "early_stopping.best", -INFINITY, INFINITY, &best, err);
    if (!rc) rc = meta_num(f, path, "early_stopping.wait", 0, 1e9, &wait, err);
    if (!rc) rc = meta_num(f, path, "early_stopping.stopped", 0, 1, &stopped, err);
    if (rc) return rc;
    if (isnan(best) || wait != floor(wait) || stopped != floor(stopped))
        return lt_seterr(err, LT_EFORMAT, "%s: checkpoint metadata early_stopping.* is not valid", path);
    const char *reason = lt_st_meta_get(f, "early_stopping.reason");
    es->best = best;
    es->wait = (int)wait;
    es->stopped = (int)stopped;
    snprintf(es->reason, sizeof es->reason, "%s", reason ? reason : "");
    return LT_OK;
}

static int parse_ckpt(tcb_state *s, const lt_st_file *f, const char *path, lt_err *err) {
    lt_ckpt_policy *p = &s->ckpt;
    const char *mon = lt_st_meta_get(f, "model_checkpoint.monitor"), *mode = lt_st_meta_get(f, "model_checkpoint.mode");
    if (!mon || !mode || strcmp(mon, p->monitor) != 0 || strcmp(mode, p->mode_max ? "max" : "min") != 0) return LT_OK;
    double saves = 0, best = 0, last = 0;
    int rc = meta_num(f, path, "model_checkpoint.saves", 0, 1e15, &saves, err);
    if (!rc) rc = meta_num(f, path, "model_checkpoint.best_score", -INFINITY, INFINITY, &best, err);
    if (!rc) rc = meta_num(f, path, "model_checkpoint.last_saved_step", -1, 1e15, &last, err);
    const char *bp = lt_st_meta_get(f, "model_checkpoint.best"), *kept = lt_st_meta_get(f, "model_checkpoint.kept");
    if (!rc && (!bp || !kept || (*bp && !plain_name(bp, strlen(bp)))))
        rc = lt_seterr(err, LT_EFORMAT, "%s: checkpoint metadata model_checkpoint.* is not valid", path);
    if (!rc) rc = parse_kept(p, kept, path, err);
    if (rc) return rc;
    p->saves = (long)saves;
    p->best_score = best;
    snprintf(p->best_path, sizeof p->best_path, "%s", bp);
    s->last_saved_step = (long)last;
    return LT_OK;
}

int lt_tcb_state_parse(const lt_trainer *t, const lt_st_file *f, const char *path, void **out, lt_err *err) {
    *out = NULL;
    if (!t->callbacks) return LT_OK;
    tcb_state *s = malloc(sizeof *s);
    if (!s) return lt_seterr(err, LT_ENOMEM, "out of memory");
    memcpy(s, t->callbacks, sizeof *s);
    int rc = s->es_on ? parse_es(&s->es, f, path, err) : LT_OK;
    if (!rc) rc = parse_ckpt(s, f, path, err);
    if (rc) {
        free(s);
        return rc;
    }
    *out = s;
    return LT_OK;
}

void lt_tcb_state_apply(lt_trainer *t, void *parsed) {
    if (!parsed) return;
    tcb_state *s = t->callbacks;
    memcpy(s, parsed, sizeof *s);
    free(parsed);
    if (s->es_on && s->es.stopped) {
        /* it had stopped the fit: the resumed one ends there too */
        t->stop_requested = 1;
        t->early_stopped = 1;
        snprintf(t->stop_reason, sizeof t->stop_reason, "early stopping: %s", s->es.reason);
    }
}
