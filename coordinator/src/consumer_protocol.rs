//! The "consumer" embedded protocol: the Subscription a member puts in its JoinGroup
//! metadata and the Assignment the leader hands out through SyncGroup.
//!
//! The layout is the Java client's (`ConsumerProtocolSubscription` and
//! `ConsumerProtocolAssignment`, versions 0-3), so weir, Java and librdkafka members
//! can share a group: an i16 version, then the fields in order, with i16-length
//! strings, i32-length nullable bytes and i32-counted arrays (never the compact
//! encoding). A version newer than 3 is read as version 3, as Java does: later
//! versions only append fields.
//!
//! These bytes come from other members through the broker, so decoding is bounded
//! ([`weir_protocol::Reader`]) and never panics.

use crate::TopicPartition;
use std::collections::BTreeMap;
use std::sync::Arc;
use weir_protocol::{DecodeError, Reader};

/// The highest Subscription/Assignment version weir writes and reads.
pub const CONSUMER_PROTOCOL_VERSION: i16 = 3;

/// A member's subscription (JoinGroup protocol metadata).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// Assignor-specific user data.
    pub user_data: Option<Vec<u8>>,
    /// Partitions the member owns now (v1+), for sticky/cooperative assignors.
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation the owned partitions come from (v2+; -1 when unknown).
    pub generation_id: i32,
    /// The member's rack (`client.rack`, v3+).
    pub rack_id: Option<String>,
}

/// A member's assignment (SyncGroup assignment bytes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    /// Assigned partitions.
    pub partitions: Vec<TopicPartition>,
    /// Assignor-specific user data.
    pub user_data: Option<Vec<u8>>,
}

fn put_i16(out: &mut Vec<u8>, v: i16) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn put_len(out: &mut Vec<u8>, n: usize) {
    put_i32(out, i32::try_from(n).unwrap_or(i32::MAX));
}
fn put_str(out: &mut Vec<u8>, s: &str) {
    // Topic names and rack ids are far below 32 KiB; a longer one is truncated
    // rather than written with a wrapped length.
    let b = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
    put_i16(out, b.len() as i16);
    out.extend_from_slice(b);
}
fn put_nullable_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => put_i16(out, -1),
        Some(s) => put_str(out, s),
    }
}
fn put_nullable_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_i32(out, -1),
        Some(b) => {
            put_len(out, b.len());
            out.extend_from_slice(b);
        }
    }
}

/// Group partitions by topic, topics in first-seen order, partitions in given order.
fn by_topic(parts: &[TopicPartition]) -> Vec<(&str, Vec<i32>)> {
    let mut out: Vec<(&str, Vec<i32>)> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for tp in parts {
        let i = *index.entry(&*tp.topic).or_insert_with(|| {
            out.push((&*tp.topic, Vec::new()));
            out.len() - 1
        });
        out[i].1.push(tp.partition);
    }
    out
}

/// Write an array of {topic, [partition]} (Java's TopicPartition struct).
pub(crate) fn put_topic_partitions(out: &mut Vec<u8>, parts: &[TopicPartition]) {
    let grouped = by_topic(parts);
    put_len(out, grouped.len());
    for (topic, ps) in grouped {
        put_str(out, topic);
        put_len(out, ps.len());
        for p in ps {
            put_i32(out, p);
        }
    }
}

/// Read an array of {topic, [partition]}.
///
/// Bounded by the input: counts are checked against the bytes left before anything
/// is reserved, and each topic's name is allocated once and shared by its partitions,
/// so the result takes at most about six times the input's size. A negative partition
/// number is an error.
pub(crate) fn read_topic_partitions(
    r: &mut Reader<'_>,
) -> Result<Vec<TopicPartition>, DecodeError> {
    // topic (2) + partition count (4)
    let n = r.array_len(6, "topic partitions")?.unwrap_or(0);
    let mut out = Vec::new();
    for _ in 0..n {
        let topic: Arc<str> = Arc::from(r.string("topic")?);
        let pn = r.array_len(4, "partitions")?.unwrap_or(0);
        out.reserve(pn);
        for _ in 0..pn {
            let partition = r.i32("partition")?;
            if partition < 0 {
                return Err(DecodeError::Invalid {
                    what: "partition",
                    reason: "negative partition number",
                });
            }
            out.push(TopicPartition::shared(&topic, partition));
        }
    }
    Ok(out)
}

fn read_version(r: &mut Reader<'_>) -> Result<i16, DecodeError> {
    let v = r.i16("consumer protocol version")?;
    if v < 0 {
        return Err(DecodeError::Invalid {
            what: "consumer protocol version",
            reason: "negative version",
        });
    }
    Ok(v.min(CONSUMER_PROTOCOL_VERSION))
}

impl Subscription {
    /// Encode at `version` (0-3; fields the version lacks are left out).
    pub fn encode(&self, version: i16) -> Vec<u8> {
        let version = version.clamp(0, CONSUMER_PROTOCOL_VERSION);
        let mut out = Vec::with_capacity(64);
        put_i16(&mut out, version);
        put_len(&mut out, self.topics.len());
        for t in &self.topics {
            put_str(&mut out, t);
        }
        put_nullable_bytes(&mut out, self.user_data.as_deref());
        if version >= 1 {
            put_topic_partitions(&mut out, &self.owned_partitions);
        }
        if version >= 2 {
            put_i32(&mut out, self.generation_id);
        }
        if version >= 3 {
            put_nullable_str(&mut out, self.rack_id.as_deref());
        }
        out
    }

    /// Decode a subscription from another member (bounded; never panics).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = read_version(&mut r)?;
        let n = r.array_len(2, "subscription topics")?.unwrap_or(0);
        let mut topics = Vec::with_capacity(n);
        for _ in 0..n {
            topics.push(r.string("subscription topic")?.to_owned());
        }
        let user_data = r
            .nullable_bytes("subscription user data")?
            .map(<[u8]>::to_vec);
        let owned_partitions = if version >= 1 {
            read_topic_partitions(&mut r)?
        } else {
            Vec::new()
        };
        let generation_id = if version >= 2 {
            r.i32("generation id")?
        } else {
            -1
        };
        let rack_id = if version >= 3 {
            r.nullable_string("rack id")?.map(str::to_owned)
        } else {
            None
        };
        Ok(Self {
            topics,
            user_data,
            owned_partitions,
            generation_id,
            rack_id,
        })
    }
}

impl Assignment {
    /// Encode at `version` (0-3 share one layout).
    pub fn encode(&self, version: i16) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        put_i16(&mut out, version.clamp(0, CONSUMER_PROTOCOL_VERSION));
        put_topic_partitions(&mut out, &self.partitions);
        put_nullable_bytes(&mut out, self.user_data.as_deref());
        out
    }

    /// Decode an assignment (bounded). An empty byte string is an empty
    /// assignment, as Java treats it.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        let mut r = Reader::new(bytes);
        let _version = read_version(&mut r)?;
        let partitions = read_topic_partitions(&mut r)?;
        let user_data = r
            .nullable_bytes("assignment user data")?
            .map(<[u8]>::to_vec);
        Ok(Self {
            partitions,
            user_data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    #[test]
    fn subscription_round_trips_every_version() {
        let sub = Subscription {
            topics: vec!["a".into(), "bb".into()],
            user_data: Some(vec![1, 2, 3]),
            owned_partitions: vec![tp("a", 0), tp("a", 2), tp("bb", 1)],
            generation_id: 7,
            rack_id: Some("r1".into()),
        };
        for v in 0..=3 {
            let got = Subscription::decode(&sub.encode(v)).expect("round trip");
            assert_eq!(got.topics, sub.topics);
            assert_eq!(got.user_data, sub.user_data);
            assert_eq!(
                got.owned_partitions,
                if v >= 1 {
                    sub.owned_partitions.clone()
                } else {
                    vec![]
                }
            );
            assert_eq!(got.generation_id, if v >= 2 { 7 } else { -1 });
            assert_eq!(got.rack_id, if v >= 3 { Some("r1".into()) } else { None });
        }
    }

    #[test]
    fn subscription_matches_java_bytes() {
        // Written by hand from Java's ConsumerProtocolSubscription v3 schema:
        // version=3, topics=["t"], userData=null, ownedPartitions=[{t,[0,1]}],
        // generationId=5, rackId=null.
        let java: Vec<u8> = vec![
            0, 3, // version
            0, 0, 0, 1, 0, 1, b't', // topics
            0xff, 0xff, 0xff, 0xff, // user data: null
            0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, // owned
            0, 0, 0, 5, // generation
            0xff, 0xff, // rack: null
        ];
        let sub = Subscription {
            topics: vec!["t".into()],
            user_data: None,
            owned_partitions: vec![tp("t", 0), tp("t", 1)],
            generation_id: 5,
            rack_id: None,
        };
        assert_eq!(sub.encode(3), java);
        assert_eq!(Subscription::decode(&java).expect("java bytes"), sub);
        // A v0 subscription from an old client: version, topics, user data.
        let v0 = [0u8, 0, 0, 0, 0, 1, 0, 1, b'x', 0, 0, 0, 2, 9, 9];
        let s0 = Subscription::decode(&v0).expect("v0");
        assert_eq!(s0.topics, vec!["x".to_string()]);
        assert_eq!(s0.user_data, Some(vec![9, 9]));
        assert_eq!(s0.generation_id, -1);
    }

    #[test]
    fn newer_versions_read_as_three() {
        let mut b = Subscription {
            topics: vec!["t".into()],
            ..Default::default()
        }
        .encode(3);
        b[1] = 9; // version 9, plus a field we do not know
        b.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(
            Subscription::decode(&b).expect("forward compatible").topics,
            ["t"]
        );
    }

    #[test]
    fn assignment_round_trip_and_java_bytes() {
        let a = Assignment {
            partitions: vec![tp("t", 3), tp("u", 0)],
            user_data: None,
        };
        let java: Vec<u8> = vec![
            0, 3, 0, 0, 0, 2, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 3, 0, 1, b'u', 0, 0, 0, 1, 0, 0, 0,
            0, 0xff, 0xff, 0xff, 0xff,
        ];
        assert_eq!(a.encode(3), java);
        assert_eq!(Assignment::decode(&java).expect("decodes"), a);
        assert_eq!(
            Assignment::decode(&[]).expect("empty"),
            Assignment::default()
        );
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let sub = Subscription {
            topics: vec!["alpha".into(), "beta".into()],
            user_data: Some(vec![0; 9]),
            owned_partitions: vec![tp("alpha", 1)],
            generation_id: 3,
            rack_id: Some("rack".into()),
        }
        .encode(3);
        for cut in 0..sub.len() {
            assert!(Subscription::decode(&sub[..cut]).is_err(), "cut {cut}");
        }
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut b = sub.clone();
            let i = (x as usize) % b.len();
            b[i] = (x >> 40) as u8;
            let _ = Subscription::decode(&b);
            let _ = Assignment::decode(&b);
        }
        // 2^31-1 topics in a tiny buffer is rejected before allocating.
        assert!(Subscription::decode(&[0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0]).is_err());
    }

    /// One copy of a topic's name serves all its partitions: a 32 KiB name followed
    /// by 4-byte partition entries used to cost 32 KiB per entry (a 1 MiB assignment
    /// asked for 8 GiB); now the result is a few times the input's size.
    #[test]
    fn a_topic_name_is_shared_by_its_partitions() {
        let name = "n".repeat(i16::MAX as usize);
        let parts: Vec<TopicPartition> = (0..1000).map(|p| tp(&name, p)).collect();
        let bytes = Assignment {
            partitions: parts,
            user_data: None,
        }
        .encode(3);
        let a = Assignment::decode(&bytes).expect("decodes");
        assert_eq!(a.partitions.len(), 1000);
        assert_eq!(a.partitions[999].partition, 999);
        assert!(
            a.partitions
                .iter()
                .all(|p| Arc::ptr_eq(&p.topic, &a.partitions[0].topic)),
            "a copy of the name per partition"
        );
        // Owned partitions in a subscription are read the same way.
        let sub = Subscription {
            topics: vec![name.clone()],
            owned_partitions: a.partitions.clone(),
            ..Default::default()
        };
        let got = Subscription::decode(&sub.encode(3)).expect("decodes");
        assert!(
            got.owned_partitions
                .iter()
                .all(|p| Arc::ptr_eq(&p.topic, &got.owned_partitions[0].topic))
        );
    }

    #[test]
    fn negative_partitions_are_refused() {
        for bad in [-1, i32::MIN] {
            let bytes = Assignment {
                partitions: vec![tp("t", 0), tp("t", bad)],
                user_data: None,
            }
            .encode(3);
            assert!(
                matches!(
                    Assignment::decode(&bytes),
                    Err(DecodeError::Invalid {
                        what: "partition",
                        ..
                    })
                ),
                "partition {bad}"
            );
            let sub = Subscription {
                topics: vec!["t".into()],
                owned_partitions: vec![tp("t", bad)],
                ..Default::default()
            };
            assert!(Subscription::decode(&sub.encode(3)).is_err(), "owned {bad}");
        }
    }
}
