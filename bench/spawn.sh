#!/usr/bin/env bash
# Command spawn rate: N runs of /bin/true with 2 in flight, from start to
# exit, for jobfile (a map of a command function, `-j 2`, records to a
# file), a C loop of posix_spawn (bench/spawn_loop.c, compiled here with
# cc: the floor), `xargs -P2 -n1` and GNU parallel `-j2` (when installed).
# The runners take turns, RUNS rounds (5 by default); each row is the
# median wall time of its runs and the median CPU time (user + system, all
# processes) beside it, so a loaded machine shows up as wall time well
# above CPU time / 2. The load average is printed before and after. The
# wall-time ratio ("rate / C") is the figure to quote from a quiet
# machine; on a loaded one the C loop, which blocks in wait(), suffers
# more than jobfile, and the CPU-time ratio ("C CPU / CPU": how much of
# jobfile's processor time the C loop needs for the same work) is the
# steadier one.
# Usage: bench/spawn.sh [N] (from the repository root)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=${1:-2000}
RUNS=${RUNS:-5}
build
tmpdir

cc -O2 -o "$BENCH_TMP/spawn_loop" bench/spawn_loop.c
cat >"$BENCH_TMP/spawn.toml" <<TOML
version = 1

[functions.true]
command = ["/bin/true"]

[[task]]
id = "spawn"
function = "true"
map = { range = [0, $N] }
TOML

runners=(jobfile c xargs)
if have parallel; then runners+=(parallel); fi

run_one() {
    case $1 in
        jobfile) "$JOBFILE" run -j 2 "$BENCH_TMP/spawn.toml" -o "$BENCH_TMP/spawn.jsonl" --reproducible ;;
        c) "$BENCH_TMP/spawn_loop" "$N" 2 /bin/true ;;
        xargs) seq "$N" | xargs -P2 -n1 /bin/true ;;
        parallel) seq "$N" | parallel --will-cite -j2 -N0 /bin/true ;;
    esac
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 0; r < RUNS; r++)); do
    for name in "${runners[@]}"; do
        /usr/bin/time -f '%e %U %S' -o "$BENCH_TMP/t" bash -c "$(declare -f run_one); $(declare -p JOBFILE BENCH_TMP N); run_one $name" \
            >/dev/null 2>"$BENCH_TMP/err" || { cat "$BENCH_TMP/err" >&2; exit 1; }
        read -r wall user sys <"$BENCH_TMP/t"
        echo "$name $wall $(fmt "$user + $sys")" >>"$BENCH_TMP/times"
    done
    records=$(wc -l <"$BENCH_TMP/spawn.jsonl")
    if ((records != N)); then
        echo "jobfile: expected $N records, got $records" >&2
        exit 1
    fi
done
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$BENCH_TMP/times" "$N" "${runners[@]}" <<'PY'
import statistics, sys
path, n, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rows = {}
for line in open(path):
    name, wall, cpu = line.split()
    rows.setdefault(name, []).append((float(wall), float(cpu)))
labels = {"jobfile": "jobfile run -j 2", "c": "C posix_spawn loop, 2 in flight",
          "xargs": "xargs -P2 -n1", "parallel": "GNU parallel -j2"}
med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in rows.items()}
print(f"{n} runs of /bin/true, {len(rows['c'])} rounds, medians")
print(f"{'runner':34} {'wall s':>8} {'cmds/s':>8} {'CPU s':>8} {'rate / C':>9} {'C CPU / CPU':>12}")
for k in names:
    wall, cpu = med[k]
    print(f"{labels[k]:34} {wall:8.3f} {n / wall:8.0f} {cpu:8.3f} {med['c'][0] / wall:9.2f} {med['c'][1] / cpu:12.2f}")
PY
