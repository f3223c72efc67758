//! Requests and responses a consumer uses.
//!
//! Requests are encoded with the `kafka-protocol` crate. Responses are decoded by
//! weir's own bounded decoders over [`Reader`], never by kafka-protocol's (which size
//! allocations from unchecked wire counts). Each response type implements
//! [`ResponseBody`]; borrowed fields (`&'a str`, `&'a [u8]`) point into the frame.

use crate::{DecodeError, Reader};

pub mod group;

/// A response body weir can decode from a frame.
pub trait ResponseBody<'a>: Sized {
    /// The Kafka API key.
    const API_KEY: i16;
    /// The lowest version this decoder handles.
    const MIN_VERSION: i16;
    /// The highest version this decoder handles.
    const MAX_VERSION: i16;
    /// The first flexible (tagged-fields, compact-encoding) version of this API.
    const FIRST_FLEXIBLE: i16;

    /// Decode the body (after the response header) at `version`.
    ///
    /// Implementations return [`DecodeError::UnsupportedVersion`] outside
    /// `MIN_VERSION..=MAX_VERSION` and must never panic on any input.
    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError>;

    /// Whether `version` uses the flexible encoding.
    #[inline]
    fn flexible(version: i16) -> bool {
        version >= Self::FIRST_FLEXIBLE
    }

    /// Decode a whole body, rejecting versions outside the supported range.
    /// Trailing bytes are allowed (a newer broker may add fields we skip).
    fn decode_body(body: &'a [u8], version: i16) -> Result<Self, DecodeError> {
        if !(Self::MIN_VERSION..=Self::MAX_VERSION).contains(&version) {
            return Err(DecodeError::UnsupportedVersion {
                api_key: Self::API_KEY,
                version,
            });
        }
        let mut r = Reader::new(body);
        Self::decode(&mut r, version)
    }
}
