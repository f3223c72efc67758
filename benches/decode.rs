//! Record decoding throughput: weir's borrowed record views against kafka-protocol's
//! `RecordBatchDecoder`, on the same bytes; plus the Fetch response decoder.
//!
//! Run: `cargo bench --bench decode` (filter with e.g. `cargo bench --bench decode --
//! records/`). After the criterion output, a table of criterion's medians for the
//! benchmarks this run measured is printed, with weir / kafka-protocol ratios. See
//! BENCHMARKS.md for the numbers and the machine they were measured on.
//!
//! Times are the benchmark thread's CPU time unless `WEIR_BENCH_CLOCK=wall` (see
//! [`Clock`]): the machine these run on is shared with other builds.
//!
//! Equivalent work on both sides:
//! * weir walks the batches, verifies each batch's CRC32C (`check.crcs=true`, the
//!   Java client's default) and, per record, reads offset, timestamp, key, value and
//!   every header, summing their lengths into a `black_box`ed total;
//! * kafka-protocol decodes into its owned `Record`s (it verifies the CRC32C of
//!   every batch in `decode_batch_header_inner`) and the same total is summed from
//!   them.
//!
//! Both sums are compared once per case before timing, so the two sides provably
//! read the same records.
//!
//! kafka-protocol is built with its default features off (no codecs); for the lz4
//! and zstd cases it is given weir's `Decompressor` through
//! `decode_with_custom_compression`, copying the output into a fresh `Bytes` (its own
//! codecs allocate an output buffer per batch, too).

use std::cell::RefCell;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, Bytes};
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkId, Criterion, Throughput};
use kafka_protocol::messages::fetch_response::{
    FetchResponse as KpFetchResponse, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use kafka_protocol::records::{Compression as KpCompression, RecordBatchDecoder};
use weir_protocol::ResponseBody;
use weir_protocol::compression::{Compression, Decompressor};
use weir_protocol::messages::fetch::FetchResponse;
use weir_protocol::record::{Batches, Header, RecordBatchBuilder};

/// The clock criterion reads. By default the calling thread's CPU time
/// (`CLOCK_THREAD_CPUTIME_ID`): on a machine shared with other builds, wall time
/// mostly measures the scheduler, while CPU time still measures the decoder (cache
/// contention from neighbours remains). `WEIR_BENCH_CLOCK=wall` selects wall time.
#[derive(Clone, Copy)]
struct Clock {
    cpu: bool,
}

impl Clock {
    fn from_env() -> Self {
        Self {
            cpu: std::env::var("WEIR_BENCH_CLOCK").map_or(true, |v| v != "wall"),
        }
    }

    fn name(self) -> &'static str {
        if self.cpu {
            "thread CPU time"
        } else {
            "wall time"
        }
    }

    fn now(self) -> Duration {
        if self.cpu {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant
            // Linux supports for every thread.
            let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
            assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
            Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
        } else {
            static EPOCH: OnceLock<Instant> = OnceLock::new();
            EPOCH.get_or_init(Instant::now).elapsed()
        }
    }
}

static WALL: WallTime = WallTime;

impl Measurement for Clock {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        self.now()
    }
    fn end(&self, started: Duration) -> Duration {
        self.now().saturating_sub(started)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Both clocks count nanoseconds: criterion's own time formatting applies.
        WALL.formatter()
    }
}

type Crit = Criterion<Clock>;

/// One input: `batches` batches of `per_batch` records each, concatenated as a Fetch
/// partition's records blob.
struct Case {
    name: &'static str,
    key_len: usize,
    value_len: usize,
    headers: usize,
    codec: Compression,
    per_batch: usize,
    batches: usize,
}

const CASES: &[Case] = &[
    Case {
        name: "value100_nokey_nohdr",
        key_len: 0,
        value_len: 100,
        headers: 0,
        codec: Compression::None,
        per_batch: 1000,
        batches: 10,
    },
    Case {
        name: "key8_value100_1hdr",
        key_len: 8,
        value_len: 100,
        headers: 1,
        codec: Compression::None,
        per_batch: 1000,
        batches: 10,
    },
    Case {
        name: "value1k_nokey_nohdr",
        key_len: 0,
        value_len: 1024,
        headers: 0,
        codec: Compression::None,
        per_batch: 1000,
        batches: 4,
    },
    Case {
        name: "value100_lz4",
        key_len: 0,
        value_len: 100,
        headers: 0,
        codec: Compression::Lz4,
        per_batch: 1000,
        batches: 10,
    },
    Case {
        name: "value100_zstd",
        key_len: 0,
        value_len: 100,
        headers: 0,
        codec: Compression::Zstd,
        per_batch: 1000,
        batches: 10,
    },
];

/// A small deterministic generator (xorshift32), so runs are comparable.
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
}

/// JSON-ish log-line bytes of exactly `len` bytes: compressible a few times, like
/// application payloads, not a run of one repeated byte.
fn value_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    const WORDS: [&str; 8] = [
        "click", "view", "purchase", "login", "search", "scroll", "checkout", "profile",
    ];
    let mut v = Vec::with_capacity(len + 96);
    while v.len() < len {
        let line = format!(
            "{{\"user\":\"u{:06x}\",\"event\":\"{}\",\"ms\":{},\"session\":\"{:08x}\"}} ",
            rng.next() % 50_000,
            WORDS[rng.next() as usize % WORDS.len()],
            rng.next() % 5000,
            rng.next(),
        );
        v.extend_from_slice(line.as_bytes());
    }
    v.truncate(len);
    v
}

/// The records blob for a case: distinct values per record, timestamps 1 ms apart,
/// an idempotent producer (sequences), as a Java producer writes them.
fn build(case: &Case) -> Vec<u8> {
    let mut rng = Rng(0x2545_f491);
    let header_value = b"00f067aa0ba902b7".to_vec();
    let headers: Vec<Header<'_>> = (0..case.headers)
        .map(|_| Header {
            key: b"traceparent",
            value: Some(&header_value),
        })
        .collect();
    let mut out = Vec::new();
    let mut offset = 0i64;
    for _ in 0..case.batches {
        let mut b = RecordBatchBuilder::new(offset)
            .compression(case.codec)
            .producer(4242, 0, offset as i32);
        for _ in 0..case.per_batch {
            let key = (case.key_len > 0).then(|| {
                let k = u64::from(rng.next()).to_be_bytes();
                k.repeat(case.key_len.div_ceil(8))[..case.key_len].to_vec()
            });
            let value = value_bytes(&mut rng, case.value_len);
            b.append_with_headers(
                1_700_000_000_000 + offset,
                key.as_deref(),
                Some(&value),
                &headers,
            );
            offset += 1;
        }
        b.write_to(&mut out);
    }
    out
}

/// What both sides compute: records seen, and a checksum of what was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    records: u64,
    sum: u64,
}

/// weir: walk the batches, verify CRCs, read every field of every record.
fn weir_decode(data: &[u8], d: &mut Decompressor) -> Seen {
    let mut records = 0u64;
    let mut sum = 0u64;
    for b in Batches::new(data) {
        // The input is built by this file: every batch is well formed.
        let b = b.expect("built batch parses");
        // Same: the builder wrote the right CRC.
        b.verify_crc().expect("built batch has a valid crc");
        // Same: the codec is one weir wrote.
        for r in b.records(d).expect("built batch decompresses") {
            // Same: every record is well formed.
            let r = r.expect("built record parses");
            sum = sum
                .wrapping_add(r.offset() as u64)
                .wrapping_add(r.timestamp() as u64)
                .wrapping_add(r.key().map_or(0, <[u8]>::len) as u64)
                .wrapping_add(r.value().map_or(0, <[u8]>::len) as u64);
            for h in r.headers() {
                // Same: headers written by the builder.
                let h = h.expect("built header parses");
                sum = sum
                    .wrapping_add(h.key.len() as u64)
                    .wrapping_add(h.value.map_or(0, <[u8]>::len) as u64);
            }
            records += 1;
        }
    }
    Seen { records, sum }
}

fn weir_codec(c: KpCompression) -> Compression {
    match c {
        KpCompression::None => Compression::None,
        KpCompression::Gzip => Compression::Gzip,
        KpCompression::Snappy => Compression::Snappy,
        KpCompression::Lz4 => Compression::Lz4,
        KpCompression::Zstd => Compression::Zstd,
    }
}

/// kafka-protocol: decode every batch into owned records (CRC checked inside), then
/// read the same fields. Compressed batches go through weir's decompressor.
fn kp_decode(data: &Bytes, d: &RefCell<Decompressor>) -> Seen {
    let mut buf = data.clone();
    let decompress = |b: &mut Bytes, c: KpCompression| {
        let mut d = d.borrow_mut();
        // The input is built by this file with a codec weir writes.
        let out = d
            .decompress(weir_codec(c), b)
            .expect("built batch decompresses");
        Ok(Bytes::copy_from_slice(out))
    };
    let mut records = 0u64;
    let mut sum = 0u64;
    while buf.has_remaining() {
        // Well-formed input built by this file.
        let set = RecordBatchDecoder::decode_with_custom_compression(&mut buf, Some(&decompress))
            .expect("kafka-protocol decodes the built batch");
        for r in &set.records {
            sum = sum
                .wrapping_add(r.offset as u64)
                .wrapping_add(r.timestamp as u64)
                .wrapping_add(r.key.as_ref().map_or(0, Bytes::len) as u64)
                .wrapping_add(r.value.as_ref().map_or(0, Bytes::len) as u64);
            for (k, v) in &r.headers {
                sum = sum
                    .wrapping_add(k.len() as u64)
                    .wrapping_add(v.as_ref().map_or(0, Bytes::len) as u64);
            }
            records += 1;
        }
    }
    Seen { records, sum }
}

fn bench_records(c: &mut Crit) {
    let mut g = c.benchmark_group("records");
    g.measurement_time(Duration::from_secs(4));
    g.warm_up_time(Duration::from_secs(1));
    for case in CASES {
        let data = build(case);
        let bytes = Bytes::from(data.clone());
        let mut d = Decompressor::new();
        let kd = RefCell::new(Decompressor::new());
        let ours = weir_decode(&data, &mut d);
        let theirs = kp_decode(&bytes, &kd);
        assert_eq!(
            ours, theirs,
            "{}: weir and kafka-protocol disagree",
            case.name
        );
        assert_eq!(ours.records as usize, case.per_batch * case.batches);
        // Bytes counted are the records blob as fetched (compressed when compressed).
        g.throughput(Throughput::ElementsAndBytes {
            elements: ours.records,
            bytes: data.len() as u64,
        });
        g.bench_function(BenchmarkId::new("weir", case.name), |b| {
            b.iter(|| weir_decode(black_box(&data), &mut d));
        });
        g.bench_function(BenchmarkId::new("kafka-protocol", case.name), |b| {
            b.iter(|| kp_decode(black_box(&bytes), &kd));
        });
    }
    g.finish();
}

/// Ceilings for the 1 KiB case: CRC32C and memcpy over the same blob.
fn bench_reference(c: &mut Crit) {
    let mut g = c.benchmark_group("reference");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    let case = CASES
        .iter()
        .find(|c| c.name == "value1k_nokey_nohdr")
        .expect("the 1 KiB case is in CASES");
    let data = build(case);
    let mut copy = vec![0u8; data.len()];
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("crc32c", |b| b.iter(|| crc32c::crc32c(black_box(&data))));
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            copy.copy_from_slice(black_box(&data));
            black_box(&copy);
        })
    });
    g.finish();
}

/// A Fetch v16 response body: `topics` topics of `partitions_per_topic` partitions,
/// each carrying `records_len` bytes of records.
fn fetch_body(topics: u8, partitions_per_topic: i32, records_len: usize) -> Vec<u8> {
    let records = Bytes::from(vec![0u8; records_len]);
    let responses = (0..topics)
        .map(|_| {
            // Topic ids stay nil: the decoders do not look them up.
            FetchableTopicResponse::default().with_partitions(
                (0..partitions_per_topic)
                    .map(|i| {
                        PartitionData::default()
                            .with_partition_index(i)
                            .with_high_watermark(1_000_000)
                            .with_last_stable_offset(1_000_000)
                            .with_log_start_offset(0)
                            .with_aborted_transactions(Some(vec![]))
                            .with_records(Some(records.clone()))
                    })
                    .collect(),
            )
        })
        .collect();
    let resp = KpFetchResponse::default().with_responses(responses);
    let mut out = Vec::new();
    // Encoding a default-filled response into a Vec cannot fail.
    resp.encode(&mut out, 16)
        .expect("kafka-protocol encodes Fetch v16");
    out
}

/// The Fetch decoder: 100 partitions (4 topics x 25), with 1 KiB and with 64 KiB of
/// records each. weir's cost must not depend on the records' size.
fn bench_fetch(c: &mut Crit) {
    let mut g = c.benchmark_group("fetch_v16_100_partitions");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(100));
    for (label, records_len) in [("records_1KiB", 1024), ("records_64KiB", 64 * 1024)] {
        let body = fetch_body(4, 25, records_len);
        let kp_body = Bytes::from(body.clone());
        // Decodes: the body was just encoded at v16.
        let ours = FetchResponse::decode_body(&body, 16).expect("weir decodes Fetch v16");
        let n: usize = ours.topics.iter().map(|t| t.partitions.len()).sum();
        assert_eq!(n, 100);
        g.bench_function(BenchmarkId::new("weir", label), |b| {
            b.iter(|| {
                // As above.
                let r = FetchResponse::decode_body(black_box(&body), 16).expect("decodes");
                black_box(r.topics.len())
            })
        });
        g.bench_function(BenchmarkId::new("kafka-protocol", label), |b| {
            b.iter(|| {
                let mut buf = black_box(&kp_body).clone();
                // As above.
                let r = KpFetchResponse::decode(&mut buf, 16).expect("decodes");
                black_box(r.responses.len())
            })
        });
    }
    g.finish();
}

/// Criterion's output directory, found the way criterion finds it.
fn criterion_dir() -> Option<PathBuf> {
    if let Some(h) = std::env::var_os("CRITERION_HOME") {
        return Some(PathBuf::from(h));
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(t).join("criterion"));
    }
    // target/release/deps/decode-<hash>: criterion sits in target/criterion.
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.parent()?.join("criterion"))
}

/// The median (ns per iteration) criterion stored for `group/function/case`, if it
/// was measured after `since`.
fn median_ns(dir: &std::path::Path, id: &str, since: SystemTime) -> Option<f64> {
    let path = dir.join(id).join("new").join("estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("median")?.get("point_estimate")?.as_f64()
}

/// Print criterion's medians for what this run measured, with weir/kafka-protocol
/// ratios computed from the same run.
fn summary(since: SystemTime, clock: Clock) {
    let Some(dir) = criterion_dir() else {
        return;
    };
    let mut lines = Vec::new();
    let mut uncompressed_weir = None;
    let mut measured = false;
    for case in CASES {
        let data_len = build(case).len() as f64;
        let records = (case.per_batch * case.batches) as f64;
        let w = median_ns(&dir, &format!("records/weir/{}", case.name), since);
        let k = median_ns(
            &dir,
            &format!("records/kafka-protocol/{}", case.name),
            since,
        );
        if case.name == "value100_nokey_nohdr" {
            uncompressed_weir = w;
        }
        measured |= w.is_some() || k.is_some();
        if w.is_none() && k.is_none() {
            continue;
        }
        let fmt = |ns: Option<f64>| match ns {
            Some(ns) => format!(
                "{:>8.2} M rec/s {:>6.2} GB/s",
                records / ns * 1e3,
                data_len / ns
            ),
            None => format!("{:>28}", "-"),
        };
        let ratio = match (w, k) {
            (Some(w), Some(k)) => format!("{:>6.2}x", k / w),
            _ => format!("{:>7}", "-"),
        };
        let vs_plain = match (w, uncompressed_weir) {
            (Some(w), Some(u)) if case.codec != Compression::None => {
                format!("  (weir {:.2}x slower than uncompressed)", w / u)
            }
            _ => String::new(),
        };
        lines.push(format!(
            "{:<22} weir {}   kafka-protocol {}   weir/kp {}{}",
            case.name,
            fmt(w),
            fmt(k),
            ratio,
            vs_plain
        ));
    }
    for label in ["records_1KiB", "records_64KiB"] {
        let w = median_ns(
            &dir,
            &format!("fetch_v16_100_partitions/weir/{label}"),
            since,
        );
        let k = median_ns(
            &dir,
            &format!("fetch_v16_100_partitions/kafka-protocol/{label}"),
            since,
        );
        if let (Some(w), Some(k)) = (w, k) {
            lines.push(format!(
                "fetch 100 partitions, {label:<14} weir {:>8.0} ns ({:>5.1} ns/partition)   kafka-protocol {:>8.0} ns   weir/kp {:>6.2}x",
                w,
                w / 100.0,
                k,
                k / w
            ));
        }
    }
    for name in ["crc32c", "memcpy"] {
        if let Some(ns) = median_ns(&dir, &format!("reference/{name}"), since) {
            let case = CASES
                .iter()
                .find(|c| c.name == "value1k_nokey_nohdr")
                .expect("the 1 KiB case is in CASES");
            lines.push(format!(
                "reference {name:<8} {:>6.2} GB/s",
                build(case).len() as f64 / ns
            ));
        }
    }
    if !measured && lines.is_empty() {
        // Test mode (`--test`) or a filter that matched nothing here: no medians.
        return;
    }
    println!("\nmedians (criterion, this run, {}):", clock.name());
    for l in lines {
        println!("{l}");
    }
}

fn main() {
    let start = SystemTime::now();
    let clock = Clock::from_env();
    let mut c = Criterion::default()
        .with_measurement(clock)
        .configure_from_args();
    bench_records(&mut c);
    bench_reference(&mut c);
    bench_fetch(&mut c);
    c.final_summary();
    summary(start, clock);
}
