//! `weir lag`: a lag exporter for any consumer groups, whatever client they run.
//!
//! Every `--interval-ms` it describes each group (by name, or every group whose id
//! matches `--group-regex`) the way `weir groups describe` does: committed offsets
//! from the group coordinator, log ends from the partitions' leaders; and, for each
//! partition behind, the timestamp of the oldest record the group has not consumed.
//! The snapshot is served at `--metrics-addr` under the names of the seed's alert
//! rules (`kafka_consumer_lag`, `kafka_consumer_lag_sum`), with a `group` label, so
//! `alerts/weir-alerts.yml` works on it unchanged, plus the committed offset, the log
//! end, the time lag, and the process metrics.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use weir_consumer::config::ConsumerConfig;

use crate::admin::{AdminError, Client, Tp, describe_group, first_timestamps, list_groups};

/// Which groups to export.
#[derive(Debug, Clone)]
pub enum Selector {
    /// These group ids.
    Names(Vec<String>),
    /// Every group whose id matches (ListGroups on every broker, each interval).
    Regex(regex_lite::Regex),
}

/// One partition of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionLag {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The committed offset.
    pub committed: i64,
    /// The log end (high watermark).
    pub log_end: i64,
    /// Milliseconds since the epoch of the oldest unconsumed record, when behind.
    pub oldest_unconsumed_ms: Option<i64>,
}

/// One group's snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupLag {
    /// The group id.
    pub group: String,
    /// Its state (Stable, Empty, ...).
    pub state: String,
    /// Its members.
    pub members: usize,
    /// The partitions it has committed offsets for, by topic and partition.
    pub partitions: Vec<PartitionLag>,
}

/// Describes the selected groups now.
pub fn collect(cfg: &ConsumerConfig, selector: &Selector) -> Result<Vec<GroupLag>, AdminError> {
    let names: Vec<String> = match selector {
        Selector::Names(n) => n.clone(),
        Selector::Regex(re) => list_groups(cfg)?
            .into_iter()
            .map(|g| g.group_id)
            .filter(|g| re.is_match(g))
            .collect(),
    };
    let mut out = Vec::new();
    for g in names {
        let d = match describe_group(cfg, &g) {
            Ok(d) => d,
            // A group that went away (or never committed) exports nothing.
            Err(AdminError::UnknownGroup { .. }) => continue,
            Err(e) => return Err(e),
        };
        let mut partitions: Vec<PartitionLag> = d
            .partitions
            .iter()
            .filter_map(|p| {
                Some(PartitionLag {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    committed: p.committed?,
                    log_end: p.log_end?,
                    oldest_unconsumed_ms: None,
                })
            })
            .collect();
        let behind: Vec<(Tp, i64)> = partitions
            .iter()
            .filter(|p| p.log_end > p.committed)
            .map(|p| ((p.topic.clone(), p.partition), p.committed))
            .collect();
        if !behind.is_empty() {
            let mut c = Client::new(cfg)?;
            let ts = first_timestamps(&mut c, &behind)?;
            for p in &mut partitions {
                p.oldest_unconsumed_ms = ts.get(&(p.topic.clone(), p.partition)).copied();
            }
        }
        out.push(GroupLag {
            group: g,
            state: d.state,
            members: d.members.len(),
            partitions,
        });
    }
    Ok(out)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartLabels {
    group: String,
    topic: String,
    partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: String,
}

/// The snapshot as OpenMetrics text (without the process metrics). `now_ms` dates
/// the time lag.
pub fn render(groups: &[GroupLag], now_ms: i64, scrapes: &ExporterStats) -> String {
    let mut reg = Registry::default();
    let lag = Family::<PartLabels, Gauge>::default();
    let committed = Family::<PartLabels, Gauge>::default();
    let log_end = Family::<PartLabels, Gauge>::default();
    let time_lag = Family::<PartLabels, Gauge<f64, AtomicU64>>::default();
    let lag_sum = Family::<GroupLabels, Gauge>::default();
    let members = Family::<GroupLabels, Gauge>::default();
    for g in groups {
        let mut sum = 0;
        for p in &g.partitions {
            let l = PartLabels {
                group: g.group.clone(),
                topic: p.topic.clone(),
                partition: p.partition,
            };
            let behind = (p.log_end - p.committed).max(0);
            sum += behind;
            lag.get_or_create(&l).set(behind);
            committed.get_or_create(&l).set(p.committed);
            log_end.get_or_create(&l).set(p.log_end);
            let seconds = match (behind, p.oldest_unconsumed_ms) {
                (0, _) => Some(0.0),
                (_, Some(ts)) => Some(((now_ms - ts).max(0)) as f64 / 1000.0),
                (_, None) => None,
            };
            if let Some(s) = seconds {
                time_lag.get_or_create(&l).set(s);
            }
        }
        let gl = GroupLabels {
            group: g.group.clone(),
        };
        lag_sum.get_or_create(&gl).set(sum);
        members.get_or_create(&gl).set(g.members as i64);
    }
    reg.register(
        "kafka_consumer_lag",
        "Log end minus the group's committed offset, per partition",
        lag,
    );
    reg.register(
        "kafka_consumer_lag_sum",
        "Sum of kafka_consumer_lag over the group's partitions",
        lag_sum,
    );
    reg.register(
        "kafka_consumer_committed_offset",
        "The group's committed offset, per partition",
        committed,
    );
    reg.register(
        "kafka_consumer_log_end_offset",
        "The partition's log end offset (high watermark)",
        log_end,
    );
    reg.register(
        "kafka_consumer_lag_seconds",
        "Age of the oldest record the group has not consumed (0 when caught up), from record timestamps",
        time_lag,
    );
    reg.register(
        "kafka_consumer_group_members",
        "Members of the group",
        members,
    );
    let polls = Counter::<u64>::default();
    polls.inc_by(scrapes.polls.load(Ordering::Relaxed));
    let errors = Counter::<u64>::default();
    errors.inc_by(scrapes.errors.load(Ordering::Relaxed));
    reg.register(
        "weir_lag_exporter_polls",
        "Snapshots taken of the groups",
        polls,
    );
    reg.register(
        "weir_lag_exporter_poll_errors",
        "Snapshots that failed (the previous one is served meanwhile)",
        errors,
    );
    let mut out = String::new();
    // Encoding into a String cannot fail: fmt::Write for String never errors.
    let _ = prometheus_client::encoding::text::encode(&mut out, &reg);
    out
}

/// Counters of the exporter's own work.
#[derive(Debug, Default)]
pub struct ExporterStats {
    /// Snapshots taken.
    pub polls: AtomicU64,
    /// Snapshots that failed.
    pub errors: AtomicU64,
}

/// What the `/metrics` endpoint serves: the last good snapshot.
#[derive(Debug, Default)]
pub struct Exported {
    text: Mutex<String>,
}

impl Exported {
    /// Replaces the served snapshot.
    pub fn set(&self, text: String) {
        *self
            .text
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = text;
    }
}

impl crate::metrics::Scrape for Exported {
    fn scrape(&self) -> String {
        let text = self
            .text
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        crate::metrics::with_process_metrics(text)
    }
}

/// Milliseconds since the epoch now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A one-line summary of a snapshot, for `-d` style progress on stderr.
pub fn summary(groups: &[GroupLag]) -> String {
    let mut per: BTreeMap<&str, i64> = BTreeMap::new();
    for g in groups {
        per.insert(
            &g.group,
            g.partitions
                .iter()
                .map(|p| (p.log_end - p.committed).max(0))
                .sum(),
        );
    }
    let parts: Vec<String> = per.iter().map(|(g, l)| format!("{g}={l}")).collect();
    format!("{} group(s): {}", groups.len(), parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_uses_the_alert_rules_names_with_a_group_label() {
        let g = GroupLag {
            group: "ingest".into(),
            state: "Stable".into(),
            members: 2,
            partitions: vec![
                PartitionLag {
                    topic: "logs".into(),
                    partition: 0,
                    committed: 90,
                    log_end: 100,
                    oldest_unconsumed_ms: Some(1_000),
                },
                PartitionLag {
                    topic: "logs".into(),
                    partition: 1,
                    committed: 50,
                    log_end: 50,
                    oldest_unconsumed_ms: None,
                },
            ],
        };
        let t = render(&[g], 31_000, &ExporterStats::default());
        assert!(
            t.contains("kafka_consumer_lag{group=\"ingest\",topic=\"logs\",partition=\"0\"} 10\n"),
            "{t}"
        );
        assert!(
            t.contains("kafka_consumer_lag_sum{group=\"ingest\"} 10\n"),
            "{t}"
        );
        assert!(
            t.contains(
                "kafka_consumer_lag_seconds{group=\"ingest\",topic=\"logs\",partition=\"0\"} 30.0\n"
            ),
            "{t}"
        );
        assert!(
            t.contains(
                "kafka_consumer_lag_seconds{group=\"ingest\",topic=\"logs\",partition=\"1\"} 0.0\n"
            ),
            "{t}"
        );
        assert!(t.contains("kafka_consumer_committed_offset{group=\"ingest\",topic=\"logs\",partition=\"1\"} 50\n"), "{t}");
        assert!(
            t.contains("kafka_consumer_group_members{group=\"ingest\"} 2\n"),
            "{t}"
        );
        assert!(t.ends_with("# EOF\n"), "{t}");
    }
}
