//! Prometheus metrics, served at `/metrics` by `weir consume --metrics-addr ADDR`.
//!
//! The names are the ones the alert rules in `alerts/weir-alerts.yml` use:
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `kafka_consumer_lag{topic,partition}` | gauge | high watermark minus the next offset to consume |
//! | `kafka_consumer_lag_sum` | gauge | the sum of the per-partition lags |
//! | `kafka_consumer_records_consumed_total` | counter | records handed to the output |
//! | `kafka_consumer_bytes_consumed_total` | counter | key + value bytes of those records |
//! | `kafka_consumer_processing_errors_total` | counter | records the output failed to take |
//! | `kafka_consumer_commit_errors_total` | counter | failed offset commits |
//! | `kafka_consumer_rebalance_total` | counter | completed rebalances (group mode) |
//! | `kafka_consumer_fetch_latency_seconds` | histogram | time from sending a fetch to its response |
//!
//! The text is OpenMetrics (`# EOF` at the end), which Prometheus scrapes natively.
//!
//! ## Diagnosis
//! The rules the seed's monitoring section gives, with what to do about each:
//!
//! | symptom | signal | remedies |
//! |---|---|---|
//! | high lag | `kafka_consumer_lag_sum > 10000` for 5 minutes | add consumers to the group (up to the partition count); make processing cheaper; raise `fetch.max.bytes` / `max.partition.fetch.bytes` (within `weir.ring.bytes`); check the downstream system the output feeds |
//! | slow processing | processing latency above 1 s, or `max.poll.interval.ms` exceeded | process partitions in parallel (the library's `Consumer::run_workers`, or more group members for `weir consume`); batch the output; simplify per-record work; raise `max.poll.interval.ms` if the work is legitimately slow |
//! | frequent rebalances | more than 5 in 5 minutes (`rate(kafka_consumer_rebalance_total[10m]) > 0.5`) | raise `session.timeout.ms` and keep `heartbeat.interval.ms` at a third of it or less; raise `max.poll.interval.ms`; speed up processing; use static membership (`group.instance.id`) for rolling restarts; check network stability |

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of per-partition metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

/// weir's metrics. Cheap to update from any thread; share it in an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    lag: Family<PartitionLabels, Gauge>,
    lag_sum: Gauge,
    lags: Mutex<BTreeMap<(String, i32), i64>>,
    /// Records handed to the output.
    pub records_consumed: Counter,
    /// Key and value bytes of those records.
    pub bytes_consumed: Counter,
    /// Records the output failed to take.
    pub processing_errors: Counter,
    /// Failed offset commits.
    pub commit_errors: Counter,
    /// Completed rebalances.
    pub rebalances: Counter,
    fetch_latency: Histogram,
    /// Offset commit round trips, in seconds.
    pub commit_latency: Histogram,
    /// Record timestamp to hand-over, in seconds.
    pub end_to_end_latency: Histogram,
    /// Rebalance durations (first JoinGroup to the assignment), in seconds.
    pub rebalance_duration: Histogram,
    /// Records handed over per poll that returned any.
    pub records_per_poll: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, registered under their Prometheus names.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let lag = Family::<PartitionLabels, Gauge>::default();
        let lag_sum = Gauge::default();
        let records_consumed = Counter::default();
        let bytes_consumed = Counter::default();
        let processing_errors = Counter::default();
        let commit_errors = Counter::default();
        let rebalances = Counter::default();
        // 0.5 ms to about 16 s.
        let fetch_latency = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        let commit_latency = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        // 1 ms to about 9 hours: a consumer catching up reads old records.
        let end_to_end_latency = Histogram::new(exponential_buckets(0.001, 2.0, 25));
        // 10 ms to about 5.5 minutes.
        let rebalance_duration = Histogram::new(exponential_buckets(0.01, 2.0, 16));
        let records_per_poll = Histogram::new(exponential_buckets(1.0, 2.0, 17));
        registry.register(
            "kafka_consumer_lag",
            "High watermark minus the next offset to consume, per partition",
            lag.clone(),
        );
        registry.register(
            "kafka_consumer_lag_sum",
            "Sum of kafka_consumer_lag over all partitions",
            lag_sum.clone(),
        );
        // Counters get the `_total` suffix from the encoder.
        registry.register(
            "kafka_consumer_records_consumed",
            "Records handed to the output",
            records_consumed.clone(),
        );
        registry.register(
            "kafka_consumer_bytes_consumed",
            "Key and value bytes of the records handed to the output",
            bytes_consumed.clone(),
        );
        registry.register(
            "kafka_consumer_processing_errors",
            "Records the output failed to take",
            processing_errors.clone(),
        );
        registry.register(
            "kafka_consumer_commit_errors",
            "Failed offset commits",
            commit_errors.clone(),
        );
        registry.register(
            "kafka_consumer_rebalance",
            "Completed consumer group rebalances",
            rebalances.clone(),
        );
        registry.register(
            "kafka_consumer_fetch_latency_seconds",
            "Time from sending a fetch request to receiving its response",
            fetch_latency.clone(),
        );
        registry.register(
            "kafka_consumer_commit_latency_seconds",
            "Time from sending an offset commit to its answer",
            commit_latency.clone(),
        );
        registry.register(
            "kafka_consumer_end_to_end_latency_seconds",
            "Time from a record's timestamp to its hand-over to the output",
            end_to_end_latency.clone(),
        );
        registry.register(
            "kafka_consumer_rebalance_duration_seconds",
            "Time from a rebalance's first JoinGroup to this member's assignment",
            rebalance_duration.clone(),
        );
        registry.register(
            "kafka_consumer_records_per_poll",
            "Records handed to the output per poll that returned any",
            records_per_poll.clone(),
        );
        Metrics {
            registry,
            lag,
            lag_sum,
            lags: Mutex::new(BTreeMap::new()),
            records_consumed,
            bytes_consumed,
            processing_errors,
            commit_errors,
            rebalances,
            fetch_latency,
            commit_latency,
            end_to_end_latency,
            rebalance_duration,
            records_per_poll,
        }
    }

    /// Sets one partition's lag and updates the sum.
    pub fn set_lag(&self, topic: &str, partition: i32, lag: i64) {
        let lag = lag.max(0);
        self.lag
            .get_or_create(&PartitionLabels {
                topic: topic.to_owned(),
                partition,
            })
            .set(lag);
        let mut lags = self
            .lags
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // The sum moves by the change: re-adding every partition on each call cost
        // O(partitions) per update, with updates for every partition on every poll.
        let old = lags.insert((topic.to_owned(), partition), lag).unwrap_or(0);
        self.lag_sum.inc_by(lag - old);
    }

    /// Forgets a partition's lag (after it was revoked).
    pub fn remove_lag(&self, topic: &str, partition: i32) {
        self.lag.remove(&PartitionLabels {
            topic: topic.to_owned(),
            partition,
        });
        let mut lags = self
            .lags
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(old) = lags.remove(&(topic.to_owned(), partition)) {
            self.lag_sum.dec_by(old);
        }
    }

    /// Counts one record handed to the output.
    pub fn record_consumed(&self, bytes: usize) {
        self.records_consumed.inc();
        self.bytes_consumed.inc_by(bytes as u64);
    }

    /// Observes one fetch round trip.
    pub fn observe_fetch(&self, latency: Duration) {
        self.fetch_latency.observe(latency.as_secs_f64());
    }

    /// The current values in the Prometheus (OpenMetrics) text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail: fmt::Write for String never errors.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// What a `/metrics` endpoint serves: the current values as OpenMetrics text.
pub trait Scrape: Send + Sync {
    /// The text of one scrape.
    fn scrape(&self) -> String;
}

impl Scrape for Metrics {
    fn scrape(&self) -> String {
        with_process_metrics(self.encode())
    }
}

/// The standard process metrics Prometheus users expect from any exporter
/// (`process_resident_memory_bytes`, `process_cpu_seconds_total`,
/// `process_open_fds`, `process_threads`, `process_start_time_seconds`), read from
/// `/proc/self`, inserted before the final `# EOF` of `text`. A value that cannot be
/// read (not Linux) is left out.
pub fn with_process_metrics(mut text: String) -> String {
    let mut extra = String::new();
    let mut gauge = |name: &str, help: &str, kind: &str, value: Option<f64>| {
        if let Some(v) = value {
            let sample = if kind == "counter" {
                format!("{name}_total")
            } else {
                name.to_owned()
            };
            extra.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{sample} {v}\n"
            ));
        }
    };
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    // Fields after the command (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat
        .as_deref()
        .and_then(|s| s.rfind(')').map(|i| &s[i + 2..]))
        .map(|s| s.split_whitespace().collect())
        .unwrap_or_default();
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // SAFETY: sysconf has no memory effects.
    let (tick, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK) as f64,
            libc::sysconf(libc::_SC_PAGESIZE) as f64,
        )
    };
    // stat fields (from state, index 0): utime 11, stime 12, threads 17,
    // starttime 19, rss 21 (pages).
    let cpu = match (num(11), num(12)) {
        (Some(u), Some(s)) if tick > 0.0 => Some((u + s) / tick),
        _ => None,
    };
    gauge(
        "process_cpu_seconds",
        "User and system CPU time spent, in seconds.",
        "counter",
        cpu,
    );
    gauge(
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        "gauge",
        num(21).map(|p| p * page),
    );
    gauge(
        "process_threads",
        "Number of OS threads in the process.",
        "gauge",
        num(17),
    );
    let fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as f64);
    gauge(
        "process_open_fds",
        "Number of open file descriptors.",
        "gauge",
        fds,
    );
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    });
    let start = match (boot, num(19)) {
        (Some(b), Some(st)) if tick > 0.0 => Some(b + st / tick),
        _ => None,
    };
    gauge(
        "process_start_time_seconds",
        "Start time of the process since the Unix epoch, in seconds.",
        "gauge",
        start,
    );
    match text.rfind("# EOF") {
        Some(i) => text.insert_str(i, &extra),
        None => text.push_str(&extra),
    }
    text
}

/// The `/metrics` endpoint could not be started.
#[derive(Debug)]
pub struct MetricsError {
    addr: String,
    reason: String,
}

impl fmt::Display for MetricsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot serve metrics on {}: {}; give --metrics-addr as host:port of a free local port, for example 127.0.0.1:9100",
            self.addr, self.reason
        )
    }
}

impl std::error::Error for MetricsError {}

/// A running `/metrics` HTTP endpoint on its own thread. Dropping it stops it.
///
/// A deliberately small HTTP/1.1 server (std only), bounded in every dimension a
/// client controls, so that nothing on the network can grow weir's memory or
/// threads, or hold up its exit:
///
/// * one thread in all, driving at most [`MAX_CONNS`] non-blocking connections
///   (more are closed on accept; Prometheus scrapes one request every few seconds);
/// * one request per connection, answered with `Connection: close`; anything a
///   client pipelines after it is discarded, and a client that never reads only
///   holds its own connection until its deadline;
/// * a request head of at most [`MAX_HEAD`] bytes (else `431`), and
///   [`CONN_DEADLINE`] in all to send it and take the answer, after which the
///   connection is dropped;
/// * `accept` errors (EMFILE, ...) are logged and retried with a doubling pause up
///   to a second, never the end of the endpoint;
/// * dropping the server stops the thread within one poll interval (50 ms), whatever
///   the clients do.
pub struct MetricsServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    addr: SocketAddr,
}

impl fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsServer")
            .field("addr", &self.addr)
            .finish()
    }
}

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The largest request head (request line and headers) read from a client.
const MAX_HEAD: usize = 8 * 1024;
/// How long one connection may take, from accept to the last byte of the answer.
const CONN_DEADLINE: Duration = Duration::from_secs(2);
/// How often the idle loop looks for connections and at the stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(50);
/// How often open connections are looked at when none made progress.
const CONN_POLL: Duration = Duration::from_millis(5);
/// Connections served at once; more are closed on accept.
const MAX_CONNS: usize = 32;

impl MetricsServer {
    /// Serves `metrics` at `http://ADDR/metrics` (404 for any other path, 405 for
    /// methods other than GET and HEAD). Port 0 picks a free port; see [`Self::addr`].
    pub fn start<M: Scrape + 'static>(
        addr: &str,
        metrics: Arc<M>,
    ) -> Result<MetricsServer, MetricsError> {
        let err = |reason: String| MetricsError {
            addr: addr.to_owned(),
            reason,
        };
        let sock: SocketAddr = addr
            .parse()
            .map_err(|_| err("not an IP address and port".to_owned()))?;
        let listener = TcpListener::bind(sock).map_err(|e| err(e.to_string()))?;
        let bound = listener.local_addr().map_err(|e| err(e.to_string()))?;
        // Non-blocking accept, so the loop notices the stop flag without a wake-up
        // connection.
        listener
            .set_nonblocking(true)
            .map_err(|e| err(e.to_string()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("weir-metrics".to_owned())
            .spawn(move || serve(&listener, &*metrics, &flag))
            .map_err(|e| err(e.to_string()))?;
        Ok(MetricsServer {
            stop,
            thread: Some(thread),
            addr: bound,
        })
    }

    /// The address the endpoint listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

fn serve(listener: &TcpListener, metrics: &dyn Scrape, stop: &AtomicBool) {
    let mut conns: Vec<Conn> = Vec::new();
    let mut accept_pause_until: Option<Instant> = None;
    let mut accept_pause = Duration::from_millis(50);
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let mut progress = false;
        // Accept what is waiting, up to the cap; beyond it, new connections are
        // closed at once (a scraper retries at its next interval).
        while accept_pause_until.is_none_or(|t| t <= now) {
            match listener.accept() {
                Ok((stream, _)) => {
                    accept_pause = Duration::from_millis(50);
                    accept_pause_until = None;
                    progress = true;
                    if conns.len() >= MAX_CONNS || stream.set_nonblocking(true).is_err() {
                        drop(stream);
                        continue;
                    }
                    conns.push(Conn {
                        stream,
                        deadline: now + CONN_DEADLINE,
                        head: Vec::new(),
                        out: None,
                        sent: 0,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and the like: keep serving the connections we have and
                    // try accepting again later.
                    log::warn!(
                        "metrics endpoint: accept failed ({e}); retrying in {} ms",
                        accept_pause.as_millis()
                    );
                    accept_pause_until = Some(now + accept_pause);
                    accept_pause = (accept_pause * 2).min(Duration::from_secs(1));
                    break;
                }
            }
        }
        conns.retain_mut(|c| match c.step(metrics, now) {
            Step::Again(moved) => {
                progress |= moved;
                true
            }
            Step::Done => {
                progress = true;
                false
            }
        });
        if !progress {
            std::thread::sleep(if conns.is_empty() {
                ACCEPT_POLL
            } else {
                CONN_POLL
            });
        }
    }
}

/// One client connection of the metrics endpoint (non-blocking).
struct Conn {
    stream: TcpStream,
    deadline: Instant,
    /// The request head read so far.
    head: Vec<u8>,
    /// The answer, once the head is complete.
    out: Option<Vec<u8>>,
    sent: usize,
}

enum Step {
    /// Keep the connection; `true` when bytes moved.
    Again(bool),
    /// Close it (answered, failed, or out of time).
    Done,
}

impl Conn {
    fn step(&mut self, metrics: &dyn Scrape, now: Instant) -> Step {
        if now >= self.deadline {
            return Step::Done;
        }
        let mut moved = false;
        if self.out.is_none() {
            let mut buf = [0u8; 1024];
            loop {
                let want = buf.len().min(MAX_HEAD - self.head.len());
                match self.stream.read(&mut buf[..want]) {
                    Ok(0) => return Step::Done,
                    Ok(n) => {
                        moved = true;
                        self.head.extend_from_slice(&buf[..n]);
                        if self.head.windows(4).any(|w| w == b"\r\n\r\n") {
                            self.out = Some(respond(Some(&self.head), metrics));
                            break;
                        }
                        if self.head.len() >= MAX_HEAD {
                            self.out = Some(respond(None, metrics));
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Again(moved),
                    Err(_) => return Step::Done,
                }
            }
        }
        let Some(out) = &self.out else {
            return Step::Again(moved);
        };
        while self.sent < out.len() {
            match self.stream.write(&out[self.sent..]) {
                Ok(0) => return Step::Done,
                Ok(n) => {
                    moved = true;
                    self.sent += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Again(moved),
                Err(_) => return Step::Done,
            }
        }
        // Answered. Whatever else the client sent (pipelined requests) is not read;
        // shutting the write side first keeps the answer from being lost to a reset.
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        Step::Done
    }
}

/// The whole answer to a request head (`None`: the head was too large).
fn respond(head: Option<&[u8]>, metrics: &dyn Scrape) -> Vec<u8> {
    let (status, body, is_head) = match head {
        None => (
            "431 Request Header Fields Too Large",
            String::from("request head too large\n"),
            false,
        ),
        Some(head) => {
            let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
            let mut parts = line.split(|b| *b == b' ');
            let method = parts.next().unwrap_or_default();
            let target = parts.next().unwrap_or_default();
            let path = target.split(|b| *b == b'?').next().unwrap_or_default();
            match (method, path) {
                (b"GET" | b"HEAD", b"/metrics") => ("200 OK", metrics.scrape(), method == b"HEAD"),
                (b"GET" | b"HEAD", _) => (
                    "404 Not Found",
                    String::from("not found: metrics are at /metrics\n"),
                    method == b"HEAD",
                ),
                _ => (
                    "405 Method Not Allowed",
                    String::from("method not allowed\n"),
                    false,
                ),
            }
        }
    };
    let content_type = if status.starts_with("200") {
        CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !is_head {
        out.push_str(&body);
    }
    out.into_bytes()
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn lag_sum_follows_updates_removals_and_negative_lags() {
        let m = Metrics::new();
        let sum = |m: &Metrics| {
            m.encode().lines().find_map(|l| {
                l.strip_prefix("kafka_consumer_lag_sum ")?
                    .parse::<i64>()
                    .ok()
            })
        };
        m.set_lag("a", 0, 10);
        m.set_lag("a", 1, 5);
        m.set_lag("b", 0, 1);
        assert_eq!(sum(&m), Some(16));
        m.set_lag("a", 0, 3);
        assert_eq!(sum(&m), Some(9));
        m.set_lag("a", 1, -4); // counted as 0
        assert_eq!(sum(&m), Some(4));
        m.remove_lag("a", 0);
        m.remove_lag("a", 0); // twice: no change
        assert_eq!(sum(&m), Some(1));
        m.remove_lag("zzz", 9);
        assert_eq!(sum(&m), Some(1));
    }

    #[test]
    fn encodes_the_alert_names() {
        let m = Metrics::new();
        m.set_lag("logs", 0, 7000);
        m.set_lag("logs", 1, 5000);
        m.set_lag("logs", 0, 6000);
        m.processing_errors.inc();
        m.commit_errors.inc();
        m.rebalances.inc();
        m.record_consumed(100);
        m.observe_fetch(Duration::from_millis(3));
        let text = m.encode();
        for line in [
            "kafka_consumer_lag{topic=\"logs\",partition=\"0\"} 6000",
            "kafka_consumer_lag{topic=\"logs\",partition=\"1\"} 5000",
            "kafka_consumer_lag_sum 11000",
            "kafka_consumer_processing_errors_total 1",
            "kafka_consumer_commit_errors_total 1",
            "kafka_consumer_rebalance_total 1",
            "kafka_consumer_records_consumed_total 1",
            "kafka_consumer_bytes_consumed_total 100",
            "kafka_consumer_fetch_latency_seconds_count 1",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
        m.remove_lag("logs", 0);
        assert!(
            m.encode()
                .lines()
                .any(|l| l == "kafka_consumer_lag_sum 5000")
        );
    }

    #[test]
    fn serves_metrics_over_http() {
        let m = Arc::new(Metrics::new());
        m.rebalances.inc();
        let server = MetricsServer::start("127.0.0.1:0", Arc::clone(&m)).unwrap();
        let addr = server.addr();
        let ok = get(addr, "/metrics");
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.contains("application/openmetrics-text"), "{ok}");
        assert!(ok.contains("kafka_consumer_rebalance_total 1"), "{ok}");
        m.rebalances.inc();
        assert!(get(addr, "/metrics").contains("kafka_consumer_rebalance_total 2"));
        assert!(get(addr, "/").starts_with("HTTP/1.1 404"));
        assert!(get(addr, "/metricsx").starts_with("HTTP/1.1 404"));
        drop(server);
        // The serving thread has ended and closed its listener.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(addr).is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "server still listening after drop"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn threads() -> usize {
        fs_count("/proc/self/task")
    }

    fn fs_count(dir: &str) -> usize {
        std::fs::read_dir(dir).map_or(0, |d| d.count())
    }

    /// 200 connections that send nothing: no thread per connection, and a scrape
    /// gets through once the idle ones' deadline passed.
    #[test]
    fn idle_connections_neither_add_threads_nor_block_scrapes_for_long() {
        let server = MetricsServer::start("127.0.0.1:0", Arc::new(Metrics::new())).unwrap();
        let addr = server.addr();
        let before = threads();
        let idle: Vec<TcpStream> = (0..200)
            .filter_map(|_| TcpStream::connect(addr).ok())
            .collect();
        assert!(idle.len() > 100);
        std::thread::sleep(Duration::from_millis(300));
        let grown = threads().saturating_sub(before);
        assert!(
            grown < 20,
            "{grown} threads more for {} idle connections",
            idle.len()
        );
        let end = std::time::Instant::now() + Duration::from_secs(6);
        loop {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 200") {
                break;
            }
            assert!(std::time::Instant::now() < end, "no scrape got through");
            std::thread::sleep(Duration::from_millis(100));
        }
        drop(idle);
    }

    #[test]
    fn an_endless_request_head_is_cut_off_with_431() {
        let server = MetricsServer::start("127.0.0.1:0", Arc::new(Metrics::new())).unwrap();
        let mut s = TcpStream::connect(server.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nX-Long: ");
        let _ = s.write_all(&[b'a'; 20 * 1024]);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let out = String::from_utf8_lossy(&out);
        assert!(out.starts_with("HTTP/1.1 431"), "{out:?}");
    }

    /// A client pipelining requests and never reading the answers neither keeps the
    /// endpoint from serving others nor holds up its shutdown.
    #[test]
    fn a_client_that_never_reads_holds_up_neither_scrapes_nor_shutdown() {
        let m = Arc::new(Metrics::new());
        for p in 0..2000 {
            m.set_lag("a-long-topic-name-to-make-the-answer-big", p, 1);
        }
        let server = MetricsServer::start("127.0.0.1:0", m).unwrap();
        let addr = server.addr();
        let mut hog = TcpStream::connect(addr).unwrap();
        hog.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        for _ in 0..2000 {
            if hog
                .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                .is_err()
            {
                break;
            }
        }
        assert!(get(addr, "/metrics").starts_with("HTTP/1.1 200"));
        let t = std::time::Instant::now();
        drop(server);
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        drop(hog);
    }

    #[test]
    fn bad_address_says_what_to_do() {
        let e = MetricsServer::start("localhost", Arc::new(Metrics::new()))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "cannot serve metrics on localhost: not an IP address and port; give --metrics-addr"
            ),
            "{e}"
        );
    }
}
