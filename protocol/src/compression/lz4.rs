//! The lz4 frame format (what Kafka's lz4 codec carries), walked here and decoded block
//! by block with `lz4_flex`'s block decoder straight into one reusable output buffer.
//!
//! `lz4_flex::frame::FrameDecoder` decodes each block into a buffer of its own and
//! copies it out through `Read`, and allocates that buffer anew for every frame, that
//! is for every record batch. Walking the frame here removes the copy and the
//! allocations. With lz4_flex's pointer-based block decoder (see Cargo.toml), decoding
//! log lines in 1 MiB frames went from 0.56 to 0.42 CPU-s per GB of output, the cost
//! of the C liblz4 that librdkafka links (BENCHMARKS.md, "Compressed batches").
//!
//! Everything the frame says is checked before it is used: the magic, the version, the
//! reserved bits, the header checksum (unless the frame comes from a legacy message,
//! whose producers computed it wrongly, KAFKA-3160), every block's size against the
//! frame's block size and against the input, the block checksums and the content
//! checksum when the frame has them, and the content size when it states one. The
//! output never grows beyond the decompressor's limit.

use lz4_flex::block::DecompressError;

use super::{Compression, codec_err};
use crate::error::DecodeError;

const MAGIC: u32 = 0x184D_2204;
/// Skippable frames (magic 0x184D2A50 to 0x184D2A5F) carry data a decoder passes over.
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
const SKIPPABLE: u32 = 0x184D_2A50;
/// A linked block may refer to this many bytes of the frame's output before it.
const WINDOW: usize = 64 * 1024;

fn err(reason: &str) -> DecodeError {
    codec_err(Compression::Lz4, reason)
}

fn le32(input: &[u8], at: usize) -> Option<u32> {
    let b = input.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Decode every frame of `input` into `out[..n]` and return `n`, never letting `n`
/// exceed `limit`. `out` keeps its length between calls (its bytes are reused, not
/// zeroed again); it grows only when a block needs room past its end.
pub(super) fn decompress(
    input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
    check_header: bool,
) -> Result<usize, DecodeError> {
    let mut at = 0usize;
    let mut n = 0usize;
    if input.is_empty() {
        return Err(err("empty input, no lz4 frame"));
    }
    while at < input.len() {
        let magic = le32(input, at).ok_or_else(|| err("truncated frame magic"))?;
        if magic & SKIPPABLE_MASK == SKIPPABLE {
            let len = le32(input, at + 4).ok_or_else(|| err("truncated skippable frame"))?;
            at = (at + 8)
                .checked_add(len as usize)
                .filter(|&end| end <= input.len())
                .ok_or_else(|| err("skippable frame runs past the input"))?;
            continue;
        }
        if magic != MAGIC {
            return Err(err("wrong magic number, not an lz4 frame"));
        }
        at = frame(input, at + 4, out, &mut n, limit, check_header)?;
    }
    Ok(n)
}

/// Decode the frame whose descriptor starts at `input[at]` (just after the magic),
/// appending to `out[..*n]`; return where the frame ends.
fn frame(
    input: &[u8],
    mut at: usize,
    out: &mut Vec<u8>,
    n: &mut usize,
    limit: usize,
    check_header: bool,
) -> Result<usize, DecodeError> {
    let desc_start = at;
    let (&flg, &bd) = match input.get(at..at + 2) {
        Some([f, b]) => (f, b),
        _ => return Err(err("truncated frame descriptor")),
    };
    if flg >> 6 != 0b01 {
        return Err(err("unsupported lz4 frame version"));
    }
    if flg & 0x02 != 0 || bd & 0x8F != 0 {
        return Err(err("reserved bits set in the frame descriptor"));
    }
    let independent = flg & 0x20 != 0;
    let block_checksums = flg & 0x10 != 0;
    let has_content_size = flg & 0x08 != 0;
    let content_checksum = flg & 0x04 != 0;
    if flg & 0x01 != 0 {
        return Err(err("the frame needs a dictionary, which Kafka never uses"));
    }
    let block_max = match (bd >> 4) & 0x07 {
        4 => 64 * 1024,
        5 => 256 * 1024,
        6 => 1024 * 1024,
        7 => 4 * 1024 * 1024,
        _ => return Err(err("invalid block maximum size")),
    };
    at += 2;
    let mut content_size = None;
    if has_content_size {
        let b = input
            .get(at..at + 8)
            .ok_or_else(|| err("truncated content size"))?;
        let mut v = [0u8; 8];
        v.copy_from_slice(b);
        content_size = Some(u64::from_le_bytes(v));
        at += 8;
    }
    let hc = *input
        .get(at)
        .ok_or_else(|| err("truncated header checksum"))?;
    if check_header && hc != (twox_hash::XxHash32::oneshot(0, &input[desc_start..at]) >> 8) as u8 {
        return Err(err("header checksum mismatch"));
    }
    at += 1;

    let frame_start = *n;
    loop {
        let word = le32(input, at).ok_or_else(|| err("truncated block size"))?;
        at += 4;
        if word == 0 {
            break; // the end mark
        }
        let size = (word & 0x7FFF_FFFF) as usize;
        if size > block_max {
            return Err(err("block larger than the frame's block size"));
        }
        let data = input
            .get(at..at + size)
            .ok_or_else(|| err("block runs past the input"))?;
        at += size;
        if block_checksums {
            let sum = le32(input, at).ok_or_else(|| err("truncated block checksum"))?;
            at += 4;
            if sum != twox_hash::XxHash32::oneshot(0, data) {
                return Err(err("block checksum mismatch"));
            }
        }
        let room = block_max.min(limit.saturating_sub(*n));
        if out.len() < *n + room {
            out.resize(*n + room, 0);
        }
        if word & 0x8000_0000 != 0 {
            // Stored uncompressed.
            if size > room {
                return Err(DecodeError::DecompressedTooLarge { limit });
            }
            out[*n..*n + size].copy_from_slice(data);
            *n += size;
            continue;
        }
        let (done, rest) = out.split_at_mut(*n);
        let dst = &mut rest[..room];
        let r = if independent || *n == frame_start {
            lz4_flex::block::decompress_into(data, dst)
        } else {
            let dict = &done[n.saturating_sub(WINDOW).max(frame_start)..];
            lz4_flex::block::decompress_into_with_dict(data, dst, dict)
        };
        match r {
            Ok(written) => *n += written,
            Err(DecompressError::OutputTooSmall { .. }) if room < block_max => {
                return Err(DecodeError::DecompressedTooLarge { limit });
            }
            Err(e) => return Err(codec_err(Compression::Lz4, e)),
        }
    }
    if content_checksum {
        let sum = le32(input, at).ok_or_else(|| err("truncated content checksum"))?;
        at += 4;
        if sum != twox_hash::XxHash32::oneshot(0, &out[frame_start..*n]) {
            return Err(err("content checksum mismatch"));
        }
    }
    if let Some(size) = content_size {
        if size != (*n - frame_start) as u64 {
            return Err(err("the frame's content size does not match its content"));
        }
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};

    use super::*;

    /// Log-like text: compresses, and its later blocks repeat earlier ones, so linked
    /// blocks really refer back across block boundaries.
    fn text(n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n);
        let mut i = 0u32;
        while v.len() < n {
            i = i.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let line = format!(
                "{} GET /api/v1/item/{} 200 {}ms\n",
                i >> 20,
                i % 977,
                i % 83
            );
            v.extend_from_slice(line.as_bytes());
        }
        v.truncate(n);
        v
    }

    fn encode(info: FrameInfo, data: &[u8]) -> Vec<u8> {
        let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn infos(len: usize) -> Vec<FrameInfo> {
        let mut v = Vec::new();
        for size in [
            BlockSize::Max64KB,
            BlockSize::Max256KB,
            BlockSize::Max1MB,
            BlockSize::Max4MB,
        ] {
            for mode in [BlockMode::Independent, BlockMode::Linked] {
                for flags in 0..8u8 {
                    v.push(
                        FrameInfo::new()
                            .block_size(size)
                            .block_mode(mode)
                            .block_checksums(flags & 1 != 0)
                            .content_checksum(flags & 2 != 0)
                            .content_size((flags & 4 != 0).then_some(len as u64)),
                    );
                }
            }
        }
        v
    }

    fn run(input: &[u8], limit: usize, check_header: bool) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::new();
        decompress(input, &mut out, limit, check_header).map(|n| out[..n].to_vec())
    }

    #[test]
    fn every_frame_option_decodes_to_the_input() {
        // 1,100,000 bytes: several blocks of every size but 4 MiB (whose path is 1 MiB's).
        for len in [0usize, 1, 65_536, 65_537, 300_000, 1_100_000] {
            let data = text(len);
            for info in infos(len) {
                if len > 300_000 && !matches!(info.block_size, BlockSize::Max1MB) {
                    continue;
                }
                let what = format!("{len} {info:?}");
                let frame = encode(info, &data);
                assert_eq!(run(&frame, usize::MAX, true).unwrap(), data, "{what}");
            }
        }
    }

    #[test]
    fn the_output_buffer_is_reused_without_stale_bytes() {
        let mut out = Vec::new();
        let long = text(200_000);
        let short = b"short".to_vec();
        for data in [&long, &short, &long] {
            let frame = encode(FrameInfo::new(), data);
            let n = decompress(&frame, &mut out, usize::MAX, true).unwrap();
            assert_eq!(&out[..n], &data[..]);
        }
    }

    #[test]
    fn concatenated_and_skippable_frames() {
        let (a, b) = (text(70_000), text(1_000));
        let mut input = encode(FrameInfo::new(), &a);
        input.extend_from_slice(&0x184D_2A53u32.to_le_bytes());
        input.extend_from_slice(&3u32.to_le_bytes());
        input.extend_from_slice(b"xyz");
        input.extend_from_slice(&encode(FrameInfo::new().block_mode(BlockMode::Linked), &b));
        let mut want = a.clone();
        want.extend_from_slice(&b);
        assert_eq!(run(&input, usize::MAX, true).unwrap(), want);
        // A skippable frame whose length runs past the input.
        let mut bad = encode(FrameInfo::new(), &a);
        bad.extend_from_slice(&0x184D_2A50u32.to_le_bytes());
        bad.extend_from_slice(&100u32.to_le_bytes());
        assert!(matches!(
            run(&bad, usize::MAX, true),
            Err(DecodeError::Decompress { .. })
        ));
    }

    #[test]
    fn checksums_are_verified() {
        let data = text(100_000);
        let info = FrameInfo::new()
            .block_checksums(true)
            .content_checksum(true);
        let frame = encode(info, &data);
        let last = frame.len() - 1;
        // The content checksum is the last four bytes; a block checksum follows the
        // first block (header 7 bytes, then a size word and the block).
        let first = le32(&frame, 7).unwrap() as usize & 0x7FFF_FFFF;
        for (at, what) in [(last, "content"), (7 + 4 + first, "block"), (6, "header")] {
            let mut bad = frame.clone();
            bad[at] ^= 0x01;
            match run(&bad, usize::MAX, true) {
                Err(DecodeError::Decompress { reason, .. }) => {
                    assert!(reason.contains("checksum"), "{what}: {reason}")
                }
                other => panic!("{what}: {other:?}"),
            }
        }
        // A wrong header checksum is what legacy producers wrote: accepted there.
        let mut legacy = frame.clone();
        legacy[6] ^= 0x01;
        assert_eq!(run(&legacy, usize::MAX, false).unwrap(), data);
    }

    #[test]
    fn a_wrong_content_size_is_refused() {
        let data = text(1_000);
        let mut frame = encode(FrameInfo::new().content_size(Some(1_000)), &data);
        assert_eq!(run(&frame, usize::MAX, true).unwrap(), data);
        // The content size is bytes 6..14; the header checksum after it covers it.
        frame[6..14].copy_from_slice(&999u64.to_le_bytes());
        frame[14] = (twox_hash::XxHash32::oneshot(0, &frame[4..14]) >> 8) as u8;
        assert!(matches!(
            run(&frame, usize::MAX, true),
            Err(DecodeError::Decompress { .. })
        ));
    }

    #[test]
    fn the_limit_holds_at_and_around_block_boundaries() {
        let data = text(200_000);
        for info in [
            FrameInfo::new(),
            FrameInfo::new().block_mode(BlockMode::Linked),
        ] {
            let frame = encode(info, &data);
            for limit in [0, 1, 65_535, 65_536, 65_537, 199_999] {
                assert_eq!(
                    run(&frame, limit, true),
                    Err(DecodeError::DecompressedTooLarge { limit }),
                    "{limit}"
                );
            }
            assert_eq!(run(&frame, 200_000, true).unwrap(), data);
        }
        // An uncompressed block (random bytes do not compress) past the limit.
        let mut x = 0x9E37_79B9u32;
        let noise: Vec<u8> = (0..10_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let frame = encode(FrameInfo::new(), &noise);
        assert_eq!(
            run(&frame, 9_999, true),
            Err(DecodeError::DecompressedTooLarge { limit: 9_999 })
        );
        assert_eq!(run(&frame, 10_000, true).unwrap(), noise);
    }

    /// Every truncation and many single-byte changes of real frames: an error or the
    /// same bytes `lz4_flex`'s own frame decoder gives, never a panic.
    #[test]
    fn damaged_frames_fail_cleanly_and_agree_with_lz4_flex() {
        let data = text(140_000);
        let damaged = [
            FrameInfo::new(),
            FrameInfo::new()
                .block_mode(BlockMode::Linked)
                .block_checksums(true),
            FrameInfo::new()
                .content_checksum(true)
                .content_size(Some(140_000)),
        ]
        .map(|info| encode(info, &data));
        for frame in damaged {
            for cut in (0..frame.len()).step_by(97).chain([frame.len() - 1]) {
                assert!(
                    run(&frame[..cut], usize::MAX, true).is_err(),
                    "cut at {cut}"
                );
            }
            let mut x = 0x1234_5678u32;
            for _ in 0..400 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let mut bad = frame.clone();
                let at = x as usize % bad.len();
                bad[at] = bad[at].wrapping_add((x >> 24) as u8 | 1);
                if let Ok(ours) = run(&bad, 1 << 22, true) {
                    let mut theirs = Vec::new();
                    FrameDecoder::new(&bad[..])
                        .read_to_end(&mut theirs)
                        .expect("lz4_flex accepts what weir accepts");
                    assert_eq!(ours, theirs, "byte {at}");
                }
            }
        }
    }

    /// A frame of two blocks: five literal `a`s, then a literal `a` and a 4-byte
    /// match `offset` bytes back.
    fn reaching_back(offset: u16, linked: bool) -> Vec<u8> {
        let mut f = MAGIC.to_le_bytes().to_vec();
        f.extend_from_slice(&[if linked { 0x40 } else { 0x60 }, 0x40]);
        f.push((twox_hash::XxHash32::oneshot(0, &f[4..6]) >> 8) as u8);
        let first = [0x50, b'a', b'a', b'a', b'a', b'a'];
        let second = [0x10, b'a', offset as u8, (offset >> 8) as u8, 0x00];
        for block in [&first[..], &second[..]] {
            f.extend_from_slice(&(block.len() as u32).to_le_bytes());
            f.extend_from_slice(block);
        }
        f.extend_from_slice(&0u32.to_le_bytes());
        f
    }

    /// A match may copy only what this frame has written: never the stale bytes of the
    /// reused buffer (RUSTSEC-2026-0041 was about those), nor an earlier frame's, nor,
    /// for independent blocks, an earlier block's.
    #[test]
    fn a_match_reaching_before_what_it_may_see_is_refused_not_read() {
        let mut out = Vec::new();
        let secret = encode(FrameInfo::new(), &text(100_000));
        decompress(&secret, &mut out, usize::MAX, true).unwrap();
        // Within the block: fine either way.
        let n = decompress(&reaching_back(1, false), &mut out, usize::MAX, true).unwrap();
        assert_eq!(&out[..n], b"aaaaaaaaaa");
        // Into the first block: only a linked block may.
        let n = decompress(&reaching_back(3, true), &mut out, usize::MAX, true).unwrap();
        assert_eq!(&out[..n], b"aaaaaaaaaa");
        assert!(decompress(&reaching_back(3, false), &mut out, usize::MAX, true).is_err());
        // Past the frame's start, into the buffer's stale bytes or an earlier frame.
        for linked in [false, true] {
            for offset in [7u16, 100, 65_535] {
                let frame = reaching_back(offset, linked);
                let r = decompress(&frame, &mut out, usize::MAX, true);
                assert!(r.is_err(), "offset {offset} linked {linked}: {r:?}");
                let mut both = secret.clone();
                both.extend_from_slice(&frame);
                let r = decompress(&both, &mut out, usize::MAX, true);
                assert!(
                    r.is_err(),
                    "after a frame: offset {offset} linked {linked}: {r:?}"
                );
            }
        }
    }

    #[test]
    fn malformed_descriptors_are_refused() {
        let frame = encode(FrameInfo::new(), b"hello hello hello");
        for (at, value) in [
            (4, 0x00),
            (4, 0xE0),
            (4, 0x62),
            (4, 0x61),
            (5, 0x30),
            (5, 0x41),
        ] {
            let mut bad = frame.clone();
            bad[at] = value;
            assert!(
                run(&bad, usize::MAX, false).is_err(),
                "byte {at} = {value:#x}"
            );
        }
        assert!(run(b"", usize::MAX, true).is_err());
        assert!(run(&[0x04, 0x22, 0x4D], usize::MAX, true).is_err());
        assert!(run(b"not an lz4 frame", usize::MAX, true).is_err());
    }
}
