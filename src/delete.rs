//! `weir groups delete` and `weir groups delete-offsets`: Kafka's DeleteGroups and
//! OffsetDelete, as `kafka-consumer-groups --delete` and `--delete-offsets` send them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use kafka_protocol::messages as kp;
use weir_consumer::config::ConsumerConfig;
use weir_protocol::ErrorCode;
use weir_protocol::ResponseBody;
use weir_protocol::messages::group::{DeleteGroupsResponse, OffsetDeleteResponse};

use crate::admin::topic_partitions;
use crate::admin::{
    AdminError, Client, Step, Tp, coordinator_moved, decode_err, find_coordinator, sb, show,
};

/// Deletes `group` (its committed offsets and its metadata). Refused by the
/// coordinator while the group has members.
pub fn delete_group(cfg: &ConsumerConfig, group: &str) -> Result<(), AdminError> {
    let mut c = Client::new(cfg)?;
    c.retry("DeleteGroups", |c| {
        let (coord, _) = match find_coordinator(c, group)? {
            Step::Done(found) => found,
            Step::Retry(why) => return Ok(Step::Retry(why)),
        };
        let (addr, v, body) = c.call::<kp::DeleteGroupsRequest, DeleteGroupsResponse<'static>>(
            std::slice::from_ref(&coord),
            "group coordinator",
            i16::MAX,
            |_| kp::DeleteGroupsRequest::default().with_groups_names(vec![kp::GroupId(sb(group))]),
        )?;
        let r = DeleteGroupsResponse::decode_body(&body, v)
            .map_err(decode_err("DeleteGroups", &addr))?;
        let code = r
            .results
            .iter()
            .find(|g| g.group_id == group)
            .map_or(ErrorCode::NONE, |g| g.error_code);
        match code {
            ErrorCode::NONE => Ok(Step::Done(())),
            c if coordinator_moved(c) || c.is_retriable() => Ok(Step::Retry(format!(
                "{} answered DeleteGroups with {c}",
                show(&addr)
            ))),
            ErrorCode::NON_EMPTY_GROUP => Err(AdminError::Refused(format!(
                "consumer group `{group}` has active members, so it cannot be deleted: stop its consumers first (`weir groups describe {group}` lists them)"
            ))),
            ErrorCode::GROUP_ID_NOT_FOUND => Err(AdminError::Refused(format!(
                "consumer group `{group}` does not exist: check the name with `weir groups list`"
            ))),
            c => Err(AdminError::Broker {
                api: "DeleteGroups",
                addr: show(&addr),
                code: c,
            }),
        }
    })
}

/// One partition's outcome of `delete-offsets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetDeleted {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// `None`: deleted.
    pub error: Option<ErrorCode>,
}

/// Deletes `group`'s committed offsets of `topics` (every partition of a topic named
/// without partitions). A topic the group's members are subscribed to is refused
/// per partition (GROUP_SUBSCRIBED_TO_TOPIC), as Kafka does.
pub fn delete_offsets(
    cfg: &ConsumerConfig,
    group: &str,
    topics: &[(String, Option<Vec<i32>>)],
) -> Result<Vec<OffsetDeleted>, AdminError> {
    let mut c = Client::new(cfg)?;
    let wanted: BTreeSet<Tp> = topic_partitions(&mut c, topics)?;
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in &wanted {
        by_topic.entry(t).or_default().push(*p);
    }
    c.retry("OffsetDelete", |c| {
        let (coord, _) = match find_coordinator(c, group)? {
            Step::Done(found) => found,
            Step::Retry(why) => return Ok(Step::Retry(why)),
        };
        let req_topics: Vec<kp::offset_delete_request::OffsetDeleteRequestTopic> = by_topic
            .iter()
            .map(|(t, ps)| {
                kp::offset_delete_request::OffsetDeleteRequestTopic::default()
                    .with_name(kp::TopicName(sb(t)))
                    .with_partitions(
                        ps.iter()
                            .map(|p| {
                                kp::offset_delete_request::OffsetDeleteRequestPartition::default()
                                    .with_partition_index(*p)
                            })
                            .collect(),
                    )
            })
            .collect();
        let (addr, v, body) = c.call::<kp::OffsetDeleteRequest, OffsetDeleteResponse<'static>>(
            std::slice::from_ref(&coord),
            "group coordinator",
            i16::MAX,
            |_| {
                kp::OffsetDeleteRequest::default()
                    .with_group_id(kp::GroupId(sb(group)))
                    .with_topics(req_topics.clone())
            },
        )?;
        let r = OffsetDeleteResponse::decode_body(&body, v)
            .map_err(decode_err("OffsetDelete", &addr))?;
        match r.error_code {
            ErrorCode::NONE => {}
            code if coordinator_moved(code) || code.is_retriable() => {
                return Ok(Step::Retry(format!(
                    "{} answered OffsetDelete with {code}",
                    show(&addr)
                )));
            }
            ErrorCode::GROUP_ID_NOT_FOUND => {
                return Err(AdminError::Refused(format!(
                    "consumer group `{group}` does not exist: check the name with `weir groups list`"
                )));
            }
            code => {
                return Err(AdminError::Broker {
                    api: "OffsetDelete",
                    addr: show(&addr),
                    code,
                });
            }
        }
        let mut out = Vec::new();
        for t in &r.topics {
            for p in &t.partitions {
                out.push(OffsetDeleted {
                    topic: t.name.to_owned(),
                    partition: p.partition_index,
                    error: p.error_code.is_err().then_some(p.error_code),
                });
            }
        }
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(Step::Done(out))
    })
}

/// The outcome as Kafka's tool prints it: a TOPIC PARTITION STATUS table.
pub fn render_deleted(rows: &[OffsetDeleted]) -> String {
    let status = |r: &OffsetDeleted| match r.error {
        None => "Successful".to_owned(),
        Some(ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC) => {
            "Error: the group's members are subscribed to this topic".to_owned()
        }
        Some(e) => format!("Error: {e}"),
    };
    let tw = rows.iter().map(|r| r.topic.len()).max().unwrap_or(0).max(5);
    let mut s = String::new();
    let _ = writeln!(s, "\n{:<tw$} {:<9} STATUS", "TOPIC", "PARTITION");
    for r in rows {
        let _ = writeln!(s, "{:<tw$} {:<9} {}", r.topic, r.partition, status(r));
    }
    s
}
