#!/usr/bin/env bash
# Stops the broker scripts/start-tansu.sh started (the pid in DIR/tansu.pid).
#   scripts/stop-tansu.sh [--dir DIR]
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$repo_root/.tansu"
if [ "${1:-}" = "--dir" ]; then dir="$2"; fi
[ -f "$dir/tansu.pid" ] || exit 0
pid="$(cat "$dir/tansu.pid")"
if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
fi
rm -f "$dir/tansu.pid"
