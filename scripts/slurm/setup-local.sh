#!/usr/bin/env bash
# scripts/slurm/setup-local.sh: a real one-node Slurm on this machine, for testing
# scripts/slurm/hsrl.sbatch (docs/cluster.md, "Testing the script on one machine"; the steps are
# those of ../shared/docs/slurm-local.md). Needs root.
#
#   scripts/slurm/setup-local.sh           install slurm-wlm + munge if missing, write
#                                          /etc/slurm/slurm.conf for this host, start munged,
#                                          slurmctld and slurmd, wait until the node is idle
#   scripts/slurm/setup-local.sh --stop    stop the three daemons (by their pid files)
#
# Idempotent: packages already installed are not reinstalled, a daemon already running (its pid
# file names a live process) is not started twice, and slurm.conf is rewritten only when its
# content would change (a file that this script did not write is kept as slurm.conf.bak-<time>;
# slurmctld and slurmd are then restarted to read the new one).
# The node: NodeName = `hostname`, CPUs = nproc, RealMemory = 95% of MemTotal in
# /proc/meminfo (slurmd drains a node that has less memory than configured). One partition
# "main", no time limit, no accounting. Daemon logs: /var/log/slurm/slurm{ctld,d}.log.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# written by hsrl scripts/slurm/setup-local.sh"
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid

say() { printf 'setup-local: %s\n' "$*"; }
die() { printf 'setup-local: error: %s\n' "$*" >&2; exit 1; }

# 0 when the pid file names a live process
alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Stops the daemon of pid file $1 (TERM, then up to 10 s for it to go).
stop_daemon() {
  local name=$1 pidfile=$2 pid
  if ! alive "$pidfile"; then
    say "$name is not running"
    return 0
  fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid"
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name (pid $pid) did not stop within 10 s"
    return 1
  fi
  say "stopped $name (pid $pid)"
}

usage() { sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

case ${1:-} in
  -h | --help) usage; exit 0 ;;
  --stop)
    stop_daemon slurmd "$SLURMD_PID"
    stop_daemon slurmctld "$CTLD_PID"
    stop_daemon munged "$MUNGE_PID"
    exit 0
    ;;
  "") ;;
  *) usage >&2; exit 2 ;;
esac

[[ $(id -u) -eq 0 ]] || die "needs root (apt-get, /etc/slurm, the daemons)"

# ---- packages
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null ||
  ! command -v sbatch >/dev/null; then
  say "installing slurm-wlm and munge (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq slurm-wlm munge >/dev/null
fi
say "slurm-wlm $(dpkg-query -W -f='${Version}' slurm-wlm 2>/dev/null || echo '?'), munge $(dpkg-query -W -f='${Version}' munge 2>/dev/null || echo '?')"

# ---- directories and the munge key (normally made when the package is installed)
mkdir -p /run/munge /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /etc/slurm
chown munge:munge /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
  say "creating /etc/munge/munge.key"
  if command -v mungekey >/dev/null; then
    mungekey --create --keyfile=/etc/munge/munge.key
  else
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
fi

# ---- slurm.conf for this host
host=$(hostname)
cpus=$(nproc)
mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
[[ -n $mem_kb ]] || die "no MemTotal in /proc/meminfo"
mem_mb=$((mem_kb * 95 / 100 / 1024))
new_conf=$(
  cat <<EOF
$MARK for host $host
# (${cpus} CPUs, ${mem_mb} MB = 95% of MemTotal); see ../shared/docs/slurm-local.md.
ClusterName=local
SlurmctldHost=$host
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
ReturnToService=2
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmUser=root
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobCompType=jobcomp/none
MpiDefault=none
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
)
conf_changed=0
if [[ ! -f $CONF ]] || [[ $(cat "$CONF") != "$new_conf" ]]; then
  if [[ -f $CONF ]] && ! grep -qF "$MARK" "$CONF"; then
    bak=$CONF.bak-$(date +%Y%m%d-%H%M%S)
    cp -p "$CONF" "$bak"
    say "kept the existing $CONF as $bak"
  fi
  printf '%s\n' "$new_conf" >"$CONF"
  conf_changed=1
  say "wrote $CONF (NodeName=$host CPUs=$cpus RealMemory=$mem_mb)"
fi

# ---- daemons
if alive "$MUNGE_PID"; then
  say "munged is running (pid $(cat "$MUNGE_PID"))"
else
  runuser -u munge -- /usr/sbin/munged
  say "started munged"
fi
for _ in $(seq 25); do
  munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
  sleep 0.2
done
munge -n | unmunge >/dev/null || die "munge does not work (see /var/log/munge/munged.log)"

if ((conf_changed)); then # the daemons read slurm.conf when they start
  alive "$SLURMD_PID" && stop_daemon slurmd "$SLURMD_PID"
  alive "$CTLD_PID" && stop_daemon slurmctld "$CTLD_PID"
fi
if alive "$CTLD_PID"; then
  say "slurmctld is running (pid $(cat "$CTLD_PID"))"
else
  /usr/sbin/slurmctld
  say "started slurmctld"
fi
if alive "$SLURMD_PID"; then
  say "slurmd is running (pid $(cat "$SLURMD_PID"))"
else
  /usr/sbin/slurmd
  say "started slurmd"
fi

# ---- wait for the node: idle (or busy with jobs); a down/drained node is resumed once
resumed=0
for i in $(seq 60); do
  state=$(sinfo -h -n "$host" -o '%T' 2>/dev/null | head -1 || true)
  case $state in
    idle | mixed | allocated | completing) break ;;
    down* | drain* | fail*)
      if ((!resumed)); then
        say "node $host is $state; resuming it"
        scontrol update NodeName="$host" State=RESUME || true
        resumed=1
      fi
      ;;
  esac
  sleep 1
  ((i < 60)) || die "node $host is '${state:-unknown}' after 60 s (see /var/log/slurm/slurmd.log, slurmctld.log)"
done
sinfo
say "ready: sbatch scripts/slurm/hsrl.sbatch CONFIG; stop with $0 --stop"
