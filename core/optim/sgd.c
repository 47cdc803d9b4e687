/* SGD with momentum, dampening, nesterov and L2 weight decay, as
 * torch.optim.SGD (_single_tensor_sgd):
 *   g = grad + wd*p
 *   buf = g (first momentum step) | buf*momentum + (1-dampening)*g
 *   g = nesterov ? g + momentum*buf : buf          (when momentum != 0)
 *   p = p - lr*g */
#include "optim/optim_impl.h"

enum { LR, MOMENTUM, DAMPENING, WEIGHT_DECAY, NESTEROV, NHP };

static const opt_hparam_def hparams[NHP] = {
    [LR] = {"lr", 1e-3, OPT_CHK_NONNEG},
    [MOMENTUM] = {"momentum", 0, OPT_CHK_NONNEG},
    [DAMPENING] = {"dampening", 0, OPT_CHK_CLOSED01},
    [WEIGHT_DECAY] = {"weight_decay", 0, OPT_CHK_NONNEG},
    [NESTEROV] = {"nesterov", 0, OPT_CHK_FLAG},
};

static int sgd_check(const double *hp, lt_err *err) {
    if (hp[NESTEROV] != 0 && (hp[MOMENTUM] <= 0 || hp[DAMPENING] != 0))
        return lt_seterr(err, LT_EINVAL,
                         "nesterov momentum requires momentum > 0 and dampening 0 (momentum=%g, dampening=%g)",
                         hp[MOMENTUM], hp[DAMPENING]);
    return LT_OK;
}

static void sgd_coef(lt_optim *o, const opt_group *grp, long t, lt_update *u) {
    const double *hp = grp->hp;
    u->rule = LT_UPDATE_SGD;
    u->c.sgd = (lt_sgd_coef){
        .lr = (float)hp[LR],
        .wd = (float)hp[WEIGHT_DECAY],
        .mom = (float)hp[MOMENTUM],
        .one_minus_damp = (float)(1.0 - hp[DAMPENING]),
        .has_wd = hp[WEIGHT_DECAY] != 0,
        .has_mom = hp[MOMENTUM] != 0,
        .nesterov = hp[NESTEROV] != 0,
        .first = !o->sgd_buf_init,
    };
    (void)t;
    if (u->c.sgd.has_mom) o->sgd_buf_init = 1;
}

const opt_kind lt_optim_sgd_kind = {
    .name = "sgd",
    .nhp = NHP,
    .hp = hparams,
    .nslots = 1,
    .slots = {"momentum_buffer"},
    .check = sgd_check,
    .coef = sgd_coef,
};
