#!/usr/bin/env bash
# Checkpoints through the lathe binary, as a user meets them:
#  1. a run killed with SIGKILL and resumed (--resume last, --resume FILE, and
#     from an epoch-end checkpoint) ends with weights (and optimizer state)
#     bitwise equal to an uninterrupted run's; with early stopping too, resumed
#     from a step checkpoint, from one written before its step's validation,
#     and from the final one (killed after writing it), the stop step and the
#     summary line are the uninterrupted run's;
#  2. a checkpoint loads into the equivalent PyTorch model with strict key
#     matching and scores what `lathe test --ckpt` scores (check_ckpt_torch.py);
#  3. missing, truncated, corrupted, non-safetensors and wrong-experiment files
#     given to `lathe test --ckpt` and `lathe train --resume` are refused with
#     exit status 2 and one line, and leave the good file alone;
#  4. a checkpoint write that fails (file size limit) keeps the previous
#     last.safetensors loadable and leaves no temporary file.
# Python parts use $LATHE_PYTHON, else /opt/lathe-venv/bin/python, when it has
# numpy and safetensors (torch optional); otherwise they are skipped with a note.
#   usage: test_checkpoints.sh <lathe binary> <source dir>
. "$(dirname "$0")/lib.sh" "$1"
SRC=$2
need_data

PY=${LATHE_PYTHON:-/opt/lathe-venv/bin/python}
have_st=0
if [ -x "$PY" ] && "$PY" -c 'import numpy, safetensors.numpy' >/dev/null 2>&1; then
  have_st=1
else
  echo "note: no Python with numpy and safetensors at $PY: weights compared in shell, PyTorch checks skipped"
fi

root=$tmp/logs
common=(--headless --default-root-dir "$root" --batch-size 32 --limit-val-batches 2 --limit-test-batches 2
  --threads 2 --seed 11)
# mnist_cnn has dropout, so an exact resume also needs the RNG state back
cnn=(mnist_cnn "${common[@]}" --limit-train-batches 10 --max-epochs 3 --save-last --every-n-train-steps 2)
TOTAL=30

# ckpt_step FILE: the "step" of a checkpoint's metadata (empty when unreadable)
ckpt_step() { head -c 4096 "$1" 2>/dev/null | grep -ao '"step":"[0-9]*"' | head -n 1 | tr -dc 0-9; }
# run_dir ERRFILE: the run folder from the first stderr line
run_dir() { sed -n 's/^lathe: run \(.*\), control socket .*/\1/p' "$1" | head -n 1; }
# data_section FILE: the tensor bytes after the safetensors header
data_section() {
  local n
  n=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
  tail -c +$((9 + n)) "$1"
}

# same_weights A B WHAT: every tensor (model and optimizer state) bitwise equal
same_weights() {
  if [ $have_st -eq 1 ]; then
    "$PY" - "$1" "$2" >"$tmp/cmp.out" 2>&1 <<'EOF'
import sys
import numpy as np
from safetensors.numpy import load_file
a, b = load_file(sys.argv[1]), load_file(sys.argv[2])
bad = sorted(set(a) ^ set(b))
for k in sorted(set(a) & set(b)):
    if a[k].dtype != b[k].dtype or a[k].shape != b[k].shape or not np.array_equal(a[k], b[k]):
        d = np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)).max() if a[k].shape == b[k].shape else "shape"
        bad.append(f"{k} (max abs diff {d})")
model = [k for k in a if not k.startswith("optimizer.")]
print(f"{len(a)} tensors ({len(model)} model), differing: {bad}")
sys.exit(1 if bad or not model else 0)
EOF
  else
    cmp -s <(data_section "$1") <(data_section "$2") >"$tmp/cmp.out" 2>&1
  fi
  [ $? -eq 0 ] && ok || bad "$3: final weights differ from the uninterrupted run's: $(cat "$tmp/cmp.out")"
}

# ---- 1. SIGKILL and resume -------------------------------------------------
# A keeps every checkpoint (--save-top-k -1 changes nothing in the training)
"$LATHE" train "${cnn[@]}" --name full --save-top-k -1 >"$tmp/a.out" 2>"$tmp/a.err"
rc=$?
A=$root/full/version_0/checkpoints/last.safetensors
[ $rc -eq 0 ] && [ "$(kv steps "$tmp/a.out")" = $TOTAL ] && [ "$(ckpt_step "$A")" = $TOTAL ] && ok ||
  bad "run A: exit $rc, last checkpoint step '$(ckpt_step "$A")': $(tail -n 3 "$tmp/a.err")"

"$LATHE" train "${cnn[@]}" >"$tmp/b.out" 2>"$tmp/b.err" &
pid=$!
B=$root/mnist_cnn/version_0/checkpoints/last.safetensors
for _ in $(seq 1 1200); do
  s=$(ckpt_step "$B")
  if [ -n "$s" ] && [ "$s" -gt 6 ]; then
    kill -9 "$pid"
    break
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
{ wait "$pid"; } 2>/dev/null # no "Killed" line from bash
rc=$?
pid=
sb=$(ckpt_step "$B")
echo "note: run B killed with its last.safetensors at step $sb of $TOTAL"
[ $rc -eq 137 ] && ok || bad "run B was not killed mid-run (exit $rc): $(tail -n 2 "$tmp/b.err")"
[ -n "$sb" ] && [ "$sb" -gt 6 ] && [ "$sb" -lt $TOTAL ] && ok || bad "killed run's last.safetensors at step '$sb'"
cp "$B" "$tmp/killed.safetensors" 2>/dev/null

# --resume last: the newest last.safetensors under <root>/mnist_cnn, i.e. B's
"$LATHE" train "${cnn[@]}" --resume last >"$tmp/c.out" 2>"$tmp/c.err"
rc=$?
C=$(run_dir "$tmp/c.err")/checkpoints/last.safetensors
[ $rc -eq 0 ] && ok || bad "--resume last exited $rc: $(cat "$tmp/c.err")"
grep -qxF "lathe: resuming from $B" "$tmp/c.err" && ok || bad "--resume last did not name $B: $(head -n 2 "$tmp/c.err")"
[ "$(kv steps "$tmp/c.out")" = $TOTAL ] && [ "$(kv samples "$tmp/c.out")" = $((TOTAL * 32)) ] &&
  [ "$(kv state "$tmp/c.out")" = done ] && ok || bad "--resume last summary: $(tail -n 1 "$tmp/c.out")"
[ -f "$C" ] && same_weights "$A" "$C" "--resume last from step $sb" || bad "no $C"
[ "$(kv test_loss "$tmp/c.out")" = "$(kv test_loss "$tmp/a.out")" ] && ok ||
  bad "--resume last test_loss $(kv test_loss "$tmp/c.out") != $(kv test_loss "$tmp/a.out")"

# --resume FILE: the killed run's file itself, which resuming must not change
cmp -s "$B" "$tmp/killed.safetensors" && ok || bad "resuming changed $B"
"$LATHE" train "${cnn[@]}" --resume "$B" >"$tmp/d.out" 2>"$tmp/d.err"
rc=$?
D=$(run_dir "$tmp/d.err")/checkpoints/last.safetensors
[ $rc -eq 0 ] && [ "$(kv steps "$tmp/d.out")" = $TOTAL ] && [ "$(kv state "$tmp/d.out")" = done ] && ok ||
  bad "--resume FILE exited $rc: $(tail -n 1 "$tmp/d.out") $(tail -n 2 "$tmp/d.err")"
[ -f "$D" ] && [ "$D" != "$C" ] && same_weights "$A" "$D" "--resume FILE from step $sb" || bad "no new $D"

# --resume from A's own checkpoint at the end of the first epoch (step 10,
# written before that epoch's validation)
E=$root/full/version_0/checkpoints/epoch=0-step=10.safetensors
"$LATHE" train "${cnn[@]}" --resume "$E" >"$tmp/e.out" 2>"$tmp/e.err"
rc=$?
F=$(run_dir "$tmp/e.err")/checkpoints/last.safetensors
[ $rc -eq 0 ] && [ "$(kv steps "$tmp/e.out")" = $TOTAL ] && [ "$(kv state "$tmp/e.out")" = done ] && ok ||
  bad "--resume from an epoch end exited $rc: $(tail -n 1 "$tmp/e.out") $(tail -n 2 "$tmp/e.err")"
[ -f "$F" ] && [ "$F" != "$D" ] && same_weights "$A" "$F" "--resume from the epoch end at step 10" || bad "no new $F"
[ "$(kv val_loss "$tmp/e.out")|$(kv test_loss "$tmp/e.out")" = "$(kv val_loss "$tmp/a.out")|$(kv test_loss "$tmp/a.out")" ] &&
  ok || bad "--resume from an epoch end: $(tail -n 1 "$tmp/e.out") vs $(tail -n 1 "$tmp/a.out")"

# ---- 1b. early stopping across a resume ------------------------------------
# val_loss falls, so mode max with patience 1 stops at the second validation
# (step 20); checkpoints every 5 steps, the one at step 10 written after the
# epoch's last step but before its validation
es=(mnist_cnn --headless --default-root-dir "$root" --seed 7 --threads 1 --max-epochs 5 --limit-train-batches 10
  --limit-val-batches 3 --limit-test-batches 20 --every-n-train-steps 5 --save-top-k -1 --save-last
  --early-stop-monitor val_loss --early-stop-mode max --early-stop-patience 1)
# summary: the summary line without its timing and folder
summary() { tail -n 1 "$1" | tr ' ' '\n' | grep -E '^(steps|samples|train_loss|val_loss|val_acc|test_loss|test_acc|state)=' | tr '\n' ' '; }
"$LATHE" train "${es[@]}" --name es >"$tmp/es.out" 2>"$tmp/es.err"
rc=$?
ESD=$root/es/version_0/checkpoints
[ $rc -eq 0 ] && [ "$(kv steps "$tmp/es.out")" = 20 ] && grep -q 'stopped: early stopping' "$tmp/es.err" && ok ||
  bad "early-stopped run: $(tail -n 1 "$tmp/es.out") $(tail -n 2 "$tmp/es.err")"
for s in 10 15; do
  "$LATHE" train "${es[@]}" --name es_from$s --resume "$ESD/epoch=$((s > 10 ? 1 : 0))-step=$s.safetensors" \
    >"$tmp/es$s.out" 2>"$tmp/es$s.err"
  [ $? -eq 0 ] && [ "$(summary "$tmp/es$s.out")" = "$(summary "$tmp/es.out")" ] && ok ||
    bad "early stopping resumed from step $s: $(summary "$tmp/es$s.out") vs $(summary "$tmp/es.out"): $(tail -n 2 "$tmp/es$s.err")"
  same_weights "$ESD/last.safetensors" "$root/es_from$s/version_0/checkpoints/last.safetensors" \
    "early stopping resumed from step $s"
done
# killed with SIGKILL once its final checkpoint (step 20) is written, during
# the validation and test that follow it
"$LATHE" train "${es[@]}" --name es_kill >"$tmp/ek.out" 2>"$tmp/ek.err" &
pid=$!
K=$root/es_kill/version_0/checkpoints/last.safetensors
for _ in $(seq 1 3000); do
  if [ "$(ckpt_step "$K")" = 20 ]; then
    kill -9 "$pid"
    break
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.01
done
{ wait "$pid"; } 2>/dev/null
rc=$?
pid=
[ $rc -eq 137 ] || echo "note: the early-stopped run ended (exit $rc) before it could be killed after step 20"
[ "$(ckpt_step "$K")" = 20 ] && ok || bad "killed run's last.safetensors at step '$(ckpt_step "$K")'"
"$LATHE" train "${es[@]}" --name es_after_kill --resume "$K" >"$tmp/ea.out" 2>"$tmp/ea.err"
[ $? -eq 0 ] && [ "$(summary "$tmp/ea.out")" = "$(summary "$tmp/es.out")" ] && ok ||
  bad "resumed after the final checkpoint: $(summary "$tmp/ea.out") vs $(summary "$tmp/es.out"): $(tail -n 2 "$tmp/ea.err")"

# ---- 2. the checkpoint in PyTorch ------------------------------------------
# a mlp checkpoint trained a little longer, also the good file of part 3
"$LATHE" train mlp "${common[@]}" --limit-train-batches 50 --max-epochs 1 --save-last --name good \
  >"$tmp/g.out" 2>"$tmp/g.err" || bad "mlp run: $(tail -n 2 "$tmp/g.err")"
G=$root/good/version_0/checkpoints/last.safetensors
cp "$G" "$tmp/good.copy" && cp "$A" "$tmp/cnn.copy" && ok || bad "no checkpoints to check"
# lathe test --json: the same figures as one JSON object
"$LATHE" test mlp --ckpt "$G" --limit-test-batches 4 --threads 2 >"$tmp/tk.out" 2>&1 &&
  "$LATHE" test mlp --ckpt "$G" --limit-test-batches 4 --threads 2 --json >"$tmp/tj.out" 2>&1
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); kv=dict(w.split("=",1) for w in open(sys.argv[2]).read().split())
assert d["samples"]==int(kv["samples"]) and "%.6f"%d["test_loss"]==kv["test_loss"] and d["ckpt"]==kv["ckpt"], (d, kv)' \
  "$tmp/tj.out" "$tmp/tk.out" && ok || bad "lathe test --json: $(cat "$tmp/tj.out") vs $(cat "$tmp/tk.out")"
if [ $have_st -eq 1 ]; then
  for pair in "mlp $G" "mnist_cnn $A"; do
    set -- $pair
    "$LATHE" test "$1" --ckpt "$2" --batch-size 100 --limit-test-batches 10 --threads 2 >"$tmp/t.out" 2>"$tmp/t.err"
    [ $? -eq 0 ] && [ "$(kv samples "$tmp/t.out")" = 1000 ] && ok || bad "lathe test $1: $(cat "$tmp/t.out" "$tmp/t.err")"
    "$PY" "$SRC/tests/e2e/check_ckpt_torch.py" "$2" "$1" 1000 "$(kv test_acc "$tmp/t.out")" \
      "$(kv test_loss "$tmp/t.out")" >"$tmp/py.out" 2>&1
    [ $? -eq 0 ] && ok || bad "check_ckpt_torch.py $1: $(grep -v '^ok' "$tmp/py.out")"
    grep -q 'torch part skipped' "$tmp/py.out" && echo "note: $1: torch part skipped (no torch in $PY)"
  done
else
  echo "note: PyTorch load checks skipped"
fi

# ---- 3. bad checkpoints through the CLI ------------------------------------
# expect_refusal <stderr pattern> <lathe args...>: exit 2, exactly one stderr line matching
expect_refusal() {
  local pat=$1
  shift
  "$LATHE" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ $rc -ne 2 ]; then bad "lathe $* exited $rc, expected 2: $(head -c 300 "$tmp/err")"; return; fi
  if [ "$(wc -l <"$tmp/err")" -ne 1 ]; then bad "lathe $*: expected one stderr line, got: $(cat "$tmp/err")"; return; fi
  grep -qE -- "$pat" "$tmp/err" && ok || bad "lathe $*: error does not match /$pat/: $(cat "$tmp/err")"
}
mkdir -p "$tmp/bad"
size=$(stat -c %s "$G")
head -c $((size / 2)) "$G" >"$tmp/bad/truncated.safetensors"
cp "$G" "$tmp/bad/flipped.safetensors"
off=$(($(od -An -t u8 -N 8 "$G" | tr -d ' ') + 8 + 1000)) # a byte of the first tensor's data
b=$(od -An -t u1 -j $off -N 1 "$G" | tr -d ' ')
printf "\\$(printf %03o $((b ^ 0xff)))" | dd of="$tmp/bad/flipped.safetensors" bs=1 seek=$off conv=notrunc 2>/dev/null
cp "$SRC/README.md" "$tmp/bad/text.safetensors"
cases=("$tmp/bad/missing.safetensors|No such file|not found|does not exist|cannot open"
  "$tmp/bad/truncated.safetensors|truncat|out of range|short|too small"
  "$tmp/bad/flipped.safetensors|CRC|crc|corrupt|checksum"
  "$tmp/bad/text.safetensors|not a safetensors|header|truncat"
  "$A|mnist_cnn")
before=$(ls "$root/mlp" 2>/dev/null | wc -l)
for c in "${cases[@]}"; do
  x=${c%%|*} why=${c#*|}
  expect_refusal "$(basename "$x").*($why)" test mlp --ckpt "$x" --threads 2
  expect_refusal "$(basename "$x").*($why)" train mlp "${common[@]}" --max-steps 2 --resume "$x"
done
[ "$(ls "$root/mlp" 2>/dev/null | wc -l)" = "$before" ] && ok || bad "a refused --resume left run folders: $(ls "$root/mlp")"
expect_refusal "no run" train mlp "${common[@]}" --default-root-dir "$tmp/empty" --resume last
cmp -s "$G" "$tmp/good.copy" && ok || bad "$G changed"
cmp -s "$A" "$tmp/cnn.copy" && ok || bad "$A changed"
"$LATHE" test mlp --ckpt "$G" --threads 2 >"$tmp/out" 2>"$tmp/err" && ok || bad "good checkpoint no longer loads: $(cat "$tmp/err")"

# ---- 4. a failed write keeps the previous checkpoint -----------------------
lim=(mlp "${common[@]}" --name lim --version 0 --limit-train-batches 8 --save-last --every-n-train-steps 1)
"$LATHE" train "${lim[@]}" --max-epochs 1 >"$tmp/l1.out" 2>"$tmp/l1.err" || bad "limit run 1: $(tail -n 2 "$tmp/l1.err")"
L=$root/lim/version_0/checkpoints/last.safetensors
cp "$L" "$tmp/lim.copy"
blocks=$(($(stat -c %s "$L") / 2048)) # 1 KiB blocks: half a checkpoint fits, the run's logs do
# a different run into the same folder: every checkpoint write now stops at
# EFBIG (SIGXFSZ ignored, as a process under a quota or on a full disk sees it)
(
  trap '' XFSZ
  ulimit -f $blocks
  exec "$LATHE" train "${lim[@]}" --max-epochs 2 --seed 12
) >"$tmp/l2.out" 2>"$tmp/l2.err"
rc=$?
[ $rc -eq 0 ] || [ $rc -eq 1 ] && ok || bad "run under ulimit -f $blocks ended with exit $rc (crashed): $(tail -n 3 "$tmp/l2.err")"
if [ $rc -eq 0 ]; then
  [ "$(kv state "$tmp/l2.out")" = done ] && [ "$(kv steps "$tmp/l2.out")" = 16 ] && ok ||
    bad "run under the limit: $(tail -n 1 "$tmp/l2.out")"
fi
grep -q 'last.safetensors.*\(too large\|write\|failed\)' "$tmp/l2.err" && ok ||
  bad "no message names the failed last.safetensors write: $(tail -n 3 "$tmp/l2.err")"
cmp -s "$L" "$tmp/lim.copy" && ok || bad "last.safetensors changed although no write could finish"
for f in "$root"/lim/version_0/checkpoints/*.safetensors; do
  "$LATHE" test mlp --ckpt "$f" --threads 2 >"$tmp/out" 2>"$tmp/err" && ok || bad "lathe test --ckpt $f: $(cat "$tmp/err")"
done
left=$(find "$root/lim" -name '*.tmp.*')
[ -z "$left" ] && ok || bad "temporary files left: $left"

# a sanitizer build (-DLATHE_SANITIZE=ON) reports on stderr
san=$(grep -l 'runtime error:\|AddressSanitizer\|LeakSanitizer' "$tmp"/*.err "$tmp"/*.out 2>/dev/null)
[ -z "$san" ] && ok || bad "sanitizer reports in $san: $(grep -h -m 3 'runtime error:\|Sanitizer' $san)"

finish
