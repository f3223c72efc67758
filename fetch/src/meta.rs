//! When the reactor asks for cluster metadata, sans-IO: at start, every
//! `metadata.max.age.ms`, and whenever something says the cached view is wrong (a
//! leader moved, a connection died, a topic is missing), with two brakes: answers
//! that leave work undone (no leader yet, a missing topic) ask again after
//! `retry.backoff.ms` doubling, and two requests are never closer than
//! `retry.backoff.ms`, so a broker that keeps answering NOT_LEADER with stale
//! metadata cannot drive a hot loop.

use std::time::{Duration, Instant};

use crate::conn::Backoff;

/// The metadata refresh schedule.
#[derive(Debug)]
pub(crate) struct MetaSchedule {
    needed: bool,
    /// When the last response was applied.
    last_done: Option<Instant>,
    /// Not asked again before this (the backoff after an incomplete answer, or a
    /// version the broker cannot speak).
    not_before: Instant,
    next_refresh: Instant,
    backoff: Backoff,
    /// `retry.backoff.ms`: the least time between two requests.
    spacing: Duration,
    /// `metadata.max.age.ms`.
    refresh: Duration,
}

impl MetaSchedule {
    /// A schedule that wants metadata at once. `backoff_max` caps the retry backoff.
    pub fn new(
        now: Instant,
        retry_backoff: Duration,
        backoff_max: Duration,
        refresh: Duration,
    ) -> Self {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            needed: true,
            last_done: None,
            not_before: now,
            next_refresh: now + refresh,
            backoff: Backoff::new(ms(retry_backoff), ms(backoff_max)),
            spacing: retry_backoff,
            refresh,
        }
    }

    /// Something says the cached metadata is wrong: ask as soon as the brakes allow.
    pub fn invalidate(&mut self) {
        self.needed = true;
    }

    /// Whether metadata is wanted (due or not).
    pub fn needed(&self) -> bool {
        self.needed
    }

    /// The periodic refresh: wanted again once `metadata.max.age.ms` has passed.
    pub fn tick(&mut self, now: Instant) {
        if now >= self.next_refresh {
            self.needed = true;
        }
    }

    /// Whether a request should go out now (if none is in flight).
    pub fn due(&self, now: Instant) -> bool {
        let spaced = self.last_done.is_none_or(|t| now >= t + self.spacing);
        self.needed && now >= self.not_before && spaced
    }

    /// Not before `at` (the broker cannot speak a Metadata version weir knows).
    pub fn hold_until(&mut self, at: Instant) {
        self.not_before = at;
    }

    /// An answer was applied; `complete` is false when it left work undone (then
    /// metadata is asked again after the backoff, which `jitter` spreads). Returns
    /// that delay when there is one.
    pub fn answered(&mut self, now: Instant, complete: bool, jitter: u32) -> Option<Duration> {
        let delay = if complete {
            self.needed = false;
            self.backoff.reset();
            None
        } else {
            let d = Duration::from_millis(self.backoff.next_delay_ms(jitter));
            self.needed = true;
            self.not_before = now + d;
            Some(d)
        };
        self.next_refresh = now + self.refresh;
        self.last_done = Some(now);
        delay
    }

    /// The moments this schedule needs the reactor awake for (past ones included;
    /// the caller drops those).
    pub fn timers(&self) -> impl Iterator<Item = Instant> {
        let (a, b) = if self.needed {
            (
                Some(self.not_before),
                self.last_done.map(|t| t + self.spacing),
            )
        } else {
            (Some(self.next_refresh), None)
        };
        a.into_iter().chain(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn schedule(t0: Instant) -> MetaSchedule {
        MetaSchedule::new(t0, 100 * MS, 1000 * MS, 300_000 * MS)
    }

    #[test]
    fn metadata_is_due_at_start_and_again_after_max_age() {
        let t0 = Instant::now();
        let mut m = schedule(t0);
        assert!(m.due(t0));
        assert_eq!(m.answered(t0, true, 0), None);
        assert!(!m.due(t0 + 299_999 * MS));
        assert_eq!(m.timers().collect::<Vec<_>>(), [t0 + 300_000 * MS]);
        m.tick(t0 + 299_999 * MS);
        assert!(!m.needed());
        m.tick(t0 + 300_000 * MS);
        assert!(m.due(t0 + 300_000 * MS));
    }

    #[test]
    fn an_invalidation_right_after_an_answer_waits_for_the_spacing() {
        let t0 = Instant::now();
        let mut m = schedule(t0);
        m.answered(t0, true, 0);
        m.invalidate();
        assert!(!m.due(t0 + 99 * MS));
        assert!(m.due(t0 + 100 * MS));
        assert!(m.timers().any(|t| t == t0 + 100 * MS));
    }

    #[test]
    fn incomplete_answers_back_off_doubling_then_a_complete_one_resets() {
        let t0 = Instant::now();
        let mut m = schedule(t0);
        let mut now = t0;
        let mut delays = Vec::new();
        for _ in 0..6 {
            let d = m.answered(now, false, 0).unwrap();
            // The backoff, but never closer than retry.backoff.ms to the last answer.
            let wait = d.max(100 * MS);
            assert!(!m.due(now + wait - MS));
            now += wait;
            assert!(m.due(now));
            delays.push(d.as_millis());
        }
        // 80 % (jitter 0) of 100 ms doubling, capped at 1 s.
        assert_eq!(delays, [80, 160, 320, 640, 800, 800]);
        assert_eq!(m.answered(now, true, 0), None);
        m.invalidate();
        assert_eq!(m.answered(now + 100 * MS, false, 0), Some(80 * MS));
    }

    #[test]
    fn a_hold_delays_the_next_request() {
        let t0 = Instant::now();
        let mut m = schedule(t0);
        m.hold_until(t0 + 5000 * MS);
        assert!(!m.due(t0 + 4999 * MS));
        assert!(m.due(t0 + 5000 * MS));
    }
}
