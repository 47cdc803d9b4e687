/* ops/cuda/state.cu: the training-state kernels of the CUDA backend (fill,
 * scale, clamp, the reductions, the optimizer update) and their launchers
 * (cu_state.h). Plain types only: no lathe header is C++-clean.
 *
 * Rounding: the element-wise updates must give the CPU's bits (core/ops/cpu/
 * optim_update.c, built with -std=c11, so GCC contracts nothing into an FMA).
 * Every float operation below is therefore written with the round-to-nearest
 * intrinsics (__fadd_rn, __fsub_rn, __fmul_rn, __fdiv_rn, __fsqrt_rn), which
 * nvcc never merges into an FMA whatever -fmad says, in the CPU's order of
 * operations. Denormals are kept (nvcc's default -ftz=false), as on the CPU. */
#include <cuda_runtime.h>

#include "cu_state.h"

#define THREADS 256
/* enough blocks of THREADS to fill an H100 several times; grid-stride beyond */
#define MAX_BLOCKS 8192
/* elements one block of the optimizer update takes: 16 per thread */
#define UPDATE_CHUNK (THREADS * 16)

static unsigned blocks_for(size_t n, size_t cap) {
    size_t b = (n + THREADS - 1) / THREADS;
    return (unsigned)(b < cap ? b : cap);
}

/* The launch's status; a fault while the kernel runs shows at the next sync. */
static int launched(void) { return (int)cudaGetLastError(); }

__device__ __forceinline__ size_t first_index() { return blockIdx.x * (size_t)blockDim.x + threadIdx.x; }
__device__ __forceinline__ size_t grid_stride() { return (size_t)gridDim.x * blockDim.x; }

/* ---- fill, scale, clamp ---- */
__global__ static void fill_k(float *x, float v, size_t n) {
    for (size_t i = first_index(); i < n; i += grid_stride()) x[i] = v;
}

__global__ static void scale_k(float *x, size_t n, float c) {
    for (size_t i = first_index(); i < n; i += grid_stride()) x[i] = __fmul_rn(x[i], c);
}

/* the CPU's expression: a NaN fails both tests and stays */
__global__ static void clamp_k(float *x, size_t n, float v) {
    for (size_t i = first_index(); i < n; i += grid_stride()) {
        float y = x[i];
        x[i] = y > v ? v : y < -v ? -v : y;
    }
}

extern "C" int lt_cu_fill_launch(float *x, float v, size_t n, void *stream) {
    if (!n) return 0;
    fill_k<<<blocks_for(n, MAX_BLOCKS), THREADS, 0, (cudaStream_t)stream>>>(x, v, n);
    return launched();
}

extern "C" int lt_cu_scale_launch(float *x, size_t n, float c, void *stream) {
    if (!n) return 0;
    scale_k<<<blocks_for(n, MAX_BLOCKS), THREADS, 0, (cudaStream_t)stream>>>(x, n, c);
    return launched();
}

extern "C" int lt_cu_clamp_launch(float *x, size_t n, float v, void *stream) {
    if (!n) return 0;
    clamp_k<<<blocks_for(n, MAX_BLOCKS), THREADS, 0, (cudaStream_t)stream>>>(x, n, v);
    return launched();
}

/* ---- reductions ---- */
/* one count per thread, summed in the block, one atomic per block */
__global__ static void count_k(const float *x, size_t n, int above, float limit, unsigned long long *count) {
    __shared__ unsigned long long part[THREADS];
    unsigned long long c = 0;
    for (size_t i = first_index(); i < n; i += grid_stride()) {
        float v = x[i];
        c += above ? !(fabsf(v) <= limit) : !isfinite(v);
    }
    part[threadIdx.x] = c;
    __syncthreads();
    for (unsigned s = THREADS / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0 && part[0]) atomicAdd(count, part[0]);
}

extern "C" int lt_cu_count_launch(const float *x, size_t n, int above, float limit, unsigned long long *count,
                                  void *stream) {
    if (!n) return 0;
    count_k<<<blocks_for(n, MAX_BLOCKS), THREADS, 0, (cudaStream_t)stream>>>(x, n, above, limit, count);
    return launched();
}

/* Squares in double are exact (a float has 24 significant bits); only the
 * additions round, in a fixed order for a given n. */
__global__ static void sumsq_blocks_k(const float *x, size_t n, double *partials) {
    __shared__ double part[THREADS];
    double s = 0.0;
    for (size_t i = first_index(); i < n; i += grid_stride()) {
        double d = (double)x[i];
        s = __dadd_rn(s, __dmul_rn(d, d));
    }
    part[threadIdx.x] = s;
    __syncthreads();
    for (unsigned k = THREADS / 2; k > 0; k >>= 1) {
        if (threadIdx.x < k) part[threadIdx.x] = __dadd_rn(part[threadIdx.x], part[threadIdx.x + k]);
        __syncthreads();
    }
    if (threadIdx.x == 0) partials[blockIdx.x] = part[0];
}

/* one block of LT_CU_RED_BLOCKS threads adds the nb partials */
__global__ static void sumsq_final_k(const double *partials, unsigned nb, double *result) {
    __shared__ double part[LT_CU_RED_BLOCKS];
    part[threadIdx.x] = threadIdx.x < nb ? partials[threadIdx.x] : 0.0;
    __syncthreads();
    for (unsigned k = LT_CU_RED_BLOCKS / 2; k > 0; k >>= 1) {
        if (threadIdx.x < k) part[threadIdx.x] = __dadd_rn(part[threadIdx.x], part[threadIdx.x + k]);
        __syncthreads();
    }
    if (threadIdx.x == 0) result[0] = part[0];
}

extern "C" int lt_cu_sum_squares_launch(const float *x, size_t n, double *partials, double *result, void *stream) {
    cudaStream_t st = (cudaStream_t)stream;
    unsigned nb = n ? blocks_for(n, LT_CU_RED_BLOCKS) : 0;
    if (nb) {
        sumsq_blocks_k<<<nb, THREADS, 0, st>>>(x, n, partials);
        int rc = launched();
        if (rc) return rc;
    }
    sumsq_final_k<<<1, LT_CU_RED_BLOCKS, 0, st>>>(partials, nb, result);
    return launched();
}

/* ---- the optimizer update ----
 * The rules of core/ops/cpu/optim_update.c, one element at a time, each
 * operation of the CPU's expression in its order (left to right: c2 * G * G
 * is (c2 * G) * G). */
__device__ __forceinline__ float add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float sub(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float div_(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ float sqrt_(float a) { return __fsqrt_rn(a); }

/* torch.lerp as ATen computes it (ov_lerp) */
__device__ __forceinline__ float lerp_(float a, float b, float w) {
    if (fabsf(w) < 0.5f) return add(a, mul(w, sub(b, a)));
    return sub(b, mul(sub(b, a), sub(1.0f, w)));
}

__device__ __forceinline__ void sgd_el(const lt_cu_sgd &c, float *p, const float *g, float *buf, size_t i) {
    float P = p[i], G = g[i];
    if (c.has_wd) G = add(G, mul(c.wd, P));
    if (c.has_mom) {
        float B = c.first ? G : add(mul(buf[i], c.mom), mul(c.one_minus_damp, G));
        buf[i] = B;
        G = c.nesterov ? add(G, mul(c.mom, B)) : B;
    }
    p[i] = add(P, mul(-c.lr, G));
}

__device__ __forceinline__ void adam_el(const lt_cu_adam &c, float *p, const float *g, float *m, float *v, float *vmax,
                                        size_t i) {
    float P = p[i], G = g[i];
    if (c.decoupled_wd) P = mul(P, c.decay);
    if (c.coupled_wd) G = add(G, mul(c.wd, P));
    float M = lerp_(m[i], G, c.w1);
    float V = add(mul(v[i], c.beta2), mul(mul(c.c2, G), G));
    m[i] = M;
    v[i] = V;
    if (c.amsgrad) {
        float X = vmax[i];
        V = X > V ? X : V; /* ov_max(vmax, V): V unless vmax is greater */
        vmax[i] = V;
    }
    float denom = add(div_(sqrt_(V), c.bc2_sqrt), c.eps);
    p[i] = add(P, div_(mul(c.neg_step, M), denom));
}

__device__ __forceinline__ void adadelta_el(const lt_cu_adadelta &c, float *p, const float *g, float *sq, float *acc,
                                            size_t i) {
    float P = p[i], G = g[i];
    if (c.has_wd) G = add(G, mul(c.wd, P));
    float S = add(mul(sq[i], c.rho), mul(mul(c.c, G), G));
    float sd = sqrt_(add(S, c.eps));
    float A = acc[i];
    float delta = mul(div_(sqrt_(add(A, c.eps)), sd), G);
    A = add(mul(A, c.rho), mul(mul(c.c, delta), delta));
    sq[i] = S;
    acc[i] = A;
    p[i] = add(P, mul(c.neg_lr, delta));
}

__device__ __forceinline__ void rmsprop_el(const lt_cu_rmsprop &c, float *p, const float *g, float *sq, float *buf,
                                           float *ga, size_t i) {
    float P = p[i], G = g[i];
    if (c.has_wd) G = add(G, mul(c.wd, P));
    float S = add(mul(sq[i], c.alpha), mul(mul(c.c, G), G));
    sq[i] = S;
    float avg;
    if (c.centered) {
        float A = lerp_(ga[i], G, c.w);
        ga[i] = A;
        avg = add(sqrt_(add(S, mul(mul(-1.0f, A), A))), c.eps);
    } else {
        avg = add(sqrt_(S), c.eps);
    }
    if (c.has_mom) {
        float B = add(mul(buf[i], c.mom), div_(G, avg));
        buf[i] = B;
        P = add(P, mul(c.neg_lr, B));
    } else {
        P = add(P, div_(mul(c.neg_lr, G), avg));
    }
    p[i] = P;
}

__device__ __forceinline__ void adagrad_el(const lt_cu_adagrad &c, float *p, const float *g, float *sum, size_t i) {
    float P = p[i], G = g[i];
    if (c.has_wd) G = add(G, mul(c.wd, P));
    float S = add(c.first ? c.init : sum[i], mul(mul(1.0f, G), G));
    sum[i] = S;
    p[i] = add(P, div_(mul(c.neg_clr, G), add(sqrt_(S), c.eps)));
}

/* A group of tensors, passed by value as the kernel's argument (under the
 * 4 KiB parameter limit): block b works on the tensor whose first_block is the
 * last one <= b, elements [UPDATE_CHUNK * (b - first_block), ...). */
struct update_slot {
    float *p;
    const float *g;
    float *s0, *s1, *s2;
    size_t n;
    unsigned first_block;
};
struct update_group {
    update_slot t[LT_CU_UPDATE_GROUP];
    int nt;
};

template <int RULE> __global__ static void update_k(const lt_cu_update u, const update_group grp) {
    int k = 0;
    while (k + 1 < grp.nt && grp.t[k + 1].first_block <= blockIdx.x) k++;
    const update_slot &t = grp.t[k];
    size_t start = (size_t)(blockIdx.x - t.first_block) * UPDATE_CHUNK;
    size_t end = start + UPDATE_CHUNK < t.n ? start + UPDATE_CHUNK : t.n;
    for (size_t i = start + threadIdx.x; i < end; i += THREADS) {
        switch (RULE) {
        case LT_CU_SGD: sgd_el(u.c.sgd, t.p, t.g, t.s0, i); break;
        case LT_CU_ADAM: adam_el(u.c.adam, t.p, t.g, t.s0, t.s1, t.s2, i); break;
        case LT_CU_ADADELTA: adadelta_el(u.c.adadelta, t.p, t.g, t.s0, t.s1, i); break;
        case LT_CU_RMSPROP: rmsprop_el(u.c.rmsprop, t.p, t.g, t.s0, t.s1, t.s2, i); break;
        case LT_CU_ADAGRAD: adagrad_el(u.c.adagrad, t.p, t.g, t.s0, i); break;
        }
    }
}

static int launch_group(const lt_cu_update *u, const update_group *grp, unsigned blocks, cudaStream_t st) {
    switch (u->rule) {
    case LT_CU_SGD: update_k<LT_CU_SGD><<<blocks, THREADS, 0, st>>>(*u, *grp); break;
    case LT_CU_ADAM: update_k<LT_CU_ADAM><<<blocks, THREADS, 0, st>>>(*u, *grp); break;
    case LT_CU_ADADELTA: update_k<LT_CU_ADADELTA><<<blocks, THREADS, 0, st>>>(*u, *grp); break;
    case LT_CU_RMSPROP: update_k<LT_CU_RMSPROP><<<blocks, THREADS, 0, st>>>(*u, *grp); break;
    case LT_CU_ADAGRAD: update_k<LT_CU_ADAGRAD><<<blocks, THREADS, 0, st>>>(*u, *grp); break;
    default: return (int)cudaErrorInvalidValue;
    }
    return launched();
}

extern "C" int lt_cu_optim_update_launch(const lt_cu_update *u, int nt, const lt_cu_update_tensor *ts, void *stream) {
    static_assert(sizeof(update_group) + sizeof(lt_cu_update) <= 4096, "kernel arguments over 4 KiB");
    update_group grp;
    unsigned blocks = 0;
    grp.nt = 0;
    for (int i = 0; i < nt; i++) {
        const lt_cu_update_tensor *t = &ts[i];
        if (!t->n) continue;
        update_slot *s = &grp.t[grp.nt++];
        s->p = t->p;
        s->g = t->g;
        s->s0 = t->s[0];
        s->s1 = t->s[1];
        s->s2 = t->s[2];
        s->n = t->n;
        s->first_block = blocks;
        blocks += (unsigned)((t->n + UPDATE_CHUNK - 1) / UPDATE_CHUNK);
        if (grp.nt == LT_CU_UPDATE_GROUP) {
            int rc = launch_group(u, &grp, blocks, (cudaStream_t)stream);
            if (rc) return rc;
            grp.nt = 0;
            blocks = 0;
        }
    }
    return grp.nt ? launch_group(u, &grp, blocks, (cudaStream_t)stream) : 0;
}
