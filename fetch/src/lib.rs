//! weir-fetch: the synchronous `mio` reactor, broker connections, the receive ring and
//! the pinned partition workers.
//!
//! # The path of a record
//!
//! ```text
//! socket --read once--> ring (ring.rs) -> frame (conn.rs) -> Fetch decoded in place
//!   (weir-protocol) -> per-partition Chunk = view into the ring (reactor.rs)
//!   -> CRC32C, read_committed filter, decompression into a per-consumer or per-worker
//!      scratch (process.rs) -> your handler borrows each record
//! ```
//!
//! Uncompressed records are never copied after the socket read; compressed ones are
//! copied once, by the decompressor. A ring region is reused only after every view
//! into it is gone; when the ring is full the reactor stops reading and TCP pushes
//! back on the broker, so memory is `weir.ring.bytes` plus small fixed overheads: the
//! per-partition and per-connection bookkeeping, and one decompression scratch per
//! worker (one per consumer in poll mode) that grows to the largest decompressed
//! batch seen (capped by `weir.max.decompressed.batch.bytes`, default 32 MiB).
//!
//! # Files
//!
//! | file | what |
//! |---|---|
//! | `ring.rs` | the receive ring: one contiguous region per frame, FIFO reuse, release on last drop |
//! | `conn.rs` | one broker connection: nonblocking IO, write queue, in-flight table, deadlines, backoff |
//! | `engine/` | the fetch engine, sans-IO: handshake, metadata, offsets, fetch sessions, error policy, chunks, side connections; unit tests on a virtual clock |
//! | `partition.rs`, `session.rs`, `meta.rs` | one partition's fetch state; KIP-227 sessions; the metadata refresh schedule |
//! | `reactor.rs` | the mio driver of the engine: poll, sockets, DNS, the rings |
//! | `resolve.rs` | host name lookups off the polling thread |
//! | `process.rs` | a partition's chunk to records: position skipping, CRC, read_committed, handler |
//! | `workers.rs` | pinned worker threads with fixed partition routing; the worker loop of `run_workers` |
//! | `side.rs` | the request service over side connections (group member, admin, discovery) |
//! | `config.rs`, `metrics.rs` | Kafka-named settings; counters |
//!
//! # Non-obvious
//!
//! * The fetch offset runs ahead of the position: the engine walks batch headers to
//!   send the next fetch at once, while records are still being handled.
//! * Every seek, pause and corrupt batch bumps the partition's generation; chunks
//!   fetched before it are dropped unprocessed, also those already queued to a worker.
//! * Pausing drops buffered data (it would pin its ring region and, regions being
//!   reused in order, stall every other partition); resuming fetches it again.
//! * A bootstrap connection is adopted as the node with the same address, so a
//!   one-broker cluster uses one fetch connection.
//!
//! # Two ways to consume
//!
//! * [`Consumer::poll`]: on the caller's thread, no threads at all. The reactor runs
//!   inside `poll` for at most the timeout; records are lent to the closure.
//! * [`Consumer::run_workers`]: N worker threads (pinned to cores), each owning a
//!   fixed set of partitions, so per-partition order holds; the reactor runs on the
//!   calling thread until the stop flag is set.
//!
//! ```no_run
//! use std::time::Duration;
//! use weir_fetch::{Consumer, FetchConfig, StartAt};
//!
//! let mut c = Consumer::new(FetchConfig::new("localhost:9092"))?;
//! c.assign("events", 0, StartAt::Earliest);
//! loop {
//!     c.poll(Duration::from_millis(100), |rec| {
//!         println!("{}-{}@{}: {:?}", rec.topic, rec.partition, rec.offset(), rec.value());
//!     })?;
//! }
//! # Ok::<(), weir_fetch::FetchError>(())
//! ```
//!
//! A record that must outlive the closure is copied explicitly with
//! [`ConsumerRecord::to_owned`].
//!
//! # What this crate does not do
//!
//! No consumer groups (the coordinator crate plugs in through a separate connection),
//! no TLS yet (SASL PLAIN and SCRAM over plaintext are there: `FetchConfig::sasl`), no
//! async runtime, no hidden threads in poll mode.

pub mod config;
pub mod conn;
mod engine;
mod error;
mod meta;
pub mod metrics;
mod partition;
pub mod process;
pub mod reactor;
pub mod resolve;
pub mod ring;
mod session;
pub mod side;
pub mod tls;
pub mod workers;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use weir_protocol::compression::Decompressor;

pub use config::{FetchConfig, IsolationLevel, OffsetReset};
pub use metrics::{Metrics, MetricsSnapshot};
pub use process::{
    Chunk, ChunkError, ChunkOutcome, ConsumerRecord, OwnedRecord, process_chunk,
    process_chunk_limited,
};
pub use reactor::{FetchError, PartState, Reactor, SideEvent, SideId, StartAt};
pub use resolve::Resolver;
pub use weir_protocol::record::{Header, Record};

/// A consumer of manually assigned partitions. See the crate docs.
#[derive(Debug)]
pub struct Consumer {
    reactor: Reactor,
    scratch: Decompressor,
    warnings: Vec<String>,
    /// Chunks that `max.poll.records` cut, by partition index: the chunk's generation
    /// and fetch offset (which chunk) and the first record not handed out yet. Only
    /// a partition's first queued chunk can have been cut.
    resume: HashMap<usize, (u64, i64, i64)>,
}

impl Consumer {
    /// A consumer for `cfg` (validated here; nothing connects until the first poll).
    pub fn new(cfg: FetchConfig) -> Result<Self, FetchError> {
        let limit = cfg.max_decompressed_batch_bytes;
        Ok(Self {
            reactor: Reactor::new(cfg)?,
            scratch: Decompressor::with_limit(limit),
            warnings: Vec::new(),
            resume: HashMap::new(),
        })
    }

    /// The reactor, for callers that drive it directly.
    pub fn reactor(&mut self) -> &mut Reactor {
        &mut self.reactor
    }

    /// Read `topic`/`partition` starting at `start`. Assigning an assigned partition
    /// seeks it.
    pub fn assign(&mut self, topic: &str, partition: i32, start: StartAt) {
        self.reactor.assign(topic, partition, start);
    }

    /// Stop reading a partition; fetched data for it is dropped. Returns its last
    /// position (the offset to commit), or an error if it was not assigned.
    pub fn unassign(&mut self, topic: &str, partition: i32) -> Result<Option<i64>, FetchError> {
        let i = self.idx(topic, partition)?;
        let pos = self.reactor.partitions().get(i).and_then(|p| p.position);
        self.reactor.unassign(topic, partition);
        Ok(pos)
    }

    fn idx(&self, topic: &str, partition: i32) -> Result<usize, FetchError> {
        self.reactor.index_of(topic, partition).ok_or_else(|| {
            FetchError::Config(format!(
                "{topic}-{partition} is not assigned to this consumer: assign it first"
            ))
        })
    }

    /// Move a partition to `start`; records already fetched for it are dropped.
    pub fn seek(&mut self, topic: &str, partition: i32, start: StartAt) -> Result<(), FetchError> {
        let i = self.idx(topic, partition)?;
        self.reactor.seek(i, start);
        Ok(())
    }

    /// Stop fetching and delivering a partition. Records fetched for it but not yet
    /// delivered are dropped (their ring space is freed at once); [`resume`](Self::resume)
    /// fetches them again from the position, so nothing is skipped.
    pub fn pause(&mut self, topic: &str, partition: i32) -> Result<(), FetchError> {
        let i = self.idx(topic, partition)?;
        self.reactor.set_paused(i, true);
        Ok(())
    }

    /// Undo [`pause`](Self::pause) (also resumes a partition paused by an error).
    pub fn resume(&mut self, topic: &str, partition: i32) -> Result<(), FetchError> {
        let i = self.idx(topic, partition)?;
        self.reactor.set_paused(i, false);
        Ok(())
    }

    fn part(&self, topic: &str, partition: i32) -> Option<&PartState> {
        let i = self.reactor.index_of(topic, partition)?;
        self.reactor.partitions().get(i)
    }

    /// The offset of the next record the handler will see (`None` while the start
    /// offset is being looked up).
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        self.part(topic, partition)?.position
    }

    /// The high watermark from the latest fetch response.
    pub fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        let hw = self.part(topic, partition)?.high_watermark;
        (hw >= 0).then_some(hw)
    }

    /// Records left to read: end of log (HW, or LSO under read_committed) minus the
    /// position.
    pub fn lag(&self, topic: &str, partition: i32) -> Option<i64> {
        self.part(topic, partition)?
            .lag(self.reactor.config().isolation_level)
    }

    /// Warnings since the last call (a worker that could not be pinned to its core).
    /// Nothing is printed by this crate; log these as you see fit.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Counters since start.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.reactor.metrics().snapshot()
    }

    /// Shared counters, for a metrics thread.
    pub fn metrics_handle(&self) -> Arc<Metrics> {
        self.reactor.metrics()
    }

    /// Run the reactor on this thread for at most `timeout`, then hand the fetched
    /// records of unpaused partitions to `handler`, in order per partition, at most
    /// `max.poll.records` ([`FetchConfig::max_poll_records`]) of them: the rest stay
    /// queued for the next call (a batch cut in the middle is walked, and
    /// decompressed, again from the first record not handed out). Returns how many
    /// records were delivered; returns early as soon as some are.
    ///
    /// Errors (an out-of-range offset with `auto.offset.reset=none`, a corrupt batch,
    /// a broker error retrying cannot fix) are returned one per call; the partition
    /// concerned is paused and the others keep going.
    pub fn poll<F>(&mut self, timeout: Duration, mut handler: F) -> Result<usize, FetchError>
    where
        F: FnMut(&ConsumerRecord<'_>),
    {
        let start = Instant::now();
        let deadline = start
            .checked_add(timeout)
            .unwrap_or(start + Duration::from_secs(86_400 * 365));
        // At least one reactor turn per call, so `poll(Duration::ZERO)` makes
        // progress too.
        let mut turned = false;
        loop {
            if let Some(e) = self.reactor.pop_error() {
                return Err(e);
            }
            if self.deliverable() {
                break;
            }
            let now = Instant::now();
            if turned && now >= deadline {
                return Ok(0);
            }
            self.reactor
                .run_once(deadline.saturating_duration_since(now))?;
            turned = true;
        }
        let limit = self.reactor.config().max_poll_records.max(1);
        let chunks: Vec<Chunk> = self.reactor.take_chunks().collect();
        let mut delivered = 0usize;
        let mut held = Vec::new();
        for chunk in chunks {
            let paused = self
                .reactor
                .partitions()
                .get(chunk.part_idx)
                .is_none_or(|p| p.paused);
            if paused || delivered >= limit {
                held.push(chunk);
                continue;
            }
            // max.poll.records: a chunk cut by an earlier poll resumes at the first
            // record it did not hand out.
            let from = match self.resume.remove(&chunk.part_idx) {
                Some((g, f, at)) if g == chunk.generation && f == chunk.fetch_offset => at,
                _ => chunk.fetch_offset,
            };
            let budget = (limit - delivered) as u64;
            let res = process_chunk_limited(&chunk, &mut self.scratch, from, budget, &mut handler);
            delivered += match &res {
                Ok(o) => o.records as usize,
                Err(e) => e.partial.records as usize,
            };
            let cut_at = match &res {
                Ok(o) if o.cut => Some(o.next_offset),
                _ => None,
            };
            // A cut chunk's outcome moves the position to its first record not handed
            // out, so commits and lag follow what was delivered.
            self.reactor
                .on_processed(chunk.part_idx, chunk.generation, res);
            if let Some(at) = cut_at {
                self.resume
                    .insert(chunk.part_idx, (chunk.generation, chunk.fetch_offset, at));
                held.push(chunk);
            }
        }
        self.reactor.requeue(held);
        Ok(delivered)
    }

    fn deliverable(&self) -> bool {
        self.reactor.has_deliverable()
    }

    /// Consume with `workers` threads until `stop` is set or an error occurs.
    ///
    /// `make(i)` builds worker `i`'s handler; partitions are spread over workers by
    /// assignment order and never move, so each partition's records are handled in
    /// order by one thread. Workers are pinned to cores when `pin` is set (a refusal
    /// is a warning, see [`workers::pin_current_thread`]). On return every chunk
    /// handed to a worker has been processed and positions are up to date.
    pub fn run_workers<M, H>(
        &mut self,
        workers: usize,
        pin: bool,
        mut make: M,
        stop: &AtomicBool,
    ) -> Result<(), FetchError>
    where
        M: FnMut(usize) -> H,
        H: FnMut(&ConsumerRecord<'_>) + Send + 'static,
    {
        let pool = workers::ChunkWorkers::spawn(&mut self.reactor, workers, pin, &mut make)
            .map_err(FetchError::Io)?;
        let mut result = Ok(());
        while !stop.load(Ordering::Acquire) {
            if let Err(e) = self.reactor.run_once(Duration::from_millis(100)) {
                result = Err(e);
                break;
            }
            for (i, g, r) in pool.progress() {
                self.reactor.on_processed(i, g, r);
            }
            if let Some(e) = self.reactor.pop_error() {
                result = Err(e);
                break;
            }
            if pool.dispatch(&mut self.reactor, |_| {}).is_err() {
                result = Err(FetchError::Config(
                    "a worker's handler panicked; its partitions stopped".into(),
                ));
                break;
            }
        }
        let (warnings, progress) = pool.shutdown();
        self.warnings.extend(warnings);
        for (i, g, r) in progress {
            self.reactor.on_processed(i, g, r);
        }
        result
    }
}
