//! Group mode against the scripted broker: coordinator failover the real broker will
//! not produce on demand. The scripted broker plays a one-member group coordinator
//! (JoinGroup, SyncGroup, Heartbeat, OffsetFetch, OffsetCommit, LeaveGroup handlers
//! below); faults are queued one-shot actions.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    ApiKey, HeartbeatResponse, JoinGroupResponse, LeaveGroupResponse, OffsetCommitResponse,
    OffsetFetchResponse, RequestKind, ResponseKind, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use support::scripted::{Action, ScriptedBroker};
use weir_consumer::coordinator::{AssignmentStrategy, AutoOffsetReset, GroupConfig, Phase};
use weir_consumer::fetch::FetchConfig;
use weir_consumer::fetch::FetchError;
use weir_consumer::group::{GroupConsumer, GroupConsumerError};
use weir_protocol::RecordBatchBuilder;

const T: &str = "events";
const MEMBER: &str = "member-1";
/// NOT_COORDINATOR.
const NOT_COORDINATOR: i16 = 16;

fn batch(base: i64, n: usize) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(base);
    for i in 0..n {
        let v = format!("value-{}", base + i as i64);
        b.append(
            1_700_000_000_000 + base + i as i64,
            None,
            Some(v.as_bytes()),
        );
    }
    b.build()
}

/// The one-member group's JoinGroup answer: a new generation led by [`MEMBER`].
fn join_answer(generation: &AtomicI32, req: &RequestKind) -> Option<Action> {
    let RequestKind::JoinGroup(r) = req else {
        return None;
    };
    let proto = r.protocols.first()?;
    let mut resp = JoinGroupResponse::default();
    resp.generation_id = generation.fetch_add(1, Ordering::SeqCst) + 1;
    resp.protocol_type = Some(StrBytes::from_static_str("consumer"));
    resp.protocol_name = Some(proto.name.clone());
    resp.leader = StrBytes::from_static_str(MEMBER);
    resp.member_id = StrBytes::from_static_str(MEMBER);
    let mut m = JoinGroupResponseMember::default();
    m.member_id = StrBytes::from_static_str(MEMBER);
    m.metadata = proto.metadata.clone();
    resp.members = vec![m];
    Some(Action::Respond(ResponseKind::JoinGroup(resp)))
}

/// The group's committed offsets, as the scripted coordinator keeps them.
type Commits = Arc<Mutex<BTreeMap<(String, i32), i64>>>;

/// A broker with topic `T` (2 partitions, 10 records each) that acts as the group
/// coordinator of a one-member group. Returns the broker and its generation counter.
fn coordinator_broker() -> (ScriptedBroker, Arc<AtomicI32>) {
    let (b, generation, _) = coordinator_broker_with_commits();
    (b, generation)
}

/// [`coordinator_broker`] that also keeps what OffsetCommit stores and answers
/// OffsetFetch from it (-1 when nothing was committed), so a second consumer run
/// resumes where the first committed.
fn coordinator_broker_with_commits() -> (ScriptedBroker, Arc<AtomicI32>, Commits) {
    let commits: Commits = Arc::new(Mutex::new(BTreeMap::new()));
    let b = ScriptedBroker::start();
    b.add_topic(T, 2);
    for p in 0..2 {
        b.append_batch(T, p, batch(0, 10));
    }
    let generation = Arc::new(AtomicI32::new(0));
    let g = Arc::clone(&generation);
    b.on(ApiKey::JoinGroup, move |_, _, req| join_answer(&g, req));
    b.on(ApiKey::SyncGroup, |_, _, req| {
        let RequestKind::SyncGroup(r) = req else {
            return None;
        };
        let mut resp = SyncGroupResponse::default();
        resp.protocol_type = r.protocol_type.clone();
        resp.protocol_name = r.protocol_name.clone();
        resp.assignment = r
            .assignments
            .iter()
            .find(|a| a.member_id.as_str() == MEMBER)
            .map(|a| a.assignment.clone())
            .unwrap_or_else(Bytes::new);
        Some(Action::Respond(ResponseKind::SyncGroup(resp)))
    });
    b.on(ApiKey::Heartbeat, |_, _, _| {
        Some(Action::Respond(ResponseKind::Heartbeat(
            HeartbeatResponse::default(),
        )))
    });
    let stored = Arc::clone(&commits);
    b.on(ApiKey::OffsetFetch, move |_, h, req| {
        let RequestKind::OffsetFetch(r) = req else {
            return None;
        };
        let stored = stored.lock().unwrap();
        let committed = |t: &str, p: i32| stored.get(&(t.to_owned(), p)).copied().unwrap_or(-1);
        let mut resp = OffsetFetchResponse::default();
        if h.request_api_version >= 8 {
            resp.groups = r
                .groups
                .iter()
                .map(|g| {
                    let mut og = OffsetFetchResponseGroup::default();
                    og.group_id = g.group_id.clone();
                    og.topics = g
                        .topics
                        .iter()
                        .flatten()
                        .map(|t| {
                            let mut ot = OffsetFetchResponseTopics::default();
                            ot.name = t.name.clone();
                            ot.partitions = t
                                .partition_indexes
                                .iter()
                                .map(|&p| {
                                    let mut op = OffsetFetchResponsePartitions::default();
                                    op.partition_index = p;
                                    op.committed_offset = committed(t.name.as_str(), p);
                                    op.committed_leader_epoch = -1;
                                    op
                                })
                                .collect();
                            ot
                        })
                        .collect();
                    og
                })
                .collect();
        } else {
            resp.topics = r
                .topics
                .iter()
                .flatten()
                .map(|t| {
                    let mut ot = OffsetFetchResponseTopic::default();
                    ot.name = t.name.clone();
                    ot.partitions = t
                        .partition_indexes
                        .iter()
                        .map(|&p| {
                            let mut op = OffsetFetchResponsePartition::default();
                            op.partition_index = p;
                            op.committed_offset = committed(t.name.as_str(), p);
                            op.committed_leader_epoch = -1;
                            op
                        })
                        .collect();
                    ot
                })
                .collect();
        }
        Some(Action::Respond(ResponseKind::OffsetFetch(resp)))
    });
    let stored = Arc::clone(&commits);
    b.on(ApiKey::OffsetCommit, move |_, _, req| {
        let RequestKind::OffsetCommit(r) = req else {
            return None;
        };
        let mut stored = stored.lock().unwrap();
        for t in &r.topics {
            for p in &t.partitions {
                stored.insert(
                    (t.name.as_str().to_owned(), p.partition_index),
                    p.committed_offset,
                );
            }
        }
        let mut resp = OffsetCommitResponse::default();
        resp.topics = r
            .topics
            .iter()
            .map(|t| {
                let mut ot = OffsetCommitResponseTopic::default();
                ot.name = t.name.clone();
                ot.partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let mut op = OffsetCommitResponsePartition::default();
                        op.partition_index = p.partition_index;
                        op
                    })
                    .collect();
                ot
            })
            .collect();
        Some(Action::Respond(ResponseKind::OffsetCommit(resp)))
    });
    b.on(ApiKey::LeaveGroup, |_, h, req| {
        let RequestKind::LeaveGroup(r) = req else {
            return None;
        };
        let mut resp = LeaveGroupResponse::default();
        if h.request_api_version >= 3 {
            resp.members = r
                .members
                .iter()
                .map(|m| {
                    let mut mr = MemberResponse::default();
                    mr.member_id = m.member_id.clone();
                    mr
                })
                .collect();
        }
        Some(Action::Respond(ResponseKind::LeaveGroup(resp)))
    });
    (b, generation, commits)
}

fn member(bootstrap: &str) -> GroupConsumer {
    member_with(bootstrap, 300_000)
}

fn member_with(bootstrap: &str, metadata_max_age_ms: u64) -> GroupConsumer {
    let fetch = FetchConfig {
        metadata_max_age_ms,
        fetch_max_bytes: 1 << 20,
        ring_bytes: 4 << 20,
        fetch_max_wait_ms: 50,
        request_timeout_ms: 2000,
        reconnect_backoff_ms: 20,
        reconnect_backoff_max_ms: 200,
        ..FetchConfig::new(bootstrap)
    };
    let mut g = GroupConfig::new("scripted-group");
    g.session_timeout = Duration::from_millis(3000);
    g.heartbeat_interval = Duration::from_millis(100);
    g.rebalance_timeout = Some(Duration::from_secs(5));
    g.request_timeout = Duration::from_secs(2);
    g.auto_offset_reset = AutoOffsetReset::Earliest;
    g.enable_auto_commit = false;
    g.assignment_strategies = vec![AssignmentStrategy::Range];
    let mut m = GroupConsumer::new(fetch, g).unwrap();
    m.subscribe([T]);
    m
}

/// Polls until `done`; panics after `limit`.
fn pump(
    m: &mut GroupConsumer,
    seen: &mut Vec<(i32, i64)>,
    limit: Duration,
    mut done: impl FnMut(&GroupConsumer, &[(i32, i64)]) -> bool,
) {
    let end = Instant::now() + limit;
    while !done(m, seen) {
        assert!(
            Instant::now() < end,
            "timed out: phase {:?}, assignment {:?}, {} records",
            m.phase(),
            m.assignment(),
            seen.len()
        );
        m.poll(Duration::from_millis(20), |r| {
            seen.push((r.partition, r.offset()))
        })
        .unwrap();
    }
}

fn stable_with_all(m: &GroupConsumer) -> bool {
    m.phase() == Phase::Stable && m.assignment().len() == 2
}

/// NOT_COORDINATOR on a heartbeat: the member looks the coordinator up again and goes
/// on heartbeating, keeping its partitions and its records flowing.
#[test]
fn not_coordinator_on_heartbeat_rediscovers() {
    let (b, generation) = coordinator_broker();
    let mut m = member(&b.bootstrap());
    let mut seen = Vec::new();
    pump(&mut m, &mut seen, Duration::from_secs(20), |m, s| {
        stable_with_all(m) && s.len() == 20
    });
    let finds = b.requests_of(ApiKey::FindCoordinator).len();
    let gen_before = generation.load(Ordering::SeqCst);
    let mut hb = HeartbeatResponse::default();
    hb.error_code = NOT_COORDINATOR;
    b.push(
        ApiKey::Heartbeat,
        Action::Respond(ResponseKind::Heartbeat(hb)),
    );
    let hb_before = b.requests_of(ApiKey::Heartbeat).len();
    // The fault is answered to the next heartbeat; then a FindCoordinator, then more
    // heartbeats answered normally.
    pump(&mut m, &mut seen, Duration::from_secs(10), |_, _| {
        b.requests_of(ApiKey::FindCoordinator).len() > finds
            && b.requests_of(ApiKey::Heartbeat).len() > hb_before + 3
    });
    assert!(stable_with_all(&m), "phase {:?}", m.phase());
    assert_eq!(
        generation.load(Ordering::SeqCst),
        gen_before,
        "a coordinator move alone does not rejoin"
    );
    // Records keep flowing after the rediscovery.
    for p in 0..2 {
        b.append_batch(T, p, batch(10, 5));
    }
    pump(&mut m, &mut seen, Duration::from_secs(10), |_, s| {
        s.len() == 30
    });
    m.close(Duration::from_secs(5)).unwrap();
    assert!(!b.requests_of(ApiKey::LeaveGroup).is_empty());
}

/// The coordinator drops the connection during a heartbeat: the member reconnects
/// (rediscovering the coordinator) and keeps its membership.
#[test]
fn dropped_coordinator_connection_during_heartbeat_reconnects() {
    let (b, _) = coordinator_broker();
    let mut m = member(&b.bootstrap());
    let mut seen = Vec::new();
    pump(&mut m, &mut seen, Duration::from_secs(20), |m, s| {
        stable_with_all(m) && s.len() == 20
    });
    pump(&mut m, &mut seen, Duration::from_secs(5), |_, _| {
        !b.requests_of(ApiKey::Heartbeat).is_empty()
    });
    let last_hb = b.requests_of(ApiKey::Heartbeat).last().unwrap().connection;
    b.push(ApiKey::Heartbeat, Action::CloseConnection);
    pump(&mut m, &mut seen, Duration::from_secs(10), |m, _| {
        stable_with_all(m)
            && b.requests_of(ApiKey::Heartbeat)
                .iter()
                .filter(|r| r.connection != last_hb)
                .count()
                >= 3
    });
    for p in 0..2 {
        b.append_batch(T, p, batch(10, 5));
    }
    pump(&mut m, &mut seen, Duration::from_secs(10), |_, s| {
        s.len() == 30
    });
    m.close(Duration::from_secs(5)).unwrap();
}

/// The coordinator drops the connection while a JoinGroup is in flight: the member
/// reconnects and joins again, then consumes.
#[test]
fn dropped_coordinator_connection_during_join_rejoins() {
    let (b, generation) = coordinator_broker();
    b.push(ApiKey::JoinGroup, Action::CloseConnection);
    let mut m = member(&b.bootstrap());
    let mut seen = Vec::new();
    pump(&mut m, &mut seen, Duration::from_secs(20), |m, s| {
        stable_with_all(m) && s.len() == 20
    });
    let joins = b.requests_of(ApiKey::JoinGroup);
    assert!(joins.len() >= 2, "joined again: {} JoinGroups", joins.len());
    assert_ne!(
        joins[0].connection,
        joins[joins.len() - 1].connection,
        "the second join went over a new connection"
    );
    assert_eq!(generation.load(Ordering::SeqCst), 1, "one completed join");
    m.close(Duration::from_secs(5)).unwrap();
}

/// close() returns within its timeout when the coordinator stops answering (the
/// final commit and the LeaveGroup are never answered).
#[test]
fn close_is_bounded_when_the_coordinator_is_silent() {
    let (b, _) = coordinator_broker();
    let mut m = member(&b.bootstrap());
    let mut seen = Vec::new();
    pump(&mut m, &mut seen, Duration::from_secs(20), |m, s| {
        stable_with_all(m) && s.len() == 20
    });
    for key in [ApiKey::OffsetCommit, ApiKey::LeaveGroup, ApiKey::Heartbeat] {
        b.on(key, |_, _, _| Some(Action::NoResponse));
    }
    let t = Instant::now();
    let _ = m.close(Duration::from_secs(2));
    let took = t.elapsed();
    assert!(took < Duration::from_millis(2600), "close took {took:?}");
    // It tried: the final commit of the handled records went out.
    assert!(!b.requests_of(ApiKey::OffsetCommit).is_empty());
    assert!(m.poll(Duration::ZERO, |_| {}).is_err(), "closed");
}

/// The leader re-reads partition counts every metadata.max.age.ms: a topic that grows
/// is rebalanced onto its new partition, which is then consumed.
#[test]
fn leader_picks_up_a_new_partition() {
    let (b, generation) = coordinator_broker();
    let mut m = member_with(&b.bootstrap(), 300);
    let mut seen = Vec::new();
    pump(&mut m, &mut seen, Duration::from_secs(20), |m, s| {
        stable_with_all(m) && s.len() == 20
    });
    assert_eq!(generation.load(Ordering::SeqCst), 1);
    b.with_cluster(|c| {
        let t = c.topics.get_mut(T).unwrap();
        let mut p = t.partitions[0].clone();
        p.batches.clear();
        t.partitions.push(p);
    });
    b.append_batch(T, 2, batch(0, 7));
    pump(&mut m, &mut seen, Duration::from_secs(10), |m, s| {
        m.phase() == Phase::Stable
            && m.assignment().len() == 3
            && s.iter().filter(|(p, _)| *p == 2).count() == 7
    });
    assert_eq!(generation.load(Ordering::SeqCst), 2, "one rebalance");
    m.close(Duration::from_secs(5)).unwrap();
}

// ------------------------------------------------------- the weir binary, scripted

const WEIR: &str = env!("CARGO_BIN_EXE_weir");

/// Runs `weir` with `args`; kills it and fails the test after `limit`.
fn run_weir(args: &[&str], limit: Duration) -> std::process::Output {
    let mut child = std::process::Command::new(WEIR)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "weir {args:?} did not exit within {limit:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn assert_ok(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {:?}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The offsets in partition `p` of the sink at `dir` (lines `"<partition> <offset>"`),
/// durable ones only; empty when the sink never saw the partition.
fn sink_offsets(dir: &std::path::Path, p: i32) -> Vec<i64> {
    if !dir.join(T).join(p.to_string()).exists() {
        return Vec::new();
    }
    let bytes = weir::sink::Sink::read_durable(dir, T, p).unwrap();
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| {
            let (part, off) = l.split_once(' ').unwrap();
            assert_eq!(part, p.to_string(), "line {l:?} in partition {p}");
            off.parse().unwrap()
        })
        .collect()
}

/// `-c N --sink DIR` (manual assignment), then a second run with the same sink: the
/// second run writes exactly the records after the first N, so the sink holds every
/// record once. The count stopped the first run partway through a fetched batch; the
/// sink must not checkpoint the position past the records it skipped.
#[test]
fn count_with_sink_then_resume_writes_every_record_once() {
    let b = ScriptedBroker::start();
    b.add_topic(T, 1);
    b.append_batch(T, 0, batch(0, 10));
    let dir = support::scratch_dir("count-sink-manual");
    let sink = dir.to_str().unwrap();
    let bootstrap = b.bootstrap();
    let common = [
        "consume",
        "-b",
        &bootstrap,
        "-t",
        T,
        "-p",
        "0",
        "-o",
        "beginning",
        "-q",
        "-f",
        "%p %o\\n",
        "--sink",
        sink,
        "-X",
        "fetch.max.wait.ms=50",
    ];
    let mut first = common.to_vec();
    first.extend(["-c", "3"]);
    assert_ok(&run_weir(&first, Duration::from_secs(30)), "-c 3 --sink");
    assert_eq!(
        sink_offsets(&dir, 0),
        vec![0, 1, 2],
        "the first run wrote 3"
    );
    let mut second = common.to_vec();
    second.push("-e");
    assert_ok(&run_weir(&second, Duration::from_secs(30)), "-e --sink");
    assert_eq!(
        sink_offsets(&dir, 0),
        (0..10).collect::<Vec<_>>(),
        "the second run wrote exactly the records after the first 3"
    );
}

/// The same in group mode: after `-G ... -c 3 --sink DIR` the committed offset of the
/// partition the records came from is the one after the third record (not the end of
/// the fetched batch), and a second `-e` run writes every remaining record once.
#[test]
fn group_count_with_sink_commits_and_resumes_after_the_count() {
    let (b, _, commits) = coordinator_broker_with_commits();
    let dir = support::scratch_dir("count-sink-group");
    let sink = dir.to_str().unwrap();
    let bootstrap = b.bootstrap();
    let common = [
        "consume",
        "-b",
        &bootstrap,
        "-G",
        "scripted-group",
        T,
        "-o",
        "beginning",
        "-q",
        "-f",
        "%p %o\\n",
        "--sink",
        sink,
        "-X",
        "fetch.max.wait.ms=50",
        "-X",
        "heartbeat.interval.ms=100",
        "-X",
        "partition.assignment.strategy=range",
    ];
    let mut first = common.to_vec();
    first.extend(["-c", "3"]);
    assert_ok(&run_weir(&first, Duration::from_secs(30)), "-G -c 3 --sink");
    let written: Vec<(i32, Vec<i64>)> = (0..2).map(|p| (p, sink_offsets(&dir, p))).collect();
    assert_eq!(
        written.iter().map(|(_, o)| o.len()).sum::<usize>(),
        3,
        "the first run wrote 3: {written:?}"
    );
    let committed = commits.lock().unwrap().clone();
    for (p, offsets) in &written {
        // A partition nothing was written from has nothing committed (or its start).
        let want = offsets.last().map_or(0, |o| o + 1);
        let got = committed.get(&(T.to_owned(), *p)).copied().unwrap_or(0);
        assert_eq!(
            got, want,
            "committed offset of partition {p}: {committed:?}"
        );
    }
    let mut second = common.to_vec();
    second.push("-e");
    assert_ok(&run_weir(&second, Duration::from_secs(30)), "-G -e --sink");
    for p in 0..2 {
        assert_eq!(
            sink_offsets(&dir, p),
            (0..10).collect::<Vec<_>>(),
            "partition {p} holds every record once"
        );
    }
    let committed = commits.lock().unwrap().clone();
    for p in 0..2 {
        assert_eq!(
            committed.get(&(T.to_owned(), p)),
            Some(&10),
            "{committed:?}"
        );
    }
}

// ------------------------------------------------------- fetch-layer errors

/// TOPIC_AUTHORIZATION_FAILED.
const TOPIC_AUTHORIZATION_FAILED: i16 = 29;

/// Polls until `poll` fails; panics after `limit`.
fn first_error(m: &mut GroupConsumer, limit: Duration) -> GroupConsumerError {
    let end = Instant::now() + limit;
    loop {
        assert!(
            Instant::now() < end,
            "no error from poll within {limit:?}: phase {:?}, assignment {:?}",
            m.phase(),
            m.assignment()
        );
        if let Err(e) = m.poll(Duration::from_millis(20), |_| {}) {
            return e;
        }
    }
}

/// A fetch-layer error while no partition has records to deliver (every partition
/// refused with an authorization failure) comes out of poll, promptly; polling on
/// after it does not spin (the reactor does not turn without waiting).
#[test]
fn fetch_errors_surface_from_poll_when_nothing_is_deliverable() {
    let (b, _) = coordinator_broker();
    for p in 0..2 {
        b.set_partition_error(T, p, TOPIC_AUTHORIZATION_FAILED);
    }
    let mut m = member(&b.bootstrap());
    let e = first_error(&mut m, Duration::from_secs(10));
    match &e {
        GroupConsumerError::Fetch(FetchError::Broker {
            code, partition, ..
        }) => {
            assert_eq!(code.0, TOPIC_AUTHORIZATION_FAILED, "{e}");
            assert!(partition.is_some(), "{e}");
        }
        other => panic!("expected the authorization failure, got {other}"),
    }
    // The application goes on polling (it may treat the error as retriable): the
    // error comes back after the reactor's retries, and nothing spins meanwhile.
    let turns = m.fetch_consumer().metrics().reactor_turns;
    let (start, mut errors) = (Instant::now(), 0);
    while start.elapsed() < Duration::from_millis(600) {
        if m.poll(Duration::from_millis(100), |_| {}).is_err() {
            errors += 1;
        }
    }
    let turns = m.fetch_consumer().metrics().reactor_turns - turns;
    assert!(turns < 300, "{turns} reactor turns in 600 ms: a busy loop");
    assert!(errors >= 1, "the refused partitions are reported again");
    assert!(
        errors < 100,
        "{errors} errors in 600 ms: reported without backoff"
    );
    let _ = m.close(Duration::from_secs(2));
}

/// A committed offset past the log with auto.offset.reset=none: the fetch layer's
/// OFFSET_OUT_OF_RANGE (the partition is paused) comes out of poll.
#[test]
fn offset_out_of_range_with_reset_none_surfaces_from_poll() {
    let (b, _, commits) = coordinator_broker_with_commits();
    for p in 0..2 {
        commits.lock().unwrap().insert((T.to_owned(), p), 50);
    }
    let fetch = FetchConfig {
        fetch_max_wait_ms: 50,
        request_timeout_ms: 2000,
        reconnect_backoff_ms: 20,
        reconnect_backoff_max_ms: 200,
        auto_offset_reset: weir_consumer::fetch::OffsetReset::None,
        ..FetchConfig::new(&b.bootstrap())
    };
    let mut g = GroupConfig::new("scripted-group");
    g.session_timeout = Duration::from_millis(3000);
    g.heartbeat_interval = Duration::from_millis(100);
    g.auto_offset_reset = AutoOffsetReset::None;
    g.enable_auto_commit = false;
    g.assignment_strategies = vec![AssignmentStrategy::Range];
    let mut m = GroupConsumer::new(fetch, g).unwrap();
    m.subscribe([T]);
    let e = first_error(&mut m, Duration::from_secs(10));
    assert!(
        matches!(
            &e,
            GroupConsumerError::Fetch(FetchError::OffsetOutOfRange { offset: 50, .. })
        ),
        "expected OFFSET_OUT_OF_RANGE at 50, got {e}"
    );
    let _ = m.close(Duration::from_secs(2));
}

/// `weir consume -G` on partitions the broker refuses (authorization) exits 1 with
/// the broker's error, instead of spinning silently.
#[test]
fn group_cli_exits_1_on_a_fatal_fetch_error() {
    let (b, _) = coordinator_broker();
    for p in 0..2 {
        b.set_partition_error(T, p, TOPIC_AUTHORIZATION_FAILED);
    }
    let bootstrap = b.bootstrap();
    let out = run_weir(
        &[
            "consume",
            "-b",
            &bootstrap,
            "-G",
            "scripted-group",
            T,
            "-o",
            "beginning",
            "-q",
            "-e",
            "-X",
            "heartbeat.interval.ms=100",
        ],
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("TopicAuthorizationFailed"),
        "the message names the broker's error: {stderr}"
    );
}

/// One undecodable Fetch answer: the fetch layer resets the connection and retries;
/// `weir consume -G` logs it as a warning and reads everything (exit 0).
#[test]
fn group_cli_warns_on_an_undecodable_fetch_answer_and_goes_on() {
    let (b, _) = coordinator_broker();
    b.push(
        ApiKey::Fetch,
        Action::RespondBody(Bytes::from_static(b"\xff\xff\xff")),
    );
    let bootstrap = b.bootstrap();
    let out = run_weir(
        &[
            "consume",
            "-b",
            &bootstrap,
            "-G",
            "scripted-group",
            T,
            "-o",
            "beginning",
            "-e",
            "-f",
            "%p %o\\n",
            "-X",
            "heartbeat.interval.ms=100",
        ],
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}; stderr: {stderr}", out.status);
    assert!(stderr.contains("warning"), "the error is logged: {stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        20,
        "every record once"
    );
}

// ------------------------------------------------------- JoinGroup timeout

/// The coordinator holds JoinGroup longer than request.timeout.ms (as it may, for up
/// to the rebalance timeout, while it waits for the other members): the member keeps
/// waiting on the same connection and joins with that one request.
#[test]
fn join_group_may_take_longer_than_the_request_timeout() {
    let (b, generation) = coordinator_broker();
    let g = Arc::clone(&generation);
    b.on(ApiKey::JoinGroup, move |_, _, req| {
        join_answer(&g, req).map(|a| Action::delay(Duration::from_millis(2500), a))
    });
    let fetch = FetchConfig {
        fetch_max_wait_ms: 50,
        request_timeout_ms: 1000,
        reconnect_backoff_ms: 20,
        reconnect_backoff_max_ms: 200,
        ..FetchConfig::new(&b.bootstrap())
    };
    let mut cfg = GroupConfig::new("scripted-group");
    cfg.session_timeout = Duration::from_millis(6000);
    cfg.heartbeat_interval = Duration::from_millis(100);
    // The rebalance timeout (max.poll.interval.ms) is well above the delay.
    cfg.max_poll_interval = Duration::from_secs(10);
    cfg.request_timeout = Duration::from_millis(1000);
    cfg.auto_offset_reset = AutoOffsetReset::Earliest;
    cfg.enable_auto_commit = false;
    cfg.assignment_strategies = vec![AssignmentStrategy::Range];
    let mut m = GroupConsumer::new(fetch, cfg).unwrap();
    m.subscribe([T]);
    let mut seen = Vec::new();
    pump(&mut m, &mut seen, Duration::from_secs(15), |m, s| {
        stable_with_all(m) && s.len() == 20
    });
    let joins = b.requests_of(ApiKey::JoinGroup);
    assert_eq!(joins.len(), 1, "one JoinGroup, not cut off and sent again");
    assert_eq!(generation.load(Ordering::SeqCst), 1);
    let coordinator_connection = joins[0].connection;
    assert!(
        b.requests_of(ApiKey::Heartbeat)
            .iter()
            .all(|r| r.connection == coordinator_connection),
        "no reconnect to the coordinator"
    );
    m.close(Duration::from_secs(5)).unwrap();
}

/// max.poll.records bounds what one GroupConsumer::poll hands out (both partitions'
/// 10-record batches arrive together); every record still comes once, and the final
/// commit is the end of each partition.
#[test]
fn group_poll_hands_out_at_most_max_poll_records() {
    let (b, _, commits) = coordinator_broker_with_commits();
    let fetch = FetchConfig {
        fetch_max_wait_ms: 50,
        request_timeout_ms: 2000,
        max_poll_records: 4,
        ..FetchConfig::new(&b.bootstrap())
    };
    let mut g = GroupConfig::new("scripted-group");
    g.session_timeout = Duration::from_millis(3000);
    g.heartbeat_interval = Duration::from_millis(100);
    g.auto_offset_reset = AutoOffsetReset::Earliest;
    g.enable_auto_commit = false;
    g.assignment_strategies = vec![AssignmentStrategy::Range];
    let mut m = GroupConsumer::new(fetch, g).unwrap();
    m.subscribe([T]);
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(20);
    while seen.len() < 20 {
        assert!(Instant::now() < end, "timed out with {seen:?}");
        let mut this_poll = Vec::new();
        let n = m
            .poll(Duration::from_millis(50), |r| {
                this_poll.push((r.partition, r.offset()))
            })
            .unwrap();
        assert!(n <= 4, "one poll handed out {n}: {this_poll:?}");
        seen.extend(this_poll);
    }
    for p in 0..2 {
        let offs: Vec<i64> = seen.iter().filter(|(q, _)| *q == p).map(|r| r.1).collect();
        assert_eq!(offs, (0..10).collect::<Vec<_>>(), "partition {p}");
    }
    m.commit_sync(Duration::from_secs(5)).unwrap();
    let committed = commits.lock().unwrap().clone();
    for p in 0..2 {
        assert_eq!(
            committed.get(&(T.to_owned(), p)),
            Some(&10),
            "{committed:?}"
        );
    }
    m.close(Duration::from_secs(5)).unwrap();
}

/// LEADER_NOT_AVAILABLE.
const LEADER_NOT_AVAILABLE: i16 = 5;

/// The leader's Metadata request for the subscription keeps getting a retriable
/// error (a topic being created): it is asked again with a growing backoff
/// (retry.backoff.ms up to retry.backoff.max.ms), not in a tight request loop.
#[test]
fn subscription_metadata_retries_back_off() {
    let (b, _) = coordinator_broker();
    b.on(ApiKey::Metadata, |ctx, h, req| {
        let mut a = ctx.default_action(h, req)?;
        if let Action::Respond(ResponseKind::Metadata(m)) = &mut a {
            for t in &mut m.topics {
                if t.name.as_deref().map(|n| n.as_str()) == Some(T) {
                    t.error_code = LEADER_NOT_AVAILABLE;
                    t.partitions.clear();
                }
            }
        }
        Some(a)
    });
    let mut m = member(&b.bootstrap());
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        let _ = m.poll(Duration::from_millis(50), |_| {});
    }
    let asked = b
        .requests_of(ApiKey::Metadata)
        .iter()
        .filter(|r| matches!(&r.request, RequestKind::Metadata(q) if q.topics.as_ref().is_some_and(|ts| ts.iter().any(|t| t.name.as_deref().map(|n| n.as_str()) == Some(T)))))
        .count();
    assert!(asked >= 2, "asked again: {asked}");
    assert!(
        asked <= 12,
        "{asked} Metadata requests in 1.5 s: no backoff"
    );
    let _ = m.close(Duration::from_secs(2));
}

/// An OffsetCommit answer with `code` for every partition of the request.
fn commit_answer_with(code: i16, partitions: &[i32]) -> Action {
    let mut ot = OffsetCommitResponseTopic::default();
    ot.name = kafka_protocol::messages::TopicName(StrBytes::from_static_str(T));
    ot.partitions = partitions
        .iter()
        .map(|&p| {
            let mut op = OffsetCommitResponsePartition::default();
            op.partition_index = p;
            op.error_code = code;
            op
        })
        .collect();
    let mut resp = OffsetCommitResponse::default();
    resp.topics = vec![ot];
    Action::Respond(ResponseKind::OffsetCommit(resp))
}

/// A rebalance with manual commits: the commit of what was processed, sent when the
/// partitions are revoked, is answered NOT_COORDINATOR once. It is retried (after the
/// coordinator is looked up again) before the partitions are handed over, so the next
/// generation resumes after the processed records instead of re-reading them. (It was
/// sent once, async, and its failure dropped: the member re-read all 20 records.)
#[test]
fn a_revoke_commit_answered_not_coordinator_is_retried_before_the_handover() {
    let (b, generation, commits) = coordinator_broker_with_commits();
    let mut m = member(&b.bootstrap());
    let mut seen = Vec::new();
    pump(&mut m, &mut seen, Duration::from_secs(10), |m, s| {
        stable_with_all(m) && s.len() == 20
    });
    assert_eq!(generation.load(Ordering::SeqCst), 1);
    let mut hb = HeartbeatResponse::default();
    hb.error_code = 27; // REBALANCE_IN_PROGRESS
    b.push(
        ApiKey::Heartbeat,
        Action::Respond(ResponseKind::Heartbeat(hb)),
    );
    b.push(
        ApiKey::OffsetCommit,
        commit_answer_with(NOT_COORDINATOR, &[0, 1]),
    );
    pump(&mut m, &mut seen, Duration::from_secs(10), |m, _| {
        generation.load(Ordering::SeqCst) >= 2 && stable_with_all(m)
    });
    // Let the new generation fetch for a while: nothing may be delivered again.
    let settle = Instant::now() + Duration::from_millis(500);
    while Instant::now() < settle {
        m.poll(Duration::from_millis(20), |r| {
            seen.push((r.partition, r.offset()))
        })
        .unwrap();
    }
    let stored = commits.lock().unwrap().clone();
    assert_eq!(
        stored.get(&(T.to_owned(), 0)).copied(),
        Some(10),
        "commits {stored:?}"
    );
    assert_eq!(
        stored.get(&(T.to_owned(), 1)).copied(),
        Some(10),
        "commits {stored:?}"
    );
    assert_eq!(seen.len(), 20, "records delivered again: {seen:?}");
    let commit_requests = b
        .requests()
        .iter()
        .filter(|r| r.api_key() == ApiKey::OffsetCommit as i16)
        .count();
    assert!(
        commit_requests >= 2,
        "{commit_requests} OffsetCommit requests"
    );
}
