/* backend_ops_ref.c: the reference backend of the parity suite. Every entry of
 * struct lt_backend as the plainest loops that follow the definitions (PyTorch's
 * formulas, the contract of ops/backend.h), computed in double and rounded to
 * float once at the end, written from the definitions and not from
 * core/ops/cpu: no BLAS, no im2col, no Winograd, no vector tricks. It is test
 * code, not a backend to run: it allocates freely and is slow.
 *
 * Two behaviours are part of the contract rather than of the maths, and are
 * followed here: dropout's mask is drawn from the rng exactly as
 * lt_dropout_forward documents (21 bits an element, three elements a draw,
 * chunks of 384), and max-pool keeps the first maximum of a window in row-major
 * order. The saved buffers (pool argmax, batch-norm statistics, RNN
 * activations) are this backend's own. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend_ops.h"

typedef const lt_backend be_t;

static double *dzeros(size_t n) { return calloc(n ? n : 1, sizeof(double)); }

/* ---- linear: out = act(inp w^T + b) ---- */
static void linear_fw(be_t *be, const lt_linear_desc *d, float *out, const float *inp, const float *w, const float *b) {
    for (int r = 0; r < d->B; r++)
        for (int o = 0; o < d->OUT; o++) {
            double z = b ? b[o] : 0.0;
            for (int i = 0; i < d->IN; i++) z += (double)inp[r * d->IN + i] * w[o * d->IN + i];
            if (d->act == LT_ACT_RELU && z < 0) z = 0;
            out[r * d->OUT + o] = (float)z;
        }
}

static void linear_bw(be_t *be, const lt_linear_desc *d, float *dinp, float *dw, float *db, float *dout,
                      const float *out, const float *inp, const float *w) {
    for (int r = 0; r < d->B; r++)
        for (int o = 0; o < d->OUT; o++) {
            double dz = dout[r * d->OUT + o];
            if (d->act == LT_ACT_RELU && !(out[r * d->OUT + o] > 0)) dz = 0;
            dout[r * d->OUT + o] = (float)dz; /* allowed: the mask in place */
        }
    for (int o = 0; o < d->OUT; o++) {
        double s = 0;
        for (int r = 0; r < d->B; r++) s += dout[r * d->OUT + o];
        if (db) db[o] += (float)s;
        for (int i = 0; i < d->IN && dw; i++) {
            double t = 0;
            for (int r = 0; r < d->B; r++) t += (double)dout[r * d->OUT + o] * inp[r * d->IN + i];
            dw[o * d->IN + i] += (float)t;
        }
    }
    for (int r = 0; r < d->B && dinp; r++)
        for (int i = 0; i < d->IN; i++) {
            double t = 0;
            for (int o = 0; o < d->OUT; o++) t += (double)dout[r * d->OUT + o] * w[o * d->IN + i];
            dinp[r * d->IN + i] += (float)t;
        }
}

/* ---- conv2d, direct: out[b, o, y, x] = b[o] + sum_{c, i, j} inp[b, c, y s - p + i, x s - p + j] w[o, c, i, j] ---- */
static size_t conv2d_scratch(be_t *be, const lt_conv2d_desc *d) { return 0; }

/* the input element under tap (i, j) of output (y, x), or -1 in the padding */
static long tap(const lt_conv2d_desc *d, int b, int c, int y, int x, int i, int j) {
    int iy = y * d->stride - d->pad + i, ix = x * d->stride - d->pad + j;
    if (iy < 0 || iy >= d->H || ix < 0 || ix >= d->W) return -1;
    return (((long)b * d->C + c) * d->H + iy) * d->W + ix;
}

static void conv2d_fw(be_t *be, const lt_conv2d_desc *d, float *out, const float *inp, const float *w, const float *b,
                      float *scratch) {
    int OH, OW;
    lt_conv2d_out(d, &OH, &OW);
    for (int n = 0; n < d->B; n++)
        for (int o = 0; o < d->OC; o++)
            for (int y = 0; y < OH; y++)
                for (int x = 0; x < OW; x++) {
                    double z = b ? b[o] : 0.0;
                    for (int c = 0; c < d->C; c++)
                        for (int i = 0; i < d->KH; i++)
                            for (int j = 0; j < d->KW; j++) {
                                long at = tap(d, n, c, y, x, i, j);
                                if (at >= 0) z += (double)inp[at] * w[((o * d->C + c) * d->KH + i) * d->KW + j];
                            }
                    if (d->act == LT_ACT_RELU && z < 0) z = 0;
                    out[((n * d->OC + o) * OH + y) * OW + x] = (float)z;
                }
}

static void conv2d_bw(be_t *be, const lt_conv2d_desc *d, float *dinp, float *dw, float *db, float *dout,
                      const float *out, const float *inp, const float *w, float *scratch) {
    int OH, OW;
    lt_conv2d_out(d, &OH, &OW);
    size_t nin = (size_t)d->B * d->C * d->H * d->W, nw = (size_t)d->OC * d->C * d->KH * d->KW;
    double *gx = dzeros(nin), *gw = dzeros(nw), *gb = dzeros((size_t)d->OC);
    for (int n = 0; n < d->B; n++)
        for (int o = 0; o < d->OC; o++)
            for (int y = 0; y < OH; y++)
                for (int x = 0; x < OW; x++) {
                    size_t oi = ((size_t)(n * d->OC + o) * OH + y) * OW + x;
                    double g = dout[oi];
                    if (d->act == LT_ACT_RELU && !(out[oi] > 0)) g = 0;
                    gb[o] += g;
                    for (int c = 0; c < d->C; c++)
                        for (int i = 0; i < d->KH; i++)
                            for (int j = 0; j < d->KW; j++) {
                                long at = tap(d, n, c, y, x, i, j);
                                size_t wi = ((size_t)(o * d->C + c) * d->KH + i) * d->KW + j;
                                if (at < 0) continue;
                                gw[wi] += g * inp[at];
                                gx[at] += g * w[wi];
                            }
                }
    for (size_t k = 0; k < nin && dinp; k++) dinp[k] += (float)gx[k];
    for (size_t k = 0; k < nw && dw; k++) dw[k] += (float)gw[k];
    for (int o = 0; o < d->OC && db; o++) db[o] += (float)gb[o];
    free(gx), free(gw), free(gb);
}

/* ---- pooling: windows clipped to the image, padding never read ---- */
static void clip(int o, const lt_pool2d_desc *d, int n, int *lo, int *hi) {
    *lo = o * d->stride - d->pad, *hi = *lo + d->K;
    *lo = *lo < 0 ? 0 : *lo, *hi = *hi > n ? n : *hi;
}

static void maxpool_fw(be_t *be, const lt_pool2d_desc *d, float *out, int32_t *idx, const float *inp) {
    int OH, OW;
    lt_pool2d_out(d, &OH, &OW);
    for (long pl = 0; pl < (long)d->B * d->C; pl++)
        for (int y = 0; y < OH; y++)
            for (int x = 0; x < OW; x++) {
                int y0, y1, x0, x1, best = -1;
                clip(y, d, d->H, &y0, &y1), clip(x, d, d->W, &x0, &x1);
                for (int i = y0; i < y1; i++)
                    for (int j = x0; j < x1; j++) {
                        float v = inp[pl * d->H * d->W + i * d->W + j];
                        if (best < 0 || v > inp[pl * d->H * d->W + best] || isnan(v)) best = i * d->W + j;
                    }
                out[(pl * OH + y) * OW + x] = inp[pl * d->H * d->W + best];
                idx[(pl * OH + y) * OW + x] = best;
            }
}

static void maxpool_bw(be_t *be, const lt_pool2d_desc *d, float *dinp, const float *dout, const int32_t *idx) {
    int OH, OW;
    lt_pool2d_out(d, &OH, &OW);
    for (long pl = 0; pl < (long)d->B * d->C; pl++)
        for (long k = 0; k < (long)OH * OW; k++)
            dinp[pl * d->H * d->W + idx[pl * OH * OW + k]] += dout[pl * OH * OW + k];
}

static void maxpool_bw_fill(be_t *be, const lt_pool2d_desc *d, float *dinp, const float *dout, const int32_t *idx) {
    memset(dinp, 0, (size_t)d->B * d->C * d->H * d->W * sizeof(float));
    maxpool_bw(be, d, dinp, dout, idx);
}

/* The pool's backward onto a zeroed gradient, then the convolution's: what
 * the fused entry must equal. For the ReLU mask the convolution's output is
 * needed only at the winners (elsewhere the gradient is 0 either way), where
 * it is the pool's output. */
static void conv2d_bw_pooled(be_t *be, const lt_conv2d_desc *d, float *dinp, float *dw, float *db,
                             const lt_pool2d_desc *pd, const float *po, const float *gp, const int32_t *idx, int fill,
                             const float *inp, const float *w, float *scratch) {
    (void)fill;
    int OH, OW, PH, PW;
    lt_conv2d_out(d, &OH, &OW);
    lt_pool2d_out(pd, &PH, &PW);
    size_t n = (size_t)d->B * d->OC * OH * OW;
    float *dy = calloc(n, sizeof *dy), *y = calloc(n, sizeof *y);
    if (!dy || !y) abort();
    maxpool_bw(be, pd, dy, gp, idx);
    for (long pl = 0; pl < (long)pd->B * pd->C; pl++)
        for (long k = 0; k < (long)PH * PW; k++) y[pl * OH * OW + idx[pl * PH * PW + k]] = po[pl * PH * PW + k];
    conv2d_bw(be, d, dinp, dw, db, dy, y, inp, w, scratch);
    free(dy), free(y);
}

static void avgpool_fw(be_t *be, const lt_pool2d_desc *d, float *out, const float *inp) {
    int OH, OW;
    lt_pool2d_out(d, &OH, &OW);
    for (long pl = 0; pl < (long)d->B * d->C; pl++)
        for (int y = 0; y < OH; y++)
            for (int x = 0; x < OW; x++) {
                int y0, y1, x0, x1;
                double s = 0;
                clip(y, d, d->H, &y0, &y1), clip(x, d, d->W, &x0, &x1);
                for (int i = y0; i < y1; i++)
                    for (int j = x0; j < x1; j++) s += inp[pl * d->H * d->W + i * d->W + j];
                out[(pl * OH + y) * OW + x] = (float)(s / ((double)d->K * d->K));
            }
}

static void avgpool_bw(be_t *be, const lt_pool2d_desc *d, float *dinp, const float *dout) {
    int OH, OW;
    lt_pool2d_out(d, &OH, &OW);
    for (long pl = 0; pl < (long)d->B * d->C; pl++)
        for (int y = 0; y < OH; y++)
            for (int x = 0; x < OW; x++) {
                int y0, y1, x0, x1;
                double g = dout[(pl * OH + y) * OW + x] / ((double)d->K * d->K);
                clip(y, d, d->H, &y0, &y1), clip(x, d, d->W, &x0, &x1);
                for (int i = y0; i < y1; i++)
                    for (int j = x0; j < x1; j++) dinp[pl * d->H * d->W + i * d->W + j] += (float)g;
            }
}

/* ---- element-wise activations: f(x) and f'(x) in double ---- */
static double act_f(lt_op op, double x, double a) {
    switch (op) {
    case LT_OP_RELU: return x > 0 ? x : 0;
    case LT_OP_TANH: return tanh(x);
    case LT_OP_SIGMOID: return 1 / (1 + exp(-x));
    case LT_OP_GELU: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    default: return x > 0 ? x : a * expm1(x); /* elu */
    }
}
static double act_df(lt_op op, double x, double a) {
    switch (op) {
    case LT_OP_RELU: return x > 0 ? 1 : 0;
    case LT_OP_TANH: return 1 - tanh(x) * tanh(x);
    case LT_OP_SIGMOID: return exp(-x) / ((1 + exp(-x)) * (1 + exp(-x)));
    case LT_OP_GELU: return 0.5 * (1 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / sqrt(2 * M_PI);
    default: return x > 0 ? 1 : a * exp(x);
    }
}
#define REF_ACT(name, OP)                                                                                              \
    static void name##_fw(be_t *be, const lt_elem_desc *d, float *out, const float *inp) {                             \
        for (size_t i = 0; i < d->n; i++) out[i] = (float)act_f(OP, inp[i], d->alpha);                                 \
    }                                                                                                                  \
    static void name##_bw(be_t *be, const lt_elem_desc *d, float *dinp, const float *dout, const float *inp,           \
                          const float *out) {                                                                          \
        for (size_t i = 0; i < d->n; i++) dinp[i] += (float)(dout[i] * act_df(OP, inp[i], d->alpha));                  \
    }
REF_ACT(relu, LT_OP_RELU)
REF_ACT(tanh, LT_OP_TANH)
REF_ACT(sigmoid, LT_OP_SIGMOID)
REF_ACT(gelu, LT_OP_GELU)
REF_ACT(elu, LT_OP_ELU)
#undef REF_ACT

/* ---- softmax rows: log-sum-exp in double ---- */
static double lse(const float *x, int C) {
    double m = x[0], s = 0;
    for (int j = 1; j < C; j++) m = x[j] > m ? x[j] : m;
    for (int j = 0; j < C; j++) s += exp(x[j] - m);
    return m + log(s);
}
static void softmax_fw(be_t *be, const lt_rows_desc *d, float *out, const float *inp) {
    for (int r = 0; r < d->R; r++) {
        double l = lse(inp + r * d->C, d->C);
        for (int j = 0; j < d->C; j++) out[r * d->C + j] = (float)exp(inp[r * d->C + j] - l);
    }
}
static void softmax_bw(be_t *be, const lt_rows_desc *d, float *dinp, const float *dout, const float *out) {
    for (int r = 0; r < d->R; r++) {
        const float *y = out + r * d->C, *g = dout + r * d->C;
        double dot = 0;
        for (int j = 0; j < d->C; j++) dot += (double)g[j] * y[j];
        for (int j = 0; j < d->C; j++) dinp[r * d->C + j] += (float)(y[j] * (g[j] - dot));
    }
}
static void log_softmax_fw(be_t *be, const lt_rows_desc *d, float *out, const float *inp) {
    for (int r = 0; r < d->R; r++) {
        double l = lse(inp + r * d->C, d->C);
        for (int j = 0; j < d->C; j++) out[r * d->C + j] = (float)(inp[r * d->C + j] - l);
    }
}
static void log_softmax_bw(be_t *be, const lt_rows_desc *d, float *dinp, const float *dout, const float *out) {
    for (int r = 0; r < d->R; r++) {
        const float *y = out + r * d->C, *g = dout + r * d->C;
        double s = 0;
        for (int j = 0; j < d->C; j++) s += g[j];
        for (int j = 0; j < d->C; j++) dinp[r * d->C + j] += (float)(g[j] - exp(y[j]) * s);
    }
}

/* ---- dropout: element k keeps its 21 bits of draw k/3 of its 384-chunk ---- */
static void dropout_fw(be_t *be, const lt_elem_desc *d, float *out, float *mask, const float *inp, lt_rng *rng) {
    double p = d->alpha > 0 ? d->alpha : 0;
    uint32_t thr = p >= 1 ? 1u << 21 : (uint32_t)(p * (1 << 21) + 0.5);
    double keep = p >= 1 ? 0 : 1 / (1 - (double)d->alpha);
    uint64_t u = 0;
    for (size_t i = 0; i < d->n; i++) {
        size_t k = i % 384;
        if (k % 3 == 0) u = lt_rng_u64(rng);
        uint32_t bits = (uint32_t)(u >> (21 * (k % 3))) & ((1u << 21) - 1);
        mask[i] = bits >= thr ? (float)keep : 0.0f;
        out[i] = (float)((double)inp[i] * mask[i]);
    }
}
static void dropout_bw(be_t *be, const lt_elem_desc *d, float *dinp, const float *dout, const float *mask) {
    for (size_t i = 0; i < d->n && dinp; i++) dinp[i] += (float)((double)dout[i] * mask[i]);
}

/* ---- batch-norm per channel over its N = B*HW values ---- */
static double chan(const lt_batchnorm2d_desc *d, const float *x, int c, long k) {
    return x[(k / d->HW * d->C + c) * d->HW + k % d->HW];
}
static void batchnorm_fw(be_t *be, const lt_batchnorm2d_desc *d, float *out, float *save_mean, float *save_invstd,
                         const float *inp, const float *gamma, const float *beta, float *running_mean,
                         float *running_var) {
    long N = (long)d->B * d->HW;
    for (int c = 0; c < d->C; c++) {
        double mean, invstd;
        if (d->training) {
            double s = 0, ss = 0;
            for (long k = 0; k < N; k++) s += chan(d, inp, c, k);
            mean = s / N;
            for (long k = 0; k < N; k++) ss += (chan(d, inp, c, k) - mean) * (chan(d, inp, c, k) - mean);
            invstd = 1 / sqrt(ss / N + d->eps);
            double unbiased = N > 1 ? ss / (N - 1) : ss / N;
            running_mean[c] = (float)(d->momentum * mean + (1 - (double)d->momentum) * running_mean[c]);
            running_var[c] = (float)(d->momentum * unbiased + (1 - (double)d->momentum) * running_var[c]);
        } else {
            mean = running_mean[c];
            invstd = 1 / sqrt((double)running_var[c] + d->eps);
        }
        if (save_mean) save_mean[c] = (float)mean, save_invstd[c] = (float)invstd;
        for (long k = 0; k < N; k++)
            out[(k / d->HW * d->C + c) * d->HW + k % d->HW] =
                (float)((chan(d, inp, c, k) - mean) * invstd * gamma[c] + beta[c]);
    }
}
static void batchnorm_bw(be_t *be, const lt_batchnorm2d_desc *d, float *dinp, float *dgamma, float *dbeta,
                         const float *dout, const float *inp, const float *gamma, const float *save_mean,
                         const float *save_invstd) {
    long N = (long)d->B * d->HW;
    for (int c = 0; c < d->C; c++) {
        double mean = save_mean[c], invstd = save_invstd[c], sg = 0, sgx = 0;
        for (long k = 0; k < N; k++) {
            sg += chan(d, dout, c, k);
            sgx += chan(d, dout, c, k) * (chan(d, inp, c, k) - mean) * invstd;
        }
        if (dbeta) dbeta[c] += (float)sg;
        if (dgamma) dgamma[c] += (float)sgx;
        for (long k = 0; k < N && dinp; k++) {
            double xhat = (chan(d, inp, c, k) - mean) * invstd;
            dinp[(k / d->HW * d->C + c) * d->HW + k % d->HW] +=
                (float)(gamma[c] * invstd * (chan(d, dout, c, k) - sg / N - xhat * sgx / N));
        }
    }
}

/* ---- losses, mean over the batch ---- */
static void ce_fw(be_t *be, const lt_rows_desc *d, float *loss, float *probs, const float *logits,
                  const int32_t *labels) {
    double total = 0;
    for (int r = 0; r < d->R; r++) {
        double l = lse(logits + r * d->C, d->C);
        for (int j = 0; j < d->C; j++) probs[r * d->C + j] = (float)exp(logits[r * d->C + j] - l);
        total += l - logits[r * d->C + labels[r]];
    }
    loss[0] = (float)(total / d->R);
}
static void ce_bw(be_t *be, const lt_rows_desc *d, float *dlogits, const float *dloss, const float *probs,
                  const int32_t *labels) {
    for (int r = 0; r < d->R; r++)
        for (int j = 0; j < d->C; j++)
            dlogits[r * d->C + j] += (float)((double)dloss[0] * (probs[r * d->C + j] - (j == labels[r])) / d->R);
}
static void nll_fw(be_t *be, const lt_rows_desc *d, float *loss, const float *logp, const int32_t *labels) {
    double total = 0;
    for (int r = 0; r < d->R; r++) total -= logp[r * d->C + labels[r]];
    loss[0] = (float)(total / d->R);
}
static void nll_bw(be_t *be, const lt_rows_desc *d, float *dlogp, const float *dloss, const int32_t *labels) {
    for (int r = 0; r < d->R; r++) dlogp[r * d->C + labels[r]] -= (float)((double)dloss[0] / d->R);
}
static void mse_fw(be_t *be, const lt_elem_desc *d, float *loss, const float *pred, const float *target) {
    double s = 0;
    for (size_t i = 0; i < d->n; i++) s += ((double)pred[i] - target[i]) * ((double)pred[i] - target[i]);
    loss[0] = (float)(s / (double)d->n);
}
static void mse_bw(be_t *be, const lt_elem_desc *d, float *dpred, float *dtarget, const float *dloss, const float *pred,
                   const float *target) {
    for (size_t i = 0; i < d->n; i++) {
        double g = 2.0 * dloss[0] * ((double)pred[i] - target[i]) / (double)d->n;
        if (dpred) dpred[i] += (float)g;
        if (dtarget) dtarget[i] -= (float)g;
    }
}

/* ---- arithmetic ---- */
static void add_fw(be_t *be, const lt_elem_desc *d, float *out, const float *a, const float *b) {
    for (size_t i = 0; i < d->n; i++) out[i] = (float)((double)a[i] + b[i]);
}
static void add_bw(be_t *be, const lt_elem_desc *d, float *da, float *db, const float *dout) {
    for (size_t i = 0; i < d->n; i++) {
        if (da) da[i] += dout[i];
        if (db) db[i] += dout[i];
    }
}
static void mul_fw(be_t *be, const lt_elem_desc *d, float *out, const float *a, const float *b) {
    for (size_t i = 0; i < d->n; i++) out[i] = (float)((double)a[i] * b[i]);
}
static void mul_bw(be_t *be, const lt_elem_desc *d, float *da, float *db, const float *dout, const float *a,
                   const float *b) {
    for (size_t i = 0; i < d->n; i++) {
        if (da) da[i] += (float)((double)dout[i] * b[i]);
        if (db) db[i] += (float)((double)dout[i] * a[i]);
    }
}
static void scale_fw(be_t *be, const lt_elem_desc *d, float *out, const float *a) {
    for (size_t i = 0; i < d->n; i++) out[i] = (float)((double)d->alpha * a[i]);
}
static void scale_bw(be_t *be, const lt_elem_desc *d, float *da, const float *dout) {
    for (size_t i = 0; i < d->n && da; i++) da[i] += (float)((double)d->alpha * dout[i]);
}
static void sum_fw(be_t *be, const lt_elem_desc *d, float *out, const float *a) {
    double s = 0;
    for (size_t i = 0; i < d->n; i++) s += a[i];
    out[0] = (float)(s * d->alpha);
}
static void sum_bw(be_t *be, const lt_elem_desc *d, float *da, const float *dout) {
    for (size_t i = 0; i < d->n && da; i++) da[i] += (float)((double)dout[0] * d->alpha);
}

static int ref_supports(be_t *be, lt_op op, const void *desc) { return (unsigned)op < LT_OP_COUNT; }

const lt_backend *bo_backend_ref(void) {
    static lt_backend t;
    if (t.name) return &t;
    t = (lt_backend){
        .name = "reference",
        .supports_op = ref_supports,
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
    };
    bo_ref_rnn_entries(&t);
    return &t;
}
