//! Drives the group state machine through scripted broker responses with virtual
//! time, checking the requests that come out and the events.

use bytes::BytesMut;
use std::time::{Duration, Instant};
use weir_coordinator::*;
use weir_protocol::ErrorCode;
use weir_protocol::messages::group::*;

const MS: Duration = Duration::from_millis(1);

struct H {
    m: GroupMember,
    now: Instant,
    versions: GroupVersions,
}

fn cfg() -> GroupConfig {
    let mut c = GroupConfig::new("g");
    c.session_timeout = Duration::from_secs(10);
    c
}

fn encode_ok(o: &Outgoing) {
    let mut b = BytesMut::new();
    let r = o.request.encode_frame(&mut b, 7, Some("weir"), o.version);
    assert!(
        r.is_ok(),
        "request {:?} does not encode at v{}: {r:?}",
        o.request.api_key(),
        o.version
    );
    // The frame's header names the API and version.
    assert_eq!(i16::from_be_bytes([b[4], b[5]]), o.request.api_key());
    assert_eq!(i16::from_be_bytes([b[6], b[7]]), o.version);
}

impl H {
    fn new(c: GroupConfig) -> Self {
        Self::with_versions(c, GroupVersions::MAX)
    }
    fn with_versions(c: GroupConfig, versions: GroupVersions) -> Self {
        let now = Instant::now();
        let mut m = GroupMember::new(c, now).expect("valid config");
        m.set_versions(versions);
        Self { m, now, versions }
    }
    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.m.handle_timeout(self.now);
    }
    /// Advance in steps, as a driver would, honouring poll_timeout.
    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.m.poll_timeout() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.m.handle_timeout(self.now);
            if t <= self.now && self.m.poll_timeout() == Some(t) {
                break;
            }
        }
        self.now = end;
        self.m.handle_timeout(self.now);
    }
    fn tx(&mut self) -> Vec<Outgoing> {
        let mut v = Vec::new();
        while let Some(o) = self.m.poll_transmit(self.now) {
            encode_ok(&o);
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
    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.m.poll_event()).collect()
    }
    fn find_coordinator(&mut self) {
        let o = self.one(10);
        assert_eq!(o.target, Target::AnyBroker);
        self.m
            .handle_response(self.now, o.id, Response::FindCoordinator(fc_ok(1)));
    }
    /// Join as the sole member and leader of `t` with `n` partitions; returns the
    /// generation's assignment.
    fn join_alone(&mut self, n: i32, generation: i32) {
        self.join_alone_with(n, generation, "range");
    }
    fn join_alone_with(&mut self, n: i32, generation: i32, protocol: &'static str) {
        let j = self.one(11);
        self.m.handle_response(
            self.now,
            j.id,
            Response::JoinGroup(join_ok(
                generation,
                "m1",
                "m1",
                protocol,
                vec![member("m1", sub_bytes(&["t"]))],
            )),
        );
        let mut ev = self.events();
        if ev.iter().any(|e| matches!(e, Event::MetadataNeeded(_))) {
            self.m.update_metadata(self.now, [("t".to_string(), n)]);
            ev.clear();
        }
        let s = self.one(14);
        let Request::SyncGroup(req) = &s.request else {
            unreachable!()
        };
        assert_eq!(req.assignments.len(), 1);
        let a = req.assignments[0].assignment.clone();
        self.m.handle_response(
            self.now,
            s.id,
            Response::SyncGroup(sync_ok(leak(a.to_vec()))),
        );
    }
}

fn leak(v: Vec<u8>) -> &'static [u8] {
    Box::leak(v.into_boxed_slice())
}

fn fc_ok(node: i32) -> FindCoordinatorResponse<'static> {
    FindCoordinatorResponse {
        throttle_time_ms: 0,
        coordinators: vec![Coordinator {
            key: "g",
            node_id: node,
            host: "broker",
            port: 9092,
            error_code: ErrorCode::NONE,
            error_message: None,
        }],
    }
}

fn sub_bytes(topics: &[&str]) -> &'static [u8] {
    leak(
        Subscription {
            topics: topics.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        }
        .encode(3),
    )
}

fn member(id: &'static str, md: &'static [u8]) -> JoinGroupMember<'static> {
    JoinGroupMember {
        member_id: id,
        group_instance_id: None,
        metadata: md,
    }
}

fn join_resp(
    code: ErrorCode,
    generation: i32,
    me: &'static str,
    leader: &'static str,
) -> JoinGroupResponse<'static> {
    JoinGroupResponse {
        throttle_time_ms: 0,
        error_code: code,
        generation_id: generation,
        protocol_type: Some("consumer"),
        protocol_name: Some("range"),
        leader,
        skip_assignment: false,
        member_id: me,
        members: vec![],
    }
}

fn join_ok(
    generation: i32,
    me: &'static str,
    leader: &'static str,
    protocol: &'static str,
    members: Vec<JoinGroupMember<'static>>,
) -> JoinGroupResponse<'static> {
    JoinGroupResponse {
        protocol_name: Some(protocol),
        members,
        ..join_resp(ErrorCode::NONE, generation, me, leader)
    }
}

fn sync_ok(assignment: &'static [u8]) -> SyncGroupResponse<'static> {
    SyncGroupResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::NONE,
        protocol_type: None,
        protocol_name: None,
        assignment,
    }
}

fn sync_err(code: ErrorCode) -> SyncGroupResponse<'static> {
    SyncGroupResponse {
        error_code: code,
        ..sync_ok(b"")
    }
}

fn assignment(parts: &[(&str, i32)]) -> &'static [u8] {
    leak(
        Assignment {
            partitions: parts
                .iter()
                .map(|(t, p)| TopicPartition::new(*t, *p))
                .collect(),
            user_data: None,
        }
        .encode(3),
    )
}

fn hb(code: ErrorCode) -> Response<'static> {
    Response::Heartbeat(HeartbeatResponse {
        throttle_time_ms: 0,
        error_code: code,
    })
}

fn commit_resp(parts: &[(&'static str, i32, ErrorCode)]) -> Response<'static> {
    let mut topics: Vec<OffsetCommitTopicResponse<'static>> = Vec::new();
    for &(t, p, e) in parts {
        let part = OffsetCommitPartitionResponse {
            partition_index: p,
            error_code: e,
        };
        match topics.iter_mut().find(|x| x.name == t) {
            Some(x) => x.partitions.push(part),
            None => topics.push(OffsetCommitTopicResponse {
                name: t,
                partitions: vec![part],
            }),
        }
    }
    Response::OffsetCommit(OffsetCommitResponse {
        throttle_time_ms: 0,
        topics,
    })
}

fn fetch_resp(
    group_err: ErrorCode,
    parts: &[(&'static str, i32, i64, ErrorCode)],
) -> Response<'static> {
    let mut topics: Vec<OffsetFetchTopic<'static>> = Vec::new();
    for &(t, p, off, e) in parts {
        let part = OffsetFetchPartition {
            partition_index: p,
            committed_offset: off,
            committed_leader_epoch: -1,
            metadata: Some(""),
            error_code: e,
        };
        match topics.iter_mut().find(|x| x.name == t) {
            Some(x) => x.partitions.push(part),
            None => topics.push(OffsetFetchTopic {
                name: t,
                partitions: vec![part],
            }),
        }
    }
    Response::OffsetFetch(OffsetFetchResponse {
        throttle_time_ms: 0,
        groups: vec![OffsetFetchGroup {
            group_id: "g",
            topics,
            error_code: group_err,
        }],
    })
}

fn tps(v: &[(&str, i32)]) -> Vec<TopicPartition> {
    v.iter().map(|(t, p)| TopicPartition::new(*t, *p)).collect()
}

/// A stable single member of `g` owning t-0..t-{n-1}, OffsetFetch answered.
fn stable(c: GroupConfig, n: i32) -> H {
    let mut h = H::new(c);
    h.m.subscribe(h.now, ["t".to_string()]);
    h.find_coordinator();
    h.join_alone(n, 1);
    let ev = h.events();
    assert!(ev.contains(&Event::PartitionsAssigned(
        (0..n).map(|p| TopicPartition::new("t", p)).collect()
    )));
    let f = h.one(9);
    let parts: Vec<_> = (0..n)
        .map(|p| ("t", p, 10 * i64::from(p), ErrorCode::NONE))
        .collect();
    h.m.handle_response(h.now, f.id, fetch_resp(ErrorCode::NONE, &parts));
    h.events();
    assert_eq!(h.m.phase(), Phase::Stable);
    h
}

#[test]
fn happy_path_with_member_id_required_and_metadata() {
    let mut h = H::new(cfg());
    assert!(
        h.tx().iter().all(|o| o.request.api_key() == 10),
        "discovery needs no subscription"
    );
    let mut h = H::new(cfg());
    h.m.subscribe(h.now, ["t".to_string(), "u".to_string()]);
    h.find_coordinator();
    assert_eq!(h.m.coordinator().map(|c| c.node_id), Some(1));

    // First join: no member id; the broker demands one (KIP-394).
    let j = h.one(11);
    assert!(matches!(j.target, Target::Coordinator(_)));
    let Request::JoinGroup(req) = &j.request else {
        unreachable!()
    };
    assert_eq!(&*req.member_id, "");
    assert_eq!(req.session_timeout_ms, 10_000);
    assert_eq!(req.rebalance_timeout_ms, 300_000);
    let names: Vec<&str> = req.protocols.iter().map(|p| &*p.name).collect();
    assert_eq!(names, ["range", "cooperative-sticky"]);
    let sub = Subscription::decode(&req.protocols[0].metadata).expect("subscription");
    assert_eq!(sub.topics, ["t", "u"]);
    h.m.handle_response(
        h.now,
        j.id,
        Response::JoinGroup(join_resp(ErrorCode::MEMBER_ID_REQUIRED, -1, "m1", "")),
    );
    let j = h.one(11);
    let Request::JoinGroup(req) = &j.request else {
        unreachable!()
    };
    assert_eq!(&*req.member_id, "m1", "rejoins at once with the given id");

    // Leader of two members; needs partition counts first.
    h.m.handle_response(
        h.now,
        j.id,
        Response::JoinGroup(join_ok(
            5,
            "m1",
            "m1",
            "range",
            vec![
                member("m1", sub_bytes(&["t", "u"])),
                member("m2", sub_bytes(&["t"])),
            ],
        )),
    );
    assert!(h.m.is_leader());
    assert_eq!(
        h.events(),
        vec![Event::MetadataNeeded(vec!["t".into(), "u".into()])]
    );
    assert!(h.tx().is_empty(), "no SyncGroup before metadata");
    h.m.update_metadata(h.now, [("t".to_string(), 4), ("u".to_string(), 1)]);
    let s = h.one(14);
    let Request::SyncGroup(req) = &s.request else {
        unreachable!()
    };
    assert_eq!(req.generation_id, 5);
    let mut plan = std::collections::BTreeMap::new();
    for a in &req.assignments {
        plan.insert(
            a.member_id.to_string(),
            Assignment::decode(&a.assignment)
                .expect("assignment")
                .partitions,
        );
    }
    assert_eq!(plan["m1"], tps(&[("t", 0), ("t", 1), ("u", 0)]));
    assert_eq!(plan["m2"], tps(&[("t", 2), ("t", 3)]));
    let mine = leak(
        Assignment {
            partitions: plan["m1"].clone(),
            user_data: None,
        }
        .encode(3),
    );
    h.m.handle_response(h.now, s.id, Response::SyncGroup(sync_ok(mine)));
    assert_eq!(
        h.events(),
        vec![Event::PartitionsAssigned(tps(&[
            ("t", 0),
            ("t", 1),
            ("u", 0)
        ]))]
    );
    assert_eq!(h.m.phase(), Phase::Stable);

    // OffsetFetch: a committed offset, a missing one, an unstable one (retried).
    let f = h.one(9);
    h.m.handle_response(
        h.now,
        f.id,
        fetch_resp(
            ErrorCode::NONE,
            &[
                ("t", 0, 42, ErrorCode::NONE),
                ("t", 1, -1, ErrorCode::NONE),
                ("u", 0, -1, ErrorCode::UNSTABLE_OFFSET_COMMIT),
            ],
        ),
    );
    let ev = h.events();
    assert_eq!(
        ev,
        vec![Event::StartPositions(vec![
            (
                TopicPartition::new("t", 0),
                StartPosition::Committed {
                    offset: 42,
                    leader_epoch: None,
                    metadata: Some(String::new())
                }
            ),
            (
                TopicPartition::new("t", 1),
                StartPosition::NeedsReset(AutoOffsetReset::Latest)
            ),
        ])]
    );
    assert!(h.tx().is_empty(), "unstable offsets wait for the backoff");
    h.advance(100 * MS);
    let f = h.one(9);
    let Request::OffsetFetch(req) = &f.request else {
        unreachable!()
    };
    assert_eq!(req.groups[0].topics.as_ref().map(|t| t.len()), Some(1));
    assert!(req.require_stable);

    // Heartbeats every heartbeat.interval.ms.
    h.advance(2_800 * MS);
    assert!(h.tx().is_empty());
    h.advance(200 * MS);
    let b = h.one(12);
    let Request::Heartbeat(req) = &b.request else {
        unreachable!()
    };
    assert_eq!((req.generation_id, &*req.member_id), (5, "m1"));
    h.m.handle_response(h.now, b.id, hb(ErrorCode::NONE));
    h.advance(3_000 * MS);
    assert_eq!(h.one(12).request.api_key(), 12);
}

#[test]
fn eager_rebalance_waits_for_revoke_ack_and_commits_first() {
    let mut h = stable(cfg(), 2);
    h.m.record_processed(&TopicPartition::new("t", 0), 99, Some(3));
    h.advance(3_000 * MS);
    let b = h.one(12);
    h.m.handle_response(h.now, b.id, hb(ErrorCode::REBALANCE_IN_PROGRESS));
    assert!(h.tx().is_empty());
    assert_eq!(
        h.events(),
        vec![Event::PartitionsRevoked(tps(&[("t", 0), ("t", 1)]))]
    );
    assert_eq!(h.m.phase(), Phase::Revoking);
    // Nothing is sent until the driver acks; heartbeats keep going meanwhile.
    h.advance(3_000 * MS);
    let b = h.one(12);
    h.m.handle_response(h.now, b.id, hb(ErrorCode::REBALANCE_IN_PROGRESS));
    h.m.ack_revoked(h.now);
    // Auto-commit: the final commit goes out before the join.
    let c = h.one(8);
    let Request::OffsetCommit(req) = &c.request else {
        unreachable!()
    };
    let p = &req.topics[0].partitions[0];
    assert_eq!(
        (
            p.partition_index,
            p.committed_offset,
            p.committed_leader_epoch
        ),
        (0, 100, 3)
    );
    assert_eq!(req.generation_id_or_member_epoch, 1);
    h.m.handle_response(h.now, c.id, commit_resp(&[("t", 0, ErrorCode::NONE)]));
    let ev = h.events();
    assert!(
        matches!(
            ev.as_slice(),
            [Event::CommitCompleted { result: Ok(()), .. }]
        ),
        "{ev:?}"
    );
    let j = h.one(11);
    let Request::JoinGroup(req) = &j.request else {
        unreachable!()
    };
    assert_eq!(&*req.member_id, "m1", "keeps its member id");
    assert_eq!(req.reason.as_deref(), Some("the group is rebalancing"));
    assert_eq!(h.m.stats().rebalances, 1);
    assert_eq!(h.m.stats().commits_ok, 1);
    let sub = Subscription::decode(&req.protocols[0].metadata).expect("sub");
    assert!(
        sub.owned_partitions.is_empty(),
        "eager members own nothing when joining"
    );
    assert!(h.m.assignment().is_empty());
}

#[test]
fn unknown_member_and_illegal_generation_lose_partitions() {
    let mut h = stable(cfg(), 1);
    h.advance(3_000 * MS);
    let b = h.one(12);
    h.m.handle_response(h.now, b.id, hb(ErrorCode::ILLEGAL_GENERATION));
    assert_eq!(h.events(), vec![Event::PartitionsLost(tps(&[("t", 0)]))]);
    let j = h.one(11);
    let Request::JoinGroup(req) = &j.request else {
        unreachable!()
    };
    assert_eq!(
        &*req.member_id, "m1",
        "ILLEGAL_GENERATION keeps the member id"
    );
    h.m.handle_response(
        h.now,
        j.id,
        Response::JoinGroup(join_resp(ErrorCode::UNKNOWN_MEMBER_ID, -1, "", "")),
    );
    let j = h.one(11);
    let Request::JoinGroup(req) = &j.request else {
        unreachable!()
    };
    assert_eq!(&*req.member_id, "", "UNKNOWN_MEMBER_ID resets it");
}

#[test]
fn fenced_instance_is_fatal() {
    let mut c = cfg();
    c.group_instance_id = Some("host-1".into());
    let mut h = stable(c, 1);
    h.advance(3_000 * MS);
    let b = h.one(12);
    let Request::Heartbeat(req) = &b.request else {
        unreachable!()
    };
    assert_eq!(req.group_instance_id.as_deref(), Some("host-1"));
    h.m.handle_response(h.now, b.id, hb(ErrorCode::FENCED_INSTANCE_ID));
    assert_eq!(h.events(), vec![Event::Fatal(GroupError::FencedInstanceId)]);
    assert_eq!(h.m.phase(), Phase::Failed);
    assert!(
        h.m.error()
            .is_some_and(|e| e.to_string().contains("group.instance.id"))
    );
    h.advance(60_000 * MS);
    assert!(h.tx().is_empty());
    let id = h.m.commit_processed(h.now, CommitMode::Async);
    assert!(id.is_none());
}

#[test]
fn coordinator_moves_and_is_rediscovered() {
    let mut h = stable(cfg(), 1);
    h.advance(3_000 * MS);
    let b = h.one(12);
    h.m.handle_response(h.now, b.id, hb(ErrorCode::NOT_COORDINATOR));
    assert_eq!(h.events(), vec![Event::CoordinatorLost]);
    assert_eq!(
        h.m.phase(),
        Phase::Stable,
        "membership survives a coordinator move"
    );
    assert!(h.tx().is_empty(), "rediscovery waits for the backoff");
    h.advance(200 * MS);
    let f = h.one(10);
    let mut moved = fc_ok(2);
    moved.coordinators[0].host = "broker-2";
    h.m.handle_response(h.now, f.id, Response::FindCoordinator(moved));
    let b = h.one(12);
    match &b.target {
        Target::Coordinator(c) => assert_eq!((c.node_id, c.host.as_str()), (2, "broker-2")),
        t => panic!("heartbeat to {t:?}"),
    }
    // COORDINATOR_NOT_AVAILABLE from FindCoordinator itself: retried with backoff.
    h.m.handle_disconnect(h.now);
    assert!(h.tx().is_empty());
    h.advance(300 * MS);
    let f = h.one(10);
    let mut busy = fc_ok(-1);
    busy.coordinators[0].error_code = ErrorCode::COORDINATOR_NOT_AVAILABLE;
    h.m.handle_response(h.now, f.id, Response::FindCoordinator(busy));
    assert!(h.tx().is_empty());
    h.advance(400 * MS);
    assert_eq!(h.one(10).target, Target::AnyBroker);
}

#[test]
fn load_in_progress_backs_off_join() {
    let mut h = H::new(cfg());
    h.m.subscribe(h.now, ["t".to_string()]);
    h.find_coordinator();
    let j = h.one(11);
    h.m.handle_response(
        h.now,
        j.id,
        Response::JoinGroup(join_resp(
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
            -1,
            "",
            "",
        )),
    );
    h.advance(100 * MS);
    assert!(
        h.tx().is_empty(),
        "backoff is at least 160 ms after one failure"
    );
    h.advance(200 * MS);
    assert_eq!(h.one(11).request.api_key(), 11);
    assert!(h.m.poll_timeout().is_some());
}

#[test]
fn disconnect_during_join_rejoins_via_new_coordinator() {
    let mut h = H::new(cfg());
    h.m.subscribe(h.now, ["t".to_string()]);
    h.find_coordinator();
    let j = h.one(11);
    h.m.handle_disconnect(h.now);
    // A late answer to the abandoned request is ignored.
    h.m.handle_response(
        h.now,
        j.id,
        Response::JoinGroup(join_ok(1, "m1", "m1", "range", vec![])),
    );
    assert_eq!(h.m.phase(), Phase::Unjoined);
    h.advance(200 * MS);
    h.find_coordinator();
    h.advance(200 * MS);
    assert_eq!(h.one(11).request.api_key(), 11);
}

#[test]
fn session_timeout_marks_coordinator_dead() {
    let mut h = stable(cfg(), 1);
    h.advance(3_000 * MS);
    let _b = h.one(12); // never answered
    h.advance(6_999 * MS);
    assert!(h.events().is_empty());
    h.advance(MS);
    assert_eq!(h.events(), vec![Event::CoordinatorLost]);
    h.advance(300 * MS);
    assert_eq!(h.one(10).request.api_key(), 10);
}

#[test]
fn poll_timeout_leaves_and_rejoins_on_next_poll() {
    let mut c = cfg();
    c.max_poll_interval = Duration::from_secs(20);
    c.enable_auto_commit = false;
    let mut h = stable(c, 1);
    for _ in 0..6 {
        h.advance(3_000 * MS);
        let b = h.one(12);
        h.m.handle_response(h.now, b.id, hb(ErrorCode::NONE));
    }
    h.advance(2_000 * MS); // 20 s without poll()
    let l = h.one(13);
    let Request::LeaveGroup(req) = &l.request else {
        unreachable!()
    };
    assert_eq!(&*req.members[0].member_id, "m1");
    assert_eq!(h.events(), vec![Event::PartitionsLost(tps(&[("t", 0)]))]);
    h.m.handle_response(
        h.now,
        l.id,
        Response::LeaveGroup(LeaveGroupResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::NONE,
            members: vec![],
        }),
    );
    h.advance(60_000 * MS);
    assert!(h.tx().is_empty(), "no rejoin until the application polls");
    h.m.poll(h.now);
    let j = h.one(11);
    let Request::JoinGroup(req) = &j.request else {
        unreachable!()
    };
    assert_eq!(&*req.member_id, "");
}

#[test]
fn static_member_never_sends_leave_group() {
    let mut c = cfg();
    c.group_instance_id = Some("i-1".into());
    c.max_poll_interval = Duration::from_secs(5);
    c.enable_auto_commit = false;
    let mut h = stable(c, 1);
    h.advance(3_000 * MS);
    let b = h.one(12);
    h.m.handle_response(h.now, b.id, hb(ErrorCode::NONE));
    h.advance(2_000 * MS);
    assert!(
        h.tx().is_empty(),
        "static members do not send LeaveGroup on poll timeout"
    );
    assert_eq!(h.events(), vec![Event::PartitionsLost(tps(&[("t", 0)]))]);
    h.m.poll(h.now);
    let j = h.one(11);
    let Request::JoinGroup(req) = &j.request else {
        unreachable!()
    };
    assert_eq!(req.group_instance_id.as_deref(), Some("i-1"));
    // Static member close: revoke, then closed without LeaveGroup.
    h.m.close(h.now, Duration::from_secs(5));
    assert!(h.tx().is_empty());
    assert_eq!(h.events(), vec![Event::Closed]);
}

#[test]
fn close_revokes_commits_leaves() {
    let mut h = stable(cfg(), 2);
    h.m.record_processed(&TopicPartition::new("t", 1), 7, None);
    h.m.close(h.now, Duration::from_secs(10));
    assert_eq!(
        h.events(),
        vec![Event::PartitionsRevoked(tps(&[("t", 0), ("t", 1)]))]
    );
    assert!(h.tx().is_empty(), "nothing before the revoke ack");
    h.m.ack_revoked(h.now);
    let c = h.one(8);
    h.m.handle_response(h.now, c.id, commit_resp(&[("t", 1, ErrorCode::NONE)]));
    let l = h.one(13);
    assert_eq!(h.m.phase(), Phase::Leaving);
    h.m.handle_response(
        h.now,
        l.id,
        Response::LeaveGroup(LeaveGroupResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::NONE,
            members: vec![],
        }),
    );
    let ev = h.events();
    assert!(
        matches!(
            ev.as_slice(),
            [Event::CommitCompleted { result: Ok(()), .. }, Event::Closed]
        ),
        "{ev:?}"
    );
    assert_eq!(h.m.phase(), Phase::Closed);
}

/// Without auto-commit the application commits what it processed before it acks the
/// revocation (as `weir_consumer::group` does): that commit goes out with the member's id and
/// generation, and LeaveGroup only after it completed. Leaving first makes Apache
/// Kafka reject the commit (UNKNOWN_MEMBER_ID), and the next owner re-reads.
#[test]
fn close_leaves_only_after_the_applications_revoke_commit() {
    let mut c = cfg();
    c.enable_auto_commit = false;
    let mut h = stable(c, 2);
    h.m.record_processed(&TopicPartition::new("t", 0), 4, None);
    h.m.close(h.now, Duration::from_secs(10));
    h.events();
    assert!(h.m.commit_processed(h.now, CommitMode::Async).is_some());
    h.m.ack_revoked(h.now);
    let c = h.one(8);
    let Request::OffsetCommit(req) = &c.request else {
        unreachable!()
    };
    assert_eq!(req.member_id.as_str(), "m1", "the commit names the member");
    assert!(req.generation_id_or_member_epoch > 0, "and its generation");
    assert!(
        h.tx().is_empty(),
        "no LeaveGroup while the commit is in flight"
    );
    h.m.handle_response(h.now, c.id, commit_resp(&[("t", 0, ErrorCode::NONE)]));
    let _l = h.one(13);
    assert_eq!(h.m.phase(), Phase::Leaving);
}

#[test]
fn close_is_bounded() {
    let mut c = cfg();
    c.enable_auto_commit = false;
    let mut h = stable(c, 1);
    h.m.close(h.now, Duration::from_secs(2));
    h.events();
    h.m.ack_revoked(h.now);
    let _l = h.one(13); // never answered
    h.run_for(Duration::from_secs(2));
    let ev = h.events();
    assert!(ev.ends_with(&[Event::Closed]), "{ev:?}");
    // The revoke is never acked: still closed by the deadline.
    let mut h = stable(cfg(), 1);
    h.m.close(h.now, Duration::from_secs(2));
    h.run_for(Duration::from_secs(2));
    let ev = h.events();
    assert!(
        ev.ends_with(&[Event::PartitionsLost(tps(&[("t", 0)])), Event::Closed]),
        "{ev:?}"
    );
}

#[test]
fn cooperative_revokes_only_what_moved_then_rejoins() {
    let mut c = cfg();
    c.assignment_strategies = vec![AssignmentStrategy::CooperativeSticky];
    let mut h = H::new(c);
    assert_eq!(h.m.rebalance_protocol(), RebalanceProtocol::Cooperative);
    h.m.subscribe(h.now, ["t".to_string()]);
    h.find_coordinator();
    let j = h.one(11);
    h.m.handle_response(
        h.now,
        j.id,
        Response::JoinGroup(join_ok(1, "m1", "other", "cooperative-sticky", vec![])),
    );
    let s = h.one(14);
    h.m.handle_response(
        h.now,
        s.id,
        Response::SyncGroup(sync_ok(assignment(&[
            ("t", 0),
            ("t", 1),
            ("t", 2),
            ("t", 3),
        ]))),
    );
    assert_eq!(h.events().len(), 1);
    let _f = h.one(9);
    // Another member joins: heartbeat says rebalance; no revocation up front.
    h.advance(3_000 * MS);
    let b = h.one(12);
    h.m.handle_response(h.now, b.id, hb(ErrorCode::REBALANCE_IN_PROGRESS));
    assert!(
        h.events().is_empty(),
        "cooperative members keep their partitions while joining"
    );
    let j = h.one(11);
    let Request::JoinGroup(req) = &j.request else {
        unreachable!()
    };
    let sub = Subscription::decode(&req.protocols[0].metadata).expect("sub");
    assert_eq!(sub.owned_partitions.len(), 4);
    assert_eq!(sub.generation_id, 1);
    h.m.handle_response(
        h.now,
        j.id,
        Response::JoinGroup(join_ok(2, "m1", "other", "cooperative-sticky", vec![])),
    );
    let s = h.one(14);
    h.m.handle_response(
        h.now,
        s.id,
        Response::SyncGroup(sync_ok(assignment(&[("t", 0), ("t", 1)]))),
    );
    assert_eq!(
        h.events(),
        vec![
            Event::PartitionsRevoked(tps(&[("t", 2), ("t", 3)])),
            Event::PartitionsAssigned(vec![])
        ]
    );
    // Heartbeats continue; the rejoin waits for the ack.
    let mut sent: Vec<i16> = h.tx().iter().map(|o| o.request.api_key()).collect();
    h.advance(3_000 * MS);
    sent.extend(h.tx().iter().map(|o| o.request.api_key()));
    assert!(!sent.contains(&11), "{sent:?}");
    h.m.ack_revoked(h.now);
    let j = h
        .tx()
        .into_iter()
        .find(|o| o.request.api_key() == 11)
        .expect("rejoin after ack");
    let Request::JoinGroup(req) = &j.request else {
        unreachable!()
    };
    let sub = Subscription::decode(&req.protocols[0].metadata).expect("sub");
    assert_eq!(sub.owned_partitions, tps(&[("t", 0), ("t", 1)]));
}

#[test]
fn commit_errors() {
    let mut c = cfg();
    c.enable_auto_commit = false;
    let mut h = stable(c, 2);
    let t0 = TopicPartition::new("t", 0);
    h.m.record_processed(&t0, 5, None);
    h.m.record_processed(&TopicPartition::new("other", 0), 5, None); // not assigned: ignored

    // Sync commit: a retriable error is retried after backoff.
    let id =
        h.m.commit_processed(
            h.now,
            CommitMode::Sync {
                timeout: Duration::from_secs(5),
            },
        )
        .expect("something to commit");
    let c1 = h.one(8);
    let Request::OffsetCommit(req) = &c1.request else {
        unreachable!()
    };
    assert_eq!(req.topics.len(), 1);
    assert_eq!(req.topics[0].partitions[0].committed_offset, 6);
    h.m.handle_response(
        h.now,
        c1.id,
        commit_resp(&[("t", 0, ErrorCode::COORDINATOR_LOAD_IN_PROGRESS)]),
    );
    assert!(h.events().is_empty());
    h.advance(300 * MS);
    let c2 = h.one(8);
    h.m.handle_response(h.now, c2.id, commit_resp(&[("t", 0, ErrorCode::NONE)]));
    assert_eq!(
        h.events(),
        vec![Event::CommitCompleted {
            id,
            offsets: vec![(t0.clone(), 6)],
            result: Ok(())
        }]
    );
    assert_eq!(h.m.committed(&t0), Some(6));
    assert!(
        h.m.commit_processed(h.now, CommitMode::Async).is_none(),
        "nothing new"
    );

    // Async: reported, not retried.
    h.m.record_processed(&t0, 8, None);
    let id =
        h.m.commit_processed(h.now, CommitMode::Async)
            .expect("new offset");
    let c3 = h.one(8);
    h.m.handle_response(
        h.now,
        c3.id,
        commit_resp(&[("t", 0, ErrorCode::COORDINATOR_LOAD_IN_PROGRESS)]),
    );
    assert_eq!(
        h.events(),
        vec![Event::CommitCompleted {
            id,
            offsets: vec![(t0.clone(), 9)],
            result: Err(CommitError::Retriable(
                ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
            ))
        }]
    );

    // REBALANCE_IN_PROGRESS during commit.
    let id = h.m.commit_offsets(
        h.now,
        vec![(
            t0.clone(),
            OffsetAndMetadata {
                offset: 9,
                leader_epoch: Some(1),
                metadata: "note".into(),
            },
        )],
        CommitMode::Sync {
            timeout: Duration::from_secs(5),
        },
    );
    let c4 = h.one(8);
    let Request::OffsetCommit(req) = &c4.request else {
        unreachable!()
    };
    assert_eq!(
        req.topics[0].partitions[0].committed_metadata.as_deref(),
        Some("note")
    );
    h.m.handle_response(
        h.now,
        c4.id,
        commit_resp(&[("t", 0, ErrorCode::REBALANCE_IN_PROGRESS)]),
    );
    let ev = h.events();
    assert!(
        ev.contains(&Event::CommitCompleted {
            id,
            offsets: vec![(t0.clone(), 9)],
            result: Err(CommitError::RebalanceInProgress)
        }),
        "{ev:?}"
    );

    // ILLEGAL_GENERATION: the commit fails and the partitions are lost.
    let mut h = stable(cfg(), 1);
    h.m.record_processed(&t0, 1, None);
    let id =
        h.m.commit_processed(h.now, CommitMode::Async)
            .expect("commit");
    let c5 = h.one(8);
    h.m.handle_response(
        h.now,
        c5.id,
        commit_resp(&[("t", 0, ErrorCode::ILLEGAL_GENERATION)]),
    );
    let ev = h.events();
    assert_eq!(
        ev,
        vec![
            Event::CommitCompleted {
                id,
                offsets: vec![(t0.clone(), 2)],
                result: Err(CommitError::CommitFailed(ErrorCode::ILLEGAL_GENERATION))
            },
            Event::PartitionsLost(vec![t0.clone()]),
        ]
    );
    // Committing outside a generation fails at once.
    let id = h.m.commit_offsets(
        h.now,
        vec![(
            t0.clone(),
            OffsetAndMetadata {
                offset: 1,
                leader_epoch: None,
                metadata: String::new(),
            },
        )],
        CommitMode::Async,
    );
    let ev = h.events();
    assert!(
        matches!(&ev[..], [Event::CommitCompleted { id: i, result: Err(_), .. }] if *i == id),
        "{ev:?}"
    );
}

#[test]
fn auto_commit_runs_every_interval() {
    let mut h = stable(cfg(), 1);
    let t0 = TopicPartition::new("t", 0);
    h.m.record_processed(&t0, 41, None);
    let mut commits = 0;
    for _ in 0..10 {
        h.advance(1_000 * MS);
        for o in h.tx() {
            match o.request.api_key() {
                12 => h.m.handle_response(h.now, o.id, hb(ErrorCode::NONE)),
                8 => {
                    commits += 1;
                    h.m.handle_response(h.now, o.id, commit_resp(&[("t", 0, ErrorCode::NONE)]));
                }
                k => panic!("unexpected api {k}"),
            }
        }
        h.m.poll(h.now);
    }
    assert_eq!(commits, 1, "one commit: the offset did not change after it");
    assert_eq!(h.m.committed(&t0), Some(42));
}

#[test]
fn requests_encode_at_the_oldest_versions_too() {
    let mut c = cfg();
    c.assignment_strategies = vec![AssignmentStrategy::Sticky, AssignmentStrategy::RoundRobin];
    let mut h = H::with_versions(c, GroupVersions::MIN);
    assert_eq!(h.versions, GroupVersions::MIN);
    h.m.subscribe(h.now, ["t".to_string()]);
    h.find_coordinator();
    h.join_alone_with(2, 1, "sticky");
    h.events();
    let f = h.one(9);
    h.m.handle_response(
        h.now,
        f.id,
        fetch_resp(
            ErrorCode::NONE,
            &[("t", 0, 3, ErrorCode::NONE), ("t", 1, 3, ErrorCode::NONE)],
        ),
    );
    h.m.record_processed(&TopicPartition::new("t", 0), 3, Some(2));
    let _ = h.m.commit_processed(h.now, CommitMode::Async);
    h.advance(3_000 * MS);
    let sent: Vec<i16> = h.tx().iter().map(|o| o.request.api_key()).collect();
    assert!(sent.contains(&8) && sent.contains(&12), "{sent:?}");
    h.m.close(h.now, Duration::from_secs(1));
    h.m.ack_revoked(h.now);
    // Auto-commit: the final commit must finish before LeaveGroup goes out.
    let final_commit = h.one(8);
    h.m.handle_response(
        h.now,
        final_commit.id,
        commit_resp(&[("t", 0, ErrorCode::NONE)]),
    );
    assert_eq!(h.one(13).version, 0);
    // Negotiation picks the highest common version and refuses a missing API.
    let v = GroupVersions::negotiate(|k| Some(if k == 11 { (0, 7) } else { (0, 20) }))
        .expect("negotiates");
    assert_eq!((v.join_group, v.offset_commit), (7, 9));
    assert_eq!(
        GroupVersions::negotiate(|k| (k != 9).then_some((0, 9))),
        Err(9)
    );
}

#[test]
fn static_membership_needs_join_group_v5() {
    let mut c = cfg();
    c.group_instance_id = Some("i".into());
    let mut v = GroupVersions::MAX;
    v.join_group = 4;
    let mut h = H::with_versions(c, v);
    h.m.subscribe(h.now, ["t".to_string()]);
    h.find_coordinator();
    assert!(h.tx().is_empty());
    assert!(matches!(
        h.events().as_slice(),
        [Event::Fatal(GroupError::Config(_))]
    ));
}

#[test]
fn sync_errors_rejoin() {
    let mut h = H::new(cfg());
    h.m.subscribe(h.now, ["t".to_string()]);
    h.find_coordinator();
    let j = h.one(11);
    h.m.handle_response(
        h.now,
        j.id,
        Response::JoinGroup(join_ok(3, "m2", "m1", "range", vec![])),
    );
    let s = h.one(14);
    let Request::SyncGroup(req) = &s.request else {
        unreachable!()
    };
    assert!(req.assignments.is_empty(), "followers send no assignments");
    h.m.handle_response(
        h.now,
        s.id,
        Response::SyncGroup(sync_err(ErrorCode::REBALANCE_IN_PROGRESS)),
    );
    let j = h.one(11);
    let Request::JoinGroup(req) = &j.request else {
        unreachable!()
    };
    assert_eq!(&*req.member_id, "m2");
    h.m.handle_response(
        h.now,
        j.id,
        Response::JoinGroup(join_ok(4, "m2", "m1", "range", vec![])),
    );
    let s = h.one(14);
    h.m.handle_response(
        h.now,
        s.id,
        Response::SyncGroup(sync_err(ErrorCode::UNKNOWN_MEMBER_ID)),
    );
    let j = h.one(11);
    let Request::JoinGroup(req) = &j.request else {
        unreachable!()
    };
    assert_eq!(
        &*req.member_id, "",
        "UNKNOWN_MEMBER_ID in SyncGroup resets the id"
    );
    h.m.handle_response(
        h.now,
        j.id,
        Response::JoinGroup(join_ok(5, "m3", "m1", "roundrobin", vec![])),
    );
    assert!(
        matches!(h.events().as_slice(), [Event::Fatal(GroupError::InconsistentProtocol(p))] if p == "roundrobin")
    );
}

#[test]
fn manual_commit_in_revoke_callback_finishes_before_join() {
    let mut c = cfg();
    c.enable_auto_commit = false;
    let mut h = stable(c, 1);
    let t0 = TopicPartition::new("t", 0);
    h.m.record_processed(&t0, 10, None);
    h.m.request_rejoin();
    assert!(h.tx().is_empty());
    assert_eq!(h.events(), vec![Event::PartitionsRevoked(vec![t0.clone()])]);
    // The application's revoke callback commits, then the driver acks.
    let id =
        h.m.commit_processed(
            h.now,
            CommitMode::Sync {
                timeout: Duration::from_secs(5),
            },
        )
        .expect("offsets to commit");
    h.m.ack_revoked(h.now);
    let c1 = h.one(8);
    assert!(
        h.tx().is_empty(),
        "no JoinGroup while the commit is in flight"
    );
    h.m.handle_response(h.now, c1.id, commit_resp(&[("t", 0, ErrorCode::NONE)]));
    assert_eq!(
        h.events(),
        vec![Event::CommitCompleted {
            id,
            offsets: vec![(t0, 11)],
            result: Ok(())
        }]
    );
    assert_eq!(h.one(11).request.api_key(), 11);
    // Commits while rejoining report a rebalance in progress.
    let id = h.m.commit_offsets(
        h.now,
        vec![(
            TopicPartition::new("t", 0),
            OffsetAndMetadata {
                offset: 1,
                leader_epoch: None,
                metadata: String::new(),
            },
        )],
        CommitMode::Async,
    );
    assert!(matches!(
        h.events().as_slice(),
        [Event::CommitCompleted { id: i, result: Err(CommitError::RebalanceInProgress), .. }] if *i == id
    ));
}

#[test]
fn responses_decode_by_api_key() {
    use kafka_protocol::protocol::Encodable;
    let mut b = BytesMut::new();
    kafka_protocol::messages::HeartbeatResponse::default()
        .with_error_code(27)
        .encode(&mut b, 4)
        .expect("encodes");
    let r = Response::decode(12, 4, &b).expect("decodes");
    assert!(
        matches!(r, Response::Heartbeat(h) if h.error_code == ErrorCode::REBALANCE_IN_PROGRESS)
    );
    assert!(Response::decode(1, 4, &b).is_err(), "not a group API");
    let table = weir_protocol::versions::ApiVersionTable::from_ranges(
        [
            (8, 0, 8),
            (9, 0, 8),
            (10, 0, 3),
            (11, 0, 7),
            (12, 0, 4),
            (13, 0, 4),
            (14, 0, 5),
        ]
        .map(
            |(k, lo, hi)| weir_protocol::messages::api_versions::ApiVersionRange {
                api_key: k,
                min_version: lo,
                max_version: hi,
            },
        ),
    );
    let v = GroupVersions::from_table(&table).expect("negotiates");
    assert_eq!(
        (
            v.find_coordinator,
            v.join_group,
            v.offset_commit,
            v.offset_fetch
        ),
        (3, 7, 8, 8)
    );
}

#[test]
fn unsubscribing_revokes_and_leaves() {
    let mut h = stable(cfg(), 2);
    h.m.subscribe(h.now, Vec::<String>::new());
    assert!(h.tx().is_empty());
    assert_eq!(
        h.events(),
        vec![Event::PartitionsRevoked(tps(&[("t", 0), ("t", 1)]))]
    );
    h.m.ack_revoked(h.now);
    let l = h.one(13);
    let Request::LeaveGroup(req) = &l.request else {
        unreachable!()
    };
    assert_eq!(&*req.members[0].member_id, "m1");
    h.m.handle_response(
        h.now,
        l.id,
        Response::LeaveGroup(LeaveGroupResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::NONE,
            members: vec![],
        }),
    );
    assert!(h.events().is_empty());
    assert_eq!(h.m.phase(), Phase::Unjoined);
    h.advance(Duration::from_secs(60));
    assert!(h.tx().is_empty(), "no join without a subscription");
    // Subscribing again joins afresh.
    h.m.subscribe(h.now, ["t".to_string()]);
    let j = h.one(11);
    let Request::JoinGroup(req) = &j.request else {
        unreachable!()
    };
    assert_eq!(&*req.member_id, "");
}

#[test]
fn leader_rebalances_when_partition_count_changes() {
    let mut h = stable(cfg(), 2);
    assert!(h.m.is_leader());
    h.m.update_metadata(h.now, [("t".to_string(), 2), ("other".to_string(), 9)]);
    assert!(h.tx().is_empty(), "unchanged counts: no rebalance");
    h.m.update_metadata(h.now, [("t".to_string(), 3)]);
    assert!(h.tx().is_empty());
    assert_eq!(
        h.events(),
        vec![Event::PartitionsRevoked(tps(&[("t", 0), ("t", 1)]))]
    );
}

#[test]
fn join_errors_that_need_the_user_are_fatal() {
    for code in [
        ErrorCode::GROUP_AUTHORIZATION_FAILED,
        ErrorCode::INVALID_SESSION_TIMEOUT,
        ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
        ErrorCode::GROUP_MAX_SIZE_REACHED,
        ErrorCode::FENCED_INSTANCE_ID,
    ] {
        let mut h = H::new(cfg());
        h.m.subscribe(h.now, ["t".to_string()]);
        h.find_coordinator();
        let j = h.one(11);
        h.m.handle_response(
            h.now,
            j.id,
            Response::JoinGroup(join_resp(code, -1, "", "")),
        );
        let ev = h.events();
        assert!(matches!(ev.as_slice(), [Event::Fatal(_)]), "{code}: {ev:?}");
        let Event::Fatal(e) = &ev[0] else {
            unreachable!()
        };
        assert!(!e.to_string().is_empty());
        h.advance(Duration::from_secs(10));
        assert!(h.tx().is_empty(), "{code}: nothing after a fatal error");
    }
    // Retriable join errors retry.
    for code in [
        ErrorCode::REBALANCE_IN_PROGRESS,
        ErrorCode::UNKNOWN_SERVER_ERROR,
    ] {
        let mut h = H::new(cfg());
        h.m.subscribe(h.now, ["t".to_string()]);
        h.find_coordinator();
        let j = h.one(11);
        h.m.handle_response(
            h.now,
            j.id,
            Response::JoinGroup(join_resp(code, -1, "", "")),
        );
        assert!(h.events().is_empty());
        h.advance(Duration::from_secs(2));
        assert_eq!(h.one(11).request.api_key(), 11, "{code} retried");
    }
}

#[test]
fn offset_fetch_and_heartbeat_retry_transient_errors() {
    let mut h = H::new(cfg());
    h.m.subscribe(h.now, ["t".to_string()]);
    h.find_coordinator();
    h.join_alone(1, 1);
    h.events();
    let f = h.one(9);
    h.m.handle_response(
        h.now,
        f.id,
        fetch_resp(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS, &[]),
    );
    assert!(h.tx().is_empty());
    h.advance(100 * MS);
    let f = h.one(9);
    h.m.handle_response(h.now, f.id, fetch_resp(ErrorCode::NOT_COORDINATOR, &[]));
    assert_eq!(h.events(), vec![Event::CoordinatorLost]);
    h.advance(300 * MS);
    h.find_coordinator();
    // After rediscovery: a prompt heartbeat and the OffsetFetch again.
    let sent = h.tx();
    let apis: Vec<i16> = sent.iter().map(|o| o.request.api_key()).collect();
    assert_eq!(apis, [12, 9]);
    h.m.handle_response(
        h.now,
        sent[1].id,
        fetch_resp(ErrorCode::NONE, &[("t", 0, 5, ErrorCode::NONE)]),
    );
    assert!(matches!(h.events().as_slice(), [Event::StartPositions(p)] if p.len() == 1));
    h.m.handle_response(
        h.now,
        sent[0].id,
        hb(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS),
    );
    assert!(h.events().is_empty());
    h.advance(99 * MS);
    assert!(h.tx().is_empty());
    h.advance(MS);
    assert_eq!(
        h.one(12).request.api_key(),
        12,
        "heartbeat retried after retry.backoff.ms"
    );
}

#[test]
fn close_finds_a_lost_coordinator_to_send_leave_group() {
    let mut c = cfg();
    c.enable_auto_commit = false;
    let mut h = stable(c, 1);
    h.m.handle_disconnect(h.now);
    h.m.close(h.now, Duration::from_secs(5));
    assert_eq!(h.events(), vec![Event::PartitionsRevoked(tps(&[("t", 0)]))]);
    h.m.ack_revoked(h.now);
    assert_eq!(h.m.phase(), Phase::Leaving);
    h.advance(300 * MS);
    h.find_coordinator();
    let l = h.one(13);
    let Request::LeaveGroup(req) = &l.request else {
        unreachable!()
    };
    assert_eq!(&*req.members[0].member_id, "m1");
    assert_eq!(
        req.members[0].reason.as_deref(),
        Some("the consumer is being closed")
    );
    h.m.handle_response(
        h.now,
        l.id,
        Response::LeaveGroup(LeaveGroupResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::NONE,
            members: vec![],
        }),
    );
    assert_eq!(h.events(), vec![Event::Closed]);
}

#[test]
fn config_is_validated() {
    let mut c = GroupConfig::new("");
    assert!(GroupMember::new(c.clone(), Instant::now()).is_err());
    c.group_id = "g".into();
    c.heartbeat_interval = c.session_timeout;
    let e = GroupMember::new(c, Instant::now()).expect_err("heartbeat >= session");
    assert!(e.to_string().contains("heartbeat.interval.ms"));
}

/// Heartbeats go on while SyncGroup is pending (issue 10, defect 9): the coordinator
/// may hold SyncGroup until the leader's assignment arrives, longer than the session
/// timeout. Before, heartbeats stopped at JoinGroup and started again only after
/// SyncGroup, so a slow leader expired every follower's session. REBALANCE_IN_PROGRESS
/// on such a heartbeat does not start another join (SyncGroup's answer decides), and
/// a heartbeat of the old generation answered after the rejoin is ignored.
#[test]
fn heartbeats_go_on_while_sync_group_is_pending() {
    let mut c = cfg();
    c.heartbeat_interval = Duration::from_secs(3);
    let mut h = H::new(c);
    h.m.subscribe(h.now, ["t".to_string()]);
    h.find_coordinator();
    h.join_alone(1, 1);
    h.events();
    let f = h.one(9);
    h.m.handle_response(
        h.now,
        f.id,
        fetch_resp(ErrorCode::NONE, &[("t", 0, 5, ErrorCode::NONE)]),
    );
    h.events();
    // Stable at generation 1; a heartbeat goes out and stays unanswered while the
    // group rebalances.
    h.run_for(3 * Duration::from_secs(1));
    let stale = h.one(12);
    h.m.handle_response(h.now, stale.id, hb(ErrorCode::NONE));
    h.run_for(3 * Duration::from_secs(1));
    let stale = h.one(12);
    h.m.request_rejoin();
    assert!(h.tx().is_empty());
    // Eager (range): everything is revoked before the join.
    assert!(
        h.events()
            .iter()
            .any(|e| matches!(e, Event::PartitionsRevoked(_))),
        "eager rejoin revokes first"
    );
    h.m.ack_revoked(h.now);
    let j = h.one(11);
    h.m.handle_response(
        h.now,
        j.id,
        Response::JoinGroup(join_ok(2, "m2", "m1", "range", vec![])),
    );
    let s = h.one(14);
    // The old generation's heartbeat answers now: ignored, the sync goes on.
    h.m.handle_response(h.now, stale.id, hb(ErrorCode::ILLEGAL_GENERATION));
    assert!(h.tx().is_empty(), "no rejoin for a stale heartbeat");
    // 25 s without a SyncGroup answer (session.timeout.ms is 10 s): heartbeats of
    // generation 2 every 3 s keep the session.
    for beats in 0..8 {
        h.run_for(Duration::from_secs(3));
        let o = h.one(12);
        let Request::Heartbeat(req) = &o.request else {
            unreachable!()
        };
        assert_eq!(req.generation_id, 2);
        assert_eq!(&*req.member_id, "m2");
        let code = if beats == 3 {
            ErrorCode::REBALANCE_IN_PROGRESS
        } else {
            ErrorCode::NONE
        };
        h.m.handle_response(h.now, o.id, hb(code));
    }
    assert!(
        !h.events().contains(&Event::CoordinatorLost),
        "the session was kept"
    );
    assert!(h.tx().is_empty(), "no JoinGroup while SyncGroup is pending");
    h.m.handle_response(
        h.now,
        s.id,
        Response::SyncGroup(sync_ok(assignment(&[("t", 0)]))),
    );
    assert_eq!(h.m.phase(), Phase::Stable);
}

/// Steps virtual time until the member sends a JoinGroup; returns it and the wait.
fn time_to_join(h: &mut H) -> (Outgoing, Duration) {
    let start = h.now;
    loop {
        let tx = h.tx();
        if let Some(j) = tx.into_iter().find(|o| o.request.api_key() == 11) {
            return (j, h.now - start);
        }
        assert!(h.now - start < Duration::from_secs(30), "no JoinGroup");
        h.advance(10 * MS);
    }
}

/// An assignment naming a topic the member does not subscribe to, or a negative
/// partition, is not taken (Java rejoins too): the member joins again, backing off
/// longer each time, and takes the next good assignment. It used to keep the
/// subscribed part silently, and took negative partitions as they came.
#[test]
fn a_wrong_assignment_is_refused_and_the_member_joins_again() {
    let mut h = H::new(cfg());
    h.m.subscribe(h.now, ["t".to_string()]);
    h.find_coordinator();
    let mut generation = 3;
    let mut waits = Vec::new();
    let mut j = h.one(11);
    for bad in [
        assignment(&[("t", 0), ("other", 1)]),
        assignment(&[("t", 0), ("t", -1)]),
    ] {
        h.m.handle_response(
            h.now,
            j.id,
            Response::JoinGroup(join_ok(generation, "m2", "m1", "range", vec![])),
        );
        generation += 1;
        let s = h.one(14);
        h.m.handle_response(h.now, s.id, Response::SyncGroup(sync_ok(bad)));
        assert!(
            !h.events()
                .iter()
                .any(|e| matches!(e, Event::PartitionsAssigned(_))),
            "a wrong assignment was taken"
        );
        assert!(h.m.assignment().is_empty(), "{:?}", h.m.assignment());
        assert_ne!(h.m.phase(), Phase::Stable);
        let (next, wait) = time_to_join(&mut h);
        j = next;
        waits.push(wait);
    }
    assert!(waits[0] > Duration::ZERO, "joined again without backoff");
    assert!(waits[1] > waits[0], "the backoff does not grow: {waits:?}");
    h.m.handle_response(
        h.now,
        j.id,
        Response::JoinGroup(join_ok(generation, "m2", "m1", "range", vec![])),
    );
    let s = h.one(14);
    h.m.handle_response(
        h.now,
        s.id,
        Response::SyncGroup(sync_ok(assignment(&[("t", 0), ("t", 1)]))),
    );
    assert!(
        h.events()
            .contains(&Event::PartitionsAssigned(tps(&[("t", 0), ("t", 1)])))
    );
    assert_eq!(h.m.phase(), Phase::Stable);
}

/// After a cooperative round the first heartbeats come early (50, 100 and 200 ms
/// apart, then every heartbeat.interval.ms), so a member learns within tens of ms
/// of the second round a revoking member starts; an eager member heartbeats at the
/// interval from the start.
#[test]
fn after_a_cooperative_round_the_first_heartbeats_come_early() {
    for (strategy, protocol, early) in [
        (
            AssignmentStrategy::CooperativeSticky,
            "cooperative-sticky",
            true,
        ),
        (AssignmentStrategy::Range, "range", false),
    ] {
        let mut c = cfg();
        c.assignment_strategies = vec![strategy];
        c.heartbeat_interval = Duration::from_secs(3);
        let mut h = H::new(c);
        h.m.subscribe(h.now, ["t".to_string()]);
        h.find_coordinator();
        h.join_alone_with(2, 1, protocol);
        let _ = h.events();
        let _ = h.tx(); // the OffsetFetch of the new partitions
        let gaps: &[u64] = if early {
            &[50, 100, 200, 3000]
        } else {
            &[3000]
        };
        for &gap in gaps {
            h.advance(Duration::from_millis(gap - 1));
            assert!(
                h.tx().iter().all(|o| o.request.api_key() != 12),
                "{protocol}: no heartbeat before {gap} ms"
            );
            h.advance(MS);
            let b = h.one(12);
            h.m.handle_response(h.now, b.id, hb(ErrorCode::NONE));
        }
    }
}
