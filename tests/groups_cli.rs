//! `weir groups list` and `weir groups describe` against a real broker (tansu), with a
//! librdkafka member committing offsets. Needs `scripts/install-tansu.sh` and
//! `scripts/setup-python.sh`.

mod support;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::peer::{Producer, RdkafkaConsume};
use support::tansu::{Storage, Tansu, free_port};
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
    let tansu = Tansu::start(Storage::Memory);
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
fn describe_shows_a_live_member_and_its_assignment() {
    let tansu = Tansu::start(Storage::Memory);
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
            && rows.len() == 3
            && rows.iter().all(|r| {
                let p: i32 = r[2].parse().unwrap_or(-1);
                r[3] == manifest.next_offset[&p].to_string() && r[6] != "-"
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
        assert_eq!(r[5], "0", "no lag:\n{stdout}");
        assert_eq!(r[8], "groups-cli-test", "CLIENT-ID:\n{stdout}");
    }
    assert!(stdout.contains("1 member(s)"), "{stdout}");
    assert!(stdout.contains("protocol consumer/"), "{stdout}");
    // The members table: the assignment decoded from the member's bytes.
    let member_line = stdout
        .lines()
        .find(|l| l.contains("groups-cli-test") && l.contains(&format!("{topic}(0,1,2)")))
        .unwrap_or_else(|| panic!("no member line with the assignment:\n{stdout}"));
    assert!(
        member_line.split_whitespace().any(|c| c == "3"),
        "{member_line}"
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
    let tansu = Tansu::start(Storage::Memory);
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
