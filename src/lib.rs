//! weir: a Kafka consumer with a zero-copy fetch path.
//!
//! The public `Consumer` API, configuration and the `weir` binary live here once the
//! fetch and coordinator crates land. Today this crate re-exports the protocol layer.

pub mod cli;
pub mod config;
pub mod consume;
pub mod format;
pub mod metrics;
pub mod sink;

pub use weir_coordinator as coordinator;
pub use weir_fetch as fetch;
pub use weir_protocol as protocol;
