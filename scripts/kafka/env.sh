# Sourced (not run) by the scripts/*kafka* scripts: where the Kafka runtime lives.
#
#   KAFKA_VERSION     the <kafka.version> pinned in scripts/kafka/pom.xml
#   WEIR_KAFKA_HOME   the install dir; default $HOME/.cache/weir/kafka-$KAFKA_VERSION
#                     (an exported WEIR_KAFKA_HOME wins)
#   KAFKA_LIBS        $WEIR_KAFKA_HOME/libs: every runtime jar (broker, tools, clients,
#                     SLF4J 1.7 + log4j2), so the classpath is "$KAFKA_LIBS/*"
#   KAFKA_CLASSES     $WEIR_KAFKA_HOME/classes: a symlink to classes-<hash>, the
#                     compiled tests/java helpers (WeirJavaPeer, WeirJavaPerf)
#
# The caller sets repo_root before sourcing.

# shellcheck shell=bash
: "${repo_root:?set repo_root before sourcing scripts/kafka/env.sh}"
kafka_pom="$repo_root/scripts/kafka/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$kafka_pom" | head -n 1)"
if [ -z "$KAFKA_VERSION" ]; then
    echo "kafka: no <kafka.version> in $kafka_pom" >&2
    exit 1
fi
WEIR_KAFKA_HOME="${WEIR_KAFKA_HOME:-$HOME/.cache/weir/kafka-$KAFKA_VERSION}"
KAFKA_LIBS="$WEIR_KAFKA_HOME/libs"
# shellcheck disable=SC2034 # used by the scripts that source this file
KAFKA_CLASSES="$WEIR_KAFKA_HOME/classes"
export WEIR_KAFKA_HOME

# Fails with a clear message unless java (17+) is on PATH.
kafka_require_java() {
    if ! command -v java >/dev/null 2>&1; then
        echo "kafka: java not found on PATH; Kafka $KAFKA_VERSION needs Java 17+ (Debian: apt-get install openjdk-17-jdk-headless)" >&2
        exit 1
    fi
    local v major
    v="$(java -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | head -n 1)"
    major="${v%%.*}"
    if [ "$major" = "1" ]; then major="$(echo "$v" | cut -d. -f2)"; fi
    case "$major" in
        '' | *[!0-9]*)
            echo "kafka: cannot read the Java version from \`java -version\`; Java 17+ is required" >&2
            exit 1 ;;
    esac
    if [ "$major" -lt 17 ]; then
        echo "kafka: java is version $v; Kafka $KAFKA_VERSION needs Java 17+" >&2
        exit 1
    fi
}

# Fails with a clear message unless the runtime is installed.
kafka_require_installed() {
    kafka_require_java
    if [ ! -f "$KAFKA_LIBS/.installed" ]; then
        echo "kafka: no Kafka runtime in $KAFKA_LIBS; run scripts/install-kafka.sh" >&2
        exit 1
    fi
}
