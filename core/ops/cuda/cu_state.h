/* ops/cuda/cu_state.h: launchers of the training-state kernels (state.cu):
 * fill, scale, clamp, the reductions and the fused optimizer update. Plain C
 * types only, so both the C side (backend_cuda.c) and nvcc read it; the
 * coefficient structs mirror lathe/device.h's lt_*_coef field for field.
 *
 * Every launcher queues its work on stream (a cudaStream_t) and returns the
 * launch's status as an int (cudaError_t: 0 when queued); a failure while the
 * kernel runs shows up at the stream's next synchronisation. */
#ifndef LATHE_CU_STATE_H
#define LATHE_CU_STATE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* x[0..n) = v */
int lt_cu_fill_launch(float *x, float v, size_t n, void *stream);
/* x *= c */
int lt_cu_scale_launch(float *x, size_t n, float c, void *stream);
/* x = x > v ? v : x < -v ? -v : x (NaN stays NaN) */
int lt_cu_clamp_launch(float *x, size_t n, float v, void *stream);

/* Adds to *count (device memory, zeroed by the caller) the number of x[i]
 * that are not finite (above == 0) or not within [-limit, limit] (above == 1:
 * NaN and inf count). */
int lt_cu_count_launch(const float *x, size_t n, int above, float limit, unsigned long long *count, void *stream);

/* *result (device) = sum of (double)x[i]^2: each of at most LT_CU_RED_BLOCKS
 * blocks sums a strided share into partials[block], then one block adds the
 * partials in a fixed tree. For a given n the order is always the same (the
 * result is reproducible), but it is not the CPU's index order. */
#define LT_CU_RED_BLOCKS 1024
int lt_cu_sum_squares_launch(const float *x, size_t n, double *partials, double *result, void *stream);

/* ---- the optimizer update (lathe/device.h's lt_update, mirrored) ---- */
enum { LT_CU_SGD = 0, LT_CU_ADAM, LT_CU_ADADELTA, LT_CU_RMSPROP, LT_CU_ADAGRAD };

typedef struct lt_cu_sgd {
    float lr, wd, mom, one_minus_damp;
    int has_wd, has_mom, nesterov, first;
} lt_cu_sgd;
typedef struct lt_cu_adam {
    float wd, decay, w1, beta2, c2, bc2_sqrt, eps, neg_step;
    int coupled_wd, decoupled_wd, amsgrad;
} lt_cu_adam;
typedef struct lt_cu_adadelta {
    float neg_lr, rho, c, eps, wd;
    int has_wd;
} lt_cu_adadelta;
typedef struct lt_cu_rmsprop {
    float neg_lr, alpha, c, w, eps, wd, mom;
    int has_wd, has_mom, centered;
} lt_cu_rmsprop;
typedef struct lt_cu_adagrad {
    float neg_clr, eps, wd, init;
    int has_wd, first;
} lt_cu_adagrad;

typedef struct lt_cu_update {
    int rule; /* LT_CU_* */
    union {
        lt_cu_sgd sgd;
        lt_cu_adam adam;
        lt_cu_adadelta adadelta;
        lt_cu_rmsprop rmsprop;
        lt_cu_adagrad adagrad;
    } c;
} lt_cu_update;

/* one tensor: p, g and the rule's state slots s[k], n floats each (device) */
typedef struct lt_cu_update_tensor {
    float *p;
    const float *g;
    float *s[3];
    size_t n;
} lt_cu_update_tensor;

/* Updates nt tensors (host array of device pointers): one launch per group of
 * up to LT_CU_UPDATE_GROUP tensors, their descriptors passed as the kernel's
 * argument (no device copy of the list, nothing to wait for). */
#define LT_CU_UPDATE_GROUP 48
int lt_cu_optim_update_launch(const lt_cu_update *u, int nt, const lt_cu_update_tensor *ts, void *stream);

#ifdef __cplusplus
}
#endif

#endif
