//! `weir groups list` and `weir groups describe` against a real broker (Apache Kafka; tansu with WEIR_TEST_BROKER=tansu), with a
//! librdkafka member committing offsets. Needs `scripts/install-kafka.sh` and
//! `scripts/setup-python.sh`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::broker::Broker;
use support::free_port;
use support::peer::{JavaPeer, Producer, RdkafkaConsume};
use support::unique_topic;

fn weir(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .output()
        .expect("run the weir binary")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The partition rows of `describe` output: (topic, partition) -> the other columns.
fn rows(stdout: &str, group: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(group))
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

#[test]
fn describe_shows_committed_offsets_log_end_and_lag_after_a_member_commits() {
    let tansu = Broker::shared();
    let b = tansu.bootstrap();
    let topic = unique_topic("groups");
    let group = unique_topic("groups-g");
    let first = Producer::new(&b, &topic).partitions(3).count(30).run();
    // librdkafka reads everything there is and commits it on close (auto commit).
    let consumed = RdkafkaConsume::new(&b, &topic)
        .group(&group)
        .session_timeout_ms(6000)
        .property("enable.auto.commit", "true")
        .run();
    assert_eq!(consumed.records.len(), first.count());
    // Then more records arrive that the group has not read: that is the lag.
    let second = Producer::new(&b, &topic)
        .partitions(3)
        .count(21)
        .start_seq(30)
        .run();

    let out = weir(&["groups", "describe", &group, "-b", &b]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "describe failed: {stderr}\n{stdout}");
    assert!(
        stdout.contains("GROUP") && stdout.contains("LOG-END-OFFSET") && stdout.contains("LAG"),
        "{stdout}"
    );
    eprintln!("{stdout}");
    let rows = rows(&stdout, &group);
    assert_eq!(rows.len(), 3, "one row per partition:\n{stdout}");
    let mut total = 0;
    for p in 0..3 {
        let row = rows
            .iter()
            .find(|r| r[1] == topic && r[2] == p.to_string())
            .unwrap_or_else(|| panic!("no row for partition {p}:\n{stdout}"));
        let committed = first.next_offset[&p];
        let end = second.next_offset[&p];
        assert!(end > committed, "partition {p} got new records");
        assert_eq!(
            row[3],
            committed.to_string(),
            "CURRENT-OFFSET p{p}:\n{stdout}"
        );
        assert_eq!(row[4], end.to_string(), "LOG-END-OFFSET p{p}:\n{stdout}");
        assert_eq!(row[5], (end - committed).to_string(), "LAG p{p}:\n{stdout}");
        // The member has left: nobody owns the partition.
        assert_eq!(&row[6..], ["-", "-", "-"], "owner p{p}:\n{stdout}");
        total += end - committed;
    }
    assert_eq!(total as usize, second.count());
    assert!(stdout.contains(&format!("total lag {total}")), "{stdout}");
    assert!(stdout.contains("has no active members"), "{stdout}");

    let out = weir(&["groups", "list", "-b", &b]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "list failed: {stderr}\n{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(group.as_str()))
        .unwrap_or_else(|| panic!("group {group} not listed:\n{stdout}"));
    eprintln!("list line: {line}");
}

#[test]
fn describe_shows_a_live_member_with_no_lag() {
    let tansu = Broker::shared();
    let b = tansu.bootstrap();
    let topic = unique_topic("groups-live");
    let group = unique_topic("groups-live-g");
    let manifest = Producer::new(&b, &topic).partitions(3).count(12).run();
    let member = {
        let (b, topic, group) = (b.clone(), topic.clone(), group.clone());
        std::thread::spawn(move || {
            RdkafkaConsume::new(&b, &topic)
                .group(&group)
                .session_timeout_ms(6000)
                .property("enable.auto.commit", "true")
                .property("auto.commit.interval.ms", "100")
                .property("client.id", "groups-cli-test")
                .run_seconds(15.0)
                .quiet()
                .run()
        })
    };
    // Wait until the member holds every partition and has committed to the end.
    let deadline = Instant::now() + Duration::from_secs(12);
    let stdout = loop {
        let out = weir(&["groups", "describe", &group, "-b", &b]);
        let (stdout, stderr) = text(&out);
        let rows = rows(&stdout, &group);
        let done = out.status.success()
            && stdout.contains("state Stable")
            && stdout.contains("1 member(s)")
            && rows.len() == 3
            && rows.iter().all(|r| {
                let p: i32 = r[2].parse().unwrap_or(-1);
                r[3] == manifest.next_offset[&p].to_string()
            });
        if done {
            break stdout;
        }
        assert!(
            Instant::now() < deadline,
            "the member never showed up with its commits: {stderr}\n{stdout}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    for r in rows(&stdout, &group) {
        let p: i32 = r[2].parse().expect("partition");
        assert_eq!(
            r[4],
            manifest.next_offset[&p].to_string(),
            "LOG-END:\n{stdout}"
        );
        assert_eq!(r[5], "0", "no lag:\n{stdout}");
    }
    // The members table names the member (librdkafka's member id starts with its
    // client.id). tansu 0.6.0's DescribeGroups carries no client id, host or
    // assignment bytes, so which partition it owns is checked against the scripted
    // broker (describe_decodes_assignments_into_owners) instead.
    assert!(
        stdout.lines().any(|l| l.starts_with("groups-cli-test-")),
        "no member line:\n{stdout}"
    );

    let out = weir(&["groups", "list", "-b", &b]);
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(group.as_str()))
        .unwrap_or_else(|| panic!("group {group} not listed:\n{stdout}"));
    assert!(line.contains("consumer"), "{line}");
    member.join().expect("member thread");
}

#[test]
fn describe_of_an_unknown_group_says_so_and_exits_1() {
    let tansu = Broker::shared();
    let b = tansu.bootstrap();
    let out = weir(&["groups", "describe", "no-such-group-here", "-b", &b]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("consumer group `no-such-group-here` does not exist"),
        "{stderr}"
    );
    assert!(
        stderr.contains("weir groups list"),
        "says what to check: {stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
}

#[test]
fn an_unreachable_broker_is_named_with_what_was_tried() {
    // Nothing listens on this port.
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    for args in [
        vec!["groups", "list"],
        vec!["groups", "describe", "some-group"],
    ] {
        let started = Instant::now();
        let mut all = args.clone();
        all.extend(["-b", &addr, "-X", "default.api.timeout.ms=1500"]);
        let out = weir(&all);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(&addr), "names the address: {stderr}");
        assert!(
            stderr.contains("tried to connect for") && stderr.contains("check -b"),
            "says what was tried and what to check: {stderr}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{args:?} gave up late"
        );
    }
}

#[test]
fn a_bad_property_is_a_usage_error() {
    let out = weir(&[
        "groups",
        "list",
        "-b",
        "127.0.0.1:9",
        "-X",
        "default.api.timeout.ms=soon",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out).1);
}

// ---------------------------------------------------------------- scripted broker

mod scripted_cases {
    use super::*;
    use kafka_protocol::messages::describe_groups_response::{
        DescribedGroup, DescribedGroupMember,
    };
    use kafka_protocol::messages::list_groups_response::ListedGroup;
    use kafka_protocol::messages::offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
    };
    use kafka_protocol::messages::{
        ApiKey, DescribeGroupsResponse, GroupId, ListGroupsResponse, OffsetFetchResponse,
        ResponseKind, TopicName,
    };
    use kafka_protocol::protocol::StrBytes;
    use support::scripted::{Action, KeyValue, ScriptedBroker, uncompressed_batch};
    use weir_consumer::coordinator::{Assignment, TopicPartition};

    fn s(x: &str) -> StrBytes {
        StrBytes::from_string(x.to_owned())
    }

    fn member(id: &str, instance: Option<&str>, parts: &[(&str, i32)]) -> DescribedGroupMember {
        let a = Assignment {
            partitions: parts
                .iter()
                .map(|(t, p)| TopicPartition::new(*t, *p))
                .collect(),
            user_data: None,
        };
        DescribedGroupMember::default()
            .with_member_id(s(id))
            .with_group_instance_id(instance.map(s))
            .with_client_id(s(&format!("client-{id}")))
            .with_client_host(s("/10.0.0.7"))
            .with_member_assignment(a.encode(3).into())
    }

    fn append(b: &ScriptedBroker, topic: &str, p: i32, n: i64) {
        append_at(b, topic, p, 0, n);
    }

    fn append_at(b: &ScriptedBroker, topic: &str, p: i32, base: i64, n: i64) {
        let recs: Vec<KeyValue<'_>> = (0..n).map(|_| (None, Some(&b"v"[..]))).collect();
        b.append_batch(topic, p, uncompressed_batch(base, 1_700_000_000_000, &recs));
    }

    /// Two members with decoded assignments; one committed partition nobody owns; one
    /// owned partition with no commit yet.
    #[test]
    fn describe_decodes_assignments_into_owners() {
        let b = ScriptedBroker::start();
        b.with_cluster(|c| c.api_versions.push((ApiKey::DescribeGroups as i16, 0, 5)));
        b.add_topic("orders", 4);
        for (p, n) in [(0, 10), (1, 5), (2, 7)] {
            append(&b, "orders", p, n);
        }
        // Retention removed offsets 0..5: a Fetch from 0 is out of range, so the log
        // end comes from a second Fetch at the earliest offset.
        b.set_log_start_offset("orders", 3, 5);
        append_at(&b, "orders", 3, 5, 7);
        b.push(
            ApiKey::DescribeGroups,
            Action::Respond(ResponseKind::DescribeGroups(
                DescribeGroupsResponse::default().with_groups(vec![
                    DescribedGroup::default()
                        .with_group_id(GroupId(s("billing")))
                        .with_group_state(s("Stable"))
                        .with_protocol_type(s("consumer"))
                        .with_protocol_data(s("range"))
                        .with_members(vec![
                            member("m-1", Some("static-1"), &[("orders", 0)]),
                            member("m-2", None, &[("orders", 3), ("orders", 1)]),
                        ]),
                ]),
            )),
        );
        let committed = |p: i32, o: i64| {
            OffsetFetchResponsePartitions::default()
                .with_partition_index(p)
                .with_committed_offset(o)
        };
        b.push(
            ApiKey::OffsetFetch,
            Action::Respond(ResponseKind::OffsetFetch(
                OffsetFetchResponse::default().with_groups(vec![
                    OffsetFetchResponseGroup::default()
                        .with_group_id(GroupId(s("billing")))
                        .with_topics(vec![
                            OffsetFetchResponseTopics::default()
                                .with_name(TopicName(s("orders")))
                                .with_partitions(vec![committed(0, 3), committed(2, 7)]),
                        ]),
                ]),
            )),
        );
        let out = weir(&["groups", "describe", "billing", "-b", &b.bootstrap()]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}\n{stdout}");
        let rows = rows(&stdout, "billing");
        let want = [
            [
                "billing",
                "orders",
                "0",
                "3",
                "10",
                "7",
                "m-1",
                "/10.0.0.7",
                "client-m-1",
            ],
            [
                "billing",
                "orders",
                "1",
                "-",
                "5",
                "-",
                "m-2",
                "/10.0.0.7",
                "client-m-2",
            ],
            ["billing", "orders", "2", "7", "7", "0", "-", "-", "-"],
            [
                "billing",
                "orders",
                "3",
                "-",
                "12",
                "-",
                "m-2",
                "/10.0.0.7",
                "client-m-2",
            ],
        ];
        assert_eq!(
            rows,
            want.map(|r| r.map(str::to_owned).to_vec()).to_vec(),
            "{stdout}"
        );
        assert!(
            stdout.contains("state Stable, 2 member(s), protocol consumer/range"),
            "{stdout}"
        );
        assert!(stdout.contains("total lag 7"), "{stdout}");
        let m1: Vec<&str> = stdout
            .lines()
            .find(|l| l.starts_with("m-1 "))
            .unwrap_or_else(|| panic!("{stdout}"))
            .split_whitespace()
            .collect();
        assert_eq!(
            m1,
            [
                "m-1",
                "static-1",
                "/10.0.0.7",
                "client-m-1",
                "1",
                "orders(0)"
            ]
        );
        let m2: Vec<&str> = stdout
            .lines()
            .find(|l| l.starts_with("m-2 "))
            .unwrap_or_else(|| panic!("{stdout}"))
            .split_whitespace()
            .collect();
        assert_eq!(
            m2,
            ["m-2", "-", "/10.0.0.7", "client-m-2", "2", "orders(1,3)"]
        );
        let earliest = b.requests_of(ApiKey::ListOffsets);
        assert_eq!(
            earliest.len(),
            1,
            "one ListOffsets(earliest) for partition 3"
        );
        assert!(b.errors().is_empty(), "{:?}", b.errors());
    }

    fn stable_group(id: &str) -> DescribedGroup {
        DescribedGroup::default()
            .with_group_id(GroupId(s(id)))
            .with_group_state(s("Stable"))
            .with_protocol_type(s("consumer"))
            .with_protocol_data(s("range"))
            .with_members(vec![member("m-1", None, &[("t", 0)])])
    }

    /// A coordinator that is loading, then one that moved, is asked again (after
    /// FindCoordinator for the move) until it answers.
    #[test]
    fn describe_retries_a_loading_or_moved_coordinator() {
        let b = ScriptedBroker::start();
        b.with_cluster(|c| c.api_versions.push((ApiKey::DescribeGroups as i16, 0, 5)));
        b.add_topic("t", 1);
        append(&b, "t", 0, 4);
        for code in [14, 16] {
            b.push(
                ApiKey::DescribeGroups,
                Action::Respond(ResponseKind::DescribeGroups(
                    DescribeGroupsResponse::default().with_groups(vec![
                        DescribedGroup::default()
                            .with_group_id(GroupId(s("g")))
                            .with_error_code(code),
                    ]),
                )),
            );
        }
        b.push(
            ApiKey::DescribeGroups,
            Action::Respond(ResponseKind::DescribeGroups(
                DescribeGroupsResponse::default().with_groups(vec![stable_group("g")]),
            )),
        );
        b.push(
            ApiKey::OffsetFetch,
            Action::Respond(ResponseKind::OffsetFetch(
                OffsetFetchResponse::default().with_groups(vec![
                    OffsetFetchResponseGroup::default().with_group_id(GroupId(s("g"))),
                ]),
            )),
        );
        let out = weir(&[
            "groups",
            "describe",
            "g",
            "-b",
            &b.bootstrap(),
            "-X",
            "retry.backoff.ms=20",
        ]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}\n{stdout}");
        assert_eq!(
            rows(&stdout, "g"),
            [[
                "g",
                "t",
                "0",
                "-",
                "4",
                "-",
                "m-1",
                "/10.0.0.7",
                "client-m-1"
            ]
            .map(str::to_owned)]
        );
        assert_eq!(b.requests_of(ApiKey::DescribeGroups).len(), 3);
        assert_eq!(b.requests_of(ApiKey::FindCoordinator).len(), 3);
    }

    /// The coordinator FindCoordinator names cannot be reached: the message names it
    /// and where the address came from.
    #[test]
    fn an_unreachable_coordinator_is_named() {
        let b = ScriptedBroker::start();
        let port = free_port();
        b.with_cluster(|c| {
            c.nodes.push((7, port));
            c.coordinator_id = 7;
        });
        let out = weir(&[
            "groups",
            "describe",
            "g",
            "-b",
            &b.bootstrap(),
            "-X",
            "default.api.timeout.ms=1500",
        ]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
        assert!(
            stderr.contains(&format!(
                "cannot reach the group coordinator broker 127.0.0.1:{port}"
            )),
            "{stderr}"
        );
        assert!(stderr.contains("advertised.listeners"), "{stderr}");
    }

    /// ListGroups goes to every broker Metadata names, and the answers are merged.
    #[test]
    fn list_asks_every_broker_and_merges() {
        let b = ScriptedBroker::with_nodes(&[0, 1]);
        b.with_cluster(|c| c.api_versions.push((ApiKey::ListGroups as i16, 0, 5)));
        b.on(ApiKey::ListGroups, |ctx, _, _| {
            let g = |id: &str, state: &str| {
                ListedGroup::default()
                    .with_group_id(GroupId(s(id)))
                    .with_protocol_type(s("consumer"))
                    .with_group_state(s(state))
            };
            let groups = if ctx.node_id == 0 {
                vec![g("alpha", "Stable"), g("shared", "Empty")]
            } else {
                vec![g("beta", "Empty"), g("shared", "Empty")]
            };
            Some(Action::Respond(ResponseKind::ListGroups(
                ListGroupsResponse::default().with_groups(groups),
            )))
        });
        let out = weir(&["groups", "list", "-b", &b.bootstrap()]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}\n{stdout}");
        let lines: Vec<Vec<&str>> = stdout
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            lines,
            [
                ["alpha", "consumer", "Stable"],
                ["beta", "consumer", "Empty"],
                ["shared", "consumer", "Empty"]
            ],
            "{stdout}"
        );
        let asked: std::collections::BTreeSet<i32> = b
            .requests_of(ApiKey::ListGroups)
            .iter()
            .map(|r| r.node_id)
            .collect();
        assert_eq!(asked, [0, 1].into());
    }
}

// ------------------------------------------------------- weir against Kafka's own tool

/// `kafka-consumer-groups ARGS` (Kafka's reference tool): its stdout.
fn kafka_groups(bootstrap: &str, args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(support::repo_root().join("scripts/kafka-tool.sh"))
        .args(["kafka-consumer-groups", "--bootstrap-server", bootstrap])
        .args(args)
        .output()
        .expect("run kafka-consumer-groups");
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "kafka-consumer-groups {args:?} failed: {stderr}\n{stdout}"
    );
    stdout
}

/// Partition rows of a `--describe` table (weir's or Kafka's, same columns): (topic,
/// partition) -> CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID.
fn partition_table(stdout: &str, group: &str) -> BTreeMap<(String, i32), Vec<String>> {
    rows(stdout, group)
        .into_iter()
        .map(|r| {
            assert_eq!(r.len(), 9, "a row of nine columns: {r:?}\n{stdout}");
            let p: i32 = r[2].parse().unwrap_or_else(|_| panic!("partition {r:?}"));
            ((r[1].clone(), p), r[3..].to_vec())
        })
        .collect()
}

/// One member as both tools show it: host, client id, and its partitions.
type MemberView = (String, String, BTreeSet<(String, i32)>);

/// The members of `kafka-consumer-groups --describe --members --verbose`: consumer id
/// -> (host, client id, partitions). The #PARTITIONS column is checked against the
/// listed assignment (`topic:0,1,2`, topics separated by `;`, `-` for none).
fn kafka_members(stdout: &str, group: &str) -> BTreeMap<String, MemberView> {
    rows(stdout, group)
        .into_iter()
        .map(|r| {
            assert!(r.len() >= 7, "a member row: {r:?}\n{stdout}");
            let parts = kafka_parts(&r[6], stdout);
            assert_eq!(r[4], parts.len().to_string(), "#PARTITIONS of {r:?}");
            (r[1].clone(), (r[2].clone(), r[3].clone(), parts))
        })
        .collect()
}

/// The members table of `weir groups describe` (CONSUMER-ID GROUP-INSTANCE-ID HOST
/// CLIENT-ID #PARTITIONS ASSIGNMENT with `topic(0,1,2),topic2(0)`), like
/// [`kafka_members`].
/// `t:0,1;u:2` (kafka-consumer-groups) as a set; `-` for none.
fn kafka_parts(cell: &str, stdout: &str) -> BTreeSet<(String, i32)> {
    let mut parts = BTreeSet::new();
    if cell != "-" {
        for topic_parts in cell.split(';') {
            let (t, ps) = topic_parts
                .rsplit_once(':')
                .unwrap_or_else(|| panic!("assignment {topic_parts:?}\n{stdout}"));
            for p in ps.split(',') {
                parts.insert((t.to_owned(), p.parse().expect("partition")));
            }
        }
    }
    parts
}

/// `t(0,1),u(2)` (weir groups describe) as a set; `-` for none.
fn weir_parts(cell: &str, stdout: &str) -> BTreeSet<(String, i32)> {
    let mut parts = BTreeSet::new();
    if cell != "-" {
        // topic(0,1),other(2): split after each `)`.
        for chunk in cell.split_inclusive(')') {
            let chunk = chunk.trim_start_matches(',');
            let (t, ps) = chunk
                .strip_suffix(')')
                .and_then(|c| c.split_once('('))
                .unwrap_or_else(|| panic!("assignment {chunk:?}\n{stdout}"));
            for p in ps.split(',') {
                parts.insert((t.to_owned(), p.parse().expect("partition")));
            }
        }
    }
    parts
}

/// A consumer-protocol member's (current epoch, target epoch, target assignment).
type EpochView = (String, String, BTreeSet<(String, i32)>);

/// The KIP-848 columns of `--members --verbose` (CURRENT-EPOCH, TARGET-EPOCH,
/// TARGET-ASSIGNMENT), by member id.
fn kafka_epochs(stdout: &str, group: &str) -> BTreeMap<String, EpochView> {
    rows(stdout, group)
        .into_iter()
        .filter(|r| r.len() >= 9)
        .map(|r| {
            let target = kafka_parts(&r[8], stdout);
            (r[1].clone(), (r[5].clone(), r[7].clone(), target))
        })
        .collect()
}

/// The same columns of `weir groups describe`.
fn weir_epochs(stdout: &str) -> BTreeMap<String, EpochView> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("CONSUMER-ID "))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|r| r.len() == 9)
        .map(|r| {
            let target = weir_parts(r[8], stdout);
            (r[0].to_owned(), (r[6].to_owned(), r[7].to_owned(), target))
        })
        .collect()
}

fn weir_members(stdout: &str) -> BTreeMap<String, MemberView> {
    let mut lines = stdout
        .lines()
        .skip_while(|l| !l.starts_with("CONSUMER-ID "))
        .skip(1);
    let mut out = BTreeMap::new();
    for line in lines.by_ref().take_while(|l| !l.trim().is_empty()) {
        let r: Vec<&str> = line.split_whitespace().collect();
        assert!(
            r.len() == 6 || r.len() == 9,
            "a member row (9 columns with KIP-848 epochs): {line:?}\n{stdout}"
        );
        let parts = weir_parts(r[5], stdout);
        assert_eq!(r[4], parts.len().to_string(), "#PARTITIONS of {line:?}");
        out.insert(r[0].to_owned(), (r[2].to_owned(), r[3].to_owned(), parts));
    }
    out
}

fn stop_signal(child: &std::process::Child, sig: i32) {
    let pid = i32::try_from(child.id()).expect("pid fits i32");
    // SAFETY: kill(2) on a child this test spawned and has not reaped.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig})");
}

/// A group with two live weir members (held still with SIGSTOP, so the coordinator
/// keeps them, with their assignments, while neither reads or commits) and lag on a
/// five-partition topic, a group of the consumer protocol (KIP-848: the Java client
/// with group.protocol=consumer, which only ConsumerGroupDescribe describes), and an
/// empty group with commits on two topics: `weir groups
/// describe` shows, partition by partition, the CURRENT-OFFSET, LOG-END-OFFSET, LAG,
/// CONSUMER-ID, HOST and CLIENT-ID `kafka-consumer-groups --describe` shows, the
/// members `--describe --members --verbose` shows (ids, hosts, client ids, partition
/// counts and partitions), and `weir groups list` lists the test's groups (with their
/// states) exactly as `kafka-consumer-groups --list --state` does.
#[test]
fn groups_list_and_describe_agree_with_kafka_consumer_groups() {
    let broker = Broker::shared();
    if !broker.is_kafka() {
        eprintln!("skipped: kafka-consumer-groups needs Apache Kafka (WEIR_TEST_BROKER=tansu)");
        return;
    }
    let b = broker.bootstrap();
    let prefix = unique_topic("gcmp");
    let topic = format!("{prefix}-orders");
    let other = format!("{prefix}-audit");
    let live = format!("{prefix}-live");
    let empty = format!("{prefix}-empty");
    let kip848 = format!("{prefix}-kip848");
    let first = Producer::new(&b, &topic).partitions(5).count(40).run();
    let first_other = Producer::new(&b, &other).partitions(2).count(15).run();

    // The empty group: reads both topics to the end, commits, leaves.
    let out = weir(&[
        "consume",
        "-b",
        &b,
        "-G",
        &empty,
        &topic,
        &other,
        "-o",
        "beginning",
        "-e",
        "-q",
        "-X",
        "client.id=gcmp-empty",
    ]);
    assert!(out.status.success(), "weir -G -e: {}", text(&out).1);

    // The live group: two members, five partitions (range: 3 and 2).
    let member = |name: &str| {
        Command::new(env!("CARGO_BIN_EXE_weir"))
            .args([
                "consume",
                "-b",
                &b,
                "-G",
                &live,
                &topic,
                "-o",
                "beginning",
                "-q",
            ])
            .args(["-X", &format!("client.id={name}")])
            .args([
                "-X",
                "session.timeout.ms=45000",
                "-X",
                "heartbeat.interval.ms=500",
            ])
            .args(["-X", "auto.commit.interval.ms=100"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn a weir member")
    };
    let mut members = Reaped(vec![member("gcmp-a"), member("gcmp-b")]);
    // A group of the consumer protocol (KIP-848): the Java client, which keeps up.
    let java = JavaPeer::start(
        &b,
        &kip848,
        &[&topic],
        &[
            "group.protocol=consumer",
            "client.id=gcmp-java",
            "auto.offset.reset=earliest",
        ],
    );
    // Both in a stable generation, every partition committed at the end of `first`.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = weir(&["groups", "describe", &live, "-b", &b]);
        let (stdout, _) = text(&out);
        let table = partition_table(&stdout, &live);
        let settled = stdout.contains("state Stable, 2 member(s)")
            && table.len() == 5
            && table
                .iter()
                .all(|((_, p), r)| r[0] == first.next_offset[p].to_string() && r[3] != "-");
        if settled {
            break;
        }
        if Instant::now() > deadline {
            panic!("the live group never settled:\n{stdout}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    // Hold both members still: they stay in the group (the session timeout is far),
    // but read and commit nothing more, so the records below are lag.
    for m in &members.0 {
        stop_signal(m, libc::SIGSTOP);
    }
    let more = Producer::new(&b, &topic)
        .partitions(5)
        .count(3)
        .start_seq(40)
        .run();
    let more_odd = Producer::new(&b, &topic)
        .partitions(5)
        .only_partitions(&[1, 4])
        .count(5)
        .start_seq(43)
        .run();
    let more_other = Producer::new(&b, &other)
        .partitions(2)
        .only_partitions(&[1])
        .count(4)
        .start_seq(15)
        .run();

    let mut all_orders = first.clone();
    all_orders.merge(more.clone());
    all_orders.merge(more_odd.clone());
    // The Java member has read and committed everything, and is quiet.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = weir(&["groups", "describe", &kip848, "-b", &b]);
        let (stdout, stderr) = text(&out);
        let table = partition_table(&stdout, &kip848);
        let settled = stdout.contains("state Stable, 1 member(s)")
            && table.len() == 5
            && table
                .iter()
                .all(|((_, p), r)| r[0] == all_orders.next_offset[p].to_string() && r[3] != "-");
        if settled {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the KIP-848 group never caught up: {stderr}\n{stdout}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    for (group, ends) in [
        (&kip848, vec![(&topic, &all_orders, vec![])]),
        (&live, vec![(&topic, &first, vec![&more, &more_odd])]),
        (
            &empty,
            vec![
                (&topic, &first, vec![&more, &more_odd]),
                (&other, &first_other, vec![&more_other]),
            ],
        ),
    ] {
        let out = weir(&["groups", "describe", group, "-b", &b]);
        let (weir_out, stderr) = text(&out);
        assert!(out.status.success(), "weir describe {group}: {stderr}");
        let kafka_out = kafka_groups(&b, &["--describe", "--group", group]);
        eprintln!("weir:\n{weir_out}\nkafka-consumer-groups:\n{kafka_out}");
        let weir_table = partition_table(&weir_out, group);
        let kafka_table = partition_table(&kafka_out, group);
        assert_eq!(
            weir_table, kafka_table,
            "weir and kafka-consumer-groups disagree on {group}:\n{weir_out}\n{kafka_out}"
        );
        // And both are right: committed at the end of the first records, log end
        // after the later ones.
        let mut want_rows = 0;
        for (t, committed, later) in &ends {
            for (p, c) in &committed.next_offset {
                let end = later
                    .iter()
                    .filter_map(|m| m.next_offset.get(p))
                    .copied()
                    .max()
                    .unwrap_or(*c);
                let row = &weir_table[&((*t).clone(), *p)];
                assert_eq!(
                    row[..3],
                    [c.to_string(), end.to_string(), (end - c).to_string()],
                    "{t}-{p}:\n{weir_out}"
                );
                want_rows += 1;
            }
        }
        assert_eq!(weir_table.len(), want_rows, "{weir_out}");

        let kafka_out = kafka_groups(
            &b,
            &["--describe", "--group", group, "--members", "--verbose"],
        );
        eprintln!("kafka-consumer-groups --members --verbose:\n{kafka_out}");
        let kafka = kafka_members(&kafka_out, group);
        let weir = weir_members(&weir_out);
        assert_eq!(weir, kafka, "members of {group}:\n{weir_out}\n{kafka_out}");
        if *group == live {
            let clients: BTreeSet<&str> = weir.values().map(|m| m.1.as_str()).collect();
            assert_eq!(clients, BTreeSet::from(["gcmp-a", "gcmp-b"]));
            let mut counts: Vec<usize> = weir.values().map(|m| m.2.len()).collect();
            counts.sort_unstable();
            assert_eq!(counts, [2, 3], "range over five partitions");
            assert!(
                weir_table.values().all(|r| r[3] != "-"),
                "every partition owned:\n{weir_out}"
            );
        } else if *group == kip848 {
            assert!(
                weir_out.contains("state Stable, 1 member(s), protocol consumer/"),
                "{weir_out}"
            );
            let m: Vec<&MemberView> = weir.values().collect();
            assert_eq!(m.len(), 1, "{weir_out}");
            assert_eq!(
                (m[0].1.as_str(), m[0].2.len()),
                ("gcmp-java", 5),
                "{weir_out}"
            );
            // Member epochs and target assignments, as --members --verbose has them.
            let epochs = weir_epochs(&weir_out);
            assert_eq!(epochs.len(), 1, "the KIP-848 columns:\n{weir_out}");
            assert_eq!(
                epochs,
                kafka_epochs(&kafka_out, group),
                "{weir_out}\n{kafka_out}"
            );
        } else {
            assert!(weir.is_empty(), "{weir_out}");
            assert!(weir_out.contains("has no active members"), "{weir_out}");
        }
    }

    // The test's groups, and their states, as both list them.
    let weir_list = {
        let out = weir(&["groups", "list", "-b", &b]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "weir groups list: {stderr}");
        stdout
    };
    let kafka_list = kafka_groups(&b, &["--list", "--state"]);
    let ours = |text: &str, state_col: usize| -> BTreeMap<String, String> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{prefix}-")))
            .map(|l| {
                let c: Vec<&str> = l.split_whitespace().collect();
                (
                    c[0].to_owned(),
                    c.get(state_col).copied().unwrap_or("?").to_owned(),
                )
            })
            .collect()
    };
    let want = BTreeMap::from([
        (kip848.clone(), "Stable".to_owned()),
        (live.clone(), "Stable".to_owned()),
        (empty.clone(), "Empty".to_owned()),
    ]);
    assert_eq!(
        ours(&kafka_list, 1),
        want,
        "kafka-consumer-groups --list:\n{kafka_list}"
    );
    assert_eq!(ours(&weir_list, 2), want, "weir groups list:\n{weir_list}");
    // Plain --list (ids only) names the same groups.
    let plain = kafka_groups(&b, &["--list"]);
    let plain: BTreeSet<&str> = plain
        .lines()
        .filter(|l| l.starts_with(&format!("{prefix}-")))
        .collect();
    assert_eq!(
        plain,
        BTreeSet::from([live.as_str(), empty.as_str(), kip848.as_str()])
    );
    java.stop(Duration::from_secs(30));

    // Let the members go: they read the lag, commit, and leave on SIGTERM.
    for m in &members.0 {
        stop_signal(m, libc::SIGCONT);
        stop_signal(m, libc::SIGTERM);
    }
    for m in std::mem::take(&mut members.0) {
        let out = wait_bounded_child(m, Duration::from_secs(30));
        assert!(
            out.status.success(),
            "member: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Children SIGKILLed (and reaped) on drop, stopped ones too, so a failing test
/// leaves no process behind.
struct Reaped(Vec<std::process::Child>);

impl Drop for Reaped {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_bounded_child(mut child: std::process::Child, limit: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("weir did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect output")
}
