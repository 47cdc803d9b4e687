/* Looking inside a run: `layers` (per-layer output statistics of the last
 * training batch, weight and gradient norms) and `inspect` (one tensor of one
 * layer: statistics, histogram, values, a 2-D map). Read at a safe point,
 * where every layer's `out` still points at the last step's activations. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/session_impl.h"
#include "lathe/dist.h"

#define HIST_BINS 20
#define VALUES_MAX 1024

typedef struct stats {
    double mean, std, min, max;
    size_t n, zeros, nonfinite;
} stats;

/* Slow path, for tensors holding NaN or Inf: those are counted and left out. */
static void stats_careful(const float *x, size_t n, stats *st) {
    double s = 0, q = 0, mn = INFINITY, mx = -INFINITY;
    size_t z = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        if (!isfinite(v)) {
            bad++;
            continue;
        }
        s += v, q += (double)v * v, z += v == 0.0f;
        mn = v < mn ? v : mn, mx = v > mx ? v : mx;
    }
    size_t k = n - bad;
    st->n = n, st->zeros = z, st->nonfinite = bad;
    st->mean = k ? s / (double)k : NAN;
    st->std = k ? sqrt(fmax(0.0, q / (double)k - st->mean * st->mean)) : NAN;
    st->min = k ? mn : NAN, st->max = k ? mx : NAN;
}

/* mean, population std, min, max, exact zeros and non-finite count of x[n].
 * The fast path keeps 16 independent float lanes, written so the compiler
 * vectorises them (min/max as compare-selects, the zero count as a float),
 * and folds them into doubles every 2048 elements: about 0.4 ns a value,
 * near memory speed. NaN or Inf anywhere shows in the sums and sends the
 * tensor to the careful path. */
static void stats_of(const float *x, size_t n, stats *st) {
    enum { L = 16, CHUNK = 2048 };
    double s = 0, q = 0;
    float mn = INFINITY, mx = -INFINITY;
    size_t z = 0, i = 0;
    while (i < n) {
        size_t end = n - i > CHUNK ? i + CHUNK : n;
        float ls[L] = {0}, lq[L] = {0}, lz[L] = {0}, lmn[L], lmx[L];
        for (int k = 0; k < L; k++) lmn[k] = INFINITY, lmx[k] = -INFINITY;
        for (; i + L <= end; i += L)
            for (int k = 0; k < L; k++) {
                float v = x[i + k];
                ls[k] += v;
                lq[k] += v * v;
                lmn[k] = lmn[k] < v ? lmn[k] : v;
                lmx[k] = lmx[k] > v ? lmx[k] : v;
                lz[k] += v == 0.0f ? 1.0f : 0.0f;
            }
        for (; i < end; i++) {
            float v = x[i];
            s += v, q += (double)v * v, z += v == 0.0f;
            mn = v < mn ? v : mn, mx = v > mx ? v : mx;
        }
        for (int k = 0; k < L; k++) {
            s += ls[k], q += lq[k], z += (size_t)lz[k];
            mn = lmn[k] < mn ? lmn[k] : mn, mx = lmx[k] > mx ? lmx[k] : mx;
        }
    }
    if (!isfinite(s) || !isfinite(q) || !isfinite(mn) || !isfinite(mx)) {
        stats_careful(x, n, st); /* NaN, Inf or squares beyond float range */
        return;
    }
    st->n = n, st->zeros = z, st->nonfinite = 0;
    st->mean = n ? s / (double)n : NAN;
    st->std = n ? sqrt(fmax(0.0, q / (double)n - st->mean * st->mean)) : NAN;
    st->min = n ? mn : NAN, st->max = n ? mx : NAN;
}

/* L2 norm of t's data or grad, computed where it lives (the backend's sum of
 * squares: no copy); NaN when this build cannot reach its device. */
static double l2(const lt_tensor *t, int grad) {
    const lt_backend *be = lt_backend_of(t->device);
    return be ? sqrt(lt_dev_sum_squares(be, grad ? t->grad : t->data, t->numel)) : NAN;
}

/* Statistics of a layer output, read where the host can (lt_tensor_map:
 * zero-copy on the CPU, a copy from a device); all NaN when it cannot be read. */
static void tensor_stats(const lt_tensor *t, stats *st) {
    const float *x = lt_tensor_map(t, 0, NULL);
    if (!x) return;
    stats_of(x, t->numel, st);
    lt_tensor_unmap(t, t->data, x);
}

/* The channels of an NCHW output that are exactly zero in every sample of
 * the batch: a unit that no longer fires (a dead ReLU), whatever the input.
 * A live channel ends its scan at its first non-zero value. -1 when the
 * output cannot be read here. */
static long dead_channels(const lt_tensor *out) {
    const float *x = lt_tensor_map(out, 0, NULL);
    if (!x) return -1;
    int n = out->shape[0], c = out->shape[1];
    size_t hw = (size_t)out->shape[2] * out->shape[3];
    long dead = 0;
    for (int k = 0; k < c; k++) {
        int live = 0;
        for (int s = 0; s < n && !live; s++) {
            const float *p = x + ((size_t)s * c + k) * hw;
            for (size_t i = 0; i < hw && !live; i++) live = p[i] != 0.0f;
        }
        dead += !live;
    }
    lt_tensor_unmap(out, out->data, x);
    return dead;
}

void lt_session_layers_body(lt_session *s, lt_sb *b) {
    lt_trainer *t = &s->t;
    lt_model *m = &t->mod.model;
    double lr = NAN;
    lt_optim_get(t->opt, "lr", &lr, NULL);
    int(*shapes)[LT_MAX_DIMS] = calloc((size_t)m->nlayers + 1, sizeof *shapes);
    int *ndims = calloc((size_t)m->nlayers + 1, sizeof *ndims);
    int failed = -1;
    if (!shapes || !ndims ||
        lt_model_infer_shapes(m, t->mod.in_shape, t->mod.in_ndim, shapes, ndims, &failed, NULL) != LT_OK)
        failed = 0;
    stats prev = {NAN, NAN, NAN, NAN, 0, 0, 0};
    for (int i = 0; i < m->nlayers; i++) {
        const lt_layer *l = &m->layers[i];
        lt_ctl_layer row = {.params = (long)lt_layer_param_count(l)};
        snprintf(row.name, sizeof row.name, "%s", l->name);
        snprintf(row.type, sizeof row.type, "%s", lt_layer_kind_name(l->kind));
        snprintf(row.shape, sizeof row.shape, "?");
        if (failed < 0) lt_shape_str(shapes[i], ndims[i], row.shape, sizeof row.shape);
        stats st = {NAN, NAN, NAN, NAN, 0, 0, 0};
        const lt_tensor *prev_out = i ? m->layers[i - 1].out : NULL;
        if (l->out && prev_out && prev_out->data == l->out->data && prev_out->numel == l->out->numel)
            st = prev; /* a view of the previous output (flatten): same numbers */
        else if (l->out)
            tensor_stats(l->out, &st);
        prev = st;
        row.mean = st.mean, row.std = st.std, row.min = st.min, row.max = st.max;
        row.zeros = l->out && st.n ? (double)st.zeros / (double)st.n : NAN;
        row.nonfinite = (long)st.nonfinite;
        row.dead = l->out && l->out->ndim == 4 ? dead_channels(l->out) : -1;
        row.weight_norm = row.grad_norm = row.update_ratio = NAN; /* written empty: no weights */
        if (l->weight.numel) {
            row.weight_norm = l2(&l->weight, 0);
            row.grad_norm = l2(&l->weight, 1);
            row.update_ratio = row.weight_norm > 0 ? lr * row.grad_norm / row.weight_norm : NAN;
        }
        LT_SB_ENCODE(b, lt_ctl_layer_line, &row);
    }
    free(shapes);
    free(ndims);
}

/* ---- inspect ---- */

/* Statistics, histogram and (at most VALUES_MAX of) the values of x[n] into
 * r; r->values is malloc'ed (the caller frees it). */
static int fill_stats(lt_ctl_inspect *r, const float *x, size_t n, const float *shown, size_t nshown, lt_err *err) {
    stats st;
    stats_of(x, n, &st);
    r->mean = st.mean, r->std = st.std, r->min = st.min, r->max = st.max;
    r->zeros = n ? (double)st.zeros / (double)n : NAN;
    r->nonfinite = (long)st.nonfinite;
    size_t hist[HIST_BINS] = {0};
    double lo = st.min, hi = st.max, w = (hi - lo) / HIST_BINS;
    if (isfinite(lo))
        for (size_t i = 0; i < n; i++) {
            if (!isfinite(x[i])) continue;
            int bin = w > 0 ? (int)((x[i] - lo) / w) : 0;
            hist[bin < 0 ? 0 : bin >= HIST_BINS ? HIST_BINS - 1 : bin]++;
        }
    r->hist_min = lo, r->hist_max = hi;
    for (int i = 0; i < HIST_BINS; i++) r->hist[i] = (double)hist[i];
    r->nhist = HIST_BINS;
    size_t k = nshown < VALUES_MAX ? nshown : VALUES_MAX;
    r->values = malloc((k ? k : 1) * sizeof *r->values);
    if (!r->values) return lt_seterr(err, LT_ENOMEM, "inspect: out of memory for %zu values", k);
    for (size_t i = 0; i < k; i++) r->values[i] = shown[i];
    r->nvalues = (int)k;
    r->truncated = nshown > k;
    return LT_OK;
}

static int put_inspect(lt_ctl_inspect *r, lt_sb *out) {
    LT_SB_ENCODE(out, lt_ctl_inspect_encode, r);
    free(r->values);
    r->values = NULL;
    return LT_OK;
}

static void inspect_names(lt_ctl_inspect *r, const char *layer, const char *what, const char *source) {
    snprintf(r->layer, sizeof r->layer, "%s", layer);
    snprintf(r->what, sizeof r->what, "%s", what);
    snprintf(r->source, sizeof r->source, "%s", source);
}

static int unknown_layer(lt_model *m, const char *name, lt_err *err) {
    char list[400] = "";
    size_t o = 0;
    for (int i = 0; i < m->nlayers && o < sizeof list; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", m->layers[i].name);
    return lt_seterr(err, LT_ENOTFOUND, "inspect: no layer '%.64s' (layers: %s)", name, list);
}

static const char usage[] = "usage: inspect <layer> [output|weight|grad|bias] [--sample I] [--channel C] [--rank R]";

/* inspect on model m; s: the session whose probe may be shown (NULL: none,
   a rank other than 0 answering rank 0) */
static int inspect(lt_session *s, lt_model *m, int argc, char **argv, lt_sb *out, lt_err *err) {
    if (argc < 2) return lt_seterr(err, LT_EINVAL, "%s", usage);
    const char *what = "output";
    long sample = 0, channel = 0;
    int have_sample = 0, have_channel = 0, rc;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--sample") || !strcmp(argv[i], "--channel")) {
            if (i + 1 >= argc) return lt_seterr(err, LT_EINVAL, "inspect: %s needs a value", argv[i]);
            int is_s = argv[i][2] == 's';
            if ((rc = lt_session_parse_long(argv[i + 1], 0, 1L << 30, argv[i], is_s ? &sample : &channel, err)))
                return rc;
            *(is_s ? &have_sample : &have_channel) = 1;
            i++;
        } else if (!strcmp(argv[i], "output") || !strcmp(argv[i], "weight") || !strcmp(argv[i], "grad") ||
                   !strcmp(argv[i], "bias")) {
            what = argv[i];
        } else {
            return lt_seterr(err, LT_EINVAL, "inspect: unexpected '%.64s'; %s", argv[i], usage);
        }
    }
    int li = -1;
    for (int i = 0; i < m->nlayers; i++)
        if (!strcmp(m->layers[i].name, argv[1])) li = i;
    if (li < 0) return unknown_layer(m, argv[1], err);
    lt_layer *l = &m->layers[li];
    char full[64];

    if (strcmp(what, "output") != 0) {
        lt_tensor *w = !strcmp(what, "bias") ? &l->bias : &l->weight;
        if (!w->numel)
            return lt_seterr(err, LT_ENOTFOUND, "inspect: layer %s has no %s", l->name,
                             !strcmp(what, "bias") ? "bias" : "weights");
        int grad = !strcmp(what, "grad");
        long rows = w->ndim >= 2 ? w->shape[0] : 1;
        if (have_sample) return lt_seterr(err, LT_EINVAL, "inspect: --sample applies to outputs, not to %s", what);
        if (channel >= rows)
            return lt_seterr(err, LT_EINVAL, "inspect: --channel %ld is out of range (%s has %ld output channels)",
                             channel, l->name, rows);
        lt_ctl_inspect r = {.sample = -1, .channel = channel};
        inspect_names(&r, l->name, what, "model");
        lt_shape_str(w->shape, w->ndim, r.shape, sizeof r.shape);
        lt_shape_str(w->shape, w->ndim, r.full_shape, sizeof r.full_shape);
        const float *x = lt_tensor_map(w, grad, err); /* zero-copy on the CPU */
        if (!x) return err && err->code ? err->code : LT_ENOMEM;
        const float *shown = x;
        size_t nshown = w->numel;
        if (w->ndim == 4) { /* conv [O][I][K][K]: the kernel from input 0 to output C */
            nshown = (size_t)w->shape[2] * w->shape[3];
            shown = x + (size_t)channel * w->shape[1] * nshown;
            r.map_h = w->shape[2], r.map_w = w->shape[3];
        } else if (w->ndim == 2) { /* dense [O][I]: the weights into unit C */
            nshown = (size_t)w->shape[1];
            shown = x + (size_t)channel * w->shape[1];
        }
        rc = fill_stats(&r, x, w->numel, shown, nshown, err);
        lt_tensor_unmap(w, grad ? w->grad : w->data, x);
        return rc ? rc : put_inspect(&r, out);
    }

    /* an output: the probe's when it is newer and no sample was asked for */
    const float *x, *mapped = NULL;
    int ndim, shape[LT_MAX_DIMS];
    const char *source;
    if (s && s->probe_valid && !have_sample) {
        const lt_probe_layer *pl = &s->probe_layers[li];
        x = s->probe_mem + pl->off;
        ndim = pl->ndim;
        memcpy(shape, pl->shape, sizeof shape);
        source = "probe";
        int fs[LT_MAX_DIMS + 1] = {1};
        memcpy(fs + 1, shape, (size_t)ndim * sizeof(int));
        lt_shape_str(fs, ndim + 1, full, sizeof full);
    } else {
        if (!l->out)
            return lt_seterr(err, LT_ESTATE, "inspect: no batch has gone through %s yet (step, or feed an input)",
                             l->name);
        if (sample >= l->out->shape[0])
            return lt_seterr(err, LT_EINVAL, "inspect: --sample %ld is out of range (the last batch has %d samples)",
                             sample, l->out->shape[0]);
        ndim = l->out->ndim - 1;
        memcpy(shape, l->out->shape + 1, (size_t)ndim * sizeof(int));
        if (!(mapped = lt_tensor_map(l->out, 0, err))) return err && err->code ? err->code : LT_ENOMEM;
        x = mapped + (size_t)sample * (l->out->numel / (size_t)l->out->shape[0]);
        source = "batch";
        lt_shape_str(l->out->shape, l->out->ndim, full, sizeof full);
    }
    size_t n = lt_shape_numel(shape, ndim);
    rc = LT_OK;
    if (have_channel && ndim != 3)
        rc = lt_seterr(err, LT_EINVAL, "inspect: --channel applies to a CxHxW output; %s's is %d-D", l->name, ndim);
    else if (ndim == 3 && channel >= shape[0])
        rc = lt_seterr(err, LT_EINVAL, "inspect: --channel %ld is out of range (%s has %d channels)", channel, l->name,
                       shape[0]);
    if (rc) {
        if (mapped) lt_tensor_unmap(l->out, l->out->data, mapped);
        return rc;
    }
    lt_ctl_inspect r = {.sample = sample, .channel = channel};
    inspect_names(&r, l->name, "output", source);
    lt_shape_str(shape, ndim, r.shape, sizeof r.shape);
    snprintf(r.full_shape, sizeof r.full_shape, "%s", full);
    const float *shown = x;
    size_t nshown = n;
    if (ndim == 3) {
        nshown = (size_t)shape[1] * shape[2];
        shown = x + (size_t)channel * nshown;
        r.map_h = shape[1], r.map_w = shape[2];
    } else if (ndim == 2) {
        r.map_h = shape[0], r.map_w = shape[1];
    }
    rc = fill_stats(&r, x, n, shown, nshown, err);
    if (mapped) lt_tensor_unmap(l->out, l->out->data, mapped);
    return rc ? rc : put_inspect(&r, out);
}

#define RANK_ASK_S 10.0 /* how long rank 0 waits for another rank's answer */

int lt_session_rank_words(const char *cmd, int argc, char **argv, char **words, int *n, long *rank, lt_err *err) {
    int rc;
    *n = 0;
    *rank = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--rank")) {
            if (i + 1 >= argc) return lt_seterr(err, LT_EINVAL, "%s: --rank needs a value", cmd);
            if ((rc = lt_session_parse_long(argv[i + 1], 0, 1L << 24, "--rank", rank, err))) return rc;
            i++;
        } else if (*n < LT_SESSION_WORDS_MAX) {
            words[(*n)++] = argv[i];
        } else {
            return lt_seterr(err, LT_EINVAL, "%s: more than %d words", cmd, LT_SESSION_WORDS_MAX);
        }
    }
    words[*n] = NULL;
    return LT_OK;
}

int lt_session_ask_rank(lt_session *s, const char *cmd, long rank, int n, char **words, lt_sb *out, lt_err *err) {
    if (s->t.world <= 1)
        return lt_seterr(err, LT_EINVAL, "%s: --rank %ld: this run is one process (rank 0 only)", cmd, rank);
    if (rank >= s->t.world)
        return lt_seterr(err, LT_EINVAL, "%s: --rank %ld is out of range (the run has ranks 0 to %d)", cmd, rank,
                         s->t.world - 1);
    if (s->fit_over)
        return lt_seterr(err, LT_ESTATE, "%s: --rank %ld: the run is over, its other ranks have left", cmd, rank);
    lt_sb req = {0};
    for (int i = 0; i < n; i++) lt_sb_append(&req, words[i], strlen(words[i]) + 1);
    if (req.oom) {
        lt_sb_free(&req);
        return lt_seterr(err, LT_ENOMEM, "out of memory");
    }
    char *ans = NULL;
    size_t an = 0;
    int rc = lt_dist_ask((int)rank, req.p, req.n, &ans, &an, RANK_ASK_S, err);
    lt_sb_free(&req);
    if (!rc) lt_sb_append(out, ans, an);
    free(ans);
    return rc;
}

/* `inspect ... --rank R`: rank R's replica, asked over lathe/dist.h (its
 * last batch is its own shard, its weights equal rank 0's). The words but
 * --rank R go to it, NUL-separated. */
int lt_session_cmd_inspect(lt_session *s, int argc, char **argv, lt_sb *out, lt_err *err) {
    char *words[LT_SESSION_WORDS_MAX + 1];
    int n;
    long rank;
    int rc = lt_session_rank_words("inspect", argc, argv, words, &n, &rank, err);
    if (rc) return rc;
    if (rank == 0) return inspect(s, &s->t.mod.model, n, words, out, err);
    return lt_session_ask_rank(s, "inspect", rank, n, words, out, err);
}

/* A rank other than 0 answers rank 0's `inspect` and `feed` with --rank R
 * from its own replica: the request's NUL-separated words. */
static int answer(void *ctx, const char *req, size_t len, char **ans, size_t *n, lt_err *err) {
    lt_session *s = ctx;
    int rank = s->t.rank;
    char *copy = malloc(len + 1), *argv[LT_SESSION_WORDS_MAX + 1];
    if (!copy) return lt_seterr(err, LT_ENOMEM, "rank %d: out of memory", rank);
    memcpy(copy, req, len);
    copy[len] = '\0';
    int argc = 0;
    for (size_t i = 0; i < len && argc < LT_SESSION_WORDS_MAX; i += strlen(copy + i) + 1) argv[argc++] = copy + i;
    argv[argc] = NULL;
    int rc;
    lt_sb out = {0};
    if (argc >= 1 && !strcmp(argv[0], "inspect"))
        rc = inspect(s, &s->t.mod.model, argc, argv, &out, err);
    else if (argc >= 1 && !strcmp(argv[0], "feed"))
        rc = lt_session_cmd_feed(s, argc, argv, &out, err);
    else
        rc = lt_seterr(err, LT_EINVAL, "rank %d answers inspect and feed only, not '%.64s'", rank, argc ? argv[0] : "");
    if (!rc && out.oom) rc = lt_seterr(err, LT_ENOMEM, "rank %d: out of memory", rank);
    free(copy);
    if (rc) {
        lt_sb_free(&out);
        if (strncmp(err->msg, "rank ", 5) != 0) { /* the error names this rank */
            char m[LT_ERR_MSG_MAX];
            snprintf(m, sizeof m, "%s", err->msg);
            lt_seterr(err, rc, "rank %d: %.400s", rank, m);
        }
        return rc;
    }
    *ans = out.p;
    *n = out.n;
    return LT_OK;
}

void lt_session_answer(lt_session *s) { lt_dist_set_answer(s ? answer : NULL, s); }
