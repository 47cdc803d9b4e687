#!/usr/bin/env bash
# Data-parallel runs under a real mpirun -np 2, what rank 0 shares with the
# others beyond the gradients: a `validate` command runs on every rank at the
# same step boundary (LATHE_DIST_TRACE) and its figures are the whole
# validation set's (the same as the epoch end's validation of those weights,
# metrics.csv, full precision); a model's buffers (mlp_bn's batch-norm running
# statistics) are rank 0's on every rank, so that the run's test figures are
# those of one process testing rank 0's checkpoint. Bad input every rank finds
# alike (flags that differ between the ranks, a validation set of fewer rows
# than ranks) ends every rank at setup: rank 0's one line, mpirun exits 2.
#   usage: test_ddp_sync.sh <lathe binary> <source dir>
. "$(dirname "$0")/lib.sh" "$1"
need_data
need_mpi
common=(--headless --seed 1 --threads 1 --limit-val-batches 3 --limit-test-batches 2 --strategy ddp --devices 2)

# ---- validate: rank 0 decides, every rank evaluates its share at that step ----
mkdir -p "$tmp/trace"
LATHE_DIST_TRACE="$tmp/trace" timeout 120 "${MPI[@]}" "$LATHE" train mlp_sgd "${common[@]}" --batch-size 16 \
  --max-epochs 1000 --limit-train-batches 5 --default-root-dir "$tmp/val" >"$tmp/val.out" 2>"$tmp/val.err" &
pid=$!
run="$tmp/val/mlp_sgd/version_0"
for _ in $(seq 1 300); do [ -S "$run/control.sock" ] && break; sleep 0.1; done
[ -S "$run/control.sock" ] && ok || bad "no control socket: $(tail -c 400 "$tmp/val.err")"
"$LATHE" ctl "$run" pause >"$tmp/p.out" 2>&1 && ok || bad "pause: $(cat "$tmp/p.out")"
p=$(sed -n 's/^step=//p' "$tmp/p.out" | head -n 1)
# on to the next epoch's end (5 steps an epoch): its validation has run there
k=$((5 - ${p:-0} % 5))
"$LATHE" ctl "$run" step "$k" >"$tmp/s.out" 2>&1 && ok || bad "step $k: $(cat "$tmp/s.out")"
at=$(sed -n 's/^step=//p' "$tmp/s.out" | head -n 1)
[ -n "$p" ] && [ "$at" = $((p + k)) ] && ok || bad "paused at step '$p', stepped $k, now at '$at'"
"$LATHE" ctl "$run" validate >"$tmp/v.out" 2>&1 && ok || bad "validate refused: $(cat "$tmp/v.out")"
grep -q "^val_loss=[0-9.e+-]*$" "$tmp/v.out" && grep -q "^step=$at$" "$tmp/v.out" && ok ||
  bad "validate reply: $(cat "$tmp/v.out")"
"$LATHE" ctl "$run" stop >/dev/null 2>&1
wait $pid
rc=$?
pid=
[ $rc -eq 0 ] && ok || bad "the validated run exited $rc: $(tail -c 600 "$tmp/val.err")"
v0=$(grep "validate=" "$tmp/trace/rank0.log" 2>/dev/null)
v1=$(grep "validate=" "$tmp/trace/rank1.log" 2>/dev/null)
[ "$v0" = "step=$at validate=1" ] && [ "$v0" = "$v1" ] && ok || bad "validate on rank 0 '$v0', rank 1 '$v1'"
# metrics.csv: the epoch end's row, then the command's, at the same step
rows=$(awk -F, -v s="$at" '$2 == s && $6 != "" {print $6, $7}' "$run/metrics.csv")
[ "$(printf '%s\n' "$rows" | wc -l)" = 2 ] && [ "$(printf '%s\n' "$rows" | sort -u | wc -l)" = 1 ] && ok ||
  bad "val rows at step $at (epoch end, validate): $rows"
want=$(printf '%s\n' "$rows" | head -n 1 | cut -d' ' -f1)
got=$(sed -n 's/^val_loss=//p' "$tmp/v.out")
# the reply prints 6 significant digits; the rows above are compared exactly
python3 -c 'import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); assert abs(a-b)<=5e-6*abs(a), (a,b)' \
  "${want:-nan}" "${got:-0}" 2>/dev/null && ok || bad "validate said val_loss=$got, the epoch end $want"

# ---- buffers: rank 0's running statistics on every rank ----
timeout 120 "${MPI[@]}" "$LATHE" train mlp_bn "${common[@]}" --batch-size 64 --max-epochs 2 --limit-train-batches 6 \
  --save-last --default-root-dir "$tmp/bn" >"$tmp/bn.out" 2>"$tmp/bn.err"
rc=$?
[ $rc -eq 0 ] && ok || bad "mlp_bn on 2 ranks exited $rc: $(tail -c 600 "$tmp/bn.err")"
[ "$(grep -c "weights_crc=[0-9a-f]\{8\} ranks_agree=1$" "$tmp/bn.err")" = 2 ] && ok ||
  bad "mlp_bn: $(grep weights_crc "$tmp/bn.err")"
"$LATHE" test mlp_bn --ckpt "$tmp/bn/mlp_bn/version_0/checkpoints/last.safetensors" --limit-test-batches 2 \
  --batch-size 64 --threads 1 >"$tmp/bt.out" 2>"$tmp/bt.err" || bad "lathe test: $(cat "$tmp/bt.err")"
two=$(kv test_loss "$tmp/bn.out")
one=$(kv test_loss "$tmp/bt.out")
[ -n "$two" ] && [ "$two" = "$one" ] && ok || bad "test_loss: 2 ranks $two, one process on rank 0's checkpoint $one"

# ---- bad input found alike by every rank: rank 0's one line, exit 2, no hang ----
bad_common=(--headless --seed 1 --threads 1 --max-epochs 1 --limit-train-batches 3 --batch-size 16 --strategy ddp
  --devices 2)
timeout 60 "${LAUNCH[@]}" -np 1 "$LATHE" train mlp_sgd "${bad_common[@]}" --lr 0.1 --default-root-dir "$tmp/mm" : \
  -np 1 "$LATHE" train mlp_sgd "${bad_common[@]}" --lr 0.2 --default-root-dir "$tmp/mm" >"$tmp/mm.out" 2>"$tmp/mm.err"
rc=$?
[ $rc -eq 2 ] && [ "$(grep -c '^lathe: ' "$tmp/mm.err")" = 1 ] &&
  grep -q "^lathe: rank 1 runs another experiment or other flags than rank 0 (every rank needs the same)$" "$tmp/mm.err" &&
  ok || bad "ranks with other flags: exit $rc, $(grep -v '^--' "$tmp/mm.err" | head -c 600)"
timeout 60 "${MPI[@]}" "$LATHE" train mlp_sgd "${bad_common[@]}" --val-split 0.00001 --default-root-dir "$tmp/vs" \
  >"$tmp/vs.out" 2>"$tmp/vs.err"
rc=$?
[ $rc -eq 2 ] && [ "$(grep -c '^lathe: ' "$tmp/vs.err")" = 1 ] &&
  grep -q "^lathe: a validation set of 1 row cannot be shared by 2 ranks (each needs one)$" "$tmp/vs.err" && ok ||
  bad "a 1-row validation set on 2 ranks: exit $rc, $(grep -v '^--' "$tmp/vs.err" | head -c 600)"
[ ! -d "$tmp/vs" ] && ok || bad "a refused start made a run folder: $(find "$tmp/vs")"

finish
