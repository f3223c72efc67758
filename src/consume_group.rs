//! `weir consume -G GROUP TOPIC...`: kcat's balanced consumer group mode, on a
//! [`GroupConsumer`], through the same [`Formatter`], [`Sink`] and [`Metrics`] as manual
//! assignment.
//!
//! * Start: a partition with a committed offset starts there; one without starts per
//!   `-o` as `auto.offset.reset` (see [`crate::consume::group_config`]; the command line
//!   refuses other `-o` forms with `-G`).
//! * Commits never run ahead of the output. The member's own auto-commit is turned off;
//!   with `enable.auto.commit=true` (the default) weir commits itself:
//!   - to stdout, every `auto.commit.interval.ms`, right after the output was flushed
//!     (at least once);
//!   - with `--sink`, right after each sink checkpoint, when everything written is
//!     durable: the processed offsets then equal the sink's
//!     [`committed_positions`](Sink::committed_positions), so group lag tools show the
//!     true lag.
//!
//!   On revoke (and on close) the listener flushes stdout or checkpoints the sink
//!   before the group consumer commits the revoked partitions. A newly owned partition
//!   starts at the group's commit; when the sink already holds records past it, weir
//!   seeks to the sink's position and counts what the sink holds as processed (the
//!   sink is the source of truth), so nothing is written twice.
//! * `-e`: exits once the member owns partitions, is stable, and every owned partition
//!   is read to its end.
//! * SIGINT/SIGTERM: stop fetching, flush or checkpoint, commit, leave the group
//!   (bounded by `default.api.timeout.ms` and `session.timeout.ms`), exit 0. A second
//!   signal exits at once with status 1 (see `main.rs`); the sink recovers from a stop
//!   at any instant, as from `kill -9`.
//! * Errors of the fetch layer end the run with status 1 and the error (an
//!   authorization failure, an out-of-range offset with `auto.offset.reset=none`, a
//!   response larger than the ring...), without the final commit, as a write failure
//!   does; an undecodable answer, after which the fetch layer reconnects and retries,
//!   is a warning unless it repeats without progress.
//! * A write failure (or a closed stdout) ends the run without the final commit or
//!   LeaveGroup: the records handed over since the last commit were not all written,
//!   and committing them would lose them. The group notices the member gone after the
//!   session timeout. A failure to flush during a revoke exits the process before the
//!   group consumer can commit.
//!
//! `-c`: records handed over after the count was reached are refused
//! ([`GroupConsumer::poll_accepting`]), so the final commit is the record after the
//! last one written, as kcat's; the sink's position of such a partition stays after
//! the last record written (not the fetch position), so a second run with the same
//! sink writes exactly the records after the count.
//!
//! `enable.auto.commit=false`: no record is accepted as processed, so nothing is
//! committed, periodically or on revoke and close (kcat with commits off).
//!
//! Known limit: `-J`'s `broker` is -1 (the group consumer does not expose partition
//! leaders).

use std::collections::BTreeSet;
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use weir_coordinator::{GroupConfig, Phase, TopicPartition};
use weir_fetch::{ConsumerRecord, FetchError};

use crate::cli::{CliError, ConsumePlan, StartOffset};
use crate::consume::{StopReason, Summary, group_config, plan_fetch_config, plan_fetch_err};
use crate::format::{Formatter, RecordView};
use crate::metrics::{Metrics, MetricsServer};
use crate::sink::{Sink, SinkConfig};
use weir_consumer::config::ConsumerConfig;
use weir_consumer::group::{GroupConsumer, GroupConsumerError, RebalanceListener};

/// The group member's settings: [`consume::group_config`](crate::consume::group_config)
/// (Kafka's property names, `-o` as the reset) with the member's own auto-commit off,
/// because weir commits after the output is flushed or durable (see the module docs).
pub fn member_config(c: &ConsumerConfig, start: StartOffset) -> Result<GroupConfig, CliError> {
    let mut g = group_config(c, start)?;
    g.enable_auto_commit = false;
    g.auto_commit_interval = g.auto_commit_interval.max(Duration::from_millis(1));
    g.validate().map_err(|e| CliError::usage(e.to_string()))?;
    Ok(g)
}

/// Where records go; shared with the rebalance listener, which flushes it.
enum Output {
    Stdout(io::BufWriter<io::Stdout>),
    /// `None` once closed.
    Sink(Option<Sink>),
}

struct Shared {
    out: Output,
    /// The first write failure; `code == 0` marks a closed stdout.
    failure: Option<CliError>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic while holding the lock leaves plain data (a writer, a sink whose
    // on-disk state recovers on open); carry on with it.
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// Makes everything written so far visible (stdout) or durable (sink).
    fn flush(&mut self) -> Result<(), CliError> {
        match &mut self.out {
            Output::Stdout(w) => w.flush().map_err(|e| {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    CliError {
                        code: 0,
                        message: String::new(),
                    }
                } else {
                    CliError::runtime(format!("cannot write to stdout: {e}"))
                }
            }),
            Output::Sink(Some(s)) => s.checkpoint().map_err(|e| CliError::runtime(e.to_string())),
            Output::Sink(None) => Ok(()),
        }
    }
}

/// Flushes the output before the group consumer commits revoked partitions; counts
/// rebalances.
struct Listener {
    shared: Arc<Mutex<Shared>>,
    metrics: Arc<Metrics>,
}

impl RebalanceListener for Listener {
    fn on_partitions_revoked(&mut self, partitions: &[TopicPartition]) {
        let mut sh = lock(&self.shared);
        let res = if sh.failure.is_some() {
            Err(sh.failure.clone())
        } else {
            sh.flush().map_err(Some)
        };
        if let Err(e) = res {
            // The group consumer commits the processed offsets of these partitions
            // right after this returns, and some of those records are not in the
            // output. Exit now, before that commit; the sink recovers from an abrupt
            // stop as from kill -9.
            match e {
                Some(e) if e.code != 0 => eprintln!("weir: error: {}", e.message),
                _ => {}
            }
            std::process::exit(if matches!(&sh.failure, Some(f) if f.code == 0) {
                0
            } else {
                1
            });
        }
        for tp in partitions {
            self.metrics.remove_lag(&tp.topic, tp.partition);
        }
    }

    fn on_partitions_assigned(&mut self, _partitions: &[TopicPartition]) {
        // Called once per completed rebalance (with the added partitions, maybe none).
        self.metrics.rebalances.inc();
    }

    fn on_partitions_lost(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.metrics.remove_lag(&tp.topic, tp.partition);
        }
    }
}

/// How many transient fetch errors in a row, with no record in between, end the run.
const MAX_TRANSIENT_ERRORS: u32 = 10;

/// Whether the fetch layer recovers from `e` by itself, so the run goes on with a
/// warning: an undecodable answer resets the connection and the request is sent
/// again (with the reconnect backoff). Everything else is fatal, as in manual
/// assignment: an authorization failure or an unknown version does not go away by
/// retrying, a response larger than the ring would come back as large, a corrupt
/// batch or an out-of-range offset with `auto.offset.reset=none` pauses the partition
/// for good, and carrying on would end in a silent stall. A partition the topic does
/// not have is different in a group than with `-p`: the group chose it (the leader's
/// metadata may be newer than ours, or the leader is wrong), and the fetch layer
/// fetches it as soon as metadata shows it, so it is a warning.
fn is_transient(e: &FetchError) -> bool {
    matches!(
        e,
        FetchError::Decode { .. } | FetchError::UnknownPartition { .. }
    )
}

fn group_err(e: GroupConsumerError) -> CliError {
    match e {
        GroupConsumerError::Config(m) => CliError::usage(m),
        other => CliError::runtime(format!("group consumer failed: {other}")),
    }
}

/// Runs `weir consume -G GROUP TOPIC...` until `-e`, `-c`, a signal (`stop`), or an
/// error.
pub fn run(plan: &ConsumePlan, stop: &AtomicBool) -> Result<Summary, CliError> {
    let started = Instant::now();
    let gcfg = member_config(&plan.config, plan.start)?;
    let auto_commit = plan.config.enable_auto_commit;
    let commit_every = gcfg.auto_commit_interval;
    let close_timeout = Duration::from_millis(u64::from(plan.config.default_api_timeout_ms))
        .min(gcfg.session_timeout);
    let commit_timeout = Duration::from_millis(u64::from(plan.config.default_api_timeout_ms))
        .min(Duration::from_secs(10));

    let metrics = Arc::new(Metrics::new());
    let _server = match plan.metrics_addr {
        Some(addr) => Some(
            MetricsServer::start(&addr.to_string(), Arc::clone(&metrics))
                .map_err(|e| CliError::runtime(e.to_string()))?,
        ),
        None => None,
    };
    let out = match &plan.sink {
        Some(dir) => Output::Sink(Some(
            Sink::open(SinkConfig::from_config(dir.clone(), &plan.config))
                .map_err(|e| CliError::runtime(e.to_string()))?,
        )),
        None => Output::Stdout(io::BufWriter::with_capacity(256 * 1024, io::stdout())),
    };
    let shared = Arc::new(Mutex::new(Shared { out, failure: None }));

    let mut gc = GroupConsumer::new(plan_fetch_config(plan), gcfg).map_err(group_err)?;
    gc.set_listener(Listener {
        shared: Arc::clone(&shared),
        metrics: Arc::clone(&metrics),
    });
    gc.subscribe(plan.topics.iter().cloned());

    let mut formatter = Formatter::new(plan.style.clone());
    let progress = (!plan.quiet && io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message("joining the group");
        bar
    });
    let fetch_metrics = gc.fetch_consumer().metrics_handle();
    let (mut lat_sum, mut lat_count) = (0u64, 0u64);
    let mut summary = Summary::default();
    let mut seen: BTreeSet<TopicPartition> = BTreeSet::new();
    let mut next_commit = Instant::now() + commit_every;
    let mut owned: Vec<TopicPartition> = Vec::new();
    let mut newly_owned: BTreeSet<TopicPartition> = BTreeSet::new();
    // Partitions of which `-c` refused a record: their position is past records that
    // were never written. The sink must not be advanced to it, or its checkpoint
    // (and the next run, which resumes there and marks it processed) would skip them.
    let mut cut: BTreeSet<TopicPartition> = BTreeSet::new();
    // Transient fetch errors since records last arrived (see is_transient).
    let mut transient_errors = 0u32;

    let result: Result<StopReason, CliError> = loop {
        if stop.load(Ordering::Acquire) {
            break Ok(StopReason::Signal);
        }
        if plan.count.is_some_and(|c| summary.records >= c) {
            break Ok(StopReason::Count);
        }
        let now = Instant::now();
        // The handler's answer: whether the record is in the output (committable).
        // Past -c or after a write failure, nothing more is.
        let polled = gc.poll_accepting(Duration::from_millis(100), |rec: &ConsumerRecord<'_>| {
            if plan.count.is_some_and(|c| summary.records >= c) {
                if !cut
                    .iter()
                    .any(|tp| tp.partition == rec.partition && *tp.topic == *rec.topic)
                {
                    cut.insert(TopicPartition::new(rec.topic, rec.partition));
                }
                return false;
            }
            let mut sh = lock(&shared);
            if sh.failure.is_some() {
                return false;
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
            let bytes = formatter.format(&view);
            let written = match &mut sh.out {
                Output::Sink(Some(s)) => {
                    match s.write(rec.topic, rec.partition, rec.offset(), bytes, now) {
                        Ok(true) => Ok(()),
                        // Already in the sink's files: not written again, not counted.
                        Ok(false) => return auto_commit,
                        Err(e) => Err(CliError::runtime(e.to_string())),
                    }
                }
                Output::Sink(None) => Err(CliError::runtime("the sink is closed")),
                Output::Stdout(w) => w.write_all(bytes).map_err(|e| {
                    if e.kind() == io::ErrorKind::BrokenPipe {
                        CliError {
                            code: 0,
                            message: String::new(),
                        }
                    } else {
                        CliError::runtime(format!("cannot write to stdout: {e}"))
                    }
                }),
            };
            match written {
                Ok(()) => {
                    let n = rec.key().map_or(0, <[u8]>::len) + rec.value().map_or(0, <[u8]>::len);
                    summary.records += 1;
                    summary.bytes += n as u64;
                    metrics.record_consumed(n);
                    // enable.auto.commit=false: nothing is ever committable, so
                    // nothing is committed (as kcat without commits).
                    auto_commit
                }
                Err(e) => {
                    metrics.processing_errors.inc();
                    sh.failure = Some(e);
                    false
                }
            }
        });
        match polled {
            Ok(n) => {
                if n > 0 {
                    transient_errors = 0;
                }
            }
            Err(GroupConsumerError::Fetch(e)) if is_transient(&e) => {
                // The fetch layer retries on its own (a reset connection, a partition
                // it waits for); say so, and give up only when it keeps failing
                // without progress.
                transient_errors += 1;
                if transient_errors > MAX_TRANSIENT_ERRORS {
                    break Err(CliError::runtime(format!(
                        "group consumer failed: {e} ({MAX_TRANSIENT_ERRORS} times in a row without a record)"
                    )));
                }
                if !plan.quiet {
                    eprintln!("weir: warning: {e}");
                }
            }
            Err(GroupConsumerError::Commit(e)) => {
                // A failed commit is superseded by the next one; count it, go on.
                metrics.commit_errors.inc();
                if !plan.quiet {
                    eprintln!("weir: warning: offset commit failed: {e}");
                }
            }
            Err(GroupConsumerError::Fetch(e)) => break Err(plan_fetch_err(plan, e)),
            Err(e) => break Err(group_err(e)),
        }
        let mut sh = lock(&shared);
        if let Some(f) = sh.failure.clone() {
            break Err(f);
        }
        if gc.assignment().len() != owned.len()
            || gc.assignment().iter().zip(&owned).any(|(a, b)| a != b)
        {
            for tp in gc.assignment() {
                if !owned.contains(tp) {
                    newly_owned.insert(tp.clone());
                }
            }
            newly_owned.retain(|tp| gc.assignment().contains(tp));
            owned.clear();
            owned.extend(gc.assignment().iter().cloned());
        }
        // A newly owned partition starts at the group's commit; the sink is the
        // source of truth: when it already holds records past that, seek to its
        // position (it would drop those records anyway, but need not fetch them).
        if let (Output::Sink(Some(s)), false) = (&mut sh.out, newly_owned.is_empty()) {
            let resume = s.resume_positions();
            let mut done = Vec::new();
            for tp in &newly_owned {
                let Some(pos) = gc.position(&tp.topic, tp.partition) else {
                    continue; // start offset still being looked up
                };
                if let Some(&next) = resume.get(&(tp.topic.to_string(), tp.partition))
                    && next > pos
                {
                    gc.seek(&tp.topic, tp.partition, next).map_err(group_err)?;
                    // The sink holds everything below `next` (what is still
                    // buffered is durable before the next commit: commits follow
                    // checkpoints, and the revoke listener checkpoints first).
                    if auto_commit {
                        gc.mark_processed(&tp.topic, tp.partition, next);
                    }
                }
                done.push(tp.clone());
            }
            for tp in done {
                newly_owned.remove(&tp);
            }
        } else {
            newly_owned.clear();
        }
        let mut all_at_end = !owned.is_empty() && gc.phase() == Phase::Stable;
        for tp in &owned {
            seen.insert(tp.clone());
            let fc = gc.fetch_consumer();
            match fc.lag(&tp.topic, tp.partition) {
                Some(lag) => {
                    metrics.set_lag(&tp.topic, tp.partition, lag);
                    all_at_end &= lag <= 0;
                }
                None => all_at_end = false,
            }
            if let (Output::Sink(Some(s)), Some(pos)) =
                (&mut sh.out, gc.position(&tp.topic, tp.partition))
                && !cut.contains(tp)
            {
                // Offsets stepped over (control batches, compaction) need no re-fetch.
                // Not past records `-c` refused: those are for the next run.
                s.advance(&tp.topic, tp.partition, pos);
            }
        }
        // Commit only what is flushed (stdout) or durable (sink).
        let now = Instant::now();
        let to_stdout = matches!(sh.out, Output::Stdout(_));
        let commit_now = match &mut sh.out {
            Output::Stdout(_) => false,
            Output::Sink(Some(s)) => match s.poll(now) {
                // A checkpoint made every record written so far durable: the
                // processed offsets are the sink's committed positions now.
                Ok(checkpointed) => auto_commit && checkpointed,
                Err(e) => break Err(CliError::runtime(e.to_string())),
            },
            Output::Sink(None) => false,
        };
        let commit_now = if to_stdout {
            match sh.flush() {
                Ok(()) => auto_commit && now >= next_commit,
                Err(e) => break Err(e),
            }
        } else {
            commit_now
        };
        drop(sh);
        if commit_now {
            next_commit = now + commit_every;
            let m = Arc::clone(&metrics);
            gc.commit_async(move |r| {
                if r.is_err() {
                    m.commit_errors.inc();
                }
            });
        }
        let sum = fetch_metrics.fetch_latency_us_sum.load(Ordering::Relaxed);
        let count = fetch_metrics.fetch_latency_count.load(Ordering::Relaxed);
        if count > lat_count {
            let mean = (sum.saturating_sub(lat_sum)) / (count - lat_count);
            for _ in lat_count..count {
                metrics.observe_fetch(Duration::from_micros(mean));
            }
            (lat_sum, lat_count) = (sum, count);
        }
        if let Some(bar) = &progress {
            let secs = started.elapsed().as_secs_f64().max(0.001);
            let lag: i64 = owned
                .iter()
                .filter_map(|tp| gc.fetch_consumer().lag(&tp.topic, tp.partition))
                .sum();
            bar.set_message(format!(
                "{} records, {:.0} records/s, {} partition(s), lag {lag}",
                summary.records,
                summary.records as f64 / secs,
                owned.len()
            ));
            bar.tick();
        }
        if plan.exit_at_end && all_at_end {
            break Ok(StopReason::EndOfPartitions);
        }
    };
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let reason = match result {
        Ok(r) => r,
        Err(e) if e.code == 0 => StopReason::BrokenPipe,
        Err(e) => return Err(e),
    };
    if reason == StopReason::BrokenPipe {
        // Records handed over were not all read: no final commit (see module docs).
        summary.partitions = seen.len();
        summary.elapsed = started.elapsed();
        summary.reason = reason;
        return Ok(summary);
    }
    // Graceful end: flush or checkpoint, commit, leave the group, close the sink.
    lock(&shared).flush()?;
    let mut commit_failed = None;
    if let Err(e) = gc.commit_sync(commit_timeout) {
        metrics.commit_errors.inc();
        commit_failed = Some(e);
    }
    // close revokes (the listener flushes again, the member commits anything left)
    // and sends LeaveGroup, within close_timeout whatever the broker does.
    let closed = gc.close(close_timeout);
    drop(gc);
    let sink = match &mut lock(&shared).out {
        Output::Sink(s) => s.take(),
        Output::Stdout(_) => None,
    };
    if let Some(s) = sink {
        s.close().map_err(|e| CliError::runtime(e.to_string()))?;
    }
    if let Some(e) = commit_failed {
        return Err(CliError::runtime(format!(
            "the final offset commit failed ({e}); the output is complete, the group may read some records again"
        )));
    }
    closed.map_err(|e| {
        CliError::runtime(format!(
            "leaving the group failed ({e}); the other members take over this member's partitions after session.timeout.ms"
        ))
    })?;
    summary.partitions = seen.len();
    summary.elapsed = started.elapsed();
    summary.reason = reason;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_consumer::config::{ConfigBuilder, Mode, Source};
    use weir_coordinator::{AssignmentStrategy, AutoOffsetReset};

    fn cfg(pairs: &[(&str, &str)]) -> ConsumerConfig {
        let mut b = ConfigBuilder::new();
        b.set("bootstrap.servers", "k:9092", Source::Option("-b"))
            .unwrap();
        for (k, v) in pairs {
            b.set(k, v, Source::Option("-X")).unwrap();
        }
        b.build(Mode::Group).unwrap()
    }

    #[test]
    fn an_assigned_partition_the_topic_lacks_is_a_warning_in_a_group() {
        let e = FetchError::UnknownPartition {
            topic: "t".into(),
            partition: 7,
            partitions: 2,
        };
        assert!(is_transient(&e));
        assert!(!is_transient(&FetchError::Config("x".into())));
    }

    #[test]
    fn kafka_properties_reach_the_member_without_its_auto_commit() {
        let c = cfg(&[
            ("group.id", "g"),
            ("group.instance.id", "i1"),
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "500"),
            ("max.poll.interval.ms", "70000"),
            ("partition.assignment.strategy", "roundrobin"),
            ("auto.commit.interval.ms", "250"),
        ]);
        let g = member_config(&c, StartOffset::Beginning).unwrap();
        assert_eq!(g.group_id, "g");
        assert_eq!(g.group_instance_id.as_deref(), Some("i1"));
        assert_eq!(g.session_timeout, Duration::from_millis(6000));
        assert_eq!(g.heartbeat_interval, Duration::from_millis(500));
        assert_eq!(g.max_poll_interval, Duration::from_millis(70000));
        assert_eq!(
            g.assignment_strategies,
            vec![AssignmentStrategy::RoundRobin]
        );
        assert_eq!(g.auto_commit_interval, Duration::from_millis(250));
        assert_eq!(g.auto_offset_reset, AutoOffsetReset::Earliest);
        // weir commits itself, after the output is flushed or durable.
        assert!(c.enable_auto_commit);
        assert!(!g.enable_auto_commit);
    }

    #[test]
    fn offsets_other_than_reset_points_are_usage_errors() {
        let c = cfg(&[("group.id", "g")]);
        for bad in [
            StartOffset::Absolute(5),
            StartOffset::FromEnd(5),
            StartOffset::Timestamp(5),
        ] {
            let e = member_config(&c, bad).unwrap_err();
            assert_eq!(e.code, crate::cli::EXIT_USAGE);
        }
    }
}
