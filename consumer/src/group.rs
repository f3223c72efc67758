//! Group mode: a [`GroupConsumer`] joins the fetch reactor (weir-fetch) and the group
//! membership state machine (weir-coordinator) on the caller's thread.
//!
//! One thread, no hidden threads: [`GroupConsumer::poll`] runs the reactor and the
//! member together, so heartbeats, commits and rebalances progress while `poll` runs
//! and the handler is not running. Each `poll` also counts as the application's poll
//! for `max.poll.interval.ms`.
//!
//! The group's requests go over the reactor's side connections (one to the first
//! bootstrap broker for FindCoordinator and Metadata, one per coordinator address),
//! never over fetch connections, so a long-polling Fetch cannot delay a heartbeat.
//!
//! Offsets: a record counts as processed when the handler returned for it; commits
//! (`enable.auto.commit`, [`GroupConsumer::commit_sync`],
//! [`GroupConsumer::commit_async`], and the final commit on revoke and close) only
//! ever commit processed offsets, so delivery is at least once, and exactly once
//! across a clean close and restart.
//!
//! Rebalances: revoked partitions stop fetching at once (fetched but undelivered data
//! is dropped; it is fetched again by the next owner from the committed offset), the
//! [`RebalanceListener`] runs, the processed offsets are committed, and only then is
//! the revocation acknowledged to the group. Assigned partitions start at the
//! committed offset, or per `auto.offset.reset` when there is none.
//!
//! Two ways to consume, as in weir-fetch: [`GroupConsumer::poll`] on the caller's
//! thread, or [`GroupConsumer::run_workers`] with pinned worker threads while the
//! calling thread drives the reactor and the group.
//!
//! The leader re-reads the subscribed topics' partition counts every
//! `metadata.max.age.ms` (of the fetch config); a change rebalances the group.
//!
//! Not supported yet: topic patterns.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use weir_coordinator::{
    AutoOffsetReset, CommitError, CommitId, CommitMode, CoordinatorAddr, Event, GroupConfig,
    GroupError, GroupMember, GroupVersions, Outgoing, Phase, Request, RequestId, Response,
    StartPosition, Target, TopicPartition,
};
use weir_fetch::side::{SideOutcome, SideRequests};
use weir_fetch::workers::ChunkWorkers;
use weir_fetch::{
    ChunkError, ChunkOutcome, Consumer, ConsumerRecord, FetchConfig, FetchError, SideId, StartAt,
};
use weir_protocol::ResponseBody;
use weir_protocol::messages::metadata::{MetadataResponse, build_metadata_request};

/// The application's view of rebalances. Every method defaults to doing nothing.
///
/// Called on the thread that calls [`GroupConsumer::poll`] (or `commit_sync`,
/// `close`), between handler calls, never during one.
pub trait RebalanceListener {
    /// These partitions are being taken away; their processed offsets are committed
    /// right after this returns.
    fn on_partitions_revoked(&mut self, _partitions: &[TopicPartition]) {}
    /// These partitions are now this member's (with cooperative rebalancing, only the
    /// newly added ones).
    fn on_partitions_assigned(&mut self, _partitions: &[TopicPartition]) {}
    /// These partitions were lost (session or poll timeout, fenced generation): another
    /// member may own them already, so nothing is committed for them.
    fn on_partitions_lost(&mut self, _partitions: &[TopicPartition]) {}
}

/// A listener that does nothing.
#[derive(Debug, Default)]
pub struct NoopListener;

impl RebalanceListener for NoopListener {}

/// Errors of group mode.
#[derive(Debug)]
#[non_exhaustive]
pub enum GroupConsumerError {
    /// The fetch layer failed (see [`FetchError`]).
    Fetch(FetchError),
    /// The member failed and stopped (fenced, refused by the broker, bad config).
    Group(GroupError),
    /// A commit failed.
    Commit(CommitError),
    /// The configuration is unusable; the message says what to change.
    Config(String),
    /// `auto.offset.reset=none` and the group has no committed offset for this
    /// partition.
    NoOffset(TopicPartition),
    /// The consumer was closed.
    Closed,
}

impl fmt::Display for GroupConsumerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fetch(e) => write!(f, "{e}"),
            Self::Group(e) => write!(f, "group membership failed: {e}"),
            Self::Commit(e) => write!(f, "commit failed: {e}"),
            Self::Config(m) => write!(f, "invalid configuration: {m}"),
            Self::NoOffset(tp) => write!(
                f,
                "no committed offset for {tp} and auto.offset.reset is none: commit an offset \
                 for the group or set auto.offset.reset to earliest or latest"
            ),
            Self::Closed => write!(f, "the consumer is closed"),
        }
    }
}

impl std::error::Error for GroupConsumerError {}

impl From<FetchError> for GroupConsumerError {
    fn from(e: FetchError) -> Self {
        Self::Fetch(e)
    }
}

type CommitCallback = Box<dyn FnOnce(Result<(), CommitError>) + Send>;

/// What a request on a side connection was for.
#[derive(Debug, Clone, Copy)]
enum Purpose {
    Group(RequestId),
    Metadata,
    /// Every topic's name, for a pattern subscription.
    Pattern,
    /// Every topic's id and name, for the ids of a `group.protocol=consumer`
    /// assignment.
    TopicIds,
}

/// A pattern subscription: the topics it matches are resolved from every topic's
/// metadata, at the start and every `metadata.max.age.ms`.
struct Pattern {
    re: regex_lite::Regex,
    exclude_internal: bool,
    next_refresh: Instant,
    in_flight: bool,
}

/// How many distinct fetch-layer errors wait for the application at most (see
/// `GroupConsumer::take_fetch_errors`); more are dropped (logged at debug level).
const MAX_FETCH_ERRORS: usize = 16;

/// How often a subscribed topic that does not exist is warned about again.
const MISSING_TOPIC_WARN_EVERY: Duration = Duration::from_secs(30);

/// A consumer-group member that fetches what the group assigns it. See the module docs.
pub struct GroupConsumer {
    consumer: Consumer,
    member: GroupMember,
    group_cfg: GroupConfig,
    bootstrap: SideId,
    /// Side connections (bootstrap and coordinators, by address, reused after
    /// rediscovery) and what each request on them is for.
    sides: SideRequests<Purpose>,
    coordinator: Option<(CoordinatorAddr, SideId)>,
    /// Requests waiting for their connection to become ready.
    waiting: VecDeque<Outgoing>,
    versions_set: bool,
    metadata_wanted: Option<Vec<String>>,
    /// `subscribe_pattern`: the pattern, resolved against all topics.
    pattern: Option<Pattern>,
    metadata_in_flight: bool,
    /// The subscription's Metadata is not asked again before this (after an
    /// undecodable or retriable answer).
    metadata_not_before: Instant,
    /// Failed subscription Metadata answers in a row, for the exponential backoff.
    metadata_failures: u32,
    /// When a subscribed topic that does not exist was last warned about.
    missing_warned: Option<Instant>,
    /// How long each rebalance completed since the last
    /// [`take_rebalance_durations`](GroupConsumer::take_rebalance_durations) took.
    rebalance_durations: Vec<Duration>,
    listener: Box<dyn RebalanceListener + Send>,
    callbacks: HashMap<CommitId, CommitCallback>,
    completed: HashMap<CommitId, Result<(), CommitError>>,
    /// Every sync commit in flight (their results are kept for the waiter).
    sync_waiting: BTreeSet<CommitId>,
    /// The commits sent when partitions were revoked (manual commit mode): a final
    /// failure is reported through `poll`.
    revoke_commits: BTreeSet<CommitId>,
    errors: VecDeque<GroupConsumerError>,
    /// Errors of the fetch layer taken from the reactor on every turn (see
    /// [`take_fetch_errors`](Self::take_fetch_errors)), handed out by `poll`.
    fetch_errors: VecDeque<FetchError>,
    closed: bool,
    /// Per poll: the highest offset handled per partition (topic, partition, offset).
    processed: Vec<(String, i32, i64)>,
    /// Owned partitions of which the handler refused a record (`poll_accepting`):
    /// their commits stop at the last accepted record, never at the position.
    refused: HashSet<TopicPartition>,
    /// Revoked partitions whose revocation waits for workers to finish their chunks.
    pending_revoke: Vec<TopicPartition>,
    /// Worker mode: chunks handed to workers and not reported back, by partition index.
    outstanding: HashMap<usize, usize>,
    /// The subscription (the leader refreshes its partition counts).
    topics: Vec<String>,
    /// When the leader next refreshes partition counts (`metadata.max.age.ms`).
    next_metadata_refresh: Instant,
    /// `group.protocol=consumer`: topic ids of the assignment whose names are not
    /// known yet, asked with a Metadata request for all topics.
    ids_wanted: BTreeSet<[u8; 16]>,
    ids_in_flight: bool,
    ids_not_before: Instant,
    ids_failures: u32,
}

// GroupConsumer moves between threads (it is used from one at a time).
const _: () = {
    const fn send<T: Send>() {}
    send::<GroupConsumer>();
};

impl fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupConsumer")
            .field("group_id", &self.group_cfg.group_id)
            .field("phase", &self.member.phase())
            .field("assignment", &self.member.assignment())
            .finish()
    }
}

impl GroupConsumer {
    /// A member of `group.group_id` fetching with `fetch`. Nothing connects until the
    /// first [`poll`](Self::poll). The fetch config's `client.id` is used for the
    /// group when the group config has none.
    pub fn new(fetch: FetchConfig, mut group: GroupConfig) -> Result<Self, GroupConsumerError> {
        if group.client_id.is_empty() {
            group.client_id = fetch.client_id.clone();
        }
        group
            .validate()
            .map_err(|e| GroupConsumerError::Config(e.to_string()))?;
        let Some(first) = fetch.bootstrap_servers.first().cloned() else {
            return Err(GroupConsumerError::Config(
                "bootstrap.servers is empty: give at least one host:port".into(),
            ));
        };
        let (host, port) = weir_fetch::config::split_host_port(&first).ok_or_else(|| {
            GroupConsumerError::Config(format!(
                "bad bootstrap server {first:?}: expected host:port"
            ))
        })?;
        // Jitter, and under group.protocol=consumer the member id, come from this
        // seed: two processes must not share it. The standard library seeds each
        // RandomState from the OS.
        {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(group.rng_seed);
            group.rng_seed = h.finish();
        }
        let mut consumer = Consumer::new(fetch)?;
        let mut sides = SideRequests::new();
        let bootstrap = sides.open(consumer.reactor(), &host, port);
        let member = GroupMember::new(group.clone(), Instant::now())
            .map_err(|e| GroupConsumerError::Config(e.to_string()))?;
        Ok(Self {
            consumer,
            member,
            group_cfg: group,
            bootstrap,
            sides,
            coordinator: None,
            waiting: VecDeque::new(),
            versions_set: false,
            metadata_wanted: None,
            pattern: None,
            metadata_in_flight: false,
            metadata_not_before: Instant::now(),
            metadata_failures: 0,
            missing_warned: None,
            rebalance_durations: Vec::new(),
            listener: Box::new(NoopListener),
            callbacks: HashMap::new(),
            completed: HashMap::new(),
            sync_waiting: BTreeSet::new(),
            revoke_commits: BTreeSet::new(),
            errors: VecDeque::new(),
            fetch_errors: VecDeque::new(),
            closed: false,
            processed: Vec::new(),
            refused: HashSet::new(),
            pending_revoke: Vec::new(),
            outstanding: HashMap::new(),
            topics: Vec::new(),
            next_metadata_refresh: Instant::now(),
            ids_wanted: BTreeSet::new(),
            ids_in_flight: false,
            ids_not_before: Instant::now(),
            ids_failures: 0,
        })
    }

    /// Set the rebalance listener (replaces the previous one).
    pub fn set_listener(&mut self, listener: impl RebalanceListener + Send + 'static) {
        self.listener = Box::new(listener);
    }

    /// Subscribe to exactly these topics (replacing the previous subscription); the
    /// group rebalances.
    pub fn subscribe<I, S>(&mut self, topics: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let topics: Vec<String> = topics.into_iter().map(Into::into).collect();
        self.pattern = None;
        self.topics = topics.clone();
        self.member.subscribe(Instant::now(), topics);
    }

    /// Subscribe to every topic whose whole name matches `pattern` (Java's
    /// `subscribe(Pattern)`, client-side as the classic protocol has it): the names are
    /// resolved from all topics' metadata now and every `metadata.max.age.ms`, so a
    /// topic created later that matches is picked up (a rebalance follows each
    /// change). With `exclude_internal` (`exclude.internal.topics`, default true)
    /// Kafka's internal topics never match.
    ///
    /// The pattern must match a whole topic name (as Java's `Pattern.matches`). A
    /// pattern that does not compile is returned as an error naming why.
    ///
    /// Under `group.protocol=consumer` the broker evaluates the pattern (KIP-848's
    /// `SubscribedTopicRegex`, RE2J syntax, whole names, internal topics never
    /// matched) and re-evaluates it as topics come and go; `exclude_internal` does not
    /// apply there.
    pub fn subscribe_pattern(
        &mut self,
        pattern: &str,
        exclude_internal: bool,
    ) -> Result<(), GroupConsumerError> {
        let re = regex_lite::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
            GroupConsumerError::Config(format!(
                "the topic pattern {pattern} is not a regular expression ({e})"
            ))
        })?;
        if self.group_cfg.group_protocol == weir_coordinator::GroupProtocol::Consumer {
            self.pattern = None;
            self.topics.clear();
            self.member.subscribe_regex(Instant::now(), pattern);
            return Ok(());
        }
        self.pattern = Some(Pattern {
            re,
            exclude_internal,
            next_refresh: Instant::now(),
            in_flight: false,
        });
        Ok(())
    }

    /// The partitions this member owns now.
    pub fn assignment(&self) -> &BTreeSet<TopicPartition> {
        self.member.assignment()
    }

    /// The member's phase (joining, stable, revoking...).
    pub fn phase(&self) -> Phase {
        self.member.phase()
    }

    /// The durations of the rebalances completed since the last call, each from its
    /// first JoinGroup to the assignment (for a rebalance-duration histogram).
    pub fn take_rebalance_durations(&mut self) -> Vec<Duration> {
        std::mem::take(&mut self.rebalance_durations)
    }

    /// The member id the broker gave (empty before the first join).
    pub fn member_id(&self) -> &str {
        self.member.member_id()
    }

    /// The current generation (-1 outside a generation).
    pub fn generation(&self) -> i32 {
        self.member.generation()
    }

    /// Whether this member leads the current generation (it runs the assignor).
    pub fn is_leader(&self) -> bool {
        self.member.is_leader()
    }

    /// The last committed offset this member knows for `tp`.
    pub fn committed(&self, tp: &TopicPartition) -> Option<i64> {
        self.member.committed(tp)
    }

    /// The offset of the next record the handler will see for an owned partition.
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        let tp = TopicPartition::new(topic, partition);
        if !self.member.assignment().contains(&tp) {
            return None;
        }
        self.consumer.position(topic, partition)
    }

    /// Move an owned partition to `offset`; records already fetched for it are
    /// dropped. For applications that keep their own positions (weir's `--sink`
    /// resumes at its checkpoint when that is ahead of the group's commit). Commits
    /// of the partition follow the records handled from there.
    pub fn seek(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<(), GroupConsumerError> {
        let tp = TopicPartition::new(topic, partition);
        if !self.member.assignment().contains(&tp) {
            return Err(GroupConsumerError::Config(format!(
                "cannot seek {tp}: it is not assigned to this member"
            )));
        }
        Ok(self
            .consumer
            .seek(topic, partition, StartAt::Offset(offset))?)
    }

    /// Count every record of an owned partition below `next_offset` as processed (the
    /// next commit of it is at least `next_offset`), for records the application
    /// holds already and skips with [`seek`](Self::seek).
    pub fn mark_processed(&mut self, topic: &str, partition: i32, next_offset: i64) {
        if next_offset > 0 {
            let tp = TopicPartition::new(topic, partition);
            self.member.record_processed(&tp, next_offset - 1, None);
        }
    }

    /// The fetch consumer underneath (metrics, lag).
    pub fn fetch_consumer(&self) -> &Consumer {
        &self.consumer
    }

    /// Drive the group and the fetcher for at most `timeout`, handing fetched records
    /// of owned partitions to `handler` in order per partition. Returns the number of
    /// records handled; returns as soon as some were.
    ///
    /// Errors are returned one per call, as soon as they happen, whether or not any
    /// partition has records: the member's ([`GroupConsumerError::Group`],
    /// [`GroupConsumerError::NoOffset`]) and the fetch layer's
    /// ([`GroupConsumerError::Fetch`]: an authorization failure, an out-of-range
    /// offset with `auto.offset.reset=none` (that partition is paused), a response
    /// too large for the ring, an undecodable answer (the connection is reset and
    /// the request retried)). The other partitions keep going; the caller decides
    /// which errors end its run.
    pub fn poll<F>(
        &mut self,
        timeout: Duration,
        mut handler: F,
    ) -> Result<usize, GroupConsumerError>
    where
        F: FnMut(&ConsumerRecord<'_>),
    {
        self.poll_accepting(timeout, |rec| {
            handler(rec);
            true
        })
    }

    /// [`poll`](Self::poll) where a record counts as processed (committable) only
    /// when `handler` returns `true`. For an application that stops partway through
    /// what was fetched (weir's `-c`): once it refuses a record of a partition it must
    /// refuse the rest of that partition, since the commit is the record after the
    /// highest accepted one. Refused records are not handed to this member again (its
    /// position has moved on); the next owner reads them from the commit.
    pub fn poll_accepting<F>(
        &mut self,
        timeout: Duration,
        mut handler: F,
    ) -> Result<usize, GroupConsumerError>
    where
        F: FnMut(&ConsumerRecord<'_>) -> bool,
    {
        if self.closed {
            return Err(GroupConsumerError::Closed);
        }
        let deadline = Instant::now() + timeout;
        self.member.poll(Instant::now());
        loop {
            self.drive()?;
            if let Some(e) = self.next_error() {
                return Err(e);
            }
            if self.consumer.reactor().has_deliverable() {
                let processed = &mut self.processed;
                let refused = &mut self.refused;
                processed.clear();
                let n = self.consumer.poll(Duration::ZERO, |rec| {
                    if handler(rec) {
                        note_processed(processed, rec);
                    } else if !refused
                        .iter()
                        .any(|tp| tp.partition == rec.partition && *tp.topic == *rec.topic)
                    {
                        refused.insert(TopicPartition::new(rec.topic, rec.partition));
                    }
                });
                self.flush_processed();
                self.processed_to_positions();
                let n = n?;
                if n > 0 {
                    // Commits and heartbeats due now go out before returning.
                    self.drive()?;
                    return Ok(n);
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(0);
            }
            self.turn(deadline)?;
        }
    }

    /// Consume with `workers` threads until `stop` is set or an error occurs, driving
    /// the group on this thread meanwhile (heartbeats, commits, rebalances).
    ///
    /// As [`weir_fetch::Consumer::run_workers`]: `make(i)` builds worker `i`'s handler,
    /// each partition is handled in order by one worker (the one its assignment order
    /// picks). A record counts as processed once its worker finished the chunk holding
    /// it. A revocation waits until the workers finished every chunk of the revoked
    /// partitions already handed to them (chunks still queued are dropped), then runs
    /// the listener, commits and acknowledges. Every loop turn counts as a poll for
    /// `max.poll.interval.ms`. On return every chunk handed to a worker has been
    /// processed and recorded; call [`close`](Self::close) to leave the group.
    pub fn run_workers<M, H>(
        &mut self,
        workers: usize,
        pin: bool,
        mut make: M,
        stop: &AtomicBool,
    ) -> Result<(), GroupConsumerError>
    where
        M: FnMut(usize) -> H,
        H: FnMut(&ConsumerRecord<'_>) + Send + 'static,
    {
        if self.closed {
            return Err(GroupConsumerError::Closed);
        }
        let pool = ChunkWorkers::spawn(self.consumer.reactor(), workers, pin, &mut make)
            .map_err(|e| GroupConsumerError::Fetch(FetchError::Io(e)))?;
        let mut result = Ok(());
        loop {
            let stopping = stop.load(Ordering::Acquire) || result.is_err();
            if stopping && self.outstanding.values().all(|n| *n == 0) {
                break;
            }
            if !stopping {
                self.member.poll(Instant::now());
            }
            let far = Instant::now() + Duration::from_millis(100);
            if let Err(e) = self.drive().and_then(|()| self.turn(far)) {
                result = Err(e);
            }
            for (i, g, r) in pool.progress() {
                self.on_worker_progress(i, g, r);
            }
            self.finish_revoke(Instant::now());
            if let Some(e) = self.next_error() {
                result = Err(e);
            }
            if stopping {
                continue;
            }
            let outstanding = &mut self.outstanding;
            let dispatched = pool.dispatch(self.consumer.reactor(), |i| {
                *outstanding.entry(i).or_default() += 1;
            });
            if dispatched.is_err() && result.is_ok() {
                result = Err(GroupConsumerError::Config(
                    "a worker thread died (its handler panicked)".into(),
                ));
            }
            if result.is_err() {
                // Chunks of a dead worker never report back: stop waiting for them.
                if pool.any_dead() {
                    self.outstanding.clear();
                }
            }
        }
        // Progress reported while shutting down.
        let (warnings, progress) = pool.shutdown();
        for w in warnings {
            log::warn!("{w}");
        }
        for (i, g, r) in progress {
            self.on_worker_progress(i, g, r);
        }
        self.outstanding.clear();
        self.finish_revoke(Instant::now());
        result
    }

    fn on_worker_progress(
        &mut self,
        i: usize,
        generation: u64,
        res: Result<ChunkOutcome, ChunkError>,
    ) {
        if let Some(n) = self.outstanding.get_mut(&i) {
            *n = n.saturating_sub(1);
        }
        let reactor = self.consumer.reactor();
        if let Some(p) = reactor.partitions().get(i) {
            // Handled records count as processed even when the partition was paused
            // (revoked) meanwhile: they were handled, and the revocation waits for them.
            let next = match &res {
                Ok(o) if !o.stale && o.records > 0 => Some(o.next_offset),
                Err(e) if e.partial.records > 0 => Some(e.partial.next_offset),
                _ => None,
            };
            if let Some(next) = next {
                let tp = TopicPartition::new(p.topic.as_ref(), p.partition);
                self.member.record_processed(&tp, next - 1, None);
            }
        }
        reactor.on_processed(i, generation, res);
    }

    /// Commit the processed offsets and wait for the outcome (retrying retriable
    /// errors) for at most `default.api.timeout.ms`-like `timeout`.
    pub fn commit_sync(&mut self, timeout: Duration) -> Result<(), GroupConsumerError> {
        let now = Instant::now();
        let Some(id) = self
            .member
            .commit_processed(now, CommitMode::Sync { timeout })
        else {
            return Ok(());
        };
        self.wait_commit(id, now + timeout + Duration::from_secs(1))
    }

    /// Commit the processed offsets without waiting; `callback` gets the outcome
    /// during a later `poll`, `commit_sync` or `close`. With nothing new to commit it
    /// is called at once with `Ok`.
    pub fn commit_async(
        &mut self,
        callback: impl FnOnce(Result<(), CommitError>) + Send + 'static,
    ) {
        match self
            .member
            .commit_processed(Instant::now(), CommitMode::Async)
        {
            Some(id) => {
                self.callbacks.insert(id, Box::new(callback));
            }
            None => callback(Ok(())),
        }
    }

    fn wait_commit(&mut self, id: CommitId, until: Instant) -> Result<(), GroupConsumerError> {
        self.sync_waiting.insert(id);
        let res = loop {
            if let Some(r) = self.completed.remove(&id) {
                break r.map_err(GroupConsumerError::Commit);
            }
            if let Some(e) = self.errors.pop_front() {
                break Err(e);
            }
            if Instant::now() >= until {
                break Err(GroupConsumerError::Commit(CommitError::TimedOut));
            }
            if let Err(e) = self.drive().and_then(|()| self.turn(until)) {
                break Err(e);
            }
        };
        self.sync_waiting.remove(&id);
        self.completed.remove(&id);
        res
    }

    /// Leave the group: revoke (listener, final commit of processed offsets), send
    /// LeaveGroup (not for static members, as in Java), and stop. Returns within
    /// `timeout` (plus one reactor turn) whatever the broker does.
    pub fn close(&mut self, timeout: Duration) -> Result<(), GroupConsumerError> {
        if self.closed {
            return Ok(());
        }
        let start = Instant::now();
        let until = start + timeout;
        self.member.close(start, timeout);
        let mut first_err = None;
        while !self.closed && Instant::now() < until {
            if let Err(e) = self.drive().and_then(|()| self.turn(until)) {
                first_err.get_or_insert(e);
                // Keep going: close must still end the membership if it can.
                if matches!(self.member.phase(), Phase::Closed | Phase::Failed) {
                    break;
                }
            }
        }
        self.closed = true;
        // Commit callbacks that will never complete now.
        for (_, cb) in self.callbacks.drain() {
            cb(Err(CommitError::Closed));
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The oldest error to hand to the application: the member's first, then the
    /// fetch layer's.
    fn next_error(&mut self) -> Option<GroupConsumerError> {
        if let Some(e) = self.errors.pop_front() {
            return Some(e);
        }
        self.take_fetch_errors();
        self.fetch_errors.pop_front().map(GroupConsumerError::Fetch)
    }

    /// Moves the reactor's errors into `fetch_errors`, which `poll` hands out.
    ///
    /// Why on every turn and not only when `poll` has records to deliver: the reactor
    /// does not block while its own error queue is non-empty (it expects the caller to
    /// collect them), so errors left there made every turn return at once (a busy
    /// loop) and were never reported when no partition had data. The reactor repeats
    /// an error on every retry (a Metadata or ListOffsets answer the broker keeps
    /// refusing, say), so one already waiting to be reported is not queued again, and
    /// at most [`MAX_FETCH_ERRORS`] are kept: the queue stays bounded however long the
    /// application goes without polling (during `commit_sync` or `close`, say).
    fn take_fetch_errors(&mut self) {
        let reactor = self.consumer.reactor();
        while let Some(e) = reactor.pop_error() {
            let text = e.to_string();
            if self.fetch_errors.len() >= MAX_FETCH_ERRORS
                || self.fetch_errors.iter().any(|q| q.to_string() == text)
            {
                log::debug!("fetch error not queued again: {text}");
                continue;
            }
            self.fetch_errors.push_back(e);
        }
    }

    /// One reactor turn, waiting until I/O, the member's next timer, or `until`.
    fn turn(&mut self, until: Instant) -> Result<(), GroupConsumerError> {
        // Errors left in the reactor would make it return at once (see
        // take_fetch_errors): collect them so the turn can wait.
        self.take_fetch_errors();
        let now = Instant::now();
        let mut wake = until.min(now + Duration::from_millis(100));
        // `drive()` has just run every timer that was due, so a timer still due now is
        // waiting on a connection (no broker reachable yet, a handshake under way), not
        // on time: letting it shorten the wait would spin. The reactor wakes us on IO,
        // and the 100 ms cap retries in any case.
        if let Some(t) = self.member.poll_timeout()
            && t > now
        {
            wake = wake.min(t);
        }
        let wait = wake.saturating_duration_since(now);
        self.consumer.reactor().run_once(wait)?;
        self.side_events();
        Ok(())
    }

    /// Every record below an owned partition's position has been handed to the
    /// handler and accepted (unless it refused one): what lies between the last
    /// record and the position is control records (transaction markers) and aborted
    /// batches, so the commit may pass them, as Java's commits of the position do.
    /// Without this a group on a transactional topic would keep a lag of 1 (the final
    /// marker) forever.
    fn processed_to_positions(&mut self) {
        let owned: Vec<TopicPartition> = self
            .member
            .assignment()
            .iter()
            .filter(|tp| !self.refused.contains(*tp))
            .cloned()
            .collect();
        for tp in owned {
            if let Some(pos) = self.consumer.position(&tp.topic, tp.partition)
                && pos > 0
            {
                self.member.record_processed(&tp, pos - 1, None);
            }
        }
    }

    fn flush_processed(&mut self) {
        for (topic, partition, offset) in self.processed.drain(..) {
            let tp = TopicPartition::new(topic, partition);
            self.member.record_processed(&tp, offset, None);
        }
    }

    /// Timers, outgoing requests and events of the member, until nothing changes.
    fn drive(&mut self) -> Result<(), GroupConsumerError> {
        for _ in 0..16 {
            let now = Instant::now();
            self.side_events();
            self.member.handle_timeout(now);
            let sent = self.transmit(now)?;
            let handled = self.events(now)?;
            if !sent && !handled {
                break;
            }
        }
        Ok(())
    }

    fn transmit(&mut self, now: Instant) -> Result<bool, GroupConsumerError> {
        if !self.versions_set {
            let Some(table) = self.sides.versions(self.consumer.reactor(), self.bootstrap) else {
                return Ok(false);
            };
            let v = GroupVersions::from_table(table)
                .map_err(|e| GroupConsumerError::Fetch(FetchError::Version(e)))?;
            self.member.set_versions(v);
            self.versions_set = true;
        }
        let mut any = false;
        // Requests held for a connection that was not ready, oldest first.
        let held: Vec<Outgoing> = self.waiting.drain(..).collect();
        for o in held {
            any |= self.send(o)?;
        }
        while let Some(o) = self.member.poll_transmit(now) {
            self.send(o)?;
            any = true;
        }
        // The leader re-reads partition counts every metadata.max.age.ms, so a topic
        // that grows is rebalanced onto its new partitions.
        if self.member.is_leader()
            && self.member.phase() == Phase::Stable
            && self.metadata_wanted.is_none()
            && now >= self.next_metadata_refresh
        {
            // Floored like the fetch layer's own refresh, so 0 is not a flood.
            let age = self.consumer.reactor().config().metadata_refresh_interval();
            self.next_metadata_refresh = now + age;
            if !self.topics.is_empty() {
                self.metadata_wanted = Some(self.topics.clone());
            }
        }
        if let Some(p) = &self.pattern
            && !p.in_flight
            && now >= p.next_refresh
            && self.is_ready(self.bootstrap)
        {
            self.send_all_topics_metadata(Purpose::Pattern)?;
            if let Some(p) = self.pattern.as_mut() {
                p.in_flight = true;
            }
            any = true;
        }
        if !self.ids_wanted.is_empty()
            && !self.ids_in_flight
            && now >= self.ids_not_before
            && self.is_ready(self.bootstrap)
        {
            // Topic ids are in Metadata from v10 (Kafka 2.8); every broker that
            // speaks the consumer protocol has them.
            self.send_all_topics_metadata(Purpose::TopicIds)?;
            self.ids_in_flight = true;
            any = true;
        }
        if let Some(topics) = self.metadata_wanted.clone()
            && !self.metadata_in_flight
            && now >= self.metadata_not_before
            && self.is_ready(self.bootstrap)
        {
            let reactor = self.consumer.reactor();
            let version = reactor
                .side_versions(self.bootstrap)
                .map(|t| {
                    t.negotiate::<kafka_protocol::messages::MetadataRequest, MetadataResponse<'static>>()
                })
                .transpose()
                .map_err(|e| GroupConsumerError::Fetch(FetchError::Version(e)))?
                .unwrap_or(0);
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            let req = build_metadata_request(version, Some(&names), false);
            self.sides.send(
                reactor,
                self.bootstrap,
                version,
                &req,
                None,
                Purpose::Metadata,
            )?;
            self.metadata_in_flight = true;
            any = true;
        }
        Ok(any)
    }

    /// Metadata for every topic on the bootstrap connection, at the highest version
    /// both sides speak.
    fn send_all_topics_metadata(&mut self, purpose: Purpose) -> Result<(), GroupConsumerError> {
        let reactor = self.consumer.reactor();
        let version = reactor
            .side_versions(self.bootstrap)
            .map(|t| {
                t.negotiate::<kafka_protocol::messages::MetadataRequest, MetadataResponse<'static>>(
                )
            })
            .transpose()
            .map_err(|e| GroupConsumerError::Fetch(FetchError::Version(e)))?
            .unwrap_or(0);
        let req = build_metadata_request(version, None, false);
        self.sides
            .send(reactor, self.bootstrap, version, &req, None, purpose)?;
        Ok(())
    }

    fn is_ready(&self, side: SideId) -> bool {
        self.sides.is_ready(side)
    }

    /// Send `o` on its connection, or hold it until the connection is ready. Returns
    /// whether it went out.
    fn send(&mut self, o: Outgoing) -> Result<bool, GroupConsumerError> {
        let side = match &o.target {
            Target::AnyBroker => self.bootstrap,
            Target::Coordinator(addr) => {
                if self.member.coordinator() != Some(addr) {
                    // Held for a coordinator the member has since given up.
                    self.member.handle_request_failed(Instant::now(), o.id);
                    return Ok(false);
                }
                self.coordinator_side(addr)
            }
        };
        if !self.is_ready(side) {
            self.waiting.push_back(o);
            return Ok(false);
        }
        let reactor = self.consumer.reactor();
        let v = o.version;
        // The connection waits as long as the member does for this request (JoinGroup:
        // the rebalance timeout plus 5 s), never less than the fetch layer's
        // request.timeout.ms.
        let t = o
            .timeout
            .max(Duration::from_millis(reactor.config().request_timeout_ms));
        let (sides, t, p) = (&mut self.sides, Some(t), Purpose::Group(o.id));
        let res = match &o.request {
            Request::FindCoordinator(r) => sides.send(reactor, side, v, r, t, p),
            Request::JoinGroup(r) => sides.send(reactor, side, v, r, t, p),
            Request::SyncGroup(r) => sides.send(reactor, side, v, r, t, p),
            Request::Heartbeat(r) => sides.send(reactor, side, v, r, t, p),
            Request::LeaveGroup(r) => sides.send(reactor, side, v, r, t, p),
            Request::OffsetCommit(r) => sides.send(reactor, side, v, r, t, p),
            Request::OffsetFetch(r) => sides.send(reactor, side, v, r, t, p),
            Request::ConsumerGroupHeartbeat(r) => sides.send(reactor, side, v, r, t, p),
        };
        match res {
            Ok(_) => Ok(true),
            Err(_) => {
                // The connection went down between the readiness check and the send
                // (or the send queue refused): the machine retries after a failure.
                self.member.handle_request_failed(Instant::now(), o.id);
                Ok(false)
            }
        }
    }

    fn coordinator_side(&mut self, addr: &CoordinatorAddr) -> SideId {
        if let Some((a, s)) = &self.coordinator
            && a == addr
        {
            return *s;
        }
        let port = u16::try_from(addr.port).unwrap_or(0);
        let side = self.sides.open(self.consumer.reactor(), &addr.host, port);
        self.coordinator = Some((addr.clone(), side));
        side
    }

    fn side_events(&mut self) {
        let outcomes = self.sides.poll(self.consumer.reactor());
        let now = Instant::now();
        for o in outcomes {
            match o {
                SideOutcome::Ready { .. } => {}
                SideOutcome::Answer {
                    purpose,
                    api_key,
                    api_version,
                    frame,
                    body_offset,
                    ..
                } => {
                    let body = frame.bytes().get(body_offset..).unwrap_or_default();
                    match purpose {
                        Purpose::Group(id) => match Response::decode(api_key, api_version, body) {
                            Ok(r) => self.member.handle_response(now, id, r),
                            // An undecodable answer is a failed request: the
                            // machine retries or rediscovers.
                            Err(_) => self.member.handle_request_failed(now, id),
                        },
                        Purpose::Metadata => {
                            self.metadata_in_flight = false;
                            self.on_metadata(now, body, api_version);
                        }
                        Purpose::Pattern => self.on_pattern_metadata(now, body, api_version),
                        Purpose::TopicIds => self.on_topic_ids(now, body, api_version),
                    }
                }
                SideOutcome::Lost { purpose, side, .. } => {
                    let is_coord = self.coordinator.as_ref().is_some_and(|(_, s)| *s == side);
                    match purpose {
                        // The coordinator's own loss is one disconnect (below).
                        Purpose::Group(id) if !is_coord => {
                            self.member.handle_request_failed(now, id);
                        }
                        Purpose::Group(_) => {}
                        Purpose::Metadata => self.metadata_in_flight = false,
                        Purpose::TopicIds => {
                            self.ids_in_flight = false;
                            self.ids_retry_later(now);
                        }
                        Purpose::Pattern => {
                            if let Some(p) = self.pattern.as_mut() {
                                p.in_flight = false;
                            }
                        }
                    }
                }
                SideOutcome::Closed { side } => {
                    if self.coordinator.as_ref().is_some_and(|(_, s)| *s == side) {
                        self.member.handle_disconnect(now);
                    }
                }
            }
        }
    }

    /// Every topic's metadata for the pattern: the matching names become the
    /// subscription when they changed.
    fn on_pattern_metadata(&mut self, now: Instant, body: &[u8], version: i16) {
        let age = self.consumer.reactor().config().metadata_refresh_interval();
        let Some(p) = self.pattern.as_mut() else {
            return;
        };
        p.in_flight = false;
        let Ok(resp) = MetadataResponse::decode_body(body, version) else {
            p.next_refresh = now + self.group_cfg.retry_backoff;
            return;
        };
        p.next_refresh = now + age;
        let mut matched: Vec<String> = resp
            .topics
            .iter()
            .filter(|t| t.error_code.is_ok() && !(p.exclude_internal && t.is_internal))
            .filter_map(|t| t.name)
            .filter(|n| p.re.is_match(n))
            .map(str::to_owned)
            .collect();
        matched.sort();
        if matched != self.topics {
            log::info!(
                target: "weir_consumer::group",
                "the pattern {} matches {}",
                p.re.as_str(),
                if matched.is_empty() {
                    "no topic yet".to_owned()
                } else {
                    matched.join(", ")
                }
            );
            self.topics = matched.clone();
            self.member.subscribe(now, matched);
        }
    }

    /// Every topic's id and name: the names the member waits for.
    fn on_topic_ids(&mut self, now: Instant, body: &[u8], version: i16) {
        self.ids_in_flight = false;
        let Ok(resp) = MetadataResponse::decode_body(body, version) else {
            self.ids_retry_later(now);
            return;
        };
        let known: Vec<([u8; 16], String)> = resp
            .topics
            .iter()
            .filter(|t| t.error_code.is_ok() && t.topic_id != [0; 16])
            .filter_map(|t| t.name.map(|n| (t.topic_id, n.to_owned())))
            .collect();
        for (id, _) in &known {
            self.ids_wanted.remove(id);
        }
        self.member.update_topic_ids(now, known);
        if self.ids_wanted.is_empty() {
            self.ids_failures = 0;
        } else {
            // A topic just created may not be in every broker's metadata yet.
            self.ids_retry_later(now);
        }
    }

    /// Ask for the topic ids again after `retry.backoff.ms`, doubling up to
    /// `retry.backoff.max.ms`, for as long as the assignment names them.
    fn ids_retry_later(&mut self, now: Instant) {
        self.ids_failures = self.ids_failures.saturating_add(1);
        let shift = self.ids_failures.saturating_sub(1).min(16);
        let backoff = self.group_cfg.retry_backoff.saturating_mul(1 << shift).min(
            self.group_cfg
                .retry_backoff_max
                .max(self.group_cfg.retry_backoff),
        );
        self.ids_not_before = now + backoff;
    }

    fn on_metadata(&mut self, now: Instant, body: &[u8], version: i16) {
        let Some(wanted) = self.metadata_wanted.clone() else {
            return;
        };
        let Ok(resp) = MetadataResponse::decode_body(body, version) else {
            self.metadata_retry_later(now);
            return;
        };
        let mut counts = Vec::new();
        let mut retry = false;
        let mut missing: Vec<&str> = Vec::new();
        for t in &resp.topics {
            let Some(name) = t.name else { continue };
            if !wanted.iter().any(|w| w == name) {
                continue;
            }
            if t.error_code.is_ok() {
                counts.push((name.to_owned(), t.partitions.len() as i32));
            } else if t.error_code == weir_protocol::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION {
                missing.push(name);
            } else if t.error_code.is_retriable()
                && t.error_code != weir_protocol::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
            {
                retry = true;
            }
        }
        if retry {
            self.metadata_retry_later(now);
            return;
        }
        if missing.is_empty() {
            self.missing_warned = None;
        } else {
            // As Java and kcat: warn (every MISSING_TOPIC_WARN_EVERY at most) and keep
            // waiting; the counts are asked again soon, so the topic is assigned
            // within retry.backoff.max.ms of its creation, not metadata.max.age.ms.
            let quiet = self
                .missing_warned
                .is_some_and(|t| now.saturating_duration_since(t) < MISSING_TOPIC_WARN_EVERY);
            if !quiet {
                log::warn!(
                    target: "weir_consumer::group",
                    "subscribed topic(s) {} do not exist (UNKNOWN_TOPIC_OR_PARTITION): no \
                     partitions of them are assigned until they are created",
                    missing.join(", ")
                );
                self.missing_warned = Some(now);
            }
            let soon = now
                + self
                    .group_cfg
                    .retry_backoff_max
                    .max(self.group_cfg.retry_backoff);
            self.next_metadata_refresh = self.next_metadata_refresh.min(soon);
        }
        self.metadata_wanted = None;
        self.metadata_failures = 0;
        self.member.update_metadata(now, counts);
    }

    /// The subscription's Metadata failed (undecodable, or a retriable error such as
    /// LEADER_NOT_AVAILABLE while a topic is created): ask again after
    /// `retry.backoff.ms`, doubling up to `retry.backoff.max.ms`. Without this the
    /// request went out again as soon as the answer came, tens of thousands of times
    /// a second. It retries for as long as the group needs the counts, as Java's
    /// metadata refresh does; each wait is at most `retry.backoff.max.ms`.
    fn metadata_retry_later(&mut self, now: Instant) {
        self.metadata_failures = self.metadata_failures.saturating_add(1);
        let shift = self.metadata_failures.saturating_sub(1).min(16);
        let backoff = self.group_cfg.retry_backoff.saturating_mul(1 << shift).min(
            self.group_cfg
                .retry_backoff_max
                .max(self.group_cfg.retry_backoff),
        );
        self.metadata_not_before = now + backoff;
    }

    /// Handle the member's events. Returns whether there were any.
    fn events(&mut self, now: Instant) -> Result<bool, GroupConsumerError> {
        let mut any = false;
        while let Some(ev) = self.member.poll_event() {
            any = true;
            match ev {
                Event::PartitionsAssigned(tps) => {
                    for tp in &tps {
                        self.refused.remove(tp);
                    }
                    if let Some(d) = self.member.stats().last_rebalance
                        && self.rebalance_durations.len() < 1024
                    {
                        self.rebalance_durations.push(d);
                    }
                    self.listener.on_partitions_assigned(&tps);
                }
                Event::StartPositions(list) => {
                    for (tp, pos) in list {
                        if !self.member.assignment().contains(&tp) {
                            continue;
                        }
                        let start = match pos {
                            StartPosition::Committed { offset, .. } => StartAt::Offset(offset),
                            StartPosition::NeedsReset(AutoOffsetReset::Earliest) => {
                                StartAt::Earliest
                            }
                            StartPosition::NeedsReset(AutoOffsetReset::Latest) => StartAt::Latest,
                            StartPosition::NeedsReset(AutoOffsetReset::None) => {
                                self.errors.push_back(GroupConsumerError::NoOffset(tp));
                                continue;
                            }
                        };
                        let r = self.consumer.reactor();
                        let i = r.assign(&tp.topic, tp.partition, start);
                        r.set_paused(i, false);
                    }
                }
                Event::PartitionsRevoked(tps) => {
                    self.stop_fetching(&tps);
                    self.pending_revoke.extend(tps);
                    self.finish_revoke(now);
                }
                Event::PartitionsLost(tps) => {
                    self.stop_fetching(&tps);
                    self.listener.on_partitions_lost(&tps);
                }
                Event::MetadataNeeded(topics) => {
                    self.metadata_wanted = Some(topics);
                }
                Event::TopicIdsNeeded(ids) => {
                    // The member asks again for each new assignment: these are the
                    // ids it waits for now.
                    self.ids_wanted = ids.into_iter().collect();
                    self.ids_failures = 0;
                }
                Event::CommitCompleted {
                    id,
                    result,
                    offsets,
                } => {
                    if let Some(cb) = self.callbacks.remove(&id) {
                        cb(result);
                    } else if self.sync_waiting.contains(&id) {
                        self.completed.insert(id, result);
                    } else if self.revoke_commits.remove(&id) {
                        // Out of retries: say so, and hand the error to the
                        // application (the CLI counts it in
                        // kafka_consumer_commit_errors_total).
                        if let Err(e) = result {
                            log::warn!(
                                "the commit of revoked partitions failed ({e}); their next owner reads from an older commit: {offsets:?}"
                            );
                            self.errors.push_back(GroupConsumerError::Commit(e));
                        }
                    } else if let Err(e) = result {
                        log::warn!("an offset commit failed: {e}");
                    }
                }
                Event::CoordinatorLost => {
                    self.coordinator = None;
                }
                Event::Fatal(e) => {
                    self.errors.push_back(GroupConsumerError::Group(e));
                }
                Event::Closed => {
                    self.closed = true;
                }
            }
        }
        Ok(any)
    }

    /// Once no worker holds a chunk of a revoked partition (always, in poll mode): run
    /// the listener, commit what was processed, and acknowledge the revocation.
    fn finish_revoke(&mut self, now: Instant) {
        if self.pending_revoke.is_empty() {
            return;
        }
        let busy = self.pending_revoke.iter().any(|tp| {
            self.consumer
                .reactor()
                .index_of(&tp.topic, tp.partition)
                .is_some_and(|i| self.outstanding.get(&i).is_some_and(|n| *n > 0))
        });
        if busy {
            return;
        }
        let tps = std::mem::take(&mut self.pending_revoke);
        self.listener.on_partitions_revoked(&tps);
        if !self.group_cfg.enable_auto_commit {
            // The final commit of what was processed; queued before the ack, it
            // completes (or runs out of time) before the member rejoins or leaves.
            // Retriable answers (NOT_COORDINATOR, REQUEST_TIMED_OUT, ...) are retried
            // for request.timeout.ms, as Java's commitSync in a revoke listener: a
            // lost commit makes the next owner read these records again.
            let sync = CommitMode::Sync {
                timeout: self.group_cfg.request_timeout,
            };
            if let Some(id) = self.member.commit_processed(now, sync) {
                self.revoke_commits.insert(id);
            }
        }
        self.member.ack_revoked(now);
    }

    fn stop_fetching(&mut self, tps: &[TopicPartition]) {
        let r = self.consumer.reactor();
        for tp in tps {
            if let Some(i) = r.index_of(&tp.topic, tp.partition) {
                // Pausing drops fetched-but-undelivered data; the next owner fetches it
                // again from the committed offset.
                r.set_paused(i, true);
            }
        }
    }
}

fn note_processed(processed: &mut Vec<(String, i32, i64)>, rec: &ConsumerRecord<'_>) {
    let off = rec.offset();
    if let Some(e) = processed
        .iter_mut()
        .find(|(t, p, _)| *p == rec.partition && t == rec.topic)
    {
        if off > e.2 {
            e.2 = off;
        }
        return;
    }
    processed.push((rec.topic.to_owned(), rec.partition, off));
}
