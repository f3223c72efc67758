//! `group.protocol=consumer` (KIP-848): membership through ConsumerGroupHeartbeat.
//!
//! The same [`GroupMember`] as the classic protocol, with its offsets, commits,
//! revocation handshake and close; only how the member joins, learns its assignment
//! and leaves differs. The broker computes every assignment (`group.remote.assignor`),
//! so there is no leader, no JoinGroup/SyncGroup barrier and no eager revocation:
//!
//! ```text
//!  Unjoined ──(heartbeat, epoch 0)──► Joining ──(epoch N)──► Stable ◄──────────┐
//!     ▲                                                        │ target differs │
//!     │ FENCED_MEMBER_EPOCH / UNKNOWN_MEMBER_ID                │ from what is   │
//!     │ (partitions lost, rejoin at epoch 0, same member id)   ▼ owned          │
//!     └──────────────────────────────────────────────── reconcile ──────────────┤
//!                                    revoke what left the target (ack, commit), │
//!                                    then take what joined it, then heartbeat   │
//!                                    the owned partitions at once (the broker ──┘
//!                                    frees them for their next owner on that)
//!  close: revoke all ──► heartbeat epoch -1 (dynamic) or -2 (static: the broker
//!         keeps the assignment for the session timeout) ──► Closed
//! ```
//!
//! Assignments name topics by id; the driver resolves the names from Metadata
//! ([`Event::TopicIdsNeeded`], answered with [`GroupMember::update_topic_ids`]).
//! Partitions of a topic whose name is not known yet wait; the rest reconcile.
//!
//! Heartbeats carry only what changed since the broker last acknowledged a
//! heartbeat (the subscription, the owned partitions), and everything after a join,
//! an error or a lost request, as KIP-848 asks. Commits carry the member epoch as
//! their generation; STALE_MEMBER_EPOCH is retried with the newer epoch.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages as kp;
use weir_protocol::ErrorCode;
use weir_protocol::messages::group::ConsumerGroupHeartbeatResponse;

use super::{AfterRevoke, Event, GroupError, GroupMember, Kind, State, sb};
use crate::TopicPartition;
use crate::envelope::Request;

/// The member epoch that joins (or rejoins) the group.
const JOIN_EPOCH: i32 = 0;
/// The member epoch that leaves the group.
const LEAVE_EPOCH: i32 = -1;
/// The member epoch a static member leaves with: the broker keeps its assignment
/// for the session timeout, for the same `group.instance.id` to take back.
const STATIC_LEAVE_EPOCH: i32 = -2;

/// What a heartbeat told the broker (the fields KIP-848 lets a member leave out
/// when unchanged).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct HeartbeatState {
    topics: BTreeSet<String>,
    regex: Option<String>,
    owned: BTreeSet<TopicPartition>,
}

impl GroupMember {
    pub(super) fn consumer_protocol(&self) -> bool {
        self.cfg.group_protocol == crate::config::GroupProtocol::Consumer
    }

    /// A member id of the client's own (ConsumerGroupHeartbeat v1): 16 random bytes
    /// in URL-safe base64, the form of Kafka's `Uuid`.
    pub(super) fn random_member_id(&mut self) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next_random().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next_random().to_le_bytes());
        let mut out = String::with_capacity(22);
        let mut acc: u32 = 0;
        let mut bits = 0;
        for b in bytes {
            acc = (acc << 8) | u32::from(b);
            bits += 8;
            while bits >= 6 {
                bits -= 6;
                out.push(char::from(ALPHABET[((acc >> bits) & 63) as usize]));
            }
        }
        if bits > 0 {
            out.push(char::from(ALPHABET[((acc << (6 - bits)) & 63) as usize]));
        }
        out
    }

    /// Subscribe by a regular expression the broker evaluates (`group.protocol=consumer`
    /// only; Kafka's RE2J syntax, matched against whole topic names). Replaces a
    /// subscription by names. The broker re-evaluates it as topics are created.
    pub fn subscribe_regex(&mut self, now: Instant, regex: impl Into<String>) {
        let regex = Some(regex.into());
        if regex == self.regex {
            return;
        }
        self.regex = regex;
        self.subscription.clear();
        self.last_poll = now;
        self.heartbeat_soon(now);
    }

    /// Topic names for the ids of an assignment (`group.protocol=consumer`), from
    /// Metadata: call it with every (id, name) a Metadata answer holds after an
    /// [`Event::TopicIdsNeeded`]. Partitions waiting for a name reconcile now.
    pub fn update_topic_ids(
        &mut self,
        now: Instant,
        ids: impl IntoIterator<Item = ([u8; 16], String)>,
    ) {
        for (id, name) in ids {
            if id == [0; 16] || self.topic_names.contains_key(&id) {
                continue;
            }
            let name: Arc<str> = Arc::from(name);
            self.topic_ids.insert(Arc::clone(&name), id);
            self.topic_names.insert(id, name);
        }
        self.ids_asked
            .retain(|id| !self.topic_names.contains_key(id));
        self.reconcile(now);
    }

    /// The consumer protocol's part of `drive`: join, heartbeat, unsubscribe.
    pub(super) fn drive_consumer(&mut self, now: Instant) {
        if self.versions.consumer_group_heartbeat < 0 {
            self.fail(GroupError::ConsumerProtocolUnsupported);
            return;
        }
        if self.versions.offset_commit < 9 {
            // Commits must carry the member epoch, which OffsetCommit has from v9.
            self.fail(GroupError::ConsumerProtocolUnsupported);
            return;
        }
        let subscribed = !self.subscription.is_empty() || self.regex.is_some();
        let hb_inflight = self.has_inflight(|k| matches!(k, Kind::ConsumerHeartbeat { .. }));
        match self.state {
            // Commits of the old epoch finish (or time out) before a rejoin.
            State::Unjoined
                if subscribed
                    && !self.poll_expired
                    && self.commits.is_empty()
                    && self.join_retry_at.is_none_or(|t| t <= now)
                    && !hb_inflight =>
            {
                self.rebalance_started.get_or_insert(now);
                self.state = State::Joining;
                self.send_consumer_heartbeat(now, JOIN_EPOCH);
            }
            State::Stable if !subscribed => {
                // Unsubscribed from everything: give the partitions up, then leave
                // (Java's unsubscribe()).
                if self.assigned.is_empty() {
                    self.leave(now, "the consumer unsubscribed from all topics");
                } else {
                    let all: Vec<_> = self.assigned.iter().cloned().collect();
                    self.begin_revoke(now, all, AfterRevoke::Unsubscribe);
                }
            }
            State::Stable | State::Revoking { .. } => {
                let due = self.hb_now || self.next_heartbeat.is_some_and(|t| t <= now);
                if due && !hb_inflight && self.generation > 0 {
                    self.send_consumer_heartbeat(now, self.generation);
                }
            }
            _ => {}
        }
    }

    /// The epoch this member leaves with.
    pub(super) fn leave_epoch(&self, poll_expired: bool) -> i32 {
        // A static member that closes keeps its assignment reserved; one whose
        // handler stalled leaves for good, so the group moves its partitions on.
        if self.cfg.group_instance_id.is_some() && !poll_expired {
            STATIC_LEAVE_EPOCH
        } else {
            LEAVE_EPOCH
        }
    }

    pub(super) fn send_consumer_heartbeat(&mut self, now: Instant, epoch: i32) {
        let v = self.versions.consumer_group_heartbeat;
        let leaving = epoch < 0;
        let full = epoch == JOIN_EPOCH || self.hb_acked.is_none();
        let state = HeartbeatState {
            topics: self.subscription.clone(),
            regex: self.regex.clone(),
            owned: self.assigned.clone(),
        };
        let acked = self.hb_acked.clone().unwrap_or_default();
        let mut req = kp::ConsumerGroupHeartbeatRequest::default()
            .with_group_id(kp::GroupId(sb(&self.cfg.group_id)))
            .with_member_id(sb(&self.member_id))
            .with_member_epoch(epoch)
            .with_instance_id(self.cfg.group_instance_id.as_deref().map(sb));
        if !leaving {
            if full {
                req = req
                    .with_rack_id(self.cfg.rack.as_deref().map(sb))
                    .with_rebalance_timeout_ms(super::ms(self.cfg.rebalance_timeout()))
                    .with_server_assignor(self.cfg.remote_assignor.as_deref().map(sb));
            }
            if full || state.topics != acked.topics || state.regex != acked.regex {
                req = match &state.regex {
                    Some(re) => req
                        .with_subscribed_topic_regex(Some(sb(re)))
                        .with_subscribed_topic_names(Some(Vec::new())),
                    None => req.with_subscribed_topic_names(Some(
                        state.topics.iter().map(|t| kp::TopicName(sb(t))).collect(),
                    )),
                };
            }
            if full || state.owned != acked.owned {
                // A (re)join owns nothing: the broker wants an empty list then.
                let owned = if epoch == JOIN_EPOCH {
                    Vec::new()
                } else {
                    self.owned_by_id()
                };
                req = req.with_topic_partitions(Some(owned));
            }
        }
        self.hb_now = false;
        self.next_heartbeat = None;
        let timeout = self.cfg.request_timeout;
        self.send(
            now,
            Kind::ConsumerHeartbeat {
                epoch,
                sent: Box::new(state),
            },
            v,
            Request::ConsumerGroupHeartbeat(req),
            timeout,
        );
    }

    /// The owned partitions by topic id (every owned topic came from an assignment,
    /// which named it by id).
    fn owned_by_id(&self) -> Vec<kp::consumer_group_heartbeat_request::TopicPartitions> {
        let mut out: Vec<kp::consumer_group_heartbeat_request::TopicPartitions> = Vec::new();
        let mut last: Option<&str> = None;
        for tp in &self.assigned {
            let Some(id) = self.topic_ids.get(&tp.topic) else {
                continue;
            };
            if last != Some(&*tp.topic) {
                last = Some(&*tp.topic);
                out.push(
                    kp::consumer_group_heartbeat_request::TopicPartitions::default()
                        .with_topic_id(uuid::Uuid::from_bytes(*id)),
                );
            }
            if let Some(t) = out.last_mut() {
                t.partitions.push(tp.partition);
            }
        }
        out
    }

    pub(super) fn on_consumer_heartbeat(
        &mut self,
        now: Instant,
        epoch: i32,
        sent: HeartbeatState,
        r: ConsumerGroupHeartbeatResponse<'_>,
    ) {
        if matches!(self.state, State::Leaving { .. }) {
            // Whatever the answer, the member is out.
            self.finish_close();
            return;
        }
        if epoch < 0 {
            // A leave outside close (unsubscribed, poll interval): nothing waits.
            return;
        }
        if matches!(self.state, State::Closed | State::Failed(_)) {
            return;
        }
        let joining = matches!(self.state, State::Joining);
        match r.error_code {
            ErrorCode::NONE => {}
            ErrorCode::FENCED_MEMBER_EPOCH | ErrorCode::UNKNOWN_MEMBER_ID => {
                // The broker no longer counts this member (or this epoch) in: its
                // partitions may be someone else's already. Lose them and rejoin
                // at epoch 0 with the same member id, at once, as Java.
                log::warn!(
                    target: "weir_consumer::group",
                    "group {}: {} ({}); the partitions are lost, joining again",
                    self.cfg.group_id,
                    r.error_code,
                    r.error_message.unwrap_or("no detail")
                );
                self.reset_generation(false);
                self.join_retry_at = None;
                return;
            }
            ErrorCode::FENCED_INSTANCE_ID => return self.fail(GroupError::FencedInstanceId),
            ErrorCode::UNRELEASED_INSTANCE_ID => {
                return self.fail(GroupError::UnreleasedInstanceId);
            }
            ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE => {
                if joining {
                    self.state = State::Unjoined;
                }
                self.hb_acked = None;
                self.hb_now = true;
                self.coordinator_lost(now);
                return;
            }
            ErrorCode::GROUP_MAX_SIZE_REACHED
            | ErrorCode::UNSUPPORTED_ASSIGNOR
            | ErrorCode::INVALID_REQUEST
            | ErrorCode::INVALID_REGULAR_EXPRESSION
            | ErrorCode::GROUP_AUTHORIZATION_FAILED
            | ErrorCode::TOPIC_AUTHORIZATION_FAILED
            | ErrorCode::INCONSISTENT_GROUP_PROTOCOL
            | ErrorCode::INVALID_GROUP_ID
            | ErrorCode::UNSUPPORTED_VERSION => {
                return self.fail(GroupError::Broker {
                    api: "ConsumerGroupHeartbeat",
                    code: r.error_code,
                });
            }
            code => {
                // COORDINATOR_LOAD_IN_PROGRESS, throttling, unknown: again after a
                // backoff, with everything (the broker may have lost the last one).
                if !code.is_retriable() {
                    log::warn!(
                        target: "weir_consumer::group",
                        "group {}: ConsumerGroupHeartbeat failed with {code} ({}); retrying",
                        self.cfg.group_id,
                        r.error_message.unwrap_or("no detail")
                    );
                }
                self.hb_acked = None;
                self.join_attempts += 1;
                let wait = self.backoff(self.join_attempts);
                if joining {
                    self.state = State::Unjoined;
                    self.join_retry_at = Some(now + wait);
                } else {
                    self.next_heartbeat = Some(now + wait);
                }
                return;
            }
        }
        self.join_attempts = 0;
        self.last_heartbeat_ok = now;
        self.hb_acked = Some(sent);
        if let Some(id) = r.member_id.filter(|id| !id.is_empty())
            && id != self.member_id
        {
            // v0 brokers assign the id; v1 echo the client's own.
            self.member_id = id.to_owned();
        }
        self.hb_interval =
            Duration::from_millis(u64::try_from(r.heartbeat_interval_ms).unwrap_or(0));
        if joining {
            self.state = State::Stable;
            self.announce = true;
            // The first assignment often follows the join by one heartbeat.
            self.changed_at = Some(now);
            if self.cfg.enable_auto_commit && self.next_auto_commit.is_none() {
                self.next_auto_commit = Some(now + self.cfg.auto_commit_interval);
            }
        }
        self.generation = r.member_epoch;
        if let Some(a) = r.assignment {
            let target: Vec<([u8; 16], Vec<i32>)> = a
                .into_iter()
                .map(|t| {
                    let mut ps: Vec<i32> = t.partitions.into_iter().filter(|p| *p >= 0).collect();
                    ps.sort_unstable();
                    ps.dedup();
                    (t.topic_id, ps)
                })
                .collect();
            if self.target.as_ref() != Some(&target) {
                self.rebalance_started.get_or_insert(now);
                self.target = Some(target);
                // Names still unknown are asked again for the new assignment.
                self.ids_asked.clear();
                // Partitions withheld now (their owner is still revoking) are
                // released when that owner reports it, which may be any time in its
                // own heartbeat interval: ask often until then rather than a whole
                // interval later.
                self.changed_at = Some(now);
            }
        }
        self.next_heartbeat = Some(if self.hb_now {
            now
        } else {
            now + self.consumer_heartbeat_delay(now)
        });
        self.reconcile(now);
    }

    /// The broker's heartbeat interval; shorter for one interval after a join or a
    /// new target assignment (every 50 ms for the first second, then every 250 ms),
    /// so a member hears of partitions their old owner released within tens of ms.
    /// That costs about 20 small requests per rebalance per member, plus 4 a second
    /// for the rest of the interval.
    fn consumer_heartbeat_delay(&self, now: Instant) -> Duration {
        let since = self
            .changed_at
            .map_or(Duration::MAX, |t| now.saturating_duration_since(t));
        let early = if since < Duration::from_secs(1) {
            Duration::from_millis(50)
        } else if since < self.hb_interval {
            Duration::from_millis(250)
        } else {
            return self.hb_interval;
        };
        early.min(self.hb_interval)
    }

    /// Move the owned partitions toward the target: revoke what left it first
    /// (the driver acks, commits go out), then take what joined it, then tell the
    /// broker at once.
    pub(super) fn reconcile(&mut self, now: Instant) {
        if !self.consumer_protocol() || !matches!(self.state, State::Stable) {
            return;
        }
        // Joined with no assignment yet: nothing to reconcile until one comes.
        let Some(target) = &self.target else {
            return;
        };
        let mut resolved: BTreeSet<TopicPartition> = BTreeSet::new();
        let mut unknown: Vec<[u8; 16]> = Vec::new();
        for (id, parts) in target {
            match self.topic_names.get(id) {
                Some(name) => {
                    resolved.extend(parts.iter().map(|p| TopicPartition::shared(name, *p)));
                }
                None => unknown.push(*id),
            }
        }
        let ask: Vec<[u8; 16]> = unknown
            .into_iter()
            .filter(|id| !self.ids_asked.contains(id))
            .collect();
        if !ask.is_empty() {
            self.ids_asked.extend(ask.iter().copied());
            self.events.push_back(Event::TopicIdsNeeded(ask));
        }
        let revoked: Vec<TopicPartition> = self.assigned.difference(&resolved).cloned().collect();
        if !revoked.is_empty() {
            self.begin_revoke(now, revoked, AfterRevoke::Reconcile);
            return;
        }
        let added: Vec<TopicPartition> = resolved.difference(&self.assigned).cloned().collect();
        // The first reconciliation after a join is announced even when empty (the
        // listener hears of its assignment, as in Java), unless names are missing:
        // then the announcement waits for them.
        if added.is_empty() && (!self.announce || !self.ids_asked.is_empty()) {
            if self.ids_asked.is_empty() {
                self.finish_rebalance(now);
            }
            return;
        }
        self.announce = false;
        for tp in &added {
            self.assigned.insert(tp.clone());
            self.offsets
                .insert(tp.clone(), super::offsets::PartitionOffsets::default());
            self.fetch_pending.insert(tp.clone());
        }
        self.previous_assignment = self.assigned.iter().cloned().collect();
        if self.ids_asked.is_empty() {
            self.finish_rebalance(now);
        }
        self.events.push_back(Event::PartitionsAssigned(added));
        // Acknowledge: the broker moves on (bumps the epoch, frees partitions for
        // others) only when it hears what this member owns now.
        self.heartbeat_soon(now);
    }

    fn finish_rebalance(&mut self, now: Instant) {
        if let Some(t) = self.rebalance_started.take() {
            self.stats.rebalances += 1;
            self.stats.last_rebalance = Some(now.saturating_duration_since(t));
        }
    }
}
