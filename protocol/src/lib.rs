//! weir-protocol: the Kafka wire protocol for weir.
//!
//! No sockets, threads or clocks live here: only bytes in, values or typed errors out.
//!
//! * [`reader::Reader`]: a bounded cursor; every length from the wire is checked
//!   against what remains before anything is sized by it.
//! * [`error::DecodeError`]: the one error type for malformed bytes.
//! * [`ErrorCode`]: broker error codes with Kafka's retriable flag.
//! * [`messages`]: request encoding and weir's own bounded response decoders.
//! * [`record`]: zero-copy views of record batches (magic 2) and legacy message sets
//!   (magic 0/1), borrowed [`Record`]s and headers, and a [`RecordBatchBuilder`].
//! * [`compression`]: gzip, snappy, lz4 and zstd (pure Rust), with a bounded,
//!   reusable [`Decompressor`].
//! * [`control`] and [`txn`]: transaction markers and the read_committed filter.
//! * [`frame`]: size-prefixed framing, request headers + kafka-protocol bodies
//!   ([`encode_request`]), response headers ([`frame::parse_response`]).
//! * [`versions`]: the per-broker [`ApiVersionTable`] and version negotiation
//!   (broker range ∩ kafka-protocol's encoder ∩ weir's decoder).
//!
//! A connection's request/response cycle, as the reactor drives it:
//!
//! 1. bootstrap: ApiVersions (see [`messages::api_versions`] for the
//!    UNSUPPORTED_VERSION retry), then [`ApiVersionTable::from_response`];
//! 2. per request: `v = table.negotiate::<Req, Resp>()?`, then
//!    [`encode_request`]`(out, correlation_id, client_id, v, &req)`;
//! 3. per response frame: [`frame_len`] / [`frame::split_frame`] to cut it, then
//!    [`frame::parse_response`] with [`frame::response_header_flexible_by_key`] for
//!    the in-flight request's key and version, then `Resp::decode_body(body, v)`.
//!
//! What this crate does not do: it opens no connections, keeps no time, spawns no
//! threads, and never panics on input.

pub mod auth;
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

pub use compression::{Compression, Decompressor};
pub use control::{ControlKind, ControlRecord};
pub use error::DecodeError;
pub use error_code::ErrorCode;
pub use frame::{
    ApiRequest, EncodeError, ResponseFrame, encode_request, encode_request_to, frame_len,
};
pub use messages::ResponseBody;
pub use reader::Reader;
pub use record::{
    Batch, Batches, Header, Headers, Record, RecordBatch, RecordBatchBuilder, RecordIter,
    TimestampType,
};
pub use txn::{AbortedTxnFilter, Verdict};
pub use versions::{ApiVersionTable, VersionError};
