/* BatchNorm2D: PyTorch's nn.BatchNorm2d (affine, running statistics):
 * batch statistics while training, which update running_mean / running_var by
 * momentum; the running statistics in evaluation. [C, H, W] keeps its shape.
 * gamma ("weight") starts at 1, beta ("bias") and the running mean at 0, the
 * running variance at 1. */
#include "nn/layer_impl.h"

int lt_model_batchnorm2d(lt_model *m, const char *name, int channels, float momentum, float eps, lt_err *err) {
    if (nn_positive("batchnorm2d", name, channels, err)) return nn_fail(err);
    lt_layer *l = nn_add_layer(m, name, LT_LAYER_BATCHNORM2D, err);
    if (!l) return nn_fail(err);
    l->in_ch = l->out_ch = channels, l->momentum = momentum, l->eps = eps;
    int s[1] = {channels};
    lt_tensor_view(&l->weight, NULL, s, 1);
    lt_tensor_view(&l->bias, NULL, s, 1);
    lt_tensor_view(&l->running_mean, NULL, s, 1);
    lt_tensor_view(&l->running_var, NULL, s, 1);
    return LT_OK;
}

static lt_tensor *batchnorm2d_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err) {
    return lt_batchnorm2d(g, x, nn_param_leaf(g, &l->weight), nn_param_leaf(g, &l->bias), l->running_mean.data,
                          l->running_var.data, l->momentum, l->eps, err);
}

static int batchnorm2d_shape(const lt_layer *l, const int *in, int nd, int *out, int *ond, lt_err *err) {
    if (nd != 3 || in[0] != l->in_ch) {
        char s[64];
        lt_shape_str(in, nd, s, sizeof s);
        return lt_seterr(err, LT_ESHAPE, "%s expects %d channels x H x W, got %s", l->name, l->in_ch, s);
    }
    *ond = nd;
    memcpy(out, in, (size_t)nd * sizeof(int));
    return 0;
}

static void batchnorm2d_init(lt_layer *l, lt_rng *rng) {
    for (size_t j = 0; j < l->weight.numel; j++) l->weight.data[j] = 1.0f;
    for (size_t j = 0; j < l->running_var.numel; j++) l->running_var.data[j] = 1.0f;
}

const lt_layer_class nn_batchnorm2d_class = {
    .kind = LT_LAYER_BATCHNORM2D,
    .name = "BatchNorm2D",
    .forward = batchnorm2d_forward,
    .infer_shape = batchnorm2d_shape,
    .init = batchnorm2d_init,
};
