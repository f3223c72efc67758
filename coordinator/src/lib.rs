//! weir-coordinator: the sans-IO consumer-group state machine, assignors and offsets.
//!
//! Placeholder docs; the driving API is documented once the state machine lands.

pub mod assignor;
pub mod config;
pub mod consumer_protocol;

pub use assignor::{AssignmentStrategy, GroupAssignment, MemberSubscription, RebalanceProtocol};
pub use config::{AutoOffsetReset, ConfigError, GroupConfig};
pub use consumer_protocol::{Assignment, Subscription};

/// A topic partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic name.
    pub topic: String,
    /// The partition number.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}
