//! Encoding record batches: [`RecordBatchBuilder`] for magic 2 and
//! [`LegacyMessageSetWriter`] for magic 0/1 message sets.
//!
//! Both produce exactly the bytes a broker would put in a Fetch response's records
//! field, with correct checksums, so tests, benchmarks, replay servers and scripted
//! brokers can serve them.
//!
//! ```
//! use weir_protocol::compression::Compression;
//! use weir_protocol::record::{Header, RecordBatchBuilder};
//!
//! let mut b = RecordBatchBuilder::new(100).compression(Compression::Lz4);
//! b.append(1_700_000_000_000, Some(b"key"), Some(b"value"));
//! b.append_with_headers(
//!     1_700_000_000_001,
//!     None,
//!     None,
//!     &[Header { key: b"trace", value: Some(b"abc") }],
//! );
//! let bytes: Vec<u8> = b.build();
//! # assert!(!bytes.is_empty());
//! ```

use super::batch::{ATTR_CONTROL, ATTR_LOG_APPEND_TIME, ATTR_TRANSACTIONAL, V2_CRC_START};
use super::{Header, NO_TIMESTAMP};
use crate::compression::{Compression, compress};
use crate::control::{ControlKind, ControlRecord};

fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}
fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}
fn uvarint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}
fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}
fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_uvarint(out, u64::from(zigzag32(v)));
}
fn varint_len(v: i32) -> usize {
    uvarint_len(u64::from(zigzag32(v)))
}
fn var_bytes_len(b: Option<&[u8]>) -> usize {
    match b {
        None => varint_len(-1),
        Some(b) => varint_len(b.len() as i32) + b.len(),
    }
}
fn put_var_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
    }
}

/// Builds one magic-2 record batch.
///
/// Configure with the by-value setters (before appending), append records, then
/// [`build`](Self::build). Offsets are assigned consecutively from the base offset;
/// [`skip_offsets`](Self::skip_offsets) leaves a gap, as compaction does.
#[derive(Debug, Clone)]
pub struct RecordBatchBuilder {
    base_offset: i64,
    partition_leader_epoch: i32,
    compression: Compression,
    log_append_time: Option<i64>,
    transactional: bool,
    control: bool,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
    next_delta: i32,
    count: i32,
    records: Vec<u8>,
}

impl RecordBatchBuilder {
    /// An empty, uncompressed, non-transactional batch starting at `base_offset`,
    /// with no producer id (-1) and partition leader epoch 0.
    pub fn new(base_offset: i64) -> Self {
        Self {
            base_offset,
            partition_leader_epoch: 0,
            compression: Compression::None,
            log_append_time: None,
            transactional: false,
            control: false,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            base_timestamp: None,
            max_timestamp: NO_TIMESTAMP,
            next_delta: 0,
            count: 0,
            records: Vec::new(),
        }
    }

    /// The compression codec for the records section.
    pub fn compression(mut self, c: Compression) -> Self {
        self.compression = c;
        self
    }

    /// The partition leader epoch (not covered by the CRC).
    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// The producer id, epoch and the sequence of the first record.
    pub fn producer(mut self, id: i64, epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = id;
        self.producer_epoch = epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Mark the batch transactional.
    pub fn transactional(mut self, yes: bool) -> Self {
        self.transactional = yes;
        self
    }

    /// Mark the batch as a control batch.
    pub fn control(mut self, yes: bool) -> Self {
        self.control = yes;
        self
    }

    /// Make the batch LogAppendTime, stamped `timestamp` (the max timestamp field);
    /// readers report it for every record.
    pub fn log_append_time(mut self, timestamp: i64) -> Self {
        self.log_append_time = Some(timestamp);
        self
    }

    /// The base timestamp (default: the first record's timestamp). Ignored once a
    /// record has been appended.
    pub fn base_timestamp(mut self, timestamp: i64) -> Self {
        if self.count == 0 {
            self.base_timestamp = Some(timestamp);
        }
        self
    }

    /// Records appended so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True before the first append.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The offset the next appended record gets.
    pub fn next_offset(&self) -> i64 {
        self.base_offset + i64::from(self.next_delta)
    }

    /// Leave `n` offsets unused (as if compaction removed those records).
    pub fn skip_offsets(&mut self, n: i32) -> &mut Self {
        self.next_delta = self.next_delta.saturating_add(n.max(0));
        self
    }

    /// Append a record without headers.
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> &mut Self {
        self.append_with_headers(timestamp, key, value, &[])
    }

    /// Append a record with headers.
    pub fn append_with_headers(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header<'_>],
    ) -> &mut Self {
        let base = *self.base_timestamp.get_or_insert(timestamp);
        self.max_timestamp = self.max_timestamp.max(timestamp);
        let ts_delta = zigzag64(timestamp.wrapping_sub(base));
        let delta = self.next_delta;
        let mut body = 1 + uvarint_len(ts_delta) + varint_len(delta);
        body += var_bytes_len(key) + var_bytes_len(value);
        body += varint_len(headers.len() as i32);
        for h in headers {
            body += var_bytes_len(Some(h.key)) + var_bytes_len(h.value);
        }
        let out = &mut self.records;
        out.reserve(body + 5);
        put_varint(out, body as i32);
        out.push(0);
        put_uvarint(out, ts_delta);
        put_varint(out, delta);
        put_var_bytes(out, key);
        put_var_bytes(out, value);
        put_varint(out, headers.len() as i32);
        for h in headers {
            put_var_bytes(out, Some(h.key));
            put_var_bytes(out, h.value);
        }
        self.next_delta += 1;
        self.count += 1;
        self
    }

    fn attributes(&self) -> i16 {
        let mut a = i16::from(self.compression.id());
        if self.log_append_time.is_some() {
            a |= ATTR_LOG_APPEND_TIME;
        }
        if self.transactional {
            a |= ATTR_TRANSACTIONAL;
        }
        if self.control {
            a |= ATTR_CONTROL;
        }
        a
    }

    /// Append the encoded batch to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.reserve(61 + self.records.len());
        out.extend_from_slice(&self.base_offset.to_be_bytes());
        out.extend_from_slice(&[0; 4]); // batch length, filled below
        out.extend_from_slice(&self.partition_leader_epoch.to_be_bytes());
        out.push(2);
        out.extend_from_slice(&[0; 4]); // crc, filled below
        out.extend_from_slice(&self.attributes().to_be_bytes());
        let last_delta = (self.next_delta - 1).max(0);
        out.extend_from_slice(&last_delta.to_be_bytes());
        let base_ts = self.base_timestamp.unwrap_or(NO_TIMESTAMP);
        out.extend_from_slice(&base_ts.to_be_bytes());
        let max_ts = self.log_append_time.unwrap_or(self.max_timestamp);
        out.extend_from_slice(&max_ts.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.producer_epoch.to_be_bytes());
        out.extend_from_slice(&self.base_sequence.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        compress(self.compression, &self.records, out);
        let len = (out.len() - start - 12) as i32;
        out[start + 8..start + 12].copy_from_slice(&len.to_be_bytes());
        let crc = crc32c::crc32c(&out[start + V2_CRC_START..]);
        out[start + 17..start + 21].copy_from_slice(&crc.to_be_bytes());
    }

    /// The encoded batch.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }

    /// A control batch holding one end-transaction marker, as a transaction
    /// coordinator makes brokers write it.
    pub fn control_marker(
        offset: i64,
        producer_id: i64,
        producer_epoch: i16,
        kind: ControlKind,
        coordinator_epoch: i32,
        timestamp: i64,
    ) -> Vec<u8> {
        let mut b = Self::new(offset)
            .producer(producer_id, producer_epoch, -1)
            .transactional(true)
            .control(true);
        b.append(
            timestamp,
            Some(&ControlRecord::encode_key(kind)),
            Some(&ControlRecord::encode_value(coordinator_epoch)),
        );
        b.build()
    }
}

/// Append one legacy message (magic 0 or 1) to `out`, with its CRC32. `timestamp`
/// is written only for magic 1. Use it to hand-build unusual message sets; the
/// [`LegacyMessageSetWriter`] covers ordinary ones.
pub fn write_legacy_message(
    out: &mut Vec<u8>,
    offset: i64,
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) {
    let start = out.len();
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&[0; 4]); // size
    out.extend_from_slice(&[0; 4]); // crc
    out.push(magic as u8);
    out.push(attributes as u8);
    if magic >= 1 {
        out.extend_from_slice(&timestamp.to_be_bytes());
    }
    for b in [key, value] {
        match b {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(b) => {
                out.extend_from_slice(&(b.len() as i32).to_be_bytes());
                out.extend_from_slice(b);
            }
        }
    }
    let size = (out.len() - start - 12) as i32;
    out[start + 8..start + 12].copy_from_slice(&size.to_be_bytes());
    let crc = crc32fast::hash(&out[start + 16..]);
    out[start + 12..start + 16].copy_from_slice(&crc.to_be_bytes());
}

/// One message kept by the legacy writer: offset, timestamp, key, value.
type LegacyEntry = (i64, i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// Writes a legacy (magic 0 or 1) message set, plain or as one compressed wrapper.
#[derive(Debug, Clone)]
pub struct LegacyMessageSetWriter {
    magic: i8,
    messages: Vec<LegacyEntry>,
}

impl LegacyMessageSetWriter {
    /// A writer for `magic` 0 or 1 (other values are written as given, for tests of
    /// malformed input).
    pub fn new(magic: i8) -> Self {
        Self {
            magic,
            messages: Vec::new(),
        }
    }

    /// Append a message at an absolute `offset`; `timestamp` is ignored for magic 0.
    pub fn append(
        &mut self,
        offset: i64,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> &mut Self {
        self.messages.push((
            offset,
            timestamp,
            key.map(<[u8]>::to_vec),
            value.map(<[u8]>::to_vec),
        ));
        self
    }

    /// The messages as a plain (uncompressed) message set.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (offset, ts, k, v) in &self.messages {
            write_legacy_message(
                &mut out,
                *offset,
                self.magic,
                0,
                *ts,
                k.as_deref(),
                v.as_deref(),
            );
        }
        out
    }

    /// The messages compressed into one wrapper message whose offset is the last
    /// message's. Magic 1 writes inner offsets relative to the first message; magic
    /// 0 writes them absolute. With `log_append_time`, the wrapper is LogAppendTime
    /// stamped with it; otherwise its timestamp is the largest inner timestamp.
    pub fn build_compressed(&self, codec: Compression, log_append_time: Option<i64>) -> Vec<u8> {
        let first = self.messages.first().map_or(0, |m| m.0);
        let last = self.messages.last().map_or(0, |m| m.0);
        let mut inner = Vec::new();
        for (offset, ts, k, v) in &self.messages {
            let o = if self.magic >= 1 {
                offset - first
            } else {
                *offset
            };
            write_legacy_message(
                &mut inner,
                o,
                self.magic,
                0,
                *ts,
                k.as_deref(),
                v.as_deref(),
            );
        }
        let mut value = Vec::new();
        compress(codec, &inner, &mut value);
        let mut attributes = codec.id() as i8;
        let ts = match log_append_time {
            Some(t) => {
                attributes |= 0x08;
                t
            }
            None => self
                .messages
                .iter()
                .map(|m| m.1)
                .max()
                .unwrap_or(NO_TIMESTAMP),
        };
        let mut out = Vec::new();
        write_legacy_message(
            &mut out,
            last,
            self.magic,
            attributes,
            ts,
            None,
            Some(&value),
        );
        out
    }
}
