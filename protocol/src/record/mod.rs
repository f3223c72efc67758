//! Record batches and records, read in place from a Fetch response's bytes.
//!
//! A partition's `records` blob is a sequence of entries, each `[offset i64][length
//! i32][...]`, with the magic byte at position 16 in both formats:
//!
//! * magic 2: a [`RecordBatch`] (Kafka 0.11+), CRC32C, varint records, headers,
//!   producer ids and transactions;
//! * magic 0 and 1: a legacy message ([`LegacyMessage`]), CRC32, possibly a compressed
//!   wrapper around an inner message set.
//!
//! [`Batches`] walks a blob and yields [`Batch`]es of either kind; a truncated final
//! entry (brokers cut responses at `max.partition.fetch.bytes`) ends the walk without
//! an error. [`Batch::records`] yields borrowed [`Record`]s: keys, values and headers
//! are slices of the input (or of a [`Decompressor`]'s buffer when compressed); no
//! allocation happens per record or per header.
//!
//! Counts and lengths read from the input are never trusted to size anything. A
//! malformed batch yields one error and iteration over it ends.

mod batch;
mod builder;
mod legacy;

pub use batch::{
    ATTR_CONTROL, ATTR_DELETE_HORIZON, ATTR_LOG_APPEND_TIME, ATTR_TRANSACTIONAL, LOG_OVERHEAD,
    RecordBatch, V2_CRC_START, V2_HEADER_LEN, V2_MIN_BATCH_LENGTH, V2Records,
};
pub use builder::{LegacyMessageSetWriter, RecordBatchBuilder, write_legacy_message};
pub use legacy::{LegacyMessage, LegacyRecords, MAGIC0_MIN_SIZE, MAGIC1_MIN_SIZE};

use crate::compression::{Compression, Decompressor};
use crate::control::ControlRecord;
use crate::error::DecodeError;

/// Kafka's "no timestamp" value (magic-0 messages carry none).
pub const NO_TIMESTAMP: i64 = -1;

/// How a timestamp was assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimestampType {
    /// Magic 0: no timestamps.
    NoTimestamp,
    /// The producer's clock.
    CreateTime,
    /// The broker's clock when it appended the batch.
    LogAppendTime,
}

/// One record header: a key and a nullable value, both borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The header key (UTF-8 by convention; not checked).
    pub key: &'a [u8],
    /// The header value; `None` is a null value, distinct from empty.
    pub value: Option<&'a [u8]>,
}

/// A record's headers, parsed lazily as they are iterated. Malformed headers yield
/// one `Err`, then the iterator ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct Headers<'a> {
    buf: &'a [u8],
    remaining: u32,
}

impl<'a> Headers<'a> {
    #[inline]
    pub(crate) fn new(buf: &'a [u8], count: u32) -> Self {
        Self {
            buf,
            remaining: count,
        }
    }

    /// No headers (legacy messages).
    #[inline]
    pub fn empty() -> Self {
        Self::default()
    }

    /// Headers not yet iterated (as the record claims).
    #[inline]
    pub fn len(&self) -> usize {
        self.remaining as usize
    }

    /// True when no headers remain.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }
}

impl<'a> Iterator for Headers<'a> {
    type Item = Result<Header<'a>, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            if self.buf.is_empty() {
                return None;
            }
            let n = self.buf.len();
            self.buf = &[];
            return Some(Err(DecodeError::TrailingBytes {
                what: "record headers",
                remaining: n,
            }));
        }
        self.remaining -= 1;
        match self.parse_next() {
            Ok(h) => Some(Ok(h)),
            Err(e) => {
                self.remaining = 0;
                self.buf = &[];
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining as usize + 1))
    }
}

/// One record, borrowed from its batch (or from the decompressor's buffer).
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub(crate) offset: i64,
    pub(crate) timestamp: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) headers: Headers<'a>,
    pub(crate) attributes: i8,
    pub(crate) sequence: i32,
}

impl<'a> Record<'a> {
    /// The record's absolute offset.
    #[inline]
    pub fn offset(&self) -> i64 {
        self.offset
    }
    /// The record's timestamp in milliseconds since the epoch (the batch's max
    /// timestamp for LogAppendTime batches; [`NO_TIMESTAMP`] for magic 0).
    #[inline]
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }
    /// The key; `None` when null, `Some(&[])` when empty.
    #[inline]
    pub fn key(&self) -> Option<&'a [u8]> {
        self.key
    }
    /// The value; `None` when null (a tombstone), `Some(&[])` when empty.
    #[inline]
    pub fn value(&self) -> Option<&'a [u8]> {
        self.value
    }
    /// The headers, parsed as they are iterated (malformed header bytes are found,
    /// and reported as an `Err` item, only when iterated; the batch CRC covers them).
    #[inline]
    pub fn headers(&self) -> Headers<'a> {
        self.headers
    }
    /// The record's attributes byte (unused by Kafka for magic 2; the message
    /// attributes for legacy messages).
    #[inline]
    pub fn attributes(&self) -> i8 {
        self.attributes
    }
    /// The producer sequence of this record (-1 when the batch has none).
    #[inline]
    pub fn sequence(&self) -> i32 {
        self.sequence
    }
}

/// Records of either format, yielded in order.
#[derive(Debug, Clone)]
pub enum RecordIter<'a> {
    /// Records of a magic-2 batch.
    V2(V2Records<'a>),
    /// Records of a legacy message or compressed wrapper.
    Legacy(LegacyRecords<'a>),
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<Record<'a>, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::V2(it) => it.next(),
            Self::Legacy(it) => it.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Self::V2(it) => it.size_hint(),
            Self::Legacy(it) => it.size_hint(),
        }
    }
}

/// One entry of a records blob: a magic-2 batch or a legacy (magic 0/1) message.
#[derive(Debug, Clone, Copy)]
pub enum Batch<'a> {
    /// A magic-2 record batch.
    V2(RecordBatch<'a>),
    /// A legacy message: a single record, or a compressed wrapper of inner messages.
    Legacy(LegacyMessage<'a>),
}

impl<'a> Batch<'a> {
    /// Parse one entry that spans exactly `buf`.
    pub fn parse(buf: &'a [u8]) -> Result<Self, DecodeError> {
        match buf.get(16).map(|&m| m as i8) {
            Some(2) => RecordBatch::parse(buf).map(Batch::V2),
            Some(0 | 1) => LegacyMessage::parse(buf).map(Batch::Legacy),
            Some(m) => Err(DecodeError::UnsupportedMagic(m)),
            None => Err(DecodeError::Truncated {
                what: "batch magic",
                needed: 17,
                remaining: buf.len(),
            }),
        }
    }

    /// The entry's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        match self {
            Self::V2(b) => b.bytes(),
            Self::Legacy(m) => m.bytes(),
        }
    }

    /// The magic byte: 0, 1 or 2.
    pub fn magic(&self) -> i8 {
        match self {
            Self::V2(b) => b.magic(),
            Self::Legacy(m) => m.magic(),
        }
    }

    /// The first offset of the batch. For a compressed legacy wrapper, which carries
    /// only its last offset, this is that last offset: the inner offsets are known
    /// only after decompression (see [`records`](Self::records)).
    pub fn base_offset(&self) -> i64 {
        match self {
            Self::V2(b) => b.base_offset(),
            Self::Legacy(m) => m.offset(),
        }
    }

    /// The last offset the batch covers (what the read_committed filter compares).
    pub fn last_offset(&self) -> i64 {
        match self {
            Self::V2(b) => b.last_offset(),
            Self::Legacy(m) => m.offset(),
        }
    }

    /// The offset after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }

    /// Whether the batch belongs to a transaction (always false for legacy).
    pub fn is_transactional(&self) -> bool {
        match self {
            Self::V2(b) => b.is_transactional(),
            Self::Legacy(_) => false,
        }
    }

    /// Whether the batch holds control records (always false for legacy).
    pub fn is_control(&self) -> bool {
        match self {
            Self::V2(b) => b.is_control(),
            Self::Legacy(_) => false,
        }
    }

    /// The producer id, or -1 (always -1 for legacy).
    pub fn producer_id(&self) -> i64 {
        match self {
            Self::V2(b) => b.producer_id(),
            Self::Legacy(_) => -1,
        }
    }

    /// The producer epoch, or -1 (always -1 for legacy).
    pub fn producer_epoch(&self) -> i16 {
        match self {
            Self::V2(b) => b.producer_epoch(),
            Self::Legacy(_) => -1,
        }
    }

    /// The partition leader epoch, or -1 for legacy messages.
    pub fn partition_leader_epoch(&self) -> i32 {
        match self {
            Self::V2(b) => b.partition_leader_epoch(),
            Self::Legacy(_) => -1,
        }
    }

    /// The compression codec.
    pub fn compression(&self) -> Result<Compression, DecodeError> {
        match self {
            Self::V2(b) => b.compression(),
            Self::Legacy(m) => m.compression(),
        }
    }

    /// The timestamp type.
    pub fn timestamp_type(&self) -> TimestampType {
        match self {
            Self::V2(b) => b.timestamp_type(),
            Self::Legacy(m) => m.timestamp_type(),
        }
    }

    /// Check the stored checksum (CRC32C for magic 2, CRC32 for legacy messages).
    pub fn verify_crc(&self) -> Result<(), DecodeError> {
        match self {
            Self::V2(b) => b.verify_crc(),
            Self::Legacy(m) => m.verify_crc(),
        }
    }

    /// For a control batch, its control record (abort or commit marker); `None` for
    /// data batches and for control batches emptied by compaction. Control batches are written uncompressed by brokers; a
    /// compressed one is reported as an error.
    pub fn control_record(&self) -> Result<Option<ControlRecord>, DecodeError> {
        match self {
            Self::V2(b) if b.is_control() => {
                let mut it = b.records_uncompressed()?;
                match it.next() {
                    Some(r) => ControlRecord::parse(&r?).map(Some),
                    // Compaction can leave a control batch empty.
                    None => Ok(None),
                }
            }
            _ => Ok(None),
        }
    }

    /// Iterate the records, decompressing into `d`'s buffer when compressed.
    pub fn records<'s>(&self, d: &'s mut Decompressor) -> Result<RecordIter<'s>, DecodeError>
    where
        'a: 's,
    {
        match self {
            Self::V2(b) => b.records(d).map(RecordIter::V2),
            Self::Legacy(m) => m.records(d).map(RecordIter::Legacy),
        }
    }
}

/// Iterates the entries of a partition's records blob.
///
/// Yields `Ok(Batch)` per complete entry. A truncated final entry ends iteration
/// normally ([`is_truncated`](Self::is_truncated) then reports it). A negative or
/// too-small length, or an unknown magic, yields one `Err`, then iteration ends: the
/// blob cannot be resynchronised after a bad length.
///
/// When the very first entry is truncated nothing is yielded and
/// [`consumed`](Self::consumed) stays 0: the fetch size is smaller than that batch,
/// and the caller must fetch more bytes to make progress.
#[derive(Debug, Clone)]
pub struct Batches<'a> {
    buf: &'a [u8],
    pos: usize,
    truncated: bool,
    done: bool,
}

impl<'a> Batches<'a> {
    /// Walk `records` (a Fetch partition's records bytes).
    pub fn new(records: &'a [u8]) -> Self {
        Self {
            buf: records,
            pos: 0,
            truncated: false,
            done: false,
        }
    }

    /// Bytes of complete entries yielded so far.
    pub fn consumed(&self) -> usize {
        self.pos
    }

    /// True once iteration stopped at a partial final entry.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// The bytes not yet yielded (a truncated tail, once iteration has ended).
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    fn fail(&mut self, e: DecodeError) -> Option<Result<Batch<'a>, DecodeError>> {
        self.done = true;
        Some(Err(e))
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = Result<Batch<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = &self.buf[self.pos..];
        if rest.is_empty() {
            self.done = true;
            return None;
        }
        let Some((head, _)) = rest.split_first_chunk::<LOG_OVERHEAD>() else {
            self.done = true;
            self.truncated = true;
            return None;
        };
        let len = i32::from_be_bytes([head[8], head[9], head[10], head[11]]);
        if len < 0 {
            return self.fail(DecodeError::NegativeLength {
                what: "batch length",
                length: i64::from(len),
            });
        }
        if (len as usize) < MAGIC0_MIN_SIZE {
            return self.fail(DecodeError::Invalid {
                what: "batch length",
                reason: "smaller than any batch or message header",
            });
        }
        let total = LOG_OVERHEAD + len as usize;
        if rest.len() < total {
            // Before declaring a partial tail, reject an unknown magic we can see.
            if let Some(&m) = rest.get(16)
                && !(0..=2).contains(&(m as i8))
            {
                return self.fail(DecodeError::UnsupportedMagic(m as i8));
            }
            self.done = true;
            self.truncated = true;
            return None;
        }
        let entry = &rest[..total];
        match Batch::parse(entry) {
            Ok(b) => {
                self.pos += total;
                Some(Ok(b))
            }
            Err(e) => self.fail(e),
        }
    }
}

#[cfg(test)]
mod tests;
