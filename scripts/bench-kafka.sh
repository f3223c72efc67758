#!/usr/bin/env bash
# End-to-end consume benchmark against Apache Kafka: weir, librdkafka (native) and the
# Java consumer read the same topics in one run.
#
#   scripts/bench-kafka.sh [--runs R] [--sizes "100 1024"] [--codecs "none lz4 zstd"]
#                          [--partitions "1 8"] [--clients "weir librdkafka java"]
#                          [--bytes MB] [--out FILE.jsonl] [--tls]
#   scripts/bench-kafka.sh --replay [--records N] [--runs R] [--partitions "1 8"] ...
#
# Starts a single-node Kafka (scripts/start-kafka.sh, 2 GiB heap, a fresh /tmp dir),
# produces one topic per (value size, codec, partitions) with librdkafka
# (scripts/produce.py: null keys, log-like text values of the given size that compress
# about 3x, about --bytes MB of values per topic, default 200), then reads each whole topic R times (default 3) with every
# client, rotating which goes first. The clients, each a whole process timed by GNU
# time (CPU = user+sys, peak RSS), each reading every partition from the beginning by
# manual assignment at its defaults (fetch.max.wait.ms 500, fetch.min.bytes 1,
# max.partition.fetch.bytes 1 MiB, fetch.max.bytes 50 MiB), and each touching every
# value (length, first and last byte) and checking offsets:
#
#   weir        the e2e bench binary's `broker` mode (weir_fetch::Consumer, poll mode,
#               one thread)
#   librdkafka  benches/peers/rdkafka-peer: librdkafka 2.12 called natively through
#               rust-rdkafka's BaseConsumer (built once outside weir's workspace)
#   librdkafka-tuned  the same, with -X fetch.queue.backoff.ms=0 and
#               queued.min.messages=1000000 (not in the default --clients)
#   java        tests/java/WeirJavaPerf.java: KafkaConsumer 4.4, default JVM settings
#   krafka      benches/peers/krafka-peer: krafka 0.28 (pure Rust, on Tokio), no group,
#               assigned by hand, defaults (built once outside weir's workspace; not in
#               the default --clients)
#
# records/s and MB/s (key+value bytes) run from the first record to the last, as each
# client reports them. Broker CPU per run is read from /proc. Results: one JSON line per
# run in --out (default: a file in the run's dir, printed at the end), then a Markdown
# table of medians and ratios on stdout. The broker is stopped on exit.
#
# --tls: the broker also gets its security listeners (scripts/start-kafka.sh
# --security) and the clients become "weir weir-tls librdkafka librdkafka-tls": each
# reads every topic over PLAINTEXT and over the SSL listener (mTLS with the broker's
# test CA and client certificate; librdkafka through OpenSSL), in one run. Topics are
# produced over PLAINTEXT either way.
#
# --replay reads from benches/e2e.rs's replay server instead of Kafka (`e2e serve`, its
# own process, one per partition count): a never-ending topic `bench` of 100-byte
# uncompressed values in 500-record batches, every Fetch answered at once from memory.
# No broker is in the way, so this is where the three clients' ceilings meet. Each
# client reads --records records (default 5,000,000); --sizes and --codecs do not
# apply, and "broker CPU s" is the replay server's.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
runs=3 sizes="100 1024" codecs="none lz4 zstd" partition_list="1 8"
clients="weir librdkafka java" mbytes=200 out="" replay=0 replay_records=5000000 tls=0
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --sizes) sizes="$2"; shift 2 ;;
        --codecs) codecs="$2"; shift 2 ;;
        --partitions) partition_list="$2"; shift 2 ;;
        --clients) clients="$2"; shift 2 ;;
        --bytes) mbytes="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --replay) replay=1; shift ;;
        --tls) tls=1; shift ;;
        --records) replay_records="$2"; shift 2 ;;
        *) echo "bench-kafka: unknown argument $1" >&2; exit 2 ;;
    esac
done
python="$repo_root/.venv/bin/python"
scripts/install-kafka.sh
scripts/setup-python.sh >/dev/null
[ -x /usr/bin/time ] || { echo "bench-kafka: needs GNU time (apt-get install time)" >&2; exit 1; }
kafka_home="$(scripts/install-kafka.sh --print-home)"

weir_bin="$(scripts/build-e2e-bench.sh)"
case " $clients " in
    *" librdkafka"*)
        echo "== building the librdkafka peer (benches/peers/rdkafka-peer; the first build compiles librdkafka)" >&2
        cargo build --release --quiet --manifest-path benches/peers/rdkafka-peer/Cargo.toml
        ;;
esac
rd_bin="$repo_root/benches/peers/rdkafka-peer/target/release/rdkafka-peer"
case " $clients " in
    *" krafka "*)
        echo "== building the krafka peer (benches/peers/krafka-peer)" >&2
        cargo build --release --quiet --manifest-path benches/peers/krafka-peer/Cargo.toml
        ;;
esac
kr_bin="$repo_root/benches/peers/krafka-peer/target/release/krafka-peer"

dir="$(mktemp -d /tmp/weir-bench-kafka.XXXXXX)"
serve_pid=""
stop_replay() { # closing the server's stdin ends it
    if [ -n "$serve_pid" ]; then
        exec 9>&-
        wait "$serve_pid" 2>/dev/null || true
        serve_pid=""
    fi
}
cleanup() {
    stop_replay
    [ "$replay" = 1 ] || scripts/stop-kafka.sh --dir "$dir/broker" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM
start_replay() { # partitions: sets bootstrap and broker_pid to a fresh replay server
    rm -f "$dir/serve-in" "$dir/serve-port"
    mkfifo "$dir/serve-in"
    "$weir_bin" serve --partitions "$1" <"$dir/serve-in" >"$dir/serve-port" &
    serve_pid=$!
    exec 9>"$dir/serve-in"
    local i
    for i in $(seq 1 100); do
        [ -s "$dir/serve-port" ] && break
        sleep 0.1
    done
    [ -s "$dir/serve-port" ] || { echo "bench-kafka: the replay server did not start" >&2; exit 1; }
    bootstrap="127.0.0.1:$(head -n 1 "$dir/serve-port")"
    broker_pid="$serve_pid"
}
if [ "$replay" = 0 ]; then
    echo "== starting Kafka ($dir/broker)" >&2
    if [ "$tls" = 1 ]; then
        bootstrap="$(scripts/start-kafka.sh --dir "$dir/broker" --heap 2g --security)"
    else
        bootstrap="$(scripts/start-kafka.sh --dir "$dir/broker" --heap 2g)"
    fi
    broker_pid="$(cat "$dir/broker/kafka.pid")"
fi
# With --tls, the -tls clients read over the SSL listener.
tls_from="" weir_tls=() rd_tls=()
if [ "$tls" = 1 ]; then
    [ "$clients" = "weir librdkafka java" ] && clients="weir weir-tls librdkafka librdkafka-tls"
    tls_from="$(sed -n 's/^SSL=//p' "$dir/broker/listeners")"
    t="$dir/broker/tls"
    weir_tls=(--tls-dir "$t")
    rd_tls=(-X security.protocol=SSL -X "ssl.ca.location=$t/ca.pem"
        -X "ssl.certificate.location=$t/client.pem" -X "ssl.key.location=$t/client.key")
fi
[ -n "$out" ] || out="$dir/results.jsonl"
: >"$out"

cpu_of() { # utime+stime of a pid, in seconds
    python3 - "$1" <<'PY'
import os, sys
try:
    s = open(f"/proc/{sys.argv[1]}/stat").read()
    f = s[s.rfind(")") + 2:].split()
    print((int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK"))
except OSError:
    print(0)
PY
}

run_client() { # client topic partitions total size codec run
    local client="$1" topic="$2" parts="$3" total="$4" size="$5" codec="$6" run="$7"
    local o="$dir/out" tm="$dir/time" c0 c1
    c0="$(cpu_of "$broker_pid")"
    case "$client" in
        weir)
            /usr/bin/time -f '%e %U %S %M' -o "$tm" "$weir_bin" broker --bootstrap "$bootstrap" \
                --topic "$topic" --partitions "$parts" --records "$total" >"$o" ;;
        weir-tls)
            /usr/bin/time -f '%e %U %S %M' -o "$tm" "$weir_bin" broker --bootstrap "$tls_from" \
                --topic "$topic" --partitions "$parts" --records "$total" "${weir_tls[@]}" >"$o" ;;
        librdkafka)
            /usr/bin/time -f '%e %U %S %M' -o "$tm" "$rd_bin" --bootstrap "$bootstrap" \
                --topic "$topic" --partitions "$parts" --records "$total" >"$o" ;;
        librdkafka-tls)
            /usr/bin/time -f '%e %U %S %M' -o "$tm" "$rd_bin" --bootstrap "$tls_from" \
                --topic "$topic" --partitions "$parts" --records "$total" "${rd_tls[@]}" >"$o" ;;
        librdkafka-tuned)
            # librdkafka at its defaults stops fetching for fetch.queue.backoff.ms
            # (1 s) whenever its prefetch queue holds queued.min.messages (100,000):
            # a consumer faster than the broker pays that pause again and again.
            # This variant removes it, as a user tuning for throughput would.
            /usr/bin/time -f '%e %U %S %M' -o "$tm" "$rd_bin" --bootstrap "$bootstrap" \
                --topic "$topic" --partitions "$parts" --records "$total" \
                -X fetch.queue.backoff.ms=0 -X queued.min.messages=1000000 >"$o" ;;
        krafka)
            /usr/bin/time -f '%e %U %S %M' -o "$tm" "$kr_bin" --bootstrap "$bootstrap" \
                --topic "$topic" --partitions "$parts" --records "$total" >"$o" ;;
        java)
            /usr/bin/time -f '%e %U %S %M' -o "$tm" java \
                "-Dlog4j2.configurationFile=$repo_root/scripts/kafka/tools-log4j2.properties" \
                -cp "$kafka_home/classes:$kafka_home/libs/*" WeirJavaPerf --bootstrap "$bootstrap" \
                --topic "$topic" --count "$total" >"$o" ;;
        *) echo "bench-kafka: unknown client $client" >&2; exit 2 ;;
    esac
    c1="$(cpu_of "$broker_pid")"
    python3 - "$client" "$run" "$o" "$tm" "$c0" "$c1" "$total" "$size" "$codec" "$parts" >>"$out" <<'PY'
import json, sys
client, run, o, tm, c0, c1, total, size, codec, parts = sys.argv[1:]
summary = None
for line in open(o):
    line = line.strip()
    if line.startswith("{"):
        obj = json.loads(line)
        if "summary" in obj:
            summary = obj["summary"]
wall, user, sys_, rss = open(tm).read().split()[-4:]
if summary is None or summary["records"] < int(total):
    print(f"bench-kafka: {client} run {run} read {summary and summary['records']} of {total}", file=sys.stderr)
    sys.exit(1)
cpu = float(user) + float(sys_)
print(json.dumps({
    "client": client, "run": int(run), "value_size": int(size), "codec": codec,
    "partitions": int(parts), "records": summary["records"], "seconds": summary["seconds"],
    "records_per_s": summary["records_per_s"], "mb_per_s": summary["mb_per_s"],
    "wall_s": float(wall), "cpu_s": cpu, "user_s": float(user), "sys_s": float(sys_),
    "cpu_s_per_m": cpu / (int(total) / 1e6),
    "cpu_s_per_gb": cpu / (int(total) * int(size) / 1e9),
    "peak_rss_mib": int(rss) / 1024, "broker_cpu_s": float(c1) - float(c0),
}))
PY
    tail -1 "$out" >&2
}

run_all() { # topic partitions total size codec: every client, --runs times, rotating
    local order run i client
    read -r -a order <<<"$clients"
    for run in $(seq 1 "$runs"); do
        for i in "${!order[@]}"; do
            client="${order[$(( (i + run) % ${#order[@]} ))]}"
            echo "== $1 run $run: $client" >&2
            run_client "$client" "$1" "$2" "$3" "$4" "$5" "$run"
        done
    done
}

if [ "$replay" = 1 ]; then
    sizes="" # the replay server's values are 100 B, uncompressed
    for parts in $partition_list; do
        echo "== replay server, $parts partitions" >&2
        start_replay "$parts"
        run_all bench "$parts" "$replay_records" 100 none
        stop_replay
    done
fi

for size in $sizes; do
    per_total=$(( mbytes * 1000000 / size ))
    for codec in $codecs; do
        for parts in $partition_list; do
            topic="bench-$size-$codec-$parts"
            per=$(( per_total / parts ))
            total=$(( per * parts ))
            echo "== producing $total records of $size B ($codec) into $topic ($parts partitions)" >&2
            "$python" scripts/produce.py --bootstrap "$bootstrap" --topic "$topic" \
                --partitions "$parts" --count "$per" --value-size "$size" --no-keys \
                --compression "$codec" --log-text --omit-values --manifest "" --timeout 600 \
                -X queue.buffering.max.kbytes=1048576
            run_all "$topic" "$parts" "$total" "$size" "$codec"
        done
    done
done

echo "results: $out" >&2
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
clients = list(dict.fromkeys(r["client"] for r in rows))
keys = list(dict.fromkeys((r["value_size"], r["codec"], r["partitions"]) for r in rows))
def med(sel, k):
    vals = [r[k] for r in sel if r[k] is not None]
    return statistics.median(vals) if vals else float("nan")
def div(a, b):
    return a / b if b else float("nan")
print("| value | codec | parts | client | records/s | MB/s | CPU s / M rec | CPU s / GB of values | peak RSS MiB | broker CPU s |")
print("|---:|---|---:|---|---:|---:|---:|---:|---:|---:|")
ratios = []
for (size, codec, parts) in keys:
    m = {}
    for c in clients:
        sel = [r for r in rows if r["client"] == c and (r["value_size"], r["codec"], r["partitions"]) == (size, codec, parts)]
        if not sel:
            continue
        m[c] = {k: med(sel, k) for k in ("records_per_s", "mb_per_s", "cpu_s_per_m", "cpu_s_per_gb", "peak_rss_mib", "broker_cpu_s")}
        print(f"| {size} B | {codec} | {parts} | {c} | {m[c]['records_per_s']:,.0f} | {m[c]['mb_per_s']:.1f} | "
              f"{m[c]['cpu_s_per_m']:.3f} | {m[c]['cpu_s_per_gb']:.3f} | {m[c]['peak_rss_mib']:.0f} | {m[c]['broker_cpu_s']:.2f} |")
    if "weir" in m:
        for c in clients:
            if c != "weir" and c in m:
                ratios.append((size, codec, parts, c,
                               div(m["weir"]["records_per_s"], m[c]["records_per_s"]),
                               div(m[c]["cpu_s_per_m"], m["weir"]["cpu_s_per_m"]),
                               div(m["weir"]["peak_rss_mib"], m[c]["peak_rss_mib"])))
print()
print("| value | codec | parts | weir vs | records/s ratio | records per CPU-s ratio | RSS ratio |")
print("|---:|---|---:|---|---:|---:|---:|")
for size, codec, parts, c, t, cpu, rss in ratios:
    print(f"| {size} B | {codec} | {parts} | {c} | {t:.2f}x | {cpu:.2f}x | {rss:.2f} |")
PY
