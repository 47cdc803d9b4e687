/* Flatten: [B, ...] -> [B, numel/B], a view sharing the input's data and
 * gradient (no copy). Per sample [...] -> [numel]. */
#include "nn/layer_impl.h"

int lt_model_flatten(lt_model *m, const char *name, lt_err *err) {
    return nn_add_layer(m, name, LT_LAYER_FLATTEN, err) ? LT_OK : nn_fail(err);
}

static lt_tensor *flatten_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err) { return lt_flatten(g, x, err); }

static int flatten_shape(const lt_layer *l, const int *in, int nd, int *out, int *ond, lt_err *err) {
    *ond = 1;
    out[0] = (int)lt_shape_numel(in, nd);
    return 0;
}

const lt_layer_class nn_flatten_class = {
    .kind = LT_LAYER_FLATTEN,
    .name = "Flatten",
    .forward = flatten_forward,
    .infer_shape = flatten_shape,
};
