/* ops/backend.h: one table of kernels per device (ggml's idea): the autograd
 * layer calls lt_graph_be(g)->conv2d_forward(...) and never asks which device it is on.
 * The CPU table points at core/ops/cpu/; a CUDA table will implement the same
 * entries with the same semantics (see ops/kernels.h for shapes and rules). */
#ifndef LATHE_OPS_BACKEND_H
#define LATHE_OPS_BACKEND_H

#include "lathe/device.h"
#include "ops/kernels.h"

struct lt_backend {
    const char *name;
    /* ---- memory, copies, synchronisation, training-state ops ----
     * What lathe/device.h's calls reach (its comments give the contracts);
     * every entry is required. Copies and sync return LT_OK or a negative
     * LT_E* code (the wrappers turn it into a message naming the caller). */
    lt_device device;
    void *(*alloc)(size_t bytes, lt_mem_use use); /* zeroed, 64-byte aligned; NULL when out of memory */
    void (*free)(void *buf, lt_mem_use use);
    void *(*host_ptr)(void *buf); /* NULL: the host cannot address buf */
    int (*set)(void *dst, const void *host_src, size_t bytes);
    int (*get)(void *host_dst, const void *src, size_t bytes);
    int (*set_async)(void *dst, const void *host_src, size_t bytes, lt_stream *s);
    int (*get_async)(void *host_dst, const void *src, size_t bytes, lt_stream *s);
    int (*copy)(void *dst, const void *src, size_t bytes);
    int (*synchronize)(lt_stream *s);
    void (*fill)(float *x, float v, size_t n);
    void (*optim_update)(const lt_update *u, int nt, const lt_update_tensor *ts);
    double (*sum_squares)(const float *x, size_t n);
    void (*scale)(float *x, size_t n, float c);
    void (*clamp)(float *x, size_t n, float v);
    int (*any_above)(const float *x, size_t n, float limit);
    size_t (*count_nonfinite)(const float *x, size_t n);
    /* ---- compute: the kernels of the ops ---- */
    void (*linear_forward)(float *, const float *, const float *, const float *, int, int, int, lt_act);
    void (*linear_backward)(float *, float *, float *, float *, const float *, const float *, const float *, int, int,
                            int, lt_act);
    size_t (*conv2d_scratch_floats)(int, int, int, int, int, int, int, int, int);
    void (*conv2d_forward)(float *, const float *, const float *, const float *, int, int, int, int, int, int, int, int,
                           int, lt_act, float *);
    void (*conv2d_backward)(float *, float *, float *, float *, const float *, const float *, const float *, int, int,
                            int, int, int, int, int, int, int, lt_act, float *);
    void (*maxpool2d_forward)(float *, int32_t *, const float *, int, int, int, int, int, int, int);
    void (*maxpool2d_backward)(float *, const float *, const int32_t *, int, int, int, int, int, int);
    void (*maxpool2d_backward_fill)(float *, const float *, const int32_t *, int, int, int, int, int, int);
    void (*avgpool2d_forward)(float *, const float *, int, int, int, int, int, int, int);
    void (*avgpool2d_backward)(float *, const float *, int, int, int, int, int, int, int);
    void (*relu_forward)(float *, const float *, size_t);
    void (*relu_backward)(float *, const float *, const float *, const float *, size_t);
    void (*tanh_forward)(float *, const float *, size_t);
    void (*tanh_backward)(float *, const float *, const float *, const float *, size_t);
    void (*sigmoid_forward)(float *, const float *, size_t);
    void (*sigmoid_backward)(float *, const float *, const float *, const float *, size_t);
    void (*gelu_forward)(float *, const float *, size_t);
    void (*gelu_backward)(float *, const float *, const float *, const float *, size_t);
    void (*elu_forward)(float *, const float *, size_t, float);
    void (*elu_backward)(float *, const float *, const float *, const float *, size_t, float);
    void (*softmax_forward)(float *, const float *, int, int);
    void (*softmax_backward)(float *, const float *, const float *, int, int);
    void (*log_softmax_forward)(float *, const float *, int, int);
    void (*log_softmax_backward)(float *, const float *, const float *, int, int);
    void (*dropout_forward)(float *, float *, const float *, size_t, float, lt_rng *);
    void (*dropout_backward)(float *, const float *, const float *, size_t);
    void (*batchnorm2d_forward)(float *, float *, float *, const float *, const float *, const float *, float *,
                                float *, int, int, int, float, float, int);
    void (*batchnorm2d_backward)(float *, float *, float *, const float *, const float *, const float *, const float *,
                                 const float *, int, int, int);
    float (*cross_entropy_forward)(float *, const float *, const int32_t *, int, int);
    void (*cross_entropy_backward)(float *, float, const float *, const int32_t *, int, int);
    float (*nll_forward)(const float *, const int32_t *, int, int);
    void (*nll_backward)(float *, float, const int32_t *, int, int);
    float (*mse_forward)(const float *, const float *, size_t);
    void (*mse_backward)(float *, float *, float, const float *, const float *, size_t);
};

typedef struct lt_backend lt_backend;

const lt_backend *lt_backend_cpu(void);

#endif
