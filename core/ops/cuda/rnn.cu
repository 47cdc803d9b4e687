/* ops/cuda/rnn.cu: the fused per-step kernels of the LSTM and GRU (gate
 * activations and state update forward, gate gradients backward), the hprev
 * gather and the bias column sums; cu_rnn.c runs them between its GEMMs. One
 * thread per (b, j) of a [B, H] step; the formulas are those of
 * ops/cpu/rnn.c (PyTorch's). */
#include "cu_rnn.h"

#include <cuda_runtime.h>

#define RNN_THREADS 256

static unsigned blocks_for(size_t n) { return (unsigned)((n + RNN_THREADS - 1) / RNN_THREADS); }

/* 1 / (1 + e^-x) from e = e^-|x|: neither branch overflows */
__device__ static inline float sigm(float x) {
    float e = expf(-fabsf(x));
    float s = 1.0f / (1.0f + e);
    return x < 0.0f ? e * s : s;
}

__device__ static inline float at(const float *p, size_t i) { return p ? p[i] : 0.0f; }

/* ==== LSTM ==== */

__global__ static void lstm_fw_step_k(int B, int T, int H, int t, float *gates, float *cells, float *ctanh, float *out,
                                      float *h_last, float *c_last, const float *c0, const float *b_ih,
                                      const float *b_hh) {
    size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (k >= (size_t)B * H) return;
    size_t b = k / (size_t)H, j = k % (size_t)H, Hs = (size_t)H;
    size_t r = b * (size_t)T + (size_t)t;
    float *p = gates + r * 4 * Hs;
    float ig = sigm(p[j] + (at(b_ih, j) + at(b_hh, j)));
    float fg = sigm(p[Hs + j] + (at(b_ih, Hs + j) + at(b_hh, Hs + j)));
    float gg = tanhf(p[2 * Hs + j] + (at(b_ih, 2 * Hs + j) + at(b_hh, 2 * Hs + j)));
    float og = sigm(p[3 * Hs + j] + (at(b_ih, 3 * Hs + j) + at(b_hh, 3 * Hs + j)));
    p[j] = ig, p[Hs + j] = fg, p[2 * Hs + j] = gg, p[3 * Hs + j] = og;
    float cp = t ? cells[(r - 1) * Hs + j] : at(c0, k);
    float c = fg * cp + ig * gg;
    float tc = tanhf(c);
    float h = og * tc;
    cells[r * Hs + j] = c;
    ctanh[r * Hs + j] = tc;
    out[r * Hs + j] = h;
    if (t == T - 1) {
        if (h_last) h_last[k] = h;
        if (c_last) c_last[k] = c;
    }
}

__global__ static void lstm_bw_step_k(int B, int T, int H, int t, float *dg, const float *dh_in, const float *dc_in,
                                      float *dc_out, int dc_acc, const float *dout, const float *gates,
                                      const float *cells, const float *ctanh, const float *c0) {
    size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (k >= (size_t)B * H) return;
    size_t b = k / (size_t)H, j = k % (size_t)H, Hs = (size_t)H;
    size_t r = b * (size_t)T + (size_t)t;
    const float *p = gates + r * 4 * Hs;
    float ig = p[j], fg = p[Hs + j], gg = p[2 * Hs + j], og = p[3 * Hs + j];
    float tc = ctanh[r * Hs + j];
    float cp = t ? cells[(r - 1) * Hs + j] : at(c0, k);
    float dh = at(dh_in, k) + at(dout, r * Hs + j);
    float dc = at(dc_in, k) + dh * og * (1.0f - tc * tc);
    float *d = dg + r * 4 * Hs;
    d[j] = dc * gg * ig * (1.0f - ig);
    d[Hs + j] = dc * cp * fg * (1.0f - fg);
    d[2 * Hs + j] = dc * ig * (1.0f - gg * gg);
    d[3 * Hs + j] = dh * tc * og * (1.0f - og);
    if (dc_out) dc_out[k] = (dc_acc ? dc_out[k] : 0.0f) + dc * fg;
}

extern "C" int lt_cu_lstm_fw_step(int B, int T, int H, int t, float *gates, float *cells, float *ctanh, float *out,
                                  float *h_last, float *c_last, const float *c0, const float *b_ih, const float *b_hh,
                                  void *stream) {
    size_t n = (size_t)B * H;
    if (!n) return (int)cudaSuccess;
    lstm_fw_step_k<<<blocks_for(n), RNN_THREADS, 0, (cudaStream_t)stream>>>(B, T, H, t, gates, cells, ctanh, out,
                                                                            h_last, c_last, c0, b_ih, b_hh);
    return (int)cudaGetLastError();
}

extern "C" int lt_cu_lstm_bw_step(int B, int T, int H, int t, float *dg, const float *dh_in, const float *dc_in,
                                  float *dc_out, int dc_acc, const float *dout, const float *gates, const float *cells,
                                  const float *ctanh, const float *c0, void *stream) {
    size_t n = (size_t)B * H;
    if (!n) return (int)cudaSuccess;
    lstm_bw_step_k<<<blocks_for(n), RNN_THREADS, 0, (cudaStream_t)stream>>>(B, T, H, t, dg, dh_in, dc_in, dc_out,
                                                                            dc_acc, dout, gates, cells, ctanh, c0);
    return (int)cudaGetLastError();
}

/* ==== GRU ==== */

__global__ static void gru_fw_step_k(int B, int T, int H, int t, float *gates, float *hn, const float *hg, float *out,
                                     float *h_last, const float *h0, const float *b_ih, const float *b_hh) {
    size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (k >= (size_t)B * H) return;
    size_t b = k / (size_t)H, j = k % (size_t)H, Hs = (size_t)H;
    size_t r = b * (size_t)T + (size_t)t;
    float *p = gates + r * 3 * Hs;
    const float *q = hg ? hg + b * 3 * Hs : NULL;
    float hr = at(q, j) + at(b_hh, j), hz = at(q, Hs + j) + at(b_hh, Hs + j);
    float hnn = at(q, 2 * Hs + j) + at(b_hh, 2 * Hs + j);
    float rg = sigm((p[j] + at(b_ih, j)) + hr);
    float zg = sigm((p[Hs + j] + at(b_ih, Hs + j)) + hz);
    float ng = tanhf((p[2 * Hs + j] + at(b_ih, 2 * Hs + j)) + rg * hnn);
    float hp = t ? out[(r - 1) * Hs + j] : at(h0, k);
    float h = ng + zg * (hp - ng); /* (1 - z) n + z h_{t-1} */
    p[j] = rg, p[Hs + j] = zg, p[2 * Hs + j] = ng;
    hn[r * Hs + j] = hnn;
    out[r * Hs + j] = h;
    if (t == T - 1 && h_last) h_last[k] = h;
}

__global__ static void gru_bw_step_k(int B, int T, int H, int t, float *dxg, float *dhg, const float *dh_in,
                                     float *dh_out, int dh_acc, const float *dout, const float *gates, const float *hn,
                                     const float *out, const float *h0) {
    size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (k >= (size_t)B * H) return;
    size_t b = k / (size_t)H, j = k % (size_t)H, Hs = (size_t)H;
    size_t r = b * (size_t)T + (size_t)t;
    const float *p = gates + r * 3 * Hs;
    float rg = p[j], zg = p[Hs + j], ng = p[2 * Hs + j];
    float hp = t ? out[(r - 1) * Hs + j] : at(h0, k);
    float dh = at(dh_in, k) + at(dout, r * Hs + j);
    float dn = dh * (1.0f - zg) * (1.0f - ng * ng);
    float dz = dh * (hp - ng) * zg * (1.0f - zg);
    float dr = dn * hn[r * Hs + j] * rg * (1.0f - rg);
    float *dx = dxg + r * 3 * Hs, *dhh = dhg + r * 3 * Hs;
    dx[j] = dr, dx[Hs + j] = dz, dx[2 * Hs + j] = dn;
    dhh[j] = dr, dhh[Hs + j] = dz, dhh[2 * Hs + j] = dn * rg;
    if (dh_out) dh_out[k] = (dh_acc ? dh_out[k] : 0.0f) + dh * zg;
}

extern "C" int lt_cu_gru_fw_step(int B, int T, int H, int t, float *gates, float *hn, const float *hg, float *out,
                                 float *h_last, const float *h0, const float *b_ih, const float *b_hh, void *stream) {
    size_t n = (size_t)B * H;
    if (!n) return (int)cudaSuccess;
    gru_fw_step_k<<<blocks_for(n), RNN_THREADS, 0, (cudaStream_t)stream>>>(B, T, H, t, gates, hn, hg, out, h_last, h0,
                                                                           b_ih, b_hh);
    return (int)cudaGetLastError();
}

extern "C" int lt_cu_gru_bw_step(int B, int T, int H, int t, float *dxg, float *dhg, const float *dh_in, float *dh_out,
                                 int dh_acc, const float *dout, const float *gates, const float *hn, const float *out,
                                 const float *h0, void *stream) {
    size_t n = (size_t)B * H;
    if (!n) return (int)cudaSuccess;
    gru_bw_step_k<<<blocks_for(n), RNN_THREADS, 0, (cudaStream_t)stream>>>(B, T, H, t, dxg, dhg, dh_in, dh_out, dh_acc,
                                                                           dout, gates, hn, out, h0);
    return (int)cudaGetLastError();
}

/* ==== shared ==== */

__global__ static void hprev_k(int B, int T, int H, float *hprev, const float *out, const float *h0) {
    size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    size_t Hs = (size_t)H, rows = (size_t)B * T;
    if (k >= rows * Hs) return;
    size_t r = k / Hs, j = k % Hs, t = r % (size_t)T;
    hprev[k] = t ? out[(r - 1) * Hs + j] : at(h0, (r / (size_t)T) * Hs + j);
}

extern "C" int lt_cu_rnn_hprev(int B, int T, int H, float *hprev, const float *out, const float *h0, void *stream) {
    size_t n = (size_t)B * T * H;
    if (!n) return (int)cudaSuccess;
    hprev_k<<<blocks_for(n), RNN_THREADS, 0, (cudaStream_t)stream>>>(B, T, H, hprev, out, h0);
    return (int)cudaGetLastError();
}

/* 32 columns per block, COLSUM_LANES threads down the rows of each, summed in
 * shared memory in a fixed order (deterministic) */
#define COLSUM_LANES 16
__global__ static void colsum_k(int rows, int n, const float *d, float *db1, float *db2) {
    __shared__ float part[COLSUM_LANES][33];
    int col = blockIdx.x * 32 + threadIdx.x;
    float s = 0.0f;
    if (col < n)
        for (int r = threadIdx.y; r < rows; r += COLSUM_LANES) s += d[(size_t)r * n + col];
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y || col >= n) return;
    s = 0.0f;
    for (int l = 0; l < COLSUM_LANES; l++) s += part[l][threadIdx.x];
    if (db1) db1[col] += s;
    if (db2) db2[col] += s;
}

extern "C" int lt_cu_rnn_colsum(int rows, int n, const float *d, float *db1, float *db2, void *stream) {
    if (rows <= 0 || n <= 0 || (!db1 && !db2)) return (int)cudaSuccess;
    colsum_k<<<(unsigned)((n + 31) / 32), dim3(32, COLSUM_LANES), 0, (cudaStream_t)stream>>>(rows, n, d, db1, db2);
    return (int)cudaGetLastError();
}
