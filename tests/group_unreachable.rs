//! `weir consume -G` while no broker answers: it must wait, not spin, and still stop
//! cleanly on SIGTERM. (A due coordinator timer that waited on a connection once
//! turned the reactor's wait into zero: 95 % of a core spent in epoll_wait.)
//!
//! The check reads the child's own CPU time from /proc, which other load on the
//! machine barely affects: spinning costs about one CPU-second per second, idling a
//! few milliseconds.

use std::process::{Command, Stdio};
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

#[test]
fn group_mode_with_no_reachable_broker_idles_and_stops_on_sigterm() {
    // Port 1 on loopback: connections are refused at once, again and again.
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "consume",
            "-b",
            "127.0.0.1:1",
            "-G",
            "idle-group",
            "idle-topic",
            "-q",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start weir");
    let pid = child.id();
    sleep(Duration::from_secs(3));
    let cpu = cpu_seconds(pid);

    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let start = Instant::now();
    let exit = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("weir did not stop within 15 s of SIGTERM");
        }
        sleep(Duration::from_millis(50));
    };
    assert!(
        cpu < 0.5,
        "weir used {cpu:.2} CPU-seconds in 3 s waiting for an unreachable broker: a busy loop"
    );
    assert_eq!(exit.code(), Some(0), "SIGTERM should stop weir cleanly");
}
