#!/usr/bin/env python3
"""Produce deterministic records to a Kafka-compatible broker with librdkafka.

The real producer of the integration tests and benchmarks: every codec, keys, headers
(a null-valued one included), tombstones, large values and transactions (committed and
aborted). Content is deterministic, so a test can check every record a consumer returns
against the JSON manifest this script writes (what it produced, with the offsets the
broker assigned).

Record `seq` (0-based, from --start-seq) in partition `p`:
  key    = f"key-{p}-{seq}"                       (unless --no-keys)
  value  = f"{topic}-{p}-{seq}" padded with '.' to --value-size bytes (never cut: a
           value is at least as long as its prefix); None for a tombstone
  headers= [("h0", b"h0-{p}-{seq}"), ("h1", ...), ...] (--headers N), plus
           ("null-header", None) with --null-header
  timestamp = --timestamp-base + seq when given, else the producer's clock

Against tansu 0.6.0 a transaction can be opened but not ended: it advertises no EndTxn,
so librdkafka's commit and abort fail (this script then says so and exits 1). There,
`--transactions open` writes transactional batches and leaves them open.

Manifest (JSON, to --manifest FILE or stdout with "-"):
  {"topic", "partitions", "compression", "transactions": ["commit"|"abort"|"open", ...] | null,
   "records": {"<partition>": [{"offset", "seq", "key", "value", "value_len",
                                "headers": [[name, value-or-null], ...],
                                "timestamp", "timestamp_type", "txn", "committed"}]},
   "next_offset": {"<partition>": last produced offset + 1 (+1 more when a
                   transaction marker follows)}}
"committed" is true for a record outside transactions or in a committed one.
Keys, values and header values are the produced ASCII text (null for None). With
--omit-values the "value" field is left out (value_len stays), for big manifests.
"""

import argparse
import json
import os
import sys
import time

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")


def hold_until_removed(path, timeout):
    """Creates path, then waits until somebody removes it (bounded by timeout)."""
    with open(path, "w") as f:
        f.write("held\n")
    deadline = time.monotonic() + timeout
    while os.path.exists(path):
        if time.monotonic() > deadline:
            fail(f"--hold-last: {path} was not removed within {timeout}s")
        time.sleep(0.02)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap", required=True, help="bootstrap.servers, e.g. 127.0.0.1:9092")
    p.add_argument("--topic", required=True)
    p.add_argument("--partitions", type=int, default=1, help="partitions of the topic (created when missing)")
    p.add_argument("--only-partitions", default=None,
                   help="comma list of partitions to produce to (default: all)")
    p.add_argument("--count", type=int, default=10, help="records per partition (per transaction with --transactions)")
    p.add_argument("--start-seq", type=int, default=0, help="first seq number (to append distinct records)")
    p.add_argument("--value-size", type=int, default=0, help="pad values with '.' to this many bytes")
    p.add_argument("--compression", choices=CODECS, default="none")
    p.add_argument("--log-text", action="store_true",
                   help="pad values with pseudo-random log-like words (compressing as logs do) instead of '.'")
    p.add_argument("--no-keys", action="store_true", help="produce records with a null key")
    p.add_argument("--headers", type=int, default=0, help="headers per record")
    p.add_argument("--null-header", action="store_true", help="add a header whose value is null")
    p.add_argument("--tombstone-every", type=int, default=0,
                   help="every Nth record (seq %% N == N-1) has a null value")
    p.add_argument("--timestamp-base", type=int, default=None, help="CreateTime = base + seq (ms)")
    p.add_argument("--transactions", default=None,
                   help="comma list of commit|abort|open: one transaction each, --count records per partition "
                        "in each; the last may be left open (its records stay above the last stable offset)")
    p.add_argument("--transactional-id", default=None, help="default: weir-test-<topic>")
    p.add_argument("--transaction-timeout-ms", type=int, default=60000)
    p.add_argument("--hold-last", default=None, metavar="FILE",
                   help="with --transactions: once the last transaction's records are on the broker, create "
                        "FILE and wait (at most --timeout seconds) until it is removed before ending it")
    p.add_argument("--idempotent", action="store_true", help="enable.idempotence=true")
    p.add_argument("--linger-ms", type=int, default=5)
    p.add_argument("--batch-num-messages", type=int, default=10000, help="records per batch, at most")
    p.add_argument("--create-only", action="store_true", help="create the topic and exit")
    p.add_argument("--manifest", default="-", help="file for the JSON manifest, '-' for stdout, '' for none")
    p.add_argument("--omit-values", action="store_true", help="leave values out of the manifest")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds for any broker step")
    p.add_argument("-X", action="append", default=[], metavar="KEY=VALUE",
                   help="extra librdkafka producer property")
    return p.parse_args(argv)


def fail(msg):
    print(f"produce.py: {msg}", file=sys.stderr)
    sys.exit(1)


def ensure_topic(args):
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    md = admin.list_topics(timeout=args.timeout)
    existing = md.topics.get(args.topic)
    if existing is not None and existing.error is None:
        have = len(existing.partitions)
        if have != args.partitions:
            fail(f"topic {args.topic} exists with {have} partitions, not {args.partitions}")
        return
    futures = admin.create_topics([NewTopic(args.topic, num_partitions=args.partitions, replication_factor=1)],
                                  operation_timeout=args.timeout, request_timeout=args.timeout)
    for topic, fut in futures.items():
        try:
            fut.result()
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                fail(f"cannot create topic {topic}: {e}")
    # Wait until metadata shows every partition with a leader.
    deadline = time.monotonic() + args.timeout
    while True:
        md = admin.list_topics(topic=args.topic, timeout=args.timeout)
        t = md.topics.get(args.topic)
        if t is not None and t.error is None and len(t.partitions) == args.partitions and all(
                pm.leader >= 0 for pm in t.partitions.values()):
            return
        if time.monotonic() > deadline:
            fail(f"topic {args.topic} did not appear in metadata within {args.timeout}s")
        time.sleep(0.1)


LOG_WORDS = ("GET", "POST", "/api/v1/orders", "/health", "200", "404", "503", "user", "id",
             "latency_ms", "INFO", "WARN", "ERROR", "request", "completed", "upstream", "timeout",
             "retry", "session", "cache", "miss", "hit", "db", "query", "rows", "shard", "eu-west-1",
             "us-east-1", "trace", "span", "0x", "kafka", "consumer", "offset", "partition")


def log_text(seed, size):
    """size bytes of log-like text, a function of seed (compresses about as logs do)."""
    x = (seed * 2654435761 + 0x9E3779B9) & 0xFFFFFFFF
    out = []
    n = 0
    while n < size:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        w = LOG_WORDS[x % len(LOG_WORDS)] if x % 3 else str(x % 100000)
        out.append(w)
        n += len(w) + 1
    return " ".join(out)[:size].ljust(size)


def record_content(args, partition, seq):
    key = None if args.no_keys else f"key-{partition}-{seq}"
    if args.tombstone_every and seq % args.tombstone_every == args.tombstone_every - 1:
        value = None
    else:
        value = f"{args.topic}-{partition}-{seq}"
        if len(value) < args.value_size:
            if args.log_text:
                value = value + " " + log_text(partition * 1_000_003 + seq, args.value_size - len(value) - 1)
            else:
                value = value + "." * (args.value_size - len(value))
    headers = [(f"h{i}", f"h{i}-{partition}-{seq}") for i in range(args.headers)]
    if args.null_header:
        headers.append(("null-header", None))
    ts = None if args.timestamp_base is None else args.timestamp_base + seq
    return key, value, headers, ts


def main(argv):
    args = parse_args(argv)
    ensure_topic(args)
    if args.create_only:
        return 0

    partitions = list(range(args.partitions))
    if args.only_partitions:
        partitions = [int(x) for x in args.only_partitions.split(",")]
    txns = None
    if args.transactions:
        txns = [t.strip() for t in args.transactions.split(",")]
        for t in txns:
            if t not in ("commit", "abort", "open"):
                fail(f"--transactions takes commit, abort or open, not {t!r}")
        if "open" in txns[:-1]:
            fail("--transactions: only the last transaction can be left open")

    big = max(args.value_size, 1) * max(args.batch_num_messages, 1)
    conf = {
        "bootstrap.servers": args.bootstrap,
        "compression.codec": args.compression,
        "linger.ms": args.linger_ms,
        "batch.num.messages": args.batch_num_messages,
        # Large values (1 MiB and more) need a larger request and message limit.
        "message.max.bytes": max(1_000_000, min(args.value_size * 2 + 65536, 100_000_000)),
        "batch.size": max(1_000_000, min(big, 100_000_000)),
        "acks": "all",
    }
    if args.idempotent:
        conf["enable.idempotence"] = True
    if txns is not None:
        conf["transactional.id"] = args.transactional_id or f"weir-test-{args.topic}"
        conf["transaction.timeout.ms"] = args.transaction_timeout_ms
    for kv in args.X:
        k, _, v = kv.partition("=")
        conf[k] = v

    producer = Producer(conf)
    results = {}  # (partition, seq) -> (offset, ts_type, ts) or error
    errors = []

    def on_delivery(err, msg, key):
        if err is not None:
            errors.append(f"partition {key[0]} seq {key[1]}: {err}")
        else:
            ts_type, ts = msg.timestamp()
            results[key] = (msg.offset(), ts_type, ts)

    produced = []  # (partition, seq, txn index, committed)

    def produce_round(txn_index, committed, first_seq):
        for i in range(args.count):
            seq = first_seq + i
            for p in partitions:
                key, value, headers, ts = record_content(args, p, seq)
                kwargs = {"partition": p, "key": key, "value": value,
                          "on_delivery": (lambda err, msg, k=(p, seq): on_delivery(err, msg, k))}
                if headers:
                    kwargs["headers"] = headers
                if ts is not None:
                    kwargs["timestamp"] = ts
                while True:
                    try:
                        producer.produce(args.topic, **kwargs)
                        break
                    except BufferError:
                        producer.poll(0.05)
                produced.append((p, seq, txn_index, committed))
                producer.poll(0)

    if txns is None:
        produce_round(None, True, args.start_seq)
        left = producer.flush(args.timeout)
        if left:
            fail(f"{left} records not delivered within {args.timeout}s")
    else:
        producer.init_transactions(args.timeout)
        seq = args.start_seq
        for index, kind in enumerate(txns):
            producer.begin_transaction()
            # "committed" = visible to read_committed once ended: only a committed one.
            produce_round(index, kind == "commit", seq)
            seq += args.count
            # Flush first: librdkafka drops the unsent records of an aborted transaction,
            # and the tests want aborted records on the log.
            left = producer.flush(args.timeout)
            if left:
                fail(f"{left} records not delivered within {args.timeout}s")
            if args.hold_last and index == len(txns) - 1:
                hold_until_removed(args.hold_last, args.timeout)
            try:
                if kind == "commit":
                    producer.commit_transaction(args.timeout)
                elif kind == "abort":
                    producer.abort_transaction(args.timeout)
            except KafkaException as e:
                if e.args[0].code() == KafkaError._UNSUPPORTED_FEATURE:
                    fail(f"the broker cannot end a transaction ({e.args[0].str()}); tansu 0.6.0 has no "
                         "EndTxn, so only --transactions open works against it")
                raise

    if errors:
        fail("delivery failed: " + "; ".join(errors[:5]))

    records = {str(p): [] for p in partitions}
    next_offset = {}
    for p, seq, txn_index, committed in produced:
        key, value, headers, _ = record_content(args, p, seq)
        offset, ts_type, ts = results[(p, seq)]
        entry = {
            "offset": offset,
            "seq": seq,
            "key": key,
            "value_len": None if value is None else len(value),
            "headers": [[k, v] for k, v in headers],
            "timestamp": ts,
            "timestamp_type": ts_type,
            "txn": txn_index,
            "committed": committed,
        }
        if not args.omit_values:
            entry["value"] = value
        records[str(p)].append(entry)
    for p in partitions:
        recs = sorted(records[str(p)], key=lambda r: r["offset"])
        records[str(p)] = recs
        if recs:
            # An ended transaction leaves a control record (the marker) after its last record.
            ended = txns is not None and txns[-1] != "open"
            next_offset[str(p)] = recs[-1]["offset"] + 1 + (1 if ended else 0)

    manifest = {
        "topic": args.topic,
        "partitions": args.partitions,
        "compression": args.compression,
        "transactions": txns,
        "records": records,
        "next_offset": next_offset,
    }
    if args.manifest == "-":
        json.dump(manifest, sys.stdout)
        sys.stdout.write("\n")
    elif args.manifest:
        with open(args.manifest, "w") as f:
            json.dump(manifest, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
