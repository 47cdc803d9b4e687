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

typedef struct adadelta_coef {
    float neg_lr, rho, c, eps, wd; /* c = 1 - rho */
    int has_wd;
} adadelta_coef;

/* p, g, sq, acc [n]; this does elements [i, i+k), k <= OV_W. */
static OPT_INLINE void adadelta_at(float *restrict p, const float *restrict g, float *restrict sq, float *restrict acc,
                                   size_t i, size_t k, adadelta_coef c) {
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
                           size_t n, adadelta_coef c) {
    size_t i = 0;
    for (; i + OV_W <= n; i += OV_W) adadelta_at(p, g, sq, acc, i, OV_W, c);
    if (i < n) adadelta_at(p, g, sq, acc, i, n - i, c);
}

static void adadelta_step(lt_optim *o, const opt_group *grp, long t) {
    const double *hp = grp->hp;
    adadelta_coef c = {
        .neg_lr = (float)-hp[LR],
        .rho = (float)hp[RHO],
        .c = (float)(1.0 - hp[RHO]),
        .eps = (float)hp[EPS],
        .wd = (float)hp[WEIGHT_DECAY],
        .has_wd = hp[WEIGHT_DECAY] != 0,
    };
    (void)t;
    for (int i = grp->first; i < grp->first + grp->count; i++) {
        const lt_param *prm = &o->params[i];
        adadelta_param(prm->data, prm->grad, opt_state(o, i, 0), opt_state(o, i, 1), prm->n, c);
    }
}

const opt_kind lt_optim_adadelta_kind = {
    .name = "adadelta",
    .nhp = NHP,
    .hp = hparams,
    .nslots = 2,
    .slots = {"square_avg", "acc_delta"},
    .step = adadelta_step,
};
