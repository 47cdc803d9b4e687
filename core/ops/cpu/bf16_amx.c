/* bf16_amx.c: the tile API of bf16_ukernel.inc on the AMX instructions. Only
 * the tile operations differ from the C model in bf16_gemm.c; the blocks, the
 * packing and the dispatch are shared. Compiled with target attributes, run
 * only after lt_bf16_cpu_has_amx() said yes (CPUID and Linux's permission). */
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "ops/cpu/bf16_gemm.h"

#if defined(__x86_64__) && defined(__GNUC__) && (defined(__clang__) || __GNUC__ >= 11)
#include <immintrin.h>

/* the tile configuration (palette 1), 64 bytes, for LDTILECFG */
typedef struct amx_cfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_cfg;
typedef struct amx_none {
    char unused;
} amx_none;

__attribute__((target("amx-tile,amx-bf16"))) static inline void amx_begin(void) {
    _Alignas(64) amx_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    __asm__ volatile("" ::: "memory");
    _tile_loadconfig(&cfg);
}

/* The tile intrinsics are asm statements that name no memory: the barriers
 * make the packing's and the caller's stores land before a load, and the
 * stores be seen after. */
#define UK(name) amx_##name
#define UK_ATTR __attribute__((target("amx-tile,amx-bf16")))
#define UK_TILES amx_none
#define TL_BEGIN(T) ((void)(T), amx_begin())
#define TL_END(T) ((void)(T), _tile_release())
#define TL_ZERO(T, t) _tile_zero(t)
#define TL_LOADD(T, t, p, s)                                                                                           \
    do {                                                                                                               \
        __asm__ volatile("" ::: "memory");                                                                             \
        _tile_loadd(t, (p), (long)(s));                                                                                \
    } while (0)
#define TL_STORED(T, t, p, s)                                                                                          \
    do {                                                                                                               \
        _tile_stored(t, (p), (long)(s));                                                                               \
        __asm__ volatile("" ::: "memory");                                                                             \
    } while (0)
#define TL_DP(T, c, a, b) _tile_dpbf16ps(c, a, b)
#include "ops/cpu/bf16_ukernel.inc"

int lt_bf16_amx_run(const lt_bf16_blocks *b) {
    if (!lt_bf16_cpu_has_amx()) return -1;
    amx_run(b);
    return 0;
}

#else
int lt_bf16_amx_run(const lt_bf16_blocks *b) {
    (void)b;
    return -1;
}
#endif
