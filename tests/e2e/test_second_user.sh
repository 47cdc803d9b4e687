#!/usr/bin/env bash
# A second Unix user cannot steer a run, and is told why. As root only: a
# user made for the test (useradd, removed with userdel -r at exit) meets
# root's run through `lathe ctl` and a raw socket (both refused with the
# reason printed: the socket is 0600) and `lathe runs` (listed as running,
# its socket another user's); then root meets that user's run, where the
# server itself refuses with one reason frame before it closes.
#   usage: test_second_user.sh <lathe binary> <source dir>
. "$(dirname "$0")/lib.sh" "$1"
if [ "$(id -u)" -ne 0 ] || ! command -v useradd >/dev/null || ! command -v runuser >/dev/null; then
  echo "skipped: needs root with useradd and runuser (a second user)"
  exit 0
fi
need_data
PY=/usr/bin/python3 # the system's: another user cannot reach root's own installs
[ -x $PY ] || PY=$(command -v python3)
U=lathe-t$$
useradd --no-create-home --shell /bin/sh "$U" 2>"$tmp/useradd.err" || {
  echo "skipped: useradd failed: $(cat "$tmp/useradd.err")"
  exit 0
}
upid=
cleanup() {
  [ -n "$upid" ] && kill -9 "$upid" 2>/dev/null
  userdel -r "$U" 2>/dev/null || userdel "$U" 2>/dev/null
  e2e_cleanup
}
trap cleanup EXIT
chmod 755 "$tmp" # mktemp made it 0700: the other user reads the run folders below
# the lathe binary where the other user can run it
cp "$LATHE" "$tmp/lathe" && chmod 755 "$tmp/lathe"
L=$tmp/lathe
uid=$(id -u "$U")

# raw <socket>: connects and prints the first frame's text (an error REPLY:
# magic, type, length, request id, ok, text) or why connecting failed
cat >"$tmp/raw.py" <<'EOF'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect refused:", e.strerror)
    sys.exit(3)
data = b""
while True:
    try:
        chunk = s.recv(4096)
    except OSError as e:
        print("recv failed:", e)
        break
    if not chunk:
        break
    data += chunk
if len(data) >= 14 and data[:4] == b"LTCP":
    n = struct.unpack("<I", data[5:9])[0]
    print("server said (type %d, ok %d): %s" % (data[4], data[13], data[14:9 + n].decode(errors="replace")))
else:
    print("closed after %d bytes" % len(data))
sys.exit(4)
EOF
chmod 644 "$tmp/raw.py"

train_args="train mlp --headless --batch-size 32 --max-epochs 1000 --limit-train-batches 20 --limit-val-batches 2 --limit-test-batches 2 --threads 1"

# ---- root's run, met by the other user ----
mkdir -p "$tmp/logs" && chmod 755 "$tmp/logs"
# shellcheck disable=SC2086
(cd "$tmp" && exec "$L" $train_args --default-root-dir "$tmp/logs" >"$tmp/a.out" 2>"$tmp/a.err") &
pid=$!
A=$tmp/logs/mlp/version_0
for _ in $(seq 1 300); do [ -S "$A/control.sock" ] && break; sleep 0.1; done
[ -S "$A/control.sock" ] && ok || bad "root's run has no control.sock: $(tail -2 "$tmp/a.err")"
chmod 755 "$tmp/logs/mlp" "$A" 2>/dev/null

runuser -u "$U" -- "$L" ctl "$A" status >"$tmp/u.out" 2>"$tmp/u.err"
rc=$?
[ $rc -ne 0 ] && grep -q "another user's run" "$tmp/u.err" && grep -q "uid 0" "$tmp/u.err" && ok ||
  bad "lathe ctl as $U: rc $rc, $(cat "$tmp/u.err" "$tmp/u.out")"
runuser -u "$U" -- $PY "$tmp/raw.py" "$A/control.sock" >"$tmp/raw.out" 2>&1
rc=$?
[ $rc -eq 3 ] && grep -q 'connect refused: Permission denied' "$tmp/raw.out" && ok ||
  bad "raw socket as $U: rc $rc, $(cat "$tmp/raw.out")"
runuser -u "$U" -- "$L" runs --root "$tmp/logs" >"$tmp/runs.out" 2>&1
grep -qE '^mlp +0 +running; its socket belongs to another user' "$tmp/runs.out" && ok ||
  bad "lathe runs as $U: $(cat "$tmp/runs.out")"
# the owner still steers it
"$L" ctl "$A" status >"$tmp/o.out" 2>&1 && grep -q '^state=' "$tmp/o.out" && ok || bad "root's own ctl: $(cat "$tmp/o.out")"
"$L" ctl "$A" stop >/dev/null 2>&1
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
wait "$pid" 2>/dev/null
pid=

# ---- the other user's run, met by root: the server refuses with its reason ----
mkdir -p "$tmp/ulogs" && chown "$U" "$tmp/ulogs"
# shellcheck disable=SC2086
(cd "$tmp/ulogs" && exec runuser -u "$U" -- "$L" $train_args --default-root-dir "$tmp/ulogs" >"$tmp/b.out" 2>"$tmp/b.err") &
upid=$!
B=$tmp/ulogs/mlp/version_0
for _ in $(seq 1 300); do [ -S "$B/control.sock" ] && break; sleep 0.1; done
[ -S "$B/control.sock" ] && ok || bad "$U's run has no control.sock: $(tail -2 "$tmp/b.err")"
"$L" ctl "$B" status >"$tmp/r.out" 2>"$tmp/r.err"
rc=$?
[ $rc -ne 0 ] && grep -q "refused: another user's run (it runs as uid $uid, this client as uid 0)" "$tmp/r.err" && ok ||
  bad "lathe ctl as root on $U's run: rc $rc, $(cat "$tmp/r.err" "$tmp/r.out")"
$PY "$tmp/raw.py" "$B/control.sock" >"$tmp/raw2.out" 2>&1
grep -q "server said (type 3, ok 0): refused: another user's run" "$tmp/raw2.out" && ok ||
  bad "raw socket as root on $U's run: $(cat "$tmp/raw2.out")"
runuser -u "$U" -- "$L" ctl "$B" stop >/dev/null 2>&1
for _ in $(seq 1 100); do kill -0 "$upid" 2>/dev/null || break; sleep 0.1; done
wait "$upid" 2>/dev/null
upid=
finish
