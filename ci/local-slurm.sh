#!/usr/bin/env bash
# local-slurm.sh - single-node Slurm cluster for CI, from Debian packages,
# started as plain background daemons (no systemd, no cgroups needed).
#
# Tested on Debian bookworm (slurm 22.05.8, munge 0.5.15), as root, also under
# `env -i` with stdin closed, as CI runs it. This is the project's own copy of
# the local-slurm.sh recipe, so that CI needs nothing from outside the repo.
#
# ci/test runs the Slurm tests against ci/local-cluster.sh (three nodes);
# they also run against this one node:
#   eval "$(bash ci/local-slurm.sh start)"
#   JOBFILE_TEST_SLURM=1 cargo test --test slurm
#   bash ci/local-slurm.sh stop
#
# Notes on the configuration (each one was needed, see render_conf):
#   - SlurmctldHost=<hostname -s>(127.0.0.1), NodeAddr=127.0.0.1: the hostname
#     need not resolve.
#   - proctrack/linuxproc, task/none, no accounting, no job completion log:
#     nothing touches cgroups or systemd, and no cgroup.conf is needed.
#   - SlurmdParameters=config_overrides only when more CPUs than nproc are
#     advertised; without it the node drains.
#   - batch_sched_delay=0: the default holds each sbatch job about 3 s.
#   - apt runs behind a policy-rc.d that returns 101, so package scripts do
#     not start services with the stock configuration.
#   - slurmd logs "mpi/pmix ... can not load PMIx library" at startup; harmless.
#   - stop cancels ALL jobs of this cluster, and stops munged only if this
#     script started it.
#
#   local-slurm.sh start   install if missing, configure, start munged/slurmctld/slurmd,
#                          wait until the node is idle, print env lines on stdout
#                          (progress goes to stderr), so:  eval "$(local-slurm.sh start)"
#   local-slurm.sh stop    cancel all jobs, stop the daemons this script started (by pid file)
#   local-slurm.sh status  show daemon pids and sinfo
#   local-slurm.sh env     print the env lines again
#   local-slurm.sh check   smoke test: srun, sbatch, salloc, srun stdin/stdout pipe round trip
#
# Knobs (environment):
#   LOCAL_SLURM_CPUS       CPUs advertised for the node (default: nproc). More than nproc
#                          is allowed (oversubscription; sets SlurmdParameters=config_overrides).
#   LOCAL_SLURM_MEM_MB     RealMemory (default: 80% of MemTotal).
#   LOCAL_SLURM_PARTITION  partition name (default: local); it is the default partition.
#   LOCAL_SLURM_WAIT       seconds to wait for each readiness step (default: 60).
#   LOCAL_SLURM_FORCE=1    overwrite an /etc/slurm/slurm.conf this script did not write.
set -euo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
MARK="# managed-by: local-slurm.sh (single-node CI cluster)"
RUN_DIR=/run/local-slurm
STATE_DIR=/var/lib/local-slurm
LOG_DIR=/var/log/local-slurm
CTLD_PID=$RUN_DIR/slurmctld.pid
SLURMD_PID=$RUN_DIR/slurmd.pid
MUNGE_OURS=$RUN_DIR/munged.pid          # copy of munged's pid, only if we started it
MUNGE_RUN=/run/munge
MUNGE_SOCK=$MUNGE_RUN/munge.socket.2
MUNGE_KEY=/etc/munge/munge.key
PKGS=(slurmctld slurmd slurm-client munge)
PARTITION=${LOCAL_SLURM_PARTITION:-local}
WAIT=${LOCAL_SLURM_WAIT:-60}
# CI may run us with stdin/stdout/stderr closed; keep fds 0-2 valid for the daemons and coproc.
for _fd in 0 1 2; do [ -e "/proc/self/fd/$_fd" ] || eval "exec $_fd<>/dev/null"; done
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

T0=$EPOCHREALTIME
log() { awk -v a="$T0" -v b="$EPOCHREALTIME" -v m="$*" 'BEGIN{printf "[local-slurm %6.2fs] %s\n", b-a, m}' >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- pid-file helpers: a pid counts only if /proc/PID/comm is the expected program ---
pid_of() { # pidfile comm -> prints pid if that process is alive
    local f=$1 comm=$2 pid
    [ -r "$f" ] || return 1
    pid=$(tr -dc '0-9' < "$f")
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || return 1
    echo "$pid"
}
stop_pidfile() { # pidfile comm timeout_s
    local f=$1 comm=$2 tmo=$3 pid i
    if ! pid=$(pid_of "$f" "$comm"); then rm -f "$f"; return 0; fi
    log "stopping $comm (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < tmo * 10; i++)); do
        [ -e "/proc/$pid" ] || break
        sleep 0.1
    done
    if [ -e "/proc/$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ]; then
        log "$comm (pid $pid) still alive after ${tmo}s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
    rm -f "$f"
}
wait_for() { # description, command...  (the description only documents the call site)
    local i; shift
    for ((i = 0; i < WAIT * 10; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    return 1
}

need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

install_if_missing() {
    local b missing=0
    for b in /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/srun /usr/sbin/munged; do
        [ -x "$b" ] || missing=1
    done
    [ "$missing" = 0 ] && { log "packages already installed"; return 0; }
    log "installing ${PKGS[*]} (apt, --no-install-recommends)"
    # Keep package postinst scripts from starting services with the stock config.
    local made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    local rc=0
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PKGS[@]}"
    } > "$LOG_DIR/apt.log" 2>&1 || rc=$?
    [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ "$rc" = 0 ] || { tail -20 "$LOG_DIR/apt.log" >&2; die "apt-get failed (rc $rc), see $LOG_DIR/apt.log"; }
    log "installed: $(/usr/sbin/slurmctld -V 2>/dev/null), munge $(dpkg-query -W -f='${Version}' munge)"
}

node_name() { hostname -s; }

render_conf() {
    local host cpus ncpu mem_total mem overrides=""
    host=$(node_name)
    ncpu=$(nproc)
    cpus=${LOCAL_SLURM_CPUS:-$ncpu}
    mem_total=$(awk '/^MemTotal:/{print int($2/1024)}' /proc/meminfo)
    mem=${LOCAL_SLURM_MEM_MB:-$((mem_total * 8 / 10))}
    [ "$cpus" -gt "$ncpu" ] && overrides="SlurmdParameters=config_overrides"
    cat <<EOF
$MARK
# Regenerated by every 'local-slurm.sh start'. Do not edit.
ClusterName=localci
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# no cgroups, no systemd: plain /proc process tracking, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
StateSaveLocation=$STATE_DIR/slurmctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmctldPort=6817
SlurmdPort=6818
MailProg=/usr/bin/true
InactiveLimit=0
KillWait=5
MinJobAge=300
SlurmdTimeout=300
$overrides
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

print_env() {
    local host cpus
    host=$(node_name)
    cpus=$(sinfo -h -n "$host" -o '%c' 2>/dev/null | head -1)
    cat <<EOF
export SLURM_CONF=$CONF
export LOCAL_SLURM_PARTITION=$PARTITION
export LOCAL_SLURM_NODE=$host
export LOCAL_SLURM_CPUS=${cpus:-unknown}
EOF
}

node_state() { sinfo -h -n "$(node_name)" -o '%T' 2>/dev/null | head -1; }
node_idle() { [ "$(node_state)" = idle ]; }
munge_ok() { munge -n -S "$MUNGE_SOCK" 2>/dev/null | unmunge -S "$MUNGE_SOCK" >/dev/null 2>&1; }

start_munge() {
    if munge_ok; then log "munged already answering on $MUNGE_SOCK (reusing it)"; return 0; fi
    getent passwd munge >/dev/null || die "user munge missing (munge package not installed?)"
    install -d -o munge -g munge -m 0755 "$MUNGE_RUN"
    install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
    install -d -o munge -g munge -m 0711 /var/lib/munge
    if [ ! -s "$MUNGE_KEY" ]; then
        log "creating munge key"
        dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none
    fi
    chown munge:munge "$MUNGE_KEY"
    chmod 0400 "$MUNGE_KEY"
    runuser -u munge -- /usr/sbin/munged --socket="$MUNGE_SOCK" --pid-file="$MUNGE_RUN/munged.pid" \
        || die "munged failed to start, see /var/log/munge/munged.log"
    wait_for "munge" munge_ok || die "munged not answering after ${WAIT}s"
    tr -dc '0-9' < "$MUNGE_RUN/munged.pid" > "$MUNGE_OURS"
    log "munged up (pid $(cat "$MUNGE_OURS"))"
}

start_slurm() {
    local pid
    if pid=$(pid_of "$CTLD_PID" slurmctld); then
        log "slurmctld already running (pid $pid)"
    else
        rm -rf "${STATE_DIR:?}/slurmctld"           # fresh state: no stale jobs from a previous run
        install -d -m 0755 "$STATE_DIR/slurmctld"
        /usr/sbin/slurmctld || die "slurmctld failed, see $LOG_DIR/slurmctld.log"
        wait_for "slurmctld" sh -c 'scontrol ping | grep -q UP' ||
            { tail -20 "$LOG_DIR/slurmctld.log" >&2; die "slurmctld not answering after ${WAIT}s"; }
        log "slurmctld up (pid $(pid_of "$CTLD_PID" slurmctld || echo '?'))"
    fi
    if pid=$(pid_of "$SLURMD_PID" slurmd); then
        log "slurmd already running (pid $pid)"
    else
        rm -rf "${STATE_DIR:?}/slurmd"
        install -d -m 0755 "$STATE_DIR/slurmd"
        /usr/sbin/slurmd || die "slurmd failed, see $LOG_DIR/slurmd.log"
        wait_for "slurmd pid file" pid_of "$SLURMD_PID" slurmd || true
        log "slurmd started (pid $(pid_of "$SLURMD_PID" slurmd || echo '?'))"
    fi
    if ! wait_for "node idle" node_idle; then
        local st; st=$(node_state)
        case "$st" in
            down*|drain*|fail*)
                log "node state '$st', trying to resume it"
                scontrol update nodename="$(node_name)" state=resume || true
                wait_for "node idle" node_idle || true ;;
        esac
    fi
    node_idle || {
        sinfo -R >&2 || true; tail -20 "$LOG_DIR/slurmd.log" >&2
        die "node not idle after ${WAIT}s (state: $(node_state))"
    }
}

cmd_start() {
    need_root
    install -d -m 0755 "$RUN_DIR" "$LOG_DIR" "$STATE_DIR"
    install_if_missing
    install -d -m 0755 "$CONF_DIR"
    if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
        [ "${LOCAL_SLURM_FORCE:-0}" = 1 ] || die "$CONF exists and was not written by this script (set LOCAL_SLURM_FORCE=1 to overwrite; a backup is kept)"
        cp -p "$CONF" "$CONF.before-local-slurm"
    fi
    local new; new=$(render_conf)
    if [ -e "$CONF" ] && [ "$new" != "$(cat "$CONF")" ] &&
       { pid_of "$CTLD_PID" slurmctld >/dev/null || pid_of "$SLURMD_PID" slurmd >/dev/null; }; then
        log "configuration changed, restarting the running daemons"
        stop_slurm
    fi
    printf '%s\n' "$new" > "$CONF"
    chmod 0644 "$CONF"
    start_munge
    start_slurm
    log "ready: partition '$PARTITION', node $(node_name), $(sinfo -h -o '%c CPUs, %m MB' | head -1)"
    print_env
}

stop_slurm() {
    if pid_of "$CTLD_PID" slurmctld >/dev/null; then
        local jobs
        jobs=$(squeue -h -o '%A' 2>/dev/null || true)
        if [ -n "$jobs" ]; then
            log "cancelling jobs: $(echo $jobs)"
            # shellcheck disable=SC2086
            scancel $jobs 2>/dev/null || true
            wait_for "jobs gone" sh -c '[ -z "$(squeue -h -o %A)" ]' || log "some jobs still listed"
        fi
    fi
    stop_pidfile "$SLURMD_PID" slurmd 20
    stop_pidfile "$CTLD_PID" slurmctld 20
}

cmd_stop() {
    need_root
    stop_slurm
    if [ -e "$MUNGE_OURS" ]; then
        stop_pidfile "$MUNGE_OURS" munged 20
    elif pid_of "$MUNGE_RUN/munged.pid" munged >/dev/null; then
        log "munged was not started by this script, leaving it running"
    fi
    # slurmstepd processes are per-step; they should be gone after the jobs were cancelled.
    local p left=""
    for p in /proc/[0-9]*; do
        [ "$(cat "$p/comm" 2>/dev/null)" = slurmstepd ] && left="$left ${p#/proc/}"
    done
    [ -n "$left" ] && log "WARNING: slurmstepd processes still alive:$left"
    log "stopped"
}

cmd_status() {
    local pid
    pid=$(pid_of "$MUNGE_RUN/munged.pid" munged) && echo "munged    pid $pid" || echo "munged    not running"
    pid=$(pid_of "$CTLD_PID" slurmctld) && echo "slurmctld pid $pid" || echo "slurmctld not running"
    pid=$(pid_of "$SLURMD_PID" slurmd) && echo "slurmd    pid $pid" || echo "slurmd    not running"
    sinfo 2>&1 || true
}

cmd_check() {
    local out jid line rc=0
    out=$(srun -n1 hostname) && log "srun -n1 hostname -> $out" || { log "FAIL srun"; rc=1; }
    jid=$(sbatch --parsable -o /dev/null --wrap 'true') || { log "FAIL sbatch"; rc=1; }
    if [ -n "${jid:-}" ] && wait_for "batch job" sh -c "scontrol show job $jid | grep -q JobState=COMPLETED"; then
        log "sbatch --wrap job $jid finished"
    else log "FAIL sbatch job ${jid:-?} did not finish"; rc=1; fi
    jid=$(salloc -n1 --no-shell 2>&1 | sed -n 's/.*Granted job allocation \([0-9]*\).*/\1/p')
    if [ -z "$jid" ]; then log "FAIL salloc"; return 1; fi
    # srun as a coprocess: request/response over its stdin/stdout, line by line
    local to_srun from_srun echo_pid
    coproc ECHO { srun --jobid="$jid" --overlap -n1 --quiet cat; }
    echo_pid=$ECHO_PID
    exec {from_srun}<&"${ECHO[0]:?srun coprocess died}" {to_srun}>&"${ECHO[1]:?srun coprocess died}"
    for line in one two three; do
        printf '%s\n' "$line" >&"$to_srun"
        IFS= read -r -t 10 out <&"$from_srun" || out="(timeout)"
        [ "$out" = "$line" ] || { log "FAIL pipe: sent '$line' got '$out'"; rc=1; }
    done
    exec {to_srun}>&-
    local w=${ECHO[1]:-}
    if [ -n "$w" ]; then exec {w}>&-; fi
    wait "$echo_pid" || { log "FAIL srun cat exit status"; rc=1; }
    exec {from_srun}<&-
    scancel "$jid"
    [ "$rc" = 0 ] && log "check passed (srun, sbatch, salloc, srun stdin/stdout round trip)"
    return "$rc"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) print_env ;;
    check) cmd_check ;;
    *) echo "usage: $0 start|stop|status|env|check" >&2; exit 2 ;;
esac
