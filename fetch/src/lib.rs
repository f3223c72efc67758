//! weir-fetch: the synchronous `mio` reactor, broker connections, the ring buffer and
//! the pinned partition workers.

pub mod conn;
pub mod ring;
pub mod workers;
