//! Response decoders (`responses`) and framing plus response headers (`frame`).

use std::fmt::Debug;

use weir_protocol::frame::{
    decode_response_header, frame_len, parse_response, peek_correlation_id,
    response_header_flexible_by_key, split_frame,
};
use weir_protocol::messages::ResponseBody;
use weir_protocol::messages::api_versions::ApiVersionsResponse;
use weir_protocol::messages::fetch::FetchResponse;
use weir_protocol::messages::group::{
    ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatResponse, DeleteGroupsResponse,
    DescribeGroupsResponse, FindCoordinatorResponse, HeartbeatResponse, JoinGroupResponse,
    LeaveGroupResponse, ListGroupsResponse, OffsetCommitResponse, OffsetDeleteResponse,
    OffsetFetchResponse, SyncGroupResponse,
};
use weir_protocol::messages::list_offsets::ListOffsetsResponse;
use weir_protocol::messages::metadata::MetadataResponse;
use weir_protocol::messages::sasl::{SaslAuthenticateResponse, SaslHandshakeResponse};
use weir_protocol::{ApiVersionTable, DecodeError, Reader};

use crate::Touch;

/// The API keys weir decodes responses for, in the order the selector bytes index.
/// New keys go at the end, so the existing seeds keep selecting what they did.
pub const KEYS: [i16; 19] = [
    18, 3, 2, 17, 36, 10, 11, 14, 12, 13, 8, 9, 15, 16, 1, 42, 47, 68, 69,
];

/// Decode `body` as `T` at `version`; a version outside the decoder's range must be
/// refused with `UnsupportedVersion`. Every field of a result is read (Debug).
fn check<'a, T: ResponseBody<'a> + Debug>(
    body: &'a [u8],
    version: i16,
    t: &mut Touch,
) -> Option<T> {
    let r = T::decode_body(body, version);
    if !(T::MIN_VERSION..=T::MAX_VERSION).contains(&version) {
        assert!(
            matches!(r, Err(DecodeError::UnsupportedVersion { api_key, version: v })
                if api_key == T::API_KEY && v == version),
            "API {} v{version} is outside {}..={} but gave {r:?}",
            T::API_KEY,
            T::MIN_VERSION,
            T::MAX_VERSION
        );
    }
    // Decoding through `decode` on a reader must agree with `decode_body`.
    if (T::MIN_VERSION..=T::MAX_VERSION).contains(&version) {
        let mut reader = Reader::new(body);
        let again = T::decode(&mut reader, version);
        assert_eq!(again.is_ok(), r.is_ok(), "decode and decode_body disagree");
        assert!(reader.position() <= body.len());
    }
    match r {
        Ok(v) => {
            t.debug(&v);
            Some(v)
        }
        Err(e) => {
            t.display(&e);
            t.debug(&e);
            None
        }
    }
}

/// The version range of the decoder for `api_key`.
pub fn range(api_key: i16) -> (i16, i16) {
    macro_rules! r {
        ($t:ty) => {
            (<$t>::MIN_VERSION, <$t>::MAX_VERSION)
        };
    }
    match api_key {
        18 => r!(ApiVersionsResponse),
        3 => r!(MetadataResponse<'_>),
        2 => r!(ListOffsetsResponse<'_>),
        17 => r!(SaslHandshakeResponse<'_>),
        36 => r!(SaslAuthenticateResponse<'_>),
        10 => r!(FindCoordinatorResponse<'_>),
        11 => r!(JoinGroupResponse<'_>),
        14 => r!(SyncGroupResponse<'_>),
        12 => r!(HeartbeatResponse),
        13 => r!(LeaveGroupResponse<'_>),
        8 => r!(OffsetCommitResponse<'_>),
        9 => r!(OffsetFetchResponse<'_>),
        15 => r!(DescribeGroupsResponse<'_>),
        16 => r!(ListGroupsResponse<'_>),
        1 => r!(FetchResponse<'_>),
        42 => r!(DeleteGroupsResponse<'_>),
        47 => r!(OffsetDeleteResponse<'_>),
        68 => r!(ConsumerGroupHeartbeatResponse<'_>),
        69 => r!(ConsumerGroupDescribeResponse<'_>),
        _ => (0, -1),
    }
}

/// Decode `body` with the decoder for `api_key` at `version`.
pub(crate) fn decode_by_key(api_key: i16, version: i16, body: &[u8], t: &mut Touch) {
    match api_key {
        18 => {
            if let Some(resp) = check::<ApiVersionsResponse>(body, version, t) {
                api_versions_extras(&resp, t);
            }
            match ApiVersionsResponse::decode_with_fallback(body, version) {
                Ok(resp) => api_versions_extras(&resp, t),
                Err(e) => t.display(&e),
            }
        }
        3 => {
            if let Some(resp) = check::<MetadataResponse<'_>>(body, version, t) {
                for b in &resp.brokers {
                    let found = resp.broker(b.node_id);
                    assert!(found.is_some(), "listed broker not found by id");
                }
                t.debug(&resp.broker(-1));
            }
        }
        2 => {
            let _ = check::<ListOffsetsResponse<'_>>(body, version, t);
        }
        17 => {
            let _ = check::<SaslHandshakeResponse<'_>>(body, version, t);
        }
        36 => {
            let _ = check::<SaslAuthenticateResponse<'_>>(body, version, t);
        }
        10 => {
            let _ = check::<FindCoordinatorResponse<'_>>(body, version, t);
        }
        11 => {
            let _ = check::<JoinGroupResponse<'_>>(body, version, t);
        }
        14 => {
            let _ = check::<SyncGroupResponse<'_>>(body, version, t);
        }
        12 => {
            let _ = check::<HeartbeatResponse>(body, version, t);
        }
        13 => {
            let _ = check::<LeaveGroupResponse<'_>>(body, version, t);
        }
        8 => {
            let _ = check::<OffsetCommitResponse<'_>>(body, version, t);
        }
        9 => {
            let _ = check::<OffsetFetchResponse<'_>>(body, version, t);
        }
        15 => {
            let _ = check::<DescribeGroupsResponse<'_>>(body, version, t);
        }
        16 => {
            let _ = check::<ListGroupsResponse<'_>>(body, version, t);
        }
        1 => {
            let _ = check::<FetchResponse<'_>>(body, version, t);
        }
        42 => {
            let _ = check::<DeleteGroupsResponse<'_>>(body, version, t);
        }
        47 => {
            let _ = check::<OffsetDeleteResponse<'_>>(body, version, t);
        }
        68 => {
            let _ = check::<ConsumerGroupHeartbeatResponse<'_>>(body, version, t);
        }
        69 => {
            let _ = check::<ConsumerGroupDescribeResponse<'_>>(body, version, t);
        }
        _ => {}
    }
}

/// Whether `body` decodes at `version` with the decoder for `api_key` (for checking
/// that seeds are valid messages, not just bytes).
pub fn decodes(api_key: i16, version: i16, body: &[u8]) -> bool {
    macro_rules! ok {
        ($t:ty) => {
            <$t>::decode_body(body, version).is_ok()
        };
    }
    match api_key {
        18 => ok!(ApiVersionsResponse),
        3 => ok!(MetadataResponse<'_>),
        2 => ok!(ListOffsetsResponse<'_>),
        17 => ok!(SaslHandshakeResponse<'_>),
        36 => ok!(SaslAuthenticateResponse<'_>),
        10 => ok!(FindCoordinatorResponse<'_>),
        11 => ok!(JoinGroupResponse<'_>),
        14 => ok!(SyncGroupResponse<'_>),
        12 => ok!(HeartbeatResponse),
        13 => ok!(LeaveGroupResponse<'_>),
        8 => ok!(OffsetCommitResponse<'_>),
        9 => ok!(OffsetFetchResponse<'_>),
        15 => ok!(DescribeGroupsResponse<'_>),
        16 => ok!(ListGroupsResponse<'_>),
        1 => ok!(FetchResponse<'_>),
        42 => ok!(DeleteGroupsResponse<'_>),
        47 => ok!(OffsetDeleteResponse<'_>),
        68 => ok!(ConsumerGroupHeartbeatResponse<'_>),
        69 => ok!(ConsumerGroupDescribeResponse<'_>),
        _ => false,
    }
}

fn api_versions_extras(resp: &ApiVersionsResponse, t: &mut Touch) {
    t.debug(&resp.retry_version());
    let table = ApiVersionTable::from_response(resp);
    for key in KEYS {
        t.debug(&resp.range(key));
        t.debug(&table.broker_range(key));
        let (lo, hi) = range(key);
        match table.negotiate_key(key, "fuzz", lo, hi) {
            Ok(v) => {
                assert!(
                    (lo..=hi).contains(&v),
                    "negotiated v{v} outside {lo}..={hi}"
                );
                if let Some((bmin, bmax)) = table.broker_range(key) {
                    assert!(
                        (bmin..=bmax).contains(&v),
                        "negotiated v{v} outside the broker's range"
                    );
                }
            }
            Err(e) => t.display(&e),
        }
    }
}

/// Pick a version for `api_key` from a selector byte: mostly inside the decoder's
/// range, sometimes any small value (which must be refused cleanly when outside).
fn pick_version(api_key: i16, sel: u8) -> i16 {
    let (lo, hi) = range(api_key);
    if sel & 0x80 != 0 {
        i16::from(sel & 0x7f) - 8
    } else {
        let span = (hi - lo + 1).max(1) as u8;
        lo + i16::from(sel % span)
    }
}

/// The `responses` target: byte 0 picks the API, byte 1 the version, the rest is the
/// body.
pub fn responses(data: &[u8]) {
    let [k, v, body @ ..] = data else {
        return;
    };
    let api_key = KEYS[usize::from(*k) % KEYS.len()];
    let version = pick_version(api_key, *v);
    let mut t = Touch::default();
    decode_by_key(api_key, version, body, &mut t);
    t.finish();
}

/// The `frame` target: byte 0 picks the maximum frame size, bytes 1-2 the API and
/// version of the in-flight request; the rest is a byte stream of size-prefixed
/// frames, split one by one, each header read and each body decoded.
pub fn frame(data: &[u8]) {
    const MAX_FRAMES: [usize; 8] = [0, 3, 4, 5, 64, 4096, 1 << 20, usize::MAX];
    let [m, k, v, stream @ ..] = data else {
        return;
    };
    let max_frame = MAX_FRAMES[usize::from(*m) % MAX_FRAMES.len()];
    let api_key = KEYS[usize::from(*k) % KEYS.len()];
    let version = pick_version(api_key, *v);
    let flexible = response_header_flexible_by_key(api_key, version);
    let mut t = Touch::default();
    let mut buf = stream;
    loop {
        let len = frame_len(buf, max_frame);
        let split = split_frame(buf, max_frame);
        match (len, split) {
            (Ok(None), Ok(None)) => {
                assert!(buf.len() < 4, "no frame length with {} bytes", buf.len());
                break;
            }
            (Ok(Some(total)), Ok(None)) => {
                assert!(total >= 4 && total <= max_frame);
                assert!(total > buf.len(), "complete frame not split");
                break;
            }
            (Ok(Some(total)), Ok(Some((frame, used)))) => {
                assert!(total >= 4 && total <= max_frame);
                assert_eq!(used, total);
                assert_eq!(frame.len() + 4, used);
                assert!(std::ptr::eq(frame.as_ptr(), buf[4..].as_ptr()));
                one_frame(frame, flexible, api_key, version, &mut t);
                buf = &buf[used..];
            }
            (Err(a), Err(b)) => {
                assert_eq!(a, b);
                t.display(&a);
                break;
            }
            (len, split) => panic!("frame_len {len:?} and split_frame {split:?} disagree"),
        }
    }
    t.finish();
}

fn one_frame(frame: &[u8], flexible: bool, api_key: i16, version: i16, t: &mut Touch) {
    let peeked = peek_correlation_id(frame);
    match parse_response(frame, flexible) {
        Ok(resp) => {
            assert_eq!(peeked, Ok(resp.correlation_id), "peek and parse disagree");
            // The body is the tail of the frame.
            let off = frame.len() - resp.body.len();
            assert!(std::ptr::eq(resp.body.as_ptr(), frame[off..].as_ptr()));
            if !flexible {
                assert_eq!(off, 4, "non-flexible header is 4 bytes");
            }
            let mut r = Reader::new(frame);
            assert_eq!(
                decode_response_header(&mut r, flexible),
                Ok(resp.correlation_id)
            );
            assert_eq!(r.position(), off);
            decode_by_key(api_key, version, resp.body, t);
        }
        Err(e) => {
            t.display(&e);
            if !flexible {
                assert!(
                    frame.len() < 4,
                    "non-flexible header failed on {} bytes",
                    frame.len()
                );
            }
        }
    }
}
