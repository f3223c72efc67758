//! Shared support for the root integration tests: `mod support;` in a file of tests/.
//!
//! - [`tansu`]: a real broker (tansu) on a free loopback port, killed on drop.
//! - [`peer`]: librdkafka through `scripts/produce.py` and `scripts/consume_rdkafka.py`.
//! - [`scripted`]: a fake broker answering from a script, for faults on demand.
//! - [`wire`]: raw request/response helpers over a `TcpStream`.
//!
//! Setup (once per machine): `scripts/install-tansu.sh` and `scripts/setup-python.sh`.
//! Without them the tests that need them fail and say which script to run.

// Each test binary uses its own subset of the support code.
#![allow(dead_code)]

pub mod broker;
pub mod kafka;
pub mod peer;
pub mod scripted;
pub mod tansu;
pub mod wire;

use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::{Duration, Instant};

/// Waits for `child` at most `limit`, killing it (and failing the test, with its
/// stderr) past that: a hang is a failure, not a stuck test run.
pub fn wait_bounded(mut child: Child, limit: Duration, what: &str) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("collect output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect output");
            panic!(
                "{what} did not finish in {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The repository root (the root package's manifest directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// A topic name unique within this test process (tests share a broker only by choice,
/// but names stay readable in broker logs).
pub fn unique_topic(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh directory under the target's tmp dir, unique within this process.
pub fn scratch_dir(prefix: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{prefix}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// A port the kernel reports free on 127.0.0.1 (released before the broker binds it;
/// the launchers retry with other ports when they lose that race).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0: {e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local_addr: {e}"))
        .port()
}
