/* Adam and AdamW, as torch.optim.Adam / AdamW (_single_tensor_adam, not
 * capturable), step t counted from 1:
 *   adam:  g = grad + wd*p            adamw: p = p * (1 - lr*wd)
 *   m = lerp(m, g, 1-beta1)
 *   v = v*beta2 + (1-beta2)*g*g
 *   vmax = max(vmax, v) and v' = vmax with amsgrad, else v' = v
 *   denom = sqrt(v') / sqrt(1 - beta2^t) + eps
 *   p = p + (-lr / (1 - beta1^t)) * m / denom
 * Scalars (bias corrections, step size) are computed in double and rounded to
 * f32 once, as PyTorch passes Python floats to f32 kernels. */
#include "optim/optim_impl.h"

enum { LR, BETA1, BETA2, EPS, WEIGHT_DECAY, AMSGRAD, NHP };

static const opt_hparam_def adam_hparams[NHP] = {
    [LR] = {"lr", 1e-3, OPT_CHK_NONNEG},
    [BETA1] = {"beta1", 0.9, OPT_CHK_UNIT},
    [BETA2] = {"beta2", 0.999, OPT_CHK_UNIT},
    [EPS] = {"eps", 1e-8, OPT_CHK_POS},
    [WEIGHT_DECAY] = {"weight_decay", 0, OPT_CHK_NONNEG},
    [AMSGRAD] = {"amsgrad", 0, OPT_CHK_FLAG},
};

static const opt_hparam_def adamw_hparams[NHP] = {
    [LR] = {"lr", 1e-3, OPT_CHK_NONNEG},
    [BETA1] = {"beta1", 0.9, OPT_CHK_UNIT},
    [BETA2] = {"beta2", 0.999, OPT_CHK_UNIT},
    [EPS] = {"eps", 1e-8, OPT_CHK_POS},
    [WEIGHT_DECAY] = {"weight_decay", 1e-2, OPT_CHK_NONNEG},
    [AMSGRAD] = {"amsgrad", 0, OPT_CHK_FLAG},
};

typedef struct adam_coef {
    float wd;        /* coupled weight decay (adam) */
    float decay;     /* decoupled factor 1 - lr*wd (adamw) */
    float w1;        /* lerp weight 1 - beta1 */
    float beta2, c2; /* c2 = 1 - beta2 */
    float bc2_sqrt;  /* sqrt(1 - beta2^t) */
    float eps;
    float neg_step; /* -lr / (1 - beta1^t) */
    int coupled_wd, decoupled_wd, amsgrad;
} adam_coef;

/* p, g, m, v, vmax [n]; this does elements [i, i+k), k <= OV_W. */
static OPT_INLINE void adam_at(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                               float *restrict vmax, size_t i, size_t k, adam_coef c) {
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
                       float *restrict vmax, size_t n, adam_coef c) {
    size_t i = 0;
    for (; i + OV_W <= n; i += OV_W) adam_at(p, g, m, v, vmax, i, OV_W, c);
    if (i < n) adam_at(p, g, m, v, vmax, i, n - i, c);
}

static void adam_step_common(lt_optim *o, const opt_group *grp, long t, int decoupled) {
    const double *hp = grp->hp;
    double bc1 = 1.0 - pow(hp[BETA1], (double)t);
    double bc2 = 1.0 - pow(hp[BETA2], (double)t);
    adam_coef c = {
        .wd = (float)hp[WEIGHT_DECAY],
        .decay = (float)(1.0 - hp[LR] * hp[WEIGHT_DECAY]),
        .w1 = (float)(1.0 - hp[BETA1]),
        .beta2 = (float)hp[BETA2],
        .c2 = (float)(1.0 - hp[BETA2]),
        .bc2_sqrt = (float)sqrt(bc2),
        .eps = (float)hp[EPS],
        .neg_step = (float)(-(hp[LR] / bc1)),
        .coupled_wd = !decoupled && hp[WEIGHT_DECAY] != 0,
        .decoupled_wd = decoupled && hp[WEIGHT_DECAY] != 0,
        .amsgrad = hp[AMSGRAD] != 0,
    };
    for (int i = grp->first; i < grp->first + grp->count; i++) {
        const lt_param *prm = &o->params[i];
        adam_param(prm->data, prm->grad, opt_state(o, i, 0), opt_state(o, i, 1), opt_state(o, i, 2), prm->n, c);
    }
}

static void adam_step(lt_optim *o, const opt_group *grp, long t) { adam_step_common(o, grp, t, 0); }
static void adamw_step(lt_optim *o, const opt_group *grp, long t) { adam_step_common(o, grp, t, 1); }

const opt_kind lt_optim_adam_kind = {
    .name = "adam",
    .nhp = NHP,
    .hp = adam_hparams,
    .nslots = 3,
    .slots = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    .step = adam_step,
};

const opt_kind lt_optim_adamw_kind = {
    .name = "adamw",
    .nhp = NHP,
    .hp = adamw_hparams,
    .nslots = 3,
    .slots = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    .step = adamw_step,
};
