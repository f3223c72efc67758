// The Java consumer's side of the end-to-end benchmark (scripts/bench-e2e.sh): reads
// COUNT records from every partition of TOPIC (manual assignment from the beginning,
// no group), touching each value (length, first and last byte, as weir's bench handler
// does), then prints one JSON line, as the other clients of scripts/bench-kafka.sh:
//   {"summary": {"records", "bytes" (key+value), "seconds" (first to last record), ...}}
//
//   java -cp CLASSES:LIBS/* WeirJavaPerf --bootstrap B --topic T --count N [--property k=v]...
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.stream.Collectors;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public final class WeirJavaPerf {
    public static void main(String[] args) {
        Properties props = new Properties();
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        String topic = null;
        long count = -1;
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--bootstrap" -> props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args[i + 1]);
                case "--topic" -> topic = args[i + 1];
                case "--count" -> count = Long.parseLong(args[i + 1]);
                case "--property" -> {
                    String kv = args[i + 1];
                    int eq = kv.indexOf('=');
                    props.put(kv.substring(0, eq), kv.substring(eq + 1));
                }
                default -> {
                    System.err.println("WeirJavaPerf: unknown argument " + args[i]);
                    System.exit(2);
                }
            }
        }
        if (topic == null || count < 0) {
            System.err.println("WeirJavaPerf: --bootstrap, --topic and --count are required");
            System.exit(2);
        }
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            final String t = topic;
            List<TopicPartition> parts = consumer.partitionsFor(t).stream()
                    .map(p -> new TopicPartition(t, p.partition()))
                    .collect(Collectors.toList());
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            long n = 0;
            long bytes = 0;
            long checksum = 0;
            long first = -1;
            long last = 0;
            long deadline = System.nanoTime() + 600_000_000_000L;
            while (n < count) {
                if (System.nanoTime() > deadline) {
                    System.err.println("WeirJavaPerf: read " + n + " of " + count + " records in 600 s");
                    System.exit(1);
                }
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
                if (records.isEmpty()) {
                    continue;
                }
                for (ConsumerRecord<byte[], byte[]> r : records) {
                    byte[] v = r.value();
                    byte[] k = r.key();
                    if (v != null) {
                        bytes += v.length;
                        checksum += v.length;
                        if (v.length > 0) {
                            checksum += v[0] + v[v.length - 1];
                        }
                    }
                    if (k != null) {
                        bytes += k.length;
                    }
                    n++;
                }
                last = System.nanoTime();
                if (first < 0) {
                    first = last;
                }
            }
            double seconds = Math.max((last - first) / 1e9, 1e-9);
            System.out.printf(java.util.Locale.ROOT,
                    "{\"summary\": {\"records\": %d, \"bytes\": %d, \"seconds\": %.6f, \"records_per_s\": %.1f, \"mb_per_s\": %.3f, \"checksum\": %d}}%n",
                    n, bytes, seconds, n / seconds, bytes / seconds / 1e6, checksum);
        }
    }
}
