//! `weir consume` end to end against a real broker (Apache Kafka; tansu with WEIR_TEST_BROKER=tansu), with librdkafka producing.
//!
//! * `-J` output carries kcat's envelope and every produced record exactly once;
//! * `--sink` survives `kill -9` at random moments: after restarts with the same
//!   arguments, the files hold every record exactly once, in order;
//! * SIGTERM stops gracefully (exit 0, summary line).
//! * `weir.max.decompressed.batch.bytes` bounds decompression: a batch inflating past
//!   it is a clear error naming the partition and offset.
//!
//! Setup once per machine: `scripts/install-kafka.sh` and `scripts/setup-python.sh`.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::broker::Broker;
use support::peer::{Codec, Producer};
use support::wait_bounded;
use weir::sink::Sink;

const WEIR: &str = env!("CARGO_BIN_EXE_weir");

fn weir(args: &[&str]) -> Child {
    Command::new(WEIR)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weir")
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

#[test]
fn json_output_has_kcat_envelope_and_every_record_once() {
    let broker = Broker::shared();
    let bootstrap = broker.bootstrap();
    let topic = support::unique_topic("weir-json");
    let manifest = Producer::new(&bootstrap, &topic)
        .partitions(2)
        .count(150)
        .headers(1)
        .null_header()
        .tombstone_every(40)
        .timestamp_base(1_700_000_000_000)
        .run();
    let child = weir(&[
        "consume",
        "-b",
        &bootstrap,
        "-t",
        &topic,
        // No -p: every partition of the topic, as kcat.
        "-o",
        "beginning",
        "-e",
        "-J",
    ]);
    let out = wait_bounded(child, Duration::from_secs(60), "weir consume -e -J");
    assert!(
        out.status.success(),
        "weir failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A topic that does not exist: one clear line, exit 1.
    let missing = support::unique_topic("weir-missing");
    let missing_out = wait_bounded(
        weir(&["consume", "-b", &bootstrap, "-t", &missing, "-e", "-q"]),
        Duration::from_secs(60),
        "weir consume of a missing topic",
    );
    let err = String::from_utf8_lossy(&missing_out.stderr);
    assert_eq!(missing_out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("topic `{missing}` does not exist")),
        "{err}"
    );

    let mut got: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
    for line in String::from_utf8(out.stdout.clone())
        .expect("utf-8 output")
        .lines()
    {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"));
        // kcat's key order (serde_json's map sorts keys, so check the raw line).
        let order = [
            "topic",
            "partition",
            "offset",
            "tstype",
            "ts",
            "broker",
            "headers",
            "key",
            "payload",
        ];
        let at: Vec<usize> = order
            .iter()
            .map(|k| {
                line.find(&format!("\"{k}\":"))
                    .unwrap_or_else(|| panic!("no {k} in {line}"))
            })
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "key order in {line}");
        assert_eq!(v.as_object().expect("object").len(), order.len(), "{line}");
        got.entry(v["partition"].as_i64().expect("partition"))
            .or_default()
            .push(v);
    }
    for (p, produced) in &manifest.records {
        let lines = got.get(&i64::from(*p)).unwrap_or_else(|| {
            panic!(
                "no records of partition {p} (got partitions {:?}); weir said: {}",
                got.keys().collect::<Vec<_>>(),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert_eq!(lines.len(), produced.len(), "partition {p}: record count");
        for (v, want) in lines.iter().zip(produced) {
            let r = &want.rec;
            assert_eq!(v["topic"], topic.as_str());
            assert_eq!(v["offset"].as_i64(), Some(r.offset));
            assert_eq!(v["tstype"], "create");
            // The partition leader's node id (a single tansu broker: not -1).
            assert!(
                v["broker"].as_i64().is_some_and(|b| b >= 0),
                "broker in {v}"
            );
            assert_eq!(v["ts"].as_i64(), Some(r.timestamp));
            assert_eq!(
                text(&v["key"]).map(String::into_bytes),
                r.key,
                "key at offset {}",
                r.offset
            );
            assert_eq!(
                text(&v["payload"]).map(String::into_bytes),
                r.value,
                "payload at offset {}",
                r.offset
            );
            let mut headers = Vec::new();
            for (name, value) in &r.headers {
                headers.push(Value::String(name.clone()));
                headers.push(value.as_ref().map_or(Value::Null, |b| {
                    Value::String(String::from_utf8_lossy(b).into_owned())
                }));
            }
            assert_eq!(
                v["headers"],
                Value::Array(headers),
                "headers at offset {}",
                r.offset
            );
        }
    }
}

/// `weir.max.decompressed.batch.bytes` reaches the engine: a compressed batch that
/// inflates past it stops the run with a message naming the partition and offset
/// (exit 1, no crash); the default limit reads the same batches.
#[test]
fn a_batch_inflating_past_the_decompression_limit_is_a_clear_error() {
    let broker = Broker::shared();
    let bootstrap = broker.bootstrap();
    let topic = support::unique_topic("weir-inflate");
    let manifest = Producer::new(&bootstrap, &topic)
        .partitions(1)
        // 40 KiB of output: within a pipe's buffer (wait_bounded reads it at exit).
        .count(20)
        .value_size(2048)
        .compression(Codec::Zstd)
        .linger_ms(50)
        .run();
    let args = [
        "consume",
        "-b",
        &bootstrap,
        "-t",
        &topic,
        "-o",
        "beginning",
        "-e",
        "-q",
    ];
    let mut limited = args.to_vec();
    limited.extend(["-X", "weir.max.decompressed.batch.bytes=1024"]);
    let out = wait_bounded(
        weir(&limited),
        Duration::from_secs(60),
        "weir consume with a small decompression limit",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(
        err.contains(&format!("{topic}-0 at offset 0")) && err.contains("1024"),
        "the error names the partition, offset and limit: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "nothing delivered past the bad batch"
    );

    let out = wait_bounded(
        weir(&args),
        Duration::from_secs(60),
        "weir consume with the default decompression limit",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.stdout.iter().filter(|&&b| b == b'\n').count(),
        manifest.count(),
        "every record with the default limit"
    );
}

fn sink_args<'a>(
    bootstrap: &'a str,
    topic: &'a str,
    dir: &'a str,
    exit_at_end: bool,
) -> Vec<&'a str> {
    let mut a = vec![
        "consume",
        "-b",
        bootstrap,
        "-t",
        topic,
        "-p",
        "0,1,2",
        "-o",
        "beginning",
        "-f",
        "%p %o %s\\n",
        "--sink",
        dir,
        "-X",
        "weir.sink.segment.bytes=65536",
        "-X",
        "weir.sink.checkpoint.ms=5",
        "-X",
        "fetch.max.wait.ms=50",
        // Small fetches, so a run takes long enough to be killed mid-way.
        "-X",
        "max.partition.fetch.bytes=4096",
    ];
    if exit_at_end {
        a.push("-e");
    }
    a
}

fn expected_lines(manifest: &support::peer::Manifest, topic: &str, p: i32) -> Vec<u8> {
    let mut out = Vec::new();
    for r in &manifest.records[&p] {
        // produce.py's value: "{topic}-{p}-{seq}" padded with '.' to --value-size.
        let mut value = format!("{topic}-{p}-{}", r.seq);
        while value.len() < 100 {
            value.push('.');
        }
        out.extend_from_slice(format!("{p} {} {value}\n", r.rec.offset).as_bytes());
    }
    out
}

#[test]
fn sink_keeps_exactly_once_across_kill_9_and_stops_on_sigterm() {
    let broker = Broker::shared();
    let bootstrap = broker.bootstrap();
    let topic = support::unique_topic("weir-sink");
    // One record per batch: tansu 0.6 answers a fetch from the middle of a batch with
    // the *next* batch (librdkafka sees the same gap), so a restart that resumes
    // mid-batch would lose records there through no fault of weir's. With one record
    // per batch every resume offset is a batch boundary.
    let manifest = Producer::new(&bootstrap, &topic)
        .partitions(3)
        .count(4000)
        .value_size(100)
        .no_keys()
        .omit_values()
        .batch_num_messages(1)
        .linger_ms(0)
        .run();
    let dir = std::env::temp_dir().join(format!("weir-e2e-sink-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_s = dir.to_str().expect("utf-8 temp dir").to_owned();

    let mut seed: u64 = 0x853c_49e6_748f_ea9b;
    let mut kills = 0;
    let mut partial = 0;
    for _ in 0..6 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = weir(&sink_args(&bootstrap, &topic, &dir_s, false));
        std::thread::sleep(Duration::from_millis(100 + seed % 400));
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        kills += 1;
        for p in 0..3 {
            if let Ok(got) = Sink::read_durable(&dir, &topic, p) {
                let want = expected_lines(&manifest, &topic, p);
                if !want.starts_with(&got) {
                    let bad = got
                        .iter()
                        .zip(&want)
                        .position(|(a, b)| a != b)
                        .unwrap_or(got.len().min(want.len()));
                    panic!(
                        "partition {p} not an exact prefix after kill {kills} ({} of {} bytes); at byte {bad}: got {:?} want {:?}",
                        got.len(),
                        want.len(),
                        String::from_utf8_lossy(
                            &got[bad.saturating_sub(150)..(bad + 150).min(got.len())]
                        ),
                        String::from_utf8_lossy(
                            &want[bad.saturating_sub(150)..(bad + 150).min(want.len())]
                        )
                    );
                }
                partial += got.len();
                eprintln!(
                    "after kill {kills}: partition {p} holds {} records durably",
                    got.iter().filter(|b| **b == b'\n').count()
                );
            }
        }
    }
    assert!(partial > 0, "nothing was ever written before a kill");

    // SIGTERM: graceful stop, exit 0, summary line.
    let child = weir(&sink_args(&bootstrap, &topic, &dir_s, false));
    std::thread::sleep(Duration::from_millis(300));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let out = wait_bounded(child, Duration::from_secs(30), "weir after SIGTERM");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit after SIGTERM: {} {err}",
        out.status
    );
    assert!(err.contains("stopped by signal"), "{err}");

    // Finish with -e; then every record is there exactly once.
    let out = wait_bounded(
        weir(&sink_args(&bootstrap, &topic, &dir_s, true)),
        Duration::from_secs(120),
        "final weir run",
    );
    assert!(
        out.status.success(),
        "final run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for p in 0..3 {
        let got = Sink::read_durable(&dir, &topic, p).expect("read partition");
        let want = expected_lines(&manifest, &topic, p);
        if got != want {
            let first_bad = got
                .iter()
                .zip(&want)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(want.len()));
            panic!(
                "partition {p}: {} bytes, want {}; first difference at byte {first_bad}: {:?}",
                got.len(),
                want.len(),
                String::from_utf8_lossy(
                    &got[first_bad.saturating_sub(40)..(first_bad + 40).min(got.len())]
                )
            );
        }
        assert!(
            Sink::segments(&dir, &topic, p).expect("segments").len() > 3,
            "expected rotations"
        );
    }
    let _ = std::fs::remove_dir_all(Path::new(&dir));

    // -o -N (records are one per batch here, so any offset is a batch start; tansu
    // answers a fetch from inside a batch with the next batch).
    let out = wait_bounded(
        weir(&[
            "consume", "-b", &bootstrap, "-t", &topic, "-o", "-5", "-e", "-q", "-f", "%p %o\\n",
        ]),
        Duration::from_secs(60),
        "weir consume -o -5",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    let mut want: Vec<String> = (0..3)
        .flat_map(|p| {
            let end = manifest.next_offset[&p];
            (end - 5..end).map(move |o| format!("{p} {o}"))
        })
        .collect();
    want.sort();
    assert_eq!(lines, want);
}

#[test]
fn group_mode_reads_everything_once_and_resumes_from_commits() {
    let broker = Broker::shared();
    let bootstrap = broker.bootstrap();
    let topic = support::unique_topic("weir-group");
    let group = support::unique_topic("weir-g");
    let first = Producer::new(&bootstrap, &topic)
        .partitions(2)
        .count(100)
        .run();
    let run = |what: &str| -> Vec<String> {
        let child = weir(&[
            "consume",
            "-b",
            &bootstrap,
            "-G",
            &group,
            &topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%p %o\\n",
            // tansu completes a first join after about half the session timeout.
            "-X",
            "session.timeout.ms=6000",
            "-X",
            "heartbeat.interval.ms=500",
        ]);
        let out = wait_bounded(child, Duration::from_secs(90), what);
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    };
    let lines_for = |m: &support::peer::Manifest| {
        let mut v: Vec<String> = m
            .records
            .iter()
            .flat_map(|(p, recs)| recs.iter().map(move |r| format!("{p} {}", r.rec.offset)))
            .collect();
        v.sort();
        v
    };
    assert_eq!(run("first group run"), lines_for(&first));
    // Offsets were committed on exit: nothing new, nothing again.
    assert_eq!(run("second group run"), Vec::<String>::new());
    let more = Producer::new(&bootstrap, &topic)
        .partitions(2)
        .count(50)
        .start_seq(100)
        .run();
    assert_eq!(run("third group run"), lines_for(&more));
}

/// Kafka's DeleteRecords (kafka-delete-records): the log of `topic`-`partition` starts
/// at `before` afterwards, as if retention had deleted everything below it.
fn delete_records(bootstrap: &str, topic: &str, partition: i32, before: i64, dir: &Path) {
    let spec = dir.join("delete-records.json");
    std::fs::write(
        &spec,
        format!(
            r#"{{"version":1,"partitions":[{{"topic":"{topic}","partition":{partition},"offset":{before}}}]}}"#
        ),
    )
    .expect("write delete-records spec");
    let out = Command::new("bash")
        .arg(support::repo_root().join("scripts/kafka-tool.sh"))
        .args(["kafka-delete-records", "--bootstrap-server", bootstrap])
        .arg("--offset-json-file")
        .arg(&spec)
        .output()
        .expect("run kafka-delete-records");
    assert!(
        out.status.success(),
        "kafka-delete-records: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The offsets in the sink's durable files for partition 0 (lines "%o").
fn sink_offsets(dir: &Path, topic: &str) -> Vec<i64> {
    let got = Sink::read_durable(dir, topic, 0).expect("read the sink");
    String::from_utf8_lossy(&got)
        .lines()
        .map(|l| l.parse().unwrap_or_else(|_| panic!("bad sink line {l:?}")))
        .collect()
}

/// A sink whose position has fallen behind the log start (retention, here
/// DeleteRecords) must not be reset silently past records it never wrote: weir stops
/// with an error naming the partition and the way on, and writes nothing; only with
/// `weir.sink.allow.reset=true` does it apply auto.offset.reset. Fails if the reset is
/// applied without being asked for (the run after the deletion exits 0).
#[test]
fn sink_behind_retention_is_an_error_unless_reset_is_allowed() {
    let broker = Broker::shared();
    if !broker.is_kafka() {
        eprintln!("skipped: kafka-delete-records needs Apache Kafka (WEIR_TEST_BROKER=tansu)");
        return;
    }
    let bootstrap = broker.bootstrap();
    let topic = support::unique_topic("weir-sink-gap");
    let manifest = Producer::new(&bootstrap, &topic)
        .partitions(1)
        .count(200)
        .no_keys()
        .omit_values()
        .batch_num_messages(10)
        .linger_ms(0)
        .run();
    assert_eq!(manifest.count(), 200);
    let dir = support::scratch_dir("weir-sink-gap");
    let dir_s = dir.to_str().expect("utf-8 temp dir").to_owned();
    let run = |extra: &[&str], what: &str| {
        let mut args = vec![
            "consume",
            "-b",
            &bootstrap,
            "-t",
            &topic,
            "-p",
            "0",
            "-o",
            "beginning",
            "-f",
            "%o\\n",
            "--sink",
            &dir_s,
            "-q",
        ];
        args.extend_from_slice(extra);
        wait_bounded(weir(&args), Duration::from_secs(60), what)
    };

    let out = run(&["-c", "50"], "first run");
    assert!(
        out.status.success(),
        "first run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sink_offsets(&dir, &topic), (0..50).collect::<Vec<_>>());

    delete_records(
        &bootstrap,
        &topic,
        0,
        120,
        &support::scratch_dir("weir-delete-records"),
    );

    let out = run(&["-e"], "run after the deletion");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "must stop with an error: {err}");
    assert!(
        err.contains(&format!("{topic}-0"))
            && err.contains("position 50")
            && err.contains("weir.sink.allow.reset=true"),
        "the error names the partition, the position and the way on: {err}"
    );
    assert_eq!(
        sink_offsets(&dir, &topic),
        (0..50).collect::<Vec<_>>(),
        "nothing written past the gap"
    );

    let out = run(
        &[
            "-e",
            "-X",
            "weir.sink.allow.reset=true",
            "-X",
            "auto.offset.reset=earliest",
        ],
        "run that allows the reset",
    );
    assert!(
        out.status.success(),
        "with weir.sink.allow.reset=true: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        sink_offsets(&dir, &topic),
        (0..50).chain(120..200).collect::<Vec<_>>(),
        "the reset goes to the new log start, and the gap is what retention deleted"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
