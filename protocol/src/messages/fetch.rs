//! Fetch (key 1): the zero-copy response decoder and a request builder.
//!
//! [`FetchResponse`] decodes v4-18 (v17 and v18 change only the request, with tagged
//! fields for followers, so their responses read as v16's). Each partition's `records` is a slice of the
//! frame it was decoded from: nothing is copied and no record is looked at here (the
//! batches are walked later by the record layer, per partition). The
//! decoder's work is per topic and per partition only.
//!
//! Versions: topic names up to v12, topic ids from v13; flexible (compact) encoding
//! from v12. Partition tagged fields (v12+): the diverging epoch (tag 0) and the
//! current leader (tag 1) are decoded because a consumer acts on them (log
//! truncation; leader moved); the snapshot id (tag 2, for KRaft followers) and the
//! v16 top-level node endpoints (tag 0) are skipped.
//!
//! [`build_fetch_request`] turns a flat list of partitions into kafka-protocol's
//! `FetchRequest`, so callers never touch its field names.

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::messages::ResponseBody;
use crate::txn::AbortedTxn;
use crate::{DecodeError, ErrorCode, Reader};

/// A decoded Fetch response (v4-18). Borrows from the frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchResponse<'a> {
    /// Throttle time in milliseconds.
    pub throttle_time_ms: i32,
    /// Top-level error (v7+; fetch-session errors such as FETCH_SESSION_ID_NOT_FOUND).
    pub error_code: ErrorCode,
    /// The fetch session id (v7+; 0 when there is no session).
    pub session_id: i32,
    /// Per-topic results.
    pub topics: Vec<FetchTopicResponse<'a>>,
}

/// One topic of a Fetch response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchTopicResponse<'a> {
    /// The topic name (up to v12; empty from v13).
    pub topic: &'a str,
    /// The topic id (v13+; all zeros before).
    pub topic_id: [u8; 16],
    /// Per-partition results.
    pub partitions: Vec<FetchPartitionResponse<'a>>,
}

/// One partition of a Fetch response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchPartitionResponse<'a> {
    /// The partition index.
    pub partition_index: i32,
    /// The partition's error (NOT_LEADER_OR_FOLLOWER, OFFSET_OUT_OF_RANGE, ...).
    pub error_code: ErrorCode,
    /// The high watermark: one past the last committed offset ("end of partition").
    pub high_watermark: i64,
    /// The last stable offset (read_committed reads stop here).
    pub last_stable_offset: i64,
    /// The log start offset (v5+; -1 before).
    pub log_start_offset: i64,
    /// Aborted transactions in the returned range (`None` when the broker sent null,
    /// as it does for read_uncommitted fetches).
    pub aborted_transactions: Option<Vec<AbortedTxn>>,
    /// The replica the client should fetch from instead (v11+; -1 for none).
    pub preferred_read_replica: i32,
    /// The record batches, borrowed from the frame (null reads as empty). The last
    /// batch may be truncated; that is normal.
    pub records: &'a [u8],
    /// v12+ tag 0: the leader's log diverges from the fetcher's last fetched epoch
    /// (only when the request sent `last_fetched_epoch`).
    pub diverging_epoch: Option<EpochEndOffset>,
    /// v12+ tag 1: the current leader, sent with NOT_LEADER_OR_FOLLOWER and
    /// FENCED_LEADER_EPOCH so the client need not wait for a metadata refresh.
    pub current_leader: Option<LeaderIdAndEpoch>,
}

/// An epoch and the offset where it ends (the Fetch diverging-epoch field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EpochEndOffset {
    /// The leader epoch.
    pub epoch: i32,
    /// The end offset of that epoch.
    pub end_offset: i64,
}

/// A partition leader and its epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaderIdAndEpoch {
    /// The leader's broker id (-1 if unknown).
    pub leader_id: i32,
    /// The leader epoch (-1 if unknown).
    pub leader_epoch: i32,
}

impl<'a> FetchResponse<'a> {
    /// Where `records` (a slice this response borrowed from `frame`) sits in `frame`,
    /// as a byte range; `None` if it does not point into `frame`. Lets a caller keep
    /// an offset into its buffer instead of a borrow.
    pub fn range_in(frame: &[u8], records: &[u8]) -> Option<std::ops::Range<usize>> {
        let base = frame.as_ptr() as usize;
        let start = (records.as_ptr() as usize).checked_sub(base)?;
        let end = start.checked_add(records.len())?;
        (end <= frame.len()).then_some(start..end)
    }

    fn decode_topic(
        r: &mut Reader<'a>,
        version: i16,
        flexible: bool,
    ) -> Result<FetchTopicResponse<'a>, DecodeError> {
        let (topic, topic_id) = if version >= 13 {
            ("", r.uuid("topic id")?)
        } else {
            (r.string_v(flexible, "topic name")?, [0; 16])
        };
        let n = r.array_len_v(flexible, partition_min_size(version), "partitions")?;
        let mut partitions = Vec::with_capacity(n);
        for _ in 0..n {
            partitions.push(Self::decode_partition(r, version, flexible)?);
        }
        r.tagged_fields_v(flexible)?;
        Ok(FetchTopicResponse {
            topic,
            topic_id,
            partitions,
        })
    }

    fn decode_partition(
        r: &mut Reader<'a>,
        version: i16,
        flexible: bool,
    ) -> Result<FetchPartitionResponse<'a>, DecodeError> {
        let partition_index = r.i32("partition index")?;
        let error_code = ErrorCode(r.i16("partition error code")?);
        let high_watermark = r.i64("high watermark")?;
        let last_stable_offset = r.i64("last stable offset")?;
        let log_start_offset = if version >= 5 {
            r.i64("log start offset")?
        } else {
            -1
        };
        let aborted_transactions = decode_aborted(r, flexible)?;
        let preferred_read_replica = if version >= 11 {
            r.i32("preferred read replica")?
        } else {
            -1
        };
        let records = r.nullable_bytes_v(flexible, "records")?.unwrap_or(&[]);
        let mut part = FetchPartitionResponse {
            partition_index,
            error_code,
            high_watermark,
            last_stable_offset,
            log_start_offset,
            aborted_transactions,
            preferred_read_replica,
            records,
            diverging_epoch: None,
            current_leader: None,
        };
        if flexible {
            decode_partition_tags(r, &mut part)?;
        }
        Ok(part)
    }
}

/// The fewest bytes one partition entry can take at `version`.
fn partition_min_size(version: i16) -> usize {
    let flexible = version >= 12;
    let mut n = 4 + 2 + 8 + 8; // index, error, high watermark, last stable offset
    if version >= 5 {
        n += 8;
    }
    n += if flexible { 1 } else { 4 }; // aborted transactions count
    if version >= 11 {
        n += 4;
    }
    n += if flexible { 1 + 1 } else { 4 }; // records length (+ tagged fields)
    n
}

fn decode_aborted(
    r: &mut Reader<'_>,
    flexible: bool,
) -> Result<Option<Vec<AbortedTxn>>, DecodeError> {
    let elem = 16 + usize::from(flexible);
    let n = if flexible {
        r.compact_array_len(elem, "aborted transactions")?
    } else {
        r.array_len(elem, "aborted transactions")?
    };
    let Some(n) = n else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let producer_id = r.i64("aborted producer id")?;
        let first_offset = r.i64("aborted first offset")?;
        r.tagged_fields_v(flexible)?;
        out.push(AbortedTxn {
            producer_id,
            first_offset,
        });
    }
    Ok(Some(out))
}

/// The partition's tagged fields: keep the diverging epoch and current leader,
/// skip the rest. Each field is read from a sub-reader of exactly its declared size.
fn decode_partition_tags(
    r: &mut Reader<'_>,
    part: &mut FetchPartitionResponse<'_>,
) -> Result<(), DecodeError> {
    let count = r.uvarint("tagged field count")?;
    // Every iteration consumes at least two bytes or fails, so this loop is bounded
    // by the input, whatever the count says; nothing is sized by the count.
    for _ in 0..count {
        let tag = r.uvarint("tag")?;
        let size = r.uvarint("tagged field size")?;
        let size = usize::try_from(size).map_err(|_| DecodeError::LengthTooLarge {
            what: "tagged field",
            length: u64::from(size),
            remaining: r.remaining(),
        })?;
        let mut f = r.sub(size, "tagged field")?;
        match tag {
            0 => {
                let epoch = f.i32("diverging epoch")?;
                let end_offset = f.i64("diverging end offset")?;
                f.skip_tagged_fields()?;
                part.diverging_epoch = Some(EpochEndOffset { epoch, end_offset });
            }
            1 => {
                let leader_id = f.i32("current leader id")?;
                let leader_epoch = f.i32("current leader epoch")?;
                f.skip_tagged_fields()?;
                part.current_leader = Some(LeaderIdAndEpoch {
                    leader_id,
                    leader_epoch,
                });
            }
            _ => {}
        }
    }
    Ok(())
}

impl<'a> ResponseBody<'a> for FetchResponse<'a> {
    const API_KEY: i16 = 1;
    const MIN_VERSION: i16 = 4;
    const MAX_VERSION: i16 = 18;
    const FIRST_FLEXIBLE: i16 = 12;

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        Self::check_version(version)?;
        let flexible = Self::flexible(version);
        let throttle_time_ms = r.i32("throttle time")?;
        let (error_code, session_id) = if version >= 7 {
            (ErrorCode(r.i16("error code")?), r.i32("session id")?)
        } else {
            (ErrorCode::NONE, 0)
        };
        let topic_min = if version >= 13 {
            16 + 1 + 1
        } else if flexible {
            1 + 1 + 1
        } else {
            2 + 4
        };
        let n = r.array_len_v(flexible, topic_min, "topics")?;
        let mut topics = Vec::with_capacity(n);
        for _ in 0..n {
            topics.push(Self::decode_topic(r, version, flexible)?);
        }
        r.tagged_fields_v(flexible)?;
        Ok(Self {
            throttle_time_ms,
            error_code,
            session_id,
            topics,
        })
    }
}

/// One partition to fetch, for [`build_fetch_request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPartitionSpec<'t> {
    /// The topic name (sent up to v12).
    pub topic: &'t str,
    /// The topic id (sent from v13; from Metadata v10+).
    pub topic_id: [u8; 16],
    /// The partition index.
    pub partition: i32,
    /// The offset to fetch from.
    pub fetch_offset: i64,
    /// `max.partition.fetch.bytes`.
    pub partition_max_bytes: i32,
    /// The leader epoch the client knows (-1 if unknown; v9+ fences stale leaders).
    pub current_leader_epoch: i32,
    /// The epoch of the last fetched record (-1 if unknown; v12+ diverging-epoch check).
    pub last_fetched_epoch: i32,
    /// The log start offset (-1 for consumers).
    pub log_start_offset: i64,
}

impl<'t> FetchPartitionSpec<'t> {
    /// A spec with Kafka's "unknown" defaults for the epochs and log start offset.
    pub fn new(
        topic: &'t str,
        topic_id: [u8; 16],
        partition: i32,
        fetch_offset: i64,
        partition_max_bytes: i32,
    ) -> Self {
        Self {
            topic,
            topic_id,
            partition,
            fetch_offset,
            partition_max_bytes,
            current_leader_epoch: -1,
            last_fetched_epoch: -1,
            log_start_offset: -1,
        }
    }
}

/// Request-wide Fetch settings, for [`build_fetch_request`]. Names follow the Java
/// client's properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchParams<'r> {
    /// `fetch.max.wait.ms`.
    pub max_wait_ms: i32,
    /// `fetch.min.bytes`.
    pub min_bytes: i32,
    /// `fetch.max.bytes`.
    pub max_bytes: i32,
    /// `isolation.level`: 0 = read_uncommitted, 1 = read_committed.
    pub isolation_level: i8,
    /// The fetch session id (0 for a new session or none).
    pub session_id: i32,
    /// The session epoch (-1 for no session, 0 to create one, then 1, 2, ...).
    pub session_epoch: i32,
    /// `client.rack` (v11+; empty for none).
    pub rack_id: &'r str,
}

impl Default for FetchParams<'_> {
    /// Kafka's consumer defaults, with sessions off (epoch -1).
    fn default() -> Self {
        Self {
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 52_428_800,
            isolation_level: 0,
            session_id: 0,
            session_epoch: -1,
            rack_id: "",
        }
    }
}

/// Build a kafka-protocol `FetchRequest` to be encoded at `version` from
/// request-wide settings, the partitions to fetch, and (for incremental fetch
/// sessions, v7+) the partitions to forget, given as `(topic, topic_id, partition)`.
///
/// Partitions of one topic are grouped under it, in order of first appearance; both
/// name and id are filled, and the encoder sends the one the version uses. Fields the
/// version cannot carry are left at their defaults (kafka-protocol refuses to encode
/// a set `last_fetched_epoch` below v12 or forgotten topics below v7).
pub fn build_fetch_request(
    version: i16,
    params: &FetchParams<'_>,
    partitions: &[FetchPartitionSpec<'_>],
    forgotten: &[(&str, [u8; 16], i32)],
) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for p in partitions {
        let fp = FetchPartition::default()
            .with_partition(p.partition)
            .with_current_leader_epoch(p.current_leader_epoch)
            .with_fetch_offset(p.fetch_offset)
            .with_last_fetched_epoch(if version >= 12 {
                p.last_fetched_epoch
            } else {
                -1
            })
            .with_log_start_offset(p.log_start_offset)
            .with_partition_max_bytes(p.partition_max_bytes);
        let id = uuid::Uuid::from_bytes(p.topic_id);
        match topics
            .iter_mut()
            .rev()
            .find(|t| t.topic.0.as_str() == p.topic && t.topic_id == id)
        {
            Some(t) => t.partitions.push(fp),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(topic_name(p.topic))
                    .with_topic_id(id)
                    .with_partitions(vec![fp]),
            ),
        }
    }
    let mut forgotten_topics: Vec<ForgottenTopic> = Vec::new();
    let forgotten = if version >= 7 { forgotten } else { &[] };
    for &(topic, topic_id, partition) in forgotten {
        let id = uuid::Uuid::from_bytes(topic_id);
        match forgotten_topics
            .iter_mut()
            .find(|t| t.topic.0.as_str() == topic && t.topic_id == id)
        {
            Some(t) => t.partitions.push(partition),
            None => forgotten_topics.push(
                ForgottenTopic::default()
                    .with_topic(topic_name(topic))
                    .with_topic_id(id)
                    .with_partitions(vec![partition]),
            ),
        }
    }
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(params.max_wait_ms)
        .with_min_bytes(params.min_bytes)
        .with_max_bytes(params.max_bytes)
        .with_isolation_level(params.isolation_level)
        .with_session_id(params.session_id)
        .with_session_epoch(params.session_epoch)
        .with_topics(topics)
        .with_forgotten_topics_data(forgotten_topics)
        .with_rack_id(StrBytes::from_string(params.rack_id.to_owned()))
}

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::test_util::{check_truncations, encode_kp};
    use bytes::Bytes;
    use kafka_protocol::messages::FetchResponse as Kp;
    use kafka_protocol::messages::fetch_response as kpr;
    use kafka_protocol::protocol::Decodable;

    fn uuid(b: u8) -> uuid::Uuid {
        uuid::Uuid::from_bytes([b; 16])
    }

    fn sample() -> Kp {
        let p0 = kpr::PartitionData::default()
            .with_partition_index(0)
            .with_error_code(0)
            .with_high_watermark(1000)
            .with_last_stable_offset(990)
            .with_log_start_offset(5)
            .with_aborted_transactions(Some(vec![
                kpr::AbortedTransaction::default()
                    .with_producer_id(77.into())
                    .with_first_offset(900),
                kpr::AbortedTransaction::default()
                    .with_producer_id(78.into())
                    .with_first_offset(950),
            ]))
            .with_preferred_read_replica(BrokerId(3))
            .with_records(Some(Bytes::from_static(b"batch bytes here")))
            .with_diverging_epoch(
                kpr::EpochEndOffset::default()
                    .with_epoch(4)
                    .with_end_offset(800),
            )
            .with_current_leader(
                kpr::LeaderIdAndEpoch::default()
                    .with_leader_id(BrokerId(2))
                    .with_leader_epoch(9),
            )
            .with_snapshot_id(kpr::SnapshotId::default().with_end_offset(7).with_epoch(1));
        let p1 = kpr::PartitionData::default()
            .with_partition_index(1)
            .with_error_code(6)
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_aborted_transactions(None)
            .with_records(None);
        let p2 = kpr::PartitionData::default()
            .with_partition_index(2)
            .with_aborted_transactions(Some(vec![]))
            .with_records(Some(Bytes::new()));
        Kp::default()
            .with_throttle_time_ms(12)
            .with_error_code(0)
            .with_session_id(4242)
            .with_responses(vec![
                kpr::FetchableTopicResponse::default()
                    .with_topic(topic_name("orders"))
                    .with_topic_id(uuid(0xab))
                    .with_partitions(vec![p0, p1]),
                kpr::FetchableTopicResponse::default()
                    .with_topic(topic_name("ünïcode"))
                    .with_topic_id(uuid(0xcd))
                    .with_partitions(vec![p2]),
            ])
            .with_node_endpoints(vec![
                kpr::NodeEndpoint::default()
                    .with_node_id(BrokerId(2))
                    .with_host(StrBytes::from_static_str("b2"))
                    .with_port(9092)
                    .with_rack(Some(StrBytes::from_static_str("r1"))),
            ])
    }

    /// The sample as kafka-protocol can encode it at `version`: fields a version
    /// cannot carry are reset (kafka-protocol refuses some of them).
    fn sample_at(version: i16) -> Kp {
        let mut kp = sample();
        if version < 7 {
            kp.session_id = 0;
        }
        for t in &mut kp.responses {
            for p in &mut t.partitions {
                if version < 11 {
                    p.preferred_read_replica = BrokerId(-1);
                }
            }
        }
        kp
    }

    fn check(kp: &Kp, ours: &FetchResponse<'_>, version: i16) {
        assert_eq!(ours.throttle_time_ms, kp.throttle_time_ms);
        if version >= 7 {
            assert_eq!(ours.error_code.0, kp.error_code);
            assert_eq!(ours.session_id, kp.session_id);
        } else {
            assert_eq!(ours.session_id, 0);
        }
        assert_eq!(ours.topics.len(), kp.responses.len());
        for (t, kt) in ours.topics.iter().zip(&kp.responses) {
            if version >= 13 {
                assert_eq!(t.topic, "");
                assert_eq!(t.topic_id, *kt.topic_id.as_bytes());
            } else {
                assert_eq!(t.topic, kt.topic.0.as_str());
                assert_eq!(t.topic_id, [0; 16]);
            }
            assert_eq!(t.partitions.len(), kt.partitions.len());
            for (p, kp) in t.partitions.iter().zip(&kt.partitions) {
                assert_eq!(p.partition_index, kp.partition_index);
                assert_eq!(p.error_code.0, kp.error_code);
                assert_eq!(p.high_watermark, kp.high_watermark);
                assert_eq!(p.last_stable_offset, kp.last_stable_offset);
                let lso = if version >= 5 {
                    kp.log_start_offset
                } else {
                    -1
                };
                assert_eq!(p.log_start_offset, lso);
                let aborted = kp.aborted_transactions.as_ref().map(|v| {
                    v.iter()
                        .map(|a| AbortedTxn {
                            producer_id: a.producer_id.0,
                            first_offset: a.first_offset,
                        })
                        .collect::<Vec<_>>()
                });
                assert_eq!(p.aborted_transactions, aborted);
                let prr = if version >= 11 {
                    kp.preferred_read_replica.0
                } else {
                    -1
                };
                assert_eq!(p.preferred_read_replica, prr);
                assert_eq!(p.records, kp.records.as_deref().unwrap_or(&[]));
                let default_de = kpr::EpochEndOffset::default();
                let de =
                    (version >= 12 && kp.diverging_epoch != default_de).then_some(EpochEndOffset {
                        epoch: kp.diverging_epoch.epoch,
                        end_offset: kp.diverging_epoch.end_offset,
                    });
                assert_eq!(p.diverging_epoch, de);
                let default_cl = kpr::LeaderIdAndEpoch::default();
                let cl = (version >= 12 && kp.current_leader != default_cl).then_some(
                    LeaderIdAndEpoch {
                        leader_id: kp.current_leader.leader_id.0,
                        leader_epoch: kp.current_leader.leader_epoch,
                    },
                );
                assert_eq!(p.current_leader, cl);
            }
        }
    }

    #[test]
    fn differential_every_version() {
        for version in 4..=18 {
            let kp = sample_at(version);
            let bytes = encode_kp(&kp, version);
            let mut r = Reader::new(&bytes);
            let ours = FetchResponse::decode(&mut r, version).unwrap();
            assert!(r.is_empty(), "v{version}: {} bytes left", r.remaining());
            check(&kp, &ours, version);
            // Records are borrowed from the input, not copied.
            let recs = ours.topics[0].partitions[0].records;
            let range = FetchResponse::range_in(&bytes, recs).unwrap();
            assert_eq!(&bytes[range], b"batch bytes here");
            assert_eq!(FetchResponse::range_in(&bytes, b"elsewhere"), None);
            check_truncations(&bytes, |b| {
                FetchResponse::decode_body(b, version).map(|_| ())
            });
        }
    }

    #[test]
    fn rejects_versions_outside_range() {
        for v in [-1, 0, 3, 19, 20] {
            assert!(matches!(
                FetchResponse::decode_body(&[0; 64], v),
                Err(DecodeError::UnsupportedVersion { api_key: 1, .. })
            ));
        }
    }

    /// The 36-byte response that makes kafka-protocol 0.18 try to allocate hundreds of
    /// gigabytes: a topic count of i32::MAX. Ours must fail fast.
    #[test]
    fn huge_topic_count_is_an_error() {
        let mut body = Vec::new();
        body.extend_from_slice(&0i32.to_be_bytes()); // throttle
        body.extend_from_slice(&0i16.to_be_bytes()); // error
        body.extend_from_slice(&0i32.to_be_bytes()); // session
        body.extend_from_slice(&i32::MAX.to_be_bytes()); // topic count
        body.resize(36, 0);
        assert!(matches!(
            FetchResponse::decode_body(&body, 11),
            Err(DecodeError::LengthTooLarge { .. })
        ));
        // Same in the compact encoding (count = u32::MAX - 1).
        let mut body = vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        body.resize(36, 0);
        for v in [12, 13, 16] {
            assert!(FetchResponse::decode_body(&body, v).is_err());
        }
    }

    #[test]
    fn hostile_nested_counts() {
        // v11: one topic "t" with i32::MAX partitions.
        let mut body = vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        body.extend_from_slice(&1i32.to_be_bytes());
        body.extend_from_slice(&[0, 1, b't']);
        body.extend_from_slice(&i32::MAX.to_be_bytes());
        body.resize(200, 0);
        assert!(matches!(
            FetchResponse::decode_body(&body, 11),
            Err(DecodeError::LengthTooLarge { .. })
        ));
        // A partition with i32::MAX aborted transactions, and with a huge records length.
        let kp = Kp::default().with_responses(vec![
            kpr::FetchableTopicResponse::default()
                .with_topic(topic_name("t"))
                .with_partitions(vec![
                    kpr::PartitionData::default().with_aborted_transactions(Some(vec![])),
                ]),
        ]);
        let bytes = encode_kp(&kp, 11);
        // Offsets: 4+2+4 header, 4 count, 3 name, 4 count, then 4+2+8+8+8 partition fields.
        let aborted_at = 10 + 4 + 3 + 4 + 30;
        let mut evil = bytes.clone();
        evil[aborted_at..aborted_at + 4].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            FetchResponse::decode_body(&evil, 11),
            Err(DecodeError::LengthTooLarge {
                what: "aborted transactions",
                ..
            })
        ));
        let records_at = aborted_at + 4 + 4;
        let mut evil = bytes.clone();
        evil[records_at..records_at + 4].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            FetchResponse::decode_body(&evil, 11),
            Err(DecodeError::LengthTooLarge {
                what: "records",
                ..
            })
        ));
        let mut evil = bytes;
        evil[records_at..records_at + 4].copy_from_slice(&(-2i32).to_be_bytes());
        assert!(matches!(
            FetchResponse::decode_body(&evil, 11),
            Err(DecodeError::NegativeLength {
                what: "records",
                ..
            })
        ));
    }

    #[test]
    fn unknown_partition_tags_are_skipped_and_bad_sizes_rejected() {
        let kp = Kp::default().with_responses(vec![
            kpr::FetchableTopicResponse::default()
                .with_topic_id(uuid(1))
                .with_partitions(vec![
                    kpr::PartitionData::default()
                        .with_unknown_tagged_field(9, Bytes::from_static(b"future"))
                        .with_current_leader(
                            kpr::LeaderIdAndEpoch::default()
                                .with_leader_id(BrokerId(5))
                                .with_leader_epoch(6),
                        ),
                ]),
        ]);
        let bytes = encode_kp(&kp, 16);
        let resp = FetchResponse::decode_body(&bytes, 16).unwrap();
        let p = &resp.topics[0].partitions[0];
        assert_eq!(
            p.current_leader,
            Some(LeaderIdAndEpoch {
                leader_id: 5,
                leader_epoch: 6
            })
        );
        assert_eq!(p.diverging_epoch, None);
        // A current-leader tag whose declared size is too small to hold its fields.
        let mut body = vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]; // one topic
        body.extend_from_slice(&[7; 16]);
        body.push(2); // one partition
        body.extend_from_slice(&[0; 4 + 2 + 8 + 8 + 8]);
        body.push(1); // aborted: empty
        body.extend_from_slice(&[0xff; 4]); // preferred replica
        body.push(1); // records: empty
        body.extend_from_slice(&[1, 1, 3, 0, 0, 0]); // tag 1, size 3
        body.extend_from_slice(&[0, 0]); // topic tags, top tags
        assert!(matches!(
            FetchResponse::decode_body(&body, 13),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn request_builder_groups_topics_and_encodes_every_version() {
        let params = FetchParams {
            isolation_level: 1,
            session_id: 9,
            session_epoch: 2,
            rack_id: "rack-a",
            ..FetchParams::default()
        };
        let mut a0 = FetchPartitionSpec::new("a", [1; 16], 0, 100, 1 << 20);
        a0.current_leader_epoch = 3;
        a0.last_fetched_epoch = 2;
        let specs = [
            a0,
            FetchPartitionSpec::new("b", [2; 16], 0, 5, 1 << 20),
            FetchPartitionSpec::new("a", [1; 16], 1, 200, 1 << 20),
        ];
        let forgotten = [("c", [3; 16], 4), ("c", [3; 16], 5)];
        let req = build_fetch_request(16, &params, &specs, &forgotten);
        assert_eq!(req.replica_id, BrokerId(-1));
        assert_eq!(req.topics.len(), 2);
        assert_eq!(req.topics[0].topic.0.as_str(), "a");
        assert_eq!(req.topics[0].partitions.len(), 2);
        assert_eq!(req.topics[0].partitions[0].current_leader_epoch, 3);
        assert_eq!(req.topics[0].partitions[0].last_fetched_epoch, 2);
        assert_eq!(req.topics[0].partitions[1].fetch_offset, 200);
        assert_eq!(req.forgotten_topics_data.len(), 1);
        assert_eq!(req.forgotten_topics_data[0].partitions, vec![4, 5]);
        for version in 4..=18 {
            let req = build_fetch_request(version, &params, &specs, &forgotten);
            let mut out = bytes::BytesMut::new();
            crate::frame::encode_request(&mut out, 1, Some("weir"), version, &req)
                .unwrap_or_else(|e| panic!("v{version}: {e}"));
            // Decode it back with kafka-protocol (broker side) to check the fields.
            let hv =
                <FetchRequest as kafka_protocol::protocol::HeaderVersion>::header_version(version);
            let mut buf = Bytes::copy_from_slice(&out[4..]);
            kafka_protocol::messages::RequestHeader::decode(&mut buf, hv).unwrap();
            let back = FetchRequest::decode(&mut buf, version).unwrap();
            assert_eq!(back.max_bytes, params.max_bytes);
            assert_eq!(back.topics.len(), 2);
            if version >= 13 {
                assert_eq!(back.topics[1].topic_id, uuid(2));
            } else {
                assert_eq!(back.topics[1].topic.0.as_str(), "b");
            }
            if version >= 7 {
                assert_eq!(back.session_epoch, 2);
                assert_eq!(back.isolation_level, 1);
                assert_eq!(back.forgotten_topics_data[0].partitions, vec![4, 5]);
            }
            if version >= 9 {
                assert_eq!(back.topics[0].partitions[0].current_leader_epoch, 3);
            }
            if version >= 12 {
                assert_eq!(back.topics[0].partitions[0].last_fetched_epoch, 2);
            }
        }
    }

    /// Measurement, not a target: decode cost per partition on the hot path.
    /// `cargo test -p weir-protocol --release --lib -- --ignored --nocapture fetch_decode_cost`
    #[test]
    #[ignore]
    fn fetch_decode_cost() {
        let records = Bytes::from(vec![0u8; 64 * 1024]);
        let topics = (0..10u8)
            .map(|t| {
                kpr::FetchableTopicResponse::default()
                    .with_topic_id(uuid(t))
                    .with_partitions(
                        (0..100)
                            .map(|i| {
                                kpr::PartitionData::default()
                                    .with_partition_index(i)
                                    .with_high_watermark(1_000_000)
                                    .with_last_stable_offset(1_000_000)
                                    .with_aborted_transactions(Some(vec![]))
                                    .with_records(Some(records.clone()))
                            })
                            .collect(),
                    )
            })
            .collect();
        let bytes = encode_kp(&Kp::default().with_responses(topics), 16);
        let iters = 2000u32;
        let start = std::time::Instant::now();
        let mut total = 0usize;
        for _ in 0..iters {
            let resp = FetchResponse::decode_body(std::hint::black_box(&bytes), 16).unwrap();
            total += resp
                .topics
                .iter()
                .map(|t| t.partitions.len())
                .sum::<usize>();
        }
        let el = start.elapsed();
        println!(
            "Fetch v16, {} MB frame, 1000 partitions: {:.1} us/response, {:.1} ns/partition",
            bytes.len() >> 20,
            el.as_secs_f64() * 1e6 / f64::from(iters),
            el.as_secs_f64() * 1e9 / total as f64
        );
    }
}
