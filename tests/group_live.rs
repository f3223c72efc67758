//! Group mode (`weir_consumer::group::GroupConsumer`) against a real broker (Apache Kafka; tansu with WEIR_TEST_BROKER=tansu), with
//! librdkafka producing and, in mixed groups, consuming beside weir.
//!
//! Setup once per machine: `scripts/install-kafka.sh` and `scripts/setup-python.sh`;
//! without them these tests fail (they never skip).
//!
//! tansu waits about half the session timeout before completing a first join, so the
//! members here use `session.timeout.ms=6000` and `heartbeat.interval.ms=500`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use support::broker::Broker;
use support::peer::{JavaPeer, Producer, RdkafkaConsume};
use support::unique_topic;
use weir_consumer::coordinator::{
    AssignmentStrategy, AutoOffsetReset, GroupConfig, GroupProtocol, Phase,
};
use weir_consumer::fetch::FetchConfig;
use weir_consumer::group::GroupConsumer;

const SESSION: Duration = Duration::from_millis(6000);

fn fetch_config(bootstrap: &str) -> FetchConfig {
    FetchConfig {
        fetch_max_wait_ms: 100,
        fetch_max_bytes: 4 << 20,
        ring_bytes: 16 << 20,
        ..FetchConfig::new(bootstrap)
    }
}

fn group_config(group: &str, strategies: &[AssignmentStrategy]) -> GroupConfig {
    let mut g = GroupConfig::new(group);
    g.session_timeout = SESSION;
    g.heartbeat_interval = Duration::from_millis(500);
    g.rebalance_timeout = Some(Duration::from_secs(10));
    g.auto_offset_reset = AutoOffsetReset::Earliest;
    g.enable_auto_commit = false;
    g.assignment_strategies = strategies.to_vec();
    g
}

fn member(bootstrap: &str, g: GroupConfig, topic: &str) -> GroupConsumer {
    let mut m = GroupConsumer::new(fetch_config(bootstrap), g).unwrap();
    m.subscribe([topic]);
    m
}

/// One handled record: (member, partition, offset).
type Seen = Vec<(usize, i32, i64)>;

/// Polls every member in turn (short timeouts, so each keeps heartbeating) until
/// `done` or `limit`; panics on timeout with the members' states.
fn pump(
    members: &mut [(usize, &mut GroupConsumer)],
    seen: &mut Seen,
    limit: Duration,
    mut done: impl FnMut(&[(usize, &mut GroupConsumer)], &Seen) -> bool,
) {
    let end = Instant::now() + limit;
    loop {
        for (id, m) in members.iter_mut() {
            let id = *id;
            m.poll(Duration::from_millis(20), |r| {
                seen.push((id, r.partition, r.offset()))
            })
            .unwrap();
        }
        if done(members, seen) {
            return;
        }
        if Instant::now() >= end {
            let states: Vec<_> = members
                .iter()
                .map(|(id, m)| (*id, m.phase(), m.assignment().clone()))
                .collect();
            panic!(
                "timed out after {limit:?}; members: {states:?}; seen {} records",
                seen.len()
            );
        }
    }
}

fn offsets_by_partition(seen: &Seen) -> BTreeMap<i32, Vec<i64>> {
    let mut m: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for &(_, p, o) in seen {
        m.entry(p).or_default().push(o);
    }
    m
}

/// In handling order, per partition: no gap (a lost record), and the count of
/// records seen again (at-least-once redelivery).
fn check_no_loss(seen: &Seen, ends: &BTreeMap<i32, i64>) -> usize {
    let mut dups = 0;
    for (p, offs) in offsets_by_partition(seen) {
        let mut next = 0i64;
        for o in offs {
            assert!(
                o <= next,
                "partition {p}: offset {o} handled while {next} was next: records lost"
            );
            if o < next {
                dups += 1;
            } else {
                next = o + 1;
            }
        }
        assert_eq!(next, ends[&p], "partition {p} not read to its end");
    }
    for (p, end) in ends {
        if *end > 0 {
            assert!(seen.iter().any(|s| s.1 == *p), "partition {p} never read");
        }
    }
    dups
}

fn covered(seen: &Seen, ends: &BTreeMap<i32, i64>) -> bool {
    let by = offsets_by_partition(seen);
    ends.iter().all(|(p, end)| {
        *end == 0
            || by
                .get(p)
                .is_some_and(|o| o.iter().max().is_some_and(|m| m + 1 >= *end))
    })
}

/// (a) One member reads everything librdkafka produced and commits; a restarted member
/// resumes at the committed offsets: nothing is handled twice after a clean close.
#[test]
fn group_consume_commit_and_resume() {
    let tansu = Broker::shared();
    let topic = unique_topic("g-resume");
    let group = unique_topic("grp-resume");
    let first = Producer::new(&tansu.bootstrap(), &topic)
        .partitions(3)
        .count(40)
        .run();
    let strategies = [AssignmentStrategy::Range];

    let mut a = member(
        &tansu.bootstrap(),
        group_config(&group, &strategies),
        &topic,
    );
    let mut seen = Seen::new();
    pump(
        &mut [(0, &mut a)],
        &mut seen,
        Duration::from_secs(60),
        |_, s| covered(s, &first.next_offset),
    );
    a.commit_sync(Duration::from_secs(10)).unwrap();
    for (p, end) in &first.next_offset {
        let tp = weir_consumer::coordinator::TopicPartition::new(topic.clone(), *p);
        assert_eq!(a.committed(&tp), Some(*end), "committed offset of {tp}");
    }
    assert_eq!(check_no_loss(&seen, &first.next_offset), 0);
    assert_eq!(seen.len(), first.count());
    let t = Instant::now();
    a.close(Duration::from_secs(10)).unwrap();
    assert!(t.elapsed() < Duration::from_secs(10));

    let second = Producer::new(&tansu.bootstrap(), &topic)
        .partitions(3)
        .count(15)
        .start_seq(1000)
        .run();
    let mut b = member(
        &tansu.bootstrap(),
        group_config(&group, &strategies),
        &topic,
    );
    let mut seen2 = Seen::new();
    pump(
        &mut [(1, &mut b)],
        &mut seen2,
        Duration::from_secs(60),
        |_, s| covered(s, &second.next_offset),
    );
    // Everything handled now is new: it starts exactly at the committed offsets.
    for (p, offs) in offsets_by_partition(&seen2) {
        assert_eq!(
            offs[0], first.next_offset[&p],
            "partition {p} resumed elsewhere"
        );
        let want: Vec<i64> = (first.next_offset[&p]..second.next_offset[&p]).collect();
        assert_eq!(offs, want, "partition {p}");
    }
    b.close(Duration::from_secs(10)).unwrap();
}

/// (d) close() leaves the group at once: the remaining member owns every partition
/// long before the (deliberately long) session timeout of the member that left.
#[test]
fn group_close_hands_partitions_over_at_once() {
    let tansu = Broker::shared();
    let topic = unique_topic("g-close");
    let group = unique_topic("grp-close");
    Producer::new(&tansu.bootstrap(), &topic)
        .partitions(4)
        .count(5)
        .run();
    let strategies = [AssignmentStrategy::Range];
    let long = |g: &str| {
        let mut c = group_config(g, &strategies);
        c.session_timeout = Duration::from_secs(30);
        c.heartbeat_interval = Duration::from_millis(500);
        c
    };
    let mut a = member(&tansu.bootstrap(), long(&group), &topic);
    let mut b = member(&tansu.bootstrap(), long(&group), &topic);
    let mut seen = Seen::new();
    pump(
        &mut [(0, &mut a), (1, &mut b)],
        &mut seen,
        Duration::from_secs(90),
        |m, _| {
            m.iter()
                .all(|(_, x)| x.phase() == Phase::Stable && x.assignment().len() == 2)
        },
    );
    let t = Instant::now();
    a.close(Duration::from_secs(10)).unwrap();
    let close_took = t.elapsed();
    pump(
        &mut [(1, &mut b)],
        &mut seen,
        Duration::from_secs(25),
        |m, _| m[0].1.phase() == Phase::Stable && m[0].1.assignment().len() == 4,
    );
    let handover = t.elapsed();
    eprintln!("close took {close_took:?}; b owned all partitions after {handover:?}");
    assert!(close_took < Duration::from_secs(10));
    assert!(
        handover < Duration::from_secs(25),
        "the partitions moved only after {handover:?} (session timeout 30 s)"
    );
    b.close(Duration::from_secs(10)).unwrap();
}

/// Produces `rounds` batches of `per_round` records per partition from a thread,
/// `pause` apart; returns the final end offsets.
fn produce_in_background(
    bootstrap: String,
    topic: String,
    partitions: i32,
    rounds: usize,
    per_round: usize,
) -> std::thread::JoinHandle<BTreeMap<i32, i64>> {
    std::thread::spawn(move || {
        let mut ends = BTreeMap::new();
        for r in 0..rounds {
            let m = Producer::new(&bootstrap, &topic)
                .partitions(partitions)
                .count(per_round)
                .start_seq((r * per_round) as u64)
                .run();
            ends = m.next_offset;
            std::thread::sleep(Duration::from_millis(300));
        }
        ends
    })
}

/// (b) A group grows from one member to three and shrinks back to one while records
/// flow: nothing is lost and each partition is handled in order.
fn grow_and_shrink(label: &str, config: impl Fn(&str) -> GroupConfig) {
    let broker = Broker::shared();
    let topic = unique_topic("g-grow");
    let group = unique_topic("grp-grow");
    Producer::new(&broker.bootstrap(), &topic)
        .partitions(6)
        .count(10)
        .run();
    let producer = produce_in_background(broker.bootstrap(), topic.clone(), 6, 8, 20);
    let bs = broker.bootstrap();
    let mk = || member(&bs, config(&group), &topic);
    let mut seen = Seen::new();
    let mut a = mk();
    pump(
        &mut [(0, &mut a)],
        &mut seen,
        Duration::from_secs(60),
        all_stable(6),
    );
    assert!(a.generation() > 0, "a generation (or member epoch)");
    let mut b = mk();
    let mut c = mk();
    pump(
        &mut [(0, &mut a), (1, &mut b), (2, &mut c)],
        &mut seen,
        Duration::from_secs(90),
        all_stable(2),
    );
    let owned: BTreeSet<_> = [&a, &b, &c]
        .iter()
        .flat_map(|m| m.assignment().iter().cloned())
        .collect();
    assert_eq!(owned.len(), 6, "each partition owned once");
    // Let records flow to all three for a while.
    pump(
        &mut [(0, &mut a), (1, &mut b), (2, &mut c)],
        &mut seen,
        Duration::from_secs(30),
        |_, s| s.iter().map(|x| x.0).collect::<BTreeSet<_>>().len() == 3,
    );
    c.close(Duration::from_secs(10)).unwrap();
    b.close(Duration::from_secs(10)).unwrap();
    let ends = producer.join().unwrap();
    pump(
        &mut [(0, &mut a)],
        &mut seen,
        Duration::from_secs(90),
        |m, s| m[0].1.assignment().len() == 6 && covered(s, &ends),
    );
    let dups = check_no_loss(&seen, &ends);
    eprintln!(
        "{label}: {} records handled, {dups} again; ends {ends:?}",
        seen.len()
    );
    // Every handoff was clean (revoke commits before the rejoin): no redelivery.
    assert_eq!(dups, 0, "records handled twice across clean handoffs");
    a.close(Duration::from_secs(10)).unwrap();
}

#[test]
fn group_grow_and_shrink_eager() {
    grow_and_shrink("range", |g| group_config(g, &[AssignmentStrategy::Range]));
}

#[test]
fn group_grow_and_shrink_cooperative() {
    grow_and_shrink("cooperative-sticky", |g| {
        group_config(g, &[AssignmentStrategy::CooperativeSticky])
    });
}

/// (c) A weir member and a librdkafka member in one group split the partitions.
fn mixed(strategy: AssignmentStrategy, rdkafka_name: &str) {
    let tansu = Broker::shared();
    let topic = unique_topic("g-mixed");
    let group = unique_topic("grp-mixed");
    let first = Producer::new(&tansu.bootstrap(), &topic)
        .partitions(4)
        .count(20)
        .run();
    let mut a = member(
        &tansu.bootstrap(),
        group_config(&group, &[strategy]),
        &topic,
    );
    let mut seen = Seen::new();
    pump(
        &mut [(0, &mut a)],
        &mut seen,
        Duration::from_secs(60),
        |m, _| m[0].1.assignment().len() == 4,
    );
    let rd = RdkafkaConsume::new(&tansu.bootstrap(), &topic)
        .group(&group)
        .session_timeout_ms(SESSION.as_millis() as u64)
        .run_seconds(25.0)
        .property("partition.assignment.strategy", rdkafka_name)
        .property("heartbeat.interval.ms", "500");
    let peer = std::thread::spawn(move || rd.run());
    let mut split = None;
    pump(
        &mut [(0, &mut a)],
        &mut seen,
        Duration::from_secs(25),
        |m, _| {
            let n = m[0].1.assignment().len();
            if m[0].1.phase() == Phase::Stable && n == 2 {
                split = Some(m[0].1.assignment().clone());
                true
            } else {
                false
            }
        },
    );
    let mine = split.unwrap();
    // More records for every partition while both members own two each (weir
    // committed the first ones when it gave two partitions up, so librdkafka starts
    // after them).
    let (bs, t) = (tansu.bootstrap(), topic.clone());
    let more = std::thread::spawn(move || {
        Producer::new(&bs, &t)
            .partitions(4)
            .count(10)
            .start_seq(100)
            .run()
    });
    while !more.is_finished() {
        a.poll(Duration::from_millis(50), |r| {
            seen.push((0, r.partition, r.offset()))
        })
        .unwrap();
    }
    let produced = more.join().unwrap();
    // Stay in the group until librdkafka leaves (its run ends after 25 s).
    let mut end = Instant::now() + Duration::from_secs(40);
    while !peer.is_finished() && Instant::now() < end {
        a.poll(Duration::from_millis(50), |r| {
            seen.push((0, r.partition, r.offset()))
        })
        .unwrap();
    }
    let consumed = peer.join().unwrap();
    let theirs: BTreeSet<i32> = consumed.records.iter().map(|r| r.partition).collect();
    let mine_p: BTreeSet<i32> = mine.iter().map(|tp| tp.partition).collect();
    eprintln!("{strategy:?}: weir {mine_p:?}, librdkafka read from {theirs:?}");
    assert_eq!(theirs.len(), 2, "librdkafka got two partitions");
    assert!(
        theirs.is_disjoint(&mine_p),
        "no partition owned by both after the split"
    );
    for p in &theirs {
        let offs: Vec<i64> = consumed
            .records
            .iter()
            .filter(|r| r.partition == *p)
            .map(|r| r.offset)
            .collect();
        let want: Vec<i64> = (first.next_offset[p]..produced.next_offset[p]).collect();
        assert_eq!(
            offs, want,
            "librdkafka on partition {p} starts at weir's commit"
        );
    }
    // After librdkafka left, weir owns every partition again and reaches every end.
    end = Instant::now() + Duration::from_secs(60);
    while !covered(&seen, &produced.next_offset) || a.assignment().len() != 4 {
        assert!(
            Instant::now() < end,
            "weir did not take the partitions back"
        );
        a.poll(Duration::from_millis(50), |r| {
            seen.push((0, r.partition, r.offset()))
        })
        .unwrap();
    }
    a.close(Duration::from_secs(10)).unwrap();
}

#[test]
fn group_mixed_with_librdkafka_range() {
    mixed(AssignmentStrategy::Range, "range");
}

#[test]
fn group_mixed_with_librdkafka_cooperative_sticky() {
    mixed(AssignmentStrategy::CooperativeSticky, "cooperative-sticky");
}

/// (f) A member that dies without close: its partitions move after the session
/// timeout.
#[test]
fn group_killed_member_partitions_move_after_session_timeout() {
    let tansu = Broker::shared();
    let topic = unique_topic("g-kill");
    let group = unique_topic("grp-kill");
    Producer::new(&tansu.bootstrap(), &topic)
        .partitions(4)
        .count(5)
        .run();
    let strategies = [AssignmentStrategy::Range];
    let mut a = member(
        &tansu.bootstrap(),
        group_config(&group, &strategies),
        &topic,
    );
    let mut b = member(
        &tansu.bootstrap(),
        group_config(&group, &strategies),
        &topic,
    );
    let mut seen = Seen::new();
    pump(
        &mut [(0, &mut a), (1, &mut b)],
        &mut seen,
        Duration::from_secs(90),
        |m, _| {
            m.iter()
                .all(|(_, x)| x.phase() == Phase::Stable && x.assignment().len() == 2)
        },
    );
    // "Kill" the follower: stop driving it and drop it without close (no LeaveGroup).
    // (tansu 0.6 never expires a dead *leader*: the survivor's joins complete naming
    // the dead leader and its SyncGroup fails, in a loop; so the follower dies here.)
    let (mut survivor, dead) = if a.is_leader() { (a, b) } else { (b, a) };
    std::mem::forget(dead);
    let t = Instant::now();
    pump(
        &mut [(1, &mut survivor)],
        &mut seen,
        Duration::from_secs(40),
        |m, _| m[0].1.phase() == Phase::Stable && m[0].1.assignment().len() == 4,
    );
    let moved = t.elapsed();
    eprintln!("partitions moved after {moved:?} (session timeout {SESSION:?})");
    // tansu 0.6 expires a silent member after about half of session.timeout.ms (3.0 s
    // of 6 s here, measured from its last request), as it completes a first join
    // after about half; Kafka waits the whole session timeout.
    assert!(
        moved >= SESSION / 3,
        "moved after {moved:?}: too soon for a session expiry (was the member left?)"
    );
    assert!(
        moved <= SESSION + Duration::from_secs(4),
        "moved after {moved:?}"
    );
    survivor.close(Duration::from_secs(10)).unwrap();
}

/// Counts rebalance callbacks.
#[derive(Clone, Default)]
struct Counter(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl weir_consumer::group::RebalanceListener for Counter {
    fn on_partitions_revoked(&mut self, p: &[weir_consumer::coordinator::TopicPartition]) {
        self.0.lock().unwrap().push(format!("revoked {}", p.len()));
    }
    fn on_partitions_assigned(&mut self, p: &[weir_consumer::coordinator::TopicPartition]) {
        self.0.lock().unwrap().push(format!("assigned {}", p.len()));
    }
    fn on_partitions_lost(&mut self, p: &[weir_consumer::coordinator::TopicPartition]) {
        self.0.lock().unwrap().push(format!("lost {}", p.len()));
    }
}

/// (e) A static member (group.instance.id) that restarts within the session timeout
/// gets its own partitions back and causes no rebalance: the other member keeps its
/// partitions throughout and sees no revoke, assign or lost callback (close sends no
/// LeaveGroup for a static member, so nothing moves while it is away).
#[test]
fn group_static_member_restart_keeps_its_partitions() {
    let tansu = Broker::shared();
    let tansu_started = Instant::now();
    let topic = unique_topic("g-static");
    let group = unique_topic("grp-static");
    Producer::new(&tansu.bootstrap(), &topic)
        .partitions(4)
        .count(5)
        .run();
    let strategies = [AssignmentStrategy::Range];
    let static_cfg = || {
        let mut c = group_config(&group, &strategies);
        c.group_instance_id = Some("static-a".into());
        c.session_timeout = Duration::from_secs(20);
        c
    };
    let mut dynamic_cfg = group_config(&group, &strategies);
    dynamic_cfg.session_timeout = Duration::from_secs(20);
    let mut a = member(&tansu.bootstrap(), static_cfg(), &topic);
    let mut b = member(&tansu.bootstrap(), dynamic_cfg, &topic);
    let log = Counter::default();
    b.set_listener(log.clone());
    let mut seen = Seen::new();
    pump(
        &mut [(0, &mut a), (1, &mut b)],
        &mut seen,
        Duration::from_secs(90),
        |m, _| {
            m.iter()
                .all(|(_, x)| x.phase() == Phase::Stable && x.assignment().len() == 2)
        },
    );
    eprintln!("both stable after {:?}", tansu_started.elapsed());
    let a_parts = a.assignment().clone();
    let b_parts = b.assignment().clone();
    let before = log.0.lock().unwrap().len();
    a.close(Duration::from_secs(10)).unwrap();
    drop(a);
    // Away for 3 s (well inside the 20 s session): b keeps exactly its own two.
    let away = Instant::now() + Duration::from_secs(3);
    while Instant::now() < away {
        b.poll(Duration::from_millis(20), |r| {
            seen.push((1, r.partition, r.offset()))
        })
        .unwrap();
        assert!(
            b.assignment().is_subset(&b_parts),
            "b took a static member's partitions while it was away: {:?}",
            b.assignment()
        );
    }
    let t_rejoin = Instant::now();
    let mut a2 = member(&tansu.bootstrap(), static_cfg(), &topic);
    pump(
        &mut [(0, &mut a2), (1, &mut b)],
        &mut seen,
        Duration::from_secs(60),
        |m, _| {
            m.iter()
                .all(|(_, x)| x.phase() == Phase::Stable && x.assignment().len() == 2)
        },
    );
    eprintln!("the static member was back after {:?}", t_rejoin.elapsed());
    assert_eq!(a2.assignment(), &a_parts, "the static member's partitions");
    assert_eq!(b.assignment(), &b_parts);
    let during = log.0.lock().unwrap()[before..].to_vec();
    assert!(during.is_empty(), "b saw a rebalance: {during:?}");
    let t = Instant::now();
    a2.close(Duration::from_secs(10)).unwrap();
    b.close(Duration::from_secs(10)).unwrap();
    eprintln!("both closed in {:?}", t.elapsed());
}

/// The rebalance pause when a second member joins a group consuming steady traffic,
/// from per-record arrival times (seconds relative to the join): (time until the half
/// of the partitions that paused longest (those that moved) are all consumed again,
/// their longest gap, the longest gap of the other half (kept)).
fn pause_of(arrivals: &[(i32, f64)], partitions: i32, window: f64) -> (f64, f64, f64) {
    let mut gaps = Vec::new();
    for p in 0..partitions {
        let mut ts: Vec<f64> = arrivals
            .iter()
            .filter(|(q, t)| *q == p && *t >= -1.0 && *t <= window)
            .map(|x| x.1)
            .collect();
        ts.sort_by(f64::total_cmp);
        assert!(
            !ts.is_empty(),
            "partition {p} was never consumed around the join"
        );
        // A partition silent until the window's end counts as one long gap.
        ts.push(window);
        let (mut gap, mut gap_end) = (0.0f64, 0.0f64);
        for w in ts.windows(2) {
            if w[1] - w[0] > gap {
                gap = w[1] - w[0];
                gap_end = w[1];
            }
        }
        eprint!(" p{p}: {:.2}..{gap_end:.2}", gap_end - gap);
        gaps.push((gap, gap_end));
    }
    gaps.sort_by(|x, y| x.0.total_cmp(&y.0));
    let half = gaps.len() / 2;
    let kept = gaps[..half].iter().map(|g| g.0).fold(0.0, f64::max);
    let moved = gaps[half..].iter().map(|g| g.0).fold(0.0, f64::max);
    let all_again = gaps[half..].iter().map(|g| g.1).fold(0.0, f64::max);
    (all_again, moved, kept)
}

fn steady_producer(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    seconds: u32,
) -> std::process::Child {
    std::process::Command::new(support::peer::python())
        .arg(support::repo_root().join("scripts/rebalance_peer.py"))
        .args(["produce", "--bootstrap", bootstrap, "--topic", topic])
        .args(["--partitions", &partitions.to_string(), "--rate", "100"])
        .args(["--seconds", &seconds.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start scripts/rebalance_peer.py produce")
}

const PARTS: i32 = 6;
const WINDOW: f64 = 15.0;

/// `strategy`: a classic assignor, or `None` for group.protocol=consumer (the broker's
/// uniform assignor).
fn weir_pause(bootstrap: &str, strategy: Option<AssignmentStrategy>) -> (f64, f64, f64) {
    let topic = unique_topic("g-pause");
    let group = unique_topic("grp-pause");
    Producer::new(bootstrap, &topic)
        .partitions(PARTS)
        .count(1)
        .run();
    let mut producer = steady_producer(bootstrap, &topic, PARTS, 40);
    let cfg = || {
        let mut c = match strategy {
            Some(s) => group_config(&group, &[s]),
            None => {
                let mut c = consumer_config(&group);
                c.remote_assignor = Some("uniform".into());
                c
            }
        };
        c.enable_auto_commit = true;
        c.auto_commit_interval = Duration::from_millis(200);
        c
    };
    let mut a = member(bootstrap, cfg(), &topic);
    let mut arrivals: Vec<(i32, Instant)> = Vec::new();
    let mut warm: Option<Instant> = None;
    let end = Instant::now() + Duration::from_secs(60);
    while warm.is_none_or(|w| w.elapsed() < Duration::from_secs(2)) {
        assert!(Instant::now() < end, "a never consumed every partition");
        a.poll(Duration::from_millis(20), |r| {
            arrivals.push((r.partition, Instant::now()))
        })
        .unwrap();
        let consuming: BTreeSet<i32> = arrivals.iter().map(|x| x.0).collect();
        if warm.is_none()
            && a.assignment().len() == PARTS as usize
            && consuming.len() == PARTS as usize
        {
            warm = Some(Instant::now());
        }
    }
    let t0 = Instant::now();
    let mut b = member(bootstrap, cfg(), &topic);
    while t0.elapsed() < Duration::from_secs_f64(WINDOW) {
        a.poll(Duration::from_millis(10), |r| {
            arrivals.push((r.partition, Instant::now()))
        })
        .unwrap();
        b.poll(Duration::from_millis(10), |r| {
            arrivals.push((r.partition, Instant::now()))
        })
        .unwrap();
    }
    let split = (a.assignment().len(), b.assignment().len());
    assert_eq!(split.0 + split.1, PARTS as usize, "{split:?}");
    let _ = producer.kill();
    let _ = producer.wait();
    let rel: Vec<(i32, f64)> = arrivals
        .iter()
        .map(|(p, t)| {
            let s = if *t >= t0 {
                (*t - t0).as_secs_f64()
            } else {
                -(t0 - *t).as_secs_f64()
            };
            (*p, s)
        })
        .collect();
    a.close(Duration::from_secs(5)).unwrap();
    b.close(Duration::from_secs(5)).unwrap();
    pause_of(&rel, PARTS, WINDOW)
}

#[allow(clippy::too_many_arguments)] // test helper: one call site per member
fn rdkafka_member(
    bootstrap: &str,
    topic: &str,
    group: &str,
    strategy: &str,
    seconds: f64,
    start_at: Option<f64>,
    sink: std::sync::Arc<std::sync::Mutex<Vec<(i32, f64)>>>,
    owned: std::sync::Arc<std::sync::Mutex<usize>>,
) -> (std::process::Child, std::thread::JoinHandle<()>) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(support::peer::python())
        .arg(support::repo_root().join("scripts/rebalance_peer.py"))
        .args([
            "consume",
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--group",
            group,
        ])
        .args(["--strategy", strategy, "--seconds", &seconds.to_string()])
        .args(["--session-timeout-ms", &SESSION.as_millis().to_string()])
        .args(start_at.map(|t| format!("--start-at={t:.6}")))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start scripts/rebalance_peer.py consume");
    let out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let line = line.unwrap();
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.first() == Some(&"assigned") {
                let n = if f.len() == 3 {
                    f[1].split(',').count()
                } else {
                    0
                };
                *owned.lock().unwrap() = n;
            } else if f.len() == 3 {
                sink.lock()
                    .unwrap()
                    .push((f[0].parse().unwrap(), f[2].parse().unwrap()));
            }
        }
    });
    (child, reader)
}

fn wall() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn rdkafka_pause(bootstrap: &str, strategy: &str) -> (f64, f64, f64) {
    use std::sync::{Arc, Mutex};
    let topic = unique_topic("r-pause");
    let group = unique_topic("rgrp-pause");
    Producer::new(bootstrap, &topic)
        .partitions(PARTS)
        .count(1)
        .run();
    let mut producer = steady_producer(bootstrap, &topic, PARTS, 45);
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let (owned_a, owned_b) = (Arc::new(Mutex::new(0)), Arc::new(Mutex::new(0)));
    let (mut ca, ra) = rdkafka_member(
        bootstrap,
        &topic,
        &group,
        strategy,
        40.0,
        None,
        Arc::clone(&arrivals),
        Arc::clone(&owned_a),
    );
    let end = Instant::now() + Duration::from_secs(60);
    let mut warm: Option<Instant> = None;
    while warm.is_none_or(|w| w.elapsed() < Duration::from_secs(2)) {
        assert!(
            Instant::now() < end,
            "librdkafka member a never consumed every partition"
        );
        std::thread::sleep(Duration::from_millis(50));
        let consuming: BTreeSet<i32> = arrivals.lock().unwrap().iter().map(|x| x.0).collect();
        if warm.is_none()
            && *owned_a.lock().unwrap() == PARTS as usize
            && consuming.len() == PARTS as usize
        {
            warm = Some(Instant::now());
        }
    }
    // b's process starts now and subscribes at t0, its start-up cost paid before.
    let t0 = wall() + 3.0;
    let (mut cb, rb) = rdkafka_member(
        bootstrap,
        &topic,
        &group,
        strategy,
        WINDOW + 8.0,
        Some(t0),
        Arc::clone(&arrivals),
        Arc::clone(&owned_b),
    );
    std::thread::sleep(Duration::from_secs_f64(t0 - wall() + WINDOW + 0.5));
    let split = (*owned_a.lock().unwrap(), *owned_b.lock().unwrap());
    let _ = ca.kill();
    let _ = producer.kill();
    let _ = cb.wait();
    let _ = ca.wait();
    let _ = producer.wait();
    ra.join().unwrap();
    rb.join().unwrap();
    assert_eq!(
        split.0 + split.1,
        PARTS as usize,
        "librdkafka split {split:?}"
    );
    let rel: Vec<(i32, f64)> = arrivals
        .lock()
        .unwrap()
        .iter()
        .map(|(p, t)| (*p, t - t0))
        .collect();
    pause_of(&rel, PARTS, WINDOW)
}

/// The Java client's side of the rebalance pause: two `tests/java/WeirJavaPeer`
/// members (KafkaConsumer 4.4, classic protocol, the same session, heartbeat and fetch
/// wait as the others, synchronous commits after each poll); B's join is the instant it
/// prints `subscribed` (its JVM start-up is paid before that).
/// `assignor`: a classic assignor class, or `consumer` for group.protocol=consumer.
fn java_pause(bootstrap: &str, assignor: &str) -> (f64, f64, f64) {
    let topic = unique_topic("j-pause");
    let group = unique_topic("jgrp-pause");
    Producer::new(bootstrap, &topic)
        .partitions(PARTS)
        .count(1)
        .run();
    let mut producer = steady_producer(bootstrap, &topic, PARTS, 45);
    let strategy =
        format!("partition.assignment.strategy=org.apache.kafka.clients.consumer.{assignor}");
    let session = format!("session.timeout.ms={}", SESSION.as_millis());
    let classic = [
        strategy.as_str(),
        session.as_str(),
        "heartbeat.interval.ms=500",
        "fetch.max.wait.ms=100",
        "auto.offset.reset=earliest",
        "group.protocol=classic",
    ];
    let consumer = [
        "group.protocol=consumer",
        "group.remote.assignor=uniform",
        "fetch.max.wait.ms=100",
        "auto.offset.reset=earliest",
    ];
    let props: &[&str] = if assignor == "consumer" {
        &consumer
    } else {
        &classic
    };
    let mut a = JavaPeer::start(bootstrap, &group, &[&topic], props);
    let end = Instant::now() + Duration::from_secs(60);
    let mut warm: Option<Instant> = None;
    while warm.is_none_or(|w| w.elapsed() < Duration::from_secs(2)) {
        assert!(
            Instant::now() < end,
            "Java member a never consumed every partition"
        );
        std::thread::sleep(Duration::from_millis(50));
        let consuming: BTreeSet<i32> = a.records().iter().map(|r| r.0).collect();
        if warm.is_none() && a.owned().len() == PARTS as usize && consuming.len() == PARTS as usize
        {
            warm = Some(Instant::now());
        }
    }
    let mut b = JavaPeer::start(bootstrap, &group, &[&topic], props);
    let t0 = loop {
        assert!(Instant::now() < end, "Java member b never subscribed");
        std::thread::sleep(Duration::from_millis(20));
        let subscribed = b
            .drain()
            .iter()
            .find_map(|l| l.strip_prefix("subscribed ")?.trim().parse::<f64>().ok());
        if let Some(ms) = subscribed {
            break ms / 1000.0;
        }
    };
    std::thread::sleep(Duration::from_secs_f64(
        (t0 + WINDOW + 0.5 - wall()).max(0.0),
    ));
    let split = (a.owned().len(), b.owned().len());
    assert_eq!(split.0 + split.1, PARTS as usize, "Java split {split:?}");
    let mut rel: Vec<(i32, f64)> = Vec::new();
    for peer in [&mut a, &mut b] {
        for line in peer.drain() {
            let f: Vec<&str> = line.split(' ').collect();
            if f.first() == Some(&"rec") {
                if let (Some(ms), Some(p)) = (
                    f.get(1).and_then(|x| x.parse::<f64>().ok()),
                    f.get(3).and_then(|x| x.parse::<i32>().ok()),
                ) {
                    rel.push((p, ms / 1000.0 - t0));
                }
            }
        }
    }
    drop(a);
    drop(b);
    let _ = producer.kill();
    let _ = producer.wait();
    pause_of(&rel, PARTS, WINDOW)
}

/// Rebalance pause, weir vs librdkafka vs the Java consumer, eager (range) and cooperative
/// (cooperative-sticky): a member consumes 6 partitions of steady traffic (100
/// records/s each); a second member joins; per-record arrival times give the time
/// until every partition is consumed again and the worst per-partition gap. Prints a
/// table for BENCHMARKS.md.
///
/// `cargo test --release -p weir --test group_live rebalance_pause_report -- --ignored --nocapture`
#[test]
#[ignore = "measurement (about 2 minutes); prints the rebalance pause table"]
fn rebalance_pause_report() {
    let tansu = Broker::shared();
    let bs = tansu.bootstrap();
    let mut rows = Vec::new();
    // group.protocol=consumer runs with the test broker's consumer-group heartbeat
    // interval of 1 s (scripts/kafka-config.sh); the classic rows with 500 ms.
    for (strategy, name, java) in [
        (Some(AssignmentStrategy::Range), "range", "RangeAssignor"),
        (
            Some(AssignmentStrategy::CooperativeSticky),
            "cooperative-sticky",
            "CooperativeStickyAssignor",
        ),
        (None, "consumer", "consumer"),
    ] {
        eprint!("weir {name}: longest gaps");
        rows.push(("weir", name, weir_pause(&bs, strategy)));
        eprint!("\nlibrdkafka {name}: longest gaps");
        rows.push(("librdkafka", name, rdkafka_pause(&bs, name)));
        eprint!("\njava {name}: longest gaps");
        rows.push(("java", name, java_pause(&bs, java)));
        eprintln!();
    }
    println!(
        "| client | strategy | every partition consuming again after the join | longest pause, moved partitions | longest pause, kept partitions |"
    );
    println!("|---|---|---|---|---|");
    for (client, strategy, (again, moved, kept)) in rows {
        println!("| {client} | {strategy} | {again:.2} s | {moved:.2} s | {kept:.2} s |");
    }
}

/// Worker mode in a group: member A consumes with two worker threads (on its own
/// thread), member B joins in poll mode, then A closes. Every record is handled, in
/// order per partition, none twice: A's revocation waits for its workers, commits,
/// and only then lets B start at the committed offsets.
#[test]
fn group_worker_mode_rebalances_without_loss() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let tansu = Broker::shared();
    let topic = unique_topic("g-workers");
    let group = unique_topic("grp-workers");
    let first = Producer::new(&tansu.bootstrap(), &topic)
        .partitions(4)
        .count(30)
        .run();
    let strategies = [AssignmentStrategy::Range];
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut a = member(
        &tansu.bootstrap(),
        group_config(&group, &strategies),
        &topic,
    );
    let a_thread = {
        let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
        std::thread::spawn(move || {
            a.run_workers(
                2,
                false,
                |_| {
                    let seen = Arc::clone(&seen);
                    move |r: &weir_consumer::fetch::ConsumerRecord<'_>| {
                        seen.lock().unwrap().push((0, r.partition, r.offset()))
                    }
                },
                &stop,
            )
            .unwrap();
            let t = Instant::now();
            a.close(Duration::from_secs(10)).unwrap();
            t.elapsed()
        })
    };
    let end = Instant::now() + Duration::from_secs(60);
    while !covered(&seen.lock().unwrap(), &first.next_offset) {
        assert!(
            Instant::now() < end,
            "worker-mode member did not read everything"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut b = member(
        &tansu.bootstrap(),
        group_config(&group, &strategies),
        &topic,
    );
    let poll_b = |b: &mut GroupConsumer| {
        b.poll(Duration::from_millis(20), |r| {
            seen.lock().unwrap().push((1, r.partition, r.offset()))
        })
        .unwrap();
    };
    let end = Instant::now() + Duration::from_secs(60);
    while !(b.phase() == Phase::Stable && b.assignment().len() == 2) {
        assert!(
            Instant::now() < end,
            "b never got half: {:?}",
            b.assignment()
        );
        poll_b(&mut b);
    }
    // New records for both members' partitions.
    let (bs, t) = (tansu.bootstrap(), topic.clone());
    let more = std::thread::spawn(move || {
        Producer::new(&bs, &t)
            .partitions(4)
            .count(30)
            .start_seq(100)
            .run()
    });
    while !more.is_finished() {
        poll_b(&mut b);
    }
    let ends = more.join().unwrap().next_offset;
    stop.store(true, Ordering::Release);
    while !a_thread.is_finished() {
        poll_b(&mut b);
    }
    let close_took = a_thread.join().unwrap();
    assert!(close_took < Duration::from_secs(10));
    let end = Instant::now() + Duration::from_secs(60);
    while !(b.assignment().len() == 4 && covered(&seen.lock().unwrap(), &ends)) {
        assert!(
            Instant::now() < end,
            "b did not finish: {:?}",
            b.assignment()
        );
        poll_b(&mut b);
    }
    let seen = seen.lock().unwrap().clone();
    let by_member: BTreeSet<usize> = seen.iter().map(|s| s.0).collect();
    assert_eq!(by_member.len(), 2, "both members handled records");
    assert_eq!(check_no_loss(&seen, &ends), 0, "records handled twice");
    b.close(Duration::from_secs(10)).unwrap();
}

/// enable.auto.commit commits processed offsets on its interval without any call;
/// commit_async reports its outcome to the callback during a later poll.
#[test]
fn group_auto_commit_and_commit_async() {
    use std::sync::{Arc, Mutex};
    let tansu = Broker::shared();
    let topic = unique_topic("g-auto");
    let group = unique_topic("grp-auto");
    let first = Producer::new(&tansu.bootstrap(), &topic)
        .partitions(2)
        .count(25)
        .run();
    let strategies = [AssignmentStrategy::CooperativeSticky];
    let mut cfg = group_config(&group, &strategies);
    cfg.enable_auto_commit = true;
    cfg.auto_commit_interval = Duration::from_millis(300);
    let mut a = member(&tansu.bootstrap(), cfg, &topic);
    let mut seen = Seen::new();
    pump(
        &mut [(0, &mut a)],
        &mut seen,
        Duration::from_secs(60),
        |_, s| covered(s, &first.next_offset),
    );
    let tps: Vec<_> = (0..2)
        .map(|p| weir_consumer::coordinator::TopicPartition::new(topic.clone(), p))
        .collect();
    // No commit call: the interval commits what the handler finished.
    pump(
        &mut [(0, &mut a)],
        &mut seen,
        Duration::from_secs(10),
        |m, _| {
            tps.iter()
                .all(|tp| m[0].1.committed(tp) == Some(first.next_offset[&tp.partition]))
        },
    );

    // commit_async: nothing new to commit answers Ok at once.
    let outcome: Arc<Mutex<Vec<bool>>> = Arc::default();
    let o = Arc::clone(&outcome);
    a.commit_async(move |r| o.lock().unwrap().push(r.is_ok()));
    assert_eq!(*outcome.lock().unwrap(), [true]);
    // New records, then an async commit well before the auto-commit interval.
    let second = Producer::new(&tansu.bootstrap(), &topic)
        .partitions(2)
        .count(5)
        .start_seq(100)
        .run();
    pump(
        &mut [(0, &mut a)],
        &mut seen,
        Duration::from_secs(30),
        |_, s| covered(s, &second.next_offset),
    );
    let o = Arc::clone(&outcome);
    a.commit_async(move |r| o.lock().unwrap().push(r.is_ok()));
    pump(
        &mut [(0, &mut a)],
        &mut seen,
        Duration::from_secs(10),
        |_, _| outcome.lock().unwrap().len() == 2,
    );
    assert_eq!(*outcome.lock().unwrap(), [true, true]);
    for tp in &tps {
        assert_eq!(a.committed(tp), Some(second.next_offset[&tp.partition]));
    }
    assert_eq!(check_no_loss(&seen, &second.next_offset), 0);
    a.close(Duration::from_secs(10)).unwrap();
}

// ---------------------------------------------------------------------------------
// group.protocol=consumer (KIP-848). The test broker sets the consumer groups' heartbeat
// interval to 1 s and their session timeout to 10 s (scripts/kafka-config.sh).
// ---------------------------------------------------------------------------------

const CONSUMER_SESSION: Duration = Duration::from_secs(10);

fn consumer_config(group: &str) -> GroupConfig {
    let mut g = GroupConfig::new(group);
    g.group_protocol = GroupProtocol::Consumer;
    g.rebalance_timeout = Some(Duration::from_secs(10));
    g.auto_offset_reset = AutoOffsetReset::Earliest;
    g.enable_auto_commit = false;
    g
}

/// The shared broker's address, a fresh topic of `partitions` with `count` records in
/// each (from librdkafka), and a fresh group name.
fn consumer_setup(prefix: &str, partitions: i32, count: usize) -> (String, String, String) {
    let bs = Broker::shared().bootstrap();
    let topic = unique_topic(prefix);
    let group = unique_topic(&format!("grp-{prefix}"));
    Producer::new(&bs, &topic)
        .partitions(partitions)
        .count(count)
        .run();
    (bs, topic, group)
}

/// One 50 ms poll of weir member 0.
fn poll_once(a: &mut GroupConsumer, seen: &mut Seen) {
    a.poll(Duration::from_millis(50), |r| {
        seen.push((0, r.partition, r.offset()))
    })
    .unwrap();
}

fn all_stable(n: usize) -> impl FnMut(&[(usize, &mut GroupConsumer)], &Seen) -> bool {
    move |m, _| {
        m.iter()
            .all(|(_, x)| x.phase() == Phase::Stable && x.assignment().len() == n)
    }
}

fn kafka_topics(bootstrap: &str, args: &[&str]) {
    let out = std::process::Command::new("bash")
        .arg(support::repo_root().join("scripts/kafka-tool.sh"))
        .args(["kafka-topics", "--bootstrap-server", bootstrap])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kafka-topics {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A consumer-protocol group grows from one member to three and back to one while
/// records flow: the broker's assignor splits six partitions two each, every handoff
/// revokes (and commits) before the next owner starts, and nothing is lost or handled
/// twice. Fails if reconciliation assigns before the revocation is acknowledged, or
/// if commits lack the member epoch (the broker refuses them: records repeat).
#[test]
fn consumer_protocol_grow_and_shrink() {
    grow_and_shrink("consumer protocol", consumer_config);
}

/// weir, the Java KafkaConsumer and librdkafka in one group, all on
/// group.protocol=consumer: the broker splits six partitions between the three, no
/// partition is owned twice, and after the peers leave weir takes everything back
/// and reaches every end: nothing is lost (the peers commit as they go).
#[test]
fn consumer_protocol_mixed_with_java_and_librdkafka() {
    let (bs, topic, group) = consumer_setup("c-mixed", 6, 20);
    let mut a = member(&bs, consumer_config(&group), &topic);
    let mut seen = Seen::new();
    pump(
        &mut [(0, &mut a)],
        &mut seen,
        Duration::from_secs(60),
        all_stable(6),
    );
    let mut java = JavaPeer::start(&bs, &group, &[&topic], &["group.protocol=consumer"]);
    let rd = RdkafkaConsume::new(&bs, &topic)
        .group(&group)
        .run_seconds(30.0)
        .property("group.protocol", "consumer")
        .property("enable.auto.commit", "true")
        .property("auto.commit.interval.ms", "100");
    let peer = std::thread::spawn(move || rd.run());
    // The three split the partitions two each.
    let end = Instant::now() + Duration::from_secs(30);
    let (mine, theirs_java) = loop {
        poll_once(&mut a, &mut seen);
        let j = java.owned();
        if a.phase() == Phase::Stable && a.assignment().len() == 2 && j.len() == 2 {
            let mine: BTreeSet<i32> = a.assignment().iter().map(|tp| tp.partition).collect();
            break (mine, j);
        }
        assert!(
            Instant::now() < end,
            "no 2/2/2 split: weir {:?}, java {j:?}",
            a.assignment()
        );
    };
    assert!(
        mine.is_disjoint(&theirs_java),
        "weir {mine:?}, java {theirs_java:?}"
    );
    let (b2, t2) = (bs.clone(), topic.clone());
    let more = std::thread::spawn(move || {
        Producer::new(&b2, &t2)
            .partitions(6)
            .count(10)
            .start_seq(100)
            .run()
    });
    while !more.is_finished() {
        poll_once(&mut a, &mut seen);
    }
    let produced = more.join().unwrap();
    // Let the peers read what was produced, then let them go.
    let settle = Instant::now() + Duration::from_secs(5);
    while Instant::now() < settle {
        poll_once(&mut a, &mut seen);
    }
    let java_records = java.records();
    drop(java);
    let end = Instant::now() + Duration::from_secs(60);
    while !peer.is_finished() {
        assert!(Instant::now() < end, "librdkafka did not finish");
        poll_once(&mut a, &mut seen);
    }
    let consumed = peer.join().unwrap();
    let rd_parts: BTreeSet<i32> = consumed
        .records
        .iter()
        .filter(|r| r.offset >= 20)
        .map(|r| r.partition)
        .collect();
    eprintln!("weir {mine:?}, java {theirs_java:?}, librdkafka read {rd_parts:?} after the split");
    assert!(
        rd_parts.is_disjoint(&mine) && rd_parts.is_disjoint(&theirs_java),
        "librdkafka read partitions another member owned"
    );
    assert!(!rd_parts.is_empty(), "librdkafka got partitions");
    // weir takes every partition back; it reads from the peers' commits.
    let end = Instant::now() + Duration::from_secs(60);
    while !(a.phase() == Phase::Stable && a.assignment().len() == 6) {
        assert!(
            Instant::now() < end,
            "weir did not take the partitions back: {:?}",
            a.assignment()
        );
        poll_once(&mut a, &mut seen);
    }
    let settle = Instant::now() + Duration::from_secs(3);
    while Instant::now() < settle {
        poll_once(&mut a, &mut seen);
    }
    // Nothing lost: every offset was handled by someone.
    let mut all: BTreeMap<i32, BTreeSet<i64>> = BTreeMap::new();
    for &(_, p, o) in &seen {
        all.entry(p).or_default().insert(o);
    }
    for &(p, o) in &java_records {
        all.entry(p).or_default().insert(o);
    }
    for r in &consumed.records {
        all.entry(r.partition).or_default().insert(r.offset);
    }
    for (p, end) in &produced.next_offset {
        let got = all.get(p).map_or(0, |s| s.range(..*end).count());
        assert_eq!(got as i64, *end, "partition {p}: records lost");
    }
    a.close(Duration::from_secs(10)).unwrap();
}

/// A static member (group.instance.id) closes and comes back within the session
/// timeout: it leaves with epoch -2, the broker keeps its partitions for it, and the
/// other member sees no callback at all. A second process with the same instance id
/// while the first is in the group fails with UNRELEASED_INSTANCE_ID and a message
/// saying what to do.
#[test]
fn consumer_protocol_static_member_restart_keeps_its_partitions() {
    let (bs, topic, group) = consumer_setup("c-static", 4, 5);
    let static_cfg = || {
        let mut c = consumer_config(&group);
        c.group_instance_id = Some("static-a".into());
        c
    };
    let mut a = member(&bs, static_cfg(), &topic);
    let mut b = member(&bs, consumer_config(&group), &topic);
    let log = Counter::default();
    b.set_listener(log.clone());
    let mut seen = Seen::new();
    pump(
        &mut [(0, &mut a), (1, &mut b)],
        &mut seen,
        Duration::from_secs(60),
        all_stable(2),
    );
    // Let b settle its early heartbeats and callbacks.
    let settle = Instant::now() + Duration::from_secs(2);
    while Instant::now() < settle {
        a.poll(Duration::from_millis(10), |r| {
            seen.push((0, r.partition, r.offset()))
        })
        .unwrap();
        b.poll(Duration::from_millis(10), |r| {
            seen.push((1, r.partition, r.offset()))
        })
        .unwrap();
    }
    let a_parts = a.assignment().clone();
    let b_parts = b.assignment().clone();
    let before = log.0.lock().unwrap().len();
    // The same instance id while a is in the group: refused.
    let mut dup = member(&bs, static_cfg(), &topic);
    let end = Instant::now() + Duration::from_secs(30);
    let err = loop {
        if let Err(e) = dup.poll(Duration::from_millis(50), |_| {}) {
            break e;
        }
        a.poll(Duration::from_millis(10), |r| {
            seen.push((0, r.partition, r.offset()))
        })
        .unwrap();
        b.poll(Duration::from_millis(10), |r| {
            seen.push((1, r.partition, r.offset()))
        })
        .unwrap();
        assert!(
            Instant::now() < end,
            "the duplicate instance was not refused"
        );
    };
    assert!(
        err.to_string().contains("group.instance.id"),
        "the message names the setting: {err}"
    );
    drop(dup);
    a.close(Duration::from_secs(10)).unwrap();
    drop(a);
    let away = Instant::now() + Duration::from_secs(3);
    while Instant::now() < away {
        b.poll(Duration::from_millis(20), |r| {
            seen.push((1, r.partition, r.offset()))
        })
        .unwrap();
        assert_eq!(
            b.assignment(),
            &b_parts,
            "b took the static member's partitions"
        );
    }
    let mut a2 = member(&bs, static_cfg(), &topic);
    pump(
        &mut [(0, &mut a2), (1, &mut b)],
        &mut seen,
        Duration::from_secs(30),
        all_stable(2),
    );
    assert_eq!(
        a2.assignment(),
        &a_parts,
        "the static member's own partitions"
    );
    assert_eq!(b.assignment(), &b_parts);
    let during = log.0.lock().unwrap()[before..].to_vec();
    assert!(during.is_empty(), "b saw a rebalance: {during:?}");
    a2.close(Duration::from_secs(10)).unwrap();
    b.close(Duration::from_secs(10)).unwrap();
}

/// A member that dies without leaving: the broker expires it after its session
/// timeout (10 s on the test broker), and its partitions move to the survivor.
#[test]
fn consumer_protocol_killed_member_partitions_move_after_session_timeout() {
    let (bs, topic, group) = consumer_setup("c-kill", 4, 5);
    let mut a = member(&bs, consumer_config(&group), &topic);
    let mut b = member(&bs, consumer_config(&group), &topic);
    let mut seen = Seen::new();
    pump(
        &mut [(0, &mut a), (1, &mut b)],
        &mut seen,
        Duration::from_secs(60),
        all_stable(2),
    );
    // Stop driving a and drop it without close (no leave heartbeat).
    std::mem::forget(a);
    let t = Instant::now();
    pump(
        &mut [(1, &mut b)],
        &mut seen,
        Duration::from_secs(40),
        all_stable(4),
    );
    let moved = t.elapsed();
    eprintln!("partitions moved after {moved:?}");
    assert!(
        moved >= CONSUMER_SESSION / 2,
        "moved after {moved:?}: too soon for a session expiry"
    );
    b.close(Duration::from_secs(10)).unwrap();
}

/// The broker assigns partitions a topic gains, and topics a regex subscription starts
/// to match when they are created (server-side regex, KIP-848).
#[test]
fn consumer_protocol_new_partitions_and_regex_topics_are_assigned() {
    let broker = Broker::shared();
    let bs = broker.bootstrap();
    let prefix = unique_topic("c-rx");
    let first = format!("{prefix}-a");
    Producer::new(&bs, &first).partitions(2).count(3).run();
    let group = unique_topic("grp-c-rx");
    let mut a = GroupConsumer::new(fetch_config(&bs), consumer_config(&group)).unwrap();
    a.subscribe_pattern(&format!("{}-.*", regex_lite::escape(&prefix)), true)
        .unwrap();
    let mut seen = Seen::new();
    pump(
        &mut [(0, &mut a)],
        &mut seen,
        Duration::from_secs(60),
        all_stable(2),
    );
    kafka_topics(&bs, &["--alter", "--topic", &first, "--partitions", "3"]);
    pump(
        &mut [(0, &mut a)],
        &mut seen,
        Duration::from_secs(60),
        all_stable(3),
    );
    let second = format!("{prefix}-b");
    Producer::new(&bs, &second).partitions(2).count(3).run();
    pump(
        &mut [(0, &mut a)],
        &mut seen,
        Duration::from_secs(90),
        |m, s| {
            m[0].1.assignment().len() == 5 && s.iter().filter(|x| x.1 >= 0).count() >= 2 * 3 + 2 * 3
        },
    );
    let topics: BTreeSet<String> = a
        .assignment()
        .iter()
        .map(|tp| tp.topic.to_string())
        .collect();
    assert_eq!(topics, BTreeSet::from([first, second]));
    a.close(Duration::from_secs(10)).unwrap();
}

/// A handler that stalls longer than `max.poll.interval.ms` under the consumer
/// protocol: at its next poll the member gives its partitions up as lost and leaves
/// (epoch -1), the other member takes every partition, and the stalled member joins
/// again at the poll after that and gets its share back.
#[test]
fn consumer_protocol_stalled_handler_leaves_and_rejoins() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let (bs, topic, group) = consumer_setup("c-stall", 4, 5);
    let mut cfg = consumer_config(&group);
    cfg.max_poll_interval = Duration::from_secs(2);
    let mut a = member(&bs, cfg.clone(), &topic);
    let log = Counter::default();
    a.set_listener(log.clone());
    // b polls on its own thread, so it heartbeats while a's handler stalls.
    let stop = Arc::new(AtomicBool::new(false));
    let b_owned = Arc::new(AtomicUsize::new(0));
    let b_thread = {
        let (stop, b_owned) = (stop.clone(), b_owned.clone());
        let (bs, topic) = (bs.clone(), topic.clone());
        let mut b_cfg = consumer_config(&group);
        b_cfg.max_poll_interval = Duration::from_secs(60);
        std::thread::spawn(move || {
            let mut b = member(&bs, b_cfg, &topic);
            while !stop.load(Ordering::Relaxed) {
                b.poll(Duration::from_millis(20), |_| {}).unwrap();
                b_owned.store(b.assignment().len(), Ordering::Relaxed);
            }
            b.close(Duration::from_secs(10)).unwrap();
        })
    };
    let mut seen = Seen::new();
    let end = Instant::now() + Duration::from_secs(60);
    while !(a.phase() == Phase::Stable
        && a.assignment().len() == 2
        && b_owned.load(Ordering::Relaxed) == 2)
    {
        assert!(Instant::now() < end, "no 2/2 split");
        a.poll(Duration::from_millis(20), |r| {
            seen.push((0, r.partition, r.offset()))
        })
        .unwrap();
    }
    // More records; the handler stalls on the first one a gets, for twice
    // max.poll.interval.ms.
    // (From a thread: a waits for them polling, so only the stall is a gap.)
    let more = {
        let (bs, topic) = (bs.clone(), topic.clone());
        std::thread::spawn(move || {
            Producer::new(&bs, &topic)
                .partitions(4)
                .count(5)
                .start_seq(5)
                .run()
        })
    };
    // Only the callbacks from the stall on count.
    let before = log.0.lock().unwrap().len();
    let after = |log: &Counter| log.0.lock().unwrap()[before..].to_vec();
    let mut stalled = false;
    let t = Instant::now();
    while !stalled {
        assert!(t.elapsed() < Duration::from_secs(30), "a got no record");
        a.poll(Duration::from_millis(20), |r| {
            if !stalled {
                stalled = true;
                std::thread::sleep(Duration::from_secs(4));
            }
            seen.push((0, r.partition, r.offset()))
        })
        .unwrap();
    }
    let t = Instant::now();
    let lost = |log: &Counter| after(log).iter().any(|e| e == "lost 2");
    while !(lost(&log) && a.phase() == Phase::Stable && a.assignment().len() == 2) {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "a did not leave and rejoin: {:?} {:?}, callbacks {:?}",
            a.phase(),
            a.assignment(),
            log.0.lock().unwrap()
        );
        a.poll(Duration::from_millis(20), |r| {
            seen.push((0, r.partition, r.offset()))
        })
        .unwrap();
    }
    assert!(
        !after(&log).iter().any(|e| e.starts_with("revoked")),
        "after a poll timeout the partitions are lost, not revoked: {:?}",
        after(&log)
    );
    more.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    b_thread.join().unwrap();
    a.close(Duration::from_secs(10)).unwrap();
}
