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

pub mod peer;
pub mod scripted;
pub mod tansu;
pub mod wire;

use std::path::{Path, PathBuf};

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
