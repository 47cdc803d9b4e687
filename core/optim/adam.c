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

static void adam_coef_common(const opt_group *grp, long t, int decoupled, lt_update *u) {
    const double *hp = grp->hp;
    double bc1 = 1.0 - pow(hp[BETA1], (double)t);
    double bc2 = 1.0 - pow(hp[BETA2], (double)t);
    u->rule = LT_UPDATE_ADAM;
    u->c.adam = (lt_adam_coef){
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
}

static void adam_coef(lt_optim *o, const opt_group *grp, long t, lt_update *u) { adam_coef_common(grp, t, 0, u); }
static void adamw_coef(lt_optim *o, const opt_group *grp, long t, lt_update *u) { adam_coef_common(grp, t, 1, u); }

const opt_kind lt_optim_adam_kind = {
    .name = "adam",
    .nhp = NHP,
    .hp = adam_hparams,
    .nslots = 3,
    .slots = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    .coef = adam_coef,
};

const opt_kind lt_optim_adamw_kind = {
    .name = "adamw",
    .nhp = NHP,
    .hp = adamw_hparams,
    .nslots = 3,
    .slots = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    .coef = adamw_coef,
};
