/* Adagrad, as torch.optim.Adagrad (_single_tensor_adagrad, dense grads), step t
 * counted from 1:
 *   g = grad + wd*p
 *   clr = lr / (1 + (t-1)*lr_decay)
 *   sum = sum + g*g
 *   p = p + (-clr*g) / (sqrt(sum) + eps)
 * The sums start at initial_accumulator_value; PyTorch fills them when the
 * optimizer is built, here the first step fills them (so a value set before the
 * first step is honoured). */
#include "optim/optim_impl.h"

enum { LR, LR_DECAY, WEIGHT_DECAY, INIT_ACC, EPS, NHP };

static const opt_hparam_def hparams[NHP] = {
    [LR] = {"lr", 1e-2, OPT_CHK_NONNEG},
    [LR_DECAY] = {"lr_decay", 0, OPT_CHK_NONNEG},
    [WEIGHT_DECAY] = {"weight_decay", 0, OPT_CHK_NONNEG},
    [INIT_ACC] = {"initial_accumulator_value", 0, OPT_CHK_NONNEG},
    [EPS] = {"eps", 1e-10, OPT_CHK_POS},
};

static void adagrad_coef(lt_optim *o, const opt_group *grp, long t, lt_update *u) {
    const double *hp = grp->hp;
    double clr = hp[LR] / (1.0 + (double)(t - 1) * hp[LR_DECAY]);
    u->rule = LT_UPDATE_ADAGRAD;
    u->c.adagrad = (lt_adagrad_coef){
        .neg_clr = (float)-clr,
        .eps = (float)hp[EPS],
        .wd = (float)hp[WEIGHT_DECAY],
        .init = (float)hp[INIT_ACC],
        .has_wd = hp[WEIGHT_DECAY] != 0,
        .first = t == 1,
    };
}

const opt_kind lt_optim_adagrad_kind = {
    .name = "adagrad",
    .nhp = NHP,
    .hp = hparams,
    .nslots = 1,
    .slots = {"sum"},
    .coef = adagrad_coef,
};
