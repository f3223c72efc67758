#!/usr/bin/env bash
# Installs the tansu broker (a Kafka-compatible broker from crates.io) into
# ~/.cargo/bin, the broker every real-broker integration test runs against.
# Idempotent and quiet when the pinned version is already installed; a build from
# scratch takes 11-18 minutes on 2 cores.
#   dynostore: the memory:// storage engine (fast, for most tests)
#   libsql:    the sqlite:// storage engine (data survives a broker restart)
set -euo pipefail

TANSU_VERSION="0.6.0"
TANSU_FEATURES="dynostore,libsql"

cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
tansu="$cargo_bin/tansu"

installed() {
    [ -x "$tansu" ] || return 1
    # The binary says "tansu 0.6.0"; `cargo install --list` says "tansu v0.6.0:".
    [ "$("$tansu" --version 2>/dev/null)" = "tansu $TANSU_VERSION" ] && return 0
    cargo install --list 2>/dev/null | grep -qx "tansu v$TANSU_VERSION:"
}

if installed; then
    exit 0
fi

echo "install-tansu: building tansu $TANSU_VERSION (features $TANSU_FEATURES); this takes 11-18 minutes"
cargo install tansu --version "=$TANSU_VERSION" --locked --features "$TANSU_FEATURES"
"$tansu" --version 2>/dev/null || true
echo "install-tansu: installed $tansu"
