//! `consumer_protocol`: the bytes other group members send through the broker (a
//! Subscription in JoinGroup metadata, an Assignment in SyncGroup), and the leader's
//! assignors run over subscriptions decoded from them.
//!
//! Byte 0 picks the mode:
//! * 0: the rest as a Subscription; 1: as an Assignment. Checked: the decoder's peak
//!   heap is at most [`BYTES_PER_INPUT_BYTE`] times the input (a copy of the topic
//!   name per 4-byte partition entry once made it thousands of times), no partition is
//!   negative, and a decoded value encodes at version 3 to bytes that decode to the
//!   same value (partitions grouped by topic) and encode to the same bytes again.
//! * 2 and up: an assignor (byte 0 mod 4) over up to four members whose subscriptions
//!   are 2-byte-length-prefixed chunks of the rest, partition counts from byte 1.
//!   Checked: every member gets an entry, a partition goes to at most one member, only
//!   to a member subscribed to its topic, and only if the topic has it; eager
//!   assignors give out every partition of every subscribed topic.

use std::collections::{BTreeMap, BTreeSet};

use weir_coordinator::{
    Assignment, AssignmentStrategy, MemberSubscription, Subscription, TopicPartition,
};

use crate::Touch;

/// The most heap a decode may hold at once, per input byte (plus [`SLACK`]): a
/// partition entry is 4 bytes on the wire and 24 in memory, and a vector may hold
/// twice what it uses.
pub const BYTES_PER_INPUT_BYTE: usize = 32;
const SLACK: usize = 4096;

const STRATEGIES: [AssignmentStrategy; 4] = [
    AssignmentStrategy::Range,
    AssignmentStrategy::RoundRobin,
    AssignmentStrategy::Sticky,
    AssignmentStrategy::CooperativeSticky,
];

fn check_heap(what: &str, input: usize, base: usize) {
    let used = crate::peak().saturating_sub(base);
    assert!(
        used <= input * BYTES_PER_INPUT_BYTE + SLACK,
        "{what}: {used} bytes of heap for {input} input bytes"
    );
}

fn sorted(v: &[TopicPartition]) -> Vec<TopicPartition> {
    let mut v = v.to_vec();
    v.sort();
    v
}

fn touch_parts(t: &mut Touch, parts: &[TopicPartition]) {
    for p in parts {
        assert!(p.partition >= 0, "negative partition {p}");
        t.bytes(p.topic.as_bytes());
        t.int(p.partition);
    }
}

fn subscription(data: &[u8]) {
    let base = crate::reset_peak();
    let got = Subscription::decode(data);
    check_heap("Subscription::decode", data.len(), base);
    let Ok(s) = got else { return };
    let mut t = Touch::default();
    for topic in &s.topics {
        t.bytes(topic.as_bytes());
    }
    t.opt_bytes(s.user_data.as_deref());
    touch_parts(&mut t, &s.owned_partitions);
    t.int(s.generation_id);
    t.opt_bytes(s.rack_id.as_deref().map(str::as_bytes));
    t.finish();

    let bytes = s.encode(3);
    let again = Subscription::decode(&bytes).expect("weir's own encoding decodes");
    assert_eq!(again.topics, s.topics);
    assert_eq!(again.user_data, s.user_data);
    assert_eq!(again.generation_id, s.generation_id);
    assert_eq!(again.rack_id, s.rack_id);
    assert_eq!(sorted(&again.owned_partitions), sorted(&s.owned_partitions));
    assert_eq!(again.encode(3), bytes, "encoding is not stable");
}

fn assignment(data: &[u8]) {
    let base = crate::reset_peak();
    let got = Assignment::decode(data);
    check_heap("Assignment::decode", data.len(), base);
    let Ok(a) = got else { return };
    let mut t = Touch::default();
    touch_parts(&mut t, &a.partitions);
    t.opt_bytes(a.user_data.as_deref());
    t.finish();

    let bytes = a.encode(3);
    let again = Assignment::decode(&bytes).expect("weir's own encoding decodes");
    assert_eq!(again.user_data, a.user_data);
    assert_eq!(sorted(&again.partitions), sorted(&a.partitions));
    assert_eq!(again.encode(3), bytes, "encoding is not stable");
}

fn assignors(strategy: AssignmentStrategy, data: &[u8]) {
    let (Some(&seed), Some(&n)) = (data.first(), data.get(1)) else {
        return;
    };
    let mut rest = &data[2..];
    let mut members = Vec::new();
    for i in 0..usize::from(n % 4) + 1 {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            break;
        };
        let len = usize::from(u16::from_be_bytes(*len)).min(tail.len());
        let (chunk, tail) = tail.split_at(len);
        rest = tail;
        // As the leader does (member.rs): unreadable metadata is an empty subscription.
        let subscription = Subscription::decode(chunk).unwrap_or_default();
        members.push(MemberSubscription {
            member_id: format!("m{i}"),
            group_instance_id: (seed & 1 == 1).then(|| format!("i{i}")),
            subscription,
        });
    }
    let topics: BTreeSet<&str> = members
        .iter()
        .flat_map(|m| m.subscription.topics.iter().map(String::as_str))
        .collect();
    if topics.len() > 64 {
        return; // keeps one run short; the sizes here say nothing new
    }
    // Counts 0-8; some topics unknown to the leader's metadata.
    let mut counts = BTreeMap::new();
    for (k, topic) in topics.iter().enumerate() {
        let c = seed.wrapping_add((k as u8).wrapping_mul(37)) % 10;
        if c < 9 {
            counts.insert((*topic).to_string(), i32::from(c));
        }
    }
    let out = strategy.assign(&members, &counts);
    let ids: BTreeSet<&str> = out.keys().map(String::as_str).collect();
    let want: BTreeSet<&str> = members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(ids, want, "{strategy:?}: not every member has an entry");
    let mut given: BTreeMap<&TopicPartition, &str> = BTreeMap::new();
    for (member, parts) in &out {
        let m = members
            .iter()
            .find(|m| &m.member_id == member)
            .expect("checked above: every entry is a member");
        for tp in parts {
            assert!(
                m.subscription.topics.iter().any(|t| **t == *tp.topic),
                "{strategy:?}: {tp} given to {member}, which does not subscribe to it"
            );
            let count = counts.get(&*tp.topic).copied();
            assert!(
                count.is_some_and(|c| tp.partition >= 0 && tp.partition < c),
                "{strategy:?}: {tp} does not exist (count {count:?})"
            );
            if let Some(other) = given.insert(tp, member) {
                panic!("{strategy:?}: {tp} given to {other} and {member}");
            }
        }
    }
    if strategy != AssignmentStrategy::CooperativeSticky {
        // Cooperative-sticky may hold back a partition another member still owns.
        for (topic, &c) in &counts {
            for p in 0..c {
                let tp = TopicPartition::new(topic, p);
                assert!(
                    given.contains_key(&tp),
                    "{strategy:?}: {tp} is subscribed but given to nobody"
                );
            }
        }
    }
}

/// The target body.
pub fn consumer_protocol(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        0 => subscription(rest),
        1 => assignment(rest),
        m => assignors(STRATEGIES[usize::from(m % 4)], rest),
    }
}
