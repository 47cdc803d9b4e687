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
 *   - the backend's GEMM entry: f32 is cblas bitwise, bf16 is the kernel.
 * The real instructions are checked against the models by test_bf16_amx and
 * test_bf16_avx512. */
#include <float.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "ops/cpu/bf16_gemm.h"
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
    op = lt_bf16_vdpbf16ps_model;
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
    op = lt_bf16_tdpbf16ps_model;
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
    RUN(test_names);
    return check_done();
}
