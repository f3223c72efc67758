//! Offset tracking and commits of the group member: what the handler processed, what
//! is committed, commits in flight with their retries (Java's `commitSync` and
//! `commitAsync` semantics), and the start positions OffsetFetch answers for newly
//! assigned partitions. The same [`GroupMember`] as the membership machine, in a
//! module of its own: these methods read the membership state (generation, member
//! id, assignment) but never change it, except to ask for a rejoin when a commit
//! finds the generation gone.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

use kafka_protocol::messages as kp;

use weir_protocol::ErrorCode;
use weir_protocol::messages::group::{OffsetCommitResponse, OffsetFetchResponse};

use super::{Event, GroupError, GroupMember, Kind, State, sb};
use crate::TopicPartition;
use crate::config::AutoOffsetReset;
use crate::envelope::{Request, RequestId};

/// Identifies one commit; its completion carries the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitId(pub u64);

/// An offset to commit, with its leader epoch and metadata string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    /// The next offset to read (last processed + 1).
    pub offset: i64,
    /// The leader epoch of the last processed record, if known.
    pub leader_epoch: Option<i32>,
    /// The commit metadata string.
    pub metadata: String,
}

/// How a commit waits and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitMode {
    /// One attempt; the completion reports the outcome (Java's `commitAsync`).
    Async,
    /// Retry retriable errors until `timeout` has passed (Java's `commitSync`).
    Sync {
        /// How long to keep trying.
        timeout: Duration,
    },
}

/// Why a commit failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitError {
    /// A retriable broker error (coordinator moving or loading); retry later.
    Retriable(ErrorCode),
    /// The group is rebalancing; commit again once the rebalance completes.
    RebalanceInProgress,
    /// This member is no longer in the generation (UNKNOWN_MEMBER_ID or
    /// ILLEGAL_GENERATION): its partitions may belong to another member now, so
    /// these offsets cannot be committed. Rejoin happens automatically.
    CommitFailed(ErrorCode),
    /// A non-retriable broker error (authorization, metadata too large, ...).
    Fatal(ErrorCode),
    /// Not a member of an active generation (no assignment yet, or left).
    NotMember,
    /// The commit did not complete within its timeout.
    TimedOut,
    /// The member is closed or failed.
    Closed,
}

impl fmt::Display for CommitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Retriable(c) => write!(f, "retriable commit error {c}; retry the commit"),
            Self::RebalanceInProgress => {
                f.write_str("group is rebalancing; commit again after the rebalance completes")
            }
            Self::CommitFailed(c) => write!(
                f,
                "commit failed ({c}): this member left the generation, its partitions may be reassigned; \
                 consider a larger max.poll.interval.ms or smaller batches"
            ),
            Self::Fatal(c) => write!(f, "commit rejected: {c}"),
            Self::NotMember => {
                f.write_str("not a member of an active generation; wait for an assignment")
            }
            Self::TimedOut => f.write_str("commit timed out; the coordinator was unreachable"),
            Self::Closed => f.write_str("the group member is closed"),
        }
    }
}

impl std::error::Error for CommitError {}

/// Where to start reading an assigned partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartPosition {
    /// The group's committed offset.
    Committed {
        /// The offset.
        offset: i64,
        /// Its leader epoch, if the broker returned one.
        leader_epoch: Option<i32>,
        /// The commit metadata.
        metadata: Option<String>,
    },
    /// No committed offset: apply `auto.offset.reset` (ListOffsets is the fetch
    /// layer's job; `None` means the application must seek or fail).
    NeedsReset(AutoOffsetReset),
}

#[derive(Debug, Clone)]
pub(super) struct PendingCommit {
    pub(super) id: CommitId,
    pub(super) offsets: Vec<(TopicPartition, OffsetAndMetadata)>,
    pub(super) deadline: Instant,
    pub(super) retriable: bool,
    pub(super) retry_at: Option<Instant>,
    pub(super) sent: Option<RequestId>,
}

#[derive(Debug, Clone, Default)]
pub(super) struct PartitionOffsets {
    pub(super) processed: Option<(i64, Option<i32>)>,
    pub(super) committed: Option<i64>,
}

impl GroupMember {
    /// The last committed offset this member knows for `tp`.
    pub fn committed(&self, tp: &TopicPartition) -> Option<i64> {
        self.offsets.get(tp).and_then(|o| o.committed)
    }

    /// Record that the handler finished the record at `offset` of `tp`: the next
    /// commit for `tp` is `offset + 1`. Ignored for partitions not assigned.
    pub fn record_processed(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        leader_epoch: Option<i32>,
    ) {
        if !self.assigned.contains(tp) {
            return;
        }
        let e = self.offsets.entry(tp.clone()).or_default();
        let next = offset.saturating_add(1);
        if e.processed.is_none_or(|(o, _)| next > o) {
            e.processed = Some((next, leader_epoch));
        }
    }

    /// Commit every processed offset not yet committed. `None` when there is
    /// nothing new to commit.
    pub fn commit_processed(&mut self, now: Instant, mode: CommitMode) -> Option<CommitId> {
        let offsets: Vec<_> = self
            .offsets
            .iter()
            .filter_map(|(tp, o)| {
                let (off, epoch) = o.processed?;
                (o.committed != Some(off)).then(|| {
                    (
                        tp.clone(),
                        OffsetAndMetadata {
                            offset: off,
                            leader_epoch: epoch,
                            metadata: String::new(),
                        },
                    )
                })
            })
            .collect();
        if offsets.is_empty() {
            return None;
        }
        Some(self.commit_offsets(now, offsets, mode))
    }

    /// Commit explicit offsets. The outcome arrives as [`Event::CommitCompleted`].
    pub fn commit_offsets(
        &mut self,
        now: Instant,
        offsets: Vec<(TopicPartition, OffsetAndMetadata)>,
        mode: CommitMode,
    ) -> CommitId {
        self.next_commit += 1;
        let id = CommitId(self.next_commit);
        let fail = match &self.state {
            State::Closed | State::Failed(_) => Some(CommitError::Closed),
            State::Stable | State::Revoking { .. } | State::Leaving { .. }
                if self.generation >= 0 =>
            {
                None
            }
            State::Joining | State::AwaitingMetadata(_) | State::Syncing => {
                Some(CommitError::RebalanceInProgress)
            }
            State::Unjoined if self.generation >= 0 => Some(CommitError::RebalanceInProgress),
            _ => Some(CommitError::NotMember),
        };
        if let Some(err) = fail {
            self.commit_event(id, &offsets, Err(err));
            return id;
        }
        let (timeout, retriable) = match mode {
            CommitMode::Async => (self.cfg.request_timeout, false),
            CommitMode::Sync { timeout } => (timeout, true),
        };
        self.commits.push(PendingCommit {
            id,
            offsets,
            deadline: now + timeout,
            retriable,
            retry_at: None,
            sent: None,
        });
        id
    }

    pub(super) fn commit_event(
        &mut self,
        id: CommitId,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
        result: Result<(), CommitError>,
    ) {
        if result.is_ok() {
            self.stats.commits_ok += 1;
        } else {
            self.stats.commits_failed += 1;
        }
        self.events.push_back(Event::CommitCompleted {
            id,
            offsets: offsets
                .iter()
                .map(|(tp, o)| (tp.clone(), o.offset))
                .collect(),
            result,
        });
    }

    pub(super) fn send_offset_fetch(&mut self, now: Instant) {
        let parts: Vec<TopicPartition> = std::mem::take(&mut self.fetch_pending)
            .into_iter()
            .collect();
        let v = self.versions.offset_fetch;
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in &parts {
            by_topic.entry(&*tp.topic).or_default().push(tp.partition);
        }
        let req = if v >= 8 {
            let topics = by_topic
                .iter()
                .map(|(t, ps)| {
                    kp::offset_fetch_request::OffsetFetchRequestTopics::default()
                        .with_name(kp::TopicName(sb(t)))
                        .with_partition_indexes(ps.clone())
                })
                .collect();
            kp::OffsetFetchRequest::default()
                .with_groups(vec![
                    kp::offset_fetch_request::OffsetFetchRequestGroup::default()
                        .with_group_id(kp::GroupId(sb(&self.cfg.group_id)))
                        .with_topics(Some(topics)),
                ])
                .with_require_stable(true)
        } else {
            let topics = by_topic
                .iter()
                .map(|(t, ps)| {
                    kp::offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(kp::TopicName(sb(t)))
                        .with_partition_indexes(ps.clone())
                })
                .collect();
            let mut r = kp::OffsetFetchRequest::default()
                .with_group_id(kp::GroupId(sb(&self.cfg.group_id)))
                .with_topics(Some(topics));
            if v >= 7 {
                r = r.with_require_stable(true);
            }
            r
        };
        self.fetch_retry_at = None;
        let timeout = self.cfg.request_timeout;
        self.send(
            now,
            Kind::OffsetFetch(parts),
            v,
            Request::OffsetFetch(req),
            timeout,
        );
    }

    pub(super) fn send_commit(&mut self, now: Instant, cid: CommitId) {
        let Some(c) = self.commits.iter().find(|c| c.id == cid) else {
            return;
        };
        let v = self.versions.offset_commit;
        let mut by_topic: BTreeMap<
            &str,
            Vec<kp::offset_commit_request::OffsetCommitRequestPartition>,
        > = BTreeMap::new();
        for (tp, o) in &c.offsets {
            let mut p = kp::offset_commit_request::OffsetCommitRequestPartition::default()
                .with_partition_index(tp.partition)
                .with_committed_offset(o.offset)
                .with_committed_metadata(Some(sb(&o.metadata)));
            if v >= 6 {
                p = p.with_committed_leader_epoch(o.leader_epoch.unwrap_or(-1));
            }
            by_topic.entry(&*tp.topic).or_default().push(p);
        }
        let topics = by_topic
            .into_iter()
            .map(|(t, ps)| {
                kp::offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(kp::TopicName(sb(t)))
                    .with_partitions(ps)
            })
            .collect();
        let mut req = kp::OffsetCommitRequest::default()
            .with_group_id(kp::GroupId(sb(&self.cfg.group_id)))
            .with_generation_id_or_member_epoch(self.generation)
            .with_member_id(sb(&self.member_id))
            .with_topics(topics);
        if v >= 7 {
            req = req.with_group_instance_id(self.cfg.group_instance_id.as_deref().map(sb));
        }
        if (2..=4).contains(&v) {
            req = req.with_retention_time_ms(-1);
        }
        let timeout = self.cfg.request_timeout;
        self.send(
            now,
            Kind::Commit(cid),
            v,
            Request::OffsetCommit(req),
            timeout,
        );
    }

    pub(super) fn retry_or_complete(&mut self, now: Instant, cid: CommitId, err: CommitError) {
        let Some(i) = self.commits.iter().position(|c| c.id == cid) else {
            return;
        };
        let retry = matches!(err, CommitError::Retriable(_))
            && self.commits[i].retriable
            && now < self.commits[i].deadline;
        if retry {
            let delay = self.backoff(1);
            let c = &mut self.commits[i];
            c.sent = None;
            c.retry_at = Some(now + delay);
        } else {
            let c = self.commits.remove(i);
            self.complete_commit(now, c, Err(err));
        }
    }

    pub(super) fn complete_commit(
        &mut self,
        now: Instant,
        c: PendingCommit,
        result: Result<(), CommitError>,
    ) {
        self.commit_event(c.id, &c.offsets, result);
        // A revoke or close waiting for its final commit proceeds either way.
        if let State::Revoking {
            after,
            acked: true,
            commit: Some(w),
        } = self.state
            && w == c.id
        {
            self.finish_revoke(now, after);
        }
    }

    pub(super) fn on_commit(&mut self, now: Instant, cid: CommitId, r: OffsetCommitResponse<'_>) {
        let mut first_err = ErrorCode::NONE;
        let mut ok: Vec<(TopicPartition, ())> = Vec::new();
        for t in &r.topics {
            for p in &t.partitions {
                let tp = TopicPartition::new(t.name, p.partition_index);
                if p.error_code.is_ok() {
                    ok.push((tp, ()));
                } else if first_err.is_ok() {
                    first_err = p.error_code;
                }
            }
        }
        if let Some(c) = self.commits.iter().find(|c| c.id == cid) {
            for (tp, o) in &c.offsets {
                if ok.iter().any(|(x, _)| x == tp)
                    && let Some(e) = self.offsets.get_mut(tp)
                {
                    e.committed = Some(o.offset);
                }
            }
        }
        let err = match first_err {
            ErrorCode::NONE => None,
            ErrorCode::NOT_COORDINATOR
            | ErrorCode::COORDINATOR_NOT_AVAILABLE
            | ErrorCode::REQUEST_TIMED_OUT => {
                self.coordinator_lost(now);
                Some(CommitError::Retriable(first_err))
            }
            ErrorCode::REBALANCE_IN_PROGRESS => {
                self.rejoin("the group is rebalancing");
                Some(CommitError::RebalanceInProgress)
            }
            // group.protocol=consumer: the epoch moved on since the commit was built;
            // a retry carries the newer one (Java retries these too).
            ErrorCode::STALE_MEMBER_EPOCH => Some(CommitError::Retriable(first_err)),
            ErrorCode::UNKNOWN_MEMBER_ID
            | ErrorCode::ILLEGAL_GENERATION
            | ErrorCode::FENCED_MEMBER_EPOCH => {
                let reset_member = first_err == ErrorCode::UNKNOWN_MEMBER_ID;
                if let Some(i) = self.commits.iter().position(|c| c.id == cid) {
                    let c = self.commits.remove(i);
                    self.complete_commit(now, c, Err(CommitError::CommitFailed(first_err)));
                }
                self.reset_generation(reset_member);
                return;
            }
            ErrorCode::FENCED_INSTANCE_ID => {
                if let Some(i) = self.commits.iter().position(|c| c.id == cid) {
                    let c = self.commits.remove(i);
                    self.complete_commit(now, c, Err(CommitError::Fatal(first_err)));
                }
                self.fail(GroupError::FencedInstanceId);
                return;
            }
            c if c.is_retriable() => Some(CommitError::Retriable(c)),
            c => Some(CommitError::Fatal(c)),
        };
        match err {
            None => {
                if let Some(i) = self.commits.iter().position(|c| c.id == cid) {
                    let c = self.commits.remove(i);
                    self.complete_commit(now, c, Ok(()));
                }
            }
            Some(e) => self.retry_or_complete(now, cid, e),
        }
    }

    pub(super) fn on_offset_fetch(
        &mut self,
        now: Instant,
        parts: Vec<TopicPartition>,
        r: OffsetFetchResponse<'_>,
    ) {
        let group = r
            .groups
            .iter()
            .find(|g| g.group_id.is_empty() || g.group_id == self.cfg.group_id);
        let retry_all = |me: &mut Self, now: Instant| {
            me.fetch_pending
                .extend(parts.iter().filter(|tp| me.assigned.contains(*tp)).cloned());
            me.fetch_retry_at = Some(now + me.cfg.retry_backoff);
        };
        let Some(g) = group else {
            return retry_all(self, now);
        };
        match g.error_code {
            ErrorCode::NONE => {}
            ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE => {
                retry_all(self, now);
                self.coordinator_lost(now);
                return;
            }
            ErrorCode::GROUP_AUTHORIZATION_FAILED => {
                return self.fail(GroupError::Broker {
                    api: "OffsetFetch",
                    code: g.error_code,
                });
            }
            // UNSTABLE_OFFSET_COMMIT (a transaction is committing offsets),
            // COORDINATOR_LOAD_IN_PROGRESS and anything else: try again.
            _ => return retry_all(self, now),
        }
        let mut positions = Vec::new();
        let mut answered = BTreeSet::new();
        for t in &g.topics {
            for p in &t.partitions {
                let tp = TopicPartition::new(t.name, p.partition_index);
                if !parts.contains(&tp) || !self.assigned.contains(&tp) {
                    continue;
                }
                if p.error_code.is_err() {
                    // UNSTABLE_OFFSET_COMMIT and transient errors: ask again.
                    continue;
                }
                answered.insert(tp.clone());
                let pos = if p.committed_offset >= 0 {
                    if let Some(e) = self.offsets.get_mut(&tp) {
                        e.committed = Some(p.committed_offset);
                    }
                    StartPosition::Committed {
                        offset: p.committed_offset,
                        leader_epoch: (p.committed_leader_epoch >= 0)
                            .then_some(p.committed_leader_epoch),
                        metadata: p.metadata.map(str::to_owned),
                    }
                } else {
                    StartPosition::NeedsReset(self.cfg.auto_offset_reset)
                };
                positions.push((tp, pos));
            }
        }
        let unanswered: Vec<_> = parts
            .into_iter()
            .filter(|tp| self.assigned.contains(tp) && !answered.contains(tp))
            .collect();
        if !unanswered.is_empty() {
            self.fetch_pending.extend(unanswered);
            self.fetch_retry_at = Some(now + self.cfg.retry_backoff);
        }
        if !positions.is_empty() {
            self.events.push_back(Event::StartPositions(positions));
        }
    }
}
