#!/usr/bin/env bash
# Creates <repo>/.venv with the peer client the integration tests drive:
# confluent-kafka (Python bindings bundling librdkafka). Idempotent: does nothing when
# the venv already has the pinned version.
set -euo pipefail

CONFLUENT_KAFKA_VERSION="2.16.1"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${WEIR_VENV:-$repo_root/.venv}"
python_bin="${PYTHON:-python3}"

if [ -x "$venv/bin/python" ] &&
    "$venv/bin/python" -c "import confluent_kafka, sys; sys.exit(0 if confluent_kafka.__version__ == '$CONFLUENT_KAFKA_VERSION' else 1)" 2>/dev/null; then
    exit 0
fi

echo "setup-python: creating $venv with confluent-kafka==$CONFLUENT_KAFKA_VERSION"
if [ ! -x "$venv/bin/python" ]; then
    "$python_bin" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "confluent-kafka==$CONFLUENT_KAFKA_VERSION"
"$venv/bin/python" -c "import confluent_kafka; print('setup-python: confluent-kafka', confluent_kafka.__version__, 'librdkafka', confluent_kafka.libversion()[0])"
