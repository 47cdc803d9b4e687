/* ops/cpu/loss.c: cross-entropy from logits, negative log-likelihood and mean
 * squared error, each with mean reduction (PyTorch's default), forward and
 * backward. Forward passes return the loss; backward passes take the upstream
 * gradient of that scalar (dloss) and accumulate into the input gradients.
 *
 * Labels are validated by the autograd layer; a label outside [0, C) is skipped
 * here (contributes nothing) only so a bad label can never read out of bounds. */
#include <math.h>

#include "ops/kernels.h"

#define LANES 16
#define BLOCK 4096 /* elements summed in float before the block total joins a double */

/* cross-entropy per row: loss_b = logsumexp(x_b) - x_b[label]
 *                               = m + log(sum_j e^(x_j - m)) - x_label, m = max_j x_j,
 * which never overflows and stays finite however small the label's probability.
 * probs receives the softmax of each row. The mean over rows is taken in double. */
float lt_cross_entropy_forward(float *probs, const float *logits, const int32_t *labels, int B, int C) {
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        const float *x = logits + (size_t)b * C;
        float *p = probs + (size_t)b * C;
        float m = x[0];
        for (int j = 1; j < C; j++) m = x[j] > m ? x[j] : m;
        float s = 0.0f;
        for (int j = 0; j < C; j++) {
            p[j] = expf(x[j] - m);
            s += p[j];
        }
        float inv = 1.0f / s;
        for (int j = 0; j < C; j++) p[j] *= inv;
        int32_t y = labels[b];
        if (y >= 0 && y < C) total += (double)m + log((double)s) - (double)x[y];
    }
    return B > 0 ? (float)(total / B) : 0.0f;
}

/* dlogits[b, j] += dloss (p_j - [j == label]) / B */
void lt_cross_entropy_backward(float *dlogits, float dloss, const float *probs, const int32_t *labels, int B, int C) {
    if (!dlogits || B <= 0) return;
    float k = dloss / (float)B;
    for (int b = 0; b < B; b++) {
        const float *p = probs + (size_t)b * C;
        float *d = dlogits + (size_t)b * C;
        int32_t y = labels[b];
        if (y < 0 || y >= C) continue;
        for (int j = 0; j < C; j++) d[j] += k * p[j];
        d[y] -= k;
    }
}

/* mean over rows of -logp[b, label] */
float lt_nll_forward(const float *logp, const int32_t *labels, int B, int C) {
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        int32_t y = labels[b];
        if (y >= 0 && y < C) total -= (double)logp[(size_t)b * C + y];
    }
    return B > 0 ? (float)(total / B) : 0.0f;
}

/* dlogp[b, label] -= dloss / B; every other entry has zero gradient */
void lt_nll_backward(float *dlogp, float dloss, const int32_t *labels, int B, int C) {
    if (!dlogp || B <= 0) return;
    float k = dloss / (float)B;
    for (int b = 0; b < B; b++) {
        int32_t y = labels[b];
        if (y >= 0 && y < C) dlogp[(size_t)b * C + y] -= k;
    }
}

/* sum (pred - target)^2 over n elements: blocks of BLOCK summed in float with 16
 * partial sums (vectorised), block totals in double. */
static double sq_diff_sum(const float *a, const float *b, size_t n) {
    double total = 0.0;
    for (size_t i0 = 0; i0 < n; i0 += BLOCK) {
        size_t len = n - i0 < BLOCK ? n - i0 : BLOCK;
        const float *x = a + i0, *y = b + i0;
        float acc[LANES] = {0};
        size_t i = 0;
        for (; i + LANES <= len; i += LANES)
            for (int k = 0; k < LANES; k++) {
                float d = x[i + k] - y[i + k];
                acc[k] += d * d;
            }
        float s = 0.0f;
        for (; i < len; i++) s += (x[i] - y[i]) * (x[i] - y[i]);
        for (int k = 0; k < LANES; k++) s += acc[k];
        total += s;
    }
    return total;
}

float lt_mse_forward(const float *pred, const float *target, size_t n) {
    return n > 0 ? (float)(sq_diff_sum(pred, target, n) / (double)n) : 0.0f;
}

/* d/dpred = 2 (pred - target) / n * dloss, d/dtarget = its negative */
void lt_mse_backward(float *dpred, float *dtarget, float dloss, const float *pred, const float *target, size_t n) {
    if (n == 0) return;
    float k = (float)(2.0 * (double)dloss / (double)n);
    if (dpred)
        for (size_t i = 0; i < n; i++) dpred[i] += k * (pred[i] - target[i]);
    if (dtarget)
        for (size_t i = 0; i < n; i++) dtarget[i] -= k * (pred[i] - target[i]);
}
