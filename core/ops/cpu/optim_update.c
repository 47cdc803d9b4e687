/* The optimizer update rules on the CPU: lathe/device.h's optim_update entry.
 * Each loop is torch.optim's single-tensor f32 arithmetic over 8-float vectors
 * (cpu/optim_vec.h), with the coefficients the optimizer computed
 * (core/optim/<rule>.c). Moved here from core/optim unchanged, so the results
 * are bitwise those of before. */
#include "ops/cpu/cpu_state.h"
#include "ops/cpu/optim_vec.h"

/* p, g, buf [n]; this does elements [i, i+k), k <= OV_W. */
static OPT_INLINE void sgd_at(float *restrict p, const float *restrict g, float *restrict buf, size_t i, size_t k,
                              lt_sgd_coef c) {
    ov8 P = ov_load(p + i, k), G = ov_load(g + i, k);
    if (c.has_wd) G = G + c.wd * P;
    if (c.has_mom) {
        ov8 B = c.first ? G : ov_load(buf + i, k) * c.mom + c.one_minus_damp * G;
        ov_store(buf + i, B, k);
        G = c.nesterov ? G + c.mom * B : B;
    }
    ov_store(p + i, P + (-c.lr) * G, k);
}

static void sgd_param(float *restrict p, const float *restrict g, float *restrict buf, size_t n, lt_sgd_coef c) {
    size_t i = 0;
    for (; i + OV_W <= n; i += OV_W) sgd_at(p, g, buf, i, OV_W, c);
    if (i < n) sgd_at(p, g, buf, i, n - i, c);
}

/* p, g, m, v, vmax [n]; this does elements [i, i+k), k <= OV_W. */
static OPT_INLINE void adam_at(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                               float *restrict vmax, size_t i, size_t k, lt_adam_coef c) {
    ov8 P = ov_load(p + i, k), G = ov_load(g + i, k);
    if (c.decoupled_wd) P = P * c.decay;
    if (c.coupled_wd) G = G + c.wd * P;
    ov8 M = ov_lerp(ov_load(m + i, k), G, c.w1);
    ov8 V = ov_load(v + i, k) * c.beta2 + c.c2 * G * G;
    ov_store(m + i, M, k);
    ov_store(v + i, V, k);
    if (c.amsgrad) {
        V = ov_max(ov_load(vmax + i, k), V);
        ov_store(vmax + i, V, k);
    }
    ov8 denom = ov_sqrt(V) / c.bc2_sqrt + c.eps;
    ov_store(p + i, P + c.neg_step * M / denom, k); /* addcdiv: p + (s*m)/d */
}

static void adam_param(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                       float *restrict vmax, size_t n, lt_adam_coef c) {
    size_t i = 0;
    for (; i + OV_W <= n; i += OV_W) adam_at(p, g, m, v, vmax, i, OV_W, c);
    if (i < n) adam_at(p, g, m, v, vmax, i, n - i, c);
}

/* p, g, sq, acc [n]; this does elements [i, i+k), k <= OV_W. */
static OPT_INLINE void adadelta_at(float *restrict p, const float *restrict g, float *restrict sq, float *restrict acc,
                                   size_t i, size_t k, lt_adadelta_coef c) {
    ov8 P = ov_load(p + i, k), G = ov_load(g + i, k);
    if (c.has_wd) G = G + c.wd * P;
    ov8 S = ov_load(sq + i, k) * c.rho + c.c * G * G;
    ov8 std = ov_sqrt(S + c.eps);
    ov8 A = ov_load(acc + i, k);
    ov8 delta = ov_sqrt(A + c.eps) / std * G;
    A = A * c.rho + c.c * delta * delta;
    ov_store(sq + i, S, k);
    ov_store(acc + i, A, k);
    ov_store(p + i, P + c.neg_lr * delta, k);
}

static void adadelta_param(float *restrict p, const float *restrict g, float *restrict sq, float *restrict acc,
                           size_t n, lt_adadelta_coef c) {
    size_t i = 0;
    for (; i + OV_W <= n; i += OV_W) adadelta_at(p, g, sq, acc, i, OV_W, c);
    if (i < n) adadelta_at(p, g, sq, acc, i, n - i, c);
}

/* p, g, sq, buf, ga [n]; this does elements [i, i+k), k <= OV_W. */
static OPT_INLINE void rmsprop_at(float *restrict p, const float *restrict g, float *restrict sq, float *restrict buf,
                                  float *restrict ga, size_t i, size_t k, lt_rmsprop_coef c) {
    ov8 P = ov_load(p + i, k), G = ov_load(g + i, k);
    if (c.has_wd) G = G + c.wd * P;
    ov8 S = ov_load(sq + i, k) * c.alpha + c.c * G * G;
    ov_store(sq + i, S, k);
    ov8 avg;
    if (c.centered) {
        ov8 A = ov_lerp(ov_load(ga + i, k), G, c.w);
        ov_store(ga + i, A, k);
        avg = ov_sqrt(S + (-1.0f) * A * A) + c.eps;
    } else {
        avg = ov_sqrt(S) + c.eps;
    }
    if (c.has_mom) {
        ov8 B = ov_load(buf + i, k) * c.mom + G / avg;
        ov_store(buf + i, B, k);
        P = P + c.neg_lr * B;
    } else {
        P = P + c.neg_lr * G / avg;
    }
    ov_store(p + i, P, k);
}

static void rmsprop_param(float *restrict p, const float *restrict g, float *restrict sq, float *restrict buf,
                          float *restrict ga, size_t n, lt_rmsprop_coef c) {
    size_t i = 0;
    for (; i + OV_W <= n; i += OV_W) rmsprop_at(p, g, sq, buf, ga, i, OV_W, c);
    if (i < n) rmsprop_at(p, g, sq, buf, ga, i, n - i, c);
}

/* p, g, sum [n]; this does elements [i, i+k), k <= OV_W. */
static OPT_INLINE void adagrad_at(float *restrict p, const float *restrict g, float *restrict sum, size_t i, size_t k,
                                  lt_adagrad_coef c) {
    ov8 P = ov_load(p + i, k), G = ov_load(g + i, k);
    if (c.has_wd) G = G + c.wd * P;
    ov8 S = (c.first ? ov_set1(c.init) : ov_load(sum + i, k)) + 1.0f * G * G;
    ov_store(sum + i, S, k);
    ov_store(p + i, P + c.neg_clr * G / (ov_sqrt(S) + c.eps), k);
}

static void adagrad_param(float *restrict p, const float *restrict g, float *restrict sum, size_t n,
                          lt_adagrad_coef c) {
    size_t i = 0;
    for (; i + OV_W <= n; i += OV_W) adagrad_at(p, g, sum, i, OV_W, c);
    if (i < n) adagrad_at(p, g, sum, i, n - i, c);
}

void lt_cpu_optim_update(const lt_update *u, int nt, const lt_update_tensor *ts) {
    for (int i = 0; i < nt; i++) {
        const lt_update_tensor *t = &ts[i];
        switch (u->rule) {
        case LT_UPDATE_SGD: sgd_param(t->p, t->g, t->s[0], t->n, u->c.sgd); break;
        case LT_UPDATE_ADAM: adam_param(t->p, t->g, t->s[0], t->s[1], t->s[2], t->n, u->c.adam); break;
        case LT_UPDATE_ADADELTA: adadelta_param(t->p, t->g, t->s[0], t->s[1], t->n, u->c.adadelta); break;
        case LT_UPDATE_RMSPROP: rmsprop_param(t->p, t->g, t->s[0], t->s[1], t->s[2], t->n, u->c.rmsprop); break;
        case LT_UPDATE_ADAGRAD: adagrad_param(t->p, t->g, t->s[0], t->n, u->c.adagrad); break;
        }
    }
}
