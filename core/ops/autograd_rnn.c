/* Differentiable embedding, LSTM and GRU (lathe/rnn.h) through the graph's
 * backend table (the CPU's entries run the kernels of ops/rnn_kernels.h).
 *
 * A tape node has four input slots; the recurrent ops have up to seven inputs,
 * so the node holds x, w_ih, w_hh, b_ih and the saved record holds the rest
 * (b_hh, h0, c0), whose gradients are allocated here at record time because
 * lt_backward only allocates those of the four slots. The final states are
 * tensors without a node of their own: with requires_grad set, ops that use
 * them accumulate into their gradient before this node's backward runs (the
 * tape runs in reverse), and this backward takes that gradient as dh_T / dc_T.
 * The output's gradient is allocated at record time so that the backward runs
 * even when only a final state reaches the loss. The forward's saved
 * activations and the backward's workspace come from the step arena's data
 * (lt_graph_data: the device's memory on a device); the record is host. */
#include <string.h>

#include "lathe/rnn.h"
#include "ops/graph_node.h"

static lt_tensor *fail(lt_err *err, int code, const char *op, const char *what) {
    lt_seterr(err, code, "%s: %s", op, what);
    return NULL;
}

/* ---- embedding ---- */
static void embedding_bw(lt_node *n) {
    const lt_backend *be = lt_graph_be(n->g);
    lt_tensor *w = n->in[0];
    lt_embedding_desc d = {.N = n->out->numel / (size_t)w->shape[1], .V = w->shape[0], .E = w->shape[1]};
    be->embedding_backward(be, &d, lt_in_grad(n, 0), n->out->grad, n->labels);
}

lt_tensor *lt_embedding(lt_graph *g, const int32_t *ids, int B, int T, lt_tensor *weight, lt_err *err) {
    char s1[64];
    if (!weight || weight->ndim != 2 || weight->shape[0] < 1 || weight->shape[1] < 1) {
        lt_seterr(err, LT_ESHAPE, "embedding: weight must be [V, E], got %s",
                  weight ? lt_shape_str(weight->shape, weight->ndim, s1, sizeof s1) : "none");
        return NULL;
    }
    if (B < 1 || T < 1 || !ids) {
        lt_seterr(err, LT_EINVAL, "embedding: needs ids for a B x T = %d x %d batch with B, T >= 1", B, T);
        return NULL;
    }
    const lt_backend *be = lt_graph_be(g);
    int V = weight->shape[0], E = weight->shape[1];
    size_t N = (size_t)B * T;
    lt_embedding_desc d = {.N = N, .V = V, .E = E};
    if (lt_graph_supports(g, LT_OP_EMBEDDING, &d, err)) return NULL;
    for (size_t k = 0; k < N; k++)
        if (ids[k] < 0 || ids[k] >= V) {
            lt_seterr(err, LT_EINVAL, "embedding: id %d at position %zu is outside the vocabulary [0, %d)", (int)ids[k],
                      k, V);
            return NULL;
        }
    int shape[3] = {B, T, E};
    lt_tensor *y = lt_graph_out(g, "embedding", shape, 3, err);
    if (!y) return NULL;
    /* checked on the host; a device's kernels read a copy in its memory */
    const int32_t *dids = g->mem ? lt_graph_ints(g, ids, N, 0, err) : ids;
    if (!dids) return NULL;
    be->embedding_forward(be, &d, y->data, dids, weight->data);
    if (lt_needs_grad(g, &weight, 1)) {
        /* backward runs after the caller may have refilled its id buffer: a
           copy on the host, the device's copy as it is */
        const int32_t *keep = g->mem ? dids : lt_graph_ints(g, ids, N, 1, err);
        lt_node *n = keep ? lt_graph_record(g, "embedding", embedding_bw, y, &weight, 1) : NULL;
        if (!n) return fail(err, LT_ENOMEM, "embedding", "out of memory");
        n->labels = keep;
    }
    return y;
}

/* ---- recurrent layers ---- */
typedef struct rnn_saved {
    lt_tensor *b_hh, *h0, *c0;  /* inputs beyond the node's four slots */
    lt_tensor *h_last, *c_last; /* final states; their gradients feed backward */
    float *save, *scratch;      /* forward activations, backward workspace */
    lt_rnn_desc d;
} rnn_saved;

static float *grad_of(lt_tensor *t) { return (t && t->requires_grad) ? t->grad : NULL; }
static const float *data_of(const lt_tensor *t) { return t ? t->data : NULL; }

static void lstm_bw(lt_node *n) {
    const lt_backend *be = lt_graph_be(n->g);
    rnn_saved *s = n->saved;
    be->lstm_backward(be, &s->d, lt_in_grad(n, 0), grad_of(s->h0), grad_of(s->c0), lt_in_grad(n, 1), lt_in_grad(n, 2),
                      lt_in_grad(n, 3), grad_of(s->b_hh), n->out->grad, s->h_last ? s->h_last->grad : NULL,
                      s->c_last ? s->c_last->grad : NULL, s->save, n->out->data, n->in[0]->data, data_of(s->h0),
                      data_of(s->c0), n->in[1]->data, n->in[2]->data, s->scratch);
}

static void gru_bw(lt_node *n) {
    const lt_backend *be = lt_graph_be(n->g);
    rnn_saved *s = n->saved;
    be->gru_backward(be, &s->d, lt_in_grad(n, 0), grad_of(s->h0), lt_in_grad(n, 1), lt_in_grad(n, 2), lt_in_grad(n, 3),
                     grad_of(s->b_hh), n->out->grad, s->h_last ? s->h_last->grad : NULL, s->save, n->out->data,
                     n->in[0]->data, data_of(s->h0), n->in[1]->data, n->in[2]->data, s->scratch);
}

/* Checks x [B, T, I], w_ih [G*H, I], w_hh [G*H, H], biases [G*H], states [B, H];
 * fills d. */
static int rnn_check(const char *op, int G, const lt_tensor *x, const lt_tensor *w_ih, const lt_tensor *w_hh,
                     const lt_tensor *b_ih, const lt_tensor *b_hh, const lt_tensor *h0, const lt_tensor *c0,
                     lt_rnn_desc *d, lt_err *err) {
    char s1[64], s2[64];
    if (!x || !w_ih || !w_hh) return lt_seterr(err, LT_EINVAL, "%s: x, w_ih and w_hh are required", op);
    if (x->ndim != 3 || x->shape[0] < 1 || x->shape[1] < 1)
        return lt_seterr(err, LT_ESHAPE, "%s: input must be [B, T, I] with B, T >= 1, got %s", op,
                         lt_shape_str(x->shape, x->ndim, s1, sizeof s1));
    if (w_ih->ndim != 2 || w_ih->shape[0] < G || w_ih->shape[0] % G || w_ih->shape[1] != x->shape[2])
        return lt_seterr(err, LT_ESHAPE, "%s: input %s does not fit w_ih %s (expects [%d*H, %d])", op,
                         lt_shape_str(x->shape, x->ndim, s1, sizeof s1),
                         lt_shape_str(w_ih->shape, w_ih->ndim, s2, sizeof s2), G, x->shape[2]);
    int B = x->shape[0], H = w_ih->shape[0] / G;
    if (w_hh->ndim != 2 || w_hh->shape[0] != G * H || w_hh->shape[1] != H)
        return lt_seterr(err, LT_ESHAPE, "%s: w_hh is %s, expects [%d, %d]", op,
                         lt_shape_str(w_hh->shape, w_hh->ndim, s1, sizeof s1), G * H, H);
    const lt_tensor *bs[2] = {b_ih, b_hh};
    for (int k = 0; k < 2; k++)
        if (bs[k] && bs[k]->numel != (size_t)G * H)
            return lt_seterr(err, LT_ESHAPE, "%s: %s has %zu elements, expects %d", op, k ? "b_hh" : "b_ih",
                             bs[k]->numel, G * H);
    const lt_tensor *st[2] = {h0, c0};
    for (int k = 0; k < 2; k++)
        if (st[k] && (st[k]->ndim != 2 || st[k]->shape[0] != B || st[k]->shape[1] != H))
            return lt_seterr(err, LT_ESHAPE, "%s: %s is %s, expects [%d, %d]", op, k ? "c0" : "h0",
                             lt_shape_str(st[k]->shape, st[k]->ndim, s1, sizeof s1), B, H);
    *d = (lt_rnn_desc){.B = B, .T = x->shape[1], .IN = x->shape[2], .H = H};
    return LT_OK;
}

/* Output [B, T, H], final states, saved record with the forward's buffer. */
static rnn_saved *rnn_begin(lt_graph *g, const char *op, const lt_rnn_desc *d, size_t save_floats, int with_c,
                            lt_tensor **y, lt_err *err) {
    int shape[3] = {d->B, d->T, d->H};
    rnn_saved *s = lt_arena_calloc(&g->arena, sizeof *s);
    *y = s ? lt_graph_tensor(g, shape, 3) : NULL;
    if (*y) s->h_last = lt_graph_tensor(g, (int[2]){d->B, d->H}, 2);
    if (*y && with_c) s->c_last = lt_graph_tensor(g, (int[2]){d->B, d->H}, 2);
    if (s) s->save = lt_graph_data(g, save_floats * sizeof(float));
    if (!s || !*y || !s->h_last || (with_c && !s->c_last) || !s->save) {
        lt_seterr(err, LT_ENOMEM, "%s: out of memory for a %dx%dx%d output", op, d->B, d->T, d->H);
        return NULL;
    }
    s->d = *d;
    return s;
}

/* Records the node when a gradient is wanted; 0 or -1 on out of memory. */
static int rnn_record(lt_graph *g, const char *op, lt_backward_fn fn, lt_tensor *y, lt_tensor *const *in7, rnn_saved *s,
                      size_t scratch_floats) {
    if (!lt_needs_grad(g, in7, 7)) return 0;
    lt_node *n = lt_graph_record(g, op, fn, y, in7, 4);
    s->scratch = n ? lt_graph_data(g, scratch_floats * sizeof(float)) : NULL;
    if (!s->scratch || !lt_graph_grad(g, y)) return -1;
    for (int k = 4; k < 7; k++)
        if (in7[k] && in7[k]->requires_grad && !lt_graph_grad(g, in7[k])) return -1;
    n->saved = s;
    for (int k = 4; k < 7; k++) n->more[k - 4] = in7[k];
    s->h_last->requires_grad = 1;
    if (s->c_last) s->c_last->requires_grad = 1;
    return 0;
}

lt_tensor *lt_lstm(lt_graph *g, lt_tensor *x, lt_tensor *h0, lt_tensor *c0, lt_tensor *w_ih, lt_tensor *w_hh,
                   lt_tensor *b_ih, lt_tensor *b_hh, lt_tensor **h_out_last, lt_tensor **c_out_last, lt_err *err) {
    lt_rnn_desc d;
    if (rnn_check("lstm", 4, x, w_ih, w_hh, b_ih, b_hh, h0, c0, &d, err)) return NULL;
    if (lt_graph_supports(g, LT_OP_LSTM, &d, err)) return NULL;
    const lt_backend *be = lt_graph_be(g);
    lt_tensor *y;
    rnn_saved *s = rnn_begin(g, "lstm", &d, be->lstm_save_floats(be, &d), 1, &y, err);
    if (!s) return NULL;
    s->b_hh = b_hh, s->h0 = h0, s->c0 = c0;
    be->lstm_forward(be, &d, y->data, s->h_last->data, s->c_last->data, s->save, x->data, data_of(h0), data_of(c0),
                     w_ih->data, w_hh->data, data_of(b_ih), data_of(b_hh));
    lt_tensor *in[7] = {x, w_ih, w_hh, b_ih, b_hh, h0, c0};
    if (rnn_record(g, "lstm", lstm_bw, y, in, s, be->lstm_scratch_floats(be, &d)))
        return fail(err, LT_ENOMEM, "lstm", "out of memory");
    if (h_out_last) *h_out_last = s->h_last;
    if (c_out_last) *c_out_last = s->c_last;
    return y;
}

lt_tensor *lt_gru(lt_graph *g, lt_tensor *x, lt_tensor *h0, lt_tensor *w_ih, lt_tensor *w_hh, lt_tensor *b_ih,
                  lt_tensor *b_hh, lt_tensor **h_out_last, lt_err *err) {
    lt_rnn_desc d;
    if (rnn_check("gru", 3, x, w_ih, w_hh, b_ih, b_hh, h0, NULL, &d, err)) return NULL;
    if (lt_graph_supports(g, LT_OP_GRU, &d, err)) return NULL;
    const lt_backend *be = lt_graph_be(g);
    lt_tensor *y;
    rnn_saved *s = rnn_begin(g, "gru", &d, be->gru_save_floats(be, &d), 0, &y, err);
    if (!s) return NULL;
    s->b_hh = b_hh, s->h0 = h0;
    be->gru_forward(be, &d, y->data, s->h_last->data, s->save, x->data, data_of(h0), w_ih->data, w_hh->data,
                    data_of(b_ih), data_of(b_hh));
    lt_tensor *in[7] = {x, w_ih, w_hh, b_ih, b_hh, h0, NULL};
    if (rnn_record(g, "gru", gru_bw, y, in, s, be->gru_scratch_floats(be, &d)))
        return fail(err, LT_ENOMEM, "gru", "out of memory");
    if (h_out_last) *h_out_last = s->h_last;
    return y;
}
