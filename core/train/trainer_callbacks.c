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

#include "lathe/callbacks.h"
#include "lathe/checkpoint.h"
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
}

int lt_trainer_set_checkpoint_dir(lt_trainer *t, const char *dir, lt_err *err) {
    if (strlen(dir) >= sizeof t->cfg.ckpt_dir) return lt_seterr(err, LT_EINVAL, "%s: path too long", dir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return lt_seterr(err, LT_EIO, "%s: cannot create the checkpoint folder: %s", dir, strerror(errno));
    snprintf(t->cfg.ckpt_dir, sizeof t->cfg.ckpt_dir, "%s", dir);
    return LT_OK;
}

int lt_trainer_save_checkpoint(lt_trainer *t, const char *path, lt_err *err) {
    int rc = lt_checkpoint_save(t, path, err);
    if (!rc) snprintf(t->last_ckpt, sizeof t->last_ckpt, "%s", path);
    return rc;
}

static void save_due(lt_trainer *t) {
    tcb_state *s = t->callbacks;
    if (!s || !t->cfg.ckpt_dir[0] || s->last_saved_step == t->step) return;
    s->last_saved_step = t->step;
    lt_err err = {0};
    char path[1100], evict[256];
    snprintf(path, sizeof path, "%s/epoch=%zu-step=%ld.safetensors", t->cfg.ckpt_dir, t->epoch, t->step);
    double score = s->ckpt.monitor[0] ? lt_trainer_metric(t, s->ckpt.monitor) : NAN;
    if (lt_ckpt_offer(&s->ckpt, path, score, evict, sizeof evict)) {
        if (lt_trainer_save_checkpoint(t, path, &err)) {
            warn(t, err.msg);
        } else if (evict[0] && unlink(evict) != 0 && errno != ENOENT) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s: cannot remove an old checkpoint: %s", evict, strerror(errno));
            warn(t, msg);
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
