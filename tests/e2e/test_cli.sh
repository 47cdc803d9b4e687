#!/usr/bin/env bash
# The lathe CLI as a user meets it: list, summary, help, a short headless run
# with its key=value summary line, and every bad input refused with a one-line
# error and exit status 2.   usage: test_cli.sh <lathe binary> <source dir>
. "$(dirname "$0")/lib.sh" "$1"

# expect_error <needle> <lathe args...>: exit 2, one line on stderr containing needle
expect_error() {
  local needle=$1; shift
  "$LATHE" "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ $rc -ne 2 ]; then bad "lathe $* exited $rc, expected 2"; return; fi
  if [ "$(wc -l <"$tmp/err")" -ne 1 ]; then bad "lathe $*: expected one error line, got: $(cat "$tmp/err")"; return; fi
  if ! grep -qF -- "$needle" "$tmp/err"; then bad "lathe $*: error lacks '$needle': $(cat "$tmp/err")"; return; fi
  ok
}

"$LATHE" list >"$tmp/list" && grep -q '^mnist_cnn ' "$tmp/list" && grep -q '^mlp ' "$tmp/list" && ok || bad "list"
"$LATHE" summary mnist_cnn >"$tmp/sum" && grep -q 'Total params: 1,199,882' "$tmp/sum" &&
  grep -q 'conv2d_2 .*64x24x24' "$tmp/sum" && ok || bad "summary: $(cat "$tmp/sum")"
"$LATHE" --help | grep -q -- '--max-epochs' && ok || bad "--help lists flags"
"$LATHE" train --help | grep -q -- '--limit-train-batches' && ok || bad "train --help lists flags"

# a short run: plain progress lines (not a TTY) and the parsable summary line
"$LATHE" train mlp --max-steps 20 --limit-val-batches 2 --limit-test-batches 2 --val-check-interval 10 \
  --log-every-n-steps 5 >"$tmp/out" 2>"$tmp/err"
rc=$?
line=$(tail -n 1 "$tmp/out")
[ $rc -eq 0 ] && ok || bad "short run exited $rc: $(cat "$tmp/err")"
for k in steps=20 samples=2560 seconds= samples_per_s= train_loss= val_loss= val_acc= test_acc= state=done; do
  case "$line" in *"$k"*) ok ;; *) bad "summary line lacks $k: $line" ;; esac
done
grep -q '^epoch=1 step=5/20 ' "$tmp/err" && ok || bad "progress lines: $(head -3 "$tmp/err")"
# the last step's line comes once, in the epoch it ran in (not the next: max_steps ends the fit mid-epoch)
[ "$(grep -c '^epoch=1 step=20/20 ' "$tmp/err")" = 1 ] && ! grep -q '^epoch=2 ' "$tmp/err" && ok ||
  bad "the last progress line: $(grep 'step=20/20' "$tmp/err")"
# metrics.csv writes samples/s as Python does (1220.0), never with an exponent
run=$(printf '%s\n' "$line" | sed -n 's/.*run_dir=\([^ ]*\).*/\1/p')
if [ -f "$run/metrics.csv" ]; then
  col=$(head -1 "$run/metrics.csv" | tr ',' '\n' | grep -nx samples_per_s | cut -d: -f1)
  bad_sps=$(tail -n +2 "$run/metrics.csv" | cut -d, -f"$col" | grep -E 'e|E' | head -1)
  [ -n "$col" ] && [ -z "$bad_sps" ] && ok || bad "metrics.csv samples_per_s: '$bad_sps'"
else bad "no metrics.csv under '$run'"; fi

# a run without validation says nothing of val_loss / val_acc (not nan)
"$LATHE" train mlp --max-steps 4 --limit-val-batches 0 --limit-test-batches 1 --num-sanity-val-steps 0 \
  >"$tmp/out" 2>"$tmp/err"
line=$(tail -n 1 "$tmp/out")
case "$line" in *val_loss*|*nan*) bad "no validation ran, yet: $line" ;; *steps=4*) ok ;; *) bad "run: $line $(cat "$tmp/err")" ;; esac

# --matmul-precision high on the cpu: accepted, said once, recorded in run.yaml
"$LATHE" train mlp --max-steps 2 --limit-val-batches 0 --limit-test-batches 1 --num-sanity-val-steps 0 \
  --matmul-precision high >"$tmp/out" 2>"$tmp/err"
n=$(grep -c -- 'note: --matmul-precision high: the cpu computes f32 GEMMs; the setting applies on a GPU' "$tmp/err")
[ "$n" = 1 ] && ok || bad "matmul note said $n times: $(cat "$tmp/err")"
run=$(tail -n 1 "$tmp/out" | sed -n 's/.*run_dir=\([^ ]*\).*/\1/p')
grep -qx 'matmul_precision: high' "$run/run.yaml" 2>/dev/null && grep -qx "precision: '32'" "$run/run.yaml" && ok ||
  bad "run.yaml lacks the precision settings: $(cat "$run/run.yaml" 2>&1)"
grep -qx "kernels: 'cpu f32'" "$run/run.yaml" && ok || bad "run.yaml does not name the kernels: $(cat "$run/run.yaml")"

# bf16-mixed on the cpu: run.yaml names the kernels that ran it (the rounding
# emulation with LATHE_CPU_BF16=off, the C model of AMX with emulate)
for mode in "off:cpu f32 (bf16 emulated by rounding):f32" "emulate:cpu bf16 emulated kernels:bf16"; do
  IFS=: read -r env want math <<<"$mode"
  LATHE_CPU_BF16=$env "$LATHE" train mlp --max-steps 1 --batch-size 8 --limit-val-batches 0 --limit-test-batches 1 \
    --num-sanity-val-steps 0 --precision bf16-mixed >"$tmp/out" 2>"$tmp/err"
  run=$(tail -n 1 "$tmp/out" | sed -n 's/.*run_dir=\([^ ]*\).*/\1/p')
  grep -qx "kernels: '$want'" "$run/run.yaml" 2>/dev/null && grep -qx "math: $math" "$run/run.yaml" && ok ||
    bad "LATHE_CPU_BF16=$env: run.yaml: $(cat "$run/run.yaml" 2>&1) $(cat "$tmp/err")"
done

# LATHE_CPU_BF16 names a path the CPU lacks, or no path: one line on stderr, and
# the run goes on with what auto picks (here checked where the CPU has neither unit)
if ! grep -qw -e amx_bf16 -e avx512_bf16 /proc/cpuinfo; then
  for mode in "amx:this CPU has no usable amx_bf16; using auto" "avx512:this CPU has no usable avx512_bf16; using auto" \
    "tiles:is not auto, amx, avx512, emulate, emulate-avx512 or off; using auto"; do
    env=${mode%%:*} want=${mode#*:}
    LATHE_CPU_BF16=$env "$LATHE" train mlp --max-steps 1 --batch-size 8 --limit-val-batches 0 --limit-test-batches 1 \
      --num-sanity-val-steps 0 --precision bf16-mixed >"$tmp/out" 2>"$tmp/err"
    run=$(tail -n 1 "$tmp/out" | sed -n 's/.*run_dir=\([^ ]*\).*/\1/p')
    n=$(grep -c -F -- "LATHE_CPU_BF16=$env" "$tmp/err")
    [ "$n" = 1 ] && grep -qF -- "$want" "$tmp/err" && grep -qx "kernels: 'cpu f32 (bf16 emulated by rounding)'" "$run/run.yaml" 2>/dev/null &&
      ok || bad "LATHE_CPU_BF16=$env: said $n times: $(cat "$tmp/err") run.yaml: $(cat "$run/run.yaml" 2>&1)"
  done
fi

# bad flags and words
expect_error "unknown experiment 'nope'" train nope
expect_error "--lr: '-0.1' must not be negative" train mnist_cnn --lr -0.1
expect_error "--lr: 'abc' is not a number" train mnist_cnn --lr abc
expect_error "--batch-size: '0' must be at least 1" train mnist_cnn --batch-size 0
expect_error "unknown flag '--bogus'" train mnist_cnn --bogus 1
expect_error "--max-epochs needs a value" train mnist_cnn --max-epochs
expect_error "--matmul-precision: 'low' is not one of highest|high|medium" train mnist_cnn --matmul-precision low
expect_error "unknown command 'fly'" fly
expect_error "--accelerator gpu" train mnist_cnn --accelerator gpu --max-steps 1
expect_error "--accelerator tpu: expected cpu, gpu or auto" train mnist_cnn --accelerator tpu --max-steps 1
expect_error "--devices 2: the cpu accelerator runs one device per process" train mnist_cnn --devices 2 --max-steps 1

# bad data folders: missing, truncated, wrong magic
mkdir -p "$tmp/empty" "$tmp/trunc" "$tmp/magic"
expect_error "train-images-idx3-ubyte" train mnist_cnn --data "$tmp/empty"
src=/usr/share/datasets/fashion-mnist
if [ -d "$src" ]; then
  cp "$src"/*.gz "$tmp/trunc/" && head -c 5000 "$src/train-images-idx3-ubyte.gz" >"$tmp/trunc/train-images-idx3-ubyte.gz"
  expect_error "train-images-idx3-ubyte.gz" train mnist_cnn --data "$tmp/trunc"
  cp "$src"/*.gz "$tmp/magic/" && rm "$tmp/magic/train-labels-idx1-ubyte.gz" &&
    printf '\x00\x00\x08\x07\x00\x00\x00\x01x' >"$tmp/magic/train-labels-idx1-ubyte"
  expect_error "train-labels-idx1-ubyte" train mnist_cnn --data "$tmp/magic"
fi

finish
