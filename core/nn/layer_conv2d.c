/* Conv2D: PyTorch's nn.Conv2d (groups 1, dilation 1, square kernel), with an
 * optional ReLU fused into the output. Per sample [C, H, W] -> [OC, OH, OW]. */
#include "nn/layer_impl.h"

int lt_model_conv2d(lt_model *m, const char *name, int in_ch, int out_ch, int kernel, int stride, int pad, int fuse,
                    lt_err *err) {
    if (nn_positive("conv2d", name, in_ch, err) || nn_positive("conv2d", name, out_ch, err) ||
        nn_positive("conv2d", name, kernel, err) || nn_positive("conv2d", name, stride, err))
        return nn_fail(err);
    if (pad < 0) return lt_seterr(err, LT_EINVAL, "conv2d %s: padding %d is negative", name, pad);
    lt_layer *l = nn_add_layer(m, name, LT_LAYER_CONV2D, err);
    if (!l) return nn_fail(err);
    l->in_ch = in_ch, l->out_ch = out_ch, l->kernel = kernel, l->stride = stride, l->pad = pad, l->fuse = fuse;
    int ws[4] = {out_ch, in_ch, kernel, kernel}, bs[1] = {out_ch};
    lt_tensor_view(&l->weight, NULL, ws, 4);
    lt_tensor_view(&l->bias, NULL, bs, 1);
    return LT_OK;
}

static lt_tensor *conv2d_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err) {
    return lt_conv2d(g, x, nn_param_leaf(g, &l->weight), nn_param_leaf(g, &l->bias), l->stride, l->pad, l->fuse, err);
}

static int conv2d_shape(const lt_layer *l, const int *in, int nd, int *out, int *ond, lt_err *err) {
    char s[64];
    lt_shape_str(in, nd, s, sizeof s);
    if (nd != 3) return lt_seterr(err, LT_ESHAPE, "%s expects a CxHxW input, got %s", l->name, s);
    if (in[0] != l->in_ch)
        return lt_seterr(err, LT_ESHAPE, "%s expects %d input channels, got %d (input %s)", l->name, l->in_ch, in[0],
                         s);
    if (in[1] + 2 * l->pad < l->kernel || in[2] + 2 * l->pad < l->kernel)
        return lt_seterr(err, LT_ESHAPE, "%s: its %dx%d kernel is larger than the %dx%d input (padding %d)", l->name,
                         l->kernel, l->kernel, in[1], in[2], l->pad);
    *ond = 3;
    out[0] = l->out_ch;
    out[1] = nn_window_out(in[1], l->kernel, l->stride, l->pad);
    out[2] = nn_window_out(in[2], l->kernel, l->stride, l->pad);
    return 0;
}

const lt_layer_class nn_conv2d_class = {
    .kind = LT_LAYER_CONV2D,
    .name = "Conv2D",
    .forward = conv2d_forward,
    .infer_shape = conv2d_shape,
    .init = nn_init_fan_in_uniform,
};
