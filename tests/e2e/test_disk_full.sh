#!/usr/bin/env bash
# A full disk while a run writes checkpoints, on a small tmpfs (as root), or
# under `ulimit -f` where mount is refused (EFBIG: lathe ignores SIGXFSZ):
#  1. no checkpoint write can finish: each failure is told when it happens
#     ("warning at step S" on stderr, before the summary line), the run ends
#     failed with exit 1 and says why, and the checkpoint it resumed from
#     still loads;
#  2. (tmpfs) room for one checkpoint: the first top-k checkpoint is written,
#     the later ones fail; the first stays listed and on disk and loads, the
#     run ends done, and no temporary file is left;
#  3. a temporary file of a killed write (a dead pid) is removed when a run
#     resumes from that folder; one of a live process is left alone;
#  4. --resume last with no last.safetensors says what the newest run folder
#     shows (killed, the step, the checkpoint it has).
#   usage: test_disk_full.sh <lathe binary> <source dir>
. "$(dirname "$0")/lib.sh" "$1"
need_data

mnt=$tmp/small
mkdir -p "$mnt"
mode=
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=6m tmpfs "$mnt" 2>/dev/null; then
  mode=tmpfs
  trap 'umount "$mnt" 2>/dev/null; e2e_cleanup' EXIT
elif (ulimit -f 1024) 2>/dev/null; then
  mode=ulimit
else
  echo "skipped: neither a tmpfs mount nor ulimit -f works here"
  echo "0 passed, 0 failed"
  exit 0
fi
echo "note: a full disk by $mode"

base=(--headless --threads 2 --seed 5 --limit-val-batches 1 --limit-test-batches 1 --batch-size 32)
# a good checkpoint on the ordinary disk
"$LATHE" train mlp "${base[@]}" --default-root-dir "$tmp/good" --max-epochs 1 --limit-train-batches 4 --save-last \
  >"$tmp/g.out" 2>"$tmp/g.err" || bad "good run: $(tail -n 2 "$tmp/g.err")"
good=$(sed -n 's/.*run_dir=//p' "$tmp/g.out")/checkpoints/last.safetensors
cp "$good" "$tmp/good.copy"

# 1. nothing can be written
full_run() { # full_run <out> <err> <lathe args...>
  local out=$1 err=$2
  shift 2
  if [ "$mode" = tmpfs ]; then
    head -c 5m /dev/zero >"$mnt/filler" 2>/dev/null # leaves under 1 MB: no checkpoint fits
    "$LATHE" "$@" --default-root-dir "$mnt/logs" >"$out" 2>"$err"
  else
    (
      trap '' XFSZ
      ulimit -f 1024
      exec "$LATHE" "$@" --default-root-dir "$tmp/lim"
    ) >"$out" 2>"$err"
  fi
}
full_run "$tmp/f.out" "$tmp/f.err" train mlp "${base[@]}" --resume "$good" --max-epochs 2 --limit-train-batches 4 \
  --save-last --every-n-train-steps 2
rc=$?
[ $rc -eq 1 ] && ok || bad "nothing written: exit $rc, want 1: $(tail -n 3 "$tmp/f.err")"
[ "$(kv state "$tmp/f.out")" = failed ] && ok || bad "nothing written: $(tail -n 1 "$tmp/f.out")"
grep -q 'warning at step 6: .*safetensors' "$tmp/f.err" && ok ||
  bad "the first failed write is not told at its step: $(head -n 5 "$tmp/f.err")"
grep -q 'no checkpoint of this run could be written' "$tmp/f.err" && ok || bad "no reason: $(tail -n 2 "$tmp/f.err")"
cmp -s "$good" "$tmp/good.copy" && ok || bad "the resumed-from checkpoint changed"
"$LATHE" test mlp --threads 2 --ckpt "$good" >/dev/null 2>"$tmp/err" && ok || bad "good checkpoint: $(cat "$tmp/err")"
rm -f "$mnt/filler"

# 2. room for one checkpoint (tmpfs only: a file size limit refuses all or none)
if [ "$mode" = tmpfs ]; then
  rm -rf "$mnt/logs"
  "$LATHE" train mlp "${base[@]}" --default-root-dir "$mnt/logs" --max-epochs 1 --limit-train-batches 6 --save-last \
    --every-n-train-steps 2 >"$tmp/p.out" 2>"$tmp/p.err"
  rc=$?
  [ $rc -eq 0 ] && [ "$(kv state "$tmp/p.out")" = done ] && ok || bad "one fits: exit $rc: $(tail -n 2 "$tmp/p.err")"
  grep -q 'warning at step 2: .*last.safetensors' "$tmp/p.err" && ok || bad "step 2's failed last: $(cat "$tmp/p.err")"
  grep -q 'warning at step 4: .*epoch=0-step=4' "$tmp/p.err" && ok || bad "step 4's failed write: $(cat "$tmp/p.err")"
  ck=$mnt/logs/mlp/version_0/checkpoints
  [ -f "$ck/epoch=0-step=2.safetensors" ] && ok || bad "the first top-k checkpoint is gone: $(ls "$ck")"
  "$LATHE" test mlp --threads 2 --ckpt "$ck/epoch=0-step=2.safetensors" >/dev/null 2>"$tmp/err" && ok ||
    bad "the kept checkpoint: $(cat "$tmp/err")"
  # the checkpoint still names it as its top-k entry: a resume keeps it
  head -c 8192 "$ck/epoch=0-step=2.safetensors" | grep -aq '"model_checkpoint.kept":"epoch=0-step=2' && ok ||
    bad "top-k list"
  left=$(find "$mnt" -name '*.tmp.*')
  [ -z "$left" ] && ok || bad "temporary files left: $left"
else
  echo "note: part 2 (room for one checkpoint) needs a tmpfs: skipped"
fi

# 3. stale temporary files
ckd=$(dirname "$good")
sleep 60 &
live=$!
: >"$ckd/last.safetensors.tmp.999999999"
: >"$ckd/last.safetensors.tmp.$live"
"$LATHE" train mlp "${base[@]}" --default-root-dir "$tmp/good" --resume "$good" --max-epochs 1 \
  --limit-train-batches 4 >"$tmp/s.out" 2>"$tmp/s.err" || bad "resume: $(tail -n 2 "$tmp/s.err")"
[ ! -e "$ckd/last.safetensors.tmp.999999999" ] && ok || bad "a dead pid's temporary file is left"
[ -e "$ckd/last.safetensors.tmp.$live" ] && ok || bad "a live pid's temporary file was removed"
grep -q 'removed 1 temporary file' "$tmp/s.err" && ok || bad "no note of the removal: $(cat "$tmp/s.err")"
kill "$live" 2>/dev/null
wait "$live" 2>/dev/null

# 4. --resume last before the first last.safetensors: killed after its first checkpoint (the
#    run is long enough that the kill always lands before its end, however fast the machine)
"$LATHE" train mlp "${base[@]}" --default-root-dir "$tmp/k" --max-epochs 1 --limit-train-batches 1000 --save-last \
  --every-n-train-steps 4 --log-every-n-steps 1 >"$tmp/k.out" 2>"$tmp/k.err" &
pid=$!
for _ in $(seq 1 300); do # any epoch checkpoint: the newest replaces the one before it
  compgen -G "$tmp/k/mlp/version_0/checkpoints/epoch=0-step=*.safetensors" >/dev/null && break
  sleep 0.02
done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
pid=
rm -f "$tmp/k/mlp/version_0/checkpoints/last.safetensors" # as if killed before it
"$LATHE" train mlp "${base[@]}" --default-root-dir "$tmp/k" --resume last >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && ok || bad "--resume last: exit $rc: $(cat "$tmp/err")"
grep -q 'version_0, was killed at step [0-9]* before its first last.safetensors: --resume .*epoch=0-step=[0-9]*\.safetensors' \
  "$tmp/err" &&
  ok || bad "--resume last does not say what happened: $(cat "$tmp/err")"
finish
