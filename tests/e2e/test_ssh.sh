#!/usr/bin/env bash
# The README's "Over SSH", through a real sshd: a private one on 127.0.0.1
# (tests/dist/sshd.sh, key authentication, a free port, stopped at exit) and a
# small headless run here standing for the remote machine's.
#   1. the socket forward: ssh -N -L local.sock:<run>/control.sock, then
#      `lathe ctl local.sock status|pause|resume` and `lathe attach local.sock`
#   2. ssh -t ... lathe attach <run> in tmux: the workbench comes up, space
#      pauses and resumes, a resize redraws the frame, q detaches (ssh exits 0)
#      and the run goes on
#   3. a 2-rank run (mpirun -np 2) attached over ssh -t: the workbench's gpu
#      pane shows a row per rank, space pauses both ranks (their steps in
#      `lathe ctl --json status` stand still) and resumes them, q detaches,
#      and the run ends with ranks_agree=1
#   usage: test_ssh.sh <lathe binary> <source dir>
# Skipped (exit 77) without OpenSSH, tmux or the data.
. "$(dirname "$0")/lib.sh" "$1"
SRC=$(readlink -f "$2")
if [ ! -d /usr/share/datasets/fashion-mnist ]; then echo "skipped: /usr/share/datasets/fashion-mnist is not installed"; exit 77; fi
command -v tmux >/dev/null || { echo "skipped: tmux not found"; exit 77; }
"$SRC/tests/dist/sshd.sh" check 2>"$tmp/check.err" || { echo "skipped: $(cat "$tmp/check.err")"; exit 77; }

sshd=
fwd=
ssh_cleanup() {
  if [ -n "$fwd" ]; then kill "$fwd" 2>/dev/null; wait "$fwd" 2>/dev/null; fi
  [ -n "$sshd" ] && "$SRC/tests/dist/sshd.sh" stop "$sshd"
  e2e_cleanup
}
trap ssh_cleanup EXIT
env_out=$("$SRC/tests/dist/sshd.sh" start) || { echo "FAIL: the test sshd did not start"; exit 1; }
eval "$env_out"
sshd=$LATHE_SSHD_DIR
T="tmux -L lathe-ssh-$$"

# ---- the run (the "remote" one) ----
RUN=$tmp/logs/mnist_cnn/version_0
(cd "$tmp" && exec "$LATHE" train mnist_cnn --headless --default-root-dir "$tmp/logs" --batch-size 32 \
   --max-epochs 1 --max-time 00:00:02:00 --threads 1 --log-every-n-steps 5 >"$tmp/run.out" 2>"$tmp/run.err") &
pid=$!
for _ in $(seq 1 300); do [ -S "$RUN/control.sock" ] && break; sleep 0.1; done
[ -S "$RUN/control.sock" ] || { bad "the run opened no control socket: $(tail -2 "$tmp/run.err")"; finish; exit 1; }

# ---- 1. the socket forward ----
ssh $SSH_OPTS -N -o ExitOnForwardFailure=yes -L "$tmp/fwd.sock:$RUN/control.sock" 127.0.0.1 2>"$tmp/fwd.err" &
fwd=$!
for _ in $(seq 1 50); do [ -S "$tmp/fwd.sock" ] && break; sleep 0.1; done
[ -S "$tmp/fwd.sock" ] && ok || bad "no forwarded socket: $(cat "$tmp/fwd.err")"
ctl() { "$LATHE" ctl "$tmp/fwd.sock" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
val() { sed -n "s/^$1=//p" "$tmp/out"; }
ctl status
[ $rc -eq 0 ] && grep -qx 'experiment=mnist_cnn' "$tmp/out" && grep -qx "run_dir=$RUN" "$tmp/out" && ok ||
  bad "ctl status over the forward: exit $rc: $(head -c 300 "$tmp/err" "$tmp/out")"
ctl pause
[ "$(val state)" = paused ] && ok || bad "ctl pause over the forward: $(head -c 300 "$tmp/out" "$tmp/err")"
a=$(val step); sleep 0.6; ctl status
[ "$(val state)" = paused ] && [ "$(val step)" = "$a" ] && ok || bad "paused run moved: $a -> $(val step)"
ctl resume
case "$(val state)" in running | validating) ok ;; *) bad "ctl resume over the forward: $(head -c 300 "$tmp/out" "$tmp/err")" ;; esac

ENVS="LANG=C.UTF-8 LC_ALL=C.UTF-8 XDG_DATA_HOME=$tmp/xdg TERM=screen-256color"
$T new-session -d -s fw -x 100 -y 30 "env $ENVS $LATHE attach $tmp/fwd.sock; echo EXIT=\$?; sleep 60"
wait_for fw:0 'RUNNING' 100 && ok || bad "attach over the forwarded socket: $(cap fw:0 | head -3)"
$T send-keys -t fw:0 q
wait_for fw:0 'EXIT=0' && ok || bad "q after attach over the forward: $(cap fw:0 | tail -3)"

# ---- 2. ssh -t ... lathe attach, in tmux ----
step_of() { cap "$1" | head -1 | sed -nE 's/.*step ([0-9]+)\/.*/\1/p'; }
$T new-session -d -s wb -x 100 -y 30 "ssh -t $SSH_OPTS 127.0.0.1 'cd $tmp && env $ENVS $LATHE attach $RUN'; echo EXIT=\$?; sleep 60"
wait_for wb:0 'RUNNING' 100 && ok || bad "no RUNNING over ssh -t: $(cap wb:0 | head -3)"
wait_for wb:0 '^ *[0-9.]+│' 150 && ok || bad "no loss curve axis over ssh -t: $(cap wb:0 | head -6)"
s1=$(step_of wb:0); sleep 1.5; s2=$(step_of wb:0)
[ -n "$s1" ] && [ -n "$s2" ] && [ "$s2" -gt "$s1" ] && ok || bad "step does not advance over ssh -t: '$s1' -> '$s2'"
$T send-keys -t wb:0 ' '
wait_for wb:0 'PAUSED' && ok || bad "space did not pause over ssh -t: $(cap wb:0 | head -1)"
"$LATHE" ctl "$RUN" status | grep -qx 'state=paused' && ok || bad "the run is not paused after the key"
sleep 0.5; p1=$(step_of wb:0); sleep 1.5; p2=$(step_of wb:0)
[ -n "$p1" ] && [ "$p1" = "$p2" ] && ok || bad "step advances while paused: '$p1' -> '$p2'"
$T send-keys -t wb:0 ' '
wait_for wb:0 'RUNNING' && ok || bad "space did not resume over ssh -t: $(cap wb:0 | head -1)"
# a resize travels through ssh (SIGWINCH, window-change) and redraws the frame
frame() { check_frame "$1" "$2" '^ mnist_cnn +(RUNNING|PAUSED|VALIDATING)' '^ spc.*q.detach'; }
$T resize-window -t wb -x 80 -y 24; sleep 1; frame 80 24
$T resize-window -t wb -x 120 -y 40; sleep 1; frame 120 40
$T send-keys -t wb:0 q
wait_for wb:0 'EXIT=0' && ok || bad "q did not detach over ssh -t: $(cap wb:0 | tail -3)"
kill -0 "$pid" 2>/dev/null && ok || bad "the run died after the detach"

# the run ends by stop through the forward
ctl stop
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
wait "$pid"; rc=$?; pid=
[ $rc -eq 0 ] && [ "$(kv state "$tmp/run.out")" = stopped ] && ok || bad "stop over the forward: exit $rc, $(tail -1 "$tmp/run.out")"

# ---- 3. a 2-rank run (mpirun -np 2) watched over ssh -t: the rank rows on
# the workbench's gpu pane, a pause from the workbench holds both ranks ----
if command -v mpirun >/dev/null; then
  export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
  MPI=(mpirun --oversubscribe -np 2)
  [ "$(id -u)" = 0 ] && MPI=(mpirun --allow-run-as-root --oversubscribe -np 2)
  DRUN=$tmp/ddp/mlp_sgd/version_0
  (cd "$tmp" && exec timeout 120 "${MPI[@]}" "$LATHE" train mlp_sgd --headless --seed 1 --threads 1 --batch-size 16 \
     --max-epochs 1000 --limit-train-batches 50 --limit-val-batches 2 --limit-test-batches 2 --strategy ddp \
     --devices 2 --default-root-dir "$tmp/ddp" >"$tmp/ddp.out" 2>"$tmp/ddp.err") &
  pid=$!
  for _ in $(seq 1 300); do [ -S "$DRUN/control.sock" ] && break; sleep 0.1; done
  [ -S "$DRUN/control.sock" ] && ok || bad "the 2-rank run opened no control socket: $(tail -2 "$tmp/ddp.err")"
  # ranks <file>: "state step0 step1" from a status --json
  ranks() {
    "$LATHE" ctl --json "$DRUN" status >"$tmp/$1.json" 2>&1 &&
      python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); r=d["ranks"]; assert len(r)==2, r
print(d["state"], r[0]["step"], r[1]["step"])' "$tmp/$1.json" 2>/dev/null
  }
  $T new-session -d -s dd -x 120 -y 40 "ssh -t $SSH_OPTS 127.0.0.1 'cd $tmp && env $ENVS $LATHE attach $DRUN'; echo EXIT=\$?; sleep 60"
  wait_for dd:0 'RUNNING' 100 && ok || bad "no RUNNING for the 2-rank run over ssh -t: $(cap dd:0 | head -3)"
  $T send-keys -t dd:0 G
  # the gpu pane's rows: rank, host, device, step, samples/s, util, memory, beat
  row='^ *%s +[^ ]+ +cpu +[0-9]+ +[0-9.]+ +- +- +[0-9.]+s'
  wait_for dd:0 "$(printf "$row" 0)" 50 && cap dd:0 | grep -qE "$(printf "$row" 1)" && ok ||
    bad "no rank rows on the workbench: $(cap dd:0 | grep -A4 '^rank' | head -6)"
  $T send-keys -t dd:0 ' '
  wait_for dd:0 'PAUSED' && ok || bad "space did not pause the 2-rank run: $(cap dd:0 | head -1)"
  sleep 0.5
  a=$(ranks p1); sleep 1.5; b=$(ranks p2)
  [ -n "$a" ] && [ "$a" = "$b" ] && [ "${a%% *}" = paused ] && ok || bad "the ranks moved while paused: '$a' -> '$b'"
  $T send-keys -t dd:0 ' '
  wait_for dd:0 'RUNNING' && ok || bad "space did not resume the 2-rank run: $(cap dd:0 | head -1)"
  sleep 1.5; c=$(ranks r1)
  set -- $a; a1=${2:-0} a2=${3:-0}
  set -- $c
  [ -n "$c" ] && [ "${2:-0}" -gt "$a1" ] && [ "${3:-0}" -gt "$a2" ] && ok || bad "the ranks after resume: '$a' -> '$c'"
  $T send-keys -t dd:0 q
  wait_for dd:0 'EXIT=0' && ok || bad "q did not detach from the 2-rank run: $(cap dd:0 | tail -3)"
  "$LATHE" ctl "$DRUN" stop >/dev/null 2>&1
  wait "$pid"; rc=$?; pid=
  [ $rc -eq 0 ] && ok || bad "the 2-rank run exited $rc: $(tail -c 400 "$tmp/ddp.err")"
  grep -q "ranks_agree=1$" "$tmp/ddp.err" && ! grep -q "ranks_agree=0" "$tmp/ddp.err" && ok ||
    bad "the 2-rank run's ranks disagree: $(grep weights_crc "$tmp/ddp.err" | tail -3)"
else echo "note: mpirun not found (openmpi-bin): the 2-rank run over ssh is left out"; fi

finish
