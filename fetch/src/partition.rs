//! One assigned partition's fetch state, sans-IO: positions, the pending start-offset
//! lookup, pause, the no-progress backoff and what may be fetched now. The reactor
//! owns a [`PartState`] per assigned partition and applies broker answers through
//! these methods; every time is passed in (`now`), nothing here reads the clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::config::{IsolationLevel, OffsetReset};
use crate::conn::Backoff;
use crate::error::FetchError;

/// Answers in a row that return records but move a partition's fetch offset nowhere
/// before it is paused with [`FetchError::NoProgress`]. With `retry.backoff.ms`
/// doubling between them (100 ms by default) that is about 1.5 s of retrying: enough
/// to ride out a broker that is briefly confused, short enough that a broken one is
/// reported rather than waited on.
pub(crate) const NO_PROGRESS_LIMIT: u32 = 5;

/// Where to start (or restart) reading a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// An exact offset.
    Offset(i64),
    /// The log start.
    Earliest,
    /// The log end (the high watermark, or the LSO under read_committed).
    Latest,
    /// The first offset whose timestamp is at or after this (ms since the epoch);
    /// the end of the log when there is none.
    Timestamp(i64),
}

/// Per-partition state, readable by the embedding API.
#[derive(Debug, Clone)]
pub struct PartState {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The topic id (from Metadata v10+; zero until known).
    pub topic_id: [u8; 16],
    /// The leader's node id, once known.
    pub leader: Option<i32>,
    /// The leader epoch from metadata (-1 unknown).
    pub leader_epoch: i32,
    /// The next offset to fetch (`None` while a start offset is being looked up).
    pub fetch_offset: Option<i64>,
    /// The next offset the application will see (processed up to here).
    pub position: Option<i64>,
    /// A pending start-offset lookup.
    pub reset: Option<StartAt>,
    /// Fetching is paused by the application.
    pub paused: bool,
    /// The high watermark from the last fetch response (-1 unknown).
    pub high_watermark: i64,
    /// The last stable offset from the last fetch response (-1 unknown).
    pub last_stable_offset: i64,
    /// The log start offset from the last fetch response (-1 unknown).
    pub log_start_offset: i64,
    /// The worker that owns this partition (fixed for its lifetime).
    pub worker: usize,
    /// Seek generation: bumped by every seek so stale data is dropped.
    pub generation: Arc<AtomicU64>,
    /// The per-partition fetch size (grows when one batch is larger than it).
    pub max_bytes: i32,
    /// Unassigned: kept only so indexes stay stable; never fetched again.
    pub retired: bool,
    pub(crate) reset_not_before: Option<Instant>,
    /// A fetched chunk ends in a batch whose header is bad: fetching stops (the same
    /// bytes would come back) but the partition is not paused, so the chunk is still
    /// delivered, its good records handed out and the bad batch reported as
    /// [`FetchError::Corrupt`] by whoever processes it. Pausing here instead held the
    /// chunk back forever (consumers do not deliver paused partitions' chunks), so
    /// the error was never seen. Cleared by that error, a seek, a pause or a resume.
    pub(crate) held_at_bad_batch: bool,
    /// Fetch answers in a row that made no progress (see [`NO_PROGRESS_LIMIT`]).
    pub(crate) no_progress: u32,
    /// Spaces the retries of a fetch that made no progress: `retry.backoff.ms`
    /// doubling, as for metadata.
    pub(crate) fetch_backoff: Backoff,
    /// Not fetched again before this (a no-progress backoff).
    pub(crate) fetch_not_before: Option<Instant>,
    /// Metadata listed the topic without this partition, and that was reported as
    /// [`FetchError::UnknownPartition`] (once, until the partition appears).
    pub(crate) missing_reported: bool,
}

impl PartState {
    /// Records between the position and the end of the log (high watermark, or the
    /// LSO under read_committed). `None` until both are known.
    pub fn lag(&self, isolation: IsolationLevel) -> Option<i64> {
        let end = match isolation {
            IsolationLevel::ReadUncommitted => self.high_watermark,
            IsolationLevel::ReadCommitted => self.last_stable_offset,
        };
        let pos = self.position?;
        (end >= 0).then(|| (end - pos).max(0))
    }

    pub(crate) fn current_generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

impl PartState {
    /// A newly assigned partition starting at `start`. `topic_id` is zero until
    /// metadata names it; `retry_backoff_ms` doubling up to `backoff_max_ms` spaces
    /// fetches that made no progress.
    pub(crate) fn new(
        topic: Arc<str>,
        partition: i32,
        topic_id: [u8; 16],
        worker: usize,
        max_bytes: i32,
        (retry_backoff_ms, backoff_max_ms): (u64, u64),
        start: StartAt,
    ) -> Self {
        let mut p = PartState {
            topic,
            partition,
            topic_id,
            leader: None,
            leader_epoch: -1,
            fetch_offset: None,
            position: None,
            reset: None,
            paused: false,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            worker,
            generation: Arc::new(AtomicU64::new(0)),
            max_bytes,
            reset_not_before: None,
            retired: false,
            held_at_bad_batch: false,
            no_progress: 0,
            fetch_backoff: Backoff::new(retry_backoff_ms, backoff_max_ms),
            fetch_not_before: None,
            missing_reported: false,
        };
        p.start_at(start);
        p
    }

    /// Whether a Fetch to broker `node` at version `v` may include this partition now:
    /// it leads it, nothing holds it back (pause, a bad batch waiting to be reported,
    /// a no-progress backoff, a start offset still being looked up), and Fetch v13+
    /// knows its topic id.
    pub(crate) fn fetchable(&self, node: i32, v: i16, now: Instant) -> bool {
        self.leader == Some(node)
            && !self.paused
            && !self.held_at_bad_batch
            && self.fetch_not_before.is_none_or(|t| t <= now)
            && self.reset.is_none()
            && self.fetch_offset.is_some()
            && (v < 13 || self.topic_id != [0; 16])
    }

    /// Moves to `start` (a seek): an offset applies at once, anything else waits for
    /// a ListOffsets lookup. Clears a held bad batch and no-progress retries.
    pub(crate) fn start_at(&mut self, start: StartAt) {
        match start {
            StartAt::Offset(o) => {
                self.reset = None;
                self.fetch_offset = Some(o);
                self.position = Some(o);
            }
            other => self.reset_to(other),
        }
        self.reset_not_before = None;
        self.held_at_bad_batch = false;
        self.clear_no_progress();
    }

    /// Looks the start offset up again (`auto.offset.reset`, or a seek to a time):
    /// data fetched before is stale from now on.
    pub(crate) fn reset_to(&mut self, start: StartAt) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.reset = Some(start);
        self.fetch_offset = None;
        self.reset_not_before = None;
    }

    /// One more fetch answer at `offset` that moved nothing: back off before the
    /// next, or pause the partition and return a typed error once there were
    /// [`NO_PROGRESS_LIMIT`] in a row.
    pub(crate) fn no_progress(
        &mut self,
        offset: i64,
        reason: &'static str,
        jitter: u32,
        now: Instant,
    ) -> Option<FetchError> {
        self.no_progress += 1;
        if self.no_progress >= NO_PROGRESS_LIMIT {
            log::warn!(
                "{}-{}: {} fetches at offset {offset} made no progress ({reason}); pausing it",
                self.topic,
                self.partition,
                self.no_progress
            );
            let e = FetchError::NoProgress {
                topic: Arc::clone(&self.topic),
                partition: self.partition,
                offset,
                fetches: self.no_progress,
                reason,
            };
            self.paused = true;
            self.clear_no_progress();
            Some(e)
        } else {
            let delay = self.fetch_backoff.next_delay_ms(jitter);
            log::debug!(
                "{}-{}: fetch at offset {offset} made no progress ({reason}); retrying in \
                 {delay} ms",
                self.topic,
                self.partition
            );
            self.fetch_not_before = Some(now + Duration::from_millis(delay));
            None
        }
    }

    /// Forgets no-progress retries: the partition moved, was seeked, paused or resumed.
    pub(crate) fn clear_no_progress(&mut self) {
        self.no_progress = 0;
        self.fetch_backoff.reset();
        self.fetch_not_before = None;
    }

    /// Stops (`true`) or restarts fetching. Pausing bumps the generation (fetched
    /// data is stale) and rewinds the fetch offset to the position; returns whether
    /// the caller must drop the partition's fetched chunks.
    pub(crate) fn set_paused(&mut self, paused: bool) -> bool {
        let drop_chunks = paused && !self.paused;
        if drop_chunks {
            self.generation.fetch_add(1, Ordering::AcqRel);
            if self.reset.is_none()
                && let Some(pos) = self.position
            {
                self.fetch_offset = Some(pos);
            }
        }
        // Either way the bad chunk (if any) is gone or will be fetched again, and a
        // resume is a fresh start.
        self.held_at_bad_batch = false;
        self.clear_no_progress();
        self.paused = paused;
        drop_chunks
    }

    /// A ListOffsets answer for the lookup of `timestamp` (or a special timestamp):
    /// `offset`, or -1 when the broker has none. Ignored when a seek replaced the
    /// lookup while it was out; a time with no record after it starts at the end; a
    /// missing earliest/latest answer is asked again at `retry_at`.
    pub(crate) fn offset_found(
        &mut self,
        timestamp: i64,
        offset: i64,
        (earliest, latest): (i64, i64),
        retry_at: Instant,
    ) {
        let still = match self.reset {
            Some(StartAt::Earliest) => timestamp == earliest,
            Some(StartAt::Latest) => timestamp == latest,
            Some(StartAt::Timestamp(t)) => timestamp == t,
            _ => false,
        };
        if !still {
            return;
        }
        if offset < 0 {
            if timestamp >= 0 {
                // No record at or after the timestamp: start at the end.
                self.reset = Some(StartAt::Latest);
            } else {
                // A broker that answers no offset for earliest/latest: ask again
                // later rather than in a tight loop.
                self.reset_not_before = Some(retry_at);
            }
            return;
        }
        self.reset = None;
        self.reset_not_before = None;
        self.fetch_offset = Some(offset);
        self.position = Some(offset);
    }

    /// OFFSET_OUT_OF_RANGE for a fetch from `sent`: `auto.offset.reset` looks the
    /// start up again, or with `none` the partition pauses and the error is returned.
    /// An answer to a fetch from an offset the partition has left since (a seek) is
    /// ignored.
    pub(crate) fn out_of_range(&mut self, sent: i64, policy: OffsetReset) -> Option<FetchError> {
        if self.fetch_offset != Some(sent) {
            return None;
        }
        let to = match policy {
            OffsetReset::Earliest => StartAt::Earliest,
            OffsetReset::Latest => StartAt::Latest,
            OffsetReset::None => {
                self.paused = true;
                return Some(FetchError::OffsetOutOfRange {
                    topic: Arc::clone(&self.topic),
                    partition: self.partition,
                    offset: sent,
                });
            }
        };
        log::warn!(
            target: "weir_fetch::fetch",
            "offset {sent} is out of range for {}-{}: resetting to {} (auto.offset.reset)",
            self.topic,
            self.partition,
            if to == StartAt::Earliest { "earliest" } else { "latest" },
        );
        self.reset_to(to);
        None
    }

    /// A leader from metadata. A broker that has not caught up may name an older
    /// leader than a Fetch hint did: never go back in epoch.
    pub(crate) fn leader_from_metadata(&mut self, leader: i32, epoch: i32) {
        let stale = epoch >= 0 && epoch < self.leader_epoch;
        if !stale {
            self.leader = Some(leader);
            self.leader_epoch = epoch;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EARLIEST: i64 = -2;
    const LATEST: i64 = -1;

    fn part(start: StartAt) -> PartState {
        let mut p = PartState::new(Arc::from("t"), 0, [1; 16], 0, 1 << 20, (100, 1000), start);
        p.leader = Some(7);
        p
    }

    fn generation(p: &PartState) -> u64 {
        p.current_generation()
    }

    #[test]
    fn an_offset_start_is_fetchable_at_once_and_a_reset_waits_for_its_lookup() {
        let now = Instant::now();
        let p = part(StartAt::Offset(42));
        assert_eq!((p.fetch_offset, p.position), (Some(42), Some(42)));
        assert!(p.fetchable(7, 16, now));
        assert!(!p.fetchable(8, 16, now), "another broker leads it");
        let p = part(StartAt::Earliest);
        assert_eq!(p.fetch_offset, None);
        assert!(!p.fetchable(7, 16, now));
        let mut p = part(StartAt::Offset(0));
        p.topic_id = [0; 16];
        assert!(p.fetchable(7, 12, now), "v12 fetches by name");
        assert!(!p.fetchable(7, 13, now), "v13 needs the topic id");
    }

    #[test]
    fn no_progress_backs_off_on_the_clock_and_pauses_at_the_limit() {
        let t0 = Instant::now();
        let mut p = part(StartAt::Offset(5));
        let mut now = t0;
        for n in 1..NO_PROGRESS_LIMIT {
            // Jitter 0 is the low end of ±20 %: 80 % of 100 ms doubling, capped at 1 s.
            assert!(p.no_progress(5, "why", 0, now).is_none());
            let until = p.fetch_not_before.unwrap();
            let want = ((100u64 << (n - 1)) * 8 / 10).min(1000);
            assert_eq!(until - now, Duration::from_millis(want), "retry {n}");
            assert!(!p.fetchable(7, 16, until - Duration::from_millis(1)));
            assert!(p.fetchable(7, 16, until));
            now = until;
        }
        match p.no_progress(5, "why", 0, now) {
            Some(FetchError::NoProgress {
                offset: 5, fetches, ..
            }) => assert_eq!(fetches, NO_PROGRESS_LIMIT),
            other => panic!("{other:?}"),
        }
        assert!(p.paused);
        assert_eq!((p.no_progress, p.fetch_not_before), (0, None));
    }

    #[test]
    fn a_seek_clears_backoff_and_a_held_bad_batch_and_makes_old_data_stale() {
        let now = Instant::now();
        let mut p = part(StartAt::Offset(5));
        p.no_progress(5, "why", 0, now);
        p.held_at_bad_batch = true;
        let g = generation(&p);
        p.start_at(StartAt::Latest);
        assert!(generation(&p) > g);
        assert_eq!((p.no_progress, p.fetch_not_before), (0, None));
        assert!(!p.held_at_bad_batch);
        assert_eq!(p.reset, Some(StartAt::Latest));
    }

    #[test]
    fn a_lookup_answer_applies_only_to_the_lookup_still_wanted() {
        let retry = Instant::now() + Duration::from_millis(100);
        let mut p = part(StartAt::Earliest);
        // A seek to latest replaced the earliest lookup while it was out.
        p.start_at(StartAt::Latest);
        p.offset_found(EARLIEST, 3, (EARLIEST, LATEST), retry);
        assert_eq!(p.fetch_offset, None);
        p.offset_found(LATEST, 90, (EARLIEST, LATEST), retry);
        assert_eq!(
            (p.fetch_offset, p.position, p.reset),
            (Some(90), Some(90), None)
        );
        // No offset for earliest: asked again later, not in a loop.
        let mut p = part(StartAt::Earliest);
        p.offset_found(EARLIEST, -1, (EARLIEST, LATEST), retry);
        assert_eq!(
            (p.reset, p.reset_not_before),
            (Some(StartAt::Earliest), Some(retry))
        );
        // No record after a time: start at the end.
        let mut p = part(StartAt::Timestamp(1_000));
        p.offset_found(1_000, -1, (EARLIEST, LATEST), retry);
        assert_eq!(p.reset, Some(StartAt::Latest));
    }

    #[test]
    fn out_of_range_follows_auto_offset_reset_unless_the_fetch_is_stale() {
        let mut p = part(StartAt::Offset(50));
        assert!(
            p.out_of_range(40, OffsetReset::None).is_none(),
            "stale answer"
        );
        assert!(!p.paused);
        let g = generation(&p);
        assert!(p.out_of_range(50, OffsetReset::Earliest).is_none());
        assert_eq!((p.reset, p.fetch_offset), (Some(StartAt::Earliest), None));
        assert!(generation(&p) > g);
        let mut p = part(StartAt::Offset(50));
        match p.out_of_range(50, OffsetReset::None) {
            Some(FetchError::OffsetOutOfRange { offset: 50, .. }) => {}
            other => panic!("{other:?}"),
        }
        assert!(p.paused);
    }

    #[test]
    fn pausing_rewinds_to_the_position_and_says_to_drop_fetched_data() {
        let now = Instant::now();
        let mut p = part(StartAt::Offset(10));
        p.fetch_offset = Some(30); // fetched ahead of what was processed
        let g = generation(&p);
        assert!(p.set_paused(true));
        assert_eq!(p.fetch_offset, Some(10));
        assert!(generation(&p) > g);
        assert!(!p.fetchable(7, 16, now));
        assert!(!p.set_paused(true), "already paused: nothing more to drop");
        assert!(!p.set_paused(false));
        assert!(p.fetchable(7, 16, now));
    }

    #[test]
    fn metadata_never_moves_a_leader_back_in_epoch() {
        let mut p = part(StartAt::Offset(0));
        p.leader_from_metadata(1, 5);
        p.leader_from_metadata(2, 4);
        assert_eq!((p.leader, p.leader_epoch), (Some(1), 5));
        p.leader_from_metadata(3, -1); // a broker without epochs
        assert_eq!((p.leader, p.leader_epoch), (Some(3), -1));
    }

    #[test]
    fn lag_is_to_the_high_watermark_or_the_lso() {
        let mut p = part(StartAt::Offset(10));
        assert_eq!(p.lag(IsolationLevel::ReadUncommitted), None);
        p.high_watermark = 25;
        p.last_stable_offset = 20;
        assert_eq!(p.lag(IsolationLevel::ReadUncommitted), Some(15));
        assert_eq!(p.lag(IsolationLevel::ReadCommitted), Some(10));
    }
}
