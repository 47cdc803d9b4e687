#!/usr/bin/env bash
# --resume on 2 ranks under a real mpirun: a run stopped after a checkpoint
# (--max-steps) and resumed on 2 ranks, from the mid-epoch checkpoint file and
# with --resume last, and a run whose ranks were killed after a checkpoint and
# resumed from it, end as the uninterrupted 2-rank run: every tensor of
# last.safetensors bitwise equal, the same summary line. A checkpoint written
# in the middle of an epoch by another world size is refused with one line,
# exit 2 (on every rank); one written at an epoch's end resumes.
#   usage: test_ddp_resume.sh <lathe binary> <source dir>
. "$(dirname "$0")/lib.sh" "$1"
need_data
need_mpi
one=(--headless --seed 1 --threads 1 --limit-val-batches 2 --limit-test-batches 2 --batch-size 16 --max-epochs 3
  --limit-train-batches 10 --every-n-train-steps 4 --save-last)
two=("${one[@]}" --strategy ddp --devices 2)

# same_tensors A B: every tensor of A has B's bytes, and B has no other
same_tensors() {
  python3 - "$1" "$2" <<'EOF'
import json, struct, sys
def load(p):
    with open(p, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        d = f.read()
    return {k: d[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in h.items() if k != "__metadata__"}
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a.keys() == b.keys(), sorted(set(a) ^ set(b))
diff = [k for k in a if a[k] != b[k]]
assert not diff, "differ: %s" % diff[:5]
EOF
}
# the summary line less what depends on the clock and the folder
summary() { grep '^steps=' "$1" | sed 's/ seconds=[^ ]*//; s/ samples_per_s=[^ ]*//; s/ run_dir=.*//'; }

# ---- the uninterrupted run ----
timeout 120 "${MPI[@]}" "$LATHE" train mlp_sgd "${two[@]}" --default-root-dir "$tmp/a" >"$tmp/a.out" 2>"$tmp/a.err"
rc=$?
[ $rc -eq 0 ] && grep -q '^steps=30 ' "$tmp/a.out" && ok || bad "the whole run: exit $rc, $(tail -c 600 "$tmp/a.err")"

# ---- stopped at step 13, resumed from the checkpoint of step 12 (mid-epoch) ----
timeout 120 "${MPI[@]}" "$LATHE" train mlp_sgd "${two[@]}" --max-steps 13 --default-root-dir "$tmp/b" \
  >"$tmp/b.out" 2>"$tmp/b.err" || bad "the stopped run: $(tail -c 600 "$tmp/b.err")"
ck="$tmp/b/mlp_sgd/version_0/checkpoints"
[ -f "$ck/epoch=1-step=12.safetensors" ] && ok || bad "no step-12 checkpoint: $(ls "$ck")"
timeout 120 "${MPI[@]}" "$LATHE" train mlp_sgd "${two[@]}" --resume "$ck/epoch=1-step=12.safetensors" \
  --default-root-dir "$tmp/b" >"$tmp/b1.out" 2>"$tmp/b1.err"
rc=$?
[ $rc -eq 0 ] && ok || bad "resume from a file on 2 ranks: exit $rc, $(tail -c 600 "$tmp/b1.err")"
[ -n "$(summary "$tmp/a.out")" ] && [ "$(summary "$tmp/b1.out")" = "$(summary "$tmp/a.out")" ] && ok ||
  bad "resumed: $(summary "$tmp/b1.out"), whole: $(summary "$tmp/a.out")"
out=$(same_tensors "$tmp/a/mlp_sgd/version_0/checkpoints/last.safetensors" \
  "$tmp/b/mlp_sgd/version_1/checkpoints/last.safetensors" 2>&1) && ok || bad "resumed from a file: $out"

# ---- --resume last: rank 0 finds it (last.safetensors of step 13) and tells the others ----
timeout 120 "${MPI[@]}" "$LATHE" train mlp_sgd "${two[@]}" --max-steps 13 --default-root-dir "$tmp/c" \
  >"$tmp/c.out" 2>"$tmp/c.err" || bad "the stopped run: $(tail -c 600 "$tmp/c.err")"
timeout 120 "${MPI[@]}" "$LATHE" train mlp_sgd "${two[@]}" --resume last --default-root-dir "$tmp/c" \
  >"$tmp/c1.out" 2>"$tmp/c1.err"
rc=$?
[ $rc -eq 0 ] && ok || bad "--resume last on 2 ranks: exit $rc, $(tail -c 600 "$tmp/c1.err")"
[ "$(grep -c '^lathe: resuming from .*/version_0/checkpoints/last.safetensors$' "$tmp/c1.err")" = 1 ] && ok ||
  bad "resuming line: $(grep resuming "$tmp/c1.err")"
[ -n "$(summary "$tmp/a.out")" ] && [ "$(summary "$tmp/c1.out")" = "$(summary "$tmp/a.out")" ] && ok ||
  bad "resumed last: $(summary "$tmp/c1.out"), whole: $(summary "$tmp/a.out")"
out=$(same_tensors "$tmp/a/mlp_sgd/version_0/checkpoints/last.safetensors" \
  "$tmp/c/mlp_sgd/version_1/checkpoints/last.safetensors" 2>&1) && ok || bad "resumed last: $out"

# ---- killed (SIGKILL of both ranks) after a checkpoint, resumed from the newest one ----
long=(--headless --seed 1 --threads 1 --limit-val-batches 2 --limit-test-batches 2 --batch-size 16 --max-epochs 20
  --limit-train-batches 50 --every-n-train-steps 50 --save-last --strategy ddp --devices 2)
timeout 300 "${MPI[@]}" "$LATHE" train mlp_sgd "${long[@]}" --default-root-dir "$tmp/la" >"$tmp/la.out" 2>"$tmp/la.err" ||
  bad "the whole long run: $(tail -c 600 "$tmp/la.err")"
timeout 300 "${MPI[@]}" "$LATHE" train mlp_sgd "${long[@]}" --default-root-dir "$tmp/k" >"$tmp/k.out" 2>"$tmp/k.err" &
pid=$!
kc="$tmp/k/mlp_sgd/version_0/checkpoints"
for _ in $(seq 1 2400); do ls "$kc"/epoch=*.safetensors >/dev/null 2>&1 && break; sleep 0.05; done # (up to 2 min: a loaded machine)
for p in $(pgrep -f "lathe train mlp_sgd.*$tmp/k"); do
  tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -q '^OMPI_COMM_WORLD_RANK=' && kill -9 "$p"
done
wait $pid
rc=$?
pid=
[ $rc -ne 0 ] && ok || bad "the run to kill ended by itself (exit $rc): $(grep '^steps=' "$tmp/k.out")"
newest=$(ls -t "$kc"/epoch=*.safetensors 2>/dev/null | head -n 1)
timeout 300 "${MPI[@]}" "$LATHE" train mlp_sgd "${long[@]}" --resume "$newest" --default-root-dir "$tmp/k" \
  >"$tmp/k1.out" 2>"$tmp/k1.err"
rc=$?
[ $rc -eq 0 ] && ok || bad "resumed after the kill from '$newest': exit $rc, $(tail -c 600 "$tmp/k1.err")"
[ -n "$(summary "$tmp/la.out")" ] && [ "$(summary "$tmp/k1.out")" = "$(summary "$tmp/la.out")" ] && ok ||
  bad "resumed after the kill: $(summary "$tmp/k1.out"), whole: $(summary "$tmp/la.out")"
out=$(same_tensors "$tmp/la/mlp_sgd/version_0/checkpoints/last.safetensors" \
  "$tmp/k/mlp_sgd/version_1/checkpoints/last.safetensors" 2>&1) && ok || bad "resumed after the kill: $out"

# ---- another world size ----
# mid-epoch, 2 ranks' checkpoint on 1 process: one line, exit 2
"$LATHE" train mlp_sgd "${one[@]}" --resume "$ck/epoch=1-step=12.safetensors" --default-root-dir "$tmp/w1" \
  >"$tmp/w1.out" 2>"$tmp/w1.err"
rc=$?
[ $rc -eq 2 ] && [ "$(wc -l <"$tmp/w1.err")" = 1 ] &&
  grep -q "written by a run of 2 ranks in the middle of epoch 2 (after batch 2); this run has 1" "$tmp/w1.err" && ok ||
  bad "2 ranks' mid-epoch checkpoint on 1: exit $rc, $(cat "$tmp/w1.err")"
# mid-epoch, 1 process's checkpoint on 2 ranks: rank 0's one line, every rank exits 2
"$LATHE" train mlp_sgd "${one[@]}" --max-steps 13 --default-root-dir "$tmp/s" >"$tmp/s.out" 2>"$tmp/s.err" ||
  bad "one process: $(tail -c 400 "$tmp/s.err")"
timeout 120 "${MPI[@]}" "$LATHE" train mlp_sgd "${two[@]}" --resume "$tmp/s/mlp_sgd/version_0/checkpoints/epoch=1-step=12.safetensors" \
  --default-root-dir "$tmp/w2" >"$tmp/w2.out" 2>"$tmp/w2.err"
rc=$?
[ $rc -eq 2 ] && [ "$(grep -c '^lathe: ' "$tmp/w2.err")" = 1 ] &&
  grep -q "written by a run of 1 rank in the middle of epoch 2 (after batch 2); this run has 2" "$tmp/w2.err" && ok ||
  bad "1 process's mid-epoch checkpoint on 2 ranks: exit $rc, $(cat "$tmp/w2.err")"
[ ! -d "$tmp/w2" ] && ok || bad "a refused resume made a run folder: $(find "$tmp/w2")"
# at an epoch's end (step 20: 2 epochs of 10 batches), 2 ranks' checkpoint on 1 process resumes
timeout 120 "${MPI[@]}" "$LATHE" train mlp_sgd "${two[@]}" --max-steps 20 --default-root-dir "$tmp/e" \
  >"$tmp/e.out" 2>"$tmp/e.err" || bad "the run to step 20: $(tail -c 600 "$tmp/e.err")"
"$LATHE" train mlp_sgd "${one[@]}" --resume "$tmp/e/mlp_sgd/version_0/checkpoints/last.safetensors" \
  --default-root-dir "$tmp/w3" >"$tmp/w3.out" 2>"$tmp/w3.err"
rc=$?
[ $rc -eq 0 ] && grep -q '^steps=30 ' "$tmp/w3.out" && ok ||
  bad "2 ranks' epoch-end checkpoint on 1 process: exit $rc, $(tail -c 400 "$tmp/w3.err")"

# ---- no checkpoint to resume: rank 0's one line, exit 2 ----
timeout 60 "${MPI[@]}" "$LATHE" train mlp_sgd "${two[@]}" --resume "$tmp/none.safetensors" --default-root-dir "$tmp/n" \
  >"$tmp/n.out" 2>"$tmp/n.err"
rc=$?
[ $rc -eq 2 ] && [ "$(grep -c '^lathe: ' "$tmp/n.err")" = 1 ] && grep -q "^lathe: $tmp/none.safetensors: " "$tmp/n.err" &&
  ok || bad "a missing checkpoint on 2 ranks: exit $rc, $(grep -v '^--' "$tmp/n.err" | head -c 600)"
timeout 60 "${MPI[@]}" "$LATHE" train mlp_sgd "${two[@]}" --resume last --default-root-dir "$tmp/n" \
  >"$tmp/n.out" 2>"$tmp/n.err"
rc=$?
[ $rc -eq 2 ] && [ "$(grep -c '^lathe: ' "$tmp/n.err")" = 1 ] && grep -q "^lathe: --resume last: no runs in " "$tmp/n.err" &&
  ok || bad "--resume last with no runs on 2 ranks: exit $rc, $(grep -v '^--' "$tmp/n.err" | head -c 600)"

finish
