//! weir-consumer: the embeddable Kafka consumer.
//!
//! What a service needs to consume from Kafka with weir, and nothing of the `weir`
//! command line (no argument parsing, progress bars, HTTP server or signal handling):
//!
//! * [`config`]: Kafka's consumer properties (names, defaults, validation),
//!   `.properties` files and the profile presets, layered defaults < profile < file <
//!   overrides, validated once into a [`ConsumerConfig`].
//! * [`ConsumerConfig::fetch_config`] and [`ConsumerConfig::group_config`]: the typed
//!   settings each layer takes, derived in one place.
//! * [`fetch::Consumer`]: manual assignment (the fetch reactor, `poll` on the caller's
//!   thread or pinned workers).
//! * [`group::GroupConsumer`]: consumer groups: the reactor and the coordinator's state
//!   machine on one thread (`poll`) or with pinned workers (`run_workers`), a rebalance
//!   listener, and commits of processed offsets only.
//! * [`fetch::metrics`]: the consumer's counters as plain data, for any exporter.
//!
//! The lower crates are re-exported: [`fetch`] (weir-fetch), [`coordinator`]
//! (weir-coordinator) and [`protocol`] (weir-protocol).
//!
//! ```no_run
//! use std::time::Duration;
//! use weir_consumer::config::{ConfigBuilder, Mode};
//! use weir_consumer::group::GroupConsumer;
//!
//! let mut b = ConfigBuilder::new();
//! b.property("bootstrap.servers", "127.0.0.1:9092")?
//!     .property("group.id", "billing")?
//!     .property("isolation.level", "read_committed")?;
//! let cfg = b.build(Mode::Group)?;
//! let mut consumer = GroupConsumer::new(cfg.fetch_config(), cfg.group_config()?)?;
//! consumer.subscribe(["invoices"]);
//! loop {
//!     consumer.poll(Duration::from_millis(100), |r| {
//!         println!("{}-{}@{}", r.topic, r.partition, r.offset());
//!     })?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod config;
pub mod group;
pub mod jaas;
mod typed;

pub use config::{ConfigBuilder, ConfigError, ConsumerConfig};
pub use group::{GroupConsumer, GroupConsumerError, RebalanceListener};

pub use weir_coordinator as coordinator;
pub use weir_fetch as fetch;
pub use weir_protocol as protocol;

/// The README's Rust examples, compiled as doctests of this crate so they cannot drift
/// from the API and need nothing but this crate.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
