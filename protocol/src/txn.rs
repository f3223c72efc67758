//! Transactions: the aborted-transaction filter for `isolation.level=read_committed`.

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
