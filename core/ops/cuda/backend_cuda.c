/* The CUDA backend's base: the context (device, streams, cuBLAS and cuDNN
 * handles, reduction buffers), the kept first error, the workspace, memory
 * and copies, the training-state entries (kernels in state.cu) and the table,
 * whose compute entries are the lt_cu_* functions of cu_dnn.c, elem.cu and
 * cu_rnn.c (cuda_backend.h lists them).
 *
 * Streams: everything runs on ctx.stream in order, except set_async and
 * get_async, which run on the stream they are given (lt_cu_stream). set and
 * get wait for the training stream's earlier work and for their own copy.
 *
 * Errors: the void entries cannot fail (backend.h), so a failed call inside
 * them is kept (lt_cu_check: the first since the last report) and returned,
 * as a negative LT_E* code, by the next get or synchronize of the training
 * stream, which clears it. ctx.err_msg keeps the text (call and the
 * library's error string) of the failure pending or last reported. Entries
 * that return an int (set, copy, the async copies, a side stream's
 * synchronize) return their own failure at once and leave the kept one for
 * the training loop, so a workbench copy never swallows it. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lathe/ops.h"
#include "ops/cuda/cu_state.h"
#include "ops/cuda/cuda_backend.h"

#define CU_ALIGN 64
/* the workspace grows in whole MiB, so nearby sizes do not regrow it */
#define WS_GRAIN ((size_t)1 << 20)
/* reductions' device scratch: the sum's partials, the sum, the count */
#define RED_SUM LT_CU_RED_BLOCKS
#define RED_COUNT (LT_CU_RED_BLOCKS + 1)
#define RED_SLOTS (LT_CU_RED_BLOCKS + 2)

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static lt_err init_err; /* why there is no context, once init ran */
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static int kept_code; /* the kept failure as an LT_E* code */
/* one reduction at a time: they share red_dev and red_host */
static pthread_mutex_t red_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- errors ---- */
static int lt_code_cuda(cudaError_t rc) {
    if (rc == cudaErrorMemoryAllocation) return LT_ENOMEM;
    return rc == cudaErrorInvalidValue ? LT_EINVAL : LT_EIO;
}

static int lt_code_blas(cublasStatus_t rc) {
    if (rc == CUBLAS_STATUS_ALLOC_FAILED) return LT_ENOMEM;
    if (rc == CUBLAS_STATUS_NOT_SUPPORTED || rc == CUBLAS_STATUS_ARCH_MISMATCH) return LT_EUNSUPPORTED;
    return rc == CUBLAS_STATUS_INVALID_VALUE ? LT_EINVAL : LT_EIO;
}

/* cuDNN 9 groups its statuses by thousands: 2xxx bad parameter, 3xxx not
 * supported, 4xxx internal (4003, 4004: allocation failed) */
static int lt_code_dnn(cudnnStatus_t rc) {
    if (rc == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
        rc == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED)
        return LT_ENOMEM;
    if ((int)rc / 1000 == 2) return LT_EINVAL;
    return (int)rc / 1000 == 3 ? LT_EUNSUPPORTED : LT_EIO;
}

/* Keeps the first failure (keep) or notes a reported one's text when none
 * is pending (keep == 0). */
static void note(int keep, int code, int lt, const char *what, const char *name, const char *text) {
    pthread_mutex_lock(&err_lock);
    if (!lt_cuda_ctx.err_code) {
        snprintf(lt_cuda_ctx.err_msg, sizeof lt_cuda_ctx.err_msg, "%s: error %d %s: %s", what, code, name, text);
        if (keep) {
            lt_cuda_ctx.err_code = code;
            kept_code = lt;
        }
    }
    pthread_mutex_unlock(&err_lock);
}

int lt_cu_check(cudaError_t rc, const char *what) {
    if (rc == cudaSuccess) return 1;
    (void)cudaGetLastError(); /* a launch's later status must not repeat it */
    note(1, (int)rc, lt_code_cuda(rc), what, cudaGetErrorName(rc), cudaGetErrorString(rc));
    return 0;
}

int lt_cu_check_blas(cublasStatus_t rc, const char *what) {
    if (rc == CUBLAS_STATUS_SUCCESS) return 1;
    note(1, (int)rc, lt_code_blas(rc), what, cublasGetStatusName(rc), cublasGetStatusString(rc));
    return 0;
}

int lt_cu_check_dnn(cudnnStatus_t rc, const char *what) {
    if (rc == CUDNN_STATUS_SUCCESS) return 1;
    note(1, (int)rc, lt_code_dnn(rc), what, "cudnnStatus_t", cudnnGetErrorString(rc));
    return 0;
}

/* An int entry's own failure, returned at once (its text noted). */
static int direct(cudaError_t rc, const char *what) {
    if (rc == cudaSuccess) return LT_OK;
    (void)cudaGetLastError();
    note(0, (int)rc, 0, what, cudaGetErrorName(rc), cudaGetErrorString(rc));
    return lt_code_cuda(rc);
}

/* The kept failure's code, cleared (its text stays in err_msg); LT_OK if none. */
static int take_kept(void) {
    pthread_mutex_lock(&err_lock);
    int rc = lt_cuda_ctx.err_code ? kept_code : LT_OK;
    lt_cuda_ctx.err_code = 0;
    pthread_mutex_unlock(&err_lock);
    return rc;
}

/* The kept failure's code, left for the next get or synchronize. */
static int peek_kept(void) {
    pthread_mutex_lock(&err_lock);
    int rc = lt_cuda_ctx.err_code ? kept_code : LT_OK;
    pthread_mutex_unlock(&err_lock);
    return rc;
}

/* The text of the last failure noted (what device.c's messages append). */
static const char *cuda_error_text(void) { return lt_cuda_ctx.err_msg[0] ? lt_cuda_ctx.err_msg : NULL; }

/* ---- the workspace: stream-ordered, so growing it waits for nothing ---- */
void *lt_cu_workspace(size_t bytes) {
    lt_cuda *c = &lt_cuda_ctx;
    if (bytes <= c->ws_bytes) return c->ws;
    size_t want = bytes > SIZE_MAX - WS_GRAIN ? bytes : (bytes + WS_GRAIN - 1) / WS_GRAIN * WS_GRAIN;
    if (c->ws) LT_CU(cudaFreeAsync(c->ws, c->stream));
    c->ws = NULL;
    c->ws_bytes = 0;
    void *p = NULL;
    if (!LT_CU(cudaMallocAsync(&p, want, c->stream))) return NULL;
    c->ws = p;
    c->ws_bytes = want;
    return p;
}

/* ---- memory and copies ---- */
/* cudaMalloc's blocks are 256-byte aligned; zeroed on the training stream and
 * waited for, so any stream may use the block at once */
/* One kind of device memory serves every lifetime but LT_MEM_STAGING: pinned
 * host memory the batch uploads copy from without a bounce. */
static void *cuda_alloc(size_t bytes, lt_mem_use use) {
    if (bytes > SIZE_MAX - CU_ALIGN) return NULL;
    size_t size = (bytes + CU_ALIGN - 1) / CU_ALIGN * CU_ALIGN;
    if (!size) size = CU_ALIGN;
    void *p = NULL;
    if (use == LT_MEM_STAGING) {
        if (direct(cudaHostAlloc(&p, size, cudaHostAllocDefault), "cudaHostAlloc")) return NULL;
        memset(p, 0, size);
        return p;
    }
    if (direct(cudaMalloc(&p, size), "cudaMalloc")) return NULL;
    if (direct(cudaMemsetAsync(p, 0, size, lt_cuda_ctx.stream), "cudaMemsetAsync") ||
        direct(cudaStreamSynchronize(lt_cuda_ctx.stream), "cudaStreamSynchronize")) {
        (void)cudaFree(p);
        return NULL;
    }
    return p;
}

/* after the training stream's work on buf (cudaFree alone need not wait for
 * a non-blocking stream) */
static void cuda_free(void *buf, lt_mem_use use) {
    LT_CU(cudaStreamSynchronize(lt_cuda_ctx.stream));
    if (use == LT_MEM_STAGING)
        LT_CU(cudaFreeHost(buf));
    else
        LT_CU(cudaFree(buf));
}

/* pinned host memory (staging, or any pointer inside it) is the host's own;
 * device memory is not */
static void *cuda_host_ptr(void *buf) {
    struct cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, buf) != cudaSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    return a.type == cudaMemoryTypeHost ? buf : NULL;
}

/* a non-blocking stream of the trainer's own (batch uploads) */
static int cuda_stream_create(lt_stream **s) {
    cudaStream_t st = NULL;
    int rc = direct(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    *s = rc ? NULL : (lt_stream *)(void *)st;
    return rc;
}

static void cuda_stream_destroy(lt_stream *s) {
    if (s) LT_CU(cudaStreamDestroy((cudaStream_t)(void *)s));
}

static int cuda_set(void *dst, const void *host_src, size_t bytes) {
    if (!bytes) return LT_OK;
    cudaStream_t st = lt_cuda_ctx.stream;
    int rc = direct(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, st), "cudaMemcpyAsync (set)");
    return rc ? rc : direct(cudaStreamSynchronize(st), "cudaStreamSynchronize (set)");
}

/* a synchronising entry: its own failure or the kept one */
static int cuda_get(void *host_dst, const void *src, size_t bytes) {
    cudaStream_t st = lt_cuda_ctx.stream;
    if (bytes) LT_CU(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, st));
    LT_CU(cudaStreamSynchronize(st));
    return take_kept();
}

static int cuda_set_async(void *dst, const void *host_src, size_t bytes, lt_stream *s) {
    if (!bytes) return LT_OK;
    return direct(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, lt_cu_stream(s)),
                  "cudaMemcpyAsync (set_async)");
}

static int cuda_get_async(void *host_dst, const void *src, size_t bytes, lt_stream *s) {
    if (!bytes) return LT_OK;
    return direct(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, lt_cu_stream(s)),
                  "cudaMemcpyAsync (get_async)");
}

static int cuda_copy(void *dst, const void *src, size_t bytes) {
    if (!bytes || dst == src) return LT_OK;
    return direct(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, lt_cuda_ctx.stream),
                  "cudaMemcpyAsync (copy)");
}

/* the training stream (s NULL or ctx.stream) reports the kept failure; another
 * stream reports only its own */
static int cuda_synchronize(lt_stream *s) {
    cudaStream_t st = lt_cu_stream(s);
    if (st != lt_cuda_ctx.stream) return direct(cudaStreamSynchronize(st), "cudaStreamSynchronize (side)");
    LT_CU(cudaStreamSynchronize(st));
    return take_kept();
}

/* +0.0f is all zero bits: a memset; any other value (-0.0f, NaN) a kernel */
static void cuda_fill(float *x, float v, size_t n) {
    if (v == 0.0f && !signbit(v))
        LT_CU(cudaMemsetAsync(x, 0, n * sizeof(float), lt_cuda_ctx.stream));
    else
        LT_CU((cudaError_t)lt_cu_fill_launch(x, v, n, lt_cuda_ctx.stream));
}

/* ---- training-state ops ---- */
/* lathe/device.h's coefficients, field for field (by name: a field renamed
 * or added there fails to compile here), into cu_state.h's mirror */
#define F(x) .x = c->x
static void mirror_update(const lt_update *u, lt_cu_update *m) {
    memset(m, 0, sizeof *m);
    switch (u->rule) {
    case LT_UPDATE_SGD: {
        const lt_sgd_coef *c = &u->c.sgd;
        m->rule = LT_CU_SGD;
        m->c.sgd = (lt_cu_sgd){F(lr), F(wd), F(mom), F(one_minus_damp), F(has_wd), F(has_mom), F(nesterov), F(first)};
        break;
    }
    case LT_UPDATE_ADAM: {
        const lt_adam_coef *c = &u->c.adam;
        m->rule = LT_CU_ADAM;
        m->c.adam = (lt_cu_adam){F(wd),  F(decay),    F(w1),         F(beta2),        F(c2),     F(bc2_sqrt),
                                 F(eps), F(neg_step), F(coupled_wd), F(decoupled_wd), F(amsgrad)};
        break;
    }
    case LT_UPDATE_ADADELTA: {
        const lt_adadelta_coef *c = &u->c.adadelta;
        m->rule = LT_CU_ADADELTA;
        m->c.adadelta = (lt_cu_adadelta){F(neg_lr), F(rho), F(c), F(eps), F(wd), F(has_wd)};
        break;
    }
    case LT_UPDATE_RMSPROP: {
        const lt_rmsprop_coef *c = &u->c.rmsprop;
        m->rule = LT_CU_RMSPROP;
        m->c.rmsprop =
            (lt_cu_rmsprop){F(neg_lr), F(alpha), F(c), F(w), F(eps), F(wd), F(mom), F(has_wd), F(has_mom), F(centered)};
        break;
    }
    case LT_UPDATE_ADAGRAD: {
        const lt_adagrad_coef *c = &u->c.adagrad;
        m->rule = LT_CU_ADAGRAD;
        m->c.adagrad = (lt_cu_adagrad){F(neg_clr), F(eps), F(wd), F(init), F(has_wd), F(first)};
        break;
    }
    default: m->rule = -1; /* the launcher refuses it: kept as an error */
    }
}
#undef F

/* All nt tensors in one launch per LT_CU_UPDATE_GROUP of them. */
static void cuda_optim_update(const lt_update *u, int nt, const lt_update_tensor *ts) {
    lt_cu_update m;
    mirror_update(u, &m);
    lt_cu_update_tensor group[LT_CU_UPDATE_GROUP];
    for (int first = 0; first < nt; first += LT_CU_UPDATE_GROUP) {
        int k = nt - first < LT_CU_UPDATE_GROUP ? nt - first : LT_CU_UPDATE_GROUP;
        for (int i = 0; i < k; i++) {
            const lt_update_tensor *t = &ts[first + i];
            group[i] = (lt_cu_update_tensor){t->p, t->g, {t->s[0], t->s[1], t->s[2]}, t->n};
        }
        if (!LT_CU((cudaError_t)lt_cu_optim_update_launch(&m, k, group, lt_cuda_ctx.stream))) return;
    }
}

/* The scalar reductions wait for the training stream. With a failure kept
 * they return its negative code where the type allows (a sum of squares is
 * never negative: sqrt makes the norm NaN; any_above's nonzero reads as
 * "above"), count_nonfinite returns n (everything suspect), and the failure
 * stays kept for the next get or synchronize to report with its text. */
static int reduce_wait(void) {
    LT_CU(cudaStreamSynchronize(lt_cuda_ctx.stream));
    return peek_kept();
}

static unsigned long long count_on_device(const float *x, size_t n, int above, float limit, int *rc) {
    lt_cuda *c = &lt_cuda_ctx;
    unsigned long long *count = (unsigned long long *)(void *)(c->red_dev + RED_COUNT);
    pthread_mutex_lock(&red_lock);
    LT_CU(cudaMemsetAsync(count, 0, sizeof *count, c->stream));
    LT_CU((cudaError_t)lt_cu_count_launch(x, n, above, limit, count, c->stream));
    LT_CU(cudaMemcpyAsync(c->red_host + 1, count, sizeof *count, cudaMemcpyDeviceToHost, c->stream));
    *rc = reduce_wait();
    unsigned long long r;
    memcpy(&r, c->red_host + 1, sizeof r);
    pthread_mutex_unlock(&red_lock);
    return r;
}

/* in double; the order is not the CPU's index order (a block tree), so the
 * result differs from the CPU's in the last bits, reproducibly for a given n */
static double cuda_sum_squares(const float *x, size_t n) {
    lt_cuda *c = &lt_cuda_ctx;
    pthread_mutex_lock(&red_lock);
    LT_CU((cudaError_t)lt_cu_sum_squares_launch(x, n, c->red_dev, c->red_dev + RED_SUM, c->stream));
    LT_CU(cudaMemcpyAsync(c->red_host, c->red_dev + RED_SUM, sizeof(double), cudaMemcpyDeviceToHost, c->stream));
    int rc = reduce_wait();
    double s = c->red_host[0];
    pthread_mutex_unlock(&red_lock);
    return rc ? (double)rc : s;
}

static void cuda_scale(float *x, size_t n, float c) {
    LT_CU((cudaError_t)lt_cu_scale_launch(x, n, c, lt_cuda_ctx.stream));
}

static void cuda_clamp(float *x, size_t n, float v) {
    LT_CU((cudaError_t)lt_cu_clamp_launch(x, n, v, lt_cuda_ctx.stream));
}

static int cuda_any_above(const float *x, size_t n, float limit) {
    int rc;
    unsigned long long k = count_on_device(x, n, 1, limit, &rc);
    return rc ? rc : k > 0;
}

static size_t cuda_count_nonfinite(const float *x, size_t n) {
    int rc;
    unsigned long long k = count_on_device(x, n, 0, 0.0f, &rc);
    return rc ? n : (size_t)k;
}

/* Every mode is accepted: TF32 lets cuBLAS use tensor cores, and ctx.math
 * tells cu_dnn.c what GEMMs and convolutions may compute in. */
static int cuda_set_math(const lt_backend *be, lt_math m) {
    if ((unsigned)m > LT_MATH_FP16) return LT_EUNSUPPORTED;
    lt_cuda *c = lt_cu(be);
    c->math = m;
    LT_CUBLAS(cublasSetMathMode(c->cublas, m == LT_MATH_TF32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    return LT_OK;
}

/* ---- the context and the table ---- */
lt_cuda lt_cuda_ctx = {
    .be =
        {
            .name = lt_cuda_ctx.name,
            /* memory, copies, synchronisation, training-state ops */
            .device = LT_DEV_CUDA,
            .alloc = cuda_alloc,
            .free = cuda_free,
            .host_ptr = cuda_host_ptr,
            .set = cuda_set,
            .get = cuda_get,
            .set_async = cuda_set_async,
            .get_async = cuda_get_async,
            .copy = cuda_copy,
            .synchronize = cuda_synchronize,
            .stream_create = cuda_stream_create,
            .stream_destroy = cuda_stream_destroy,
            .fill = cuda_fill,
            .optim_update = cuda_optim_update,
            .sum_squares = cuda_sum_squares,
            .scale = cuda_scale,
            .clamp = cuda_clamp,
            .any_above = cuda_any_above,
            .count_nonfinite = cuda_count_nonfinite,
            .set_math = cuda_set_math,
            .error_text = cuda_error_text,
            /* compute */
            .supports_op = lt_cu_supports,
            .linear_forward = lt_cu_linear_forward,
            .linear_backward = lt_cu_linear_backward,
            .conv2d_scratch_floats = lt_cu_conv2d_scratch_floats,
            .conv2d_forward = lt_cu_conv2d_forward,
            .conv2d_backward = lt_cu_conv2d_backward,
            .maxpool2d_forward = lt_cu_maxpool2d_forward,
            .maxpool2d_backward = lt_cu_maxpool2d_backward,
            .maxpool2d_backward_fill = lt_cu_maxpool2d_backward_fill,
            .avgpool2d_forward = lt_cu_avgpool2d_forward,
            .avgpool2d_backward = lt_cu_avgpool2d_backward,
            .relu_forward = lt_cu_relu_forward,
            .relu_backward = lt_cu_relu_backward,
            .tanh_forward = lt_cu_tanh_forward,
            .tanh_backward = lt_cu_tanh_backward,
            .sigmoid_forward = lt_cu_sigmoid_forward,
            .sigmoid_backward = lt_cu_sigmoid_backward,
            .gelu_forward = lt_cu_gelu_forward,
            .gelu_backward = lt_cu_gelu_backward,
            .elu_forward = lt_cu_elu_forward,
            .elu_backward = lt_cu_elu_backward,
            .softmax_forward = lt_cu_softmax_forward,
            .softmax_backward = lt_cu_softmax_backward,
            .log_softmax_forward = lt_cu_log_softmax_forward,
            .log_softmax_backward = lt_cu_log_softmax_backward,
            .dropout_forward = lt_cu_dropout_forward,
            .dropout_backward = lt_cu_dropout_backward,
            .batchnorm2d_forward = lt_cu_batchnorm2d_forward,
            .batchnorm2d_backward = lt_cu_batchnorm2d_backward,
            .cross_entropy_forward = lt_cu_cross_entropy_forward,
            .cross_entropy_backward = lt_cu_cross_entropy_backward,
            .nll_forward = lt_cu_nll_forward,
            .nll_backward = lt_cu_nll_backward,
            .mse_forward = lt_cu_mse_forward,
            .mse_backward = lt_cu_mse_backward,
            .add_forward = lt_cu_add_forward,
            .add_backward = lt_cu_add_backward,
            .mul_forward = lt_cu_mul_forward,
            .mul_backward = lt_cu_mul_backward,
            .scale_forward = lt_cu_scale_forward,
            .scale_backward = lt_cu_scale_backward,
            .sum_forward = lt_cu_sum_forward,
            .sum_backward = lt_cu_sum_backward,
            .embedding_forward = lt_cu_embedding_forward,
            .embedding_backward = lt_cu_embedding_backward,
            .lstm_save_floats = lt_cu_lstm_save_floats,
            .lstm_scratch_floats = lt_cu_lstm_scratch_floats,
            .lstm_forward = lt_cu_lstm_forward,
            .lstm_backward = lt_cu_lstm_backward,
            .gru_save_floats = lt_cu_gru_save_floats,
            .gru_scratch_floats = lt_cu_gru_scratch_floats,
            .gru_forward = lt_cu_gru_forward,
            .gru_backward = lt_cu_gru_backward,
        },
};

/* Why cudaGetDeviceCount found no usable GPU, in words, then the error. */
static const char *no_gpu_reason(cudaError_t rc) {
    switch ((int)rc) {
    case 34: return "no CUDA driver (only its stub library)"; /* cudaErrorStubLibrary */
    case 35: return "no CUDA driver";                         /* cudaErrorInsufficientDriver */
    case 100: return "no CUDA device";                        /* cudaErrorNoDevice */
    default: return "CUDA unusable";
    }
}

static void init_fail(const char *call, int code, const char *name, const char *text) {
    lt_seterr(&init_err, LT_EUNSUPPORTED, "%s: %s failed: error %d %s: %s", lt_cuda_ctx.name, call, code, name, text);
}

/* Makes the context on device 0; on failure undoes what it made and leaves
 * the reason in init_err. */
static void init_context(void) {
    lt_cuda *c = &lt_cuda_ctx;
    int n = 0;
    cudaError_t rc = cudaGetDeviceCount(&n);
    if (rc != cudaSuccess) {
        (void)cudaGetLastError();
        lt_seterr(&init_err, LT_EUNSUPPORTED, "%s (cudaGetDeviceCount: error %d %s: %s)", no_gpu_reason(rc), (int)rc,
                  cudaGetErrorName(rc), cudaGetErrorString(rc));
        return;
    }
    if (n < 1) {
        lt_seterr(&init_err, LT_EUNSUPPORTED, "no CUDA device (cudaGetDeviceCount found none)");
        return;
    }
    c->device = 0;
    snprintf(c->name, sizeof c->name, "cuda:0");
    struct cudaDeviceProp prop;
    if ((rc = cudaSetDevice(0)) != cudaSuccess || (rc = cudaGetDeviceProperties(&prop, 0)) != cudaSuccess) {
        init_fail("cudaSetDevice/cudaGetDeviceProperties", (int)rc, cudaGetErrorName(rc), cudaGetErrorString(rc));
        return;
    }
    snprintf(c->name, sizeof c->name, "cuda:0 %.*s", (int)sizeof c->name - 8, prop.name);
    if (prop.major < 8) {
        lt_seterr(&init_err, LT_EUNSUPPORTED, "%s: compute capability %d.%d; this build runs on 8.0 or newer", c->name,
                  prop.major, prop.minor);
        return;
    }
    const char *call = NULL;
    if ((rc = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking)) != cudaSuccess ||
        (rc = cudaStreamCreateWithFlags(&c->side, cudaStreamNonBlocking)) != cudaSuccess)
        call = "cudaStreamCreateWithFlags";
    else if ((rc = cudaMalloc((void **)&c->red_dev, RED_SLOTS * sizeof(double))) != cudaSuccess)
        call = "cudaMalloc";
    else if ((rc = cudaMallocHost((void **)&c->red_host, 2 * sizeof(double))) != cudaSuccess)
        call = "cudaMallocHost";
    if (call) {
        init_fail(call, (int)rc, cudaGetErrorName(rc), cudaGetErrorString(rc));
        goto undo;
    }
    cublasStatus_t brc;
    if ((brc = cublasCreate(&c->cublas)) != CUBLAS_STATUS_SUCCESS ||
        (brc = cublasSetStream(c->cublas, c->stream)) != CUBLAS_STATUS_SUCCESS ||
        (brc = cublasSetPointerMode(c->cublas, CUBLAS_POINTER_MODE_HOST)) != CUBLAS_STATUS_SUCCESS ||
        (brc = cublasSetMathMode(c->cublas, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS) {
        init_fail("cuBLAS setup", (int)brc, cublasGetStatusName(brc), cublasGetStatusString(brc));
        goto undo;
    }
    cudnnStatus_t drc;
    if ((drc = cudnnCreate(&c->cudnn)) != CUDNN_STATUS_SUCCESS ||
        (drc = cudnnSetStream(c->cudnn, c->stream)) != CUDNN_STATUS_SUCCESS) {
        init_fail("cuDNN setup", (int)drc, "cudnnStatus_t", cudnnGetErrorString(drc));
        goto undo;
    }
    c->math = LT_MATH_F32;
    c->ready = 1;
    return;
undo:
    if (c->cudnn) cudnnDestroy(c->cudnn);
    if (c->cublas) cublasDestroy(c->cublas);
    if (c->red_host) cudaFreeHost(c->red_host);
    if (c->red_dev) cudaFree(c->red_dev);
    if (c->side) cudaStreamDestroy(c->side);
    if (c->stream) cudaStreamDestroy(c->stream);
    c->cudnn = NULL;
    c->cublas = NULL;
    c->red_host = c->red_dev = NULL;
    c->side = c->stream = NULL;
    (void)cudaGetLastError();
}

/* The training stream, for the GPU ranks' collectives (core/dist/comm_nccl.c
 * runs NCCL on it, in order with the kernels); NULL before the context. */
void *lt_cuda_training_stream(void) { return lt_cuda_ctx.ready ? (void *)lt_cuda_ctx.stream : NULL; }

/* The first call makes the context (once, whichever thread comes first);
 * every call after returns the same table or the same reason. */
const lt_backend *lt_backend_cuda(lt_err *err) {
    pthread_once(&init_once, init_context);
    if (lt_cuda_ctx.ready) return &lt_cuda_ctx.be;
    lt_seterr(err, init_err.code ? init_err.code : LT_EUNSUPPORTED, "%s", init_err.msg);
    return NULL;
}
