//! TLS and SASL against Apache Kafka's own SASL_PLAINTEXT, SSL (mTLS) and SASL_SSL
//! listeners (issue 9): one shared broker with security listeners
//! (`Broker::shared_security`, SCRAM users created at format time: weir /
//! weir-secret; the CA, broker and client certificates in its `tls/` directory),
//! records produced by librdkafka on the PLAINTEXT listener, read back by the `weir`
//! binary over every mechanism and both TLS listeners, and every mistake a user can
//! make with them answered by one line and exit 1 (2 for settings weir can check
//! before connecting), never a hang.

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
    sasl_ssl: String,
    expired_ssl: String,
    /// The CA, broker and client certificates.
    tls: std::path::PathBuf,
}

fn ports() -> Ports {
    let b = Broker::shared_security();
    let l = b.listeners().expect("a Kafka started here");
    let at = |p: Option<u16>| format!("127.0.0.1:{}", p.expect("security listeners are on"));
    Ports {
        plaintext: b.bootstrap(),
        sasl: at(l.sasl_plaintext),
        ssl: at(l.ssl),
        sasl_ssl: at(l.sasl_ssl),
        expired_ssl: at(l.expired_ssl),
        tls: b.tls_dir().expect("a security broker has TLS material"),
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
            "TLS: the broker answered in TLS: its listener wants security.protocol=SSL",
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

impl Ports {
    fn file(&self, name: &str) -> String {
        self.tls.join(name).display().to_string()
    }
}

/// `-X` pairs, as argument strings.
fn xs(pairs: &[String]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|p| ["-X".to_owned(), p.clone()])
        .collect()
}

fn consume(bootstrap: &str, topic: &str, extra: &[String], what: &str) -> Output {
    let mut args: Vec<String> = vec!["consume".into(), "-b".into(), bootstrap.into()];
    args.extend(extra.iter().cloned());
    args.extend(
        ["-t", topic, "-o", "beginning", "-e", "-f", "%p:%o\n"]
            .iter()
            .map(|s| s.to_string()),
    );
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    weir(&refs, what)
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs (the broker's certificates were made with it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).expect("read a TLS file")
}

#[test]
fn weir_reads_over_ssl_and_sasl_ssl_with_librdkafka_and_java_settings() {
    let p = ports();
    let topic = topic_with(25, "weir-tls");
    let (ca, cert, key) = (p.file("ca.pem"), p.file("client.pem"), p.file("client.key"));
    let scratch = std::env::temp_dir().join(support::unique_topic("weir-tls-files"));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    // Java's PEM key store: the key and its chain in one file.
    let keystore = scratch.join("client-keystore.pem").display().to_string();
    std::fs::write(&keystore, read(&key) + &read(&cert)).expect("write the key store");
    // An encrypted PKCS#8 key, as openssl writes one by default.
    let key_password = "key-pass-4711";
    let encrypted = scratch.join("client-encrypted.key").display().to_string();
    openssl(&[
        "pkcs8",
        "-topk8",
        "-v2",
        "aes-256-cbc",
        "-in",
        &key,
        "-out",
        &encrypted,
        "-passout",
        &format!("pass:{key_password}"),
    ]);
    let ssl = "security.protocol=SSL".to_owned();
    let cases: Vec<(&str, &str, Vec<String>)> = vec![
        (
            "mTLS, librdkafka's file settings",
            &p.ssl,
            vec![
                ssl.clone(),
                format!("ssl.ca.location={ca}"),
                format!("ssl.certificate.location={cert}"),
                format!("ssl.key.location={key}"),
            ],
        ),
        (
            "mTLS, librdkafka's inline PEM",
            &p.ssl,
            vec![
                ssl.clone(),
                format!("ssl.ca.pem={}", read(&ca)),
                format!("ssl.certificate.pem={}", read(&cert)),
                format!("ssl.key.pem={}", read(&key)),
            ],
        ),
        (
            "mTLS, Java's PEM stores",
            &p.ssl,
            vec![
                ssl.clone(),
                "ssl.truststore.type=PEM".into(),
                format!("ssl.truststore.location={ca}"),
                "ssl.keystore.type=PEM".into(),
                format!("ssl.keystore.location={keystore}"),
            ],
        ),
        (
            "mTLS, Java's inline PEM with an encrypted key",
            &p.ssl,
            vec![
                ssl.clone(),
                "ssl.truststore.type=PEM".into(),
                format!("ssl.truststore.certificates={}", read(&ca)),
                "ssl.keystore.type=PEM".into(),
                format!("ssl.keystore.certificate.chain={}", read(&cert)),
                format!("ssl.keystore.key={}", read(&encrypted)),
                format!("ssl.key.password={key_password}"),
            ],
        ),
        (
            "mTLS, an encrypted key file",
            &p.ssl,
            vec![
                ssl.clone(),
                format!("ssl.ca.location={ca}"),
                format!("ssl.certificate.location={cert}"),
                format!("ssl.key.location={encrypted}"),
                format!("ssl.key.password={key_password}"),
            ],
        ),
        (
            "SASL_SSL with SCRAM-SHA-512",
            &p.sasl_ssl,
            vec![
                "security.protocol=SASL_SSL".into(),
                format!("ssl.ca.location={ca}"),
                "sasl.mechanism=SCRAM-SHA-512".into(),
                "sasl.username=weir".into(),
                format!("sasl.password={SECRET}"),
            ],
        ),
        (
            "SASL_SSL with SCRAM-SHA-256 from sasl.jaas.config",
            &p.sasl_ssl,
            vec![
                "security.protocol=SASL_SSL".into(),
                "ssl.truststore.type=PEM".into(),
                format!("ssl.truststore.location={ca}"),
                "sasl.mechanism=SCRAM-SHA-256".into(),
                format!(
                    r#"sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="weir" password="{SECRET}";"#
                ),
            ],
        ),
    ];
    for (what, bootstrap, pairs) in cases {
        let mut extra = xs(&pairs);
        extra.extend(["-d".to_owned(), "broker".to_owned()]);
        let out = consume(bootstrap, &topic, &extra, what);
        let err = stderr(&out);
        assert!(out.status.success(), "{what}: {err}");
        assert_eq!(offsets(&out), expected(25), "{what}");
        for secret in [SECRET, key_password, "PRIVATE KEY"] {
            assert!(!err.contains(secret), "{what}: {secret} in the log: {err}");
        }
        // Over TLS, PLAIN is not warned about; over plaintext it is.
        assert!(!err.contains("clear text"), "{what}: {err}");
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn a_group_consumes_commits_and_is_described_over_sasl_ssl() {
    let p = ports();
    let topic = topic_with(10, "weir-tls-group");
    let group = support::unique_topic("weir-tls-g");
    let pairs = xs(&[
        "security.protocol=SASL_SSL".into(),
        format!("ssl.ca.location={}", p.file("ca.pem")),
        "sasl.mechanism=SCRAM-SHA-256".into(),
        "sasl.username=weir".into(),
        format!("sasl.password={SECRET}"),
    ]);
    let mut args: Vec<&str> = vec!["consume", "-b", &p.sasl_ssl];
    args.extend(pairs.iter().map(String::as_str));
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
    let out = weir(&args, "group over SASL_SSL");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(offsets(&out), expected(10));
    for sub in ["describe", "list"] {
        let mut args: Vec<&str> = vec!["groups", sub];
        if sub == "describe" {
            args.push(&group);
        }
        args.extend(["-b", &p.sasl_ssl]);
        args.extend(pairs.iter().map(String::as_str));
        let out = weir(&args, "weir groups over SASL_SSL");
        assert!(out.status.success(), "{}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        let want = if sub == "describe" {
            "total lag 0"
        } else {
            group.as_str()
        };
        assert!(text.contains(want), "groups {sub}: {text}");
    }
}

/// Every TLS mistake a user can make against a running cluster: one line naming the
/// setting that fixes it, exit 1, and never a hang (each run is bounded by 60 s;
/// most end in well under one).
#[test]
fn tls_mistakes_are_one_line_and_exit_1() {
    let p = ports();
    let topic = topic_with(1, "weir-tls-bad");
    let mtls = |ca: &str| {
        vec![
            "security.protocol=SSL".to_owned(),
            format!("ssl.ca.location={}", p.file(ca)),
            format!("ssl.certificate.location={}", p.file("client.pem")),
            format!("ssl.key.location={}", p.file("client.key")),
        ]
    };
    let ssl_port = p.ssl.rsplit(':').next().expect("host:port").to_owned();
    // The broker's certificate names localhost and 127.0.0.1; the same address
    // written as an IPv4-mapped IPv6 one is a name it does not list.
    let other_name = format!("[::ffff:127.0.0.1]:{ssl_port}");
    let cases: Vec<(&str, &str, Vec<String>, &str)> = vec![
        (
            "untrusted certificate",
            &p.ssl,
            mtls("other-ca.pem"),
            "TLS: the broker's certificate is not signed by a CA weir trusts (ssl.ca.location=",
        ),
        (
            "no CA configured: the system's roots do not know the test CA",
            &p.ssl,
            vec![
                "security.protocol=SSL".into(),
                format!("ssl.certificate.location={}", p.file("client.pem")),
                format!("ssl.key.location={}", p.file("client.key")),
            ],
            "(the system's trust store): set ssl.ca.location",
        ),
        (
            "host-name mismatch",
            &other_name,
            mtls("ca.pem"),
            "is not valid for the host name ::ffff:127.0.0.1 (it names localhost, 127.0.0.1)",
        ),
        (
            "expired certificate",
            &p.expired_ssl,
            vec![
                "security.protocol=SSL".into(),
                format!("ssl.ca.location={}", p.file("ca.pem")),
            ],
            "TLS: the broker's certificate has expired",
        ),
        (
            "no client certificate for a broker that requires one",
            &p.ssl,
            vec![
                "security.protocol=SSL".into(),
                format!("ssl.ca.location={}", p.file("ca.pem")),
            ],
            "set ssl.certificate.location and ssl.key.location",
        ),
        (
            "TLS client on a plaintext port",
            &p.plaintext,
            mtls("ca.pem"),
            "during the TLS handshake or before answering ApiVersions: is it a plaintext listener? If so, set security.protocol=PLAINTEXT",
        ),
        (
            "plaintext client on a SASL_SSL port",
            &p.sasl_ssl,
            vec![],
            "TLS: the broker answered in TLS: its listener wants security.protocol=SSL (or SASL_SSL with SASL)",
        ),
        (
            "SASL_SSL client with a wrong password",
            &p.sasl_ssl,
            vec![
                "security.protocol=SASL_SSL".into(),
                format!("ssl.ca.location={}", p.file("ca.pem")),
                "sasl.mechanism=SCRAM-SHA-512".into(),
                "sasl.username=weir".into(),
                "sasl.password=not-the-password".into(),
            ],
            "SASL SCRAM-SHA-512 authentication failed",
        ),
        (
            "a mechanism the listener does not enable",
            &p.sasl_ssl,
            vec![
                "security.protocol=SASL_SSL".into(),
                format!("ssl.ca.location={}", p.file("ca.pem")),
                "sasl.mechanism=PLAIN".into(),
                "sasl.username=weir".into(),
                "sasl.password=not-the-password".into(),
            ],
            "the broker does not enable PLAIN; it enables SCRAM-SHA-",
        ),
    ];
    for (what, bootstrap, pairs, want) in cases {
        for mode in [vec!["-t", &topic], vec!["-G", "weir-tls-bad-g", &topic]] {
            let mut args: Vec<&str> = vec!["consume", "-b", bootstrap, "-q", "-e"];
            let x = xs(&pairs);
            args.extend(x.iter().map(String::as_str));
            args.extend(mode.iter().copied());
            let out = weir(&args, what);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{what} {mode:?}: {err}");
            assert!(
                err.contains(want),
                "{what} {mode:?}: wanted {want:?} in: {err}"
            );
            assert_eq!(err.trim().lines().count(), 1, "{what}: one line: {err}");
            assert!(!err.contains("not-the-password"), "{what}: {err}");
        }
    }
    // The host-name check is the only thing `none` turns off: the same address
    // reads, with a warning; the chain is still checked.
    let mut pairs = mtls("ca.pem");
    pairs.push("ssl.endpoint.identification.algorithm=none".into());
    let out = consume(&other_name, &topic, &xs(&pairs), "no host-name check");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ssl.endpoint.identification.algorithm=none"),
        "{}",
        stderr(&out)
    );
    let mut pairs = mtls("other-ca.pem");
    pairs.push("ssl.endpoint.identification.algorithm=none".into());
    let out = consume(&p.ssl, &topic, &xs(&pairs), "none still checks the chain");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

/// Settings weir can check before it connects: exit 2 and the property to fix.
#[test]
fn unusable_tls_settings_are_configuration_errors() {
    let p = ports();
    let (ca, cert, key) = (p.file("ca.pem"), p.file("client.pem"), p.file("client.key"));
    let scratch = std::env::temp_dir().join(support::unique_topic("weir-tls-bad-files"));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let encrypted = scratch.join("enc.key").display().to_string();
    openssl(&[
        "pkcs8",
        "-topk8",
        "-v2",
        "aes-256-cbc",
        "-in",
        &key,
        "-out",
        &encrypted,
        "-passout",
        "pass:right-one",
    ]);
    let ssl = "security.protocol=SSL".to_owned();
    let cases: Vec<(&str, Vec<String>, String)> = vec![
        (
            "an unreadable key file",
            vec![
                ssl.clone(),
                format!("ssl.certificate.location={cert}"),
                "ssl.key.location=/nonexistent/client.key".into(),
            ],
            "ssl.key.location: cannot read /nonexistent/client.key".into(),
        ),
        (
            "a CA file without certificates",
            vec![ssl.clone(), format!("ssl.ca.location={key}")],
            format!("ssl.ca.location: no PEM certificate (-----BEGIN CERTIFICATE-----) in {key}"),
        ),
        (
            "a JKS trust store",
            vec![ssl.clone(), "ssl.truststore.location=/etc/kafka/truststore.jks".into()],
            "ssl.truststore.type=JKS is not readable by weir: it reads PEM. Export the CA once (keytool -exportcert -rfc".into(),
        ),
        (
            "a PKCS12 key store",
            vec![
                ssl.clone(),
                "ssl.keystore.type=PKCS12".into(),
                "ssl.keystore.location=/etc/kafka/client.p12".into(),
            ],
            "ssl.keystore.type=PKCS12 is not readable by weir: it reads PEM. Convert the key store once (openssl pkcs12 -in /etc/kafka/client.p12 -nodes -out client.pem)".into(),
        ),
        (
            "an encrypted key without its password",
            vec![
                ssl.clone(),
                format!("ssl.certificate.location={cert}"),
                format!("ssl.key.location={encrypted}"),
            ],
            format!("ssl.key.location: the private key in {encrypted} is encrypted: set ssl.key.password"),
        ),
        (
            "an encrypted key with the wrong password",
            vec![
                ssl.clone(),
                format!("ssl.certificate.location={cert}"),
                format!("ssl.key.location={encrypted}"),
                "ssl.key.password=wrong-one".into(),
            ],
            "does not decrypt with ssl.key.password".into(),
        ),
        (
            "a certificate without its key",
            vec![ssl.clone(), format!("ssl.ca.location={ca}"), format!("ssl.certificate.location={cert}")],
            "`ssl.key.location` is not set".into(),
        ),
        (
            "a key that is not the certificate's",
            vec![
                ssl.clone(),
                format!("ssl.certificate.location={cert}"),
                format!("ssl.key.location={}", p.file("broker.key")),
            ],
            "the client certificate and key cannot be used together".into(),
        ),
    ];
    for (what, pairs, want) in cases {
        let out = consume(&p.ssl, "weir-tls-never", &xs(&pairs), what);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains(&want), "{what}: wanted {want:?} in: {err}");
        assert!(
            !err.contains("wrong-one") && !err.contains("PRIVATE KEY"),
            "{err}"
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

/// OAUTHBEARER against Kafka's unsecured-JWT validator: Java's login module options,
/// librdkafka's `sasl.oauthbearer.config`, and a token read from a file; a token the
/// broker refuses is one line and exit 1, an OIDC endpoint is refused up front.
#[test]
fn oauthbearer_tokens_from_java_librdkafka_and_file_settings() {
    let p = ports();
    let topic = topic_with(5, "weir-oauth");
    let ca = format!("ssl.ca.location={}", p.file("ca.pem"));
    let scratch = std::env::temp_dir().join(support::unique_topic("weir-oauth-files"));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let good = scratch.join("token");
    std::fs::write(
        &good,
        weir_protocol::auth::unsecured_jwt(&[("sub".into(), "\"admin\"".into())], now, 600) + "\n",
    )
    .expect("write the token");
    let bad = scratch.join("bad-token");
    std::fs::write(&bad, "not-a-jwt").expect("write the bad token");
    let oauth = "sasl.mechanism=OAUTHBEARER".to_owned();
    let cases: Vec<(&str, &str, Vec<String>)> = vec![
        (
            "Java's unsecured login module over SASL_PLAINTEXT",
            &p.sasl,
            vec![
                "security.protocol=SASL_PLAINTEXT".into(),
                oauth.clone(),
                r#"sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="admin";"#.into(),
            ],
        ),
        (
            "librdkafka's unsecured token over SASL_SSL",
            &p.sasl_ssl,
            vec![
                "security.protocol=SASL_SSL".into(),
                ca.clone(),
                oauth.clone(),
                "enable.sasl.oauthbearer.unsecure.jwt=true".into(),
                "sasl.oauthbearer.config=principal=admin lifeSeconds=600".into(),
            ],
        ),
        (
            "a token file over SASL_SSL",
            &p.sasl_ssl,
            vec![
                "security.protocol=SASL_SSL".into(),
                ca.clone(),
                oauth.clone(),
                format!("sasl.oauthbearer.token.endpoint.url=file://{}", good.display()),
                "sasl.login.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler".into(),
                r#"sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;"#.into(),
            ],
        ),
    ];
    for (what, bootstrap, pairs) in cases {
        let out = consume(bootstrap, &topic, &xs(&pairs), what);
        assert!(out.status.success(), "{what}: {}", stderr(&out));
        assert_eq!(offsets(&out), expected(5), "{what}");
    }
    let refused = vec![
        "security.protocol=SASL_SSL".into(),
        ca.clone(),
        oauth.clone(),
        format!(
            "sasl.oauthbearer.token.endpoint.url=file://{}",
            bad.display()
        ),
    ];
    let out = consume(&p.sasl_ssl, &topic, &xs(&refused), "a refused token");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("SASL OAUTHBEARER authentication failed")
            && err.contains("the broker refused the token"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let oidc = vec![
        "security.protocol=SASL_SSL".into(),
        ca,
        oauth,
        "sasl.oauthbearer.token.endpoint.url=https://idp.example/token".into(),
    ];
    let out = consume(&p.sasl_ssl, &topic, &xs(&oidc), "an OIDC endpoint");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("does not implement the OIDC client-credentials flow"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(&scratch);
}
