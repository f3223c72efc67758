//! Record decoding throughput: weir's borrowed views against kafka-protocol's
//! `RecordBatchDecoder`, plus decompression speed per codec.
//!
//! Run: `cargo bench -p weir-protocol --bench records` (plain `harness = false`
//! timing loops; best of several rounds is reported).

use std::hint::black_box;
use std::time::{Duration, Instant};

use weir_protocol::compression::{Compression, Decompressor, compress};
use weir_protocol::record::{Batches, Header, RecordBatchBuilder};

const RECORDS_PER_BATCH: usize = 1000;

fn blob(
    batches: usize,
    key_len: usize,
    value_len: usize,
    headers: usize,
    codec: Compression,
) -> Vec<u8> {
    let key = vec![b'k'; key_len];
    let value: Vec<u8> = (0..value_len).map(|i| (i % 61) as u8 + b'0').collect();
    let hv = b"header-value-0123".to_vec();
    let hs: Vec<Header<'_>> = (0..headers)
        .map(|_| Header {
            key: b"trace-id",
            value: Some(&hv),
        })
        .collect();
    let mut out = Vec::new();
    for b in 0..batches {
        let mut bb = RecordBatchBuilder::new((b * RECORDS_PER_BATCH) as i64)
            .compression(codec)
            .producer(1, 0, 0);
        for i in 0..RECORDS_PER_BATCH {
            bb.append_with_headers(1_700_000_000_000 + i as i64, Some(&key), Some(&value), &hs);
        }
        bb.write_to(&mut out);
    }
    out
}

/// Best-of-`rounds` time for `f`.
fn best(rounds: usize, mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut n = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        n = black_box(f());
        best = best.min(t.elapsed());
    }
    (best, n)
}

fn weir_decode(data: &[u8], d: &mut Decompressor, check_crc: bool, with_headers: bool) -> usize {
    let mut n = 0usize;
    let mut sum = 0usize;
    for b in Batches::new(data) {
        let b = b.expect("valid batch");
        if check_crc {
            b.verify_crc().expect("crc");
        }
        for r in b.records(d).expect("records") {
            let r = r.expect("record");
            sum += r.value().map_or(0, <[u8]>::len) + r.key().map_or(0, <[u8]>::len);
            sum += r.offset() as usize;
            if with_headers {
                for h in r.headers() {
                    let h = h.expect("header");
                    sum += h.key.len() + h.value.map_or(0, <[u8]>::len);
                }
            }
            n += 1;
        }
    }
    black_box(sum);
    n
}

fn kp_decode(data: &bytes::Bytes) -> usize {
    let mut buf = data.clone();
    let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf).expect("decode");
    let mut n = 0;
    let mut sum = 0usize;
    for s in &sets {
        for r in &s.records {
            sum += r.value.as_ref().map_or(0, |v| v.len()) + r.key.as_ref().map_or(0, |v| v.len());
            for (k, v) in &r.headers {
                sum += k.len() + v.as_ref().map_or(0, |v| v.len());
            }
            n += 1;
        }
    }
    black_box(sum);
    n
}

fn report(name: &str, t: Duration, records: usize, bytes: usize) {
    let s = t.as_secs_f64();
    println!(
        "{name:<44} {:>8.2} M rec/s {:>8.2} GB/s",
        records as f64 / s / 1e6,
        bytes as f64 / s / 1e9
    );
}

fn main() {
    let rounds = 7;
    let mut d = Decompressor::new();
    println!("record decoding ({RECORDS_PER_BATCH} records per batch)");
    for (label, key, value, headers) in [
        ("tiny (no key, 10 B value), no headers", 0, 10, 0),
        ("small (8 B key, 64 B value), no headers", 8, 64, 0),
        ("small (8 B key, 64 B value), 1 header", 8, 64, 1),
    ] {
        let data = blob(200, key, value, headers, Compression::None);
        let (t, n) = best(rounds, || weir_decode(&data, &mut d, false, headers > 0));
        report(&format!("weir  {label}"), t, n, data.len());
        let (t, n) = best(rounds, || weir_decode(&data, &mut d, true, headers > 0));
        report(&format!("weir+crc {label}"), t, n, data.len());
        let b = bytes::Bytes::from(data.clone());
        let (t, n) = best(rounds, || kp_decode(&b));
        report(&format!("kafka-protocol {label}"), t, n, data.len());
    }
    let data = blob(20, 16, 1024, 0, Compression::None);
    let (t, n) = best(rounds, || weir_decode(&data, &mut d, true, false));
    report("weir+crc 1 KiB values", t, n, data.len());
    let (t, n) = best(rounds, || weir_decode(&data, &mut d, false, false));
    report("weir 1 KiB values (no crc)", t, n, data.len());

    println!("\ndecompression of 1 MiB of JSON-ish log lines");
    // JSON-ish log lines with pseudo-random ids, words and numbers (compresses a few
    // times, like application logs; not the best case of repeated bytes).
    let raw = {
        let words = [
            "click", "view", "purchase", "login", "logout", "search", "scroll", "error", "retry",
            "timeout", "checkout", "cart", "profile", "settings", "home", "help",
        ];
        let mut seed = 0x2545_f491u32;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let mut v = Vec::new();
        while v.len() < 1 << 20 {
            let line = format!(
                "{{\"ts\":{},\"user\":\"u{:08x}\",\"event\":\"{}\",\"path\":\"/{}/{}\",\"ms\":{},\"session\":\"{:016x}\"}}\n",
                1_700_000_000_000u64 + u64::from(rnd() % 100_000),
                rnd() % 50_000,
                words[rnd() as usize % words.len()],
                words[rnd() as usize % words.len()],
                words[rnd() as usize % words.len()],
                rnd() % 5000,
                (u64::from(rnd() % 1000) << 32) | u64::from(rnd() % 1000),
            );
            v.extend_from_slice(line.as_bytes());
        }
        v
    };
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let mut c = Vec::new();
        compress(codec, &raw, &mut c);
        let (t, _) = best(rounds, || {
            d.decompress(codec, &c).expect("decompress").len()
        });
        println!(
            "{:<8} ratio {:>5.2}  decompress {:>7.0} MB/s (output)",
            codec.name(),
            raw.len() as f64 / c.len() as f64,
            raw.len() as f64 / t.as_secs_f64() / 1e6
        );
    }
}
