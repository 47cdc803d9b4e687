/* The run's live hyperparameters under one naming scheme: the optimizer's
 * (lr, rho, eps, ...), each layer's live one as <layer>.<name> (a dropout
 * layer's rate: <layer>.p; the layer's class says, lathe/nn.h), and batch_size.
 * Checkpoints, the control commands and the logs all read them through here. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lathe/sched.h"
#include "lathe/train.h"

/* The live hyperparameter of a layer's kind, or NULL. */
static const lt_layer_hparam *layer_hparam(const lt_layer *l) {
    const lt_layer_class *c = lt_layer_class_of(l->kind);
    return c ? c->hparam : NULL;
}

int lt_trainer_hparam_count(const lt_trainer *t) {
    int n = lt_optim_hparam_count(t->opt) + 1;
    for (int i = 0; i < t->mod.model.nlayers; i++) n += layer_hparam(&t->mod.model.layers[i]) != NULL;
    return n;
}

const char *lt_trainer_hparam_name(const lt_trainer *t, int i, char *buf, size_t len) {
    int no = lt_optim_hparam_count(t->opt);
    if (i < 0) return NULL;
    if (i < no) return lt_optim_hparam_name(t->opt, i);
    i -= no;
    for (int k = 0; k < t->mod.model.nlayers; k++) {
        const lt_layer *l = &t->mod.model.layers[k];
        const lt_layer_hparam *hp = layer_hparam(l);
        if (!hp) continue;
        if (i-- == 0) {
            snprintf(buf, len, "%s.%s", l->name, hp->name);
            return buf;
        }
    }
    return i == 0 ? "batch_size" : NULL;
}

/* The layer whose live hyperparameter is called name ("<layer>.<name>"), or NULL. */
static lt_layer *hparam_layer(lt_trainer *t, const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name || (size_t)(dot - name) >= LT_NAME_MAX) return NULL;
    char lname[LT_NAME_MAX];
    memcpy(lname, name, (size_t)(dot - name));
    lname[dot - name] = '\0';
    lt_layer *l = lt_model_find(&t->mod.model, lname);
    const lt_layer_hparam *hp = l ? layer_hparam(l) : NULL;
    return hp && strcmp(dot + 1, hp->name) == 0 ? l : NULL;
}

static int unknown(lt_trainer *t, const char *name, lt_err *err) {
    char list[400] = "", buf[96];
    size_t o = 0;
    for (int i = 0; i < lt_trainer_hparam_count(t) && o < sizeof list; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "",
                              lt_trainer_hparam_name(t, i, buf, sizeof buf));
    return lt_seterr(err, LT_ENOTFOUND, "unknown hparam '%s' (known: %s)", name, list);
}

/* A hand-set lr under a schedule: the schedule continues from it
 * (lt_sched_override), and the optimizer takes the lr from the schedule, once,
 * as after every scheduler step. Written to the optimizer directly as well,
 * the two could disagree: when the schedule refused the value, the optimizer
 * ran with it until the next scheduler step silently undid it. A refusal on
 * either side now refuses the set and changes nothing. */
static int set_scheduled_lr(lt_trainer *t, double v, lt_err *err) {
    char saved[LT_SCHED_STATE_MAX];
    int rc = lt_sched_state_str(t->sched, saved, sizeof saved, err);
    if (!rc) rc = lt_sched_override(t->sched, v, err);
    if (!rc && (rc = lt_sched_apply(t->sched, t->opt, err))) lt_sched_state_load(t->sched, saved, NULL);
    return rc;
}

int lt_trainer_hparam_get(lt_trainer *t, const char *name, double *out, lt_err *err) {
    if (!strcmp(name, "batch_size")) {
        *out = t->batch_size;
        return LT_OK;
    }
    lt_layer *l = hparam_layer(t, name);
    if (l) {
        *out = *lt_layer_hparam_value(l);
        return LT_OK;
    }
    lt_err e2 = {0};
    if (lt_optim_get(t->opt, name, out, &e2) == LT_OK) return LT_OK;
    return unknown(t, name, err);
}

int lt_trainer_hparam_set(lt_trainer *t, const char *name, double v, lt_err *err) {
    if (!isfinite(v)) return lt_seterr(err, LT_EINVAL, "%s: %g is not a finite number", name, v);
    if (v == 0) v = 0.0; /* -0 is 0 (and would be shown as -0) */
    if (!strcmp(name, "batch_size")) {
        if (v < 1 || v > (1 << 20) || v != floor(v))
            return lt_seterr(err, LT_EINVAL, "batch_size: %g must be a whole number from 1 to %d", v, 1 << 20);
        int rc = lt_loader_set_batch_size(t->train_loader, (int)v, err);
        if (rc) return rc;
        t->batch_size = (int)v;
        return LT_OK;
    }
    lt_layer *l = hparam_layer(t, name);
    if (l) {
        const lt_layer_hparam *hp = layer_hparam(l);
        /* the range holds for the float the layer stores: 0.99999999 is 1 there */
        float f = (float)v;
        if (!(v >= hp->lo && v < hp->hi))
            return lt_seterr(err, LT_EINVAL, "%s: %s must be in [%g, %g), got %g", name, hp->what, (double)hp->lo,
                             (double)hp->hi, v);
        if (!(f >= hp->lo && f < hp->hi))
            return lt_seterr(err, LT_EINVAL, "%s: %s must be in [%g, %g), got %.9g, which is %.9g as the float stored",
                             name, hp->what, (double)hp->lo, (double)hp->hi, v, (double)f);
        *lt_layer_hparam_value(l) = f;
        return LT_OK;
    }
    double old;
    lt_err e2 = {0};
    if (lt_optim_get(t->opt, name, &old, &e2) != LT_OK) return unknown(t, name, err);
    int is_lr = !strcmp(name, "lr");
    int rc = is_lr && t->sched ? set_scheduled_lr(t, v, err) : lt_optim_set(t->opt, name, v, err);
    if (!rc && is_lr) t->lr = v;
    return rc;
}
