/* LSTM and GRU: PyTorch's nn.LSTM / nn.GRU, batch_first, one layer, one
 * direction. [B, T, in] -> [B, T, hidden]; per sample [T, in] -> [T, hidden].
 * The state between calls (h0/c0 in, h_last/c_last out) is in lt_layer for
 * truncated BPTT. Parameters keep PyTorch's state_dict names:
 * weight_ih_l0 [G*hidden, in], bias_ih_l0 [G*hidden], weight_hh_l0
 * [G*hidden, hidden], bias_hh_l0 [G*hidden], with G = 4 gates (LSTM) or 3
 * (GRU); all U(-1/sqrt(hidden), 1/sqrt(hidden)). */
#include <math.h>

#include "lathe/rnn.h"
#include "nn/layer_impl.h"

extern const lt_layer_class nn_lstm_class, nn_gru_class;

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

const lt_layer_class nn_lstm_class = {
    .kind = LT_LAYER_LSTM,
    .name = "LSTM",
    .param_suffix = recurrent_suffix,
    .forward = lstm_forward,
    .infer_shape = recurrent_shape,
    .init = recurrent_init,
};

const lt_layer_class nn_gru_class = {
    .kind = LT_LAYER_GRU,
    .name = "GRU",
    .param_suffix = recurrent_suffix,
    .forward = gru_forward,
    .infer_shape = recurrent_shape,
    .init = recurrent_init,
};
