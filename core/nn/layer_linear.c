/* Dense: PyTorch's nn.Linear, with an optional ReLU fused into the output.
 * Per sample [IN] -> [OUT]; a sequence [T, IN] -> [T, OUT], step by step. */
#include "nn/layer_impl.h"

int lt_model_linear(lt_model *m, const char *name, int in_features, int out_features, int fuse, lt_err *err) {
    if (nn_positive("linear", name, in_features, err) || nn_positive("linear", name, out_features, err))
        return nn_fail(err);
    lt_layer *l = nn_add_layer(m, name, LT_LAYER_LINEAR, err);
    if (!l) return nn_fail(err);
    l->in_features = in_features, l->out_features = out_features, l->fuse = fuse;
    int ws[2] = {out_features, in_features}, bs[1] = {out_features};
    lt_tensor_view(&l->weight, NULL, ws, 2);
    lt_tensor_view(&l->bias, NULL, bs, 1);
    return LT_OK;
}

static lt_tensor *linear_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err) {
    if (x->ndim <= 2) return lt_linear(g, x, nn_param_leaf(g, &l->weight), nn_param_leaf(g, &l->bias), l->fuse, err);
    /* [B, T, IN] -> [B*T, IN] -> [B*T, OUT] -> [B, T, OUT] */
    int flat[2] = {(int)(x->numel / (size_t)x->shape[x->ndim - 1]), x->shape[x->ndim - 1]};
    lt_tensor *x2 = lt_reshape(g, x, flat, 2, err);
    lt_tensor *y2 =
        x2 ? lt_linear(g, x2, nn_param_leaf(g, &l->weight), nn_param_leaf(g, &l->bias), l->fuse, err) : NULL;
    int back[LT_MAX_DIMS];
    memcpy(back, x->shape, sizeof back);
    back[x->ndim - 1] = l->out_features;
    return y2 ? lt_reshape(g, y2, back, x->ndim, err) : NULL;
}

static int linear_shape(const lt_layer *l, const int *in, int nd, int *out, int *ond, lt_err *err) {
    char s[64];
    lt_shape_str(in, nd, s, sizeof s);
    if (nd == 2 && in[1] == l->in_features) { /* a sequence: per time step */
        *ond = 2;
        out[0] = in[0];
        out[1] = l->out_features;
        return 0;
    }
    if (nd != 1)
        return lt_seterr(err, LT_ESHAPE, "%s expects a flat input of %d features, got %s (add a Flatten)", l->name,
                         l->in_features, s);
    if (in[0] != l->in_features)
        return lt_seterr(err, LT_ESHAPE, "%s expects %d input features, got %d", l->name, l->in_features, in[0]);
    *ond = 1;
    out[0] = l->out_features;
    return 0;
}

const lt_layer_class nn_linear_class = {
    .kind = LT_LAYER_LINEAR,
    .name = "Dense",
    .forward = linear_forward,
    .infer_shape = linear_shape,
    .init = nn_init_fan_in_uniform,
};
