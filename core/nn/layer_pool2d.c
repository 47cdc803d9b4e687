/* MaxPooling2D and AveragePooling2D: PyTorch's nn.MaxPool2d / nn.AvgPool2d
 * (square window, count_include_pad). Per sample [C, H, W] -> [C, OH, OW]. */
#include "nn/layer_impl.h"

extern const lt_layer_class nn_maxpool2d_class, nn_avgpool2d_class;

int lt_model_pool2d(lt_model *m, const char *name, lt_layer_kind kind, int kernel, int stride, int pad, lt_err *err) {
    const lt_layer_class *c = lt_layer_class_of(kind);
    if (c != &nn_maxpool2d_class && c != &nn_avgpool2d_class)
        return lt_seterr(err, LT_EINVAL, "pool2d %s: not a pooling kind", name);
    if (nn_positive("pool2d", name, kernel, err) || nn_positive("pool2d", name, stride, err)) return nn_fail(err);
    if (pad < 0 || 2 * pad > kernel)
        return lt_seterr(err, LT_EINVAL, "pool2d %s: padding %d must be in [0, kernel/2]", name, pad);
    lt_layer *l = nn_add_layer(m, name, kind, err);
    if (!l) return nn_fail(err);
    l->kernel = kernel, l->stride = stride, l->pad = pad;
    return LT_OK;
}

static lt_tensor *maxpool2d_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err) {
    return lt_maxpool2d(g, x, l->kernel, l->stride, l->pad, err);
}

static lt_tensor *avgpool2d_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err) {
    return lt_avgpool2d(g, x, l->kernel, l->stride, l->pad, err);
}

static int pool2d_shape(const lt_layer *l, const int *in, int nd, int *out, int *ond, lt_err *err) {
    char s[64];
    lt_shape_str(in, nd, s, sizeof s);
    if (nd != 3) return lt_seterr(err, LT_ESHAPE, "%s expects a CxHxW input, got %s", l->name, s);
    if (in[1] + 2 * l->pad < l->kernel || in[2] + 2 * l->pad < l->kernel)
        return lt_seterr(err, LT_ESHAPE, "%s: its %dx%d window is larger than the %dx%d input", l->name, l->kernel,
                         l->kernel, in[1], in[2]);
    *ond = 3;
    out[0] = in[0];
    out[1] = nn_window_out(in[1], l->kernel, l->stride, l->pad);
    out[2] = nn_window_out(in[2], l->kernel, l->stride, l->pad);
    return 0;
}

const lt_layer_class nn_maxpool2d_class = {
    .kind = LT_LAYER_MAXPOOL2D,
    .name = "MaxPooling2D",
    .forward = maxpool2d_forward,
    .infer_shape = pool2d_shape,
};

const lt_layer_class nn_avgpool2d_class = {
    .kind = LT_LAYER_AVGPOOL2D,
    .name = "AveragePooling2D",
    .forward = avgpool2d_forward,
    .infer_shape = pool2d_shape,
};
