/* Shape inference over a model without computing anything: the model summary
 * and the workbench's `feed shape` dry run. Shapes here are per sample (no
 * batch dimension). */
#include <stdio.h>
#include <string.h>

#include "lathe/nn.h"

const char *lt_layer_kind_name(lt_layer_kind k) {
    switch (k) {
    case LT_LAYER_CONV2D: return "Conv2D";
    case LT_LAYER_LINEAR: return "Dense";
    case LT_LAYER_MAXPOOL2D: return "MaxPooling2D";
    case LT_LAYER_AVGPOOL2D: return "AveragePooling2D";
    case LT_LAYER_RELU: return "ReLU";
    case LT_LAYER_TANH: return "Tanh";
    case LT_LAYER_SIGMOID: return "Sigmoid";
    case LT_LAYER_GELU: return "GELU";
    case LT_LAYER_ELU: return "ELU";
    case LT_LAYER_SOFTMAX: return "Softmax";
    case LT_LAYER_LOG_SOFTMAX: return "LogSoftmax";
    case LT_LAYER_DROPOUT: return "Dropout";
    case LT_LAYER_FLATTEN: return "Flatten";
    case LT_LAYER_BATCHNORM2D: return "BatchNorm2D";
    case LT_LAYER_EMBEDDING: return "Embedding";
    case LT_LAYER_LSTM: return "LSTM";
    case LT_LAYER_GRU: return "GRU";
    }
    return "?";
}

static int layer_shape(const lt_layer *l, const int *in, int nd, int *out, int *ond, lt_err *err) {
    char s[64];
    lt_shape_str(in, nd, s, sizeof s);
    switch (l->kind) {
    case LT_LAYER_CONV2D:
        if (nd != 3) return lt_seterr(err, LT_ESHAPE, "%s expects a CxHxW input, got %s", l->name, s);
        if (in[0] != l->in_ch)
            return lt_seterr(err, LT_ESHAPE, "%s expects %d input channels, got %d (input %s)", l->name, l->in_ch,
                             in[0], s);
        if (in[1] + 2 * l->pad < l->kernel || in[2] + 2 * l->pad < l->kernel)
            return lt_seterr(err, LT_ESHAPE, "%s: its %dx%d kernel is larger than the %dx%d input (padding %d)",
                             l->name, l->kernel, l->kernel, in[1], in[2], l->pad);
        *ond = 3;
        out[0] = l->out_ch;
        out[1] = (in[1] + 2 * l->pad - l->kernel) / l->stride + 1;
        out[2] = (in[2] + 2 * l->pad - l->kernel) / l->stride + 1;
        return 0;
    case LT_LAYER_MAXPOOL2D:
    case LT_LAYER_AVGPOOL2D:
        if (nd != 3) return lt_seterr(err, LT_ESHAPE, "%s expects a CxHxW input, got %s", l->name, s);
        if (in[1] + 2 * l->pad < l->kernel || in[2] + 2 * l->pad < l->kernel)
            return lt_seterr(err, LT_ESHAPE, "%s: its %dx%d window is larger than the %dx%d input", l->name, l->kernel,
                             l->kernel, in[1], in[2]);
        *ond = 3;
        out[0] = in[0];
        out[1] = (in[1] + 2 * l->pad - l->kernel) / l->stride + 1;
        out[2] = (in[2] + 2 * l->pad - l->kernel) / l->stride + 1;
        return 0;
    case LT_LAYER_LINEAR:
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
    case LT_LAYER_EMBEDDING:
        if (nd != 1) return lt_seterr(err, LT_ESHAPE, "%s expects a sequence of T ids, got %s", l->name, s);
        *ond = 2;
        out[0] = in[0];
        out[1] = l->out_features;
        return 0;
    case LT_LAYER_LSTM:
    case LT_LAYER_GRU:
        if (nd != 2 || in[1] != l->in_features)
            return lt_seterr(err, LT_ESHAPE, "%s expects T x %d, got %s", l->name, l->in_features, s);
        *ond = 2;
        out[0] = in[0];
        out[1] = l->out_features;
        return 0;
    case LT_LAYER_FLATTEN:
        *ond = 1;
        out[0] = (int)lt_shape_numel(in, nd);
        return 0;
    case LT_LAYER_BATCHNORM2D:
        if (nd != 3 || in[0] != l->in_ch)
            return lt_seterr(err, LT_ESHAPE, "%s expects %d channels x H x W, got %s", l->name, l->in_ch, s);
        break;
    case LT_LAYER_SOFTMAX:
    case LT_LAYER_LOG_SOFTMAX:
    case LT_LAYER_RELU:
    case LT_LAYER_TANH:
    case LT_LAYER_SIGMOID:
    case LT_LAYER_GELU:
    case LT_LAYER_ELU:
    case LT_LAYER_DROPOUT: break;
    }
    *ond = nd;
    memcpy(out, in, (size_t)nd * sizeof(int));
    return 0;
}

int lt_model_infer_shapes(const lt_model *m, const int *in_shape, int in_ndim, int (*shapes)[LT_MAX_DIMS], int *ndims,
                          int *failed_layer, lt_err *err) {
    int cur[LT_MAX_DIMS], nd = in_ndim;
    if (in_ndim < 1 || in_ndim > LT_MAX_DIMS - 1)
        return lt_seterr(err, LT_ESHAPE, "an input must have 1 to %d dimensions per sample, got %d", LT_MAX_DIMS - 1,
                         in_ndim);
    for (int i = 0; i < in_ndim; i++) {
        if (in_shape[i] <= 0) return lt_seterr(err, LT_ESHAPE, "dimension %d of the input is %d", i, in_shape[i]);
        cur[i] = in_shape[i];
    }
    if (failed_layer) *failed_layer = -1;
    for (int i = 0; i < m->nlayers; i++) {
        int out[LT_MAX_DIMS] = {0}, ond = 0;
        if (layer_shape(&m->layers[i], cur, nd, out, &ond, err)) {
            if (failed_layer) *failed_layer = i;
            return err ? err->code : LT_ESHAPE;
        }
        memcpy(shapes[i], out, sizeof out);
        ndims[i] = ond;
        memcpy(cur, out, sizeof out);
        nd = ond;
    }
    return LT_OK;
}
