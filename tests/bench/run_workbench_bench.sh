#!/usr/bin/env bash
# Training throughput of a headless run with and without the workbench
# attached (in a tmux window, at its normal refresh), and with and without
# --detect-anomaly, side by side in one run; plus the workbench's own CPU use.
#
#   tests/bench/run_workbench_bench.sh build [STEPS] [REPEATS]
#   (defaults: 150 steps of mnist_cnn at batch 128, 2 repeats; the best of each)
#
# Prints samples/s per configuration and the ratio to the plain headless run.
set -u
BUILD=${1:-build}
STEPS=${2:-150}
REPEATS=${3:-2}
LATHE=$BUILD/lathe
tmp=$(mktemp -d)
trap 'tmux -L lathe-bench kill-server 2>/dev/null; rm -rf "$tmp"' EXIT

# run <label> <attach 0|1> <extra flags...>: prints samples_per_s of the run
run() {
  local label=$1 attach=$2; shift 2
  local dir=$tmp/$label.$RANDOM
  "$LATHE" train mnist_cnn --headless --default-root-dir "$dir" --max-steps "$STEPS" --limit-val-batches 1 \
    --limit-test-batches 1 --num-sanity-val-steps 0 --val-check-interval 100000 --threads 2 "$@" \
    >"$tmp/out" 2>"$tmp/err" &
  local pid=$!
  if [ "$attach" = 1 ]; then
    for _ in $(seq 100); do ls "$dir"/mnist_cnn/version_0/control.sock >/dev/null 2>&1 && break; sleep 0.1; done
    tmux -L lathe-bench new-session -d -x 120 -y 40 "$LATHE attach $dir/mnist_cnn/version_0"
    sleep 1
    local wpid
    wpid=$(pgrep -f "lathe attach $dir" | head -1)
    local t0 c0
    t0=$(date +%s.%N)
    c0=$(awk '{print $14+$15}' /proc/"$wpid"/stat 2>/dev/null || echo 0)
  fi
  wait $pid
  if [ "$attach" = 1 ]; then
    local t1 c1
    t1=$(date +%s.%N)
    c1=$(awk '{print $14+$15}' /proc/"$wpid"/stat 2>/dev/null || echo "$c0")
    echo "workbench cpu: $(echo "($c1 - $c0) / $(getconf CLK_TCK) / ($t1 - $t0) * 100" | bc -l | cut -c1-5) % of a core" >&2
    tmux -L lathe-bench kill-server 2>/dev/null
  fi
  sed -n 's/.*samples_per_s=\([0-9.]*\).*/\1/p' "$tmp/out" | tail -1
}

best() { sort -g | tail -1; }

# the configurations take turns in every round, so a change in the machine's
# load during the benchmark moves all three alike
declare -A R V
for _ in $(seq "$REPEATS"); do
  for cfg in headless attached anomaly; do
    case $cfg in
      headless) v=$(run h 0) ;;
      attached) v=$(run a 1) ;;
      anomaly) v=$(run d 0 --detect-anomaly) ;;
    esac
    V[$cfg]="${V[$cfg]:-} $v"
  done
done
for cfg in headless attached anomaly; do
  R[$cfg]=$(printf '%s\n' ${V[$cfg]} | best)
  echo "$cfg runs:${V[$cfg]}" >&2
done
printf '%-34s %12s %8s\n' configuration samples/s ratio
for cfg in headless attached anomaly; do
  printf '%-34s %12.1f %7.1f%%\n' "$cfg" "${R[$cfg]}" "$(echo "${R[$cfg]} / ${R[headless]} * 100" | bc -l)"
done
