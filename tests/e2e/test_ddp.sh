#!/usr/bin/env bash
# Data-parallel training on CPU ranks under a real mpirun (Open MPI):
# the launcher checks (exit 2, one line); 2 ranks x batch 64 reach the weights
# of 1 rank x batch 128 within 1e-5 relative, the ranks' weights bitwise equal
# after every epoch (weights_crc ... ranks_agree=1); a pause and a `set lr`
# land at the same step on both ranks (LATHE_DIST_TRACE); SIGKILL of rank 1
# ends the run within a bounded time and the last checkpoint loads; `lathe ctl
# status` has a ranks= row per rank and their total (--json: "ranks", 2 entries).
#   usage: test_ddp.sh <lathe binary> <source dir>
. "$(dirname "$0")/lib.sh" "$1"
src=$2
need_data
need_mpi
common=(--headless --seed 1 --threads 1 --limit-val-batches 2 --limit-test-batches 2)

# ---- the launcher checks ----
"$LATHE" train mlp_sgd "${common[@]}" --strategy ddp --devices 2 >"$tmp/o" 2>"$tmp/e"
rc=$?
[ $rc -eq 2 ] && [ "$(wc -l <"$tmp/e")" -eq 1 ] && grep -q "launched by mpirun or srun: mpirun -np 2 " "$tmp/e" && ok ||
  bad "ddp without a launcher: exit $rc, $(cat "$tmp/e")"
timeout 60 "${MPI[@]}" "$LATHE" train mlp_sgd "${common[@]}" --strategy ddp --devices 3 >"$tmp/o" 2>"$tmp/e"
grep -q "mpirun started 2 ranks but --devices 3 x --num-nodes 1 is 3" "$tmp/e" && ok ||
  bad "world mismatch not refused: $(head -c 600 "$tmp/e")"

# ---- equivalence and the per-epoch checksum ----
eq=(--max-epochs 2 --limit-train-batches 6 --save-last --lr 0.05)
timeout 60 "${MPI[@]}" "$LATHE" train mlp_sgd "${common[@]}" "${eq[@]}" --batch-size 64 --strategy ddp --devices 2 \
  --default-root-dir "$tmp/two" >"$tmp/two.out" 2>"$tmp/two.err"
rc=$?
[ $rc -eq 0 ] && ok || bad "2 ranks exited $rc: $(tail -c 800 "$tmp/two.err")"
"$LATHE" train mlp_sgd "${common[@]}" "${eq[@]}" --batch-size 128 --default-root-dir "$tmp/one" >"$tmp/one.out" 2>"$tmp/one.err" ||
  bad "1 rank failed: $(tail -c 400 "$tmp/one.err")"
n=$(grep -c "weights_crc=[0-9a-f]\{8\} ranks_agree=1$" "$tmp/two.err")
[ "$n" = 2 ] && ok || bad "expected 2 epochs with ranks_agree=1, got $n: $(grep weights_crc "$tmp/two.err")"
grep -q "ranks_agree=0" "$tmp/two.err" && bad "ranks disagree: $(grep weights_crc "$tmp/two.err")" || ok
[ "$(grep -c '^steps=12 ' "$tmp/two.out")" = 1 ] && ok || bad "one summary line (rank 0's) expected: $(cat "$tmp/two.out")"
[ "$(find "$tmp/two" -maxdepth 2 -name 'version_*' | wc -l)" = 1 ] && ok || bad "run folders: $(find "$tmp/two" -maxdepth 2)"
out=$(python3 "$src/tests/dist/check_weights_close.py" "$tmp/two/mlp_sgd/version_0/checkpoints/last.safetensors" \
  "$tmp/one/mlp_sgd/version_0/checkpoints/last.safetensors" 1e-5 2>&1) && ok || bad "weights differ: $out"

# ---- small buckets overlapped with backward: bitwise the same as one bucket ----
LATHE_DDP_BUCKET_KB=4 timeout 60 "${MPI[@]}" "$LATHE" train mlp_sgd "${common[@]}" "${eq[@]}" --batch-size 64 \
  --strategy ddp --devices 2 --default-root-dir "$tmp/small" >"$tmp/small.out" 2>"$tmp/small.err" ||
  bad "4 KB buckets: $(tail -c 400 "$tmp/small.err")"
[ -n "$(grep weights_crc "$tmp/two.err")" ] && [ "$(grep weights_crc "$tmp/small.err")" = "$(grep weights_crc "$tmp/two.err")" ] &&
  ok || bad "buckets change the weights: $(grep weights_crc "$tmp/small.err" "$tmp/two.err")"
grep -q "^allreduce_wait_share=[0-9.]* allreduce_wait_s=" "$tmp/two.err" && ok || bad "no allreduce_wait_share line"

# ---- configure_ddp's bf16 compression hook: the ranks agree, the weights near fp32's ----
timeout 60 "${MPI[@]}" "$LATHE" train mlp_sgd_bf16comm "${common[@]}" "${eq[@]}" --batch-size 64 --strategy ddp \
  --devices 2 --default-root-dir "$tmp/bf" >"$tmp/bf.out" 2>"$tmp/bf.err" || bad "bf16 hook: $(tail -c 400 "$tmp/bf.err")"
[ "$(grep -c "weights_crc=[0-9a-f]\{8\} ranks_agree=1$" "$tmp/bf.err")" = 2 ] && ok || bad "bf16 hook: $(grep weights_crc "$tmp/bf.err")"
[ "$(grep weights_crc "$tmp/bf.err")" != "$(grep weights_crc "$tmp/two.err")" ] && ok || bad "the bf16 hook changed nothing"
out=$(python3 "$src/tests/dist/check_weights_close.py" "$tmp/bf/mlp_sgd_bf16comm/version_0/checkpoints/last.safetensors" \
  "$tmp/two/mlp_sgd/version_0/checkpoints/last.safetensors" 1e-2 2>&1) && ok || bad "bf16 hook weights far from fp32: $out"

# ---- pause, then set lr: the same step on both ranks ----
mkdir -p "$tmp/trace"
LATHE_DIST_TRACE="$tmp/trace" timeout 60 "${MPI[@]}" "$LATHE" train mlp_sgd "${common[@]}" --batch-size 16 \
  --max-epochs 1000 --limit-train-batches 50 --strategy ddp --devices 2 --default-root-dir "$tmp/ctl" \
  >"$tmp/ctl.out" 2>"$tmp/ctl.err" &
pid=$!
run="$tmp/ctl/mlp_sgd/version_0"
for _ in $(seq 1 300); do [ -S "$run/control.sock" ] && break; sleep 0.1; done
[ -S "$run/control.sock" ] && ok || bad "no control socket: $(tail -c 400 "$tmp/ctl.err")"
sleep 1
# ---- the ranks in the status: a row each and their total, as text and JSON ----
"$LATHE" ctl "$run" status >"$tmp/st.out" 2>&1 && ok || bad "status: $(cat "$tmp/st.out")"
[ "$(grep -c '^ranks=rank=' "$tmp/st.out")" -eq 2 ] && grep -q '^ranks=rank=0 host=.* device=cpu$' "$tmp/st.out" &&
  grep -q '^ranks=rank=1 host=.* device=cpu$' "$tmp/st.out" && ok || bad "status has not 2 rank rows: $(cat "$tmp/st.out")"
grep -q '^ranks_samples_per_s=[0-9.e+]*$' "$tmp/st.out" && ok || bad "status has no total: $(cat "$tmp/st.out")"
"$LATHE" ctl --json "$run" status >"$tmp/st.json" 2>&1 && ok || bad "status --json: $(cat "$tmp/st.json")"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); r=d["ranks"]; assert len(r)==2 and [x["rank"] for x in r]==[0,1], r; assert d["ranks_samples_per_s"]>=0' "$tmp/st.json" &&
  ok || bad "status --json has not 2 ranks: $(cat "$tmp/st.json")"
"$LATHE" ctl "$run" pause >"$tmp/p.out" 2>&1 && ok || bad "pause: $(cat "$tmp/p.out")"
"$LATHE" ctl "$run" set lr 0.0125 >"$tmp/s.out" 2>&1 && ok || bad "set lr: $(cat "$tmp/s.out")"
sleep 0.5
[ ! -s "$tmp/trace/rank1.log" ] && ok || bad "rank 1 applied the set during the pause: $(cat "$tmp/trace/rank1.log")"
"$LATHE" ctl "$run" step 3 >/dev/null 2>&1
"$LATHE" ctl "$run" stop >/dev/null 2>&1
wait $pid
rc=$?
pid=
[ $rc -eq 0 ] && ok || bad "the controlled run exited $rc: $(tail -c 600 "$tmp/ctl.err")"
l0=$(grep "set lr=" "$tmp/trace/rank0.log" 2>/dev/null)
l1=$(grep "set lr=" "$tmp/trace/rank1.log" 2>/dev/null)
[ -n "$l0" ] && [ "$l0" = "$l1" ] && ok || bad "set lr on rank 0 '$l0', rank 1 '$l1'"
s0=$(grep "stop=" "$tmp/trace/rank0.log" 2>/dev/null)
s1=$(grep "stop=" "$tmp/trace/rank1.log" 2>/dev/null)
[ -n "$s0" ] && [ "$s0" = "$s1" ] && ok || bad "stop on rank 0 '$s0', rank 1 '$s1'"
step_set=$(sed -n 's/^step=\([0-9]*\) set lr=.*/\1/p' "$tmp/trace/rank0.log")
step_stop=$(sed -n 's/^step=\([0-9]*\) stop=.*/\1/p' "$tmp/trace/rank0.log")
[ -n "$step_set" ] && [ "$step_stop" = $((step_set + 3)) ] && ok || bad "step 3 after the set: set at $step_set, stop at $step_stop"

# ---- SIGKILL of rank 1: a bounded end, a loadable checkpoint ----
LATHE_DIST_TIMEOUT=5 timeout 90 "${MPI[@]}" "$LATHE" train mlp_sgd "${common[@]}" --batch-size 16 --max-epochs 1000 \
  --limit-train-batches 20 --every-n-train-steps 10 --strategy ddp --devices 2 --default-root-dir "$tmp/kill" \
  >"$tmp/kill.out" 2>"$tmp/kill.err" &
pid=$!
ck="$tmp/kill/mlp_sgd/version_0/checkpoints"
for _ in $(seq 1 300); do ls "$ck"/*.safetensors >/dev/null 2>&1 && break; sleep 0.1; done
victim=
for p in $(pgrep -f "lathe train mlp_sgd.*$tmp/kill"); do
  tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && victim=$p
done
[ -n "$victim" ] && ok || bad "rank 1's process not found"
t0=$(date +%s)
[ -n "$victim" ] && kill -9 "$victim"
wait $pid
rc=$?
pid=
took=$(($(date +%s) - t0))
[ $rc -ne 0 ] && [ $took -le 30 ] && ok || bad "after SIGKILL of rank 1: exit $rc after ${took}s"
grep -qiE "rank 1|exited on signal 9|no all-reduce completion" "$tmp/kill.err" && ok ||
  bad "no message naming the dead rank: $(tail -c 600 "$tmp/kill.err")"
last=$(ls -t "$ck"/*.safetensors 2>/dev/null | head -n 1)
[ -n "$last" ] && "$LATHE" test mlp_sgd --ckpt "$last" --limit-test-batches 1 --threads 1 >"$tmp/t.out" 2>&1 && ok ||
  bad "the last checkpoint '$last' does not load: $(tail -c 400 "$tmp/t.out")"
# ---- a hung rank (SIGSTOP): the watchdog ends the run, naming the step ----
LATHE_DIST_TIMEOUT=3 timeout 60 "${MPI[@]}" "$LATHE" train mlp_sgd "${common[@]}" --batch-size 16 --max-epochs 1000 \
  --limit-train-batches 20 --strategy ddp --devices 2 --default-root-dir "$tmp/hang" >"$tmp/hang.out" 2>"$tmp/hang.err" &
pid=$!
for _ in $(seq 1 300); do grep -q "weights_crc" "$tmp/hang.err" 2>/dev/null && break; sleep 0.1; done
victim=
for p in $(pgrep -f "lathe train mlp_sgd.*$tmp/hang"); do
  tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && victim=$p
done
t0=$(date +%s)
[ -n "$victim" ] && kill -STOP "$victim"
wait $pid
rc=$?
pid=
took=$(($(date +%s) - t0))
[ -n "$victim" ] && kill -9 "$victim" 2>/dev/null
[ $rc -ne 0 ] && [ $took -le 30 ] && ok || bad "after SIGSTOP of rank 1: exit $rc after ${took}s"
grep -qE "^rank 0: no all-reduce completion for 3 s at step [0-9]+; aborting$" "$tmp/hang.err" && ok ||
  bad "no watchdog line: $(tail -c 600 "$tmp/hang.err")"
[ -n "${DDP_KEEP:-}" ] && cp "$tmp/kill.err" "$DDP_KEEP"
finish
