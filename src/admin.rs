//! `weir groups list` and `weir groups describe GROUP`: the cluster's consumer groups
//! and one group's state, members, committed offsets and lag, like Kafka's
//! `kafka-consumer-groups --list` / `--describe`.
//!
//! Every request goes over a side connection of a fetch [`Reactor`] (own ApiVersions
//! handshake, reconnect with backoff; see [`Reactor::open_side`]), tracked by
//! [`weir_fetch::side::SideRequests`] as for the group member; nothing here opens
//! sockets itself. Requests are sent one at a time, each waiting for its answer; the
//! whole command is bounded by `default.api.timeout.ms`.
//!
//! `describe` runs FindCoordinator (any bootstrap broker), DescribeGroups (then
//! ConsumerGroupDescribe when DescribeGroups knows no such classic group: groups of
//! the KIP-848 consumer protocol) and OffsetFetch (the coordinator), Metadata for the topics involved (any broker), then
//! one small Fetch per partition leader for the log end offset (see
//! [`describe_group`] for why not ListOffsets).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

use kafka_protocol::messages as kp;
use kafka_protocol::protocol::StrBytes;
use weir_coordinator::{Assignment, TopicPartition};
use weir_fetch::side::{SideOutcome, SideRequests};
use weir_fetch::{FetchError, Reactor, SideId};
use weir_protocol::messages::fetch::{
    FetchParams, FetchPartitionSpec, FetchResponse, build_fetch_request,
};
use weir_protocol::messages::group::{
    ConsumerGroupDescribeResponse, ConsumerGroupTopicPartitions, DescribeGroupsResponse,
    FindCoordinatorResponse, ListGroupsResponse, OffsetFetchResponse,
};
use weir_protocol::messages::list_offsets::{
    ListOffsetsResponse, ListOffsetsSpec, build_list_offsets_request,
};
use weir_protocol::messages::metadata::{MetadataResponse, build_metadata_request};
use weir_protocol::versions::client_range;
use weir_protocol::{ApiRequest, DecodeError, ErrorCode, ResponseBody, VersionError};

use weir_consumer::config::ConsumerConfig;

/// Why a `weir groups` command failed. Each message says what to check next.
#[derive(Debug)]
#[non_exhaustive]
pub enum AdminError {
    /// The configuration is unusable (exit 2).
    Config(String),
    /// No connection could be made to any of these brokers before the deadline.
    Unreachable {
        /// `host:port` of each broker tried.
        addrs: Vec<String>,
        /// Why we were connecting ("bootstrap", "group coordinator", ...).
        role: &'static str,
        /// Connections that were opened and then failed (refused, reset, ...).
        failed_connections: u32,
        /// How long it tried.
        waited: Duration,
        /// Host names that did not resolve.
        unresolved: Vec<String>,
    },
    /// A request got no usable answer before the deadline.
    Timeout {
        /// The API.
        api: &'static str,
        /// The broker asked.
        addr: String,
        /// How long it tried.
        waited: Duration,
        /// The last problem seen (connection closed, retriable error, ...).
        last: String,
    },
    /// No version of an API is supported by both the broker and weir.
    Version(VersionError),
    /// A response could not be decoded.
    Decode {
        /// The API.
        api: &'static str,
        /// The broker that sent it.
        addr: String,
        /// What was wrong.
        error: DecodeError,
    },
    /// The broker answered with a non-retriable error.
    Broker {
        /// The API.
        api: &'static str,
        /// The broker that answered.
        addr: String,
        /// The error.
        code: ErrorCode,
    },
    /// The group has no members and no committed offsets.
    UnknownGroup {
        /// The group id asked for.
        group: String,
        /// The coordinator that answered, `host:port`.
        coordinator: String,
    },
    /// The reactor itself failed (poll, configuration).
    Fetch(FetchError),
    /// The operation cannot be done in the cluster's present state (the text says
    /// why and what to do).
    Refused(String),
}

impl AdminError {
    /// The process exit code: 2 for configuration errors, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => 2,
            Self::Fetch(FetchError::Config(_)) => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(m) => f.write_str(m),
            Self::Unreachable {
                addrs,
                role,
                failed_connections,
                waited,
                unresolved,
            } => {
                write!(
                    f,
                    "cannot reach the {role} broker {} (tried to connect for {} ms, with reconnect.backoff.ms between attempts; {failed_connections} connection attempt(s) failed",
                    addrs.join(", "),
                    waited.as_millis()
                )?;
                if !unresolved.is_empty() {
                    write!(f, "; host name(s) not resolved: {}", unresolved.join(", "))?;
                }
                f.write_str(
                    "): check -b BROKERS (bootstrap.servers), that the broker is running, and that this host can reach it",
                )?;
                if *role != "bootstrap" {
                    // Addresses after the bootstrap come from the cluster itself.
                    f.write_str(
                        " (this address is the one the cluster advertises: check the brokers' advertised.listeners)",
                    )?;
                }
                Ok(())
            }
            Self::Timeout {
                api,
                addr,
                waited,
                last,
            } => write!(
                f,
                "no usable answer to {api} from {addr} within {} ms (default.api.timeout.ms): {last}; check the broker's health or raise -X default.api.timeout.ms",
                waited.as_millis()
            ),
            Self::Version(e) => write!(f, "{e}"),
            Self::Decode { api, addr, error } => write!(
                f,
                "could not decode the {api} response from {addr}: {error}; the broker sent something weir does not understand"
            ),
            Self::Broker { api, addr, code } => {
                write!(f, "{addr} answered {api} with {code}")?;
                if *code == ErrorCode::GROUP_AUTHORIZATION_FAILED
                    || *code == ErrorCode::CLUSTER_AUTHORIZATION_FAILED
                    || *code == ErrorCode::TOPIC_AUTHORIZATION_FAILED
                {
                    f.write_str("; check the ACLs for this client")?;
                }
                Ok(())
            }
            Self::UnknownGroup { group, coordinator } => write!(
                f,
                "consumer group `{group}` does not exist (coordinator {coordinator} knows no members and no committed offsets for it); check the name with `weir groups list`, and that -b points at the right cluster"
            ),
            Self::Fetch(e) => write!(f, "{e}"),
            Self::Refused(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for AdminError {}

impl From<VersionError> for AdminError {
    fn from(e: VersionError) -> Self {
        Self::Version(e)
    }
}

impl From<FetchError> for AdminError {
    fn from(e: FetchError) -> Self {
        Self::Fetch(e)
    }
}

// ---------------------------------------------------------------------------------
// The request/response loop over the reactor's side connections
// ---------------------------------------------------------------------------------

pub(crate) type Addr = (String, u16);

pub(crate) fn show(a: &Addr) -> String {
    if a.0.contains(':') {
        format!("[{}]:{}", a.0, a.1)
    } else {
        format!("{}:{}", a.0, a.1)
    }
}

#[derive(Debug)]
struct Side {
    addr: Addr,
    /// Connections that closed (failed connects included).
    closes: u32,
}

/// Sends requests one at a time over side connections and waits for the answers.
pub(crate) struct Client {
    reactor: Reactor,
    /// The side connections and the requests in flight on them.
    requests: SideRequests<()>,
    by_addr: HashMap<Addr, SideId>,
    sides: HashMap<SideId, Side>,
    /// Response bodies by (connection, correlation id): (version, body).
    answers: HashMap<(SideId, i32), Vec<u8>>,
    /// Requests whose connection died before the answer.
    lost: HashSet<(SideId, i32)>,
    pub(crate) bootstrap: Vec<Addr>,
    /// The broker the last request went to (for timeout messages).
    last_addr: Option<Addr>,
    started: Instant,
    deadline: Instant,
    retry_backoff: Duration,
}

/// One round of a retried operation.
pub(crate) enum Step<T> {
    Done(T),
    /// Retriable: wait `retry.backoff.ms` and try again; the text says why.
    Retry(String),
}

impl Client {
    pub(crate) fn new(cfg: &ConsumerConfig) -> Result<Self, AdminError> {
        let fc = cfg.fetch_config();
        let reactor = Reactor::new(fc).map_err(|e| match e {
            FetchError::Config(m) => AdminError::Config(m),
            other => AdminError::Fetch(other),
        })?;
        let bootstrap: Vec<Addr> = cfg
            .bootstrap_servers
            .iter()
            .map(|b| (b.host.clone(), b.port))
            .collect();
        if bootstrap.is_empty() {
            return Err(AdminError::Config(
                "bootstrap.servers is empty: give the cluster with -b host:port".into(),
            ));
        }
        let now = Instant::now();
        Ok(Self {
            reactor,
            requests: SideRequests::new(),
            by_addr: HashMap::new(),
            sides: HashMap::new(),
            answers: HashMap::new(),
            lost: HashSet::new(),
            bootstrap,
            last_addr: None,
            started: now,
            deadline: now + Duration::from_millis(u64::from(cfg.default_api_timeout_ms)),
            retry_backoff: Duration::from_millis(u64::from(cfg.retry_backoff_ms)),
        })
    }

    fn side(&mut self, addr: &Addr) -> SideId {
        if let Some(s) = self.by_addr.get(addr) {
            return *s;
        }
        let id = self.requests.open(&mut self.reactor, &addr.0, addr.1);
        self.by_addr.insert(addr.clone(), id);
        self.sides.insert(
            id,
            Side {
                addr: addr.clone(),
                closes: 0,
            },
        );
        id
    }

    /// One reactor turn of at most `wait`, then the side events.
    fn pump(&mut self, wait: Duration) -> Result<(), AdminError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        self.reactor.run_once(wait.min(left))?;
        // The reactor's own fetch-path errors (its bootstrap metadata) are not ours:
        // failures that matter show up on the side connections. Except settings the
        // brokers refuse (credentials, the security protocol): waiting cannot help.
        let errors: Vec<FetchError> = self.reactor.take_errors().collect();
        if let Some(e) = errors.into_iter().find(FetchError::is_settings) {
            return Err(AdminError::Fetch(e));
        }
        for outcome in self.requests.poll(&mut self.reactor) {
            match outcome {
                SideOutcome::Ready { .. } => {}
                SideOutcome::Answer {
                    side,
                    correlation_id,
                    frame,
                    body_offset,
                    ..
                } => {
                    let body = frame
                        .bytes()
                        .get(body_offset..)
                        .unwrap_or_default()
                        .to_vec();
                    drop(frame);
                    self.answers.insert((side, correlation_id), body);
                }
                SideOutcome::Lost {
                    side,
                    correlation_id,
                    ..
                } => {
                    self.lost.insert((side, correlation_id));
                }
                SideOutcome::Closed { side } => {
                    if let Some(s) = self.sides.get_mut(&side) {
                        s.closes += 1;
                    }
                }
            }
        }
        Ok(())
    }

    fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    fn unreachable(&self, addrs: &[Addr], role: &'static str) -> AdminError {
        let failed_connections = addrs
            .iter()
            .filter_map(|a| self.by_addr.get(a))
            .filter_map(|s| self.sides.get(s))
            .map(|s| s.closes)
            .sum();
        let unresolved = addrs
            .iter()
            .filter(|a| {
                (a.0.as_str(), a.1)
                    .to_socket_addrs()
                    .map_or(true, |mut i| i.next().is_none())
            })
            .map(show)
            .collect();
        AdminError::Unreachable {
            addrs: addrs.iter().map(show).collect(),
            role,
            failed_connections,
            waited: self.started.elapsed(),
            unresolved,
        }
    }

    /// A ready connection to one of `addrs` (the first to become ready).
    fn ready_any(&mut self, addrs: &[Addr], role: &'static str) -> Result<SideId, AdminError> {
        let ids: Vec<SideId> = addrs.iter().map(|a| self.side(a)).collect();
        loop {
            if let Some(id) = ids.iter().find(|id| self.requests.is_ready(**id)) {
                return Ok(*id);
            }
            if self.expired() {
                return Err(self.unreachable(addrs, role));
            }
            self.pump(Duration::from_millis(100))?;
        }
    }

    /// Sleep `retry.backoff.ms` (driving the reactor), or fail with `last` at the deadline.
    fn backoff(&mut self, api: &'static str, addr: &str, last: String) -> Result<(), AdminError> {
        let until = (Instant::now() + self.retry_backoff).min(self.deadline);
        while Instant::now() < until {
            self.pump(until.saturating_duration_since(Instant::now()))?;
        }
        if self.expired() {
            return Err(AdminError::Timeout {
                api,
                addr: addr.to_owned(),
                waited: self.started.elapsed(),
                last,
            });
        }
        Ok(())
    }

    /// Send `Req` (built for the negotiated version, at most `cap`) to one of `addrs`
    /// and wait for the answer; a connection that dies first is retried. Returns the
    /// connection's address, the version and the response body.
    pub(crate) fn call<Req, Resp>(
        &mut self,
        addrs: &[Addr],
        role: &'static str,
        cap: i16,
        build: impl Fn(i16) -> Req,
    ) -> Result<(Addr, i16, Vec<u8>), AdminError>
    where
        Req: ApiRequest,
        Resp: ResponseBody<'static>,
    {
        loop {
            let side = self.ready_any(addrs, role)?;
            let addr = self
                .sides
                .get(&side)
                .map(|s| s.addr.clone())
                .unwrap_or_default();
            self.last_addr = Some(addr.clone());
            let (min, max) = client_range::<Req, Resp>();
            let version = self
                .requests
                .versions(&self.reactor, side)
                .map(|t| t.negotiate_key(Req::API_KEY, Req::NAME, min, max.min(cap)))
                .transpose()?;
            let Some(version) = version else {
                // Closed between the readiness check and here: wait for it to return.
                self.pump(Duration::from_millis(10))?;
                continue;
            };
            let sent =
                self.requests
                    .send(&mut self.reactor, side, version, &build(version), None, ());
            let corr = match sent {
                Ok(c) => c,
                Err(_) => {
                    // The connection went down just now; wait for it to come back.
                    self.pump(Duration::from_millis(10))?;
                    continue;
                }
            };
            loop {
                if let Some(body) = self.answers.remove(&(side, corr)) {
                    return Ok((addr, version, body));
                }
                if self.lost.remove(&(side, corr)) {
                    break;
                }
                if self.expired() {
                    return Err(AdminError::Timeout {
                        api: Req::NAME,
                        addr: show(&addr),
                        waited: self.started.elapsed(),
                        last: "the request was sent, no response came".into(),
                    });
                }
                self.pump(Duration::from_millis(100))?;
            }
        }
    }

    /// Run `round` until it is done, waiting `retry.backoff.ms` between rounds.
    pub(crate) fn retry<T>(
        &mut self,
        api: &'static str,
        mut round: impl FnMut(&mut Self) -> Result<Step<T>, AdminError>,
    ) -> Result<T, AdminError> {
        loop {
            match round(self)? {
                Step::Done(t) => return Ok(t),
                Step::Retry(why) => {
                    let addr = self.last_addr.as_ref().map(show).unwrap_or_default();
                    self.backoff(api, &addr, why)?;
                }
            }
        }
    }

    pub(crate) fn metadata(
        &mut self,
        topics: Option<&[&str]>,
    ) -> Result<OwnedMetadata, AdminError> {
        let boot = self.bootstrap.clone();
        let (addr, v, body) = self.call::<kp::MetadataRequest, MetadataResponse<'static>>(
            &boot,
            "bootstrap",
            i16::MAX,
            |v| build_metadata_request(v, topics, false),
        )?;
        let r = MetadataResponse::decode_body(&body, v).map_err(|error| AdminError::Decode {
            api: "Metadata",
            addr: show(&addr),
            error,
        })?;
        let brokers = r
            .brokers
            .iter()
            .filter_map(|b| Some((b.node_id, (b.host.to_owned(), u16::try_from(b.port).ok()?))))
            .collect();
        let mut parts = HashMap::new();
        let mut topic_ids = HashMap::new();
        for t in &r.topics {
            let Some(name) = t.name else { continue };
            if t.error_code.is_err() {
                continue;
            }
            topic_ids.insert(name.to_owned(), t.topic_id);
            for p in &t.partitions {
                parts.insert((name.to_owned(), p.partition_index), p.leader_id);
            }
        }
        Ok(OwnedMetadata {
            version: v,
            brokers,
            leaders: parts,
            topic_ids,
        })
    }
}

/// The cluster's metadata for `topics` (every topic when empty), from a bootstrap
/// broker: `weir metadata`.
pub fn cluster_metadata(
    cfg: &ConsumerConfig,
    topics: &[String],
) -> Result<crate::metadata::ClusterMetadata, AdminError> {
    use crate::metadata::{BrokerInfo, ClusterMetadata, PartitionInfo, TopicInfo};
    let mut c = Client::new(cfg)?;
    let boot = c.bootstrap.clone();
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let (addr, v, body) = c.call::<kp::MetadataRequest, MetadataResponse<'static>>(
        &boot,
        "bootstrap",
        i16::MAX,
        |v| build_metadata_request(v, (!names.is_empty()).then_some(&names[..]), false),
    )?;
    let r = MetadataResponse::decode_body(&body, v).map_err(|error| AdminError::Decode {
        api: "Metadata",
        addr: show(&addr),
        error,
    })?;
    let mut brokers: Vec<BrokerInfo> = r
        .brokers
        .iter()
        .map(|b| BrokerInfo {
            id: b.node_id,
            host: b.host.to_owned(),
            port: b.port,
            rack: b.rack.map(str::to_owned),
        })
        .collect();
    brokers.sort_by_key(|b| b.id);
    let from_id = brokers
        .iter()
        .find(|b| b.host == addr.0 && u16::try_from(b.port).ok() == Some(addr.1))
        .map(|b| b.id);
    let mut out_topics: Vec<TopicInfo> = r
        .topics
        .iter()
        .map(|t| {
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    id: p.partition_index,
                    leader: p.leader_id,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.clone(),
                    isr: p.isr_nodes.clone(),
                    offline: p.offline_replicas.clone(),
                    error: p.error_code.is_err().then_some(p.error_code),
                })
                .collect();
            partitions.sort_by_key(|p| p.id);
            TopicInfo {
                name: t.name.unwrap_or_default().to_owned(),
                id: t.topic_id,
                internal: t.is_internal,
                error: t.error_code.is_err().then_some(t.error_code),
                partitions,
            }
        })
        .collect();
    out_topics.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ClusterMetadata {
        from: show(&addr),
        from_id,
        cluster_id: r.cluster_id.map(str::to_owned),
        controller: r.controller_id,
        brokers,
        topics: out_topics,
        query: topics.to_vec(),
    })
}

pub(crate) struct OwnedMetadata {
    version: i16,
    pub(crate) brokers: BTreeMap<i32, Addr>,
    pub(crate) leaders: HashMap<(String, i32), i32>,
    topic_ids: HashMap<String, [u8; 16]>,
}

pub(crate) fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

pub(crate) fn decode_err(api: &'static str, addr: &Addr) -> impl FnOnce(DecodeError) -> AdminError {
    let addr = show(addr);
    move |error| AdminError::Decode { api, addr, error }
}

/// Errors that mean "ask again" for group requests: the coordinator moved, is
/// loading, or is not up yet.
pub(crate) fn coordinator_moved(code: ErrorCode) -> bool {
    code == ErrorCode::NOT_COORDINATOR || code == ErrorCode::COORDINATOR_NOT_AVAILABLE
}

// ---------------------------------------------------------------------------------
// groups list
// ---------------------------------------------------------------------------------

/// One group of `weir groups list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The group id.
    pub group_id: String,
    /// "consumer" for consumer groups; empty for groups that only commit offsets.
    pub protocol_type: String,
    /// The state (ListGroups v4+).
    pub state: Option<String>,
}

impl GroupListing {
    /// One output line: the group id, then protocol type and state when known
    /// (`-` for an empty protocol type).
    pub fn line(&self, id_width: usize) -> String {
        let ptype = if self.protocol_type.is_empty() {
            "-"
        } else {
            &self.protocol_type
        };
        let mut s = format!("{:<id_width$}  {ptype}", self.group_id);
        if let Some(st) = &self.state {
            s.push_str("  ");
            s.push_str(st);
        }
        s
    }
}

/// ListGroups on every broker of the cluster (from Metadata), merged by group id and
/// sorted.
pub fn list_groups(cfg: &ConsumerConfig) -> Result<Vec<GroupListing>, AdminError> {
    let mut c = Client::new(cfg)?;
    let md = c.metadata(Some(&[]))?;
    let mut brokers: Vec<Addr> = md.brokers.values().cloned().collect();
    if brokers.is_empty() {
        brokers = c.bootstrap.clone();
    }
    let mut out: BTreeMap<String, GroupListing> = BTreeMap::new();
    for b in brokers {
        let listed = c.retry("ListGroups", |c| {
            let (addr, v, body) = c.call::<kp::ListGroupsRequest, ListGroupsResponse<'static>>(
                std::slice::from_ref(&b),
                "cluster",
                i16::MAX,
                |_| kp::ListGroupsRequest::default(),
            )?;
            let r = ListGroupsResponse::decode_body(&body, v)
                .map_err(decode_err("ListGroups", &addr))?;
            if r.error_code.is_retriable() {
                return Ok(Step::Retry(format!(
                    "{} answered {}",
                    show(&addr),
                    r.error_code
                )));
            }
            if r.error_code.is_err() {
                return Err(AdminError::Broker {
                    api: "ListGroups",
                    addr: show(&addr),
                    code: r.error_code,
                });
            }
            Ok(Step::Done(
                r.groups
                    .iter()
                    .map(|g| GroupListing {
                        group_id: g.group_id.to_owned(),
                        protocol_type: g.protocol_type.to_owned(),
                        state: g.group_state.map(str::to_owned),
                    })
                    .collect::<Vec<_>>(),
            ))
        })?;
        for g in listed {
            out.entry(g.group_id.clone()).or_insert(g);
        }
    }
    Ok(out.into_values().collect())
}

/// The text `weir groups list` prints: one group per line.
pub fn render_list(groups: &[GroupListing]) -> String {
    let w = groups.iter().map(|g| g.group_id.len()).max().unwrap_or(0);
    let mut s = String::new();
    for g in groups {
        s.push_str(&g.line(w));
        s.push('\n');
    }
    s
}

// ---------------------------------------------------------------------------------
// groups describe
// ---------------------------------------------------------------------------------

/// One member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// `group.instance.id` (static membership).
    pub group_instance_id: Option<String>,
    /// The member's `client.id`.
    pub client_id: String,
    /// The member's host as the coordinator saw it.
    pub host: String,
    /// Its partitions, from the assignment bytes (consumer protocol).
    pub assignment: Vec<TopicPartition>,
    /// Why the assignment could not be read, if it could not.
    pub assignment_error: Option<String>,
    /// Consumer-protocol groups (KIP-848): the member's epoch.
    pub member_epoch: Option<i32>,
    /// Consumer-protocol groups: the partitions the broker means it to own.
    pub target_assignment: Option<Vec<TopicPartition>>,
}

/// One partition row of `weir groups describe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The group's committed offset.
    pub committed: Option<i64>,
    /// The log end offset (the Fetch high watermark).
    pub log_end: Option<i64>,
    /// Index into [`GroupDescription::members`] of the member that owns it.
    pub owner: Option<usize>,
}

impl PartitionLag {
    /// Log end minus committed offset, when both are known.
    pub fn lag(&self) -> Option<i64> {
        Some((self.log_end? - self.committed?).max(0))
    }
}

/// What `weir groups describe` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub group: String,
    /// The coordinator, `host:port`.
    pub coordinator: String,
    /// The coordinator's node id.
    pub coordinator_id: i32,
    /// Stable, Empty, PreparingRebalance, CompletingRebalance, Dead, ...
    pub state: String,
    /// "consumer" for consumer groups.
    pub protocol_type: String,
    /// The assignor in use (range, roundrobin, cooperative-sticky, ...).
    pub protocol: String,
    /// The members.
    pub members: Vec<MemberDescription>,
    /// Committed and assigned partitions, by topic and partition.
    pub partitions: Vec<PartitionLag>,
    /// Consumer-protocol groups (KIP-848): the group epoch and the epoch of the
    /// target assignment.
    pub epochs: Option<(i32, i32)>,
}

/// `t(0,1),u(2)`: partitions grouped by topic, sorted; `-` for none.
fn partition_list(parts: &[TopicPartition]) -> String {
    if parts.is_empty() {
        return "-".to_owned();
    }
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in parts {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    by_topic
        .iter_mut()
        .map(|(t, ps)| {
            ps.sort_unstable();
            let ps: Vec<String> = ps.iter().map(i32::to_string).collect();
            format!("{t}({})", ps.join(","))
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |x| x.to_string())
}

/// A text cell: `-` for an empty string (tansu reports no client id or host).
fn cell(s: &str) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        s.to_owned()
    }
}

fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(String::len)
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let w = widths.get(i).copied().unwrap_or(0);
            line.push_str(&format!("{cell:<w$}"));
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

impl GroupDescription {
    /// Total lag over the partitions where it is known.
    pub fn total_lag(&self) -> i64 {
        self.partitions.iter().filter_map(PartitionLag::lag).sum()
    }

    /// The text `weir groups describe` prints: a state line, the partition table (as
    /// `kafka-consumer-groups --describe`), then the members.
    pub fn render(&self) -> String {
        let mut s = format!(
            "Group {}: state {}, {} member(s), protocol {}/{}, coordinator {} (node {}), total lag {}\n\n",
            self.group,
            self.state,
            self.members.len(),
            if self.protocol_type.is_empty() {
                "-"
            } else {
                &self.protocol_type
            },
            if self.protocol.is_empty() {
                "-"
            } else {
                &self.protocol
            },
            self.coordinator,
            self.coordinator_id,
            self.total_lag()
        );
        if let Some((group_epoch, target_epoch)) = self.epochs {
            // The line above ends in a blank line; the epochs go on the state line.
            s.truncate(s.trim_end().len());
            s.push_str(&format!(
                ", group epoch {group_epoch}, target assignment epoch {target_epoch}\n\n"
            ));
        }
        let mut rows = vec![
            [
                "GROUP",
                "TOPIC",
                "PARTITION",
                "CURRENT-OFFSET",
                "LOG-END-OFFSET",
                "LAG",
                "CONSUMER-ID",
                "HOST",
                "CLIENT-ID",
            ]
            .map(str::to_owned)
            .to_vec(),
        ];
        for p in &self.partitions {
            let m = p.owner.and_then(|i| self.members.get(i));
            rows.push(vec![
                self.group.clone(),
                p.topic.clone(),
                p.partition.to_string(),
                dash(p.committed),
                dash(p.log_end),
                dash(p.lag()),
                cell(m.map_or("", |m| &m.member_id)),
                cell(m.map_or("", |m| &m.host)),
                cell(m.map_or("", |m| &m.client_id)),
            ]);
        }
        s.push_str(&table(&rows));
        if self.members.is_empty() {
            s.push_str(&format!("\nGroup {} has no active members.\n", self.group));
        } else {
            let mut rows = vec![
                [
                    "CONSUMER-ID",
                    "GROUP-INSTANCE-ID",
                    "HOST",
                    "CLIENT-ID",
                    "#PARTITIONS",
                    "ASSIGNMENT",
                ]
                .map(str::to_owned)
                .to_vec(),
            ];
            // Consumer-protocol groups: epochs and target assignments, as
            // kafka-consumer-groups --describe --members --verbose shows them.
            let kip848 = self.members.iter().any(|m| m.member_epoch.is_some());
            if kip848 {
                rows[0].extend(
                    ["CURRENT-EPOCH", "TARGET-EPOCH", "TARGET-ASSIGNMENT"].map(str::to_owned),
                );
            }
            for m in &self.members {
                let assignment = match &m.assignment_error {
                    Some(e) => format!("(unreadable: {e})"),
                    None => partition_list(&m.assignment),
                };
                let mut row = vec![
                    cell(&m.member_id),
                    cell(m.group_instance_id.as_deref().unwrap_or_default()),
                    cell(&m.host),
                    cell(&m.client_id),
                    m.assignment.len().to_string(),
                    assignment,
                ];
                if kip848 {
                    row.push(dash(m.member_epoch));
                    row.push(dash(self.epochs.map(|e| e.1)));
                    row.push(
                        m.target_assignment
                            .as_deref()
                            .map_or_else(|| "-".to_owned(), partition_list),
                    );
                }
                rows.push(row);
            }
            s.push('\n');
            s.push_str(&table(&rows));
        }
        s
    }
}

struct Described {
    state: String,
    protocol_type: String,
    protocol: String,
    members: Vec<MemberDescription>,
    /// DescribeGroups said the group does not exist (GROUP_ID_NOT_FOUND or Dead).
    missing: bool,
    /// ConsumerGroupDescribe: the group and target assignment epochs.
    epochs: Option<(i32, i32)>,
}

/// FindCoordinator for `group`: its coordinator's address and node id, or a
/// retriable reason.
pub(crate) fn find_coordinator(
    c: &mut Client,
    group: &str,
) -> Result<Step<(Addr, i32)>, AdminError> {
    let boot = c.bootstrap.clone();
    let (addr, v, body) = c.call::<kp::FindCoordinatorRequest, FindCoordinatorResponse<'static>>(
        &boot,
        "bootstrap",
        i16::MAX,
        |v| {
            if v >= 4 {
                kp::FindCoordinatorRequest::default()
                    .with_key_type(0)
                    .with_coordinator_keys(vec![sb(group)])
            } else {
                kp::FindCoordinatorRequest::default().with_key(sb(group))
            }
        },
    )?;
    let r = FindCoordinatorResponse::decode_body(&body, v)
        .map_err(decode_err("FindCoordinator", &addr))?;
    let Some(co) = r.coordinators.first() else {
        return Ok(Step::Retry(format!(
            "{} answered FindCoordinator with no coordinator",
            show(&addr)
        )));
    };
    if co.error_code.is_retriable() {
        return Ok(Step::Retry(format!(
            "{} answered FindCoordinator with {}",
            show(&addr),
            co.error_code
        )));
    }
    if co.error_code.is_err() {
        return Err(AdminError::Broker {
            api: "FindCoordinator",
            addr: show(&addr),
            code: co.error_code,
        });
    }
    let Ok(port) = u16::try_from(co.port) else {
        return Ok(Step::Retry(format!(
            "coordinator port {} is invalid",
            co.port
        )));
    };
    Ok(Step::Done(((co.host.to_owned(), port), co.node_id)))
}

/// FindCoordinator, DescribeGroups, OffsetFetch, Metadata, then a Fetch per leader.
///
/// LOG-END-OFFSET is the high watermark of a Fetch (max_bytes 1, no wait, from the
/// committed offset), not ListOffsets(latest): some brokers (tansu) answer
/// ListOffsets(latest) with the base offset of the last batch rather than the log
/// end, which would understate the lag by up to a batch. The high watermark a Fetch
/// reports is the log end every consumer's lag is measured against.
pub fn describe_group(cfg: &ConsumerConfig, group: &str) -> Result<GroupDescription, AdminError> {
    let mut c = Client::new(cfg)?;
    // FindCoordinator, then DescribeGroups and OffsetFetch on it; a coordinator that
    // moved sends us back to FindCoordinator.
    let (coord_addr, coord_id, described, committed) = c.retry("FindCoordinator", |c| {
        let (coord, node) = match find_coordinator(c, group)? {
            Step::Done(found) => found,
            Step::Retry(why) => return Ok(Step::Retry(why)),
        };

        let coord_slice = std::slice::from_ref(&coord);
        let (addr, v, body) = c
            .call::<kp::DescribeGroupsRequest, DescribeGroupsResponse<'static>>(
                coord_slice,
                "group coordinator",
                i16::MAX,
                |_| kp::DescribeGroupsRequest::default().with_groups(vec![kp::GroupId(sb(group))]),
            )?;
        let r = DescribeGroupsResponse::decode_body(&body, v)
            .map_err(decode_err("DescribeGroups", &addr))?;
        let Some(g) = r.groups.first() else {
            return Ok(Step::Retry("DescribeGroups answered no group".into()));
        };
        if coordinator_moved(g.error_code) || g.error_code.is_retriable() {
            return Ok(Step::Retry(format!(
                "{} answered DescribeGroups with {}",
                show(&addr),
                g.error_code
            )));
        }
        let missing = g.error_code == ErrorCode::GROUP_ID_NOT_FOUND || g.group_state == "Dead";
        if g.error_code.is_err() && !missing {
            return Err(AdminError::Broker {
                api: "DescribeGroups",
                addr: show(&addr),
                code: g.error_code,
            });
        }
        let consumer = g.protocol_type == "consumer" || g.protocol_type.is_empty();
        let members = g
            .members
            .iter()
            .map(|m| {
                let (assignment, assignment_error) = if consumer {
                    match Assignment::decode(m.member_assignment) {
                        Ok(a) => (a.partitions, None),
                        Err(e) => (Vec::new(), Some(e.to_string())),
                    }
                } else {
                    (
                        Vec::new(),
                        Some(format!("protocol type `{}`", g.protocol_type)),
                    )
                };
                MemberDescription {
                    member_id: m.member_id.to_owned(),
                    group_instance_id: m.group_instance_id.map(str::to_owned),
                    client_id: m.client_id.to_owned(),
                    host: m.client_host.to_owned(),
                    assignment,
                    assignment_error,
                    member_epoch: None,
                    target_assignment: None,
                }
            })
            .collect();
        let mut described = Described {
            state: g.group_state.to_owned(),
            protocol_type: g.protocol_type.to_owned(),
            protocol: g.protocol_data.to_owned(),
            members,
            missing,
            epochs: None,
        };
        // A group of the consumer protocol (KIP-848, group.protocol=consumer) is
        // not a classic group: DescribeGroups calls it unknown (Kafka 4: Dead), and
        // only ConsumerGroupDescribe shows its members.
        if missing {
            match consumer_group_describe(c, &coord, group)? {
                Step::Done(Some(d)) => described = d,
                Step::Done(None) => {}
                Step::Retry(why) => return Ok(Step::Retry(why)),
            }
        }

        // OffsetFetch for every partition the group has committed (null topics, v2+).
        let (addr, v, body) = c.call::<kp::OffsetFetchRequest, OffsetFetchResponse<'static>>(
            coord_slice,
            "group coordinator",
            i16::MAX,
            |v| {
                if v >= 8 {
                    kp::OffsetFetchRequest::default().with_groups(vec![
                        kp::offset_fetch_request::OffsetFetchRequestGroup::default()
                            .with_group_id(kp::GroupId(sb(group)))
                            .with_topics(None),
                    ])
                } else {
                    kp::OffsetFetchRequest::default()
                        .with_group_id(kp::GroupId(sb(group)))
                        .with_topics(None)
                }
            },
        )?;
        let r =
            OffsetFetchResponse::decode_body(&body, v).map_err(decode_err("OffsetFetch", &addr))?;
        let mut committed: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for og in &r.groups {
            if coordinator_moved(og.error_code) || og.error_code.is_retriable() {
                return Ok(Step::Retry(format!(
                    "{} answered OffsetFetch with {}",
                    show(&addr),
                    og.error_code
                )));
            }
            if og.error_code.is_err() && og.error_code != ErrorCode::GROUP_ID_NOT_FOUND {
                return Err(AdminError::Broker {
                    api: "OffsetFetch",
                    addr: show(&addr),
                    code: og.error_code,
                });
            }
            for t in &og.topics {
                for p in &t.partitions {
                    if p.error_code.is_ok() && p.committed_offset >= 0 {
                        committed
                            .insert((t.name.to_owned(), p.partition_index), p.committed_offset);
                    }
                }
            }
        }
        Ok(Step::Done((coord, node, described, committed)))
    })?;

    // Kafka describes an unknown group as Dead; tansu as Empty with no error. Either
    // way there is nothing to show without members or committed offsets.
    let empty = described.missing || described.state == "Empty";
    if empty && described.members.is_empty() && committed.is_empty() {
        return Err(AdminError::UnknownGroup {
            group: group.to_owned(),
            coordinator: show(&coord_addr),
        });
    }

    // Every partition committed or assigned, with its owner.
    let mut rows: BTreeMap<(String, i32), Option<usize>> = BTreeMap::new();
    for k in committed.keys() {
        rows.insert(k.clone(), None);
    }
    for (i, m) in described.members.iter().enumerate() {
        for tp in &m.assignment {
            rows.insert((tp.topic.to_string(), tp.partition), Some(i));
        }
    }
    let log_end = if rows.is_empty() {
        HashMap::new()
    } else {
        high_watermarks(&mut c, &rows, &committed)?
    };
    let partitions = rows
        .into_iter()
        .map(|(k, owner)| PartitionLag {
            committed: committed.get(&k).copied(),
            log_end: log_end.get(&k).copied(),
            topic: k.0,
            partition: k.1,
            owner,
        })
        .collect();
    Ok(GroupDescription {
        group: group.to_owned(),
        coordinator: show(&coord_addr),
        coordinator_id: coord_id,
        state: described.state,
        protocol_type: described.protocol_type,
        protocol: described.protocol,
        members: described.members,
        partitions,
        epochs: described.epochs,
    })
}

/// A ConsumerGroupDescribe assignment as topic partitions.
fn flatten(topics: &[ConsumerGroupTopicPartitions<'_>]) -> Vec<TopicPartition> {
    topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| TopicPartition::new(t.topic_name, *p))
        })
        .collect()
}

/// ConsumerGroupDescribe on the coordinator, when it supports the API: the group as
/// a consumer-protocol group, or `None` when it is none (unknown there too, or the
/// broker predates KIP-848).
fn consumer_group_describe(
    c: &mut Client,
    coord: &Addr,
    group: &str,
) -> Result<Step<Option<Described>>, AdminError> {
    let coord_slice = std::slice::from_ref(coord);
    let side = c.ready_any(coord_slice, "group coordinator")?;
    let supported = c
        .requests
        .versions(&c.reactor, side)
        .and_then(|t| t.broker_range(ConsumerGroupDescribeResponse::API_KEY))
        .is_some();
    if !supported {
        return Ok(Step::Done(None));
    }
    let (addr, v, body) = c
        .call::<kp::ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse<'static>>(
            coord_slice,
            "group coordinator",
            i16::MAX,
            |_| {
                kp::ConsumerGroupDescribeRequest::default()
                    .with_group_ids(vec![kp::GroupId(sb(group))])
            },
        )?;
    let r = ConsumerGroupDescribeResponse::decode_body(&body, v)
        .map_err(decode_err("ConsumerGroupDescribe", &addr))?;
    let Some(g) = r.groups.first() else {
        return Ok(Step::Retry(
            "ConsumerGroupDescribe answered no group".into(),
        ));
    };
    if coordinator_moved(g.error_code) || g.error_code.is_retriable() {
        return Ok(Step::Retry(format!(
            "{} answered ConsumerGroupDescribe with {}",
            show(&addr),
            g.error_code
        )));
    }
    // GROUP_ID_NOT_FOUND: unknown, or a classic group (DescribeGroups said Dead, so
    // not that); either way nothing more to show.
    if g.error_code.is_err() || g.group_state == "Dead" {
        return Ok(Step::Done(None));
    }
    let members = g
        .members
        .iter()
        .map(|m| MemberDescription {
            member_id: m.member_id.to_owned(),
            group_instance_id: m.instance_id.map(str::to_owned),
            client_id: m.client_id.to_owned(),
            host: m.client_host.to_owned(),
            assignment: flatten(&m.assignment),
            assignment_error: None,
            member_epoch: Some(m.member_epoch),
            target_assignment: Some(flatten(&m.target_assignment)),
        })
        .collect();
    Ok(Step::Done(Some(Described {
        state: g.group_state.to_owned(),
        protocol_type: "consumer".to_owned(),
        protocol: g.assignor_name.to_owned(),
        members,
        missing: false,
        epochs: Some((g.group_epoch, g.assignment_epoch)),
    })))
}

pub(crate) type Tp = (String, i32);

/// The Fetch high watermark of each partition: one Fetch per leader, max_bytes 1,
/// max_wait 0, from the committed offset (0 when none). A partition answered
/// OFFSET_OUT_OF_RANGE (no commit and the log no longer starts at 0, or a commit past
/// the end) is fetched again from its earliest offset (ListOffsets(earliest), which
/// unlike latest is reliable). Partitions whose leader is unknown or whose fetch
/// still fails are left out (printed as `-`).
fn high_watermarks(
    c: &mut Client,
    rows: &BTreeMap<Tp, Option<usize>>,
    committed: &BTreeMap<Tp, i64>,
) -> Result<HashMap<Tp, i64>, AdminError> {
    let topics: BTreeSet<&str> = rows.keys().map(|(t, _)| t.as_str()).collect();
    let names: Vec<&str> = topics.into_iter().collect();
    let md = c.metadata(Some(&names))?;
    let mut by_leader: BTreeMap<i32, Vec<Tp>> = BTreeMap::new();
    for k in rows.keys() {
        if let Some(&leader) = md.leaders.get(k)
            && leader >= 0
        {
            by_leader.entry(leader).or_default().push(k.clone());
        }
    }
    let mut out = HashMap::new();
    for (leader, parts) in by_leader {
        let Some(addr) = md.brokers.get(&leader).cloned() else {
            continue;
        };
        let first: Vec<(Tp, i64)> = parts
            .iter()
            .map(|k| (k.clone(), committed.get(k).copied().unwrap_or(0)))
            .collect();
        let (hw, out_of_range) = fetch_round(c, &md, &addr, &first)?;
        out.extend(hw);
        if !out_of_range.is_empty() {
            let starts = earliest_offsets(c, &addr, &out_of_range)?;
            let again: Vec<(Tp, i64)> = out_of_range
                .into_iter()
                .filter_map(|k| starts.get(&k).map(|&o| (k, o)))
                .collect();
            if !again.is_empty() {
                out.extend(fetch_round(c, &md, &addr, &again)?.0);
            }
        }
    }
    Ok(out)
}

/// One Fetch to `addr` for `parts` at the given offsets: the high watermarks, and the
/// partitions answered OFFSET_OUT_OF_RANGE.
fn fetch_round(
    c: &mut Client,
    md: &OwnedMetadata,
    addr: &Addr,
    parts: &[(Tp, i64)],
) -> Result<(HashMap<Tp, i64>, Vec<Tp>), AdminError> {
    // Fetch v13+ names topics by id, which Metadata gives from v10.
    let have_ids = md.version >= 10 && md.topic_ids.values().all(|id| *id != [0; 16]);
    let cap = if have_ids { i16::MAX } else { 12 };
    let specs: Vec<FetchPartitionSpec<'_>> = parts
        .iter()
        .map(|((t, p), offset)| FetchPartitionSpec {
            topic: t,
            topic_id: md.topic_ids.get(t).copied().unwrap_or([0; 16]),
            partition: *p,
            fetch_offset: *offset,
            partition_max_bytes: 1,
            current_leader_epoch: -1,
            last_fetched_epoch: -1,
            log_start_offset: -1,
        })
        .collect();
    let params = FetchParams {
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes: 1,
        isolation_level: 0,
        session_id: 0,
        session_epoch: -1,
        rack_id: "",
    };
    let (from, v, body) = c.call::<kp::FetchRequest, FetchResponse<'static>>(
        std::slice::from_ref(addr),
        "partition leader",
        cap,
        |v| build_fetch_request(v, &params, &specs, &[]),
    )?;
    let r = FetchResponse::decode_body(&body, v).map_err(decode_err("Fetch", &from))?;
    let mut hw = HashMap::new();
    let mut out_of_range = Vec::new();
    for t in &r.topics {
        let name = if t.topic.is_empty() {
            md.topic_ids
                .iter()
                .find(|(_, id)| **id == t.topic_id)
                .map(|(n, _)| n.as_str())
        } else {
            Some(t.topic)
        };
        let Some(name) = name else { continue };
        for p in &t.partitions {
            let k = (name.to_owned(), p.partition_index);
            if p.error_code.is_ok() && p.high_watermark >= 0 {
                hw.insert(k, p.high_watermark);
            } else if p.error_code == ErrorCode::OFFSET_OUT_OF_RANGE {
                out_of_range.push(k);
            }
        }
    }
    Ok((hw, out_of_range))
}

/// The partitions `--topic T` (all of T's) or `--topic T:0,2` (those) name, checked
/// against the cluster's metadata: an unknown topic or partition is refused with the
/// way to look them up.
pub(crate) fn topic_partitions(
    c: &mut Client,
    topics: &[(String, Option<Vec<i32>>)],
) -> Result<BTreeSet<Tp>, AdminError> {
    let names: Vec<&str> = topics.iter().map(|(t, _)| t.as_str()).collect();
    let md = c.metadata(Some(&names))?;
    let mut out = BTreeSet::new();
    for (t, parts) in topics {
        let have: BTreeSet<i32> = md
            .leaders
            .keys()
            .filter(|(mt, _)| mt == t)
            .map(|(_, p)| *p)
            .collect();
        if have.is_empty() {
            return Err(AdminError::Refused(format!(
                "topic `{t}` does not exist (or has no partitions): check the name with `weir metadata`"
            )));
        }
        match parts {
            None => out.extend(have.iter().map(|p| (t.clone(), *p))),
            Some(ps) => {
                for p in ps {
                    if !have.contains(p) {
                        return Err(AdminError::Refused(format!(
                            "topic `{t}` has no partition {p} (it has {})",
                            have.len()
                        )));
                    }
                    out.insert((t.clone(), *p));
                }
            }
        }
    }
    Ok(out)
}

/// The timestamp of the first record at or after each given offset (the oldest
/// record a group has not consumed), from the partitions' leaders: a Fetch of up to
/// 16 KiB per partition, and, for a partition whose first batch is larger (Kafka
/// returns an oversized batch only for the first partition of a response), a Fetch
/// of that partition alone. Partitions without such a record are left out.
pub(crate) fn first_timestamps(
    c: &mut Client,
    parts: &[(Tp, i64)],
) -> Result<HashMap<Tp, i64>, AdminError> {
    let mut out = HashMap::new();
    if parts.is_empty() {
        return Ok(out);
    }
    let topics: BTreeSet<&str> = parts.iter().map(|((t, _), _)| t.as_str()).collect();
    let names: Vec<&str> = topics.into_iter().collect();
    let md = c.metadata(Some(&names))?;
    let mut by_leader: BTreeMap<i32, Vec<(Tp, i64)>> = BTreeMap::new();
    for (k, o) in parts {
        if let Some(&leader) = md.leaders.get(k)
            && leader >= 0
        {
            by_leader.entry(leader).or_default().push((k.clone(), *o));
        }
    }
    let mut d = weir_protocol::Decompressor::new();
    for (leader, parts) in by_leader {
        let Some(addr) = md.brokers.get(&leader).cloned() else {
            continue;
        };
        let mut missing = Vec::new();
        for chunk in parts.chunks(64) {
            let found = timestamp_fetch(c, &md, &addr, chunk, 16 << 10, &mut d)?;
            for (k, o) in chunk {
                match found.get(k) {
                    Some(ts) => {
                        out.insert(k.clone(), *ts);
                    }
                    None => missing.push((k.clone(), *o)),
                }
            }
        }
        for one in missing {
            let found = timestamp_fetch(c, &md, &addr, std::slice::from_ref(&one), 1, &mut d)?;
            out.extend(found);
        }
    }
    Ok(out)
}

fn timestamp_fetch(
    c: &mut Client,
    md: &OwnedMetadata,
    addr: &Addr,
    parts: &[(Tp, i64)],
    partition_max_bytes: i32,
    d: &mut weir_protocol::Decompressor,
) -> Result<HashMap<Tp, i64>, AdminError> {
    let have_ids = md.version >= 10 && md.topic_ids.values().all(|id| *id != [0; 16]);
    let cap = if have_ids { i16::MAX } else { 12 };
    let specs: Vec<FetchPartitionSpec<'_>> = parts
        .iter()
        .map(|((t, p), offset)| FetchPartitionSpec {
            topic: t,
            topic_id: md.topic_ids.get(t).copied().unwrap_or([0; 16]),
            partition: *p,
            fetch_offset: *offset,
            partition_max_bytes,
            current_leader_epoch: -1,
            last_fetched_epoch: -1,
            log_start_offset: -1,
        })
        .collect();
    let params = FetchParams {
        max_wait_ms: 0,
        min_bytes: 0,
        // Within the side connections' ring (weir.coordinator.ring.bytes, 8 MiB).
        max_bytes: 4 << 20,
        // read_committed: an open transaction's records are not "the oldest unread".
        isolation_level: 1,
        session_id: 0,
        session_epoch: -1,
        rack_id: "",
    };
    let (from, v, body) = c.call::<kp::FetchRequest, FetchResponse<'static>>(
        std::slice::from_ref(addr),
        "partition leader",
        cap,
        |v| build_fetch_request(v, &params, &specs, &[]),
    )?;
    let r = FetchResponse::decode_body(&body, v).map_err(decode_err("Fetch", &from))?;
    let mut out = HashMap::new();
    for t in &r.topics {
        let name = if t.topic.is_empty() {
            md.topic_ids
                .iter()
                .find(|(_, id)| **id == t.topic_id)
                .map(|(n, _)| n.as_str())
        } else {
            Some(t.topic)
        };
        let Some(name) = name else { continue };
        for p in &t.partitions {
            let k = (name.to_owned(), p.partition_index);
            let Some(&(_, from_offset)) = parts.iter().find(|(pk, _)| *pk == k) else {
                continue;
            };
            if p.error_code.is_err() {
                continue;
            }
            'batches: for b in weir_protocol::Batches::new(p.records) {
                let Ok(b) = b else { break };
                if b.is_control() || b.next_offset() <= from_offset {
                    continue;
                }
                let Ok(records) = b.records(d) else { break };
                for rec in records {
                    let Ok(rec) = rec else { break 'batches };
                    if rec.offset() >= from_offset {
                        out.insert(k.clone(), rec.timestamp());
                        break 'batches;
                    }
                }
            }
        }
    }
    Ok(out)
}

/// ListOffsets(earliest) for `parts` on their leader `addr`.
fn earliest_offsets(
    c: &mut Client,
    addr: &Addr,
    parts: &[Tp],
) -> Result<HashMap<Tp, i64>, AdminError> {
    list_offsets(c, addr, parts, -2)
}

/// ListOffsets for `parts` on their leader `addr` at `timestamp` (-2 earliest, -1
/// latest, else milliseconds: the first offset at or after it). Partitions without
/// an answer (none at or after the timestamp, or an error) are left out.
pub(crate) fn list_offsets(
    c: &mut Client,
    addr: &Addr,
    parts: &[Tp],
    timestamp: i64,
) -> Result<HashMap<Tp, i64>, AdminError> {
    let specs: Vec<ListOffsetsSpec<'_>> = parts
        .iter()
        .map(|(t, p)| ListOffsetsSpec {
            topic: t,
            partition: *p,
            timestamp,
            current_leader_epoch: -1,
        })
        .collect();
    let (from, v, body) = c.call::<kp::ListOffsetsRequest, ListOffsetsResponse<'static>>(
        std::slice::from_ref(addr),
        "partition leader",
        i16::MAX,
        |v| build_list_offsets_request(v, 0, 1000, &specs),
    )?;
    let r = ListOffsetsResponse::decode_body(&body, v).map_err(decode_err("ListOffsets", &from))?;
    let mut out = HashMap::new();
    for t in &r.topics {
        for p in &t.partitions {
            if p.error_code.is_ok() && p.offset >= 0 {
                out.insert((t.name.to_owned(), p.partition_index), p.offset);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, assignment: Vec<TopicPartition>, err: Option<&str>) -> MemberDescription {
        MemberDescription {
            member_id: id.to_owned(),
            group_instance_id: None,
            client_id: String::new(),
            host: "/10.1.2.3".to_owned(),
            assignment,
            assignment_error: err.map(str::to_owned),
            member_epoch: None,
            target_assignment: None,
        }
    }

    #[test]
    fn render_shows_epochs_and_target_assignments_of_consumer_protocol_groups() {
        let mut m = member("m-1", vec![TopicPartition::new("t", 0)], None);
        m.member_epoch = Some(7);
        m.target_assignment = Some(vec![
            TopicPartition::new("t", 1),
            TopicPartition::new("t", 0),
        ]);
        let d = GroupDescription {
            group: "g".into(),
            coordinator: "b:9092".into(),
            coordinator_id: 1,
            state: "Reconciling".into(),
            protocol_type: "consumer".into(),
            protocol: "uniform".into(),
            members: vec![m],
            partitions: Vec::new(),
            epochs: Some((8, 8)),
        };
        let text = d.render();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].ends_with("total lag 0, group epoch 8, target assignment epoch 8"),
            "{text}"
        );
        let header = lines
            .iter()
            .find(|l| l.starts_with("CONSUMER-ID"))
            .expect("members");
        assert!(
            header.ends_with("CURRENT-EPOCH  TARGET-EPOCH  TARGET-ASSIGNMENT"),
            "{text}"
        );
        let row: Vec<&str> = lines
            .last()
            .expect("a member row")
            .split_whitespace()
            .collect();
        assert_eq!(row[row.len() - 3..], ["7", "8", "t(0,1)"], "{text}");
    }

    #[test]
    fn render_aligns_columns_and_marks_unknowns() {
        let d = GroupDescription {
            group: "g".into(),
            coordinator: "b:9092".into(),
            coordinator_id: 3,
            state: "Stable".into(),
            protocol_type: "consumer".into(),
            protocol: String::new(),
            members: vec![
                member(
                    "m-1",
                    vec![TopicPartition::new("t", 1), TopicPartition::new("t", 0)],
                    None,
                ),
                member("m-2", Vec::new(), Some("truncated")),
            ],
            epochs: None,
            partitions: vec![
                PartitionLag {
                    topic: "t".into(),
                    partition: 0,
                    committed: Some(5),
                    log_end: Some(9),
                    owner: Some(0),
                },
                // A commit past the end (truncated log) is no negative lag.
                PartitionLag {
                    topic: "t".into(),
                    partition: 1,
                    committed: Some(12),
                    log_end: Some(10),
                    owner: Some(0),
                },
                PartitionLag {
                    topic: "t".into(),
                    partition: 2,
                    committed: None,
                    log_end: None,
                    owner: None,
                },
            ],
        };
        assert_eq!(d.total_lag(), 4);
        let text = d.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "Group g: state Stable, 2 member(s), protocol consumer/-, coordinator b:9092 (node 3), total lag 4"
        );
        let header = lines[2];
        let row = lines[3];
        // Columns line up: LAG starts where its header does.
        let lag_col = header.find("LAG ").expect("LAG column");
        assert_eq!(&row[lag_col..lag_col + 1], "4", "{text}");
        let cells = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            cells(lines[3]),
            ["g", "t", "0", "5", "9", "4", "m-1", "/10.1.2.3", "-"]
        );
        assert_eq!(
            cells(lines[4]),
            ["g", "t", "1", "12", "10", "0", "m-1", "/10.1.2.3", "-"]
        );
        assert_eq!(
            cells(lines[5]),
            ["g", "t", "2", "-", "-", "-", "-", "-", "-"]
        );
        assert!(text.contains("t(0,1)"), "{text}");
        assert!(text.contains("(unreadable: truncated)"), "{text}");
    }

    #[test]
    fn list_lines_fill_an_empty_protocol_type() {
        let groups = [
            GroupListing {
                group_id: "long-group".into(),
                protocol_type: "consumer".into(),
                state: Some("Stable".into()),
            },
            GroupListing {
                group_id: "g".into(),
                protocol_type: String::new(),
                state: None,
            },
        ];
        assert_eq!(
            render_list(&groups),
            "long-group  consumer  Stable\ng           -\n"
        );
    }
}
