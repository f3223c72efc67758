//! The fetch engine, sans-IO: the cluster metadata, every assigned partition's fetch
//! state, the fetch sessions, and every decision about what to send and what an
//! answer means. It never reads the clock (every entry point takes `now`) and never
//! touches a socket: connections come from a [`Net`] and are driven by whoever owns
//! the sockets (the mio [`Reactor`](crate::Reactor) in production, a scripted net in
//! the unit tests below).
//!
//! One turn, as the driver runs it: [`Engine::timers`] (request deadlines, the
//! metadata refresh), [`Engine::plan`] (reconnects, then for every ready broker
//! Metadata when needed, ListOffsets for partitions waiting for a start offset, and
//! Fetch, one in flight per broker, the next built as soon as the previous answer is
//! in), then each answer through [`Engine::on_responses`]: decoded in place from the
//! ring, each partition's records cut out as a [`Chunk`].
//!
//! Connection bring-up: dial, send ApiVersions (retrying once at the version the
//! broker names when it answers UNSUPPORTED_VERSION), build the version table, then
//! the broker is ready. A connection that dies fails every request in flight; each is
//! retried by the state it left behind (metadata is marked needed again, offsets are
//! looked up again, the fetch is rebuilt) after `reconnect.backoff.ms` doubling up to
//! `reconnect.backoff.max.ms`.
//!
//! Fetch positions: the engine advances a partition's *fetch offset* as soon as a
//! response arrives, to the `next_offset` of the last complete batch (a cheap header
//! walk; CRCs and records are left to whoever processes the chunk), so the next fetch
//! can be sent at once. The *position* (next record the application will see) moves
//! when a chunk has been processed ([`Engine::on_processed`]).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use kafka_protocol::messages::ApiVersionsRequest;
use kafka_protocol::protocol::StrBytes;
use weir_protocol::auth::{Authenticator, SaslConfig, Step as AuthStep, random_nonce};
use weir_protocol::frame::{
    ApiRequest, encode_request, parse_response, response_header_flexible_by_key,
};
use weir_protocol::messages::ResponseBody;
use weir_protocol::messages::api_versions::ApiVersionsResponse;
use weir_protocol::messages::fetch::{
    FetchParams, FetchPartitionSpec, FetchResponse, build_fetch_request,
};
use weir_protocol::messages::list_offsets::{
    EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, ListOffsetsResponse, ListOffsetsSpec,
    build_list_offsets_request,
};
use weir_protocol::messages::metadata::{MetadataResponse, build_metadata_request};
use weir_protocol::messages::sasl::{
    SaslAuthenticateResponse, SaslHandshakeResponse, build_sasl_authenticate_request,
    build_sasl_handshake_request,
};
use weir_protocol::record::Batches;
use weir_protocol::{ApiVersionTable, ErrorCode};

/// SaslHandshake's API key.
const SASL_HANDSHAKE_KEY: i16 = 17;

/// Connections in a row a broker may close before any answer past the handshake
/// before that is reported ([`FetchError::Refused`]); the retries go on.
const EARLY_CLOSE_LIMIT: u32 = 5;

use crate::config::{FetchConfig, IsolationLevel, split_host_port};
use crate::conn::{Backoff, ConnError, InFlight, Response};
use crate::meta::MetaSchedule;
use crate::metrics::Metrics;
use crate::process::{Chunk, ChunkError, ChunkOutcome};
use crate::ring::RingError;
use crate::session::{FetchSession, SentPart};

use crate::error::FetchError;
use crate::partition::{PartState, StartAt};

/// A connection as the engine sees it: requests go in with a correlation id and a
/// deadline; answers come back through [`Engine::on_response`]. The mio driver's
/// [`Conn`](crate::conn::Conn) is one; the engine's unit tests script another.
pub(crate) trait Link {
    /// Whether the transport is connected (not still connecting).
    fn established(&self) -> bool;
    /// Whether it was connected at some point (a refused connect never was).
    fn was_connected(&self) -> bool;
    /// The correlation id [`next_correlation_id`](Self::next_correlation_id) returns
    /// next.
    fn peek_correlation_id(&self) -> i32;
    /// The correlation id to encode the next request with.
    fn next_correlation_id(&mut self) -> i32;
    /// Queue an encoded request (size prefix included) described by `req`.
    fn send(&mut self, req: InFlight, frame: Vec<u8>) -> Result<(), ConnError>;
    /// Requests sent (or queued) and not answered yet.
    fn in_flight(&self) -> usize;
    /// The earliest deadline among the requests in flight.
    fn next_deadline(&self) -> Option<Instant>;
    /// An error when a request in flight passed its deadline (the link is dead).
    fn check_timeouts(&mut self, now: Instant) -> Result<(), ConnError>;
}

/// What dialling a broker gave.
#[derive(Debug)]
pub(crate) enum Dial<L> {
    /// Its host name is being looked up; [`Net::resolved`] names it once answered.
    Resolving,
    /// The host name could not be used (the message says why).
    Unresolved(String),
    /// A connection to the attempt's address is under way.
    Connecting(L),
    /// Connecting to the attempt's address failed at once (the message says why).
    Refused(String),
}

/// Where the engine's connections come from.
pub(crate) trait Net {
    /// A connection.
    type Link: Link;
    /// Connect broker `token` at `host:port`; `attempt` counts the tries since the
    /// broker last worked and picks among its addresses.
    fn dial(
        &mut self,
        token: usize,
        host: &str,
        port: u16,
        attempt: usize,
        now: Instant,
    ) -> Dial<Self::Link>;
    /// Host names whose lookup answered since the last call.
    fn resolved(&mut self, now: Instant) -> Vec<(String, u16)>;
    /// Close `link`: every request it had in flight, oldest first.
    fn close(&mut self, link: &mut Self::Link) -> Vec<InFlight>;
}

/// A side connection (see [`Reactor::open_side`](crate::Reactor::open_side)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SideId(usize);

impl SideId {
    /// The side connection at broker slot `i` (for tests of layers above).
    #[cfg(test)]
    pub(crate) fn from_index(i: usize) -> Self {
        SideId(i)
    }
}

/// Something that happened on a side connection.
#[derive(Debug)]
pub enum SideEvent {
    /// The connection is up and its versions are known (also after a reconnect).
    Ready {
        /// Which connection.
        side: SideId,
    },
    /// A response to [`Reactor::side_send`](crate::Reactor::side_send).
    Response {
        /// Which connection.
        side: SideId,
        /// The request it answers (api key, version, correlation id).
        req: InFlight,
        /// Where the body starts in `frame` (after the response header).
        body_offset: usize,
        /// The whole frame, in the ring: release it promptly.
        frame: crate::ring::Frame,
    },
    /// The connection died; these requests will never be answered. It reconnects
    /// with backoff and reports `Ready` again.
    Closed {
        /// Which connection.
        side: SideId,
        /// The side requests that were in flight, oldest first.
        failed: Vec<InFlight>,
    },
}

/// Kinds of request, kept in the in-flight tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
enum Kind {
    ApiVersions = 1,
    Metadata = 2,
    ListOffsets = 3,
    Fetch = 4,
    Side = 5,
    SaslHandshake = 6,
    SaslAuthenticate = 7,
}

impl Kind {
    fn from_tag(t: u64) -> Option<Self> {
        match t {
            1 => Some(Self::ApiVersions),
            2 => Some(Self::Metadata),
            3 => Some(Self::ListOffsets),
            4 => Some(Self::Fetch),
            5 => Some(Self::Side),
            6 => Some(Self::SaslHandshake),
            7 => Some(Self::SaslAuthenticate),
            _ => None,
        }
    }
}

#[derive(Debug)]
enum Phase {
    /// No connection; reconnect at `retry_at` (if the broker is needed).
    Down { retry_at: Instant },
    /// Connected or connecting, ApiVersions in flight.
    Handshake,
    /// Versions known, SASL under way (SaslHandshake, then SaslAuthenticate rounds
    /// driven by `auth` once the mechanism is accepted). Nothing else is sent.
    Authenticating {
        table: ApiVersionTable,
        auth: Option<Authenticator>,
    },
    /// Versions known (and authenticated, with SASL); requests flow.
    Ready(ApiVersionTable),
}

#[derive(Debug)]
pub(crate) struct Broker<L> {
    /// The broker's node id; bootstrap entries use -1, -2, ...
    node_id: i32,
    host: String,
    port: u16,
    pub(crate) conn: Option<L>,
    phase: Phase,
    /// `Down` while its host name is looked up; `lookups_done` ends the wait.
    resolving: bool,
    backoff: Backoff,
    fetch_in_flight: bool,
    fetch_sent_at: Option<Instant>,
    fetch_not_before: Option<Instant>,
    session: FetchSession,
    /// Partition indexes whose ListOffsets is in flight here, with the timestamp asked.
    list_in_flight: Vec<(usize, i64)>,
    metadata_in_flight: bool,
    /// A connection driven for another layer (see [`SideId`]): never used for
    /// metadata, offsets or fetches.
    pub(crate) side: bool,
    /// Connect attempts since the last successful handshake (picks the address).
    connect_attempts: usize,
    /// The current connection has had an answer past ApiVersions and SASL.
    answered: bool,
    /// Connections in a row the broker closed before such an answer.
    early_closes: u32,
    /// KIP-368: re-authenticate on this connection at this time (the broker's SASL
    /// session lifetime, less a margin).
    reauth_at: Option<Instant>,
    /// Re-authentication is due: no new requests, and SaslHandshake goes out once
    /// the ones in flight are answered.
    draining: bool,
    /// The SASL exchange under way is a re-authentication of a live connection.
    reauthenticating: bool,
}

/// The longest a connection waits for a host name lookup before it is tried again
/// (the lookup's answer normally ends the wait at once; a resolver that never
/// answers leaves the lookup pending, so the retry finds it still running).
const RESOLVE_WAIT: Duration = Duration::from_secs(5);

/// How often a broker that stays unreachable is reported again.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Logs why a broker cannot be used: at once for the first failure since it last
/// worked, then at most every [`WARN_EVERY`] per address (the reactor retries with
/// backoff; the log is for the operator waiting on it). Several connections to one
/// address (fetch path and side connections) share the limit.
fn warn_unreachable(
    warned: &mut HashMap<(String, u16), Instant>,
    b: &Broker<impl Sized>,
    now: Instant,
    what: std::fmt::Arguments<'_>,
) {
    let key = (b.host.clone(), b.port);
    if warned
        .get(&key)
        .is_some_and(|t| now.saturating_duration_since(*t) < WARN_EVERY)
    {
        return;
    }
    warned.insert(key, now);
    log::warn!(
        target: "weir_fetch::broker",
        "{}:{}: {what}; retrying with backoff",
        b.host,
        b.port
    );
}

impl<L> Broker<L> {
    fn new(node_id: i32, host: String, port: u16, cfg: &FetchConfig, now: Instant) -> Self {
        Self {
            node_id,
            host,
            port,
            conn: None,
            phase: Phase::Down { retry_at: now },
            resolving: false,
            backoff: Backoff::new(cfg.reconnect_backoff_ms, cfg.reconnect_backoff_max_ms),
            fetch_in_flight: false,
            fetch_sent_at: None,
            fetch_not_before: None,
            session: FetchSession::default(),
            list_in_flight: Vec::new(),
            metadata_in_flight: false,
            side: false,
            connect_attempts: 0,
            answered: false,
            early_closes: 0,
            reauth_at: None,
            draining: false,
            reauthenticating: false,
        }
    }

    fn versions(&self) -> Option<&ApiVersionTable> {
        match &self.phase {
            Phase::Ready(t) if !self.draining => Some(t),
            _ => None,
        }
    }
}

/// The fetch engine, sans-IO. See the module docs.
pub(crate) struct Engine<N: Net> {
    /// Unreachable broker addresses and when that was last logged.
    warned: HashMap<(String, u16), Instant>,
    /// Assigned topics Metadata says do not exist, and when that was last logged.
    missing_topics: HashMap<Arc<str>, Instant>,
    /// Connections: dialled, closed, and the host name lookups behind them.
    pub(crate) net: N,
    cfg: FetchConfig,
    pub(crate) brokers: Vec<Broker<N::Link>>,
    topics: HashMap<Arc<str>, [u8; 16]>,
    parts: Vec<PartState>,
    index: HashMap<(Arc<str>, i32), usize>,
    meta: MetaSchedule,
    chunks: VecDeque<Chunk>,
    pub(crate) errors: VecDeque<FetchError>,
    pub(crate) metrics: Arc<Metrics>,
    rng: u64,
    workers: usize,
    side_events: VecDeque<SideEvent>,
    /// The last turn at which some (non-side) broker was ready: the clock of
    /// KIP-1102's rebootstrap.
    last_reachable: Instant,
    /// The node id the next re-added bootstrap entry gets (negative, unused).
    next_bootstrap_id: i32,
}

impl<N: Net> fmt::Debug for Engine<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("brokers", &self.brokers.len())
            .field("partitions", &self.parts.len())
            .finish()
    }
}

impl<N: Net> Engine<N> {
    /// An engine for `cfg` (validated, durations clamped) whose connections go
    /// through `net`; `seed` starts the jitter of backoffs. Nothing is dialled until
    /// [`plan`](Self::plan).
    pub(crate) fn new(
        cfg: FetchConfig,
        net: N,
        now: Instant,
        seed: u64,
    ) -> Result<Self, FetchError> {
        let mut brokers = Vec::new();
        let cfg_bootstrap_len = cfg.bootstrap_servers.len() as i32;
        for (i, s) in cfg.bootstrap_servers.iter().enumerate() {
            let (host, port) = split_host_port(s)
                .ok_or_else(|| FetchError::Config(format!("bad bootstrap server {s:?}")))?;
            brokers.push(Broker::new(-1 - i as i32, host, port, &cfg, now));
        }
        let meta = MetaSchedule::new(
            now,
            Duration::from_millis(cfg.retry_backoff_ms),
            Duration::from_millis(cfg.reconnect_backoff_max_ms.max(1000)),
            cfg.metadata_refresh_interval(),
        );
        Ok(Self {
            warned: HashMap::new(),
            missing_topics: HashMap::new(),
            net,
            cfg,
            brokers,
            topics: HashMap::new(),
            parts: Vec::new(),
            index: HashMap::new(),
            meta,
            chunks: VecDeque::new(),
            errors: VecDeque::new(),
            metrics: Arc::new(Metrics::default()),
            rng: 0x2545_f491_4f6c_dd1d ^ (seed | 1),
            workers: 1,
            side_events: VecDeque::new(),
            last_reachable: now,
            next_bootstrap_id: -1 - cfg_bootstrap_len,
        })
    }

    /// The configuration.
    pub(crate) fn config(&self) -> &FetchConfig {
        &self.cfg
    }

    /// Shared counters.
    pub(crate) fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Set how many workers partitions are spread over (before assigning).
    pub(crate) fn set_workers(&mut self, n: usize) {
        self.workers = n.max(1);
        for (i, p) in self.parts.iter_mut().enumerate() {
            p.worker = i % self.workers;
        }
    }

    /// Start reading `topic`/`partition` from `start`. Re-assigning an assigned
    /// partition seeks it. Returns the partition's index.
    pub(crate) fn assign(&mut self, topic: &str, partition: i32, start: StartAt) -> usize {
        if let Some(&i) = self.index.get(&(Arc::from(topic), partition)) {
            self.seek(i, start);
            return i;
        }
        let topic: Arc<str> = Arc::from(topic);
        let i = self.parts.len();
        let p = PartState::new(
            Arc::clone(&topic),
            partition,
            self.topics.get(&topic).copied().unwrap_or([0; 16]),
            i % self.workers,
            self.cfg.max_partition_fetch_bytes,
            (
                self.cfg.retry_backoff_ms,
                self.cfg.reconnect_backoff_max_ms.max(1000),
            ),
            start,
        );
        self.parts.push(p);
        self.index.insert((topic, partition), i);
        self.meta.invalidate();
        i
    }

    /// Stop reading `topic`/`partition` (a rebalance revoked it, or the application
    /// is done with it). Data fetched for it is dropped; its last position stays
    /// readable in [`partitions`](Self::partitions) under the old index, and
    /// assigning it again starts a fresh entry. Returns the old index.
    pub(crate) fn unassign(&mut self, topic: &str, partition: i32) -> Option<usize> {
        let i = self.index.remove(&(Arc::from(topic), partition))?;
        self.set_paused(i, true);
        if let Some(p) = self.parts.get_mut(i) {
            p.retired = true;
            p.reset = None;
            p.leader = None;
        }
        Some(i)
    }

    /// The index of an assigned partition.
    pub(crate) fn index_of(&self, topic: &str, partition: i32) -> Option<usize> {
        self.index.get(&(Arc::from(topic), partition)).copied()
    }

    /// Every assigned partition's state, by index.
    pub(crate) fn partitions(&self) -> &[PartState] {
        &self.parts
    }

    /// Move partition `i` to `start`; data already fetched for it is dropped.
    pub(crate) fn seek(&mut self, i: usize, start: StartAt) {
        if let Some(p) = self.parts.get_mut(i) {
            p.generation.fetch_add(1, Ordering::AcqRel);
            p.start_at(start);
            self.chunks.retain(|c| c.part_idx != i);
        }
    }

    /// Stop (`true`) or restart fetching partition `i`.
    ///
    /// Pausing drops the partition's fetched-but-undelivered data and rewinds its
    /// fetch offset to its position: held data would pin its ring region, and since
    /// regions are reused in order, one paused partition would then stall all the
    /// others once the ring wrapped around to it. Resuming fetches it again.
    pub(crate) fn set_paused(&mut self, i: usize, paused: bool) {
        let Some(p) = self.parts.get_mut(i) else {
            return;
        };
        if p.set_paused(paused) {
            self.chunks.retain(|c| c.part_idx != i);
        }
    }

    /// Take the chunks fetched so far, in arrival order.
    pub(crate) fn take_chunks(&mut self) -> impl Iterator<Item = Chunk> + '_ {
        self.chunks.drain(..)
    }

    /// True when fetched chunks are waiting.
    pub(crate) fn has_chunks(&self) -> bool {
        !self.chunks.is_empty()
    }

    /// True when a fetched chunk of an unpaused partition is waiting.
    pub(crate) fn has_deliverable(&self) -> bool {
        self.chunks
            .iter()
            .any(|c| self.parts.get(c.part_idx).is_some_and(|p| !p.paused))
    }

    /// Put back chunks taken with [`take_chunks`](Self::take_chunks) but not
    /// processed (a paused partition's), ahead of newer ones and in their order.
    pub(crate) fn requeue(&mut self, chunks: Vec<Chunk>) {
        for c in chunks.into_iter().rev() {
            self.chunks.push_front(c);
        }
    }

    /// Whether the caller has something to do at once (a deliverable chunk or an
    /// error), so the driver must not block.
    pub(crate) fn has_work(&self) -> bool {
        self.has_deliverable() || !self.errors.is_empty()
    }

    /// Complete responses that arrived on broker `i`'s link, in order. An answer that
    /// cannot be decoded kills the link; the responses after it belong to the dead
    /// connection and are dropped. `out` is left empty (its memory is reused).
    pub(crate) fn on_responses(&mut self, i: usize, out: &mut Vec<Response>, now: Instant) {
        for resp in out.drain(..) {
            if let Err(e) = self.on_response(i, resp, now) {
                // An authentication failure is the whole story: no "unreachable"
                // warning on top of it.
                let quiet = matches!(e, FetchError::Authentication { .. });
                self.errors.push_back(e);
                self.close_link(i, ConnError::Closed, now, !quiet);
                break;
            }
        }
        out.clear();
    }

    /// Broker `i`'s link failed while reading or writing: a ring error is reported
    /// (on a side connection, a frame too large for its ring names the property that
    /// sizes it), and the connection is retried with backoff.
    pub(crate) fn link_failed(&mut self, i: usize, e: ConnError, now: Instant) {
        let side = self.brokers.get(i).is_some_and(|b| b.side);
        match &e {
            ConnError::Ring(RingError::FrameTooLarge { frame, capacity }) if side => {
                self.errors.push_back(FetchError::SideResponseTooLarge {
                    frame: *frame,
                    capacity: *capacity,
                });
            }
            ConnError::Ring(r) => self.errors.push_back(FetchError::Ring(r.clone())),
            ConnError::TlsListener | ConnError::Tls { .. } => {
                // Before a broker's first answer, a TLS failure is the settings'
                // (certificates, a client certificate the broker refuses, a port
                // of the other protocol): say so once, without the "unreachable"
                // warning. Later it is a damaged connection, retried like one.
                let Some(b) = self.brokers.get(i) else { return };
                let fresh = !b.answered;
                let reason = match &e {
                    ConnError::Tls { error, handshake } if *handshake || fresh => {
                        let origin = self
                            .cfg
                            .tls
                            .as_ref()
                            .map(crate::tls::TlsConfig::ca_origin)
                            .unwrap_or_default();
                        Some(crate::tls::describe(error, &b.host, &origin))
                    }
                    ConnError::TlsListener => Some(
                        "the broker answered in TLS: its listener wants security.protocol=SSL \
                         (or SASL_SSL with SASL)"
                            .to_owned(),
                    ),
                    _ => None,
                };
                if let Some(reason) = reason {
                    self.errors.push_back(FetchError::Tls {
                        broker: format!("{}:{}", b.host, b.port),
                        reason,
                    });
                    self.close_link(i, e, now, false);
                    return;
                }
            }
            _ => {}
        }
        self.conn_died(i, e, now);
    }

    /// Take the errors reported since the last call.
    pub(crate) fn take_errors(&mut self) -> impl Iterator<Item = FetchError> + '_ {
        self.errors.drain(..)
    }

    /// Take the oldest error reported, leaving the others queued.
    pub(crate) fn pop_error(&mut self) -> Option<FetchError> {
        self.errors.pop_front()
    }

    /// Record that a chunk was processed: the position moves, a corrupt batch pauses
    /// the partition at that batch.
    pub(crate) fn on_processed(
        &mut self,
        chunk_part: usize,
        generation: u64,
        result: Result<ChunkOutcome, ChunkError>,
    ) {
        let Some(p) = self.parts.get_mut(chunk_part) else {
            return;
        };
        // A failed chunk bumped the generation itself (so chunks queued behind it
        // are dropped); anything else must match exactly.
        let expected = if result.is_err() {
            generation + 1
        } else {
            generation
        };
        if p.current_generation() != expected {
            return;
        }
        match result {
            Ok(o) if o.stale => {}
            Ok(o) => {
                self.metrics.records.fetch_add(o.records, Ordering::Relaxed);
                self.metrics.bytes.fetch_add(o.bytes, Ordering::Relaxed);
                self.metrics
                    .aborted_batches
                    .fetch_add(o.aborted_batches, Ordering::Relaxed);
                if p.position.is_none_or(|pos| o.next_offset > pos) {
                    p.position = Some(o.next_offset);
                }
            }
            Err(e) => {
                self.metrics
                    .records
                    .fetch_add(e.partial.records, Ordering::Relaxed);
                self.metrics.corrupt_batches.fetch_add(1, Ordering::Relaxed);
                p.paused = true;
                p.held_at_bad_batch = false;
                p.position = Some(e.offset);
                p.fetch_offset = Some(e.offset);
                self.chunks.retain(|c| c.part_idx != chunk_part);
                self.errors.push_back(FetchError::Corrupt(e));
            }
        }
    }

    /// The earliest future moment a timer needs attention. Moments already past are
    /// left out: their work was done (or is waiting for IO) in `plan`, and counting
    /// them would turn `poll` into a busy loop.
    pub(crate) fn next_timer(&self, now: Instant) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut min = |x: Instant| {
            if x > now {
                t = Some(t.map_or(x, |y| y.min(x)));
            }
        };
        for b in &self.brokers {
            if let Some(c) = &b.conn
                && let Some(d) = c.next_deadline()
            {
                min(d);
            }
            if let Phase::Down { retry_at } = b.phase
                && self.broker_needed(b)
            {
                min(retry_at);
            }
            if let Some(nb) = b.fetch_not_before {
                min(nb);
            }
            if let Some(t) = b.reauth_at {
                min(t);
            }
        }
        for t in self.meta.timers() {
            min(t);
        }
        for p in &self.parts {
            if let Some(nb) = p.reset_not_before {
                min(nb);
            }
            if let Some(nb) = p.fetch_not_before
                && !p.paused
            {
                min(nb);
            }
        }
        t
    }

    fn jitter(&mut self) -> u32 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 32) as u32
    }

    pub(crate) fn timers(&mut self, now: Instant) {
        self.meta.tick(now);
        self.rebootstrap_if_lost(now);
        for i in 0..self.brokers.len() {
            let dead = match self.brokers[i].conn.as_mut() {
                Some(c) => c.check_timeouts(now).err(),
                None => None,
            };
            if let Some(e) = dead {
                self.conn_died(i, e, now);
            }
        }
    }

    /// KIP-1102: after `rebootstrap_trigger_ms` with no broker ready, dial the
    /// `bootstrap.servers` addresses again (those no broker entry has now: a
    /// bootstrap entry became a node when Metadata named its address, and follows that
    /// node if it moves), and ask for metadata anew. Every known broker keeps being
    /// retried too, with its backoff.
    fn rebootstrap_if_lost(&mut self, now: Instant) {
        let Some(ms) = self.cfg.rebootstrap_trigger_ms else {
            return;
        };
        if self
            .brokers
            .iter()
            .any(|b| !b.side && matches!(b.phase, Phase::Ready(_)))
        {
            self.last_reachable = now;
            return;
        }
        if now.saturating_duration_since(self.last_reachable) < Duration::from_millis(ms) {
            return;
        }
        self.last_reachable = now;
        let mut added = Vec::new();
        for s in &self.cfg.bootstrap_servers {
            let Some((host, port)) = split_host_port(s) else {
                continue;
            };
            if self
                .brokers
                .iter()
                .any(|b| !b.side && b.host == host && b.port == port)
            {
                continue;
            }
            added.push(format!("{host}:{port}"));
            let b = Broker::new(self.next_bootstrap_id, host, port, &self.cfg, now);
            self.next_bootstrap_id -= 1;
            self.brokers.push(b);
        }
        log::warn!(
            target: "weir_fetch::metadata",
            "no broker reachable for {ms} ms (metadata.recovery.rebootstrap.trigger.ms): \
             rebootstrapping from bootstrap.servers{}",
            if added.is_empty() {
                String::new()
            } else {
                format!(" ({} dialled again)", added.join(", "))
            }
        );
        self.meta.invalidate();
    }

    fn broker_needed(&self, b: &Broker<N::Link>) -> bool {
        if b.side {
            return true;
        }
        let leads = self
            .parts
            .iter()
            .any(|p| p.leader == Some(b.node_id) && !p.paused);
        leads || (self.meta.needed() && self.metadata_broker().is_none_or(|m| m == b.node_id))
    }

    /// The broker to ask for metadata: a ready one if any, else the first that can be
    /// (re)connected.
    fn metadata_broker(&self) -> Option<i32> {
        let fetchers = || self.brokers.iter().filter(|b| !b.side);
        fetchers()
            .find(|b| matches!(b.phase, Phase::Ready(_)))
            .or_else(|| {
                fetchers()
                    .find(|b| matches!(b.phase, Phase::Handshake | Phase::Authenticating { .. }))
            })
            .or_else(|| {
                fetchers()
                    .filter_map(|b| match b.phase {
                        Phase::Down { retry_at } => Some((retry_at, b)),
                        _ => None,
                    })
                    .min_by_key(|(retry_at, _)| *retry_at)
                    .map(|(_, b)| b)
            })
            .map(|b| b.node_id)
    }

    /// Lookups that answered: their brokers connect now.
    fn lookups_done(&mut self, now: Instant) {
        for (host, port) in self.net.resolved(now) {
            for b in &mut self.brokers {
                if b.resolving && b.port == port && b.host == host {
                    b.resolving = false;
                    b.phase = Phase::Down { retry_at: now };
                }
            }
        }
    }

    pub(crate) fn plan(&mut self, now: Instant) {
        self.lookups_done(now);
        self.reauthenticate(now);
        // Connections.
        for i in 0..self.brokers.len() {
            let due = matches!(self.brokers[i].phase, Phase::Down { retry_at } if retry_at <= now);
            if due && self.broker_needed(&self.brokers[i]) {
                self.connect(i, now);
            }
        }
        // Metadata.
        if self.meta.due(now)
            && !self.brokers.iter().any(|b| b.metadata_in_flight)
            && let Some(i) = self
                .brokers
                .iter()
                .position(|b| !b.side && matches!(b.phase, Phase::Ready(_)))
        {
            self.send_metadata(i, now);
        }
        // Offsets and fetches.
        for i in 0..self.brokers.len() {
            if self.brokers[i].side || self.brokers[i].versions().is_none() {
                continue;
            }
            self.send_list_offsets(i, now);
            self.send_fetch(i, now);
        }
    }

    /// KIP-368: a connection whose SASL session is about to end stops taking new
    /// requests; once those in flight are answered (a long-polling fetch within
    /// `fetch.max.wait.ms`), it authenticates again on the same socket, so nothing in
    /// flight is dropped and no reconnect happens.
    fn reauthenticate(&mut self, now: Instant) {
        let Some(sasl) = self.cfg.sasl.clone() else {
            return;
        };
        for i in 0..self.brokers.len() {
            let b = &mut self.brokers[i];
            if !matches!(b.phase, Phase::Ready(_)) {
                continue;
            }
            if !b.draining && b.reauth_at.is_some_and(|t| t <= now) {
                log::debug!(
                    target: "weir_fetch::broker",
                    "{}:{}: SASL session ending: re-authenticating",
                    b.host,
                    b.port
                );
                b.draining = true;
            }
            if !b.draining || b.conn.as_ref().is_none_or(|c| c.in_flight() > 0) {
                continue;
            }
            let Phase::Ready(table) = std::mem::replace(&mut b.phase, Phase::Handshake) else {
                continue;
            };
            b.draining = false;
            b.reauth_at = None;
            b.reauthenticating = true;
            if let Err(e) = self.start_sasl(i, table, &sasl, now) {
                self.errors.push_back(e);
                self.close_link(i, ConnError::Closed, now, false);
            }
        }
    }

    fn connect(&mut self, i: usize, now: Instant) {
        let b = &self.brokers[i];
        let dialled = self.net.dial(i, &b.host, b.port, b.connect_attempts, now);
        let b = &mut self.brokers[i];
        let why = match dialled {
            Dial::Resolving => {
                if b.resolving {
                    // RESOLVE_WAIT passed and the resolver has still not answered.
                    warn_unreachable(
                        &mut self.warned,
                        b,
                        now,
                        format_args!("the host name lookup has not answered yet"),
                    );
                }
                // Woken by the lookup's answer (`lookups_done`), not by this time.
                b.resolving = true;
                b.phase = Phase::Down {
                    retry_at: now + RESOLVE_WAIT,
                };
                return;
            }
            Dial::Unresolved(why) => why,
            Dial::Connecting(c) => {
                // The next attempt takes the next resolved address, so a name that
                // resolves to ::1 and 127.0.0.1 reaches a broker listening on only
                // one of them.
                b.connect_attempts = b.connect_attempts.wrapping_add(1);
                b.conn = Some(c);
                b.phase = Phase::Handshake;
                self.send_api_versions(i, ApiVersionsResponse::MAX_VERSION, now);
                return;
            }
            Dial::Refused(why) => {
                b.connect_attempts = b.connect_attempts.wrapping_add(1);
                why
            }
        };
        let j = self.jitter();
        let b = &mut self.brokers[i];
        warn_unreachable(&mut self.warned, b, now, format_args!("{why}"));
        b.phase = Phase::Down {
            retry_at: now + Duration::from_millis(b.backoff.next_delay_ms(j)),
        };
    }

    fn send<R: ApiRequest>(
        &mut self,
        i: usize,
        kind: Kind,
        version: i16,
        req: &R,
        now: Instant,
    ) -> bool {
        let deadline = now
            + self.cfg.request_timeout()
            + if kind == Kind::Fetch {
                Duration::from_millis(self.cfg.fetch_max_wait_ms.max(0) as u64)
            } else {
                Duration::ZERO
            };
        self.send_until(i, kind, version, req, now, deadline)
    }

    /// [`send`](Self::send) with the connection given up on at `deadline` if the
    /// answer has not come.
    fn send_until<R: ApiRequest>(
        &mut self,
        i: usize,
        kind: Kind,
        version: i16,
        req: &R,
        now: Instant,
        deadline: Instant,
    ) -> bool {
        let client_id = self.cfg.client_id.clone();
        let Some(conn) = self.brokers[i].conn.as_mut() else {
            return false;
        };
        let corr = conn.next_correlation_id();
        let mut buf = BytesMut::new();
        if let Err(e) = encode_request(&mut buf, corr, Some(&client_id), version, req) {
            self.errors.push_back(FetchError::Config(e.to_string()));
            return false;
        }
        let inflight = InFlight {
            correlation_id: corr,
            api_key: R::API_KEY,
            api_version: version,
            deadline,
            tag: kind as u64,
        };
        if let Err(e) = conn.send(inflight, buf.to_vec()) {
            self.conn_died(i, e, now);
            return false;
        }
        true
    }

    fn send_api_versions(&mut self, i: usize, version: i16, now: Instant) {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("weir"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        self.send(i, Kind::ApiVersions, version, &req, now);
    }

    fn send_metadata(&mut self, i: usize, now: Instant) {
        let Some(table) = self.brokers[i].versions() else {
            return;
        };
        let v = match table
            .negotiate::<kafka_protocol::messages::MetadataRequest, MetadataResponse<'static>>()
        {
            Ok(v) => v,
            Err(e) => {
                self.errors.push_back(FetchError::Version(e));
                self.meta.hold_until(now + Duration::from_secs(5));
                return;
            }
        };
        let mut names: Vec<&str> = self
            .parts
            .iter()
            .filter(|p| !p.retired)
            .map(|p| &*p.topic)
            .collect();
        names.sort_unstable();
        names.dedup();
        let req = build_metadata_request(v, Some(&names), false);
        if self.send(i, Kind::Metadata, v, &req, now) {
            self.brokers[i].metadata_in_flight = true;
        }
    }

    fn send_list_offsets(&mut self, i: usize, now: Instant) {
        // One lookup in flight per broker: its response is matched to this list.
        if !self.brokers[i].list_in_flight.is_empty() {
            return;
        }
        let node = self.brokers[i].node_id;
        let want: Vec<(usize, i64)> = self
            .parts
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.leader == Some(node)
                    && p.reset_not_before.is_none_or(|t| t <= now)
                    && p.reset.is_some()
            })
            .filter(|(idx, _)| {
                !self
                    .brokers
                    .iter()
                    .any(|b| b.list_in_flight.iter().any(|(j, _)| j == idx))
            })
            .filter_map(|(idx, p)| {
                let ts = match p.reset? {
                    StartAt::Earliest => EARLIEST_TIMESTAMP,
                    StartAt::Latest => LATEST_TIMESTAMP,
                    StartAt::Timestamp(t) => t,
                    StartAt::Offset(_) => return None,
                };
                Some((idx, ts))
            })
            .collect();
        if want.is_empty() {
            return;
        }
        let Some(table) = self.brokers[i].versions() else {
            return;
        };
        let v = match table.negotiate::<kafka_protocol::messages::ListOffsetsRequest, ListOffsetsResponse<'static>>() {
            Ok(v) => v,
            Err(e) => {
                self.errors.push_back(FetchError::Version(e));
                for (idx, _) in &want {
                    self.parts[*idx].reset_not_before = Some(now + Duration::from_secs(5));
                }
                return;
            }
        };
        let specs: Vec<ListOffsetsSpec<'_>> = want
            .iter()
            .map(|&(idx, ts)| ListOffsetsSpec {
                topic: &self.parts[idx].topic,
                partition: self.parts[idx].partition,
                timestamp: ts,
                current_leader_epoch: self.parts[idx].leader_epoch,
            })
            .collect();
        let req = build_list_offsets_request(
            v,
            self.cfg.isolation_level.wire(),
            self.cfg.request_timeout_ms.min(i32::MAX as u64) as i32,
            &specs,
        );
        if self.send(i, Kind::ListOffsets, v, &req, now) {
            self.brokers[i].list_in_flight = want;
        }
    }

    fn send_fetch(&mut self, i: usize, now: Instant) {
        let b = &self.brokers[i];
        if b.fetch_in_flight || b.fetch_not_before.is_some_and(|t| t > now) {
            return;
        }
        let Some(table) = b.versions() else {
            return;
        };
        let v = match table
            .negotiate::<kafka_protocol::messages::FetchRequest, FetchResponse<'static>>()
        {
            Ok(v) => v,
            Err(e) => {
                self.errors.push_back(FetchError::Version(e));
                self.brokers[i].fetch_not_before = Some(now + Duration::from_secs(5));
                return;
            }
        };
        let node = b.node_id;
        let want: HashMap<usize, SentPart> = self
            .parts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.fetchable(node, v, now))
            .filter_map(|(idx, p)| {
                Some((
                    idx,
                    SentPart {
                        fetch_offset: p.fetch_offset?,
                        max_bytes: p.max_bytes,
                        leader_epoch: p.leader_epoch,
                    },
                ))
            })
            .collect();
        let sessions = self.cfg.fetch_sessions && v >= 7;
        let Some(plan) = self.brokers[i].session.plan(&want, sessions) else {
            return;
        };
        let specs: Vec<FetchPartitionSpec<'_>> = plan
            .send
            .iter()
            .map(|&idx| {
                let p = &self.parts[idx];
                let sp = want[&idx];
                let mut s = FetchPartitionSpec::new(
                    &p.topic,
                    p.topic_id,
                    p.partition,
                    sp.fetch_offset,
                    sp.max_bytes,
                );
                s.current_leader_epoch = p.leader_epoch;
                s
            })
            .collect();
        let forgotten: Vec<(&str, [u8; 16], i32)> = plan
            .forget
            .iter()
            .map(|&idx| {
                let p = &self.parts[idx];
                (&*p.topic, p.topic_id, p.partition)
            })
            .collect();
        let params = FetchParams {
            max_wait_ms: self.cfg.fetch_max_wait_ms,
            min_bytes: self.cfg.fetch_min_bytes,
            max_bytes: self.cfg.fetch_max_bytes,
            isolation_level: self.cfg.isolation_level.wire(),
            session_id: plan.session_id,
            session_epoch: plan.session_epoch,
            rack_id: &self.cfg.client_rack,
        };
        let req = build_fetch_request(v, &params, &specs, &forgotten);
        drop(specs);
        drop(forgotten);
        if self.send(i, Kind::Fetch, v, &req, now) {
            let b = &mut self.brokers[i];
            b.fetch_in_flight = true;
            b.fetch_sent_at = Some(now);
            b.session.sent(&plan, want);
            self.metrics.fetch_requests.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn conn_died(&mut self, i: usize, e: ConnError, now: Instant) {
        self.close_link(i, e, now, true);
    }

    fn close_link(&mut self, i: usize, e: ConnError, now: Instant, warn: bool) {
        let j = self.jitter();
        // Closed already (an answer that failed the connection, then the end of the
        // stream read in the same turn): nothing more to do or say.
        let Some(b) = self.brokers.get_mut(i).filter(|b| b.conn.is_some()) else {
            return;
        };
        log::debug!(
            target: "weir_fetch::broker",
            "{}:{}: connection closed: {e}",
            b.host,
            b.port
        );
        if warn {
            warn_unreachable(&mut self.warned, b, now, format_args!("{e}"));
        }
        // A broker that accepts the connection and then closes it before a single
        // answer past the handshake, time after time, is not coming back by itself:
        // the listener wants TLS or SASL that this client is not speaking (or the
        // other way round). Say so instead of retrying quietly forever. A connect
        // that was refused (a broker down or restarting) does not count.
        if !b.answered && b.conn.as_ref().is_some_and(Link::was_connected) {
            b.early_closes += 1;
            if b.early_closes == EARLY_CLOSE_LIMIT {
                let hint = match (&b.phase, self.cfg.sasl.is_some()) {
                    (Phase::Handshake, _) if self.cfg.tls.is_some() => {
                        "during the TLS handshake or before answering ApiVersions: is it a plaintext listener? If so, set security.protocol=PLAINTEXT (or SASL_PLAINTEXT)"
                    }
                    (Phase::Handshake, _) => {
                        "before answering ApiVersions: is it a TLS listener? If so, set security.protocol=SSL (or SASL_SSL) and ssl.ca.location"
                    }
                    (_, false) => {
                        "right after ApiVersions: if its listener requires SASL, set security.protocol=SASL_PLAINTEXT and the sasl.* settings"
                    }
                    (_, true) => "during or right after SASL authentication",
                };
                self.errors.push_back(FetchError::Refused {
                    broker: format!("{}:{}", b.host, b.port),
                    closes: b.early_closes,
                    hint,
                });
            }
        }
        b.answered = false;
        b.reauth_at = None;
        b.draining = false;
        b.reauthenticating = false;
        let failed = match b.conn.as_mut() {
            Some(c) => self.net.close(c),
            None => Vec::new(),
        };
        b.conn = None;
        let delay = Duration::from_millis(b.backoff.next_delay_ms(j));
        b.phase = Phase::Down {
            retry_at: now + delay,
        };
        b.fetch_in_flight = false;
        b.session.reset();
        b.list_in_flight.clear();
        b.metadata_in_flight = false;
        if b.side {
            // Fetch-path requests are retried from the state they left behind; side
            // requests belong to their owner, who hears about each one.
            let failed: Vec<InFlight> = failed
                .into_iter()
                .filter(|r| Kind::from_tag(r.tag) == Some(Kind::Side))
                .collect();
            self.side_events.push_back(SideEvent::Closed {
                side: SideId(i),
                failed,
            });
        }
        self.metrics.disconnects.fetch_add(1, Ordering::Relaxed);
        // The leader may have moved.
        self.meta.invalidate();
    }

    pub(crate) fn on_response(
        &mut self,
        i: usize,
        resp: Response,
        now: Instant,
    ) -> Result<(), FetchError> {
        let Response { req, frame } = resp;
        let flexible = response_header_flexible_by_key(req.api_key, req.api_version);
        let kind = Kind::from_tag(req.tag);
        let api = match kind {
            Some(Kind::ApiVersions) => "ApiVersions",
            Some(Kind::Metadata) => "Metadata",
            Some(Kind::ListOffsets) => "ListOffsets",
            Some(Kind::Fetch) => "Fetch",
            Some(Kind::Side) => "side",
            Some(Kind::SaslHandshake) => "SaslHandshake",
            Some(Kind::SaslAuthenticate) => "SaslAuthenticate",
            None => "unknown",
        };
        let dec = |error| FetchError::Decode { api, error };
        let parsed = parse_response(&frame, flexible).map_err(dec)?;
        let body = parsed.body;
        match kind {
            Some(Kind::ApiVersions) => {
                let r = ApiVersionsResponse::decode_with_fallback(body, req.api_version)
                    .map_err(dec)?;
                if r.error_code == ErrorCode::UNSUPPORTED_VERSION {
                    match r.retry_version() {
                        Some(v) if v < req.api_version => self.send_api_versions(i, v, now),
                        _ => {
                            return Err(FetchError::Broker {
                                api,
                                topic: None,
                                partition: None,
                                code: r.error_code,
                            });
                        }
                    }
                } else if r.error_code.is_err() {
                    return Err(FetchError::Broker {
                        api,
                        topic: None,
                        partition: None,
                        code: r.error_code,
                    });
                } else {
                    let table = ApiVersionTable::from_response(&r);
                    match self.cfg.sasl.clone() {
                        Some(sasl) => self.start_sasl(i, table, &sasl, now)?,
                        None => self.become_ready(i, table),
                    }
                }
            }
            Some(Kind::SaslHandshake) => {
                let r = SaslHandshakeResponse::decode_body(body, req.api_version).map_err(dec)?;
                self.on_sasl_handshake(i, &r, now)?;
            }
            Some(Kind::SaslAuthenticate) => {
                let r =
                    SaslAuthenticateResponse::decode_body(body, req.api_version).map_err(dec)?;
                self.on_sasl_authenticate(i, &r, now)?;
            }
            Some(Kind::Metadata | Kind::ListOffsets | Kind::Fetch | Kind::Side) => {
                let b = &mut self.brokers[i];
                if !b.answered {
                    b.answered = true;
                    b.early_closes = 0;
                    b.backoff.reset();
                }
                self.on_answer(i, kind, req, &frame, body, now, dec)?;
            }
            None => {}
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn on_answer(
        &mut self,
        i: usize,
        kind: Option<Kind>,
        req: InFlight,
        frame: &crate::ring::Frame,
        body: &[u8],
        now: Instant,
        dec: impl Fn(weir_protocol::DecodeError) -> FetchError,
    ) -> Result<(), FetchError> {
        match kind {
            Some(Kind::Metadata) => {
                self.brokers[i].metadata_in_flight = false;
                let r = MetadataResponse::decode_body(body, req.api_version).map_err(dec)?;
                self.on_metadata(&r, now);
            }
            Some(Kind::ListOffsets) => {
                let asked = std::mem::take(&mut self.brokers[i].list_in_flight);
                let r = ListOffsetsResponse::decode_body(body, req.api_version).map_err(dec)?;
                self.on_list_offsets(&asked, &r, now);
            }
            Some(Kind::Fetch) => {
                let b = &mut self.brokers[i];
                b.fetch_in_flight = false;
                if let Some(t) = b.fetch_sent_at.take() {
                    self.metrics
                        .record_fetch_latency(now.saturating_duration_since(t));
                }
                let r = FetchResponse::decode_body(body, req.api_version).map_err(dec)?;
                self.on_fetch(i, frame, &r, req.api_version, now);
            }
            Some(Kind::Side) => {
                let body_offset = frame.len() - body.len();
                self.side_events.push_back(SideEvent::Response {
                    side: SideId(i),
                    req,
                    body_offset,
                    frame: frame.clone(),
                });
            }
            // Handled by on_response before it gets here.
            Some(Kind::ApiVersions | Kind::SaslHandshake | Kind::SaslAuthenticate) | None => {}
        }
        Ok(())
    }

    /// The connection is usable: requests flow from the next plan.
    fn become_ready(&mut self, i: usize, table: ApiVersionTable) {
        let b = &mut self.brokers[i];
        b.phase = Phase::Ready(table);
        // The reconnect backoff is reset by the first real answer, not here: a broker
        // that completes the handshake and then closes every connection must not be
        // redialled at the base backoff forever.
        self.warned.remove(&(b.host.clone(), b.port));
        log::debug!(
            target: "weir_fetch::broker",
            "{}:{}: connected (node {}{})",
            b.host,
            b.port,
            b.node_id,
            match &self.cfg.sasl {
                Some(s) => format!(", SASL {} as {}", s.mechanism, s.username),
                None => String::new(),
            }
        );
        // Stay on the address that worked.
        b.connect_attempts = b.connect_attempts.wrapping_sub(1);
        if b.side {
            self.side_events
                .push_back(SideEvent::Ready { side: SideId(i) });
        }
    }

    fn auth_error(&self, i: usize, reason: String) -> FetchError {
        let b = &self.brokers[i];
        FetchError::Authentication {
            broker: format!("{}:{}", b.host, b.port),
            mechanism: self.cfg.sasl.as_ref().map_or("", |s| s.mechanism.name()),
            reason,
        }
    }

    /// ApiVersions answered on a SASL connection: name the mechanism.
    fn start_sasl(
        &mut self,
        i: usize,
        table: ApiVersionTable,
        sasl: &SaslConfig,
        now: Instant,
    ) -> Result<(), FetchError> {
        // v1 carries the tokens in SaslAuthenticate; v0's raw frames are not spoken.
        if table
            .broker_range(SASL_HANDSHAKE_KEY)
            .is_none_or(|(_, max)| max < 1)
        {
            return Err(self.auth_error(
                i,
                "the broker does not speak SaslHandshake v1 (Kafka 1.0 or later is needed), or this listener is not a SASL one".into(),
            ));
        }
        self.brokers[i].phase = Phase::Authenticating { table, auth: None };
        let req = build_sasl_handshake_request(sasl.mechanism.name());
        self.send(i, Kind::SaslHandshake, 1, &req, now);
        Ok(())
    }

    fn on_sasl_handshake(
        &mut self,
        i: usize,
        r: &SaslHandshakeResponse<'_>,
        now: Instant,
    ) -> Result<(), FetchError> {
        let Some(sasl) = self.cfg.sasl.clone() else {
            return Ok(());
        };
        if r.error_code == ErrorCode::UNSUPPORTED_SASL_MECHANISM {
            return Err(self.auth_error(
                i,
                format!(
                    "the broker does not enable {}; it enables {}: set sasl.mechanism to one of them",
                    sasl.mechanism,
                    if r.mechanisms.is_empty() {
                        "none".to_owned()
                    } else {
                        r.mechanisms.join(", ")
                    }
                ),
            ));
        }
        if r.error_code == ErrorCode::ILLEGAL_SASL_STATE
            || (r.error_code.is_err() && r.mechanisms.is_empty())
        {
            return Err(self.auth_error(
                i,
                format!(
                    "the broker's listener does not take SASL ({}): check the port, or set security.protocol=PLAINTEXT",
                    r.error_code
                ),
            ));
        }
        if r.error_code.is_err() {
            return Err(self.auth_error(i, format!("SaslHandshake failed: {}", r.error_code)));
        }
        let nonce = random_nonce()
            .map_err(|e| self.auth_error(i, format!("no random nonce from the system: {e}")))?;
        let (auth, first) =
            Authenticator::start(&sasl, &nonce).map_err(|e| self.auth_error(i, e.to_string()))?;
        let Phase::Authenticating { auth: slot, .. } = &mut self.brokers[i].phase else {
            return Ok(());
        };
        *slot = Some(auth);
        self.send_sasl_authenticate(i, &first, now)
    }

    fn send_sasl_authenticate(
        &mut self,
        i: usize,
        msg: &[u8],
        now: Instant,
    ) -> Result<(), FetchError> {
        let Phase::Authenticating { table, .. } = &self.brokers[i].phase else {
            return Ok(());
        };
        let v = table
            .negotiate::<kafka_protocol::messages::SaslAuthenticateRequest, SaslAuthenticateResponse<'static>>()
            .map_err(FetchError::Version)?;
        let req = build_sasl_authenticate_request(msg);
        self.send(i, Kind::SaslAuthenticate, v, &req, now);
        Ok(())
    }

    fn on_sasl_authenticate(
        &mut self,
        i: usize,
        r: &SaslAuthenticateResponse<'_>,
        now: Instant,
    ) -> Result<(), FetchError> {
        if r.error_code.is_err() {
            let said = r
                .error_message
                .map(|m| m.chars().take(300).collect::<String>())
                .unwrap_or_else(|| r.error_code.to_string());
            let oauth = self
                .cfg
                .sasl
                .as_ref()
                .is_some_and(|s| s.mechanism == weir_protocol::auth::Mechanism::OAuthBearer);
            let hint = match (r.error_code == ErrorCode::SASL_AUTHENTICATION_FAILED, oauth) {
                (true, false) => "; check sasl.username and sasl.password (or sasl.jaas.config)",
                (true, true) => {
                    "; the broker refused the token: check its subject, expiry, audience and scope, and the sasl.oauthbearer.* settings"
                }
                (false, _) => "",
            };
            return Err(self.auth_error(i, format!("{said}{hint}")));
        }
        let Phase::Authenticating {
            auth: Some(auth), ..
        } = &mut self.brokers[i].phase
        else {
            return Ok(());
        };
        match auth.step(r.auth_bytes) {
            Ok(AuthStep::Send(msg)) => self.send_sasl_authenticate(i, &msg, now),
            Ok(AuthStep::Done) => {
                let Phase::Authenticating { table, .. } =
                    std::mem::replace(&mut self.brokers[i].phase, Phase::Handshake)
                else {
                    return Ok(());
                };
                // Re-authenticate at 85-95 % of the session the broker grants (as
                // Java does), never sooner than 100 ms from now: a hostile lifetime
                // cannot make a busy loop of it.
                let j = self.jitter();
                let b = &mut self.brokers[i];
                b.reauth_at = (r.session_lifetime_ms > 0).then(|| {
                    let life = r.session_lifetime_ms.unsigned_abs();
                    let share = 850 + u64::from(j % 101);
                    now + Duration::from_millis((life.saturating_mul(share) / 1000).max(100))
                });
                if std::mem::take(&mut b.reauthenticating) {
                    b.phase = Phase::Ready(table);
                    log::debug!(
                        target: "weir_fetch::broker",
                        "{}:{}: re-authenticated (session {} ms)",
                        b.host,
                        b.port,
                        r.session_lifetime_ms
                    );
                } else {
                    self.become_ready(i, table);
                }
                Ok(())
            }
            Err(e) => Err(self.auth_error(i, e.to_string())),
        }
    }

    fn on_metadata(&mut self, r: &MetadataResponse<'_>, now: Instant) {
        // Brokers.
        for mb in &r.brokers {
            let Ok(port) = u16::try_from(mb.port) else {
                continue;
            };
            match self.brokers.iter().position(|b| b.node_id == mb.node_id) {
                Some(j) => {
                    let b = &mut self.brokers[j];
                    if b.host != mb.host || b.port != port {
                        b.host = mb.host.to_owned();
                        b.port = port;
                        if b.conn.is_some() {
                            self.conn_died(j, ConnError::Closed, now);
                        }
                    }
                }
                None => {
                    // A bootstrap entry at the same address becomes this node, so its
                    // connection is reused instead of opening a second one.
                    match self.brokers.iter().position(|b| {
                        !b.side && b.node_id < 0 && b.host == mb.host && b.port == port
                    }) {
                        Some(j) => self.brokers[j].node_id = mb.node_id,
                        None => {
                            let b =
                                Broker::new(mb.node_id, mb.host.to_owned(), port, &self.cfg, now);
                            self.brokers.push(b);
                        }
                    }
                }
            }
        }
        // A leader the response does not list cannot be reached (Kafka lists the live
        // brokers): taking it anyway left the partition unfetched until the next
        // periodic refresh, metadata.max.age.ms (5 min) later.
        let listed = |id: i32| {
            r.brokers
                .iter()
                .any(|mb| mb.node_id == id && u16::try_from(mb.port).is_ok())
        };
        let mut unlisted: Vec<String> = Vec::new();
        let mut retry = false;
        for t in &r.topics {
            let Some(name) = t.name else {
                continue;
            };
            if t.error_code.is_err() {
                retry = true;
                if t.error_code == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                    && self.parts.iter().any(|p| !p.retired && *p.topic == *name)
                {
                    // As Java and kcat: say so, and keep waiting for it to be created.
                    let key: Arc<str> = Arc::from(name);
                    let quiet = self
                        .missing_topics
                        .get(&key)
                        .is_some_and(|t| now.saturating_duration_since(*t) < WARN_EVERY);
                    if !quiet {
                        log::warn!(
                            target: "weir_fetch::metadata",
                            "topic {name} does not exist (UNKNOWN_TOPIC_OR_PARTITION); \
                             waiting for it to be created"
                        );
                        self.missing_topics.insert(key, now);
                    }
                } else if !t.error_code.is_retriable()
                    && t.error_code != ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                {
                    self.errors.push_back(FetchError::Broker {
                        api: "Metadata",
                        topic: Some(Arc::from(name)),
                        partition: None,
                        code: t.error_code,
                    });
                }
                continue;
            }
            let key: Arc<str> = Arc::from(name);
            self.missing_topics.remove(&key);
            self.topics.insert(Arc::clone(&key), t.topic_id);
            for p in self
                .parts
                .iter_mut()
                .filter(|p| !p.retired && *p.topic == *name)
            {
                p.topic_id = t.topic_id;
                let found = t
                    .partitions
                    .iter()
                    .find(|mp| mp.partition_index == p.partition);
                if found.is_some() {
                    p.missing_reported = false;
                }
                match found {
                    // The topic is listed without this partition: it does not exist.
                    // Reported once (kcat stops on it; a library caller may go on),
                    // then asked again with backoff in case the topic grows.
                    None if !t.partitions.is_empty() => {
                        if !p.missing_reported {
                            p.missing_reported = true;
                            self.errors.push_back(FetchError::UnknownPartition {
                                topic: Arc::clone(&p.topic),
                                partition: p.partition,
                                partitions: t.partitions.len(),
                            });
                        }
                        p.leader = None;
                        retry = true;
                    }
                    Some(mp)
                        if mp.error_code.is_ok() && mp.leader_id >= 0 && !listed(mp.leader_id) =>
                    {
                        // As for LEADER_NOT_AVAILABLE: no leader, retry with backoff.
                        unlisted.push(format!(
                            "{}-{} (leader {})",
                            p.topic, p.partition, mp.leader_id
                        ));
                        p.leader = None;
                        retry = true;
                    }
                    Some(mp) if mp.error_code.is_ok() && mp.leader_id >= 0 => {
                        p.leader_from_metadata(mp.leader_id, mp.leader_epoch);
                    }
                    _ => {
                        p.leader = None;
                        retry = true;
                    }
                }
            }
        }
        // Assigned topics the broker did not mention.
        if self.parts.iter().any(|p| !p.retired && p.leader.is_none()) {
            retry = true;
        }
        let j = if retry { self.jitter() } else { 0 };
        if let Some(delay) = self.meta.answered(now, !retry, j)
            && !unlisted.is_empty()
        {
            log::warn!(
                target: "weir_fetch::metadata",
                "metadata names leaders missing from its broker list for {}; \
                 asking again in {} ms",
                unlisted.join(", "),
                delay.as_millis()
            );
        }
        self.metrics
            .metadata_refreshes
            .fetch_add(1, Ordering::Relaxed);
    }

    fn on_list_offsets(
        &mut self,
        asked: &[(usize, i64)],
        r: &ListOffsetsResponse<'_>,
        now: Instant,
    ) {
        for &(idx, ts) in asked {
            let p = &self.parts[idx];
            let found = r
                .topics
                .iter()
                .filter(|t| t.name == &*p.topic)
                .flat_map(|t| t.partitions.iter())
                .find(|lp| lp.partition_index == p.partition);
            let retry_at = now + Duration::from_millis(self.cfg.retry_backoff_ms);
            let p = &mut self.parts[idx];
            let Some(lp) = found else {
                p.reset_not_before = Some(retry_at);
                continue;
            };
            if lp.error_code.is_err() {
                p.reset_not_before = Some(retry_at);
                if needs_metadata(lp.error_code) || lp.error_code.is_retriable() {
                    self.meta.invalidate();
                } else {
                    self.errors.push_back(FetchError::Broker {
                        api: "ListOffsets",
                        topic: Some(Arc::clone(&p.topic)),
                        partition: Some(p.partition),
                        code: lp.error_code,
                    });
                }
                continue;
            }
            // The reset may have been replaced by a seek while the lookup was out.
            p.offset_found(
                ts,
                lp.offset,
                (EARLIEST_TIMESTAMP, LATEST_TIMESTAMP),
                retry_at,
            );
        }
    }

    fn on_fetch(
        &mut self,
        i: usize,
        frame: &crate::ring::Frame,
        r: &FetchResponse<'_>,
        version: i16,
        now: Instant,
    ) {
        let node = self.brokers[i].node_id;
        if r.throttle_time_ms > 0 {
            // Capped at request.timeout.ms: a real broker derives the throttle from its
            // quota window (1 s samples, 11 of them by default), so honest values are
            // seconds, and a KIP-219 broker also mutes the connection itself for that
            // long, so the client's wait is only courtesy. Anything longer would stop
            // fetching for up to 24 days on one hostile answer; request.timeout.ms is
            // already how long weir waits for a broker before calling it dead.
            let asked = r.throttle_time_ms as u64;
            let ms = asked.min(self.cfg.request_timeout_ms);
            if ms < asked {
                log::warn!(
                    "broker {node} asked to throttle fetches for {asked} ms; waiting \
                     {ms} ms (request.timeout.ms)"
                );
            }
            self.brokers[i].fetch_not_before = Some(now + Duration::from_millis(ms));
        }
        let sessions = self.cfg.fetch_sessions && version >= 7;
        if r.error_code.is_err() {
            let b = &mut self.brokers[i];
            b.session.reset();
            if r.error_code != ErrorCode::FETCH_SESSION_ID_NOT_FOUND
                && r.error_code != ErrorCode::INVALID_FETCH_SESSION_EPOCH
            {
                b.fetch_not_before = Some(now + Duration::from_millis(self.cfg.retry_backoff_ms));
                if needs_metadata(r.error_code) {
                    self.meta.invalidate();
                } else if !r.error_code.is_retriable() {
                    self.errors.push_back(FetchError::Broker {
                        api: "Fetch",
                        topic: None,
                        partition: None,
                        code: r.error_code,
                    });
                }
            }
            self.metrics.session_resets.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.brokers[i].session.answered(sessions, r.session_id);
        let read_committed = self.cfg.isolation_level == IsolationLevel::ReadCommitted;
        for t in &r.topics {
            let name: Option<Arc<str>> = if version >= 13 {
                self.topics
                    .iter()
                    .find(|(_, id)| **id == t.topic_id)
                    .map(|(n, _)| Arc::clone(n))
            } else {
                Some(Arc::from(t.topic))
            };
            let Some(name) = name else {
                self.meta.invalidate();
                continue;
            };
            for fp in &t.partitions {
                let Some(&idx) = self.index.get(&(Arc::clone(&name), fp.partition_index)) else {
                    continue;
                };
                let Some(sent) = self.brokers[i].session.part(idx) else {
                    continue;
                };
                let jitter = self.jitter();
                let p = &mut self.parts[idx];
                if fp.error_code.is_err() {
                    let code = fp.error_code;
                    if code == ErrorCode::OFFSET_OUT_OF_RANGE {
                        if let Some(e) =
                            p.out_of_range(sent.fetch_offset, self.cfg.auto_offset_reset)
                        {
                            self.errors.push_back(e);
                        }
                    } else if needs_metadata(code) {
                        if p.leader == Some(node) {
                            p.leader = None;
                        }
                        // v12+ names the new leader (KIP-951): move at once when it is
                        // a broker we know and a newer epoch; metadata confirms later.
                        if let Some(cl) = fp.current_leader
                            && cl.leader_id >= 0
                            && cl.leader_epoch > p.leader_epoch
                            && self
                                .brokers
                                .iter()
                                .any(|b| !b.side && b.node_id == cl.leader_id)
                        {
                            p.leader = Some(cl.leader_id);
                            p.leader_epoch = cl.leader_epoch;
                        }
                        self.meta.invalidate();
                    } else if !code.is_retriable() {
                        p.paused = true;
                        self.errors.push_back(FetchError::Broker {
                            api: "Fetch",
                            topic: Some(Arc::clone(&p.topic)),
                            partition: Some(p.partition),
                            code,
                        });
                    }
                    // Drop it from the session so the next request restates it.
                    self.brokers[i].session.forget(idx);
                    continue;
                }
                if fp.high_watermark >= 0 {
                    p.high_watermark = fp.high_watermark;
                }
                if fp.last_stable_offset >= 0 {
                    p.last_stable_offset = fp.last_stable_offset;
                }
                if fp.log_start_offset >= 0 {
                    p.log_start_offset = fp.log_start_offset;
                }
                if p.fetch_offset != Some(sent.fetch_offset)
                    || p.paused
                    || p.held_at_bad_batch
                    || fp.records.is_empty()
                {
                    // Stale (seeked or paused since, or already stopped at a bad
                    // batch) or nothing new.
                    continue;
                }
                // Header walk: where the next fetch starts.
                let mut next = sent.fetch_offset;
                let mut batches = Batches::new(fp.records);
                let mut complete = 0usize;
                let mut bad = false;
                for b in batches.by_ref() {
                    match b {
                        Ok(b) => {
                            complete += 1;
                            next = next.max(b.next_offset());
                        }
                        Err(_) => {
                            bad = true;
                            break;
                        }
                    }
                }
                if complete == 0 && !bad {
                    // Only a partial batch: it is bigger than the partition limit.
                    // Kafka v3+ always returns one whole batch, but guard anyway: ask
                    // for more, which is progress of a kind. A partial batch that
                    // filled less than the limit, or a limit that cannot grow, will
                    // come back the same: back off and, in the end, report it.
                    let cap = self.cfg.fetch_max_bytes.max(p.max_bytes);
                    if fp.records.len() >= p.max_bytes as usize && p.max_bytes < cap {
                        p.max_bytes = p.max_bytes.saturating_mul(2).min(cap);
                    } else {
                        let why = "the first batch is truncated";
                        if let Some(e) = p.no_progress(sent.fetch_offset, why, jitter, now) {
                            self.errors.push_back(e);
                        }
                    }
                    continue;
                }
                if !bad && next <= sent.fetch_offset {
                    // Whole batches, all below the fetch offset: the same request
                    // would get the same answer.
                    let why = "every batch ends below the fetch offset";
                    if let Some(e) = p.no_progress(sent.fetch_offset, why, jitter, now) {
                        self.errors.push_back(e);
                    }
                    continue;
                }
                p.clear_no_progress();
                let Some(records) = frame.slice_ref(fp.records) else {
                    continue;
                };
                self.chunks.push_back(Chunk {
                    topic: Arc::clone(&p.topic),
                    partition: p.partition,
                    broker: self.brokers[i].node_id,
                    part_idx: idx,
                    generation: p.current_generation(),
                    live_generation: Arc::clone(&p.generation),
                    fetch_offset: sent.fetch_offset,
                    records,
                    aborted: if read_committed {
                        fp.aborted_transactions.clone().unwrap_or_default()
                    } else {
                        Vec::new()
                    },
                    read_committed,
                    check_crcs: self.cfg.check_crcs,
                });
                self.metrics
                    .fetched_bytes
                    .fetch_add(fp.records.len() as u64, Ordering::Relaxed);
                if bad {
                    // The chunk's processor delivers the good batches and reports the
                    // bad one (the same header walk fails there); stop fetching until
                    // then so the same bytes are not fetched in a loop, but do not
                    // pause: a paused partition's chunks are never delivered.
                    p.held_at_bad_batch = true;
                } else {
                    p.fetch_offset = Some(next);
                }
            }
        }
    }

    /// Open a side connection to `host:port`, driven by this reactor but owned by
    /// another layer (the group coordinator's connection). It is kept connected with
    /// the usual backoff, does its own ApiVersions handshake, and is never used for
    /// fetches, so a long-polling fetch cannot delay a heartbeat on it. Its events
    /// come out of [`take_side_events`](Self::take_side_events).
    pub(crate) fn open_side(&mut self, host: &str, port: u16, now: Instant) -> SideId {
        let id = i32::MIN + self.brokers.iter().filter(|b| b.side).count() as i32;
        let mut b = Broker::new(id, host.to_owned(), port, &self.cfg, now);
        b.side = true;
        self.brokers.push(b);
        SideId(self.brokers.len() - 1)
    }

    /// The negotiated versions of a side connection, once it is ready.
    pub(crate) fn side_versions(&self, side: SideId) -> Option<&ApiVersionTable> {
        self.brokers.get(side.0).filter(|b| b.side)?.versions()
    }

    /// Send a request on a side connection (it must be ready: see
    /// [`SideEvent::Ready`]). Returns the correlation id; the response comes back
    /// as a [`SideEvent::Response`], or the request is listed in
    /// [`SideEvent::Closed`] if the connection dies first.
    pub(crate) fn side_send<R: ApiRequest>(
        &mut self,
        side: SideId,
        version: i16,
        req: &R,
        now: Instant,
    ) -> Result<i32, FetchError> {
        let timeout = self.cfg.request_timeout();
        self.side_send_with_timeout(side, version, req, timeout, now)
    }

    /// [`side_send`](Self::side_send) for a request the broker may legitimately hold
    /// longer than `request.timeout.ms` (JoinGroup waits for a whole rebalance): the
    /// connection is reset only when no answer came within `timeout`.
    pub(crate) fn side_send_with_timeout<R: ApiRequest>(
        &mut self,
        side: SideId,
        version: i16,
        req: &R,
        timeout: Duration,
        now: Instant,
    ) -> Result<i32, FetchError> {
        let ready = self
            .brokers
            .get(side.0)
            .is_some_and(|b| b.side && b.versions().is_some());
        if !ready {
            return Err(FetchError::Config(
                "the side connection is not ready yet: wait for SideEvent::Ready".into(),
            ));
        }
        let corr = self.brokers[side.0]
            .conn
            .as_ref()
            .map(Link::peek_correlation_id)
            .unwrap_or(0);
        if self.send_until(side.0, Kind::Side, version, req, now, now + timeout) {
            Ok(corr)
        } else {
            Err(FetchError::Config(format!(
                "could not send {} on the side connection",
                R::NAME
            )))
        }
    }

    /// Events of side connections since the last call.
    pub(crate) fn take_side_events(&mut self) -> impl Iterator<Item = SideEvent> + '_ {
        self.side_events.drain(..)
    }

    /// The address of the broker with `node_id` (for the coordinator's own
    /// connection, which the group layer opens separately).
    pub(crate) fn broker_addr(&self, node_id: i32) -> Option<(String, u16)> {
        self.brokers
            .iter()
            .find(|b| b.node_id == node_id)
            .map(|b| (b.host.clone(), b.port))
    }

    /// True once every assigned partition has a leader and a fetch offset.
    pub(crate) fn is_ready(&self) -> bool {
        self.parts
            .iter()
            .filter(|p| !p.retired)
            .all(|p| p.leader.is_some() && p.fetch_offset.is_some())
    }

    /// Brokers that are connected and past the ApiVersions handshake.
    pub(crate) fn ready_brokers(&self) -> usize {
        self.brokers
            .iter()
            .filter(|b| b.conn.as_ref().is_some_and(Link::established) && b.versions().is_some())
            .count()
    }
}

fn needs_metadata(code: ErrorCode) -> bool {
    [
        ErrorCode::NOT_LEADER_OR_FOLLOWER,
        ErrorCode::FENCED_LEADER_EPOCH,
        ErrorCode::UNKNOWN_LEADER_EPOCH,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode::UNKNOWN_TOPIC_ID,
        ErrorCode::LEADER_NOT_AVAILABLE,
        ErrorCode::INCONSISTENT_TOPIC_ID,
        ErrorCode::REPLICA_NOT_AVAILABLE,
        ErrorCode::KAFKA_STORAGE_ERROR,
    ]
    .contains(&code)
}

#[cfg(test)]
mod tests;
