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
static void linear_bw(lt_node *n) {
    lt_tensor *x = n->in[0], *w = n->in[1];
    /* the kernel may mask dout in place; it is this node's own gradient buffer */
    lt_graph_be(n->g)->linear_backward(lt_in_grad(n, 0), lt_in_grad(n, 1), lt_in_grad(n, 2), n->out->grad, n->out->data,
                                       x->data, w->data, n->iarg[0], n->iarg[1], n->iarg[2], (lt_act)n->iarg[3]);
}

lt_tensor *lt_linear(lt_graph *g, lt_tensor *x, lt_tensor *w, lt_tensor *b, int fuse, lt_err *err) {
    char s1[64], s2[64];
    if (x->ndim != 2 || w->ndim != 2 || x->shape[1] != w->shape[1] || (b && (b->numel != (size_t)w->shape[0]))) {
        lt_seterr(err, LT_ESHAPE, "linear: input %s does not fit weight %s (expects [B, %d])",
                  lt_shape_str(x->shape, x->ndim, s1, sizeof s1), lt_shape_str(w->shape, w->ndim, s2, sizeof s2),
                  w->ndim == 2 ? w->shape[1] : -1);
        return NULL;
    }
    int B = x->shape[0], IN = x->shape[1], OUT = w->shape[0];
    int shape[2] = {B, OUT};
    lt_tensor *y = lt_graph_out(g, "linear", shape, 2, err);
    if (!y) return NULL;
    lt_graph_be(g)->linear_forward(y->data, x->data, w->data, b ? b->data : NULL, B, IN, OUT, (lt_act)fuse);
    lt_tensor *in[3] = {x, w, b};
    if (lt_needs_grad(g, in, 3)) {
        lt_node *n = lt_graph_record(g, "linear", linear_bw, y, in, 3);
        if (!n) return oom(err, "linear");
        n->iarg[0] = B, n->iarg[1] = IN, n->iarg[2] = OUT, n->iarg[3] = fuse;
    }
    return y;
}

/* ---- conv2d ---- */
static int ensure_scratch(lt_graph *g, size_t floats) {
    if (floats <= g->scratch_floats) return 0;
    /* grows at most a few times during the first steps, then never */
    float *s = aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
    if (!s) return -1;
    free(g->scratch);
    g->scratch = s;
    g->scratch_floats = floats;
    return 0;
}

static void conv2d_bw(lt_node *n) {
    lt_tensor *x = n->in[0], *w = n->in[1];
    int *a = n->iarg;
    lt_graph_be(n->g)->conv2d_backward(lt_in_grad(n, 0), lt_in_grad(n, 1), lt_in_grad(n, 2), n->out->grad, n->out->data,
                                       x->data, w->data, x->shape[0], x->shape[1], x->shape[2], x->shape[3],
                                       w->shape[0], w->shape[2], w->shape[3], a[0], a[1], (lt_act)a[2], n->g->scratch);
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
    int B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int OC = w->shape[0], KH = w->shape[2], KW = w->shape[3];
    if (stride < 1 || pad < 0 || H + 2 * pad < KH || W + 2 * pad < KW) {
        lt_seterr(err, LT_ESHAPE, "conv2d: a %dx%d kernel does not fit a %dx%d input with padding %d", KH, KW, H, W,
                  pad);
        return NULL;
    }
    int OH = (H + 2 * pad - KH) / stride + 1, OW = (W + 2 * pad - KW) / stride + 1;
    int shape[4] = {B, OC, OH, OW};
    lt_tensor *y = lt_graph_out(g, "conv2d", shape, 4, err);
    if (!y) return NULL;
    if (ensure_scratch(g, lt_graph_be(g)->conv2d_scratch_floats(B, C, H, W, OC, KH, KW, stride, pad)))
        return oom(err, "conv2d workspace");
    lt_graph_be(g)->conv2d_forward(y->data, x->data, w->data, b ? b->data : NULL, B, C, H, W, OC, KH, KW, stride, pad,
                                   (lt_act)fuse, g->scratch);
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

static void maxpool_bw(lt_node *n) {
    lt_tensor *x = n->in[0], *y = n->out;
    if (n->fresh)
        lt_graph_be(n->g)->maxpool2d_backward_fill(x->grad, y->grad, n->saved, x->shape[0], x->shape[1], x->shape[2],
                                                   x->shape[3], y->shape[2], y->shape[3]);
    else
        lt_graph_be(n->g)->maxpool2d_backward(x->grad, y->grad, n->saved, x->shape[0], x->shape[1], x->shape[2],
                                              x->shape[3], y->shape[2], y->shape[3]);
}

lt_tensor *lt_maxpool2d(lt_graph *g, lt_tensor *x, int k, int stride, int pad, lt_err *err) {
    int shape[4];
    if (pool_shape("maxpool2d", x, k, stride, pad, shape, err)) return NULL;
    lt_tensor *y = lt_graph_out(g, "maxpool2d", shape, 4, err);
    int32_t *idx = y ? lt_arena_alloc(&g->arena, y->numel * sizeof(int32_t)) : NULL;
    if (!idx) return oom(err, "maxpool2d");
    lt_graph_be(g)->maxpool2d_forward(y->data, idx, x->data, x->shape[0], x->shape[1], x->shape[2], x->shape[3], k,
                                      stride, pad);
    if (lt_needs_grad(g, &x, 1)) {
        lt_node *n = lt_graph_record(g, "maxpool2d", maxpool_bw, y, &x, 1);
        if (!n) return oom(err, "maxpool2d");
        n->saved = idx;
        /* non-overlapping windows tiling the input: backward can write all of dx */
        n->fills_in0_grad = k == stride && pad == 0 && x->shape[2] % k == 0 && x->shape[3] % k == 0;
    }
    return y;
}

static void avgpool_bw(lt_node *n) {
    lt_tensor *x = n->in[0];
    lt_graph_be(n->g)->avgpool2d_backward(x->grad, n->out->grad, x->shape[0], x->shape[1], x->shape[2], x->shape[3],
                                          n->iarg[0], n->iarg[1], n->iarg[2]);
}

lt_tensor *lt_avgpool2d(lt_graph *g, lt_tensor *x, int k, int stride, int pad, lt_err *err) {
    int shape[4];
    if (pool_shape("avgpool2d", x, k, stride, pad, shape, err)) return NULL;
    lt_tensor *y = lt_graph_out(g, "avgpool2d", shape, 4, err);
    if (!y) return NULL;
    lt_graph_be(g)->avgpool2d_forward(y->data, x->data, x->shape[0], x->shape[1], x->shape[2], x->shape[3], k, stride,
                                      pad);
    if (lt_needs_grad(g, &x, 1)) {
        lt_node *n = lt_graph_record(g, "avgpool2d", avgpool_bw, y, &x, 1);
        if (!n) return oom(err, "avgpool2d");
        n->iarg[0] = k, n->iarg[1] = stride, n->iarg[2] = pad;
    }
    return y;
}

/* ---- dropout ---- */
static void dropout_bw(lt_node *n) {
    lt_graph_be(n->g)->dropout_backward(n->in[0]->grad, n->out->grad, n->saved, n->out->numel);
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
    lt_tensor *y = lt_graph_out(g, "dropout", x->shape, x->ndim, err);
    float *mask = y ? lt_arena_alloc(&g->arena, x->numel * sizeof(float)) : NULL;
    if (!mask) return oom(err, "dropout");
    lt_graph_be(g)->dropout_forward(y->data, mask, x->data, x->numel, p, g->rng);
    if (lt_needs_grad(g, &x, 1)) {
        lt_node *n = lt_graph_record(g, "dropout", dropout_bw, y, &x, 1);
        if (!n) return oom(err, "dropout");
        n->saved = mask;
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
    if (lt_needs_grad(g, &x, 1)) {
        if (!lt_graph_grad(g, x)) return oom(err, "reshape");
        y->grad = x->grad;
        if (!lt_graph_record(g, "reshape", flatten_bw, y, &x, 1)) return oom(err, "reshape");
    }
    return y;
}

/* ---- batch-norm 2-D ---- */
static void batchnorm_bw(lt_node *n) {
    lt_tensor *x = n->in[0];
    float *save = n->saved;
    int C = x->shape[1];
    lt_graph_be(n->g)->batchnorm2d_backward(lt_in_grad(n, 0), lt_in_grad(n, 1), lt_in_grad(n, 2), n->out->grad, x->data,
                                            n->in[1]->data, save, save + C, x->shape[0], C, x->shape[2] * x->shape[3]);
}

lt_tensor *lt_batchnorm2d(lt_graph *g, lt_tensor *x, lt_tensor *gamma, lt_tensor *beta, float *running_mean,
                          float *running_var, float momentum, float eps, lt_err *err) {
    char s1[64];
    if (x->ndim != 4 || gamma->numel != (size_t)x->shape[1] || beta->numel != (size_t)x->shape[1]) {
        lt_seterr(err, LT_ESHAPE, "batchnorm2d: input %s does not have %zu channels",
                  lt_shape_str(x->shape, x->ndim, s1, sizeof s1), gamma->numel);
        return NULL;
    }
    int B = x->shape[0], C = x->shape[1], HW = x->shape[2] * x->shape[3];
    lt_tensor *y = lt_graph_out(g, "batchnorm2d", x->shape, 4, err);
    float *save = y ? lt_arena_alloc(&g->arena, 2 * (size_t)C * sizeof(float)) : NULL;
    if (!save) return oom(err, "batchnorm2d");
    lt_graph_be(g)->batchnorm2d_forward(y->data, save, save + C, x->data, gamma->data, beta->data, running_mean,
                                        running_var, B, C, HW, momentum, eps, g->training);
    lt_tensor *in[3] = {x, gamma, beta};
    if (g->training && lt_needs_grad(g, in, 3)) {
        lt_node *n = lt_graph_record(g, "batchnorm2d", batchnorm_bw, y, in, 3);
        if (!n) return oom(err, "batchnorm2d");
        n->saved = save;
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
    lt_tensor *x = n->in[0];
    lt_graph_be(n->g)->cross_entropy_backward(x->grad, n->out->grad[0], n->saved, n->labels, x->shape[0], x->shape[1]);
}

lt_tensor *lt_cross_entropy(lt_graph *g, lt_tensor *logits, const int32_t *labels, lt_err *err) {
    if (check_labels("cross_entropy", logits, labels, err)) return NULL;
    lt_tensor *y = lt_graph_scalar(g, "cross_entropy", err);
    float *probs = y ? lt_arena_alloc(&g->arena, logits->numel * sizeof(float)) : NULL;
    if (!probs) return oom(err, "cross_entropy");
    y->data[0] = lt_graph_be(g)->cross_entropy_forward(probs, logits->data, labels, logits->shape[0], logits->shape[1]);
    if (lt_needs_grad(g, &logits, 1)) {
        lt_node *n = lt_graph_record(g, "cross_entropy", ce_bw, y, &logits, 1);
        if (!n) return oom(err, "cross_entropy");
        n->saved = probs;
        n->labels = labels;
    }
    return y;
}

static void nll_bw(lt_node *n) {
    lt_tensor *x = n->in[0];
    lt_graph_be(n->g)->nll_backward(x->grad, n->out->grad[0], n->labels, x->shape[0], x->shape[1]);
}

lt_tensor *lt_nll(lt_graph *g, lt_tensor *logp, const int32_t *labels, lt_err *err) {
    if (check_labels("nll", logp, labels, err)) return NULL;
    lt_tensor *y = lt_graph_scalar(g, "nll", err);
    if (!y) return NULL;
    y->data[0] = lt_graph_be(g)->nll_forward(logp->data, labels, logp->shape[0], logp->shape[1]);
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
    lt_graph_be(n->g)->mse_backward(lt_in_grad(n, 0), lt_in_grad(n, 1), n->out->grad[0], n->in[0]->data, n->in[1]->data,
                                    n->in[0]->numel);
}

lt_tensor *lt_mse(lt_graph *g, lt_tensor *pred, lt_tensor *target, lt_err *err) {
    if (lt_same_shape("mse", pred, target, err)) return NULL;
    lt_tensor *y = lt_graph_scalar(g, "mse", err);
    if (!y) return NULL;
    y->data[0] = lt_graph_be(g)->mse_forward(pred->data, target->data, pred->numel);
    lt_tensor *in[2] = {pred, target};
    if (lt_needs_grad(g, in, 2) && !lt_graph_record(g, "mse", mse_bw, y, in, 2)) return oom(err, "mse");
    return y;
}
