/* Dropout: PyTorch's nn.Dropout (inverted: kept values scaled by 1/(1-p)
 * while training, identity in evaluation). Its rate p is a live
 * hyperparameter "<layer>.p". The output has the input's shape. */
#include <stddef.h>

#include "nn/layer_impl.h"

int lt_model_dropout(lt_model *m, const char *name, float p, lt_err *err) {
    if (!(p >= 0.0f && p < 1.0f))
        return lt_seterr(err, LT_EINVAL, "dropout %s: rate %g is outside [0, 1)", name, (double)p);
    lt_layer *l = nn_add_layer(m, name, LT_LAYER_DROPOUT, err);
    if (!l) return nn_fail(err);
    l->p = p;
    return LT_OK;
}

static lt_tensor *dropout_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err) {
    return lt_dropout(g, x, l->p, err);
}

static const lt_layer_hparam dropout_rate = {
    .name = "p", .what = "a dropout rate", .lo = 0.0f, .hi = 1.0f, .offset = offsetof(lt_layer, p)};

const lt_layer_class nn_dropout_class = {
    .kind = LT_LAYER_DROPOUT,
    .name = "Dropout",
    .forward = dropout_forward,
    .hparam = &dropout_rate,
};
