#!/usr/bin/env bash
# Starts a tansu broker in the background on 127.0.0.1 and prints its bootstrap
# address (host:port) on stdout once it answers Kafka requests.
#
#   scripts/start-tansu.sh [--port N] [--storage memory|sqlite] [--dir DIR]
#
#   --port     listen port (default: a free one picked by the kernel)
#   --storage  memory (default; memory://tansu/, lost on stop) or sqlite
#              (DIR/tansu.db, survives a restart)
#   --dir      state directory (default <repo>/.tansu): tansu.pid, tansu.log,
#              bootstrap, tansu.db
#
# Stop it with scripts/stop-tansu.sh [--dir DIR]. tansu does not auto-create topics
# (a produce to a missing topic waits until it times out); create them first:
# scripts/produce.py creates them through the Admin API (CreateTopics), which tansu
# supports; `tansu topic create NAME --partitions N --broker tcp://HOST:PORT` works too.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port=""
storage="memory"
dir="$repo_root/.tansu"
while [ $# -gt 0 ]; do
    case "$1" in
        --port) port="$2"; shift 2 ;;
        --storage) storage="$2"; shift 2 ;;
        --dir) dir="$2"; shift 2 ;;
        *) echo "start-tansu: unknown argument $1" >&2; exit 2 ;;
    esac
done

tansu="${TANSU_BIN:-${CARGO_HOME:-$HOME/.cargo}/bin/tansu}"
if [ ! -x "$tansu" ]; then
    echo "start-tansu: $tansu not found; run scripts/install-tansu.sh" >&2
    exit 1
fi
python="$repo_root/.venv/bin/python"

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
if [ -f "$dir/tansu.pid" ] && kill -0 "$(cat "$dir/tansu.pid")" 2>/dev/null; then
    echo "start-tansu: already running (pid $(cat "$dir/tansu.pid")) at $(cat "$dir/bootstrap")" >&2
    exit 1
fi

if [ -z "$port" ]; then
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
fi

case "$storage" in
    memory) engine="memory://tansu/" ;;
    # tansu resolves a sqlite URL's path against its working directory (it runs in $dir).
    sqlite) engine="sqlite:///tansu.db" ;;
    *) echo "start-tansu: --storage takes memory or sqlite" >&2; exit 2 ;;
esac

# tansu also reads CLUSTER_ID, LISTENER_URL, ... from the environment and a .env file
# in its working directory; every setting is passed explicitly so neither matters.
(
    cd "$dir"
    exec "$tansu" broker \
        --cluster-id weir-test \
        --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine "$engine" \
        </dev/null >>"$dir/tansu.log" 2>&1
) &
pid=$!
echo "$pid" >"$dir/tansu.pid"
echo "127.0.0.1:$port" >"$dir/bootstrap"

# Ready when a Metadata request is answered (through librdkafka when the venv exists,
# else a TCP connect).
deadline=$((SECONDS + 30))
while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "start-tansu: tansu exited; last lines of $dir/tansu.log:" >&2
        tail -20 "$dir/tansu.log" >&2
        exit 1
    fi
    if [ -x "$python" ]; then
        if "$python" - "127.0.0.1:$port" <<'PY' 2>/dev/null; then break; fi
import sys
from confluent_kafka.admin import AdminClient
md = AdminClient({"bootstrap.servers": sys.argv[1]}).list_topics(timeout=2)
sys.exit(0 if md.brokers else 1)
PY
    elif (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        break
    fi
    if [ $SECONDS -ge $deadline ]; then
        echo "start-tansu: no answer on 127.0.0.1:$port within 30s; see $dir/tansu.log" >&2
        kill "$pid" 2>/dev/null || true
        exit 1
    fi
    sleep 0.2
done
echo "127.0.0.1:$port"
