#!/usr/bin/env bash
# Starts a single-node Apache Kafka in the background for demos, benchmarks and manual
# runs (the tests start their own through tests/support/kafka.rs), and prints its
# bootstrap address once it answers.
#
#   bootstrap="$(scripts/start-kafka.sh --dir DIR [--port P] [--heap 2g] [--security])"
#   scripts/stop-kafka.sh --dir DIR
#
# Installs Kafka first if needed (scripts/install-kafka.sh). Ports default to free
# ones. The broker's log is DIR/kafka.log, its stdout/stderr DIR/kafka.out, its pid
# DIR/kafka.pid; with --security it also listens for SASL_PLAINTEXT, SSL and SASL_SSL
# (ports in DIR/listeners; see scripts/kafka-config.sh).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="" port="" heap="1g" security=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dir) dir="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --heap) heap="$2"; shift 2 ;;
        --security) security=1; shift ;;
        *) echo "start-kafka: unknown argument $1 (--dir, --port, --heap, --security)" >&2; exit 2 ;;
    esac
done
[ -n "$dir" ] || { echo "start-kafka: --dir DIR is required" >&2; exit 2; }

"$repo_root/scripts/install-kafka.sh"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
[ -n "$port" ] || port="$(free_port)"
cport="$(free_port)"
extra=()
if [ -n "$security" ]; then
    sasl="$(free_port)" ssl="$(free_port)" sasl_ssl="$(free_port)"
    extra=(--sasl-port "$sasl" --ssl-port "$ssl" --sasl-ssl-port "$sasl_ssl")
fi
mkdir -p "$dir"
"$repo_root/scripts/kafka-config.sh" --dir "$dir" --port "$port" --controller-port "$cport" --heap "$heap" "${extra[@]}"
{
    echo "PLAINTEXT=127.0.0.1:$port"
    if [ -n "$security" ]; then
        echo "SASL_PLAINTEXT=127.0.0.1:$sasl"
        echo "SSL=127.0.0.1:$ssl"
        echo "SASL_SSL=127.0.0.1:$sasl_ssl"
    fi
} >"$dir/listeners"

mapfile -t args <"$dir/java.args"
nohup java "${args[@]}" >"$dir/kafka.out" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$dir/kafka.pid"

# Ready when the port accepts and the broker log says it started (bounded: 120 s).
for _ in $(seq 1 1200); do
    if ! kill -0 "$pid" 2>/dev/null; then
        tail -n 40 "$dir/kafka.log" "$dir/kafka.out" >&2 2>/dev/null || true
        echo "start-kafka: the broker exited; logs above (from $dir)" >&2
        exit 1
    fi
    if grep -q "Kafka Server started" "$dir/kafka.log" 2>/dev/null &&
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "127.0.0.1:$port"
        exit 0
    fi
    sleep 0.1
done
kill -9 "$pid" 2>/dev/null || true
tail -n 40 "$dir/kafka.log" >&2 2>/dev/null || true
echo "start-kafka: no broker on 127.0.0.1:$port within 120 s (logs in $dir)" >&2
exit 1
