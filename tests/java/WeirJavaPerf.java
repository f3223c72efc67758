// The Java consumer's side of the end-to-end benchmark (scripts/bench-e2e.sh): reads
// COUNT records from every partition of TOPIC (manual assignment from the beginning,
// no group), touching each value (length, first and last byte, as weir's bench handler
// does), then prints one JSON line, as the other clients of scripts/bench-kafka.sh:
//   {"summary": {"records", "bytes" (key+value), "seconds" (first to last record), ...}}
//
//   java -cp CLASSES:LIBS/* WeirJavaPerf --bootstrap B --topic T --count N [--property k=v]...
//       [--latency 1 --warmup K]
//
// --latency 1 samples now minus the send time each value starts with (decimal
// microseconds since the epoch, scripts/latency_producer.py) after the first K records,
// and adds "latency_us": {n, p50, p99, p999, max} to the summary.
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
        boolean latency = false;
        long warmup = 0;
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--bootstrap" -> props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args[i + 1]);
                case "--topic" -> topic = args[i + 1];
                case "--count" -> count = Long.parseLong(args[i + 1]);
                case "--latency" -> latency = !args[i + 1].equals("0");
                case "--warmup" -> warmup = Long.parseLong(args[i + 1]);
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
            long[] lat = new long[(int) Math.min(Math.max(count, 0), 50_000_000L)];
            int nlat = 0;
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
                    if (latency && n >= warmup && v != null && nlat < lat.length) {
                        long sent = stampMicros(v);
                        if (sent >= 0) {
                            java.time.Instant now = java.time.Instant.now();
                            lat[nlat++] = now.getEpochSecond() * 1_000_000L + now.getNano() / 1_000 - sent;
                        }
                    }
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
                    "{\"summary\": {\"records\": %d, \"bytes\": %d, \"seconds\": %.6f, \"records_per_s\": %.1f, \"mb_per_s\": %.3f, \"checksum\": %d, \"latency_us\": %s}}%n",
                    n, bytes, seconds, n / seconds, bytes / seconds / 1e6, checksum, percentiles(lat, nlat));
        }
    }

    /** The decimal number a value starts with, or -1. */
    private static long stampMicros(byte[] v) {
        long x = 0;
        int i = 0;
        for (; i < v.length && i < 19 && v[i] >= '0' && v[i] <= '9'; i++) {
            x = x * 10 + (v[i] - '0');
        }
        return i == 0 ? -1 : x;
    }

    private static String percentiles(long[] lat, int n) {
        if (n == 0) {
            return "null";
        }
        long[] v = java.util.Arrays.copyOf(lat, n);
        java.util.Arrays.sort(v);
        java.util.function.DoubleFunction<Long> at = q -> v[(int) Math.round((n - 1) * q)];
        return String.format(java.util.Locale.ROOT,
                "{\"n\": %d, \"p50\": %d, \"p99\": %d, \"p999\": %d, \"max\": %d}",
                n, at.apply(0.5), at.apply(0.99), at.apply(0.999), at.apply(1.0));
    }
}
