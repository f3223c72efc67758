// The Java client as a peer in weir's tests: one consumer-group member (KafkaConsumer,
// either group protocol) that prints what happens to it, one line per event, so a test
// can compare weir with the reference client in the same group.
//
//   java -cp CLASSES:LIBS/* WeirJavaPeer --bootstrap B --group G --topics t1[,t2]
//        [--property key=value]...   (any consumer property; repeats)
//        [--no-commit]               (by default it commits synchronously after each poll)
//
// Output (stdout, flushed per line; times are wall-clock epoch milliseconds):
//   subscribed <ms>
//   assigned <ms> <topic>:<partition>,...     (partitions added by this rebalance)
//   revoked <ms> <topic>:<partition>,...
//   lost <ms> <topic>:<partition>,...
//   rec <ms> <topic> <partition> <offset>
//   committed <ms> <topic>:<partition>=<offset>,...
//   error <message>
//   closed <ms>
// It stops (leaving the group through close()) when stdin reaches end of file or reads
// a line "stop"; "exit" exits at once without leaving (a crash, for the session
// timeout to notice).
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.stream.Collectors;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public final class WeirJavaPeer {
    private static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    private static String parts(Collection<TopicPartition> tps) {
        return tps.stream()
                .sorted((a, b) -> a.topic().equals(b.topic())
                        ? Integer.compare(a.partition(), b.partition())
                        : a.topic().compareTo(b.topic()))
                .map(tp -> tp.topic() + ":" + tp.partition())
                .collect(Collectors.joining(","));
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        List<String> topics = new ArrayList<>();
        boolean commit = true;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            String v = i + 1 < args.length ? args[i + 1] : null;
            switch (a) {
                case "--bootstrap" -> { props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, v); i++; }
                case "--group" -> { props.put(ConsumerConfig.GROUP_ID_CONFIG, v); i++; }
                case "--topics" -> { topics.addAll(List.of(v.split(","))); i++; }
                case "--property" -> {
                    int eq = v.indexOf('=');
                    if (eq < 1) {
                        System.err.println("WeirJavaPeer: --property wants key=value, got " + v);
                        System.exit(2);
                    }
                    props.put(v.substring(0, eq), v.substring(eq + 1));
                    i++;
                }
                case "--no-commit" -> commit = false;
                default -> {
                    System.err.println("WeirJavaPeer: unknown argument " + a);
                    System.exit(2);
                }
            }
        }
        if (topics.isEmpty() || !props.containsKey(ConsumerConfig.GROUP_ID_CONFIG)) {
            System.err.println("WeirJavaPeer: --bootstrap, --group and --topics are required");
            System.exit(2);
        }

        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props);
        Thread control = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(
                    new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null) {
                    if (line.trim().equals("exit")) {
                        Runtime.getRuntime().halt(0);
                    }
                    if (line.trim().equals("stop")) {
                        break;
                    }
                }
            } catch (Exception e) {
                // stdin gone: stop as on end of file
            }
            consumer.wakeup();
        });
        control.setDaemon(true);
        control.start();

        consumer.subscribe(topics, new ConsumerRebalanceListener() {
            @Override
            public void onPartitionsRevoked(Collection<TopicPartition> tps) {
                say("revoked " + System.currentTimeMillis() + " " + parts(tps));
            }

            @Override
            public void onPartitionsAssigned(Collection<TopicPartition> tps) {
                say("assigned " + System.currentTimeMillis() + " " + parts(tps));
            }

            @Override
            public void onPartitionsLost(Collection<TopicPartition> tps) {
                say("lost " + System.currentTimeMillis() + " " + parts(tps));
            }
        });
        say("subscribed " + System.currentTimeMillis());
        try {
            while (true) {
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
                if (records.isEmpty()) {
                    continue;
                }
                Map<TopicPartition, OffsetAndMetadata> next = new HashMap<>();
                for (ConsumerRecord<byte[], byte[]> r : records) {
                    say("rec " + System.currentTimeMillis() + " " + r.topic() + " " + r.partition() + " " + r.offset());
                    next.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                if (commit) {
                    consumer.commitSync(next);
                    say("committed " + System.currentTimeMillis() + " " + next.entrySet().stream()
                            .map(e -> e.getKey().topic() + ":" + e.getKey().partition() + "=" + e.getValue().offset())
                            .sorted()
                            .collect(Collectors.joining(",")));
                }
            }
        } catch (WakeupException e) {
            // asked to stop
        } catch (Exception e) {
            say("error " + e.getClass().getSimpleName() + ": " + e.getMessage());
        } finally {
            consumer.close(org.apache.kafka.clients.consumer.CloseOptions.timeout(Duration.ofSeconds(10)));
            say("closed " + System.currentTimeMillis());
        }
    }
}
