//! weir-protocol: the Kafka wire protocol for weir.
//!
//! No sockets, threads or clocks live here: only bytes in, values or typed errors out.
//!
//! * [`reader::Reader`]: a bounded cursor; every length from the wire is checked
//!   against what remains before anything is sized by it.
//! * [`error::DecodeError`]: the one error type for malformed bytes.
//! * [`ErrorCode`]: broker error codes with Kafka's retriable flag.
//! * [`messages`]: request encoding and weir's own bounded response decoders.
//!
//! What this crate does not do: it opens no connections, keeps no time, spawns no
//! threads, and never panics on input.

pub mod compression;
pub mod control;
pub mod error;
pub mod error_code;
pub mod frame;
pub mod messages;
pub mod reader;
pub mod record;
pub mod txn;
pub mod versions;

pub use error::DecodeError;
pub use error_code::ErrorCode;
pub use frame::{
    ApiRequest, EncodeError, ResponseFrame, encode_request, encode_request_to, frame_len,
};
pub use messages::ResponseBody;
pub use reader::Reader;
pub use compression::{Compression, Decompressor};
pub use control::{ControlKind, ControlRecord};
pub use record::{
    Batch, Batches, Header, Headers, Record, RecordBatch, RecordBatchBuilder, RecordIter,
    TimestampType,
};
pub use txn::{AbortedTxnFilter, Verdict};
pub use versions::{ApiVersionTable, VersionError};
