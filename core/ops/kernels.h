/* ops/kernels.h: the CPU kernels, one forward/backward pair per op, in the
 * llm.c style: plain functions over contiguous f32 arrays with the shapes in the
 * comment. Tensors are row-major; images are NCHW. Every backward ACCUMULATES
 * (+=) into the gradients it is given and skips any gradient pointer that is
 * NULL. Kernels never allocate: any workspace comes from the caller, sized by the
 * matching *_scratch_floats() query. Kernels do not fail: shapes are checked by
 * the differentiable ops above them (core/ops/autograd_*.c) before a kernel is
 * called.
 *
 * Implemented in core/ops/cpu/ and reached through the backend table
 * (lt_backend in ops/backend.h, whose entries take the same arguments packed in
 * a descriptor per op); a CUDA backend implements the same entries with the
 * same semantics. The recurrent and embedding kernels are in
 * ops/rnn_kernels.h. */
#ifndef LATHE_OPS_KERNELS_H
#define LATHE_OPS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "lathe/rng.h"

/* Activation fused into linear / conv2d outputs. */
typedef enum lt_act { LT_ACT_NONE = 0, LT_ACT_RELU = 1 } lt_act;

/* ---- linear (PyTorch nn.Linear layout) ----
 * inp [B, IN], w [OUT, IN], b [OUT] or NULL, out [B, OUT]
 * out = act(inp @ w^T + b). backward takes `out` (post-activation) to form the
 * activation's mask; dout is the gradient w.r.t. out and may be overwritten
 * (the kernel may apply the activation mask in place). */
void lt_linear_forward(float *out, const float *inp, const float *w, const float *b, int B, int IN, int OUT,
                       lt_act act);
void lt_linear_backward(float *dinp, float *dw, float *db, float *dout, const float *out, const float *inp,
                        const float *w, int B, int IN, int OUT, lt_act act);

/* ---- conv2d (PyTorch nn.Conv2d layout, groups=1, dilation=1) ----
 * inp [B, C, H, W], w [OC, C, KH, KW], b [OC] or NULL, out [B, OC, OH, OW]
 * OH = (H + 2*pad - KH)/stride + 1, OW likewise. Fused activation as for linear.
 * scratch: at least lt_conv2d_scratch_floats(...) floats, used by forward and
 * backward (the caller may share one scratch buffer between all conv layers). */
size_t lt_conv2d_scratch_floats(int B, int C, int H, int W, int OC, int KH, int KW, int stride, int pad);
void lt_conv2d_forward(float *out, const float *inp, const float *w, const float *b, int B, int C, int H, int W, int OC,
                       int KH, int KW, int stride, int pad, lt_act act, float *scratch);
void lt_conv2d_backward(float *dinp, float *dw, float *db, float *dout, const float *out, const float *inp,
                        const float *w, int B, int C, int H, int W, int OC, int KH, int KW, int stride, int pad,
                        lt_act act, float *scratch);
/* The gradient of a conv2d's output [B, OC, OH, OW] when a max pool is its
 * only reader, given as the pool has it instead of written out: for each
 * pool output (b, oc, i), gp[i] at position idx[i] of its OH*OW plane (the
 * winner), 0 elsewhere; written (fill: windows that tile the plane, as the
 * pool's fill backward) or added onto zero in pool-output order (else, as
 * its plain backward), so the plane is bitwise the one the pool's backward
 * would have written. The ReLU mask (a fused ReLU) is po[i] > 0: the
 * winner's value is the pool's output. */
typedef struct lt_pooled_grad {
    const float *gp;    /* the pool output's gradient [B, OC, PH, PW] */
    const int32_t *idx; /* the winners' positions, as lt_maxpool2d_forward gives them */
    const float *po;    /* the pool's output */
    int PH, PW, fill;
} lt_pooled_grad;
/* lt_conv2d_backward with the output gradient from a max pool (above): each
 * plane is made where it is read (a chunk at a time, in cache) instead of
 * the pool's backward writing the whole [B, OC, OH, OW] gradient to memory
 * and the convolution reading it and its output back. Bitwise the results of
 * the pool's backward followed by lt_conv2d_backward. */
void lt_conv2d_backward_pooled(float *dinp, float *dw, float *db, const lt_pooled_grad *pg, const float *inp,
                               const float *w, int B, int C, int H, int W, int OC, int KH, int KW, int stride, int pad,
                               lt_act act, float *scratch);
/* The algorithm for the 3x3 stride-1 layers with >= 8 channels in and out:
 * LT_CONV_AUTO (the default) runs them as Winograd F(4x4, 3x3)
 * (ops/cpu/winograd.c, 4x fewer multiply-adds), LT_CONV_GEMM as im2col + GEMM
 * like every other layer. Process-wide; for benchmarks and tests that compare
 * the two. Set it between steps, not while a layer runs. */
typedef enum lt_conv_algo { LT_CONV_AUTO = 0, LT_CONV_GEMM = 1 } lt_conv_algo;
void lt_conv2d_set_algo(lt_conv_algo algo);
/* In the bf16 math mode the forward and weight-gradient GEMMs read the
 * column matrix from the image as they pack it (1, the default); 0 writes it
 * out first (im2col), bitwise the same results. For the benchmarks. */
void lt_conv2d_set_bf16_fused(int on);

/* ---- pooling 2-D (no padding unless given; floor mode) ----
 * inp [B, C, H, W], out [B, C, OH, OW], OH = (H + 2*pad - K)/stride + 1.
 * max-pool records the argmax (index into the H*W plane) per output in idx
 * [B, C, OH, OW] for the backward pass; padding never wins the max.
 * avg-pool divides by K*K (count_include_pad=True, PyTorch's default). */
void lt_maxpool2d_forward(float *out, int32_t *idx, const float *inp, int B, int C, int H, int W, int K, int stride,
                          int pad);
void lt_maxpool2d_backward(float *dinp, const float *dout, const int32_t *idx, int B, int C, int H, int W, int OH,
                           int OW);
/* The same for non-overlapping windows (stride == K, no padding) into a dinp
 * that holds garbage: every element is written (0 or the gradient), plane by
 * plane while it is in cache, which spares the caller zeroing it first. */
void lt_maxpool2d_backward_fill(float *dinp, const float *dout, const int32_t *idx, int B, int C, int H, int W, int OH,
                                int OW);
void lt_avgpool2d_forward(float *out, const float *inp, int B, int C, int H, int W, int K, int stride, int pad);
void lt_avgpool2d_backward(float *dinp, const float *dout, int B, int C, int H, int W, int K, int stride, int pad);

/* ---- element-wise activations, n elements ----
 * backward gets both the input and the output of the forward pass (each kernel
 * uses whichever is cheaper). gelu is the exact erf form (PyTorch's default);
 * elu uses alpha. */
void lt_relu_forward(float *out, const float *inp, size_t n);
void lt_relu_backward(float *dinp, const float *dout, const float *inp, const float *out, size_t n);
void lt_tanh_forward(float *out, const float *inp, size_t n);
void lt_tanh_backward(float *dinp, const float *dout, const float *inp, const float *out, size_t n);
void lt_sigmoid_forward(float *out, const float *inp, size_t n);
void lt_sigmoid_backward(float *dinp, const float *dout, const float *inp, const float *out, size_t n);
void lt_gelu_forward(float *out, const float *inp, size_t n);
void lt_gelu_backward(float *dinp, const float *dout, const float *inp, const float *out, size_t n);
void lt_elu_forward(float *out, const float *inp, size_t n, float alpha);
void lt_elu_backward(float *dinp, const float *dout, const float *inp, const float *out, size_t n, float alpha);

/* ---- softmax / log-softmax over the last dimension ----
 * inp, out [R, C] (R rows of C classes). backward uses the forward output. */
void lt_softmax_forward(float *out, const float *inp, int R, int C);
void lt_softmax_backward(float *dinp, const float *dout, const float *out, int R, int C);
void lt_log_softmax_forward(float *out, const float *inp, int R, int C);
void lt_log_softmax_backward(float *dinp, const float *dout, const float *out, int R, int C);

/* ---- dropout (inverted: kept values scaled by 1/(1-p)) ----
 * mask [n] receives 0 or 1/(1-p) drawn from rng; out = inp * mask.
 * p == 0 or eval mode is handled by the caller (no kernel call). */
void lt_dropout_forward(float *out, float *mask, const float *inp, size_t n, float p, lt_rng *rng);
void lt_dropout_backward(float *dinp, const float *dout, const float *mask, size_t n);

/* ---- batch-norm 2-D (PyTorch nn.BatchNorm2d) ----
 * inp, out [B, C, H, W]; gamma, beta, running_mean, running_var [C].
 * Training: normalise with the batch statistics (biased variance), update the
 * running statistics with momentum using the UNBIASED variance as PyTorch does,
 * and save mean and invstd [C] for backward. Eval: use the running statistics
 * (save_mean/save_invstd may be NULL). */
void lt_batchnorm2d_forward(float *out, float *save_mean, float *save_invstd, const float *inp, const float *gamma,
                            const float *beta, float *running_mean, float *running_var, int B, int C, int HW,
                            float momentum, float eps, int training);
void lt_batchnorm2d_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *inp,
                             const float *gamma, const float *save_mean, const float *save_invstd, int B, int C,
                             int HW);

/* ---- losses (mean reduction over the batch, as PyTorch's defaults) ----
 * cross-entropy from logits [B, C] with integer labels [B] in [0, C): returns the
 * mean loss; probs [B, C] receives the softmax (kept for backward).
 * backward: dlogits += dloss * (probs - onehot) / B. */
float lt_cross_entropy_forward(float *probs, const float *logits, const int32_t *labels, int B, int C);
void lt_cross_entropy_backward(float *dlogits, float dloss, const float *probs, const int32_t *labels, int B, int C);
/* nll from log-probabilities [B, C]: mean of -logp[b, label[b]]. */
float lt_nll_forward(const float *logp, const int32_t *labels, int B, int C);
void lt_nll_backward(float *dlogp, float dloss, const int32_t *labels, int B, int C);
/* mse: mean over all n elements of (pred - target)^2. */
float lt_mse_forward(const float *pred, const float *target, size_t n);
void lt_mse_backward(float *dpred, float *dtarget, float dloss, const float *pred, const float *target, size_t n);

#endif
