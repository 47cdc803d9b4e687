/* ops/cpu/bf16_gemm.h: the CPU's bf16 GEMM (--precision bf16-mixed on the CPU)
 *   C [M, N] (+)= A [M, K] x B [K, N]
 * with A and B given in f32 (row-major, either transposed, as cblas_sgemm),
 * rounded to bf16 (nearest even) while they are packed, multiplied in the
 * matrix units' tile layout and accumulated in f32.
 *
 * The kernel is written once against a small tile API, the part of Intel AMX
 * it uses (bf16_ukernel.inc): eight tiles of 16 rows x 64 bytes, load, zero,
 * store, and TDPBF16PS (C [16x16 f32] += A [16x32 bf16] x B [32x16 bf16], B
 * in VNNI pairs). The API has two implementations:
 *   - the instructions themselves (bf16_amx.c, compiled with target
 *     attributes; run only where CPUID says amx_bf16 and Linux granted the
 *     tile data state), and
 *   - a portable C model of exactly those instructions (bf16_gemm.c), which
 *     the tests run on any CPU (LATHE_CPU_BF16=emulate); on x86-64 CPUs
 *     with AVX2 and FMA it runs as vector code (bf16_model_avx2.c), bitwise
 *     the scalar model's results, and so does the packing.
 * TDPBF16PS, as Intel's SDM gives it: for each C row, two f32 partial sums
 * per column (the even and the odd element of the bf16 pairs) start at zero,
 * take the 16 pairs of the tile's K one FMA at a time, then C += (even + odd);
 * every step rounds to nearest even, treats denormal inputs as zero and
 * flushes denormal results to zero; MXCSR plays no part.
 *
 * CPUs with AVX512-BF16 but no AMX run the same blocks with a tile op made of
 * VDPBF16PS (bf16_avx512.c: per C row, 16 dot products of a broadcast A pair
 * with a row of B's pairs), whose rounding differs: each step adds straight
 * into C, the odd element of a pair first, then the even one, one FMA each
 * (DAZ, FTZ, nearest even, as the SDM gives VDPBF16PS). It has its C model too.
 *
 * Which implementation runs: LATHE_CPU_BF16 = auto (default: AMX where the
 * CPU has it, else AVX512-BF16 where it has that, else none), amx or avx512
 * (that one where the CPU has it, so that a CPU with both can run either;
 * else said on stderr, and auto), emulate (the C model of AMX),
 * emulate-avx512 (the C model of VDPBF16PS) or off (none: f32 GEMMs). */
#ifndef LATHE_OPS_CPU_BF16_GEMM_H
#define LATHE_OPS_CPU_BF16_GEMM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum lt_bf16_impl {
    LT_BF16_NONE = 0,        /* no bf16 kernels: the GEMMs stay f32 */
    LT_BF16_EMULATED,        /* the C model of the AMX instructions */
    LT_BF16_AMX,             /* AMX-BF16 tiles */
    LT_BF16_EMULATED_AVX512, /* the C model of the VDPBF16PS tile op */
    LT_BF16_AVX512,          /* AVX512-BF16 */
} lt_bf16_impl;

/* What this process may run, from LATHE_CPU_BF16 and the CPU (decided once;
 * asks Linux for the AMX tile state the first time it finds the units). */
lt_bf16_impl lt_bf16_available(void);
/* 1 when the CPU has AMX-BF16 and the kernel granted its use (whatever
 * LATHE_CPU_BF16 says). */
int lt_bf16_cpu_has_amx(void);
/* 1 when the CPU has AVX512-BF16 (and the OS keeps the ZMM state) */
int lt_bf16_cpu_has_avx512bf16(void);
/* "amx-bf16", "bf16 emulated kernels", "avx512-bf16",
 * "avx512-bf16 emulated kernels", "f32" */
const char *lt_bf16_impl_name(lt_bf16_impl impl);

/* f32 -> bf16 bits, round to nearest even (NaN stays a NaN). */
uint16_t lt_bf16_from_f32(float f);
static inline float lt_bf16_to_f32(uint16_t h) {
    union {
        uint32_t u;
        float f;
    } v = {.u = (uint32_t)h << 16};
    return v.f;
}

/* C = A x B (beta 0) or C += A x B (beta 1) with impl, cblas_sgemm's
 * row-major meaning: A is M x K (transa: stored K x M), B is K x N (transb:
 * stored N x K). Returns 0, or -1 when impl cannot run here or its packing
 * buffers could not be had (C untouched). Runs on the OpenMP threads when
 * called outside a parallel region. */
int lt_bf16_gemm(lt_bf16_impl impl, int transa, int transb, int M, int N, int K, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc);

/* The column matrix of a convolution (conv2d.c's im2col) for samples
 * [b0, b0+nb) of inp [B, C, H, W]:
 *   col [C*KH*KW, nb*OH*OW],
 *   col[(c*KH+kh)*KW+kw][bb*OH*OW + oh*OW + ow]
 *     = inp[b0+bb, c, oh*stride-pad+kh, ow*stride-pad+kw] (0 outside). */
typedef struct lt_bf16_im2col {
    const float *inp;
    int b0, nb, C, H, W, KH, KW, stride, pad, OH, OW;
} lt_bf16_im2col;

/* Valid output-column range [*lo, *hi) of a convolution's kernel column kw:
 * those ow whose input column iw = ow*stride - pad + kw lies in [0, W)
 * (conv2d.c's im2col and col2im, and the bf16 column matrix). */
static inline void lt_conv_valid_cols(int kw, int W, int OW, int stride, int pad, int *lo, int *hi) {
    int l = 0, h;
    if (pad - kw > 0) l = (pad - kw + stride - 1) / stride;
    int last = W - 1 + pad - kw; /* largest ow*stride allowed */
    h = last < 0 ? 0 : last / stride + 1;
    if (h > OW) h = OW;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* lt_bf16_gemm with B the column matrix col (transb 0: K = C*KH*KW taps,
 * N = nb*OH*OW pixels) or its transpose (transb 1: K pixels, N taps), built
 * in bf16 from the image in an order the tile loads read in place: no f32
 * column matrix, no packing of it (bf16_gemm.c says how). Bitwise
 * lt_bf16_gemm on the column matrix written out. Returns 0, or -1 as
 * lt_bf16_gemm does and when M, N, K are not the column matrix's (C
 * untouched). */
int lt_bf16_gemm_im2col(lt_bf16_impl impl, int transa, int transb, int M, int N, int K, const float *A, int lda,
                        const lt_bf16_im2col *col, float beta, float *C, int ldc);

/* One TDPBF16PS on full tiles: c [16x16 f32] += a [16 rows x 32 bf16] x
 * b [16 rows of 16 VNNI pairs]. The model, and the instruction (-1 where the
 * CPU cannot run it). For the tests. */
void lt_bf16_tdpbf16ps_model(float *c, const uint16_t *a, const uint16_t *b);
int lt_bf16_tdpbf16ps_amx(float *c, const uint16_t *a, const uint16_t *b);
/* The same tile op made of VDPBF16PS: the model, and the instructions. */
void lt_bf16_vdpbf16ps_model(float *c, const uint16_t *a, const uint16_t *b);
int lt_bf16_vdpbf16ps_avx512(float *c, const uint16_t *a, const uint16_t *b);

/* The models again on AVX2 and FMA (bf16_model_avx2.c), bitwise their
 * results, as the emulated GEMMs run them where the CPU has both (x86-64);
 * -1 where it has not. For the tests. */
int lt_bf16_tdpbf16ps_avx2(float *c, const uint16_t *a, const uint16_t *b);
int lt_bf16_vdpbf16ps_avx2(float *c, const uint16_t *a, const uint16_t *b);
/* For the tests: 0 makes the bf16 GEMMs pack with lt_bf16_from_f32 and the
 * emulated ones run the scalar models even where AVX2 and FMA could run
 * (bitwise the same), 1 (the default) lets them use AVX2. */
void lt_bf16_emulate_fast(int on);
/* For the benchmarks: 1 makes the bf16 GEMMs pack their operands as the
 * hardware kernels do and then leave out the tile products (C = 0 for beta
 * 0, untouched for beta 1): what the bf16 path costs beyond them, the time
 * left where the matrix units make the products nearly free. 0 (the
 * default): whole GEMMs. */
void lt_bf16_tiles_off(int on);

/* ---- the CPU backend's GEMMs (linear, conv2d) ----
 * lt_cpu_sgemm is cblas_sgemm (row-major, alpha 1) while the math is f32,
 * and the bf16 GEMM above once lt_cpu_gemm_set_bf16 picked an implementation. */
void lt_cpu_gemm_set_bf16(lt_bf16_impl impl);
lt_bf16_impl lt_cpu_gemm_bf16(void);
void lt_cpu_sgemm(int transa, int transb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                  float beta, float *C, int ldc);

/* ---- between bf16_gemm.c and bf16_amx.c ----
 * One GEMM's operands in tiles (bf16_ukernel.inc says their layout) and C.
 * The tile of A for 16-row panel i and K step k starts at
 * apack + i*apanel + k*astep, its rows arow bytes apart; B's likewise. The
 * packed operands: panel kb*512, step 512, row 64 (lt_bf16_blocks_packed);
 * a bf16 matrix already in that order but for its row length is read in
 * place with other strides. */
typedef struct lt_bf16_blocks {
    const uint16_t *apack, *bpack;
    int mblocks, nblocks, kb; /* 32x32 blocks of C, K steps of 32 */
    float *C;
    int ldc, M, N, accumulate;
    size_t apanel, astep, arow, bpanel, bstep, brow;
} lt_bf16_blocks;
static inline void lt_bf16_blocks_packed(lt_bf16_blocks *b) {
    b->apanel = b->bpanel = (size_t)b->kb * 512;
    b->astep = b->bstep = 512;
    b->arow = b->brow = 64;
}
/* Runs every block on the AMX tiles; -1 where this build has no AMX code. */
int lt_bf16_amx_run(const lt_bf16_blocks *b);
/* Runs every block with VDPBF16PS (bf16_avx512.c); -1 where it cannot. */
int lt_bf16_avx512_run(const lt_bf16_blocks *b);
/* 1 when the CPU runs AVX2 and FMA (asked each call: cache it) */
int lt_bf16_model_avx2_cpu(void);
/* Runs every block on the AVX2 models (vnni: the VDPBF16PS tile op, else
 * TDPBF16PS), sa and sb what the packed A and B hold (the packing's scan):
 * 0; 1 when these operands need the scalar models (NaNs other than the
 * default one; nothing done); -1 where the CPU cannot. */
int lt_bf16_emulated_avx2_run(const lt_bf16_blocks *b, int vnni, unsigned sa, unsigned sb);
/* Panel p of the packed A (16 rows) or B (16 columns), every K step, as
 * bf16_gemm.c packs it, bitwise; only where lt_bf16_model_avx2_cpu(). With
 * scan, returns what the panel holds (its least exponent not zero after DAZ,
 * and flags: lt_bf16_emulated_avx2_run's sa, sb, combined by min and or);
 * else 255. */
unsigned lt_bf16_pack_a_avx2(uint16_t *ap, const float *A, int lda, int trans, int M, int K, int p, int kb, int scan);
unsigned lt_bf16_pack_b_avx2(uint16_t *bp, const float *B, int ldb, int trans, int K, int N, int p, int kb, int scan);
/* n values to bf16 (lt_bf16_from_f32's rounding); nb x rows rows of n bf16
 * into pairs: row r of block b from s0 + b*sample + r*row and s1 likewise,
 * out[2j] = s0[..][j], out[2j+1] = s1[..][j], the rows' pairs one after
 * another; and the scan lt_bf16_pack_b_avx2 returns, over n bf16 values (n a
 * multiple of 16). Only where lt_bf16_model_avx2_cpu(). */
void lt_bf16_convert_avx2(uint16_t *dst, const float *src, size_t n);
void lt_bf16_interleave_rows_avx2(uint16_t *out, const uint16_t *s0, const uint16_t *s1, int nb, int rows, int n,
                                  size_t sample, size_t row);
unsigned lt_bf16_scan_avx2(const uint16_t *p, size_t n);
/* the tile registers in memory, for the C models and the VDPBF16PS op */
typedef union lt_bf16_tile {
    float f[256];
    uint16_t h[512];
    unsigned char b[1024];
} lt_bf16_tile;
typedef struct lt_bf16_tiles {
    _Alignas(64) lt_bf16_tile t[8];
} lt_bf16_tiles;
static inline void lt_bf16_tile_loadd(lt_bf16_tiles *T, int t, const void *p, size_t stride) {
    for (int r = 0; r < 16; r++) memcpy(T->t[t].b + r * 64, (const char *)p + r * stride, 64);
}
static inline void lt_bf16_tile_stored(lt_bf16_tiles *T, int t, void *p, size_t stride) {
    for (int r = 0; r < 16; r++) memcpy((char *)p + r * stride, T->t[t].b + r * 64, 64);
}

#endif
