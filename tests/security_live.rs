//! SASL against Apache Kafka's own SASL_PLAINTEXT listener (issue 9): one shared
//! broker with security listeners (`Broker::shared_security`, SCRAM users created at
//! format time: weir / weir-secret), records produced by librdkafka on the PLAINTEXT
//! listener, read back by the `weir` binary over SASL with every mechanism, and every
//! mistake a user can make with it answered by one line and exit 1, never a hang.

mod support;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::broker::Broker;
use support::peer::Producer;
use support::wait_bounded;

const WEIR: &str = env!("CARGO_BIN_EXE_weir");
const SECRET: &str = "weir-secret";

fn weir(args: &[&str], what: &str) -> Output {
    let child = Command::new(WEIR)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weir");
    wait_bounded(child, Duration::from_secs(60), what)
}

struct Ports {
    plaintext: String,
    sasl: String,
    ssl: String,
}

fn ports() -> Ports {
    let b = Broker::shared_security();
    let l = b.listeners().expect("a Kafka started here");
    let at = |p: Option<u16>| format!("127.0.0.1:{}", p.expect("security listeners are on"));
    Ports {
        plaintext: b.bootstrap(),
        sasl: at(l.sasl_plaintext),
        ssl: at(l.ssl),
    }
}

/// A topic of 2 partitions with `n` records each, produced on the PLAINTEXT listener.
fn topic_with(n: usize, prefix: &str) -> String {
    let topic = support::unique_topic(prefix);
    Producer::new(&ports().plaintext, &topic)
        .partitions(2)
        .count(n)
        .run();
    topic
}

fn offsets(out: &Output) -> Vec<String> {
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

fn expected(n: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..2)
        .flat_map(|p| (0..n).map(move |o| format!("{p}:{o}")))
        .collect();
    v.sort();
    v
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn every_mechanism_reads_a_topic_over_sasl_plaintext() {
    let p = ports();
    let topic = topic_with(25, "weir-sasl");
    let user = "sasl.username=weir".to_string();
    let pass = format!("sasl.password={SECRET}");
    let scram_jaas = format!(
        r#"sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="weir" password="{SECRET}";"#
    );
    let plain_jaas = format!(
        r#"sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="weir" password="{SECRET}";"#
    );
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("PLAIN", vec![&user, &pass]),
        ("PLAIN", vec![&plain_jaas]),
        ("SCRAM-SHA-256", vec![&scram_jaas]),
        ("SCRAM-SHA-512", vec![&user, &pass]),
    ];
    for (mech, creds) in cases {
        let mechanism = format!("sasl.mechanism={mech}");
        let mut args = vec![
            "consume",
            "-b",
            &p.sasl,
            "-X",
            "security.protocol=SASL_PLAINTEXT",
            "-X",
            &mechanism,
        ];
        for c in &creds {
            args.extend(["-X", c]);
        }
        args.extend(["-t", &topic, "-o", "beginning", "-e", "-f", "%p:%o\n"]);
        let out = weir(&args, mech);
        assert!(out.status.success(), "{mech} {creds:?}: {}", stderr(&out));
        assert_eq!(offsets(&out), expected(25), "{mech}");
        assert!(!stderr(&out).contains(SECRET), "{mech}: {}", stderr(&out));
    }
}

#[test]
fn a_group_consumes_commits_and_is_described_over_scram() {
    let p = ports();
    let topic = topic_with(10, "weir-sasl-group");
    let group = support::unique_topic("weir-sasl-g");
    let sasl = [
        "-X",
        "security.protocol=SASL_PLAINTEXT",
        "-X",
        "sasl.mechanism=SCRAM-SHA-512",
        "-X",
        "sasl.username=weir",
        "-X",
        "sasl.password=weir-secret",
    ];
    let mut args = vec!["consume", "-b", &p.sasl];
    args.extend(sasl);
    args.extend([
        "-G",
        &group,
        &topic,
        "-o",
        "beginning",
        "-e",
        "-f",
        "%p:%o\n",
    ]);
    let out = weir(&args, "group over SCRAM");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(offsets(&out), expected(10));
    // The commits landed: the group's lag is 0, read over SASL too.
    let mut args = vec!["groups", "describe", &group, "-b", &p.sasl];
    args.extend(sasl);
    let out = weir(&args, "groups describe over SCRAM");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("total lag 0"), "{text}");
}

#[test]
fn wrong_credentials_are_one_line_and_exit_1() {
    let p = ports();
    let topic = topic_with(1, "weir-sasl-bad");
    for (mech, user, pass, what) in [
        (
            "SCRAM-SHA-512",
            "weir",
            "not-the-password",
            "wrong password",
        ),
        ("SCRAM-SHA-256", "nobody", "whatever-pass", "unknown user"),
        ("PLAIN", "weir", "not-the-password", "wrong PLAIN password"),
    ] {
        let mechanism = format!("sasl.mechanism={mech}");
        let (u, pw) = (
            format!("sasl.username={user}"),
            format!("sasl.password={pass}"),
        );
        for mode in [vec!["-t", &topic], vec!["-G", "weir-sasl-bad-g", &topic]] {
            let mut args = vec![
                "consume",
                "-b",
                &p.sasl,
                "-X",
                "security.protocol=SASL_PLAINTEXT",
                "-X",
                &mechanism,
                "-X",
                &u,
                "-X",
                &pw,
                "-q",
            ];
            args.extend(mode.iter().copied());
            let out = weir(&args, what);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{what} {mode:?}: {err}");
            assert!(
                err.contains(&format!("SASL {mech} authentication failed")),
                "{what} {mode:?}: {err}"
            );
            assert!(
                err.contains("check sasl.username and sasl.password"),
                "{err}"
            );
            assert!(!err.contains(pass), "{what}: the password leaked: {err}");
            assert_eq!(
                err.trim().lines().count(),
                1,
                "{what} {mode:?}: one line: {err}"
            );
        }
    }
    let out = weir(
        &[
            "groups",
            "list",
            "-b",
            &p.sasl,
            "-X",
            "security.protocol=SASL_PLAINTEXT",
            "-X",
            "sasl.mechanism=SCRAM-SHA-512",
            "-X",
            "sasl.username=weir",
            "-X",
            "sasl.password=not-the-password",
        ],
        "groups list with a wrong password",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("authentication failed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_wrong_security_protocol_for_a_port_is_an_error_not_a_hang() {
    let p = ports();
    let topic = topic_with(1, "weir-sasl-port");
    let sasl = [
        "-X",
        "security.protocol=SASL_PLAINTEXT",
        "-X",
        "sasl.mechanism=SCRAM-SHA-512",
        "-X",
        "sasl.username=weir",
        "-X",
        "sasl.password=weir-secret",
    ];
    let mut sasl_on_plain = vec!["consume", "-b", &p.plaintext, "-t", &topic, "-e", "-q"];
    sasl_on_plain.extend(sasl);
    let cases = [
        (
            vec!["consume", "-b", &p.sasl, "-t", &topic, "-e", "-q"],
            "right after ApiVersions: if its listener requires SASL, set security.protocol=SASL_PLAINTEXT",
        ),
        (sasl_on_plain, "the broker's listener does not take SASL"),
        (
            vec!["consume", "-b", &p.ssl, "-t", &topic, "-e", "-q"],
            "before answering ApiVersions: is it a TLS (SSL) listener?",
        ),
    ];
    for (args, want) in cases {
        let out = weir(&args, want);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{want}: {err}");
        assert!(err.contains(want), "wanted {want:?} in: {err}");
    }
}

/// KIP-368: a broker with `connections.max.reauth.ms` closes a connection whose SASL
/// session expired at its next request, unless the client authenticates again first.
/// weir renews each session on the same connection, so the broker never closes one,
/// and nothing is lost or repeated. A broker of its own, with 2 s sessions, while
/// records arrive over ~7 s.
#[test]
fn sasl_sessions_are_renewed_without_a_reconnect() {
    use support::kafka::KafkaOptions;
    let broker = Broker::dedicated_with(
        KafkaOptions::default()
            .security()
            .property("connections.max.reauth.ms", 2000),
    );
    let Broker::Kafka(k) = &broker else {
        panic!("security listeners need Apache Kafka");
    };
    let sasl = format!(
        "127.0.0.1:{}",
        k.listeners().sasl_plaintext.expect("sasl listener")
    );
    let topic = support::unique_topic("weir-reauth");
    let rounds = 4;
    let per_round = 10;
    Producer::new(&broker.bootstrap(), &topic)
        .partitions(2)
        .count(per_round)
        .run();
    let total = (2 * rounds * per_round).to_string();
    let child = Command::new(WEIR)
        .args([
            "consume",
            "-b",
            &sasl,
            "-X",
            "security.protocol=SASL_PLAINTEXT",
            "-X",
            "sasl.mechanism=SCRAM-SHA-512",
            "-X",
            "sasl.username=weir",
            "-X",
            "sasl.password=weir-secret",
            "-t",
            &topic,
            "-o",
            "beginning",
            "-c",
            &total,
            "-f",
            "%p:%o\n",
            "-d",
            "broker",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weir");
    for round in 1..rounds {
        std::thread::sleep(Duration::from_millis(2300));
        Producer::new(&broker.bootstrap(), &topic)
            .partitions(2)
            .count(per_round)
            .start_seq((round * per_round) as u64)
            .run();
    }
    let out = wait_bounded(
        child,
        Duration::from_secs(60),
        "consuming across session expiries",
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(offsets(&out), expected(rounds * per_round));
    // Sessions were renewed (more than once over ~7 s of 2 s sessions), and the
    // broker never had to close a connection for an expired one.
    let renewals = err.matches("re-authenticated (session 2000 ms)").count();
    assert!(renewals >= 2, "{renewals} renewals; stderr: {err}");
    assert!(
        !err.contains("connection closed"),
        "a connection was closed: {err}"
    );
}
