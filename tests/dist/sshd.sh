#!/usr/bin/env bash
# A private sshd on 127.0.0.1 for tests: host key, client key, authorized_keys
# and sshd_config in a temporary folder, a free port, key authentication only.
# Nothing under /etc/ssh or ~/.ssh is touched.
#   eval "$(tests/dist/sshd.sh start)"   # exports SSH_OPTS and LATHE_SSHD_DIR
#   ssh $SSH_OPTS 127.0.0.1 true
#   tests/dist/sshd.sh stop "$LATHE_SSHD_DIR"
# start prints the exports on stdout once a login works (at most 10 s) and
# exits 0; otherwise one line on stderr and exit 1 (77 when OpenSSH is missing:
# CTest's skip code). `check` tells whether the packages are there.
set -u
me=${0##*/}
die() { echo "$me: $*" >&2; exit "${2:-1}"; }

need() {
  [ -x /usr/sbin/sshd ] || { echo "$me: /usr/sbin/sshd not found (Debian: apt-get install openssh-server)" >&2; return 77; }
  local b
  for b in ssh ssh-keygen; do
    command -v "$b" >/dev/null || { echo "$me: $b not found (Debian: apt-get install openssh-client)" >&2; return 77; }
  done
}

. "$(dirname "$0")/lib.sh"

stop() {
  local d=$1 p
  [ -n "$d" ] && [ -f "$d/sshd_config" ] || die "stop: $d is not a folder made by '$me start'"
  p=$(cat "$d/sshd.pid" 2>/dev/null)
  if [ -n "$p" ] && kill "$p" 2>/dev/null; then
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  fi
  rm -rf "$d"
}

start() {
  need || exit $?
  local d port opts
  d=$(mktemp -d /tmp/lathe-sshd.XXXXXX) || die "mktemp failed"
  ssh-keygen -q -t ed25519 -N '' -f "$d/host_key" || { rm -rf "$d"; die "ssh-keygen (host key) failed"; }
  ssh-keygen -q -t ed25519 -N '' -f "$d/client_key" || { rm -rf "$d"; die "ssh-keygen (client key) failed"; }
  cp "$d/client_key.pub" "$d/authorized_keys"
  port=$(free_port) || { rm -rf "$d"; die "no free port"; }
  mkdir -p /run/sshd 2>/dev/null # the privilege separation folder sshd insists on
  cat >"$d/sshd_config" <<EOF
# written by tests/dist/sshd.sh: a private sshd on loopback
ListenAddress 127.0.0.1
Port $port
HostKey $d/host_key
AuthorizedKeysFile $d/authorized_keys
PidFile $d/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
AllowStreamLocalForwarding yes
AllowTcpForwarding yes
StreamLocalBindUnlink yes
PermitTTY yes
X11Forwarding no
PrintMotd no
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
EOF
  /usr/sbin/sshd -f "$d/sshd_config" -E "$d/sshd.log" 2>"$d/sshd.err" ||
    { local e; e=$(tail -1 "$d/sshd.err"); [ -n "$e" ] || e=$(tail -1 "$d/sshd.log"); rm -rf "$d"; die "sshd did not start: $e"; }
  opts="-p $port -i $d/client_key -o IdentitiesOnly=yes -o UserKnownHostsFile=$d/known_hosts -o StrictHostKeyChecking=no -o BatchMode=yes -o LogLevel=ERROR"
  for _ in $(seq 1 50); do
    ssh $opts 127.0.0.1 true 2>"$d/ssh.err" && { echo "export SSH_OPTS='$opts' LATHE_SSHD_DIR=$d"; return 0; }
    sleep 0.2
  done
  local e; e=$(tail -1 "$d/ssh.err"); stop "$d"
  die "no login over the private sshd on 127.0.0.1:$port: $e"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-${LATHE_SSHD_DIR:-}}" ;;
  check) need ;;
  *) die "usage: $me start | stop [DIR] | check" 2 ;;
esac
