/* ops/cuda/elem.cu: the CUDA backend's own kernels (launchers in cu_elem.h):
 * fused bias + activation, activations, pooling with argmax, dropout
 * (Philox4x32-10), losses, reductions in double, arithmetic, embedding and
 * batch-norm helpers. Each follows its CPU kernel in core/ops/cpu/ (the same
 * formulas, the same tie and NaN rules); sums that the CPU takes in double are
 * taken in double here, in a fixed order (no atomics), so they repeat bit for
 * bit. Element loops are grid-stride loops over size_t indices. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "cu_elem.h"

#define THREADS 256
#define MAX_BLOCKS 65535u

static unsigned blocks_for(size_t n) {
    size_t b = (n + THREADS - 1) / THREADS;
    return b > MAX_BLOCKS ? MAX_BLOCKS : (unsigned)b;
}

#define GRID_STRIDE(i, n)                                                                                              \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

#define LAUNCH(kernel, n, stream, ...)                                                                                 \
    do {                                                                                                               \
        if ((n) == 0) return 0;                                                                                        \
        kernel<<<blocks_for(n), THREADS, 0, (cudaStream_t)(stream)>>>(__VA_ARGS__);                                    \
        return (int)cudaGetLastError();                                                                                \
    } while (0)

/* ---- block reductions (blockDim.x a multiple of 32, at most 1024) ---- */
__device__ static double block_sum_d(double v) {
    __shared__ double sh[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
    __syncthreads(); /* sh may still be read by a previous call */
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    int nw = (blockDim.x + 31) >> 5;
    v = threadIdx.x < nw ? sh[threadIdx.x] : 0.0;
    if (wid == 0)
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return v; /* valid in thread 0 */
}

__device__ static float block_sum_f(float v) {
    __shared__ float shf[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) shf[wid] = v;
    __syncthreads();
    int nw = (blockDim.x + 31) >> 5;
    v = threadIdx.x < nw ? shf[threadIdx.x] : 0.0f;
    if (wid == 0)
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

/* the maximum, broadcast to every thread */
__device__ static float block_max_all(float v) {
    __shared__ float shm[32];
    __shared__ float res;
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, o));
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) shm[wid] = v;
    __syncthreads();
    int nw = (blockDim.x + 31) >> 5;
    v = threadIdx.x < nw ? shm[threadIdx.x] : -INFINITY;
    if (wid == 0) {
        for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, o));
        if (lane == 0) res = v;
    }
    __syncthreads();
    return res;
}

/* ---- fill, bias + activation, masks, channel sums ---- */
__global__ static void fill_k(float *x, float v, size_t n) {
    GRID_STRIDE(i, n) x[i] = v;
}
extern "C" int lt_cuk_fill(float *x, float v, size_t n, void *stream) { LAUNCH(fill_k, n, stream, x, v, n); }

__global__ static void bias_act_k(float *out, const float *b, size_t n, int C, size_t inner, int relu) {
    GRID_STRIDE(i, n) {
        float o = out[i];
        if (b) o += b[(i / inner) % (size_t)C];
        if (relu) o = o < 0.0f ? 0.0f : o; /* NaN passes through */
        out[i] = o;
    }
}
extern "C" int lt_cuk_bias_act(float *out, const float *b, size_t n, int C, size_t inner, int relu, void *stream) {
    if (!b && !relu) return 0;
    LAUNCH(bias_act_k, n, stream, out, b, n, C, inner, relu);
}

__global__ static void relu_mask_k(float *dout, const float *out, size_t n) {
    GRID_STRIDE(i, n) dout[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}
extern "C" int lt_cuk_relu_mask(float *dout, const float *out, size_t n, void *stream) {
    LAUNCH(relu_mask_k, n, stream, dout, out, n);
}

/* one block per channel */
__global__ static void chansum_k(float *db, const float *x, int B, int C, size_t inner) {
    int c = blockIdx.x;
    size_t total = (size_t)B * inner;
    double s = 0.0;
    for (size_t k = threadIdx.x; k < total; k += blockDim.x) {
        size_t b = k / inner, r = k % inner;
        s += (double)x[(b * (size_t)C + (size_t)c) * inner + r];
    }
    s = block_sum_d(s);
    if (threadIdx.x == 0) db[c] += (float)s;
}
extern "C" int lt_cuk_chansum_acc(float *db, const float *x, int B, int C, size_t inner, void *stream) {
    if (B <= 0 || C <= 0 || inner == 0) return 0;
    chansum_k<<<(unsigned)C, THREADS, 0, (cudaStream_t)stream>>>(db, x, B, C, inner);
    return (int)cudaGetLastError();
}

/* ---- activations (ops/cpu/activation.c; CUDA's libdevice functions) ---- */
__device__ static float sigmoid_f(float x) {
    float a = fabsf(x);
    float e = expf(-a);
    float s = 1.0f / (1.0f + e);
    return x < 0.0f ? e * s : s;
}

__global__ static void act_fw_k(int kind, float *out, const float *inp, size_t n, float alpha) {
    GRID_STRIDE(i, n) {
        float x = inp[i], y;
        switch (kind) {
        case LT_CUK_RELU: y = x < 0.0f ? 0.0f : x; break;
        case LT_CUK_TANH: y = tanhf(x); break;
        case LT_CUK_SIGMOID: y = sigmoid_f(x); break;
        case LT_CUK_GELU: y = x * normcdff(x); break; /* exact erf form */
        default: y = x > 0.0f ? x : alpha * expm1f(x); break;
        }
        out[i] = y;
    }
}

__global__ static void act_bw_k(int kind, float *dinp, const float *dout, const float *inp, const float *out,
                                size_t n, float alpha) {
    GRID_STRIDE(i, n) {
        float g = dout[i], d;
        switch (kind) {
        case LT_CUK_RELU: d = out[i] > 0.0f ? g : 0.0f; break;
        case LT_CUK_TANH: d = g * (1.0f - out[i] * out[i]); break;
        case LT_CUK_SIGMOID: d = g * out[i] * (1.0f - out[i]); break;
        case LT_CUK_GELU: {
            float x = inp[i];
            float pdf = 0.398942280f * expf(-0.5f * x * x);
            d = g * (normcdff(x) + x * pdf);
            break;
        }
        default: d = inp[i] > 0.0f ? g : g * (out[i] + alpha); break;
        }
        dinp[i] += d;
    }
}

extern "C" int lt_cuk_act_forward(int kind, float *out, const float *inp, size_t n, float alpha, void *stream) {
    LAUNCH(act_fw_k, n, stream, kind, out, inp, n, alpha);
}
extern "C" int lt_cuk_act_backward(int kind, float *dinp, const float *dout, const float *inp, const float *out,
                                   size_t n, float alpha, void *stream) {
    LAUNCH(act_bw_k, n, stream, kind, dinp, dout, inp, out, n, alpha);
}

/* ---- pooling (ops/cpu/pool.c): windows clipped to the image ---- */
__device__ static void window(int o, int stride, int pad, int K, int n, int *lo, int *hi) {
    *lo = o * stride - pad;
    *hi = *lo + K;
    if (*lo < 0) *lo = 0;
    if (*hi > n) *hi = n;
}

__global__ static void maxpool_fw_k(float *out, int32_t *idx, const float *inp, size_t total, int H, int W, int K,
                                    int stride, int pad, int OH, int OW) {
    GRID_STRIDE(i, total) {
        size_t pl = i / ((size_t)OH * OW);
        int r = (int)(i % ((size_t)OH * OW)), oh = r / OW, ow = r % OW;
        const float *x = inp + pl * (size_t)H * W;
        int h0, h1, w0, w1;
        window(oh, stride, pad, K, H, &h0, &h1);
        window(ow, stride, pad, K, W, &w0, &w1);
        float m = -INFINITY;
        int32_t mi = h0 * W + w0;
        for (int ih = h0; ih < h1; ih++)
            for (int iw = w0; iw < w1; iw++) {
                float v = x[(size_t)ih * W + iw];
                if (v > m || isnan(v)) { /* first maximum; a NaN always wins, the last one */
                    m = v;
                    mi = ih * W + iw;
                }
            }
        out[i] = m;
        idx[i] = mi;
    }
}
extern "C" int lt_cuk_maxpool_forward(float *out, int32_t *idx, const float *inp, size_t planes, int H, int W, int K,
                                      int stride, int pad, int OH, int OW, void *stream) {
    if (OH <= 0 || OW <= 0) return 0;
    size_t total = planes * (size_t)OH * OW;
    LAUNCH(maxpool_fw_k, total, stream, out, idx, inp, total, H, W, K, stride, pad, OH, OW);
}

__global__ static void maxpool_bw_k(float *dinp, const float *dout, const int32_t *idx, size_t total, size_t HW,
                                    size_t OP) {
    GRID_STRIDE(i, total) atomicAdd(dinp + (i / OP) * HW + idx[i], dout[i]);
}
extern "C" int lt_cuk_maxpool_backward(float *dinp, const float *dout, const int32_t *idx, size_t planes, int H, int W,
                                       int OH, int OW, void *stream) {
    if (OH <= 0 || OW <= 0) return 0;
    size_t total = planes * (size_t)OH * OW;
    LAUNCH(maxpool_bw_k, total, stream, dinp, dout, idx, total, (size_t)H * W, (size_t)OH * OW);
}

/* one thread per input element: its window (if any) routes the gradient to it or not */
__global__ static void maxpool_bw_fill_k(float *dinp, const float *dout, const int32_t *idx, size_t total, int H,
                                         int W, int K, int OH, int OW) {
    GRID_STRIDE(i, total) {
        size_t pl = i / ((size_t)H * W);
        int r = (int)(i % ((size_t)H * W)), ih = r / W, iw = r % W;
        int oh = ih / K, ow = iw / K;
        float v = 0.0f;
        if (oh < OH && ow < OW) {
            size_t o = pl * (size_t)OH * OW + (size_t)oh * OW + ow;
            if (idx[o] == r) v = dout[o];
        }
        dinp[i] = v;
    }
}
extern "C" int lt_cuk_maxpool_backward_fill(float *dinp, const float *dout, const int32_t *idx, size_t planes, int H,
                                            int W, int K, int OH, int OW, void *stream) {
    size_t total = planes * (size_t)H * W;
    LAUNCH(maxpool_bw_fill_k, total, stream, dinp, dout, idx, total, H, W, K, OH, OW);
}

__global__ static void avgpool_fw_k(float *out, const float *inp, size_t total, int H, int W, int K, int stride,
                                    int pad, int OH, int OW) {
    float inv = 1.0f / (float)(K * K);
    GRID_STRIDE(i, total) {
        size_t pl = i / ((size_t)OH * OW);
        int r = (int)(i % ((size_t)OH * OW)), oh = r / OW, ow = r % OW;
        const float *x = inp + pl * (size_t)H * W;
        int h0, h1, w0, w1;
        window(oh, stride, pad, K, H, &h0, &h1);
        window(ow, stride, pad, K, W, &w0, &w1);
        float s = 0.0f;
        for (int ih = h0; ih < h1; ih++)
            for (int iw = w0; iw < w1; iw++) s += x[(size_t)ih * W + iw];
        out[i] = s * inv; /* count_include_pad: always K*K */
    }
}
extern "C" int lt_cuk_avgpool_forward(float *out, const float *inp, size_t planes, int H, int W, int K, int stride,
                                      int pad, int OH, int OW, void *stream) {
    if (OH <= 0 || OW <= 0) return 0;
    size_t total = planes * (size_t)OH * OW;
    LAUNCH(avgpool_fw_k, total, stream, out, inp, total, H, W, K, stride, pad, OH, OW);
}

/* one thread per input element, gathering from the windows that cover it (no
 * atomics): window o covers rows [o*stride - pad, o*stride - pad + K) */
__global__ static void avgpool_bw_k(float *dinp, const float *dout, size_t total, int H, int W, int K, int stride,
                                    int pad, int OH, int OW) {
    float inv = 1.0f / (float)(K * K);
    GRID_STRIDE(i, total) {
        size_t pl = i / ((size_t)H * W);
        int r = (int)(i % ((size_t)H * W)), ih = r / W, iw = r % W;
        /* o*stride <= ih + pad  and  o*stride > ih + pad - K */
        int ohi = (ih + pad) / stride, owi = (iw + pad) / stride;
        int olo = ih + pad - K + 1, wlo = iw + pad - K + 1;
        olo = olo <= 0 ? 0 : (olo + stride - 1) / stride;
        wlo = wlo <= 0 ? 0 : (wlo + stride - 1) / stride;
        if (ohi > OH - 1) ohi = OH - 1;
        if (owi > OW - 1) owi = OW - 1;
        const float *g = dout + pl * (size_t)OH * OW;
        float s = 0.0f;
        for (int oh = olo; oh <= ohi; oh++)
            for (int ow = wlo; ow <= owi; ow++) s += g[(size_t)oh * OW + ow] * inv;
        dinp[i] += s;
    }
}
extern "C" int lt_cuk_avgpool_backward(float *dinp, const float *dout, size_t planes, int H, int W, int K, int stride,
                                       int pad, int OH, int OW, void *stream) {
    if (OH <= 0 || OW <= 0) return 0;
    size_t total = planes * (size_t)H * W;
    LAUNCH(avgpool_bw_k, total, stream, dinp, dout, total, H, W, K, stride, pad, OH, OW);
}

/* ---- dropout: Philox4x32-10 (Salmon et al., Random123), counter = element / 4 ---- */
__device__ static uint4 philox4x32_10(uint4 c, uint2 k) {
    const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
    for (int r = 0; r < 10; r++) {
        uint32_t hi0 = __umulhi(M0, c.x), lo0 = M0 * c.x;
        uint32_t hi1 = __umulhi(M1, c.z), lo1 = M1 * c.z;
        c = make_uint4(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
        k.x += W0;
        k.y += W1;
    }
    return c;
}

__global__ static void dropout_fw_k(float *out, float *mask, const float *inp, size_t n, uint64_t thr, float scale,
                                    uint64_t seed) {
    uint2 key = make_uint2((uint32_t)seed, (uint32_t)(seed >> 32));
    size_t groups = (n + 3) / 4;
    GRID_STRIDE(t, groups) {
        uint4 r = philox4x32_10(make_uint4((uint32_t)t, (uint32_t)((uint64_t)t >> 32), 0u, 0u), key);
        uint32_t u[4] = {r.x, r.y, r.z, r.w};
        for (int j = 0; j < 4; j++) {
            size_t i = 4 * t + j;
            if (i >= n) break;
            float m = (uint64_t)u[j] >= thr ? scale : 0.0f;
            mask[i] = m;
            out[i] = inp[i] * m;
        }
    }
}
extern "C" int lt_cuk_dropout_forward(float *out, float *mask, const float *inp, size_t n, float p, uint64_t seed,
                                      void *stream) {
    uint64_t thr;
    float scale;
    if (p >= 1.0f) { /* everything dropped; avoid 1/0 */
        thr = (uint64_t)1 << 32;
        scale = 0.0f;
    } else {
        thr = (uint64_t)((double)(p > 0.0f ? p : 0.0f) * 4294967296.0 + 0.5);
        scale = 1.0f / (1.0f - p);
    }
    size_t groups = (n + 3) / 4;
    LAUNCH(dropout_fw_k, groups, stream, out, mask, inp, n, thr, scale, seed);
}

__global__ static void mul_acc_k(float *dinp, const float *dout, const float *mask, size_t n) {
    GRID_STRIDE(i, n) dinp[i] += dout[i] * mask[i];
}
extern "C" int lt_cuk_dropout_backward(float *dinp, const float *dout, const float *mask, size_t n, void *stream) {
    LAUNCH(mul_acc_k, n, stream, dinp, dout, mask, n);
}

/* ---- reductions in double ---- */
#define PART_THREADS 256
#define MAX_PARTS 1024

extern "C" int lt_cuk_sum_nparts(size_t n) {
    size_t g = (n + 4 * PART_THREADS - 1) / (4 * PART_THREADS);
    return g < 1 ? 1 : g > MAX_PARTS ? MAX_PARTS : (int)g;
}

__global__ static void sum_partials_k(double *part, const float *a, const float *b, size_t n) {
    double s = 0.0;
    GRID_STRIDE(i, n) {
        if (b) {
            float d = a[i] - b[i];
            s += (double)d * (double)d;
        } else {
            s += (double)a[i];
        }
    }
    s = block_sum_d(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}
extern "C" int lt_cuk_sum_partials(double *part, int nparts, const float *a, const float *b, size_t n, void *stream) {
    if (nparts < 1) nparts = 1;
    if (nparts > MAX_PARTS) nparts = MAX_PARTS;
    sum_partials_k<<<(unsigned)nparts, PART_THREADS, 0, (cudaStream_t)stream>>>(part, a, b, n);
    return (int)cudaGetLastError();
}

__global__ static void sum_final_k(float *out, const double *part, size_t n, double mul, double div) {
    double s = 0.0;
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) s += part[i];
    s = block_sum_d(s);
    if (threadIdx.x == 0) out[0] = div != 0.0 ? (float)(s * mul / div) : 0.0f;
}
extern "C" int lt_cuk_sum_final(float *out, const double *part, size_t nparts, double mul, double div, void *stream) {
    sum_final_k<<<1, 1024, 0, (cudaStream_t)stream>>>(out, part, nparts, mul, div);
    return (int)cudaGetLastError();
}

/* ---- losses (ops/cpu/loss.c) ---- */
/* one block per row */
__global__ static void ce_rows_k(float *probs, double *rowloss, const float *logits, const int32_t *labels, int C) {
    size_t r = blockIdx.x;
    const float *x = logits + r * (size_t)C;
    float *p = probs + r * (size_t)C;
    float m = -INFINITY;
    for (int j = threadIdx.x; j < C; j += blockDim.x) m = fmaxf(m, x[j]);
    m = block_max_all(m);
    float s = 0.0f;
    for (int j = threadIdx.x; j < C; j += blockDim.x) s += expf(x[j] - m);
    s = block_sum_f(s);
    __shared__ float s_all;
    if (threadIdx.x == 0) s_all = s;
    __syncthreads();
    s = s_all;
    float inv = 1.0f / s;
    for (int j = threadIdx.x; j < C; j += blockDim.x) p[j] = expf(x[j] - m) * inv;
    if (threadIdx.x == 0) {
        int32_t y = labels[r];
        rowloss[r] = (y >= 0 && y < C) ? (double)m + log((double)s) - (double)x[y] : 0.0;
    }
}
extern "C" int lt_cuk_ce_rows(float *probs, double *rowloss, const float *logits, const int32_t *labels, int R, int C,
                              void *stream) {
    if (R <= 0 || C <= 0) return 0;
    ce_rows_k<<<(unsigned)R, THREADS, 0, (cudaStream_t)stream>>>(probs, rowloss, logits, labels, C);
    return (int)cudaGetLastError();
}

__global__ static void ce_bw_k(float *d, const float *dloss, const float *probs, const int32_t *labels, int R, int C) {
    size_t n = (size_t)R * C;
    float k = dloss[0] / (float)R;
    GRID_STRIDE(i, n) {
        int r = (int)(i / (size_t)C), j = (int)(i % (size_t)C);
        int32_t y = labels[r];
        if (y < 0 || y >= C) continue;
        float v = d[i] + k * probs[i];
        if (j == y) v -= k;
        d[i] = v;
    }
}
extern "C" int lt_cuk_ce_backward(float *dlogits, const float *dloss, const float *probs, const int32_t *labels, int R,
                                  int C, void *stream) {
    if (R <= 0 || C <= 0) return 0;
    size_t n = (size_t)R * C;
    LAUNCH(ce_bw_k, n, stream, dlogits, dloss, probs, labels, R, C);
}

__global__ static void nll_fw_k(float *loss, const float *logp, const int32_t *labels, int R, int C) {
    double s = 0.0;
    for (int r = threadIdx.x; r < R; r += blockDim.x) {
        int32_t y = labels[r];
        if (y >= 0 && y < C) s -= (double)logp[(size_t)r * C + y];
    }
    s = block_sum_d(s);
    if (threadIdx.x == 0) loss[0] = R > 0 ? (float)(s / R) : 0.0f;
}
extern "C" int lt_cuk_nll_forward(float *loss, const float *logp, const int32_t *labels, int R, int C, void *stream) {
    nll_fw_k<<<1, 1024, 0, (cudaStream_t)stream>>>(loss, logp, labels, R, C);
    return (int)cudaGetLastError();
}

__global__ static void nll_bw_k(float *dlogp, const float *dloss, const int32_t *labels, int R, int C) {
    float k = dloss[0] / (float)R;
    GRID_STRIDE(r, (size_t)R) {
        int32_t y = labels[r];
        if (y >= 0 && y < C) dlogp[r * (size_t)C + y] -= k;
    }
}
extern "C" int lt_cuk_nll_backward(float *dlogp, const float *dloss, const int32_t *labels, int R, int C,
                                   void *stream) {
    if (R <= 0) return 0;
    LAUNCH(nll_bw_k, (size_t)R, stream, dlogp, dloss, labels, R, C);
}

__global__ static void mse_bw_k(float *dpred, float *dtarget, const float *dloss, const float *pred,
                                const float *target, size_t n) {
    float k = (float)(2.0 * (double)dloss[0] / (double)n);
    GRID_STRIDE(i, n) {
        float g = k * (pred[i] - target[i]);
        if (dpred) dpred[i] += g;
        if (dtarget) dtarget[i] -= g;
    }
}
extern "C" int lt_cuk_mse_backward(float *dpred, float *dtarget, const float *dloss, const float *pred,
                                   const float *target, size_t n, void *stream) {
    if (!dpred && !dtarget) return 0;
    LAUNCH(mse_bw_k, n, stream, dpred, dtarget, dloss, pred, target, n);
}

/* ---- arithmetic ---- */
__global__ static void add_k(float *out, const float *a, const float *b, size_t n) {
    GRID_STRIDE(i, n) out[i] = a[i] + b[i];
}
__global__ static void mul_k(float *out, const float *a, const float *b, size_t n) {
    GRID_STRIDE(i, n) out[i] = a[i] * b[i];
}
__global__ static void scale_k(float *out, const float *a, float alpha, size_t n) {
    GRID_STRIDE(i, n) out[i] = alpha * a[i];
}
__global__ static void axpy_acc_k(float *da, const float *dout, float alpha, size_t n) {
    GRID_STRIDE(i, n) da[i] += alpha * dout[i];
}
__global__ static void mul_bw_k(float *da, float *db, const float *dout, const float *a, const float *b, size_t n) {
    GRID_STRIDE(i, n) {
        if (da) da[i] += dout[i] * b[i];
        if (db) db[i] += dout[i] * a[i];
    }
}
__global__ static void sum_bw_k(float *da, const float *dout, float alpha, size_t n) {
    float g = dout[0] * alpha;
    GRID_STRIDE(i, n) da[i] += g;
}

extern "C" int lt_cuk_add(float *out, const float *a, const float *b, size_t n, void *stream) {
    LAUNCH(add_k, n, stream, out, a, b, n);
}
extern "C" int lt_cuk_mul(float *out, const float *a, const float *b, size_t n, void *stream) {
    LAUNCH(mul_k, n, stream, out, a, b, n);
}
extern "C" int lt_cuk_scale(float *out, const float *a, float alpha, size_t n, void *stream) {
    LAUNCH(scale_k, n, stream, out, a, alpha, n);
}
extern "C" int lt_cuk_axpy_acc(float *da, const float *dout, float alpha, size_t n, void *stream) {
    LAUNCH(axpy_acc_k, n, stream, da, dout, alpha, n);
}
extern "C" int lt_cuk_mul_backward(float *da, float *db, const float *dout, const float *a, const float *b, size_t n,
                                   void *stream) {
    if (!da && !db) return 0;
    LAUNCH(mul_bw_k, n, stream, da, db, dout, a, b, n);
}
extern "C" int lt_cuk_sum_backward(float *da, const float *dout, float alpha, size_t n, void *stream) {
    LAUNCH(sum_bw_k, n, stream, da, dout, alpha, n);
}

/* ---- embedding ---- */
__global__ static void embedding_fw_k(float *out, const int32_t *ids, const float *weight, size_t total, int E) {
    GRID_STRIDE(i, total) {
        size_t r = i / (size_t)E, j = i % (size_t)E;
        out[i] = weight[(size_t)ids[r] * E + j];
    }
}
__global__ static void embedding_bw_k(float *dweight, const float *dout, const int32_t *ids, size_t total, int E) {
    GRID_STRIDE(i, total) {
        size_t r = i / (size_t)E, j = i % (size_t)E;
        atomicAdd(dweight + (size_t)ids[r] * E + j, dout[i]); /* repeated ids add up, in any order */
    }
}
extern "C" int lt_cuk_embedding_forward(float *out, const int32_t *ids, const float *weight, size_t N, int E,
                                        void *stream) {
    if (E <= 0) return 0;
    size_t total = N * (size_t)E;
    LAUNCH(embedding_fw_k, total, stream, out, ids, weight, total, E);
}
extern "C" int lt_cuk_embedding_backward(float *dweight, const float *dout, const int32_t *ids, size_t N, int E,
                                         void *stream) {
    if (E <= 0) return 0;
    size_t total = N * (size_t)E;
    LAUNCH(embedding_bw_k, total, stream, dweight, dout, ids, total, E);
}

/* ---- batch-norm helpers ---- */
__global__ static void bn_eval_save_k(float *save_mean, float *save_invstd, const float *rm, const float *rv, float eps,
                                      int C) {
    GRID_STRIDE(c, (size_t)C) {
        if (save_mean) save_mean[c] = rm[c];
        if (save_invstd) save_invstd[c] = (float)(1.0 / sqrt((double)rv[c] + (double)eps));
    }
}
extern "C" int lt_cuk_bn_eval_save(float *save_mean, float *save_invstd, const float *running_mean,
                                   const float *running_var, float eps, int C, void *stream) {
    if (C <= 0 || (!save_mean && !save_invstd)) return 0;
    LAUNCH(bn_eval_save_k, (size_t)C, stream, save_mean, save_invstd, running_mean, running_var, eps, C);
}

__global__ static void bn_running_n1_k(float *rm, float *rv, const float *mean, float momentum, int C) {
    GRID_STRIDE(c, (size_t)C) {
        if (rm) rm[c] = momentum * mean[c] + (1.0f - momentum) * rm[c];
        if (rv) rv[c] = momentum * 0.0f + (1.0f - momentum) * rv[c];
    }
}
extern "C" int lt_cuk_bn_running_n1(float *running_mean, float *running_var, const float *mean, float momentum, int C,
                                    void *stream) {
    if (C <= 0 || (!running_mean && !running_var)) return 0;
    LAUNCH(bn_running_n1_k, (size_t)C, stream, running_mean, running_var, mean, momentum, C);
}
