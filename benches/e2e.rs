//! End-to-end fetch benchmarks: weir's `Consumer` against a replay server and against
//! a real broker. Not a criterion bench: each measurement is a whole process, so CPU
//! time and peak RSS are exactly the consumer's.
//!
//! ```text
//! cargo bench --bench e2e                      # the replay suite (table of medians)
//! cargo bench --bench e2e -- replay --mode poll --records 20000000
//! cargo bench --bench e2e -- broker --bootstrap 127.0.0.1:9092 --topic t [--tls-dir DIR] \
//!     --partitions 4 --records 2000000         # used by scripts/bench-e2e.sh
//! ```
//!
//! # The replay server (`serve`, always a child process)
//!
//! A loopback TCP server on 127.0.0.1 answering ApiVersions (advertising what a broker
//! would, so librdkafka and the Java consumer read from it too: `scripts/bench-kafka.sh
//! --replay`), Metadata (one topic
//! `bench`, N partitions, itself as the leader), ListOffsets and every Fetch with
//! record batches encoded once: a partition's whole Fetch entry (header, records
//! field, batches of `--batch-records` records with 100-byte values and null keys) is
//! built the first time a partition is asked for with a given
//! `partition_max_bytes`; each later Fetch only patches the batches' base offsets
//! (not covered by the CRC) and the watermarks, then writes the pieces with one
//! vectored write. The log never ends: every Fetch gets a full answer at once. The
//! server never grants a fetch session, so every request names every partition.
//! Running it in its own process keeps its CPU and memory out of the client's numbers.
//!
//! # The client (`replay`)
//!
//! Spawns a server, then consumes `--records` records from all partitions (from
//! Earliest) in poll mode (one thread: the reactor and the handler) or worker mode
//! (`Consumer::run_workers`). The handler touches every value (length, first and last
//! byte) and checks that offsets are consecutive per partition. Reports records/s,
//! GB/s of record-batch bytes, CPU seconds per million records (getrusage of this
//! process, the server excluded), peak RSS (VmHWM) against the ring budget, and the
//! server's own CPU time.
//!
//! # Against a broker (`broker`)
//!
//! Consumes exactly `--records` records from `--partitions` partitions of `--topic`
//! (from Earliest) and prints one JSON line in the shape of
//! `scripts/consume_rdkafka.py`'s summary (seconds from the first to the last record,
//! key+value bytes) plus CPU and RSS.

use std::collections::HashMap;
use std::error::Error;
use std::io::{self, BufRead, BufReader, IoSlice, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest,
    ListOffsetsResponse, MetadataRequest, MetadataResponse, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use weir_fetch::{Consumer, ConsumerRecord, FetchConfig, OffsetReset, StartAt};
use weir_protocol::record::RecordBatchBuilder;

type Res<T> = Result<T, Box<dyn Error>>;

const TOPIC: &str = "bench";
const TOPIC_ID: [u8; 16] = *b"weir-e2e-bench!!";
const VALUE_SIZE: usize = 100;
/// Fetch versions the replay server encodes (flexible ones; weir's decoder stops at 16).
const FETCH_MIN: i16 = 12;
const FETCH_MAX: i16 = 16;

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary with no
    // arguments at all: then a one-rep smoke of every mode (still checking gaps and
    // repeats), not the full 20 M-record suite.
    let benching = raw.iter().any(|a| a == "--bench");
    let mut args: Vec<String> = raw.into_iter().filter(|a| a != "--bench").collect();
    if args.is_empty() && !benching {
        args = ["suite", "--reps", "1", "--records", "200000"]
            .map(str::to_owned)
            .to_vec();
    }
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("suite", &args[..]),
    };
    let result = Opts::parse(rest).and_then(|o| match cmd {
        "suite" => suite(&o),
        "serve" => serve_main(&o),
        "replay" => replay_main(&o),
        "broker" => broker_main(&o),
        other => Err(format!(
            "unknown command {other:?}: use suite, replay, broker (or serve, internal)"
        )
        .into()),
    });
    if let Err(e) = result {
        eprintln!("e2e {cmd}: {e}");
        std::process::exit(1);
    }
}

/// `--key value` options.
#[derive(Debug, Default, Clone)]
struct Opts(HashMap<String, String>);

impl Opts {
    fn parse(args: &[String]) -> Res<Self> {
        let mut m = HashMap::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let Some(k) = a.strip_prefix("--") else {
                return Err(format!("expected --option, got {a:?}").into());
            };
            let v = it
                .next()
                .ok_or_else(|| format!("--{k} needs a value"))?
                .clone();
            m.insert(k.to_owned(), v);
        }
        Ok(Self(m))
    }

    fn str(&self, k: &str, default: &str) -> String {
        self.0.get(k).cloned().unwrap_or_else(|| default.to_owned())
    }

    fn num<T: std::str::FromStr>(&self, k: &str, default: T) -> Res<T> {
        match self.0.get(k) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{k} {v:?} is not a number").into()),
        }
    }
}

// ---------------------------------------------------------------------------------
// Process measurements
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    user: f64,
    sys: f64,
}

fn cpu_self() -> Cpu {
    // SAFETY: getrusage writes into the zeroed struct we pass; RUSAGE_SELF is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return Cpu::default();
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Cpu {
        user: tv(ru.ru_utime),
        sys: tv(ru.ru_stime),
    }
}

/// A field of /proc/self/status in KiB (VmHWM, VmRSS).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// utime + stime of another process, in seconds.
fn cpu_of(pid: u32) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the parenthesised command name; utime and stime are the
            // 14th and 15th fields overall.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let u: f64 = f.get(11)?.parse().ok()?;
            let st: f64 = f.get(12)?.parse().ok()?;
            Some((u + st) / tick)
        })
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------------------------
// The replay server
// ---------------------------------------------------------------------------------

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One batch of `n` records with 100-byte values, base offset 0.
fn template_batch(n: usize) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(0);
    let mut value = [0u8; VALUE_SIZE];
    for i in 0..n {
        for (j, x) in value.iter_mut().enumerate() {
            *x = b'a' + ((i + j) % 26) as u8;
        }
        b.append(1_700_000_000_000 + i as i64, None, Some(&value));
    }
    b.build()
}

/// A partition's pre-encoded Fetch entry (flexible versions): everything from
/// `partition_index` to its tagged fields.
#[derive(Debug, Clone)]
struct PartBlock {
    bytes: Vec<u8>,
    hw_at: usize,
    batch_at: Vec<usize>,
    records_per_batch: i64,
    records_len: usize,
}

impl PartBlock {
    fn new(partition: i32, batch: &[u8], records_per_batch: usize, max_bytes: usize) -> Self {
        let batches = (max_bytes / batch.len()).max(1);
        Self::build(partition, batch, records_per_batch, batches)
    }

    fn build(partition: i32, batch: &[u8], records_per_batch: usize, batches: usize) -> Self {
        let mut b = Vec::with_capacity(64 + batches * batch.len());
        b.extend_from_slice(&partition.to_be_bytes());
        b.extend_from_slice(&0i16.to_be_bytes()); // error
        let hw_at = b.len();
        b.extend_from_slice(&0i64.to_be_bytes()); // high watermark
        b.extend_from_slice(&0i64.to_be_bytes()); // last stable offset
        b.extend_from_slice(&0i64.to_be_bytes()); // log start offset
        b.push(0); // aborted transactions: null
        b.extend_from_slice(&(-1i32).to_be_bytes()); // preferred read replica
        let records_len = batches * batch.len();
        put_uvarint(&mut b, records_len as u64 + 1);
        let mut batch_at = Vec::with_capacity(batches);
        for _ in 0..batches {
            batch_at.push(b.len());
            b.extend_from_slice(batch);
        }
        b.push(0); // tagged fields
        Self {
            bytes: b,
            hw_at,
            batch_at,
            records_per_batch: records_per_batch as i64,
            records_len,
        }
    }

    /// Serve from `offset`: patch base offsets and watermarks.
    fn patch(&mut self, offset: i64) {
        let mut base = offset;
        for &at in &self.batch_at {
            self.bytes[at..at + 8].copy_from_slice(&base.to_be_bytes());
            base += self.records_per_batch;
        }
        // The log end is just past what this response carries.
        self.bytes[self.hw_at..self.hw_at + 8].copy_from_slice(&base.to_be_bytes());
        self.bytes[self.hw_at + 8..self.hw_at + 16].copy_from_slice(&base.to_be_bytes());
    }

    /// The entry with no records (over the response budget).
    fn empty(partition: i32, offset: i64) -> Vec<u8> {
        let mut b = Vec::with_capacity(48);
        b.extend_from_slice(&partition.to_be_bytes());
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&(offset + (1 << 30)).to_be_bytes());
        b.extend_from_slice(&(offset + (1 << 30)).to_be_bytes());
        b.extend_from_slice(&0i64.to_be_bytes());
        b.push(0);
        b.extend_from_slice(&(-1i32).to_be_bytes());
        put_uvarint(&mut b, 1);
        b.push(0);
        b
    }
}

#[derive(Debug, Clone)]
struct ServerCfg {
    port: u16,
    partitions: i32,
    batch: Arc<Vec<u8>>,
    records_per_batch: usize,
}

fn serve_main(o: &Opts) -> Res<()> {
    let partitions: i32 = o.num("partitions", 8)?;
    let records_per_batch: usize = o.num("batch-records", 500)?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let cfg = ServerCfg {
        port,
        partitions,
        batch: Arc::new(template_batch(records_per_batch)),
        records_per_batch,
    };
    self_check(&cfg)?;
    println!("{port}");
    io::stdout().flush()?;
    // The parent holds our stdin; when it closes it (or dies) we are done.
    thread::spawn(|| {
        let mut sink = [0u8; 64];
        while io::stdin().read(&mut sink).is_ok_and(|n| n > 0) {}
        std::process::exit(0);
    });
    for stream in listener.incoming() {
        let stream = stream?;
        let cfg = cfg.clone();
        thread::spawn(move || {
            if let Err(e) = serve_conn(stream, &cfg) {
                if !is_disconnect(e.as_ref()) {
                    eprintln!("replay server: {e}");
                }
            }
        });
    }
    Ok(())
}

fn is_disconnect(e: &(dyn Error + 'static)) -> bool {
    e.downcast_ref::<io::Error>().is_some_and(|e| {
        matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::BrokenPipe
        )
    })
}

fn write_all_vectored(s: &mut TcpStream, pieces: &[&[u8]]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = pieces.iter().map(|p| IoSlice::new(p)).collect();
    let mut bufs = &mut slices[..];
    while !bufs.is_empty() {
        match s.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A response frame (size, header, body) encoded with kafka-protocol.
fn kp_frame<R: Encodable>(key: ApiKey, version: i16, corr: i32, body: &R) -> Res<Vec<u8>> {
    let mut out = BytesMut::new();
    out.extend_from_slice(&[0; 4]);
    ResponseHeader::default()
        .with_correlation_id(corr)
        .encode(&mut out, key.response_header_version(version))?;
    body.encode(&mut out, version)?;
    let len = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(out.to_vec())
}

fn serve_conn(mut s: TcpStream, cfg: &ServerCfg) -> Res<()> {
    s.set_nodelay(true)?;
    let mut blocks: HashMap<(i32, i32), PartBlock> = HashMap::new();
    let mut frame = Vec::new();
    loop {
        let mut size = [0u8; 4];
        s.read_exact(&mut size)?;
        let size = usize::try_from(i32::from_be_bytes(size)).map_err(|_| "negative frame size")?;
        frame.resize(size, 0);
        s.read_exact(&mut frame)?;
        if frame.len() < 8 {
            return Err("short request".into());
        }
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let corr = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let key = ApiKey::try_from(key).map_err(|_| format!("unknown api key {key}"))?;
        let mut body = Bytes::copy_from_slice(&frame);
        if key == ApiKey::ApiVersions {
            let (v, code) = if version > key.valid_versions().max {
                (0, 35) // UNSUPPORTED_VERSION, answered at v0
            } else {
                (version, 0)
            };
            let resp = api_versions(code);
            s.write_all(&kp_frame(key, v, corr, &resp)?)?;
            continue;
        }
        kafka_protocol::protocol::decode_request_header_from_buffer(&mut body)?;
        match key {
            ApiKey::Metadata => {
                let req = MetadataRequest::decode(&mut body, version)?;
                let resp = metadata(cfg, &req, version);
                s.write_all(&kp_frame(key, version, corr, &resp)?)?;
            }
            ApiKey::ListOffsets => {
                let req = ListOffsetsRequest::decode(&mut body, version)?;
                let resp = list_offsets(&req, version);
                s.write_all(&kp_frame(key, version, corr, &resp)?)?;
            }
            ApiKey::Fetch => {
                let req = FetchRequest::decode(&mut body, version)?;
                fetch(&mut s, cfg, &mut blocks, &req, version, corr)?;
            }
            other => return Err(format!("replay server does not answer {other:?}").into()),
        }
    }
}

fn api_versions(code: i16) -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    r.error_code = code;
    // Produce is advertised though never answered: librdkafka derives its features
    // from this list and, without Produce v3+ (record batches, magic 2), refuses to
    // fetch at all ("required feature not supported by broker"). A Produce request
    // closes the connection, as any request this server does not know does.
    r.api_keys = [
        ApiKey::Produce,
        ApiKey::ApiVersions,
        ApiKey::Metadata,
        ApiKey::ListOffsets,
        ApiKey::Fetch,
    ]
    .into_iter()
    .map(|k| {
        let range = k.valid_versions();
        let (min, max) = if k == ApiKey::Fetch {
            (FETCH_MIN, FETCH_MAX.min(range.max))
        } else if k == ApiKey::Produce {
            (range.min.max(3), range.max)
        } else {
            (range.min, range.max)
        };
        ApiVersion::default()
            .with_api_key(k as i16)
            .with_min_version(min)
            .with_max_version(max)
    })
    .collect();
    r
}

fn metadata(cfg: &ServerCfg, req: &MetadataRequest, version: i16) -> MetadataResponse {
    let mut resp = MetadataResponse::default();
    let mut b = MetadataResponseBroker::default();
    b.node_id = BrokerId(0);
    b.host = StrBytes::from_static_str("127.0.0.1");
    b.port = i32::from(cfg.port);
    resp.brokers = vec![b];
    resp.cluster_id = Some(StrBytes::from_static_str("weir-e2e"));
    resp.controller_id = BrokerId(0);
    let names: Vec<String> = match &req.topics {
        None => vec![TOPIC.to_owned()],
        Some(ts) => ts
            .iter()
            .map(|t| t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default())
            .collect(),
    };
    for name in names {
        let mut t = MetadataResponseTopic::default();
        t.name = Some(TopicName(StrBytes::from_string(name.clone())));
        if name != TOPIC {
            t.error_code = 3; // UNKNOWN_TOPIC_OR_PARTITION
        } else {
            if version >= 10 {
                t.topic_id = uuid::Uuid::from_bytes(TOPIC_ID);
            }
            t.partitions = (0..cfg.partitions)
                .map(|i| {
                    let mut p = MetadataResponsePartition::default();
                    p.partition_index = i;
                    p.leader_id = BrokerId(0);
                    p.leader_epoch = 0;
                    p.replica_nodes = vec![BrokerId(0)];
                    p.isr_nodes = vec![BrokerId(0)];
                    p
                })
                .collect();
        }
        resp.topics.push(t);
    }
    resp
}

fn list_offsets(req: &ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let mut resp = ListOffsetsResponse::default();
    for t in &req.topics {
        let mut out = ListOffsetsTopicResponse::default();
        out.name = t.name.clone();
        for p in &t.partitions {
            let mut pr = ListOffsetsPartitionResponse::default();
            pr.partition_index = p.partition_index;
            // Earliest is 0; anything else is a far-away log end.
            pr.offset = if p.timestamp == -2 { 0 } else { 1 << 40 };
            pr.timestamp = -1;
            if version >= 4 {
                pr.leader_epoch = 0;
            }
            out.partitions.push(pr);
        }
        resp.topics.push(out);
    }
    resp
}

/// Encodes and writes one Fetch response from the pre-encoded blocks.
fn fetch(
    s: &mut TcpStream,
    cfg: &ServerCfg,
    blocks: &mut HashMap<(i32, i32), PartBlock>,
    req: &FetchRequest,
    version: i16,
    corr: i32,
) -> Res<()> {
    let mut budget = usize::try_from(req.max_bytes).unwrap_or(0);
    let mut first = true;
    // (topic header, [(block key or empty entry)], )
    enum Entry {
        Block((i32, i32)),
        Empty(Vec<u8>),
    }
    let mut topics: Vec<(Vec<u8>, Vec<Entry>)> = Vec::new();
    for t in &req.topics {
        let mut head = Vec::with_capacity(32);
        if version >= 13 {
            head.extend_from_slice(t.topic_id.as_bytes());
        } else {
            put_uvarint(&mut head, t.topic.0.len() as u64 + 1);
            head.extend_from_slice(t.topic.0.as_bytes());
        }
        put_uvarint(&mut head, t.partitions.len() as u64 + 1);
        let mut entries = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let k = (p.partition, p.partition_max_bytes);
            let block = blocks.entry(k).or_insert_with(|| {
                PartBlock::new(
                    p.partition,
                    &cfg.batch,
                    cfg.records_per_batch,
                    usize::try_from(p.partition_max_bytes).unwrap_or(0),
                )
            });
            if first || block.records_len <= budget {
                first = false;
                budget = budget.saturating_sub(block.records_len);
                block.patch(p.fetch_offset);
                entries.push(Entry::Block(k));
            } else {
                entries.push(Entry::Empty(PartBlock::empty(p.partition, p.fetch_offset)));
            }
        }
        topics.push((head, entries));
    }
    let mut head = Vec::with_capacity(32);
    head.extend_from_slice(&[0; 4]);
    head.extend_from_slice(&corr.to_be_bytes());
    head.push(0); // response header tagged fields (header v1)
    head.extend_from_slice(&0i32.to_be_bytes()); // throttle
    head.extend_from_slice(&0i16.to_be_bytes()); // error
    head.extend_from_slice(&0i32.to_be_bytes()); // session id: none
    put_uvarint(&mut head, topics.len() as u64 + 1);
    const TAGS: &[u8] = &[0];
    let mut pieces: Vec<&[u8]> = vec![&[]];
    for (th, entries) in &topics {
        pieces.push(th);
        for e in entries {
            pieces.push(match e {
                Entry::Block(k) => &blocks[k].bytes,
                Entry::Empty(b) => b,
            });
        }
        pieces.push(TAGS); // topic tagged fields
    }
    pieces.push(TAGS); // response tagged fields
    let total: usize = head.len() - 4 + pieces.iter().map(|p| p.len()).sum::<usize>();
    head[..4].copy_from_slice(&(total as i32).to_be_bytes());
    pieces[0] = &head;
    write_all_vectored(s, &pieces)?;
    Ok(())
}

/// Check the hand-encoded Fetch response against kafka-protocol's decoder, once.
fn self_check(cfg: &ServerCfg) -> Res<()> {
    for version in FETCH_MIN..=FETCH_MAX {
        let mut blocks = HashMap::new();
        let mut b0 = PartBlock::new(0, &cfg.batch, cfg.records_per_batch, 1 << 20);
        b0.patch(1000);
        blocks.insert((0, 1 << 20), b0.clone());
        let records_len = b0.records_len;
        let (l, r) = TcpListener::bind("127.0.0.1:0").map(|l| {
            let a = l.local_addr();
            (l, a)
        })?;
        let mut client = TcpStream::connect(r?)?;
        let (mut srv, _) = l.accept()?;
        let mut req = FetchRequest::default();
        req.max_bytes = i32::MAX;
        let mut t = kafka_protocol::messages::fetch_request::FetchTopic::default();
        t.topic = TopicName(StrBytes::from_static_str(TOPIC));
        t.topic_id = uuid::Uuid::from_bytes(TOPIC_ID);
        for (p, off) in [(0, 1000), (1, 7)] {
            let mut fp = kafka_protocol::messages::fetch_request::FetchPartition::default();
            fp.partition = p;
            fp.fetch_offset = off;
            fp.partition_max_bytes = if p == 0 { 1 << 20 } else { 1 };
            t.partitions.push(fp);
        }
        req.topics.push(t);
        fetch(&mut srv, cfg, &mut blocks, &req, version, 77)?;
        drop(srv);
        let mut all = Vec::new();
        client.read_to_end(&mut all)?;
        let mut buf = Bytes::from(all).slice(4..);
        let h = ResponseHeader::decode(&mut buf, ApiKey::Fetch.response_header_version(version))?;
        let resp = FetchResponse::decode(&mut buf, version)?;
        let ok = h.correlation_id == 77
            && buf.is_empty()
            && resp.responses.len() == 1
            && resp.responses[0].partitions.len() == 2
            && resp.responses[0].partitions[0].high_watermark > 1000
            && resp.responses[0].partitions[0]
                .records
                .as_ref()
                .is_some_and(|r| r.len() == records_len && r[..8] == 1000i64.to_be_bytes())
            && resp.responses[0].partitions[1]
                .records
                .as_ref()
                .is_some_and(|r| r.len() == cfg.batch.len() && r[..8] == 7i64.to_be_bytes());
        if !ok {
            return Err(format!("replay server self-check failed for Fetch v{version}").into());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------

struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
}

impl Server {
    fn spawn(partitions: i32, batch_records: usize) -> Res<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args([
                "serve",
                "--partitions",
                &partitions.to_string(),
                "--batch-records",
                &batch_records.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        let out = child.stdout.take().ok_or("no server stdout")?;
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line)?;
        let port = line
            .trim()
            .parse()
            .map_err(|_| format!("replay server printed {line:?}, not a port"))?;
        Ok(Self { child, stdin, port })
    }

    fn cpu(&self) -> f64 {
        cpu_of(self.child.id())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the handler does with every record: touch the value, check the offsets.
#[derive(Debug)]
struct Touch {
    next: Vec<i64>,
    sum: u64,
    records: u64,
    gaps: u64,
}

impl Touch {
    fn new(partitions: usize) -> Self {
        Self {
            next: vec![-1; partitions],
            sum: 0,
            records: 0,
            gaps: 0,
        }
    }

    #[inline]
    fn record(&mut self, r: &ConsumerRecord<'_>) {
        let v = r.value().unwrap_or(&[]);
        self.sum = self
            .sum
            .wrapping_add(v.len() as u64)
            .wrapping_add(u64::from(v.first().copied().unwrap_or(0)))
            .wrapping_add(u64::from(v.last().copied().unwrap_or(0)));
        let off = r.offset();
        if let Some(n) = self.next.get_mut(r.partition as usize) {
            if *n >= 0 && *n != off {
                self.gaps += 1;
            }
            *n = off + 1;
        }
        self.records += 1;
    }
}

fn replay_main(o: &Opts) -> Res<()> {
    let mode = o.str("mode", "poll");
    let target: u64 = o.num("records", 20_000_000)?;
    let partitions: i32 = o.num("partitions", 8)?;
    let batch_records: usize = o.num("batch-records", 500)?;
    let ring_mib: usize = o.num("ring-mib", 64)?;
    let fetch_max_mib: usize = o.num("fetch-max-mib", 50)?;
    let part_kib: i32 = o.num("partition-kib", 1024)?;
    let workers: usize = o.num("workers", 1)?;
    let pin = o.str("pin", "true") == "true";

    let server = Server::spawn(partitions, batch_records)?;
    if mode == "raw" {
        return raw_main(&server, partitions, part_kib, fetch_max_mib, target);
    }
    let mut cfg = FetchConfig::new(&format!("127.0.0.1:{}", server.port));
    cfg.ring_bytes = ring_mib << 20;
    cfg.fetch_max_bytes = i32::try_from(fetch_max_mib << 20)?;
    cfg.max_partition_fetch_bytes = part_kib << 10;
    cfg.auto_offset_reset = OffsetReset::Earliest;
    let mut c = Consumer::new(cfg)?;
    for p in 0..partitions {
        c.assign(TOPIC, p, StartAt::Earliest);
    }
    let hwm0 = status_kib("VmHWM:");
    let cpu0 = cpu_self();
    let t0 = Instant::now();
    let (records, sum, gaps) = match mode.as_str() {
        "poll" => {
            let mut touch = Touch::new(partitions as usize);
            while touch.records < target {
                c.poll(Duration::from_millis(100), |r| touch.record(r))?;
                if t0.elapsed() > Duration::from_secs(600) {
                    return Err("no progress for 10 minutes".into());
                }
            }
            (touch.records, touch.sum, touch.gaps)
        }
        "workers" => {
            let stop = Arc::new(AtomicBool::new(false));
            let total = Arc::new(AtomicU64::new(0));
            let sums = Arc::new(AtomicU64::new(0));
            let gaps = Arc::new(AtomicU64::new(0));
            struct W {
                t: Touch,
                flushed: u64,
                total: Arc<AtomicU64>,
                sums: Arc<AtomicU64>,
                gaps: Arc<AtomicU64>,
                stop: Arc<AtomicBool>,
                target: u64,
            }
            impl W {
                fn flush(&mut self) {
                    let n = self.t.records - self.flushed;
                    self.flushed = self.t.records;
                    let all = self.total.fetch_add(n, Ordering::AcqRel) + n;
                    if all >= self.target {
                        self.stop.store(true, Ordering::Release);
                    }
                }
            }
            impl Drop for W {
                fn drop(&mut self) {
                    self.flush();
                    self.sums.fetch_add(self.t.sum, Ordering::AcqRel);
                    self.gaps.fetch_add(self.t.gaps, Ordering::AcqRel);
                }
            }
            let (st, to, su, ga) = (stop.clone(), total.clone(), sums.clone(), gaps.clone());
            c.run_workers(
                workers,
                pin,
                move |_| {
                    let mut w = W {
                        t: Touch::new(partitions as usize),
                        flushed: 0,
                        total: to.clone(),
                        sums: su.clone(),
                        gaps: ga.clone(),
                        stop: st.clone(),
                        target,
                    };
                    move |r: &ConsumerRecord<'_>| {
                        w.t.record(r);
                        if w.t.records - w.flushed >= 4096 {
                            w.flush();
                        }
                    }
                },
                &stop,
            )?;
            (
                total.load(Ordering::Acquire),
                sums.load(Ordering::Acquire),
                gaps.load(Ordering::Acquire),
            )
        }
        other => return Err(format!("--mode {other:?}: use poll or workers").into()),
    };
    let secs = t0.elapsed().as_secs_f64();
    let cpu1 = cpu_self();
    let hwm = status_kib("VmHWM:");
    let server_cpu = server.cpu();
    drop(server);
    let m = c.metrics();
    let cpu = (cpu1.user - cpu0.user) + (cpu1.sys - cpu0.sys);
    let out = serde_json::json!({
        "mode": mode,
        "workers": if mode == "workers" { workers } else { 0 },
        "partitions": partitions,
        "batch_records": batch_records,
        "ring_mib": ring_mib,
        "records": records,
        "metric_records": m.records,
        "batch_bytes": m.bytes,
        "socket_bytes": m.socket_bytes,
        "fetch_requests": m.fetch_requests,
        "ring_stalls": m.ring_stalls,
        "seconds": secs,
        "records_per_s": records as f64 / secs,
        "gb_per_s": m.bytes as f64 / secs / 1e9,
        "cpu_user_s": cpu1.user - cpu0.user,
        "cpu_sys_s": cpu1.sys - cpu0.sys,
        "cpu_s_per_m": cpu / (records as f64 / 1e6),
        "cpu_s_per_gb": cpu / (m.bytes as f64 / 1e9),
        "peak_rss_mib": hwm as f64 / 1024.0,
        "rss_before_mib": hwm0 as f64 / 1024.0,
        "server_cpu_s": server_cpu,
        "gaps": gaps,
        "checksum": sum,
    });
    println!("{out}");
    if gaps != 0 {
        return Err(format!("{gaps} offset gaps or repeats: the consumer is wrong").into());
    }
    Ok(())
}

/// The socket ceiling: the same Fetch exchange read into one reused buffer with plain
/// blocking reads and nothing else (no decoding, no CRC, no records), to compare
/// weir's CPU per byte against.
fn raw_main(
    server: &Server,
    partitions: i32,
    part_kib: i32,
    fetch_max_mib: usize,
    target_records: u64,
) -> Res<()> {
    use kafka_protocol::messages::RequestHeader;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    let version = 12;
    let mut req = FetchRequest::default();
    req.max_bytes = i32::try_from(fetch_max_mib << 20)?;
    req.max_wait_ms = 500;
    req.replica_id = BrokerId(-1);
    let mut t = FetchTopic::default();
    t.topic = TopicName(StrBytes::from_static_str(TOPIC));
    for p in 0..partitions {
        let mut fp = FetchPartition::default();
        fp.partition = p;
        fp.partition_max_bytes = part_kib << 10;
        t.partitions.push(fp);
    }
    req.topics.push(t);
    let mut frame = BytesMut::new();
    frame.extend_from_slice(&[0; 4]);
    RequestHeader::default()
        .with_request_api_key(ApiKey::Fetch as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .encode(&mut frame, ApiKey::Fetch.request_header_version(version))?;
    req.encode(&mut frame, version)?;
    let len = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    // 100-byte records take about 111 bytes in a batch; read that many bytes.
    let target = target_records * 111;
    let mut s = TcpStream::connect(("127.0.0.1", server.port))?;
    s.set_nodelay(true)?;
    let mut buf = Vec::new();
    let mut total = 0u64;
    let cpu0 = cpu_self();
    let t0 = Instant::now();
    while total < target {
        s.write_all(&frame)?;
        let mut size = [0u8; 4];
        s.read_exact(&mut size)?;
        let n = usize::try_from(i32::from_be_bytes(size))?;
        buf.resize(n, 0);
        s.read_exact(&mut buf)?;
        total += n as u64 + 4;
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu1 = cpu_self();
    let cpu = (cpu1.user - cpu0.user) + (cpu1.sys - cpu0.sys);
    let out = serde_json::json!({
        "mode": "raw",
        "socket_bytes": total,
        "seconds": secs,
        "gb_per_s": total as f64 / secs / 1e9,
        "cpu_user_s": cpu1.user - cpu0.user,
        "cpu_sys_s": cpu1.sys - cpu0.sys,
        "cpu_s_per_gb": cpu / (total as f64 / 1e9),
        "server_cpu_s": server.cpu(),
        "peak_rss_mib": status_kib("VmHWM:") as f64 / 1024.0,
    });
    println!("{out}");
    Ok(())
}

fn run_child(args: &[String]) -> Res<serde_json::Value> {
    let out = Command::new(std::env::current_exe()?)
        .args(args)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(format!("child {args:?} failed: {}", out.status).into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().ok_or("child printed nothing")?;
    Ok(serde_json::from_str(line)?)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn suite(o: &Opts) -> Res<()> {
    let reps: usize = o.num("reps", 3)?;
    let records: u64 = o.num("records", 20_000_000)?;
    let partitions: i32 = o.num("partitions", 8)?;
    let n = records.to_string();
    let p = partitions.to_string();
    let run = |mode: &str, extra: &[&str]| -> Vec<String> {
        [
            "replay",
            "--mode",
            mode,
            "--records",
            &n,
            "--partitions",
            &p,
        ]
        .iter()
        .chain(extra)
        .map(|s| (*s).to_owned())
        .collect()
    };
    // 16 MiB ring with 8 MiB fetches: ~2.2 GB of batches go through a ring 1/140th
    // that size.
    let small_ring = ["--ring-mib", "16", "--fetch-max-mib", "8"];
    let runs: Vec<(&str, Vec<String>)> = vec![
        ("raw socket read (ceiling)", run("raw", &[])),
        ("poll", run("poll", &[])),
        (
            "poll, 128 KiB/part, 1 MiB fetch",
            run("poll", &["--partition-kib", "128", "--fetch-max-mib", "1"]),
        ),
        ("workers=1 pinned", run("workers", &["--workers", "1"])),
        ("workers=2 pinned", run("workers", &["--workers", "2"])),
        ("poll, ring 16 MiB", run("poll", &small_ring)),
        (
            "workers=1, ring 16 MiB",
            run("workers", &[&small_ring[..], &["--workers", "1"]].concat()),
        ),
    ];
    println!(
        "{:<34} {:>7} {:>6} {:>8} {:>8} {:>9} {:>10} {:>8} {:>7}",
        "run (median of reps)",
        "Mrec/s",
        "GB/s",
        "CPU s/M",
        "CPU s/GB",
        "Mrec/CPUs",
        "peak RSS",
        "budget",
        "srv CPU"
    );
    for (name, args) in runs {
        let mut rows = Vec::new();
        for _ in 0..reps {
            let v = run_child(&args)?;
            eprintln!("{v}");
            rows.push(v);
        }
        let col = |k: &str| median(rows.iter().filter_map(|r| r[k].as_f64()).collect());
        let budget = if name.starts_with("raw") {
            "-".to_owned()
        } else {
            format!("{:.0} MiB", col("ring_mib") + 16.0)
        };
        println!(
            "{:<34} {:>7.2} {:>6.2} {:>8.3} {:>8.3} {:>9.1} {:>6.1} MiB {:>8} {:>6.0}%",
            name,
            col("records_per_s") / 1e6,
            col("gb_per_s"),
            col("cpu_s_per_m"),
            col("cpu_s_per_gb"),
            1.0 / col("cpu_s_per_m"),
            col("peak_rss_mib"),
            budget,
            100.0 * col("server_cpu_s") / col("seconds"),
        );
    }
    println!(
        "Mrec/s and GB/s are wall clock (GB/s counts record-batch bytes; raw counts socket \
         bytes); CPU is this process's user+sys (server excluded); Mrec/CPUs = records per \
         CPU-second of the consumer; srv CPU = the replay server's CPU share of the run."
    );
    Ok(())
}

// ---------------------------------------------------------------------------------
// Against a real broker
// ---------------------------------------------------------------------------------

/// The send time a latency-producer value starts with: decimal microseconds since
/// the epoch, up to the first non-digit.
fn stamp_us(v: &[u8]) -> Option<i64> {
    let digits = v.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&v[..digits]).ok()?.parse().ok()
}

/// Now, in microseconds since the epoch (the producer's clock: same machine).
fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// p50, p99, p99.9 and max of the samples, as JSON (null when there are none).
fn percentiles(v: &mut [i64]) -> serde_json::Value {
    if v.is_empty() {
        return serde_json::Value::Null;
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    serde_json::json!({"n": v.len(), "p50": at(0.5), "p99": at(0.99), "p999": at(0.999), "max": at(1.0)})
}

fn broker_main(o: &Opts) -> Res<()> {
    let bootstrap = o.str("bootstrap", "127.0.0.1:9092");
    let topic = o.str("topic", "bench");
    let partitions: i32 = o.num("partitions", 4)?;
    let target: u64 = o.num("records", 2_000_000)?;
    let timeout = Duration::from_secs(o.num("timeout", 300)?);
    let mut cfg = FetchConfig::new(&bootstrap);
    cfg.auto_offset_reset = OffsetReset::Earliest;
    cfg.ring_bytes = o.num::<usize>("ring-mib", 64)? << 20;
    cfg.fetch_max_wait_ms = o.num("max-wait-ms", cfg.fetch_max_wait_ms)?;
    cfg.max_partition_fetch_bytes = o.num::<i32>("partition-kib", 1024)? << 10;
    cfg.fetch_max_bytes = o.num::<i32>("fetch-max-mib", 50)? << 20;
    // --latency 1: values are stamped by scripts/latency_producer.py (decimal
    // microseconds since the epoch at the send, on a topic that was empty when the
    // consumers started); the summary then carries the produce-to-handler latency
    // percentiles.
    let latency = o.num::<u8>("latency", 0)? != 0;
    // Records before this many are not sampled (the clients start at different speeds).
    let warmup: u64 = o.num("warmup", 0)?;
    cfg.fetch_min_bytes = o.num("min-bytes", cfg.fetch_min_bytes)?;
    cfg.max_poll_records = o.num("max-poll-records", cfg.max_poll_records)?;
    // --tls-dir DIR: TLS with the test broker's material (scripts/kafka-config.sh):
    // ca.pem as the trusted CA, client.pem and client.key as the client certificate.
    if let Some(dir) = o.0.get("tls-dir") {
        use weir_fetch::tls::{CaSource, ClientCert, Pem, TlsConfig};
        let at = |f: &str| Pem::File(std::path::Path::new(dir).join(f));
        cfg.tls = Some(TlsConfig {
            ca: vec![CaSource::Pem {
                property: "--tls-dir",
                pem: at("ca.pem"),
            }],
            client: Some(ClientCert {
                chain: ("--tls-dir", at("client.pem")),
                key: ("--tls-dir", at("client.key")),
                key_password: None,
            }),
            ..TlsConfig::default()
        });
    }
    let mut c = Consumer::new(cfg)?;
    for p in 0..partitions {
        c.assign(&topic, p, StartAt::Earliest);
    }
    let mut lat_us: Vec<i64> = Vec::new();
    let cpu0 = cpu_self();
    let begin = Instant::now();
    let mut first: Option<Instant> = None;
    let mut last = begin;
    let mut touch = Touch::new(partitions as usize);
    let mut kv_bytes = 0u64;
    while touch.records < target {
        if begin.elapsed() > timeout {
            return Err(format!(
                "timed out after {timeout:?} with {} of {target} records",
                touch.records
            )
            .into());
        }
        let n = c.poll(Duration::from_millis(100), |r| {
            if latency && touch.records >= warmup {
                if let Some(sent) = r.value().and_then(stamp_us) {
                    lat_us.push(now_us() - sent);
                }
            }
            touch.record(r);
            kv_bytes += (r.key().map_or(0, <[u8]>::len) + r.value().map_or(0, <[u8]>::len)) as u64;
        })?;
        if n > 0 {
            last = Instant::now();
            first.get_or_insert(last);
        }
    }
    let cpu1 = cpu_self();
    let m = c.metrics();
    // The first batch's arrival is the start (as consume_rdkafka.py measures).
    let secs = first.map_or(0.0, |f| (last - f).as_secs_f64());
    let out = serde_json::json!({"summary": {
        "client": "weir",
        "records": touch.records,
        "bytes": kv_bytes,
        "seconds": secs,
        "records_per_s": touch.records as f64 / secs,
        "mb_per_s": kv_bytes as f64 / secs / 1e6,
        "cpu_s": (cpu1.user - cpu0.user) + (cpu1.sys - cpu0.sys),
        "peak_rss_mib": status_kib("VmHWM:") as f64 / 1024.0,
        "gaps": touch.gaps,
        "fetch_requests": m.fetch_requests,
        "fetch_latency_us_avg": m.fetch_latency_us_avg,
        "fetch_latency_us_max": m.fetch_latency_us_max,
        "batch_bytes": m.bytes,
        "latency_us": percentiles(&mut lat_us),
    }});
    println!("{out}");
    if touch.gaps != 0 {
        return Err("offset gaps or repeats: the consumer is wrong".into());
    }
    Ok(())
}
