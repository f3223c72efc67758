//! ApiVersions (key 18) response: which versions of each API the broker supports.
//!
//! The client sends ApiVersions first on every connection. Its response always uses
//! response header v0, even at the flexible body versions (v3+).
//!
//! **Fallback.** A broker that does not support the requested ApiVersions version
//! answers with error UNSUPPORTED_VERSION (35) and a **v0-encoded** body that still
//! lists its own ApiVersions range. [`ApiVersionsResponse::decode_with_fallback`]
//! decodes such a reply, and [`ApiVersionsResponse::retry_version`] says which version
//! to resend at. The reactor's bootstrap is therefore:
//!
//! 1. send [`build_api_versions_request`] at [`ApiVersionsResponse::MAX_VERSION`];
//! 2. decode the body with `decode_with_fallback`;
//! 3. if `error_code` is UNSUPPORTED_VERSION, resend at `retry_version()` (once; a
//!    second failure is fatal for the connection);
//! 4. otherwise build a [`crate::versions::ApiVersionTable`] from the response.

use kafka_protocol::messages::ApiVersionsRequest;
use kafka_protocol::protocol::StrBytes;

use crate::messages::ResponseBody;
use crate::{DecodeError, ErrorCode, Reader};

/// The client software name weir reports in ApiVersions v3+ (KIP-511).
pub const CLIENT_SOFTWARE_NAME: &str = "weir";
/// The client software version weir reports in ApiVersions v3+.
pub const CLIENT_SOFTWARE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// An ApiVersions request. From v3 the broker validates the client software name and
/// version (letters, digits, `-` and `.`, starting and ending with a letter or
/// digit) and answers INVALID_REQUEST to empty ones, which kafka-protocol's default
/// request has; this fills in weir's.
pub fn build_api_versions_request() -> ApiVersionsRequest {
    ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str(CLIENT_SOFTWARE_NAME))
        .with_client_software_version(StrBytes::from_static_str(CLIENT_SOFTWARE_VERSION))
}

/// The version range a broker supports for one API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiVersionRange {
    /// The Kafka API key.
    pub api_key: i16,
    /// The lowest supported version.
    pub min_version: i16,
    /// The highest supported version.
    pub max_version: i16,
}

/// A decoded ApiVersions response (v0-4). The tagged supported/finalized features
/// (v3+) are skipped: a consumer does not use them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiVersionsResponse {
    /// Top-level error; UNSUPPORTED_VERSION means "retry at a lower version".
    pub error_code: ErrorCode,
    /// The APIs the broker supports, with their version ranges.
    pub api_keys: Vec<ApiVersionRange>,
    /// Throttle time in milliseconds (v1+; 0 before).
    pub throttle_time_ms: i32,
}

impl ApiVersionsResponse {
    /// The range listed for `api_key`, if the broker listed it.
    pub fn range(&self, api_key: i16) -> Option<ApiVersionRange> {
        self.api_keys.iter().copied().find(|r| r.api_key == api_key)
    }

    /// Decode a body sent in reply to an ApiVersions request at `version`, accepting
    /// the v0-encoded reply a broker sends when it does not support `version`.
    ///
    /// A body whose error code is UNSUPPORTED_VERSION is decoded as v0; a body that
    /// fails to decode at `version` is retried as v0 before giving up (with the
    /// first error).
    pub fn decode_with_fallback(body: &[u8], version: i16) -> Result<Self, DecodeError> {
        let first_error = Reader::new(body).i16("error code")?;
        if version > 0 && ErrorCode(first_error) == ErrorCode::UNSUPPORTED_VERSION {
            return Self::decode_body(body, 0);
        }
        match Self::decode_body(body, version) {
            Ok(v) => Ok(v),
            Err(e) if version > 0 => Self::decode_body(body, 0).map_err(|_| e),
            Err(e) => Err(e),
        }
    }

    /// After an UNSUPPORTED_VERSION reply: the version to resend ApiVersions at, the
    /// highest that both the broker (from its listed ApiVersions range) and weir
    /// support. `None` when the broker listed no usable range (give up).
    pub fn retry_version(&self) -> Option<i16> {
        let ours = <Self as ResponseBody<'_>>::MAX_VERSION;
        match self.range(Self::API_KEY) {
            // Kafka brokers always list ApiVersions; an empty list from an old broker
            // still understands v0.
            None => Some(0),
            Some(r) => {
                let v = r.max_version.min(ours);
                (v >= r.min_version && v >= 0).then_some(v)
            }
        }
    }
}

impl<'a> ResponseBody<'a> for ApiVersionsResponse {
    const API_KEY: i16 = 18;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 4;
    const FIRST_FLEXIBLE: i16 = 3;

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        Self::check_version(version)?;
        let flexible = Self::flexible(version);
        let error_code = ErrorCode(r.i16("error code")?);
        let elem = 6 + usize::from(flexible);
        let n = r.array_len_v(flexible, elem, "api keys")?;
        let mut api_keys = Vec::with_capacity(n);
        for _ in 0..n {
            let api_key = r.i16("api key")?;
            let min_version = r.i16("min version")?;
            let max_version = r.i16("max version")?;
            r.tagged_fields_v(flexible)?;
            api_keys.push(ApiVersionRange {
                api_key,
                min_version,
                max_version,
            });
        }
        let throttle_time_ms = if version >= 1 {
            r.i32("throttle time")?
        } else {
            0
        };
        r.tagged_fields_v(flexible)?;
        Ok(Self {
            error_code,
            api_keys,
            throttle_time_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::test_util::{check_truncations, encode_kp};
    use kafka_protocol::messages::ApiVersionsResponse as Kp;
    use kafka_protocol::messages::api_versions_response::{
        ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
    };
    use kafka_protocol::protocol::StrBytes;

    fn sample() -> Kp {
        Kp::default()
            .with_error_code(0)
            .with_throttle_time_ms(17)
            .with_api_keys(vec![
                ApiVersion::default()
                    .with_api_key(1)
                    .with_min_version(4)
                    .with_max_version(16),
                ApiVersion::default()
                    .with_api_key(18)
                    .with_min_version(0)
                    .with_max_version(3),
                ApiVersion::default()
                    .with_api_key(3)
                    .with_min_version(0)
                    .with_max_version(12),
            ])
            .with_supported_features(vec![
                SupportedFeatureKey::default()
                    .with_name(StrBytes::from_static_str("metadata.version"))
                    .with_min_version(1)
                    .with_max_version(20),
            ])
            .with_finalized_features_epoch(7)
            .with_finalized_features(vec![
                FinalizedFeatureKey::default()
                    .with_name(StrBytes::from_static_str("metadata.version"))
                    .with_min_version_level(1)
                    .with_max_version_level(20),
            ])
            .with_zk_migration_ready(true)
    }

    fn check(kp: &Kp, ours: &ApiVersionsResponse, version: i16) {
        assert_eq!(ours.error_code.0, kp.error_code);
        let expect: Vec<_> = kp
            .api_keys
            .iter()
            .map(|k| ApiVersionRange {
                api_key: k.api_key,
                min_version: k.min_version,
                max_version: k.max_version,
            })
            .collect();
        assert_eq!(ours.api_keys, expect);
        let throttle = if version >= 1 { kp.throttle_time_ms } else { 0 };
        assert_eq!(ours.throttle_time_ms, throttle);
    }

    #[test]
    fn differential_every_version() {
        let kp = sample();
        for version in 0..=4 {
            let bytes = encode_kp(&kp, version);
            let mut r = Reader::new(&bytes);
            let ours = ApiVersionsResponse::decode(&mut r, version).unwrap();
            assert!(r.is_empty(), "v{version}: {} bytes left", r.remaining());
            check(&kp, &ours, version);
            check_truncations(&bytes, |b| {
                ApiVersionsResponse::decode_body(b, version).map(|_| ())
            });
            check_truncations(&bytes, |b| {
                ApiVersionsResponse::decode_with_fallback(b, version).map(|_| ())
            });
        }
    }

    #[test]
    fn unsupported_version_fallback() {
        // A broker that only knows ApiVersions v0..=2 answers a v3 request in v0.
        let kp = Kp::default().with_error_code(35).with_api_keys(vec![
            ApiVersion::default()
                .with_api_key(18)
                .with_min_version(0)
                .with_max_version(2),
        ]);
        let bytes = encode_kp(&kp, 0);
        let resp = ApiVersionsResponse::decode_with_fallback(&bytes, 3).unwrap();
        assert_eq!(resp.error_code, ErrorCode::UNSUPPORTED_VERSION);
        assert_eq!(resp.retry_version(), Some(2));
        // Decoding it as v3 directly fails: the fallback is what makes it work.
        assert!(ApiVersionsResponse::decode_body(&bytes, 3).is_err());

        // A newer broker: its range is above ours, so retry at our max.
        let kp = Kp::default().with_error_code(35).with_api_keys(vec![
            ApiVersion::default()
                .with_api_key(18)
                .with_min_version(0)
                .with_max_version(9),
        ]);
        let resp = ApiVersionsResponse::decode_with_fallback(&encode_kp(&kp, 0), 4).unwrap();
        assert_eq!(resp.retry_version(), Some(4));
        // A broker whose minimum is above ours: no retry.
        let kp = Kp::default().with_error_code(35).with_api_keys(vec![
            ApiVersion::default()
                .with_api_key(18)
                .with_min_version(5)
                .with_max_version(9),
        ]);
        let resp = ApiVersionsResponse::decode_with_fallback(&encode_kp(&kp, 0), 4).unwrap();
        assert_eq!(resp.retry_version(), None);
    }

    #[test]
    fn request_carries_valid_software_name() {
        use kafka_protocol::protocol::{Decodable, HeaderVersion};
        let valid = |x: &str| {
            let b = x.as_bytes();
            !b.is_empty()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.')
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
        };
        assert!(valid(CLIENT_SOFTWARE_NAME) && valid(CLIENT_SOFTWARE_VERSION));
        for version in 0..=4 {
            let mut out = bytes::BytesMut::new();
            crate::frame::encode_request(
                &mut out,
                0,
                Some("weir"),
                version,
                &build_api_versions_request(),
            )
            .unwrap();
            let mut buf = bytes::Bytes::copy_from_slice(&out[4..]);
            let hv = ApiVersionsRequest::header_version(version);
            kafka_protocol::messages::RequestHeader::decode(&mut buf, hv).unwrap();
            let back = ApiVersionsRequest::decode(&mut buf, version).unwrap();
            if version >= 3 {
                assert_eq!(back.client_software_name.as_str(), "weir");
            }
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn hostile_counts() {
        // error code, then an i32::MAX array count.
        let body = [0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        assert!(matches!(
            ApiVersionsResponse::decode_body(&body, 2),
            Err(DecodeError::LengthTooLarge { .. })
        ));
        // A huge compact count (u32::MAX as a varint).
        let body = [0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0];
        assert!(ApiVersionsResponse::decode_body(&body, 3).is_err());
        assert!(ApiVersionsResponse::decode_body(&body, 9).is_err());
    }
}
