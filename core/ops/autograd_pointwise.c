/* Differentiable element-wise ops, softmax and arithmetic (the losses are in
 * autograd_nn.c). */
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
    const lt_backend *be = lt_graph_be(n->g);
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
    const lt_backend *be = lt_graph_be(g);
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
        lt_graph_be(n->g)->log_softmax_backward(n->in[0]->grad, n->out->grad, n->out->data, R, C);
    else
        lt_graph_be(n->g)->softmax_backward(n->in[0]->grad, n->out->grad, n->out->data, R, C);
}

static lt_tensor *softmax_any(lt_graph *g, lt_tensor *x, int log, lt_err *err) {
    const char *op = log ? "log_softmax" : "softmax";
    int R, C;
    rows_cols(x, &R, &C);
    lt_tensor *y = lt_graph_out(g, op, x->shape, x->ndim, err);
    if (!y) return NULL;
    if (log)
        lt_graph_be(g)->log_softmax_forward(y->data, x->data, R, C);
    else
        lt_graph_be(g)->softmax_forward(y->data, x->data, R, C);
    if (lt_needs_grad(g, &x, 1)) {
        lt_node *n = lt_graph_record(g, op, softmax_bw, y, &x, 1);
        if (!n) return oom(err, op);
        n->iarg[0] = log;
    }
    return y;
}

lt_tensor *lt_softmax(lt_graph *g, lt_tensor *x, lt_err *err) { return softmax_any(g, x, 0, err); }
lt_tensor *lt_log_softmax(lt_graph *g, lt_tensor *x, lt_err *err) { return softmax_any(g, x, 1, err); }

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
    if (lt_same_shape("add", a, b, err)) return NULL;
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
    if (lt_same_shape("mul", a, b, err)) return NULL;
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
    lt_tensor *y = lt_graph_scalar(g, op, err);
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
