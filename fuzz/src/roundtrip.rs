//! `record_roundtrip`: the input drives a [`RecordBatchBuilder`] (or a legacy
//! message-set writer); the bytes are decoded through the views and compared with
//! what was appended, then re-encoded from the decoded values and compared byte for
//! byte (decode-then-re-encode).

use arbitrary::Unstructured;
use weir_protocol::record::{LegacyMessageSetWriter, NO_TIMESTAMP};
use weir_protocol::{
    Batch, Batches, Compression, Decompressor, Header, RecordBatchBuilder, TimestampType,
};

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// One appended record, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    skip: i32,
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

#[derive(Debug, Clone)]
struct Config {
    base_offset: i64,
    partition_leader_epoch: i32,
    codec: Compression,
    log_append_time: Option<i64>,
    transactional: bool,
    control: bool,
    producer: (i64, i16, i32),
    base_timestamp: Option<i64>,
}

impl Config {
    fn builder(&self) -> RecordBatchBuilder {
        let mut b = RecordBatchBuilder::new(self.base_offset)
            .partition_leader_epoch(self.partition_leader_epoch)
            .compression(self.codec)
            .transactional(self.transactional)
            .control(self.control)
            .producer(self.producer.0, self.producer.1, self.producer.2);
        if let Some(t) = self.log_append_time {
            b = b.log_append_time(t);
        }
        if let Some(t) = self.base_timestamp {
            b = b.base_timestamp(t);
        }
        b
    }
}

fn bytes(u: &mut Unstructured<'_>, max: usize) -> arbitrary::Result<Vec<u8>> {
    let n = u.int_in_range(0..=max)?.min(u.len());
    Ok(u.bytes(n)?.to_vec())
}

fn opt_bytes(u: &mut Unstructured<'_>, max: usize) -> arbitrary::Result<Option<Vec<u8>>> {
    if u.ratio(1, 6)? {
        Ok(None)
    } else {
        bytes(u, max).map(Some)
    }
}

fn timestamp(u: &mut Unstructured<'_>) -> arbitrary::Result<i64> {
    Ok(if u.ratio(1, 8)? {
        u.arbitrary()?
    } else {
        1_700_000_000_000 + i64::from(u.int_in_range(-100_000i32..=100_000)?)
    })
}

fn rec(u: &mut Unstructured<'_>, with_headers: bool) -> arbitrary::Result<Rec> {
    let skip = if u.ratio(1, 8)? {
        i32::from(u.int_in_range(1u16..=1000)?)
    } else {
        0
    };
    let timestamp = timestamp(u)?;
    let key = opt_bytes(u, 64)?;
    let value = opt_bytes(u, 1024)?;
    let mut headers = Vec::new();
    if with_headers {
        for _ in 0..u.int_in_range(0u8..=4)? {
            headers.push((bytes(u, 16)?, opt_bytes(u, 32)?));
        }
    }
    Ok(Rec {
        skip,
        timestamp,
        key,
        value,
        headers,
    })
}

/// The `record_roundtrip` target: byte 0 chooses magic 2 or a legacy message set.
pub fn record_roundtrip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = match u.int_in_range(0u8..=3) {
        Ok(0) => legacy(&mut u),
        _ => v2(&mut u),
    };
}

fn v2(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let cfg = Config {
        // Offsets a log can hold (the builder adds deltas without wrapping).
        base_offset: u.int_in_range(0..=i64::MAX / 2)?,
        partition_leader_epoch: u.arbitrary()?,
        codec: CODECS[usize::from(u.int_in_range(0u8..=4)?)],
        log_append_time: if u.ratio(1, 4)? {
            Some(timestamp(u)?)
        } else {
            None
        },
        transactional: u.arbitrary()?,
        control: u.ratio(1, 8)?,
        producer: if u.ratio(1, 2)? {
            (
                u.int_in_range(0..=i64::MAX)?,
                u.int_in_range(0..=i16::MAX)?,
                u.int_in_range(0..=i32::MAX)?,
            )
        } else {
            (-1, -1, -1)
        },
        base_timestamp: if u.ratio(1, 8)? {
            Some(timestamp(u)?)
        } else {
            None
        },
    };
    let mut recs = Vec::new();
    for _ in 0..u.int_in_range(0u8..=16)? {
        recs.push(rec(u, true)?);
    }

    let mut b = cfg.builder();
    for r in &recs {
        b.skip_offsets(r.skip);
        append(&mut b, r);
    }
    assert_eq!(b.len(), recs.len());
    let bytes = b.build();

    // Decode: exactly one batch, spanning all bytes, with a good CRC.
    let mut it = Batches::new(&bytes);
    let batch = match it.next() {
        Some(Ok(batch)) => batch,
        other => panic!("built batch did not parse: {other:?}"),
    };
    assert!(it.next().is_none() && !it.is_truncated());
    assert_eq!(it.consumed(), bytes.len());
    let Batch::V2(rb) = batch else {
        panic!("magic {} from the v2 builder", batch.magic())
    };
    assert_eq!(rb.verify_crc(), Ok(()));
    assert_eq!(rb.base_offset(), cfg.base_offset);
    assert_eq!(rb.partition_leader_epoch(), cfg.partition_leader_epoch);
    assert_eq!(rb.compression(), Ok(cfg.codec));
    assert_eq!(rb.is_transactional(), cfg.transactional);
    assert_eq!(rb.is_control(), cfg.control);
    assert_eq!(rb.producer_id(), cfg.producer.0);
    assert_eq!(rb.producer_epoch(), cfg.producer.1);
    assert_eq!(rb.base_sequence(), cfg.producer.2);
    assert_eq!(rb.record_count() as usize, recs.len());
    let ts_type = if cfg.log_append_time.is_some() {
        TimestampType::LogAppendTime
    } else {
        TimestampType::CreateTime
    };
    assert_eq!(rb.timestamp_type(), ts_type);
    let expected_max = match cfg.log_append_time {
        Some(t) => t,
        None => recs
            .iter()
            .map(|r| r.timestamp)
            .fold(NO_TIMESTAMP, i64::max),
    };
    assert_eq!(rb.max_timestamp(), expected_max);

    let mut d = Decompressor::with_limit(4 * 1024 * 1024);
    let mut delta = 0i64;
    let mut decoded = Vec::new();
    let mut last_delta = 0i64;
    for (i, r) in rb
        .records(&mut d)
        .expect("records of a built batch")
        .enumerate()
    {
        let r = r.unwrap_or_else(|e| panic!("record {i} of a built batch: {e}"));
        let want = &recs[i];
        delta += i64::from(want.skip);
        last_delta = delta;
        assert_eq!(r.offset(), cfg.base_offset + delta, "record {i} offset");
        let ts = cfg.log_append_time.unwrap_or(want.timestamp);
        assert_eq!(r.timestamp(), ts, "record {i} timestamp");
        assert_eq!(r.key(), want.key.as_deref(), "record {i} key");
        assert_eq!(r.value(), want.value.as_deref(), "record {i} value");
        let seq = if cfg.producer.2 < 0 {
            -1
        } else {
            ((i64::from(cfg.producer.2) + delta) % (1i64 << 31)) as i32
        };
        assert_eq!(r.sequence(), seq, "record {i} sequence");
        let headers: Vec<(Vec<u8>, Option<Vec<u8>>)> = r
            .headers()
            .map(|h| {
                let h = h.unwrap_or_else(|e| panic!("header of record {i}: {e}"));
                (h.key.to_vec(), h.value.map(<[u8]>::to_vec))
            })
            .collect();
        assert_eq!(headers, want.headers, "record {i} headers");
        decoded.push(Rec {
            skip: want.skip,
            // Re-encode what the view reports (LogAppendTime hides the original, so
            // keep the appended value there).
            timestamp: if cfg.log_append_time.is_some() {
                want.timestamp
            } else {
                r.timestamp()
            },
            key: r.key().map(<[u8]>::to_vec),
            value: r.value().map(<[u8]>::to_vec),
            headers,
        });
        delta += 1;
    }
    assert_eq!(decoded.len(), recs.len(), "record count");
    assert_eq!(
        rb.last_offset_delta() as i64,
        last_delta,
        "last offset delta"
    );

    // Re-encode from the decoded values: the same bytes.
    let mut again = cfg.builder();
    for r in &decoded {
        again.skip_offsets(r.skip);
        append(&mut again, r);
    }
    assert!(
        again.build() == bytes,
        "re-encoding the decoded batch changed its bytes"
    );
    Ok(())
}

fn append(b: &mut RecordBatchBuilder, r: &Rec) {
    let headers: Vec<Header<'_>> = r
        .headers
        .iter()
        .map(|(k, v)| Header {
            key: k,
            value: v.as_deref(),
        })
        .collect();
    b.append_with_headers(r.timestamp, r.key.as_deref(), r.value.as_deref(), &headers);
}

fn legacy(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let magic: i8 = if u.arbitrary()? { 1 } else { 0 };
    // zstd is not a legacy codec.
    let codec = CODECS[usize::from(u.int_in_range(0u8..=3)?)];
    // Only a compressed wrapper carries the LogAppendTime flag.
    let log_append_time = if magic == 1 && codec != Compression::None && u.ratio(1, 4)? {
        Some(timestamp(u)?)
    } else {
        None
    };
    let mut offset: i64 = u.int_in_range(0..=i64::MAX / 2)?;
    let mut recs = Vec::new();
    for _ in 0..u.int_in_range(1u8..=12)? {
        let r = rec(u, false)?;
        offset += i64::from(r.skip);
        recs.push((offset, r));
        offset += 1;
    }
    let mut w = LegacyMessageSetWriter::new(magic);
    for (o, r) in &recs {
        w.append(*o, r.timestamp, r.key.as_deref(), r.value.as_deref());
    }
    let bytes = if codec == Compression::None {
        w.build()
    } else {
        w.build_compressed(codec, log_append_time)
    };

    let mut d = Decompressor::with_limit(4 * 1024 * 1024);
    let mut got = Vec::new();
    let mut batches = Batches::new(&bytes);
    for b in &mut batches {
        let b = b.unwrap_or_else(|e| panic!("legacy message did not parse: {e}"));
        assert_eq!(b.magic(), magic);
        assert_eq!(b.verify_crc(), Ok(()), "legacy CRC");
        assert_eq!(b.compression(), Ok(codec));
        let expected_type = match (magic, log_append_time) {
            (0, _) => TimestampType::NoTimestamp,
            (_, Some(_)) => TimestampType::LogAppendTime,
            _ => TimestampType::CreateTime,
        };
        assert_eq!(b.timestamp_type(), expected_type);
        for r in b.records(&mut d).expect("records of a legacy message") {
            let r = r.unwrap_or_else(|e| panic!("legacy record: {e}"));
            got.push((
                r.offset(),
                r.timestamp(),
                r.key().map(<[u8]>::to_vec),
                r.value().map(<[u8]>::to_vec),
            ));
        }
    }
    assert!(!batches.is_truncated());
    assert_eq!(batches.consumed(), bytes.len());
    let want: Vec<_> = recs
        .iter()
        .map(|(o, r)| {
            let ts = match (magic, log_append_time) {
                (0, _) => NO_TIMESTAMP,
                (_, Some(t)) => t,
                _ => r.timestamp,
            };
            (*o, ts, r.key.clone(), r.value.clone())
        })
        .collect();
    assert_eq!(got, want, "legacy round trip (magic {magic}, {codec:?})");

    // Re-encode from the decoded values: the same bytes.
    let mut again = LegacyMessageSetWriter::new(magic);
    for (o, ts, k, v) in &got {
        // Magic 1 under LogAppendTime reports the wrapper's time; write the originals.
        let ts = if magic == 1 && log_append_time.is_some() {
            recs.iter()
                .find(|(ro, _)| ro == o)
                .map_or(*ts, |(_, r)| r.timestamp)
        } else if magic == 0 {
            recs.iter()
                .find(|(ro, _)| ro == o)
                .map_or(*ts, |(_, r)| r.timestamp)
        } else {
            *ts
        };
        again.append(*o, ts, k.as_deref(), v.as_deref());
    }
    let bytes_again = if codec == Compression::None {
        again.build()
    } else {
        again.build_compressed(codec, log_append_time)
    };
    assert!(
        bytes_again == bytes,
        "re-encoding the decoded message set changed its bytes"
    );
    Ok(())
}
