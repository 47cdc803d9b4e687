/* ops/cpu/vmath.h: branch-free float math that GCC vectorises (libm's expf
 * is a scalar call that stops vectorisation without -ffast-math). Private to
 * the CPU kernels (activation.c, softmax.c). */
#ifndef LATHE_OPS_CPU_VMATH_H
#define LATHE_OPS_CPU_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* a*b + c: fused where the target has FMA (one rounding, one instruction; the
 * ISO C mode this project builds in does not contract a*b+c by itself), plain
 * otherwise so no libm call lands in a loop. */
#if defined(__FMA__)
#define MADD(a, b, c) fmaf(a, b, c)
#else
#define MADD(a, b, c) ((a) * (b) + (c))
#endif

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

/* e^x (Cephes expf polynomial). x is clamped to [-104, 89] so the exponent n
 * stays in [-150, 128]; 2^n is applied as two factors 2^(n/2) * 2^(n-n/2) so that
 * results in the subnormal range round once and results past FLT_MAX become inf.
 * NaN stays NaN (the comparisons are false for NaN). */
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

#endif
