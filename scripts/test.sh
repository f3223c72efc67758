#!/usr/bin/env bash
# The whole test suite: the one command to run (CI runs it after .ci/run's setup).
#
#   scripts/test.sh
#
# Installs the broker and the librdkafka peer the integration tests drive when they
# are missing (scripts/install-tansu.sh, scripts/setup-python.sh).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

# Set-up first, so this one command works on a fresh machine: both scripts are
# idempotent and quiet when tansu and the Python venv are already there (the first
# tansu build takes 11 to 18 minutes on 2 cores). The integration tests themselves
# fail, never skip, when either is missing.
scripts/install-tansu.sh
scripts/setup-python.sh

echo "== cargo test --workspace --all-targets"
cargo test --workspace --all-targets

# --all-targets leaves doctests out: the crate docs' and the README's examples.
echo "== cargo test --workspace --doc"
cargo test --workspace --doc

# The coordinator crate's live group tests drive a broker through their own small
# std::net driver and cannot use the root crate's harness, so they take the broker's
# address from the environment and are #[ignore]d in a plain `cargo test`. Here they
# run against a broker of their own, every time.
echo "== coordinator live group tests against tansu"
live_dir="$(mktemp -d /tmp/weir-test-tansu.XXXXXX)"
trap 'scripts/stop-tansu.sh --dir "$live_dir" >/dev/null 2>&1 || true; rm -rf "$live_dir"' EXIT
bootstrap="$(scripts/start-tansu.sh --dir "$live_dir")"
WEIR_TANSU_BOOTSTRAP="$bootstrap" cargo test -p weir-coordinator --test tansu_group -- --ignored --test-threads 1
