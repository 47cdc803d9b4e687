/* peak.c: the measured arithmetic peak of this CPU (see peak.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "peak.h"

#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Results of every chunk land here, so no chain is dead code. */
static volatile float sink;
/* Read at run time, so the compiler cannot fold the chains' start values. */
static volatile float seed = 1e-3f;

int peak_online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

static char model[128];

const char *peak_cpu_model(void) {
    if (model[0]) return model;
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        char *c = strchr(line, ':');
        if (strncmp(line, "model name", 10) || !c) continue;
        c++;
        while (*c == ' ' || *c == '\t') c++;
        c[strcspn(c, "\n")] = 0;
        snprintf(model, sizeof model, "%s", c);
        break;
    }
    if (f) fclose(f);
#if defined(__x86_64__)
    unsigned r[12] = {0};
    if (!model[0] && __get_cpuid_max(0x80000000u, NULL) >= 0x80000004u) {
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002u + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
        char brand[49] = {0};
        memcpy(brand, r, 48);
        char *b = brand;
        while (*b == ' ') b++;
        snprintf(model, sizeof model, "%s", b);
    }
#endif
    if (!model[0]) snprintf(model, sizeof model, "unknown CPU");
    return model;
}

static char ident[96];

const char *peak_cpu_id(void) {
    if (ident[0]) return ident;
#if defined(__x86_64__)
    unsigned a, b, c, d;
    char vendor[13] = {0};
    if (__get_cpuid(0, &a, &b, &c, &d)) {
        memcpy(vendor, &b, 4);
        memcpy(vendor + 4, &d, 4);
        memcpy(vendor + 8, &c, 4);
        __get_cpuid(1, &a, &b, &c, &d);
        unsigned fam = (a >> 8) & 0xf, mod = (a >> 4) & 0xf;
        if (fam == 0xf) fam += (a >> 20) & 0xff;
        if (fam == 0x6 || fam >= 0xf) mod |= ((a >> 16) & 0xf) << 4;
        snprintf(ident, sizeof ident, "%s family %u model %u", vendor, fam, mod);
    }
#endif
    if (!ident[0]) snprintf(ident, sizeof ident, "unknown");
    return ident;
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Runs chunk() on `threads` threads for `seconds` (after a short warm-up that
 * brings the units to their working clock), `repeats` times; the best total
 * rate in GFLOP/s. chunk() does a fixed amount of work and returns its flops.
 * Each thread's rate is its flops over the CPU time it was given
 * (CLOCK_THREAD_CPUTIME_ID), and the total is their sum: on a shared machine
 * another process's time slices then lower no thread's figure, which a
 * wall-clock rate would count against the unit. */
static double run(int threads, double seconds, int repeats, double (*chunk)(void)) {
    if (threads < 1) threads = 1;
    if (repeats < 1) repeats = 1;
    double best = 0;
    for (int r = 0; r < repeats; r++) {
        double rate = 0, t0 = 0;
#pragma omp parallel num_threads(threads) reduction(+ : rate)
        {
            double tw = now();
            do chunk();
            while (now() - tw < 0.05);
#pragma omp barrier
#pragma omp single
            t0 = now();
            double f = 0, c0 = cpu_now();
            do f += chunk();
            while (now() - t0 < seconds);
            rate = f / (cpu_now() - c0);
        }
        double g = rate * 1e-9;
        if (g > best) best = g;
    }
    return best;
}

#if defined(__x86_64__)

static uint64_t xcr0(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0; /* OSXSAVE */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

/* CPUID leaf 7 sub-leaf `sub`; zeros where the CPU has no such leaf. */
static void leaf7(unsigned sub, unsigned r[4]) {
    r[0] = r[1] = r[2] = r[3] = 0;
    if (__get_cpuid_max(0, NULL) >= 7) __cpuid_count(7, sub, r[0], r[1], r[2], r[3]);
}

static int has_avx2_fma(void) {
    unsigned a, b, c, d, r[4];
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & (1u << 12)) || !(c & (1u << 28))) return 0; /* FMA, AVX */
    if ((xcr0() & 0x6) != 0x6) return 0;                  /* XMM and YMM state */
    leaf7(0, r);
    return !!(r[1] & (1u << 5)); /* AVX2 */
}

static int has_avx512f(void) {
    unsigned r[4];
    if ((xcr0() & 0xe6) != 0xe6) return 0; /* XMM, YMM, opmask, ZMM_Hi256, Hi16_ZMM */
    leaf7(0, r);
    return !!(r[1] & (1u << 16));
}

int peak_has_avx512bf16(void) {
    unsigned r[4];
    if (!has_avx512f()) return 0;
    leaf7(1, r);
    return !!(r[0] & (1u << 5));
}

int peak_has_amx_bf16(void) {
    unsigned r[4];
    if ((xcr0() & 0x60000) != 0x60000) return 0; /* XTILECFG, XTILEDATA */
    leaf7(0, r);
    return (r[3] & (1u << 22)) && (r[3] & (1u << 24)); /* AMX-BF16, AMX-TILE */
}

const char *peak_fp32_isa(void) { return has_avx512f() ? "avx512f" : has_avx2_fma() ? "avx2-fma" : NULL; }

#define ITERS 16384L

/* 16 chains of _mm512_fmadd_ps: FMA latency (4) x 2 ports needs 8 at least. */
__attribute__((target("avx512f"))) static double chunk_fp32_512(void) {
    __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(seed);
#define C512(i) __m512 c##i = _mm512_set1_ps(seed * (i + 1));
#define F512(i) c##i = _mm512_fmadd_ps(c##i, a, b);
#define EACH16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
    EACH16(C512)
    for (long i = 0; i < ITERS; i++) {
        EACH16(F512)
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)),
                                       _mm512_add_ps(_mm512_add_ps(c12, c13), _mm512_add_ps(c14, c15))));
    sink = _mm512_reduce_add_ps(s);
    return 2.0 * 16 * 16 * ITERS;
}

/* 12 chains of _mm256_fmadd_ps (16 ymm registers: 12 chains + 2 operands). */
__attribute__((target("avx2,fma"))) static double chunk_fp32_256(void) {
    __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(seed);
#define C256(i) __m256 c##i = _mm256_set1_ps(seed * (i + 1));
#define F256(i) c##i = _mm256_fmadd_ps(c##i, a, b);
#define EACH12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
    EACH12(C256)
    for (long i = 0; i < ITERS; i++) {
        EACH12(F256)
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
    float v[8];
    _mm256_storeu_ps(v, s);
    sink = v[0] + v[7];
    return 2.0 * 8 * 12 * ITERS;
}

/* 16 chains of _mm512_dpbf16_ps: each adds 32 bf16 products into 16 fp32. */
__attribute__((target("avx512f,avx512bf16"))) static double chunk_bf16_512(void) {
    __m512 x = _mm512_set1_ps(seed);
    __m512bh a = _mm512_cvtne2ps_pbh(x, x), b = _mm512_cvtne2ps_pbh(x, x);
#define FBF(i) c##i = _mm512_dpbf16_ps(c##i, a, b);
    EACH16(C512)
    for (long i = 0; i < ITERS; i++) {
        EACH16(FBF)
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)),
                                       _mm512_add_ps(_mm512_add_ps(c12, c13), _mm512_add_ps(c14, c15))));
    sink = _mm512_reduce_add_ps(s);
    return 2.0 * 32 * 16 * ITERS;
}

/* The AMX tile configuration (palette 1): 64 bytes, loaded by LDTILECFG. */
typedef struct tilecfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg;

#define AMX_ITERS 2048L

/* Six independent accumulators C0..C5 (16x16 fp32 each) += A (16x32 bf16,
 * tmm6) x B (32x16 bf16 in VNNI pairs, tmm7): 2*16*16*32 flops per TDPBF16PS.
 * The tile state is per thread, so each chunk configures, runs and releases. */
__attribute__((target("amx-tile,amx-bf16"))) static double chunk_amx(void) {
    _Alignas(64) tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    _Alignas(64) uint16_t ab[16 * 32];
    _Alignas(64) float out[16 * 16];
    for (int i = 0; i < 16 * 32; i++) ab[i] = 0x3c00; /* bf16 2^-7 */
    /* the tile macros are asm without a memory clobber: make the stores land */
    __asm__ volatile("" ::: "memory");
    _tile_loadconfig(&cfg);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_zero(4);
    _tile_zero(5);
    _tile_loadd(6, ab, 64);
    _tile_loadd(7, ab, 64);
    for (long i = 0; i < AMX_ITERS; i++) {
        _tile_dpbf16ps(0, 6, 7);
        _tile_dpbf16ps(1, 6, 7);
        _tile_dpbf16ps(2, 6, 7);
        _tile_dpbf16ps(3, 6, 7);
        _tile_dpbf16ps(4, 6, 7);
        _tile_dpbf16ps(5, 6, 7);
    }
    float s = 0;
    _tile_stored(0, out, 64);
    __asm__ volatile("" ::: "memory");
    s += out[0];
    _tile_stored(5, out, 64);
    __asm__ volatile("" ::: "memory");
    s += out[255];
    _tile_release();
    sink = s;
    return 2.0 * 16 * 16 * 32 * 6 * AMX_ITERS;
}

double peak_fp32_gflops(int threads, double seconds, int repeats) {
    if (has_avx512f()) return run(threads, seconds, repeats, chunk_fp32_512);
    if (has_avx2_fma()) return run(threads, seconds, repeats, chunk_fp32_256);
    return -1;
}

double peak_avx512bf16_gflops(int threads, double seconds, int repeats) {
    return peak_has_avx512bf16() ? run(threads, seconds, repeats, chunk_bf16_512) : -1;
}

double peak_amx_bf16_gflops(int threads, double seconds, int repeats) {
    if (!peak_has_amx_bf16()) return -1;
    /* Linux hands out the (8 KiB) tile data state only on request. */
    if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */)) return -2;
    return run(threads, seconds, repeats, chunk_amx);
}

#else /* not x86-64: no probes */

const char *peak_fp32_isa(void) { return NULL; }
int peak_has_avx512bf16(void) { return 0; }
int peak_has_amx_bf16(void) { return 0; }
double peak_fp32_gflops(int threads, double seconds, int repeats) { return -1; }
double peak_avx512bf16_gflops(int threads, double seconds, int repeats) { return -1; }
double peak_amx_bf16_gflops(int threads, double seconds, int repeats) { return -1; }

#endif
