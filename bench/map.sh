#!/usr/bin/env bash
# Map throughput and memory: builtin noop mapped over range(N) for
# N = 100,000, 1,000,000 and 10,000,000 on a pool of 2, records written to a
# file; wall time and peak RSS (/usr/bin/time -f %M). Peak RSS should stay
# flat as N grows (a map streams). Compared with `seq N | xargs -P2 -n1000
# true` and, when installed, GNU parallel doing the same batches.
# Usage: bench/map.sh [N...] (from the repository root)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

if (($# > 0)); then sizes=("$@"); else sizes=(100000 1000000 10000000); fi
build
tmpdir

# elapsed_peak CMD...: run CMD once; set ELAPSED_S and PEAK_KB.
elapsed_peak() {
    local start end
    start=$(date +%s%N)
    if [[ -x /usr/bin/time ]]; then
        /usr/bin/time -f %M -o "$BENCH_TMP/peak" "$@" >/dev/null
        PEAK_KB=$(tail -n 1 "$BENCH_TMP/peak")
    else
        "$@" >/dev/null
        PEAK_KB=n/a
    fi
    end=$(date +%s%N)
    ELAPSED_S=$(fmt "($end - $start) / 1e9")
}

row() { printf '%-12s %-26s %10.3f %14s %10s %12s\n' "$@"; }

printf '%-12s %-26s %10s %14s %10s %12s\n' "items" "runner" "seconds" "items/s" "peak MiB" "results MiB"
for n in "${sizes[@]}"; do
    job="$BENCH_TMP/map-$n.toml"
    out="$BENCH_TMP/map-$n.jsonl"
    python3 bench/gen_job.py map "$n" --processes 2 "$job"

    elapsed_peak "$JOBFILE" run "$job" -o "$out" --reproducible
    records=$(wc -l <"$out")
    if ((records != n)); then
        echo "jobfile: expected $n records, got $records" >&2
        exit 1
    fi
    size_mib=$(fmt "f'{$(stat -c %s "$out") / 1048576:.1f}'")
    rm -f "$out"
    row "$n" "jobfile map (2 workers)" "$ELAPSED_S" "$(fmt "round($n / $ELAPSED_S)")" "$(mib "$PEAK_KB")" "$size_mib"

    elapsed_peak sh -c 'seq "$1" | xargs -P2 -n1000 true' sh "$n"
    row "$n" "seq | xargs -P2 -n1000" "$ELAPSED_S" "$(fmt "round($n / $ELAPSED_S)")" "$(mib "$PEAK_KB")" "-"

    if have parallel; then
        elapsed_peak sh -c 'seq "$1" | parallel --will-cite -j2 -N1000 true' sh "$n"
        row "$n" "seq | parallel -j2 -N1000" "$ELAPSED_S" "$(fmt "round($n / $ELAPSED_S)")" "$(mib "$PEAK_KB")" "-"
    else
        printf '%-12s %s\n' "$n" "GNU parallel: not installed, skipped"
    fi
done
