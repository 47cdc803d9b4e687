/* Adadelta, as torch.optim.Adadelta (_single_tensor_adadelta); lr multiplies
 * the delta:
 *   g = grad + wd*p
 *   sq = sq*rho + (1-rho)*g*g
 *   delta = sqrt(acc + eps) / sqrt(sq + eps) * g
 *   acc = acc*rho + (1-rho)*delta*delta
 *   p = p - lr*delta
 * (The Keras MNIST example's Adadelta is lr=1, rho=0.95, eps=1e-7.) */
#include "optim/optim_impl.h"

enum { LR, RHO, EPS, WEIGHT_DECAY, NHP };

static const opt_hparam_def hparams[NHP] = {
    [LR] = {"lr", 1.0, OPT_CHK_NONNEG},
    [RHO] = {"rho", 0.9, OPT_CHK_UNIT},
    [EPS] = {"eps", 1e-6, OPT_CHK_POS},
    [WEIGHT_DECAY] = {"weight_decay", 0, OPT_CHK_NONNEG},
};

static void adadelta_coef(lt_optim *o, const opt_group *grp, long t, lt_update *u) {
    const double *hp = grp->hp;
    u->rule = LT_UPDATE_ADADELTA;
    u->c.adadelta = (lt_adadelta_coef){
        .neg_lr = (float)-hp[LR],
        .rho = (float)hp[RHO],
        .c = (float)(1.0 - hp[RHO]),
        .eps = (float)hp[EPS],
        .wd = (float)hp[WEIGHT_DECAY],
        .has_wd = hp[WEIGHT_DECAY] != 0,
    };
    (void)t;
}

const opt_kind lt_optim_adadelta_kind = {
    .name = "adadelta",
    .nhp = NHP,
    .hp = hparams,
    .nslots = 2,
    .slots = {"square_avg", "acc_delta"},
    .coef = adadelta_coef,
};
