/* backend_ops_cases.c: the op cases of the backend parity suite, one table,
 * every lt_op at least once, with the edges a kernel gets wrong: batch 1,
 * a single element or class, odd sizes (no multiple of a vector width),
 * padding, stride, 1x1 images, absent biases and states, the fast paths of the
 * CPU kernels (2x2 pooling, Winograd 3x3 convolutions, dropout's 384-element
 * chunks). Each case builds its op through the public API (lathe/ops.h,
 * lathe/rnn.h), so the autograd layer's dispatch is under test too. */
#include "backend_ops.h"

static int one(lt_tensor **out, lt_tensor *y) {
    out[0] = y;
    return y ? 1 : -1;
}

static int run_linear(const bo_case *c, lt_graph *g, lt_tensor **in, const int32_t *lab, float *st, lt_tensor **out,
                      lt_err *err) {
    return one(out, lt_linear(g, in[0], in[1], in[2], c->p[0], err));
}
static int run_conv2d(const bo_case *c, lt_graph *g, lt_tensor **in, const int32_t *lab, float *st, lt_tensor **out,
                      lt_err *err) {
    return one(out, lt_conv2d(g, in[0], in[1], in[2], c->p[0], c->p[1], c->p[2], err));
}
/* conv2d (p: stride 1, padding, fuse) then a 2x2 stride-2 max pool, its only
 * reader: the pool hands its gradient to the convolution's backward
 * (conv2d_backward_pooled, lathe/graph.h) */
static int run_conv2d_pool(const bo_case *c, lt_graph *g, lt_tensor **in, const int32_t *lab, float *st,
                           lt_tensor **out, lt_err *err) {
    lt_tensor *y = lt_conv2d(g, in[0], in[1], in[2], 1, c->p[1], c->p[2], err);
    return one(out, y ? lt_maxpool2d(g, y, 2, 2, 0, err) : NULL);
}
static int run_maxpool(const bo_case *c, lt_graph *g, lt_tensor **in, const int32_t *lab, float *st, lt_tensor **out,
                       lt_err *err) {
    return one(out, lt_maxpool2d(g, in[0], c->p[0], c->p[1], c->p[2], err));
}
static int run_avgpool(const bo_case *c, lt_graph *g, lt_tensor **in, const int32_t *lab, float *st, lt_tensor **out,
                       lt_err *err) {
    return one(out, lt_avgpool2d(g, in[0], c->p[0], c->p[1], c->p[2], err));
}
static int run_unary(const bo_case *c, lt_graph *g, lt_tensor **in, const int32_t *lab, float *st, lt_tensor **out,
                     lt_err *err) {
    switch (c->op) {
    case LT_OP_RELU: return one(out, lt_relu(g, in[0], err));
    case LT_OP_TANH: return one(out, lt_tanh(g, in[0], err));
    case LT_OP_SIGMOID: return one(out, lt_sigmoid(g, in[0], err));
    case LT_OP_GELU: return one(out, lt_gelu(g, in[0], err));
    case LT_OP_ELU: return one(out, lt_elu(g, in[0], c->f[0], err));
    case LT_OP_SOFTMAX: return one(out, lt_softmax(g, in[0], err));
    case LT_OP_LOG_SOFTMAX: return one(out, lt_log_softmax(g, in[0], err));
    case LT_OP_DROPOUT: return one(out, lt_dropout(g, in[0], c->f[0], err));
    case LT_OP_SCALE: return one(out, lt_scale(g, in[0], c->f[0], err));
    case LT_OP_SUM: return one(out, lt_sum(g, in[0], err));
    case LT_OP_MEAN: return one(out, lt_mean(g, in[0], err));
    default: return -1;
    }
}
static int run_binary(const bo_case *c, lt_graph *g, lt_tensor **in, const int32_t *lab, float *st, lt_tensor **out,
                      lt_err *err) {
    switch (c->op) {
    case LT_OP_ADD: return one(out, lt_add(g, in[0], in[1], err));
    case LT_OP_MUL: return one(out, lt_mul(g, in[0], in[1], err));
    case LT_OP_MSE: return one(out, lt_mse(g, in[0], in[1], err));
    default: return -1;
    }
}
static int run_batchnorm(const bo_case *c, lt_graph *g, lt_tensor **in, const int32_t *lab, float *st, lt_tensor **out,
                         lt_err *err) {
    int C = c->nstate / 2;
    return one(out, lt_batchnorm2d(g, in[0], in[1], in[2], st, st + C, c->f[0], c->f[1], err));
}
static int run_loss(const bo_case *c, lt_graph *g, lt_tensor **in, const int32_t *lab, float *st, lt_tensor **out,
                    lt_err *err) {
    if (c->op == LT_OP_NLL) return one(out, lt_nll(g, in[0], lab, err));
    return one(out, lt_cross_entropy(g, in[0], lab, err));
}
static int run_embedding(const bo_case *c, lt_graph *g, lt_tensor **in, const int32_t *lab, float *st, lt_tensor **out,
                         lt_err *err) {
    return one(out, lt_embedding(g, lab, c->p[0], c->p[1], in[0], err));
}
/* The recurrent layers' outputs in the loss, by p[0]: RNN_ALL (out and the
 * final states), RNN_OUT (out only: no gradient reaches h_last / c_last, so
 * backward gets them NULL), RNN_LAST (the final states only: dout is zero). */
enum { RNN_ALL, RNN_OUT, RNN_LAST };
static int rnn_outputs(const bo_case *c, lt_tensor **out, int n) {
    if (!out[0]) return -1;
    if (c->p[0] == RNN_OUT) return 1;
    if (c->p[0] == RNN_LAST) {
        for (int k = 1; k < n; k++) out[k - 1] = out[k];
        return n - 1;
    }
    return n;
}
static int run_lstm(const bo_case *c, lt_graph *g, lt_tensor **in, const int32_t *lab, float *st, lt_tensor **out,
                    lt_err *err) {
    out[0] = lt_lstm(g, in[0], in[5], in[6], in[1], in[2], in[3], in[4], &out[1], &out[2], err);
    return rnn_outputs(c, out, 3);
}
static int run_gru(const bo_case *c, lt_graph *g, lt_tensor **in, const int32_t *lab, float *st, lt_tensor **out,
                   lt_err *err) {
    out[0] = lt_gru(g, in[0], in[5], in[1], in[2], in[3], in[4], &out[1], err);
    return rnn_outputs(c, out, 2);
}

/* shorthands for the shape rows */
#define S1(a)                                                                                                          \
    { 1, a }
#define S2(a, b)                                                                                                       \
    { 2, a, b }
#define S3(a, b, c)                                                                                                    \
    { 3, a, b, c }
#define S4(a, b, c, d)                                                                                                 \
    { 4, a, b, c, d }
#define NONE                                                                                                           \
    { 0 }

/* RNN inputs: x [B, T, I], w_ih [G*H, I], w_hh [G*H, H], b_ih, b_hh [G*H], h0, c0 [B, H] */
#define RNN_IN(G, B, T, I, H, bias, h0, c0)                                                                            \
    {                                                                                                                  \
        S3(B, T, I), S2(G *H, I), S2(G *H, H), {bias, G * H}, {bias, G * H}, {2 * (h0), B, H}, { 2 * (c0), B, H }      \
    }

const bo_case bo_cases[] = {
    /* ---- linear: x [B, IN], w [OUT, IN], b [OUT]; p = fuse ---- */
    {"linear 1x1 -> 1", LT_OP_LINEAR, run_linear, {S2(1, 1), S2(1, 1), S1(1)}},
    {"linear B3 7 -> 5", LT_OP_LINEAR, run_linear, {S2(3, 7), S2(5, 7), S1(5)}},
    {"linear B2 17 -> 3, no bias", LT_OP_LINEAR, run_linear, {S2(2, 17), S2(3, 17), NONE}},
    {"linear B4 9 -> 6, fused relu", LT_OP_LINEAR, run_linear, {S2(4, 9), S2(6, 9), S1(6)}, {LT_FUSE_RELU}},
    /* ---- conv2d: x [B, C, H, W], w [OC, C, KH, KW], b [OC]; p = stride, pad, fuse ---- */
    {"conv2d 1x1 image, 1x1 kernel", LT_OP_CONV2D, run_conv2d, {S4(1, 1, 1, 1), S4(1, 1, 1, 1), S1(1)}, {1, 0, 0}},
    {"conv2d 1x1 image, 3x3 kernel, pad 1", LT_OP_CONV2D, run_conv2d, {S4(2, 2, 1, 1), S4(3, 2, 3, 3), S1(3)}, {1, 1}},
    {"conv2d 7x5 odd, 3x3, pad 1", LT_OP_CONV2D, run_conv2d, {S4(2, 3, 7, 5), S4(4, 3, 3, 3), S1(4)}, {1, 1, 0}},
    {"conv2d 9x8, 3x3, stride 2, pad 1", LT_OP_CONV2D, run_conv2d, {S4(2, 2, 9, 8), S4(3, 2, 3, 3), S1(3)}, {2, 1}},
    {"conv2d 2x3 kernel, stride 3, no bias", LT_OP_CONV2D, run_conv2d, {S4(1, 2, 7, 8), S4(2, 2, 2, 3), NONE}, {3, 0}},
    {"conv2d 5x5 kernel, fused relu", LT_OP_CONV2D, run_conv2d, {S4(2, 2, 8, 7), S4(3, 2, 5, 5), S1(3)}, {1, 0, 1}},
    {"conv2d 3x3 8 -> 8 (Winograd)", LT_OP_CONV2D, run_conv2d, {S4(2, 8, 6, 7), S4(8, 8, 3, 3), S1(8)}, {1, 1, 0}},
    {"conv2d 3x3 8 -> 9 fused relu, batch 1",
     LT_OP_CONV2D,
     run_conv2d,
     {S4(1, 8, 5, 5), S4(9, 8, 3, 3), S1(9)},
     {1, 0, 1}},
    /* conv2d then a max pool that is its only reader (the pooled backward);
       p = -, pad, fuse: the im2col + GEMM path, Winograd, the direct weight
       gradient of a one-channel layer, an odd output left over by the pool */
    {"conv2d 5x5 relu -> maxpool 2x2 (pooled backward)",
     LT_OP_CONV2D,
     run_conv2d_pool,
     {S4(2, 2, 9, 9), S4(3, 2, 5, 5), S1(3)},
     {1, 0, 1},
     .winners = 1},
    {"conv2d 3x3 8 -> 8 relu -> maxpool (Winograd, pooled)",
     LT_OP_CONV2D,
     run_conv2d_pool,
     {S4(2, 8, 8, 8), S4(8, 8, 3, 3), S1(8)},
     {1, 0, 1},
     .winners = 1},
    {"conv2d 3x3 1 -> 4 relu pad 1 -> maxpool (direct dW, pooled)",
     LT_OP_CONV2D,
     run_conv2d_pool,
     {S4(3, 1, 6, 6), S4(4, 1, 3, 3), S1(4)},
     {1, 1, 1},
     .winners = 1},
    {"conv2d 3x3 2 -> 3 -> maxpool on 5x7 (an edge left over: not fused)",
     LT_OP_CONV2D,
     run_conv2d_pool,
     {S4(2, 2, 7, 9), S4(3, 2, 3, 3), S1(3)},
     {1, 0, 0},
     .winners = 1},
    /* ---- pooling: x [B, C, H, W]; p = k, stride, pad ---- */
    {"maxpool2d 2x2/2 (tiles: fill backward)",
     LT_OP_MAXPOOL2D,
     run_maxpool,
     {S4(2, 3, 6, 4)},
     {2, 2, 0},
     .init = BO_DISTINCT},
    {"maxpool2d 2x2/2 on 5x7 (edge left over)",
     LT_OP_MAXPOOL2D,
     run_maxpool,
     {S4(1, 2, 5, 7)},
     {2, 2, 0},
     .init = BO_DISTINCT},
    {"maxpool2d 3x3/2 pad 1 on 7x5", LT_OP_MAXPOOL2D, run_maxpool, {S4(2, 2, 7, 5)}, {3, 2, 1}, .init = BO_DISTINCT},
    {"maxpool2d 3x3/1 overlapping", LT_OP_MAXPOOL2D, run_maxpool, {S4(1, 3, 5, 6)}, {3, 1, 0}, .init = BO_DISTINCT},
    {"maxpool2d 1x1 image", LT_OP_MAXPOOL2D, run_maxpool, {S4(3, 2, 1, 1)}, {1, 1, 0}, .init = BO_DISTINCT},
    {"avgpool2d 2x2/2", LT_OP_AVGPOOL2D, run_avgpool, {S4(2, 3, 6, 4)}, {2, 2, 0}},
    {"avgpool2d 3x3/2 pad 1 on 7x5", LT_OP_AVGPOOL2D, run_avgpool, {S4(2, 2, 7, 5)}, {3, 2, 1}},
    {"avgpool2d 2x2/1 pad 1 on 3x3", LT_OP_AVGPOOL2D, run_avgpool, {S4(1, 1, 3, 3)}, {2, 1, 1}},
    {"avgpool2d 1x1 image", LT_OP_AVGPOOL2D, run_avgpool, {S4(1, 4, 1, 1)}, {1, 1, 0}},
    /* ---- element-wise ---- */
    {"relu 1", LT_OP_RELU, run_unary, {S1(1)}, .init = BO_AWAY0},
    {"relu 4x37", LT_OP_RELU, run_unary, {S2(4, 37)}, .init = BO_AWAY0},
    {"tanh 1", LT_OP_TANH, run_unary, {S1(1)}},
    {"tanh 3x33", LT_OP_TANH, run_unary, {S2(3, 33)}},
    {"sigmoid 1", LT_OP_SIGMOID, run_unary, {S1(1)}},
    {"sigmoid 5x19", LT_OP_SIGMOID, run_unary, {S2(5, 19)}},
    {"gelu 1", LT_OP_GELU, run_unary, {S1(1)}},
    {"gelu 2x3x17", LT_OP_GELU, run_unary, {S3(2, 3, 17)}},
    {"elu 1 alpha 1", LT_OP_ELU, run_unary, {S1(1)}, .f = {1.0f}, .init = BO_AWAY0},
    {"elu 7x9 alpha 0.5", LT_OP_ELU, run_unary, {S2(7, 9)}, .f = {0.5f}, .init = BO_AWAY0},
    /* ---- softmax over the last dimension ---- */
    {"softmax 1 class", LT_OP_SOFTMAX, run_unary, {S2(1, 1)}},
    {"softmax 3x7", LT_OP_SOFTMAX, run_unary, {S2(3, 7)}},
    {"softmax 2x2x33", LT_OP_SOFTMAX, run_unary, {S3(2, 2, 33)}},
    {"log_softmax 1 class", LT_OP_LOG_SOFTMAX, run_unary, {S2(1, 1)}},
    {"log_softmax 5x10", LT_OP_LOG_SOFTMAX, run_unary, {S2(5, 10)}},
    /* ---- dropout (training); f = rate ---- */
    {"dropout 1 element p 0.5", LT_OP_DROPOUT, run_unary, {S1(1)}, .f = {0.5f}},
    {"dropout 37 p 0.5", LT_OP_DROPOUT, run_unary, {S1(37)}, .f = {0.5f}},
    {"dropout 2x500 p 0.25 (3 chunks)", LT_OP_DROPOUT, run_unary, {S2(2, 500)}, .f = {0.25f}},
    {"dropout 64 p 0.9", LT_OP_DROPOUT, run_unary, {S1(64)}, .f = {0.9f}},
    {"dropout 4x16384 p 0.3 (kept fraction)", LT_OP_DROPOUT, run_unary, {S2(4, 16384)}, .f = {0.3f}},
    /* ---- batch-norm: x, gamma [C], beta [C]; f = momentum, eps ---- */
    {"batchnorm2d B2 C3 4x5",
     LT_OP_BATCHNORM2D,
     run_batchnorm,
     {S4(2, 3, 4, 5), S1(3), S1(3)},
     .f = {0.1f, 1e-5f},
     .nstate = 6},
    {"batchnorm2d batch 1, 1x3",
     LT_OP_BATCHNORM2D,
     run_batchnorm,
     {S4(1, 2, 1, 3), S1(2), S1(2)},
     .f = {0.1f, 1e-5f},
     .nstate = 4},
    {"batchnorm2d 1x1 images, 1 channel",
     LT_OP_BATCHNORM2D,
     run_batchnorm,
     {S4(5, 1, 1, 1), S1(1), S1(1)},
     .f = {0.3f, 1e-3f},
     .nstate = 2},
    {"batchnorm2d eval",
     LT_OP_BATCHNORM2D,
     run_batchnorm,
     {S4(2, 3, 3, 3), S1(3), S1(3)},
     .f = {0.1f, 1e-5f},
     .eval = 1,
     .nstate = 6},
    /* ---- losses: labels [B] in [0, C) ---- */
    {"cross_entropy 1 sample, 1 class", LT_OP_CROSS_ENTROPY, run_loss, {S2(1, 1)}, .nlabels = 1, .nclasses = 1},
    {"cross_entropy B3 C2", LT_OP_CROSS_ENTROPY, run_loss, {S2(3, 2)}, .nlabels = 3, .nclasses = 2},
    {"cross_entropy B5 C10", LT_OP_CROSS_ENTROPY, run_loss, {S2(5, 10)}, .nlabels = 5, .nclasses = 10},
    {"nll 1 sample, 1 class", LT_OP_NLL, run_loss, {S2(1, 1)}, .nlabels = 1, .nclasses = 1},
    {"nll B4 C6", LT_OP_NLL, run_loss, {S2(4, 6)}, .nlabels = 4, .nclasses = 6},
    {"mse 1", LT_OP_MSE, run_binary, {S1(1), S1(1)}},
    {"mse 3x7", LT_OP_MSE, run_binary, {S2(3, 7), S2(3, 7)}},
    /* ---- arithmetic ---- */
    {"add 1", LT_OP_ADD, run_binary, {S1(1), S1(1)}},
    {"add 5x7", LT_OP_ADD, run_binary, {S2(5, 7), S2(5, 7)}},
    {"mul 1", LT_OP_MUL, run_binary, {S1(1), S1(1)}},
    {"mul 3x11", LT_OP_MUL, run_binary, {S2(3, 11), S2(3, 11)}},
    {"scale 13 by -2.5", LT_OP_SCALE, run_unary, {S1(13)}, .f = {-2.5f}},
    {"sum 1", LT_OP_SUM, run_unary, {S1(1)}},
    {"sum 7x9", LT_OP_SUM, run_unary, {S2(7, 9)}},
    {"mean 1", LT_OP_MEAN, run_unary, {S1(1)}},
    {"mean 7x9", LT_OP_MEAN, run_unary, {S2(7, 9)}},
    /* ---- embedding: weight [V, E]; p = B, T; ids [B*T] in [0, V) ---- */
    {"embedding 1 id, V1 E1", LT_OP_EMBEDDING, run_embedding, {S2(1, 1)}, {1, 1}, .nlabels = 1, .nclasses = 1},
    {"embedding B2 T5, V3 E4 (repeated ids)",
     LT_OP_EMBEDDING,
     run_embedding,
     {S2(3, 4)},
     {2, 5},
     .nlabels = 10,
     .nclasses = 3},
    /* ---- recurrent ---- */
    {"lstm B1 T1 I1 H1, no biases or states", LT_OP_LSTM, run_lstm, RNN_IN(4, 1, 1, 1, 1, 0, 0, 0)},
    {"lstm B2 T4 I3 H5, biases, h0, c0", LT_OP_LSTM, run_lstm, RNN_IN(4, 2, 4, 3, 5, 1, 1, 1)},
    {"lstm B3 T6 I2 H4, h0 only", LT_OP_LSTM, run_lstm, RNN_IN(4, 3, 6, 2, 4, 1, 1, 0)},
    {"gru B1 T1 I1 H1, no biases or state", LT_OP_GRU, run_gru, RNN_IN(3, 1, 1, 1, 1, 0, 0, 0)},
    {"gru B2 T4 I3 H5, biases, h0", LT_OP_GRU, run_gru, RNN_IN(3, 2, 4, 3, 5, 1, 1, 0)},
    {"gru B3 T7 I2 H3, biases", LT_OP_GRU, run_gru, RNN_IN(3, 3, 7, 2, 3, 1, 0, 0)},
    /* batch 1 over several steps, c0 without h0, odd H spanning several blocks
       of a device kernel, and losses that leave upstream gradients NULL or zero */
    {"lstm B1 T5 I4 H7, c0 only", LT_OP_LSTM, run_lstm, RNN_IN(4, 1, 5, 4, 7, 1, 0, 1)},
    {"lstm B3 T3 I5 H97, biases, h0, c0", LT_OP_LSTM, run_lstm, RNN_IN(4, 3, 3, 5, 97, 1, 1, 1)},
    {"lstm B2 T3 I3 H5, loss on out only", LT_OP_LSTM, run_lstm, RNN_IN(4, 2, 3, 3, 5, 1, 1, 1), {RNN_OUT}},
    {"lstm B2 T3 I3 H5, loss on final states", LT_OP_LSTM, run_lstm, RNN_IN(4, 2, 3, 3, 5, 0, 1, 0), {RNN_LAST}},
    {"lstm B1 T1 I2 H3, loss on out only", LT_OP_LSTM, run_lstm, RNN_IN(4, 1, 1, 2, 3, 1, 1, 1), {RNN_OUT}},
    {"gru B1 T6 I4 H7, h0", LT_OP_GRU, run_gru, RNN_IN(3, 1, 6, 4, 7, 1, 1, 0)},
    {"gru B3 T3 I5 H97, biases, h0", LT_OP_GRU, run_gru, RNN_IN(3, 3, 3, 5, 97, 1, 1, 0)},
    {"gru B2 T3 I3 H5, loss on out only", LT_OP_GRU, run_gru, RNN_IN(3, 2, 3, 3, 5, 1, 1, 0), {RNN_OUT}},
    {"gru B2 T3 I3 H5, loss on h_last", LT_OP_GRU, run_gru, RNN_IN(3, 2, 3, 3, 5, 0, 1, 0), {RNN_LAST}},
    {"gru B1 T1 I2 H3, loss on out only", LT_OP_GRU, run_gru, RNN_IN(3, 1, 1, 2, 3, 1, 0, 0), {RNN_OUT}},
};

const int bo_ncases = (int)(sizeof bo_cases / sizeof bo_cases[0]);
