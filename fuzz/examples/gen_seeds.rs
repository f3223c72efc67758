//! Writes the committed seed corpora under `fuzz/seeds/<target>/`.
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example gen_seeds [OUT_DIR]
//!
//! Deterministic: the same files every run. Record batches come from weir's builders
//! (every codec, headers, transactions, control markers, legacy message sets); response
//! bodies are encoded by kafka-protocol (broker feature) at several versions; frames
//! wrap those bodies with size prefixes and response headers, including truncated ones.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use kafka_protocol::messages as kp;
use kafka_protocol::messages::{BrokerId, GroupId, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use weir_fuzz::responses::{KEYS, range};
use weir_protocol::control::ControlKind;
use weir_protocol::frame::response_header_flexible_by_key;
use weir_protocol::record::LegacyMessageSetWriter;
use weir_protocol::{Compression, Header, RecordBatchBuilder};

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

const TS: i64 = 1_700_000_000_000;

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).expect("create seed dir");
    std::fs::write(d.join(name), bytes).expect("write seed");
}

fn data_batch(base: i64, codec: Compression, n: usize) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(base)
        .compression(codec)
        .producer(1000, 3, 0)
        .partition_leader_epoch(5);
    for i in 0..n {
        let v = format!("value-{i}-{}", "x".repeat(i * 7));
        let k = format!("k{i}");
        let headers = [
            Header {
                key: b"trace",
                value: Some(b"abc"),
            },
            Header {
                key: b"null",
                value: None,
            },
        ];
        match i % 3 {
            0 => b.append(TS + i as i64, Some(k.as_bytes()), Some(v.as_bytes())),
            1 => b.append_with_headers(TS + i as i64, None, Some(v.as_bytes()), &headers),
            _ => b.append(TS - 5, Some(k.as_bytes()), None),
        };
    }
    b.build()
}

fn txn_blob() -> Vec<u8> {
    let mut out = Vec::new();
    let t = |base: i64, pid: i64| {
        let mut b = RecordBatchBuilder::new(base)
            .producer(pid, 0, 0)
            .transactional(true);
        b.append(TS, None, Some(b"txn"));
        b.append(TS, None, Some(b"txn2"));
        b.build()
    };
    out.extend(t(0, 7));
    out.extend(t(2, 8));
    out.extend(RecordBatchBuilder::control_marker(
        4,
        7,
        0,
        ControlKind::Abort,
        1,
        TS,
    ));
    out.extend(RecordBatchBuilder::control_marker(
        5,
        8,
        0,
        ControlKind::Commit,
        1,
        TS,
    ));
    out
}

fn legacy_sets() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for magic in [0i8, 1] {
        let mut w = LegacyMessageSetWriter::new(magic);
        w.append(10, TS, Some(b"k1"), Some(b"legacy one"));
        w.append(11, TS + 1, None, Some(b"legacy two"));
        w.append(12, TS + 2, Some(b"k3"), None);
        out.push((format!("legacy_m{magic}_plain"), w.build()));
        for codec in &CODECS[1..4] {
            out.push((
                format!("legacy_m{magic}_{}", codec.name()),
                w.build_compressed(*codec, None),
            ));
        }
        if magic == 1 {
            out.push((
                "legacy_m1_gzip_logappend".to_owned(),
                w.build_compressed(Compression::Gzip, Some(TS + 99)),
            ));
        }
    }
    out
}

fn records_seeds(dir: &Path) -> Vec<u8> {
    let t = "record_batches";
    for codec in CODECS {
        write(
            dir,
            t,
            &format!("v2_{}", codec.name()),
            &data_batch(100, codec, 6),
        );
    }
    let mut lat = RecordBatchBuilder::new(0).log_append_time(TS + 1000);
    lat.append(TS, Some(b"a"), Some(b"b"));
    write(dir, t, "v2_log_append_time", &lat.build());
    write(dir, t, "v2_txn_markers", &txn_blob());
    let empty_control = RecordBatchBuilder::new(9)
        .producer(7, 0, -1)
        .transactional(true)
        .control(true)
        .build();
    write(dir, t, "v2_empty_control", &empty_control);
    for (name, bytes) in legacy_sets() {
        write(dir, t, &name, &bytes);
    }
    // A mixed blob: legacy, v2 in two codecs, then a truncated final batch.
    let mut mixed = legacy_sets().remove(1).1;
    mixed.extend(data_batch(200, Compression::None, 2));
    mixed.extend(data_batch(202, Compression::Lz4, 3));
    let tail = data_batch(205, Compression::Snappy, 2);
    mixed.extend(&tail[..tail.len() / 2]);
    write(dir, t, "mixed_truncated_tail", &mixed);
    mixed
}

fn enc<T: Encodable>(m: &T, version: i16) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match m.encode(&mut out, version) {
        Ok(()) => Some(out),
        Err(e) => {
            eprintln!("skipped a seed: kafka-protocol cannot encode v{version}: {e}");
            None
        }
    }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn fetch(version: i16, records: &[u8]) -> kp::FetchResponse {
    use kp::fetch_response as f;
    let mut p = f::PartitionData::default();
    p.partition_index = 0;
    p.high_watermark = 1000;
    p.last_stable_offset = 990;
    if version >= 5 {
        p.log_start_offset = 5;
    }
    let mut a = f::AbortedTransaction::default();
    a.producer_id = 7.into();
    a.first_offset = 0;
    p.aborted_transactions = Some(vec![a]);
    if version >= 11 {
        p.preferred_read_replica = BrokerId(-1);
    }
    p.records = Some(Bytes::copy_from_slice(records));
    if version >= 12 {
        let mut l = f::LeaderIdAndEpoch::default();
        l.leader_id = BrokerId(2);
        l.leader_epoch = 9;
        p.current_leader = l;
        let mut e = f::EpochEndOffset::default();
        e.epoch = 4;
        e.end_offset = 800;
        p.diverging_epoch = e;
    }
    let mut p1 = f::PartitionData::default();
    p1.partition_index = 1;
    p1.error_code = 6;
    p1.aborted_transactions = None;
    p1.records = None;
    let mut t = f::FetchableTopicResponse::default();
    t.topic = TopicName(s("orders"));
    t.topic_id = uuid::Uuid::from_bytes([0xab; 16]);
    t.partitions = vec![p, p1];
    let mut r = kp::FetchResponse::default();
    r.throttle_time_ms = 1;
    if version >= 7 {
        r.session_id = 42;
    }
    r.responses = vec![t];
    r
}

/// Body seeds for every API the `responses` target covers: (api key, version, body).
fn response_bodies() -> Vec<(i16, i16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut push = |key: i16, version: i16, body: Option<Vec<u8>>| {
        if let Some(b) = body {
            out.push((key, version, b));
        }
    };
    for v in [0, 3] {
        let mut r = kp::ApiVersionsResponse::default();
        for (k, lo, hi) in [(1, 4, 16), (3, 1, 12), (18, 0, 4)] {
            let mut a = kp::api_versions_response::ApiVersion::default();
            a.api_key = k;
            a.min_version = lo;
            a.max_version = hi;
            r.api_keys.push(a);
        }
        push(18, v, enc(&r, v));
    }
    for v in [1, 9, 12] {
        use kp::metadata_response as m;
        let mut b = m::MetadataResponseBroker::default();
        b.node_id = BrokerId(1);
        b.host = s("localhost");
        b.port = 9092;
        let mut p = m::MetadataResponsePartition::default();
        p.leader_id = BrokerId(1);
        p.replica_nodes = vec![BrokerId(1)];
        p.isr_nodes = vec![BrokerId(1)];
        let mut t = m::MetadataResponseTopic::default();
        t.name = Some(TopicName(s("orders")));
        t.partitions = vec![p];
        let mut r = kp::MetadataResponse::default();
        r.brokers = vec![b];
        r.topics = vec![t];
        push(3, v, enc(&r, v));
    }
    for v in [1, 7] {
        use kp::list_offsets_response as l;
        let mut p = l::ListOffsetsPartitionResponse::default();
        p.offset = 1234;
        let mut t = l::ListOffsetsTopicResponse::default();
        t.name = TopicName(s("orders"));
        t.partitions = vec![p];
        let mut r = kp::ListOffsetsResponse::default();
        r.topics = vec![t];
        push(2, v, enc(&r, v));
    }
    let mut h = kp::SaslHandshakeResponse::default();
    h.mechanisms = vec![s("PLAIN")];
    push(17, 1, enc(&h, 1));
    let mut a = kp::SaslAuthenticateResponse::default();
    a.auth_bytes = Bytes::from_static(b"ok");
    push(36, 2, enc(&a, 2));
    for v in [0, 4] {
        let mut r = kp::FindCoordinatorResponse::default();
        if v >= 4 {
            let mut c = kp::find_coordinator_response::Coordinator::default();
            c.key = s("group");
            c.host = s("localhost");
            c.port = 9092;
            r.coordinators = vec![c];
        } else {
            r.host = s("localhost");
            r.port = 9092;
        }
        push(10, v, enc(&r, v));
    }
    for v in [5, 7] {
        let mut m = kp::join_group_response::JoinGroupResponseMember::default();
        m.member_id = s("m1");
        m.metadata = Bytes::from_static(b"\x00\x01meta");
        let mut r = kp::JoinGroupResponse::default();
        r.member_id = s("m1");
        r.leader = s("m1");
        r.members = vec![m];
        if v >= 7 {
            r.protocol_type = Some(s("consumer"));
        }
        r.protocol_name = Some(s("range"));
        push(11, v, enc(&r, v));
    }
    for v in [3, 5] {
        let mut r = kp::SyncGroupResponse::default();
        r.assignment = Bytes::from_static(b"\x00\x01assign");
        push(14, v, enc(&r, v));
    }
    for v in [0, 4] {
        push(12, v, enc(&kp::HeartbeatResponse::default(), v));
    }
    for v in [3, 4] {
        let mut m = kp::leave_group_response::MemberResponse::default();
        m.member_id = s("m1");
        let mut r = kp::LeaveGroupResponse::default();
        r.members = vec![m];
        push(13, v, enc(&r, v));
    }
    for v in [2, 8] {
        use kp::offset_commit_response as o;
        let mut t = o::OffsetCommitResponseTopic::default();
        t.name = TopicName(s("orders"));
        t.partitions = vec![o::OffsetCommitResponsePartition::default()];
        let mut r = kp::OffsetCommitResponse::default();
        r.topics = vec![t];
        push(8, v, enc(&r, v));
    }
    for v in [5, 8] {
        use kp::offset_fetch_response as o;
        let mut r = kp::OffsetFetchResponse::default();
        if v >= 8 {
            let mut p = o::OffsetFetchResponsePartitions::default();
            p.committed_offset = 77;
            let mut t = o::OffsetFetchResponseTopics::default();
            t.name = TopicName(s("orders"));
            t.partitions = vec![p];
            let mut g = o::OffsetFetchResponseGroup::default();
            g.group_id = GroupId(s("group"));
            g.topics = vec![t];
            r.groups = vec![g];
        } else {
            let mut p = o::OffsetFetchResponsePartition::default();
            p.committed_offset = 77;
            let mut t = o::OffsetFetchResponseTopic::default();
            t.name = TopicName(s("orders"));
            t.partitions = vec![p];
            r.topics = vec![t];
        }
        push(9, v, enc(&r, v));
    }
    for v in [3, 5] {
        use kp::describe_groups_response as d;
        let mut m = d::DescribedGroupMember::default();
        m.member_id = s("m1");
        m.client_id = s("weir");
        let mut g = d::DescribedGroup::default();
        g.group_id = GroupId(s("group"));
        g.group_state = s("Stable");
        g.members = vec![m];
        let mut r = kp::DescribeGroupsResponse::default();
        r.groups = vec![g];
        push(15, v, enc(&r, v));
    }
    for v in [0i16, 1] {
        use kp::consumer_group_heartbeat_response as h;
        let mut t = h::TopicPartitions::default();
        t.topic_id = uuid::Uuid::from_bytes([7; 16]);
        t.partitions = vec![0, 2];
        let mut a = h::Assignment::default();
        a.topic_partitions = vec![t];
        let mut r = kp::ConsumerGroupHeartbeatResponse::default();
        r.member_id = Some(s("zNuhBLrwTBSo37gIT8MBHQ"));
        r.member_epoch = 3;
        r.heartbeat_interval_ms = 5000;
        r.assignment = Some(a);
        push(68, v, enc(&r, v));
    }
    for v in [2, 4] {
        let mut g = kp::list_groups_response::ListedGroup::default();
        g.group_id = GroupId(s("group"));
        g.protocol_type = s("consumer");
        if v >= 4 {
            g.group_state = s("Stable");
        }
        let mut r = kp::ListGroupsResponse::default();
        r.groups = vec![g];
        push(16, v, enc(&r, v));
    }
    for v in [0i16, 2] {
        let mut d = kp::delete_groups_response::DeletableGroupResult::default();
        d.group_id = GroupId(s("g"));
        d.error_code = 68;
        let mut r = kp::DeleteGroupsResponse::default();
        r.results = vec![d];
        push(42, v, enc(&r, v));
    }
    {
        let mut p = kp::offset_delete_response::OffsetDeleteResponsePartition::default();
        p.partition_index = 1;
        p.error_code = 86;
        let mut t = kp::offset_delete_response::OffsetDeleteResponseTopic::default();
        t.name = TopicName(s("t"));
        t.partitions = vec![p];
        let mut r = kp::OffsetDeleteResponse::default();
        r.topics = vec![t];
        push(47, 0, enc(&r, 0));
    }
    out
}

fn key_index(api_key: i16) -> u8 {
    KEYS.iter()
        .position(|&k| k == api_key)
        .expect("seed for an API the target covers") as u8
}

fn version_sel(api_key: i16, version: i16) -> u8 {
    (version - range(api_key).0) as u8
}

fn frame_of(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut inner = correlation_id.to_be_bytes().to_vec();
    if response_header_flexible_by_key(api_key, version) {
        inner.push(0); // no tagged fields
    }
    inner.extend_from_slice(body);
    let mut out = (inner.len() as i32).to_be_bytes().to_vec();
    out.extend(inner);
    out
}

fn main() {
    let dir = std::env::args().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds"),
        PathBuf::from,
    );
    let mixed = records_seeds(&dir);

    // Fetch responses at several versions, carrying real batches.
    let mut blob = data_batch(0, Compression::Lz4, 3);
    blob.extend(txn_blob());
    let mut fetch_bodies = Vec::new();
    for v in [4i16, 5, 7, 11, 12, 13, 16] {
        let records = if v == 11 { &mixed[..] } else { &blob[..] };
        if let Some(body) = enc(&fetch(v, records), v) {
            let mut seed = vec![(v - 4) as u8];
            seed.extend(&body);
            write(&dir, "fetch_response", &format!("fetch_v{v}"), &seed);
            fetch_bodies.push((v, body));
        }
    }

    // Other responses: [api index, version - min] + body.
    let bodies = response_bodies();
    for (key, v, body) in &bodies {
        let mut seed = vec![key_index(*key), version_sel(*key, *v)];
        seed.extend(body);
        write(&dir, "responses", &format!("key{key}_v{v}"), &seed);
    }

    // Frames: [max frame selector (6 = 1 MiB), api index, version] + frames.
    let mut framed = Vec::new();
    for (key, v, body) in bodies.iter().filter(|(k, _, _)| [18, 3, 11, 9].contains(k)) {
        let f = frame_of(*key, *v, 7, body);
        let mut seed = vec![6, key_index(*key), version_sel(*key, *v)];
        seed.extend(&f);
        // Two frames back to back, then a truncated third.
        seed.extend(&f);
        seed.extend(&f[..f.len() / 2]);
        write(&dir, "frame", &format!("key{key}_v{v}"), &seed);
        framed.push(f);
    }
    if let Some((v, body)) = fetch_bodies.iter().find(|(v, _)| *v == 12) {
        let mut seed = vec![6, key_index(1), version_sel(1, *v)];
        seed.extend(frame_of(1, *v, 1, body));
        write(&dir, "frame", "fetch_v12", &seed);
    }
    let mut short = vec![6, key_index(18), 0];
    short.extend_from_slice(framed.first().map_or(&[][..], |f| &f[..3]));
    write(&dir, "frame", "truncated_prefix", &short);
    write(
        &dir,
        "frame",
        "negative_size",
        &[6, 0, 0, 0xff, 0xff, 0xff, 0xfe, 0, 0],
    );
    write(
        &dir,
        "frame",
        "over_max",
        &[4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 7],
    );

    // Structured targets: the input is consumed by `arbitrary`; a few deterministic
    // pseudo-random inputs of different sizes and shapes.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for target in ["record_roundtrip", "txn_filter"] {
        for (i, len) in [16usize, 64, 256, 1024].into_iter().enumerate() {
            let bytes: Vec<u8> = (0..len).map(|_| (next() >> 24) as u8).collect();
            write(&dir, target, &format!("random_{i}_{len}"), &bytes);
        }
        // Small values: small counts, mostly "first choice" branches.
        let bytes: Vec<u8> = (0..512).map(|i| (i % 7) as u8).collect();
        write(&dir, target, "small_values", &bytes);
    }
    consumer_protocol_seeds(&dir);
    sasl_seeds(&dir);
    println!("seeds written under {}", dir.display());
}

/// Subscriptions (every version, Java's layout), assignments, and assignor inputs:
/// [0] + subscription, [1] + assignment, [strategy >= 2, seed, members] + chunks.
fn consumer_protocol_seeds(dir: &Path) {
    use weir_coordinator::{Assignment, AssignmentStrategy, Subscription, TopicPartition};
    let t = "consumer_protocol";
    let tp = |topic: &str, p: i32| TopicPartition::new(topic, p);
    let sub = |topics: &[&str], owned: Vec<TopicPartition>| Subscription {
        topics: topics.iter().map(|t| t.to_string()).collect(),
        user_data: None,
        owned_partitions: owned,
        generation_id: 4,
        rack_id: Some("rack-a".into()),
    };
    let full = sub(
        &["orders", "payments"],
        vec![tp("orders", 0), tp("payments", 2)],
    );
    for v in 0..=3 {
        let mut seed = vec![0u8];
        seed.extend(full.encode(v));
        write(dir, t, &format!("subscription_v{v}"), &seed);
    }
    // The sticky assignor's user data (previous assignment and generation).
    let sticky = Subscription {
        user_data: AssignmentStrategy::Sticky.user_data(&[tp("orders", 1)], 3),
        ..sub(&["orders"], vec![])
    };
    let mut seed = vec![0u8];
    seed.extend(sticky.encode(0));
    write(dir, t, "subscription_sticky_user_data", &seed);
    let a = Assignment {
        partitions: vec![tp("orders", 0), tp("orders", 3), tp("payments", 1)],
        user_data: Some(vec![1, 2, 3]),
    };
    let mut seed = vec![1u8];
    seed.extend(a.encode(3));
    write(dir, t, "assignment", &seed);
    write(dir, t, "assignment_empty", &[1]);
    // One long name, many partitions: a copy of the name per partition entry would
    // take hundreds of times the input (the heap check fails on it).
    let long = "x".repeat(2000);
    let many = Assignment {
        partitions: (0..5000).map(|p| tp(&long, p)).collect(),
        user_data: None,
    };
    let mut seed = vec![1u8];
    seed.extend(many.encode(3));
    write(dir, t, "assignment_long_name_many_partitions", &seed);
    let members = [
        sub(
            &["orders", "payments"],
            vec![tp("orders", 0), tp("orders", 1)],
        ),
        sub(&["orders"], vec![tp("payments", 0)]),
        sticky.clone(),
    ];
    for strategy in 0u8..4 {
        let mut seed = vec![2 + strategy, 0x2a, 2];
        for m in &members {
            let b = m.encode(3);
            seed.extend((b.len() as u16).to_be_bytes());
            seed.extend(b);
        }
        write(dir, t, &format!("assign_{strategy}"), &seed);
    }
}

/// SCRAM and OAUTHBEARER exchanges: the client nonce is `weir_fuzz::sasl::NONCE`, so a server-first
/// that extends it reaches the proof and the server-final check.
fn sasl_seeds(dir: &Path) {
    let t = "sasl";
    let n = weir_fuzz::sasl::NONCE;
    let seed = |name: &str, mech: u8, first: &str, fin: Option<&str>| {
        let mut s = vec![mech];
        s.extend_from_slice(first.as_bytes());
        if let Some(f) = fin {
            s.push(0);
            s.extend_from_slice(f.as_bytes());
        }
        write(dir, t, name, &s);
    };
    // RFC 7677's example: verifies to the end.
    let first = format!("r={n}%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
    seed(
        "rfc7677_exchange",
        0,
        &first,
        Some("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
    );
    seed(
        "sha256_wrong_signature",
        0,
        &first,
        Some("v=rmF9pqV8S7suAoZWja4dJRkFsKQ="),
    );
    seed(
        "sha512_proof_then_error",
        1,
        &first,
        Some("e=invalid-proof"),
    );
    seed(
        "sha256_extension_after_i",
        0,
        &format!("{first},x=1"),
        Some("v=AAAA"),
    );
    seed("mandatory_extension", 0, &format!("m=x,{first}"), None);
    seed(
        "too_many_iterations",
        1,
        &format!("r={n}x,s=QSXCR+Q6sek8bf92,i=99999999"),
        None,
    );
    seed(
        "nonce_not_extended",
        0,
        &format!("r={n},s=QSXCR+Q6sek8bf92,i=4096"),
        None,
    );
    seed("base64_only", 0, "QSXCR+Q6sek8bf92", None);
    // OAUTHBEARER (byte 0 = 2): accepted at once, or rejected with Kafka's JSON and
    // then answered after the client's 0x01.
    seed("oauth_accepted", 2, "", None);
    seed(
        "oauth_rejected",
        2,
        r#"{"status":"invalid_token","scope":"","openid-configuration":""}"#,
        Some(""),
    );
}
