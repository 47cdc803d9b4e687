/* test_bf16_gemm.c: the CPU's bf16 GEMM (ops/cpu/bf16_gemm.c) through the C
 * model of the AMX instructions, which runs on any CPU:
 *   - the model of one TDPBF16PS against hand-worked cases of the documented
 *     semantics (two partial sums per column, denormal inputs read as zero,
 *     denormal results flushed, round to nearest even per step);
 *   - the whole GEMM (packing into tiles and VNNI pairs, 32x32 blocks of C,
 *     K in steps of 32, edges, transposes, beta 0 and 1) bitwise against a
 *     scalar model written here from the instruction's pseudo-code, and
 *     within a stated bound of a double-precision product of the
 *     bf16-rounded inputs;
 *   - the same for the VDPBF16PS tile op (the AVX512-BF16 kernels), whose
 *     rounding differs: each pair adds straight into C, odd element first;
 *   - the backend's GEMM entry: f32 is cblas bitwise, bf16 is the kernel;
 *   - the models on AVX2 and FMA (bf16_model_avx2.c, where the CPU has them):
 *     the hand-worked cases again, then bitwise against the scalar models on
 *     random tiles full of edge values (denormals, tiny products, cancelling
 *     sums, signed zeros, inf, NaNs), and whole GEMMs bitwise against the
 *     GEMMs run on the scalar models and the scalar packing;
 *   - the GEMMs that read B from a convolution's image as they pack it
 *     (lt_bf16_gemm_im2col) bitwise those on the written column matrix, for
 *     strides, paddings and kernel sizes, B and its transpose.
 * The real instructions are checked against the models by test_bf16_amx and
 * test_bf16_avx512. */
#include <float.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "ops/cpu/bf16_gemm.h"
#include "ops/kernels.h"
#include <cblas.h>

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static float urand(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

static uint16_t h(float f) { return lt_bf16_from_f32(f); }

/* ---- the instruction, hand-worked ---- */

static void test_bf16_rounding(void) {
    CHECK(h(1.0f) == 0x3f80);
    CHECK(h(-2.0f) == 0xc000);
    /* 1 + 2^-8 is halfway between 1 and 1 + 2^-7: to even (1) */
    CHECK(h(1.0f + 1.0f / 256) == 0x3f80);
    /* 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: to even */
    CHECK(h(1.0f + 3.0f / 256) == 0x3f82);
    CHECK(h(1.0f + 1.0f / 256 + 1.0f / 65536) == 0x3f81); /* past halfway: up */
    CHECK(h(INFINITY) == 0x7f80);
    uint16_t n = h(NAN);
    CHECK((n & 0x7f80) == 0x7f80 && (n & 0x7f) != 0); /* a NaN stays a NaN */
    uint32_t u = 0x7f800001u;                         /* a NaN whose payload is in the low bits only */
    float f;
    memcpy(&f, &u, 4);
    n = h(f);
    CHECK((n & 0x7f80) == 0x7f80 && (n & 0x7f) != 0);
    CHECK(lt_bf16_to_f32(0x3fc0) == 1.5f);
}

typedef void (*tile_op)(float *c, const uint16_t *a, const uint16_t *b);
static tile_op op = lt_bf16_tdpbf16ps_model;
/* the ops the hand-worked cases run: the models, then the AVX2 ones */
static tile_op tdp_op = lt_bf16_tdpbf16ps_model, vdp_op = lt_bf16_vdpbf16ps_model;

/* one tile op on a C of zeros with the given A row 0 and B column 0 pairs */
static float dp1(const float *arow, const float *bcol, int npairs, float c0) {
    uint16_t a[512] = {0}, b[512] = {0};
    float c[256] = {0};
    for (int k = 0; k < 2 * npairs; k++) {
        a[k] = h(arow[k]);
        b[(k / 2) * 32 + (k & 1)] = h(bcol[k]); /* row k/2 of B, column 0's pair */
    }
    c[0] = c0;
    op(c, a, b);
    for (int i = 16; i < 256; i++) CHECK(c[i] == 0.0f); /* rows of A that are zero */
    return c[0];
}

static void test_model_semantics(void) {
    op = tdp_op;
    /* even and odd elements sum apart: even 1, odd 2^-24 + 2^-24 = 2^-23;
       then 1 + 2^-23 is exact. One running sum would give 1 (each 2^-24
       added to 1 is a tie, to even). */
    float a[4] = {1.0f, 1.0f, 0.0f, 1.0f}, b[4] = {1.0f, 0x1p-24f, 0.0f, 0x1p-24f};
    CHECK(dp1(a, b, 2, 0.0f) == 1.0f + 0x1p-23f);
    /* C is added last: C = 1, even and odd products 2^-24 each: their sum
       2^-23 is added once (1 + 2^-23, exact); added one at a time to C it
       would round twice to 1 */
    float a2[2] = {1.0f, 1.0f}, b2[2] = {0x1p-24f, 0x1p-24f};
    CHECK(dp1(a2, b2, 1, 1.0f) == 1.0f + 0x1p-23f);
    /* each accumulation is one FMA: 3 * (1 + 2^-7) = 3 + 3 * 2^-7 exactly */
    float a3[2] = {3.0f, 0.0f}, b3[2] = {1.0f + 0x1p-7f, 0.0f};
    CHECK(dp1(a3, b3, 1, 0.0f) == 3.0f + 3 * 0x1p-7f);
    /* a denormal bf16 input reads as zero: 2^-130 * 2^100 would be 2^-30 */
    float a4[2] = {0x1p-130f, 0.0f}, b4[2] = {0x1p100f, 0.0f};
    CHECK(dp1(a4, b4, 1, 0.0f) == 0.0f);
    /* a product below FLT_MIN is flushed: 2^-70 * 2^-70 */
    float a5[2] = {0x1p-70f, 0.0f}, b5[2] = {0x1p-70f, 0.0f};
    CHECK(dp1(a5, b5, 1, 0.0f) == 0.0f);
    /* and a product of normal size is kept: 2^-60 * 2^-60 = 2^-120 */
    float a6[2] = {0x1p-60f, 0.0f}, b6[2] = {0x1p-60f, 0.0f};
    CHECK(dp1(a6, b6, 1, 0.0f) == 0x1p-120f);
    /* a denormal C reads as zero */
    CHECK(dp1(a3, b3, 0, 1e-40f) == 0.0f);
    /* -denormal reads as -0; -0 + (+0 + +0) is +0 */
    float zero = dp1(a3, b3, 0, -1e-40f);
    CHECK(zero == 0.0f && !signbit(zero));
    /* a result below FLT_MIN is flushed: 2^-100 * 2^-20 + (-2^-100 * 2^-20 * (1 - 2^-7)) */
    float a7[2] = {0x1p-100f, -0x1p-100f}, b7[2] = {0x1p-20f, 0x1p-20f * (1.0f - 0x1p-7f)};
    CHECK(dp1(a7, b7, 1, 0.0f) == 0.0f); /* 2^-127 without the flush */
    /* inf and NaN propagate */
    float a8[2] = {INFINITY, 0.0f}, b8[2] = {1.0f, 0.0f};
    CHECK(isinf(dp1(a8, b8, 1, 0.0f)));
    float b9[2] = {0.0f, 0.0f};
    CHECK(isnan(dp1(a8, b9, 1, 0.0f))); /* inf * 0 */
    /* C = 1, even product -1.5 * 2^-24, odd 2^-24: (even + odd) = -2^-25 is
       exact, 1 - 2^-25 a tie, to even: 1 */
    float a10[2] = {-1.5f, 1.0f}, b10[2] = {0x1p-24f, 0x1p-24f};
    CHECK(dp1(a10, b10, 1, 1.0f) == 1.0f);
}

/* VDPBF16PS: C += odd product, then += even product, one FMA each, DAZ and
   FTZ; the pairs go straight into C */
static void test_vdpbf16ps_model(void) {
    op = vdp_op;
    /* the case above: 1 + 2^-24 is a tie (to 1), then 1 - 1.5 * 2^-24 a tie
       between 1 - 2^-24 and 1 - 2^-23 (to even: 1 - 2^-23). Even first would
       give 1 - 2^-24, the AMX order 1 */
    float a10[2] = {-1.5f, 1.0f}, b10[2] = {0x1p-24f, 0x1p-24f};
    CHECK(dp1(a10, b10, 1, 1.0f) == 1.0f - 0x1p-23f);
    /* no partial sums: 1 + 2^-24 + 2^-24 is 1 one tie at a time */
    float a[4] = {1.0f, 1.0f, 0.0f, 1.0f}, b[4] = {1.0f, 0x1p-24f, 0.0f, 0x1p-24f};
    CHECK(dp1(a, b, 2, 0.0f) == 1.0f);
    /* denormals in and out as TDPBF16PS */
    float a4[2] = {0x1p-130f, 0.0f}, b4[2] = {0x1p100f, 0.0f};
    CHECK(dp1(a4, b4, 1, 0.0f) == 0.0f);
    float a5[2] = {0x1p-70f, 0.0f}, b5[2] = {0x1p-70f, 0.0f};
    CHECK(dp1(a5, b5, 1, 0.0f) == 0.0f);
    float a3[2] = {3.0f, 0.0f}, b3[2] = {1.0f + 0x1p-7f, 0.0f};
    CHECK(dp1(a3, b3, 0, 1e-40f) == 0.0f);
    CHECK(dp1(a3, b3, 1, 0.0f) == 3.0f + 3 * 0x1p-7f);
    op = tdp_op;
}

/* ---- the GEMM against models written from the pseudo-code ---- */

static float flush(float x) { return fabsf(x) < FLT_MIN ? copysignf(0.0f, x) : x; }
static float in_bf16(float x) { return flush(lt_bf16_to_f32(h(x))); } /* packed, then read with DAZ */

static float at(const float *X, int ld, int trans, int r, int c, int R, int C) {
    if (r >= R || c >= C) return 0.0f;
    return trans ? X[(size_t)c * ld + r] : X[(size_t)r * ld + c];
}

/* C element by element: per K step of 32 the two partial sums from zero,
   then C := C + (even + odd), every step flushed */
static void model_gemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                       float beta, float *C, int ldc) {
    int steps = (K + 31) / 32;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float c = beta != 0.0f ? C[(size_t)i * ldc + j] : 0.0f;
            for (int s = 0; s < steps; s++) {
                float te = 0.0f, to = 0.0f;
                for (int q = 0; q < 16; q++) {
                    int k = s * 32 + 2 * q;
                    te = flush(fmaf(in_bf16(at(A, lda, ta, i, k, M, K)), in_bf16(at(B, ldb, tb, k, j, K, N)), te));
                    to = flush(
                        fmaf(in_bf16(at(A, lda, ta, i, k + 1, M, K)), in_bf16(at(B, ldb, tb, k + 1, j, K, N)), to));
                }
                c = flush(flush(c) + flush(te + to));
            }
            C[(size_t)i * ldc + j] = c;
        }
}

/* VDPBF16PS: every pair straight into C, odd element first; K padded with
   zero pairs to whole steps of 32, as the kernel packs it */
static void model_gemm_avx512(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                              float beta, float *C, int ldc) {
    int pairs = (K + 31) / 32 * 16;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float c = beta != 0.0f ? C[(size_t)i * ldc + j] : 0.0f;
            for (int q = 0; q < pairs; q++) {
                int k = 2 * q;
                c = flush(
                    fmaf(in_bf16(at(A, lda, ta, i, k + 1, M, K)), in_bf16(at(B, ldb, tb, k + 1, j, K, N)), flush(c)));
                c = flush(fmaf(in_bf16(at(A, lda, ta, i, k, M, K)), in_bf16(at(B, ldb, tb, k, j, K, N)), c));
            }
            C[(size_t)i * ldc + j] = c;
        }
}

typedef struct shape {
    int M, N, K;
} shape;

static const shape shapes[] = {
    {1, 1, 1},    {1, 1, 32},  {16, 16, 32},  {32, 32, 32}, {32, 32, 64},  {17, 33, 31}, {33, 17, 65},  {31, 31, 33},
    {5, 70, 300}, {64, 3, 97}, {2, 40, 1000}, {48, 48, 9},  {100, 10, 64}, {10, 100, 2}, {1, 200, 130}, {65, 1, 3},
};

static lt_bf16_impl impl = LT_BF16_EMULATED;

static void run_shape(shape s, int ta, int tb, float beta, int *bad_bits, double *worst) {
    int M = s.M, N = s.N, K = s.K;
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 5;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = malloc(na * sizeof *A), *B = malloc(nb * sizeof *B);
    float *C = malloc(nc * sizeof *C), *R = malloc(nc * sizeof *R);
    for (size_t i = 0; i < na; i++) A[i] = urand();
    for (size_t i = 0; i < nb; i++) B[i] = urand() * 4.0f;
    for (size_t i = 0; i < nc; i++) C[i] = R[i] = urand();
    float *C0 = malloc(nc * sizeof *C0);
    memcpy(C0, C, nc * sizeof *C);
    CHECK(lt_bf16_gemm(impl, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc) == 0);
    if (impl == LT_BF16_EMULATED_AVX512)
        model_gemm_avx512(ta, tb, M, N, K, A, lda, B, ldb, beta, R, ldc);
    else
        model_gemm(ta, tb, M, N, K, A, lda, B, ldb, beta, R, ldc);
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            size_t o = (size_t)i * ldc + j;
            if (memcmp(&C[o], &R[o], 4)) {
                if (*bad_bits < 5)
                    fprintf(stderr, "  %dx%dx%d ta=%d tb=%d beta=%g C[%d,%d] = %a, the model %a\n", M, N, K, ta, tb,
                            (double)beta, i, j, (double)C[o], (double)R[o]);
                (*bad_bits)++;
            }
            /* against the exact product of the bf16 inputs: f32 sums of K/2
               terms per partial sum, then two adds per K step */
            double ref = beta != 0.0f ? C0[o] : 0.0, mag = fabs(ref);
            for (int k = 0; k < K; k++) {
                double p = (double)in_bf16(at(A, lda, ta, i, k, M, K)) * in_bf16(at(B, ldb, tb, k, j, K, N));
                ref += p;
                mag += fabs(p);
            }
            /* one rounding per product into one sum (VDPBF16PS): K + 1 */
            double bound = (impl == LT_BF16_EMULATED_AVX512 ? K + 2.0 : K / 2.0 + 2.0 * ((K + 31) / 32) + 2) *
                           FLT_EPSILON / 2 * mag;
            double err = fabs(C[o] - ref);
            if (!(err <= bound)) {
                fprintf(stderr, "  %dx%dx%d C[%d,%d] = %.9g, exact %.9g: error %.3g over the bound %.3g\n", M, N, K, i,
                        j, (double)C[o], ref, err, bound);
                CHECK(err <= bound);
            }
            if (mag > 0 && err / mag > *worst) *worst = err / mag;
        }
        /* the padding of C's rows is not written */
        for (int j = N; j < ldc; j++) CHECK(memcmp(&C[(size_t)i * ldc + j], &C0[(size_t)i * ldc + j], 4) == 0);
    }
    free(A);
    free(B);
    free(C);
    free(R);
    free(C0);
}

static void test_gemm_shapes(void) {
    int bad = 0, cases = 0;
    double worst = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        for (int t = 0; t < 4; t++)
            for (int beta = 0; beta < 2; beta++) {
                run_shape(shapes[i], t & 1, t >> 1, (float)beta, &bad, &worst);
                cases++;
            }
    CHECK_MSG(bad == 0, "%d elements differ from the model", bad);
    printf("bf16 gemm (%s): %d cases bitwise as the instruction model; worst error %.3g of sum |a*b|\n",
           lt_bf16_impl_name(impl), cases, worst);
}

/* the kernel's output does not depend on the OpenMP split: a large C (many
   blocks on the threads) against the model */
static void test_gemm_large(void) {
    int bad = 0;
    double worst = 0;
    shape s = {130, 150, 200};
    run_shape(s, 0, 1, 1.0f, &bad, &worst);
    run_shape(s, 1, 0, 0.0f, &bad, &worst);
    CHECK(bad == 0);
}

static void test_gemm_shapes_avx512(void) {
    impl = LT_BF16_EMULATED_AVX512;
    test_gemm_shapes();
    test_gemm_large();
    impl = LT_BF16_EMULATED;
}

static void test_gemm_degenerate(void) {
    float A[4] = {1, 2, 3, 4}, B[4] = {1, 1, 1, 1}, C[4] = {5, 6, 7, 8};
    /* K = 0: C stays (beta 1) or becomes zero (beta 0) */
    CHECK(lt_bf16_gemm(LT_BF16_EMULATED, 0, 0, 2, 2, 0, A, 2, B, 2, 1.0f, C, 2) == 0);
    CHECK(C[0] == 5 && C[3] == 8);
    CHECK(lt_bf16_gemm(LT_BF16_EMULATED, 0, 0, 2, 2, 0, A, 2, B, 2, 0.0f, C, 2) == 0);
    CHECK(C[0] == 0 && C[3] == 0);
    /* M or N zero: nothing */
    CHECK(lt_bf16_gemm(LT_BF16_EMULATED, 0, 0, 0, 2, 2, A, 2, B, 2, 0.0f, C, 2) == 0);
    /* no implementation: refused, C untouched */
    C[0] = 9;
    CHECK(lt_bf16_gemm(LT_BF16_NONE, 0, 0, 2, 2, 2, A, 2, B, 2, 0.0f, C, 2) == -1 && C[0] == 9);
    if (!lt_bf16_cpu_has_amx()) CHECK(lt_bf16_gemm(LT_BF16_AMX, 0, 0, 2, 2, 2, A, 2, B, 2, 0.0f, C, 2) == -1);
    if (!lt_bf16_cpu_has_avx512bf16()) CHECK(lt_bf16_gemm(LT_BF16_AVX512, 0, 0, 2, 2, 2, A, 2, B, 2, 0.0f, C, 2) == -1);
}

/* the backend's entry: f32 is cblas_sgemm bitwise; bf16 is the kernel */
static void test_cpu_sgemm(void) {
    enum { M = 37, N = 45, K = 70 };
    float *A = malloc(M * K * sizeof *A), *B = malloc(N * K * sizeof *B);
    float *C1 = malloc(M * N * sizeof *C1), *C2 = malloc(M * N * sizeof *C2);
    for (int i = 0; i < M * K; i++) A[i] = urand();
    for (int i = 0; i < N * K; i++) B[i] = urand();
    for (int i = 0; i < M * N; i++) C1[i] = C2[i] = urand();
    lt_cpu_gemm_set_bf16(LT_BF16_NONE);
    lt_cpu_sgemm(0, 1, M, N, K, A, K, B, K, 1.0f, C1, N);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K, B, K, 1.0f, C2, N);
    CHECK(memcmp(C1, C2, M * N * sizeof *C1) == 0);
    lt_cpu_gemm_set_bf16(LT_BF16_EMULATED);
    CHECK(lt_cpu_gemm_bf16() == LT_BF16_EMULATED);
    lt_cpu_sgemm(0, 1, M, N, K, A, K, B, K, 0.0f, C1, N);
    lt_bf16_gemm(LT_BF16_EMULATED, 0, 1, M, N, K, A, K, B, K, 0.0f, C2, N);
    CHECK(memcmp(C1, C2, M * N * sizeof *C1) == 0);
    /* and it is not the f32 product: the inputs were rounded */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K, B, K, 0.0f, C2, N);
    CHECK(memcmp(C1, C2, M * N * sizeof *C1) != 0);
    lt_cpu_gemm_set_bf16(LT_BF16_NONE);
    free(A);
    free(B);
    free(C1);
    free(C2);
}

/* ---- the models on AVX2 and FMA ---- */

static int have_avx2(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static void tdp_avx2(float *c, const uint16_t *a, const uint16_t *b) { CHECK(lt_bf16_tdpbf16ps_avx2(c, a, b) == 0); }
static void vdp_avx2(float *c, const uint16_t *a, const uint16_t *b) { CHECK(lt_bf16_vdpbf16ps_avx2(c, a, b) == 0); }

static uint32_t rnd(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 32);
}

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* the kinds of edge values, as bits of a mask */
enum {
    V_ZERO = 1,      /* +-0 */
    V_DENORMAL = 2,  /* denormal (in f32; in bf16 once rounded) */
    V_TINY = 4,      /* normal, exponent -126 .. -90: products flush */
    V_SMALL = 8,     /* exponent -70 .. -50: products about FLT_MIN */
    V_CANCEL = 16,   /* +-1, +-0.5, +-(1 + 2^-7): sums that cancel to zero */
    V_INF = 32,      /* +-inf, and huge values whose products overflow */
    V_NAN = 64,      /* the default NaN (what inf * 0 makes) */
    V_ODD_NAN = 128, /* other NaNs: other payloads, positive, signalling */
    V_ALL = 255,
};

/* uniform in [-1, 1), or one of the kinds in mask with probability 1/rate */
static float edge_value(unsigned mask, unsigned rate) {
    uint32_t r = rnd(), sign = (r & 1u) << 31;
    if (!mask || (r >> 1) % rate) return urand();
    int kind;
    do kind = (int)(rnd() % 8);
    while (!(mask & (1u << kind)));
    uint32_t m = rnd() & 0x7fffffu;
    static const float cancel[3] = {1.0f, 0.5f, 1.0f + 0x1p-7f};
    switch (1u << kind) {
    case V_ZERO: return from_bits(sign);
    case V_DENORMAL: return from_bits(sign | (m ? m : 1u));
    case V_TINY: return from_bits(sign | (1u + rnd() % 37) << 23 | m);
    case V_SMALL: return from_bits(sign | (57u + rnd() % 21) << 23 | m);
    case V_CANCEL: return sign ? -cancel[rnd() % 3] : cancel[rnd() % 3];
    case V_INF: return rnd() & 1 ? from_bits(sign | 0x7f800000u) : from_bits(sign | (230u + rnd() % 25) << 23 | m);
    case V_NAN: return from_bits(0xffc00000u);
    default: {
        static const uint32_t nans[4] = {0x7fc00000u, 0x7f812345u, 0xffd00000u, 0x7fc00001u};
        return from_bits(nans[rnd() % 4]);
    }
    }
}

/* masks of kinds the random tiles and GEMMs draw from: one kind at a time,
   all but the odd NaNs (the fast loops' cases), and all */
static const unsigned masks[] = {0,
                                 V_ZERO,
                                 V_DENORMAL,
                                 V_TINY,
                                 V_SMALL,
                                 V_CANCEL,
                                 V_INF,
                                 V_NAN,
                                 V_ODD_NAN,
                                 V_CANCEL | V_ZERO,
                                 V_TINY | V_SMALL | V_CANCEL,
                                 V_INF | V_NAN | V_CANCEL,
                                 V_ALL & ~V_ODD_NAN,
                                 V_ALL};
static const unsigned rates[] = {1, 2, 8, 64};

static int tiles_differ(tile_op model, tile_op fast, const float *c0, const uint16_t *a, const uint16_t *b,
                        const char *what, int *shown) {
    float c1[256], c2[256];
    memcpy(c1, c0, sizeof c1);
    memcpy(c2, c0, sizeof c2);
    model(c1, a, b);
    fast(c2, a, b);
    int bad = 0;
    for (int i = 0; i < 256; i++)
        if (memcmp(&c1[i], &c2[i], 4)) {
            if ((*shown)++ < 5) {
                uint32_t u1, u2;
                memcpy(&u1, &c1[i], 4);
                memcpy(&u2, &c2[i], 4);
                fprintf(stderr, "  %s: C[%d,%d] = %08x (%a), the model %08x (%a)\n", what, i / 16, i % 16, u2,
                        (double)c2[i], u1, (double)c1[i]);
            }
            bad++;
        }
    return bad;
}

/* hand-made tiles: each of the fast loops' cases (nothing to flush, tiny
   products, denormal inputs, tiny C, NaNs), bitwise against the models */
static void hand_tiles(tile_op model, tile_op fast, const char *what, int *bad, int *shown) {
    uint16_t a[512], b[512];
    float c[256];
    for (int t = 0; t < 15; t++) {
        for (int i = 0; i < 512; i++) a[i] = h(urand()), b[i] = h(urand() * 4.0f);
        for (int i = 0; i < 256; i++) c[i] = urand();
        switch (t) {
        case 1: /* denormal bf16 inputs, one times 2^100 (2^-27 if it were not zero) */
            a[7] = 0x0040, b[97] = h(0x1p100f), b[33] = 0x8040;
            break;
        case 2: a[0] = h(0x1p-70f), b[0] = h(0x1p-70f); break;          /* a product that flushes */
        case 3: c[5] = 1e-40f, c[6] = -1e-40f, c[7] = 0x1p-110f; break; /* denormal and tiny C */
        case 4: /* row 0 cancels to zero: +-0 sums, with -0 in C */
            for (int k = 0; k < 32; k++) a[k] = h(k & 1 ? -1.0f : 1.0f), b[(k / 2) * 32 + (k & 1)] = h(0.5f);
            c[0] = -0.0f;
            break;
        case 5: /* even 2^-120, odd -2^-120 (1 - 2^-7): 2^-127 (flushed) */
            memset(a, 0, 64);
            a[0] = h(0x1p-100f), a[1] = h(-0x1p-100f), b[0] = h(0x1p-20f), b[1] = h(0x1p-20f * (1.0f - 0x1p-7f));
            c[0] = 0.0f;
            break;
        case 6: a[3] = 0x7f80, b[65] = 0x0000; break;           /* inf * 0: the default NaN */
        case 7: a[3] = 0xff80, c[9] = INFINITY; break;          /* -inf, and +inf in C */
        case 8: a[2] = 0x7fc1, b[2] = 0xffc0; break;            /* two different NaNs */
        case 9: c[3] = from_bits(0x7fa00000u); break;           /* a signalling NaN in C */
        case 10: a[4] = h(0x1p100f), b[4] = h(0x1p100f); break; /* overflow to inf */
        case 11: /* products of exactly FLT_MIN's quantum: 2^-56 (1 + 2^-7) * 2^-56 */
            for (int k = 0; k < 32; k++) a[k] = h((k & 2 ? -0x1p-56f : 0x1p-56f) * (k & 4 ? 1.0f + 0x1p-7f : 1.0f));
            for (int i = 0; i < 512; i++) b[i] = h(0x1p-56f);
            c[0] = 0.0f;
            break;
        case 12: /* one quantum less: two even products cancel to 2^-127 in
                    the partial sum (flushed) */
            memset(a, 0, 64);
            a[0] = h(0x1p-57f * (1.0f + 0x1p-7f)), a[2] = h(-0x1p-57f * (1.0f + 0x1p-6f));
            b[0] = h(0x1p-56f * (1.0f + 0x1p-7f)), b[32] = h(0x1p-56f);
            c[0] = 0.0f;
            break;
        case 13: /* a tiny normal C that a product cancels to 2^-130 */
            memset(a, 0, 64);
            a[1] = h(-0x1p-55f), b[1] = h(0x1p-55f);
            c[0] = 0x1p-110f * (1.0f + 0x1p-20f);
            break;
        case 14: /* denormal C where row 0 of A is zero: +-0 + +0 */
            memset(a, 0, 64);
            c[5] = 1e-40f, c[6] = -1e-40f;
            break;
        default: break;
        }
        *bad += tiles_differ(model, fast, c, a, b, what, shown);
    }
}

static void test_avx2_tiles(void) {
    if (!have_avx2()) {
        float c[256] = {0};
        uint16_t a[512] = {0};
        CHECK(lt_bf16_tdpbf16ps_avx2(c, a, a) == -1 && lt_bf16_vdpbf16ps_avx2(c, a, a) == -1);
        printf("no AVX2 and FMA: the scalar models only\n");
        return;
    }
    /* the hand-worked cases */
    tdp_op = tdp_avx2, vdp_op = vdp_avx2;
    test_model_semantics();
    test_vdpbf16ps_model();
    tdp_op = lt_bf16_tdpbf16ps_model, vdp_op = lt_bf16_vdpbf16ps_model;
    op = tdp_op;
    int bad = 0, shown = 0, tiles = 0;
    hand_tiles(lt_bf16_tdpbf16ps_model, tdp_avx2, "tdpbf16ps", &bad, &shown);
    hand_tiles(lt_bf16_vdpbf16ps_model, vdp_avx2, "vdpbf16ps", &bad, &shown);
    /* random tiles of every mix of edge values */
    uint16_t a[512], b[512];
    float c[256];
    for (int rep = 0; rep < 6; rep++)
        for (size_t m = 0; m < sizeof masks / sizeof *masks; m++)
            for (size_t r = 0; r < sizeof rates / sizeof *rates; r++) {
                for (int i = 0; i < 512; i++)
                    a[i] = h(edge_value(masks[m], rates[r])), b[i] = h(edge_value(masks[m], rates[r]) * 4.0f);
                for (int i = 0; i < 256; i++) c[i] = edge_value(masks[m], rates[r]);
                bad += tiles_differ(lt_bf16_tdpbf16ps_model, tdp_avx2, c, a, b, "tdpbf16ps", &shown);
                bad += tiles_differ(lt_bf16_vdpbf16ps_model, vdp_avx2, c, a, b, "vdpbf16ps", &shown);
                tiles += 2;
            }
    CHECK_MSG(bad == 0, "%d elements differ from the scalar models", bad);
    printf("avx2 tile ops: %d random tiles and 30 hand-made ones bitwise as the scalar models\n", tiles);
}

/* a GEMM with edge values in A, B and C on the AVX2 path and on the scalar
   one (packing and models): bitwise the same, C's padding included */
static int gemm_fast_vs_scalar(lt_bf16_impl im, shape s, int ta, int tb, float beta, unsigned mask, unsigned rate) {
    int M = s.M, N = s.N, K = s.K;
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 5;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = malloc(na * sizeof *A), *B = malloc(nb * sizeof *B);
    float *C1 = malloc(nc * sizeof *C1), *C2 = malloc(nc * sizeof *C2);
    for (size_t i = 0; i < na; i++) A[i] = edge_value(mask, rate);
    for (size_t i = 0; i < nb; i++) B[i] = edge_value(mask, rate) * 4.0f;
    for (size_t i = 0; i < nc; i++) C1[i] = C2[i] = edge_value(mask, rate);
    lt_bf16_emulate_fast(0);
    CHECK(lt_bf16_gemm(im, ta, tb, M, N, K, A, lda, B, ldb, beta, C1, ldc) == 0);
    lt_bf16_emulate_fast(1);
    CHECK(lt_bf16_gemm(im, ta, tb, M, N, K, A, lda, B, ldb, beta, C2, ldc) == 0);
    int bad = 0;
    for (size_t i = 0; i < nc; i++)
        if (memcmp(&C1[i], &C2[i], 4)) {
            if (bad++ < 3)
                fprintf(stderr, "  %s %dx%dx%d ta=%d tb=%d beta=%g mask %#x: C[%zu,%zu] = %a, scalar %a\n",
                        lt_bf16_impl_name(im), M, N, K, ta, tb, (double)beta, mask, i / ldc, i % ldc, (double)C2[i],
                        (double)C1[i]);
        }
    free(A);
    free(B);
    free(C1);
    free(C2);
    return bad;
}

static void test_avx2_gemm(void) {
    if (!have_avx2()) return;
    static const shape more[] = {{64, 64, 64}, {96, 80, 128}, {130, 150, 200}, {48, 33, 320}};
    int bad = 0, cases = 0;
    for (int e = 0; e < 2; e++) {
        lt_bf16_impl im = e ? LT_BF16_EMULATED_AVX512 : LT_BF16_EMULATED;
        for (size_t i = 0; i < sizeof shapes / sizeof *shapes + sizeof more / sizeof *more; i++) {
            shape s = i < sizeof shapes / sizeof *shapes ? shapes[i] : more[i - sizeof shapes / sizeof *shapes];
            for (int t = 0; t < 4; t++) {
                /* each transpose once, beta 0 and 1 in turn, plain values or
                   a mix of edge values in turn */
                size_t m = (i * 4 + (size_t)t + (size_t)e * 7) % (sizeof masks / sizeof *masks);
                bad += gemm_fast_vs_scalar(im, s, t & 1, t >> 1, (float)((i + (size_t)t) & 1), masks[m],
                                           rates[(i + (size_t)t) % 4]);
                cases++;
            }
        }
    }
    CHECK_MSG(bad == 0, "%d elements differ from the scalar path", bad);
    printf("avx2 gemm: %d cases bitwise as the scalar models and packing\n", cases);
}

/* a whole GEMM whose C is tiny (normal, exponent -110) and cancels with the
   product to 2^-130: flushed to zero, as the scalar models do, although A
   and B alone could never make a tiny sum */
static void test_avx2_gemm_tiny_c(void) {
    if (!have_avx2()) return;
    enum { M = 70, N = 40, K = 5 };
    float A[M * K] = {0}, B[K * N] = {0}, C[2][M * N];
    for (int i = 0; i < M; i++) A[i * K] = -0x1p-55f;
    for (int j = 0; j < N; j++) B[j] = 0x1p-55f;
    for (int e = 0; e < 2; e++) {
        lt_bf16_impl im = e ? LT_BF16_EMULATED_AVX512 : LT_BF16_EMULATED;
        for (int f = 0; f < 2; f++) {
            for (int i = 0; i < M * N; i++) C[f][i] = 0x1p-110f * (1.0f + 0x1p-20f);
            lt_bf16_emulate_fast(f);
            CHECK(lt_bf16_gemm(im, 0, 0, M, N, K, A, K, B, N, 1.0f, C[f], N) == 0);
        }
        CHECK(memcmp(C[0], C[1], sizeof C[0]) == 0);
        CHECK(C[1][0] == 0.0f && C[1][M * N - 1] == 0.0f);
    }
    lt_bf16_emulate_fast(1);
}

/* ---- B read from a convolution's image (lt_bf16_gemm_im2col) ---- */
typedef struct conv_shape {
    int B, C, H, W, KH, KW, stride, pad, b0, nb, OC;
} conv_shape;

/* conv2d.c's column matrix, written out: col [C*KH*KW, nb*OH*OW] */
static void ref_im2col(float *col, const float *inp, conv_shape s, int OH, int OW) {
    size_t N = (size_t)s.nb * OH * OW;
    for (int c = 0; c < s.C; c++)
        for (int kh = 0; kh < s.KH; kh++)
            for (int kw = 0; kw < s.KW; kw++)
                for (int bb = 0; bb < s.nb; bb++)
                    for (int oh = 0; oh < OH; oh++)
                        for (int ow = 0; ow < OW; ow++) {
                            int ih = oh * s.stride - s.pad + kh, iw = ow * s.stride - s.pad + kw;
                            float v = ih >= 0 && ih < s.H && iw >= 0 && iw < s.W
                                          ? inp[(((size_t)(s.b0 + bb) * s.C + c) * s.H + ih) * s.W + iw]
                                          : 0.0f;
                            col[((size_t)(c * s.KH + kh) * s.KW + kw) * N + ((size_t)bb * OH + oh) * OW + ow] = v;
                        }
}

/* forward (W x col) and weight gradient (dcn x col^T) GEMMs, on the image
   and on the written column matrix: bitwise the same */
static int im2col_case(lt_bf16_impl im, conv_shape s, int special) {
    int OH = (s.H + 2 * s.pad - s.KH) / s.stride + 1, OW = (s.W + 2 * s.pad - s.KW) / s.stride + 1;
    int K = s.C * s.KH * s.KW, N = s.nb * OH * OW, bad = 0;
    size_t ni = (size_t)s.B * s.C * s.H * s.W;
    float *inp = malloc(ni * sizeof *inp), *col = malloc((size_t)K * N * sizeof *col);
    float *A = malloc((size_t)s.OC * (K > N ? K : N) * sizeof *A);
    float *C1 = malloc((size_t)s.OC * (K > N ? K : N) * sizeof *C1), *C2 = malloc((size_t)s.OC * (K > N ? K : N) * 4);
    for (size_t i = 0; i < ni; i++) inp[i] = special ? edge_value(masks[i % 4 + 1], 8) : urand();
    if (special) inp[ni / 2] = -0.0f;
    ref_im2col(col, inp, s, OH, OW);
    lt_bf16_im2col g = {inp, s.b0, s.nb, s.C, s.H, s.W, s.KH, s.KW, s.stride, s.pad, OH, OW};
    for (int tb = 0; tb < 2; tb++) {
        int n = tb ? K : N, k = tb ? N : K;
        for (int i = 0; i < s.OC * k; i++) A[i] = urand();
        for (int i = 0; i < s.OC * n; i++) C1[i] = C2[i] = urand();
        float beta = (float)tb;
        CHECK(lt_bf16_gemm(im, 0, tb, s.OC, n, k, A, k, col, N, beta, C1, n) == 0);
        CHECK(lt_bf16_gemm_im2col(im, 0, tb, s.OC, n, k, A, k, &g, beta, C2, n) == 0);
        for (int i = 0; i < s.OC * n; i++)
            if (memcmp(&C1[i], &C2[i], 4) && bad++ < 3)
                fprintf(stderr, "  %s C=%d %dx%d k%dx%d s%d p%d tb=%d: C[%d] = %a, on the column matrix %a\n",
                        lt_bf16_impl_name(im), s.C, s.H, s.W, s.KH, s.KW, s.stride, s.pad, tb, i, (double)C2[i],
                        (double)C1[i]);
    }
    /* dimensions other than the column matrix's: refused, C untouched */
    C2[0] = 7.0f;
    CHECK(lt_bf16_gemm_im2col(im, 0, 0, s.OC, N + 1, K, A, K, &g, 0.0f, C2, N + 1) == -1 && C2[0] == 7.0f);
    CHECK(lt_bf16_gemm_im2col(im, 0, 1, s.OC, K, N - 1, A, N, &g, 0.0f, C2, K) == -1 && C2[0] == 7.0f);
    free(inp);
    free(col);
    free(A);
    free(C1);
    free(C2);
    return bad;
}

static void test_gemm_im2col(void) {
    static const conv_shape convs[] = {
        {4, 32, 26, 26, 3, 3, 1, 0, 1, 2, 64}, /* the MNIST CNN's conv2 */
        {5, 1, 28, 28, 3, 3, 1, 0, 0, 5, 32},  /* its conv1 */
        {3, 3, 9, 9, 3, 3, 1, 1, 1, 2, 8},     /* padded */
        {2, 5, 11, 7, 3, 5, 2, 2, 0, 2, 17},   /* stride 2, wide kernel, more padding than the kernel reaches */
        {2, 40, 6, 6, 1, 1, 1, 0, 1, 1, 33},   /* 1x1 */
        {2, 2, 4, 70, 3, 3, 1, 0, 0, 2, 5},    /* output rows of 68: whole 32-pixel runs */
        {1, 3, 3, 3, 5, 5, 1, 2, 0, 1, 4},     /* kernel larger than the image */
        {3, 4, 10, 10, 2, 3, 3, 0, 1, 2, 6},   /* stride 3 */
        {2, 7, 17, 40, 3, 3, 1, 1, 0, 2, 16},  /* padded, rows of 40 */
        {2, 3, 5, 17, 3, 3, 1, 1, 0, 2, 9},    /* padded, runs of 16 and 17 */
    };
    int bad = 0, cases = 0;
    for (int f = have_avx2() ? 0 : 1; f < 2; f++) {
        lt_bf16_emulate_fast(f == 0);
        for (int e = 0; e < 2; e++)
            for (size_t i = 0; i < sizeof convs / sizeof *convs; i++)
                for (int sp = 0; sp < 2; sp++, cases++)
                    bad += im2col_case(e ? LT_BF16_EMULATED_AVX512 : LT_BF16_EMULATED, convs[i], sp);
    }
    lt_bf16_emulate_fast(1);
    CHECK_MSG(bad == 0, "%d elements differ from the GEMMs on the column matrix", bad);
    printf("gemm on the image: %d cases bitwise as on the written column matrix\n", cases * 2);
}

/* the conv2d kernels in the bf16 math mode: forward and backward with the
   GEMMs on the image and with the column matrix written out, bitwise the same
   (several chunks and threads, padding, stride) */
static void test_conv_fused(void) {
    static const conv_shape convs[] = {
        {13, 32, 26, 26, 3, 3, 1, 0, 0, 13, 64}, /* conv2, chunks of 6 */
        {5, 1, 28, 28, 3, 3, 1, 0, 0, 5, 32},    /* conv1 */
        {4, 3, 9, 8, 3, 3, 2, 1, 0, 4, 7},       /* stride 2, padded */
    };
    lt_cpu_gemm_set_bf16(LT_BF16_EMULATED);
    int bad = 0;
    for (size_t i = 0; i < sizeof convs / sizeof *convs; i++) {
        conv_shape s = convs[i];
        int OH = (s.H + 2 * s.pad - s.KH) / s.stride + 1, OW = (s.W + 2 * s.pad - s.KW) / s.stride + 1;
        size_t ni = (size_t)s.B * s.C * s.H * s.W, no = (size_t)s.B * s.OC * OH * OW, nw = (size_t)s.OC * s.C * 9;
        size_t ns = lt_conv2d_scratch_floats(s.B, s.C, s.H, s.W, s.OC, s.KH, s.KW, s.stride, s.pad);
        float *inp = malloc(ni * 4), *w = malloc(nw * 4), *b = malloc((size_t)s.OC * 4), *dout = malloc(no * 4);
        float *out[2], *dinp[2], *dw[2], *db[2], *scratch = malloc(ns * 4);
        for (size_t j = 0; j < ni; j++) inp[j] = urand();
        for (size_t j = 0; j < nw; j++) w[j] = urand() * 0.3f;
        for (int j = 0; j < s.OC; j++) b[j] = urand() * 0.1f;
        for (size_t j = 0; j < no; j++) dout[j] = urand();
        for (int f = 0; f < 2; f++) {
            out[f] = malloc(no * 4), dinp[f] = calloc(ni, 4), dw[f] = calloc(nw, 4), db[f] = calloc((size_t)s.OC, 4);
            lt_conv2d_set_bf16_fused(f);
            lt_conv2d_forward(out[f], inp, w, b, s.B, s.C, s.H, s.W, s.OC, s.KH, s.KW, s.stride, s.pad, LT_ACT_RELU,
                              scratch);
            lt_conv2d_backward(dinp[f], dw[f], db[f], dout, out[f], inp, w, s.B, s.C, s.H, s.W, s.OC, s.KH, s.KW,
                               s.stride, s.pad, LT_ACT_RELU, scratch);
        }
        bad += memcmp(out[0], out[1], no * 4) != 0;
        bad += memcmp(dinp[0], dinp[1], ni * 4) != 0;
        bad += memcmp(dw[0], dw[1], nw * 4) != 0;
        bad += memcmp(db[0], db[1], (size_t)s.OC * 4) != 0;
        for (int f = 0; f < 2; f++) free(out[f]), free(dinp[f]), free(dw[f]), free(db[f]);
        free(inp), free(w), free(b), free(dout), free(scratch);
    }
    lt_conv2d_set_bf16_fused(1);
    lt_cpu_gemm_set_bf16(LT_BF16_NONE);
    CHECK_MSG(bad == 0, "%d conv2d results differ between the GEMMs on the image and on the column matrix", bad);

    /* a layer with one input channel keeps its direct f32 weight gradient in
       the bf16 mode (bitwise the f32 mode's), its forward is bf16 */
    enum { B = 3, H = 12, OC = 8, OH = H - 2 };
    float inp[B * H * H], w[OC * 9], dout[B * OC * OH * OH], out[2][B * OC * OH * OH], dw[2][OC * 9], db[2][OC];
    float *scratch = malloc(lt_conv2d_scratch_floats(B, 1, H, H, OC, 3, 3, 1, 0) * sizeof *scratch);
    for (int j = 0; j < B * H * H; j++) inp[j] = urand();
    for (int j = 0; j < OC * 9; j++) w[j] = urand();
    for (int j = 0; j < B * OC * OH * OH; j++) dout[j] = urand();
    for (int f = 0; f < 2; f++) {
        lt_cpu_gemm_set_bf16(f ? LT_BF16_EMULATED : LT_BF16_NONE);
        memset(dw[f], 0, sizeof dw[f]);
        memset(db[f], 0, sizeof db[f]);
        lt_conv2d_forward(out[f], inp, w, NULL, B, 1, H, H, OC, 3, 3, 1, 0, LT_ACT_NONE, scratch);
        lt_conv2d_backward(NULL, dw[f], db[f], dout, out[f], inp, w, B, 1, H, H, OC, 3, 3, 1, 0, LT_ACT_NONE, scratch);
    }
    lt_cpu_gemm_set_bf16(LT_BF16_NONE);
    CHECK(memcmp(out[0], out[1], sizeof out[0]) != 0);
    CHECK(memcmp(dw[0], dw[1], sizeof dw[0]) == 0 && memcmp(db[0], db[1], sizeof db[0]) == 0);
    free(scratch);
}

static void test_names(void) {
    CHECK(!strcmp(lt_bf16_impl_name(LT_BF16_AMX), "amx-bf16"));
    CHECK(!strcmp(lt_bf16_impl_name(LT_BF16_EMULATED), "bf16 emulated kernels"));
    CHECK(!strcmp(lt_bf16_impl_name(LT_BF16_NONE), "f32"));
    CHECK(!strcmp(lt_bf16_impl_name(LT_BF16_AVX512), "avx512-bf16"));
    CHECK(!strcmp(lt_bf16_impl_name(LT_BF16_EMULATED_AVX512), "avx512-bf16 emulated kernels"));
}

int main(void) {
    RUN(test_bf16_rounding);
    RUN(test_model_semantics);
    RUN(test_gemm_shapes);
    RUN(test_gemm_large);
    RUN(test_vdpbf16ps_model);
    RUN(test_gemm_shapes_avx512);
    RUN(test_gemm_degenerate);
    RUN(test_cpu_sgemm);
    RUN(test_avx2_tiles);
    RUN(test_avx2_gemm);
    RUN(test_avx2_gemm_tiny_c);
    RUN(test_gemm_im2col);
    RUN(test_conv_fused);
    RUN(test_names);
    return check_done();
}
