/* ops/cuda/cu_elem.h: the launchers of elem.cu, the CUDA backend's own
 * kernels. Plain C types only (no lathe header: elem.cu is CUDA C++), a stream
 * passed as void * (a cudaStream_t). Each launcher enqueues its kernels on
 * that stream and returns cudaGetLastError() as an int (0: launched; nothing
 * is launched for an empty range). Semantics follow core/ops/cpu/: backward
 * launchers ACCUMULATE (+=) into their gradients; the callers (cu_dnn.c) skip
 * NULL gradients before calling. */
#ifndef LATHE_CU_ELEM_H
#define LATHE_CU_ELEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* element-wise activations, as ops/cpu/activation.c */
enum { LT_CUK_RELU, LT_CUK_TANH, LT_CUK_SIGMOID, LT_CUK_GELU, LT_CUK_ELU };

int lt_cuk_fill(float *x, float v, size_t n, void *stream);

/* out[i] = act(out[i] + b[(i / inner) % C]) over n elements: linear with
 * inner = 1, C = OUT; conv2d with inner = OH*OW, C = OC. b may be NULL. */
int lt_cuk_bias_act(float *out, const float *b, size_t n, int C, size_t inner, int relu, void *stream);
/* dout[i] = out[i] > 0 ? dout[i] : 0 (the fused relu's mask, in place) */
int lt_cuk_relu_mask(float *dout, const float *out, size_t n, void *stream);
/* db[c] += sum over b < B, k < inner of x[(b*C + c)*inner + k], in double */
int lt_cuk_chansum_acc(float *db, const float *x, int B, int C, size_t inner, void *stream);

int lt_cuk_act_forward(int kind, float *out, const float *inp, size_t n, float alpha, void *stream);
int lt_cuk_act_backward(int kind, float *dinp, const float *dout, const float *inp, const float *out, size_t n,
                        float alpha, void *stream);

/* pooling, as ops/cpu/pool.c: planes = B*C */
int lt_cuk_maxpool_forward(float *out, int32_t *idx, const float *inp, size_t planes, int H, int W, int K, int stride,
                           int pad, int OH, int OW, void *stream);
int lt_cuk_maxpool_backward(float *dinp, const float *dout, const int32_t *idx, size_t planes, int H, int W, int OH,
                            int OW, void *stream);
/* stride == K, pad 0: writes every element of dinp */
int lt_cuk_maxpool_backward_fill(float *dinp, const float *dout, const int32_t *idx, size_t planes, int H, int W, int K,
                                 int OH, int OW, void *stream);
int lt_cuk_avgpool_forward(float *out, const float *inp, size_t planes, int H, int W, int K, int stride, int pad,
                           int OH, int OW, void *stream);
int lt_cuk_avgpool_backward(float *dinp, const float *dout, size_t planes, int H, int W, int K, int stride, int pad,
                            int OH, int OW, void *stream);

/* dropout: Philox4x32-10 keyed by seed, counter = element / 4; an element is
 * dropped when its 32-bit draw is below round(p * 2^32); mask 0 or 1/(1-p) */
int lt_cuk_dropout_forward(float *out, float *mask, const float *inp, size_t n, float p, uint64_t seed, void *stream);
int lt_cuk_dropout_backward(float *dinp, const float *dout, const float *mask, size_t n, void *stream);

/* reductions in double: part[g] (nparts <= 1024 doubles) = partial sums of
 * a[i] (b NULL) or (a[i] - b[i])^2; then out[0] = (float)(sum(part) * mul / div),
 * 0 when div == 0 */
int lt_cuk_sum_partials(double *part, int nparts, const float *a, const float *b, size_t n, void *stream);
int lt_cuk_sum_final(float *out, const double *part, size_t nparts, double mul, double div, void *stream);
/* how many partials lt_cuk_sum_partials wants for n elements (1..1024) */
int lt_cuk_sum_nparts(size_t n);

/* cross-entropy: probs = softmax rows, rowloss[r] = lse(x_r) - x_r[label] (0
 * for a label outside [0, C)) */
int lt_cuk_ce_rows(float *probs, double *rowloss, const float *logits, const int32_t *labels, int R, int C,
                   void *stream);
/* dlogits[r, j] += k p_j, then -= k at the label; k = dloss[0] / R */
int lt_cuk_ce_backward(float *dlogits, const float *dloss, const float *probs, const int32_t *labels, int R, int C,
                       void *stream);
/* loss[0] = (float)(sum_r -logp[r, label_r] / R), in one block */
int lt_cuk_nll_forward(float *loss, const float *logp, const int32_t *labels, int R, int C, void *stream);
int lt_cuk_nll_backward(float *dlogp, const float *dloss, const int32_t *labels, int R, int C, void *stream);
/* k = (float)(2 dloss[0] / n): dpred += k (p - t), dtarget -= k (p - t); either may be NULL */
int lt_cuk_mse_backward(float *dpred, float *dtarget, const float *dloss, const float *pred, const float *target,
                        size_t n, void *stream);

/* arithmetic */
int lt_cuk_add(float *out, const float *a, const float *b, size_t n, void *stream);
int lt_cuk_mul(float *out, const float *a, const float *b, size_t n, void *stream);
int lt_cuk_scale(float *out, const float *a, float alpha, size_t n, void *stream);
/* da += alpha * dout */
int lt_cuk_axpy_acc(float *da, const float *dout, float alpha, size_t n, void *stream);
/* da += dout * b, db += dout * a; either may be NULL */
int lt_cuk_mul_backward(float *da, float *db, const float *dout, const float *a, const float *b, size_t n,
                        void *stream);
/* da += dout[0] * alpha (rounded to float first, as the CPU) */
int lt_cuk_sum_backward(float *da, const float *dout, float alpha, size_t n, void *stream);

/* embedding: out[n] = weight[ids[n]]; dweight[ids[n]] += dout[n] (atomics) */
int lt_cuk_embedding_forward(float *out, const int32_t *ids, const float *weight, size_t N, int E, void *stream);
int lt_cuk_embedding_backward(float *dweight, const float *dout, const int32_t *ids, size_t N, int E, void *stream);

/* batch-norm helpers: eval mode's saved statistics (save_mean = running_mean,
 * save_invstd = 1/sqrt(running_var + eps) in double); and the running update
 * for N == 1 (no unbiased variance: the biased 0 is used, as the CPU) */
int lt_cuk_bn_eval_save(float *save_mean, float *save_invstd, const float *running_mean, const float *running_var,
                        float eps, int C, void *stream);
int lt_cuk_bn_running_n1(float *running_mean, float *running_var, const float *mean, float momentum, int C,
                         void *stream);

#ifdef __cplusplus
}
#endif

#endif
