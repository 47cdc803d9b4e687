/* Differentiable ops with weights or structure: linear, conv2d, pooling,
 * batch-norm, dropout, flatten, reshape; the losses (cross-entropy, NLL,
 * MSE); and what every op shares for
 * recording (lt_graph_record, lt_graph_out: ops/graph_node.h). Forward runs
 * now; backward is recorded. */
#include <stdlib.h>
#include <string.h>

#include "ops/graph_node.h"

lt_node *lt_graph_record(lt_graph *g, const char *op, lt_backward_fn fn, lt_tensor *out, lt_tensor *const *in, int n) {
    lt_node *node = lt_arena_calloc(&g->arena, sizeof *node);
    if (!node) return NULL;
    if (g->ntape == g->captape) {
        int cap = g->captape ? g->captape * 2 : 64;
        lt_node **tape = lt_arena_alloc(&g->arena, (size_t)cap * sizeof *tape);
        if (!tape) return NULL;
        if (g->ntape) memcpy(tape, g->tape, (size_t)g->ntape * sizeof *tape);
        g->tape = tape;
        g->captape = cap;
    }
    node->op = op;
    node->backward = fn;
    node->out = out;
    node->nin = n;
    node->g = g;
    node->f32 = g->f32;
    for (int i = 0; i < n; i++) node->in[i] = in[i];
    out->node = node;
    out->requires_grad = 1;
    g->tape[g->ntape++] = node;
    return node;
}

lt_tensor *lt_graph_out(lt_graph *g, const char *op, const int *shape, int ndim, lt_err *err) {
    lt_tensor *t = lt_graph_tensor(g, shape, ndim);
    if (!t) lt_seterr(err, LT_ENOMEM, "%s: out of memory for the output", op);
    return t;
}

static lt_tensor *oom(lt_err *err, const char *op) {
    lt_seterr(err, LT_ENOMEM, "%s: out of memory", op);
    return NULL;
}

/* ---- linear ---- */
static lt_linear_desc linear_desc(const lt_tensor *x, const lt_tensor *w, int fuse) {
    return (lt_linear_desc){.B = x->shape[0], .IN = x->shape[1], .OUT = w->shape[0], .act = (lt_act)fuse};
}

static void linear_bw(lt_node *n) {
    const lt_backend *be = lt_graph_be(n->g);
    lt_tensor *x = n->in[0], *w = n->in[1];
    lt_linear_desc d = linear_desc(x, w, n->iarg[0]);
    /* the kernel may mask dout in place; it is this node's own gradient buffer */
    be->linear_backward(be, &d, lt_in_grad(n, 0), lt_in_grad(n, 1), lt_in_grad(n, 2), n->out->grad, n->out->data,
                        x->data, w->data);
}

lt_tensor *lt_linear(lt_graph *g, lt_tensor *x, lt_tensor *w, lt_tensor *b, int fuse, lt_err *err) {
    char s1[64], s2[64];
    if (x->ndim != 2 || w->ndim != 2 || x->shape[1] != w->shape[1] || (b && (b->numel != (size_t)w->shape[0]))) {
        lt_seterr(err, LT_ESHAPE, "linear: input %s does not fit weight %s (expects [B, %d])",
                  lt_shape_str(x->shape, x->ndim, s1, sizeof s1), lt_shape_str(w->shape, w->ndim, s2, sizeof s2),
                  w->ndim == 2 ? w->shape[1] : -1);
        return NULL;
    }
    const lt_backend *be = lt_graph_be(g);
    lt_linear_desc d = linear_desc(x, w, fuse);
    if (lt_graph_supports(g, LT_OP_LINEAR, &d, err)) return NULL;
    int shape[2] = {d.B, d.OUT};
    lt_tensor *y = lt_graph_out(g, "linear", shape, 2, err);
    if (!y) return NULL;
    be->linear_forward(be, &d, y->data, x->data, w->data, b ? b->data : NULL);
    lt_tensor *in[3] = {x, w, b};
    if (lt_needs_grad(g, in, 3)) {
        lt_node *n = lt_graph_record(g, "linear", linear_bw, y, in, 3);
        if (!n) return oom(err, "linear");
        n->iarg[0] = fuse;
    }
    return y;
}

/* ---- conv2d ---- */
static int ensure_scratch(lt_graph *g, size_t floats) {
    if (floats <= g->scratch_floats) return 0;
    /* grows at most a few times during the first steps, then never; on the
       graph's device (the backend's step memory when it is not the host) */
    size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    float *s = g->mem ? g->mem->alloc(g->be, bytes) : aligned_alloc(64, bytes);
    if (!s) return -1;
    if (g->mem && g->scratch)
        g->mem->free(g->be, g->scratch);
    else
        free(g->scratch);
    g->scratch = s;
    g->scratch_floats = floats;
    return 0;
}

static lt_conv2d_desc conv2d_desc(const lt_tensor *x, const lt_tensor *w, int stride, int pad, int fuse) {
    return (lt_conv2d_desc){.B = x->shape[0],
                            .C = x->shape[1],
                            .H = x->shape[2],
                            .W = x->shape[3],
                            .OC = w->shape[0],
                            .KH = w->shape[2],
                            .KW = w->shape[3],
                            .stride = stride,
                            .pad = pad,
                            .act = (lt_act)fuse};
}

static lt_pool2d_desc pool_desc(const lt_tensor *x, int k, int stride, int pad);

static void conv2d_bw(lt_node *n) {
    const lt_backend *be = lt_graph_be(n->g);
    lt_tensor *x = n->in[0], *w = n->in[1];
    lt_conv2d_desc d = conv2d_desc(x, w, n->iarg[0], n->iarg[1], n->iarg[2]);
    const lt_node *p = n->grad_from;
    if (p) { /* the output's gradient from the max pool that reads it (maxpool_defer) */
        lt_pool2d_desc pd = pool_desc(n->out, p->iarg[0], p->iarg[1], p->iarg[2]);
        be->conv2d_backward_pooled(be, &d, lt_in_grad(n, 0), lt_in_grad(n, 1), lt_in_grad(n, 2), &pd, p->out->data,
                                   p->out->grad, p->saved, 1, x->data, w->data, n->g->scratch);
        return;
    }
    be->conv2d_backward(be, &d, lt_in_grad(n, 0), lt_in_grad(n, 1), lt_in_grad(n, 2), n->out->grad, n->out->data,
                        x->data, w->data, n->g->scratch);
}

lt_tensor *lt_conv2d(lt_graph *g, lt_tensor *x, lt_tensor *w, lt_tensor *b, int stride, int pad, int fuse,
                     lt_err *err) {
    char s1[64], s2[64];
    if (x->ndim != 4 || w->ndim != 4 || x->shape[1] != w->shape[1]) {
        lt_seterr(err, LT_ESHAPE, "conv2d: input %s does not fit weight %s (expects [B, %d, H, W])",
                  lt_shape_str(x->shape, x->ndim, s1, sizeof s1), lt_shape_str(w->shape, w->ndim, s2, sizeof s2),
                  w->ndim == 4 ? w->shape[1] : -1);
        return NULL;
    }
    int B = x->shape[0], H = x->shape[2], W = x->shape[3];
    int OC = w->shape[0], KH = w->shape[2], KW = w->shape[3];
    if (stride < 1 || pad < 0 || H + 2 * pad < KH || W + 2 * pad < KW) {
        lt_seterr(err, LT_ESHAPE, "conv2d: a %dx%d kernel does not fit a %dx%d input with padding %d", KH, KW, H, W,
                  pad);
        return NULL;
    }
    const lt_backend *be = lt_graph_be(g);
    lt_conv2d_desc d = conv2d_desc(x, w, stride, pad, fuse);
    if (lt_graph_supports(g, LT_OP_CONV2D, &d, err)) return NULL;
    int shape[4] = {B, OC, 0, 0};
    lt_conv2d_out(&d, &shape[2], &shape[3]);
    lt_tensor *y = lt_graph_out(g, "conv2d", shape, 4, err);
    if (!y) return NULL;
    if (ensure_scratch(g, be->conv2d_scratch_floats(be, &d))) return oom(err, "conv2d workspace");
    be->conv2d_forward(be, &d, y->data, x->data, w->data, b ? b->data : NULL, g->scratch);
    lt_tensor *in[3] = {x, w, b};
    if (lt_needs_grad(g, in, 3)) {
        lt_node *n = lt_graph_record(g, "conv2d", conv2d_bw, y, in, 3);
        if (!n) return oom(err, "conv2d");
        n->iarg[0] = stride, n->iarg[1] = pad, n->iarg[2] = fuse;
    }
    return y;
}

/* ---- pooling ---- */
static int pool_shape(const char *op, lt_tensor *x, int k, int stride, int pad, int *shape, lt_err *err) {
    char s1[64];
    if (x->ndim != 4) {
        lt_seterr(err, LT_ESHAPE, "%s: expects [B, C, H, W], got %s", op,
                  lt_shape_str(x->shape, x->ndim, s1, sizeof s1));
        return -1;
    }
    if (k < 1 || stride < 1 || pad < 0 || 2 * pad > k || x->shape[2] + 2 * pad < k || x->shape[3] + 2 * pad < k) {
        lt_seterr(err, LT_ESHAPE, "%s: a %dx%d window (stride %d, padding %d) does not fit a %dx%d input", op, k, k,
                  stride, pad, x->shape[2], x->shape[3]);
        return -1;
    }
    shape[0] = x->shape[0], shape[1] = x->shape[1];
    shape[2] = (x->shape[2] + 2 * pad - k) / stride + 1;
    shape[3] = (x->shape[3] + 2 * pad - k) / stride + 1;
    return 0;
}

static lt_pool2d_desc pool_desc(const lt_tensor *x, int k, int stride, int pad) {
    return (lt_pool2d_desc){
        .B = x->shape[0], .C = x->shape[1], .H = x->shape[2], .W = x->shape[3], .K = k, .stride = stride, .pad = pad};
}

static void maxpool_bw(lt_node *n) {
    const lt_backend *be = lt_graph_be(n->g);
    lt_tensor *x = n->in[0], *y = n->out;
    lt_pool2d_desc d = pool_desc(x, n->iarg[0], n->iarg[1], n->iarg[2]);
    if (n->fresh)
        be->maxpool2d_backward_fill(be, &d, x->grad, y->grad, n->saved);
    else
        be->maxpool2d_backward(be, &d, x->grad, y->grad, n->saved);
}

static int pool_fusion = 1;

void lt_graph_set_pool_fusion(int on) { pool_fusion = on; }

/* lt_node's defer_in0 for a max pool: its input's gradient is made by the
 * conv2d that produced the input, from the pool's gradient (the backend's
 * conv2d_backward_pooled), when the windows tile the input (the pool's fill
 * backward: plain copies of its gradient, so a rounding hook's result is
 * unchanged) and the pool is the input's only reader. */
static int maxpool_defer(lt_node *n) {
    lt_tensor *x = n->in[0];
    lt_node *c = x->node;
    lt_graph *g = n->g;
    if (!pool_fusion || !n->fills_in0_grad || !c || c->backward != conv2d_bw || c->out != x ||
        (c->grad_from && c->grad_from != n) || !lt_graph_be(g)->conv2d_backward_pooled)
        return 0;
    for (int i = 0; i < g->ntape; i++) {
        const lt_node *m = g->tape[i];
        if (m == n) continue;
        for (int k = 0; k < m->nin; k++)
            if (m->in[k] == x) return 0;
        for (int k = 0; k < 3; k++)
            if (m->more[k] == x) return 0;
    }
    c->grad_from = n;
    return 1;
}

lt_tensor *lt_maxpool2d(lt_graph *g, lt_tensor *x, int k, int stride, int pad, lt_err *err) {
    int shape[4];
    if (pool_shape("maxpool2d", x, k, stride, pad, shape, err)) return NULL;
    const lt_backend *be = lt_graph_be(g);
    lt_pool2d_desc d = pool_desc(x, k, stride, pad);
    if (lt_graph_supports(g, LT_OP_MAXPOOL2D, &d, err)) return NULL;
    lt_tensor *y = lt_graph_out(g, "maxpool2d", shape, 4, err);
    int32_t *idx = y ? lt_graph_data(g, y->numel * sizeof(int32_t)) : NULL;
    if (!idx) return oom(err, "maxpool2d");
    be->maxpool2d_forward(be, &d, y->data, idx, x->data);
    if (lt_needs_grad(g, &x, 1)) {
        lt_node *n = lt_graph_record(g, "maxpool2d", maxpool_bw, y, &x, 1);
        if (!n) return oom(err, "maxpool2d");
        n->saved = idx;
        n->iarg[0] = k, n->iarg[1] = stride, n->iarg[2] = pad;
        /* non-overlapping windows tiling the input: backward can write all of dx */
        n->fills_in0_grad = k == stride && pad == 0 && x->shape[2] % k == 0 && x->shape[3] % k == 0;
        n->defer_in0 = maxpool_defer;
    }
    return y;
}

static void avgpool_bw(lt_node *n) {
    const lt_backend *be = lt_graph_be(n->g);
    lt_tensor *x = n->in[0];
    lt_pool2d_desc d = pool_desc(x, n->iarg[0], n->iarg[1], n->iarg[2]);
    be->avgpool2d_backward(be, &d, x->grad, n->out->grad);
}

lt_tensor *lt_avgpool2d(lt_graph *g, lt_tensor *x, int k, int stride, int pad, lt_err *err) {
    int shape[4];
    if (pool_shape("avgpool2d", x, k, stride, pad, shape, err)) return NULL;
    const lt_backend *be = lt_graph_be(g);
    lt_pool2d_desc d = pool_desc(x, k, stride, pad);
    if (lt_graph_supports(g, LT_OP_AVGPOOL2D, &d, err)) return NULL;
    lt_tensor *y = lt_graph_out(g, "avgpool2d", shape, 4, err);
    if (!y) return NULL;
    be->avgpool2d_forward(be, &d, y->data, x->data);
    if (lt_needs_grad(g, &x, 1)) {
        lt_node *n = lt_graph_record(g, "avgpool2d", avgpool_bw, y, &x, 1);
        if (!n) return oom(err, "avgpool2d");
        n->iarg[0] = k, n->iarg[1] = stride, n->iarg[2] = pad;
    }
    return y;
}

/* ---- dropout ---- */
static void dropout_bw(lt_node *n) {
    const lt_backend *be = lt_graph_be(n->g);
    lt_elem_desc d = {.n = n->out->numel, .alpha = n->farg[0]};
    be->dropout_backward(be, &d, n->in[0]->grad, n->out->grad, n->saved);
}

lt_tensor *lt_dropout(lt_graph *g, lt_tensor *x, float p, lt_err *err) {
    if (!(p >= 0.0f && p < 1.0f)) {
        lt_seterr(err, LT_EINVAL, "dropout: rate %g is outside [0, 1)", (double)p);
        return NULL;
    }
    if (!g->training || p == 0.0f) return x;
    if (!g->rng) {
        lt_seterr(err, LT_ESTATE, "dropout: the graph has no random number generator");
        return NULL;
    }
    const lt_backend *be = lt_graph_be(g);
    lt_elem_desc d = {.n = x->numel, .alpha = p};
    if (lt_graph_supports(g, LT_OP_DROPOUT, &d, err)) return NULL;
    lt_tensor *y = lt_graph_out(g, "dropout", x->shape, x->ndim, err);
    float *mask = y ? lt_graph_data(g, x->numel * sizeof(float)) : NULL;
    if (!mask) return oom(err, "dropout");
    be->dropout_forward(be, &d, y->data, mask, x->data, g->rng);
    if (lt_needs_grad(g, &x, 1)) {
        lt_node *n = lt_graph_record(g, "dropout", dropout_bw, y, &x, 1);
        if (!n) return oom(err, "dropout");
        n->saved = mask;
        n->farg[0] = p;
    }
    return y;
}

/* ---- flatten: a view; the gradient is shared, so backward has nothing to do ---- */
static void flatten_bw(lt_node *n) { (void)n; }

lt_tensor *lt_flatten(lt_graph *g, lt_tensor *x, lt_err *err) {
    if (x->ndim < 1) {
        lt_seterr(err, LT_ESHAPE, "flatten: needs a batch dimension");
        return NULL;
    }
    int shape[2] = {x->shape[0], (int)(x->numel / (size_t)(x->shape[0] ? x->shape[0] : 1))};
    lt_tensor *y = lt_arena_alloc(&g->arena, sizeof *y);
    if (!y) return oom(err, "flatten");
    lt_tensor_view(y, x->data, shape, 2);
    y->device = x->device; /* a view lives where its input does */
    if (lt_needs_grad(g, &x, 1)) {
        /* share the gradient storage: allocate the input's now so both alias it */
        if (!lt_graph_grad(g, x)) return oom(err, "flatten");
        y->grad = x->grad;
        if (!lt_graph_record(g, "flatten", flatten_bw, y, &x, 1)) return oom(err, "flatten");
    }
    return y;
}

lt_tensor *lt_reshape(lt_graph *g, lt_tensor *x, const int *shape, int ndim, lt_err *err) {
    char s1[64], s2[64];
    if (ndim < 1 || ndim > LT_MAX_DIMS || lt_shape_numel(shape, ndim) != x->numel) {
        lt_seterr(err, LT_ESHAPE, "reshape: %s cannot become %s", lt_shape_str(x->shape, x->ndim, s1, sizeof s1),
                  lt_shape_str(shape, ndim, s2, sizeof s2));
        return NULL;
    }
    lt_tensor *y = lt_arena_alloc(&g->arena, sizeof *y);
    if (!y) return oom(err, "reshape");
    lt_tensor_view(y, x->data, shape, ndim);
    y->device = x->device;
    if (lt_needs_grad(g, &x, 1)) {
        if (!lt_graph_grad(g, x)) return oom(err, "reshape");
        y->grad = x->grad;
        if (!lt_graph_record(g, "reshape", flatten_bw, y, &x, 1)) return oom(err, "reshape");
    }
    return y;
}

/* ---- batch-norm 2-D ---- */
static lt_batchnorm2d_desc batchnorm_desc(const lt_tensor *x, float momentum, float eps, int training) {
    return (lt_batchnorm2d_desc){.B = x->shape[0],
                                 .C = x->shape[1],
                                 .HW = x->shape[2] * x->shape[3],
                                 .momentum = momentum,
                                 .eps = eps,
                                 .training = training};
}

static void batchnorm_bw(lt_node *n) {
    const lt_backend *be = lt_graph_be(n->g);
    lt_tensor *x = n->in[0];
    float *save = n->saved;
    lt_batchnorm2d_desc d = batchnorm_desc(x, n->farg[0], n->farg[1], 1);
    be->batchnorm2d_backward(be, &d, lt_in_grad(n, 0), lt_in_grad(n, 1), lt_in_grad(n, 2), n->out->grad, x->data,
                             n->in[1]->data, save, save + d.C);
}

lt_tensor *lt_batchnorm2d(lt_graph *g, lt_tensor *x, lt_tensor *gamma, lt_tensor *beta, float *running_mean,
                          float *running_var, float momentum, float eps, lt_err *err) {
    char s1[64];
    if (x->ndim != 4 || gamma->numel != (size_t)x->shape[1] || beta->numel != (size_t)x->shape[1]) {
        lt_seterr(err, LT_ESHAPE, "batchnorm2d: input %s does not have %zu channels",
                  lt_shape_str(x->shape, x->ndim, s1, sizeof s1), gamma->numel);
        return NULL;
    }
    const lt_backend *be = lt_graph_be(g);
    lt_batchnorm2d_desc d = batchnorm_desc(x, momentum, eps, g->training);
    if (lt_graph_supports(g, LT_OP_BATCHNORM2D, &d, err)) return NULL;
    lt_tensor *y = lt_graph_out(g, "batchnorm2d", x->shape, 4, err);
    float *save = y ? lt_graph_data(g, 2 * (size_t)d.C * sizeof(float)) : NULL;
    if (!save) return oom(err, "batchnorm2d");
    be->batchnorm2d_forward(be, &d, y->data, save, save + d.C, x->data, gamma->data, beta->data, running_mean,
                            running_var);
    lt_tensor *in[3] = {x, gamma, beta};
    if (g->training && lt_needs_grad(g, in, 3)) {
        lt_node *n = lt_graph_record(g, "batchnorm2d", batchnorm_bw, y, in, 3);
        if (!n) return oom(err, "batchnorm2d");
        n->saved = save;
        n->farg[0] = momentum, n->farg[1] = eps;
    }
    return y;
}

/* ---- losses ---- */
static int check_labels(const char *op, const lt_tensor *x, const int32_t *labels, lt_err *err) {
    char s1[64];
    if (x->ndim != 2) {
        lt_seterr(err, LT_ESHAPE, "%s: expects [B, classes], got %s", op,
                  lt_shape_str(x->shape, x->ndim, s1, sizeof s1));
        return -1;
    }
    for (int b = 0; b < x->shape[0]; b++)
        if (labels[b] < 0 || labels[b] >= x->shape[1]) {
            lt_seterr(err, LT_EINVAL, "%s: label %d of sample %d is outside [0, %d)", op, labels[b], b, x->shape[1]);
            return -1;
        }
    return 0;
}

static void ce_bw(lt_node *n) {
    const lt_backend *be = lt_graph_be(n->g);
    lt_tensor *x = n->in[0];
    lt_rows_desc d = {.R = x->shape[0], .C = x->shape[1]};
    be->cross_entropy_backward(be, &d, x->grad, n->out->grad, n->saved, n->labels);
}

lt_tensor *lt_cross_entropy(lt_graph *g, lt_tensor *logits, const int32_t *labels, lt_err *err) {
    if (check_labels("cross_entropy", logits, labels, err)) return NULL;
    /* checked on the host; the kernels read them where the graph's data lives */
    if (!(labels = lt_graph_ints(g, labels, (size_t)logits->shape[0], 0, err))) return NULL;
    const lt_backend *be = lt_graph_be(g);
    lt_rows_desc d = {.R = logits->shape[0], .C = logits->shape[1]};
    if (lt_graph_supports(g, LT_OP_CROSS_ENTROPY, &d, err)) return NULL;
    lt_tensor *y = lt_graph_scalar(g, "cross_entropy", err);
    float *probs = y ? lt_graph_data(g, logits->numel * sizeof(float)) : NULL;
    if (!probs) return oom(err, "cross_entropy");
    be->cross_entropy_forward(be, &d, y->data, probs, logits->data, labels);
    if (lt_needs_grad(g, &logits, 1)) {
        lt_node *n = lt_graph_record(g, "cross_entropy", ce_bw, y, &logits, 1);
        if (!n) return oom(err, "cross_entropy");
        n->saved = probs;
        n->labels = labels;
    }
    return y;
}

static void nll_bw(lt_node *n) {
    const lt_backend *be = lt_graph_be(n->g);
    lt_tensor *x = n->in[0];
    lt_rows_desc d = {.R = x->shape[0], .C = x->shape[1]};
    be->nll_backward(be, &d, x->grad, n->out->grad, n->labels);
}

lt_tensor *lt_nll(lt_graph *g, lt_tensor *logp, const int32_t *labels, lt_err *err) {
    if (check_labels("nll", logp, labels, err)) return NULL;
    if (!(labels = lt_graph_ints(g, labels, (size_t)logp->shape[0], 0, err))) return NULL;
    const lt_backend *be = lt_graph_be(g);
    lt_rows_desc d = {.R = logp->shape[0], .C = logp->shape[1]};
    if (lt_graph_supports(g, LT_OP_NLL, &d, err)) return NULL;
    lt_tensor *y = lt_graph_scalar(g, "nll", err);
    if (!y) return NULL;
    be->nll_forward(be, &d, y->data, logp->data, labels);
    if (lt_needs_grad(g, &logp, 1)) {
        lt_node *n = lt_graph_record(g, "nll", nll_bw, y, &logp, 1);
        if (!n) return oom(err, "nll");
        n->labels = labels;
    }
    return y;
}

int lt_same_shape(const char *op, const lt_tensor *a, const lt_tensor *b, lt_err *err) {
    char s1[64], s2[64];
    if (a->ndim == b->ndim && a->numel == b->numel && memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof(int)) == 0)
        return 0;
    lt_seterr(err, LT_ESHAPE, "%s: shapes %s and %s differ", op, lt_shape_str(a->shape, a->ndim, s1, sizeof s1),
              lt_shape_str(b->shape, b->ndim, s2, sizeof s2));
    return -1;
}

static void mse_bw(lt_node *n) {
    const lt_backend *be = lt_graph_be(n->g);
    lt_elem_desc d = {.n = n->in[0]->numel};
    be->mse_backward(be, &d, lt_in_grad(n, 0), lt_in_grad(n, 1), n->out->grad, n->in[0]->data, n->in[1]->data);
}

lt_tensor *lt_mse(lt_graph *g, lt_tensor *pred, lt_tensor *target, lt_err *err) {
    if (lt_same_shape("mse", pred, target, err)) return NULL;
    const lt_backend *be = lt_graph_be(g);
    lt_elem_desc d = {.n = pred->numel};
    if (lt_graph_supports(g, LT_OP_MSE, &d, err)) return NULL;
    lt_tensor *y = lt_graph_scalar(g, "mse", err);
    if (!y) return NULL;
    be->mse_forward(be, &d, y->data, pred->data, target->data);
    lt_tensor *in[2] = {pred, target};
    if (lt_needs_grad(g, in, 2) && !lt_graph_record(g, "mse", mse_bw, y, in, 2)) return oom(err, "mse");
    return y;
}
