/* bf16_gemm.c: the bf16 GEMM's driver (packing, dispatch), the C model of the
 * AMX instructions it runs on (bf16_gemm.h says what is modelled), and the CPU
 * backend's GEMM entry (f32 cblas or bf16). */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/cpu/bf16_gemm.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

uint16_t lt_bf16_from_f32(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* NaN: a quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);                                           /* nearest even; inf stays */
    return (uint16_t)(u >> 16);
}

/* ---- the model of TDPBF16PS ----
 * Intel SDM, TDPBF16PS: per row m of C
 *   temp1[0 .. 2*16) := 0
 *   for k in 0 .. 16, for n in 0 .. 16:          FP32 FMA, DAZ=FTZ=1, RNE
 *     temp1[2n]   += fp32(A[m].bf16[2k])   * fp32(B[k].bf16[2n])
 *     temp1[2n+1] += fp32(A[m].bf16[2k+1]) * fp32(B[k].bf16[2n+1])
 *   for n in 0 .. 16:                             DAZ=FTZ=1, RNE
 *     C[m][n] := C[m][n] + (temp1[2n] + temp1[2n+1])
 * DAZ: a denormal input (bf16 or f32) is read as zero of its sign. FTZ: a
 * result below FLT_MIN in magnitude after rounding (x86 detects tininess after
 * rounding) is written as zero of its sign. fmaf rounds once, to nearest even
 * (the default mode, which lathe never changes). One case is not modelled: an
 * exact result within half a denormal step under FLT_MIN, which rounds up to
 * FLT_MIN here while the unbounded-exponent rounding keeps it tiny (flushed);
 * such sums need products near 2^-126 and cancel to that range. */
static inline float daz(float x) { return fabsf(x) < FLT_MIN ? copysignf(0.0f, x) : x; }
#define ftz daz /* the same test: below FLT_MIN in magnitude -> signed zero (NaN passes) */

void lt_bf16_tdpbf16ps_model(float *restrict c, const uint16_t *restrict a, const uint16_t *restrict b) {
    float bf[16][32]; /* B's tile as f32, inputs flushed */
    for (int k = 0; k < 16; k++)
        for (int j = 0; j < 32; j++) bf[k][j] = daz(lt_bf16_to_f32(b[k * 32 + j]));
    for (int m = 0; m < 16; m++) {
        float te[16], to[16];
        for (int n = 0; n < 16; n++) te[n] = to[n] = 0.0f;
        for (int k = 0; k < 16; k++) {
            float a0 = daz(lt_bf16_to_f32(a[m * 32 + 2 * k])), a1 = daz(lt_bf16_to_f32(a[m * 32 + 2 * k + 1]));
            for (int n = 0; n < 16; n++) {
                te[n] = ftz(fmaf(a0, bf[k][2 * n], te[n]));
                to[n] = ftz(fmaf(a1, bf[k][2 * n + 1], to[n]));
            }
        }
        for (int n = 0; n < 16; n++) {
            float s = ftz(te[n] + to[n]);
            c[m * 16 + n] = ftz(daz(c[m * 16 + n]) + s);
        }
    }
}

/* ---- the model of VDPBF16PS, as the tile op of bf16_avx512.c uses it ----
 * Intel SDM, VDPBF16PS, per f32 lane i (DAZ, FTZ, nearest even, each line
 * one FMA):
 *   srcdest[i] += fp32(src1.bf16[2i+1]) * fp32(src2.bf16[2i+1])
 *   srcdest[i] += fp32(src1.bf16[2i+0]) * fp32(src2.bf16[2i+0])
 * The tile op: per C row m and K pair k, lane n takes A's pair (m, k)
 * (broadcast) and B's pair (k, n). */
void lt_bf16_vdpbf16ps_model(float *restrict c, const uint16_t *restrict a, const uint16_t *restrict b) {
    float bf[16][32];
    for (int k = 0; k < 16; k++)
        for (int j = 0; j < 32; j++) bf[k][j] = daz(lt_bf16_to_f32(b[k * 32 + j]));
    for (int m = 0; m < 16; m++) {
        float acc[16];
        for (int n = 0; n < 16; n++) acc[n] = c[m * 16 + n];
        for (int k = 0; k < 16; k++) {
            float a0 = daz(lt_bf16_to_f32(a[m * 32 + 2 * k])), a1 = daz(lt_bf16_to_f32(a[m * 32 + 2 * k + 1]));
            for (int n = 0; n < 16; n++) {
                acc[n] = ftz(fmaf(a1, bf[k][2 * n + 1], daz(acc[n])));
                acc[n] = ftz(fmaf(a0, bf[k][2 * n], acc[n]));
            }
        }
        for (int n = 0; n < 16; n++) c[m * 16 + n] = acc[n];
    }
}

/* the models' tile API on tile registers in memory (bf16_gemm.h) */
#define UK(name) emu_##name
#define UK_ATTR
#define UK_TILES lt_bf16_tiles
#define TL_BEGIN(T) memset((T), 0, sizeof *(T))
#define TL_END(T) ((void)(T))
#define TL_ZERO(T, i) memset((T)->t[i].b, 0, 1024)
#define TL_LOADD(T, i, p, s) lt_bf16_tile_loadd((T), (i), (p), (s))
#define TL_STORED(T, i, p, s) lt_bf16_tile_stored((T), (i), (p), (s))
#define TL_DP(T, c, a, b) lt_bf16_tdpbf16ps_model((T)->t[c].f, (T)->t[a].h, (T)->t[b].h)
#include "ops/cpu/bf16_ukernel.inc"
#undef UK
#undef TL_DP
#define UK(name) emu512_##name
#define TL_DP(T, c, a, b) lt_bf16_vdpbf16ps_model((T)->t[c].f, (T)->t[a].h, (T)->t[b].h)
#include "ops/cpu/bf16_ukernel.inc"

/* ---- which implementation: LATHE_CPU_BF16 and CPUID ---- */
#if defined(__x86_64__)
static uint64_t xcr0(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0; /* OSXSAVE */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static int detect_amx(void) {
    unsigned r[4] = {0, 0, 0, 0};
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, r[0], r[1], r[2], r[3]);
    if (!(r[3] & (1u << 22)) || !(r[3] & (1u << 24))) return 0; /* AMX-BF16, AMX-TILE */
    if ((xcr0() & 0x60000) != 0x60000) return 0;                /* XTILECFG, XTILEDATA enabled by the OS */
    /* Linux hands out the 8 KiB tile data state only on request, per process */
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0;
}
#else
static int detect_amx(void) { return 0; }
#endif

#if defined(__x86_64__)
static int detect_avx512bf16(void) {
    unsigned r[4] = {0, 0, 0, 0};
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    if ((xcr0() & 0xe6) != 0xe6) return 0; /* XMM, YMM, opmask, ZMM_Hi256, Hi16_ZMM */
    __cpuid_count(7, 0, r[0], r[1], r[2], r[3]);
    if (!(r[1] & (1u << 16))) return 0; /* AVX512F */
    __cpuid_count(7, 1, r[0], r[1], r[2], r[3]);
    return !!(r[0] & (1u << 5)); /* AVX512_BF16 */
}
#else
static int detect_avx512bf16(void) { return 0; }
#endif

/* *slot once detect() has answered (-1: not asked yet); racing threads may
   both ask, and get the same answer */
static int detected(int *slot, int (*detect)(void)) {
    int v;
#pragma omp atomic read
    v = *slot;
    if (v < 0) {
        v = detect();
#pragma omp atomic write
        *slot = v;
    }
    return v;
}

static int avx512bf16_state = -1, amx_state = -1;
static lt_bf16_impl avail = (lt_bf16_impl)-1;

int lt_bf16_cpu_has_avx512bf16(void) { return detected(&avx512bf16_state, detect_avx512bf16); }
int lt_bf16_cpu_has_amx(void) { return detected(&amx_state, detect_amx); }

lt_bf16_impl lt_bf16_available(void) {
    lt_bf16_impl v;
#pragma omp atomic read
    v = avail;
    if ((int)v >= 0) return v;
    const char *e = getenv("LATHE_CPU_BF16");
    if (e && !strcmp(e, "off"))
        v = LT_BF16_NONE;
    else if (e && !strcmp(e, "emulate"))
        v = LT_BF16_EMULATED;
    else if (e && !strcmp(e, "emulate-avx512"))
        v = LT_BF16_EMULATED_AVX512;
    else if (e && !strcmp(e, "amx") && lt_bf16_cpu_has_amx())
        v = LT_BF16_AMX;
    else if (e && !strcmp(e, "avx512") && lt_bf16_cpu_has_avx512bf16())
        v = LT_BF16_AVX512; /* on a CPU with AMX too: the VDPBF16PS path */
    else {
        if (e && (!strcmp(e, "amx") || !strcmp(e, "avx512")))
            fprintf(stderr, "lathe: LATHE_CPU_BF16=%s: this CPU has no usable %s; using auto\n", e,
                    !strcmp(e, "amx") ? "amx_bf16" : "avx512_bf16");
        else if (e && *e && strcmp(e, "auto"))
            fprintf(
                stderr,
                "lathe: LATHE_CPU_BF16=%.40s is not auto, amx, avx512, emulate, emulate-avx512 or off; using auto\n",
                e);
        v = lt_bf16_cpu_has_amx() ? LT_BF16_AMX : lt_bf16_cpu_has_avx512bf16() ? LT_BF16_AVX512 : LT_BF16_NONE;
    }
#pragma omp atomic write
    avail = v;
    return v;
}

const char *lt_bf16_impl_name(lt_bf16_impl impl) {
    switch (impl) {
    case LT_BF16_AMX: return "amx-bf16";
    case LT_BF16_EMULATED: return "bf16 emulated kernels";
    case LT_BF16_AVX512: return "avx512-bf16";
    case LT_BF16_EMULATED_AVX512: return "avx512-bf16 emulated kernels";
    default: return "f32";
    }
}

int lt_bf16_tdpbf16ps_amx(float *c, const uint16_t *a, const uint16_t *b) {
    if (!lt_bf16_cpu_has_amx()) return -1;
    lt_bf16_blocks blk = {0};
    /* the same operands as one whole block's first tile: a 16x16 C in a
       32x32 block whose other tiles are zero */
    uint16_t *ap = calloc(2 * 512 + 2 * 512, sizeof *ap);
    float *cc = calloc(32 * 32, sizeof *cc);
    if (!ap || !cc) {
        free(ap);
        free(cc);
        return -1;
    }
    memcpy(ap, a, 512 * sizeof *ap);
    memcpy(ap + 1024, b, 512 * sizeof *ap);
    for (int r = 0; r < 16; r++) memcpy(cc + r * 32, c + r * 16, 16 * sizeof *c);
    blk.apack = ap;
    blk.bpack = ap + 1024;
    blk.mblocks = blk.nblocks = blk.kb = 1;
    lt_bf16_blocks_packed(&blk);
    blk.C = cc;
    blk.ldc = blk.M = blk.N = 32;
    blk.accumulate = 1;
    int rc = lt_bf16_amx_run(&blk);
    if (!rc)
        for (int r = 0; r < 16; r++) memcpy(c + r * 16, cc + r * 32, 16 * sizeof *c);
    free(ap);
    free(cc);
    return rc;
}

/* ---- packing ----
 * A (M x K) into panels of 16 rows: per panel and K step, 16 rows of 32 bf16.
 * B (K x N) into panels of 16 columns in VNNI pairs: per panel and K step, 16
 * rows (k pairs) of 16 columns x (B[2p][j], B[2p+1][j]). Both are padded with
 * zeros: rows and columns to whole 32x32 blocks of C, K to whole steps.
 * With scan (AVX2 only), what the packed values hold, for the AVX2 models
 * (bf16_model_avx2.c); else 255. On the threads from PACK_PAR_TILES tiles
 * (fewer are done before the threads would have started). */
#define PACK_PAR_TILES 64

/* one panel's scan into the least exponent and the flags so far */
static void scan_merge(unsigned st, unsigned *emin, unsigned *any) {
    if ((st & 0xffu) < *emin) *emin = st & 0xffu;
    *any |= st & ~0xffu;
}
static unsigned pack_a(uint16_t *restrict ap, const float *restrict A, int lda, int trans, int M, int K, int panels,
                       int kb, int avx2, int scan) {
    unsigned emin = 255, any = 0;
    int par = panels > 1 && (size_t)panels * kb >= PACK_PAR_TILES && !omp_in_parallel();
#pragma omp parallel for schedule(static) reduction(min : emin) reduction(| : any) if (par)
    for (int p = 0; p < panels; p++)
        if (avx2) {
            scan_merge(lt_bf16_pack_a_avx2(ap, A, lda, trans, M, K, p, kb, scan), &emin, &any);
        } else
            for (int s = 0; s < kb; s++) {
                uint16_t *t = ap + ((size_t)p * kb + s) * 512;
                for (int r = 0; r < 16; r++) {
                    int i = p * 16 + r;
                    for (int kk = 0; kk < 32; kk++) {
                        int k = s * 32 + kk;
                        float v = i < M && k < K ? (trans ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) : 0.0f;
                        t[r * 32 + kk] = lt_bf16_from_f32(v);
                    }
                }
            }
    return emin | any;
}

static unsigned pack_b(uint16_t *restrict bp, const float *restrict B, int ldb, int trans, int K, int N, int panels,
                       int kb, int avx2, int scan) {
    unsigned emin = 255, any = 0;
    int par = panels > 1 && (size_t)panels * kb >= PACK_PAR_TILES && !omp_in_parallel();
#pragma omp parallel for schedule(static) reduction(min : emin) reduction(| : any) if (par)
    for (int p = 0; p < panels; p++)
        if (avx2) {
            scan_merge(lt_bf16_pack_b_avx2(bp, B, ldb, trans, K, N, p, kb, scan), &emin, &any);
        } else
            for (int s = 0; s < kb; s++) {
                uint16_t *t = bp + ((size_t)p * kb + s) * 512;
                for (int q = 0; q < 16; q++)
                    for (int c = 0; c < 16; c++) {
                        int j = p * 16 + c;
                        for (int e = 0; e < 2; e++) {
                            int k = s * 32 + 2 * q + e;
                            float v = j < N && k < K ? (trans ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]) : 0.0f;
                            t[q * 32 + 2 * c + e] = lt_bf16_from_f32(v);
                        }
                    }
            }
    return emin | any;
}

/* The packed operands live in one buffer per calling thread, kept for the
 * thread's lifetime and grown only when a GEMM needs more than any before it
 * (the first steps of a run): no allocation per call. Freed when the thread
 * ends. */
typedef struct pack_buf {
    size_t cap;
    uint16_t *p;
} pack_buf;
static pthread_key_t pack_key;
static pthread_once_t pack_once = PTHREAD_ONCE_INIT;
static int pack_key_ok;

static void pack_free(void *v) {
    pack_buf *b = v;
    free(b->p);
    free(b);
}
static void pack_init(void) { pack_key_ok = pthread_key_create(&pack_key, pack_free) == 0; }

/* n values of this thread's buffer, or NULL (no memory) */
static uint16_t *pack_get(size_t n) {
    pthread_once(&pack_once, pack_init);
    if (!pack_key_ok) return NULL;
    pack_buf *b = pthread_getspecific(pack_key);
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b) return NULL;
        if (pthread_setspecific(pack_key, b)) {
            free(b);
            return NULL;
        }
    }
    if (b->cap < n) {
        uint16_t *p = malloc(n * sizeof *p);
        if (!p) return NULL;
        free(b->p);
        b->p = p;
        b->cap = n;
    }
    return b->p;
}

/* the packing and the emulated GEMMs' tile ops on AVX2 where the CPU has it
   and FMA (asked once), unless a test turned them off */
static int avx2_state = -1, emulate_fast = 1;

void lt_bf16_emulate_fast(int on) { __atomic_store_n(&emulate_fast, on, __ATOMIC_RELAXED); }

static int use_avx2(void) {
    return __atomic_load_n(&emulate_fast, __ATOMIC_RELAXED) && detected(&avx2_state, lt_bf16_model_avx2_cpu);
}

static int tiles_off;
void lt_bf16_tiles_off(int on) { __atomic_store_n(&tiles_off, on, __ATOMIC_RELAXED); }

static int impl_ok(lt_bf16_impl impl) {
    return impl != LT_BF16_NONE && (impl != LT_BF16_AMX || lt_bf16_cpu_has_amx()) &&
           (impl != LT_BF16_AVX512 || lt_bf16_cpu_has_avx512bf16());
}

/* the scans the emulated GEMMs want (bf16_model_avx2.c) */
static int want_scan(lt_bf16_impl impl) {
    return !__atomic_load_n(&tiles_off, __ATOMIC_RELAXED) &&
           (impl == LT_BF16_EMULATED || impl == LT_BF16_EMULATED_AVX512);
}

/* C [M, N] (rows ldc apart), accumulated into or overwritten */
static void set_c(lt_bf16_blocks *b, float *C, int ldc, int M, int N, int accumulate) {
    b->C = C;
    b->ldc = ldc;
    b->M = M;
    b->N = N;
    b->accumulate = accumulate;
}

/* the blocks' products with impl, sa and sb what A and B hold (the scans) */
static int run_blocks(lt_bf16_impl impl, const lt_bf16_blocks *blk, int avx2, unsigned sa, unsigned sb) {
    if (__atomic_load_n(&tiles_off, __ATOMIC_RELAXED)) { /* everything but the products */
        for (int i = 0; !blk->accumulate && i < blk->M; i++)
            memset(blk->C + (size_t)i * blk->ldc, 0, (size_t)blk->N * sizeof *blk->C);
        return 0;
    }
    if (impl == LT_BF16_AMX) return lt_bf16_amx_run(blk);
    if (impl == LT_BF16_AVX512) return lt_bf16_avx512_run(blk);
    if (impl == LT_BF16_EMULATED_AVX512) {
        if (!avx2 || lt_bf16_emulated_avx2_run(blk, 1, sa, sb)) emu512_run(blk);
    } else if (!avx2 || lt_bf16_emulated_avx2_run(blk, 0, sa, sb))
        emu_run(blk);
    return 0;
}

int lt_bf16_gemm(lt_bf16_impl impl, int transa, int transb, int M, int N, int K, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc) {
    if (!impl_ok(impl)) return -1;
    if (M <= 0 || N <= 0) return 0;
    lt_bf16_blocks blk = {0};
    blk.mblocks = (M + 31) / 32;
    blk.nblocks = (N + 31) / 32;
    blk.kb = K > 0 ? (K + 31) / 32 : 0;
    lt_bf16_blocks_packed(&blk);
    size_t na = (size_t)2 * blk.mblocks * blk.kb * 512, nb = (size_t)2 * blk.nblocks * blk.kb * 512;
    uint16_t *ap = pack_get(na + nb + 1);
    if (!ap) return -1;
    int avx2 = use_avx2(), scan = want_scan(impl);
    unsigned sa = pack_a(ap, A, lda, transa, M, K, 2 * blk.mblocks, blk.kb, avx2, scan);
    unsigned sb = pack_b(ap + na, B, ldb, transb, K, N, 2 * blk.nblocks, blk.kb, avx2, scan);
    blk.apack = ap;
    blk.bpack = ap + na;
    set_c(&blk, C, ldc, M, N, beta != 0.0f);
    return run_blocks(impl, &blk, avx2, sa, sb);
}

/* ---- GEMMs on a convolution's column matrix (lt_bf16_gemm_im2col) ----
 * The column matrix is written in bf16 straight from the image (rounded to
 * bf16 once per image value, not once per tap), in an order the tiles read in
 * place, with zeros to whole blocks:
 *   B = col (forward): pair rows, colp [Kp/2][Np][2], colp[q][n][e] =
 *     col[2q+e][n]: a B tile's row (pair row q, 16 pixels) is 64 contiguous
 *     bytes, rows 4*Np bytes apart; nothing more is packed.
 *   B = col^T (weight gradient): the GEMM is run transposed,
 *     C^T [taps, M] (+)= col [taps, pixels] x A^T, so that col is its A:
 *     plain rows col [Kp][Np], an A tile's row (a tap, 32 pixels) 64
 *     contiguous bytes, rows 2*Np bytes apart; A^T is packed as B (the
 *     smaller operand: the output channels), and C goes through a transposed
 *     copy (loaded first when accumulating, so every sum is the one the
 *     untransposed GEMM makes: the tile op's products commute and are taken
 *     in the same order).
 * Kp and Np are the taps and the pixels rounded up to 32. Rounding commutes
 * with copying, so the results are bitwise lt_bf16_gemm's on the column
 * matrix written out in f32. */

/* the GEMM's samples of the image in bf16 */
static void image_bf16(uint16_t *img, const lt_bf16_im2col *g, int avx2) {
    size_t n = (size_t)g->nb * g->C * g->H * g->W;
    const float *src = g->inp + (size_t)g->b0 * g->C * g->H * g->W;
    if (avx2)
        lt_bf16_convert_avx2(img, src, n);
    else
        for (size_t j = 0; j < n; j++) img[j] = lt_bf16_from_f32(src[j]);
}

/* dst[0..n) = src[0..n) for the short runs of an output row: fixed-size
   blocks (a vector move each) and an overlapping last block, where a memcpy
   call per run would cost more than the copy */
static inline void copy_run(uint16_t *restrict dst, const uint16_t *restrict src, int n) {
    if (n >= 16) {
        int j = 0;
        for (; j + 16 <= n; j += 16) memcpy(dst + j, src + j, 32);
        if (j < n) memcpy(dst + n - 16, src + n - 16, 32);
    } else if (n >= 8) {
        memcpy(dst, src, 16);
        memcpy(dst + n - 8, src + n - 8, 16);
    } else
        for (int j = 0; j < n; j++) dst[j] = src[j];
}

/* row k of the column matrix (np values: the pixels, then zeros) */
static void col_row(uint16_t *restrict dst, const lt_bf16_im2col *g, const uint16_t *restrict img, int k, size_t np) {
    size_t P = (size_t)g->OH * g->OW, plane = (size_t)g->H * g->W, N = (size_t)g->nb * P;
    int taps = g->C * g->KH * g->KW;
    if (k >= taps) {
        memset(dst, 0, np * sizeof *dst);
        return;
    }
    int khw = g->KH * g->KW, c = k / khw, kh = (k - c * khw) / g->KW, kw = k % g->KW;
    int s = g->stride, OW = g->OW;
    int lo, hi;
    lt_conv_valid_cols(kw, g->W, OW, s, g->pad, &lo, &hi);
    for (int bb = 0; bb < g->nb; bb++) {
        const uint16_t *ch = img + ((size_t)bb * g->C + c) * plane;
        uint16_t *d = dst + (size_t)bb * P;
        for (int oh = 0; oh < g->OH; oh++, d += OW) {
            int ih = oh * s - g->pad + kh;
            if (ih < 0 || ih >= g->H) {
                memset(d, 0, (size_t)OW * sizeof *d);
                continue;
            }
            for (int ow = 0; ow < lo; ow++) d[ow] = 0;
            for (int ow = hi; ow < OW; ow++) d[ow] = 0;
            const uint16_t *src = ch + (size_t)ih * g->W + (ptrdiff_t)lo * s - g->pad + kw;
            if (s == 1)
                copy_run(d + lo, src, hi - lo);
            else
                for (int ow = lo; ow < hi; ow++) d[ow] = src[(size_t)(ow - lo) * s];
        }
    }
    memset(dst + N, 0, (np - N) * sizeof *dst);
}

/* lt_bf16_interleave_rows_avx2, or the same in plain C */
static void interleave_rows(uint16_t *restrict out, const uint16_t *s0, const uint16_t *s1, int nb, int rows, int n,
                            size_t sample, size_t row, int avx2) {
    if (avx2) {
        lt_bf16_interleave_rows_avx2(out, s0, s1, nb, rows, n, sample, row);
        return;
    }
    for (int b = 0; b < nb; b++)
        for (int r = 0; r < rows; r++, out += 2 * (size_t)n) {
            const uint16_t *x0 = s0 + b * sample + r * row, *x1 = s1 + b * sample + r * row;
            for (int j = 0; j < n; j++) out[2 * j] = x0[j], out[2 * j + 1] = x1[j];
        }
}

/* pair row q = k/2 of the column matrix (rows k and k+1 interleaved, np
   pairs) straight from the image where every tap reads inside it (stride 1,
   no padding) and both rows are taps: 1; else 0 (nothing written) */
static int col_pair(uint16_t *restrict out, const lt_bf16_im2col *g, const uint16_t *restrict img, int k, size_t np,
                    int avx2) {
    int khw = g->KH * g->KW;
    if (g->stride != 1 || g->pad != 0 || k + 1 >= g->C * khw) return 0;
    size_t P = (size_t)g->OH * g->OW, plane = (size_t)g->H * g->W, N = (size_t)g->nb * P;
    const uint16_t *base[2];
    for (int e = 0; e < 2; e++) {
        int c = (k + e) / khw, kh = (k + e - c * khw) / g->KW, kw = (k + e) % g->KW;
        base[e] = img + (size_t)c * plane + (size_t)kh * g->W + kw;
    }
    interleave_rows(out, base[0], base[1], g->nb, g->OH, g->OW, (size_t)g->C * plane, (size_t)g->W, avx2);
    memset(out + 2 * N, 0, 2 * (np - N) * sizeof *out);
    return 1;
}

static size_t round32(size_t n) { return (n + 31) / 32 * 32; }

int lt_bf16_gemm_im2col(lt_bf16_impl impl, int transa, int transb, int M, int N, int K, const float *A, int lda,
                        const lt_bf16_im2col *col, float beta, float *C, int ldc) {
    int taps = col->C * col->KH * col->KW, pixels = col->nb * col->OH * col->OW;
    if (!impl_ok(impl) || (transb ? K != pixels || N != taps : K != taps || N != pixels) || col->stride < 1) return -1;
    if (M <= 0 || N <= 0) return 0;
    size_t kp = round32((size_t)taps), np = round32((size_t)pixels);
    size_t ni = round32((size_t)col->nb * col->C * col->H * col->W), ncol = kp * np;
    int avx2 = use_avx2(), scan = want_scan(impl);
    lt_bf16_blocks blk = {0};
    if (!transb) {
        /* C [M, pixels] (+)= A [M, taps] x col */
        blk.mblocks = (M + 31) / 32;
        blk.nblocks = (int)(np / 32);
        blk.kb = (int)(kp / 32);
        lt_bf16_blocks_packed(&blk);
        size_t na = (size_t)2 * blk.mblocks * blk.kb * 512;
        uint16_t *ap = pack_get(na + ncol + ni + 2 * np + 1);
        if (!ap) return -1;
        uint16_t *colp = ap + na, *img = colp + ncol, *r0 = img + ni, *r1 = r0 + np;
        unsigned sa = pack_a(ap, A, lda, transa, M, K, 2 * blk.mblocks, blk.kb, avx2, scan);
        image_bf16(img, col, avx2);
        for (size_t q = 0; q < kp / 2; q++) {
            uint16_t *out = colp + q * 2 * np;
            if (col_pair(out, col, img, (int)(2 * q), np, avx2)) continue;
            col_row(r0, col, img, (int)(2 * q), np);
            col_row(r1, col, img, (int)(2 * q + 1), np);
            interleave_rows(out, r0, r1, 1, 1, (int)np, 0, 0, avx2);
        }
        unsigned sb = avx2 && scan ? lt_bf16_scan_avx2(colp, ncol) : 255;
        blk.apack = ap;
        blk.bpack = colp;
        blk.bpanel = 32;         /* 16 pixels' pairs */
        blk.bstep = 16 * 2 * np; /* 16 pair rows */
        blk.brow = 2 * np * 2;   /* bytes */
        set_c(&blk, C, ldc, M, N, beta != 0.0f);
        return run_blocks(impl, &blk, avx2, sa, sb);
    }
    /* C^T [taps, M] (+)= col [taps, pixels] x A^T */
    blk.mblocks = (int)(kp / 32);
    blk.nblocks = (M + 31) / 32;
    blk.kb = (int)(np / 32);
    lt_bf16_blocks_packed(&blk);
    size_t nb = (size_t)2 * blk.nblocks * blk.kb * 512, nct = (size_t)taps * M;
    uint16_t *bp = pack_get(nb + ncol + ni + 2 * nct + 2);
    if (!bp) return -1;
    uint16_t *colr = bp + nb, *img = colr + ncol;
    float *ct = (float *)(void *)(img + ni + ((img + ni - bp) & 1)); /* 4-byte aligned: offsets even */
    unsigned sb = pack_b(bp, A, lda, !transa, pixels, M, 2 * blk.nblocks, blk.kb, avx2, scan);
    image_bf16(img, col, avx2);
    for (size_t k = 0; k < kp; k++) col_row(colr + k * np, col, img, (int)k, np);
    unsigned sa = avx2 && scan ? lt_bf16_scan_avx2(colr, ncol) : 255;
    int acc = beta != 0.0f;
    if (acc)
        for (int i = 0; i < M; i++)
            for (int t = 0; t < taps; t++) ct[(size_t)t * M + i] = C[(size_t)i * ldc + t];
    blk.apack = colr;
    blk.apanel = 16 * np; /* 16 taps */
    blk.astep = 32;       /* 32 pixels */
    blk.arow = 2 * np;    /* bytes */
    blk.bpack = bp;
    set_c(&blk, ct, M, taps, M, acc);
    int rc = run_blocks(impl, &blk, avx2, sa, sb);
    if (!rc)
        for (int i = 0; i < M; i++)
            for (int t = 0; t < taps; t++) C[(size_t)i * ldc + t] = ct[(size_t)t * M + i];
    return rc;
}

/* ---- the CPU backend's GEMM ---- */
static lt_bf16_impl gemm_bf16 = LT_BF16_NONE;

void lt_cpu_gemm_set_bf16(lt_bf16_impl impl) { gemm_bf16 = impl; }
lt_bf16_impl lt_cpu_gemm_bf16(void) { return gemm_bf16; }

void lt_cpu_sgemm(int transa, int transb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                  float beta, float *C, int ldc) {
    if (gemm_bf16 != LT_BF16_NONE && !lt_bf16_gemm(gemm_bf16, transa, transb, M, N, K, A, lda, B, ldb, beta, C, ldc))
        return;
    /* f32 (and the bf16 GEMM's fallback when its buffers cannot be had) */
    cblas_sgemm(CblasRowMajor, transa ? CblasTrans : CblasNoTrans, transb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A,
                lda, B, ldb, beta, C, ldc);
}
