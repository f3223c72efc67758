//! Broker error codes, with the retriable flag Kafka defines for each.
//!
//! The code table (names, descriptions, which codes are retriable) is kafka-protocol's
//! `ResponseError`; this type adds the constants weir's state machines match on.

use kafka_protocol::error::ResponseError;
use std::fmt;

/// An error code from a broker response field. `0` is success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ErrorCode(pub i16);

macro_rules! codes {
    ($($name:ident = $v:literal),* $(,)?) => {
        impl ErrorCode {
            $(
                #[allow(missing_docs)]
                pub const $name: ErrorCode = ErrorCode($v);
            )*
        }
    };
}

codes! {
    UNKNOWN_SERVER_ERROR = -1,
    NONE = 0,
    OFFSET_OUT_OF_RANGE = 1,
    CORRUPT_MESSAGE = 2,
    UNKNOWN_TOPIC_OR_PARTITION = 3,
    LEADER_NOT_AVAILABLE = 5,
    NOT_LEADER_OR_FOLLOWER = 6,
    REQUEST_TIMED_OUT = 7,
    BROKER_NOT_AVAILABLE = 8,
    REPLICA_NOT_AVAILABLE = 9,
    NETWORK_EXCEPTION = 13,
    COORDINATOR_LOAD_IN_PROGRESS = 14,
    COORDINATOR_NOT_AVAILABLE = 15,
    NOT_COORDINATOR = 16,
    INVALID_TOPIC_EXCEPTION = 17,
    ILLEGAL_GENERATION = 22,
    INCONSISTENT_GROUP_PROTOCOL = 23,
    INVALID_GROUP_ID = 24,
    UNKNOWN_MEMBER_ID = 25,
    INVALID_SESSION_TIMEOUT = 26,
    REBALANCE_IN_PROGRESS = 27,
    INVALID_COMMIT_OFFSET_SIZE = 28,
    TOPIC_AUTHORIZATION_FAILED = 29,
    GROUP_AUTHORIZATION_FAILED = 30,
    CLUSTER_AUTHORIZATION_FAILED = 31,
    UNSUPPORTED_SASL_MECHANISM = 33,
    ILLEGAL_SASL_STATE = 34,
    UNSUPPORTED_VERSION = 35,
    INVALID_REQUEST = 42,
    KAFKA_STORAGE_ERROR = 56,
    SASL_AUTHENTICATION_FAILED = 58,
    NON_EMPTY_GROUP = 68,
    GROUP_ID_NOT_FOUND = 69,
    FETCH_SESSION_ID_NOT_FOUND = 70,
    INVALID_FETCH_SESSION_EPOCH = 71,
    FENCED_LEADER_EPOCH = 74,
    UNKNOWN_LEADER_EPOCH = 75,
    OFFSET_NOT_AVAILABLE = 78,
    MEMBER_ID_REQUIRED = 79,
    GROUP_MAX_SIZE_REACHED = 81,
    GROUP_SUBSCRIBED_TO_TOPIC = 86,
    FENCED_INSTANCE_ID = 82,
    UNSTABLE_OFFSET_COMMIT = 88,
    THROTTLING_QUOTA_EXCEEDED = 89,
    UNKNOWN_TOPIC_ID = 100,
    INCONSISTENT_TOPIC_ID = 103,
    FETCH_SESSION_TOPIC_ID_ERROR = 106,
    OFFSET_MOVED_TO_TIERED_STORAGE = 109,
    FENCED_MEMBER_EPOCH = 110,
    UNRELEASED_INSTANCE_ID = 111,
    UNSUPPORTED_ASSIGNOR = 112,
    STALE_MEMBER_EPOCH = 113,
    INVALID_REGULAR_EXPRESSION = 128,
}

impl ErrorCode {
    /// True for `NONE` (0).
    #[inline]
    pub fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// True for any code but `NONE`.
    #[inline]
    pub fn is_err(self) -> bool {
        self.0 != 0
    }

    /// Whether Kafka marks this error as retriable. Unknown codes are not.
    pub fn is_retriable(self) -> bool {
        ResponseError::try_from_code(self.0).is_some_and(|e| e.is_retriable())
    }

    /// `Ok(())` for `NONE`, `Err(self)` otherwise.
    #[inline]
    pub fn into_result(self) -> Result<(), ErrorCode> {
        if self.is_ok() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("NONE (0)");
        }
        match ResponseError::try_from_code(self.0) {
            Some(e) => write!(f, "{e:?} ({}): {e}", self.0),
            None => write!(f, "unknown broker error code {}", self.0),
        }
    }
}

impl std::error::Error for ErrorCode {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retriable_flags_follow_kafka() {
        assert!(ErrorCode::NOT_COORDINATOR.is_retriable());
        assert!(ErrorCode::NOT_LEADER_OR_FOLLOWER.is_retriable());
        assert!(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS.is_retriable());
        assert!(!ErrorCode::OFFSET_OUT_OF_RANGE.is_retriable());
        assert!(!ErrorCode::FENCED_INSTANCE_ID.is_retriable());
        assert!(!ErrorCode(30_000).is_retriable());
        assert!(ErrorCode::NOT_COORDINATOR.to_string().contains("16"));
        assert_eq!(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0, 3);
        assert_eq!(ErrorCode::FENCED_LEADER_EPOCH.0, 74);
    }
}
