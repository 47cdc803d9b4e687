#!/usr/bin/env bash
# Watching a data-parallel run's ranks under a real mpirun (Open MPI): each
# rank's heartbeat reaches rank 0 on its own (lathe/dist.h), so `lathe ctl
# status --json` tells the ranks apart.
#   - 2 ranks, rank 1 stopped (SIGSTOP) for 7 s: rank 0 still answers status,
#     rank 1's age grows past the silent bound and it alone is marked silent,
#     rank 0's age stays small; a pause sent meanwhile is held until rank 1
#     goes on (SIGCONT), which then is fresh again and trains on
#   - paused: both ranks stay fresh (rank 0 takes the beats in while it waits
#     for commands) and neither's step moves; `inspect --rank 1` shows rank
#     1's replica (its own batch's outputs, rank 0's weights), `feed --rank 1`
#     runs its probe, their errors name rank 1; the ranks' weights agree
#   - 3 ranks, rank 2 stopped: rank 1, held up as well, beats while it waits
#     and stays fresh; only rank 2 is silent
#   usage: test_ddp_watch.sh <lathe binary> <source dir>
. "$(dirname "$0")/lib.sh" "$1"
need_data
need_mpi

LATHE_DIST_TIMEOUT=60 timeout 120 "${MPI[@]}" "$LATHE" train mlp_sgd --headless --seed 1 --threads 1 \
  --limit-val-batches 2 --limit-test-batches 2 --batch-size 16 --max-epochs 1000 --limit-train-batches 50 \
  --strategy ddp --devices 2 --default-root-dir "$tmp/w" >"$tmp/w.out" 2>"$tmp/w.err" &
pid=$!
run="$tmp/w/mlp_sgd/version_0"
for _ in $(seq 1 300); do [ -S "$run/control.sock" ] && break; sleep 0.1; done
[ -S "$run/control.sock" ] && ok || bad "no control socket: $(tail -c 400 "$tmp/w.err")"
sleep 1

# rows <file>: "state step0 age0 silent0 step1 age1 silent1" from a status --json
rows() {
  python3 -c 'import json,sys
d=json.load(open(sys.argv[1])); r=d["ranks"]; assert len(r)==2, r
print(d["state"], *[f"{x[k]}" for x in r for k in ("step","age","silent")])' "$1"
}
# st <name>: a status --json into $tmp/<name>.json, answered within 5 s
st() { timeout 5 "$LATHE" ctl --json "$run" status >"$tmp/$1.json" 2>&1 && rows "$tmp/$1.json" >"$tmp/$1.rows"; }
# field <name> <n>: the n-th word of its rows (1 state, 2-4 rank 0, 5-7 rank 1)
field() { cut -d' ' -f"$2" "$tmp/$1.rows" 2>/dev/null; }
lt() { python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)' "$1" "$2" 2>/dev/null; }

st before && ok || bad "status: $(cat "$tmp/before.json")"
lt "$(field before 3)" 1 && lt "$(field before 6)" 1 && ok || bad "ages before the stop: $(cat "$tmp/before.rows")"
[ "$(field before 4)" = 0 ] && [ "$(field before 7)" = 0 ] && ok || bad "silent before the stop: $(cat "$tmp/before.rows")"

victim=
for p in $(pgrep -f "lathe train mlp_sgd.*$tmp/w"); do
  tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && victim=$p
done
[ -n "$victim" ] && ok || bad "rank 1's process not found"
[ -n "$victim" ] && kill -STOP "$victim"
sleep 2
st stop2 && ok || bad "status with rank 1 stopped, 2 s: $(cat "$tmp/stop2.json")"
sleep 5
st stop7 && ok || bad "status with rank 1 stopped, 7 s: $(cat "$tmp/stop7.json")"
# rank 1's age grows with the stop; rank 0's stays small; only rank 1 is silent
a2=$(field stop2 6) a7=$(field stop7 6)
lt 1.5 "$a2" && lt "$(python3 -c "print($a2 + 4)" 2>/dev/null)" "$a7" && ok || bad "rank 1's age: $a2 s after 2 s, $a7 s after 7 s"
lt "$(field stop2 3)" 1 && lt "$(field stop7 3)" 1 && ok || bad "rank 0's age: $(field stop2 3), $(field stop7 3)"
[ "$(field stop7 7)" = 1 ] && [ "$(field stop7 4)" = 0 ] && ok || bad "silent marks after 7 s: $(cat "$tmp/stop7.rows")"
[ "$(field stop2 7)" = 0 ] && ok || bad "rank 1 silent after 2 s: $(cat "$tmp/stop2.rows")"
[ "$(field stop7 5)" = "$(field stop2 5)" ] && ok || bad "stopped rank 1's step moved: $(field stop2 5) -> $(field stop7 5)"
[ "$(field stop7 1)" = running ] && ok || bad "state with rank 1 stopped: $(field stop7 1)"

# a command other than status waits for the step boundary: held while rank
# 1 holds rank 0 up, done once it goes on
timeout 30 "$LATHE" ctl "$run" pause >"$tmp/hp.out" 2>&1 &
held=$!
sleep 1
kill -0 "$held" 2>/dev/null && ok || bad "pause answered while rank 0 waits for rank 1: $(cat "$tmp/hp.out")"
[ -n "$victim" ] && kill -CONT "$victim"
wait "$held" && grep -qx 'state=paused' "$tmp/hp.out" && ok || bad "the held pause after SIGCONT: $(cat "$tmp/hp.out")"
"$LATHE" ctl "$run" resume >/dev/null 2>&1 && ok || bad "resume after the held pause"
sleep 2
st cont && ok || bad "status after SIGCONT: $(cat "$tmp/cont.json")"
lt "$(field cont 6)" 1 && [ "$(field cont 7)" = 0 ] && ok || bad "rank 1 after SIGCONT: $(cat "$tmp/cont.rows")"
lt "$(field stop7 5)" "$(field cont 5)" && ok || bad "rank 1's step after SIGCONT: $(field stop7 5) -> $(field cont 5)"

# paused: rank 0 still takes the heartbeats in (rank 1 waits in the step's
# broadcast): both fresh, neither's step moves
"$LATHE" ctl "$run" pause >/dev/null 2>&1 && ok || bad "pause"
sleep 2
st p1 && sleep 1.5 && st p2 && ok || bad "status while paused: $(cat "$tmp/p2.json")"
[ "$(field p1 1)" = paused ] && [ "$(field p1 2)" = "$(field p2 2)" ] && [ "$(field p1 5)" = "$(field p2 5)" ] && ok ||
  bad "the ranks moved while paused: $(cat "$tmp/p1.rows") -> $(cat "$tmp/p2.rows")"
lt "$(field p2 3)" 1 && lt "$(field p2 6)" 1 && ok || bad "ages while paused: $(cat "$tmp/p2.rows")"

# inspect --rank 1: rank 1's replica (its own batch shard, the same weights)
ins() { "$LATHE" ctl "$run" inspect "$@" >"$tmp/ins.out" 2>"$tmp/ins.err"; }
ins dense_1 && grep '^mean=' "$tmp/ins.out" >"$tmp/o0" && ins dense_1 --rank 1 && grep '^mean=' "$tmp/ins.out" >"$tmp/o1" &&
  [ -s "$tmp/o0" ] && [ -s "$tmp/o1" ] && ! cmp -s "$tmp/o0" "$tmp/o1" && ok ||
  bad "inspect --rank 1 output like rank 0's: $(cat "$tmp/o0" "$tmp/o1" "$tmp/ins.err")"
ins dense_1 weight && grep -E '^(mean|std|values)=' "$tmp/ins.out" >"$tmp/w0" && ins dense_1 weight --rank 1 &&
  grep -E '^(mean|std|values)=' "$tmp/ins.out" >"$tmp/w1" && [ -s "$tmp/w0" ] && cmp -s "$tmp/w0" "$tmp/w1" && ok ||
  bad "inspect --rank 1 weight differs from rank 0's: $(head -c 300 "$tmp/w0" "$tmp/w1" "$tmp/ins.err")"
ins nope --rank 1
[ $? -eq 1 ] && grep -qx "lathe ctl: rank 1: inspect: no layer 'nope' (layers: .*)" "$tmp/ins.err" && ok ||
  bad "rank 1's error: $(cat "$tmp/ins.err")"
ins dense_1 --rank 2
[ $? -eq 1 ] && [ "$(cat "$tmp/ins.err")" = "lathe ctl: inspect: --rank 2 is out of range (the run has ranks 0 to 1)" ] && ok ||
  bad "--rank 2 of 2: $(cat "$tmp/ins.err")"
# feed --rank 1: rank 1's replica runs the probe (the same weights: the same
# prediction as rank 0's), and its inspect shows that probe
"$LATHE" ctl "$run" feed test 3 >"$tmp/f0" 2>&1 && "$LATHE" ctl "$run" feed test 3 --rank 1 >"$tmp/f1" 2>&1 &&
  grep -q '^top=' "$tmp/f0" && [ "$(grep '^top=' "$tmp/f0")" = "$(grep '^top=' "$tmp/f1")" ] && ok ||
  bad "feed test 3 on rank 0 and rank 1: $(head -c 300 "$tmp/f0" "$tmp/f1")"
ins dense_1 --rank 1 && grep -qx 'source=probe' "$tmp/ins.out" && ok || bad "inspect --rank 1 after its feed: $(head -c 200 "$tmp/ins.out" "$tmp/ins.err")"
"$LATHE" ctl "$run" feed bogus --rank 1 >/dev/null 2>"$tmp/fe"
[ $? -eq 1 ] && [ "$(wc -l <"$tmp/fe")" -eq 1 ] && grep -q '^lathe ctl: rank 1: usage: feed test' "$tmp/fe" && ok ||
  bad "feed bogus --rank 1: $(cat "$tmp/fe")"
"$LATHE" ctl "$run" resume >/dev/null 2>&1 && ok || bad "resume"

"$LATHE" ctl "$run" stop >/dev/null 2>&1
wait $pid
rc=$?
pid=
[ $rc -eq 0 ] && ok || bad "the run exited $rc: $(tail -c 600 "$tmp/w.err")"
grep -q "ranks_agree=1$" "$tmp/w.err" && ! grep -q "ranks_agree=0" "$tmp/w.err" && ok ||
  bad "ranks disagree: $(grep weights_crc "$tmp/w.err" | tail -3)"

# ---- 3 ranks, rank 2 stopped: rank 1, held up in the all-reduce too, still
# beats while it waits, so it stays fresh and only rank 2 is silent ----
MPI3=("${MPI[@]}")
MPI3[${#MPI3[@]} - 1]=3
LATHE_DIST_TIMEOUT=60 timeout 120 "${MPI3[@]}" "$LATHE" train mlp_sgd --headless --seed 1 --threads 1 \
  --limit-val-batches 3 --limit-test-batches 3 --batch-size 16 --max-epochs 1000 --limit-train-batches 50 \
  --strategy ddp --devices 3 --default-root-dir "$tmp/w3" >"$tmp/w3.out" 2>"$tmp/w3.err" &
pid=$!
run="$tmp/w3/mlp_sgd/version_0"
for _ in $(seq 1 300); do [ -S "$run/control.sock" ] && break; sleep 0.1; done
[ -S "$run/control.sock" ] && ok || bad "3 ranks: no control socket: $(tail -c 400 "$tmp/w3.err")"
sleep 1
victim=
for p in $(pgrep -f "lathe train mlp_sgd.*$tmp/w3"); do
  tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=2 && victim=$p
done
[ -n "$victim" ] && ok || bad "rank 2's process not found"
[ -n "$victim" ] && kill -STOP "$victim"
sleep 6.5
timeout 5 "$LATHE" ctl --json "$run" status >"$tmp/s3.json" 2>&1 &&
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["ranks"]; assert len(r)==3, r
print(*[f"{x[k]}" for x in r for k in ("age","silent")])' "$tmp/s3.json" >"$tmp/s3.rows" 2>/dev/null && ok ||
  bad "3 ranks: status with rank 2 stopped: $(cat "$tmp/s3.json")"
set -- $(cat "$tmp/s3.rows" 2>/dev/null) x x x x x x
lt "$1" 1 && lt "$3" 1 && lt 5 "$5" && [ "$2 $4 $6" = "0 0 1" ] && ok ||
  bad "3 ranks, rank 2 stopped (age silent per rank): $(cat "$tmp/s3.rows" 2>/dev/null)"
[ -n "$victim" ] && kill -CONT "$victim"
"$LATHE" ctl "$run" stop >/dev/null 2>&1
wait $pid
rc=$?
pid=
[ $rc -eq 0 ] && ok || bad "3 ranks: the run exited $rc: $(tail -c 600 "$tmp/w3.err")"
finish
