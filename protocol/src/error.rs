//! Decode errors: what went wrong when bytes from the network did not parse.
//!
//! Every decoder in this crate returns [`DecodeError`] for malformed input. None of
//! them panics, loops without consuming input, or allocates by a length it has not
//! checked against the bytes that remain.

use std::fmt;

/// Bytes from a broker (or a file) that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before a field was complete.
    Truncated {
        /// Which field was being read.
        what: &'static str,
        /// How many bytes the field needed.
        needed: usize,
        /// How many bytes were left.
        remaining: usize,
    },
    /// A length or count was negative where only null (-1) or a size is allowed.
    NegativeLength {
        /// Which field carried the length.
        what: &'static str,
        /// The value read.
        length: i64,
    },
    /// A length or element count is larger than the bytes that remain could hold.
    LengthTooLarge {
        /// Which field carried the length.
        what: &'static str,
        /// The value read.
        length: u64,
        /// How many bytes were left.
        remaining: usize,
    },
    /// A variable-length integer ran past its maximum width.
    VarintTooLong {
        /// Which field was being read.
        what: &'static str,
    },
    /// A string field was not valid UTF-8.
    InvalidUtf8 {
        /// Which field was being read.
        what: &'static str,
    },
    /// A record batch or message carried a magic byte this crate does not know.
    UnsupportedMagic(i8),
    /// A checksum did not match the bytes it covers.
    CrcMismatch {
        /// The checksum stored in the input.
        stored: u32,
        /// The checksum computed over the covered bytes.
        computed: u32,
    },
    /// The attributes named a compression codec that does not exist.
    UnknownCompression(u8),
    /// A compressed payload could not be decompressed.
    Decompress {
        /// The codec's name.
        codec: &'static str,
        /// What the codec reported.
        reason: String,
    },
    /// Decompression would exceed the caller's cap on decompressed size.
    DecompressedTooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// A field held a value the protocol forbids (a protocol violation).
    Invalid {
        /// Which field.
        what: &'static str,
        /// Why it is wrong.
        reason: &'static str,
    },
    /// Trailing bytes were left after a structure that should have filled its frame.
    TrailingBytes {
        /// Which structure.
        what: &'static str,
        /// How many bytes were left over.
        remaining: usize,
    },
    /// A response was read for an API version this crate cannot decode.
    UnsupportedVersion {
        /// The Kafka API key.
        api_key: i16,
        /// The version asked for.
        version: i16,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated {
                what,
                needed,
                remaining,
            } => write!(
                f,
                "truncated input reading {what}: needed {needed} bytes, {remaining} left"
            ),
            Self::NegativeLength { what, length } => {
                write!(f, "negative length {length} for {what}")
            }
            Self::LengthTooLarge {
                what,
                length,
                remaining,
            } => write!(
                f,
                "length {length} for {what} exceeds the {remaining} bytes that remain"
            ),
            Self::VarintTooLong { what } => write!(f, "varint too long reading {what}"),
            Self::InvalidUtf8 { what } => write!(f, "invalid UTF-8 in {what}"),
            Self::UnsupportedMagic(m) => write!(f, "unsupported record batch magic {m}"),
            Self::CrcMismatch { stored, computed } => write!(
                f,
                "CRC mismatch: stored {stored:#010x}, computed {computed:#010x} (corrupt data)"
            ),
            Self::UnknownCompression(c) => write!(f, "unknown compression codec id {c}"),
            Self::Decompress { codec, reason } => {
                write!(f, "{codec} decompression failed: {reason}")
            }
            Self::DecompressedTooLarge { limit } => write!(
                f,
                "decompressed data exceeds the {limit}-byte limit (raise the limit or check the producer)"
            ),
            Self::Invalid { what, reason } => write!(f, "invalid {what}: {reason}"),
            Self::TrailingBytes { what, remaining } => {
                write!(f, "{remaining} unexpected trailing bytes after {what}")
            }
            Self::UnsupportedVersion { api_key, version } => {
                write!(f, "cannot decode version {version} of API key {api_key}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}
