#!/usr/bin/env bash
# The crypto-provider comparison of BENCHMARKS.md ("TLS"): builds
# benches/peers/tls-provider with ring and with aws-lc-rs from clean (timed), makes a
# test CA and certificate with openssl, and prints each provider's TLS 1.3 decrypt and
# encrypt speed per cipher suite, twice.
#
#   scripts/bench-tls-provider.sh
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
crate="$repo_root/benches/peers/tls-provider"
work="$(mktemp -d /tmp/weir-tls-provider.XXXXXX)"
trap 'rm -rf "$work"' EXIT
(
    cd "$work"
    q() { "$@" >/dev/null 2>&1 || { echo "bench-tls-provider: failed: $*" >&2; exit 1; }; }
    q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -keyout ca.key -out ca.pem -subj /CN=bench-ca
    q openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout key.pem \
        -out leaf.csr -subj /CN=localhost
    printf 'subjectAltName=DNS:localhost\n' >ext
    q openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -out cert.pem -extfile ext
)
for feature in ring aws; do
    target="$work/target-$feature"
    (cd "$crate" && cargo fetch --quiet)
    echo "== $feature: clean release build" >&2
    /usr/bin/time -f "   %e s wall, %U user + %S sys" cargo build --release --quiet \
        --manifest-path "$crate/Cargo.toml" --no-default-features --features "$feature" \
        --target-dir "$target"
    for run in 1 2; do
        echo "== $feature run $run" >&2
        "$target/release/tls-provider" "$work"
    done
done
