//! The fetch layer's settings, named after Kafka's consumer properties.
//!
//! The root `weir` crate parses properties files and validates them; this struct is
//! the typed result the fetch layer needs. Every field documents its property name
//! and Kafka's default, which [`FetchConfig::default`] uses.

use std::time::Duration;

/// `isolation.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// `read_uncommitted` (Kafka's default): every record up to the high watermark.
    #[default]
    ReadUncommitted,
    /// `read_committed`: only up to the last stable offset, aborted transactions
    /// filtered out.
    ReadCommitted,
}

impl IsolationLevel {
    /// The wire value (0 or 1).
    pub fn wire(self) -> i8 {
        match self {
            Self::ReadUncommitted => 0,
            Self::ReadCommitted => 1,
        }
    }
}

/// `auto.offset.reset`: where to start when there is no valid position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// `earliest`: the log start offset.
    Earliest,
    /// `latest` (Kafka's default): the end of the log.
    #[default]
    Latest,
    /// `none`: report an error naming the partition and offset.
    None,
}

/// The fetch layer's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchConfig {
    /// `bootstrap.servers`: `host:port` entries to discover the cluster from.
    pub bootstrap_servers: Vec<String>,
    /// `client.id` (default `weir`).
    pub client_id: String,
    /// `client.rack` (default empty).
    pub client_rack: String,
    /// `fetch.min.bytes` (default 1).
    pub fetch_min_bytes: i32,
    /// `fetch.max.bytes` (default 52428800). Must fit in the ring.
    pub fetch_max_bytes: i32,
    /// `fetch.max.wait.ms` (default 500).
    pub fetch_max_wait_ms: i32,
    /// `max.partition.fetch.bytes` (default 1048576).
    pub max_partition_fetch_bytes: i32,
    /// `isolation.level` (default read_uncommitted).
    pub isolation_level: IsolationLevel,
    /// `auto.offset.reset` (default latest).
    pub auto_offset_reset: OffsetReset,
    /// `check.crcs` (default true).
    pub check_crcs: bool,
    /// `request.timeout.ms` (default 30000).
    pub request_timeout_ms: u64,
    /// `reconnect.backoff.ms` (default 50).
    pub reconnect_backoff_ms: u64,
    /// `reconnect.backoff.max.ms` (default 1000).
    pub reconnect_backoff_max_ms: u64,
    /// `retry.backoff.ms` (default 100): wait before retrying a failed metadata or
    /// offset lookup.
    pub retry_backoff_ms: u64,
    /// `metadata.max.age.ms` (default 300000): periodic metadata refresh.
    pub metadata_max_age_ms: u64,
    /// `weir.ring.bytes` (default 64 MiB): the receive ring's budget, the bound on
    /// memory held by fetched data.
    pub ring_bytes: usize,
    /// `weir.fetch.sessions` (default true): use incremental fetch sessions (KIP-227)
    /// when the broker grants one.
    pub fetch_sessions: bool,
    /// `weir.max.decompressed.batch.bytes` (default 32 MiB, as the property's): the
    /// largest size a compressed batch may inflate to; a larger one is a
    /// [`ChunkError`](crate::ChunkError) (`DecompressedTooLarge`) for its partition,
    /// never an unbounded allocation.
    pub max_decompressed_batch_bytes: usize,
    /// `max.poll.records` (default 500): the most records one
    /// [`Consumer::poll`](crate::Consumer::poll) hands to its handler. The rest of a
    /// fetched chunk stays queued and is delivered by the next poll, so a slow
    /// handler still polls (and, in group mode, heartbeats and stays within
    /// `max.poll.interval.ms`) often. Does not apply to `run_workers`, which hands
    /// out whole chunks.
    pub max_poll_records: usize,
    /// `weir.coordinator.ring.bytes` (default 8 MiB): the receive buffer of side
    /// connections (group coordinator, the group's metadata, admin requests), apart
    /// from the fetch ring so that fetched data waiting for slow handlers can never
    /// keep a heartbeat answer from being read. A larger response (a JoinGroup
    /// answer listing thousands of members) is an error naming this property.
    pub side_ring_bytes: usize,
    /// How broker host names become addresses (default: the system resolver). It
    /// runs on a short-lived thread per lookup, never on the reactor: see
    /// [`crate::resolve`].
    pub resolver: crate::resolve::Resolver,
    /// SASL credentials (`security.protocol=SASL_PLAINTEXT`): every connection,
    /// fetch and side, authenticates right after ApiVersions. `None`: plaintext.
    pub sasl: Option<weir_protocol::auth::SaslConfig>,
    /// TLS (`security.protocol=SSL` or `SASL_SSL`): every connection, fetch and
    /// side, is encrypted and the broker's certificate checked. `None`: plaintext.
    pub tls: Option<crate::tls::TlsConfig>,
    /// KIP-1102 (`metadata.recovery.strategy=rebootstrap`, Kafka's default):
    /// when no broker has been reachable for this long
    /// (`metadata.recovery.rebootstrap.trigger.ms`, default 300000), the
    /// `bootstrap.servers` addresses are dialled again, besides the brokers the
    /// cluster advertised (which may all have moved). `None`: `strategy=none`.
    pub rebootstrap_trigger_ms: Option<u64>,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: vec!["localhost:9092".to_owned()],
            client_id: "weir".to_owned(),
            client_rack: String::new(),
            fetch_min_bytes: 1,
            fetch_max_bytes: 52_428_800,
            fetch_max_wait_ms: 500,
            max_partition_fetch_bytes: 1_048_576,
            isolation_level: IsolationLevel::ReadUncommitted,
            auto_offset_reset: OffsetReset::Latest,
            check_crcs: true,
            request_timeout_ms: 30_000,
            reconnect_backoff_ms: 50,
            reconnect_backoff_max_ms: 1000,
            retry_backoff_ms: 100,
            metadata_max_age_ms: 300_000,
            ring_bytes: 64 << 20,
            fetch_sessions: true,
            max_decompressed_batch_bytes: 32 << 20,
            max_poll_records: 500,
            side_ring_bytes: 8 << 20,
            resolver: crate::resolve::Resolver::system(),
            sasl: None,
            tls: None,
            rebootstrap_trigger_ms: Some(300_000),
        }
    }
}

impl FetchConfig {
    /// A config for `bootstrap` (comma-separated `host:port` list) with defaults.
    pub fn new(bootstrap: &str) -> Self {
        Self {
            bootstrap_servers: bootstrap
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            ..Self::default()
        }
    }

    /// How often metadata is refreshed when nothing asks for it: `metadata.max.age.ms`,
    /// but at least [`MIN_METADATA_REFRESH_MS`] and `retry.backoff.ms`. A periodic
    /// refresh only notices changes nobody reported (errors and leader hints ask for
    /// metadata at once), so more than one a second buys nothing, while `0` turned it
    /// into a request every reactor turn, bound only by the round trip.
    pub fn metadata_refresh_interval(&self) -> Duration {
        Duration::from_millis(
            self.metadata_max_age_ms
                .max(self.retry_backoff_ms)
                .max(MIN_METADATA_REFRESH_MS),
        )
    }

    /// Check the settings against each other; the message says what to change.
    pub fn validate(&self) -> Result<(), String> {
        if self.bootstrap_servers.is_empty() {
            return Err("bootstrap.servers is empty: give at least one host:port".into());
        }
        for s in &self.bootstrap_servers {
            if split_host_port(s).is_none() {
                return Err(format!(
                    "bootstrap.servers entry {s:?} is not host:port (e.g. localhost:9092)"
                ));
            }
        }
        if self.fetch_max_bytes <= 0 || self.max_partition_fetch_bytes <= 0 {
            return Err("fetch.max.bytes and max.partition.fetch.bytes must be positive".into());
        }
        // A response carries up to fetch.max.bytes of records (or one batch of up to
        // max.partition.fetch.bytes when bigger), plus headers.
        let need = (self.fetch_max_bytes.max(self.max_partition_fetch_bytes) as usize)
            .saturating_add(RESPONSE_OVERHEAD);
        if self.ring_bytes < need {
            return Err(format!(
                "fetch.max.bytes ({}) exceeds the ring budget weir.ring.bytes ({}); raise \
                 weir.ring.bytes to at least {need} or lower fetch.max.bytes",
                self.fetch_max_bytes, self.ring_bytes
            ));
        }
        if self.side_ring_bytes < 1 << 16 {
            return Err(format!(
                "weir.coordinator.ring.bytes ({}) is too small: give at least 65536",
                self.side_ring_bytes
            ));
        }
        if self.max_poll_records == 0 {
            return Err("max.poll.records must be at least 1".into());
        }
        if self.max_decompressed_batch_bytes == 0 {
            return Err("weir.max.decompressed.batch.bytes must be positive".into());
        }
        if self.request_timeout_ms <= self.fetch_max_wait_ms.max(0) as u64 {
            return Err(format!(
                "request.timeout.ms ({}) must be larger than fetch.max.wait.ms ({})",
                self.request_timeout_ms, self.fetch_max_wait_ms
            ));
        }
        Ok(())
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// Room for response and per-partition headers on top of the records.
pub const RESPONSE_OVERHEAD: usize = 64 << 10;

/// The shortest periodic metadata refresh (see
/// [`FetchConfig::metadata_refresh_interval`]), in milliseconds.
pub const MIN_METADATA_REFRESH_MS: u64 = 1000;

/// Split `host:port` (the host may be a bracketed IPv6 literal).
pub fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafkas_and_valid() {
        let c = FetchConfig::new("a:1, b:2");
        assert_eq!(c.bootstrap_servers, vec!["a:1", "b:2"]);
        assert_eq!(c.fetch_max_bytes, 52_428_800);
        assert_eq!(c.auto_offset_reset, OffsetReset::Latest);
        assert_eq!(c.max_decompressed_batch_bytes, 32 << 20);
        c.validate().unwrap();
        let zero = FetchConfig {
            max_decompressed_batch_bytes: 0,
            ..c
        };
        let e = zero.validate().unwrap_err();
        assert!(e.contains("weir.max.decompressed.batch.bytes"), "{e}");
    }

    #[test]
    fn ring_budget_must_hold_a_fetch() {
        let c = FetchConfig {
            ring_bytes: 1 << 20,
            ..FetchConfig::new("a:1")
        };
        let e = c.validate().unwrap_err();
        assert!(
            e.contains("weir.ring.bytes") && e.contains("fetch.max.bytes"),
            "{e}"
        );
        assert!(FetchConfig::new("nohost").validate().is_err());
        assert_eq!(split_host_port("[::1]:9092"), Some(("::1".into(), 9092)));
    }
}
