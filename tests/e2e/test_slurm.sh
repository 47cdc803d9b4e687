#!/usr/bin/env bash
# lathe under a real SLURM: a private one-node cluster (tests/dist/slurm.sh,
# its own munged, slurmctld and slurmd, stopped at exit) runs
#   0. srun -n 2 hostname; an MPI program (mpicc) under srun --mpi=pmix -n 2
#   1. srun -n 1 lathe train mnist_cnn --headless: a small run, exit 0, its folder
#   2. sbatch experiments/slurm/train.sbatch: to completion
#   3. the requeue path: SIGUSR1 to the running job (as --signal=USR1@90 sends
#      before the time limit) makes lathe save at the step boundary and
#      `scontrol requeue` its job, which reruns the sbatch script; it finds the
#      job's last.safetensors and resumes from it to the same end as an
#      uninterrupted run.
#   4. srun --mpi=pmix -n 2 lathe train mlp_sgd --strategy ddp --devices 2:
#      ranks_agree=1 every epoch, the weights of 1 rank x batch 128 within 1e-5
#   usage: test_slurm.sh <lathe binary> <source dir>
# Skipped (exit 77) without slurm-wlm and munge, as non-root, or without the data.
. "$(dirname "$0")/lib.sh" "$1"
SRC=$(readlink -f "$2")
if [ ! -d /usr/share/datasets/fashion-mnist ]; then echo "skipped: /usr/share/datasets/fashion-mnist is not installed"; exit 77; fi
"$SRC/tests/dist/slurm.sh" check 2>"$tmp/check.err" || { echo "skipped: $(cat "$tmp/check.err")"; exit 77; }

cluster=
slurm_cleanup() {
  [ -n "$cluster" ] && "$SRC/tests/dist/slurm.sh" stop "$cluster"
  e2e_cleanup
}
trap slurm_cleanup EXIT
env_out=$("$SRC/tests/dist/slurm.sh" start) || { echo "FAIL: the test cluster did not start"; exit 1; }
eval "$env_out"
cluster=$LATHE_SLURM_DIR
export SLURM_CONF
cd "$tmp" || exit 1
SMALL="--batch-size 32 --limit-val-batches 2 --limit-test-batches 2 --threads 1"

# job_state <id>: RUNNING, PENDING, COMPLETED, FAILED... (MinJobAge keeps it 5 min)
job_state() { scontrol show job "$1" 2>/dev/null | sed -nE 's/.*JobState=([A-Z_]+).*/\1/p'; }
# wait_state <id> <regex> <seconds>
wait_state() {
  local s
  for _ in $(seq 1 $(($3 * 5))); do
    s=$(job_state "$1"); [[ "$s" =~ ^($2)$ ]] && return 0; sleep 0.2
  done
  echo "job $1: state '$s' after $3 s, not $2" >&2; return 1
}

# ---- 0. the cluster itself: srun -n 2, and an MPI program under --mpi=pmix ----
[ "$(timeout 30 srun -n 2 hostname 2>&1 | sort -u)" = "$(hostname -s)" ] && ok || bad "srun -n 2 hostname: $(timeout 30 srun -n 2 hostname 2>&1 | tail -2)"
if command -v mpicc >/dev/null; then
  cat >"$tmp/rank.c" <<'C'
#include <mpi.h>
#include <stdio.h>
int main(int argc, char **argv) {
  int r, n, s = 0;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  MPI_Allreduce(&r, &s, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  printf("rank %d of %d sum %d\n", r, n, s);
  MPI_Finalize();
  return 0;
}
C
  if mpicc "$tmp/rank.c" -o "$tmp/rank" 2>"$tmp/mpicc.err"; then
    out=$(timeout 30 srun --mpi=pmix -n 2 "$tmp/rank" 2>&1 | sort)
    [ "$out" = $'rank 0 of 2 sum 1\nrank 1 of 2 sum 1' ] && ok || bad "srun --mpi=pmix -n 2: $(printf '%s\n' "$out" | tail -3)"
  else bad "mpicc: $(head -3 "$tmp/mpicc.err")"; fi
else echo "note: mpicc not found (libopenmpi-dev): the --mpi=pmix check is left out"; fi

# ---- 1. srun -n 1 ----
timeout 60 srun -n 1 "$LATHE" train mnist_cnn --headless --default-root-dir "$tmp/srun" --max-epochs 1 \
  --limit-train-batches 10 $SMALL >"$tmp/srun.out" 2>"$tmp/srun.err"
rc=$?
[ $rc -eq 0 ] && ok || bad "srun lathe train: exit $rc: $(tail -2 "$tmp/srun.err")"
[ "$(kv state "$tmp/srun.out")" = done ] && [ "$(kv steps "$tmp/srun.out")" = 10 ] && ok || bad "srun summary: $(tail -1 "$tmp/srun.out")"
grep -q '^state: done' "$tmp/srun/mnist_cnn/version_0/run.yaml" 2>/dev/null && ok || bad "srun run folder: $(ls -R "$tmp/srun" 2>&1 | head -5)"

# ---- 2. sbatch the sample to completion ----
SB=$SRC/experiments/slurm/train.sbatch
jid=$(LATHE=$LATHE LATHE_ROOT=$tmp/sb sbatch --parsable --time=00:05:00 --cpus-per-task=1 -o "$tmp/sb-%j.out" "$SB" \
  --max-epochs 1 --limit-train-batches 10 $SMALL 2>"$tmp/sbatch.err")
if [ -z "$jid" ]; then bad "sbatch: $(cat "$tmp/sbatch.err")"; else
  [ "$(squeue -h -j "$jid" -o %i 2>&1)" = "$jid" ] && ok || bad "squeue does not list job $jid: $(squeue 2>&1 | tail -2)"
  wait_state "$jid" 'COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY' 45 && ok || bad "sbatch job $jid did not end"
  [ "$(job_state "$jid")" = COMPLETED ] && ok || bad "sbatch job $jid: $(job_state "$jid"): $(tail -3 "$tmp/sb-$jid.out")"
  grep -q 'starting mnist_cnn' "$tmp/sb-$jid.out" && [ "$(grep 'state=' "$tmp/sb-$jid.out" | kv state /dev/stdin)" = done ] && ok ||
    bad "sbatch job output: $(tail -3 "$tmp/sb-$jid.out")"
  [ -f "$tmp/sb/mnist_cnn/slurm_$jid/checkpoints/last.safetensors" ] && ok || bad "sbatch run folder: $(ls -R "$tmp/sb" 2>&1 | head -8)"
fi

# ---- 3. requeue: the job reruns and resumes from its last.safetensors ----
# 3 epochs of 40 steps with a checkpoint every 10 steps; requeued once the
# first checkpoint is there, the run must end at step 120 as an uninterrupted one
jid=$(LATHE=$LATHE LATHE_ROOT=$tmp/rq sbatch --parsable --time=00:05:00 --cpus-per-task=1 -o "$tmp/rq-%j.out" "$SB" \
  --max-epochs 3 --limit-train-batches 40 --every-n-train-steps 10 $SMALL 2>"$tmp/sbatch.err")
if [ -z "$jid" ]; then bad "sbatch (requeue): $(cat "$tmp/sbatch.err")"; else
  last=$tmp/rq/mnist_cnn/slurm_$jid/checkpoints/last.safetensors
  for _ in $(seq 1 150); do [ -f "$last" ] && break; sleep 0.2; done
  [ -f "$last" ] && [ "$(job_state "$jid")" = RUNNING ] && ok || bad "no last.safetensors while job $jid runs: $(job_state "$jid"), $(tail -2 "$tmp/rq-$jid.out")"
  # SLURM's warning before the time limit (--signal=USR1@90): lathe stops at
  # the step boundary, saves, and requeues its own job
  scancel --signal=USR1 "$jid" 2>"$tmp/rq.err" && ok || bad "scancel --signal=USR1 $jid: $(cat "$tmp/rq.err")"
  # a requeued job is held ~2 min (Reason=BeginTime): release it, but not
  # within the second of the requeue, or slurmd refuses the launch ("Job
  # credential revoked": the old credential's revocation covers that second)
  # and the job ends FAILED
  wait_state "$jid" PENDING 20 && sleep 2 && scontrol update jobid="$jid" StartTime=now 2>>"$tmp/rq.err" && ok || bad "requeued job $jid not pending: $(cat "$tmp/rq.err")"
  wait_state "$jid" 'COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY' 45 && ok || bad "requeued job $jid did not end"
  out=$tmp/rq-$jid.out
  [ "$(job_state "$jid")" = COMPLETED ] && ok || bad "requeued job $jid: $(job_state "$jid"): $(tail -3 "$out")"
  scontrol show job "$jid" | grep -q 'Restarts=1' && ok || bad "job $jid restarts: $(scontrol show job "$jid" | grep -o 'Restarts=[0-9]*')"
  grep -q "(restart 1): resuming from $last" "$out" && ok || bad "the rerun did not resume: $(grep 'lathe job' "$out")"
  grep -q 'state=interrupted' "$out" && ok || bad "the first start was not interrupted by SIGUSR1: $(grep 'state=' "$out")"
  grep -q "SLURM job $jid requeued" "$out" && ok || bad "lathe did not requeue its job: $(grep 'SIGUSR1' "$out")"
  fin=$(grep 'state=done' "$out" | tail -1)
  [ -n "$fin" ] && [ "$(printf '%s\n' "$fin" | kv steps /dev/stdin)" = 120 ] && ok || bad "the resumed run's end: $(grep 'state=' "$out")"
fi

# ---- 4. two lathe ranks under srun --mpi=pmix -n 2 (--strategy ddp) ----
# the ranks' weights equal after every epoch, and 2 ranks x batch 64 reach
# the weights of 1 rank x batch 128 within 1e-5 relative (as test_ddp.sh
# checks under mpirun)
if command -v mpicc >/dev/null; then
  eq=(--headless --seed 1 --threads 1 --limit-val-batches 2 --limit-test-batches 2 --max-epochs 2
    --limit-train-batches 6 --save-last --lr 0.05)
  timeout 120 srun --mpi=pmix -n 2 "$LATHE" train mlp_sgd "${eq[@]}" --batch-size 64 --strategy ddp --devices 2 \
    --default-root-dir "$tmp/ddp2" >"$tmp/ddp2.out" 2>"$tmp/ddp2.err"
  rc=$?
  [ $rc -eq 0 ] && ok || bad "srun --mpi=pmix -n 2 lathe train --strategy ddp: exit $rc: $(tail -c 600 "$tmp/ddp2.err")"
  n=$(grep -c "weights_crc=[0-9a-f]\{8\} ranks_agree=1$" "$tmp/ddp2.err")
  [ "$n" = 2 ] && ! grep -q "ranks_agree=0" "$tmp/ddp2.err" && ok ||
    bad "srun ddp: expected 2 epochs with ranks_agree=1, got $n: $(grep weights_crc "$tmp/ddp2.err")"
  [ "$(grep -c '^steps=12 ' "$tmp/ddp2.out")" = 1 ] && ok || bad "srun ddp: one summary line (rank 0's) expected: $(cat "$tmp/ddp2.out")"
  "$LATHE" train mlp_sgd "${eq[@]}" --batch-size 128 --default-root-dir "$tmp/ddp1" >"$tmp/ddp1.out" 2>"$tmp/ddp1.err" ||
    bad "1 rank failed: $(tail -c 400 "$tmp/ddp1.err")"
  out=$(python3 "$SRC/tests/dist/check_weights_close.py" "$tmp/ddp2/mlp_sgd/version_0/checkpoints/last.safetensors" \
    "$tmp/ddp1/mlp_sgd/version_0/checkpoints/last.safetensors" 1e-5 2>&1) && ok || bad "srun ddp weights differ: $out"
else echo "note: mpicc not found (libopenmpi-dev): the srun --mpi=pmix ddp run is left out"; fi

finish
