#!/usr/bin/env python3
"""The producer of scripts/bench-latency.sh: stamps every value with its send time.

  latency_producer.py --bootstrap B --topic T --create [--partitions P]
  latency_producer.py --bootstrap B --topic T --rate R --count N [--value-size S]

--create makes the topic (replication 1) and exits. Otherwise N records go out at R
records per second, paced against the clock from the first send, through librdkafka
with linger.ms=0 and acks=1, so each record leaves as soon as it is produced. Each
value starts with the send time in decimal microseconds since the epoch and a space,
padded with 'x' to --value-size bytes; keys are null. The consumers on the same
machine subtract that stamp from their own clock when the record reaches the handler.
"""

import argparse
import sys
import time

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--create", action="store_true")
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--value-size", type=int, default=100)
    a = ap.parse_args()
    if a.create:
        admin = AdminClient({"bootstrap.servers": a.bootstrap})
        fut = admin.create_topics(
            [NewTopic(a.topic, num_partitions=a.partitions, replication_factor=1)],
            operation_timeout=30,
        )
        try:
            fut[a.topic].result(60)
        except KafkaException as e:
            sys.exit(f"latency_producer: cannot create {a.topic}: {e}")
        return
    errors = []
    p = Producer({"bootstrap.servers": a.bootstrap, "linger.ms": 0, "acks": 1})

    def on_delivery(err, _msg):
        if err is not None:
            errors.append(err)

    t0 = time.monotonic()
    for i in range(a.count):
        wait = t0 + i / a.rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        stamp = b"%d " % (time.time_ns() // 1000)
        p.produce(a.topic, stamp.ljust(a.value_size, b"x"), on_delivery=on_delivery)
        p.poll(0)
    left = p.flush(60)
    if left or errors:
        sys.exit(f"latency_producer: {left} undelivered, {len(errors)} failed: {errors[:3]}")


if __name__ == "__main__":
    main()
