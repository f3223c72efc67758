//! Size-prefixed framing, request headers and response headers.
//!
//! Every Kafka message travels as `[i32 size][size bytes]`. A request frame holds a
//! request header (api key, api version, correlation id, client id, and tagged fields
//! in header v2) followed by the body; a response frame holds a response header (the
//! correlation id, and tagged fields in header v1) followed by the body.
//!
//! Request bodies are encoded by `kafka-protocol`; this module writes the size prefix
//! and the header itself. Responses are split and their headers read here, and their
//! bodies decoded by weir's own decoders in [`crate::messages`].
//!
//! Note: ApiVersions responses always use response header v0, even at flexible body
//! versions, so a client can read them before it knows the broker's versions.
//! [`response_header_flexible`] already accounts for this.

use std::fmt;

use bytes::BytesMut;
use kafka_protocol::messages::{self as kp, ApiKey};
use kafka_protocol::protocol::buf::ByteBufMut;
use kafka_protocol::protocol::{Encodable, HeaderVersion, Message};

use crate::{DecodeError, Reader};

/// The size of the length prefix in front of every frame.
pub const SIZE_PREFIX: usize = 4;

/// The total length of the frame at the start of `buf` (including the 4-byte size
/// prefix), or `None` while fewer than 4 bytes are available.
///
/// The frame itself may not be complete yet: compare the result with `buf.len()`.
/// A negative size, or a frame larger than `max_frame` bytes (prefix included), is an
/// error; the connection cannot be resynchronised after either and must be closed.
pub fn frame_len(buf: &[u8], max_frame: usize) -> Result<Option<usize>, DecodeError> {
    let Some(prefix) = buf.get(..SIZE_PREFIX) else {
        return Ok(None);
    };
    let size = Reader::new(prefix).i32("frame size")?;
    if size < 0 {
        return Err(DecodeError::NegativeLength {
            what: "frame size",
            length: i64::from(size),
        });
    }
    let total = size as usize + SIZE_PREFIX;
    if total > max_frame {
        return Err(DecodeError::Invalid {
            what: "frame size",
            reason: "the broker sent a frame larger than the maximum frame size \
                     (raise the limit, e.g. fetch.max.bytes, or check that the peer \
                     speaks the Kafka protocol)",
        });
    }
    Ok(Some(total))
}

/// Split one complete frame off the front of `buf`.
///
/// Returns the frame's contents (without the size prefix) and the number of bytes
/// the frame occupied in `buf`, or `None` when the frame is not complete yet.
pub fn split_frame(buf: &[u8], max_frame: usize) -> Result<Option<(&[u8], usize)>, DecodeError> {
    match frame_len(buf, max_frame)? {
        Some(total) if total <= buf.len() => Ok(Some((&buf[SIZE_PREFIX..total], total))),
        _ => Ok(None),
    }
}

/// A response frame with its header read: the correlation id and the body bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseFrame<'a> {
    /// The correlation id the request was sent with.
    pub correlation_id: i32,
    /// The response body, after the header; decode it with a [`crate::messages::ResponseBody`].
    pub body: &'a [u8],
}

/// Read only the correlation id of a response frame (without the size prefix).
///
/// The correlation id is the first field of every response header version, so the
/// reactor can match a frame to its in-flight request before knowing its header
/// version.
pub fn peek_correlation_id(frame: &[u8]) -> Result<i32, DecodeError> {
    Reader::new(frame).i32("correlation id")
}

/// Read the response header at the start of `r`: the correlation id, then the tagged
/// fields when the header is flexible (response header v1).
pub fn decode_response_header(r: &mut Reader<'_>, flexible: bool) -> Result<i32, DecodeError> {
    let correlation_id = r.i32("correlation id")?;
    r.tagged_fields_v(flexible)?;
    Ok(correlation_id)
}

/// Read the response header of a frame (without the size prefix) and return the rest
/// as the body. `flexible` comes from [`response_header_flexible`].
pub fn parse_response(frame: &[u8], flexible: bool) -> Result<ResponseFrame<'_>, DecodeError> {
    let mut r = Reader::new(frame);
    let correlation_id = decode_response_header(&mut r, flexible)?;
    Ok(ResponseFrame {
        correlation_id,
        body: r.rest(),
    })
}

/// A request weir can send: a `kafka-protocol` request type with its API key and the
/// response type that decides the response header version.
///
/// kafka-protocol's own `Request` trait exists only when its `broker` feature is on,
/// which weir does not enable, so weir names the requests it sends here.
pub trait ApiRequest: Message + Encodable + HeaderVersion {
    /// The Kafka API key.
    const API_KEY: i16;
    /// The API's name, for error messages.
    const NAME: &'static str;
    /// kafka-protocol's response type (used only for its header version).
    type Response: HeaderVersion;
}

macro_rules! api_requests {
    ($($req:ident => $resp:ident, $key:literal, $name:literal;)*) => {
        $(
            impl ApiRequest for kp::$req {
                const API_KEY: i16 = $key;
                const NAME: &'static str = $name;
                type Response = kp::$resp;
            }
        )*
    };
}

api_requests! {
    FetchRequest => FetchResponse, 1, "Fetch";
    ListOffsetsRequest => ListOffsetsResponse, 2, "ListOffsets";
    MetadataRequest => MetadataResponse, 3, "Metadata";
    OffsetCommitRequest => OffsetCommitResponse, 8, "OffsetCommit";
    OffsetFetchRequest => OffsetFetchResponse, 9, "OffsetFetch";
    FindCoordinatorRequest => FindCoordinatorResponse, 10, "FindCoordinator";
    JoinGroupRequest => JoinGroupResponse, 11, "JoinGroup";
    HeartbeatRequest => HeartbeatResponse, 12, "Heartbeat";
    LeaveGroupRequest => LeaveGroupResponse, 13, "LeaveGroup";
    SyncGroupRequest => SyncGroupResponse, 14, "SyncGroup";
    DescribeGroupsRequest => DescribeGroupsResponse, 15, "DescribeGroups";
    ListGroupsRequest => ListGroupsResponse, 16, "ListGroups";
    SaslHandshakeRequest => SaslHandshakeResponse, 17, "SaslHandshake";
    ApiVersionsRequest => ApiVersionsResponse, 18, "ApiVersions";
    OffsetForLeaderEpochRequest => OffsetForLeaderEpochResponse, 23, "OffsetForLeaderEpoch";
    SaslAuthenticateRequest => SaslAuthenticateResponse, 36, "SaslAuthenticate";
    DeleteGroupsRequest => DeleteGroupsResponse, 42, "DeleteGroups";
    OffsetDeleteRequest => OffsetDeleteResponse, 47, "OffsetDelete";
    ConsumerGroupHeartbeatRequest => ConsumerGroupHeartbeatResponse, 68, "ConsumerGroupHeartbeat";
    ConsumerGroupDescribeRequest => ConsumerGroupDescribeResponse, 69, "ConsumerGroupDescribe";
}

/// Whether the response to `Req` at `version` carries a flexible header (v1, with
/// tagged fields). ApiVersions responses never do.
#[inline]
pub fn response_header_flexible<Req: ApiRequest>(version: i16) -> bool {
    <Req::Response as HeaderVersion>::header_version(version) >= 1
}

/// [`response_header_flexible`] by API key, for a reactor that keeps only the key and
/// version of each in-flight request. Unknown keys answer `false`.
pub fn response_header_flexible_by_key(api_key: i16, version: i16) -> bool {
    ApiKey::try_from(api_key).is_ok_and(|k| k.response_header_version(version) >= 1)
}

/// Why a request could not be encoded. These are bugs or misuse on the client side,
/// never caused by broker bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The version is outside what kafka-protocol can encode for this request.
    UnsupportedVersion {
        /// The API's name.
        api: &'static str,
        /// The version asked for.
        version: i16,
        /// The lowest encodable version.
        min: i16,
        /// The highest encodable version.
        max: i16,
    },
    /// The client id is longer than a protocol string can hold (32767 bytes).
    ClientIdTooLong(usize),
    /// The encoded frame would be larger than an i32 size prefix can describe.
    FrameTooLarge(usize),
    /// kafka-protocol refused to encode the body (a field not valid at this version).
    Body {
        /// The API's name.
        api: &'static str,
        /// The version asked for.
        version: i16,
        /// kafka-protocol's message.
        message: String,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedVersion {
                api,
                version,
                min,
                max,
            } => write!(
                f,
                "cannot encode {api} v{version}: only v{min}..=v{max} are supported \
                 (negotiate the version with the broker first)"
            ),
            Self::ClientIdTooLong(n) => write!(
                f,
                "client.id is {n} bytes long; the protocol allows at most 32767"
            ),
            Self::FrameTooLarge(n) => write!(
                f,
                "request of {n} bytes is too large for one frame (send fewer partitions)"
            ),
            Self::Body {
                api,
                version,
                message,
            } => write!(f, "cannot encode {api} v{version}: {message}"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Append one complete request frame to `out`: the size prefix, the request header
/// (the version `Req::header_version(version)` names: v1, or v2 with tagged fields)
/// and the body encoded by kafka-protocol.
///
/// On error nothing is left appended to `out`.
pub fn encode_request<Req: ApiRequest>(
    out: &mut BytesMut,
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
    req: &Req,
) -> Result<(), EncodeError> {
    encode_request_to(out, correlation_id, client_id, version, req)
}

/// [`encode_request`] into any kafka-protocol output buffer (`Vec<u8>`, `BytesMut`).
pub fn encode_request_to<Req: ApiRequest, B: ByteBufMut>(
    out: &mut B,
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
    req: &Req,
) -> Result<(), EncodeError> {
    let versions = <Req as Message>::VERSIONS;
    if version < versions.min || version > versions.max {
        return Err(EncodeError::UnsupportedVersion {
            api: Req::NAME,
            version,
            min: versions.min,
            max: versions.max,
        });
    }
    if let Some(id) = client_id
        && id.len() > i16::MAX as usize
    {
        return Err(EncodeError::ClientIdTooLong(id.len()));
    }
    let start = out.offset();
    let result = encode_request_inner(out, correlation_id, client_id, version, req);
    if result.is_err() {
        out.seek(start); // truncates back to where this frame began
    }
    result
}

fn encode_request_inner<Req: ApiRequest, B: ByteBufMut>(
    out: &mut B,
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
    req: &Req,
) -> Result<(), EncodeError> {
    let start = out.offset();
    out.put_i32(0); // size, patched below
    out.put_i16(Req::API_KEY);
    out.put_i16(version);
    out.put_i32(correlation_id);
    // The client id is a nullable (non-compact) string in header v1 and v2 alike.
    match client_id {
        None => out.put_i16(-1),
        Some(id) => {
            // Checked by the caller: id.len() <= i16::MAX.
            out.put_i16(id.len() as i16);
            out.put_slice(id.as_bytes());
        }
    }
    if <Req as HeaderVersion>::header_version(version) >= 2 {
        out.put_u8(0); // no tagged fields
    }
    req.encode(out, version).map_err(|e| EncodeError::Body {
        api: Req::NAME,
        version,
        message: e.to_string(),
    })?;
    let size = out.offset() - start - SIZE_PREFIX;
    let size_i32 = i32::try_from(size).map_err(|_| EncodeError::FrameTooLarge(size))?;
    out.range(start..start + SIZE_PREFIX)
        .copy_from_slice(&size_i32.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{
        ApiVersionsRequest, FetchRequest, MetadataRequest, RequestHeader,
    };
    use kafka_protocol::protocol::{Decodable, StrBytes};

    #[test]
    fn frame_len_partial_prefix() {
        assert_eq!(frame_len(&[], 100).unwrap(), None);
        assert_eq!(frame_len(&[0, 0, 0], 100).unwrap(), None);
        assert_eq!(split_frame(&[0, 0], 100).unwrap(), None);
    }

    #[test]
    fn frame_len_partial_body() {
        let buf = [0, 0, 0, 5, 1, 2, 3];
        assert_eq!(frame_len(&buf, 100).unwrap(), Some(9));
        assert_eq!(split_frame(&buf, 100).unwrap(), None);
        let buf = [0, 0, 0, 3, 1, 2, 3, 9, 9];
        assert_eq!(split_frame(&buf, 100).unwrap(), Some((&[1u8, 2, 3][..], 7)));
        assert_eq!(split_frame(&[0, 0, 0, 0], 100).unwrap(), Some((&[][..], 4)));
    }

    #[test]
    fn frame_len_negative_and_oversize() {
        assert!(matches!(
            frame_len(&[0xff, 0xff, 0xff, 0xff], 100),
            Err(DecodeError::NegativeLength { length: -1, .. })
        ));
        assert!(matches!(
            frame_len(&[0x80, 0, 0, 0], usize::MAX),
            Err(DecodeError::NegativeLength { .. })
        ));
        // 96 bytes of body + 4 = 100: the limit includes the prefix.
        assert_eq!(frame_len(&[0, 0, 0, 96], 100).unwrap(), Some(100));
        assert!(matches!(
            frame_len(&[0, 0, 0, 97], 100),
            Err(DecodeError::Invalid { .. })
        ));
        assert!(frame_len(&[0x7f, 0xff, 0xff, 0xff], 100 << 20).is_err());
    }

    #[test]
    fn response_headers() {
        let frame = [0, 0, 0, 7, 0, 0xaa];
        let f = parse_response(&frame, false).unwrap();
        assert_eq!(f.correlation_id, 7);
        assert_eq!(f.body, &[0, 0xaa]);
        let f = parse_response(&frame, true).unwrap();
        assert_eq!(f.body, &[0xaa]);
        assert_eq!(peek_correlation_id(&frame).unwrap(), 7);
        assert!(parse_response(&[0, 0, 0], false).is_err());
        assert!(parse_response(&[0, 0, 0, 1], true).is_err());
        // Flexible header with one tagged field.
        let f = parse_response(&[0, 0, 0, 1, 1, 5, 2, 8, 8, 0x42], true).unwrap();
        assert_eq!(f.body, &[0x42]);
    }

    #[test]
    fn header_flexibility() {
        assert!(!response_header_flexible::<ApiVersionsRequest>(3));
        assert!(!response_header_flexible::<FetchRequest>(11));
        assert!(response_header_flexible::<FetchRequest>(12));
        assert!(response_header_flexible::<MetadataRequest>(9));
        assert!(!response_header_flexible::<MetadataRequest>(8));
        assert!(response_header_flexible_by_key(1, 12));
        assert!(!response_header_flexible_by_key(18, 4));
        assert!(!response_header_flexible_by_key(9999, 4));
    }

    fn roundtrip_header(buf: &[u8], header_version: i16) -> (RequestHeader, bytes::Bytes) {
        let total = frame_len(buf, usize::MAX).unwrap().unwrap();
        assert_eq!(total, buf.len());
        let mut body = bytes::Bytes::copy_from_slice(&buf[4..]);
        let h = RequestHeader::decode(&mut body, header_version).unwrap();
        (h, body)
    }

    #[test]
    fn encodes_request_header_v1_and_v2() {
        let mut out = BytesMut::new();
        let req = MetadataRequest::default().with_allow_auto_topic_creation(false);
        encode_request(&mut out, 42, Some("weir"), 8, &req).unwrap();
        let (h, mut body) = roundtrip_header(&out, 1);
        assert_eq!(h.request_api_key, 3);
        assert_eq!(h.request_api_version, 8);
        assert_eq!(h.correlation_id, 42);
        assert_eq!(h.client_id, Some(StrBytes::from_static_str("weir")));
        let back = MetadataRequest::decode(&mut body, 8).unwrap();
        assert_eq!(back, req);

        let mut out = BytesMut::from(&b"xyz"[..]);
        encode_request(&mut out, -5, None, 12, &req).unwrap();
        let (h, mut body) = roundtrip_header(&out[3..], 2);
        assert_eq!(h.correlation_id, -5);
        assert_eq!(h.client_id, None);
        assert_eq!(MetadataRequest::decode(&mut body, 12).unwrap(), req);
        assert!(body.is_empty());
    }

    #[test]
    fn encode_errors_leave_buffer_untouched() {
        let mut out = BytesMut::from(&b"ab"[..]);
        let req = FetchRequest::default();
        let e = encode_request(&mut out, 1, None, 3, &req).unwrap_err();
        assert!(
            matches!(e, EncodeError::UnsupportedVersion { min: 4, .. }),
            "{e}"
        );
        let long = "x".repeat(40_000);
        let e = encode_request(&mut out, 1, Some(&long), 4, &req).unwrap_err();
        assert_eq!(e, EncodeError::ClientIdTooLong(40_000));
        // A field not valid at this version: Metadata v3 cannot say "no auto-create".
        let req = MetadataRequest::default().with_allow_auto_topic_creation(false);
        let e = encode_request(&mut out, 1, None, 3, &req).unwrap_err();
        assert!(matches!(e, EncodeError::Body { version: 3, .. }), "{e}");
        assert_eq!(&out[..], b"ab");
        let mut v = b"cd".to_vec();
        assert!(encode_request_to(&mut v, 1, None, 3, &req).is_err());
        assert_eq!(v, b"cd");
    }

    #[test]
    fn vec_and_bytesmut_outputs_match() {
        let req = MetadataRequest::default();
        let mut a = BytesMut::new();
        encode_request(&mut a, 9, Some("c"), 12, &req).unwrap();
        encode_request(&mut a, 10, Some("c"), 1, &req).unwrap();
        let mut b = Vec::new();
        encode_request_to(&mut b, 9, Some("c"), 12, &req).unwrap();
        encode_request_to(&mut b, 10, Some("c"), 1, &req).unwrap();
        assert_eq!(&a[..], &b[..]);
        let first = frame_len(&b, usize::MAX).unwrap().unwrap();
        assert_eq!(peek_correlation_id(&b[first + 4 + 4..]).unwrap(), 10);
    }
}
