#!/usr/bin/env bash
# `lathe train` on a terminal, driven through tmux: its own workbench shows the
# epoch's progress bar and says that q detaches while the run goes on; after q
# the run carries on in that terminal and says so; a run that finishes shows
# its final metrics with the test results, the footer says q closes, and the
# summary's seconds= leave out the time the finished screen stayed open.
#   usage: test_train_screen.sh <lathe binary> <source dir>
. "$(dirname "$0")/lib.sh" "$1"
need_tmux "the lathe train screen test"
need_data
T="tmux -L lathe-train-$$"
ENVS="LANG=C.UTF-8 LC_ALL=C.UTF-8 XDG_DATA_HOME=$tmp/xdg TERM=screen-256color"
common="--default-root-dir $tmp/logs --batch-size 32 --limit-val-batches 2 --limit-test-batches 2 --log-every-n-steps 5 --threads 1"

# ---- 1. a long run: q detaches, the run goes on here ----
$T new-session -d -s wb -x 100 -y 30 "cd $tmp && env $ENVS $LATHE train mlp --name long --max-epochs 1000 --limit-train-batches 40 $common; echo EXIT=\$?; sleep 120"
wait_for wb:0 '^ mlp +RUNNING' 150 && ok || bad "no RUNNING: $(cap wb:0 | head -3)"
wait_for wb:0 '^ Epoch [0-9]+/1000 \[' 50 && ok || bad "no progress bar: $(cap wb:0 | head -3)"
cap wb:0 | tail -1 | grep -q 'q detach' && ok || bad "the footer does not say q detaches: $(cap wb:0 | tail -1)"
# a message longer than the screen is wrapped, not cut: inspect's list of layers ends on screen
long_name=$(printf 'x%.0s' $(seq 1 60))
$T send-keys -t wb:0 ":inspect $long_name" Enter
wait_for wb:0 'dense_3\)$' 50 && ok || bad "the list of layers is cut at 100 columns: $(cap wb:0 | tail -6)"
$T send-keys -t wb:0 q
wait_for wb:0 'detached; the run goes on here with progress lines' 50 && ok || bad "no detach message: $(cap wb:0 | tail -5)"
"$LATHE" ctl "$tmp/logs/long/version_0" stop >/dev/null 2>&1
wait_for wb:0 'EXIT=0' 100 && ok || bad "the detached run did not end on stop: $(cap wb:0 | tail -5)"
cap wb:0 | grep -q 'state=stopped' && ok || bad "no summary after the detach: $(cap wb:0 | tail -5)"

# ---- 2. a short run that finishes: final metrics, q close, seconds= ----
t0=$(date +%s.%N)
$T new-window -t wb -n two "cd $tmp && env $ENVS $LATHE train mlp --name short --max-steps 20 --val-check-interval 10 $common; echo EXIT=\$?; sleep 120"
wait_for wb:two '^ mlp +DONE' 200 && ok || bad "no DONE: $(cap wb:two | head -3)"
wait_for wb:two '^ final: train_loss [0-9.]+ +val_loss [0-9.]+ +val_acc [0-9.]+ +test_loss [0-9.]+ +test_acc [0-9.]+' 20 && ok ||
  bad "no final metrics with the test's: $(cap wb:two | head -3)"
cap wb:two | tail -1 | grep -q 'q close' && ok || bad "the footer of a finished run: $(cap wb:two | tail -1)"
sleep 3 # the finished screen stays open
t1=$(date +%s.%N)
$T send-keys -t wb:two q
wait_for wb:two 'EXIT=0' 50 && ok || bad "q did not end the finished run with 0: $(cap wb:two | tail -4)"
secs=$(cap wb:two | tr ' ' '\n' | sed -n 's/^seconds=//p' | tail -1)
awk -v s="$secs" -v a="$t0" -v b="$t1" 'BEGIN { exit !(s != "" && s + 2.5 < b - a) }' && ok ||
  bad "seconds=$secs counts the finished screen's time (open for $(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}') s)"

# ---- 3. --headless on a terminal: the progress line is a bar redrawn in place ----
$T new-window -t wb -n three "cd $tmp && env $ENVS $LATHE train mlp --headless --name hl --max-steps 30 --val-check-interval 10 $common; echo EXIT=\$?; sleep 120"
wait_for wb:three 'EXIT=0' 150 && ok || bad "the headless run: $(cap wb:three | tail -4)"
cap wb:three | grep -qE '^Epoch [0-9]+/[0-9]+ \[[=>.]+\] [0-9]+/[0-9]+ +[0-9]+%  [0-9]+ samples/s  ETA [0-9:]+  loss [0-9.]+  step 30/30' && ok ||
  bad "no progress bar on the headless terminal: $(cap wb:three)"
finish
