//! The allocation cap works: an allocation above `ALLOC_CAP` aborts the process
//! (which libFuzzer and AFL both report as a crash), one below it does not.

use std::process::Command;

// Link the library so its global allocator is this test binary's allocator.
use weir_fuzz::ALLOC_CAP;

const CHILD: &str = "WEIR_FUZZ_ALLOC_CHILD";

#[test]
fn allocation_above_cap_aborts() {
    if let Ok(size) = std::env::var(CHILD) {
        let size: usize = size.parse().expect("size");
        let v: Vec<u8> = Vec::with_capacity(size);
        std::hint::black_box(&v);
        return;
    }
    let run = |size: usize| {
        Command::new(std::env::current_exe().expect("test binary"))
            .args(["allocation_above_cap_aborts", "--exact", "--nocapture"])
            .env(CHILD, size.to_string())
            .output()
            .expect("run child")
    };
    let small = run(ALLOC_CAP / 2);
    assert!(small.status.success(), "below the cap: {small:?}");
    let big = run(ALLOC_CAP + 1);
    assert!(!big.status.success(), "above the cap did not fail");
    let stderr = String::from_utf8_lossy(&big.stderr);
    assert!(
        stderr.contains(&format!(
            "allocation of {} bytes exceeds ALLOC_CAP",
            ALLOC_CAP + 1
        )),
        "{stderr}"
    );
}
