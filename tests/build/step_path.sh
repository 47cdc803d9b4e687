#!/usr/bin/env bash
# Lists the source files of lathe whose code one training step runs (from
# the trainer's train_step to the optimizer), as callgrind sees them, and
# counts them: a measure of how far a reader must follow one step.
# usage: step_path.sh [SRC_DIR]   (builds SRC_DIR/build-path with -O1 -g)
set -euo pipefail
SRC=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
B=$SRC/build-path
cmake -S "$SRC" -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" >/dev/null
cmake --build "$B" -j2 --target lathe >/dev/null
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" --toggle-collect=train_step \
  "$B/lathe" train mnist_cnn --headless --max-epochs 1 --limit-train-batches 2 --limit-val-batches 0 \
  --limit-test-batches 0 --num-sanity-val-steps 0 --batch-size 16 --threads 1 --default-root-dir "$tmp/logs" \
  >/dev/null 2>&1
# the functions with a cost of their own, each mapped to the file that
# defines it (inlined code counts for its caller, not for its header)
callgrind_annotate --threshold=100 "$tmp/cg" 2>/dev/null | grep -E '^ *[0-9,]+ \(' \
  | sed -E 's/^[^:]*:([A-Za-z_][A-Za-z0-9_.]*).*/\1/' | sort -u >"$tmp/funcs"
nm -l --defined-only "$B/lathe" | awk 'NF >= 4 {print $3, $4}' | sed -E 's/:[0-9]+$//' | sort -u >"$tmp/defs"
awk 'NR == FNR {want[$1] = 1; next} ($1 in want) {print $2}' "$tmp/funcs" "$tmp/defs" \
  | grep -E "^$SRC/(core|experiments)/" | sed "s#^$SRC/##" | sort -u | tee "$tmp/files"
echo "files on the training step's path: $(wc -l <"$tmp/files")"
