#!/usr/bin/env bash
# Slurm pools across nodes, against forked pools: the time from `jobfile run`
# to its first record (one noop); the round trip of one unit through a
# worker (a noop map with a timeout, which sends units one at a time); and
# the throughput of a noop map of N items on 6 workers over 3 nodes.
# Needs a running cluster (eval "$(bash ci/local-cluster.sh start)", as root).
# Usage: bench/slurm.sh [N] [RUNS] (from the repository root; N default
# 100000, RUNS default 5)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

n=${1:-100000}
runs=${2:-5}
build
tmpdir
command -v srun >/dev/null || { echo "no srun: start a cluster first (ci/local-cluster.sh)" >&2; exit 2; }

# job FILE POOL-LINES TASK-LINES: a job with a default pool of its own.
job() {
    printf 'version = 1\nname = "bench"\n[pool]\n%s\n[functions.noop]\nbuiltin = "noop"\n[[task]]\nid = "items"\nfunction = "noop"\n%s\n' \
        "$2" "$3" >"$1"
}
slurm3='backend = "slurm"
processes = 6
nodes = 3'
slurm1='backend = "slurm"
processes = 1
nodes = 1'

# first_record JOB: seconds from the start of `jobfile run JOB` to its first
# record on stdout, the median of RUNS runs.
first_record() {
    python3 - "$JOBFILE" "$1" "$runs" <<'EOF'
import statistics, subprocess, sys, time
exe, job, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
times = []
for _ in range(runs):
    t = time.perf_counter()
    p = subprocess.Popen([exe, "run", job, "--order", "completion"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = p.stdout.readline()
    times.append(time.perf_counter() - t)
    p.stdout.read()
    if p.wait() != 0 or not line:
        sys.exit(f"{job}: run failed")
print(f"{statistics.median(times):.3f}")
EOF
}

# per_item JOB ITEMS: mean seconds per item of `jobfile run JOB`.
per_item() {
    measure "$runs" "$JOBFILE" run "$1" -o "$BENCH_TMP/out.jsonl" --reproducible
    fmt "$MEAN_S / $2"
}

printf '%-44s %14s %14s\n' "measure" "3 Slurm nodes" "forked"

job "$BENCH_TMP/one-slurm.toml" "$slurm3" ""
job "$BENCH_TMP/one-local.toml" "processes = 6" ""
printf '%-44s %13ss %13ss\n' "first record (one noop, --order completion)" \
    "$(first_record "$BENCH_TMP/one-slurm.toml")" "$(first_record "$BENCH_TMP/one-local.toml")"

trips=2000
job "$BENCH_TMP/rt-slurm.toml" "$slurm1" "map = { range = [0, $trips] }
timeout = \"1h\""
job "$BENCH_TMP/rt-local.toml" "processes = 1" "map = { range = [0, $trips] }
timeout = \"1h\""
rt_slurm=$(per_item "$BENCH_TMP/rt-slurm.toml" "$trips")
rt_local=$(per_item "$BENCH_TMP/rt-local.toml" "$trips")
printf '%-44s %12sus %12sus\n' "round trip of a unit (1 worker, $trips noops)" \
    "$(fmt "round($rt_slurm * 1e6)")" "$(fmt "round($rt_local * 1e6)")"

job "$BENCH_TMP/map-slurm.toml" "$slurm3" "map = { range = [0, $n] }"
job "$BENCH_TMP/map-local.toml" "processes = 6" "map = { range = [0, $n] }"
measure "$runs" "$JOBFILE" run "$BENCH_TMP/map-slurm.toml" -o "$BENCH_TMP/out.jsonl" --reproducible
slurm_s=$MEAN_S
measure "$runs" "$JOBFILE" run "$BENCH_TMP/map-local.toml" -o "$BENCH_TMP/out.jsonl" --reproducible
local_s=$MEAN_S
printf '%-44s %13ss %13ss\n' "noop map of $n on 6 workers" "$(fmt "f'{$slurm_s:.2f}'")" "$(fmt "f'{$local_s:.2f}'")"
printf '%-44s %14s %14s\n' "  items a second" "$(fmt "round($n / $slurm_s)")" "$(fmt "round($n / $local_s)")"
