#!/usr/bin/env bash
# Start a throw-away single-node SLURM cluster on this machine, bound to loopback, for testing the
# Snakemake SLURM profile (tests/test_slurm.py). Needs root (Debian/Ubuntu with apt-get); no systemd.
#
#   scripts/slurm/start_cluster.sh STATE_DIR      # e.g. STATE_DIR=$(mktemp -d)
#   source STATE_DIR/env.sh                       # SLURM_CONF for sbatch/squeue/sacct, srun shim on PATH
#   scripts/slurm/stop_cluster.sh STATE_DIR       # stops exactly the daemons started here, by PID
#
# Everything lives under STATE_DIR: slurm.conf, gres.conf, slurmdbd.conf, the munge key and socket, the MariaDB
# data directory, spool, state, logs, and `pids` (one "PID NAME" line per daemon, in start order). Nothing is
# written to /etc except what apt-get installs. Daemons: munged, mariadbd (job accounting, 127.0.0.1 only),
# slurmdbd, slurmctld, slurmd. Accounting is real because the Snakemake SLURM plugin checks the account with
# sacctmgr and polls job states with sacct.
#
# The cluster mirrors the site names in profiles/slurm/config.yaml, so that profile runs unchanged:
# partitions `cpu` (default) and `gpu`, account `hatl`, and one fake GPU of type `a100` (gres.conf
# File=/dev/null: schedulable, not usable). Override with HATL_SLURM_{PARTITIONS,ACCOUNT,GPU_TYPE} if you edit them.
set -euo pipefail

STATE=${1:?usage: start_cluster.sh STATE_DIR}
PARTITIONS=${HATL_SLURM_PARTITIONS:-cpu gpu}
ACCOUNT=${HATL_SLURM_ACCOUNT:-hatl}
GPU_TYPE=${HATL_SLURM_GPU_TYPE:-a100}
CLUSTER=hatltest
# Uncommon ports so that a test cluster never collides with a real slurm/mysql on the same host.
DB_PORT=${HATL_SLURM_DB_PORT:-36306}
CTLD_PORT=${HATL_SLURM_CTLD_PORT:-36817}
SLURMD_PORT=${HATL_SLURM_SLURMD_PORT:-36818}
DBD_PORT=${HATL_SLURM_DBD_PORT:-36819}
WAIT_S=${HATL_SLURM_WAIT_S:-60}

log() { printf '[start_cluster %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (installs packages and starts daemons)"
command -v apt-get >/dev/null || die "apt-get not found: only Debian/Ubuntu are supported"
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
[ ! -s "$STATE/pids" ] || die "$STATE/pids exists: a cluster from this folder is still registered; run stop_cluster.sh first"

# --- 1. packages ------------------------------------------------------------------------------------------
PKGS="slurm-wlm munge slurmdbd mariadb-server"
missing=""
for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"; done
if [ -n "$missing" ]; then
    log "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    # Try without refreshing the package lists first (fast when they are current), then with.
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >"$STATE/apt.log" 2>&1 \
        || { apt-get update -qq >>"$STATE/apt.log" 2>&1 && apt-get install -y -qq --no-install-recommends $missing >>"$STATE/apt.log" 2>&1; } \
        || { tail -20 "$STATE/apt.log"; die "apt-get install failed (log: $STATE/apt.log)"; }
    # The packages' postinst may start daemons through invoke-rc.d where a service manager exists; we
    # start our own below and never touch those.
else
    log "packages present: $PKGS"
fi

HOST=$(hostname -s)
mkdir -p "$STATE"/{etc,log,run,state,spool,munge,mysql}
chmod 755 "$STATE"
: >"$STATE/pids"

cleanup_on_error() {
    local rc=$?
    if [ $rc -ne 0 ]; then
        log "start failed (exit $rc); log tails follow, then the daemons started so far are stopped"
        for f in "$STATE"/log/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -15 "$f"; }; done
        bash "$(dirname "$0")/stop_cluster.sh" "$STATE" || true
    fi
}
trap cleanup_on_error EXIT

# record PID NAME: stop_cluster.sh checks /proc/PID/comm against NAME before it signals anything.
record() { echo "$1 $2" >>"$STATE/pids"; log "started $2 (pid $1)"; }

wait_for() {  # wait_for DESCRIPTION COMMAND...: also fails at once when the daemon started last has died
    local what=$1; shift
    local deadline=$((SECONDS + WAIT_S))
    local last
    last=$(tail -1 "$STATE/pids" | cut -d' ' -f1)
    until "$@" >/dev/null 2>&1; do
        kill -0 "$last" 2>/dev/null || die "the daemon with pid $last exited while waiting for $what"
        [ $SECONDS -lt $deadline ] || die "timed out after ${WAIT_S}s waiting for $what"
        sleep 0.5
    done
    log "ready: $what"
}

# --- 2. munge: run as the munge user on the standard socket ---------------------------------------------
# Slurm 22.05 clients open slurmdbd's persistent connection with munge's compiled-in socket whatever AuthInfo
# says, so munged must listen on /run/munge/munge.socket.2. A munged already serving it belongs to someone
# else: use it as it is (same host, same key) and leave it alone.
MUNGE_SOCKET=/run/munge/munge.socket.2
if munge -n >/dev/null 2>&1; then
    log "a munged is already serving $MUNGE_SOCKET: using it (not ours, never stopped)"
else
    install -d -o munge -g munge -m 755 /run/munge
    setpriv --reuid=munge --regid=munge --init-groups test -x "$STATE" \
        || die "user munge cannot reach $STATE (a parent folder is not searchable by others): use e.g. \$(mktemp -d)"
    chown munge:munge "$STATE/munge"
    chmod 700 "$STATE/munge"
    # setpriv execs in place (no fork), so $! is munged itself.
    setpriv --reuid=munge --regid=munge --init-groups \
        /usr/sbin/munged --foreground --socket="$MUNGE_SOCKET" --key-file=/etc/munge/munge.key \
        --log-file="$STATE/munge/munged.log" --pid-file="$STATE/munge/munged.pid" \
        --seed-file="$STATE/munge/munged.seed" >"$STATE/log/munged.log" 2>&1 &
    record $! munged
    wait_for "munge socket" munge -n
fi

# --- 3. MariaDB for slurmdbd (127.0.0.1 only, data under STATE) ---------------------------------------------
chown mysql:mysql "$STATE/mysql"
DB_SOCKET="$STATE/mysql/mysqld.sock"
DB_PASS=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
mariadb-install-db --no-defaults --user=mysql --datadir="$STATE/mysql/data" --skip-test-db \
    --auth-root-authentication-method=socket >"$STATE/log/mariadb-install.log" 2>&1
/usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$STATE/mysql/data" --socket="$DB_SOCKET" \
    --port="$DB_PORT" --bind-address=127.0.0.1 --skip-name-resolve --pid-file="$STATE/mysql/mariadbd.pid" \
    --log-error="$STATE/mysql/mariadbd.log" --innodb-buffer-pool-size=64M >/dev/null 2>&1 &
record $! mariadbd
wait_for "mariadb" mariadb-admin --no-defaults --socket="$DB_SOCKET" ping
mariadb --no-defaults --socket="$DB_SOCKET" -u root <<SQL
CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
FLUSH PRIVILEGES;
SQL

# --- 4. configuration files -----------------------------------------------------------------------------------
# Node line from the hardware slurmd sees, memory lowered to ~90% so that the node is never drained for
# "low RealMemory"; one fake GPU of the profile's type.
NODE_HW=$(slurmd -C | head -1 | sed -E 's/^NodeName=[^ ]+ //; s/ UpTime=.*//')
REAL_MEM=$(sed -nE 's/.*RealMemory=([0-9]+).*/\1/p' <<<"$NODE_HW")
NODE_HW=$(sed -E "s/RealMemory=[0-9]+/RealMemory=$((REAL_MEM * 9 / 10))/" <<<"$NODE_HW")
{
    echo "# Written by scripts/slurm/start_cluster.sh for a throw-away test cluster."
    echo "ClusterName=$CLUSTER"
    echo "SlurmctldHost=$HOST(127.0.0.1)"
    echo "SlurmctldPort=$CTLD_PORT"
    echo "SlurmdPort=$SLURMD_PORT"
    echo "AuthType=auth/munge"
    echo "AuthInfo=socket=$MUNGE_SOCKET"
    echo "CredType=cred/munge"
    # Listen on the addresses named here (127.0.0.1), not on every interface.
    echo "CommunicationParameters=NoInAddrAny"
    echo "SlurmUser=root"
    echo "SlurmdUser=root"
    echo "StateSaveLocation=$STATE/state"
    echo "SlurmdSpoolDir=$STATE/spool"
    echo "SlurmctldPidFile=$STATE/run/slurmctld.pid"
    echo "SlurmdPidFile=$STATE/run/slurmd.pid"
    echo "SlurmctldLogFile=$STATE/log/slurmctld.log"
    echo "SlurmdLogFile=$STATE/log/slurmd.log"
    # No cgroups in a container: track processes through /proc, no task binding.
    echo "ProctrackType=proctrack/linuxproc"
    echo "TaskPlugin=task/none"
    echo "MpiDefault=none"
    echo "SchedulerType=sched/backfill"
    echo "SelectType=select/cons_tres"
    # CPU (not core) granularity so that two 1-thread jobs share a 2-thread core.
    echo "SelectTypeParameters=CR_CPU_Memory"
    # Without a default a job that asks for no memory takes the whole node.
    echo "DefMemPerCPU=500"
    echo "ReturnToService=2"
    # Finished jobs stay visible to squeue for 5 minutes (the plugin's fallback status command needs that).
    echo "MinJobAge=300"
    echo "GresTypes=gpu"
    echo "AccountingStorageType=accounting_storage/slurmdbd"
    echo "AccountingStorageHost=127.0.0.1"
    echo "AccountingStoragePort=$DBD_PORT"
    echo "AccountingStorageTRES=gres/gpu,gres/gpu:$GPU_TYPE"
    echo "AccountingStorageEnforce=associations"
    echo "JobAcctGatherType=jobacct_gather/linux"
    echo "JobCompType=jobcomp/none"
    echo "NodeName=$HOST NodeAddr=127.0.0.1 $NODE_HW Gres=gpu:$GPU_TYPE:1 State=UNKNOWN"
    default=YES
    for part in $PARTITIONS; do
        echo "PartitionName=$part Nodes=$HOST Default=$default MaxTime=INFINITE State=UP"
        default=NO
    done
} >"$STATE/etc/slurm.conf"
# A GPU without a device is "count only" and drains the node; /dev/null stands in for the device file.
printf 'AutoDetect=off\nName=gpu Type=%s File=/dev/null\n' "$GPU_TYPE" >"$STATE/etc/gres.conf"
cat >"$STATE/etc/slurmdbd.conf" <<CONF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=$HOST
DbdAddr=127.0.0.1
CommunicationParameters=NoInAddrAny
DbdPort=$DBD_PORT
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
PidFile=$STATE/run/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
CONF
chmod 600 "$STATE/etc/slurmdbd.conf"
# Clients find this cluster through SLURM_CONF. Inside a job, Snakemake's jobstep plugin strips every SLURM_*
# variable except the job's identity before it calls srun, so srun would look for /etc/slurm/slurm.conf; a
# one-line srun shim on PATH (PATH is kept) restores SLURM_CONF instead of writing into /etc.
mkdir -p "$STATE/bin"
printf '#!/bin/sh\nSLURM_CONF=%s exec /usr/bin/srun "$@"\n' "$STATE/etc/slurm.conf" >"$STATE/bin/srun"
chmod 755 "$STATE/bin/srun"
printf 'export SLURM_CONF=%s\nexport PATH=%s:$PATH\n' "$STATE/etc/slurm.conf" "$STATE/bin" >"$STATE/env.sh"
export SLURM_CONF="$STATE/etc/slurm.conf"

# --- 5. slurmdbd, then cluster/account/user, then slurmctld and slurmd ---------------------------------------
/usr/sbin/slurmdbd -D >"$STATE/log/slurmdbd.out" 2>&1 &
record $! slurmdbd
wait_for "slurmdbd" sacctmgr -n list cluster
sacctmgr -i add cluster "$CLUSTER" >/dev/null
sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description=hatl-test Organization=hatl >/dev/null
sacctmgr -i add user "$(id -un)" Account="$ACCOUNT" DefaultAccount="$ACCOUNT" Cluster="$CLUSTER" >/dev/null
log "accounting: cluster $CLUSTER, account $ACCOUNT, user $(id -un)"

/usr/sbin/slurmctld -D -i >"$STATE/log/slurmctld.out" 2>&1 &
record $! slurmctld
wait_for "slurmctld" scontrol ping
/usr/sbin/slurmd -D >"$STATE/log/slurmd.out" 2>&1 &
record $! slurmd
node_idle() { sinfo -h -n "$HOST" -o %t | grep -qx idle; }
wait_for "node $HOST idle" node_idle
log "cluster up: $(sinfo -h -o '%P %t %G' | tr '\n' ';') (SLURM_CONF=$SLURM_CONF)"
