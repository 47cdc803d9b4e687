/* `feed`: a forward pass of one input through the live model in eval mode,
 * on the session's own graph (its own arena), so the training graph, the
 * training rng and the optimizer are untouched. Each layer's output for the
 * input is copied into the probe store (for `inspect`) and every layer's
 * `out` is pointed back at the training batch. `feed shape` is a dry run of
 * shape inference. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "control/session_impl.h"

#define SEARCH_BATCH 64 /* samples per forward pass when looking for a misclassified one */

void lt_session_probe_free(lt_session *s) {
    if (s->probe_ready) lt_graph_free(&s->probe);
    free(s->probe_mem);
    free(s->probe_in);
    free(s->probe_layers);
    s->probe_ready = s->probe_valid = 0;
    s->probe_mem = s->probe_in = NULL;
    s->probe_layers = NULL;
    s->probe_cap = 0;
}

static size_t sample_size(const lt_session *s) { return lt_shape_numel(s->t.mod.in_shape, s->t.mod.in_ndim); }

/* The probe graph, made at first use on the trainer's backend. */
static int probe_graph(lt_session *s, lt_err *err) {
    if (s->probe_ready) return LT_OK;
    int rc = lt_graph_init(&s->probe, s->t.graph.be, &s->probe_rng, err);
    if (rc) return rc;
    lt_graph_bind(&s->probe, s->t.graph.be);
    s->probe_ready = 1;
    return LT_OK;
}

/* Runs n samples from s->probe_in through the model in eval mode. With keep,
 * sample 0's output of every layer is copied into the probe store. Returns
 * the model's output [n, classes] (probe graph memory) or NULL. */
static lt_tensor *probe_forward(lt_session *s, int n, int keep, lt_err *err) {
    lt_trainer *t = &s->t;
    lt_model *m = &t->mod.model;
    if (probe_graph(s, err)) return NULL;
    if (!s->probe_layers && !(s->probe_layers = lt_calloc((size_t)m->nlayers + 1, sizeof *s->probe_layers, err)))
        return NULL;
    lt_tensor **saved = lt_malloc(((size_t)m->nlayers + 1) * sizeof *saved, err);
    if (!saved) return NULL;
    for (int i = 0; i < m->nlayers; i++) saved[i] = m->layers[i].out;
    lt_graph *g = &s->probe;
    lt_graph_reset(g);
    g->math = t->graph.math, g->math_ctx = t->graph.math_ctx; /* layers kept in f32 */
    g->training = 0;
    g->grad_enabled = 0;
    int shape[LT_MAX_DIMS] = {n};
    for (int i = 0; i < t->mod.in_ndim; i++) shape[i + 1] = t->mod.in_shape[i];
    /* the input on the graph's device: probe_in itself on the CPU */
    lt_tensor *x = lt_graph_from_host(g, s->probe_in, shape, t->mod.in_ndim + 1, err);
    lt_tensor *y = !x ? NULL : t->exp->forward ? t->exp->forward(&t->mod, g, x, err) : lt_model_forward(m, g, x, err);
    if (!y && err && !err->code) lt_seterr(err, LT_ENOMEM, "feed: out of memory for the forward pass");
    if (y && keep) {
        size_t total = 0;
        for (int i = 0; i < m->nlayers; i++)
            if (m->layers[i].out) total += m->layers[i].out->numel / (size_t)n;
        if (total > s->probe_cap) {
            float *p = realloc(s->probe_mem, total * sizeof(float));
            if (!p) {
                y = NULL;
                lt_seterr(err, LT_ENOMEM, "feed: out of memory for the probe's %zu values", total);
            } else {
                s->probe_mem = p, s->probe_cap = total;
            }
        }
        size_t off = 0;
        for (int i = 0; y && i < m->nlayers; i++) {
            const lt_tensor *o = m->layers[i].out;
            lt_probe_layer *pl = &s->probe_layers[i];
            memset(pl, 0, sizeof *pl);
            pl->off = off;
            if (!o) continue;
            pl->ndim = o->ndim - 1;
            memcpy(pl->shape, o->shape + 1, (size_t)pl->ndim * sizeof(int));
            size_t k = o->numel / (size_t)n;
            if (lt_tensor_read(o, 0, k, s->probe_mem + off, err)) { /* the first sample, wherever o lives */
                y = NULL;
                break;
            }
            off += k;
        }
        s->probe_valid = y != NULL;
    }
    for (int i = 0; i < m->nlayers; i++) m->layers[i].out = saved[i];
    free(saved);
    return y;
}

/* Class probabilities of one row of the model's output (host memory, c
 * classes) into p[c]. */
static void probabilities(const lt_session *s, const float *row, int c, float *p) {
    const lt_model *m = &s->t.mod.model;
    /* what the last layer's kind yields (lathe/nn.h) */
    const lt_layer_class *last = m->nlayers ? lt_layer_class_of(m->layers[m->nlayers - 1].kind) : NULL;
    lt_layer_yields yields = last ? last->yields : LT_YIELDS_SCORES;
    if (yields == LT_YIELDS_PROBS) {
        memcpy(p, row, (size_t)c * sizeof(float));
        return;
    }
    if (yields == LT_YIELDS_LOG_PROBS) {
        for (int i = 0; i < c; i++) p[i] = expf(row[i]);
        return;
    }
    float mx = row[0], sum = 0;
    for (int i = 1; i < c; i++) mx = row[i] > mx ? row[i] : mx;
    for (int i = 0; i < c; i++) sum += p[i] = expf(row[i] - mx);
    for (int i = 0; i < c; i++) p[i] /= sum;
}

static int argmax_row(const float *row, int c) {
    int best = 0;
    for (int i = 1; i < c; i++)
        if (row[i] > row[best]) best = i;
    return best;
}

static void class_name(const lt_session *s, int k, char *buf, size_t n) {
    const lt_dataset *d = &s->t.mod.test_data;
    if (k >= 0 && d->class_names && k < d->num_classes)
        snprintf(buf, n, "%s", d->class_names[k]);
    else if (k >= 0)
        snprintf(buf, n, "%d", k);
    else
        buf[0] = '\0';
}

/* Runs the sample in probe_in[0..] and writes the feed reply. */
static int probe_reply(lt_session *s, const char *source, int label, lt_sb *out, lt_err *err) {
    lt_tensor *y = probe_forward(s, 1, 1, err);
    if (!y) return err && err->code ? err->code : LT_EINVAL;
    if (y->ndim != 2 || y->shape[1] < 1)
        return lt_seterr(err, LT_ESHAPE, "feed: the model's output is not [batch, classes]");
    int c = y->shape[1];
    float *p = lt_malloc((size_t)c * sizeof(float), err);
    int *order = lt_malloc((size_t)c * sizeof(int), err);
    if (!p || !order) {
        free(p), free(order);
        return LT_ENOMEM;
    }
    const float *yh = lt_tensor_map(y, 0, err); /* zero-copy on the CPU */
    if (!yh) {
        free(p), free(order);
        return err && err->code ? err->code : LT_EIO;
    }
    probabilities(s, yh, c, p);
    lt_tensor_unmap(y, y->data, yh);
    double sum = 0;
    for (int i = 0; i < c; i++) sum += p[i], order[i] = i;
    int k = c < 5 ? c : 5;
    for (int i = 0; i < k; i++) /* partial selection sort: the k best, best first */
        for (int j = i + 1; j < c; j++)
            if (p[order[j]] > p[order[i]]) {
                int tmp = order[i];
                order[i] = order[j], order[j] = tmp;
            }
    lt_ctl_probe r = {.label = label, .pred = order[0], .ntop = k};
    snprintf(r.source, sizeof r.source, "%s", source);
    class_name(s, label, r.label_name, sizeof r.label_name);
    class_name(s, order[0], r.pred_name, sizeof r.pred_name);
    snprintf(s->probe_source, sizeof s->probe_source, "%s", source);
    for (int i = 0; i < k; i++) {
        class_name(s, order[i], r.top[i].cls, sizeof r.top[i].cls);
        r.top[i].prob = p[order[i]];
    }
    r.prob_sum = sum;
    lt_shape_str(s->t.mod.in_shape, s->t.mod.in_ndim, r.input_shape, sizeof r.input_shape);
    size_t n = sample_size(s);
    r.input = malloc((n ? n : 1) * sizeof *r.input);
    int rc = r.input ? LT_OK : lt_seterr(err, LT_ENOMEM, "feed: out of memory for the reply");
    for (size_t i = 0; !rc && i < n; i++) r.input[i] = s->probe_in[i];
    r.ninput = (int)n;
    const lt_model *m = &s->t.mod.model;
    size_t o = 0;
    for (int i = 0; i < m->nlayers && o < sizeof r.layers; i++)
        o += (size_t)snprintf(r.layers + o, sizeof r.layers - o, "%s%s", i ? "," : "", m->layers[i].name);
    if (!rc) LT_SB_ENCODE(out, lt_ctl_probe_encode, &r);
    free(r.input);
    free(p);
    free(order);
    return rc;
}

static int ensure_input(lt_session *s, lt_err *err) {
    if (s->probe_in) return LT_OK;
    s->probe_in = lt_malloc(SEARCH_BATCH * sample_size(s) * sizeof(float), err);
    return s->probe_in ? LT_OK : LT_ENOMEM;
}

static int feed_test_sample(lt_session *s, size_t i, lt_sb *out, lt_err *err) {
    const lt_dataset *d = &s->t.mod.test_data;
    size_t n = sample_size(s);
    if (d->sample_size != n)
        return lt_seterr(err, LT_ESHAPE, "feed: the test set's samples do not have the model's input size");
    memcpy(s->probe_in, d->x + i * n, n * sizeof(float));
    char src[64];
    snprintf(src, sizeof src, "test:%zu", i);
    return probe_reply(s, src, d->y[i], out, err);
}

/* The next test sample from the cursor that the model gets wrong, searched
 * SEARCH_BATCH at a time, at most once round the whole set. */
static int feed_misclassified(lt_session *s, lt_sb *out, lt_err *err) {
    const lt_dataset *d = &s->t.mod.test_data;
    size_t n = sample_size(s);
    if (d->sample_size != n)
        return lt_seterr(err, LT_ESHAPE, "feed: the test set's samples do not have the model's input size");
    for (size_t done = 0; done < d->n;) {
        size_t start = (s->mis_cursor + done) % d->n;
        int k = (int)(d->n - start < SEARCH_BATCH ? d->n - start : SEARCH_BATCH);
        if ((size_t)k > d->n - done) k = (int)(d->n - done);
        memcpy(s->probe_in, d->x + start * n, (size_t)k * n * sizeof(float));
        lt_tensor *y = probe_forward(s, k, 0, err);
        const float *yh = y ? lt_tensor_map(y, 0, err) : NULL;
        if (!yh) return err && err->code ? err->code : LT_EINVAL;
        int c = y->shape[1], wrong = -1;
        for (int r = 0; r < k && wrong < 0; r++)
            if (argmax_row(yh + (size_t)r * c, c) != d->y[start + (size_t)r]) wrong = r;
        lt_tensor_unmap(y, y->data, yh);
        if (wrong >= 0) {
            s->mis_cursor = (start + (size_t)wrong + 1) % d->n;
            return feed_test_sample(s, start + (size_t)wrong, out, err);
        }
        done += (size_t)k;
    }
    return lt_seterr(err, LT_ENOTFOUND, "feed misclassified: the model gets every one of the %zu test samples right",
                     d->n);
}

/* An IDX file (one sample of the input's shape, or the first of many) or raw
 * little-endian f32 of exactly the input's size, into probe_in. */
static int load_file(lt_session *s, const char *path, lt_err *err) {
    size_t n = sample_size(s);
    struct stat st;
    if (stat(path, &st) != 0) return lt_seterr(err, LT_EIO, "feed file %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return lt_seterr(err, LT_EINVAL, "feed file %s: not a regular file", path);
    lt_idx idx;
    lt_err ierr = {0};
    if (lt_idx_load(path, &idx, &ierr) == LT_OK) {
        size_t per = idx.count;
        if (idx.ndim > 1 && idx.count != n) per = idx.count / idx.dims[0];
        if (per != n) {
            lt_idx_free(&idx);
            return lt_seterr(err, LT_ESHAPE, "feed file %s: holds samples of %zu values; the model's input has %zu",
                             path, per, n);
        }
        for (size_t i = 0; i < n; i++) {
            double v;
            switch (idx.type) {
            case LT_IDX_U8: v = ((const uint8_t *)idx.data)[i] / 255.0; break; /* as the datasets scale */
            case LT_IDX_I8: v = ((const int8_t *)idx.data)[i]; break;
            case LT_IDX_I16: v = ((const int16_t *)idx.data)[i]; break;
            case LT_IDX_I32: v = ((const int32_t *)idx.data)[i]; break;
            case LT_IDX_F32: v = ((const float *)idx.data)[i]; break;
            default: v = ((const double *)idx.data)[i]; break;
            }
            s->probe_in[i] = (float)v;
        }
        lt_idx_free(&idx);
        return LT_OK;
    }
    if ((size_t)st.st_size != n * sizeof(float))
        return lt_seterr(err, LT_EFORMAT,
                         "feed file %s: not an IDX file (%s) and not raw f32 of %zu bytes (it has %lld)", path,
                         ierr.msg, n * sizeof(float), (long long)st.st_size);
    FILE *f = fopen(path, "rb");
    if (!f) return lt_seterr(err, LT_EIO, "feed file %s: %s", path, strerror(errno));
    size_t got = fread(s->probe_in, sizeof(float), n, f);
    fclose(f);
    if (got != n) return lt_seterr(err, LT_EIO, "feed file %s: short read", path);
    for (size_t i = 0; i < n; i++) /* the file is little-endian */
        if (!isfinite(s->probe_in[i]))
            return lt_seterr(err, LT_EINVAL, "feed file %s: value %zu is not finite", path, i);
    return LT_OK;
}

static int feed_shape(lt_session *s, const char *text, lt_sb *out, lt_err *err) {
    int shape[LT_MAX_DIMS], nd = 0;
    const char *p = text;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 1000000 || errno || *p == '+' || *p == '-' || nd == LT_MAX_DIMS - 1)
            return lt_seterr(err, LT_EINVAL,
                             "feed shape: '%.64s' is not a shape like 1x28x28 (1 to %d sizes from 1 to 1000000)", text,
                             LT_MAX_DIMS - 1);
        shape[nd++] = (int)v;
        if (*end == '\0') break;
        if (*end != 'x') return lt_seterr(err, LT_EINVAL, "feed shape: '%.64s' is not a shape like 1x28x28", text);
        p = end + 1;
    }
    const lt_model *m = &s->t.mod.model;
    int(*shapes)[LT_MAX_DIMS] = lt_calloc((size_t)m->nlayers + 1, sizeof *shapes, err);
    int *ndims = lt_calloc((size_t)m->nlayers + 1, sizeof *ndims, err);
    int failed = -1, rc = shapes && ndims ? LT_OK : LT_ENOMEM;
    if (!rc && (rc = lt_model_infer_shapes(m, shape, nd, shapes, ndims, &failed, err)) == LT_OK)
        for (int i = 0; i < m->nlayers; i++) {
            char shp[64];
            lt_shape_str(shapes[i], ndims[i], shp, sizeof shp);
            lt_sb_printf(out, "layer=%s type=%s shape=%s\n", m->layers[i].name, lt_layer_kind_name(m->layers[i].kind),
                         shp);
        }
    free(shapes);
    free(ndims);
    return rc;
}

/* feed text "<prompt>" [N]: a sequence model continues the prompt (the
 * experiment's feed_text hook), on the probe graph, in eval mode. */
static int feed_text(lt_session *s, int argc, char **argv, lt_sb *out, lt_err *err) {
    lt_module *m = &s->t.mod;
    if (!m->exp->feed_text)
        return lt_seterr(err, LT_EUNSUPPORTED, "feed text: experiment %s takes no text", m->exp->name);
    if (argc < 3 || argc > 4) return lt_seterr(err, LT_EINVAL, "usage: feed text \"<prompt>\" [length]");
    long n = 200;
    int rc;
    if (argc == 4 && (rc = lt_session_parse_long(argv[3], 1, 1000, "feed text length", &n, err))) return rc;
    if ((rc = probe_graph(s, err))) return rc;
    static char body[32768];
    if ((rc = m->exp->feed_text(m, &s->probe, argv[2], (int)n, body, sizeof body, err))) return rc;
    lt_sb_printf(out, "%s", body);
    return LT_OK;
}

/* feed on this rank's replica (rank 0's, or another's answering rank 0) */
static int feed(lt_session *s, int argc, char **argv, lt_sb *out, lt_err *err) {
    static const char usage[] = "usage: feed test <I> | feed random | feed misclassified | feed file <PATH> | feed "
                                "shape <D1xD2...> | feed text \"<prompt>\" [N]";
    if (argc < 2) return lt_seterr(err, LT_EINVAL, "%s", usage);
    const char *mode = argv[1];
    if (!strcmp(mode, "text")) return feed_text(s, argc, argv, out, err);
    int nargs = !strcmp(mode, "test") || !strcmp(mode, "file") || !strcmp(mode, "shape") ? 1 : 0;
    if ((strcmp(mode, "test") && strcmp(mode, "file") && strcmp(mode, "shape") && strcmp(mode, "random") &&
         strcmp(mode, "misclassified")) ||
        argc != 2 + nargs)
        return lt_seterr(err, LT_EINVAL, "%s", usage);
    if (!strcmp(mode, "shape")) return feed_shape(s, argv[2], out, err);
    int rc = ensure_input(s, err);
    if (rc) return rc;
    const lt_dataset *d = &s->t.mod.test_data;
    if (!strcmp(mode, "file")) {
        if ((rc = load_file(s, argv[2], err))) return rc;
        char src[1100];
        snprintf(src, sizeof src, "file:%s", argv[2]);
        for (char *c = src; *c; c++)
            if (*c == '\n' || *c == '\r') *c = '?';
        return probe_reply(s, src, -1, out, err);
    }
    if (d->n == 0) return lt_seterr(err, LT_ENOTFOUND, "feed %s: this run has no test set", mode);
    if (!strcmp(mode, "misclassified")) return feed_misclassified(s, out, err);
    long i;
    if (!strcmp(mode, "random"))
        i = (long)lt_rng_below(&s->probe_rng, d->n);
    else if ((rc = lt_session_parse_long(argv[2], 0, (long)d->n - 1, "feed test", &i, err)))
        return rc;
    return feed_test_sample(s, (size_t)i, out, err);
}

/* `feed ... --rank R`: rank R's replica runs the probe (and keeps it for
 * `inspect --rank R`); the path of `feed file` is then rank R's. */
int lt_session_cmd_feed(lt_session *s, int argc, char **argv, lt_sb *out, lt_err *err) {
    char *words[LT_SESSION_WORDS_MAX + 1];
    int n;
    long rank;
    int rc = lt_session_rank_words("feed", argc, argv, words, &n, &rank, err);
    if (rc) return rc;
    if (rank == 0) return feed(s, n, words, out, err);
    return lt_session_ask_rank(s, "feed", rank, n, words, out, err);
}
