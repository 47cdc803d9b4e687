#!/usr/bin/env bash
# prepare.sh: fetches what tests/gpu/run.sh needs on a machine with an NVIDIA
# GPU and no network, into tests/gpu/pkgs/ (ignored by git):
#   pkgs/debs/  the Debian 12 (amd64) packages lathe builds against there:
#               OpenBLAS (OpenMP build) with libgfortran, zlib, ncurses,
#               readline, pkgconf, and tmux for the workbench check
#   pkgs/data/  the four Fashion-MNIST IDX .gz files
# and prints the size of what travels (the source tree plus pkgs/), which must
# stay under 60 MiB. Run it here, on a Debian 12 machine with apt, then run
# tests/gpu/run.sh there with tests/gpu/pkgs/ copied along.
#   usage: tests/gpu/prepare.sh [DATA_DIR]
#   DATA_DIR: folder with the four .gz files (default
#   /usr/share/datasets/fashion-mnist; when absent, the dataset-fashion-mnist
#   package is downloaded and unpacked for them)
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
pkgs=$here/pkgs
data_src=${1:-/usr/share/datasets/fashion-mnist}
die() { echo "prepare.sh: $*" >&2; exit 1; }

command -v apt-get >/dev/null || die "apt-get not found: run this on Debian 12"
arch=$(dpkg --print-architecture 2>/dev/null)
[ "$arch" = amd64 ] || die "this machine's packages are '$arch', the GPU machine needs amd64"

# libgomp1 is left out on purpose: the compiler there brings its own, and an
# older one first on the library path would break programs built there.
debs=(libopenblas0-openmp libopenblas-openmp-dev libgfortran5 libquadmath0
  zlib1g zlib1g-dev libncurses-dev libncursesw6 libtinfo6 ncurses-base libreadline-dev libreadline8
  pkgconf-bin libpkgconf3 tmux libevent-core-2.1-7 libutempter0)

mkdir -p "$pkgs/debs" "$pkgs/data" || die "cannot create $pkgs"
rm -f "$pkgs"/debs/*.deb
if ! (cd "$pkgs/debs" && apt-get download "${debs[@]}") >"$pkgs/download.log" 2>&1; then
  die "apt-get download failed (see $pkgs/download.log): $(grep -E '^E:' "$pkgs/download.log" | head -1)"
fi
n=$(ls "$pkgs"/debs/*.deb 2>/dev/null | wc -l)
[ "$n" -eq ${#debs[@]} ] || die "expected ${#debs[@]} packages in $pkgs/debs, found $n"

files="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"
if [ ! -d "$data_src" ]; then
  tmpd=$(mktemp -d) || die "mktemp failed"
  trap 'rm -rf "$tmpd"' EXIT
  (cd "$tmpd" && apt-get download dataset-fashion-mnist) >>"$pkgs/download.log" 2>&1 ||
    die "no $data_src and apt-get download dataset-fashion-mnist failed"
  dpkg -x "$tmpd"/dataset-fashion-mnist_*.deb "$tmpd/x" || die "cannot unpack dataset-fashion-mnist"
  data_src=$tmpd/x/usr/share/datasets/fashion-mnist
fi
for f in $files; do
  [ -f "$data_src/$f" ] || die "$data_src/$f not found"
  cp "$data_src/$f" "$pkgs/data/$f" || die "cannot copy $f"
done

# what travels: tracked files, untracked files git does not ignore, and pkgs/
tree=$(cd "$src" && { git ls-files -z; git ls-files -z -o --exclude-standard; } | xargs -0 stat -c %s 2>/dev/null |
  awk '{ s += $1 } END { print s + 0 }')
debs_b=$(du -cb "$pkgs"/debs/*.deb | tail -1 | cut -f1)
data_b=$(du -cb "$pkgs"/data/*.gz | tail -1 | cut -f1)
total=$((tree + debs_b + data_b))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "packages: $n debs, $(mib "$debs_b")"
echo "data:     4 files, $(mib "$data_b")"
echo "source:   $(mib "$tree")"
echo "total:    $(mib "$total") (limit 60 MiB)"
[ "$total" -lt $((60 * 1048576)) ] || die "what travels is $(mib "$total"), over 60 MiB"
echo "ready: copy the tree with tests/gpu/pkgs/ to the GPU machine and run tests/gpu/run.sh there"
