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

typedef struct sgd_coef {
    float lr, wd, mom, one_minus_damp;
    int has_wd, has_mom, nesterov, first; /* first: buf = g */
} sgd_coef;

/* p, g, buf [n]; this does elements [i, i+k), k <= OV_W. */
static OPT_INLINE void sgd_at(float *restrict p, const float *restrict g, float *restrict buf, size_t i, size_t k,
                              sgd_coef c) {
    ov8 P = ov_load(p + i, k), G = ov_load(g + i, k);
    if (c.has_wd) G = G + c.wd * P;
    if (c.has_mom) {
        ov8 B = c.first ? G : ov_load(buf + i, k) * c.mom + c.one_minus_damp * G;
        ov_store(buf + i, B, k);
        G = c.nesterov ? G + c.mom * B : B;
    }
    ov_store(p + i, P + (-c.lr) * G, k);
}

static void sgd_param(float *restrict p, const float *restrict g, float *restrict buf, size_t n, sgd_coef c) {
    size_t i = 0;
    for (; i + OV_W <= n; i += OV_W) sgd_at(p, g, buf, i, OV_W, c);
    if (i < n) sgd_at(p, g, buf, i, n - i, c);
}

static void sgd_step(lt_optim *o, const opt_group *grp, long t) {
    const double *hp = grp->hp;
    sgd_coef c = {
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
    for (int i = grp->first; i < grp->first + grp->count; i++) {
        const lt_param *prm = &o->params[i];
        sgd_param(prm->data, prm->grad, opt_state(o, i, 0), prm->n, c);
    }
    if (c.has_mom) o->sgd_buf_init = 1;
}

const opt_kind lt_optim_sgd_kind = {
    .name = "sgd",
    .nhp = NHP,
    .hp = hparams,
    .nslots = 1,
    .slots = {"momentum_buffer"},
    .check = sgd_check,
    .step = sgd_step,
};
