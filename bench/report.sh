#!/usr/bin/env bash
# The HTML report at scale: a run of N records (default 1,000,000: builtin
# noop mapped over N - N/100 items and builtin fail over N/100, on a pool of
# 2), then `jobfile report` on its results. Prints the time and peak memory
# of `jobfile report`, the page's size, and, in headless chromium (driven by
# tests/support/browse.py), the time from navigation until the timeline is
# drawn (the page's own performance.now() mark) and until the page is ready,
# and checks that pointing at a failed bar shows its tooltip.
# Budget (spec section 8): at most 20 MB, drawn within 3 s.
# Usage: bench/report.sh [N] (from the repository root)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

n=${1:-1000000}
build
tmpdir
have chromium || { echo "chromium is not installed (apt-get install chromium)" >&2; exit 2; }

bad=$((n / 100))
cat >"$BENCH_TMP/job.toml" <<TOML
version = 1
name = "report-bench"
[pool]
processes = 2
[[task]]
id = "items"
function = "noop"
map = { range = [0, $((n - bad))] }
[[task]]
id = "failing"
function = "fail"
map = { range = [0, $bad] }
TOML
results="$BENCH_TMP/results.jsonl"
page="$BENCH_TMP/results.html"
"$JOBFILE" run "$BENCH_TMP/job.toml" -o "$results" 2>/dev/null || true
records=$(wc -l <"$results")
if ((records != n)); then
    echo "expected $n records, got $records" >&2
    exit 1
fi

start=$(date +%s%N)
peak=$(peak_kb "$JOBFILE" report "$results")
end=$(date +%s%N)
size=$(stat -c %s "$page")
seen=$(python3 tests/support/browse.py "$page" --hover failed)
python3 - "$seen" <<PY
import json, sys
seen = json.loads(sys.argv[1])
if seen["errors"] or seen["requests"]:
    sys.exit(f"the page had errors or requests: {seen['errors']} {seen['requests']}")
print(f"records                      {$n:,}")
print(f"results file                 {$(stat -c %s "$results") / 1e6:.1f} MB")
print(f"jobfile report               {($end - $start) / 1e9:.2f} s, peak {$peak / 1024:.0f} MiB")
print(f"page                         {$size / 1e6:.2f} MB (budget 20 MB)")
print(f"timeline drawn               {seen['timeline_ms'] / 1000:.2f} s after navigation (budget 3 s)")
print(f"page ready (driver's clock)  {seen['loaded_ms'] / 1000:.2f} s")
marks = seen["marks"]
print("phases (ms from navigation)  " + ", ".join(f"{k.removeprefix('jobfile-')} {v}" for k, v in marks.items()))
tip = seen["hover"]
first = tip["text"].splitlines()[0] if tip["shown"] else "none"
print(f"tooltip over a failed bar    {first}")
if not tip["shown"] or "failed" not in first:
    sys.exit("no tooltip for the failed bar under the pointer")
PY
