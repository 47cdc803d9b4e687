/* optim/optim_impl.h: private to core/optim. The optimizer object shared by
 * optim.c (creation, hyperparameters, state) and the per-kind files (sgd.c,
 * adam.c, adadelta.c, rmsprop.c, adagrad.c, each an update rule: its
 * hyperparameters and how they become the f32 coefficients of lathe/device.h's
 * lt_update; the element-wise loops are the backend's, core/ops/cpu/optim_update.c
 * on the CPU). */
#ifndef LATHE_OPTIM_IMPL_H
#define LATHE_OPTIM_IMPL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "lathe/device.h"
#include "lathe/optim.h"

#define OPT_MAX_HP 8
#define OPT_MAX_SLOTS 3

/* How lt_optim_set validates a hyperparameter. */
enum {
    OPT_CHK_NONNEG = 0, /* >= 0 (lr, momentum, weight_decay, ...) */
    OPT_CHK_UNIT,       /* in [0, 1) (betas, rho, alpha) */
    OPT_CHK_POS,        /* > 0 (eps) */
    OPT_CHK_CLOSED01,   /* in [0, 1] (dampening) */
    OPT_CHK_FLAG,       /* 0 or 1 */
};

typedef struct opt_hparam_def {
    const char *name;
    double def;
    int check;
} opt_hparam_def;

/* A parameter group: hyperparameters and the range of params it holds. Today
 * there is exactly one, holding every param. */
typedef struct opt_group {
    double hp[OPT_MAX_HP];
    int first, count;
} opt_group;

typedef struct opt_kind opt_kind;

struct lt_optim {
    const opt_kind *kind;
    lt_param *params; /* nparams copies of the caller's structs */
    int nparams;
    opt_group groups[1];
    int ngroups;
    long steps;
    int sgd_buf_init;      /* sgd: momentum buffers hold a value (PyTorch: not None) */
    const lt_backend *be;  /* owns the params' memory (their device's) and the state */
    lt_update_tensor *upd; /* [nparams]: p, g, state slots of each param, for the backend */
    float *state_mem;      /* one 64-byte aligned block (LT_MEM_OPTIM) for every state buffer */
    float **state;         /* [nparams * nslots]: state[p * nslots + s] */
    char **state_names;    /* same indexing, "<param>.<slot>" */
    char *names_mem;
};

struct opt_kind {
    const char *name;
    int nhp;
    const opt_hparam_def *hp;
    int nslots;
    const char *slots[OPT_MAX_SLOTS];
    /* Checks across hyperparameters after one changed; NULL when none. */
    int (*check)(const double *hp, lt_err *err);
    /* The coefficients of the update of group g at step t (1-based), which
       the backend then applies to the group's params. */
    void (*coef)(lt_optim *o, const opt_group *g, long t, lt_update *u);
};

extern const opt_kind lt_optim_sgd_kind, lt_optim_adam_kind, lt_optim_adamw_kind, lt_optim_adadelta_kind,
    lt_optim_rmsprop_kind, lt_optim_adagrad_kind;

/* State buffer s of param p. */
static inline float *opt_state(const lt_optim *o, int p, int s) { return o->state[p * o->kind->nslots + s]; }

#endif
