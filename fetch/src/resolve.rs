//! Host name lookups that never block the reactor.
//!
//! `getaddrinfo` blocks for as long as the system resolver takes (seconds when a
//! name server is slow or gone), and the reactor is the thread that sends heartbeats
//! and fetches. So the reactor never calls it: an IP literal is parsed in place;
//! any other name is looked up on a short-lived thread (`weir-dns`), at most one per
//! `host:port` at a time, whose answer comes back over a channel and wakes the
//! reactor's poll. Answers are cached for [`CACHE_TTL`]; a failed lookup is not
//! cached, so the next connection attempt (after the reconnect backoff) asks again.
//!
//! The lookup function is a [`Resolver`] in [`FetchConfig`](crate::FetchConfig), so
//! tests (and embedders with their own discovery) can replace the system resolver.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use mio::Waker;

/// How long a successful lookup is reused (the JVM's default
/// `networkaddress.cache.ttl`, which the Java client relies on).
pub const CACHE_TTL: Duration = Duration::from_secs(30);

type LookupFn = dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync;

/// The function that turns a host name and port into addresses. Runs on a
/// short-lived thread, never on the reactor. The default is the system resolver
/// (`getaddrinfo` through [`ToSocketAddrs`]).
#[derive(Clone)]
pub struct Resolver(Arc<LookupFn>);

impl Resolver {
    /// A resolver that calls `f`.
    pub fn new(
        f: impl Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(f))
    }

    /// The system resolver.
    pub fn system() -> Self {
        Self::new(|host, port| (host, port).to_socket_addrs().map(Iterator::collect))
    }
}

impl Default for Resolver {
    fn default() -> Self {
        Self::system()
    }
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Resolver")
    }
}

impl PartialEq for Resolver {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Resolver {}

/// What [`Lookups::lookup`] knows about a name now.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Addresses to connect to (never empty).
    Ready(Vec<SocketAddr>),
    /// A lookup is running; the reactor is woken when it ends.
    Pending,
    /// The last lookup failed (the message says why); the next call starts another.
    Failed(String),
}

type Key = (String, u16);
type Answer = (Key, io::Result<Vec<SocketAddr>>);

/// The reactor's lookups: cache, in-flight set and the channel answers come back on.
pub(crate) struct Lookups {
    resolver: Resolver,
    waker: Arc<Waker>,
    tx: Sender<Answer>,
    rx: Receiver<Answer>,
    cache: HashMap<Key, (Instant, Vec<SocketAddr>)>,
    failed: HashMap<Key, String>,
    pending: HashMap<Key, Instant>,
}

impl Lookups {
    pub(crate) fn new(resolver: Resolver, waker: Arc<Waker>) -> Self {
        let (tx, rx) = mpsc::channel();
        Self {
            resolver,
            waker,
            tx,
            rx,
            cache: HashMap::new(),
            failed: HashMap::new(),
            pending: HashMap::new(),
        }
    }

    /// The addresses of `host:port`, or that a lookup is under way (started now if
    /// none was), or why the last one failed. Never blocks.
    pub(crate) fn lookup(&mut self, host: &str, port: u16, now: Instant) -> Lookup {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Lookup::Ready(vec![SocketAddr::new(ip, port)]);
        }
        let key = (host.to_owned(), port);
        if let Some((at, addrs)) = self.cache.get(&key)
            && now.saturating_duration_since(*at) < CACHE_TTL
        {
            return Lookup::Ready(addrs.clone());
        }
        if self.pending.contains_key(&key) {
            return Lookup::Pending;
        }
        if let Some(why) = self.failed.remove(&key) {
            return Lookup::Failed(why);
        }
        let resolver = self.resolver.clone();
        let tx = self.tx.clone();
        let waker = Arc::clone(&self.waker);
        let k = key.clone();
        let spawned = std::thread::Builder::new()
            .name("weir-dns".to_owned())
            .spawn(move || {
                let answer = (resolver.0)(&k.0, k.1);
                // The reactor may be gone (dropped): then nobody needs the answer.
                if tx.send((k, answer)).is_ok() {
                    let _ = waker.wake();
                }
            });
        match spawned {
            Ok(_) => {
                self.pending.insert(key, now);
                Lookup::Pending
            }
            Err(e) => Lookup::Failed(format!("cannot start a lookup thread: {e}")),
        }
    }

    /// Takes the answers that came back; returns the names that completed, so the
    /// connections waiting on them can go on.
    pub(crate) fn drain(&mut self, now: Instant) -> Vec<(String, u16)> {
        let mut done = Vec::new();
        while let Ok((key, answer)) = self.rx.try_recv() {
            self.pending.remove(&key);
            match answer {
                Ok(addrs) if !addrs.is_empty() => {
                    self.failed.remove(&key);
                    self.cache.insert(key.clone(), (now, addrs));
                }
                Ok(_) => {
                    self.failed
                        .insert(key.clone(), "the host name has no addresses".to_owned());
                }
                Err(e) => {
                    self.failed
                        .insert(key.clone(), format!("the host name does not resolve: {e}"));
                }
            }
            done.push(key);
        }
        done
    }

    /// Lookups still running.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Poll, Token};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn lookups(resolver: Resolver) -> (Poll, Lookups) {
        let poll = Poll::new().expect("poll");
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).expect("waker"));
        (poll, Lookups::new(resolver, waker))
    }

    fn wait_done(l: &mut Lookups, now: Instant) -> Vec<(String, u16)> {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let d = l.drain(now);
            if !d.is_empty() || Instant::now() > end {
                return d;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn ip_literals_need_no_lookup() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let (_p, mut l) = lookups(Resolver::new(move |_, _| {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(vec![])
        }));
        let now = Instant::now();
        assert_eq!(
            l.lookup("127.0.0.1", 9092, now),
            Lookup::Ready(vec!["127.0.0.1:9092".parse().unwrap()])
        );
        assert_eq!(
            l.lookup("[::1]", 9092, now),
            Lookup::Ready(vec!["[::1]:9092".parse().unwrap()])
        );
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    /// A slow name: the call returns at once, one lookup per name at a time, the
    /// answer is cached for CACHE_TTL, then asked again.
    #[test]
    fn names_resolve_off_thread_once_and_are_cached() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let (_p, mut l) = lookups(Resolver::new(move |_, port| {
            c.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(300));
            Ok(vec![SocketAddr::from(([10, 0, 0, 1], port))])
        }));
        let now = Instant::now();
        let t = Instant::now();
        assert_eq!(l.lookup("broker.example", 9092, now), Lookup::Pending);
        assert_eq!(l.lookup("broker.example", 9092, now), Lookup::Pending);
        assert!(t.elapsed() < Duration::from_millis(200), "lookup blocked");
        assert_eq!(l.in_flight(), 1);
        assert_eq!(
            wait_done(&mut l, now),
            vec![("broker.example".to_owned(), 9092)]
        );
        let want = Lookup::Ready(vec!["10.0.0.1:9092".parse().unwrap()]);
        assert_eq!(l.lookup("broker.example", 9092, now), want);
        assert_eq!(l.lookup("broker.example", 9092, now + CACHE_TTL / 2), want);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            l.lookup("broker.example", 9092, now + CACHE_TTL),
            Lookup::Pending
        );
        wait_done(&mut l, now);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_failed_lookup_is_reported_once_then_retried() {
        let (_p, mut l) = lookups(Resolver::new(|_, _| Err(io::Error::other("no such host"))));
        let now = Instant::now();
        assert_eq!(l.lookup("nowhere.invalid", 1, now), Lookup::Pending);
        wait_done(&mut l, now);
        match l.lookup("nowhere.invalid", 1, now) {
            Lookup::Failed(why) => assert!(why.contains("no such host"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(l.lookup("nowhere.invalid", 1, now), Lookup::Pending);
    }
}
