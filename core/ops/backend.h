/* ops/backend.h: one table of kernels per device (ggml's idea): the autograd
 * layer calls lt_graph_be(g)->conv2d_forward(be, &desc, ...) and never asks
 * which device it is on. The CPU table (cpu/backend_cpu.c) points at
 * core/ops/cpu/; a CUDA table will implement the same entries with the same
 * semantics, and tests/unit/test_backend_ops*.c runs every op case on every
 * backend present against the CPU's.
 *
 * The compute entries take the backend itself first (a device backend keeps its
 * handles and stream beside it), then the op's descriptor (its sizes and
 * scalars, one small struct per op kind instead of a run of ints), then the
 * outputs, then the inputs. The rules of ops/kernels.h hold for every entry:
 * contiguous row-major f32, images NCHW; every backward ACCUMULATES (+=) into
 * the gradients it is given and skips a NULL one; an entry never allocates
 * (workspaces come from the caller, sized by the *_floats entries) and never
 * fails (the autograd layer checks shapes, labels and ids, and asks
 * supports_op, before it calls one). Scalars that a loss or reduction produces
 * or consumes are passed by pointer (loss[0], dloss[0]), so they can live where
 * the backend's memory is. */
#ifndef LATHE_OPS_BACKEND_H
#define LATHE_OPS_BACKEND_H

#include "lathe/device.h"
#include "ops/kernels.h"

typedef struct lt_backend lt_backend;

/* ---- op kinds: one per forward/backward pair of the table; supports_op asks
 * by these, and a refusal names the op by lt_op_name ---- */
typedef enum lt_op {
    LT_OP_LINEAR,        /* lt_linear_desc */
    LT_OP_CONV2D,        /* lt_conv2d_desc */
    LT_OP_MAXPOOL2D,     /* lt_pool2d_desc */
    LT_OP_AVGPOOL2D,     /* lt_pool2d_desc */
    LT_OP_RELU,          /* lt_elem_desc */
    LT_OP_TANH,          /* lt_elem_desc */
    LT_OP_SIGMOID,       /* lt_elem_desc */
    LT_OP_GELU,          /* lt_elem_desc */
    LT_OP_ELU,           /* lt_elem_desc, alpha */
    LT_OP_SOFTMAX,       /* lt_rows_desc */
    LT_OP_LOG_SOFTMAX,   /* lt_rows_desc */
    LT_OP_DROPOUT,       /* lt_elem_desc, alpha = the rate p */
    LT_OP_BATCHNORM2D,   /* lt_batchnorm2d_desc */
    LT_OP_CROSS_ENTROPY, /* lt_rows_desc, R = batch, C = classes */
    LT_OP_NLL,           /* lt_rows_desc, R = batch, C = classes */
    LT_OP_MSE,           /* lt_elem_desc */
    LT_OP_ADD,           /* lt_elem_desc */
    LT_OP_MUL,           /* lt_elem_desc */
    LT_OP_SCALE,         /* lt_elem_desc, alpha = the factor */
    LT_OP_SUM,           /* lt_elem_desc, alpha = 1 */
    LT_OP_MEAN,          /* lt_elem_desc, alpha = 1/n: the sum entries scaled */
    LT_OP_EMBEDDING,     /* lt_embedding_desc */
    LT_OP_LSTM,          /* lt_rnn_desc */
    LT_OP_GRU,           /* lt_rnn_desc */
    LT_OP_COUNT
} lt_op;

static inline const char *lt_op_name(lt_op op) {
    static const char *const names[LT_OP_COUNT] = {
        [LT_OP_LINEAR] = "linear",
        [LT_OP_CONV2D] = "conv2d",
        [LT_OP_MAXPOOL2D] = "maxpool2d",
        [LT_OP_AVGPOOL2D] = "avgpool2d",
        [LT_OP_RELU] = "relu",
        [LT_OP_TANH] = "tanh",
        [LT_OP_SIGMOID] = "sigmoid",
        [LT_OP_GELU] = "gelu",
        [LT_OP_ELU] = "elu",
        [LT_OP_SOFTMAX] = "softmax",
        [LT_OP_LOG_SOFTMAX] = "log_softmax",
        [LT_OP_DROPOUT] = "dropout",
        [LT_OP_BATCHNORM2D] = "batchnorm2d",
        [LT_OP_CROSS_ENTROPY] = "cross_entropy",
        [LT_OP_NLL] = "nll",
        [LT_OP_MSE] = "mse",
        [LT_OP_ADD] = "add",
        [LT_OP_MUL] = "mul",
        [LT_OP_SCALE] = "scale",
        [LT_OP_SUM] = "sum",
        [LT_OP_MEAN] = "mean",
        [LT_OP_EMBEDDING] = "embedding",
        [LT_OP_LSTM] = "lstm",
        [LT_OP_GRU] = "gru",
    };
    return (unsigned)op < LT_OP_COUNT && names[op] ? names[op] : "?";
}

/* ---- descriptors: an op's sizes and scalars ---- */

/* inp [B, IN], w [OUT, IN], b [OUT] or NULL -> out [B, OUT] = act(inp w^T + b) */
typedef struct lt_linear_desc {
    int B, IN, OUT;
    lt_act act;
} lt_linear_desc;

/* inp [B, C, H, W], w [OC, C, KH, KW], b [OC] or NULL -> out [B, OC, OH, OW],
 * OH = (H + 2 pad - KH) / stride + 1, OW likewise (lt_conv2d_out) */
typedef struct lt_conv2d_desc {
    int B, C, H, W, OC, KH, KW, stride, pad;
    lt_act act;
} lt_conv2d_desc;

/* inp [B, C, H, W] -> out [B, C, OH, OW] over K x K windows,
 * OH = (H + 2 pad - K) / stride + 1, OW likewise (lt_pool2d_out) */
typedef struct lt_pool2d_desc {
    int B, C, H, W, K, stride, pad;
} lt_pool2d_desc;

/* n elements; alpha: the op's one scalar where it has one (elu's alpha,
 * dropout's rate p, scale's factor, sum's 1 and mean's 1/n), else 0 */
typedef struct lt_elem_desc {
    size_t n;
    float alpha;
} lt_elem_desc;

/* R rows of C classes, over the last dimension (softmax, log-softmax) or a
 * batch of R samples (cross-entropy, nll: labels [R] in [0, C)) */
typedef struct lt_rows_desc {
    int R, C;
} lt_rows_desc;

/* inp [B, C, HW]; training: batch statistics and running-stat update with
 * momentum, else the running statistics */
typedef struct lt_batchnorm2d_desc {
    int B, C, HW;
    float momentum, eps;
    int training;
} lt_batchnorm2d_desc;

/* ids [N] in [0, V), weight [V, E] -> out [N, E] */
typedef struct lt_embedding_desc {
    size_t N;
    int V, E;
} lt_embedding_desc;

/* x [B, T, IN] -> out [B, T, H], states [B, H] (ops/rnn_kernels.h's layouts) */
typedef struct lt_rnn_desc {
    int B, T, IN, H;
} lt_rnn_desc;

static inline void lt_conv2d_out(const lt_conv2d_desc *d, int *OH, int *OW) {
    *OH = (d->H + 2 * d->pad - d->KH) / d->stride + 1;
    *OW = (d->W + 2 * d->pad - d->KW) / d->stride + 1;
}

static inline void lt_pool2d_out(const lt_pool2d_desc *d, int *OH, int *OW) {
    *OH = (d->H + 2 * d->pad - d->K) / d->stride + 1;
    *OW = (d->W + 2 * d->pad - d->K) / d->stride + 1;
}

struct lt_backend {
    const char *name;
    /* ---- memory, copies, synchronisation, training-state ops ----
     * What lathe/device.h's calls reach (its comments give the contracts);
     * every entry is required. Copies and sync return LT_OK or a negative
     * LT_E* code (the wrappers turn it into a message naming the caller). */
    lt_device device;
    /* zeroed, 64-byte aligned; NULL when out of memory. LT_MEM_STAGING is host
       memory (pinned on a device) that host_ptr maps to a non-NULL pointer */
    void *(*alloc)(size_t bytes, lt_mem_use use);
    void (*free)(void *buf, lt_mem_use use);
    void *(*host_ptr)(void *buf); /* NULL: the host cannot address buf (never for LT_MEM_STAGING) */
    int (*set)(void *dst, const void *host_src, size_t bytes);
    int (*get)(void *host_dst, const void *src, size_t bytes);
    int (*set_async)(void *dst, const void *host_src, size_t bytes, lt_stream *s);
    int (*get_async)(void *host_dst, const void *src, size_t bytes, lt_stream *s);
    int (*copy)(void *dst, const void *src, size_t bytes);
    int (*synchronize)(lt_stream *s);
    /* a new stream (LT_OK and *s) and its end; both NULL: the backend has
       only its default stream (the CPU), and lt_dev_stream_create gives NULL */
    int (*stream_create)(lt_stream **s);
    void (*stream_destroy)(lt_stream *s);
    void (*fill)(float *x, float v, size_t n);
    void (*optim_update)(const lt_update *u, int nt, const lt_update_tensor *ts);
    double (*sum_squares)(const float *x, size_t n);
    void (*scale)(float *x, size_t n, float c);
    void (*clamp)(float *x, size_t n, float v);
    int (*any_above)(const float *x, size_t n, float limit);
    size_t (*count_nonfinite)(const float *x, size_t n);
    /* LT_OK or LT_EUNSUPPORTED; NULL: f32 only */
    int (*set_math)(const lt_backend *be, lt_math m);
    /* the kernels the GEMMs run on in the mode set_math set last
       ("amx-bf16"); NULL entry: the mode's name says it */
    const char *(*math_kernels)(const lt_backend *be);
    /* the text of the failure a copy or sync just reported (the library's
       call and message), or NULL; NULL entry: none kept */
    const char *(*error_text)(void);

    /* ---- compute: the ops' kernels; semantics and shapes as in ops/kernels.h
     * and ops/rnn_kernels.h, whose CPU kernels carry the same names ---- */

    /* 1 when this backend runs op with desc (an lt_op's descriptor above),
     * forward and backward; NULL: every op */
    int (*supports_op)(const lt_backend *be, lt_op op, const void *desc);

    void (*linear_forward)(const lt_backend *be, const lt_linear_desc *d, float *out, const float *inp, const float *w,
                           const float *b);
    /* dout may be overwritten (the activation's mask applied in place) */
    void (*linear_backward)(const lt_backend *be, const lt_linear_desc *d, float *dinp, float *dw, float *db,
                            float *dout, const float *out, const float *inp, const float *w);

    /* one scratch buffer serves forward and backward */
    size_t (*conv2d_scratch_floats)(const lt_backend *be, const lt_conv2d_desc *d);
    void (*conv2d_forward)(const lt_backend *be, const lt_conv2d_desc *d, float *out, const float *inp, const float *w,
                           const float *b, float *scratch);
    void (*conv2d_backward)(const lt_backend *be, const lt_conv2d_desc *d, float *dinp, float *dw, float *db,
                            float *dout, const float *out, const float *inp, const float *w, float *scratch);
    /* Optional (NULL: the graph runs the pool's backward, then the one
     * above). conv2d_backward with the output gradient given by the max pool
     * (pd, its output po, gradient gp and winners idx) that is the output's
     * only reader, instead of written out by the pool's backward: bitwise
     * the results of the two in turn, where fill says which of the pool's
     * backwards that would have been (its fill one, else the plain one onto a
     * zeroed gradient). */
    void (*conv2d_backward_pooled)(const lt_backend *be, const lt_conv2d_desc *d, float *dinp, float *dw, float *db,
                                   const lt_pool2d_desc *pd, const float *po, const float *gp, const int32_t *idx,
                                   int fill, const float *inp, const float *w, float *scratch);

    /* idx [B, C, OH, OW]: the argmax's position in its H*W plane */
    void (*maxpool2d_forward)(const lt_backend *be, const lt_pool2d_desc *d, float *out, int32_t *idx,
                              const float *inp);
    void (*maxpool2d_backward)(const lt_backend *be, const lt_pool2d_desc *d, float *dinp, const float *dout,
                               const int32_t *idx);
    /* stride == K, no padding, windows tiling the input: writes every element
     * of dinp (0 or the gradient), which may hold garbage */
    void (*maxpool2d_backward_fill)(const lt_backend *be, const lt_pool2d_desc *d, float *dinp, const float *dout,
                                    const int32_t *idx);
    void (*avgpool2d_forward)(const lt_backend *be, const lt_pool2d_desc *d, float *out, const float *inp);
    void (*avgpool2d_backward)(const lt_backend *be, const lt_pool2d_desc *d, float *dinp, const float *dout);

    /* element-wise activations; backward gets the forward's input and output */
    void (*relu_forward)(const lt_backend *be, const lt_elem_desc *d, float *out, const float *inp);
    void (*relu_backward)(const lt_backend *be, const lt_elem_desc *d, float *dinp, const float *dout, const float *inp,
                          const float *out);
    void (*tanh_forward)(const lt_backend *be, const lt_elem_desc *d, float *out, const float *inp);
    void (*tanh_backward)(const lt_backend *be, const lt_elem_desc *d, float *dinp, const float *dout, const float *inp,
                          const float *out);
    void (*sigmoid_forward)(const lt_backend *be, const lt_elem_desc *d, float *out, const float *inp);
    void (*sigmoid_backward)(const lt_backend *be, const lt_elem_desc *d, float *dinp, const float *dout,
                             const float *inp, const float *out);
    void (*gelu_forward)(const lt_backend *be, const lt_elem_desc *d, float *out, const float *inp);
    void (*gelu_backward)(const lt_backend *be, const lt_elem_desc *d, float *dinp, const float *dout, const float *inp,
                          const float *out);
    void (*elu_forward)(const lt_backend *be, const lt_elem_desc *d, float *out, const float *inp);
    void (*elu_backward)(const lt_backend *be, const lt_elem_desc *d, float *dinp, const float *dout, const float *inp,
                         const float *out);

    /* over rows of C; backward uses the forward's output */
    void (*softmax_forward)(const lt_backend *be, const lt_rows_desc *d, float *out, const float *inp);
    void (*softmax_backward)(const lt_backend *be, const lt_rows_desc *d, float *dinp, const float *dout,
                             const float *out);
    void (*log_softmax_forward)(const lt_backend *be, const lt_rows_desc *d, float *out, const float *inp);
    void (*log_softmax_backward)(const lt_backend *be, const lt_rows_desc *d, float *dinp, const float *dout,
                                 const float *out);

    /* mask [n]: 0 or 1/(1-p), drawn from rng as lt_dropout_forward does */
    void (*dropout_forward)(const lt_backend *be, const lt_elem_desc *d, float *out, float *mask, const float *inp,
                            lt_rng *rng);
    void (*dropout_backward)(const lt_backend *be, const lt_elem_desc *d, float *dinp, const float *dout,
                             const float *mask);

    /* gamma, beta, running stats, save_mean, save_invstd [C] */
    void (*batchnorm2d_forward)(const lt_backend *be, const lt_batchnorm2d_desc *d, float *out, float *save_mean,
                                float *save_invstd, const float *inp, const float *gamma, const float *beta,
                                float *running_mean, float *running_var);
    void (*batchnorm2d_backward)(const lt_backend *be, const lt_batchnorm2d_desc *d, float *dinp, float *dgamma,
                                 float *dbeta, const float *dout, const float *inp, const float *gamma,
                                 const float *save_mean, const float *save_invstd);

    /* losses, mean over the batch: loss[0] = the loss, dloss[0] its gradient;
     * probs [R, C] is cross-entropy's softmax, kept for backward */
    void (*cross_entropy_forward)(const lt_backend *be, const lt_rows_desc *d, float *loss, float *probs,
                                  const float *logits, const int32_t *labels);
    void (*cross_entropy_backward)(const lt_backend *be, const lt_rows_desc *d, float *dlogits, const float *dloss,
                                   const float *probs, const int32_t *labels);
    void (*nll_forward)(const lt_backend *be, const lt_rows_desc *d, float *loss, const float *logp,
                        const int32_t *labels);
    void (*nll_backward)(const lt_backend *be, const lt_rows_desc *d, float *dlogp, const float *dloss,
                         const int32_t *labels);
    void (*mse_forward)(const lt_backend *be, const lt_elem_desc *d, float *loss, const float *pred,
                        const float *target);
    void (*mse_backward)(const lt_backend *be, const lt_elem_desc *d, float *dpred, float *dtarget, const float *dloss,
                         const float *pred, const float *target);

    /* arithmetic over n elements: out = a + b, a * b, alpha * a; sum and mean:
     * out[0] = alpha * sum(a), the sum taken in double, then rounded */
    void (*add_forward)(const lt_backend *be, const lt_elem_desc *d, float *out, const float *a, const float *b);
    void (*add_backward)(const lt_backend *be, const lt_elem_desc *d, float *da, float *db, const float *dout);
    void (*mul_forward)(const lt_backend *be, const lt_elem_desc *d, float *out, const float *a, const float *b);
    void (*mul_backward)(const lt_backend *be, const lt_elem_desc *d, float *da, float *db, const float *dout,
                         const float *a, const float *b);
    void (*scale_forward)(const lt_backend *be, const lt_elem_desc *d, float *out, const float *a);
    void (*scale_backward)(const lt_backend *be, const lt_elem_desc *d, float *da, const float *dout);
    void (*sum_forward)(const lt_backend *be, const lt_elem_desc *d, float *out, const float *a);
    void (*sum_backward)(const lt_backend *be, const lt_elem_desc *d, float *da, const float *dout);

    /* dweight[ids[k]] += dout[k]; repeated ids add up */
    void (*embedding_forward)(const lt_backend *be, const lt_embedding_desc *d, float *out, const int32_t *ids,
                              const float *weight);
    void (*embedding_backward)(const lt_backend *be, const lt_embedding_desc *d, float *dweight, const float *dout,
                               const int32_t *ids);

    /* save: written by forward, read by backward, *_save_floats long (its layout
     * is the backend's own); scratch: backward's workspace. h0, c0, biases NULL:
     * zeros / none; any upstream gradient (dout, dh_last, dc_last) may be NULL */
    size_t (*lstm_save_floats)(const lt_backend *be, const lt_rnn_desc *d);
    size_t (*lstm_scratch_floats)(const lt_backend *be, const lt_rnn_desc *d);
    void (*lstm_forward)(const lt_backend *be, const lt_rnn_desc *d, float *out, float *h_last, float *c_last,
                         float *save, const float *x, const float *h0, const float *c0, const float *w_ih,
                         const float *w_hh, const float *b_ih, const float *b_hh);
    void (*lstm_backward)(const lt_backend *be, const lt_rnn_desc *d, float *dx, float *dh0, float *dc0, float *dw_ih,
                          float *dw_hh, float *db_ih, float *db_hh, const float *dout, const float *dh_last,
                          const float *dc_last, const float *save, const float *out, const float *x, const float *h0,
                          const float *c0, const float *w_ih, const float *w_hh, float *scratch);
    size_t (*gru_save_floats)(const lt_backend *be, const lt_rnn_desc *d);
    size_t (*gru_scratch_floats)(const lt_backend *be, const lt_rnn_desc *d);
    void (*gru_forward)(const lt_backend *be, const lt_rnn_desc *d, float *out, float *h_last, float *save,
                        const float *x, const float *h0, const float *w_ih, const float *w_hh, const float *b_ih,
                        const float *b_hh);
    void (*gru_backward)(const lt_backend *be, const lt_rnn_desc *d, float *dx, float *dh0, float *dw_ih, float *dw_hh,
                         float *db_ih, float *db_hh, const float *dout, const float *dh_last, const float *save,
                         const float *out, const float *x, const float *h0, const float *w_ih, const float *w_hh,
                         float *scratch);
};

const lt_backend *lt_backend_cpu(void);

#endif
