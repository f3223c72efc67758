#!/usr/bin/env bash
# Writes a single-node Apache Kafka configuration (KRaft, combined broker+controller,
# 127.0.0.1 only) into a fresh directory and formats its log dir. Used by
# scripts/start-kafka.sh and by the test harness (tests/support/kafka.rs), so tests,
# demo and benchmarks run one configuration.
#
#   scripts/kafka-config.sh --dir DIR --port PORT --controller-port CPORT \
#       [--sasl-port P] [--ssl-port P] [--sasl-ssl-port P] [--expired-ssl-port P]
#       [--heap SIZE]
#
# Writes into DIR:
#   server.properties   the broker's configuration (append lines to override)
#   log4j2.properties   INFO to DIR/kafka.log (the harness prints its tail on failure)
#   java.args           the JVM's arguments, one per line: `java $(cat java.args)`
#   data/               the formatted log dir
#   tls/                with --ssl-port or --sasl-ssl-port: ca.pem (the test CA),
#                       broker.pem (its key and chain), client.pem/client.key (a
#                       client certificate the CA signed), other-ca.pem (a CA that
#                       signed nothing here, for "untrusted certificate" tests),
#                       expired.pem (a broker certificate that expired yesterday)
#
# Security listeners (each only when its port is given):
#   SASL_PLAINTEXT, SASL_SSL  mechanisms PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and
#                             OAUTHBEARER (Kafka's unsecured-JWT validator); SASL_SSL
#                             without PLAIN. Users:
#                             weir / weir-secret and admin / admin-secret (PLAIN, and
#                             SCRAM users created at format time).
#   SSL                       requires a client certificate (mTLS) signed by tls/ca.pem.
#   EXPIRED_SSL               an SSL listener serving tls/expired.pem, for "expired
#                             certificate" tests (no client certificate needed).
#   The TLS listeners serve tls/broker.pem: SAN DNS:localhost and IP:127.0.0.1.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/kafka/env.sh
. "$repo_root/scripts/kafka/env.sh"

dir="" port="" cport="" sasl_port="" ssl_port="" sasl_ssl_port="" expired_port="" heap="1g"
while [ $# -gt 0 ]; do
    case "$1" in
        --dir) dir="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --controller-port) cport="$2"; shift 2 ;;
        --sasl-port) sasl_port="$2"; shift 2 ;;
        --ssl-port) ssl_port="$2"; shift 2 ;;
        --sasl-ssl-port) sasl_ssl_port="$2"; shift 2 ;;
        --expired-ssl-port) expired_port="$2"; shift 2 ;;
        --heap) heap="$2"; shift 2 ;;
        *) echo "kafka-config: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -z "$dir" ] || [ -z "$port" ] || [ -z "$cport" ]; then
    echo "kafka-config: --dir, --port and --controller-port are required" >&2
    exit 2
fi
kafka_require_installed
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
if [ -e "$dir/data/meta.properties" ]; then
    echo "kafka-config: $dir/data is already formatted; use a fresh directory" >&2
    exit 1
fi

listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport"
advertised="PLAINTEXT://127.0.0.1:$port"
protocol_map="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
for pair in "SASL_PLAINTEXT:$sasl_port" "SSL:$ssl_port" "SASL_SSL:$sasl_ssl_port"; do
    name="${pair%%:*}" p="${pair#*:}"
    if [ -n "$p" ]; then
        listeners="$listeners,$name://127.0.0.1:$p"
        advertised="$advertised,$name://127.0.0.1:$p"
        protocol_map="$protocol_map,$name:$name"
    fi
done
if [ -n "$expired_port" ]; then
    listeners="$listeners,EXPIRED_SSL://127.0.0.1:$expired_port"
    advertised="$advertised,EXPIRED_SSL://127.0.0.1:$expired_port"
    protocol_map="$protocol_map,EXPIRED_SSL:SSL"
fi

cat >"$dir/server.properties" <<EOF
# Written by scripts/kafka-config.sh: one node, KRaft combined mode, loopback only.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
controller.listener.names=CONTROLLER
listeners=$listeners
advertised.listeners=$advertised
listener.security.protocol.map=$protocol_map
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=1
# One node: the internal topics' defaults (3 replicas, min ISR 2) would make group,
# transaction and share calls fail.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests and demos: no 3 s wait before the first rebalance of a new group.
group.initial.rebalance.delay.ms=0
# group.protocol=consumer (KIP-848): the broker sets the heartbeat interval and the
# session timeout. Kafka's 5 s and 45 s (with minimums of the same) would make a test
# of a member killed without leaving wait most of a minute; these keep Kafka's ratio.
group.consumer.min.heartbeat.interval.ms=500
group.consumer.heartbeat.interval.ms=1000
group.consumer.min.session.timeout.ms=6000
group.consumer.session.timeout.ms=10000
auto.create.topics.enable=true
EOF

sasl_listeners=()
[ -n "$sasl_port" ] && sasl_listeners+=(sasl_plaintext)
[ -n "$sasl_ssl_port" ] && sasl_listeners+=(sasl_ssl)
if [ ${#sasl_listeners[@]} -gt 0 ]; then
    echo "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER" >>"$dir/server.properties"
    # SASL_SSL leaves PLAIN out, so "a mechanism the broker does not enable" has a
    # real listener to be tested on.
    echo "listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER" >>"$dir/server.properties"
    for l in "${sasl_listeners[@]}"; do
        cat >>"$dir/server.properties" <<EOF
listener.name.$l.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_weir="weir-secret" user_admin="admin-secret";
listener.name.$l.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.$l.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.$l.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="admin";
EOF
    done
fi

if [ -n "$ssl_port" ] || [ -n "$sasl_ssl_port" ] || [ -n "$expired_port" ]; then
    if ! command -v openssl >/dev/null 2>&1; then
        echo "kafka-config: openssl not found; it makes the test certificates (Debian: apt-get install openssl)" >&2
        exit 1
    fi
    tls="$dir/tls"
    mkdir -p "$tls"
    (
        cd "$tls"
        q() { "$@" >/dev/null 2>&1 || { echo "kafka-config: failed: $*" >&2; exit 1; }; }
        for ca in ca other-ca; do
            q openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout "$ca.key" -out "$ca.pem" \
                -subj "/CN=weir test $ca" -addext "basicConstraints=critical,CA:TRUE" \
                -addext "keyUsage=critical,keyCertSign,cRLSign"
        done
        leaf() { # name subject extensions [days]
            q openssl req -newkey rsa:2048 -nodes -keyout "$1.key.tmp" -out "$1.csr" -subj "$2"
            q openssl pkcs8 -topk8 -nocrypt -in "$1.key.tmp" -out "$1.key"
            printf '%s\n' "$3" >"$1.ext"
            q openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
                -days "${4:-30}" -out "$1.crt" -extfile "$1.ext"
            rm -f "$1.key.tmp" "$1.csr" "$1.ext"
        }
        leaf broker "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1
basicConstraints=CA:FALSE
extendedKeyUsage=serverAuth"
        leaf client "/CN=weir-client" "basicConstraints=CA:FALSE
extendedKeyUsage=clientAuth"
        # -1 day: notAfter is a day before notBefore, so it is expired from the start.
        leaf expired "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1
basicConstraints=CA:FALSE
extendedKeyUsage=serverAuth" -1
        cat expired.key expired.crt ca.pem >expired.pem
        cat broker.key broker.crt ca.pem >broker.pem
        cat client.crt ca.pem >client.pem
    )
    for l in ssl sasl_ssl expired_ssl; do
        store=broker.pem
        [ "$l" = expired_ssl ] && store=expired.pem
        cat >>"$dir/server.properties" <<EOF
listener.name.$l.ssl.keystore.type=PEM
listener.name.$l.ssl.keystore.location=$tls/$store
listener.name.$l.ssl.truststore.type=PEM
listener.name.$l.ssl.truststore.location=$tls/ca.pem
EOF
    done
    echo "listener.name.ssl.ssl.client.auth=required" >>"$dir/server.properties"
fi

cat >"$dir/log4j2.properties" <<EOF
status = error
name = weir-kafka-broker
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $dir/kafka.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
EOF

# Format the log dir (with the SCRAM users when a SASL listener is on).
tools_log="-Dlog4j2.configurationFile=$repo_root/scripts/kafka/tools-log4j2.properties"
cluster_id="$(java "$tools_log" -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool random-uuid 2>"$dir/format.err")" || {
    cat "$dir/format.err" >&2
    echo "kafka-config: StorageTool random-uuid failed" >&2
    exit 1
}
scram=()
if [ ${#sasl_listeners[@]} -gt 0 ]; then
    for m in SCRAM-SHA-256 SCRAM-SHA-512; do
        scram+=(--add-scram "$m=[name=weir,password=weir-secret]" --add-scram "$m=[name=admin,password=admin-secret]")
    done
fi
if ! java "$tools_log" -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format --standalone \
    -t "$cluster_id" -c "$dir/server.properties" "${scram[@]}" >"$dir/format.out" 2>>"$dir/format.err"; then
    cat "$dir/format.out" "$dir/format.err" >&2
    echo "kafka-config: StorageTool format failed" >&2
    exit 1
fi

cat >"$dir/java.args" <<EOF
-Xms256m
-Xmx$heap
-XX:+UseG1GC
-XX:MaxGCPauseMillis=20
-Djava.awt.headless=true
-Dlog4j2.configurationFile=$dir/log4j2.properties
-cp
$KAFKA_LIBS/*
kafka.Kafka
$dir/server.properties
EOF
