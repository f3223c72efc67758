//! The group-membership state machine (sans-IO). Offset tracking and commits are in
//! `offsets` (a private module of the same `GroupMember`), the wire envelope in
//! [`crate::envelope`].
//!
//! See the crate docs for the driving loop. States:
//!
//! ```text
//!             subscribe()/poll()
//!  Unjoined ──────────────────────► Joining ──(JoinGroup ok, leader)──► AwaitingMetadata
//!     ▲  ▲   (coordinator known,       │  │                                   │ update_metadata()
//!     │  │    no backoff)              │  └──(ok, follower)──┐                ▼
//!     │  │                             │                     └────────────► Syncing
//!     │  └── MEMBER_ID_REQUIRED / UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION /    │
//!     │      REBALANCE_IN_PROGRESS / coordinator lost (rejoin) ◄───────────────┤
//!     │                                                                       │ SyncGroup ok
//!     │   ack_revoked()                                                       ▼
//!     └───────────── Revoking ◄──(eager: rejoin needed; cooperative: ── Stable ◄─┐
//!                      │          sync revoked some partitions)          │       │
//!                      │ (after: Close)                                  └───────┘
//!                      ▼                                                 heartbeats
//!                   Leaving ──(LeaveGroup answered, static member, or deadline)──► Closed
//!
//!  any state ──(FENCED_INSTANCE_ID, authorization, bad config)──► Failed
//! ```
//!
//! Coordinator discovery runs beside the membership states: while the coordinator
//! is unknown (start, NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, a lost connection,
//! a request timeout, or no successful heartbeat for `session.timeout.ms`), the
//! machine sends FindCoordinator to any broker, with backoff, and keeps its
//! generation and partitions, as Java does.

mod consumer;
mod offsets;

pub use crate::envelope::{
    CoordinatorAddr, GroupVersions, Outgoing, Request, RequestId, Response, Target,
};
use consumer::HeartbeatState;
pub use offsets::{CommitError, CommitId, CommitMode, OffsetAndMetadata, StartPosition};
use offsets::{PartitionOffsets, PendingCommit};

use crate::TopicPartition;
use crate::assignor::{AssignmentStrategy, MemberSubscription, RebalanceProtocol};
use crate::config::{ConfigError, GroupConfig};
use crate::consumer_protocol::{Assignment, CONSUMER_PROTOCOL_VERSION, Subscription};
use bytes::Bytes;
use kafka_protocol::messages as kp;
use kafka_protocol::protocol::StrBytes;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};
use weir_protocol::ErrorCode;
use weir_protocol::messages::group::{
    FindCoordinatorResponse, HeartbeatResponse, JoinGroupResponse, SyncGroupResponse,
};

/// A fatal group error: the member stops; the message says what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupError {
    /// Another member with the same `group.instance.id` took over (KIP-345).
    FencedInstanceId,
    /// `group.protocol=consumer`: another member with the same `group.instance.id`
    /// is still in the group (UNRELEASED_INSTANCE_ID).
    UnreleasedInstanceId,
    /// `group.protocol=consumer` and the broker lacks ConsumerGroupHeartbeat.
    ConsumerProtocolUnsupported,
    /// The broker refused the group or a setting; see the error code.
    Broker {
        /// The API that failed.
        api: &'static str,
        /// The code.
        code: ErrorCode,
    },
    /// No protocol in `partition.assignment.strategy` matches the group's.
    InconsistentProtocol(String),
    /// The configuration is invalid.
    Config(ConfigError),
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FencedInstanceId => f.write_str(
                "fenced: another consumer joined with the same group.instance.id; give each instance a unique id",
            ),
            Self::UnreleasedInstanceId => f.write_str(
                "UNRELEASED_INSTANCE_ID: another consumer with the same group.instance.id is still in the group; \
                 stop it (or wait for its session to time out) before starting this one, or give each instance a unique id",
            ),
            Self::ConsumerProtocolUnsupported => f.write_str(
                "the broker does not support group.protocol=consumer (no ConsumerGroupHeartbeat API; it needs Kafka 4.0+ \
                 with group.version=1): set group.protocol=classic",
            ),
            Self::Broker { api, code } => match *code {
                ErrorCode::UNSUPPORTED_ASSIGNOR => write!(
                    f,
                    "{api}: the broker has no assignor named by group.remote.assignor; use one of its \
                     group.consumer.assignors (uniform, range) or unset group.remote.assignor"
                ),
                ErrorCode::UNSUPPORTED_VERSION if *api == "ConsumerGroupHeartbeat" => write!(
                    f,
                    "{api}: the broker refuses group.protocol=consumer (enable group.version=1 on Kafka 4.0+, \
                     or set group.protocol=classic)"
                ),
                ErrorCode::INVALID_REGULAR_EXPRESSION => write!(
                    f,
                    "{api}: the broker cannot compile the subscription's regular expression (Kafka uses RE2J syntax)"
                ),
                ErrorCode::TOPIC_AUTHORIZATION_FAILED => write!(
                    f,
                    "{api}: not authorized for a subscribed topic; grant DESCRIBE and READ on it"
                ),
                ErrorCode::GROUP_AUTHORIZATION_FAILED => write!(
                    f,
                    "{api}: not authorized for this group.id; grant READ on the group"
                ),
                ErrorCode::INVALID_SESSION_TIMEOUT => write!(
                    f,
                    "{api}: session.timeout.ms is outside the broker's group.min/max.session.timeout.ms"
                ),
                ErrorCode::INCONSISTENT_GROUP_PROTOCOL => write!(
                    f,
                    "{api}: no partition.assignment.strategy in common with the group's other members"
                ),
                ErrorCode::GROUP_MAX_SIZE_REACHED => {
                    write!(f, "{api}: the group is full (group.max.size)")
                }
                _ => write!(f, "{api} failed: {code}"),
            },
            Self::InconsistentProtocol(p) => write!(
                f,
                "the broker chose assignor {p:?}, which partition.assignment.strategy does not list"
            ),
            Self::Config(e) => write!(f, "invalid group config: {e}"),
        }
    }
}

impl std::error::Error for GroupError {}

/// Counters for metrics (rebalance count and duration, commit outcomes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Completed rebalances (successful SyncGroups).
    pub rebalances: u64,
    /// How long the last rebalance took, from its first JoinGroup to the assignment.
    pub last_rebalance: Option<Duration>,
    /// Commits that succeeded.
    pub commits_ok: u64,
    /// Commits that failed (after their retries).
    pub commits_failed: u64,
}

/// What the driver must act on. Drain with [`GroupMember::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// These partitions are now this member's (cooperative: only the new ones).
    PartitionsAssigned(Vec<TopicPartition>),
    /// Give these up: drain in-flight work for them, run the application's revoke
    /// callback (a final commit may go here), then call
    /// [`GroupMember::ack_revoked`]. The machine waits for the ack before it
    /// rejoins (or leaves, on close).
    PartitionsRevoked(Vec<TopicPartition>),
    /// These partitions were lost (generation reset, poll timeout): stop work on
    /// them at once; their offsets can no longer be committed. No ack needed.
    PartitionsLost(Vec<TopicPartition>),
    /// Start positions for assigned partitions (OffsetFetch results).
    StartPositions(Vec<(TopicPartition, StartPosition)>),
    /// A commit finished.
    CommitCompleted {
        /// The id returned when the commit was queued.
        id: CommitId,
        /// The offsets of the commit.
        offsets: Vec<(TopicPartition, i64)>,
        /// Its outcome.
        result: Result<(), CommitError>,
    },
    /// The leader needs partition counts for these topics: answer with
    /// [`GroupMember::update_metadata`].
    MetadataNeeded(Vec<String>),
    /// `group.protocol=consumer`: the assignment names topics by these ids, whose
    /// names are not known; answer with [`GroupMember::update_topic_ids`] from a
    /// Metadata request for all topics.
    TopicIdsNeeded(Vec<[u8; 16]>),
    /// The coordinator is no longer trusted: close the coordinator connection.
    CoordinatorLost,
    /// A fatal error; the member has stopped.
    Fatal(GroupError),
    /// Close finished.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterRevoke {
    Rejoin,
    Close,
    /// `group.protocol=consumer`: take the rest of the target assignment.
    Reconcile,
    /// `group.protocol=consumer`: the subscription became empty; leave.
    Unsubscribe,
}

#[derive(Debug, Clone)]
struct JoinResult {
    generation: i32,
    protocol: AssignmentStrategy,
    members: Vec<MemberSubscription>,
}

#[derive(Debug, Clone)]
enum State {
    Unjoined,
    Joining,
    AwaitingMetadata(JoinResult),
    Syncing,
    Stable,
    Revoking {
        after: AfterRevoke,
        acked: bool,
        commit: Option<CommitId>,
    },
    Leaving {
        deadline: Instant,
    },
    Closed,
    Failed(GroupError),
}

/// The membership phase, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Phase {
    Unjoined,
    Joining,
    AwaitingMetadata,
    Syncing,
    Stable,
    Revoking,
    Leaving,
    Closed,
    Failed,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    FindCoordinator,
    Join,
    Sync,
    Heartbeat,
    Leave,
    Commit(CommitId),
    OffsetFetch(Vec<TopicPartition>),
    /// A ConsumerGroupHeartbeat at this member epoch, with what it told the broker.
    ConsumerHeartbeat {
        epoch: i32,
        sent: Box<HeartbeatState>,
    },
}

#[derive(Debug, Clone)]
struct Inflight {
    kind: Kind,
    deadline: Instant,
    to_coordinator: bool,
}

/// The sans-IO consumer-group member. See the crate docs for how to drive it.
#[derive(Debug)]
pub struct GroupMember {
    cfg: GroupConfig,
    protocol: RebalanceProtocol,
    versions: GroupVersions,
    rng: u64,
    next_id: u64,
    next_commit: u64,

    coordinator: Option<CoordinatorAddr>,
    coord_retry_at: Option<Instant>,
    coord_attempts: u32,

    state: State,
    member_id: String,
    generation: i32,
    subscription: BTreeSet<String>,
    assigned: BTreeSet<TopicPartition>,
    revoking: Vec<TopicPartition>,
    previous_assignment: Vec<TopicPartition>,
    group_topics: BTreeSet<String>,
    is_leader: bool,
    rejoin_needed: bool,
    rejoin_reason: &'static str,
    rebalance_started: Option<Instant>,
    /// Early heartbeats left after a cooperative round (see `on_sync`).
    early_heartbeats: u8,
    stats: GroupStats,
    join_retry_at: Option<Instant>,
    join_attempts: u32,

    last_poll: Instant,
    poll_expired: bool,
    next_heartbeat: Option<Instant>,
    last_heartbeat_ok: Instant,

    metadata: BTreeMap<String, i32>,
    assigned_metadata: BTreeMap<String, i32>,

    inflight: BTreeMap<RequestId, Inflight>,
    queue: VecDeque<Outgoing>,
    events: VecDeque<Event>,

    offsets: BTreeMap<TopicPartition, PartitionOffsets>,
    commits: Vec<PendingCommit>,
    next_auto_commit: Option<Instant>,
    fetch_pending: BTreeSet<TopicPartition>,
    fetch_retry_at: Option<Instant>,
    close_deadline: Option<Instant>,
    leave_pending: Option<(String, &'static str)>,

    // group.protocol=consumer (see `consumer`).
    regex: Option<String>,
    topic_names: BTreeMap<[u8; 16], std::sync::Arc<str>>,
    topic_ids: BTreeMap<std::sync::Arc<str>, [u8; 16]>,
    ids_asked: BTreeSet<[u8; 16]>,
    target: Option<Vec<([u8; 16], Vec<i32>)>>,
    hb_interval: Duration,
    hb_acked: Option<HeartbeatState>,
    hb_now: bool,
    announce: bool,
    /// When the member last joined or got a new target assignment.
    changed_at: Option<Instant>,
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

impl GroupMember {
    /// A member that has not joined yet. `now` starts the poll timer.
    pub fn new(cfg: GroupConfig, now: Instant) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let protocol = AssignmentStrategy::protocol_for(&cfg.assignment_strategies);
        let rng = cfg.rng_seed | 1;
        let mut member = Self {
            cfg,
            protocol,
            versions: GroupVersions::MAX,
            rng,
            next_id: 0,
            next_commit: 0,
            coordinator: None,
            coord_retry_at: None,
            coord_attempts: 0,
            state: State::Unjoined,
            member_id: String::new(),
            generation: -1,
            subscription: BTreeSet::new(),
            assigned: BTreeSet::new(),
            revoking: Vec::new(),
            previous_assignment: Vec::new(),
            group_topics: BTreeSet::new(),
            is_leader: false,
            rejoin_needed: false,
            rejoin_reason: "joining the group",
            rebalance_started: None,
            early_heartbeats: 0,
            stats: GroupStats::default(),
            join_retry_at: None,
            join_attempts: 0,
            last_poll: now,
            poll_expired: false,
            next_heartbeat: None,
            last_heartbeat_ok: now,
            metadata: BTreeMap::new(),
            assigned_metadata: BTreeMap::new(),
            inflight: BTreeMap::new(),
            queue: VecDeque::new(),
            events: VecDeque::new(),
            offsets: BTreeMap::new(),
            commits: Vec::new(),
            next_auto_commit: None,
            fetch_pending: BTreeSet::new(),
            fetch_retry_at: None,
            close_deadline: None,
            leave_pending: None,
            regex: None,
            topic_names: BTreeMap::new(),
            topic_ids: BTreeMap::new(),
            ids_asked: BTreeSet::new(),
            target: None,
            hb_interval: Duration::ZERO,
            hb_acked: None,
            hb_now: false,
            announce: false,
            changed_at: None,
        };
        if member.consumer_protocol() {
            member.member_id = member.random_member_id();
        }
        Ok(member)
    }

    // ----------------------------------------------------------------- accessors

    /// The rebalance protocol the strategy list implies.
    pub fn rebalance_protocol(&self) -> RebalanceProtocol {
        self.protocol
    }
    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.state {
            State::Unjoined => Phase::Unjoined,
            State::Joining => Phase::Joining,
            State::AwaitingMetadata(_) => Phase::AwaitingMetadata,
            State::Syncing => Phase::Syncing,
            State::Stable => Phase::Stable,
            State::Revoking { .. } => Phase::Revoking,
            State::Leaving { .. } => Phase::Leaving,
            State::Closed => Phase::Closed,
            State::Failed(_) => Phase::Failed,
        }
    }
    /// The fatal error, once the member has failed.
    pub fn error(&self) -> Option<&GroupError> {
        match &self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }
    /// The member id the broker gave (empty before the first join).
    pub fn member_id(&self) -> &str {
        &self.member_id
    }
    /// The current generation (-1 outside a generation).
    pub fn generation(&self) -> i32 {
        self.generation
    }
    /// Whether this member leads the current generation.
    pub fn is_leader(&self) -> bool {
        self.is_leader
    }
    /// The partitions this member owns now.
    pub fn assignment(&self) -> &BTreeSet<TopicPartition> {
        &self.assigned
    }
    /// The known coordinator.
    pub fn coordinator(&self) -> Option<&CoordinatorAddr> {
        self.coordinator.as_ref()
    }
    /// Counters for metrics.
    pub fn stats(&self) -> &GroupStats {
        &self.stats
    }
    /// Set the request versions (after ApiVersions).
    pub fn set_versions(&mut self, versions: GroupVersions) {
        self.versions = versions;
        if self.consumer_protocol()
            && (versions.consumer_group_heartbeat < 0 || versions.offset_commit < 9)
        {
            // No ConsumerGroupHeartbeat, or no OffsetCommit that carries the epoch.
            self.fail(GroupError::ConsumerProtocolUnsupported);
        }
    }

    // --------------------------------------------------------- application calls

    /// Subscribe to exactly these topics (resolved names; patterns are the
    /// driver's). A change triggers a rebalance.
    pub fn subscribe(&mut self, now: Instant, topics: impl IntoIterator<Item = String>) {
        let new: BTreeSet<String> = topics.into_iter().collect();
        if new == self.subscription {
            return;
        }
        self.subscription = new;
        self.last_poll = now;
        if self.consumer_protocol() {
            // The broker reassigns; the next heartbeat carries the new topics.
            self.regex = None;
            self.heartbeat_soon(now);
            return;
        }
        if self.protocol == RebalanceProtocol::Cooperative {
            // Give up partitions of topics no longer subscribed before rejoining.
            let gone: Vec<_> = self
                .assigned
                .iter()
                .filter(|tp| !self.subscription.contains(&*tp.topic))
                .cloned()
                .collect();
            if !gone.is_empty() && matches!(self.state, State::Stable) {
                self.begin_revoke(now, gone, AfterRevoke::Rejoin);
                return;
            }
        }
        self.rejoin("the subscription changed");
    }

    /// The application polled: resets the `max.poll.interval.ms` timer, and
    /// rejoins if the member left because that timer expired.
    pub fn poll(&mut self, now: Instant) {
        // A driver without a thread of its own (weir's) runs no timer while the
        // application is away: an interval that ran out meanwhile is acted on now,
        // before this poll counts, as Java's heartbeat thread would have during the
        // gap (the partitions are lost, the member leaves, then joins again).
        if self.in_group()
            && !self.poll_expired
            && now >= self.last_poll + self.cfg.max_poll_interval
        {
            self.handle_timeout(now);
        }
        self.last_poll = now;
        if self.poll_expired {
            self.poll_expired = false;
            self.rejoin("rejoining after the poll interval expired");
        }
    }

    /// Ask for a rebalance (Java's `enforceRebalance`).
    pub fn request_rejoin(&mut self) {
        if self.consumer_protocol() {
            // As Java: the broker decides every assignment under this protocol.
            log::warn!(
                target: "weir_consumer::group",
                "group {}: a rebalance cannot be requested under group.protocol=consumer; ignored",
                self.cfg.group_id
            );
            return;
        }
        self.rejoin("the application asked for a rebalance");
    }

    /// The application finished revoking the partitions of the last
    /// [`Event::PartitionsRevoked`] (in-flight work drained, callback run).
    pub fn ack_revoked(&mut self, now: Instant) {
        let State::Revoking { after, acked, .. } = &mut self.state else {
            return;
        };
        if *acked {
            return;
        }
        *acked = true;
        let after = *after;
        // With auto-commit, commit what was processed before letting go (Java
        // commits synchronously in onJoinPrepare and on close).
        if self.cfg.enable_auto_commit {
            let id = self.commit_processed(
                now,
                CommitMode::Sync {
                    timeout: self.cfg.request_timeout,
                },
            );
            if let (Some(id), State::Revoking { commit, .. }) = (id, &mut self.state) {
                *commit = Some(id);
                return;
            }
        }
        // A commit the application queued before the ack (its final commit of the
        // revoked partitions) must reach the coordinator while this member still
        // holds its id and generation: leaving first would make the broker reject it
        // (UNKNOWN_MEMBER_ID) and the next owner read those records again.
        if let (Some(last), State::Revoking { commit, .. }) =
            (self.commits.last().map(|c| c.id), &mut self.state)
        {
            *commit = Some(last);
            return;
        }
        self.finish_revoke(now, after);
    }

    /// Partition counts from metadata (topic -> count; a topic left out of a
    /// [`Event::MetadataNeeded`] answer counts as absent). The leader rebalances
    /// when a count it assigned from changes.
    pub fn update_metadata(
        &mut self,
        now: Instant,
        counts: impl IntoIterator<Item = (String, i32)>,
    ) {
        for (t, n) in counts {
            self.metadata.insert(t, n);
        }
        if let State::AwaitingMetadata(join) = &self.state {
            let join = join.clone();
            self.lead_sync(now, join);
            return;
        }
        if self.is_leader && matches!(self.state, State::Stable) {
            let changed = self
                .assigned_metadata
                .iter()
                .any(|(t, n)| self.metadata.get(t).is_some_and(|m| m != n))
                || self.group_topics.iter().any(|t| {
                    !self.assigned_metadata.contains_key(t) && self.metadata.contains_key(t)
                });
            if changed {
                self.rejoin("the partition count of a subscribed topic changed");
            }
        }
    }

    /// Leave the group: revoke (the driver acks), commit (with auto-commit), send
    /// LeaveGroup (dynamic members only, as in Java), then [`Event::Closed`]. Ends
    /// by `now + timeout` whatever happens.
    pub fn close(&mut self, now: Instant, timeout: Duration) {
        if matches!(
            self.state,
            State::Closed | State::Failed(_) | State::Leaving { .. }
        ) {
            return;
        }
        self.close_deadline = Some(now + timeout);
        match self.state {
            State::Revoking { ref mut after, .. } => *after = AfterRevoke::Close,
            State::Stable if !self.assigned.is_empty() => {
                let all: Vec<_> = self.assigned.iter().cloned().collect();
                self.begin_revoke(now, all, AfterRevoke::Close);
            }
            _ => self.leave(now, "the consumer is being closed"),
        }
    }

    // ------------------------------------------------------------ driver: output

    /// The next request to send, if any.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Outgoing> {
        self.drive(now);
        self.queue.pop_front()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest instant at which [`Self::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut at = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        for f in self.inflight.values() {
            at(Some(f.deadline));
        }
        if matches!(self.state, State::Closed | State::Failed(_)) {
            return t;
        }
        at(self.close_deadline);
        if let State::Leaving { deadline } = self.state {
            at(Some(deadline));
        }
        // Only timers something can act on: a passed timer whose action waits for
        // the coordinator would otherwise spin the driver.
        let known = self.coordinator.is_some();
        if !known && !self.has_inflight(|k| *k == Kind::FindCoordinator) {
            at(Some(self.coord_retry_at.unwrap_or(self.last_poll)));
        }
        if known && matches!(self.state, State::Unjoined) && !self.poll_expired {
            at(self.join_retry_at);
        }
        if known
            && self.heartbeating()
            && !self.has_inflight(|k| matches!(k, Kind::ConsumerHeartbeat { .. }))
        {
            at(self.next_heartbeat);
            at(Some(self.last_heartbeat_ok + self.cfg.session_timeout));
        }
        if self.in_group() && !self.poll_expired {
            at(Some(self.last_poll + self.cfg.max_poll_interval));
        }
        if matches!(self.state, State::Stable) {
            at(self.next_auto_commit);
        }
        if known && !self.fetch_pending.is_empty() {
            at(self.fetch_retry_at);
        }
        for c in self.commits.iter().filter(|c| c.sent.is_none()) {
            at(Some(c.deadline));
            if known {
                at(c.retry_at);
            }
        }
        t
    }

    // ------------------------------------------------------------- driver: input

    /// Timers due at `now`: request timeouts, session, poll interval, close.
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<RequestId> = self
            .inflight
            .iter()
            .filter(|(_, f)| f.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        if !expired.is_empty() {
            let coordinator_request = expired
                .iter()
                .any(|id| self.inflight.get(id).is_some_and(|f| f.to_coordinator));
            for id in expired {
                self.fail_request(now, id);
            }
            if coordinator_request {
                self.coordinator_lost(now);
            }
        }
        if matches!(self.state, State::Closed | State::Failed(_)) {
            return;
        }
        if self.close_deadline.is_some_and(|d| d <= now) {
            self.finish_close();
            return;
        }
        if let State::Leaving { deadline } = self.state
            && deadline <= now
        {
            self.finish_close();
            return;
        }
        // Session: no successful heartbeat for session.timeout.ms.
        if self.heartbeating()
            && self.coordinator.is_some()
            && now >= self.last_heartbeat_ok + self.cfg.session_timeout
        {
            self.coordinator_lost(now);
        }
        // Poll interval: the application stalled; leave so the group moves on.
        if self.in_group()
            && !self.poll_expired
            && now >= self.last_poll + self.cfg.max_poll_interval
        {
            self.poll_expired = true;
            self.lose_partitions();
            self.leave(now, "consumer poll timeout has expired");
        }
        // Commit deadlines.
        let mut i = 0;
        while i < self.commits.len() {
            if self.commits[i].deadline <= now && self.commits[i].sent.is_none() {
                let c = self.commits.remove(i);
                self.complete_commit(now, c, Err(CommitError::TimedOut));
            } else {
                i += 1;
            }
        }
        if self.cfg.enable_auto_commit
            && matches!(self.state, State::Stable)
            && self.next_auto_commit.is_some_and(|t| t <= now)
        {
            self.next_auto_commit = Some(now + self.cfg.auto_commit_interval);
            if !self.commits.iter().any(|c| !c.retriable) {
                let _ = self.commit_processed(now, CommitMode::Async);
            }
        }
    }

    /// The coordinator connection closed: requests on it will never be answered.
    pub fn handle_disconnect(&mut self, now: Instant) {
        let ids: Vec<_> = self
            .inflight
            .iter()
            .filter(|(_, f)| f.to_coordinator)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.fail_request(now, id);
        }
        if self.coordinator.is_some() {
            self.coordinator = None;
            self.coord_retry_at = Some(now + self.backoff(self.coord_attempts));
        }
    }

    /// One request will never be answered (its connection failed).
    pub fn handle_request_failed(&mut self, now: Instant, id: RequestId) {
        let to_coordinator = self.inflight.get(&id).is_some_and(|f| f.to_coordinator);
        self.fail_request(now, id);
        if to_coordinator {
            self.coordinator_lost(now);
        }
    }

    /// A response for request `id`. Responses to requests the machine no longer
    /// waits for (after a disconnect or timeout) are ignored.
    pub fn handle_response(&mut self, now: Instant, id: RequestId, response: Response<'_>) {
        let Some(f) = self.inflight.remove(&id) else {
            return;
        };
        match (f.kind, response) {
            (Kind::FindCoordinator, Response::FindCoordinator(r)) => {
                self.on_find_coordinator(now, r)
            }
            (Kind::Join, Response::JoinGroup(r)) => self.on_join(now, r),
            (Kind::Sync, Response::SyncGroup(r)) => self.on_sync(now, r),
            (Kind::Heartbeat, Response::Heartbeat(r)) => self.on_heartbeat(now, r),
            (Kind::Leave, Response::LeaveGroup(_)) => {
                if matches!(self.state, State::Leaving { .. }) {
                    self.finish_close();
                }
            }
            (Kind::Commit(cid), Response::OffsetCommit(r)) => self.on_commit(now, cid, r),
            (Kind::OffsetFetch(parts), Response::OffsetFetch(r)) => {
                self.on_offset_fetch(now, parts, r)
            }
            (Kind::ConsumerHeartbeat { epoch, sent }, Response::ConsumerGroupHeartbeat(r)) => {
                self.on_consumer_heartbeat(now, epoch, *sent, r)
            }
            (kind, _) => {
                // A response of the wrong type is a driver bug; treat the request
                // as failed so nothing waits forever.
                self.inflight.insert(
                    id,
                    Inflight {
                        kind,
                        deadline: now,
                        to_coordinator: f.to_coordinator,
                    },
                );
                self.handle_request_failed(now, id);
            }
        }
    }

    // ------------------------------------------------------------------ internals

    fn rejoin(&mut self, reason: &'static str) {
        if !self.rejoin_needed {
            self.rejoin_reason = reason;
        }
        self.rejoin_needed = true;
    }

    fn in_group(&self) -> bool {
        matches!(
            self.state,
            State::Joining
                | State::AwaitingMetadata(_)
                | State::Syncing
                | State::Stable
                | State::Revoking { .. }
        ) || (matches!(self.state, State::Unjoined) && self.generation >= 0)
    }

    /// Heartbeats go out from the JoinGroup answer on: also while the leader waits
    /// for metadata and every member waits for SyncGroup, which the coordinator may
    /// hold until the leader's assignment arrives. Kafka's coordinator accepts them
    /// then (CompletingRebalance) and Java's heartbeat thread runs then too; without
    /// them a slow leader or a slow SyncGroup let the session expire.
    fn heartbeating(&self) -> bool {
        matches!(
            self.state,
            State::Stable | State::Revoking { .. } | State::AwaitingMetadata(_) | State::Syncing
        ) && self.generation >= 0
    }

    /// Between JoinGroup's answer and SyncGroup's: the generation is being completed.
    fn completing_rebalance(&self) -> bool {
        matches!(self.state, State::AwaitingMetadata(_) | State::Syncing)
    }

    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Exponential backoff from `retry.backoff.ms` to `retry.backoff.max.ms`,
    /// with +-20% jitter from the injected RNG.
    fn backoff(&mut self, attempts: u32) -> Duration {
        let base = self.cfg.retry_backoff.as_millis() as u64;
        let max = self.cfg.retry_backoff_max.as_millis().max(1) as u64;
        let exp = base
            .saturating_mul(1u64 << attempts.min(20))
            .min(max)
            .max(1);
        let jitter = exp / 5;
        let r = if jitter == 0 {
            0
        } else {
            self.next_random() % (2 * jitter + 1)
        };
        Duration::from_millis(exp - jitter + r)
    }

    fn send(
        &mut self,
        now: Instant,
        kind: Kind,
        version: i16,
        request: Request,
        timeout: Duration,
    ) {
        self.next_id += 1;
        let id = RequestId(self.next_id);
        let target = match (&kind, &self.coordinator) {
            (Kind::FindCoordinator, _) | (_, None) => Target::AnyBroker,
            (_, Some(c)) => Target::Coordinator(c.clone()),
        };
        let to_coordinator = matches!(target, Target::Coordinator(_));
        if let Kind::Commit(cid) = kind
            && let Some(c) = self.commits.iter_mut().find(|c| c.id == cid)
        {
            c.sent = Some(id);
        }
        self.inflight.insert(
            id,
            Inflight {
                kind,
                deadline: now + timeout,
                to_coordinator,
            },
        );
        self.queue.push_back(Outgoing {
            id,
            target,
            version,
            request,
            timeout,
        });
    }

    fn has_inflight(&self, pred: impl Fn(&Kind) -> bool) -> bool {
        self.inflight.values().any(|f| pred(&f.kind))
    }

    fn fail(&mut self, err: GroupError) {
        if matches!(self.state, State::Failed(_)) {
            return;
        }
        self.state = State::Failed(err.clone());
        self.events.push_back(Event::Fatal(err));
        let commits = std::mem::take(&mut self.commits);
        for c in commits {
            self.commit_event(c.id, &c.offsets, Err(CommitError::Closed));
        }
        self.queue.clear();
    }

    fn coordinator_lost(&mut self, now: Instant) {
        if self.coordinator.take().is_some() {
            self.events.push_back(Event::CoordinatorLost);
        }
        self.coord_retry_at = Some(now + self.backoff(self.coord_attempts));
        // Requests on the old connection are abandoned.
        let ids: Vec<_> = self
            .inflight
            .iter()
            .filter(|(_, f)| f.to_coordinator)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.fail_request(now, id);
        }
    }

    /// A request will not be answered: undo what waited for it.
    fn fail_request(&mut self, now: Instant, id: RequestId) {
        let Some(f) = self.inflight.remove(&id) else {
            return;
        };
        match f.kind {
            Kind::FindCoordinator => {
                self.coord_attempts += 1;
                self.coord_retry_at = Some(now + self.backoff(self.coord_attempts));
            }
            Kind::Join | Kind::Sync => {
                if matches!(self.state, State::Joining | State::Syncing) {
                    self.state = State::Unjoined;
                    self.rejoin_needed = true;
                    self.join_retry_at = Some(now + self.backoff(self.join_attempts));
                }
            }
            Kind::Heartbeat => {
                self.next_heartbeat = Some(now + self.cfg.retry_backoff);
            }
            Kind::ConsumerHeartbeat { .. } => {
                // The broker may or may not have seen it: say everything next time.
                self.hb_acked = None;
                match self.state {
                    State::Joining => {
                        self.state = State::Unjoined;
                        self.join_attempts += 1;
                        self.join_retry_at = Some(now + self.backoff(self.join_attempts));
                    }
                    State::Leaving { .. } => self.finish_close(),
                    _ => self.next_heartbeat = Some(now + self.cfg.retry_backoff),
                }
            }
            Kind::Leave => {
                if matches!(self.state, State::Leaving { .. }) {
                    self.finish_close();
                }
            }
            Kind::Commit(cid) => {
                if let Some(c) = self.commits.iter_mut().find(|c| c.id == cid) {
                    c.sent = None;
                }
                self.retry_or_complete(
                    now,
                    cid,
                    CommitError::Retriable(ErrorCode::NETWORK_EXCEPTION),
                );
            }
            Kind::OffsetFetch(parts) => {
                self.fetch_pending
                    .extend(parts.into_iter().filter(|tp| self.assigned.contains(tp)));
                self.fetch_retry_at = Some(now + self.cfg.retry_backoff);
            }
        }
    }

    /// Decide what to send next.
    fn drive(&mut self, now: Instant) {
        if matches!(self.state, State::Closed | State::Failed(_)) {
            return;
        }
        if self.close_deadline.is_some_and(|d| d <= now) {
            self.finish_close();
            return;
        }
        // Passed retry timers are spent: what they delayed may go from now on.
        if self.join_retry_at.is_some_and(|t| t <= now) {
            self.join_retry_at = None;
        }
        if self.fetch_retry_at.is_some_and(|t| t <= now) {
            self.fetch_retry_at = None;
        }
        for c in &mut self.commits {
            if c.retry_at.is_some_and(|t| t <= now) {
                c.retry_at = None;
            }
        }
        // Coordinator discovery.
        if self.coordinator.is_none() {
            let waiting = self.coord_retry_at.is_some_and(|t| t > now);
            if !waiting && !self.has_inflight(|k| *k == Kind::FindCoordinator) {
                let v = self.versions.find_coordinator;
                let req = if v >= 4 {
                    kp::FindCoordinatorRequest::default()
                        .with_key_type(0)
                        .with_coordinator_keys(vec![sb(&self.cfg.group_id)])
                } else {
                    kp::FindCoordinatorRequest::default().with_key(sb(&self.cfg.group_id))
                };
                let timeout = self.cfg.request_timeout;
                self.send(
                    now,
                    Kind::FindCoordinator,
                    v,
                    Request::FindCoordinator(req),
                    timeout,
                );
            }
            return;
        }
        if matches!(self.state, State::Leaving { .. })
            && let Some((member_id, reason)) = self.leave_pending.take()
        {
            if self.consumer_protocol() {
                let epoch = self.leave_epoch(false);
                self.send_consumer_heartbeat(now, epoch);
            } else {
                self.send_leave(now, &member_id, reason);
            }
            return;
        }
        if self.consumer_protocol() {
            self.drive_consumer(now);
        } else {
            self.drive_classic(now);
        }
        self.drive_offsets(now);
    }

    /// The classic protocol's part of `drive`: rebalances, JoinGroup, Heartbeat.
    fn drive_classic(&mut self, now: Instant) {
        // Start a rebalance when one is needed.
        if self.rejoin_needed && !self.poll_expired {
            match self.state {
                State::Stable => self.prepare_rejoin(now),
                State::Unjoined => {}
                _ => {}
            }
        }
        // Unsubscribed from everything: leave the group, as Java's unsubscribe().
        if matches!(self.state, State::Unjoined)
            && self.subscription.is_empty()
            && !self.member_id.is_empty()
        {
            self.lose_partitions();
            self.leave(now, "the consumer unsubscribed from all topics");
        }
        if matches!(self.state, State::Unjoined)
            && (self.rejoin_needed || self.generation < 0)
            && !self.poll_expired
            && !self.subscription.is_empty()
            // Commits of the old generation finish first (Java's revoke callback
            // commits synchronously before the JoinGroup); each has a deadline.
            && self.commits.is_empty()
            && self.join_retry_at.is_none_or(|t| t <= now)
            && !self.has_inflight(|k| *k == Kind::Join)
        {
            self.send_join(now);
        }
        // Heartbeat.
        if self.heartbeating()
            && self.next_heartbeat.is_some_and(|t| t <= now)
            && !self.has_inflight(|k| *k == Kind::Heartbeat)
        {
            self.send_heartbeat(now);
        }
    }

    /// Offset fetches for new partitions and commits, in either protocol.
    fn drive_offsets(&mut self, now: Instant) {
        // Offset fetch for new partitions.
        if matches!(self.state, State::Stable | State::Revoking { .. })
            && !self.fetch_pending.is_empty()
            && self.fetch_retry_at.is_none_or(|t| t <= now)
            && !self.has_inflight(|k| matches!(k, Kind::OffsetFetch(_)))
        {
            self.send_offset_fetch(now);
        }
        // Commits.
        let due: Vec<CommitId> = self
            .commits
            .iter()
            .filter(|c| c.sent.is_none() && c.retry_at.is_none_or(|t| t <= now))
            .map(|c| c.id)
            .collect();
        for cid in due {
            self.send_commit(now, cid);
        }
    }

    fn prepare_rejoin(&mut self, now: Instant) {
        match self.protocol {
            RebalanceProtocol::Eager if !self.assigned.is_empty() => {
                let all: Vec<_> = self.assigned.iter().cloned().collect();
                self.begin_revoke(now, all, AfterRevoke::Rejoin);
            }
            _ => {
                self.state = State::Unjoined;
            }
        }
    }

    fn begin_revoke(&mut self, _now: Instant, parts: Vec<TopicPartition>, after: AfterRevoke) {
        self.events
            .push_back(Event::PartitionsRevoked(parts.clone()));
        self.state = State::Revoking {
            after,
            acked: false,
            commit: None,
        };
        self.revoking = parts;
    }

    fn finish_revoke(&mut self, now: Instant, after: AfterRevoke) {
        let revoked = std::mem::take(&mut self.revoking);
        for tp in &revoked {
            self.assigned.remove(tp);
            self.offsets.remove(tp);
            self.fetch_pending.remove(tp);
        }
        match after {
            AfterRevoke::Rejoin => {
                self.state = State::Unjoined;
                if !self.rejoin_needed {
                    self.rejoin("partitions were revoked and must be reassigned");
                }
            }
            AfterRevoke::Close => self.leave(now, "the consumer is being closed"),
            AfterRevoke::Reconcile => {
                self.state = State::Stable;
                // Tell the broker at once, even if nothing is added: the revoked
                // partitions go to their next owner only when it hears of it.
                self.heartbeat_soon(now);
                self.reconcile(now);
            }
            AfterRevoke::Unsubscribe => {
                self.state = State::Stable;
                self.leave(now, "the consumer unsubscribed from all topics");
            }
        }
    }

    /// Drop every partition without revoking (generation lost).
    fn lose_partitions(&mut self) {
        if !self.assigned.is_empty() {
            let all: Vec<_> = std::mem::take(&mut self.assigned).into_iter().collect();
            self.events.push_back(Event::PartitionsLost(all));
        }
        self.offsets.clear();
        self.fetch_pending.clear();
        self.revoking.clear();
        // Pending commits of this generation can no longer succeed.
        let commits = std::mem::take(&mut self.commits);
        for c in commits {
            self.commit_event(
                c.id,
                &c.offsets,
                Err(CommitError::CommitFailed(ErrorCode::ILLEGAL_GENERATION)),
            );
        }
        self.inflight
            .retain(|_, f| !matches!(f.kind, Kind::Commit(_) | Kind::OffsetFetch(_)));
    }

    fn reset_generation(&mut self, reset_member_id: bool) {
        self.lose_partitions();
        self.generation = -1;
        self.is_leader = false;
        if self.consumer_protocol() {
            // The member id is the client's own for its lifetime: rejoin at epoch 0.
            self.target = None;
            self.hb_acked = None;
            self.next_heartbeat = None;
            self.state = State::Unjoined;
            return;
        }
        if reset_member_id {
            self.member_id.clear();
        }
        self.state = State::Unjoined;
        self.rejoin_needed = true;
    }

    /// Leave the group (close or poll timeout). Static members send nothing.
    fn leave(&mut self, now: Instant, reason: &'static str) {
        if self.consumer_protocol() {
            return self.leave_consumer(now, reason);
        }
        let closing = self.close_deadline.is_some();
        let dynamic = self.cfg.group_instance_id.is_none();
        let has_id = dynamic && !self.member_id.is_empty();
        let sent = has_id && self.coordinator.is_some();
        if sent {
            let member_id = self.member_id.clone();
            self.send_leave(now, &member_id, reason);
        } else if has_id && closing {
            // Closing while the coordinator is unknown: find it (within the close
            // deadline) and then leave, so the group need not wait for the session
            // timeout, as Java's close does.
            self.leave_pending = Some((self.member_id.clone(), reason));
        }
        // Leaving resets the generation and member id, as in Java.
        self.generation = -1;
        self.is_leader = false;
        self.member_id.clear();
        self.next_heartbeat = None;
        self.inflight
            .retain(|_, f| !matches!(f.kind, Kind::Heartbeat | Kind::Join | Kind::Sync));
        self.after_leave(now, has_id);
    }

    /// `group.protocol=consumer`: a heartbeat at the leave epoch; static members send
    /// one too (epoch -2), so the broker keeps their assignment for their return.
    fn leave_consumer(&mut self, now: Instant, reason: &'static str) {
        let closing = self.close_deadline.is_some();
        let in_group = self.generation > 0;
        let known = self.coordinator.is_some();
        self.inflight
            .retain(|_, f| !matches!(f.kind, Kind::ConsumerHeartbeat { .. }));
        if in_group && known {
            let epoch = self.leave_epoch(self.poll_expired);
            self.send_consumer_heartbeat(now, epoch);
        } else if in_group && closing {
            self.leave_pending = Some((self.member_id.clone(), reason));
        }
        self.generation = -1;
        self.target = None;
        self.hb_acked = None;
        self.next_heartbeat = None;
        self.hb_now = false;
        self.after_leave(now, in_group);
    }

    /// After a leave: closing waits (until the close deadline) for the answer when a
    /// leave went out or is pending, else closes now; otherwise the member is out.
    fn after_leave(&mut self, now: Instant, leave_sent: bool) {
        if self.close_deadline.is_none() {
            self.state = State::Unjoined;
        } else if leave_sent {
            let deadline = self
                .close_deadline
                .unwrap_or(now + self.cfg.request_timeout);
            self.state = State::Leaving { deadline };
        } else {
            self.finish_close();
        }
    }

    /// Heartbeat as soon as the one in flight (if any) is answered.
    fn heartbeat_soon(&mut self, now: Instant) {
        self.hb_now = true;
        self.next_heartbeat = Some(now);
    }

    fn send_leave(&mut self, now: Instant, member_id: &str, reason: &str) {
        let v = self.versions.leave_group;
        let req = if v >= 3 {
            let mut m =
                kp::leave_group_request::MemberIdentity::default().with_member_id(sb(member_id));
            if v >= 5 {
                m = m.with_reason(Some(sb(reason)));
            }
            kp::LeaveGroupRequest::default()
                .with_group_id(kp::GroupId(sb(&self.cfg.group_id)))
                .with_members(vec![m])
        } else {
            kp::LeaveGroupRequest::default()
                .with_group_id(kp::GroupId(sb(&self.cfg.group_id)))
                .with_member_id(sb(member_id))
        };
        let timeout = self.cfg.request_timeout;
        self.send(now, Kind::Leave, v, Request::LeaveGroup(req), timeout);
    }

    fn finish_close(&mut self) {
        if matches!(self.state, State::Closed) {
            return;
        }
        if !self.assigned.is_empty() {
            self.lose_partitions();
        }
        let commits = std::mem::take(&mut self.commits);
        for c in commits {
            self.commit_event(c.id, &c.offsets, Err(CommitError::Closed));
        }
        self.state = State::Closed;
        self.inflight.clear();
        self.queue.clear();
        self.events.push_back(Event::Closed);
    }

    fn subscription_bytes(&self, strategy: AssignmentStrategy) -> Vec<u8> {
        let owned: Vec<TopicPartition> = match self.protocol {
            RebalanceProtocol::Cooperative => self.assigned.iter().cloned().collect(),
            RebalanceProtocol::Eager => Vec::new(),
        };
        Subscription {
            topics: self.subscription.iter().cloned().collect(),
            user_data: strategy.user_data(&self.previous_assignment, self.generation),
            owned_partitions: owned,
            generation_id: self.generation,
            rack_id: self.cfg.rack.clone(),
        }
        .encode(CONSUMER_PROTOCOL_VERSION)
    }

    fn send_join(&mut self, now: Instant) {
        let v = self.versions.join_group;
        if self.cfg.group_instance_id.is_some() && v < 5 {
            self.fail(GroupError::Config(ConfigError(
                "group.instance.id needs JoinGroup v5 (Kafka 2.3+); the broker is older: unset group.instance.id",
            )));
            return;
        }
        let protocols = self
            .cfg
            .assignment_strategies
            .clone()
            .into_iter()
            .map(|s| {
                kp::join_group_request::JoinGroupRequestProtocol::default()
                    .with_name(sb(s.name()))
                    .with_metadata(Bytes::from(self.subscription_bytes(s)))
            })
            .collect();
        let mut req = kp::JoinGroupRequest::default()
            .with_group_id(kp::GroupId(sb(&self.cfg.group_id)))
            .with_session_timeout_ms(ms(self.cfg.session_timeout))
            .with_member_id(sb(&self.member_id))
            .with_protocol_type(sb("consumer"))
            .with_protocols(protocols);
        if v >= 1 {
            req = req.with_rebalance_timeout_ms(ms(self.cfg.rebalance_timeout()));
        }
        if v >= 5 {
            req = req.with_group_instance_id(self.cfg.group_instance_id.as_deref().map(sb));
        }
        if v >= 8 {
            req = req.with_reason(Some(sb(self.rejoin_reason)));
        }
        if self.rebalance_started.is_none() {
            self.rebalance_started = Some(now);
        }
        self.state = State::Joining;
        self.rejoin_needed = false;
        self.is_leader = false;
        self.next_heartbeat = None;
        // A heartbeat of the old generation still in flight must not be taken for
        // one of the new generation (its ILLEGAL_GENERATION would reset it).
        self.inflight.retain(|_, f| f.kind != Kind::Heartbeat);
        // JoinGroup may wait a whole rebalance: rebalance timeout + 5 s, as Java.
        let timeout = self.cfg.rebalance_timeout() + Duration::from_secs(5);
        self.send(now, Kind::Join, v, Request::JoinGroup(req), timeout);
    }

    fn send_heartbeat(&mut self, now: Instant) {
        let v = self.versions.heartbeat;
        let mut req = kp::HeartbeatRequest::default()
            .with_group_id(kp::GroupId(sb(&self.cfg.group_id)))
            .with_generation_id(self.generation)
            .with_member_id(sb(&self.member_id));
        if v >= 3 {
            req = req.with_group_instance_id(self.cfg.group_instance_id.as_deref().map(sb));
        }
        self.next_heartbeat = None;
        let timeout = self.cfg.request_timeout;
        self.send(now, Kind::Heartbeat, v, Request::Heartbeat(req), timeout);
    }

    fn send_sync(
        &mut self,
        now: Instant,
        generation: i32,
        protocol: &str,
        assignments: Vec<(String, Vec<u8>)>,
    ) {
        let v = self.versions.sync_group;
        let mut req = kp::SyncGroupRequest::default()
            .with_group_id(kp::GroupId(sb(&self.cfg.group_id)))
            .with_generation_id(generation)
            .with_member_id(sb(&self.member_id))
            .with_assignments(
                assignments
                    .into_iter()
                    .map(|(m, a)| {
                        kp::sync_group_request::SyncGroupRequestAssignment::default()
                            .with_member_id(sb(&m))
                            .with_assignment(Bytes::from(a))
                    })
                    .collect(),
            );
        if v >= 3 {
            req = req.with_group_instance_id(self.cfg.group_instance_id.as_deref().map(sb));
        }
        if v >= 5 {
            req = req
                .with_protocol_type(Some(sb("consumer")))
                .with_protocol_name(Some(sb(protocol)));
        }
        self.state = State::Syncing;
        let timeout = self.cfg.request_timeout;
        self.send(now, Kind::Sync, v, Request::SyncGroup(req), timeout);
    }

    // ------------------------------------------------------------ response logic

    fn on_find_coordinator(&mut self, now: Instant, r: FindCoordinatorResponse<'_>) {
        let entry = r
            .coordinators
            .iter()
            .find(|c| c.key.is_empty() || c.key == self.cfg.group_id);
        let Some(c) = entry else {
            self.coord_attempts += 1;
            self.coord_retry_at = Some(now + self.backoff(self.coord_attempts));
            return;
        };
        match c.error_code {
            ErrorCode::NONE if c.node_id >= 0 => {
                self.coordinator = Some(CoordinatorAddr {
                    node_id: c.node_id,
                    host: c.host.to_owned(),
                    port: c.port,
                });
                self.coord_attempts = 0;
                self.coord_retry_at = None;
                // A fresh coordinator: the session clock restarts.
                self.last_heartbeat_ok = now;
                if self.heartbeating() {
                    self.next_heartbeat = Some(now);
                }
            }
            ErrorCode::GROUP_AUTHORIZATION_FAILED => self.fail(GroupError::Broker {
                api: "FindCoordinator",
                code: c.error_code,
            }),
            _ => {
                self.coord_attempts += 1;
                self.coord_retry_at = Some(now + self.backoff(self.coord_attempts));
            }
        }
    }

    fn join_fatal(code: ErrorCode) -> bool {
        matches!(
            code,
            ErrorCode::INCONSISTENT_GROUP_PROTOCOL
                | ErrorCode::INVALID_SESSION_TIMEOUT
                | ErrorCode::GROUP_AUTHORIZATION_FAILED
                | ErrorCode::INVALID_GROUP_ID
                | ErrorCode::GROUP_MAX_SIZE_REACHED
                | ErrorCode::UNSUPPORTED_VERSION
        )
    }

    fn on_join(&mut self, now: Instant, r: JoinGroupResponse<'_>) {
        if !matches!(self.state, State::Joining) {
            return;
        }
        let code = r.error_code;
        match code {
            ErrorCode::NONE => {}
            ErrorCode::MEMBER_ID_REQUIRED => {
                // KIP-394: the broker assigned an id; join again with it at once.
                self.member_id = r.member_id.to_owned();
                self.state = State::Unjoined;
                self.rejoin_needed = true;
                self.join_retry_at = None;
                return;
            }
            ErrorCode::UNKNOWN_MEMBER_ID => {
                self.reset_generation(true);
                self.join_retry_at = None;
                return;
            }
            ErrorCode::ILLEGAL_GENERATION => {
                self.reset_generation(false);
                self.join_retry_at = None;
                return;
            }
            ErrorCode::FENCED_INSTANCE_ID => return self.fail(GroupError::FencedInstanceId),
            ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE => {
                self.state = State::Unjoined;
                self.rejoin_needed = true;
                self.coordinator_lost(now);
                return;
            }
            c if Self::join_fatal(c) => {
                return self.fail(GroupError::Broker {
                    api: "JoinGroup",
                    code: c,
                });
            }
            _ => {
                // COORDINATOR_LOAD_IN_PROGRESS, REBALANCE_IN_PROGRESS, unknown:
                // retry with backoff.
                self.join_attempts += 1;
                self.state = State::Unjoined;
                self.rejoin_needed = true;
                self.join_retry_at = Some(now + self.backoff(self.join_attempts));
                return;
            }
        }
        // join_attempts is reset when SyncGroup brings an assignment this member
        // takes, so a join that keeps ending in a refused assignment backs off.
        self.join_retry_at = None;
        self.member_id = r.member_id.to_owned();
        self.generation = r.generation_id;
        // The session runs from the JoinGroup answer: heartbeat from here on (see
        // `heartbeating`).
        self.last_heartbeat_ok = now;
        self.next_heartbeat = Some(now + self.cfg.heartbeat_interval);
        self.is_leader = !r.member_id.is_empty() && r.leader == r.member_id && !r.skip_assignment;
        let name = r.protocol_name.unwrap_or("");
        let Some(protocol) = AssignmentStrategy::from_name(name)
            .filter(|s| self.cfg.assignment_strategies.contains(s))
        else {
            return self.fail(GroupError::InconsistentProtocol(name.to_owned()));
        };
        if !self.is_leader {
            self.send_sync(now, r.generation_id, name, Vec::new());
            return;
        }
        let members: Vec<MemberSubscription> = r
            .members
            .iter()
            .map(|m| MemberSubscription {
                member_id: m.member_id.to_owned(),
                group_instance_id: m.group_instance_id.map(str::to_owned),
                // A member whose subscription does not decode gets nothing rather
                // than failing the whole group.
                subscription: Subscription::decode(m.metadata).unwrap_or_default(),
            })
            .collect();
        let join = JoinResult {
            generation: r.generation_id,
            protocol,
            members,
        };
        let missing: Vec<String> = join
            .members
            .iter()
            .flat_map(|m| m.subscription.topics.iter())
            .filter(|t| !self.metadata.contains_key(*t))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if missing.is_empty() {
            self.lead_sync(now, join);
        } else {
            self.events.push_back(Event::MetadataNeeded(missing));
            self.state = State::AwaitingMetadata(join);
        }
    }

    fn lead_sync(&mut self, now: Instant, join: JoinResult) {
        let topics: BTreeSet<String> = join
            .members
            .iter()
            .flat_map(|m| m.subscription.topics.iter().cloned())
            .collect();
        let counts: BTreeMap<String, i32> = topics
            .iter()
            .filter_map(|t| self.metadata.get(t).map(|&n| (t.clone(), n)))
            .collect();
        let plan = join.protocol.assign(&join.members, &counts);
        self.group_topics = topics;
        self.assigned_metadata = counts;
        let assignments = plan
            .into_iter()
            .map(|(m, parts)| {
                let bytes = Assignment {
                    partitions: parts,
                    user_data: None,
                }
                .encode(CONSUMER_PROTOCOL_VERSION);
                (m, bytes)
            })
            .collect();
        self.send_sync(now, join.generation, join.protocol.name(), assignments);
    }

    fn on_sync(&mut self, now: Instant, r: SyncGroupResponse<'_>) {
        if !matches!(self.state, State::Syncing) {
            return;
        }
        match r.error_code {
            ErrorCode::NONE => {}
            ErrorCode::REBALANCE_IN_PROGRESS => {
                self.state = State::Unjoined;
                self.rejoin_needed = true;
                return;
            }
            ErrorCode::UNKNOWN_MEMBER_ID => return self.reset_generation(true),
            ErrorCode::ILLEGAL_GENERATION => return self.reset_generation(false),
            ErrorCode::FENCED_INSTANCE_ID => return self.fail(GroupError::FencedInstanceId),
            ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE => {
                self.state = State::Unjoined;
                self.rejoin_needed = true;
                self.coordinator_lost(now);
                return;
            }
            c if Self::join_fatal(c) => {
                return self.fail(GroupError::Broker {
                    api: "SyncGroup",
                    code: c,
                });
            }
            _ => {
                self.join_attempts += 1;
                self.state = State::Unjoined;
                self.rejoin_needed = true;
                self.join_retry_at = Some(now + self.backoff(self.join_attempts));
                return;
            }
        }
        let assignment = match Assignment::decode(r.assignment) {
            Ok(a) => a,
            Err(e) => {
                // A malformed assignment: rejoin rather than guess.
                log::warn!(
                    target: "weir_consumer::group",
                    "group {}: the leader's assignment cannot be read ({e}); joining again",
                    self.cfg.group_id
                );
                self.join_attempts += 1;
                self.state = State::Unjoined;
                self.rejoin_needed = true;
                self.join_retry_at = Some(now + self.backoff(self.join_attempts));
                return;
            }
        };
        // Topics this member did not subscribe to: the subscription changed since the
        // join, or the leader is wrong. As Java: take none of it and join again (with
        // backoff, so a leader that keeps doing it does not cause a storm).
        let foreign: BTreeSet<&str> = assignment
            .partitions
            .iter()
            .map(|tp| &*tp.topic)
            .filter(|t| !self.subscription.contains(*t))
            .collect();
        if !foreign.is_empty() {
            log::warn!(
                target: "weir_consumer::group",
                "group {}: the assignment names topics this member does not subscribe to \
                 ({}); joining again with the current subscription",
                self.cfg.group_id,
                foreign.into_iter().collect::<Vec<_>>().join(", ")
            );
            self.join_attempts += 1;
            self.state = State::Unjoined;
            self.rejoin_needed = true;
            self.join_retry_at = Some(now + self.backoff(self.join_attempts));
            return;
        }
        // Partitions are known to be non-negative (the decoder refuses others); one
        // the topic does not have (yet) is the fetch layer's to check against live
        // metadata: it reports UnknownPartition and waits for the topic to grow.
        let new: BTreeSet<TopicPartition> = assignment.partitions.into_iter().collect();
        self.join_attempts = 0;
        let revoked: Vec<TopicPartition> = self.assigned.difference(&new).cloned().collect();
        let added: Vec<TopicPartition> = new.difference(&self.assigned).cloned().collect();
        self.previous_assignment = new.iter().cloned().collect();
        for tp in &added {
            self.assigned.insert(tp.clone());
            self.offsets.insert(tp.clone(), PartitionOffsets::default());
            self.fetch_pending.insert(tp.clone());
        }
        self.state = State::Stable;
        self.stats.rebalances += 1;
        self.stats.last_rebalance = self
            .rebalance_started
            .take()
            .map(|t| now.saturating_duration_since(t));
        self.rejoin_reason = "joining the group";
        self.last_heartbeat_ok = now;
        // A cooperative round is often followed at once by a second one, started by
        // a member that gave partitions up; the others learn of it only from a
        // heartbeat, and the partitions that move wait for them. So after a
        // cooperative round the first heartbeats come early (50, 100, 200 ms, then
        // every heartbeat.interval.ms): three small requests per rebalance.
        self.early_heartbeats = if self.protocol == RebalanceProtocol::Cooperative {
            3
        } else {
            0
        };
        self.next_heartbeat = Some(now + self.heartbeat_delay());
        if self.cfg.enable_auto_commit && self.next_auto_commit.is_none() {
            self.next_auto_commit = Some(now + self.cfg.auto_commit_interval);
        }
        if !revoked.is_empty() {
            // Cooperative: give up what moved, then rejoin so it can be assigned.
            self.begin_revoke(now, revoked, AfterRevoke::Rejoin);
        }
        self.events.push_back(Event::PartitionsAssigned(added));
    }

    /// The wait before the next heartbeat: `heartbeat.interval.ms`, or shorter while
    /// early heartbeats are left (50 ms, then 100, then 200).
    fn heartbeat_delay(&self) -> Duration {
        let early = match self.early_heartbeats {
            3 => Duration::from_millis(50),
            2 => Duration::from_millis(100),
            1 => Duration::from_millis(200),
            _ => return self.cfg.heartbeat_interval,
        };
        early.min(self.cfg.heartbeat_interval)
    }

    fn on_heartbeat(&mut self, now: Instant, r: HeartbeatResponse) {
        if !self.heartbeating() {
            return;
        }
        match r.error_code {
            ErrorCode::NONE => {
                self.last_heartbeat_ok = now;
                self.early_heartbeats = self.early_heartbeats.saturating_sub(1);
                self.next_heartbeat = Some(now + self.heartbeat_delay());
            }
            ErrorCode::REBALANCE_IN_PROGRESS => {
                self.last_heartbeat_ok = now;
                self.next_heartbeat = Some(now + self.cfg.heartbeat_interval);
                // While SyncGroup is pending its own answer says whether to join
                // again (as Java, which ignores this outside STABLE).
                if !self.completing_rebalance() {
                    self.rejoin("the group is rebalancing");
                }
            }
            ErrorCode::UNKNOWN_MEMBER_ID => self.reset_generation(true),
            ErrorCode::ILLEGAL_GENERATION => self.reset_generation(false),
            ErrorCode::FENCED_INSTANCE_ID => self.fail(GroupError::FencedInstanceId),
            ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE => {
                self.coordinator_lost(now);
            }
            ErrorCode::GROUP_AUTHORIZATION_FAILED => self.fail(GroupError::Broker {
                api: "Heartbeat",
                code: r.error_code,
            }),
            _ => {
                self.next_heartbeat = Some(now + self.cfg.retry_backoff);
            }
        }
    }
}

fn ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}
