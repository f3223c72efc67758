//! Proves the test harness itself: the broker launcher (Apache Kafka, or tansu with
//! `WEIR_TEST_BROKER=tansu`), the librdkafka peer scripts and the scripted broker.
//! Needs `scripts/install-kafka.sh` and `scripts/setup-python.sh`.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, FetchRequest, FetchResponse, JoinGroupRequest, MetadataRequest,
    MetadataResponse, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use support::broker::Broker;
use support::peer::{Codec, Producer, RdkafkaConsume, Txn, rdkafka_consume};
use support::scripted::{Action, ScriptedBroker, code, uncompressed_batch};
use support::{unique_topic, wire};
use weir_protocol::{Compression, ControlKind, RecordBatchBuilder};

const T: Duration = Duration::from_secs(5);

fn metadata_all() -> MetadataRequest {
    let mut r = MetadataRequest::default();
    r.topics = None;
    r
}

// ---------------------------------------------------------------- broker launcher

#[test]
fn broker_answers_api_versions_and_metadata_on_loopback() {
    let broker = Broker::shared();
    assert!(broker.bootstrap().starts_with("127.0.0.1:"));

    let versions = wire::api_versions(broker.addr(), T).expect("ApiVersions round trip");
    assert_eq!(versions.error_code, 0);
    let fetch = versions
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Fetch as i16)
        .expect("the broker lists Fetch");
    assert!(fetch.max_version >= 12, "Fetch max v{}", fetch.max_version);

    let mut stream = wire::connect(broker.addr(), T).expect("connect");
    let md: MetadataResponse =
        wire::roundtrip(&mut stream, 7, 12, &metadata_all()).expect("Metadata");
    assert_eq!(md.brokers.len(), 1);
    assert_eq!(md.brokers[0].host.as_str(), "127.0.0.1");
    assert_eq!(md.brokers[0].port, i32::from(broker.addr().port()));
}

#[test]
fn every_codec_round_trips_through_librdkafka() {
    let broker = Broker::shared();
    for codec in Codec::ALL {
        let topic = unique_topic(&format!("codec-{}", codec.name()));
        let manifest = Producer::new(&broker.bootstrap(), &topic)
            .partitions(2)
            .count(25)
            .compression(codec)
            .headers(2)
            .null_header()
            .tombstone_every(7)
            .value_size(64)
            .timestamp_base(1_700_000_000_000)
            .run();
        assert_eq!(manifest.count(), 50, "{codec:?}");
        let rec = &manifest.records[&1][6];
        assert_eq!(rec.rec.value, None, "seq 6 is a tombstone");
        assert_eq!(
            rec.rec.headers.last(),
            Some(&("null-header".to_string(), None))
        );
        assert_eq!(rec.rec.timestamp, 1_700_000_000_006);

        let consumed = rdkafka_consume(&broker.bootstrap(), &topic);
        assert_eq!(consumed.records, manifest.all(), "{codec:?}");
        assert_eq!(consumed.summary.records, 50);
    }
}

#[test]
fn dedicated_broker_restart_keeps_data_and_port() {
    let mut broker = Broker::dedicated();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("restart");
    let manifest = Producer::new(&bootstrap, &topic)
        .partitions(3)
        .count(10)
        .run();

    broker.kill();
    broker.restart();
    assert_eq!(broker.bootstrap(), bootstrap, "same port after restart");
    let consumed = rdkafka_consume(&broker.bootstrap(), &topic);
    assert_eq!(consumed.records, manifest.all());

    // Appending after the restart continues the offsets.
    let more = Producer::new(&bootstrap, &topic)
        .partitions(3)
        .count(5)
        .start_seq(10)
        .run();
    assert_eq!(more.records[&0][0].rec.offset, 10);
}

#[test]
fn dedicated_broker_is_killed_on_drop() {
    let broker = Broker::dedicated();
    let addr = broker.addr();
    let pid = broker.pid().expect("running");
    drop(broker);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "broker pid {pid} still exists after drop"
    );
    assert!(std::net::TcpStream::connect_timeout(&addr, T).is_err());
}

const PANIC_CHILD_ENV: &str = "WEIR_HARNESS_PANIC_CHILD";

/// Started by `a_panicking_test_leaves_no_broker_behind` only: starts the shared broker,
/// writes its pid where the parent reads it, and panics.
#[test]
fn panic_child_starts_the_shared_broker_and_panics() {
    let Some(path) = std::env::var_os(PANIC_CHILD_ENV) else {
        return;
    };
    let broker = Broker::shared();
    let pid = broker.pid().expect("the shared broker runs");
    std::fs::write(&path, pid.to_string()).expect("write the pid");
    panic!("on purpose: the broker must die with this process");
}

#[test]
fn a_panicking_test_leaves_no_broker_behind() {
    if std::env::var_os(PANIC_CHILD_ENV).is_some()
        || std::env::var_os("WEIR_TEST_BOOTSTRAP").is_some()
    {
        return;
    }
    let pid_file = support::scratch_dir("panic-child").join("pid");
    let status = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "panic_child_starts_the_shared_broker_and_panics",
            "--quiet",
        ])
        .env(PANIC_CHILD_ENV, &pid_file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run the child");
    assert!(!status.success(), "the child test was meant to panic");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("the child wrote the broker's pid")
        .trim()
        .parse()
        .expect("a pid");
    // SIGKILL through PR_SET_PDEATHSIG is immediate; allow for a busy machine.
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true);
        if zombie {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "broker pid {pid} outlived the panicking test process"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[should_panic(expected = "scripts/install-kafka.sh")]
fn missing_kafka_fails_with_the_setup_command() {
    let _ = support::kafka::Kafka::start(
        support::kafka::KafkaOptions::default().home("/nonexistent/weir-kafka-home"),
    );
}

/// A transaction left open: its records are above the last stable offset, so
/// librdkafka's read_committed consumer sees none of them (until the broker aborts it
/// after the producer's transaction.timeout.ms, a minute away).
#[test]
fn open_transaction_is_invisible_to_read_committed() {
    let broker = Broker::shared();
    let topic = unique_topic("open-txn");
    let manifest = Producer::new(&broker.bootstrap(), &topic)
        .partitions(2)
        .count(5)
        .transactions(&[Txn::Open])
        .run();
    assert_eq!(manifest.count(), 10);
    assert!(manifest.committed().is_empty());

    let committed = RdkafkaConsume::new(&broker.bootstrap(), &topic)
        .read_committed()
        .run();
    assert!(committed.records.is_empty(), "{:?}", committed.records);
    let uncommitted = rdkafka_consume(&broker.bootstrap(), &topic);
    assert_eq!(uncommitted.records, manifest.all());
}

// ---------------------------------------------------------------- scripted broker

#[test]
fn scripted_api_versions_raw_round_trip() {
    let broker = ScriptedBroker::start();
    let versions = wire::api_versions(broker.addr(0), T).expect("ApiVersions");
    assert_eq!(versions.error_code, 0);
    let fetch = versions
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Fetch as i16)
        .expect("Fetch listed");
    assert_eq!(
        (fetch.min_version, fetch.max_version),
        (4, ApiKey::Fetch.valid_versions().max)
    );

    let got = broker.requests_of(ApiKey::ApiVersions);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].version(), 3);
    assert_eq!(got[0].header.client_id.as_deref(), Some("weir-harness"));
    assert!(broker.errors().is_empty(), "{:?}", broker.errors());
}

#[test]
fn scripted_api_versions_too_new_gets_v0_unsupported_version() {
    let broker = ScriptedBroker::start();
    let mut stream = wire::connect(broker.addr(0), T).expect("connect");
    // ApiVersions v99 with a v2 header: key 18, version 99, correlation 5, client "x".
    let mut req = Vec::new();
    req.extend_from_slice(&18i16.to_be_bytes());
    req.extend_from_slice(&99i16.to_be_bytes());
    req.extend_from_slice(&5i32.to_be_bytes());
    req.extend_from_slice(&1i16.to_be_bytes());
    req.push(b'x');
    req.push(0); // header tagged fields
    req.push(0); // body tagged fields
    let mut frame = (req.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&req);
    stream.write_all(&frame).expect("write");
    let body = wire::read_frame(&mut stream).expect("answer");
    assert_eq!(&body[..4], &5i32.to_be_bytes(), "correlation id");
    assert_eq!(
        &body[4..6],
        &code::UNSUPPORTED_VERSION.to_be_bytes(),
        "v0 error code"
    );
}

fn fetch_request(
    topic: &str,
    topic_id: uuid::Uuid,
    version: i16,
    offset: i64,
    isolation: i8,
) -> FetchRequest {
    let mut fp = FetchPartition::default();
    fp.partition = 0;
    fp.fetch_offset = offset;
    fp.partition_max_bytes = 1 << 20;
    let mut ft = FetchTopic::default();
    if version >= 13 {
        ft.topic_id = topic_id;
    } else {
        ft.topic = TopicName(StrBytes::from_string(topic.to_string()));
    }
    ft.partitions = vec![fp];
    let mut r = FetchRequest::default();
    r.max_wait_ms = 50;
    r.max_bytes = 50 << 20;
    r.isolation_level = isolation;
    r.topics = vec![ft];
    r
}

#[test]
fn scripted_serves_metadata_and_fetch_with_aborted_transactions() {
    let broker = ScriptedBroker::start();
    broker.add_topic("t", 1);
    let plain = uncompressed_batch(0, 1000, &[(Some(b"k0"), Some(b"v0")), (None, Some(b"v1"))]);
    let mut txn = RecordBatchBuilder::new(2)
        .compression(Compression::Zstd)
        .producer(77, 0, 0)
        .transactional(true);
    txn.append(2000, Some(b"k2"), Some(b"aborted"));
    let txn = Bytes::from(txn.build());
    let marker = Bytes::from(RecordBatchBuilder::control_marker(
        3,
        77,
        0,
        ControlKind::Abort,
        0,
        2001,
    ));
    assert_eq!(broker.append_batch("t", 0, plain.clone()), (0, 1));
    assert_eq!(broker.append_batch("t", 0, txn.clone()), (2, 2));
    assert_eq!(broker.append_batch("t", 0, marker.clone()), (3, 3));
    broker.set_aborted("t", 0, vec![(77, 2)]);

    let mut stream = wire::connect(broker.addr(0), T).expect("connect");
    let mut md = MetadataRequest::default();
    md.topics = Some(vec![
        MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_static_str("t")))),
        MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("nope")))),
    ]);
    let md: MetadataResponse = wire::roundtrip(&mut stream, 1, 12, &md).expect("Metadata");
    assert_eq!(md.brokers[0].port, i32::from(broker.addr(0).port()));
    assert_eq!(md.topics[0].error_code, 0);
    assert_eq!(md.topics[0].topic_id, broker.topic_id("t"));
    assert_eq!(md.topics[0].partitions[0].leader_id.0, 0);
    assert_eq!(md.topics[1].error_code, code::UNKNOWN_TOPIC_OR_PARTITION);

    let all = [plain.as_ref(), txn.as_ref(), marker.as_ref()].concat();
    for version in [4i16, 11, 12, 13, ApiKey::Fetch.valid_versions().max] {
        let req = fetch_request("t", broker.topic_id("t"), version, 0, 1);
        let resp: FetchResponse = wire::roundtrip(&mut stream, 2, version, &req).expect("Fetch");
        let pd = &resp.responses[0].partitions[0];
        assert_eq!(pd.error_code, 0, "v{version}");
        assert_eq!(pd.high_watermark, 4);
        assert_eq!(pd.records.as_deref(), Some(all.as_slice()), "v{version}");
        let aborted = pd
            .aborted_transactions
            .as_ref()
            .expect("read_committed gets a list");
        assert_eq!(aborted.len(), 1);
        assert_eq!((aborted[0].producer_id.0, aborted[0].first_offset), (77, 2));

        // read_uncommitted: no aborted list; from offset 2 only the last two batches.
        let req = fetch_request("t", broker.topic_id("t"), version, 2, 0);
        let resp: FetchResponse = wire::roundtrip(&mut stream, 3, version, &req).expect("Fetch");
        let pd = &resp.responses[0].partitions[0];
        assert!(pd.aborted_transactions.as_ref().is_none_or(Vec::is_empty));
        assert_eq!(
            pd.records.as_deref(),
            Some([txn.as_ref(), marker.as_ref()].concat().as_slice())
        );
    }

    // Offset beyond the high watermark.
    let req = fetch_request("t", broker.topic_id("t"), 12, 9, 0);
    let resp: FetchResponse = wire::roundtrip(&mut stream, 4, 12, &req).expect("Fetch");
    assert_eq!(
        resp.responses[0].partitions[0].error_code,
        code::OFFSET_OUT_OF_RANGE
    );
    assert!(broker.errors().is_empty(), "{:?}", broker.errors());
}

#[test]
fn scripted_leader_move_between_two_nodes() {
    let broker = ScriptedBroker::with_nodes(&[1, 2]);
    broker.add_topic("moving", 1);
    broker.append_batch("moving", 0, uncompressed_batch(0, 5, &[(None, Some(b"x"))]));
    assert_eq!(broker.bootstrap().split(',').count(), 2);

    let mut to2 = wire::connect(broker.addr(2), T).expect("connect node 2");
    let req = fetch_request("moving", broker.topic_id("moving"), 12, 0, 0);
    let resp: FetchResponse = wire::roundtrip(&mut to2, 1, 12, &req).expect("Fetch");
    let pd = &resp.responses[0].partitions[0];
    assert_eq!(pd.error_code, code::NOT_LEADER_OR_FOLLOWER);
    assert_eq!(pd.current_leader.leader_id.0, 1);

    broker.set_leader("moving", 0, 2);
    let resp: FetchResponse = wire::roundtrip(&mut to2, 2, 12, &req).expect("Fetch");
    assert_eq!(resp.responses[0].partitions[0].error_code, 0);

    let mut md_conn = wire::connect(broker.addr(1), T).expect("connect node 1");
    let md: MetadataResponse =
        wire::roundtrip(&mut md_conn, 3, 12, &metadata_all()).expect("Metadata");
    assert_eq!(md.brokers.len(), 2);
    assert_eq!(md.topics[0].partitions[0].leader_id.0, 2);
    assert_eq!(md.topics[0].partitions[0].leader_epoch, 1);
    let fetches = broker.requests_of(ApiKey::Fetch);
    assert_eq!(
        fetches.iter().map(|r| r.node_id).collect::<Vec<_>>(),
        vec![2, 2]
    );
}

#[test]
fn scripted_faults_raw_bytes_close_delay_and_silence() {
    let broker = ScriptedBroker::start();
    let req = ApiVersionsRequest::default();

    // Garbage: the client gets exactly these bytes.
    broker.push(
        ApiKey::ApiVersions,
        Action::RespondRaw(Bytes::from_static(b"\x00\x00\x00\x02zz")),
    );
    let mut s = wire::connect(broker.addr(0), T).expect("connect");
    s.write_all(&wire::encode_request(&header(18, 3, 1), &req).expect("encode"))
        .expect("write");
    assert_eq!(wire::read_frame(&mut s).expect("frame").as_ref(), b"zz");

    // Close: the client reads end of stream.
    broker.push(ApiKey::ApiVersions, Action::CloseConnection);
    s.write_all(&wire::encode_request(&header(18, 3, 2), &req).expect("encode"))
        .expect("write");
    let mut byte = [0u8; 1];
    assert_eq!(s.read(&mut byte).expect("EOF, not an error"), 0);

    // Delay: the answer comes after the delay.
    broker.push(
        ApiKey::ApiVersions,
        Action::delay(
            Duration::from_millis(300),
            Action::RespondBody(Bytes::from_static(b"\xff")),
        ),
    );
    let mut s = wire::connect(broker.addr(0), T).expect("connect");
    let started = Instant::now();
    s.write_all(&wire::encode_request(&header(18, 3, 3), &req).expect("encode"))
        .expect("write");
    let body = wire::read_frame(&mut s).expect("frame");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        body.as_ref(),
        &[0, 0, 0, 3, 0xff],
        "header v0 (correlation id) then the body"
    );

    // Silence: nothing comes back, the connection stays open.
    broker.push(ApiKey::ApiVersions, Action::NoResponse);
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    s.write_all(&wire::encode_request(&header(18, 3, 4), &req).expect("encode"))
        .expect("write");
    let err = s.read(&mut byte).expect_err("no answer");
    assert!(matches!(
        err.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ));

    // The queue is used up: the default answers again, on the same connection.
    s.set_read_timeout(Some(T)).expect("timeout");
    let versions = wire::roundtrip(&mut s, 5, 3, &req).expect("default answer");
    assert_eq!(versions.error_code, 0);
    assert_eq!(broker.requests_of(ApiKey::ApiVersions).len(), 5);
}

fn header(key: i16, version: i16, correlation_id: i32) -> kafka_protocol::messages::RequestHeader {
    kafka_protocol::messages::RequestHeader::default()
        .with_request_api_key(key)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("t")))
}

#[test]
fn scripted_handler_sees_requests_and_unscripted_apis_are_reported() {
    let broker = ScriptedBroker::start();
    broker.add_topic("a", 1);
    // A handler that hides every topic once node 0 has seen two Metadata requests.
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    broker.on(ApiKey::Metadata, move |ctx, header, request| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut answer = ctx.default_action(header, request)?;
        if n >= 1
            && let Action::Respond(ResponseKind::Metadata(md)) = &mut answer
        {
            md.topics.clear();
        }
        assert!(matches!(request, RequestKind::Metadata(_)));
        Some(answer)
    });
    let mut s = wire::connect(broker.addr(0), T).expect("connect");
    let md: MetadataResponse = wire::roundtrip(&mut s, 1, 9, &metadata_all()).expect("Metadata");
    assert_eq!(md.topics.len(), 1);
    let md: MetadataResponse = wire::roundtrip(&mut s, 2, 9, &metadata_all()).expect("Metadata");
    assert!(md.topics.is_empty());
    assert_eq!(broker.wait_for(ApiKey::Metadata, 2, T).len(), 2);

    // JoinGroup has no default: the connection is closed and the error recorded.
    let join = JoinGroupRequest::default();
    assert!(wire::roundtrip(&mut s, 3, 5, &join).is_err());
    let errors = broker.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("JoinGroup"), "{errors:?}");
}

/// librdkafka, a real client, reads a partition from the scripted broker: the
/// defaults are close enough to a broker's answers for real clients.
#[test]
fn scripted_broker_serves_librdkafka() {
    let broker = ScriptedBroker::start();
    broker.add_topic("scripted", 2);
    broker.append_batch(
        "scripted",
        0,
        uncompressed_batch(
            0,
            1000,
            &[(Some(b"a"), Some(b"1")), (Some(b"b"), Some(b"2"))],
        ),
    );
    let mut zstd = RecordBatchBuilder::new(0).compression(Compression::Zstd);
    zstd.append(3000, Some(b"c"), Some(b"3"));
    broker.append_batch("scripted", 1, zstd.build());

    let consumed = rdkafka_consume(&broker.bootstrap(), "scripted");
    let got: Vec<(i32, i64, Option<Vec<u8>>)> = consumed
        .records
        .iter()
        .map(|r| (r.partition, r.offset, r.value.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, 0, Some(b"1".to_vec())),
            (0, 1, Some(b"2".to_vec())),
            (1, 0, Some(b"3".to_vec()))
        ],
        "errors: {:?}",
        broker.errors()
    );
    assert!(!broker.requests_of(ApiKey::Fetch).is_empty());
}

/// consume_rdkafka.py as a group member: it joins, is assigned every partition and
/// stops at their ends.
#[test]
fn rdkafka_group_member_reads_everything() {
    let broker = Broker::shared();
    let topic = unique_topic("group");
    let manifest = Producer::new(&broker.bootstrap(), &topic)
        .partitions(3)
        .count(4)
        .run();
    let consumed = RdkafkaConsume::new(&broker.bootstrap(), &topic)
        .group(&unique_topic("harness-group"))
        .session_timeout_ms(6000)
        .run();
    assert_eq!(consumed.records, manifest.all());
}

/// Fetch's high watermark is the log end on every broker. On Apache Kafka
/// ListOffsets(latest) is exactly that too, and every Fetch version decodes; tansu
/// (`WEIR_TEST_BROKER=tansu`) has two quirks the fetch path must live with: its
/// ListOffsets(latest) can answer the base offset of the last batch, and its Fetch
/// v12-v15 responses carry a top-level tagged field that kafka-protocol rejects.
#[test]
fn fetch_high_watermark_is_the_log_end() {
    use kafka_protocol::messages::ListOffsetsRequest;
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};

    let broker = Broker::shared();
    let topic = unique_topic("hwm");
    let manifest = Producer::new(&broker.bootstrap(), &topic)
        .count(100)
        .batch_num_messages(10)
        .linger_ms(0)
        .run();
    assert_eq!(manifest.next_offset[&0], 100);

    // v13 and later name topics by id (a nil id is UNKNOWN_TOPIC_ID on Kafka): v12
    // is the last version by name, and where tansu's stray tag shows.
    let versions: &[i16] = if broker.is_kafka() { &[12] } else { &[12, 15] };
    for &v in versions {
        let mut s = wire::connect(broker.addr(), T).expect("connect");
        let req = fetch_request(&topic, uuid::Uuid::nil(), v, 0, 0);
        let result: Result<FetchResponse, _> = wire::roundtrip(&mut s, 1, v, &req);
        if broker.is_kafka() {
            let resp = result.unwrap_or_else(|e| panic!("Fetch v{v}: {e}"));
            assert_eq!(resp.responses[0].partitions[0].high_watermark, 100, "v{v}");
        } else {
            let err = result.expect_err("tansu quirk");
            assert!(err.to_string().contains("Tag 0"), "v{v}: {err}");
        }
    }
    let mut stream = wire::connect(broker.addr(), T).expect("connect");
    let req = fetch_request(&topic, uuid::Uuid::nil(), 11, 0, 0);
    let resp: FetchResponse = wire::roundtrip(&mut stream, 1, 11, &req).expect("Fetch");
    let pd = &resp.responses[0].partitions[0];
    assert_eq!(pd.error_code, 0);
    assert_eq!(pd.high_watermark, 100, "Fetch high watermark = log end");

    let mut lo = ListOffsetsRequest::default();
    lo.replica_id = kafka_protocol::messages::BrokerId(-1);
    lo.topics = vec![
        ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.clone())))
            .with_partitions(vec![ListOffsetsPartition::default().with_timestamp(-1)]),
    ];
    let resp: kafka_protocol::messages::ListOffsetsResponse =
        wire::roundtrip(&mut stream, 2, 7, &lo).expect("ListOffsets");
    let latest = resp.topics[0].partitions[0].offset;
    if broker.is_kafka() {
        assert_eq!(latest, 100, "Kafka's ListOffsets(latest) is the log end");
    } else {
        assert!((0..=100).contains(&latest), "latest {latest}");
    }
}
