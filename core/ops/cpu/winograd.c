/* winograd.c: 3x3 stride-1 convolution by Winograd's minimal filtering
 * algorithm F(4x4, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional
 * Neural Networks", 2016), forward and both gradients.
 *
 * The output is cut into 4x4 tiles; tile t reads the 6x6 input patch d_t at
 * (4*ty - pad, 4*tx - pad). With the interpolation points 0, +-1, +-2, inf,
 *   Y_t = A^T [ (G g G^T) (.) (B^T d_t B) ] A            (forward)
 * where (.) is the element-wise product over the 36 transform points. Summed
 * over input channels the product is, at each of the 36 points xi, a matrix
 * product, so one layer is 36 GEMMs:
 *   U[xi] [OC, C]   = G w G^T               (weights, once per call)
 *   V[xi] [C, N]    = B^T d B               (input, N = tiles of a chunk)
 *   M[xi] [OC, N]   = U[xi] V[xi]           (GEMM, K = C)
 *   out             = A^T M A + bias, act   (4x4 per tile)
 * The gradients are the adjoints of the same bilinear form, so they reuse the
 * tiling and the transforms (no flipped kernels, no padded gradient):
 *   dM[xi] [OC, N]  = A dY A^T              (masked output gradient, 6x6)
 *   dU[xi] [OC, C] += dM[xi] V[xi]^T        (GEMM, K = N: the weight gradient)
 *   dV[xi] [C, N]   = U[xi]^T dM[xi]        (GEMM, K = OC)
 *   dinp           += B dV B^T              (6x6 patches, overlapping by 2)
 *   dw             += G^T dU G
 * Per output pixel that is 36*C*OC/16 multiply-adds per GEMM instead of
 * im2col's 9*C*OC: 2.25x fewer, 4x fewer for whole tiles. The MNIST CNN's conv2
 * (26x26 -> 24x24) is exactly 6x6 tiles. In exact arithmetic the result equals
 * the direct convolution; in f32 the transforms' small integer and 1/6, 1/24
 * coefficients cost a few units in the last place (tests/unit compare both
 * paths and PyTorch).
 *
 * Layout and threads, as in conv2d.c: the batch is cut into chunks of whole
 * samples, about WG_COLS tiles each, shared out among the OpenMP threads with
 * a static schedule; each thread has its own V, M and dU / db partial sums in
 * the scratch, and OpenBLAS (its OpenMP build) runs each chunk's GEMMs on the
 * calling thread. The transforms work on WL tiles at once, one tile per vector
 * lane, so that they compile to vector code: a tile's 36 (or 16) values are
 * gathered from the image into lanes, transformed, and stored as rows of the
 * [xi][channel][tile] matrices the GEMMs read. */
#include "ops/cpu/winograd.h"

#include <cblas.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define WG_P 36 /* transform points: 6x6 */
#define WL 16   /* tiles per vector block */

/* Target tiles per chunk. Measured on the MNIST CNN's conv2 at batch 128
 * (tests/bench/bench_conv.c, 2 threads): see the figures in that file's
 * README section. */
#ifndef WG_COLS
#define WG_COLS 512
#endif

static int max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

int lt_winograd_ok(int C, int OC, int KH, int KW, int stride) {
    return KH == 3 && KW == 3 && stride == 1 && C >= 8 && OC >= 8;
}

static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

/* The geometry of one call. */
typedef struct wg_geom {
    int B, C, H, W, OC, pad, OH, OW;
    int TW, T;       /* tiles per row, per sample */
    int nbc, nchunk; /* samples per chunk, chunks */
    size_t ncol;     /* columns of a chunk's V / M rows: nbc*T rounded up to WL */
    size_t u_floats; /* U: 36*OC*C, rounded up to WL */
    size_t per;      /* one thread's scratch: V, M, dU, db */
} wg_geom;

static wg_geom geom(int B, int C, int H, int W, int OC, int pad) {
    wg_geom g = {.B = B, .C = C, .H = H, .W = W, .OC = OC, .pad = pad};
    g.OH = H + 2 * pad - 2;
    g.OW = W + 2 * pad - 2;
    int TH = (g.OH + 3) / 4;
    g.TW = (g.OW + 3) / 4;
    g.T = TH * g.TW;
    int nb = WG_COLS / g.T;
    int even = (B + max_threads() - 1) / max_threads(); /* a chunk per thread at least */
    if (nb > even) nb = even;
    if (nb < 1) nb = 1;
    g.nbc = nb;
    g.nchunk = (B + nb - 1) / nb;
    g.ncol = round_up((size_t)nb * g.T, WL);
    g.u_floats = round_up((size_t)WG_P * OC * C, WL);
    g.per = (size_t)WG_P * ((size_t)C + OC) * g.ncol + g.u_floats + round_up((size_t)OC, WL);
    return g;
}

size_t lt_winograd_scratch_floats(int B, int C, int H, int W, int OC, int pad) {
    if (B <= 0 || H + 2 * pad < 3 || W + 2 * pad < 3) return 0;
    wg_geom g = geom(B, C, H, W, OC, pad);
    return g.u_floats + g.per * (size_t)max_threads();
}

/* ---- the 1-D transforms, on WL lanes; x and y step by xs / ys floats ---- */

/* y = B^T x (6 -> 6) */
static inline void tf_bt(const float *restrict x, size_t xs, float *restrict y, size_t ys) {
    for (int l = 0; l < WL; l++) {
        float d0 = x[l], d1 = x[xs + l], d2 = x[2 * xs + l], d3 = x[3 * xs + l], d4 = x[4 * xs + l],
              d5 = x[5 * xs + l];
        float p = d4 - d2, q = d3 - d1;
        y[l] = 4.0f * d0 - 5.0f * d2 + d4;
        y[ys + l] = (d3 + d4) - 4.0f * (d1 + d2);
        y[2 * ys + l] = (d4 - d3) + 4.0f * (d1 - d2);
        y[3 * ys + l] = p + 2.0f * q;
        y[4 * ys + l] = p - 2.0f * q;
        y[5 * ys + l] = 4.0f * d1 - 5.0f * d3 + d5;
    }
}

/* y = A^T x (6 -> 4) */
static inline void tf_at(const float *restrict x, size_t xs, float *restrict y, size_t ys) {
    for (int l = 0; l < WL; l++) {
        float m0 = x[l], m1 = x[xs + l], m2 = x[2 * xs + l], m3 = x[3 * xs + l], m4 = x[4 * xs + l],
              m5 = x[5 * xs + l];
        float s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
        y[l] = m0 + s12 + s34;
        y[ys + l] = d12 + 2.0f * d34;
        y[2 * ys + l] = s12 + 4.0f * s34;
        y[3 * ys + l] = d12 + 8.0f * d34 + m5;
    }
}

/* y = A x (4 -> 6), the adjoint of tf_at */
static inline void tf_a(const float *restrict x, size_t xs, float *restrict y, size_t ys) {
    for (int l = 0; l < WL; l++) {
        float u0 = x[l], u1 = x[xs + l], u2 = x[2 * xs + l], u3 = x[3 * xs + l];
        float e = u0 + u2, o = u1 + u3, e4 = u0 + 4.0f * u2, o4 = 2.0f * u1 + 8.0f * u3;
        y[l] = u0;
        y[ys + l] = e + o;
        y[2 * ys + l] = e - o;
        y[3 * ys + l] = e4 + o4;
        y[4 * ys + l] = e4 - o4;
        y[5 * ys + l] = u3;
    }
}

/* y = B x (6 -> 6), the adjoint of tf_bt */
static inline void tf_b(const float *restrict x, size_t xs, float *restrict y, size_t ys) {
    for (int l = 0; l < WL; l++) {
        float v0 = x[l], v1 = x[xs + l], v2 = x[2 * xs + l], v3 = x[3 * xs + l], v4 = x[4 * xs + l],
              v5 = x[5 * xs + l];
        y[l] = 4.0f * v0;
        y[ys + l] = 4.0f * (v2 - v1) + 2.0f * (v4 - v3) + 4.0f * v5;
        y[2 * ys + l] = -5.0f * v0 - 4.0f * (v1 + v2) - (v3 + v4);
        y[3 * ys + l] = (v1 - v2) + 2.0f * (v3 - v4) - 5.0f * v5;
        y[4 * ys + l] = v0 + v1 + v2 + v3 + v4;
        y[5 * ys + l] = v5;
    }
}

/* ---- 2-D transforms of WL tiles; blocks are [point][lane] ---- */

/* v[36] = B^T d B, d[36] (6x6) */
static void tf2_input(const float *restrict d, float *restrict v) {
    float t[WG_P * WL];
    for (int i = 0; i < 6; i++) tf_bt(d + i * 6 * WL, WL, t + i * 6 * WL, WL);
    for (int s = 0; s < 6; s++) tf_bt(t + s * WL, 6 * WL, v + s * WL, 6 * WL);
}

/* y[16] = A^T m A, m[36] */
static void tf2_output(const float *restrict m, float *restrict y) {
    float t[24 * WL];
    for (int i = 0; i < 6; i++) tf_at(m + i * 6 * WL, WL, t + i * 4 * WL, WL);
    for (int q = 0; q < 4; q++) tf_at(t + q * WL, 4 * WL, y + q * WL, 4 * WL);
}

/* m[36] = A u A^T, u[16] (4x4) */
static void tf2_grad_out(const float *restrict u, float *restrict m) {
    float t[24 * WL];
    for (int p = 0; p < 4; p++) tf_a(u + p * 4 * WL, WL, t + p * 6 * WL, WL);
    for (int k = 0; k < 6; k++) tf_a(t + k * WL, 6 * WL, m + k * WL, 6 * WL);
}

/* d[36] = B v B^T, v[36] */
static void tf2_grad_in(const float *restrict v, float *restrict d) {
    float t[WG_P * WL];
    for (int r = 0; r < 6; r++) tf_b(v + r * 6 * WL, WL, t + r * 6 * WL, WL);
    for (int j = 0; j < 6; j++) tf_b(t + j * WL, 6 * WL, d + j * WL, 6 * WL);
}

/* U[xi][oc][c] = (G w[oc][c] G^T)[xi] for every filter (scalar: runs once per
 * call over OC*C filters). */
static void weights_transform(float *restrict U, const float *restrict w, int OC, int C) {
    size_t stride = (size_t)OC * C;
    for (size_t f = 0; f < stride; f++) {
        const float *g = w + f * 9;
        float t[6][3], u[6][6];
        for (int k = 0; k < 3; k++) {
            float g0 = g[k], g1 = g[3 + k], g2 = g[6 + k]; /* column k */
            t[0][k] = g0 * 0.25f;
            t[1][k] = -(g0 + g1 + g2) / 6.0f;
            t[2][k] = -(g0 - g1 + g2) / 6.0f;
            t[3][k] = g0 / 24.0f + g1 / 12.0f + g2 / 6.0f;
            t[4][k] = g0 / 24.0f - g1 / 12.0f + g2 / 6.0f;
            t[5][k] = g2;
        }
        for (int r = 0; r < 6; r++) {
            float g0 = t[r][0], g1 = t[r][1], g2 = t[r][2];
            u[r][0] = g0 * 0.25f;
            u[r][1] = -(g0 + g1 + g2) / 6.0f;
            u[r][2] = -(g0 - g1 + g2) / 6.0f;
            u[r][3] = g0 / 24.0f + g1 / 12.0f + g2 / 6.0f;
            u[r][4] = g0 / 24.0f - g1 / 12.0f + g2 / 6.0f;
            u[r][5] = g2;
        }
        for (int p = 0; p < WG_P; p++) U[(size_t)p * stride + f] = u[p / 6][p % 6];
    }
}

/* w[oc][c] += G^T dU[.][oc][c] G for every filter. */
static void weights_grad(float *restrict dw, const float *restrict dU, int OC, int C) {
    size_t stride = (size_t)OC * C;
    for (size_t f = 0; f < stride; f++) {
        float q[6][6], t[3][6];
        for (int p = 0; p < WG_P; p++) q[p / 6][p % 6] = dU[(size_t)p * stride + f];
        for (int s = 0; s < 6; s++) { /* G^T over the rows */
            float q0 = q[0][s], q1 = q[1][s], q2 = q[2][s], q3 = q[3][s], q4 = q[4][s], q5 = q[5][s];
            t[0][s] = q0 * 0.25f - (q1 + q2) / 6.0f + (q3 + q4) / 24.0f;
            t[1][s] = (q2 - q1) / 6.0f + (q3 - q4) / 12.0f;
            t[2][s] = (q3 + q4 - q1 - q2) / 6.0f + q5;
        }
        float *g = dw + f * 9;
        for (int k = 0; k < 3; k++) { /* and over the columns */
            float q0 = t[k][0], q1 = t[k][1], q2 = t[k][2], q3 = t[k][3], q4 = t[k][4], q5 = t[k][5];
            g[k * 3 + 0] += q0 * 0.25f - (q1 + q2) / 6.0f + (q3 + q4) / 24.0f;
            g[k * 3 + 1] += (q2 - q1) / 6.0f + (q3 - q4) / 12.0f;
            g[k * 3 + 2] += (q3 + q4 - q1 - q2) / 6.0f + q5;
        }
    }
}

/* ---- per-chunk steps ---- */

/* V[xi][c][n] for the nt = nb*T tiles of samples [b0, b0+nb), columns up to
 * np (a multiple of WL; the tiles past nt are zero). */
static void input_transform(float *restrict V, const wg_geom *g, const float *restrict inp, int b0, int nt,
                            size_t np) {
    size_t HW = (size_t)g->H * g->W, cs = (size_t)g->C * g->ncol;
    float d[WG_P * WL], v[WG_P * WL];
    for (int c = 0; c < g->C; c++)
        for (size_t n0 = 0; n0 < np; n0 += WL) {
            for (int l = 0; l < WL; l++) {
                int n = (int)n0 + l;
                if (n >= nt) {
                    for (int p = 0; p < WG_P; p++) d[p * WL + l] = 0.0f;
                    continue;
                }
                int bb = n / g->T, t = n % g->T;
                int y0 = t / g->TW * 4 - g->pad, x0 = t % g->TW * 4 - g->pad;
                const float *img = inp + ((size_t)(b0 + bb) * g->C + c) * HW;
                if (y0 >= 0 && x0 >= 0 && y0 + 6 <= g->H && x0 + 6 <= g->W) {
                    for (int i = 0; i < 6; i++)
                        for (int j = 0; j < 6; j++) d[(i * 6 + j) * WL + l] = img[(size_t)(y0 + i) * g->W + x0 + j];
                } else {
                    for (int i = 0; i < 6; i++)
                        for (int j = 0; j < 6; j++) {
                            int y = y0 + i, x = x0 + j;
                            d[(i * 6 + j) * WL + l] =
                                y >= 0 && y < g->H && x >= 0 && x < g->W ? img[(size_t)y * g->W + x] : 0.0f;
                        }
                }
            }
            tf2_input(d, v);
            float *dst = V + (size_t)c * g->ncol + n0;
            for (int p = 0; p < WG_P; p++) memcpy(dst + (size_t)p * cs, v + p * WL, WL * sizeof(float));
        }
}

/* out <- act(A^T M A + bias) for the tiles of the chunk. */
static void output_transform(float *restrict out, const wg_geom *g, const float *restrict M, const float *restrict b,
                             int b0, int nt, size_t np, lt_act act) {
    size_t P = (size_t)g->OH * g->OW, os = (size_t)g->OC * g->ncol;
    float m[WG_P * WL], y[16 * WL];
    for (int oc = 0; oc < g->OC; oc++) {
        float bv = b ? b[oc] : 0.0f;
        for (size_t n0 = 0; n0 < np; n0 += WL) {
            const float *src = M + (size_t)oc * g->ncol + n0;
            for (int p = 0; p < WG_P; p++) memcpy(m + p * WL, src + (size_t)p * os, WL * sizeof(float));
            tf2_output(m, y);
            for (int l = 0; l < WL && (int)n0 + l < nt; l++) {
                int n = (int)n0 + l, bb = n / g->T, t = n % g->T;
                int y0 = t / g->TW * 4, x0 = t % g->TW * 4;
                int h = g->OH - y0 < 4 ? g->OH - y0 : 4, w = g->OW - x0 < 4 ? g->OW - x0 : 4;
                float *dst = out + ((size_t)(b0 + bb) * g->OC + oc) * P + (size_t)y0 * g->OW + x0;
                for (int i = 0; i < h; i++)
                    for (int j = 0; j < w; j++) {
                        float val = y[(i * 4 + j) * WL + l] + bv;
                        if (act == LT_ACT_RELU) val = val < 0.0f ? 0.0f : val; /* NaN passes, as in PyTorch */
                        dst[(size_t)i * g->OW + j] = val;
                    }
            }
        }
    }
}

/* dM[xi][oc][n] = A dY A^T of the masked output gradient; db += its sums. */
static void grad_out_transform(float *restrict dM, float *restrict db, const wg_geom *g, const float *restrict dout,
                               const float *restrict out, int b0, int nt, size_t np, lt_act act) {
    size_t P = (size_t)g->OH * g->OW, os = (size_t)g->OC * g->ncol;
    float u[16 * WL], m[WG_P * WL];
    for (int oc = 0; oc < g->OC; oc++) {
        float acc = 0.0f;
        for (size_t n0 = 0; n0 < np; n0 += WL) {
            for (int l = 0; l < WL; l++) {
                int n = (int)n0 + l;
                for (int p = 0; p < 16; p++) u[p * WL + l] = 0.0f;
                if (n >= nt) continue;
                int bb = n / g->T, t = n % g->T;
                int y0 = t / g->TW * 4, x0 = t % g->TW * 4;
                int h = g->OH - y0 < 4 ? g->OH - y0 : 4, w = g->OW - x0 < 4 ? g->OW - x0 : 4;
                size_t off = ((size_t)(b0 + bb) * g->OC + oc) * P + (size_t)y0 * g->OW + x0;
                for (int i = 0; i < h; i++)
                    for (int j = 0; j < w; j++) {
                        size_t k = off + (size_t)i * g->OW + j;
                        float v = dout[k];
                        if (act == LT_ACT_RELU && !(out[k] > 0.0f)) v = 0.0f;
                        u[(i * 4 + j) * WL + l] = v;
                        acc += v;
                    }
            }
            tf2_grad_out(u, m);
            float *dst = dM + (size_t)oc * g->ncol + n0;
            for (int p = 0; p < WG_P; p++) memcpy(dst + (size_t)p * os, m + p * WL, WL * sizeof(float));
        }
        if (db) db[oc] += acc;
    }
}

/* dinp += B dV B^T, 6x6 patches scattered back over the input (overlapping). */
static void grad_in_transform(float *restrict dinp, const wg_geom *g, const float *restrict dV, int b0, int nt,
                              size_t np) {
    size_t HW = (size_t)g->H * g->W, cs = (size_t)g->C * g->ncol;
    float v[WG_P * WL], d[WG_P * WL];
    for (int c = 0; c < g->C; c++)
        for (size_t n0 = 0; n0 < np; n0 += WL) {
            const float *src = dV + (size_t)c * g->ncol + n0;
            for (int p = 0; p < WG_P; p++) memcpy(v + p * WL, src + (size_t)p * cs, WL * sizeof(float));
            tf2_grad_in(v, d);
            for (int l = 0; l < WL && (int)n0 + l < nt; l++) {
                int n = (int)n0 + l, bb = n / g->T, t = n % g->T;
                int y0 = t / g->TW * 4 - g->pad, x0 = t % g->TW * 4 - g->pad;
                float *img = dinp + ((size_t)(b0 + bb) * g->C + c) * HW;
                if (y0 >= 0 && x0 >= 0 && y0 + 6 <= g->H && x0 + 6 <= g->W) {
                    for (int i = 0; i < 6; i++)
                        for (int j = 0; j < 6; j++) img[(size_t)(y0 + i) * g->W + x0 + j] += d[(i * 6 + j) * WL + l];
                } else {
                    for (int i = 0; i < 6; i++)
                        for (int j = 0; j < 6; j++) {
                            int y = y0 + i, x = x0 + j;
                            if (y >= 0 && y < g->H && x >= 0 && x < g->W)
                                img[(size_t)y * g->W + x] += d[(i * 6 + j) * WL + l];
                        }
                }
            }
        }
}

/* ---- the kernels ---- */

void lt_winograd_forward(float *out, const float *inp, const float *w, const float *b, int B, int C, int H, int W,
                         int OC, int pad, lt_act act, float *scratch) {
    if (B <= 0 || H + 2 * pad < 3 || W + 2 * pad < 3) return;
    wg_geom g = geom(B, C, H, W, OC, pad);
    float *U = scratch;
    weights_transform(U, w, OC, C);
#pragma omp parallel for schedule(static) if (g.nchunk > 1)
    for (int ci = 0; ci < g.nchunk; ci++) {
        float *V = scratch + g.u_floats + g.per * (size_t)thread_id();
        float *M = V + (size_t)WG_P * C * g.ncol;
        int b0 = ci * g.nbc, nb = B - b0 < g.nbc ? B - b0 : g.nbc, nt = nb * g.T;
        size_t np = round_up((size_t)nt, WL);
        input_transform(V, &g, inp, b0, nt, np);
        for (int p = 0; p < WG_P; p++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, (int)np, C, 1.0f, U + (size_t)p * OC * C, C,
                        V + (size_t)p * C * g.ncol, (int)g.ncol, 0.0f, M + (size_t)p * OC * g.ncol, (int)g.ncol);
        output_transform(out, &g, M, b, b0, nt, np, act);
    }
}

void lt_winograd_backward(float *dinp, float *dw, float *db, const float *dout, const float *out, const float *inp,
                          const float *w, int B, int C, int H, int W, int OC, int pad, lt_act act, float *scratch) {
    if (B <= 0 || H + 2 * pad < 3 || W + 2 * pad < 3) return;
    if (!dinp && !dw && !db) return;
    wg_geom g = geom(B, C, H, W, OC, pad);
    float *U = scratch;
    size_t vm = (size_t)WG_P * ((size_t)C + OC) * g.ncol; /* V and M of a thread, before its dU and db */
    int nthreads = g.nchunk > 1 ? max_threads() : 1;
    if (dinp) weights_transform(U, w, OC, C);
    for (int t = 0; t < nthreads; t++)
        memset(scratch + g.u_floats + g.per * (size_t)t + vm, 0,
               (g.u_floats + round_up((size_t)OC, WL)) * sizeof(float));
#pragma omp parallel for schedule(static) if (g.nchunk > 1)
    for (int ci = 0; ci < g.nchunk; ci++) {
        float *V = scratch + g.u_floats + g.per * (size_t)thread_id();
        float *dM = V + (size_t)WG_P * C * g.ncol, *dU = V + vm, *pdb = dU + g.u_floats;
        int b0 = ci * g.nbc, nb = B - b0 < g.nbc ? B - b0 : g.nbc, nt = nb * g.T;
        size_t np = round_up((size_t)nt, WL);
        grad_out_transform(dM, db ? pdb : NULL, &g, dout, out, b0, nt, np, act);
        if (dw) input_transform(V, &g, inp, b0, nt, np);
        for (int p = 0; p < WG_P; p++) {
            float *Vp = V + (size_t)p * C * g.ncol, *dMp = dM + (size_t)p * OC * g.ncol;
            if (dw) /* before dV overwrites V */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, C, (int)np, 1.0f, dMp, (int)g.ncol, Vp,
                            (int)g.ncol, 1.0f, dU + (size_t)p * OC * C, C);
            if (dinp)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, (int)np, OC, 1.0f, U + (size_t)p * OC * C, C,
                            dMp, (int)g.ncol, 0.0f, Vp, (int)g.ncol);
        }
        if (dinp) grad_in_transform(dinp, &g, V, b0, nt, np);
    }
    /* the threads' partial sums, added up in thread order (reproducible); the
     * first thread's dU doubles as the total */
    float *dU0 = scratch + g.u_floats + vm, *db0 = dU0 + g.u_floats;
    for (int t = 1; t < nthreads; t++) {
        const float *dUt = scratch + g.u_floats + g.per * (size_t)t + vm, *dbt = dUt + g.u_floats;
        if (dw)
            for (size_t i = 0; i < (size_t)WG_P * OC * C; i++) dU0[i] += dUt[i];
        if (db)
            for (int i = 0; i < OC; i++) db0[i] += dbt[i];
    }
    if (dw) weights_grad(dw, dU0, OC, C);
    if (db)
        for (int i = 0; i < OC; i++) db[i] += db0[i];
}
