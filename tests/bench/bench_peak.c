/* bench_peak.c: the arithmetic peak of the CPU it runs on, measured.
 *
 * For each unit the CPU has, many independent multiply-add chains (more than
 * latency x ports, so the unit never waits) run for --seconds on 1 thread and
 * on N threads (--threads, default the online CPUs), best of --repeats:
 *   fp32 fma      _mm512_fmadd_ps (AVX-512) or _mm256_fmadd_ps (AVX2 + FMA),
 *                 2 flops per lane
 *   avx512 bf16   _mm512_dpbf16_ps: 32 bf16 products into 16 fp32, 64 flops
 *   amx bf16      _tile_dpbf16ps on 16x64-byte tiles, 2*16*16*32 flops
 * Each thread's rate is its flops over its own CPU time, so time slices taken
 * by other processes on a shared machine do not lower it (see peak.c).
 * The kernels are compiled with target attributes and picked at run time from
 * CPUID (and XCR0), so the binary runs on any x86-64; a unit the CPU lacks
 * prints "not on this CPU". Prints a table, then one key=value line:
 *   peak_fp32_gflops=... (N threads) peak_fp32_1t_gflops=... threads=N
 *   fp32_isa=... peak_avx512bf16_gflops=... peak_amx_bf16_gflops=...
 * ("na" where the CPU has no such unit). bench_train and run_train_bench.sh
 * divide their "% of peak" by peak_fp32_gflops.
 *
 * Usage: bench_peak [--threads N] [--seconds S] [--repeats R] [--quick]
 * Defaults: the online CPUs, 0.3 s, 5 repeats; --quick: 0.05 s, 1 repeat. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peak.h"

static void usage(void) { fprintf(stderr, "usage: bench_peak [--threads N] [--seconds S] [--repeats R] [--quick]\n"); }

typedef struct row {
    const char *name, *key;
    double one, all; /* GFLOP/s on 1 and on N threads; < 0: not available */
} row;

static void fmt(char *buf, size_t n, double g) {
    if (g < 0)
        snprintf(buf, n, "na");
    else
        snprintf(buf, n, "%.1f", g);
}

int main(int argc, char **argv) {
    int threads = peak_online_cpus(), repeats = 5;
    double seconds = 0.3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick")) {
            seconds = 0.05;
            repeats = 1;
            continue;
        }
        if (!v) {
            usage();
            return 2;
        }
        if (!strcmp(a, "--threads"))
            threads = atoi(v);
        else if (!strcmp(a, "--seconds"))
            seconds = atof(v);
        else if (!strcmp(a, "--repeats"))
            repeats = atoi(v);
        else {
            usage();
            return 2;
        }
        i++;
    }
    if (threads < 1 || seconds <= 0 || repeats < 1) {
        usage();
        return 2;
    }

    const char *isa = peak_fp32_isa();
    char fp32name[48];
    snprintf(fp32name, sizeof fp32name, "fp32 fma (%s)", isa ? isa : "none");
    row rows[3] = {
        {fp32name, "peak_fp32_gflops", -1, -1},
        {"avx512 bf16 (vdpbf16ps)", "peak_avx512bf16_gflops", -1, -1},
        {"amx bf16 (tdpbf16ps)", "peak_amx_bf16_gflops", -1, -1},
    };
    rows[0].one = peak_fp32_gflops(1, seconds, repeats);
    if (threads > 1) rows[0].all = peak_fp32_gflops(threads, seconds, repeats);
    rows[1].one = peak_avx512bf16_gflops(1, seconds, repeats);
    if (threads > 1 && rows[1].one >= 0) rows[1].all = peak_avx512bf16_gflops(threads, seconds, repeats);
    rows[2].one = peak_amx_bf16_gflops(1, seconds, repeats);
    if (threads > 1 && rows[2].one >= 0) rows[2].all = peak_amx_bf16_gflops(threads, seconds, repeats);
    for (int i = 0; i < 3; i++)
        if (threads == 1) rows[i].all = rows[i].one;

    printf("cpu: %s (%s), %d online CPUs\n", peak_cpu_model(), peak_cpu_id(), peak_online_cpus());
    printf("GFLOP/s, best of %d runs of %.2f s each\n", repeats, seconds);
    char nthr[32];
    snprintf(nthr, sizeof nthr, "%d threads", threads);
    printf("%-26s %10s %11s %11s\n", "unit", "1 thread", nthr, "per thread");
    for (int i = 0; i < 3; i++) {
        if (rows[i].one < 0) {
            if (i == 0)
                printf("fp32 fma: not on this CPU\n");
            else if (i == 1)
                printf("avx512 bf16: not on this CPU\n");
            else if (rows[i].one == -2)
                printf("amx bf16: the kernel refused the tile-data permission (arch_prctl)\n");
            else
                printf("amx bf16: not on this CPU\n");
            continue;
        }
        printf("%-26s %10.1f %11.1f %11.1f\n", rows[i].name, rows[i].one, rows[i].all, rows[i].all / threads);
    }
    char f[3][2][32];
    for (int i = 0; i < 3; i++) {
        fmt(f[i][0], sizeof f[i][0], rows[i].one);
        fmt(f[i][1], sizeof f[i][1], rows[i].all);
    }
    printf("peak_fp32_gflops=%s peak_fp32_1t_gflops=%s threads=%d fp32_isa=%s peak_avx512bf16_gflops=%s "
           "peak_avx512bf16_1t_gflops=%s peak_amx_bf16_gflops=%s peak_amx_bf16_1t_gflops=%s\n",
           f[0][1], f[0][0], threads, isa ? isa : "none", f[1][1], f[1][0], f[2][1], f[2][0]);
    return rows[0].one < 0;
}
