/* ops/cuda/cu_rnn.h: the launchers of rnn.cu, the LSTM's and GRU's fused
 * per-step kernels (cu_rnn.c drives them between its cuBLAS GEMMs). Plain
 * types only, no lathe header: every array is contiguous row-major f32 in
 * device memory, stream is the cudaStream_t to launch on. Each launcher
 * returns cudaGetLastError() as an int (0 = cudaSuccess).
 *
 * Layouts (r = b*T + t, the row of sequence b at step t):
 *   LSTM gates [B*T, 4H] (i, f, g, o), cells and ctanh [B*T, H]
 *   GRU  gates [B*T, 3H] (r, z, n),    hn = W_hn h_{t-1} + b_hn [B*T, H],
 *        hg [B, 3H] = h_{t-1} W_hh^T of the current step (no bias)
 *   out [B*T, H], h0 / c0 / h_last / c_last [B, H]; any of them, the biases
 *   and the upstream gradients may be NULL (zeros / not wanted). */
#ifndef LATHE_CU_RNN_H
#define LATHE_CU_RNN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* LSTM step t forward: gates[:, t] holds x W_ih^T (+ h_{t-1} W_hh^T) on entry;
 * adds the biases, applies the gate activations in place, writes cells,
 * ctanh = tanh(c_t) and out[:, t]; at t = T-1 also h_last and c_last. */
int lt_cu_lstm_fw_step(int B, int T, int H, int t, float *gates, float *cells, float *ctanh, float *out, float *h_last,
                       float *c_last, const float *c0, const float *b_ih, const float *b_hh, void *stream);

/* LSTM step t backward: dh_in = dL/dh_t from later steps, dc_in = dL/dc_t
 * (NULL: zero); dout [B*T, H] or NULL. Writes the pre-activation gradients
 * dg[:, t] [B*T, 4H] and dL/dc_{t-1} into dc_out [B, H] (dc_acc: added), which
 * may alias dc_in; dc_out NULL: not wanted. */
int lt_cu_lstm_bw_step(int B, int T, int H, int t, float *dg, const float *dh_in, const float *dc_in, float *dc_out,
                       int dc_acc, const float *dout, const float *gates, const float *cells, const float *ctanh,
                       const float *c0, void *stream);

/* GRU step t forward: gates[:, t] holds x W_ih^T on entry, hg the step's
 * h_{t-1} W_hh^T (NULL: h_{t-1} is zero); adds the biases, writes the
 * activated r, z, n into gates[:, t], hn[:, t], out[:, t], and h_last at t = T-1. */
int lt_cu_gru_fw_step(int B, int T, int H, int t, float *gates, float *hn, const float *hg, float *out, float *h_last,
                      const float *h0, const float *b_ih, const float *b_hh, void *stream);

/* GRU step t backward: dh_in = dL/dh_t from later steps (NULL: zero), dout or
 * NULL. Writes the input-side pre-activation gradients dxg[:, t] and the
 * recurrent-side ones dhg[:, t] (both [B*T, 3H]) and the direct part
 * z * dL/dh_t of dL/dh_{t-1} into dh_out (dh_acc: added; may alias dh_in;
 * NULL: not wanted). */
int lt_cu_gru_bw_step(int B, int T, int H, int t, float *dxg, float *dhg, const float *dh_in, float *dh_out, int dh_acc,
                      const float *dout, const float *gates, const float *hn, const float *out, const float *h0,
                      void *stream);

/* hprev [B*T, H]: row (b, t) = h_{t-1} = out[b, t-1], h0[b] (or zeros) at t = 0 */
int lt_cu_rnn_hprev(int B, int T, int H, float *hprev, const float *out, const float *h0, void *stream);

/* db1 [n] += column sums of d [rows, n], and db2 likewise (either NULL) */
int lt_cu_rnn_colsum(int rows, int n, const float *d, float *db1, float *db2, void *stream);

#ifdef __cplusplus
}
#endif
#endif
