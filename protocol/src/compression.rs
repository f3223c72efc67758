//! Record compression: the four Kafka codecs, a bounded reusable [`Decompressor`], and
//! the compressors the batch builder uses.
//!
//! gzip goes through `flate2`'s miniz backend, snappy through `snap` (raw blocks and
//! the xerial framing Java producers write), lz4 frames walked by this crate with
//! each block decoded by `lz4_flex`, all pure Rust; zstd through the reference C
//! library (`zstd`, which builds libzstd from source with the C compiler): the
//! pure-Rust `ruzstd` it replaced made a zstd topic of 1 KiB values cost weir 1.7x
//! librdkafka's CPU per record against Kafka (BENCHMARKS.md).
//!
//! Decompression is bounded: a [`Decompressor`] refuses to produce more than its
//! limit ([`DEFAULT_DECOMPRESSED_LIMIT`] unless configured) and returns
//! [`DecodeError::DecompressedTooLarge`] instead; sizes the input claims (snappy's
//! length preamble, xerial chunk lengths, zstd window sizes) are never trusted to size
//! a buffer beyond that limit.

use std::io::{self, Read, Write};

use crate::error::DecodeError;

mod lz4;

/// The compression codec of a record batch (attribute bits 0..=2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Uncompressed (codec id 0).
    #[default]
    None,
    /// gzip (codec id 1).
    Gzip,
    /// snappy (codec id 2): xerial-framed when written by Java producers, raw otherwise.
    Snappy,
    /// lz4 frame format (codec id 3).
    Lz4,
    /// zstd (codec id 4; record batches of magic 2 only).
    Zstd,
}

impl Compression {
    /// The codec for the low three bits of a batch's (or legacy message's) attributes.
    pub fn from_attributes(attributes: i16) -> Result<Self, DecodeError> {
        Self::from_id((attributes & 0x07) as u8)
    }

    /// The codec for a codec id (0..=4).
    pub fn from_id(id: u8) -> Result<Self, DecodeError> {
        Ok(match id {
            0 => Self::None,
            1 => Self::Gzip,
            2 => Self::Snappy,
            3 => Self::Lz4,
            4 => Self::Zstd,
            other => return Err(DecodeError::UnknownCompression(other)),
        })
    }

    /// The codec id written in attribute bits 0..=2.
    pub fn id(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }

    /// The codec's name as Kafka's `compression.type` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }
}

/// The default cap on one batch's decompressed size: 64 MiB.
pub const DEFAULT_DECOMPRESSED_LIMIT: usize = 64 * 1024 * 1024;

/// The xerial snappy stream header: magic, then version 1 and compatible version 1.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;

/// Largest zstd window accepted regardless of the decompressed-size limit (libzstd's
/// default `windowLogMax` for decompression is 27, i.e. 128 MiB).
const ZSTD_MAX_WINDOW: u64 = 128 * 1024 * 1024;
/// Smallest zstd window accepted even under a small limit (a window larger than the
/// content is legal, so a tiny limit must not reject ordinary frames).
const ZSTD_MIN_WINDOW: u64 = 8 * 1024 * 1024;

/// A reusable decompressor: owns its output buffer and codec state, so decompressing
/// batch after batch allocates only while the buffer grows toward the largest batch.
///
/// Records decoded from a compressed batch borrow this buffer; they live until the
/// next call that decompresses.
pub struct Decompressor {
    scratch: Vec<u8>,
    /// lz4's output buffer. Its length stays at its high-water mark, so the blocks
    /// decode into bytes that are already initialized instead of zeroing them again
    /// for every batch.
    lz4_out: Vec<u8>,
    limit: usize,
    /// One zstd decompression context, reused batch after batch (creating one
    /// allocates its tables); only its session is reset between calls, so the
    /// window limit set on it stays.
    zstd: zstd::zstd_safe::DCtx<'static>,
}

impl Default for Decompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decompressor")
            .field("limit", &self.limit)
            .field(
                "capacity",
                &(self.scratch.capacity() + self.lz4_out.capacity()),
            )
            .finish()
    }
}

fn codec_err(codec: Compression, e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Decompress {
        codec: codec.name(),
        reason: e.to_string(),
    }
}

impl Decompressor {
    /// A decompressor with the default limit of [`DEFAULT_DECOMPRESSED_LIMIT`] bytes.
    pub fn new() -> Self {
        Self::with_limit(DEFAULT_DECOMPRESSED_LIMIT)
    }

    /// A decompressor that refuses to produce more than `limit` bytes per call.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            scratch: Vec::new(),
            lz4_out: Vec::new(),
            limit,
            zstd: zstd::zstd_safe::DCtx::create(),
        }
    }

    /// The cap on decompressed bytes per call.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Change the cap on decompressed bytes per call.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Release buffer memory beyond `bytes` (after an unusually large batch).
    pub fn shrink_to(&mut self, bytes: usize) {
        self.scratch.clear();
        self.scratch.shrink_to(bytes);
        self.lz4_out.truncate(bytes);
        self.lz4_out.shrink_to(bytes);
    }

    /// Decompress `input` with `codec` into the internal buffer and return it.
    ///
    /// `Compression::None` copies nothing and returns `input` unchanged.
    pub fn decompress<'s>(
        &'s mut self,
        codec: Compression,
        input: &'s [u8],
    ) -> Result<&'s [u8], DecodeError> {
        self.decompress_inner(codec, input, false)
    }

    /// Like [`decompress`](Self::decompress), for the payload of a legacy (magic 0/1)
    /// wrapper message: lz4 frames whose header checksum old producers computed wrongly
    /// (KAFKA-3160) are accepted.
    pub fn decompress_legacy<'s>(
        &'s mut self,
        codec: Compression,
        input: &'s [u8],
    ) -> Result<&'s [u8], DecodeError> {
        self.decompress_inner(codec, input, true)
    }

    fn decompress_inner<'s>(
        &'s mut self,
        codec: Compression,
        input: &'s [u8],
        legacy_lz4: bool,
    ) -> Result<&'s [u8], DecodeError> {
        self.scratch.clear();
        match codec {
            Compression::None => return Ok(input),
            Compression::Gzip => {
                let dec = flate2::read::MultiGzDecoder::new(input);
                read_bounded(dec, &mut self.scratch, self.limit, codec)?;
            }
            Compression::Snappy => {
                if input.len() >= XERIAL_HEADER_LEN && input.starts_with(XERIAL_MAGIC) {
                    xerial_decompress(&input[XERIAL_HEADER_LEN..], &mut self.scratch, self.limit)?;
                } else {
                    snappy_raw_append(input, &mut self.scratch, self.limit)?;
                }
            }
            Compression::Lz4 => {
                let n = lz4::decompress(input, &mut self.lz4_out, self.limit, !legacy_lz4)?;
                return Ok(&self.lz4_out[..n]);
            }
            Compression::Zstd => {
                let max_window = (self.limit as u64).clamp(ZSTD_MIN_WINDOW, ZSTD_MAX_WINDOW);
                // The window a frame may ask for, as a power of two: libzstd refuses
                // a frame whose window is larger before allocating it.
                let window_log = 64 - (max_window - 1).leading_zeros();
                // Parameters can only be set between sessions: end whatever the last
                // call (perhaps failed half-way) left open.
                self.zstd
                    .reset(zstd::zstd_safe::ResetDirective::SessionOnly)
                    .map_err(|code| codec_err(codec, zstd::zstd_safe::get_error_name(code)))?;
                self.zstd
                    .set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(window_log))
                    .map_err(|code| codec_err(codec, zstd::zstd_safe::get_error_name(code)))?;
                // Kafka accepts concatenated frames; the decoder goes on across frame
                // boundaries until the input is used up.
                let dec = zstd::stream::read::Decoder::with_context(input, &mut self.zstd);
                read_bounded(dec, &mut self.scratch, self.limit, codec)?;
            }
        }
        Ok(&self.scratch)
    }
}

/// Append everything `r` yields to `out`, failing once `out` would exceed `limit`.
fn read_bounded(
    r: impl Read,
    out: &mut Vec<u8>,
    limit: usize,
    codec: Compression,
) -> Result<(), DecodeError> {
    let room = limit.saturating_sub(out.len()) as u64;
    let mut take = r.take(room.saturating_add(1));
    take.read_to_end(out).map_err(|e| codec_err(codec, e))?;
    if out.len() > limit {
        return Err(DecodeError::DecompressedTooLarge { limit });
    }
    Ok(())
}

/// Decompress one raw snappy block and append it to `out`, within `limit` in total.
fn snappy_raw_append(input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), DecodeError> {
    let n = snap::raw::decompress_len(input).map_err(|e| codec_err(Compression::Snappy, e))?;
    if n > limit.saturating_sub(out.len()) {
        return Err(DecodeError::DecompressedTooLarge { limit });
    }
    let start = out.len();
    out.resize(start + n, 0);
    let written = snap::raw::Decoder::new()
        .decompress(input, &mut out[start..])
        .map_err(|e| codec_err(Compression::Snappy, e))?;
    out.truncate(start + written);
    Ok(())
}

/// The xerial stream after its 16-byte header: `[i32 length][raw snappy block]`...
fn xerial_decompress(mut input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), DecodeError> {
    while !input.is_empty() {
        let Some((len, rest)) = input.split_first_chunk::<4>() else {
            return Err(codec_err(
                Compression::Snappy,
                "truncated xerial chunk length",
            ));
        };
        let len = i32::from_be_bytes(*len);
        let Ok(len) = usize::try_from(len) else {
            return Err(codec_err(
                Compression::Snappy,
                "negative xerial chunk length",
            ));
        };
        if len > rest.len() {
            return Err(codec_err(
                Compression::Snappy,
                "xerial chunk overruns its input",
            ));
        }
        let (chunk, rest) = rest.split_at(len);
        snappy_raw_append(chunk, out, limit)?;
        input = rest;
    }
    Ok(())
}

/// Compress `input` with `codec`, appending to `out`.
///
/// The formats are what the Java producer writes: gzip, xerial-framed snappy, lz4
/// frames with 64 KiB independent blocks, and a zstd frame. `Compression::None`
/// appends `input` unchanged.
pub fn compress(codec: Compression, input: &[u8], out: &mut Vec<u8>) {
    match codec {
        Compression::None => out.extend_from_slice(input),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
            // Writing into a Vec cannot fail.
            write_all_to_vec(&mut enc, input);
            let _ = enc.finish();
        }
        Compression::Snappy => {
            out.extend_from_slice(XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut enc = snap::raw::Encoder::new();
            // Java's SnappyOutputStream uses 32 KiB blocks.
            for chunk in input.chunks(32 * 1024) {
                let len_at = out.len();
                out.extend_from_slice(&[0; 4]);
                let start = out.len();
                out.resize(start + snap::raw::max_compress_len(chunk.len()), 0);
                // Compressing into a buffer of max_compress_len bytes cannot fail.
                let n = enc.compress(chunk, &mut out[start..]).unwrap_or(0);
                out.truncate(start + n);
                out[len_at..start].copy_from_slice(&(n as i32).to_be_bytes());
            }
        }
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, out);
            write_all_to_vec(&mut enc, input);
            let _ = enc.finish();
        }
        Compression::Zstd => {
            // Level 1, as fast as zstd goes; encoding into a `Vec` cannot fail.
            let r = zstd::stream::copy_encode(input, &mut *out, 1);
            debug_assert!(r.is_ok());
        }
    }
}

/// Write to an encoder whose sink is a `Vec` (which cannot fail; the encoders only
/// fail when their sink does).
fn write_all_to_vec(w: &mut impl Write, input: &[u8]) {
    let r: io::Result<()> = w.write_all(input);
    debug_assert!(r.is_ok());
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODECS: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn sample(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| (i * 7 % 251) as u8 ^ (i / 1000) as u8)
            .collect()
    }

    #[test]
    fn round_trip_every_codec() {
        let mut d = Decompressor::new();
        for n in [0usize, 1, 100, 40_000, 300_000] {
            let data = sample(n);
            for codec in CODECS {
                let mut c = Vec::new();
                compress(codec, &data, &mut c);
                let out = d.decompress(codec, &c).unwrap();
                assert_eq!(out, &data[..], "{codec:?} n={n}");
            }
        }
    }

    #[test]
    fn ids_round_trip() {
        for codec in CODECS {
            assert_eq!(Compression::from_id(codec.id()).unwrap(), codec);
            assert_eq!(
                Compression::from_attributes(0x30 | i16::from(codec.id())).unwrap(),
                codec
            );
        }
        assert_eq!(
            Compression::from_id(5),
            Err(DecodeError::UnknownCompression(5))
        );
    }

    #[test]
    fn limit_is_enforced_for_every_codec() {
        let data = vec![0u8; 200_000];
        for codec in CODECS.into_iter().skip(1) {
            let mut c = Vec::new();
            compress(codec, &data, &mut c);
            let mut d = Decompressor::with_limit(100_000);
            assert_eq!(
                d.decompress(codec, &c),
                Err(DecodeError::DecompressedTooLarge { limit: 100_000 }),
                "{codec:?}"
            );
            let mut d = Decompressor::with_limit(200_000);
            assert_eq!(d.decompress(codec, &c).unwrap().len(), 200_000);
        }
    }

    #[test]
    fn snappy_claimed_length_is_not_trusted() {
        // A raw snappy block claiming 2^32-1 bytes of output.
        let hostile = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
        let mut d = Decompressor::with_limit(1 << 20);
        assert!(matches!(
            d.decompress(Compression::Snappy, &hostile),
            Err(DecodeError::DecompressedTooLarge { .. })
        ));
        // A xerial chunk whose length overruns the input.
        let mut x = XERIAL_MAGIC.to_vec();
        x.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0x7f, 0, 0, 0, 1]);
        assert!(matches!(
            d.decompress(Compression::Snappy, &x),
            Err(DecodeError::Decompress { .. })
        ));
    }

    #[test]
    fn zstd_concatenated_frames_and_reuse_after_a_broken_frame() {
        let (a, b) = (sample(3000), sample(7000));
        let mut two = Vec::new();
        compress(Compression::Zstd, &a, &mut two);
        let first_len = two.len();
        compress(Compression::Zstd, &b, &mut two);
        let mut d = Decompressor::new();
        let mut both = a.clone();
        both.extend_from_slice(&b);
        assert_eq!(d.decompress(Compression::Zstd, &two).unwrap(), &both[..]);
        // A frame cut in the middle fails, and leaves the context usable.
        assert!(matches!(
            d.decompress(Compression::Zstd, &two[..first_len / 2]),
            Err(DecodeError::Decompress { codec: "zstd", .. })
        ));
        assert_eq!(
            d.decompress(Compression::Zstd, &two[..first_len]).unwrap(),
            &a[..]
        );
    }

    #[test]
    fn zstd_huge_window_is_refused_without_allocating() {
        // Frame header: magic, descriptor 0 (no single segment, no checksum), window
        // descriptor exponent 20 => 2^30-byte window; then one empty raw last block.
        let frame = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa0, 0x01, 0x00, 0x00];
        let mut d = Decompressor::with_limit(1 << 20);
        assert!(matches!(
            d.decompress(Compression::Zstd, &frame),
            Err(DecodeError::Decompress { codec: "zstd", .. })
        ));
        // The same frame with a 1 KiB window (descriptor 0) decodes.
        let ok = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00, 0x01, 0x00, 0x00];
        assert_eq!(d.decompress(Compression::Zstd, &ok).unwrap(), b"");
    }

    #[test]
    fn raw_snappy_is_accepted() {
        let data = sample(5000);
        let c = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        let mut d = Decompressor::new();
        assert_eq!(d.decompress(Compression::Snappy, &c).unwrap(), &data[..]);
    }

    #[test]
    fn legacy_lz4_with_wrong_header_checksum() {
        let data = sample(10_000);
        let mut c = Vec::new();
        compress(Compression::Lz4, &data, &mut c);
        // KAFKA-3160: old producers hashed the magic too.
        let desc_end = 6; // no content size, no dictionary id
        let wrong = (twox_hash::XxHash32::oneshot(0, &c[..desc_end]) >> 8) as u8;
        assert_ne!(wrong, c[desc_end]);
        c[desc_end] = wrong;
        let mut d = Decompressor::new();
        assert!(d.decompress(Compression::Lz4, &c).is_err());
        assert_eq!(
            d.decompress_legacy(Compression::Lz4, &c).unwrap(),
            &data[..]
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut d = Decompressor::with_limit(1 << 20);
        let mut seed = 0x1234_5678u32;
        for len in 0..200 {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            for codec in CODECS {
                let _ = d.decompress(codec, &buf);
                let _ = d.decompress_legacy(codec, &buf);
            }
        }
        // Truncations of valid streams.
        let data = sample(3000);
        for codec in CODECS {
            let mut c = Vec::new();
            compress(codec, &data, &mut c);
            for cut in 0..c.len() {
                let _ = d.decompress(codec, &c[..cut]);
            }
        }
    }
}
