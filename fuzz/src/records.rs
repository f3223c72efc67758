//! Record batches (`record_batches`) and Fetch responses (`fetch_response`).

use weir_protocol::messages::ResponseBody;
use weir_protocol::messages::fetch::FetchResponse;
use weir_protocol::record::Batch;
use weir_protocol::txn::{AbortedTxnFilter, BatchMeta, Verdict};
use weir_protocol::{Batches, ControlRecord, Decompressor, Record};

use crate::{DECOMPRESS_CAP, Touch};

/// The `record_batches` target: the input is one partition's records blob.
pub fn record_batches(data: &[u8]) {
    let mut d = Decompressor::with_limit(DECOMPRESS_CAP);
    let mut t = Touch::default();
    walk_blob(data, &mut d, None, &mut t);
    t.finish();
}

/// The `fetch_response` target: byte 0 picks the version (4..=16), the rest is the
/// response body. Every partition's records are walked as in `record_batches`, through
/// a read_committed filter built from the partition's aborted list.
pub fn fetch_response(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let version = 4 + i16::from(sel % 13);
    let mut t = Touch::default();
    let resp = match FetchResponse::decode_body(body, version) {
        Ok(r) => r,
        Err(e) => {
            t.display(&e);
            t.finish();
            return;
        }
    };
    let mut d = Decompressor::with_limit(DECOMPRESS_CAP);
    t.int(resp.throttle_time_ms);
    t.int(resp.error_code.0);
    t.int(resp.session_id);
    if version < 7 {
        assert_eq!(resp.session_id, 0, "session id before v7");
    }
    for topic in &resp.topics {
        t.bytes(topic.topic.as_bytes());
        t.bytes(&topic.topic_id);
        if version >= 13 {
            assert!(topic.topic.is_empty(), "topic name at v{version}");
        } else {
            assert_eq!(topic.topic_id, [0; 16], "topic id at v{version}");
        }
        for p in &topic.partitions {
            t.int(p.partition_index);
            t.int(p.error_code.0);
            t.int(p.high_watermark);
            t.int(p.last_stable_offset);
            t.int(p.log_start_offset);
            t.int(p.preferred_read_replica);
            if version < 5 {
                assert_eq!(p.log_start_offset, -1);
            }
            if version < 11 {
                assert_eq!(p.preferred_read_replica, -1);
            }
            if version < 12 {
                assert!(p.diverging_epoch.is_none() && p.current_leader.is_none());
            }
            if let Some(e) = p.diverging_epoch {
                t.int(e.epoch);
                t.int(e.end_offset);
            }
            if let Some(l) = p.current_leader {
                t.int(l.leader_id);
                t.int(l.leader_epoch);
            }
            // Zero copy: the records are a slice of the body.
            assert!(
                p.records.is_empty() || FetchResponse::range_in(body, p.records).is_some(),
                "partition records do not point into the frame"
            );
            let mut filter = p.aborted_transactions.as_deref().map(|list| {
                for a in list {
                    t.int(a.producer_id);
                    t.int(a.first_offset);
                }
                AbortedTxnFilter::new(list)
            });
            walk_blob(p.records, &mut d, filter.as_mut(), &mut t);
        }
    }
    t.finish();
}

/// Walk every batch of `blob`, checking the `Batches` contract, and every record of
/// every batch. With a filter, judge each batch and check the verdict's basic rules.
pub(crate) fn walk_blob(
    blob: &[u8],
    d: &mut Decompressor,
    mut filter: Option<&mut AbortedTxnFilter>,
    t: &mut Touch,
) {
    let mut it = Batches::new(blob);
    let mut expected = 0usize;
    while let Some(item) = it.next() {
        match item {
            Ok(b) => {
                let bytes = b.bytes();
                assert!(
                    std::ptr::eq(bytes.as_ptr(), blob[expected..].as_ptr()),
                    "batch view is not the next bytes of the blob"
                );
                expected += bytes.len();
                assert_eq!(it.consumed(), expected, "Batches::consumed");
                touch_batch(&b, d, t);
                if let Some(f) = filter.as_deref_mut() {
                    judge(f, &b, t);
                }
            }
            Err(e) => {
                t.display(&e);
                assert!(
                    it.next().is_none(),
                    "Batches yielded an item after an error"
                );
                break;
            }
        }
    }
    assert_eq!(
        it.consumed() + it.rest().len(),
        blob.len(),
        "Batches lost bytes"
    );
    if it.is_truncated() {
        assert!(!it.rest().is_empty(), "truncated with no tail");
    }
}

fn judge(f: &mut AbortedTxnFilter, b: &Batch<'_>, t: &mut Touch) {
    match f.judge_batch(b) {
        Ok(v) => {
            t.debug(&v);
            if b.is_control() {
                assert!(
                    matches!(v, Verdict::Control(_)),
                    "control batch judged {v:?}"
                );
            } else if !b.is_transactional() {
                assert_eq!(v, Verdict::Deliver, "non-transactional batch judged {v:?}");
            }
            // The facts path agrees with the batch path.
            if let Ok(meta) = BatchMeta::of(b) {
                t.int(meta.last_offset);
            }
        }
        Err(e) => {
            // Only a control batch's marker can fail to parse.
            assert!(b.is_control(), "judge_batch failed on a data batch: {e}");
            t.display(&e);
        }
    }
}

fn touch_batch(b: &Batch<'_>, d: &mut Decompressor, t: &mut Touch) {
    t.int(b.magic());
    t.int(b.base_offset());
    t.int(b.last_offset());
    t.int(b.next_offset());
    t.int(b.producer_id());
    t.int(b.producer_epoch());
    t.int(b.partition_leader_epoch());
    t.int(i32::from(b.is_transactional()) << 1 | i32::from(b.is_control()));
    t.debug(&b.timestamp_type());
    t.debug(&b.compression());
    t.debug(&b.verify_crc());
    t.debug(&b.control_record());
    let declared = match b {
        Batch::V2(rb) => {
            assert_eq!(rb.len(), rb.bytes().len());
            assert!(!rb.is_empty());
            assert_eq!(
                rb.last_offset(),
                rb.base_offset()
                    .wrapping_add(i64::from(rb.last_offset_delta()))
            );
            t.int(rb.batch_length());
            t.int(rb.crc());
            t.int(rb.compute_crc());
            t.int(rb.attributes());
            t.int(i32::from(rb.has_delete_horizon()));
            t.int(rb.base_timestamp());
            t.int(rb.max_timestamp());
            t.int(rb.base_sequence());
            t.int(rb.record_count());
            t.bytes(rb.records_bytes());
            t.debug(rb);
            if let Ok(recs) = rb.records_uncompressed() {
                t.int(recs.remaining_count());
            }
            Some(rb.record_count())
        }
        Batch::Legacy(m) => {
            t.int(m.offset());
            t.int(m.message_size());
            t.int(m.crc());
            t.int(m.compute_crc());
            t.int(m.attributes());
            t.int(m.timestamp());
            t.opt_bytes(m.key());
            t.opt_bytes(m.value());
            None
        }
    };
    let is_control = b.is_control();
    let recs = match b.records(d) {
        Ok(recs) => recs,
        Err(e) => {
            t.display(&e);
            return;
        }
    };
    let mut ok = 0i64;
    let mut failed = false;
    for r in recs {
        assert!(!failed, "records iterator yielded an item after an error");
        match r {
            Ok(r) => {
                ok += 1;
                touch_record(&r, t);
                if is_control {
                    t.debug(&ControlRecord::parse(&r));
                }
            }
            Err(e) => {
                t.display(&e);
                failed = true;
            }
        }
    }
    if let Some(count) = declared {
        if failed {
            assert!(ok <= i64::from(count.max(0)), "more records than declared");
        } else {
            assert_eq!(ok, i64::from(count), "record count not enforced");
        }
    }
}

fn touch_record(r: &Record<'_>, t: &mut Touch) {
    t.int(r.offset());
    t.int(r.timestamp());
    t.int(r.attributes());
    t.int(r.sequence());
    t.opt_bytes(r.key());
    t.opt_bytes(r.value());
    let headers = r.headers();
    let declared = headers.len();
    let mut ok = 0usize;
    let mut failed = false;
    for h in headers {
        assert!(!failed, "headers iterator yielded an item after an error");
        match h {
            Ok(h) => {
                ok += 1;
                t.bytes(h.key);
                t.opt_bytes(h.value);
            }
            Err(e) => {
                t.display(&e);
                failed = true;
            }
        }
    }
    assert!(ok <= declared, "more headers than declared");
    if !failed {
        assert_eq!(ok, declared, "header count not enforced");
    }
}
