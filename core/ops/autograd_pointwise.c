/* Differentiable element-wise ops, softmax, losses and arithmetic. */
#include <string.h>

#include "ops/graph_node.h"

static lt_tensor *oom(lt_err *err, const char *op) {
    lt_seterr(err, LT_ENOMEM, "%s: out of memory", op);
    return NULL;
}

/* ---- activations: one macro-free table keeps the five alike ---- */
enum { ACT_RELU, ACT_TANH, ACT_SIGMOID, ACT_GELU, ACT_ELU };
static const char *const act_names[] = {"relu", "tanh", "sigmoid", "gelu", "elu"};

static void act_bw(lt_node *n) {
    const lt_backend *be = n->g->be;
    lt_tensor *x = n->in[0], *y = n->out;
    switch (n->iarg[0]) {
    case ACT_RELU: be->relu_backward(x->grad, y->grad, x->data, y->data, y->numel); break;
    case ACT_TANH: be->tanh_backward(x->grad, y->grad, x->data, y->data, y->numel); break;
    case ACT_SIGMOID: be->sigmoid_backward(x->grad, y->grad, x->data, y->data, y->numel); break;
    case ACT_GELU: be->gelu_backward(x->grad, y->grad, x->data, y->data, y->numel); break;
    case ACT_ELU: be->elu_backward(x->grad, y->grad, x->data, y->data, y->numel, n->farg[0]); break;
    }
}

static lt_tensor *activation(lt_graph *g, lt_tensor *x, int kind, float alpha, lt_err *err) {
    const lt_backend *be = g->be;
    lt_tensor *y = lt_graph_out(g, act_names[kind], x->shape, x->ndim, err);
    if (!y) return NULL;
    switch (kind) {
    case ACT_RELU: be->relu_forward(y->data, x->data, x->numel); break;
    case ACT_TANH: be->tanh_forward(y->data, x->data, x->numel); break;
    case ACT_SIGMOID: be->sigmoid_forward(y->data, x->data, x->numel); break;
    case ACT_GELU: be->gelu_forward(y->data, x->data, x->numel); break;
    case ACT_ELU: be->elu_forward(y->data, x->data, x->numel, alpha); break;
    }
    if (lt_needs_grad(g, &x, 1)) {
        lt_node *n = lt_graph_record(g, act_names[kind], act_bw, y, &x, 1);
        if (!n) return oom(err, act_names[kind]);
        n->iarg[0] = kind;
        n->farg[0] = alpha;
    }
    return y;
}

lt_tensor *lt_relu(lt_graph *g, lt_tensor *x, lt_err *err) { return activation(g, x, ACT_RELU, 0, err); }
lt_tensor *lt_tanh(lt_graph *g, lt_tensor *x, lt_err *err) { return activation(g, x, ACT_TANH, 0, err); }
lt_tensor *lt_sigmoid(lt_graph *g, lt_tensor *x, lt_err *err) { return activation(g, x, ACT_SIGMOID, 0, err); }
lt_tensor *lt_gelu(lt_graph *g, lt_tensor *x, lt_err *err) { return activation(g, x, ACT_GELU, 0, err); }
lt_tensor *lt_elu(lt_graph *g, lt_tensor *x, float alpha, lt_err *err) { return activation(g, x, ACT_ELU, alpha, err); }

/* ---- softmax / log-softmax over the last dimension ---- */
static void rows_cols(const lt_tensor *x, int *R, int *C) {
    *C = x->ndim ? x->shape[x->ndim - 1] : 1;
    *R = (int)(x->numel / (size_t)(*C ? *C : 1));
}

static void softmax_bw(lt_node *n) {
    int R, C;
    rows_cols(n->out, &R, &C);
    if (n->iarg[0])
        n->g->be->log_softmax_backward(n->in[0]->grad, n->out->grad, n->out->data, R, C);
    else
        n->g->be->softmax_backward(n->in[0]->grad, n->out->grad, n->out->data, R, C);
}

static lt_tensor *softmax_any(lt_graph *g, lt_tensor *x, int log, lt_err *err) {
    const char *op = log ? "log_softmax" : "softmax";
    int R, C;
    rows_cols(x, &R, &C);
    lt_tensor *y = lt_graph_out(g, op, x->shape, x->ndim, err);
    if (!y) return NULL;
    if (log)
        g->be->log_softmax_forward(y->data, x->data, R, C);
    else
        g->be->softmax_forward(y->data, x->data, R, C);
    if (lt_needs_grad(g, &x, 1)) {
        lt_node *n = lt_graph_record(g, op, softmax_bw, y, &x, 1);
        if (!n) return oom(err, op);
        n->iarg[0] = log;
    }
    return y;
}

lt_tensor *lt_softmax(lt_graph *g, lt_tensor *x, lt_err *err) { return softmax_any(g, x, 0, err); }
lt_tensor *lt_log_softmax(lt_graph *g, lt_tensor *x, lt_err *err) { return softmax_any(g, x, 1, err); }

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

static lt_tensor *scalar_out(lt_graph *g, const char *op, lt_err *err) {
    int one = 1;
    return lt_graph_out(g, op, &one, 0, err);
}

static void ce_bw(lt_node *n) {
    lt_tensor *x = n->in[0];
    n->g->be->cross_entropy_backward(x->grad, n->out->grad[0], n->saved, n->labels, x->shape[0], x->shape[1]);
}

lt_tensor *lt_cross_entropy(lt_graph *g, lt_tensor *logits, const int32_t *labels, lt_err *err) {
    if (check_labels("cross_entropy", logits, labels, err)) return NULL;
    lt_tensor *y = scalar_out(g, "cross_entropy", err);
    float *probs = y ? lt_arena_alloc(&g->arena, logits->numel * sizeof(float)) : NULL;
    if (!probs) return oom(err, "cross_entropy");
    y->data[0] = g->be->cross_entropy_forward(probs, logits->data, labels, logits->shape[0], logits->shape[1]);
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
    n->g->be->nll_backward(x->grad, n->out->grad[0], n->labels, x->shape[0], x->shape[1]);
}

lt_tensor *lt_nll(lt_graph *g, lt_tensor *logp, const int32_t *labels, lt_err *err) {
    if (check_labels("nll", logp, labels, err)) return NULL;
    lt_tensor *y = scalar_out(g, "nll", err);
    if (!y) return NULL;
    y->data[0] = g->be->nll_forward(logp->data, labels, logp->shape[0], logp->shape[1]);
    if (lt_needs_grad(g, &logp, 1)) {
        lt_node *n = lt_graph_record(g, "nll", nll_bw, y, &logp, 1);
        if (!n) return oom(err, "nll");
        n->labels = labels;
    }
    return y;
}

static int same_shape(const char *op, const lt_tensor *a, const lt_tensor *b, lt_err *err) {
    char s1[64], s2[64];
    if (a->ndim == b->ndim && a->numel == b->numel && memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof(int)) == 0)
        return 0;
    lt_seterr(err, LT_ESHAPE, "%s: shapes %s and %s differ", op, lt_shape_str(a->shape, a->ndim, s1, sizeof s1),
              lt_shape_str(b->shape, b->ndim, s2, sizeof s2));
    return -1;
}

static void mse_bw(lt_node *n) {
    n->g->be->mse_backward(lt_in_grad(n, 0), lt_in_grad(n, 1), n->out->grad[0], n->in[0]->data, n->in[1]->data,
                           n->in[0]->numel);
}

lt_tensor *lt_mse(lt_graph *g, lt_tensor *pred, lt_tensor *target, lt_err *err) {
    if (same_shape("mse", pred, target, err)) return NULL;
    lt_tensor *y = scalar_out(g, "mse", err);
    if (!y) return NULL;
    y->data[0] = g->be->mse_forward(pred->data, target->data, pred->numel);
    lt_tensor *in[2] = {pred, target};
    if (lt_needs_grad(g, in, 2) && !lt_graph_record(g, "mse", mse_bw, y, in, 2)) return oom(err, "mse");
    return y;
}

/* ---- arithmetic (plain loops: these are for composing small losses) ---- */
static void add_bw(lt_node *n) {
    const float *dy = n->out->grad;
    for (int k = 0; k < 2; k++) {
        float *dx = lt_in_grad(n, k);
        if (dx)
            for (size_t i = 0; i < n->out->numel; i++) dx[i] += dy[i];
    }
}

lt_tensor *lt_add(lt_graph *g, lt_tensor *a, lt_tensor *b, lt_err *err) {
    if (same_shape("add", a, b, err)) return NULL;
    lt_tensor *y = lt_graph_out(g, "add", a->shape, a->ndim, err);
    if (!y) return NULL;
    for (size_t i = 0; i < a->numel; i++) y->data[i] = a->data[i] + b->data[i];
    lt_tensor *in[2] = {a, b};
    if (lt_needs_grad(g, in, 2) && !lt_graph_record(g, "add", add_bw, y, in, 2)) return oom(err, "add");
    return y;
}

static void mul_bw(lt_node *n) {
    const float *dy = n->out->grad;
    float *da = lt_in_grad(n, 0), *db = lt_in_grad(n, 1);
    const float *a = n->in[0]->data, *b = n->in[1]->data;
    for (size_t i = 0; i < n->out->numel; i++) {
        if (da) da[i] += dy[i] * b[i];
        if (db) db[i] += dy[i] * a[i];
    }
}

lt_tensor *lt_mul(lt_graph *g, lt_tensor *a, lt_tensor *b, lt_err *err) {
    if (same_shape("mul", a, b, err)) return NULL;
    lt_tensor *y = lt_graph_out(g, "mul", a->shape, a->ndim, err);
    if (!y) return NULL;
    for (size_t i = 0; i < a->numel; i++) y->data[i] = a->data[i] * b->data[i];
    lt_tensor *in[2] = {a, b};
    if (lt_needs_grad(g, in, 2) && !lt_graph_record(g, "mul", mul_bw, y, in, 2)) return oom(err, "mul");
    return y;
}

static void scale_bw(lt_node *n) {
    float s = n->farg[0];
    for (size_t i = 0; i < n->out->numel; i++) n->in[0]->grad[i] += s * n->out->grad[i];
}

lt_tensor *lt_scale(lt_graph *g, lt_tensor *a, float s, lt_err *err) {
    lt_tensor *y = lt_graph_out(g, "scale", a->shape, a->ndim, err);
    if (!y) return NULL;
    for (size_t i = 0; i < a->numel; i++) y->data[i] = s * a->data[i];
    if (lt_needs_grad(g, &a, 1)) {
        lt_node *n = lt_graph_record(g, "scale", scale_bw, y, &a, 1);
        if (!n) return oom(err, "scale");
        n->farg[0] = s;
    }
    return y;
}

static void sum_bw(lt_node *n) {
    float d = n->out->grad[0] * n->farg[0];
    for (size_t i = 0; i < n->in[0]->numel; i++) n->in[0]->grad[i] += d;
}

static lt_tensor *reduce(lt_graph *g, lt_tensor *a, int mean, lt_err *err) {
    const char *op = mean ? "mean" : "sum";
    lt_tensor *y = scalar_out(g, op, err);
    if (!y) return NULL;
    double s = 0;
    for (size_t i = 0; i < a->numel; i++) s += a->data[i];
    float f = mean ? 1.0f / (float)(a->numel ? a->numel : 1) : 1.0f;
    y->data[0] = (float)(s * f);
    if (lt_needs_grad(g, &a, 1)) {
        lt_node *n = lt_graph_record(g, op, sum_bw, y, &a, 1);
        if (!n) return oom(err, op);
        n->farg[0] = f;
    }
    return y;
}

lt_tensor *lt_sum(lt_graph *g, lt_tensor *a, lt_err *err) { return reduce(g, a, 0, err); }
lt_tensor *lt_mean(lt_graph *g, lt_tensor *a, lt_err *err) { return reduce(g, a, 1, err); }
