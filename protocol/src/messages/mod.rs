//! Requests and responses a consumer uses.
//!
//! Requests are encoded with the `kafka-protocol` crate. Responses are decoded by
//! weir's own bounded decoders over [`Reader`], never by kafka-protocol's (which size
//! allocations from unchecked wire counts). Each response type implements
//! [`ResponseBody`]; borrowed fields (`&'a str`, `&'a [u8]`) point into the frame.
//!
//! # How to write a decoder
//!
//! Follow [`api_versions`] (small) or [`fetch`] (hot path) as the model:
//!
//! * One `pub struct FooResponse<'a>` per API (lifetime only if it borrows), with
//!   `impl<'a> ResponseBody<'a>`; set `MIN_VERSION`/`MAX_VERSION` to the versions you
//!   decode *and test*, and `FIRST_FLEXIBLE` from the message's JSON spec.
//! * Decode every field of every version in the range, in wire order, gating each on
//!   `version >= N` exactly as the spec does. A field absent at a version takes
//!   Kafka's default (e.g. `-1` for leader epochs and node ids, `0` for throttle).
//! * Error codes are [`crate::ErrorCode`]; strings are `&'a str` (nullable:
//!   `Option<&'a str>`); bytes are `&'a [u8]`; topic ids are `[u8; 16]`.
//! * Strings, bytes and arrays go through the `_v(flexible, ..)` readers. Size a `Vec`
//!   only by `r.array_len_v(flexible, min_elem_size, what)`, where `min_elem_size` is
//!   the fewest bytes one element can take at this version (count fixed fields, 2 per
//!   non-compact string/array length, 1 per compact one, 1 for the element's tagged
//!   fields when flexible). Too small is safe but weaker; too large rejects valid input.
//!   Null arrays read as empty unless null means something (then use `array_len`).
//! * End every struct (each array element and the top level) with
//!   `r.tagged_fields_v(flexible)?`; tagged fields weir does not use are skipped.
//! * No `unwrap`, no indexing, no arithmetic on wire values that can overflow.
//! * Tests (see `test_util`): encode a fully populated kafka-protocol response at every
//!   version (the dev-dependency enables its `broker` feature), decode it, compare
//!   every field, check nothing is left over, and run `check_truncations` on the bytes;
//!   add a hostile-count case (an `i32::MAX` array count, a huge compact count).

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

    /// [`DecodeError::UnsupportedVersion`] unless `version` is in
    /// `MIN_VERSION..=MAX_VERSION`; decoders call it first.
    fn check_version(version: i16) -> Result<(), DecodeError> {
        if (Self::MIN_VERSION..=Self::MAX_VERSION).contains(&version) {
            Ok(())
        } else {
            Err(DecodeError::UnsupportedVersion {
                api_key: Self::API_KEY,
                version,
            })
        }
    }

    /// Decode a whole body, rejecting versions outside the supported range.
    /// Trailing bytes are allowed (a newer broker may add fields we skip).
    fn decode_body(body: &'a [u8], version: i16) -> Result<Self, DecodeError> {
        Self::check_version(version)?;
        let mut r = Reader::new(body);
        Self::decode(&mut r, version)
    }
}

pub mod api_versions;
pub mod fetch;
pub mod list_offsets;
pub mod metadata;
pub mod sasl;

#[cfg(test)]
pub(crate) mod test_util {
    //! Helpers for the decoders' differential tests.

    use kafka_protocol::protocol::Encodable;

    /// Encode a kafka-protocol response body at `version`.
    pub(crate) fn encode_kp<T: Encodable>(msg: &T, version: i16) -> Vec<u8> {
        let mut out = Vec::new();
        msg.encode(&mut out, version)
            .unwrap_or_else(|e| panic!("kafka-protocol cannot encode v{version}: {e}"));
        out
    }

    /// Run `decode` on every strict prefix of `bytes` and on copies with single bytes
    /// changed; it must return (Ok or Err) without panicking. Strict prefixes of a
    /// message that needs all its bytes must not decode to Ok with all input consumed,
    /// which the decoders cannot check, so only the absence of panics is asserted.
    pub(crate) fn check_truncations<F>(bytes: &[u8], mut decode: F)
    where
        F: FnMut(&[u8]) -> Result<(), crate::DecodeError>,
    {
        for n in 0..bytes.len() {
            let _ = decode(&bytes[..n]);
        }
        let mut copy = bytes.to_vec();
        for i in 0..copy.len() {
            let orig = copy[i];
            for v in [0x00, 0x7f, 0x80, 0xff] {
                copy[i] = v;
                let _ = decode(&copy);
            }
            copy[i] = orig;
        }
    }
}

#[cfg(test)]
mod smoke_tests {
    //! Random bytes into every decoder at every version: Ok or Err, never a panic.

    use super::ResponseBody;
    use super::api_versions::ApiVersionsResponse;
    use super::fetch::FetchResponse;
    use super::list_offsets::ListOffsetsResponse;
    use super::metadata::MetadataResponse;
    use super::sasl::{SaslAuthenticateResponse, SaslHandshakeResponse};

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn run(
        rng: &mut XorShift,
        versions: std::ops::RangeInclusive<i16>,
        decode: impl Fn(&[u8], i16) -> bool,
    ) {
        let mut buf = Vec::new();
        for version in versions {
            for _ in 0..3000 {
                buf.clear();
                let len = (rng.next() % 160) as usize;
                // Mostly small values, so counts and lengths are often plausible.
                for _ in 0..len {
                    let x = rng.next();
                    buf.push(if x.is_multiple_of(4) {
                        (x >> 8) as u8
                    } else {
                        (x >> 8) as u8 & 3
                    });
                }
                let _ = decode(&buf, version);
            }
        }
    }

    macro_rules! smoke {
        ($rng:expr, $t:ident) => {
            run(
                $rng,
                <$t<'_> as ResponseBody<'_>>::MIN_VERSION
                    ..=<$t<'_> as ResponseBody<'_>>::MAX_VERSION,
                |b, v| $t::decode_body(b, v).is_ok(),
            )
        };
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        run(&mut rng, 0..=4, |b, v| {
            ApiVersionsResponse::decode_body(b, v).is_ok()
        });
        smoke!(&mut rng, FetchResponse);
        smoke!(&mut rng, MetadataResponse);
        smoke!(&mut rng, ListOffsetsResponse);
        smoke!(&mut rng, SaslHandshakeResponse);
        smoke!(&mut rng, SaslAuthenticateResponse);
    }
}
