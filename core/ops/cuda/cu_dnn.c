/* ops/cuda/cu_dnn.c: the CUDA backend's compute entries (all but LSTM and GRU,
 * which are in cu_rnn.c): linear on cuBLAS, convolution, softmax and
 * batch-norm on cuDNN, everything else on the own kernels of elem.cu
 * (cu_elem.h). The semantics are the CPU kernels' (core/ops/cpu/): every
 * backward ACCUMULATES into the gradients it is given (cuBLAS and cuDNN with
 * beta = 1) and skips a NULL one.
 *
 * Every call goes on lt_cuda_ctx.stream, through the handles made by
 * backend_cuda.c (which binds them to that stream); nothing here allocates
 * device memory except through lt_cu_workspace (one call per entry, since a
 * call may grow and so move the workspace), and nothing synchronises. A
 * failed call is kept by LT_CU / LT_CUBLAS / LT_CUDNN and reported by the
 * next synchronising call. cuBLAS and cuDNN are called with host scalars
 * (the default pointer mode).
 *
 * Precision (lt_math, ctx.math): f32 runs true fp32 GEMMs
 * (CUBLAS_COMPUTE_32F) and FMA-only convolutions (CUDNN_FMA_MATH, never TF32);
 * tf32, bf16 and fp16 let cuBLAS use its fast compute types and cuDNN tensor
 * cores, with f32 storage throughout. */
#include <string.h>

#include "ops/cuda/cu_elem.h"
#include "ops/cuda/cuda_backend.h"

static const float one_f = 1.0f, zero_f = 0.0f;

static void *stream_of(cu_be *be) { return (void *)lt_cu(be)->stream; }

/* an own kernel's launch status */
#define LT_CUK(call) lt_cu_check((cudaError_t)(call), #call)

int lt_cu_supports(cu_be *be, lt_op op, const void *desc) {
    (void)be, (void)desc;
    return (unsigned)op < LT_OP_COUNT; /* LSTM and GRU: cu_rnn.c */
}

/* ---- cuDNN tensor descriptors for the simple ops: made once, set per call
 * (a descriptor is read when the call is enqueued) ---- */
enum { TD_X, TD_BN, TD_COUNT };
static cudnnTensorDescriptor_t td[TD_COUNT];

static cudnnTensorDescriptor_t tensor4(int slot, int n, int c, int h, int w) {
    if (!td[slot] && !LT_CUDNN(cudnnCreateTensorDescriptor(&td[slot]))) {
        td[slot] = NULL;
        return NULL;
    }
    if (!LT_CUDNN(cudnnSetTensor4dDescriptor(td[slot], CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w))) return NULL;
    return td[slot];
}

/* ---- linear: row-major out [B, OUT] = inp [B, IN] w^T as the column-major
 * out^T = w^T' inp^T (cuBLAS sees each row-major matrix as its transpose) ---- */
static cublasComputeType_t gemm_compute(cu_be *be) {
    switch (lt_cu(be)->math) {
    case LT_MATH_TF32: return CUBLAS_COMPUTE_32F_FAST_TF32;
    case LT_MATH_BF16: return CUBLAS_COMPUTE_32F_FAST_16BF;
    case LT_MATH_FP16: return CUBLAS_COMPUTE_32F_FAST_16F;
    default: return CUBLAS_COMPUTE_32F;
    }
}

/* column-major C [m, n] = A' B' + beta C, f32 storage */
static void gemm(cu_be *be, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc) {
    LT_CUBLAS(cublasGemmEx(lt_cu(be)->cublas, ta, tb, m, n, k, &one_f, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, &beta, C,
                           CUDA_R_32F, ldc, gemm_compute(be), CUBLAS_GEMM_DEFAULT));
}

void lt_cu_linear_forward(cu_be *be, const lt_linear_desc *d, float *out, const float *inp, const float *w,
                          const float *b) {
    if (d->B <= 0 || d->OUT <= 0) return;
    size_t n = (size_t)d->B * d->OUT;
    if (d->IN > 0)
        gemm(be, CUBLAS_OP_T, CUBLAS_OP_N, d->OUT, d->B, d->IN, w, d->IN, inp, d->IN, 0.0f, out, d->OUT);
    else
        LT_CU(cudaMemsetAsync(out, 0, n * sizeof(float), lt_cu(be)->stream));
    LT_CUK(lt_cuk_bias_act(out, b, n, d->OUT, 1, d->act == LT_ACT_RELU, stream_of(be)));
}

void lt_cu_linear_backward(cu_be *be, const lt_linear_desc *d, float *dinp, float *dw, float *db, float *dout,
                           const float *out, const float *inp, const float *w) {
    if (d->B <= 0 || d->OUT <= 0) return;
    size_t n = (size_t)d->B * d->OUT;
    if (d->act == LT_ACT_RELU) LT_CUK(lt_cuk_relu_mask(dout, out, n, stream_of(be)));
    if (db) LT_CUK(lt_cuk_chansum_acc(db, dout, d->B, d->OUT, 1, stream_of(be)));
    if (d->IN <= 0) return;
    /* dw [OUT, IN] += dout^T inp: column-major dw^T [IN, OUT] = inp^T [IN, B] dout [B, OUT] */
    if (dw) gemm(be, CUBLAS_OP_N, CUBLAS_OP_T, d->IN, d->OUT, d->B, inp, d->IN, dout, d->OUT, 1.0f, dw, d->IN);
    /* dinp [B, IN] += dout w: column-major dinp^T [IN, B] = w^T [IN, OUT] dout^T [OUT, B] */
    if (dinp) gemm(be, CUBLAS_OP_N, CUBLAS_OP_N, d->IN, d->B, d->OUT, w, d->IN, dout, d->OUT, 1.0f, dinp, d->IN);
}

/* ---- conv2d: cuDNN, NCHW f32 cross-correlation. The descriptors and the
 * three algorithms are chosen once per shape and math mode (heuristics,
 * cudnnGet*_v7: no timing runs, no allocation, no synchronisation) and kept in
 * a small cache; the workspace comes from lt_cu_workspace. ---- */
#define CONV_CACHE 32

typedef struct conv_plan {
    int used;
    int key[9]; /* B, C, H, W, OC, KH, KW, stride, pad */
    lt_math math;
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    cudnnMathType_t fwd_math, data_math, filter_math;
    size_t fwd_ws, data_ws, filter_ws;
} conv_plan;

static conv_plan plans[CONV_CACHE];
static int plan_next; /* the slot replaced next when the cache is full */

static void conv_key(const lt_conv2d_desc *d, int *k) {
    int v[9] = {d->B, d->C, d->H, d->W, d->OC, d->KH, d->KW, d->stride, d->pad};
    memcpy(k, v, sizeof v);
}

static cudnnMathType_t wanted_math(lt_math m) {
    switch (m) {
    case LT_MATH_F32: return CUDNN_FMA_MATH; /* no TF32: f32 stays f32 */
    case LT_MATH_TF32: return CUDNN_TENSOR_OP_MATH;
    default: return CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
    }
}

/* f32 accepts FMA kernels only; the fast modes take what cuDNN proposes */
static int math_ok(lt_math m, cudnnMathType_t t) {
    return m != LT_MATH_F32 || (t != CUDNN_TENSOR_OP_MATH && t != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION);
}

/* The first successful candidate (cuDNN's order: fastest expected first) of an
 * acceptable math type, deterministic when one is; -1 when none. */
#define PICK(perf, count, m, out)                                                                                      \
    do {                                                                                                               \
        (out) = -1;                                                                                                    \
        for (int pass = 0; pass < 2 && (out) < 0; pass++)                                                              \
            for (int i_ = 0; i_ < (count); i_++) {                                                                     \
                if ((perf)[i_].status != CUDNN_STATUS_SUCCESS || !math_ok((m), (perf)[i_].mathType)) continue;         \
                if (pass == 0 && (perf)[i_].determinism != CUDNN_DETERMINISTIC) continue;                              \
                (out) = i_;                                                                                            \
                break;                                                                                                 \
            }                                                                                                          \
    } while (0)

static cudnnMathType_t plan_math(lt_math m, cudnnMathType_t proposed) {
    return m == LT_MATH_F32 ? CUDNN_FMA_MATH : proposed;
}

static void plan_free(conv_plan *p) {
    if (p->x) cudnnDestroyTensorDescriptor(p->x);
    if (p->y) cudnnDestroyTensorDescriptor(p->y);
    if (p->w) cudnnDestroyFilterDescriptor(p->w);
    if (p->conv) cudnnDestroyConvolutionDescriptor(p->conv);
    memset(p, 0, sizeof *p);
}

static int plan_make(cu_be *be, const lt_conv2d_desc *d, conv_plan *p) {
    cudnnHandle_t h = lt_cu(be)->cudnn;
    lt_math m = lt_cu(be)->math;
    int OH, OW;
    lt_conv2d_out(d, &OH, &OW);
    memset(p, 0, sizeof *p);
    conv_key(d, p->key);
    p->math = m;
    if (!LT_CUDNN(cudnnCreateTensorDescriptor(&p->x)) || !LT_CUDNN(cudnnCreateTensorDescriptor(&p->y)) ||
        !LT_CUDNN(cudnnCreateFilterDescriptor(&p->w)) || !LT_CUDNN(cudnnCreateConvolutionDescriptor(&p->conv)))
        goto fail;
    if (!LT_CUDNN(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d->B, d->C, d->H, d->W)) ||
        !LT_CUDNN(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d->B, d->OC, OH, OW)) ||
        !LT_CUDNN(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, d->OC, d->C, d->KH, d->KW)) ||
        !LT_CUDNN(cudnnSetConvolution2dDescriptor(p->conv, d->pad, d->pad, d->stride, d->stride, 1, 1,
                                                  CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT)) ||
        !LT_CUDNN(cudnnSetConvolutionMathType(p->conv, wanted_math(m))))
        goto fail;

    enum { NPERF = 16 };
    int count = 0, at;
    cudnnConvolutionFwdAlgoPerf_t fp[NPERF];
    if (!LT_CUDNN(cudnnGetConvolutionForwardAlgorithm_v7(h, p->x, p->w, p->conv, p->y, NPERF, &count, fp))) goto fail;
    PICK(fp, count, m, at);
    p->fwd = at >= 0 ? fp[at].algo : CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    p->fwd_math = plan_math(m, at >= 0 ? fp[at].mathType : wanted_math(m));

    cudnnConvolutionBwdDataAlgoPerf_t dp[NPERF];
    if (!LT_CUDNN(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->w, p->y, p->conv, p->x, NPERF, &count, dp)))
        goto fail;
    PICK(dp, count, m, at);
    p->bwd_data = at >= 0 ? dp[at].algo : CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    p->data_math = plan_math(m, at >= 0 ? dp[at].mathType : wanted_math(m));

    cudnnConvolutionBwdFilterAlgoPerf_t wp[NPERF];
    if (!LT_CUDNN(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->x, p->y, p->conv, p->w, NPERF, &count, wp)))
        goto fail;
    PICK(wp, count, m, at);
    p->bwd_filter = at >= 0 ? wp[at].algo : CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
    p->filter_math = plan_math(m, at >= 0 ? wp[at].mathType : wanted_math(m));

    /* the workspace each needs under the math type it will run with */
    if (!LT_CUDNN(cudnnSetConvolutionMathType(p->conv, p->fwd_math)) ||
        !LT_CUDNN(cudnnGetConvolutionForwardWorkspaceSize(h, p->x, p->w, p->conv, p->y, p->fwd, &p->fwd_ws)) ||
        !LT_CUDNN(cudnnSetConvolutionMathType(p->conv, p->data_math)) ||
        !LT_CUDNN(
            cudnnGetConvolutionBackwardDataWorkspaceSize(h, p->w, p->y, p->conv, p->x, p->bwd_data, &p->data_ws)) ||
        !LT_CUDNN(cudnnSetConvolutionMathType(p->conv, p->filter_math)) ||
        !LT_CUDNN(
            cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p->x, p->y, p->conv, p->w, p->bwd_filter, &p->filter_ws)))
        goto fail;
    p->used = 1;
    return 1;
fail:
    plan_free(p);
    return 0;
}

static conv_plan *plan_for(cu_be *be, const lt_conv2d_desc *d) {
    int key[9];
    conv_key(d, key);
    lt_math m = lt_cu(be)->math;
    for (int i = 0; i < CONV_CACHE; i++)
        if (plans[i].used && plans[i].math == m && !memcmp(plans[i].key, key, sizeof key)) return &plans[i];
    conv_plan *p = NULL;
    for (int i = 0; i < CONV_CACHE && !p; i++)
        if (!plans[i].used) p = &plans[i];
    if (!p) { /* full: replace in turn */
        p = &plans[plan_next];
        plan_next = (plan_next + 1) % CONV_CACHE;
        plan_free(p);
    }
    return plan_make(be, d, p) ? p : NULL;
}

size_t lt_cu_conv2d_scratch_floats(cu_be *be, const lt_conv2d_desc *d) {
    (void)be, (void)d;
    return 0; /* cuDNN works in lt_cu_workspace */
}

void lt_cu_conv2d_forward(cu_be *be, const lt_conv2d_desc *d, float *out, const float *inp, const float *w,
                          const float *b, float *scratch) {
    (void)scratch;
    int OH, OW;
    lt_conv2d_out(d, &OH, &OW);
    if (d->B <= 0 || d->OC <= 0 || OH <= 0 || OW <= 0) return;
    conv_plan *p = plan_for(be, d);
    if (!p) return;
    void *ws = p->fwd_ws ? lt_cu_workspace(p->fwd_ws) : NULL;
    if (p->fwd_ws && !ws) return;
    if (!LT_CUDNN(cudnnSetConvolutionMathType(p->conv, p->fwd_math))) return;
    LT_CUDNN(cudnnConvolutionForward(lt_cu(be)->cudnn, &one_f, p->x, inp, p->w, w, p->conv, p->fwd, ws, p->fwd_ws,
                                     &zero_f, p->y, out));
    size_t n = (size_t)d->B * d->OC * OH * OW;
    LT_CUK(lt_cuk_bias_act(out, b, n, d->OC, (size_t)OH * OW, d->act == LT_ACT_RELU, stream_of(be)));
}

void lt_cu_conv2d_backward(cu_be *be, const lt_conv2d_desc *d, float *dinp, float *dw, float *db, float *dout,
                           const float *out, const float *inp, const float *w, float *scratch) {
    (void)scratch;
    int OH, OW;
    lt_conv2d_out(d, &OH, &OW);
    if (d->B <= 0 || d->OC <= 0 || OH <= 0 || OW <= 0) return;
    size_t n = (size_t)d->B * d->OC * OH * OW;
    if (d->act == LT_ACT_RELU) LT_CUK(lt_cuk_relu_mask(dout, out, n, stream_of(be)));
    if (db) LT_CUK(lt_cuk_chansum_acc(db, dout, d->B, d->OC, (size_t)OH * OW, stream_of(be)));
    if (!dinp && !dw) return;
    conv_plan *p = plan_for(be, d);
    if (!p) return;
    size_t need = 0;
    if (dinp && p->data_ws > need) need = p->data_ws;
    if (dw && p->filter_ws > need) need = p->filter_ws;
    void *ws = need ? lt_cu_workspace(need) : NULL;
    if (need && !ws) return;
    cudnnHandle_t h = lt_cu(be)->cudnn;
    if (dinp && LT_CUDNN(cudnnSetConvolutionMathType(p->conv, p->data_math)))
        LT_CUDNN(cudnnConvolutionBackwardData(h, &one_f, p->w, w, p->y, dout, p->conv, p->bwd_data, ws, p->data_ws,
                                              &one_f, p->x, dinp));
    if (dw && LT_CUDNN(cudnnSetConvolutionMathType(p->conv, p->filter_math)))
        LT_CUDNN(cudnnConvolutionBackwardFilter(h, &one_f, p->x, inp, p->y, dout, p->conv, p->bwd_filter, ws,
                                                p->filter_ws, &one_f, p->w, dw));
}

/* ---- pooling: own kernels (argmax positions, count_include_pad) ---- */
void lt_cu_maxpool2d_forward(cu_be *be, const lt_pool2d_desc *d, float *out, int32_t *idx, const float *inp) {
    int OH, OW;
    lt_pool2d_out(d, &OH, &OW);
    LT_CUK(lt_cuk_maxpool_forward(out, idx, inp, (size_t)d->B * d->C, d->H, d->W, d->K, d->stride, d->pad, OH, OW,
                                  stream_of(be)));
}

void lt_cu_maxpool2d_backward(cu_be *be, const lt_pool2d_desc *d, float *dinp, const float *dout, const int32_t *idx) {
    if (!dinp) return;
    int OH, OW;
    lt_pool2d_out(d, &OH, &OW);
    LT_CUK(lt_cuk_maxpool_backward(dinp, dout, idx, (size_t)d->B * d->C, d->H, d->W, OH, OW, stream_of(be)));
}

void lt_cu_maxpool2d_backward_fill(cu_be *be, const lt_pool2d_desc *d, float *dinp, const float *dout,
                                   const int32_t *idx) {
    if (!dinp) return;
    int OH, OW;
    lt_pool2d_out(d, &OH, &OW);
    LT_CUK(lt_cuk_maxpool_backward_fill(dinp, dout, idx, (size_t)d->B * d->C, d->H, d->W, d->K, OH, OW, stream_of(be)));
}

void lt_cu_avgpool2d_forward(cu_be *be, const lt_pool2d_desc *d, float *out, const float *inp) {
    int OH, OW;
    lt_pool2d_out(d, &OH, &OW);
    LT_CUK(lt_cuk_avgpool_forward(out, inp, (size_t)d->B * d->C, d->H, d->W, d->K, d->stride, d->pad, OH, OW,
                                  stream_of(be)));
}

void lt_cu_avgpool2d_backward(cu_be *be, const lt_pool2d_desc *d, float *dinp, const float *dout) {
    if (!dinp) return;
    int OH, OW;
    lt_pool2d_out(d, &OH, &OW);
    LT_CUK(lt_cuk_avgpool_backward(dinp, dout, (size_t)d->B * d->C, d->H, d->W, d->K, d->stride, d->pad, OH, OW,
                                   stream_of(be)));
}

/* ---- element-wise activations: own kernels (the CPU's formulas; gelu the
 * exact erf form) ---- */
#define CU_ACT(name, KIND)                                                                                             \
    void lt_cu_##name##_forward(cu_be *be, const lt_elem_desc *d, float *out, const float *inp) {                      \
        LT_CUK(lt_cuk_act_forward(KIND, out, inp, d->n, d->alpha, stream_of(be)));                                     \
    }                                                                                                                  \
    void lt_cu_##name##_backward(cu_be *be, const lt_elem_desc *d, float *dinp, const float *dout, const float *inp,   \
                                 const float *out) {                                                                   \
        if (dinp) LT_CUK(lt_cuk_act_backward(KIND, dinp, dout, inp, out, d->n, d->alpha, stream_of(be)));              \
    }
CU_ACT(relu, LT_CUK_RELU)
CU_ACT(tanh, LT_CUK_TANH)
CU_ACT(sigmoid, LT_CUK_SIGMOID)
CU_ACT(gelu, LT_CUK_GELU)
CU_ACT(elu, LT_CUK_ELU)
#undef CU_ACT

/* ---- softmax, log-softmax: cuDNN over the C of an [R, C, 1, 1] tensor;
 * backward with beta = 1 (accumulates) ---- */
static void softmax_fw(cu_be *be, cudnnSoftmaxAlgorithm_t algo, const lt_rows_desc *d, float *out, const float *inp) {
    if (d->R <= 0 || d->C <= 0) return;
    cudnnTensorDescriptor_t t = tensor4(TD_X, d->R, d->C, 1, 1);
    if (!t) return;
    LT_CUDNN(cudnnSoftmaxForward(lt_cu(be)->cudnn, algo, CUDNN_SOFTMAX_MODE_INSTANCE, &one_f, t, inp, &zero_f, t, out));
}

static void softmax_bw(cu_be *be, cudnnSoftmaxAlgorithm_t algo, const lt_rows_desc *d, float *dinp, const float *dout,
                       const float *out) {
    if (!dinp || d->R <= 0 || d->C <= 0) return;
    cudnnTensorDescriptor_t t = tensor4(TD_X, d->R, d->C, 1, 1);
    if (!t) return;
    LT_CUDNN(cudnnSoftmaxBackward(lt_cu(be)->cudnn, algo, CUDNN_SOFTMAX_MODE_INSTANCE, &one_f, t, out, t, dout, &one_f,
                                  t, dinp));
}

void lt_cu_softmax_forward(cu_be *be, const lt_rows_desc *d, float *out, const float *inp) {
    softmax_fw(be, CUDNN_SOFTMAX_ACCURATE, d, out, inp);
}
void lt_cu_softmax_backward(cu_be *be, const lt_rows_desc *d, float *dinp, const float *dout, const float *out) {
    softmax_bw(be, CUDNN_SOFTMAX_ACCURATE, d, dinp, dout, out);
}
void lt_cu_log_softmax_forward(cu_be *be, const lt_rows_desc *d, float *out, const float *inp) {
    softmax_fw(be, CUDNN_SOFTMAX_LOG, d, out, inp);
}
void lt_cu_log_softmax_backward(cu_be *be, const lt_rows_desc *d, float *dinp, const float *dout, const float *out) {
    softmax_bw(be, CUDNN_SOFTMAX_LOG, d, dinp, dout, out);
}

/* ---- dropout: one 64-bit draw from rng per call keys a counter-based
 * generator (Philox4x32-10 in elem.cu), so the same rng state gives the same
 * mask; the masks differ from the CPU's (xoshiro bits), the law is the same ---- */
void lt_cu_dropout_forward(cu_be *be, const lt_elem_desc *d, float *out, float *mask, const float *inp, lt_rng *rng) {
    uint64_t seed = lt_rng_u64(rng);
    LT_CUK(lt_cuk_dropout_forward(out, mask, inp, d->n, d->alpha, seed, stream_of(be)));
}

void lt_cu_dropout_backward(cu_be *be, const lt_elem_desc *d, float *dinp, const float *dout, const float *mask) {
    if (dinp) LT_CUK(lt_cuk_dropout_backward(dinp, dout, mask, d->n, stream_of(be)));
}

/* ---- batch-norm 2-D: cuDNN spatial mode over [B, C, HW, 1]. cuDNN's
 * exponentialAverageFactor is the momentum (running = (1-m) running + m
 * batch), its running variance is the unbiased one and its saved inverse
 * variance is 1/sqrt(biased var + eps): the CPU's conventions. Absent
 * optional buffers are stood in for from the workspace. ---- */
void lt_cu_batchnorm2d_forward(cu_be *be, const lt_batchnorm2d_desc *d, float *out, float *save_mean,
                               float *save_invstd, const float *inp, const float *gamma, const float *beta,
                               float *running_mean, float *running_var) {
    int C = d->C;
    if (d->B <= 0 || C <= 0 || d->HW <= 0) return;
    void *s = stream_of(be);
    cudnnTensorDescriptor_t x = tensor4(TD_X, d->B, C, d->HW, 1), bn = tensor4(TD_BN, 1, C, 1, 1);
    if (!x || !bn) return;
    int need_g = !gamma, need_b = !beta;
    int need_r = d->training && (!running_mean || !running_var) && (running_mean || running_var);
    int need_s = d->training && (!save_mean || !save_invstd);
    size_t nf = (size_t)C * (need_g + need_b + 2 * need_r + 2 * need_s);
    float *ws = nf ? lt_cu_workspace(nf * sizeof(float)) : NULL;
    if (nf && !ws) return;
    float *at = ws;
    if (need_g) gamma = at, LT_CUK(lt_cuk_fill(at, 1.0f, (size_t)C, s)), at += C;
    if (need_b) beta = at, LT_CUK(lt_cuk_fill(at, 0.0f, (size_t)C, s)), at += C;
    cudnnHandle_t h = lt_cu(be)->cudnn;
    if (!d->training) {
        LT_CUDNN(cudnnBatchNormalizationForwardInference(h, CUDNN_BATCHNORM_SPATIAL, &one_f, &zero_f, x, inp, x, out,
                                                         bn, gamma, beta, running_mean, running_var, (double)d->eps));
        LT_CUK(lt_cuk_bn_eval_save(save_mean, save_invstd, running_mean, running_var, d->eps, C, s));
        return;
    }
    float *rm = running_mean, *rv = running_var;
    if (need_r) {
        if (!rm) rm = at;
        at += C;
        if (!rv) rv = at;
        at += C;
    }
    float *sm = save_mean, *si = save_invstd;
    if (need_s) {
        if (!sm) sm = at;
        at += C;
        if (!si) si = at;
        at += C;
    }
    /* N == 1 has no unbiased variance: cuDNN would divide by 0, the CPU keeps
       the biased 0; the running update is then done here */
    int n1 = (size_t)d->B * (size_t)d->HW == 1;
    LT_CUDNN(cudnnBatchNormalizationForwardTraining(h, CUDNN_BATCHNORM_SPATIAL, &one_f, &zero_f, x, inp, x, out, bn,
                                                    gamma, beta, (double)d->momentum, n1 ? NULL : rm, n1 ? NULL : rv,
                                                    (double)d->eps, sm, si));
    if (n1) LT_CUK(lt_cuk_bn_running_n1(running_mean, running_var, sm, d->momentum, C, s));
}

void lt_cu_batchnorm2d_backward(cu_be *be, const lt_batchnorm2d_desc *d, float *dinp, float *dgamma, float *dbeta,
                                const float *dout, const float *inp, const float *gamma, const float *save_mean,
                                const float *save_invstd) {
    int C = d->C;
    if (d->B <= 0 || C <= 0 || d->HW <= 0 || (!dinp && !dgamma && !dbeta)) return;
    void *s = stream_of(be);
    cudnnTensorDescriptor_t x = tensor4(TD_X, d->B, C, d->HW, 1), bn = tensor4(TD_BN, 1, C, 1, 1);
    if (!x || !bn) return;
    size_t n = (size_t)d->B * C * d->HW;
    int need_g = !gamma, need_dp = !dgamma || !dbeta;
    size_t nf = (size_t)C * (need_g + 2 * need_dp) + (dinp ? 0 : n);
    float *ws = nf ? lt_cu_workspace(nf * sizeof(float)) : NULL;
    if (nf && !ws) return;
    float *at = ws;
    if (need_g) gamma = at, LT_CUK(lt_cuk_fill(at, 1.0f, (size_t)C, s)), at += C;
    float *dg = dgamma, *dbt = dbeta;
    if (need_dp) { /* a throwaway for the absent one (accumulating into garbage is harmless there) */
        if (!dg) dg = at;
        at += C;
        if (!dbt) dbt = at;
        at += C;
    }
    float *dx = dinp ? dinp : at;
    const float *beta_data = dinp ? &one_f : &zero_f;
    LT_CUDNN(cudnnBatchNormalizationBackward(lt_cu(be)->cudnn, CUDNN_BATCHNORM_SPATIAL, &one_f, beta_data, &one_f,
                                             &one_f, x, inp, x, dout, x, dx, bn, gamma, dg, dbt, (double)d->eps,
                                             save_mean, save_invstd));
}

/* ---- losses: mean over the batch; loss[0] and dloss[0] live on the device ---- */
void lt_cu_cross_entropy_forward(cu_be *be, const lt_rows_desc *d, float *loss, float *probs, const float *logits,
                                 const int32_t *labels) {
    void *s = stream_of(be);
    if (d->R <= 0 || d->C <= 0) {
        LT_CUK(lt_cuk_fill(loss, 0.0f, 1, s));
        return;
    }
    double *rowloss = lt_cu_workspace((size_t)d->R * sizeof(double));
    if (!rowloss) return;
    LT_CUK(lt_cuk_ce_rows(probs, rowloss, logits, labels, d->R, d->C, s));
    LT_CUK(lt_cuk_sum_final(loss, rowloss, (size_t)d->R, 1.0, (double)d->R, s));
}

void lt_cu_cross_entropy_backward(cu_be *be, const lt_rows_desc *d, float *dlogits, const float *dloss,
                                  const float *probs, const int32_t *labels) {
    if (dlogits) LT_CUK(lt_cuk_ce_backward(dlogits, dloss, probs, labels, d->R, d->C, stream_of(be)));
}

void lt_cu_nll_forward(cu_be *be, const lt_rows_desc *d, float *loss, const float *logp, const int32_t *labels) {
    LT_CUK(lt_cuk_nll_forward(loss, logp, labels, d->R, d->C, stream_of(be)));
}

void lt_cu_nll_backward(cu_be *be, const lt_rows_desc *d, float *dlogp, const float *dloss, const int32_t *labels) {
    if (dlogp) LT_CUK(lt_cuk_nll_backward(dlogp, dloss, labels, d->R, d->C, stream_of(be)));
}

/* out[0] = (float)(sum * mul / div) of a (b NULL) or of (a - b)^2, in double:
 * partial sums per block, then one block */
static void reduce(cu_be *be, float *out, const float *a, const float *b, size_t n, double mul, double div) {
    void *s = stream_of(be);
    int np = lt_cuk_sum_nparts(n);
    double *part = lt_cu_workspace((size_t)np * sizeof(double));
    if (!part) return;
    if (n) LT_CUK(lt_cuk_sum_partials(part, np, a, b, n, s));
    LT_CUK(lt_cuk_sum_final(out, part, n ? (size_t)np : 0, mul, div, s));
}

void lt_cu_mse_forward(cu_be *be, const lt_elem_desc *d, float *loss, const float *pred, const float *target) {
    reduce(be, loss, pred, target, d->n, 1.0, (double)d->n);
}

void lt_cu_mse_backward(cu_be *be, const lt_elem_desc *d, float *dpred, float *dtarget, const float *dloss,
                        const float *pred, const float *target) {
    LT_CUK(lt_cuk_mse_backward(dpred, dtarget, dloss, pred, target, d->n, stream_of(be)));
}

/* ---- arithmetic ---- */
void lt_cu_add_forward(cu_be *be, const lt_elem_desc *d, float *out, const float *a, const float *b) {
    LT_CUK(lt_cuk_add(out, a, b, d->n, stream_of(be)));
}
void lt_cu_add_backward(cu_be *be, const lt_elem_desc *d, float *da, float *db, const float *dout) {
    if (da) LT_CUK(lt_cuk_axpy_acc(da, dout, 1.0f, d->n, stream_of(be)));
    if (db) LT_CUK(lt_cuk_axpy_acc(db, dout, 1.0f, d->n, stream_of(be)));
}
void lt_cu_mul_forward(cu_be *be, const lt_elem_desc *d, float *out, const float *a, const float *b) {
    LT_CUK(lt_cuk_mul(out, a, b, d->n, stream_of(be)));
}
void lt_cu_mul_backward(cu_be *be, const lt_elem_desc *d, float *da, float *db, const float *dout, const float *a,
                        const float *b) {
    LT_CUK(lt_cuk_mul_backward(da, db, dout, a, b, d->n, stream_of(be)));
}
void lt_cu_scale_forward(cu_be *be, const lt_elem_desc *d, float *out, const float *a) {
    LT_CUK(lt_cuk_scale(out, a, d->alpha, d->n, stream_of(be)));
}
void lt_cu_scale_backward(cu_be *be, const lt_elem_desc *d, float *da, const float *dout) {
    if (da) LT_CUK(lt_cuk_axpy_acc(da, dout, d->alpha, d->n, stream_of(be)));
}
/* the sum in double, then scaled in double and rounded once */
void lt_cu_sum_forward(cu_be *be, const lt_elem_desc *d, float *out, const float *a) {
    reduce(be, out, a, NULL, d->n, (double)d->alpha, 1.0);
}
void lt_cu_sum_backward(cu_be *be, const lt_elem_desc *d, float *da, const float *dout) {
    if (da) LT_CUK(lt_cuk_sum_backward(da, dout, d->alpha, d->n, stream_of(be)));
}

/* ---- embedding: rows gathered; backward scatters with atomics (repeated
 * ids add up in an unspecified order, unlike the CPU's sequential one) ---- */
void lt_cu_embedding_forward(cu_be *be, const lt_embedding_desc *d, float *out, const int32_t *ids,
                             const float *weight) {
    LT_CUK(lt_cuk_embedding_forward(out, ids, weight, d->N, d->E, stream_of(be)));
}
void lt_cu_embedding_backward(cu_be *be, const lt_embedding_desc *d, float *dweight, const float *dout,
                              const int32_t *ids) {
    if (dweight) LT_CUK(lt_cuk_embedding_backward(dweight, dout, ids, d->N, d->E, stream_of(be)));
}
