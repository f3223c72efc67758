//! The `weir` command line: clap definitions and their mapping to configuration.
//!
//! `weir consume` takes kcat's consumer flags with kcat's meanings (`-C` itself is
//! accepted and ignored, so kcat command lines can be pasted). Everything is checked
//! here, before anything connects; [`ConsumeOpts::plan`] returns a [`ConsumePlan`] or a
//! [`CliError`] whose message is one line saying what to do.
//!
//! Configuration precedence, lowest first: Kafka's defaults, `--profile`, `-F FILE`,
//! `-b` and `-G`, then `-X name=value` (so `-X` always wins).
//!
//! Exit codes: [`EXIT_OK`] (0) success, [`EXIT_RUNTIME`] (1) a failure while running,
//! [`EXIT_USAGE`] (2) a usage or configuration error.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::format::{self, Style};
use weir_consumer::config::{
    self, ConfigBuilder, ConfigError, ConsumerConfig, Mode, Profile, Source,
};

/// Success.
pub const EXIT_OK: u8 = 0;
/// A failure while running (broker, file system, engine not available).
pub const EXIT_RUNTIME: u8 = 1;
/// A usage or configuration error, found before connecting.
pub const EXIT_USAGE: u8 = 2;

/// The `weir` program.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about = "A Kafka consumer with a zero-copy fetch path", long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The stderr logger's filter from `-d` and `-q` (a usage error for an unknown
    /// `-d` context).
    pub fn log_filter(&self) -> Result<crate::logger::Filter, CliError> {
        let (conn, quiet) = match &self.command {
            Command::Consume(o) => (&o.conn, o.quiet),
            Command::Groups {
                command: GroupsCommand::List { conn } | GroupsCommand::Describe { conn, .. },
            } => (conn, false),
            Command::Groups {
                command: GroupsCommand::ResetOffsets(r),
            } => (&r.conn, false),
            Command::Groups {
                command:
                    GroupsCommand::Delete { conn, .. } | GroupsCommand::DeleteOffsets { conn, .. },
            } => (conn, false),
            Command::Metadata(m) => (&m.conn, false),
            Command::Lag(l) => (&l.conn, false),
        };
        crate::logger::Filter::new(conn.debug.as_deref(), quiet).map_err(CliError::usage)
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consume records and print them (kcat -C compatible flags) or write them to a sink.
    Consume(Box<ConsumeOpts>),
    /// Inspect consumer groups.
    Groups {
        /// Which group operation.
        #[command(subcommand)]
        command: GroupsCommand,
    },
    /// List brokers, the controller, topics, partitions, leaders, replicas and ISRs (kcat -L).
    Metadata(MetadataOpts),
    /// Export any consumer groups' lag as Prometheus metrics (kafka_consumer_lag, kafka_consumer_lag_sum, committed offsets, log ends, time lag).
    Lag(LagOpts),
}

/// `weir lag` options.
#[derive(Debug, Args, Default)]
pub struct LagOpts {
    /// Connection options.
    #[command(flatten)]
    pub conn: ConnOpts,
    /// A group to export (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// Export every group whose id matches this regular expression (looked up again at each interval).
    #[arg(long, value_name = "REGEX", conflicts_with = "groups")]
    pub group_regex: Option<String>,
    /// Serve the metrics at http://ADDR/metrics (e.g. 127.0.0.1:9308).
    #[arg(long, value_name = "ADDR", required_unless_present = "once")]
    pub metrics_addr: Option<String>,
    /// How often the groups are described, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub interval_ms: u64,
    /// Take one snapshot, print it to stdout in the Prometheus text format, and exit.
    #[arg(long, conflicts_with = "metrics_addr")]
    pub once: bool,
}

/// `weir metadata` options.
#[derive(Debug, Args, Default)]
pub struct MetadataOpts {
    /// Connection options.
    #[command(flatten)]
    pub conn: ConnOpts,
    /// Only this topic (repeatable). A topic the cluster does not have is listed with its error and makes the exit status 1.
    #[arg(short = 't', value_name = "TOPIC")]
    pub topics: Vec<String>,
    /// One line of JSON (kcat's -L -J fields, plus cluster id, racks, topic ids, leader epochs, offline replicas).
    #[arg(short = 'J')]
    pub json: bool,
}

/// `weir groups ...`
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// List the cluster's consumer groups.
    List {
        /// Connection options.
        #[command(flatten)]
        conn: ConnOpts,
    },
    /// Show a group's state, members, assignments and lag.
    Describe {
        /// The group id.
        group: String,
        /// Connection options.
        #[command(flatten)]
        conn: ConnOpts,
    },
    /// Reset a group's committed offsets (Kafka's kafka-consumer-groups --reset-offsets).
    #[command(
        long_about = "Reset the committed offsets of an inactive consumer group, as Kafka's \
kafka-consumer-groups --reset-offsets does.\n\n\
Give the partitions with --topic (repeatable; T for all of a topic's partitions, \
T:0,1 for some) or --all-topics (every partition the group has committed), and exactly \
one reset specification. A new offset outside a partition's log is moved to the \
nearest end of the log, and said so on stderr.\n\n\
Without --execute, nothing changes: the plan (current and new offset per partition) \
is printed, or with --export written as CSV (topic,partition,offset) for --from-file. \
The group must have no active members; stop its consumers first."
    )]
    ResetOffsets(Box<ResetOpts>),
    /// Delete inactive groups: their committed offsets and metadata (kafka-consumer-groups --delete).
    Delete {
        /// The group id(s).
        #[arg(required = true)]
        groups: Vec<String>,
        /// Connection options.
        #[command(flatten)]
        conn: ConnOpts,
    },
    /// Delete a group's committed offsets of some topics (kafka-consumer-groups --delete-offsets); refused for topics its members subscribe to.
    DeleteOffsets {
        /// The group id.
        group: String,
        /// A topic: T (all its partitions) or T:P,P. Repeatable.
        #[arg(long = "topic", value_name = "TOPIC[:PARTITIONS]", required = true)]
        topics: Vec<String>,
        /// Connection options.
        #[command(flatten)]
        conn: ConnOpts,
    },
}

/// `weir groups reset-offsets` options.
#[derive(Debug, Args, Default)]
pub struct ResetOpts {
    /// The group id.
    pub group: String,
    /// Connection options.
    #[command(flatten)]
    pub conn: ConnOpts,
    /// A topic to reset: T (all its partitions) or T:P,P (those partitions). Repeatable.
    #[arg(long = "topic", value_name = "TOPIC[:PARTITIONS]")]
    pub topics: Vec<String>,
    /// Reset every partition the group has a committed offset for.
    #[arg(long)]
    pub all_topics: bool,
    /// Reset to the earliest offset in each partition's log.
    #[arg(long)]
    pub to_earliest: bool,
    /// Reset to the end of each partition's log.
    #[arg(long)]
    pub to_latest: bool,
    /// Reset to the committed offset (the log end where there is none): with --export, a backup of the current offsets.
    #[arg(long)]
    pub to_current: bool,
    /// Reset to this absolute offset.
    #[arg(long, value_name = "OFFSET")]
    pub to_offset: Option<i64>,
    /// Move each committed offset by N (negative: back). Needs a committed offset.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
    /// Reset to the first offset at or after this time: YYYY-MM-DDTHH:mm:SS.sss, with an optional zone (Z, +hh:mm); local time without one.
    #[arg(long, value_name = "DATETIME")]
    pub to_datetime: Option<String>,
    /// Reset to the first offset at or after this long ago: an ISO-8601 duration PnDTnHnMnS (e.g. PT30M, P1DT12H).
    #[arg(long, value_name = "DURATION")]
    pub by_duration: Option<String>,
    /// Reset to the offsets in this CSV file (topic,partition,offset per line, as --export writes).
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
    /// Show the plan without changing anything (the default).
    #[arg(long, conflicts_with = "execute")]
    pub dry_run: bool,
    /// Commit the new offsets.
    #[arg(long)]
    pub execute: bool,
    /// Print the plan as CSV (topic,partition,offset), for --from-file.
    #[arg(long)]
    pub export: bool,
}

impl ResetOpts {
    /// The scope and the one reset specification, checked.
    pub fn scope_and_spec(&self) -> Result<(crate::reset::Scope, crate::reset::Spec), CliError> {
        use crate::reset::{Scope, Spec};
        let scope = match (self.all_topics, self.topics.is_empty()) {
            (true, true) => Scope::AllTopics,
            (false, false) => Scope::Topics(
                self.topics
                    .iter()
                    .map(|t| crate::reset::parse_topic(t))
                    .collect::<Result<_, _>>()
                    .map_err(CliError::usage)?,
            ),
            (true, false) => {
                return Err(CliError::usage(
                    "--topic and --all-topics cannot be used together: name the topics or take all",
                ));
            }
            (false, true) => {
                return Err(CliError::usage(
                    "which partitions? give --topic TOPIC[:PARTITIONS] (repeatable) or --all-topics",
                ));
            }
        };
        let mut specs: Vec<Spec> = Vec::new();
        if self.to_earliest {
            specs.push(Spec::Earliest);
        }
        if self.to_latest {
            specs.push(Spec::Latest);
        }
        if self.to_current {
            specs.push(Spec::Current);
        }
        if let Some(n) = self.to_offset {
            specs.push(Spec::Offset(n));
        }
        if let Some(n) = self.shift_by {
            specs.push(Spec::ShiftBy(n));
        }
        if let Some(d) = &self.to_datetime {
            specs.push(Spec::Timestamp(
                crate::reset::parse_datetime(d).map_err(CliError::usage)?,
            ));
        }
        if let Some(d) = &self.by_duration {
            let ms = crate::reset::parse_duration(d).map_err(CliError::usage)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|_| CliError::runtime("the system clock is before 1970"))?
                .as_millis() as i64;
            specs.push(Spec::Timestamp(now - ms));
        }
        if let Some(f) = &self.from_file {
            let text = std::fs::read_to_string(f).map_err(|e| {
                CliError::usage(format!("--from-file {}: cannot read it: {e}", f.display()))
            })?;
            let offsets = crate::reset::parse_csv(&text, &self.group)
                .map_err(|e| CliError::usage(format!("--from-file {}: {e}", f.display())))?;
            specs.push(Spec::FromFile(offsets));
        }
        match specs.len() {
            1 => Ok((scope, specs.remove(0))),
            0 => Err(CliError::usage(
                "give one reset specification: --to-earliest, --to-latest, --to-current, --to-offset N, --shift-by N, --to-datetime T, --by-duration D or --from-file F",
            )),
            _ => Err(CliError::usage(
                "give only one reset specification (--to-earliest, --to-latest, --to-current, --to-offset, --shift-by, --to-datetime, --by-duration, --from-file)",
            )),
        }
    }
}

/// Options every subcommand that talks to a cluster takes.
#[derive(Debug, Args, Default)]
pub struct ConnOpts {
    /// Bootstrap brokers, host:port[,host:port...] (bootstrap.servers).
    #[arg(short = 'b', value_name = "BROKERS")]
    pub brokers: Option<String>,
    /// Set a Kafka consumer property, e.g. -X fetch.min.bytes=1024 (repeatable; wins over everything else).
    #[arg(short = 'X', value_name = "NAME=VALUE")]
    pub properties: Vec<String>,
    /// Read properties from a Java .properties file.
    #[arg(short = 'F', value_name = "FILE")]
    pub properties_file: Option<PathBuf>,
    /// Start from a preset: high-throughput, low-latency, reliable, stream-processing or cross-datacenter.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Debug output on stderr for these contexts (kcat's -d): all, or a comma-separated list of broker, fetch, cgrp (or consumer), metadata, protocol. Warnings are always printed (-q: errors only).
    #[arg(short = 'd', value_name = "CONTEXTS")]
    pub debug: Option<String>,
}

/// `weir consume` options.
#[derive(Debug, Args, Default)]
pub struct ConsumeOpts {
    /// Connection and configuration options.
    #[command(flatten)]
    pub conn: ConnOpts,
    /// Topic to consume (manual assignment).
    #[arg(short = 't', value_name = "TOPIC")]
    pub topic: Option<String>,
    /// Partition(s) to consume (repeatable or comma-separated).
    #[arg(short = 'p', value_name = "PARTITION", value_delimiter = ',')]
    pub partitions: Vec<i32>,
    /// Start offset: beginning, end, stored, N (absolute), -N (N before the end), s@TIMESTAMP_MS; and/or e@TIMESTAMP_MS to stop each partition at its first record at or after that time (given as a second -o, as in kcat).
    #[arg(short = 'o', value_name = "OFFSET", allow_hyphen_values = true)]
    pub offset: Vec<String>,
    /// Exit once every assigned partition has been read to its end. While no broker can
    /// be reached, -e does not end the run: with -p or -G weir keeps retrying (a
    /// warning per broker every 10 s) until the cluster answers or it is stopped;
    /// without either, listing the topic's partitions gives up after
    /// default.api.timeout.ms (60 s) with exit 1.
    #[arg(short = 'e')]
    pub exit_at_end: bool,
    /// Exit after COUNT records.
    #[arg(short = 'c', value_name = "COUNT")]
    pub count: Option<u64>,
    /// Group mode: join GROUP and subscribe to the TOPIC arguments.
    #[arg(short = 'G', value_name = "GROUP")]
    pub group: Option<String>,
    /// Topics to subscribe to in group mode (-G GROUP TOPIC...).
    #[arg(value_name = "TOPIC", requires = "group")]
    pub topics: Vec<String>,
    /// One JSON object per record (kcat's envelope).
    #[arg(short = 'J', conflicts_with = "format")]
    pub json: bool,
    /// Output format with kcat's tokens: %t %p %o %k %K %s %S %R %T %h, \n \t.
    #[arg(short = 'f', value_name = "FORMAT")]
    pub format: Option<String>,
    /// Print the key, then DELIM, before each value.
    #[arg(short = 'K', value_name = "DELIM")]
    pub key_delimiter: Option<String>,
    /// Message delimiter after each value (default a newline; escapes such as \n, \t, \0 work). Not with -f or -J.
    #[arg(short = 'D', value_name = "DELIM", conflicts_with_all = ["format", "json"])]
    pub delimiter: Option<String>,
    /// Unbuffered output: every record is written to stdout as soon as it is formatted (kcat's -u), instead of after each poll.
    #[arg(short = 'u')]
    pub unbuffered: bool,
    /// Do not exit on a partition's error (a corrupt batch, a partition the topic lacks, an out-of-range offset with auto.offset.reset=none, a broker error for one partition): warn, leave that partition, and go on with the others (kcat's -E). Errors of the whole consumer still end the run.
    #[arg(short = 'E')]
    pub keep_going: bool,
    /// Quiet: no progress line, warnings or summary.
    #[arg(short = 'q')]
    pub quiet: bool,
    /// Write records into segment files under DIR, exactly once across restarts.
    #[arg(long, value_name = "DIR")]
    pub sink: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9100).
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<String>,
    /// List every property weir accepts, with its default, and exit.
    #[arg(long)]
    pub help_properties: bool,
    /// kcat's consumer-mode flag; accepted and ignored.
    #[arg(short = 'C', hide = true)]
    pub kcat_consumer: bool,
}

/// Where each partition starts (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    /// `beginning`: the log start.
    Beginning,
    /// `end`: the log end (the default, as kcat).
    End,
    /// `stored`: the group's committed offset (needs `group.id`).
    Stored,
    /// `N`: an absolute offset.
    Absolute(i64),
    /// `-N`: N records before the end.
    FromEnd(i64),
    /// `s@TS`: the first record with a timestamp at or after TS (ms).
    Timestamp(i64),
}

impl StartOffset {
    /// Parses kcat's `-o` syntax.
    pub fn parse(s: &str) -> Result<Self, CliError> {
        let bad = || {
            CliError::usage(format!(
                "invalid -o value `{s}`: expected beginning, end, stored, an offset N, -N (N records before the end) or s@TIMESTAMP_MS"
            ))
        };
        match s {
            "beginning" => Ok(StartOffset::Beginning),
            "end" => Ok(StartOffset::End),
            "stored" => Ok(StartOffset::Stored),
            _ => {
                if let Some(ts) = s.strip_prefix("s@") {
                    return ts
                        .parse::<i64>()
                        .ok()
                        .filter(|t| *t >= 0)
                        .map(StartOffset::Timestamp)
                        .ok_or_else(bad);
                }
                if let Some(n) = s.strip_prefix('-') {
                    return n
                        .parse::<i64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .map(StartOffset::FromEnd)
                        .ok_or_else(bad);
                }
                s.parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .map(StartOffset::Absolute)
                    .ok_or_else(bad)
            }
        }
    }
}

/// A command-line failure: the message and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// [`EXIT_USAGE`] or [`EXIT_RUNTIME`].
    pub code: u8,
    /// One line saying what is wrong and what to do.
    pub message: String,
}

impl CliError {
    /// A usage or configuration error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    /// A runtime failure (exit 1).
    pub fn runtime(message: impl Into<String>) -> Self {
        CliError {
            code: EXIT_RUNTIME,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        CliError::usage(e.to_string())
    }
}

/// Everything `weir consume` needs, checked.
#[derive(Debug, Clone)]
pub struct ConsumePlan {
    /// The validated configuration.
    pub config: ConsumerConfig,
    /// Manual assignment or group mode.
    pub mode: Mode,
    /// Topics (one in manual mode).
    pub topics: Vec<String>,
    /// Partitions (manual mode; empty means all).
    pub partitions: Vec<i32>,
    /// Where to start.
    pub start: StartOffset,
    /// `-e`.
    pub exit_at_end: bool,
    /// `-c`.
    pub count: Option<u64>,
    /// The output format.
    pub style: Style,
    /// `--sink`.
    pub sink: Option<PathBuf>,
    /// `--metrics-addr`.
    pub metrics_addr: Option<SocketAddr>,
    /// `-q`.
    pub quiet: bool,
    /// `-u`: stdout is flushed after every record.
    pub unbuffered: bool,
    /// `-o e@TIMESTAMP`: stop each partition at its first record at or after it.
    pub stop_at: Option<i64>,
    /// `-E`: a partition's error is a warning; the other partitions go on.
    pub keep_going: bool,
}

impl ConsumePlan {
    /// The fetch settings: [`ConsumerConfig::fetch_config`], and with `--sink` an
    /// OFFSET_OUT_OF_RANGE answer is an error instead of a reset, unless
    /// `weir.sink.allow.reset=true`. The sink's position is the next record it has not
    /// written: a reset from there (retention deleted records it never wrote, or the
    /// log was truncated below it) would leave a hole in files that promise every
    /// record once.
    pub fn fetch_config(&self) -> weir_fetch::FetchConfig {
        let mut f = self.config.fetch_config();
        if self.sink.is_some() && !self.config.sink_allow_reset {
            f.auto_offset_reset = weir_fetch::OffsetReset::None;
        }
        f
    }

    /// The message for a fetch-layer error: an out-of-range position with `--sink`
    /// says what was lost and how to go on.
    pub fn fetch_error(&self, e: weir_fetch::FetchError) -> CliError {
        use weir_fetch::FetchError;
        if let (
            Some(dir),
            FetchError::OffsetOutOfRange {
                topic,
                partition,
                offset,
            },
        ) = (&self.sink, &e)
            && !self.config.sink_allow_reset
        {
            return CliError::runtime(format!(
                "{topic}-{partition}: the sink's position {offset} is no longer in the log (OFFSET_OUT_OF_RANGE: \
                 retention deleted records the sink in {} never wrote, or the log was truncated); \
                 nothing was skipped. To accept the gap and go on from auto.offset.reset, run again with \
                 -X weir.sink.allow.reset=true",
                dir.display()
            ));
        }
        match e {
            FetchError::Config(m) => CliError::usage(m),
            other => CliError::runtime(format!("consumer failed: {other}")),
        }
    }

    /// The group member's settings ([`ConsumerConfig::group_config`]) with `-o` as
    /// the reset, as kcat in group mode: `-o beginning`/`end` says where to start when
    /// the group has no committed offset; without `-o`, `auto.offset.reset` decides.
    pub fn group_config(&self) -> Result<weir_coordinator::GroupConfig, CliError> {
        use weir_consumer::config::OffsetReset;
        use weir_coordinator::AutoOffsetReset as Reset;
        let mut g = self.config.group_config()?;
        g.auto_offset_reset = match (self.start, self.config.auto_offset_reset) {
            (StartOffset::Beginning, _) | (StartOffset::Stored, OffsetReset::Earliest) => {
                Reset::Earliest
            }
            (StartOffset::Stored, OffsetReset::None) => Reset::None,
            (StartOffset::End | StartOffset::Stored, _) => Reset::Latest,
            _ => {
                return Err(CliError::usage(
                    "in group mode -o can only be beginning, end or stored (the group's committed offsets decide the rest)",
                ));
            }
        };
        Ok(g)
    }
}

impl ConnOpts {
    /// The layered configuration: defaults, profile, file, `-b`, `extra` (such as
    /// `-G`), then `-X`.
    pub fn builder(&self, extra: &[(&str, &str, &'static str)]) -> Result<ConfigBuilder, CliError> {
        let mut b = ConfigBuilder::new();
        if let Some(p) = &self.profile {
            b.profile(p.parse::<Profile>()?);
        }
        if let Some(f) = &self.properties_file {
            b.properties_file(f)?;
        }
        if let Some(brokers) = &self.brokers {
            b.set("bootstrap.servers", brokers, Source::Option("-b"))?;
        }
        for (k, v, opt) in extra {
            b.set(k, v, Source::Option(opt))?;
        }
        for x in &self.properties {
            b.flag(x)?;
        }
        Ok(b)
    }
}

impl ConsumeOpts {
    /// kcat's `-X list` (the properties weir accepts) or `-X dump` (the effective
    /// configuration), if asked for.
    pub fn x_command(&self) -> Option<&'static str> {
        ["list", "dump"]
            .into_iter()
            .find(|c| self.conn.properties.iter().any(|x| x == c))
    }

    /// The layered configuration of these options (before it is checked).
    pub fn config_builder(&self) -> Result<ConfigBuilder, CliError> {
        let mut extra = Vec::new();
        if let Some(g) = &self.group {
            extra.push(("group.id", g.as_str(), "-G"));
        }
        let mut conn_props = self.conn.properties.clone();
        conn_props.retain(|x| x != "list" && x != "dump");
        let conn = ConnOpts {
            brokers: self.conn.brokers.clone(),
            properties: conn_props,
            properties_file: self.conn.properties_file.clone(),
            profile: self.conn.profile.clone(),
            debug: self.conn.debug.clone(),
        };
        conn.builder(&extra)
    }

    /// Checks the options and the configuration; nothing connects.
    pub fn plan(&self) -> Result<ConsumePlan, CliError> {
        let builder = self.config_builder()?;
        let mode = if self.group.is_some() {
            Mode::Group
        } else {
            Mode::Assign
        };
        // Without -o: kcat's `end` when assigning partitions; in group mode the
        // group's committed offsets and, where there is none, `auto.offset.reset` from
        // the merged configuration (Kafka's precedence), never a silent `end`.
        let mut stop_at = None;
        let mut start_spec: Option<&String> = None;
        for o in &self.offset {
            if let Some(ts) = o.strip_prefix("e@") {
                let ts: i64 = ts.parse().ok().filter(|t| *t >= 0).ok_or_else(|| {
                    CliError::usage(format!(
                        "invalid -o {o}: e@ takes a timestamp in milliseconds since the epoch"
                    ))
                })?;
                if stop_at.replace(ts).is_some() {
                    return Err(CliError::usage("give -o e@TIMESTAMP once"));
                }
            } else if start_spec.replace(o).is_some() {
                return Err(CliError::usage(
                    "give one start -o (beginning, end, stored, N, -N, s@TS), and e@TS as a second -o to stop at a time",
                ));
            }
        }
        let start = match start_spec {
            Some(o) => StartOffset::parse(o)?,
            None if matches!(mode, Mode::Group) => StartOffset::Stored,
            None => StartOffset::End,
        };
        let mut config = builder.build(mode)?;
        if start == StartOffset::Stored && config.group_id.is_none() {
            return Err(CliError::usage(
                "`group.id` is not set: -o stored reads the group's committed offsets; set -X group.id=NAME or choose another -o",
            ));
        }
        let mut topics = self.topics.clone();
        if let Some(t) = &self.topic {
            topics.insert(0, t.clone());
        }
        match mode {
            Mode::Assign => {
                if topics.is_empty() {
                    return Err(CliError::usage(
                        "no topic: give -t TOPIC (or -G GROUP TOPIC... to consume as a group)",
                    ));
                }
            }
            Mode::Group => {
                if topics.is_empty() {
                    return Err(CliError::usage(
                        "group mode needs topics: -G GROUP TOPIC [TOPIC...]",
                    ));
                }
                if !self.partitions.is_empty() {
                    return Err(CliError::usage(
                        "-p cannot be used with -G: the group assigns partitions; drop -p, or drop -G to pick partitions yourself",
                    ));
                }
                if !matches!(
                    start,
                    StartOffset::Beginning | StartOffset::End | StartOffset::Stored
                ) {
                    return Err(CliError::usage(
                        "in group mode -o can only be beginning, end or stored: the group's committed offsets decide where each partition starts, -o only where to start without one",
                    ));
                }
            }
        }
        for t in &topics {
            if t.starts_with('^') {
                // kcat's form: a topic starting with ^ is a regular expression.
                if mode != Mode::Group {
                    return Err(CliError::usage(format!(
                        "-t {t}: a pattern subscription needs a group: -G GROUP {t}"
                    )));
                }
                if let Err(e) = regex_lite::Regex::new(t) {
                    return Err(CliError::usage(format!(
                        "{t} is not a regular expression: {e}"
                    )));
                }
                continue;
            }
            validate_topic(t)?;
        }
        if let Some(p) = self.partitions.iter().find(|p| **p < 0) {
            return Err(CliError::usage(format!(
                "invalid -p value {p}: partitions are numbered from 0"
            )));
        }
        let style = if self.json {
            Style::Json
        } else if let Some(f) = &self.format {
            Style::Format(format::compile(f).map_err(|e| CliError::usage(e.to_string()))?)
        } else {
            Style::ValuePerLine {
                key_delimiter: self.key_delimiter.as_deref().map(unescape_delimiter),
                delimiter: self
                    .delimiter
                    .as_deref()
                    .map_or_else(|| b"\n".to_vec(), unescape_delimiter),
            }
        };
        if self.unbuffered && self.sink.is_some() {
            return Err(CliError::usage(
                "-u is for stdout; --sink writes its files on its own schedule (weir.sink.checkpoint.ms)",
            ));
        }
        let metrics_addr = match &self.metrics_addr {
            Some(a) => Some(a.parse::<SocketAddr>().map_err(|_| {
                CliError::usage(format!(
                    "invalid --metrics-addr `{a}`: expected IP:PORT, for example 127.0.0.1:9100"
                ))
            })?),
            None => None,
        };
        if self.quiet {
            config.warnings.clear();
        }
        Ok(ConsumePlan {
            config,
            mode,
            topics,
            partitions: self.partitions.clone(),
            start,
            exit_at_end: self.exit_at_end,
            count: self.count,
            style,
            sink: self.sink.clone(),
            metrics_addr,
            quiet: self.quiet,
            unbuffered: self.unbuffered,
            stop_at,
            keep_going: self.keep_going,
        })
    }
}

/// Kafka's topic name rule: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic(t: &str) -> Result<(), CliError> {
    let ok = !t.is_empty()
        && t.len() <= 249
        && t != "."
        && t != ".."
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(CliError::usage(format!(
            "invalid topic name `{t}`: Kafka topic names are 1 to 249 characters of a-z, A-Z, 0-9, '.', '_' and '-'"
        )))
    }
}

/// Resolves `\n`, `\t`, `\r`, `\xHH` in a `-K` delimiter, as in `-f` literals.
pub fn unescape_delimiter(s: &str) -> Vec<u8> {
    match format::compile(&s.replace('%', "%%")) {
        Ok(tokens) => tokens
            .into_iter()
            .flat_map(|t| match t {
                format::Token::Literal(l) => l,
                _ => Vec::new(),
            })
            .collect(),
        Err(_) => s.as_bytes().to_vec(),
    }
}

/// The `--help-properties` table.
pub fn properties_help() -> String {
    let mut out = String::from("Properties weir accepts (-X name=value, -F file):\n\n");
    for spec in config::PROPERTIES {
        let default = spec.default.unwrap_or("(none)");
        let default = if default.is_empty() { "\"\"" } else { default };
        let note = match spec.support {
            config::Support::Yes => "",
            config::Support::Ignored(_) => " [accepted, ignored]",
            config::Support::Unsupported(_) => " [not supported yet]",
        };
        out.push_str(&format!(
            "  {:<36} {:<24} {}{}\n",
            spec.name, default, spec.doc, note
        ));
    }
    out.push_str("\nProfiles (--profile NAME):\n");
    for name in Profile::NAMES {
        if let Ok(p) = name.parse::<Profile>() {
            let vals: Vec<String> = p.values().iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("  {name:<18} {}\n", vals.join(" ")));
        }
    }
    out.push_str(
        "\nhigh-throughput, low-latency and reliable are the seed guide's presets. The guide gives\n\
         no preset for stream-processing: its values come from the guide's stream-processing\n\
         sketch, plus isolation.level=read_committed, which weir adds because stream processing\n\
         commits offsets together with its results. cross-datacenter takes the guide's\n\
         high-latency scenario (timeouts within its ranges, range assignment, latest).\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ConsumePlan, CliError> {
        let mut full = vec!["weir", "consume"];
        full.extend_from_slice(args);
        let cli = Cli::try_parse_from(full).map_err(|e| CliError::usage(e.to_string()))?;
        match cli.command {
            Command::Consume(o) => o.plan(),
            Command::Groups { .. } | Command::Metadata(_) | Command::Lag(_) => unreachable!(),
        }
    }

    #[test]
    fn offsets() {
        for (s, want) in [
            ("beginning", StartOffset::Beginning),
            ("end", StartOffset::End),
            ("stored", StartOffset::Stored),
            ("42", StartOffset::Absolute(42)),
            ("-10", StartOffset::FromEnd(10)),
            ("s@1700000000000", StartOffset::Timestamp(1_700_000_000_000)),
        ] {
            assert_eq!(StartOffset::parse(s).unwrap(), want);
        }
        for bad in ["", "begin", "-0", "--1", "s@", "s@x", "1.5", "e@5"] {
            let e = StartOffset::parse(bad).unwrap_err();
            assert_eq!(e.code, EXIT_USAGE);
            assert!(
                e.message.starts_with(&format!("invalid -o value `{bad}`")),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn kcat_command_lines() {
        let p = parse(&[
            "-C", "-b", "k:9092", "-t", "logs", "-p", "0,2", "-p", "5", "-o", "-5", "-e", "-c",
            "10", "-J", "-q",
        ])
        .unwrap();
        assert_eq!(p.topics, vec!["logs"]);
        assert_eq!(p.partitions, vec![0, 2, 5]);
        assert_eq!(p.start, StartOffset::FromEnd(5));
        assert!(p.exit_at_end && p.quiet);
        assert_eq!(p.count, Some(10));
        assert_eq!(p.style, Style::Json);
        assert_eq!(p.mode, Mode::Assign);

        let p = parse(&["-b", "k:9092", "-G", "g1", "a", "b", "-f", "%k=%s\\n"]).unwrap();
        assert_eq!(p.mode, Mode::Group);
        assert_eq!(p.topics, vec!["a", "b"]);
        assert_eq!(p.config.group_id.as_deref(), Some("g1"));
        assert!(matches!(p.style, Style::Format(_)));

        let p = parse(&["-b", "k:9092", "-t", "x", "-K", "\\t"]).unwrap();
        assert_eq!(
            p.style,
            Style::ValuePerLine {
                key_delimiter: Some(b"\t".to_vec()),
                delimiter: b"\n".to_vec(),
            }
        );
    }

    #[test]
    fn precedence_flags_win() {
        let p = parse(&[
            "-t",
            "t",
            "-b",
            "a:1",
            "--profile",
            "low-latency",
            "-X",
            "fetch.max.wait.ms=77",
            "-X",
            "bootstrap.servers=b:2",
        ])
        .unwrap();
        assert_eq!(p.config.fetch_max_wait_ms, 77);
        assert_eq!(p.config.max_poll_records, 100);
        assert_eq!(p.config.bootstrap_servers[0].host, "b");
    }

    #[test]
    fn usage_errors() {
        let cases: &[(&[&str], &str)] = &[
            (&["-b", "k:1"], "no topic: give -t TOPIC"),
            (&["-b", "k:1", "-G", "g"], "group mode needs topics"),
            (
                &["-b", "k:1", "-G", "g", "t", "-p", "1"],
                "-p cannot be used with -G",
            ),
            (
                &["-b", "k:1", "-t", "bad/topic"],
                "invalid topic name `bad/topic`",
            ),
            (
                &["-b", "k:1", "-t", "t", "-o", "stored"],
                "-o stored reads the group's committed offsets",
            ),
            (
                &["-b", "k:1", "-t", "t", "-f", "%z"],
                "unsupported format token %z",
            ),
            (
                &["-b", "k:1", "-t", "t", "--metrics-addr", "nope"],
                "invalid --metrics-addr `nope`",
            ),
            (
                &["-b", "k:1", "-t", "t", "--profile", "fast"],
                "unknown profile `fast`",
            ),
            (
                &["-b", "k:1", "-G", "", "t"],
                "`group.id` is not set: group mode needs a consumer group",
            ),
            (
                &["-b", "k:1", "-G", "g", "t", "-o", "5"],
                "in group mode -o can only be beginning, end or stored",
            ),
        ];
        for (args, want) in cases {
            let e = parse(args).unwrap_err();
            assert_eq!(e.code, EXIT_USAGE, "{args:?}");
            assert!(e.message.contains(want), "{args:?}: {}", e.message);
        }
    }

    /// With --sink, in either mode, an out-of-range position is an error rather than
    /// a reset past records the sink never wrote (issue 10, defect 14), unless
    /// weir.sink.allow.reset=true; without --sink auto.offset.reset applies.
    #[test]
    fn sink_turns_out_of_range_resets_into_errors_unless_allowed() {
        use weir_fetch::OffsetReset as R;
        let reset = |args: &[&str]| parse(args).unwrap().fetch_config().auto_offset_reset;
        let earliest = ["-X", "auto.offset.reset=earliest"];
        for mode in [&["-G", "g", "t"][..], &["-t", "t"][..]] {
            let args = |extra: &[&'static str]| -> Vec<&'static str> {
                let mut a = vec!["-b", "k:1"];
                a.extend_from_slice(mode);
                a.extend_from_slice(&earliest);
                a.extend_from_slice(extra);
                a
            };
            assert_eq!(reset(&args(&[])), R::Earliest, "{mode:?}");
            assert_eq!(reset(&args(&["--sink", "/tmp/s"])), R::None, "{mode:?}");
            assert_eq!(
                reset(&args(&[
                    "--sink",
                    "/tmp/s",
                    "-X",
                    "weir.sink.allow.reset=true"
                ])),
                R::Earliest,
                "{mode:?}"
            );
        }
    }

    /// Group mode without -o: `auto.offset.reset` from -X (or -F) decides where a new
    /// group starts (issue 10, defect 0: it started at the end, skipping the backlog);
    /// -o still wins over it, and the default stays Kafka's `latest`.
    #[test]
    fn group_mode_without_o_follows_auto_offset_reset() {
        use weir_coordinator::AutoOffsetReset as R;
        let reset = |args: &[&str]| {
            parse(args)
                .unwrap()
                .group_config()
                .unwrap()
                .auto_offset_reset
        };
        let g = ["-b", "k:1", "-G", "g", "t"];
        let with = |extra: &[&'static str]| -> Vec<&'static str> {
            g.iter().copied().chain(extra.iter().copied()).collect()
        };
        assert_eq!(
            reset(&with(&["-X", "auto.offset.reset=earliest"])),
            R::Earliest
        );
        assert_eq!(reset(&with(&["-X", "auto.offset.reset=none"])), R::None);
        assert_eq!(reset(&g), R::Latest);
        assert_eq!(
            reset(&with(&["-X", "auto.offset.reset=earliest", "-o", "end"])),
            R::Latest
        );
        assert_eq!(
            reset(&with(&[
                "-X",
                "auto.offset.reset=latest",
                "-o",
                "beginning"
            ])),
            R::Earliest
        );
    }

    #[test]
    fn help_lists_every_property() {
        let h = properties_help();
        for spec in config::PROPERTIES {
            assert!(h.contains(spec.name), "{}", spec.name);
        }
        assert!(h.contains("stream-processing"));
    }
}
