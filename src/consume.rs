//! The `weir consume` loop: the fetch engine's records through a [`Formatter`] to
//! stdout or the [`Sink`], with metrics, a progress line, `-e`/`-c` exits and graceful
//! signal handling.
//!
//! This module runs manual assignment (`-t TOPIC [-p PARTITION...]`; without `-p`,
//! every partition the topic has when weir starts, found with a Metadata request on a
//! side connection of the reactor) with [`weir_fetch::Consumer::poll`] on the caller's
//! thread. Group mode (`-G GROUP TOPIC...`, with or without `--sink`) lives in
//! [`crate::consume_group`]; [`run`] hands it over there, and that module uses
//! [`group_config`] and [`plan_fetch_config`] from here.
//!
//! Not available yet, with a message saying so: `-o stored` without `-G`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use weir_fetch::{Consumer, ConsumerRecord, FetchConfig, FetchError, StartAt};

use crate::cli::{CliError, ConsumePlan, StartOffset};
use crate::format::{Formatter, RecordView};
use crate::metrics::{Metrics, MetricsServer};
use crate::sink::{Sink, SinkConfig};
use weir_consumer::config::{ConsumerConfig, Mode, OffsetReset};
use weir_coordinator::{AutoOffsetReset as GroupAutoOffsetReset, GroupConfig};

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
}

impl Summary {
    /// The one-line summary printed at exit.
    pub fn line(&self) -> String {
        let why = match self.reason {
            StopReason::EndOfPartitions => "reached the end of every partition",
            StopReason::Count => "reached the -c count",
            StopReason::Signal => "stopped by signal",
            StopReason::BrokenPipe => "output closed",
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

/// The fetch settings for `plan`: [`ConsumerConfig::fetch_config`], and with `--sink` an
/// OFFSET_OUT_OF_RANGE answer is an error instead of a reset, unless
/// `weir.sink.allow.reset=true`. The sink's position is the next record it has not
/// written: a reset from there (retention deleted records it never wrote, or the log
/// was truncated below it) would leave a hole in files that promise every record once.
pub fn plan_fetch_config(plan: &ConsumePlan) -> FetchConfig {
    let mut f = plan.config.fetch_config();
    if plan.sink.is_some() && !plan.config.sink_allow_reset {
        f.auto_offset_reset = weir_fetch::OffsetReset::None;
    }
    f
}

/// The message for a fetch-layer error under `plan`: an out-of-range position with
/// `--sink` says what was lost and how to go on.
pub fn plan_fetch_err(plan: &ConsumePlan, e: FetchError) -> CliError {
    if let (
        Some(dir),
        FetchError::OffsetOutOfRange {
            topic,
            partition,
            offset,
        },
    ) = (&plan.sink, &e)
        && !plan.config.sink_allow_reset
    {
        return CliError::runtime(format!(
            "{topic}-{partition}: the sink's position {offset} is no longer in the log (OFFSET_OUT_OF_RANGE: \
             retention deleted records the sink in {} never wrote, or the log was truncated); \
             nothing was skipped. To accept the gap and go on from auto.offset.reset, run again with \
             -X weir.sink.allow.reset=true",
            dir.display()
        ));
    }
    fetch_err(e)
}

fn fetch_err(e: FetchError) -> CliError {
    match e {
        FetchError::Config(m) => CliError::usage(m),
        other => CliError::runtime(format!("consumer failed: {other}")),
    }
}

/// The group member's settings ([`ConsumerConfig::group_config`]) with `-o` as the
/// reset, as kcat in group mode: `-o beginning`/`end` says where to start when the
/// group has no committed offset; without `-o`, `auto.offset.reset` decides.
pub fn group_config(c: &ConsumerConfig, start: StartOffset) -> Result<GroupConfig, CliError> {
    let mut g = c.group_config()?;
    g.auto_offset_reset = match (start, c.auto_offset_reset) {
        (StartOffset::Beginning, _) | (StartOffset::Stored, OffsetReset::Earliest) => {
            GroupAutoOffsetReset::Earliest
        }
        (StartOffset::Stored, OffsetReset::None) => GroupAutoOffsetReset::None,
        (StartOffset::End | StartOffset::Stored, _) => GroupAutoOffsetReset::Latest,
        _ => {
            return Err(CliError::usage(
                "in group mode -o can only be beginning, end or stored (the group's committed offsets decide the rest)",
            ));
        }
    };
    Ok(g)
}

/// Runs `weir consume` until `-e`, `-c`, a signal (`stop`), or an error. Group mode
/// (`-G`) is handed to [`crate::consume_group::run`].
pub fn run(plan: &ConsumePlan, stop: &AtomicBool) -> Result<Summary, CliError> {
    if plan.mode == Mode::Assign && plan.start == StartOffset::Stored {
        return Err(CliError::runtime(
            "-o stored without -G is not available yet: reading a group's committed offsets for manually assigned partitions is not wired; use -G GROUP TOPIC..., or -o beginning|end|N|-N|s@TS",
        ));
    }
    if plan.mode == Mode::Group {
        // Group mode, with or without --sink: commits follow the flushed or durable
        // output (crate::consume_group).
        return crate::consume_group::run(plan, stop);
    }
    let started = Instant::now();
    let metrics = Arc::new(Metrics::new());
    let _server = match plan.metrics_addr {
        Some(addr) => Some(
            MetricsServer::start(&addr.to_string(), Arc::clone(&metrics))
                .map_err(|e| CliError::runtime(e.to_string()))?,
        ),
        None => None,
    };
    let mut sink = match &plan.sink {
        Some(dir) => Some(
            Sink::open(SinkConfig::from_config(dir.clone(), &plan.config))
                .map_err(|e| CliError::runtime(e.to_string()))?,
        ),
        None => None,
    };
    let resume = sink
        .as_ref()
        .map(Sink::resume_positions)
        .unwrap_or_default();

    // Partitions whose -o -N start waits for the end offset.
    let mut from_end: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut manual_parts: Vec<(String, i32)> = Vec::new();
    let mut consumer = Consumer::new(plan_fetch_config(plan)).map_err(fetch_err)?;
    let topic = plan.topics.first().cloned().unwrap_or_default();
    let partitions = if plan.partitions.is_empty() {
        // kcat's default: every partition of the topic.
        let timeout = Duration::from_millis(u64::from(plan.config.default_api_timeout_ms));
        let Some(found) = discover_partitions(&mut consumer, &plan.config, &topic, stop, timeout)?
        else {
            // SIGTERM or SIGINT before anything was assigned: nothing was read, so there
            // is nothing to flush or commit, and the stop is as clean as any other.
            if let Some(s) = sink.take() {
                s.close().map_err(|e| CliError::runtime(e.to_string()))?;
            }
            return Ok(Summary {
                records: 0,
                bytes: 0,
                partitions: 0,
                elapsed: started.elapsed(),
                reason: StopReason::Signal,
            });
        };
        found
    } else {
        plan.partitions.clone()
    };
    for &p in &partitions {
        let start = match resume.get(&(topic.clone(), p)) {
            Some(&next) => StartAt::Offset(next),
            None => match plan.start {
                StartOffset::Beginning => StartAt::Earliest,
                StartOffset::Stored => StartAt::Latest,
                // `end` is `-0`: resolved from a fetch response's high
                // watermark, as -N is (tansu's ListOffsets(latest) can
                // answer an offset inside the last batch, so `-o end -e`
                // printed old records or never reached the end).
                StartOffset::End => {
                    from_end.insert((topic.clone(), p), 0);
                    StartAt::Latest
                }
                StartOffset::Absolute(o) => StartAt::Offset(o),
                StartOffset::Timestamp(t) => StartAt::Timestamp(t),
                StartOffset::FromEnd(n) => {
                    from_end.insert((topic.clone(), p), n);
                    StartAt::Latest
                }
            },
        };
        consumer.assign(&topic, p, start);
        manual_parts.push((topic.clone(), p));
    }

    let mut formatter = Formatter::new(plan.style.clone());
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(256 * 1024, stdout.lock());
    let progress = (!plan.quiet && io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message("connecting");
        bar
    });
    let fetch_metrics = consumer.metrics_handle();
    let (mut lat_sum, mut lat_count) = (0u64, 0u64);

    let mut summary = Summary::default();
    let mut seen: BTreeSet<(String, i32)> = BTreeSet::new();
    let mut failure: Option<CliError> = None;
    // Partitions of which `-c` refused a record: their position is past records that
    // were never written, so the sink must not be advanced to it (a restart resumes
    // at the sink's position and would never write them).
    let mut cut: BTreeSet<(String, i32)> = BTreeSet::new();
    let reason = loop {
        if stop.load(Ordering::Acquire) {
            break StopReason::Signal;
        }
        if plan.count.is_some_and(|c| summary.records >= c) {
            break StopReason::Count;
        }
        let now = Instant::now();
        let handler = |rec: &ConsumerRecord<'_>| {
            if plan.count.is_some_and(|c| summary.records >= c) {
                if !cut
                    .iter()
                    .any(|(t, p)| *p == rec.partition && t == rec.topic)
                {
                    cut.insert((rec.topic.to_owned(), rec.partition));
                }
                return;
            }
            if failure.is_some()
                || (!from_end.is_empty()
                    && from_end.contains_key(&(rec.topic.to_owned(), rec.partition)))
            {
                return;
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
            let written = match &mut sink {
                Some(s) => s
                    .write(rec.topic, rec.partition, rec.offset(), bytes, now)
                    .map(|_| ())
                    .map_err(|e| CliError::runtime(e.to_string())),
                None => out.write_all(bytes).map_err(|e| {
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
                }
                Err(e) => {
                    metrics.processing_errors.inc();
                    failure = Some(e);
                }
            }
        };
        if let Err(e) = consumer
            .poll(Duration::from_millis(100), handler)
            .map_err(|e| plan_fetch_err(plan, e))
        {
            failure.get_or_insert(e);
        }
        if let Some(f) = failure.take() {
            if f.code == 0 {
                break StopReason::BrokenPipe;
            }
            if let Some(bar) = &progress {
                bar.finish_and_clear();
            }
            return Err(f);
        }
        if sink.is_none() {
            if let Err(e) = out.flush() {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    break StopReason::BrokenPipe;
                }
                return Err(CliError::runtime(format!("cannot write to stdout: {e}")));
            }
        }
        // -o -N: once a fetch response has told the end of the log (position plus
        // lag: the high watermark, or the LSO under read_committed), seek N records
        // back from it. The start offset from ListOffsets(latest) is not used for
        // this: some brokers (tansu) answer it with the last batch's base offset.
        let ready: Vec<((String, i32), i64)> = from_end
            .iter()
            .filter_map(|((t, p), &n)| {
                let end = consumer.position(t, *p)? + consumer.lag(t, *p)?;
                Some(((t.clone(), *p), (end - n).max(0)))
            })
            .collect();
        for ((t, p), target) in ready {
            consumer
                .seek(&t, p, StartAt::Offset(target))
                .map_err(fetch_err)?;
            from_end.remove(&(t, p));
        }
        let mut all_at_end = from_end.is_empty() && !manual_parts.is_empty();
        let mut total_lag = 0i64;
        for (t, p) in &manual_parts {
            if seen.insert((t.clone(), *p)) {
                summary.partitions += 1;
            }
            match consumer.lag(t, *p) {
                Some(lag) => {
                    metrics.set_lag(t, *p, lag);
                    total_lag += lag.max(0);
                    all_at_end &= lag <= 0;
                }
                None => all_at_end = false,
            }
            if let (Some(s), Some(pos)) = (&mut sink, consumer.position(t, *p))
                && !cut.contains(&(t.clone(), *p))
            {
                // Offsets stepped over (control batches, compaction) need no re-fetch.
                // Not past records `-c` skipped: those are for the next run.
                s.advance(t, *p, pos);
            }
        }
        // The engine keeps a sum and a count of fetch latencies; observe the mean of
        // the fetches completed since the last poll, once per fetch.
        let sum = fetch_metrics.fetch_latency_us_sum.load(Ordering::Relaxed);
        let count = fetch_metrics.fetch_latency_count.load(Ordering::Relaxed);
        if count > lat_count {
            let mean = (sum.saturating_sub(lat_sum)) / (count - lat_count);
            for _ in lat_count..count {
                metrics.observe_fetch(Duration::from_micros(mean));
            }
            (lat_sum, lat_count) = (sum, count);
        }
        if let Some(s) = &mut sink {
            s.poll(Instant::now())
                .map_err(|e| CliError::runtime(e.to_string()))?;
        }
        if let Some(bar) = &progress {
            let secs = started.elapsed().as_secs_f64().max(0.001);
            bar.set_message(format!(
                "{} records, {:.0} records/s, lag {total_lag}",
                summary.records,
                summary.records as f64 / secs,
            ));
            bar.tick();
        }
        if plan.exit_at_end && all_at_end {
            break StopReason::EndOfPartitions;
        }
    };
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    if let Some(s) = sink {
        s.close().map_err(|e| CliError::runtime(e.to_string()))?;
    } else if reason != StopReason::BrokenPipe {
        // A failed final flush is reported; a closed pipe is the reader's choice.
        if let Err(e) = out.flush() {
            if e.kind() != io::ErrorKind::BrokenPipe {
                return Err(CliError::runtime(format!("cannot write to stdout: {e}")));
            }
        }
    }
    summary.elapsed = started.elapsed();
    summary.reason = reason;
    Ok(summary)
}

/// Lists `topic`'s partitions with a Metadata request on a side connection to the
/// first bootstrap broker, retrying retriable errors until `timeout`; `None` when
/// `stop` is set first.
fn discover_partitions(
    consumer: &mut Consumer,
    cfg: &ConsumerConfig,
    topic: &str,
    stop: &AtomicBool,
    timeout: Duration,
) -> Result<Option<Vec<i32>>, CliError> {
    use weir_fetch::reactor::SideEvent;
    use weir_protocol::ResponseBody;
    use weir_protocol::messages::metadata::{MetadataResponse, build_metadata_request};

    let Some(broker) = cfg.bootstrap_servers.first() else {
        return Err(CliError::usage("bootstrap.servers is empty"));
    };
    let reactor = consumer.reactor();
    let side = reactor.open_side(&broker.host, broker.port);
    let deadline = Instant::now() + timeout;
    let mut last_problem = format!("no answer from {broker}");
    let mut in_flight = false;
    let mut retry_at: Option<Instant> = None;
    loop {
        if stop.load(Ordering::Acquire) {
            return Ok(None);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(CliError::runtime(format!(
                "could not list the partitions of `{topic}` within default.api.timeout.ms ({} ms): {last_problem}; check -b, or give the partitions with -p",
                timeout.as_millis()
            )));
        }
        let ready = reactor.side_versions(side).is_some();
        if ready && !in_flight && retry_at.is_none_or(|t| now >= t) {
            let version = reactor
                .side_versions(side)
                .map(|t| t.negotiate::<kafka_protocol::messages::MetadataRequest, MetadataResponse<'static>>())
                .transpose()
                .map_err(|e| CliError::runtime(format!("cannot list partitions: {e}")))?
                .unwrap_or(0);
            let req = build_metadata_request(version, Some(&[topic]), false);
            reactor.side_send(side, version, &req).map_err(fetch_err)?;
            in_flight = true;
        }
        reactor
            .run_once(Duration::from_millis(50).min(deadline - now))
            .map_err(fetch_err)?;
        let events: Vec<SideEvent> = reactor.take_side_events().collect();
        for ev in events {
            match ev {
                SideEvent::Response {
                    side: s,
                    req,
                    body_offset,
                    frame,
                } if s == side => {
                    in_flight = false;
                    let body = frame.bytes().get(body_offset..).unwrap_or_default();
                    let resp =
                        MetadataResponse::decode_body(body, req.api_version).map_err(|e| {
                            CliError::runtime(format!("bad Metadata response from {broker}: {e}"))
                        })?;
                    let Some(t) = resp.topics.iter().find(|t| t.name == Some(topic)) else {
                        last_problem = "the broker did not list the topic".to_owned();
                        retry_at = Some(
                            Instant::now() + Duration::from_millis(u64::from(cfg.retry_backoff_ms)),
                        );
                        continue;
                    };
                    if t.error_code == weir_protocol::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION {
                        return Err(CliError::runtime(format!(
                            "topic `{topic}` does not exist on the cluster at {broker}; check the name (-t)"
                        )));
                    }
                    if !t.error_code.is_ok() {
                        if t.error_code.is_retriable() {
                            last_problem = format!("the broker answered {}", t.error_code);
                            retry_at = Some(
                                Instant::now()
                                    + Duration::from_millis(u64::from(cfg.retry_backoff_ms)),
                            );
                            continue;
                        }
                        return Err(CliError::runtime(format!(
                            "cannot list the partitions of `{topic}`: the broker answered {}",
                            t.error_code
                        )));
                    }
                    let mut parts: Vec<i32> =
                        t.partitions.iter().map(|p| p.partition_index).collect();
                    parts.sort_unstable();
                    parts.dedup();
                    if parts.is_empty() {
                        return Err(CliError::runtime(format!(
                            "topic `{topic}` has no partitions"
                        )));
                    }
                    return Ok(Some(parts));
                }
                SideEvent::Closed { side: s, .. } if s == side => {
                    in_flight = false;
                    last_problem = format!("the connection to {broker} closed");
                }
                _ => {}
            }
        }
    }
}
