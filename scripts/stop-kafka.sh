#!/usr/bin/env bash
# Stops a broker started by scripts/start-kafka.sh: SIGTERM (a controlled shutdown),
# then SIGKILL if it has not exited within 30 s.
#
#   scripts/stop-kafka.sh --dir DIR
set -euo pipefail
dir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dir) dir="$2"; shift 2 ;;
        *) echo "stop-kafka: unknown argument $1 (--dir DIR)" >&2; exit 2 ;;
    esac
done
[ -n "$dir" ] || { echo "stop-kafka: --dir DIR is required" >&2; exit 2; }
[ -f "$dir/kafka.pid" ] || exit 0
pid="$(cat "$dir/kafka.pid")"
kill "$pid" 2>/dev/null || { rm -f "$dir/kafka.pid"; exit 0; }
for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$dir/kafka.pid"; exit 0; }
    sleep 0.1
done
kill -9 "$pid" 2>/dev/null || true
rm -f "$dir/kafka.pid"
