//! `weir groups reset-offsets` against Kafka, compared with what Kafka's own
//! `kafka-consumer-groups --reset-offsets` plans for the same group and
//! specification; `--execute` checked through Kafka's `--describe`; an active group
//! refused; usage mistakes exit 2.

mod support;

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::broker::Broker;
use support::peer::Producer;
use support::wait_bounded;

const WEIR: &str = env!("CARGO_BIN_EXE_weir");
/// 2026-12-06T09:30:00.000Z: record `seq` of each partition has CreateTime BASE + seq.
const BASE: i64 = 1_796_549_400_000;

fn weir(args: &[&str]) -> Output {
    let child = Command::new(WEIR)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weir");
    wait_bounded(child, Duration::from_secs(60), "weir groups reset-offsets")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn kafka_groups(bootstrap: &str, args: &[&str]) -> Output {
    Command::new("bash")
        .arg(support::repo_root().join("scripts/kafka-tool.sh"))
        .args(["kafka-consumer-groups", "--bootstrap-server", bootstrap])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run kafka-consumer-groups")
}

/// (topic, partition) -> the column `col` of a table with a header row naming it.
fn column(text: &str, col: &str) -> BTreeMap<(String, i32), String> {
    let mut lines = text.lines().skip_while(|l| !l.starts_with("GROUP "));
    let Some(header) = lines.next() else {
        return BTreeMap::new();
    };
    let names: Vec<&str> = header.split_whitespace().collect();
    let at = |n: &str| names.iter().position(|h| *h == n).expect("a column");
    let (t, p, c) = (at("TOPIC"), at("PARTITION"), at(col));
    lines
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|r| r.len() == names.len())
        .map(|r| {
            (
                (r[t].to_owned(), r[p].parse().expect("partition")),
                r[c].to_owned(),
            )
        })
        .collect()
}

struct Setup {
    bootstrap: String,
    topic: String,
    group: String,
}

/// A topic of 3 partitions x 20 records (timestamps BASE + seq) and a group that
/// committed partitions 0 and 1 (at 20 and 12), not 2.
fn setup(name: &str) -> Setup {
    let bootstrap = Broker::shared().bootstrap();
    let topic = support::unique_topic(name);
    let group = support::unique_topic(&format!("{name}-g"));
    Producer::new(&bootstrap, &topic)
        .partitions(3)
        .count(20)
        .timestamp_base(BASE)
        .run();
    // Commit exact positions with weir's own reset (checked below against Kafka's
    // describe), so the group's state does not depend on a consumer's timing.
    for (p, o) in [(0, 20), (1, 12)] {
        let t = format!("{topic}:{p}");
        let o = o.to_string();
        let r = weir(&[
            "groups",
            "reset-offsets",
            &group,
            "-b",
            &bootstrap,
            "--topic",
            &t,
            "--to-offset",
            &o,
            "--execute",
        ]);
        assert!(r.status.success(), "{}", err(&r));
    }
    Setup {
        bootstrap,
        topic,
        group,
    }
}

#[test]
fn every_reset_plan_matches_kafka_consumer_groups() {
    let s = setup("weir-reset");
    if Broker::shared().is_kafka() {
        let d = kafka_groups(&s.bootstrap, &["--describe", "--group", &s.group]);
        let cur = column(&out(&d), "CURRENT-OFFSET");
        assert_eq!(
            cur.get(&(s.topic.clone(), 0)).map(String::as_str),
            Some("20"),
            "{}",
            out(&d)
        );
        assert_eq!(
            cur.get(&(s.topic.clone(), 1)).map(String::as_str),
            Some("12"),
            "{}",
            out(&d)
        );
    }
    let csv = std::env::temp_dir().join(format!("{}.csv", s.group));
    std::fs::write(&csv, format!("{t},0,3\n{t},1,99\n{t},2,7\n", t = s.topic)).expect("csv");
    let csv_arg = csv.display().to_string();
    let all = s.topic.clone();
    let some = format!("{}:1,2", s.topic);
    let cases: Vec<Vec<&str>> = vec![
        vec!["--topic", &all, "--to-earliest"],
        vec!["--topic", &all, "--to-latest"],
        vec!["--topic", &all, "--to-current"],
        vec!["--topic", &all, "--to-offset", "5"],
        vec!["--topic", &all, "--to-offset", "500"],
        vec!["--all-topics", "--shift-by", "3"],
        vec!["--all-topics", "--shift-by=-15"],
        vec![
            "--topic",
            &some,
            "--to-datetime",
            "2026-12-06T09:30:00.010Z",
        ],
        vec!["--topic", &all, "--by-duration", "PT1H"],
        vec!["--topic", &all, "--from-file", &csv_arg],
        vec!["--all-topics", "--to-latest"],
    ];
    for case in &cases {
        let mut w = vec!["groups", "reset-offsets", &s.group, "-b", &s.bootstrap];
        w.extend(case);
        let mine = weir(&w);
        assert!(mine.status.success(), "{case:?}: {}", err(&mine));
        assert!(
            err(&mine).contains("dry run (nothing was changed)"),
            "{}",
            err(&mine)
        );
        let plan = column(&out(&mine), "NEW-OFFSET");
        assert!(!plan.is_empty(), "{case:?}: {}", out(&mine));
        if Broker::shared().is_kafka() {
            let mut k = vec!["--group", &s.group, "--reset-offsets", "--dry-run"];
            k.extend(case);
            let theirs = kafka_groups(&s.bootstrap, &k);
            assert!(theirs.status.success(), "kafka {case:?}: {}", err(&theirs));
            assert_eq!(plan, column(&out(&theirs), "NEW-OFFSET"), "{case:?}");
        }
    }
    // What the cases above must have computed (so a change in both tools cannot
    // pass unnoticed): the datetime lands on seq 10, the file's 99 is clamped.
    let dt = weir(&[
        "groups",
        "reset-offsets",
        &s.group,
        "-b",
        &s.bootstrap,
        "--topic",
        &some,
        "--to-datetime",
        "2026-12-06T09:30:00.010Z",
        "--export",
    ]);
    assert_eq!(out(&dt), format!("{t},1,10\n{t},2,10\n", t = s.topic));
    let f = weir(&[
        "groups",
        "reset-offsets",
        &s.group,
        "-b",
        &s.bootstrap,
        "--topic",
        &all,
        "--from-file",
        &csv_arg,
        "--export",
    ]);
    assert_eq!(
        out(&f),
        format!("{t},0,3\n{t},1,20\n{t},2,7\n", t = s.topic)
    );
    assert!(
        err(&f).contains("is past its log end; 20 is used"),
        "{}",
        err(&f)
    );
    // Shifting a partition without a committed offset is refused, as Kafka does.
    let sh = weir(&[
        "groups",
        "reset-offsets",
        &s.group,
        "-b",
        &s.bootstrap,
        "--topic",
        &all,
        "--shift-by",
        "1",
    ]);
    assert_eq!(sh.status.code(), Some(1), "{}", err(&sh));
    assert!(
        err(&sh).contains(&format!("cannot shift {}-2", s.topic)),
        "{}",
        err(&sh)
    );
    let _ = std::fs::remove_file(&csv);
}

#[test]
fn execute_commits_what_the_plan_says_and_an_active_group_is_refused() {
    let s = setup("weir-reset-exec");
    let r = weir(&[
        "groups",
        "reset-offsets",
        &s.group,
        "-b",
        &s.bootstrap,
        "--all-topics",
        "--to-offset",
        "4",
        "--execute",
    ]);
    assert!(r.status.success(), "{}", err(&r));
    assert!(!err(&r).contains("dry run"), "{}", err(&r));
    let plan = column(&out(&r), "NEW-OFFSET");
    assert_eq!(plan.values().collect::<Vec<_>>(), ["4", "4"], "{}", out(&r));
    let d = weir(&["groups", "describe", &s.group, "-b", &s.bootstrap]);
    let cur = column(&out(&d), "CURRENT-OFFSET");
    assert_eq!(
        cur.get(&(s.topic.clone(), 0)).map(String::as_str),
        Some("4"),
        "{}",
        out(&d)
    );
    assert_eq!(
        cur.get(&(s.topic.clone(), 1)).map(String::as_str),
        Some("4"),
        "{}",
        out(&d)
    );
    if Broker::shared().is_kafka() {
        let k = kafka_groups(&s.bootstrap, &["--describe", "--group", &s.group]);
        assert_eq!(column(&out(&k), "CURRENT-OFFSET"), cur, "{}", out(&k));
    }

    // A member joins: resets are refused until it leaves.
    let member = active_member(&s);
    let r = weir(&[
        "groups",
        "reset-offsets",
        &s.group,
        "-b",
        &s.bootstrap,
        "--all-topics",
        "--to-earliest",
        "--execute",
    ]);
    drop(member);
    assert_eq!(r.status.code(), Some(1), "{}", err(&r));
    assert!(
        err(&r).contains(&format!(
            "consumer group `{}` is active (state Stable, 1 member(s))",
            s.group
        )),
        "{}",
        err(&r)
    );
    assert_eq!(err(&r).trim().lines().count(), 1, "{}", err(&r));
}

#[test]
fn mistakes_are_one_line() {
    let bootstrap = Broker::shared().bootstrap();
    let missing = support::unique_topic("weir-reset-missing");
    for (args, code, want) in [
        (
            vec!["--topic", &missing, "--to-earliest"],
            1,
            "does not exist",
        ),
        (vec!["--topic", "t"], 2, "give one reset specification"),
        (
            vec!["--topic", "t", "--to-earliest", "--to-latest"],
            2,
            "give only one reset specification",
        ),
        (vec!["--to-earliest"], 2, "which partitions?"),
        (
            vec!["--topic", "t", "--all-topics", "--to-earliest"],
            2,
            "cannot be used together",
        ),
        (
            vec!["--topic", "t", "--to-datetime", "yesterday"],
            2,
            "expected YYYY-MM-DDTHH:mm:SS.sss",
        ),
        (
            vec!["--topic", "t", "--by-duration", "1h"],
            2,
            "expected an ISO-8601 duration",
        ),
        (
            vec!["--topic", "t:x", "--to-earliest"],
            2,
            "is not a partition number",
        ),
        (
            vec!["--all-topics", "--to-earliest"],
            1,
            "has no committed offsets",
        ),
    ] {
        let group = support::unique_topic("weir-reset-bad-g");
        let mut a = vec!["groups", "reset-offsets", &group, "-b", &bootstrap];
        a.extend(&args);
        let r = weir(&a);
        assert_eq!(r.status.code(), Some(code), "{args:?}: {}", err(&r));
        assert!(
            err(&r).contains(want),
            "{args:?}: wanted {want:?} in {}",
            err(&r)
        );
        assert_eq!(err(&r).trim().lines().count(), 1, "{args:?}: {}", err(&r));
    }
}

/// A group member process, stopped with SIGTERM (as an operator stops a consumer:
/// weir leaves the group on its way out) when dropped, also when a test panics.
struct Member(std::process::Child);

impl Drop for Member {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe {
            libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.0.wait();
    }
}

/// Starts a member of the group subscribed to the topic and waits until the group is
/// Stable.
fn active_member(s: &Setup) -> Member {
    let member = Member(
        Command::new(WEIR)
            .args([
                "consume",
                "-b",
                &s.bootstrap,
                "-G",
                &s.group,
                &s.topic,
                "-q",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn a group member"),
    );
    let start = Instant::now();
    loop {
        let d = weir(&["groups", "describe", &s.group, "-b", &s.bootstrap]);
        if out(&d).contains("state Stable") {
            return member;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the member never joined: {}",
            out(&d)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn delete_offsets_and_delete_groups() {
    let s = setup("weir-delete");
    // Partition 0's offset goes; partition 1's stays.
    let t0 = format!("{}:0", s.topic);
    let r = weir(&[
        "groups",
        "delete-offsets",
        &s.group,
        "-b",
        &s.bootstrap,
        "--topic",
        &t0,
    ]);
    assert!(r.status.success(), "{}", err(&r));
    assert!(out(&r).contains("Successful"), "{}", out(&r));
    let after = |what: &str| {
        if Broker::shared().is_kafka() {
            let k = kafka_groups(&s.bootstrap, &["--describe", "--group", &s.group]);
            column(&out(&k), "CURRENT-OFFSET")
        } else {
            let d = weir(&["groups", "describe", &s.group, "-b", &s.bootstrap]);
            assert!(d.status.success(), "{what}: {}", err(&d));
            column(&out(&d), "CURRENT-OFFSET")
        }
    };
    let cur = after("after delete-offsets");
    assert_eq!(
        cur.get(&(s.topic.clone(), 1)).map(String::as_str),
        Some("12"),
        "{cur:?}"
    );
    assert!(
        cur.get(&(s.topic.clone(), 0)).is_none_or(|c| c == "-"),
        "partition 0's offset is gone: {cur:?}"
    );

    // While a member subscribes to the topic, its offsets and the group stay.
    let member = active_member(&s);
    let r = weir(&[
        "groups",
        "delete-offsets",
        &s.group,
        "-b",
        &s.bootstrap,
        "--topic",
        &s.topic,
    ]);
    let d = weir(&["groups", "delete", &s.group, "-b", &s.bootstrap]);
    drop(member);
    assert_eq!(r.status.code(), Some(1), "{}", err(&r));
    assert!(
        out(&r).contains("Error: the group's members are subscribed to this topic"),
        "{}",
        out(&r)
    );
    assert!(err(&r).contains("kept their offsets"), "{}", err(&r));
    assert_eq!(d.status.code(), Some(1), "{}", err(&d));
    assert!(
        err(&d).contains("has active members, so it cannot be deleted"),
        "{}",
        err(&d)
    );

    // Once it has left, the group goes.
    let start = Instant::now();
    loop {
        let g = weir(&["groups", "delete", &s.group, "-b", &s.bootstrap]);
        if g.status.success() {
            assert_eq!(
                out(&g).trim(),
                format!(
                    "Deletion of requested consumer groups ('{}') was successful.",
                    s.group
                )
            );
            break;
        }
        assert!(err(&g).contains("has active members"), "{}", err(&g));
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the member's session never ended"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let d = weir(&["groups", "describe", &s.group, "-b", &s.bootstrap]);
    assert_eq!(d.status.code(), Some(1), "{}", out(&d));
    assert!(err(&d).contains("does not exist"), "{}", err(&d));
    let again = weir(&["groups", "delete", &s.group, "-b", &s.bootstrap]);
    assert_eq!(again.status.code(), Some(1), "{}", err(&again));
    assert!(
        err(&again).contains("does not exist: check the name"),
        "{}",
        err(&again)
    );
}
