//! `weir groups reset-offsets`: Kafka's reset specifications for a consumer group's
//! committed offsets, planned as `kafka-consumer-groups --reset-offsets` plans them,
//! printed (a dry run, by default), exported as CSV, or committed with `--execute`.
//!
//! The rules follow Kafka's tool:
//! * only an inactive group (no members: state Empty, or a group that does not exist
//!   yet) can be reset;
//! * `--topic T` means every partition of T, `--topic T:0,2` those partitions, and
//!   `--all-topics` every partition the group has committed offsets for;
//! * a new offset outside the log is moved to its nearest end (said on stderr);
//! * `--to-current` and `--to-datetime` fall back to the log end for a partition with
//!   no committed offset or no record at or after the time; `--shift-by` needs a
//!   committed offset.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use kafka_protocol::messages as kp;
use weir_consumer::config::ConsumerConfig;
use weir_protocol::ErrorCode;
use weir_protocol::ResponseBody;
use weir_protocol::messages::group::OffsetCommitResponse;

use crate::admin::topic_partitions;
use crate::admin::{
    AdminError, Client, Step, Tp, coordinator_moved, decode_err, describe_group, find_coordinator,
    list_offsets, sb, show,
};

/// What to reset to (exactly one per run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// `--to-earliest`: the log start.
    Earliest,
    /// `--to-latest`: the log end.
    Latest,
    /// `--to-current`: the committed offset (the log end where there is none).
    Current,
    /// `--to-offset N`.
    Offset(i64),
    /// `--shift-by N`: the committed offset plus N (negative: back).
    ShiftBy(i64),
    /// `--to-datetime` / `--by-duration`: the first offset at or after this time
    /// (milliseconds since the epoch).
    Timestamp(i64),
    /// `--from-file`: the offsets a CSV names.
    FromFile(BTreeMap<Tp, i64>),
}

/// Which partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// `--topic T` (all partitions, `None`) or `--topic T:0,1`.
    Topics(Vec<(String, Option<Vec<i32>>)>),
    /// `--all-topics`: every partition with a committed offset.
    AllTopics,
}

/// One partition of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRow {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The group's committed offset now, if any.
    pub current: Option<i64>,
    /// The offset it is reset to.
    pub new: i64,
}

/// A reset plan: the new offset of every partition in scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The group.
    pub group: String,
    /// By topic and partition.
    pub rows: Vec<PlanRow>,
    /// New offsets moved into the log (for stderr).
    pub notes: Vec<String>,
}

/// Parses `--topic T` or `--topic T:0,2`.
pub fn parse_topic(arg: &str) -> Result<(String, Option<Vec<i32>>), String> {
    match arg.split_once(':') {
        None if !arg.is_empty() => Ok((arg.to_owned(), None)),
        None => Err("--topic needs a topic name".into()),
        Some((t, ps)) => {
            if t.is_empty() {
                return Err(format!("--topic {arg}: no topic name before the `:`"));
            }
            let parts = ps
                .split(',')
                .map(|p| {
                    p.trim()
                        .parse::<i32>()
                        .ok()
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| {
                            format!("--topic {arg}: `{p}` is not a partition number (T:0,1,2)")
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((t.to_owned(), Some(parts)))
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The local time zone's offset from UTC at `utc_s`, in seconds.
fn local_offset_s(utc_s: i64) -> i64 {
    let t: libc::time_t = utc_s as libc::time_t;
    // SAFETY: localtime_r writes only into the tm we own; a zeroed tm is valid input.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if ok { tm.tm_gmtoff } else { 0 }
}

/// Kafka's `--to-datetime` form: `YYYY-MM-DDTHH:mm:SS[.sss][Z|+hh:mm|-hh:mm]`, local
/// time when no zone is given (as Kafka's tool reads it). Milliseconds since the epoch.
pub fn parse_datetime(s: &str) -> Result<i64, String> {
    let bad = || {
        format!(
            "--to-datetime {s}: expected YYYY-MM-DDTHH:mm:SS.sss with an optional zone (Z, +hh:mm, -hh:mm), e.g. 2026-12-06T09:30:00.000Z"
        )
    };
    let (date, time) = s.split_once('T').ok_or_else(bad)?;
    let num = |t: &str, len: usize| -> Result<i64, String> {
        if t.len() != len || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        t.parse().map_err(|_| bad())
    };
    let dp: Vec<&str> = date.split('-').collect();
    let [y, mo, d] = dp.as_slice() else {
        return Err(bad());
    };
    let (y, mo, d) = (num(y, 4)?, num(mo, 2)?, num(d, 2)?);
    // The zone: Z, or a sign after the seconds.
    let (clock, zone) = if let Some(c) = time.strip_suffix('Z') {
        (c, Some(0))
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, z) = time.split_at(i);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let (zh, zm) = z[1..].split_once(':').ok_or_else(bad)?;
        (c, Some(sign * (num(zh, 2)? * 3600 + num(zm, 2)? * 60)))
    } else {
        (time, None)
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((h, f)) => (h, f),
        None => (clock, ""),
    };
    let tp: Vec<&str> = hms.split(':').collect();
    let [h, mi, sec] = tp.as_slice() else {
        return Err(bad());
    };
    let (h, mi, sec) = (num(h, 2)?, num(mi, 2)?, num(sec, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    let ms = if frac.is_empty() {
        0
    } else {
        if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let f: i64 = frac.parse().map_err(|_| bad())?;
        f * 1000 / 10_i64.pow(frac.len() as u32)
    };
    let wall = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec;
    let offset = zone.unwrap_or_else(|| local_offset_s(wall));
    Ok((wall - offset) * 1000 + ms)
}

/// Kafka's `--by-duration` form, Java's `Duration`: `PnDTnHnMn.nS` (any part may be
/// left out, `T` before the time parts). Milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || {
        format!(
            "--by-duration {s}: expected an ISO-8601 duration PnDTnHnMnS, e.g. P1DT2H30M or PT15M"
        )
    };
    let rest = s
        .strip_prefix('P')
        .or_else(|| s.strip_prefix('p'))
        .ok_or_else(bad)?;
    let (days, time) = match rest.split_once(['T', 't']) {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut ms: i64 = 0;
    let mut any = false;
    if !days.is_empty() {
        let n = days.strip_suffix(['D', 'd']).ok_or_else(bad)?;
        ms += n.parse::<i64>().map_err(|_| bad())? * 86_400_000;
        any = true;
    }
    if let Some(t) = time {
        let mut num = String::new();
        let mut parts = 0;
        for c in t.chars() {
            match c {
                '0'..='9' | '.' => num.push(c),
                'H' | 'h' | 'M' | 'm' | 'S' | 's' => {
                    let v: f64 = num.parse().map_err(|_| bad())?;
                    let unit = match c.to_ascii_uppercase() {
                        'H' => 3_600_000.0,
                        'M' => 60_000.0,
                        _ => 1000.0,
                    };
                    ms += (v * unit).round() as i64;
                    num.clear();
                    parts += 1;
                }
                _ => return Err(bad()),
            }
        }
        if parts == 0 || !num.is_empty() {
            return Err(bad());
        }
        any = true;
    }
    if !any {
        return Err(bad());
    }
    Ok(ms)
}

/// Reads a `--from-file` CSV: `topic,partition,offset` lines (Kafka's `--export`
/// format; a leading group column, as Kafka writes for several groups, is accepted
/// when it names this group).
pub fn parse_csv(text: &str, group: &str) -> Result<BTreeMap<Tp, i64>, String> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        let (t, p, o) = match cols.as_slice() {
            [t, p, o] => (*t, *p, *o),
            [g, t, p, o] if *g == group => (*t, *p, *o),
            [g, ..] if cols.len() == 4 => {
                return Err(format!("line {}: for group `{g}`, not `{group}`", n + 1));
            }
            _ => {
                return Err(format!(
                    "line {}: expected topic,partition,offset, got `{line}`",
                    n + 1
                ));
            }
        };
        let p: i32 = p
            .parse()
            .map_err(|_| format!("line {}: `{p}` is not a partition", n + 1))?;
        let o: i64 = o
            .parse()
            .map_err(|_| format!("line {}: `{o}` is not an offset", n + 1))?;
        out.insert((t.to_owned(), p), o);
    }
    if out.is_empty() {
        return Err("the file names no partitions".into());
    }
    Ok(out)
}

/// Plans the reset of `group` over `scope` to `spec` (nothing is changed).
pub fn plan(
    cfg: &ConsumerConfig,
    group: &str,
    scope: &Scope,
    spec: &Spec,
) -> Result<Plan, AdminError> {
    // The group's state and committed offsets.
    let (state, members, committed) = match describe_group(cfg, group) {
        Ok(d) => {
            let committed: BTreeMap<Tp, i64> = d
                .partitions
                .iter()
                .filter_map(|p| Some(((p.topic.clone(), p.partition), p.committed?)))
                .collect();
            (d.state, d.members.len(), committed)
        }
        // No members and no commits: nothing stands in the way.
        Err(AdminError::UnknownGroup { .. }) => ("Dead".to_owned(), 0, BTreeMap::new()),
        Err(e) => return Err(e),
    };
    if members > 0 || !(state == "Empty" || state == "Dead") {
        return Err(AdminError::Refused(format!(
            "consumer group `{group}` is active (state {state}, {members} member(s)): offsets can only be reset while it has no members; stop its consumers first (`weir groups describe {group}` lists them)"
        )));
    }
    let mut c = Client::new(cfg)?;
    // The partitions in scope.
    let wanted: BTreeSet<Tp> = match (scope, spec) {
        (_, Spec::FromFile(offsets)) if *scope == Scope::AllTopics => {
            offsets.keys().cloned().collect()
        }
        (Scope::AllTopics, _) => {
            if committed.is_empty() {
                return Err(AdminError::Refused(format!(
                    "consumer group `{group}` has no committed offsets, so --all-topics names no partitions: give them with --topic T"
                )));
            }
            committed.keys().cloned().collect()
        }
        (Scope::Topics(list), _) => topic_partitions(&mut c, list)?,
    };
    if let Spec::FromFile(offsets) = spec {
        if let Some((t, p)) = wanted.iter().find(|k| !offsets.contains_key(*k)) {
            return Err(AdminError::Refused(format!(
                "--from-file has no offset for {t}-{p}, which --topic names: add it to the file or narrow --topic"
            )));
        }
    }
    // The log's ends (for every spec: new offsets are kept inside the log), and the
    // timestamp lookups, from each partition's leader.
    let names: Vec<&str> = wanted
        .iter()
        .map(|(t, _)| t.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let md = c.metadata(Some(&names))?;
    let mut by_leader: BTreeMap<i32, Vec<Tp>> = BTreeMap::new();
    for k in &wanted {
        match md.leaders.get(k) {
            Some(&l) if l >= 0 => by_leader.entry(l).or_default().push(k.clone()),
            _ => {
                return Err(AdminError::Refused(format!(
                    "{}-{} has no leader right now: try again once it is elected",
                    k.0, k.1
                )));
            }
        }
    }
    let mut earliest = HashMap::new();
    let mut latest = HashMap::new();
    let mut at_time = HashMap::new();
    for (leader, parts) in &by_leader {
        let Some(addr) = md.brokers.get(leader).cloned() else {
            return Err(AdminError::Refused(format!(
                "the metadata names leader {leader}, which is not in its broker list: try again"
            )));
        };
        earliest.extend(list_offsets(&mut c, &addr, parts, -2)?);
        latest.extend(list_offsets(&mut c, &addr, parts, -1)?);
        if let Spec::Timestamp(ts) = spec {
            at_time.extend(list_offsets(&mut c, &addr, parts, *ts)?);
        }
    }
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for k in wanted {
        let (Some(&lo), Some(&hi)) = (earliest.get(&k), latest.get(&k)) else {
            return Err(AdminError::Refused(format!(
                "the leader of {}-{} did not give its log's start and end: try again",
                k.0, k.1
            )));
        };
        let current = committed.get(&k).copied();
        let target = match spec {
            Spec::Earliest => lo,
            Spec::Latest => hi,
            Spec::Current => current.unwrap_or(hi),
            Spec::Offset(n) => *n,
            Spec::ShiftBy(n) => match current {
                Some(cur) => cur.saturating_add(*n),
                None => {
                    return Err(AdminError::Refused(format!(
                        "cannot shift {}-{}: the group has no committed offset for it (use --to-offset, --to-earliest or --to-latest)",
                        k.0, k.1
                    )));
                }
            },
            Spec::Timestamp(_) => at_time.get(&k).copied().unwrap_or(hi),
            Spec::FromFile(offsets) => offsets.get(&k).copied().unwrap_or(hi),
        };
        let new = if target > hi {
            notes.push(format!(
                "new offset {target} for {}-{} is past its log end; {hi} is used",
                k.0, k.1
            ));
            hi
        } else if target < lo {
            notes.push(format!(
                "new offset {target} for {}-{} is before its log start; {lo} is used",
                k.0, k.1
            ));
            lo
        } else {
            target
        };
        rows.push(PlanRow {
            topic: k.0,
            partition: k.1,
            current,
            new,
        });
    }
    Ok(Plan {
        group: group.to_owned(),
        rows,
        notes,
    })
}

impl Plan {
    /// The plan as Kafka's tool prints it, with the current offset beside the new.
    pub fn render(&self) -> String {
        let mut table = vec![vec![
            "GROUP".to_owned(),
            "TOPIC".to_owned(),
            "PARTITION".to_owned(),
            "CURRENT-OFFSET".to_owned(),
            "NEW-OFFSET".to_owned(),
        ]];
        for r in &self.rows {
            table.push(vec![
                self.group.clone(),
                r.topic.clone(),
                r.partition.to_string(),
                r.current.map_or_else(|| "-".to_owned(), |c| c.to_string()),
                r.new.to_string(),
            ]);
        }
        let widths: Vec<usize> = (0..5)
            .map(|i| table.iter().map(|r| r[i].len()).max().unwrap_or(0))
            .collect();
        let mut out = String::from("\n");
        for r in &table {
            let line: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            let _ = writeln!(out, "{}", line.join(" ").trim_end());
        }
        out
    }

    /// Kafka's `--export` CSV: `topic,partition,offset` per line.
    pub fn csv(&self) -> String {
        let mut out = String::new();
        for r in &self.rows {
            let _ = writeln!(out, "{},{},{}", r.topic, r.partition, r.new);
        }
        out
    }
}

/// Commits `plan` for its group (`--execute`): an OffsetCommit outside any
/// generation, as Kafka's admin client sends it, which the coordinator accepts only
/// while the group has no members.
pub fn execute(cfg: &ConsumerConfig, plan: &Plan) -> Result<(), AdminError> {
    let mut c = Client::new(cfg)?;
    let group = plan.group.as_str();
    c.retry("OffsetCommit", |c| {
        let (coord, _) = match find_coordinator(c, group)? {
            Step::Done(found) => found,
            Step::Retry(why) => return Ok(Step::Retry(why)),
        };
        let mut by_topic: BTreeMap<&str, Vec<kp::offset_commit_request::OffsetCommitRequestPartition>> =
            BTreeMap::new();
        for r in &plan.rows {
            by_topic.entry(&r.topic).or_default().push(
                kp::offset_commit_request::OffsetCommitRequestPartition::default()
                    .with_partition_index(r.partition)
                    .with_committed_offset(r.new)
                    .with_committed_metadata(Some(sb(""))),
            );
        }
        let topics: Vec<kp::offset_commit_request::OffsetCommitRequestTopic> = by_topic
            .into_iter()
            .map(|(t, ps)| {
                kp::offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(kp::TopicName(sb(t)))
                    .with_partitions(ps)
            })
            .collect();
        let (addr, v, body) = c.call::<kp::OffsetCommitRequest, OffsetCommitResponse<'static>>(
            std::slice::from_ref(&coord),
            "group coordinator",
            i16::MAX,
            |v| {
                let mut req = kp::OffsetCommitRequest::default()
                    .with_group_id(kp::GroupId(sb(group)))
                    .with_generation_id_or_member_epoch(-1)
                    .with_member_id(sb(""))
                    .with_topics(topics.clone());
                if (2..=4).contains(&v) {
                    req = req.with_retention_time_ms(-1);
                }
                req
            },
        )?;
        let r = OffsetCommitResponse::decode_body(&body, v)
            .map_err(decode_err("OffsetCommit", &addr))?;
        let mut first_error: Option<ErrorCode> = None;
        for t in &r.topics {
            for p in &t.partitions {
                if p.error_code.is_err() {
                    first_error.get_or_insert(p.error_code);
                }
            }
        }
        match first_error {
            None => Ok(Step::Done(())),
            Some(code) if coordinator_moved(code) || code.is_retriable() => Ok(Step::Retry(
                format!("{} answered OffsetCommit with {code}", show(&addr)),
            )),
            Some(code)
                if code == ErrorCode::UNKNOWN_MEMBER_ID
                    || code == ErrorCode::ILLEGAL_GENERATION
                    || code == ErrorCode::REBALANCE_IN_PROGRESS =>
            {
                Err(AdminError::Refused(format!(
                    "the coordinator refused the reset ({code}): consumer group `{group}` gained members after the plan was made; stop them and run the command again"
                )))
            }
            Some(code) => Err(AdminError::Broker {
                api: "OffsetCommit",
                addr: show(&addr),
                code,
            }),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_partitions() {
        assert_eq!(parse_topic("t").unwrap(), ("t".into(), None));
        assert_eq!(
            parse_topic("t:0,2").unwrap(),
            ("t".into(), Some(vec![0, 2]))
        );
        assert!(
            parse_topic("t:x")
                .unwrap_err()
                .contains("not a partition number")
        );
        assert!(parse_topic(":1").is_err());
    }

    #[test]
    fn datetimes_in_kafkas_form() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00.000Z").unwrap(), 0);
        assert_eq!(
            parse_datetime("2026-12-06T09:30:00.250Z").unwrap(),
            1_796_549_400_250
        );
        assert_eq!(
            parse_datetime("2026-12-06T10:30:00+01:00").unwrap(),
            1_796_549_400_000
        );
        assert_eq!(
            parse_datetime("2026-12-06T04:00:00.5-05:30").unwrap(),
            1_796_549_400_500
        );
        assert!(parse_datetime("2026-12-06 09:30:00").is_err());
        assert!(parse_datetime("2026-13-06T09:30:00Z").is_err());
    }

    #[test]
    fn durations_in_javas_form() {
        assert_eq!(parse_duration("PT15M").unwrap(), 900_000);
        assert_eq!(parse_duration("P1DT2H30M").unwrap(), 95_400_000);
        assert_eq!(parse_duration("P2D").unwrap(), 172_800_000);
        assert_eq!(parse_duration("PT1.5S").unwrap(), 1500);
        assert!(parse_duration("15m").is_err());
        assert!(parse_duration("P").is_err());
        assert!(parse_duration("PT").is_err());
        assert!(parse_duration("PT5").is_err());
    }

    #[test]
    fn csv_files_as_kafka_exports_them() {
        let m = parse_csv("t,0,5\nt,1,7\n\n", "g").unwrap();
        assert_eq!(m.get(&("t".into(), 1)), Some(&7));
        let m = parse_csv("g,t,0,5\n", "g").unwrap();
        assert_eq!(m.len(), 1);
        assert!(
            parse_csv("other,t,0,5\n", "g")
                .unwrap_err()
                .contains("for group `other`")
        );
        assert!(
            parse_csv("t,zero,5\n", "g")
                .unwrap_err()
                .contains("not a partition")
        );
        assert!(parse_csv("", "g").is_err());
    }

    #[test]
    fn the_plan_prints_like_kafkas_and_exports_csv() {
        let p = Plan {
            group: "g".into(),
            rows: vec![PlanRow {
                topic: "t".into(),
                partition: 0,
                current: None,
                new: 3,
            }],
            notes: vec![],
        };
        assert_eq!(
            p.render(),
            "\nGROUP TOPIC PARTITION CURRENT-OFFSET NEW-OFFSET\ng     t     0         -              3\n"
        );
        assert_eq!(p.csv(), "t,0,3\n");
    }
}
