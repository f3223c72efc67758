//! Counters the embedding application (or the `weir` binary) reads. Plain atomics: no
//! exporter lives here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Cumulative counters since the consumer started. Read with [`Metrics::snapshot`].
#[derive(Debug, Default)]
pub struct Metrics {
    /// Records handed to handlers.
    pub records: AtomicU64,
    /// Bytes of the record batches those records came in (compressed size).
    pub bytes: AtomicU64,
    /// Bytes of records received in fetch responses (before filtering).
    pub fetched_bytes: AtomicU64,
    /// Bytes read off sockets.
    pub socket_bytes: AtomicU64,
    /// Fetch requests sent.
    pub fetch_requests: AtomicU64,
    /// Sum of fetch round-trip times, in microseconds.
    pub fetch_latency_us_sum: AtomicU64,
    /// Largest fetch round-trip time, in microseconds.
    pub fetch_latency_us_max: AtomicU64,
    /// Fetch responses timed.
    pub fetch_latency_count: AtomicU64,
    /// Batches dropped as aborted (read_committed).
    pub aborted_batches: AtomicU64,
    /// Batches that failed their CRC or did not decode.
    pub corrupt_batches: AtomicU64,
    /// Times a reader had to wait for ring space (backpressure).
    pub ring_stalls: AtomicU64,
    /// Connections lost.
    pub disconnects: AtomicU64,
    /// Metadata responses applied.
    pub metadata_refreshes: AtomicU64,
    /// Fetch sessions reset after a session error.
    pub session_resets: AtomicU64,
    /// Turns of the reactor loop (one `poll` each): a busy loop shows up here.
    pub reactor_turns: AtomicU64,
}

/// A point-in-time copy of [`Metrics`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// See [`Metrics::records`].
    pub records: u64,
    /// See [`Metrics::bytes`].
    pub bytes: u64,
    /// See [`Metrics::fetched_bytes`].
    pub fetched_bytes: u64,
    /// See [`Metrics::socket_bytes`].
    pub socket_bytes: u64,
    /// See [`Metrics::fetch_requests`].
    pub fetch_requests: u64,
    /// Mean fetch round trip in microseconds (0 before the first).
    pub fetch_latency_us_avg: u64,
    /// See [`Metrics::fetch_latency_us_max`].
    pub fetch_latency_us_max: u64,
    /// See [`Metrics::aborted_batches`].
    pub aborted_batches: u64,
    /// See [`Metrics::corrupt_batches`].
    pub corrupt_batches: u64,
    /// See [`Metrics::ring_stalls`].
    pub ring_stalls: u64,
    /// See [`Metrics::disconnects`].
    pub disconnects: u64,
    /// See [`Metrics::metadata_refreshes`].
    pub metadata_refreshes: u64,
    /// See [`Metrics::session_resets`].
    pub session_resets: u64,
    /// See [`Metrics::reactor_turns`].
    pub reactor_turns: u64,
}

impl Metrics {
    /// Count one fetch round trip.
    pub fn record_fetch_latency(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.fetch_latency_us_sum.fetch_add(us, Ordering::Relaxed);
        self.fetch_latency_count.fetch_add(1, Ordering::Relaxed);
        self.fetch_latency_us_max.fetch_max(us, Ordering::Relaxed);
    }

    /// Copy every counter.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let n = r(&self.fetch_latency_count);
        MetricsSnapshot {
            records: r(&self.records),
            bytes: r(&self.bytes),
            fetched_bytes: r(&self.fetched_bytes),
            socket_bytes: r(&self.socket_bytes),
            fetch_requests: r(&self.fetch_requests),
            fetch_latency_us_avg: r(&self.fetch_latency_us_sum).checked_div(n).unwrap_or(0),
            fetch_latency_us_max: r(&self.fetch_latency_us_max),
            aborted_batches: r(&self.aborted_batches),
            corrupt_batches: r(&self.corrupt_batches),
            ring_stalls: r(&self.ring_stalls),
            disconnects: r(&self.disconnects),
            metadata_refreshes: r(&self.metadata_refreshes),
            session_resets: r(&self.session_resets),
            reactor_turns: r(&self.reactor_turns),
        }
    }
}
