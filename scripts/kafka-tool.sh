#!/usr/bin/env bash
# Runs one of Kafka's command-line tools from the installed runtime, by its usual
# script name, with warnings only on stderr:
#
#   scripts/kafka-tool.sh kafka-consumer-groups --bootstrap-server B --describe --group G
#   scripts/kafka-tool.sh kafka-topics --bootstrap-server B --create --topic t --partitions 3
#
# Tools: kafka-topics, kafka-consumer-groups, kafka-console-producer,
# kafka-console-consumer, kafka-producer-perf-test, kafka-consumer-perf-test,
# kafka-verifiable-consumer, kafka-verifiable-producer, kafka-configs, kafka-features,
# kafka-transactions, kafka-get-offsets, kafka-delete-records, kafka-share-groups, and the project's Java
# helpers: weir-java-peer (tests/java/WeirJavaPeer.java), weir-java-perf.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/kafka/env.sh
. "$repo_root/scripts/kafka/env.sh"
[ $# -ge 1 ] || { echo "kafka-tool: which tool? (see the list in $0)" >&2; exit 2; }
tool="$1"; shift
case "$tool" in
    kafka-topics) main=org.apache.kafka.tools.TopicCommand ;;
    kafka-consumer-groups) main=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
    kafka-console-producer) main=org.apache.kafka.tools.ConsoleProducer ;;
    kafka-console-consumer) main=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
    kafka-producer-perf-test) main=org.apache.kafka.tools.ProducerPerformance ;;
    kafka-consumer-perf-test) main=org.apache.kafka.tools.ConsumerPerformance ;;
    kafka-verifiable-consumer) main=org.apache.kafka.tools.VerifiableConsumer ;;
    kafka-verifiable-producer) main=org.apache.kafka.tools.VerifiableProducer ;;
    kafka-configs) main=org.apache.kafka.tools.ConfigCommand ;;
    kafka-features) main=org.apache.kafka.tools.FeatureCommand ;;
    kafka-transactions) main=org.apache.kafka.tools.TransactionsCommand ;;
    kafka-get-offsets) main=org.apache.kafka.tools.GetOffsetShell ;;
    kafka-delete-records) main=org.apache.kafka.tools.DeleteRecordsCommand ;;
    kafka-share-groups) main=org.apache.kafka.tools.consumer.group.ShareGroupCommand ;;
    weir-java-peer) main=WeirJavaPeer ;;
    weir-java-perf) main=WeirJavaPerf ;;
    *) echo "kafka-tool: unknown tool $tool (see the list in $0)" >&2; exit 2 ;;
esac
"$repo_root/scripts/install-kafka.sh"
exec java -Xms64m -Xmx512m -XX:TieredStopAtLevel=1 \
    "-Dlog4j2.configurationFile=$repo_root/scripts/kafka/tools-log4j2.properties" \
    -cp "$KAFKA_CLASSES:$KAFKA_LIBS/*" "$main" "$@"
