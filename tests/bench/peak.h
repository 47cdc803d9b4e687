/* peak.h: the arithmetic peak of the CPU the benchmark runs on, measured.
 *
 * Shared by bench_peak and bench_train, so every "% of peak" divides by what
 * this machine measured rather than by a nominal clock. Each probe runs many
 * independent multiply-add chains (more than the unit's latency times its
 * ports) on `threads` OpenMP threads for about `seconds` each, `repeats`
 * times, and returns the best total rate in GFLOP/s (2 flops per multiply-add
 * lane). The kernels are compiled for their instruction sets with target
 * attributes and chosen at run time, so the binary runs on any x86-64; a probe
 * whose unit the CPU (or the kernel) lacks returns a negative value. */
#ifndef LATHE_BENCH_PEAK_H
#define LATHE_BENCH_PEAK_H

/* The CPU's name: /proc/cpuinfo's "model name", else the CPUID brand string. */
const char *peak_cpu_model(void);
/* Vendor, family and model from CPUID, e.g. "AuthenticAMD family 25 model 1". */
const char *peak_cpu_id(void);
/* CPUs online (sysconf), at least 1. */
int peak_online_cpus(void);

/* The widest fp32 FMA the CPU runs: "avx512f", "avx2-fma", or NULL (none). */
const char *peak_fp32_isa(void);
int peak_has_avx512bf16(void);
int peak_has_amx_bf16(void);

/* fp32 FMA peak: _mm512_fmadd_ps (AVX-512) or _mm256_fmadd_ps (AVX2 + FMA). */
double peak_fp32_gflops(int threads, double seconds, int repeats);
/* bf16 dot products into fp32: _mm512_dpbf16_ps, 64 flops per instruction. */
double peak_avx512bf16_gflops(int threads, double seconds, int repeats);
/* AMX: _tile_dpbf16ps on 16x64-byte tiles, 2*16*16*32 flops per instruction.
 * Asks the kernel for the tile-data permission first (arch_prctl). */
double peak_amx_bf16_gflops(int threads, double seconds, int repeats);

#endif
