//! The wire envelope of the group member: the requests it asks the driver to send
//! ([`Outgoing`], [`Request`]), where to send them ([`Target`]), the decoded answers the
//! driver hands back ([`Response`]), and the API versions both sides agreed on
//! ([`GroupVersions`]). No state: the membership machine ([`crate::member`]) decides
//! what to send and what an answer means.

use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::messages as kp;
use weir_protocol::DecodeError;
use weir_protocol::frame::{EncodeError, encode_request, response_header_flexible_by_key};
use weir_protocol::messages::ResponseBody;
use weir_protocol::messages::group::{
    ConsumerGroupHeartbeatResponse, FindCoordinatorResponse, HeartbeatResponse, JoinGroupResponse,
    LeaveGroupResponse, OffsetCommitResponse, OffsetFetchResponse, SyncGroupResponse,
};
use weir_protocol::versions::{ApiVersionTable, VersionError};

/// Identifies one outgoing request; hand it back with its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Where a request must go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Any connected broker (FindCoordinator).
    AnyBroker,
    /// The group coordinator, on its own connection.
    Coordinator(CoordinatorAddr),
}

/// The group coordinator's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorAddr {
    /// Broker id.
    pub node_id: i32,
    /// Host.
    pub host: String,
    /// Port.
    pub port: i32,
}

/// A request to encode (with kafka-protocol) at [`Outgoing::version`] and send.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum Request {
    FindCoordinator(kp::FindCoordinatorRequest),
    JoinGroup(kp::JoinGroupRequest),
    SyncGroup(kp::SyncGroupRequest),
    Heartbeat(kp::HeartbeatRequest),
    LeaveGroup(kp::LeaveGroupRequest),
    OffsetCommit(kp::OffsetCommitRequest),
    OffsetFetch(kp::OffsetFetchRequest),
    ConsumerGroupHeartbeat(kp::ConsumerGroupHeartbeatRequest),
}

impl Request {
    /// The Kafka API key.
    pub fn api_key(&self) -> i16 {
        match self {
            Self::FindCoordinator(_) => 10,
            Self::JoinGroup(_) => 11,
            Self::SyncGroup(_) => 14,
            Self::Heartbeat(_) => 12,
            Self::LeaveGroup(_) => 13,
            Self::OffsetCommit(_) => 8,
            Self::OffsetFetch(_) => 9,
            Self::ConsumerGroupHeartbeat(_) => 68,
        }
    }
}

/// One request for the driver to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// Give this back to [`crate::GroupMember::handle_response`] or
    /// [`crate::GroupMember::handle_request_failed`].
    pub id: RequestId,
    /// Which connection.
    pub target: Target,
    /// The version to encode at (from [`GroupVersions`]).
    pub version: i16,
    /// The request.
    pub request: Request,
    /// How long the member waits for the answer before it counts the request as
    /// failed: `request.timeout.ms`, except JoinGroup, which the coordinator may hold
    /// for a whole rebalance (the rebalance timeout plus 5 s, as Java). The driver
    /// must not give up on the request sooner (a transport deadline of
    /// `request.timeout.ms` would cut every slow rebalance short and rejoin forever).
    pub timeout: Duration,
}

/// A decoded response (weir's own decoders) for [`crate::GroupMember::handle_response`].
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub enum Response<'a> {
    FindCoordinator(FindCoordinatorResponse<'a>),
    JoinGroup(JoinGroupResponse<'a>),
    SyncGroup(SyncGroupResponse<'a>),
    Heartbeat(HeartbeatResponse),
    LeaveGroup(LeaveGroupResponse<'a>),
    OffsetCommit(OffsetCommitResponse<'a>),
    OffsetFetch(OffsetFetchResponse<'a>),
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse<'a>),
}

/// The request versions the machine builds, one per group API.
///
/// Set them from the ApiVersions negotiation with [`GroupVersions::negotiate`]
/// before the first [`crate::GroupMember::poll_transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct GroupVersions {
    pub find_coordinator: i16,
    pub join_group: i16,
    pub sync_group: i16,
    pub heartbeat: i16,
    pub leave_group: i16,
    pub offset_commit: i16,
    pub offset_fetch: i16,
    /// ConsumerGroupHeartbeat (KIP-848), or -1 when the broker lacks it (it is
    /// needed only with `group.protocol=consumer`).
    pub consumer_group_heartbeat: i16,
}

impl GroupVersions {
    /// The highest versions weir builds and decodes.
    pub const MAX: Self = Self {
        find_coordinator: 4,
        join_group: 9,
        sync_group: 5,
        heartbeat: 4,
        leave_group: 5,
        offset_commit: 9,
        offset_fetch: 9,
        consumer_group_heartbeat: 1,
    };
    /// The lowest versions weir builds (kafka-protocol's encoders start here).
    pub const MIN: Self = Self {
        find_coordinator: 0,
        join_group: 0,
        sync_group: 0,
        heartbeat: 0,
        leave_group: 0,
        offset_commit: 2,
        offset_fetch: 1,
        // v1 (Kafka 4.0+): the member id is the client's own; v0 was early access.
        consumer_group_heartbeat: 1,
    };

    /// Pick, per API, the highest version both sides support. `broker` returns the
    /// broker's `(min, max)` for an API key, or `None` when it lacks the API.
    pub fn negotiate(broker: impl Fn(i16) -> Option<(i16, i16)>) -> Result<Self, i16> {
        let pick = |key: i16, lo: i16, hi: i16| -> Result<i16, i16> {
            let (bmin, bmax) = broker(key).ok_or(key)?;
            let v = hi.min(bmax);
            if v < lo.max(bmin) { Err(key) } else { Ok(v) }
        };
        let (a, b) = (Self::MIN, Self::MAX);
        Ok(Self {
            find_coordinator: pick(10, a.find_coordinator, b.find_coordinator)?,
            join_group: pick(11, a.join_group, b.join_group)?,
            sync_group: pick(14, a.sync_group, b.sync_group)?,
            heartbeat: pick(12, a.heartbeat, b.heartbeat)?,
            leave_group: pick(13, a.leave_group, b.leave_group)?,
            offset_commit: pick(8, a.offset_commit, b.offset_commit)?,
            offset_fetch: pick(9, a.offset_fetch, b.offset_fetch)?,
            consumer_group_heartbeat: pick(
                68,
                a.consumer_group_heartbeat,
                b.consumer_group_heartbeat,
            )
            .unwrap_or(-1),
        })
    }
}

impl GroupVersions {
    /// Negotiate against a broker's ApiVersions table.
    pub fn from_table(table: &ApiVersionTable) -> Result<Self, VersionError> {
        let (a, b) = (Self::MIN, Self::MAX);
        Ok(Self {
            find_coordinator: table.negotiate_key(
                10,
                "FindCoordinator",
                a.find_coordinator,
                b.find_coordinator,
            )?,
            join_group: table.negotiate_key(11, "JoinGroup", a.join_group, b.join_group)?,
            sync_group: table.negotiate_key(14, "SyncGroup", a.sync_group, b.sync_group)?,
            heartbeat: table.negotiate_key(12, "Heartbeat", a.heartbeat, b.heartbeat)?,
            leave_group: table.negotiate_key(13, "LeaveGroup", a.leave_group, b.leave_group)?,
            offset_commit: table.negotiate_key(
                8,
                "OffsetCommit",
                a.offset_commit,
                b.offset_commit,
            )?,
            offset_fetch: table.negotiate_key(9, "OffsetFetch", a.offset_fetch, b.offset_fetch)?,
            consumer_group_heartbeat: table
                .negotiate_key(
                    68,
                    "ConsumerGroupHeartbeat",
                    a.consumer_group_heartbeat,
                    b.consumer_group_heartbeat,
                )
                .unwrap_or(-1),
        })
    }
}

impl Request {
    /// Append the whole request frame (size, header, body) to `out`.
    pub fn encode_frame(
        &self,
        out: &mut BytesMut,
        correlation_id: i32,
        client_id: Option<&str>,
        version: i16,
    ) -> Result<(), EncodeError> {
        let (c, id) = (correlation_id, client_id);
        match self {
            Self::FindCoordinator(r) => encode_request(out, c, id, version, r),
            Self::JoinGroup(r) => encode_request(out, c, id, version, r),
            Self::SyncGroup(r) => encode_request(out, c, id, version, r),
            Self::Heartbeat(r) => encode_request(out, c, id, version, r),
            Self::LeaveGroup(r) => encode_request(out, c, id, version, r),
            Self::OffsetCommit(r) => encode_request(out, c, id, version, r),
            Self::OffsetFetch(r) => encode_request(out, c, id, version, r),
            Self::ConsumerGroupHeartbeat(r) => encode_request(out, c, id, version, r),
        }
    }

    /// Whether the response to this request at `version` has a flexible header.
    pub fn response_header_flexible(&self, version: i16) -> bool {
        response_header_flexible_by_key(self.api_key(), version)
    }
}

impl<'a> Response<'a> {
    /// Decode a response body (after the header) for `api_key` at `version`.
    pub fn decode(api_key: i16, version: i16, body: &'a [u8]) -> Result<Self, DecodeError> {
        Ok(match api_key {
            10 => Self::FindCoordinator(FindCoordinatorResponse::decode_body(body, version)?),
            11 => Self::JoinGroup(JoinGroupResponse::decode_body(body, version)?),
            14 => Self::SyncGroup(SyncGroupResponse::decode_body(body, version)?),
            12 => Self::Heartbeat(HeartbeatResponse::decode_body(body, version)?),
            13 => Self::LeaveGroup(LeaveGroupResponse::decode_body(body, version)?),
            8 => Self::OffsetCommit(OffsetCommitResponse::decode_body(body, version)?),
            9 => Self::OffsetFetch(OffsetFetchResponse::decode_body(body, version)?),
            68 => Self::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse::decode_body(
                body, version,
            )?),
            _ => return Err(DecodeError::UnsupportedVersion { api_key, version }),
        })
    }
}

impl Default for GroupVersions {
    fn default() -> Self {
        Self::MAX
    }
}
