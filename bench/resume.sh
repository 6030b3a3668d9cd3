#!/usr/bin/env bash
# --resume after a fix, and its memory over a million earlier records.
#
# 1. A map of N commands (default 100,000; pool of 2), each appending its item
#    to a counter file, 3 of which fail while a marker file exists. The first
#    run records 3 failures; the markers go; `--resume` must run exactly those
#    3 units (counted by the commands themselves) and take at most 10% of the
#    first run's wall time, both measured here.
# 2. A map of M builtin no-ops (default 1,000,000) run once, then resumed:
#    unchanged (every record kept), and with one item added in front (it
#    runs, every other record is kept). Peak RSS (/usr/bin/time -f %M) must
#    stay within 128 MiB.
# Usage: bench/resume.sh [N [M]] (from the repository root)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

n=${1:-100000}
m=${2:-1000000}
build
tmpdir

# timed CMD...: run CMD once (any exit status); set ELAPSED_S and PEAK_KB.
timed() {
    local start end
    start=$(date +%s%N)
    /usr/bin/time -f %M -o "$BENCH_TMP/peak" "$@" >/dev/null 2>"$BENCH_TMP/stderr" || true
    end=$(date +%s%N)
    PEAK_KB=$(tail -n 1 "$BENCH_TMP/peak")
    ELAPSED_S=$(fmt "($end - $start) / 1e9")
}

dir="$BENCH_TMP/fix"
mkdir -p "$dir"
cat >"$dir/job.toml" <<TOML
version = 1
[pool]
processes = 2
[functions.work]
shell = 'echo "\$1" >> runs; if [ -f "fail-\$1" ]; then exit 1; fi'
returns = "none"
[[task]]
id = "items"
function = "work"
map = { range = [0, $n] }
TOML
fails=(17 $((n / 2)) $((n - 1)))
for f in "${fails[@]}"; do touch "$dir/fail-$f"; done
timed "$JOBFILE" run "$dir/job.toml" -o "$dir/results.jsonl"
first_s=$ELAPSED_S
first_runs=$(wc -l <"$dir/runs")
first_failed=$(grep -c '"status":"failed"' "$dir/results.jsonl" || true)
rm -f "$dir"/fail-* "$dir/runs"
timed "$JOBFILE" run "$dir/job.toml" -o "$dir/results.jsonl" --resume
resume_s=$ELAPSED_S
resume_peak=$PEAK_KB
resume_runs=$(wc -l <"$dir/runs")
resume_ok=$(grep -c '"status":"ok"' "$dir/results.jsonl")
summary=$(tail -n 1 "$BENCH_TMP/stderr")
share=$(fmt "f'{100 * $resume_s / $first_s:.1f}'")

printf '%-44s %10s %12s %10s\n' "map of $n commands, 3 failures" "seconds" "units run" "peak MiB"
printf '%-44s %10.2f %12s %10s\n' "first run ($first_failed failed)" "$first_s" "$first_runs" "-"
printf '%-44s %10.2f %12s %10s\n' "--resume after the fix ($resume_ok ok)" "$resume_s" "$resume_runs" "$(mib "$resume_peak")"
echo "resume / first run: $share% ($summary)"
status=0
if ((resume_runs != 3)); then
    echo "FAIL: --resume ran $resume_runs units, not 3" >&2
    status=1
fi
if ! fmt "$resume_s <= 0.10 * $first_s" | grep -q True; then
    echo "FAIL: --resume took more than 10% of the first run" >&2
    status=1
fi

echo
big="$BENCH_TMP/big"
mkdir -p "$big"
python3 bench/gen_job.py map "$m" --processes 2 "$big/job.toml"
timed "$JOBFILE" run "$big/job.toml" -o "$big/results.jsonl"
printf '%-44s %10s %10s\n' "map of $m no-ops" "seconds" "peak MiB"
printf '%-44s %10.2f %10s\n' "first run" "$ELAPSED_S" "$(mib "$PEAK_KB")"
timed "$JOBFILE" run "$big/job.toml" -o "$big/results.jsonl" --resume
printf '%-44s %10.2f %10s\n' "--resume, all $m kept" "$ELAPSED_S" "$(mib "$PEAK_KB")"
peak1=$PEAK_KB
echo "  $(tail -n 1 "$BENCH_TMP/stderr")"
sed -i "s/range = \[0, $m\]/range = [-1, $m]/" "$big/job.toml"
timed "$JOBFILE" run "$big/job.toml" -o "$big/results.jsonl" --resume
printf '%-44s %10.2f %10s\n' "--resume, one item added in front" "$ELAPSED_S" "$(mib "$PEAK_KB")"
peak2=$PEAK_KB
echo "  $(tail -n 1 "$BENCH_TMP/stderr")"
for p in "$peak1" "$peak2"; do
    if ((p > 128 * 1024)); then
        echo "FAIL: --resume over $m records peaked at $(mib "$p") MiB, over 128" >&2
        status=1
    fi
done
exit $status
