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

# The coordinator crate's live group tests drive a broker through their own small
# std::net driver and cannot use the root crate's harness, so they take the broker's
# address from the environment and are #[ignore]d in a plain `cargo test`. Here they
# run against a broker of their own, every time.
echo "== coordinator live group tests against tansu"
live_dir="$(mktemp -d /tmp/weir-test-tansu.XXXXXX)"
trap 'scripts/stop-tansu.sh --dir "$live_dir" >/dev/null 2>&1 || true; rm -rf "$live_dir"' EXIT
bootstrap="$(scripts/start-tansu.sh --dir "$live_dir")"
WEIR_TANSU_BOOTSTRAP="$bootstrap" cargo test -p weir-coordinator --test tansu_group -- --ignored --test-threads 1
