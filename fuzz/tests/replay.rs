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

/// The seeds are valid messages (so the fuzzers start deep, not at the first check).
#[test]
fn seeds_are_valid() {
    use weir_fuzz::responses::{KEYS, decodes, range};
    use weir_protocol::{Batches, Decompressor};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let files = |t: &str| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = std::fs::read_dir(root.join(t))
            .expect("seed dir")
            .map(|e| {
                let p = e.expect("dir entry").path();
                let name = p.file_name().expect("name").to_string_lossy().into_owned();
                (name, std::fs::read(&p).expect("read seed"))
            })
            .collect();
        v.sort();
        v
    };
    let mut d = Decompressor::new();
    for (name, data) in files("record_batches") {
        let mut it = Batches::new(&data);
        let mut n = 0;
        for b in &mut it {
            let b = b.unwrap_or_else(|e| panic!("{name}: {e}"));
            b.verify_crc().unwrap_or_else(|e| panic!("{name}: {e}"));
            for r in b.records(&mut d).unwrap_or_else(|e| panic!("{name}: {e}")) {
                r.unwrap_or_else(|e| panic!("{name}: {e}"));
                n += 1;
            }
        }
        assert_eq!(it.is_truncated(), name.contains("truncated"), "{name}");
        assert!(n > 0 || name.contains("empty"), "{name}: no records");
    }
    for (name, data) in files("fetch_response") {
        assert!(decodes(1, 4 + i16::from(data[0]), &data[1..]), "{name}");
    }
    for (name, data) in files("responses") {
        let key = KEYS[usize::from(data[0])];
        let version = range(key).0 + i16::from(data[1]);
        assert!(
            decodes(key, version, &data[2..]),
            "{name}: key {key} v{version}"
        );
    }
    for (name, data) in files("consumer_protocol") {
        use weir_coordinator::{Assignment, Subscription};
        match data[0] {
            0 => {
                Subscription::decode(&data[1..]).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            1 => {
                Assignment::decode(&data[1..]).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            _ => assert!(data.len() > 10, "{name}"),
        }
    }
}
