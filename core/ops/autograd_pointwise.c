/* Differentiable element-wise ops, softmax and arithmetic (the losses are in
 * autograd_nn.c), each through the graph's backend table. */
#include <string.h>

#include "ops/graph_node.h"

static lt_tensor *oom(lt_err *err, const char *op) {
    lt_seterr(err, LT_ENOMEM, "%s: out of memory", op);
    return NULL;
}

/* ---- activations: one table keeps the five alike ---- */
enum { ACT_RELU, ACT_TANH, ACT_SIGMOID, ACT_GELU, ACT_ELU };
static const lt_op act_ops[] = {LT_OP_RELU, LT_OP_TANH, LT_OP_SIGMOID, LT_OP_GELU, LT_OP_ELU};

static void act_bw(lt_node *n) {
    const lt_backend *be = lt_graph_be(n->g);
    lt_tensor *x = n->in[0], *y = n->out;
    lt_elem_desc d = {.n = y->numel, .alpha = n->farg[0]};
    switch (n->iarg[0]) {
    case ACT_RELU: be->relu_backward(be, &d, x->grad, y->grad, x->data, y->data); break;
    case ACT_TANH: be->tanh_backward(be, &d, x->grad, y->grad, x->data, y->data); break;
    case ACT_SIGMOID: be->sigmoid_backward(be, &d, x->grad, y->grad, x->data, y->data); break;
    case ACT_GELU: be->gelu_backward(be, &d, x->grad, y->grad, x->data, y->data); break;
    case ACT_ELU: be->elu_backward(be, &d, x->grad, y->grad, x->data, y->data); break;
    }
}

static lt_tensor *activation(lt_graph *g, lt_tensor *x, int kind, float alpha, lt_err *err) {
    const lt_backend *be = lt_graph_be(g);
    const char *op = lt_op_name(act_ops[kind]);
    lt_elem_desc d = {.n = x->numel, .alpha = alpha};
    if (lt_graph_supports(g, act_ops[kind], &d, err)) return NULL;
    lt_tensor *y = lt_graph_out(g, op, x->shape, x->ndim, err);
    if (!y) return NULL;
    switch (kind) {
    case ACT_RELU: be->relu_forward(be, &d, y->data, x->data); break;
    case ACT_TANH: be->tanh_forward(be, &d, y->data, x->data); break;
    case ACT_SIGMOID: be->sigmoid_forward(be, &d, y->data, x->data); break;
    case ACT_GELU: be->gelu_forward(be, &d, y->data, x->data); break;
    case ACT_ELU: be->elu_forward(be, &d, y->data, x->data); break;
    }
    if (lt_needs_grad(g, &x, 1)) {
        lt_node *n = lt_graph_record(g, op, act_bw, y, &x, 1);
        if (!n) return oom(err, op);
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
static lt_rows_desc rows_cols(const lt_tensor *x) {
    int C = x->ndim ? x->shape[x->ndim - 1] : 1;
    return (lt_rows_desc){.R = (int)(x->numel / (size_t)(C ? C : 1)), .C = C};
}

static void softmax_bw(lt_node *n) {
    const lt_backend *be = lt_graph_be(n->g);
    lt_rows_desc d = rows_cols(n->out);
    if (n->iarg[0])
        be->log_softmax_backward(be, &d, n->in[0]->grad, n->out->grad, n->out->data);
    else
        be->softmax_backward(be, &d, n->in[0]->grad, n->out->grad, n->out->data);
}

static lt_tensor *softmax_any(lt_graph *g, lt_tensor *x, int log, lt_err *err) {
    const lt_backend *be = lt_graph_be(g);
    lt_op op = log ? LT_OP_LOG_SOFTMAX : LT_OP_SOFTMAX;
    lt_rows_desc d = rows_cols(x);
    if (lt_graph_supports(g, op, &d, err)) return NULL;
    lt_tensor *y = lt_graph_out(g, lt_op_name(op), x->shape, x->ndim, err);
    if (!y) return NULL;
    if (log)
        be->log_softmax_forward(be, &d, y->data, x->data);
    else
        be->softmax_forward(be, &d, y->data, x->data);
    if (lt_needs_grad(g, &x, 1)) {
        lt_node *n = lt_graph_record(g, lt_op_name(op), softmax_bw, y, &x, 1);
        if (!n) return oom(err, lt_op_name(op));
        n->iarg[0] = log;
    }
    return y;
}

lt_tensor *lt_softmax(lt_graph *g, lt_tensor *x, lt_err *err) { return softmax_any(g, x, 0, err); }
lt_tensor *lt_log_softmax(lt_graph *g, lt_tensor *x, lt_err *err) { return softmax_any(g, x, 1, err); }

/* ---- arithmetic, for composing small losses ---- */
static void add_bw(lt_node *n) {
    const lt_backend *be = lt_graph_be(n->g);
    lt_elem_desc d = {.n = n->out->numel};
    be->add_backward(be, &d, lt_in_grad(n, 0), lt_in_grad(n, 1), n->out->grad);
}

static void mul_bw(lt_node *n) {
    const lt_backend *be = lt_graph_be(n->g);
    lt_elem_desc d = {.n = n->out->numel};
    be->mul_backward(be, &d, lt_in_grad(n, 0), lt_in_grad(n, 1), n->out->grad, n->in[0]->data, n->in[1]->data);
}

/* a + b or a * b, same shapes */
static lt_tensor *binary(lt_graph *g, lt_tensor *a, lt_tensor *b, lt_op op, lt_err *err) {
    const char *name = lt_op_name(op);
    if (lt_same_shape(name, a, b, err)) return NULL;
    const lt_backend *be = lt_graph_be(g);
    lt_elem_desc d = {.n = a->numel};
    if (lt_graph_supports(g, op, &d, err)) return NULL;
    lt_tensor *y = lt_graph_out(g, name, a->shape, a->ndim, err);
    if (!y) return NULL;
    if (op == LT_OP_ADD)
        be->add_forward(be, &d, y->data, a->data, b->data);
    else
        be->mul_forward(be, &d, y->data, a->data, b->data);
    lt_tensor *in[2] = {a, b};
    if (lt_needs_grad(g, in, 2) && !lt_graph_record(g, name, op == LT_OP_ADD ? add_bw : mul_bw, y, in, 2))
        return oom(err, name);
    return y;
}

lt_tensor *lt_add(lt_graph *g, lt_tensor *a, lt_tensor *b, lt_err *err) { return binary(g, a, b, LT_OP_ADD, err); }
lt_tensor *lt_mul(lt_graph *g, lt_tensor *a, lt_tensor *b, lt_err *err) { return binary(g, a, b, LT_OP_MUL, err); }

static void scale_bw(lt_node *n) {
    const lt_backend *be = lt_graph_be(n->g);
    lt_elem_desc d = {.n = n->out->numel, .alpha = n->farg[0]};
    be->scale_backward(be, &d, lt_in_grad(n, 0), n->out->grad);
}

lt_tensor *lt_scale(lt_graph *g, lt_tensor *a, float s, lt_err *err) {
    const lt_backend *be = lt_graph_be(g);
    lt_elem_desc d = {.n = a->numel, .alpha = s};
    if (lt_graph_supports(g, LT_OP_SCALE, &d, err)) return NULL;
    lt_tensor *y = lt_graph_out(g, "scale", a->shape, a->ndim, err);
    if (!y) return NULL;
    be->scale_forward(be, &d, y->data, a->data);
    if (lt_needs_grad(g, &a, 1)) {
        lt_node *n = lt_graph_record(g, "scale", scale_bw, y, &a, 1);
        if (!n) return oom(err, "scale");
        n->farg[0] = s;
    }
    return y;
}

static void sum_bw(lt_node *n) {
    const lt_backend *be = lt_graph_be(n->g);
    lt_elem_desc d = {.n = n->in[0]->numel, .alpha = n->farg[0]};
    be->sum_backward(be, &d, lt_in_grad(n, 0), n->out->grad);
}

/* sum and mean: the sum entries with the factor 1 or 1/n */
static lt_tensor *reduce(lt_graph *g, lt_tensor *a, lt_op op, lt_err *err) {
    const char *name = lt_op_name(op);
    const lt_backend *be = lt_graph_be(g);
    lt_elem_desc d = {.n = a->numel, .alpha = op == LT_OP_MEAN ? 1.0f / (float)(a->numel ? a->numel : 1) : 1.0f};
    if (lt_graph_supports(g, op, &d, err)) return NULL;
    lt_tensor *y = lt_graph_scalar(g, name, err);
    if (!y) return NULL;
    be->sum_forward(be, &d, y->data, a->data);
    if (lt_needs_grad(g, &a, 1)) {
        lt_node *n = lt_graph_record(g, name, sum_bw, y, &a, 1);
        if (!n) return oom(err, name);
        n->farg[0] = d.alpha;
    }
    return y;
}

lt_tensor *lt_sum(lt_graph *g, lt_tensor *a, lt_err *err) { return reduce(g, a, LT_OP_SUM, err); }
lt_tensor *lt_mean(lt_graph *g, lt_tensor *a, lt_err *err) { return reduce(g, a, LT_OP_MEAN, err); }
