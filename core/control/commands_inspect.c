/* Looking inside a run: `layers` (per-layer output statistics of the last
 * training batch, weight and gradient norms) and `inspect` (one tensor of one
 * layer: statistics, histogram, values, a 2-D map). Read at a safe point,
 * where every layer's `out` still points at the last step's activations. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/session_impl.h"

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

static double l2(const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

static void num(lt_sb *b, const char *key, double v) {
    if (isnan(v))
        lt_sb_printf(b, "%s=nan", key);
    else
        lt_sb_printf(b, "%s=%.6g", key, v);
}

void lt_sess_layers_body(lt_session *s, lt_sb *b) {
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
        char shp[64] = "?";
        if (failed < 0) lt_shape_str(shapes[i], ndims[i], shp, sizeof shp);
        lt_sb_printf(b, "layer=%s type=%s shape=%s params=%zu ", l->name, lt_layer_kind_name(l->kind), shp,
                     lt_layer_param_count(l));
        stats st = {NAN, NAN, NAN, NAN, 0, 0, 0};
        const lt_tensor *prev_out = i ? m->layers[i - 1].out : NULL;
        if (l->out && prev_out && prev_out->data == l->out->data && prev_out->numel == l->out->numel)
            st = prev; /* a view of the previous output (flatten): same numbers */
        else if (l->out)
            stats_of(l->out->data, l->out->numel, &st);
        prev = st;
        num(b, "mean", st.mean), num(b, " std", st.std), num(b, " min", st.min), num(b, " max", st.max);
        num(b, " zeros", l->out && st.n ? (double)st.zeros / (double)st.n : NAN);
        lt_sb_printf(b, " nonfinite=%zu", st.nonfinite);
        if (l->weight.numel) {
            double wn = l2(l->weight.data, l->weight.numel), gn = l2(l->weight.grad, l->weight.numel);
            num(b, " weight_norm", wn), num(b, " grad_norm", gn);
            num(b, " update_ratio", wn > 0 ? lr * gn / wn : NAN);
            lt_sb_printf(b, "\n");
        } else {
            lt_sb_printf(b, " weight_norm= grad_norm= update_ratio=\n");
        }
    }
    free(shapes);
    free(ndims);
}

/* ---- inspect ---- */
static void put_values(lt_sb *b, const float *x, size_t n) {
    size_t k = n < VALUES_MAX ? n : VALUES_MAX;
    lt_sb_printf(b, "values=");
    for (size_t i = 0; i < k; i++) lt_sb_printf(b, i ? ",%.6g" : "%.6g", (double)x[i]);
    lt_sb_printf(b, "\ntruncated=%d\n", n > k);
}

static void put_stats_hist(lt_sb *b, const float *x, size_t n) {
    stats st;
    stats_of(x, n, &st);
    num(b, "mean", st.mean), num(b, "\nstd", st.std), num(b, "\nmin", st.min), num(b, "\nmax", st.max);
    num(b, "\nzeros", n ? (double)st.zeros / (double)n : NAN);
    lt_sb_printf(b, "\nnonfinite=%zu\n", st.nonfinite);
    size_t hist[HIST_BINS] = {0};
    double lo = st.min, hi = st.max, w = (hi - lo) / HIST_BINS;
    if (isfinite(lo))
        for (size_t i = 0; i < n; i++) {
            if (!isfinite(x[i])) continue;
            int bin = w > 0 ? (int)((x[i] - lo) / w) : 0;
            hist[bin < 0 ? 0 : bin >= HIST_BINS ? HIST_BINS - 1 : bin]++;
        }
    num(b, "hist_min", lo), num(b, "\nhist_max", hi);
    lt_sb_printf(b, "\nhist=");
    for (int i = 0; i < HIST_BINS; i++) lt_sb_printf(b, i ? ",%zu" : "%zu", hist[i]);
    lt_sb_printf(b, "\n");
}

static int unknown_layer(lt_model *m, const char *name, lt_err *err) {
    char list[400] = "";
    size_t o = 0;
    for (int i = 0; i < m->nlayers && o < sizeof list; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", m->layers[i].name);
    return lt_seterr(err, LT_ENOTFOUND, "inspect: no layer '%.64s' (layers: %s)", name, list);
}

int lt_sess_cmd_inspect(lt_session *s, int argc, char **argv, lt_sb *out, lt_err *err) {
    static const char usage[] = "usage: inspect <layer> [output|weight|grad|bias] [--sample I] [--channel C]";
    lt_model *m = &s->t.mod.model;
    if (argc < 2) return lt_seterr(err, LT_EINVAL, "%s", usage);
    const char *what = "output";
    long sample = 0, channel = 0;
    int have_sample = 0, have_channel = 0, rc;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--sample") || !strcmp(argv[i], "--channel")) {
            if (i + 1 >= argc) return lt_seterr(err, LT_EINVAL, "inspect: %s needs a value", argv[i]);
            int is_s = argv[i][2] == 's';
            if ((rc = lt_sess_parse_long(argv[i + 1], 0, 1L << 30, argv[i], is_s ? &sample : &channel, err))) return rc;
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
    char shp[64], full[64];

    if (strcmp(what, "output") != 0) {
        lt_tensor *w = !strcmp(what, "bias") ? &l->bias : &l->weight;
        if (!w->numel)
            return lt_seterr(err, LT_ENOTFOUND, "inspect: layer %s has no %s", l->name,
                             !strcmp(what, "bias") ? "bias" : "weights");
        const float *x = !strcmp(what, "grad") ? w->grad : w->data;
        long rows = w->ndim >= 2 ? w->shape[0] : 1;
        if (have_sample) return lt_seterr(err, LT_EINVAL, "inspect: --sample applies to outputs, not to %s", what);
        if (channel >= rows)
            return lt_seterr(err, LT_EINVAL, "inspect: --channel %ld is out of range (%s has %ld output channels)",
                             channel, l->name, rows);
        lt_shape_str(w->shape, w->ndim, shp, sizeof shp);
        lt_sb_printf(out, "layer=%s\nwhat=%s\nsource=model\nsample=\nchannel=%ld\nshape=%s\nfull_shape=%s\n", l->name,
                     what, channel, shp, shp);
        put_stats_hist(out, x, w->numel);
        if (w->ndim == 4) { /* conv [O][I][K][K]: the kernel from input 0 to output C */
            size_t kk = (size_t)w->shape[2] * w->shape[3];
            lt_sb_printf(out, "map_h=%d\nmap_w=%d\n", w->shape[2], w->shape[3]);
            put_values(out, x + (size_t)channel * w->shape[1] * kk, kk);
        } else if (w->ndim == 2) { /* dense [O][I]: the weights into unit C */
            put_values(out, x + (size_t)channel * w->shape[1], (size_t)w->shape[1]);
        } else {
            put_values(out, x, w->numel);
        }
        return LT_OK;
    }

    /* an output: the probe's when it is newer and no sample was asked for */
    const float *x;
    int ndim, shape[LT_MAX_DIMS];
    const char *source;
    if (s->probe_valid && !have_sample) {
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
        x = l->out->data + (size_t)sample * (l->out->numel / (size_t)l->out->shape[0]);
        source = "batch";
        lt_shape_str(l->out->shape, l->out->ndim, full, sizeof full);
    }
    size_t n = lt_shape_numel(shape, ndim);
    if (have_channel && ndim != 3)
        return lt_seterr(err, LT_EINVAL, "inspect: --channel applies to a CxHxW output; %s's is %d-D", l->name, ndim);
    if (ndim == 3 && channel >= shape[0])
        return lt_seterr(err, LT_EINVAL, "inspect: --channel %ld is out of range (%s has %d channels)", channel,
                         l->name, shape[0]);
    lt_shape_str(shape, ndim, shp, sizeof shp);
    lt_sb_printf(out, "layer=%s\nwhat=output\nsource=%s\nsample=%ld\nchannel=%ld\nshape=%s\nfull_shape=%s\n", l->name,
                 source, sample, channel, shp, full);
    put_stats_hist(out, x, n);
    if (ndim == 3) {
        size_t hw = (size_t)shape[1] * shape[2];
        lt_sb_printf(out, "map_h=%d\nmap_w=%d\n", shape[1], shape[2]);
        put_values(out, x + (size_t)channel * hw, hw);
    } else if (ndim == 2) {
        lt_sb_printf(out, "map_h=%d\nmap_w=%d\n", shape[0], shape[1]);
        put_values(out, x, n);
    } else {
        put_values(out, x, n);
    }
    return LT_OK;
}
