//! A bounded, non-panicking reader over a byte slice.
//!
//! Every read checks what remains first and returns [`DecodeError`] instead of
//! panicking. Lengths and element counts read from the input are checked against the
//! bytes that remain before anything is sized by them, so a hostile count can never
//! drive an allocation larger than the input itself.

use crate::error::DecodeError;

/// A cursor over borrowed bytes. Slices it returns borrow the original input.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, positioned at its start.
    #[inline]
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet read.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// True when every byte has been read.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// How many bytes have been read so far.
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The unread bytes, without consuming them.
    #[inline]
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Take exactly `n` bytes.
    #[inline]
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let remaining = self.remaining();
        if n > remaining {
            return Err(DecodeError::Truncated {
                what,
                needed: n,
                remaining,
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Skip exactly `n` bytes.
    #[inline]
    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        self.bytes(n, what).map(|_| ())
    }

    /// A reader over the next `n` bytes; this reader moves past them.
    #[inline]
    pub fn sub(&mut self, n: usize, what: &'static str) -> Result<Reader<'a>, DecodeError> {
        self.bytes(n, what).map(Reader::new)
    }

    #[inline]
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let b = self.bytes(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    /// A signed byte.
    #[inline]
    pub fn i8(&mut self, what: &'static str) -> Result<i8, DecodeError> {
        Ok(i8::from_be_bytes(self.array(what)?))
    }

    /// An unsigned byte.
    #[inline]
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// A boolean (any non-zero byte is true).
    #[inline]
    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        Ok(self.u8(what)? != 0)
    }

    /// A big-endian i16.
    #[inline]
    pub fn i16(&mut self, what: &'static str) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }

    /// A big-endian u16.
    #[inline]
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// A big-endian i32.
    #[inline]
    pub fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    /// A big-endian u32.
    #[inline]
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// A big-endian i64.
    #[inline]
    pub fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }

    /// A 16-byte UUID (topic ids).
    #[inline]
    pub fn uuid(&mut self, what: &'static str) -> Result<[u8; 16], DecodeError> {
        self.array(what)
    }

    /// An unsigned LEB128 varint of at most 32 bits (the compact-encoding lengths).
    #[inline]
    pub fn uvarint(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let v = self.uvarlong_max(what, 5)?;
        u32::try_from(v).map_err(|_| DecodeError::VarintTooLong { what })
    }

    /// A zig-zag varint of at most 32 bits (record lengths, deltas, key lengths).
    #[inline]
    pub fn varint(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        let v = self.uvarint(what)?;
        Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
    }

    /// A zig-zag varlong of at most 64 bits (timestamp deltas).
    #[inline]
    pub fn varlong(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        let v = self.uvarlong_max(what, 10)?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    #[inline]
    fn uvarlong_max(&mut self, what: &'static str, max_bytes: usize) -> Result<u64, DecodeError> {
        // Fast path: one byte.
        if let Some(&b) = self.buf.get(self.pos)
            && b & 0x80 == 0
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        let mut value: u64 = 0;
        for i in 0..max_bytes {
            let Some(&b) = self.buf.get(self.pos + i) else {
                return Err(DecodeError::Truncated {
                    what,
                    needed: i + 1,
                    remaining: self.remaining(),
                });
            };
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.pos += i + 1;
                return Ok(value);
            }
        }
        Err(DecodeError::VarintTooLong { what })
    }

    /// A length that must be non-negative and fit in what remains.
    #[inline]
    fn checked_len(&self, len: i64, what: &'static str) -> Result<usize, DecodeError> {
        if len < 0 {
            return Err(DecodeError::NegativeLength { what, length: len });
        }
        let remaining = self.remaining();
        if len as u64 > remaining as u64 {
            return Err(DecodeError::LengthTooLarge {
                what,
                length: len as u64,
                remaining,
            });
        }
        Ok(len as usize)
    }

    /// Nullable bytes with an i32 length (-1 is null).
    pub fn nullable_bytes(&mut self, what: &'static str) -> Result<Option<&'a [u8]>, DecodeError> {
        let len = self.i32(what)?;
        if len == -1 {
            return Ok(None);
        }
        let n = self.checked_len(i64::from(len), what)?;
        self.bytes(n, what).map(Some)
    }

    /// Non-null bytes with an i32 length.
    pub fn bytes_i32(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        self.nullable_bytes(what)?.ok_or(DecodeError::Invalid {
            what,
            reason: "null where bytes are required",
        })
    }

    /// Nullable bytes with a compact (unsigned varint, length + 1) length; 0 is null.
    pub fn compact_nullable_bytes(
        &mut self,
        what: &'static str,
    ) -> Result<Option<&'a [u8]>, DecodeError> {
        let len = self.uvarint(what)?;
        if len == 0 {
            return Ok(None);
        }
        let n = self.checked_len(i64::from(len) - 1, what)?;
        self.bytes(n, what).map(Some)
    }

    /// Non-null compact bytes.
    pub fn compact_bytes(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        self.compact_nullable_bytes(what)?
            .ok_or(DecodeError::Invalid {
                what,
                reason: "null where bytes are required",
            })
    }

    /// A nullable string with an i16 length (-1 is null).
    pub fn nullable_string(&mut self, what: &'static str) -> Result<Option<&'a str>, DecodeError> {
        let len = self.i16(what)?;
        if len == -1 {
            return Ok(None);
        }
        let n = self.checked_len(i64::from(len), what)?;
        let b = self.bytes(n, what)?;
        std::str::from_utf8(b)
            .map(Some)
            .map_err(|_| DecodeError::InvalidUtf8 { what })
    }

    /// A non-null string with an i16 length.
    pub fn string(&mut self, what: &'static str) -> Result<&'a str, DecodeError> {
        self.nullable_string(what)?.ok_or(DecodeError::Invalid {
            what,
            reason: "null where a string is required",
        })
    }

    /// A nullable compact string (unsigned varint length + 1; 0 is null).
    pub fn compact_nullable_string(
        &mut self,
        what: &'static str,
    ) -> Result<Option<&'a str>, DecodeError> {
        match self.compact_nullable_bytes(what)? {
            None => Ok(None),
            Some(b) => std::str::from_utf8(b)
                .map(Some)
                .map_err(|_| DecodeError::InvalidUtf8 { what }),
        }
    }

    /// A non-null compact string.
    pub fn compact_string(&mut self, what: &'static str) -> Result<&'a str, DecodeError> {
        self.compact_nullable_string(what)?
            .ok_or(DecodeError::Invalid {
                what,
                reason: "null where a string is required",
            })
    }

    /// A string in either encoding: compact when `flexible`, i16-length otherwise.
    pub fn string_v(&mut self, flexible: bool, what: &'static str) -> Result<&'a str, DecodeError> {
        if flexible {
            self.compact_string(what)
        } else {
            self.string(what)
        }
    }

    /// A nullable string in either encoding.
    pub fn nullable_string_v(
        &mut self,
        flexible: bool,
        what: &'static str,
    ) -> Result<Option<&'a str>, DecodeError> {
        if flexible {
            self.compact_nullable_string(what)
        } else {
            self.nullable_string(what)
        }
    }

    /// Non-null bytes in either encoding.
    pub fn bytes_v(&mut self, flexible: bool, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if flexible {
            self.compact_bytes(what)
        } else {
            self.bytes_i32(what)
        }
    }

    /// Nullable bytes in either encoding.
    pub fn nullable_bytes_v(
        &mut self,
        flexible: bool,
        what: &'static str,
    ) -> Result<Option<&'a [u8]>, DecodeError> {
        if flexible {
            self.compact_nullable_bytes(what)
        } else {
            self.nullable_bytes(what)
        }
    }

    /// The element count of an i32-counted array (-1 is null, returned as `None`).
    ///
    /// `min_elem_size` is the fewest bytes one element can occupy (at least 1); the
    /// count is rejected unless `count * min_elem_size` fits in what remains, so a
    /// caller may size a `Vec` by the count.
    pub fn array_len(
        &mut self,
        min_elem_size: usize,
        what: &'static str,
    ) -> Result<Option<usize>, DecodeError> {
        let n = self.i32(what)?;
        if n == -1 {
            return Ok(None);
        }
        self.check_count(i64::from(n), min_elem_size, what)
            .map(Some)
    }

    /// The element count of a compact array (unsigned varint count + 1; 0 is null).
    pub fn compact_array_len(
        &mut self,
        min_elem_size: usize,
        what: &'static str,
    ) -> Result<Option<usize>, DecodeError> {
        let n = self.uvarint(what)?;
        if n == 0 {
            return Ok(None);
        }
        self.check_count(i64::from(n) - 1, min_elem_size, what)
            .map(Some)
    }

    /// An array count in either encoding; a null array reads as empty.
    pub fn array_len_v(
        &mut self,
        flexible: bool,
        min_elem_size: usize,
        what: &'static str,
    ) -> Result<usize, DecodeError> {
        let n = if flexible {
            self.compact_array_len(min_elem_size, what)?
        } else {
            self.array_len(min_elem_size, what)?
        };
        Ok(n.unwrap_or(0))
    }

    fn check_count(
        &self,
        n: i64,
        min_elem_size: usize,
        what: &'static str,
    ) -> Result<usize, DecodeError> {
        if n < 0 {
            return Err(DecodeError::NegativeLength { what, length: n });
        }
        let need = (n as u64).saturating_mul(min_elem_size.max(1) as u64);
        let remaining = self.remaining();
        if need > remaining as u64 {
            return Err(DecodeError::LengthTooLarge {
                what,
                length: n as u64,
                remaining,
            });
        }
        Ok(n as usize)
    }

    /// Skip a tagged-field section (flexible versions); unknown tags are ignored.
    pub fn skip_tagged_fields(&mut self) -> Result<(), DecodeError> {
        let count = self.uvarint("tagged field count")?;
        // Each tagged field takes at least two bytes (tag and size).
        self.check_count(i64::from(count), 2, "tagged field count")?;
        for _ in 0..count {
            let _tag = self.uvarint("tag")?;
            let size = self.uvarint("tagged field size")?;
            let n = self.checked_len(i64::from(size), "tagged field")?;
            self.skip(n, "tagged field")?;
        }
        Ok(())
    }

    /// Skip tagged fields only when `flexible`.
    #[inline]
    pub fn tagged_fields_v(&mut self, flexible: bool) -> Result<(), DecodeError> {
        if flexible {
            self.skip_tagged_fields()
        } else {
            Ok(())
        }
    }

    /// Fail unless every byte has been consumed.
    pub fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                what,
                remaining: self.remaining(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_and_truncation() {
        let mut r = Reader::new(&[0, 1, 0, 0, 0, 2, 9]);
        assert_eq!(r.i16("a").unwrap(), 1);
        assert_eq!(r.i32("b").unwrap(), 2);
        assert!(matches!(
            r.i16("c"),
            Err(DecodeError::Truncated {
                what: "c",
                needed: 2,
                remaining: 1
            })
        ));
        // A failed read consumes nothing.
        assert_eq!(r.remaining(), 1);
    }

    #[test]
    fn varints() {
        // zig-zag: 0->0, -1->1, 1->2, -2->3, 150 -> 300 = 0xac 0x02
        let mut r = Reader::new(&[0x00, 0x01, 0x02, 0x03, 0xac, 0x02]);
        assert_eq!(r.varint("v").unwrap(), 0);
        assert_eq!(r.varint("v").unwrap(), -1);
        assert_eq!(r.varint("v").unwrap(), 1);
        assert_eq!(r.varint("v").unwrap(), -2);
        assert_eq!(r.varint("v").unwrap(), 150);
        assert!(r.is_empty());
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert!(matches!(
            r.varint("v"),
            Err(DecodeError::VarintTooLong { .. })
        ));
        let mut r = Reader::new(&[0xff, 0xff]);
        assert!(matches!(r.varint("v"), Err(DecodeError::Truncated { .. })));
        let mut r = Reader::new(&[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert_eq!(r.varlong("l").unwrap(), i64::MAX);
    }

    #[test]
    fn hostile_counts_are_rejected_before_allocation() {
        let mut r = Reader::new(&[0x7f, 0xff, 0xff, 0xff, 1, 2, 3]);
        assert!(matches!(
            r.array_len(1, "arr"),
            Err(DecodeError::LengthTooLarge { .. })
        ));
        let mut r = Reader::new(&[0, 0, 0, 2, 1, 2, 3]);
        assert!(matches!(
            r.array_len(2, "arr"),
            Err(DecodeError::LengthTooLarge { .. })
        ));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xfe]);
        assert!(matches!(
            r.array_len(1, "arr"),
            Err(DecodeError::NegativeLength { .. })
        ));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(r.array_len(1, "arr").unwrap(), None);
        let mut r = Reader::new(&[0x80, 0x80, 0x80, 0x80, 0x08]);
        assert!(r.compact_array_len(1, "arr").is_err());
    }

    #[test]
    fn strings_and_bytes() {
        let mut r = Reader::new(&[0, 2, b'h', b'i', 0xff, 0xff, 3, b'y', b'o', 0]);
        assert_eq!(r.string("s").unwrap(), "hi");
        assert_eq!(r.nullable_string("s").unwrap(), None);
        assert_eq!(r.compact_string("c").unwrap(), "yo");
        assert_eq!(r.compact_nullable_bytes("c").unwrap(), None);
        let mut r = Reader::new(&[0, 2, 0xff, 0xfe]);
        assert!(matches!(
            r.string("s"),
            Err(DecodeError::InvalidUtf8 { .. })
        ));
        let mut r = Reader::new(&[0, 0, 0, 9, 1]);
        assert!(matches!(
            r.nullable_bytes("b"),
            Err(DecodeError::LengthTooLarge { .. })
        ));
    }

    #[test]
    fn tagged_fields() {
        let mut r = Reader::new(&[2, 0, 1, 7, 5, 0, 9]);
        r.skip_tagged_fields().unwrap();
        assert_eq!(r.rest(), &[9]);
        let mut r = Reader::new(&[1, 0, 5, 7]);
        assert!(r.skip_tagged_fields().is_err());
    }
}
