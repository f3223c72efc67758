//! The exactly-once file sink under real `kill -9`.
//!
//! The parent test re-runs this test binary as a child (selected with an environment
//! variable) that writes records from a deterministic generator through the sink,
//! standing in for the fetch engine: it resumes at the sink's resume positions, and
//! like a re-fetch it sometimes replays a few records below them. The parent kills it
//! with SIGKILL at pseudo-random moments, restarts it, and finally lets it finish;
//! then every partition must hold each record exactly once, in order.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use weir::sink::{Sink, SinkConfig};

const CHILD_ENV: &str = "WEIR_SINK_CHILD_DIR";
const TOPIC: &str = "events";
const PARTITIONS: i32 = 4;
const PER_PARTITION: i64 = 6000;

fn record(p: i32, o: i64) -> Vec<u8> {
    // Variable length, so segment boundaries fall everywhere.
    format!(
        "{TOPIC} {p} {o} {}\n",
        "abcdefghij".repeat((o % 5) as usize)
    )
    .into_bytes()
}

fn sink_config(dir: &Path) -> SinkConfig {
    SinkConfig {
        dir: dir.to_owned(),
        segment_bytes: 8 * 1024,
        segment_age: Some(Duration::from_millis(20)),
        checkpoint_interval: Duration::from_millis(3),
    }
}

/// The child: only does something when started by the parent below.
#[test]
fn child_writer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let mut sink = Sink::open(sink_config(&dir)).expect("open sink");
    let resume = sink.resume_positions();
    let mut next: Vec<i64> = (0..PARTITIONS)
        .map(|p| {
            let r = resume.get(&(TOPIC.to_owned(), p)).copied().unwrap_or(0);
            // Replay a few records, as a fetch from a committed offset might.
            (r - 3).max(0)
        })
        .collect();
    let mut i = 0usize;
    while next.iter().any(|&n| n < PER_PARTITION) {
        let p = (i % PARTITIONS as usize) as i32;
        i += 1;
        let n = &mut next[p as usize];
        if *n >= PER_PARTITION {
            continue;
        }
        let now = Instant::now();
        sink.write(TOPIC, p, *n, &record(p, *n), now)
            .expect("write");
        *n += 1;
        sink.poll(now).expect("poll");
    }
    sink.close().expect("close");
}

#[test]
fn kill_9_at_random_moments_keeps_exactly_once() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("weir-sink-kill9-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let exe = std::env::current_exe().expect("test binary path");
    let spawn = || {
        Command::new(&exe)
            .args(["--exact", "child_writer", "--test-threads=1", "--quiet"])
            .env(CHILD_ENV, &dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn child")
    };
    // Calibrate: one uninterrupted run in a scratch dir says how long the whole job
    // takes on this machine, and every kill below lands within its first eighth. So
    // the child always needs several lives to finish, on a fast machine as on a slow
    // one (fixed 10-100 ms delays let a fast CI machine finish after 4 kills).
    let calibration = dir.with_extension("calibrate");
    let _ = std::fs::remove_dir_all(&calibration);
    let t0 = Instant::now();
    let status = Command::new(&exe)
        .args(["--exact", "child_writer", "--test-threads=1", "--quiet"])
        .env(CHILD_ENV, &calibration)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("calibration run");
    let whole = t0.elapsed();
    assert!(status.success(), "calibration run failed: {status}");
    let _ = std::fs::remove_dir_all(&calibration);
    let window_us = (whole.as_micros() as u64 / 8).max(2_000);
    eprintln!("one whole run takes {whole:?}; kills land within {window_us} us");
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut killed = 0;
    for _ in 0..40 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = spawn();
        std::thread::sleep(Duration::from_micros(window_us / 4 + seed % window_us));
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix.
        child.wait().expect("wait");
        killed += 1;
        // After every kill, what is durable is an exact prefix of each partition.
        for p in 0..PARTITIONS {
            if let Ok(got) = Sink::read_durable(&dir, TOPIC, p) {
                let want: Vec<u8> = (0..PER_PARTITION).flat_map(|o| record(p, o)).collect();
                assert!(
                    want.starts_with(&got),
                    "partition {p} is not an exact prefix after kill {killed}"
                );
            }
        }
    }
    eprintln!("child killed {killed} times");
    let status = spawn().wait().expect("final run");
    assert!(status.success(), "final run failed: {status}");
    assert!(
        killed >= 5,
        "the child finished before it could be killed often enough ({killed} kills)"
    );
    for p in 0..PARTITIONS {
        let want: Vec<u8> = (0..PER_PARTITION).flat_map(|o| record(p, o)).collect();
        let got = Sink::read_durable(&dir, TOPIC, p).expect("read partition");
        assert!(
            got == want,
            "partition {p}: {} bytes, want {}",
            got.len(),
            want.len()
        );
        // The sealed segments alone are whole records, each segment within bounds.
        let segs = Sink::segments(&dir, TOPIC, p).expect("segments");
        assert!(segs.len() > 3, "expected rotations, got {segs:?}");
        for s in &segs {
            let len = std::fs::metadata(s).expect("stat").len();
            assert!(len <= 8 * 1024, "{} is {len} bytes", s.display());
        }
    }
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
