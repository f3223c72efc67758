//! weir: a Kafka consumer with a zero-copy fetch path.
//!
//! This crate holds the `weir` binary and the pieces only it needs. The consumer itself
//! (configuration with Kafka's property names, manual assignment, consumer groups) is
//! the library `weir_consumer`, which a service embeds without anything of the command
//! line; it re-exports the fetch engine (`weir_fetch`), the group state machine
//! (`weir_coordinator`) and the wire protocol (`weir_protocol`).
//!
//! * [`format`](mod@format): kcat's output formats (`-f` tokens, `-J` envelope, value per line) over
//!   a borrowed [`format::RecordView`], without per-record allocation.
//! * [`sink`]: the exactly-once file sink of `--sink DIR` (segments plus a checkpoint
//!   made durable with fsync and rename ordering; recovery after `kill -9`).
//! * [`metrics`]: Prometheus metrics with the names `alerts/weir-alerts.yml` uses, served
//!   at `/metrics`.
//! * [`cli`]: the command line (kcat's flags), checked into a [`cli::ConsumePlan`].
//! * [`output`]: the one consume pipeline: a record source feeding one output stage
//!   (formatter, stdout or sink, metrics, `-c`), driven by one loop. The sources are
//!   [`consume`] (manual assignment) and [`consume_group`] (`-G`, whose commits follow
//!   the flushed or durable output); neither imports the other.
//! * [`admin`]: `weir groups list` / `weir groups describe` (ListGroups on every broker;
//!   FindCoordinator, DescribeGroups, OffsetFetch and the Fetch high watermark for lag).
//! * [`logger`]: the binary's stderr logger for the library's `log` records (`-d`).

pub mod admin;
pub mod cli;
pub mod consume;
pub mod consume_group;
pub mod delete;
pub mod format;
pub mod lag;
pub mod logger;
pub mod metadata;
pub mod metrics;
pub mod output;
pub mod reset;
pub mod sink;
