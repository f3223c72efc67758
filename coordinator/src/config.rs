//! Group configuration, under Kafka's property names with the Java client's defaults.

use crate::assignor::AssignmentStrategy;
use std::fmt;
use std::time::Duration;

/// `auto.offset.reset`: where to start when a partition has no committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoOffsetReset {
    /// `earliest`: the log start offset.
    Earliest,
    /// `latest` (Kafka's default): the log end offset.
    Latest,
    /// `none`: report an error to the application.
    None,
}

/// `group.protocol`: how the group is managed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupProtocol {
    /// `classic` (the default until Kafka makes the switch): JoinGroup and SyncGroup,
    /// the leader member assigns.
    #[default]
    Classic,
    /// `consumer` (KIP-848, Kafka 4.0+): ConsumerGroupHeartbeat, the broker assigns
    /// and rebalances incrementally.
    Consumer,
}

/// Configuration of one group member. Every field documents its Kafka property.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.id` (required, non-empty).
    pub group_id: String,
    /// `group.protocol` (default classic).
    pub group_protocol: GroupProtocol,
    /// `group.remote.assignor`: the broker-side assignor (`uniform`, `range`) under
    /// `group.protocol=consumer`; `None` lets the broker pick its default.
    pub remote_assignor: Option<String>,
    /// `group.instance.id`: static membership (KIP-345) when set.
    pub group_instance_id: Option<String>,
    /// `session.timeout.ms` (default 45000).
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms` (default 3000); must be below the session timeout.
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms` (default 300000).
    pub max_poll_interval: Duration,
    /// The JoinGroup rebalance timeout; `None` means `max.poll.interval.ms`, as Java.
    pub rebalance_timeout: Option<Duration>,
    /// `partition.assignment.strategy` (default `[range, cooperative-sticky]`).
    pub assignment_strategies: Vec<AssignmentStrategy>,
    /// `enable.auto.commit` (default true).
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms` (default 5000).
    pub auto_commit_interval: Duration,
    /// `auto.offset.reset` (default latest).
    pub auto_offset_reset: AutoOffsetReset,
    /// `retry.backoff.ms` (default 100).
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms` (default 1000): cap of the exponential backoff.
    pub retry_backoff_max: Duration,
    /// `request.timeout.ms` (default 30000): a coordinator request without an
    /// answer by then counts as a lost connection.
    pub request_timeout: Duration,
    /// `client.id` (default empty).
    pub client_id: String,
    /// `client.rack` (default none); sent in the subscription (v3).
    pub rack: Option<String>,
    /// Seed of the jitter RNG (injected so tests are deterministic).
    pub rng_seed: u64,
}

impl GroupConfig {
    /// A config with Kafka's defaults for `group.id`.
    pub fn new(group_id: impl Into<String>) -> Self {
        Self {
            group_id: group_id.into(),
            group_protocol: GroupProtocol::Classic,
            remote_assignor: None,
            group_instance_id: None,
            session_timeout: Duration::from_millis(45_000),
            heartbeat_interval: Duration::from_millis(3_000),
            max_poll_interval: Duration::from_millis(300_000),
            rebalance_timeout: None,
            assignment_strategies: vec![
                AssignmentStrategy::Range,
                AssignmentStrategy::CooperativeSticky,
            ],
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_millis(5_000),
            auto_offset_reset: AutoOffsetReset::Latest,
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_millis(1_000),
            request_timeout: Duration::from_millis(30_000),
            client_id: String::new(),
            rack: None,
            rng_seed: 0x5eed,
        }
    }

    /// The effective rebalance timeout.
    pub fn rebalance_timeout(&self) -> Duration {
        self.rebalance_timeout.unwrap_or(self.max_poll_interval)
    }

    /// Check the values Kafka would reject, with what to change.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.group_id.is_empty() {
            return Err(ConfigError(
                "group.id is empty: set group.id to use group management",
            ));
        }
        if self.assignment_strategies.is_empty() {
            return Err(ConfigError(
                "partition.assignment.strategy is empty: list at least one of range, roundrobin, sticky, cooperative-sticky",
            ));
        }
        if self.heartbeat_interval >= self.session_timeout {
            return Err(ConfigError(
                "heartbeat.interval.ms must be lower than session.timeout.ms (Kafka suggests a third of it)",
            ));
        }
        if self.group_instance_id.as_deref() == Some("") {
            return Err(ConfigError(
                "group.instance.id is empty: unset it or give it a value",
            ));
        }
        if self.remote_assignor.as_deref() == Some("") {
            return Err(ConfigError(
                "group.remote.assignor is empty: unset it or name a broker assignor (uniform, range)",
            ));
        }
        if self.remote_assignor.is_some() && self.group_protocol == GroupProtocol::Classic {
            return Err(ConfigError(
                "group.remote.assignor applies only to group.protocol=consumer: set group.protocol=consumer or unset it (classic groups use partition.assignment.strategy)",
            ));
        }
        if self.auto_commit_interval.is_zero() && self.enable_auto_commit {
            return Err(ConfigError("auto.commit.interval.ms must be positive"));
        }
        Ok(())
    }
}

/// A configuration value Kafka would refuse; the message says what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub &'static str);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ConfigError {}
