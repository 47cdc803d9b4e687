#!/usr/bin/env bash
# run_gpu_bench.sh: lathe on the GPU against PyTorch eager, torch.compile and
# the Lightning Trainer, training the Keras MNIST CNN (mnist_cnn) on
# Fashion-MNIST at batch 128, fp32 and bf16-mixed, in one table with the
# lathe / peer ratios; plus what an attached workbench costs the run.
#
# Usage: tests/bench/run_gpu_bench.sh BUILD_DIR
#   BUILD_DIR must hold lathe built with the CUDA backend. Environment:
#   DATA        the four Fashion-MNIST .gz files (default /usr/share/datasets/fashion-mnist)
#   PYTHON      the Python with PyTorch and Lightning (default python3)
#   ACCEL       lathe's --accelerator (default gpu)
#   REPEATS     lathe runs per precision, the best shown (default 2)
#   BENCH_BUDGET seconds for the whole benchmark (default 360); each part
#               gets what is left, the slowest (torch.compile) last
#   FIGURES     a file the figures are appended to as "key: value" lines,
#               then the table
#   TMUX_CMD    the tmux to attach the workbench in (default tmux)
#   LATHE_LD_LIBRARY_PATH  LD_LIBRARY_PATH for lathe only (not the peers)
#   LATHE_GPU_DRY=1  a smoke test on the CPU: a few batches, --accelerator
#               cpu, the peers on the CPU only when PYTHON imports torch,
#               torch.compile skipped
# lathe's figure is the fit's own samples/s (training steps only) of a fresh
# process's first epoch; the peers' is their best timed epoch after warm-up.
# epoch_s is 54,000 samples (one epoch) over that rate.
set -u
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -lt 1 ] || [ ! -x "$1/lathe" ]; then
  sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//' >&2
  echo "run_gpu_bench.sh: ${1:-<BUILD_DIR>}/lathe not found (build lathe first)" >&2
  exit 2
fi
LATHE=$(readlink -f "$1/lathe")
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
PYTHON=${PYTHON:-python3}
ACCEL=${ACCEL:-gpu}
REPEATS=${REPEATS:-2}
BUDGET=${BENCH_BUDGET:-360}
DRY=${LATHE_GPU_DRY:-0}
TM_BIN=${TMUX_CMD:-tmux}
EPOCH=54000
start=$(date +%s)
tmp=$(mktemp -d) || { echo "run_gpu_bench.sh: mktemp failed" >&2; exit 1; }
TM="$TM_BIN -L lathe-gpubench-$$"
cleanup() { $TM kill-server 2>/dev/null; [ -n "${bpid:-}" ] && kill "$bpid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

left() { echo $((BUDGET - ($(date +%s) - start))); }
fig() { [ -n "${FIGURES:-}" ] && printf '%s: %s\n' "$1" "$2" >>"$FIGURES"; echo "$1: $2" >&2; }
lathe() { env ${LATHE_LD_LIBRARY_PATH:+LD_LIBRARY_PATH=$LATHE_LD_LIBRARY_PATH} "$LATHE" "$@"; }
kv() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p" | head -1; }
# limit <wanted seconds>: that or what is left of the budget
limit() { local l; l=$(left); [ "$1" -lt "$l" ] && echo "$1" || echo "$l"; }

if [ "$DRY" = 1 ]; then
  ACCEL=cpu REPEATS=1
  small=(--limit-train-batches 2 --threads 2) thr=(--threads 2)
  peer_dev=(--device cpu --max-batches 3 --epochs 1)
else
  small=() thr=()
  peer_dev=(--device cuda --epochs 2)
fi
tag() { [ "$1" = 32 ] && echo fp32 || echo bf16; }

# ---- lathe: one epoch per run, the best of REPEATS ----
declare -A RATE EPS
for prec in 32 bf16-mixed; do
  t=$(tag "$prec") best=
  for r in $(seq "$REPEATS"); do
    lim=$(limit 120)
    [ "$lim" -lt 10 ] && break
    line=$(timeout -k 5 "$lim" env ${LATHE_LD_LIBRARY_PATH:+LD_LIBRARY_PATH=$LATHE_LD_LIBRARY_PATH} "$LATHE" train mnist_cnn \
      --headless --accelerator "$ACCEL" --precision "$prec" --max-epochs 1 --limit-val-batches 0 --limit-test-batches 0 \
      --num-sanity-val-steps 0 --data "$DATA" --default-root-dir "$tmp/runs" "${small[@]}" 2>"$tmp/err" | grep '^steps=')
    echo "lathe $prec run $r: ${line:-FAILED: $(tail -1 "$tmp/err")}" >&2
    v=$(kv samples_per_s "$line")
    [ -n "$v" ] && { [ -z "$best" ] || awk -v a="$v" -v b="$best" 'BEGIN { exit !(a > b) }'; } && best=$v
  done
  if [ -n "$best" ]; then
    RATE[lathe_$t]=$best EPS[lathe_$t]=$(awk -v r="$best" -v n=$EPOCH 'BEGIN { printf "%.3f", n / r }')
    fig "bench_lathe_$t" "samples_per_s=$best epoch_s=${EPS[lathe_$t]} (best of $REPEATS; goal: epoch <= 1 s on an H100)"
  else
    fig "bench_lathe_$t" "FAILED ($(tail -1 "$tmp/err"))"
  fi
done

# ---- the peers: eager, Lightning, then torch.compile (the slowest to warm up) ----
have_torch=0
"$PYTHON" -c 'import torch' 2>/dev/null && have_torch=1
for impl in eager lightning compile; do
  why=
  if [ $have_torch = 0 ]; then why="skipped ($PYTHON cannot import torch)"
  elif [ "$DRY" = 1 ] && [ $impl = compile ]; then why="skipped (dry run: compiling takes minutes on the CPU)"
  elif [ $impl = lightning ] && ! "$PYTHON" -c 'import lightning.pytorch' 2>/dev/null &&
    ! "$PYTHON" -c 'import pytorch_lightning' 2>/dev/null; then why="skipped (no Lightning in $PYTHON)"
  elif [ "$(left)" -lt 20 ]; then why="skipped (out of time)"
  fi
  if [ -n "$why" ]; then
    fig "bench_${impl}_fp32" "$why"; fig "bench_${impl}_bf16" "$why"; continue
  fi
  lim=$(limit 240)
  PYTHONUNBUFFERED=1 timeout -k 5 "$lim" "$PYTHON" "$here/peer_torch_gpu.py" --impl $impl --precisions 32,bf16-mixed \
    --data "$DATA" "${peer_dev[@]}" >"$tmp/peer.out" 2>"$tmp/peer.err"
  rc=$?
  tail -n 20 "$tmp/peer.err" >&2
  cat "$tmp/peer.out" >&2
  for prec in 32 bf16-mixed; do
    t=$(tag "$prec")
    line=$(grep "^impl=$impl precision=$prec " "$tmp/peer.out")
    if [ -n "$line" ]; then
      RATE[${impl}_$t]=$(kv samples_per_s "$line") EPS[${impl}_$t]=$(kv epoch_s "$line")
      fig "bench_${impl}_$t" "samples_per_s=${RATE[${impl}_$t]} epoch_s=${EPS[${impl}_$t]} ($(kv best_of "$line") timed epochs after $(kv warmup_s "$line") s of warm-up; $(kv tf32_conv "$line" | sed 's/^/tf32_conv=/'))"
    else
      [ $rc = 124 ] || [ $rc = 137 ] && why="timed out after ${lim}s" || why="exit $rc: $(tail -1 "$tmp/peer.err")"
      fig "bench_${impl}_$t" "FAILED ($why)"
    fi
  done
done

# ---- the workbench attached vs headless ----
# Each run pauses as soon as its control socket is up, the workbench attaches
# (or not), and it resumes: the fit's samples/s counts training steps only.
over_run() { # <attach 0|1> <steps>: prints samples/s
  local dir=$tmp/wb.$RANDOM run
  run=$dir/mnist_cnn/version_0
  env ${LATHE_LD_LIBRARY_PATH:+LD_LIBRARY_PATH=$LATHE_LD_LIBRARY_PATH} "$LATHE" train mnist_cnn --headless \
    --accelerator "$ACCEL" --max-epochs 1000 --max-steps "$2" --limit-val-batches 0 --limit-test-batches 0 \
    --num-sanity-val-steps 0 --data "$DATA" --default-root-dir "$dir" "${thr[@]}" \
    >"$tmp/wb.out" 2>"$tmp/wb.err" &
  bpid=$!
  for _ in $(seq 200); do [ -S "$run/control.sock" ] && break; sleep 0.05; done
  lathe ctl "$run" pause >/dev/null 2>&1
  if [ "$1" = 1 ]; then
    $TM new-session -d -x 120 -y 40 "env LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=screen-256color XDG_DATA_HOME=$tmp/xdg \
      ${LATHE_LD_LIBRARY_PATH:+LD_LIBRARY_PATH=$LATHE_LD_LIBRARY_PATH} $LATHE attach $run"
    for _ in $(seq 200); do $TM capture-pane -p 2>/dev/null | head -1 | grep -q PAUSED && break; sleep 0.05; done
  fi
  lathe ctl "$run" resume >/dev/null 2>&1
  wait "$bpid"; bpid=
  [ "$1" = 1 ] && $TM kill-server 2>/dev/null
  sed -n 's/.*samples_per_s=\([0-9.]*\).*/\1/p' "$tmp/wb.out" | tail -1
}
if ! command -v "${TM_BIN%% *}" >/dev/null 2>&1 && [ ! -x "${TM_BIN%% *}" ]; then
  fig bench_attached_overhead "skipped (no tmux)"
elif [ -z "${RATE[lathe_fp32]:-}" ]; then
  fig bench_attached_overhead "skipped (no lathe fp32 figure)"
else
  # about 4 s of training each, 100 to 2000 steps; 3 on a dry run
  steps=$(awk -v r="${RATE[lathe_fp32]}" 'BEGIN { s = int(r * 4 / 128); print (s < 100) ? 100 : (s > 2000) ? 2000 : s }')
  [ "$DRY" = 1 ] && steps=3
  h_best= a_best=
  for _ in $(seq "$REPEATS"); do
    [ "$(left)" -lt 30 ] && break
    h=$(over_run 0 "$steps"); a=$(over_run 1 "$steps")
    echo "attached overhead: headless ${h:-?} attached ${a:-?} samples/s" >&2
    [ -n "$h" ] && { [ -z "$h_best" ] || awk -v a="$h" -v b="$h_best" 'BEGIN { exit !(a > b) }'; } && h_best=$h
    [ -n "$a" ] && { [ -z "$a_best" ] || awk -v a="$a" -v b="$a_best" 'BEGIN { exit !(a > b) }'; } && a_best=$a
  done
  if [ -n "$h_best" ] && [ -n "$a_best" ]; then
    RATE[attached]=$a_best RATE[headless]=$h_best
    fig bench_attached_overhead "$(awk -v h="$h_best" -v a="$a_best" -v s="$steps" 'BEGIN {
      printf "%.1f%% (headless %.1f, attached %.1f samples/s, %d steps fp32; goal: <= 3%%)", (h - a) / h * 100, h, a, s }')"
  else
    fig bench_attached_overhead "FAILED (a run gave no samples/s: $(tail -1 "$tmp/wb.err"))"
  fi
fi

# ---- the table ----
table() {
  local gpu
  gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  printf 'mnist_cnn on Fashion-MNIST, batch 128, %d samples per epoch, %s%s\n' $EPOCH "${gpu:-no GPU}" \
    "$([ "$DRY" = 1 ] && echo ' (dry run on the CPU: not GPU figures)')"
  printf '%-16s %-11s %12s %10s %12s\n' implementation precision samples/s epoch_s lathe/peer
  for t in fp32 bf16; do
    for impl in lathe eager compile lightning; do
      local r=${RATE[${impl}_$t]:-} l=${RATE[lathe_$t]:-} name
      case $impl in lathe) name=lathe ;; eager) name="torch eager" ;; compile) name=torch.compile ;; lightning) name=Lightning ;; esac
      if [ -z "$r" ]; then printf '%-16s %-11s %12s %10s %12s\n' "$name" "$([ $t = fp32 ] && echo 32 || echo bf16-mixed)" - - -; continue; fi
      awk -v n="$name" -v p="$([ $t = fp32 ] && echo 32 || echo bf16-mixed)" -v r="$r" -v e="${EPS[${impl}_$t]}" -v l="$l" -v me="$impl" 'BEGIN {
        ratio = (me == "lathe" || l == "") ? "" : sprintf("%.2fx", l / r)
        printf "%-16s %-11s %12.1f %10.3f %12s\n", n, p, r, e, ratio }'
    done
  done
  echo "goals:"
  awk -v e="${EPS[lathe_fp32]:-}" 'BEGIN { if (e == "") print "  epoch <= 1 s on an H100 (fp32): no figure";
    else printf "  epoch <= 1 s on an H100 (fp32): %.3f s, %s\n", e, (e <= 1) ? "met" : "missed" }'
  for t in fp32 bf16; do
    awk -v l="${RATE[lathe_$t]:-}" -v p="${RATE[lightning_$t]:-}" -v t=$t 'BEGIN { if (l == "" || p == "") printf "  lathe >= 1.5x Lightning (%s): no figure\n", t;
      else printf "  lathe >= 1.5x Lightning (%s): %.2fx, %s\n", t, l / p, (l / p >= 1.5) ? "met" : "missed" }'
  done
  awk -v h="${RATE[headless]:-}" -v a="${RATE[attached]:-}" 'BEGIN { if (h == "" || a == "") print "  workbench attached costs <= 3%: no figure";
    else { o = (h - a) / h * 100; printf "  workbench attached costs <= 3%%: %.1f%%, %s\n", o, (o <= 3) ? "met" : "missed" } }'
  echo "lathe: the fit's samples/s of a fresh process's epoch; peers: best timed epoch after warm-up; data on the device for all"
}
table >"$tmp/table"
cat "$tmp/table"
[ -n "${FIGURES:-}" ] && { echo "---- benchmark table ----"; cat "$tmp/table"; } >>"$FIGURES"
exit 0
