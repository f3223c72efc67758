#!/usr/bin/env python3
"""Consume a topic from the beginning to its end with librdkafka.

The reference consumer: tests compare what weir returns with what librdkafka returns,
and benchmarks use it as the peer to beat.

Without --group: every partition is assigned at OFFSET_BEGINNING and the run stops when
each has reached its end (librdkafka's partition EOF, which follows the high watermark
of Fetch responses; the last stable offset under read_committed).
With --group: subscribes as a member of that group (auto.offset.reset=earliest) and
stops when every partition assigned to it has reached its end, or after --run-seconds.

Output (stdout), one JSON object per line:
  {"topic", "partition", "offset", "key", "value", "headers": [[name, value], ...],
   "timestamp", "timestamp_type"}   per record, unless --quiet
  {"summary": {"records", "bytes", "seconds" (first to last record), "records_per_s", "mb_per_s",
               "partitions": {"<p>": {"records", "next_offset"}}}}   last line
Keys, values and header values are text when they are valid UTF-8, else
{"hex": "..."}; null stays null. "bytes" counts key and value bytes.
"""

import argparse
import json
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", default=None, help="join this consumer group instead of assigning")
    p.add_argument("--isolation", choices=("read_uncommitted", "read_committed"), default="read_uncommitted")
    p.add_argument("--quiet", action="store_true", help="print only the summary (benchmarks)")
    p.add_argument("--run-seconds", type=float, default=None,
                   help="with --group: stay in the group this long instead of stopping at the end")
    p.add_argument("--session-timeout-ms", type=int, default=6000)
    p.add_argument("--commit", action="store_true", help="with --group: commit offsets (auto commit)")
    p.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds")
    p.add_argument("-X", action="append", default=[], metavar="KEY=VALUE",
                   help="extra librdkafka consumer property")
    return p.parse_args(argv)


def enc(b):
    if b is None:
        return None
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return {"hex": b.hex()}


def main(argv):
    args = parse_args(argv)
    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group or "weir-consume-rdkafka",
        "enable.partition.eof": True,
        "enable.auto.commit": bool(args.group and args.commit),
        "auto.offset.reset": "earliest",
        "isolation.level": args.isolation,
        "session.timeout.ms": args.session_timeout_ms,
        "heartbeat.interval.ms": max(100, args.session_timeout_ms // 5),
    }
    for kv in args.X:
        k, _, v = kv.partition("=")
        conf[k] = v
    if str(conf.get("group.protocol", "classic")).lower() == "consumer":
        # The broker owns these under KIP-848; librdkafka refuses them there.
        conf.pop("session.timeout.ms", None)
        conf.pop("heartbeat.interval.ms", None)
    consumer = Consumer(conf)

    md = consumer.list_topics(topic=args.topic, timeout=args.timeout)
    t = md.topics.get(args.topic)
    if t is None or t.error is not None:
        print(f"consume_rdkafka.py: topic {args.topic} not found: {t.error if t else 'absent'}", file=sys.stderr)
        return 1

    assigned = set()
    at_eof = set()

    if args.group is None:
        tps = [TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in sorted(t.partitions)]
        consumer.assign(tps)
        assigned = {p for p in t.partitions}
    else:
        def on_assign(c, parts):
            for tp in parts:
                assigned.add(tp.partition)
                at_eof.discard(tp.partition)

        def on_revoke(c, parts):
            for tp in parts:
                assigned.discard(tp.partition)
                at_eof.discard(tp.partition)

        consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke)

    per_partition = {}
    records = 0
    nbytes = 0
    started = None  # the first record's arrival: throughput runs from first to last record
    last = None
    begin = time.monotonic()
    out = sys.stdout
    try:
        while True:
            now = time.monotonic()
            if now - begin > args.timeout:
                print(f"consume_rdkafka.py: timed out after {args.timeout}s "
                      f"(assigned {sorted(assigned)}, at end {sorted(at_eof)})", file=sys.stderr)
                return 2
            if args.run_seconds is not None:
                if now - begin >= args.run_seconds:
                    break
            elif assigned and assigned <= at_eof:
                break
            msgs = consumer.consume(num_messages=10000, timeout=0.2)
            for m in msgs:
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        at_eof.add(m.partition())
                        continue
                    print(f"consume_rdkafka.py: {err}", file=sys.stderr)
                    if err.fatal():
                        return 1
                    continue
                last = time.monotonic()
                if started is None:
                    started = last
                at_eof.discard(m.partition())
                k, v = m.key(), m.value()
                records += 1
                nbytes += (len(k) if k else 0) + (len(v) if v else 0)
                st = per_partition.setdefault(m.partition(), {"records": 0, "next_offset": 0})
                st["records"] += 1
                st["next_offset"] = m.offset() + 1
                if not args.quiet:
                    ts_type, ts = m.timestamp()
                    out.write(json.dumps({
                        "topic": m.topic(),
                        "partition": m.partition(),
                        "offset": m.offset(),
                        "key": enc(k),
                        "value": enc(v),
                        "headers": [[hk, enc(hv)] for hk, hv in (m.headers() or [])],
                        "timestamp": ts,
                        "timestamp_type": ts_type,
                    }))
                    out.write("\n")
    finally:
        consumer.close()
    elapsed = (last - started) if started is not None else 0.0
    summary = {
        "records": records,
        "bytes": nbytes,
        "seconds": round(elapsed, 6),
        "records_per_s": round(records / elapsed, 1) if elapsed > 0 else None,
        "mb_per_s": round(nbytes / elapsed / 1e6, 3) if elapsed > 0 else None,
        "partitions": {str(p): s for p, s in sorted(per_partition.items())},
    }
    out.write(json.dumps({"summary": summary}) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
