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

#include "ops/kernels.h"

/* a*b + c, fused where the target has FMA (see activation.c) */
#if defined(__FMA__)
#define MADD(a, b, c) fmaf(a, b, c)
#else
#define MADD(a, b, c) ((a) * (b) + (c))
#endif

#define LANES 16

static inline float bits_to_f32(int32_t i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

static inline int32_t f32_to_bits(float f) {
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i;
}

/* e^x, Cephes polynomial; see activation.c for the derivation and range. */
static inline float exp_f32(float x) {
    x = x < -104.0f ? -104.0f : x;
    x = x > 89.0f ? 89.0f : x;
    /* adding 1.5*2^23 rounds x*log2(e) to an integer held in the low mantissa bits */
    float t = MADD(x, 1.44269504f, 12582912.0f);
    int32_t n = f32_to_bits(t) - 0x4B400000;
    /* only a NaN x takes n out of [-150, 128]; keep the shifts below defined */
    n = n < -150 ? -150 : n;
    n = n > 128 ? 128 : n;
    float nf = t - 12582912.0f;
    /* r = x - n*ln2 in two steps; 0.693359375 has 9 bits so n*hi is exact */
    float r = MADD(nf, -0.693359375f, x);
    r = MADD(nf, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = MADD(p, r, 1.3981999507e-3f);
    p = MADD(p, r, 8.3334519073e-3f);
    p = MADD(p, r, 4.1665795894e-2f);
    p = MADD(p, r, 1.6666665459e-1f);
    p = MADD(p, r, 5.0000001201e-1f);
    p = MADD(p, r * r, r) + 1.0f;
    int32_t n1 = n >> 1, n2 = n - n1; /* arithmetic shift (GCC, Clang): floor(n/2) */
    return p * bits_to_f32((n1 + 127) << 23) * bits_to_f32((n2 + 127) << 23);
}

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
