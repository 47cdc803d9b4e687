#!/usr/bin/env bash
# A headless run steered with `lathe ctl` as a user would: the run folder and
# socket line, status, pause (the step counter stops), step 5, set/get lr,
# refusals (exit 1, message on stderr), inspect, feed, --json, a second run
# numbered version_1, stop, and that the process exits with its summary line.
#   usage: test_ctl.sh <lathe binary> <source dir>
. "$(dirname "$0")/lib.sh" "$1"
need_data

# ctl <args...>: runs lathe ctl, output in $tmp/out, stderr in $tmp/err, status in $rc
ctl() { "$LATHE" ctl "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
# expect_kv <key=value>...: every line is in the last ctl output
expect_kv() {
  local kv
  for kv in "$@"; do grep -qxF -- "$kv" "$tmp/out" && ok || bad "ctl output lacks '$kv': $(head -c 400 "$tmp/out")"; done
}
val() { sed -n "s/^$1=//p" "$tmp/out" | head -n 1; }

run_flags=(--headless --default-root-dir "$tmp/logs" --batch-size 32 --max-epochs 100 --limit-train-batches 20
  --limit-val-batches 2 --limit-test-batches 2 --threads 1 --log-every-n-steps 5)
"$LATHE" train mnist_cnn "${run_flags[@]}" >"$tmp/train.out" 2>"$tmp/train.err" &
pid=$!
run="$tmp/logs/mnist_cnn/version_0"
for _ in $(seq 1 200); do [ -S "$run/control.sock" ] && break; sleep 0.1; done
[ -S "$run/control.sock" ] && ok || bad "no control socket at $run/control.sock: $(cat "$tmp/train.err")"
[ "$(stat -c %a "$run/control.sock")" = 600 ] && ok || bad "socket mode $(stat -c %a "$run/control.sock")"
for _ in $(seq 1 50); do [ -s "$tmp/train.err" ] && break; sleep 0.1; done
[ "$(head -n 1 "$tmp/train.err")" = "lathe: run $run, control socket $run/control.sock" ] && ok ||
  bad "first stderr line: $(head -n 1 "$tmp/train.err")"

ctl "$run" status
[ $rc -eq 0 ] && ok || bad "status exited $rc: $(cat "$tmp/err")"
expect_kv experiment=mnist_cnn max_epochs=100 total_steps=2000 "run_dir=$run" clients=1 device=cpu
case "$(val state)" in running | validating | paused) ok ;; *) bad "state=$(val state)" ;; esac

ctl "$run" pause
expect_kv state=paused
a=$(val step)
sleep 0.5
ctl "$run" status
expect_kv state=paused "step=$a"

ctl "$run" step 5
expect_kv state=paused "step=$((a + 5))"
ctl "$run" status
expect_kv "step=$((a + 5))"

ctl "$run" set lr 0.05
expect_kv lr=0.05 old=1 "step=$((a + 5))"
ctl "$run" get lr
expect_kv lr=0.05
ctl "$run" set lr -1
[ $rc -eq 1 ] && grep -q 'lr must be >= 0' "$tmp/err" && [ ! -s "$tmp/out" ] && ok || bad "set lr -1: rc=$rc $(cat "$tmp/err")"
ctl "$run" set lr abc
[ $rc -eq 1 ] && grep -q "'abc' is not a decimal number" "$tmp/err" && ok || bad "set lr abc: rc=$rc $(cat "$tmp/err")"
ctl "$run" set nosuch 1
[ $rc -eq 1 ] && grep -q "unknown hparam 'nosuch'" "$tmp/err" && ok || bad "set nosuch: rc=$rc $(cat "$tmp/err")"
ctl "$run" get lr
expect_kv lr=0.05
ctl "$run" changes
grep -q '^change=step=.* name=lr old=1 new=0.05 client=' "$tmp/out" && ok || bad "changes: $(cat "$tmp/out")"
ctl "$run" fly
[ $rc -eq 1 ] && grep -q "unknown command 'fly'" "$tmp/err" && ok || bad "unknown command: rc=$rc"

ctl "$run" inspect conv2d_2
expect_kv layer=conv2d_2 what=output source=batch shape=64x24x24 full_shape=32x64x24x24 map_h=24 map_w=24
ctl "$run" inspect conv2d_1 weight --channel 2
expect_kv shape=32x1x3x3 map_h=3 map_w=3 channel=2
ctl "$run" layers
[ "$(grep -c '^layer=' "$tmp/out")" -eq 8 ] && grep -q '^layer=dense_1 type=Dense shape=128 params=1179776 mean=' "$tmp/out" &&
  ok || bad "layers: $(cat "$tmp/out")"

ctl "$run" feed test 0
expect_kv source=test:0 label=9 "label_name=Ankle boot" prob_sum=1 input_shape=1x28x28
[ "$(val top | tr ',' '\n' | wc -l)" -eq 5 ] && ok || bad "top: $(val top)"
ctl "$run" inspect dense_2
expect_kv source=probe shape=10
ctl "$run" feed shape 1x32x32
[ $rc -eq 1 ] && grep -q dense_1 "$tmp/err" && ok || bad "feed shape 1x32x32: rc=$rc $(cat "$tmp/err")"
# a raw f32 file named relative to the client's folder
head -c 3136 /dev/zero >"$tmp/zero.f32"
(cd "$tmp" && "$LATHE" ctl "$run" feed file zero.f32 >"$tmp/out" 2>"$tmp/err")
grep -q "^source=file:$tmp/zero.f32$" "$tmp/out" && ok || bad "feed file: $(cat "$tmp/err" "$tmp/out" | head -c 300)"

ctl --json "$run" status
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["state"]=="paused" and d["lr"]==0.05, d' "$tmp/out" &&
  ok || bad "--json status: $(cat "$tmp/out")"
ctl --json "$run" layers
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["layer"])==8 and d["layer"][0]["type"]=="Conv2D", d' "$tmp/out" &&
  ok || bad "--json layers: $(head -c 300 "$tmp/out")"

# usage errors and a missing run: exit 2
ctl "$tmp/nowhere" status
[ $rc -eq 2 ] && ok || bad "missing run dir exited $rc"
ctl "$tmp" status
[ $rc -eq 2 ] && grep -q 'cannot connect' "$tmp/err" && ok || bad "folder without a socket: rc=$rc $(cat "$tmp/err")"
[ "$(grep -o "$tmp/control.sock" "$tmp/err" | wc -l)" = 1 ] && ok || bad "the socket path is not said once: $(cat "$tmp/err")"

# a second run gets the next version folder
"$LATHE" train mnist_cnn "${run_flags[@]}" --max-steps 3 >"$tmp/train2.out" 2>"$tmp/train2.err"
head -n 1 "$tmp/train2.err" | grep -q "version_1, control socket" && ok || bad "second run: $(head -n 1 "$tmp/train2.err")"
# a run folder whose socket path would be too long is refused before training
long="$tmp/$(printf 'd%.0s' $(seq 1 100))"
"$LATHE" train mnist_cnn --headless --default-root-dir "$long" >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q 'Unix socket allows' "$tmp/err" && ok || bad "long socket path: $(cat "$tmp/err")"

ctl "$run" resume
expect_kv state=running
ctl "$run" stop
expect_kv state=stopping
for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
  bad "the run did not exit after stop"
else
  wait "$pid"
  trc=$?
  pid=
  [ $trc -eq 0 ] && ok || bad "the stopped run exited $trc"
  grep -q 'state=stopped' "$tmp/train.out" && ok || bad "summary: $(cat "$tmp/train.out")"
  grep -q '^state: stopped$' "$run/run.yaml" && grep -q '^status: FINISHED$' "$run/run.yaml" && ok || bad "run.yaml after stop: $(head -n 4 "$run/run.yaml")"
  [ ! -e "$run/control.sock" ] && ok || bad "socket left behind"
fi

finish
