/* lathe/optim.h: optimizers that update f32 parameters from their gradients with
 * exactly the update rules of PyTorch's torch.optim (single-tensor, CPU, f32
 * arithmetic), so a run can be compared step by step with a PyTorch run.
 *
 * Kinds and hyperparameters (PyTorch names and defaults; flags are 0 or 1):
 *   sgd      lr=1e-3 momentum=0 dampening=0 weight_decay=0 nesterov=0
 *   adam     lr=1e-3 beta1=0.9 beta2=0.999 eps=1e-8 weight_decay=0 amsgrad=0
 *   adamw    as adam but weight_decay=1e-2, applied decoupled (p *= 1 - lr*wd)
 *   adadelta lr=1 rho=0.9 eps=1e-6 weight_decay=0
 *   rmsprop  lr=1e-2 alpha=0.99 eps=1e-8 weight_decay=0 momentum=0 centered=0
 *   adagrad  lr=1e-2 lr_decay=0 weight_decay=0 initial_accumulator_value=0 eps=1e-10
 *
 * Usage: fill an array of lt_param, create, set hyperparameters, then per batch
 * zero_grad, compute the grads, step. All state is allocated by create; step
 * allocates nothing. Hyperparameters may be changed between steps (a new lr is
 * used by the next step), as with a PyTorch param_group.
 *
 * Today every parameter belongs to one group; the hparam calls address that
 * group. (Several groups with their own hyperparameters may come later.) */
#ifndef LATHE_OPTIM_H
#define LATHE_OPTIM_H

#include <stddef.h>

#include "lathe/common.h"
#include "lathe/device.h" /* lt_backend */
#include "lathe/tensor.h" /* lt_param */

typedef struct lt_optim lt_optim;

/* kind: sgd adam adamw adadelta rmsprop adagrad. An unknown kind gives
 * LT_ENOTFOUND with a message listing the known ones. params: nparams >= 1
 * entries with distinct non-empty names and non-NULL data and grad, all on one
 * device (lt_param.device). Allocates all optimizer state (zeroed) once, on
 * that device through its backend (LT_EUNSUPPORTED when this build has none);
 * every update runs there too. Returns NULL on failure. */
lt_optim *lt_optim_create(const char *kind, const lt_param *params, int nparams, lt_err *err);
void lt_optim_free(lt_optim *o);
const char *lt_optim_kind(const lt_optim *o);

/* One update of every parameter from its grad (the grads are only read). */
int lt_optim_step(lt_optim *o, lt_err *err);
/* Sets every parameter's grad to 0. */
void lt_optim_zero_grad(lt_optim *o);

/* Hyperparameters, by name (see the table above). */
int lt_optim_hparam_count(const lt_optim *o);
const char *lt_optim_hparam_name(const lt_optim *o, int i); /* NULL when i is out of range */
/* Unknown name -> LT_ENOTFOUND naming it and listing the valid ones. */
int lt_optim_get(const lt_optim *o, const char *name, double *out, lt_err *err);
/* Validated as PyTorch does, and stricter: lr >= 0; beta1, beta2, rho, alpha in
 * [0, 1); eps > 0; momentum, weight_decay, lr_decay, initial_accumulator_value
 * >= 0; dampening in [0, 1]; flags 0 or 1; NaN and Inf refused; sgd's nesterov
 * needs momentum > 0 and dampening 0. On refusal (LT_EINVAL) nothing changes and
 * the message says why. adagrad's initial_accumulator_value, like PyTorch's,
 * only matters before the first step (the sums are filled by the first step). */
int lt_optim_set(lt_optim *o, const char *name, double value, lt_err *err);

/* Number of steps taken (PyTorch's state["step"]; the same for every param). */
long lt_optim_steps(const lt_optim *o);

/* State for checkpoints: named f32 buffers, for each parameter in order, under
 * PyTorch-like names "<param>.<slot>":
 *   sgd      momentum_buffer
 *   adam(w)  exp_avg exp_avg_sq max_exp_avg_sq (the last used only with amsgrad)
 *   adadelta square_avg acc_delta
 *   rmsprop  square_avg momentum_buffer grad_avg (the last two only with
 *            momentum > 0 / centered)
 *   adagrad  sum
 * Every buffer has the parameter's n floats and is always allocated. The data
 * pointers are memory of the optimizer's backend (lt_optim_backend): read and
 * write them as lathe/device.h says (lt_dev_host, lt_dev_get / lt_dev_set).
 * A restore writes the buffers and then calls lt_optim_set_steps. state_get
 * returns LT_EINVAL when i is out of range. */
int lt_optim_state_count(const lt_optim *o);
int lt_optim_state_get(const lt_optim *o, int i, const char **name, float **data, size_t *n);
/* All the buffers one after another, as a snapshot: their total in floats, and
 * copies out to / back in from a flat array of that many floats. */
size_t lt_optim_state_floats(const lt_optim *o);
int lt_optim_state_save(const lt_optim *o, float *dst, lt_err *err); /* dst: host memory */
int lt_optim_state_load(lt_optim *o, const float *src, lt_err *err); /* src: host memory */
/* The backend that owns the state (and the params' memory). */
const lt_backend *lt_optim_backend(const lt_optim *o);
/* Sets the step count (negative is taken as 0). For sgd, steps > 0 also marks
 * the momentum buffers as initialised (PyTorch creates them at the first
 * momentum step as a copy of the gradient). */
void lt_optim_set_steps(lt_optim *o, long steps);

#endif
