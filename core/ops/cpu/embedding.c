/* ops/cpu/embedding.c: table lookup (PyTorch nn.Embedding), forward and
 * backward. ids are validated by the autograd op (lt_embedding) before a call.
 *   forward  out [N, E]     = weight [V, E] rows ids [N]
 *   backward dweight[ids[n]] += dout[n]   (repeated ids accumulate) */
#include <string.h>

#include "ops/rnn_kernels.h"

void lt_embedding_forward(float *out, const int32_t *ids, const float *weight, size_t N, int E) {
    size_t rowb = (size_t)E * sizeof(float);
    for (size_t n = 0; n < N; n++) memcpy(out + n * (size_t)E, weight + (size_t)ids[n] * (size_t)E, rowb);
}

void lt_embedding_backward(float *dweight, const float *dout, const int32_t *ids, size_t N, int E) {
    if (!dweight) return;
    for (size_t n = 0; n < N; n++) {
        float *restrict dw = dweight + (size_t)ids[n] * (size_t)E;
        const float *restrict g = dout + n * (size_t)E;
        for (int j = 0; j < E; j++) dw[j] += g[j];
    }
}
