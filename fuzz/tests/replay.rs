//! Replays every committed seed (`seeds/<target>/`) and every saved crash
//! (`regressions/<target>/`) through its target body, without a fuzzer:
//! `cargo test --manifest-path fuzz/Cargo.toml`.

use std::path::Path;

#[test]
fn seeds_and_regressions_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut ran = 0;
    for (name, target) in weir_fuzz::targets::ALL {
        for kind in ["seeds", "regressions"] {
            let dir = root.join(kind).join(name);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                assert!(
                    kind == "regressions",
                    "no seeds for {name} in {}",
                    dir.display()
                );
                continue;
            };
            for entry in entries {
                let path = entry.expect("dir entry").path();
                let data = std::fs::read(&path).expect("read input");
                eprintln!("{name}: {}", path.display());
                target(&data);
                ran += 1;
            }
        }
    }
    assert!(ran >= 30, "only {ran} inputs replayed");
}
