//! kcat's `-G GROUP ^regex` against Kafka: the group subscribes to every topic whose
//! name matches (client-side, from all topics' metadata, as the classic protocol
//! does), picks up a matching topic created while it runs, and leaves the others.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::broker::Broker;
use support::peer::Producer;

const WEIR: &str = env!("CARGO_BIN_EXE_weir");

#[test]
fn a_pattern_group_reads_matching_topics_and_picks_up_new_ones() {
    let bootstrap = Broker::shared().bootstrap();
    let prefix = support::unique_topic("weir-pat");
    let (a, b, c) = (
        format!("{prefix}-a"),
        format!("{prefix}-b"),
        format!("{prefix}-c"),
    );
    let other = format!("{prefix}x-other");
    Producer::new(&bootstrap, &a).partitions(2).count(5).run();
    Producer::new(&bootstrap, &b).partitions(1).count(3).run();
    Producer::new(&bootstrap, &other)
        .partitions(1)
        .count(4)
        .run();
    let pattern = format!("^{prefix}-.*");
    let group = support::unique_topic("weir-pat-g");
    let mut child = Command::new(WEIR)
        .args([
            "consume",
            "-b",
            &bootstrap,
            "-G",
            &group,
            &pattern,
            "-o",
            "beginning",
            "-X",
            "metadata.max.age.ms=1000",
            "-f",
            "%t:%p:%o\n",
            "-q",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn weir");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut got = std::collections::BTreeSet::new();
    let wait_for = |n: usize, what: &str, got: &mut std::collections::BTreeSet<String>| {
        let end = Instant::now() + Duration::from_secs(45);
        while got.len() < n {
            let left = end.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) => {
                    got.insert(l);
                }
                Err(_) => panic!("{what}: {} of {n} records: {got:?}", got.len()),
            }
        }
    };
    wait_for(2 * 5 + 3, "the matching topics", &mut got);
    // A topic created now that matches is read too.
    Producer::new(&bootstrap, &c).partitions(1).count(2).run();
    wait_for(2 * 5 + 3 + 2, "the new matching topic", &mut got);
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    assert!(got.iter().all(|l| !l.starts_with(&other)), "{got:?}");
    for (t, parts, n) in [(&a, 2, 5), (&b, 1, 3), (&c, 1, 2)] {
        for p in 0..parts {
            for o in 0..n {
                assert!(
                    got.contains(&format!("{t}:{p}:{o}")),
                    "{t}:{p}:{o} in {got:?}"
                );
            }
        }
    }
}

#[test]
fn a_pattern_needs_a_group() {
    let out = Command::new(WEIR)
        .args(["consume", "-b", "k:1", "-t", "^logs-.*"])
        .output()
        .expect("run weir");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("a pattern subscription needs a group: -G GROUP ^logs-.*"),
        "{err}"
    );
}
