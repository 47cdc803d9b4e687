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
 * The backward pass transforms the input again, chunk by chunk in cache,
 * rather than keeping the forward's V: that would be about twice the input's
 * size (21 MB for the MNIST CNN's conv2 at batch 128) written in forward and
 * read back in backward, in a workspace that lives across the whole step.
 * Per output pixel that is 36*C*OC/16 multiply-adds per GEMM instead of
 * im2col's 9*C*OC: 2.25x fewer, 4x fewer for whole tiles. The MNIST CNN's conv2
 * (26x26 -> 24x24) is exactly 6x6 tiles. In exact arithmetic the result equals
 * the direct convolution; in f32 the transforms' small integer and 1/6, 1/24
 * coefficients cost a few 1e-6 of the largest value (tests/unit compare it
 * with a double-precision direct convolution, the im2col path and PyTorch).
 *
 * Layout and threads, as in conv2d.c: the batch is cut into chunks of whole
 * samples, about WG_COLS tiles each and as many for every thread, shared out
 * among the OpenMP threads with a static schedule; each thread has its own V,
 * M and dU / db partial sums in the scratch, and OpenBLAS (its OpenMP build)
 * runs each chunk's GEMMs on the calling thread. The transforms work on WL
 * tiles at once, one tile per vector lane, so that they compile to vector
 * code: a tile's 36 (or 16) values are gathered from the image into lanes,
 * transformed, and stored as rows of the [xi][channel][tile] matrices the
 * GEMMs read. */
#include "ops/cpu/winograd.h"

#include "ops/cpu/omp_threads.h"

#include <cblas.h>
#include <string.h>
#if defined(__AVX512F__) && defined(__AVX512VL__)
#include <immintrin.h>
#define WG_AVX512 1
#endif

#define WG_P 36 /* transform points: 6x6 */
#define WL 16   /* tiles per vector block */

/* Moving a block's tiles between the images and the [point][lane] blocks:
 * with AVX-512 (a -march=native build on a CPU that has it) whole tile rows
 * are loaded and stored as vectors and the block is transposed in registers;
 * otherwise, or after lt_winograd_set_vector(0), one value at a time. Both
 * move the same values in the same order, so their results are bitwise the
 * same (tests/unit/test_conv_winograd.c checks that). */
static int wg_vector = 1;

void lt_winograd_set_vector(int on) { wg_vector = on; }

#ifdef WG_AVX512
_Static_assert(WL == 16, "the vector paths move 16 tiles at a time");

/* r[i][j] <- r[j][i] for 16 vectors of 16 floats: unpack pairs, shuffle
 * quads, then two rounds of 128-bit lane shuffles (64 shuffles). */
static inline void transpose16(__m512 r[16]) {
    __m512 a[16], b[16];
    for (int k = 0; k < 8; k++) {
        a[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        a[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    /* b[4k+m], 128-bit lane q: column 4q+m of rows 4k..4k+3 */
    for (int k = 0; k < 4; k++) {
        b[4 * k] = _mm512_shuffle_ps(a[4 * k], a[4 * k + 2], 0x44);
        b[4 * k + 1] = _mm512_shuffle_ps(a[4 * k], a[4 * k + 2], 0xEE);
        b[4 * k + 2] = _mm512_shuffle_ps(a[4 * k + 1], a[4 * k + 3], 0x44);
        b[4 * k + 3] = _mm512_shuffle_ps(a[4 * k + 1], a[4 * k + 3], 0xEE);
    }
    for (int m = 0; m < 4; m++) {
        __m512 d0 = _mm512_shuffle_f32x4(b[m], b[4 + m], 0x88), d1 = _mm512_shuffle_f32x4(b[m], b[4 + m], 0xDD);
        __m512 e0 = _mm512_shuffle_f32x4(b[8 + m], b[12 + m], 0x88),
               e1 = _mm512_shuffle_f32x4(b[8 + m], b[12 + m], 0xDD);
        r[m] = _mm512_shuffle_f32x4(d0, e0, 0x88);
        r[8 + m] = _mm512_shuffle_f32x4(d0, e0, 0xDD);
        r[4 + m] = _mm512_shuffle_f32x4(d1, e1, 0x88);
        r[12 + m] = _mm512_shuffle_f32x4(d1, e1, 0xDD);
    }
}

/* The 4x4 values at p (rows ld apart) as one vector, row-major. */
static inline __m512 load_4x4(const float *p, size_t ld) {
    __m512 v = _mm512_castps128_ps512(_mm_loadu_ps(p));
    v = _mm512_insertf32x4(v, _mm_loadu_ps(p + ld), 1);
    v = _mm512_insertf32x4(v, _mm_loadu_ps(p + 2 * ld), 2);
    return _mm512_insertf32x4(v, _mm_loadu_ps(p + 3 * ld), 3);
}

/* Tile-major staging: st[l][0..35] is tile l's 6x6 patch, row-major; the
 * point-major block d[p][l] is its transpose, three 16x16 transposes. The
 * staging rows have 48 floats; st[l][36..47] stay zero. */
#define ST_ROW 48

static void stage_to_points(float (*st)[ST_ROW], float *restrict d) {
    __m512 r[16];
    for (int k = 0; k < 3; k++) {
        for (int l = 0; l < WL; l++) r[l] = _mm512_loadu_ps(st[l] + 16 * k);
        transpose16(r);
        for (int p = 0; p < 16 && 16 * k + p < WG_P; p++) _mm512_storeu_ps(d + (16 * k + p) * WL, r[p]);
    }
}

static void points_to_stage(const float *restrict d, float (*st)[ST_ROW]) {
    __m512 r[16];
    for (int k = 0; k < 3; k++) {
        for (int p = 0; p < 16; p++)
            r[p] = 16 * k + p < WG_P ? _mm512_loadu_ps(d + (16 * k + p) * WL) : _mm512_setzero_ps();
        transpose16(r);
        for (int l = 0; l < WL; l++) _mm512_storeu_ps(st[l] + 16 * k, r[l]);
    }
}
#endif

/* Target tiles per chunk: 4 samples of the MNIST CNN's conv2 (36 tiles each),
 * whose V and M (1.9 MB) then stay near the core. Measured on that layer at
 * batch 128, 2 threads, best of 60 calls (forward / dW / dX ms): 72 tiles
 * 8.3 / 11.0 / 10.1, 144 tiles 8.0 / 11.1 / 9.9, 256 tiles 8.3 / 11.7 / 10.2,
 * 512 tiles 8.5 / 11.4 / 10.8. */
#ifndef WG_COLS
#define WG_COLS 144
#endif

int lt_winograd_ok(int C, int OC, int KH, int KW, int stride) {
    return KH == 3 && KW == 3 && stride == 1 && C >= 8 && OC >= 8;
}

static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

/* The geometry of one call. */
typedef struct wg_geom {
    int B, C, H, W, OC, pad, OH, OW;
    int TH, TW, T;     /* tile rows, tiles per row, tiles per sample */
    int nbc, nchunk;   /* samples per chunk, chunks */
    size_t ncol;       /* columns of a chunk's V / M rows: nbc*T rounded up to WL */
    size_t vs, ms, us; /* strides of the 36 planes of V [C, ncol], M [OC, ncol], U [OC, C] */
    size_t u_floats;   /* U: 36 planes */
    size_t per;        /* one thread's scratch: V, M, dU, db, db lanes, dY */
    size_t dy;         /* a chunk's output gradient, made from a max pool's (lt_pooled_grad) */
} wg_geom;

static wg_geom geom(int B, int C, int H, int W, int OC, int pad) {
    wg_geom g = {.B = B, .C = C, .H = H, .W = W, .OC = OC, .pad = pad};
    g.OH = H + 2 * pad - 2;
    g.OW = W + 2 * pad - 2;
    g.TH = (g.OH + 3) / 4;
    g.TW = (g.OW + 3) / 4;
    g.T = g.TH * g.TW;
    /* chunks of about WG_COLS tiles, as many for every thread (at least one
     * each), with sizes that differ by one sample at most: no thread waits */
    int nb = WG_COLS / g.T, nt = lt_omp_max_threads();
    if (nb < 1) nb = 1;
    int nc = (B + nb - 1) / nb;
    nc = (nc + nt - 1) / nt * nt;
    if (nc > B) nc = B;
    g.nchunk = nc;
    g.nbc = (B + nc - 1) / nc;
    g.ncol = round_up((size_t)nb * g.T, WL);
    /* Plane strides a whole number of pages would put a tile's 36 values in
     * one L1 set (a 4 KiB-aliasing stride): measured 1.3x slower transforms.
     * One cache line of padding per plane spreads them over the sets. */
    g.vs = (size_t)C * g.ncol + WL;
    g.ms = (size_t)OC * g.ncol + WL;
    g.us = round_up((size_t)OC * C, WL) + WL;
    g.u_floats = WG_P * g.us;
    g.dy = (size_t)g.nbc * OC * g.OH * g.OW;
    g.per = WG_P * (g.vs + g.ms) + g.u_floats + round_up((size_t)OC, WL) + (size_t)OC * WL + g.dy;
    return g;
}

/* First sample of chunk ci (chunk nchunk: B). */
static int chunk_start(const wg_geom *g, int ci) { return (int)((long)g->B * ci / g->nchunk); }

size_t lt_winograd_scratch_floats(int B, int C, int H, int W, int OC, int pad) {
    if (B <= 0 || H + 2 * pad < 3 || W + 2 * pad < 3) return 0;
    wg_geom g = geom(B, C, H, W, OC, pad);
    return g.u_floats + g.per * (size_t)lt_omp_max_threads();
}

/* ---- the 1-D transforms, on WL lanes; x and y step by xs / ys floats ---- */

/* y = B^T x (6 -> 6) */
static inline void tf_bt(const float *restrict x, size_t xs, float *restrict y, size_t ys) {
    for (int l = 0; l < WL; l++) {
        float d0 = x[l], d1 = x[xs + l], d2 = x[2 * xs + l], d3 = x[3 * xs + l], d4 = x[4 * xs + l], d5 = x[5 * xs + l];
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
        float m0 = x[l], m1 = x[xs + l], m2 = x[2 * xs + l], m3 = x[3 * xs + l], m4 = x[4 * xs + l], m5 = x[5 * xs + l];
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
        float v0 = x[l], v1 = x[xs + l], v2 = x[2 * xs + l], v3 = x[3 * xs + l], v4 = x[4 * xs + l], v5 = x[5 * xs + l];
        y[l] = 4.0f * v0;
        y[ys + l] = 4.0f * (v2 - v1) + 2.0f * (v4 - v3) + 4.0f * v5;
        y[2 * ys + l] = -5.0f * v0 - 4.0f * (v1 + v2) - (v3 + v4);
        y[3 * ys + l] = (v1 - v2) + 2.0f * (v3 - v4) - 5.0f * v5;
        y[4 * ys + l] = v0 + v1 + v2 + v3 + v4;
        y[5 * ys + l] = v5;
    }
}

/* ---- 2-D transforms of WL tiles; blocks are [point][lane] ---- */

/* name(x, y): y = F x F^T for the 1-D transform f: n -> m, on an n x n block
 * (the rows first, then the columns). */
#define TF2(name, f, n, m)                                                                                             \
    static void name(const float *restrict x, float *restrict y) {                                                     \
        float t[(n) * (m)*WL];                                                                                         \
        for (int i = 0; i < (n); i++) f(x + i * (n)*WL, WL, t + i * (m)*WL, WL);                                       \
        for (int j = 0; j < (m); j++) f(t + j * WL, (m)*WL, y + j * WL, (m)*WL);                                       \
    }

TF2(tf2_input, tf_bt, 6, 6)   /* V = B^T d B */
TF2(tf2_output, tf_at, 6, 4)  /* Y = A^T M A */
TF2(tf2_grad_out, tf_a, 4, 6) /* dM = A dY A^T */
TF2(tf2_grad_in, tf_b, 6, 6)  /* dd = B dV B^T */

/* y = G x (3 -> 6) and y = G^T x (6 -> 3), scalar, with strides. */
static void tf_g(const float *x, int xs, float *y, int ys) {
    float g0 = x[0], g1 = x[xs], g2 = x[2 * xs];
    y[0] = g0 * 0.25f;
    y[ys] = -(g0 + g1 + g2) / 6.0f;
    y[2 * ys] = -(g0 - g1 + g2) / 6.0f;
    y[3 * ys] = g0 / 24.0f + g1 / 12.0f + g2 / 6.0f;
    y[4 * ys] = g0 / 24.0f - g1 / 12.0f + g2 / 6.0f;
    y[5 * ys] = g2;
}

static void tf_gt(const float *x, int xs, float *y, int ys) {
    float q0 = x[0], q1 = x[xs], q2 = x[2 * xs], q3 = x[3 * xs], q4 = x[4 * xs], q5 = x[5 * xs];
    y[0] = q0 * 0.25f - (q1 + q2) / 6.0f + (q3 + q4) / 24.0f;
    y[ys] = (q2 - q1) / 6.0f + (q3 - q4) / 12.0f;
    y[2 * ys] = (q3 + q4 - q1 - q2) / 6.0f + q5;
}

/* U[xi][oc][c] = (G w[oc][c] G^T)[xi] for every filter (scalar: runs once per
 * call over OC*C filters). */
static void weights_transform(float *restrict U, size_t us, const float *restrict w, int OC, int C) {
    for (size_t f = 0; f < (size_t)OC * C; f++) {
        float t[6][3], u[6][6];
        for (int k = 0; k < 3; k++) /* G over the columns of the 3x3 filter */
            tf_g(w + f * 9 + k, 3, &t[0][k], 3);
        for (int r = 0; r < 6; r++) /* and G over the rows */
            tf_g(t[r], 1, u[r], 1);
        for (int p = 0; p < WG_P; p++) U[(size_t)p * us + f] = u[p / 6][p % 6];
    }
}

/* w[oc][c] += G^T dU[.][oc][c] G for every filter. */
static void weights_grad(float *restrict dw, const float *restrict dU, size_t us, int OC, int C) {
    for (size_t f = 0; f < (size_t)OC * C; f++) {
        float q[6][6], t[3][6], d[3][3];
        for (int p = 0; p < WG_P; p++) q[p / 6][p % 6] = dU[(size_t)p * us + f];
        for (int s = 0; s < 6; s++) /* G^T over the columns */
            tf_gt(&q[0][s], 6, &t[0][s], 6);
        for (int k = 0; k < 3; k++) /* and over the rows */
            tf_gt(t[k], 1, d[k], 1);
        for (int i = 0; i < 9; i++) dw[f * 9 + i] += d[i / 3][i % 3];
    }
}

/* ---- per-chunk steps ---- */

/* The tiles of one block of WL lanes: which sample of the chunk, where in the
 * output plane (the input patch starts pad rows and columns earlier), and
 * whether the 6x6 input patch / the 4x4 output tile lie wholly inside (the
 * fast paths: no bounds checks). Filled with one division per block, not per
 * lane. */
typedef struct lanes {
    int n; /* tiles in the block, <= WL */
    int bb[WL], y0[WL], x0[WL];
    unsigned char in_inside[WL], out_inside[WL];
    int all_in, all_out; /* all WL lanes are tiles with their patch / tile inside */
} lanes;

static void block_lanes(lanes *ln, const wg_geom *g, size_t n0, int nt) {
    int n = (int)n0, bb = n / g->T, t = n % g->T, ty = t / g->TW, tx = t % g->TW;
    ln->n = nt - n < WL ? nt - n : WL;
    ln->all_in = ln->all_out = ln->n == WL;
    for (int l = 0; l < ln->n; l++) {
        int y0 = ty * 4, x0 = tx * 4, iy = y0 - g->pad, ix = x0 - g->pad;
        ln->bb[l] = bb, ln->y0[l] = y0, ln->x0[l] = x0;
        ln->in_inside[l] = iy >= 0 && ix >= 0 && iy + 6 <= g->H && ix + 6 <= g->W;
        ln->out_inside[l] = y0 + 4 <= g->OH && x0 + 4 <= g->OW;
        if (++tx == g->TW) {
            tx = 0;
            if (++ty == g->TH) ty = 0, bb++;
        }
        ln->all_in &= ln->in_inside[l];
        ln->all_out &= ln->out_inside[l];
    }
}

/* V[xi][c][n] for the nt = nb*T tiles of samples [b0, b0+nb), columns up to
 * np (a multiple of WL; the tiles past nt are zero). */
static void input_transform(float *restrict V, const wg_geom *g, const float *restrict inp, int b0, int nt, size_t np) {
    size_t HW = (size_t)g->H * g->W, W = (size_t)g->W;
    float d[WG_P * WL], v[WG_P * WL];
    lanes ln;
#ifdef WG_AVX512
    float st[WL][ST_ROW];
    memset(st, 0, sizeof st);
#endif
    for (size_t n0 = 0; n0 < np; n0 += WL) {
        block_lanes(&ln, g, n0, nt);
        for (int l = ln.n; l < WL; l++)
            for (int p = 0; p < WG_P; p++) d[p * WL + l] = 0.0f;
        for (int c = 0; c < g->C; c++) {
#ifdef WG_AVX512
            if (wg_vector && ln.all_in) {
                for (int l = 0; l < WL; l++) {
                    const float *src = inp + ((size_t)(b0 + ln.bb[l]) * g->C + c) * HW +
                                       (size_t)(ln.y0[l] - g->pad) * W + (ln.x0[l] - g->pad);
                    for (int i = 0; i < 6; i++) /* 8 floats at 6i: row i+1 overwrites the 2 past row i */
                        _mm256_storeu_ps(st[l] + 6 * i, _mm256_maskz_loadu_ps(0x3F, src + (size_t)i * W));
                }
                stage_to_points(st, d);
                goto transform;
            }
#endif
            for (int l = 0; l < ln.n; l++) {
                int y0 = ln.y0[l] - g->pad, x0 = ln.x0[l] - g->pad;
                const float *img = inp + ((size_t)(b0 + ln.bb[l]) * g->C + c) * HW;
                if (ln.in_inside[l]) {
                    const float *src = img + (size_t)y0 * W + x0;
                    for (int i = 0; i < 6; i++)
                        for (int j = 0; j < 6; j++) d[(i * 6 + j) * WL + l] = src[(size_t)i * W + j];
                } else {
                    for (int i = 0; i < 6; i++)
                        for (int j = 0; j < 6; j++) {
                            int y = y0 + i, x = x0 + j;
                            d[(i * 6 + j) * WL + l] =
                                y >= 0 && y < g->H && x >= 0 && x < g->W ? img[(size_t)y * W + x] : 0.0f;
                        }
                }
            }
#ifdef WG_AVX512
        transform:
#endif
            tf2_input(d, v);
            float *dst = V + (size_t)c * g->ncol + n0;
            for (int p = 0; p < WG_P; p++) memcpy(dst + p * g->vs, v + p * WL, WL * sizeof(float));
        }
    }
}

/* out <- act(A^T M A + bias) for the tiles of the chunk. */
static void output_transform(float *restrict out, const wg_geom *g, const float *restrict M, const float *restrict b,
                             int b0, int nt, size_t np, lt_act act) {
    size_t P = (size_t)g->OH * g->OW, OW = (size_t)g->OW;
    float m[WG_P * WL], y[16 * WL];
    lanes ln;
    for (size_t n0 = 0; n0 < np; n0 += WL) {
        block_lanes(&ln, g, n0, nt);
        for (int oc = 0; oc < g->OC; oc++) {
            float bv = b ? b[oc] : 0.0f;
            const float *src = M + (size_t)oc * g->ncol + n0;
            for (int p = 0; p < WG_P; p++) memcpy(m + p * WL, src + p * g->ms, WL * sizeof(float));
            tf2_output(m, y);
            for (int p = 0; p < 16 * WL; p++) {
                float val = y[p] + bv;
                if (act == LT_ACT_RELU) val = val < 0.0f ? 0.0f : val; /* NaN passes, as in PyTorch */
                y[p] = val;
            }
#ifdef WG_AVX512
            if (wg_vector && ln.all_out) {
                __m512 r[16];
                for (int p = 0; p < 16; p++) r[p] = _mm512_loadu_ps(y + p * WL);
                transpose16(r); /* r[l]: tile l's 4x4 outputs */
                for (int l = 0; l < WL; l++) {
                    float *dst = out + ((size_t)(b0 + ln.bb[l]) * g->OC + oc) * P + (size_t)ln.y0[l] * OW + ln.x0[l];
                    _mm_storeu_ps(dst, _mm512_castps512_ps128(r[l]));
                    _mm_storeu_ps(dst + OW, _mm512_extractf32x4_ps(r[l], 1));
                    _mm_storeu_ps(dst + 2 * OW, _mm512_extractf32x4_ps(r[l], 2));
                    _mm_storeu_ps(dst + 3 * OW, _mm512_extractf32x4_ps(r[l], 3));
                }
                continue;
            }
#endif
            for (int l = 0; l < ln.n; l++) {
                float *dst = out + ((size_t)(b0 + ln.bb[l]) * g->OC + oc) * P + (size_t)ln.y0[l] * OW + ln.x0[l];
                if (ln.out_inside[l]) {
                    for (int i = 0; i < 4; i++)
                        for (int j = 0; j < 4; j++) dst[(size_t)i * OW + j] = y[(i * 4 + j) * WL + l];
                } else {
                    int h = g->OH - ln.y0[l] < 4 ? g->OH - ln.y0[l] : 4,
                        w = g->OW - ln.x0[l] < 4 ? g->OW - ln.x0[l] : 4;
                    for (int i = 0; i < h; i++)
                        for (int j = 0; j < w; j++) dst[(size_t)i * OW + j] = y[(i * 4 + j) * WL + l];
                }
            }
        }
    }
}

/* dM[xi][oc][n] = A dY A^T of the masked output gradient; db += its sums,
 * kept in lanes in dbl [OC][WL] (a scalar running sum would chain every add
 * on the last). Blocks outer, channels inner, as in the other transforms: a
 * block's tiles are found once. */
static void grad_out_transform(float *restrict dM, float *restrict db, float *restrict dbl, const wg_geom *g,
                               const float *restrict dout, const float *restrict out, int b0, int nt, size_t np,
                               lt_act act) {
    size_t P = (size_t)g->OH * g->OW, OW = (size_t)g->OW;
    float u[16 * WL], m[WG_P * WL];
    lanes ln;
    memset(dbl, 0, (size_t)g->OC * WL * sizeof(float));
    for (size_t n0 = 0; n0 < np; n0 += WL) {
        block_lanes(&ln, g, n0, nt);
        for (int oc = 0; oc < g->OC; oc++) {
            float *acc = dbl + (size_t)oc * WL;
#ifdef WG_AVX512
            if (wg_vector && ln.all_out) {
                __m512 r[16];
                for (int l = 0; l < WL; l++) {
                    size_t off = ((size_t)(b0 + ln.bb[l]) * g->OC + oc) * P + (size_t)ln.y0[l] * OW + ln.x0[l];
                    __m512 v = load_4x4(dout + off, OW);
                    if (act == LT_ACT_RELU) /* out > 0 (false for NaN), as the scalar path */
                        v = _mm512_maskz_mov_ps(
                            _mm512_cmp_ps_mask(load_4x4(out + off, OW), _mm512_setzero_ps(), _CMP_GT_OQ), v);
                    r[l] = v;
                }
                transpose16(r); /* r[p]: point p of the 16 tiles */
                for (int p = 0; p < 16; p++) _mm512_storeu_ps(u + p * WL, r[p]);
                goto transform;
            }
#endif
            for (int l = 0; l < WL; l++) {
                if (l >= ln.n) {
                    for (int p = 0; p < 16; p++) u[p * WL + l] = 0.0f;
                    continue;
                }
                size_t off = ((size_t)(b0 + ln.bb[l]) * g->OC + oc) * P + (size_t)ln.y0[l] * OW + ln.x0[l];
                const float *gs = dout + off, *os = out + off;
                if (ln.out_inside[l]) {
                    for (int i = 0; i < 4; i++)
                        for (int j = 0; j < 4; j++) {
                            float v = gs[(size_t)i * OW + j];
                            if (act == LT_ACT_RELU) v = os[(size_t)i * OW + j] > 0.0f ? v : 0.0f;
                            u[(i * 4 + j) * WL + l] = v;
                        }
                } else {
                    int h = g->OH - ln.y0[l] < 4 ? g->OH - ln.y0[l] : 4,
                        w = g->OW - ln.x0[l] < 4 ? g->OW - ln.x0[l] : 4;
                    for (int i = 0; i < 4; i++)
                        for (int j = 0; j < 4; j++) {
                            float v = 0.0f;
                            if (i < h && j < w) {
                                v = gs[(size_t)i * OW + j];
                                if (act == LT_ACT_RELU && !(os[(size_t)i * OW + j] > 0.0f)) v = 0.0f;
                            }
                            u[(i * 4 + j) * WL + l] = v;
                        }
                }
            }
#ifdef WG_AVX512
        transform:
#endif
            for (int p = 0; p < 16; p++)
                for (int l = 0; l < WL; l++) acc[l] += u[p * WL + l];
            tf2_grad_out(u, m);
            float *dst = dM + (size_t)oc * g->ncol + n0;
            for (int p = 0; p < WG_P; p++) memcpy(dst + p * g->ms, m + p * WL, WL * sizeof(float));
        }
    }
    for (int oc = 0; db && oc < g->OC; oc++) {
        float sum = 0.0f;
        for (int l = 0; l < WL; l++) sum += dbl[(size_t)oc * WL + l];
        db[oc] += sum;
    }
}

/* dinp += B dV B^T, 6x6 patches scattered back over the input (overlapping). */
static void grad_in_transform(float *restrict dinp, const wg_geom *g, const float *restrict dV, int b0, int nt,
                              size_t np) {
    size_t HW = (size_t)g->H * g->W, W = (size_t)g->W;
    float v[WG_P * WL], d[WG_P * WL];
    lanes ln;
    for (size_t n0 = 0; n0 < np; n0 += WL) {
        block_lanes(&ln, g, n0, nt);
        for (int c = 0; c < g->C; c++) {
            const float *src = dV + (size_t)c * g->ncol + n0;
            for (int p = 0; p < WG_P; p++) memcpy(v + p * WL, src + p * g->vs, WL * sizeof(float));
            tf2_grad_in(v, d);
#ifdef WG_AVX512
            if (wg_vector && ln.all_in) {
                float st[WL][ST_ROW];
                points_to_stage(d, st);
                for (int l = 0; l < WL; l++) { /* tile by tile, as the scalar path: overlaps add in lane order */
                    float *dst = dinp + ((size_t)(b0 + ln.bb[l]) * g->C + c) * HW + (size_t)(ln.y0[l] - g->pad) * W +
                                 (ln.x0[l] - g->pad);
                    for (int i = 0; i < 6; i++) {
                        float *row = dst + (size_t)i * W;
                        __m256 sum = _mm256_add_ps(_mm256_maskz_loadu_ps(0x3F, row), _mm256_loadu_ps(st[l] + 6 * i));
                        _mm256_mask_storeu_ps(row, 0x3F, sum);
                    }
                }
                continue;
            }
#endif
            for (int l = 0; l < ln.n; l++) {
                int y0 = ln.y0[l] - g->pad, x0 = ln.x0[l] - g->pad;
                float *img = dinp + ((size_t)(b0 + ln.bb[l]) * g->C + c) * HW;
                if (ln.in_inside[l]) {
                    float *dst = img + (size_t)y0 * W + x0;
                    for (int i = 0; i < 6; i++)
                        for (int j = 0; j < 6; j++) dst[(size_t)i * W + j] += d[(i * 6 + j) * WL + l];
                } else {
                    for (int i = 0; i < 6; i++)
                        for (int j = 0; j < 6; j++) {
                            int y = y0 + i, x = x0 + j;
                            if (y >= 0 && y < g->H && x >= 0 && x < g->W)
                                img[(size_t)y * W + x] += d[(i * 6 + j) * WL + l];
                        }
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
    weights_transform(U, g.us, w, OC, C);
#pragma omp parallel for schedule(static) if (g.nchunk > 1)
    for (int ci = 0; ci < g.nchunk; ci++) {
        float *V = scratch + g.u_floats + g.per * (size_t)lt_omp_thread_id();
        float *M = V + WG_P * g.vs;
        int b0 = chunk_start(&g, ci), nt = (chunk_start(&g, ci + 1) - b0) * g.T;
        size_t np = round_up((size_t)nt, WL);
        input_transform(V, &g, inp, b0, nt, np);
        for (int p = 0; p < WG_P; p++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, (int)np, C, 1.0f, U + p * g.us, C, V + p * g.vs,
                        (int)g.ncol, 0.0f, M + p * g.ms, (int)g.ncol);
        output_transform(out, &g, M, b, b0, nt, np, act);
    }
}

void lt_winograd_backward(float *dinp, float *dw, float *db, const float *dout, const float *out,
                          const lt_pooled_grad *pg, const float *inp, const float *w, int B, int C, int H, int W,
                          int OC, int pad, lt_act act, float *scratch) {
    if (B <= 0 || H + 2 * pad < 3 || W + 2 * pad < 3) return;
    if (!dinp && !dw && !db) return;
    wg_geom g = geom(B, C, H, W, OC, pad);
    float *U = scratch;
    size_t vm = WG_P * (g.vs + g.ms); /* V and M of a thread, before its dU and db */
    int nthreads = g.nchunk > 1 ? lt_omp_max_threads() : 1;
    if (dinp) weights_transform(U, g.us, w, OC, C);
    for (int t = 0; t < nthreads; t++)
        memset(scratch + g.u_floats + g.per * (size_t)t + vm, 0,
               (g.u_floats + round_up((size_t)OC, WL)) * sizeof(float));
#pragma omp parallel for schedule(static) if (g.nchunk > 1)
    for (int ci = 0; ci < g.nchunk; ci++) {
        float *V = scratch + g.u_floats + g.per * (size_t)lt_omp_thread_id();
        float *dM = V + WG_P * g.vs, *dU = V + vm, *pdb = dU + g.u_floats;
        int b0 = chunk_start(&g, ci), nt = (chunk_start(&g, ci + 1) - b0) * g.T;
        size_t np = round_up((size_t)nt, WL);
        float *dbl = pdb + round_up((size_t)OC, WL);
        if (pg) { /* the chunk's planes from the pool's gradient, masked, then read as dout */
            float *dy = dbl + (size_t)OC * WL;
            size_t P = (size_t)g.OH * g.OW;
            for (int bb = 0; bb < nt / g.T; bb++)
                for (int oc = 0; oc < OC; oc++)
                    lt_conv_pooled_plane(dy + ((size_t)bb * OC + oc) * P, pg, b0 + bb, oc, OC, P, act);
            grad_out_transform(dM, db ? pdb : NULL, dbl, &g, dy, dy, 0, nt, np, LT_ACT_NONE);
        } else {
            grad_out_transform(dM, db ? pdb : NULL, dbl, &g, dout, out, b0, nt, np, act);
        }
        if (dw) input_transform(V, &g, inp, b0, nt, np);
        for (int p = 0; p < WG_P; p++) {
            float *Vp = V + p * g.vs, *dMp = dM + p * g.ms;
            if (dw) /* before dV overwrites V */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, C, (int)np, 1.0f, dMp, (int)g.ncol, Vp,
                            (int)g.ncol, 1.0f, dU + p * g.us, C);
            if (dinp)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, (int)np, OC, 1.0f, U + p * g.us, C, dMp,
                            (int)g.ncol, 0.0f, Vp, (int)g.ncol);
        }
        if (dinp) grad_in_transform(dinp, &g, V, b0, nt, np);
    }
    /* the threads' partial sums, added up in thread order (reproducible); the
     * first thread's dU doubles as the total */
    float *dU0 = scratch + g.u_floats + vm, *db0 = dU0 + g.u_floats;
    for (int t = 1; t < nthreads; t++) {
        const float *dUt = scratch + g.u_floats + g.per * (size_t)t + vm, *dbt = dUt + g.u_floats;
        if (dw)
            for (size_t i = 0; i < g.u_floats; i++) dU0[i] += dUt[i];
        if (db)
            for (int i = 0; i < OC; i++) db0[i] += dbt[i];
    }
    if (dw) weights_grad(dw, dU0, g.us, OC, C);
    if (db)
        for (int i = 0; i < OC; i++) db[i] += db0[i];
}
