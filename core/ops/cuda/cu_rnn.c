/* ops/cuda/cu_rnn.c: one-layer LSTM and GRU on the GPU (the table's lstm_* and
 * gru_* entries), with the semantics of ops/cpu/rnn.c (PyTorch's nn.LSTM /
 * nn.GRU, batch_first=True, gate rows i, f, g, o and r, z, n).
 *
 * Forward: the input projection of all T steps is one GEMM, x [B*T, IN] x
 * w_ih^T -> gates [B*T, G*H]; step t adds h_{t-1} [B, H] x w_hh^T with one GEMM
 * whose rows are strided by T*G*H (the LSTM straight into gates[:, t], the GRU
 * into a [B, 3H] step buffer, since r gates only the n part), and one fused
 * kernel of rnn.cu adds the biases, applies the gate activations and updates
 * the state.
 *
 * Backward walks t = T-1 .. 0 carrying dL/dh (and dL/dc) [B, H]: a fused kernel
 * turns them into the step's gate pre-activation gradients (kept for all
 * steps in scratch) and the direct part of dL/dh_{t-1} / dL/dc_{t-1}, then one
 * GEMM dgates_t x w_hh gives the rest of dL/dh_{t-1} (at t = 0 accumulated
 * straight into dh0). The weight gradients then take one GEMM each over all
 * steps: dw_hh += dgates^T hprev (hprev [B*T, H] gathered h_{t-1}), dw_ih +=
 * dgates^T x, dx += dgates w_ih, and the bias gradients are column sums.
 *
 * save (this backend's layout, as the CPU's):
 *   LSTM: gates [B*T, 4H] after their activations, c_t [B*T, H], tanh(c_t) [B*T, H]
 *   GRU:  gates r, z, n [B*T, 3H], W_hn h_{t-1} + b_hn [B*T, H], a [B, 3H] step buffer
 * scratch (backward):
 *   LSTM: dgates [B*T, 4H], hprev [B*T, H], dh and dc [B, H]
 *   GRU:  input-side and recurrent-side dgates [B*T, 3H] each, hprev [B*T, H], dh [B, H]
 *
 * Every call runs on lt_cuda_ctx.stream, allocates nothing and never
 * synchronises; failures are kept by LT_CU / LT_CUBLAS. GEMMs go through
 * cublasGemmEx with the compute type of ctx.math (f32, or the tf32 / bf16 /
 * fp16 fast modes on f32 data).
 *
 * cuDNN's RNN API (cudnnRNNForward / cudnnRNNBackwardData_v8 /
 * cudnnRNNBackwardWeights_v8) is not used: it wants the weights and biases
 * packed into its own flat weight space, so every step would convert lathe's
 * w_ih / w_hh / b_ih / b_hh into it and the weight gradients back out (copies
 * and an extra buffer per call, and a workspace and reserve space beyond the
 * save / scratch contract); the issue allows it only where measured faster,
 * and there was no GPU to measure on when this was written. */
#include "ops/cuda/cu_rnn.h"
#include "ops/cuda/cuda_backend.h"

static cublasComputeType_t compute_type(lt_math m) {
    switch (m) {
    case LT_MATH_TF32: return CUBLAS_COMPUTE_32F_FAST_TF32;
    case LT_MATH_BF16: return CUBLAS_COMPUTE_32F_FAST_16BF;
    case LT_MATH_FP16: return CUBLAS_COMPUTE_32F_FAST_16F;
    case LT_MATH_F32:
    default: return CUBLAS_COMPUTE_32F;
    }
}

/* Row-major C [M, N] = op(A) op(B) + beta C, op(A) [M, K], op(B) [K, N]
 * (ta, tb: transposed), on the column-major cuBLAS as C^T = op(B)^T op(A)^T. */
static void gemm(const lt_cuda *c, int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc) {
    const float one = 1.0f;
    if (M <= 0 || N <= 0 || K <= 0) return;
    LT_CUBLAS(cublasGemmEx(c->cublas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &one, B,
                           CUDA_R_32F, ldb, A, CUDA_R_32F, lda, &beta, C, CUDA_R_32F, ldc, compute_type(c->math),
                           CUBLAS_GEMM_DEFAULT));
}

/* the stream every call of an entry runs on. cuBLAS should already be bound
 * to it (backend_cuda.c); it is rebound only when not, since cublasSetStream
 * also resets a workspace set by cublasSetWorkspace. */
static void *bind(const lt_cuda *c) {
    cudaStream_t s = NULL;
    if (LT_CUBLAS(cublasGetStream(c->cublas, &s)) && s != c->stream) LT_CUBLAS(cublasSetStream(c->cublas, c->stream));
    return (void *)c->stream;
}

#define KERNEL(call) LT_CU((cudaError_t)(call))

/* The gradients of both cells after the time loop, from the input-side gate
 * gradients dxg and the recurrent-side ones dhg (the same buffer for the
 * LSTM), both [B*T, G]. */
static void param_grads(const lt_cuda *c, void *st, const lt_rnn_desc *d, int G, float *dx, float *dw_ih, float *dw_hh,
                        float *db_ih, float *db_hh, const float *dxg, const float *dhg, float *hprev, const float *out,
                        const float *x, const float *h0, const float *w_ih) {
    const int BT = d->B * d->T, IN = d->IN, H = d->H;
    if (dw_hh) {
        KERNEL(lt_cu_rnn_hprev(d->B, d->T, H, hprev, out, h0, st));
        gemm(c, 1, 0, G, H, BT, dhg, G, hprev, H, 1.0f, dw_hh, H);
    }
    if (dxg == dhg) {
        KERNEL(lt_cu_rnn_colsum(BT, G, dxg, db_ih, db_hh, st));
    } else {
        KERNEL(lt_cu_rnn_colsum(BT, G, dxg, db_ih, NULL, st));
        KERNEL(lt_cu_rnn_colsum(BT, G, dhg, db_hh, NULL, st));
    }
    if (IN <= 0) return;
    if (dw_ih) gemm(c, 1, 0, G, IN, BT, dxg, G, x, IN, 1.0f, dw_ih, IN);
    if (dx) gemm(c, 0, 0, BT, IN, G, dxg, G, w_ih, IN, 1.0f, dx, IN);
}

/* gates [B*T, G] = x w_ih^T (zeros without inputs) */
static void input_projection(const lt_cuda *c, void *st, const lt_rnn_desc *d, int G, float *gates, const float *x,
                             const float *w_ih) {
    const int BT = d->B * d->T;
    if (d->IN > 0)
        gemm(c, 0, 1, BT, G, d->IN, x, d->IN, w_ih, d->IN, 0.0f, gates, G);
    else
        LT_CU(cudaMemsetAsync(gates, 0, (size_t)BT * G * sizeof(float), (cudaStream_t)st));
}

static int empty(const lt_rnn_desc *d) { return d->B <= 0 || d->T <= 0 || d->H <= 0; }

/* ==== LSTM ==== */

size_t lt_cu_lstm_save_floats(cu_be *be, const lt_rnn_desc *d) { return (size_t)d->B * d->T * 6 * d->H; }

size_t lt_cu_lstm_scratch_floats(cu_be *be, const lt_rnn_desc *d) {
    return (size_t)d->B * d->T * 5 * d->H + 2 * (size_t)d->B * d->H;
}

void lt_cu_lstm_forward(cu_be *be, const lt_rnn_desc *d, float *out, float *h_last, float *c_last, float *save,
                        const float *x, const float *h0, const float *c0, const float *w_ih, const float *w_hh,
                        const float *b_ih, const float *b_hh) {
    if (empty(d)) return;
    const lt_cuda *c = lt_cu(be);
    void *st = bind(c);
    const int B = d->B, T = d->T, H = d->H, G = 4 * H;
    const size_t BT = (size_t)B * T;
    float *gates = save, *cells = save + BT * G, *ctanh = cells + BT * H;
    input_projection(c, st, d, G, gates, x, w_ih);
    for (int t = 0; t < T; t++) {
        /* h_{t-1} for all b: out[:, t-1] (row stride T*H), or h0 */
        const float *hp = t ? out + (size_t)(t - 1) * H : h0;
        if (hp) gemm(c, 0, 1, B, G, H, hp, t ? T * H : H, w_hh, H, 1.0f, gates + (size_t)t * G, T * G);
        KERNEL(lt_cu_lstm_fw_step(B, T, H, t, gates, cells, ctanh, out, h_last, c_last, c0, b_ih, b_hh, st));
    }
}

void lt_cu_lstm_backward(cu_be *be, const lt_rnn_desc *d, float *dx, float *dh0, float *dc0, float *dw_ih, float *dw_hh,
                         float *db_ih, float *db_hh, const float *dout, const float *dh_last, const float *dc_last,
                         const float *save, const float *out, const float *x, const float *h0, const float *c0,
                         const float *w_ih, const float *w_hh, float *scratch) {
    if (empty(d)) return;
    const lt_cuda *c = lt_cu(be);
    void *st = bind(c);
    const int B = d->B, T = d->T, H = d->H, G = 4 * H;
    const size_t BT = (size_t)B * T, BH = (size_t)B * H;
    const float *gates = save, *cells = save + BT * G, *ctanh = cells + BT * H;
    float *dg = scratch, *hprev = dg + BT * G, *dh = hprev + BT * H, *dc = dh + BH;
    for (int t = T - 1; t >= 0; t--) {
        /* dL/dh_t, dL/dc_t: the upstream ones at the last step, else the carry;
           dL/dc_{t-1} into the carry, or added to dc0 at t = 0 */
        const float *dh_in = t == T - 1 ? dh_last : dh, *dc_in = t == T - 1 ? dc_last : dc;
        KERNEL(lt_cu_lstm_bw_step(B, T, H, t, dg, dh_in, dc_in, t ? dc : dc0, !t, dout, gates, cells, ctanh, c0, st));
        /* dL/dh_{t-1} = dgates_t [B, 4H] x w_hh [4H, H] */
        if (t)
            gemm(c, 0, 0, B, H, G, dg + (size_t)t * G, T * G, w_hh, H, 0.0f, dh, H);
        else if (dh0)
            gemm(c, 0, 0, B, H, G, dg, T * G, w_hh, H, 1.0f, dh0, H);
    }
    param_grads(c, st, d, G, dx, dw_ih, dw_hh, db_ih, db_hh, dg, dg, hprev, out, x, h0, w_ih);
}

/* ==== GRU ==== */

size_t lt_cu_gru_save_floats(cu_be *be, const lt_rnn_desc *d) {
    return (size_t)d->B * d->T * 4 * d->H + 3 * (size_t)d->B * d->H;
}

size_t lt_cu_gru_scratch_floats(cu_be *be, const lt_rnn_desc *d) {
    return (size_t)d->B * d->T * 7 * d->H + (size_t)d->B * d->H;
}

void lt_cu_gru_forward(cu_be *be, const lt_rnn_desc *d, float *out, float *h_last, float *save, const float *x,
                       const float *h0, const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh) {
    if (empty(d)) return;
    const lt_cuda *c = lt_cu(be);
    void *st = bind(c);
    const int B = d->B, T = d->T, H = d->H, G = 3 * H;
    const size_t BT = (size_t)B * T;
    float *gates = save, *hn = save + BT * G, *hg = hn + BT * H;
    input_projection(c, st, d, G, gates, x, w_ih);
    for (int t = 0; t < T; t++) {
        /* hg [B, 3H] = h_{t-1} w_hh^T, kept apart: r gates only its n part */
        const float *hp = t ? out + (size_t)(t - 1) * H : h0;
        if (hp) gemm(c, 0, 1, B, G, H, hp, t ? T * H : H, w_hh, H, 0.0f, hg, G);
        KERNEL(lt_cu_gru_fw_step(B, T, H, t, gates, hn, hp ? hg : NULL, out, h_last, h0, b_ih, b_hh, st));
    }
}

void lt_cu_gru_backward(cu_be *be, const lt_rnn_desc *d, float *dx, float *dh0, float *dw_ih, float *dw_hh,
                        float *db_ih, float *db_hh, const float *dout, const float *dh_last, const float *save,
                        const float *out, const float *x, const float *h0, const float *w_ih, const float *w_hh,
                        float *scratch) {
    if (empty(d)) return;
    const lt_cuda *c = lt_cu(be);
    void *st = bind(c);
    const int B = d->B, T = d->T, H = d->H, G = 3 * H;
    const size_t BT = (size_t)B * T;
    const float *gates = save, *hn = save + BT * G;
    float *dxg = scratch, *dhg = dxg + BT * G, *hprev = dhg + BT * G, *dh = hprev + BT * H;
    for (int t = T - 1; t >= 0; t--) {
        /* the direct part z * dL/dh_t of dL/dh_{t-1} into the carry, or added
           to dh0 at t = 0; then dhg_t [B, 3H] x w_hh [3H, H] on top */
        float *dst = t ? dh : dh0;
        KERNEL(
            lt_cu_gru_bw_step(B, T, H, t, dxg, dhg, t == T - 1 ? dh_last : dh, dst, !t, dout, gates, hn, out, h0, st));
        if (dst) gemm(c, 0, 0, B, H, G, dhg + (size_t)t * G, T * G, w_hh, H, 1.0f, dst, H);
    }
    param_grads(c, st, d, G, dx, dw_ih, dw_hh, db_ih, db_hh, dxg, dhg, hprev, out, x, h0, w_ih);
}
