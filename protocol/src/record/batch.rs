//! Magic-2 record batches (Kafka 0.11+), read in place.
//!
//! Layout (big-endian), offsets from the batch start:
//!
//! ```text
//!  0 base_offset i64        8 batch_length i32        12 partition_leader_epoch i32
//! 16 magic i8              17 crc u32 (CRC32C of bytes 21..end)
//! 21 attributes i16        23 last_offset_delta i32   27 base_timestamp i64
//! 35 max_timestamp i64     43 producer_id i64         51 producer_epoch i16
//! 53 base_sequence i32     57 record_count i32        61 records...
//! ```
//!
//! Each record: `length varint, attributes i8, timestamp_delta varlong,
//! offset_delta varint, key (varint length, -1 null), value (likewise),
//! header_count varint, headers (varint key length, key, varint value length, value)`.

use super::{Header, Headers, Record, TimestampType};
use crate::compression::{Compression, Decompressor};
use crate::error::DecodeError;

/// Bytes before the records of a magic-2 batch.
pub const V2_HEADER_LEN: usize = 61;
/// The smallest legal `batch_length` (the header after the length field).
pub const V2_MIN_BATCH_LENGTH: i32 = (V2_HEADER_LEN - LOG_OVERHEAD) as i32;
/// Offset and length fields that precede every batch or legacy message.
pub const LOG_OVERHEAD: usize = 12;
/// Where the CRC-covered range of a magic-2 batch starts (the attributes field).
pub const V2_CRC_START: usize = 21;

/// Attribute bit: timestamps are LogAppendTime.
pub const ATTR_LOG_APPEND_TIME: i16 = 0x08;
/// Attribute bit: the batch belongs to a transaction.
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
/// Attribute bit: the batch holds control records.
pub const ATTR_CONTROL: i16 = 0x20;
/// Attribute bit: the batch has a delete horizon (compaction metadata).
pub const ATTR_DELETE_HORIZON: i16 = 0x40;

/// A magic-2 record batch: a view over its bytes, nothing copied.
///
/// Construct with [`RecordBatch::parse`] (or through [`super::Batches`]); every header
/// accessor then reads fixed offsets without further checks.
#[derive(Clone, Copy)]
pub struct RecordBatch<'a> {
    buf: &'a [u8],
    header: &'a [u8; V2_HEADER_LEN],
    records: &'a [u8],
}

impl std::fmt::Debug for RecordBatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordBatch")
            .field("base_offset", &self.base_offset())
            .field("last_offset_delta", &self.last_offset_delta())
            .field("record_count", &self.record_count())
            .field("attributes", &self.attributes())
            .field("producer_id", &self.producer_id())
            .field("len", &self.len())
            .finish()
    }
}

#[inline(always)]
fn be_i16(b: &[u8; V2_HEADER_LEN], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
#[inline(always)]
fn be_i32(b: &[u8; V2_HEADER_LEN], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
#[inline(always)]
fn be_i64(b: &[u8; V2_HEADER_LEN], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(x)
}

impl<'a> RecordBatch<'a> {
    /// View `buf` as one magic-2 batch. `buf` must be exactly the batch: its length
    /// field must match, the magic must be 2.
    pub fn parse(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let Some((header, records)) = buf.split_first_chunk::<V2_HEADER_LEN>() else {
            return Err(DecodeError::Truncated {
                what: "record batch header",
                needed: V2_HEADER_LEN,
                remaining: buf.len(),
            });
        };
        let batch = Self {
            buf,
            header,
            records,
        };
        if batch.magic() != 2 {
            return Err(DecodeError::UnsupportedMagic(batch.magic()));
        }
        let len = batch.batch_length();
        if len < V2_MIN_BATCH_LENGTH {
            return Err(DecodeError::Invalid {
                what: "record batch length",
                reason: "smaller than a batch header",
            });
        }
        if len as usize + LOG_OVERHEAD != buf.len() {
            return Err(DecodeError::Invalid {
                what: "record batch length",
                reason: "does not match the bytes given",
            });
        }
        Ok(batch)
    }

    /// The whole batch, header included.
    #[inline]
    pub fn bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Total bytes of the batch (`batch_length + 12`).
    #[inline]
    pub fn len(&self) -> usize {
        V2_HEADER_LEN + self.records.len()
    }

    /// Never true: a batch has at least its header.
    #[inline]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The offset of the first record (before compaction).
    #[inline]
    pub fn base_offset(&self) -> i64 {
        be_i64(self.header, 0)
    }
    /// The batch length field: bytes after it (total length minus 12).
    #[inline]
    pub fn batch_length(&self) -> i32 {
        be_i32(self.header, 8)
    }
    /// The partition leader epoch the broker stamped (not covered by the CRC).
    #[inline]
    pub fn partition_leader_epoch(&self) -> i32 {
        be_i32(self.header, 12)
    }
    /// The magic byte (2).
    #[inline]
    pub fn magic(&self) -> i8 {
        self.header[16] as i8
    }
    /// The stored CRC32C.
    #[inline]
    pub fn crc(&self) -> u32 {
        be_i32(self.header, 17) as u32
    }
    /// The raw attributes.
    #[inline]
    pub fn attributes(&self) -> i16 {
        be_i16(self.header, 21)
    }
    /// The compression codec (attribute bits 0..=2); an unknown codec is an error.
    #[inline]
    pub fn compression(&self) -> Result<Compression, DecodeError> {
        Compression::from_attributes(self.attributes())
    }
    /// The timestamp type (attribute bit 3).
    #[inline]
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes() & ATTR_LOG_APPEND_TIME != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }
    /// Whether the batch belongs to a transaction (attribute bit 4).
    #[inline]
    pub fn is_transactional(&self) -> bool {
        self.attributes() & ATTR_TRANSACTIONAL != 0
    }
    /// Whether the batch holds control records (attribute bit 5).
    #[inline]
    pub fn is_control(&self) -> bool {
        self.attributes() & ATTR_CONTROL != 0
    }
    /// Whether the batch carries a delete horizon in its base timestamp (bit 6).
    #[inline]
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes() & ATTR_DELETE_HORIZON != 0
    }
    /// The offset delta of the last record written to the batch.
    #[inline]
    pub fn last_offset_delta(&self) -> i32 {
        be_i32(self.header, 23)
    }
    /// The timestamp of the first record; record timestamps are deltas from it.
    #[inline]
    pub fn base_timestamp(&self) -> i64 {
        be_i64(self.header, 27)
    }
    /// The largest record timestamp (the broker's time for LogAppendTime batches).
    #[inline]
    pub fn max_timestamp(&self) -> i64 {
        be_i64(self.header, 35)
    }
    /// The producer id (-1 when the producer is neither idempotent nor transactional).
    #[inline]
    pub fn producer_id(&self) -> i64 {
        be_i64(self.header, 43)
    }
    /// The producer epoch.
    #[inline]
    pub fn producer_epoch(&self) -> i16 {
        be_i16(self.header, 51)
    }
    /// The sequence number of the first record (-1 when not idempotent).
    #[inline]
    pub fn base_sequence(&self) -> i32 {
        be_i32(self.header, 53)
    }
    /// The record count the header claims (checked while iterating, never trusted to
    /// size anything).
    #[inline]
    pub fn record_count(&self) -> i32 {
        be_i32(self.header, 57)
    }
    /// `base_offset + last_offset_delta`.
    #[inline]
    pub fn last_offset(&self) -> i64 {
        self.base_offset()
            .wrapping_add(i64::from(self.last_offset_delta()))
    }
    /// The offset after this batch: where the next fetch starts.
    #[inline]
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }
    /// The bytes after the header: the records, compressed or not.
    #[inline]
    pub fn records_bytes(&self) -> &'a [u8] {
        self.records
    }

    /// The CRC32C computed over bytes 21..end (attributes to the end of the batch).
    pub fn compute_crc(&self) -> u32 {
        let c = crc32c::crc32c(&self.header[V2_CRC_START..]);
        crc32c::crc32c_append(c, self.records)
    }

    /// Check the stored CRC32C against the bytes (Kafka's `check.crcs`).
    pub fn verify_crc(&self) -> Result<(), DecodeError> {
        let computed = self.compute_crc();
        if computed == self.crc() {
            Ok(())
        } else {
            Err(DecodeError::CrcMismatch {
                stored: self.crc(),
                computed,
            })
        }
    }

    /// Iterate the records of an uncompressed batch without a decompressor.
    /// A compressed batch is an error here; use [`records`](Self::records).
    pub fn records_uncompressed(&self) -> Result<V2Records<'a>, DecodeError> {
        match self.compression()? {
            Compression::None => Ok(V2Records::new(self, self.records)),
            _ => Err(DecodeError::Invalid {
                what: "record batch",
                reason: "compressed; iterate with a Decompressor",
            }),
        }
    }

    /// Iterate the records, decompressing into `d`'s buffer when compressed.
    pub fn records<'s>(&self, d: &'s mut Decompressor) -> Result<V2Records<'s>, DecodeError>
    where
        'a: 's,
    {
        let codec = self.compression()?;
        let body = d.decompress(codec, self.records)?;
        Ok(V2Records::new(self, body))
    }
}

/// The records of a magic-2 batch, yielded in order as borrowed [`Record`]s.
///
/// Yields exactly `record_count` records; a record overrunning the batch, a batch
/// holding more or fewer records than its count, or a malformed field yields one
/// `Err` and then the iterator ends.
#[derive(Debug, Clone)]
pub struct V2Records<'a> {
    buf: &'a [u8],
    pos: usize,
    remaining: u32,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
    base_sequence: i32,
    failed: bool,
    negative_count: bool,
}

/// Read an unsigned LEB128 varint of at most `max` bytes from `buf[*pos..]`.
#[inline(always)]
fn uvarint(
    buf: &[u8],
    pos: &mut usize,
    max: usize,
    what: &'static str,
) -> Result<u64, DecodeError> {
    // Fast paths, inlined: one byte (values < 128) and two bytes (< 16384) cover
    // the lengths, deltas and counts of ordinary records (a 100-byte value's record
    // has four two-byte varints). Everything else, errors included, goes to the slow
    // path, which starts over at `*pos`.
    let p = *pos;
    if let Some(&b0) = buf.get(p) {
        if b0 < 0x80 {
            *pos = p + 1;
            return Ok(u64::from(b0));
        }
        if let Some(&b1) = buf.get(p + 1)
            && b1 < 0x80
            && max >= 2
        {
            *pos = p + 2;
            return Ok(u64::from(b0 & 0x7f) | (u64::from(b1) << 7));
        }
    }
    let (v, next) = uvarint_slow(buf, p, max, what)?;
    *pos = next;
    Ok(v)
}

/// The general varint reader at `pos`: returns the value and the position after it.
/// Takes and returns the position by value so that callers' positions can live in
/// registers (a `&mut usize` passed out of line forces them into memory).
#[cold]
#[inline(never)]
fn uvarint_slow(
    buf: &[u8],
    pos: usize,
    max: usize,
    what: &'static str,
) -> Result<(u64, usize), DecodeError> {
    let mut value = 0u64;
    for i in 0..max {
        let Some(&b) = buf.get(pos + i) else {
            return Err(DecodeError::Truncated {
                what,
                needed: i + 1,
                remaining: buf.len().saturating_sub(pos),
            });
        };
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok((value, pos + i + 1));
        }
    }
    Err(DecodeError::VarintTooLong { what })
}

#[inline(always)]
fn unzigzag32(v: u32) -> i32 {
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

/// A 32-bit varint still zig-zag encoded (even: `v >> 1`; odd: negative).
#[inline(always)]
fn zigzag_varint32(buf: &[u8], pos: &mut usize, what: &'static str) -> Result<u32, DecodeError> {
    // The one- and two-byte forms always fit 32 bits: decode them here without the
    // range check the general path needs.
    let p = *pos;
    if let Some(&b0) = buf.get(p) {
        if b0 < 0x80 {
            *pos = p + 1;
            return Ok(u32::from(b0));
        }
        if let Some(&b1) = buf.get(p + 1)
            && b1 < 0x80
        {
            *pos = p + 2;
            return Ok(u32::from(b0 & 0x7f) | (u32::from(b1) << 7));
        }
    }
    let (v, next) = varint32_slow(buf, p, what)?;
    *pos = next;
    Ok(v)
}

#[cold]
#[inline(never)]
fn varint32_slow(buf: &[u8], pos: usize, what: &'static str) -> Result<(u32, usize), DecodeError> {
    let (v, next) = uvarint_slow(buf, pos, 5, what)?;
    let v = u32::try_from(v).map_err(|_| DecodeError::VarintTooLong { what })?;
    Ok((v, next))
}

/// A zig-zag varint (32-bit).
#[inline(always)]
pub(crate) fn varint(buf: &[u8], pos: &mut usize, what: &'static str) -> Result<i32, DecodeError> {
    zigzag_varint32(buf, pos, what).map(unzigzag32)
}

/// A zig-zag varlong (64-bit).
#[inline(always)]
fn varlong(buf: &[u8], pos: &mut usize, what: &'static str) -> Result<i64, DecodeError> {
    let v = uvarint(buf, pos, 10, what)?;
    Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
}

/// Nullable bytes with a zig-zag varint length (-1 null) inside `buf`.
#[inline(always)]
pub(crate) fn var_bytes<'a>(
    buf: &'a [u8],
    pos: &mut usize,
    what: &'static str,
) -> Result<Option<&'a [u8]>, DecodeError> {
    // Zig-zag: an even encoding is a length of `z >> 1`, 1 is -1 (null), any other
    // odd value a negative length. Testing the low bit skips the sign decoding.
    let z = zigzag_varint32(buf, pos, what)?;
    if z & 1 != 0 {
        if z == 1 {
            return Ok(None);
        }
        return Err(DecodeError::NegativeLength {
            what,
            length: i64::from(unzigzag32(z)),
        });
    }
    let len = (z >> 1) as usize;
    let start = *pos;
    match buf.get(start..start + len) {
        Some(b) => {
            *pos = start + len;
            Ok(Some(b))
        }
        None => Err(DecodeError::LengthTooLarge {
            what,
            length: len as u64,
            remaining: buf.len() - start,
        }),
    }
}

impl<'a> V2Records<'a> {
    fn new(batch: &RecordBatch<'_>, body: &'a [u8]) -> Self {
        let count = batch.record_count();
        Self {
            buf: body,
            pos: 0,
            // A negative count is reported on the first call to `next`.
            remaining: count.max(0) as u32,
            base_offset: batch.base_offset(),
            base_timestamp: batch.base_timestamp(),
            log_append_time: (batch.timestamp_type() == TimestampType::LogAppendTime)
                .then(|| batch.max_timestamp()),
            base_sequence: batch.base_sequence(),
            failed: false,
            negative_count: count < 0,
        }
    }

    /// Records the header says remain.
    pub fn remaining_count(&self) -> u32 {
        self.remaining
    }

    #[inline(always)]
    fn parse_one(&mut self) -> Result<Record<'a>, DecodeError> {
        let buf = self.buf;
        let len = varint(buf, &mut self.pos, "record length")?;
        if len < 0 {
            return Err(DecodeError::NegativeLength {
                what: "record length",
                length: i64::from(len),
            });
        }
        let start = self.pos;
        let Some(rec) = buf.get(start..start + len as usize) else {
            return Err(DecodeError::LengthTooLarge {
                what: "record length",
                length: len as u64,
                remaining: buf.len() - start,
            });
        };
        self.pos = start + len as usize;
        let mut p = 0usize;
        let Some(&attributes) = rec.first() else {
            return Err(DecodeError::Truncated {
                what: "record attributes",
                needed: 1,
                remaining: 0,
            });
        };
        p += 1;
        let ts_delta = varlong(rec, &mut p, "record timestamp delta")?;
        let offset_delta = varint(rec, &mut p, "record offset delta")?;
        let key = var_bytes(rec, &mut p, "record key")?;
        let value = var_bytes(rec, &mut p, "record value")?;
        let header_count = varint(rec, &mut p, "record header count")?;
        if header_count < 0 {
            return Err(DecodeError::NegativeLength {
                what: "record header count",
                length: i64::from(header_count),
            });
        }
        let headers_bytes = &rec[p..];
        // Each header takes at least two bytes (two varint lengths).
        if header_count as usize > headers_bytes.len() / 2 {
            return Err(DecodeError::LengthTooLarge {
                what: "record header count",
                length: header_count as u64,
                remaining: headers_bytes.len(),
            });
        }
        if header_count == 0 && !headers_bytes.is_empty() {
            return Err(DecodeError::TrailingBytes {
                what: "record",
                remaining: headers_bytes.len(),
            });
        }
        let timestamp = match self.log_append_time {
            Some(t) => t,
            None => self.base_timestamp.wrapping_add(ts_delta),
        };
        let sequence = if self.base_sequence < 0 {
            -1
        } else {
            // Kafka wraps sequences at i32::MAX.
            let s = i64::from(self.base_sequence) + i64::from(offset_delta);
            if s > i64::from(i32::MAX) {
                (s - i64::from(i32::MAX) - 1) as i32
            } else {
                s as i32
            }
        };
        Ok(Record {
            offset: self.base_offset.wrapping_add(i64::from(offset_delta)),
            timestamp,
            key,
            value,
            headers: Headers::new(headers_bytes, header_count as u32),
            attributes: attributes as i8,
            sequence,
        })
    }
}

impl<'a> Iterator for V2Records<'a> {
    type Item = Result<Record<'a>, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.negative_count {
            self.failed = true;
            return Some(Err(DecodeError::Invalid {
                what: "record count",
                reason: "negative",
            }));
        }
        if self.remaining == 0 {
            if self.pos < self.buf.len() {
                self.failed = true;
                return Some(Err(DecodeError::Invalid {
                    what: "record batch",
                    reason: "holds more records than its record count",
                }));
            }
            return None;
        }
        if self.pos >= self.buf.len() {
            self.failed = true;
            return Some(Err(DecodeError::Invalid {
                what: "record batch",
                reason: "holds fewer records than its record count",
            }));
        }
        self.remaining -= 1;
        match self.parse_one() {
            Ok(r) => Some(Ok(r)),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.failed {
            (0, Some(0))
        } else {
            // Every record takes at least 7 bytes; the count is an upper bound too.
            let by_bytes = (self.buf.len() - self.pos) / 7 + 1;
            // One more for a trailing error.
            (0, Some((self.remaining as usize).min(by_bytes) + 1))
        }
    }
}

impl<'a> Headers<'a> {
    /// Parse the next header from the view.
    #[inline]
    pub(super) fn parse_next(&mut self) -> Result<Header<'a>, DecodeError> {
        let buf = self.buf;
        let mut p = 0;
        let key = match var_bytes(buf, &mut p, "header key")? {
            Some(k) => k,
            None => {
                return Err(DecodeError::Invalid {
                    what: "header key",
                    reason: "null",
                });
            }
        };
        let value = var_bytes(buf, &mut p, "header value")?;
        self.buf = &buf[p..];
        Ok(Header { key, value })
    }
}

#[cfg(test)]
mod varint_tests {
    use super::*;

    fn encode_u(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn zz32(v: i32) -> u64 {
        u64::from(((v << 1) ^ (v >> 31)) as u32)
    }

    /// The fast paths agree with the general reader on every length class, at the
    /// end of the buffer and before more bytes.
    #[test]
    fn varint_fast_paths_match_the_general_reader() {
        let values = [
            0,
            1,
            -1,
            -2,
            63,
            -64,
            64,
            -65,
            8191,
            -8192,
            8192,
            1 << 20,
            -(1 << 20),
            i32::MAX,
            i32::MIN,
        ];
        for v in values {
            for tail in [0usize, 3] {
                let mut buf = vec![0xaa];
                encode_u(zz32(v), &mut buf);
                let end = buf.len();
                buf.extend(std::iter::repeat_n(0x01, tail));
                let mut pos = 1;
                assert_eq!(varint(&buf, &mut pos, "v").unwrap(), v, "{v}");
                assert_eq!(pos, end, "{v}");
                let (z, next) = uvarint_slow(&buf, 1, 5, "v").unwrap();
                assert_eq!((z, next), (zz32(v), end), "{v}");
                let mut pos = 1;
                assert_eq!(varlong(&buf, &mut pos, "v").unwrap(), i64::from(v));
            }
        }
    }

    #[test]
    fn varint_errors_are_unchanged() {
        // Truncated after a continuation byte: one and two bytes in.
        for buf in [&[0x80u8][..], &[0x80, 0x80]] {
            let mut pos = 0;
            assert!(matches!(
                varint(buf, &mut pos, "v"),
                Err(DecodeError::Truncated { remaining, .. }) if remaining == buf.len()
            ));
            assert_eq!(pos, 0);
        }
        let mut pos = 0;
        assert!(matches!(
            varint(&[], &mut pos, "v"),
            Err(DecodeError::Truncated {
                needed: 1,
                remaining: 0,
                ..
            })
        ));
        // Six bytes, and a five-byte value above u32::MAX.
        let mut pos = 0;
        assert!(matches!(
            varint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01], &mut pos, "v"),
            Err(DecodeError::VarintTooLong { .. })
        ));
        let mut pos = 0;
        assert!(matches!(
            varint(&[0xff, 0xff, 0xff, 0xff, 0x7f], &mut pos, "v"),
            Err(DecodeError::VarintTooLong { .. })
        ));
    }

    #[test]
    fn var_bytes_lengths() {
        for (len, want) in [(-1i32, None), (0, Some(&b""[..])), (3, Some(&b"abc"[..]))] {
            let mut buf = Vec::new();
            encode_u(zz32(len), &mut buf);
            buf.extend_from_slice(b"abcd");
            let mut pos = 0;
            assert_eq!(var_bytes(&buf, &mut pos, "b").unwrap(), want);
        }
        for len in [-2i32, -3, -200, i32::MIN] {
            let mut buf = Vec::new();
            encode_u(zz32(len), &mut buf);
            let mut pos = 0;
            assert!(matches!(
                var_bytes(&buf, &mut pos, "b"),
                Err(DecodeError::NegativeLength { length, .. }) if length == i64::from(len)
            ));
        }
        // 200 bytes claimed (a two-byte length), 4 present.
        let mut buf = Vec::new();
        encode_u(zz32(200), &mut buf);
        buf.extend_from_slice(b"abcd");
        let mut pos = 0;
        assert!(matches!(
            var_bytes(&buf, &mut pos, "b"),
            Err(DecodeError::LengthTooLarge {
                length: 200,
                remaining: 4,
                ..
            })
        ));
    }
}
