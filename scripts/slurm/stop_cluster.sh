#!/usr/bin/env bash
# Stop the daemons scripts/slurm/start_cluster.sh started, and only those: each "PID NAME" line of
# STATE_DIR/pids, newest first, is signalled only while /proc/PID/comm still names that daemon (a PID that
# was reused by another program is left alone). SIGTERM, then SIGKILL after a grace period.
#   scripts/slurm/stop_cluster.sh STATE_DIR
# Exit status 0 when every recorded daemon is gone; STATE_DIR itself is kept (logs) - delete it yourself.
set -uo pipefail

STATE=${1:?usage: stop_cluster.sh STATE_DIR}
GRACE_S=${HATL_SLURM_STOP_GRACE_S:-15}
PIDS="$STATE/pids"
log() { printf '[stop_cluster %(%H:%M:%S)T] %s\n' -1 "$*"; }

[ -f "$PIDS" ] || { log "nothing to stop: $PIDS does not exist"; exit 0; }

alive() {  # alive PID NAME: the process exists and is still the daemon we started
    local comm
    comm=$(cat "/proc/$1/comm" 2>/dev/null) || return 1
    [ "$comm" = "$2" ] || return 1
    # A zombie has exited already; only its parent's wait is missing.
    [ "$(awk '/^State:/{print $2}' "/proc/$1/status" 2>/dev/null)" != "Z" ]
}

failed=0
# Reverse start order: slurmd, slurmctld, slurmdbd, mariadbd, munged.
while read -r pid name; do
    [ -n "${pid:-}" ] || continue
    if ! alive "$pid" "$name"; then
        log "$name (pid $pid) already gone"
        continue
    fi
    kill -TERM "$pid" 2>/dev/null
    deadline=$((SECONDS + GRACE_S))
    while alive "$pid" "$name" && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    if alive "$pid" "$name"; then
        log "$name (pid $pid) ignored SIGTERM for ${GRACE_S}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null
        sleep 0.5
    fi
    if alive "$pid" "$name"; then
        log "ERROR: $name (pid $pid) is still running"
        failed=1
    else
        log "stopped $name (pid $pid)"
    fi
done < <(tac "$PIDS")

if [ $failed -eq 0 ]; then
    # The record is cleared only when every daemon is gone, so a failed stop can be retried.
    : >"$PIDS"
fi
exit $failed
