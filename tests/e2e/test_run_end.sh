#!/usr/bin/env bash
# How a run ends is told the same everywhere: SIGINT, SIGTERM and SIGHUP each
# end a headless run as `interrupted` at a step boundary, with exit status
# 128 + signo (130, 143, 129), the summary line, run.yaml (state, status,
# signal, exit_status) and `lathe runs --json` saying so, control.sock
# removed, and a checkpoint at the stop step (Lightning's
# OnExceptionCheckpoint) that `lathe test --ckpt` loads; `lathe ctl <run> stop`
# ends one as `stopped` with exit status 0.
#   usage: test_run_end.sh <lathe binary> <source dir>
. "$(dirname "$0")/lib.sh" "$1"
need_data

flags=(--headless --batch-size 32 --max-epochs 100 --limit-train-batches 20 --limit-val-batches 2
  --limit-test-batches 2 --threads 1 --log-every-n-steps 5)

# meta_step <file>: the step in a safetensors checkpoint's __metadata__
meta_step() {
  python3 - "$1" <<'EOF'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    print(json.loads(f.read(n))["__metadata__"]["step"])
EOF
}

# start <root> [flags...]: a run in the background ($pid), its folder in $run,
# once it has taken a few steps
start() {
  local root=$1
  shift
  "$LATHE" train mnist_cnn "${flags[@]}" --default-root-dir "$root" "$@" >"$root.out" 2>"$root.err" &
  pid=$!
  run="$root/mnist_cnn/version_0"
  for _ in $(seq 1 300); do
    if [ -S "$run/control.sock" ] && "$LATHE" ctl "$run" status 2>/dev/null | grep -qE '^step=([3-9]|[1-9][0-9]+)$'; then
      return 0
    fi
    sleep 0.1
  done
  bad "$root: the run did not start: $(tail -n 3 "$root.err")"
  return 1
}

# finish_run: waits for $pid, its exit status in $trc
finish_run() {
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    bad "the run did not exit"
    kill -9 "$pid"
  fi
  wait "$pid"
  trc=$?
  pid=
}

runs_state() {
  "$LATHE" runs --root "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])'
}

for sig in INT TERM HUP; do
  root="$tmp/$sig"
  case $sig in INT) want=130 ;; TERM) want=143 ;; HUP) want=129 ;; esac
  extra=()
  [ $sig = INT ] && extra=(--save-last)
  start "$root" "${extra[@]}" || continue
  kill -s $sig "$pid"
  finish_run
  [ "$trc" -eq $want ] && ok || bad "SIG$sig: exit status $trc, expected $want: $(tail -n 3 "$root.err")"
  out=$(tail -n 1 "$root.out")
  [ "$(kv state "$root.out")" = interrupted ] && ok || bad "SIG$sig summary: $out"
  case " $out " in *" test_acc="*) bad "SIG$sig: a test pass ran after the interrupt: $out" ;; *) ok ;; esac
  steps=$(kv steps "$root.out")
  y="$run/run.yaml"
  if [ -f "$y" ]; then
    grep -qx 'state: interrupted' "$y" && grep -qx 'status: INTERRUPTED' "$y" && grep -qx "signal: SIG$sig" "$y" &&
      grep -qx "exit_status: $want" "$y" && grep -qx "steps: $steps" "$y" && ok ||
      bad "SIG$sig run.yaml: $(head -n 6 "$y")"
  else
    bad "SIG$sig: no run.yaml"
  fi
  [ "$(runs_state "$root")" = interrupted ] && ok || bad "SIG$sig: lathe runs --json says $(runs_state "$root")"
  [ ! -e "$run/control.sock" ] && ok || bad "SIG$sig: control.sock left behind"
  ck="$run/checkpoints/on_exception.safetensors"
  if [ -f "$ck" ]; then
    [ "$(meta_step "$ck")" = "$steps" ] && ok || bad "SIG$sig: checkpoint at step $(meta_step "$ck"), stopped at $steps"
    "$LATHE" test mnist_cnn --ckpt "$ck" --limit-test-batches 2 --threads 1 >"$root.test" 2>&1 && ok ||
      bad "SIG$sig: the checkpoint does not load: $(tail -n 2 "$root.test")"
  else
    bad "SIG$sig: no checkpoint at the stop: $(ls "$run/checkpoints" 2>&1)"
  fi
  if [ $sig = INT ]; then # --save-last: --resume last continues from the stop
    [ "$(meta_step "$run/checkpoints/last.safetensors")" = "$steps" ] && ok ||
      bad "SIGINT: last.safetensors is not at the stop step $steps"
  fi
  ls "$run/checkpoints" | grep -q '\.tmp' && bad "SIG$sig: a temporary checkpoint file is left" || ok
done

# a stop command: stopped, exit 0, everywhere
root="$tmp/stop"
if start "$root"; then
  "$LATHE" ctl "$run" stop >/dev/null 2>&1
  finish_run
  [ "$trc" -eq 0 ] && ok || bad "stop: exit status $trc"
  [ "$(kv state "$root.out")" = stopped ] && ok || bad "stop summary: $(tail -n 1 "$root.out")"
  grep -qx 'state: stopped' "$run/run.yaml" && grep -qx 'status: FINISHED' "$run/run.yaml" &&
    grep -qx 'exit_status: 0' "$run/run.yaml" && ok || bad "stop run.yaml: $(head -n 6 "$run/run.yaml")"
  [ "$(runs_state "$root")" = stopped ] && ok || bad "stop: lathe runs --json says $(runs_state "$root")"
  [ ! -e "$run/control.sock" ] && ok || bad "stop: control.sock left behind"
fi

finish
