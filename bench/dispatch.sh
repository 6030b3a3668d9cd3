#!/usr/bin/env bash
# Dispatch rate: 100,000 builtin noop tasks on a pool of 2 workers, against
# Python's multiprocessing.Pool(2) doing 100,000 apply_async of a no-op.
# Usage: bench/dispatch.sh [N] (from the repository root; RUNS=3 by default)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=${1:-100000}
RUNS=${RUNS:-3}
build
tmpdir

python3 bench/gen_job.py tasks "$N" --processes 2 "$BENCH_TMP/dispatch.toml"

measure "$RUNS" "$JOBFILE" run "$BENCH_TMP/dispatch.toml" -o "$BENCH_TMP/results.jsonl" --reproducible
jf_s=$MEAN_S jf_kb=$PEAK_KB
records=$(wc -l <"$BENCH_TMP/results.jsonl")
if ((records != N)); then
    echo "expected $N records, got $records" >&2
    exit 1
fi

measure "$RUNS" python3 bench/pool_dispatch.py "$N" 2
py_s=$MEAN_S py_kb=$PEAK_KB

jf_rate=$(fmt "round($N / $jf_s)")
py_rate=$(fmt "round($N / $py_s)")
printf '%-34s %10s %12s %12s\n' "dispatch of $N no-op tasks" "seconds" "tasks/s" "peak MiB"
printf '%-34s %10.3f %12s %12s\n' "jobfile (pool of 2)" "$jf_s" "$jf_rate" "$(mib "$jf_kb")"
printf '%-34s %10.3f %12s %12s\n' "python multiprocessing.Pool(2)" "$py_s" "$py_rate" "$(mib "$py_kb")"
echo "ratio jobfile/python (tasks/s): $(fmt "f'{$jf_rate / $py_rate:.2f}'")"
