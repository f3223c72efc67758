//! weir: a Kafka consumer with a zero-copy fetch path.
//!
//! This crate holds the `weir` binary and the pieces it is made of; the fetch engine
//! (`weir_fetch`), the group state machine (`weir_coordinator`) and the wire protocol
//! (`weir_protocol`) are re-exported.
//!
//! * [`config`]: Kafka's consumer properties (names, defaults, validation), `.properties`
//!   files, `-X` pairs and the `--profile` presets, layered defaults < profile < file < -X.
//! * [`format`](mod@format): kcat's output formats (`-f` tokens, `-J` envelope, value per line) over
//!   a borrowed [`format::RecordView`], without per-record allocation.
//! * [`sink`]: the exactly-once file sink of `--sink DIR` (segments plus a checkpoint
//!   made durable with fsync and rename ordering; recovery after `kill -9`).
//! * [`metrics`]: Prometheus metrics with the names `alerts/weir-alerts.yml` uses, served
//!   at `/metrics`.
//! * [`group`]: [`group::GroupConsumer`], the library's consumer-group API: the fetch
//!   reactor and the coordinator's state machine on one thread (`poll`) or with pinned
//!   workers (`run_workers`), a rebalance listener, and commits of processed offsets only.
//! * [`cli`], [`consume`] and [`consume_group`]: the command line (kcat's flags) and the
//!   consume loops, manual assignment and group mode (`-G`), whose commits follow the
//!   flushed or durable output.
//! * [`admin`]: `weir groups list` / `weir groups describe` (ListGroups on every broker;
//!   FindCoordinator, DescribeGroups, OffsetFetch and the Fetch high watermark for lag).
//! * [`logger`]: the binary's stderr logger for the library's `log` records (`-d`).

pub mod admin;
pub mod cli;
pub mod config;
pub mod consume;
pub mod consume_group;
pub mod format;
pub mod group;
pub mod logger;
pub mod metrics;
pub mod sink;

pub use weir_coordinator as coordinator;
pub use weir_fetch as fetch;
pub use weir_protocol as protocol;

/// The README's Rust examples, compiled as doctests so they cannot drift from the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
