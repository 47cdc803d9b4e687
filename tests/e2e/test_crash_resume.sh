#!/usr/bin/env bash
# The crash-resume loop: a run with early stopping and an lr schedule is
# killed with SIGKILL again and again (after a step checkpoint, during a
# checkpoint write, after the final step's checkpoint), each time resumed with
# --resume last, and ends with weights (and optimizer state) bitwise equal to
# the uninterrupted run's, the same stop step and the same summary line.
#   usage: test_crash_resume.sh <lathe binary> <source dir>
. "$(dirname "$0")/lib.sh" "$1"
need_data

root=$tmp/logs
cfg=(mnist_cnn --headless --default-root-dir "$root" --batch-size 32 --limit-val-batches 2 --limit-test-batches 2
  --threads 2 --seed 7 --max-epochs 5 --limit-train-batches 10 --every-n-train-steps 5 --save-top-k -1 --save-last
  --early-stop-monitor val_loss --early-stop-mode max --early-stop-patience 1
  --lr-scheduler step:step_size=1,gamma=0.7)
summary() { tail -n 1 "$1" | tr ' ' '\n' | grep -E '^(steps|samples|train_loss|val_loss|val_acc|test_loss|test_acc|state)=' | tr '\n' ' '; }
data_section() {
  local n
  n=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
  tail -c +$((9 + n)) "$1"
}

"$LATHE" train "${cfg[@]}" --name ref >"$tmp/ref.out" 2>"$tmp/ref.err" || bad "reference run: $(tail -n 2 "$tmp/ref.err")"
REF=$root/ref/version_0/checkpoints/last.safetensors
grep -q 'stopped: early stopping' "$tmp/ref.err" && ok || bad "the reference run did not stop early"

# killed_when <what> <condition> [--resume last]: starts the run, kills it with
# SIGKILL as soon as the condition (shell code; $v: the run's checkpoints) holds
n=0
killed_when() {
  local what=$1 cond=$2
  shift 2
  n=$((n + 1))
  "$LATHE" train "${cfg[@]}" --name loop "$@" >"$tmp/k$n.out" 2>"$tmp/k$n.err" &
  pid=$!
  local v=$root/loop/version_$((n - 1))/checkpoints hit=
  for _ in $(seq 1 3000); do
    if eval "$cond"; then
      kill -9 "$pid" 2>/dev/null && hit=1
      break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.005
  done
  wait "$pid" 2>/dev/null
  pid=
  [ -n "$hit" ] && ok || echo "note: kill $n ($what) came after the run ended: $(tail -n 1 "$tmp/k$n.out")"
}
ckpt_step() { head -c 4096 "$1" 2>/dev/null | grep -ao '"step":"[0-9]*"' | head -n 1 | tr -dc 0-9; }
stop=$(kv steps "$tmp/ref.out")
killed_when "after the step-10 checkpoint" '[ -f "$v/epoch=0-step=10.safetensors" ]'
killed_when "during a checkpoint write" 'compgen -G "$v/*.tmp.*" >/dev/null' --resume last
killed_when "after the step-15 checkpoint" '[ -f "$v/epoch=1-step=15.safetensors" ]' --resume last
killed_when "after the final step's checkpoint" '[ "$(ckpt_step "$v/last.safetensors")" = "$stop" ]' --resume last
"$LATHE" train "${cfg[@]}" --name loop --resume last >"$tmp/end.out" 2>"$tmp/end.err"
rc=$?
[ $rc -eq 0 ] && ok || bad "the last resume: exit $rc: $(tail -n 2 "$tmp/end.err")"
[ "$(summary "$tmp/end.out")" = "$(summary "$tmp/ref.out")" ] && ok ||
  bad "summary: $(summary "$tmp/end.out") vs $(summary "$tmp/ref.out")"
END=$(ls -t "$root"/loop/version_*/checkpoints/last.safetensors | head -n 1)
cmp -s <(data_section "$REF") <(data_section "$END") && ok || bad "weights differ: $END vs $REF"
left=$(find "$root/loop" -name '*.tmp.*' -newer "$tmp/k$n.out" 2>/dev/null)
[ -z "$left" ] && ok || bad "temporary files left after the last resume: $left"
finish
