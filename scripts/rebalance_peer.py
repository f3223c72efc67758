#!/usr/bin/env python3
"""librdkafka side of the rebalance-pause measurement (tests/group_tansu.rs,
rebalance_pause_report).

  produce: write RATE records per second to every partition of TOPIC for SECONDS
           (steady traffic, so a pause in consumption shows as a gap).
  consume: join GROUP with STRATEGY and print one line per record received:
           "<partition> <offset> <wall-clock seconds>", then "assigned <p,...>" lines on
           every assignment change; stop after SECONDS and close (leaving the group).
           With --start-at, it subscribes at that wall-clock time, so the measured
           join is not delayed by the process starting up.
"""

import argparse
import sys
import time

from confluent_kafka import Consumer, Producer


def produce(args):
    p = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 5})
    end = time.monotonic() + args.seconds
    n = 0
    interval = 1.0 / args.rate
    next_at = time.monotonic()
    while time.monotonic() < end:
        for part in range(args.partitions):
            p.produce(args.topic, value=b"x%d" % n, partition=part)
        n += 1
        p.poll(0)
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    p.flush(30)
    return 0


def consume(args):
    out = sys.stdout
    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "auto.offset.reset": "latest",
        "enable.auto.commit": True,
        "auto.commit.interval.ms": 200,
        # As weir's side of the measurement (librdkafka's default is 500 ms).
        "fetch.wait.max.ms": 100,
    }
    if args.strategy == "consumer":
        # group.protocol=consumer (KIP-848): the broker assigns (uniform) and owns the
        # session and heartbeat settings. The binding assigns incrementally itself.
        conf["group.protocol"] = "consumer"
        conf["group.remote.assignor"] = "uniform"
    else:
        conf["session.timeout.ms"] = args.session_timeout_ms
        conf["heartbeat.interval.ms"] = 500
        conf["partition.assignment.strategy"] = args.strategy
    c = Consumer(conf)
    owned = set()

    def show():
        out.write("assigned %s %.6f\n" % (",".join(str(p) for p in sorted(owned)), time.time()))
        out.flush()

    def on_assign(consumer, parts):
        if args.strategy == "cooperative-sticky":
            consumer.incremental_assign(parts)
        owned.update(tp.partition for tp in parts)
        show()

    def on_revoke(consumer, parts):
        if args.strategy == "cooperative-sticky":
            consumer.incremental_unassign(parts)
        owned.difference_update(tp.partition for tp in parts)
        show()

    if args.start_at is not None:
        # Process start-up (imports, librdkafka's threads) is done; join on the dot.
        delay = args.start_at - time.time()
        if delay > 0:
            time.sleep(delay)
    c.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke)
    end = time.monotonic() + args.seconds
    try:
        while time.monotonic() < end:
            for m in c.consume(num_messages=1000, timeout=0.05):
                if m.error() is None:
                    out.write("%d %d %.6f\n" % (m.partition(), m.offset(), time.time()))
            out.flush()
    finally:
        c.close()
    return 0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("produce", "consume"))
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--rate", type=float, default=100.0, help="records per second per partition")
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--group")
    ap.add_argument("--strategy", default="range",
                    help="a classic assignor, or consumer for group.protocol=consumer")
    ap.add_argument("--session-timeout-ms", type=int, default=6000)
    ap.add_argument("--start-at", type=float, default=None,
                    help="consume: subscribe at this wall-clock time (seconds since the epoch)")
    args = ap.parse_args(argv)
    return produce(args) if args.mode == "produce" else consume(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
