#!/usr/bin/env bash
# The data against the model, before training: small generated IDX folders.
#  1. test files of another shape than the training files: exit 2, one line;
#  2. images too small for the model (2x2 for mnist_cnn): exit 2, one line,
#     no step taken;
#  3. images whose training step needs more memory than the machine has
#     (1000x1000 for mnist_cnn): exit 2, one line naming the estimate and
#     the memory available;
#  4. images of another size than the experiment declares train, and say so;
#  5. a checkpoint of 28x28 inputs given to `lathe test` or `--resume` with
#     32x32 data: exit 2, one line.
#   usage: test_data_shapes.sh <lathe binary> <source dir>
. "$(dirname "$0")/lib.sh" "$1"

d=$tmp/data
mkidx "$d/mixed" train 64 28 28
mkidx "$d/mixed" t10k 16 32 32
mkidx "$d/tiny" train 64 2 2
mkidx "$d/tiny" t10k 16 2 2
mkidx "$d/big" train 60 1000 1000
mkidx "$d/big" t10k 4 1000 1000
mkidx "$d/d28" train 64 28 28
mkidx "$d/d28" t10k 16 28 28
mkidx "$d/d32" train 64 32 32
mkidx "$d/d32" t10k 16 32 32
root=$tmp/logs
run=(--headless --default-root-dir "$root" --max-epochs 1 --threads 2 --seed 3)

# refused <name> <regex> <command...>: exit 2, exactly one stderr line matching
refused() {
  local name=$1 re=$2
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ "$rc" -ne 2 ]; then
    bad "$name: exit $rc, want 2: $(cat "$tmp/err")"
  elif [ "$(wc -l <"$tmp/err")" -ne 1 ] || ! grep -qE "$re" "$tmp/err"; then
    bad "$name: want one line matching '$re', got: $(cat "$tmp/err")"
  else
    ok
  fi
}

refused "28x28 train, 32x32 test" 'test samples .* are 1x32x32, the training samples .* are 1x28x28' \
  "$LATHE" train mnist_cnn "${run[@]}" --data "$d/mixed"
refused "2x2 images" 'inputs of 1x2x2 do not fit mnist_cnn: layer conv2d_1' \
  "$LATHE" train mnist_cnn "${run[@]}" --data "$d/tiny"
refused "1000x1000 images" 'needs about [0-9.]+ [GM]B, the machine has [0-9.]+ [GM]B available' \
  "$LATHE" train mnist_cnn "${run[@]}" --data "$d/big"

# 32x32 images train, with a note naming both shapes
if "$LATHE" train mnist_cnn "${run[@]}" --data "$d/d32" >"$tmp/out" 2>"$tmp/err" &&
  grep -q 'note: data: inputs are 1x32x32, mnist_cnn declares 1x28x28' "$tmp/err"; then
  ok
else
  bad "32x32 images: $(cat "$tmp/err")"
fi
# 28x28 images: no note
"$LATHE" train mnist_cnn "${run[@]}" --data "$d/d28" --save-last >"$tmp/out" 2>"$tmp/err" || bad "28x28: $(cat "$tmp/err")"
if grep -q 'note: data' "$tmp/err"; then bad "28x28 images: a note: $(cat "$tmp/err")"; else ok; fi
rd=$(sed -n 's/.*run_dir=//p' "$tmp/out")
ck=$rd/checkpoints/last.safetensors
[ -f "$ck" ] || bad "no $ck"
refused "lathe test: 28x28 checkpoint on 32x32 data" 'a checkpoint of a model for 1x28x28 inputs; the data here is 1x32x32' \
  "$LATHE" test mnist_cnn --threads 2 --data "$d/d32" --ckpt "$ck"
refused "--resume: 28x28 checkpoint on 32x32 data" 'a checkpoint of a model for 1x28x28 inputs; the data here is 1x32x32' \
  "$LATHE" train mnist_cnn "${run[@]}" --max-epochs 2 --data "$d/d32" --resume "$ck"
# the same checkpoint on its own shape still tests
if "$LATHE" test mnist_cnn --threads 2 --data "$d/d28" --ckpt "$ck" >"$tmp/out" 2>"$tmp/err"; then ok; else bad "28x28 test: $(cat "$tmp/err")"; fi
finish
