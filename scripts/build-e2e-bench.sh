#!/usr/bin/env bash
# Builds the end-to-end bench (`cargo bench --bench e2e --no-run`, the bench profile)
# and prints the path of its executable: the weir client of scripts/bench-kafka.sh,
# bench-latency.sh and bench-e2e.sh. Exits 1 when the build fails or names no binary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
echo "== building the weir client (cargo bench --bench e2e --no-run)" >&2
exe="$(cargo bench --bench e2e --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
exe = None
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "e2e" and m.get("executable"):
        exe = m["executable"]
print(exe or "")
')"
[ -n "$exe" ] && [ -x "$exe" ] || { echo "build-e2e-bench: could not build the e2e bench (run cargo bench --bench e2e --no-run to see why)" >&2; exit 1; }
echo "$exe"
