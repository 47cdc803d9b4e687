/* Learning-rate schedulers: the step rule of each kind, written as the
 * get_lr of the matching torch.optim.lr_scheduler class (same formula, same
 * operation order, in double like CPython's floats), plus hand overrides and
 * the checkpoint state line. Spec parsing is in sched_parse.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim/sched_impl.h"

/* The double nearest pi, i.e. Python's math.pi (M_PI is not C11). */
static const double PI = 3.14159265358979323846;

/* CosineAnnealingLR.get_lr for last_epoch e >= 1 (after the constructor's
 * step): PyTorch's recursive form, not the closed one, so a hand-set lr
 * carries on. The branch at e - 1 - T = 0 mod 2T is where the ratio form would
 * divide by 1 + cos(pi) = 0: the lr restarts its rise from base. */
static double cosine_next(double lr, long e, double base, long t_max, double eta_min) {
    if ((e - 1 - t_max) % (2 * t_max) == 0) return lr + (base - eta_min) * (1 - cos(PI / (double)t_max)) / 2;
    return (1 + cos(PI * (double)e / (double)t_max)) / (1 + cos(PI * (double)(e - 1) / (double)t_max)) *
               (lr - eta_min) +
           eta_min;
}

/* OneCycleLR.get_lr: the lr at step_num from the phase it falls in. */
static double onecycle_lr(const lt_sched *s, long step_num) {
    const double a[3] = {s->lo, s->hi, s->three_phase ? s->lo : s->lo_end};     /* phase start lrs */
    const double b[3] = {s->hi, s->three_phase ? s->lo : s->lo_end, s->lo_end}; /* phase end lrs */
    double start = 0.0;
    for (int i = 0; i < s->nphases; i++) {
        double end = s->phase_end[i];
        if ((double)step_num <= end || i == s->nphases - 1) {
            double pct = ((double)step_num - start) / (end - start);
            if (s->anneal_linear) return (b[i] - a[i]) * pct + a[i];
            double cos_out = cos(PI * pct) + 1;
            return b[i] + (a[i] - b[i]) / 2.0 * cos_out;
        }
        start = end;
    }
    return s->lr; /* not reached: the last phase always matches */
}

/* How many times e appears among the milestones (MultiStepLR's Counter). */
static int milestone_count(const lt_sched *s, long e) {
    int n = 0;
    for (int i = 0; i < s->nmilestones; i++) n += s->milestones[i] == e;
    return n;
}

/* The constructor's step, at last_epoch 0 (with SequentialLR's reset and undo
 * already folded in for warmup_cosine). */
static void initial_step(lt_sched *s) {
    s->e = 0;
    s->lr = s->base;
    switch (s->kind) {
    case SK_MULTISTEP: {
        int n = milestone_count(s, 0);
        if (n) s->lr = s->lr * pow(s->gamma, n);
        break;
    }
    case SK_WARMUP_COSINE:
        /* LinearLR at last_epoch 0; with warmup 0 the cosine starts at once
         * and its first step leaves the lr as it is. */
        if (s->warmup > 0) s->lr = s->lr * s->start_factor;
        break;
    case SK_ONECYCLE: s->lr = onecycle_lr(s, 0); break;
    case SK_PLATEAU:
        s->best = s->mode_max ? -INFINITY : INFINITY; /* mode_worse */
        s->bad = 0;
        s->cool = 0;
        break;
    default: break; /* step, exponential, cosine: the lr stays */
    }
}

lt_sched *lt_sched_create(const char *spec, double base_lr, lt_err *err) {
    if (!isfinite(base_lr) || base_lr < 0) {
        lt_seterr(err, LT_EINVAL, "scheduler base lr %g must be finite and >= 0", base_lr);
        return NULL;
    }
    lt_sched *s = lt_calloc(1, sizeof *s, err);
    if (!s) return NULL;
    if (lt_sched_parse_spec_(s, spec, base_lr, err)) {
        free(s);
        return NULL;
    }
    size_t n = strlen(spec) + 1;
    s->spec = lt_malloc(n, err);
    if (!s->spec) {
        free(s);
        return NULL;
    }
    memcpy(s->spec, spec, n);
    /* OneCycleLR sets initial_lr = max_lr / div_factor itself. */
    s->base = s->kind == SK_ONECYCLE ? s->lo : base_lr;
    initial_step(s);
    return s;
}

void lt_sched_free(lt_sched *s) {
    if (!s) return;
    free(s->spec);
    free(s);
}

const char *lt_sched_kind(const lt_sched *s) { return lt_sched_kind_name_(s->kind); }
const char *lt_sched_spec(const lt_sched *s) { return s->spec; }
int lt_sched_interval(const lt_sched *s) { return s->interval ? LT_SCHED_STEP : LT_SCHED_EPOCH; }
int lt_sched_frequency(const lt_sched *s) { return s->frequency; }
const char *lt_sched_monitor(const lt_sched *s) { return s->monitor; }
int lt_sched_needs_metric(const lt_sched *s) { return s->kind == SK_PLATEAU; }
double lt_sched_lr(const lt_sched *s) { return s->lr; }
long lt_sched_steps(const lt_sched *s) { return s->e; }

/* ReduceLROnPlateau._is_better. */
static int plateau_better(const lt_sched *s, double a) {
    if (!s->mode_max && !s->thr_abs) return a < s->best * (1.0 - s->threshold);
    if (!s->mode_max) return a < s->best - s->threshold;
    if (!s->thr_abs) return a > s->best * (s->threshold + 1.0);
    return a > s->best + s->threshold;
}

/* ReduceLROnPlateau.step(metrics). */
static void plateau_step(lt_sched *s, double metric) {
    if (plateau_better(s, metric)) {
        s->best = metric;
        s->bad = 0;
    } else {
        s->bad++;
    }
    if (s->cool > 0) {
        s->cool--;
        s->bad = 0; /* bad epochs in cooldown do not count */
    }
    if (s->bad > s->patience) {
        double old_lr = s->lr;
        double new_lr = fmax(old_lr * s->factor, s->min_lr);
        if (old_lr - new_lr > s->eps) s->lr = new_lr;
        s->cool = s->cooldown;
        s->bad = 0;
    }
}

int lt_sched_step(lt_sched *s, double metric, lt_err *err) {
    if (s->kind == SK_ONECYCLE && s->e >= s->total_steps)
        return lt_seterr(err, LT_ESTATE, "scheduler onecycle: step %ld is past total_steps=%ld", s->e + 1,
                         s->total_steps);
    long e = ++s->e;
    switch (s->kind) {
    case SK_STEP:
        if (e % s->step_size == 0) s->lr = s->lr * s->gamma;
        break;
    case SK_MULTISTEP: {
        int n = milestone_count(s, e);
        if (n) s->lr = s->lr * pow(s->gamma, n);
        break;
    }
    case SK_EXPONENTIAL: s->lr = s->lr * s->gamma; break;
    case SK_COSINE: s->lr = cosine_next(s->lr, e, s->base, s->t_max, s->eta_min); break;
    case SK_WARMUP_COSINE:
        if (e < s->warmup) {
            /* LinearLR.get_lr at its last_epoch e (1 <= e < total_iters). */
            double d = s->end_factor - s->start_factor;
            s->lr = s->lr * (1.0 + d / ((double)s->warmup * s->start_factor + (double)(e - 1) * d));
        } else if (e == s->warmup) {
            /* SequentialLR's milestone: CosineAnnealingLR._get_closed_form_lr
             * at last_epoch 0. */
            s->lr = s->eta_min + (s->base - s->eta_min) * (1 + cos(PI * 0.0 / (double)s->t_max)) / 2;
        } else {
            s->lr = cosine_next(s->lr, e - s->warmup, s->base, s->t_max, s->eta_min);
        }
        break;
    case SK_ONECYCLE: s->lr = onecycle_lr(s, e); break;
    case SK_PLATEAU: plateau_step(s, metric); break;
    }
    return LT_OK;
}

int lt_sched_override(lt_sched *s, double lr, lt_err *err) {
    if (!isfinite(lr) || lr < 0)
        return lt_seterr(err, LT_EINVAL, "scheduler override: lr %g must be finite and >= 0", lr);
    int rescale = s->kind == SK_ONECYCLE || (s->kind == SK_WARMUP_COSINE && s->e < s->warmup);
    if (rescale) {
        if (!(s->lr > 0))
            return lt_seterr(err, LT_ESTATE, "scheduler %s: cannot rescale the schedule from a current lr of %g to %g",
                             lt_sched_kind(s), s->lr, lr);
        double k = lr / s->lr;
        if (s->kind == SK_ONECYCLE) {
            s->lo *= k;
            s->hi *= k;
            s->lo_end *= k;
        }
        s->base *= k;
    }
    s->lr = lr;
    return LT_OK;
}

int lt_sched_apply(const lt_sched *s, lt_optim *o, lt_err *err) { return lt_optim_set(o, "lr", s->lr, err); }

/* ---- checkpoint state line ---- */

#define STATE_MAGIC "lt1:"

int lt_sched_state_str(const lt_sched *s, char *buf, size_t cap, lt_err *err) {
    char tmp[LT_SCHED_STATE_MAX + 64];
    int n =
        snprintf(tmp, sizeof tmp, STATE_MAGIC "%s:e=%ld,lr=%.17g,base=%.17g", lt_sched_kind(s), s->e, s->lr, s->base);
    if (s->kind == SK_ONECYCLE)
        n += snprintf(tmp + n, sizeof tmp - (size_t)n, ",lo=%.17g,hi=%.17g,lo_end=%.17g", s->lo, s->hi, s->lo_end);
    else if (s->kind == SK_PLATEAU)
        n += snprintf(tmp + n, sizeof tmp - (size_t)n, ",best=%.17g,bad=%ld,cool=%ld", s->best, s->bad, s->cool);
    if (!buf || (size_t)n + 1 > cap)
        return lt_seterr(err, LT_EINVAL, "scheduler state needs %d bytes, buffer has %zu", n + 1, buf ? cap : 0);
    memcpy(buf, tmp, (size_t)n + 1);
    return LT_OK;
}

/* Fields of the state line, by kind. */
enum { F_E, F_LR, F_BASE, F_LO, F_HI, F_LO_END, F_BEST, F_BAD, F_COOL, NFIELDS };
static const char *const field_names[NFIELDS] = {"e", "lr", "base", "lo", "hi", "lo_end", "best", "bad", "cool"};

static int field_wanted(sched_kind k, int f) {
    if (f <= F_BASE) return 1;
    if (f <= F_LO_END) return k == SK_ONECYCLE;
    return k == SK_PLATEAU;
}

static int bad_state(lt_err *err, const char *what) { return lt_seterr(err, LT_EFORMAT, "scheduler state: %s", what); }

int lt_sched_state_load(lt_sched *s, const char *str, lt_err *err) {
    char buf[LT_SCHED_STATE_MAX];
    double v[NFIELDS] = {0};
    int seen[NFIELDS] = {0};
    if (!str) return bad_state(err, "NULL string");
    size_t len = strlen(str);
    if (len >= sizeof buf) return bad_state(err, "longer than LT_SCHED_STATE_MAX");
    memcpy(buf, str, len + 1);
    size_t ml = strlen(STATE_MAGIC);
    if (strncmp(buf, STATE_MAGIC, ml) != 0) return bad_state(err, "does not start with " STATE_MAGIC);
    char *kind = buf + ml, *colon = strchr(kind, ':');
    if (!colon) return bad_state(err, "no ':' after the kind");
    *colon = '\0';
    if (strcmp(kind, lt_sched_kind(s)) != 0)
        return lt_seterr(err, LT_EFORMAT, "scheduler state is for %.32s, this scheduler is %s", kind, lt_sched_kind(s));
    for (char *p = colon + 1, *next; p; p = next) {
        next = strchr(p, ',');
        if (next) *next++ = '\0';
        char *eq = strchr(p, '=');
        if (!eq) return bad_state(err, "an entry is not key=value");
        *eq = '\0';
        int f = 0;
        while (f < NFIELDS && strcmp(field_names[f], p) != 0) f++;
        if (f == NFIELDS || !field_wanted(s->kind, f))
            return lt_seterr(err, LT_EFORMAT, "scheduler state: unexpected field '%.32s'", p);
        if (seen[f]) return lt_seterr(err, LT_EFORMAT, "scheduler state: field '%s' twice", p);
        char *end;
        v[f] = strtod(eq + 1, &end);
        if (end == eq + 1 || *end != '\0' || isnan(v[f]))
            return lt_seterr(err, LT_EFORMAT, "scheduler state: %s is not a number", p);
        seen[f] = 1;
    }
    for (int f = 0; f < NFIELDS; f++)
        if (field_wanted(s->kind, f) && !seen[f])
            return lt_seterr(err, LT_EFORMAT, "scheduler state: field '%s' missing", field_names[f]);

    /* Ranges: counts are integers >= 0, lrs finite (onecycle's last linear
     * step may be negative), bases >= 0. */
    long max_e = s->kind == SK_ONECYCLE ? s->total_steps : SCHED_INT_MAX;
    if (v[F_E] != floor(v[F_E]) || v[F_E] < 0 || v[F_E] > (double)max_e)
        return bad_state(err, "e is not a step count in range");
    if (!isfinite(v[F_LR]) || !isfinite(v[F_BASE]) || v[F_BASE] < 0) return bad_state(err, "lr or base out of range");
    if (s->kind == SK_ONECYCLE)
        for (int f = F_LO; f <= F_LO_END; f++)
            if (!isfinite(v[f]) || !(v[f] > 0)) return bad_state(err, "onecycle lrs must be finite and > 0");
    if (s->kind == SK_PLATEAU) {
        if (v[F_BAD] != floor(v[F_BAD]) || v[F_BAD] < 0 || v[F_BAD] > (double)SCHED_INT_MAX ||
            v[F_COOL] != floor(v[F_COOL]) || v[F_COOL] < 0 || v[F_COOL] > (double)s->cooldown)
            return bad_state(err, "plateau counters out of range");
    }

    s->e = (long)v[F_E];
    s->lr = v[F_LR];
    s->base = v[F_BASE];
    if (s->kind == SK_ONECYCLE) {
        s->lo = v[F_LO];
        s->hi = v[F_HI];
        s->lo_end = v[F_LO_END];
    } else if (s->kind == SK_PLATEAU) {
        s->best = v[F_BEST];
        s->bad = (long)v[F_BAD];
        s->cool = (long)v[F_COOL];
    }
    return LT_OK;
}
