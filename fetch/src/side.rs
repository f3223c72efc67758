//! One request service over the reactor's side connections, for every layer that
//! talks to brokers beside the fetch path: the group member (FindCoordinator,
//! JoinGroup, heartbeats, commits, the leader's Metadata), the admin commands
//! (`weir groups`), and the CLI's partition discovery.
//!
//! [`SideRequests`] keeps one side connection per broker address, knows which are
//! ready, and remembers what each request in flight was for (the caller's `P`). After
//! each reactor turn, [`SideRequests::poll`] turns the reactor's raw
//! [`SideEvent`]s into [`SideOutcome`]s: an answer with its purpose, or the purpose of
//! a request its connection took down with it. Answers stay in the ring (zero-copy)
//! until the caller drops them.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use weir_protocol::ApiVersionTable;
use weir_protocol::frame::ApiRequest;

use crate::reactor::{FetchError, Reactor, SideEvent, SideId};
use crate::ring::Frame;

/// What happened to a request, or to a connection.
#[derive(Debug)]
pub enum SideOutcome<P> {
    /// The connection is up and its versions are known (also after a reconnect).
    Ready {
        /// Which connection.
        side: SideId,
    },
    /// The answer to a request sent with [`SideRequests::send`].
    Answer {
        /// What it was for.
        purpose: P,
        /// Which connection.
        side: SideId,
        /// The correlation id [`SideRequests::send`] returned.
        correlation_id: i32,
        /// The request's API key.
        api_key: i16,
        /// The version it was sent (and answered) at.
        api_version: i16,
        /// The whole response frame, in the side ring: release it promptly.
        frame: Frame,
        /// Where the body starts in `frame` (after the response header).
        body_offset: usize,
    },
    /// The connection died with this request unanswered.
    Lost {
        /// What it was for.
        purpose: P,
        /// Which connection.
        side: SideId,
        /// The correlation id [`SideRequests::send`] returned.
        correlation_id: i32,
    },
    /// The connection died (after the `Lost` outcomes of its requests); it
    /// reconnects with backoff and reports `Ready` again.
    Closed {
        /// Which connection.
        side: SideId,
    },
}

/// Side connections by address, their readiness, and the requests in flight on them.
#[derive(Debug)]
pub struct SideRequests<P> {
    by_addr: HashMap<(String, u16), SideId>,
    ready: HashSet<SideId>,
    in_flight: HashMap<(SideId, i32), P>,
}

impl<P> Default for SideRequests<P> {
    fn default() -> Self {
        Self {
            by_addr: HashMap::new(),
            ready: HashSet::new(),
            in_flight: HashMap::new(),
        }
    }
}

impl<P> SideRequests<P> {
    /// No connections yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The side connection to `host:port`, opened on first use and reused after.
    pub fn open(&mut self, reactor: &mut Reactor, host: &str, port: u16) -> SideId {
        let key = (host.to_owned(), port);
        if let Some(s) = self.by_addr.get(&key) {
            return *s;
        }
        let s = reactor.open_side(host, port);
        self.by_addr.insert(key, s);
        s
    }

    /// Whether `side` is connected with its versions known.
    pub fn is_ready(&self, side: SideId) -> bool {
        self.ready.contains(&side)
    }

    /// The versions `side` negotiated, once it is ready.
    pub fn versions<'r>(&self, reactor: &'r Reactor, side: SideId) -> Option<&'r ApiVersionTable> {
        if !self.is_ready(side) {
            return None;
        }
        reactor.side_versions(side)
    }

    /// Sends `req` at `version` on `side` (which must be ready), remembering
    /// `purpose` until it is answered or lost. `timeout` bounds the wait for the
    /// answer (the connection is reset past it); `None` is `request.timeout.ms`.
    pub fn send<R: ApiRequest>(
        &mut self,
        reactor: &mut Reactor,
        side: SideId,
        version: i16,
        req: &R,
        timeout: Option<Duration>,
        purpose: P,
    ) -> Result<i32, FetchError> {
        let corr = match timeout {
            Some(t) => reactor.side_send_with_timeout(side, version, req, t)?,
            None => reactor.side_send(side, version, req)?,
        };
        self.in_flight.insert((side, corr), purpose);
        Ok(corr)
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Takes the reactor's side events since the last call, as outcomes.
    pub fn poll(&mut self, reactor: &mut Reactor) -> Vec<SideOutcome<P>> {
        let events: Vec<SideEvent> = reactor.take_side_events().collect();
        self.absorb(events)
    }

    /// Turns side events into outcomes (the body of [`poll`](Self::poll)). An
    /// answer nobody asked through this service for is dropped.
    pub fn absorb(&mut self, events: impl IntoIterator<Item = SideEvent>) -> Vec<SideOutcome<P>> {
        let mut out = Vec::new();
        for ev in events {
            match ev {
                SideEvent::Ready { side } => {
                    self.ready.insert(side);
                    out.push(SideOutcome::Ready { side });
                }
                SideEvent::Response {
                    side,
                    req,
                    body_offset,
                    frame,
                } => {
                    if let Some(purpose) = self.in_flight.remove(&(side, req.correlation_id)) {
                        out.push(SideOutcome::Answer {
                            purpose,
                            side,
                            correlation_id: req.correlation_id,
                            api_key: req.api_key,
                            api_version: req.api_version,
                            frame,
                            body_offset,
                        });
                    }
                }
                SideEvent::Closed { side, failed } => {
                    self.ready.remove(&side);
                    for f in failed {
                        if let Some(purpose) = self.in_flight.remove(&(side, f.correlation_id)) {
                            out.push(SideOutcome::Lost {
                                purpose,
                                side,
                                correlation_id: f.correlation_id,
                            });
                        }
                    }
                    // Requests that never made it out go with the connection.
                    self.in_flight.retain(|(s, _), _| *s != side);
                    out.push(SideOutcome::Closed { side });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::conn::InFlight;
    use crate::ring::Ring;

    fn req(corr: i32) -> InFlight {
        InFlight {
            correlation_id: corr,
            api_key: 3,
            api_version: 12,
            deadline: Instant::now(),
            tag: 5,
        }
    }

    fn frame(ring: &Ring, bytes: &[u8]) -> Frame {
        let mut r = ring.reserve(bytes.len()).expect("fits").expect("room");
        r.fill_from(bytes);
        r.freeze()
    }

    /// `send` needs a reactor; these tests register requests the way it does.
    fn sent(s: &mut SideRequests<&'static str>, side: SideId, corr: i32, what: &'static str) {
        s.in_flight.insert((side, corr), what);
    }

    #[test]
    fn answers_come_back_with_their_purpose_and_strangers_are_dropped() {
        let ring = Ring::new(4096);
        let (a, b) = (SideId::from_index(3), SideId::from_index(4));
        let mut s = SideRequests::new();
        sent(&mut s, a, 1, "join");
        sent(&mut s, b, 1, "metadata");
        let out = s.absorb([
            SideEvent::Ready { side: a },
            SideEvent::Response {
                side: b,
                req: req(1),
                body_offset: 4,
                frame: frame(&ring, b"headbody"),
            },
            // Nobody asked for correlation id 9 on `a`.
            SideEvent::Response {
                side: a,
                req: req(9),
                body_offset: 0,
                frame: frame(&ring, b"x"),
            },
        ]);
        assert!(s.is_ready(a) && !s.is_ready(b));
        assert_eq!(out.len(), 2, "{out:?}");
        match &out[1] {
            SideOutcome::Answer {
                purpose,
                side,
                correlation_id,
                api_version,
                frame,
                body_offset,
                ..
            } => {
                assert_eq!(
                    (*purpose, *side, *correlation_id, *api_version),
                    ("metadata", b, 1, 12)
                );
                assert_eq!(&frame.bytes()[*body_offset..], b"body");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.in_flight(), 1, "the join is still out");
    }

    #[test]
    fn a_closed_connection_loses_its_requests_then_reports_itself() {
        let a = SideId::from_index(3);
        let other = SideId::from_index(4);
        let mut s = SideRequests::new();
        s.absorb([SideEvent::Ready { side: a }]);
        sent(&mut s, a, 1, "heartbeat");
        sent(&mut s, a, 2, "commit");
        sent(&mut s, a, 3, "queued, never written");
        sent(&mut s, other, 1, "elsewhere");
        let out = s.absorb([SideEvent::Closed {
            side: a,
            failed: vec![req(1), req(2)],
        }]);
        let kinds: Vec<String> = out
            .iter()
            .map(|o| match o {
                SideOutcome::Lost { purpose, .. } => format!("lost {purpose}"),
                SideOutcome::Closed { .. } => "closed".into(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(kinds, ["lost heartbeat", "lost commit", "closed"]);
        assert!(!s.is_ready(a));
        // The unsent request went with the connection; the other side's stays.
        assert_eq!(s.in_flight(), 1);
    }
}
