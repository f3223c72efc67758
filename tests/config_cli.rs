//! The `weir` binary's configuration errors: each one is a single line on stderr
//! naming the problem and what to do, with exit code 2, before anything connects
//! (the broker addresses used here do not exist; nothing must try them).

use std::io::Write;
use std::process::{Command, Output};

const WEIR: &str = env!("CARGO_BIN_EXE_weir");

fn weir(args: &[&str]) -> Output {
    Command::new(WEIR).args(args).output().expect("run weir")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs weir, expects exit `code`, and returns stderr.
fn expect(args: &[&str], code: i32) -> String {
    let o = weir(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "weir {args:?}\nstderr: {err}");
    err
}

/// A configuration error: exit 2, exactly one line, starting with `weir: error: `.
fn config_error(args: &[&str], want: &str) {
    let err = expect(args, 2);
    assert_eq!(
        err.lines().count(),
        1,
        "weir {args:?}: expected one line, got:\n{err}"
    );
    assert_eq!(
        err.trim_end(),
        format!("weir: error: {want}"),
        "weir {args:?}"
    );
}

#[test]
fn unknown_property_names_itself_and_suggests() {
    config_error(
        &[
            "consume",
            "-b",
            "broker:9092",
            "-t",
            "t",
            "-p",
            "0",
            "-X",
            "fetch.max.byte=1024",
        ],
        "unknown property `fetch.max.byte` (from -X); did you mean `fetch.max.bytes`?",
    );
    config_error(
        &[
            "consume",
            "-b",
            "broker:9092",
            "-t",
            "t",
            "-X",
            "enable.auto.comit=false",
        ],
        "unknown property `enable.auto.comit` (from -X); did you mean `enable.auto.commit`?",
    );
}

#[test]
fn unknown_property_in_a_properties_file() {
    let dir = std::env::temp_dir().join(format!("weir-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = dir.join("consumer.properties");
    let mut f = std::fs::File::create(&file).expect("create");
    writeln!(
        f,
        "# comment\nbootstrap.servers=broker:9092\nsesion.timeout.ms=30000"
    )
    .expect("write");
    drop(f);
    let path = file.to_str().expect("utf-8 path");
    config_error(
        &["consume", "-F", path, "-t", "t"],
        &format!(
            "unknown property `sesion.timeout.ms` (from {path}:3); did you mean `session.timeout.ms`?"
        ),
    );
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn missing_group_id_in_group_mode() {
    config_error(
        &["consume", "-b", "broker:9092", "-G", "", "events"],
        "`group.id` is not set: group mode needs a consumer group; give it with -G GROUP TOPIC... or -X group.id=NAME",
    );
    config_error(
        &[
            "consume",
            "-b",
            "broker:9092",
            "-t",
            "events",
            "-o",
            "stored",
        ],
        "`group.id` is not set: -o stored reads the group's committed offsets; set -X group.id=NAME or choose another -o",
    );
    config_error(
        &[
            "consume",
            "-b",
            "broker:9092",
            "-t",
            "events",
            "-X",
            "enable.auto.commit=true",
        ],
        "`group.id` is not set: enable.auto.commit=true (from -X) commits offsets to a group; set -X group.id=NAME or -X enable.auto.commit=false",
    );
}

#[test]
fn bad_broker_address() {
    config_error(
        &["consume", "-b", "broker", "-t", "t"],
        "bad broker address `broker` in bootstrap.servers: missing :port; give host:port, for example localhost:9092 (IPv6 as [::1]:9092)",
    );
    config_error(
        &["consume", "-b", "a:9092,b:http", "-t", "t"],
        "bad broker address `b:http` in bootstrap.servers: the port is not a number from 1 to 65535; give host:port, for example localhost:9092 (IPv6 as [::1]:9092)",
    );
    config_error(
        &["consume", "-t", "t"],
        "`bootstrap.servers` is not set: give the brokers with -b host:port[,host:port...] or -X bootstrap.servers=...",
    );
}

#[test]
fn fetch_sizes_beyond_the_budget() {
    config_error(
        &[
            "consume",
            "-b",
            "broker:9092",
            "-t",
            "t",
            "-X",
            "fetch.max.bytes=104857600",
        ],
        "`fetch.max.bytes=104857600` exceeds the memory budget `weir.ring.bytes=67108864`: a whole fetch response (plus 64 KiB for its headers) must fit in the ring buffer; lower `fetch.max.bytes` or raise `weir.ring.bytes`",
    );
    config_error(
        &[
            "consume",
            "-b",
            "broker:9092",
            "-t",
            "t",
            "-X",
            "weir.ring.bytes=1048576",
            "-X",
            "fetch.max.bytes=900000",
            "-X",
            "max.partition.fetch.bytes=2097152",
        ],
        "`max.partition.fetch.bytes=2097152` exceeds the memory budget `weir.ring.bytes=1048576`: a whole fetch response (plus 64 KiB for its headers) must fit in the ring buffer; lower `max.partition.fetch.bytes` or raise `weir.ring.bytes`",
    );
}

#[test]
fn bad_offset_and_profile_and_format() {
    config_error(
        &["consume", "-b", "broker:9092", "-t", "t", "-o", "start"],
        "invalid -o value `start`: expected beginning, end, stored, an offset N, -N (N records before the end) or s@TIMESTAMP_MS",
    );
    config_error(
        &[
            "consume",
            "-b",
            "broker:9092",
            "-t",
            "t",
            "--profile",
            "low-latncy",
        ],
        "unknown profile `low-latncy`; did you mean `low-latency`? (profiles: high-throughput, low-latency, reliable, stream-processing, cross-datacenter)",
    );
    config_error(
        &["consume", "-b", "broker:9092", "-t", "t", "-f", "%s %x"],
        "unsupported format token %x in -f; use %t %p %o %k %K %s %S %R %T %h or %% for a percent sign",
    );
}

#[test]
fn cross_property_rules_and_types() {
    config_error(
        &[
            "consume",
            "-b",
            "broker:9092",
            "-t",
            "t",
            "-X",
            "heartbeat.interval.ms=60000",
        ],
        "heartbeat.interval.ms=60000 is not below session.timeout.ms=45000, so the member would be evicted between heartbeats; set heartbeat.interval.ms to at most a third of session.timeout.ms",
    );
    config_error(
        &[
            "consume",
            "-b",
            "broker:9092",
            "-t",
            "t",
            "-X",
            "isolation.level=committed",
        ],
        "invalid value `committed` for `isolation.level` (from -X): expected one of read_uncommitted, read_committed",
    );
    config_error(
        &[
            "consume",
            "-b",
            "broker:9092",
            "-t",
            "t",
            "-X",
            "security.protocol=SSL",
            "-X",
            "ssl.truststore.location=/etc/kafka/truststore.jks",
        ],
        "ssl.truststore.type=JKS is not readable by weir: it reads PEM. Export the CA once (keytool -exportcert -rfc -keystore /etc/kafka/truststore.jks -alias ALIAS -file ca.pem) and set ssl.truststore.type=PEM with ssl.truststore.location=ca.pem (or ssl.ca.location=ca.pem)",
    );
    config_error(
        &[
            "consume",
            "-b",
            "broker:9092",
            "-t",
            "t",
            "-X",
            "fetch.min.bytes",
        ],
        "malformed -X argument `fetch.min.bytes`: expected name=value, for example -X fetch.min.bytes=1024",
    );
}

#[test]
fn usage_errors_from_clap_exit_2() {
    let err = expect(
        &["consume", "-b", "broker:9092", "-t", "t", "-J", "-f", "%s"],
        2,
    );
    assert!(
        err.contains("'-J' cannot be used with '-f <FORMAT>'"),
        "{err}"
    );
    let err = expect(&["consume", "--no-such-flag"], 2);
    assert!(err.contains("--no-such-flag"), "{err}");
    expect(&["frobnicate"], 2);
}

#[test]
fn help_and_properties_list_exit_0() {
    let o = weir(&["consume", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let help = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "-b <BROKERS>",
        "-t <TOPIC>",
        "-o <OFFSET>",
        "-G <GROUP>",
        "-X <NAME=VALUE>",
        "--sink <DIR>",
        "--profile <NAME>",
    ] {
        assert!(help.contains(flag), "help lacks {flag}:\n{help}");
    }
    let o = weir(&["consume", "--help-properties"]);
    assert_eq!(o.status.code(), Some(0));
    let list = String::from_utf8_lossy(&o.stdout);
    assert!(
        list.contains("fetch.max.bytes") && list.contains("52428800"),
        "{list}"
    );
    assert!(
        list.contains("sasl.password") && list.contains("[not supported yet]"),
        "{list}"
    );
}

/// Arguments that pass validation and then fail fast at run time: nothing listens
/// on 127.0.0.1:1, and listing the topic's partitions gives up after 300 ms.
const UNREACHABLE: [&str; 9] = [
    "consume",
    "-b",
    "127.0.0.1:1",
    "-t",
    "t",
    "-X",
    "default.api.timeout.ms=300",
    "-X",
    "reconnect.backoff.max.ms=50",
];

#[test]
fn warnings_do_not_stop_and_quiet_silences_them() {
    // A valid configuration with a warning gets past validation (then fails to
    // reach the broker: exit 1), and prints the warning first.
    let mut args = UNREACHABLE.to_vec();
    args.extend(["-X", "heartbeat.interval.ms=20000"]);
    let err = expect(&args, 1);
    assert!(
        err.starts_with("weir: warning: heartbeat.interval.ms=20000 is more than a third"),
        "{err}"
    );
    args.push("-q");
    let err = expect(&args, 1);
    assert!(!err.contains("warning"), "{err}");
}

#[test]
fn runtime_failures_exit_1_with_a_reason() {
    // Without -p weir lists the topic's partitions first; an unreachable broker is a
    // runtime failure once default.api.timeout.ms has passed.
    let err = expect(&UNREACHABLE, 1);
    assert!(
        err.contains("could not list the partitions of `t` within default.api.timeout.ms (300 ms)"),
        "{err}"
    );
    // Configuration is checked before anything connects, for groups too.
    expect(&["groups", "list", "-b", "broker"], 2);
    let err = expect(
        &[
            "consume",
            "-b",
            "127.0.0.1:1",
            "-t",
            "t",
            "-p",
            "0",
            "-o",
            "stored",
            "-X",
            "group.id=g",
        ],
        1,
    );
    assert!(
        err.contains("-o stored without -G is not available yet"),
        "{err}"
    );
}

#[test]
fn group_mode_usage_errors() {
    config_error(
        &["consume", "-b", "broker:9092", "-G", "g", "t", "-o", "-10"],
        "in group mode -o can only be beginning, end or stored: the group's committed offsets decide where each partition starts, -o only where to start without one",
    );
}

#[test]
fn profiles_are_accepted_and_x_overrides_them() {
    // The profile's fetch.max.bytes (1 MiB) would fit a 2 MiB ring; -X raises it past
    // the ring, so the -X value must be the one validated.
    config_error(
        &[
            "consume",
            "-b",
            "broker:9092",
            "-t",
            "t",
            "--profile",
            "low-latency",
            "-X",
            "weir.ring.bytes=2097152",
            "-X",
            "fetch.max.bytes=4194304",
        ],
        "`fetch.max.bytes=4194304` exceeds the memory budget `weir.ring.bytes=2097152`: a whole fetch response (plus 64 KiB for its headers) must fit in the ring buffer; lower `fetch.max.bytes` or raise `weir.ring.bytes`",
    );
    // And the profile value itself passes the same check (then fails at run time).
    let mut args = UNREACHABLE.to_vec();
    args.extend(["--profile", "low-latency", "-X", "weir.ring.bytes=2097152"]);
    let err = expect(&args, 1);
    assert!(err.contains("could not list the partitions"), "{err}");
}

/// A ring budget the machine cannot give (weir.ring.bytes takes up to 1 TiB) is a
/// configuration error, not an allocation abort (exit 134 with a backtrace).
#[test]
fn a_ring_budget_the_system_refuses_exits_2() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    // With overcommit_memory=1 the kernel grants any size, lazily: nothing to test.
    if std::fs::read_to_string("/proc/sys/vm/overcommit_memory").is_ok_and(|m| m.trim() == "1") {
        eprintln!("skipped: vm.overcommit_memory=1 grants 1 TiB");
        return;
    }
    let mut child = Command::new(WEIR)
        .args(["consume", "-b", "broker:9092", "-t", "t", "-p", "0", "-q"])
        .args(["-X", "weir.ring.bytes=1099511627776"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run weir");
    let start = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("weir did not exit within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().expect("collect output");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("weir: error: ") && err.contains("lower weir.ring.bytes"),
        "{err}"
    );
}

/// kcat's `-X list` and `-X dump`: the property table, and the effective
/// configuration as a properties file `-F` reads back, with secrets hidden.
#[test]
fn x_list_and_x_dump() {
    let list = weir(&["consume", "-X", "list"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("fetch.min.bytes"), "{text}");

    let dump = weir(&[
        "consume",
        "-b",
        "broker:9092",
        "-G",
        "g1",
        "t",
        "--profile",
        "low-latency",
        "-X",
        "dump",
        "-X",
        "sasl.password=hunter2",
        "-X",
        "fetch.min.bytes=10",
    ]);
    assert!(dump.status.success(), "{}", stderr(&dump));
    let text = String::from_utf8_lossy(&dump.stdout).into_owned();
    assert!(text.contains("# from -X\nfetch.min.bytes=10\n"), "{text}");
    assert!(
        text.contains("# from -b\nbootstrap.servers=broker:9092\n"),
        "{text}"
    );
    assert!(text.contains("# from -G\ngroup.id=g1\n"), "{text}");
    assert!(
        text.contains("# from --profile low-latency\nfetch.max.wait.ms=10\n"),
        "{text}"
    );
    assert!(text.contains("\nsasl.password=[hidden]\n"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("\n#sasl.username=\n"), "{text}");
    assert!(text.contains("\nclient.id=weir\n"), "{text}");
    // It reads back: the same values, now from the file.
    let mut f = tempfile_in_target("dump.properties");
    f.1.write_all(text.as_bytes()).expect("write the dump");
    let again = weir(&["consume", "-F", &f.0, "-X", "dump"]);
    assert!(again.status.success(), "{}", stderr(&again));
    let again = String::from_utf8_lossy(&again.stdout);
    assert!(again.contains("fetch.min.bytes=10\n"), "{again}");
    assert!(again.contains("fetch.max.wait.ms=10\n"), "{again}");
    assert!(again.contains("group.id=g1\n"), "{again}");
}

/// `-D` is the message delimiter of the default output only; `-u` is for stdout.
#[test]
fn delimiter_and_unbuffered_rules() {
    let err = expect(&["consume", "-b", "k:1", "-t", "t", "-D", ";", "-J"], 2);
    assert!(err.contains("cannot be used with"), "{err}");
    config_error(
        &[
            "consume",
            "-b",
            "k:1",
            "-t",
            "t",
            "-u",
            "--sink",
            "/tmp/weir-never",
        ],
        "-u is for stdout; --sink writes its files on its own schedule (weir.sink.checkpoint.ms)",
    );
}

fn tempfile_in_target(name: &str) -> (String, std::fs::File) {
    let dir = std::env::temp_dir().join(format!("weir-config-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    let f = std::fs::File::create(&path).expect("create");
    (path.display().to_string(), f)
}
