//! `weir consume -G GROUP TOPIC...`: kcat's balanced consumer group mode, on a
//! [`GroupConsumer`], as the record [`Source`] of the consume pipeline
//! ([`crate::output`]): the same output stage (formatter, stdout or sink, metrics) as
//! manual assignment.
//!
//! * Start: a partition with a committed offset starts there; one without starts per
//!   `-o` as `auto.offset.reset` (see [`ConsumePlan::group_config`]; the command line
//!   refuses other `-o` forms with `-G`).
//! * Commits never run ahead of the output. The member's own auto-commit is turned off;
//!   with `enable.auto.commit=true` (the default) weir commits itself:
//!   - to stdout, every `auto.commit.interval.ms`, right after the output was flushed
//!     (at least once);
//!   - with `--sink`, right after each sink checkpoint, when everything written is
//!     durable: the processed offsets then equal the sink's
//!     [`committed_positions`](crate::sink::Sink::committed_positions), so group lag tools show the
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
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use weir_consumer::group::{GroupConsumer, GroupConsumerError, RebalanceListener};
use weir_coordinator::{GroupConfig, Phase, TopicPartition};
use weir_fetch::{ConsumerRecord, FetchError};

use crate::cli::{CliError, ConsumePlan};
use crate::metrics::Metrics;
use crate::output::{
    self, Delivered, Halt, SharedStage, Source, Stage, Status, StopReason, Summary, lock,
};

/// The group member's settings: [`ConsumePlan::group_config`] (Kafka's property
/// names, `-o` as the reset) with the member's own auto-commit off, because weir
/// commits after the output is flushed or durable (see the module docs).
pub fn member_config(plan: &ConsumePlan) -> Result<GroupConfig, CliError> {
    let mut g = plan.group_config()?;
    g.enable_auto_commit = false;
    g.auto_commit_interval = g.auto_commit_interval.max(Duration::from_millis(1));
    g.validate().map_err(|e| CliError::usage(e.to_string()))?;
    Ok(g)
}

/// Flushes the output before the group consumer commits revoked partitions; counts
/// rebalances.
struct Listener {
    stage: SharedStage,
    metrics: Arc<Metrics>,
}

impl RebalanceListener for Listener {
    fn on_partitions_revoked(&mut self, partitions: &[TopicPartition]) {
        let mut st = lock(&self.stage);
        let res = match st.halt() {
            Some(h) => Err(h.clone()),
            None => st.flush(),
        };
        if let Err(h) = res {
            // The group consumer commits the processed offsets of these partitions
            // right after this returns, and some of those records are not in the
            // output. Exit now, before that commit; the sink recovers from an abrupt
            // stop as from kill -9. A reader that went away is not an error.
            std::process::exit(match h {
                Halt::OutputClosed => 0,
                Halt::Failed(e) => {
                    eprintln!("weir: error: {}", e.message);
                    1
                }
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
    let gcfg = member_config(plan)?;
    let api_timeout = Duration::from_millis(u64::from(plan.config.default_api_timeout_ms));
    let (metrics, _server) = output::start_metrics(plan)?;
    let stage = Arc::new(std::sync::Mutex::new(Stage::open(
        plan,
        Arc::clone(&metrics),
    )?));
    let source = Group {
        plan,
        auto_commit: plan.config.enable_auto_commit,
        commit_every: gcfg.auto_commit_interval,
        next_commit: Instant::now() + gcfg.auto_commit_interval,
        close_timeout: api_timeout.min(gcfg.session_timeout),
        commit_timeout: api_timeout.min(Duration::from_secs(10)),
        gc: GroupConsumer::new(plan.fetch_config(), gcfg).map_err(group_err)?,
        owned: Vec::new(),
        newly_owned: BTreeSet::new(),
        seen: BTreeSet::new(),
        transient_errors: 0,
        metrics: Arc::clone(&metrics),
        failed: BTreeSet::new(),
    };
    let mut source = source;
    source.gc.set_listener(Listener {
        stage: Arc::clone(&stage),
        metrics: Arc::clone(&metrics),
    });
    if plan.topics.iter().any(|t| t.starts_with('^')) {
        // kcat's form: topics starting with ^ are patterns; with names beside them,
        // one pattern matches all (each name exactly).
        let parts: Vec<String> = plan
            .topics
            .iter()
            .map(|t| match t.strip_prefix('^') {
                Some(re) => format!("(?:{})", re.strip_suffix('$').unwrap_or(re)),
                None => regex_lite::escape(t),
            })
            .collect();
        source
            .gc
            .subscribe_pattern(&parts.join("|"), plan.config.exclude_internal_topics)
            .map_err(group_err)?;
    } else {
        source.gc.subscribe(plan.topics.iter().cloned());
    }
    output::drive(plan, source, stage, &metrics, stop)
}

/// A group member as a record source.
struct Group<'p> {
    plan: &'p ConsumePlan,
    gc: GroupConsumer,
    /// `enable.auto.commit`: whether records written are committable at all.
    auto_commit: bool,
    commit_every: Duration,
    next_commit: Instant,
    close_timeout: Duration,
    commit_timeout: Duration,
    owned: Vec<TopicPartition>,
    /// Owned partitions whose start has not been checked against the sink yet.
    newly_owned: BTreeSet<TopicPartition>,
    seen: BTreeSet<TopicPartition>,
    /// Transient fetch errors since records last arrived (see is_transient).
    transient_errors: u32,
    metrics: Arc<Metrics>,
    /// `-E`: partitions left after an error of their own.
    failed: BTreeSet<TopicPartition>,
}

impl Source for Group<'_> {
    fn starting(&self) -> &'static str {
        "joining the group"
    }

    fn poll(&mut self, stage: &SharedStage, timeout: Duration) -> Result<(), CliError> {
        let now = Instant::now();
        let auto_commit = self.auto_commit;
        // The handler's answer: whether the record is in the output (committable).
        // The stage is locked per record: the rebalance listener, which runs during
        // this poll between records, takes it too.
        let polled = self.gc.poll_accepting(timeout, |rec: &ConsumerRecord<'_>| {
            match lock(stage).deliver(rec, now) {
                // enable.auto.commit=false: nothing is ever committable, so
                // nothing is committed (as kcat without commits).
                Delivered::Written | Delivered::AlreadyInSink => auto_commit,
                Delivered::Refused => false,
            }
        });
        match polled {
            Ok(n) => {
                if n > 0 {
                    self.transient_errors = 0;
                }
            }
            Err(GroupConsumerError::Fetch(e)) if is_transient(&e) => {
                // The fetch layer retries on its own (a reset connection, a partition
                // it waits for); say so, and give up only when it keeps failing
                // without progress.
                self.transient_errors += 1;
                if self.transient_errors > MAX_TRANSIENT_ERRORS {
                    return Err(CliError::runtime(format!(
                        "group consumer failed: {e} ({MAX_TRANSIENT_ERRORS} times in a row without a record)"
                    )));
                }
                if !self.plan.quiet {
                    eprintln!("weir: warning: {e}");
                }
            }
            Err(GroupConsumerError::Commit(e)) => {
                // A failed commit is superseded by the next one; count it, go on.
                self.metrics.commit_errors.inc();
                if !self.plan.quiet {
                    eprintln!("weir: warning: offset commit failed: {e}");
                }
            }
            Err(GroupConsumerError::Fetch(e))
                if self.plan.keep_going && e.partition().is_some() =>
            {
                // -E: the partition stays paused where it failed (nothing past it is
                // committed); the others go on, and -e does not wait for it.
                if let Some((t, p)) = e.partition() {
                    let tp = TopicPartition::new(t, p);
                    if self.failed.insert(tp) {
                        eprintln!(
                            "weir: warning: {e}; -E: {t}-{p} is left, the other partitions go on"
                        );
                    }
                }
            }
            Err(GroupConsumerError::Fetch(e)) => return Err(self.plan.fetch_error(e)),
            Err(e) => return Err(group_err(e)),
        }
        Ok(())
    }

    fn after_poll(&mut self, stage: &mut Stage) -> Result<Status, CliError> {
        for d in self.gc.take_rebalance_durations() {
            self.metrics.rebalance_duration.observe(d.as_secs_f64());
        }
        let gc = &mut self.gc;
        if gc.assignment().len() != self.owned.len()
            || gc.assignment().iter().zip(&self.owned).any(|(a, b)| a != b)
        {
            for tp in gc.assignment() {
                if !self.owned.contains(tp) {
                    self.newly_owned.insert(tp.clone());
                }
            }
            self.newly_owned.retain(|tp| gc.assignment().contains(tp));
            self.owned.clear();
            self.owned.extend(gc.assignment().iter().cloned());
        }
        // A newly owned partition starts at the group's commit; the sink is the
        // source of truth: when it already holds records past that, seek to its
        // position (it would drop those records anyway, but need not fetch them).
        if stage.to_stdout() {
            self.newly_owned.clear();
        } else if !self.newly_owned.is_empty() {
            let resume = stage.resume_positions();
            let mut done = Vec::new();
            for tp in &self.newly_owned {
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
                    if self.auto_commit {
                        gc.mark_processed(&tp.topic, tp.partition, next);
                    }
                }
                done.push(tp.clone());
            }
            for tp in done {
                self.newly_owned.remove(&tp);
            }
        }
        self.failed.retain(|tp| self.owned.contains(tp));
        let mut status = Status {
            all_at_end: !self.owned.is_empty() && gc.phase() == Phase::Stable,
            partitions: self.owned.len() - self.failed.len(),
            ..Status::default()
        };
        for tp in &self.owned {
            self.seen.insert(tp.clone());
            if self.failed.contains(tp) {
                continue;
            }
            match gc.fetch_consumer().lag(&tp.topic, tp.partition) {
                Some(lag) => {
                    self.metrics.set_lag(&tp.topic, tp.partition, lag);
                    status.lag += lag.max(0);
                    status.all_at_end &= lag <= 0;
                }
                None => status.all_at_end = false,
            }
            if let Some(pos) = gc.position(&tp.topic, tp.partition) {
                stage.advance(&tp.topic, tp.partition, pos);
            }
        }
        status.seen = self.seen.len();
        Ok(status)
    }

    /// Commits only what is flushed (stdout, every `auto.commit.interval.ms`) or
    /// durable (right after a sink checkpoint).
    fn settled(&mut self, stdout: bool, checkpointed: bool, now: Instant) {
        let due = if stdout {
            now >= self.next_commit
        } else {
            checkpointed
        };
        if self.auto_commit && due {
            self.next_commit = now + self.commit_every;
            let m = Arc::clone(&self.metrics);
            let sent = Instant::now();
            self.gc.commit_async(move |r| {
                m.commit_latency.observe(sent.elapsed().as_secs_f64());
                if r.is_err() {
                    m.commit_errors.inc();
                }
            });
        }
    }

    fn fetch_metrics(&self) -> Arc<weir_fetch::metrics::Metrics> {
        self.gc.fetch_consumer().metrics_handle()
    }

    /// Graceful end: flush or checkpoint, commit, leave the group, close the output.
    /// After a closed stdout nothing is committed: the records handed over were not
    /// all read (see the module docs).
    fn finish(&mut self, reason: StopReason, stage: &SharedStage) -> Result<(), CliError> {
        if reason == StopReason::BrokenPipe {
            return Ok(());
        }
        match lock(stage).flush() {
            Ok(()) => {}
            Err(Halt::OutputClosed) => return Ok(()),
            Err(Halt::Failed(e)) => return Err(e),
        }
        let mut commit_failed = None;
        if let Err(e) = self.gc.commit_sync(self.commit_timeout) {
            self.metrics.commit_errors.inc();
            commit_failed = Some(e);
        }
        // close revokes (the listener flushes again, the member commits anything
        // left) and sends LeaveGroup, within close_timeout whatever the broker does.
        let closed = self.gc.close(self.close_timeout);
        lock(stage).close()?;
        if let Some(e) = commit_failed {
            return Err(CliError::runtime(format!(
                "the final offset commit failed ({e}); the output is complete, the group may read some records again"
            )));
        }
        closed.map_err(|e| {
            CliError::runtime(format!(
                "leaving the group failed ({e}); the other members take over this member's partitions after session.timeout.ms"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::StartOffset;
    use crate::format::Style;
    use weir_consumer::config::{ConfigBuilder, Mode, Source};
    use weir_coordinator::{AssignmentStrategy, AutoOffsetReset};

    fn plan(pairs: &[(&str, &str)], start: StartOffset) -> ConsumePlan {
        let mut b = ConfigBuilder::new();
        b.set("bootstrap.servers", "k:9092", Source::Option("-b"))
            .unwrap();
        for (k, v) in pairs {
            b.set(k, v, Source::Option("-X")).unwrap();
        }
        ConsumePlan {
            config: b.build(Mode::Group).unwrap(),
            mode: Mode::Group,
            topics: vec!["t".into()],
            partitions: Vec::new(),
            start,
            exit_at_end: false,
            count: None,
            style: Style::Json,
            sink: None,
            metrics_addr: None,
            quiet: true,
            unbuffered: false,
            stop_at: None,
            keep_going: false,
        }
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
        let p = plan(
            &[
                ("group.id", "g"),
                ("group.instance.id", "i1"),
                ("session.timeout.ms", "6000"),
                ("heartbeat.interval.ms", "500"),
                ("max.poll.interval.ms", "70000"),
                ("partition.assignment.strategy", "roundrobin"),
                ("auto.commit.interval.ms", "250"),
            ],
            StartOffset::Beginning,
        );
        let g = member_config(&p).unwrap();
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
        assert!(p.config.enable_auto_commit);
        assert!(!g.enable_auto_commit);
    }

    #[test]
    fn offsets_other_than_reset_points_are_usage_errors() {
        for bad in [
            StartOffset::Absolute(5),
            StartOffset::FromEnd(5),
            StartOffset::Timestamp(5),
        ] {
            let e = member_config(&plan(&[("group.id", "g")], bad)).unwrap_err();
            assert_eq!(e.code, crate::cli::EXIT_USAGE);
        }
    }
}
