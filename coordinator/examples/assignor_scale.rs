//! How long each assignor takes for larger groups (a measurement, not a test).
//!
//! `cargo run --release -p weir-coordinator --example assignor_scale`

use std::collections::BTreeMap;
use std::time::Instant;
use weir_coordinator::{AssignmentStrategy, MemberSubscription, Subscription};

fn members(n: usize, topics: &[String]) -> Vec<MemberSubscription> {
    (0..n)
        .map(|i| MemberSubscription {
            member_id: format!("member-{i:04}"),
            group_instance_id: None,
            subscription: Subscription {
                topics: topics.to_vec(),
                generation_id: -1,
                ..Default::default()
            },
        })
        .collect()
}

fn main() {
    for &(n_members, n_topics, parts) in &[(10, 10, 32), (100, 10, 100), (300, 20, 100)] {
        let topics: Vec<String> = (0..n_topics).map(|t| format!("topic-{t}")).collect();
        let counts: BTreeMap<String, i32> = topics.iter().map(|t| (t.clone(), parts)).collect();
        let ms = members(n_members, &topics);
        for s in [
            AssignmentStrategy::Range,
            AssignmentStrategy::RoundRobin,
            AssignmentStrategy::Sticky,
            AssignmentStrategy::CooperativeSticky,
        ] {
            let t = Instant::now();
            let a = s.assign(&ms, &counts);
            let fresh = t.elapsed();
            // Rebalance after one member joins, owning what the first round gave.
            let mut next: Vec<MemberSubscription> = ms
                .iter()
                .map(|m| {
                    let mut m = m.clone();
                    m.subscription.owned_partitions = a[&m.member_id].clone();
                    m.subscription.generation_id = 1;
                    m
                })
                .collect();
            next.extend(members(1, &topics).into_iter().map(|mut m| {
                m.member_id = "zz-new".into();
                m
            }));
            let t = Instant::now();
            let _ = s.assign(&next, &counts);
            let join = t.elapsed();
            println!(
                "{:>18} members={n_members:>4} partitions={:>5}: fresh {:>10.3?}  one join {:>10.3?}",
                s.name(),
                n_topics * parts as usize,
                fresh,
                join
            );
        }
    }
}
