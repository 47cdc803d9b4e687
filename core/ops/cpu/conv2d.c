/* conv2d.c: 2-D convolution (PyTorch nn.Conv2d, groups=1, dilation=1) on the CPU
 * as im2col + one OpenBLAS SGEMM per batch chunk.
 *
 * Layout. A chunk of nb samples is unrolled into a column matrix
 *   col [K, nb*P],  K = C*KH*KW,  P = OH*OW,  col[(c*KH+kh)*KW+kw][bb*P + oh*OW + ow]
 * and the GEMMs run in the (out-channels x batch*pixels) orientation, which
 * OpenBLAS runs markedly faster than (batch*pixels x channels) for these shapes:
 *   forward   ocn  [OC, nb*P]  = W [OC, K] x col
 *   weight    dW   [OC, K]    += dcn [OC, nb*P] x col^T
 *   input     dcol [K, nb*P]   = W^T x dcn,  then col2im (+=) into dinp
 * ocn/dcn are "channel-major" copies of out/dout; the forward scatter back to
 * NCHW adds the bias and applies the activation in the same pass, and the
 * backward gather applies the activation mask and sums the bias gradient.
 *
 * Chunking keeps the column matrix (and the GEMM operands) in the last-level
 * cache instead of streaming a whole-batch col (85 MB for the MNIST CNN's
 * conv2 at batch 128) through memory. The backward pass recomputes im2col per
 * chunk rather than keeping the forward's col, which would need the whole
 * batch's col in scratch; the recompute is a cheap, cache-resident copy. The
 * dcol of the input-gradient GEMM reuses the col buffer once dW is done, so the
 * scratch is (K + OC) * nb * P floats for forward and backward alike.
 *
 * Threads. The chunks are shared out among the OpenMP threads (a static
 * schedule: the same split every time for a given thread count, so results
 * are reproducible); inside that parallel region OpenBLAS (its OpenMP build)
 * runs each chunk's SGEMM on the calling thread. So im2col, col2im, the gather
 * and the scatter run on every core instead of one, and the GEMMs of two
 * chunks run side by side. Each thread has its own slice of the scratch and,
 * in backward, its own dW / db partial sums, added up in thread order at the
 * end.
 *
 * Layers with few input channels and 3x3 stride-1 kernels take a direct,
 * GEMM-free path for the weight gradient (see direct_dw below). 3x3 stride-1
 * layers with 8 or more channels in and out (the MNIST CNN's conv2) run as
 * Winograd F(4x4, 3x3) instead (winograd.c): 4x fewer multiply-adds, measured
 * 1.6x+ the speed of this path on that layer (tests/bench/bench_conv.c).
 *
 * The bf16 math mode (--precision bf16-mixed where the CPU has bf16 kernels,
 * bf16_gemm.h) runs every layer on this path with its three GEMMs in bf16
 * (lt_cpu_sgemm), but for the direct weight gradient of the small first
 * layers, which stays f32 (see direct_dw); col2im, the scatter and the
 * gather stay f32. The forward
 * and weight-gradient GEMMs build their column matrix in bf16 from the image,
 * in an order the tiles read in place (lt_bf16_gemm_im2col), instead of
 * im2col in f32 and then packing: bitwise the same results; on the MNIST
 * CNN's conv2 without the tile products (tests/bench/bench_conv.c) forward
 * 6.9 -> 4.1 ms, weight gradient 9.3 -> 6.3 ms per batch of 128. The scratch
 * size does not depend on the mode.
 *
 * A max pool that is the only reader of the output (the MNIST CNN's conv2)
 * hands its gradient over instead of writing the output's gradient out
 * (lt_conv2d_backward_pooled, lathe/graph.h): each reader of that gradient
 * (the gather, the direct weight gradient, Winograd's transform of a chunk)
 * makes its planes from the pool's gradient and winners where it reads them
 * (lt_conv_pooled_plane), so that the pool's backward no longer writes the
 * [B, OC, OH, OW] gradient to memory and this one no longer reads it and
 * the layer's output back. Bitwise the same results. */
#include <math.h>
#include <string.h>

#include "ops/cpu/bf16_gemm.h"
#include "ops/cpu/omp_threads.h"
#include "ops/cpu/winograd.h"
#include "ops/kernels.h"

static lt_conv_algo conv_algo = LT_CONV_AUTO;

void lt_conv2d_set_algo(lt_conv_algo algo) { conv_algo = algo; }

static int bf16_fused = 1;

void lt_conv2d_set_bf16_fused(int on) { bf16_fused = on; }

/* In the bf16 math mode every layer takes the GEMM path (its GEMMs are the
 * bf16 kernels), but for the direct weight gradient below: Winograd is f32
 * only. */
static int use_winograd(int C, int OC, int KH, int KW, int stride) {
    return conv_algo == LT_CONV_AUTO && lt_cpu_gemm_bf16() == LT_BF16_NONE && lt_winograd_ok(C, OC, KH, KW, stride);
}

/* Target size of one chunk's column matrix, in floats (4 MiB: 1M floats). The
 * chunk is that many floats' worth of whole samples, at least one. Measured on
 * the MNIST CNN's conv2 at batch 128 (tests/bench/bench_conv.c, 2 threads):
 * 6-sample chunks (this target) ran the layer at ~122 GFLOP/s, 3 samples at
 * ~119, 12 at ~119, 25 at ~106-112 and single samples at ~103. */
#ifndef LT_CONV_COL_FLOATS
#define LT_CONV_COL_FLOATS ((size_t)1 << 20)
#endif

static int conv_out_dim(int n, int k, int stride, int pad) { return (n + 2 * pad - k) / stride + 1; }

/* Samples per chunk for a column matrix of K rows and P pixels per sample. */
static int conv_chunk(int B, size_t K, size_t P) {
    size_t per = K * P;
    size_t nb = per ? LT_CONV_COL_FLOATS / per : (size_t)B;
    /* at least one chunk per thread, so small layers use every core too */
    size_t even = ((size_t)B + (size_t)lt_omp_max_threads() - 1) / (size_t)lt_omp_max_threads();
    if (nb > even) nb = even;
    if (nb < 1) nb = 1;
    if (nb > (size_t)B) nb = (size_t)B;
    return (int)nb;
}

/* ---- direct weight gradient for small 3x3 stride-1 convolutions ----
 * With K = C*9 tiny (the MNIST CNN's conv1 has C = 1, K = 9) the dW GEMM has a
 * 9-wide output and is bound by the gather of dout into channel-major order and
 * OpenBLAS's packing, not by flops. Here instead the input planes are copied,
 * zero-padded, into rows of XW floats (XW = OW + 2 rounded up to 32 lanes),
 *   xp [C, OH+2, XW] (+ 32 floats of slack for the last row's shifted reads),
 * and per sample and output channel the masked gradient plane g [OH, XW] (zero
 * in columns >= OW) is correlated with them as flat vectors of OH*XW floats:
 *   dW[oc, c, kh, kw] += sum_i g[i] * xp[c, kh*XW + kw + i]
 * The zero columns of g cancel the row wrap-around of the shifted x (x is
 * finite wherever the result is meaningful; an inf input makes dW NaN, as the
 * GEMM path would through its zero-masked products). Each kh
 * does the three kw taps in one pass over g with 3 x 32 lanes of sums, which
 * the compiler keeps in vector registers. */
#define DW_LANES 32

/* Taken in the bf16 math mode too, in f32: with K = C*9 <= 27 taps the bf16
 * GEMM pads K to a whole tile step of 32 (at least 16% of the tile products
 * and of the column matrix zeros; 72% for C = 1) and packs the gradient
 * transposed; measured on the MNIST CNN's conv1 at batch 128 without the tile
 * products (tests/bench/bench_conv.c), 3.9 ms for the bf16 GEMM against
 * 2.7 ms here, which also sums in f32. */
static int direct_dw_shape(int C, int KH, int KW, int stride) { return KH == 3 && KW == 3 && stride == 1 && C <= 3; }
static int direct_dw_ok(int C, int KH, int KW, int stride) { return direct_dw_shape(C, KH, KW, stride); }

static size_t dw_row(int OW) { return ((size_t)OW + 2 + DW_LANES - 1) / DW_LANES * DW_LANES; }

/* scratch: xp [C, OH+2, XW] + slack + g [OH, XW] + lane sums of dW [OC*C*9, 32]
 * and of db [OC, 32]; the lanes are reduced once, after the whole batch; then
 * a plane [OH*OW] for an output gradient made from a max pool's. */
static size_t direct_dw_floats(int C, int H, int W, int OC, int pad, int OH, int OW) {
    size_t xw = dw_row(OW);
    return (size_t)C * (OH + 2) * xw + DW_LANES + (size_t)OH * xw + (size_t)OC * (C * 9 + 1) * DW_LANES +
           (size_t)OH * OW;
}

/* One thread's share: samples [b0, b1) into the lane sums in its scratch. */
static void direct_dw_part(const float *restrict dout, const float *restrict out, const lt_pooled_grad *pg,
                           const float *restrict inp, int b0, int b1, int C, int H, int W, int OC, int pad, int OH,
                           int OW, lt_act act, int want_db, float *scratch) {
    size_t xw = dw_row(OW), xplane = (size_t)(OH + 2) * xw, P = (size_t)OH * OW, L = (size_t)OH * xw;
    float *restrict xp = scratch;
    float *restrict g = xp + (size_t)C * xplane + DW_LANES;
    float *restrict sums = g + L, *restrict dbs = sums + (size_t)OC * C * 9 * DW_LANES;
    float *restrict plane = dbs + (size_t)OC * DW_LANES; /* with pg */
    memset(sums, 0, (size_t)OC * (C * 9 + 1) * DW_LANES * sizeof(float));
    memset(g, 0, L * sizeof(float)); /* columns [OW, XW) stay zero */
    for (int b = b0; b < b1; b++) {
        /* xp[c, r, q] = inp[b, c, r - pad, q - pad], zero outside the image */
        memset(xp, 0, ((size_t)C * xplane + DW_LANES) * sizeof(float));
        for (int c = 0; c < C; c++)
            for (int r = 0; r < OH + 2; r++) {
                int ih = r - pad;
                if (ih < 0 || ih >= H) continue;
                int q0 = pad, q1 = W + pad; /* q = iw + pad */
                if (q1 > (int)xw) q1 = (int)xw;
                if (q1 > q0)
                    memcpy(xp + c * xplane + (size_t)r * xw + q0, inp + (((size_t)b * C + c) * H + ih) * W,
                           (size_t)(q1 - q0) * sizeof(float));
            }
        for (int oc = 0; oc < OC; oc++) {
            const float *gs, *os;
            lt_act a = act;
            if (pg) { /* the plane made from the pool's gradient, already masked */
                lt_conv_pooled_plane(plane, pg, b, oc, OC, P, act);
                gs = os = plane, a = LT_ACT_NONE;
            } else {
                gs = dout + ((size_t)b * OC + oc) * P, os = out + ((size_t)b * OC + oc) * P;
            }
            for (int oh = 0; oh < OH; oh++) {
                float *restrict gr = g + (size_t)oh * xw;
                const float *gi = gs + (size_t)oh * OW, *oi = os + (size_t)oh * OW;
                if (a == LT_ACT_RELU)
                    for (int ow = 0; ow < OW; ow++) gr[ow] = oi[ow] > 0.0f ? gi[ow] : 0.0f;
                else
                    memcpy(gr, gi, (size_t)OW * sizeof(float));
            }
            if (want_db) {
                float *restrict acc = dbs + (size_t)oc * DW_LANES;
                for (size_t i = 0; i < L; i += DW_LANES)
                    for (int l = 0; l < DW_LANES; l++) acc[l] += g[i + l];
            }
            for (int c = 0; c < C; c++)
                for (int kh = 0; kh < 3; kh++) {
                    const float *restrict x0 = xp + c * xplane + (size_t)kh * xw;
                    float a0[DW_LANES] = {0}, a1[DW_LANES] = {0}, a2[DW_LANES] = {0};
                    for (size_t i = 0; i < L; i += DW_LANES)
                        for (int l = 0; l < DW_LANES; l++) {
                            float gv = g[i + l];
                            a0[l] = fmaf(gv, x0[i + l], a0[l]);
                            a1[l] = fmaf(gv, x0[i + l + 1], a1[l]);
                            a2[l] = fmaf(gv, x0[i + l + 2], a2[l]);
                        }
                    float *restrict sk = sums + (((size_t)oc * C + c) * 9 + kh * 3) * DW_LANES;
                    for (int l = 0; l < DW_LANES; l++)
                        sk[l] += a0[l], sk[DW_LANES + l] += a1[l], sk[2 * DW_LANES + l] += a2[l];
                }
        }
    }
}

/* The samples are shared among the threads, each with its own copy of the
 * scratch above; their lane sums are added up in thread order (reproducible). */
static void direct_dw(float *restrict dw, float *restrict db, const float *restrict dout, const float *restrict out,
                      const lt_pooled_grad *pg, const float *restrict inp, int B, int C, int H, int W, int OC, int pad,
                      int OH, int OW, lt_act act, float *scratch) {
    size_t per = direct_dw_floats(C, H, W, OC, pad, OH, OW), xw = dw_row(OW);
    size_t sums_off = (size_t)C * (OH + 2) * xw + DW_LANES + (size_t)OH * xw;
    int nt = B > 1 ? lt_omp_max_threads() : 1;
    if (nt > B) nt = B;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int t = 0; t < nt; t++)
        direct_dw_part(dout, out, pg, inp, (int)((long)B * t / nt), (int)((long)B * (t + 1) / nt), C, H, W, OC, pad, OH,
                       OW, act, db != NULL, scratch + per * (size_t)t);
    for (size_t i = 0; i < (size_t)OC * C * 9; i++) {
        float acc = 0.0f;
        for (int t = 0; t < nt; t++) {
            const float *sums = scratch + per * (size_t)t + sums_off;
            for (int l = 0; l < DW_LANES; l++) acc += sums[i * DW_LANES + l];
        }
        dw[i] += acc;
    }
    for (int oc = 0; db && oc < OC; oc++) {
        float acc = 0.0f;
        for (int t = 0; t < nt; t++) {
            const float *dbs = scratch + per * (size_t)t + sums_off + (size_t)OC * C * 9 * DW_LANES;
            for (int l = 0; l < DW_LANES; l++) acc += dbs[(size_t)oc * DW_LANES + l];
        }
        db[oc] += acc;
    }
}

size_t lt_conv2d_scratch_floats(int B, int C, int H, int W, int OC, int KH, int KW, int stride, int pad) {
    int OH = conv_out_dim(H, KH, stride, pad), OW = conv_out_dim(W, KW, stride, pad);
    if (B <= 0 || OH <= 0 || OW <= 0) return 0;
    size_t K = (size_t)C * KH * KW, P = (size_t)OH * OW;
    int nb = conv_chunk(B, K, P);
    /* per thread: col and ocn/dcn for one chunk, then dW and db partial sums */
    size_t per_thread = (K + (size_t)OC) * (size_t)nb * P + (size_t)OC * K + (size_t)OC;
    size_t gemm = per_thread * (size_t)lt_omp_max_threads();
    size_t direct = direct_dw_shape(C, KH, KW, stride)
                        ? direct_dw_floats(C, H, W, OC, pad, OH, OW) * (size_t)lt_omp_max_threads()
                        : 0;
    size_t need = gemm > direct ? gemm : direct;
    /* Winograd layers may also run as GEMM (lt_conv2d_set_algo): room for both */
    if (lt_winograd_ok(C, OC, KH, KW, stride)) {
        size_t wg = lt_winograd_scratch_floats(B, C, H, W, OC, pad);
        if (wg > need) need = wg;
    }
    return need;
}

/* dst[0..n) = src[0..n) for short rows (an output row is OW floats, 24 for
 * the MNIST CNN's conv2): 16-float blocks and an overlapping last block, which
 * compile to a few vector moves where a memcpy call per row would cost more
 * than the copy. dst and src never overlap. */
static inline void copy_row(float *restrict dst, const float *restrict src, int n) {
    if (n < 16) {
        for (int j = 0; j < n; j++) dst[j] = src[j];
        return;
    }
    int j = 0;
    for (; j + 16 <= n; j += 16)
        for (int l = 0; l < 16; l++) dst[j + l] = src[j + l];
    if (j < n)
        for (int l = 0; l < 16; l++) dst[n - 16 + l] = src[n - 16 + l];
}

/* col [K, nb*P] <- samples [b0, b0+nb) of inp [B, C, H, W]. */
static void im2col(float *restrict col, const float *restrict inp, int b0, int nb, int C, int H, int W, int KH, int KW,
                   int stride, int pad, int OH, int OW) {
    size_t P = (size_t)OH * OW, N = (size_t)nb * P, HW = (size_t)H * W;
    for (int c = 0; c < C; c++)
        for (int kh = 0; kh < KH; kh++)
            for (int kw = 0; kw < KW; kw++) {
                float *restrict crow = col + ((size_t)(c * KH + kh) * KW + kw) * N;
                int lo, hi;
                lt_conv_valid_cols(kw, W, OW, stride, pad, &lo, &hi);
                for (int bb = 0; bb < nb; bb++) {
                    const float *restrict img = inp + ((size_t)(b0 + bb) * C + c) * HW;
                    float *restrict dst = crow + (size_t)bb * P;
                    for (int oh = 0; oh < OH; oh++, dst += OW) {
                        int ih = oh * stride - pad + kh;
                        if (ih < 0 || ih >= H) {
                            memset(dst, 0, (size_t)OW * sizeof(float));
                            continue;
                        }
                        for (int ow = 0; ow < lo; ow++) dst[ow] = 0.0f;
                        for (int ow = hi; ow < OW; ow++) dst[ow] = 0.0f;
                        const float *restrict src = img + (size_t)ih * W + (ptrdiff_t)lo * stride - pad + kw;
                        if (stride == 1)
                            copy_row(dst + lo, src, hi - lo);
                        else
                            for (int ow = lo; ow < hi; ow++) dst[ow] = src[(size_t)(ow - lo) * stride];
                    }
                }
            }
}

/* dinp [B, C, H, W] += col2im(dcol [K, nb*P]) for samples [b0, b0+nb). For a
 * fixed (c, kh, kw) row the map pixel -> input position is one-to-one, so the
 * inner loop has no write conflicts and vectorises for stride 1. */
static void col2im_add(float *restrict dinp, const float *restrict dcol, int b0, int nb, int C, int H, int W, int KH,
                       int KW, int stride, int pad, int OH, int OW) {
    size_t P = (size_t)OH * OW, N = (size_t)nb * P, HW = (size_t)H * W;
    if (stride == 1 && pad == 0 && KW == 3 && OW >= 2) {
        /* The common 3-wide, unpadded case: the three kw rows of a (c, kh) add
         * into one image row in a single pass, a third of the read-modify-write
         * traffic: dst[x] += s0[x] + s1[x-1] + s2[x-2], W = OW + 2. */
        for (int c = 0; c < C; c++)
            for (int kh = 0; kh < KH; kh++) {
                const float *r0 = dcol + ((size_t)(c * KH + kh) * 3) * N, *r1 = r0 + N, *r2 = r1 + N;
                for (int bb = 0; bb < nb; bb++) {
                    float *restrict img = dinp + ((size_t)(b0 + bb) * C + c) * HW;
                    for (int oh = 0; oh < OH; oh++) {
                        const float *restrict s0 = r0 + (size_t)bb * P + (size_t)oh * OW;
                        const float *restrict s1 = r1 + (size_t)bb * P + (size_t)oh * OW;
                        const float *restrict s2 = r2 + (size_t)bb * P + (size_t)oh * OW;
                        float *restrict dst = img + (size_t)(oh + kh) * W;
                        dst[0] += s0[0];
                        dst[1] += s0[1] + s1[0];
                        for (int x = 2; x < OW; x++) dst[x] += s0[x] + s1[x - 1] + s2[x - 2];
                        dst[OW] += s1[OW - 1] + s2[OW - 2];
                        dst[OW + 1] += s2[OW - 1];
                    }
                }
            }
        return;
    }
    for (int c = 0; c < C; c++)
        for (int kh = 0; kh < KH; kh++)
            for (int kw = 0; kw < KW; kw++) {
                const float *restrict crow = dcol + ((size_t)(c * KH + kh) * KW + kw) * N;
                int lo, hi;
                lt_conv_valid_cols(kw, W, OW, stride, pad, &lo, &hi);
                for (int bb = 0; bb < nb; bb++) {
                    float *restrict img = dinp + ((size_t)(b0 + bb) * C + c) * HW;
                    const float *restrict src = crow + (size_t)bb * P;
                    for (int oh = 0; oh < OH; oh++, src += OW) {
                        int ih = oh * stride - pad + kh;
                        if (ih < 0 || ih >= H) continue;
                        float *restrict dst = img + (size_t)ih * W + (ptrdiff_t)lo * stride - pad + kw;
                        if (stride == 1)
                            for (int ow = lo; ow < hi; ow++) dst[ow - lo] += src[ow];
                        else
                            for (int ow = lo; ow < hi; ow++) dst[(size_t)(ow - lo) * stride] += src[ow];
                    }
                }
            }
}

/* out [B, OC, P] (samples b0..b0+nb) <- act(ocn [OC, nb*P] + b). */
static void scatter_out(float *restrict out, const float *restrict ocn, const float *restrict b, int b0, int nb, int OC,
                        size_t P, lt_act act) {
    size_t N = (size_t)nb * P;
    for (int oc = 0; oc < OC; oc++) {
        float bv = b ? b[oc] : 0.0f;
        for (int bb = 0; bb < nb; bb++) {
            const float *restrict src = ocn + (size_t)oc * N + (size_t)bb * P;
            float *restrict dst = out + ((size_t)(b0 + bb) * OC + oc) * P;
            if (act == LT_ACT_RELU)
                for (size_t p = 0; p < P; p++) {
                    float v = src[p] + bv;
                    dst[p] = v < 0.0f ? 0.0f : v; /* NaN passes through, as in PyTorch */
                }
            else
                for (size_t p = 0; p < P; p++) dst[p] = src[p] + bv;
        }
    }
}

void lt_conv2d_forward(float *out, const float *inp, const float *w, const float *b, int B, int C, int H, int W, int OC,
                       int KH, int KW, int stride, int pad, lt_act act, float *scratch) {
    int OH = conv_out_dim(H, KH, stride, pad), OW = conv_out_dim(W, KW, stride, pad);
    if (B <= 0 || OC <= 0 || OH <= 0 || OW <= 0) return;
    if (use_winograd(C, OC, KH, KW, stride)) {
        lt_winograd_forward(out, inp, w, b, B, C, H, W, OC, pad, act, scratch);
        return;
    }
    size_t K = (size_t)C * KH * KW, P = (size_t)OH * OW;
    int nbc = conv_chunk(B, K, P), nchunks = (B + nbc - 1) / nbc;
    size_t per_thread = (K + (size_t)OC) * (size_t)nbc * P + (size_t)OC * K + (size_t)OC;
    lt_bf16_impl bf16 = bf16_fused ? lt_cpu_gemm_bf16() : LT_BF16_NONE; /* for the fused GEMMs */
#pragma omp parallel for schedule(static) if (nchunks > 1)
    for (int ci = 0; ci < nchunks; ci++) {
        float *col = scratch + per_thread * (size_t)lt_omp_thread_id(), *ocn = col + K * (size_t)nbc * P;
        int b0 = ci * nbc;
        int nb = B - b0 < nbc ? B - b0 : nbc;
        int N = nb * (int)P;
        lt_bf16_im2col g = {inp, b0, nb, C, H, W, KH, KW, stride, pad, OH, OW};
        if (bf16 == LT_BF16_NONE || lt_bf16_gemm_im2col(bf16, 0, 0, OC, N, (int)K, w, (int)K, &g, 0.0f, ocn, N)) {
            im2col(col, inp, b0, nb, C, H, W, KH, KW, stride, pad, OH, OW);
            lt_cpu_sgemm(0, 0, OC, N, (int)K, w, (int)K, col, N, 0.0f, ocn, N);
        }
        scatter_out(out, ocn, b, b0, nb, OC, P, act);
    }
}

/* dcn [OC, nb*P] <- mask(dout) for samples b0..b0+nb (dcn may be NULL when only
 * the bias gradient is wanted); db [OC] += the masked gradient's sums. The sum
 * runs in 16 lanes so that it vectorises (a plain float reduction would not). */
static void gather_dout(float *restrict dcn, float *restrict db, const float *restrict dout, const float *restrict out,
                        const lt_pooled_grad *pg, int b0, int nb, int OC, size_t P, lt_act act) {
    size_t N = (size_t)nb * P;
    for (int oc = 0; oc < OC; oc++) {
        float acc[16] = {0};
        float tail = 0.0f;
        for (int bb = 0; bb < nb; bb++) {
            if (pg) {
                /* the plane made in place from the pool's gradient (masked),
                   then summed in the same lanes as below */
                float *d = dcn + (size_t)oc * N + (size_t)bb * P;
                lt_conv_pooled_plane(d, pg, b0 + bb, oc, OC, P, act);
                size_t p = 0;
                for (; p + 16 <= P; p += 16)
                    for (int j = 0; j < 16; j++) acc[j] += d[p + j];
                for (; p < P; p++) tail += d[p];
                continue;
            }
            size_t off = ((size_t)(b0 + bb) * OC + oc) * P;
            const float *restrict g = dout + off;
            const float *restrict o = out + off;
            float tmp[16];
            float *restrict dst = dcn ? dcn + (size_t)oc * N + (size_t)bb * P : NULL;
            size_t p = 0;
            for (; p + 16 <= P; p += 16) {
                for (int j = 0; j < 16; j++) {
                    float v = g[p + j];
                    if (act == LT_ACT_RELU) v = o[p + j] > 0.0f ? v : 0.0f;
                    tmp[j] = v;
                    acc[j] += v;
                }
                if (dst) memcpy(dst + p, tmp, sizeof tmp);
            }
            for (; p < P; p++) {
                float v = g[p];
                if (act == LT_ACT_RELU) v = o[p] > 0.0f ? v : 0.0f;
                tail += v;
                if (dst) dst[p] = v;
            }
        }
        if (db) {
            float s = tail;
            for (int j = 0; j < 16; j++) s += acc[j];
            db[oc] += s;
        }
    }
}

void lt_conv_pooled_plane(float *dst, const lt_pooled_grad *pg, int b, int oc, int OC, size_t P, lt_act act) {
    size_t PP = (size_t)pg->PH * pg->PW, off = ((size_t)b * OC + oc) * PP;
    const float *restrict gp = pg->gp + off, *restrict po = pg->po + off;
    const int32_t *restrict ix = pg->idx + off;
    memset(dst, 0, P * sizeof *dst);
    for (size_t i = 0; i < PP; i++) {
        /* the gather's mask, out > 0 (false for NaN), at the winner: the
           pool's output is the winner's value */
        if (act == LT_ACT_RELU && !(po[i] > 0.0f)) continue;
        if (pg->fill)
            dst[ix[i]] = gp[i];
        else
            dst[ix[i]] += gp[i];
    }
}

/* lt_conv2d_backward; with pg, the output gradient from a max pool's
 * (lt_pooled_grad) and dout, out unread. */
static void conv_backward(float *dinp, float *dw, float *db, float *dout, const float *out, const lt_pooled_grad *pg,
                          const float *inp, const float *w, int B, int C, int H, int W, int OC, int KH, int KW,
                          int stride, int pad, lt_act act, float *scratch) {
    int OH = conv_out_dim(H, KH, stride, pad), OW = conv_out_dim(W, KW, stride, pad);
    if (B <= 0 || OC <= 0 || OH <= 0 || OW <= 0) return;
    if (!dinp && !dw && !db) return;
    if (use_winograd(C, OC, KH, KW, stride)) {
        lt_winograd_backward(dinp, dw, db, dout, out, pg, inp, w, B, C, H, W, OC, pad, act, scratch);
        return;
    }
    size_t K = (size_t)C * KH * KW, P = (size_t)OH * OW;
    int nbc = conv_chunk(B, K, P), nchunks = (B + nbc - 1) / nbc;
    size_t per_thread = (K + (size_t)OC) * (size_t)nbc * P + (size_t)OC * K + (size_t)OC;
    lt_bf16_impl bf16 = bf16_fused ? lt_cpu_gemm_bf16() : LT_BF16_NONE; /* for the fused GEMMs */
    if (dw && direct_dw_ok(C, KH, KW, stride)) {
        direct_dw(dw, db, dout, out, pg, inp, B, C, H, W, OC, pad, OH, OW, act, scratch);
        dw = NULL, db = NULL;
        if (!dinp) return;
    }
    int need_dcn = dinp || dw || pg; /* with pg the planes are made in dcn */
    int nthreads = nchunks > 1 ? lt_omp_max_threads() : 1;
    /* each thread's dW and db partial sums start at zero */
    for (int t = 0; t < nthreads; t++) {
        float *part = scratch + per_thread * (size_t)t + (K + (size_t)OC) * (size_t)nbc * P;
        memset(part, 0, ((size_t)OC * K + (size_t)OC) * sizeof(float));
    }
#pragma omp parallel for schedule(static) if (nchunks > 1)
    for (int ci = 0; ci < nchunks; ci++) {
        float *col = scratch + per_thread * (size_t)lt_omp_thread_id();
        float *dcn = col + K * (size_t)nbc * P;
        float *pdw = dcn + (size_t)OC * (size_t)nbc * P, *pdb = pdw + (size_t)OC * K;
        int b0 = ci * nbc;
        int nb = B - b0 < nbc ? B - b0 : nbc;
        int N = nb * (int)P;
        gather_dout(need_dcn ? dcn : NULL, db ? pdb : NULL, dout, out, pg, b0, nb, OC, P, act);
        lt_bf16_im2col g = {inp, b0, nb, C, H, W, KH, KW, stride, pad, OH, OW};
        if (dw &&
            (bf16 == LT_BF16_NONE || lt_bf16_gemm_im2col(bf16, 0, 1, OC, (int)K, N, dcn, N, &g, 1.0f, pdw, (int)K))) {
            im2col(col, inp, b0, nb, C, H, W, KH, KW, stride, pad, OH, OW);
            lt_cpu_sgemm(0, 1, OC, (int)K, N, dcn, N, col, N, 1.0f, pdw, (int)K);
        }
        if (dinp) {
            lt_cpu_sgemm(1, 0, (int)K, N, OC, w, (int)K, dcn, N, 0.0f, col, N);
            col2im_add(dinp, col, b0, nb, C, H, W, KH, KW, stride, pad, OH, OW);
        }
    }
    /* dW and db += the partial sums, in thread order (reproducible) */
    for (int t = 0; t < nthreads; t++) {
        const float *pdw = scratch + per_thread * (size_t)t + (K + (size_t)OC) * (size_t)nbc * P;
        const float *pdb = pdw + (size_t)OC * K;
        if (dw)
            for (size_t i = 0; i < (size_t)OC * K; i++) dw[i] += pdw[i];
        if (db)
            for (int i = 0; i < OC; i++) db[i] += pdb[i];
    }
}

void lt_conv2d_backward(float *dinp, float *dw, float *db, float *dout, const float *out, const float *inp,
                        const float *w, int B, int C, int H, int W, int OC, int KH, int KW, int stride, int pad,
                        lt_act act, float *scratch) {
    conv_backward(dinp, dw, db, dout, out, NULL, inp, w, B, C, H, W, OC, KH, KW, stride, pad, act, scratch);
}

void lt_conv2d_backward_pooled(float *dinp, float *dw, float *db, const lt_pooled_grad *pg, const float *inp,
                               const float *w, int B, int C, int H, int W, int OC, int KH, int KW, int stride, int pad,
                               lt_act act, float *scratch) {
    conv_backward(dinp, dw, db, NULL, NULL, pg, inp, w, B, C, H, W, OC, KH, KW, stride, pad, act, scratch);
}
