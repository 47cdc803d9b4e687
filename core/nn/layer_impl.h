/* nn/layer_impl.h: private to core/nn. What the layer kinds (layers.c: a
 * builder and an lt_layer_class each) share with the model code in model.c. */
#ifndef LATHE_NN_LAYER_IMPL_H
#define LATHE_NN_LAYER_IMPL_H

#include <string.h>

#include "lathe/nn.h"

/* Appends a layer of the given kind named name (checked: unique, 1 to
 * LT_NAME_MAX-1 characters, the model not finalized); its fields are zero but
 * name and kind. NULL with err set on failure. */
lt_layer *nn_add_layer(lt_model *m, const char *name, lt_layer_kind kind, lt_err *err);

/* 0 when v > 0, else an error "<what> <name>: <v> must be positive". */
int nn_positive(const char *what, const char *name, int v, lt_err *err);

/* The error code of a failed builder step (LT_EINVAL when err is NULL). */
static inline int nn_fail(const lt_err *err) { return err ? err->code : LT_EINVAL; }

/* A graph-side leaf over a persistent parameter, no copy (NULL when the
 * parameter is absent). Under mixed precision the compute sees a rounded copy
 * and the gradient goes to the f32 master. */
lt_tensor *nn_param_leaf(lt_graph *g, lt_tensor *p);

/* p[0..n) ~ U(-bound, bound), drawn in order. */
void nn_uniform(float *p, size_t n, float bound, lt_rng *rng);

/* PyTorch's default for nn.Linear and nn.Conv2d: weight and then bias
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = weight numel / weight.shape[0]
 * (kaiming_uniform(a=sqrt(5)) gives the same bound). */
void nn_init_fan_in_uniform(lt_layer *l, lt_rng *rng);

/* Output length of a sliding window (convolution, pooling) over n. */
static inline int nn_window_out(int n, int kernel, int stride, int pad) { return (n + 2 * pad - kernel) / stride + 1; }

#endif
