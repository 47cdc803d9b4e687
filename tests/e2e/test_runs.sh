#!/usr/bin/env bash
# Run folders through the lathe binary: two short runs (one with --name other,
# steered once with lathe ctl) and one killed with SIGKILL, then `lathe runs`
# lists them (done / done / killed, steps, best val_acc) and shrugs off
# garbage under the root; a run folder holds the TensorBoard event file,
# metrics.csv, hparams.yaml, interventions.csv, run.yaml and checkpoints/;
# when $LATHE_PYTHON (else /opt/lathe-venv/bin/python) has tensorboard,
# tests/e2e/check_runlog_tb.py reads the steered run's folder.
#   usage: test_runs.sh <lathe binary> <source dir>
. "$(dirname "$0")/lib.sh" "$1"
SRC=$2
need_data

root=$tmp/logs
common=(--headless --default-root-dir "$root" --batch-size 32 --limit-val-batches 2 --limit-test-batches 2
  --threads 2 --seed 5)
# best_val_acc DIR: the largest val_acc cell of metrics.csv, as `lathe runs` prints it
best_val_acc() { awk -F, 'NR > 1 && $7 != "" && (m == "" || $7 > m) { m = $7 } END { printf "%.4f", m }' "$1/metrics.csv"; }
# runs_row EXPERIMENT VERSION: the fields of that row of the last `lathe runs` table
runs_row() { awk -v e="$1" -v v="$2" '$1 == e && $2 == v' "$tmp/runs.out"; }

# ---- run 1: mlp, 2 epochs of 8 batches, a log row every 4 steps ------------
"$LATHE" train mlp "${common[@]}" --limit-train-batches 8 --max-epochs 2 --log-every-n-steps 4 \
  >"$tmp/r1.out" 2>"$tmp/r1.err"
[ $? -eq 0 ] && [ "$(kv state "$tmp/r1.out")" = done ] && ok || bad "run 1: $(tail -n 2 "$tmp/r1.err")"
R1=$root/mlp/version_0

# ---- run 2: --name other, paused, lr set and resumed through lathe ctl ------
"$LATHE" train mlp "${common[@]}" --name other --limit-train-batches 400 --max-epochs 2 --log-every-n-steps 100 \
  >"$tmp/r2.out" 2>"$tmp/r2.err" &
pid=$!
R2=$root/other/version_0
for _ in $(seq 1 1500); do [ -S "$R2/control.sock" ] && break; sleep 0.02; done
"$LATHE" ctl "$R2" pause >"$tmp/ctl.out" 2>&1 && "$LATHE" ctl "$R2" set lr 0.002 >>"$tmp/ctl.out" 2>&1 && ok ||
  bad "ctl pause / set lr: $(cat "$tmp/ctl.out")"
# while it is paused its socket answers: lathe runs says running
"$LATHE" runs --root "$root" >"$tmp/runs.out" 2>&1
[ "$(runs_row other 0 | awk '{print $3}')" = running ] && ok || bad "live run not running: $(cat "$tmp/runs.out")"
"$LATHE" ctl "$R2" resume >>"$tmp/ctl.out" 2>&1 && ok || bad "ctl resume: $(cat "$tmp/ctl.out")"
wait "$pid"
rc=$?
pid=
[ $rc -eq 0 ] && [ "$(kv state "$tmp/r2.out")" = done ] && [ "$(kv steps "$tmp/r2.out")" = 800 ] && ok ||
  bad "run 2 exited $rc: $(tail -n 1 "$tmp/r2.out") $(tail -n 2 "$tmp/r2.err")"

# ---- run 3: killed (SIGKILL) after its first logged rows --------------------
"$LATHE" train mlp "${common[@]}" --name killed --limit-train-batches 400 --max-epochs 100 --log-every-n-steps 5 \
  >"$tmp/r3.out" 2>"$tmp/r3.err" &
pid=$!
R3=$root/killed/version_0
for _ in $(seq 1 1500); do
  [ -f "$R3/metrics.csv" ] && [ "$(wc -l <"$R3/metrics.csv")" -ge 3 ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.02
done
kill -9 "$pid" 2>/dev/null
{ wait "$pid"; } 2>/dev/null # no "Killed" line from bash
rc=$?
pid=
[ $rc -eq 137 ] && ok || bad "run 3 was not killed mid-run (exit $rc): $(tail -n 2 "$tmp/r3.err")"

# ---- what a run folder holds ------------------------------------------------
for d in "$R1" "$R2"; do
  n=$(ls "$d" | grep -c '^events\.out\.tfevents\.')
  [ "$n" -eq 1 ] && ok || bad "$d: $n event files: $(ls "$d")"
  for f in metrics.csv hparams.yaml interventions.csv run.yaml; do [ -s "$d/$f" ] && ok || bad "$d/$f missing or empty"; done
  [ -d "$d/checkpoints" ] && ls "$d/checkpoints" | grep -q '\.safetensors$' && ok ||
    bad "$d/checkpoints: $(ls -A "$d/checkpoints" 2>&1)"
  [ "$(head -n 1 "$d/metrics.csv")" = "epoch,step,train_loss,lr,samples_per_s,val_loss,val_acc,test_loss,test_acc" ] &&
    ok || bad "$d/metrics.csv header: $(head -n 1 "$d/metrics.csv")"
  [ "$(head -n 1 "$d/interventions.csv")" = "time,step,client,command,name,old,new" ] && ok ||
    bad "$d/interventions.csv header: $(head -n 1 "$d/interventions.csv")"
  # every row has the header's 9 cells; no torn lines
  awk -F, 'NR > 1 && NF != 9 { exit 1 }' "$d/metrics.csv" && ok || bad "$d/metrics.csv has rows without 9 cells"
  grep -qx 'state: done' "$d/run.yaml" && ok || bad "$d/run.yaml: $(head -n 3 "$d/run.yaml")"
done
# run 1's rows: train at steps 4 8 12 16, validation at 8 16, test at 16
train_steps=$(awk -F, 'NR > 1 && $3 != "" { printf "%s ", $2 }' "$R1/metrics.csv")
val_steps=$(awk -F, 'NR > 1 && $7 != "" { printf "%s ", $2 }' "$R1/metrics.csv")
test_steps=$(awk -F, 'NR > 1 && $9 != "" { printf "%s ", $2 }' "$R1/metrics.csv")
[ "$train_steps|$val_steps|$test_steps" = "4 8 12 16 |8 16 |16 " ] && ok ||
  bad "run 1 metrics.csv steps: train '$train_steps' val '$val_steps' test '$test_steps'"
[ "$(wc -l <"$R1/metrics.csv")" -eq 8 ] && ok || bad "run 1 metrics.csv: $(wc -l <"$R1/metrics.csv") lines, expected 8"
for kvp in 'experiment: mlp' 'optimizer: adam' 'lr: 0.001' 'batch_size: 32' 'max_epochs: 2' 'seed: 5'; do
  grep -qxF "$kvp" "$R1/hparams.yaml" && ok || bad "hparams.yaml lacks '$kvp': $(tr '\n' ' ' <"$R1/hparams.yaml")"
done
sort -c <(cut -d: -f1 "$R1/hparams.yaml") 2>/dev/null && ok || bad "hparams.yaml keys not sorted"
[ "$(wc -l <"$R1/interventions.csv")" -eq 1 ] && ok || bad "run 1 had no interventions: $(cat "$R1/interventions.csv")"
grep -q '^[0-9T:.-]*Z,[0-9]*,[0-9]*,set,lr,0\.001,0\.002$' "$R2/interventions.csv" && ok ||
  bad "run 2 interventions.csv lacks the lr change: $(cat "$R2/interventions.csv")"
grep -q ',pause,' "$R2/interventions.csv" && grep -q ',resume,' "$R2/interventions.csv" && ok ||
  bad "run 2 interventions.csv lacks pause / resume"
[ ! -e "$R3/run.yaml" ] && [ -s "$R3/metrics.csv" ] && ok || bad "killed run: run.yaml present or metrics.csv empty"

# ---- lathe runs ---------------------------------------------------------------
check_table() { # $1: what
  [ "$rc" -eq 0 ] && ok || bad "$1: lathe runs exited $rc: $(cat "$tmp/runs.err")"
  head -n 1 "$tmp/runs.out" | grep -q '^experiment  *version  *state  *steps  *val_acc' && ok ||
    bad "$1: header: $(head -n 1 "$tmp/runs.out")"
  set -- "$1" $(runs_row mlp 0)
  [ "$4|$5|$6" = "done|16|$(best_val_acc "$R1")" ] && ok || bad "$1: mlp row '${*:2}', expected done 16 $(best_val_acc "$R1")"
  set -- "$1" $(runs_row other 0)
  [ "$4|$5|$6" = "done|800|$(best_val_acc "$R2")" ] && ok ||
    bad "$1: other row '${*:2}', expected done 800 $(best_val_acc "$R2")"
  # the lr the run started with, labelled so, and what `set` changed as start->last
  head -n 1 "$tmp/runs.out" | grep -q '  start_lr  batch_size  optimizer  changed (start->last)  parent$' && ok ||
    bad "$1: header lacks start_lr / changed: $(head -n 1 "$tmp/runs.out")"
  runs_row other 0 | grep -qE ' 0\.001 +32 +adam +lr 0\.001->0\.002 +-$' && ok ||
    bad "$1: other row lacks start lr 0.001 and the change lr 0.001->0.002: $(runs_row other 0)"
  runs_row mlp 0 | grep -qE ' 0\.001 +32 +adam +- +-$' && ok || bad "$1: mlp row (nothing changed): $(runs_row mlp 0)"
  set -- "$1" $(runs_row killed 0)
  [ "$4" = killed ] && [ "$5" -ge 5 ] 2>/dev/null && ok || bad "$1: killed row '${*:2}', expected killed with steps"
}
"$LATHE" runs --root "$root" >"$tmp/runs.out" 2>"$tmp/runs.err"
rc=$?
check_table "clean root"
[ "$(wc -l <"$tmp/runs.out")" -eq 4 ] && ok || bad "expected a header and 3 rows: $(cat "$tmp/runs.out")"

# garbage: random bytes where run files belong, a torn CSV, a huge line, a
# regular file named control.sock, stray files, an empty folder, symlink loops
g=$root/junk
mkdir -p "$g/version_3" "$g/version_4" "$g/version_5" "$root/emptyexp" "$root/other/not_a_run"
head -c 4000 /dev/urandom >"$g/version_3/run.yaml"
head -c 4000 /dev/urandom >"$g/version_3/metrics.csv"
head -c 4000 /dev/urandom >"$g/version_3/hparams.yaml"
printf 'epoch,step,train_loss\n0,1' >"$g/version_4/metrics.csv"
head -c 200000 /dev/zero | tr '\0' 'x' >"$g/version_4/run.yaml"
printf 'state: done\nsteps: -5\nsteps: 99999999999999999999999\n' >"$g/version_5/run.yaml"
echo 'not a socket' >"$g/version_5/control.sock"
head -c 1000 /dev/urandom >"$root/garbage.bin"
echo notes >"$root/mlp/notes.txt"
ln -s loop "$root/loop"
ln -s . "$root/mlp/version_7"
ln -s /nonexistent "$root/mlp/version_8"
"$LATHE" runs --root "$root" >"$tmp/runs.out" 2>"$tmp/runs.err"
rc=$?
check_table "root with garbage"
[ "$(runs_row junk 5 | awk '{print $3}')" = done ] && ok || bad "junk/version_5 (control.sock a regular file): $(runs_row junk 5)"
"$LATHE" runs --root "$tmp/nothing" >"$tmp/out" 2>&1 && grep -q 'does not exist' "$tmp/out" && ok ||
  bad "runs --root <missing>: $(cat "$tmp/out")"
# --json: the same rows as JSON that python3's json module reads, garbage included
"$LATHE" runs --root "$root" --json >"$tmp/runs.json" 2>"$tmp/runs.err" &&
  python3 - "$tmp/runs.json" "$(($(wc -l <"$tmp/runs.out") - 1))" <<'PY' && ok || bad "runs --json: $(head -c 600 "$tmp/runs.json")"
import json, sys
rows = json.load(open(sys.argv[1], encoding="utf-8"))
assert len(rows) == int(sys.argv[2]), (len(rows), sys.argv[2])
mlp = [r for r in rows if r["experiment"] == "mlp" and r["version"] == "version_0"][0]
assert mlp["state"] == "done" and mlp["steps"] == 16 and mlp["version_num"] == 0, mlp
assert mlp["optimizer"] and 0 < mlp["best_val_acc"] <= 1 and mlp["batch_size"] == 32, mlp
assert mlp["lr"] == 0.001 and mlp["changed"] == {}, mlp
other = [r for r in rows if r["experiment"] == "other" and r["version"] == "version_0"][0]
assert other["lr"] == 0.001 and other["changed"] == {"lr": {"start": 0.001, "last": 0.002}}, other
PY
[ "$("$LATHE" runs --root "$tmp/nothing" --json 2>&1)" = "[]" ] && ok || bad "runs --json on a missing root"

# ---- TensorBoard's reader on the steered run ---------------------------------
PY=${LATHE_PYTHON:-/opt/lathe-venv/bin/python}
if [ -x "$PY" ] && "$PY" -c 'import tensorboard, numpy' >/dev/null 2>&1; then
  "$PY" "$SRC/tests/e2e/check_runlog_tb.py" "$R2" 100,200,300,400,500,600,700,800 400,800 800 400,800 \
    >"$tmp/tb.out" 2>&1 && ok || bad "check_runlog_tb.py $R2: $(grep -v '^ok' "$tmp/tb.out" | tail -n 15)"
else
  echo "note: no Python with tensorboard at $PY: TensorBoard reader check skipped"
fi

# a sanitizer build (-DLATHE_SANITIZE=ON) reports on stderr
san=$(grep -l 'runtime error:\|AddressSanitizer\|LeakSanitizer' "$tmp"/*.err "$tmp"/*.out 2>/dev/null)
[ -z "$san" ] && ok || bad "sanitizer reports in $san: $(grep -h -m 3 'runtime error:\|Sanitizer' $san)"

finish
