#!/usr/bin/env bash
# Validation and planning of a big file: a generated job of 100,000 tasks,
# each with an id, a function and two args; time and peak memory of
# `jobfile check` and `jobfile plan` (text and json), against Python's
# tomllib only parsing the same file, with the ratio of the two times and
# the bytes of peak memory per task.
# Usage: bench/check_plan.sh [N] (from the repository root; RUNS=3 by default)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=${1:-100000}
RUNS=${RUNS:-3}
build
tmpdir

job="$BENCH_TMP/check-plan.toml"
python3 - "$N" "$job" <<'PY'
import sys
n, out = int(sys.argv[1]), sys.argv[2]
with open(out, "w", buffering=1 << 20) as f:
    f.write('version = 1\n\n[pool]\nprocesses = 4\n\n[functions.noop]\nbuiltin = "noop"\n\n')
    for i in range(n):
        f.write(f'[[task]]\nid = "t{i}"\nfunction = "noop"\nargs = [{i}, "a"]\n\n')
PY
small="$BENCH_TMP/one.toml"
python3 bench/gen_job.py one "$small"
job_mib=$(fmt "f'{$(stat -c %s "$job") / 1048576:.1f}'")

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-40s %10s %10s\n' "$N tasks ($job_mib MiB of TOML)" "seconds" "peak MiB"
report() { printf '%-40s %10.3f %10s\n' "$1" "$MEAN_S" "$(mib "$PEAK_KB")"; }

measure 1 "$JOBFILE" check "$small"
base_kb=$PEAK_KB
measure "$RUNS" "$JOBFILE" check "$job"
report "jobfile check"
check_s=$MEAN_S
check_kb=$PEAK_KB
measure "$RUNS" "$JOBFILE" plan "$job" --format text
report "jobfile plan --format text"
measure "$RUNS" "$JOBFILE" plan "$job" --format json
report "jobfile plan --format json"
measure "$RUNS" python3 -c 'import sys, tomllib; tomllib.load(open(sys.argv[1], "rb"))' "$job"
report "python tomllib.load (parse only)"
py_s=$MEAN_S

echo "jobfile check / tomllib parse (time): $(fmt "f'{$check_s / $py_s:.2f}'") (goal: at most 0.30)"
if [[ $check_kb != n/a && $base_kb != n/a ]]; then
    echo "jobfile check peak: $(mib "$check_kb") MiB (goal: at most 64)," \
        "$(fmt "f'{($check_kb - $base_kb) * 1024 / $N:.0f}'") bytes per task" \
        "over a one-task job's $(mib "$base_kb") MiB"
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
