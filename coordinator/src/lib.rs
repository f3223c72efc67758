//! weir-coordinator: the sans-IO consumer-group state machine, assignors and offsets.
//!
//! Not yet implemented: this crate is a placeholder until its issue lands.
