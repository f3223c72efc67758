//! Turning one partition's fetched bytes into records for a handler.
//!
//! The reactor cuts each partition's `records` field out of a Fetch response as a
//! [`Chunk`] (a [`FrameSlice`] that keeps its ring region alive). [`process_chunk`]
//! then walks the batches in place:
//!
//! 1. batches wholly below the fetch position are skipped (a fetch from the middle of
//!    a batch returns the whole batch), and so are records below it inside a batch;
//! 2. the batch CRC32C is checked when `check.crcs` is on;
//! 3. under `read_committed`, batches of aborted transactions are dropped (the Fetch
//!    response's aborted-transactions list, applied by the protocol crate's filter);
//! 4. control batches (commit/abort markers) are never delivered;
//! 5. every remaining record is handed to the handler as a borrowed view, decompressed
//!    into the caller's [`Decompressor`] when the batch is compressed.
//!
//! A truncated final batch is normal and ends the chunk. The position after the chunk
//! is the `next_offset` of the last complete batch, so skipped, aborted and control
//! batches are stepped over too.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use weir_protocol::DecodeError;
use weir_protocol::compression::Decompressor;
use weir_protocol::record::{Batches, Record, TimestampType};
use weir_protocol::txn::{AbortedTxn, AbortedTxnFilter, Verdict};

use crate::ring::FrameSlice;

/// One partition's records from one Fetch response.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// The topic name.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The node id of the broker the chunk was fetched from (the partition's leader
    /// when the fetch was sent).
    pub broker: i32,
    /// The consumer's index for this partition (routing and progress reports).
    pub part_idx: usize,
    /// Seek generation when the fetch was sent; a stale chunk (the partition was
    /// seeked since) is dropped.
    pub generation: u64,
    /// The partition's current generation; when it differs from `generation` the
    /// chunk is stale and skipped.
    pub live_generation: Arc<AtomicU64>,
    /// The offset the fetch asked for: records below it are skipped.
    pub fetch_offset: i64,
    /// The records bytes, a view into the ring.
    pub records: FrameSlice,
    /// Aborted transactions (read_committed only; empty otherwise).
    pub aborted: Vec<AbortedTxn>,
    /// Whether to filter aborted transactions.
    pub read_committed: bool,
    /// Whether to verify each batch's CRC32C.
    pub check_crcs: bool,
}

/// A record as the handler sees it: where it came from, and a borrowed view of it.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerRecord<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The partition.
    pub partition: i32,
    /// The node id of the broker the record was fetched from.
    pub broker: i32,
    /// The record (key, value, headers and timestamp borrow the ring or the
    /// decompression scratch; copy with [`to_owned`](Self::to_owned) to keep it).
    pub record: Record<'a>,
    /// The timestamp type of the batch the record came from: `CreateTime`,
    /// `LogAppendTime`, or `NoTimestamp` for a legacy magic-0 message.
    pub timestamp_type: TimestampType,
}

impl<'a> ConsumerRecord<'a> {
    /// The record's offset.
    pub fn offset(&self) -> i64 {
        self.record.offset()
    }

    /// The timestamp (ms since the epoch).
    pub fn timestamp(&self) -> i64 {
        self.record.timestamp()
    }

    /// The key (`None` when null).
    pub fn key(&self) -> Option<&'a [u8]> {
        self.record.key()
    }

    /// The value (`None` for a tombstone).
    pub fn value(&self) -> Option<&'a [u8]> {
        self.record.value()
    }

    /// Copy the record out of the ring so it can outlive the handler.
    pub fn to_owned(&self) -> OwnedRecord {
        let headers = self
            .record
            .headers()
            .filter_map(|h| h.ok())
            .map(|h| (h.key.to_vec(), h.value.map(<[u8]>::to_vec)))
            .collect();
        OwnedRecord {
            topic: self.topic.to_owned(),
            partition: self.partition,
            offset: self.record.offset(),
            timestamp: self.record.timestamp(),
            timestamp_type: self.timestamp_type,
            key: self.record.key().map(<[u8]>::to_vec),
            value: self.record.value().map(<[u8]>::to_vec),
            headers,
        }
    }
}

/// A record copied out of the ring (see [`ConsumerRecord::to_owned`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRecord {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The timestamp (ms since the epoch).
    pub timestamp: i64,
    /// The batch's timestamp type (see [`ConsumerRecord::timestamp_type`]).
    pub timestamp_type: TimestampType,
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The value.
    pub value: Option<Vec<u8>>,
    /// The headers, in order (malformed headers are dropped).
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// What processing a chunk did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkOutcome {
    /// Records handed to the handler.
    pub records: u64,
    /// Bytes of the batches walked.
    pub bytes: u64,
    /// The offset after the last complete batch (or the fetch offset when there was
    /// none): the partition's next position.
    pub next_offset: i64,
    /// Batches dropped as aborted.
    pub aborted_batches: u64,
    /// The partition was seeked after this chunk was fetched; nothing was delivered.
    pub stale: bool,
    /// [`process_chunk_limited`] stopped at its record limit: `next_offset` is the
    /// first record not handed out, and the chunk has more to deliver from there.
    pub cut: bool,
}

/// Why a chunk could not be processed to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkError {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The base offset of the batch that failed (or the fetch offset).
    pub offset: i64,
    /// What went wrong.
    pub error: DecodeError,
    /// What was delivered before the failure.
    pub partial: ChunkOutcome,
}

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "record batch for {}-{} at offset {} is invalid: {}; the partition is paused \
             (seek past the batch and resume to skip it)",
            self.topic, self.partition, self.offset, self.error
        )
    }
}

impl std::error::Error for ChunkError {}

/// Walk `chunk` and call `handler` for every deliverable record, in offset order.
pub fn process_chunk(
    chunk: &Chunk,
    scratch: &mut Decompressor,
    handler: impl FnMut(&ConsumerRecord<'_>),
) -> Result<ChunkOutcome, ChunkError> {
    process_chunk_limited(chunk, scratch, chunk.fetch_offset, u64::MAX, handler)
}

/// [`process_chunk`] for at most `max_records` records, from `deliver_from` (at or
/// above the chunk's fetch offset): for `max.poll.records`, a chunk is handed out
/// over several polls.
///
/// When the limit stops the walk, the outcome is [`cut`](ChunkOutcome::cut) and its
/// `next_offset` is the first record not handed out; walk the same chunk again with
/// that as `deliver_from`. Batches wholly below `deliver_from` were checked by the
/// earlier walk and are not decompressed or counted again, but read_committed's
/// aborted-transaction filter still sees them: an abort marker there ends its
/// transaction for the batches after it.
pub fn process_chunk_limited(
    chunk: &Chunk,
    scratch: &mut Decompressor,
    deliver_from: i64,
    max_records: u64,
    mut handler: impl FnMut(&ConsumerRecord<'_>),
) -> Result<ChunkOutcome, ChunkError> {
    let deliver_from = deliver_from.max(chunk.fetch_offset);
    let mut out = ChunkOutcome {
        next_offset: deliver_from,
        ..ChunkOutcome::default()
    };
    if chunk.live_generation.load(Ordering::Acquire) != chunk.generation {
        out.stale = true;
        return Ok(out);
    }
    let mut filter = chunk
        .read_committed
        .then(|| AbortedTxnFilter::new(&chunk.aborted));
    let fail = |offset: i64, error: DecodeError, partial: &ChunkOutcome| {
        // Invalidate chunks of this partition already queued behind this one, so
        // nothing past the bad batch is delivered before the owner reacts.
        let _ = chunk.live_generation.compare_exchange(
            chunk.generation,
            chunk.generation + 1,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        ChunkError {
            topic: Arc::clone(&chunk.topic),
            partition: chunk.partition,
            offset,
            error,
            partial: partial.clone(),
        }
    };
    let mut batches = Batches::new(chunk.records.bytes());
    for batch in batches.by_ref() {
        let batch = batch.map_err(|e| fail(out.next_offset, e, &out))?;
        let next = batch.next_offset();
        if next <= chunk.fetch_offset {
            // Wholly below the position (a fetch from the middle of a compacted log
            // or a re-fetch): step over without checking.
            continue;
        }
        if next <= deliver_from {
            // Handed out by an earlier walk of this chunk: only the filter's state
            // needs it.
            if let Some(f) = &mut filter {
                f.judge_batch(&batch)
                    .map_err(|e| fail(batch.base_offset(), e, &out))?;
            }
            continue;
        }
        if chunk.check_crcs {
            batch
                .verify_crc()
                .map_err(|e| fail(batch.base_offset(), e, &out))?;
        }
        out.bytes += batch.bytes().len() as u64;
        let skip = match &mut filter {
            Some(f) => {
                let v = f
                    .judge_batch(&batch)
                    .map_err(|e| fail(batch.base_offset(), e, &out))?;
                v != Verdict::Deliver
            }
            None => batch.is_control(),
        };
        if skip {
            if !batch.is_control() {
                out.aborted_batches += 1;
            }
            out.next_offset = out.next_offset.max(next);
            continue;
        }
        let timestamp_type = batch.timestamp_type();
        let records = batch
            .records(scratch)
            .map_err(|e| fail(batch.base_offset(), e, &out))?;
        for r in records {
            let record = r.map_err(|e| fail(batch.base_offset(), e, &out))?;
            if record.offset() < deliver_from {
                continue;
            }
            if out.records >= max_records {
                // The rest of this batch is walked (and its bytes counted) again from
                // here by the next walk.
                out.bytes -= batch.bytes().len() as u64;
                out.next_offset = record.offset();
                out.cut = true;
                return Ok(out);
            }
            handler(&ConsumerRecord {
                topic: &chunk.topic,
                partition: chunk.partition,
                broker: chunk.broker,
                record,
                timestamp_type,
            });
            out.records += 1;
        }
        out.next_offset = out.next_offset.max(next);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_protocol::compression::Compression;
    use weir_protocol::control::ControlKind;
    use weir_protocol::record::{Header, LegacyMessageSetWriter, RecordBatchBuilder};

    fn batch(base: i64, n: usize, codec: Compression) -> Vec<u8> {
        let mut b = RecordBatchBuilder::new(base).compression(codec);
        for i in 0..n {
            let v = format!("v{}", base + i as i64);
            b.append_with_headers(
                1000 + i as i64,
                Some(b"k"),
                Some(v.as_bytes()),
                &[Header {
                    key: b"h",
                    value: None,
                }],
            );
        }
        b.build()
    }

    fn txn_batch(base: i64, n: usize, pid: i64) -> Vec<u8> {
        let mut b = RecordBatchBuilder::new(base)
            .producer(pid, 0, 0)
            .transactional(true);
        for _ in 0..n {
            b.append(5, None, Some(b"t"));
        }
        b.build()
    }

    fn chunk(bytes: &[u8], fetch_offset: i64) -> Chunk {
        Chunk {
            topic: Arc::from("t"),
            partition: 3,
            broker: 1,
            part_idx: 0,
            generation: 7,
            live_generation: Arc::new(AtomicU64::new(7)),
            fetch_offset,
            records: FrameSlice::from_vec(bytes),
            aborted: Vec::new(),
            read_committed: false,
            check_crcs: true,
        }
    }

    fn run(c: &Chunk) -> (Result<ChunkOutcome, ChunkError>, Vec<OwnedRecord>) {
        let mut got = Vec::new();
        let mut d = Decompressor::new();
        let r = process_chunk(c, &mut d, |r| got.push(r.to_owned()));
        (r, got)
    }

    #[test]
    fn every_codec_delivers_records_with_headers() {
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut bytes = batch(0, 3, codec);
            bytes.extend(batch(3, 2, codec));
            let (r, got) = run(&chunk(&bytes, 0));
            let o = r.unwrap();
            assert_eq!(o.records, 5);
            assert_eq!(o.next_offset, 5);
            assert_eq!(
                got.iter().map(|r| r.offset).collect::<Vec<_>>(),
                vec![0, 1, 2, 3, 4]
            );
            assert_eq!(got[4].value.as_deref(), Some(&b"v4"[..]));
            assert_eq!(got[4].timestamp, 1001);
            assert_eq!(got[0].headers, vec![(b"h".to_vec(), None)]);
            assert_eq!(got[0].topic, "t");
            assert_eq!(got[0].partition, 3);
        }
    }

    #[test]
    fn records_below_the_fetch_offset_are_skipped() {
        let mut bytes = batch(0, 5, Compression::Lz4);
        bytes.extend(batch(5, 5, Compression::None));
        let (r, got) = run(&chunk(&bytes, 7));
        assert_eq!(r.unwrap().next_offset, 10);
        assert_eq!(
            got.iter().map(|r| r.offset).collect::<Vec<_>>(),
            vec![7, 8, 9]
        );
        let (r, got) = run(&chunk(&bytes, 3));
        assert_eq!(r.unwrap().records, 7);
        assert_eq!(got[0].offset, 3);
    }

    #[test]
    fn a_truncated_final_batch_ends_the_chunk_normally() {
        let mut bytes = batch(0, 4, Compression::None);
        let second = batch(4, 4, Compression::None);
        bytes.extend_from_slice(&second[..second.len() - 3]);
        let (r, got) = run(&chunk(&bytes, 0));
        let o = r.unwrap();
        assert_eq!(o.next_offset, 4);
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn crc_mismatch_is_an_error_at_the_batch_and_invalidates_queued_chunks() {
        let mut bytes = batch(0, 2, Compression::None);
        let good_len = bytes.len();
        bytes.extend(batch(2, 2, Compression::None));
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        let c = chunk(&bytes, 0);
        let (r, got) = run(&c);
        let e = r.unwrap_err();
        assert_eq!(e.offset, 2);
        assert_eq!(e.partial.records, 2);
        assert_eq!(got.len(), 2);
        assert!(matches!(e.error, DecodeError::CrcMismatch { .. }));
        assert!(e.to_string().contains("t-3 at offset 2"), "{e}");
        // A chunk queued behind it is now stale.
        assert_eq!(c.live_generation.load(Ordering::Acquire), 8);
        let (r, got) = run(&c);
        assert!(r.unwrap().stale);
        assert!(got.is_empty());
        // With check.crcs off the corrupt value byte is delivered as is.
        let mut c = chunk(&bytes, 0);
        c.check_crcs = false;
        let (r, _) = run(&c);
        assert_eq!(r.unwrap().records, 4);
        assert!(good_len > 0);
    }

    #[test]
    fn read_committed_drops_aborted_batches_and_control_markers() {
        let mut bytes = txn_batch(0, 2, 9); // aborted
        bytes.extend(batch(2, 1, Compression::None)); // plain
        bytes.extend(RecordBatchBuilder::control_marker(
            3,
            9,
            0,
            ControlKind::Abort,
            0,
            5,
        ));
        bytes.extend(txn_batch(4, 2, 9)); // a later, committed txn of the same producer
        bytes.extend(RecordBatchBuilder::control_marker(
            6,
            9,
            0,
            ControlKind::Commit,
            0,
            5,
        ));
        let mut c = chunk(&bytes, 0);
        c.read_committed = true;
        c.aborted = vec![AbortedTxn {
            producer_id: 9,
            first_offset: 0,
        }];
        let (r, got) = run(&c);
        let o = r.unwrap();
        assert_eq!(
            got.iter().map(|r| r.offset).collect::<Vec<_>>(),
            vec![2, 4, 5]
        );
        assert_eq!(o.aborted_batches, 1);
        assert_eq!(o.next_offset, 7, "position steps over the final marker");
        // read_uncommitted sees the aborted records but never the markers.
        c.read_committed = false;
        let (_, got) = run(&c);
        assert_eq!(
            got.iter().map(|r| r.offset).collect::<Vec<_>>(),
            vec![0, 1, 2, 4, 5]
        );
    }

    /// max.poll.records walks one chunk in several limited passes: every record once,
    /// in order, and under read_committed an abort marker handed over by an earlier
    /// pass still ends its transaction (the later committed transaction of the same
    /// producer is delivered, not dropped as aborted).
    #[test]
    fn limited_walks_resume_where_they_were_cut() {
        let mut bytes = txn_batch(0, 2, 9); // aborted
        bytes.extend(RecordBatchBuilder::control_marker(
            2,
            9,
            0,
            ControlKind::Abort,
            0,
            5,
        ));
        bytes.extend(txn_batch(3, 4, 9)); // committed, same producer
        bytes.extend(RecordBatchBuilder::control_marker(
            7,
            9,
            0,
            ControlKind::Commit,
            0,
            5,
        ));
        bytes.extend(batch(8, 3, Compression::Lz4));
        let mut c = chunk(&bytes, 0);
        c.read_committed = true;
        c.aborted = vec![AbortedTxn {
            producer_id: 9,
            first_offset: 0,
        }];
        let mut d = Decompressor::new();
        let (mut from, mut got, mut walks) = (0, Vec::new(), 0);
        loop {
            walks += 1;
            let mut this = Vec::new();
            let o = process_chunk_limited(&c, &mut d, from, 2, |r| this.push(r.offset())).unwrap();
            assert!(this.len() <= 2, "{this:?}");
            assert_eq!(o.records as usize, this.len());
            got.extend(this);
            if !o.cut {
                assert_eq!(o.next_offset, 11);
                break;
            }
            from = o.next_offset;
            // The first record not handed out (past any marker in between).
            assert!(
                got.last().is_some_and(|l| from > *l),
                "{from} after {got:?}"
            );
        }
        assert_eq!(got, vec![3, 4, 5, 6, 8, 9, 10]);
        assert_eq!(walks, 4);
    }

    #[test]
    fn records_carry_their_batch_timestamp_type() {
        // A LogAppendTime batch (compressed, so the type survives decompression),
        // then a CreateTime batch.
        let mut b = RecordBatchBuilder::new(0)
            .compression(Compression::Lz4)
            .log_append_time(77_000);
        b.append(5, None, Some(b"a"));
        b.append(6, None, Some(b"b"));
        let mut bytes = b.build();
        bytes.extend(batch(2, 1, Compression::None));
        let mut got = Vec::new();
        let mut d = Decompressor::new();
        process_chunk(&chunk(&bytes, 0), &mut d, |r| {
            got.push((r.offset(), r.timestamp_type, r.timestamp()));
        })
        .unwrap();
        assert_eq!(
            got,
            vec![
                (0, TimestampType::LogAppendTime, 77_000),
                (1, TimestampType::LogAppendTime, 77_000),
                (2, TimestampType::CreateTime, 1000),
            ]
        );
        let (_, owned) = run(&chunk(&bytes, 0));
        assert_eq!(owned[0].timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(owned[2].timestamp_type, TimestampType::CreateTime);

        // A legacy magic-0 message set has no timestamps.
        let mut w = LegacyMessageSetWriter::new(0);
        w.append(0, 0, None, Some(b"old"));
        let (r, owned) = run(&chunk(&w.build(), 0));
        assert_eq!(r.unwrap().records, 1);
        assert_eq!(owned[0].timestamp_type, TimestampType::NoTimestamp);
    }

    #[test]
    fn a_batch_decompressing_beyond_the_limit_is_an_error_not_a_crash() {
        // 64 KiB of zeros compresses to far less than the 4 KiB limit.
        let big = vec![0u8; 64 << 10];
        let mut bytes = batch(0, 1, Compression::Gzip);
        let mut b = RecordBatchBuilder::new(1).compression(Compression::Zstd);
        b.append(1, None, Some(&big));
        bytes.extend(b.build());
        assert!(bytes.len() < 4096, "the compressed batch fits the limit");
        let c = chunk(&bytes, 0);
        let mut got = 0;
        let mut d = Decompressor::with_limit(4096);
        let e = process_chunk(&c, &mut d, |_| got += 1).unwrap_err();
        assert_eq!(got, 1, "the batch before it is delivered");
        assert_eq!(e.offset, 1);
        assert_eq!(e.partial.records, 1);
        assert!(
            matches!(e.error, DecodeError::DecompressedTooLarge { limit: 4096 }),
            "{:?}",
            e.error
        );
        assert!(e.to_string().contains("t-3 at offset 1"), "{e}");
        // The same chunk within a large enough limit is fine.
        let mut d = Decompressor::with_limit(1 << 20);
        let fresh = chunk(&bytes, 0);
        assert_eq!(process_chunk(&fresh, &mut d, |_| ()).unwrap().records, 2);
    }

    #[test]
    fn stale_chunks_deliver_nothing() {
        let bytes = batch(0, 2, Compression::None);
        let c = chunk(&bytes, 0);
        c.live_generation.store(9, Ordering::Release);
        let (r, got) = run(&c);
        assert!(r.unwrap().stale);
        assert!(got.is_empty());
    }
}
