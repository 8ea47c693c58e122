#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for the cluster tests: `start` installs nothing (the
# packages slurm-wlm and munge must be there), writes a minimal slurm.conf for this host, starts
# munged, slurmctld and slurmd, and waits until the node is idle; `stop` stops the daemons it
# started. Needs root. State lives under $RBP_SLURM_STATE (default /tmp/rbp-slurm).
set -euo pipefail
STATE=${RBP_SLURM_STATE:-/tmp/rbp-slurm}
HOST=$(hostname -s)

start() {
  if sinfo -h -o '%T' 2>/dev/null | grep -qx idle; then
    echo "slurm: already up"
    return 0
  fi
  # the controller must resolve this host's name
  if ! getent hosts "$HOST" >/dev/null 2>&1; then
    echo "127.0.0.1 $HOST" >> /etc/hosts
  fi
  mkdir -p "$STATE"/{ctld,d,log} /etc/slurm /etc/munge /run/munge /var/lib/munge /var/log/munge
  if [ ! -s /etc/munge/munge.key ]; then
    head -c 1024 /dev/urandom > /etc/munge/munge.key
  fi
  chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    munged --force
    echo "$(pgrep -o munged)" > "$STATE/munged.pid"
  fi
  local mem cpus
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  cat > /etc/slurm/slurm.conf <<CONF
ClusterName=rbp-local
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SchedulerType=sched/backfill
MinJobAge=600
NodeName=$HOST CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
  slurmctld
  slurmd
  for _ in $(seq 1 60); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qx idle; then
      echo "slurm: node $HOST idle"
      return 0
    fi
    sleep 1
  done
  echo "slurm: the node did not become idle within 60 s" >&2
  sinfo >&2 || true
  tail -20 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
  return 1
}

stop() {
  for f in slurmd slurmctld munged; do
    if [ -s "$STATE/$f.pid" ]; then
      kill "$(cat "$STATE/$f.pid")" 2>/dev/null || true
      rm -f "$STATE/$f.pid"
    fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
