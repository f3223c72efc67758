//! Two weir group members against a real broker (Apache Kafka in `scripts/test.sh`;
//! tansu works too), driven by a small
//! std::net driver: discovery, joins, a rebalance when the second member arrives,
//! heartbeats, commits, OffsetFetch, and LeaveGroup on close.
//!
//! Ignored by default (it needs a broker):
//! `WEIR_LIVE_BOOTSTRAP=127.0.0.1:PORT cargo test -p weir-coordinator --test live_group -- --ignored`
//! It creates its topics with librdkafka's admin client (`scripts/produce.py`).

use bytes::BytesMut;
use std::collections::{BTreeSet, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use weir_coordinator::*;
use weir_protocol::frame::{encode_request, parse_response, split_frame};
use weir_protocol::messages::api_versions::{ApiVersionsResponse, build_api_versions_request};
use weir_protocol::versions::ApiVersionTable;

struct Conn {
    s: TcpStream,
    rbuf: Vec<u8>,
    next_corr: i32,
    // correlation id, request id, api key, version
    inflight: VecDeque<(i32, RequestId, i16, i16)>,
}

impl Conn {
    fn open(addr: &str) -> Conn {
        let s = TcpStream::connect(addr).expect("connect to the broker");
        s.set_nodelay(true).expect("nodelay");
        Conn {
            s,
            rbuf: Vec::new(),
            next_corr: 1,
            inflight: VecDeque::new(),
        }
    }

    fn send(&mut self, o: &Outgoing) {
        let mut b = BytesMut::new();
        let corr = self.next_corr;
        self.next_corr += 1;
        o.request
            .encode_frame(&mut b, corr, Some("weir-test"), o.version)
            .expect("encodes");
        self.s.set_nonblocking(false).expect("blocking");
        self.s.write_all(&b).expect("write");
        self.inflight
            .push_back((corr, o.id, o.request.api_key(), o.version));
    }

    /// Complete frames read so far: (request id, api key, version, frame).
    fn read(&mut self) -> Vec<(RequestId, i16, i16, Vec<u8>)> {
        self.s.set_nonblocking(true).expect("nonblocking");
        let mut chunk = [0u8; 65536];
        loop {
            match self.s.read(&mut chunk) {
                Ok(0) => panic!("broker closed the connection"),
                Ok(n) => self.rbuf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("read: {e}"),
            }
        }
        let mut out = Vec::new();
        while let Some((frame, used)) = split_frame(&self.rbuf, 64 << 20).expect("frame") {
            let frame = frame.to_vec();
            self.rbuf.drain(..used);
            let (corr, id, api, v) = self.inflight.pop_front().expect("a request in flight");
            assert_eq!(
                weir_protocol::frame::peek_correlation_id(&frame).expect("corr"),
                corr
            );
            out.push((id, api, v, frame));
        }
        out
    }
}

fn api_versions(addr: &str) -> ApiVersionTable {
    let mut c = Conn::open(addr);
    let mut b = BytesMut::new();
    encode_request(
        &mut b,
        1,
        Some("weir-test"),
        3,
        &build_api_versions_request(),
    )
    .expect("encode");
    c.s.write_all(&b).expect("write");
    c.s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    loop {
        let mut chunk = [0u8; 65536];
        let n = c.s.read(&mut chunk).expect("read");
        assert!(n > 0, "closed");
        c.rbuf.extend_from_slice(&chunk[..n]);
        if let Some((frame, _)) = split_frame(&c.rbuf, 1 << 20).expect("frame") {
            let f = parse_response(frame, false).expect("header");
            let r = ApiVersionsResponse::decode_with_fallback(f.body, 3).expect("ApiVersions");
            return ApiVersionTable::from_response(&r);
        }
    }
}

/// One member with its bootstrap and coordinator connections.
struct Node {
    m: GroupMember,
    bootstrap: Conn,
    coordinator: Option<(CoordinatorAddr, Conn)>,
    events: Vec<Event>,
    unacked: bool,
}

impl Node {
    fn new(addr: &str, cfg: GroupConfig, versions: GroupVersions, now: Instant) -> Node {
        let mut m = GroupMember::new(cfg, now).expect("config");
        m.set_versions(versions);
        Node {
            m,
            bootstrap: Conn::open(addr),
            coordinator: None,
            events: Vec::new(),
            unacked: false,
        }
    }

    fn turn(&mut self, now: Instant) {
        self.m.poll(now);
        self.m.handle_timeout(now);
        while let Some(o) = self.m.poll_transmit(now) {
            match &o.target {
                Target::AnyBroker => self.bootstrap.send(&o),
                Target::Coordinator(addr) => {
                    if self.coordinator.as_ref().is_none_or(|(a, _)| a != addr) {
                        let c = Conn::open(&format!("{}:{}", addr.host, addr.port));
                        self.coordinator = Some((addr.clone(), c));
                    }
                    if let Some((_, c)) = self.coordinator.as_mut() {
                        c.send(&o);
                    }
                }
            }
        }
        let mut frames = self.bootstrap.read();
        if let Some((_, c)) = self.coordinator.as_mut() {
            frames.extend(c.read());
        }
        for (id, api, v, frame) in frames {
            let flexible = weir_protocol::frame::response_header_flexible_by_key(api, v);
            let f = parse_response(&frame, flexible).expect("header");
            let r = Response::decode(api, v, f.body).expect("decodes");
            self.m.handle_response(now, id, r);
        }
        while let Some(e) = self.m.poll_event() {
            match &e {
                Event::PartitionsRevoked(_) => self.unacked = true,
                Event::MetadataNeeded(topics) => {
                    let counts: Vec<(String, i32)> =
                        topics.iter().map(|t| (t.clone(), 4)).collect();
                    self.m.update_metadata(now, counts);
                }
                Event::CoordinatorLost => self.coordinator = None,
                _ => {}
            }
            self.events.push(e);
        }
        if self.unacked {
            // The "application" drains instantly.
            self.unacked = false;
            self.m.ack_revoked(now);
        }
    }
}

fn run_until(nodes: &mut [&mut Node], limit: Duration, mut done: impl FnMut(&[&mut Node]) -> bool) {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        let now = Instant::now();
        for n in nodes.iter_mut() {
            n.turn(now);
        }
        if done(nodes) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let states: Vec<_> = nodes
        .iter()
        .map(|n| (n.m.phase(), n.m.assignment().len(), n.events.clone()))
        .collect();
    panic!("timed out; states: {states:#?}");
}

#[test]
#[ignore = "needs a broker: WEIR_LIVE_BOOTSTRAP=host:port (scripts/test.sh starts one)"]
fn two_members_share_a_topic_eager() {
    two_members(
        vec![
            AssignmentStrategy::Range,
            AssignmentStrategy::CooperativeSticky,
        ],
        "e",
    );
}

#[test]
#[ignore = "needs a broker: WEIR_LIVE_BOOTSTRAP=host:port (scripts/test.sh starts one)"]
fn two_members_share_a_topic_cooperative() {
    two_members(vec![AssignmentStrategy::CooperativeSticky], "c");
}

fn two_members(strategies: Vec<AssignmentStrategy>, tag: &str) {
    let cooperative =
        AssignmentStrategy::protocol_for(&strategies) == RebalanceProtocol::Cooperative;
    let Ok(addr) = std::env::var("WEIR_LIVE_BOOTSTRAP") else {
        panic!("set WEIR_LIVE_BOOTSTRAP=host:port");
    };
    let topic = format!("weir-group-{tag}-{}", std::process::id());
    create_topic(&addr, &topic, 4);

    let table = api_versions(&addr);
    let versions = GroupVersions::from_table(&table).expect("group APIs supported");
    eprintln!("negotiated {versions:?}");
    let group = format!("weir-g-{tag}-{}", std::process::id());
    let mk = |id: &str| {
        let mut c = GroupConfig::new(group.clone());
        c.session_timeout = Duration::from_secs(6);
        c.heartbeat_interval = Duration::from_secs(1);
        c.client_id = id.into();
        c.assignment_strategies = strategies.clone();
        c.rng_seed = id.len() as u64;
        c
    };
    let start = Instant::now();
    let mut a = Node::new(&addr, mk("a"), versions, start);
    a.m.subscribe(start, [topic.clone()]);
    run_until(&mut [&mut a], Duration::from_secs(30), |n| {
        n[0].m.phase() == Phase::Stable && n[0].m.assignment().len() == 4
    });
    eprintln!(
        "a alone: {:?} after {:?}",
        a.m.assignment(),
        start.elapsed()
    );

    // Commit an offset and read it back through a second member's OffsetFetch.
    let t0 = TopicPartition::new(topic.clone(), 0);
    a.m.record_processed(&t0, 41, None);
    let cid =
        a.m.commit_processed(
            Instant::now(),
            CommitMode::Sync {
                timeout: Duration::from_secs(5),
            },
        )
        .expect("commit");
    run_until(&mut [&mut a], Duration::from_secs(10), |n| {
        n[0].events
            .iter()
            .any(|e| matches!(e, Event::CommitCompleted { id, .. } if *id == cid))
    });
    assert!(
        a.events
            .iter()
            .any(|e| matches!(e, Event::CommitCompleted { id, result: Ok(()), .. } if *id == cid)),
        "{:?}",
        a.events
    );

    let mut b = Node::new(&addr, mk("bb"), versions, Instant::now());
    b.m.subscribe(Instant::now(), [topic.clone()]);
    run_until(&mut [&mut a, &mut b], Duration::from_secs(60), |n| {
        n.iter()
            .all(|x| x.m.phase() == Phase::Stable && x.m.assignment().len() == 2)
    });
    let all: BTreeSet<_> = a.m.assignment().union(b.m.assignment()).cloned().collect();
    assert_eq!(all.len(), 4, "every partition owned exactly once");
    eprintln!(
        "split: a={:?} b={:?} after {:?}",
        a.m.assignment(),
        b.m.assignment(),
        start.elapsed()
    );
    let revoked: Vec<usize> = a
        .events
        .iter()
        .filter_map(|e| match e {
            Event::PartitionsRevoked(p) => Some(p.len()),
            _ => None,
        })
        .collect();
    if cooperative {
        // KIP-429: only the two partitions that moved were revoked.
        assert_eq!(revoked, [2], "{:?}", a.events);
    } else {
        assert_eq!(revoked, [4], "eager revokes everything: {:?}", a.events);
    }
    // Whoever received t0 in this rebalance starts from the committed offset 42
    // (in the cooperative case a may simply have kept it).
    let saw_42 = |n: &Node| {
        n.events.iter().any(|e| {
            matches!(e, Event::StartPositions(p) if p.iter().any(|(tp, pos)| *tp == t0
                && matches!(pos, StartPosition::Committed { offset: 42, .. })))
        })
    };
    let b_owns = b.m.assignment().contains(&t0);
    if b_owns || !cooperative {
        let idx = usize::from(b_owns);
        run_until(&mut [&mut a, &mut b], Duration::from_secs(10), |n| {
            saw_42(&*n[idx])
        });
    } else {
        assert!(a.m.assignment().contains(&t0) && a.m.committed(&t0) == Some(42));
    }

    // b closes (LeaveGroup): a gets everything back without waiting for a session
    // timeout.
    let closed_at = Instant::now();
    b.m.close(closed_at, Duration::from_secs(5));
    run_until(&mut [&mut a, &mut b], Duration::from_secs(30), |n| {
        n[1].m.phase() == Phase::Closed
            && n[0].m.phase() == Phase::Stable
            && n[0].m.assignment().len() == 4
    });
    eprintln!("a alone again {:?} after b's close", closed_at.elapsed());
    assert!(
        closed_at.elapsed() < Duration::from_secs(6),
        "LeaveGroup, not session expiry"
    );
}

/// A librdkafka group member (confluent-kafka in the repo's .venv) that prints its
/// assignment as a JSON list of partitions each time it changes, then "closed".
const PEER: &str = r#"
import json, sys, time
from confluent_kafka import Consumer
bootstrap, group, topic, strategy, seconds = sys.argv[1:6]
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
              "partition.assignment.strategy": strategy, "session.timeout.ms": 6000,
              "heartbeat.interval.ms": 1000, "enable.auto.commit": False,
              "auto.offset.reset": "earliest"})
c.subscribe([topic])
end = time.time() + float(seconds)
last = None
while time.time() < end:
    c.poll(0.05)
    a = sorted(p.partition for p in c.assignment())
    if a != last:
        print(json.dumps(a), flush=True)
        last = a
c.close()
print("closed", flush=True)
"#;

fn mixed_group(strategy: AssignmentStrategy, weir_first: bool, tag: &str) {
    use std::io::BufRead;
    let Ok(addr) = std::env::var("WEIR_LIVE_BOOTSTRAP") else {
        panic!("set WEIR_LIVE_BOOTSTRAP=host:port");
    };
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
    let topic = format!("weir-mixed-{tag}-{}", std::process::id());
    create_topic(&addr, &topic, 4);
    let versions = GroupVersions::from_table(&api_versions(&addr)).expect("versions");
    let group = format!("weir-mixed-g-{tag}-{}", std::process::id());
    let mut cfg = GroupConfig::new(group.clone());
    cfg.session_timeout = Duration::from_secs(6);
    cfg.heartbeat_interval = Duration::from_secs(1);
    cfg.assignment_strategies = vec![strategy];
    let now = Instant::now();
    let mut w = Node::new(&addr, cfg, versions, now);
    w.m.subscribe(now, [topic.clone()]);
    if weir_first {
        run_until(&mut [&mut w], Duration::from_secs(30), |n| {
            n[0].m.assignment().len() == 4
        });
        assert!(w.m.is_leader());
    }
    let mut peer = std::process::Command::new(python)
        .args(["-c", PEER, &addr, &group, &topic, strategy.name(), "12"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the librdkafka peer (scripts/setup-python.sh makes .venv)");
    let out = peer.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut peer_lines: Vec<String> = Vec::new();
    if !weir_first {
        // Let librdkafka take everything (and lead) before weir joins.
        let end = Instant::now() + Duration::from_secs(20);
        while !peer_lines.iter().any(|l| l == "[0, 1, 2, 3]") {
            assert!(
                Instant::now() < end,
                "peer never got the topic: {peer_lines:?}"
            );
            if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
                peer_lines.push(l);
            }
        }
    }
    // Shared: two partitions each, disjoint.
    run_until(&mut [&mut w], Duration::from_secs(30), |n| {
        while let Ok(l) = rx.try_recv() {
            peer_lines.push(l);
        }
        let peer_has: Option<Vec<i32>> = peer_lines.last().and_then(|l| {
            l.trim_matches(['[', ']'])
                .split(", ")
                .map(|x| x.parse().ok())
                .collect()
        });
        let mine: Vec<i32> = n[0].m.assignment().iter().map(|tp| tp.partition).collect();
        n[0].m.phase() == Phase::Stable
            && mine.len() == 2
            && peer_has.is_some_and(|p| p.len() == 2 && p.iter().all(|x| !mine.contains(x)))
    });
    eprintln!(
        "{tag}: weir leader={} has {:?}; librdkafka said {:?}",
        w.m.is_leader(),
        w.m.assignment()
            .iter()
            .map(|tp| tp.partition)
            .collect::<Vec<_>>(),
        peer_lines
    );
    // The peer leaves after its run time; weir takes everything back.
    run_until(&mut [&mut w], Duration::from_secs(40), |n| {
        while let Ok(l) = rx.try_recv() {
            peer_lines.push(l);
        }
        peer_lines.iter().any(|l| l == "closed") && n[0].m.assignment().len() == 4
    });
    let _ = peer.wait();
}

#[test]
#[ignore = "needs a broker (WEIR_LIVE_BOOTSTRAP) and the .venv with confluent-kafka"]
fn mixed_group_librdkafka_leads_range() {
    mixed_group(AssignmentStrategy::Range, false, "rk-range");
}

#[test]
#[ignore = "needs a broker (WEIR_LIVE_BOOTSTRAP) and the .venv with confluent-kafka"]
fn mixed_group_weir_leads_cooperative() {
    mixed_group(AssignmentStrategy::CooperativeSticky, true, "weir-coop");
}

#[test]
#[ignore = "needs a broker (WEIR_LIVE_BOOTSTRAP) and the .venv with confluent-kafka"]
fn mixed_group_librdkafka_leads_cooperative() {
    mixed_group(AssignmentStrategy::CooperativeSticky, false, "rk-coop");
}

#[test]
#[ignore = "needs a broker (WEIR_LIVE_BOOTSTRAP) and the .venv with confluent-kafka"]
fn mixed_group_weir_leads_roundrobin() {
    mixed_group(AssignmentStrategy::RoundRobin, true, "weir-rr");
}

#[test]
#[ignore = "needs a broker: WEIR_LIVE_BOOTSTRAP=host:port (scripts/test.sh starts one)"]
fn static_member_restart_gets_its_partitions_back() {
    let Ok(addr) = std::env::var("WEIR_LIVE_BOOTSTRAP") else {
        panic!("set WEIR_LIVE_BOOTSTRAP=host:port");
    };
    let topic = format!("weir-static-{}", std::process::id());
    create_topic(&addr, &topic, 4);
    let versions = GroupVersions::from_table(&api_versions(&addr)).expect("versions");
    let group = format!("weir-static-g-{}", std::process::id());
    let mk = |instance: Option<&str>| {
        let mut c = GroupConfig::new(group.clone());
        c.session_timeout = Duration::from_secs(6);
        c.heartbeat_interval = Duration::from_secs(1);
        c.group_instance_id = instance.map(str::to_owned);
        c
    };
    let now = Instant::now();
    let mut a = Node::new(&addr, mk(Some("static-a")), versions, now);
    let mut b = Node::new(&addr, mk(None), versions, now);
    a.m.subscribe(now, [topic.clone()]);
    b.m.subscribe(now, [topic.clone()]);
    run_until(&mut [&mut a, &mut b], Duration::from_secs(30), |n| {
        n.iter()
            .all(|x| x.m.phase() == Phase::Stable && x.m.assignment().len() == 2)
    });
    let a_parts = a.m.assignment().clone();
    let b_events_before = b.events.len();
    // a closes as a static member: no LeaveGroup.
    a.m.close(Instant::now(), Duration::from_secs(2));
    run_until(&mut [&mut a, &mut b], Duration::from_secs(5), |n| {
        n[0].m.phase() == Phase::Closed
    });
    // A new process with the same instance id takes a's place within the session.
    let mut a2 = Node::new(&addr, mk(Some("static-a")), versions, Instant::now());
    a2.m.subscribe(Instant::now(), [topic.clone()]);
    run_until(&mut [&mut a2, &mut b], Duration::from_secs(30), |n| {
        n[0].m.phase() == Phase::Stable && n[0].m.assignment().len() == 2
    });
    eprintln!(
        "a={a_parts:?} a2={:?}; b's events since: {:?}",
        a2.m.assignment(),
        &b.events[b_events_before..]
    );
    assert_eq!(
        a2.m.assignment(),
        &a_parts,
        "the static member gets its partitions back"
    );
    // Apache Kafka keeps a static member's place: b sees no rebalance at all.
    // tansu 0.6 rebalances anyway (WEIR_LIVE_BROKER=tansu skips this check), and
    // answers UNKNOWN_MEMBER_ID where Kafka fences a duplicate instance id; the
    // scripted tests and tests/static_membership.rs cover the fencing.
    if std::env::var("WEIR_LIVE_BROKER").as_deref() != Ok("tansu") {
        let moved: Vec<&Event> = b.events[b_events_before..]
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Event::PartitionsRevoked(_)
                        | Event::PartitionsAssigned(_)
                        | Event::PartitionsLost(_)
                )
            })
            .collect();
        assert!(moved.is_empty(), "b saw a rebalance: {moved:?}");
    }
}

/// Creates `topic` with librdkafka's admin client (scripts/produce.py --create-only),
/// which works on Apache Kafka and tansu alike.
fn create_topic(addr: &str, topic: &str, partitions: i32) {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/produce.py");
    let st = std::process::Command::new(python)
        .args([
            script,
            "--bootstrap",
            addr,
            "--topic",
            topic,
            "--partitions",
        ])
        .arg(partitions.to_string())
        .args(["--create-only", "--manifest", ""])
        .status()
        .expect("run scripts/produce.py --create-only (scripts/setup-python.sh makes the .venv)");
    assert!(st.success(), "creating topic {topic} failed");
}
