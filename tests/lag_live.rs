//! `weir lag` against Kafka: the exported lag, committed offsets, log ends and time
//! lag of groups named or matched by a regex, agreeing with Kafka's own
//! `kafka-consumer-groups --describe`; served over HTTP until SIGTERM.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::broker::Broker;
use support::peer::Producer;
use support::wait_bounded;

const WEIR: &str = env!("CARGO_BIN_EXE_weir");

fn weir(args: &[&str]) -> Output {
    let child = Command::new(WEIR)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weir");
    wait_bounded(child, Duration::from_secs(60), "weir lag")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The value of the sample `name{labels}` in a Prometheus text page.
fn sample(page: &str, name: &str, labels: &str) -> Option<f64> {
    let head = format!("{name}{{{labels}}} ");
    page.lines()
        .find_map(|l| l.strip_prefix(&head))
        .and_then(|v| v.trim().parse().ok())
}

struct Setup {
    bootstrap: String,
    topic: String,
    groups: [String; 2],
    prefix: String,
}

/// A topic of 2 partitions x 20 records stamped two minutes ago, and two groups:
/// the first committed at 20 (partition 0) and 5 (partition 1), the second at 10 and
/// 10.
fn setup() -> Setup {
    let bootstrap = Broker::shared().bootstrap();
    let topic = support::unique_topic("weir-lag");
    let prefix = support::unique_topic("weir-lag-g");
    let groups = [format!("{prefix}-a"), format!("{prefix}-b")];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    Producer::new(&bootstrap, &topic)
        .partitions(2)
        .count(20)
        .timestamp_base(now - 120_000)
        .run();
    for (g, offsets) in [(&groups[0], [20, 5]), (&groups[1], [10, 10])] {
        for (p, o) in offsets.iter().enumerate() {
            let tp = format!("{topic}:{p}");
            let o = o.to_string();
            let r = weir(&[
                "groups",
                "reset-offsets",
                g,
                "-b",
                &bootstrap,
                "--topic",
                &tp,
                "--to-offset",
                &o,
                "--execute",
            ]);
            assert!(r.status.success(), "{}", text(&r).1);
        }
    }
    Setup {
        bootstrap,
        topic,
        groups,
        prefix,
    }
}

#[test]
fn lag_of_named_and_matched_groups_agrees_with_kafka() {
    let s = setup();
    let once = weir(&["lag", "-b", &s.bootstrap, "--once", "--group", &s.groups[0]]);
    let (page, err) = text(&once);
    assert!(once.status.success(), "{err}");
    let l = |p: i32| {
        format!(
            "group=\"{}\",topic=\"{}\",partition=\"{p}\"",
            s.groups[0], s.topic
        )
    };
    assert_eq!(
        sample(&page, "kafka_consumer_lag", &l(0)),
        Some(0.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, "kafka_consumer_lag", &l(1)),
        Some(15.0),
        "{page}"
    );
    assert_eq!(
        sample(
            &page,
            "kafka_consumer_lag_sum",
            &format!("group=\"{}\"", s.groups[0])
        ),
        Some(15.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, "kafka_consumer_committed_offset", &l(1)),
        Some(5.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, "kafka_consumer_log_end_offset", &l(1)),
        Some(20.0),
        "{page}"
    );
    // Record 5 of partition 1 was stamped two minutes ago.
    let age = sample(&page, "kafka_consumer_lag_seconds", &l(1)).expect("a time lag");
    assert!((110.0..600.0).contains(&age), "time lag {age}: {page}");
    assert_eq!(
        sample(&page, "kafka_consumer_lag_seconds", &l(0)),
        Some(0.0),
        "{page}"
    );
    assert!(page.contains("\nprocess_resident_memory_bytes "), "{page}");
    assert!(page.contains("\nprocess_open_fds "), "{page}");
    assert!(!page.contains(&s.groups[1]), "only the named group: {page}");

    if Broker::shared().is_kafka() {
        let k = Command::new("bash")
            .arg(support::repo_root().join("scripts/kafka-tool.sh"))
            .args(["kafka-consumer-groups", "--bootstrap-server", &s.bootstrap])
            .args(["--describe", "--group", &s.groups[0]])
            .stdin(Stdio::null())
            .output()
            .expect("kafka-consumer-groups");
        let ktext = String::from_utf8_lossy(&k.stdout).into_owned();
        for line in ktext.lines().filter(|l| l.contains(&s.topic)) {
            let c: Vec<&str> = line.split_whitespace().collect();
            let p: i32 = c[2].parse().expect("partition");
            let lag: f64 = c[5].parse().expect("lag");
            assert_eq!(
                sample(&page, "kafka_consumer_lag", &l(p)),
                Some(lag),
                "{ktext}\n{page}"
            );
        }
    }

    // A regex takes both groups, and nothing else.
    let re = format!("^{}-", s.prefix);
    let m = weir(&["lag", "-b", &s.bootstrap, "--once", "--group-regex", &re]);
    let (page, err) = text(&m);
    assert!(m.status.success(), "{err}");
    for (g, sum) in [(&s.groups[0], 15.0), (&s.groups[1], 20.0)] {
        assert_eq!(
            sample(&page, "kafka_consumer_lag_sum", &format!("group=\"{g}\"")),
            Some(sum),
            "{page}"
        );
    }
    assert_eq!(page.matches("kafka_consumer_lag_sum{").count(), 2, "{page}");
}

#[test]
fn served_until_sigterm() {
    let s = setup();
    let mut child = Command::new(WEIR)
        .args([
            "lag",
            "-b",
            &s.bootstrap,
            "--group",
            &s.groups[1],
            "--metrics-addr",
            "127.0.0.1:0",
            "--interval-ms",
            "300",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weir lag");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut first = String::new();
    let _ = stderr.read_line(&mut first);
    let addr = first
        .trim()
        .strip_prefix("weir: serving lag metrics at http://")
        .and_then(|a| a.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no address line: {first}"))
        .to_owned();
    let start = Instant::now();
    let want = format!("kafka_consumer_lag_sum{{group=\"{}\"}} 20", s.groups[1]);
    let page = loop {
        let mut c = std::net::TcpStream::connect(&addr).expect("connect to the exporter");
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("request");
        let mut page = String::new();
        let _ = c.read_to_string(&mut page);
        if page.contains(&want) || start.elapsed() > Duration::from_secs(30) {
            break page;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().expect("wait");
    assert!(page.contains(&want), "{page}");
    assert!(page.contains("weir_lag_exporter_polls_total "), "{page}");
    assert!(status.success(), "exit after SIGTERM: {status:?}");
}
