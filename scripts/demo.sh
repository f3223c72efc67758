#!/usr/bin/env bash
# The main job on a local broker, from a fresh machine, in one command:
#   1. installs Apache Kafka (from Maven Central) and the librdkafka producer if they
#      are missing,
#   2. starts a single-node Kafka on 127.0.0.1 (KRaft, free ports, a fresh data dir),
#   3. produces sample log lines with librdkafka (lz4-compressed, 4 partitions),
#   4. ingests them with `weir consume --sink` and shows the throughput,
#   5. runs the same command again to show that a restart resumes where the sink's
#      durable checkpoint says, duplicating nothing,
# then stops the broker. Everything it writes goes under one temporary directory.
#
#   scripts/demo.sh                 # 4 x 50,000 records
#   DEMO_RECORDS=250000 scripts/demo.sh
#   DEMO_BOOTSTRAP=host:port scripts/demo.sh   # an existing cluster instead (topic demo-logs)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
per_partition="${DEMO_RECORDS:-50000}"
partitions=4
topic="demo-logs"

[ -n "${DEMO_BOOTSTRAP:-}" ] || scripts/install-kafka.sh
scripts/setup-python.sh
echo "demo: building weir (release)"
cargo build --release --quiet --bin weir
weir="$repo_root/target/release/weir"

work="$(mktemp -d /tmp/weir-demo.XXXXXX)"
broker_dir="$work/broker"
sink="$work/sink"
stop_broker() { scripts/stop-kafka.sh --dir "$broker_dir" >/dev/null 2>&1 || true; }
trap stop_broker EXIT

if [ -n "${DEMO_BOOTSTRAP:-}" ]; then
    bootstrap="$DEMO_BOOTSTRAP"
    echo "demo: using the cluster at $bootstrap"
else
    bootstrap="$(scripts/start-kafka.sh --dir "$broker_dir")"
    echo "demo: Apache Kafka is up at $bootstrap (log: $broker_dir/kafka.log)"
fi

total=$((per_partition * partitions))
echo "demo: producing $total log lines into $topic ($partitions partitions, lz4) with librdkafka"
"$repo_root/.venv/bin/python" scripts/produce.py --bootstrap "$bootstrap" --topic "$topic" \
    --partitions "$partitions" --count "$per_partition" --value-size 120 \
    --compression lz4 --omit-values --manifest /dev/null

echo
echo "demo: \$ weir consume -b $bootstrap -t $topic -o beginning -e --sink $sink"
start=$(date +%s.%N)
"$weir" consume -b "$bootstrap" -t "$topic" -o beginning -e --sink "$sink"
end=$(date +%s.%N)

lines=$(find "$sink" -type f \( -name '*.log' -o -name '*.open' \) -exec cat {} + | wc -l)
bytes=$(find "$sink" -type f \( -name '*.log' -o -name '*.open' \) -exec cat {} + | wc -c)
python3 - "$start" "$end" "$lines" "$bytes" <<'PY'
import sys
start, end, lines, size = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
secs = end - start
print(f"demo: the sink holds {lines} lines ({size / 1e6:.1f} MB); the whole run, connect to exit, "
      f"took {secs:.2f} s: {lines / secs:,.0f} records/s, {size / secs / 1e6:.1f} MB/s")
PY
if [ "$lines" -ne "$total" ]; then
    echo "demo: expected $total lines in the sink, found $lines" >&2
    exit 1
fi

echo
echo "demo: the same command again resumes from the sink's checkpoint (nothing new to read):"
"$weir" consume -b "$bootstrap" -t "$topic" -o beginning -e --sink "$sink"
again=$(find "$sink" -type f \( -name '*.log' -o -name '*.open' \) -exec cat {} + | wc -l)
echo "demo: the sink still holds $again lines (no duplicates)"
[ "$again" -eq "$total" ] || { echo "demo: duplicates or losses after the restart" >&2; exit 1; }

echo
echo "demo: files under $sink:"
find "$sink" -type f | sort | sed -n 1,20p
echo "demo: first lines of partition 0:"
find "$sink" -type f \( -name '*.log' -o -name '*.open' \) | sort | sed -n 1p | xargs head -3
