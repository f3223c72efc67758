//! The one consume pipeline of `weir consume`: a record [`Source`] (manual assignment
//! in [`crate::consume`], a consumer group in [`crate::consume_group`]) feeding one
//! output [`Stage`] (the [`Formatter`], stdout or the [`Sink`], metrics, the `-c`
//! count), driven by one loop, [`drive`], that also owns the progress line, the fetch
//! latency histogram and the `-e` / `-c` / signal exits.
//!
//! The stage is shared (`Arc<Mutex<Stage>>`) because a group's rebalance listener
//! flushes it in the middle of a poll; the manual source locks it once per poll, the
//! group source once per record (the listener runs between records).
//!
//! Commit gating is the source's business: the stage says when everything written is
//! visible (stdout flushed) or durable (a sink checkpoint), and the group source
//! commits only then.

use std::collections::BTreeSet;
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use weir_fetch::ConsumerRecord;

use crate::cli::{CliError, ConsumePlan};
use crate::format::{Formatter, RecordView};
use crate::metrics::{Metrics, MetricsServer};
use crate::sink::{Sink, SinkConfig};

/// What a run did, for the summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Records written.
    pub records: u64,
    /// Key and value bytes of those records.
    pub bytes: u64,
    /// Partitions consumed.
    pub partitions: usize,
    /// Wall time.
    pub elapsed: Duration,
    /// Why the run ended.
    pub reason: StopReason,
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StopReason {
    /// `-e`: every partition was read to its end.
    #[default]
    EndOfPartitions,
    /// `-c`: the count was reached.
    Count,
    /// SIGINT or SIGTERM.
    Signal,
    /// The reader of stdout went away.
    BrokenPipe,
    /// `-o e@TIMESTAMP`: every partition reached a record at or after the time.
    StopTimestamp,
}

impl Summary {
    /// The one-line summary printed at exit.
    pub fn line(&self) -> String {
        let why = match self.reason {
            StopReason::EndOfPartitions => "reached the end of every partition",
            StopReason::Count => "reached the -c count",
            StopReason::Signal => "stopped by signal",
            StopReason::BrokenPipe => "output closed",
            StopReason::StopTimestamp => "reached the -o e@ timestamp on every partition",
        };
        format!(
            "weir: {} records ({} bytes) from {} partition(s) in {:.1}s; {why}",
            self.records,
            self.bytes,
            self.partitions,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Why the output stopped taking records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Halt {
    /// The reader of stdout went away: the run ends, without an error.
    OutputClosed,
    /// A write, flush or checkpoint failed.
    Failed(CliError),
}

impl From<CliError> for Halt {
    fn from(e: CliError) -> Self {
        Halt::Failed(e)
    }
}

fn stdout_err(e: io::Error) -> Halt {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Halt::OutputClosed
    } else {
        Halt::Failed(CliError::runtime(format!("cannot write to stdout: {e}")))
    }
}

fn sink_err(e: impl std::fmt::Display) -> Halt {
    Halt::Failed(CliError::runtime(e.to_string()))
}

/// Where records go.
enum Output {
    Stdout(io::BufWriter<io::Stdout>),
    /// `None` once closed.
    Sink(Option<Sink>),
}

/// What [`Stage::deliver`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// Written (and counted).
    Written,
    /// Already in the sink's files: not written again, not counted, and as safe to
    /// commit as a written one.
    AlreadyInSink,
    /// Not written: past `-c`, or the output has failed. Never committable.
    Refused,
}

/// The output stage: formats each record, writes it to stdout or the sink, counts it.
pub struct Stage {
    out: Output,
    formatter: Formatter,
    metrics: Arc<Metrics>,
    count: Option<u64>,
    records: u64,
    bytes: u64,
    halt: Option<Halt>,
    /// `-u`: flush stdout after every record.
    unbuffered: bool,
    /// `-o e@TIMESTAMP`: records at or after it are not written.
    stop_at: Option<i64>,
    /// Partitions that reached `stop_at`: nothing more of them is written.
    stopped: BTreeSet<(String, i32)>,
    /// The wall clock (ms since the epoch) read once per poll, for the end-to-end
    /// latency of the records it hands over.
    wall_ms: i64,
    /// Partitions of which `-c` refused a record: their position is past records that
    /// were never written, so the sink must not be advanced to it (a restart resumes at
    /// the sink's position and would never write them).
    cut: BTreeSet<(String, i32)>,
}

impl Stage {
    /// Opens the output of `plan`: the sink (recovering what a previous run left) or
    /// stdout.
    pub fn open(plan: &ConsumePlan, metrics: Arc<Metrics>) -> Result<Self, CliError> {
        let out = match &plan.sink {
            Some(dir) => Output::Sink(Some(
                Sink::open(SinkConfig::from_config(dir.clone(), &plan.config))
                    .map_err(|e| CliError::runtime(e.to_string()))?,
            )),
            None => Output::Stdout(io::BufWriter::with_capacity(256 * 1024, io::stdout())),
        };
        Ok(Stage {
            out,
            formatter: Formatter::new(plan.style.clone()),
            metrics,
            count: plan.count,
            records: 0,
            bytes: 0,
            halt: None,
            unbuffered: plan.unbuffered,
            stop_at: plan.stop_at,
            stopped: BTreeSet::new(),
            wall_ms: 0,
            cut: BTreeSet::new(),
        })
    }

    /// Whether `-c` is reached.
    pub fn count_reached(&self) -> bool {
        self.count.is_some_and(|c| self.records >= c)
    }

    /// Formats and writes one record (unless `-c` is reached or the output failed).
    pub fn deliver(&mut self, rec: &ConsumerRecord<'_>, now: Instant) -> Delivered {
        if let Some(stop) = self.stop_at {
            let key = (rec.topic.to_owned(), rec.partition);
            if rec.timestamp() >= stop || self.stopped.contains(&key) {
                // kcat's e@: the first record at or after the time ends the
                // partition; later ones (even older-stamped) are not written
                // either, and the sink is not advanced past them.
                self.cut.insert(key.clone());
                self.stopped.insert(key);
                return Delivered::Refused;
            }
        }
        if self.count_reached() {
            if !self
                .cut
                .iter()
                .any(|(t, p)| *p == rec.partition && t == rec.topic)
            {
                self.cut.insert((rec.topic.to_owned(), rec.partition));
            }
            return Delivered::Refused;
        }
        if self.halt.is_some() {
            return Delivered::Refused;
        }
        let headers = rec
            .record
            .headers()
            .filter_map(Result::ok)
            .map(|h| (h.key, h.value));
        let view = RecordView {
            topic: rec.topic,
            partition: rec.partition,
            offset: rec.offset(),
            timestamp_type: rec.timestamp_type.into(),
            timestamp: rec.timestamp(),
            broker: rec.broker,
            key: rec.key(),
            value: rec.value(),
            headers,
        };
        let bytes = self.formatter.format(&view);
        let written = match &mut self.out {
            Output::Sink(Some(s)) => {
                match s.write(rec.topic, rec.partition, rec.offset(), bytes, now) {
                    Ok(true) => Ok(()),
                    Ok(false) => return Delivered::AlreadyInSink,
                    Err(e) => Err(sink_err(e)),
                }
            }
            Output::Sink(None) => Err(Halt::Failed(CliError::runtime("the sink is closed"))),
            Output::Stdout(w) => {
                let r = w.write_all(bytes);
                if self.unbuffered {
                    r.and_then(|()| w.flush()).map_err(stdout_err)
                } else {
                    r.map_err(stdout_err)
                }
            }
        };
        match written {
            Ok(()) => {
                let n = rec.key().map_or(0, <[u8]>::len) + rec.value().map_or(0, <[u8]>::len);
                let ts = rec.timestamp();
                if ts > 0 && self.wall_ms > 0 {
                    self.metrics
                        .end_to_end_latency
                        .observe((self.wall_ms - ts).max(0) as f64 / 1000.0);
                }
                self.records += 1;
                self.bytes += n as u64;
                self.metrics.record_consumed(n);
                Delivered::Written
            }
            Err(h) => {
                self.metrics.processing_errors.inc();
                self.halt = Some(h);
                Delivered::Refused
            }
        }
    }

    /// How many partitions reached `-o e@TIMESTAMP`.
    pub fn stopped_partitions(&self) -> usize {
        self.stopped.len()
    }

    /// Reads the wall clock for the records of the next poll.
    pub fn begin_poll(&mut self) {
        self.wall_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
    }

    /// The failure that stopped the output, if any.
    pub fn halt(&self) -> Option<&Halt> {
        self.halt.as_ref()
    }

    /// Makes everything written so far visible (stdout) or durable (a sink
    /// checkpoint).
    pub fn flush(&mut self) -> Result<(), Halt> {
        match &mut self.out {
            Output::Stdout(w) => w.flush().map_err(stdout_err),
            Output::Sink(Some(s)) => s.checkpoint().map_err(sink_err),
            Output::Sink(None) => Ok(()),
        }
    }

    /// The periodic work after a poll: stdout is flushed; the sink rolls segments and
    /// checkpoints on its own schedule. `Ok(true)` when a sink checkpoint just made
    /// every record written so far durable.
    pub fn settle(&mut self, now: Instant) -> Result<bool, Halt> {
        match &mut self.out {
            Output::Stdout(w) => w.flush().map(|()| false).map_err(stdout_err),
            Output::Sink(Some(s)) => s.poll(now).map_err(sink_err),
            Output::Sink(None) => Ok(false),
        }
    }

    /// Whether records go to stdout (not a sink).
    pub fn to_stdout(&self) -> bool {
        matches!(self.out, Output::Stdout(_))
    }

    /// The sink's position for each partition it holds (empty for stdout).
    pub fn resume_positions(&self) -> std::collections::BTreeMap<(String, i32), i64> {
        match &self.out {
            Output::Sink(Some(s)) => s.resume_positions(),
            _ => Default::default(),
        }
    }

    /// Moves the sink's position of a partition up to the fetch position `next`
    /// (offsets stepped over, such as control batches or compacted records, need no
    /// re-fetch), unless `-c` refused records of it: those are for the next run.
    pub fn advance(&mut self, topic: &str, partition: i32, next: i64) {
        if let Output::Sink(Some(s)) = &mut self.out
            && !self.cut.iter().any(|(t, p)| *p == partition && t == topic)
        {
            s.advance(topic, partition, next);
        }
    }

    /// Ends the output: the sink is checkpointed and closed; stdout gets a final
    /// flush (a reader that went away is its choice, not an error).
    pub fn close(&mut self) -> Result<(), CliError> {
        match &mut self.out {
            Output::Sink(s) => match s.take() {
                Some(s) => s.close().map_err(|e| CliError::runtime(e.to_string())),
                None => Ok(()),
            },
            Output::Stdout(w) => match w.flush().map_err(stdout_err) {
                Ok(()) | Err(Halt::OutputClosed) => Ok(()),
                Err(Halt::Failed(e)) => Err(e),
            },
        }
    }
}

/// The stage as the source and the rebalance listener share it.
pub type SharedStage = Arc<Mutex<Stage>>;

/// Locks the stage. A panic while holding the lock leaves plain data (a writer, a sink
/// whose on-disk state recovers on open); carry on with it.
pub fn lock(stage: &Mutex<Stage>) -> MutexGuard<'_, Stage> {
    stage
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a source reports after each poll.
#[derive(Debug, Clone, Copy, Default)]
pub struct Status {
    /// Every partition consumed is read to its end (for `-e`).
    pub all_at_end: bool,
    /// The summed lag of the partitions consumed now.
    pub lag: i64,
    /// Partitions consumed now.
    pub partitions: usize,
    /// Partitions consumed at any time during the run.
    pub seen: usize,
}

/// Where records come from: manual assignment or a consumer group.
pub trait Source {
    /// The progress line's first words.
    fn starting(&self) -> &'static str;
    /// Hands records to the stage for up to `timeout`. An error ends the run.
    fn poll(&mut self, stage: &SharedStage, timeout: Duration) -> Result<(), CliError>;
    /// The source's bookkeeping after a poll (seeks, lag, the sink's positions).
    fn after_poll(&mut self, stage: &mut Stage) -> Result<Status, CliError>;
    /// The stage has settled: `checkpointed` when a sink checkpoint just made
    /// everything written durable; with stdout everything written is flushed.
    fn settled(&mut self, _stdout: bool, _checkpointed: bool, _now: Instant) {}
    /// The fetch engine's counters (for the fetch latency histogram).
    fn fetch_metrics(&self) -> Arc<weir_fetch::metrics::Metrics>;
    /// A graceful end (`-e`, `-c`, a signal, a closed stdout): the source's last
    /// commit and leave, before the stage is closed.
    fn finish(&mut self, _reason: StopReason, _stage: &SharedStage) -> Result<(), CliError> {
        Ok(())
    }
}

/// Starts the Prometheus endpoint of `--metrics-addr`, if given.
pub fn start_metrics(
    plan: &ConsumePlan,
) -> Result<(Arc<Metrics>, Option<MetricsServer>), CliError> {
    let metrics = Arc::new(Metrics::new());
    let server = match plan.metrics_addr {
        Some(addr) => Some(
            MetricsServer::start(&addr.to_string(), Arc::clone(&metrics))
                .map_err(|e| CliError::runtime(e.to_string()))?,
        ),
        None => None,
    };
    Ok((metrics, server))
}

/// Observes the fetch engine's latencies into the histogram: the engine keeps a sum
/// and a count, so each poll observes the mean of the fetches completed since the
/// last one, once per fetch.
struct FetchLatency {
    engine: Arc<weir_fetch::metrics::Metrics>,
    sum: u64,
    count: u64,
}

impl FetchLatency {
    fn observe(&mut self, metrics: &Metrics) {
        let sum = self.engine.fetch_latency_us_sum.load(Ordering::Relaxed);
        let count = self.engine.fetch_latency_count.load(Ordering::Relaxed);
        if count > self.count {
            let mean = (sum.saturating_sub(self.sum)) / (count - self.count);
            for _ in self.count..count {
                metrics.observe_fetch(Duration::from_micros(mean));
            }
            (self.sum, self.count) = (sum, count);
        }
    }
}

/// Runs `source` into `stage` until `-e`, `-c`, a signal (`stop`), a closed stdout or
/// an error; then the source finishes (commit, leave) and the stage closes.
pub fn drive(
    plan: &ConsumePlan,
    mut source: impl Source,
    stage: SharedStage,
    metrics: &Metrics,
    stop: &AtomicBool,
) -> Result<Summary, CliError> {
    let started = Instant::now();
    let progress = (!plan.quiet && io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(source.starting());
        bar
    });
    let mut latency = FetchLatency {
        engine: source.fetch_metrics(),
        sum: 0,
        count: 0,
    };
    let mut seen = 0;
    let result: Result<StopReason, Halt> = loop {
        if stop.load(Ordering::Acquire) {
            break Ok(StopReason::Signal);
        }
        if lock(&stage).count_reached() {
            break Ok(StopReason::Count);
        }
        let before = {
            let mut st = lock(&stage);
            st.begin_poll();
            st.records
        };
        if let Err(e) = source.poll(&stage, Duration::from_millis(100)) {
            break Err(Halt::Failed(e));
        }
        let mut st = lock(&stage);
        if st.records > before {
            metrics
                .records_per_poll
                .observe((st.records - before) as f64);
        }
        if let Some(h) = st.halt() {
            break Err(h.clone());
        }
        let status = match source.after_poll(&mut st) {
            Ok(s) => s,
            Err(e) => break Err(Halt::Failed(e)),
        };
        seen = status.seen;
        let now = Instant::now();
        let checkpointed = match st.settle(now) {
            Ok(c) => c,
            Err(h) => break Err(h),
        };
        let stdout = st.to_stdout();
        let records = st.records;
        drop(st);
        source.settled(stdout, checkpointed, now);
        latency.observe(metrics);
        if let Some(bar) = &progress {
            let secs = started.elapsed().as_secs_f64().max(0.001);
            bar.set_message(format!(
                "{records} records, {:.0} records/s, {} partition(s), lag {}",
                records as f64 / secs,
                status.partitions,
                status.lag,
            ));
            bar.tick();
        }
        if plan.stop_at.is_some()
            && status.partitions > 0
            && lock(&stage).stopped_partitions() >= status.partitions
        {
            break Ok(StopReason::StopTimestamp);
        }
        if plan.exit_at_end && status.all_at_end {
            break Ok(StopReason::EndOfPartitions);
        }
    };
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let reason = match result {
        Ok(r) => r,
        Err(Halt::OutputClosed) => StopReason::BrokenPipe,
        // No final commit, no checkpoint: what was handed over was not all written.
        Err(Halt::Failed(e)) => return Err(e),
    };
    source.finish(reason, &stage)?;
    drop(source);
    let mut st = lock(&stage);
    st.close()?;
    Ok(Summary {
        records: st.records,
        bytes: st.bytes,
        partitions: seen,
        elapsed: started.elapsed(),
        reason,
    })
}
