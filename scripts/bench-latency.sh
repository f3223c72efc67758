#!/usr/bin/env bash
# Produce-to-handler latency against Apache Kafka: weir, librdkafka (native) and the
# Java consumer read the same records at the same time.
#
#   scripts/bench-latency.sh [--runs R] [--rate N] [--seconds S] [--out FILE.jsonl]
#
# Per run: a fresh one-partition topic; the three consumers start on it (from the
# beginning of the empty topic), each under /usr/bin/time, with the low-latency
# profile's settings (fetch.min.bytes 1, fetch.max.wait.ms 10, max.poll.records 100:
# weir's `-P low-latency`, applied to each client by its own property names); after
# 10 s for every client to be polling, scripts/latency_producer.py sends --rate records
# a second (default 1000) for --seconds (default 20), each value stamped with its
# send time. Each client samples "handler clock minus stamp" for every record after
# the first two seconds' worth, and prints p50/p99/p99.9/max in microseconds with its
# CPU time. Results: one JSON line per client and run in --out, then a Markdown table
# of the medians over runs. Defaults: 3 runs.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
runs=3 rate=1000 seconds=20 out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --rate) rate="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        *) echo "bench-latency: unknown argument $1" >&2; exit 2 ;;
    esac
done
python="$repo_root/.venv/bin/python"
scripts/install-kafka.sh
scripts/setup-python.sh >/dev/null
[ -x /usr/bin/time ] || { echo "bench-latency: needs GNU time (apt-get install time)" >&2; exit 1; }
kafka_home="$(scripts/install-kafka.sh --print-home)"

weir_bin="$(scripts/build-e2e-bench.sh)"
echo "== building the librdkafka peer (benches/peers/rdkafka-peer)" >&2
cargo build --release --quiet --manifest-path benches/peers/rdkafka-peer/Cargo.toml
rd_bin="$repo_root/benches/peers/rdkafka-peer/target/release/rdkafka-peer"

dir="$(mktemp -d /tmp/weir-bench-latency.XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    scripts/stop-kafka.sh --dir "$dir/broker" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM
echo "== starting Kafka ($dir/broker)" >&2
bootstrap="$(scripts/start-kafka.sh --dir "$dir/broker" --heap 1g)"
[ -n "$out" ] || out="$dir/results.jsonl"
: >"$out"

count=$(( rate * seconds ))
warmup=$(( rate * 2 ))
for run in $(seq 1 "$runs"); do
    topic="latency-$run-$$"
    "$python" scripts/latency_producer.py --bootstrap "$bootstrap" --topic "$topic" --create
    pids=()
    /usr/bin/time -f '%e %U %S %M' -o "$dir/weir.time" "$weir_bin" broker --bootstrap "$bootstrap" \
        --topic "$topic" --partitions 1 --records "$count" --latency 1 --warmup "$warmup" \
        --max-wait-ms 10 --min-bytes 1 --max-poll-records 100 --timeout 120 >"$dir/weir.out" &
    pids+=($!)
    /usr/bin/time -f '%e %U %S %M' -o "$dir/librdkafka.time" "$rd_bin" --bootstrap "$bootstrap" \
        --topic "$topic" --partitions 1 --records "$count" --latency 1 --warmup "$warmup" \
        -X fetch.wait.max.ms=10 -X fetch.min.bytes=1 >"$dir/librdkafka.out" &
    pids+=($!)
    /usr/bin/time -f '%e %U %S %M' -o "$dir/java.time" java \
        "-Dlog4j2.configurationFile=$repo_root/scripts/kafka/tools-log4j2.properties" \
        -cp "$kafka_home/classes:$kafka_home/libs/*" WeirJavaPerf --bootstrap "$bootstrap" \
        --topic "$topic" --count "$count" --latency 1 --warmup "$warmup" \
        --property fetch.max.wait.ms=10 --property fetch.min.bytes=1 \
        --property max.poll.records=100 >"$dir/java.out" &
    pids+=($!)
    sleep 10
    echo "== run $run: producing $count records at $rate/s into $topic" >&2
    "$python" scripts/latency_producer.py --bootstrap "$bootstrap" --topic "$topic" \
        --rate "$rate" --count "$count"
    for p in "${pids[@]}"; do wait "$p" || { echo "bench-latency: a consumer failed (see $dir)" >&2; exit 1; }; done
    pids=()
    for client in weir librdkafka java; do
        python3 - "$client" "$run" "$dir/$client.out" "$dir/$client.time" "$rate" >>"$out" <<'PY'
import json, sys
client, run, o, tm, rate = sys.argv[1:]
summary = None
for line in open(o):
    line = line.strip()
    if line.startswith("{") and "summary" in line:
        summary = json.loads(line)["summary"]
lat = summary and summary.get("latency_us")
if not lat:
    sys.exit(f"bench-latency: {client} run {run} reported no latency")
wall, user, sys_, rss = open(tm).read().split()[-4:]
print(json.dumps({"client": client, "run": int(run), "rate": float(rate), "latency_us": lat,
                  "cpu_s": float(user) + float(sys_), "wall_s": float(wall),
                  "peak_rss_mib": int(rss) / 1024}))
PY
        tail -1 "$out" >&2
    done
done

echo "results: $out" >&2
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| client | p50 ms | p99 ms | p99.9 ms | max ms | CPU s per run | peak RSS MiB |")
print("|---|---:|---:|---:|---:|---:|---:|")
for c in dict.fromkeys(r["client"] for r in rows):
    sel = [r for r in rows if r["client"] == c]
    m = lambda f: statistics.median(f(r) for r in sel)
    print(f"| {c} | {m(lambda r: r['latency_us']['p50']) / 1000:.2f} | {m(lambda r: r['latency_us']['p99']) / 1000:.2f} | "
          f"{m(lambda r: r['latency_us']['p999']) / 1000:.2f} | {m(lambda r: r['latency_us']['max']) / 1000:.2f} | "
          f"{m(lambda r: r['cpu_s']):.2f} | {m(lambda r: r['peak_rss_mib']):.0f} |")
PY
