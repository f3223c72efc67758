//! Reads `--records N` records from every partition of `--topic` (manual assignment
//! from the beginning, no group) with librdkafka's consumer API, touching every value (its length, first and last byte, as weir's bench
//! handler does) and checking offsets,
//! then prints one JSON line:
//!   {"summary": {"records", "bytes", "seconds", "records_per_s", "mb_per_s"}}
//! "seconds" runs from the first record to the last; "bytes" counts key+value bytes.
//!
//!   rdkafka-peer --bootstrap B --topic T --partitions P --records N [-X key=value]...

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

fn main() {
    let mut bootstrap = String::new();
    let mut topic = String::new();
    let mut partitions = 1i32;
    let mut records = 0u64;
    let mut extra: Vec<(String, String)> = Vec::new();
    // --latency 1: sample now minus the send time each value starts with (decimal
    // microseconds since the epoch, scripts/latency_producer.py), after --warmup records.
    let (mut latency, mut warmup) = (false, 0u64);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_else(|| fail(&format!("{a} needs a value")));
        match a.as_str() {
            "--bootstrap" => bootstrap = v,
            "--topic" => topic = v,
            "--partitions" => partitions = v.parse().unwrap_or_else(|_| fail("--partitions")),
            "--records" => records = v.parse().unwrap_or_else(|_| fail("--records")),
            "--latency" => latency = v != "0",
            "--warmup" => warmup = v.parse().unwrap_or_else(|_| fail("--warmup")),
            "-X" => {
                let (k, val) = v.split_once('=').unwrap_or_else(|| fail("-X wants key=value"));
                extra.push((k.into(), val.into()));
            }
            other => fail(&format!("unknown argument {other}")),
        }
    }
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &bootstrap)
        .set("group.id", "weir-bench-rdkafka-peer")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    for (k, v) in &extra {
        cfg.set(k, v);
    }
    let consumer: BaseConsumer = cfg.create().unwrap_or_else(|e| fail(&format!("create: {e}")));
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(&topic, p, Offset::Beginning)
            .unwrap_or_else(|e| fail(&format!("assign: {e}")));
    }
    consumer.assign(&tpl).unwrap_or_else(|e| fail(&format!("assign: {e}")));
    let (mut n, mut bytes, mut touch, mut gaps) = (0u64, 0u64, 0u64, 0u64);
    let mut expect = vec![-1i64; partitions.max(0) as usize];
    let mut lat: Vec<i64> = Vec::new();
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(600);
    while n < records {
        if Instant::now() > deadline {
            fail(&format!("read {n} of {records} records in 600 s"));
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(e)) => fail(&format!("poll: {e}")),
            Some(Ok(m)) => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
                let v = m.payload().unwrap_or_default();
                if latency && n >= warmup {
                    if let Some(sent) = stamp_us(v) {
                        lat.push(now_us() - sent);
                    }
                }
                touch = touch
                    .wrapping_add(v.len() as u64)
                    .wrapping_add(u64::from(v.first().copied().unwrap_or(0)))
                    .wrapping_add(u64::from(v.last().copied().unwrap_or(0)));
                if let Some(next) = usize::try_from(m.partition()).ok().and_then(|p| expect.get_mut(p)) {
                    if *next >= 0 && *next != m.offset() {
                        gaps += 1;
                    }
                    *next = m.offset() + 1;
                }
                bytes += (v.len() + m.key().map_or(0, <[u8]>::len)) as u64;
                n += 1;
            }
        }
    }
    let secs = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64()).max(1e-9);
    println!(
        "{{\"summary\": {{\"records\": {n}, \"bytes\": {bytes}, \"seconds\": {secs:.6}, \"records_per_s\": {:.1}, \"mb_per_s\": {:.3}, \"touch\": {touch}, \"gaps\": {gaps}, \"latency_us\": {}}}}}",
        n as f64 / secs,
        bytes as f64 / secs / 1e6,
        percentiles(&mut lat)
    );
    if gaps != 0 {
        fail(&format!("{gaps} offset gaps or repeats"));
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("rdkafka-peer: {msg}");
    std::process::exit(1)
}

fn stamp_us(v: &[u8]) -> Option<i64> {
    let digits = v.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&v[..digits]).ok()?.parse().ok()
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// p50, p99, p99.9 and max as a JSON object ("null" without samples).
fn percentiles(v: &mut [i64]) -> String {
    if v.is_empty() {
        return "null".into();
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!(
        "{{\"n\": {}, \"p50\": {}, \"p99\": {}, \"p999\": {}, \"max\": {}}}",
        v.len(),
        at(0.5),
        at(0.99),
        at(0.999),
        at(1.0)
    )
}
