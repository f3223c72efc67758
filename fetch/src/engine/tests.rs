//! The engine on a virtual clock: a scripted [`Net`] whose links record what the
//! engine sends, and answers encoded by kafka-protocol's broker side, placed in a
//! real receive ring as the mio driver would place them. No socket, no thread, no
//! clock read: every `now` is `t0` plus a duration the test chooses.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse, ListOffsetsResponse,
    MetadataResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use weir_protocol::RecordBatchBuilder;

use super::{Dial, Engine, Link, Net};
use crate::config::FetchConfig;
use crate::conn::{ConnError, InFlight, Response};
use crate::error::FetchError;
use crate::partition::StartAt;
use crate::ring::Ring;

const MS: Duration = Duration::from_millis(1);

/// A link that keeps what was sent until the test answers or drops it.
#[derive(Debug, Default)]
struct ScriptedLink {
    corr: i32,
    /// Sent and not taken by the test yet, oldest first: (request, encoded frame).
    pending: VecDeque<(InFlight, Vec<u8>)>,
    /// Sent and not answered yet (taken or not), as a connection counts them.
    outstanding: usize,
}

impl Link for ScriptedLink {
    fn established(&self) -> bool {
        true
    }
    fn was_connected(&self) -> bool {
        true
    }
    fn peek_correlation_id(&self) -> i32 {
        self.corr
    }
    fn next_correlation_id(&mut self) -> i32 {
        self.corr += 1;
        self.corr - 1
    }
    fn send(&mut self, req: InFlight, frame: Vec<u8>) -> Result<(), ConnError> {
        self.pending.push_back((req, frame));
        self.outstanding += 1;
        Ok(())
    }
    fn in_flight(&self) -> usize {
        self.outstanding
    }
    fn next_deadline(&self) -> Option<Instant> {
        self.pending.iter().map(|(r, _)| r.deadline).min()
    }
    fn check_timeouts(&mut self, now: Instant) -> Result<(), ConnError> {
        match self.pending.iter().find(|(r, _)| r.deadline <= now) {
            Some((r, _)) => Err(ConnError::Timeout {
                api_key: r.api_key,
                correlation_id: r.correlation_id,
            }),
            None => Ok(()),
        }
    }
}

/// Dials always connect (unless `refuse`), and are counted with their time.
#[derive(Debug, Default)]
struct ScriptedNet {
    dials: Vec<(usize, Instant)>,
    /// The host of each dial, in order.
    hosts: Vec<String>,
    closed: usize,
    refuse: bool,
}

impl Net for ScriptedNet {
    type Link = ScriptedLink;
    fn dial(
        &mut self,
        token: usize,
        host: &str,
        _: u16,
        _: usize,
        now: Instant,
    ) -> Dial<ScriptedLink> {
        self.dials.push((token, now));
        self.hosts.push(host.to_owned());
        if self.refuse {
            Dial::Refused("connection refused".into())
        } else {
            Dial::Connecting(ScriptedLink::default())
        }
    }
    fn resolved(&mut self, _: Instant) -> Vec<(String, u16)> {
        Vec::new()
    }
    fn close(&mut self, link: &mut ScriptedLink) -> Vec<InFlight> {
        self.closed += 1;
        link.outstanding = 0;
        link.pending.drain(..).map(|(r, _)| r).collect()
    }
}

/// A test cluster of one broker, node 1 at b:9092, leading `t-0`.
struct Harness {
    engine: Engine<ScriptedNet>,
    ring: Ring,
    t0: Instant,
}

const TOPIC: &str = "t";

fn cfg() -> FetchConfig {
    let mut c = FetchConfig::new("b:9092");
    c.validate().expect("the default configuration is valid");
    c.client_id = "engine-test".into();
    c
}

impl Harness {
    fn new(cfg: FetchConfig) -> Self {
        let t0 = Instant::now();
        Harness {
            engine: Engine::new(cfg, ScriptedNet::default(), t0, 1).expect("valid config"),
            ring: Ring::new(1 << 20),
            t0,
        }
    }

    /// From now on every dial is refused.
    fn net_refuses(&mut self) {
        self.engine.net.refuse = true;
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn turn(&mut self, now: Instant) {
        self.engine.timers(now);
        self.engine.plan(now);
    }

    fn link(&mut self, broker: usize) -> &mut ScriptedLink {
        self.engine.brokers[broker]
            .conn
            .as_mut()
            .expect("the broker is connected")
    }

    /// The oldest unanswered request on `broker`: (request, its header, body bytes).
    fn next_request(&mut self, broker: usize) -> Option<(InFlight, RequestHeader, Bytes)> {
        let (req, frame) = self.link(broker).pending.pop_front()?;
        let mut buf = Bytes::from(frame).slice(4..);
        let key = ApiKey::try_from(req.api_key).expect("a known api key");
        let header = RequestHeader::decode(&mut buf, key.request_header_version(req.api_version))
            .expect("the request header decodes");
        Some((req, header, buf))
    }

    fn expect_request(&mut self, broker: usize, key: ApiKey) -> (InFlight, Bytes) {
        let (req, header, body) = self
            .next_request(broker)
            .unwrap_or_else(|| panic!("no request on broker {broker}, wanted {key:?}"));
        assert_eq!(req.api_key, key as i16, "wanted {key:?}");
        assert_eq!(header.correlation_id, req.correlation_id);
        (req, body)
    }

    /// Answers `req` on `broker` with `body`, through the ring as the driver does.
    fn answer(&mut self, broker: usize, req: InFlight, body: &impl Encodable, now: Instant) {
        let key = ApiKey::try_from(req.api_key).expect("a known api key");
        let mut out = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(req.correlation_id)
            .encode(&mut out, key.response_header_version(req.api_version))
            .expect("the header encodes");
        body.encode(&mut out, req.api_version)
            .expect("the response encodes");
        let mut r = self
            .ring
            .reserve(out.len())
            .expect("fits the ring")
            .expect("the ring has room");
        r.fill_from(&out);
        let frame = r.freeze();
        if let Some(l) = self.engine.brokers[broker].conn.as_mut() {
            l.outstanding = l.outstanding.saturating_sub(1);
        }
        let mut responses = vec![Response { req, frame }];
        self.engine.on_responses(broker, &mut responses, now);
    }

    /// Dial, ApiVersions, Metadata (the bootstrap entry becomes node 1), and the
    /// start-offset lookup answered with `start`; returns with the first Fetch sent.
    fn bring_up(&mut self, start: i64, now: Instant) -> (InFlight, FetchRequest) {
        self.turn(now);
        assert_eq!(
            self.engine.net.dials.len(),
            1,
            "the bootstrap broker is dialled"
        );
        let (req, _) = self.expect_request(0, ApiKey::ApiVersions);
        self.answer(0, req, &api_versions(), now);
        self.turn(now);
        let (req, _) = self.expect_request(0, ApiKey::Metadata);
        self.answer(0, req, &metadata(1), now);
        self.turn(now);
        let (req, _) = self.expect_request(0, ApiKey::ListOffsets);
        self.answer(0, req, &list_offsets(start), now);
        self.turn(now);
        self.expect_fetch(now)
    }

    fn expect_fetch(&mut self, _now: Instant) -> (InFlight, FetchRequest) {
        let (req, mut body) = self.expect_request(0, ApiKey::Fetch);
        let f = FetchRequest::decode(&mut body, req.api_version).expect("the fetch decodes");
        (req, f)
    }
}

fn api_versions() -> ApiVersionsResponse {
    // Fetch up to v12 (topics by name), everything else wide.
    let range = |key: ApiKey, max: i16| {
        ApiVersion::default()
            .with_api_key(key as i16)
            .with_min_version(0)
            .with_max_version(max)
    };
    ApiVersionsResponse::default().with_api_keys(vec![
        range(ApiKey::Fetch, 12),
        range(ApiKey::Metadata, 12),
        range(ApiKey::ListOffsets, 7),
        range(ApiKey::ApiVersions, 3),
    ])
}

fn metadata(leader_epoch: i32) -> MetadataResponse {
    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(1))
        .with_host(StrBytes::from_static_str("b"))
        .with_port(9092);
    let partition = MetadataResponsePartition::default()
        .with_partition_index(0)
        .with_leader_id(BrokerId(1))
        .with_leader_epoch(leader_epoch)
        .with_replica_nodes(vec![BrokerId(1)])
        .with_isr_nodes(vec![BrokerId(1)]);
    let topic = MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_static_str(TOPIC))))
        .with_partitions(vec![partition]);
    MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_topics(vec![topic])
}

fn list_offsets(offset: i64) -> ListOffsetsResponse {
    let p = ListOffsetsPartitionResponse::default()
        .with_partition_index(0)
        .with_offset(offset)
        .with_timestamp(-1);
    ListOffsetsResponse::default().with_topics(vec![
        ListOffsetsTopicResponse::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partitions(vec![p]),
    ])
}

/// A Fetch answer for `t-0`: `records` records from `base`, high watermark after them.
fn fetch_answer(session_id: i32, base: i64, records: usize, throttle_ms: i32) -> FetchResponse {
    let mut b = RecordBatchBuilder::new(base);
    for i in 0..records {
        b.append(1_000 + i as i64, None, Some(b"v"));
    }
    let hw = base + records as i64;
    let p = PartitionData::default()
        .with_partition_index(0)
        .with_high_watermark(hw)
        .with_last_stable_offset(hw)
        .with_log_start_offset(0)
        .with_records((records > 0).then(|| Bytes::from(b.build())));
    FetchResponse::default()
        .with_throttle_time_ms(throttle_ms)
        .with_session_id(session_id)
        .with_responses(vec![
            FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partitions(vec![p]),
        ])
}

fn fetched_offsets(f: &FetchRequest) -> Vec<(i32, i64)> {
    f.topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| (p.partition, p.fetch_offset))
        .collect()
}

#[test]
fn bring_up_goes_from_dial_to_a_fetch_at_the_looked_up_offset_and_cuts_a_chunk() {
    let mut h = Harness::new(cfg());
    h.engine.assign(TOPIC, 0, StartAt::Earliest);
    let now = h.at(0);
    let (req, f) = h.bring_up(40, now);
    assert_eq!(fetched_offsets(&f), [(0, 40)]);
    assert_eq!(
        (f.session_id, f.session_epoch),
        (0, 0),
        "a full fetch asking for a session"
    );
    assert_eq!(h.engine.broker_addr(1), Some(("b".into(), 9092)));

    h.answer(0, req, &fetch_answer(77, 40, 3, 0), now);
    let chunks: Vec<_> = h.engine.take_chunks().collect();
    assert_eq!(chunks.len(), 1);
    assert_eq!((chunks[0].fetch_offset, chunks[0].broker), (40, 1));
    let p = &h.engine.partitions()[0];
    assert_eq!((p.fetch_offset, p.high_watermark), (Some(43), 43));

    // The next fetch goes at once, incremental in the session the broker granted,
    // stating the partition again because its offset moved.
    h.turn(now);
    let (_, f) = h.expect_fetch(now);
    assert_eq!((f.session_id, f.session_epoch), (77, 1));
    assert_eq!(fetched_offsets(&f), [(0, 43)]);
}

#[test]
fn an_unchanged_partition_is_not_restated_in_the_session() {
    let mut h = Harness::new(cfg());
    h.engine.assign(TOPIC, 0, StartAt::Offset(5));
    let now = h.at(0);
    // An offset start needs no lookup: ApiVersions, Metadata, then Fetch.
    h.turn(now);
    let (req, _) = h.expect_request(0, ApiKey::ApiVersions);
    h.answer(0, req, &api_versions(), now);
    h.turn(now);
    let (req, _) = h.expect_request(0, ApiKey::Metadata);
    h.answer(0, req, &metadata(1), now);
    h.turn(now);
    let (req, f) = h.expect_fetch(now);
    assert_eq!(fetched_offsets(&f), [(0, 5)]);
    // Nothing new: the broker answers empty; the next fetch states nothing.
    h.answer(0, req, &fetch_answer(9, 5, 0, 0), now);
    h.turn(now);
    let (_, f) = h.expect_fetch(now);
    assert_eq!((f.session_id, f.session_epoch), (9, 1));
    assert!(fetched_offsets(&f).is_empty(), "{:?}", fetched_offsets(&f));
}

#[test]
fn a_throttled_answer_holds_the_next_fetch_until_the_throttle_ends() {
    let mut h = Harness::new(cfg());
    h.engine.assign(TOPIC, 0, StartAt::Earliest);
    let (req, _) = h.bring_up(0, h.at(0));
    h.answer(0, req, &fetch_answer(0, 0, 1, 250), h.at(10));
    h.turn(h.at(259));
    assert!(h.next_request(0).is_none(), "fetched during the throttle");
    h.turn(h.at(260));
    let (_, f) = h.expect_fetch(h.at(260));
    assert_eq!(fetched_offsets(&f), [(0, 1)]);
}

#[test]
fn a_hostile_throttle_is_capped_at_request_timeout() {
    let mut c = cfg();
    c.request_timeout_ms = 2_000;
    let mut h = Harness::new(c);
    h.engine.assign(TOPIC, 0, StartAt::Earliest);
    let (req, _) = h.bring_up(0, h.at(0));
    h.answer(0, req, &fetch_answer(0, 0, 1, i32::MAX), h.at(0));
    h.turn(h.at(1_999));
    assert!(h.next_request(0).is_none());
    h.turn(h.at(2_000));
    h.expect_fetch(h.at(2_000));
}

#[test]
fn a_dead_connection_is_dialled_again_after_the_backoff_and_metadata_asked_again() {
    let mut h = Harness::new(cfg());
    h.engine.assign(TOPIC, 0, StartAt::Earliest);
    let (_, _) = h.bring_up(0, h.at(0));
    h.engine.link_failed(0, ConnError::Closed, h.at(100));
    assert_eq!(h.engine.net.closed, 1);
    assert!(h.engine.brokers[0].conn.is_none());
    // reconnect.backoff.ms is 50 ms, ±20 %: not before 40 ms, surely by 60 ms.
    h.turn(h.at(139));
    assert_eq!(h.engine.net.dials.len(), 1);
    h.turn(h.at(161));
    assert_eq!(h.engine.net.dials.len(), 2);
    let (req, _) = h.expect_request(0, ApiKey::ApiVersions);
    h.answer(0, req, &api_versions(), h.at(161));
    h.turn(h.at(161));
    // The leader may have moved: metadata before any fetch.
    h.expect_request(0, ApiKey::Metadata);
}

#[test]
fn backoff_doubles_while_the_broker_refuses_and_stays_capped() {
    let mut h = Harness::new(cfg());
    h.engine.net.refuse = true;
    h.engine.assign(TOPIC, 0, StartAt::Earliest);
    let mut now = h.at(0);
    for _ in 0..12 {
        h.turn(now);
        now += 5 * MS;
        // Step the clock until the engine dials again.
        let before = h.engine.net.dials.len();
        while h.engine.net.dials.len() == before {
            h.turn(now);
            now += 5 * MS;
            assert!(now < h.at(60_000), "never dialled again");
        }
    }
    let gaps: Vec<u128> = h
        .engine
        .net
        .dials
        .windows(2)
        .map(|w| (w[1].1 - w[0].1).as_millis())
        .collect();
    // 50 ms doubling, ±20 % jitter, capped at reconnect.backoff.max.ms (1 s).
    assert!(gaps[0] >= 40 && gaps[0] <= 70, "{gaps:?}");
    assert!(gaps[3] >= 320 && gaps[3] <= 490, "{gaps:?}");
    assert!(gaps.iter().all(|g| *g <= 1_210), "{gaps:?}");
    assert!(gaps[gaps.len() - 1] >= 800, "{gaps:?}");
}

#[test]
fn a_request_past_its_deadline_kills_the_link() {
    let mut c = cfg();
    c.request_timeout_ms = 1_000;
    let mut h = Harness::new(c);
    h.engine.assign(TOPIC, 0, StartAt::Earliest);
    h.turn(h.at(0));
    let _unanswered = h.link(0).pending.front().cloned();
    assert_eq!(h.engine.next_timer(h.at(0)), Some(h.at(1_000)));
    h.turn(h.at(999));
    assert_eq!(h.engine.net.closed, 0);
    h.turn(h.at(1_000));
    assert_eq!(h.engine.net.closed, 1, "the ApiVersions deadline passed");
    assert!(h.engine.brokers[0].conn.is_none());
}

#[test]
fn out_of_range_with_reset_none_pauses_and_reports() {
    let mut c = cfg();
    c.auto_offset_reset = crate::config::OffsetReset::None;
    let mut h = Harness::new(c);
    h.engine.assign(TOPIC, 0, StartAt::Earliest);
    let (req, _) = h.bring_up(10, h.at(0));
    let mut r = fetch_answer(0, 10, 0, 0);
    r.responses[0].partitions[0].error_code = 1; // OFFSET_OUT_OF_RANGE
    h.answer(0, req, &r, h.at(0));
    match h.engine.pop_error() {
        Some(FetchError::OffsetOutOfRange { offset: 10, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(h.engine.partitions()[0].paused);
    h.turn(h.at(1));
    assert!(
        h.next_request(0).is_none(),
        "a paused partition is not fetched"
    );
}

#[test]
fn a_not_leader_answer_asks_metadata_again_within_the_retry_spacing() {
    let mut h = Harness::new(cfg());
    h.engine.assign(TOPIC, 0, StartAt::Earliest);
    let (req, _) = h.bring_up(0, h.at(0));
    let mut r = fetch_answer(0, 0, 0, 0);
    r.responses[0].partitions[0].error_code = 6; // NOT_LEADER_OR_FOLLOWER
    h.answer(0, req, &r, h.at(0));
    assert_eq!(h.engine.partitions()[0].leader, None);
    // retry.backoff.ms (100 ms) after the last metadata answer, not before.
    h.turn(h.at(99));
    assert!(h.next_request(0).is_none());
    h.turn(h.at(100));
    h.expect_request(0, ApiKey::Metadata);
}

fn sasl_cfg(mechanism: weir_protocol::auth::Mechanism) -> FetchConfig {
    let mut c = cfg();
    c.sasl = Some(weir_protocol::auth::SaslConfig {
        mechanism,
        username: "weir".into(),
        password: weir_protocol::auth::Secret::new("weir-secret"),
        token: None,
    });
    c
}

fn sasl_api_versions() -> ApiVersionsResponse {
    let mut r = api_versions();
    for (key, max) in [(ApiKey::SaslHandshake, 1), (ApiKey::SaslAuthenticate, 2)] {
        r.api_keys.push(
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(0)
                .with_max_version(max),
        );
    }
    r
}

/// Dial and ApiVersions on a SASL connection; returns the SaslHandshake request.
fn to_sasl_handshake(
    h: &mut Harness,
) -> (InFlight, kafka_protocol::messages::SaslHandshakeRequest) {
    h.turn(h.at(0));
    let (req, _) = h.expect_request(0, ApiKey::ApiVersions);
    h.answer(0, req, &sasl_api_versions(), h.at(0));
    let (req, mut body) = h.expect_request(0, ApiKey::SaslHandshake);
    assert_eq!(
        req.api_version, 1,
        "SaslHandshake v1: tokens go in SaslAuthenticate"
    );
    let hs = kafka_protocol::messages::SaslHandshakeRequest::decode(&mut body, 1)
        .expect("the handshake decodes");
    (req, hs)
}

#[test]
fn a_sasl_connection_authenticates_before_anything_else_is_sent() {
    use kafka_protocol::messages::{
        SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeResponse,
    };
    let mut h = Harness::new(sasl_cfg(weir_protocol::auth::Mechanism::Plain));
    h.engine.assign(TOPIC, 0, StartAt::Earliest);
    let (req, hs) = to_sasl_handshake(&mut h);
    assert_eq!(hs.mechanism.as_str(), "PLAIN");
    // Nothing but the handshake while it is out: metadata waits.
    h.turn(h.at(1));
    assert!(h.next_request(0).is_none());
    h.answer(0, req, &SaslHandshakeResponse::default(), h.at(1));
    let (req, mut body) = h.expect_request(0, ApiKey::SaslAuthenticate);
    let a = SaslAuthenticateRequest::decode(&mut body, req.api_version).expect("decodes");
    assert_eq!(&a.auth_bytes[..], b"\0weir\0weir-secret");
    h.turn(h.at(1));
    assert!(
        h.next_request(0).is_none(),
        "no request before the broker accepts"
    );
    h.answer(0, req, &SaslAuthenticateResponse::default(), h.at(2));
    h.turn(h.at(2));
    h.expect_request(0, ApiKey::Metadata);
    assert_eq!(h.engine.ready_brokers(), 1);
}

#[test]
fn a_mechanism_the_broker_does_not_enable_is_an_error_naming_the_ones_it_does() {
    use kafka_protocol::messages::SaslHandshakeResponse;
    let mut h = Harness::new(sasl_cfg(weir_protocol::auth::Mechanism::ScramSha512));
    h.engine.assign(TOPIC, 0, StartAt::Earliest);
    let (req, hs) = to_sasl_handshake(&mut h);
    assert_eq!(hs.mechanism.as_str(), "SCRAM-SHA-512");
    let answer = SaslHandshakeResponse::default()
        .with_error_code(33) // UNSUPPORTED_SASL_MECHANISM
        .with_mechanisms(vec![
            StrBytes::from_static_str("PLAIN"),
            StrBytes::from_static_str("OAUTHBEARER"),
        ]);
    h.answer(0, req, &answer, h.at(1));
    match h.engine.pop_error() {
        Some(e @ FetchError::Authentication { .. }) => {
            let text = e.to_string();
            assert!(text.contains("enables PLAIN, OAUTHBEARER"), "{text}");
            assert!(text.contains("sasl.mechanism"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.engine.net.closed, 1, "the connection is dropped");
}

#[test]
fn a_wrong_password_is_an_error_once_per_attempt_with_backoff_between() {
    use kafka_protocol::messages::{SaslAuthenticateResponse, SaslHandshakeResponse};
    let mut h = Harness::new(sasl_cfg(weir_protocol::auth::Mechanism::Plain));
    h.engine.assign(TOPIC, 0, StartAt::Earliest);
    let (req, _) = to_sasl_handshake(&mut h);
    h.answer(0, req, &SaslHandshakeResponse::default(), h.at(1));
    let (req, _) = h.expect_request(0, ApiKey::SaslAuthenticate);
    let refused = SaslAuthenticateResponse::default()
        .with_error_code(58) // SASL_AUTHENTICATION_FAILED
        .with_error_message(Some(StrBytes::from_static_str(
            "Authentication failed: Invalid username or password",
        )));
    h.answer(0, req, &refused, h.at(1));
    let text = h.engine.pop_error().expect("an error").to_string();
    assert!(
        text.contains("b:9092: SASL PLAIN authentication failed"),
        "{text}"
    );
    assert!(text.contains("Invalid username or password"), "{text}");
    assert!(text.contains("sasl.username"), "{text}");
    assert!(!text.contains("weir-secret"), "{text}");
    // The next attempt waits for reconnect.backoff.ms (50 ms ± 20 %).
    h.turn(h.at(30));
    assert_eq!(h.engine.net.dials.len(), 1);
    h.turn(h.at(100));
    assert_eq!(h.engine.net.dials.len(), 2);
}

/// KIP-368: before the broker's session lifetime ends, the connection stops taking
/// new requests, waits for the one in flight, authenticates again on the same socket
/// and goes on; no new dial, nothing dropped.
#[test]
fn a_sasl_session_is_renewed_on_the_same_connection_after_in_flight_requests() {
    use kafka_protocol::messages::{SaslAuthenticateResponse, SaslHandshakeResponse};
    let mut h = Harness::new(sasl_cfg(weir_protocol::auth::Mechanism::Plain));
    h.engine.assign(TOPIC, 0, StartAt::Offset(0));
    let (req, _) = to_sasl_handshake(&mut h);
    h.answer(0, req, &SaslHandshakeResponse::default(), h.at(0));
    let (req, _) = h.expect_request(0, ApiKey::SaslAuthenticate);
    let granted = SaslAuthenticateResponse::default().with_session_lifetime_ms(10_000);
    h.answer(0, req, &granted, h.at(0));
    h.turn(h.at(0));
    let (req, _) = h.expect_request(0, ApiKey::Metadata);
    h.answer(0, req, &metadata(1), h.at(0));
    h.turn(h.at(0));
    let (fetch, _) = h.expect_fetch(h.at(0));
    // Renewal is due within 85-95 % of the 10 s session.
    let due = h.engine.brokers[0]
        .reauth_at
        .expect("a renewal is scheduled");
    assert!(due >= h.at(8_500) && due <= h.at(9_500), "{:?}", due - h.t0);
    assert!(h.engine.next_timer(h.at(1)).is_some_and(|t| t <= due));
    // Due, with the fetch still out: nothing new goes out, not even the handshake.
    h.turn(h.at(9_600));
    if let Some((r, _, _)) = h.next_request(0) {
        panic!("sent during the drain: {r:?}");
    }
    h.answer(0, fetch, &fetch_answer(0, 0, 2, 0), h.at(9_700));
    assert_eq!(
        h.engine.take_chunks().count(),
        1,
        "the answer in flight is kept"
    );
    h.turn(h.at(9_700));
    let (req, hs) = {
        let (req, mut body) = h.expect_request(0, ApiKey::SaslHandshake);
        let hs = kafka_protocol::messages::SaslHandshakeRequest::decode(&mut body, 1).unwrap();
        (req, hs)
    };
    assert_eq!(hs.mechanism.as_str(), "PLAIN");
    h.answer(0, req, &SaslHandshakeResponse::default(), h.at(9_700));
    let (req, _) = h.expect_request(0, ApiKey::SaslAuthenticate);
    assert!(
        h.next_request(0).is_none(),
        "no fetch while re-authenticating"
    );
    h.answer(0, req, &granted, h.at(9_710));
    h.turn(h.at(9_710));
    let (_, f) = h.expect_fetch(h.at(9_710));
    assert_eq!(fetched_offsets(&f), [(0, 2)]);
    assert_eq!(
        h.engine.net.dials.len(),
        1,
        "the same connection throughout"
    );
    assert_eq!(h.engine.net.closed, 0);
    let again = h.engine.brokers[0].reauth_at.expect("the next renewal");
    assert!(again > h.at(9_710 + 8_000), "{:?}", again - h.t0);
}

/// Brings up node 1 (the bootstrap entry, at b:9092), then has Metadata move it to
/// `moved:9092`, where every dial from then on is refused.
fn moved_away(h: &mut Harness) {
    h.engine.assign(TOPIC, 0, StartAt::Earliest);
    let _ = h.bring_up(0, h.at(0));
    h.engine.link_failed(0, ConnError::Closed, h.at(0));
    h.turn(h.at(100));
    let (req, _) = h.expect_request(0, ApiKey::ApiVersions);
    h.answer(0, req, &api_versions(), h.at(100));
    h.turn(h.at(100));
    let (req, _) = h.expect_request(0, ApiKey::Metadata);
    let mut moved = metadata(1);
    moved.brokers[0].host = StrBytes::from_static_str("moved");
    h.net_refuses();
    h.answer(0, req, &moved, h.at(100));
    assert_eq!(h.engine.broker_addr(1), Some(("moved".into(), 9092)));
}

/// KIP-1102: until `rebootstrap_trigger_ms` has passed with no broker ready, only
/// the advertised (moved) address is retried; after it, the `bootstrap.servers`
/// address is dialled again. With `metadata.recovery.strategy=none`, never.
#[test]
fn with_no_broker_reachable_for_the_trigger_the_bootstrap_servers_are_dialled_again() {
    let mut c = cfg();
    c.rebootstrap_trigger_ms = Some(10_000);
    let mut h = Harness::new(c);
    moved_away(&mut h);
    let before = h.engine.net.hosts.len();
    for ms in (200..10_000).step_by(100) {
        h.turn(h.at(ms));
    }
    let hosts = h.engine.net.hosts.clone();
    assert!(
        hosts[before..].iter().all(|host| host == "moved"),
        "before the trigger only the advertised address is dialled: {hosts:?}"
    );
    assert!(hosts.len() > before + 2, "it kept retrying: {hosts:?}");
    for ms in (10_200..11_200).step_by(100) {
        h.turn(h.at(ms));
    }
    let hosts = h.engine.net.hosts.clone();
    assert!(
        hosts[before..].iter().any(|host| host == "b"),
        "after the trigger the bootstrap address is dialled again: {hosts:?}"
    );

    let mut c = cfg();
    c.rebootstrap_trigger_ms = None;
    let mut h = Harness::new(c);
    moved_away(&mut h);
    let before = h.engine.net.hosts.len();
    for ms in (200..30_000).step_by(100) {
        h.turn(h.at(ms));
    }
    let hosts = h.engine.net.hosts.clone();
    assert!(
        hosts[before..].iter().all(|host| host == "moved"),
        "{hosts:?}"
    );
}
