#!/usr/bin/env bash
# run_ddp_bench.sh: data-parallel scaling on CPU ranks, lathe vs PyTorch DDP,
# mnist_cnn on Fashion-MNIST, side by side in one table.
#
# Usage: tests/bench/run_ddp_bench.sh BUILD_DIR [STEPS] [REPEATS]
#   e.g. tests/bench/run_ddp_bench.sh build 100 3
# Defaults: 100 steps of global batch 128, 3 repeats. BUILD_DIR must hold
# lathe built with MPI (cmake --build BUILD_DIR --target lathe); mpirun must be
# on PATH. Four runs, taking turns, each REPEATS times, best samples/s shown:
#   lathe 1 rank x 2 threads, --batch-size 128
#   lathe 2 ranks x 1 thread (mpirun -np 2 ... --strategy ddp --devices 2), --batch-size 64 per rank
#   PyTorch DDP over gloo, torchrun --nproc-per-node 2, 1 thread each, batch 64 per rank
#   PyTorch, one process, 2 threads, batch 128 (peer_torch.py; reference)
# lathe's figure is the summary line's samples_per_s (rank 0's samples over its
# fit seconds, first step included), times the world size for the ddp run
# (each rank counts its own samples). PyTorch's are over the timed steps after
# 5 warm-up steps. Goals: 2 ranks >= 0.9 x 1 rank; lathe ddp >= 1.5 x PyTorch
# DDP. The all-reduce share is lathe's allreduce_wait_share= if a ddp run
# prints one, else "not reported".
# PYTHON (default ~/.cache/lathe/venv/bin/python) must import torch, else the
# PyTorch columns are skipped with one line. DATA overrides the data folder.
set -euo pipefail

if [ $# -lt 1 ] || [ ! -x "$1/lathe" ]; then
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2
    echo "run_ddp_bench.sh: ${1:-<BUILD_DIR>}/lathe not found (cmake --build BUILD_DIR --target lathe)" >&2
    exit 2
fi
if ! command -v mpirun >/dev/null; then
    echo "run_ddp_bench.sh: mpirun not found (install openmpi-bin)" >&2
    exit 2
fi
lathe=$(cd "$1" && pwd)/lathe
steps=${2:-100}
repeats=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-$HOME/.cache/lathe/venv/bin/python}
data=${DATA:-/usr/share/datasets/fashion-mnist}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

export OMPI_MCA_btl_vader_single_copy_mechanism=none
mpi=(mpirun --oversubscribe -np 2)
[ "$(id -u)" = 0 ] && mpi=(mpirun --allow-run-as-root --oversubscribe -np 2)

torch_ok=1
tv=$("$python" -c 'import torch; print(torch.__version__)' 2>/dev/null) || torch_ok=0
if [ $torch_ok = 1 ]; then
    torchrun=("$python" -m torch.distributed.run)
else
    echo "PyTorch peer skipped: $python does not import torch"
fi

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
echo "cpu: $cpu, $(nproc) online CPUs"
echo "load before: $(uptime)"

# value of key in a key=value line
kv() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p" | head -n 1; }
better() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a == "" || b + 0 > a + 0) }'; }

common=(--headless --seed 1 --data "$data" --max-epochs 1 --limit-train-batches "$steps"
    --limit-val-batches 0 --limit-test-batches 0 --num-sanity-val-steps 0)
l1="" l2="" td="" t1="" share="" n=0

for r in $(seq 1 "$repeats"); do
    n=$((n + 1))
    "$lathe" train mnist_cnn "${common[@]}" --threads 2 --batch-size 128 \
        --default-root-dir "$tmp/one$r" >"$tmp/one.out" 2>"$tmp/one.err" ||
        { echo "lathe 1 rank failed: $(tail -c 600 "$tmp/one.err")" >&2; exit 1; }
    line=$(grep '^steps=' "$tmp/one.out")
    v=$(kv samples_per_s "$line")
    echo "run $r lathe 1x2: $line" >&2
    better "$l1" "$v" && l1=$v

    "${mpi[@]}" "$lathe" train mnist_cnn "${common[@]}" --threads 1 --batch-size 64 --strategy ddp --devices 2 \
        --default-root-dir "$tmp/two$r" >"$tmp/two.out" 2>"$tmp/two.err" ||
        { echo "lathe 2 ranks failed: $(tail -c 600 "$tmp/two.err")" >&2; exit 1; }
    line=$(grep '^steps=' "$tmp/two.out")
    v=$(awk -v s="$(kv samples_per_s "$line")" 'BEGIN { printf "%.1f", 2 * s }')
    echo "run $r lathe 2x1: $line (x2 ranks: $v)" >&2
    if better "$l2" "$v"; then
        l2=$v
        share=$(cat "$tmp/two.out" "$tmp/two.err" | tr ' ' '\n' | sed -n 's/^allreduce_wait_share=//p' | tail -n 1)
    fi

    if [ $torch_ok = 1 ]; then
        OMP_NUM_THREADS=1 "${torchrun[@]}" --nproc-per-node 2 "$here/peer_torch_ddp.py" --steps "$steps" \
            --warmup 5 --threads 1 --batch 64 --data "$data" >"$tmp/td.out" 2>"$tmp/td.err" ||
            { echo "torch ddp failed: $(tail -c 600 "$tmp/td.err")" >&2; exit 1; }
        line=$(grep '^impl=torch_ddp' "$tmp/td.out")
        echo "run $r torch ddp 2x1: $line" >&2
        v=$(kv samples_per_s "$line")
        better "$td" "$v" && td=$v
        line=$(OMP_NUM_THREADS=2 "$python" "$here/peer_torch.py" --steps "$steps" --warmup 5 --threads 2 \
            --batch 128 --data "$data" --peak-gflops 1 | grep '^impl=torch')
        # (the share of peak is run_train_bench.sh's figure: not printed here)
        echo "run $r torch 1x2: $(sed 's/ gflops=[^ ]* peak_gflops=[^ ]* pct_peak=[^ ]*//' <<<"$line")" >&2
        v=$(kv samples_per_s "$line")
        better "$t1" "$v" && t1=$v
    fi
done

echo "load after: $(uptime)"
awk -v l1="$l1" -v l2="$l2" -v td="$td" -v t1="$t1" -v share="$share" -v steps="$steps" -v reps="$repeats" \
    -v tv="${tv:-}" -v cpu="$cpu" 'BEGIN {
    printf "mnist_cnn, global batch 128 (1 x 128 or 2 x 64), %d steps, best of %d, %s\n", steps, reps, cpu
    printf "%-34s %12s %12s\n", "samples/s", "lathe", "torch"
    printf "%-34s %12.1f %12s\n", "1 process x 2 threads", l1, (t1 == "" ? "-" : sprintf("%.1f", t1))
    printf "%-34s %12.1f %12s\n", "2 ranks x 1 thread (ddp)", l2, (td == "" ? "-" : sprintf("%.1f", td))
    printf "%-34s %11.2fx %12s\n", "2 ranks / 1 process", l2 / l1, (t1 == "" || td == "" ? "-" : sprintf("%.2fx", td / t1))
    printf "scaling goal: lathe 2 ranks >= 0.9 x 1 process: %.2f, %s\n", l2 / l1, (l2 / l1 >= 0.9 ? "met" : "NOT met")
    if (td != "")
        printf "peer goal: lathe ddp >= 1.5 x PyTorch DDP (gloo): %.2fx, %s\n", l2 / td, (l2 / td >= 1.5 ? "met" : "NOT met")
    else
        printf "peer goal: lathe ddp >= 1.5 x PyTorch DDP (gloo): PyTorch not available\n"
    if (t1 != "") printf "lathe 1 process / PyTorch 1 process: %.2fx\n", l1 / t1
    printf "all-reduce share of the step (lathe ddp): %s\n", (share == "" ? "not reported" : share)
    if (tv != "") printf "torch %s\n", tv
}'
