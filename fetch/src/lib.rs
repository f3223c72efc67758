//! weir-fetch: the synchronous `mio` reactor, broker connections, the ring buffer and
//! the pinned partition workers.
//!
//! Not yet implemented: this crate is a placeholder until its issue lands.
