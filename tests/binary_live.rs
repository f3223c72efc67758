//! The `weir` binary's promises, proven against a real broker (Apache Kafka; tansu with WEIR_TEST_BROKER=tansu) with librdkafka as
//! the producer and as the reference consumer:
//!
//! 1. every codec: `weir consume -J`, `-f` and the default output carry exactly what
//!    librdkafka reads from the same topic (offsets, keys, payloads with null vs
//!    empty, headers with a null value, timestamps), byte for byte;
//! 2. `--sink` is exactly-once across `kill -9` at random moments (seeded), with
//!    segment rotations forced small and records appended between restarts;
//! 3. SIGTERM and SIGINT stop gracefully (exit 0 in bounded time, summary unless -q,
//!    the sink checkpointed); a second signal exits at once, the sink still intact;
//! 4. `-o -N`, `-o end`, `-o N` and `-o s@TS` mean what they mean for kcat.
//!
//! The sink is read back here by an independent reader written from the on-disk
//! contract in `src/sink.rs` (sealed `.log` segments whole, the checkpointed `.open`
//! segment up to the checkpointed length, nothing else), not through `weir::sink`.
//!
//! tansu 0.6.0 facts these tests depend on (checked by hand with librdkafka):
//! * the memory engine answers a Fetch from inside a batch with the *next* batch, so a
//!   consumer that resumes mid-batch (a sink restart, `-o -N`) loses records there;
//!   the sqlite engine returns the containing batch, as Kafka does. Tests that resume
//!   mid-batch therefore run tansu with sqlite storage.
//! * the memory engine's ListOffsets(latest) answers an offset inside the last batch,
//!   not the log end; the Fetch high watermark is right. The sqlite engine answers the
//!   log end.
//!
//! Setup once per machine: `scripts/install-tansu.sh` and `scripts/setup-python.sh`;
//! without them these tests fail (they never skip).

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::broker::Broker;
use support::peer::{self, Codec, Manifest, Producer, Rec};

const WEIR: &str = env!("CARGO_BIN_EXE_weir");

// ------------------------------------------------------------------ helpers

/// xorshift64*: a small seeded generator, so a failing schedule can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-enough in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// A directory of this test process under the target's scratch space, empty.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("binary-tansu-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// A running `weir` process whose stdout and stderr are drained by threads (so a full
/// pipe never stalls it) into buffers the test can look at while it runs. Killed with
/// SIGKILL on drop if still running.
struct Weir {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

/// How a `weir` process ended.
struct Finished {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

fn drain(mut pipe: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => into
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&buf[..n]),
            }
        }
    })
}

impl Weir {
    fn spawn(args: &[&str]) -> Weir {
        let mut child = Command::new(WEIR)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {WEIR}: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            drain(
                child.stdout.take().expect("stdout is piped"),
                stdout.clone(),
            ),
            drain(
                child.stderr.take().expect("stderr is piped"),
                stderr.clone(),
            ),
        ];
        Weir {
            child,
            stdout,
            stderr,
            readers,
        }
    }

    fn stdout_now(&self) -> Vec<u8> {
        self.stdout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn stderr_now(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    fn signal(&self, sig: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid fits i32");
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig}) failed");
    }

    /// Whether the process exits within `limit` (it is not reaped yet otherwise).
    fn exits_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.child.try_wait().expect("try_wait").is_some() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    fn finish(mut self) -> Finished {
        let status = self.child.wait().expect("wait for weir");
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Finished {
            status,
            stdout: self.stdout_now(),
            stderr: self.stderr_now(),
        }
    }

    /// Waits at most `limit` for the process to exit; past that kills it and fails.
    fn wait(mut self, limit: Duration, what: &str) -> Finished {
        if !self.exits_within(limit) {
            let _ = self.child.kill();
            let f = self.finish();
            panic!(
                "{what}: weir did not exit within {limit:?}; it printed {} bytes; stderr:\n{}",
                f.stdout.len(),
                f.stderr
            );
        }
        self.finish()
    }

    fn kill9(self) -> Finished {
        self.signal(libc::SIGKILL);
        // (It may have exited by itself just before; a SIGKILL then changes nothing.)
        self.finish()
    }
}

impl Drop for Weir {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `weir` to its exit (bounded) and requires exit status 0.
fn run_ok(args: &[&str], what: &str) -> Finished {
    let f = Weir::spawn(args).wait(Duration::from_secs(60), what);
    assert!(
        f.status.success(),
        "{what}: weir exited with {}; stderr:\n{}",
        f.status,
        f.stderr
    );
    f
}

fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    if v.last().is_some_and(|l| l.is_empty()) {
        v.pop();
    }
    v
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Compares record lists and names the first difference (not a 100 KB assert dump).
fn assert_same_records(got: &[Rec], want: &[Rec], what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            g, w,
            "{what}: record #{i} differs (weir left, librdkafka right)"
        );
    }
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: weir gave {} records, librdkafka {}",
        got.len(),
        want.len()
    );
}

// ------------------------------------------------------------- 1. codecs

/// Records no produce.py option makes: empty vs null keys and values, non-UTF-8 bytes
/// and bytes JSON must escape, an empty and a null header value.
const ODD_RECORDS: &str = r#"
import sys
from confluent_kafka import Producer
bootstrap, topic, codec, partitions = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
p = Producer({"bootstrap.servers": bootstrap, "compression.codec": codec, "linger.ms": 5, "acks": "all"})
records = [
    (b"", b"", None),
    (None, b"", [("empty", b"")]),
    (b"", None, [("n", None), ("e", b"")]),
    (b"bin-key\x00\xff", b"\xff\xfe\x00\x01bin\x7f\xc3", [("bin", b"\x00\xff\x80")]),
    (b'q"uote\\back', b"tab\there\rcr\x1b\x08\x0c", None),
    ("k-utf8-\u00e9", "v-utf8-\u20ac\u00e9", [("h-\u00e9", "\u20ac")]),
]
errors = []
def report(err, msg):
    if err is not None:
        errors.append(str(err))
for part in range(partitions):
    for key, value, headers in records:
        kw = {"partition": part, "key": key, "value": value, "on_delivery": report}
        if headers:
            kw["headers"] = headers
        p.produce(topic, **kw)
left = p.flush(60)
if left or errors:
    sys.exit(f"odd records: {left} undelivered, errors {errors[:3]}")
"#;

fn produce_odd_records(bootstrap: &str, topic: &str, codec: Codec, partitions: i32) {
    let out = Command::new(peer::python())
        .args(["-c", ODD_RECORDS, bootstrap, topic, codec.name()])
        .arg(partitions.to_string())
        .stdin(Stdio::null())
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "odd-records producer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A JSON string's bytes, where the line was decoded as Latin-1 (see `parse_json_line`).
fn latin1_bytes(v: &Value, what: &str) -> Option<Vec<u8>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(
            s.chars()
                .map(|c| {
                    u8::try_from(u32::from(c))
                        .unwrap_or_else(|_| panic!("{what}: escape above \\u00ff in {s:?}"))
                })
                .collect(),
        ),
        other => panic!("{what}: expected a string or null, got {other}"),
    }
}

/// One `-J` line as a record. kcat copies non-UTF-8 bytes into its JSON unchanged, so
/// the line is decoded as Latin-1 (byte = char) and every string mapped back to bytes:
/// lossless for raw bytes and for `\u00XX` escapes alike.
fn parse_json_line(line: &[u8], topic: &str) -> Rec {
    let text: String = line.iter().map(|&b| char::from(b)).collect();
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("-J line is not JSON ({e}): {:?}", show(line)));
    assert_eq!(v["topic"], topic, "{}", show(line));
    assert_eq!(v["tstype"], "create", "{}", show(line));
    assert!(v["broker"].as_i64().is_some(), "{}", show(line));
    let headers = match v.get("headers") {
        None => Vec::new(),
        Some(Value::Array(a)) => {
            assert!(
                a.len().is_multiple_of(2),
                "headers alternate: {}",
                show(line)
            );
            a.chunks(2)
                .map(|kv| {
                    let name = latin1_bytes(&kv[0], "header name").expect("header name");
                    (
                        String::from_utf8(name).expect("UTF-8 header name"),
                        latin1_bytes(&kv[1], "header value"),
                    )
                })
                .collect()
        }
        Some(other) => panic!("headers: {other}"),
    };
    Rec {
        partition: v["partition"].as_i64().expect("partition") as i32,
        offset: v["offset"].as_i64().expect("offset"),
        key: latin1_bytes(&v["key"], "key"),
        value: latin1_bytes(&v["payload"], "payload"),
        headers,
        timestamp: v["ts"].as_i64().expect("ts"),
    }
}

/// Every `-f` token, `%%` included, but `%R` (its 4 binary bytes could hold a newline).
const FMT_LINE: &str = "%t|%p|%o|%T|%K|%k|%S|%s|%h|%%\\n";

/// The line kcat prints for one record with `-f FMT_LINE`, without its newline.
fn kcat_line(topic: &str, r: &Rec) -> Vec<u8> {
    let len = |b: &Option<Vec<u8>>| b.as_ref().map_or(-1, |b| b.len() as i64);
    let mut out = format!(
        "{topic}|{}|{}|{}|{}|",
        r.partition,
        r.offset,
        r.timestamp,
        len(&r.key)
    )
    .into_bytes();
    out.extend_from_slice(r.key.as_deref().unwrap_or_default());
    out.extend_from_slice(format!("|{}|", len(&r.value)).as_bytes());
    out.extend_from_slice(r.value.as_deref().unwrap_or_default());
    out.push(b'|');
    for (i, (name, value)) in r.headers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(name.as_bytes());
        out.push(b'=');
        out.extend_from_slice(value.as_deref().unwrap_or_default());
    }
    out.extend_from_slice(b"|%");
    out
}

#[test]
fn every_codec_matches_librdkafka() {
    let broker = Broker::shared();
    let bootstrap = broker.bootstrap();
    const PARTITIONS: i32 = 3;
    const COUNT: usize = 120;
    for (i, codec) in Codec::ALL.into_iter().enumerate() {
        let what = format!("codec {}", codec.name());
        let topic = support::unique_topic(&format!("codec-{}", codec.name()));
        let manifest = Producer::new(&bootstrap, &topic)
            .partitions(PARTITIONS)
            .count(COUNT)
            .headers(2)
            .null_header()
            .tombstone_every(9)
            .timestamp_base(1_700_000_000_000 + i as i64 * 1_000_000)
            .compression(codec)
            // Several batches per partition: batch boundaries inside the run.
            .batch_num_messages(25)
            .run();
        assert_eq!(manifest.count(), COUNT * PARTITIONS as usize);
        produce_odd_records(&bootstrap, &topic, codec, PARTITIONS);
        let want = peer::rdkafka_consume(&bootstrap, &topic).records;
        assert_eq!(want.len(), (COUNT + 6) * PARTITIONS as usize, "{what}");
        // The reference itself saw what was produced (the produce.py part of it).
        for (p, produced) in &manifest.records {
            let from_ref: Vec<&Rec> = want.iter().filter(|r| r.partition == *p).collect();
            for (r, m) in from_ref.iter().zip(produced) {
                assert_eq!(**r, m.rec, "{what}: librdkafka vs manifest");
            }
        }
        assert!(want.iter().any(|r| r.value.is_none()), "tombstones");
        assert!(
            want.iter().any(|r| r.value.as_deref() == Some(b"")),
            "empty values"
        );

        // -J, every partition (no -p).
        let out = run_ok(
            &[
                "consume",
                "-b",
                &bootstrap,
                "-t",
                &topic,
                "-o",
                "beginning",
                "-e",
                "-J",
            ],
            &format!("{what}: -J"),
        );
        let mut got: Vec<Rec> = lines(&out.stdout)
            .into_iter()
            .map(|l| parse_json_line(l, &topic))
            .collect();
        got.sort_by_key(|r| (r.partition, r.offset));
        assert_same_records(&got, &want, &format!("{what}: -J"));
        assert!(
            out.stderr
                .contains(&format!("weir: {} records", want.len())),
            "{what}: summary line: {}",
            out.stderr
        );

        // -f with every token, every partition: lines of one partition keep their order.
        let out = run_ok(
            &[
                "consume",
                "-b",
                &bootstrap,
                "-t",
                &topic,
                "-o",
                "beginning",
                "-e",
                "-q",
                "-f",
                FMT_LINE,
            ],
            &format!("{what}: -f"),
        );
        assert!(out.stderr.is_empty(), "-q prints nothing: {}", out.stderr);
        let mut by_partition: BTreeMap<i32, Vec<&[u8]>> = BTreeMap::new();
        for l in lines(&out.stdout) {
            let p: i32 = show(l)
                .split('|')
                .nth(1)
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("{what}: -f line {:?}", show(l)));
            by_partition.entry(p).or_default().push(l);
        }
        for p in 0..PARTITIONS {
            let want_lines: Vec<Vec<u8>> = want
                .iter()
                .filter(|r| r.partition == p)
                .map(|r| kcat_line(&topic, r))
                .collect();
            let got_lines = by_partition.remove(&p).unwrap_or_default();
            for (n, (g, w)) in got_lines.iter().zip(&want_lines).enumerate() {
                assert_eq!(
                    show(g),
                    show(w),
                    "{what}: -f partition {p} line {n}: {:?} vs {:?}",
                    g,
                    w
                );
            }
            assert_eq!(
                got_lines.len(),
                want_lines.len(),
                "{what}: -f partition {p}"
            );
        }
        assert!(by_partition.is_empty(), "{what}: -f: stray partitions");

        // The default output (value per line) of one partition, byte for byte.
        let p = i as i32 % PARTITIONS;
        let out = run_ok(
            &[
                "consume",
                "-b",
                &bootstrap,
                "-t",
                &topic,
                "-p",
                &p.to_string(),
                "-o",
                "beginning",
                "-e",
            ],
            &format!("{what}: default output"),
        );
        let mut expected = Vec::new();
        for r in want.iter().filter(|r| r.partition == p) {
            expected.extend_from_slice(r.value.as_deref().unwrap_or_default());
            expected.push(b'\n');
        }
        assert_eq!(
            show(&out.stdout),
            show(&expected),
            "{what}: default output of partition {p}"
        );
        assert_eq!(out.stdout, expected, "{what}: raw bytes of partition {p}");
    }
}

// --------------------------------------------------------- the sink, read back

/// One partition of a sink directory as the on-disk contract defines it.
#[derive(Debug)]
struct Durable {
    /// Sealed segments whole, then the checkpointed segment up to its length.
    bytes: Vec<u8>,
    /// The checkpoint's next offset.
    next_offset: i64,
    /// `(base offset from the name, offset of the first record in it)` per segment read.
    segments: Vec<(i64, Option<i64>)>,
}

fn segment_base(name: &str) -> Option<(i64, bool)> {
    let (stem, ext) = name.split_once('.')?;
    let open = match ext {
        "open" => true,
        "log" => false,
        _ => return None,
    };
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
        .map(|b| (b, open))
}

/// The offset in a sink line `"<p> <offset> ..."`.
fn line_offset(line: &[u8]) -> i64 {
    show(line)
        .split(' ')
        .nth(1)
        .and_then(|o| o.parse().ok())
        .unwrap_or_else(|| panic!("sink line without an offset: {:?}", show(line)))
}

/// Reads partition `p` of `topic` under `dir`, or `None` if weir never wrote it.
fn read_sink(dir: &Path, topic: &str, p: i32) -> Option<Durable> {
    let pdir = dir.join(topic).join(p.to_string());
    let cp_path = pdir.join("checkpoint");
    if !pdir.is_dir() {
        return None;
    }
    // A partition directory exists before its first checkpoint is renamed into place
    // (weir may be killed in between): then it holds nothing yet.
    let Ok(text) = fs::read_to_string(&cp_path) else {
        return None;
    };
    let (body, crc_line) = text
        .strip_suffix('\n')
        .and_then(|t| t.rsplit_once('\n'))
        .unwrap_or_else(|| panic!("checkpoint {}: {text:?}", cp_path.display()));
    let body = format!("{body}\n");
    let crc = crc_line
        .strip_prefix("crc32c ")
        .and_then(|c| u32::from_str_radix(c, 16).ok())
        .unwrap_or_else(|| panic!("checkpoint crc line {crc_line:?}"));
    assert_eq!(
        crc32c::crc32c(body.as_bytes()),
        crc,
        "checkpoint crc: {text:?}"
    );
    let mut fields = BTreeMap::new();
    let mut body_lines = body.lines();
    assert_eq!(
        body_lines.next(),
        Some("weir-sink-checkpoint 1"),
        "{text:?}"
    );
    for l in body_lines {
        let (k, v) = l
            .split_once(' ')
            .unwrap_or_else(|| panic!("checkpoint line {l:?}"));
        fields.insert(k.to_owned(), v.to_owned());
    }
    let segment = fields["segment"].clone();
    let length: usize = fields["length"].parse().expect("checkpoint length");
    let next_offset: i64 = fields["next_offset"]
        .parse()
        .expect("checkpoint next_offset");
    let (cp_base, cp_open) = segment_base(&segment).expect("checkpoint names a segment");
    assert!(cp_open, "the checkpoint names an open segment: {segment}");

    let mut names: Vec<(i64, bool, PathBuf)> = Vec::new();
    for e in fs::read_dir(&pdir).expect("list partition dir") {
        let e = e.expect("dir entry");
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some((base, open)) = segment_base(&name) {
            names.push((base, open, e.path()));
        } else {
            assert!(
                name == "checkpoint" || name == "checkpoint.tmp" || name == "sealed",
                "unexpected file {name} in {}",
                pdir.display()
            );
        }
    }
    names.sort();
    let mut bytes = Vec::new();
    let mut segments = Vec::new();
    let mut found_cp = false;
    for (base, open, path) in names {
        let mut data = fs::read(&path).expect("read segment");
        if open {
            if base != cp_base {
                // Created after the last checkpoint: not valid yet.
                continue;
            }
            assert!(
                data.len() >= length,
                "{}: {} bytes, but the checkpoint says {length} are durable",
                path.display(),
                data.len()
            );
            data.truncate(length);
            found_cp = true;
        } else if base == cp_base {
            // A seal cut short after the rename: the checkpoint covered all of it.
            found_cp = true;
        }
        assert!(
            data.is_empty() || data.ends_with(b"\n"),
            "{} does not end on a record boundary",
            path.display()
        );
        assert!(
            base <= cp_base,
            "{} is past the checkpointed segment {segment}",
            path.display()
        );
        segments.push((base, lines(&data).first().map(|l| line_offset(l))));
        bytes.extend_from_slice(&data);
    }
    assert!(found_cp, "{segment} (named by the checkpoint) is missing");
    Some(Durable {
        bytes,
        next_offset,
        segments,
    })
}

/// What a sink with `-f SINK_FORMAT` must hold for one partition of a manifest.
struct Expected {
    bytes: Vec<u8>,
    /// Byte position where each record's line ends.
    ends: Vec<usize>,
    offsets: Vec<i64>,
}

const SINK_FORMAT: &str = "%p %o %k %s\\n";
const VALUE_SIZE: usize = 48;

fn expected_sink(manifest: &Manifest, p: i32) -> Expected {
    let mut e = Expected {
        bytes: Vec::new(),
        ends: Vec::new(),
        offsets: Vec::new(),
    };
    for r in manifest
        .records
        .get(&p)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        // produce.py's value: "{topic}-{p}-{seq}" padded with '.' to --value-size.
        let mut value = format!("{}-{p}-{}", manifest.topic, r.seq);
        while value.len() < VALUE_SIZE {
            value.push('.');
        }
        let key = String::from_utf8(r.rec.key.clone().expect("keyed records")).expect("key");
        e.bytes
            .extend_from_slice(format!("{p} {} {key} {value}\n", r.rec.offset).as_bytes());
        e.ends.push(e.bytes.len());
        e.offsets.push(r.rec.offset);
    }
    e
}

/// Checks that partition `p` of the sink holds an exact prefix of `want`, that the
/// checkpoint's next offset is the offset right after that prefix (so a restart
/// neither skips nor repeats), and that every segment is named by its first offset.
/// Returns the number of records held.
fn check_prefix(dir: &Path, topic: &str, p: i32, want: &Expected, when: &str) -> usize {
    let Some(d) = read_sink(dir, topic, p) else {
        return 0;
    };
    if !want.bytes.starts_with(&d.bytes) {
        let at = d
            .bytes
            .iter()
            .zip(&want.bytes)
            .position(|(a, b)| a != b)
            .unwrap_or(want.bytes.len().min(d.bytes.len()));
        let window = |b: &[u8]| show(&b[at.saturating_sub(120)..(at + 120).min(b.len())]);
        panic!(
            "{when}: partition {p} is not an exact prefix ({} bytes held, {} expected); at byte {at}:\n got: {:?}\nwant: {:?}",
            d.bytes.len(),
            want.bytes.len(),
            window(&d.bytes),
            window(&want.bytes)
        );
    }
    let n = if d.bytes.is_empty() {
        0
    } else {
        want.ends
            .iter()
            .position(|&e| e == d.bytes.len())
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("{when}: partition {p} ends mid-record"))
    };
    let next = if n == 0 {
        want.offsets[0]
    } else {
        want.offsets[n - 1] + 1
    };
    assert_eq!(
        d.next_offset, next,
        "{when}: partition {p} holds {n} records but its checkpoint resumes at {}",
        d.next_offset
    );
    for (base, first) in &d.segments {
        if let Some(first) = first {
            assert_eq!(
                base, first,
                "{when}: partition {p}: segment named {base} starts at {first}"
            );
        }
    }
    n
}

/// Appends `extra` records per partition to `manifest` (seq continuing).
fn produce_more(bootstrap: &str, manifest: &mut Manifest, partitions: i32, extra: usize) {
    let start = manifest
        .records
        .values()
        .flatten()
        .map(|r| r.seq + 1)
        .max()
        .unwrap_or(0);
    let more = Producer::new(bootstrap, &manifest.topic)
        .partitions(partitions)
        .count(extra)
        .start_seq(start)
        .value_size(VALUE_SIZE)
        .compression(Codec::Lz4)
        .omit_values()
        .run();
    for (p, recs) in more.records {
        let list = manifest.records.entry(p).or_default();
        list.extend(recs);
        list.sort_by_key(|r| r.rec.offset);
    }
}

fn sink_args<'a>(bootstrap: &'a str, topic: &'a str, dir: &'a str) -> Vec<&'a str> {
    vec![
        "consume",
        "-b",
        bootstrap,
        "-t",
        topic,
        "-o",
        "beginning",
        "-f",
        SINK_FORMAT,
        "--sink",
        dir,
        // Rotations every ~1,300 records and frequent checkpoints: kills land in
        // the middle of seals and checkpoints, not only between them.
        "-X",
        "weir.sink.segment.bytes=131072",
        "-X",
        "weir.sink.checkpoint.ms=10",
        "-X",
        "fetch.max.wait.ms=100",
    ]
}

// ------------------------------------------------------------- 2. kill -9

/// Records durable per the checkpoint files alone (offsets start at 0 and have no
/// gaps here, so the next offsets add up to the record count). Safe to call while
/// weir runs: unreadable or half-replaced files count as nothing.
fn durable_hint(sink: &Path, topic: &str, partitions: i32) -> i64 {
    (0..partitions)
        .filter_map(|p| {
            let text =
                fs::read_to_string(sink.join(topic).join(p.to_string()).join("checkpoint")).ok()?;
            text.lines()
                .find_map(|l| l.strip_prefix("next_offset "))
                .and_then(|n| n.parse::<i64>().ok())
        })
        .sum()
}

#[test]
fn sink_is_exactly_once_across_random_kill_9() {
    const PARTITIONS: i32 = 4;
    const MIN_KILLS: usize = 8;
    let seed: u64 = std::env::var("WEIR_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    eprintln!("kill -9 schedule seed {seed} (set WEIR_KILL_SEED to replay another)");
    let mut rng = Rng(seed.max(1));

    let dir = scratch("kill9");
    // A broker of its own: on tansu that means sqlite storage, whose Fetch returns the
    // batch containing a mid-batch offset (memory storage does not).
    let broker = Broker::dedicated();
    let bootstrap = broker.bootstrap();
    let topic = support::unique_topic("kill9");
    let mut manifest = Producer::new(&bootstrap, &topic)
        .partitions(PARTITIONS)
        .count(12_500)
        .value_size(VALUE_SIZE)
        .compression(Codec::Lz4)
        .omit_values()
        .run();
    let sink = dir.join("sink");
    let sink_s = sink.to_str().expect("UTF-8 path").to_owned();
    let mut args = sink_args(&bootstrap, &topic, &sink_s);
    // Fetch responses of ~2,500 records: several per run, so kills land mid-stream.
    args.extend(["-X", "fetch.max.bytes=262144", "-e"]);

    // Calibrate: one uninterrupted run into a scratch sink says how long the whole
    // job takes here, and the kill delays below are fractions of it. Against a fast
    // broker (Apache Kafka) a run takes a fraction of a second, so fixed delays of up
    // to 1.5 s let nearly every run finish before its kill.
    let whole = {
        let scratch_sink = dir.join("calibrate");
        let scratch_s = scratch_sink.to_str().expect("UTF-8 path").to_owned();
        let mut calibrate = sink_args(&bootstrap, &topic, &scratch_s);
        calibrate.extend(["-X", "fetch.max.bytes=262144", "-e"]);
        let t0 = Instant::now();
        let f = Weir::spawn(&calibrate).finish();
        assert!(f.status.success(), "calibration run: {}", f.stderr);
        let _ = fs::remove_dir_all(&scratch_sink);
        t0.elapsed()
    };
    let whole_ms = (whole.as_millis() as u64).max(20);
    eprintln!("one whole run takes {whole:?}");

    let mut expected: Vec<Expected> = (0..PARTITIONS)
        .map(|p| expected_sink(&manifest, p))
        .collect();
    let (mut kills, mut runs, mut armed_kills) = (0usize, 0usize, 0usize);
    let mut held_before = 0usize;
    loop {
        runs += 1;
        assert!(
            runs <= 60,
            "60 runs without one finishing after {kills} kills"
        );
        let at_start = durable_hint(&sink, &topic, PARTITIONS);
        let mut weir = Weir::spawn(&args);
        // Half the kills are blind (a few ms to 1.5 s: during start-up, recovery,
        // the first fetch, or writing); the others wait until this run has made
        // records durable and then strike within 400 ms, in the middle of writes,
        // checkpoints and segment rotations. After the required kills, blind delays
        // grow to 3 s so that some run finishes by itself.
        let armed = rng.next().is_multiple_of(2);
        let mut finished = false;
        if armed {
            let deadline = Instant::now() + Duration::from_secs(60);
            while durable_hint(&sink, &topic, PARTITIONS) == at_start {
                if weir.exits_within(Duration::from_millis(5)) {
                    finished = true;
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "run {runs}: nothing durable in 60 s"
                );
            }
        }
        let delay = match (armed, kills < MIN_KILLS) {
            (true, _) => rng.between(0, (whole_ms / 4).min(400)),
            (false, true) => rng.between(3, (whole_ms / 2).min(1500)),
            (false, false) => rng.between(3, (whole_ms * 3).min(3000)),
        };
        finished = finished || weir.exits_within(Duration::from_millis(delay));
        if finished {
            let f = weir.finish();
            assert!(
                f.status.success(),
                "run {runs} exited with {}: {}",
                f.status,
                f.stderr
            );
            let when = format!("after run {runs} finished by itself");
            for p in 0..PARTITIONS {
                let want = &expected[p as usize];
                let n = check_prefix(&sink, &topic, p, want, &when);
                assert_eq!(n, want.offsets.len(), "{when}: partition {p} is incomplete");
            }
            if kills >= MIN_KILLS {
                break;
            }
            // Finished before enough kills: more records, and go on.
            produce_more(&bootstrap, &mut manifest, PARTITIONS, 2_500);
            expected = (0..PARTITIONS)
                .map(|p| expected_sink(&manifest, p))
                .collect();
            continue;
        }
        let _ = weir.kill9();
        kills += 1;
        armed_kills += usize::from(armed);
        let when = format!(
            "after kill {kills} ({} {delay} ms into run {runs})",
            if armed { "armed," } else { "blind," }
        );
        let mut held = 0;
        for p in 0..PARTITIONS {
            held += check_prefix(&sink, &topic, p, &expected[p as usize], &when);
        }
        assert!(
            held >= held_before,
            "{when}: durable records went from {held_before} to {held}"
        );
        eprintln!("{when}: {held} records durable");
        held_before = held;
        if kills == 3 || kills == 6 {
            // Records appended while weir is down.
            produce_more(&bootstrap, &mut manifest, PARTITIONS, 2_500);
            expected = (0..PARTITIONS)
                .map(|p| expected_sink(&manifest, p))
                .collect();
        }
    }
    assert!(armed_kills >= 2, "only {armed_kills} kills mid-write");
    let mut segments = 0;
    for p in 0..PARTITIONS {
        segments += read_sink(&sink, &topic, p).map_or(0, |d| d.segments.len());
    }
    assert!(
        segments > 20,
        "expected many rotations, saw {segments} segments"
    );
    eprintln!(
        "kill -9: {kills} kills ({armed_kills} mid-write) over {runs} runs; {} records exactly once in {segments} segments",
        manifest.count()
    );
    drop(broker);
    let _ = fs::remove_dir_all(&dir);
}

// ------------------------------------------------------------- 3. signals

/// Total records durable in the sink (checked to be an exact prefix).
fn held(sink: &Path, topic: &str, expected: &[Expected], when: &str) -> usize {
    (0..expected.len())
        .map(|p| check_prefix(sink, topic, p as i32, &expected[p], when))
        .sum()
}

/// Starts a sink run without -e and waits (bounded) until some of it is durable.
fn start_and_wait_for_data(args: &[&str], sink: &Path, topic: &str, partitions: i32) -> Weir {
    let before = durable_hint(sink, topic, partitions);
    let mut weir = Weir::spawn(args);
    let deadline = Instant::now() + Duration::from_secs(60);
    while durable_hint(sink, topic, partitions) == before {
        assert!(
            !weir.exits_within(Duration::from_millis(5)),
            "weir exited before writing anything: {}",
            weir.stderr_now()
        );
        assert!(
            Instant::now() < deadline,
            "no record durable within 60 s: {}",
            weir.stderr_now()
        );
    }
    weir
}

/// The record count of weir's summary line.
fn summary_records(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("weir: ") && l.contains(" records ("))
        .unwrap_or_else(|| panic!("no summary line in: {stderr}"));
    line["weir: ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("summary line {line:?}"))
}

#[test]
fn sigterm_and_sigint_stop_cleanly_and_a_second_signal_at_once() {
    const PARTITIONS: i32 = 2;
    let dir = scratch("signals");
    let broker = Broker::dedicated();
    let bootstrap = broker.bootstrap();
    let topic = support::unique_topic("signals");
    let mut manifest = Producer::new(&bootstrap, &topic)
        .partitions(PARTITIONS)
        .count(20_000)
        .value_size(VALUE_SIZE)
        .compression(Codec::Lz4)
        .omit_values()
        .run();
    let expected: Vec<Expected> = (0..PARTITIONS)
        .map(|p| expected_sink(&manifest, p))
        .collect();
    let total = manifest.count();
    let sink = dir.join("sink");
    let sink_s = sink.to_str().expect("UTF-8 path").to_owned();
    let mut args = sink_args(&bootstrap, &topic, &sink_s);
    // Small fetches (tansu bounds a response by fetch.max.bytes, not by the
    // partition limit): the run lasts long enough to be interrupted mid-stream.
    args.extend(["-X", "fetch.max.bytes=65536"]);

    // SIGTERM mid-stream: exit 0 within 10 s, a summary, everything it wrote durable.
    let weir = start_and_wait_for_data(&args, &sink, &topic, PARTITIONS);
    let before = durable_hint(&sink, &topic, PARTITIONS) as usize;
    weir.signal(libc::SIGTERM);
    let f = weir.wait(Duration::from_secs(10), "after SIGTERM");
    assert_eq!(f.status.code(), Some(0), "SIGTERM: {}", f.stderr);
    assert!(f.stderr.contains("stopped by signal"), "{}", f.stderr);
    let after = held(&sink, &topic, &expected, "after SIGTERM");
    assert_eq!(
        summary_records(&f.stderr) as usize,
        after,
        "the summary counts what the sink holds after a first run"
    );
    assert!(
        after >= before && after < total,
        "SIGTERM came mid-stream: {after} of {total}"
    );

    // SIGINT with -q: exit 0, nothing printed, the sink continues where it stopped.
    let mut quiet = args.clone();
    quiet.push("-q");
    let weir = start_and_wait_for_data(&quiet, &sink, &topic, PARTITIONS);
    weir.signal(libc::SIGINT);
    let f = weir.wait(Duration::from_secs(10), "after SIGINT");
    assert_eq!(f.status.code(), Some(0), "SIGINT: {}", f.stderr);
    assert!(f.stderr.is_empty(), "-q prints nothing: {}", f.stderr);
    let after_int = held(&sink, &topic, &expected, "after SIGINT");
    assert!(
        after_int > after,
        "the SIGINT run continued: {after} -> {after_int}"
    );

    // Two signals back to back: the second exits at once; the sink stays consistent.
    let weir = start_and_wait_for_data(&args, &sink, &topic, PARTITIONS);
    weir.signal(libc::SIGTERM);
    weir.signal(libc::SIGINT);
    let sent = Instant::now();
    let f = weir.wait(Duration::from_secs(10), "after two signals");
    let took = sent.elapsed();
    // 1 when the second signal cut the graceful stop short, 0 when that stop was faster.
    assert!(
        matches!(f.status.code(), Some(0 | 1)),
        "two signals: {} {}",
        f.status,
        f.stderr
    );
    assert!(
        took < Duration::from_secs(2),
        "two signals took {took:?} to exit"
    );
    let after_two = held(&sink, &topic, &expected, "after two signals");
    eprintln!("two signals: exit {:?} after {took:?}", f.status.code());

    // Records produced while stopped; then a run to the end: all of them, once.
    produce_more(&bootstrap, &mut manifest, PARTITIONS, 2_000);
    let expected: Vec<Expected> = (0..PARTITIONS)
        .map(|p| expected_sink(&manifest, p))
        .collect();
    let mut to_end = args.clone();
    to_end.push("-e");
    let f = run_ok(&to_end, "run to the end after the signals");
    let all = held(&sink, &topic, &expected, "after the final run");
    assert_eq!(all, manifest.count(), "every record exactly once");
    assert_eq!(
        summary_records(&f.stderr) as usize,
        all - after_two,
        "the last run wrote exactly what was missing"
    );

    // SIGTERM while idle at the end of every partition: exit 0 promptly.
    let mut weir = Weir::spawn(&args);
    assert!(
        !weir.exits_within(Duration::from_millis(1500)),
        "{}",
        weir.stderr_now()
    );
    weir.signal(libc::SIGTERM);
    let f = weir.wait(Duration::from_secs(10), "SIGTERM while idle");
    assert_eq!(f.status.code(), Some(0), "{}", f.stderr);
    assert_eq!(summary_records(&f.stderr), 0, "{}", f.stderr);
    assert_eq!(
        held(&sink, &topic, &expected, "after idle SIGTERM"),
        manifest.count()
    );
    drop(broker);
    let _ = fs::remove_dir_all(&dir);
}

// ------------------------------------------------------ 4. start offsets

fn offsets_of(out: &[u8]) -> Vec<(i32, i64)> {
    let mut v: Vec<(i32, i64)> = lines(out)
        .into_iter()
        .map(|l| {
            let s = show(l);
            let mut it = s.split(' ');
            let p = it.next().and_then(|p| p.parse().ok());
            let o = it.next().and_then(|o| o.parse().ok());
            match (p, o) {
                (Some(p), Some(o)) => (p, o),
                _ => panic!("line {s:?}"),
            }
        })
        .collect();
    v.sort_unstable();
    v
}

/// Waits (bounded) until weir's /metrics shows a zero lag for `partitions` partitions.
fn wait_caught_up(weir: &mut Weir, addr: &str, partitions: i32) {
    use std::io::Write;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    loop {
        assert!(
            !weir.exits_within(Duration::from_millis(50)),
            "weir exited: {}",
            weir.stderr_now()
        );
        if let Ok(mut conn) = std::net::TcpStream::connect(addr) {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: weir\r\n\r\n");
            let mut body = String::new();
            let _ = conn.read_to_string(&mut body);
            let lags: Vec<&str> = body
                .lines()
                .filter(|l| l.starts_with("kafka_consumer_lag{"))
                .collect();
            if lags.len() == partitions as usize && lags.iter().all(|l| l.ends_with(" 0")) {
                return;
            }
            last = lags.join("; ");
        }
        assert!(
            Instant::now() < deadline,
            "weir did not reach the end within 60 s; lags: {last}"
        );
    }
}

/// `-o end` without -e: only records produced after the start are printed.
fn check_tail_from_end(bootstrap: &str, topic: &str, partitions: i32, next: &mut Manifest) {
    let metrics = format!("127.0.0.1:{}", support::free_port());
    let mut weir = Weir::spawn(&[
        "consume",
        "-b",
        bootstrap,
        "-t",
        topic,
        "-o",
        "end",
        "-q",
        "-f",
        "%p %o\\n",
        "--metrics-addr",
        &metrics,
    ]);
    // Nothing new is produced until weir has resolved the end of every partition:
    // its lag gauges then read 0 (a lag is set only from a fetch response).
    wait_caught_up(&mut weir, &metrics, partitions);
    let before = next.records.clone();
    produce_more(bootstrap, next, partitions, 3);
    let want: Vec<(i32, i64)> = next
        .records
        .iter()
        .flat_map(|(p, recs)| {
            let old = before.get(p).map_or(0, Vec::len);
            recs[old..].iter().map(|r| (*p, r.rec.offset))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while lines(&weir.stdout_now()).len() < want.len() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(300));
    weir.signal(libc::SIGTERM);
    let f = weir.wait(Duration::from_secs(10), "-o end tail");
    assert_eq!(f.status.code(), Some(0), "{}", f.stderr);
    let mut want = want;
    want.sort_unstable();
    assert_eq!(
        offsets_of(&f.stdout),
        want,
        "-o end prints exactly the records produced after it started"
    );
}

#[test]
fn start_offsets_mean_what_kcat_means() {
    let dir = scratch("offsets");
    // sqlite: ListOffsets(latest) is the log end and mid-batch fetches work, so every
    // -o form can be checked with multi-record batches.
    let broker = Broker::dedicated();
    let bootstrap = broker.bootstrap();
    let topic = support::unique_topic("offsets");
    let ts_base = 1_700_000_000_000i64;
    // p0 and p1: 500 records in batches of 100; p2: 2 records; p3: empty.
    let mut manifest = Producer::new(&bootstrap, &topic)
        .partitions(4)
        .only_partitions(&[0, 1])
        .count(500)
        .value_size(VALUE_SIZE)
        .compression(Codec::Lz4)
        .batch_num_messages(100)
        .linger_ms(50)
        .timestamp_base(ts_base)
        .run();
    let small = Producer::new(&bootstrap, &topic)
        .partitions(4)
        .only_partitions(&[2])
        .count(2)
        .value_size(VALUE_SIZE)
        .compression(Codec::Lz4)
        .run();
    manifest.records.extend(small.records);
    let end = |p: i32| manifest.records.get(&p).map_or(0, |r| r.len() as i64);
    let fmt = ["-f", "%p %o\\n"];
    let consume = |extra: &[&str], what: &str| -> Vec<(i32, i64)> {
        let mut args = vec!["consume", "-b", &bootstrap, "-t", &topic, "-e", "-q"];
        args.extend_from_slice(&fmt);
        args.extend_from_slice(extra);
        offsets_of(&run_ok(&args, what).stdout)
    };
    let range = |p: i32, from: i64, to: i64| (from..to).map(move |o| (p, o));

    // -o -3: the last 3 records of each partition (fewer if it has fewer).
    let want: Vec<(i32, i64)> = (0..4)
        .flat_map(|p| range(p, (end(p) - 3).max(0), end(p)))
        .collect();
    assert_eq!(consume(&["-o", "-3"], "-o -3"), want, "-o -3 (sqlite)");
    // -o -1000: more than a partition holds: all of it.
    let want: Vec<(i32, i64)> = (0..4).flat_map(|p| range(p, 0, end(p))).collect();
    assert_eq!(consume(&["-o", "-1000"], "-o -1000"), want);
    // -o end -e: nothing, and it exits.
    assert_eq!(
        consume(&["-o", "end"], "-o end -e"),
        Vec::new(),
        "-o end -e (sqlite)"
    );
    // -o 237 (mid-batch) on one partition.
    assert_eq!(
        consume(&["-p", "1", "-o", "237"], "-o 237"),
        range(1, 237, 500).collect::<Vec<_>>()
    );
    // -o s@TS: the first record with a timestamp at or after TS (produce.py: base+seq),
    // which is what the broker's ListOffsets answers: on Apache Kafka, checked against
    // Kafka's own kafka-get-offsets.
    let ts = ts_base + 451;
    let from = if broker.implementation() == support::broker::Impl::Kafka {
        let kafka = kafka_offset_for_time(&bootstrap, &topic, 0, ts);
        assert!(
            kafka <= 451,
            "Kafka's offset for {ts} skips records: {kafka}"
        );
        if kafka != 451 {
            eprintln!("kafka-get-offsets answers {kafka} for the time of offset 451");
        }
        kafka
    } else {
        451
    };
    assert_eq!(
        consume(&["-p", "0", "-o", &format!("s@{ts}")], "-o s@TS"),
        range(0, from, 500).collect::<Vec<_>>()
    );
    check_tail_from_end(&bootstrap, &topic, 4, &mut manifest);
    drop(broker);
    let _ = fs::remove_dir_all(&dir);
}

/// Kafka's own answer (kafka-get-offsets --time) for the first offset at or after `ts`.
fn kafka_offset_for_time(bootstrap: &str, topic: &str, partition: i32, ts: i64) -> i64 {
    let out = Command::new("bash")
        .arg(support::repo_root().join("scripts/kafka-tool.sh"))
        .args([
            "kafka-get-offsets",
            "--bootstrap-server",
            bootstrap,
            "--topic",
            topic,
        ])
        .args([
            "--partitions",
            &partition.to_string(),
            "--time",
            &ts.to_string(),
        ])
        .output()
        .expect("run kafka-get-offsets");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kafka-get-offsets: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let prefix = format!("{topic}:{partition}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no offset in kafka-get-offsets output: {text}"))
}

#[test]
fn start_offsets_on_tansu_memory_trust_the_fetch_high_watermark() {
    // tansu's memory engine: ListOffsets(latest) answers an offset inside the last
    // batch. `-o end` must still start at the log end (the Fetch high watermark).
    let broker = Broker::shared();
    let bootstrap = broker.bootstrap();
    let topic = support::unique_topic("memend");
    let mut manifest = Producer::new(&bootstrap, &topic)
        .partitions(2)
        .count(300)
        .compression(Codec::Lz4)
        .batch_num_messages(100)
        .linger_ms(50)
        .run();
    let f = Weir::spawn(&[
        "consume", "-b", &bootstrap, "-t", &topic, "-o", "end", "-e", "-q", "-f", "%p %o\\n",
    ])
    .wait(Duration::from_secs(30), "-o end -e on tansu memory");
    assert!(f.status.success(), "{}", f.stderr);
    assert_eq!(
        offsets_of(&f.stdout),
        Vec::new(),
        "-o end -e printed records that were there before it started"
    );
    check_tail_from_end(&bootstrap, &topic, 2, &mut manifest);

    // -o -N with one record per batch (so N back from the end is a batch start, which
    // the memory engine serves).
    let topic = support::unique_topic("memtail");
    let manifest = Producer::new(&bootstrap, &topic)
        .partitions(2)
        .count(40)
        .batch_num_messages(1)
        .linger_ms(0)
        .run();
    let f = run_ok(
        &[
            "consume", "-b", &bootstrap, "-t", &topic, "-o", "-3", "-e", "-q", "-f", "%p %o\\n",
        ],
        "-o -3 on tansu memory",
    );
    let want: Vec<(i32, i64)> = (0..2)
        .flat_map(|p| {
            let end = manifest.next_offset[&p];
            (end - 3..end).map(move |o| (p, o))
        })
        .collect();
    assert_eq!(offsets_of(&f.stdout), want);
}

// ------------------------------------------------------------ unknown partitions and topics

/// Polls `f` every 50 ms until it holds or `limit` passes.
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// `-p 7` on a 2-partition topic is an error naming the partition, as kcat's
/// UNKNOWN_TOPIC_OR_PARTITION, instead of waiting forever (issue 10, defect 12).
/// Fails if the reactor keeps re-asking Metadata without reporting it.
#[test]
fn a_partition_that_does_not_exist_is_an_error() {
    let broker = Broker::shared();
    let bootstrap = broker.bootstrap();
    let topic = support::unique_topic("weir-no-such-partition");
    Producer::new(&bootstrap, &topic)
        .partitions(2)
        .count(10)
        .run();
    for parts in ["7", "0,7"] {
        let f = Weir::spawn(&["consume", "-b", &bootstrap, "-t", &topic, "-p", parts, "-e"])
            .wait(Duration::from_secs(30), "weir -p with a missing partition");
        assert_eq!(f.status.code(), Some(1), "-p {parts}: {}", f.stderr);
        assert!(
            f.stderr.contains(&format!("{topic}-7"))
                && f.stderr.contains("UNKNOWN_TOPIC_OR_PARTITION")
                && f.stderr.contains("has 2 partition"),
            "-p {parts}: {}",
            f.stderr
        );
    }
    // A topic that does not exist at all: a warning naming it, and weir keeps waiting
    // for it to be created (as Java's assign() does).
    let missing = support::unique_topic("weir-no-such-topic");
    let w = Weir::spawn(&["consume", "-b", &bootstrap, "-t", &missing, "-p", "0", "-e"]);
    assert!(
        eventually(Duration::from_secs(30), || {
            let e = w.stderr_now();
            e.contains(&missing) && e.contains("does not exist")
        }),
        "no warning for the missing topic: {}",
        w.stderr_now()
    );
    let mut w = w;
    assert!(
        !w.exits_within(Duration::from_secs(1)),
        "{}",
        w.stderr_now()
    );
    w.kill9();
}

/// A group subscribed to a topic that does not exist warns (once, not per retry) and
/// keeps waiting, as Java and kcat do; once the topic is created its records arrive
/// without waiting for metadata.max.age.ms (5 minutes). Fails without the warning, or
/// if the new topic is only noticed at the periodic refresh.
#[test]
fn a_group_on_a_missing_topic_warns_and_waits_for_it() {
    let broker = Broker::shared();
    let bootstrap = broker.bootstrap();
    let topic = support::unique_topic("weir-later-topic");
    let group = support::unique_topic("weir-later-group");
    let w = Weir::spawn(&[
        "consume",
        "-b",
        &bootstrap,
        "-G",
        &group,
        &topic,
        "-o",
        "beginning",
        "-f",
        "%s\\n",
    ]);
    assert!(
        eventually(Duration::from_secs(30), || w
            .stderr_now()
            .contains("UNKNOWN_TOPIC_OR_PARTITION")),
        "no warning about the missing topic; stderr: {}",
        w.stderr_now()
    );
    assert!(w.stderr_now().contains(&topic), "{}", w.stderr_now());
    let manifest = Producer::new(&bootstrap, &topic)
        .partitions(1)
        .count(5)
        .run();
    assert_eq!(manifest.count(), 5);
    assert!(
        eventually(Duration::from_secs(60), || w
            .stdout_now()
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            >= 5),
        "the topic's records never arrived; stderr: {}",
        w.stderr_now()
    );
    let f = w.kill9();
    let warnings = f
        .stderr
        .lines()
        .filter(|l| l.contains("UNKNOWN_TOPIC_OR_PARTITION"))
        .count();
    assert!(
        warnings <= 2,
        "rate limited, not one per retry: {warnings} lines\n{}",
        f.stderr
    );
}
