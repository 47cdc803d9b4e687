/* Scheduler spec strings ("kind:key=value,...", see lathe/sched.h) parsed into
 * an lt_sched's hyperparameters, with every value range-checked. The spec
 * comes from a person (command line, workbench), so every message names the
 * kind, key and value at fault. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim/sched_impl.h"

#define MAX_ITEMS 32

typedef struct item {
    const char *key, *val;
} item;

typedef struct kind_desc {
    const char *name;
    sched_kind kind;
    const char *keys[10]; /* kind-specific keys, NULL-terminated */
} kind_desc;

static const kind_desc kinds[] = {
    {"step", SK_STEP, {"step_size", "gamma", NULL}},
    {"multistep", SK_MULTISTEP, {"milestones", "gamma", NULL}},
    {"exponential", SK_EXPONENTIAL, {"gamma", NULL}},
    {"cosine", SK_COSINE, {"t_max", "eta_min", NULL}},
    {"warmup_cosine", SK_WARMUP_COSINE, {"warmup", "start_factor", "end_factor", "t_max", "eta_min", NULL}},
    {"onecycle",
     SK_ONECYCLE,
     {"max_lr", "total_steps", "epochs", "steps_per_epoch", "pct_start", "anneal_strategy", "div_factor",
      "final_div_factor", "three_phase", NULL}},
    {"plateau",
     SK_PLATEAU,
     {"mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr", "eps", NULL}},
};
#define NKINDS ((int)(sizeof kinds / sizeof kinds[0]))

static const char *const common_keys[] = {"interval", "frequency", "monitor", NULL};

const char *lt_sched_kind_name_(sched_kind k) {
    for (int i = 0; i < NKINDS; i++)
        if (kinds[i].kind == k) return kinds[i].name;
    return "?";
}

/* Parsing context: the kind's name for messages and the key=value items. */
typedef struct ctx {
    const char *kind;
    item items[MAX_ITEMS];
    int n;
    lt_err *err;
} ctx;

static char *trim(char *s) {
    while (*s && isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

static item *find(ctx *c, const char *key) {
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->items[i].key, key) == 0) return &c->items[i];
    return NULL;
}

static int parse_double(ctx *c, const char *key, const char *val, double *out) {
    char *end;
    double v = strtod(val, &end);
    if (end == val || *end != '\0' || !isfinite(v))
        return lt_seterr(c->err, LT_EINVAL, "scheduler %s: %s=%s is not a finite number", c->kind, key, val);
    *out = v;
    return LT_OK;
}

/* A number in [lo, hi]; absent -> def (or an error when required). */
static int get_num(ctx *c, const char *key, int required, double def, double lo, double hi, int lo_open, int hi_open,
                   double *out) {
    item *it = find(c, key);
    if (!it) {
        if (required) return lt_seterr(c->err, LT_EINVAL, "scheduler %s needs %s=", c->kind, key);
        *out = def;
        return LT_OK;
    }
    double v = 0;
    int rc = parse_double(c, key, it->val, &v);
    if (rc) return rc;
    if (v < lo || v > hi || (lo_open && v == lo) || (hi_open && v == hi))
        return lt_seterr(c->err, LT_EINVAL, "scheduler %s: %s=%s is out of range (must be in %c%g, %g%c)", c->kind, key,
                         it->val, lo_open ? '(' : '[', lo, hi, hi_open ? ')' : ']');
    *out = v;
    return LT_OK;
}

static int check_int(ctx *c, const char *key, const char *val, double v, long lo, long *out) {
    if (v != floor(v) || v < (double)lo || v > (double)SCHED_INT_MAX)
        return lt_seterr(c->err, LT_EINVAL, "scheduler %s: %s=%s must be an integer in [%ld, %ld]", c->kind, key, val,
                         lo, SCHED_INT_MAX);
    *out = (long)v;
    return LT_OK;
}

static int get_int(ctx *c, const char *key, int required, long def, long lo, long *out) {
    item *it = find(c, key);
    if (!it) {
        if (required) return lt_seterr(c->err, LT_EINVAL, "scheduler %s needs %s=", c->kind, key);
        *out = def;
        return LT_OK;
    }
    double v = 0;
    int rc = parse_double(c, key, it->val, &v);
    return rc ? rc : check_int(c, key, it->val, v, lo, out);
}

/* One of two words; *out = 0 for a (or absent), 1 for b. */
static int get_word(ctx *c, const char *key, const char *a, const char *b, int *out) {
    item *it = find(c, key);
    *out = 0;
    if (!it || strcmp(it->val, a) == 0) return LT_OK;
    if (strcmp(it->val, b) == 0) {
        *out = 1;
        return LT_OK;
    }
    return lt_seterr(c->err, LT_EINVAL, "scheduler %s: %s=%s is not %s or %s", c->kind, key, it->val, a, b);
}

static int get_milestones(ctx *c, lt_sched *s) {
    item *it = find(c, "milestones");
    if (!it) return lt_seterr(c->err, LT_EINVAL, "scheduler %s needs milestones= (e.g. milestones=30;80)", c->kind);
    char buf[SCHED_SPEC_MAX];
    snprintf(buf, sizeof buf, "%s", it->val);
    s->nmilestones = 0;
    for (char *p = buf, *next; p; p = next) {
        next = strchr(p, ';');
        if (next) *next++ = '\0';
        char *tok = trim(p);
        double v = 0;
        long m = 0;
        if (s->nmilestones == SCHED_MAX_MILESTONES)
            return lt_seterr(c->err, LT_EINVAL, "scheduler %s: more than %d milestones", c->kind, SCHED_MAX_MILESTONES);
        int rc = parse_double(c, "milestones", tok, &v);
        if (!rc) rc = check_int(c, "milestones", tok, v, 0, &m);
        if (rc) return rc;
        if (s->nmilestones > 0 && m < s->milestones[s->nmilestones - 1])
            return lt_seterr(c->err, LT_EINVAL, "scheduler %s: milestones=%s must be non-decreasing", c->kind, it->val);
        s->milestones[s->nmilestones++] = m;
    }
    return LT_OK;
}

static int valid_monitor(const char *m) {
    size_t n = strlen(m);
    if (n == 0 || n >= SCHED_MONITOR_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)m[i]) && !strchr("_./-", m[i])) return 0;
    return 1;
}

static int parse_common(ctx *c, lt_sched *s) {
    long freq;
    int rc = get_word(c, "interval", "epoch", "step", &s->interval);
    if (!rc) rc = get_int(c, "frequency", 0, 1, 1, &freq);
    if (rc) return rc;
    if (freq > 1000000000L)
        return lt_seterr(c->err, LT_EINVAL, "scheduler %s: frequency=%ld is too large", c->kind, freq);
    s->frequency = (int)freq;
    item *it = find(c, "monitor");
    const char *mon = it ? it->val : s->kind == SK_PLATEAU ? "val_loss" : "";
    if (it && !valid_monitor(mon))
        return lt_seterr(c->err, LT_EINVAL, "scheduler %s: monitor=%s must be 1-%d letters, digits or _ . / -", c->kind,
                         mon, SCHED_MONITOR_MAX - 1);
    snprintf(s->monitor, sizeof s->monitor, "%s", mon);
    return LT_OK;
}

/* OneCycleLR's phase boundaries, and a refusal where PyTorch would divide by
 * zero (a phase of length 0 that some step 0..total_steps reaches). */
static int onecycle_phases(ctx *c, lt_sched *s) {
    double t = (double)s->total_steps;
    if (s->three_phase) {
        s->nphases = 3;
        s->phase_end[0] = s->pct_start * t - 1;
        s->phase_end[1] = 2 * s->pct_start * t - 2;
        s->phase_end[2] = t - 1;
    } else {
        s->nphases = 2;
        s->phase_end[0] = s->pct_start * t - 1;
        s->phase_end[1] = t - 1;
    }
    double start = 0.0;
    for (int i = 0; i < s->nphases; i++) {
        if (s->phase_end[i] - start == 0.0)
            return lt_seterr(c->err, LT_EINVAL,
                             "scheduler %s: pct_start=%g with total_steps=%ld gives phase %d no steps "
                             "(PyTorch divides by zero there)",
                             c->kind, s->pct_start, s->total_steps, i + 1);
        start = s->phase_end[i];
    }
    return LT_OK;
}

static int parse_onecycle(ctx *c, lt_sched *s, double base_lr) {
    long ep = 0, spe = 0;
    int has_total = find(c, "total_steps") != NULL;
    int has_ep = find(c, "epochs") != NULL, has_spe = find(c, "steps_per_epoch") != NULL;
    int rc;
    if (has_total && (has_ep || has_spe))
        return lt_seterr(c->err, LT_EINVAL, "scheduler %s: give total_steps or epochs and steps_per_epoch, not both",
                         c->kind);
    if (!has_total && !(has_ep && has_spe))
        return lt_seterr(c->err, LT_EINVAL, "scheduler %s needs total_steps= (or epochs= and steps_per_epoch=)",
                         c->kind);
    if (has_total) {
        if ((rc = get_int(c, "total_steps", 1, 0, 1, &s->total_steps))) return rc;
    } else {
        if ((rc = get_int(c, "epochs", 1, 0, 1, &ep)) || (rc = get_int(c, "steps_per_epoch", 1, 0, 1, &spe))) return rc;
        if ((double)ep * (double)spe > (double)SCHED_INT_MAX)
            return lt_seterr(c->err, LT_EINVAL, "scheduler %s: epochs*steps_per_epoch is too large", c->kind);
        s->total_steps = ep * spe;
    }
    double max_lr;
    if ((rc = get_num(c, "max_lr", 0, base_lr, 0, HUGE_VAL, 1, 0, &max_lr))) return rc;
    if (!(max_lr > 0))
        return lt_seterr(c->err, LT_EINVAL,
                         "scheduler %s: max_lr defaults to the lr, which is 0; give max_lr=", c->kind);
    if ((rc = get_num(c, "pct_start", 0, 0.3, 0, 1, 0, 0, &s->pct_start)) ||
        (rc = get_num(c, "div_factor", 0, 25.0, 0, HUGE_VAL, 1, 0, &s->div_factor)) ||
        (rc = get_num(c, "final_div_factor", 0, 1e4, 0, HUGE_VAL, 1, 0, &s->final_div_factor)) ||
        (rc = get_word(c, "anneal_strategy", "cos", "linear", &s->anneal_linear)))
        return rc;
    item *tp = find(c, "three_phase");
    s->three_phase = 0;
    if (tp) {
        if (!strcmp(tp->val, "1") || !strcmp(tp->val, "true"))
            s->three_phase = 1;
        else if (strcmp(tp->val, "0") && strcmp(tp->val, "false"))
            return lt_seterr(c->err, LT_EINVAL, "scheduler %s: three_phase=%s is not 0, 1, true or false", c->kind,
                             tp->val);
    }
    /* As OneCycleLR.__init__: initial_lr = max_lr / div_factor, min_lr =
     * initial_lr / final_div_factor. */
    s->hi = max_lr;
    s->lo = max_lr / s->div_factor;
    s->lo_end = s->lo / s->final_div_factor;
    return onecycle_phases(c, s);
}

static int parse_cosine(ctx *c, lt_sched *s) {
    int rc = get_int(c, "t_max", 1, 0, 1, &s->t_max);
    return rc ? rc : get_num(c, "eta_min", 0, 0.0, 0, HUGE_VAL, 0, 0, &s->eta_min);
}

static int parse_kind(ctx *c, lt_sched *s, double base_lr) {
    int rc = LT_OK;
    switch (s->kind) {
    case SK_STEP:
        if ((rc = get_int(c, "step_size", 1, 0, 1, &s->step_size))) return rc;
        return get_num(c, "gamma", 0, 0.1, 0, HUGE_VAL, 0, 0, &s->gamma);
    case SK_MULTISTEP:
        if ((rc = get_milestones(c, s))) return rc;
        return get_num(c, "gamma", 0, 0.1, 0, HUGE_VAL, 0, 0, &s->gamma);
    case SK_EXPONENTIAL: return get_num(c, "gamma", 1, 0, 0, HUGE_VAL, 0, 0, &s->gamma);
    case SK_WARMUP_COSINE:
        if ((rc = get_int(c, "warmup", 1, 0, 0, &s->warmup)) ||
            (rc = get_num(c, "start_factor", 0, 1.0 / 3, 0, 1, 1, 0, &s->start_factor)) ||
            (rc = get_num(c, "end_factor", 0, 1.0, 0, 1, 0, 0, &s->end_factor)))
            return rc;
        return parse_cosine(c, s);
    case SK_COSINE: return parse_cosine(c, s);
    case SK_ONECYCLE: return parse_onecycle(c, s, base_lr);
    case SK_PLATEAU:
        if ((rc = get_word(c, "mode", "min", "max", &s->mode_max)) ||
            (rc = get_word(c, "threshold_mode", "rel", "abs", &s->thr_abs)) ||
            (rc = get_num(c, "factor", 0, 0.1, 0, 1, 0, 1, &s->factor)) ||
            (rc = get_int(c, "patience", 0, 10, 0, &s->patience)) ||
            (rc = get_num(c, "threshold", 0, 1e-4, 0, HUGE_VAL, 0, 0, &s->threshold)) ||
            (rc = get_int(c, "cooldown", 0, 0, 0, &s->cooldown)) ||
            (rc = get_num(c, "min_lr", 0, 0.0, 0, HUGE_VAL, 0, 0, &s->min_lr)))
            return rc;
        return get_num(c, "eps", 0, 1e-8, 0, HUGE_VAL, 0, 0, &s->eps);
    }
    return rc;
}

static int known_key(const kind_desc *kd, const char *key) {
    for (int i = 0; common_keys[i]; i++)
        if (!strcmp(common_keys[i], key)) return 1;
    for (int i = 0; kd->keys[i]; i++)
        if (!strcmp(kd->keys[i], key)) return 1;
    return 0;
}

static int unknown_key(ctx *c, const kind_desc *kd, const char *key) {
    char list[256];
    size_t len = 0;
    list[0] = '\0';
    for (int i = 0; kd->keys[i] && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s ", kd->keys[i]);
    for (int i = 0; common_keys[i] && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", common_keys[i], common_keys[i + 1] ? " " : "");
    return lt_seterr(c->err, LT_ENOTFOUND, "scheduler %s has no key '%s' (keys: %s)", c->kind, key, list);
}

int lt_sched_parse_spec_(lt_sched *s, const char *spec, double base_lr, lt_err *err) {
    char buf[SCHED_SPEC_MAX];
    ctx c = {.kind = "", .n = 0, .err = err};
    if (!spec) return lt_seterr(err, LT_EINVAL, "scheduler spec is NULL");
    if (strlen(spec) >= sizeof buf)
        return lt_seterr(err, LT_EINVAL, "scheduler spec is longer than %d bytes", SCHED_SPEC_MAX - 1);
    memcpy(buf, spec, strlen(spec) + 1);

    char *colon = strchr(buf, ':');
    if (colon) *colon = '\0';
    char *kname = trim(buf);
    const kind_desc *kd = NULL;
    for (int i = 0; i < NKINDS; i++)
        if (!strcmp(kinds[i].name, kname)) kd = &kinds[i];
    if (!kd) {
        char list[128];
        size_t len = 0;
        for (int i = 0; i < NKINDS; i++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? " " : "", kinds[i].name);
        if (!kname[0]) return lt_seterr(err, LT_EINVAL, "scheduler spec has no kind (kinds: %s)", list);
        return lt_seterr(err, LT_ENOTFOUND, "unknown scheduler '%s' (kinds: %s)", kname, list);
    }
    c.kind = kd->name;
    s->kind = kd->kind;

    /* Split "k=v,k=v" in place; "T_max" is PyTorch's spelling of t_max. */
    char *rest = colon ? colon + 1 : NULL;
    if (rest && trim(rest)[0] == '\0') rest = NULL;
    for (char *p = rest, *next; p; p = next) {
        next = strchr(p, ',');
        if (next) *next++ = '\0';
        char *eq = strchr(p, '=');
        if (!eq) return lt_seterr(err, LT_EINVAL, "scheduler %s: '%s' is not key=value", c.kind, trim(p));
        *eq = '\0';
        char *key = trim(p), *val = trim(eq + 1);
        if (!strcmp(key, "T_max")) key = "t_max";
        if (!key[0]) return lt_seterr(err, LT_EINVAL, "scheduler %s: empty key before '=%s'", c.kind, val);
        if (!known_key(kd, key)) return unknown_key(&c, kd, key);
        if (!val[0]) return lt_seterr(err, LT_EINVAL, "scheduler %s: %s= has no value", c.kind, key);
        for (int i = 0; i < c.n; i++)
            if (!strcmp(c.items[i].key, key))
                return lt_seterr(err, LT_EINVAL, "scheduler %s: %s given twice", c.kind, key);
        if (c.n == MAX_ITEMS) return lt_seterr(err, LT_EINVAL, "scheduler %s: too many keys", c.kind);
        c.items[c.n++] = (item){key, val};
    }
    int rc = parse_kind(&c, s, base_lr);
    return rc ? rc : parse_common(&c, s);
}
