//! A service embedding weir as a consumer-group member, configured as a Java
//! consumer would be: Kafka's property names, optionally from a `.properties` file.
//!
//! ```sh
//! cargo run -p weir-consumer --example group -- 127.0.0.1:9092 my-group events [consumer.properties]
//! ```
//!
//! For 60 s it prints each record's coordinates and commits what it processed every
//! `auto.commit.interval.ms` (only offsets whose handler returned); then it closes
//! (final commit, LeaveGroup), so the group moves the partitions at once instead of
//! waiting for the session timeout. A service calls `close` from its shutdown path.

use std::path::Path;
use std::time::{Duration, Instant};

use weir_consumer::config::{ConfigBuilder, Mode};
use weir_consumer::coordinator::TopicPartition;
use weir_consumer::group::{GroupConsumer, RebalanceListener};

struct Log;

impl RebalanceListener for Log {
    fn on_partitions_assigned(&mut self, p: &[TopicPartition]) {
        eprintln!("assigned: {p:?}");
    }
    fn on_partitions_revoked(&mut self, p: &[TopicPartition]) {
        eprintln!("revoked: {p:?}");
    }
    fn on_partitions_lost(&mut self, p: &[TopicPartition]) {
        eprintln!("lost: {p:?}");
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [brokers, group, topic, rest @ ..] = args.as_slice() else {
        return Err("usage: group BROKERS GROUP TOPIC [consumer.properties]".into());
    };
    let mut b = ConfigBuilder::new();
    if let Some(file) = rest.first() {
        b.properties_file(Path::new(file))?;
    }
    b.property("bootstrap.servers", brokers)?
        .property("group.id", group)?;
    // One validation for everything; warnings are advice, not errors.
    let cfg = b.build(Mode::Group)?;
    for w in &cfg.warnings {
        eprintln!("warning: {w}");
    }

    let mut consumer = GroupConsumer::new(cfg.fetch_config(), cfg.group_config()?)?;
    consumer.set_listener(Log);
    consumer.subscribe([topic.as_str()]);
    let until = Instant::now() + Duration::from_secs(60);
    let mut records = 0u64;
    while Instant::now() < until {
        records += consumer.poll(Duration::from_millis(100), |r| {
            println!("{}-{}@{}", r.topic, r.partition, r.offset());
        })? as u64;
    }
    consumer.close(Duration::from_secs(10))?;
    eprintln!("{records} records");
    Ok(())
}
