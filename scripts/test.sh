#!/usr/bin/env bash
# The whole test suite: the one command to run (CI runs it after .ci/run's setup).
#
#   scripts/test.sh
#
# The integration tests start their own Apache Kafka brokers (tests/support/kafka.rs)
# and produce with librdkafka; this script first installs both when they are missing
# (scripts/install-kafka.sh, scripts/setup-python.sh: idempotent, quiet when done).
#
#   WEIR_TEST_BROKER=tansu scripts/test.sh            the same suite against tansu
#                                                     (scripts/install-tansu.sh first;
#                                                     its build takes 11-18 minutes)
#   WEIR_TEST_BOOTSTRAP=host:port scripts/test.sh     the shared-broker tests against an
#                                                     existing cluster (tests that kill
#                                                     or reconfigure a broker still
#                                                     start their own)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

# Set-up first, so this one command works on a fresh machine. The integration tests
# themselves fail, never skip, when a broker or the Python environment is missing.
broker="${WEIR_TEST_BROKER:-kafka}"
case "$broker" in
    kafka) scripts/install-kafka.sh ;;
    tansu) scripts/install-tansu.sh ;;
    *) echo "test.sh: WEIR_TEST_BROKER=$broker: use kafka (default) or tansu" >&2; exit 2 ;;
esac
scripts/setup-python.sh

echo "== cargo test --workspace --all-targets (broker: $broker)"
cargo test --workspace --all-targets

# --all-targets leaves doctests out: the crate docs' and the README's examples.
echo "== cargo test --workspace --doc"
cargo test --workspace --doc

# The coordinator crate's live group tests drive a broker through their own small
# std::net driver and cannot use the root crate's harness, so they take the broker's
# address from the environment and are #[ignore]d in a plain `cargo test`. Here they
# run against a broker of their own, every time.
echo "== coordinator live group tests against $broker"
live_dir="$(mktemp -d /tmp/weir-test-live.XXXXXX)"
trap 'scripts/stop-$broker.sh --dir "$live_dir" >/dev/null 2>&1 || true; rm -rf "$live_dir"' EXIT
bootstrap="$(scripts/start-"$broker".sh --dir "$live_dir")"
WEIR_LIVE_BOOTSTRAP="$bootstrap" WEIR_LIVE_BROKER="$broker" \
    cargo test -p weir-coordinator --test live_group -- --ignored --test-threads 1
