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
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_else(|| fail(&format!("{a} needs a value")));
        match a.as_str() {
            "--bootstrap" => bootstrap = v,
            "--topic" => topic = v,
            "--partitions" => partitions = v.parse().unwrap_or_else(|_| fail("--partitions")),
            "--records" => records = v.parse().unwrap_or_else(|_| fail("--records")),
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
        "{{\"summary\": {{\"records\": {n}, \"bytes\": {bytes}, \"seconds\": {secs:.6}, \"records_per_s\": {:.1}, \"mb_per_s\": {:.3}, \"touch\": {touch}, \"gaps\": {gaps}}}}}",
        n as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    if gaps != 0 {
        fail(&format!("{gaps} offset gaps or repeats"));
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("rdkafka-peer: {msg}");
    std::process::exit(1)
}
