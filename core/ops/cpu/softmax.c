/* ops/cpu/softmax.c: softmax and log-softmax over the last dimension of [R, C],
 * forward and backward.
 *
 * Numerically stable: each row subtracts its maximum before exponentiating, so
 * the largest term is e^0 = 1 and nothing overflows. Row reductions (max, sum,
 * dot) keep 16 partial results so they vectorise without -ffast-math; exp is the
 * same branch-free polynomial as in activation.c (<= 1 ulp), which lets the
 * exponentiation loop vectorise too. */
#include <math.h>
#include <string.h>

#include "ops/cpu/vmath.h"
#include "ops/kernels.h"

#define LANES 16

static float row_max(const float *x, int C) {
    float m = -INFINITY;
    int j = 0;
    if (C >= LANES) {
        float acc[LANES];
        for (int k = 0; k < LANES; k++) acc[k] = x[k];
        for (j = LANES; j + LANES <= C; j += LANES)
            for (int k = 0; k < LANES; k++) acc[k] = x[j + k] > acc[k] ? x[j + k] : acc[k];
        for (int k = 0; k < LANES; k++) m = acc[k] > m ? acc[k] : m;
    }
    for (; j < C; j++) m = x[j] > m ? x[j] : m;
    return m;
}

static float row_sum(const float *x, int C) {
    float acc[LANES] = {0};
    int j = 0;
    for (; j + LANES <= C; j += LANES)
        for (int k = 0; k < LANES; k++) acc[k] += x[j + k];
    float s = 0.0f;
    for (; j < C; j++) s += x[j];
    for (int k = 0; k < LANES; k++) s += acc[k];
    return s;
}

static float row_dot(const float *a, const float *b, int C) {
    float acc[LANES] = {0};
    int j = 0;
    for (; j + LANES <= C; j += LANES)
        for (int k = 0; k < LANES; k++) acc[k] += a[j + k] * b[j + k];
    float s = 0.0f;
    for (; j < C; j++) s += a[j] * b[j];
    for (int k = 0; k < LANES; k++) s += acc[k];
    return s;
}

/* sum_j e^(x_j - m) */
static float row_sumexp(const float *x, float m, int C) {
    float acc[LANES] = {0};
    int j = 0;
    for (; j + LANES <= C; j += LANES)
        for (int k = 0; k < LANES; k++) acc[k] += exp_f32(x[j + k] - m);
    float s = 0.0f;
    for (; j < C; j++) s += exp_f32(x[j] - m);
    for (int k = 0; k < LANES; k++) s += acc[k];
    return s;
}

/* out[r, j] = e^(x_j - m) / sum_k e^(x_k - m), m = max_k x_k. out may equal inp. */
void lt_softmax_forward(float *out, const float *inp, int R, int C) {
    for (int r = 0; r < R; r++) {
        const float *x = inp + (size_t)r * C;
        float *y = out + (size_t)r * C;
        float m = row_max(x, C);
        for (int j = 0; j < C; j++) y[j] = exp_f32(x[j] - m);
        float inv = 1.0f / row_sum(y, C);
        for (int j = 0; j < C; j++) y[j] *= inv;
    }
}

/* dx_j += y_j (dy_j - sum_k dy_k y_k) */
void lt_softmax_backward(float *dinp, const float *dout, const float *out, int R, int C) {
    if (!dinp) return;
    for (int r = 0; r < R; r++) {
        const float *y = out + (size_t)r * C, *dy = dout + (size_t)r * C;
        float *dx = dinp + (size_t)r * C;
        float d = row_dot(dy, y, C);
        for (int j = 0; j < C; j++) dx[j] += y[j] * (dy[j] - d);
    }
}

/* out[r, j] = x_j - m - log(sum_k e^(x_k - m)). out may equal inp. */
void lt_log_softmax_forward(float *out, const float *inp, int R, int C) {
    for (int r = 0; r < R; r++) {
        const float *x = inp + (size_t)r * C;
        float *y = out + (size_t)r * C;
        float m = row_max(x, C);
        float shift = m + logf(row_sumexp(x, m, C));
        for (int j = 0; j < C; j++) y[j] = x[j] - shift;
    }
}

/* dx_j += dy_j - e^(y_j) sum_k dy_k */
void lt_log_softmax_backward(float *dinp, const float *dout, const float *out, int R, int C) {
    if (!dinp) return;
    for (int r = 0; r < R; r++) {
        const float *y = out + (size_t)r * C, *dy = dout + (size_t)r * C;
        float *dx = dinp + (size_t)r * C;
        float s = row_sum(dy, C);
        for (int j = 0; j < C; j++) dx[j] += dy[j] - exp_f32(y[j]) * s;
    }
}
