/* Embedding: PyTorch's nn.Embedding. ids [B, T] (carried as floats) ->
 * [B, T, dim]; per sample [T] -> [T, dim]. weight [vocab, dim] ~ N(0, 1). */
#include "lathe/rnn.h"
#include "nn/layer_impl.h"

int lt_model_embedding(lt_model *m, const char *name, int vocab, int dim, lt_err *err) {
    if (nn_positive("embedding", name, vocab, err) || nn_positive("embedding", name, dim, err)) return nn_fail(err);
    lt_layer *l = nn_add_layer(m, name, LT_LAYER_EMBEDDING, err);
    if (!l) return nn_fail(err);
    l->in_features = vocab, l->out_features = dim;
    int ws[2] = {vocab, dim};
    lt_tensor_view(&l->weight, NULL, ws, 2);
    return LT_OK;
}

static lt_tensor *embedding_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err) {
    if (x->ndim != 2) {
        lt_seterr(err, LT_ESHAPE, "embedding expects ids [B, T]");
        return NULL;
    }
    int32_t *ids = lt_arena_alloc(&g->arena, x->numel * sizeof(int32_t));
    if (!ids) {
        lt_seterr(err, LT_ENOMEM, "embedding: out of memory");
        return NULL;
    }
    for (size_t i = 0; i < x->numel; i++) ids[i] = (int32_t)x->data[i];
    return lt_embedding(g, ids, x->shape[0], x->shape[1], nn_param_leaf(g, &l->weight), err);
}

static int embedding_shape(const lt_layer *l, const int *in, int nd, int *out, int *ond, lt_err *err) {
    if (nd != 1) {
        char s[64];
        lt_shape_str(in, nd, s, sizeof s);
        return lt_seterr(err, LT_ESHAPE, "%s expects a sequence of T ids, got %s", l->name, s);
    }
    *ond = 2;
    out[0] = in[0];
    out[1] = l->out_features;
    return 0;
}

static void embedding_init(lt_layer *l, lt_rng *rng) {
    for (size_t j = 0; j < l->weight.numel; j++) l->weight.data[j] = lt_rng_normal(rng);
}

const lt_layer_class nn_embedding_class = {
    .kind = LT_LAYER_EMBEDDING,
    .name = "Embedding",
    .forward = embedding_forward,
    .infer_shape = embedding_shape,
    .init = embedding_init,
};
