/* The control protocol's reply bodies that clients read (lathe/ctl_proto.h):
 * one table of fields per reply kind and per kind of list row. A reply read
 * into one struct uses the lines layout of proto_impl.h; a list reply is one
 * row per line, `<key>=<the row's words>`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/proto_impl.h"

#define REC(name, f)                                                                                                   \
    { name, f, (int)(sizeof f / sizeof f[0]) }

/* ---- status and run state ---- */

#define S(k, t, m, fl) FIELD(lt_ctl_status, k, t, m, fl)
static const field status_fields[] = {
    S("state", FT_WORD, state, 0),
    S("experiment", FT_WORD, experiment, FF_OPT | FF_EMPTY),
    S("epoch", FT_LONG, epoch, FF_OPT),
    S("max_epochs", FT_LONG, max_epochs, FF_OPT),
    S("step", FT_LONG, step, FF_OPT),
    S("total_steps", FT_LONG, total_steps, FF_OPT),
    S("samples", FT_LONG, samples, FF_OPT),
    S("samples_per_s", FT_NUM, samples_per_s, FF_OPT),
    S("train_loss", FT_NUM, train_loss, FF_OPT),
    S("val_loss", FT_NUM, val_loss, FF_OPT),
    S("val_acc", FT_NUM, val_acc, FF_OPT),
    S("test_acc", FT_NUM, test_acc, FF_OPT),
    S("lr", FT_NUM, lr, FF_OPT),
    S("elapsed", FT_NUM, elapsed, FF_OPT),
    S("eta", FT_NUM, eta, FF_OPT),
    S("device", FT_TEXT, device, FF_OPT),
    S("clients", FT_LONG, clients, FF_OPT),
    S("run_dir", FT_TEXT, run_dir, FF_OPT),
    S("grad_norm", FT_NUM, grad_norm, FF_OPT | FF_SKIP),
    S("loss_scale", FT_NUM, loss_scale, FF_OPT | FF_SKIP),
    S("skipped_steps", FT_LONG, skipped_steps, FF_OPT | FF_SKIP),
    S("precision", FT_WORD, precision, FF_OPT | FF_SKIP),
    S("kernels", FT_TEXT, kernels, FF_OPT | FF_SKIP),
    S("batch", FT_LONG, batch, FF_OPT | FF_SKIP),
    S("batches", FT_LONG, batches, FF_OPT | FF_SKIP),
    S("test_loss", FT_NUM, test_loss, FF_OPT | FF_SKIP),
    S("paused", FT_NUM, paused, FF_OPT | FF_SKIP),
    S("ranks_samples_per_s", FT_NUM, ranks_samples_per_s, FF_OPT | FF_SKIP),
};
#undef S
static const record status_rec = REC("status", status_fields);

/* the `gpu=` line's two forms (lathe/ctl_proto.h) */
#define G(k, t, m, fl) FIELD(lt_ctl_gpu, k, t, m, fl)
static const field gpu_fields[] = {
    G("index", FT_LONG, index, 0),
    G("util", FT_NUM, util, FF_EMPTY),
    G("mem_util", FT_NUM, mem_util, FF_EMPTY),
    G("mem_used", FT_NUM, mem_used, FF_EMPTY),
    G("mem_total", FT_NUM, mem_total, FF_EMPTY),
    G("temp", FT_NUM, temp, FF_EMPTY),
    G("power", FT_NUM, power, FF_EMPTY),
    G("power_limit", FT_NUM, power_limit, FF_EMPTY),
    G("name", FT_TEXT, name, 0),
};
static const field gpu_absent_fields[] = {
    G("index", FT_LONG, index, 0),
    G("reason", FT_TEXT, reason, 0),
};
#undef G
static const record gpu_rec = REC("status: gpu", gpu_fields);
static const record gpu_absent_rec = REC("status: gpu", gpu_absent_fields);

/* a `ranks=` line (lathe/ctl_proto.h) */
#define R(k, t, m, fl) FIELD(lt_ctl_rank, k, t, m, fl)
static const field rank_fields[] = {
    R("rank", FT_LONG, rank, 0),
    R("host", FT_WORD, host, 0),
    R("step", FT_LONG, step, 0),
    R("samples_per_s", FT_NUM, samples_per_s, 0),
    R("age", FT_NUM, age, 0),
    R("util", FT_NUM, util, FF_EMPTY),
    R("mem_used", FT_NUM, mem_used, FF_EMPTY),
    R("mem_total", FT_NUM, mem_total, FF_EMPTY),
    R("slow", FT_LONG, slow, 0),
    R("silent", FT_LONG, silent, 0),
    R("device", FT_TEXT, device, 0),
};
#undef R
static const record rank_rec = REC("status: ranks", rank_fields);

static const field run_state_fields[] = {
    FIELD(lt_ctl_run_state, "state", FT_WORD, state, 0),
    FIELD(lt_ctl_run_state, "step", FT_LONG, step, 0),
};
static const record run_state_rec = REC("run state", run_state_fields);

static size_t encode_lines(const record *r, const void *st, char *buf, size_t cap) {
    writer w = {buf, cap, 0};
    lt_rec_encode_lines(r, st, &w);
    return lt_wr_done(&w);
}

size_t lt_ctl_status_encode(const lt_ctl_status *s, char *buf, size_t cap) {
    writer w = {buf, cap, 0};
    lt_rec_encode_lines(&status_rec, s, &w);
    for (int i = 0; i < s->nranks && i < LT_CTL_RANKS_MAX; i++) {
        lt_wr_str(&w, "ranks=");
        lt_rec_encode_words(&rank_rec, &s->ranks[i], &w);
        lt_wr_put(&w, "\n", 1);
    }
    if (s->has_gpu) {
        lt_wr_str(&w, "gpu=");
        lt_rec_encode_words(s->gpu.reason[0] ? &gpu_absent_rec : &gpu_rec, &s->gpu, &w);
        lt_wr_put(&w, "\n", 1);
    }
    return lt_wr_done(&w);
}

/* A `ranks=` line: in rank order, before the gpu= line, at most LT_CTL_RANKS_MAX. */
static int status_rank_line(const char *v, size_t vl, int line, lt_ctl_status *s, lt_err *err) {
    if (s->has_gpu) return lt_seterr(err, LT_EFORMAT, "status: line %d: a ranks line after the gpu line", line);
    if (s->nranks == LT_CTL_RANKS_MAX)
        return lt_seterr(err, LT_EFORMAT, "status: line %d: more than %d ranks lines", line, LT_CTL_RANKS_MAX);
    lt_ctl_rank r;
    memset(&r, 0, sizeof r);
    int rc = lt_rec_decode_words(&rank_rec, v, vl, &r, err);
    if (rc) return rc;
    if (r.rank != s->nranks)
        return lt_seterr(err, LT_EFORMAT, "status: line %d: ranks: rank %ld where rank %d was due", line, r.rank,
                         s->nranks);
    if ((r.slow != 0 && r.slow != 1) || (r.silent != 0 && r.silent != 1))
        return lt_seterr(err, LT_EFORMAT, "status: line %d: ranks: slow and silent are 0 or 1", line);
    if (!r.device[0]) return lt_seterr(err, LT_EFORMAT, "status: line %d: ranks: field 'device' is empty", line);
    s->ranks[s->nranks++] = r;
    return LT_OK;
}

/* The `gpu=` line: the form by its second word; the `ranks=` lines. */
static int status_gpu_line(const char *k, size_t kl, const char *v, size_t vl, int line, void *st, lt_err *err) {
    lt_ctl_status *s = st;
    if (kl == 5 && !memcmp(k, "ranks", 5)) return status_rank_line(v, vl, line, s, err);
    if (kl != 3 || memcmp(k, "gpu", 3))
        return lt_seterr(err, LT_EFORMAT, "status: line %d: unknown key '%s'", line, QUOTE(k, kl));
    if (s->has_gpu) return lt_seterr(err, LT_EFORMAT, "status: line %d: key 'gpu' is repeated", line);
    size_t sp = 0;
    while (sp < vl && v[sp] != ' ') sp++;
    int absent = vl - sp > 7 && !memcmp(v + sp + 1, "reason=", 7);
    lt_ctl_gpu g;
    memset(&g, 0, sizeof g);
    int rc = lt_rec_decode_words(absent ? &gpu_absent_rec : &gpu_rec, v, vl, &g, err);
    if (rc) return rc;
    if (absent && !g.reason[0]) return lt_seterr(err, LT_EFORMAT, "status: gpu: field 'reason' is empty");
    if (absent) g.util = g.mem_util = g.mem_used = g.mem_total = g.temp = g.power = g.power_limit = NAN;
    s->gpu = g;
    s->has_gpu = 1;
    return LT_OK;
}

int lt_ctl_status_decode(const char *body, lt_ctl_status *out, lt_err *err) {
    memset(out, 0, sizeof *out);
    int rc = lt_rec_decode_lines(&status_rec, body, out, status_gpu_line, err);
    if (rc) memset(&out->gpu, 0, sizeof out->gpu), out->has_gpu = 0, out->nranks = 0;
    return rc;
}

size_t lt_ctl_run_state_encode(const lt_ctl_run_state *s, char *buf, size_t cap) {
    return encode_lines(&run_state_rec, s, buf, cap);
}

int lt_ctl_run_state_decode(const char *body, lt_ctl_run_state *out, lt_err *err) {
    memset(out, 0, sizeof *out);
    return lt_rec_decode_lines(&run_state_rec, body, out, NULL, err);
}

/* ---- lr-find ---- */

static const field lrfind_fields[] = {
    FIELD(lt_ctl_lrfind, "suggested_lr", FT_NUM, suggested_lr, FF_NONE),
    FIELD(lt_ctl_lrfind, "reason", FT_TEXT, reason, FF_OPT | FF_SKIP),
    FIELD(lt_ctl_lrfind, "steps", FT_LONG, steps, 0),
    FIELD(lt_ctl_lrfind, "stopped_early", FT_LONG, stopped_early, 0),
    FIELD(lt_ctl_lrfind, "min_loss", FT_NUM, min_loss, 0),
};
static const record lrfind_rec = REC("lr-find", lrfind_fields);

#define LRFIND_POINTS_MAX 100001 /* lr-find's num_training is at most 100000 */

size_t lt_ctl_lrfind_encode(const lt_ctl_lrfind *r, char *buf, size_t cap) {
    writer w = {buf, cap, 0};
    lt_rec_encode_lines(&lrfind_rec, r, &w);
    for (int i = 0; i < r->npoints; i++) {
        lt_wr_str(&w, "point=");
        lt_wr_num(&w, r->points[i].lr);
        lt_wr_put(&w, " ", 1);
        lt_wr_num(&w, r->points[i].loss);
        lt_wr_put(&w, " ", 1);
        lt_wr_num(&w, r->points[i].smoothed);
        lt_wr_put(&w, "\n", 1);
    }
    return lt_wr_done(&w);
}

/* `point=<lr> <loss> <smoothed>` lines */
typedef struct lrfind_point {
    double lr, loss, smoothed;
} lrfind_point;
static const field lrfind_point_fields[] = {
    FIELD(lrfind_point, NULL, FT_NUM, lr, 0),
    FIELD(lrfind_point, NULL, FT_NUM, loss, 0),
    FIELD(lrfind_point, NULL, FT_NUM, smoothed, 0),
};
static const record lrfind_point_rec = REC("point", lrfind_point_fields);

static int lrfind_point_line(const char *k, size_t kl, const char *v, size_t vl, int line, void *st, lt_err *err) {
    lt_ctl_lrfind *r = st;
    if (kl != 5 || memcmp(k, "point", 5))
        return lt_seterr(err, LT_EFORMAT, "lr-find: line %d: unknown key '%s'", line, QUOTE(k, kl));
    if (r->npoints == LRFIND_POINTS_MAX)
        return lt_seterr(err, LT_EFORMAT, "lr-find: more than %d points", LRFIND_POINTS_MAX);
    lrfind_point p;
    int rc = lt_rec_decode_words(&lrfind_point_rec, v, vl, &p, err);
    if (rc) return lt_err_prefix(err, rc, "lr-find");
    if ((r->npoints & (r->npoints - 1)) == 0) { /* grow at powers of two */
        void *q = realloc(r->points, (size_t)(r->npoints ? 2 * r->npoints : 64) * sizeof *r->points);
        if (!q) return lt_seterr(err, LT_ENOMEM, "lr-find: out of memory for its points");
        r->points = q;
    }
    r->points[r->npoints].lr = p.lr;
    r->points[r->npoints].loss = p.loss;
    r->points[r->npoints++].smoothed = p.smoothed;
    return LT_OK;
}

int lt_ctl_lrfind_decode(const char *body, lt_ctl_lrfind *out, lt_err *err) {
    memset(out, 0, sizeof *out);
    int rc = lt_rec_decode_lines(&lrfind_rec, body, out, lrfind_point_line, err);
    if (!rc && out->npoints != out->steps)
        rc = lt_seterr(err, LT_EFORMAT, "lr-find: steps=%ld but %d points", out->steps, out->npoints);
    if (rc) lt_ctl_lrfind_free(out);
    return rc;
}

void lt_ctl_lrfind_free(lt_ctl_lrfind *r) {
    free(r->points);
    r->points = NULL;
    r->npoints = 0;
}

/* ---- inspect ---- */

#define I(k, t, m, fl) FIELD(lt_ctl_inspect, k, t, m, fl)
static const field inspect_fields[] = {
    I("layer", FT_WORD, layer, 0),
    I("what", FT_WORD, what, 0),
    I("source", FT_WORD, source, 0),
    I("sample", FT_LONG, sample, FF_EMPTY),
    I("channel", FT_LONG, channel, 0),
    I("shape", FT_WORD, shape, 0),
    I("full_shape", FT_WORD, full_shape, 0),
    I("mean", FT_NUM, mean, 0),
    I("std", FT_NUM, std, 0),
    I("min", FT_NUM, min, 0),
    I("max", FT_NUM, max, 0),
    I("zeros", FT_NUM, zeros, 0),
    I("nonfinite", FT_LONG, nonfinite, 0),
    I("hist_min", FT_NUM, hist_min, 0),
    I("hist_max", FT_NUM, hist_max, 0),
    {"hist", FT_NUMS, offsetof(lt_ctl_inspect, hist), sizeof(((lt_ctl_inspect *)0)->hist),
     offsetof(lt_ctl_inspect, nhist), 0},
    I("map_h", FT_LONG, map_h, FF_OPT | FF_SKIP),
    I("map_w", FT_LONG, map_w, FF_OPT | FF_SKIP),
    {"values", FT_NUMS, offsetof(lt_ctl_inspect, values), 0, offsetof(lt_ctl_inspect, nvalues), 0},
    I("truncated", FT_LONG, truncated, 0),
};
#undef I
static const record inspect_rec = REC("inspect", inspect_fields);

size_t lt_ctl_inspect_encode(const lt_ctl_inspect *r, char *buf, size_t cap) {
    return encode_lines(&inspect_rec, r, buf, cap);
}

int lt_ctl_inspect_decode(const char *body, lt_ctl_inspect *out, lt_err *err) {
    memset(out, 0, sizeof *out);
    int rc = lt_rec_decode_lines(&inspect_rec, body, out, NULL, err);
    if (rc) return rc;
    if (out->map_h == -1) out->map_h = 0;
    if (out->map_w == -1) out->map_w = 0;
    if (out->map_h < 0 || out->map_w < 0 || out->map_h > 65536 || out->map_w > 65536 ||
        out->map_h * out->map_w > out->nvalues || (!out->map_h != !out->map_w)) {
        rc = lt_seterr(err, LT_EFORMAT, "inspect: a %ldx%ld map does not fit its %d values", out->map_h, out->map_w,
                       out->nvalues);
        lt_ctl_inspect_free(out);
    }
    return rc;
}

void lt_ctl_inspect_free(lt_ctl_inspect *r) { lt_rec_free(&inspect_rec, r); }

/* ---- feed (the probe) ---- */

#define P(k, t, m, fl) FIELD(lt_ctl_probe, k, t, m, fl)
static const field probe_fields[] = {
    P("source", FT_TEXT, source, 0),
    P("label", FT_LONG, label, 0),
    P("label_name", FT_TEXT, label_name, 0),
    P("pred", FT_LONG, pred, 0),
    P("pred_name", FT_TEXT, pred_name, 0),
    /* top= goes here: see probe_top */
    P("prob_sum", FT_NUM, prob_sum, 0),
    P("input_shape", FT_WORD, input_shape, 0),
    {"input", FT_NUMS, offsetof(lt_ctl_probe, input), 0, offsetof(lt_ctl_probe, ninput), 0},
    P("layers", FT_TEXT, layers, 0),
};
#undef P
static const record probe_rec = REC("feed", probe_fields);
static const record probe_head = {"feed", probe_fields, 5}, probe_tail = {"feed", probe_fields + 5, 4};

/* top=<class>:<prob>,... best first; a class name may hold ':' (the last one
 * splits) but not ',' (written as '_'). */
size_t lt_ctl_probe_encode(const lt_ctl_probe *r, char *buf, size_t cap) {
    writer w = {buf, cap, 0};
    lt_rec_encode_lines(&probe_head, r, &w);
    lt_wr_str(&w, "top=");
    for (int i = 0; i < r->ntop && i < LT_CTL_TOPK; i++) {
        if (i) lt_wr_put(&w, ",", 1);
        for (const char *c = r->top[i].cls; *c; c++) lt_wr_put(&w, (unsigned char)*c < 0x20 || *c == ',' ? "_" : c, 1);
        lt_wr_put(&w, ":", 1);
        lt_wr_num(&w, r->top[i].prob);
    }
    lt_wr_put(&w, "\n", 1);
    lt_rec_encode_lines(&probe_tail, r, &w);
    return lt_wr_done(&w);
}

static int probe_top(const char *k, size_t kl, const char *v, size_t vl, int line, void *st, lt_err *err) {
    lt_ctl_probe *r = st;
    if (kl != 3 || memcmp(k, "top", 3))
        return lt_seterr(err, LT_EFORMAT, "feed: line %d: unknown key '%s'", line, QUOTE(k, kl));
    if (r->ntop) return lt_seterr(err, LT_EFORMAT, "feed: line %d: key 'top' is repeated", line);
    static const field prob = {"top", FT_NUM, 0, sizeof(double), 0, 0};
    for (size_t i = 0; i < vl;) {
        size_t j = i;
        while (j < vl && v[j] != ',') j++;
        const char *colon = NULL;
        for (size_t q = j; q > i && !colon; q--)
            if (v[q - 1] == ':') colon = v + q - 1;
        if (r->ntop == LT_CTL_TOPK)
            return lt_seterr(err, LT_EFORMAT, "feed: top holds more than %d classes", LT_CTL_TOPK);
        size_t cl = colon ? (size_t)(colon - (v + i)) : 0;
        if (!colon || cl == 0 || cl >= LT_CTL_WORD_MAX)
            return lt_seterr(err, LT_EFORMAT, "feed: top entry '%s' is not <class>:<probability>", QUOTE(v + i, j - i));
        for (size_t q = 0; q < cl; q++)
            if ((unsigned char)v[i + q] < 0x20)
                return lt_seterr(err, LT_EFORMAT, "feed: a top class holds a control byte");
        memcpy(r->top[r->ntop].cls, v + i, cl);
        r->top[r->ntop].cls[cl] = '\0';
        int rc = lt_field_parse(&probe_rec, &prob, colon + 1, (size_t)(v + j - colon - 1), &r->top[r->ntop].prob, err);
        if (rc) return rc;
        r->ntop++;
        i = j + 1;
    }
    if (!r->ntop) return lt_seterr(err, LT_EFORMAT, "feed: top is empty");
    return LT_OK;
}

int lt_ctl_probe_decode(const char *body, lt_ctl_probe *out, lt_err *err) {
    memset(out, 0, sizeof *out);
    int rc = lt_rec_decode_lines(&probe_rec, body, out, probe_top, err);
    if (!rc && !out->ntop) rc = lt_seterr(err, LT_EFORMAT, "feed: key 'top' is missing");
    if (rc) lt_ctl_probe_free(out);
    return rc;
}

void lt_ctl_probe_free(lt_ctl_probe *r) { lt_rec_free(&probe_rec, r); }

/* ---- list replies ---- */

static const field change_fields[] = {
    FIELD(lt_ctl_change, "step", FT_LONG, step, 0),    FIELD(lt_ctl_change, "time", FT_LONG, time, 0),
    FIELD(lt_ctl_change, "name", FT_WORD, name, 0),    FIELD(lt_ctl_change, "old", FT_NUM, old_value, 0),
    FIELD(lt_ctl_change, "new", FT_NUM, new_value, 0), FIELD(lt_ctl_change, "client", FT_U32, client, 0),
};
static const record change_rec = REC("change", change_fields);

#define L(k, t, m, fl) FIELD(lt_ctl_layer, k, t, m, fl)
static const field layer_fields[] = {
    L(NULL, FT_WORD, name, 0),
    L("type", FT_WORD, type, 0),
    L("shape", FT_WORD, shape, 0),
    L("params", FT_LONG, params, 0),
    L("mean", FT_NUM, mean, 0),
    L("std", FT_NUM, std, 0),
    L("min", FT_NUM, min, 0),
    L("max", FT_NUM, max, 0),
    L("zeros", FT_NUM, zeros, 0),
    L("nonfinite", FT_LONG, nonfinite, 0),
    L("dead", FT_LONG, dead, FF_EMPTY),
    L("weight_norm", FT_NUM, weight_norm, FF_EMPTY),
    L("grad_norm", FT_NUM, grad_norm, FF_EMPTY),
    L("update_ratio", FT_NUM, update_ratio, FF_EMPTY),
};
#undef L
static const record layer_rec = REC("layer", layer_fields);

/* A row kind: the key its lines start with and its words. */
typedef struct row_type {
    const char *key;
    lt_ctl_row_kind kind;
    const record *rec;
} row_type;

static const row_type row_types[] = {
    {"point", LT_CTL_ROW_POINT, &lt_point_record},
    {"change", LT_CTL_ROW_CHANGE, &change_rec},
    {"layer", LT_CTL_ROW_LAYER, &layer_rec},
};

static size_t encode_row(const char *key, const record *r, const void *st, char *buf, size_t cap) {
    writer w = {buf, cap, 0};
    lt_wr_str(&w, key);
    lt_wr_put(&w, "=", 1);
    lt_rec_encode_words(r, st, &w);
    lt_wr_put(&w, "\n", 1);
    return lt_wr_done(&w);
}

size_t lt_ctl_point_line(const lt_ctl_point *p, char *buf, size_t cap) {
    return encode_row("point", &lt_point_record, p, buf, cap);
}
size_t lt_ctl_change_line(const lt_ctl_change *c, char *buf, size_t cap) {
    return encode_row("change", &change_rec, c, buf, cap);
}
size_t lt_ctl_layer_line(const lt_ctl_layer *l, char *buf, size_t cap) {
    return encode_row("layer", &layer_rec, l, buf, cap);
}

/* `<name>=<value>`: the name a word without '=', the value a short text. */
static const field hparam_fields[] = {
    FIELD(lt_ctl_hparam, "name", FT_WORD, name, 0),
    FIELD(lt_ctl_hparam, "value", FT_TEXT, text, FF_EMPTY),
};
static const record hparam_rec = REC("hparam", hparam_fields);

size_t lt_ctl_hparam_line(const lt_ctl_hparam *h, char *buf, size_t cap) {
    writer w = {buf, cap, 0};
    for (const char *c = h->name; *c; c++) lt_wr_put(&w, (unsigned char)*c <= 0x20 || *c == '=' ? "_" : c, 1);
    lt_wr_put(&w, "=", 1);
    for (const char *c = h->text; *c; c++) lt_wr_put(&w, (unsigned char)*c < 0x20 ? " " : c, 1);
    lt_wr_put(&w, "\n", 1);
    return lt_wr_done(&w);
}

static int decode_hparam(const char *k, size_t kl, const char *v, size_t vl, lt_ctl_hparam *h, lt_err *err) {
    int rc = lt_field_parse(&hparam_rec, &hparam_fields[0], k, kl, h, err);
    if (!rc) rc = lt_field_parse(&hparam_rec, &hparam_fields[1], v, vl, h, err);
    if (rc) return rc;
    char *end;
    h->number = vl ? strtod(h->text, &end) : NAN;
    if (vl && *end) h->number = NAN;
    return LT_OK;
}

/* Checks every line of body, then (deliver) hands each row to each. allowed:
 * bit per lt_ctl_row_kind. */
static int decode_rows(const char *what, const char *body, unsigned allowed, lt_ctl_row_fn each, void *user,
                       lt_err *err) {
    for (int deliver = 0; deliver < 2; deliver++) {
        size_t pos = 0;
        const char *k, *v;
        size_t kl, vl;
        int rc, line = 0;
        while (++line, (rc = lt_ctl_kv_next(body, &pos, &k, &kl, &v, &vl, err)) == 1) {
            union {
                lt_ctl_point point;
                lt_ctl_change change;
                lt_ctl_layer layer;
                lt_ctl_hparam hparam;
            } row;
            lt_ctl_row_kind kind = LT_CTL_ROW_HPARAM;
            const record *rec = NULL;
            for (size_t i = 0; i < sizeof row_types / sizeof row_types[0]; i++)
                if (strlen(row_types[i].key) == kl && !memcmp(row_types[i].key, k, kl) &&
                    (allowed & 1u << row_types[i].kind))
                    kind = row_types[i].kind, rec = row_types[i].rec;
            if (line > LT_CTL_ROWS_MAX)
                rc = lt_seterr(err, LT_EFORMAT, "more than %d rows", LT_CTL_ROWS_MAX);
            else if (rec)
                rc = lt_rec_decode_words(rec, v, vl, &row, err);
            else if (allowed & 1u << LT_CTL_ROW_HPARAM)
                rc = decode_hparam(k, kl, v, vl, &row.hparam, err);
            else
                rc = lt_seterr(err, LT_EFORMAT, "unknown key '%s'", QUOTE(k, kl));
            if (rc) break;
            if (deliver && each(kind, &row, user)) return LT_OK;
        }
        if (rc) {
            char prefix[64];
            snprintf(prefix, sizeof prefix, "%s: line %d", what, line);
            return lt_err_prefix(err, rc, prefix);
        }
    }
    return LT_OK;
}

int lt_ctl_hparams_decode(const char *body, lt_ctl_row_fn each, void *user, lt_err *err) {
    return decode_rows("hparams", body, 1u << LT_CTL_ROW_HPARAM, each, user, err);
}
int lt_ctl_changes_decode(const char *body, lt_ctl_row_fn each, void *user, lt_err *err) {
    return decode_rows("changes", body, 1u << LT_CTL_ROW_CHANGE, each, user, err);
}
int lt_ctl_history_decode(const char *body, lt_ctl_row_fn each, void *user, lt_err *err) {
    return decode_rows("history", body, 1u << LT_CTL_ROW_POINT | 1u << LT_CTL_ROW_CHANGE, each, user, err);
}
int lt_ctl_layers_decode(const char *body, lt_ctl_row_fn each, void *user, lt_err *err) {
    return decode_rows("layers", body, 1u << LT_CTL_ROW_LAYER, each, user, err);
}
