//! `group.protocol=consumer` (KIP-848): the member driven through scripted
//! ConsumerGroupHeartbeat answers on a virtual clock, one test per state and error.

use bytes::BytesMut;
use kafka_protocol::messages as kp;
use std::time::{Duration, Instant};
use weir_coordinator::*;
use weir_protocol::ErrorCode;
use weir_protocol::messages::group::*;

const MS: Duration = Duration::from_millis(1);
const T: [u8; 16] = [7; 16];
const U: [u8; 16] = [9; 16];

struct H {
    m: GroupMember,
    now: Instant,
}

fn cfg() -> GroupConfig {
    let mut c = GroupConfig::new("g");
    c.group_protocol = GroupProtocol::Consumer;
    c.enable_auto_commit = false;
    c
}

impl H {
    fn new(c: GroupConfig) -> Self {
        let now = Instant::now();
        let mut m = GroupMember::new(c, now).expect("valid config");
        m.set_versions(GroupVersions::MAX);
        Self { m, now }
    }
    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.m.handle_timeout(self.now);
    }
    fn tx(&mut self) -> Vec<Outgoing> {
        let mut v = Vec::new();
        while let Some(o) = self.m.poll_transmit(self.now) {
            let mut b = BytesMut::new();
            o.request
                .encode_frame(&mut b, 1, Some("weir"), o.version)
                .expect("encodes");
            v.push(o);
        }
        v
    }
    fn one(&mut self, api: i16) -> Outgoing {
        let v = self.tx();
        assert_eq!(v.len(), 1, "expected one request (api {api}), got {v:#?}");
        assert_eq!(v[0].request.api_key(), api, "{v:#?}");
        v.into_iter().next().expect("one request")
    }
    /// The next request must be a heartbeat; returns it with its id.
    /// (OffsetFetch requests that go out beside it are left unanswered.)
    fn heartbeat(&mut self) -> (RequestId, kp::ConsumerGroupHeartbeatRequest) {
        let v: Vec<Outgoing> = self
            .tx()
            .into_iter()
            .filter(|o| o.request.api_key() != 9)
            .collect();
        assert_eq!(v.len(), 1, "expected one heartbeat, got {v:#?}");
        let o = v.into_iter().next().expect("one request");
        let Request::ConsumerGroupHeartbeat(r) = o.request else {
            panic!("not a heartbeat: {o:#?}")
        };
        (o.id, r)
    }
    fn answer(&mut self, id: RequestId, r: ConsumerGroupHeartbeatResponse<'static>) {
        self.m
            .handle_response(self.now, id, Response::ConsumerGroupHeartbeat(r));
    }
    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.m.poll_event()).collect()
    }
    fn find_coordinator(&mut self) {
        let o = self.one(10);
        self.m.handle_response(
            self.now,
            o.id,
            Response::FindCoordinator(FindCoordinatorResponse {
                throttle_time_ms: 0,
                coordinators: vec![Coordinator {
                    key: "g",
                    node_id: 1,
                    host: "broker",
                    port: 9092,
                    error_code: ErrorCode::NONE,
                    error_message: None,
                }],
            }),
        );
    }
    /// Subscribe to "t", join at epoch 1 with `parts` of it, resolve the name, and
    /// answer the acknowledging heartbeat. Leaves the OffsetFetch unanswered.
    fn join_with(&mut self, parts: &[i32]) {
        self.m.subscribe(self.now, ["t".to_string()]);
        self.find_coordinator();
        let (id, _) = self.heartbeat();
        self.answer(id, ok(1, Some(vec![(T, parts.to_vec())])));
        let ev = self.events();
        assert!(
            ev.contains(&Event::TopicIdsNeeded(vec![T])),
            "the topic id is unknown: {ev:?}"
        );
        self.m.update_topic_ids(self.now, [(T, "t".to_string())]);
        let ev = self.events();
        let want: Vec<TopicPartition> =
            parts.iter().map(|p| TopicPartition::new("t", *p)).collect();
        assert!(ev.contains(&Event::PartitionsAssigned(want)), "{ev:?}");
        let out = self.tx();
        let hb = out
            .iter()
            .find(|o| o.request.api_key() == 68)
            .expect("the assignment is acknowledged at once");
        self.answer(hb.id, ok(1, None));
    }
}

fn ok(
    epoch: i32,
    assignment: Option<Vec<([u8; 16], Vec<i32>)>>,
) -> ConsumerGroupHeartbeatResponse<'static> {
    ConsumerGroupHeartbeatResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::NONE,
        error_message: None,
        member_id: None,
        member_epoch: epoch,
        heartbeat_interval_ms: 5000,
        assignment: assignment.map(|a| {
            a.into_iter()
                .map(|(topic_id, partitions)| HeartbeatTopicPartitions {
                    topic_id,
                    partitions,
                })
                .collect()
        }),
    }
}

/// An OffsetCommit answer for t-0.
fn commit_answer(code: ErrorCode) -> Response<'static> {
    Response::OffsetCommit(OffsetCommitResponse {
        throttle_time_ms: 0,
        topics: vec![OffsetCommitTopicResponse {
            name: "t",
            partitions: vec![OffsetCommitPartitionResponse {
                partition_index: 0,
                error_code: code,
            }],
        }],
    })
}

fn err(code: ErrorCode) -> ConsumerGroupHeartbeatResponse<'static> {
    ConsumerGroupHeartbeatResponse {
        error_code: code,
        member_epoch: -1,
        ..ok(0, None)
    }
}

fn owned(r: &kp::ConsumerGroupHeartbeatRequest) -> Option<Vec<(u8, Vec<i32>)>> {
    r.topic_partitions.as_ref().map(|v| {
        v.iter()
            .map(|t| (t.topic_id.as_bytes()[0], t.partitions.clone()))
            .collect()
    })
}

#[test]
fn join_sends_everything_and_the_assignment_is_acknowledged() {
    let mut c = cfg();
    c.remote_assignor = Some("uniform".into());
    c.rack = Some("r1".into());
    let mut h = H::new(c);
    assert_eq!(h.m.member_id().len(), 22, "a Kafka Uuid in base64");
    h.m.subscribe(h.now, ["t".to_string()]);
    h.find_coordinator();
    let (id, r) = h.heartbeat();
    assert_eq!(r.member_epoch, 0);
    assert_eq!(&*r.member_id, h.m.member_id());
    assert_eq!(r.rebalance_timeout_ms, 300_000);
    assert_eq!(r.server_assignor.as_deref(), Some("uniform"));
    assert_eq!(r.rack_id.as_deref(), Some("r1"));
    assert_eq!(
        r.subscribed_topic_names
            .as_ref()
            .map(|v| v.iter().map(|t| t.0.to_string()).collect::<Vec<_>>()),
        Some(vec!["t".to_string()])
    );
    assert_eq!(owned(&r), Some(vec![]), "a join owns nothing");
    assert_eq!(h.m.phase(), Phase::Joining);
    h.answer(id, ok(3, Some(vec![(T, vec![0, 1])])));
    assert_eq!(h.m.generation(), 3, "the member epoch");
    assert_eq!(h.events(), vec![Event::TopicIdsNeeded(vec![T])]);
    // Nothing is assigned until the name is known.
    assert!(h.m.assignment().is_empty());
    h.m.update_topic_ids(h.now, [(T, "t".to_string())]);
    assert_eq!(
        h.events(),
        vec![Event::PartitionsAssigned(vec![
            TopicPartition::new("t", 0),
            TopicPartition::new("t", 1)
        ])]
    );
    let out = h.tx();
    let apis: Vec<i16> = out.iter().map(|o| o.request.api_key()).collect();
    assert_eq!(
        apis,
        vec![68, 9],
        "an acknowledging heartbeat and an OffsetFetch"
    );
    let Request::ConsumerGroupHeartbeat(r) = &out[0].request else {
        unreachable!()
    };
    assert_eq!(r.member_epoch, 3);
    assert_eq!(owned(r), Some(vec![(7, vec![0, 1])]));
    // The subscription is unchanged since the broker acknowledged it: left out.
    assert_eq!(r.subscribed_topic_names, None);
    assert_eq!(r.rebalance_timeout_ms, -1);
    h.answer(out[0].id, ok(3, None));
    // After the new assignment, heartbeats come every 50 ms for a second, then every
    // 250 ms until one broker interval (5 s) has passed, then at the interval; each
    // carries nothing unchanged.
    let mut sent = Vec::new();
    for _ in 0..12_000 {
        h.advance(MS);
        if let Some(o) = h.tx().into_iter().find(|o| o.request.api_key() == 68) {
            let Request::ConsumerGroupHeartbeat(r) = &o.request else {
                unreachable!()
            };
            assert_eq!((r.subscribed_topic_names.clone(), owned(r)), (None, None));
            sent.push(h.now);
            h.answer(o.id, ok(3, None));
        }
    }
    let gaps: Vec<u128> = sent.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
    assert!(gaps.len() > 30, "{gaps:?}");
    assert!(gaps[..15].iter().all(|g| *g == 50), "{gaps:?}");
    assert!(gaps.contains(&250), "{gaps:?}");
    assert_eq!(
        gaps.last(),
        Some(&5000),
        "then the broker's interval: {gaps:?}"
    );
    assert!(
        gaps.len() < 45,
        "a bounded number of early heartbeats: {gaps:?}"
    );
}

#[test]
fn reconciliation_revokes_before_it_assigns() {
    let mut h = H::new(cfg());
    h.join_with(&[0, 1]);
    h.tx();
    h.advance(5000 * MS);
    let (id, _) = h.heartbeat();
    // The broker moves t-0 away and gives t-2.
    h.answer(id, ok(4, Some(vec![(T, vec![1, 2])])));
    assert_eq!(
        h.events(),
        vec![Event::PartitionsRevoked(vec![TopicPartition::new("t", 0)])],
        "only the revocation first"
    );
    assert_eq!(h.m.phase(), Phase::Revoking);
    // Nothing is taken, and the owned set is not reported changed, before the ack.
    assert!(!h.m.assignment().contains(&TopicPartition::new("t", 2)));
    h.m.ack_revoked(h.now);
    assert_eq!(
        h.events(),
        vec![Event::PartitionsAssigned(vec![TopicPartition::new("t", 2)])]
    );
    let out = h.tx();
    let hb = out.iter().find(|o| o.request.api_key() == 68).expect("ack");
    let Request::ConsumerGroupHeartbeat(r) = &hb.request else {
        unreachable!()
    };
    assert_eq!(owned(r), Some(vec![(7, vec![1, 2])]));
    assert_eq!(h.m.phase(), Phase::Stable);
}

#[test]
fn a_commit_queued_before_the_ack_goes_out_before_the_revocation_is_reported() {
    let mut h = H::new(cfg());
    h.join_with(&[0, 1]);
    h.tx();
    h.m.record_processed(&TopicPartition::new("t", 0), 41, None);
    h.advance(5000 * MS);
    let (id, _) = h.heartbeat();
    h.answer(id, ok(4, Some(vec![(T, vec![1])])));
    h.events();
    let cid = h.m.commit_processed(
        h.now,
        CommitMode::Sync {
            timeout: Duration::from_secs(5),
        },
    );
    assert!(cid.is_some());
    h.m.ack_revoked(h.now);
    let out = h.tx();
    let commit = out
        .iter()
        .find(|o| o.request.api_key() == 8)
        .expect("the commit goes out");
    let Request::OffsetCommit(c) = &commit.request else {
        unreachable!()
    };
    assert_eq!(c.generation_id_or_member_epoch, 4, "the member epoch");
    assert_eq!(&*c.member_id, h.m.member_id());
    assert!(commit.version >= 9);
    assert!(
        !out.iter().any(|o| o.request.api_key() == 68),
        "the owned set drops t-0 only after its commit: {out:#?}"
    );
}

#[test]
fn a_stale_member_epoch_commit_is_retried_with_the_new_epoch() {
    let mut h = H::new(cfg());
    h.join_with(&[0]);
    h.tx();
    h.m.record_processed(&TopicPartition::new("t", 0), 9, None);
    let cid =
        h.m.commit_processed(
            h.now,
            CommitMode::Sync {
                timeout: Duration::from_secs(30),
            },
        )
        .expect("something to commit");
    let o = h.one(8);
    // Meanwhile the epoch moved on.
    h.advance(5000 * MS);
    let (id, _) = h.heartbeat();
    h.answer(id, ok(2, None));
    h.m.handle_response(h.now, o.id, commit_answer(ErrorCode::STALE_MEMBER_EPOCH));
    assert!(
        !h.events()
            .iter()
            .any(|e| matches!(e, Event::CommitCompleted { .. })),
        "retried, not failed"
    );
    h.advance(1000 * MS);
    let o = h
        .tx()
        .into_iter()
        .find(|o| o.request.api_key() == 8)
        .expect("the commit again");
    let Request::OffsetCommit(c) = &o.request else {
        unreachable!()
    };
    assert_eq!(c.generation_id_or_member_epoch, 2);
    h.m.handle_response(h.now, o.id, commit_answer(ErrorCode::NONE));
    assert!(h.events().iter().any(|e| matches!(
        e,
        Event::CommitCompleted { id, result: Ok(()), .. } if *id == cid
    )));
}

fn fenced_rejoins_at_epoch_zero(code: ErrorCode) {
    let mut h = H::new(cfg());
    h.join_with(&[0, 1]);
    h.tx();
    let id_before = h.m.member_id().to_owned();
    h.advance(5000 * MS);
    let (id, _) = h.heartbeat();
    h.answer(id, err(code));
    assert_eq!(
        h.events(),
        vec![Event::PartitionsLost(vec![
            TopicPartition::new("t", 0),
            TopicPartition::new("t", 1)
        ])],
        "{code}: lost, not revoked (no commit is possible)"
    );
    let (_, r) = h.heartbeat();
    assert_eq!(r.member_epoch, 0, "{code}: rejoins at once");
    assert_eq!(&*r.member_id, id_before, "{code}: with the same member id");
    assert!(r.subscribed_topic_names.is_some() && r.rebalance_timeout_ms > 0);
    assert_eq!(owned(&r), Some(vec![]));
}

#[test]
fn fenced_member_epoch_loses_the_partitions_and_rejoins() {
    fenced_rejoins_at_epoch_zero(ErrorCode::FENCED_MEMBER_EPOCH);
}

#[test]
fn unknown_member_id_loses_the_partitions_and_rejoins() {
    fenced_rejoins_at_epoch_zero(ErrorCode::UNKNOWN_MEMBER_ID);
}

#[test]
fn fatal_errors_stop_the_member_with_what_to_do() {
    for (code, want) in [
        (ErrorCode::UNRELEASED_INSTANCE_ID, "group.instance.id"),
        (ErrorCode::FENCED_INSTANCE_ID, "group.instance.id"),
        (ErrorCode::GROUP_MAX_SIZE_REACHED, "full"),
        (ErrorCode::UNSUPPORTED_ASSIGNOR, "group.remote.assignor"),
        (ErrorCode::UNSUPPORTED_VERSION, "group.protocol=classic"),
        (ErrorCode::GROUP_AUTHORIZATION_FAILED, "READ"),
        (ErrorCode::INVALID_REGULAR_EXPRESSION, "RE2J"),
    ] {
        let mut h = H::new(cfg());
        h.m.subscribe(h.now, ["t".to_string()]);
        h.find_coordinator();
        let (id, _) = h.heartbeat();
        h.answer(id, err(code));
        let ev = h.events();
        let Some(Event::Fatal(e)) = ev.last() else {
            panic!("{code}: {ev:?}");
        };
        assert!(e.to_string().contains(want), "{code}: {e}");
        assert_eq!(h.m.phase(), Phase::Failed);
        assert!(h.tx().is_empty());
    }
}

#[test]
fn retriable_errors_back_off_and_resend_everything() {
    let mut h = H::new(cfg());
    h.join_with(&[0]);
    h.tx();
    h.advance(5000 * MS);
    let (id, _) = h.heartbeat();
    h.answer(id, err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS));
    assert!(h.tx().is_empty(), "backs off");
    assert_eq!(h.m.assignment().len(), 1, "keeps its partitions");
    h.advance(300 * MS);
    let (_, r) = h.heartbeat();
    assert_eq!(r.member_epoch, 1);
    assert!(
        r.subscribed_topic_names.is_some(),
        "everything after an error"
    );
    assert_eq!(owned(&r), Some(vec![(7, vec![0])]));
}

#[test]
fn not_coordinator_finds_the_coordinator_again() {
    let mut h = H::new(cfg());
    h.join_with(&[0]);
    h.tx();
    h.advance(5000 * MS);
    let (id, _) = h.heartbeat();
    h.answer(id, err(ErrorCode::NOT_COORDINATOR));
    assert!(h.events().contains(&Event::CoordinatorLost));
    h.advance(1000 * MS);
    h.find_coordinator();
    let (_, r) = h.heartbeat();
    assert_eq!(r.member_epoch, 1, "still a member");
    assert!(r.subscribed_topic_names.is_some());
}

#[test]
fn a_lost_heartbeat_is_resent_in_full() {
    let mut h = H::new(cfg());
    h.join_with(&[0]);
    h.tx();
    h.advance(5000 * MS);
    let (id, _) = h.heartbeat();
    h.m.handle_request_failed(h.now, id);
    h.events();
    h.advance(1000 * MS);
    h.find_coordinator();
    let (_, r) = h.heartbeat();
    assert!(r.subscribed_topic_names.is_some());
    assert_eq!(owned(&r), Some(vec![(7, vec![0])]));
}

#[test]
fn close_revokes_then_leaves_with_epoch_minus_one() {
    let mut h = H::new(cfg());
    h.join_with(&[0]);
    h.tx();
    h.m.close(h.now, Duration::from_secs(10));
    assert_eq!(
        h.events(),
        vec![Event::PartitionsRevoked(vec![TopicPartition::new("t", 0)])]
    );
    assert!(h.tx().is_empty(), "waits for the revocation");
    h.m.ack_revoked(h.now);
    let (id, r) = h.heartbeat();
    assert_eq!(r.member_epoch, -1);
    assert_eq!(h.m.phase(), Phase::Leaving);
    h.answer(id, ok(-1, None));
    assert_eq!(h.events(), vec![Event::Closed]);
}

#[test]
fn a_static_member_leaves_with_epoch_minus_two_and_its_instance_id() {
    let mut c = cfg();
    c.group_instance_id = Some("i-1".into());
    let mut h = H::new(c);
    h.join_with(&[0]);
    h.tx();
    h.m.close(h.now, Duration::from_secs(10));
    h.events();
    h.m.ack_revoked(h.now);
    let (id, r) = h.heartbeat();
    assert_eq!(r.member_epoch, -2, "the broker keeps the assignment for it");
    assert_eq!(r.instance_id.as_deref(), Some("i-1"));
    h.answer(id, ok(-2, None));
    assert_eq!(h.events(), vec![Event::Closed]);
}

#[test]
fn close_ends_by_its_deadline_without_an_answer() {
    let mut h = H::new(cfg());
    h.join_with(&[0]);
    h.tx();
    h.m.close(h.now, Duration::from_secs(2));
    h.events();
    h.m.ack_revoked(h.now);
    let _ = h.heartbeat();
    h.advance(2000 * MS);
    assert!(h.events().contains(&Event::Closed));
}

#[test]
fn a_stalled_handler_leaves_and_the_next_poll_rejoins() {
    let mut c = cfg();
    c.max_poll_interval = Duration::from_secs(10);
    let mut h = H::new(c);
    h.join_with(&[0]);
    h.tx();
    // Heartbeats keep going while the application does not poll.
    for _ in 0..3 {
        h.advance(3000 * MS);
        if let Some(o) = h.tx().into_iter().find(|o| o.request.api_key() == 68) {
            h.answer(o.id, ok(1, None));
        }
    }
    h.advance(1000 * MS);
    let ev = h.events();
    assert!(
        ev.contains(&Event::PartitionsLost(vec![TopicPartition::new("t", 0)])),
        "{ev:?}"
    );
    let (id, r) = h.heartbeat();
    assert_eq!(r.member_epoch, -1, "leaves so the group moves on");
    h.answer(id, ok(-1, None));
    h.advance(1000 * MS);
    assert!(h.tx().is_empty(), "stays out until the application polls");
    h.m.poll(h.now);
    let (_, r) = h.heartbeat();
    assert_eq!(r.member_epoch, 0);
}

#[test]
fn a_regex_subscription_goes_to_the_broker() {
    let mut h = H::new(cfg());
    h.m.subscribe_regex(h.now, "orders-.*");
    h.find_coordinator();
    let (id, r) = h.heartbeat();
    assert_eq!(r.subscribed_topic_regex.as_deref(), Some("orders-.*"));
    h.answer(id, ok(1, Some(vec![(T, vec![0]), (U, vec![0])])));
    let ev = h.events();
    assert_eq!(ev, vec![Event::TopicIdsNeeded(vec![T, U])]);
    // One name known: its partitions are taken, the other waits.
    h.m.update_topic_ids(h.now, [(T, "orders-a".to_string())]);
    assert_eq!(
        h.events(),
        vec![Event::PartitionsAssigned(vec![TopicPartition::new(
            "orders-a", 0
        )])]
    );
    h.m.update_topic_ids(h.now, [(U, "orders-b".to_string())]);
    assert_eq!(
        h.events(),
        vec![Event::PartitionsAssigned(vec![TopicPartition::new(
            "orders-b", 0
        )])]
    );
}

#[test]
fn a_subscription_change_is_sent_at_once() {
    let mut h = H::new(cfg());
    h.join_with(&[0]);
    h.tx();
    h.m.subscribe(h.now, ["t".to_string(), "v".to_string()]);
    let (_, r) = h.heartbeat();
    let names: Vec<String> = r
        .subscribed_topic_names
        .expect("changed")
        .iter()
        .map(|t| t.0.to_string())
        .collect();
    assert_eq!(names, vec!["t", "v"]);
}

#[test]
fn a_broker_without_the_api_is_refused_with_a_hint() {
    let now = Instant::now();
    let mut m = GroupMember::new(cfg(), now).expect("valid");
    let mut v = GroupVersions::MAX;
    v.consumer_group_heartbeat = -1;
    m.set_versions(v);
    m.subscribe(now, ["t".to_string()]);
    while m.poll_transmit(now).is_some() {}
    let ev: Vec<Event> = std::iter::from_fn(|| m.poll_event()).collect();
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Fatal(GroupError::ConsumerProtocolUnsupported))),
        "{ev:?}"
    );
    assert!(
        GroupError::ConsumerProtocolUnsupported
            .to_string()
            .contains("group.protocol=classic")
    );
}

#[test]
fn member_ids_differ_by_seed() {
    let now = Instant::now();
    let mut a = cfg();
    a.rng_seed = 1;
    let mut b = cfg();
    b.rng_seed = 2;
    let ma = GroupMember::new(a, now).expect("valid");
    let mb = GroupMember::new(b, now).expect("valid");
    assert_ne!(ma.member_id(), mb.member_id());
    assert!(
        ma.member_id()
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    );
}

#[test]
fn remote_assignor_needs_the_consumer_protocol() {
    let mut c = GroupConfig::new("g");
    c.remote_assignor = Some("range".into());
    let e = c.validate().expect_err("classic");
    assert!(e.to_string().contains("group.protocol=consumer"));
}

#[test]
fn a_poll_after_a_gap_longer_than_the_poll_interval_leaves_first() {
    let mut c = cfg();
    c.max_poll_interval = Duration::from_secs(10);
    let mut h = H::new(c);
    h.join_with(&[0]);
    h.tx();
    // The application was away 11 s and no timer ran meanwhile (no driver thread).
    h.now += Duration::from_secs(11);
    h.m.poll(h.now);
    assert_eq!(
        h.events(),
        vec![Event::PartitionsLost(vec![TopicPartition::new("t", 0)])]
    );
    let (id, r) = h.heartbeat();
    assert_eq!(r.member_epoch, -1, "leaves first");
    h.answer(id, ok(-1, None));
    let (_, r) = h.heartbeat();
    assert_eq!(r.member_epoch, 0, "then joins again");
}
