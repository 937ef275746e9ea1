#!/usr/bin/env bash
# Stops the test SLURM of tests/cluster/slurm-up.sh by PID (slurmd, slurmctld, and munged when
# slurm-up started it) and removes its state folder and the /etc/slurm links. Safe to run twice.
set -uo pipefail

DIR=${DFDETECT_SLURM_DIR:-/tmp/dfdetect-slurm}
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

stop() {  # stop PIDFILE NAME: SIGTERM, then SIGKILL after 10 s
    local pidfile=$1 name=$2 pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if [ -n "$pid" ] && $SUDO kill -0 "$pid" 2>/dev/null; then
        $SUDO kill "$pid"
        for _ in $(seq 1 20); do $SUDO kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        if $SUDO kill -0 "$pid" 2>/dev/null; then
            echo "slurm-down: $name ($pid) ignored SIGTERM; killing it" >&2
            $SUDO kill -9 "$pid"
        fi
    fi
}

[ -d "$DIR" ] || { echo "slurm-down: nothing at $DIR" >&2; exit 0; }
stop "$DIR/slurmd.pid" slurmd
stop "$DIR/slurmctld.pid" slurmctld
if [ -f "$DIR/started-munged" ]; then stop /run/munge/munged.pid munged; fi
for name in slurm.conf gres.conf; do
    if [ "$(readlink "/etc/slurm/$name" 2>/dev/null)" = "$DIR/$name" ]; then $SUDO rm -f "/etc/slurm/$name"; fi
done
$SUDO rm -rf "$DIR"
echo "slurm-down: stopped; removed $DIR" >&2
