#!/usr/bin/env bash
# Python functions (python = "MODULE:NAME") against multiprocessing.Pool with
# the fork start method. Each ratio comes from a jobfile run and a Pool run
# made side by side (one right after the other, RUNS pairs; the median pair
# is shown), so that both see the same machine at the same moment:
#   (a) map of N_IDENT (50,000) calls of an identity function, records to a
#       file, vs Pool(2).imap(f, items, chunksize=1) writing the same
#       records as JSON lines: calls/s of each;
#   (b) max_tasks_per_child = 1 over 200 calls, the module burning 0.3 s of
#       CPU at import, vs Pool(2, maxtasksperchild=1) with chunksize=1 (one
#       call per process, as in jobfile): wall time of each;
#   (c) a pool of 8 over a module that burns 1 s of CPU at import: seconds
#       from the start to the first record (Pool(8).imap's first result
#       beside it);
#   (d) 500 calls of `def work(x): return x * x`, start-up included, vs
#       Pool(2).map: wall time of each.
# Usage: bench/python.sh (from the repository root; RUNS=3, N_IDENT=50000)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-3}
N_IDENT=${N_IDENT:-50000}
build
tmpdir
here=$BENCH_TMP

# --- the modules and the jobs ---------------------------------------------------

cat >"$here/ident.py" <<'EOF'
def ident(x):
    return x
EOF
burn_module() { # NAME SECONDS
    cat >"$here/$1.py" <<EOF
import time

_start = time.process_time()
while time.process_time() - _start < $2:
    pass


def work(x):
    return x
EOF
}
burn_module burn03 0.3
burn_module burn1 1.0
cat >"$here/square.py" <<'EOF'
def work(x):
    return x * x
EOF

job() { # NAME PROCESSES TARGET N [POOL LINES...]
    local name=$1 processes=$2 target=$3 n=$4
    shift 4
    {
        echo "version = 1"
        echo "[pool]"
        echo "processes = $processes"
        for line in "$@"; do echo "$line"; done
        echo "[functions.f]"
        echo "python = \"$target\""
        echo "[[task]]"
        echo "id = \"f\""
        echo "function = \"f\""
        echo "map = { range = [0, $n] }"
    } >"$here/$name.toml"
}
job a 2 ident:ident "$N_IDENT"
job b 2 burn03:work 200 "max_tasks_per_child = 1"
job c 8 burn1:work 8
job d 2 square:work 500

# --- measuring ------------------------------------------------------------------

# seconds CMD...: wall-clock seconds of one run of CMD, its output dropped.
seconds() {
    local start end
    start=$(date +%s%N)
    "$@" >/dev/null 2>"$here/stderr" || { cat "$here/stderr" >&2; return 1; }
    end=$(date +%s%N)
    fmt "($end - $start) / 1e9"
}

# pairs NAME JOBFILE_CMD -- POOL_CMD: RUNS pairs of runs, jobfile then Pool;
# the jobfile and Pool seconds of the pair with the median ratio, in
# JF_S and PY_S; the lowest and highest jobfile/Pool time ratios of the
# pairs in LO and HI.
pairs() {
    local name=$1
    shift
    local jf=() py=() seen=0 arg
    for arg in "$@"; do
        if [[ $arg == -- ]]; then seen=1; continue; fi
        if ((seen)); then py+=("$arg"); else jf+=("$arg"); fi
    done
    : >"$here/$name.pairs"
    local i j p
    for ((i = 0; i < RUNS; i++)); do
        j=$("${jf[@]}")
        p=$("${py[@]}")
        echo "$j $p" >>"$here/$name.pairs"
    done
    read -r JF_S PY_S LO HI < <(python3 - "$here/$name.pairs" <<'EOF'
import sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
rows.sort(key=lambda r: r[0] / r[1])
ratios = [j / p for j, p in rows]
print(*rows[len(rows) // 2], ratios[0], ratios[-1])
EOF
)
}

check_records() { # FILE N
    local got
    got=$(wc -l <"$1")
    if ((got != $2)); then
        echo "$1: expected $2 records, got $got" >&2
        exit 1
    fi
}

# (a) throughput
run_a_jf() {
    local s
    s=$(seconds "$JOBFILE" run "$here/a.toml" -o "$here/a.jsonl")
    check_records "$here/a.jsonl" "$N_IDENT"
    echo "$s"
}
run_a_py() {
    local s
    s=$(seconds python3 bench/pool_python.py "$here" imap "$N_IDENT" "$here/a-pool.jsonl")
    check_records "$here/a-pool.jsonl" "$N_IDENT"
    echo "$s"
}
pairs a run_a_jf -- run_a_py
a_jf=$JF_S a_py=$PY_S a_lo=$LO a_hi=$HI

# (b) max_tasks_per_child = 1
pairs b seconds "$JOBFILE" run "$here/b.toml" -o "$here/b.jsonl" \
    -- seconds python3 bench/pool_python.py "$here" maxtasks 200
b_jf=$JF_S b_py=$PY_S b_lo=$LO b_hi=$HI

# (c) first record, pool of 8
pairs c python3 bench/first_record.py "$JOBFILE" run "$here/c.toml" \
    -- python3 bench/first_record.py python3 bench/pool_python.py "$here" first 8
c_jf=$JF_S c_py=$PY_S c_lo=$LO c_hi=$HI

# (d) 500 calls, start-up included
pairs d seconds "$JOBFILE" run "$here/d.toml" -o "$here/d.jsonl" \
    -- seconds python3 bench/pool_python.py "$here" map 500
d_jf=$JF_S d_py=$PY_S d_lo=$LO d_hi=$HI

# --- the table ------------------------------------------------------------------

echo "Python functions vs multiprocessing.Pool (fork), $(nproc) CPUs, median of $RUNS pairs"
printf '%-44s %10s %10s %8s %-13s %s\n' "measure" "jobfile" "Pool" "ratio" "pairs" "target"
row() { printf '%-44s %10s %10s %8s %-13s %s\n' "$@"; }
# spread LO HI [invert]: the pairs' ratios, lowest to highest.
spread() {
    if [[ ${3:-} == invert ]]; then
        fmt "f'{1 / $2:.2f}-{1 / $1:.2f}x'"
    else
        fmt "f'{$1:.2f}-{$2:.2f}x'"
    fi
}
row "(a) $N_IDENT identity calls, calls/s" \
    "$(fmt "round($N_IDENT / $a_jf)")" "$(fmt "round($N_IDENT / $a_py)")" \
    "$(fmt "f'{$a_py / $a_jf:.2f}x'")" "$(spread "$a_lo" "$a_hi" invert)" "jobfile/Pool >= 1.5x"
row "(b) max_tasks_per_child=1, 200 calls, s" \
    "$(fmt "f'{$b_jf:.2f}'")" "$(fmt "f'{$b_py:.2f}'")" \
    "$(fmt "f'{$b_jf / $b_py:.2f}x'")" "$(spread "$b_lo" "$b_hi")" "jobfile/Pool <= 2x"
row "(c) pool of 8, 1 s import: first record, s" \
    "$(fmt "f'{$c_jf:.2f}'")" "$(fmt "f'{$c_py:.2f}'")" \
    "$(fmt "f'{$c_jf / $c_py:.2f}x'")" "$(spread "$c_lo" "$c_hi")" "jobfile <= 1.5 s"
row "(d) 500 calls of x * x, wall s" \
    "$(fmt "f'{$d_jf:.2f}'")" "$(fmt "f'{$d_py:.2f}'")" \
    "$(fmt "f'{$d_jf / $d_py:.2f}x'")" "$(spread "$d_lo" "$d_hi")" "jobfile/Pool <= 1.5x"
