# Shared helpers for the bench/*.sh scripts; source it, do not run it.
# Every script runs from the repository root and measures the release binary,
# ${CARGO_TARGET_DIR:-target}/release/jobfile (or $JOBFILE).

JOBFILE=${JOBFILE:-${CARGO_TARGET_DIR:-target}/release/jobfile}

have() { command -v "$1" >/dev/null 2>&1; }

# build: the release binary, once per script.
build() {
    if [[ ! -f Cargo.toml || ! -d bench ]]; then
        echo "run this from the repository root: bench/$(basename "$0")" >&2
        exit 2
    fi
    # SKIP_BUILD=1 measures the binary as it is (e.g. JOBFILE=/path/to/jobfile).
    if [[ ${SKIP_BUILD:-0} != 1 ]]; then
        cargo build --release --quiet
    fi
}

# tmpdir: a scratch folder removed on exit; generated jobs and results go there.
tmpdir() {
    BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/jobfile-bench.XXXXXX")
    trap 'rm -rf "$BENCH_TMP"' EXIT
}

# peak_kb CMD...: run CMD once under /usr/bin/time; print its peak RSS in KiB.
# (That is the largest single process of the tree that CMD waited for, as
# wait4 reports it: the engine or one worker, not their sum.)
peak_kb() {
    if [[ -x /usr/bin/time ]]; then
        /usr/bin/time -f %M -o "$BENCH_TMP/peak" "$@" >/dev/null 2>"$BENCH_TMP/peak.err" \
            || { cat "$BENCH_TMP/peak.err" >&2; return 1; }
        tail -n 1 "$BENCH_TMP/peak"
    else
        "$@" >/dev/null
        echo "n/a"
    fi
}

# measure RUNS CMD...: mean wall-clock seconds of CMD over RUNS runs, in
# MEAN_S; peak RSS in KiB (the largest of the runs) in PEAK_KB. hyperfine does
# the timing when installed (and RUNS >= 2); else a plain loop, each run under
# /usr/bin/time -v for the peak memory.
measure() {
    local runs=$1
    shift
    PEAK_KB=n/a
    if have hyperfine && ((runs >= 2)); then
        local cmd
        cmd=$(printf '%q ' "$@")
        # --shell=none: no shell between hyperfine and CMD, whose few
        # milliseconds would otherwise be within the shell's noise.
        hyperfine --style basic --shell=none --warmup 1 --runs "$runs" \
            --export-json "$BENCH_TMP/hyperfine.json" -- "$cmd" >&2
        MEAN_S=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["mean"])' \
            "$BENCH_TMP/hyperfine.json")
        PEAK_KB=$(peak_kb "$@")
        return
    fi
    local i start end total_ns=0 peak
    for ((i = 0; i < runs; i++)); do
        start=$(date +%s%N)
        if [[ -x /usr/bin/time ]]; then
            /usr/bin/time -v -o "$BENCH_TMP/time-v" "$@" >/dev/null 2>"$BENCH_TMP/stderr" \
                || { cat "$BENCH_TMP/stderr" >&2; return 1; }
        else
            "$@" >/dev/null 2>"$BENCH_TMP/stderr" || { cat "$BENCH_TMP/stderr" >&2; return 1; }
        fi
        end=$(date +%s%N)
        total_ns=$((total_ns + end - start))
        if [[ -f "$BENCH_TMP/time-v" ]]; then
            peak=$(awk -F': *' '/Maximum resident set size/ {print $2}' "$BENCH_TMP/time-v")
            if [[ $PEAK_KB == n/a ]] || ((peak > PEAK_KB)); then PEAK_KB=$peak; fi
        fi
    done
    MEAN_S=$(python3 -c 'import sys; print(int(sys.argv[1]) / int(sys.argv[2]) / 1e9)' "$total_ns" "$runs")
}

# fmt EXPR: evaluate a small Python expression and print it.
fmt() { python3 -c "print($1)"; }

# mib KIB: KiB as MiB with one decimal, or n/a.
mib() { if [[ $1 == n/a ]]; then echo n/a; else fmt "f'{$1 / 1024:.1f}'"; fi; }
