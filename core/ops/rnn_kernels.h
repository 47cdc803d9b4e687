/* ops/rnn_kernels.h: the CPU kernels of the recurrent layers (LSTM, GRU) and of
 * the embedding lookup, with the conventions of ops/kernels.h: plain functions
 * over contiguous row-major f32 arrays, shapes in the comments, every backward
 * ACCUMULATES (+=) into the gradients it is given and skips NULL ones, no kernel
 * allocates (workspaces come from the caller, sized by the *_floats() queries)
 * and no kernel fails (the autograd layer in ops/autograd_rnn.c checks shapes
 * and ids first). The CPU backend's table (ops/backend.h) reaches them.
 *
 * Layouts follow PyTorch with batch_first=True, one layer, one direction:
 *   x [B, T, IN], out [B, T, H], h0 / c0 / h_last / c_last [B, H]
 *   LSTM: w_ih [4H, IN], w_hh [4H, H], b_ih, b_hh [4H], gate rows i, f, g, o
 *   GRU:  w_ih [3H, IN], w_hh [3H, H], b_ih, b_hh [3H], gate rows r, z, n with
 *         n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
 * h0 / c0 NULL mean zeros; biases NULL mean none. The input projection of all
 * T steps is one SGEMM ([B*T, IN] x [IN, G*H]); each step adds one [B, H] x
 * [H, G*H] SGEMM for the recurrence.
 *
 * `save` is written by forward and read by backward (the activations backward
 * needs); `scratch` is backward's private workspace. */
#ifndef LATHE_OPS_RNN_KERNELS_H
#define LATHE_OPS_RNN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* ---- LSTM ----
 * save: lt_lstm_save_floats(B, T, H) floats = gates [B, T, 4H] (after their
 * sigmoid/tanh), cells c_t [B, T, H], tanh(c_t) [B, T, H].
 * forward writes out, and h_last / c_last when non-NULL.
 * backward takes the upstream gradients dout [B, T, H], dh_last, dc_last [B, H]
 * (any may be NULL = zero) and the forward's inputs, outputs and save. */
size_t lt_lstm_save_floats(int B, int T, int H);
size_t lt_lstm_scratch_floats(int B, int T, int H);
void lt_lstm_forward(float *out, float *h_last, float *c_last, float *save, const float *x, const float *h0,
                     const float *c0, const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh, int B,
                     int T, int IN, int H);
void lt_lstm_backward(float *dx, float *dh0, float *dc0, float *dw_ih, float *dw_hh, float *db_ih, float *db_hh,
                      const float *dout, const float *dh_last, const float *dc_last, const float *save,
                      const float *out, const float *x, const float *h0, const float *c0, const float *w_ih,
                      const float *w_hh, int B, int T, int IN, int H, float *scratch);

/* ---- GRU ----
 * save: lt_gru_save_floats(B, T, H) floats = gates r, z, n [B, T, 3H] (after
 * their activations), W_hn h_{t-1} + b_hn [B, T, H], and a [B, 3H] step buffer.
 * No cell state; otherwise as the LSTM. */
size_t lt_gru_save_floats(int B, int T, int H);
size_t lt_gru_scratch_floats(int B, int T, int H);
void lt_gru_forward(float *out, float *h_last, float *save, const float *x, const float *h0, const float *w_ih,
                    const float *w_hh, const float *b_ih, const float *b_hh, int B, int T, int IN, int H);
void lt_gru_backward(float *dx, float *dh0, float *dw_ih, float *dw_hh, float *db_ih, float *db_hh, const float *dout,
                     const float *dh_last, const float *save, const float *out, const float *x, const float *h0,
                     const float *w_ih, const float *w_hh, int B, int T, int IN, int H, float *scratch);

/* ---- embedding (PyTorch nn.Embedding, no padding_idx, no max_norm) ----
 * ids [N] in [0, V), weight [V, E], out [N, E]: out[n] = weight[ids[n]].
 * backward: dweight[ids[n]] += dout[n] (repeated ids add up). */
void lt_embedding_forward(float *out, const int32_t *ids, const float *weight, size_t N, int E);
void lt_embedding_backward(float *dweight, const float *dout, const int32_t *ids, size_t N, int E);

#endif
