/* Mixed-precision rounding and the dynamic loss scaler. */
#include "lathe/precision.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

int lt_precision_parse(const char *s) {
    if (!strcmp(s, "32") || !strcmp(s, "32-true")) return LT_PREC_32;
    if (!strcmp(s, "bf16-mixed") || !strcmp(s, "bf16")) return LT_PREC_BF16_MIXED;
    if (!strcmp(s, "16-mixed") || !strcmp(s, "16")) return LT_PREC_16_MIXED;
    return -1;
}

const char *lt_precision_name(int p) {
    return p == LT_PREC_BF16_MIXED ? "bf16-mixed" : p == LT_PREC_16_MIXED ? "16-mixed" : "32";
}

static inline uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void lt_round_bf16(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u = bits(x[i]);
        if ((u & 0x7f800000u) == 0x7f800000u) continue; /* inf, NaN stay */
        u += 0x7fffu + ((u >> 16) & 1u);                /* round to nearest even */
        x[i] = from_bits(u & 0xffff0000u);
    }
}

/* f32 -> nearest fp16 value (as f32): 10 mantissa bits, exponent -14..15,
 * subnormals down to 2^-24, overflow to inf. */
static inline float to_fp16(float f) {
    float a = fabsf(f);
    if (!(a <= 3.4e38f)) return f;                    /* inf / NaN */
    if (a >= 65520.0f) return copysignf(INFINITY, f); /* rounds past the largest fp16 */
    if (a < 6.103515625e-05f) {
        /* subnormal: a multiple of 2^-24 */
        float q = nearbyintf(a * 16777216.0f) / 16777216.0f;
        return copysignf(q, f);
    }
    uint32_t u = bits(f);
    u += 0xfffu + ((u >> 13) & 1u); /* keep 10 of 23 mantissa bits, nearest even */
    return from_bits(u & 0xffffe000u);
}

void lt_round_fp16(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = to_fp16(x[i]);
}

void lt_round_to(int p, float *x, size_t n) {
    if (p == LT_PREC_BF16_MIXED)
        lt_round_bf16(x, n);
    else if (p == LT_PREC_16_MIXED)
        lt_round_fp16(x, n);
}

void (*lt_precision_rounder(int p))(float *x, size_t n) {
    return p == LT_PREC_BF16_MIXED ? lt_round_bf16 : p == LT_PREC_16_MIXED ? lt_round_fp16 : NULL;
}

void lt_grad_scaler_init(lt_grad_scaler *s) {
    s->scale = 65536.0;
    s->growth_factor = 2.0;
    s->backoff_factor = 0.5;
    s->growth_interval = 2000;
    s->good_steps = 0;
    s->skipped = 0;
}

int lt_grad_scaler_unscale(lt_grad_scaler *s, const lt_backend *be, float *g, size_t n) {
    /* fp16 gradients that overflowed would be inf: check the f32 ones against fp16's range */
    if (lt_dev_any_above(be, g, n, LT_FP16_MAX)) {
        s->scale *= s->backoff_factor;
        s->good_steps = 0;
        s->skipped++;
        return 0;
    }
    lt_dev_scale(be, g, n, (float)(1.0 / s->scale));
    if (++s->good_steps >= s->growth_interval) {
        s->scale *= s->growth_factor;
        s->good_steps = 0;
    }
    return 1;
}

void lt_precision_setup_defaults(lt_precision_setup *p, int precision) {
    lt_grad_scaler s;
    lt_grad_scaler_init(&s);
    memset(p, 0, sizeof *p);
    p->precision = precision;
    p->init_scale = s.scale;
    p->growth_factor = s.growth_factor;
    p->backoff_factor = s.backoff_factor;
    p->growth_interval = s.growth_interval;
}

int lt_precision_keep_fp32(lt_precision_setup *p, const char *layer, lt_err *err) {
    if (p->nkeep < 0 || p->nkeep >= LT_PREC_MAX_KEEP)
        return lt_seterr(err, LT_EINVAL, "configure_precision: at most %d layers can stay in fp32", LT_PREC_MAX_KEEP);
    p->keep_fp32[p->nkeep++] = layer;
    return LT_OK;
}

int lt_precision_setup_check(const lt_precision_setup *p, lt_err *err) {
    /* written as !(ok) so that NaN is refused too */
    if (!(p->init_scale > 0 && p->init_scale <= 3.4e38))
        return lt_seterr(err, LT_EINVAL, "configure_precision: init_scale %g must be above 0 (and finite)",
                         p->init_scale);
    if (!(p->growth_factor > 1 && p->growth_factor <= 3.4e38))
        return lt_seterr(err, LT_EINVAL, "configure_precision: growth_factor %g must be above 1 (and finite)",
                         p->growth_factor);
    if (!(p->backoff_factor > 0 && p->backoff_factor < 1))
        return lt_seterr(err, LT_EINVAL, "configure_precision: backoff_factor %g must be between 0 and 1 (exclusive)",
                         p->backoff_factor);
    if (p->growth_interval < 1)
        return lt_seterr(err, LT_EINVAL, "configure_precision: growth_interval %d must be at least 1",
                         p->growth_interval);
    if (p->nkeep < 0 || p->nkeep > LT_PREC_MAX_KEEP)
        return lt_seterr(err, LT_EINVAL, "configure_precision: nkeep %d must be 0 to %d", p->nkeep, LT_PREC_MAX_KEEP);
    for (int i = 0; i < p->nkeep; i++)
        if (!p->keep_fp32[i] || !p->keep_fp32[i][0])
            return lt_seterr(err, LT_EINVAL, "configure_precision: keep_fp32[%d] names no layer", i);
    return LT_OK;
}

void lt_grad_scaler_configure(lt_grad_scaler *s, const lt_precision_setup *p) {
    lt_grad_scaler_init(s);
    s->scale = p->init_scale;
    s->growth_factor = p->growth_factor;
    s->backoff_factor = p->backoff_factor;
    s->growth_interval = p->growth_interval;
}

int lt_matmul_precision_parse(const char *s) {
    if (!strcmp(s, "highest")) return LT_MATMUL_HIGHEST;
    if (!strcmp(s, "high")) return LT_MATMUL_HIGH;
    if (!strcmp(s, "medium")) return LT_MATMUL_MEDIUM;
    return -1;
}

const char *lt_matmul_precision_name(int mp) {
    return mp == LT_MATMUL_HIGH ? "high" : mp == LT_MATMUL_MEDIUM ? "medium" : "highest";
}

lt_math lt_precision_math(int p, int mp) {
    if (p == LT_PREC_BF16_MIXED) return LT_MATH_BF16;
    if (p == LT_PREC_16_MIXED) return LT_MATH_FP16;
    return mp == LT_MATMUL_HIGH || mp == LT_MATMUL_MEDIUM ? LT_MATH_TF32 : LT_MATH_F32;
}
