/* bf16_hw_check.h: the bf16 instructions against their C models, bitwise (one
 * tile op on random and edge-case tiles: denormals, tiny products,
 * cancellation, inf; and the whole GEMM on shapes with edges and
 * transposes; the GEMMs on a convolution's image), for test_bf16_amx and
 * test_bf16_avx512: each sets hw and runs test_tile_op, test_gemm and
 * test_gemm_im2col where its CPU has the instructions. */
#ifndef LATHE_BF16_HW_CHECK_H
#define LATHE_BF16_HW_CHECK_H

#include <float.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "ops/cpu/bf16_gemm.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t next(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 32);
}

static float urand(void) { return (float)(next() >> 8) / 8388608.0f - 1.0f; }

/* a bf16 of any kind: mostly ordinary values, some denormal, tiny, huge */
static uint16_t any_bf16(int edgy) {
    if (!edgy) return lt_bf16_from_f32(urand());
    switch (next() % 6) {
    case 0: return (uint16_t)(next() & 0x807f);                                  /* zero or denormal */
    case 1: return (uint16_t)((next() & 0x8000) | (0x0080 + (next() % 0x0800))); /* near FLT_MIN */
    case 2: return (uint16_t)((next() & 0x8000) | (0x2000 + (next() % 0x0800))); /* products near 2^-126 */
    case 3: return (uint16_t)((next() & 0x8000) | (0x7e00 + (next() % 0x0080))); /* huge */
    default: return lt_bf16_from_f32(urand());
    }
}

/* the instruction under test and its model */
typedef struct hw_case {
    const char *what;
    void (*model)(float *c, const uint16_t *a, const uint16_t *b);
    int (*real)(float *c, const uint16_t *a, const uint16_t *b);
    lt_bf16_impl emulated, impl;
} hw_case;
static hw_case hw;

static void test_tile_op(void) {
    int bad = 0;
    for (int trial = 0; trial < 400; trial++) {
        uint16_t a[512], b[512];
        float c1[256], c2[256];
        int edgy = trial % 2;
        for (int i = 0; i < 512; i++) a[i] = any_bf16(edgy), b[i] = any_bf16(edgy);
        for (int i = 0; i < 256; i++) {
            c1[i] = trial % 4 == 3 ? (float)(next() % 3) * 1e-39f : urand(); /* some denormal C */
            c2[i] = c1[i];
        }
        hw.model(c1, a, b);
        CHECK(hw.real(c2, a, b) == 0);
        for (int i = 0; i < 256; i++)
            if (memcmp(&c1[i], &c2[i], 4) && !(isnan(c1[i]) && isnan(c2[i]))) {
                if (bad < 8)
                    fprintf(stderr, "  trial %d C[%d]: the model %a, %s %a\n", trial, i, (double)c1[i], hw.what,
                            (double)c2[i]);
                bad++;
            }
    }
    CHECK_MSG(bad == 0, "%d elements of %s differ from the model", bad, hw.what);
}

static void test_gemm(void) {
    static const int shapes[][3] = {{1, 1, 1}, {17, 33, 31}, {33, 17, 65}, {64, 64, 64}, {5, 70, 300}, {130, 150, 200}};
    int bad = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int t = 0; t < 4; t++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ta = t & 1, tb = t >> 1;
            float *A = malloc((size_t)M * K * sizeof *A), *B = malloc((size_t)K * N * sizeof *B);
            float *C1 = malloc((size_t)M * N * sizeof *C1), *C2 = malloc((size_t)M * N * sizeof *C2);
            for (int i = 0; i < M * K; i++) A[i] = urand();
            for (int i = 0; i < K * N; i++) B[i] = urand();
            for (int i = 0; i < M * N; i++) C1[i] = C2[i] = urand();
            float beta = (float)(t % 2);
            CHECK(lt_bf16_gemm(hw.emulated, ta, tb, M, N, K, A, ta ? M : K, B, tb ? K : N, beta, C1, N) == 0);
            CHECK(lt_bf16_gemm(hw.impl, ta, tb, M, N, K, A, ta ? M : K, B, tb ? K : N, beta, C2, N) == 0);
            for (int i = 0; i < M * N; i++) bad += memcmp(&C1[i], &C2[i], 4) != 0;
            free(A);
            free(B);
            free(C1);
            free(C2);
        }
    CHECK_MSG(bad == 0, "%d elements of the %s GEMM differ from the emulated one", bad, hw.what);
}

/* the GEMMs on a convolution's column matrix (their operands read in place
   by the tile loads, other strides than the packed ones) */
static void test_gemm_im2col(void) {
    static const lt_bf16_im2col convs[] = {
        /* inp set below; b0, nb, C, H, W, KH, KW, stride, pad, OH, OW */
        {NULL, 1, 2, 32, 26, 26, 3, 3, 1, 0, 24, 24},
        {NULL, 0, 3, 1, 28, 28, 3, 3, 1, 0, 26, 26},
        {NULL, 1, 2, 5, 11, 7, 3, 5, 2, 2, 7, 4},
    };
    enum { OC = 37 };
    int bad = 0;
    for (size_t s = 0; s < sizeof convs / sizeof *convs; s++)
        for (int tb = 0; tb < 2; tb++) {
            lt_bf16_im2col g = convs[s];
            int taps = g.C * g.KH * g.KW, pix = g.nb * g.OH * g.OW, n = tb ? taps : pix, k = tb ? pix : taps;
            size_t ni = (size_t)(g.b0 + g.nb) * g.C * g.H * g.W;
            float *inp = malloc(ni * sizeof *inp), *A = malloc((size_t)OC * k * sizeof *A);
            float *C1 = malloc((size_t)OC * n * sizeof *C1), *C2 = malloc((size_t)OC * n * sizeof *C2);
            for (size_t i = 0; i < ni; i++) inp[i] = urand();
            for (int i = 0; i < OC * k; i++) A[i] = urand();
            for (int i = 0; i < OC * n; i++) C1[i] = C2[i] = urand();
            g.inp = inp;
            CHECK(lt_bf16_gemm_im2col(hw.emulated, 0, tb, OC, n, k, A, k, &g, (float)tb, C1, n) == 0);
            CHECK(lt_bf16_gemm_im2col(hw.impl, 0, tb, OC, n, k, A, k, &g, (float)tb, C2, n) == 0);
            for (int i = 0; i < OC * n; i++) bad += memcmp(&C1[i], &C2[i], 4) != 0;
            free(inp);
            free(A);
            free(C1);
            free(C2);
        }
    CHECK_MSG(bad == 0, "%d elements of the %s GEMMs on the image differ from the emulated ones", bad, hw.what);
}

#endif
