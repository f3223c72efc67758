//! Bounded decoders for the consumer-group APIs.
//!
//! FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
//! OffsetFetch, DescribeGroups and ListGroups responses, every field of every version
//! in each decoder's range. Strings and byte fields borrow from the frame.
//!
//! Two responses are normalised so callers need not branch on the version:
//! * [`FindCoordinatorResponse::coordinators`] always holds the coordinators; before
//!   v4 (no batching) it holds one entry whose `key` is empty (the key asked for).
//! * [`OffsetFetchResponse::groups`] always holds the groups; before v8 (no batching)
//!   it holds one entry whose `group_id` is empty (the group asked for) and whose
//!   `error_code` is the top-level error code (NONE before v2).
//!
//! Requests are encoded with `kafka-protocol`; only the responses are decoded here.

use super::ResponseBody;
use crate::{DecodeError, ErrorCode, Reader};

fn read_error(r: &mut Reader<'_>) -> Result<ErrorCode, DecodeError> {
    Ok(ErrorCode(r.i16("error_code")?))
}

// ---------------------------------------------------------------------------------
// FindCoordinator (API key 10)
// ---------------------------------------------------------------------------------

/// One coordinator of a FindCoordinator response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinator<'a> {
    /// The key (group id or transactional id) this entry answers; empty before v4.
    pub key: &'a str,
    /// The coordinator's broker id (-1 when there is an error).
    pub node_id: i32,
    /// The coordinator's host.
    pub host: &'a str,
    /// The coordinator's port.
    pub port: i32,
    /// The error for this key.
    pub error_code: ErrorCode,
    /// The error message, if any.
    pub error_message: Option<&'a str>,
}

/// A FindCoordinator response (v0-6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindCoordinatorResponse<'a> {
    /// Throttle time (0 before v1).
    pub throttle_time_ms: i32,
    /// The coordinators (one unnamed entry before v4; see the module docs).
    pub coordinators: Vec<Coordinator<'a>>,
}

impl<'a> ResponseBody<'a> for FindCoordinatorResponse<'a> {
    const API_KEY: i16 = 10;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 6;
    const FIRST_FLEXIBLE: i16 = 3;

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        let flex = Self::flexible(version);
        let throttle_time_ms = if version >= 1 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let coordinators = if version <= 3 {
            let error_code = read_error(r)?;
            let error_message = if version >= 1 {
                r.nullable_string_v(flex, "error_message")?
            } else {
                None
            };
            let node_id = r.i32("node_id")?;
            let host = r.string_v(flex, "host")?;
            let port = r.i32("port")?;
            vec![Coordinator {
                key: "",
                node_id,
                host,
                port,
                error_code,
                error_message,
            }]
        } else {
            // key(1) node(4) host(1) port(4) error(2) message(1) tags(1)
            let n = r.array_len_v(flex, 14, "coordinators")?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let key = r.compact_string("key")?;
                let node_id = r.i32("node_id")?;
                let host = r.compact_string("host")?;
                let port = r.i32("port")?;
                let error_code = read_error(r)?;
                let error_message = r.compact_nullable_string("error_message")?;
                r.skip_tagged_fields()?;
                out.push(Coordinator {
                    key,
                    node_id,
                    host,
                    port,
                    error_code,
                    error_message,
                });
            }
            out
        };
        r.tagged_fields_v(flex)?;
        Ok(Self {
            throttle_time_ms,
            coordinators,
        })
    }
}

// ---------------------------------------------------------------------------------
// JoinGroup (API key 11)
// ---------------------------------------------------------------------------------

/// A member of the group as the leader sees it in a JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupMember<'a> {
    /// The member id.
    pub member_id: &'a str,
    /// The static instance id (v5+), if any.
    pub group_instance_id: Option<&'a str>,
    /// The member's protocol metadata (a ConsumerProtocol subscription).
    pub metadata: &'a [u8],
}

/// A JoinGroup response (v0-9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupResponse<'a> {
    /// Throttle time (0 before v2).
    pub throttle_time_ms: i32,
    /// The error.
    pub error_code: ErrorCode,
    /// The generation id.
    pub generation_id: i32,
    /// The protocol type (v7+).
    pub protocol_type: Option<&'a str>,
    /// The protocol (assignor) the broker chose; nullable from v7.
    pub protocol_name: Option<&'a str>,
    /// The leader's member id.
    pub leader: &'a str,
    /// Whether the leader must skip assignment (v9+, KIP-814).
    pub skip_assignment: bool,
    /// This member's id.
    pub member_id: &'a str,
    /// The members (only the leader receives them).
    pub members: Vec<JoinGroupMember<'a>>,
}

impl<'a> ResponseBody<'a> for JoinGroupResponse<'a> {
    const API_KEY: i16 = 11;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 9;
    const FIRST_FLEXIBLE: i16 = 6;

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        let flex = Self::flexible(version);
        let throttle_time_ms = if version >= 2 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let error_code = read_error(r)?;
        let generation_id = r.i32("generation_id")?;
        let protocol_type = if version >= 7 {
            r.compact_nullable_string("protocol_type")?
        } else {
            None
        };
        let protocol_name = if version >= 7 {
            r.compact_nullable_string("protocol_name")?
        } else {
            Some(r.string_v(flex, "protocol_name")?)
        };
        let leader = r.string_v(flex, "leader")?;
        let skip_assignment = if version >= 9 {
            r.bool("skip_assignment")?
        } else {
            false
        };
        let member_id = r.string_v(flex, "member_id")?;
        let min = if flex { 4 } else { 6 };
        let n = r.array_len_v(flex, min, "members")?;
        let mut members = Vec::with_capacity(n);
        for _ in 0..n {
            let member_id = r.string_v(flex, "member_id")?;
            let group_instance_id = if version >= 5 {
                r.nullable_string_v(flex, "group_instance_id")?
            } else {
                None
            };
            let metadata = r.bytes_v(flex, "metadata")?;
            r.tagged_fields_v(flex)?;
            members.push(JoinGroupMember {
                member_id,
                group_instance_id,
                metadata,
            });
        }
        r.tagged_fields_v(flex)?;
        Ok(Self {
            throttle_time_ms,
            error_code,
            generation_id,
            protocol_type,
            protocol_name,
            leader,
            skip_assignment,
            member_id,
            members,
        })
    }
}

// ---------------------------------------------------------------------------------
// SyncGroup (API key 14)
// ---------------------------------------------------------------------------------

/// A SyncGroup response (v0-5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupResponse<'a> {
    /// Throttle time (0 before v1).
    pub throttle_time_ms: i32,
    /// The error.
    pub error_code: ErrorCode,
    /// The protocol type (v5+).
    pub protocol_type: Option<&'a str>,
    /// The protocol name (v5+).
    pub protocol_name: Option<&'a str>,
    /// This member's assignment (a ConsumerProtocol assignment).
    pub assignment: &'a [u8],
}

impl<'a> ResponseBody<'a> for SyncGroupResponse<'a> {
    const API_KEY: i16 = 14;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 5;
    const FIRST_FLEXIBLE: i16 = 4;

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        let flex = Self::flexible(version);
        let throttle_time_ms = if version >= 1 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let error_code = read_error(r)?;
        let (protocol_type, protocol_name) = if version >= 5 {
            (
                r.compact_nullable_string("protocol_type")?,
                r.compact_nullable_string("protocol_name")?,
            )
        } else {
            (None, None)
        };
        let assignment = r.bytes_v(flex, "assignment")?;
        r.tagged_fields_v(flex)?;
        Ok(Self {
            throttle_time_ms,
            error_code,
            protocol_type,
            protocol_name,
            assignment,
        })
    }
}

// ---------------------------------------------------------------------------------
// Heartbeat (API key 12)
// ---------------------------------------------------------------------------------

/// A Heartbeat response (v0-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatResponse {
    /// Throttle time (0 before v1).
    pub throttle_time_ms: i32,
    /// The error.
    pub error_code: ErrorCode,
}

impl<'a> ResponseBody<'a> for HeartbeatResponse {
    const API_KEY: i16 = 12;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 4;
    const FIRST_FLEXIBLE: i16 = 4;

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        let flex = <Self as ResponseBody<'a>>::flexible(version);
        let throttle_time_ms = if version >= 1 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let error_code = read_error(r)?;
        r.tagged_fields_v(flex)?;
        Ok(Self {
            throttle_time_ms,
            error_code,
        })
    }
}

// ---------------------------------------------------------------------------------
// LeaveGroup (API key 13)
// ---------------------------------------------------------------------------------

/// One member's result in a LeaveGroup response (v3+).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveGroupMemberResponse<'a> {
    /// The member id.
    pub member_id: &'a str,
    /// The static instance id, if any.
    pub group_instance_id: Option<&'a str>,
    /// The error for this member.
    pub error_code: ErrorCode,
}

/// A LeaveGroup response (v0-5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveGroupResponse<'a> {
    /// Throttle time (0 before v1).
    pub throttle_time_ms: i32,
    /// The top-level error.
    pub error_code: ErrorCode,
    /// Per-member results (v3+; empty before).
    pub members: Vec<LeaveGroupMemberResponse<'a>>,
}

impl<'a> ResponseBody<'a> for LeaveGroupResponse<'a> {
    const API_KEY: i16 = 13;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 5;
    const FIRST_FLEXIBLE: i16 = 4;

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        let flex = Self::flexible(version);
        let throttle_time_ms = if version >= 1 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let error_code = read_error(r)?;
        let mut members = Vec::new();
        if version >= 3 {
            let min = if flex { 5 } else { 6 };
            let n = r.array_len_v(flex, min, "members")?;
            members.reserve_exact(n);
            for _ in 0..n {
                let member_id = r.string_v(flex, "member_id")?;
                let group_instance_id = r.nullable_string_v(flex, "group_instance_id")?;
                let error_code = read_error(r)?;
                r.tagged_fields_v(flex)?;
                members.push(LeaveGroupMemberResponse {
                    member_id,
                    group_instance_id,
                    error_code,
                });
            }
        }
        r.tagged_fields_v(flex)?;
        Ok(Self {
            throttle_time_ms,
            error_code,
            members,
        })
    }
}

// ---------------------------------------------------------------------------------
// OffsetCommit (API key 8)
// ---------------------------------------------------------------------------------

/// One partition's result in an OffsetCommit response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetCommitPartitionResponse {
    /// The partition.
    pub partition_index: i32,
    /// The error for this partition.
    pub error_code: ErrorCode,
}

/// One topic's results in an OffsetCommit response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitTopicResponse<'a> {
    /// The topic name.
    pub name: &'a str,
    /// Per-partition results.
    pub partitions: Vec<OffsetCommitPartitionResponse>,
}

/// An OffsetCommit response (v0-9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitResponse<'a> {
    /// Throttle time (0 before v3).
    pub throttle_time_ms: i32,
    /// Per-topic results.
    pub topics: Vec<OffsetCommitTopicResponse<'a>>,
}

impl<'a> ResponseBody<'a> for OffsetCommitResponse<'a> {
    const API_KEY: i16 = 8;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 9;
    const FIRST_FLEXIBLE: i16 = 8;

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        let flex = Self::flexible(version);
        let throttle_time_ms = if version >= 3 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let (tmin, pmin) = if flex { (3, 7) } else { (6, 6) };
        let n = r.array_len_v(flex, tmin, "topics")?;
        let mut topics = Vec::with_capacity(n);
        for _ in 0..n {
            let name = r.string_v(flex, "topic name")?;
            let pn = r.array_len_v(flex, pmin, "partitions")?;
            let mut partitions = Vec::with_capacity(pn);
            for _ in 0..pn {
                let partition_index = r.i32("partition_index")?;
                let error_code = read_error(r)?;
                r.tagged_fields_v(flex)?;
                partitions.push(OffsetCommitPartitionResponse {
                    partition_index,
                    error_code,
                });
            }
            r.tagged_fields_v(flex)?;
            topics.push(OffsetCommitTopicResponse { name, partitions });
        }
        r.tagged_fields_v(flex)?;
        Ok(Self {
            throttle_time_ms,
            topics,
        })
    }
}

// ---------------------------------------------------------------------------------
// OffsetFetch (API key 9)
// ---------------------------------------------------------------------------------

/// One partition's committed offset in an OffsetFetch response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchPartition<'a> {
    /// The partition.
    pub partition_index: i32,
    /// The committed offset, or -1 when the group has none.
    pub committed_offset: i64,
    /// The leader epoch of the committed offset (v5+; -1 when absent).
    pub committed_leader_epoch: i32,
    /// The commit's metadata string.
    pub metadata: Option<&'a str>,
    /// The error for this partition.
    pub error_code: ErrorCode,
}

/// One topic's committed offsets in an OffsetFetch response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchTopic<'a> {
    /// The topic name.
    pub name: &'a str,
    /// Per-partition offsets.
    pub partitions: Vec<OffsetFetchPartition<'a>>,
}

/// One group's committed offsets in an OffsetFetch response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchGroup<'a> {
    /// The group id (empty before v8; see the module docs).
    pub group_id: &'a str,
    /// Per-topic offsets.
    pub topics: Vec<OffsetFetchTopic<'a>>,
    /// The group-level error (top-level before v8, NONE before v2).
    pub error_code: ErrorCode,
}

/// An OffsetFetch response (v0-9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchResponse<'a> {
    /// Throttle time (0 before v3).
    pub throttle_time_ms: i32,
    /// The groups (one unnamed entry before v8; see the module docs).
    pub groups: Vec<OffsetFetchGroup<'a>>,
}

fn offset_fetch_topics<'a>(
    r: &mut Reader<'a>,
    version: i16,
    flex: bool,
) -> Result<Vec<OffsetFetchTopic<'a>>, DecodeError> {
    let (tmin, pmin) = if flex { (3, 16) } else { (6, 16) };
    let n = r.array_len_v(flex, tmin, "topics")?;
    let mut topics = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string_v(flex, "topic name")?;
        let pn = r.array_len_v(flex, pmin, "partitions")?;
        let mut partitions = Vec::with_capacity(pn);
        for _ in 0..pn {
            let partition_index = r.i32("partition_index")?;
            let committed_offset = r.i64("committed_offset")?;
            let committed_leader_epoch = if version >= 5 {
                r.i32("committed_leader_epoch")?
            } else {
                -1
            };
            let metadata = r.nullable_string_v(flex, "metadata")?;
            let error_code = read_error(r)?;
            r.tagged_fields_v(flex)?;
            partitions.push(OffsetFetchPartition {
                partition_index,
                committed_offset,
                committed_leader_epoch,
                metadata,
                error_code,
            });
        }
        r.tagged_fields_v(flex)?;
        topics.push(OffsetFetchTopic { name, partitions });
    }
    Ok(topics)
}

impl<'a> ResponseBody<'a> for OffsetFetchResponse<'a> {
    const API_KEY: i16 = 9;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 9;
    const FIRST_FLEXIBLE: i16 = 6;

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        let flex = Self::flexible(version);
        let throttle_time_ms = if version >= 3 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let groups = if version <= 7 {
            let topics = offset_fetch_topics(r, version, flex)?;
            let error_code = if version >= 2 {
                read_error(r)?
            } else {
                ErrorCode::NONE
            };
            vec![OffsetFetchGroup {
                group_id: "",
                topics,
                error_code,
            }]
        } else {
            // group id(1) topics(1) error(2) tags(1)
            let n = r.array_len_v(flex, 5, "groups")?;
            let mut groups = Vec::with_capacity(n);
            for _ in 0..n {
                let group_id = r.compact_string("group_id")?;
                let topics = offset_fetch_topics(r, version, flex)?;
                let error_code = read_error(r)?;
                r.skip_tagged_fields()?;
                groups.push(OffsetFetchGroup {
                    group_id,
                    topics,
                    error_code,
                });
            }
            groups
        };
        r.tagged_fields_v(flex)?;
        Ok(Self {
            throttle_time_ms,
            groups,
        })
    }
}

// ---------------------------------------------------------------------------------
// DescribeGroups (API key 15)
// ---------------------------------------------------------------------------------

/// A member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedGroupMember<'a> {
    /// The member id.
    pub member_id: &'a str,
    /// The static instance id (v4+), if any.
    pub group_instance_id: Option<&'a str>,
    /// The member's client id.
    pub client_id: &'a str,
    /// The member's host.
    pub client_host: &'a str,
    /// The member's protocol metadata.
    pub member_metadata: &'a [u8],
    /// The member's current assignment.
    pub member_assignment: &'a [u8],
}

/// One group of a DescribeGroups response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedGroup<'a> {
    /// The error for this group.
    pub error_code: ErrorCode,
    /// The error message (v6+).
    pub error_message: Option<&'a str>,
    /// The group id.
    pub group_id: &'a str,
    /// The group state ("Stable", "PreparingRebalance", ...).
    pub group_state: &'a str,
    /// The protocol type ("consumer").
    pub protocol_type: &'a str,
    /// The chosen protocol (assignor name) while stable.
    pub protocol_data: &'a str,
    /// The members.
    pub members: Vec<DescribedGroupMember<'a>>,
    /// Authorized operations bit field (v3+; `i32::MIN` when absent).
    pub authorized_operations: i32,
}

/// A DescribeGroups response (v0-6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeGroupsResponse<'a> {
    /// Throttle time (0 before v1).
    pub throttle_time_ms: i32,
    /// The groups.
    pub groups: Vec<DescribedGroup<'a>>,
}

impl<'a> ResponseBody<'a> for DescribeGroupsResponse<'a> {
    const API_KEY: i16 = 15;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 6;
    const FIRST_FLEXIBLE: i16 = 5;

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        let flex = Self::flexible(version);
        let throttle_time_ms = if version >= 1 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let (gmin, mmin) = if flex { (7, 7) } else { (14, 14) };
        let n = r.array_len_v(flex, gmin, "groups")?;
        let mut groups = Vec::with_capacity(n);
        for _ in 0..n {
            let error_code = read_error(r)?;
            let error_message = if version >= 6 {
                r.compact_nullable_string("error_message")?
            } else {
                None
            };
            let group_id = r.string_v(flex, "group_id")?;
            let group_state = r.string_v(flex, "group_state")?;
            let protocol_type = r.string_v(flex, "protocol_type")?;
            let protocol_data = r.string_v(flex, "protocol_data")?;
            let mn = r.array_len_v(flex, mmin, "members")?;
            let mut members = Vec::with_capacity(mn);
            for _ in 0..mn {
                let member_id = r.string_v(flex, "member_id")?;
                let group_instance_id = if version >= 4 {
                    r.nullable_string_v(flex, "group_instance_id")?
                } else {
                    None
                };
                let client_id = r.string_v(flex, "client_id")?;
                let client_host = r.string_v(flex, "client_host")?;
                let member_metadata = r.bytes_v(flex, "member_metadata")?;
                let member_assignment = r.bytes_v(flex, "member_assignment")?;
                r.tagged_fields_v(flex)?;
                members.push(DescribedGroupMember {
                    member_id,
                    group_instance_id,
                    client_id,
                    client_host,
                    member_metadata,
                    member_assignment,
                });
            }
            let authorized_operations = if version >= 3 {
                r.i32("authorized_operations")?
            } else {
                i32::MIN
            };
            r.tagged_fields_v(flex)?;
            groups.push(DescribedGroup {
                error_code,
                error_message,
                group_id,
                group_state,
                protocol_type,
                protocol_data,
                members,
                authorized_operations,
            });
        }
        r.tagged_fields_v(flex)?;
        Ok(Self {
            throttle_time_ms,
            groups,
        })
    }
}

// ---------------------------------------------------------------------------------
// ConsumerGroupDescribe (API key 69): groups of the consumer protocol (KIP-848)
// ---------------------------------------------------------------------------------

/// Partitions of one topic in a ConsumerGroupDescribe assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupTopicPartitions<'a> {
    /// The topic id.
    pub topic_id: [u8; 16],
    /// The topic name.
    pub topic_name: &'a str,
    /// The partitions.
    pub partitions: Vec<i32>,
}

/// One member of a ConsumerGroupDescribe response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMember<'a> {
    /// The member id.
    pub member_id: &'a str,
    /// `group.instance.id`, if static.
    pub instance_id: Option<&'a str>,
    /// The member's rack.
    pub rack_id: Option<&'a str>,
    /// The member's epoch.
    pub member_epoch: i32,
    /// The member's `client.id`.
    pub client_id: &'a str,
    /// The member's host.
    pub client_host: &'a str,
    /// The topics it subscribed to.
    pub subscribed_topic_names: Vec<&'a str>,
    /// Its subscription regex.
    pub subscribed_topic_regex: Option<&'a str>,
    /// The partitions it owns now.
    pub assignment: Vec<ConsumerGroupTopicPartitions<'a>>,
    /// The partitions it is to own.
    pub target_assignment: Vec<ConsumerGroupTopicPartitions<'a>>,
    /// 0 classic, 1 consumer (v1+; -1 before).
    pub member_type: i8,
}

/// One group of a ConsumerGroupDescribe response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupDescribed<'a> {
    /// The error for this group.
    pub error_code: ErrorCode,
    /// The error message.
    pub error_message: Option<&'a str>,
    /// The group id.
    pub group_id: &'a str,
    /// The state ("Stable", "Reconciling", "Assigning", "Empty", "Dead").
    pub group_state: &'a str,
    /// The group epoch.
    pub group_epoch: i32,
    /// The assignment epoch.
    pub assignment_epoch: i32,
    /// The server-side assignor.
    pub assignor_name: &'a str,
    /// The members.
    pub members: Vec<ConsumerGroupMember<'a>>,
    /// Authorized operations bit field.
    pub authorized_operations: i32,
}

/// A ConsumerGroupDescribe response (v0-1, flexible throughout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupDescribeResponse<'a> {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// The groups.
    pub groups: Vec<ConsumerGroupDescribed<'a>>,
}

fn consumer_group_assignment<'a>(
    r: &mut Reader<'a>,
) -> Result<Vec<ConsumerGroupTopicPartitions<'a>>, DecodeError> {
    // topic id 16, name length 1, partitions length 1, tagged fields 1.
    let n = r.array_len_v(true, 19, "topic_partitions")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let topic_id = r.uuid("topic_id")?;
        let topic_name = r.compact_string("topic_name")?;
        let pn = r.array_len_v(true, 4, "partitions")?;
        let mut partitions = Vec::with_capacity(pn);
        for _ in 0..pn {
            partitions.push(r.i32("partition")?);
        }
        r.tagged_fields_v(true)?;
        out.push(ConsumerGroupTopicPartitions {
            topic_id,
            topic_name,
            partitions,
        });
    }
    r.tagged_fields_v(true)?;
    Ok(out)
}

impl<'a> ResponseBody<'a> for ConsumerGroupDescribeResponse<'a> {
    const API_KEY: i16 = 69;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 1;
    const FIRST_FLEXIBLE: i16 = 0;

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        let throttle_time_ms = r.i32("throttle_time_ms")?;
        // The smallest group: error 2, message 1, id 1, state 1, epochs 8, assignor 1,
        // members 1, operations 4, tagged 1.
        let n = r.array_len_v(true, 20, "groups")?;
        let mut groups = Vec::with_capacity(n);
        for _ in 0..n {
            let error_code = read_error(r)?;
            let error_message = r.compact_nullable_string("error_message")?;
            let group_id = r.compact_string("group_id")?;
            let group_state = r.compact_string("group_state")?;
            let group_epoch = r.i32("group_epoch")?;
            let assignment_epoch = r.i32("assignment_epoch")?;
            let assignor_name = r.compact_string("assignor_name")?;
            // The smallest member: strings 6, epoch 4, topics 1, two assignments 4,
            // tagged 1 (v1's member type on top).
            let mn = r.array_len_v(true, 16, "members")?;
            let mut members = Vec::with_capacity(mn);
            for _ in 0..mn {
                let member_id = r.compact_string("member_id")?;
                let instance_id = r.compact_nullable_string("instance_id")?;
                let rack_id = r.compact_nullable_string("rack_id")?;
                let member_epoch = r.i32("member_epoch")?;
                let client_id = r.compact_string("client_id")?;
                let client_host = r.compact_string("client_host")?;
                let tn = r.array_len_v(true, 1, "subscribed_topic_names")?;
                let mut subscribed_topic_names = Vec::with_capacity(tn);
                for _ in 0..tn {
                    subscribed_topic_names.push(r.compact_string("subscribed_topic_name")?);
                }
                let subscribed_topic_regex = r.compact_nullable_string("subscribed_topic_regex")?;
                let assignment = consumer_group_assignment(r)?;
                let target_assignment = consumer_group_assignment(r)?;
                let member_type = if version >= 1 {
                    r.i8("member_type")?
                } else {
                    -1
                };
                r.tagged_fields_v(true)?;
                members.push(ConsumerGroupMember {
                    member_id,
                    instance_id,
                    rack_id,
                    member_epoch,
                    client_id,
                    client_host,
                    subscribed_topic_names,
                    subscribed_topic_regex,
                    assignment,
                    target_assignment,
                    member_type,
                });
            }
            let authorized_operations = r.i32("authorized_operations")?;
            r.tagged_fields_v(true)?;
            groups.push(ConsumerGroupDescribed {
                error_code,
                error_message,
                group_id,
                group_state,
                group_epoch,
                assignment_epoch,
                assignor_name,
                members,
                authorized_operations,
            });
        }
        r.tagged_fields_v(true)?;
        Ok(Self {
            throttle_time_ms,
            groups,
        })
    }
}

// ---------------------------------------------------------------------------------
// ConsumerGroupHeartbeat (API key 68): membership of the consumer protocol (KIP-848)
// ---------------------------------------------------------------------------------

/// The partitions of one topic, by topic id, in a ConsumerGroupHeartbeat assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatTopicPartitions {
    /// The topic id (names come from Metadata).
    pub topic_id: [u8; 16],
    /// The partitions.
    pub partitions: Vec<i32>,
}

/// A ConsumerGroupHeartbeat response (v0-1, flexible throughout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupHeartbeatResponse<'a> {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// The error.
    pub error_code: ErrorCode,
    /// The broker's explanation of the error.
    pub error_message: Option<&'a str>,
    /// The member id (the one the broker assigned at v0; an echo of the client's at v1).
    pub member_id: Option<&'a str>,
    /// The member's epoch.
    pub member_epoch: i32,
    /// How often to heartbeat.
    pub heartbeat_interval_ms: i32,
    /// The member's whole target assignment, when it changed (`None`: unchanged).
    pub assignment: Option<Vec<HeartbeatTopicPartitions>>,
}

impl<'a> ResponseBody<'a> for ConsumerGroupHeartbeatResponse<'a> {
    const API_KEY: i16 = 68;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 1;
    const FIRST_FLEXIBLE: i16 = 0;

    fn decode(r: &mut Reader<'a>, _version: i16) -> Result<Self, DecodeError> {
        let throttle_time_ms = r.i32("throttle_time_ms")?;
        let error_code = read_error(r)?;
        let error_message = r.compact_nullable_string("error_message")?;
        let member_id = r.compact_nullable_string("member_id")?;
        let member_epoch = r.i32("member_epoch")?;
        let heartbeat_interval_ms = r.i32("heartbeat_interval_ms")?;
        // A nullable struct: -1 for none, 1 for one that follows.
        let assignment = match r.i8("assignment")? {
            -1 => None,
            1 => {
                // topic id 16, partitions length 1, tagged fields 1.
                let n = r.array_len_v(true, 18, "topic_partitions")?;
                let mut topics = Vec::with_capacity(n);
                for _ in 0..n {
                    let topic_id = r.uuid("topic_id")?;
                    let pn = r.array_len_v(true, 4, "partitions")?;
                    let mut partitions = Vec::with_capacity(pn);
                    for _ in 0..pn {
                        partitions.push(r.i32("partition")?);
                    }
                    r.tagged_fields_v(true)?;
                    topics.push(HeartbeatTopicPartitions {
                        topic_id,
                        partitions,
                    });
                }
                r.tagged_fields_v(true)?;
                Some(topics)
            }
            _ => {
                return Err(DecodeError::Invalid {
                    what: "assignment",
                    reason: "the presence byte of a nullable struct must be -1 or 1",
                });
            }
        };
        r.tagged_fields_v(true)?;
        Ok(Self {
            throttle_time_ms,
            error_code,
            error_message,
            member_id,
            member_epoch,
            heartbeat_interval_ms,
            assignment,
        })
    }
}

// ---------------------------------------------------------------------------------
// ListGroups (API key 16)
// ---------------------------------------------------------------------------------

/// One group of a ListGroups response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup<'a> {
    /// The group id.
    pub group_id: &'a str,
    /// The protocol type ("consumer", or empty for simple groups).
    pub protocol_type: &'a str,
    /// The group state (v4+).
    pub group_state: Option<&'a str>,
    /// The group type (v5+: "classic", "consumer", ...).
    pub group_type: Option<&'a str>,
}

/// A ListGroups response (v0-5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListGroupsResponse<'a> {
    /// Throttle time (0 before v1).
    pub throttle_time_ms: i32,
    /// The error.
    pub error_code: ErrorCode,
    /// The groups.
    pub groups: Vec<ListedGroup<'a>>,
}

impl<'a> ResponseBody<'a> for ListGroupsResponse<'a> {
    const API_KEY: i16 = 16;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 5;
    const FIRST_FLEXIBLE: i16 = 3;

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        let flex = Self::flexible(version);
        let throttle_time_ms = if version >= 1 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let error_code = read_error(r)?;
        let min = if flex { 3 } else { 4 };
        let n = r.array_len_v(flex, min, "groups")?;
        let mut groups = Vec::with_capacity(n);
        for _ in 0..n {
            let group_id = r.string_v(flex, "group_id")?;
            let protocol_type = r.string_v(flex, "protocol_type")?;
            let group_state = if version >= 4 {
                Some(r.compact_string("group_state")?)
            } else {
                None
            };
            let group_type = if version >= 5 {
                Some(r.compact_string("group_type")?)
            } else {
                None
            };
            r.tagged_fields_v(flex)?;
            groups.push(ListedGroup {
                group_id,
                protocol_type,
                group_state,
                group_type,
            });
        }
        r.tagged_fields_v(flex)?;
        Ok(Self {
            throttle_time_ms,
            error_code,
            groups,
        })
    }
}

// ---------------------------------------------------------------------------------
// DeleteGroups (API key 42)
// ---------------------------------------------------------------------------------

/// One group's result in a DeleteGroups response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedGroup<'a> {
    /// The group id.
    pub group_id: &'a str,
    /// The error (NON_EMPTY_GROUP while it has members, GROUP_ID_NOT_FOUND, ...).
    pub error_code: ErrorCode,
}

/// A DeleteGroups response (v0-2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteGroupsResponse<'a> {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Per-group results.
    pub results: Vec<DeletedGroup<'a>>,
}

impl<'a> ResponseBody<'a> for DeleteGroupsResponse<'a> {
    const API_KEY: i16 = 42;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 2;
    const FIRST_FLEXIBLE: i16 = 2;

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        let flex = Self::flexible(version);
        let throttle_time_ms = r.i32("throttle_time_ms")?;
        // The smallest result: an empty group id and an error code (and tags).
        let n = r.array_len_v(flex, 4, "results")?;
        let mut results = Vec::with_capacity(n);
        for _ in 0..n {
            let group_id = r.string_v(flex, "group_id")?;
            let error_code = read_error(r)?;
            r.tagged_fields_v(flex)?;
            results.push(DeletedGroup {
                group_id,
                error_code,
            });
        }
        r.tagged_fields_v(flex)?;
        Ok(Self {
            throttle_time_ms,
            results,
        })
    }
}

// ---------------------------------------------------------------------------------
// OffsetDelete (API key 47)
// ---------------------------------------------------------------------------------

/// An OffsetDelete response (v0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetDeleteResponse<'a> {
    /// The group-level error (GROUP_SUBSCRIBED_TO_TOPIC appears per partition).
    pub error_code: ErrorCode,
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Per-topic, per-partition results (the same shape as OffsetCommit's).
    pub topics: Vec<OffsetCommitTopicResponse<'a>>,
}

impl<'a> ResponseBody<'a> for OffsetDeleteResponse<'a> {
    const API_KEY: i16 = 47;
    const MIN_VERSION: i16 = 0;
    const MAX_VERSION: i16 = 0;
    const FIRST_FLEXIBLE: i16 = i16::MAX;

    fn decode(r: &mut Reader<'a>, _version: i16) -> Result<Self, DecodeError> {
        let error_code = read_error(r)?;
        let throttle_time_ms = r.i32("throttle_time_ms")?;
        let n = r.array_len_v(false, 6, "topics")?;
        let mut topics = Vec::with_capacity(n);
        for _ in 0..n {
            let name = r.string_v(false, "topic name")?;
            let pn = r.array_len_v(false, 6, "partitions")?;
            let mut partitions = Vec::with_capacity(pn);
            for _ in 0..pn {
                let partition_index = r.i32("partition_index")?;
                let error_code = read_error(r)?;
                partitions.push(OffsetCommitPartitionResponse {
                    partition_index,
                    error_code,
                });
            }
            topics.push(OffsetCommitTopicResponse { name, partitions });
        }
        Ok(Self {
            error_code,
            throttle_time_ms,
            topics,
        })
    }
}

#[cfg(test)]
mod tests {
    //! Differential tests: kafka-protocol encodes a response at every version, weir
    //! decodes it and must agree with kafka-protocol's own decode (safe here: the
    //! bytes are well-formed); every truncation and many corruptions must return
    //! without panicking.
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages as kp;
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

    fn s(v: &'static str) -> StrBytes {
        StrBytes::from_static_str(v)
    }

    fn encode<T: Encodable>(msg: &T, version: i16) -> Vec<u8> {
        let mut buf = BytesMut::new();
        msg.encode(&mut buf, version).expect("test sample encodes");
        buf.to_vec()
    }

    fn kp_decode<T: Decodable>(bytes: &[u8], version: i16) -> T {
        let mut b = Bytes::copy_from_slice(bytes);
        T::decode(&mut b, version).expect("kafka-protocol decodes its own encoding")
    }

    /// Every prefix and a spread of single-byte corruptions decode to Ok or Err,
    /// never a panic.
    fn hostile(bytes: &[u8], check: impl Fn(&[u8])) {
        for cut in 0..bytes.len() {
            check(&bytes[..cut]);
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ bytes.len() as u64;
        for _ in 0..400 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if bytes.is_empty() {
                return;
            }
            let mut v = bytes.to_vec();
            let i = (state as usize) % v.len();
            v[i] = (state >> 32) as u8;
            check(&v);
        }
    }

    macro_rules! fuzz {
        ($t:ident, $bytes:expr, $v:expr) => {
            hostile(&$bytes, |b| {
                let _ = $t::decode_body(b, $v);
            })
        };
    }

    fn tagged<T>(flex: bool, msg: T, add: impl FnOnce(T) -> T) -> T {
        if flex { add(msg) } else { msg }
    }

    fn opt(s: &Option<StrBytes>) -> Option<&str> {
        s.as_ref().map(|x| &**x)
    }

    #[test]
    fn find_coordinator_all_versions() {
        for v in 0..=6i16 {
            let msg = if v < 4 {
                kp::FindCoordinatorResponse::default()
                    .with_throttle_time_ms(if v >= 1 { 7 } else { 0 })
                    .with_error_code(15)
                    .with_error_message(if v >= 1 { Some(s("busy")) } else { None })
                    .with_node_id(kp::BrokerId(3))
                    .with_host(s("broker-3"))
                    .with_port(9092)
            } else {
                kp::FindCoordinatorResponse::default()
                    .with_throttle_time_ms(7)
                    .with_error_message(None)
                    .with_coordinators(vec![
                        kp::find_coordinator_response::Coordinator::default()
                            .with_key(s("g1"))
                            .with_node_id(kp::BrokerId(1))
                            .with_host(s("h1"))
                            .with_port(1)
                            .with_error_message(None),
                        kp::find_coordinator_response::Coordinator::default()
                            .with_key(s("g2"))
                            .with_node_id(kp::BrokerId(-1))
                            .with_error_code(15)
                            .with_error_message(Some(s("loading")))
                            .with_unknown_tagged_field(50, Bytes::from_static(b"xyz")),
                    ])
            };
            let msg = tagged(v >= 3, msg, |m| {
                m.with_unknown_tagged_field(42, Bytes::from_static(b"ab"))
            });
            let bytes = encode(&msg, v);
            let theirs: kp::FindCoordinatorResponse = kp_decode(&bytes, v);
            let ours = FindCoordinatorResponse::decode_body(&bytes, v).expect("decodes");
            assert_eq!(ours.throttle_time_ms, theirs.throttle_time_ms, "v{v}");
            if v < 4 {
                assert_eq!(ours.coordinators.len(), 1);
                let c = &ours.coordinators[0];
                assert_eq!(c.key, "");
                assert_eq!(c.node_id, theirs.node_id.0);
                assert_eq!(c.host, &*theirs.host);
                assert_eq!(c.port, theirs.port);
                assert_eq!(c.error_code.0, theirs.error_code);
                if v >= 1 {
                    assert_eq!(c.error_message, opt(&theirs.error_message));
                }
            } else {
                assert_eq!(ours.coordinators.len(), theirs.coordinators.len());
                for (o, t) in ours.coordinators.iter().zip(&theirs.coordinators) {
                    assert_eq!(o.key, &*t.key);
                    assert_eq!(o.node_id, t.node_id.0);
                    assert_eq!(o.host, &*t.host);
                    assert_eq!(o.port, t.port);
                    assert_eq!(o.error_code.0, t.error_code);
                    assert_eq!(o.error_message, opt(&t.error_message));
                }
            }
            fuzz!(FindCoordinatorResponse, bytes, v);
        }
        assert!(matches!(
            FindCoordinatorResponse::decode_body(&[], 7),
            Err(DecodeError::UnsupportedVersion { .. })
        ));
    }

    #[test]
    fn join_group_all_versions() {
        for v in 0..=9i16 {
            let member = |id: &'static str, inst: Option<&'static str>, md: &'static [u8]| {
                kp::join_group_response::JoinGroupResponseMember::default()
                    .with_member_id(s(id))
                    .with_group_instance_id(if v >= 5 { inst.map(s) } else { None })
                    .with_metadata(Bytes::from_static(md))
            };
            let msg = kp::JoinGroupResponse::default()
                .with_throttle_time_ms(5)
                .with_error_code(0)
                .with_generation_id(12)
                .with_protocol_type(if v >= 7 { Some(s("consumer")) } else { None })
                .with_protocol_name(Some(s("range")))
                .with_leader(s("m-1"))
                .with_skip_assignment(v >= 9)
                .with_member_id(s("m-2"))
                .with_members(vec![
                    member("m-1", Some("inst-1"), b"\x00\x01meta"),
                    member("m-2", None, b""),
                ]);
            let msg = tagged(v >= 6, msg, |m| {
                m.with_unknown_tagged_field(9, Bytes::from_static(b"q"))
            });
            let bytes = encode(&msg, v);
            let t: kp::JoinGroupResponse = kp_decode(&bytes, v);
            let o = JoinGroupResponse::decode_body(&bytes, v).expect("decodes");
            assert_eq!(o.throttle_time_ms, t.throttle_time_ms, "v{v}");
            assert_eq!(o.error_code.0, t.error_code);
            assert_eq!(o.generation_id, t.generation_id);
            assert_eq!(o.protocol_type, opt(&t.protocol_type));
            assert_eq!(o.protocol_name, opt(&t.protocol_name));
            assert_eq!(o.leader, &*t.leader);
            assert_eq!(o.skip_assignment, t.skip_assignment);
            assert_eq!(o.member_id, &*t.member_id);
            assert_eq!(o.members.len(), t.members.len());
            for (om, tm) in o.members.iter().zip(&t.members) {
                assert_eq!(om.member_id, &*tm.member_id);
                assert_eq!(om.group_instance_id, opt(&tm.group_instance_id));
                assert_eq!(om.metadata, &tm.metadata[..]);
            }
            fuzz!(JoinGroupResponse, bytes, v);
        }
    }

    #[test]
    fn sync_heartbeat_leave_all_versions() {
        for v in 0..=5i16 {
            let msg = kp::SyncGroupResponse::default()
                .with_throttle_time_ms(1)
                .with_error_code(27)
                .with_protocol_type(if v >= 5 { Some(s("consumer")) } else { None })
                .with_protocol_name(if v >= 5 { Some(s("sticky")) } else { None })
                .with_assignment(Bytes::from_static(b"\x00\x00assign"));
            let msg = tagged(v >= 4, msg, |m| {
                m.with_unknown_tagged_field(3, Bytes::from_static(b"zz"))
            });
            let bytes = encode(&msg, v);
            let t: kp::SyncGroupResponse = kp_decode(&bytes, v);
            let o = SyncGroupResponse::decode_body(&bytes, v).expect("decodes");
            assert_eq!(o.throttle_time_ms, t.throttle_time_ms);
            assert_eq!(o.error_code.0, t.error_code);
            assert_eq!(o.protocol_type, opt(&t.protocol_type));
            assert_eq!(o.protocol_name, opt(&t.protocol_name));
            assert_eq!(o.assignment, &t.assignment[..]);
            fuzz!(SyncGroupResponse, bytes, v);
        }
        for v in 0..=4i16 {
            let msg = kp::HeartbeatResponse::default()
                .with_throttle_time_ms(9)
                .with_error_code(25);
            let bytes = encode(&msg, v);
            let t: kp::HeartbeatResponse = kp_decode(&bytes, v);
            let o = HeartbeatResponse::decode_body(&bytes, v).expect("decodes");
            assert_eq!(o.throttle_time_ms, t.throttle_time_ms);
            assert_eq!(o.error_code.0, t.error_code);
            fuzz!(HeartbeatResponse, bytes, v);
        }
        for v in 0..=5i16 {
            let members = if v >= 3 {
                vec![
                    kp::leave_group_response::MemberResponse::default()
                        .with_member_id(s("m-1"))
                        .with_group_instance_id(Some(s("i-1")))
                        .with_error_code(0),
                    kp::leave_group_response::MemberResponse::default()
                        .with_member_id(s("m-2"))
                        .with_group_instance_id(None)
                        .with_error_code(25),
                ]
            } else {
                vec![]
            };
            let msg = kp::LeaveGroupResponse::default()
                .with_throttle_time_ms(2)
                .with_error_code(0)
                .with_members(members);
            let bytes = encode(&msg, v);
            let t: kp::LeaveGroupResponse = kp_decode(&bytes, v);
            let o = LeaveGroupResponse::decode_body(&bytes, v).expect("decodes");
            assert_eq!(o.throttle_time_ms, t.throttle_time_ms);
            assert_eq!(o.error_code.0, t.error_code);
            assert_eq!(o.members.len(), t.members.len());
            for (om, tm) in o.members.iter().zip(&t.members) {
                assert_eq!(om.member_id, &*tm.member_id);
                assert_eq!(om.group_instance_id, opt(&tm.group_instance_id));
                assert_eq!(om.error_code.0, tm.error_code);
            }
            fuzz!(LeaveGroupResponse, bytes, v);
        }
    }

    #[test]
    fn offset_commit_all_versions() {
        for v in 2..=9i16 {
            let p = |i, e| {
                kp::offset_commit_response::OffsetCommitResponsePartition::default()
                    .with_partition_index(i)
                    .with_error_code(e)
            };
            let msg = kp::OffsetCommitResponse::default()
                .with_throttle_time_ms(4)
                .with_topics(vec![
                    kp::offset_commit_response::OffsetCommitResponseTopic::default()
                        .with_name(kp::TopicName(s("t1")))
                        .with_partitions(vec![p(0, 0), p(1, 27)]),
                    kp::offset_commit_response::OffsetCommitResponseTopic::default()
                        .with_name(kp::TopicName(s("t2")))
                        .with_partitions(vec![]),
                ]);
            let bytes = encode(&msg, v);
            let t: kp::OffsetCommitResponse = kp_decode(&bytes, v);
            let o = OffsetCommitResponse::decode_body(&bytes, v).expect("decodes");
            assert_eq!(o.throttle_time_ms, t.throttle_time_ms);
            assert_eq!(o.topics.len(), t.topics.len());
            for (ot, tt) in o.topics.iter().zip(&t.topics) {
                assert_eq!(ot.name, &*tt.name.0);
                let tp: Vec<_> = tt
                    .partitions
                    .iter()
                    .map(|p| (p.partition_index, p.error_code))
                    .collect();
                let op: Vec<_> = ot
                    .partitions
                    .iter()
                    .map(|p| (p.partition_index, p.error_code.0))
                    .collect();
                assert_eq!(op, tp);
            }
            fuzz!(OffsetCommitResponse, bytes, v);
            if v == 2 {
                // v0 and v1 share v2's layout (kafka-protocol no longer encodes them).
                for old in 0..=1 {
                    let o2 = OffsetCommitResponse::decode_body(&bytes, old).expect("decodes");
                    assert_eq!(o2, o);
                }
            }
        }
    }

    #[test]
    fn offset_fetch_all_versions() {
        for v in 1..=9i16 {
            let msg = if v <= 7 {
                let p = |i, off, md: Option<&'static str>, e| {
                    kp::offset_fetch_response::OffsetFetchResponsePartition::default()
                        .with_partition_index(i)
                        .with_committed_offset(off)
                        .with_committed_leader_epoch(if v >= 5 { 6 } else { -1 })
                        .with_metadata(md.map(s))
                        .with_error_code(e)
                };
                kp::OffsetFetchResponse::default()
                    .with_throttle_time_ms(3)
                    .with_error_code(if v >= 2 { 88 } else { 0 })
                    .with_topics(vec![
                        kp::offset_fetch_response::OffsetFetchResponseTopic::default()
                            .with_name(kp::TopicName(s("orders")))
                            .with_partitions(vec![p(0, 42, Some("meta"), 0), p(1, -1, None, 88)]),
                    ])
            } else {
                let p = |i, off, md: Option<&'static str>, e| {
                    kp::offset_fetch_response::OffsetFetchResponsePartitions::default()
                        .with_partition_index(i)
                        .with_committed_offset(off)
                        .with_committed_leader_epoch(2)
                        .with_metadata(md.map(s))
                        .with_error_code(e)
                };
                kp::OffsetFetchResponse::default()
                    .with_throttle_time_ms(3)
                    .with_groups(vec![
                        kp::offset_fetch_response::OffsetFetchResponseGroup::default()
                            .with_group_id(kp::GroupId(s("g")))
                            .with_error_code(0)
                            .with_topics(vec![
                                kp::offset_fetch_response::OffsetFetchResponseTopics::default()
                                    .with_name(kp::TopicName(s("orders")))
                                    .with_partitions(vec![p(0, 1, Some(""), 0), p(3, -1, None, 3)]),
                            ]),
                        kp::offset_fetch_response::OffsetFetchResponseGroup::default()
                            .with_group_id(kp::GroupId(s("h")))
                            .with_error_code(30),
                    ])
            };
            let bytes = encode(&msg, v);
            let t: kp::OffsetFetchResponse = kp_decode(&bytes, v);
            let o = OffsetFetchResponse::decode_body(&bytes, v).expect("decodes");
            assert_eq!(o.throttle_time_ms, t.throttle_time_ms);
            let flat =
                |g: &OffsetFetchGroup<'_>| -> Vec<(String, i32, i64, i32, Option<String>, i16)> {
                    g.topics
                        .iter()
                        .flat_map(|t| {
                            t.partitions.iter().map(move |p| {
                                (
                                    t.name.to_owned(),
                                    p.partition_index,
                                    p.committed_offset,
                                    p.committed_leader_epoch,
                                    p.metadata.map(str::to_owned),
                                    p.error_code.0,
                                )
                            })
                        })
                        .collect()
                };
            if v <= 7 {
                assert_eq!(o.groups.len(), 1);
                assert_eq!(o.groups[0].group_id, "");
                assert_eq!(o.groups[0].error_code.0, t.error_code);
                let want: Vec<_> = t
                    .topics
                    .iter()
                    .flat_map(|tt| {
                        tt.partitions.iter().map(move |p| {
                            (
                                tt.name.0.to_string(),
                                p.partition_index,
                                p.committed_offset,
                                if v >= 5 { p.committed_leader_epoch } else { -1 },
                                p.metadata.as_ref().map(|m| m.to_string()),
                                p.error_code,
                            )
                        })
                    })
                    .collect();
                assert_eq!(flat(&o.groups[0]), want, "v{v}");
            } else {
                assert_eq!(o.groups.len(), t.groups.len());
                for (og, tg) in o.groups.iter().zip(&t.groups) {
                    assert_eq!(og.group_id, &*tg.group_id.0);
                    assert_eq!(og.error_code.0, tg.error_code);
                    let want: Vec<_> = tg
                        .topics
                        .iter()
                        .flat_map(|tt| {
                            tt.partitions.iter().map(move |p| {
                                (
                                    tt.name.0.to_string(),
                                    p.partition_index,
                                    p.committed_offset,
                                    p.committed_leader_epoch,
                                    p.metadata.as_ref().map(|m| m.to_string()),
                                    p.error_code,
                                )
                            })
                        })
                        .collect();
                    assert_eq!(flat(og), want, "v{v}");
                }
            }
            fuzz!(OffsetFetchResponse, bytes, v);
            if v == 1 {
                let o0 = OffsetFetchResponse::decode_body(&bytes, 0).expect("v0 = v1 layout");
                assert_eq!(o0, o);
            }
        }
    }

    #[test]
    fn describe_and_list_groups_all_versions() {
        for v in 0..=6i16 {
            let member = kp::describe_groups_response::DescribedGroupMember::default()
                .with_member_id(s("m-1"))
                .with_group_instance_id(if v >= 4 { Some(s("i")) } else { None })
                .with_client_id(s("weir"))
                .with_client_host(s("/10.0.0.1"))
                .with_member_metadata(Bytes::from_static(b"md"))
                .with_member_assignment(Bytes::from_static(b"as"));
            let msg = kp::DescribeGroupsResponse::default()
                .with_throttle_time_ms(8)
                .with_groups(vec![
                    kp::describe_groups_response::DescribedGroup::default()
                        .with_error_code(0)
                        .with_error_message(if v >= 6 { Some(s("fine")) } else { None })
                        .with_group_id(kp::GroupId(s("g")))
                        .with_group_state(s("Stable"))
                        .with_protocol_type(s("consumer"))
                        .with_protocol_data(s("range"))
                        .with_members(vec![member.clone(), member])
                        .with_authorized_operations(if v >= 3 { 0x1f } else { i32::MIN }),
                ]);
            let bytes = encode(&msg, v);
            let t: kp::DescribeGroupsResponse = kp_decode(&bytes, v);
            let o = DescribeGroupsResponse::decode_body(&bytes, v).expect("decodes");
            assert_eq!(o.throttle_time_ms, t.throttle_time_ms);
            assert_eq!(o.groups.len(), t.groups.len());
            for (og, tg) in o.groups.iter().zip(&t.groups) {
                assert_eq!(og.error_code.0, tg.error_code);
                if v >= 6 {
                    assert_eq!(og.error_message, opt(&tg.error_message));
                }
                assert_eq!(og.group_id, &*tg.group_id.0);
                assert_eq!(og.group_state, &*tg.group_state);
                assert_eq!(og.protocol_type, &*tg.protocol_type);
                assert_eq!(og.protocol_data, &*tg.protocol_data);
                assert_eq!(og.authorized_operations, tg.authorized_operations);
                assert_eq!(og.members.len(), tg.members.len());
                for (om, tm) in og.members.iter().zip(&tg.members) {
                    assert_eq!(om.member_id, &*tm.member_id);
                    assert_eq!(om.group_instance_id, opt(&tm.group_instance_id));
                    assert_eq!(om.client_id, &*tm.client_id);
                    assert_eq!(om.client_host, &*tm.client_host);
                    assert_eq!(om.member_metadata, &tm.member_metadata[..]);
                    assert_eq!(om.member_assignment, &tm.member_assignment[..]);
                }
            }
            fuzz!(DescribeGroupsResponse, bytes, v);
        }
        for v in 0..=5i16 {
            let g = |id: &'static str| {
                kp::list_groups_response::ListedGroup::default()
                    .with_group_id(kp::GroupId(s(id)))
                    .with_protocol_type(s("consumer"))
                    .with_group_state(if v >= 4 { s("Empty") } else { s("") })
                    .with_group_type(if v >= 5 { s("classic") } else { s("") })
            };
            let msg = kp::ListGroupsResponse::default()
                .with_throttle_time_ms(1)
                .with_error_code(0)
                .with_groups(vec![g("a"), g("b")]);
            let bytes = encode(&msg, v);
            let t: kp::ListGroupsResponse = kp_decode(&bytes, v);
            let o = ListGroupsResponse::decode_body(&bytes, v).expect("decodes");
            assert_eq!(o.throttle_time_ms, t.throttle_time_ms);
            assert_eq!(o.error_code.0, t.error_code);
            assert_eq!(o.groups.len(), t.groups.len());
            for (og, tg) in o.groups.iter().zip(&t.groups) {
                assert_eq!(og.group_id, &*tg.group_id.0);
                assert_eq!(og.protocol_type, &*tg.protocol_type);
                if v >= 4 {
                    assert_eq!(og.group_state, Some(&*tg.group_state));
                } else {
                    assert_eq!(og.group_state, None);
                }
                if v >= 5 {
                    assert_eq!(og.group_type, Some(&*tg.group_type));
                }
            }
            fuzz!(ListGroupsResponse, bytes, v);
        }
    }

    #[test]
    fn consumer_group_heartbeat_all_versions() {
        use kafka_protocol::messages::consumer_group_heartbeat_response as cgh;
        for v in 0..=1i16 {
            let tp = |id: u8, ps: Vec<i32>| {
                cgh::TopicPartitions::default()
                    .with_topic_id(uuid::Uuid::from_bytes([id; 16]))
                    .with_partitions(ps)
            };
            for assignment in [
                None,
                Some(cgh::Assignment::default()),
                Some(
                    cgh::Assignment::default()
                        .with_topic_partitions(vec![tp(1, vec![0, 2]), tp(2, vec![])]),
                ),
            ] {
                let msg = kp::ConsumerGroupHeartbeatResponse::default()
                    .with_throttle_time_ms(4)
                    .with_error_code(110)
                    .with_error_message(Some(s("fenced")))
                    .with_member_id(Some(s("zNuhBLrwTBSo37gIT8MBHQ")))
                    .with_member_epoch(12)
                    .with_heartbeat_interval_ms(5000)
                    .with_assignment(assignment);
                let bytes = encode(&msg, v);
                let t: kp::ConsumerGroupHeartbeatResponse = kp_decode(&bytes, v);
                let o = ConsumerGroupHeartbeatResponse::decode_body(&bytes, v).expect("decodes");
                assert_eq!(o.throttle_time_ms, t.throttle_time_ms);
                assert_eq!(o.error_code.0, t.error_code);
                assert_eq!(o.error_message, opt(&t.error_message));
                assert_eq!(o.member_id, opt(&t.member_id));
                assert_eq!(o.member_epoch, t.member_epoch);
                assert_eq!(o.heartbeat_interval_ms, t.heartbeat_interval_ms);
                match (&o.assignment, &t.assignment) {
                    (None, None) => {}
                    (Some(oa), Some(ta)) => {
                        assert_eq!(oa.len(), ta.topic_partitions.len());
                        for (ot, tt) in oa.iter().zip(&ta.topic_partitions) {
                            assert_eq!(&ot.topic_id, tt.topic_id.as_bytes());
                            assert_eq!(ot.partitions, tt.partitions);
                        }
                    }
                    other => panic!("assignment differs: {other:?}"),
                }
                fuzz!(ConsumerGroupHeartbeatResponse, bytes, v);
            }
            // A presence byte other than -1 or 1 is refused.
            let mut bytes = encode(&kp::ConsumerGroupHeartbeatResponse::default(), v);
            let at = bytes.len() - 2;
            assert_eq!(bytes[at], 0xff);
            bytes[at] = 2;
            assert!(matches!(
                ConsumerGroupHeartbeatResponse::decode_body(&bytes, v),
                Err(DecodeError::Invalid { .. })
            ));
        }
    }

    #[test]
    fn consumer_group_describe_all_versions() {
        use kafka_protocol::messages::consumer_group_describe_response as cgd;
        for v in 0..=1i16 {
            let tp = |t: &'static str, id: u8, ps: Vec<i32>| {
                cgd::TopicPartitions::default()
                    .with_topic_id(uuid::Uuid::from_bytes([id; 16]))
                    .with_topic_name(kp::TopicName(s(t)))
                    .with_partitions(ps)
            };
            let member = cgd::Member::default()
                .with_member_id(s("zNuhBLrwTBSo37gIT8MBHQ"))
                .with_instance_id(Some(s("static-1")))
                .with_rack_id(None)
                .with_member_epoch(7)
                .with_client_id(s("java848"))
                .with_client_host(s("/127.0.0.1"))
                .with_subscribed_topic_names(vec![kp::TopicName(s("t1")), kp::TopicName(s("t2"))])
                .with_subscribed_topic_regex(None)
                .with_assignment(
                    cgd::Assignment::default()
                        .with_topic_partitions(vec![tp("t1", 1, vec![0, 2]), tp("t2", 2, vec![1])]),
                )
                .with_target_assignment(cgd::Assignment::default().with_topic_partitions(vec![tp(
                    "t1",
                    1,
                    vec![0],
                )]))
                .with_member_type(if v >= 1 { 1 } else { -1 });
            let msg = kp::ConsumerGroupDescribeResponse::default()
                .with_throttle_time_ms(3)
                .with_groups(vec![
                    cgd::DescribedGroup::default()
                        .with_error_code(0)
                        .with_error_message(Some(s("fine")))
                        .with_group_id(kp::GroupId(s("g")))
                        .with_group_state(s("Stable"))
                        .with_group_epoch(9)
                        .with_assignment_epoch(8)
                        .with_assignor_name(s("uniform"))
                        .with_members(vec![member.clone(), cgd::Member::default(), member])
                        .with_authorized_operations(0x1f),
                ]);
            let bytes = encode(&msg, v);
            let t: kp::ConsumerGroupDescribeResponse = kp_decode(&bytes, v);
            let o = ConsumerGroupDescribeResponse::decode_body(&bytes, v).expect("decodes");
            assert_eq!(o.throttle_time_ms, t.throttle_time_ms);
            assert_eq!(o.groups.len(), t.groups.len());
            let same_assignment = |o: &[ConsumerGroupTopicPartitions<'_>], t: &cgd::Assignment| {
                assert_eq!(o.len(), t.topic_partitions.len());
                for (ot, tt) in o.iter().zip(&t.topic_partitions) {
                    assert_eq!(&ot.topic_id, tt.topic_id.as_bytes());
                    assert_eq!(ot.topic_name, &*tt.topic_name.0);
                    assert_eq!(ot.partitions, tt.partitions);
                }
            };
            for (og, tg) in o.groups.iter().zip(&t.groups) {
                assert_eq!(og.error_code.0, tg.error_code);
                assert_eq!(og.error_message, opt(&tg.error_message));
                assert_eq!(og.group_id, &*tg.group_id.0);
                assert_eq!(og.group_state, &*tg.group_state);
                assert_eq!(og.group_epoch, tg.group_epoch);
                assert_eq!(og.assignment_epoch, tg.assignment_epoch);
                assert_eq!(og.assignor_name, &*tg.assignor_name);
                assert_eq!(og.authorized_operations, tg.authorized_operations);
                assert_eq!(og.members.len(), tg.members.len());
                for (om, tm) in og.members.iter().zip(&tg.members) {
                    assert_eq!(om.member_id, &*tm.member_id);
                    assert_eq!(om.instance_id, opt(&tm.instance_id));
                    assert_eq!(om.rack_id, opt(&tm.rack_id));
                    assert_eq!(om.member_epoch, tm.member_epoch);
                    assert_eq!(om.client_id, &*tm.client_id);
                    assert_eq!(om.client_host, &*tm.client_host);
                    let names: Vec<&str> =
                        tm.subscribed_topic_names.iter().map(|n| &*n.0).collect();
                    assert_eq!(om.subscribed_topic_names, names);
                    assert_eq!(om.subscribed_topic_regex, opt(&tm.subscribed_topic_regex));
                    same_assignment(&om.assignment, &tm.assignment);
                    same_assignment(&om.target_assignment, &tm.target_assignment);
                    if v >= 1 {
                        assert_eq!(om.member_type, tm.member_type);
                    }
                }
            }
            fuzz!(ConsumerGroupDescribeResponse, bytes, v);
            // Every element as small as the protocol allows still decodes.
            let minimal = kp::ConsumerGroupDescribeResponse::default().with_groups(vec![
                cgd::DescribedGroup::default().with_members(vec![cgd::Member::default()]),
            ]);
            let bytes = encode(&minimal, v);
            let o = ConsumerGroupDescribeResponse::decode_body(&bytes, v).expect("minimal");
            assert_eq!(o.groups[0].members.len(), 1, "v{v}");
        }
    }

    #[test]
    fn minimal_elements_fit_their_count_checks() {
        // Every element as small as the protocol allows (empty strings and bytes,
        // last in the frame): the count checks must not reject valid input.
        for v in 0..=6i16 {
            let msg = kp::DescribeGroupsResponse::default().with_groups(vec![
                kp::describe_groups_response::DescribedGroup::default()
                    .with_authorized_operations(if v >= 3 { 0 } else { i32::MIN })
                    .with_members(vec![
                        kp::describe_groups_response::DescribedGroupMember::default(),
                    ]),
            ]);
            let bytes = encode(&msg, v);
            let o = DescribeGroupsResponse::decode_body(&bytes, v).expect("minimal decodes");
            assert_eq!(o.groups[0].members.len(), 1, "v{v}");
        }
        for v in 0..=9i16 {
            let msg = kp::JoinGroupResponse::default()
                .with_protocol_name(Some(s("")))
                .with_members(vec![
                    kp::join_group_response::JoinGroupResponseMember::default(),
                ]);
            let bytes = encode(&msg, v);
            let o = JoinGroupResponse::decode_body(&bytes, v).expect("minimal decodes");
            assert_eq!(o.members.len(), 1, "v{v}");
        }
        for v in 3..=5i16 {
            let msg = kp::LeaveGroupResponse::default().with_members(vec![
                kp::leave_group_response::MemberResponse::default().with_group_instance_id(None),
            ]);
            let bytes = encode(&msg, v);
            let o = LeaveGroupResponse::decode_body(&bytes, v).expect("minimal decodes");
            assert_eq!(o.members.len(), 1, "v{v}");
        }
        for v in 2..=9i16 {
            let msg = kp::OffsetCommitResponse::default().with_topics(vec![
                kp::offset_commit_response::OffsetCommitResponseTopic::default().with_partitions(
                    vec![kp::offset_commit_response::OffsetCommitResponsePartition::default()],
                ),
            ]);
            let bytes = encode(&msg, v);
            let o = OffsetCommitResponse::decode_body(&bytes, v).expect("minimal decodes");
            assert_eq!(o.topics[0].partitions.len(), 1, "v{v}");
        }
        for v in 1..=7i16 {
            let msg = kp::OffsetFetchResponse::default().with_topics(vec![
                kp::offset_fetch_response::OffsetFetchResponseTopic::default().with_partitions(
                    vec![
                        kp::offset_fetch_response::OffsetFetchResponsePartition::default()
                            .with_metadata(None),
                    ],
                ),
            ]);
            let bytes = encode(&msg, v);
            let o = OffsetFetchResponse::decode_body(&bytes, v).expect("minimal decodes");
            assert_eq!(o.groups[0].topics[0].partitions.len(), 1, "v{v}");
        }
        for v in 0..=5i16 {
            let msg = kp::ListGroupsResponse::default()
                .with_groups(vec![kp::list_groups_response::ListedGroup::default()]);
            let bytes = encode(&msg, v);
            let o = ListGroupsResponse::decode_body(&bytes, v).expect("minimal decodes");
            assert_eq!(o.groups.len(), 1, "v{v}");
        }
        for v in 4..=6i16 {
            let msg = kp::FindCoordinatorResponse::default()
                .with_error_message(None)
                .with_coordinators(vec![
                    kp::find_coordinator_response::Coordinator::default().with_error_message(None),
                ]);
            let bytes = encode(&msg, v);
            let o = FindCoordinatorResponse::decode_body(&bytes, v).expect("minimal decodes");
            assert_eq!(o.coordinators.len(), 1, "v{v}");
        }
    }

    #[test]
    fn delete_groups_all_versions() {
        for v in 0..=2i16 {
            let msg = kp::DeleteGroupsResponse::default()
                .with_throttle_time_ms(3)
                .with_results(vec![
                    kp::delete_groups_response::DeletableGroupResult::default()
                        .with_group_id(kp::GroupId(s("g1")))
                        .with_error_code(0),
                    kp::delete_groups_response::DeletableGroupResult::default()
                        .with_group_id(kp::GroupId(s("g2")))
                        .with_error_code(68),
                ]);
            let bytes = encode(&msg, v);
            let d = DeleteGroupsResponse::decode_body(&bytes, v).expect("decodes");
            assert_eq!(d.throttle_time_ms, 3);
            assert_eq!(d.results.len(), 2);
            assert_eq!(d.results[1].group_id, "g2");
            assert_eq!(d.results[1].error_code, ErrorCode::NON_EMPTY_GROUP);
            crate::messages::test_util::check_truncations(&bytes, |b| {
                DeleteGroupsResponse::decode_body(b, v).map(|_| ())
            });
        }
    }

    #[test]
    fn offset_delete_v0() {
        let p = |i, e| {
            kp::offset_delete_response::OffsetDeleteResponsePartition::default()
                .with_partition_index(i)
                .with_error_code(e)
        };
        let msg = kp::OffsetDeleteResponse::default()
            .with_error_code(0)
            .with_throttle_time_ms(1)
            .with_topics(vec![
                kp::offset_delete_response::OffsetDeleteResponseTopic::default()
                    .with_name(kp::TopicName(s("t")))
                    .with_partitions(vec![p(0, 0), p(1, 86)]),
            ]);
        let bytes = encode(&msg, 0);
        let d = OffsetDeleteResponse::decode_body(&bytes, 0).expect("decodes");
        assert_eq!(d.topics[0].name, "t");
        assert_eq!(d.topics[0].partitions[1].partition_index, 1);
        assert_eq!(
            d.topics[0].partitions[1].error_code,
            ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC
        );
        crate::messages::test_util::check_truncations(&bytes, |b| {
            OffsetDeleteResponse::decode_body(b, 0).map(|_| ())
        });
    }

    #[test]
    fn hostile_member_count_is_rejected() {
        // JoinGroup v0 claiming 2^31-1 members in a 30-byte frame.
        let mut b = vec![0, 0, 0, 0, 0, 1, 0, 1, b'r', 0, 1, b'l', 0, 1, b'm'];
        b.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
        assert!(matches!(
            JoinGroupResponse::decode_body(&b, 0),
            Err(DecodeError::LengthTooLarge { .. })
        ));
    }
}
