//! Transactions against Apache Kafka, with librdkafka's transactional producer: what
//! tansu (no EndTxn) could never show. read_committed delivers exactly the committed
//! and non-transactional records, read_uncommitted every data record, neither any
//! control record; an open transaction holds back everything after it (the last
//! stable offset); a group's lag reaches 0 on a topic that ends in a commit marker.
//!
//! Needs Apache Kafka (the default test broker): tansu cannot end a transaction, so
//! these tests fail on it with produce.py's message saying so.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use support::broker::Broker;
use support::peer::{Codec, Manifest, Producer, Rec, Txn};
use support::unique_topic;
use weir_fetch::{Consumer, FetchConfig, IsolationLevel, OwnedRecord, StartAt};

const DEADLINE: Duration = Duration::from_secs(60);
const PARTITIONS: i32 = 3;

fn config(bootstrap: &str, isolation: IsolationLevel) -> FetchConfig {
    FetchConfig {
        isolation_level: isolation,
        fetch_max_wait_ms: 100,
        fetch_max_bytes: 4 << 20,
        ring_bytes: 16 << 20,
        ..FetchConfig::new(bootstrap)
    }
}

fn to_rec(r: &OwnedRecord) -> Rec {
    Rec {
        partition: r.partition,
        offset: r.offset,
        key: r.key.clone(),
        value: r.value.clone(),
        headers: r
            .headers
            .iter()
            .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v.clone()))
            .collect(),
        timestamp: r.timestamp,
    }
}

/// Reads every partition from the beginning until each position reaches `ends`.
fn read_to(
    bootstrap: &str,
    topic: &str,
    isolation: IsolationLevel,
    ends: &BTreeMap<i32, i64>,
) -> Vec<Rec> {
    let mut c = Consumer::new(config(bootstrap, isolation)).unwrap();
    for p in 0..PARTITIONS {
        c.assign(topic, p, StartAt::Earliest);
    }
    let mut got = Vec::new();
    let start = Instant::now();
    while !(0..PARTITIONS).all(|p| {
        c.position(topic, p)
            .is_some_and(|pos| pos >= ends.get(&p).copied().unwrap_or(0))
    }) {
        assert!(
            start.elapsed() < DEADLINE,
            "{isolation:?}: timed out after {} records; positions {:?}, want {ends:?}",
            got.len(),
            (0..PARTITIONS)
                .map(|p| c.position(topic, p))
                .collect::<Vec<_>>()
        );
        c.poll(Duration::from_millis(200), |r| {
            got.push(to_rec(&r.to_owned()))
        })
        .unwrap_or_else(|e| panic!("poll: {e}"));
    }
    // Nothing past the ends (and no control record) turns up later.
    c.poll(Duration::from_millis(300), |r| {
        got.push(to_rec(&r.to_owned()))
    })
    .unwrap_or_else(|e| panic!("poll: {e}"));
    got.sort_by_key(|r| (r.partition, r.offset));
    got
}

/// Plain records, committed and aborted transactions, interleaved on every partition:
/// plain, [commit, abort], plain, [abort, commit], plain. Each producer run starts
/// after the previous one ended, so every partition's log alternates between plain
/// batches, transactional batches and their markers.
fn interleaved(bootstrap: &str, topic: &str, codec: Codec) -> Manifest {
    let base = || {
        Producer::new(bootstrap, topic)
            .partitions(PARTITIONS)
            .compression(codec)
            .headers(1)
            .batch_num_messages(4)
            .linger_ms(2)
    };
    let mut m = base().count(6).start_seq(0).run();
    m.merge(
        base()
            .count(5)
            .start_seq(100)
            .transactions(&[Txn::Commit, Txn::Abort])
            .run(),
    );
    m.merge(base().count(6).start_seq(200).run());
    m.merge(
        base()
            .count(5)
            .start_seq(300)
            .transactions(&[Txn::Abort, Txn::Commit])
            .run(),
    );
    m.merge(base().count(3).start_seq(400).run());
    m
}

#[test]
fn read_committed_and_read_uncommitted_deliver_what_kafka_defines_in_every_codec() {
    let broker = Broker::shared();
    let bootstrap = broker.bootstrap();
    for codec in Codec::ALL {
        let topic = unique_topic(&format!("txn-{}", codec.name()));
        let m = interleaved(&bootstrap, &topic, codec);
        let committed = m.committed();
        let all = m.all();
        // 15 plain + 10 committed + 10 aborted per partition.
        assert_eq!(all.len(), 3 * 35, "{codec:?}: produced");
        assert_eq!(committed.len(), 3 * 25, "{codec:?}: committed or plain");

        let rc = read_to(
            &bootstrap,
            &topic,
            IsolationLevel::ReadCommitted,
            &m.next_offset,
        );
        assert_eq!(rc.len(), committed.len(), "{codec:?}: read_committed count");
        assert_eq!(rc, committed, "{codec:?}: read_committed records");

        let ru = read_to(
            &bootstrap,
            &topic,
            IsolationLevel::ReadUncommitted,
            &m.next_offset,
        );
        assert_eq!(ru.len(), all.len(), "{codec:?}: read_uncommitted count");
        assert_eq!(ru, all, "{codec:?}: read_uncommitted records");
    }
}

/// An open transaction holds back its own records and every record after it under
/// read_committed (the last stable offset), while read_uncommitted reads on; once it
/// commits, read_committed delivers all of them.
#[test]
fn an_open_transaction_holds_read_committed_at_the_last_stable_offset() {
    let broker = Broker::shared();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("txn-lso");
    let before = Producer::new(&bootstrap, &topic)
        .partitions(PARTITIONS)
        .count(4)
        .run();
    let hold = support::scratch_dir("txn-hold").join("held");
    let txn = Producer::new(&bootstrap, &topic)
        .partitions(PARTITIONS)
        .count(5)
        .start_seq(100)
        .transactions(&[Txn::Commit])
        .hold_last(&hold)
        .spawn();
    let start = Instant::now();
    while !hold.exists() {
        assert!(
            start.elapsed() < DEADLINE,
            "the transactional producer never held"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Plain records after the open transaction's records.
    let after = Producer::new(&bootstrap, &topic)
        .partitions(PARTITIONS)
        .count(3)
        .start_seq(200)
        .run();

    let mut rc = Consumer::new(config(&bootstrap, IsolationLevel::ReadCommitted)).unwrap();
    let mut ru = Consumer::new(config(&bootstrap, IsolationLevel::ReadUncommitted)).unwrap();
    for p in 0..PARTITIONS {
        rc.assign(&topic, p, StartAt::Earliest);
        ru.assign(&topic, p, StartAt::Earliest);
    }
    let mut got_rc = Vec::new();
    let mut got_ru = Vec::new();
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until || got_ru.len() < before.count() + 15 + after.count() {
        assert!(
            start.elapsed() < DEADLINE,
            "read_uncommitted read {} records",
            got_ru.len()
        );
        rc.poll(Duration::from_millis(50), |r| {
            got_rc.push(to_rec(&r.to_owned()))
        })
        .unwrap();
        ru.poll(Duration::from_millis(50), |r| {
            got_ru.push(to_rec(&r.to_owned()))
        })
        .unwrap();
    }
    got_rc.sort_by_key(|r| (r.partition, r.offset));
    assert_eq!(
        got_rc,
        before.all(),
        "read_committed stops at the last stable offset"
    );
    for p in 0..PARTITIONS {
        assert_eq!(
            rc.position(&topic, p),
            Some(before.next_offset[&p]),
            "read_committed position of {p} waits at the open transaction"
        );
    }
    assert_eq!(
        got_ru.len(),
        before.count() + 15 + after.count(),
        "read_uncommitted reads the open transaction and what follows it"
    );

    std::fs::remove_file(&hold).unwrap();
    let txn = txn.wait();
    let mut want = before.clone();
    want.merge(txn);
    let mut tail = after.clone();
    // `after` was produced while the transaction was open: its offsets lie below the
    // commit marker, which the final end must pass.
    tail.next_offset.clear();
    want.merge(tail);
    let ends: BTreeMap<i32, i64> = (0..PARTITIONS)
        .map(|p| (p, want.records[&p].last().unwrap().rec.offset + 2))
        .collect();
    while !(0..PARTITIONS).all(|p| rc.position(&topic, p).is_some_and(|pos| pos >= ends[&p])) {
        assert!(
            start.elapsed() < DEADLINE,
            "read_committed never passed the commit"
        );
        rc.poll(Duration::from_millis(100), |r| {
            got_rc.push(to_rec(&r.to_owned()))
        })
        .unwrap();
    }
    got_rc.sort_by_key(|r| (r.partition, r.offset));
    assert_eq!(got_rc, want.all(), "after the commit: every record once");
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .output()
        .expect("run the weir binary")
}

/// The committed offset passes the final commit marker, so `weir groups describe`
/// and Kafka's own kafka-consumer-groups both report lag 0 (librdkafka users report a
/// lag stuck at 1 here).
#[test]
fn a_group_reaches_lag_zero_on_a_topic_ending_in_a_commit_marker() {
    let broker = Broker::shared();
    let b = broker.bootstrap();
    let topic = unique_topic("txn-lag");
    let group = unique_topic("txn-lag-g");
    let mut m = Producer::new(&b, &topic)
        .partitions(PARTITIONS)
        .count(4)
        .run();
    m.merge(
        Producer::new(&b, &topic)
            .partitions(PARTITIONS)
            .count(3)
            .start_seq(100)
            .transactions(&[Txn::Abort, Txn::Commit])
            .run(),
    );
    let out = run(&[
        "consume",
        "-b",
        &b,
        "-G",
        &group,
        &topic,
        "-o",
        "beginning",
        "-e",
        "-q",
        "-X",
        "isolation.level=read_committed",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "weir consume: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().count(),
        m.committed().len(),
        "records printed"
    );

    let out = run(&["groups", "describe", &group, "-b", &b]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "describe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for p in 0..PARTITIONS {
        let row: Vec<&str> = text
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|r| r.len() > 5 && r[0] == group && r[1] == topic && r[2] == p.to_string())
            .unwrap_or_else(|| panic!("no row for {p}:\n{text}"));
        assert_eq!(
            row[3],
            m.next_offset[&p].to_string(),
            "committed past the marker:\n{text}"
        );
        assert_eq!(row[4], m.next_offset[&p].to_string(), "log end:\n{text}");
        assert_eq!(row[5], "0", "lag:\n{text}");
    }

    // Kafka's own tool agrees.
    let tool = Command::new("bash")
        .arg(support::repo_root().join("scripts/kafka-tool.sh"))
        .args([
            "kafka-consumer-groups",
            "--bootstrap-server",
            &b,
            "--describe",
            "--group",
            &group,
        ])
        .output()
        .expect("run kafka-consumer-groups");
    let text = String::from_utf8_lossy(&tool.stdout);
    assert!(
        tool.status.success(),
        "kafka-consumer-groups: {}",
        String::from_utf8_lossy(&tool.stderr)
    );
    let lags: Vec<&str> = text
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(topic.as_str()))
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    assert_eq!(
        lags,
        vec!["0"; PARTITIONS as usize],
        "kafka-consumer-groups:\n{text}"
    );
}
