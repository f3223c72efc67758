#!/usr/bin/env bash
# End-to-end fetch benchmark against a real broker: weir vs librdkafka, same run.
#
#   scripts/bench-e2e.sh [--records N] [--partitions P] [--runs R] [--value-size B]
#                        [--settings "default wait0 tuned"]
#
# Starts tansu (memory storage, state under a fresh /tmp dir), produces N records
# (default 2,000,000) of B-byte values (default 100, null keys) into P partitions
# (default 4) with scripts/produce.py, then consumes the whole topic R times (default 3)
# with each client, alternating which goes first, once per setting in --settings:
#
#   default  both clients' defaults (fetch.max.wait.ms=500, fetch.min.bytes=1)
#   wait0    fetch.max.wait.ms=0 for both (tansu 0.6 holds a Fetch for about half of
#            max.wait even when it has the data; with 0 it answers at once)
#   tuned    wait0, plus for librdkafka fetch.queue.backoff.ms=0 and
#            queued.min.messages=1000000 (tansu returns whole 10,000-record batches,
#            which fill librdkafka's 100,000-message prefetch queue and trigger its
#            1 s fetch backoff); weir has no such knobs (its ring bounds memory)
#
# The clients:
#
#   weir        the e2e bench binary's `broker` mode (weir_fetch::Consumer, poll mode,
#               one thread; the handler touches every value and checks offsets)
#   librdkafka  scripts/consume_rdkafka.py --quiet (confluent-kafka; a Python loop
#               over consume(num_messages=10000) batches)
#
# Each client run is a whole process under /usr/bin/time: CPU seconds (user+sys) and
# peak RSS are the process's. records/s and MB/s (key+value bytes) run from the first
# to the last record, as both clients report them. tansu's own CPU time during each
# run is read from /proc, to tell when the broker is what limits both clients.
# Prints every run, then medians and the weir/librdkafka ratios. The broker is
# stopped on exit (trap). Needs scripts/install-tansu.sh and scripts/setup-python.sh.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
records=2000000
partitions=4
runs=3
value_size=100
settings="default wait0 tuned"
while [ $# -gt 0 ]; do
    case "$1" in
        --records) records="$2"; shift 2 ;;
        --partitions) partitions="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --value-size) value_size="$2"; shift 2 ;;
        --settings) settings="$2"; shift 2 ;;
        *) echo "bench-e2e: unknown argument $1" >&2; exit 2 ;;
    esac
done
python="$repo_root/.venv/bin/python"
[ -x "$python" ] || { echo "bench-e2e: no .venv; run scripts/setup-python.sh" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench-e2e: needs GNU time (apt-get install time)" >&2; exit 1; }

dir="$(mktemp -d /tmp/weir-bench-e2e.XXXXXX)"
cleanup() {
    "$repo_root/scripts/stop-tansu.sh" --dir "$dir" || true
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

weir_bin="$(scripts/build-e2e-bench.sh)"

echo "== starting tansu (memory storage, $dir)" >&2
bootstrap="$("$repo_root/scripts/start-tansu.sh" --dir "$dir" --storage memory)"
tansu_pid="$(cat "$dir/tansu.pid")"
topic="bench-e2e"
per=$(( records / partitions ))
total=$(( per * partitions ))

echo "== producing $total records of $value_size B into $partitions partitions" >&2
t0=$(date +%s.%N)
"$python" scripts/produce.py --bootstrap "$bootstrap" --topic "$topic" \
    --partitions "$partitions" --count "$per" --value-size "$value_size" --no-keys \
    --manifest "" --timeout 300
t1=$(date +%s.%N)
echo "   produced in $(python3 -c "print(round($t1 - $t0, 1))") s" >&2

# utime+stime of a pid, in seconds.
cpu_of() {
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

results="$dir/results.jsonl"
: >"$results"
run_client() { # client run setting
    local client="$1" run="$2" setting="$3"
    local out="$dir/out.$client.$run.$setting" tm="$dir/time.$client.$run.$setting"
    local c0 c1 wait=500 rdx=()
    case "$setting" in
        default) ;;
        wait0) wait=0 ;;
        tuned) wait=0; rdx=(-X fetch.queue.backoff.ms=0 -X queued.min.messages=1000000) ;;
        *) echo "bench-e2e: unknown setting $setting (default, wait0, tuned)" >&2; exit 2 ;;
    esac
    c0="$(cpu_of "$tansu_pid")"
    case "$client" in
        weir)
            /usr/bin/time -f '%e %U %S %M' -o "$tm" "$weir_bin" broker --bootstrap "$bootstrap" \
                --topic "$topic" --partitions "$partitions" --records "$total" --max-wait-ms "$wait" >"$out"
            ;;
        librdkafka)
            /usr/bin/time -f '%e %U %S %M' -o "$tm" "$python" scripts/consume_rdkafka.py \
                --bootstrap "$bootstrap" --topic "$topic" --quiet --timeout 600 -X "fetch.wait.max.ms=$wait" "${rdx[@]}" >"$out"
            ;;
    esac
    c1="$(cpu_of "$tansu_pid")"
    python3 - "$client" "$run" "$out" "$tm" "$c0" "$c1" "$total" "$setting" >>"$results" <<'PY'
import json, sys
client, run, out, tm, c0, c1, total, setting = sys.argv[1:]
summary = None
for line in open(out):
    line = line.strip()
    if line.startswith("{"):
        obj = json.loads(line)
        if "summary" in obj:
            summary = obj["summary"]
wall, user, sys_, rss = open(tm).read().split()[-4:]
if summary is None or summary["records"] != int(total):
    print(f"bench-e2e: {client} run {run} read {summary and summary['records']} of {total}", file=sys.stderr)
    sys.exit(1)
print(json.dumps({
    "client": client, "run": int(run), "setting": setting, "records": summary["records"],
    "seconds": summary["seconds"], "records_per_s": summary["records_per_s"],
    "mb_per_s": summary["mb_per_s"], "wall_s": float(wall),
    "cpu_s": float(user) + float(sys_), "peak_rss_mib": int(rss) / 1024,
    "tansu_cpu_s": float(c1) - float(c0),
}))
PY
    tail -1 "$results" >&2
}

for setting in $settings; do
    for run in $(seq 1 "$runs"); do
        if [ $((run % 2)) -eq 1 ]; then order="weir librdkafka"; else order="librdkafka weir"; fi
        for client in $order; do
            echo "== $setting run $run: $client" >&2
            run_client "$client" "$run" "$setting"
        done
    done
done

python3 - "$results" "$total" "$partitions" "$value_size" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
total, parts, vsize = sys.argv[2:]
cols = [("records_per_s", "records/s", "{:,.0f}"), ("mb_per_s", "MB/s", "{:.1f}"),
        ("seconds", "s first-last", "{:.2f}"), ("wall_s", "wall s", "{:.2f}"),
        ("cpu_s", "CPU s", "{:.2f}"), ("peak_rss_mib", "peak RSS MiB", "{:.1f}"),
        ("tansu_cpu_s", "tansu CPU s", "{:.2f}")]
for setting in dict.fromkeys(r["setting"] for r in rows):
    sel = [r for r in rows if r["setting"] == setting]
    med = {}
    for c in ("weir", "librdkafka"):
        med[c] = {k: statistics.median(r[k] for r in sel if r["client"] == c) for k, _, _ in cols}
    print(f"\n{setting}: medians of {len(sel) // 2} runs each; {total} records of {vsize} B, "
          f"{parts} partitions, tansu memory storage")
    print(f"{'':<14}" + "".join(f"{h:>15}" for _, h, _ in cols))
    for c in ("weir", "librdkafka"):
        print(f"{c:<14}" + "".join(f"{f.format(med[c][k]):>15}" for k, _, f in cols))
    ratio = {k: med["weir"][k] / med["librdkafka"][k] if med["librdkafka"][k] else float("nan") for k, _, _ in cols}
    print(f"{'weir/rdkafka':<14}" + "".join(f"{ratio[k]:>15.2f}" for k, _, _ in cols))
PY
