#!/usr/bin/env bash
# The whole test suite: the one command to run (CI runs it after .ci/run's setup).
#
#   scripts/test.sh
#
# Needs the broker and the librdkafka peer the integration tests drive; install them
# once with scripts/install-tansu.sh and scripts/setup-python.sh (both idempotent).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

tansu="${TANSU_BIN:-${CARGO_HOME:-$HOME/.cargo}/bin/tansu}"
missing=0
if [ ! -x "$tansu" ]; then
    echo "test.sh: tansu not found at $tansu: run scripts/install-tansu.sh" >&2
    missing=1
fi
if [ ! -x "${WEIR_PYTHON:-$repo_root/.venv/bin/python}" ]; then
    echo "test.sh: no Python venv with confluent-kafka: run scripts/setup-python.sh" >&2
    missing=1
fi
[ "$missing" = 0 ] || exit 1

echo "== cargo test --workspace --all-targets"
cargo test --workspace --all-targets
