#!/usr/bin/env bash
# Start-up cost: a job of one builtin noop task, from start to exit, with
# hyperfine when installed, else 100 runs in a loop. Compared with a Python
# multiprocessing.Pool(1) running one no-op, and with `sh -c true`.
# Usage: bench/startup.sh (from the repository root; RUNS=100 by default)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-100}
build
tmpdir

python3 bench/gen_job.py one "$BENCH_TMP/one.toml"

measure "$RUNS" "$JOBFILE" run "$BENCH_TMP/one.toml" -o "$BENCH_TMP/one.jsonl"
jf_s=$MEAN_S jf_kb=$PEAK_KB
measure "$RUNS" python3 bench/pool_one.py
py_s=$MEAN_S py_kb=$PEAK_KB
measure "$RUNS" sh -c true
sh_s=$MEAN_S sh_kb=$PEAK_KB

printf '%-36s %10s %10s\n' "one task, start to exit ($RUNS runs)" "mean ms" "peak MiB"
printf '%-36s %10.2f %10s\n' "jobfile run" "$(fmt "$jf_s * 1000")" "$(mib "$jf_kb")"
printf '%-36s %10.2f %10s\n' "python multiprocessing.Pool(1)" "$(fmt "$py_s * 1000")" "$(mib "$py_kb")"
printf '%-36s %10.2f %10s\n' "sh -c true (process start floor)" "$(fmt "$sh_s * 1000")" "$(mib "$sh_kb")"
echo "ratio python/jobfile (time): $(fmt "f'{$py_s / $jf_s:.2f}'")"
