/* bf16_model_avx2.c: the C models of TDPBF16PS and of the VDPBF16PS tile op
 * (bf16_gemm.c) on AVX2 and FMA, for the emulated GEMMs on CPUs without the
 * bf16 units. Bitwise the models' results: per lane the same FMAs in the same
 * order (VFMADD rounds once, to nearest even, as fmaf), DAZ on the inputs and
 * FTZ on the results done with compares and masks (MXCSR is never touched).
 *
 * What the models do is skipped only where it cannot change a bit:
 *   - DAZ on A and B (on C) when the GEMM's packed operands (its C) hold no
 *     denormal;
 *   - FTZ where no result can be tiny: every nonzero bf16 a = m * 2^(ea-7)
 *     with an integer m, so every product is a multiple of 2^(ea+eb-14). If
 *     that quantum q is at least FLT_MIN for every pair (the least exponents
 *     of A and B say so), every sum of products (the partial sums, and
 *     VDPBF16PS's running C) starting from zero or from a C of multiples of
 *     q (normal C with exponent >= -103) is, exactly, a multiple of q, so
 *     zero or at least FLT_MIN in magnitude; rounding keeps it so (and a
 *     multiple of q): the flush never fires. TDPBF16PS's add into C is
 *     flushed unless both A and B and C are so.
 * NaN: a result's NaN is the first NaN operand of the instruction the
 * compiler picked, which differs between the model and these loops, so a GEMM
 * whose A, B or C holds a NaN other than the default one (0xffc00000, all
 * that inf * 0 or inf - inf make) runs the scalar models; with only default
 * NaNs every NaN is the same bits. The scans that decide all this run once
 * per GEMM: over each packed panel as it is packed, and over C. */
#include <float.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "ops/cpu/bf16_gemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) static inline

enum {
    F_DAZ = 1,    /* A or B may hold denormals: read them as zero */
    F_FTZ = 2,    /* a partial sum of the tile op may be tiny: flush every step */
    F_MODEL = 4,  /* a NaN other than the default one: the scalar models */
    F_DAZ_C = 8,  /* C may hold denormals */
    F_FTZ_C = 16, /* C's values are not all multiples of FLT_MIN's quantum */
};

int lt_bf16_model_avx2_cpu(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* |x| < FLT_MIN -> zero of x's sign; NaN and everything else pass */
AVX2_INLINE __m256 flush8(__m256 x) {
    const __m256 abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 tiny = _mm256_cmp_ps(_mm256_and_ps(x, abs), _mm256_set1_ps(FLT_MIN), _CMP_LT_OQ);
    return _mm256_andnot_ps(_mm256_and_ps(tiny, abs), x);
}

/* ---- what the operands hold ---- */
enum { S_DENORMAL = 0x100, S_ODD_NAN = 0x200 };

/* bf16 values (n a multiple of 16): the least biased exponent of the values
 * that are not zero after DAZ (255 when none), | S_DENORMAL, | S_ODD_NAN */
AVX2 static unsigned scan_bf16(const uint16_t *p, size_t n) {
    const __m256i abs = _mm256_set1_epi16(0x7fff), ff = _mm256_set1_epi16(0xff), zero = _mm256_setzero_si256();
    const __m256i inf = _mm256_set1_epi16(0x7f80), dnan = _mm256_set1_epi16((short)0xffc0);
    __m256i emin = ff, den = zero, nan = zero;
    for (size_t i = 0; i < n; i += 16) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(p + i)), a = _mm256_and_si256(v, abs);
        __m256i e = _mm256_srli_epi16(a, 7), ez = _mm256_cmpeq_epi16(e, zero);
        emin = _mm256_min_epu16(emin, _mm256_or_si256(e, _mm256_and_si256(ez, ff)));
        den = _mm256_or_si256(den, _mm256_andnot_si256(_mm256_cmpeq_epi16(a, zero), ez));
        nan = _mm256_or_si256(nan, _mm256_andnot_si256(_mm256_cmpeq_epi16(v, dnan), _mm256_cmpgt_epi16(a, inf)));
    }
    __m128i m = _mm_min_epu16(_mm256_castsi256_si128(emin), _mm256_extracti128_si256(emin, 1));
    unsigned r = (unsigned)_mm_extract_epi16(_mm_minpos_epu16(m), 0);
    if (!_mm256_testz_si256(den, den)) r |= S_DENORMAL;
    if (!_mm256_testz_si256(nan, nan)) r |= S_ODD_NAN;
    return r;
}

/* f32 C (rows x cols, rows ld apart): as scan_bf16, the least exponent of
 * the values that are normal (or inf, NaN), | S_DENORMAL, | S_ODD_NAN */
AVX2 static unsigned scan_f32(const float *c, int rows, int cols, size_t ld) {
    unsigned emin = 255, nan = 0;
    const __m256i abs = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    const __m256i dnan = _mm256_set1_epi32((int)0xffc00000u), one = _mm256_set1_epi32(0x00800000);
    __m256i lo = _mm256_set1_epi32(-1), bad = _mm256_setzero_si256(), den = bad, zero = bad;
    for (int r = 0; r < rows; r++) {
        const float *row = c + (size_t)r * ld;
        int j = 0;
        for (; j + 8 <= cols; j += 8) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(row + j)), a = _mm256_and_si256(v, abs);
            /* zero and denormals wrap around to the top: out of the minimum */
            lo = _mm256_min_epu32(lo, _mm256_sub_epi32(a, one));
            den = _mm256_or_si256(den, _mm256_andnot_si256(_mm256_cmpeq_epi32(a, zero), _mm256_cmpgt_epi32(one, a)));
            bad = _mm256_or_si256(bad, _mm256_andnot_si256(_mm256_cmpeq_epi32(v, dnan), _mm256_cmpgt_epi32(a, inf)));
        }
        for (; j < cols; j++) {
            uint32_t u;
            memcpy(&u, row + j, 4);
            uint32_t e = (u >> 23) & 0xff;
            if (e && e < emin) emin = e;
            if (!e && (u & 0x7fffffu)) den = _mm256_set1_epi32(-1);
            if ((u & 0x7fffffffu) > 0x7f800000u && u != 0xffc00000u) nan = 1;
        }
    }
    uint32_t l[8];
    _mm256_storeu_si256((__m256i *)l, lo);
    for (int i = 0; i < 8; i++) {
        uint32_t e = l[i] == 0xffffffffu ? 0 : ((l[i] + 0x00800000u) >> 23) & 0xff;
        if (e && e < emin) emin = e;
    }
    if (nan || !_mm256_testz_si256(bad, bad)) emin |= S_ODD_NAN;
    if (!_mm256_testz_si256(den, den)) emin |= S_DENORMAL;
    return emin;
}

/* the tile op's flags from what A, B and C hold (C's least exponent: whether
   an add into C can be tiny, and VDPBF16PS's running sums start from C) */
static unsigned op_flags(unsigned sa, unsigned sb, int vnni, unsigned sc) {
    unsigned f = 0;
    if ((sa | sb | sc) & S_ODD_NAN) f |= F_MODEL;
    if ((sa | sb) & S_DENORMAL) f |= F_DAZ;
    if (sc & S_DENORMAL) f |= F_DAZ_C;
    if ((sc & 0xff) < 24) f |= F_FTZ_C;
    if ((sa & 0xff) + (sb & 0xff) < 142 || (vnni && (f & F_FTZ_C))) f |= F_FTZ;
    return f;
}

/* ---- tiles ----
 * A bf16 tile (16 rows of 16 pairs) as two f32 tiles of 16 x 16: the even
 * and the odd element of each pair; an f32 lane holding a pair (even in its
 * low half) is the odd element once its low half is cleared, the even one
 * once shifted up. */
typedef struct split_tile {
    _Alignas(32) float e[256];
    _Alignas(32) float o[256];
} split_tile;

AVX2_INLINE void split(split_tile *s, const uint16_t *t, size_t stride, int daz) {
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
    for (int i = 0; i < 32; i++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)((const char *)t + (i >> 1) * stride + (i & 1) * 32));
        __m256 e = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), o = _mm256_castsi256_ps(_mm256_and_si256(v, hi));
        if (daz) e = flush8(e), o = flush8(o);
        _mm256_store_ps(s->e + 8 * i, e);
        _mm256_store_ps(s->o + 8 * i, o);
    }
}

#define STEP(acc, a, b) (acc) = ftz ? flush8(_mm256_fmadd_ps((a), (b), (acc))) : _mm256_fmadd_ps((a), (b), (acc))

/* TDPBF16PS on rows m .. m+R-1: per row and column two partial sums from
   zero over the 16 pairs (one FMA each), then C := C + (even + odd) */
AVX2_INLINE void tdp_rows(float *c, const split_tile *a, const split_tile *b, int m, int R, int ftz, unsigned f) {
    __m256 x[4][4]; /* per row: even 0..7, even 8..15, odd 0..7, odd 8..15 */
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) x[r][i] = _mm256_setzero_ps();
    for (int k = 0; k < 16; k++) {
        /* B's row in registers, loaded once for the R rows (not folded into
           each FMA: the loads would then bound the loop) */
        __m256 be0 = _mm256_load_ps(b->e + 16 * k), be1 = _mm256_load_ps(b->e + 16 * k + 8);
        __m256 bo0 = _mm256_load_ps(b->o + 16 * k), bo1 = _mm256_load_ps(b->o + 16 * k + 8);
        __asm__("" : "+x"(be0), "+x"(be1), "+x"(bo0), "+x"(bo1));
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m256 a0 = _mm256_broadcast_ss(a->e + 16 * (m + r) + k), a1 = _mm256_broadcast_ss(a->o + 16 * (m + r) + k);
            STEP(x[r][0], a0, be0);
            STEP(x[r][1], a0, be1);
            STEP(x[r][2], a1, bo0);
            STEP(x[r][3], a1, bo1);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            /* (even + odd) is tiny only where a partial sum may be, C + it
               where C's values or those sums are not multiples of FLT_MIN */
            float *cr = c + 16 * (m + r) + 8 * h;
            __m256 sum = _mm256_add_ps(x[r][h], x[r][2 + h]), cv = _mm256_loadu_ps(cr);
            if (ftz) sum = flush8(sum);
            if (f & F_DAZ_C) cv = flush8(cv);
            cv = _mm256_add_ps(cv, sum);
            if (ftz || (f & F_FTZ_C)) cv = flush8(cv);
            _mm256_storeu_ps(cr, cv);
        }
}

/* the VDPBF16PS tile op on rows m .. m+R-1: per pair, C += odd product, then
   C += even product, one FMA each */
AVX2_INLINE void vdp_rows(float *c, const split_tile *a, const split_tile *b, int m, int R, int ftz, unsigned f) {
    __m256 x[6][2];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            x[r][h] = _mm256_loadu_ps(c + 16 * (m + r) + 8 * h);
            if (f & F_DAZ_C) x[r][h] = flush8(x[r][h]);
        }
    for (int k = 0; k < 16; k++)
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            __m256 a0 = _mm256_broadcast_ss(a->e + 16 * (m + r) + k), a1 = _mm256_broadcast_ss(a->o + 16 * (m + r) + k);
            STEP(x[r][0], a1, _mm256_load_ps(b->o + 16 * k));
            STEP(x[r][1], a1, _mm256_load_ps(b->o + 16 * k + 8));
            STEP(x[r][0], a0, _mm256_load_ps(b->e + 16 * k));
            STEP(x[r][1], a0, _mm256_load_ps(b->e + 16 * k + 8));
        }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) _mm256_storeu_ps(c + 16 * (m + r) + 8 * h, x[r][h]);
}

/* one tile op on split tiles: rows 2 at a time for TDPBF16PS (8 sums of 8
   lanes), 5 or 6 for VDPBF16PS (10 or 12 sums) */
AVX2_INLINE void tile_op(float *c, const split_tile *a, const split_tile *b, unsigned f, int vnni) {
    if (vnni) {
        if (f & F_FTZ)
            vdp_rows(c, a, b, 0, 5, 1, f), vdp_rows(c, a, b, 5, 5, 1, f), vdp_rows(c, a, b, 10, 6, 1, f);
        else
            vdp_rows(c, a, b, 0, 5, 0, f), vdp_rows(c, a, b, 5, 5, 0, f), vdp_rows(c, a, b, 10, 6, 0, f);
    } else {
        if (f & F_FTZ)
            for (int m = 0; m < 16; m += 2) tdp_rows(c, a, b, m, 2, 1, f);
        else
            for (int m = 0; m < 16; m += 2) tdp_rows(c, a, b, m, 2, 0, f);
    }
}

/* one tile op on its own: the flags from these tiles */
AVX2 static void one_op(float *c, const uint16_t *a, const uint16_t *b, int vnni) {
    unsigned f = op_flags(scan_bf16(a, 512), scan_bf16(b, 512), vnni, scan_f32(c, 16, 16, 16));
    if (f & F_MODEL) {
        if (vnni)
            lt_bf16_vdpbf16ps_model(c, a, b);
        else
            lt_bf16_tdpbf16ps_model(c, a, b);
        return;
    }
    split_tile sa, sb;
    split(&sa, a, 64, f & F_DAZ);
    split(&sb, b, 64, f & F_DAZ);
    tile_op(c, &sa, &sb, f, vnni);
}

int lt_bf16_tdpbf16ps_avx2(float *c, const uint16_t *a, const uint16_t *b) {
    if (!lt_bf16_model_avx2_cpu()) return -1;
    one_op(c, a, b, 0);
    return 0;
}

int lt_bf16_vdpbf16ps_avx2(float *c, const uint16_t *a, const uint16_t *b) {
    if (!lt_bf16_model_avx2_cpu()) return -1;
    one_op(c, a, b, 1);
    return 0;
}

/* ---- packing (bf16_gemm.c says the layout): lt_bf16_from_f32 on 8 lanes,
 * the bf16 in each lane's low half ---- */
AVX2_INLINE __m256i bf16_8(__m256 x) {
    const __m256i one = _mm256_set1_epi32(1), half = _mm256_set1_epi32(0x7fff);
    const __m256i abs = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    __m256i u = _mm256_castps_si256(x), hi = _mm256_srli_epi32(u, 16);
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(half, _mm256_and_si256(hi, one))), 16);
    __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs), inf); /* a quiet NaN */
    return _mm256_blendv_epi8(r, _mm256_or_si256(hi, _mm256_set1_epi32(0x40)), nan);
}

/* 16 values in order */
AVX2_INLINE void store16(uint16_t *t, const float *x) {
    __m256i v = _mm256_packus_epi32(bf16_8(_mm256_loadu_ps(x)), bf16_8(_mm256_loadu_ps(x + 8)));
    _mm256_storeu_si256((__m256i *)t, _mm256_permute4x64_epi64(v, 0xd8));
}

static int imin(int a, int b) { return a < b ? a : b; }

AVX2 unsigned lt_bf16_pack_a_avx2(uint16_t *ap, const float *A, int lda, int trans, int M, int K, int p, int kb,
                                  int scan) {
    int rows = imin(16, M - p * 16);
    for (int s = 0; s < kb; s++) {
        uint16_t *t = ap + ((size_t)p * kb + s) * 512;
        int ks = imin(32, K - s * 32);
        if (rows <= 0) {
            memset(t, 0, 1024);
        } else if (!trans && rows == 16 && ks == 32) {
            for (int r = 0; r < 16; r++) {
                const float *x = A + (size_t)(p * 16 + r) * lda + s * 32;
                store16(t + r * 32, x);
                store16(t + r * 32 + 16, x + 16);
            }
        } else {
            _Alignas(32) float tmp[512];
            if (rows < 16 || ks < 32) memset(tmp, 0, sizeof tmp);
            if (!trans)
                for (int r = 0; r < rows; r++)
                    for (int kk = 0; kk < ks; kk++) tmp[r * 32 + kk] = A[(size_t)(p * 16 + r) * lda + s * 32 + kk];
            else
                for (int kk = 0; kk < ks; kk++)
                    for (int r = 0; r < rows; r++) tmp[r * 32 + kk] = A[(size_t)(s * 32 + kk) * lda + p * 16 + r];
            for (int i = 0; i < 32; i++) store16(t + 16 * i, tmp + 16 * i);
        }
    }
    return scan ? scan_bf16(ap + (size_t)p * kb * 512, (size_t)kb * 512) : 255;
}

/* 16 pairs (x0[j], x1[j]) at out: per 128-bit half, unpacklo gives pairs
   0-3 (8-11), unpackhi 4-7 (12-15) */
AVX2_INLINE void pairs16(uint16_t *out, const uint16_t *x0, const uint16_t *x1) {
    __m256i a = _mm256_loadu_si256((const __m256i *)x0), b = _mm256_loadu_si256((const __m256i *)x1);
    __m256i lo = _mm256_unpacklo_epi16(a, b), hi = _mm256_unpackhi_epi16(a, b);
    _mm256_storeu_si256((__m256i *)out, _mm256_permute2x128_si256(lo, hi, 0x20));
    _mm256_storeu_si256((__m256i *)(out + 16), _mm256_permute2x128_si256(lo, hi, 0x31));
}

AVX2 void lt_bf16_interleave_rows_avx2(uint16_t *out, const uint16_t *s0, const uint16_t *s1, int nb, int rows, int n,
                                       size_t sample, size_t row) {
    for (int b = 0; b < nb; b++)
        for (int r = 0; r < rows; r++, out += 2 * (size_t)n) {
            const uint16_t *x0 = s0 + b * sample + r * row, *x1 = s1 + b * sample + r * row;
            if (n < 16) {
                for (int j = 0; j < n; j++) out[2 * j] = x0[j], out[2 * j + 1] = x1[j];
                continue;
            }
            int j = 0;
            for (; j + 16 <= n; j += 16) pairs16(out + 2 * j, x0 + j, x1 + j);
            if (j < n) pairs16(out + 2 * (n - 16), x0 + n - 16, x1 + n - 16);
        }
}

AVX2 void lt_bf16_convert_avx2(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) store16(dst + i, src + i);
    for (; i < n; i++) dst[i] = lt_bf16_from_f32(src[i]);
}

AVX2 unsigned lt_bf16_scan_avx2(const uint16_t *p, size_t n) { return scan_bf16(p, n); }

AVX2 unsigned lt_bf16_pack_b_avx2(uint16_t *bp, const float *B, int ldb, int trans, int K, int N, int p, int kb,
                                  int scan) {
    int cols = imin(16, N - p * 16);
    for (int s = 0; s < kb; s++) {
        uint16_t *t = bp + ((size_t)p * kb + s) * 512;
        int ks = imin(32, K - s * 32);
        if (cols <= 0) {
            memset(t, 0, 1024);
        } else if (!trans && cols == 16 && ks == 32) {
            /* rows 2q and 2q+1 of B, 8 columns: 8 pairs, the even row's
               bf16 in each pair's low half */
            for (int q = 0; q < 16; q++) {
                const float *x0 = B + (size_t)(s * 32 + 2 * q) * ldb + p * 16, *x1 = x0 + ldb;
                for (int h = 0; h < 2; h++) {
                    __m256i e = bf16_8(_mm256_loadu_ps(x0 + 8 * h)), o = bf16_8(_mm256_loadu_ps(x1 + 8 * h));
                    _mm256_storeu_si256((__m256i *)(t + q * 32 + 16 * h), _mm256_or_si256(e, _mm256_slli_epi32(o, 16)));
                }
            }
        } else if (trans && cols == 16 && ks == 32) {
            /* column c's 32 values of K lie in a row of B: its 16 pairs in
               order, then 8x8 blocks of pairs transposed (pair q of column c
               to row q) */
            _Alignas(32) uint16_t w[16][32];
            for (int c = 0; c < 16; c++) {
                const float *x = B + (size_t)(p * 16 + c) * ldb + s * 32;
                store16(w[c], x);
                store16(w[c] + 16, x + 16);
            }
            for (int cb = 0; cb < 16; cb += 8)
                for (int qb = 0; qb < 16; qb += 8) {
                    __m256i r[8], u[8];
                    for (int i = 0; i < 8; i++) r[i] = _mm256_load_si256((const __m256i *)(w[cb + i] + 2 * qb));
                    for (int i = 0; i < 8; i += 2) {
                        u[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
                        u[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
                    }
                    for (int i = 0; i < 8; i += 4)
                        for (int j = 0; j < 2; j++) {
                            r[i + j] = _mm256_unpacklo_epi64(u[i + j], u[i + j + 2]);
                            r[i + j + 2] = _mm256_unpackhi_epi64(u[i + j], u[i + j + 2]);
                        }
                    /* r[i] (r[i + 4]): pairs tq[i] and tq[i] + 4 of columns
                       0..3 (4..7), one per 128-bit half */
                    static const int tq[4] = {0, 2, 1, 3};
                    for (int i = 0; i < 4; i++) {
                        __m256i lo = _mm256_permute2x128_si256(r[i], r[i + 4], 0x20);
                        __m256i hi = _mm256_permute2x128_si256(r[i], r[i + 4], 0x31);
                        _mm256_storeu_si256((__m256i *)(t + (qb + tq[i]) * 32 + 2 * cb), lo);
                        _mm256_storeu_si256((__m256i *)(t + (qb + tq[i] + 4) * 32 + 2 * cb), hi);
                    }
                }
        } else {
            _Alignas(32) float tmp[512];
            if (cols < 16 || ks < 32) memset(tmp, 0, sizeof tmp);
            if (!trans)
                for (int kk = 0; kk < ks; kk++)
                    for (int c = 0; c < cols; c++)
                        tmp[(kk >> 1) * 32 + 2 * c + (kk & 1)] = B[(size_t)(s * 32 + kk) * ldb + p * 16 + c];
            else
                for (int c = 0; c < cols; c++)
                    for (int kk = 0; kk < ks; kk++)
                        tmp[(kk >> 1) * 32 + 2 * c + (kk & 1)] = B[(size_t)(p * 16 + c) * ldb + s * 32 + kk];
            for (int i = 0; i < 32; i++) store16(t + 16 * i, tmp + 16 * i);
        }
    }
    return scan ? scan_bf16(bp + (size_t)p * kb * 512, (size_t)kb * 512) : 255;
}

/* ---- the tile API (bf16_ukernel.inc) on these ops ----
 * Tiles 0..3 (C) are f32 in memory; 4..7 (A and B) are kept split, done once
 * per load straight from the packed operands. */
typedef struct fast_tiles {
    _Alignas(32) float cf[4][256]; /* tiles 0..3 */
    split_tile s[4];
    unsigned flags;
} fast_tiles;
typedef struct fast_blocks {
    lt_bf16_blocks b; /* first: the blocks the kernel is handed */
    unsigned flags;
} fast_blocks;

AVX2_INLINE void fast_load(fast_tiles *T, int t, const void *p, size_t stride) {
    if (t < 4)
        for (int r = 0; r < 16; r++) memcpy(T->cf[t] + 16 * r, (const char *)p + r * stride, 64);
    else
        split(&T->s[t - 4], p, stride, T->flags & F_DAZ);
}
AVX2_INLINE void fast_store(fast_tiles *T, int t, void *p, size_t stride) {
    for (int r = 0; r < 16; r++) memcpy((char *)p + r * stride, T->cf[t] + 16 * r, 64);
}

#define UK_ATTR AVX2
#define UK_TILES fast_tiles
#define TL_BEGIN(T) ((T)->flags = 0)
#define TL_GEMM(T, a) ((T)->flags = ((const fast_blocks *)(a))->flags)
#define TL_END(T) ((void)(T))
#define TL_ZERO(T, i) memset((T)->cf[i], 0, 1024)
#define TL_LOADD(T, i, p, s) fast_load((T), (i), (p), (s))
#define TL_STORED(T, i, p, s) fast_store((T), (i), (p), (s))
#define UK(name) avx2_tdp_##name
#define TL_DP(T, tc, ta, tb) tile_op((T)->cf[tc], &(T)->s[(ta)-4], &(T)->s[(tb)-4], (T)->flags, 0)
#include "ops/cpu/bf16_ukernel.inc"
#undef UK
#undef TL_DP
#define UK(name) avx2_vdp_##name
#define TL_DP(T, tc, ta, tb) tile_op((T)->cf[tc], &(T)->s[(ta)-4], &(T)->s[(tb)-4], (T)->flags, 1)
#include "ops/cpu/bf16_ukernel.inc"

int lt_bf16_emulated_avx2_run(const lt_bf16_blocks *b, int vnni, unsigned sa, unsigned sb) {
    if (!lt_bf16_model_avx2_cpu()) return -1;
    unsigned sc = 255, any = 0;
    if (b->accumulate) {
        /* C's rows, 32 at a time, on the threads where C is large */
        int par = b->mblocks > 1 && (size_t)b->M * b->N >= 65536 && !omp_in_parallel();
#pragma omp parallel for schedule(static) reduction(min : sc) reduction(| : any) if (par)
        for (int i = 0; i < b->mblocks; i++) {
            unsigned st = scan_f32(b->C + (size_t)i * 32 * b->ldc, imin(32, b->M - i * 32), b->N, (size_t)b->ldc);
            if ((st & 0xffu) < sc) sc = st & 0xffu;
            any |= st & ~0xffu;
        }
        sc |= any;
    }
    fast_blocks fb = {.b = *b, .flags = op_flags(sa, sb, vnni, sc)};
    if (fb.flags & F_MODEL) return 1; /* the scalar models */
    if (vnni)
        avx2_vdp_run(&fb.b);
    else
        avx2_tdp_run(&fb.b);
    return 0;
}

#else
int lt_bf16_model_avx2_cpu(void) { return 0; }
int lt_bf16_tdpbf16ps_avx2(float *c, const uint16_t *a, const uint16_t *b) {
    (void)c, (void)a, (void)b;
    return -1;
}
int lt_bf16_vdpbf16ps_avx2(float *c, const uint16_t *a, const uint16_t *b) {
    (void)c, (void)a, (void)b;
    return -1;
}
int lt_bf16_emulated_avx2_run(const lt_bf16_blocks *b, int vnni, unsigned sa, unsigned sb) {
    (void)b, (void)vnni, (void)sa, (void)sb;
    return -1;
}
unsigned lt_bf16_pack_a_avx2(uint16_t *ap, const float *A, int lda, int trans, int M, int K, int p, int kb, int scan) {
    (void)ap, (void)A, (void)lda, (void)trans, (void)M, (void)K, (void)p, (void)kb, (void)scan;
    return 255;
}
void lt_bf16_interleave_rows_avx2(uint16_t *out, const uint16_t *s0, const uint16_t *s1, int nb, int rows, int n,
                                  size_t sample, size_t row) {
    (void)out, (void)s0, (void)s1, (void)nb, (void)rows, (void)n, (void)sample, (void)row;
}
void lt_bf16_convert_avx2(uint16_t *dst, const float *src, size_t n) { (void)dst, (void)src, (void)n; }
unsigned lt_bf16_scan_avx2(const uint16_t *p, size_t n) {
    (void)p, (void)n;
    return 255;
}
unsigned lt_bf16_pack_b_avx2(uint16_t *bp, const float *B, int ldb, int trans, int K, int N, int p, int kb, int scan) {
    (void)bp, (void)B, (void)ldb, (void)trans, (void)K, (void)N, (void)p, (void)kb, (void)scan;
    return 255;
}
#endif
