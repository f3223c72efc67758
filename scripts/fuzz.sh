#!/usr/bin/env bash
# Fuzz weir-protocol's decoders: every cargo-fuzz target (libFuzzer) for SECONDS each,
# or with --afl the same target bodies under AFL++. Fails on any crash, hang or
# over-sized allocation.
#
#   scripts/fuzz.sh [--afl] [SECONDS] [TARGET...]
#
#   SECONDS   time per target (default 60); CI smoke uses 20
#   TARGET    record_batches record_roundtrip fetch_response responses frame txn_filter
#             consumer_protocol sasl
#             (default: all, run one after the other)
#   --afl     run the AFL++ harness (fuzz/afl) instead of libFuzzer
#
# Each target starts from a copy of fuzz/seeds/<target> in fuzz/corpus/<target>
# (gitignored; libFuzzer keeps adding to it across runs; AFL output goes to
# fuzz/corpus/afl/<target>, fresh each run). Crashes land in fuzz/artifacts/<target>/
# (libFuzzer) or fuzz/corpus/afl/<target>/default/crashes/ (AFL). To keep one as a
# regression, minimise it (cargo +nightly fuzz tmin TARGET FILE) and save it under
# fuzz/regressions/<target>/; `cargo test --manifest-path fuzz/Cargo.toml` replays
# seeds and regressions.
#
# Needs a nightly toolchain and cargo-fuzz (installed here if missing, about 1.5 min)
# for libFuzzer; cargo-afl for --afl (installed if missing, about 2 min with AFL++).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

all_targets=(record_batches record_roundtrip fetch_response responses frame txn_filter consumer_protocol sasl)
mode=libfuzzer
seconds=60
targets=()
for arg in "$@"; do
    case "$arg" in
        --afl) mode=afl ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        ''|*[!0-9]*)
            found=0
            for t in "${all_targets[@]}"; do [ "$t" = "$arg" ] && found=1; done
            if [ "$found" = 0 ]; then
                echo "fuzz.sh: unknown target or option '$arg' (targets: ${all_targets[*]})" >&2
                exit 2
            fi
            targets+=("$arg") ;;
        *) seconds="$arg" ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

# Inputs larger than this are not generated; seeds are far smaller.
max_len=32768
logs="$repo_root/fuzz/artifacts/logs"
mkdir -p "$logs"
summary=()
failed=0
started=$SECONDS

seed_corpus() { # seed_corpus TARGET DIR: copy the committed seeds into DIR
    mkdir -p "$2"
    cp -n "fuzz/seeds/$1/"* "$2/" 2>/dev/null || true
}

if [ "$mode" = libfuzzer ]; then
    if ! cargo +nightly --version >/dev/null 2>&1; then
        echo "fuzz.sh: no nightly toolchain (rustup toolchain install nightly)" >&2
        exit 1
    fi
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "== installing cargo-fuzz"
        cargo install cargo-fuzz --locked
    fi
    echo "== cargo +nightly fuzz build (all targets)"
    build_start=$SECONDS
    cargo +nightly fuzz build
    echo "   built in $((SECONDS - build_start)) s"
    for t in "${targets[@]}"; do
        corpus="fuzz/corpus/$t"
        seed_corpus "$t" "$corpus"
        log="$logs/$t.libfuzzer.log"
        echo "== $t: libFuzzer for ${seconds} s (log: ${log#"$repo_root"/})"
        t0=$SECONDS
        rc=0
        # -malloc_limit_mb works through ASan's hooks (cargo-fuzz's default
        # sanitizer); the targets' own allocator also aborts above 32 MiB.
        # Saved regressions are replayed first (an extra, read-only corpus dir).
        extra=()
        [ -d "fuzz/regressions/$t" ] && extra=("fuzz/regressions/$t")
        cargo +nightly fuzz run "$t" "$corpus" "${extra[@]}" -- \
            -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
            -rss_limit_mb=1024 -malloc_limit_mb=256 -print_final_stats=1 \
            >"$log" 2>&1 || rc=$?
        execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
        result=ok
        if [ "$rc" != 0 ]; then
            result="FAILED (exit $rc)"
            failed=1
            echo "---- $t failed; end of its log:"
            tail -40 "$log"
            echo "---- artifacts: $(ls fuzz/artifacts/"$t" 2>/dev/null | tr '\n' ' ')"
        fi
        summary+=("$(printf '%-17s libfuzzer %4ss  execs=%-10s cov=%-6s %s' \
            "$t" "$((SECONDS - t0))" "${execs:-?}" "${cov:-?}" "$result")")
    done
else
    if ! cargo afl --version >/dev/null 2>&1; then
        echo "== installing cargo-afl"
        cargo install cargo-afl --locked
    fi
    echo "== cargo afl build --release (fuzz/afl)"
    build_start=$SECONDS
    # A target dir of its own, so it never waits on (or for) cargo-fuzz's builds.
    cargo afl build --release --manifest-path fuzz/afl/Cargo.toml --target-dir fuzz/target/afl
    echo "   built in $((SECONDS - build_start)) s"
    bin="fuzz/target/afl/release/weir-afl"
    export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
    # The machine is shared: do not insist on a free core of our own.
    export AFL_NO_AFFINITY=1
    for t in "${targets[@]}"; do
        out="fuzz/corpus/afl/$t"
        rm -rf "$out"
        mkdir -p "$out"
        log="$logs/$t.afl.log"
        echo "== $t: AFL++ for ${seconds} s (log: ${log#"$repo_root"/})"
        t0=$SECONDS
        rc=0
        cargo afl fuzz -i "fuzz/seeds/$t" -o "$out" -V "$seconds" -t 10000 -m none \
            -g 1 -G "$max_len" -- "$bin" "$t" >"$log" 2>&1 || rc=$?
        stats="$out/default/fuzzer_stats"
        stat() { grep "^$1 *:" "$stats" 2>/dev/null | sed 's/.*: *//'; }
        crashes=$(find "$out/default/crashes" -type f ! -name README.txt 2>/dev/null | wc -l)
        hangs=$(find "$out/default/hangs" -type f 2>/dev/null | wc -l)
        result=ok
        if [ "$rc" != 0 ] || [ ! -f "$stats" ] || [ "$crashes" != 0 ] || [ "$hangs" != 0 ]; then
            result="FAILED (exit $rc, crashes $crashes, hangs $hangs)"
            failed=1
            echo "---- $t failed; end of its log:"
            tail -30 "$log"
            [ "$crashes" = 0 ] || ls "$out/default/crashes"
        fi
        summary+=("$(printf '%-17s afl       %4ss  execs=%-10s paths=%-6s %s' \
            "$t" "$((SECONDS - t0))" "$(stat execs_done)" "$(stat corpus_count)" "$result")")
    done
fi

echo
echo "== summary ($mode, ${seconds} s per target, $((SECONDS - started)) s in all)"
printf '%s\n' "${summary[@]}"
exit "$failed"
