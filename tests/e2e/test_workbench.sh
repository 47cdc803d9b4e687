#!/usr/bin/env bash
# The workbench as a user meets it, driven through tmux: attach to a headless
# run, watch it, pause it, change an hparam, inspect a layer, feed a test
# sample, resize, detach while the run goes on, and attach again by search.
#   usage: test_workbench.sh <lathe binary> <source dir>
# The run is `lathe train mnist_cnn --headless` when this build serves a
# control socket and the data are there; otherwise a stand-in server
# (tests/e2e/wb_fake_server.c, built here against liblathe_core.a).
. "$(dirname "$0")/lib.sh" "$1"
SRC=$(readlink -f "$2")
BUILD=$(dirname "$LATHE")
need_tmux "the workbench test"
T="tmux -L lathe-test-$$"
cc=${CC:-cc}
# a sanitizer build's library needs the same flags to link against
if nm "$BUILD/liblathe_core.a" 2>/dev/null | grep -q __asan_; then cc="$cc -fsanitize=address,undefined"; fi

# ---- the run ----
mode=fake
data=/usr/share/datasets/fashion-mnist
if [ -d "$data" ] && [ -z "${WB_TEST_FAKE:-}" ]; then
  (cd "$tmp" && exec "$LATHE" train mnist_cnn --headless --default-root-dir "$tmp/logs" --batch-size 32 \
     --max-epochs 1 --log-every-n-steps 5 >"$tmp/run.out" 2>"$tmp/run.err") &
  pid=$!
  for _ in $(seq 1 300); do [ -S "$tmp/logs/mnist_cnn/version_0/control.sock" ] && break; sleep 0.1; done
  if [ -S "$tmp/logs/mnist_cnn/version_0/control.sock" ]; then mode=real; else
    echo "note: the headless run did not open a control socket ($(tail -2 "$tmp/run.err")); using the stand-in"
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=; rm -rf "$tmp/logs"
  fi
fi
if [ $mode = fake ]; then
  if ! $cc -std=c11 -D_GNU_SOURCE -O1 -I"$SRC/core/include" "$SRC/tests/e2e/wb_fake_server.c" "$BUILD/liblathe_control.a" "$BUILD/liblathe_base.a" \
      -lm -lpthread -lz -o "$tmp/fake" 2>"$tmp/cc.err"; then
    bad "building the stand-in server: $(head -5 "$tmp/cc.err")"
    echo "$passed passed, $fail failed"; exit 1
  fi
  mkdir -p "$tmp/logs/mnist_cnn/version_0"
  "$tmp/fake" "$tmp/logs/mnist_cnn/version_0" 300 2>"$tmp/run.err" &
  pid=$!
  for _ in $(seq 1 50); do [ -S "$tmp/logs/mnist_cnn/version_0/control.sock" ] && break; sleep 0.1; done
fi
echo "run: $mode"
RUN_DIR=$tmp/logs/mnist_cnn/version_0

# ---- helpers ----
step_of() { cap "$1" | head -1 | sed -nE 's/.*step ([0-9]+)\/.*/\1/p'; }

ENVS="LANG=C.UTF-8 LC_ALL=C.UTF-8 XDG_DATA_HOME=$tmp/xdg TERM=screen-256color"
$T new-session -d -s wb -x 100 -y 30 "cd $tmp && env $ENVS $LATHE attach $RUN_DIR; echo EXIT=\$?; sleep 120"

# 1. it comes up RUNNING and the step advances
wait_for wb:0 'RUNNING' 100 && ok || bad "no RUNNING on the status bar: $(cap wb:0 | head -3)"
wait_for wb:0 '^ *[0-9.]+│' 150 && ok || bad "no loss curve axis drawn: $(cap wb:0 | head -6)"
s1=$(step_of wb:0); sleep 2; s2=$(step_of wb:0)
[ -n "$s1" ] && [ -n "$s2" ] && [ "$s2" -gt "$s1" ] && ok || bad "step does not advance while running: '$s1' -> '$s2'"

# the row under the status bar: the epoch's progress bar (Keras, Lightning)
cap wb:0 | sed -n 2p | grep -qE '^ Epoch 1/1 \[[=>.]+\] [0-9]+/[0-9]+ +[0-9]+%' && ok ||
  bad "no epoch progress bar under the status bar: $(cap wb:0 | head -2)"
cap wb:0 | head -1 | grep -qE '[0-9.]+k? samples/s.* 1 client' && ok || bad "status bar units: $(cap wb:0 | head -1)"

# the curves' legend is their colour key: each name in its line's colour
$T capture-pane -e -p -t wb:0 | grep 'loss: ' | grep -qE $'\e\\[[0-9;]*m'smoothed$'\e' && ok ||
  bad "the loss legend has no colour key: $($T capture-pane -e -p -t wb:0 | grep 'loss: ' | cat -v)"

# 2. space pauses: PAUSED and the step stops
$T send-keys -t wb:0 ' '
wait_for wb:0 'PAUSED' && ok || bad "space did not pause: $(cap wb:0 | head -1)"
sleep 0.5; p1=$(step_of wb:0); sleep 2; p2=$(step_of wb:0)
[ -n "$p1" ] && [ "$p1" = "$p2" ] && ok || bad "step advances while paused: '$p1' -> '$p2'"
cap wb:0 | sed -n 2p | grep -q 'paused' && ok || bad "the progress bar does not say paused: $(cap wb:0 | head -2)"
if [ $mode = real ]; then # the run says who paused it, for every client to read
  wait_for wb:0 'client [0-9]+ \(workbench\) paused the run at step [0-9]+' 20 && ok || bad "no log line naming who paused: $(cap wb:0 | tail -6)"
fi
$T send-keys -t wb:0 ' '
wait_for wb:0 'RUNNING' && ok || bad "space did not resume: $(cap wb:0 | head -1)"

# 3. :set lr 0.5 shows in the hparams table
$T send-keys -t wb:0 ':set lr 0.5' Enter
wait_for wb:0 '^lr +0\.5' && ok || bad "set lr 0.5 not in the hparams table: $(cap wb:0)"
wait_for wb:0 'lr +1 -> 0\.5' && ok || bad "the change is not in the history: $(cap wb:0)"

# 4. :inspect conv2d_2 and :feed test 3 show their panes
$T send-keys -t wb:0 ':inspect conv2d_2' Enter
wait_for wb:0 '^inspect conv2d_2 output' && ok || bad "inspect pane: $(cap wb:0)"
wait_for wb:0 'map 24x24' && ok || bad "inspect map: $(cap wb:0)"
$T send-keys -t wb:0 ':feed test 3' Enter
wait_for wb:0 '^probe test:3' && ok || bad "probe pane: $(cap wb:0)"
wait_for wb:0 'top predictions' && ok || bad "probe predictions: $(cap wb:0)"

# 5. resizes redraw the whole frame: status bar first, footer last, nothing else
frame() { check_frame "$1" "$2" '^ mnist_cnn +(RUNNING|PAUSED) +(ep|epoch) 1/1' '^ spc.*q.detach'; }
$T resize-window -t wb -x 80 -y 24; sleep 0.8; frame 80 24
$T send-keys -t wb:0 Tab; sleep 0.5; frame 80 24
$T resize-window -t wb -x 200 -y 60; sleep 0.8; frame 200 60
cap wb:0 | grep -q 'loss: train' && ok || bad "200x60 shows no curves beside the pane"
# a pane chosen by a command shows beside the curves at once, with no resize
$T send-keys -t wb:0 ':inspect conv2d_1' Enter
wait_for wb:0 '│inspect conv2d_1 output' 20 && ok || bad "200x60: :inspect did not show beside the curves: $(cap wb:0 | head -4)"
$T resize-window -t wb -x 100 -y 30; sleep 0.8; frame 100 30

# 6. tab completion and the history file
$T send-keys -t wb:0 ':insp' Tab ' conv2d_' Tab Tab
wait_for wb:0 'conv2d_1 +conv2d_2' 20 && ok || bad "completion of layer names: $(cap wb:0 | tail -4)"
$T send-keys -t wb:0 Escape; sleep 0.3
$T send-keys -t wb:0 '?'
wait_for wb:0 'keys \(command line not focused\)' && ok || bad "help: $(cap wb:0)"
$T send-keys -t wb:0 x

# 7. q detaches; the run goes on
$T send-keys -t wb:0 q
wait_for wb:0 'EXIT=0' && ok || bad "q did not detach: $(cap wb:0 | tail -3)"
grep -q '^set lr 0.5$' "$tmp/xdg/lathe/history" && ok || bad "history file lacks the command: $(cat "$tmp/xdg/lathe/history" 2>&1)"
kill -0 "$pid" 2>/dev/null && ok || bad "the run died after the detach"

# 8. `lathe attach` without an argument finds the run, here in ASCII
$T new-window -t wb -n two "cd $tmp && env LANG=C LC_ALL=C XDG_DATA_HOME=$tmp/xdg TERM=screen $LATHE attach; echo EXIT=\$?; sleep 120"
wait_for wb:two 'RUNNING' 100 && ok || bad "second attach: $(cap wb:two | head -3)"
wait_for wb:two '^ *[0-9.]+\|' 100 && ok || bad "no ASCII axis: $(cap wb:two | head -6)"
a1=$(step_of wb:two); sleep 2; a2=$(step_of wb:two)
[ -n "$a1" ] && [ -n "$a2" ] && [ "$a2" -gt "$a1" ] && ok || bad "the run does not advance after the detach: '$a1' -> '$a2'"
cap wb:two | LC_ALL=C grep -q $'\xe2' && bad "UTF-8 glyphs in the ASCII screen" || ok

# CPU of the attached workbench over 5 s (a figure, not a check)
pane_pid=$($T display -p -t wb:two '#{pane_pid}')
wpid=$(pgrep -P "$pane_pid" | head -1)
if [ -n "$wpid" ] && [ -r /proc/$wpid/stat ]; then
  t0=$(awk '{print $14 + $15}' /proc/$wpid/stat); sleep 5; t1=$(awk '{print $14 + $15}' /proc/$wpid/stat)
  echo "workbench CPU while attached ($mode run): $(awk -v d=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", d * 100 / hz / 5 }')% of a core over 5 s"
fi
# 9. the run ends: the screen says so, keeps its picture, and q still leaves
kill "$pid"; wait "$pid" 2>/dev/null; pid=
wait_for wb:two 'went away' 100 && ok || bad "no word of the run going away: $(cap wb:two | tail -4)"
cap wb:two | head -1 | grep -q 'GONE' && cap wb:two | grep -q 'loss: train' && ok || bad "the last picture is not kept: $(cap wb:two | head -3)"
$T send-keys -t wb:two q
wait_for wb:two 'EXIT=0' && ok || bad "second q: $(cap wb:two | tail -3)"

finish
