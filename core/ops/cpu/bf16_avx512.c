/* bf16_avx512.c: the tile API of bf16_ukernel.inc for CPUs with AVX512-BF16
 * and no AMX: the tiles are memory (as in the C model), and the tile op is
 * VDPBF16PS: per row of C, 16 lanes of f32 take the broadcast A pair (m, k)
 * times B's pair row k, for the 16 pairs of a K step. Its C model is
 * lt_bf16_vdpbf16ps_model (bf16_gemm.c); only this op differs from it. */
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "ops/cpu/bf16_gemm.h"

#if defined(__x86_64__) && defined(__GNUC__) && (defined(__clang__) || __GNUC__ >= 10)
#include <immintrin.h>

__attribute__((target("avx512f,avx512bf16"))) static void dp_avx512(float *restrict c, const uint16_t *restrict a,
                                                                    const uint16_t *restrict b) {
    for (int m = 0; m < 16; m++) {
        __m512 acc = _mm512_loadu_ps(c + m * 16);
        for (int k = 0; k < 16; k++) {
            int32_t pair;
            memcpy(&pair, a + m * 32 + 2 * k, 4);
            __m512i av = _mm512_set1_epi32(pair), bv = _mm512_loadu_si512((const void *)(b + k * 32));
            acc = _mm512_dpbf16_ps(acc, (__m512bh)av, (__m512bh)bv);
        }
        _mm512_storeu_ps(c + m * 16, acc);
    }
}

#define UK(name) avx512_##name
#define UK_ATTR
#define UK_TILES lt_bf16_tiles
#define TL_BEGIN(T) memset((T), 0, sizeof *(T))
#define TL_END(T) ((void)(T))
#define TL_ZERO(T, i) memset((T)->t[i].b, 0, 1024)
#define TL_LOADD(T, i, p, s) lt_bf16_tile_loadd((T), (i), (p), (s))
#define TL_STORED(T, i, p, s) lt_bf16_tile_stored((T), (i), (p), (s))
#define TL_DP(T, c, a, b) dp_avx512((T)->t[c].f, (T)->t[a].h, (T)->t[b].h)
#include "ops/cpu/bf16_ukernel.inc"

int lt_bf16_avx512_run(const lt_bf16_blocks *b) {
    if (!lt_bf16_cpu_has_avx512bf16()) return -1;
    avx512_run(b);
    return 0;
}

int lt_bf16_vdpbf16ps_avx512(float *c, const uint16_t *a, const uint16_t *b) {
    if (!lt_bf16_cpu_has_avx512bf16()) return -1;
    dp_avx512(c, a, b);
    return 0;
}

#else
int lt_bf16_avx512_run(const lt_bf16_blocks *b) {
    (void)b;
    return -1;
}
int lt_bf16_vdpbf16ps_avx512(float *c, const uint16_t *a, const uint16_t *b) {
    (void)c, (void)a, (void)b;
    return -1;
}
#endif
