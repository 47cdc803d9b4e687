/* wb_model.c: the control protocol's replies, events and snapshots, read
 * with the decoders of lathe/ctl_proto.h, into the workbench's picture of
 * the run (see wb_model.h). */
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
    double *f[] = {&m->st.epoch,     &m->st.max_epochs,    &m->st.step,       &m->st.total_steps,
                   &m->st.samples,   &m->st.samples_per_s, &m->st.train_loss, &m->st.val_loss,
                   &m->st.val_acc,   &m->st.test_acc,      &m->st.lr,         &m->st.elapsed,
                   &m->st.eta,       &m->st.clients,       &m->st.batch,      &m->st.batches,
                   &m->st.test_loss, &m->st.paused};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) *f[i] = NAN;
}

void wb_model_free(wb_model *m) {
    for (int i = 0; i < WB_S_COUNT; i++) {
        free(m->series[i].x);
        free(m->series[i].y);
        free(m->parent[i].x);
        free(m->parent[i].y);
    }
    free(m->insp.values);
    free(m->probe.input);
    free(m->lrf.lr);
    free(m->lrf.smoothed);
    memset(m, 0, sizeof *m);
}

static void copy(char *dst, size_t cap, const char *s, size_t n) {
    if (n >= cap) n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = 0;
}

static void copy_str(char *dst, size_t cap, const char *s) { copy(dst, cap, s, strlen(s)); }

static double long_or_nan(long v) { return v < 0 ? NAN : (double)v; }

/* A body or event that did not decode: the decoder's one line, once (a
 * snapshot that keeps failing would fill the log). */
static void decode_failed(wb_model *m, const lt_err *err) {
    const wb_logline *last = wb_model_log_line(m, 0);
    if (!last || strncmp(last->text, err->msg, WB_LOG_LINE - 1)) wb_model_log(m, 2, "%s", err->msg);
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
    lt_ctl_status d;
    lt_err err = {0};
    if (lt_ctl_status_decode(body, &d, &err)) {
        decode_failed(m, &err);
        return;
    }
    wb_status *st = &m->st;
    copy_str(st->state, sizeof st->state, d.state);
    copy_str(st->experiment, sizeof st->experiment, d.experiment);
    copy_str(st->device, sizeof st->device, d.device);
    copy_str(st->run_dir, sizeof st->run_dir, d.run_dir);
    st->epoch = long_or_nan(d.epoch), st->max_epochs = long_or_nan(d.max_epochs);
    st->step = long_or_nan(d.step), st->total_steps = long_or_nan(d.total_steps);
    st->samples = long_or_nan(d.samples), st->clients = long_or_nan(d.clients);
    st->samples_per_s = d.samples_per_s, st->train_loss = d.train_loss, st->val_loss = d.val_loss;
    st->val_acc = d.val_acc, st->test_acc = d.test_acc, st->lr = d.lr, st->elapsed = d.elapsed, st->eta = d.eta;
    st->batch = long_or_nan(d.batch), st->batches = long_or_nan(d.batches);
    st->test_loss = d.test_loss, st->paused = d.paused;
    st->received = lt_now();
    /* "|g| 1.23  scale 32768 (2 skipped)  bf16-mixed: cpu amx-bf16" */
    size_t o = 0;
    st->toolbox[0] = '\0';
    if (!isnan(d.grad_norm)) o += (size_t)snprintf(st->toolbox + o, sizeof st->toolbox - o, "|g| %.4g  ", d.grad_norm);
    if (!isnan(d.loss_scale) && o < sizeof st->toolbox)
        o += (size_t)snprintf(st->toolbox + o, sizeof st->toolbox - o, "scale %.6g ", d.loss_scale);
    if (d.skipped_steps >= 0 && o < sizeof st->toolbox)
        o += (size_t)snprintf(st->toolbox + o, sizeof st->toolbox - o, "(%ld skipped)  ", d.skipped_steps);
    if (o < sizeof st->toolbox)
        snprintf(st->toolbox + o, sizeof st->toolbox - o, "%.16s%s%.48s", d.precision,
                 d.precision[0] && d.kernels[0] ? ": " : "", d.precision[0] ? d.kernels : "");
    wb_gpu *g = &st->gpu;
    memset(g, 0, sizeof *g);
    g->known = d.has_gpu;
    g->ok = d.has_gpu && !d.gpu.reason[0];
    g->index = (int)d.gpu.index;
    copy_str(g->name, sizeof g->name, d.gpu.name);
    copy_str(g->reason, sizeof g->reason, d.gpu.reason);
    g->util = d.gpu.util, g->mem_util = d.gpu.mem_util, g->mem_used = d.gpu.mem_used;
    g->mem_total = d.gpu.mem_total, g->temp = d.gpu.temp, g->power = d.gpu.power, g->power_limit = d.gpu.power_limit;
    if (!d.has_gpu) g->util = g->mem_util = g->mem_used = g->mem_total = g->temp = g->power = g->power_limit = NAN;
    st->nranks = d.nranks < WB_RANKS_MAX ? d.nranks : WB_RANKS_MAX;
    st->ranks_samples_per_s = d.ranks_samples_per_s;
    for (int i = 0; i < st->nranks; i++) {
        wb_rank *k = &st->ranks[i];
        const lt_ctl_rank *r = &d.ranks[i];
        k->rank = (int)r->rank, k->slow = (int)r->slow, k->silent = (int)r->silent;
        copy_str(k->host, sizeof k->host, r->host);
        copy_str(k->device, sizeof k->device, r->device);
        k->step = long_or_nan(r->step), k->samples_per_s = r->samples_per_s, k->age = r->age;
        k->util = r->util, k->mem_used = r->mem_used, k->mem_total = r->mem_total;
    }
    st->valid = 1;
    m->version++;
}

static int take_hparam(lt_ctl_row_kind kind, const void *row, void *user) {
    wb_model *m = user;
    const lt_ctl_hparam *h = row;
    if (m->nhp == WB_HPARAMS_MAX) return 1;
    wb_hparam *dst = &m->hp[m->nhp++];
    copy_str(dst->name, sizeof dst->name, h->name);
    copy_str(dst->value, sizeof dst->value, h->text);
    return 0;
}

/* A list reply's rows replace the table only when the whole body decodes:
 * the decoders check it all before the first row comes. */
void wb_model_hparams(wb_model *m, const char *body) {
    lt_err err = {0};
    int kept = m->nhp;
    m->nhp = 0;
    if (lt_ctl_hparams_decode(body, take_hparam, m, &err)) {
        m->nhp = kept;
        decode_failed(m, &err);
        return;
    }
    m->version++;
}

const char *wb_model_hparam(const wb_model *m, const char *name) {
    for (int i = 0; i < m->nhp; i++)
        if (!strcmp(m->hp[i].name, name)) return m->hp[i].value;
    return NULL;
}

void wb_inspect_scope(const wb_inspect *in, char *buf, size_t cap) {
    if (strcmp(in->what, "output") != 0)
        snprintf(buf, cap, "stats: the whole %s", in->what);
    else if (!strcmp(in->source, "batch"))
        snprintf(buf, cap, "stats: sample %d of the batch", in->sample);
    else
        snprintf(buf, cap, "stats: the probed input");
}

static void add_change(wb_model *m, const lt_ctl_change *d, int with_time) {
    wb_change c;
    memset(&c, 0, sizeof c);
    c.step = long_or_nan(d->step);
    c.time = with_time ? long_or_nan(d->time) : NAN;
    copy_str(c.name, sizeof c.name, d->name);
    snprintf(c.old, sizeof c.old, "%.6g", d->old_value);
    snprintf(c.now, sizeof c.now, "%.6g", d->new_value);
    snprintf(c.client, sizeof c.client, "%u", (unsigned)d->client);
    if (m->nch == WB_CHANGES_MAX) {
        memmove(m->ch, m->ch + 1, (WB_CHANGES_MAX - 1) * sizeof *m->ch);
        m->nch--;
    }
    m->ch[m->nch++] = c;
}

static void add_point(wb_model *m, const lt_ctl_point *p) {
    int si = wb_series_index(p->series);
    if (si < 0) return; /* a series this workbench does not draw */
    wb_series_add(&m->series[si], (double)p->step, p->value);
    if (si == WB_S_LR) m->st.lr = p->value;
}

/* history and changes rows; the first row clears what the body replaces */
typedef struct rows_ctx {
    wb_model *m;
    int history, started;
} rows_ctx;

static void rows_start(rows_ctx *c) {
    if (c->started) return;
    c->started = 1;
    if (c->history)
        for (int i = 0; i < WB_S_COUNT; i++) c->m->series[i].n = 0;
    c->m->nch = 0;
}

static int take_row(lt_ctl_row_kind kind, const void *row, void *user) {
    rows_ctx *c = user;
    rows_start(c);
    if (kind == LT_CTL_ROW_POINT) add_point(c->m, row);
    if (kind == LT_CTL_ROW_CHANGE) add_change(c->m, row, 1);
    return 0;
}

void wb_model_changes(wb_model *m, const char *body) {
    lt_err err = {0};
    rows_ctx c = {m, 0, 0};
    if (lt_ctl_changes_decode(body, take_row, &c, &err)) {
        decode_failed(m, &err);
        return;
    }
    rows_start(&c);
    m->version++;
}

void wb_model_history(wb_model *m, const char *body) {
    lt_err err = {0};
    rows_ctx c = {m, 1, 0};
    if (lt_ctl_history_decode(body, take_row, &c, &err)) {
        decode_failed(m, &err);
        return;
    }
    rows_start(&c);
    m->version++;
}

static int take_layer(lt_ctl_row_kind kind, const void *row, void *user) {
    wb_model *m = user;
    const lt_ctl_layer *d = row;
    if (m->nly == WB_LAYERS_MAX) return 1;
    wb_layer *l = &m->ly[m->nly++];
    copy_str(l->name, sizeof l->name, d->name);
    copy_str(l->type, sizeof l->type, d->type);
    copy_str(l->shape, sizeof l->shape, d->shape);
    l->params = (double)d->params, l->nonfinite = (double)d->nonfinite;
    l->dead = d->dead < 0 ? NAN : (double)d->dead;
    l->mean = d->mean, l->std = d->std, l->min = d->min, l->max = d->max, l->zeros = d->zeros;
    l->weight_norm = d->weight_norm, l->grad_norm = d->grad_norm, l->update_ratio = d->update_ratio;
    return 0;
}

void wb_model_layers(wb_model *m, const char *body) {
    lt_err err = {0};
    int kept = m->nly;
    m->nly = 0;
    if (lt_ctl_layers_decode(body, take_layer, m, &err)) {
        m->nly = kept;
        decode_failed(m, &err);
        return;
    }
    m->version++;
}

void wb_model_inspect(wb_model *m, const char *body) {
    lt_ctl_inspect d;
    lt_err err = {0};
    if (lt_ctl_inspect_decode(body, &d, &err)) {
        decode_failed(m, &err);
        return;
    }
    wb_inspect *in = &m->insp;
    free(in->values);
    memset(in, 0, sizeof *in);
    copy_str(in->layer, sizeof in->layer, d.layer);
    copy_str(in->what, sizeof in->what, d.what);
    copy_str(in->source, sizeof in->source, d.source);
    copy_str(in->shape, sizeof in->shape, d.shape);
    copy_str(in->full_shape, sizeof in->full_shape, d.full_shape);
    in->sample = d.sample < 0 || d.sample > 1 << 30 ? -1 : (int)d.sample;
    in->channel = d.channel < 0 || d.channel > 1 << 30 ? 0 : (int)d.channel;
    in->mean = d.mean, in->std = d.std, in->min = d.min, in->max = d.max, in->zeros = d.zeros;
    in->nonfinite = (double)d.nonfinite, in->hist_min = d.hist_min, in->hist_max = d.hist_max;
    memcpy(in->hist, d.hist, sizeof in->hist);
    in->nhist = d.nhist;
    in->map_h = d.map_h < 4096 ? (int)d.map_h : 0; /* the decoder checked the map fits the values */
    in->map_w = d.map_w < 4096 ? (int)d.map_w : 0;
    if (!in->map_h || !in->map_w) in->map_h = in->map_w = 0;
    in->truncated = d.truncated == 1;
    in->values = d.values; /* the model takes the values */
    in->nvalues = d.nvalues;
    in->valid = 1;
    m->version++;
}

void wb_model_probe(wb_model *m, const char *body) {
    lt_ctl_probe *d = malloc(sizeof *d);
    lt_err err = {0};
    if (!d) return;
    if (lt_ctl_probe_decode(body, d, &err)) {
        decode_failed(m, &err);
        free(d);
        return;
    }
    wb_probe *pr = &m->probe;
    free(pr->input);
    memset(pr, 0, sizeof *pr);
    copy_str(pr->source, sizeof pr->source, d->source);
    copy_str(pr->label_name, sizeof pr->label_name, d->label_name);
    copy_str(pr->pred_name, sizeof pr->pred_name, d->pred_name);
    copy_str(pr->input_shape, sizeof pr->input_shape, d->input_shape);
    copy_str(pr->layers, sizeof pr->layers, d->layers);
    pr->label = d->label >= 0 && d->label < 1 << 30 ? (int)d->label : -1;
    pr->pred = d->pred >= 0 && d->pred < 1 << 30 ? (int)d->pred : -1;
    pr->prob_sum = d->prob_sum;
    for (int i = 0; i < d->ntop && i < WB_TOPK; i++) {
        copy_str(pr->top[i].cls, WB_NAME, d->top[i].cls);
        pr->top[i].prob = d->top[i].prob;
        pr->ntop++;
    }
    pr->input = d->input; /* the model takes the input */
    pr->ninput = d->ninput;
    free(d);
    /* The image is the last two dimensions of the shape ("1x28x28"), or a
     * square when the input is flat (784). */
    int dim[8], nd = 0;
    for (const char *s = pr->input_shape; *s && nd < 8;) {
        dim[nd++] = atoi(s);
        s = strchr(s, 'x');
        if (!s) break;
        s++;
    }
    if (nd >= 2) {
        pr->in_h = dim[nd - 2];
        pr->in_w = dim[nd - 1];
    } else if (nd == 1) {
        int r = (int)lround(sqrt((double)dim[0]));
        if (r * r == dim[0]) pr->in_h = pr->in_w = r;
    }
    if (pr->in_h <= 0 || pr->in_w <= 0 || (long)pr->in_h * pr->in_w > pr->ninput) pr->in_h = pr->in_w = 0;
    pr->valid = 1;
    m->version++;
}

void wb_model_apply_event(wb_model *m, const lt_ctl_event *e) {
    switch (e->kind) {
    case LT_CTL_EV_POINT: add_point(m, &e->u.point); break;
    case LT_CTL_EV_STATE: copy_str(m->st.state, sizeof m->st.state, e->u.state); break;
    case LT_CTL_EV_HPARAM: {
        const lt_ctl_change *c = &e->u.hparam;
        add_change(m, c, 0);
        const wb_change *added = &m->ch[m->nch - 1];
        for (int i = 0; i < m->nhp; i++)
            if (!strcmp(m->hp[i].name, c->name)) copy_str(m->hp[i].value, sizeof m->hp[i].value, added->now);
        wb_model_log(m, 0, "hparam %s %s -> %s step=%ld client=%s", added->name, added->old, added->now, c->step,
                     added->client);
        break;
    }
    case LT_CTL_EV_ANOMALY: wb_model_log(m, 2, "ANOMALY: %s", e->u.anomaly.message); break;
    case LT_CTL_EV_LOG: wb_model_log(m, 0, "%s", e->u.log); break;
    default: break;
    }
    m->version++;
}

void wb_model_event(wb_model *m, const char *text) {
    lt_ctl_event e;
    lt_err err = {0};
    if (lt_ctl_event_decode(text, &e, &err)) {
        decode_failed(m, &err);
        return;
    }
    wb_model_apply_event(m, &e);
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

int wb_model_lrfind(wb_model *m, const char *body) {
    lt_ctl_lrfind d;
    lt_err err = {0};
    if (lt_ctl_lrfind_decode(body, &d, &err)) {
        decode_failed(m, &err);
        return -1;
    }
    wb_lrfind *f = &m->lrf;
    free(f->lr);
    free(f->smoothed);
    memset(f, 0, sizeof *f);
    f->lr = malloc((size_t)d.npoints * sizeof *f->lr + 1);
    f->smoothed = malloc((size_t)d.npoints * sizeof *f->smoothed + 1);
    if (f->lr && f->smoothed) {
        for (int i = 0; i < d.npoints; i++) f->lr[i] = d.points[i].lr, f->smoothed[i] = d.points[i].smoothed;
        f->npoints = d.npoints;
    }
    f->valid = 1;
    f->stopped_early = d.stopped_early == 1;
    f->suggested_lr = d.suggested_lr;
    copy_str(f->reason, sizeof f->reason, d.reason);
    lt_ctl_lrfind_free(&d);
    m->version++;
    return 0;
}
