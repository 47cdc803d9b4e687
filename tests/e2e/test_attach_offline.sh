#!/usr/bin/env bash
# `lathe attach <RUN_DIR>` on runs that have ended, driven through tmux: the
# read-only view shows the final state, the experiment, the curves and the
# hparams table from the run's files; steering commands and keys answer
# "this run has ended: read-only view of <dir>"; resizes redraw; q exits 0.
# A second run is steered with `lathe ctl` (pause, set lr, stop) before it
# ends, so its view shows STOPPED, the changed lr and the change history.
#   usage: test_attach_offline.sh <lathe binary> <source dir>
. "$(dirname "$0")/lib.sh" "$1"
need_tmux "the read-only attach test"
need_data
T="tmux -L lathe-offline-$$"
# the newest line of the message area (the two rows above the footer hold the command line and footer)
last_msg() { cap "$1" | tail -3 | head -1; }
ENVS="LANG=C.UTF-8 LC_ALL=C.UTF-8 XDG_DATA_HOME=$tmp/xdg TERM=screen-256color"

# ---- run A: a short run that finishes on its own ----
(cd "$tmp" && exec "$LATHE" train mlp --headless --default-root-dir "$tmp/logs" --batch-size 32 --max-steps 30 \
  --limit-val-batches 2 --limit-test-batches 2 --val-check-interval 10 --log-every-n-steps 5 \
  >"$tmp/a.out" 2>"$tmp/a.err")
rc=$?
A=$tmp/logs/mlp/version_0
[ $rc -eq 0 ] && [ -f "$A/run.yaml" ] && [ -f "$A/metrics.csv" ] && ok || { bad "run A: rc $rc, $(tail -2 "$tmp/a.err")"; echo "$passed passed, $fail failed"; exit 1; }
[ ! -S "$A/control.sock" ] && ok || bad "run A left a control.sock"

$T new-session -d -s wb -x 100 -y 30 "cd $tmp && env $ENVS $LATHE attach $A; echo EXIT=\$?; sleep 120"

# 1. the status bar says DONE with the experiment and the final step; a curve is drawn
wait_for wb:0 '^ mlp +DONE ' 50 && ok || bad "no 'mlp DONE' on the status bar: $(cap wb:0 | head -2)"
cap wb:0 | head -1 | grep -qE 'step 30/30' && ok || bad "status bar lacks step 30/30: $(cap wb:0 | head -1)"
wait_for wb:0 '^ *[0-9.]+│' 20 && ok || bad "no loss curve drawn: $(cap wb:0 | head -8)"
cap wb:0 | grep -qE '^val acc 0\.[0-9]+' && ok || bad "no val acc plot with its last value: $(cap wb:0)"
cap wb:0 | grep -q 'learning rate 0.001' && ok || bad "no learning-rate plot: $(cap wb:0)"
cap wb:0 | grep -qE '^final: train_loss [0-9.]+ +val_loss [0-9.]+ +val_acc [0-9.]+ +test_acc [0-9.]+' && ok ||
  bad "no final metrics line: $(cap wb:0 | tail -6)"
cap wb:0 | tail -1 | grep -q 'q close' && ok || bad "footer: $(cap wb:0 | tail -1)"
# a run that has ended is not offered pause, step or validate: the footer says why
cap wb:0 | tail -1 | grep -q '^ read-only: the run has ended ' && ! cap wb:0 | tail -1 | grep -qE 'pause|step|validate' &&
  ok || bad "footer offers steering in the read-only view: $(cap wb:0 | tail -1)"
# the layers pane says what a finished run has instead of waiting forever
$T send-keys -t wb:0 3
wait_for wb:0 'no layers snapshot in this run' 20 && ok || bad "layers pane: $(cap wb:0 | head -6)"
! cap wb:0 | grep -q 'waiting for the layers snapshot' && ok || bad "layers pane still waits: $(cap wb:0 | head -6)"
# as do the inspector and the probe, which need a live run
$T send-keys -t wb:0 4
wait_for wb:0 'no tensors: inspecting needs a live run' 20 && ok || bad "inspect pane: $(cap wb:0 | head -6)"
$T send-keys -t wb:0 5
wait_for wb:0 'no probe: feeding an input needs a live run' 20 && ok || bad "probe pane: $(cap wb:0 | head -6)"
# and the help's title says the steering keys need a live run
$T send-keys -t wb:0 '?'
wait_for wb:0 'help  \(read-only: the run has ended' 20 && ok || bad "help of the read-only view: $(cap wb:0 | head -4)"
$T send-keys -t wb:0 z # any key closes the help
sleep 0.3
$T send-keys -t wb:0 1

# 2. the hparams table from hparams.yaml
$T send-keys -t wb:0 ':hparams' Enter
wait_for wb:0 '^lr +0\.001 *' 20 && ok || bad "hparams table lacks lr 0.001: $(cap wb:0)"
cap wb:0 | grep -qE '^batch_size +32' && ok || bad "hparams table lacks batch_size 32: $(cap wb:0)"
cap wb:0 | grep -q '(none yet)' && ok || bad "the change history of an unsteered run is not empty: $(cap wb:0)"

# 3. steering is refused with one line, by command and by key; nothing changes
ended="this run has ended: read-only view of $A\$"
$T send-keys -t wb:0 ':pause' Enter
wait_for wb:0 "$ended" 20 && ok || bad ":pause was not refused: $(cap wb:0 | tail -5)"
cap wb:0 | grep -q '^> pause' && ok || bad "the typed command is not echoed: $(cap wb:0 | tail -5)"
$T send-keys -t wb:0 ':set lr 0.5' Enter
sleep 0.4
last_msg wb:0 | grep -qE "$ended" && ok || bad ":set was not refused: $(cap wb:0 | tail -5)"
cap wb:0 | grep -qE '^lr +0\.001 *$' && ok || bad "lr changed in a read-only view: $(cap wb:0 | grep '^lr')"
$T send-keys -t wb:0 ':get lr' Enter
wait_for wb:0 '^lr=0\.001$' 20 && ok || bad ":get lr not answered from the files: $(cap wb:0 | tail -5)"
$T send-keys -t wb:0 ' '
sleep 0.4
last_msg wb:0 | grep -qE "$ended" && ok || bad "space was not refused: $(cap wb:0 | tail -5)"
cap wb:0 | head -1 | grep -q 'DONE' && ok || bad "the state changed after space: $(cap wb:0 | head -1)"
$T send-keys -t wb:0 ':inspect dense_1' Enter
sleep 0.4
last_msg wb:0 | grep -qE "$ended" && ok || bad ":inspect was not refused: $(cap wb:0 | tail -5)"

# 4. resizes redraw the whole frame: status bar first, footer last
frame() { check_frame "$1" "$2" '^ mlp +DONE +(ep|epoch) 1/10' '^ read-only: the run has ended .*q.close'; }
$T resize-window -t wb -x 80 -y 24; sleep 0.8; frame 80 24
$T resize-window -t wb -x 200 -y 60; sleep 0.8; frame 200 60
cap wb:0 | grep -q 'loss: train' && cap wb:0 | grep -qE '│lr +0\.001' && ok || bad "200x60: curves beside the hparams: $(cap wb:0 | head -12)"
$T resize-window -t wb -x 100 -y 30; sleep 0.8; frame 100 30

# 5. q leaves with status 0
$T send-keys -t wb:0 q
wait_for wb:0 'EXIT=0' 25 && ok || bad "q did not exit 0: $(cap wb:0 | tail -3)"

# ---- run B: steered while live, then stopped ----
(cd "$tmp" && exec "$LATHE" train mlp --headless --default-root-dir "$tmp/logs" --name steered --batch-size 32 \
  --max-epochs 1000 --limit-train-batches 20 --limit-val-batches 2 --limit-test-batches 2 --threads 1 \
  --log-every-n-steps 5 >"$tmp/b.out" 2>"$tmp/b.err") &
pid=$!
B=$tmp/logs/steered/version_0
for _ in $(seq 1 200); do [ -S "$B/control.sock" ] && break; sleep 0.1; done
ctl_ok=1
for c in "pause" "set lr 0.01" "resume" "stop"; do
  # shellcheck disable=SC2086
  "$LATHE" ctl "$B" $c >"$tmp/ctl.out" 2>"$tmp/ctl.err" || { ctl_ok=0; bad "ctl $c: $(cat "$tmp/ctl.err")"; }
  [ "$c" = resume ] && sleep 0.3
done
[ $ctl_ok -eq 1 ] && ok
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
wait "$pid" 2>/dev/null
pid=
grep -q '^.*,set,lr,0.001,0.01$' "$B/interventions.csv" && ok || bad "interventions.csv: $(cat "$B/interventions.csv")"

$T new-window -t wb -n two "cd $tmp && env $ENVS $LATHE attach $B; echo EXIT=\$?; sleep 120"
wait_for wb:two '^ mlp +STOPPED ' 50 && ok || bad "no 'mlp STOPPED': $(cap wb:two | head -2)"
$T send-keys -t wb:two ':changes' Enter
wait_for wb:two '^lr +0\.01 *' 20 && ok || bad "the hparams table lacks the lr the run ended with: $(cap wb:two)"
cap wb:two | grep -qE ' [0-9]+ +lr +0\.001 -> 0\.01 +[0-9]+$' && ok || bad "no lr change in the history: $(cap wb:two)"
$T send-keys -t wb:two 6
wait_for wb:two 'client [0-9]+: set lr 0\.001 -> 0\.01' 20 && ok || bad "the log pane lacks the set: $(cap wb:two)"
cap wb:two | grep -qE 'client [0-9]+: pause$' && cap wb:two | grep -qE 'client [0-9]+: stop$' && ok ||
  bad "the log pane lacks pause/stop: $(cap wb:two)"
[ "$(cap wb:two | grep -cE 'client [0-9]+: stop$')" -eq 1 ] && ok ||
  bad "the log's last line is repeated in the message strip: $(cap wb:two | tail -8)"
$T send-keys -t wb:two 'n'
sleep 0.4
# the log pane is up: the refusal is its newest line (the strip below does not repeat it)
cap wb:two | grep -qE "this run has ended: read-only view of $B\$" && ok || bad "n was not refused: $(cap wb:two | tail -5)"
$T send-keys -t wb:two q
wait_for wb:two 'EXIT=0' 25 && ok || bad "q did not exit 0 (run B): $(cap wb:two | tail -3)"

# 6. no argument and no live run under ./logs: the newest run (B), read-only
$T new-window -t wb -n three "cd $tmp && env $ENVS $LATHE attach; echo EXIT=\$?; sleep 120"
wait_for wb:three '^ mlp +STOPPED ' 50 && ok || bad "attach without an argument: $(cap wb:three | head -3)"
$T send-keys -t wb:three q
wait_for wb:three 'EXIT=0' 25 && ok || bad "q did not exit 0 (no argument): $(cap wb:three | tail -3)"

# 7. not a run folder: a clear error, no screen
mkdir -p "$tmp/empty"
"$LATHE" attach "$tmp/empty" >/dev/null 2>"$tmp/e.err" </dev/null
rc=$?
[ $rc -ne 0 ] && grep -q 'no control.sock' "$tmp/e.err" && ok || bad "attach on an empty folder: rc $rc, $(cat "$tmp/e.err")"

finish
