//! `txn_filter`: random aborted-transaction lists and batch sequences, built as real
//! batches, through the read_committed filter.
//!
//! Checked for every batch: the filter never panics; a non-transactional batch is
//! always delivered; a control batch never is; a transactional batch of a producer
//! with no aborted entry is always delivered; and every verdict equals the one a
//! small independent model of the Java consumer's rules gives. Delivered batches'
//! records decode to exactly what was built.

use std::collections::BTreeSet;

use arbitrary::Unstructured;
use weir_protocol::control::ControlKind;
use weir_protocol::txn::{AbortedTxn, BatchMeta};
use weir_protocol::{
    AbortedTxnFilter, Batches, Compression, Decompressor, RecordBatchBuilder, Verdict,
};

use crate::{DECOMPRESS_CAP, Touch};

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Data {
        transactional: bool,
    },
    Marker(ControlKind),
    /// A control batch emptied by compaction.
    EmptyControl,
}

#[derive(Debug)]
struct Desc {
    kind: Kind,
    producer_id: i64,
    base_offset: i64,
    records: u8,
    codec: Compression,
}

fn producer(u: &mut Unstructured<'_>) -> arbitrary::Result<i64> {
    // A handful of producers so that aborted entries and batches meet, plus -1.
    Ok(i64::from(u.int_in_range(0u8..=5)?) - 1)
}

/// The model: the Java consumer's rules, written independently of the filter.
struct Model {
    /// Aborted entries not yet reached, in any order.
    unseen: Vec<AbortedTxn>,
    /// Producers with an open aborted transaction.
    open: BTreeSet<i64>,
}

impl Model {
    fn verdict(&mut self, kind: Kind, producer_id: i64, last_offset: i64) -> Verdict {
        let (reached, rest): (Vec<_>, Vec<_>) = self
            .unseen
            .iter()
            .partition(|a| a.first_offset <= last_offset);
        self.unseen = rest;
        self.open.extend(reached.iter().map(|a| a.producer_id));
        match kind {
            Kind::Marker(k) => {
                if k == ControlKind::Abort {
                    self.open.remove(&producer_id);
                }
                Verdict::Control(k)
            }
            Kind::EmptyControl => Verdict::Control(ControlKind::Unknown(-1)),
            Kind::Data { transactional } => {
                if transactional && self.open.contains(&producer_id) {
                    Verdict::SkipAborted
                } else {
                    Verdict::Deliver
                }
            }
        }
    }
}

fn value_of(batch: usize, record: u8) -> [u8; 3] {
    [(batch >> 8) as u8, batch as u8, record]
}

fn run(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let n_aborted = u.int_in_range(0u8..=8)?;
    let mut aborted = Vec::new();
    for _ in 0..n_aborted {
        let producer_id = producer(u)?;
        let first_offset = if u.ratio(1, 16)? {
            u.arbitrary()?
        } else {
            i64::from(u.int_in_range(-2i8..=100)?)
        };
        aborted.push(AbortedTxn {
            producer_id,
            first_offset,
        });
    }

    let n_batches = u.int_in_range(0u8..=24)?;
    let mut descs = Vec::new();
    let mut offset = i64::from(u.int_in_range(0u8..=10)?);
    for _ in 0..n_batches {
        let kind = match u.int_in_range(0u8..=9)? {
            0..=2 => Kind::Data {
                transactional: false,
            },
            3..=6 => Kind::Data {
                transactional: true,
            },
            7 => Kind::Marker(ControlKind::Abort),
            8 => Kind::Marker(if u.ratio(1, 8)? {
                ControlKind::Unknown(u.int_in_range(2i16..=5)?)
            } else {
                ControlKind::Commit
            }),
            _ => Kind::EmptyControl,
        };
        let records = match kind {
            Kind::Data { .. } => u.int_in_range(1u8..=4)?,
            _ => 1,
        };
        // Control batches are written uncompressed by brokers.
        let codec = match kind {
            Kind::Data { .. } => CODECS[usize::from(u.int_in_range(0u8..=4)?)],
            _ => Compression::None,
        };
        let producer_id = producer(u)?;
        descs.push(Desc {
            kind,
            producer_id,
            base_offset: offset,
            records,
            codec,
        });
        // Usually consecutive, sometimes a gap (compaction), rarely backwards.
        offset += i64::from(records);
        offset += match u.int_in_range(0u8..=15)? {
            0..=11 => 0,
            12..=14 => i64::from(u.int_in_range(1u8..=20)?),
            _ => -i64::from(u.int_in_range(1u8..=20)?),
        };
    }

    let mut blob = Vec::new();
    for (i, d) in descs.iter().enumerate() {
        match d.kind {
            Kind::Data { transactional } => {
                let mut b = RecordBatchBuilder::new(d.base_offset)
                    .producer(d.producer_id, 0, 0)
                    .transactional(transactional)
                    .compression(d.codec);
                for r in 0..d.records {
                    b.append(1_700_000_000_000, None, Some(&value_of(i, r)));
                }
                b.write_to(&mut blob);
            }
            Kind::Marker(k) => blob.extend(RecordBatchBuilder::control_marker(
                d.base_offset,
                d.producer_id,
                0,
                k,
                7,
                1_700_000_000_000,
            )),
            Kind::EmptyControl => {
                RecordBatchBuilder::new(d.base_offset)
                    .producer(d.producer_id, 0, -1)
                    .transactional(true)
                    .control(true)
                    .write_to(&mut blob);
            }
        }
    }

    let mut filter = AbortedTxnFilter::new(&aborted);
    let mut meta_filter = AbortedTxnFilter::new(&aborted);
    let mut model = Model {
        unseen: aborted.clone(),
        open: BTreeSet::new(),
    };
    let no_aborted_entry = |pid: i64| aborted.iter().all(|a| a.producer_id != pid);
    let mut dec = Decompressor::with_limit(DECOMPRESS_CAP);
    let mut t = Touch::default();
    let mut seen = 0usize;
    for (i, b) in Batches::new(&blob).enumerate() {
        let b = b.unwrap_or_else(|e| panic!("built batch {i} did not parse: {e}"));
        let d = &descs[i];
        seen += 1;
        assert_eq!(b.verify_crc(), Ok(()), "built batch {i} has a bad CRC");
        assert_eq!(b.base_offset(), d.base_offset);
        assert_eq!(b.producer_id(), d.producer_id);
        let last = b.last_offset();
        let expected_last = match d.kind {
            Kind::EmptyControl => d.base_offset,
            _ => d.base_offset + i64::from(d.records) - 1,
        };
        assert_eq!(last, expected_last, "batch {i} last offset");

        let v = filter
            .judge_batch(&b)
            .unwrap_or_else(|e| panic!("judge_batch failed on built batch {i}: {e}"));
        let meta = BatchMeta::of(&b).unwrap_or_else(|e| panic!("BatchMeta::of batch {i}: {e}"));
        assert_eq!(meta_filter.judge(meta), v, "judge and judge_batch disagree");
        let expected = model.verdict(d.kind, d.producer_id, last);
        assert_eq!(v, expected, "batch {i} {d:?} with aborted {aborted:?}");

        match d.kind {
            Kind::Data {
                transactional: false,
            } => assert_eq!(
                v,
                Verdict::Deliver,
                "non-transactional batch {i} not delivered"
            ),
            Kind::Data {
                transactional: true,
            } if no_aborted_entry(d.producer_id) => {
                assert_eq!(
                    v,
                    Verdict::Deliver,
                    "clean transactional batch {i} not delivered"
                );
            }
            Kind::Data { .. } => {}
            Kind::Marker(_) | Kind::EmptyControl => {
                assert!(
                    matches!(v, Verdict::Control(_)),
                    "control batch {i} judged {v:?}"
                );
            }
        }

        if v == Verdict::Deliver {
            let recs = b
                .records(&mut dec)
                .unwrap_or_else(|e| panic!("records of batch {i}: {e}"));
            let mut n = 0u8;
            for r in recs {
                let r = r.unwrap_or_else(|e| panic!("record of batch {i}: {e}"));
                assert_eq!(r.offset(), d.base_offset + i64::from(n));
                assert_eq!(r.value(), Some(&value_of(i, n)[..]));
                t.int(r.timestamp());
                n += 1;
            }
            assert_eq!(n, d.records, "batch {i} record count");
        }
    }
    assert_eq!(seen, descs.len(), "not every built batch was walked");
    t.finish();
    Ok(())
}

/// The `txn_filter` target.
pub fn txn_filter(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = run(&mut u);
}
