#!/usr/bin/env bash
# The core's layers point one way (CMakeLists.txt, LATHE_LAYERS):
#  1. includes: for every layer, each public header of the layers it sees
#     compiles in that layer's include tree and every other header fails
#     ("No such file"), so an upward or sideways include breaks the build;
#  2. links: every lt_ symbol a layer's library leaves undefined is defined by
#     a library of the layers it sees (none reached for above).
# usage: check_layers.sh BUILD_DIR C_COMPILER
set -uo pipefail
BUILD=$1 CC=$2
root=$BUILD/layers
[ -f "$root/layers.txt" ] || { echo "no $root/layers.txt: configure first"; exit 1; }
all=$(cut -d: -f2 "$root/layers.txt" | tr ' ' '\n' | grep . | sort)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

layers=$(cut -d: -f1 "$root/layers.txt")
for L in $layers; do
  seen=$(ls "$root/$L/lathe" | sort)
  for h in $all; do
    printf '#include "lathe/%s"\nint lt_layers_probe;\n' "$h" >"$tmp/probe.c"
    if grep -qx "$h" <<<"$seen"; then
      "$CC" -std=c11 -D_GNU_SOURCE -fsyntax-only -I"$root/$L" "$tmp/probe.c" 2>"$tmp/err" \
        && ok || bad "$L cannot include its own or a lower header lathe/$h: $(head -1 "$tmp/err")"
    else
      if "$CC" -std=c11 -D_GNU_SOURCE -fsyntax-only -I"$root/$L" "$tmp/probe.c" 2>/dev/null; then
        bad "$L can include lathe/$h, which is above or beside it"
      else ok; fi
    fi
  done
done

# which layers each layer sees: those whose headers are all in its tree
for L in $layers; do
  libs=""
  for M in $layers; do
    hs=$(grep "^$M:" "$root/layers.txt" | cut -d: -f2)
    all_in=1
    for h in $hs; do [ -e "$root/$L/lathe/$h" ] || all_in=0; done
    [ $all_in = 1 ] && libs="$libs $BUILD/liblathe_$M.a"
  done
  lib=$BUILD/liblathe_$L.a
  [ -f "$lib" ] || { bad "no $lib"; continue; }
  nm -u "$lib" 2>/dev/null | awk '{print $NF}' | grep '^lt_' | sort -u >"$tmp/undef"
  # shellcheck disable=SC2086
  nm --defined-only $libs 2>/dev/null | awk '$2 ~ /[TDBRC]/ {print $3}' | sort -u >"$tmp/def"
  missing=$(comm -23 "$tmp/undef" "$tmp/def" | tr '\n' ' ')
  [ -z "$missing" ] && ok || bad "lathe_$L uses symbols defined above it: $missing"
done

echo "$passed passed, $failed failed"
[ $failed = 0 ]
