//! `weir metadata` (kcat's `-L`) against a real broker, compared with Kafka's own
//! `kafka-topics --describe`: the same partitions, leaders, replicas, ISRs and topic
//! ids; an unknown topic is listed with its error and exits 1.

mod support;

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::broker::Broker;
use support::peer::Producer;
use support::wait_bounded;

const WEIR: &str = env!("CARGO_BIN_EXE_weir");

fn weir(args: &[&str]) -> Output {
    let child = Command::new(WEIR)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weir");
    wait_bounded(child, Duration::from_secs(60), "weir metadata")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// (partition -> (leader, replicas, isr)) and the topic id, from `kafka-topics --describe`.
type View = (String, BTreeMap<i32, (i32, Vec<i32>, Vec<i32>)>);

fn kafka_view(bootstrap: &str, topic: &str) -> View {
    let out = Command::new("bash")
        .arg(support::repo_root().join("scripts/kafka-tool.sh"))
        .args([
            "kafka-topics",
            "--bootstrap-server",
            bootstrap,
            "--describe",
            "--topic",
            topic,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run kafka-topics");
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "kafka-topics: {}\n{text}",
        stderr(&out)
    );
    let field = |line: &str, name: &str| -> String {
        line.split('\t')
            .filter_map(|kv| kv.trim().strip_prefix(&format!("{name}: ")))
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let ids = |s: String| -> Vec<i32> {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(|x| x.parse().expect("a node id"))
            .collect()
    };
    let mut id = String::new();
    let mut parts = BTreeMap::new();
    for line in text.lines() {
        if line.contains("PartitionCount:") {
            id = field(line, "TopicId");
        } else if line.contains("Partition:") {
            let p: i32 = field(line, "Partition").parse().expect("partition");
            let leader: i32 = field(line, "Leader").parse().expect("leader");
            parts.insert(
                p,
                (
                    leader,
                    ids(field(line, "Replicas")),
                    ids(field(line, "Isr")),
                ),
            );
        }
    }
    (id, parts)
}

fn weir_view(v: &serde_json::Value, topic: &str) -> View {
    let t = v["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .find(|t| t["topic"] == topic)
        .unwrap_or_else(|| panic!("{topic} in {v}"));
    let ids = |a: &serde_json::Value| -> Vec<i32> {
        a.as_array()
            .expect("a node list")
            .iter()
            .map(|n| n["id"].as_i64().expect("id") as i32)
            .collect()
    };
    let parts = t["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| {
            (
                p["partition"].as_i64().expect("partition") as i32,
                (
                    p["leader"].as_i64().expect("leader") as i32,
                    ids(&p["replicas"]),
                    ids(&p["isrs"]),
                ),
            )
        })
        .collect();
    (t["topic_id"].as_str().expect("topic_id").to_owned(), parts)
}

#[test]
fn metadata_agrees_with_kafka_topics_describe() {
    let b = Broker::shared();
    let bootstrap = b.bootstrap();
    let three = support::unique_topic("weir-md-three");
    let one = support::unique_topic("weir-md-one");
    Producer::new(&bootstrap, &three)
        .partitions(3)
        .count(2)
        .run();
    Producer::new(&bootstrap, &one).partitions(1).count(1).run();

    let out = weir(&["metadata", "-b", &bootstrap, "-J", "-t", &three, "-t", &one]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON document");
    assert_eq!(v["topics"].as_array().map(Vec::len), Some(2), "{v}");
    let brokers = v["brokers"].as_array().expect("brokers");
    assert!(!brokers.is_empty(), "{v}");
    assert!(
        v["originating_broker"]["id"]
            .as_i64()
            .is_some_and(|id| id >= 0),
        "{v}"
    );
    for topic in [&three, &one] {
        let (id, parts) = weir_view(&v, topic);
        assert_eq!(parts.len(), if topic == &three { 3 } else { 1 }, "{v}");
        for (leader, replicas, isr) in parts.values() {
            assert!(replicas.contains(leader) && isr.contains(leader), "{v}");
            assert!(
                brokers
                    .iter()
                    .any(|b| b["id"].as_i64() == Some(i64::from(*leader))),
                "the leader is a listed broker: {v}"
            );
        }
        if b.is_kafka() {
            let (kid, kparts) = kafka_view(&bootstrap, topic);
            assert_eq!(id, kid, "topic id of {topic}");
            assert_eq!(parts, kparts, "partitions of {topic}");
        }
    }

    // Without -t: every topic, as text, kcat's layout.
    let out = weir(&["metadata", "-b", &bootstrap]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("Metadata for all topics (from broker "),
        "{text}"
    );
    assert!(
        text.contains(&format!("  topic \"{three}\" with 3 partitions:\n")),
        "{text}"
    );
    assert!(text.contains("    partition 2, leader "), "{text}");
    assert!(text.contains(" brokers:\n  broker "), "{text}");
}

#[test]
fn an_unknown_topic_is_listed_with_its_error_and_exits_1() {
    let bootstrap = Broker::shared().bootstrap();
    let missing = support::unique_topic("weir-md-missing");
    let out = weir(&["metadata", "-b", &bootstrap, "-t", &missing]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "  topic \"{missing}\" error: UnknownTopicOrPartition (3)"
        )),
        "{}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!("the cluster has no usable metadata for {missing}")),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // And the topic was not created by asking.
    let out = weir(&["metadata", "-b", &bootstrap, "-J"]);
    assert!(!stdout(&out).contains(&missing), "{}", stdout(&out));
}
