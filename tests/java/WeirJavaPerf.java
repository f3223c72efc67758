// The Java consumer's side of the end-to-end benchmark (scripts/bench-e2e.sh): reads
// COUNT records from every partition of TOPIC (manual assignment from the beginning,
// no group), touching each value's bytes, then prints one line:
//   records=<n> bytes=<value bytes> seconds=<wall time from first poll>
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
            long start = System.nanoTime();
            while (n < count) {
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(500));
                for (ConsumerRecord<byte[], byte[]> r : records) {
                    byte[] v = r.value();
                    if (v != null) {
                        bytes += v.length;
                        if (v.length > 0) {
                            checksum += v[0];
                        }
                    }
                    n++;
                }
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            System.out.printf("records=%d bytes=%d seconds=%.6f checksum=%d%n", n, bytes, seconds, checksum);
        }
    }
}
