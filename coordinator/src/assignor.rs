//! Partition assignors: `range`, `roundrobin`, `sticky` and `cooperative-sticky`,
//! under Kafka's protocol names so a group can mix weir, Java and librdkafka members.
//!
//! The group leader runs the assignor the broker chose (the first protocol in the
//! leader's `partition.assignment.strategy` list that every member supports) over
//! every member's [`Subscription`]. Output is deterministic: members are ordered by
//! member id, partitions by topic then number.
//!
//! Sticky assignors keep each member's valid owned partitions (from the
//! subscription's `owned_partitions`, or the `sticky` user data written by eager
//! members that revoked everything before joining), hand out unowned partitions to
//! the least-loaded eligible member (most constrained partition first), then move
//! partitions one at a time from the most- to the least-loaded eligible member while
//! that narrows the gap. With equal subscriptions this ends with max - min <= 1 and
//! moves only the partitions balance requires. With unequal subscriptions it is a
//! greedy balance, not a proven optimum.
//!
//! `cooperative-sticky` (KIP-429) computes the same target, then withholds every
//! partition that would move from one member to another: the old owner's new
//! assignment lacks it (so it revokes it), the new owner does not get it yet, and the
//! rebalance the old owner triggers after revoking assigns it.

use crate::TopicPartition;
use crate::consumer_protocol::{Subscription, put_topic_partitions, read_topic_partitions};
use std::collections::{BTreeMap, BTreeSet};
use weir_protocol::Reader;

/// One member's subscription as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSubscription {
    /// The member id.
    pub member_id: String,
    /// The static instance id, if any.
    pub group_instance_id: Option<String>,
    /// The decoded subscription.
    pub subscription: Subscription,
}

/// The leader's output: member id -> assigned partitions (sorted).
pub type GroupAssignment = BTreeMap<String, Vec<TopicPartition>>;

/// The rebalance protocol a consumer follows (KIP-429).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceProtocol {
    /// Revoke every partition before rejoining.
    Eager,
    /// Revoke only partitions that move, then rejoin once more.
    Cooperative,
}

/// An assignment strategy (`partition.assignment.strategy` entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssignmentStrategy {
    /// `range`: contiguous ranges of each topic's partitions per member.
    Range,
    /// `roundrobin`: all partitions dealt round-robin over members.
    RoundRobin,
    /// `sticky`: balanced, keeps owned partitions; eager protocol.
    Sticky,
    /// `cooperative-sticky`: sticky with KIP-429 two-phase moves.
    CooperativeSticky,
}

impl AssignmentStrategy {
    /// Kafka's protocol name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Range => "range",
            Self::RoundRobin => "roundrobin",
            Self::Sticky => "sticky",
            Self::CooperativeSticky => "cooperative-sticky",
        }
    }

    /// Parse a protocol name or a Java class name
    /// (`org.apache.kafka.clients.consumer.RangeAssignor`, ...).
    pub fn from_name(name: &str) -> Option<Self> {
        let short = name.rsplit('.').next().unwrap_or(name);
        match short {
            "range" | "RangeAssignor" => Some(Self::Range),
            "roundrobin" | "RoundRobinAssignor" => Some(Self::RoundRobin),
            "sticky" | "StickyAssignor" => Some(Self::Sticky),
            "cooperative-sticky" | "CooperativeStickyAssignor" => Some(Self::CooperativeSticky),
            _ => None,
        }
    }

    /// Whether this assignor supports the cooperative protocol.
    pub fn supports_cooperative(self) -> bool {
        matches!(self, Self::CooperativeSticky)
    }

    /// The protocol a strategy list implies: cooperative only when every listed
    /// assignor supports it (as in Java).
    pub fn protocol_for(list: &[AssignmentStrategy]) -> RebalanceProtocol {
        if !list.is_empty() && list.iter().all(|s| s.supports_cooperative()) {
            RebalanceProtocol::Cooperative
        } else {
            RebalanceProtocol::Eager
        }
    }

    /// The user data this assignor puts in the subscription.
    ///
    /// `sticky` writes Java's StickyAssignorUserData v1 (the previous assignment and
    /// its generation); `cooperative-sticky` writes the generation (an i32).
    pub fn user_data(self, previous: &[TopicPartition], generation: i32) -> Option<Vec<u8>> {
        match self {
            Self::Range | Self::RoundRobin => None,
            Self::Sticky => {
                let mut out = Vec::new();
                put_topic_partitions(&mut out, previous);
                out.extend_from_slice(&generation.to_be_bytes());
                Some(out)
            }
            Self::CooperativeSticky => Some(generation.to_be_bytes().to_vec()),
        }
    }

    /// Run the assignor. `partitions_per_topic` holds the partition count of every
    /// subscribed topic the leader knows; unknown topics get nothing.
    pub fn assign(
        self,
        members: &[MemberSubscription],
        partitions_per_topic: &BTreeMap<String, i32>,
    ) -> GroupAssignment {
        let mut out: GroupAssignment = members
            .iter()
            .map(|m| (m.member_id.clone(), Vec::new()))
            .collect();
        match self {
            Self::Range => range(members, partitions_per_topic, &mut out),
            Self::RoundRobin => round_robin(members, partitions_per_topic, &mut out),
            Self::Sticky => sticky(members, partitions_per_topic, false, &mut out),
            Self::CooperativeSticky => sticky(members, partitions_per_topic, true, &mut out),
        }
        for v in out.values_mut() {
            v.sort();
        }
        out
    }
}

/// Members in Java's order: by group instance id when both have one, else member id.
fn sorted_members(members: &[MemberSubscription]) -> Vec<&MemberSubscription> {
    let mut v: Vec<_> = members.iter().collect();
    v.sort_by(|a, b| match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => x.cmp(y).then(a.member_id.cmp(&b.member_id)),
        _ => a.member_id.cmp(&b.member_id),
    });
    v
}

fn range(
    members: &[MemberSubscription],
    counts: &BTreeMap<String, i32>,
    out: &mut GroupAssignment,
) {
    let ordered = sorted_members(members);
    for (topic, &n) in counts {
        let subs: Vec<_> = ordered
            .iter()
            .filter(|m| m.subscription.topics.iter().any(|t| t == topic))
            .collect();
        if subs.is_empty() || n <= 0 {
            continue;
        }
        let n = n as usize;
        let per = n / subs.len();
        let extra = n % subs.len();
        let mut next = 0usize;
        for (i, m) in subs.iter().enumerate() {
            let take = per + usize::from(i < extra);
            let dst = out.entry(m.member_id.clone()).or_default();
            for p in next..next + take {
                dst.push(TopicPartition::new(topic, p as i32));
            }
            next += take;
        }
    }
}

fn round_robin(
    members: &[MemberSubscription],
    counts: &BTreeMap<String, i32>,
    out: &mut GroupAssignment,
) {
    let ordered = sorted_members(members);
    if ordered.is_empty() {
        return;
    }
    let mut cursor = 0usize;
    for (topic, &n) in counts {
        if !ordered
            .iter()
            .any(|m| m.subscription.topics.iter().any(|t| t == topic))
        {
            continue;
        }
        for p in 0..n.max(0) {
            // Advance (circularly) to the next member subscribed to this topic; one
            // is known to exist, so this ends within one lap.
            for _ in 0..ordered.len() {
                let m = ordered[cursor % ordered.len()];
                cursor += 1;
                if m.subscription.topics.iter().any(|t| t == topic) {
                    out.entry(m.member_id.clone())
                        .or_default()
                        .push(TopicPartition::new(topic, p));
                    break;
                }
            }
        }
    }
}

/// Owned partitions and generation a member claims: the subscription's owned
/// partitions (v1+) when present, else the `sticky` user data.
fn claimed(m: &MemberSubscription) -> (Vec<TopicPartition>, i32) {
    let s = &m.subscription;
    if !s.owned_partitions.is_empty() {
        return (s.owned_partitions.clone(), s.generation_id);
    }
    if let Some(ud) = &s.user_data {
        let mut r = Reader::new(ud);
        if let Ok(prev) = read_topic_partitions(&mut r) {
            let generation = r.i32("generation").unwrap_or(-1);
            return (prev, generation.max(s.generation_id));
        }
    }
    (Vec::new(), s.generation_id)
}

fn sticky(
    members: &[MemberSubscription],
    counts: &BTreeMap<String, i32>,
    cooperative: bool,
    out: &mut GroupAssignment,
) {
    let ordered = sorted_members(members);
    if ordered.is_empty() {
        return;
    }
    let subs: Vec<BTreeSet<&str>> = ordered
        .iter()
        .map(|m| m.subscription.topics.iter().map(String::as_str).collect())
        .collect();
    let all: Vec<TopicPartition> = counts
        .iter()
        .filter(|(t, _)| subs.iter().any(|s| s.contains(t.as_str())))
        .flat_map(|(t, &n)| (0..n.max(0)).map(move |p| TopicPartition::new(t, p)))
        .collect();
    // Members subscribed to each topic, computed once per topic.
    let by_topic: BTreeMap<&str, Vec<usize>> = counts
        .keys()
        .map(|t| {
            let ms = (0..ordered.len())
                .filter(|&i| subs[i].contains(t.as_str()))
                .collect();
            (t.as_str(), ms)
        })
        .collect();
    let eligible =
        |tp: &TopicPartition| -> &[usize] { by_topic.get(&*tp.topic).map_or(&[], Vec::as_slice) };

    // 1. Previous owners: the claim with the highest generation wins a conflict.
    let mut prev_owner: BTreeMap<TopicPartition, (i32, usize)> = BTreeMap::new();
    for (i, m) in ordered.iter().enumerate() {
        let (owned, generation) = claimed(m);
        for tp in owned {
            let valid = counts
                .get(&*tp.topic)
                .is_some_and(|&n| tp.partition >= 0 && tp.partition < n)
                && subs[i].contains(&*tp.topic);
            if !valid {
                continue;
            }
            match prev_owner.get(&tp) {
                Some(&(g, _)) if g >= generation => {}
                _ => {
                    prev_owner.insert(tp, (generation, i));
                }
            }
        }
    }
    let mut load: Vec<BTreeSet<TopicPartition>> = vec![BTreeSet::new(); ordered.len()];
    for (tp, &(_, i)) in &prev_owner {
        load[i].insert(tp.clone());
    }

    // 2. Unowned partitions, most constrained first, to the least-loaded eligible.
    let mut unowned: Vec<(usize, TopicPartition)> = all
        .iter()
        .filter(|tp| !prev_owner.contains_key(*tp))
        .map(|tp| (eligible(tp).len(), tp.clone()))
        .collect();
    unowned.sort();
    for (_, tp) in unowned {
        let best = eligible(&tp)
            .iter()
            .copied()
            .min_by_key(|&i| (load[i].len(), i));
        if let Some(i) = best {
            load[i].insert(tp);
        }
    }

    // 3. Balance: move single partitions from heavy to light members.
    let bound = all.len() * ordered.len() + 1;
    for _ in 0..bound {
        let mut by_load: Vec<usize> = (0..ordered.len()).collect();
        by_load.sort_by_key(|&i| (std::cmp::Reverse(load[i].len()), i));
        let min_load = load.iter().map(BTreeSet::len).min().unwrap_or(0);
        let mut moved = false;
        'donors: for &d in &by_load {
            // A receiver needs at least two fewer partitions than the donor;
            // donors come heaviest first, so once none can give, stop.
            if load[d].len() <= min_load + 1 {
                break;
            }
            // Prefer giving away partitions this member did not own before, then
            // the highest-numbered.
            let mut candidates: Vec<&TopicPartition> = load[d].iter().collect();
            let kept = |tp: &TopicPartition| prev_owner.get(tp).map(|&(_, o)| o) == Some(d);
            candidates.sort_by(|a, b| kept(a).cmp(&kept(b)).then_with(|| b.cmp(a)));
            for tp in candidates {
                let recv = eligible(tp)
                    .iter()
                    .copied()
                    .filter(|&r| r != d && load[r].len() + 1 < load[d].len())
                    .min_by_key(|&r| (load[r].len(), r));
                if let Some(r) = recv {
                    let tp = tp.clone();
                    load[d].remove(&tp);
                    load[r].insert(tp);
                    moved = true;
                    break 'donors;
                }
            }
        }
        if !moved {
            break;
        }
    }

    // 4. Cooperative: withhold partitions that change owner this round.
    for (i, set) in load.iter().enumerate() {
        let dst = out.entry(ordered[i].member_id.clone()).or_default();
        for tp in set {
            let moving = prev_owner.get(tp).is_some_and(|&(_, o)| o != i);
            if cooperative && moving {
                continue;
            }
            dst.push(tp.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*, seeded: deterministic property loops without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn member(
        id: &str,
        topics: &[&str],
        owned: &[TopicPartition],
        generation: i32,
    ) -> MemberSubscription {
        MemberSubscription {
            member_id: id.into(),
            group_instance_id: None,
            subscription: Subscription {
                topics: topics.iter().map(|t| t.to_string()).collect(),
                user_data: None,
                owned_partitions: owned.to_vec(),
                generation_id: generation,
                rack_id: None,
            },
        }
    }

    fn counts(v: &[(&str, i32)]) -> BTreeMap<String, i32> {
        v.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    fn check_exactly_once(a: &GroupAssignment, counts: &BTreeMap<String, i32>) {
        let mut seen = BTreeSet::new();
        for parts in a.values() {
            for tp in parts {
                assert!(seen.insert(tp.clone()), "{tp:?} assigned twice");
            }
        }
        let want: usize = counts.values().map(|&n| n as usize).sum();
        assert_eq!(seen.len(), want, "every partition assigned");
    }

    fn spread(a: &GroupAssignment) -> usize {
        let max = a.values().map(Vec::len).max().unwrap_or(0);
        let min = a.values().map(Vec::len).min().unwrap_or(0);
        max - min
    }

    #[test]
    fn range_matches_java_layout() {
        let ms = [
            member("a", &["t0", "t1"], &[], -1),
            member("b", &["t0", "t1"], &[], -1),
        ];
        let a = AssignmentStrategy::Range.assign(&ms, &counts(&[("t0", 3), ("t1", 3)]));
        let tp = TopicPartition::new;
        assert_eq!(
            a["a"],
            vec![tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)]
        );
        assert_eq!(a["b"], vec![tp("t0", 2), tp("t1", 2)]);
    }

    #[test]
    fn roundrobin_matches_java_layout() {
        let ms = [
            member("a", &["t0", "t1"], &[], -1),
            member("b", &["t0", "t1"], &[], -1),
        ];
        let a = AssignmentStrategy::RoundRobin.assign(&ms, &counts(&[("t0", 3), ("t1", 3)]));
        let tp = TopicPartition::new;
        assert_eq!(a["a"], vec![tp("t0", 0), tp("t0", 2), tp("t1", 1)]);
        assert_eq!(a["b"], vec![tp("t0", 1), tp("t1", 0), tp("t1", 2)]);
    }

    #[test]
    fn all_assignors_balance_and_cover_with_equal_subscriptions() {
        let mut rng = Rng(42);
        for _ in 0..200 {
            let nm = 1 + rng.below(8);
            let nt = 1 + rng.below(4);
            let topics: Vec<String> = (0..nt).map(|i| format!("t{i}")).collect();
            let tref: Vec<&str> = topics.iter().map(String::as_str).collect();
            let c: BTreeMap<String, i32> = topics
                .iter()
                .map(|t| (t.clone(), 1 + rng.below(20) as i32))
                .collect();
            let ms: Vec<_> = (0..nm)
                .map(|i| member(&format!("m{i:02}"), &tref, &[], -1))
                .collect();
            for s in [
                AssignmentStrategy::RoundRobin,
                AssignmentStrategy::Sticky,
                AssignmentStrategy::CooperativeSticky,
            ] {
                let a = s.assign(&ms, &c);
                check_exactly_once(&a, &c);
                assert!(spread(&a) <= 1, "{s:?} unbalanced: {a:?}");
            }
            // Range is balanced per topic, exactly once overall.
            check_exactly_once(&AssignmentStrategy::Range.assign(&ms, &c), &c);
        }
    }

    /// Feed an assignment back as owned partitions.
    fn with_owned(
        ms: &[MemberSubscription],
        a: &GroupAssignment,
        generation: i32,
    ) -> Vec<MemberSubscription> {
        ms.iter()
            .map(|m| {
                let mut m = m.clone();
                m.subscription.owned_partitions = a.get(&m.member_id).cloned().unwrap_or_default();
                m.subscription.generation_id = generation;
                m
            })
            .collect()
    }

    fn moves(before: &GroupAssignment, after: &GroupAssignment) -> usize {
        let owner = |a: &GroupAssignment| -> BTreeMap<TopicPartition, String> {
            a.iter()
                .flat_map(|(m, ps)| ps.iter().map(move |p| (p.clone(), m.clone())))
                .collect()
        };
        let (b, a) = (owner(before), owner(after));
        a.iter()
            .filter(|(tp, m)| b.get(*tp).is_some_and(|o| o != *m))
            .count()
    }

    #[test]
    fn sticky_moves_only_what_balance_needs() {
        let mut rng = Rng(7);
        for _ in 0..150 {
            let nm = 2 + rng.below(6);
            let c = counts(&[
                ("a", 1 + rng.below(30) as i32),
                ("b", 1 + rng.below(30) as i32),
            ]);
            let total: usize = c.values().map(|&n| n as usize).sum();
            let ms: Vec<_> = (0..nm)
                .map(|i| member(&format!("m{i}"), &["a", "b"], &[], -1))
                .collect();
            let first = AssignmentStrategy::Sticky.assign(&ms, &c);
            // A member joins: only about total/(nm+1) partitions move, all to it.
            let mut joined = with_owned(&ms, &first, 1);
            joined.push(member("zz-new", &["a", "b"], &[], -1));
            let second = AssignmentStrategy::Sticky.assign(&joined, &c);
            check_exactly_once(&second, &c);
            assert!(spread(&second) <= 1);
            assert_eq!(moves(&first, &second), second["zz-new"].len());
            assert!(second["zz-new"].len() <= total.div_ceil(nm + 1));
            // A member leaves: nobody but its partitions move.
            let leaving = rng.below(nm);
            let mut rest = with_owned(&joined, &second, 2);
            let gone = rest.remove(leaving);
            let third = AssignmentStrategy::Sticky.assign(&rest, &c);
            check_exactly_once(&third, &c);
            assert!(spread(&third) <= 1);
            let mut without = second.clone();
            without.remove(&gone.member_id);
            // Survivors keep everything they had unless balance forces one move
            // (the stickiness bound: at most one partition per survivor moves).
            assert_eq!(
                moves(&without, &third),
                0,
                "survivors keep their partitions"
            );
        }
    }

    #[test]
    fn cooperative_moves_in_two_phases() {
        let c = counts(&[("t", 6)]);
        let ms = vec![member("a", &["t"], &[], -1)];
        let first = AssignmentStrategy::CooperativeSticky.assign(&ms, &c);
        assert_eq!(first["a"].len(), 6);
        // b joins: phase one withholds what would move, so nothing is double-owned.
        let mut joined = with_owned(&ms, &first, 1);
        joined.push(member("b", &["t"], &[], -1));
        let second = AssignmentStrategy::CooperativeSticky.assign(&joined, &c);
        assert_eq!(second["a"].len(), 3, "a keeps 3 and revokes 3");
        assert!(second["b"].is_empty(), "b waits for the revocation");
        // Phase two: a rejoins owning 3; the revoked ones go to b.
        let third =
            AssignmentStrategy::CooperativeSticky.assign(&with_owned(&joined, &second, 2), &c);
        check_exactly_once(&third, &c);
        assert_eq!(third["a"], second["a"]);
        assert_eq!(third["b"].len(), 3);
        // Random property: after phase one nothing moves directly; after phase two
        // everything is assigned and balanced.
        let mut rng = Rng(99);
        for _ in 0..100 {
            let nm = 1 + rng.below(5);
            let c = counts(&[("x", 1 + rng.below(25) as i32)]);
            let ms: Vec<_> = (0..nm)
                .map(|i| member(&format!("m{i}"), &["x"], &[], -1))
                .collect();
            let a1 = AssignmentStrategy::CooperativeSticky.assign(&ms, &c);
            let mut j = with_owned(&ms, &a1, 1);
            j.push(member("new", &["x"], &[], -1));
            let a2 = AssignmentStrategy::CooperativeSticky.assign(&j, &c);
            assert_eq!(moves(&a1, &a2), 0, "no partition changes owner in one step");
            let a3 = AssignmentStrategy::CooperativeSticky.assign(&with_owned(&j, &a2, 2), &c);
            check_exactly_once(&a3, &c);
            assert!(spread(&a3) <= 1);
        }
    }

    #[test]
    fn sticky_reads_eager_user_data_and_resolves_conflicts() {
        let tp = TopicPartition::new;
        let ud = AssignmentStrategy::Sticky.user_data(&[tp("t", 0), tp("t", 1)], 4);
        let mut a = member("a", &["t"], &[], -1);
        a.subscription.user_data = ud;
        // b claims t-1 from an older generation: a's claim wins.
        let b = member("b", &["t"], &[tp("t", 1), tp("t", 2)], 3);
        let out = AssignmentStrategy::Sticky.assign(&[a, b], &counts(&[("t", 4)]));
        assert!(out["a"].contains(&tp("t", 0)) && out["a"].contains(&tp("t", 1)));
        assert!(out["b"].contains(&tp("t", 2)));
    }

    #[test]
    fn unequal_subscriptions_cover_everything() {
        let mut rng = Rng(5);
        for _ in 0..100 {
            let c = counts(&[
                ("a", 1 + rng.below(10) as i32),
                ("b", 1 + rng.below(10) as i32),
            ]);
            let ms: Vec<_> = (0..(2 + rng.below(4)))
                .map(|i| {
                    let topics: &[&str] = match i % 3 {
                        0 => &["a"],
                        1 => &["b"],
                        _ => &["a", "b"],
                    };
                    member(&format!("m{i}"), topics, &[], -1)
                })
                .collect();
            for s in [
                AssignmentStrategy::Range,
                AssignmentStrategy::RoundRobin,
                AssignmentStrategy::Sticky,
                AssignmentStrategy::CooperativeSticky,
            ] {
                let out = s.assign(&ms, &c);
                check_exactly_once(&out, &c);
                for m in &ms {
                    for p in &out[&m.member_id] {
                        assert!(
                            m.subscription.topics.iter().any(|t| **t == *p.topic),
                            "{s:?} gave {p:?} to a non-subscriber"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn user_data_matches_java_layout() {
        let tp = TopicPartition::new;
        // Java StickyAssignorUserData v1: [{topic, [partitions]}], generation.
        let java = vec![
            0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 4,
        ];
        assert_eq!(
            AssignmentStrategy::Sticky.user_data(&[tp("t", 0), tp("t", 1)], 4),
            Some(java.clone())
        );
        // Read back as an eager member's claim.
        let mut m = member("a", &["t"], &[], -1);
        m.subscription.user_data = Some(java);
        assert_eq!(claimed(&m), (vec![tp("t", 0), tp("t", 1)], 4));
        // CooperativeStickyAssignor user data: the generation as an i32.
        assert_eq!(
            AssignmentStrategy::CooperativeSticky.user_data(&[], 7),
            Some(vec![0, 0, 0, 7])
        );
        assert_eq!(AssignmentStrategy::Range.user_data(&[], 7), None);
    }

    #[test]
    fn names_round_trip() {
        for s in [
            AssignmentStrategy::Range,
            AssignmentStrategy::RoundRobin,
            AssignmentStrategy::Sticky,
            AssignmentStrategy::CooperativeSticky,
        ] {
            assert_eq!(AssignmentStrategy::from_name(s.name()), Some(s));
        }
        assert_eq!(
            AssignmentStrategy::from_name(
                "org.apache.kafka.clients.consumer.CooperativeStickyAssignor"
            ),
            Some(AssignmentStrategy::CooperativeSticky)
        );
        assert_eq!(
            AssignmentStrategy::protocol_for(&[
                AssignmentStrategy::Range,
                AssignmentStrategy::CooperativeSticky
            ]),
            RebalanceProtocol::Eager
        );
        assert_eq!(
            AssignmentStrategy::protocol_for(&[AssignmentStrategy::CooperativeSticky]),
            RebalanceProtocol::Cooperative
        );
    }
}
