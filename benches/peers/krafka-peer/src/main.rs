//! Reads `--records N` records from every partition of `--topic` with krafka's
//! `Consumer` (no group: the partitions are assigned by hand and start at the earliest
//! offset), touching every value (its length, first and last byte, as weir's bench
//! handler does) and checking offsets, then prints one JSON line in the shape the
//! other peers print:
//!   {"summary": {"records", "bytes", "seconds", "records_per_s", "mb_per_s"}}
//! "seconds" runs from the first record to the last; "bytes" counts key+value bytes.
//! Everything else is krafka's default (a multi-threaded Tokio runtime with one worker
//! per core, fetch sizes as Java's).
//!
//!   krafka-peer --bootstrap B --topic T --partitions P --records N

use std::time::{Duration, Instant};

use krafka::consumer::AutoOffsetReset;
use krafka::Kafka;

#[tokio::main]
async fn main() {
    let mut bootstrap = String::new();
    let mut topic = String::new();
    let mut partitions = 1i32;
    let mut records = 0u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_else(|| fail(&format!("{a} needs a value")));
        match a.as_str() {
            "--bootstrap" => bootstrap = v,
            "--topic" => topic = v,
            "--partitions" => partitions = v.parse().unwrap_or_else(|_| fail("--partitions")),
            "--records" => records = v.parse().unwrap_or_else(|_| fail("--records")),
            other => fail(&format!("unknown argument {other}")),
        }
    }
    let kafka = Kafka::builder(bootstrap)
        .client_id("weir-bench-krafka-peer")
        .connect()
        .await
        .unwrap_or_else(|e| fail(&format!("connect: {e}")));
    let consumer = kafka
        .consumer_without_group()
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .build()
        .await
        .unwrap_or_else(|e| fail(&format!("build: {e}")));
    consumer
        .assign(&topic, (0..partitions).collect())
        .await
        .unwrap_or_else(|e| fail(&format!("assign: {e}")));
    let (mut n, mut bytes, mut touch, mut gaps) = (0u64, 0u64, 0u64, 0u64);
    let mut expect = vec![-1i64; partitions.max(0) as usize];
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(600);
    while n < records {
        if Instant::now() > deadline {
            fail(&format!("read {n} of {records} records in 600 s"));
        }
        let batch = consumer
            .poll(Duration::from_millis(100))
            .await
            .unwrap_or_else(|e| fail(&format!("poll: {e}")));
        if batch.is_empty() {
            continue;
        }
        let now = Instant::now();
        first.get_or_insert(now);
        last = now;
        for m in &batch {
            let v: &[u8] = m.value.as_deref().unwrap_or_default();
            touch = touch
                .wrapping_add(v.len() as u64)
                .wrapping_add(u64::from(v.first().copied().unwrap_or(0)))
                .wrapping_add(u64::from(v.last().copied().unwrap_or(0)));
            if let Some(next) = usize::try_from(m.partition).ok().and_then(|p| expect.get_mut(p)) {
                if *next >= 0 && *next != m.offset {
                    gaps += 1;
                }
                *next = m.offset + 1;
            }
            bytes += (v.len() + m.key.as_ref().map_or(0, |k| k.len())) as u64;
            n += 1;
        }
    }
    let secs = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64()).max(1e-9);
    println!(
        "{{\"summary\": {{\"records\": {n}, \"bytes\": {bytes}, \"seconds\": {secs:.6}, \"records_per_s\": {:.1}, \"mb_per_s\": {:.3}, \"touch\": {touch}, \"gaps\": {gaps}}}}}",
        n as f64 / secs,
        bytes as f64 / secs / 1e6,
    );
    if gaps != 0 {
        fail(&format!("{gaps} offset gaps or repeats"));
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("krafka-peer: {msg}");
    std::process::exit(1)
}
