//! `weir consume` while no broker answers: it must wait, not spin, and still stop
//! cleanly (exit 0) on SIGTERM, in group mode and while listing a topic's partitions
//! in manual mode. (A due coordinator timer that waited on a connection once turned
//! the reactor's wait into zero: 95 % of a core spent in epoll_wait.)
//!
//! The check reads the child's own CPU time from /proc, which other load on the
//! machine barely affects: spinning costs about one CPU-second per second, idling a
//! few milliseconds.

use std::process::{Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').expect("comm field") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let ticks: u64 = f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime");
    // /proc reports CPU time in USER_HZ ticks, which Linux fixes at 100 per second.
    ticks as f64 / 100.0
}

/// Runs weir against a closed port for `idle`, then SIGTERMs it: (CPU seconds used
/// while idle, exit status).
fn idle_then_sigterm(args: &[&str], idle: Duration) -> (f64, ExitStatus) {
    // Port 1 on loopback: connections are refused at once, again and again.
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["consume", "-b", "127.0.0.1:1", "-q"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start weir");
    let pid = child.id();
    sleep(idle);
    let cpu = cpu_seconds(pid);
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return (cpu, s);
        }
        if start.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("weir {args:?} did not stop within 15 s of SIGTERM");
        }
        sleep(Duration::from_millis(50));
    }
}

#[test]
fn group_mode_with_no_reachable_broker_idles_and_stops_on_sigterm() {
    let (cpu, exit) =
        idle_then_sigterm(&["-G", "idle-group", "idle-topic"], Duration::from_secs(3));
    assert!(
        cpu < 0.5,
        "weir -G used {cpu:.2} CPU-seconds in 3 s waiting for an unreachable broker: a busy loop"
    );
    assert_eq!(exit.code(), Some(0), "SIGTERM should stop weir -G cleanly");
}

#[test]
fn sigterm_while_listing_partitions_is_a_clean_stop() {
    // Without -p, weir first asks for the topic's partitions, retrying until
    // default.api.timeout.ms; a signal then is a normal stop, not a failure.
    let (cpu, exit) = idle_then_sigterm(&["-t", "idle-topic"], Duration::from_secs(2));
    assert!(
        cpu < 0.5,
        "weir used {cpu:.2} CPU-seconds in 2 s listing partitions: a busy loop"
    );
    assert_eq!(
        exit.code(),
        Some(0),
        "SIGTERM while listing partitions should exit 0"
    );
}
