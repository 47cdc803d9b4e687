/* ops/cpu/optim_vec.h: the 8-float vectors the CPU optimizer updates are
 * written with (cpu/optim_update.c).
 *
 * Why explicit vectors: the update loops need sqrtf, and with the default
 * -fmath-errno GCC will not vectorise a loop calling sqrtf (it keeps a scalar
 * call for the errno path). The loops are therefore written once over ov8, a GCC
 * vector of 8 floats, with the square root done by the target's instruction. */
#ifndef LATHE_OPS_CPU_OPTIM_VEC_H
#define LATHE_OPS_CPU_OPTIM_VEC_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__AVX__) || defined(__SSE__)
#include <immintrin.h>
#elif defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#endif

/* Loop bodies are inlined so the full-vector loop sees k == OV_W. */
#define OPT_INLINE inline __attribute__((always_inline))

/* ---- 8-float vectors (GCC/Clang vector extension) ---- */
#define OV_W 8
typedef float ov8 __attribute__((vector_size(32)));
typedef int32_t ov8i __attribute__((vector_size(32)));

static inline ov8 ov_set1(float x) { return (ov8){x, x, x, x, x, x, x, x}; }

/* Loads k <= 8 floats (the rest zero); stores k floats. The k == 8 path is a
 * plain unaligned vector load/store. */
static inline ov8 ov_load(const float *p, size_t k) {
    ov8 v = ov_set1(0.0f);
    memcpy(&v, p, (k == OV_W ? OV_W : k) * sizeof(float));
    return v;
}
static inline void ov_store(float *p, ov8 v, size_t k) { memcpy(p, &v, (k == OV_W ? OV_W : k) * sizeof(float)); }

static inline ov8 ov_sqrt(ov8 x) {
#if defined(__AVX__)
    return (ov8)_mm256_sqrt_ps((__m256)x);
#elif defined(__SSE__)
    __m128 lo, hi;
    memcpy(&lo, &x, 16);
    memcpy(&hi, (const char *)&x + 16, 16);
    lo = _mm_sqrt_ps(lo);
    hi = _mm_sqrt_ps(hi);
    memcpy(&x, &lo, 16);
    memcpy((char *)&x + 16, &hi, 16);
    return x;
#elif defined(__aarch64__) && defined(__ARM_NEON)
    float32x4_t lo, hi;
    memcpy(&lo, &x, 16);
    memcpy(&hi, (const char *)&x + 16, 16);
    lo = vsqrtq_f32(lo);
    hi = vsqrtq_f32(hi);
    memcpy(&x, &lo, 16);
    memcpy((char *)&x + 16, &hi, 16);
    return x;
#else
    for (int j = 0; j < OV_W; j++) x[j] = sqrtf(x[j]);
    return x;
#endif
}

/* Lane-wise max(a, b) (b where a is not greater, as torch.maximum for non-NaN). */
static inline ov8 ov_max(ov8 a, ov8 b) {
    ov8i m = a > b;
    return (ov8)(((ov8i)a & m) | ((ov8i)b & ~m));
}

/* torch.lerp(a, b, w) for a scalar weight, as ATen computes it:
 * |w| < 0.5 ? a + w*(b - a) : b - (b - a)*(1 - w). */
static inline ov8 ov_lerp(ov8 a, ov8 b, float w) {
    if (fabsf(w) < 0.5f) return a + w * (b - a);
    return b - (b - a) * (1.0f - w);
}

#endif
