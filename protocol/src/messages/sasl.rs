//! SaslHandshake (key 17) and SaslAuthenticate (key 36): decoders and request builders.
//!
//! The exchange, right after ApiVersions on a new connection:
//!
//! 1. SaslHandshake v1 names the mechanism (`PLAIN`, `SCRAM-SHA-256`, ...); the broker
//!    answers with an error code and the mechanisms it enables. UNSUPPORTED_SASL_MECHANISM
//!    means "pick one of `mechanisms`" (a configuration error to report to the user).
//! 2. Each client message then goes in a SaslAuthenticate request, and each broker
//!    challenge comes back in its response, until the mechanism completes.
//!    `session_lifetime_ms` (v1+) > 0 means the client must re-authenticate before it
//!    elapses (KIP-368).
//!
//! SaslHandshake v0 is different: after it, the SASL tokens travel as raw
//! size-prefixed frames, not in SaslAuthenticate. weir does not support that legacy
//! flow (brokers since Kafka 1.0 support v1), so negotiate SaslHandshake v1.

use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;

use crate::messages::ResponseBody;
use crate::{DecodeError, ErrorCode, Reader};

/// A decoded SaslHandshake response (v0-1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslHandshakeResponse<'a> {
    /// The error (UNSUPPORTED_SASL_MECHANISM when the mechanism is not enabled).
    pub error_code: ErrorCode,
    /// The mechanisms the broker enables.
    pub mechanisms: Vec<&'a str>,
}

impl<'a> ResponseBody<'a> for SaslHandshakeResponse<'a> {
    const API_KEY: i16 = 17;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 1;
    /// SaslHandshake has no flexible version.
    const FIRST_FLEXIBLE: i16 = i16::MAX;

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        Self::check_version(version)?;
        let error_code = ErrorCode(r.i16("error code")?);
        let n = r.array_len_v(false, 2, "mechanisms")?;
        let mut mechanisms = Vec::with_capacity(n);
        for _ in 0..n {
            mechanisms.push(r.string("mechanism")?);
        }
        Ok(Self {
            error_code,
            mechanisms,
        })
    }
}

/// A decoded SaslAuthenticate response (v0-2). Borrows from the frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslAuthenticateResponse<'a> {
    /// The error (SASL_AUTHENTICATION_FAILED for bad credentials).
    pub error_code: ErrorCode,
    /// The broker's message explaining a failure, if any.
    pub error_message: Option<&'a str>,
    /// The mechanism's next server message (challenge or final message).
    pub auth_bytes: &'a [u8],
    /// Re-authenticate within this many ms (v1+; 0 = never, or before v1).
    pub session_lifetime_ms: i64,
}

impl<'a> ResponseBody<'a> for SaslAuthenticateResponse<'a> {
    const API_KEY: i16 = 36;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 2;
    const FIRST_FLEXIBLE: i16 = 2;

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        Self::check_version(version)?;
        let flexible = Self::flexible(version);
        let error_code = ErrorCode(r.i16("error code")?);
        let error_message = r.nullable_string_v(flexible, "error message")?;
        let auth_bytes = r.bytes_v(flexible, "auth bytes")?;
        let session_lifetime_ms = if version >= 1 {
            r.i64("session lifetime")?
        } else {
            0
        };
        r.tagged_fields_v(flexible)?;
        Ok(Self {
            error_code,
            error_message,
            auth_bytes,
            session_lifetime_ms,
        })
    }
}

/// A SaslHandshake request naming `mechanism` (e.g. `"PLAIN"`).
pub fn build_sasl_handshake_request(mechanism: &str) -> SaslHandshakeRequest {
    SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(mechanism.to_owned()))
}

/// A SaslAuthenticate request carrying one client message of the mechanism.
pub fn build_sasl_authenticate_request(auth_bytes: &[u8]) -> SaslAuthenticateRequest {
    SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(auth_bytes))
}

/// The single client message of SASL/PLAIN (RFC 4616):
/// `authzid NUL username NUL password`, with an empty authorization id.
pub fn plain_auth_bytes(username: &str, password: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(username.len() + password.len() + 2);
    out.push(0);
    out.extend_from_slice(username.as_bytes());
    out.push(0);
    out.extend_from_slice(password.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::test_util::{check_truncations, encode_kp};
    use kafka_protocol::messages::{
        RequestHeader, SaslAuthenticateResponse as KpAuth, SaslHandshakeResponse as KpHs,
    };
    use kafka_protocol::protocol::{Decodable, HeaderVersion};

    #[test]
    fn handshake_differential() {
        let kp = KpHs::default().with_error_code(33).with_mechanisms(vec![
            StrBytes::from_static_str("PLAIN"),
            StrBytes::from_static_str("SCRAM-SHA-512"),
        ]);
        for version in 0..=1 {
            let bytes = encode_kp(&kp, version);
            let mut r = Reader::new(&bytes);
            let ours = SaslHandshakeResponse::decode(&mut r, version).unwrap();
            assert!(r.is_empty());
            assert_eq!(ours.error_code, ErrorCode::UNSUPPORTED_SASL_MECHANISM);
            assert_eq!(ours.mechanisms, vec!["PLAIN", "SCRAM-SHA-512"]);
            check_truncations(&bytes, |b| {
                SaslHandshakeResponse::decode_body(b, version).map(|_| ())
            });
        }
        let mut body = vec![0, 0];
        body.extend_from_slice(&i32::MAX.to_be_bytes());
        body.resize(30, 0);
        assert!(matches!(
            SaslHandshakeResponse::decode_body(&body, 1),
            Err(DecodeError::LengthTooLarge { .. })
        ));
        assert!(SaslHandshakeResponse::decode_body(&body, 2).is_err());
    }

    #[test]
    fn authenticate_differential() {
        let kps = [
            KpAuth::default()
                .with_error_code(58)
                .with_error_message(Some(StrBytes::from_static_str("bad password")))
                .with_auth_bytes(Bytes::new())
                .with_session_lifetime_ms(0),
            KpAuth::default()
                .with_error_code(0)
                .with_error_message(None)
                .with_auth_bytes(Bytes::from_static(b"v=server-signature"))
                .with_session_lifetime_ms(3_600_000),
        ];
        for kp in &kps {
            for version in 0..=2 {
                let bytes = encode_kp(kp, version);
                let mut r = Reader::new(&bytes);
                let ours = SaslAuthenticateResponse::decode(&mut r, version).unwrap();
                assert!(r.is_empty());
                assert_eq!(ours.error_code.0, kp.error_code);
                assert_eq!(ours.error_message, kp.error_message.as_deref());
                assert_eq!(ours.auth_bytes, &kp.auth_bytes[..]);
                let life = if version >= 1 {
                    kp.session_lifetime_ms
                } else {
                    0
                };
                assert_eq!(ours.session_lifetime_ms, life);
                check_truncations(&bytes, |b| {
                    SaslAuthenticateResponse::decode_body(b, version).map(|_| ())
                });
            }
        }
        // Huge auth-bytes lengths, both encodings.
        let mut body = vec![0, 0, 0xff, 0xff];
        body.extend_from_slice(&i32::MAX.to_be_bytes());
        body.resize(30, 0);
        assert!(matches!(
            SaslAuthenticateResponse::decode_body(&body, 1),
            Err(DecodeError::LengthTooLarge { .. })
        ));
        let mut body = vec![0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
        body.resize(30, 0);
        assert!(matches!(
            SaslAuthenticateResponse::decode_body(&body, 2),
            Err(DecodeError::LengthTooLarge { .. })
        ));
    }

    #[test]
    fn request_builders_encode() {
        let mut out = bytes::BytesMut::new();
        let req = build_sasl_handshake_request("PLAIN");
        crate::frame::encode_request(&mut out, 1, Some("weir"), 1, &req).unwrap();
        let mut buf = Bytes::copy_from_slice(&out[4..]);
        RequestHeader::decode(&mut buf, SaslHandshakeRequest::header_version(1)).unwrap();
        let back = SaslHandshakeRequest::decode(&mut buf, 1).unwrap();
        assert_eq!(back.mechanism.as_str(), "PLAIN");

        let auth = plain_auth_bytes("alice", "s3cret");
        assert_eq!(auth, b"\0alice\0s3cret");
        for version in 0..=2 {
            let req = build_sasl_authenticate_request(&auth);
            let mut out = bytes::BytesMut::new();
            crate::frame::encode_request(&mut out, 2, None, version, &req).unwrap();
            let mut buf = Bytes::copy_from_slice(&out[4..]);
            let hv = SaslAuthenticateRequest::header_version(version);
            RequestHeader::decode(&mut buf, hv).unwrap();
            let back = SaslAuthenticateRequest::decode(&mut buf, version).unwrap();
            assert_eq!(&back.auth_bytes[..], &auth[..]);
        }
    }
}
