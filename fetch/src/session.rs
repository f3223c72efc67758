//! KIP-227 fetch sessions, sans-IO: what one broker's session holds, which partitions
//! the next Fetch must state or forget, and how an answer moves the session on.
//!
//! The reactor decides which partitions are fetchable and what each should be asked
//! for (a [`SentPart`] per partition index); [`FetchSession::plan`] turns that into
//! the request's partition list and session fields, [`FetchSession::sent`] records
//! what the broker was told once the request is on its way, and
//! [`FetchSession::answered`] / [`FetchSession::reset`] apply the answer.
//!
//! Rules (Kafka's `FetchSessionHandler`):
//! * no session (id 0): a full fetch naming every wanted partition, epoch 0 to ask
//!   for a session (or epoch -1 with sessions off or a broker before Fetch v7);
//! * a session: only partitions that are new or changed (offset, size or leader
//!   epoch), plus the ones to forget; nothing to send and nothing to forget means no
//!   request at all;
//! * an answer with the session's id moves the epoch on (wrapping to 1, never to 0);
//!   a new id starts a new session at epoch 1; id 0 means the broker granted none;
//! * a top-level error, or a dead connection, resets the session: the next fetch is
//!   a full one. A partition-level error drops that partition from the session so the
//!   next request states it again.

use std::collections::HashMap;

/// What a fetch session's broker believes about one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SentPart {
    /// The offset the broker was asked to fetch from.
    pub fetch_offset: i64,
    /// The partition's fetch size.
    pub max_bytes: i32,
    /// The leader epoch sent with it.
    pub leader_epoch: i32,
}

/// The partitions and session fields of the next Fetch request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FetchPlan {
    /// Partition indexes to state, ascending.
    pub send: Vec<usize>,
    /// Partition indexes to forget (incremental fetches only).
    pub forget: Vec<usize>,
    /// The request's `session_id`.
    pub session_id: i32,
    /// The request's `session_epoch`.
    pub session_epoch: i32,
    incremental: bool,
}

/// KIP-227 fetch session state for one broker.
#[derive(Debug, Default)]
pub(crate) struct FetchSession {
    /// 0 = no session (the next fetch is a full one).
    id: i32,
    /// The epoch of the next request (0 asks for a new session).
    epoch: i32,
    /// The partitions the broker has in the session (or, for a full fetch in flight,
    /// the partitions it was asked for), with what it was told.
    parts: HashMap<usize, SentPart>,
}

impl FetchSession {
    /// The next request for `want` (every fetchable partition and what to ask for
    /// it); `sessions` is whether sessions are in use (`weir.fetch.sessions` and Fetch
    /// v7+). `None` when there is nothing to send.
    pub fn plan(&self, want: &HashMap<usize, SentPart>, sessions: bool) -> Option<FetchPlan> {
        let incremental = sessions && self.id != 0;
        let nothing_to_forget = !incremental || self.parts.is_empty();
        if want.is_empty() && nothing_to_forget {
            return None;
        }
        let (mut send, mut forget): (Vec<usize>, Vec<usize>) = if incremental {
            let send = want
                .iter()
                .filter(|(idx, sp)| self.parts.get(idx) != Some(sp))
                .map(|(idx, _)| *idx)
                .collect();
            let forget = self
                .parts
                .keys()
                .filter(|idx| !want.contains_key(idx))
                .copied()
                .collect();
            (send, forget)
        } else {
            (want.keys().copied().collect(), Vec::new())
        };
        send.sort_unstable();
        forget.sort_unstable();
        let (session_id, session_epoch) = if !sessions {
            (0, -1)
        } else if incremental {
            (self.id, self.epoch)
        } else {
            (0, 0)
        };
        Some(FetchPlan {
            send,
            forget,
            session_id,
            session_epoch,
            incremental,
        })
    }

    /// The request of `plan` was sent: the broker now holds what it was told.
    pub fn sent(&mut self, plan: &FetchPlan, want: HashMap<usize, SentPart>) {
        if plan.incremental {
            for idx in &plan.forget {
                self.parts.remove(idx);
            }
            for idx in &plan.send {
                if let Some(sp) = want.get(idx) {
                    self.parts.insert(*idx, *sp);
                }
            }
        } else {
            self.parts = want;
        }
    }

    /// An answer without a top-level error, carrying `session_id`.
    pub fn answered(&mut self, sessions: bool, session_id: i32) {
        if !sessions || session_id == 0 {
            // No session granted: every fetch is a full one.
            self.id = 0;
            self.epoch = 0;
        } else if self.id == 0 || self.id != session_id {
            self.id = session_id;
            self.epoch = 1;
        } else {
            self.epoch = if self.epoch == i32::MAX {
                1
            } else {
                self.epoch + 1
            };
        }
    }

    /// What the broker was told about partition `idx`, if it is in the session.
    pub fn part(&self, idx: usize) -> Option<SentPart> {
        self.parts.get(&idx).copied()
    }

    /// Drops partition `idx`, so the next request states it again.
    pub fn forget(&mut self, idx: usize) {
        self.parts.remove(&idx);
    }

    /// No session any more: the next fetch is a full one.
    pub fn reset(&mut self) {
        self.id = 0;
        self.epoch = 0;
        self.parts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(offset: i64) -> SentPart {
        SentPart {
            fetch_offset: offset,
            max_bytes: 1 << 20,
            leader_epoch: 3,
        }
    }

    fn want(parts: &[(usize, i64)]) -> HashMap<usize, SentPart> {
        parts.iter().map(|&(i, o)| (i, sp(o))).collect()
    }

    /// Sends the plan for `w` and returns it.
    fn send(s: &mut FetchSession, w: &[(usize, i64)]) -> Option<FetchPlan> {
        let w = want(w);
        let plan = s.plan(&w, true)?;
        s.sent(&plan, w);
        Some(plan)
    }

    #[test]
    fn the_first_fetch_is_full_and_asks_for_a_session() {
        let mut s = FetchSession::default();
        let p = send(&mut s, &[(2, 10), (0, 5)]).unwrap();
        assert_eq!(p.send, [0, 2]);
        assert!(p.forget.is_empty());
        assert_eq!((p.session_id, p.session_epoch), (0, 0));
        assert_eq!(s.part(2), Some(sp(10)));
    }

    #[test]
    fn without_sessions_every_fetch_is_full_at_epoch_minus_one() {
        let mut s = FetchSession::default();
        let w = want(&[(0, 5)]);
        let p = s.plan(&w, false).unwrap();
        assert_eq!((p.session_id, p.session_epoch), (0, -1));
        s.sent(&p, w.clone());
        s.answered(false, 77);
        // The broker's id is ignored: the next request is full again.
        let p = s.plan(&w, false).unwrap();
        assert_eq!((p.session_id, p.session_epoch, p.send), (0, -1, vec![0]));
    }

    #[test]
    fn an_incremental_fetch_states_only_what_changed_and_forgets_the_rest() {
        let mut s = FetchSession::default();
        send(&mut s, &[(0, 5), (1, 7), (2, 9)]);
        s.answered(true, 42);
        // 0 unchanged, 1 moved on, 2 no longer wanted, 3 new.
        let p = send(&mut s, &[(0, 5), (1, 8), (3, 0)]).unwrap();
        assert_eq!(p.send, [1, 3]);
        assert_eq!(p.forget, [2]);
        assert_eq!((p.session_id, p.session_epoch), (42, 1));
        assert_eq!(s.part(2), None);
        assert_eq!(s.part(1), Some(sp(8)));
        // A changed leader epoch is a change too.
        s.answered(true, 42);
        let mut w = want(&[(0, 5), (1, 8), (3, 0)]);
        w.insert(
            0,
            SentPart {
                leader_epoch: 4,
                ..sp(5)
            },
        );
        let p = s.plan(&w, true).unwrap();
        assert_eq!((p.send, p.session_epoch), (vec![0], 2));
    }

    #[test]
    fn nothing_changed_and_nothing_to_forget_sends_nothing() {
        let mut s = FetchSession::default();
        assert_eq!(s.plan(&HashMap::new(), true), None);
        send(&mut s, &[(0, 5)]);
        s.answered(true, 9);
        // Unchanged: an empty incremental fetch still goes out (it long-polls for
        // new data in the session), so only "nothing wanted, nothing held" is None.
        let p = s.plan(&want(&[(0, 5)]), true).unwrap();
        assert!(p.send.is_empty() && p.forget.is_empty());
        // Nothing wanted but something held: forget it.
        let p = send(&mut s, &[]).unwrap();
        assert_eq!(p.forget, [0]);
        s.answered(true, 9);
        assert_eq!(s.plan(&HashMap::new(), true), None);
    }

    #[test]
    fn epochs_advance_wrap_to_one_and_restart_with_a_new_session_id() {
        let mut s = FetchSession::default();
        send(&mut s, &[(0, 5)]);
        s.answered(true, 9);
        assert_eq!(s.plan(&want(&[(0, 5)]), true).unwrap().session_epoch, 1);
        s.answered(true, 9);
        assert_eq!(s.plan(&want(&[(0, 5)]), true).unwrap().session_epoch, 2);
        s.epoch = i32::MAX;
        s.answered(true, 9);
        assert_eq!(s.plan(&want(&[(0, 5)]), true).unwrap().session_epoch, 1);
        // The broker evicted the session and created another.
        s.answered(true, 10);
        let p = s.plan(&want(&[(0, 5)]), true).unwrap();
        assert_eq!((p.session_id, p.session_epoch), (10, 1));
        // Id 0: no session granted, back to full fetches.
        s.answered(true, 0);
        let p = s.plan(&want(&[(0, 5)]), true).unwrap();
        assert_eq!((p.session_id, p.session_epoch, p.send), (0, 0, vec![0]));
    }

    #[test]
    fn a_reset_or_a_forgotten_partition_is_stated_again() {
        let mut s = FetchSession::default();
        send(&mut s, &[(0, 5), (1, 6)]);
        s.answered(true, 9);
        s.forget(1);
        let p = s.plan(&want(&[(0, 5), (1, 6)]), true).unwrap();
        assert_eq!(p.send, [1]);
        s.reset();
        let p = s.plan(&want(&[(0, 5), (1, 6)]), true).unwrap();
        assert_eq!((p.session_id, p.session_epoch, p.send), (0, 0, vec![0, 1]));
    }
}
