/* The graph: its step arena, the tape and the backward pass over it. */
#include "lathe/graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/backend.h"

int lt_graph_init(lt_graph *g, const lt_backend *be, lt_rng *rng, lt_err *err) {
    memset(g, 0, sizeof *g);
    lt_arena_init(&g->arena, (size_t)64 << 20);
    g->be = be ? be : lt_backend_cpu();
    g->rng = rng;
    g->grad_enabled = 1;
    g->training = 1;
    (void)err;
    return LT_OK;
}

void lt_graph_reset(lt_graph *g) {
    lt_arena_reset(&g->arena);
    g->tape = NULL;
    g->ntape = g->captape = 0;
}

void lt_graph_free(lt_graph *g) {
    lt_arena_free(&g->arena);
    free(g->scratch);
    memset(g, 0, sizeof *g);
}

lt_tensor *lt_graph_tensor(lt_graph *g, const int *shape, int ndim) {
    lt_tensor *t = lt_arena_alloc(&g->arena, sizeof *t);
    if (!t) return NULL;
    size_t n = lt_shape_numel(shape, ndim);
    float *d = lt_arena_alloc(&g->arena, n * sizeof(float));
    if (!d) return NULL;
    lt_tensor_view(t, d, shape, ndim);
    return t;
}

lt_tensor *lt_graph_zeros(lt_graph *g, const int *shape, int ndim) {
    lt_tensor *t = lt_graph_tensor(g, shape, ndim);
    if (t) memset(t->data, 0, t->numel * sizeof(float));
    return t;
}

lt_tensor *lt_graph_wrap(lt_graph *g, float *data, float *grad, const int *shape, int ndim, int requires_grad) {
    lt_tensor *t = lt_arena_alloc(&g->arena, sizeof *t);
    if (!t) return NULL;
    lt_tensor_view(t, data, shape, ndim);
    t->grad = grad;
    t->requires_grad = requires_grad;
    return t;
}

float *lt_graph_grad(lt_graph *g, lt_tensor *t) {
    if (!t->grad) t->grad = lt_arena_calloc(&g->arena, t->numel * sizeof(float));
    return t->grad;
}

int lt_backward(lt_graph *g, lt_tensor *loss, lt_err *err) { return lt_backward_scaled(g, loss, 1.0f, err); }

int lt_backward_scaled(lt_graph *g, lt_tensor *loss, float seed, lt_err *err) {
    if (!loss) return lt_seterr(err, LT_EINVAL, "backward: no loss tensor");
    if (loss->numel != 1)
        return lt_seterr(err, LT_ESHAPE, "backward: the loss must be a scalar, got %zu elements", loss->numel);
    if (!loss->requires_grad || !loss->node)
        return lt_seterr(err, LT_ESTATE, "backward: the loss does not depend on anything that needs a gradient");
    float *dl = lt_graph_grad(g, loss);
    if (!dl) return lt_seterr(err, LT_ENOMEM, "backward: out of memory");
    dl[0] += seed;
    for (int i = g->ntape - 1; i >= 0; i--) {
        lt_node *n = g->tape[i];
        if (!n->out->grad) continue; /* nothing flowed into this node */
        n->fresh = 0;
        if (n->fills_in0_grad && n->in[0]->requires_grad && !n->in[0]->grad) {
            /* the op writes all of it: no need to zero tens of MB first */
            n->in[0]->grad = lt_arena_alloc(&g->arena, n->in[0]->numel * sizeof(float));
            if (!n->in[0]->grad) return lt_seterr(err, LT_ENOMEM, "backward: out of memory in %s", n->op);
            n->fresh = 1;
        }
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] && n->in[k]->requires_grad && !lt_graph_grad(g, n->in[k]))
                return lt_seterr(err, LT_ENOMEM, "backward: out of memory in %s", n->op);
        /* mixed precision: the gradient arriving at each op is low precision too */
        if (g->round) g->round(n->out->grad, n->out->numel);
        if (g->timed) {
            double t0 = lt_now();
            n->backward(n);
            char name[48];
            snprintf(name, sizeof name, "%s backward", n->op);
            g->timed(g->timed_ctx, name, lt_now() - t0);
        } else {
            n->backward(n);
        }
    }
    return LT_OK;
}
