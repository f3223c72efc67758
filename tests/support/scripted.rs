//! A scripted fake broker, for the faults a real broker will not produce on demand.
//!
//! Plain threads and blocking std sockets on 127.0.0.1: one listener per node id (so it
//! can play a cluster and move partition leaders), one thread per connection. Each
//! request is decoded with `kafka-protocol` (its `broker` feature), recorded, and
//! answered, in this order of precedence:
//!
//! 1. the next queued [`Action`] for its API key ([`ScriptedBroker::push`]), once;
//! 2. the handler for its API key ([`ScriptedBroker::on`]), when it returns `Some`;
//! 3. the default: ApiVersions, Metadata, Fetch, ListOffsets and FindCoordinator are
//!    answered from the [`Cluster`] state (topics, leaders, pre-encoded record batches,
//!    watermarks, aborted transactions); any other API closes the connection and is
//!    reported by [`ScriptedBroker::errors`].
//!
//! Handlers run with the cluster state locked: they read it through [`Ctx::cluster`]
//! and must not call back into the `ScriptedBroker`. [`Ctx::default_action`] gives the
//! default answer, to return it after a delay or to edit it.
//!
//! Record batches are bytes the test builds with `weir_protocol::RecordBatchBuilder`
//! (every codec, transactional and control batches; [`uncompressed_batch`] wraps it).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, LeaderIdAndEpoch, PartitionData,
};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest,
    MetadataResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes, decode_request_header_from_buffer};
use uuid::Uuid;
use weir_protocol::RecordBatchBuilder;

/// Kafka error codes the defaults answer with.
pub mod code {
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
}

/// What the broker does with one request.
// Responses are big; actions are few and short-lived, boxing would only cost clarity.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Action {
    /// Encode this response with the request's version and correlation id.
    Respond(ResponseKind),
    /// Write these bytes verbatim: no size prefix, no header (truncated frames,
    /// garbage, a wrong correlation id, two responses at once...).
    RespondRaw(Bytes),
    /// Write a correct size prefix and response header, then these body bytes
    /// (a body that does not decode, or one from another version).
    RespondBody(Bytes),
    /// Wait, then do the inner action. Later requests on the same connection wait too,
    /// as on a real broker; other connections do not.
    Delay(Duration, Box<Action>),
    /// Close the connection without answering.
    CloseConnection,
    /// Read the request, never answer it (the connection stays open).
    NoResponse,
}

impl Action {
    pub fn delay(duration: Duration, then: Action) -> Action {
        Action::Delay(duration, Box::new(then))
    }
}

/// Where a request arrived and what the state looked like; given to handlers.
pub struct Ctx<'a> {
    /// The node id of the listener the request arrived on.
    pub node_id: i32,
    /// Connection number (unique per broker, in accept order).
    pub connection: u64,
    /// The cluster state (read-only: handlers run with it locked).
    pub cluster: &'a Cluster,
}

impl Ctx<'_> {
    /// The default answer to this request (see the module docs), if any.
    pub fn default_action(&self, header: &RequestHeader, request: &RequestKind) -> Option<Action> {
        default_action(self, header, request)
    }
}

/// A handler: `Some(action)` answers, `None` falls through to the default.
pub type Handler =
    Arc<dyn Fn(&Ctx<'_>, &RequestHeader, &RequestKind) -> Option<Action> + Send + Sync>;

/// One request the broker received (decoded), in arrival order.
#[derive(Debug, Clone)]
pub struct Received {
    pub node_id: i32,
    pub connection: u64,
    pub header: RequestHeader,
    pub request: RequestKind,
    pub at: Instant,
}

impl Received {
    pub fn api_key(&self) -> i16 {
        self.header.request_api_key
    }
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }
    /// The request as a Fetch request, if it is one.
    pub fn fetch(&self) -> Option<&FetchRequest> {
        match &self.request {
            RequestKind::Fetch(r) => Some(r),
            _ => None,
        }
    }
}

/// One pre-encoded record batch (or any bytes the test wants served as one).
#[derive(Debug, Clone)]
pub struct StoredBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub bytes: Bytes,
}

/// State of one partition.
#[derive(Debug, Clone)]
pub struct PartitionState {
    pub leader: i32,
    pub leader_epoch: i32,
    /// Served in order; Fetch returns those that end at or after the fetch offset.
    pub batches: Vec<StoredBatch>,
    pub log_start_offset: i64,
    /// `None`: the end of the last batch (0 when empty).
    pub high_watermark: Option<i64>,
    /// `None`: the high watermark.
    pub last_stable_offset: Option<i64>,
    /// (producer id, first offset) pairs, sent to read_committed fetches.
    pub aborted: Vec<(i64, i64)>,
    /// When non-zero, Fetch and ListOffsets answer this error code for the partition.
    pub error: i16,
}

impl PartitionState {
    fn new(leader: i32) -> PartitionState {
        PartitionState {
            leader,
            leader_epoch: 0,
            batches: Vec::new(),
            log_start_offset: 0,
            high_watermark: None,
            last_stable_offset: None,
            aborted: Vec::new(),
            error: code::NONE,
        }
    }

    pub fn log_end(&self) -> i64 {
        self.batches
            .last()
            .map_or(self.log_start_offset, |b| b.last_offset + 1)
    }
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.unwrap_or_else(|| self.log_end())
    }
    pub fn last_stable_offset(&self) -> i64 {
        self.last_stable_offset
            .unwrap_or_else(|| self.high_watermark())
    }
}

/// State of one topic.
#[derive(Debug, Clone)]
pub struct TopicState {
    pub id: Uuid,
    pub partitions: Vec<PartitionState>,
}

/// Everything the default answers are made from. Edit it with
/// [`ScriptedBroker::with_cluster`] or the shortcut methods.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub cluster_id: String,
    /// (node id, port), in start order.
    pub nodes: Vec<(i32, u16)>,
    pub controller_id: i32,
    /// The node FindCoordinator names.
    pub coordinator_id: i32,
    pub topics: BTreeMap<String, TopicState>,
    /// (api key, min, max) answered to ApiVersions.
    pub api_versions: Vec<(i16, i16, i16)>,
    /// An empty Fetch is answered after min(max_wait_ms, this).
    pub fetch_wait_cap: Duration,
    /// The host Metadata advertises for a node (127.0.0.1 when absent).
    pub hosts: BTreeMap<i32, String>,
}

impl Cluster {
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionState> {
        self.topics
            .get(topic)?
            .partitions
            .get(usize::try_from(partition).ok()?)
    }

    pub fn partition_mut(&mut self, topic: &str, partition: i32) -> &mut PartitionState {
        self.topics
            .get_mut(topic)
            .unwrap_or_else(|| panic!("scripted broker: no topic {topic:?}"))
            .partitions
            .get_mut(usize::try_from(partition).unwrap_or(usize::MAX))
            .unwrap_or_else(|| panic!("scripted broker: no partition {topic}/{partition}"))
    }

    fn topic_by_id(&self, id: Uuid) -> Option<(&String, &TopicState)> {
        self.topics.iter().find(|(_, t)| t.id == id)
    }

    fn port_of(&self, node_id: i32) -> Option<u16> {
        self.nodes
            .iter()
            .find(|(n, _)| *n == node_id)
            .map(|(_, p)| *p)
    }
}

/// The API keys the defaults answer, with kafka-protocol's version ranges.
pub fn default_api_versions() -> Vec<(i16, i16, i16)> {
    [
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::Metadata,
        ApiKey::OffsetCommit,
        ApiKey::OffsetFetch,
        ApiKey::FindCoordinator,
        ApiKey::JoinGroup,
        ApiKey::Heartbeat,
        ApiKey::LeaveGroup,
        ApiKey::SyncGroup,
        ApiKey::ApiVersions,
    ]
    .into_iter()
    .map(|k| {
        let range = k.valid_versions();
        (k as i16, range.min, range.max)
    })
    .collect()
}

#[derive(Default)]
struct Script {
    queues: HashMap<i16, VecDeque<Action>>,
    handlers: HashMap<i16, Handler>,
}

struct Shared {
    cluster: Mutex<Cluster>,
    script: Mutex<Script>,
    received: Mutex<Vec<Received>>,
    received_cv: Condvar,
    errors: Mutex<Vec<String>>,
    stop: AtomicBool,
    next_connection: AtomicU64,
    /// Open connections: (node id, connection number, a clone to shut it down).
    open: Mutex<Vec<(i32, u64, TcpStream)>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking handler poisons the lock; the state is still usable for assertions.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The fake broker. Dropping it closes every listener and connection.
pub struct ScriptedBroker {
    shared: Arc<Shared>,
    listeners: Vec<JoinHandle<()>>,
}

impl ScriptedBroker {
    /// One node, id 0.
    pub fn start() -> ScriptedBroker {
        Self::with_nodes(&[0])
    }

    /// One listener per node id, each on a free 127.0.0.1 port.
    pub fn with_nodes(node_ids: &[i32]) -> ScriptedBroker {
        assert!(!node_ids.is_empty(), "scripted broker: at least one node");
        let mut bound = Vec::new();
        for &id in node_ids {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .unwrap_or_else(|e| panic!("scripted broker: bind 127.0.0.1:0: {e}"));
            listener
                .set_nonblocking(true)
                .unwrap_or_else(|e| panic!("scripted broker: set_nonblocking: {e}"));
            let port = listener
                .local_addr()
                .unwrap_or_else(|e| panic!("scripted broker: local_addr: {e}"))
                .port();
            bound.push((id, port, listener));
        }
        let cluster = Cluster {
            cluster_id: "weir-scripted".into(),
            nodes: bound.iter().map(|(id, port, _)| (*id, *port)).collect(),
            controller_id: node_ids[0],
            coordinator_id: node_ids[0],
            topics: BTreeMap::new(),
            api_versions: default_api_versions(),
            fetch_wait_cap: Duration::from_millis(100),
            hosts: BTreeMap::new(),
        };
        let shared = Arc::new(Shared {
            cluster: Mutex::new(cluster),
            script: Mutex::new(Script::default()),
            received: Mutex::new(Vec::new()),
            received_cv: Condvar::new(),
            errors: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            next_connection: AtomicU64::new(0),
            open: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
        });
        let listeners = bound
            .into_iter()
            .map(|(id, _, listener)| {
                let shared = Arc::clone(&shared);
                thread::Builder::new()
                    .name(format!("scripted-node-{id}"))
                    .spawn(move || accept_loop(id, listener, shared))
                    .unwrap_or_else(|e| panic!("scripted broker: spawn: {e}"))
            })
            .collect();
        ScriptedBroker { shared, listeners }
    }

    /// `bootstrap.servers` naming every node.
    pub fn bootstrap(&self) -> String {
        lock(&self.shared.cluster)
            .nodes
            .iter()
            .map(|(_, port)| format!("127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The address of one node.
    pub fn addr(&self, node_id: i32) -> SocketAddr {
        let port = lock(&self.shared.cluster)
            .port_of(node_id)
            .unwrap_or_else(|| panic!("scripted broker: no node {node_id}"));
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    }

    pub fn node_ids(&self) -> Vec<i32> {
        lock(&self.shared.cluster)
            .nodes
            .iter()
            .map(|(id, _)| *id)
            .collect()
    }

    /// Runs `f` on the cluster state (topics, batches, watermarks, versions...).
    pub fn with_cluster<R>(&self, f: impl FnOnce(&mut Cluster) -> R) -> R {
        f(&mut lock(&self.shared.cluster))
    }

    /// Adds a topic; partition `p`'s leader is node `nodes[p % nodes.len()]`.
    pub fn add_topic(&self, name: &str, partitions: i32) {
        self.with_cluster(|c| {
            let nodes: Vec<i32> = c.nodes.iter().map(|(id, _)| *id).collect();
            let n = c.topics.len() as u128 + 1;
            let parts = (0..partitions.max(0) as usize)
                .map(|p| PartitionState::new(nodes[p % nodes.len()]))
                .collect();
            c.topics.insert(
                name.to_string(),
                TopicState {
                    id: Uuid::from_u128(0x5c41_9700_0000_0000_0000_0000_0000_0000 | n),
                    partitions: parts,
                },
            );
        });
    }

    pub fn topic_id(&self, topic: &str) -> Uuid {
        self.with_cluster(|c| {
            c.topics
                .get(topic)
                .unwrap_or_else(|| panic!("scripted broker: no topic {topic:?}"))
                .id
        })
    }

    /// Moves a partition's leadership to `node_id` and bumps its leader epoch.
    pub fn set_leader(&self, topic: &str, partition: i32, node_id: i32) {
        self.with_cluster(|c| {
            let p = c.partition_mut(topic, partition);
            p.leader = node_id;
            p.leader_epoch += 1;
        });
    }

    /// Appends an encoded v2 record batch; its base offset and last offset delta are
    /// read from its header. Returns (base offset, last offset).
    pub fn append_batch(&self, topic: &str, partition: i32, batch: impl Into<Bytes>) -> (i64, i64) {
        let bytes: Bytes = batch.into();
        assert!(
            bytes.len() >= 61,
            "scripted broker: a v2 batch is at least 61 bytes"
        );
        let base = i64::from_be_bytes(bytes[0..8].try_into().unwrap_or_default());
        let delta = i32::from_be_bytes(bytes[23..27].try_into().unwrap_or_default());
        let last = base + i64::from(delta);
        self.append_raw(topic, partition, base, last, bytes);
        (base, last)
    }

    /// Appends bytes served as if they were a batch covering `base..=last` (for
    /// truncated or corrupt batches, legacy message sets, several batches at once).
    pub fn append_raw(&self, topic: &str, partition: i32, base: i64, last: i64, bytes: Bytes) {
        self.with_cluster(|c| {
            c.partition_mut(topic, partition).batches.push(StoredBatch {
                base_offset: base,
                last_offset: last,
                bytes,
            });
        });
    }

    pub fn set_high_watermark(&self, topic: &str, partition: i32, hw: Option<i64>) {
        self.with_cluster(|c| c.partition_mut(topic, partition).high_watermark = hw);
    }

    pub fn set_last_stable_offset(&self, topic: &str, partition: i32, lso: Option<i64>) {
        self.with_cluster(|c| c.partition_mut(topic, partition).last_stable_offset = lso);
    }

    pub fn set_log_start_offset(&self, topic: &str, partition: i32, offset: i64) {
        self.with_cluster(|c| c.partition_mut(topic, partition).log_start_offset = offset);
    }

    /// The aborted transactions (producer id, first offset) read_committed fetches get.
    pub fn set_aborted(&self, topic: &str, partition: i32, aborted: Vec<(i64, i64)>) {
        self.with_cluster(|c| c.partition_mut(topic, partition).aborted = aborted);
    }

    /// Makes Fetch and ListOffsets answer `error_code` for the partition (0 clears).
    pub fn set_partition_error(&self, topic: &str, partition: i32, error_code: i16) {
        self.with_cluster(|c| c.partition_mut(topic, partition).error = error_code);
    }

    /// Queues a one-shot action for the next request with this API key.
    pub fn push(&self, key: ApiKey, action: Action) {
        lock(&self.shared.script)
            .queues
            .entry(key as i16)
            .or_default()
            .push_back(action);
    }

    /// Sets the handler for an API key (replacing any previous one).
    pub fn on(
        &self,
        key: ApiKey,
        handler: impl Fn(&Ctx<'_>, &RequestHeader, &RequestKind) -> Option<Action>
        + Send
        + Sync
        + 'static,
    ) {
        lock(&self.shared.script)
            .handlers
            .insert(key as i16, Arc::new(handler));
    }

    pub fn clear_handler(&self, key: ApiKey) {
        lock(&self.shared.script).handlers.remove(&(key as i16));
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Received> {
        lock(&self.shared.received).clone()
    }

    /// The requests received so far with this API key.
    pub fn requests_of(&self, key: ApiKey) -> Vec<Received> {
        lock(&self.shared.received)
            .iter()
            .filter(|r| r.header.request_api_key == key as i16)
            .cloned()
            .collect()
    }

    /// Waits until at least `n` requests with this API key arrived; panics after
    /// `timeout` (failing the test) with what did arrive.
    pub fn wait_for(&self, key: ApiKey, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        let mut received = lock(&self.shared.received);
        loop {
            let matching: Vec<Received> = received
                .iter()
                .filter(|r| r.header.request_api_key == key as i16)
                .cloned()
                .collect();
            if matching.len() >= n {
                return matching;
            }
            let now = Instant::now();
            if now >= deadline {
                let seen: Vec<String> = received
                    .iter()
                    .map(|r| format!("{:?}", ApiKey::try_from(r.api_key())))
                    .collect();
                panic!(
                    "scripted broker: {n} {key:?} request(s) expected within {timeout:?}, got {}; \
                     all received: {seen:?}; errors: {:?}",
                    matching.len(),
                    self.errors()
                );
            }
            received = self
                .shared
                .received_cv
                .wait_timeout(received, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Problems the broker met: undecodable requests, requests with no answer,
    /// responses that did not encode. Tests usually assert this is empty.
    pub fn errors(&self) -> Vec<String> {
        lock(&self.shared.errors).clone()
    }

    /// Shuts down every open connection to `node_id` (the listener keeps accepting).
    pub fn close_connections(&self, node_id: i32) {
        let mut open = lock(&self.shared.open);
        open.retain(|(node, _, stream)| {
            if *node == node_id {
                let _ = stream.shutdown(Shutdown::Both);
                false
            } else {
                true
            }
        });
    }

    /// Connections accepted so far (all nodes).
    pub fn connections_accepted(&self) -> u64 {
        self.shared.next_connection.load(Ordering::Relaxed)
    }
}

impl Drop for ScriptedBroker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for (_, _, stream) in lock(&self.shared.open).drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        for handle in self.listeners.drain(..) {
            let _ = handle.join();
        }
        let threads: Vec<JoinHandle<()>> = lock(&self.shared.threads).drain(..).collect();
        for handle in threads {
            let _ = handle.join();
        }
    }
}

fn accept_loop(node_id: i32, listener: TcpListener, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let connection = shared.next_connection.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_nodelay(true);
                let _ = stream.set_read_timeout(Some(Duration::from_millis(20)));
                if let Ok(clone) = stream.try_clone() {
                    lock(&shared.open).push((node_id, connection, clone));
                }
                let conn_shared = Arc::clone(&shared);
                let spawned = thread::Builder::new()
                    .name(format!("scripted-conn-{node_id}-{connection}"))
                    .spawn(move || serve(node_id, connection, stream, &conn_shared));
                match spawned {
                    Ok(handle) => lock(&shared.threads).push(handle),
                    Err(e) => lock(&shared.errors).push(format!("spawn: {e}")),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => {
                lock(&shared.errors).push(format!("node {node_id} accept: {e}"));
                thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

fn serve(node_id: i32, connection: u64, mut stream: TcpStream, shared: &Shared) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    'conn: while !shared.stop.load(Ordering::SeqCst) {
        // Serve every complete frame already buffered.
        while buf.len() >= 4 {
            let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
            let Ok(size) = usize::try_from(size) else {
                lock(&shared.errors).push(format!("node {node_id}: negative request size {size}"));
                break 'conn;
            };
            if buf.len() < 4 + size {
                break;
            }
            let _ = buf.split_to(4);
            let frame = buf.split_to(size).freeze();
            if !handle_frame(node_id, connection, &mut stream, frame, shared) {
                break 'conn;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    lock(&shared.open).retain(|(_, c, _)| *c != connection);
}

/// Decodes, records and answers one request. Returns false to close the connection.
fn handle_frame(
    node_id: i32,
    connection: u64,
    stream: &mut TcpStream,
    frame: Bytes,
    shared: &Shared,
) -> bool {
    let mut body = frame.clone();
    if body.len() < 8 {
        lock(&shared.errors).push(format!(
            "node {node_id}: request frame of {} bytes",
            body.len()
        ));
        return false;
    }
    let api_key = i16::from_be_bytes([body[0], body[1]]);
    let version = i16::from_be_bytes([body[2], body[3]]);
    let correlation_id = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
    let Ok(key) = ApiKey::try_from(api_key) else {
        lock(&shared.errors).push(format!("node {node_id}: unknown api key {api_key}"));
        return false;
    };
    // Kafka answers an ApiVersions request of a version it does not know with a v0
    // UNSUPPORTED_VERSION response listing what it supports.
    if key == ApiKey::ApiVersions && version > key.valid_versions().max {
        let cluster = lock(&shared.cluster);
        let response = api_versions_response(&cluster, code::UNSUPPORTED_VERSION);
        drop(cluster);
        let header = RequestHeader::default()
            .with_request_api_key(api_key)
            .with_request_api_version(0)
            .with_correlation_id(correlation_id);
        return write_action(
            stream,
            &header,
            Action::Respond(ResponseKind::ApiVersions(response)),
            shared,
        );
    }
    let header = match decode_request_header_from_buffer(&mut body) {
        Ok(h) => h,
        Err(e) => {
            lock(&shared.errors).push(format!(
                "node {node_id}: bad {key:?} v{version} header: {e}"
            ));
            return false;
        }
    };
    let request = match RequestKind::decode(key, &mut body, version) {
        Ok(r) => r,
        Err(e) => {
            lock(&shared.errors).push(format!("node {node_id}: bad {key:?} v{version} body: {e}"));
            return false;
        }
    };
    {
        let mut received = lock(&shared.received);
        received.push(Received {
            node_id,
            connection,
            header: header.clone(),
            request: request.clone(),
            at: Instant::now(),
        });
        shared.received_cv.notify_all();
    }
    let queued = lock(&shared.script)
        .queues
        .get_mut(&api_key)
        .and_then(VecDeque::pop_front);
    let handler = lock(&shared.script).handlers.get(&api_key).cloned();
    let action = {
        let cluster = lock(&shared.cluster);
        let ctx = Ctx {
            node_id,
            connection,
            cluster: &cluster,
        };
        queued
            .or_else(|| handler.and_then(|h| h(&ctx, &header, &request)))
            .or_else(|| default_action(&ctx, &header, &request))
    };
    match action {
        Some(action) => write_action(stream, &header, action, shared),
        None => {
            lock(&shared.errors).push(format!(
                "node {node_id}: no script and no default for {key:?} v{version}; connection closed"
            ));
            false
        }
    }
}

fn write_action(
    stream: &mut TcpStream,
    header: &RequestHeader,
    action: Action,
    shared: &Shared,
) -> bool {
    let key = ApiKey::try_from(header.request_api_key).unwrap_or(ApiKey::ApiVersions);
    let version = header.request_api_version;
    let result = match action {
        Action::Delay(duration, then) => {
            let deadline = Instant::now() + duration;
            while Instant::now() < deadline {
                if shared.stop.load(Ordering::SeqCst) {
                    return false;
                }
                thread::sleep(Duration::from_millis(5).min(deadline - Instant::now()));
            }
            return write_action(stream, header, *then, shared);
        }
        Action::CloseConnection => return false,
        Action::NoResponse => return true,
        Action::RespondRaw(bytes) => stream.write_all(&bytes),
        Action::RespondBody(body) => match response_head(key, version, header.correlation_id) {
            Ok(head) => {
                let len = (head.len() + body.len()) as i32;
                let mut out = Vec::with_capacity(4 + head.len() + body.len());
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&head);
                out.extend_from_slice(&body);
                stream.write_all(&out)
            }
            Err(e) => {
                lock(&shared.errors).push(e);
                return false;
            }
        },
        Action::Respond(response) => {
            match encode_response(key, version, header.correlation_id, &response) {
                Ok(frame) => stream.write_all(&frame),
                Err(e) => {
                    lock(&shared.errors).push(e);
                    return false;
                }
            }
        }
    };
    result.is_ok()
}

fn response_head(key: ApiKey, version: i16, correlation_id: i32) -> Result<BytesMut, String> {
    let mut head = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut head, key.response_header_version(version))
        .map_err(|e| format!("encoding the {key:?} v{version} response header: {e}"))?;
    Ok(head)
}

/// A whole response frame: size prefix, header, body.
pub fn encode_response(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &ResponseKind,
) -> Result<Bytes, String> {
    let mut out = BytesMut::new();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&response_head(key, version, correlation_id)?);
    response
        .encode(&mut out, version)
        .map_err(|e| format!("encoding the {key:?} v{version} response: {e}"))?;
    let len = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(out.freeze())
}

fn api_versions_response(cluster: &Cluster, error_code: i16) -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    r.error_code = error_code;
    r.api_keys = cluster
        .api_versions
        .iter()
        .map(|&(key, min, max)| {
            ApiVersion::default()
                .with_api_key(key)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect();
    r
}

/// The default answer for a request, from the cluster state (see the module docs).
pub fn default_action(
    ctx: &Ctx<'_>,
    header: &RequestHeader,
    request: &RequestKind,
) -> Option<Action> {
    let version = header.request_api_version;
    let c = ctx.cluster;
    match request {
        RequestKind::ApiVersions(_) => Some(Action::Respond(ResponseKind::ApiVersions(
            api_versions_response(c, code::NONE),
        ))),
        RequestKind::Metadata(r) => Some(Action::Respond(ResponseKind::Metadata(metadata(
            c, r, version,
        )))),
        RequestKind::Fetch(r) => Some(fetch(ctx, r, version)),
        RequestKind::ListOffsets(r) => Some(Action::Respond(ResponseKind::ListOffsets(
            list_offsets(ctx, r, version),
        ))),
        RequestKind::FindCoordinator(r) => Some(Action::Respond(ResponseKind::FindCoordinator(
            find_coordinator(c, r, version),
        ))),
        _ => None,
    }
}

fn metadata(c: &Cluster, r: &MetadataRequest, version: i16) -> MetadataResponse {
    let mut resp = MetadataResponse::default();
    resp.brokers = c
        .nodes
        .iter()
        .map(|&(id, port)| {
            let mut b = MetadataResponseBroker::default();
            b.node_id = BrokerId(id);
            b.host = StrBytes::from_string(
                c.hosts
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| "127.0.0.1".to_owned()),
            );
            b.port = i32::from(port);
            b
        })
        .collect();
    if version >= 2 {
        resp.cluster_id = Some(StrBytes::from_string(c.cluster_id.clone()));
    }
    if version >= 1 {
        resp.controller_id = BrokerId(c.controller_id);
    }
    let wanted: Vec<(Option<String>, Uuid)> = match &r.topics {
        None => c
            .topics
            .iter()
            .map(|(n, t)| (Some(n.clone()), t.id))
            .collect(),
        Some(list) => list
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect(),
    };
    for (name, id) in wanted {
        let found = match &name {
            Some(n) => c.topics.get(n).map(|t| (n.clone(), t)),
            None => c.topic_by_id(id).map(|(n, t)| (n.clone(), t)),
        };
        let mut topic = MetadataResponseTopic::default();
        match found {
            None => {
                topic.error_code = code::UNKNOWN_TOPIC_OR_PARTITION;
                topic.name = name.map(|n| TopicName(StrBytes::from_string(n)));
                if version >= 10 {
                    topic.topic_id = id;
                }
            }
            Some((n, t)) => {
                topic.name = Some(TopicName(StrBytes::from_string(n)));
                if version >= 10 {
                    topic.topic_id = t.id;
                }
                topic.partitions = t
                    .partitions
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let mut mp = MetadataResponsePartition::default();
                        mp.partition_index = i as i32;
                        mp.leader_id = BrokerId(p.leader);
                        if version >= 7 {
                            mp.leader_epoch = p.leader_epoch;
                        }
                        mp.replica_nodes = vec![BrokerId(p.leader)];
                        mp.isr_nodes = vec![BrokerId(p.leader)];
                        mp
                    })
                    .collect();
            }
        }
        resp.topics.push(topic);
    }
    resp
}

fn fetch(ctx: &Ctx<'_>, r: &FetchRequest, version: i16) -> Action {
    let c = ctx.cluster;
    let read_committed = r.isolation_level == 1;
    let mut resp = FetchResponse::default();
    let mut any_data = false;
    let mut any_error = false;
    let mut budget = usize::try_from(r.max_bytes).unwrap_or(0);
    for t in &r.topics {
        let (name, topic) = if version >= 13 {
            match c.topic_by_id(t.topic_id) {
                Some((n, ts)) => (Some(n.clone()), Some(ts)),
                None => (None, None),
            }
        } else {
            let n = t.topic.0.to_string();
            let ts = c.topics.get(&n);
            (Some(n), ts)
        };
        let mut out = FetchableTopicResponse::default();
        if version >= 13 {
            out.topic_id = t.topic_id;
        } else {
            out.topic = TopicName(StrBytes::from_string(name.clone().unwrap_or_default()));
        }
        for fp in &t.partitions {
            let mut pd = PartitionData::default();
            pd.partition_index = fp.partition;
            pd.aborted_transactions = if read_committed {
                Some(Vec::new())
            } else {
                None
            };
            let state = topic.and_then(|ts| ts.partitions.get(usize::try_from(fp.partition).ok()?));
            match state {
                None => {
                    pd.error_code = if version >= 13 && topic.is_none() {
                        code::UNKNOWN_TOPIC_ID
                    } else {
                        code::UNKNOWN_TOPIC_OR_PARTITION
                    };
                    any_error = true;
                }
                Some(p) if p.leader != ctx.node_id => {
                    pd.error_code = code::NOT_LEADER_OR_FOLLOWER;
                    if version >= 12 {
                        pd.current_leader = LeaderIdAndEpoch::default()
                            .with_leader_id(BrokerId(p.leader))
                            .with_leader_epoch(p.leader_epoch);
                    }
                    any_error = true;
                }
                Some(p) if p.error != code::NONE => {
                    pd.error_code = p.error;
                    any_error = true;
                }
                Some(p) => {
                    let hw = p.high_watermark();
                    let lso = p.last_stable_offset();
                    pd.high_watermark = hw;
                    pd.last_stable_offset = lso;
                    pd.log_start_offset = p.log_start_offset;
                    if fp.fetch_offset < p.log_start_offset || fp.fetch_offset > hw {
                        pd.error_code = code::OFFSET_OUT_OF_RANGE;
                        any_error = true;
                    } else {
                        let limit = if read_committed { lso } else { hw };
                        let part_max = usize::try_from(fp.partition_max_bytes).unwrap_or(0);
                        let mut data = BytesMut::new();
                        let mut last_served = None;
                        for b in p
                            .batches
                            .iter()
                            .filter(|b| b.last_offset >= fp.fetch_offset && b.base_offset < limit)
                        {
                            let first = data.is_empty() && !any_data;
                            if !first
                                && (data.len() + b.bytes.len() > part_max || b.bytes.len() > budget)
                            {
                                break;
                            }
                            data.extend_from_slice(&b.bytes);
                            budget = budget.saturating_sub(b.bytes.len());
                            last_served = Some(b.last_offset);
                        }
                        if let Some(last) = last_served {
                            any_data = true;
                            if read_committed {
                                pd.aborted_transactions = Some(
                                    p.aborted
                                        .iter()
                                        .filter(|(_, first)| *first <= last)
                                        .map(|&(pid, first)| {
                                            AbortedTransaction::default()
                                                .with_producer_id(pid.into())
                                                .with_first_offset(first)
                                        })
                                        .collect(),
                                );
                            }
                        }
                        pd.records = Some(data.freeze());
                    }
                }
            }
            out.partitions.push(pd);
        }
        resp.responses.push(out);
    }
    let respond = Action::Respond(ResponseKind::Fetch(resp));
    if any_data || any_error {
        respond
    } else {
        // Nothing to return: a real broker holds the request up to max_wait_ms.
        let wait = Duration::from_millis(u64::try_from(r.max_wait_ms).unwrap_or(0));
        Action::delay(wait.min(c.fetch_wait_cap), respond)
    }
}

fn list_offsets(ctx: &Ctx<'_>, r: &ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let c = ctx.cluster;
    let mut resp = ListOffsetsResponse::default();
    for t in &r.topics {
        let name = t.name.0.to_string();
        let mut out = ListOffsetsTopicResponse::default();
        out.name = t.name.clone();
        for lp in &t.partitions {
            let mut pr = ListOffsetsPartitionResponse::default();
            pr.partition_index = lp.partition_index;
            match c.partition(&name, lp.partition_index) {
                None => pr.error_code = code::UNKNOWN_TOPIC_OR_PARTITION,
                Some(p) if p.leader != ctx.node_id => pr.error_code = code::NOT_LEADER_OR_FOLLOWER,
                Some(p) if p.error != code::NONE => pr.error_code = p.error,
                Some(p) => {
                    let end = if r.isolation_level == 1 {
                        p.last_stable_offset()
                    } else {
                        p.high_watermark()
                    };
                    pr.offset = match lp.timestamp {
                        -2 => p.log_start_offset,
                        _ => end,
                    };
                    pr.timestamp = -1;
                    if version >= 4 {
                        pr.leader_epoch = p.leader_epoch;
                    }
                }
            }
            out.partitions.push(pr);
        }
        resp.topics.push(out);
    }
    resp
}

fn find_coordinator(
    c: &Cluster,
    r: &FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let id = c.coordinator_id;
    let port = i32::from(c.port_of(id).unwrap_or(0));
    let mut resp = FindCoordinatorResponse::default();
    if version >= 4 {
        resp.coordinators = r
            .coordinator_keys
            .iter()
            .map(|k| {
                Coordinator::default()
                    .with_key(k.clone())
                    .with_node_id(BrokerId(id))
                    .with_host(StrBytes::from_static_str("127.0.0.1"))
                    .with_port(port)
            })
            .collect();
    } else {
        resp.node_id = BrokerId(id);
        resp.host = StrBytes::from_static_str("127.0.0.1");
        resp.port = port;
    }
    resp
}

/// A record's key and value (`None` is null).
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// An uncompressed v2 batch of plain records (key, value) at `base_offset`, with
/// timestamps `timestamp`, `timestamp + 1`, ...; for transactional batches, control
/// markers and every codec use `weir_protocol::RecordBatchBuilder` directly.
pub fn uncompressed_batch(base_offset: i64, timestamp: i64, records: &[KeyValue<'_>]) -> Bytes {
    let mut builder = RecordBatchBuilder::new(base_offset);
    for (i, (key, value)) in records.iter().enumerate() {
        builder.append(timestamp + i as i64, *key, *value);
    }
    Bytes::from(builder.build())
}
