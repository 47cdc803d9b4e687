/* The CPU backend table. Each entry unpacks the op's descriptor into the plain
 * signature of its kernel in this folder: the kernels keep the llm.c form
 * (pointers and sizes, no backend, no structs), so the unit tests, the parity
 * tests and the benchmarks call them directly, and an entry costs one extra
 * call per op. The arithmetic (add, mul, scale, sum) is a few lines per entry
 * and lives here whole.
 *
 * The CPU runs every op: supports_op says yes to all of lt_op. Its memory,
 * copy and training-state entries (host memory, memcpy, whole-block loops)
 * are here too, before the table. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/backend.h"
#include "ops/cpu/bf16_gemm.h"
#include "ops/cpu/cpu_state.h"
#include "ops/rnn_kernels.h"

typedef const lt_backend be_t;

static int cpu_supports(be_t *be, lt_op op, const void *desc) { return (unsigned)op < LT_OP_COUNT; }

/* ---- linear, conv2d ---- */
static void linear_fw(be_t *be, const lt_linear_desc *d, float *out, const float *inp, const float *w, const float *b) {
    lt_linear_forward(out, inp, w, b, d->B, d->IN, d->OUT, d->act);
}
static void linear_bw(be_t *be, const lt_linear_desc *d, float *dinp, float *dw, float *db, float *dout,
                      const float *out, const float *inp, const float *w) {
    lt_linear_backward(dinp, dw, db, dout, out, inp, w, d->B, d->IN, d->OUT, d->act);
}
static size_t conv2d_scratch(be_t *be, const lt_conv2d_desc *d) {
    return lt_conv2d_scratch_floats(d->B, d->C, d->H, d->W, d->OC, d->KH, d->KW, d->stride, d->pad);
}
static void conv2d_fw(be_t *be, const lt_conv2d_desc *d, float *out, const float *inp, const float *w, const float *b,
                      float *scratch) {
    lt_conv2d_forward(out, inp, w, b, d->B, d->C, d->H, d->W, d->OC, d->KH, d->KW, d->stride, d->pad, d->act, scratch);
}
static void conv2d_bw(be_t *be, const lt_conv2d_desc *d, float *dinp, float *dw, float *db, float *dout,
                      const float *out, const float *inp, const float *w, float *scratch) {
    lt_conv2d_backward(dinp, dw, db, dout, out, inp, w, d->B, d->C, d->H, d->W, d->OC, d->KH, d->KW, d->stride, d->pad,
                       d->act, scratch);
}

static void conv2d_bw_pooled(be_t *be, const lt_conv2d_desc *d, float *dinp, float *dw, float *db,
                             const lt_pool2d_desc *pd, const float *po, const float *gp, const int32_t *idx, int fill,
                             const float *inp, const float *w, float *scratch) {
    int PH = (pd->H + 2 * pd->pad - pd->K) / pd->stride + 1, PW = (pd->W + 2 * pd->pad - pd->K) / pd->stride + 1;
    lt_pooled_grad pg = {.gp = gp, .idx = idx, .po = po, .PH = PH, .PW = PW, .fill = fill};
    lt_conv2d_backward_pooled(dinp, dw, db, &pg, inp, w, d->B, d->C, d->H, d->W, d->OC, d->KH, d->KW, d->stride, d->pad,
                              d->act, scratch);
}

/* ---- pooling ---- */
static void maxpool_fw(be_t *be, const lt_pool2d_desc *d, float *out, int32_t *idx, const float *inp) {
    lt_maxpool2d_forward(out, idx, inp, d->B, d->C, d->H, d->W, d->K, d->stride, d->pad);
}
static void maxpool_bw(be_t *be, const lt_pool2d_desc *d, float *dinp, const float *dout, const int32_t *idx) {
    int OH, OW;
    lt_pool2d_out(d, &OH, &OW);
    lt_maxpool2d_backward(dinp, dout, idx, d->B, d->C, d->H, d->W, OH, OW);
}
static void maxpool_bw_fill(be_t *be, const lt_pool2d_desc *d, float *dinp, const float *dout, const int32_t *idx) {
    int OH, OW;
    lt_pool2d_out(d, &OH, &OW);
    lt_maxpool2d_backward_fill(dinp, dout, idx, d->B, d->C, d->H, d->W, OH, OW);
}
static void avgpool_fw(be_t *be, const lt_pool2d_desc *d, float *out, const float *inp) {
    lt_avgpool2d_forward(out, inp, d->B, d->C, d->H, d->W, d->K, d->stride, d->pad);
}
static void avgpool_bw(be_t *be, const lt_pool2d_desc *d, float *dinp, const float *dout) {
    lt_avgpool2d_backward(dinp, dout, d->B, d->C, d->H, d->W, d->K, d->stride, d->pad);
}

/* ---- activations: one forward/backward adapter pair per kernel pair ---- */
#define ACT_ENTRIES(name)                                                                                              \
    static void name##_fw(be_t *be, const lt_elem_desc *d, float *out, const float *inp) {                             \
        lt_##name##_forward(out, inp, d->n);                                                                           \
    }                                                                                                                  \
    static void name##_bw(be_t *be, const lt_elem_desc *d, float *dinp, const float *dout, const float *inp,           \
                          const float *out) {                                                                          \
        lt_##name##_backward(dinp, dout, inp, out, d->n);                                                              \
    }
ACT_ENTRIES(relu)
ACT_ENTRIES(tanh)
ACT_ENTRIES(sigmoid)
ACT_ENTRIES(gelu)
#undef ACT_ENTRIES
static void elu_fw(be_t *be, const lt_elem_desc *d, float *out, const float *inp) {
    lt_elu_forward(out, inp, d->n, d->alpha);
}
static void elu_bw(be_t *be, const lt_elem_desc *d, float *dinp, const float *dout, const float *inp,
                   const float *out) {
    lt_elu_backward(dinp, dout, inp, out, d->n, d->alpha);
}

/* ---- softmax, dropout, batch-norm ---- */
static void softmax_fw(be_t *be, const lt_rows_desc *d, float *out, const float *inp) {
    lt_softmax_forward(out, inp, d->R, d->C);
}
static void softmax_bw(be_t *be, const lt_rows_desc *d, float *dinp, const float *dout, const float *out) {
    lt_softmax_backward(dinp, dout, out, d->R, d->C);
}
static void log_softmax_fw(be_t *be, const lt_rows_desc *d, float *out, const float *inp) {
    lt_log_softmax_forward(out, inp, d->R, d->C);
}
static void log_softmax_bw(be_t *be, const lt_rows_desc *d, float *dinp, const float *dout, const float *out) {
    lt_log_softmax_backward(dinp, dout, out, d->R, d->C);
}
static void dropout_fw(be_t *be, const lt_elem_desc *d, float *out, float *mask, const float *inp, lt_rng *rng) {
    lt_dropout_forward(out, mask, inp, d->n, d->alpha, rng);
}
static void dropout_bw(be_t *be, const lt_elem_desc *d, float *dinp, const float *dout, const float *mask) {
    lt_dropout_backward(dinp, dout, mask, d->n);
}
static void batchnorm_fw(be_t *be, const lt_batchnorm2d_desc *d, float *out, float *save_mean, float *save_invstd,
                         const float *inp, const float *gamma, const float *beta, float *running_mean,
                         float *running_var) {
    lt_batchnorm2d_forward(out, save_mean, save_invstd, inp, gamma, beta, running_mean, running_var, d->B, d->C, d->HW,
                           d->momentum, d->eps, d->training);
}
static void batchnorm_bw(be_t *be, const lt_batchnorm2d_desc *d, float *dinp, float *dgamma, float *dbeta,
                         const float *dout, const float *inp, const float *gamma, const float *save_mean,
                         const float *save_invstd) {
    lt_batchnorm2d_backward(dinp, dgamma, dbeta, dout, inp, gamma, save_mean, save_invstd, d->B, d->C, d->HW);
}

/* ---- losses ---- */
static void ce_fw(be_t *be, const lt_rows_desc *d, float *loss, float *probs, const float *logits,
                  const int32_t *labels) {
    loss[0] = lt_cross_entropy_forward(probs, logits, labels, d->R, d->C);
}
static void ce_bw(be_t *be, const lt_rows_desc *d, float *dlogits, const float *dloss, const float *probs,
                  const int32_t *labels) {
    lt_cross_entropy_backward(dlogits, dloss[0], probs, labels, d->R, d->C);
}
static void nll_fw(be_t *be, const lt_rows_desc *d, float *loss, const float *logp, const int32_t *labels) {
    loss[0] = lt_nll_forward(logp, labels, d->R, d->C);
}
static void nll_bw(be_t *be, const lt_rows_desc *d, float *dlogp, const float *dloss, const int32_t *labels) {
    lt_nll_backward(dlogp, dloss[0], labels, d->R, d->C);
}
static void mse_fw(be_t *be, const lt_elem_desc *d, float *loss, const float *pred, const float *target) {
    loss[0] = lt_mse_forward(pred, target, d->n);
}
static void mse_bw(be_t *be, const lt_elem_desc *d, float *dpred, float *dtarget, const float *dloss, const float *pred,
                   const float *target) {
    lt_mse_backward(dpred, dtarget, dloss[0], pred, target, d->n);
}

/* ---- arithmetic: plain loops (small losses composed in a training_step) ---- */
static void add_fw(be_t *be, const lt_elem_desc *d, float *out, const float *a, const float *b) {
    for (size_t i = 0; i < d->n; i++) out[i] = a[i] + b[i];
}
static void add_bw(be_t *be, const lt_elem_desc *d, float *da, float *db, const float *dout) {
    if (da)
        for (size_t i = 0; i < d->n; i++) da[i] += dout[i];
    if (db)
        for (size_t i = 0; i < d->n; i++) db[i] += dout[i];
}
static void mul_fw(be_t *be, const lt_elem_desc *d, float *out, const float *a, const float *b) {
    for (size_t i = 0; i < d->n; i++) out[i] = a[i] * b[i];
}
static void mul_bw(be_t *be, const lt_elem_desc *d, float *da, float *db, const float *dout, const float *a,
                   const float *b) {
    for (size_t i = 0; i < d->n; i++) {
        if (da) da[i] += dout[i] * b[i];
        if (db) db[i] += dout[i] * a[i];
    }
}
static void scale_fw(be_t *be, const lt_elem_desc *d, float *out, const float *a) {
    for (size_t i = 0; i < d->n; i++) out[i] = d->alpha * a[i];
}
static void scale_bw(be_t *be, const lt_elem_desc *d, float *da, const float *dout) {
    if (da)
        for (size_t i = 0; i < d->n; i++) da[i] += d->alpha * dout[i];
}
/* the sum in double, then scaled in double and rounded once */
static void sum_fw(be_t *be, const lt_elem_desc *d, float *out, const float *a) {
    double s = 0;
    for (size_t i = 0; i < d->n; i++) s += a[i];
    out[0] = (float)(s * d->alpha);
}
static void sum_bw(be_t *be, const lt_elem_desc *d, float *da, const float *dout) {
    float g = dout[0] * d->alpha;
    if (da)
        for (size_t i = 0; i < d->n; i++) da[i] += g;
}

/* ---- embedding, LSTM, GRU ---- */
static void embedding_fw(be_t *be, const lt_embedding_desc *d, float *out, const int32_t *ids, const float *weight) {
    lt_embedding_forward(out, ids, weight, d->N, d->E);
}
static void embedding_bw(be_t *be, const lt_embedding_desc *d, float *dweight, const float *dout, const int32_t *ids) {
    lt_embedding_backward(dweight, dout, ids, d->N, d->E);
}
static size_t lstm_save(be_t *be, const lt_rnn_desc *d) { return lt_lstm_save_floats(d->B, d->T, d->H); }
static size_t lstm_scratch(be_t *be, const lt_rnn_desc *d) { return lt_lstm_scratch_floats(d->B, d->T, d->H); }
static void lstm_fw(be_t *be, const lt_rnn_desc *d, float *out, float *h_last, float *c_last, float *save,
                    const float *x, const float *h0, const float *c0, const float *w_ih, const float *w_hh,
                    const float *b_ih, const float *b_hh) {
    lt_lstm_forward(out, h_last, c_last, save, x, h0, c0, w_ih, w_hh, b_ih, b_hh, d->B, d->T, d->IN, d->H);
}
static void lstm_bw(be_t *be, const lt_rnn_desc *d, float *dx, float *dh0, float *dc0, float *dw_ih, float *dw_hh,
                    float *db_ih, float *db_hh, const float *dout, const float *dh_last, const float *dc_last,
                    const float *save, const float *out, const float *x, const float *h0, const float *c0,
                    const float *w_ih, const float *w_hh, float *scratch) {
    lt_lstm_backward(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dout, dh_last, dc_last, save, out, x, h0, c0, w_ih, w_hh,
                     d->B, d->T, d->IN, d->H, scratch);
}
static size_t gru_save(be_t *be, const lt_rnn_desc *d) { return lt_gru_save_floats(d->B, d->T, d->H); }
static size_t gru_scratch(be_t *be, const lt_rnn_desc *d) { return lt_gru_scratch_floats(d->B, d->T, d->H); }
static void gru_fw(be_t *be, const lt_rnn_desc *d, float *out, float *h_last, float *save, const float *x,
                   const float *h0, const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh) {
    lt_gru_forward(out, h_last, save, x, h0, w_ih, w_hh, b_ih, b_hh, d->B, d->T, d->IN, d->H);
}
static void gru_bw(be_t *be, const lt_rnn_desc *d, float *dx, float *dh0, float *dw_ih, float *dw_hh, float *db_ih,
                   float *db_hh, const float *dout, const float *dh_last, const float *save, const float *out,
                   const float *x, const float *h0, const float *w_ih, const float *w_hh, float *scratch) {
    lt_gru_backward(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, dout, dh_last, save, out, x, h0, w_ih, w_hh, d->B, d->T, d->IN,
                    d->H, scratch);
}

/* ---- memory, copies and the training-state entries ----
 * CPU buffers are 64-byte aligned host memory, copies are memcpy (an async
 * copy is done when it returns; there is no stream to wait for), and the
 * reductions and updates over whole blocks keep the loops they had in the
 * trainer, the loss scaler and the anomaly watch, so results are bitwise the
 * same. The optimizers' update rules are in optim_update.c. */
#define CPU_ALIGN 64

static void *lt_cpu_alloc(size_t bytes, lt_mem_use use) {
    (void)use; /* one kind of host memory serves every lifetime */
    if (bytes > SIZE_MAX - CPU_ALIGN) return NULL;
    size_t size = (bytes + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;
    void *p = aligned_alloc(CPU_ALIGN, size ? size : CPU_ALIGN);
    if (p) memset(p, 0, size);
    return p;
}

static void lt_cpu_free(void *buf, lt_mem_use use) {
    (void)use;
    free(buf);
}

static void *lt_cpu_host_ptr(void *buf) { return buf; }

static int lt_cpu_set(void *dst, const void *host_src, size_t bytes) {
    if (bytes && dst != host_src) memcpy(dst, host_src, bytes);
    return LT_OK;
}

static int lt_cpu_get(void *host_dst, const void *src, size_t bytes) { return lt_cpu_set(host_dst, src, bytes); }

static int lt_cpu_set_async(void *dst, const void *host_src, size_t bytes, lt_stream *s) {
    (void)s;
    return lt_cpu_set(dst, host_src, bytes);
}

static int lt_cpu_get_async(void *host_dst, const void *src, size_t bytes, lt_stream *s) {
    (void)s;
    return lt_cpu_set(host_dst, src, bytes);
}

static int lt_cpu_copy(void *dst, const void *src, size_t bytes) {
    if (bytes && dst != src) memmove(dst, src, bytes);
    return LT_OK;
}

static int lt_cpu_synchronize(lt_stream *s) {
    (void)s;
    return LT_OK;
}

static void lt_cpu_fill(float *x, float v, size_t n) {
    if (v == 0.0f && !signbit(v)) {
        memset(x, 0, n * sizeof(float)); /* +0.0f is all zero bits */
        return;
    }
    for (size_t i = 0; i < n; i++) x[i] = v;
}

/* In index order, in double: the trainer's gradient norm, bitwise as before
 * (a parallel or vector sum would change the rounding). */
static double lt_cpu_sum_squares(const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

static void lt_cpu_scale(float *x, size_t n, float c) {
    for (size_t i = 0; i < n; i++) x[i] *= c;
}

static void lt_cpu_clamp(float *x, size_t n, float v) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] > v ? v : x[i] < -v ? -v : x[i];
}

static int lt_cpu_any_above(const float *x, size_t n, float limit) {
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(x[i]) <= limit)) bad = 1;
    return bad;
}

/* Runs every step under --detect-anomaly over every activation and gradient
 * (~80 MB for the MNIST CNN at batch 128): on all cores, like the kernels,
 * so it does not leave the other cores idle. */
static size_t lt_cpu_count_nonfinite(const float *x, size_t n) {
    size_t bad = 0;
#pragma omp parallel for schedule(static) reduction(+ : bad) if (n >= ((size_t)1 << 16))
    for (size_t i = 0; i < n; i++) bad += !isfinite(x[i]);
    return bad;
}

/* The math mode: f32 (OpenBLAS), or bf16 where there are bf16 kernels for
 * the GEMMs (bf16_gemm.h: AMX, else AVX512-BF16, or a C model of either
 * under LATHE_CPU_BF16=emulate / emulate-avx512). Linear layers and the GEMM path of conv2d take it (conv2d leaves
 * its f32 Winograd and direct paths in bf16); every other op stays f32. */
static int lt_cpu_set_math(const lt_backend *be, lt_math m) {
    if (m == LT_MATH_F32) {
        lt_cpu_gemm_set_bf16(LT_BF16_NONE);
        return LT_OK;
    }
    if (m != LT_MATH_BF16 || lt_bf16_available() == LT_BF16_NONE) return LT_EUNSUPPORTED;
    lt_cpu_gemm_set_bf16(lt_bf16_available());
    return LT_OK;
}

static const char *lt_cpu_math_kernels(const lt_backend *be) { return lt_bf16_impl_name(lt_cpu_gemm_bf16()); }

static const lt_backend cpu_backend = {
    .name = "cpu",
    /* memory, copies, synchronisation, training-state ops */
    .device = LT_DEV_CPU,
    .alloc = lt_cpu_alloc,
    .free = lt_cpu_free,
    .host_ptr = lt_cpu_host_ptr,
    .set = lt_cpu_set,
    .get = lt_cpu_get,
    .set_async = lt_cpu_set_async,
    .get_async = lt_cpu_get_async,
    .copy = lt_cpu_copy,
    .synchronize = lt_cpu_synchronize,
    .fill = lt_cpu_fill,
    .optim_update = lt_cpu_optim_update,
    .sum_squares = lt_cpu_sum_squares,
    .scale = lt_cpu_scale,
    .clamp = lt_cpu_clamp,
    .any_above = lt_cpu_any_above,
    .count_nonfinite = lt_cpu_count_nonfinite,
    .set_math = lt_cpu_set_math,
    .math_kernels = lt_cpu_math_kernels,
    /* compute */
    .supports_op = cpu_supports,
    .linear_forward = linear_fw,
    .linear_backward = linear_bw,
    .conv2d_scratch_floats = conv2d_scratch,
    .conv2d_forward = conv2d_fw,
    .conv2d_backward = conv2d_bw,
    .conv2d_backward_pooled = conv2d_bw_pooled,
    .maxpool2d_forward = maxpool_fw,
    .maxpool2d_backward = maxpool_bw,
    .maxpool2d_backward_fill = maxpool_bw_fill,
    .avgpool2d_forward = avgpool_fw,
    .avgpool2d_backward = avgpool_bw,
    .relu_forward = relu_fw,
    .relu_backward = relu_bw,
    .tanh_forward = tanh_fw,
    .tanh_backward = tanh_bw,
    .sigmoid_forward = sigmoid_fw,
    .sigmoid_backward = sigmoid_bw,
    .gelu_forward = gelu_fw,
    .gelu_backward = gelu_bw,
    .elu_forward = elu_fw,
    .elu_backward = elu_bw,
    .softmax_forward = softmax_fw,
    .softmax_backward = softmax_bw,
    .log_softmax_forward = log_softmax_fw,
    .log_softmax_backward = log_softmax_bw,
    .dropout_forward = dropout_fw,
    .dropout_backward = dropout_bw,
    .batchnorm2d_forward = batchnorm_fw,
    .batchnorm2d_backward = batchnorm_bw,
    .cross_entropy_forward = ce_fw,
    .cross_entropy_backward = ce_bw,
    .nll_forward = nll_fw,
    .nll_backward = nll_bw,
    .mse_forward = mse_fw,
    .mse_backward = mse_bw,
    .add_forward = add_fw,
    .add_backward = add_bw,
    .mul_forward = mul_fw,
    .mul_backward = mul_bw,
    .scale_forward = scale_fw,
    .scale_backward = scale_bw,
    .sum_forward = sum_fw,
    .sum_backward = sum_bw,
    .embedding_forward = embedding_fw,
    .embedding_backward = embedding_bw,
    .lstm_save_floats = lstm_save,
    .lstm_scratch_floats = lstm_scratch,
    .lstm_forward = lstm_fw,
    .lstm_backward = lstm_bw,
    .gru_save_floats = gru_save,
    .gru_scratch_floats = gru_scratch,
    .gru_forward = gru_fw,
    .gru_backward = gru_bw,
};

const lt_backend *lt_backend_cpu(void) { return &cpu_backend; }
