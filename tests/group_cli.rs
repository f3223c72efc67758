//! `weir consume -G GROUP TOPIC...` (the binary in group mode) against a real broker
//! (Apache Kafka; tansu with WEIR_TEST_BROKER=tansu), with librdkafka producing:
//!
//! * (a) `-o beginning -e` prints exactly what was produced and commits it: `weir groups
//!   describe` shows lag 0;
//! * (b) two members with `--sink DIR_i` share the group: the union of their sink
//!   files holds every record exactly once, across a handover;
//! * (c) SIGTERM on one of two members: it exits 0 at once and the other owns every
//!   partition long before the session timeout;
//! * (d) missing topics or group id: exit 2 with one clear line.
//!
//! tansu completes a first join after about half the session timeout, so members here
//! use `heartbeat.interval.ms=500` and a session timeout chosen per test.
//!
//! Setup once per machine: `scripts/install-tansu.sh` and `scripts/setup-python.sh`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::broker::Broker;
use support::peer::{Manifest, Producer};
use support::unique_topic;
use support::wait_bounded;
use weir::sink::Sink;

const WEIR: &str = env!("CARGO_BIN_EXE_weir");

fn spawn(args: &[&str]) -> Child {
    Command::new(WEIR)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weir")
}

fn sigterm(child: &Child) {
    let pid = i32::try_from(child.id()).expect("pid fits i32");
    // SAFETY: kill(2) with a pid this test spawned and has not reaped yet.
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(rc, 0, "kill -TERM {pid}");
}

/// `weir groups describe GROUP`: its stdout.
fn describe(bootstrap: &str, group: &str) -> String {
    let out = Command::new(WEIR)
        .args(["groups", "describe", group, "-b", bootstrap])
        .output()
        .expect("run weir groups describe");
    assert!(
        out.status.success(),
        "describe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The partition rows of `describe`: GROUP TOPIC PARTITION CURRENT-OFFSET
/// LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID.
fn rows(stdout: &str, group: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(group))
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// Checks every partition of `m`'s topic is committed up to its end (lag 0).
fn assert_committed_to_end(bootstrap: &str, group: &str, next: &BTreeMap<i32, i64>) {
    let text = describe(bootstrap, group);
    let rows = rows(&text, group);
    for (p, end) in next {
        let row = rows
            .iter()
            .find(|r| r.get(2) == Some(&p.to_string()))
            .unwrap_or_else(|| panic!("no row for partition {p}:\n{text}"));
        assert_eq!(row[3], end.to_string(), "CURRENT-OFFSET p{p}:\n{text}");
        assert_eq!(row[5], "0", "LAG p{p}:\n{text}");
    }
    assert!(text.contains("total lag 0"), "{text}");
}

/// One counter's value from `GET /metrics` at `addr` (`None` when absent).
fn scrape(addr: &str, name: &str) -> Option<f64> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).expect("connect to --metrics-addr");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    write!(
        conn,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut body = String::new();
    conn.read_to_string(&mut body).expect("read /metrics");
    body.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

fn member_args<'a>(
    bootstrap: &'a str,
    group: &'a str,
    topic: &'a str,
    session_ms: &'a str,
) -> Vec<&'a str> {
    vec![
        "consume",
        "-b",
        bootstrap,
        "-G",
        group,
        topic,
        "-q",
        "-X",
        session_ms,
        "-X",
        "heartbeat.interval.ms=500",
    ]
}

#[test]
fn group_reads_exactly_what_was_produced_and_commits_it() {
    let tansu = Broker::shared();
    let b = tansu.bootstrap();
    let topic = unique_topic("gcli-a");
    let group = unique_topic("gcli-a-g");
    let m = Producer::new(&b, &topic).partitions(3).count(70).run();
    let mut args = member_args(&b, &group, &topic, "session.timeout.ms=6000");
    args.extend(["-o", "beginning", "-e", "-f", "%p %o %S\\n"]);
    let out = wait_bounded(spawn(&args), Duration::from_secs(90), "weir -G -e");
    assert!(
        out.status.success(),
        "weir -G -e: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    got.sort();
    let mut want: Vec<String> = m
        .records
        .iter()
        .flat_map(|(p, recs)| {
            recs.iter().map(move |r| {
                let len = r.rec.value.as_ref().map_or(-1, |v| v.len() as i64);
                format!("{p} {} {len}", r.rec.offset)
            })
        })
        .collect();
    want.sort();
    assert_eq!(got.len(), m.count());
    assert_eq!(got, want);
    assert_committed_to_end(&b, &group, &m.next_offset);

    // Committed: a second run with -o beginning starts at the commits, reads nothing.
    let out = wait_bounded(spawn(&args), Duration::from_secs(90), "second weir -G -e");
    assert!(
        out.status.success(),
        "second run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");

    // -J in group mode: kcat's envelope with the batch's timestamp type.
    let group2 = unique_topic("gcli-a-j");
    let mut args = member_args(&b, &group2, &topic, "session.timeout.ms=6000");
    args.extend(["-o", "beginning", "-e", "-J"]);
    let out = wait_bounded(spawn(&args), Duration::from_secs(90), "weir -G -J");
    assert!(
        out.status.success(),
        "weir -G -J: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want_ts: BTreeMap<(i64, i64), i64> = m
        .records
        .iter()
        .flat_map(|(p, recs)| {
            recs.iter()
                .map(move |r| ((i64::from(*p), r.rec.offset), r.rec.timestamp))
        })
        .collect();
    let mut n = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON {line:?}: {e}"));
        assert_eq!(
            v["topic"],
            serde_json::Value::from(topic.as_str()),
            "{line}"
        );
        assert_eq!(v["tstype"], "create", "{line}");
        let key = (
            v["partition"].as_i64().expect("partition"),
            v["offset"].as_i64().expect("offset"),
        );
        assert_eq!(v["ts"].as_i64(), want_ts.get(&key).copied(), "{line}");
        n += 1;
    }
    assert_eq!(n, m.count());
}

/// Every `"P O"` line in the durable sink files of `dirs`, with how often it occurs.
fn sink_lines(dirs: &[PathBuf], topic: &str, partitions: i32) -> BTreeMap<(i32, i64), usize> {
    let mut seen = BTreeMap::new();
    for dir in dirs {
        for p in 0..partitions {
            let Ok(bytes) = Sink::read_durable(dir, topic, p) else {
                continue;
            };
            for line in String::from_utf8_lossy(&bytes).lines() {
                let mut it = line.split(' ');
                let (Some(lp), Some(lo)) = (it.next(), it.next()) else {
                    panic!("bad sink line {line:?}");
                };
                let key = (
                    lp.parse::<i32>().expect("partition"),
                    lo.parse::<i64>().expect("offset"),
                );
                assert_eq!(key.0, p, "line {line:?} in partition {p}'s files");
                *seen.entry(key).or_insert(0) += 1;
            }
        }
    }
    seen
}

fn produced(manifests: &[&Manifest]) -> BTreeSet<(i32, i64)> {
    manifests
        .iter()
        .flat_map(|m| {
            m.records
                .iter()
                .flat_map(|(p, recs)| recs.iter().map(move |r| (*p, r.rec.offset)))
        })
        .collect()
}

/// Waits until the sinks hold `want` (each once) or `limit` passes; returns what they
/// hold.
fn wait_for_sinks(
    dirs: &[PathBuf],
    topic: &str,
    partitions: i32,
    want: &BTreeSet<(i32, i64)>,
    limit: Duration,
) -> BTreeMap<(i32, i64), usize> {
    let start = Instant::now();
    loop {
        let got = sink_lines(dirs, topic, partitions);
        if got.keys().cloned().collect::<BTreeSet<_>>() == *want || start.elapsed() > limit {
            return got;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn assert_exactly_once(got: &BTreeMap<(i32, i64), usize>, want: &BTreeSet<(i32, i64)>) {
    let dup: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        dup.is_empty(),
        "records in the sinks more than once: {dup:?}"
    );
    let missing: Vec<_> = want.iter().filter(|k| !got.contains_key(k)).collect();
    assert!(
        missing.is_empty(),
        "records missing from the sinks: {missing:?}"
    );
    let extra: Vec<_> = got.keys().filter(|k| !want.contains(k)).collect();
    assert!(extra.is_empty(), "records never produced: {extra:?}");
}

#[test]
fn two_sink_members_share_the_group_and_sigterm_hands_over_at_once() {
    const PARTS: i32 = 4;
    const SESSION_MS: u64 = 20_000;
    let tansu = Broker::shared();
    let b = tansu.bootstrap();
    let topic = unique_topic("gcli-b");
    let group = unique_topic("gcli-b-g");
    // One record per batch: tansu answers a fetch from inside a batch with the next
    // batch, so a member resuming at another's commit must resume at a batch start.
    let produce = |count: usize, seq: u64| {
        Producer::new(&b, &topic)
            .partitions(PARTS)
            .count(count)
            .start_seq(seq)
            .batch_num_messages(1)
            .linger_ms(0)
            .run()
    };
    let first = produce(50, 0);
    let base = std::env::temp_dir().join(format!("weir-gcli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let dirs = [base.join("a"), base.join("b")];
    let session = format!("session.timeout.ms={SESSION_MS}");
    let start_member = |name: &str, dir: &Path, metrics: Option<&str>| {
        let client = format!("client.id={name}");
        let dir = dir.to_str().expect("utf-8 temp dir");
        let mut args = member_args(&b, &group, &topic, &session);
        args.extend([
            "-o",
            "beginning",
            "-f",
            "%p %o\\n",
            "--sink",
            dir,
            "-X",
            &client,
            "-X",
            "weir.sink.checkpoint.ms=200",
        ]);
        if let Some(m) = metrics {
            args.extend(["--metrics-addr", m]);
        }
        spawn(&args)
    };
    let metrics_addr = format!("127.0.0.1:{}", support::free_port());
    let member_a = start_member("member-a", &dirs[0], None);
    let member_b = start_member("member-b", &dirs[1], Some(&metrics_addr));

    // Both members are in a stable generation. (tansu's DescribeGroups carries no
    // assignments, so who owns what is read from the sinks.)
    let t = Instant::now();
    loop {
        let text = Command::new(WEIR)
            .args(["groups", "describe", &group, "-b", &b])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        if text.contains("state Stable, 2 member(s)") {
            eprintln!("both members joined after {:?}", t.elapsed());
            break;
        }
        if t.elapsed() > Duration::from_secs(90) {
            for (name, mut m) in [("a", member_a), ("b", member_b)] {
                let _ = m.kill();
                let out = m.wait_with_output().expect("member output");
                eprintln!(
                    "member {name} stderr:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            panic!("the two members never formed a stable group:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let second = produce(100, 50);
    let want = produced(&[&first, &second]);
    let got = wait_for_sinks(&dirs, &topic, PARTS, &want, Duration::from_secs(60));
    assert_exactly_once(&got, &want);
    let new_in = |dir: &PathBuf, m: &Manifest| -> BTreeSet<i32> {
        let have = sink_lines(std::slice::from_ref(dir), &topic, PARTS);
        produced(&[m])
            .into_iter()
            .filter(|k| have.contains_key(k))
            .map(|(p, _)| p)
            .collect()
    };
    let a_parts = new_in(&dirs[0], &second);
    let b_parts = new_in(&dirs[1], &second);
    eprintln!("member a wrote partitions {a_parts:?}, member b {b_parts:?}");
    assert!(
        !a_parts.is_empty() && !b_parts.is_empty() && a_parts.is_disjoint(&b_parts),
        "the members did not split the partitions: a {a_parts:?}, b {b_parts:?}"
    );

    // (c) SIGTERM on member a: it exits 0 at once; member b takes a's partitions
    // (and resumes at a's commits) well before the session timeout.
    let t = Instant::now();
    sigterm(&member_a);
    let out = wait_bounded(member_a, Duration::from_secs(15), "member a after SIGTERM");
    let exit_took = t.elapsed();
    assert!(
        out.status.success(),
        "member a after SIGTERM: {} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let third = produce(60, 150);
    let want3 = produced(&[&third]);
    let handover = loop {
        let in_b = sink_lines(std::slice::from_ref(&dirs[1]), &topic, PARTS);
        if want3.iter().all(|k| in_b.contains_key(k)) {
            break t.elapsed();
        }
        assert!(
            t.elapsed() < Duration::from_millis(SESSION_MS),
            "member b did not write every new record within the session timeout"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!(
        "member a exited {exit_took:?} after SIGTERM; b held every new record (all partitions) after {handover:?}"
    );
    assert!(
        exit_took < Duration::from_secs(5),
        "exit took {exit_took:?}"
    );
    // tansu expires a silent member after about half the session timeout: the
    // handover must come well before that, so it came from the LeaveGroup.
    assert!(
        handover < Duration::from_millis(SESSION_MS / 2 - 2_000),
        "handover after {handover:?}: no faster than a session expiry"
    );
    let want = produced(&[&first, &second, &third]);
    let got = wait_for_sinks(&dirs, &topic, PARTS, &want, Duration::from_secs(30));
    assert_exactly_once(&got, &want);
    // Member b saw at least the generation with a and the one after a left.
    let rebalances = scrape(&metrics_addr, "kafka_consumer_rebalance_total");
    let commit_errors = scrape(&metrics_addr, "kafka_consumer_commit_errors_total");
    eprintln!("member b: rebalances {rebalances:?}, commit errors {commit_errors:?}");
    assert!(rebalances.is_some_and(|n| n >= 2.0), "{rebalances:?}");
    assert!(
        commit_errors.is_some(),
        "kafka_consumer_commit_errors_total missing"
    );
    // The seed's monitoring list: rebalance durations (one per rebalance b saw),
    // commit round trips, record-to-output latency and records per poll were observed.
    let count = |name: &str| scrape(&metrics_addr, &format!("{name}_count")).unwrap_or(0.0);
    let r = rebalances.unwrap_or(0.0);
    assert!(
        count("kafka_consumer_rebalance_duration_seconds") >= r,
        "rebalance durations for {r} rebalances"
    );
    assert!(count("kafka_consumer_commit_latency_seconds") >= 1.0);
    assert!(count("kafka_consumer_end_to_end_latency_seconds") >= 1.0);
    assert!(count("kafka_consumer_records_per_poll") >= 1.0);

    sigterm(&member_b);
    let out = wait_bounded(member_b, Duration::from_secs(15), "member b after SIGTERM");
    assert!(
        out.status.success(),
        "member b after SIGTERM: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The group's commits are the sinks' durable positions: lag 0 everywhere.
    let mut next = third.next_offset.clone();
    for (p, o) in &first.next_offset {
        next.entry(*p).or_insert(*o);
    }
    assert_committed_to_end(&b, &group, &next);
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn missing_topics_or_group_id_are_usage_errors() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["consume", "-b", "127.0.0.1:1", "-G", "g"],
            "group mode needs topics: -G GROUP TOPIC [TOPIC...]",
        ),
        (&["consume", "-b", "127.0.0.1:1", "-G"], "-G <GROUP>"),
        (
            &["consume", "-b", "127.0.0.1:1", "-G", "", "t"],
            "`group.id` is not set",
        ),
        (
            &["consume", "-b", "127.0.0.1:1", "-G", "g", "t", "-o", "42"],
            "in group mode -o can only be beginning, end or stored",
        ),
    ];
    for (args, want) in cases {
        let out = wait_bounded(spawn(args), Duration::from_secs(30), "weir usage error");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// A sink ahead of the group (filled by a manual-assignment run): the group member
/// resumes at the sink's positions, writes nothing twice, and commits them.
#[test]
fn group_member_resumes_at_a_sink_ahead_of_the_group() {
    const PARTS: i32 = 3;
    let tansu = Broker::shared();
    let b = tansu.bootstrap();
    let topic = unique_topic("gcli-e");
    let group = unique_topic("gcli-e-g");
    let produce = |count: usize, seq: u64| {
        Producer::new(&b, &topic)
            .partitions(PARTS)
            .count(count)
            .start_seq(seq)
            .batch_num_messages(1)
            .linger_ms(0)
            .run()
    };
    let first = produce(40, 0);
    let dir = std::env::temp_dir().join(format!("weir-gcli-e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_s = dir.to_str().expect("utf-8 temp dir").to_owned();
    let out = wait_bounded(
        spawn(&[
            "consume",
            "-b",
            &b,
            "-t",
            &topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%p %o\\n",
            "--sink",
            &dir_s,
        ]),
        Duration::from_secs(60),
        "manual sink run",
    );
    assert!(
        out.status.success(),
        "manual run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dirs = [dir.clone()];
    let want = produced(&[&first]);
    assert_exactly_once(&sink_lines(&dirs, &topic, PARTS), &want);

    let mut args = member_args(&b, &group, &topic, "session.timeout.ms=6000");
    args.retain(|a| *a != "-q");
    args.extend(["-o", "beginning", "-e", "-f", "%p %o\\n", "--sink", &dir_s]);
    let out = wait_bounded(spawn(&args), Duration::from_secs(90), "group sink run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "group run: {err}");
    // No committed offset and -o beginning would start at 0: the sink is ahead.
    assert!(err.contains("weir: 0 records"), "{err}");
    assert_exactly_once(&sink_lines(&dirs, &topic, PARTS), &want);
    assert_committed_to_end(&b, &group, &first.next_offset);

    // New records: the member appends exactly those.
    let second = produce(25, 40);
    let out = wait_bounded(spawn(&args), Duration::from_secs(90), "second group run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "second group run: {err}");
    assert!(
        err.contains(&format!("weir: {} records", second.count())),
        "{err}"
    );
    let want = produced(&[&first, &second]);
    assert_exactly_once(&sink_lines(&dirs, &topic, PARTS), &want);
    assert_committed_to_end(&b, &group, &second.next_offset);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Commits never run ahead of the sink: a member killed with SIGKILL mid-stream
/// leaves its partitions committed at most to its durable records, so the member that
/// takes them over (after the session expires) misses nothing. (Records between the
/// killed member's last commit and its last checkpoint are in both sinks: each sink is
/// exactly-once for itself, not across directories.)
#[test]
fn a_killed_sink_member_loses_nothing_to_its_successor() {
    const PARTS: i32 = 2;
    let tansu = Broker::shared();
    let b = tansu.bootstrap();
    let topic = unique_topic("gcli-k");
    let group = unique_topic("gcli-k-g");
    let produce = |count: usize, seq: u64| {
        Producer::new(&b, &topic)
            .partitions(PARTS)
            .count(count)
            .start_seq(seq)
            .batch_num_messages(1)
            .linger_ms(0)
            .run()
    };
    let first = produce(20, 0);
    let base = std::env::temp_dir().join(format!("weir-gcli-k-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let dirs = [base.join("a"), base.join("b")];
    let start_member = |dir: &Path| {
        let dir = dir.to_str().expect("utf-8 temp dir");
        let mut args = member_args(&b, &group, &topic, "session.timeout.ms=6000");
        args.extend([
            "-o",
            "beginning",
            "-f",
            "%p %o\\n",
            "--sink",
            dir,
            "-X",
            "weir.sink.checkpoint.ms=100",
            "-X",
            // One member: range gives it every partition.
            "partition.assignment.strategy=range",
        ]);
        spawn(&args)
    };
    let mut member_a = start_member(&dirs[0]);
    let want = produced(&[&first]);
    let got = wait_for_sinks(&dirs[..1], &topic, PARTS, &want, Duration::from_secs(60));
    assert_exactly_once(&got, &want);
    // Kill a while it writes a stream of records.
    let producer = {
        let (b, topic) = (b.clone(), topic.clone());
        std::thread::spawn(move || {
            Producer::new(&b, &topic)
                .partitions(PARTS)
                .count(1500)
                .start_seq(20)
                .batch_num_messages(1)
                .linger_ms(0)
                .run()
        })
    };
    let t = Instant::now();
    loop {
        let n = sink_lines(&dirs[..1], &topic, PARTS).len();
        if n >= want.len() + 200 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "member a never got the stream"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    member_a.kill().expect("SIGKILL member a");
    member_a.wait().expect("reap member a");
    let in_a = sink_lines(&dirs[..1], &topic, PARTS);
    let second = producer.join().expect("producer thread");

    let member_b = start_member(&dirs[1]);
    let want = produced(&[&first, &second]);
    let t = Instant::now();
    let union = loop {
        let u = sink_lines(&dirs, &topic, PARTS);
        if want.iter().all(|k| u.contains_key(k)) || t.elapsed() > Duration::from_secs(60) {
            break u;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    sigterm(&member_b);
    let out = wait_bounded(member_b, Duration::from_secs(15), "member b after SIGTERM");
    assert!(
        out.status.success(),
        "member b: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let missing: Vec<_> = want.iter().filter(|k| !union.contains_key(k)).collect();
    assert!(
        missing.is_empty(),
        "{} records in neither sink (commits ran ahead of the sink?): first {:?}",
        missing.len(),
        missing.first()
    );
    let in_b = sink_lines(&dirs[1..], &topic, PARTS);
    for (sink, name) in [(&in_a, "a"), (&in_b, "b")] {
        let dup: Vec<_> = sink.iter().filter(|(_, n)| **n > 1).collect();
        assert!(dup.is_empty(), "sink {name} holds records twice: {dup:?}");
    }
    let both = in_a.keys().filter(|k| in_b.contains_key(k)).count();
    eprintln!(
        "a held {} records at the kill, b {}, in both (after a's last commit) {both}",
        in_a.len(),
        in_b.len()
    );
    assert!(
        in_b.len() < want.len(),
        "b started from the beginning, not at a's commits"
    );
    let _ = std::fs::remove_dir_all(&base);
}

/// A second SIGTERM during the graceful stop exits at once (status 1); the sink is
/// intact, and the next run completes it exactly once.
#[test]
fn a_second_sigterm_exits_at_once_without_damaging_the_sink() {
    const PARTS: i32 = 3;
    let tansu = Broker::shared();
    let b = tansu.bootstrap();
    let topic = unique_topic("gcli-s");
    let group = unique_topic("gcli-s-g");
    let m = Producer::new(&b, &topic)
        .partitions(PARTS)
        .count(1500)
        .batch_num_messages(1)
        .linger_ms(0)
        .run();
    let dir = std::env::temp_dir().join(format!("weir-gcli-s-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_s = dir.to_str().expect("utf-8 temp dir").to_owned();
    let mut args = member_args(&b, &group, &topic, "session.timeout.ms=6000");
    args.extend([
        "-o",
        "beginning",
        "-f",
        "%p %o\\n",
        "--sink",
        &dir_s,
        "-X",
        "weir.sink.checkpoint.ms=50",
    ]);
    let child = spawn(&args);
    let dirs = [dir.clone()];
    let t = Instant::now();
    while sink_lines(&dirs, &topic, PARTS).is_empty() {
        assert!(t.elapsed() < Duration::from_secs(60), "nothing consumed");
        std::thread::sleep(Duration::from_millis(5));
    }
    let t = Instant::now();
    let mut child = child;
    // SIGTERM every 2 ms until it exits: two signals sent together can merge into one
    // pending signal, so keep sending until one arrives after the first was handled
    // (the graceful stop takes far longer: a commit and a LeaveGroup round trip).
    while child.try_wait().expect("try_wait").is_none() && t.elapsed() < Duration::from_secs(10) {
        sigterm(&child);
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = wait_bounded(child, Duration::from_secs(10), "weir after two SIGTERMs");
    eprintln!("exited {:?} after the signals: {}", t.elapsed(), out.status);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());

    let mut args = args.clone();
    args.push("-e");
    let out = wait_bounded(spawn(&args), Duration::from_secs(90), "rerun with -e");
    assert!(
        out.status.success(),
        "rerun: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_exactly_once(&sink_lines(&dirs, &topic, PARTS), &produced(&[&m]));
    assert_committed_to_end(&b, &group, &m.next_offset);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Measurement, not a timed test: `weir consume -G` against manual assignment over
/// the same records, output to /dev/null, wall and CPU time of the weir process.
/// `cargo test -p weir --release --test group_cli measure -- --ignored --nocapture`
#[test]
#[ignore = "measurement"]
fn measure_group_mode_against_manual_assignment() {
    let tansu = Broker::shared();
    let b = tansu.bootstrap();
    let topic = unique_topic("gcli-m");
    let m = Producer::new(&b, &topic)
        .partitions(3)
        .count(100_000)
        .value_size(100)
        .no_keys()
        .omit_values()
        .run();
    let group = unique_topic("gcli-m-g");
    let session = "session.timeout.ms=6000";
    let mut group_args = member_args(&b, &group, &topic, session);
    group_args.extend(["-o", "beginning", "-e"]);
    let manual_args = [
        "consume",
        "-b",
        &b,
        "-t",
        &topic,
        "-o",
        "beginning",
        "-e",
        "-q",
    ];
    for (name, args) in [("manual", &manual_args[..]), ("group", &group_args[..])] {
        let t = Instant::now();
        let child = Command::new("/usr/bin/time")
            .args(["-f", "%U %S"])
            .arg(WEIR)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn /usr/bin/time weir");
        let out = wait_bounded(child, Duration::from_secs(300), name);
        let wall = t.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {err}");
        let cpu: f64 = err
            .lines()
            .last()
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|x| x.parse::<f64>().ok())
            .sum();
        eprintln!(
            "{name}: {} records in {wall:?} wall, {cpu:.2} s CPU ({:.0} records per CPU-second)",
            m.count(),
            m.count() as f64 / cpu.max(0.001)
        );
    }
}

/// `-c N` in group mode commits exactly the records written: the next run of the
/// group reads the rest, nothing twice, nothing lost.
#[test]
fn count_commits_exactly_what_was_written() {
    let tansu = Broker::shared();
    let b = tansu.bootstrap();
    let topic = unique_topic("gcli-c");
    let group = unique_topic("gcli-c-g");
    // One record per batch (tansu answers a fetch from inside a batch with the next
    // batch); a fetch response still carries many records, so -c stops inside one.
    let m = Producer::new(&b, &topic)
        .partitions(2)
        .count(60)
        .batch_num_messages(1)
        .linger_ms(0)
        .run();
    let run = |extra: &[&str], what: &str| -> Vec<(i32, i64)> {
        let mut args = member_args(&b, &group, &topic, "session.timeout.ms=6000");
        args.extend(["-o", "beginning", "-f", "%p %o\\n"]);
        args.extend(extra);
        let out = wait_bounded(spawn(&args), Duration::from_secs(90), what);
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let (p, o) = l.split_once(' ').expect("\"P O\" line");
                (p.parse().expect("partition"), o.parse().expect("offset"))
            })
            .collect()
    };
    let first = run(&["-c", "45"], "weir -G -c 45");
    assert_eq!(first.len(), 45);
    let rest = run(&["-e"], "weir -G -e after -c");
    let mut all: Vec<(i32, i64)> = first.iter().chain(&rest).copied().collect();
    all.sort();
    let want: Vec<(i32, i64)> = produced(&[&m]).into_iter().collect();
    assert_eq!(all, want, "first run {first:?}\nsecond run {rest:?}");
}

/// `-X enable.auto.commit=false`: weir commits nothing, not even on exit, so a second
/// run of the group reads everything again.
#[test]
fn auto_commit_off_commits_nothing() {
    let tansu = Broker::shared();
    let b = tansu.bootstrap();
    let topic = unique_topic("gcli-n");
    let group = unique_topic("gcli-n-g");
    let m = Producer::new(&b, &topic).partitions(2).count(30).run();
    let mut args = member_args(&b, &group, &topic, "session.timeout.ms=6000");
    args.extend([
        "-o",
        "beginning",
        "-e",
        "-f",
        "%p %o\\n",
        "-X",
        "enable.auto.commit=false",
    ]);
    for what in ["first run", "second run"] {
        let out = wait_bounded(spawn(&args), Duration::from_secs(90), what);
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).lines().count(),
            m.count(),
            "{what}"
        );
    }
}

/// The owner (CONSUMER-ID, CLIENT-ID) of each partition in `describe` output.
fn owners(text: &str, group: &str) -> BTreeMap<i32, (String, String)> {
    rows(text, group)
        .into_iter()
        .filter(|r| r.len() > 8)
        .filter_map(|r| Some((r[2].parse().ok()?, (r[6].clone(), r[8].clone()))))
        .collect()
}

/// Waits (bounded) until `describe` shows every one of `parts` partitions owned and
/// `ok` holds for the owners; returns them.
fn wait_owners(
    b: &str,
    group: &str,
    parts: i32,
    ok: impl Fn(&BTreeMap<i32, (String, String)>) -> bool,
) -> BTreeMap<i32, (String, String)> {
    let start = Instant::now();
    loop {
        // The group does not exist until its first member joined: describe fails.
        let out = Command::new(WEIR)
            .args(["groups", "describe", group, "-b", b])
            .output()
            .expect("run weir groups describe");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let o = owners(&text, group);
        if o.len() == parts as usize && o.values().all(|(m, _)| m != "-") && ok(&o) {
            return o;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the owners never became what the test waits for:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The partitions owned by the member with `client` as client.id, and its member id.
fn owned_by(o: &BTreeMap<i32, (String, String)>, client: &str) -> (BTreeSet<i32>, Option<String>) {
    let parts = o
        .iter()
        .filter(|(_, (_, c))| c == client)
        .map(|(p, _)| *p)
        .collect();
    let id = o
        .values()
        .find(|(_, c)| c == client)
        .map(|(m, _)| m.clone());
    (parts, id)
}

/// Apache Kafka keeps a static member's place while it restarts within
/// `session.timeout.ms`: no rebalance for the other member (its rebalance counter
/// and member id do not change), and the restarted member owns what it owned. A
/// second process with the same `group.instance.id` takes the place, and the one it
/// replaced is fenced: it exits 1 with a message naming `group.instance.id`.
#[test]
fn static_member_restart_causes_no_rebalance_and_a_duplicate_is_fenced() {
    const PARTS: i32 = 4;
    let broker = Broker::shared();
    assert!(
        broker.is_kafka(),
        "static membership is checked on Apache Kafka"
    );
    let b = broker.bootstrap();
    let topic = unique_topic("gcli-static");
    let group = unique_topic("gcli-static-g");
    Producer::new(&b, &topic).partitions(PARTS).count(5).run();
    let session = "session.timeout.ms=30000";
    let member = |client: &str, instance: Option<&str>, metrics: Option<&str>| {
        let mut args = member_args(&b, &group, &topic, session);
        let client = format!("client.id={client}");
        args.extend(["-o", "beginning", "-f", "%p %o\\n", "-X", &client]);
        let id;
        if let Some(i) = instance {
            id = format!("group.instance.id={i}");
            args.extend(["-X", &id]);
        }
        if let Some(m) = metrics {
            args.extend(["--metrics-addr", m]);
        }
        Command::new(WEIR)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn weir")
    };
    let metrics = format!("127.0.0.1:{}", support::free_port());
    let dynamic = member("dynamic", None, Some(&metrics));
    let first = member("static", Some("static-a"), None);
    let two = |o: &BTreeMap<i32, (String, String)>| {
        !owned_by(o, "static").0.is_empty() && !owned_by(o, "dynamic").0.is_empty()
    };
    let before = wait_owners(&b, &group, PARTS, two);
    // Let the group settle, then read the dynamic member's rebalance count.
    std::thread::sleep(Duration::from_secs(2));
    let rebalances = scrape(&metrics, "kafka_consumer_rebalance_total").expect("rebalance counter");
    let (static_parts, static_id) = owned_by(&before, "static");
    let (_, dynamic_id) = owned_by(&before, "dynamic");

    // A static member leaves no group on SIGTERM; its replacement takes its place (a
    // new member id, the same partitions).
    sigterm(&first);
    let out = wait_bounded(
        first,
        Duration::from_secs(20),
        "the static member's SIGTERM",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restarted = member("static", Some("static-a"), None);
    let after = wait_owners(&b, &group, PARTS, |o| owned_by(o, "static").1 != static_id);
    assert_eq!(
        owned_by(&after, "static").0,
        static_parts,
        "the restarted member's partitions"
    );
    assert_eq!(
        owned_by(&after, "dynamic").1,
        dynamic_id,
        "the other member did not rejoin"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        scrape(&metrics, "kafka_consumer_rebalance_total"),
        Some(rebalances),
        "the other member saw a rebalance"
    );

    // A duplicate instance id: the newcomer takes the place, the old process is fenced.
    let duplicate = member("static", Some("static-a"), None);
    let out = wait_bounded(restarted, Duration::from_secs(30), "the fenced member");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "fenced member's exit: {stderr}");
    assert!(
        stderr.contains("fenced") && stderr.contains("group.instance.id"),
        "the message names the cause: {stderr}"
    );
    for c in [&duplicate, &dynamic] {
        sigterm(c);
    }
    for (c, what) in [(duplicate, "duplicate"), (dynamic, "dynamic")] {
        let out = wait_bounded(c, Duration::from_secs(20), what);
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// weir, the Java KafkaConsumer (kafka-clients 4.4) and librdkafka in one group under
/// `strategy`: the partitions are split between all three, every record is handled,
/// none twice (each resumes from the others' commits across the handovers), and the
/// group ends with lag 0.
fn mixed_with_java_and_librdkafka(
    weir_strategy: &str,
    java_assignor: &str,
    rdkafka_strategy: &str,
) {
    use support::peer::{JavaPeer, RdkafkaConsume};
    const PARTS: i32 = 6;
    let broker = Broker::shared();
    let b = broker.bootstrap();
    let topic = unique_topic("gcli-mixed");
    let group = unique_topic("gcli-mixed-g");
    let first = Producer::new(&b, &topic).partitions(PARTS).count(30).run();
    let dir = support::scratch_dir("gcli-mixed");
    let sink = dir.join("sink");
    let strategy = format!("partition.assignment.strategy={weir_strategy}");
    let mut args = member_args(&b, &group, &topic, "session.timeout.ms=10000");
    let sink_s = sink.to_str().expect("utf-8").to_owned();
    args.extend([
        "-o",
        "beginning",
        "-f",
        "%p %o\\n",
        "--sink",
        &sink_s,
        "-X",
        &strategy,
        "-X",
        "weir.sink.checkpoint.ms=200",
    ]);
    let weir_member = spawn(&args);
    let java_strategy = format!("partition.assignment.strategy={java_assignor}");
    let mut java = JavaPeer::start(
        &b,
        &group,
        &[&topic],
        &[
            &java_strategy,
            "session.timeout.ms=10000",
            "heartbeat.interval.ms=500",
        ],
    );
    let rd = {
        let (b, topic, group) = (b.clone(), topic.clone(), group.clone());
        let strategy = rdkafka_strategy.to_string();
        std::thread::spawn(move || {
            RdkafkaConsume::new(&b, &topic)
                .group(&group)
                .session_timeout_ms(10_000)
                .property("partition.assignment.strategy", &strategy)
                .property("enable.auto.commit", "true")
                .run_seconds(15.0)
                .run()
        })
    };
    // All three in the group: the Java member owns its share (2 of 6).
    let start = Instant::now();
    while java.owned().len() != 2 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the Java member never owned 2 of 6 partitions: {:?}",
            java.seen
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let second = Producer::new(&b, &topic)
        .partitions(PARTS)
        .count(30)
        .start_seq(30)
        .run();
    // librdkafka leaves after its 15 s; the others take its partitions over.
    let rd = rd.join().expect("librdkafka member");
    let want = produced(&[&first, &second]);
    let mut got: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    let start = Instant::now();
    loop {
        got.clear();
        for (k, n) in sink_lines(std::slice::from_ref(&sink), &topic, PARTS) {
            *got.entry(k).or_default() += n;
        }
        for k in java.records() {
            *got.entry(k).or_default() += 1;
        }
        for r in &rd.records {
            *got.entry((r.partition, r.offset)).or_default() += 1;
        }
        if want.iter().all(|k| got.contains_key(k)) || start.elapsed() > Duration::from_secs(60) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let java_records = java.records().len();
    let lines = java.stop(Duration::from_secs(30));
    sigterm(&weir_member);
    let out = wait_bounded(weir_member, Duration::from_secs(30), "weir member");
    assert!(
        out.status.success(),
        "weir: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let weir_records = sink_lines(std::slice::from_ref(&sink), &topic, PARTS).len();
    eprintln!(
        "{weir_strategy}: weir {weir_records}, Java {java_records}, librdkafka {} records",
        rd.records.len()
    );
    assert!(
        weir_records > 0 && java_records > 0 && !rd.records.is_empty(),
        "each member handled records; Java said {lines:?}"
    );
    assert_exactly_once(&got, &want);
    assert_committed_to_end(&b, &group, &second.next_offset);
}

#[test]
fn mixed_group_with_java_and_librdkafka_range() {
    mixed_with_java_and_librdkafka(
        "range",
        "org.apache.kafka.clients.consumer.RangeAssignor",
        "range",
    );
}

#[test]
fn mixed_group_with_java_and_librdkafka_cooperative_sticky() {
    mixed_with_java_and_librdkafka(
        "cooperative-sticky",
        "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
        "cooperative-sticky",
    );
}
