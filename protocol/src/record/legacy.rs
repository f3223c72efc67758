//! Legacy message sets: magic 0 (Kafka 0.8/0.9) and magic 1 (0.10).
//!
//! Layout (big-endian), offsets from the entry start:
//!
//! ```text
//!  0 offset i64   8 message_size i32   12 crc u32 (CRC32/IEEE of bytes 16..end)
//! 16 magic i8    17 attributes i8     18 timestamp i64 (magic 1 only)
//!    key (i32 length, -1 null)        value (i32 length, -1 null)
//! ```
//!
//! A compressed message (attribute bits 0..=2 non-zero) is a wrapper: its value is a
//! compressed inner message set. For magic 1 the inner offsets are relative (the
//! wrapper carries the absolute offset of the last inner message); for magic 0 they
//! are absolute. Inner messages may not themselves be compressed.

use super::batch::LOG_OVERHEAD;
use super::{Headers, Record, TimestampType};
use crate::compression::{Compression, Decompressor};
use crate::error::DecodeError;

/// Smallest magic-0 `message_size`: crc, magic, attributes, two null lengths.
pub const MAGIC0_MIN_SIZE: usize = 4 + 1 + 1 + 4 + 4;
/// Smallest magic-1 `message_size`: magic 0's plus the timestamp.
pub const MAGIC1_MIN_SIZE: usize = MAGIC0_MIN_SIZE + 8;

/// Attribute bit (magic 1): the timestamp is LogAppendTime.
const LEGACY_LOG_APPEND_TIME: i8 = 0x08;

/// One legacy message, viewed in place.
#[derive(Debug, Clone, Copy)]
pub struct LegacyMessage<'a> {
    buf: &'a [u8],
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(x)
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(x)
}

fn nullable_i32_bytes<'a>(
    buf: &'a [u8],
    pos: &mut usize,
    what: &'static str,
) -> Result<Option<&'a [u8]>, DecodeError> {
    let Some(len) = buf.get(*pos..*pos + 4) else {
        return Err(DecodeError::Truncated {
            what,
            needed: 4,
            remaining: buf.len().saturating_sub(*pos),
        });
    };
    let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
    *pos += 4;
    if len == -1 {
        return Ok(None);
    }
    if len < 0 {
        return Err(DecodeError::NegativeLength {
            what,
            length: i64::from(len),
        });
    }
    let start = *pos;
    match buf.get(start..start + len as usize) {
        Some(b) => {
            *pos += len as usize;
            Ok(Some(b))
        }
        None => Err(DecodeError::LengthTooLarge {
            what,
            length: len as u64,
            remaining: buf.len() - start,
        }),
    }
}

impl<'a> LegacyMessage<'a> {
    /// View `buf` (exactly one entry: offset, size, message) as a legacy message.
    pub fn parse(buf: &'a [u8]) -> Result<Self, DecodeError> {
        if buf.len() < LOG_OVERHEAD + MAGIC0_MIN_SIZE {
            return Err(DecodeError::Truncated {
                what: "legacy message",
                needed: LOG_OVERHEAD + MAGIC0_MIN_SIZE,
                remaining: buf.len(),
            });
        }
        let size = be_i32(buf, 8);
        if size < 0 || size as usize + LOG_OVERHEAD != buf.len() {
            return Err(DecodeError::Invalid {
                what: "legacy message size",
                reason: "does not match the bytes given",
            });
        }
        let magic = buf[16] as i8;
        let mut pos = match magic {
            0 => 18,
            1 => {
                if (size as usize) < MAGIC1_MIN_SIZE {
                    return Err(DecodeError::Invalid {
                        what: "legacy message size",
                        reason: "smaller than a magic-1 message header",
                    });
                }
                26
            }
            m => return Err(DecodeError::UnsupportedMagic(m)),
        };
        let key = nullable_i32_bytes(buf, &mut pos, "legacy message key")?;
        let value = nullable_i32_bytes(buf, &mut pos, "legacy message value")?;
        if pos != buf.len() {
            return Err(DecodeError::TrailingBytes {
                what: "legacy message",
                remaining: buf.len() - pos,
            });
        }
        Ok(Self { buf, key, value })
    }

    /// The entry's bytes (offset and size fields included).
    pub fn bytes(&self) -> &'a [u8] {
        self.buf
    }
    /// The offset field: absolute for top-level messages; for a compressed magic-1
    /// wrapper, the offset of its last inner message.
    pub fn offset(&self) -> i64 {
        be_i64(self.buf, 0)
    }
    /// The message size field (bytes after it).
    pub fn message_size(&self) -> i32 {
        be_i32(self.buf, 8)
    }
    /// The stored CRC32.
    pub fn crc(&self) -> u32 {
        be_i32(self.buf, 12) as u32
    }
    /// The magic byte: 0 or 1.
    pub fn magic(&self) -> i8 {
        self.buf[16] as i8
    }
    /// The attributes byte.
    pub fn attributes(&self) -> i8 {
        self.buf[17] as i8
    }
    /// The compression codec of this message (a wrapper when not `None`).
    pub fn compression(&self) -> Result<Compression, DecodeError> {
        Compression::from_id(self.attributes() as u8 & 0x07)
    }
    /// The timestamp type: none for magic 0.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.magic() == 0 {
            TimestampType::NoTimestamp
        } else if self.attributes() & LEGACY_LOG_APPEND_TIME != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }
    /// The timestamp (magic 1), or [`super::NO_TIMESTAMP`] (magic 0).
    pub fn timestamp(&self) -> i64 {
        if self.magic() == 0 {
            super::NO_TIMESTAMP
        } else {
            be_i64(self.buf, 18)
        }
    }
    /// The key; `None` when null.
    pub fn key(&self) -> Option<&'a [u8]> {
        self.key
    }
    /// The value (the compressed inner set for a wrapper); `None` when null.
    pub fn value(&self) -> Option<&'a [u8]> {
        self.value
    }

    /// The CRC32 (IEEE) computed over magic..end.
    pub fn compute_crc(&self) -> u32 {
        crc32fast::hash(&self.buf[16..])
    }

    /// Check the stored CRC32 (of the outer message; a wrapper's CRC covers its
    /// compressed inner messages).
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

    fn as_record(&self, offset: i64, timestamp: i64) -> Record<'a> {
        Record {
            offset,
            timestamp,
            key: self.key,
            value: self.value,
            headers: Headers::empty(),
            attributes: self.attributes(),
            sequence: -1,
        }
    }

    /// Iterate the records: this message itself when uncompressed, else its inner
    /// messages (decompressed into `d`'s buffer).
    pub fn records<'s>(&self, d: &'s mut Decompressor) -> Result<LegacyRecords<'s>, DecodeError>
    where
        'a: 's,
    {
        let codec = self.compression()?;
        if codec == Compression::None {
            return Ok(LegacyRecords {
                inner: &[],
                pos: 0,
                single: Some(self.as_record(self.offset(), self.timestamp())),
                magic: self.magic(),
                relative_base: None,
                timestamp_override: None,
                done: false,
            });
        }
        let Some(compressed) = self.value else {
            return Err(DecodeError::Invalid {
                what: "legacy wrapper message",
                reason: "compressed message with a null value",
            });
        };
        let inner = d.decompress_legacy(codec, compressed)?;
        let relative_base = if self.magic() >= 1 {
            // Absolute = wrapper offset - last inner relative offset + inner offset.
            let last = last_inner_offset(inner).unwrap_or(0);
            Some(self.offset().wrapping_sub(last))
        } else {
            None
        };
        let timestamp_override =
            (self.timestamp_type() == TimestampType::LogAppendTime).then(|| self.timestamp());
        Ok(LegacyRecords {
            inner,
            pos: 0,
            single: None,
            magic: self.magic(),
            relative_base,
            timestamp_override,
            done: false,
        })
    }
}

/// The offset field of the last well-framed entry of an inner message set (malformed
/// framing is reported later, by iteration).
fn last_inner_offset(mut buf: &[u8]) -> Option<i64> {
    let mut last = None;
    while buf.len() >= LOG_OVERHEAD {
        let size = be_i32(buf, 8);
        if size < 0 || LOG_OVERHEAD + size as usize > buf.len() {
            break;
        }
        last = Some(be_i64(buf, 0));
        buf = &buf[LOG_OVERHEAD + size as usize..];
    }
    last
}

/// The records of a legacy message: one for a plain message, the inner messages for
/// a compressed wrapper. A malformed inner message yields one `Err`, then the
/// iterator ends.
#[derive(Debug, Clone)]
pub struct LegacyRecords<'a> {
    inner: &'a [u8],
    pos: usize,
    single: Option<Record<'a>>,
    magic: i8,
    relative_base: Option<i64>,
    timestamp_override: Option<i64>,
    done: bool,
}

impl<'a> LegacyRecords<'a> {
    fn next_inner(&mut self) -> Result<Record<'a>, DecodeError> {
        let rest = &self.inner[self.pos..];
        if rest.len() < LOG_OVERHEAD {
            return Err(DecodeError::Truncated {
                what: "inner legacy message",
                needed: LOG_OVERHEAD,
                remaining: rest.len(),
            });
        }
        let size = be_i32(rest, 8);
        if size < 0 {
            return Err(DecodeError::NegativeLength {
                what: "inner legacy message size",
                length: i64::from(size),
            });
        }
        let total = LOG_OVERHEAD + size as usize;
        let Some(entry) = rest.get(..total) else {
            return Err(DecodeError::LengthTooLarge {
                what: "inner legacy message size",
                length: size as u64,
                remaining: rest.len() - LOG_OVERHEAD,
            });
        };
        let m = LegacyMessage::parse(entry)?;
        if m.magic() != self.magic {
            return Err(DecodeError::Invalid {
                what: "inner legacy message",
                reason: "magic differs from its wrapper's",
            });
        }
        if m.compression()? != Compression::None {
            return Err(DecodeError::Invalid {
                what: "inner legacy message",
                reason: "nested compressed wrapper",
            });
        }
        self.pos += total;
        let offset = match self.relative_base {
            Some(base) => base.wrapping_add(m.offset()),
            None => m.offset(),
        };
        let timestamp = self.timestamp_override.unwrap_or_else(|| m.timestamp());
        Ok(m.as_record(offset, timestamp))
    }
}

impl<'a> Iterator for LegacyRecords<'a> {
    type Item = Result<Record<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Some(r) = self.single.take() {
            self.done = true;
            return Some(Ok(r));
        }
        if self.pos >= self.inner.len() {
            self.done = true;
            return None;
        }
        let r = self.next_inner();
        if r.is_err() {
            self.done = true;
        }
        Some(r)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            (0, Some(0))
        } else if self.single.is_some() {
            (1, Some(1))
        } else {
            (
                0,
                Some((self.inner.len() - self.pos) / (LOG_OVERHEAD + MAGIC0_MIN_SIZE) + 1),
            )
        }
    }
}
