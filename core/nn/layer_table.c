/* The table of layer kinds: one class per kind, indexed by lt_layer_kind.
 * Adding a kind: its class in core/nn/layer_<kind>.c, its enum value and
 * builder in lathe/nn.h, and one declaration and one line here. */
#include <stddef.h>
#include <string.h>

#include "lathe/nn.h"

extern const lt_layer_class nn_conv2d_class, nn_linear_class, nn_maxpool2d_class, nn_avgpool2d_class, nn_relu_class,
    nn_tanh_class, nn_sigmoid_class, nn_gelu_class, nn_elu_class, nn_softmax_class, nn_log_softmax_class,
    nn_dropout_class, nn_flatten_class, nn_batchnorm2d_class, nn_embedding_class, nn_lstm_class, nn_gru_class;

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
