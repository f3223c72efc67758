//! kcat's `-o e@TIMESTAMP` against Kafka: each partition stops at its first record
//! stamped at or after the time (not written), and the run ends once every partition
//! has; with `s@` as the start, exactly the records of the window.

mod support;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::broker::Broker;
use support::peer::Producer;
use support::wait_bounded;

const WEIR: &str = env!("CARGO_BIN_EXE_weir");
const BASE: i64 = 1_796_549_400_000;

fn weir(args: &[&str]) -> Output {
    let child = Command::new(WEIR)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weir");
    wait_bounded(child, Duration::from_secs(60), "weir consume -o e@")
}

fn lines(o: &Output) -> Vec<String> {
    let mut v: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

fn want(from: i64, to: i64) -> Vec<String> {
    let mut v: Vec<String> = (0..2)
        .flat_map(|p| (from..to).map(move |o| format!("{p}:{o}")))
        .collect();
    v.sort();
    v
}

#[test]
fn e_at_stops_every_partition_at_the_time() {
    let bootstrap = Broker::shared().bootstrap();
    let topic = support::unique_topic("weir-stop-at");
    // Record seq of each partition is stamped BASE + seq ms.
    Producer::new(&bootstrap, &topic)
        .partitions(2)
        .count(20)
        .timestamp_base(BASE)
        .run();
    let stop = format!("e@{}", BASE + 10);
    // No -e: the stop time alone ends the run.
    let out = weir(&[
        "consume",
        "-b",
        &bootstrap,
        "-t",
        &topic,
        "-o",
        "beginning",
        "-o",
        &stop,
        "-f",
        "%p:%o\n",
    ]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert_eq!(lines(&out), want(0, 10));
    assert!(
        err.contains("reached the -o e@ timestamp on every partition"),
        "{err}"
    );

    let start = format!("s@{}", BASE + 5);
    let stop = format!("e@{}", BASE + 8);
    let out = weir(&[
        "consume", "-b", &bootstrap, "-t", &topic, "-o", &start, "-o", &stop, "-f", "%p:%o\n", "-q",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines(&out), want(5, 8));
}

#[test]
fn e_at_usage_errors() {
    for (args, want) in [
        (vec!["-o", "e@soon"], "e@ takes a timestamp"),
        (vec!["-o", "e@1", "-o", "e@2"], "give -o e@TIMESTAMP once"),
        (vec!["-o", "beginning", "-o", "end"], "give one start -o"),
    ] {
        let mut a = vec!["consume", "-b", "k:1", "-t", "t"];
        a.extend(args);
        let out = weir(&a);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(want), "{err}");
    }
}

/// kcat's `-E`: a partition's own error is a warning and the others are read to the
/// end; without it the same run exits 1.
#[test]
fn dash_capital_e_leaves_a_failing_partition_and_reads_the_others() {
    let bootstrap = Broker::shared().bootstrap();
    let topic = support::unique_topic("weir-keep-going");
    Producer::new(&bootstrap, &topic)
        .partitions(2)
        .count(7)
        .run();
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "consume".to_owned(),
            "-b".to_owned(),
            bootstrap.clone(),
            "-t".to_owned(),
            topic.clone(),
            "-p".to_owned(),
            "0,1,9".to_owned(),
            "-o".to_owned(),
            "beginning".to_owned(),
            "-e".to_owned(),
            "-f".to_owned(),
            "%p:%o\n".to_owned(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |a: Vec<String>| weir(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let out = run(args(&["-E"]));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert_eq!(lines(&out), want(0, 7));
    assert!(
        err.contains(&format!(
            "-E: {topic}-9 is left, the other partitions go on"
        )),
        "{err}"
    );
    let out = run(args(&["-q"]));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
