//! `weir metadata`: the cluster as one broker sees it (kcat's `-L`): brokers, the
//! controller, topics, partitions, leaders, replicas and in-sync replicas, as text or
//! as JSON (`-J`, kcat's field names plus what Kafka adds: cluster id, racks, topic
//! ids, leader epochs, offline replicas).

use std::fmt::Write as _;

use weir_protocol::ErrorCode;

use crate::format::write_json_string;

/// One broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Its node id.
    pub id: i32,
    /// The host it advertises.
    pub host: String,
    /// The port it advertises.
    pub port: i32,
    /// Its rack (`broker.rack`), if set.
    pub rack: Option<String>,
}

/// One partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Its index.
    pub id: i32,
    /// The leader's node id (-1: none).
    pub leader: i32,
    /// The leader epoch (-1: not reported).
    pub leader_epoch: i32,
    /// The replicas' node ids.
    pub replicas: Vec<i32>,
    /// The in-sync replicas' node ids.
    pub isr: Vec<i32>,
    /// Replicas that are offline.
    pub offline: Vec<i32>,
    /// The partition's error, if any (LEADER_NOT_AVAILABLE while it is elected).
    pub error: Option<ErrorCode>,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Its name.
    pub name: String,
    /// Its id (all zeros before Metadata v10 or when unknown).
    pub id: [u8; 16],
    /// Whether it is one of Kafka's internal topics.
    pub internal: bool,
    /// The topic's error (UNKNOWN_TOPIC_OR_PARTITION for a name that does not exist).
    pub error: Option<ErrorCode>,
    /// Its partitions, by index.
    pub partitions: Vec<PartitionInfo>,
}

/// The cluster as the answering broker described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMetadata {
    /// The broker that answered, `host:port` as dialled.
    pub from: String,
    /// Its node id, when it is in the broker list.
    pub from_id: Option<i32>,
    /// The cluster id.
    pub cluster_id: Option<String>,
    /// The controller's node id (-1: unknown).
    pub controller: i32,
    /// The brokers, by id.
    pub brokers: Vec<BrokerInfo>,
    /// The topics asked for (all of them without `-t`), by name.
    pub topics: Vec<TopicInfo>,
    /// The topics asked for, or empty for all.
    pub query: Vec<String>,
}

/// A topic id as Kafka's tools print it (URL-safe base64 without padding).
pub fn topic_id_string(id: &[u8; 16]) -> String {
    weir_protocol::auth::base64_encode(id)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

fn nodes(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

fn error_text(code: ErrorCode) -> String {
    if code == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION {
        format!("{code} (no such topic: check the name with `weir metadata` without -t)")
    } else {
        code.to_string()
    }
}

impl ClusterMetadata {
    /// The topics asked for by name that the cluster does not have (or refuses).
    pub fn failed_topics(&self) -> Vec<&TopicInfo> {
        self.topics.iter().filter(|t| t.error.is_some()).collect()
    }

    /// kcat's `-L` text.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let what = if self.query.is_empty() {
            "all topics".to_owned()
        } else {
            format!("topic(s) {}", self.query.join(", "))
        };
        let from = match self.from_id {
            Some(id) => format!("{}/{id}", self.from),
            None => self.from.clone(),
        };
        let _ = writeln!(s, "Metadata for {what} (from broker {from}):");
        if let Some(c) = &self.cluster_id {
            let _ = writeln!(s, " cluster id {c}");
        }
        let _ = writeln!(s, " {} brokers:", self.brokers.len());
        for b in &self.brokers {
            let _ = write!(s, "  broker {} at {}:{}", b.id, b.host, b.port);
            if let Some(r) = &b.rack {
                let _ = write!(s, " (rack {r})");
            }
            if b.id == self.controller {
                s.push_str(" (controller)");
            }
            s.push('\n');
        }
        let _ = writeln!(s, " {} topics:", self.topics.len());
        for t in &self.topics {
            if let Some(e) = t.error {
                let _ = writeln!(s, "  topic \"{}\" error: {}", t.name, error_text(e));
                continue;
            }
            let _ = writeln!(
                s,
                "  topic \"{}\" with {} partitions{}:",
                t.name,
                t.partitions.len(),
                if t.internal { " (internal)" } else { "" }
            );
            for p in &t.partitions {
                let _ = write!(
                    s,
                    "    partition {}, leader {}, replicas: {}, isrs: {}",
                    p.id,
                    p.leader,
                    nodes(&p.replicas),
                    nodes(&p.isr)
                );
                if !p.offline.is_empty() {
                    let _ = write!(s, ", offline: {}", nodes(&p.offline));
                }
                if let Some(e) = p.error {
                    let _ = write!(s, ", error: {e}");
                }
                s.push('\n');
            }
        }
        s
    }

    /// kcat's `-L -J` JSON (one line), with Kafka's extra fields.
    pub fn render_json(&self) -> String {
        let mut b: Vec<u8> = Vec::new();
        let js = |b: &mut Vec<u8>, s: &str| write_json_string(b, s.as_bytes());
        b.extend_from_slice(b"{\"originating_broker\":{\"id\":");
        b.extend_from_slice(self.from_id.unwrap_or(-1).to_string().as_bytes());
        b.extend_from_slice(b",\"name\":");
        js(&mut b, &self.from);
        b.extend_from_slice(b"},\"query\":{\"topic\":");
        if self.query.is_empty() {
            js(&mut b, "*");
        } else {
            js(&mut b, &self.query.join(","));
        }
        b.extend_from_slice(b"},\"cluster_id\":");
        match &self.cluster_id {
            Some(c) => js(&mut b, c),
            None => b.extend_from_slice(b"null"),
        }
        b.extend_from_slice(
            format!(",\"controllerid\":{},\"brokers\":[", self.controller).as_bytes(),
        );
        for (i, br) in self.brokers.iter().enumerate() {
            if i > 0 {
                b.push(b',');
            }
            b.extend_from_slice(format!("{{\"id\":{},\"name\":", br.id).as_bytes());
            js(&mut b, &format!("{}:{}", br.host, br.port));
            b.extend_from_slice(b",\"rack\":");
            match &br.rack {
                Some(r) => js(&mut b, r),
                None => b.extend_from_slice(b"null"),
            }
            b.push(b'}');
        }
        b.extend_from_slice(b"],\"topics\":[");
        for (i, t) in self.topics.iter().enumerate() {
            if i > 0 {
                b.push(b',');
            }
            b.extend_from_slice(b"{\"topic\":");
            js(&mut b, &t.name);
            if let Some(e) = t.error {
                b.extend_from_slice(b",\"error\":");
                js(&mut b, &e.to_string());
                b.push(b'}');
                continue;
            }
            b.extend_from_slice(b",\"topic_id\":");
            js(&mut b, &topic_id_string(&t.id));
            b.extend_from_slice(
                format!(",\"internal\":{},\"partitions\":[", t.internal).as_bytes(),
            );
            for (j, p) in t.partitions.iter().enumerate() {
                if j > 0 {
                    b.push(b',');
                }
                let list = |ids: &[i32]| {
                    ids.iter()
                        .map(|id| format!("{{\"id\":{id}}}"))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                b.extend_from_slice(
                    format!(
                        "{{\"partition\":{},\"leader\":{},\"leader_epoch\":{},\"replicas\":[{}],\"isrs\":[{}],\"offline\":[{}]",
                        p.id,
                        p.leader,
                        p.leader_epoch,
                        list(&p.replicas),
                        list(&p.isr),
                        list(&p.offline)
                    )
                    .as_bytes(),
                );
                if let Some(e) = p.error {
                    b.extend_from_slice(b",\"error\":");
                    js(&mut b, &e.to_string());
                }
                b.push(b'}');
            }
            b.extend_from_slice(b"]}");
        }
        b.extend_from_slice(b"]}\n");
        String::from_utf8_lossy(&b).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ClusterMetadata {
        ClusterMetadata {
            from: "127.0.0.1:9092".into(),
            from_id: Some(1),
            cluster_id: Some("abc".into()),
            controller: 1,
            brokers: vec![BrokerInfo {
                id: 1,
                host: "127.0.0.1".into(),
                port: 9092,
                rack: None,
            }],
            topics: vec![
                TopicInfo {
                    name: "t\"1".into(),
                    id: [0xfb; 16],
                    internal: false,
                    error: None,
                    partitions: vec![PartitionInfo {
                        id: 0,
                        leader: 1,
                        leader_epoch: 0,
                        replicas: vec![1],
                        isr: vec![1],
                        offline: vec![],
                        error: None,
                    }],
                },
                TopicInfo {
                    name: "nope".into(),
                    id: [0; 16],
                    internal: false,
                    error: Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
                    partitions: vec![],
                },
            ],
            query: vec!["t\"1".into(), "nope".into()],
        }
    }

    #[test]
    fn text_reads_like_kcat() {
        let t = sample().render_text();
        assert!(
            t.starts_with("Metadata for topic(s) t\"1, nope (from broker 127.0.0.1:9092/1):\n"),
            "{t}"
        );
        assert!(
            t.contains("  broker 1 at 127.0.0.1:9092 (controller)\n"),
            "{t}"
        );
        assert!(
            t.contains("    partition 0, leader 1, replicas: 1, isrs: 1\n"),
            "{t}"
        );
        assert!(
            t.contains("  topic \"nope\" error: UnknownTopicOrPartition (3): "),
            "{t}"
        );
        assert!(t.contains("(no such topic: check the name"), "{t}");
    }

    #[test]
    fn json_is_valid_and_escaped() {
        let j = sample().render_json();
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["topics"][0]["topic"], "t\"1");
        assert_eq!(v["topics"][0]["partitions"][0]["replicas"][0]["id"], 1);
        assert_eq!(v["topics"][0]["topic_id"], "-_v7-_v7-_v7-_v7-_v7-w");
        assert!(
            v["topics"][1]["error"]
                .as_str()
                .unwrap()
                .starts_with("UnknownTopicOrPartition (3)")
        );
        assert_eq!(v["controllerid"], 1);
        assert_eq!(v["originating_broker"]["id"], 1);
    }
}
