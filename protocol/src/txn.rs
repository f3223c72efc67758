//! Transactions: the aborted-transaction filter for `isolation.level=read_committed`.
//!
//! [`AbortedTxnFilter`] is a pure component: aborted-transaction list in, batches in
//! offset order in, a [`Verdict`] per batch out.

/// One entry of a Fetch response's aborted-transactions list: the producer whose
/// transaction was aborted and the first offset that transaction wrote in this
/// partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AbortedTxn {
    /// The producer id of the aborted transaction.
    pub producer_id: i64,
    /// The first offset of the aborted transaction in this partition.
    pub first_offset: i64,
}

use std::collections::HashSet;

use crate::control::{ControlKind, ControlRecord};
use crate::error::DecodeError;
use crate::record::Batch;

/// What to do with one batch under `read_committed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver the batch's records.
    Deliver,
    /// Skip the batch: it belongs to an aborted transaction.
    SkipAborted,
    /// A control batch (never delivered); carries its marker kind.
    Control(ControlKind),
}

/// The facts about a batch the filter needs (so it can be driven without bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    /// The batch's last offset.
    pub last_offset: i64,
    /// The producer id (-1 for none).
    pub producer_id: i64,
    /// Whether the batch is transactional.
    pub is_transactional: bool,
    /// `Some(kind)` for a control batch.
    pub control: Option<ControlKind>,
}

impl BatchMeta {
    /// The facts of a parsed batch (reads the control record of a control batch).
    pub fn of(batch: &Batch<'_>) -> Result<Self, DecodeError> {
        let control = if batch.is_control() {
            Some(
                batch
                    .control_record()?
                    .map_or(ControlKind::Unknown(-1), |c: ControlRecord| c.kind),
            )
        } else {
            None
        };
        Ok(Self {
            last_offset: batch.last_offset(),
            producer_id: batch.producer_id(),
            is_transactional: batch.is_transactional(),
            control,
        })
    }
}

/// The read_committed filter for one partition of one Fetch response.
///
/// Build it from the partition's aborted-transactions list (any order), then feed it
/// that partition's batches in offset order through [`judge`](Self::judge) or
/// [`judge_batch`](Self::judge_batch). It follows the Java consumer's rules:
///
/// 1. Before judging a batch, every aborted transaction whose first offset is at or
///    below the batch's last offset becomes active for its producer.
/// 2. A control batch is never delivered; an ABORT marker from a producer ends that
///    producer's active aborted transaction.
/// 3. A transactional batch from a producer with an active aborted transaction is
///    skipped; everything else is delivered (non-transactional batches always).
///
/// Create a new filter for every Fetch response, with the list that response gave.
#[derive(Debug, Clone)]
pub struct AbortedTxnFilter {
    /// Pending aborted transactions, sorted by first offset descending (pop = lowest).
    pending: Vec<AbortedTxn>,
    active: HashSet<i64>,
}

impl AbortedTxnFilter {
    /// A filter for one partition's aborted-transactions list.
    pub fn new(aborted: &[AbortedTxn]) -> Self {
        let mut pending = aborted.to_vec();
        pending.sort_unstable_by_key(|t| std::cmp::Reverse(t.first_offset));
        Self {
            pending,
            active: HashSet::new(),
        }
    }

    /// True when no aborted transaction is pending or active (every data batch will
    /// be delivered).
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.active.is_empty()
    }

    /// Judge one batch from its facts.
    pub fn judge(&mut self, batch: BatchMeta) -> Verdict {
        while let Some(t) = self.pending.last() {
            if t.first_offset > batch.last_offset {
                break;
            }
            self.active.insert(t.producer_id);
            self.pending.pop();
        }
        if let Some(kind) = batch.control {
            if kind == ControlKind::Abort {
                self.active.remove(&batch.producer_id);
            }
            return Verdict::Control(kind);
        }
        if batch.is_transactional && self.active.contains(&batch.producer_id) {
            return Verdict::SkipAborted;
        }
        Verdict::Deliver
    }

    /// Judge one parsed batch.
    pub fn judge_batch(&mut self, batch: &Batch<'_>) -> Result<Verdict, DecodeError> {
        Ok(self.judge(BatchMeta::of(batch)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compression::Decompressor;
    use crate::record::{Batches, RecordBatchBuilder};

    fn txn(producer_id: i64, first_offset: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id,
            first_offset,
        }
    }

    /// A transactional data batch of `n` records from `pid` at `base`.
    fn data(base: i64, pid: i64, n: usize, transactional: bool) -> Vec<u8> {
        let mut b = RecordBatchBuilder::new(base)
            .producer(pid, 0, 0)
            .transactional(transactional);
        for i in 0..n {
            let v = format!("p{pid}-o{}", base + i as i64);
            b.append(0, None, Some(v.as_bytes()));
        }
        b.build()
    }

    fn marker(offset: i64, pid: i64, kind: ControlKind) -> Vec<u8> {
        RecordBatchBuilder::control_marker(offset, pid, 0, kind, 0, 0)
    }

    /// Run the filter over a blob; return the delivered values and the verdicts.
    fn run(blob: &[u8], aborted: &[AbortedTxn]) -> (Vec<String>, Vec<Verdict>) {
        let mut f = AbortedTxnFilter::new(aborted);
        let mut d = Decompressor::new();
        let mut delivered = Vec::new();
        let mut verdicts = Vec::new();
        for b in Batches::new(blob) {
            let b = b.unwrap();
            let v = f.judge_batch(&b).unwrap();
            verdicts.push(v);
            if v == Verdict::Deliver {
                for r in b.records(&mut d).unwrap() {
                    let r = r.unwrap();
                    delivered.push(String::from_utf8(r.value().unwrap().to_vec()).unwrap());
                }
            }
        }
        (delivered, verdicts)
    }

    fn blob(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn interleaved_producers() {
        // Producer 1 aborts (offsets 0-1, marker 5); producer 2 commits (2-3, marker 6).
        let b = blob(&[
            data(0, 1, 1, true),
            data(1, 1, 1, true),
            data(2, 2, 1, true),
            data(3, 2, 1, true),
            data(4, 3, 1, false),
            marker(5, 1, ControlKind::Abort),
            marker(6, 2, ControlKind::Commit),
            data(7, 1, 1, true),
        ]);
        let (got, verdicts) = run(&b, &[txn(1, 0)]);
        assert_eq!(got, ["p2-o2", "p2-o3", "p3-o4", "p1-o7"]);
        assert_eq!(verdicts[0], Verdict::SkipAborted);
        assert_eq!(verdicts[5], Verdict::Control(ControlKind::Abort));
        assert_eq!(verdicts[6], Verdict::Control(ControlKind::Commit));
        // Without the aborted list every data batch is delivered; markers never are.
        let (got, _) = run(&b, &[]);
        assert_eq!(got.len(), 6);
    }

    #[test]
    fn several_aborted_transactions_from_one_producer_any_order() {
        let b = blob(&[
            data(0, 1, 2, true),
            marker(2, 1, ControlKind::Abort),
            data(3, 1, 1, true),
            marker(4, 1, ControlKind::Commit),
            data(5, 1, 2, true),
            marker(7, 1, ControlKind::Abort),
            data(8, 1, 1, true),
        ]);
        // The list may come in any order.
        let (got, _) = run(&b, &[txn(1, 5), txn(1, 0)]);
        assert_eq!(got, ["p1-o3", "p1-o8"]);
    }

    #[test]
    fn committed_after_aborted_from_same_producer() {
        let b = blob(&[
            data(10, 4, 1, true),
            marker(11, 4, ControlKind::Abort),
            data(12, 4, 1, true),
            marker(13, 4, ControlKind::Commit),
        ]);
        let (got, _) = run(&b, &[txn(4, 10)]);
        assert_eq!(got, ["p4-o12"]);
    }

    #[test]
    fn abort_marker_in_a_later_fetch() {
        // Fetch 1: the aborted txn's data, no marker yet.
        let f1 = blob(&[
            data(0, 1, 1, true),
            data(1, 2, 1, false),
            data(2, 1, 1, true),
        ]);
        let (got, _) = run(&f1, &[txn(1, 0)]);
        assert_eq!(got, ["p2-o1"]);
        // Fetch 2 starts at offset 3: more of the txn, then its marker, then new data.
        // The broker lists the txn again (its first offset is before this fetch).
        let f2 = blob(&[
            data(3, 1, 1, true),
            marker(4, 1, ControlKind::Abort),
            data(5, 1, 1, true),
        ]);
        let (got, _) = run(&f2, &[txn(1, 0)]);
        assert_eq!(got, ["p1-o5"]);
    }

    #[test]
    fn compaction_gaps_and_missing_first_batch() {
        // The aborted txn began at offset 20 but that batch was compacted away; the
        // txn's later batch at 25 must still be skipped.
        let b = blob(&[
            data(18, 7, 1, true),
            marker(19, 7, ControlKind::Commit),
            data(25, 7, 2, true),
            marker(30, 7, ControlKind::Abort),
            data(40, 7, 1, true),
        ]);
        let (got, _) = run(&b, &[txn(7, 20)]);
        assert_eq!(got, ["p7-o18", "p7-o40"]);
    }

    #[test]
    fn non_transactional_batches_always_delivered() {
        // Even from a producer id with an active aborted txn (idempotent, not txn).
        let b = blob(&[data(0, 1, 1, true), data(1, 1, 1, false)]);
        let (got, v) = run(&b, &[txn(1, 0)]);
        assert_eq!(got, ["p1-o1"]);
        assert_eq!(v, [Verdict::SkipAborted, Verdict::Deliver]);
        // Legacy messages have no producer and are delivered.
        let mut w = crate::record::LegacyMessageSetWriter::new(1);
        w.append(0, 0, None, Some(b"legacy"));
        let (got, _) = run(&w.build(), &[txn(-1, 0)]);
        assert_eq!(got, ["legacy"]);
    }

    #[test]
    fn control_batches_never_delivered_and_aborted_list_activates_by_last_offset() {
        let mut f = AbortedTxnFilter::new(&[txn(9, 105)]);
        assert!(!f.is_idle());
        // A batch covering 100..=110 contains the txn's first offset: skipped.
        let meta = BatchMeta {
            last_offset: 110,
            producer_id: 9,
            is_transactional: true,
            control: None,
        };
        assert_eq!(f.judge(meta), Verdict::SkipAborted);
        let ctrl = BatchMeta {
            last_offset: 111,
            producer_id: 9,
            is_transactional: true,
            control: Some(ControlKind::Unknown(3)),
        };
        // An unknown marker neither delivers nor ends the txn.
        assert_eq!(f.judge(ctrl), Verdict::Control(ControlKind::Unknown(3)));
        assert_eq!(
            f.judge(BatchMeta {
                last_offset: 112,
                ..meta
            }),
            Verdict::SkipAborted
        );
        // An abort marker from another producer does not end producer 9's range.
        let other = BatchMeta {
            last_offset: 113,
            producer_id: 8,
            is_transactional: true,
            control: Some(ControlKind::Abort),
        };
        assert_eq!(f.judge(other), Verdict::Control(ControlKind::Abort));
        assert_eq!(
            f.judge(BatchMeta {
                last_offset: 114,
                ..meta
            }),
            Verdict::SkipAborted
        );
        let abort = BatchMeta {
            control: Some(ControlKind::Abort),
            last_offset: 115,
            ..meta
        };
        assert_eq!(f.judge(abort), Verdict::Control(ControlKind::Abort));
        assert_eq!(
            f.judge(BatchMeta {
                last_offset: 116,
                ..meta
            }),
            Verdict::Deliver
        );
        assert!(f.is_idle());
        // Before the txn's first offset, the producer's batches are delivered.
        let mut f = AbortedTxnFilter::new(&[txn(9, 105)]);
        assert_eq!(
            f.judge(BatchMeta {
                last_offset: 104,
                ..meta
            }),
            Verdict::Deliver
        );
    }
}
