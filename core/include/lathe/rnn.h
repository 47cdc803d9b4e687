/* lathe/rnn.h: the embedding lookup and one-layer recurrent layers (LSTM, GRU)
 * as differentiable ops on graph tensors, matching PyTorch's nn.Embedding and
 * nn.LSTM / nn.GRU with batch_first=True (one layer, one direction). Like the
 * ops of lathe/ops.h they run forward at once and record a tape node when the
 * graph records and an input needs a gradient; a bad shape or id returns NULL
 * with err naming the op and the shapes. They run on the graph's backend; one
 * that does not support them returns NULL with err naming the op and it.
 *
 * Truncated backpropagation through time: the final states come back as
 * tensors of the step arena. A gradient that reaches them (a loss on h_last,
 * say) flows into this call's backward, and h0 / c0 receive their gradient when
 * they require one, but nothing links the final states to a later call unless
 * the caller passes them on as that call's h0 / c0. To carry the state across
 * chunks without carrying the gradient, copy the data out before
 * lt_graph_reset() and pass it back as a leaf without requires_grad
 * (lt_graph_wrap(g, state, NULL, shape, 2, 0)). */
#ifndef LATHE_RNN_H
#define LATHE_RNN_H

#include <stdint.h>

#include "lathe/graph.h"

/* ids [B*T] in [0, V) (checked; copied, so the caller may reuse the buffer),
 * weight [V, E] -> [B, T, E]. */
lt_tensor *lt_embedding(lt_graph *g, const int32_t *ids, int B, int T, lt_tensor *weight, lt_err *err);

/* x [B, T, I], h0 and c0 [B, H] or NULL (zeros), w_ih [4H, I], w_hh [4H, H],
 * b_ih and b_hh [4H] or NULL -> outputs h_t [B, T, H]. Gate rows i, f, g, o:
 *   c_t = f * c_{t-1} + i * g,  h_t = o * tanh(c_t).
 * *h_out_last and *c_out_last (either pointer may be NULL) receive h_T and c_T
 * [B, H]. */
lt_tensor *lt_lstm(lt_graph *g, lt_tensor *x, lt_tensor *h0, lt_tensor *c0, lt_tensor *w_ih, lt_tensor *w_hh,
                   lt_tensor *b_ih, lt_tensor *b_hh, lt_tensor **h_out_last, lt_tensor **c_out_last, lt_err *err);

/* x [B, T, I], h0 [B, H] or NULL, w_ih [3H, I], w_hh [3H, H], b_ih and b_hh
 * [3H] or NULL -> [B, T, H]. Gate rows r, z, n (PyTorch's formula):
 *   n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h_t = (1 - z) * n + z * h_{t-1}.
 * *h_out_last (may be NULL) receives h_T [B, H]. */
lt_tensor *lt_gru(lt_graph *g, lt_tensor *x, lt_tensor *h0, lt_tensor *w_ih, lt_tensor *w_hh, lt_tensor *b_ih,
                  lt_tensor *b_hh, lt_tensor **h_out_last, lt_err *err);

#endif
