//! The typed settings each layer takes, derived from the validated properties in one
//! place: [`FetchConfig`] for the fetch reactor and [`GroupConfig`] for the group
//! member. Each default lives in [`config::PROPERTIES`](crate::config::PROPERTIES);
//! nothing here restates one.

use std::time::Duration;

use weir_coordinator::{AssignmentStrategy, AutoOffsetReset as GroupAutoOffsetReset, GroupConfig};
use weir_fetch::FetchConfig;

use crate::config::{Assignor, ConfigError, ConsumerConfig, IsolationLevel, OffsetReset};

impl ConsumerConfig {
    /// The fetch reactor's settings.
    pub fn fetch_config(&self) -> FetchConfig {
        let clamp = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        FetchConfig {
            bootstrap_servers: self
                .bootstrap_servers
                .iter()
                .map(ToString::to_string)
                .collect(),
            client_id: self.client_id.clone(),
            client_rack: self.client_rack.clone(),
            fetch_min_bytes: clamp(self.fetch_min_bytes),
            fetch_max_bytes: clamp(self.fetch_max_bytes),
            fetch_max_wait_ms: clamp(self.fetch_max_wait_ms),
            max_partition_fetch_bytes: clamp(self.max_partition_fetch_bytes),
            isolation_level: match self.isolation_level {
                IsolationLevel::ReadCommitted => weir_fetch::IsolationLevel::ReadCommitted,
                IsolationLevel::ReadUncommitted => weir_fetch::IsolationLevel::ReadUncommitted,
            },
            auto_offset_reset: match self.auto_offset_reset {
                OffsetReset::Earliest => weir_fetch::OffsetReset::Earliest,
                OffsetReset::Latest => weir_fetch::OffsetReset::Latest,
                OffsetReset::None => weir_fetch::OffsetReset::None,
            },
            check_crcs: self.check_crcs,
            request_timeout_ms: u64::from(self.request_timeout_ms),
            reconnect_backoff_ms: u64::from(self.reconnect_backoff_ms),
            reconnect_backoff_max_ms: u64::from(self.reconnect_backoff_max_ms),
            retry_backoff_ms: u64::from(self.retry_backoff_ms),
            metadata_max_age_ms: u64::from(self.metadata_max_age_ms),
            rebootstrap_trigger_ms: self.rebootstrap_trigger_ms.map(u64::from),
            ring_bytes: size(self.ring_bytes),
            side_ring_bytes: size(self.coordinator_ring_bytes),
            max_decompressed_batch_bytes: size(u64::from(self.max_decompressed_batch_bytes)),
            max_poll_records: size(u64::from(self.max_poll_records)),
            sasl: self.sasl.clone(),
            tls: self.tls.clone(),
            ..FetchConfig::default()
        }
    }

    /// The group member's settings. `group.id` must be set (a configuration built
    /// for [`Mode::Group`](crate::config::Mode::Group) always has it).
    pub fn group_config(&self) -> Result<GroupConfig, ConfigError> {
        let ms = |v: u32| Duration::from_millis(u64::from(v));
        let Some(group_id) = self.group_id.clone() else {
            return Err(ConfigError::Missing {
                name: "group.id",
                why: "group mode needs a consumer group",
            });
        };
        let mut g = GroupConfig::new(group_id);
        g.group_instance_id = self.group_instance_id.clone();
        g.session_timeout = ms(self.session_timeout_ms);
        g.heartbeat_interval = ms(self.heartbeat_interval_ms);
        g.max_poll_interval = ms(self.max_poll_interval_ms);
        g.assignment_strategies = self
            .partition_assignment_strategy
            .iter()
            .map(|a| match a {
                Assignor::Range => AssignmentStrategy::Range,
                Assignor::RoundRobin => AssignmentStrategy::RoundRobin,
                Assignor::Sticky => AssignmentStrategy::Sticky,
                Assignor::CooperativeSticky => AssignmentStrategy::CooperativeSticky,
            })
            .collect();
        g.enable_auto_commit = self.enable_auto_commit;
        g.auto_commit_interval = ms(self.auto_commit_interval_ms);
        g.auto_offset_reset = match self.auto_offset_reset {
            OffsetReset::Earliest => GroupAutoOffsetReset::Earliest,
            OffsetReset::Latest => GroupAutoOffsetReset::Latest,
            OffsetReset::None => GroupAutoOffsetReset::None,
        };
        g.retry_backoff = ms(self.retry_backoff_ms);
        g.retry_backoff_max = ms(self.retry_backoff_max_ms);
        g.request_timeout = ms(self.request_timeout_ms);
        g.client_id = self.client_id.clone();
        g.rack = (!self.client_rack.is_empty()).then(|| self.client_rack.clone());
        g.group_protocol = self.group_protocol;
        g.remote_assignor = self.group_remote_assignor.clone();
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigBuilder, Mode};

    fn build(pairs: &[(&str, &str)], mode: Mode) -> crate::ConsumerConfig {
        let mut b = ConfigBuilder::new();
        b.property("bootstrap.servers", "localhost:9092").unwrap();
        for (k, v) in pairs {
            b.property(k, v).unwrap();
        }
        b.build(mode).unwrap()
    }

    #[test]
    fn every_group_setting_comes_from_its_property() {
        let c = build(
            &[
                ("group.id", "g"),
                ("group.instance.id", "i-1"),
                ("session.timeout.ms", "30000"),
                ("heartbeat.interval.ms", "2500"),
                ("max.poll.interval.ms", "60000"),
                ("partition.assignment.strategy", "roundrobin,range"),
                ("auto.offset.reset", "none"),
                ("retry.backoff.ms", "150"),
                ("client.rack", "r1"),
            ],
            Mode::Group,
        );
        let g = c.group_config().unwrap();
        assert_eq!(g.group_id, "g");
        assert_eq!(g.group_instance_id.as_deref(), Some("i-1"));
        assert_eq!(g.session_timeout.as_millis(), 30_000);
        assert_eq!(g.heartbeat_interval.as_millis(), 2_500);
        assert_eq!(g.max_poll_interval.as_millis(), 60_000);
        assert_eq!(
            g.assignment_strategies,
            [
                weir_coordinator::AssignmentStrategy::RoundRobin,
                weir_coordinator::AssignmentStrategy::Range
            ]
        );
        assert_eq!(g.auto_offset_reset, weir_coordinator::AutoOffsetReset::None);
        assert_eq!(g.retry_backoff.as_millis(), 150);
        assert_eq!(g.rack.as_deref(), Some("r1"));
    }

    #[test]
    fn a_group_config_needs_a_group_id() {
        let c = build(&[], Mode::Assign);
        let e = c.group_config().unwrap_err();
        assert!(e.to_string().contains("group.id"), "{e}");
    }

    #[test]
    fn the_decompression_limit_reaches_the_fetch_config() {
        let f = build(
            &[("weir.max.decompressed.batch.bytes", "4096")],
            Mode::Assign,
        )
        .fetch_config();
        assert_eq!(f.max_decompressed_batch_bytes, 4096);
        // weir's own default (32 MiB) is passed too, not the engine's 64 MiB.
        let f = build(&[], Mode::Assign).fetch_config();
        assert_eq!(f.max_decompressed_batch_bytes, 32 << 20);
        f.validate().unwrap();
    }

    /// max.poll.records reaches the fetch engine, which bounds each poll by it
    /// (issue 10, defect 13).
    #[test]
    fn max_poll_records_reaches_the_fetch_config() {
        assert_eq!(
            build(&[], Mode::Assign).fetch_config().max_poll_records,
            500
        );
        let c = build(&[("max.poll.records", "7")], Mode::Assign);
        assert_eq!(c.fetch_config().max_poll_records, 7);
    }

    /// A library user who builds `FetchConfig::new` or `GroupConfig::new` directly
    /// gets the same defaults as one who goes through Kafka's property names: the
    /// engine's defaults and the property table must not drift apart.
    #[test]
    fn the_property_defaults_are_the_engines_defaults() {
        let f = build(&[], Mode::Assign).fetch_config();
        let d = weir_fetch::FetchConfig::new("localhost:9092");
        assert_eq!(f.client_id, d.client_id, "client.id");
        assert_eq!(f.fetch_min_bytes, d.fetch_min_bytes, "fetch.min.bytes");
        assert_eq!(f.fetch_max_bytes, d.fetch_max_bytes, "fetch.max.bytes");
        assert_eq!(
            f.fetch_max_wait_ms, d.fetch_max_wait_ms,
            "fetch.max.wait.ms"
        );
        assert_eq!(
            f.max_partition_fetch_bytes, d.max_partition_fetch_bytes,
            "max.partition.fetch.bytes"
        );
        assert_eq!(f.isolation_level, d.isolation_level, "isolation.level");
        assert_eq!(
            f.auto_offset_reset, d.auto_offset_reset,
            "auto.offset.reset"
        );
        assert_eq!(f.check_crcs, d.check_crcs, "check.crcs");
        assert_eq!(
            f.rebootstrap_trigger_ms, d.rebootstrap_trigger_ms,
            "metadata.recovery.strategy and metadata.recovery.rebootstrap.trigger.ms"
        );
        assert_eq!(
            f.request_timeout_ms, d.request_timeout_ms,
            "request.timeout.ms"
        );
        assert_eq!(
            f.reconnect_backoff_ms, d.reconnect_backoff_ms,
            "reconnect.backoff.ms"
        );
        assert_eq!(
            f.reconnect_backoff_max_ms, d.reconnect_backoff_max_ms,
            "reconnect.backoff.max.ms"
        );
        assert_eq!(f.retry_backoff_ms, d.retry_backoff_ms, "retry.backoff.ms");
        assert_eq!(
            f.metadata_max_age_ms, d.metadata_max_age_ms,
            "metadata.max.age.ms"
        );
        assert_eq!(f.ring_bytes, d.ring_bytes, "weir.ring.bytes");
        assert_eq!(
            f.side_ring_bytes, d.side_ring_bytes,
            "weir.coordinator.ring.bytes"
        );
        assert_eq!(
            f.max_decompressed_batch_bytes, d.max_decompressed_batch_bytes,
            "weir.max.decompressed.batch.bytes"
        );
        assert_eq!(f.max_poll_records, d.max_poll_records, "max.poll.records");

        let g = build(&[("group.id", "g")], Mode::Group)
            .group_config()
            .unwrap();
        let d = weir_coordinator::GroupConfig::new("g");
        assert_eq!(g.session_timeout, d.session_timeout, "session.timeout.ms");
        assert_eq!(
            g.heartbeat_interval, d.heartbeat_interval,
            "heartbeat.interval.ms"
        );
        assert_eq!(
            g.max_poll_interval, d.max_poll_interval,
            "max.poll.interval.ms"
        );
        assert_eq!(
            g.assignment_strategies, d.assignment_strategies,
            "partition.assignment.strategy"
        );
        assert_eq!(
            g.enable_auto_commit, d.enable_auto_commit,
            "enable.auto.commit"
        );
        assert_eq!(
            g.auto_commit_interval, d.auto_commit_interval,
            "auto.commit.interval.ms"
        );
        assert_eq!(
            g.auto_offset_reset, d.auto_offset_reset,
            "auto.offset.reset"
        );
        assert_eq!(g.retry_backoff, d.retry_backoff, "retry.backoff.ms");
        assert_eq!(
            g.retry_backoff_max, d.retry_backoff_max,
            "retry.backoff.max.ms"
        );
        assert_eq!(g.request_timeout, d.request_timeout, "request.timeout.ms");
    }
}
