# Shared by slurm.sh and sshd.sh (sourced): a free TCP port on loopback.
# free_port prints one that nothing listens on (the kernel's pick where
# python3 is there, else a random one that `ss` shows unused).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null && return
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 20000))
    ss -Htln "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
  done
  return 1
}
