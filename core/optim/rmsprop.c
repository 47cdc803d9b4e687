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

typedef struct rmsprop_coef {
    float neg_lr, alpha, c, w, eps, wd, mom; /* c = w = 1 - alpha (w: lerp weight) */
    int has_wd, has_mom, centered;
} rmsprop_coef;

/* p, g, sq, buf, ga [n]; this does elements [i, i+k), k <= OV_W. */
static OPT_INLINE void rmsprop_at(float *restrict p, const float *restrict g, float *restrict sq, float *restrict buf,
                                  float *restrict ga, size_t i, size_t k, rmsprop_coef c) {
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
                          float *restrict ga, size_t n, rmsprop_coef c) {
    size_t i = 0;
    for (; i + OV_W <= n; i += OV_W) rmsprop_at(p, g, sq, buf, ga, i, OV_W, c);
    if (i < n) rmsprop_at(p, g, sq, buf, ga, i, n - i, c);
}

static void rmsprop_step(lt_optim *o, const opt_group *grp, long t) {
    const double *hp = grp->hp;
    rmsprop_coef c = {
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
    for (int i = grp->first; i < grp->first + grp->count; i++) {
        const lt_param *prm = &o->params[i];
        rmsprop_param(prm->data, prm->grad, opt_state(o, i, 0), opt_state(o, i, 1), opt_state(o, i, 2), prm->n, c);
    }
}

const opt_kind lt_optim_rmsprop_kind = {
    .name = "rmsprop",
    .nhp = NHP,
    .hp = hparams,
    .nslots = 3,
    .slots = {"square_avg", "momentum_buffer", "grad_avg"},
    .step = rmsprop_step,
};
