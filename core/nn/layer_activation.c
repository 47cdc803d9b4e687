/* Activations: element-wise (ReLU, Tanh, Sigmoid, GELU, ELU) and row-wise over
 * the last dimension (Softmax, LogSoftmax). No parameters; the output has the
 * input's shape. All but ELU take no configuration and are built by
 * lt_model_activation; ELU has its alpha and lt_model_elu. */
#include "nn/layer_impl.h"

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

const lt_layer_class nn_relu_class = {.kind = LT_LAYER_RELU, .name = "ReLU", .activation = 1, .forward = relu_forward};
const lt_layer_class nn_tanh_class = {.kind = LT_LAYER_TANH, .name = "Tanh", .activation = 1, .forward = tanh_forward};
const lt_layer_class nn_sigmoid_class = {
    .kind = LT_LAYER_SIGMOID, .name = "Sigmoid", .activation = 1, .forward = sigmoid_forward};
const lt_layer_class nn_gelu_class = {.kind = LT_LAYER_GELU, .name = "GELU", .activation = 1, .forward = gelu_forward};
const lt_layer_class nn_elu_class = {.kind = LT_LAYER_ELU, .name = "ELU", .forward = elu_forward};
const lt_layer_class nn_softmax_class = {.kind = LT_LAYER_SOFTMAX,
                                         .name = "Softmax",
                                         .activation = 1,
                                         .forward = softmax_forward,
                                         .yields = LT_YIELDS_PROBS};
const lt_layer_class nn_log_softmax_class = {.kind = LT_LAYER_LOG_SOFTMAX,
                                             .name = "LogSoftmax",
                                             .activation = 1,
                                             .forward = log_softmax_forward,
                                             .yields = LT_YIELDS_LOG_PROBS};
