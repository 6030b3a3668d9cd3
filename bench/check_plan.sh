#!/usr/bin/env bash
# Validation and planning of a big file: a generated job of 100,000 tasks;
# time and peak memory of `jobfile check` and `jobfile plan` (text and json),
# compared with Python's tomllib only parsing the same file.
# Usage: bench/check_plan.sh [N] (from the repository root; RUNS=3 by default)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=${1:-100000}
RUNS=${RUNS:-3}
build
tmpdir

job="$BENCH_TMP/check-plan.toml"
python3 bench/gen_job.py tasks "$N" --processes 4 "$job"
job_mib=$(fmt "f'{$(stat -c %s "$job") / 1048576:.1f}'")

printf '%-40s %10s %10s\n' "$N tasks ($job_mib MiB of TOML)" "seconds" "peak MiB"
report() { printf '%-40s %10.3f %10s\n' "$1" "$MEAN_S" "$(mib "$PEAK_KB")"; }

measure "$RUNS" "$JOBFILE" check "$job"
report "jobfile check"
check_s=$MEAN_S
measure "$RUNS" "$JOBFILE" plan "$job" --format text
report "jobfile plan --format text"
measure "$RUNS" "$JOBFILE" plan "$job" --format json
report "jobfile plan --format json"
measure "$RUNS" python3 -c 'import sys, tomllib; tomllib.load(open(sys.argv[1], "rb"))' "$job"
report "python tomllib.load (parse only)"
py_s=$MEAN_S
echo "ratio python-parse/jobfile-check (time): $(fmt "f'{$py_s / $check_s:.2f}'")"
