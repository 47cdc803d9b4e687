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

#include "ops/kernels.h"

/* The rows (or columns) [*lo, *hi) of the input that window o covers, clipped
 * to [0, n): padding is never read. */
static void window(int o, int stride, int pad, int K, int n, int *lo, int *hi) {
    *lo = o * stride - pad;
    *hi = *lo + K;
    if (*lo < 0) *lo = 0;
    if (*hi > n) *hi = n;
}

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
#pragma omp parallel for schedule(static) if (planes * HW > 65536)
    for (size_t pl = 0; pl < planes; pl++) {
        float *d = dinp + pl * HW;
        const float *g = dout + pl * OP;
        const int32_t *ix = idx + pl * OP;
        if (fill) {
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
