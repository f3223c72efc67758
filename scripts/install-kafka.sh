#!/usr/bin/env bash
# Installs a real Apache Kafka (broker, CLI tools, Java client) for the tests, demos,
# benchmarks and CI, from Maven Central, and compiles the Java helper programs in
# tests/java against it. Idempotent: a second run does nothing and prints nothing.
#
#   scripts/install-kafka.sh                 install (or check) quietly
#   scripts/install-kafka.sh --print-home    ... then print $WEIR_KAFKA_HOME
#   scripts/install-kafka.sh --print-classes ... then print the helpers' classes dir
#
# Layout of $WEIR_KAFKA_HOME (default $HOME/.cache/weir/kafka-<version>, version from
# scripts/kafka/pom.xml):
#   libs/*.jar           every runtime jar; classpath "libs/*"
#   libs/.installed      sha256 of the pom.xml the jars came from (a changed POM
#                        re-copies the jars)
#   classes-<hash>/      tests/java/*.java compiled with javac; <hash> is the first 16
#                        hex digits of a sha256 over the Kafka version and the sources,
#                        so checkouts with different sources sharing one cache never
#                        overwrite each other's classes
#   classes -> classes-<hash>   symlink to the last one built (what the harness uses)
#
# Needs java and javac 17+ and mvn (Maven 3.8+) on PATH; the first run downloads
# ~80 MB into ~/.m2 and copies 54 MB of jars (45 s on a fresh machine
# with an empty ~/.m2).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/kafka/env.sh
. "$repo_root/scripts/kafka/env.sh"

print=""
case "${1:-}" in
    "") ;;
    --print-home) print=home ;;
    --print-classes) print=classes ;;
    *) echo "install-kafka: unknown argument $1 (--print-home, --print-classes)" >&2; exit 2 ;;
esac

kafka_require_java
for tool in javac mvn sha256sum; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        case "$tool" in
            javac) echo "install-kafka: javac not found: a JDK 17+ is needed, not just a JRE (Debian: apt-get install openjdk-17-jdk-headless)" >&2 ;;
            mvn) echo "install-kafka: mvn not found: Maven 3.8+ is needed to fetch Kafka from Maven Central (Debian: apt-get install maven)" >&2 ;;
            *) echo "install-kafka: $tool not found" >&2 ;;
        esac
        exit 1
    fi
done

pom_hash="$(sha256sum "$kafka_pom" | cut -c1-64)"
shopt -s nullglob
sources=("$repo_root"/tests/java/*.java)
shopt -u nullglob
src_hash="$(
    {
        echo "kafka $KAFKA_VERSION"
        for f in "${sources[@]}"; do
            echo "== ${f##*/}"
            cat "$f"
        done
    } | sha256sum | cut -c1-16
)"
classes_dir="$WEIR_KAFKA_HOME/classes-$src_hash"

up_to_date() {
    [ -f "$KAFKA_LIBS/.installed" ] &&
        [ "$(cat "$KAFKA_LIBS/.installed")" = "$pom_hash" ] &&
        [ -f "$classes_dir/.complete" ] &&
        [ "$(readlink "$KAFKA_CLASSES" 2>/dev/null)" = "classes-$src_hash" ]
}

report() {
    case "$print" in
        home) echo "$WEIR_KAFKA_HOME" ;;
        classes) echo "$KAFKA_CLASSES" ;;
    esac
}

if up_to_date; then
    report
    exit 0
fi

mkdir -p "$WEIR_KAFKA_HOME"
# One installer at a time per home (parallel test binaries may all call this).
exec 9>"$WEIR_KAFKA_HOME/.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi

if [ ! -f "$KAFKA_LIBS/.installed" ] || [ "$(cat "$KAFKA_LIBS/.installed")" != "$pom_hash" ]; then
    echo "install-kafka: fetching Kafka $KAFKA_VERSION from Maven Central into $KAFKA_LIBS" >&2
    tmp="$WEIR_KAFKA_HOME/libs.tmp.$$"
    rm -rf "$tmp"
    # Maven's output is kept out of sight unless it fails (-q -B still prints colour codes).
    mvn_log="$WEIR_KAFKA_HOME/mvn.log"
    if ! mvn -q -B -Dstyle.color=never -f "$kafka_pom" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp" >"$mvn_log" 2>&1; then
        cat "$mvn_log" >&2
        rm -rf "$tmp"
        echo "install-kafka: mvn dependency:copy-dependencies failed (is Maven Central reachable?); log in $mvn_log" >&2
        exit 1
    fi
    echo "$pom_hash" >"$tmp/.installed"
    rm -rf "$KAFKA_LIBS"
    mv "$tmp" "$KAFKA_LIBS"
fi

if [ ! -f "$classes_dir/.complete" ]; then
    tmp="$classes_dir.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    if [ ${#sources[@]} -gt 0 ]; then
        echo "install-kafka: compiling ${#sources[@]} Java helper(s) from tests/java into $classes_dir" >&2
        if ! javac -nowarn --release 17 -encoding UTF-8 -cp "$KAFKA_LIBS/*" -d "$tmp" "${sources[@]}" >&2; then
            rm -rf "$tmp"
            echo "install-kafka: javac failed on tests/java" >&2
            exit 1
        fi
    fi
    touch "$tmp/.complete"
    rm -rf "$classes_dir"
    mv "$tmp" "$classes_dir"
fi

# Repoint classes -> classes-<hash> atomically (rename over the old link).
ln -sfn "classes-$src_hash" "$KAFKA_CLASSES.tmp.$$"
mv -T "$KAFKA_CLASSES.tmp.$$" "$KAFKA_CLASSES"

report
