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
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

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
pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
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

impl MetricsServer {
    /// Serves `metrics` at `http://ADDR/metrics` (404 for any other path, 405 for
    /// methods other than GET and HEAD). Port 0 picks a free port; see [`Self::addr`].
    pub fn start(addr: &str, metrics: Arc<Metrics>) -> Result<MetricsServer, MetricsError> {
        let err = |reason: String| MetricsError {
            addr: addr.to_owned(),
            reason,
        };
        let sock: SocketAddr = addr
            .parse()
            .map_err(|_| err("not an IP address and port".to_owned()))?;
        let server = Arc::new(tiny_http::Server::http(sock).map_err(|e| err(e.to_string()))?);
        let bound = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| err("not an IP listener".to_owned()))?;
        let srv = Arc::clone(&server);
        let thread = std::thread::Builder::new()
            .name("weir-metrics".to_owned())
            .spawn(move || serve(&srv, &metrics))
            .map_err(|e| err(e.to_string()))?;
        Ok(MetricsServer {
            server,
            thread: Some(thread),
            addr: bound,
        })
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

fn serve(server: &tiny_http::Server, metrics: &Metrics) {
    for request in server.incoming_requests() {
        let path = request.url().split('?').next().unwrap_or("");
        let response = match (request.method(), path) {
            (tiny_http::Method::Get | tiny_http::Method::Head, "/metrics") => {
                let mut r = tiny_http::Response::from_string(metrics.encode());
                if let Ok(h) = tiny_http::Header::from_bytes("Content-Type", CONTENT_TYPE) {
                    r.add_header(h);
                }
                r.with_status_code(200)
            }
            (tiny_http::Method::Get | tiny_http::Method::Head, _) => {
                tiny_http::Response::from_string("not found: metrics are at /metrics\n")
                    .with_status_code(404)
            }
            _ => tiny_http::Response::from_string("method not allowed\n").with_status_code(405),
        };
        // A client that hung up is not our problem.
        let _ = request.respond(response);
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.unblock();
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
        // The serving thread has ended; tiny_http closes its listener asynchronously.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(addr).is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "server still listening after drop"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
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
