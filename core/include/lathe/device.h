/* lathe/device.h: where memory lives and the calls that reach it, through the
 * backend that owns it (ggml-backend's idea: a backend owns its memory as well
 * as its compute). Part of the ops layer; the layers above (nn, optim, train,
 * control) allocate, copy, fill and run the training-state ops (optimizer
 * updates, gradient norm and clipping, the loss scaler's checks, the anomaly
 * watch's count) only through these calls, never by touching device memory.
 *
 * The rule for reading memory above core/ops: a buffer's bytes may be read or
 * written directly only through the pointer lt_dev_host() returns for it. On
 * the CPU that is the buffer itself (zero-copy); for device memory it is NULL
 * and the bytes travel through lt_dev_get / lt_dev_set (or lt_dev_map_read,
 * which does whichever applies).
 *
 * be == NULL means the CPU backend in every call. Calls that can fail are
 * macros that name the caller's file and line in the error (llm.c's
 * cudaCheck); the compute-like calls (fill, the training-state ops) cannot
 * fail, like the kernels: a device reports a failed launch at its next
 * synchronising call. */
#ifndef LATHE_DEVICE_H
#define LATHE_DEVICE_H

#include <stddef.h>

#include "lathe/graph.h"

/* What a buffer holds, so a device can place it (pinned, pooled, ...). */
typedef enum lt_mem_use {
    LT_MEM_MODEL = 0, /* a model's parameters | gradients | buffers, one block for its life */
    LT_MEM_OPTIM,     /* an optimizer's state, one block for its life */
    LT_MEM_STEP,      /* a graph's step arena blocks (kept across steps) */
    /* host memory a device copies from fast and asynchronously (pinned): the
       host writes it through lt_dev_host(), which is never NULL for it, and
       hands it to lt_dev_set_async as the source. The CPU: plain memory. */
    LT_MEM_STAGING,
} lt_mem_use;

/* A queue of work on a device; NULL is the backend's default stream. The CPU
 * has none: its async copies are done when they return. */
typedef struct lt_stream lt_stream;

/* ---- the backend: name, device ---- */
const char *lt_dev_name(const lt_backend *be); /* "cpu" */
lt_device lt_dev_kind(const lt_backend *be);
/* The backend that owns memory of device d in this build; NULL when none. */
const lt_backend *lt_backend_of(lt_device d);
/* Tests only: lt_backend_of(d) answers be from now on (NULL: the build's own
 * again), so a test backend can stand in for a device this build lacks. */
void lt_backend_of_override(lt_device d, const lt_backend *be);

/* What GEMMs and convolutions may compute in (torch.backends' knobs):
 * f32 throughout (the default, torch's "highest"); TF32 tensor cores
 * (--matmul-precision high|medium); bf16 or fp16 inputs with f32 accumulation
 * and f32 storage (--precision bf16-mixed | 16-mixed on a GPU). */
typedef enum lt_math { LT_MATH_F32 = 0, LT_MATH_TF32, LT_MATH_BF16, LT_MATH_FP16 } lt_math;
/* LT_OK, or LT_EUNSUPPORTED with err naming the mode when be computes f32
 * only (the CPU: its bf16-mixed is the graph's rounding hook, not a mode). */
int lt_dev_set_math(const lt_backend *be, lt_math m, lt_err *err);
const char *lt_math_name(lt_math m); /* "f32", "tf32", "bf16", "fp16" */
/* What be's GEMMs and convolutions run on after lt_dev_set_math(be, m), as
 * the status bar says it: "cpu amx-bf16", "cpu bf16 emulated kernels",
 * "cpu f32", "cuda bf16" (the backend's name up to its first ':' or blank). */
void lt_dev_math_kernels(const lt_backend *be, lt_math m, char *buf, size_t cap);

/* ---- memory ---- */
/* bytes of zeroed memory, 64-byte aligned, on be's device; NULL with err on
 * failure. Free with lt_dev_free and the same use. */
#define lt_dev_alloc(be, bytes, use, err) lt_dev_alloc_at((be), (bytes), (use), (err), __FILE__, __LINE__)
void *lt_dev_alloc_at(const lt_backend *be, size_t bytes, lt_mem_use use, lt_err *err, const char *file, int line);
void lt_dev_free(const lt_backend *be, void *buf, lt_mem_use use);
/* buf as the host may read and write it (buf itself on the CPU), or NULL when
 * it is device memory the host cannot address. */
void *lt_dev_host(const lt_backend *be, void *buf);

/* ---- copies (bytes; pointers may point inside a buffer) ---- */
/* host -> device and device -> host, finished when they return */
#define lt_dev_set(be, dst, src, bytes, err) lt_dev_set_at((be), (dst), (src), (bytes), (err), __FILE__, __LINE__)
#define lt_dev_get(be, dst, src, bytes, err) lt_dev_get_at((be), (dst), (src), (bytes), (err), __FILE__, __LINE__)
int lt_dev_set_at(const lt_backend *be, void *dst, const void *src, size_t bytes, lt_err *err, const char *file,
                  int line);
int lt_dev_get_at(const lt_backend *be, void *dst, const void *src, size_t bytes, lt_err *err, const char *file,
                  int line);
/* The same queued on stream s: the host memory must stay as it is until
 * lt_dev_sync(s) returns. */
#define lt_dev_set_async(be, dst, src, bytes, s, err)                                                                  \
    lt_dev_set_async_at((be), (dst), (src), (bytes), (s), (err), __FILE__, __LINE__)
#define lt_dev_get_async(be, dst, src, bytes, s, err)                                                                  \
    lt_dev_get_async_at((be), (dst), (src), (bytes), (s), (err), __FILE__, __LINE__)
int lt_dev_set_async_at(const lt_backend *be, void *dst, const void *src, size_t bytes, lt_stream *s, lt_err *err,
                        const char *file, int line);
int lt_dev_get_async_at(const lt_backend *be, void *dst, const void *src, size_t bytes, lt_stream *s, lt_err *err,
                        const char *file, int line);
/* device -> device on the same backend */
#define lt_dev_copy(be, dst, src, bytes, err) lt_dev_copy_at((be), (dst), (src), (bytes), (err), __FILE__, __LINE__)
int lt_dev_copy_at(const lt_backend *be, void *dst, const void *src, size_t bytes, lt_err *err, const char *file,
                   int line);
/* A stream of its own (for copies beside the default stream's compute), in
 * *s; LT_OK, or an error code with err. A backend without streams (the CPU)
 * gives NULL, the default stream, whose async copies are done when they
 * return. Free with lt_dev_stream_free (NULL is fine). */
#define lt_dev_stream_create(be, s, err) lt_dev_stream_create_at((be), (s), (err), __FILE__, __LINE__)
int lt_dev_stream_create_at(const lt_backend *be, lt_stream **s, lt_err *err, const char *file, int line);
void lt_dev_stream_free(const lt_backend *be, lt_stream *s);
/* Waits for everything queued on s; reports a failure of any of it. */
#define lt_dev_sync(be, s, err) lt_dev_sync_at((be), (s), (err), __FILE__, __LINE__)
int lt_dev_sync_at(const lt_backend *be, lt_stream *s, lt_err *err, const char *file, int line);
/* x[0..n) = v (v == 0: all bits zero, as memset) */
void lt_dev_fill(const lt_backend *be, float *x, float v, size_t n);

/* bytes at src, readable by the host: src itself where lt_dev_host allows
 * (zero-copy), else a fresh host copy. Hand it back to lt_dev_unmap. NULL
 * with err on failure. */
#define lt_dev_map_read(be, src, bytes, err) lt_dev_map_read_at((be), (src), (bytes), (err), __FILE__, __LINE__)
const void *lt_dev_map_read_at(const lt_backend *be, const void *src, size_t bytes, lt_err *err, const char *file,
                               int line);
void lt_dev_unmap(const lt_backend *be, const void *src, const void *mapped);

/* ---- graphs on a backend ---- */
/* Makes g run on be (NULL: the CPU) right after lt_graph_init: sets g->be and
 * g->device, and for any backend but the CPU puts the tensors' data (their
 * gradients, what ops save for backward, ids and labels, the conv workspace)
 * in be's memory (LT_MEM_STEP blocks kept across steps, so a step after the
 * first allocates nothing on the device), while headers, nodes and the tape
 * stay in host memory. On the CPU the step arena holds both, as ever. */
void lt_graph_bind(lt_graph *g, const lt_backend *be);
/* A tensor on g's device holding host[0..numel): host itself wrapped where
 * g's data is host memory (zero-copy: host must outlive the step), else a
 * copy in the step arena. NULL with err on failure. */
lt_tensor *lt_graph_from_host(lt_graph *g, const float *host, const int *shape, int ndim, lt_err *err);

/* ---- tensors: the backend is the one of t->device ---- */
/* floats [first, first + n) of t's data into dst (host) */
#define lt_tensor_read(t, first, n, dst, err) lt_tensor_read_at((t), (first), (n), (dst), (err), __FILE__, __LINE__)
int lt_tensor_read_at(const lt_tensor *t, size_t first, size_t n, float *dst, lt_err *err, const char *file, int line);
/* t's data (or its grad) readable by the host, as lt_dev_map_read; release
 * with lt_tensor_unmap(t, data-or-grad pointer, mapped). */
const float *lt_tensor_map(const lt_tensor *t, int grad, lt_err *err);
void lt_tensor_unmap(const lt_tensor *t, const float *src, const float *mapped);

/* ---- training-state ops ---- */
/* The optimizer update rules, torch.optim's single-tensor f32 arithmetic. The
 * optimizer turns its hyperparameters (double) into these f32 coefficients
 * once per step (core/optim/<rule>.c says how); a backend applies them
 * element-wise, so every device gets the same scalars. */
typedef enum lt_update_rule {
    LT_UPDATE_SGD = 0,
    LT_UPDATE_ADAM, /* adam and adamw (decoupled_wd) */
    LT_UPDATE_ADADELTA,
    LT_UPDATE_RMSPROP,
    LT_UPDATE_ADAGRAD,
} lt_update_rule;

typedef struct lt_sgd_coef {
    float lr, wd, mom, one_minus_damp;
    int has_wd, has_mom, nesterov, first; /* first: buf = g */
} lt_sgd_coef;

typedef struct lt_adam_coef {
    float wd;        /* coupled weight decay (adam) */
    float decay;     /* decoupled factor 1 - lr*wd (adamw) */
    float w1;        /* lerp weight 1 - beta1 */
    float beta2, c2; /* c2 = 1 - beta2 */
    float bc2_sqrt;  /* sqrt(1 - beta2^t) */
    float eps;
    float neg_step; /* -lr / (1 - beta1^t) */
    int coupled_wd, decoupled_wd, amsgrad;
} lt_adam_coef;

typedef struct lt_adadelta_coef {
    float neg_lr, rho, c, eps, wd; /* c = 1 - rho */
    int has_wd;
} lt_adadelta_coef;

typedef struct lt_rmsprop_coef {
    float neg_lr, alpha, c, w, eps, wd, mom; /* c = w = 1 - alpha (w: lerp weight) */
    int has_wd, has_mom, centered;
} lt_rmsprop_coef;

typedef struct lt_adagrad_coef {
    float neg_clr, eps, wd, init;
    int has_wd, first; /* first: fill sum with init before updating */
} lt_adagrad_coef;

/* One step of one rule: the coefficients, shared by every tensor of the call. */
typedef struct lt_update {
    lt_update_rule rule;
    union {
        lt_sgd_coef sgd;
        lt_adam_coef adam;
        lt_adadelta_coef adadelta;
        lt_rmsprop_coef rmsprop;
        lt_adagrad_coef adagrad;
    } c;
} lt_update;

/* One parameter tensor of an update, device memory: p, g and the rule's state
 * slots s[k] (as the optimizer names them: sgd momentum_buffer; adam exp_avg,
 * exp_avg_sq, max_exp_avg_sq; adadelta square_avg, acc_delta; rmsprop
 * square_avg, momentum_buffer, grad_avg; adagrad sum), n floats each. */
typedef struct lt_update_tensor {
    float *p;
    const float *g;
    float *s[3];
    size_t n;
} lt_update_tensor;

/* Updates nt tensors in order (one call per step: a device may fuse them). */
void lt_dev_optim_update(const lt_backend *be, const lt_update *u, int nt, const lt_update_tensor *ts);
/* sum of x[i]^2, accumulated in double in index order (the gradient norm) */
double lt_dev_sum_squares(const lt_backend *be, const float *x, size_t n);
void lt_dev_scale(const lt_backend *be, float *x, size_t n, float c); /* x *= c */
/* x = clamp(x, -v, v); NaN stays NaN */
void lt_dev_clamp(const lt_backend *be, float *x, size_t n, float v);
/* 1 when some x[i] is not within [-limit, limit] (NaN and inf included) */
int lt_dev_any_above(const lt_backend *be, const float *x, size_t n, float limit);
size_t lt_dev_count_nonfinite(const lt_backend *be, const float *x, size_t n);

#endif
