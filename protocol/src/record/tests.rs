//! Tests for record batches: field accessors, CRC ranges, records, headers, legacy
//! messages, truncation and mutation robustness, and a differential test against
//! kafka-protocol's encoder.

use super::*;
use crate::control::ControlKind;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// An owned copy of a record, for comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owned {
    offset: i64,
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

fn own(r: &Record<'_>) -> Owned {
    Owned {
        offset: r.offset(),
        timestamp: r.timestamp(),
        key: r.key().map(<[u8]>::to_vec),
        value: r.value().map(<[u8]>::to_vec),
        headers: r
            .headers()
            .map(|h| {
                let h = h.unwrap();
                (h.key.to_vec(), h.value.map(<[u8]>::to_vec))
            })
            .collect(),
    }
}

fn all_records(blob: &[u8]) -> Vec<Owned> {
    let mut d = Decompressor::new();
    let mut out = Vec::new();
    for b in Batches::new(blob) {
        let b = b.unwrap();
        b.verify_crc().unwrap();
        for r in b.records(&mut d).unwrap() {
            out.push(own(&r.unwrap()));
        }
    }
    out
}

fn sample_batch(codec: Compression) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(1000)
        .compression(codec)
        .partition_leader_epoch(7)
        .producer(4242, 3, 17);
    b.append(1_000, Some(b"k0"), Some(b"v0"));
    b.append(999, None, Some(b""));
    b.append(1_005, Some(b""), None);
    b.append_with_headers(
        1_010,
        Some(b"k3"),
        Some(b"value three"),
        &[
            Header {
                key: b"h1",
                value: Some(b"x"),
            },
            Header {
                key: b"",
                value: None,
            },
            Header {
                key: b"h3",
                value: Some(b""),
            },
        ],
    );
    b.build()
}

fn expected_sample() -> Vec<Owned> {
    vec![
        Owned {
            offset: 1000,
            timestamp: 1000,
            key: Some(b"k0".to_vec()),
            value: Some(b"v0".to_vec()),
            headers: vec![],
        },
        Owned {
            offset: 1001,
            timestamp: 999,
            key: None,
            value: Some(vec![]),
            headers: vec![],
        },
        Owned {
            offset: 1002,
            timestamp: 1005,
            key: Some(vec![]),
            value: None,
            headers: vec![],
        },
        Owned {
            offset: 1003,
            timestamp: 1010,
            key: Some(b"k3".to_vec()),
            value: Some(b"value three".to_vec()),
            headers: vec![
                (b"h1".to_vec(), Some(b"x".to_vec())),
                (vec![], None),
                (b"h3".to_vec(), Some(vec![])),
            ],
        },
    ]
}

#[test]
fn header_fields() {
    let bytes = {
        let mut b = RecordBatchBuilder::new(1000)
            .partition_leader_epoch(7)
            .producer(4242, 3, 17)
            .transactional(true);
        b.append(5_000, None, Some(b"a"));
        b.skip_offsets(3);
        b.append(4_000, None, Some(b"b"));
        b.build()
    };
    let b = RecordBatch::parse(&bytes).unwrap();
    assert_eq!(b.base_offset(), 1000);
    assert_eq!(b.batch_length() as usize, bytes.len() - 12);
    assert_eq!(b.len(), bytes.len());
    assert_eq!(b.bytes(), &bytes[..]);
    assert_eq!(b.partition_leader_epoch(), 7);
    assert_eq!(b.magic(), 2);
    assert_eq!(b.crc(), crc32c::crc32c(&bytes[21..]));
    assert_eq!(b.compression().unwrap(), Compression::None);
    assert_eq!(b.timestamp_type(), TimestampType::CreateTime);
    assert!(b.is_transactional());
    assert!(!b.is_control());
    assert_eq!(b.last_offset_delta(), 4);
    assert_eq!(b.base_timestamp(), 5_000);
    assert_eq!(b.max_timestamp(), 5_000);
    assert_eq!(b.producer_id(), 4242);
    assert_eq!(b.producer_epoch(), 3);
    assert_eq!(b.base_sequence(), 17);
    assert_eq!(b.record_count(), 2);
    assert_eq!(b.last_offset(), 1004);
    assert_eq!(b.next_offset(), 1005);
    let recs: Vec<_> = b
        .records_uncompressed()
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(recs[0].offset(), 1000);
    assert_eq!(recs[0].sequence(), 17);
    assert_eq!(recs[1].offset(), 1004);
    assert_eq!(recs[1].timestamp(), 4_000);
    assert_eq!(recs[1].sequence(), 21);
    b.verify_crc().unwrap();
}

#[test]
fn records_keys_values_headers_every_codec() {
    for codec in CODECS {
        let bytes = sample_batch(codec);
        let batch = RecordBatch::parse(&bytes).unwrap();
        assert_eq!(batch.compression().unwrap(), codec);
        assert_eq!(all_records(&bytes), expected_sample(), "{codec:?}");
        // Header count is reported before iterating.
        let mut d = Decompressor::new();
        let b = Batch::V2(batch);
        let last = b.records(&mut d).unwrap().last().unwrap().unwrap();
        assert_eq!(last.headers().len(), 3);
    }
}

#[test]
fn log_append_time_overrides_record_timestamps() {
    let mut b = RecordBatchBuilder::new(0).log_append_time(77_777);
    b.append(1, None, Some(b"a")).append(2, None, Some(b"b"));
    let bytes = b.build();
    let batch = RecordBatch::parse(&bytes).unwrap();
    assert_eq!(batch.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(batch.max_timestamp(), 77_777);
    for r in batch.records_uncompressed().unwrap() {
        assert_eq!(r.unwrap().timestamp(), 77_777);
    }
}

#[test]
fn crc_covers_attributes_to_end_but_not_leader_epoch() {
    let bytes = sample_batch(Compression::None);
    RecordBatch::parse(&bytes).unwrap().verify_crc().unwrap();
    // Every byte from the attributes to the end is covered.
    for i in V2_CRC_START..bytes.len() {
        let mut m = bytes.clone();
        m[i] ^= 0x01;
        let b = RecordBatch::parse(&m).unwrap();
        assert!(
            matches!(b.verify_crc(), Err(DecodeError::CrcMismatch { .. })),
            "byte {i} not covered"
        );
    }
    // The stored CRC itself.
    for i in 17..21 {
        let mut m = bytes.clone();
        m[i] ^= 0x80;
        assert!(RecordBatch::parse(&m).unwrap().verify_crc().is_err());
    }
    // The partition leader epoch (and base offset) are outside the range.
    let mut m = bytes.clone();
    m[12..16].copy_from_slice(&99i32.to_be_bytes());
    m[0..8].copy_from_slice(&5i64.to_be_bytes());
    let b = RecordBatch::parse(&m).unwrap();
    assert_eq!(b.partition_leader_epoch(), 99);
    b.verify_crc().unwrap();
}

/// Rewrite the record count and fix the CRC.
fn with_count(bytes: &[u8], count: i32) -> Vec<u8> {
    let mut m = bytes.to_vec();
    m[57..61].copy_from_slice(&count.to_be_bytes());
    let crc = crc32c::crc32c(&m[21..]);
    m[17..21].copy_from_slice(&crc.to_be_bytes());
    m
}

#[test]
fn record_count_must_match() {
    let bytes = sample_batch(Compression::None);
    let decode = |b: &[u8]| -> Vec<Result<Owned, DecodeError>> {
        let batch = RecordBatch::parse(b).unwrap();
        batch
            .records_uncompressed()
            .unwrap()
            .map(|r| r.map(|r| own(&r)))
            .collect()
    };
    // Fewer records than the count says.
    let r = decode(&with_count(&bytes, 5));
    assert_eq!(r.len(), 5);
    assert!(r[..4].iter().all(Result::is_ok));
    assert!(r[4].is_err());
    // More records than the count says.
    let r = decode(&with_count(&bytes, 3));
    assert_eq!(r.len(), 4);
    assert!(r[3].is_err());
    // A huge count is not trusted.
    let r = decode(&with_count(&bytes, i32::MAX));
    assert_eq!(r.len(), 5);
    let r = decode(&with_count(&bytes, -1));
    assert_eq!(r.len(), 1);
    assert!(r[0].is_err());
    // Zero records, zero bytes: fine.
    let empty = RecordBatchBuilder::new(5).build();
    assert!(decode(&empty).is_empty());
}

#[test]
fn record_overrunning_the_batch_is_an_error() {
    let mut b = RecordBatchBuilder::new(0);
    b.append(0, None, Some(b"hello"));
    let mut bytes = b.build();
    // The first record's length varint is at byte 61; make it claim 60 bytes.
    assert!(bytes[61] < 0x80);
    bytes[61] = 60 << 1;
    let batch = RecordBatch::parse(&bytes).unwrap();
    let r: Vec<_> = batch.records_uncompressed().unwrap().collect();
    assert_eq!(r.len(), 1);
    assert!(matches!(r[0], Err(DecodeError::LengthTooLarge { .. })));
}

#[test]
fn malformed_headers_are_reported() {
    let mut b = RecordBatchBuilder::new(0);
    b.append_with_headers(
        0,
        None,
        Some(b"v"),
        &[Header {
            key: b"k",
            value: Some(b"v"),
        }],
    );
    let bytes = b.build();
    // Record: len, attr, ts, off, key(-1), vlen, 'v', hcount, klen, 'k', vlen, 'v'
    let hcount_at = 61 + 1 + 1 + 1 + 1 + 1 + 1 + 1;
    assert_eq!(bytes[hcount_at], 2); // zig-zag 1
    // A header count of 2 with bytes for one: the second is an error, not a panic.
    let mut m = bytes.clone();
    m[hcount_at] = 4;
    let batch = RecordBatch::parse(&m).unwrap();
    let rec = batch
        .records_uncompressed()
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let hs: Vec<_> = rec.headers().collect();
    assert_eq!(hs.len(), 2);
    assert!(hs[0].is_ok() && hs[1].is_err());
    // A header count of 0 with header bytes left: trailing bytes in the record.
    let mut m = bytes.clone();
    m[hcount_at] = 0;
    let batch = RecordBatch::parse(&m).unwrap();
    assert!(
        batch
            .records_uncompressed()
            .unwrap()
            .next()
            .unwrap()
            .is_err()
    );
}

#[test]
fn batches_walk_mixed_blob_and_truncated_tail() {
    let mut blob = Vec::new();
    let mut legacy = LegacyMessageSetWriter::new(1);
    legacy.append(10, 100, Some(b"lk"), Some(b"lv"));
    blob.extend(legacy.build());
    let mut b = RecordBatchBuilder::new(11);
    b.append(200, None, Some(b"x"))
        .append(201, None, Some(b"y"));
    blob.extend(b.build());
    let full_len = blob.len();
    let mut c = RecordBatchBuilder::new(13).compression(Compression::Gzip);
    c.append(300, None, Some(b"z"));
    let third = c.build();
    blob.extend(&third[..third.len() - 3]);

    let mut it = Batches::new(&blob);
    let kinds: Vec<i8> = it.by_ref().map(|b| b.unwrap().magic()).collect();
    assert_eq!(kinds, vec![1, 2]);
    assert!(it.is_truncated());
    assert_eq!(it.consumed(), full_len);
    assert_eq!(it.rest().len(), third.len() - 3);

    let offs: Vec<i64> = all_records(&blob).iter().map(|r| r.offset).collect();
    assert_eq!(offs, vec![10, 11, 12]);

    let batches: Vec<Batch<'_>> = Batches::new(&blob).map(|b| b.unwrap()).collect();
    assert_eq!(batches[0].base_offset(), 10);
    assert_eq!(batches[0].next_offset(), 11);
    assert_eq!(batches[1].base_offset(), 11);
    assert_eq!(batches[1].last_offset(), 12);
    assert_eq!(batches[1].producer_id(), -1);

    // A complete blob is not truncated.
    let mut it = Batches::new(&blob[..full_len]);
    assert_eq!(it.by_ref().count(), 2);
    assert!(!it.is_truncated());
}

#[test]
fn bad_lengths_and_magic_are_errors() {
    let mut b = RecordBatchBuilder::new(0);
    b.append(0, None, Some(b"x"));
    let good = b.build();
    // Negative length.
    let mut m = good.clone();
    m[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    let r: Vec<_> = Batches::new(&m).collect();
    assert!(matches!(r[..], [Err(DecodeError::NegativeLength { .. })]));
    // Below any header size.
    let mut m = good.clone();
    m[8..12].copy_from_slice(&5i32.to_be_bytes());
    let r: Vec<_> = Batches::new(&m).collect();
    assert!(matches!(r[..], [Err(DecodeError::Invalid { .. })]));
    // Below the magic-2 header size but above the legacy minimum.
    let mut m = good[..12 + 30].to_vec();
    m[8..12].copy_from_slice(&30i32.to_be_bytes());
    let r: Vec<_> = Batches::new(&m).collect();
    assert!(matches!(r[..], [Err(_)]));
    // Unknown magic.
    let mut m = good.clone();
    m[16] = 3;
    let r: Vec<_> = Batches::new(&m).collect();
    assert!(matches!(r[..], [Err(DecodeError::UnsupportedMagic(3))]));
    // An error ends iteration even with good batches after it.
    let mut m2 = m.clone();
    m2.extend(&good);
    assert_eq!(Batches::new(&m2).count(), 1);
    // Unknown codec.
    let mut m = good.clone();
    m[22] |= 0x07;
    let b = Batch::parse(&m).unwrap();
    assert_eq!(b.compression(), Err(DecodeError::UnknownCompression(7)));
    assert!(b.records(&mut Decompressor::new()).is_err());
}

fn multi_batch_blob() -> Vec<u8> {
    let mut blob = Vec::new();
    for (i, codec) in CODECS.into_iter().enumerate() {
        let mut b = RecordBatchBuilder::new(i as i64 * 10).compression(codec);
        b.append_with_headers(
            5,
            Some(b"k"),
            Some(b"v"),
            &[Header {
                key: b"h",
                value: None,
            }],
        );
        b.append(6, None, None);
        blob.extend(b.build());
    }
    let mut l = LegacyMessageSetWriter::new(1);
    l.append(50, 1, Some(b"a"), Some(b"b"))
        .append(51, 2, None, Some(b"c"));
    blob.extend(l.build_compressed(Compression::Snappy, None));
    let mut l = LegacyMessageSetWriter::new(0);
    l.append(52, 0, None, Some(b"d"));
    blob.extend(l.build());
    blob
}

/// Walk everything, touching every field; return how many records decoded.
fn exercise(blob: &[u8], d: &mut Decompressor) -> usize {
    let mut n = 0;
    let mut it = Batches::new(blob);
    for b in it.by_ref() {
        let Ok(b) = b else { break };
        let _ = (b.base_offset(), b.last_offset(), b.next_offset(), b.magic());
        let _ = (
            b.is_control(),
            b.is_transactional(),
            b.producer_id(),
            b.timestamp_type(),
        );
        let _ = b.verify_crc();
        let _ = b.control_record();
        let _ = crate::txn::AbortedTxnFilter::new(&[]).judge_batch(&b);
        let Ok(recs) = b.records(d) else { continue };
        for r in recs {
            let Ok(r) = r else { break };
            n += 1;
            let _ = (r.offset(), r.timestamp(), r.key(), r.value(), r.sequence());
            for h in r.headers() {
                if h.is_err() {
                    break;
                }
            }
        }
    }
    let _ = (it.consumed(), it.is_truncated());
    n
}

#[test]
fn every_truncation_is_handled() {
    let blob = multi_batch_blob();
    let mut d = Decompressor::with_limit(1 << 20);
    assert_eq!(exercise(&blob, &mut d), 13);
    let mut boundaries = vec![0];
    for b in Batches::new(&blob) {
        let b = b.unwrap();
        boundaries.push(boundaries.last().unwrap() + b.bytes().len());
    }
    for cut in 0..blob.len() {
        let prefix = &blob[..cut];
        exercise(prefix, &mut d);
        // Complete batches before the cut are yielded; a partial one ends normally.
        let mut it = Batches::new(prefix);
        let complete = it.by_ref().inspect(|b| assert!(b.is_ok())).count();
        let expect = boundaries.iter().filter(|&&e| e > 0 && e <= cut).count();
        assert_eq!(complete, expect, "cut {cut}");
        assert_eq!(it.is_truncated(), !boundaries.contains(&cut), "cut {cut}");
    }
}

#[test]
fn every_single_byte_mutation_is_handled() {
    let mut blob = sample_batch(Compression::None);
    for codec in CODECS.into_iter().skip(1) {
        blob.extend(sample_batch(codec));
    }
    let mut l = LegacyMessageSetWriter::new(0);
    l.append(3, 1, Some(b"a"), Some(b"b"));
    blob.extend(l.build_compressed(Compression::Lz4, None));
    let mut l = LegacyMessageSetWriter::new(1);
    l.append(3, 1, Some(b"a"), Some(b"b"));
    blob.extend(l.build_compressed(Compression::Gzip, Some(9)));
    let mut d = Decompressor::with_limit(1 << 20);
    for i in 0..blob.len() {
        for v in [0x00, 0xff, 0x80, 0x7f, 0x01, blob[i] ^ 0x01, blob[i] ^ 0x40] {
            let mut m = blob.clone();
            m[i] = v;
            exercise(&m, &mut d);
        }
    }
}

#[test]
fn round_trip_random_batches_every_codec() {
    let mut seed = 0x9e37_79b9u32;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    for codec in CODECS {
        for _ in 0..20 {
            let base = i64::from(rnd() % 1_000_000);
            let mut b = RecordBatchBuilder::new(base).compression(codec);
            let mut expected = Vec::new();
            let n = rnd() % 40;
            for _ in 0..n {
                if rnd() % 5 == 0 {
                    b.skip_offsets((rnd() % 3) as i32);
                }
                let ts = 1_700_000_000_000 + i64::from(rnd() % 100_000);
                let key: Option<Vec<u8>> =
                    (rnd() % 3 != 0).then(|| (0..rnd() % 20).map(|_| rnd() as u8).collect());
                let value: Option<Vec<u8>> =
                    (rnd() % 4 != 0).then(|| (0..rnd() % 300).map(|_| rnd() as u8).collect());
                let hs: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..rnd() % 3)
                    .map(|_| {
                        (
                            (0..rnd() % 5).map(|_| b'a' + (rnd() % 26) as u8).collect(),
                            (rnd() % 2 == 0).then(|| (0..rnd() % 9).map(|_| rnd() as u8).collect()),
                        )
                    })
                    .collect();
                let headers: Vec<Header<'_>> = hs
                    .iter()
                    .map(|(k, v)| Header {
                        key: k,
                        value: v.as_deref(),
                    })
                    .collect();
                expected.push(Owned {
                    offset: b.next_offset(),
                    timestamp: ts,
                    key: key.clone(),
                    value: value.clone(),
                    headers: hs.clone(),
                });
                b.append_with_headers(ts, key.as_deref(), value.as_deref(), &headers);
            }
            let bytes = b.build();
            assert_eq!(all_records(&bytes), expected, "{codec:?}");
            let batch = RecordBatch::parse(&bytes).unwrap();
            if let Some(last) = expected.last() {
                assert_eq!(batch.last_offset(), last.offset);
                let max = expected.iter().map(|r| r.timestamp).max().unwrap();
                assert_eq!(batch.max_timestamp(), max);
            }
        }
    }
}

#[test]
fn differential_against_kafka_protocol_encoder() {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression as KCompression, Record as KRecord, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType as KTs,
    };

    let mut records = Vec::new();
    for i in 0..50i64 {
        let mut headers = IndexMap::new();
        for h in 0..(i % 4) {
            let v = if h == 1 {
                None
            } else {
                Some(Bytes::from(vec![h as u8; h as usize]))
            };
            headers.insert(StrBytes::from_string(format!("h{h}")), v);
        }
        records.push(KRecord {
            transactional: true,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 9,
            producer_id: 777,
            producer_epoch: 2,
            timestamp_type: KTs::Creation,
            offset: 5_000 + i,
            sequence: 100 + i as i32,
            timestamp: 1_700_000_000_000 + (i * 37) % 500,
            key: match i % 3 {
                0 => None,
                1 => Some(Bytes::new()),
                _ => Some(Bytes::from(format!("key-{i}"))),
            },
            value: match i % 5 {
                0 => None,
                1 => Some(Bytes::new()),
                _ => Some(Bytes::from(vec![i as u8; (i * 13) as usize])),
            },
            headers,
        });
    }
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: KCompression::None,
        },
    )
    .unwrap();
    let blob = buf.freeze();

    let mut d = Decompressor::new();
    let mut seen = 0usize;
    for b in Batches::new(&blob) {
        let b = b.unwrap();
        b.verify_crc().unwrap();
        let Batch::V2(v2) = b else {
            panic!("expected magic 2")
        };
        assert_eq!(v2.partition_leader_epoch(), 9);
        assert_eq!(v2.producer_id(), 777);
        assert_eq!(v2.producer_epoch(), 2);
        assert!(v2.is_transactional());
        assert!(!v2.is_control());
        for r in b.records(&mut d).unwrap() {
            let r = r.unwrap();
            let k = &records[seen];
            assert_eq!(r.offset(), k.offset);
            assert_eq!(r.timestamp(), k.timestamp);
            assert_eq!(r.sequence(), k.sequence);
            assert_eq!(r.key(), k.key.as_deref());
            assert_eq!(r.value(), k.value.as_deref());
            let hs: Vec<_> = r.headers().map(|h| h.unwrap()).collect();
            assert_eq!(hs.len(), k.headers.len());
            for (h, (kk, kv)) in hs.iter().zip(&k.headers) {
                assert_eq!(h.key, kk.as_bytes());
                assert_eq!(h.value, kv.as_deref());
            }
            seen += 1;
        }
        assert_eq!(v2.last_offset(), records[seen - 1].offset);
    }
    assert_eq!(seen, records.len());
}

#[test]
fn builder_output_decodes_with_kafka_protocol() {
    use kafka_protocol::records::RecordBatchDecoder;
    let bytes = sample_batch(Compression::None);
    let mut buf = bytes::Bytes::from(bytes);
    let set = RecordBatchDecoder::decode(&mut buf).unwrap();
    let want = expected_sample();
    assert_eq!(set.records.len(), want.len());
    for (k, w) in set.records.iter().zip(&want) {
        assert_eq!(k.offset, w.offset);
        assert_eq!(k.timestamp, w.timestamp);
        assert_eq!(k.key.as_deref(), w.key.as_deref());
        assert_eq!(k.value.as_deref(), w.value.as_deref());
        assert_eq!(k.producer_id, 4242);
        assert_eq!(k.sequence, 17 + (w.offset - 1000) as i32);
        assert_eq!(k.headers.len(), w.headers.len());
    }
}

#[test]
fn control_batches() {
    for kind in [ControlKind::Abort, ControlKind::Commit] {
        let bytes = RecordBatchBuilder::control_marker(40, 9, 1, kind, 5, 123);
        let b = Batch::parse(&bytes).unwrap();
        assert!(b.is_control() && b.is_transactional());
        b.verify_crc().unwrap();
        let c = b.control_record().unwrap().unwrap();
        assert_eq!(c.kind, kind);
        assert_eq!(c.coordinator_epoch, 5);
    }
    let mut data = RecordBatchBuilder::new(0);
    data.append(0, None, None);
    let bytes = data.build();
    assert_eq!(
        Batch::parse(&bytes).unwrap().control_record().unwrap(),
        None
    );
}

// ---- legacy message sets ----

#[test]
fn legacy_magic0_and_magic1_plain() {
    let mut w0 = LegacyMessageSetWriter::new(0);
    w0.append(3, 999, Some(b"k"), None)
        .append(4, 999, None, Some(b""));
    let mut w1 = LegacyMessageSetWriter::new(1);
    w1.append(5, 1234, Some(b""), Some(b"v"));
    let mut blob = w0.build();
    blob.extend(w1.build());
    let got = all_records(&blob);
    assert_eq!(
        got,
        vec![
            Owned {
                offset: 3,
                timestamp: NO_TIMESTAMP,
                key: Some(b"k".to_vec()),
                value: None,
                headers: vec![]
            },
            Owned {
                offset: 4,
                timestamp: NO_TIMESTAMP,
                key: None,
                value: Some(vec![]),
                headers: vec![]
            },
            Owned {
                offset: 5,
                timestamp: 1234,
                key: Some(vec![]),
                value: Some(b"v".to_vec()),
                headers: vec![]
            },
        ]
    );
    let msgs: Vec<_> = Batches::new(&blob).map(|b| b.unwrap()).collect();
    let Batch::Legacy(m) = msgs[2] else {
        panic!("legacy expected")
    };
    assert_eq!(m.magic(), 1);
    assert_eq!(m.timestamp_type(), TimestampType::CreateTime);
    assert_eq!(m.crc(), crc32fast::hash(&m.bytes()[16..]));
    assert_eq!(msgs[0].timestamp_type(), TimestampType::NoTimestamp);
    // The legacy CRC covers magic..end; the offset and size are outside it.
    for i in 16..m.bytes().len() {
        let mut b = m.bytes().to_vec();
        b[i] ^= 0x04;
        if let Ok(x) = LegacyMessage::parse(&b) {
            assert!(x.verify_crc().is_err(), "byte {i}");
        }
    }
    let mut b = m.bytes().to_vec();
    b[0] ^= 0x04;
    LegacyMessage::parse(&b).unwrap().verify_crc().unwrap();
}

#[test]
fn legacy_compressed_wrappers() {
    for codec in CODECS
        .into_iter()
        .skip(1)
        .filter(|c| *c != Compression::Zstd)
    {
        for magic in [0i8, 1] {
            let mut w = LegacyMessageSetWriter::new(magic);
            w.append(100, 10, Some(b"a"), Some(b"1"))
                .append(101, 30, None, Some(b"2"))
                .append(104, 20, Some(b"c"), None);
            let blob = w.build_compressed(codec, None);
            let b = Batch::parse(&blob).unwrap();
            b.verify_crc().unwrap();
            assert_eq!(b.compression().unwrap(), codec);
            assert_eq!(b.last_offset(), 104);
            assert_eq!(b.next_offset(), 105);
            // Inner offsets as written: relative for magic 1.
            let Batch::Legacy(m) = b else { panic!() };
            let mut d = Decompressor::new();
            let inner = d.decompress(codec, m.value().unwrap()).unwrap().to_vec();
            let first_inner = i64::from_be_bytes(inner[..8].try_into().unwrap());
            assert_eq!(first_inner, if magic == 1 { 0 } else { 100 });
            let got = all_records(&blob);
            let offs: Vec<i64> = got.iter().map(|r| r.offset).collect();
            assert_eq!(offs, vec![100, 101, 104], "{codec:?} magic {magic}");
            let ts: Vec<i64> = got.iter().map(|r| r.timestamp).collect();
            if magic == 1 {
                assert_eq!(ts, vec![10, 30, 20]);
            } else {
                assert_eq!(ts, vec![NO_TIMESTAMP; 3]);
            }
            assert_eq!(got[2].value, None);
            assert_eq!(got[1].key, None);
        }
    }
}

#[test]
fn legacy_relative_offsets_by_hand() {
    // A magic-1 wrapper at offset 57 holding inner relative offsets 0, 1, 2:
    // absolute = 57 - 2 + relative = 55, 56, 57.
    let mut inner = Vec::new();
    for rel in 0..3 {
        write_legacy_message(&mut inner, rel, 1, 0, 500 + rel, None, Some(&[rel as u8]));
    }
    let mut compressed = Vec::new();
    crate::compression::compress(Compression::Gzip, &inner, &mut compressed);
    let mut blob = Vec::new();
    write_legacy_message(&mut blob, 57, 1, 1, 999, None, Some(&compressed));
    let got = all_records(&blob);
    let offs: Vec<i64> = got.iter().map(|r| r.offset).collect();
    assert_eq!(offs, vec![55, 56, 57]);
    assert_eq!(got[1].value, Some(vec![1]));
    assert_eq!(got[0].timestamp, 500);
    // LogAppendTime wrapper (attribute bit 3): inner timestamps are the wrapper's.
    let mut blob = Vec::new();
    write_legacy_message(&mut blob, 57, 1, 1 | 0x08, 999, None, Some(&compressed));
    let got = all_records(&blob);
    assert!(got.iter().all(|r| r.timestamp == 999));
    let mut w = LegacyMessageSetWriter::new(1);
    w.append(0, 1, None, Some(b"x"));
    let blob = w.build_compressed(Compression::Lz4, Some(4242));
    assert_eq!(all_records(&blob)[0].timestamp, 4242);
}

#[test]
fn legacy_nested_wrapper_and_magic_mismatch_are_errors() {
    let mut w = LegacyMessageSetWriter::new(1);
    w.append(0, 1, None, Some(b"x"));
    let wrapper = w.build_compressed(Compression::Gzip, None);
    // Wrap the wrapper.
    let mut compressed = Vec::new();
    crate::compression::compress(Compression::Gzip, &wrapper, &mut compressed);
    let mut blob = Vec::new();
    write_legacy_message(&mut blob, 0, 1, 1, 0, None, Some(&compressed));
    let b = Batch::parse(&blob).unwrap();
    let mut d = Decompressor::new();
    let r: Vec<_> = b.records(&mut d).unwrap().collect();
    assert!(matches!(r[..], [Err(DecodeError::Invalid { .. })]));
    // Inner magic 0 inside a magic-1 wrapper.
    let mut inner = Vec::new();
    write_legacy_message(&mut inner, 0, 0, 0, 0, None, Some(b"y"));
    let mut compressed = Vec::new();
    crate::compression::compress(Compression::Snappy, &inner, &mut compressed);
    let mut blob = Vec::new();
    write_legacy_message(&mut blob, 0, 1, 2, 0, None, Some(&compressed));
    let b = Batch::parse(&blob).unwrap();
    let r: Vec<_> = b.records(&mut d).unwrap().collect();
    assert!(matches!(r[..], [Err(_)]));
    // A compressed wrapper with a null value.
    let mut blob = Vec::new();
    write_legacy_message(&mut blob, 0, 1, 1, 0, None, None);
    assert!(Batch::parse(&blob).unwrap().records(&mut d).is_err());
}

#[test]
fn legacy_lz4_wrapper_with_kafka_3160_checksum() {
    let mut inner = Vec::new();
    write_legacy_message(&mut inner, 7, 0, 0, 0, None, Some(b"old"));
    let mut c = Vec::new();
    crate::compression::compress(Compression::Lz4, &inner, &mut c);
    c[6] = (twox_hash::XxHash32::oneshot(0, &c[..6]) >> 8) as u8;
    let mut blob = Vec::new();
    write_legacy_message(&mut blob, 7, 0, 3, 0, None, Some(&c));
    let got = all_records(&blob);
    assert_eq!(got[0].value, Some(b"old".to_vec()));
}

#[test]
fn sequences_wrap_at_i32_max() {
    let mut b = RecordBatchBuilder::new(0).producer(1, 0, i32::MAX - 1);
    for _ in 0..3 {
        b.append(0, None, None);
    }
    let bytes = b.build();
    let batch = RecordBatch::parse(&bytes).unwrap();
    let seqs: Vec<i32> = batch
        .records_uncompressed()
        .unwrap()
        .map(|r| r.unwrap().sequence())
        .collect();
    assert_eq!(seqs, [i32::MAX - 1, i32::MAX, 0]);
}

#[test]
fn records_outlive_the_batch_value() {
    // Records borrow the input (or the decompressor), not the `Batch` value.
    let bytes = sample_batch(Compression::None);
    let mut d = Decompressor::new();
    let first = {
        let batch = Batch::parse(&bytes).unwrap();
        batch.records(&mut d).unwrap().next().unwrap().unwrap()
    };
    assert_eq!(first.value(), Some(&b"v0"[..]));
}
