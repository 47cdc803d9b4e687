/* ops/cpu/batchnorm.c: batch-norm over [B, C, HW] (nn.BatchNorm2d), forward in
 * training and eval mode, backward in training mode.
 *
 * Statistics per channel c over its N = B*HW values. Each HW plane is reduced in
 * float with 16 partial sums (so the loop vectorises) and the plane totals are
 * added in double, which keeps the sums accurate for large batches. The variance
 * is two-pass (sum of squared deviations from the mean), never E[x^2] - E[x]^2.
 *
 * Training: y = (x - mean) * invstd * gamma + beta, invstd = 1/sqrt(var + eps)
 * with the biased variance var = sum (x-mean)^2 / N, and
 *   running_mean = (1 - momentum) running_mean + momentum mean
 *   running_var  = (1 - momentum) running_var  + momentum var * N/(N-1)
 * exactly as PyTorch (unbiased variance for the running estimate).
 * Eval: the same affine map with running_mean and running_var. */
#include <math.h>

#include "ops/kernels.h"

#define LANES 16

static float plane_sum(const float *x, int n) {
    float acc[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) acc[k] += x[i + k];
    float s = 0.0f;
    for (; i < n; i++) s += x[i];
    for (int k = 0; k < LANES; k++) s += acc[k];
    return s;
}

/* sum (x - mean)^2 */
static float plane_sqdev(const float *x, float mean, int n) {
    float acc[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) {
            float d = x[i + k] - mean;
            acc[k] += d * d;
        }
    float s = 0.0f;
    for (; i < n; i++) s += (x[i] - mean) * (x[i] - mean);
    for (int k = 0; k < LANES; k++) s += acc[k];
    return s;
}

/* sum dy (x - mean). A separate pass from the sum of dy: one accumulator array
 * per loop is what GCC turns into vector registers; two in one loop went scalar. */
static float plane_dot_dev(const float *dy, const float *x, float mean, int n) {
    float acc[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) acc[k] += dy[i + k] * (x[i + k] - mean);
    float s = 0.0f;
    for (; i < n; i++) s += dy[i] * (x[i] - mean);
    for (int k = 0; k < LANES; k++) s += acc[k];
    return s;
}

void lt_batchnorm2d_forward(float *out, float *save_mean, float *save_invstd, const float *inp, const float *gamma,
                            const float *beta, float *running_mean, float *running_var, int B, int C, int HW,
                            float momentum, float eps, int training) {
    const size_t cstride = (size_t)HW, bstride = (size_t)C * HW;
    const double N = (double)B * HW;
    for (int c = 0; c < C; c++) {
        float mean, invstd;
        if (training) {
            double s = 0.0;
            for (int b = 0; b < B; b++) s += plane_sum(inp + b * bstride + c * cstride, HW);
            mean = (float)(s / N);
            double ss = 0.0;
            for (int b = 0; b < B; b++) ss += plane_sqdev(inp + b * bstride + c * cstride, mean, HW);
            double var = ss / N;
            invstd = (float)(1.0 / sqrt(var + (double)eps));
            if (running_mean) running_mean[c] = momentum * mean + (1.0f - momentum) * running_mean[c];
            if (running_var) {
                /* N == 1 has no unbiased estimate (PyTorch refuses it); keep the biased 0 */
                float unbiased = (float)(N > 1.0 ? ss / (N - 1.0) : var);
                running_var[c] = momentum * unbiased + (1.0f - momentum) * running_var[c];
            }
        } else {
            mean = running_mean[c];
            invstd = (float)(1.0 / sqrt((double)running_var[c] + (double)eps));
        }
        if (save_mean) save_mean[c] = mean;
        if (save_invstd) save_invstd[c] = invstd;
        /* y = x * scale + shift */
        float g = gamma ? gamma[c] : 1.0f, bt = beta ? beta[c] : 0.0f;
        float scale = invstd * g, shift = bt - mean * scale;
        for (int b = 0; b < B; b++) {
            const float *x = inp + b * bstride + c * cstride;
            float *y = out + b * bstride + c * cstride;
            for (int i = 0; i < HW; i++) y[i] = x[i] * scale + shift;
        }
    }
}

/* With xhat = (x - mean) invstd, per channel:
 *   dbeta  += sum dy,  dgamma += sum dy xhat
 *   dx     += gamma invstd (dy - sum dy / N - xhat sum(dy xhat) / N)
 * (the gradient through the batch statistics). */
void lt_batchnorm2d_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *inp,
                             const float *gamma, const float *save_mean, const float *save_invstd, int B, int C,
                             int HW) {
    const size_t cstride = (size_t)HW, bstride = (size_t)C * HW;
    const double N = (double)B * HW;
    for (int c = 0; c < C; c++) {
        float mean = save_mean[c], invstd = save_invstd[c];
        double sdy = 0.0, sdyx = 0.0;
        for (int b = 0; b < B; b++) {
            const float *dy = dout + b * bstride + c * cstride;
            sdy += plane_sum(dy, HW);
            sdyx += plane_dot_dev(dy, inp + b * bstride + c * cstride, mean, HW);
        }
        if (dbeta) dbeta[c] += (float)sdy;
        if (dgamma) dgamma[c] += (float)(sdyx * invstd);
        if (!dinp) continue;
        float k = (gamma ? gamma[c] : 1.0f) * invstd;
        float a = (float)(sdy / N);                                    /* mean of dy */
        float q = (float)(sdyx / N * (double)invstd * (double)invstd); /* per unit (x - mean) */
        for (int b = 0; b < B; b++) {
            const float *x = inp + b * bstride + c * cstride, *dy = dout + b * bstride + c * cstride;
            float *dx = dinp + b * bstride + c * cstride;
            for (int i = 0; i < HW; i++) dx[i] += k * (dy[i] - a - (x[i] - mean) * q);
        }
    }
}
