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
        pending.sort_unstable_by(|a, b| b.first_offset.cmp(&a.first_offset));
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
