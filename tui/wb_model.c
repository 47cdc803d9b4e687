/* wb_model.c: parsing the control protocol's text into the workbench's
 * picture of the run (see wb_model.h). */
#include "wb_model.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SERIES_CAP 4096

void wb_model_init(wb_model *m) {
    memset(m, 0, sizeof *m);
    snprintf(m->st.state, sizeof m->st.state, "connecting");
    double *f[] = {&m->st.epoch,   &m->st.max_epochs,    &m->st.step,       &m->st.total_steps,
                   &m->st.samples, &m->st.samples_per_s, &m->st.train_loss, &m->st.val_loss,
                   &m->st.val_acc, &m->st.test_acc,      &m->st.lr,         &m->st.elapsed,
                   &m->st.eta,     &m->st.clients};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) *f[i] = NAN;
}

void wb_model_free(wb_model *m) {
    for (int i = 0; i < WB_S_COUNT; i++) {
        free(m->series[i].x);
        free(m->series[i].y);
    }
    free(m->insp.values);
    free(m->probe.input);
    memset(m, 0, sizeof *m);
}

int wb_kv_next(const char **p, char *key, size_t kcap, const char **val, size_t *vlen) {
    while (**p) {
        const char *line = *p, *end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        *p = *end ? end + 1 : end;
        const char *eq = memchr(line, '=', (size_t)(end - line));
        if (!eq || eq == line) continue;
        size_t kl = (size_t)(eq - line);
        if (kl >= kcap) kl = kcap - 1;
        memcpy(key, line, kl);
        key[kl] = 0;
        *val = eq + 1;
        *vlen = (size_t)(end - eq - 1);
        if (*vlen && (*val)[*vlen - 1] == '\r') (*vlen)--;
        return 1;
    }
    return 0;
}

double wb_num(const char *s, size_t n) {
    char tmp[64];
    if (n == 0 || n >= sizeof tmp) return NAN;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    char *end;
    double v = strtod(tmp, &end);
    while (*end == ' ') end++;
    return end == tmp || *end ? NAN : v;
}

static void copy(char *dst, size_t cap, const char *s, size_t n) {
    if (n >= cap) n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = 0;
}

/* The next "key=value" word of a space-separated line s[0, len) from *i on:
 * key (cut to kcap - 1), the value's start and length; 0 at the end. Words
 * without '=' are passed over. */
static int word_kv_next(const char *s, size_t len, size_t *i, char *key, size_t kcap, const char **val, size_t *vlen) {
    while (*i < len) {
        while (*i < len && s[*i] == ' ') (*i)++;
        size_t j = *i;
        while (j < len && s[j] != ' ') j++;
        const char *w = s + *i, *eq = memchr(w, '=', j - *i);
        *i = j;
        if (!eq) continue;
        copy(key, kcap, w, (size_t)(eq - w));
        *val = eq + 1;
        *vlen = (size_t)(s + j - *val);
        return 1;
    }
    return 0;
}

/* Parses up to max comma-separated numbers into a new array. */
static double *num_list(const char *s, size_t n, int max, int *count) {
    int k = 1;
    for (size_t i = 0; i < n; i++) k += s[i] == ',';
    if (k > max) k = max;
    double *v = malloc((size_t)k * sizeof *v);
    *count = 0;
    if (!v) return NULL;
    size_t i = 0;
    while (i <= n && *count < k) {
        size_t j = i;
        while (j < n && s[j] != ',') j++;
        v[(*count)++] = wb_num(s + i, j - i);
        i = j + 1;
    }
    return v;
}

int wb_series_index(const char *name) {
    static const char *names[WB_S_COUNT] = {"train_loss", "val_loss", "val_acc", "lr", "samples_per_s"};
    for (int i = 0; i < WB_S_COUNT; i++)
        if (!strcmp(name, names[i])) return i;
    return -1;
}

void wb_series_add(wb_series *s, double x, double y) {
    if (!s->x) {
        s->x = malloc(SERIES_CAP * sizeof *s->x);
        s->y = malloc(SERIES_CAP * sizeof *s->y);
        if (!s->x || !s->y) {
            free(s->x);
            free(s->y);
            s->x = s->y = NULL;
            return;
        }
        s->cap = SERIES_CAP;
    }
    if (s->n == s->cap) { /* keep every other point */
        int k = 0;
        for (int i = 0; i < s->n; i += 2, k++) {
            s->x[k] = s->x[i];
            s->y[k] = s->y[i];
        }
        s->n = k;
    }
    s->x[s->n] = x;
    s->y[s->n] = y;
    s->n++;
}

void wb_model_status(wb_model *m, const char *body) {
    wb_status *st = &m->st;
    static const struct {
        const char *key;
        size_t off;
    } nums[] = {
#define F(k) {#k, offsetof(wb_status, k)}
        F(epoch),    F(max_epochs), F(step),     F(total_steps), F(samples), F(samples_per_s), F(train_loss),
        F(val_loss), F(val_acc),    F(test_acc), F(lr),          F(elapsed), F(eta),           F(clients),
#undef F
    };
    const char *p = body, *v;
    char key[48];
    size_t n;
    st->toolbox[0] = '\0';
    while (wb_kv_next(&p, key, sizeof key, &v, &n)) {
        size_t tl = strlen(st->toolbox);
        if (!strcmp(key, "grad_norm"))
            snprintf(st->toolbox + tl, sizeof st->toolbox - tl, "|g| %.*s  ", (int)(n < 12 ? n : 12), v);
        else if (!strcmp(key, "loss_scale"))
            snprintf(st->toolbox + tl, sizeof st->toolbox - tl, "scale %.*s ", (int)(n < 12 ? n : 12), v);
        else if (!strcmp(key, "skipped_steps"))
            snprintf(st->toolbox + tl, sizeof st->toolbox - tl, "(%.*s skipped)  ", (int)(n < 12 ? n : 12), v);
        else if (!strcmp(key, "precision"))
            snprintf(st->toolbox + tl, sizeof st->toolbox - tl, "%.*s", (int)(n < 16 ? n : 16), v);
        else if (!strcmp(key, "state"))
            copy(st->state, sizeof st->state, v, n);
        else if (!strcmp(key, "experiment"))
            copy(st->experiment, sizeof st->experiment, v, n);
        else if (!strcmp(key, "device"))
            copy(st->device, sizeof st->device, v, n);
        else if (!strcmp(key, "run_dir"))
            copy(st->run_dir, sizeof st->run_dir, v, n);
        else
            for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
                if (!strcmp(key, nums[i].key)) *(double *)((char *)st + nums[i].off) = wb_num(v, n);
    }
    st->valid = 1;
    m->version++;
}

void wb_model_hparams(wb_model *m, const char *body) {
    const char *p = body, *v;
    char key[WB_NAME];
    size_t n;
    m->nhp = 0;
    while (wb_kv_next(&p, key, sizeof key, &v, &n) && m->nhp < WB_HPARAMS_MAX) {
        wb_hparam *h = &m->hp[m->nhp++];
        copy(h->name, sizeof h->name, key, strlen(key));
        copy(h->value, sizeof h->value, v, n);
    }
    m->version++;
}

const char *wb_model_hparam(const wb_model *m, const char *name) {
    for (int i = 0; i < m->nhp; i++)
        if (!strcmp(m->hp[i].name, name)) return m->hp[i].value;
    return NULL;
}

static void add_change(wb_model *m, const wb_change *c) {
    if (m->nch == WB_CHANGES_MAX) {
        memmove(m->ch, m->ch + 1, (WB_CHANGES_MAX - 1) * sizeof *m->ch);
        m->nch--;
    }
    m->ch[m->nch++] = *c;
}

/* "step=<s> time=<t> name=<n> old=<o> new=<v> client=<id>" (space-separated). */
static void parse_change(wb_model *m, const char *s, size_t len) {
    wb_change c;
    memset(&c, 0, sizeof c);
    c.step = c.time = NAN;
    size_t i = 0, vl;
    char k[16];
    const char *v;
    while (word_kv_next(s, len, &i, k, sizeof k, &v, &vl)) {
        if (!strcmp(k, "step"))
            c.step = wb_num(v, vl);
        else if (!strcmp(k, "time"))
            c.time = wb_num(v, vl);
        else if (!strcmp(k, "name"))
            copy(c.name, sizeof c.name, v, vl);
        else if (!strcmp(k, "old"))
            copy(c.old, sizeof c.old, v, vl);
        else if (!strcmp(k, "new"))
            copy(c.now, sizeof c.now, v, vl);
        else if (!strcmp(k, "client"))
            copy(c.client, sizeof c.client, v, vl);
    }
    if (c.name[0]) add_change(m, &c);
}

void wb_model_changes(wb_model *m, const char *body) {
    const char *p = body, *v;
    char key[16];
    size_t n;
    m->nch = 0;
    while (wb_kv_next(&p, key, sizeof key, &v, &n))
        if (!strcmp(key, "change")) parse_change(m, v, n);
    m->version++;
}

/* "<series> <step> <value>" */
static void parse_point(wb_model *m, const char *s, size_t n) {
    char buf[128], name[32];
    double x, y;
    copy(buf, sizeof buf, s, n);
    char xs[40], ys[40];
    if (sscanf(buf, "%31s %39s %39s", name, xs, ys) != 3) return;
    int si = wb_series_index(name);
    x = wb_num(xs, strlen(xs));
    y = wb_num(ys, strlen(ys));
    if (si < 0 || !isfinite(x)) return;
    wb_series_add(&m->series[si], x, y);
    if (si == WB_S_LR) m->st.lr = y;
}

void wb_model_history(wb_model *m, const char *body) {
    const char *p = body, *v;
    char key[16];
    size_t n;
    for (int i = 0; i < WB_S_COUNT; i++) m->series[i].n = 0;
    m->nch = 0;
    while (wb_kv_next(&p, key, sizeof key, &v, &n)) {
        if (!strcmp(key, "point"))
            parse_point(m, v, n);
        else if (!strcmp(key, "change"))
            parse_change(m, v, n);
    }
    m->version++;
}

/* "layer=<name> type=<T> shape=<s> params=<n> mean= ... update_ratio=" on one line. */
static void parse_layer(wb_layer *l, const char *s, size_t len) {
    static const struct {
        const char *key;
        size_t off;
    } nums[] = {
#define F(k) {#k, offsetof(wb_layer, k)}
        F(params), F(mean),      F(std),         F(min),       F(max),
        F(zeros),  F(nonfinite), F(weight_norm), F(grad_norm), F(update_ratio),
#undef F
    };
    memset(l, 0, sizeof *l);
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) *(double *)((char *)l + nums[i].off) = NAN;
    size_t i = 0, vl;
    char k[32];
    const char *v;
    while (word_kv_next(s, len, &i, k, sizeof k, &v, &vl)) {
        if (!strcmp(k, "layer"))
            copy(l->name, sizeof l->name, v, vl);
        else if (!strcmp(k, "type"))
            copy(l->type, sizeof l->type, v, vl);
        else if (!strcmp(k, "shape"))
            copy(l->shape, sizeof l->shape, v, vl);
        else
            for (size_t q = 0; q < sizeof nums / sizeof nums[0]; q++)
                if (!strcmp(k, nums[q].key)) *(double *)((char *)l + nums[q].off) = wb_num(v, vl);
    }
}

void wb_model_layers(wb_model *m, const char *body) {
    m->nly = 0;
    for (const char *p = body; *p && m->nly < WB_LAYERS_MAX;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 6 && !memcmp(p, "layer=", 6)) {
            parse_layer(&m->ly[m->nly], p, len);
            if (m->ly[m->nly].name[0]) m->nly++;
        }
        p += len + (end != NULL);
    }
    m->version++;
}

void wb_model_inspect(wb_model *m, const char *body) {
    wb_inspect *in = &m->insp;
    free(in->values);
    memset(in, 0, sizeof *in);
    in->mean = in->std = in->min = in->max = in->zeros = in->nonfinite = in->hist_min = in->hist_max = NAN;
    const char *p = body, *v;
    char key[32];
    size_t n;
    while (wb_kv_next(&p, key, sizeof key, &v, &n)) {
        double x = wb_num(v, n);
        if (!strcmp(key, "layer"))
            copy(in->layer, sizeof in->layer, v, n);
        else if (!strcmp(key, "what"))
            copy(in->what, sizeof in->what, v, n);
        else if (!strcmp(key, "source"))
            copy(in->source, sizeof in->source, v, n);
        else if (!strcmp(key, "shape"))
            copy(in->shape, sizeof in->shape, v, n);
        else if (!strcmp(key, "full_shape"))
            copy(in->full_shape, sizeof in->full_shape, v, n);
        else if (!strcmp(key, "sample"))
            in->sample = isfinite(x) ? (int)x : 0;
        else if (!strcmp(key, "channel"))
            in->channel = isfinite(x) ? (int)x : 0;
        else if (!strcmp(key, "mean"))
            in->mean = x;
        else if (!strcmp(key, "std"))
            in->std = x;
        else if (!strcmp(key, "min"))
            in->min = x;
        else if (!strcmp(key, "max"))
            in->max = x;
        else if (!strcmp(key, "zeros"))
            in->zeros = x;
        else if (!strcmp(key, "nonfinite"))
            in->nonfinite = x;
        else if (!strcmp(key, "hist_min"))
            in->hist_min = x;
        else if (!strcmp(key, "hist_max"))
            in->hist_max = x;
        else if (!strcmp(key, "truncated"))
            in->truncated = x == 1;
        else if (!strcmp(key, "map_h"))
            in->map_h = isfinite(x) && x > 0 && x < 4096 ? (int)x : 0;
        else if (!strcmp(key, "map_w"))
            in->map_w = isfinite(x) && x > 0 && x < 4096 ? (int)x : 0;
        else if (!strcmp(key, "hist")) {
            int k;
            double *h = num_list(v, n, 20, &k);
            if (h) {
                memcpy(in->hist, h, (size_t)k * sizeof *h);
                in->nhist = k;
                free(h);
            }
        } else if (!strcmp(key, "values")) {
            free(in->values);
            in->values = num_list(v, n, 1 << 16, &in->nvalues);
        }
    }
    if ((long)in->map_h * in->map_w > in->nvalues) in->map_h = in->map_w = 0;
    in->valid = 1;
    m->version++;
}

void wb_model_probe(wb_model *m, const char *body) {
    wb_probe *pr = &m->probe;
    free(pr->input);
    memset(pr, 0, sizeof *pr);
    pr->label = pr->pred = -1;
    pr->prob_sum = NAN;
    const char *p = body, *v;
    char key[32];
    size_t n;
    while (wb_kv_next(&p, key, sizeof key, &v, &n)) {
        double x = wb_num(v, n);
        if (!strcmp(key, "source"))
            copy(pr->source, sizeof pr->source, v, n);
        else if (!strcmp(key, "label"))
            pr->label = isfinite(x) ? (int)x : -1;
        else if (!strcmp(key, "pred"))
            pr->pred = isfinite(x) ? (int)x : -1;
        else if (!strcmp(key, "label_name"))
            copy(pr->label_name, sizeof pr->label_name, v, n);
        else if (!strcmp(key, "pred_name"))
            copy(pr->pred_name, sizeof pr->pred_name, v, n);
        else if (!strcmp(key, "prob_sum"))
            pr->prob_sum = x;
        else if (!strcmp(key, "input_shape"))
            copy(pr->input_shape, sizeof pr->input_shape, v, n);
        else if (!strcmp(key, "layers"))
            copy(pr->layers, sizeof pr->layers, v, n);
        else if (!strcmp(key, "input")) {
            free(pr->input);
            pr->input = num_list(v, n, 1 << 16, &pr->ninput);
        } else if (!strcmp(key, "top")) {
            /* "<class>:<prob>,<class>:<prob>,..." */
            size_t i = 0;
            while (i < n && pr->ntop < WB_TOPK) {
                size_t j = i;
                while (j < n && v[j] != ',') j++;
                const char *colon = NULL;
                for (size_t q = j; q > i; q--)
                    if (v[q - 1] == ':') {
                        colon = v + q - 1;
                        break;
                    }
                if (colon) {
                    copy(pr->top[pr->ntop].cls, WB_NAME, v + i, (size_t)(colon - (v + i)));
                    pr->top[pr->ntop].prob = wb_num(colon + 1, (size_t)(v + j - colon - 1));
                    pr->ntop++;
                }
                i = j + 1;
            }
        }
    }
    /* The image is the last two dimensions of the shape ("1x28x28"), or a
     * square when the input is flat (784). */
    int d[8], nd = 0;
    for (const char *s = pr->input_shape; *s && nd < 8;) {
        d[nd++] = atoi(s);
        s = strchr(s, 'x');
        if (!s) break;
        s++;
    }
    if (nd >= 2) {
        pr->in_h = d[nd - 2];
        pr->in_w = d[nd - 1];
    } else if (nd == 1) {
        int r = (int)lround(sqrt((double)d[0]));
        if (r * r == d[0]) pr->in_h = pr->in_w = r;
    }
    if (pr->in_h <= 0 || pr->in_w <= 0 || (long)pr->in_h * pr->in_w > pr->ninput) pr->in_h = pr->in_w = 0;
    pr->valid = 1;
    m->version++;
}

void wb_model_event(wb_model *m, const char *text) {
    if (!strncmp(text, "point ", 6)) {
        parse_point(m, text + 6, strlen(text + 6));
    } else if (!strncmp(text, "state ", 6)) {
        copy(m->st.state, sizeof m->st.state, text + 6, strcspn(text + 6, " \n"));
    } else if (!strncmp(text, "hparam ", 7)) {
        /* "hparam <name> <old> -> <new> step=<step> client=<id>" */
        char name[WB_NAME], old[32], now[32], rest[64] = "";
        if (sscanf(text + 7, "%63s %31s -> %31s %63[^\n]", name, old, now, rest) >= 3) {
            wb_change c;
            memset(&c, 0, sizeof c);
            c.step = c.time = NAN;
            snprintf(c.name, sizeof c.name, "%s", name);
            snprintf(c.old, sizeof c.old, "%s", old);
            snprintf(c.now, sizeof c.now, "%s", now);
            char *s = strstr(rest, "step=");
            if (s) c.step = strtod(s + 5, NULL);
            s = strstr(rest, "client=");
            if (s) snprintf(c.client, sizeof c.client, "%.*s", (int)strcspn(s + 7, " "), s + 7);
            add_change(m, &c);
            for (int i = 0; i < m->nhp; i++)
                if (!strcmp(m->hp[i].name, name)) snprintf(m->hp[i].value, sizeof m->hp[i].value, "%s", now);
            wb_model_log(m, 0, "%s", text);
        }
    } else if (!strncmp(text, "log ", 4)) {
        wb_model_log(m, 0, "%s", text + 4);
    } else {
        wb_model_log(m, 0, "%s", text);
    }
    m->version++;
}

void wb_model_log(wb_model *m, int level, const char *fmt, ...) {
    int slot;
    if (m->log_n < WB_LOG_MAX) {
        slot = (m->log_head + m->log_n) % WB_LOG_MAX;
        m->log_n++;
    } else {
        slot = m->log_head;
        m->log_head = (m->log_head + 1) % WB_LOG_MAX;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->log[slot].text, WB_LOG_LINE, fmt, ap);
    va_end(ap);
    for (char *c = m->log[slot].text; *c; c++)
        if ((unsigned char)*c < 0x20) *c = ' ';
    m->log[slot].level = level;
    m->version++;
}

const wb_logline *wb_model_log_line(const wb_model *m, int i) {
    if (i < 0 || i >= m->log_n) return NULL;
    return &m->log[(m->log_head + m->log_n - 1 - i) % WB_LOG_MAX];
}
