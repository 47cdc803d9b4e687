/* ops/graph_node.h: what the differentiable ops share: making an output tensor,
 * deciding whether to record, appending a node to the tape. */
#ifndef LATHE_OPS_GRAPH_NODE_H
#define LATHE_OPS_GRAPH_NODE_H

#include "lathe/ops.h"
#include "ops/backend.h"

/* The backend whose kernels the ops of g run (a graph made with none runs
 * the CPU's). */
static inline const lt_backend *lt_graph_be(const lt_graph *g) { return g->be ? g->be : lt_backend_cpu(); }

/* LT_OK when g's backend runs op on desc (forward and backward), else
 * LT_EUNSUPPORTED with the one line "<op>: the <backend> backend does not
 * support it". Every op asks before its first kernel call. */
static inline int lt_graph_supports(const lt_graph *g, lt_op op, const void *desc, lt_err *err) {
    const lt_backend *be = lt_graph_be(g);
    if (!be->supports_op || be->supports_op(be, op, desc)) return LT_OK;
    return lt_seterr(err, LT_EUNSUPPORTED, "%s: the %s backend does not support it", lt_op_name(op), be->name);
}

/* True when any of the n inputs needs a gradient and the graph records. */
static inline int lt_needs_grad(const lt_graph *g, lt_tensor *const *in, int n) {
    if (!g->grad_enabled) return 0;
    for (int i = 0; i < n; i++)
        if (in[i] && in[i]->requires_grad) return 1;
    return 0;
}

/* host ids or labels [n], already checked on the host, where g's kernels read
 * them: host itself on the CPU (or a copy in the step arena with keep: the
 * caller may refill its buffer before backward), else a copy in the step
 * arena on the device. NULL with err on failure. */
const int32_t *lt_graph_ints(lt_graph *g, const int32_t *host, size_t n, int keep, lt_err *err);

/* Appends a node for out = op(in...) to the tape; NULL on OOM. */
lt_node *lt_graph_record(lt_graph *g, const char *op, lt_backward_fn fn, lt_tensor *out, lt_tensor *const *in, int n);

/* 0 when a and b have the same shape, else -1 and err "<op>: shapes .. and ..
 * differ". */
int lt_same_shape(const char *op, const lt_tensor *a, const lt_tensor *b, lt_err *err);

/* Output tensor with an out-of-memory message on failure. */
lt_tensor *lt_graph_out(lt_graph *g, const char *op, const int *shape, int ndim, lt_err *err);

/* A scalar output (a loss, a reduction). */
static inline lt_tensor *lt_graph_scalar(lt_graph *g, const char *op, lt_err *err) {
    int one = 1;
    return lt_graph_out(g, op, &one, 0, err);
}

/* Gradient buffer of an input, or NULL when that input wants none. */
static inline float *lt_in_grad(lt_node *n, int i) {
    lt_tensor *t = n->in[i];
    return (t && t->requires_grad) ? t->grad : NULL;
}

#endif
