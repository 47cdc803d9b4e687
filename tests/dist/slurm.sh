#!/usr/bin/env bash
# A private one-node SLURM cluster for tests: its own munged (key, socket, pid
# and log in a temporary folder), a slurm.conf naming this host (reached on
# 127.0.0.1), slurmctld and slurmd on free ports. Nothing under /etc, /run or
# /var is touched. As root.
#   eval "$(tests/dist/slurm.sh start)"   # exports SLURM_CONF and LATHE_SLURM_DIR
#   srun -n 2 hostname; sbatch ...; squeue
#   tests/dist/slurm.sh stop "$LATHE_SLURM_DIR"
# start prints the exports on stdout once the node is idle (at most
# LATHE_SLURM_WAIT seconds, 30 by default) and exits 0; otherwise one line on
# stderr, everything it started stopped, and exit 1 (77 when the packages are
# missing: CTest's skip code). `check` tells whether the packages are there.
set -u
me=${0##*/}
die() { echo "$me: $*" >&2; exit "${2:-1}"; }

need() {
  local b
  for b in /usr/sbin/munged /usr/sbin/slurmctld /usr/sbin/slurmd srun sinfo; do
    command -v "$b" >/dev/null || { echo "$me: $b not found (Debian: apt-get install slurm-wlm munge)" >&2; return 77; }
  done
  [ "$(id -u)" -eq 0 ] || { echo "$me: the private cluster runs as root (slurmd starts jobs as their user)" >&2; return 77; }
}

. "$(dirname "$0")/lib.sh"

# stop <dir>: kill what the pid files name (slurmd, slurmctld, munged), remove the folder
stop() {
  local d=$1 f p
  [ -n "$d" ] && [ -f "$d/slurm.conf" ] || die "stop: $d is not a folder made by '$me start'"
  # jobs first, while slurmctld can still end them
  if [ -f "$d/run/slurmctld.pid" ] && kill -0 "$(cat "$d/run/slurmctld.pid")" 2>/dev/null; then
    SLURM_CONF=$d/slurm.conf timeout 5 scancel --full --quiet --user="$(id -un)" 2>/dev/null
    for _ in $(seq 1 50); do
      [ -z "$(SLURM_CONF=$d/slurm.conf timeout 5 squeue -h -t R,CG -o %i 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
  for f in slurmd slurmctld munged; do
    [ -f "$d/run/$f.pid" ] || continue
    p=$(cat "$d/run/$f.pid" 2>/dev/null)
    [ -n "$p" ] && kill "$p" 2>/dev/null || continue
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  # what is left behind (a slurmstepd, a job's processes) carries this
  # cluster's SLURM_CONF in its environment, the daemons having been started
  # with it; a job's processes carry SLURM_JOB_ID too
  local env
  for f in /proc/[0-9]*/environ; do
    p=${f#/proc/}; p=${p%/environ}
    [ "$p" = $$ ] || [ "$p" = "$PPID" ] && continue
    env=$(tr '\0' '\n' 2>/dev/null <"$f") || continue
    printf '%s\n' "$env" | grep -qx "SLURM_CONF=$d/slurm.conf" || continue
    if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = slurmstepd ] || printf '%s\n' "$env" | grep -q '^SLURM_JOB_ID='; then
      kill -9 "$p" 2>/dev/null
    fi
  done
  rm -rf "$d"
}

start() {
  need || exit $?
  local d host cpus cport dport
  d=$(mktemp -d /tmp/lathe-slurm.XXXXXX) || die "mktemp failed"
  chmod 755 "$d"
  mkdir -p "$d/munge" "$d/state" "$d/spool" "$d/log" "$d/run"
  chmod 700 "$d/munge"
  host=$(hostname -s)
  cpus=${LATHE_SLURM_CPUS:-$(nproc)}
  cport=$(free_port) && dport=$(free_port) || { rm -rf "$d"; die "no free port"; }
  [ "$cport" != "$dport" ] || dport=$((dport + 1))

  # munge: a fresh key and a daemon of its own
  if command -v mungekey >/dev/null; then mungekey -c -k "$d/munge/munge.key" 2>/dev/null
  else dd if=/dev/urandom of="$d/munge/munge.key" bs=1024 count=1 status=none; fi
  chmod 600 "$d/munge/munge.key"
  /usr/sbin/munged --socket="$d/munge/munge.socket" --key-file="$d/munge/munge.key" \
    --pid-file="$d/run/munged.pid" --log-file="$d/log/munged.log" --seed-file="$d/munge/munged.seed" \
    --force 2>"$d/log/munged.err" || { local e; e=$(tail -1 "$d/log/munged.err"); rm -rf "$d"; die "munged did not start: $e"; }

  cat >"$d/slurm.conf" <<EOF
# written by tests/dist/slurm.sh: a private one-node cluster
ClusterName=lathe-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$cport
SlurmdPort=$dport
AuthType=auth/munge
AuthInfo=socket=$d/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/run/slurmctld.pid
SlurmdPidFile=$d/run/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SwitchType=switch/none
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
JobRequeue=1
KillWait=5
InactiveLimit=0
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=30
SchedulerType=sched/backfill
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE OverSubscribe=NO State=UP
EOF
  export SLURM_CONF=$d/slurm.conf
  /usr/sbin/slurmctld -f "$SLURM_CONF" -i 2>"$d/log/slurmctld.err" || { local e; e=$(tail -1 "$d/log/slurmctld.err"); stop "$d"; die "slurmctld did not start: $e"; }
  /usr/sbin/slurmd -f "$SLURM_CONF" 2>"$d/log/slurmd.err" || { local e; e=$(tail -1 "$d/log/slurmd.err"); stop "$d"; die "slurmd did not start: $e"; }

  local wait=${LATHE_SLURM_WAIT:-30} st=
  for _ in $(seq 1 $((wait * 5))); do
    st=$(sinfo -h -N -o %t 2>/dev/null | head -1)
    [ "$st" = idle ] && break
    sleep 0.2
  done
  if [ "$st" != idle ]; then
    local why
    why=$(grep -hiE 'error|fatal' "$d"/log/slurmctld.log "$d"/log/slurmd.log "$d"/log/*.err 2>/dev/null | tail -1)
    stop "$d"
    die "node $host not idle after ${wait}s (state '${st:-none}'): ${why:-no error logged}"
  fi
  echo "export SLURM_CONF=$d/slurm.conf LATHE_SLURM_DIR=$d"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-${LATHE_SLURM_DIR:-}}" ;;
  check) need ;;
  *) die "usage: $me start | stop [DIR] | check" 2 ;;
esac
