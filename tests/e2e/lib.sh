# lib.sh: what the end-to-end scripts share. Each sources it first:
#   . "$(dirname "$0")/lib.sh" "$1"        ($1: the lathe binary)
# It sets LATHE (the binary's absolute path) and tmp (a scratch folder), the
# pass/fail counters with ok, bad and finish (the summary line CTest shows, and
# the exit status), and at exit removes tmp, kills the process in $pid and the
# tmux server in $T when a script has set them.
set -u
LATHE=$(readlink -f "$1")
fail=0 passed=0
tmp=$(mktemp -d)
pid=
T=
e2e_cleanup() {
  if [ -n "$T" ]; then $T kill-server 2>/dev/null; fi
  if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; fi
  rm -rf "$tmp"
}
trap e2e_cleanup EXIT

ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
finish() {
  echo "$passed passed, $fail failed"
  [ "$fail" -eq 0 ]
}

# the scripts that train need Debian's dataset-fashion-mnist
need_data() {
  if [ ! -d /usr/share/datasets/fashion-mnist ]; then
    echo "skipped: /usr/share/datasets/fashion-mnist is not installed"
    exit 0
  fi
}

# need_mpi: the data-parallel scripts run ranks under Open MPI's mpirun; sets
# LAUNCH (mpirun with what this machine needs: as root --allow-run-as-root,
# --oversubscribe on fewer cores than ranks, no single-copy in containers)
# and MPI (LAUNCH for 2 ranks)
need_mpi() {
  if ! command -v mpirun >/dev/null; then
    echo "skipped: mpirun not found (install openmpi-bin)"
    echo "0 passed, 0 failed"
    exit 0
  fi
  export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
  LAUNCH=(mpirun --oversubscribe)
  [ "$(id -u)" = 0 ] && LAUNCH=(mpirun --allow-run-as-root --oversubscribe)
  MPI=("${LAUNCH[@]}" -np 2)
}

# need_tmux <what>: the workbench scripts drive it through tmux
need_tmux() {
  if ! command -v tmux >/dev/null; then
    echo "tmux not found: skipping $1"
    echo "0 passed, 0 failed"
    exit 0
  fi
}

# kv <key> <file>: the value of key in the file's last line of key=value pairs
kv() { tail -n 1 "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# ---- the workbench in tmux ($T: the tmux command with its own server) ----
cap() { $T capture-pane -p -t "$1"; }
# wait_for <target> <regex> [tries]: until the screen matches, 0.2 s apart
wait_for() {
  local n=${3:-50}
  for _ in $(seq 1 "$n"); do cap "$1" | grep -qE -- "$2" && return 0; sleep 0.2; done
  return 1
}
# check_frame <cols> <rows> <status-bar regex> <footer regex>: after a resize
# the whole frame is redrawn, status bar on the first row, footer on the last
check_frame() {
  local c; c=$(cap wb:0)
  [ "$(printf '%s\n' "$c" | wc -l)" -eq "$2" ] || { bad "$1x$2: $(printf '%s\n' "$c" | wc -l) rows"; return; }
  printf '%s\n' "$c" | head -1 | grep -qE "$3" || { bad "$1x$2 status bar: $(printf '%s\n' "$c" | head -1)"; return; }
  printf '%s\n' "$c" | tail -1 | grep -qE "$4" || { bad "$1x$2 footer: $(printf '%s\n' "$c" | tail -1)"; return; }
  ok
}

# mkidx DIR SPLIT N H W: DIR/SPLIT-{images,labels}-idx*-ubyte with N random
# HxW u8 images and N labels (i mod 10): MNIST-named data of any shape
be32() {
  printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))"
  printf "\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"
}
mkidx() {
  mkdir -p "$1"
  { printf '\x00\x00\x08\x03'; be32 "$3"; be32 "$4"; be32 "$5"; head -c $(($3 * $4 * $5)) /dev/urandom; } \
    >"$1/$2-images-idx3-ubyte"
  { printf '\x00\x00\x08\x01'; be32 "$3"; for i in $(seq 0 $(($3 - 1))); do printf "\\x0$((i % 10))"; done; } \
    >"$1/$2-labels-idx1-ubyte"
}
