//! What the `weir` binary says on stderr while it cannot make progress (issue 10,
//! defect 12): the library's `log` records reach stderr, `-d` turns on debug output.
//!
//! Every run here is bounded: the child is killed once the expected line is seen, or
//! after a deadline, so a weir that stays silent fails the test instead of hanging it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WEIR: &str = env!("CARGO_BIN_EXE_weir");

/// A local port nothing listens on: bound, then released.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// Kills the child when dropped, so a failed assertion never leaves weir running.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs weir with `args` and collects its stderr lines until one satisfies `want` or
/// `within` passes; returns every line read and whether `want` was met.
fn stderr_until(
    args: &[&str],
    within: Duration,
    want: impl Fn(&str) -> bool,
) -> (Vec<String>, bool) {
    let mut child = Command::new(WEIR)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run weir");
    let err = child.stderr.take().expect("stderr is piped");
    let _guard = Killed(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + within;
    let mut lines = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = want(&line);
                lines.push(line);
                if hit {
                    return (lines, true);
                }
            }
            Err(_) => break,
        }
    }
    (lines, false)
}

/// `-d broker` prints the connection attempts as debug lines.
#[test]
fn debug_broker_shows_connection_attempts() {
    let addr = format!("127.0.0.1:{}", closed_port());
    let (lines, ok) = stderr_until(
        &[
            "consume", "-b", &addr, "-t", "t", "-p", "0", "-e", "-d", "broker",
        ],
        Duration::from_secs(10),
        |l| l.starts_with("weir: debug: weir_fetch::broker: ") && l.contains(&addr),
    );
    assert!(ok, "no broker debug line naming {addr}; stderr: {lines:?}");
}

/// An unknown `-d` context is a usage error naming the valid ones.
#[test]
fn unknown_debug_context_is_refused() {
    let o = Command::new(WEIR)
        .args([
            "consume",
            "-b",
            "broker:9092",
            "-t",
            "t",
            "-d",
            "broker,bogus",
        ])
        .output()
        .expect("run weir");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        [
            "weir: error: unknown -d context `bogus`: expected all or a comma-separated list of broker, fetch, cgrp, consumer, metadata, protocol"
        ],
    );
}

/// `--help` documents `-d`.
#[test]
fn help_documents_debug_contexts() {
    let o = Command::new(WEIR)
        .args(["consume", "--help"])
        .output()
        .expect("run weir");
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(
        help.contains("-d <CONTEXTS>") && help.contains("cgrp"),
        "{help}"
    );
    // What -e does while the cluster cannot be reached (issue 10, defect 12).
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("While no broker can be reached, -e does not end the run")
            && flat.contains("default.api.timeout.ms"),
        "{help}"
    );
}

/// No broker reachable: a warning naming the address and the cause at the default
/// level, at once and then rate limited (weir printed nothing until killed).
#[test]
fn an_unreachable_broker_is_warned_about_at_the_default_level() {
    let addr = format!("127.0.0.1:{}", closed_port());
    let (lines, ok) = stderr_until(
        &["consume", "-b", &addr, "-t", "t", "-e"],
        Duration::from_secs(10),
        |l| l.starts_with("weir: warning: ") && l.contains(&addr) && l.contains("refused"),
    );
    assert!(ok, "no warning naming {addr}; stderr: {lines:?}");
    // Rate limited: the next few seconds of retries add no second line.
    let (lines, _) = stderr_until(
        &["consume", "-b", &addr, "-t", "t", "-e"],
        Duration::from_secs(4),
        |_| false,
    );
    let warnings = lines.iter().filter(|l| l.contains(&addr)).count();
    assert_eq!(warnings, 1, "{lines:?}");
}
