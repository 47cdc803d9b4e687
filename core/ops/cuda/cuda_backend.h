/* ops/cuda/cuda_backend.h: the CUDA backend's one context and the entries its
 * files provide to the table (backend_cuda.c). C only: the .cu files hold the
 * kernels and export plain launchers (pointers, sizes, a stream), declared in
 * their own headers (cu_*.h), which include nothing of lathe.
 *
 * One device per process (lathe's rule: --devices 1 per rank), so the
 * context is a singleton, lt_cuda_ctx, made on the first lt_backend_cuda call
 * that finds a usable device. Every kernel, cuBLAS and cuDNN call and the
 * default copies run on ctx.stream, in order; side is a second stream for
 * batch uploads and the workbench's copies. Entries never fail (backend.h):
 * a failed CUDA call is kept as the context's first error (lt_cu_check) and
 * reported by the next synchronising call (synchronize, get, the scalar
 * reductions), which is how the caller learns of it. */
#ifndef LATHE_OPS_CUDA_BACKEND_H
#define LATHE_OPS_CUDA_BACKEND_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "ops/backend.h"

typedef struct lt_cuda {
    lt_backend be; /* the table: callers hold &lt_cuda_ctx.be */
    int ready;     /* 1 once a device was found and the handles made */
    int device;
    char name[128]; /* "cuda:0 NVIDIA H100 80GB HBM3" */
    cudaStream_t stream, side;
    cublasHandle_t cublas;
    cudnnHandle_t cudnn;
    lt_math math; /* what GEMMs and convolutions may use (lt_dev_set_math) */
    /* one workspace for cuDNN and cuBLAS, grown when an op needs more: only
       in the first step of a shape, never after */
    void *ws;
    size_t ws_bytes;
    /* reductions' results: device scratch and pinned host copies */
    double *red_dev, *red_host;
    /* the first failed call since the last synchronising one */
    int err_code; /* cudaError_t, cublasStatus_t or cudnnStatus_t, as text below */
    char err_msg[200];
} lt_cuda;

extern lt_cuda lt_cuda_ctx;

static inline lt_cuda *lt_cu(const lt_backend *be) { return (lt_cuda *)(void *)be; }
static inline cudaStream_t lt_cu_stream(lt_stream *s) { return s ? (cudaStream_t)(void *)s : lt_cuda_ctx.stream; }

/* Records the first failure (what: the call, for the message); returns ok. */
int lt_cu_check(cudaError_t rc, const char *what);
int lt_cu_check_blas(cublasStatus_t rc, const char *what);
int lt_cu_check_dnn(cudnnStatus_t rc, const char *what);
#define LT_CU(call) lt_cu_check((call), #call)
#define LT_CUBLAS(call) lt_cu_check_blas((call), #call)
#define LT_CUDNN(call) lt_cu_check_dnn((call), #call)

/* The workspace, at least bytes long (grown on ctx.stream's order). */
void *lt_cu_workspace(size_t bytes);

/* ---- entries, by file ----
 * backend_cuda.c: device, memory, copies, sync, training-state ops, table.
 * cu_dnn.c: linear (cuBLAS), conv2d, pooling, activations, softmax, batch
 *   norm (cuDNN); elem.cu: own kernels (gelu, dropout, losses, arithmetic,
 *   embedding, maxpool with argmax).
 * cu_rnn.c + rnn.cu: LSTM and GRU (cuBLAS GEMMs + fused gate kernels). */
typedef const lt_backend cu_be;

int lt_cu_supports(cu_be *be, lt_op op, const void *desc);

void lt_cu_linear_forward(cu_be *be, const lt_linear_desc *d, float *out, const float *inp, const float *w,
                          const float *b);
void lt_cu_linear_backward(cu_be *be, const lt_linear_desc *d, float *dinp, float *dw, float *db, float *dout,
                           const float *out, const float *inp, const float *w);
size_t lt_cu_conv2d_scratch_floats(cu_be *be, const lt_conv2d_desc *d);
void lt_cu_conv2d_forward(cu_be *be, const lt_conv2d_desc *d, float *out, const float *inp, const float *w,
                          const float *b, float *scratch);
void lt_cu_conv2d_backward(cu_be *be, const lt_conv2d_desc *d, float *dinp, float *dw, float *db, float *dout,
                           const float *out, const float *inp, const float *w, float *scratch);
void lt_cu_maxpool2d_forward(cu_be *be, const lt_pool2d_desc *d, float *out, int32_t *idx, const float *inp);
void lt_cu_maxpool2d_backward(cu_be *be, const lt_pool2d_desc *d, float *dinp, const float *dout, const int32_t *idx);
void lt_cu_maxpool2d_backward_fill(cu_be *be, const lt_pool2d_desc *d, float *dinp, const float *dout,
                                   const int32_t *idx);
void lt_cu_avgpool2d_forward(cu_be *be, const lt_pool2d_desc *d, float *out, const float *inp);
void lt_cu_avgpool2d_backward(cu_be *be, const lt_pool2d_desc *d, float *dinp, const float *dout);
#define LT_CU_ELEM_ACT(name)                                                                                           \
    void lt_cu_##name##_forward(cu_be *be, const lt_elem_desc *d, float *out, const float *inp);                       \
    void lt_cu_##name##_backward(cu_be *be, const lt_elem_desc *d, float *dinp, const float *dout, const float *inp,   \
                                 const float *out);
LT_CU_ELEM_ACT(relu)
LT_CU_ELEM_ACT(tanh)
LT_CU_ELEM_ACT(sigmoid)
LT_CU_ELEM_ACT(gelu)
LT_CU_ELEM_ACT(elu)
#undef LT_CU_ELEM_ACT
void lt_cu_softmax_forward(cu_be *be, const lt_rows_desc *d, float *out, const float *inp);
void lt_cu_softmax_backward(cu_be *be, const lt_rows_desc *d, float *dinp, const float *dout, const float *out);
void lt_cu_log_softmax_forward(cu_be *be, const lt_rows_desc *d, float *out, const float *inp);
void lt_cu_log_softmax_backward(cu_be *be, const lt_rows_desc *d, float *dinp, const float *dout, const float *out);
void lt_cu_dropout_forward(cu_be *be, const lt_elem_desc *d, float *out, float *mask, const float *inp, lt_rng *rng);
void lt_cu_dropout_backward(cu_be *be, const lt_elem_desc *d, float *dinp, const float *dout, const float *mask);
void lt_cu_batchnorm2d_forward(cu_be *be, const lt_batchnorm2d_desc *d, float *out, float *save_mean,
                               float *save_invstd, const float *inp, const float *gamma, const float *beta,
                               float *running_mean, float *running_var);
void lt_cu_batchnorm2d_backward(cu_be *be, const lt_batchnorm2d_desc *d, float *dinp, float *dgamma, float *dbeta,
                                const float *dout, const float *inp, const float *gamma, const float *save_mean,
                                const float *save_invstd);
void lt_cu_cross_entropy_forward(cu_be *be, const lt_rows_desc *d, float *loss, float *probs, const float *logits,
                                 const int32_t *labels);
void lt_cu_cross_entropy_backward(cu_be *be, const lt_rows_desc *d, float *dlogits, const float *dloss,
                                  const float *probs, const int32_t *labels);
void lt_cu_nll_forward(cu_be *be, const lt_rows_desc *d, float *loss, const float *logp, const int32_t *labels);
void lt_cu_nll_backward(cu_be *be, const lt_rows_desc *d, float *dlogp, const float *dloss, const int32_t *labels);
void lt_cu_mse_forward(cu_be *be, const lt_elem_desc *d, float *loss, const float *pred, const float *target);
void lt_cu_mse_backward(cu_be *be, const lt_elem_desc *d, float *dpred, float *dtarget, const float *dloss,
                        const float *pred, const float *target);
void lt_cu_add_forward(cu_be *be, const lt_elem_desc *d, float *out, const float *a, const float *b);
void lt_cu_add_backward(cu_be *be, const lt_elem_desc *d, float *da, float *db, const float *dout);
void lt_cu_mul_forward(cu_be *be, const lt_elem_desc *d, float *out, const float *a, const float *b);
void lt_cu_mul_backward(cu_be *be, const lt_elem_desc *d, float *da, float *db, const float *dout, const float *a,
                        const float *b);
void lt_cu_scale_forward(cu_be *be, const lt_elem_desc *d, float *out, const float *a);
void lt_cu_scale_backward(cu_be *be, const lt_elem_desc *d, float *da, const float *dout);
void lt_cu_sum_forward(cu_be *be, const lt_elem_desc *d, float *out, const float *a);
void lt_cu_sum_backward(cu_be *be, const lt_elem_desc *d, float *da, const float *dout);
void lt_cu_embedding_forward(cu_be *be, const lt_embedding_desc *d, float *out, const int32_t *ids,
                             const float *weight);
void lt_cu_embedding_backward(cu_be *be, const lt_embedding_desc *d, float *dweight, const float *dout,
                              const int32_t *ids);

size_t lt_cu_lstm_save_floats(cu_be *be, const lt_rnn_desc *d);
size_t lt_cu_lstm_scratch_floats(cu_be *be, const lt_rnn_desc *d);
void lt_cu_lstm_forward(cu_be *be, const lt_rnn_desc *d, float *out, float *h_last, float *c_last, float *save,
                        const float *x, const float *h0, const float *c0, const float *w_ih, const float *w_hh,
                        const float *b_ih, const float *b_hh);
void lt_cu_lstm_backward(cu_be *be, const lt_rnn_desc *d, float *dx, float *dh0, float *dc0, float *dw_ih, float *dw_hh,
                         float *db_ih, float *db_hh, const float *dout, const float *dh_last, const float *dc_last,
                         const float *save, const float *out, const float *x, const float *h0, const float *c0,
                         const float *w_ih, const float *w_hh, float *scratch);
size_t lt_cu_gru_save_floats(cu_be *be, const lt_rnn_desc *d);
size_t lt_cu_gru_scratch_floats(cu_be *be, const lt_rnn_desc *d);
void lt_cu_gru_forward(cu_be *be, const lt_rnn_desc *d, float *out, float *h_last, float *save, const float *x,
                       const float *h0, const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh);
void lt_cu_gru_backward(cu_be *be, const lt_rnn_desc *d, float *dx, float *dh0, float *dw_ih, float *dw_hh,
                        float *db_ih, float *db_hh, const float *dout, const float *dh_last, const float *save,
                        const float *out, const float *x, const float *h0, const float *w_ih, const float *w_hh,
                        float *scratch);

#endif
