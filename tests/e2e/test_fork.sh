#!/usr/bin/env bash
# Forking a run through the lathe binary:
#  1. `lathe train X --resume last --fork --lr L` starts a new version folder
#     from the parent's last.safetensors: run.yaml names parent, parent_step
#     and forked_hparams, hparams.yaml and metrics.csv carry the new lr, the
#     first metrics row is step S+1, and the parent folder is left byte for
#     byte as it was; a fork that changes nothing trains bitwise as a plain
#     --resume does (so it starts from the checkpoint's weights and state);
#  2. `lathe runs` names the parent (version_0@S), --json gives parent and
#     parent_step;
#  3. --fork without --resume and a --set of an unknown hparam are refused
#     with exit status 2 and no run folder;
#  4. `lathe ctl <run> fork lr=...` on a paused run saves a checkpoint into
#     the parent's checkpoints and starts the fork as a process of its own,
#     which trains in its own folder and names its parent; on a running run
#     it is refused;
#  5. the read-only workbench on the fork (lathe attach, in tmux when there
#     is one) names the parent in the curves' legend.
#   usage: test_fork.sh <lathe binary> <source dir>
. "$(dirname "$0")/lib.sh" "$1"
need_data

root=$tmp/logs
common=(--headless --default-root-dir "$root" --batch-size 32 --limit-val-batches 2 --limit-test-batches 2
  --threads 2 --seed 3)
P=$root/mnist_cnn/version_0
sums() { (cd "$1" && find . -type f ! -name control.sock -exec sha256sum {} + | sort); }
# data_section FILE: the tensor bytes after the safetensors header
data_section() {
  local n
  n=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
  tail -c +$((9 + n)) "$1"
}

# ---- 1. the parent, then a fork of its last checkpoint ----------------------
"$LATHE" train mnist_cnn "${common[@]}" --limit-train-batches 10 --max-epochs 1 --save-last --log-every-n-steps 2 \
  >"$tmp/p.out" 2>"$tmp/p.err"
[ $? -eq 0 ] && [ -f "$P/checkpoints/last.safetensors" ] && ok || bad "parent: $(tail -n 2 "$tmp/p.err")"
S=$(kv steps "$tmp/p.out")
[ "$S" = 10 ] && ok || bad "parent steps $S"
sums "$P" >"$tmp/before.sum"

"$LATHE" train mnist_cnn "${common[@]}" --limit-train-batches 10 --max-epochs 2 --save-last --log-every-n-steps 1 \
  --resume last --fork --lr 0.0005 >"$tmp/f.out" 2>"$tmp/f.err"
[ $? -eq 0 ] && [ "$(kv state "$tmp/f.out")" = done ] && ok || bad "fork: $(tail -n 2 "$tmp/f.err")"
F=$root/mnist_cnn/version_1
[ "$(kv run_dir "$tmp/f.out")" = "$F" ] && ok || bad "fork's folder: $(kv run_dir "$tmp/f.out")"
grep -qxF "lathe: forking $P at $P/checkpoints/last.safetensors with lr=0.0005,batch_size=32" "$tmp/f.err" && ok ||
  bad "fork's note: $(grep forking "$tmp/f.err")"
# yparent FILE DIR: run.yaml names DIR as parent (plain or quoted as YAML may)
yparent() { grep -qxF "parent: $2" "$1" || grep -qxF "parent: '$2'" "$1"; }
yparent "$F/run.yaml" "$P" && ok || bad "run.yaml parent: $(grep parent "$F/run.yaml")"
grep -qxF "parent_step: $S" "$F/run.yaml" && ok || bad "run.yaml parent_step: $(grep parent_step "$F/run.yaml")"
grep -qxF "forked_hparams: 'lr=0.0005,batch_size=32'" "$F/run.yaml" && ok ||
  bad "run.yaml forked_hparams: $(grep forked "$F/run.yaml")"
grep -qxF "lr: 0.0005" "$F/hparams.yaml" && ok || bad "fork's hparams.yaml: $(grep '^lr' "$F/hparams.yaml")"
first=$(awk -F, 'NR == 2 { print $2 }' "$F/metrics.csv")
[ "$first" = $((S + 1)) ] && ok || bad "fork's first metrics step $first, not $((S + 1))"
awk -F, 'NR > 1 && $4 != "" && $4 != "0.0005" { bad = 1 } END { exit bad }' "$F/metrics.csv" && ok ||
  bad "fork's lr column: $(cut -d, -f4 "$F/metrics.csv" | sort -u | tr '\n' ' ')"
[ "$(kv steps "$tmp/f.out")" = $((2 * S)) ] && ok || bad "fork's steps $(kv steps "$tmp/f.out")"
sums "$P" >"$tmp/after.sum"
cmp -s "$tmp/before.sum" "$tmp/after.sum" && ok || bad "the parent folder changed: $(diff "$tmp/before.sum" "$tmp/after.sum")"
grep -q '^parent' "$P/run.yaml" && bad "the parent's run.yaml names a parent" || ok

# a fork that overrides nothing trains bitwise as a plain resume: it starts
# from the checkpoint's weights, optimizer and loader state
"$LATHE" train mnist_cnn "${common[@]}" --limit-train-batches 10 --max-epochs 2 --save-last --name plain \
  --resume "$P/checkpoints/last.safetensors" >"$tmp/r.out" 2>"$tmp/r.err"
[ $? -eq 0 ] && ok || bad "plain resume: $(tail -n 2 "$tmp/r.err")"
"$LATHE" train mnist_cnn "${common[@]}" --limit-train-batches 10 --max-epochs 2 --save-last --name same \
  --resume "$P/checkpoints/last.safetensors" --fork >"$tmp/s.out" 2>"$tmp/s.err"
[ $? -eq 0 ] && ok || bad "fork without overrides: $(tail -n 2 "$tmp/s.err")"
grep -qxF "forked_hparams: 'batch_size=32'" "$root/same/version_0/run.yaml" && ok ||
  bad "fork without lr: $(grep forked "$root/same/version_0/run.yaml")"
cmp -s <(data_section "$root/plain/version_0/checkpoints/last.safetensors") \
  <(data_section "$root/same/version_0/checkpoints/last.safetensors") && ok ||
  bad "a fork without overrides ends with other weights than a plain resume"
[ "$(kv train_loss "$tmp/s.out")" = "$(kv train_loss "$tmp/r.out")" ] && ok ||
  bad "train_loss $(kv train_loss "$tmp/s.out") vs a plain resume's $(kv train_loss "$tmp/r.out")"
# the weights at step S are the checkpoint's: the fork's first logged loss is the resume's
[ "$(sed -n 2p "$F/metrics.csv" | cut -d, -f1-2)" = "1,$((S + 1))" ] && ok || bad "fork's first row: $(sed -n 2p "$F/metrics.csv")"

# ---- 2. lathe runs ----------------------------------------------------------
"$LATHE" runs --root "$root" >"$tmp/runs.out" 2>&1
head -n 1 "$tmp/runs.out" | grep -qE 'optimizer +changed \(start->last\) +parent$' && ok || bad "runs header: $(head -n 1 "$tmp/runs.out")"
awk '$1 == "mnist_cnn" && $2 == "1"' "$tmp/runs.out" | grep -qE " version_0@$S\$" && ok ||
  bad "runs row of the fork: $(awk '$1 == "mnist_cnn" && $2 == "1"' "$tmp/runs.out")"
awk '$1 == "mnist_cnn" && $2 == "0"' "$tmp/runs.out" | grep -qE ' -$' && ok || bad "runs row of the parent"
"$LATHE" runs --root "$root" --json >"$tmp/runs.json" 2>&1
grep -F '"version":"version_1"' "$tmp/runs.json" | grep -qF "\"parent\":\"$P\",\"parent_step\":$S," && ok ||
  bad "runs --json: $(grep -F '"version":"version_1"' "$tmp/runs.json")"
grep -F '"version":"version_0"' "$tmp/runs.json" | grep -F mnist_cnn | grep -qF '"parent":null,"parent_step":null,' &&
  ok || bad "runs --json parent of a run that is no fork"

# ---- 3. refusals ------------------------------------------------------------
n=$(ls "$root/mnist_cnn" | wc -l)
"$LATHE" train mnist_cnn "${common[@]}" --fork >/dev/null 2>"$tmp/e1.err"
[ $? -eq 2 ] && grep -q "needs --resume" "$tmp/e1.err" && ok || bad "--fork alone: $(cat "$tmp/e1.err")"
"$LATHE" train mnist_cnn "${common[@]}" --resume last --fork --set nope=1 >/dev/null 2>"$tmp/e2.err"
[ $? -eq 2 ] && grep -q "unknown hparam 'nope'" "$tmp/e2.err" && ok || bad "--set nope: $(cat "$tmp/e2.err")"
"$LATHE" train mnist_cnn "${common[@]}" --set lr >/dev/null 2>"$tmp/e3.err"
[ $? -eq 2 ] && grep -q "NAME=VALUE" "$tmp/e3.err" && ok || bad "--set lr: $(cat "$tmp/e3.err")"
[ "$(ls "$root/mnist_cnn" | wc -l)" = "$n" ] && ok || bad "a refused fork left a folder: $(ls "$root/mnist_cnn")"

# ---- 4. lathe ctl <run> fork ------------------------------------------------
"$LATHE" train mnist_cnn "${common[@]}" --name live --limit-train-batches 400 --max-epochs 1 \
  >"$tmp/l.out" 2>"$tmp/l.err" &
pid=$!
L=$root/live/version_0
for _ in $(seq 1 100); do [ -S "$L/control.sock" ] && "$LATHE" ctl "$L" status >/dev/null 2>&1 && break; sleep 0.2; done
"$LATHE" ctl "$L" fork lr=0.01 >"$tmp/c0.out" 2>&1
[ $? -ne 0 ] && grep -q "pause the run first" "$tmp/c0.out" && ok || bad "fork of a running run: $(cat "$tmp/c0.out")"
"$LATHE" ctl "$L" pause >/dev/null 2>&1
"$LATHE" ctl "$L" fork lr=0.01 dropout_1.p=0.25 >"$tmp/c.out" 2>&1
[ $? -eq 0 ] && ok || bad "ctl fork: $(cat "$tmp/c.out")"
FK=$(sed -n 's/^run_dir=//p' "$tmp/c.out")
CK=$(sed -n 's/^checkpoint=//p' "$tmp/c.out")
CS=$(sed -n 's/^step=//p' "$tmp/c.out")
[ "$FK" = "$root/live/version_1" ] && ok || bad "ctl fork's folder: $FK"
[ -f "$CK" ] && [ "$(dirname "$CK")" = "$L/checkpoints" ] && ok || bad "ctl fork's checkpoint: $CK"
grep -q '^started=1$' "$tmp/c.out" && grep -q "^command=.* --resume $CK --fork --headless --set lr=0.01 --set dropout_1.p=0.25$" \
  "$tmp/c.out" && ok || bad "ctl fork's reply: $(cat "$tmp/c.out")"
for _ in $(seq 1 150); do [ -S "$FK/control.sock" ] && "$LATHE" ctl "$FK" status >/dev/null 2>&1 && break; sleep 0.2; done
"$LATHE" ctl "$FK" get lr >"$tmp/g.out" 2>&1
grep -qx "lr=0.01" "$tmp/g.out" && ok || bad "the fork's lr: $(cat "$tmp/g.out") $(tail -n 3 "$FK/train.log")"
"$LATHE" ctl "$FK" stop >/dev/null 2>&1
"$LATHE" ctl "$L" status | grep -qx "state=paused" && ok || bad "the parent is no longer paused"
"$LATHE" ctl "$L" stop >/dev/null 2>&1
wait $pid
pid=
for _ in $(seq 1 100); do [ -f "$FK/run.yaml" ] && break; sleep 0.2; done
yparent "$FK/run.yaml" "$L" && grep -qxF "parent_step: $CS" "$FK/run.yaml" && ok ||
  bad "ctl fork's run.yaml: $(grep parent "$FK/run.yaml" 2>&1) $(tail -n 3 "$FK/train.log")"
grep -qxF "forked_hparams: 'batch_size=32,lr=0.01,dropout_1.p=0.25'" "$FK/run.yaml" && ok ||
  bad "ctl fork's forked_hparams: $(grep forked "$FK/run.yaml")"
grep -q "resume" "$L/interventions.csv" 2>/dev/null; grep -q ",fork," "$L/interventions.csv" && ok ||
  bad "the parent's interventions.csv has no fork row"

# ---- 5. the read-only workbench on the fork: the parent's curves, dim --------
if command -v tmux >/dev/null; then
  T="tmux -L lathe-fork-$$"
  $T new-session -d -s wb -x 180 -y 40 \
    "cd $tmp && env LANG=C.UTF-8 LC_ALL=C.UTF-8 XDG_DATA_HOME=$tmp/xdg TERM=screen-256color $LATHE attach $F; sleep 60"
  wait_for wb:0 "dim: parent version_0 to step $S, then this fork" 50 && ok ||
    bad "no parent legend on the fork's curves: $(cap wb:0 | head -3)"
  cap wb:0 | grep -q '0.0005' && ok || bad "the fork's lr not shown"
else
  echo "tmux not found: the read-only workbench part is skipped"
fi

finish
