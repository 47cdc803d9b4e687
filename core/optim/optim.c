/* The optimizer object: creation (all state allocated once, on the params'
 * device), the hyperparameter table with validation, state enumeration for
 * checkpoints, and the step: the kind's coefficients, applied by the backend
 * (lathe/device.h, lt_dev_optim_update). */
#include "optim/optim_impl.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>

static const opt_kind *const kinds[] = {&lt_optim_sgd_kind,      &lt_optim_adam_kind,    &lt_optim_adamw_kind,
                                        &lt_optim_adadelta_kind, &lt_optim_rmsprop_kind, &lt_optim_adagrad_kind};
#define NKINDS ((int)(sizeof kinds / sizeof kinds[0]))

/* Keeps nparams * nslots well inside int and the duplicate-name check cheap. */
#define OPT_MAX_PARAMS 65536
#define STATE_ALIGN 64 /* bytes; each state buffer starts on a cache line (the block is 64-byte aligned) */

static const opt_kind *find_kind(const char *name) {
    for (int i = 0; i < NKINDS; i++)
        if (strcmp(kinds[i]->name, name) == 0) return kinds[i];
    return NULL;
}

/* Writes "a, b, c" into buf. */
static void join_names(char *buf, size_t cap, const char *const *names, int count) {
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < count && len < cap; i++) {
        int w = snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", names[i]);
        if (w < 0) break;
        len += (size_t)w;
    }
}

static int unknown_kind(const char *kind, lt_err *err) {
    const char *names[NKINDS];
    char list[128];
    for (int i = 0; i < NKINDS; i++) names[i] = kinds[i]->name;
    join_names(list, sizeof list, names, NKINDS);
    return lt_seterr(err, LT_ENOTFOUND, "unknown optimizer '%s' (known: %s)", kind, list);
}

static int check_params(const lt_param *params, int nparams, lt_err *err) {
    if (!params || nparams <= 0) return lt_seterr(err, LT_EINVAL, "optimizer got an empty parameter list");
    if (nparams > OPT_MAX_PARAMS)
        return lt_seterr(err, LT_EINVAL, "too many parameters (%d, at most %d)", nparams, OPT_MAX_PARAMS);
    for (int i = 0; i < nparams; i++) {
        const lt_param *p = &params[i];
        if (!p->name || !p->name[0]) return lt_seterr(err, LT_EINVAL, "parameter %d has no name", i);
        if (p->n > 0 && (!p->data || !p->grad))
            return lt_seterr(err, LT_EINVAL, "parameter '%s' has a NULL %s pointer", p->name,
                             p->data ? "grad" : "data");
        for (int j = 0; j < i; j++)
            if (strcmp(params[j].name, p->name) == 0)
                return lt_seterr(err, LT_EINVAL, "parameter name '%s' appears twice", p->name);
        if (p->device != params[0].device)
            return lt_seterr(err, LT_EINVAL, "parameters '%s' and '%s' live on different devices", params[0].name,
                             p->name);
    }
    if (!lt_backend_of(params[0].device))
        return lt_seterr(err, LT_EUNSUPPORTED, "parameter '%s' lives on a device this build has no backend for",
                         params[0].name);
    return LT_OK;
}

static size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

lt_optim *lt_optim_create(const char *kind, const lt_param *params, int nparams, lt_err *err) {
    if (!kind) {
        unknown_kind("(null)", err);
        return NULL;
    }
    const opt_kind *k = find_kind(kind);
    if (!k) {
        unknown_kind(kind, err);
        return NULL;
    }
    if (check_params(params, nparams, err)) return NULL;

    lt_optim *o = lt_calloc(1, sizeof *o, err);
    if (!o) return NULL;
    o->kind = k;
    o->be = lt_backend_of(params[0].device);
    o->nparams = nparams;
    o->ngroups = 1;
    o->groups[0].first = 0;
    o->groups[0].count = nparams;
    for (int i = 0; i < k->nhp; i++) o->groups[0].hp[i] = k->hp[i].def;

    int nbuf = nparams * k->nslots;
    o->params = lt_malloc((size_t)nparams * sizeof *o->params, err);
    o->state = lt_calloc((size_t)nbuf, sizeof *o->state, err);
    o->state_names = lt_calloc((size_t)nbuf, sizeof *o->state_names, err);
    o->upd = lt_calloc((size_t)nparams, sizeof *o->upd, err);
    if (!o->params || !o->state || !o->state_names || !o->upd) goto fail;
    memcpy(o->params, params, (size_t)nparams * sizeof *o->params);

    /* Sizes: every buffer rounded up to whole cache lines, checked for overflow. */
    size_t bytes = 0, name_bytes = 0;
    for (int p = 0; p < nparams; p++) {
        size_t n = params[p].n;
        if (n > (SIZE_MAX / 2) / sizeof(float)) {
            lt_seterr(err, LT_EINVAL, "parameter '%s' is too large (%zu floats)", params[p].name, n);
            goto fail;
        }
        size_t one = round_up(n * sizeof(float), STATE_ALIGN);
        for (int s = 0; s < k->nslots; s++) {
            if (bytes > SIZE_MAX / 2 - one) {
                lt_seterr(err, LT_ENOMEM, "optimizer state does not fit in memory");
                goto fail;
            }
            bytes += one;
            name_bytes += strlen(params[p].name) + 1 + strlen(k->slots[s]) + 1;
        }
    }
    if (bytes > 0 && !(o->state_mem = lt_dev_alloc(o->be, bytes, LT_MEM_OPTIM, err))) goto fail; /* zeroed */
    o->names_mem = lt_malloc(name_bytes, err);
    if (!o->names_mem) goto fail;

    char *base = (char *)o->state_mem, *nm = o->names_mem;
    for (int p = 0; p < nparams; p++) {
        size_t one = round_up(params[p].n * sizeof(float), STATE_ALIGN);
        for (int s = 0; s < k->nslots; s++) {
            int i = p * k->nslots + s;
            o->state[i] = base ? (float *)base : NULL;
            if (base) base += one;
            size_t len = strlen(params[p].name) + 1 + strlen(k->slots[s]) + 1;
            snprintf(nm, len, "%s.%s", params[p].name, k->slots[s]);
            o->state_names[i] = nm;
            nm += len;
        }
        o->upd[p] = (lt_update_tensor){.p = params[p].data, .g = params[p].grad, .n = params[p].n};
        for (int s = 0; s < k->nslots; s++) o->upd[p].s[s] = opt_state(o, p, s);
    }
    return o;
fail:
    lt_optim_free(o);
    return NULL;
}

void lt_optim_free(lt_optim *o) {
    if (!o) return;
    free(o->params);
    free(o->state);
    free(o->state_names);
    free(o->names_mem);
    free(o->upd);
    lt_dev_free(o->be, o->state_mem, LT_MEM_OPTIM);
    free(o);
}

const char *lt_optim_kind(const lt_optim *o) { return o ? o->kind->name : NULL; }

int lt_optim_step(lt_optim *o, lt_err *err) {
    if (!o) return lt_seterr(err, LT_EINVAL, "lt_optim_step: no optimizer");
    long t = o->steps + 1;
    for (int g = 0; g < o->ngroups; g++) {
        lt_update u;
        o->kind->coef(o, &o->groups[g], t, &u);
        lt_dev_optim_update(o->be, &u, o->groups[g].count, o->upd + o->groups[g].first);
    }
    o->steps = t;
    return LT_OK;
}

void lt_optim_zero_grad(lt_optim *o) {
    if (!o) return;
    for (int p = 0; p < o->nparams; p++)
        if (o->params[p].n) lt_dev_fill(o->be, o->params[p].grad, 0.0f, o->params[p].n);
}

int lt_optim_hparam_count(const lt_optim *o) { return o ? o->kind->nhp : 0; }

const char *lt_optim_hparam_name(const lt_optim *o, int i) {
    if (!o || i < 0 || i >= o->kind->nhp) return NULL;
    return o->kind->hp[i].name;
}

/* Index of hparam name, or LT_ENOTFOUND with the valid names listed. */
static int find_hparam(const lt_optim *o, const char *name, lt_err *err) {
    const opt_kind *k = o->kind;
    if (name)
        for (int i = 0; i < k->nhp; i++)
            if (strcmp(k->hp[i].name, name) == 0) return i;
    const char *names[OPT_MAX_HP] = {0};
    char list[256];
    for (int i = 0; i < k->nhp; i++) names[i] = k->hp[i].name;
    join_names(list, sizeof list, names, k->nhp);
    return lt_seterr(err, LT_ENOTFOUND, "%s has no hyperparameter '%s' (valid: %s)", k->name, name ? name : "(null)",
                     list);
}

int lt_optim_get(const lt_optim *o, const char *name, double *out, lt_err *err) {
    if (!o || !out) return lt_seterr(err, LT_EINVAL, "lt_optim_get: NULL argument");
    int i = find_hparam(o, name, err);
    if (i < 0) return i;
    *out = o->groups[0].hp[i];
    return LT_OK;
}

static int check_value(const opt_hparam_def *d, double v, lt_err *err) {
    if (!isfinite(v)) return lt_seterr(err, LT_EINVAL, "%s must be a finite number, got %g", d->name, v);
    switch (d->check) {
    case OPT_CHK_NONNEG:
        if (v < 0) return lt_seterr(err, LT_EINVAL, "%s must be >= 0, got %g", d->name, v);
        break;
    case OPT_CHK_UNIT:
        if (v < 0 || v >= 1) return lt_seterr(err, LT_EINVAL, "%s must be in [0, 1), got %g", d->name, v);
        break;
    case OPT_CHK_POS:
        if (v <= 0) return lt_seterr(err, LT_EINVAL, "%s must be > 0, got %g", d->name, v);
        break;
    case OPT_CHK_CLOSED01:
        if (v < 0 || v > 1) return lt_seterr(err, LT_EINVAL, "%s must be in [0, 1], got %g", d->name, v);
        break;
    case OPT_CHK_FLAG:
        if (v != 0 && v != 1) return lt_seterr(err, LT_EINVAL, "%s must be 0 or 1, got %g", d->name, v);
        break;
    }
    return LT_OK;
}

/* The update rules compute in float: the value they use must pass as well
 * (rho 0.99999999 is 1 there, lr 1e300 is inf). */
static int check_f32(const opt_hparam_def *d, double v, lt_err *err) {
    float f = (float)v;
    if (!isfinite(f))
        return lt_seterr(err, LT_EINVAL, "%s must be at most %g in magnitude (the update computes in float), got %g",
                         d->name, (double)FLT_MAX, v);
    lt_err e = {0};
    if (check_value(d, f, &e))
        return lt_seterr(err, LT_EINVAL, "%s: %.9g is %.9g as a float, which the update computes in: %s", d->name, v,
                         (double)f, e.msg);
    return LT_OK;
}

int lt_optim_set(lt_optim *o, const char *name, double value, lt_err *err) {
    if (!o) return lt_seterr(err, LT_EINVAL, "lt_optim_set: no optimizer");
    int i = find_hparam(o, name, err);
    if (i < 0) return i;
    if (value == 0) value = 0.0; /* -0 is 0 */
    int rc = check_value(&o->kind->hp[i], value, err);
    if (!rc) rc = check_f32(&o->kind->hp[i], value, err);
    if (rc) return rc;
    /* Cross-checks run on a copy so a refusal changes nothing. */
    double hp[OPT_MAX_HP];
    memcpy(hp, o->groups[0].hp, sizeof hp);
    hp[i] = value;
    if (o->kind->check && (rc = o->kind->check(hp, err))) return rc;
    for (int g = 0; g < o->ngroups; g++) o->groups[g].hp[i] = value;
    return LT_OK;
}

long lt_optim_steps(const lt_optim *o) { return o ? o->steps : 0; }

void lt_optim_set_steps(lt_optim *o, long steps) {
    if (!o) return;
    o->steps = steps > 0 ? steps : 0;
    o->sgd_buf_init = o->steps > 0;
}

int lt_optim_state_count(const lt_optim *o) { return o ? o->nparams * o->kind->nslots : 0; }

int lt_optim_state_get(const lt_optim *o, int i, const char **name, float **data, size_t *n) {
    if (!o || i < 0 || i >= lt_optim_state_count(o)) return LT_EINVAL;
    if (name) *name = o->state_names[i];
    if (data) *data = o->state[i];
    if (n) *n = o->params[i / o->kind->nslots].n;
    return LT_OK;
}

size_t lt_optim_state_floats(const lt_optim *o) {
    size_t total = 0;
    for (int i = 0; i < lt_optim_state_count(o); i++) total += o->params[i / o->kind->nslots].n;
    return total;
}

const lt_backend *lt_optim_backend(const lt_optim *o) { return o ? o->be : NULL; }

int lt_optim_state_save(const lt_optim *o, float *dst, lt_err *err) {
    int rc = LT_OK;
    for (int i = 0; !rc && i < lt_optim_state_count(o); i++) {
        size_t n = o->params[i / o->kind->nslots].n;
        rc = lt_dev_get(o->be, dst, o->state[i], n * sizeof(float), err);
        dst += n;
    }
    return rc;
}

int lt_optim_state_load(lt_optim *o, const float *src, lt_err *err) {
    int rc = LT_OK;
    for (int i = 0; !rc && i < lt_optim_state_count(o); i++) {
        size_t n = o->params[i / o->kind->nslots].n;
        rc = lt_dev_set(o->be, o->state[i], src, n * sizeof(float), err);
        src += n;
    }
    return rc;
}
