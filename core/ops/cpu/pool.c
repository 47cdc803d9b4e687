/* pool.c: 2-D max and average pooling (PyTorch MaxPool2d / AvgPool2d, floor
 * mode, symmetric zero padding) over NCHW planes.
 * inp [B, C, H, W] -> out [B, C, OH, OW], OH = (H + 2*pad - K)/stride + 1.
 * Max pool: padding never wins; the first maximum in row-major window order is
 * kept (PyTorch's tie rule) and a NaN always wins, the last one in the window
 * (PyTorch's CPU rule `v > max || isnan(v)`). idx holds
 * the winner's position ih*W + iw in its plane. Avg pool divides by K*K
 * (count_include_pad=True; in floor mode no window reaches past the padding). */
#include <math.h>
#include <string.h>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "ops/kernels.h"

/* The rows (or columns) [*lo, *hi) of the input that window o covers, clipped
 * to [0, n): padding is never read. */
static void window(int o, int stride, int pad, int K, int n, int *lo, int *hi) {
    *lo = o * stride - pad;
    *hi = *lo + K;
    if (*lo < 0) *lo = 0;
    if (*hi > n) *hi = n;
}

#if defined(__AVX2__)
/* The 2x2 stride-2 fill backward of one output row, eight windows at a time:
 * input rows d0, d1 get the gradient at each window's winner and zero
 * elsewhere (base: d0's position in its plane), each written once, where the
 * scalar way zeroes the plane and then scatters. The last block overlaps its
 * predecessor (the rows are a pure function of the gradient and the winners,
 * so writing some twice is harmless). Returns how many windows it did (0 when
 * the row has fewer than 8). Measured on the MNIST CNN's pool
 * (tests/bench/bench_pool.c, one thread): 1.15 ms against 1.81 ms. The
 * forward was tried the same way and kept scalar: it runs at the memory's
 * speed either way (1.41 ms vector, 1.25 ms scalar). */
static int fill2x2_row_avx2(float *d0, float *d1, const float *g, const int32_t *ix, int OW, int base, int W) {
    if (OW < 8) return 0;
    const __m256i lane2 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    const __m256 z = _mm256_setzero_ps();
    for (int ow = 0;; ow += 8) {
        if (ow > OW - 8) ow = OW - 8;
        __m256 gv = _mm256_loadu_ps(g + ow);
        __m256i w = _mm256_loadu_si256((const __m256i *)(ix + ow));
        __m256i p = _mm256_add_epi32(_mm256_set1_epi32(base + 2 * ow), lane2), one = _mm256_set1_epi32(1);
        __m256i pw = _mm256_add_epi32(p, _mm256_set1_epi32(W));
        __m256 e0 = _mm256_blendv_ps(z, gv, _mm256_castsi256_ps(_mm256_cmpeq_epi32(w, p)));
        __m256 o0 = _mm256_blendv_ps(z, gv, _mm256_castsi256_ps(_mm256_cmpeq_epi32(w, _mm256_add_epi32(p, one))));
        __m256 e1 = _mm256_blendv_ps(z, gv, _mm256_castsi256_ps(_mm256_cmpeq_epi32(w, pw)));
        __m256 o1 = _mm256_blendv_ps(z, gv, _mm256_castsi256_ps(_mm256_cmpeq_epi32(w, _mm256_add_epi32(pw, one))));
        /* interleave even and odd columns back: lanes e0 o0 e1 o1 ... */
        __m256 lo = _mm256_unpacklo_ps(e0, o0), hi = _mm256_unpackhi_ps(e0, o0);
        _mm256_storeu_ps(d0 + 2 * ow, _mm256_permute2f128_ps(lo, hi, 0x20));
        _mm256_storeu_ps(d0 + 2 * ow + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
        lo = _mm256_unpacklo_ps(e1, o1), hi = _mm256_unpackhi_ps(e1, o1);
        _mm256_storeu_ps(d1 + 2 * ow, _mm256_permute2f128_ps(lo, hi, 0x20));
        _mm256_storeu_ps(d1 + 2 * ow + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
        if (ow == OW - 8) return OW;
    }
}
#endif

void lt_maxpool2d_forward(float *out, int32_t *idx, const float *inp, int B, int C, int H, int W, int K, int stride,
                          int pad) {
    int OH = (H + 2 * pad - K) / stride + 1, OW = (W + 2 * pad - K) / stride + 1;
    if (OH <= 0 || OW <= 0) return;
    size_t planes = (size_t)B * C, HW = (size_t)H * W, OP = (size_t)OH * OW;
    /* planes are independent: shared among the OpenMP threads when worth it */
#pragma omp parallel for schedule(static) if (planes * HW > 65536)
    for (size_t pl = 0; pl < planes; pl++) {
        const float *x = inp + pl * HW;
        float *o = out + pl * OP;
        int32_t *ix = idx + pl * OP;
        if (K == 2 && stride == 2 && pad == 0) {
            /* The MNIST CNN's pool: fixed 2x2 windows, no bounds checks. */
            for (int oh = 0; oh < OH; oh++) {
                const float *r0 = x + (size_t)(2 * oh) * W, *r1 = r0 + W;
                for (int ow = 0; ow < OW; ow++) {
                    int iw = 2 * ow;
                    float m = r0[iw];
                    int32_t mi = 2 * oh * W + iw;
                    if (r0[iw + 1] > m || isnan(r0[iw + 1])) m = r0[iw + 1], mi = 2 * oh * W + iw + 1;
                    if (r1[iw] > m || isnan(r1[iw])) m = r1[iw], mi = (2 * oh + 1) * W + iw;
                    if (r1[iw + 1] > m || isnan(r1[iw + 1])) m = r1[iw + 1], mi = (2 * oh + 1) * W + iw + 1;
                    o[(size_t)oh * OW + ow] = m;
                    ix[(size_t)oh * OW + ow] = mi;
                }
            }
            continue;
        }
        for (int oh = 0; oh < OH; oh++) {
            int h0, h1;
            window(oh, stride, pad, K, H, &h0, &h1);
            for (int ow = 0; ow < OW; ow++) {
                int w0, w1;
                window(ow, stride, pad, K, W, &w0, &w1);
                float m = -INFINITY;
                int32_t mi = h0 * W + w0;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) {
                        float v = x[(size_t)ih * W + iw];
                        if (v > m || isnan(v)) {
                            m = v;
                            mi = ih * W + iw;
                        }
                    }
                o[(size_t)oh * OW + ow] = m;
                ix[(size_t)oh * OW + ow] = mi;
            }
        }
    }
}

/* dinp (+)= the gradient routed back to each window's winner; with fill, the
 * planes are first zeroed one by one while in cache (non-overlapping windows:
 * one write each). */
static void maxpool_backward(float *dinp, const float *dout, const int32_t *idx, int B, int C, int H, int W, int OH,
                             int OW, int fill) {
    size_t planes = (size_t)B * C, HW = (size_t)H * W, OP = (size_t)OH * OW;
    int K2 = H == 2 * OH && W == 2 * OW; /* with fill: 2x2 windows tiling the plane */
    (void)K2;
#pragma omp parallel for schedule(static) if (planes * HW > 65536)
    for (size_t pl = 0; pl < planes; pl++) {
        float *d = dinp + pl * HW;
        const float *g = dout + pl * OP;
        const int32_t *ix = idx + pl * OP;
        if (fill) {
#if defined(__AVX2__)
            if (K2 && OW >= 8) {
                /* each input row pair written once, no memset pass */
                for (int oh = 0; oh < OH; oh++) {
                    float *d0 = d + (size_t)(2 * oh) * W;
                    fill2x2_row_avx2(d0, d0 + W, g + (size_t)oh * OW, ix + (size_t)oh * OW, OW, 2 * oh * W, W);
                }
                continue;
            }
#endif
            memset(d, 0, HW * sizeof(float));
            for (size_t i = 0; i < OP; i++) d[ix[i]] = g[i];
        } else {
            for (size_t i = 0; i < OP; i++) d[ix[i]] += g[i];
        }
    }
}

void lt_maxpool2d_backward(float *dinp, const float *dout, const int32_t *idx, int B, int C, int H, int W, int OH,
                           int OW) {
    maxpool_backward(dinp, dout, idx, B, C, H, W, OH, OW, 0);
}

void lt_maxpool2d_backward_fill(float *dinp, const float *dout, const int32_t *idx, int B, int C, int H, int W, int OH,
                                int OW) {
    maxpool_backward(dinp, dout, idx, B, C, H, W, OH, OW, 1);
}

void lt_avgpool2d_forward(float *out, const float *inp, int B, int C, int H, int W, int K, int stride, int pad) {
    int OH = (H + 2 * pad - K) / stride + 1, OW = (W + 2 * pad - K) / stride + 1;
    if (OH <= 0 || OW <= 0) return;
    size_t planes = (size_t)B * C, HW = (size_t)H * W, OP = (size_t)OH * OW;
    float inv = 1.0f / (float)(K * K);
    for (size_t pl = 0; pl < planes; pl++) {
        const float *x = inp + pl * HW;
        float *o = out + pl * OP;
        for (int oh = 0; oh < OH; oh++) {
            int h0, h1;
            window(oh, stride, pad, K, H, &h0, &h1);
            for (int ow = 0; ow < OW; ow++) {
                int w0, w1;
                window(ow, stride, pad, K, W, &w0, &w1);
                float s = 0.0f;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) s += x[(size_t)ih * W + iw];
                o[(size_t)oh * OW + ow] = s * inv;
            }
        }
    }
}

void lt_avgpool2d_backward(float *dinp, const float *dout, int B, int C, int H, int W, int K, int stride, int pad) {
    int OH = (H + 2 * pad - K) / stride + 1, OW = (W + 2 * pad - K) / stride + 1;
    if (OH <= 0 || OW <= 0) return;
    size_t planes = (size_t)B * C, HW = (size_t)H * W, OP = (size_t)OH * OW;
    float inv = 1.0f / (float)(K * K);
    for (size_t pl = 0; pl < planes; pl++) {
        float *d = dinp + pl * HW;
        const float *g = dout + pl * OP;
        for (int oh = 0; oh < OH; oh++) {
            int h0, h1;
            window(oh, stride, pad, K, H, &h0, &h1);
            for (int ow = 0; ow < OW; ow++) {
                int w0, w1;
                window(ow, stride, pad, K, W, &w0, &w1);
                float gv = g[(size_t)oh * OW + ow] * inv;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) d[(size_t)ih * W + iw] += gv;
            }
        }
    }
}
