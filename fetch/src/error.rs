//! The errors the fetch layer reports to its caller.

use std::fmt;
use std::sync::Arc;

use weir_protocol::{DecodeError, ErrorCode, VersionError};

use crate::process::ChunkError;
use crate::ring::RingError;

/// Errors the fetch layer reports to its caller.
#[derive(Debug)]
#[non_exhaustive]
pub enum FetchError {
    /// The configuration is unusable; the message says what to change.
    Config(String),
    /// The poller could not be created or polled.
    Io(std::io::Error),
    /// `auto.offset.reset=none` and the position is not in the log.
    OffsetOutOfRange {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// The offset that was out of range.
        offset: i64,
    },
    /// A batch failed its CRC or did not decode; the partition is paused at it.
    Corrupt(ChunkError),
    /// A response did not fit in the ring.
    Ring(RingError),
    /// A response on a side connection (coordinator, admin) did not fit in its
    /// ring (`weir.coordinator.ring.bytes`); the connection was closed.
    SideResponseTooLarge {
        /// The response's size in bytes.
        frame: usize,
        /// The side ring's budget in bytes.
        capacity: usize,
    },
    /// The broker and weir share no version of an API.
    Version(VersionError),
    /// A broker error that retrying will not fix (authorization, invalid topic...).
    Broker {
        /// Which API answered.
        api: &'static str,
        /// The topic, when the error is per partition.
        topic: Option<Arc<str>>,
        /// The partition, when the error is per partition.
        partition: Option<i32>,
        /// The error code.
        code: ErrorCode,
    },
    /// The topic exists but has no such partition (Metadata lists `partitions` of
    /// them). Reported once; the reactor keeps asking Metadata with backoff, so the
    /// partition is fetched if the topic grows to include it.
    UnknownPartition {
        /// The topic.
        topic: Arc<str>,
        /// The partition that was assigned.
        partition: i32,
        /// How many partitions the topic has.
        partitions: usize,
    },
    /// Several fetches in a row of one partition returned records but no whole batch
    /// at or past the fetch offset (a truncated first batch, or batches wholly below
    /// it): a broker bug that retrying did not fix. The partition is paused there.
    NoProgress {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// The fetch offset that made no progress.
        offset: i64,
        /// How many answers in a row made none.
        fetches: u32,
        /// What the last answer held.
        reason: &'static str,
    },
    /// A broker sent bytes weir could not decode; the connection was closed (a caller
    /// that keeps polling gets a new one, after the reconnect backoff).
    Decode {
        /// Which API.
        api: &'static str,
        /// The decode error.
        error: DecodeError,
    },
    /// SASL authentication with a broker failed: wrong credentials, a mechanism the
    /// broker does not enable, or a broker answer the mechanism rejects. Retrying
    /// with the same settings fails the same way.
    Authentication {
        /// The broker's address.
        broker: String,
        /// The mechanism tried.
        mechanism: &'static str,
        /// What went wrong and what to change (never a secret).
        reason: String,
    },
    /// TLS with a broker failed in a way the settings decide: its certificate is not
    /// trusted, not for the name dialled, or expired; it refused weir's client
    /// certificate; or one side speaks TLS and the other does not.
    Tls {
        /// The broker's address.
        broker: String,
        /// What went wrong and which setting fixes it.
        reason: String,
    },
    /// A broker keeps accepting connections and closing them before any answer past
    /// the handshake: its listener speaks a different security protocol. Retries go
    /// on (with backoff); this says why they keep failing.
    Refused {
        /// The broker's address.
        broker: String,
        /// Connections closed that way in a row.
        closes: u32,
        /// Where in the bring-up, and what to check.
        hint: &'static str,
    },
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Refused {
                broker,
                closes,
                hint,
            } => write!(f, "{broker} closed {closes} connections in a row {hint}"),
            FetchError::Tls { broker, reason } => write!(f, "{broker}: TLS: {reason}"),
            FetchError::Authentication {
                broker,
                mechanism,
                reason,
            } => write!(
                f,
                "{broker}: SASL {mechanism} authentication failed: {reason}"
            ),
            Self::Config(m) => write!(f, "invalid configuration: {m}"),
            Self::Io(e) => write!(f, "poller error: {e}"),
            Self::OffsetOutOfRange {
                topic,
                partition,
                offset,
            } => write!(
                f,
                "offset {offset} is out of range for {topic}-{partition} and auto.offset.reset \
                 is none: seek to a valid offset or set auto.offset.reset to earliest or latest"
            ),
            Self::Corrupt(e) => write!(f, "{e}"),
            Self::Ring(e) => write!(f, "{e}"),
            Self::SideResponseTooLarge { frame, capacity } => write!(
                f,
                "a {frame}-byte answer from the group coordinator does not fit in the \
                 {capacity}-byte coordinator ring: raise weir.coordinator.ring.bytes above it"
            ),
            Self::Version(e) => write!(f, "{e}"),
            Self::Broker {
                api,
                topic,
                partition,
                code,
            } => match (topic, partition) {
                (Some(t), Some(p)) => write!(f, "{api} for {t}-{p} failed: {code}"),
                (Some(t), None) => write!(f, "{api} for topic {t} failed: {code}"),
                _ => write!(f, "{api} failed: {code}"),
            },
            Self::UnknownPartition {
                topic,
                partition,
                partitions,
            } => write!(
                f,
                "{topic}-{partition}: UNKNOWN_TOPIC_OR_PARTITION: topic {topic} has {partitions} \
                 partition(s), numbered from 0"
            ),
            Self::NoProgress {
                topic,
                partition,
                offset,
                fetches,
                reason,
            } => write!(
                f,
                "{fetches} fetches in a row of {topic}-{partition} at offset {offset} returned \
                 no usable batch ({reason}); the partition is paused: the broker is \
                 misbehaving (seek past the offset and resume to skip it)"
            ),
            Self::Decode { api, error } => {
                // Not "reconnecting": that is only true for a caller that keeps
                // polling, and weir consume stops at the first error.
                write!(
                    f,
                    "could not decode a {api} response from the broker ({error}); its \
                     connection was closed"
                )
            }
        }
    }
}

impl FetchError {
    /// The one partition the error is about, when it concerns a single partition
    /// (a corrupt batch, no progress, a partition the topic lacks, an out-of-range
    /// position under `auto.offset.reset=none`, a per-partition broker error). The
    /// other partitions are unaffected and keep being fetched.
    pub fn partition(&self) -> Option<(&str, i32)> {
        match self {
            FetchError::Corrupt(c) => Some((&c.topic, c.partition)),
            FetchError::NoProgress {
                topic, partition, ..
            }
            | FetchError::UnknownPartition {
                topic, partition, ..
            }
            | FetchError::OffsetOutOfRange {
                topic, partition, ..
            } => Some((topic, *partition)),
            FetchError::Broker {
                topic: Some(t),
                partition: Some(p),
                ..
            } => Some((t, *p)),
            _ => None,
        }
    }

    /// Whether the error says the settings do not fit the cluster (configuration,
    /// authentication, security protocol), so retrying as they are cannot succeed.
    pub fn is_settings(&self) -> bool {
        matches!(
            self,
            FetchError::Config(_)
                | FetchError::Authentication { .. }
                | FetchError::Tls { .. }
                | FetchError::Refused { .. }
        )
    }
}

impl std::error::Error for FetchError {}
