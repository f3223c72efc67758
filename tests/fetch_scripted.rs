//! weir-fetch against the scripted fake broker: the faults a real broker will not
//! produce on demand (offsets out of range, leader moves, fetch-session errors, real
//! aborted-transaction lists, dropped connections, silent brokers, corrupt batches,
//! backpressure from a small ring).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseKind};
use support::scripted::{Action, ScriptedBroker};
use weir_fetch::{Consumer, FetchConfig, FetchError, OffsetReset, OwnedRecord, StartAt};
use weir_protocol::RecordBatchBuilder;
use weir_protocol::control::ControlKind;

const T: &str = "events";
const DEADLINE: Duration = Duration::from_secs(30);

fn config(bootstrap: &str) -> FetchConfig {
    FetchConfig {
        fetch_max_bytes: 1 << 20,
        ring_bytes: 4 << 20,
        fetch_max_wait_ms: 50,
        request_timeout_ms: 2000,
        ..FetchConfig::new(bootstrap)
    }
}

fn batch(base: i64, n: usize) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(base);
    for i in 0..n {
        let v = format!("value-{}", base + i as i64);
        b.append(
            1_700_000_000_000 + base + i as i64,
            Some(b"key"),
            Some(v.as_bytes()),
        );
    }
    b.build()
}

/// `n` batches of `per` records each on partition `p`, from offset `from`.
fn fill(b: &ScriptedBroker, p: i32, from: i64, n: usize, per: usize) -> i64 {
    let mut off = from;
    for _ in 0..n {
        b.append_batch(T, p, batch(off, per));
        off += per as i64;
    }
    off
}

/// Poll until `want` records have arrived (or fail after DEADLINE).
fn consume(c: &mut Consumer, want: usize) -> Vec<OwnedRecord> {
    let start = Instant::now();
    let mut got = Vec::new();
    while got.len() < want {
        assert!(
            start.elapsed() < DEADLINE,
            "timed out with {} of {want} records; metrics {:?}",
            got.len(),
            c.metrics()
        );
        if let Err(e) = c.poll(Duration::from_millis(100), |r| got.push(r.to_owned())) {
            panic!("poll failed: {e}");
        }
    }
    got
}

/// Keep polling (delivering nothing new) until `n` Fetch requests have arrived.
fn fetches_after_polling(
    c: &mut Consumer,
    b: &ScriptedBroker,
    n: usize,
) -> Vec<support::scripted::Received> {
    let start = Instant::now();
    loop {
        let f = b.requests_of(ApiKey::Fetch);
        if f.len() >= n {
            return f;
        }
        assert!(start.elapsed() < DEADLINE, "only {} fetches", f.len());
        c.poll(Duration::from_millis(50), |_| {}).unwrap();
    }
}

fn offsets(recs: &[OwnedRecord]) -> Vec<i64> {
    recs.iter().map(|r| r.offset).collect()
}

fn poll_error(c: &mut Consumer) -> FetchError {
    let start = Instant::now();
    loop {
        match c.poll(Duration::from_millis(100), |_| {}) {
            Err(e) => return e,
            Ok(_) => assert!(start.elapsed() < DEADLINE, "no error reported"),
        }
    }
}

#[test]
fn reads_every_record_in_order_with_values_intact() {
    let b = ScriptedBroker::start();
    b.add_topic(T, 2);
    let end0 = fill(&b, 0, 0, 20, 5);
    let end1 = fill(&b, 1, 0, 7, 3);
    let mut c = Consumer::new(config(&b.bootstrap())).unwrap();
    c.assign(T, 0, StartAt::Earliest);
    c.assign(T, 1, StartAt::Earliest);
    let got = consume(&mut c, (end0 + end1) as usize);
    for p in 0..2 {
        let mine: Vec<&OwnedRecord> = got.iter().filter(|r| r.partition == p).collect();
        let want: Vec<i64> = (0..if p == 0 { end0 } else { end1 }).collect();
        assert_eq!(mine.iter().map(|r| r.offset).collect::<Vec<_>>(), want);
        for r in mine {
            assert_eq!(
                r.value.as_deref(),
                Some(format!("value-{}", r.offset).as_bytes())
            );
            assert_eq!(r.key.as_deref(), Some(&b"key"[..]));
            assert_eq!(r.timestamp, 1_700_000_000_000 + r.offset);
        }
    }
    assert_eq!(c.position(T, 0), Some(end0));
    assert_eq!(c.high_watermark(T, 1), Some(end1));
    assert_eq!(c.lag(T, 0), Some(0));
    // ApiVersions came first on the connection.
    assert_eq!(b.requests()[0].api_key(), ApiKey::ApiVersions as i16);
}

#[test]
fn offset_out_of_range_with_reset_none_names_the_partition_and_offset() {
    let b = ScriptedBroker::start();
    b.add_topic(T, 1);
    fill(&b, 0, 0, 2, 5);
    let mut c = Consumer::new(FetchConfig {
        auto_offset_reset: OffsetReset::None,
        ..config(&b.bootstrap())
    })
    .unwrap();
    c.assign(T, 0, StartAt::Offset(500));
    let e = poll_error(&mut c);
    assert!(
        matches!(
            &e,
            FetchError::OffsetOutOfRange {
                partition: 0,
                offset: 500,
                ..
            }
        ),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(msg.contains("events-0") && msg.contains("500") && msg.contains("auto.offset.reset"));
    // Seeking to a valid offset and resuming recovers.
    c.seek(T, 0, StartAt::Offset(3)).unwrap();
    c.resume(T, 0).unwrap();
    assert_eq!(offsets(&consume(&mut c, 7)), (3..10).collect::<Vec<_>>());
}

#[test]
fn offset_out_of_range_resets_to_earliest_or_latest() {
    let b = ScriptedBroker::start();
    b.add_topic(T, 2);
    b.set_log_start_offset(T, 0, 10);
    fill(&b, 0, 10, 2, 5);
    fill(&b, 1, 0, 2, 5);
    let mut c = Consumer::new(FetchConfig {
        auto_offset_reset: OffsetReset::Earliest,
        ..config(&b.bootstrap())
    })
    .unwrap();
    c.assign(T, 0, StartAt::Offset(3)); // below the log start
    assert_eq!(offsets(&consume(&mut c, 10)), (10..20).collect::<Vec<_>>());

    let mut c = Consumer::new(FetchConfig {
        auto_offset_reset: OffsetReset::Latest,
        ..config(&b.bootstrap())
    })
    .unwrap();
    c.assign(T, 1, StartAt::Offset(99));
    let start = Instant::now();
    while c.position(T, 1) != Some(10) {
        assert!(start.elapsed() < DEADLINE, "no reset to latest");
        c.poll(Duration::from_millis(50), |_| panic!("nothing to deliver"))
            .unwrap();
    }
    fill(&b, 1, 10, 1, 2);
    assert_eq!(offsets(&consume(&mut c, 2)), vec![10, 11]);
}

#[test]
fn a_leader_move_is_followed_through_a_metadata_refresh() {
    let b = ScriptedBroker::with_nodes(&[0, 1]);
    b.add_topic(T, 1);
    let end = fill(&b, 0, 0, 4, 5);
    let mut c = Consumer::new(config(&b.bootstrap())).unwrap();
    c.assign(T, 0, StartAt::Earliest);
    assert_eq!(consume(&mut c, end as usize).len(), end as usize);
    let metadata_before = b.requests_of(ApiKey::Metadata).len();
    b.set_leader(T, 0, 1);
    let end2 = fill(&b, 0, end, 2, 5);
    let got = consume(&mut c, (end2 - end) as usize);
    assert_eq!(offsets(&got), (end..end2).collect::<Vec<_>>());
    // The NOT_LEADER answer also asked for fresh metadata (spaced by
    // retry.backoff.ms after the previous refresh).
    let start = Instant::now();
    while b.requests_of(ApiKey::Metadata).len() <= metadata_before {
        assert!(
            start.elapsed() < DEADLINE,
            "no metadata refresh after NOT_LEADER"
        );
        c.poll(Duration::from_millis(20), |_| {}).unwrap();
    }
    assert!(
        b.requests_of(ApiKey::Fetch).iter().any(|r| r.node_id == 1),
        "never fetched from the new leader"
    );
}

#[test]
fn read_committed_drops_aborted_transactions_from_the_broker_list() {
    let b = ScriptedBroker::start();
    b.add_topic(T, 1);
    let mut aborted = RecordBatchBuilder::new(0)
        .producer(42, 0, 0)
        .transactional(true);
    aborted
        .append(1, None, Some(b"aborted-0"))
        .append(1, None, Some(b"aborted-1"));
    b.append_batch(T, 0, aborted.build());
    b.append_batch(
        T,
        0,
        RecordBatchBuilder::control_marker(2, 42, 0, ControlKind::Abort, 0, 1),
    );
    b.append_batch(T, 0, batch(3, 2));
    let mut committed = RecordBatchBuilder::new(5)
        .producer(42, 0, 2)
        .transactional(true);
    committed.append(1, None, Some(b"committed"));
    b.append_batch(T, 0, committed.build());
    b.append_batch(
        T,
        0,
        RecordBatchBuilder::control_marker(6, 42, 0, ControlKind::Commit, 0, 1),
    );
    b.set_aborted(T, 0, vec![(42, 0)]);

    let mut c = Consumer::new(FetchConfig {
        isolation_level: weir_fetch::IsolationLevel::ReadCommitted,
        ..config(&b.bootstrap())
    })
    .unwrap();
    c.assign(T, 0, StartAt::Earliest);
    let got = consume(&mut c, 3);
    assert_eq!(offsets(&got), vec![3, 4, 5]);
    // The position steps over the final commit marker.
    let start = Instant::now();
    while c.position(T, 0) != Some(7) {
        assert!(
            start.elapsed() < DEADLINE,
            "position {:?}",
            c.position(T, 0)
        );
        c.poll(Duration::from_millis(50), |r| {
            panic!("unexpected {:?}", r.offset())
        })
        .unwrap();
    }
    assert_eq!(c.metrics().aborted_batches, 1);
    // The request said read_committed.
    let f = b.requests_of(ApiKey::Fetch);
    assert!(
        f.iter()
            .all(|r| r.fetch().is_some_and(|f| f.isolation_level == 1))
    );
}

#[test]
fn fetch_sessions_go_incremental_and_reset_on_session_errors() {
    let b = ScriptedBroker::start();
    b.add_topic(T, 2);
    fill(&b, 0, 0, 3, 2);
    fill(&b, 1, 0, 1, 2);
    // Grant session 77 on every answer (the default answer to an empty fetch is
    // delayed, so look inside the delay too).
    fn grant(a: Action) -> Action {
        match a {
            Action::Respond(ResponseKind::Fetch(mut r)) => {
                r.session_id = 77;
                Action::Respond(ResponseKind::Fetch(r))
            }
            Action::Delay(d, inner) => Action::Delay(d, Box::new(grant(*inner))),
            other => other,
        }
    }
    b.on(ApiKey::Fetch, |ctx, h, req| {
        ctx.default_action(h, req).map(grant)
    });
    let mut c = Consumer::new(config(&b.bootstrap())).unwrap();
    c.assign(T, 0, StartAt::Earliest);
    c.assign(T, 1, StartAt::Earliest);
    consume(&mut c, 8);
    let fetches = fetches_after_polling(&mut c, &b, 4);
    let f: Vec<_> = fetches.iter().filter_map(|r| r.fetch().cloned()).collect();
    assert_eq!(
        (f[0].session_id, f[0].session_epoch),
        (0, 0),
        "full fetch asks for a session"
    );
    assert_eq!(
        f[0].topics
            .iter()
            .map(|t| t.partitions.len())
            .sum::<usize>(),
        2
    );
    assert_eq!((f[1].session_id, f[1].session_epoch), (77, 1));
    assert_eq!((f[2].session_id, f[2].session_epoch), (77, 2));
    // Incremental requests restate only partitions whose fetch offset moved: after
    // f[1] nothing moved (both partitions were at their end), so f[2] names none.
    let restated = |x: &kafka_protocol::messages::FetchRequest| {
        x.topics.iter().map(|t| t.partitions.len()).sum::<usize>()
    };
    assert_eq!(restated(&f[1]), 2);
    assert_eq!(restated(&f[2]), 0);

    // Pausing a partition forgets it in the session.
    c.pause(T, 1).unwrap();
    let n = b.requests_of(ApiKey::Fetch).len();
    let start = Instant::now();
    let forgot = loop {
        c.poll(Duration::from_millis(50), |_| {}).unwrap();
        let all = b.requests_of(ApiKey::Fetch);
        if let Some(r) = all[n..]
            .iter()
            .filter_map(|r| r.fetch())
            .find(|f| !f.forgotten_topics_data.is_empty())
        {
            break r.clone();
        }
        assert!(
            start.elapsed() < DEADLINE,
            "partition 1 was never forgotten"
        );
    };
    assert_eq!(forgot.forgotten_topics_data[0].partitions, vec![1]);
    c.resume(T, 1).unwrap();

    // A session error: the next fetch is a full one again.
    b.clear_handler(ApiKey::Fetch);
    b.push(
        ApiKey::Fetch,
        Action::Respond(ResponseKind::Fetch(
            FetchResponse::default().with_error_code(70),
        )),
    );
    let n = b.requests_of(ApiKey::Fetch).len();
    let start = Instant::now();
    loop {
        c.poll(Duration::from_millis(50), |_| {}).unwrap();
        let all = b.requests_of(ApiKey::Fetch);
        let after: Vec<_> = all[n..].iter().filter_map(|r| r.fetch()).collect();
        if after.len() >= 2 {
            assert_eq!(
                after[0].session_id, 77,
                "the failing request was incremental"
            );
            assert_eq!((after[1].session_id, after[1].session_epoch), (0, 0));
            assert_eq!(
                after[1]
                    .topics
                    .iter()
                    .map(|t| t.partitions.len())
                    .sum::<usize>(),
                2
            );
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no fetch after the session error"
        );
    }
    assert!(c.metrics().session_resets >= 1);
}

#[test]
fn a_broker_answering_session_id_zero_gets_full_fetches() {
    let b = ScriptedBroker::start();
    b.add_topic(T, 1);
    fill(&b, 0, 0, 3, 2);
    let mut c = Consumer::new(config(&b.bootstrap())).unwrap();
    c.assign(T, 0, StartAt::Earliest);
    consume(&mut c, 6);
    let f = fetches_after_polling(&mut c, &b, 3);
    for r in f.iter().filter_map(|r| r.fetch()) {
        assert_eq!((r.session_id, r.session_epoch), (0, 0));
        assert_eq!(r.topics.len(), 1);
    }
}

#[test]
fn a_dropped_connection_and_a_silent_broker_are_survived() {
    let b = ScriptedBroker::start();
    b.add_topic(T, 1);
    let end = fill(&b, 0, 0, 10, 3);
    b.push(ApiKey::Fetch, Action::CloseConnection);
    let mut c = Consumer::new(FetchConfig {
        request_timeout_ms: 500,
        ..config(&b.bootstrap())
    })
    .unwrap();
    c.assign(T, 0, StartAt::Earliest);
    assert_eq!(
        offsets(&consume(&mut c, end as usize)),
        (0..end).collect::<Vec<_>>()
    );
    assert!(c.metrics().disconnects >= 1);
    // A fetch that is never answered times out after request.timeout.ms (+ the
    // fetch wait) and the connection is replaced.
    b.push(ApiKey::Fetch, Action::NoResponse);
    let end2 = fill(&b, 0, end, 2, 3);
    let got = consume(&mut c, (end2 - end) as usize);
    assert_eq!(offsets(&got), (end..end2).collect::<Vec<_>>());
    assert!(c.metrics().disconnects >= 2);
}

#[test]
fn a_corrupt_batch_pauses_the_partition_with_an_error_at_that_offset() {
    let b = ScriptedBroker::start();
    b.add_topic(T, 1);
    b.append_batch(T, 0, batch(0, 3));
    let mut bad = batch(3, 3);
    let last = bad.len() - 1;
    bad[last] ^= 0x55;
    b.append_batch(T, 0, bad);
    b.append_batch(T, 0, batch(6, 3));
    let mut c = Consumer::new(config(&b.bootstrap())).unwrap();
    c.assign(T, 0, StartAt::Earliest);
    let mut got = Vec::new();
    let start = Instant::now();
    let err = loop {
        match c.poll(Duration::from_millis(100), |r| got.push(r.offset())) {
            Err(e) => break e,
            Ok(_) => assert!(start.elapsed() < DEADLINE, "no CRC error"),
        }
    };
    assert!(
        matches!(err, FetchError::Corrupt(ref e) if e.offset == 3),
        "{err:?}"
    );
    assert!(err.to_string().contains("events-0 at offset 3"), "{err}");
    assert_eq!(got, vec![0, 1, 2]);
    assert_eq!(c.position(T, 0), Some(3));
    // Skipping the batch is the application's decision.
    c.seek(T, 0, StartAt::Offset(6)).unwrap();
    c.resume(T, 0).unwrap();
    assert_eq!(offsets(&consume(&mut c, 3)), vec![6, 7, 8]);
}

#[test]
fn a_small_ring_applies_backpressure_without_losing_records() {
    let b = ScriptedBroker::start();
    b.add_topic(T, 2);
    let value = vec![7u8; 4000];
    for p in 0..2 {
        for i in 0..100i64 {
            let mut bb = RecordBatchBuilder::new(i * 4);
            for _ in 0..4 {
                bb.append(1, None, Some(&value));
            }
            b.append_batch(T, p, bb.build());
        }
    }
    let cfg = FetchConfig {
        fetch_max_bytes: 64 << 10,
        max_partition_fetch_bytes: 32 << 10,
        ring_bytes: (64 << 10) + weir_fetch::config::RESPONSE_OVERHEAD,
        ..config(&b.bootstrap())
    };
    let mut c = Consumer::new(cfg).unwrap();
    c.assign(T, 0, StartAt::Earliest);
    c.assign(T, 1, StartAt::Earliest);
    let seen: Arc<Mutex<Vec<(i32, i64)>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    {
        let seen = Arc::clone(&seen);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let start = Instant::now();
            while seen.lock().unwrap().len() < 800 && start.elapsed() < DEADLINE {
                std::thread::sleep(Duration::from_millis(10));
            }
            stop.store(true, Ordering::Release);
        });
    }
    c.run_workers(
        2,
        false,
        |_| {
            let seen = Arc::clone(&seen);
            move |r: &weir_fetch::ConsumerRecord<'_>| {
                // A slow handler: the ring fills and reading stops.
                std::thread::sleep(Duration::from_micros(300));
                seen.lock().unwrap().push((r.partition, r.offset()));
            }
        },
        &stop,
    )
    .unwrap();
    let seen = seen.lock().unwrap().clone();
    for p in 0..2 {
        let mine: Vec<i64> = seen
            .iter()
            .filter(|(q, _)| *q == p)
            .map(|(_, o)| *o)
            .collect();
        assert_eq!(mine, (0..400).collect::<Vec<_>>(), "partition {p}");
    }
    let m = c.metrics();
    assert!(m.ring_stalls > 0, "the ring never filled: {m:?}");
    let _ = Bytes::new();
}

#[test]
fn a_side_connection_carries_coordinator_requests_and_reports_failures() {
    use kafka_protocol::messages::FindCoordinatorRequest;
    use kafka_protocol::protocol::StrBytes;
    use weir_fetch::SideEvent;
    use weir_protocol::messages::ResponseBody;
    use weir_protocol::messages::group::FindCoordinatorResponse;

    let b = ScriptedBroker::start();
    b.add_topic(T, 1);
    fill(&b, 0, 0, 1, 2);
    let mut c = Consumer::new(config(&b.bootstrap())).unwrap();
    c.assign(T, 0, StartAt::Earliest);
    let addr = b.addr(0);
    let side = c.reactor().open_side("127.0.0.1", addr.port());
    let wait = |c: &mut Consumer, what: &str| -> SideEvent {
        let start = Instant::now();
        loop {
            c.poll(Duration::from_millis(20), |_| {}).unwrap();
            if let Some(e) = c.reactor().take_side_events().next() {
                return e;
            }
            assert!(start.elapsed() < DEADLINE, "no side event ({what})");
        }
    };
    assert!(matches!(wait(&mut c, "ready"), SideEvent::Ready { side: s } if s == side));
    let v = c
        .reactor()
        .side_versions(side)
        .unwrap()
        .negotiate::<FindCoordinatorRequest, FindCoordinatorResponse<'static>>()
        .unwrap();
    let req = if v >= 4 {
        FindCoordinatorRequest::default()
            .with_coordinator_keys(vec![StrBytes::from_static_str("g")])
    } else {
        FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g"))
    };
    let corr = c.reactor().side_send(side, v, &req).unwrap();
    match wait(&mut c, "response") {
        SideEvent::Response {
            side: s,
            req: r,
            body_offset,
            frame,
        } => {
            assert_eq!(s, side);
            assert_eq!(r.correlation_id, corr);
            let resp = FindCoordinatorResponse::decode_body(&frame[body_offset..], v).unwrap();
            assert!(!resp.coordinators.is_empty());
        }
        other => panic!("{other:?}"),
    }
    // A request the broker never answers fails when the connection dies.
    b.push(ApiKey::FindCoordinator, Action::NoResponse);
    let corr = c.reactor().side_send(side, v, &req).unwrap();
    b.wait_for(ApiKey::FindCoordinator, 2, DEADLINE);
    b.close_connections(0);
    match wait(&mut c, "closed") {
        SideEvent::Closed { side: s, failed } => {
            assert_eq!(s, side);
            assert_eq!(
                failed.iter().map(|r| r.correlation_id).collect::<Vec<_>>(),
                vec![corr]
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        wait(&mut c, "ready again"),
        SideEvent::Ready { .. }
    ));
}

#[test]
fn start_at_latest_and_at_a_timestamp() {
    use kafka_protocol::messages::RequestKind;
    let b = ScriptedBroker::start();
    b.add_topic(T, 3);
    for p in 0..3 {
        fill(&b, p, 0, 4, 2);
    }
    // Timestamp 1234 maps to offset 5; any later timestamp has no record (-1).
    b.on(ApiKey::ListOffsets, |ctx, h, req| {
        let RequestKind::ListOffsets(lr) = req else {
            return None;
        };
        let asked: Vec<(i32, i64)> = lr
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| (p.partition_index, p.timestamp))
            .collect();
        match ctx.default_action(h, req)? {
            Action::Respond(ResponseKind::ListOffsets(mut r)) => {
                for p in r.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                    let ts = asked
                        .iter()
                        .find(|(i, _)| *i == p.partition_index)
                        .map_or(-1, |(_, ts)| *ts);
                    if ts >= 0 {
                        p.offset = if ts == 1234 { 5 } else { -1 };
                    }
                }
                Some(Action::Respond(ResponseKind::ListOffsets(r)))
            }
            other => Some(other),
        }
    });
    let mut c = Consumer::new(config(&b.bootstrap())).unwrap();
    c.assign(T, 0, StartAt::Latest);
    c.assign(T, 1, StartAt::Timestamp(1234));
    c.assign(T, 2, StartAt::Timestamp(99_999));
    let got = consume(&mut c, 3);
    assert_eq!(
        got.iter()
            .map(|r| (r.partition, r.offset))
            .collect::<Vec<_>>(),
        vec![(1, 5), (1, 6), (1, 7)]
    );
    let start = Instant::now();
    while c.position(T, 0) != Some(8) || c.position(T, 2) != Some(8) {
        assert!(
            start.elapsed() < DEADLINE,
            "latest/timestamp fallback not resolved"
        );
        c.poll(Duration::from_millis(20), |r| {
            panic!("unexpected {}", r.offset())
        })
        .unwrap();
    }
    fill(&b, 0, 8, 1, 1);
    fill(&b, 2, 8, 1, 1);
    let got = consume(&mut c, 2);
    let mut seen: Vec<(i32, i64)> = got.iter().map(|r| (r.partition, r.offset)).collect();
    seen.sort_unstable();
    assert_eq!(seen, vec![(0, 8), (2, 8)]);
}

#[test]
fn a_batch_larger_than_max_partition_fetch_bytes_is_not_a_hang() {
    use kafka_protocol::messages::RequestKind;
    let b = ScriptedBroker::start();
    b.add_topic(T, 1);
    let mut big = RecordBatchBuilder::new(0);
    for _ in 0..3 {
        big.append(1, None, Some(&[1u8; 3000]));
    }
    let big = big.build();
    let len = big.len();
    b.append_batch(T, 0, big);
    // A broker that cuts the answer at partition_max_bytes (as pre-v3 brokers did),
    // so the only batch never arrives whole at the configured size.
    b.on(ApiKey::Fetch, move |ctx, h, req| {
        let RequestKind::Fetch(fr) = req else {
            return None;
        };
        let limit = fr.topics[0].partitions[0].partition_max_bytes as usize;
        match ctx.default_action(h, req)? {
            Action::Respond(ResponseKind::Fetch(mut r)) => {
                for t in &mut r.responses {
                    for p in &mut t.partitions {
                        if let Some(rec) = &p.records
                            && rec.len() > limit
                        {
                            p.records = Some(rec.slice(..limit));
                        }
                    }
                }
                Some(Action::Respond(ResponseKind::Fetch(r)))
            }
            other => Some(other),
        }
    });
    let mut c = Consumer::new(FetchConfig {
        max_partition_fetch_bytes: 1024,
        ..config(&b.bootstrap())
    })
    .unwrap();
    c.assign(T, 0, StartAt::Earliest);
    assert_eq!(offsets(&consume(&mut c, 3)), vec![0, 1, 2]);
    let sizes: Vec<i32> = b
        .requests_of(ApiKey::Fetch)
        .iter()
        .filter_map(|r| r.fetch())
        .flat_map(|f| f.topics.iter().flat_map(|t| t.partitions.iter()))
        .map(|p| p.partition_max_bytes)
        .collect();
    assert_eq!(sizes[0], 1024);
    assert!(sizes.iter().any(|&s| s as usize >= len), "{sizes:?}");
}

#[test]
fn a_paused_partition_does_not_stall_the_others_and_resumes_without_gaps() {
    let b = ScriptedBroker::start();
    b.add_topic(T, 2);
    let value = vec![3u8; 2000];
    for p in 0..2 {
        for i in 0..60i64 {
            let mut bb = RecordBatchBuilder::new(i * 4);
            for _ in 0..4 {
                bb.append(1, None, Some(&value));
            }
            b.append_batch(T, p, bb.build());
        }
    }
    let mut c = Consumer::new(FetchConfig {
        fetch_max_bytes: 32 << 10,
        max_partition_fetch_bytes: 16 << 10,
        ring_bytes: (32 << 10) + weir_fetch::config::RESPONSE_OVERHEAD,
        ..config(&b.bootstrap())
    })
    .unwrap();
    c.assign(T, 0, StartAt::Earliest);
    c.assign(T, 1, StartAt::Earliest);
    let mut got: Vec<(i32, i64)> = Vec::new();
    while !got.iter().any(|(p, _)| *p == 0) {
        c.poll(Duration::from_millis(100), |r| {
            got.push((r.partition, r.offset()))
        })
        .unwrap();
    }
    c.pause(T, 0).unwrap();
    let paused_at = c.position(T, 0).unwrap();
    // Partition 1 is drained completely: many laps of the small ring.
    let start = Instant::now();
    while c.position(T, 1) != Some(240) {
        assert!(
            start.elapsed() < DEADLINE,
            "partition 1 stalled at {:?}",
            c.position(T, 1)
        );
        c.poll(Duration::from_millis(100), |r| {
            assert_eq!(r.partition, 1, "a paused partition delivered");
            got.push((r.partition, r.offset()));
        })
        .unwrap();
    }
    assert_eq!(c.position(T, 0), Some(paused_at));
    c.resume(T, 0).unwrap();
    while c.position(T, 0) != Some(240) {
        assert!(start.elapsed() < DEADLINE, "partition 0 did not resume");
        c.poll(Duration::from_millis(100), |r| {
            got.push((r.partition, r.offset()))
        })
        .unwrap();
    }
    for p in 0..2 {
        let mine: Vec<i64> = got
            .iter()
            .filter(|(q, _)| *q == p)
            .map(|(_, o)| *o)
            .collect();
        assert_eq!(mine, (0..240).collect::<Vec<_>>(), "partition {p}");
    }
}

#[test]
fn throttled_and_idle_fetches_do_not_busy_loop() {
    let b = ScriptedBroker::start();
    b.add_topic(T, 1);
    fill(&b, 0, 0, 1, 2);
    // Every answer asks the client to hold off for 300 ms.
    fn throttle(a: Action) -> Action {
        match a {
            Action::Respond(ResponseKind::Fetch(mut r)) => {
                r.throttle_time_ms = 300;
                Action::Respond(ResponseKind::Fetch(r))
            }
            Action::Delay(d, inner) => Action::Delay(d, Box::new(throttle(*inner))),
            other => other,
        }
    }
    b.on(ApiKey::Fetch, |ctx, h, req| {
        ctx.default_action(h, req).map(throttle)
    });
    let mut c = Consumer::new(config(&b.bootstrap())).unwrap();
    c.assign(T, 0, StartAt::Earliest);
    consume(&mut c, 2);
    let turns = c.metrics().reactor_turns;
    let fetches = b.requests_of(ApiKey::Fetch).len();
    // One long poll: the consumer waits out the throttle, fetches, waits again.
    let n = c.poll(Duration::from_millis(1500), |_| {}).unwrap();
    assert_eq!(n, 0);
    let turns = c.metrics().reactor_turns - turns;
    let fetched = b.requests_of(ApiKey::Fetch).len() - fetches;
    assert!(turns < 100, "{turns} reactor turns in 1.5 s: a busy loop");
    assert!(
        (1..=8).contains(&fetched),
        "{fetched} fetches in 1.5 s with a 300 ms throttle"
    );
}

#[test]
fn a_response_larger_than_the_ring_is_a_clear_error() {
    let b = ScriptedBroker::start();
    b.add_topic(T, 1);
    // Kafka returns the first batch whole even when it is larger than
    // fetch.max.bytes, so one huge batch can outgrow the ring.
    let mut big = RecordBatchBuilder::new(0);
    big.append(1, None, Some(&vec![9u8; 300 << 10]));
    b.append_batch(T, 0, big.build());
    let mut c = Consumer::new(FetchConfig {
        fetch_max_bytes: 64 << 10,
        max_partition_fetch_bytes: 64 << 10,
        ring_bytes: (64 << 10) + weir_fetch::config::RESPONSE_OVERHEAD,
        ..config(&b.bootstrap())
    })
    .unwrap();
    c.assign(T, 0, StartAt::Earliest);
    let e = poll_error(&mut c);
    assert!(matches!(e, FetchError::Ring(_)), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("weir.ring.bytes") && msg.contains("fetch.max.bytes"),
        "{msg}"
    );
}

#[test]
fn polling_with_a_zero_timeout_still_makes_progress() {
    let b = ScriptedBroker::start();
    b.add_topic(T, 1);
    fill(&b, 0, 0, 3, 2);
    let mut c = Consumer::new(config(&b.bootstrap())).unwrap();
    c.assign(T, 0, StartAt::Earliest);
    let mut got = Vec::new();
    let start = Instant::now();
    while got.len() < 6 {
        assert!(start.elapsed() < DEADLINE, "poll(0) never delivered");
        c.poll(Duration::ZERO, |r| got.push(r.offset())).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(got, (0..6).collect::<Vec<_>>());
}

#[test]
fn the_fetch_response_leader_hint_moves_a_partition_even_with_stale_metadata() {
    use kafka_protocol::messages::BrokerId;
    let b = ScriptedBroker::with_nodes(&[0, 1]);
    b.add_topic(T, 1);
    let end = fill(&b, 0, 0, 2, 5);
    // Metadata keeps naming node 0 at epoch 0, as a lagging broker would.
    b.on(ApiKey::Metadata, |ctx, h, req| {
        match ctx.default_action(h, req)? {
            Action::Respond(ResponseKind::Metadata(mut r)) => {
                for t in &mut r.topics {
                    for p in &mut t.partitions {
                        p.leader_id = BrokerId(0);
                        p.leader_epoch = 0;
                    }
                }
                Some(Action::Respond(ResponseKind::Metadata(r)))
            }
            other => Some(other),
        }
    });
    let mut c = Consumer::new(config(&b.bootstrap())).unwrap();
    c.assign(T, 0, StartAt::Earliest);
    assert_eq!(consume(&mut c, end as usize).len(), end as usize);
    b.set_leader(T, 0, 1);
    let end2 = fill(&b, 0, end, 2, 5);
    let got = consume(&mut c, (end2 - end) as usize);
    assert_eq!(offsets(&got), (end..end2).collect::<Vec<_>>());
    let from_1 = b
        .requests_of(ApiKey::Fetch)
        .iter()
        .filter(|r| r.node_id == 1)
        .count();
    assert!(from_1 > 0, "never fetched from the hinted leader");
}

#[test]
fn a_bootstrap_host_name_is_resolved() {
    let b = ScriptedBroker::start();
    b.add_topic(T, 1);
    fill(&b, 0, 0, 1, 3);
    // The scripted broker listens on 127.0.0.1 only. Where "localhost" also resolves
    // to ::1 first, that attempt is refused and the next one moves on to 127.0.0.1
    // (where it resolves to 127.0.0.1 alone, this only checks name resolution).
    let port = b.addr(0).port();
    let mut c = Consumer::new(config(&format!("localhost:{port}"))).unwrap();
    c.assign(T, 0, StartAt::Earliest);
    assert_eq!(offsets(&consume(&mut c, 3)), vec![0, 1, 2]);
}

#[test]
fn a_panicking_worker_handler_ends_run_workers_with_an_error() {
    let b = ScriptedBroker::start();
    b.add_topic(T, 1);
    fill(&b, 0, 0, 2, 3);
    let mut c = Consumer::new(config(&b.bootstrap())).unwrap();
    c.assign(T, 0, StartAt::Earliest);
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let r = c.run_workers(
        1,
        false,
        |_| {
            |r: &weir_fetch::ConsumerRecord<'_>| {
                assert!(r.offset() != 4, "handler failure on purpose");
            }
        },
        &stop,
    );
    assert!(r.is_err(), "run_workers kept going after its worker died");
    assert!(start.elapsed() < DEADLINE);
    assert!(r.unwrap_err().to_string().contains("panicked"));
}

#[test]
fn unassign_stops_a_partition_and_reassigning_resumes_it() {
    let b = ScriptedBroker::start();
    b.add_topic(T, 2);
    fill(&b, 0, 0, 2, 2);
    fill(&b, 1, 0, 2, 2);
    let mut c = Consumer::new(config(&b.bootstrap())).unwrap();
    c.assign(T, 0, StartAt::Earliest);
    c.assign(T, 1, StartAt::Earliest);
    consume(&mut c, 8);
    assert_eq!(c.unassign(T, 1).unwrap(), Some(4));
    assert!(c.unassign(T, 1).is_err(), "a second unassign is an error");
    assert!(c.position(T, 1).is_none());
    fill(&b, 0, 4, 1, 2);
    fill(&b, 1, 4, 1, 2);
    let got = consume(&mut c, 2);
    assert!(
        got.iter().all(|r| r.partition == 0),
        "an unassigned partition delivered"
    );
    // Nothing more from partition 1 while it is unassigned.
    let n = c
        .poll(Duration::from_millis(300), |r| {
            panic!("unexpected {}-{}", r.partition, r.offset())
        })
        .unwrap();
    assert_eq!(n, 0);
    c.assign(T, 1, StartAt::Offset(4));
    let got = consume(&mut c, 2);
    assert_eq!(
        got.iter()
            .map(|r| (r.partition, r.offset))
            .collect::<Vec<_>>(),
        vec![(1, 4), (1, 5)]
    );
}

/// max.poll.records: one poll hands out at most that many records; the rest of a
/// fetched batch comes with the next polls, in order, none lost or repeated, and the
/// position follows the records handed out. A corrupt batch behind the cut is
/// reported only after every record before it was delivered.
#[test]
fn max_poll_records_bounds_each_poll_and_loses_nothing() {
    let b = ScriptedBroker::start();
    b.add_topic(T, 1);
    b.append_batch(T, 0, batch(0, 10));
    b.append_batch(T, 0, batch(10, 10));
    let mut bad = batch(20, 3);
    let last = bad.len() - 1;
    bad[last] ^= 0x55;
    b.append_batch(T, 0, bad);
    let mut c = Consumer::new(FetchConfig {
        max_poll_records: 3,
        ..config(&b.bootstrap())
    })
    .unwrap();
    c.assign(T, 0, StartAt::Earliest);
    let mut got: Vec<i64> = Vec::new();
    let start = Instant::now();
    let err = loop {
        let mut this_poll = Vec::new();
        match c.poll(Duration::from_millis(100), |r| this_poll.push(r.offset())) {
            Err(e) => break e,
            Ok(n) => {
                assert_eq!(n, this_poll.len());
                assert!(n <= 3, "one poll handed out {n} records: {this_poll:?}");
                got.extend(&this_poll);
                if let Some(last) = this_poll.last() {
                    assert_eq!(c.position(T, 0), Some(last + 1), "after {this_poll:?}");
                }
                assert!(start.elapsed() < DEADLINE, "no CRC error; got {got:?}");
            }
        }
    };
    assert_eq!(
        got,
        (0..20).collect::<Vec<_>>(),
        "every record once, in order"
    );
    assert!(
        matches!(err, FetchError::Corrupt(ref e) if e.offset == 20),
        "{err:?}"
    );
    assert_eq!(c.position(T, 0), Some(20));
}

/// A good batch at 0..3 followed by one of the three header faults a Fetch response
/// can carry: the label, and the bytes served as 3..6.
fn bad_headers() -> Vec<(&'static str, Bytes)> {
    let with_len = |len: i32| {
        let mut v = Vec::new();
        v.extend_from_slice(&3i64.to_be_bytes());
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(&[0u8; 61]);
        Bytes::from(v)
    };
    let mut magic = batch(3, 3);
    magic[16] = 7;
    vec![
        ("negative length", with_len(-1)),
        ("length below any header", with_len(4)),
        ("unknown magic", Bytes::from(magic)),
    ]
}

#[test]
fn a_bad_batch_header_delivers_the_good_records_then_a_typed_error() {
    for (what, bytes) in bad_headers() {
        let b = ScriptedBroker::start();
        b.add_topic(T, 2);
        b.append_batch(T, 0, batch(0, 3));
        b.append_raw(T, 0, 3, 5, bytes);
        fill(&b, 1, 0, 2, 2);
        let mut c = Consumer::new(config(&b.bootstrap())).unwrap();
        c.assign(T, 0, StartAt::Earliest);
        c.assign(T, 1, StartAt::Earliest);
        let mut got = Vec::new();
        let start = Instant::now();
        let err = loop {
            match c.poll(Duration::from_millis(100), |r| {
                got.push((r.partition, r.offset()))
            }) {
                Err(e) => break e,
                Ok(_) => assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "{what}: no error in 10 s; delivered {got:?}"
                ),
            }
        };
        assert!(
            matches!(err, FetchError::Corrupt(ref e) if e.offset == 3 && e.partition == 0),
            "{what}: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("events-0 at offset 3"), "{what}: {msg}");
        let p0: Vec<i64> = got.iter().filter(|r| r.0 == 0).map(|r| r.1).collect();
        assert_eq!(p0, vec![0, 1, 2], "{what}");
        assert_eq!(c.position(T, 0), Some(3), "{what}");
        // The other partition is not held up, and skipping the batch is possible.
        consume_until(&mut c, |c| c.position(T, 1) == Some(4));
        c.seek(T, 0, StartAt::Offset(6)).unwrap();
        c.resume(T, 0).unwrap();
        fill(&b, 0, 6, 1, 2);
        assert_eq!(offsets(&consume(&mut c, 2)), vec![6, 7], "{what}");
    }
}

/// Poll (ignoring records) until `done` holds, for at most DEADLINE.
fn consume_until(c: &mut Consumer, done: impl Fn(&Consumer) -> bool) {
    let start = Instant::now();
    while !done(c) {
        assert!(start.elapsed() < DEADLINE, "condition not reached");
        c.poll(Duration::from_millis(50), |_| {}).unwrap();
    }
}

/// `weir consume -e` over a partition with a bad batch header: the good records are
/// printed, then it exits 1 naming the partition and offset (it used to wait forever).
#[test]
fn weir_consume_exits_1_naming_a_bad_batch() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let b = ScriptedBroker::start();
    b.add_topic(T, 1);
    b.append_batch(T, 0, batch(0, 3));
    let (_, bytes) = bad_headers().remove(0);
    b.append_raw(T, 0, 3, 5, bytes);
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["consume", "-b", &b.bootstrap(), "-t", T, "-p", "0"])
        .args(["-o", "beginning", "-e", "-q", "-f", "%o\n"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("weir consume -e did not end within 20 s of a bad batch header");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(1), "stdout {out:?} stderr {err:?}");
    assert_eq!(out, "0\n1\n2\n", "stderr {err:?}");
    assert!(err.contains("events-0 at offset 3"), "{err}");
}

/// Fetch requests so far that asked for `partition` at `offset`.
fn fetches_at(b: &ScriptedBroker, partition: i32, offset: i64) -> usize {
    b.requests_of(ApiKey::Fetch)
        .iter()
        .filter_map(|r| r.fetch())
        .filter(|f| {
            f.topics
                .iter()
                .flat_map(|t| t.partitions.iter())
                .any(|p| p.partition == partition && p.fetch_offset == offset)
        })
        .count()
}

/// Answers that move nothing (a truncated first batch smaller than the partition
/// limit, which Kafka never sends; batches wholly below the fetch offset) are retried
/// with backoff and, after a few in a row, end in a typed error; the other partition
/// keeps flowing. Today's code re-sent such a fetch at once, forever.
#[test]
fn a_fetch_that_makes_no_progress_backs_off_then_fails() {
    let whole = batch(0, 5);
    let cases: Vec<(&str, i64, Bytes)> = vec![
        (
            "truncated first batch",
            0,
            Bytes::copy_from_slice(&whole[..40]),
        ),
        (
            "batches wholly below the fetch offset",
            10,
            Bytes::from(whole.clone()),
        ),
    ];
    for (what, at, bytes) in cases {
        let b = ScriptedBroker::start();
        b.add_topic(T, 2);
        // Served as if it covered at..at+5, whatever its bytes say.
        b.append_raw(T, 0, at, at + 4, bytes);
        fill(&b, 1, 0, 2, 2);
        let mut c = Consumer::new(config(&b.bootstrap())).unwrap();
        c.assign(T, 0, StartAt::Offset(at));
        c.assign(T, 1, StartAt::Earliest);
        let mut p1 = 0usize;
        let start = Instant::now();
        let mut in_first_second = None;
        let err = loop {
            if in_first_second.is_none() && start.elapsed() >= Duration::from_secs(1) {
                in_first_second = Some(fetches_at(&b, 0, at));
            }
            match c.poll(Duration::from_millis(50), |r| {
                assert_eq!(r.partition, 1, "{what}: a record from partition 0");
                p1 += 1;
            }) {
                Err(e) => break e,
                Ok(_) => assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "{what}: no error in 10 s after {} fetches at {at}",
                    fetches_at(&b, 0, at)
                ),
            }
        };
        let sent = fetches_at(&b, 0, at);
        assert!(
            matches!(err, FetchError::NoProgress { partition: 0, offset, .. } if offset == at),
            "{what}: {err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("events-0 at offset {at}")),
            "{what}: {msg}"
        );
        // A few tries with backoff (retry.backoff.ms = 100 doubling), not a flood.
        assert!((3..=8).contains(&sent), "{what}: {sent} fetches at {at}");
        if let Some(n) = in_first_second {
            assert!(n <= 6, "{what}: {n} fetches at {at} in the first second");
        }
        assert_eq!(p1, 4, "{what}: partition 1 was held up");
        assert_eq!(c.position(T, 0), Some(at), "{what}");
    }
}

/// Warnings logged through the `log` facade by any test in this binary.
static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct CaptureWarnings;

impl log::Log for CaptureWarnings {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            WARNINGS.lock().unwrap().push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

fn capture_warnings() {
    // Another test may have installed it already: that is the same logger.
    let _ = log::set_logger(&CaptureWarnings);
    log::set_max_level(log::LevelFilter::Warn);
}

/// Metadata naming a leader that is not in its broker list is retried with backoff
/// (as for LEADER_NOT_AVAILABLE) and logged, so the partition is read as soon as the
/// cluster names a reachable leader. Today's code took the unknown node as the leader
/// and waited for metadata.max.age.ms (5 minutes) without a word.
#[test]
fn a_leader_missing_from_the_broker_list_is_retried_with_backoff() {
    capture_warnings();
    let b = ScriptedBroker::start();
    b.add_topic(T, 1);
    let end = fill(&b, 0, 0, 2, 3);
    b.set_leader(T, 0, 7);
    let mut c = Consumer::new(config(&b.bootstrap())).unwrap();
    c.assign(T, 0, StartAt::Earliest);
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        c.poll(Duration::from_millis(50), |_| {
            panic!("no leader to fetch from")
        })
        .unwrap();
    }
    let asked = b.requests_of(ApiKey::Metadata).len();
    // retry.backoff.ms = 100 doubling up to 1 s: about five in 1.5 s.
    assert!(
        (3..=15).contains(&asked),
        "{asked} metadata requests in 1.5 s"
    );
    let warned = WARNINGS.lock().unwrap().clone();
    assert!(
        warned
            .iter()
            .any(|w| w.contains("events-0") && w.contains("leader 7")),
        "{warned:?}"
    );
    b.set_leader(T, 0, 0);
    let start = Instant::now();
    let got = consume(&mut c, end as usize);
    assert_eq!(offsets(&got), (0..end).collect::<Vec<_>>());
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

/// A Fetch body that does not decode is reported as such, without promising a
/// reconnect the caller (weir consume exits 1 on it) will not see.
#[test]
fn an_undecodable_fetch_response_says_what_happened() {
    let b = ScriptedBroker::start();
    b.add_topic(T, 1);
    fill(&b, 0, 0, 1, 1);
    b.push(
        ApiKey::Fetch,
        Action::RespondBody(Bytes::from_static(&[0xff; 3])),
    );
    let mut c = Consumer::new(config(&b.bootstrap())).unwrap();
    c.assign(T, 0, StartAt::Earliest);
    let e = poll_error(&mut c);
    assert!(
        matches!(e, FetchError::Decode { api: "Fetch", .. }),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(msg.contains("Fetch response"), "{msg}");
    assert!(!msg.contains("reconnecting"), "{msg}");
    assert!(msg.contains("connection"), "{msg}");
}

/// A hostile throttle_time_ms (i32::MAX: 24 days) holds fetching back for at most
/// request.timeout.ms (2 s here), not for weeks.
#[test]
fn a_huge_throttle_time_is_capped() {
    let b = ScriptedBroker::start();
    b.add_topic(T, 1);
    fill(&b, 0, 0, 1, 2);
    let first = Arc::new(AtomicBool::new(true));
    let f = Arc::clone(&first);
    b.on(ApiKey::Fetch, move |ctx, h, req| {
        let a = ctx.default_action(h, req)?;
        match a {
            Action::Respond(ResponseKind::Fetch(mut r)) if f.swap(false, Ordering::AcqRel) => {
                r.throttle_time_ms = i32::MAX;
                Some(Action::Respond(ResponseKind::Fetch(r)))
            }
            other => Some(other),
        }
    });
    let mut c = Consumer::new(config(&b.bootstrap())).unwrap();
    c.assign(T, 0, StartAt::Earliest);
    assert_eq!(offsets(&consume(&mut c, 2)), vec![0, 1]);
    assert!(!first.load(Ordering::Acquire));
    let throttled_at = Instant::now();
    fill(&b, 0, 2, 1, 2);
    let start = Instant::now();
    let mut got = Vec::new();
    while got.len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "no fetch within 8 s of a throttle_time_ms of i32::MAX"
        );
        c.poll(Duration::from_millis(100), |r| got.push(r.offset()))
            .unwrap();
    }
    assert_eq!(got, vec![2, 3]);
    assert!(throttled_at.elapsed() < Duration::from_secs(4));
}

/// metadata.max.age.ms=0 (with retry.backoff.ms=0, the worst case) refreshes about
/// once a second instead of on every reactor turn.
#[test]
fn metadata_max_age_zero_does_not_flood_the_broker() {
    let b = ScriptedBroker::start();
    b.add_topic(T, 1);
    fill(&b, 0, 0, 1, 2);
    let mut c = Consumer::new(FetchConfig {
        metadata_max_age_ms: 0,
        retry_backoff_ms: 0,
        ..config(&b.bootstrap())
    })
    .unwrap();
    c.assign(T, 0, StartAt::Earliest);
    assert_eq!(offsets(&consume(&mut c, 2)), vec![0, 1]);
    let before = b.requests_of(ApiKey::Metadata).len();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(2500) {
        c.poll(Duration::from_millis(50), |_| {}).unwrap();
    }
    let asked = b.requests_of(ApiKey::Metadata).len() - before;
    assert!(asked <= 4, "{asked} metadata requests in 2.5 s");
    // Still refreshed periodically.
    assert!(asked >= 1, "{asked} metadata requests in 2.5 s");
}

/// A broker advertised under a host name whose lookup takes seconds does not hold up
/// the rest (issue 10, defect 9: `connect` called getaddrinfo on the reactor thread,
/// so a slow resolver stalled every fetch and heartbeat). Partition 0's leader is
/// reached by IP; partition 1's leader is `slow.weir.test`, which the resolver answers
/// after 2 s. Partition 0's records must arrive while that lookup is still running,
/// and partition 1's after it. Fails if the lookup blocks the reactor (nothing is
/// delivered until the resolver returns).
#[test]
fn a_slow_host_name_lookup_does_not_stall_other_brokers() {
    let b = ScriptedBroker::with_nodes(&[0, 1]);
    b.add_topic(T, 2);
    b.set_leader(T, 0, 0);
    b.set_leader(T, 1, 1);
    let slow_port = b.addr(1).port();
    b.with_cluster(|c| {
        c.hosts.insert(1, "slow.weir.test".to_owned());
    });
    let end0 = fill(&b, 0, 0, 2, 5);
    let end1 = fill(&b, 1, 0, 1, 4);
    let answered = Arc::new(AtomicBool::new(false));
    let lookups = Arc::new(Mutex::new(Vec::new()));
    let (a, l) = (Arc::clone(&answered), Arc::clone(&lookups));
    let cfg = FetchConfig {
        resolver: weir_fetch::Resolver::new(move |host, port| {
            l.lock().unwrap().push(host.to_owned());
            assert_eq!(host, "slow.weir.test", "IP literals are never looked up");
            std::thread::sleep(Duration::from_secs(2));
            a.store(true, Ordering::SeqCst);
            Ok(vec![std::net::SocketAddr::from(([127, 0, 0, 1], port))])
        }),
        ..config(&b.bootstrap())
    };
    assert_eq!(cfg.resolver.clone(), cfg.resolver);
    let mut c = Consumer::new(cfg).unwrap();
    c.assign(T, 0, StartAt::Earliest);
    c.assign(T, 1, StartAt::Earliest);
    let mut early = Vec::new();
    let mut late = Vec::new();
    let start = Instant::now();
    while early.len() + late.len() < (end0 + end1) as usize {
        assert!(start.elapsed() < DEADLINE, "timed out: {early:?} {late:?}");
        c.poll(Duration::from_millis(50), |r| {
            let at = (r.partition, r.offset());
            if answered.load(Ordering::SeqCst) {
                late.push(at);
            } else {
                early.push(at);
            }
        })
        .unwrap();
    }
    let p0: Vec<(i32, i64)> = (0..end0).map(|o| (0, o)).collect();
    assert_eq!(early, p0, "partition 0 while the lookup ran");
    assert_eq!(late, (0..end1).map(|o| (1, o)).collect::<Vec<_>>());
    assert_eq!(slow_port, b.addr(1).port());
    assert_eq!(*lookups.lock().unwrap(), vec!["slow.weir.test".to_owned()]);
}

/// Undelivered fetched data fills the fetch ring (a slow handler) up to its last
/// kilobyte; the coordinator's connection reads into a ring of its own, so its
/// answers (here a group leader's metadata, a few KiB) still arrive. With one shared
/// ring the answer waited behind the data: a heartbeat answer waiting like that ends
/// in a session timeout.
#[test]
fn coordinator_answers_arrive_while_fetched_data_fills_the_ring() {
    use kafka_protocol::messages::MetadataRequest;
    use weir_fetch::{Reactor, SideEvent};
    use weir_protocol::messages::ResponseBody;
    use weir_protocol::messages::metadata::MetadataResponse;

    let b = ScriptedBroker::start();
    b.add_topic(T, 2);
    for p in 0..2 {
        fill(&b, p, 0, 400, 10);
    }
    for t in 0..60 {
        b.add_topic(&format!("another-topic-with-a-rather-long-name-{t:03}"), 4);
    }
    // About 1 KiB per fetch answer, so the ring fills to within about 1 KiB.
    let mut r = Reactor::new(FetchConfig {
        fetch_max_bytes: 1 << 10,
        max_partition_fetch_bytes: 1 << 10,
        ring_bytes: 80 << 10,
        fetch_max_wait_ms: 50,
        request_timeout_ms: 2000,
        ..FetchConfig::new(&b.bootstrap())
    })
    .unwrap();
    for p in 0..2 {
        r.assign(T, p, StartAt::Earliest);
    }
    // Nobody takes the chunks: the ring fills up and the reactor stalls on it.
    let start = Instant::now();
    while r.metrics().ring_stalls.load(Ordering::Relaxed) == 0 {
        r.run_once(Duration::from_millis(20)).unwrap();
        assert!(start.elapsed() < DEADLINE, "the fetch ring never filled");
    }
    assert!(
        r.ring().live_bytes() > (70 << 10),
        "{}",
        r.ring().live_bytes()
    );

    let addr = b.addr(0);
    let side = r.open_side("127.0.0.1", addr.port());
    let wait = |r: &mut Reactor, what: &str| -> SideEvent {
        let start = Instant::now();
        loop {
            r.run_once(Duration::from_millis(20)).unwrap();
            if let Some(e) = r.take_side_events().next() {
                return e;
            }
            assert!(start.elapsed() < DEADLINE, "no side event ({what})");
        }
    };
    assert!(matches!(wait(&mut r, "ready"), SideEvent::Ready { side: s } if s == side));
    let v = r
        .side_versions(side)
        .unwrap()
        .negotiate::<MetadataRequest, MetadataResponse<'static>>()
        .unwrap();
    let req = MetadataRequest::default().with_topics(None);
    for round in 0..3 {
        let corr = r.side_send(side, v, &req).unwrap();
        match wait(&mut r, "response") {
            SideEvent::Response {
                req: q,
                body_offset,
                frame,
                ..
            } => {
                assert_eq!(q.correlation_id, corr, "round {round}");
                assert!(frame.len() > 4 << 10, "{}", frame.len());
                let m = MetadataResponse::decode_body(&frame[body_offset..], v).unwrap();
                assert_eq!(m.topics.len(), 61);
            }
            other => panic!("round {round}: {other:?}"),
        }
    }
    // The data is all still there, undelivered.
    assert!(r.has_chunks());
    assert!(r.take_errors().next().is_none());
}

/// An answer larger than the coordinator ring is a typed error naming the property,
/// and the side connection fails its requests instead of waiting forever.
#[test]
fn a_side_answer_larger_than_the_coordinator_ring_is_an_error() {
    use kafka_protocol::messages::MetadataRequest;
    use weir_fetch::{Reactor, SideEvent};
    use weir_protocol::messages::metadata::MetadataResponse;

    let b = ScriptedBroker::start();
    for t in 0..800 {
        b.add_topic(&format!("another-topic-with-a-rather-long-name-{t:03}"), 4);
    }
    let mut r = Reactor::new(FetchConfig {
        side_ring_bytes: 1 << 16,
        ..config(&b.bootstrap())
    })
    .unwrap();
    let addr = b.addr(0);
    let side = r.open_side("127.0.0.1", addr.port());
    let start = Instant::now();
    let mut sent = None;
    let mut error = None;
    let mut closed = false;
    while error.is_none() || !closed {
        r.run_once(Duration::from_millis(20)).unwrap();
        let events: Vec<SideEvent> = r.take_side_events().collect();
        for e in events {
            match e {
                SideEvent::Ready { .. } if sent.is_none() => {
                    let v = r
                        .side_versions(side)
                        .unwrap()
                        .negotiate::<MetadataRequest, MetadataResponse<'static>>()
                        .unwrap();
                    let req = MetadataRequest::default().with_topics(None);
                    sent = Some(r.side_send(side, v, &req).unwrap());
                }
                SideEvent::Closed { failed, .. } => {
                    assert_eq!(
                        failed.iter().map(|q| q.correlation_id).collect::<Vec<_>>(),
                        vec![sent.unwrap()]
                    );
                    closed = true;
                }
                SideEvent::Response { .. } => panic!("an answer larger than the ring arrived"),
                _ => {}
            }
        }
        if let Some(e) = r.take_errors().next() {
            error = Some(e);
        }
        assert!(
            start.elapsed() < DEADLINE,
            "error {error:?}, closed {closed}"
        );
    }
    let e = error.unwrap();
    assert!(
        matches!(e, FetchError::SideResponseTooLarge { capacity: 65536, frame } if frame > 65536),
        "{e:?}"
    );
    assert!(e.to_string().contains("weir.coordinator.ring.bytes"), "{e}");
}
