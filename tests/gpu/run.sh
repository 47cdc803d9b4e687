#!/usr/bin/env bash
# run.sh: lathe's GPU checks and figures, in one go, on a machine with an
# NVIDIA GPU (CUDA toolkit, PyTorch with Lightning) and no network, after
# tests/gpu/prepare.sh filled tests/gpu/pkgs/ here. Within about 8 minutes:
#   env        the GPU, driver, OS, nvcc, torch and tmux there
#   unpack     the Debian packages of pkgs/debs into a prefix (dpkg -x)
#   build      Release, -DLATHE_WERROR=ON, the CUDA backend for sm_90 (cuDNN
#              and NCCL from PyTorch's nvidia-* wheels), with ninja
#   unit       test_backend_ops (the CUDA backend against the CPU),
#              test_cuda_state and test_dist_nccl when the tree has them
#   train32, train16   `lathe train mnist_cnn --accelerator gpu`, one full
#              Fashion-MNIST epoch, fp32 then bf16-mixed
#   ddp        `lathe train mlp_sgd --accelerator gpu --strategy ddp
#              --devices 1` as a world of 1 through NCCL (LATHE_DIST_NCCL=1;
#              under `mpirun -np 1` when the machine has mpirun), and 2 CPU
#              ranks under `mpirun -np 2` beside it
#   workbench  a GPU run with the workbench attached in tmux: set lr,
#              inspect conv2d_2, feed a test sample, pause, resume, each
#              answer timed on the screen, and the same through `lathe ctl`
#   cpubf16    the host CPU's bf16 units (what it reports; GPU hosts are often
#              Intel Sapphire Rapids, with AMX): test_bf16_amx and
#              test_bf16_avx512 (the instructions against their models, bit
#              for bit; skipped without the units), and where it has them,
#              mnist_cnn on 2 threads in fp32 and bf16-mixed on its kernels
#              (bench_train, 30 steps each, in turns)
#   bench      tests/bench/run_gpu_bench.sh: lathe against PyTorch eager,
#              torch.compile and Lightning, and the attached workbench's cost
# Every step has its own time limit and the next runs whatever happened.
# Every figure is appended to $OUT/gpu-figures.txt as "key: value"; the
# logs go to $OUT/*.log; a summary ends both.
#
#   usage: OUT=DIR tests/gpu/run.sh          (OUT defaults to a new folder under /tmp)
#   LATHE_GPU_DRY=1 [LATHE_GPU_BUILD=DIR] tests/gpu/run.sh
#     the dry run: the same steps on the CPU (--accelerator cpu, a few
#     batches), reusing the build in LATHE_GPU_BUILD (default build/), no
#     packages unpacked, the PyTorch peers only if python3 imports torch; it
#     fails when a step fails or a figure line is missing
#   LATHE_GPU_BUDGET  seconds for everything (default 470; dry run 150)
#   LATHE_GPU_DATA    the Fashion-MNIST folder (default tests/gpu/pkgs/data,
#                     else /usr/share/datasets/fashion-mnist)
set -u
SELF=$(readlink -f "$0")
SRC=$(cd "$(dirname "$SELF")/../.." && pwd)

fig() { printf '%s: %s\n' "$1" "$2" >>"$FIG"; echo "figure $1: $2"; }
now_ms() { date +%s%3N; }
lathe() { "$BUILD/lathe" "$@"; }

# ---------------------------------------------------------------- the steps
step_env() {
  echo "date: $(date -u)"; uname -a; cat /etc/os-release 2>/dev/null
  nvidia-smi 2>&1 | head -20; command -v nvcc && nvcc --version
  cmake --version | head -1; ninja --version; cc --version | head -1; ldd --version | head -1
  local g
  g=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
  fig gpu "${g:-none found}$([ "$DRY" = 1 ] && echo ' (dry run: everything runs on the CPU)')"
  fig host "$(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-unknown OS}"), $(ldd --version | head -1 | awk '{ print "glibc " $NF }'), $(nproc) cores"
  local v
  v=$(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p')
  fig nvcc "${v:-not found}"
  v=$(python3 -c 'import torch; print(torch.__version__, "cuda" if torch.cuda.is_available() else "no cuda")' 2>/dev/null)
  fig torch "${v:-python3 cannot import torch}"
  fig tmux "${TMUX_WHICH}"
}

step_unpack() {
  if [ "$DRY" = 1 ] && [ -z "${LATHE_GPU_DRY_BUILD:-}" ]; then fig packages "skipped (dry run: this machine's packages)"; return 0; fi
  ls "$PKGS"/debs/*.deb >/dev/null 2>&1 || { fig packages "FAILED (no $PKGS/debs/*.deb: run tests/gpu/prepare.sh first)"; return 1; }
  rm -rf "$PFX"; mkdir -p "$PFX/bin"
  local d n=0
  for d in "$PKGS"/debs/*.deb; do
    if command -v dpkg >/dev/null; then dpkg -x "$d" "$PFX" || { fig packages "FAILED (dpkg -x $(basename "$d"))"; return 1; }
    else (cd "$PFX" && ar p "$d" "$(ar t "$d" | grep '^data\.tar')" | tar -x --xz 2>/dev/null ||
      ar p "$d" "$(ar t "$d" | grep '^data\.tar')" | tar -x --zstd) || { fig packages "FAILED (unpacking $(basename "$d"))"; return 1; }
    fi
    n=$((n + 1))
  done
  # absolute links (libz.so -> /lib/x86_64-linux-gnu/libz.so.1.2.13) point into the prefix
  local l t
  find "$PFX" -type l | while read -r l; do
    t=$(readlink "$l"); case $t in /*) ln -sfn "$PFX$t" "$l" ;; esac
  done
  # pkg-config over the prefix's .pc files only, their paths under the prefix
  cat >"$PFX/bin/pkg-config" <<EOT
#!/bin/sh
export PKG_CONFIG_LIBDIR=$PFX/usr/lib/x86_64-linux-gnu/pkgconfig:$PFX/usr/share/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$PFX PKG_CONFIG_ALLOW_SYSTEM_LIBS=1 PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1
LD_LIBRARY_PATH=$PFX/usr/lib/x86_64-linux-gnu exec $PFX/usr/bin/pkgconf "\$@"
EOT
  cat >"$PFX/bin/tmux" <<EOT
#!/bin/sh
export LD_LIBRARY_PATH=$PFX/usr/lib/x86_64-linux-gnu:$PFX/lib/x86_64-linux-gnu
export TERMINFO_DIRS=$PFX/lib/terminfo:/etc/terminfo:/lib/terminfo:/usr/share/terminfo
exec $PFX/usr/bin/tmux "\$@"
EOT
  chmod +x "$PFX/bin/pkg-config" "$PFX/bin/tmux"
  "$PFX/bin/pkg-config" --libs ncursesw || { fig packages "FAILED (the carried pkg-config does not find ncursesw)"; return 1; }
  fig packages "$n unpacked into $PFX"
}

step_build() {
  if [ "$DRY" = 1 ] && [ -z "${LATHE_GPU_DRY_BUILD:-}" ]; then
    [ -x "$BUILD/lathe" ] || { fig build "FAILED (dry run: no $BUILD/lathe to reuse)"; return 1; }
    fig build "reused $BUILD (dry run)"; return 0
  fi
  local t0 args=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DLATHE_WERROR=ON
    -DCMAKE_PREFIX_PATH="$PFX/usr" -DPKG_CONFIG_EXECUTABLE="$PFX/bin/pkg-config"
    -DCBLAS_INCLUDE_DIR="$PFX/usr/include/x86_64-linux-gnu/openblas-openmp"
    -DBLAS_LIB="$PFX/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so"
    -DREADLINE_LIB="$PFX/usr/lib/x86_64-linux-gnu/libreadline.so"
    -DZLIB_INCLUDE_DIR="$PFX/usr/include" -DZLIB_LIBRARY="$PFX/usr/lib/x86_64-linux-gnu/libz.so"
    -DCMAKE_C_FLAGS="-I$PFX/usr/include"
    "-DCMAKE_EXE_LINKER_FLAGS=-Wl,--disable-new-dtags -Wl,-rpath,$RPATH -L$PFX/usr/lib/x86_64-linux-gnu -L$PFX/lib/x86_64-linux-gnu")
  if [ "$DRY" = 1 ]; then
    args+=(-DLATHE_CUDA=OFF)
  else
    [ -n "$CUDNN_LIB" ] && [ -n "$NCCL_LIB" ] || { fig build "FAILED (no libcudnn/libnccl in python3's nvidia-* wheels: cudnn='$CUDNN_LIB' nccl='$NCCL_LIB')"; return 1; }
    local nvcc; nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
    args+=(-DLATHE_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES=90
      -DCUDNN_LIB="$CUDNN_LIB" -DNCCL_LIB="$NCCL_LIB" -DCUDNN_INCLUDE_DIR="$CUDNN_INC")
  fi
  t0=$(date +%s)
  rm -rf "$BUILD"
  LIBRARY_PATH=$PFX/usr/lib/x86_64-linux-gnu:$PFX/lib/x86_64-linux-gnu LD_LIBRARY_PATH=$LDP \
    cmake -S "$SRC" -B "$BUILD" "${args[@]}" || { fig build "FAILED (cmake configure; see build.log)"; return 1; }
  local targets=(lathe test_backend_ops test_bf16_amx test_bf16_avx512 bench_train)
  [ -f "$SRC/tests/unit/test_cuda_state.c" ] && targets+=(test_cuda_state)
  [ -f "$SRC/tests/unit/test_dist_nccl.c" ] && targets+=(test_dist_nccl)
  LIBRARY_PATH=$PFX/usr/lib/x86_64-linux-gnu:$PFX/lib/x86_64-linux-gnu LD_LIBRARY_PATH=$LDP \
    ninja -C "$BUILD" -j"$(nproc)" "${targets[@]}" || { fig build "FAILED (ninja; see build.log: $(grep -m1 -E 'error' "$OUT/build.log" | cut -c1-200))"; return 1; }
  local have=OFF
  grep -q 'LATHE_HAVE_CUDA=1' "$BUILD/build.ninja" 2>/dev/null && have=ON
  fig build "ok in $(($(date +%s) - t0)) s ($([ "$DRY" = 1 ] && echo 'CPU only, dry run' || echo "CUDA backend $have, sm_90, cuDNN $CUDNN_LIB"))"
  ldd "$BUILD/lathe"
  [ "$DRY" = 1 ] || [ $have = ON ] || { fig build_cuda "FAILED: the build has no CUDA backend (see build.log)"; return 1; }
}

# unit_test <name>: runs it, the figure is its last line and its cuda lines
unit_test() {
  local bin=$BUILD/$1
  if [ ! -x "$bin" ]; then
    if [ -f "$SRC/tests/unit/$1.c" ]; then fig "$1" "FAILED (not built)"; return 1; fi
    fig "$1" "not in this tree"; return 0
  fi
  local t0 rc; t0=$(now_ms)
  (cd "$BUILD" && "$bin") >"$WORK/$1.out" 2>&1; rc=$?
  cat "$WORK/$1.out"
  local cu; cu=$(grep -ci 'cuda' "$WORK/$1.out")
  fig "$1" "$([ $rc = 0 ] && echo passed || echo "FAILED (exit $rc)"): $(tail -1 "$WORK/$1.out"); $cu lines name cuda$(grep -m1 -i '^cuda: skipped' "$WORK/$1.out" | sed 's/^/; /'); $(($(now_ms) - t0)) ms"
  return $rc
}
step_unit() {
  local rc=0
  unit_test test_backend_ops || rc=1
  unit_test test_cuda_state || rc=1
  unit_test test_dist_nccl || rc=1
  return $rc
}

# the host CPU's bf16 kernels: its units, their bit-for-bit tests, and where
# it has the units, fp32 against bf16-mixed training on 2 of its threads
step_cpubf16() {
  local flags units="" rc=0 t v
  flags=$(grep -m1 '^flags' /proc/cpuinfo)
  for t in amx_bf16 amx_tile avx512_bf16 avx512f; do case " $flags " in *" $t "*) units="$units $t" ;; esac; done
  fig host_cpu "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores; bf16 units:${units:- none}"
  for t in test_bf16_amx test_bf16_avx512; do
    if [ ! -x "$BUILD/$t" ]; then fig "$t" "FAILED (not built)"; rc=1; continue; fi
    (cd "$BUILD" && OPENBLAS_NUM_THREADS=2 "$BUILD/$t") >"$WORK/$t.out" 2>&1; v=$?
    cat "$WORK/$t.out"
    case $v in
      0) fig "$t" "passed: $(tail -1 "$WORK/$t.out")" ;;
      77) fig "$t" "$(tail -1 "$WORK/$t.out")" ;;
      *) fig "$t" "FAILED (exit $v): $(tail -1 "$WORK/$t.out")"; rc=1 ;;
    esac
  done
  case "$units" in
    *amx_bf16* | *avx512_bf16*)
      local r
      for r in 1 2; do
        for t in 32 bf16-mixed; do
          OPENBLAS_NUM_THREADS=2 "$BUILD/bench_train" --steps 30 --threads 2 --precision $t --data "$DATA" \
            >"$WORK/cpubf16_$t.$r.out" 2>&1 || rc=1
          cat "$WORK/cpubf16_$t.$r.out"
        done
      done
      for t in 32 bf16-mixed; do
        v=$(cat "$WORK"/cpubf16_$t.*.out | grep -o 'samples_per_s=[0-9.]*' | cut -d= -f2 | sort -g | tail -1)
        fig "cpu_train_$([ $t = 32 ] && echo fp32 || echo bf16)" "${v:-no figure} samples/s, best of 2 ($(grep -o 'kernels=.*' "$WORK/cpubf16_$t.1.out" | head -1))"
      done ;;
    *) fig cpu_train_fp32 "n/a (no bf16 units on this CPU)"; fig cpu_train_bf16 "n/a (no bf16 units on this CPU)" ;;
  esac
  return $rc
}

# ddp: one GPU rank through the NCCL communicator (LATHE_DIST_NCCL=1 takes a
# world of 1 through it: its check all-reduce, broadcast and bucket round,
# then the training), and 2 CPU ranks over MPI beside it
step_ddp() {
  local rc=0 r t0 info line mpi=() root=()
  local common=(--headless --seed 1 --max-epochs 1 --limit-train-batches 50 --limit-val-batches 2 --limit-test-batches 2
    --data "$DATA")
  [ "$DRY" = 1 ] && common=(--headless --seed 1 --max-epochs 1 --limit-train-batches 3 --limit-val-batches 1
    --limit-test-batches 1 --data "$DATA")
  [ "$(id -u)" = 0 ] && root=(--allow-run-as-root --oversubscribe)
  export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
  command -v mpirun >/dev/null && mpi=(mpirun "${root[@]}" -np 1)
  if [ "$DRY" = 1 ]; then
    fig ddp_gpu_nccl "skipped (dry run: no GPU)"
  else
    t0=$(now_ms)
    LATHE_DIST_NCCL=1 "${mpi[@]}" "$BUILD/lathe" train mlp_sgd --accelerator gpu --strategy ddp --devices 1 "${common[@]}" \
      --default-root-dir "$WORK/ddp-gpu" >"$WORK/ddp-gpu.out" 2>"$WORK/ddp-gpu.err"; r=$?
    cat "$WORK/ddp-gpu.err" "$WORK/ddp-gpu.out"
    info=$(grep -m1 '^lathe: nccl .*check all-reduce ok' "$WORK/ddp-gpu.err")
    line=$(grep '^steps=' "$WORK/ddp-gpu.out" | tail -1)
    if [ $r = 0 ] && [ -n "$info" ] && [ -n "$line" ]; then
      fig ddp_gpu_nccl "${info#lathe: }; $(tr ' ' '\n' <<<"$line" | grep -E '^(steps|samples_per_s|train_loss|test_acc)=' | tr '\n' ' ')wall_ms=$(($(now_ms) - t0)) (a world of 1 through NCCL, $([ ${#mpi[@]} -gt 0 ] && echo 'mpirun -np 1' || echo 'no mpirun here: launched alone'))"
    else
      fig ddp_gpu_nccl "FAILED (exit $r$([ -z "$info" ] && echo ', no NCCL line'): $(tail -1 "$WORK/ddp-gpu.err"))"; rc=1
    fi
  fi
  if [ ${#mpi[@]} = 0 ]; then
    fig ddp_cpu2 "skipped (no mpirun on this machine)"
    return $rc
  fi
  t0=$(now_ms)
  mpirun "${root[@]}" -np 2 "$BUILD/lathe" train mlp_sgd --accelerator cpu --strategy ddp --devices 2 --threads 1 "${common[@]}" \
    --default-root-dir "$WORK/ddp-cpu" >"$WORK/ddp-cpu.out" 2>"$WORK/ddp-cpu.err"; r=$?
  cat "$WORK/ddp-cpu.err" "$WORK/ddp-cpu.out"
  line=$(grep '^steps=' "$WORK/ddp-cpu.out" | tail -1)
  local agree share
  agree=$(grep -c 'ranks_agree=1$' "$WORK/ddp-cpu.err")
  share=$(grep -m1 -o 'allreduce_wait_share=[0-9.]*' "$WORK/ddp-cpu.err")
  if [ $r = 0 ] && [ -n "$line" ] && [ "$agree" -ge 1 ] && ! grep -q 'ranks_agree=0' "$WORK/ddp-cpu.err"; then
    fig ddp_cpu2 "$(tr ' ' '\n' <<<"$line" | grep -E '^(steps|samples_per_s|train_loss|test_acc)=' | tr '\n' ' ')ranks_agree=1 ${share:-allreduce_wait_share=n/a} wall_ms=$(($(now_ms) - t0)) (2 CPU ranks over MPI, mpirun -np 2)"
  else
    fig ddp_cpu2 "FAILED (exit $r: $(tail -1 "$WORK/ddp-cpu.err"))"; rc=1
  fi
  return $rc
}

# train_epoch <precision> <key>: one epoch, the seconds of its training steps
train_epoch() {
  local t0 rc line small=()
  [ "$DRY" = 1 ] && small=(--limit-train-batches 3 --limit-val-batches 1 --limit-test-batches 1 --threads 2)
  t0=$(now_ms)
  "$BUILD/lathe" train mnist_cnn --headless --accelerator "$ACC" --precision "$1" --max-epochs 1 --data "$DATA" \
    --default-root-dir "$WORK/runs-$2" "${small[@]}" >"$WORK/$2.out" 2>"$WORK/$2.err"; rc=$?
  local wall=$(($(now_ms) - t0))
  cat "$WORK/$2.err" "$WORK/$2.out"
  line=$(grep '^steps=' "$WORK/$2.out" | tail -1)
  if [ $rc != 0 ] || [ -z "$line" ]; then fig "$2" "FAILED (exit $rc: $(tail -1 "$WORK/$2.err"))"; return 1; fi
  fig "$2" "$(awk -v w="$wall" -v dry="$DRY" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
    END { printf "epoch_s=%.3f samples_per_s=%s samples=%s fit_s=%s wall_s=%.2f val_acc=%s test_acc=%s (%s)",
      54000 / v["samples_per_s"], v["samples_per_s"], v["samples"], v["seconds"], w / 1000, v["val_acc"], v["test_acc"],
      dry == 1 ? "dry run: 3 batches on the CPU" : "goal: epoch <= 1 s on an H100" }' <<<"$line")"
}
# epoch_s: 54,000 samples (one epoch) over the fit's samples/s, its training
# steps only; wall_s: the whole process, validation and test included
step_train32() { train_epoch 32 train_fp32; }
step_train16() { train_epoch bf16-mixed train_bf16; }

# wb_time <name> <screen regex> <keys...>: sends the keys, polls the screen
# every 10 ms until the regex matches; the figure is the milliseconds between
wb_time() {
  local name=$1 re=$2 t0 i; shift 2
  t0=$(now_ms)
  $TM send-keys -t wb:0 "$@"
  for i in $(seq 500); do
    if $TM capture-pane -p -t wb:0 | grep -qE -- "$re"; then
      fig "wb_${name}_ms" "$(($(now_ms) - t0)) (keys to screen; goal: <= 100 ms)"; return 0
    fi
    sleep 0.01
  done
  fig "wb_${name}_ms" "FAILED (no '$re' on the screen within 5 s)"; return 1
}
# ctl_time <name> <ctl args...>: the wall milliseconds of `lathe ctl RUN ...`
ctl_time() {
  local name=$1 t0 rc; shift
  t0=$(now_ms)
  lathe ctl "$RUN" "$@" >"$WORK/ctl.out" 2>&1; rc=$?
  local ms=$(($(now_ms) - t0))
  echo "ctl $*: exit $rc"; head -5 "$WORK/ctl.out"
  [ $rc = 0 ] && fig "ctl_${name}_ms" "$ms (process start included; goal: <= 100 ms)" || fig "ctl_${name}_ms" "FAILED (exit $rc: $(head -1 "$WORK/ctl.out"))"
  return $rc
}
step_workbench() {
  if [ -z "$TMUX_BIN" ]; then
    local k
    for k in $WB_KEYS; do fig "$k" "skipped (no tmux on this machine)"; done
    return 0
  fi
  local rc=0 dir=$WORK/wb pid
  rm -rf "$dir"
  RUN=$dir/mnist_cnn/version_0
  local thr=(); [ "$DRY" = 1 ] && thr=(--threads 2)
  # bounded (--max-time) and killed with this step, even when the step's time
  # limit ends it: a run left behind would load the machine for what follows
  # (the binary itself, not the lathe function: a function put in the
  # background is a subshell, and $! would name the subshell, not the run)
  "$BUILD/lathe" train mnist_cnn --headless --accelerator "$ACC" --max-epochs 200 --max-time 00:10:00 --limit-val-batches 5 \
    --limit-test-batches 1 --data "$DATA" --default-root-dir "$dir" "${thr[@]}" >"$WORK/wb.out" 2>"$WORK/wb.err" &
  pid=$!
  trap 'kill $pid 2>/dev/null' EXIT
  trap 'kill $pid 2>/dev/null; exit 143' TERM INT
  for _ in $(seq 300); do [ -S "$RUN/control.sock" ] && break; sleep 0.1; done
  if [ ! -S "$RUN/control.sock" ]; then
    fig wb_set_lr_ms "FAILED (no control socket: $(tail -1 "$WORK/wb.err"))"; kill $pid 2>/dev/null; return 1
  fi
  $TM new-session -d -s wb -x 120 -y 40 "cd $WORK && env LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=screen-256color XDG_DATA_HOME=$WORK/xdg $BUILD/lathe attach $RUN; echo EXIT=\$?; sleep 60"
  local up=0
  for _ in $(seq 300); do $TM capture-pane -p -t wb:0 2>/dev/null | head -1 | grep -q RUNNING && { up=1; break; }; sleep 0.05; done
  [ $up = 1 ] || { echo "the workbench shows no RUNNING:"; $TM capture-pane -p -t wb:0; rc=1; }
  sleep 1
  wb_time set_lr '^lr +0\.5' ':set lr 0.5' Enter || rc=1
  wb_time inspect 'map 24x24' ':inspect conv2d_2' Enter || rc=1
  wb_time feed 'top predictions' ':feed test 3' Enter || rc=1
  wb_time pause '^ *mnist_cnn +PAUSED' ' ' || rc=1
  wb_time resume '^ *mnist_cnn +RUNNING' ' ' || rc=1
  echo "---- the screen at the end"; $TM capture-pane -p -t wb:0
  $TM send-keys -t wb:0 q
  ctl_time status status || rc=1
  ctl_time pause pause || rc=1
  ctl_time inspect inspect conv2d_2 || rc=1
  ctl_time feed feed test 3 || rc=1
  ctl_time resume resume || rc=1
  $TM kill-server 2>/dev/null
  kill $pid 2>/dev/null; wait $pid 2>/dev/null
  tail -3 "$WORK/wb.err"
  return $rc
}

step_bench() {
  local budget=$(( ${STEP_LIMIT:-300} - 10 ))
  FIGURES=$FIG DATA=$DATA ACCEL=$ACC BENCH_BUDGET=$budget PYTHON=python3 TMUX_CMD="${TMUX_BIN:-tmux}" \
    LATHE_LD_LIBRARY_PATH=$LDP bash "$SRC/tests/bench/run_gpu_bench.sh" "$BUILD"
}

if [ "${1:-}" = --step ]; then
  [ -n "${TMUX_BIN:-}" ] && TM="$TMUX_BIN -L lathe-gpu-$$"
  "step_$2"; exit $?
fi

# ---------------------------------------------------------------- the driver
DRY=${LATHE_GPU_DRY:-0}; [ "$DRY" = 1 ] || DRY=0
OUT=${OUT:-$(mktemp -d /tmp/lathe-gpu-out.XXXXXX)}
mkdir -p "$OUT" || { echo "run.sh: cannot create OUT=$OUT" >&2; exit 1; }
FIG=$OUT/gpu-figures.txt
: >"$FIG"
WORK=$(mktemp -d /tmp/lathe-gpu.XXXXXX) || { echo "run.sh: mktemp failed" >&2; exit 1; }
trap 'rm -rf "$WORK"' EXIT
PKGS=$SRC/tests/gpu/pkgs
PFX=$WORK/prefix
BUDGET=${LATHE_GPU_BUDGET:-$([ "$DRY" = 1 ] && echo 150 || echo 470)}
START=$(date +%s)
if [ "$DRY" = 1 ] && [ -z "${LATHE_GPU_DRY_BUILD:-}" ]; then BUILD=$(readlink -f "${LATHE_GPU_BUILD:-$SRC/build}"); else BUILD=$WORK/build; fi
ACC=gpu; [ "$DRY" = 1 ] && ACC=cpu
DATA=${LATHE_GPU_DATA:-}
if [ -z "$DATA" ]; then
  DATA=/usr/share/datasets/fashion-mnist
  [ -f "$PKGS/data/train-images-idx3-ubyte.gz" ] && DATA=$PKGS/data
fi

# the nvidia-* wheels of python3's PyTorch: cuDNN and NCCL for the build,
# every lib folder for the run
CUDNN_LIB= NCCL_LIB= CUDNN_INC= WHEEL_LIBS=
for sp in $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
  [ -d "$sp/nvidia" ] || continue
  for d in "$sp"/nvidia/*/lib; do [ -d "$d" ] && WHEEL_LIBS=$WHEEL_LIBS:$d; done
  [ -z "$CUDNN_LIB" ] && CUDNN_LIB=$(ls "$sp"/nvidia/cudnn/lib/libcudnn.so* 2>/dev/null | head -1)
  [ -z "$NCCL_LIB" ] && NCCL_LIB=$(ls "$sp"/nvidia/nccl/lib/libnccl.so* 2>/dev/null | head -1)
  [ -z "$CUDNN_INC" ] && [ -f "$sp/nvidia/cudnn/include/cudnn.h" ] && CUDNN_INC=$sp/nvidia/cudnn/include
done
WHEEL_LIBS=${WHEEL_LIBS#:}
# lathe's libraries: the prefix's (baked in as its rpath too) and the wheels'
RPATH=$PFX/usr/lib/x86_64-linux-gnu/openblas-openmp:$PFX/usr/lib/x86_64-linux-gnu:$PFX/lib/x86_64-linux-gnu${WHEEL_LIBS:+:$WHEEL_LIBS}
LDP=$RPATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
[ "$DRY" = 1 ] && [ -z "${LATHE_GPU_DRY_BUILD:-}" ] && LDP=${LD_LIBRARY_PATH:-}

# tmux: the machine's own, else the carried one (known after the unpack)
TMUX_BIN= TMUX_WHICH=
pick_tmux() {
  if command -v tmux >/dev/null; then TMUX_BIN=$(command -v tmux) TMUX_WHICH="$(tmux -V) (this machine's)"
  elif [ -x "$PFX/bin/tmux" ] && "$PFX/bin/tmux" -V >/dev/null 2>&1; then TMUX_BIN=$PFX/bin/tmux TMUX_WHICH="$("$PFX/bin/tmux" -V) (carried)"
  else TMUX_BIN= TMUX_WHICH="absent: the workbench checks are skipped"; fi
}
pick_tmux
export SRC OUT FIG WORK PKGS PFX BUILD ACC DATA DRY CUDNN_LIB NCCL_LIB CUDNN_INC RPATH LDP TMUX_BIN TMUX_WHICH
export LATHE_GPU_DRY_BUILD=${LATHE_GPU_DRY_BUILD:-}
export WB_KEYS="wb_set_lr_ms wb_inspect_ms wb_feed_ms wb_pause_ms wb_resume_ms ctl_status_ms ctl_pause_ms ctl_inspect_ms ctl_feed_ms ctl_resume_ms"
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-$([ "$DRY" = 1 ] && echo 2 || echo 8)}

if [ "$DRY" = 1 ] && [ ! -f "$DATA/train-images-idx3-ubyte.gz" ]; then
  echo "skipped: no Fashion-MNIST data in $DATA (Debian's dataset-fashion-mnist)"; exit 0
fi

left() { echo $((BUDGET - ($(date +%s) - START))); }
SUMMARY=() NFAIL=0 NOK=0 NSKIP=0
# run_step <name> <limit s> <log> <figure keys...>
run_step() {
  local name=$1 limit=$2 log=$OUT/$3 st t0 rc k; shift 3
  local l; l=$(left)
  if [ "$l" -lt 20 ]; then
    st="skipped (out of time)"; NSKIP=$((NSKIP + 1))
  else
    [ "$limit" -gt "$l" ] && limit=$l
    echo "==== $name: limit ${limit} s, $(date -u +%T)" >>"$log"
    echo "run.sh: $name (limit ${limit} s)"
    t0=$(date +%s)
    STEP_LIMIT=$limit timeout -k 5 "$limit" bash "$SELF" --step "$name" >>"$log" 2>&1
    rc=$?
    case $rc in
      0) st="ok"; NOK=$((NOK + 1)) ;;
      124 | 137) st="FAILED (timed out after ${limit} s)"; NFAIL=$((NFAIL + 1)) ;;
      *) st="FAILED (exit $rc)"; NFAIL=$((NFAIL + 1)) ;;
    esac
    st="$st in $(($(date +%s) - t0)) s"
  fi
  SUMMARY+=("$(printf '%-10s %s' "$name" "$st")")
  echo "run.sh: $name: $st"
  for k in "$@"; do grep -q "^$k: " "$FIG" || fig "$k" "n/a (step $name: $st)" >/dev/null; done
}

run_step env 30 env.log gpu host nvcc torch tmux
run_step unpack 60 build.log packages
pick_tmux; export TMUX_BIN TMUX_WHICH
grep -q '^tmux: ' "$FIG" && sed -i "s|^tmux: .*|tmux: $TMUX_WHICH|" "$FIG"
run_step build 240 build.log build
run_step unit 90 tests.log test_backend_ops test_cuda_state test_dist_nccl
run_step train32 90 train.log train_fp32
run_step train16 90 train.log train_bf16
run_step ddp 60 ddp.log ddp_gpu_nccl ddp_cpu2
run_step workbench 75 workbench.log $WB_KEYS
# the step's run must not outlive it (it would load the machine for the bench)
sleep 0.5
if left_over=$(pgrep -f -- "--default-root-dir $WORK/wb" 2>/dev/null); then
  echo "run.sh: FAILED: the workbench step left its run behind (pid $left_over); killed"
  kill -9 $left_over 2>/dev/null; NFAIL=$((NFAIL + 1))
fi
BENCH_KEYS="bench_lathe_fp32 bench_lathe_bf16 bench_eager_fp32 bench_eager_bf16 bench_lightning_fp32 bench_lightning_bf16 bench_compile_fp32 bench_compile_bf16 bench_attached_overhead"
run_step cpubf16 45 cpubf16.log host_cpu test_bf16_amx test_bf16_avx512 cpu_train_fp32 cpu_train_bf16
run_step bench 400 bench.log $BENCH_KEYS

# ---- the goals and the summary ----
val() { sed -n "s/^$1: //p" "$FIG" | head -1; }
num() { val "$1" | grep -oE "${2:-^}[0-9.]+" | head -1 | grep -oE '[0-9.]+$'; }
{
  echo "---- goals$([ "$DRY" = 1 ] && echo ' (dry run on the CPU: not GPU figures)')"
  e=$(num train_fp32 'epoch_s=')
  awk -v e="$e" 'BEGIN { if (e == "") print "goal_epoch: no figure"; else printf "goal_epoch: %.3f s for one epoch fp32 (<= 1 s on an H100): %s\n", e, (e <= 1) ? "met" : "missed" }'
  for t in fp32 bf16; do
    l=$(num bench_lathe_$t 'samples_per_s=') p=$(num bench_lightning_$t 'samples_per_s=')
    awk -v l="$l" -v p="$p" -v t=$t 'BEGIN { if (l == "" || p == "") printf "goal_lightning_%s: no figure\n", t;
      else printf "goal_lightning_%s: lathe %.2fx Lightning'"'"'s samples/s (>= 1.5x): %s\n", t, l / p, (l / p >= 1.5) ? "met" : "missed" }'
  done
  o=$(val bench_attached_overhead | grep -oE '^-?[0-9.]+%' | tr -d %)
  awk -v o="$o" 'BEGIN { if (o == "") print "goal_attached: no figure"; else printf "goal_attached: %.1f%% slower with the workbench attached (<= 3%%): %s\n", o, (o <= 3) ? "met" : "missed" }'
  worst= ; for k in wb_pause_ms wb_inspect_ms wb_feed_ms ctl_pause_ms ctl_inspect_ms ctl_feed_ms; do
    v=$(val $k | grep -oE '^[0-9]+'); [ -n "$v" ] && { [ -z "$worst" ] || [ "$v" -gt "$worst" ]; } && worst=$v
  done
  awk -v w="$worst" 'BEGIN { if (w == "") print "goal_answers: no figure"; else printf "goal_answers: slowest pause/inspect/feed answer %d ms (<= 100 ms): %s\n", w, (w <= 100) ? "met" : "missed" }'
  echo "---- summary: $NOK ok, $NFAIL failed, $NSKIP skipped, $(($(date +%s) - START)) s"
  printf '%s\n' "${SUMMARY[@]}"
} >>"$FIG"
sed -n '/^---- goals/,$p' "$FIG"

missing=0
if [ "$DRY" = 1 ]; then
  for k in gpu host nvcc torch tmux packages build test_backend_ops test_cuda_state test_dist_nccl train_fp32 train_bf16 \
    ddp_gpu_nccl ddp_cpu2 $WB_KEYS \
    $BENCH_KEYS goal_epoch goal_lightning_fp32 goal_lightning_bf16 goal_attached goal_answers \
    host_cpu test_bf16_amx test_bf16_avx512 cpu_train_fp32 cpu_train_bf16; do
    grep -q "^$k: " "$FIG" || { echo "run.sh: the figures lack a '$k:' line"; missing=$((missing + 1)); }
  done
  grep -q '^---- benchmark table' "$FIG" || { echo "run.sh: the figures lack the benchmark table"; missing=$((missing + 1)); }
  [ $missing = 0 ] && [ $NFAIL = 0 ] && [ $NSKIP = 0 ] && echo "dry run: every step ran and every figure line is there ($FIG)"
fi
[ $NFAIL = 0 ] && [ $missing = 0 ] && [ $NSKIP = 0 -o "$DRY" = 0 ]
