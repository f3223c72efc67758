//! The reactor: the fetch engine (`engine/`, sans-IO) driven over real sockets. One
//! thread, one `mio::Poll`, every socket and every clock read.
//!
//! The engine (`engine.rs`, sans-IO) holds the cluster metadata, the per-partition
//! fetch state, the fetch sessions and every decision; this driver owns what touches
//! the operating system: the poll, the sockets ([`Conn`]), the host name lookups
//! (weir-dns threads), the waker and the two receive rings (fetched data, and the
//! side connections' own). One call to [`Reactor::run_once`] does one turn:
//!
//! 1. the clock is read once, and the engine's timers and planning run with it
//!    (reconnects, request deadlines, Metadata, ListOffsets, Fetch);
//! 2. one `poll` for at most the caller's timeout, or until the engine's next timer;
//! 3. readable connections read into the ring, and each complete response is handed
//!    to the engine, which decodes it in place and queues records as [`Chunk`]s for
//!    [`Reactor::take_chunks`];
//! 4. planning again (a response usually lets the next request go), then every
//!    socket's interest is brought up to date.
//!
//! The group coordinator and the admin commands use side connections
//! ([`Reactor::open_side`]): their own sockets and their own ring, never a fetch, so
//! a long-polling fetch cannot delay a heartbeat.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Registry, Token, Waker};
use weir_protocol::ApiVersionTable;
use weir_protocol::frame::ApiRequest;

use crate::config::FetchConfig;
use crate::conn::{Conn, ConnError, InFlight, Response};
use crate::engine::{Dial, Engine, Link, Net};
use crate::metrics::Metrics;
use crate::process::{Chunk, ChunkError, ChunkOutcome};
use crate::resolve::{Lookup, Lookups};
use crate::ring::{Ring, RingError};

pub use crate::engine::{SideEvent, SideId};
pub use crate::error::FetchError;
pub use crate::partition::{PartState, StartAt};

const WAKER: Token = Token(usize::MAX);

impl Link for Conn {
    fn established(&self) -> bool {
        self.state() == crate::conn::State::Ready
    }
    fn was_connected(&self) -> bool {
        Conn::was_connected(self)
    }
    fn peek_correlation_id(&self) -> i32 {
        Conn::peek_correlation_id(self)
    }
    fn next_correlation_id(&mut self) -> i32 {
        Conn::next_correlation_id(self)
    }
    fn send(&mut self, req: InFlight, frame: Vec<u8>) -> Result<(), ConnError> {
        Conn::send(self, req, frame)
    }
    fn in_flight(&self) -> usize {
        Conn::in_flight(self)
    }
    fn next_deadline(&self) -> Option<Instant> {
        Conn::next_deadline(self)
    }
    fn check_timeouts(&mut self, now: Instant) -> Result<(), ConnError> {
        Conn::check_timeouts(self, now)
    }
}

/// Connections over mio sockets; host names looked up off this thread.
struct MioNet {
    registry: Registry,
    lookups: Lookups,
    /// Every connection's TLS client, when the settings ask for TLS.
    tls: Option<crate::tls::TlsConnector>,
}

impl Net for MioNet {
    type Link = Conn;

    fn dial(
        &mut self,
        token: usize,
        host: &str,
        port: u16,
        attempt: usize,
        now: Instant,
    ) -> Dial<Conn> {
        // Never getaddrinfo here: this thread heartbeats and fetches (see resolve).
        let addrs = match self.lookups.lookup(host, port, now) {
            Lookup::Ready(addrs) => addrs,
            Lookup::Pending => return Dial::Resolving,
            Lookup::Failed(why) => return Dial::Unresolved(why),
        };
        let Some(&addr) = addrs.get(attempt % addrs.len().max(1)) else {
            return Dial::Unresolved("the host name has no addresses".to_owned());
        };
        log::debug!(target: "weir_fetch::broker", "{host}:{port}: connecting to {addr}");
        let session = match &self.tls {
            None => None,
            Some(t) => match t.session(host) {
                Ok(s) => Some(s),
                Err(why) => return Dial::Unresolved(why),
            },
        };
        match Conn::connect(addr, Token(token), &self.registry, session) {
            Ok(c) => Dial::Connecting(c),
            Err(e) => Dial::Refused(format!("cannot connect to {addr}: {e}")),
        }
    }

    fn resolved(&mut self, now: Instant) -> Vec<(String, u16)> {
        self.lookups.drain(now)
    }

    fn close(&mut self, link: &mut Conn) -> Vec<InFlight> {
        link.fail_all(&self.registry)
    }
}

/// The single-threaded fetch engine on real sockets. See the module docs.
pub struct Reactor {
    engine: Engine<MioNet>,
    poll: Poll,
    events: Events,
    waker: Arc<Waker>,
    ring: Ring,
    /// The receive ring of side connections (see `FetchConfig::side_ring_bytes`).
    side_ring: Ring,
    responses: Vec<Response>,
}

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor")
            .field("engine", &self.engine)
            .field("ring", &self.ring)
            .finish()
    }
}

impl Reactor {
    /// A reactor for `cfg`. Nothing connects until [`run_once`](Self::run_once).
    pub fn new(mut cfg: FetchConfig) -> Result<Self, FetchError> {
        cfg.validate().map_err(FetchError::Config)?;
        // Clamp durations so `Instant + Duration` can never overflow (Kafka's own
        // limit for most of these is i32::MAX milliseconds, about 24 days).
        let cap = i32::MAX as u64;
        for ms in [
            &mut cfg.request_timeout_ms,
            &mut cfg.reconnect_backoff_ms,
            &mut cfg.reconnect_backoff_max_ms,
            &mut cfg.retry_backoff_ms,
            &mut cfg.metadata_max_age_ms,
        ] {
            *ms = (*ms).min(cap);
        }
        let poll = Poll::new().map_err(FetchError::Io)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(FetchError::Io)?);
        // weir.ring.bytes may be far more than the machine has: say so, not abort.
        let ring = Ring::try_new(cfg.ring_bytes).map_err(|e| FetchError::Config(e.to_string()))?;
        let w = Arc::clone(&waker);
        ring.set_waker(move || {
            let _ = w.wake();
        });
        // Side connections (coordinator) read into memory of their own: a fetch ring
        // full of data for slow handlers must not keep a heartbeat answer unread.
        let side_ring = Ring::try_new(cfg.side_ring_bytes).map_err(|e| match e {
            RingError::Allocation { capacity } => FetchError::Config(format!(
                "cannot allocate the {capacity}-byte coordinator ring: lower \
                 weir.coordinator.ring.bytes"
            )),
            other => FetchError::Config(other.to_string()),
        })?;
        let w = Arc::clone(&waker);
        side_ring.set_waker(move || {
            let _ = w.wake();
        });
        let tls = match &cfg.tls {
            None => None,
            Some(t) => Some(
                crate::tls::TlsConnector::new(t).map_err(|e| FetchError::Config(e.to_string()))?,
            ),
        };
        let net = MioNet {
            registry: poll.registry().try_clone().map_err(FetchError::Io)?,
            lookups: Lookups::new(cfg.resolver.clone(), Arc::clone(&waker)),
            tls,
        };
        let now = Instant::now();
        let seed = now.elapsed().as_nanos() as u64;
        let engine = Engine::new(cfg, net, now, seed)?;
        Ok(Self {
            engine,
            poll,
            events: Events::with_capacity(256),
            waker,
            ring,
            side_ring,
            responses: Vec::new(),
        })
    }

    /// The receive ring.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// A waker that interrupts a blocked [`run_once`](Self::run_once) (workers use it
    /// to report progress).
    pub fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    /// One turn of the loop; blocks in `poll` for at most `timeout`.
    pub fn run_once(&mut self, timeout: Duration) -> Result<(), FetchError> {
        let now = Instant::now();
        self.engine.timers(now);
        self.engine.plan(now);
        let mut wait = timeout;
        let now = Instant::now();
        if let Some(t) = self.engine.next_timer(now) {
            wait = wait.min(t.saturating_duration_since(now));
        }
        if self.engine.has_work() {
            wait = Duration::ZERO;
        }
        let metrics = self.engine.metrics();
        metrics.reactor_turns.fetch_add(1, Ordering::Relaxed);
        match self.poll.poll(&mut self.events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FetchError::Io(e)),
        }
        let mut ready: Vec<(usize, bool, bool)> = Vec::new();
        let mut woken = false;
        for ev in self.events.iter() {
            if ev.token() == WAKER {
                woken = true;
            } else {
                ready.push((
                    ev.token().0,
                    ev.is_readable() || ev.is_read_closed() || ev.is_error(),
                    ev.is_writable() || ev.is_error(),
                ));
            }
        }
        if woken {
            // Ring space may have been released: retry every starved reader.
            for (i, b) in self.engine.brokers.iter().enumerate() {
                if b.conn.as_ref().is_some_and(Conn::waiting_for_ring) {
                    ready.push((i, true, false));
                }
            }
        }
        for (i, r, w) in ready {
            self.drive_conn(i, r, w, &metrics);
        }
        let now = Instant::now();
        self.engine.plan(now);
        let registry = self.poll.registry();
        for b in &mut self.engine.brokers {
            if let Some(c) = b.conn.as_mut() {
                let _ = c.update_interest(registry);
            }
        }
        Ok(())
    }

    fn drive_conn(&mut self, i: usize, readable: bool, writable: bool, metrics: &Metrics) {
        let now = Instant::now();
        let mut out = std::mem::take(&mut self.responses);
        let side = self.engine.brokers.get(i).is_some_and(|b| b.side);
        let ring = if side { &self.side_ring } else { &self.ring };
        let res = match self.engine.brokers.get_mut(i).and_then(|b| b.conn.as_mut()) {
            Some(c) => {
                let before = c.bytes_read;
                let r = c.on_ready(readable, writable, ring, &mut out);
                metrics
                    .socket_bytes
                    .fetch_add(c.bytes_read - before, Ordering::Relaxed);
                if c.waiting_for_ring() {
                    metrics.ring_stalls.fetch_add(1, Ordering::Relaxed);
                }
                r
            }
            None => Ok(()),
        };
        self.engine.on_responses(i, &mut out, now);
        self.responses = out;
        if let Err(e) = res {
            self.engine.link_failed(i, e, now);
        }
    }

    /// The configuration.
    pub fn config(&self) -> &FetchConfig {
        self.engine.config()
    }

    /// Shared counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.engine.metrics()
    }

    /// Set how many workers partitions are spread over (before assigning).
    pub fn set_workers(&mut self, n: usize) {
        self.engine.set_workers(n)
    }

    /// Start reading `topic`/`partition` from `start`. Re-assigning an assigned
    /// partition seeks it. Returns the partition's index.
    pub fn assign(&mut self, topic: &str, partition: i32, start: StartAt) -> usize {
        self.engine.assign(topic, partition, start)
    }

    /// Stop reading `topic`/`partition` (a rebalance revoked it, or the application
    /// is done with it). Data fetched for it is dropped; its last position stays
    /// readable in [`partitions`](Self::partitions) under the old index, and
    /// assigning it again starts a fresh entry. Returns the old index.
    pub fn unassign(&mut self, topic: &str, partition: i32) -> Option<usize> {
        self.engine.unassign(topic, partition)
    }

    /// The index of an assigned partition.
    pub fn index_of(&self, topic: &str, partition: i32) -> Option<usize> {
        self.engine.index_of(topic, partition)
    }

    /// Every assigned partition's state, by index.
    pub fn partitions(&self) -> &[PartState] {
        self.engine.partitions()
    }

    /// Move partition `i` to `start`; data already fetched for it is dropped.
    pub fn seek(&mut self, i: usize, start: StartAt) {
        self.engine.seek(i, start)
    }

    /// Stop (`true`) or restart fetching partition `i`.
    ///
    /// Pausing drops the partition's fetched-but-undelivered data and rewinds its
    /// fetch offset to its position: held data would pin its ring region, and since
    /// regions are reused in order, one paused partition would then stall all the
    /// others once the ring wrapped around to it. Resuming fetches it again.
    pub fn set_paused(&mut self, i: usize, paused: bool) {
        self.engine.set_paused(i, paused)
    }

    /// Take the chunks fetched so far, in arrival order.
    pub fn take_chunks(&mut self) -> impl Iterator<Item = Chunk> + '_ {
        self.engine.take_chunks()
    }

    /// True when fetched chunks are waiting.
    pub fn has_chunks(&self) -> bool {
        self.engine.has_chunks()
    }

    /// True when a fetched chunk of an unpaused partition is waiting.
    pub fn has_deliverable(&self) -> bool {
        self.engine.has_deliverable()
    }

    /// Put back chunks taken with [`take_chunks`](Self::take_chunks) but not
    /// processed (a paused partition's), ahead of newer ones and in their order.
    pub fn requeue(&mut self, chunks: Vec<Chunk>) {
        self.engine.requeue(chunks)
    }

    /// Take the errors reported since the last call.
    pub fn take_errors(&mut self) -> impl Iterator<Item = FetchError> + '_ {
        self.engine.take_errors()
    }

    /// Take the oldest error reported, leaving the others queued.
    pub fn pop_error(&mut self) -> Option<FetchError> {
        self.engine.pop_error()
    }

    /// Record that a chunk was processed: the position moves, a corrupt batch pauses
    /// the partition at that batch.
    pub fn on_processed(
        &mut self,
        chunk_part: usize,
        generation: u64,
        result: Result<ChunkOutcome, ChunkError>,
    ) {
        self.engine.on_processed(chunk_part, generation, result)
    }

    /// Open a side connection to `host:port`, driven by this reactor but owned by
    /// another layer (the group coordinator's connection). It is kept connected with
    /// the usual backoff, does its own ApiVersions handshake, and is never used for
    /// fetches, so a long-polling fetch cannot delay a heartbeat on it. Its events
    /// come out of [`take_side_events`](Self::take_side_events).
    pub fn open_side(&mut self, host: &str, port: u16) -> SideId {
        self.engine.open_side(host, port, Instant::now())
    }

    /// The negotiated versions of a side connection, once it is ready.
    pub fn side_versions(&self, side: SideId) -> Option<&ApiVersionTable> {
        self.engine.side_versions(side)
    }

    /// Send a request on a side connection (it must be ready: see
    /// [`SideEvent::Ready`]). Returns the correlation id; the response comes back
    /// as a [`SideEvent::Response`], or the request is listed in
    /// [`SideEvent::Closed`] if the connection dies first.
    pub fn side_send<R: ApiRequest>(
        &mut self,
        side: SideId,
        version: i16,
        req: &R,
    ) -> Result<i32, FetchError> {
        self.engine.side_send(side, version, req, Instant::now())
    }

    /// [`side_send`](Self::side_send) for a request the broker may legitimately hold
    /// longer than `request.timeout.ms` (JoinGroup waits for a whole rebalance): the
    /// connection is reset only when no answer came within `timeout`.
    pub fn side_send_with_timeout<R: ApiRequest>(
        &mut self,
        side: SideId,
        version: i16,
        req: &R,
        timeout: Duration,
    ) -> Result<i32, FetchError> {
        self.engine
            .side_send_with_timeout(side, version, req, timeout, Instant::now())
    }

    /// Events of side connections since the last call.
    pub fn take_side_events(&mut self) -> impl Iterator<Item = SideEvent> + '_ {
        self.engine.take_side_events()
    }

    /// The address of the broker with `node_id` (for the coordinator's own
    /// connection, which the group layer opens separately).
    pub fn broker_addr(&self, node_id: i32) -> Option<(String, u16)> {
        self.engine.broker_addr(node_id)
    }

    /// True once every assigned partition has a leader and a fetch offset.
    pub fn is_ready(&self) -> bool {
        self.engine.is_ready()
    }

    /// Brokers that are connected and past the ApiVersions handshake.
    pub fn ready_brokers(&self) -> usize {
        self.engine.ready_brokers()
    }
}
