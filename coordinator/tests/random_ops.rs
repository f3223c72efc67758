//! Random operation sequences against the state machine: random responses (with
//! random error codes), timeouts, disconnects and application calls. Checks that
//! nothing panics, that the timer table never asks to be woken for work it cannot
//! do (no busy loop), and that no JoinGroup goes out while a revocation is
//! unacknowledged. A third of the seeds run `group.protocol=consumer` (KIP-848), where
//! nothing may be assigned while a revocation is unacknowledged either.

use std::time::{Duration, Instant};
use weir_coordinator::*;
use weir_protocol::ErrorCode;
use weir_protocol::messages::group::*;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len() as u64) as usize]
    }
}

fn leak<T>(v: Vec<T>) -> &'static [T] {
    Box::leak(v.into_boxed_slice())
}

const CODES: &[ErrorCode] = &[
    ErrorCode::NONE,
    ErrorCode::NONE,
    ErrorCode::NONE,
    ErrorCode::NONE,
    ErrorCode::NOT_COORDINATOR,
    ErrorCode::COORDINATOR_NOT_AVAILABLE,
    ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
    ErrorCode::REBALANCE_IN_PROGRESS,
    ErrorCode::UNKNOWN_MEMBER_ID,
    ErrorCode::ILLEGAL_GENERATION,
    ErrorCode::MEMBER_ID_REQUIRED,
    ErrorCode::UNSTABLE_OFFSET_COMMIT,
    ErrorCode::UNKNOWN_SERVER_ERROR,
    ErrorCode::REQUEST_TIMED_OUT,
    ErrorCode::FENCED_MEMBER_EPOCH,
    ErrorCode::STALE_MEMBER_EPOCH,
    ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
];

const IDS: [[u8; 16]; 2] = [[1; 16], [2; 16]];

fn response(rng: &mut Rng, o: &Outgoing, me: &'static str) -> Response<'static> {
    let code = rng.pick(CODES);
    match &o.request {
        Request::FindCoordinator(_) => Response::FindCoordinator(FindCoordinatorResponse {
            throttle_time_ms: 0,
            coordinators: vec![Coordinator {
                key: "g",
                node_id: rng.below(3) as i32,
                host: "h",
                port: 1,
                error_code: code,
                error_message: None,
            }],
        }),
        Request::JoinGroup(_) => {
            let leader = rng.below(2) == 0;
            let sub = Subscription {
                topics: vec!["a".into(), "b".into()],
                ..Default::default()
            }
            .encode(3);
            let members = if leader {
                vec![
                    JoinGroupMember {
                        member_id: me,
                        group_instance_id: None,
                        metadata: leak(sub.clone()),
                    },
                    JoinGroupMember {
                        member_id: "other",
                        group_instance_id: None,
                        metadata: leak(sub),
                    },
                ]
            } else {
                vec![]
            };
            Response::JoinGroup(JoinGroupResponse {
                throttle_time_ms: 0,
                error_code: code,
                generation_id: rng.below(10) as i32,
                protocol_type: Some("consumer"),
                protocol_name: Some(if rng.below(2) == 0 {
                    "range"
                } else {
                    "cooperative-sticky"
                }),
                leader: if leader { me } else { "other" },
                skip_assignment: false,
                member_id: me,
                members,
            })
        }
        Request::SyncGroup(_) => {
            let parts: Vec<TopicPartition> = (0..rng.below(5))
                .map(|_| {
                    TopicPartition::new(
                        if rng.below(2) == 0 { "a" } else { "b" },
                        rng.below(4) as i32,
                    )
                })
                .collect();
            let mut bytes = Assignment {
                partitions: parts,
                user_data: None,
            }
            .encode(3);
            if rng.below(20) == 0 {
                bytes.truncate(bytes.len() / 2); // a malformed assignment
            }
            Response::SyncGroup(SyncGroupResponse {
                throttle_time_ms: 0,
                error_code: code,
                protocol_type: None,
                protocol_name: None,
                assignment: leak(bytes),
            })
        }
        Request::Heartbeat(_) => Response::Heartbeat(HeartbeatResponse {
            throttle_time_ms: 0,
            error_code: code,
        }),
        Request::LeaveGroup(_) => Response::LeaveGroup(LeaveGroupResponse {
            throttle_time_ms: 0,
            error_code: code,
            members: vec![],
        }),
        Request::OffsetCommit(r) => Response::OffsetCommit(OffsetCommitResponse {
            throttle_time_ms: 0,
            topics: r
                .topics
                .iter()
                .map(|t| OffsetCommitTopicResponse {
                    name: Box::leak(t.name.0.to_string().into_boxed_str()),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| OffsetCommitPartitionResponse {
                            partition_index: p.partition_index,
                            error_code: code,
                        })
                        .collect(),
                })
                .collect(),
        }),
        Request::ConsumerGroupHeartbeat(_) => {
            let assignment = if rng.below(2) == 0 {
                let mut topics = Vec::new();
                for id in IDS {
                    if rng.below(3) != 0 {
                        let n = rng.below(4);
                        topics.push(HeartbeatTopicPartitions {
                            topic_id: id,
                            partitions: (0..n).map(|_| rng.below(4) as i32).collect(),
                        });
                    }
                }
                Some(topics)
            } else {
                None
            };
            Response::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse {
                throttle_time_ms: 0,
                error_code: code,
                error_message: None,
                member_id: None,
                member_epoch: 1 + rng.below(5) as i32,
                heartbeat_interval_ms: rng.below(5000) as i32,
                assignment,
            })
        }
        Request::OffsetFetch(r) => {
            let topics = r
                .groups
                .first()
                .and_then(|g| g.topics.clone())
                .unwrap_or_default()
                .iter()
                .map(|t| OffsetFetchTopic {
                    name: Box::leak(t.name.0.to_string().into_boxed_str()),
                    partitions: t
                        .partition_indexes
                        .iter()
                        .map(|&p| OffsetFetchPartition {
                            partition_index: p,
                            committed_offset: rng.below(3) as i64 - 1,
                            committed_leader_epoch: -1,
                            metadata: None,
                            error_code: rng.pick(CODES),
                        })
                        .collect(),
                })
                .collect();
            Response::OffsetFetch(OffsetFetchResponse {
                throttle_time_ms: 0,
                groups: vec![OffsetFetchGroup {
                    group_id: "g",
                    topics,
                    error_code: code,
                }],
            })
        }
    }
}

#[derive(Default)]
struct Track {
    consumer_protocol: bool,
    unacked_revoke: bool,
    ids_needed: bool,
    closed: bool,
    completed: std::collections::BTreeSet<CommitId>,
}

impl Track {
    fn see(&mut self, seed: u64, ev: Event) {
        match ev {
            Event::PartitionsRevoked(_) => self.unacked_revoke = true,
            Event::PartitionsAssigned(_) if self.consumer_protocol => assert!(
                !self.unacked_revoke,
                "seed {seed}: assigned before the revocation was acknowledged"
            ),
            Event::TopicIdsNeeded(_) => self.ids_needed = true,
            Event::PartitionsLost(_) | Event::Fatal(_) => self.unacked_revoke = false,
            Event::Closed => {
                self.unacked_revoke = false;
                self.closed = true;
            }
            Event::CommitCompleted { id, .. } => {
                assert!(
                    self.completed.insert(id),
                    "seed {seed}: {id:?} completed twice"
                );
            }
            _ => {}
        }
    }
}

#[test]
fn random_operation_sequences() {
    let only: Option<u64> = std::env::var("SEED").ok().and_then(|s| s.parse().ok());
    for seed in 1..=300u64 {
        if only.is_some_and(|o| o != seed) {
            continue;
        }
        let trace = only.is_some();
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut c = GroupConfig::new("g");
        c.session_timeout = Duration::from_secs(10);
        c.max_poll_interval = Duration::from_secs(30);
        c.rng_seed = seed;
        c.assignment_strategies = if seed % 2 == 0 {
            vec![AssignmentStrategy::CooperativeSticky]
        } else {
            vec![
                AssignmentStrategy::Range,
                AssignmentStrategy::CooperativeSticky,
            ]
        };
        if seed % 5 == 0 {
            c.group_instance_id = Some("static".into());
        }
        let consumer_protocol = seed % 3 == 0;
        if consumer_protocol {
            c.group_protocol = GroupProtocol::Consumer;
        }
        let mut now = Instant::now();
        let mut m = GroupMember::new(c, now).expect("config");
        m.subscribe(now, ["a".to_string(), "b".to_string()]);
        m.update_metadata(now, [("a".to_string(), 4), ("b".to_string(), 4)]);
        let mut pending: Vec<Outgoing> = Vec::new();
        let mut t = Track {
            consumer_protocol,
            ..Track::default()
        };
        let mut issued = std::collections::BTreeSet::new();
        for step in 0..400 {
            match rng.below(12) {
                0..=3 => {
                    if !pending.is_empty() {
                        let i = rng.below(pending.len() as u64) as usize;
                        let o = pending.swap_remove(i);
                        let me: &'static str = if rng.below(3) == 0 { "m-x" } else { "m-1" };
                        let r = response(&mut rng, &o, me);
                        if trace {
                            eprintln!("{step} <- {r:?} phase {:?}", m.phase());
                        }
                        m.handle_response(now, o.id, r);
                    }
                }
                4 | 5 => {
                    now += Duration::from_millis(rng.below(4_000));
                    m.handle_timeout(now);
                }
                6 => {
                    if let Some(o) = pending.pop() {
                        m.handle_request_failed(now, o.id);
                    }
                }
                7 => {
                    if rng.below(4) == 0 {
                        m.handle_disconnect(now);
                    }
                }
                8 => {
                    m.poll(now);
                    if t.ids_needed && rng.below(2) == 0 {
                        t.ids_needed = false;
                        m.update_topic_ids(
                            now,
                            [(IDS[0], "a".to_string()), (IDS[1], "b".to_string())],
                        );
                    }
                }
                9 => {
                    if t.unacked_revoke && rng.below(2) == 0 {
                        t.unacked_revoke = false;
                        m.ack_revoked(now);
                    }
                }
                10 => {
                    let tp = TopicPartition::new("a", rng.below(4) as i32);
                    m.record_processed(&tp, rng.below(1000) as i64, None);
                    if rng.below(3) == 0 {
                        let mode = CommitMode::Sync {
                            timeout: Duration::from_secs(3),
                        };
                        if let Some(id) = m.commit_processed(now, mode) {
                            issued.insert(id);
                        }
                    }
                }
                _ => {
                    if step > 350 && rng.below(10) == 0 {
                        m.close(now, Duration::from_secs(5));
                    } else if rng.below(10) == 0 {
                        let topics: &[&str] = match rng.below(3) {
                            0 => &["a"],
                            1 => &[],
                            _ => &["a", "b"],
                        };
                        m.subscribe(now, topics.iter().map(|t| t.to_string()));
                    }
                }
            }
            // Events of this step first, as a driver drains both each turn.
            while let Some(ev) = m.poll_event() {
                if trace {
                    eprintln!("{step} event {ev:?}");
                }
                t.see(seed, ev);
            }
            while let Some(o) = m.poll_transmit(now) {
                if let Target::Coordinator(_) = o.target {
                    assert!(
                        m.coordinator().is_some(),
                        "seed {seed}: coordinator request without a coordinator"
                    );
                }
                assert!(
                    !(t.unacked_revoke && o.request.api_key() == 11),
                    "seed {seed} step {step}: JoinGroup before the revoke was acked"
                );
                if trace {
                    eprintln!(
                        "{step} -> api {} phase {:?}",
                        o.request.api_key(),
                        m.phase()
                    );
                }
                pending.push(o);
            }
            while let Some(ev) = m.poll_event() {
                t.see(seed, ev);
            }
            // No busy loop: after handling timers and sending, the next wake-up
            // is in the future.
            m.handle_timeout(now);
            while let Some(o) = m.poll_transmit(now) {
                pending.push(o);
            }
            while let Some(ev) = m.poll_event() {
                t.see(seed, ev);
            }
            if let Some(at) = m.poll_timeout() {
                assert!(
                    at > now,
                    "seed {seed} step {step}: timer {:?} in the past, phase {:?}",
                    now - at,
                    m.phase()
                );
            }
        }
        // Close: bounded, and every commit gets exactly one completion.
        m.close(now, Duration::from_secs(5));
        now += Duration::from_secs(6);
        m.handle_timeout(now);
        while m.poll_transmit(now).is_some() {}
        while let Some(ev) = m.poll_event() {
            t.see(seed, ev);
        }
        assert!(
            t.closed || m.phase() == Phase::Failed,
            "seed {seed}: not closed: {:?}",
            m.phase()
        );
        assert!(
            issued.is_subset(&t.completed),
            "seed {seed}: commits never completed: {:?}",
            issued.difference(&t.completed).collect::<Vec<_>>()
        );
    }
}
