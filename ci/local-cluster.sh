#!/usr/bin/env bash
# local-cluster.sh - a multi-node Slurm cluster on one Linux machine, for CI.
#
# slurmctld runs in the root network namespace; each slurmd (nodeK) runs in a
# network namespace and a UTS namespace of its own (hostname nodeK, address
# NET.(10+K) on eth0, a veth into the bridge lcbr0, which holds NET.254 for the
# controller). Everything shares one filesystem, one munged (its socket is a
# file, so it works across network namespaces) and one pid namespace. The
# namespaces have no route out: only the private /24 and loopback.
# Debian bookworm (slurm 22.05.8, munge 0.5.15), as root; no systemd, no cgroups.
# This is the project's own copy, so that CI needs nothing from outside the
# repository; `ci/test` runs every Slurm test against it.
#
#   local-cluster.sh start           install if missing, build the network, start munged,
#                                    slurmctld and N slurmds, wait until every node is idle,
#                                    print env lines on stdout:  eval "$(local-cluster.sh start)"
#                                    Running again is a no-op; it restarts a slurmd that died.
#   local-cluster.sh stop            cancel all jobs, stop every daemon it started (by pid),
#                                    kill what is left in the node namespaces, delete the
#                                    namespaces, veths, bridge and slurm.conf
#   local-cluster.sh status          daemons, namespaces, sinfo
#   local-cluster.sh env             print the env lines again
#   local-cluster.sh check           multi-node smoke test (hostnames, steps on several nodes,
#                                    pipe round trip to another node, a slurmd killed by SIGKILL)
#   local-cluster.sh kill-node K [slurmd|all|net]
#                                    SIGKILL nodeK's slurmd (default); `all`: every process in
#                                    its namespace (slurmd, slurmstepd, tasks); `net`: cut its
#                                    link first, then kill all (the peers see silence).
#                                    `start` brings it back.
#   local-cluster.sh exec K CMD...   run CMD on nodeK (its namespaces, its hostname)
#
# Knobs (environment):
#   LOCAL_CLUSTER_NODES          number of nodes (default 3, at most 200)
#   LOCAL_CLUSTER_CPUS           CPUs each node advertises (default 4; oversubscribed)
#   LOCAL_CLUSTER_NET            first three octets of the private /24 (default 10.77.0)
#   LOCAL_CLUSTER_PARTITION      partition name (default: cluster); it is the default partition
#   LOCAL_CLUSTER_SLURMD_TIMEOUT SlurmdTimeout in seconds (default 5)
#   LOCAL_CLUSTER_MESSAGE_TIMEOUT MessageTimeout in seconds (default 3; Slurm's is 10)
#                                (with 5/3 a lost node is DOWN 15-20 s after it went)
#   LOCAL_CLUSTER_WAIT           seconds to wait for each readiness step (default 60)
#   LOCAL_CLUSTER_CHECK_KILL=0   `check` skips the slurmd kill test (saves 15-30 s)
#   LOCAL_CLUSTER_FORCE=1        overwrite an /etc/slurm/slurm.conf no script of ours wrote
set -euo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
MARK="# managed-by: local-cluster.sh (multi-node CI cluster in network namespaces)"
SINGLE_MARK="# managed-by: local-slurm.sh"
RUN_DIR=/run/local-cluster
STATE_DIR=/var/lib/local-cluster
LOG_DIR=/var/log/local-cluster
TOPO=$RUN_DIR/topology                 # what `start` built, so `stop` undoes exactly that
CTLD_PID=$RUN_DIR/slurmctld.pid
MUNGE_OURS=$RUN_DIR/munged.pid          # copy of munged's pid, only if we started it
MUNGE_RUN=/run/munge
MUNGE_SOCK=$MUNGE_RUN/munge.socket.2
MUNGE_KEY=/etc/munge/munge.key
NETNS_ETC=/etc/netns                    # `ip netns exec` bind-mounts /etc/netns/NS/hosts on /etc/hosts
PKGS=(slurmctld slurmd slurm-client munge iproute2)
WAIT=${LOCAL_CLUSTER_WAIT:-60}
# CI may run us with stdin/stdout/stderr closed; keep fds 0-2 valid for the daemons and coproc.
for _fd in 0 1 2; do [ -e "/proc/self/fd/$_fd" ] || eval "exec $_fd<>/dev/null"; done
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
unset SLURM_JOB_ID SLURM_JOBID SLURM_STEP_ID SLURM_NODELIST SLURM_NTASKS SLURM_NNODES

# The topology `start` asks for. A knob left unset keeps the value the cluster was started
# with (so a bare `start` repairs it rather than rebuilding it); stop, status, env, check and
# kill-node use what was recorded.
N='' CPUS='' NET='' PARTITION='' SLURMD_TIMEOUT='' MSG_TIMEOUT=''
# shellcheck disable=SC1090
[ -r "$TOPO" ] && . "$TOPO"
N=${LOCAL_CLUSTER_NODES:-${N:-3}}
CPUS=${LOCAL_CLUSTER_CPUS:-${CPUS:-4}}
NET=${LOCAL_CLUSTER_NET:-${NET:-10.77.0}}
PARTITION=${LOCAL_CLUSTER_PARTITION:-${PARTITION:-cluster}}
SLURMD_TIMEOUT=${LOCAL_CLUSTER_SLURMD_TIMEOUT:-${SLURMD_TIMEOUT:-5}}
MSG_TIMEOUT=${LOCAL_CLUSTER_MESSAGE_TIMEOUT:-${MSG_TIMEOUT:-3}}
BR=lcbr0
CTL_IP=$NET.254

T0=$EPOCHREALTIME
log() { awk -v a="$T0" -v b="$EPOCHREALTIME" -v m="$*" 'BEGIN{printf "[local-cluster %6.2fs] %s\n", b-a, m}' >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}'; }

load_topology() { # use what `start` recorded, if anything
    if [ -r "$TOPO" ]; then
        # shellcheck disable=SC1090
        . "$TOPO"
        CTL_IP=$NET.254
    fi
}
validate() {
    [[ "$N" =~ ^[0-9]+$ ]] && [ "$N" -ge 1 ] && [ "$N" -le 200 ] || die "LOCAL_CLUSTER_NODES must be 1..200 (got '$N')"
    [[ "$CPUS" =~ ^[0-9]+$ ]] && [ "$CPUS" -ge 1 ] || die "LOCAL_CLUSTER_CPUS must be a positive number (got '$CPUS')"
    [[ "$SLURMD_TIMEOUT" =~ ^[0-9]+$ ]] || die "LOCAL_CLUSTER_SLURMD_TIMEOUT must be a number of seconds"
    [[ "$MSG_TIMEOUT" =~ ^[0-9]+$ ]] && [ "$MSG_TIMEOUT" -ge 1 ] || die "LOCAL_CLUSTER_MESSAGE_TIMEOUT must be a number of seconds"
    [[ "$NET" =~ ^(10|192\.168|172\.(1[6-9]|2[0-9]|3[01]))(\.[0-9]{1,3}){0,2}$ ]] && [ "$(tr -cd . <<<"$NET" | wc -c)" = 2 ] ||
        die "LOCAL_CLUSTER_NET must be three octets of a private network, e.g. 10.77.0 (got '$NET')"
}

node() { echo "node$1"; }
ns() { echo "lc-node$1"; }
veth() { echo "lcveth$1"; }
node_ip() { echo "$NET.$((10 + $1))"; }
slurmd_pidfile() { echo "$RUN_DIR/slurmd-node$1.pid"; }
nodelist() { [ "$N" = 1 ] && echo node1 || echo "node[1-$N]"; }

# --- pid helpers: a pid counts only if /proc/PID/comm is the expected program ---
alive() { # pid: running, not a zombie (a killed daemon stays a zombie until pid 1 reaps it)
    local st
    st=$(sed -n 's/^.*) \([A-Za-z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null) && [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
pid_of() { # pidfile comm -> prints pid if that process is alive
    local f=$1 comm=$2 pid
    [ -r "$f" ] || return 1
    pid=$(tr -dc '0-9' < "$f")
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] && alive "$pid" || return 1
    echo "$pid"
}
wait_gone() { # timeout_s pid... -> 0 when all are gone
    local tmo=$1 i p alive; shift
    for ((i = 0; i < tmo * 10; i++)); do
        alive=0
        for p in "$@"; do alive "$p" && alive=1; done
        [ "$alive" = 0 ] && return 0
        sleep 0.1
    done
    return 1
}
STOPPED=()   # every pid stop_pids ended, so that `stop` can wait until pid 1 has reaped them
stop_pids() { # comm-label timeout_s pid...: TERM, wait, then KILL what is left
    local what=$1 tmo=$2 p; shift 2
    [ $# -gt 0 ] || return 0
    STOPPED+=("$@")
    log "stopping $what (pid $*)"
    kill -TERM "$@" 2>/dev/null || true
    if ! wait_gone "$tmo" "$@"; then
        for p in "$@"; do
            alive "$p" && { log "$what pid $p still alive after ${tmo}s, sending SIGKILL"; kill -KILL "$p" 2>/dev/null || true; }
        done
        wait_gone 5 "$@" || log "WARNING: $what still alive after SIGKILL: $*"
    fi
}
wait_for() { # description, command...  (the description only documents the call site)
    local i; shift
    for ((i = 0; i < WAIT * 10; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    return 1
}
ns_exists() { [ -e "/run/netns/$1" ]; }
ns_pids() { ns_exists "$1" && ip netns pids "$1" 2>/dev/null || true; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

install_if_missing() {
    local b missing=0
    for b in /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/srun /usr/sbin/munged /usr/bin/unshare; do
        [ -x "$b" ] || missing=1
    done
    command -v ip >/dev/null || missing=1
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
    } > "$LOG_DIR/apt.log" 2>&1 < /dev/null || rc=$?
    [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ "$rc" = 0 ] || { tail -20 "$LOG_DIR/apt.log" >&2; die "apt-get failed (rc $rc), see $LOG_DIR/apt.log"; }
    log "installed: $(/usr/sbin/slurmctld -V 2>/dev/null), munge $(dpkg-query -W -f='${Version}' munge)"
}

render_conf() {
    local host k mem_total mem
    host=$(hostname -s)
    mem_total=$(awk '/^MemTotal:/{print int($2/1024)}' /proc/meminfo)
    mem=$((mem_total * 8 / 10 / N))
    cat <<EOF
$MARK
# Regenerated by every 'local-cluster.sh start'. Do not edit.
# $N nodes, each in its own network and UTS namespace on the bridge $BR ($NET.0/24).
ClusterName=localcluster
SlurmctldHost=${host}($CTL_IP)
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
# %n is the node name: every slurmd shares this file system
SlurmdSpoolDir=$STATE_DIR/%n
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$RUN_DIR/slurmd-%n.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmctldPort=6817
SlurmdPort=6818
MailProg=/usr/bin/true
InactiveLimit=0
KillWait=5
MinJobAge=300
# low, so that tests can see a lost node go down
SlurmdTimeout=$SLURMD_TIMEOUT
MessageTimeout=$MSG_TIMEOUT
# the nodes advertise more CPUs than the machine has
SlurmdParameters=config_overrides
EOF
    for ((k = 1; k <= N; k++)); do
        echo "NodeName=$(node "$k") NodeHostname=$(node "$k") NodeAddr=$(node_ip "$k") CPUs=$CPUS RealMemory=$mem State=UNKNOWN"
    done
    echo "PartitionName=$PARTITION Nodes=$(nodelist) Default=YES MaxTime=INFINITE State=UP"
}

print_env() {
    cat <<EOF
export SLURM_CONF=$CONF
export LOCAL_CLUSTER_PARTITION=$PARTITION
export LOCAL_CLUSTER_NODES=$N
export LOCAL_CLUSTER_NODELIST=$(nodelist)
export LOCAL_CLUSTER_CPUS=$CPUS
export LOCAL_CLUSTER_CONTROLLER=$CTL_IP
EOF
}

# --- network: bridge in the root namespace, one namespace + veth per node ---
sysctl_off_ipv6() { # [ns] dev: no IPv6 on our links (no link-local chatter, fewer addresses)
    local f
    if [ $# = 2 ]; then
        ip netns exec "$1" sh -c "f=/proc/sys/net/ipv6/conf/$2/disable_ipv6; [ -w \$f ] && echo 1 > \$f" 2>/dev/null || true
    else
        f=/proc/sys/net/ipv6/conf/$1/disable_ipv6
        [ -w "$f" ] && echo 1 > "$f" 2>/dev/null || true
    fi
}
write_hosts() { # the /etc/hosts every node sees
    local k
    echo "127.0.0.1 localhost"
    echo "$CTL_IP $(hostname -s)"
    for ((k = 1; k <= N; k++)); do echo "$(node_ip "$k") $(node "$k")"; done
}
setup_net() {
    local k n v ip
    if ! ip link show "$BR" >/dev/null 2>&1; then
        ip link add "$BR" type bridge || die "cannot create bridge $BR (need CAP_NET_ADMIN: a VM or a privileged container)"
        sysctl_off_ipv6 "$BR"
        ip addr add "$CTL_IP/24" dev "$BR"
        ip link set "$BR" up
        log "bridge $BR $CTL_IP/24 created"
    fi
    ip -4 addr show dev "$BR" | grep -qF " $CTL_IP/24 " || ip addr add "$CTL_IP/24" dev "$BR"
    ip link set "$BR" up
    [ -d "$NETNS_ETC" ] || { install -d -m 0755 "$NETNS_ETC"; touch "$RUN_DIR/made-etc-netns"; }
    # `ip netns add` bind-mounts /run/netns on itself the first time; undo that in stop if it was us.
    [ -e "$RUN_DIR/made-run-netns" ] || mountpoint -q /run/netns 2>/dev/null ||
        { [ -d /run/netns ] && echo mount || echo dir; } > "$RUN_DIR/made-run-netns"
    for ((k = 1; k <= N; k++)); do
        n=$(ns "$k") v=$(veth "$k") ip=$(node_ip "$k")
        install -d -m 0755 "$NETNS_ETC/$n"
        write_hosts > "$NETNS_ETC/$n/hosts"
        # A name left from before a reboot (/run here may be on disk) is a plain file, no namespace.
        ns_exists "$n" && ! mountpoint -q "/run/netns/$n" && rm -f "/run/netns/$n"
        ns_exists "$n" || ip netns add "$n" || die "ip netns add $n failed (need CAP_SYS_ADMIN)"
        if ! ip link show "$v" >/dev/null 2>&1; then
            ip link add "$v" type veth peer name eth0 netns "$n"
            sysctl_off_ipv6 "$v"
            sysctl_off_ipv6 "$n" eth0
            ip link set "$v" master "$BR"
        fi
        ip link set "$v" up
        ip -n "$n" link set lo up
        ip -n "$n" -4 addr show dev eth0 | grep -qF " $ip/24 " || ip -n "$n" addr add "$ip/24" dev eth0
        ip -n "$n" link set eth0 up
    done
}
teardown_net() {
    local k n v
    for ((k = 1; k <= N; k++)); do
        n=$(ns "$k") v=$(veth "$k")
        # The veth first: deleting a namespace frees its end (and so ours) asynchronously.
        ip link del "$v" 2>/dev/null || true
        ns_exists "$n" && { ip netns del "$n" || log "WARNING: ip netns del $n failed"; }
        rm -rf "${NETNS_ETC:?}/$n"
    done
    ip link del "$BR" 2>/dev/null || true
    log "deleted namespaces lc-node[1-$N], their veths and bridge $BR"
    if [ -e "$RUN_DIR/made-etc-netns" ]; then
        rmdir "$NETNS_ETC" 2>/dev/null || true
        rm -f "$RUN_DIR/made-etc-netns"
    fi
    if [ -e "$RUN_DIR/made-run-netns" ] && [ -z "$(ls -A /run/netns 2>/dev/null)" ]; then
        mountpoint -q /run/netns && umount /run/netns 2>/dev/null || true
        [ "$(cat "$RUN_DIR/made-run-netns")" = dir ] && rmdir /run/netns 2>/dev/null || true
        rm -f "$RUN_DIR/made-run-netns"
    fi
}
more_nodes_than_recorded() { # stop also cleans up lc-nodeK namespaces a lost topology file forgot
    local k
    for k in $(ip netns list 2>/dev/null | sed -n 's/^lc-node\([0-9]\{1,3\}\)\b.*/\1/p'); do
        [ "$k" -gt "$N" ] && N=$k
    done
    return 0
}

# --- daemons ---
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

node_state() { sinfo -h -n "$(node "$1")" -o '%T' 2>/dev/null | head -1; }  # e.g. idle, mixed, down*, idle*
node_up() { case "$(node_state "$1")" in idle | mixed | allocated | completing) return 0 ;; *) return 1 ;; esac; }
all_idle() { [ "$(sinfo -h -N -t idle -o '%N' 2>/dev/null | sort -u | wc -l)" = "$N" ]; }

# Runs CMD on nodeK: its network namespace, a UTS namespace with its hostname, and a mount
# namespace (a slave of ours) whose /etc/hosts names the nodes. Not `ip netns exec`: that
# remounts /sys without /sys/fs/cgroup, and slurmd 22.05 then fails ("Unable to initialize
# cgroup plugin") even with proctrack/linuxproc and task/none. slurmd daemonizes and keeps all three.
on_node() { # k CMD...
    local k=$1; shift
    nsenter --net="/run/netns/$(ns "$k")" -- unshare --mount --uts --propagation slave -- \
        sh -c 'mount --bind "$1" /etc/hosts && hostname "$2" && shift 2 && exec "$@"' \
        sh "$NETNS_ETC/$(ns "$k")/hosts" "$(node "$k")" "$@"
}

start_slurmd() { # k: start nodeK's slurmd inside its namespaces
    local k=$1 name pid
    name=$(node "$k")
    if pid=$(pid_of "$(slurmd_pidfile "$k")" slurmd); then
        log "slurmd $name already running (pid $pid)"; return 0
    fi
    install -d -m 0755 "$STATE_DIR/$name"
    on_node "$k" /usr/sbin/slurmd -N "$name" < /dev/null || die "slurmd $name failed, see $LOG_DIR/slurmd-$name.log"
    wait_for "slurmd pid file" pid_of "$(slurmd_pidfile "$k")" slurmd || true
    log "slurmd $name started on $(node_ip "$k") (pid $(pid_of "$(slurmd_pidfile "$k")" slurmd || echo '?'))"
}

start_slurm() {
    local pid k fresh=0
    if pid=$(pid_of "$CTLD_PID" slurmctld); then
        log "slurmctld already running (pid $pid)"
    else
        fresh=1
        rm -rf "${STATE_DIR:?}"/*                    # fresh state: no stale jobs or step sockets
        install -d -m 0755 "$STATE_DIR/slurmctld"
        /usr/sbin/slurmctld < /dev/null || die "slurmctld failed, see $LOG_DIR/slurmctld.log"
        wait_for "slurmctld" sh -c 'scontrol ping | grep -q UP' ||
            { tail -20 "$LOG_DIR/slurmctld.log" >&2; die "slurmctld not answering after ${WAIT}s"; }
        log "slurmctld up on $CTL_IP (pid $(pid_of "$CTLD_PID" slurmctld || echo '?'))"
    fi
    for ((k = 1; k <= N; k++)); do start_slurmd "$k"; done
    if [ "$fresh" = 1 ]; then
        wait_for "all nodes idle" all_idle || true
    fi
    for ((k = 1; k <= N; k++)); do
        node_up "$k" && continue
        wait_for "node up" node_up "$k" && continue
        case "$(node_state "$k")" in
            down* | drain* | fail*)
                log "$(node "$k") is '$(node_state "$k")', trying to resume it"
                scontrol update nodename="$(node "$k")" state=resume || true
                wait_for "node up" node_up "$k" || true ;;
        esac
        node_up "$k" || {
            sinfo -R >&2 || true; tail -20 "$LOG_DIR/slurmd-$(node "$k").log" >&2
            die "$(node "$k") not up after ${WAIT}s (state: $(node_state "$k"))"
        }
    done
}

slurm_running() {
    local k
    pid_of "$CTLD_PID" slurmctld >/dev/null && return 0
    for ((k = 1; k <= N; k++)); do pid_of "$(slurmd_pidfile "$k")" slurmd >/dev/null && return 0; done
    return 1
}

cmd_start() {
    need_root
    validate
    # The single-node cluster (local-slurm.sh) uses the same ports and slurm.conf.
    local p
    for p in /run/local-slurm/slurmctld.pid /run/local-slurm/slurmd.pid; do
        pid_of "$p" "$(basename "$p" .pid)" >/dev/null &&
            die "the single-node cluster of local-slurm.sh is running; stop it first: bash local-slurm.sh stop"
    done
    install -d -m 0755 "$RUN_DIR" "$LOG_DIR" "$STATE_DIR"
    local want
    want=$(printf 'N=%s\nCPUS=%s\nNET=%s\nPARTITION=%s\nSLURMD_TIMEOUT=%s\nMSG_TIMEOUT=%s\n' "$N" "$CPUS" "$NET" "$PARTITION" "$SLURMD_TIMEOUT" "$MSG_TIMEOUT")
    if [ -r "$TOPO" ] && [ "$want" != "$(cat "$TOPO")" ]; then
        log "topology changed ($(tr '\n' ' ' < "$TOPO")-> $(echo $want)), stopping the old cluster"
        (cmd_stop_inner)   # a subshell: it loads the old topology
    fi
    install -d -m 0755 "$RUN_DIR" "$LOG_DIR" "$STATE_DIR"
    install_if_missing
    install -d -m 0755 "$CONF_DIR"
    if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
        grep -qF "$SINGLE_MARK" "$CONF" || [ "${LOCAL_CLUSTER_FORCE:-0}" = 1 ] ||
            die "$CONF exists and was not written by local-cluster.sh or local-slurm.sh (set LOCAL_CLUSTER_FORCE=1 to overwrite; a backup is kept and put back by stop)"
        cp -p "$CONF" "$CONF.before-local-cluster"   # stop puts it back
    fi
    printf '%s\n' "$want" > "$TOPO"
    setup_net
    local new; new=$(render_conf)
    if [ -e "$CONF" ] && [ "$new" != "$(cat "$CONF")" ] && slurm_running; then
        log "configuration changed, restarting the running daemons"
        stop_slurm
    fi
    printf '%s\n' "$new" > "$CONF"
    chmod 0644 "$CONF"
    start_munge
    start_slurm
    log "ready: partition '$PARTITION', $(nodelist) on $NET.0/24, $CPUS CPUs each, controller $CTL_IP"
    print_env
}

stop_slurm() {
    local k pid pids=() jobs
    if pid_of "$CTLD_PID" slurmctld >/dev/null; then
        jobs=$(timeout 10 squeue -h -o '%A' 2>/dev/null || true)
        if [ -n "$jobs" ]; then
            log "cancelling jobs: $(echo $jobs)"
            # shellcheck disable=SC2086
            timeout 10 scancel $jobs 2>/dev/null || true
            WAIT=15 wait_for "jobs gone" sh -c '[ -z "$(squeue -h -o %A)" ]' ||
                log "some jobs still listed (their node may be down); going on"
        fi
    fi
    # With the jobs gone, whatever else runs in a node's namespace is left over (a slurmstepd
    # orphaned by a killed slurmd, still retrying its completion message, and its tasks). It
    # ignores SIGTERM, and while it lives its slurmd took over 20 s to stop: SIGKILL it first.
    local leftover=() d
    for ((k = 1; k <= N; k++)); do
        d=$(pid_of "$(slurmd_pidfile "$k")" slurmd) || d=""
        for pid in $(ns_pids "$(ns "$k")"); do [ "$pid" = "$d" ] || leftover+=("$pid"); done
    done
    if [ ${#leftover[@]} -gt 0 ]; then
        log "killing what is left in the node namespaces (pid ${leftover[*]})"
        STOPPED+=("${leftover[@]}")
        kill -KILL "${leftover[@]}" 2>/dev/null || true
        wait_gone 5 "${leftover[@]}" || true
    fi
    # The slurmds first, while slurmctld still takes their last messages: a slurmd that still
    # owes it an epilog-complete message retried for 9 s when slurmctld was stopping too.
    for ((k = 1; k <= N; k++)); do
        pid=$(pid_of "$(slurmd_pidfile "$k")" slurmd) && pids+=("$pid")
    done
    stop_pids slurmd 20 "${pids[@]}"
    for ((k = 1; k <= N; k++)); do rm -f "$(slurmd_pidfile "$k")"; done
    if pid=$(pid_of "$CTLD_PID" slurmctld); then stop_pids slurmctld 20 "$pid"; fi
    rm -f "$CTLD_PID"
    for ((k = 1; k <= N; k++)); do
        pids=()
        for pid in $(ns_pids "$(ns "$k")"); do alive "$pid" && pids+=("$pid"); done
        stop_pids "processes left in $(ns "$k")" 5 "${pids[@]}"
    done
}

cmd_stop_inner() {
    load_topology
    more_nodes_than_recorded
    stop_slurm
    if [ -e "$MUNGE_OURS" ]; then
        local pid
        if pid=$(pid_of "$MUNGE_OURS" munged); then stop_pids munged 20 "$pid"; fi
        rm -f "$MUNGE_OURS"
    elif pid_of "$MUNGE_RUN/munged.pid" munged >/dev/null; then
        log "munged was not started by this script, leaving it running"
    fi
    teardown_net
    if [ -e "$CONF" ] && grep -qF "$MARK" "$CONF"; then
        rm -f "$CONF"
        [ -e "$CONF.before-local-cluster" ] && mv "$CONF.before-local-cluster" "$CONF"
    fi
    rm -rf "${STATE_DIR:?}"
    rm -f "$TOPO"
    local p left=""
    for p in /proc/[0-9]*; do
        case "$(cat "$p/comm" 2>/dev/null)" in slurmstepd | slurmd) alive "${p#/proc/}" && left="$left ${p#/proc/}" ;; esac
    done
    [ -n "$left" ] && log "WARNING: slurmd/slurmstepd processes still alive:$left"
    return 0
}
cmd_stop() {
    need_root
    cmd_stop_inner
    rmdir "$RUN_DIR" 2>/dev/null || true
    # They are dead already; pid 1 reaps them 1.5-2 s later. Wait, so that a `pgrep` right
    # after `stop` finds nothing (it lists zombies too).
    local p i z
    for ((i = 0; i < 50; i++)); do
        z=""
        for p in "${STOPPED[@]}"; do [ -e "/proc/$p" ] && z="$z $p"; done
        [ -z "$z" ] && break
        sleep 0.1
    done
    [ -n "$z" ] && log "not reaped yet by pid 1 (zombies):$z"
    log "stopped"
}

cmd_status() {
    load_topology
    local pid k
    pid=$(pid_of "$MUNGE_RUN/munged.pid" munged) && echo "munged    pid $pid" || echo "munged    not running"
    pid=$(pid_of "$CTLD_PID" slurmctld) && echo "slurmctld pid $pid ($CTL_IP)" || echo "slurmctld not running"
    for ((k = 1; k <= N; k++)); do
        printf '%-9s ' "$(node "$k")"
        pid=$(pid_of "$(slurmd_pidfile "$k")" slurmd) && printf 'slurmd pid %s' "$pid" || printf 'slurmd not running'
        ns_exists "$(ns "$k")" && printf ', netns %s %s, %s processes\n' "$(ns "$k")" "$(node_ip "$k")" "$(ns_pids "$(ns "$k")" | wc -l)" ||
            printf ', no netns\n'
    done
    ip link show "$BR" >/dev/null 2>&1 && echo "bridge    $BR $CTL_IP/24" || echo "bridge    none"
    sinfo -N -o '%N %T %c %O %E' 2>&1 || true
}

node_arg() { # K or nodeK -> K
    local k=${1#node}
    [[ "$k" =~ ^[0-9]+$ ]] && [ "$k" -ge 1 ] && [ "$k" -le "$N" ] || die "no such node '$1' (1..$N)"
    echo "$k"
}

cmd_kill_node() { # K [slurmd|all|net]
    need_root
    load_topology
    local k mode=${2:-slurmd} pid pids
    k=$(node_arg "${1:-}")
    case "$mode" in
        slurmd)
            pid=$(pid_of "$(slurmd_pidfile "$k")" slurmd) || die "slurmd of $(node "$k") is not running"
            kill -KILL "$pid"
            log "SIGKILL sent to slurmd of $(node "$k") (pid $pid)" ;;
        all | net)
            [ "$mode" = net ] && { ip link set "$(veth "$k")" down; log "link $(veth "$k") of $(node "$k") down"; }
            pids=$(ns_pids "$(ns "$k")")
            # shellcheck disable=SC2086
            [ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
            log "SIGKILL sent to every process of $(node "$k"): $(echo $pids)" ;;
        *) die "kill-node mode must be slurmd, all or net" ;;
    esac
}

cmd_exec() { # K CMD...
    need_root
    load_topology
    local k
    k=$(node_arg "${1:-}"); shift
    [ $# -gt 0 ] || die "usage: $0 exec K CMD..."
    on_node "$k" "$@"
}

# --- check ---
FAILS=0
ok() { log "ok   $*"; }
fail() { log "FAIL $*"; FAILS=$((FAILS + 1)); }
granted_job() { sed -n 's/.*Granted job allocation \([0-9]*\).*/\1/p' | head -1; }
job_state() { scontrol -o show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([^ ]*\).*/\1/p'; }

check_hostnames() {
    local out distinct want
    out=$(timeout 30 srun -N"$N" -n"$N" hostname 2>&1) || { fail "srun -N$N -n$N hostname: $out"; return; }
    distinct=$(sort -u <<<"$out" | tr '\n' ' ')
    want=$(for ((k = 1; k <= N; k++)); do node "$k"; done | sort -u | tr '\n' ' ')
    [ "$distinct" = "$want" ] && ok "srun -N$N -n$N hostname -> $(echo $out)" ||
        fail "srun -N$N -n$N hostname gave '$(echo $out)', want one line each from $want"
}

check_links() { # node-to-node and node-to-controller TCP, as slurmd message forwarding needs
    local k j bad=""
    for ((k = 1; k <= N; k++)); do
        j=$((k % N + 1))
        ip netns exec "$(ns "$k")" timeout 3 bash -c "exec 3<>/dev/tcp/$(node_ip "$j")/6818 && exec 4<>/dev/tcp/$CTL_IP/6817" 2>/dev/null ||
            bad="$bad $(node "$k")->$(node "$j")/controller"
    done
    [ -z "$bad" ] && ok "TCP from every node to the next node's slurmd and to slurmctld" || fail "TCP:$bad (an iptables FORWARD DROP policy with br_netfilter drops bridged traffic)"
}

check_steps() { # J: concurrent --exact steps spread over the allocation's nodes
    local j=$1 i out hosts alloc_nodes tmp
    alloc_nodes=$(scontrol -o show job "$j" | sed -n 's/.* NodeList=\([^ ]*\).*/\1/p')
    tmp=$(mktemp -d)
    for i in 1 2 3 4; do
        timeout 30 srun --jobid="$j" -n1 -N1 --exact sh -c 'hostname; sleep 1' > "$tmp/$i" 2>&1 &
    done
    wait
    hosts=$(cat "$tmp"/* | sort | uniq -c | awk '{printf "%s x%s, ", $2, $1}')
    [ "$(cat "$tmp"/* | sort -u | wc -l)" = 2 ] && ok "4 concurrent 'srun --jobid=$j -n1 -N1 --exact' steps on $alloc_nodes: ${hosts%, }" ||
        fail "4 concurrent --exact steps did not land on both nodes of $alloc_nodes: $(cat "$tmp"/*)"
    out=""
    for i in 1 2 3; do out="$out $(timeout 30 srun --jobid="$j" -n1 -N1 --exact hostname 2>&1)"; done
    log "info 3 sequential --exact steps (each ends before the next) ran on:$out"
    rm -rf "$tmp"
}

check_pipe() { # J node: line round trip with a step on another node (another namespace)
    local j=$1 target=$2 to_srun from_srun pid line out rc=0 t
    coproc ECHO { exec timeout 60 srun --jobid="$j" --overlap -n1 -N1 -w "$target" --quiet sh -c 'hostname; exec cat'; }
    pid=$ECHO_PID
    exec {from_srun}<&"${ECHO[0]:?srun coprocess died}" {to_srun}>&"${ECHO[1]:?srun coprocess died}"
    IFS= read -r -t 15 out <&"$from_srun" || out="(timeout)"
    [ "$out" = "$target" ] || { fail "pipe step: expected hostname $target first, got '$out'"; rc=1; }
    t=$(now)
    for line in one two three "$(head -c 3000 /dev/zero | tr '\0' x)"; do
        printf '%s\n' "$line" >&"$to_srun"
        IFS= read -r -t 10 out <&"$from_srun" || out="(timeout)"
        [ "$out" = "$line" ] || { fail "pipe: sent '${line:0:20}' got '${out:0:20}'"; rc=1; }
    done
    local dt; dt=$(since "$t")
    exec {to_srun}>&-
    local w=${ECHO[1]:-}
    if [ -n "$w" ]; then exec {w}>&-; fi
    wait "$pid" || { fail "srun cat exit status $?"; rc=1; }
    exec {from_srun}<&-
    [ "$rc" = 0 ] && ok "stdin/stdout round trip with a step on $target (4 lines in ${dt} s), EOF ends it with rc 0"
}

check_kill() { # J victim_k: SIGKILL a slurmd under running steps; the job holds two nodes
    local j=$1 k=$2 name other t0 st js seen="" down_at="" srun_rc="" t_task="" pid pid2 rpid out err i line last=""
    name=$(node "$k")
    other=$(scontrol show hostnames "$(scontrol -o show job "$j" | sed -n 's/.* NodeList=\([^ ]*\).*/\1/p')" | grep -vx "$name" | head -1)
    out=$(mktemp) err=$(mktemp)
    timeout 120 srun --jobid="$j" --overlap -n1 -N1 -w "$name" --quiet sh -c 'echo $$; exec sleep 600' > "$out" 2> "$err" &
    pid=$!
    timeout 120 srun --jobid="$j" --overlap -n1 -N1 -w "$other" --quiet sleep 600 > /dev/null 2>&1 &
    pid2=$!
    for ((i = 0; i < 150; i++)); do [ -s "$out" ] && break; sleep 0.1; done
    rpid=$(head -1 "$out")
    [ -n "$rpid" ] || { fail "kill test: step on $name did not start"; kill "$pid" "$pid2" 2>/dev/null; return; }
    # Jobs cancelled just before (srun_pipe_test.py's) leave a node COMPLETING for a few seconds.
    WAIT=20 wait_for "no node completing" sh -c '[ -z "$(sinfo -h -t completing -o %N)" ]' || true
    t0=$(now)
    cmd_kill_node "$k" slurmd 2>/dev/null
    # Poll: the node's state, the job's state, the two sruns, the orphaned task.
    for ((i = 0; i < (SLURMD_TIMEOUT * 3 + 40) * 5; i++)); do
        st=$(scontrol -o show node "$name" 2>/dev/null | sed -n 's/.* State=\([^ ]*\).*/\1/p')
        js=$(job_state "$j")
        line="$name $st, job $js, srun on $name $(alive "$pid" && echo running || echo ended), srun on $other $(alive "$pid2" && echo running || echo ended)"
        [ "$line" != "$last" ] && { seen="$seen"$'\n'"    $(since "$t0") s: $line"; last=$line; }
        [ -z "$down_at" ] && [[ "$st" == DOWN* ]] && down_at=$(since "$t0")
        [ -z "$t_task" ] && ! alive "$rpid" && t_task=$(since "$t0")
        [ -n "$down_at" ] && ! alive "$pid" && ! alive "$pid2" && break
        sleep 0.2
    done
    if ! alive "$pid"; then wait "$pid" && srun_rc=0 || srun_rc=$?; fi
    log "info after SIGKILL of slurmd on $name (SlurmdTimeout=$SLURMD_TIMEOUT, MessageTimeout=$MSG_TIMEOUT; reason '$(sinfo -h -n "$name" -o '%E')'):$seen"
    log "info   srun on $name: rc ${srun_rc:-?}, stderr '$(tr '\n' ' ' < "$err" | cut -c1-160)'; its task (pid $rpid) $([ -n "$t_task" ] && echo "gone at $t_task s" || echo "still running (slurmstepd outlives slurmd; the next slurmd on $name kills it)")"
    [ -n "$down_at" ] && ok "$name DOWN ${down_at} s after its slurmd was killed" ||
        fail "$name not DOWN within $((SLURMD_TIMEOUT * 3 + 40)) s of its slurmd being killed"
    alive "$pid" && fail "the step on $name still runs after the node went down" || ok "the step on $name ended (srun rc ${srun_rc:-?}: 'Node failure' on stderr)"
    kill -TERM "$pid" "$pid2" 2>/dev/null || true
    wait "$pid" "$pid2" 2>/dev/null || true
    rm -f "$out" "$err"
    t0=$(now)
    start_slurmd "$k" 2>/dev/null
    if wait_for "node up" node_up "$k"; then ok "$name back up $(since "$t0") s after its slurmd was restarted (ReturnToService=2)"
    else fail "$name not back after restarting its slurmd (state $(node_state "$k"))"; fi
    for ((i = 0; i < 50; i++)); do alive "$rpid" || break; sleep 0.1; done
    alive "$rpid" && log "info the killed step's task (pid $rpid) still runs after the restart" ||
        log "info the orphaned task is gone after the restart"
}

cmd_check() {
    need_root
    load_topology
    pid_of "$CTLD_PID" slurmctld >/dev/null || die "the cluster is not running (local-cluster.sh start)"
    [ "$N" -ge 2 ] || die "check needs at least 2 nodes"
    local j py out
    check_links
    check_hostnames
    j=$(timeout 60 salloc -I50 -N2 -n4 --no-shell 2>&1 | granted_job)
    [ -n "$j" ] || { fail "salloc -N2 -n4 --no-shell"; return 1; }
    log "salloc -N2 -n4 --no-shell -> job $j on $(scontrol -o show job "$j" | sed -n 's/.* NodeList=\([^ ]*\).*/\1/p')"
    check_steps "$j"
    local second; second=$(scontrol show hostnames "$(scontrol -o show job "$j" | sed -n 's/.* NodeList=\([^ ]*\).*/\1/p')" | tail -1)
    check_pipe "$j" "$second"
    py=$(command -v python3 || true); [ -x /usr/bin/python3 ] && py=/usr/bin/python3
    if [ -n "$py" ] && [ -r "$(dirname "$0")/srun_pipe_test.py" ]; then
        if out=$(timeout 300 "$py" "$(dirname "$0")/srun_pipe_test.py" 2>&1); then
            ok "srun_pipe_test.py (srun in the controller's namespace, tasks on a node): $(tail -1 <<<"$out")"
        else fail "srun_pipe_test.py: $(grep FAIL <<<"$out" | tr '\n' ' ')"; fi
    fi
    if [ "${LOCAL_CLUSTER_CHECK_KILL:-1}" != 0 ]; then
        check_kill "$j" "${second#node}"
    fi
    timeout 10 scancel "$j" 2>/dev/null || true
    [ "$FAILS" = 0 ] && log "check passed" || log "check: $FAILS failed"
    [ "$FAILS" = 0 ]
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) load_topology; print_env ;;
    check) cmd_check ;;
    kill-node) shift; cmd_kill_node "$@" ;;
    exec) shift; cmd_exec "$@" ;;
    *) echo "usage: $0 start|stop|status|env|check|kill-node K [slurmd|all|net]|exec K CMD..." >&2; exit 2 ;;
esac
