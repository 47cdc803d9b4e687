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

typedef struct adagrad_coef {
    float neg_clr, eps, wd, init;
    int has_wd, first; /* first: fill sum with init before updating */
} adagrad_coef;

/* p, g, sum [n]; this does elements [i, i+k), k <= OV_W. */
static OPT_INLINE void adagrad_at(float *restrict p, const float *restrict g, float *restrict sum, size_t i, size_t k,
                                  adagrad_coef c) {
    ov8 P = ov_load(p + i, k), G = ov_load(g + i, k);
    if (c.has_wd) G = G + c.wd * P;
    ov8 S = (c.first ? ov_set1(c.init) : ov_load(sum + i, k)) + 1.0f * G * G;
    ov_store(sum + i, S, k);
    ov_store(p + i, P + c.neg_clr * G / (ov_sqrt(S) + c.eps), k);
}

static void adagrad_param(float *restrict p, const float *restrict g, float *restrict sum, size_t n, adagrad_coef c) {
    size_t i = 0;
    for (; i + OV_W <= n; i += OV_W) adagrad_at(p, g, sum, i, OV_W, c);
    if (i < n) adagrad_at(p, g, sum, i, n - i, c);
}

static void adagrad_step(lt_optim *o, const opt_group *grp, long t) {
    const double *hp = grp->hp;
    double clr = hp[LR] / (1.0 + (double)(t - 1) * hp[LR_DECAY]);
    adagrad_coef c = {
        .neg_clr = (float)-clr,
        .eps = (float)hp[EPS],
        .wd = (float)hp[WEIGHT_DECAY],
        .init = (float)hp[INIT_ACC],
        .has_wd = hp[WEIGHT_DECAY] != 0,
        .first = t == 1,
    };
    for (int i = grp->first; i < grp->first + grp->count; i++) {
        const lt_param *prm = &o->params[i];
        adagrad_param(prm->data, prm->grad, opt_state(o, i, 0), prm->n, c);
    }
}

const opt_kind lt_optim_adagrad_kind = {
    .name = "adagrad",
    .nhp = NHP,
    .hp = hparams,
    .nslots = 1,
    .slots = {"sum"},
    .step = adagrad_step,
};
