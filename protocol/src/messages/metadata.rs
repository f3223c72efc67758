//! Metadata (key 3): brokers, topics, partition leaders; decoder and request builder.
//!
//! [`MetadataResponse`] decodes v1-13 (v0 predates rack ids and the controller id
//! and is not needed: every broker since 0.10 speaks v1). Flexible from v9; topic ids
//! from v10; topic names may be null from v12 (a topic asked for by id only);
//! cluster-level authorized operations only in v8-10; a top-level error code in v13.

use kafka_protocol::messages::MetadataRequest;
use kafka_protocol::messages::TopicName;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::protocol::StrBytes;

use crate::messages::ResponseBody;
use crate::{DecodeError, ErrorCode, Reader};

/// The value Kafka sends for "authorized operations not requested".
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// A decoded Metadata response (v1-13). Borrows from the frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataResponse<'a> {
    /// Throttle time in milliseconds (v3+; 0 before).
    pub throttle_time_ms: i32,
    /// The brokers in the cluster.
    pub brokers: Vec<MetadataBroker<'a>>,
    /// The cluster id (v2+; `None` before, or when the broker has none).
    pub cluster_id: Option<&'a str>,
    /// The controller's broker id (-1 if unknown).
    pub controller_id: i32,
    /// The topics asked for (or all topics).
    pub topics: Vec<MetadataTopic<'a>>,
    /// Cluster authorized operations (v8-10; [`AUTHORIZED_OPERATIONS_OMITTED`] otherwise).
    pub cluster_authorized_operations: i32,
    /// Top-level error (v13+; e.g. REBOOTSTRAP_REQUIRED).
    pub error_code: ErrorCode,
}

/// One broker of a Metadata response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetadataBroker<'a> {
    /// The broker id.
    pub node_id: i32,
    /// Its host name.
    pub host: &'a str,
    /// Its port.
    pub port: i32,
    /// Its rack (`None` if unset).
    pub rack: Option<&'a str>,
}

/// One topic of a Metadata response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataTopic<'a> {
    /// The topic error (UNKNOWN_TOPIC_OR_PARTITION, TOPIC_AUTHORIZATION_FAILED, ...).
    pub error_code: ErrorCode,
    /// The topic name (`None` only from v12, for a topic asked for by id).
    pub name: Option<&'a str>,
    /// The topic id (v10+; all zeros before or when unknown).
    pub topic_id: [u8; 16],
    /// Whether the topic is internal (`__consumer_offsets`, ...).
    pub is_internal: bool,
    /// The partitions.
    pub partitions: Vec<MetadataPartition>,
    /// Topic authorized operations (v8+; [`AUTHORIZED_OPERATIONS_OMITTED`] otherwise).
    pub topic_authorized_operations: i32,
}

/// One partition of a Metadata response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataPartition {
    /// The partition error (LEADER_NOT_AVAILABLE, ...).
    pub error_code: ErrorCode,
    /// The partition index.
    pub partition_index: i32,
    /// The leader's broker id (-1 if none).
    pub leader_id: i32,
    /// The leader epoch (v7+; -1 before).
    pub leader_epoch: i32,
    /// All replicas.
    pub replica_nodes: Vec<i32>,
    /// The in-sync replicas.
    pub isr_nodes: Vec<i32>,
    /// Offline replicas (v5+; empty before).
    pub offline_replicas: Vec<i32>,
}

fn broker_ids(
    r: &mut Reader<'_>,
    flexible: bool,
    what: &'static str,
) -> Result<Vec<i32>, DecodeError> {
    let n = r.array_len_v(flexible, 4, what)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(r.i32(what)?);
    }
    Ok(out)
}

impl<'a> MetadataResponse<'a> {
    /// The broker with id `node_id`, if listed.
    pub fn broker(&self, node_id: i32) -> Option<&MetadataBroker<'a>> {
        self.brokers.iter().find(|b| b.node_id == node_id)
    }

    fn decode_broker(
        r: &mut Reader<'a>,
        flexible: bool,
    ) -> Result<MetadataBroker<'a>, DecodeError> {
        let node_id = r.i32("broker node id")?;
        let host = r.string_v(flexible, "broker host")?;
        let port = r.i32("broker port")?;
        let rack = r.nullable_string_v(flexible, "broker rack")?;
        r.tagged_fields_v(flexible)?;
        Ok(MetadataBroker {
            node_id,
            host,
            port,
            rack,
        })
    }

    fn decode_topic(
        r: &mut Reader<'a>,
        version: i16,
        flexible: bool,
    ) -> Result<MetadataTopic<'a>, DecodeError> {
        let error_code = ErrorCode(r.i16("topic error code")?);
        // Non-nullable before v12 by the spec; a null there is tolerated, not trusted.
        let name = r.nullable_string_v(flexible, "topic name")?;
        let topic_id = if version >= 10 {
            r.uuid("topic id")?
        } else {
            [0; 16]
        };
        let is_internal = r.bool("is internal")?;
        let n = r.array_len_v(flexible, partition_min_size(version), "partitions")?;
        let mut partitions = Vec::with_capacity(n);
        for _ in 0..n {
            let error_code = ErrorCode(r.i16("partition error code")?);
            let partition_index = r.i32("partition index")?;
            let leader_id = r.i32("leader id")?;
            let leader_epoch = if version >= 7 {
                r.i32("leader epoch")?
            } else {
                -1
            };
            let replica_nodes = broker_ids(r, flexible, "replica nodes")?;
            let isr_nodes = broker_ids(r, flexible, "isr nodes")?;
            let offline_replicas = if version >= 5 {
                broker_ids(r, flexible, "offline replicas")?
            } else {
                Vec::new()
            };
            r.tagged_fields_v(flexible)?;
            partitions.push(MetadataPartition {
                error_code,
                partition_index,
                leader_id,
                leader_epoch,
                replica_nodes,
                isr_nodes,
                offline_replicas,
            });
        }
        let topic_authorized_operations = if version >= 8 {
            r.i32("topic authorized operations")?
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        };
        r.tagged_fields_v(flexible)?;
        Ok(MetadataTopic {
            error_code,
            name,
            topic_id,
            is_internal,
            partitions,
            topic_authorized_operations,
        })
    }
}

/// The fewest bytes one partition entry can take at `version`.
fn partition_min_size(version: i16) -> usize {
    let flexible = version >= 9;
    let len = if flexible { 1 } else { 4 };
    let mut n = 2 + 4 + 4 + 2 * len; // error, index, leader, replicas, isr
    if version >= 7 {
        n += 4;
    }
    if version >= 5 {
        n += len;
    }
    n + usize::from(flexible)
}

/// The fewest bytes one topic entry can take at `version`.
fn topic_min_size(version: i16) -> usize {
    let flexible = version >= 9;
    let len = if flexible { 1 } else { 2 };
    let mut n = 2 + len + 1 + if flexible { 1 } else { 4 }; // error, name, internal, parts
    if version >= 10 {
        n += 16;
    }
    if version >= 8 {
        n += 4;
    }
    n + usize::from(flexible)
}

impl<'a> ResponseBody<'a> for MetadataResponse<'a> {
    const API_KEY: i16 = 3;
    const MIN_VERSION: i16 = 1;
    const MAX_VERSION: i16 = 13;
    const FIRST_FLEXIBLE: i16 = 9;

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        Self::check_version(version)?;
        let flexible = Self::flexible(version);
        let throttle_time_ms = if version >= 3 {
            r.i32("throttle time")?
        } else {
            0
        };
        // node id, host, port, rack (+ tagged fields).
        let broker_min = if flexible {
            4 + 1 + 4 + 1 + 1
        } else {
            4 + 2 + 4 + 2
        };
        let n = r.array_len_v(flexible, broker_min, "brokers")?;
        let mut brokers = Vec::with_capacity(n);
        for _ in 0..n {
            brokers.push(Self::decode_broker(r, flexible)?);
        }
        let cluster_id = if version >= 2 {
            r.nullable_string_v(flexible, "cluster id")?
        } else {
            None
        };
        let controller_id = r.i32("controller id")?;
        let n = r.array_len_v(flexible, topic_min_size(version), "topics")?;
        let mut topics = Vec::with_capacity(n);
        for _ in 0..n {
            topics.push(Self::decode_topic(r, version, flexible)?);
        }
        let cluster_authorized_operations = if (8..=10).contains(&version) {
            r.i32("cluster authorized operations")?
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        };
        let error_code = if version >= 13 {
            ErrorCode(r.i16("error code")?)
        } else {
            ErrorCode::NONE
        };
        r.tagged_fields_v(flexible)?;
        Ok(Self {
            throttle_time_ms,
            brokers,
            cluster_id,
            controller_id,
            topics,
            cluster_authorized_operations,
            error_code,
        })
    }
}

/// Build a kafka-protocol `MetadataRequest` to be encoded at `version`.
///
/// `topics`: `None` asks for every topic (what a regex subscription needs), `Some`
/// for just those names (`Some(&[])` asks for brokers only).
/// `allow_auto_topic_creation` is Kafka's `allow.auto.create.topics`; below v4 the
/// protocol cannot say "no", so it is sent as `true` there.
pub fn build_metadata_request(
    version: i16,
    topics: Option<&[&str]>,
    allow_auto_topic_creation: bool,
) -> MetadataRequest {
    let topics = topics.map(|names| {
        names
            .iter()
            .map(|n| {
                MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string((*n).to_owned()))))
            })
            .collect()
    });
    MetadataRequest::default()
        .with_topics(topics)
        .with_allow_auto_topic_creation(allow_auto_topic_creation || version < 4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::test_util::{check_truncations, encode_kp};
    use kafka_protocol::messages::metadata_response as kpr;
    use kafka_protocol::messages::{BrokerId, MetadataResponse as Kp, RequestHeader};
    use kafka_protocol::protocol::{Decodable, HeaderVersion};

    fn s(x: &'static str) -> StrBytes {
        StrBytes::from_static_str(x)
    }

    fn sample(version: i16) -> Kp {
        let part = |i: i32, leader: i32| {
            kpr::MetadataResponsePartition::default()
                .with_error_code(if i == 1 { 5 } else { 0 })
                .with_partition_index(i)
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(10 + i)
                .with_replica_nodes(vec![BrokerId(1), BrokerId(2), BrokerId(3)])
                .with_isr_nodes(vec![BrokerId(1), BrokerId(2)])
                .with_offline_replicas(vec![BrokerId(3)])
        };
        let mut kp = Kp::default()
            .with_throttle_time_ms(33)
            .with_brokers(vec![
                kpr::MetadataResponseBroker::default()
                    .with_node_id(BrokerId(1))
                    .with_host(s("broker-1.example"))
                    .with_port(9092)
                    .with_rack(Some(s("az-1"))),
                kpr::MetadataResponseBroker::default()
                    .with_node_id(BrokerId(2))
                    .with_host(s("b2"))
                    .with_port(9093)
                    .with_rack(None),
            ])
            .with_cluster_id(Some(s("cluster-xyz")))
            .with_controller_id(BrokerId(2))
            .with_topics(vec![
                kpr::MetadataResponseTopic::default()
                    .with_error_code(0)
                    .with_name(Some(TopicName(s("orders"))))
                    .with_topic_id(uuid::Uuid::from_bytes([7; 16]))
                    .with_is_internal(false)
                    .with_partitions(vec![part(0, 1), part(1, -1), part(2, 3)])
                    .with_topic_authorized_operations(0x0ff8),
                kpr::MetadataResponseTopic::default()
                    .with_error_code(3)
                    .with_name(Some(TopicName(s("__consumer_offsets"))))
                    .with_is_internal(true)
                    .with_partitions(vec![]),
                kpr::MetadataResponseTopic::default()
                    .with_error_code(100)
                    .with_name(None)
                    .with_topic_id(uuid::Uuid::from_bytes([9; 16])),
            ])
            .with_cluster_authorized_operations(0x55)
            .with_error_code(0);
        if version < 12 {
            kp.topics.pop(); // null names are v12+
        }
        if version < 8 {
            for t in &mut kp.topics {
                t.topic_authorized_operations = i32::MIN;
            }
        }
        if !(8..=10).contains(&version) {
            kp.cluster_authorized_operations = i32::MIN;
        }
        kp
    }

    fn check(kp: &Kp, ours: &MetadataResponse<'_>, version: i16) {
        let throttle = if version >= 3 { kp.throttle_time_ms } else { 0 };
        assert_eq!(ours.throttle_time_ms, throttle);
        assert_eq!(ours.brokers.len(), kp.brokers.len());
        for (b, kb) in ours.brokers.iter().zip(&kp.brokers) {
            assert_eq!(b.node_id, kb.node_id.0);
            assert_eq!(b.host, kb.host.as_str());
            assert_eq!(b.port, kb.port);
            assert_eq!(b.rack, kb.rack.as_deref());
        }
        let cid = if version >= 2 {
            kp.cluster_id.as_deref()
        } else {
            None
        };
        assert_eq!(ours.cluster_id, cid);
        assert_eq!(ours.controller_id, kp.controller_id.0);
        assert_eq!(ours.topics.len(), kp.topics.len());
        for (t, kt) in ours.topics.iter().zip(&kp.topics) {
            assert_eq!(t.error_code.0, kt.error_code);
            assert_eq!(t.name, kt.name.as_ref().map(|n| n.0.as_str()));
            let id = if version >= 10 {
                *kt.topic_id.as_bytes()
            } else {
                [0; 16]
            };
            assert_eq!(t.topic_id, id);
            assert_eq!(t.is_internal, kt.is_internal);
            assert_eq!(
                t.topic_authorized_operations,
                kt.topic_authorized_operations
            );
            assert_eq!(t.partitions.len(), kt.partitions.len());
            for (p, kp) in t.partitions.iter().zip(&kt.partitions) {
                assert_eq!(p.error_code.0, kp.error_code);
                assert_eq!(p.partition_index, kp.partition_index);
                assert_eq!(p.leader_id, kp.leader_id.0);
                let epoch = if version >= 7 { kp.leader_epoch } else { -1 };
                assert_eq!(p.leader_epoch, epoch);
                let ids = |v: &Vec<BrokerId>| v.iter().map(|b| b.0).collect::<Vec<_>>();
                assert_eq!(p.replica_nodes, ids(&kp.replica_nodes));
                assert_eq!(p.isr_nodes, ids(&kp.isr_nodes));
                let off = if version >= 5 {
                    ids(&kp.offline_replicas)
                } else {
                    vec![]
                };
                assert_eq!(p.offline_replicas, off);
            }
        }
        assert_eq!(
            ours.cluster_authorized_operations,
            kp.cluster_authorized_operations
        );
        assert_eq!(
            ours.error_code.0,
            if version >= 13 { kp.error_code } else { 0 }
        );
    }

    #[test]
    fn differential_every_version() {
        for version in 1..=13 {
            let kp = sample(version);
            let bytes = encode_kp(&kp, version);
            let mut r = Reader::new(&bytes);
            let ours = MetadataResponse::decode(&mut r, version).unwrap();
            assert!(r.is_empty(), "v{version}: {} bytes left", r.remaining());
            check(&kp, &ours, version);
            assert_eq!(ours.broker(2).map(|b| b.host), Some("b2"));
            check_truncations(&bytes, |b| {
                MetadataResponse::decode_body(b, version).map(|_| ())
            });
        }
        // v13's top-level error code.
        let kp = sample(13).with_error_code(129);
        let bytes = encode_kp(&kp, 13);
        let ours = MetadataResponse::decode_body(&bytes, 13).unwrap();
        assert_eq!(ours.error_code, ErrorCode(129));
    }

    #[test]
    fn hostile_counts() {
        // v1: i32::MAX brokers.
        let mut body = i32::MAX.to_be_bytes().to_vec();
        body.resize(64, 0);
        assert!(matches!(
            MetadataResponse::decode_body(&body, 1),
            Err(DecodeError::LengthTooLarge {
                what: "brokers",
                ..
            })
        ));
        // v9: no brokers, null cluster id, controller, then a huge compact topic count.
        let mut body = vec![0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
        body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        body.resize(64, 0);
        assert!(matches!(
            MetadataResponse::decode_body(&body, 9),
            Err(DecodeError::LengthTooLarge { what: "topics", .. })
        ));
        // A replica list claiming i32::MAX entries.
        let kp = Kp::default().with_topics(vec![
            kpr::MetadataResponseTopic::default()
                .with_name(Some(TopicName(s("t"))))
                .with_partitions(vec![kpr::MetadataResponsePartition::default()]),
        ]);
        let mut bytes = encode_kp(&kp, 1);
        // brokers(4) controller(4) topics(4) error(2) name(3) internal(1) parts(4)
        // then error(2) index(4) leader(4): the replica count.
        let at = 4 + 4 + 4 + 2 + 3 + 1 + 4 + 2 + 4 + 4;
        bytes[at..at + 4].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            MetadataResponse::decode_body(&bytes, 1),
            Err(DecodeError::LengthTooLarge {
                what: "replica nodes",
                ..
            })
        ));
        assert!(MetadataResponse::decode_body(&[], 0).is_err());
        assert!(MetadataResponse::decode_body(&[], 14).is_err());
    }

    #[test]
    fn request_builder_every_version() {
        for version in 1..=13 {
            for topics in [None, Some(&["a", "b"][..]), Some(&[][..])] {
                let req = build_metadata_request(version, topics, false);
                let mut out = bytes::BytesMut::new();
                crate::frame::encode_request(&mut out, 3, Some("weir"), version, &req)
                    .unwrap_or_else(|e| panic!("v{version}: {e}"));
                let mut buf = bytes::Bytes::copy_from_slice(&out[4..]);
                RequestHeader::decode(&mut buf, MetadataRequest::header_version(version)).unwrap();
                let back = MetadataRequest::decode(&mut buf, version).unwrap();
                let names = back.topics.map(|ts| {
                    ts.into_iter()
                        .filter_map(|t| t.name)
                        .map(|n| n.0.to_string())
                        .collect::<Vec<_>>()
                });
                let want = topics.map(|ts| ts.iter().map(|t| t.to_string()).collect::<Vec<_>>());
                assert_eq!(names, want, "v{version}");
                assert_eq!(back.allow_auto_topic_creation, version < 4);
            }
        }
    }
}
