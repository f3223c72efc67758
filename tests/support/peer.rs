//! The librdkafka peer: `scripts/produce.py` and `scripts/consume_rdkafka.py`, run with
//! the project's venv (`scripts/setup-python.sh` creates it; `WEIR_PYTHON` overrides).
//!
//! `Producer` writes deterministic records and returns the manifest of what the broker
//! stored (offsets included); `RdkafkaConsume` reads a topic back with librdkafka. Both
//! describe records as [`Rec`], so a test compares weir's output with either directly.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::repo_root;

/// The venv's python: `$WEIR_PYTHON`, else `<repo>/.venv/bin/python`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("WEIR_PYTHON") {
        return PathBuf::from(p);
    }
    let python = repo_root().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} not found: run scripts/setup-python.sh (it installs confluent-kafka in .venv)",
        python.display()
    );
    python
}

fn run_script(script: &str, args: &[String]) -> String {
    let path = repo_root().join("scripts").join(script);
    let output = Command::new(python())
        .arg(&path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    assert!(
        output.status.success(),
        "{script} {} failed ({}):\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap_or_else(|e| panic!("{script} printed non-UTF-8: {e}"))
}

/// Compression codecs librdkafka produces with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    pub const ALL: [Codec; 5] = [
        Codec::None,
        Codec::Gzip,
        Codec::Snappy,
        Codec::Lz4,
        Codec::Zstd,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }
}

/// How a transaction of the producer ends. tansu 0.6.0 supports only `Open`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Txn {
    Commit,
    Abort,
    /// Left open: its records stay above the last stable offset.
    Open,
}

/// One record, as produced (manifest) or as consumed (librdkafka).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    /// `None` for a tombstone. From a manifest made with `omit_values`, `None` too:
    /// use `value_len` there.
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: i64,
}

/// A produced record with what the manifest adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Produced {
    pub rec: Rec,
    pub seq: u64,
    pub value_len: Option<usize>,
    /// Index into `Manifest::transactions`, `None` outside transactions.
    pub txn: Option<usize>,
    /// Outside a transaction, or in a committed one: visible to read_committed.
    pub committed: bool,
}

/// What `produce.py` produced.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub topic: String,
    pub partitions: i32,
    pub records: BTreeMap<i32, Vec<Produced>>,
    /// Per partition: the offset after the last record (and after its marker when a
    /// transaction ended).
    pub next_offset: BTreeMap<i32, i64>,
}

impl Manifest {
    /// Every produced record, by partition then offset.
    pub fn all(&self) -> Vec<Rec> {
        self.records
            .values()
            .flatten()
            .map(|p| p.rec.clone())
            .collect()
    }

    /// The records a read_committed consumer must see, by partition then offset.
    pub fn committed(&self) -> Vec<Rec> {
        self.records
            .values()
            .flatten()
            .filter(|p| p.committed)
            .map(|p| p.rec.clone())
            .collect()
    }

    pub fn count(&self) -> usize {
        self.records.values().map(Vec::len).sum()
    }

    /// Adds the records of a later producer run on the same topic (offsets after
    /// this manifest's): records keep offset order, `next_offset` is the later end.
    pub fn merge(&mut self, later: Manifest) {
        assert_eq!(self.topic, later.topic, "merging manifests of two topics");
        for (p, recs) in later.records {
            let mine = self.records.entry(p).or_default();
            mine.extend(recs);
            mine.sort_by_key(|r| r.rec.offset);
        }
        for (p, end) in later.next_offset {
            let e = self.next_offset.entry(p).or_insert(end);
            *e = (*e).max(end);
        }
        self.partitions = self.partitions.max(later.partitions);
    }
}

/// A producer running in the background ([`Producer::spawn`]); killed on drop.
#[derive(Debug)]
pub struct Running {
    child: Option<std::process::Child>,
}

impl Running {
    /// Waits for the producer to finish and returns its manifest.
    pub fn wait(mut self) -> Manifest {
        let child = self.child.take().expect("waited once");
        let output = child.wait_with_output().expect("wait for produce.py");
        assert!(
            output.status.success(),
            "produce.py failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        parse_manifest(&String::from_utf8_lossy(&output.stdout))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `scripts/produce.py`; see its help for the content of each record.
#[derive(Debug, Clone)]
pub struct Producer {
    args: Vec<String>,
}

impl Producer {
    /// Producing to `topic` (created with 1 partition when missing) on `bootstrap`.
    pub fn new(bootstrap: &str, topic: &str) -> Producer {
        Producer {
            args: vec![
                "--bootstrap".into(),
                bootstrap.into(),
                "--topic".into(),
                topic.into(),
            ],
        }
    }

    fn opt(mut self, name: &str, value: impl ToString) -> Producer {
        self.args.push(name.into());
        self.args.push(value.to_string());
        self
    }

    fn flag(mut self, name: &str) -> Producer {
        self.args.push(name.into());
        self
    }

    /// Partitions of the topic (it is created with this many when missing).
    pub fn partitions(self, n: i32) -> Producer {
        self.opt("--partitions", n)
    }
    /// Produce only to these partitions.
    pub fn only_partitions(self, partitions: &[i32]) -> Producer {
        let list: Vec<String> = partitions.iter().map(i32::to_string).collect();
        self.opt("--only-partitions", list.join(","))
    }
    /// Records per partition (per transaction with `transactions`).
    pub fn count(self, n: usize) -> Producer {
        self.opt("--count", n)
    }
    pub fn start_seq(self, seq: u64) -> Producer {
        self.opt("--start-seq", seq)
    }
    pub fn value_size(self, bytes: usize) -> Producer {
        self.opt("--value-size", bytes)
    }
    pub fn compression(self, codec: Codec) -> Producer {
        self.opt("--compression", codec.name())
    }
    pub fn no_keys(self) -> Producer {
        self.flag("--no-keys")
    }
    pub fn headers(self, n: usize) -> Producer {
        self.opt("--headers", n)
    }
    pub fn null_header(self) -> Producer {
        self.flag("--null-header")
    }
    pub fn tombstone_every(self, n: usize) -> Producer {
        self.opt("--tombstone-every", n)
    }
    pub fn timestamp_base(self, ms: i64) -> Producer {
        self.opt("--timestamp-base", ms)
    }
    pub fn linger_ms(self, ms: u64) -> Producer {
        self.opt("--linger-ms", ms)
    }
    pub fn batch_num_messages(self, n: usize) -> Producer {
        self.opt("--batch-num-messages", n)
    }
    pub fn idempotent(self) -> Producer {
        self.flag("--idempotent")
    }
    pub fn transactions(self, txns: &[Txn]) -> Producer {
        let list: Vec<&str> = txns
            .iter()
            .map(|t| match t {
                Txn::Commit => "commit",
                Txn::Abort => "abort",
                Txn::Open => "open",
            })
            .collect();
        self.opt("--transactions", list.join(","))
    }
    /// Leave values out of the manifest (for large values); `value_len` stays.
    pub fn omit_values(self) -> Producer {
        self.flag("--omit-values")
    }
    /// An extra librdkafka producer property.
    pub fn property(self, key: &str, value: &str) -> Producer {
        self.opt("-X", format!("{key}={value}"))
    }

    /// With `transactions`: once the last transaction's records are on the broker,
    /// create `file` and wait until it is removed before ending that transaction.
    pub fn hold_last(self, file: &std::path::Path) -> Producer {
        self.opt("--hold-last", file.display())
    }

    /// Runs the producer in the background (see [`Running`]).
    pub fn spawn(&self) -> Running {
        let mut args = self.args.clone();
        args.extend(["--manifest".into(), "-".into()]);
        let path = repo_root().join("scripts").join("produce.py");
        let child = Command::new(python())
            .arg(&path)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
        Running { child: Some(child) }
    }

    /// Creates the topic only.
    pub fn create_topic(&self) {
        let mut args = self.args.clone();
        args.push("--create-only".into());
        args.extend(["--manifest".into(), String::new()]);
        run_script("produce.py", &args);
    }

    /// Produces and returns the manifest. Panics (failing the test) on any error.
    pub fn run(&self) -> Manifest {
        let mut args = self.args.clone();
        args.extend(["--manifest".into(), "-".into()]);
        let out = run_script("produce.py", &args);
        parse_manifest(&out)
    }
}

fn bytes_field(v: &Value, what: &str) -> Option<Vec<u8>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Object(o) => {
            let hex = o
                .get("hex")
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{what}: expected text or {{\"hex\": ...}}, got {v}"));
            Some(from_hex(hex))
        }
        other => panic!("{what}: expected text, {{\"hex\": ...}} or null, got {other}"),
    }
}

/// Decodes lowercase or uppercase hex (panics on anything else: test input).
pub fn from_hex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd-length hex {hex:?}");
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or_else(|_| panic!("bad hex {hex:?}"))
        })
        .collect()
}

fn headers_field(v: &Value) -> Vec<(String, Option<Vec<u8>>)> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|h| {
                    let name = h[0]
                        .as_str()
                        .unwrap_or_else(|| panic!("header name in {h}"));
                    (name.to_string(), bytes_field(&h[1], "header value"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn int(v: &Value, what: &str) -> i64 {
    v.as_i64()
        .unwrap_or_else(|| panic!("{what}: expected an integer, got {v}"))
}

/// Parses `produce.py`'s manifest.
pub fn parse_manifest(text: &str) -> Manifest {
    let m: Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("produce.py manifest is not JSON ({e}): {text:.500}"));
    let mut records = BTreeMap::new();
    if let Some(parts) = m["records"].as_object() {
        for (p, list) in parts {
            let partition: i32 = p.parse().unwrap_or_else(|_| panic!("partition key {p:?}"));
            let mut out = Vec::new();
            for r in list.as_array().map(Vec::as_slice).unwrap_or_default() {
                out.push(Produced {
                    rec: Rec {
                        partition,
                        offset: int(&r["offset"], "offset"),
                        key: bytes_field(&r["key"], "key"),
                        value: r.get("value").and_then(|v| bytes_field(v, "value")),
                        headers: headers_field(&r["headers"]),
                        timestamp: int(&r["timestamp"], "timestamp"),
                    },
                    seq: int(&r["seq"], "seq") as u64,
                    value_len: r["value_len"].as_u64().map(|n| n as usize),
                    txn: r["txn"].as_u64().map(|n| n as usize),
                    committed: r["committed"].as_bool().unwrap_or(true),
                });
            }
            records.insert(partition, out);
        }
    }
    let next_offset = m["next_offset"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(p, v)| (p.parse().unwrap_or(-1), int(v, "next_offset")))
                .collect()
        })
        .unwrap_or_default();
    Manifest {
        topic: m["topic"].as_str().unwrap_or_default().to_string(),
        partitions: int(&m["partitions"], "partitions") as i32,
        records,
        next_offset,
    }
}

/// What `consume_rdkafka.py` printed last.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub records: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub records_per_s: Option<f64>,
    pub mb_per_s: Option<f64>,
}

/// Records read by librdkafka, by partition then offset, and its summary.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub records: Vec<Rec>,
    pub summary: Summary,
}

/// Runs `scripts/consume_rdkafka.py`: reads a topic from the beginning to its end.
#[derive(Debug, Clone)]
pub struct RdkafkaConsume {
    args: Vec<String>,
}

impl RdkafkaConsume {
    pub fn new(bootstrap: &str, topic: &str) -> RdkafkaConsume {
        RdkafkaConsume {
            args: vec![
                "--bootstrap".into(),
                bootstrap.into(),
                "--topic".into(),
                topic.into(),
            ],
        }
    }
    pub fn read_committed(mut self) -> Self {
        self.args
            .extend(["--isolation".into(), "read_committed".into()]);
        self
    }
    /// Join `group` instead of assigning every partition.
    pub fn group(mut self, group: &str) -> Self {
        self.args.extend(["--group".into(), group.into()]);
        self
    }
    /// With `group`: stay in the group this long rather than stopping at the end.
    pub fn run_seconds(mut self, seconds: f64) -> Self {
        self.args
            .extend(["--run-seconds".into(), seconds.to_string()]);
        self
    }
    pub fn session_timeout_ms(mut self, ms: u64) -> Self {
        self.args
            .extend(["--session-timeout-ms".into(), ms.to_string()]);
        self
    }
    /// Print only the summary (throughput runs).
    pub fn quiet(mut self) -> Self {
        self.args.push("--quiet".into());
        self
    }
    pub fn property(mut self, key: &str, value: &str) -> Self {
        self.args.extend(["-X".into(), format!("{key}={value}")]);
        self
    }

    /// Runs to the end of every partition. Panics (failing the test) on any error.
    pub fn run(&self) -> Consumed {
        parse_consumed(&run_script("consume_rdkafka.py", &self.args))
    }
}

/// Reads every partition of `topic` from the beginning to the end with librdkafka.
pub fn rdkafka_consume(bootstrap: &str, topic: &str) -> Consumed {
    RdkafkaConsume::new(bootstrap, topic).run()
}

/// Parses `consume_rdkafka.py`'s output.
pub fn parse_consumed(text: &str) -> Consumed {
    let mut records = Vec::new();
    let mut summary = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("consume_rdkafka.py line is not JSON ({e}): {line:.300}"));
        if let Some(s) = v.get("summary") {
            summary = Some(Summary {
                records: s["records"].as_u64().unwrap_or(0),
                bytes: s["bytes"].as_u64().unwrap_or(0),
                seconds: s["seconds"].as_f64().unwrap_or(0.0),
                records_per_s: s["records_per_s"].as_f64(),
                mb_per_s: s["mb_per_s"].as_f64(),
            });
            continue;
        }
        records.push(Rec {
            partition: int(&v["partition"], "partition") as i32,
            offset: int(&v["offset"], "offset"),
            key: bytes_field(&v["key"], "key"),
            value: bytes_field(&v["value"], "value"),
            headers: headers_field(&v["headers"]),
            timestamp: int(&v["timestamp"], "timestamp"),
        });
    }
    records.sort_by_key(|r| (r.partition, r.offset));
    Consumed {
        records,
        summary: summary.unwrap_or_else(|| panic!("consume_rdkafka.py printed no summary")),
    }
}

/// The Java client (kafka-clients, the reference consumer) as a group member:
/// `tests/java/WeirJavaPeer.java`, compiled by `scripts/install-kafka.sh`. It prints
/// one line per event (`assigned`, `revoked`, `rec <ms> <topic> <p> <offset>`,
/// `committed`, `closed`, see the Java file); a line `stop` on its stdin makes it
/// commit, leave the group and exit. Killed on drop.
#[derive(Debug)]
pub struct JavaPeer {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl JavaPeer {
    /// Starts a member of `group` subscribed to `topics`, with extra consumer
    /// properties (`key=value`).
    pub fn start(bootstrap: &str, group: &str, topics: &[&str], properties: &[&str]) -> JavaPeer {
        let install = repo_root().join("scripts/install-kafka.sh");
        let home = Command::new("bash")
            .arg(&install)
            .arg("--print-home")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", install.display()));
        assert!(
            home.status.success(),
            "scripts/install-kafka.sh failed: {}",
            String::from_utf8_lossy(&home.stderr)
        );
        let home = PathBuf::from(String::from_utf8_lossy(&home.stdout).trim());
        let classpath = format!(
            "{}:{}/*",
            home.join("classes").display(),
            home.join("libs").display()
        );
        let mut command = Command::new("java");
        command
            .args(["-Xms32m", "-Xmx256m", "-XX:TieredStopAtLevel=1"])
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                repo_root()
                    .join("scripts/kafka/tools-log4j2.properties")
                    .display()
            ))
            .args(["-cp", &classpath, "WeirJavaPeer"])
            .args(["--bootstrap", bootstrap, "--group", group, "--topics"])
            .arg(topics.join(","));
        for p in properties {
            command.args(["--property", p]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run java (Java 17+ is needed): {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        JavaPeer {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads what the peer printed since the last call (without waiting).
    pub fn drain(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }

    /// The partitions it owns now, from its `assigned`/`revoked`/`lost` lines.
    pub fn owned(&mut self) -> std::collections::BTreeSet<i32> {
        let mut owned = std::collections::BTreeSet::new();
        for line in self.drain() {
            let mut it = line.split(' ');
            let kind = it.next().unwrap_or_default();
            let parts = it.nth(1).unwrap_or_default();
            let ps = parts
                .split(',')
                .filter_map(|tp| tp.rsplit(':').next()?.parse::<i32>().ok());
            match kind {
                "assigned" => owned.extend(ps),
                "revoked" | "lost" => {
                    for p in ps {
                        owned.remove(&p);
                    }
                }
                _ => {}
            }
        }
        owned
    }

    /// (partition, offset) of every record it handled, in order.
    pub fn records(&mut self) -> Vec<(i32, i64)> {
        self.drain()
            .iter()
            .filter(|l| l.starts_with("rec "))
            .filter_map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                Some((f.get(3)?.parse().ok()?, f.get(4)?.parse().ok()?))
            })
            .collect()
    }

    /// Asks it to commit, leave and exit; waits (bounded) and fails on a bad exit.
    pub fn stop(mut self, limit: std::time::Duration) -> Vec<String> {
        use std::io::Write;
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = writeln!(stdin, "stop");
        }
        let start = std::time::Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "the Java peer exited with {status}");
                break;
            }
            assert!(
                start.elapsed() < limit,
                "the Java peer did not stop within {limit:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // The reader thread ends with the pipe; give it a moment to hand over the rest.
        std::thread::sleep(std::time::Duration::from_millis(100));
        self.drain();
        std::mem::take(&mut self.seen)
    }
}

impl Drop for JavaPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
