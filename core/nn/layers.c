/* Every layer kind: its builder (lt_model_<kind>, declared in lathe/nn.h) and
 * its class (lt_layer_class: forward, shape inference, initialisation, live
 * hyperparameter), the forward pass through the classes (lt_layer_forward,
 * lt_model_forward), then the table of classes indexed by lt_layer_kind, the
 * one place model.c, shapes.c, the trainer, the control commands and the
 * workbench ask about a kind (KANN's op table, htop's MeterClass).
 * Adding a kind: its enum value and builder declaration in lathe/nn.h, its
 * builder and class here, and one line in the table at the end. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lathe/nn.h"
#include "lathe/rnn.h"
#include "nn/layer_impl.h"

/* ---- Conv2D: PyTorch's nn.Conv2d (groups 1, dilation 1, square kernel), with an
 * optional ReLU fused into the output. Per sample [C, H, W] -> [OC, OH, OW]. */

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

static const lt_layer_class nn_conv2d_class = {
    .kind = LT_LAYER_CONV2D,
    .name = "Conv2D",
    .forward = conv2d_forward,
    .infer_shape = conv2d_shape,
    .init = nn_init_fan_in_uniform,
};

/* ---- Dense: PyTorch's nn.Linear, with an optional ReLU fused into the output.
 * Per sample [IN] -> [OUT]; a sequence [T, IN] -> [T, OUT], step by step. */

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

static const lt_layer_class nn_linear_class = {
    .kind = LT_LAYER_LINEAR,
    .name = "Dense",
    .forward = linear_forward,
    .infer_shape = linear_shape,
    .init = nn_init_fan_in_uniform,
};

/* ---- MaxPooling2D and AveragePooling2D: PyTorch's nn.MaxPool2d / nn.AvgPool2d
 * (square window, count_include_pad). Per sample [C, H, W] -> [C, OH, OW]. */

static const lt_layer_class nn_maxpool2d_class, nn_avgpool2d_class;

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

static const lt_layer_class nn_maxpool2d_class = {
    .kind = LT_LAYER_MAXPOOL2D,
    .name = "MaxPooling2D",
    .forward = maxpool2d_forward,
    .infer_shape = pool2d_shape,
};

static const lt_layer_class nn_avgpool2d_class = {
    .kind = LT_LAYER_AVGPOOL2D,
    .name = "AveragePooling2D",
    .forward = avgpool2d_forward,
    .infer_shape = pool2d_shape,
};

/* ---- BatchNorm2D: PyTorch's nn.BatchNorm2d (affine, running statistics):
 * batch statistics while training, which update running_mean / running_var by
 * momentum; the running statistics in evaluation. [C, H, W] keeps its shape.
 * gamma ("weight") starts at 1, beta ("bias") and the running mean at 0, the
 * running variance at 1. */

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

static const lt_layer_class nn_batchnorm2d_class = {
    .kind = LT_LAYER_BATCHNORM2D,
    .name = "BatchNorm2D",
    .forward = batchnorm2d_forward,
    .infer_shape = batchnorm2d_shape,
    .init = batchnorm2d_init,
};

/* ---- Dropout: PyTorch's nn.Dropout (inverted: kept values scaled by 1/(1-p)
 * while training, identity in evaluation). Its rate p is a live
 * hyperparameter "<layer>.p". The output has the input's shape. */

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

static const lt_layer_class nn_dropout_class = {
    .kind = LT_LAYER_DROPOUT,
    .name = "Dropout",
    .forward = dropout_forward,
    .hparam = &dropout_rate,
};

/* ---- Flatten: [B, ...] -> [B, numel/B], a view sharing the input's data and
 * gradient (no copy). Per sample [...] -> [numel]. */

int lt_model_flatten(lt_model *m, const char *name, lt_err *err) {
    return nn_add_layer(m, name, LT_LAYER_FLATTEN, err) ? LT_OK : nn_fail(err);
}

static lt_tensor *flatten_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err) { return lt_flatten(g, x, err); }

static int flatten_shape(const lt_layer *l, const int *in, int nd, int *out, int *ond, lt_err *err) {
    *ond = 1;
    out[0] = (int)lt_shape_numel(in, nd);
    return 0;
}

static const lt_layer_class nn_flatten_class = {
    .kind = LT_LAYER_FLATTEN,
    .name = "Flatten",
    .forward = flatten_forward,
    .infer_shape = flatten_shape,
};

/* ---- Activations: element-wise (ReLU, Tanh, Sigmoid, GELU, ELU) and row-wise over
 * the last dimension (Softmax, LogSoftmax). No parameters; the output has the
 * input's shape. All but ELU take no configuration and are built by
 * lt_model_activation; ELU has its alpha and lt_model_elu. */

int lt_model_activation(lt_model *m, const char *name, lt_layer_kind kind, lt_err *err) {
    const lt_layer_class *c = lt_layer_class_of(kind);
    if (!c || !c->activation) return lt_seterr(err, LT_EINVAL, "activation %s: not an activation kind", name);
    return nn_add_layer(m, name, kind, err) ? LT_OK : nn_fail(err);
}

int lt_model_elu(lt_model *m, const char *name, float alpha, lt_err *err) {
    lt_layer *l = nn_add_layer(m, name, LT_LAYER_ELU, err);
    if (!l) return nn_fail(err);
    l->alpha = alpha;
    return LT_OK;
}

static lt_tensor *relu_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err) { return lt_relu(g, x, err); }
static lt_tensor *tanh_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err) { return lt_tanh(g, x, err); }
static lt_tensor *sigmoid_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err) { return lt_sigmoid(g, x, err); }
static lt_tensor *gelu_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err) { return lt_gelu(g, x, err); }
static lt_tensor *elu_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err) {
    return lt_elu(g, x, l->alpha, err);
}
static lt_tensor *softmax_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err) { return lt_softmax(g, x, err); }
static lt_tensor *log_softmax_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err) {
    return lt_log_softmax(g, x, err);
}

static const lt_layer_class nn_relu_class = {
    .kind = LT_LAYER_RELU, .name = "ReLU", .activation = 1, .forward = relu_forward};
static const lt_layer_class nn_tanh_class = {
    .kind = LT_LAYER_TANH, .name = "Tanh", .activation = 1, .forward = tanh_forward};
static const lt_layer_class nn_sigmoid_class = {
    .kind = LT_LAYER_SIGMOID, .name = "Sigmoid", .activation = 1, .forward = sigmoid_forward};
static const lt_layer_class nn_gelu_class = {
    .kind = LT_LAYER_GELU, .name = "GELU", .activation = 1, .forward = gelu_forward};
static const lt_layer_class nn_elu_class = {.kind = LT_LAYER_ELU, .name = "ELU", .forward = elu_forward};
static const lt_layer_class nn_softmax_class = {.kind = LT_LAYER_SOFTMAX,
                                                .name = "Softmax",
                                                .activation = 1,
                                                .forward = softmax_forward,
                                                .yields = LT_YIELDS_PROBS};
static const lt_layer_class nn_log_softmax_class = {.kind = LT_LAYER_LOG_SOFTMAX,
                                                    .name = "LogSoftmax",
                                                    .activation = 1,
                                                    .forward = log_softmax_forward,
                                                    .yields = LT_YIELDS_LOG_PROBS};

/* ---- Embedding: PyTorch's nn.Embedding. ids [B, T] (carried as floats) ->
 * [B, T, dim]; per sample [T] -> [T, dim]. weight [vocab, dim] ~ N(0, 1). */

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
    /* the ids are checked and converted on the host (the step's host arena);
       x is read where it lives (lt_tensor_map: zero-copy on the CPU) */
    int32_t *ids = lt_arena_alloc(&g->arena, x->numel * sizeof(int32_t));
    if (!ids) {
        lt_seterr(err, LT_ENOMEM, "embedding: out of memory");
        return NULL;
    }
    const float *xh = lt_tensor_map(x, 0, err);
    if (!xh) return NULL;
    for (size_t i = 0; i < x->numel; i++) ids[i] = (int32_t)xh[i];
    lt_tensor_unmap(x, x->data, xh);
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

static const lt_layer_class nn_embedding_class = {
    .kind = LT_LAYER_EMBEDDING,
    .name = "Embedding",
    .forward = embedding_forward,
    .infer_shape = embedding_shape,
    .init = embedding_init,
};

/* ---- LSTM and GRU: PyTorch's nn.LSTM / nn.GRU, batch_first, one layer, one
 * direction. [B, T, in] -> [B, T, hidden]; per sample [T, in] -> [T, hidden].
 * The state between calls (h0/c0 in, h_last/c_last out) is in lt_layer for
 * truncated BPTT. Parameters keep PyTorch's state_dict names:
 * weight_ih_l0 [G*hidden, in], bias_ih_l0 [G*hidden], weight_hh_l0
 * [G*hidden, hidden], bias_hh_l0 [G*hidden], with G = 4 gates (LSTM) or 3
 * (GRU); all U(-1/sqrt(hidden), 1/sqrt(hidden)). */

static const lt_layer_class nn_lstm_class, nn_gru_class;

int lt_model_recurrent(lt_model *m, const char *name, lt_layer_kind kind, int in, int hidden, lt_err *err) {
    const lt_layer_class *c = lt_layer_class_of(kind);
    if (c != &nn_lstm_class && c != &nn_gru_class) return lt_seterr(err, LT_EINVAL, "%s: not a recurrent kind", name);
    if (nn_positive("recurrent", name, in, err) || nn_positive("recurrent", name, hidden, err)) return nn_fail(err);
    lt_layer *l = nn_add_layer(m, name, kind, err);
    if (!l) return nn_fail(err);
    l->in_features = in, l->out_features = hidden;
    int gates = c == &nn_lstm_class ? 4 : 3;
    int wi[2] = {gates * hidden, in}, wh[2] = {gates * hidden, hidden}, b[1] = {gates * hidden};
    lt_tensor_view(&l->weight, NULL, wi, 2);
    lt_tensor_view(&l->bias, NULL, b, 1);
    lt_tensor_view(&l->weight_hh, NULL, wh, 2);
    lt_tensor_view(&l->bias_hh, NULL, b, 1);
    return LT_OK;
}

static lt_tensor *lstm_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err) {
    return lt_lstm(g, x, l->h0, l->c0, nn_param_leaf(g, &l->weight), nn_param_leaf(g, &l->weight_hh),
                   nn_param_leaf(g, &l->bias), nn_param_leaf(g, &l->bias_hh), &l->h_last, &l->c_last, err);
}

static lt_tensor *gru_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err) {
    return lt_gru(g, x, l->h0, nn_param_leaf(g, &l->weight), nn_param_leaf(g, &l->weight_hh),
                  nn_param_leaf(g, &l->bias), nn_param_leaf(g, &l->bias_hh), &l->h_last, err);
}

static int recurrent_shape(const lt_layer *l, const int *in, int nd, int *out, int *ond, lt_err *err) {
    if (nd != 2 || in[1] != l->in_features) {
        char s[64];
        lt_shape_str(in, nd, s, sizeof s);
        return lt_seterr(err, LT_ESHAPE, "%s expects T x %d, got %s", l->name, l->in_features, s);
    }
    *ond = 2;
    out[0] = in[0];
    out[1] = l->out_features;
    return 0;
}

static void recurrent_init(lt_layer *l, lt_rng *rng) {
    float bound = 1.0f / sqrtf((float)l->out_features);
    for (int k = 0; k < 4; k++) nn_uniform(lt_layer_param(l, k)->data, lt_layer_param(l, k)->numel, bound, rng);
}

static const char *const recurrent_suffix[4] = {"weight_ih_l0", "bias_ih_l0", "weight_hh_l0", "bias_hh_l0"};

static const lt_layer_class nn_lstm_class = {
    .kind = LT_LAYER_LSTM,
    .name = "LSTM",
    .param_suffix = recurrent_suffix,
    .forward = lstm_forward,
    .infer_shape = recurrent_shape,
    .init = recurrent_init,
};

static const lt_layer_class nn_gru_class = {
    .kind = LT_LAYER_GRU,
    .name = "GRU",
    .param_suffix = recurrent_suffix,
    .forward = gru_forward,
    .infer_shape = recurrent_shape,
    .init = recurrent_init,
};

/* ---- the forward pass: each layer through its class ---- */
lt_tensor *nn_param_leaf(lt_graph *g, lt_tensor *p) {
    if (!p->numel) return NULL;
    if (g->round) {
        /* compute sees a low-precision copy; gradients go to the f32 master.
           Host memory only: the trainer installs round only on such a graph */
        float *w = lt_arena_alloc(&g->arena, p->numel * sizeof(float));
        if (!w) return NULL;
        memcpy(w, p->data, p->numel * sizeof(float));
        g->round(w, p->numel);
        return lt_graph_wrap(g, w, p->grad, p->shape, p->ndim, 1);
    }
    return lt_graph_wrap(g, p->data, p->grad, p->shape, p->ndim, 1);
}

static lt_tensor *layer_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err);

lt_tensor *lt_layer_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err) {
    if (!g->timed) return layer_forward(l, g, x, err);
    double t0 = lt_now();
    lt_tensor *y = layer_forward(l, g, x, err);
    char name[48];
    snprintf(name, sizeof name, "%s forward", lt_layer_kind_name(l->kind));
    g->timed(g->timed_ctx, name, lt_now() - t0);
    return y;
}

static lt_tensor *layer_forward(lt_layer *l, lt_graph *g, lt_tensor *x, lt_err *err) {
    lt_tensor *y = NULL;
    if (!x) return NULL;
    const lt_layer_class *c = lt_layer_class_of(l->kind);
    if (!c) {
        lt_seterr(err, LT_EINVAL, "layer %s: %d is not a layer kind", l->name, (int)l->kind);
        return l->out = NULL;
    }
    /* a layer kept in f32: its forward sees no rounding hook (its weights stay
       f32: nn_param_leaf reads g->round) and its output is left as computed;
       its nodes are marked f32: lt_backward rounds no gradient arriving at
       them, and under a low-precision math mode its ops compute in f32,
       forward and backward (the graph's math hook) */
    void (*round)(float *, size_t) = l->keep_fp32 ? NULL : g->round;
    void (*saved)(float *, size_t) = g->round;
    int keep = l->keep_fp32 && !g->f32, sw = keep && g->math;
    g->round = round;
    if (keep) g->f32 = 1;
    if (sw) g->math(g->math_ctx, 1);
    y = c->forward(l, g, x, err);
    if (sw) g->math(g->math_ctx, 0);
    if (keep) g->f32 = 0;
    g->round = saved;
    if (!y && err && err->code != LT_OK) {
        char msg[LT_ERR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", err->msg);
        lt_seterr(err, err->code, "layer %s: %s", l->name, msg);
    }
    /* mixed precision: the next layer reads a low-precision value; an output
       that shares its input's data (flatten; dropout when off) stays as it came */
    if (y && y != x && round && y->data != x->data) round(y->data, y->numel);
    l->out = y;
    return y;
}

lt_tensor *lt_model_forward(lt_model *m, lt_graph *g, lt_tensor *x, lt_err *err) {
    for (int i = 0; i < m->nlayers && x; i++) x = lt_layer_forward(&m->layers[i], g, x, err);
    return x;
}

/* ---- the table ---- */
static const lt_layer_class *const layer_classes[LT_LAYER_KIND_COUNT] = {
    [LT_LAYER_CONV2D] = &nn_conv2d_class,
    [LT_LAYER_LINEAR] = &nn_linear_class,
    [LT_LAYER_MAXPOOL2D] = &nn_maxpool2d_class,
    [LT_LAYER_AVGPOOL2D] = &nn_avgpool2d_class,
    [LT_LAYER_RELU] = &nn_relu_class,
    [LT_LAYER_TANH] = &nn_tanh_class,
    [LT_LAYER_SIGMOID] = &nn_sigmoid_class,
    [LT_LAYER_GELU] = &nn_gelu_class,
    [LT_LAYER_ELU] = &nn_elu_class,
    [LT_LAYER_SOFTMAX] = &nn_softmax_class,
    [LT_LAYER_LOG_SOFTMAX] = &nn_log_softmax_class,
    [LT_LAYER_DROPOUT] = &nn_dropout_class,
    [LT_LAYER_FLATTEN] = &nn_flatten_class,
    [LT_LAYER_BATCHNORM2D] = &nn_batchnorm2d_class,
    [LT_LAYER_EMBEDDING] = &nn_embedding_class,
    [LT_LAYER_LSTM] = &nn_lstm_class,
    [LT_LAYER_GRU] = &nn_gru_class,
};

const lt_layer_class *lt_layer_class_of(lt_layer_kind k) {
    return (int)k >= 0 && k < LT_LAYER_KIND_COUNT ? layer_classes[k] : NULL;
}

const lt_layer_class *lt_layer_class_find(const char *name) {
    for (int k = 0; name && k < LT_LAYER_KIND_COUNT; k++)
        if (layer_classes[k] && strcmp(layer_classes[k]->name, name) == 0) return layer_classes[k];
    return NULL;
}

const char *lt_layer_kind_name(lt_layer_kind k) {
    const lt_layer_class *c = lt_layer_class_of(k);
    return c ? c->name : "?";
}

float *lt_layer_hparam_value(lt_layer *l) {
    const lt_layer_class *c = lt_layer_class_of(l->kind);
    return c && c->hparam ? (float *)((char *)l + c->hparam->offset) : NULL;
}
