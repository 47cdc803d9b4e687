#!/usr/bin/env bash
# run_train_bench.sh: lathe vs PyTorch, end-to-end training of the Keras MNIST
# CNN (mnist_cnn) on Fashion-MNIST, side by side in one table.
#
# Usage: tests/bench/run_train_bench.sh BUILD_DIR [STEPS] [THREADS] [BATCH] [REPEATS] [bf16]
#   e.g. tests/bench/run_train_bench.sh build 100 2 128 3 bf16
# Defaults: 100 timed steps (after 5 warm-up steps), 2 threads, batch 128, 3
# repeats. It builds nothing: BUILD_DIR must hold bench_train and bench_peak
# (cmake --build BUILD_DIR --target bench_train bench_peak). bench_peak first
# measures this CPU's fp32 FMA peak on THREADS threads; every "% of peak" in
# the table divides by it. The peer runs under
# $PYTHON (default $LATHE_PYTHON, else ~/.cache/lathe/venv/bin/python, where .ci/run makes it); DATA overrides the data folder.
# Three columns: lathe as `lathe train` runs (Winograd F(4x4, 3x3) for conv2),
# lathe with --conv gemm (im2col + GEMM for every layer: the GEMM path's own
# rate against the FMA peak), and PyTorch. Each runs REPEATS times,
# alternating, and the best samples/s of each is reported (the machine is
# shared; the best run is the least disturbed); the "median step" row is
# samples/s from the median step time of that run, which bursts of load from
# other processes move least.
# With bf16 a second table adds lathe --precision bf16-mixed (the bf16 kernels
# where the CPU has them: AMX-BF16; else the rounding emulation) and PyTorch's
# bf16 autocast (the better of NCHW and channels_last), as ratios against the
# fp32 runs. A bf16 run on the emulated kernels (LATHE_CPU_BF16=emulate) is
# no figure: the table says so instead of printing it.
# OPENBLAS_* settings in the environment are passed through unchanged.
set -euo pipefail

if [ $# -lt 1 ] || [ ! -x "$1/bench_train" ] || [ ! -x "$1/bench_peak" ]; then
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
    echo "run_train_bench.sh: ${1:-<BUILD_DIR>}/bench_train or bench_peak not found (build both targets)" >&2
    exit 2
fi
build=$1
steps=${2:-100}
threads=${3:-2}
batch=${4:-128}
repeats=${5:-3}
bf16=${6:-}
if [ -n "$bf16" ] && [ "$bf16" != bf16 ]; then
    echo "run_train_bench.sh: the 6th argument is 'bf16' or nothing, not '$bf16'" >&2
    exit 2
fi
warmup=5
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-${LATHE_PYTHON:-$HOME/.cache/lathe/venv/bin/python}}
data=${DATA:-/usr/share/datasets/fashion-mnist}

# value of key in a key=value line
kv() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

peakout=$("$build/bench_peak" --threads "$threads")
echo "$peakout" >&2
peak=$(kv peak_fp32_gflops "$(grep '^peak_fp32_gflops=' <<<"$peakout")")
cpu=$(sed -n 's/^cpu: //p' <<<"$peakout")
common=(--steps "$steps" --warmup "$warmup" --threads "$threads" --batch "$batch" --data "$data" --peak-gflops "$peak")

best_lathe="" best_gemm="" best_torch="" best_lbf="" best_tbf=""
best_rate() { # $1 current best line, $2 new line -> the better one
    if [ -z "$1" ]; then echo "$2"; return; fi
    awk -v a="$(kv samples_per_s "$1")" -v b="$(kv samples_per_s "$2")" 'BEGIN { exit !(b > a) }' && echo "$2" || echo "$1"
}

for r in $(seq 1 "$repeats"); do
    line=$("$build/bench_train" "${common[@]}" | grep '^impl=lathe')
    echo "run $r: $line" >&2
    best_lathe=$(best_rate "$best_lathe" "$line")
    line=$("$build/bench_train" "${common[@]}" --conv gemm | grep '^impl=lathe')
    echo "run $r: $line" >&2
    best_gemm=$(best_rate "$best_gemm" "$line")
    line=$(OMP_NUM_THREADS="$threads" "$python" "$here/peer_torch.py" "${common[@]}" | grep '^impl=torch')
    echo "run $r: $line" >&2
    best_torch=$(best_rate "$best_torch" "$line")
    [ -n "$bf16" ] || continue
    line=$("$build/bench_train" "${common[@]}" --precision bf16-mixed | grep '^impl=lathe')
    echo "run $r: $line" >&2
    best_lbf=$(best_rate "$best_lbf" "$line")
    for layout in "" --channels-last; do
        line=$(OMP_NUM_THREADS="$threads" "$python" "$here/peer_torch.py" "${common[@]}" --autocast bf16 $layout |
            grep '^impl=torch')
        echo "run $r: $line" >&2
        best_tbf=$(best_rate "$best_tbf" "$line")
    done
done

L=$best_lathe G=$best_gemm T=$best_torch
awk -v ls="$(kv samples_per_s "$L")" -v gs="$(kv samples_per_s "$G")" -v ts="$(kv samples_per_s "$T")" \
    -v lp="$(kv pct_peak "$L")" -v gp="$(kv pct_peak "$G")" -v tp="$(kv pct_peak "$T")" \
    -v lg="$(kv gflops "$L")" -v gg="$(kv gflops "$G")" -v tg="$(kv gflops "$T")" \
    -v lm="$(kv median_samples_per_s "$L")" -v gm="$(kv median_samples_per_s "$G")" \
    -v tm="$(kv median_samples_per_s "$T")" \
    -v lr="$(kv peak_rss_mb "$L")" -v gr="$(kv peak_rss_mb "$G")" -v tr="$(kv peak_rss_mb "$T")" \
    -v pk="$(kv peak_gflops "$L")" -v tv="$(kv torch "$T")" -v mk="$(kv mkldnn "$T")" \
    -v steps="$steps" -v threads="$threads" -v batch="$batch" -v reps="$repeats" -v cpu="$cpu" 'BEGIN {
    printf "mnist_cnn training, batch %d, %d threads, %d timed steps, best of %d\n", batch, threads, steps, reps
    printf "%% of peak: of the measured fp32 peak (bench_peak: %.1f GFLOP/s on %s, %d threads)\n", pk, cpu, threads
    printf "%-14s %12s %12s %12s %12s\n", "", "lathe", "lathe-im2col", "torch", "lathe/torch"
    printf "%-14s %12.1f %12.1f %12.1f %11.2fx\n", "samples/s", ls, gs, ts, ls / ts
    printf "%-14s %12.1f %12.1f %12.1f %11.2fx\n", "median step", lm, gm, tm, lm / tm
    printf "%-14s %12.2f %12.2f %12.2f %11.2fx\n", "GFLOP/s", lg, gg, tg, lg / tg
    printf "%-14s %11.1f%% %11.1f%% %11.1f%%\n", "% of peak", lp, gp, tp
    printf "%-14s %12.1f %12.1f %12.1f %11.2fx\n", "peak RSS MB", lr, gr, tr, lr / tr
    printf "lathe: Winograd F(4x4, 3x3) for conv2; lathe-im2col: --conv gemm, every layer im2col + GEMM.\n"
    printf "GFLOP/s and %% of peak count a direct convolution'"'"'s flops for all three, so Winograd'"'"'s exceed what\n"
    printf "the FMA units execute; lathe-im2col'"'"'s are the GEMM path'"'"'s true rate.\n"
    printf "torch %s, mkldnn %s\n", tv, mk == 1 ? "available" : "not available"
}'

[ -n "$bf16" ] || exit 0
LB=$best_lbf TB=$best_tbf
echo
awk -v ls="$(kv samples_per_s "$L")" -v ts="$(kv samples_per_s "$T")" -v lb="$(kv samples_per_s "$LB")" \
    -v tb="$(kv samples_per_s "$TB")" -v lm="$(kv median_samples_per_s "$L")" -v tm="$(kv median_samples_per_s "$T")" \
    -v lbm="$(kv median_samples_per_s "$LB")" -v tbm="$(kv median_samples_per_s "$TB")" \
    -v emu="$(kv emulated "$LB")" -v kern="$(sed -n 's/.* kernels=//p' <<<"$LB")" -v lay="$(kv layout "$TB")" 'BEGIN {
    printf "bf16: lathe --precision bf16-mixed on %s; torch bf16 autocast, best layout %s\n", kern, lay
    if (emu == 1) {
        printf "lathe bf16-mixed ran the emulated kernels (LATHE_CPU_BF16=emulate, a C model for the tests): no figure\n"
        printf "%-14s %12s %12s %12s\n", "", "torch fp32", "torch bf16", "bf16/fp32"
        printf "%-14s %12.1f %12.1f %11.2fx\n", "samples/s", ts, tb, tb / ts
        exit
    }
    printf "%-14s %12s %12s %12s %12s %14s %14s\n", "", "lathe fp32", "lathe bf16", "torch fp32", "torch bf16",
           "lathe bf16/fp32", "lathe/torch bf16"
    printf "%-14s %12.1f %12.1f %12.1f %12.1f %13.2fx %13.2fx\n", "samples/s", ls, lb, ts, tb, lb / ls, lb / tb
    printf "%-14s %12.1f %12.1f %12.1f %12.1f %13.2fx %13.2fx\n", "median step", lm, lbm, tm, tbm, lbm / lm, lbm / tbm
}'
