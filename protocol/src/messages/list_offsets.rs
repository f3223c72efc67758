//! ListOffsets (key 2): offsets by timestamp (earliest, latest, or a time); decoder
//! and request builder.
//!
//! [`ListOffsetsResponse`] decodes v1-10 (the response body is the same from v6 to
//! v10; the later versions change only the request). Flexible from v6; leader epochs
//! from v4; throttle time from v2.
//!
//! Note (seen against tansu): a broker may answer LATEST with the base offset of the
//! last batch rather than the log end; the Fetch high watermark is the reliable
//! "end of partition".

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::messages::ResponseBody;
use crate::{DecodeError, ErrorCode, Reader};

/// The timestamp that asks for the log end offset (`auto.offset.reset=latest`).
pub const LATEST_TIMESTAMP: i64 = -1;
/// The timestamp that asks for the log start offset (`auto.offset.reset=earliest`).
pub const EARLIEST_TIMESTAMP: i64 = -2;

/// A decoded ListOffsets response (v1-10). Borrows topic names from the frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListOffsetsResponse<'a> {
    /// Throttle time in milliseconds (v2+; 0 before).
    pub throttle_time_ms: i32,
    /// Per-topic results.
    pub topics: Vec<ListOffsetsTopicResponse<'a>>,
}

/// One topic of a ListOffsets response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListOffsetsTopicResponse<'a> {
    /// The topic name.
    pub name: &'a str,
    /// Per-partition results.
    pub partitions: Vec<ListOffsetsPartitionResponse>,
}

/// One partition of a ListOffsets response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ListOffsetsPartitionResponse {
    /// The partition index.
    pub partition_index: i32,
    /// The partition error.
    pub error_code: ErrorCode,
    /// The timestamp of the offset found (-1 for earliest/latest).
    pub timestamp: i64,
    /// The offset found (-1 if none).
    pub offset: i64,
    /// The leader epoch of that offset (v4+; -1 before or if unknown).
    pub leader_epoch: i32,
}

impl<'a> ResponseBody<'a> for ListOffsetsResponse<'a> {
    const API_KEY: i16 = 2;
    const MIN_VERSION: i16 = 1;
    const MAX_VERSION: i16 = 10;
    const FIRST_FLEXIBLE: i16 = 6;

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        Self::check_version(version)?;
        let flexible = Self::flexible(version);
        let throttle_time_ms = if version >= 2 {
            r.i32("throttle time")?
        } else {
            0
        };
        // name, partitions count (+ tagged fields).
        let topic_min = if flexible { 1 + 1 + 1 } else { 2 + 4 };
        // index, error, timestamp, offset, epoch (+ tagged fields).
        let partition_min =
            4 + 2 + 8 + 8 + if version >= 4 { 4 } else { 0 } + usize::from(flexible);
        let n = r.array_len_v(flexible, topic_min, "topics")?;
        let mut topics = Vec::with_capacity(n);
        for _ in 0..n {
            let name = r.string_v(flexible, "topic name")?;
            let n = r.array_len_v(flexible, partition_min, "partitions")?;
            let mut partitions = Vec::with_capacity(n);
            for _ in 0..n {
                let partition_index = r.i32("partition index")?;
                let error_code = ErrorCode(r.i16("partition error code")?);
                let timestamp = r.i64("timestamp")?;
                let offset = r.i64("offset")?;
                let leader_epoch = if version >= 4 {
                    r.i32("leader epoch")?
                } else {
                    -1
                };
                r.tagged_fields_v(flexible)?;
                partitions.push(ListOffsetsPartitionResponse {
                    partition_index,
                    error_code,
                    timestamp,
                    offset,
                    leader_epoch,
                });
            }
            r.tagged_fields_v(flexible)?;
            topics.push(ListOffsetsTopicResponse { name, partitions });
        }
        r.tagged_fields_v(flexible)?;
        Ok(Self {
            throttle_time_ms,
            topics,
        })
    }
}

/// One partition to look up, for [`build_list_offsets_request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListOffsetsSpec<'t> {
    /// The topic name.
    pub topic: &'t str,
    /// The partition index.
    pub partition: i32,
    /// [`LATEST_TIMESTAMP`], [`EARLIEST_TIMESTAMP`], or a time in ms since the epoch.
    pub timestamp: i64,
    /// The leader epoch the client knows (-1 if unknown; v4+ fences stale leaders).
    pub current_leader_epoch: i32,
}

/// Build a kafka-protocol `ListOffsetsRequest` to be encoded at `version`, as a
/// consumer (replica id -1). `isolation_level` (0 read_uncommitted, 1 read_committed)
/// is sent from v2; `timeout_ms` from v10. Partitions of one topic are grouped under
/// it in order of first appearance.
pub fn build_list_offsets_request(
    version: i16,
    isolation_level: i8,
    timeout_ms: i32,
    partitions: &[ListOffsetsSpec<'_>],
) -> ListOffsetsRequest {
    let mut topics: Vec<ListOffsetsTopic> = Vec::new();
    for p in partitions {
        let lp = ListOffsetsPartition::default()
            .with_partition_index(p.partition)
            .with_current_leader_epoch(p.current_leader_epoch)
            .with_timestamp(p.timestamp);
        match topics.iter_mut().find(|t| t.name.0.as_str() == p.topic) {
            Some(t) => t.partitions.push(lp),
            None => topics.push(
                ListOffsetsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(p.topic.to_owned())))
                    .with_partitions(vec![lp]),
            ),
        }
    }
    ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(if version >= 2 { isolation_level } else { 0 })
        .with_timeout_ms(timeout_ms)
        .with_topics(topics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::test_util::{check_truncations, encode_kp};
    use kafka_protocol::messages::list_offsets_response as kpr;
    use kafka_protocol::messages::{ListOffsetsResponse as Kp, RequestHeader};
    use kafka_protocol::protocol::{Decodable, HeaderVersion};

    fn sample(version: i16) -> Kp {
        let part = |i: i32| {
            kpr::ListOffsetsPartitionResponse::default()
                .with_partition_index(i)
                .with_error_code(if i == 2 { 6 } else { 0 })
                .with_timestamp(1_700_000_000_000 + i64::from(i))
                .with_offset(1000 * i64::from(i))
                .with_leader_epoch(if version >= 4 { 5 + i } else { -1 })
        };
        Kp::default().with_throttle_time_ms(8).with_topics(vec![
            kpr::ListOffsetsTopicResponse::default()
                .with_name(TopicName(StrBytes::from_static_str("orders")))
                .with_partitions(vec![part(0), part(1), part(2)]),
            kpr::ListOffsetsTopicResponse::default()
                .with_name(TopicName(StrBytes::from_static_str("empty")))
                .with_partitions(vec![]),
        ])
    }

    #[test]
    fn differential_every_version() {
        for version in 1..=10 {
            let kp = sample(version);
            let bytes = encode_kp(&kp, version);
            let mut r = Reader::new(&bytes);
            let ours = ListOffsetsResponse::decode(&mut r, version).unwrap();
            assert!(r.is_empty(), "v{version}: {} bytes left", r.remaining());
            let throttle = if version >= 2 { kp.throttle_time_ms } else { 0 };
            assert_eq!(ours.throttle_time_ms, throttle);
            assert_eq!(ours.topics.len(), kp.topics.len());
            for (t, kt) in ours.topics.iter().zip(&kp.topics) {
                assert_eq!(t.name, kt.name.0.as_str());
                assert_eq!(t.partitions.len(), kt.partitions.len());
                for (p, kp) in t.partitions.iter().zip(&kt.partitions) {
                    assert_eq!(p.partition_index, kp.partition_index);
                    assert_eq!(p.error_code.0, kp.error_code);
                    assert_eq!(p.timestamp, kp.timestamp);
                    assert_eq!(p.offset, kp.offset);
                    assert_eq!(p.leader_epoch, kp.leader_epoch);
                }
            }
            check_truncations(&bytes, |b| {
                ListOffsetsResponse::decode_body(b, version).map(|_| ())
            });
        }
    }

    #[test]
    fn hostile_counts() {
        let mut body = vec![0, 0, 0, 0];
        body.extend_from_slice(&i32::MAX.to_be_bytes());
        body.resize(40, 0);
        assert!(matches!(
            ListOffsetsResponse::decode_body(&body, 2),
            Err(DecodeError::LengthTooLarge { what: "topics", .. })
        ));
        let mut body = vec![0, 0, 0, 0, 2, 2, b't'];
        body.extend_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0x0f]);
        body.resize(40, 0);
        assert!(matches!(
            ListOffsetsResponse::decode_body(&body, 6),
            Err(DecodeError::LengthTooLarge {
                what: "partitions",
                ..
            })
        ));
        assert!(ListOffsetsResponse::decode_body(&[0; 8], 0).is_err());
        assert!(ListOffsetsResponse::decode_body(&[0; 8], 11).is_err());
    }

    #[test]
    fn request_builder_every_version() {
        let specs = [
            ListOffsetsSpec {
                topic: "a",
                partition: 0,
                timestamp: EARLIEST_TIMESTAMP,
                current_leader_epoch: 4,
            },
            ListOffsetsSpec {
                topic: "b",
                partition: 3,
                timestamp: LATEST_TIMESTAMP,
                current_leader_epoch: -1,
            },
            ListOffsetsSpec {
                topic: "a",
                partition: 1,
                timestamp: 1_700_000_000_000,
                current_leader_epoch: -1,
            },
        ];
        for version in 1..=10 {
            let req = build_list_offsets_request(version, 1, 30_000, &specs);
            let mut out = bytes::BytesMut::new();
            crate::frame::encode_request(&mut out, 3, Some("weir"), version, &req)
                .unwrap_or_else(|e| panic!("v{version}: {e}"));
            let mut buf = bytes::Bytes::copy_from_slice(&out[4..]);
            RequestHeader::decode(&mut buf, ListOffsetsRequest::header_version(version)).unwrap();
            let back = ListOffsetsRequest::decode(&mut buf, version).unwrap();
            assert_eq!(back.replica_id, BrokerId(-1));
            assert_eq!(back.isolation_level, if version >= 2 { 1 } else { 0 });
            assert_eq!(back.topics.len(), 2);
            assert_eq!(back.topics[0].partitions.len(), 2);
            assert_eq!(back.topics[0].partitions[0].timestamp, EARLIEST_TIMESTAMP);
            assert_eq!(back.topics[0].partitions[1].timestamp, 1_700_000_000_000);
            if version >= 4 {
                assert_eq!(back.topics[0].partitions[0].current_leader_epoch, 4);
            }
            if version >= 10 {
                assert_eq!(back.timeout_ms, 30_000);
            }
        }
    }
}
