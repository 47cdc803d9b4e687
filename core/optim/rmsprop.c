/* RMSprop, as torch.optim.RMSprop (_single_tensor_rmsprop); eps is added after
 * the square root:
 *   g = grad + wd*p
 *   sq = sq*alpha + (1-alpha)*g*g
 *   centered: ga = lerp(ga, g, 1-alpha); avg = sqrt(sq - ga*ga) + eps
 *   else:     avg = sqrt(sq) + eps
 *   momentum > 0: buf = buf*momentum + g/avg; p = p - lr*buf
 *   else:         p = p + (-lr*g)/avg */
#include "optim/optim_impl.h"

enum { LR, ALPHA, EPS, WEIGHT_DECAY, MOMENTUM, CENTERED, NHP };

static const opt_hparam_def hparams[NHP] = {
    [LR] = {"lr", 1e-2, OPT_CHK_NONNEG},          [ALPHA] = {"alpha", 0.99, OPT_CHK_UNIT},
    [EPS] = {"eps", 1e-8, OPT_CHK_POS},           [WEIGHT_DECAY] = {"weight_decay", 0, OPT_CHK_NONNEG},
    [MOMENTUM] = {"momentum", 0, OPT_CHK_NONNEG}, [CENTERED] = {"centered", 0, OPT_CHK_FLAG},
};

static void rmsprop_coef(lt_optim *o, const opt_group *grp, long t, lt_update *u) {
    const double *hp = grp->hp;
    u->rule = LT_UPDATE_RMSPROP;
    u->c.rmsprop = (lt_rmsprop_coef){
        .neg_lr = (float)-hp[LR],
        .alpha = (float)hp[ALPHA],
        .c = (float)(1.0 - hp[ALPHA]),
        .w = (float)(1.0 - hp[ALPHA]),
        .eps = (float)hp[EPS],
        .wd = (float)hp[WEIGHT_DECAY],
        .mom = (float)hp[MOMENTUM],
        .has_wd = hp[WEIGHT_DECAY] != 0,
        .has_mom = hp[MOMENTUM] > 0,
        .centered = hp[CENTERED] != 0,
    };
    (void)t;
}

const opt_kind lt_optim_rmsprop_kind = {
    .name = "rmsprop",
    .nhp = NHP,
    .hp = hparams,
    .nslots = 3,
    .slots = {"square_avg", "momentum_buffer", "grad_avg"},
    .coef = rmsprop_coef,
};
