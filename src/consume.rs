//! `weir consume -t TOPIC [-p PARTITION...]`: manual assignment, as the record
//! [`Source`] of the consume pipeline ([`crate::output`]).
//!
//! Without `-p`, every partition the topic has when weir starts, found with a Metadata
//! request on a side connection of the reactor. Records come from
//! [`weir_fetch::Consumer::poll`] on the caller's thread. With `--sink`, a partition
//! the sink holds resumes at the sink's position, whatever `-o` says.
//!
//! Not available yet, with a message saying so: `-o stored` without `-G`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use weir_consumer::config::ConsumerConfig;
use weir_fetch::{Consumer, ConsumerRecord, StartAt};

use crate::cli::{CliError, ConsumePlan, StartOffset};
use crate::output::{self, SharedStage, Source, Stage, Status, StopReason, Summary, lock};

/// Runs `weir consume -t TOPIC` until `-e`, `-c`, a signal (`stop`), or an error.
pub fn run(plan: &ConsumePlan, stop: &AtomicBool) -> Result<Summary, CliError> {
    if plan.start == StartOffset::Stored {
        return Err(CliError::runtime(
            "-o stored without -G is not available yet: reading a group's committed offsets for manually assigned partitions is not wired; use -G GROUP TOPIC..., or -o beginning|end|N|-N|s@TIMESTAMP_MS",
        ));
    }
    let started = Instant::now();
    let (metrics, _server) = output::start_metrics(plan)?;
    let stage = Stage::open(plan, Arc::clone(&metrics))?;
    let resume = stage.resume_positions();
    let stage = Arc::new(std::sync::Mutex::new(stage));

    let mut consumer = Consumer::new(plan.fetch_config()).map_err(|e| plan.fetch_error(e))?;
    let topic = plan.topics.first().cloned().unwrap_or_default();
    let partitions = if plan.partitions.is_empty() {
        // kcat's default: every partition of the topic.
        let timeout = Duration::from_millis(u64::from(plan.config.default_api_timeout_ms));
        let found = discover_partitions(&mut consumer, plan, &topic, stop, timeout)?;
        let Some(found) = found else {
            // SIGTERM or SIGINT before anything was assigned: nothing was read, so there
            // is nothing to flush or commit, and the stop is as clean as any other.
            lock(&stage).close()?;
            return Ok(Summary {
                elapsed: started.elapsed(),
                reason: StopReason::Signal,
                ..Summary::default()
            });
        };
        found
    } else {
        plan.partitions.clone()
    };
    let mut source = Manual {
        plan,
        consumer,
        from_end: BTreeMap::new(),
        parts: Vec::new(),
        failed: std::collections::BTreeSet::new(),
        metrics: Arc::clone(&metrics),
    };
    for &p in &partitions {
        let start = match resume.get(&(topic.clone(), p)) {
            Some(&next) => StartAt::Offset(next),
            None => match plan.start {
                StartOffset::Beginning => StartAt::Earliest,
                StartOffset::Stored => StartAt::Latest,
                // `end` is `-0`: resolved from a fetch response's high watermark, as
                // -N is (tansu's ListOffsets(latest) can answer an offset inside the
                // last batch, so `-o end -e` printed old records or never reached the
                // end).
                StartOffset::End => {
                    source.from_end.insert((topic.clone(), p), 0);
                    StartAt::Latest
                }
                StartOffset::Absolute(o) => StartAt::Offset(o),
                StartOffset::Timestamp(t) => StartAt::Timestamp(t),
                StartOffset::FromEnd(n) => {
                    source.from_end.insert((topic.clone(), p), n);
                    StartAt::Latest
                }
            },
        };
        source.consumer.assign(&topic, p, start);
        source.parts.push((topic.clone(), p));
    }
    output::drive(plan, source, stage, &metrics, stop)
}

/// Manually assigned partitions as a record source.
struct Manual<'p> {
    plan: &'p ConsumePlan,
    consumer: Consumer,
    /// Partitions whose `-o -N` start waits for the end offset.
    from_end: BTreeMap<(String, i32), i64>,
    parts: Vec<(String, i32)>,
    /// `-E`: partitions left after an error of their own (counted as done).
    failed: std::collections::BTreeSet<(String, i32)>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Source for Manual<'_> {
    fn starting(&self) -> &'static str {
        "connecting"
    }

    fn poll(&mut self, stage: &SharedStage, timeout: Duration) -> Result<(), CliError> {
        let now = Instant::now();
        // One lock for the whole poll: nothing else takes the stage in manual mode.
        let mut st = lock(stage);
        let from_end = &self.from_end;
        let handler = |rec: &ConsumerRecord<'_>| {
            // A partition waiting for its -N start shows nothing yet (past -c the
            // stage still hears of it, to keep the sink from advancing over it).
            let waiting = !from_end.is_empty()
                && from_end.contains_key(&(rec.topic.to_owned(), rec.partition));
            if !waiting || st.count_reached() {
                st.deliver(rec, now);
            }
        };
        match self.consumer.poll(timeout, handler) {
            Ok(_) => Ok(()),
            Err(e) if self.plan.keep_going && e.partition().is_some() => {
                if let Some((t, p)) = e.partition() {
                    let key = (t.to_owned(), p);
                    if self.failed.insert(key.clone()) {
                        let _ = self.consumer.pause(&key.0, key.1);
                        eprintln!(
                            "weir: warning: {e}; -E: {t}-{p} is left, the other partitions go on"
                        );
                    }
                }
                Ok(())
            }
            Err(e) => Err(self.plan.fetch_error(e)),
        }
    }

    fn after_poll(&mut self, stage: &mut Stage) -> Result<Status, CliError> {
        // -o -N: once a fetch response has told the end of the log (position plus
        // lag: the high watermark, or the LSO under read_committed), seek N records
        // back from it. The start offset from ListOffsets(latest) is not used for
        // this: some brokers (tansu) answer it with the last batch's base offset.
        let c = &self.consumer;
        let ready: Vec<((String, i32), i64)> = self
            .from_end
            .iter()
            .filter_map(|((t, p), &n)| {
                let end = c.position(t, *p)? + c.lag(t, *p)?;
                Some(((t.clone(), *p), (end - n).max(0)))
            })
            .collect();
        for ((t, p), target) in ready {
            self.consumer
                .seek(&t, p, StartAt::Offset(target))
                .map_err(|e| self.plan.fetch_error(e))?;
            self.from_end.remove(&(t, p));
        }
        let mut status = Status {
            all_at_end: self.from_end.is_empty() && !self.parts.is_empty(),
            partitions: self.parts.len() - self.failed.len(),
            seen: self.parts.len(),
            lag: 0,
        };
        for (t, p) in &self.parts {
            if self.failed.contains(&(t.clone(), *p)) {
                continue;
            }
            match self.consumer.lag(t, *p) {
                Some(lag) => {
                    self.metrics.set_lag(t, *p, lag);
                    status.lag += lag.max(0);
                    status.all_at_end &= lag <= 0;
                }
                None => status.all_at_end = false,
            }
            if let Some(pos) = self.consumer.position(t, *p) {
                stage.advance(t, *p, pos);
            }
        }
        Ok(status)
    }

    fn fetch_metrics(&self) -> Arc<weir_fetch::metrics::Metrics> {
        self.consumer.metrics_handle()
    }
}

/// Lists `topic`'s partitions with a Metadata request on a side connection to the
/// first bootstrap broker, retrying retriable errors until `timeout`; `None` when
/// `stop` is set first.
fn discover_partitions(
    consumer: &mut Consumer,
    plan: &ConsumePlan,
    topic: &str,
    stop: &AtomicBool,
    timeout: Duration,
) -> Result<Option<Vec<i32>>, CliError> {
    use weir_fetch::side::{SideOutcome, SideRequests};
    use weir_protocol::ResponseBody;
    use weir_protocol::messages::metadata::{MetadataResponse, build_metadata_request};

    let cfg: &ConsumerConfig = &plan.config;
    let fetch_err = |e| plan.fetch_error(e);
    let Some(broker) = cfg.bootstrap_servers.first() else {
        return Err(CliError::usage("bootstrap.servers is empty"));
    };
    let reactor = consumer.reactor();
    let mut sides: SideRequests<()> = SideRequests::new();
    let side = sides.open(reactor, &broker.host, broker.port);
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
        let ready = sides.is_ready(side);
        if ready && !in_flight && retry_at.is_none_or(|t| now >= t) {
            let version = sides
                .versions(reactor, side)
                .map(|t| t.negotiate::<kafka_protocol::messages::MetadataRequest, MetadataResponse<'static>>())
                .transpose()
                .map_err(|e| CliError::runtime(format!("cannot list partitions: {e}")))?
                .unwrap_or(0);
            let req = build_metadata_request(version, Some(&[topic]), false);
            sides
                .send(reactor, side, version, &req, None, ())
                .map_err(fetch_err)?;
            in_flight = true;
        }
        reactor
            .run_once(Duration::from_millis(50).min(deadline - now))
            .map_err(fetch_err)?;
        // Settings the brokers refuse (credentials, the security protocol) do not get
        // better by waiting; anything else the fetch path reports is retried.
        while let Some(e) = reactor.pop_error() {
            if e.is_settings() {
                return Err(fetch_err(e));
            }
            last_problem = e.to_string();
        }
        for outcome in sides.poll(reactor) {
            match outcome {
                SideOutcome::Answer {
                    api_version,
                    body_offset,
                    frame,
                    ..
                } => {
                    in_flight = false;
                    let body = frame.bytes().get(body_offset..).unwrap_or_default();
                    let resp = MetadataResponse::decode_body(body, api_version).map_err(|e| {
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
                SideOutcome::Closed { .. } => {
                    in_flight = false;
                    last_problem = format!("the connection to {broker} closed");
                }
                SideOutcome::Ready { .. } | SideOutcome::Lost { .. } => {}
            }
        }
    }
}
