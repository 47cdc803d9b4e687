#!/usr/bin/env bash
# GPU ranks (--accelerator gpu --strategy ddp) refused before anything starts,
# each with one line and exit status 2: no usable GPU (no CUDA driver: the
# backend's own line), --devices above the GPUs this node has, and
# --accelerator auto under a launcher. The launcher is its environment alone
# (OMPI_COMM_WORLD_*): every refusal comes before MPI starts.
#   usage: test_gpu_ranks.sh <lathe binary> <source dir>
. "$(dirname "$0")/lib.sh" "$1"
need_data
gpu=0
command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q '^GPU ' && gpu=1
common=(--headless --max-steps 1 --default-root-dir "$tmp/runs")
nogpu_re='^lathe: --accelerator gpu: no usable GPU: .+; use --accelerator cpu or auto$'

# refused <name> <line regex> <env and command...>: exit 2, one stderr line matching, no output, no run folder
refused() {
  local name=$1 re=$2; shift 2
  env "$@" >"$tmp/o" 2>"$tmp/e"
  local rc=$?
  if [ $rc -eq 2 ] && [ "$(wc -l <"$tmp/e")" -eq 1 ] && grep -qE -- "$re" "$tmp/e" && [ ! -s "$tmp/o" ] && [ ! -e "$tmp/runs" ]; then
    ok
  else
    bad "$name: exit $rc, stderr: $(head -c 600 "$tmp/e"), stdout: $(head -c 200 "$tmp/o")"
  fi
  rm -rf "$tmp/runs"
}
launcher() { echo OMPI_COMM_WORLD_SIZE="$1" OMPI_COMM_WORLD_RANK=0 OMPI_COMM_WORLD_LOCAL_RANK=0 OMPI_COMM_WORLD_NODE_RANK=0; }

if [ $gpu = 0 ]; then
  # no CUDA driver here: the same line as a single-process --accelerator gpu run
  refused "2 GPU ranks, no driver" "$nogpu_re" $(launcher 2) "$LATHE" train mlp_sgd "${common[@]}" --accelerator gpu \
    --strategy ddp --devices 2
  refused "64 GPU ranks, no driver" "$nogpu_re" $(launcher 64) "$LATHE" train mlp_sgd "${common[@]}" --accelerator gpu \
    --strategy ddp --devices 64
  refused "forced NCCL world of 1, no driver" "$nogpu_re" LATHE_DIST_NCCL=1 "$LATHE" train mlp_sgd "${common[@]}" \
    --accelerator gpu --strategy ddp --devices 1
  "$LATHE" train mlp_sgd "${common[@]}" --accelerator gpu >"$tmp/o" 2>"$tmp/single"
  rm -rf "$tmp/runs"
  [ "$(cat "$tmp/single")" = "$(cat "$tmp/e")" ] && ok || bad "not the single-process line: $(cat "$tmp/single") / $(cat "$tmp/e")"
else
  n=$(nvidia-smi -L | grep -c '^GPU ')
  [ -n "${CUDA_VISIBLE_DEVICES:-}" ] && n=$(tr ',' '\n' <<<"$CUDA_VISIBLE_DEVICES" | grep -c .) # what cudaGetDeviceCount sees
  refused "more ranks than GPUs" "^lathe: --devices $((n + 1)) but this node has $n GPUs? \\(cudaGetDeviceCount\\)$" \
    $(launcher $((n + 1))) "$LATHE" train mlp_sgd "${common[@]}" --accelerator gpu --strategy ddp --devices $((n + 1))
fi
refused "GPU ranks without a launcher" '^lathe: --strategy ddp on the GPU runs one process per rank, launched by mpirun or srun: mpirun -np 2 ' \
  "$LATHE" train mlp_sgd "${common[@]}" --accelerator gpu --strategy ddp --devices 2
refused "auto under a launcher" '^lathe: --strategy ddp with --accelerator auto: name cpu or gpu \(every rank the same\)$' \
  $(launcher 2) "$LATHE" train mlp_sgd "${common[@]}" --accelerator auto --strategy ddp --devices 2
refused "world mismatch" '^lathe: mpirun started 2 ranks but --devices 3 x --num-nodes 1 is 3$' \
  $(launcher 2) "$LATHE" train mlp_sgd "${common[@]}" --accelerator gpu --strategy ddp --devices 3
finish
