//! weir-coordinator: the sans-IO consumer-group member, assignors and offsets.
//!
//! * [`GroupMember`]: the membership state machine (FindCoordinator, JoinGroup,
//!   SyncGroup, Heartbeat, LeaveGroup; or ConsumerGroupHeartbeat under
//!   `group.protocol=consumer`) with offset tracking, OffsetFetch and OffsetCommit. The state diagram is in [`member`].
//! * [`assignor`]: `range`, `roundrobin`, `sticky`, `cooperative-sticky`.
//! * [`consumer_protocol`]: the Java-compatible Subscription/Assignment bytes.
//! * [`GroupConfig`]: Kafka's property names and the Java client's defaults.
//!
//! What this crate does not do: it opens no sockets, reads no clock, spawns no
//! threads and draws no OS randomness. Time comes in as `now: Instant`; jitter comes
//! from `GroupConfig::rng_seed`. It never decodes wire bytes itself: the driver
//! decodes responses with `weir_protocol::messages::group` and passes them in.
//!
//! # Driving a [`GroupMember`]
//!
//! The driver (the reactor in weir-fetch) owns one connection to the coordinator,
//! separate from fetch connections so a slow fetch never delays a heartbeat. Its
//! loop, in this order:
//!
//! 1. **Application calls**, whenever they happen: [`GroupMember::subscribe`],
//!    [`GroupMember::poll`] (every application poll; it feeds
//!    `max.poll.interval.ms`), [`GroupMember::record_processed`] (after the handler
//!    finished a record), [`GroupMember::commit_processed`] /
//!    [`GroupMember::commit_offsets`], [`GroupMember::ack_revoked`],
//!    [`GroupMember::update_metadata`], [`GroupMember::close`].
//! 2. **Send**: `while let Some(out) = member.poll_transmit(now)`: encode
//!    with [`Request::encode_frame`] at `out.version` and send it on
//!    `out.target` ([`Target::AnyBroker`] for FindCoordinator, else the
//!    coordinator connection, opened to the address given). Remember `out.id`
//!    beside the correlation id.
//! 3. **Receive**: decode each response body with [`Response::decode`] (weir's
//!    bounded group decoders) at the version sent (the header is flexible when
//!    [`Request::response_header_flexible`] says so), then [`GroupMember::handle_response`]`(now, id, Response::…)`. If a
//!    request's connection fails, call [`GroupMember::handle_request_failed`]; if
//!    the coordinator connection closes, [`GroupMember::handle_disconnect`].
//! 4. **Timers**: sleep until [`GroupMember::poll_timeout`] (or I/O), then
//!    [`GroupMember::handle_timeout`]`(now)`. Timers: heartbeat, session, poll
//!    interval, JoinGroup (rebalance timeout + 5 s), request timeouts, retry
//!    backoff, auto-commit, close deadline.
//! 5. **Events**: `while let Some(ev) = member.poll_event()`:
//!    * [`Event::PartitionsRevoked`]: stop fetching those partitions, let in-flight
//!      records drain through the handlers, record their offsets, run the
//!      application's revoke callback (it may commit), then call
//!      [`GroupMember::ack_revoked`] (a commit queued before the ack finishes
//!      before the JoinGroup goes out). The machine neither rejoins nor leaves until
//!      then; with `enable.auto.commit` it commits the processed offsets itself
//!      after the ack and before the JoinGroup or LeaveGroup.
//!    * [`Event::PartitionsAssigned`]: start the partitions once their
//!      [`Event::StartPositions`] arrive ([`StartPosition::NeedsReset`] means run
//!      ListOffsets per `auto.offset.reset`).
//!    * [`Event::PartitionsLost`]: drop work on them now; do not commit.
//!    * [`Event::MetadataNeeded`]: the leader needs partition counts; answer with
//!      [`GroupMember::update_metadata`] (also call it on every metadata refresh).
//!    * [`Event::TopicIdsNeeded`] (`group.protocol=consumer`): the assignment names
//!      topics by id; answer with [`GroupMember::update_topic_ids`] from Metadata.
//!    * [`Event::CommitCompleted`]: the outcome of a commit, by [`CommitId`]
//!      (`commit_sync` = queue with [`CommitMode::Sync`] and wait for this).
//!    * [`Event::CoordinatorLost`]: close the coordinator connection.
//!    * [`Event::Fatal`]: stop; the error says what to change. [`Event::Closed`]:
//!      close finished.
//!
//! Set the request versions once ApiVersions is known:
//! [`GroupMember::set_versions`]`(`[`GroupVersions::from_table`]`(&table)?)`.
//!
//! # Known limits
//!
//! * `group.protocol=consumer` (KIP-848, [`GroupConfig::group_protocol`]) speaks
//!   ConsumerGroupHeartbeat v1 only (Kafka 4.0+; v0 was early access). Its rules are in
//!   the `member::consumer` module docs; the classic rules below apply to `classic`.
//! * No rack-aware assignment (the rack is sent in the subscription, not used).
//! * With unequal subscriptions the sticky assignors balance greedily, without a
//!   proof of optimality; with equal subscriptions max - min <= 1.
//! * Partition errors in OffsetFetch (e.g. UNKNOWN_TOPIC_OR_PARTITION) are retried
//!   every `retry.backoff.ms` while the partition stays assigned.
//! * Only the leader rebalances on partition-count changes, from the counts given
//!   to [`GroupMember::update_metadata`].

pub mod assignor;
pub mod config;
pub mod consumer_protocol;
pub mod envelope;
pub mod member;

pub use assignor::{AssignmentStrategy, GroupAssignment, MemberSubscription, RebalanceProtocol};
pub use config::{AutoOffsetReset, ConfigError, GroupConfig, GroupProtocol};
pub use consumer_protocol::{Assignment, Subscription};
pub use member::{
    CommitError, CommitId, CommitMode, CoordinatorAddr, Event, GroupError, GroupMember, GroupStats,
    GroupVersions, OffsetAndMetadata, Outgoing, Phase, Request, RequestId, Response, StartPosition,
    Target,
};

/// A topic partition.
///
/// The name is shared (`Arc<str>`): a decoded assignment lists many partitions of one
/// topic, and a copy of the name per 4-byte partition entry let a hostile member's
/// bytes ask for thousands of times their size.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic name.
    pub topic: std::sync::Arc<str>,
    /// The partition number.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic partition.
    pub fn new(topic: impl AsRef<str>, partition: i32) -> Self {
        Self {
            topic: std::sync::Arc::from(topic.as_ref()),
            partition,
        }
    }

    /// A partition of a topic whose name is already shared (no copy of the name).
    pub fn shared(topic: &std::sync::Arc<str>, partition: i32) -> Self {
        Self {
            topic: std::sync::Arc::clone(topic),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}
