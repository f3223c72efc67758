//! One broker connection: a nonblocking `mio` socket, a write queue, the in-flight
//! request table, and frame reading into the [`Ring`].
//!
//! The IO discipline (as in mio's own examples):
//! * reads loop until `WouldBlock`; `Interrupted` is retried; `Ok(0)` means the peer
//!   closed the connection;
//! * writes may be short: the unwritten rest stays at the front of the write queue;
//! * interest is derived from state ([`Conn::interest`]): writable while connecting or
//!   while bytes are queued, readable once connected unless the ring is full;
//! * every request still in flight is handed back by [`Conn::fail_all`] when the
//!   connection dies, so the caller can fail or retry each one.
//!
//! Frames are read in two steps: the 4-byte size prefix into a small array, then the
//! body straight into a ring [`Reservation`] of exactly the body's size (see the ring's
//! module docs for why). When the ring has no room the connection parks in
//! [`ReadState::WaitRing`], stops asking for readability, and the kernel's receive
//! buffer fills until TCP pushes back on the broker. The reactor calls
//! [`Conn::on_ready`] again once the ring's waker fires.
//!
//! Kafka answers requests on one connection in the order they were sent, so the
//! in-flight table is a queue and a response whose correlation id is not the oldest
//! request's is a protocol violation that kills the connection.
//!
//! With TLS ([`Conn::connect`] given a rustls session) the connection passes through
//! [`State::Handshaking`] after the TCP connect; requests queued meanwhile wait. Once
//! ready, frames are read the same way, from the session's decrypted bytes instead
//! of the socket: rustls decrypts each record in place in its own buffer and the
//! plaintext is copied once, into the frame's ring reservation; nothing after that
//! copies. Writes go through the session and out as TLS records.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use rustls::ClientConnection;

use crate::ring::{Frame, Reservation, Ring, RingError};

/// A request waiting for its response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// The correlation id it was sent with.
    pub correlation_id: i32,
    /// Its Kafka API key.
    pub api_key: i16,
    /// The version it was encoded at (decides the response's header and body format).
    pub api_version: i16,
    /// When it times out (`request.timeout.ms` after it was queued).
    pub deadline: Instant,
    /// Caller context (what the reactor needs to route the response).
    pub tag: u64,
}

/// A complete response frame (without its size prefix) and the request it answers.
#[derive(Debug)]
pub struct Response {
    /// The request.
    pub req: InFlight,
    /// The frame body: response header then response body, living in the ring.
    pub frame: Frame,
}

/// Why a connection died.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnError {
    /// The socket failed (connect refused, reset, ...).
    Io(io::Error),
    /// The broker closed the connection.
    Closed,
    /// A frame cannot fit in the ring at all.
    Ring(RingError),
    /// The broker sent a negative frame size.
    NegativeFrameSize(i32),
    /// A response arrived for no request, or out of order.
    UnexpectedResponse {
        /// The correlation id the oldest request was sent with, if any.
        expected: Option<i32>,
        /// The correlation id the broker sent (`None` if the frame was too short).
        got: Option<i32>,
    },
    /// TLS failed: during the handshake (certificates, alerts: the settings or the
    /// listener do not fit) or later (a corrupted record).
    Tls {
        /// The rustls error.
        error: rustls::Error,
        /// Whether the handshake had not finished.
        handshake: bool,
    },
    /// A plaintext connection got a TLS record back: the listener wants TLS.
    TlsListener,
    /// The oldest request did not get its response before its deadline.
    Timeout {
        /// Its API key.
        api_key: i16,
        /// Its correlation id.
        correlation_id: i32,
    },
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "connection error: {e}"),
            Self::Closed => write!(f, "the broker closed the connection"),
            Self::Ring(e) => write!(f, "{e}"),
            Self::NegativeFrameSize(n) => write!(
                f,
                "the broker sent a negative frame size ({n}); is this port a Kafka listener?"
            ),
            Self::UnexpectedResponse { expected, got } => write!(
                f,
                "response correlation id {got:?} does not match the oldest request ({expected:?}); \
                 the connection was reset"
            ),
            Self::Tls { error, handshake } => {
                if *handshake {
                    write!(f, "TLS handshake failed: {error}")
                } else {
                    write!(f, "TLS error: {error}")
                }
            }
            Self::TlsListener => write!(
                f,
                "the broker answered with TLS: its listener wants security.protocol=SSL or \
                 SASL_SSL"
            ),
            Self::Timeout {
                api_key,
                correlation_id,
            } => write!(
                f,
                "request (api key {api_key}, correlation id {correlation_id}) got no response \
                 within request.timeout.ms; the connection was reset (raise request.timeout.ms \
                 if the broker is just slow)"
            ),
        }
    }
}

impl std::error::Error for ConnError {}

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Where the reader is within the current frame.
#[derive(Debug)]
pub enum ReadState {
    /// Reading the 4-byte size prefix; `got` bytes so far.
    Prefix {
        /// The prefix bytes read so far.
        buf: [u8; 4],
        /// How many.
        got: usize,
    },
    /// The body's size is known but the ring has no room for it yet.
    WaitRing {
        /// The body size.
        len: usize,
    },
    /// Reading the body into its ring reservation.
    Body(Reservation),
}

/// Connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The nonblocking connect has not finished.
    Connecting,
    /// Connected; the TLS handshake is under way.
    Handshaking,
    /// Connected; requests flow.
    Ready,
    /// Dead; nothing more will happen on it.
    Closed,
}

/// One broker connection.
pub struct Conn {
    stream: TcpStream,
    /// The TLS session, when the connection is encrypted.
    tls: Option<Box<ClientConnection>>,
    token: Token,
    addr: SocketAddr,
    state: State,
    write_q: VecDeque<Vec<u8>>,
    write_off: usize,
    in_flight: VecDeque<InFlight>,
    read: ReadState,
    next_correlation_id: i32,
    registered: Option<Interest>,
    /// The TCP connection was established (it may have failed since).
    connected: bool,
    /// Bytes read off the socket (for metrics).
    pub bytes_read: u64,
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("addr", &self.addr)
            .field("token", &self.token)
            .field("state", &self.state)
            .field("tls", &self.tls.is_some())
            .field("in_flight", &self.in_flight.len())
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// Start a nonblocking connect to `addr`; register with `registry` under `token`.
    /// With `tls`, the connection is encrypted by that session (its server name is
    /// the broker's host), and requests wait until the handshake is done.
    pub fn connect(
        addr: SocketAddr,
        token: Token,
        registry: &Registry,
        tls: Option<ClientConnection>,
    ) -> io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        let mut c = Self {
            stream,
            tls: tls.map(Box::new),
            token,
            addr,
            state: State::Connecting,
            write_q: VecDeque::new(),
            write_off: 0,
            in_flight: VecDeque::new(),
            read: ReadState::Prefix {
                buf: [0; 4],
                got: 0,
            },
            next_correlation_id: 0,
            registered: None,
            connected: false,
            bytes_read: 0,
        };
        c.update_interest(registry)?;
        Ok(c)
    }

    /// The peer address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The mio token.
    pub fn token(&self) -> Token {
        self.token
    }

    /// The connection state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the TCP connection was established at some point (a refused connect
    /// never was).
    pub fn was_connected(&self) -> bool {
        self.connected
    }

    /// True while the reader waits for ring space.
    pub fn waiting_for_ring(&self) -> bool {
        matches!(self.read, ReadState::WaitRing { .. })
    }

    /// Requests sent (or queued) and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The in-flight requests, oldest first.
    pub fn in_flight_requests(&self) -> impl Iterator<Item = &InFlight> {
        self.in_flight.iter()
    }

    /// The correlation id [`next_correlation_id`](Self::next_correlation_id) will
    /// return next.
    pub fn peek_correlation_id(&self) -> i32 {
        self.next_correlation_id
    }

    /// The correlation id to encode the next request with; pass the same id to
    /// [`send`](Self::send).
    pub fn next_correlation_id(&mut self) -> i32 {
        let id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1) & i32::MAX;
        id
    }

    /// Queue an encoded request frame (size prefix included) and try to write it now.
    ///
    /// `req` describes it; `frame` must have been encoded with `req.correlation_id`.
    pub fn send(&mut self, req: InFlight, frame: Vec<u8>) -> Result<(), ConnError> {
        self.in_flight.push_back(req);
        self.write_q.push_back(frame);
        if self.state == State::Ready {
            self.flush()?;
        }
        Ok(())
    }

    /// The interest this connection needs now (`None`: nothing to wait for).
    pub fn interest(&self) -> Option<Interest> {
        let tls_out = self.tls.as_ref().is_some_and(|t| t.wants_write());
        match self.state {
            State::Closed => None,
            State::Connecting => Some(Interest::WRITABLE),
            State::Handshaking if tls_out => Some(Interest::READABLE | Interest::WRITABLE),
            State::Handshaking => Some(Interest::READABLE),
            State::Ready => {
                let r = !self.waiting_for_ring();
                let w = !self.write_q.is_empty() || tls_out;
                match (r, w) {
                    (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
                    (true, false) => Some(Interest::READABLE),
                    (false, true) => Some(Interest::WRITABLE),
                    (false, false) => None,
                }
            }
        }
    }

    /// Bring the registration in line with [`interest`](Self::interest).
    pub fn update_interest(&mut self, registry: &Registry) -> io::Result<()> {
        let want = self.interest();
        if want == self.registered {
            return Ok(());
        }
        match (self.registered, want) {
            (None, Some(i)) => registry.register(&mut self.stream, self.token, i)?,
            (Some(_), Some(i)) => registry.reregister(&mut self.stream, self.token, i)?,
            (Some(_), None) => registry.deregister(&mut self.stream)?,
            (None, None) => {}
        }
        self.registered = want;
        Ok(())
    }

    /// Handle readiness (or a ring wake-up, with `readable = true`). Complete responses
    /// are appended to `out`. An error means the connection is dead: call
    /// [`fail_all`](Self::fail_all) and drop it.
    pub fn on_ready(
        &mut self,
        readable: bool,
        writable: bool,
        ring: &Ring,
        out: &mut Vec<Response>,
    ) -> Result<(), ConnError> {
        if self.state == State::Closed {
            return Err(ConnError::Closed);
        }
        if self.state == State::Connecting {
            if !(writable || readable) {
                return Ok(());
            }
            if let Some(e) = self.stream.take_error()? {
                return Err(self.die(ConnError::Io(e)));
            }
            match self.stream.peer_addr() {
                Ok(_) => {
                    self.state = if self.tls.is_some() {
                        State::Handshaking
                    } else {
                        State::Ready
                    };
                    self.connected = true;
                    // Nagle would delay small requests behind unacknowledged ones.
                    let _ = self.stream.set_nodelay(true);
                }
                Err(e)
                    if e.kind() == io::ErrorKind::NotConnected
                        || e.raw_os_error() == Some(libc::EINPROGRESS) =>
                {
                    return Ok(());
                }
                Err(e) => return Err(self.die(ConnError::Io(e))),
            }
        }
        if self.state == State::Handshaking {
            match self.handshake() {
                Ok(true) => self.state = State::Ready,
                Ok(false) => return Ok(()),
                Err(e) => return Err(self.die(e)),
            }
        }
        if let Err(e) = self.flush() {
            return Err(self.die(e));
        }
        if let Err(e) = self.read_frames(ring, out) {
            return Err(self.die(e));
        }
        Ok(())
    }

    fn die(&mut self, e: ConnError) -> ConnError {
        self.state = State::Closed;
        e
    }

    /// Advance the TLS handshake as far as the socket allows: `true` once done.
    fn handshake(&mut self) -> Result<bool, ConnError> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return Ok(true);
        };
        loop {
            if !tls_write(tls, &mut self.stream)? {
                // The socket is full; writable readiness resumes.
                return Ok(false);
            }
            if !tls.is_handshaking() {
                return Ok(true);
            }
            if tls_read(tls, &mut self.stream, true)?.is_none() {
                return Ok(false);
            }
        }
    }

    /// Write queued bytes until the queue is empty or the socket would block.
    fn flush(&mut self) -> Result<(), ConnError> {
        if let Some(tls) = self.tls.as_deref_mut() {
            return flush_tls(
                tls,
                &mut self.stream,
                &mut self.write_q,
                &mut self.write_off,
            );
        }
        while let Some(front) = self.write_q.front() {
            let rest = &front[self.write_off..];
            if rest.is_empty() {
                self.write_q.pop_front();
                self.write_off = 0;
                continue;
            }
            match self.stream.write(rest) {
                Ok(0) => return Err(ConnError::Closed),
                Ok(n) => {
                    self.write_off += n;
                    if self.write_off == front.len() {
                        self.write_q.pop_front();
                        self.write_off = 0;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ConnError::Io(e)),
            }
        }
        Ok(())
    }

    /// Read frames until the socket would block or the ring is full.
    fn read_frames(&mut self, ring: &Ring, out: &mut Vec<Response>) -> Result<(), ConnError> {
        loop {
            match &mut self.read {
                ReadState::Prefix { buf, got } => {
                    match read_some(&mut self.stream, self.tls.as_deref_mut(), &mut buf[*got..])? {
                        None => return Ok(()),
                        Some(n) => {
                            self.bytes_read += n as u64;
                            *got += n;
                        }
                    }
                    if *got == 4 {
                        // A TLS record header (alert or handshake, version 3.x) where
                        // a frame size belongs: the port speaks TLS and this
                        // connection does not.
                        if self.tls.is_none()
                            && matches!(buf, [0x15 | 0x16, 3, 0..=4, _])
                            && self.in_flight.front().is_some_and(|r| r.api_key == 18)
                        {
                            return Err(ConnError::TlsListener);
                        }
                        let size = i32::from_be_bytes(*buf);
                        if size < 0 {
                            return Err(ConnError::NegativeFrameSize(size));
                        }
                        self.read = ReadState::WaitRing { len: size as usize };
                    }
                }
                ReadState::WaitRing { len } => match ring.reserve(*len).map_err(ConnError::Ring)? {
                    // The reactor retries when the ring's waker fires.
                    None => return Ok(()),
                    Some(r) => self.read = ReadState::Body(r),
                },
                ReadState::Body(res) => {
                    if !res.is_full() {
                        match read_some(&mut self.stream, self.tls.as_deref_mut(), res.unfilled())?
                        {
                            None => return Ok(()),
                            Some(n) => {
                                self.bytes_read += n as u64;
                                res.advance(n);
                            }
                        }
                    }
                    if res.is_full() {
                        let done = std::mem::replace(
                            &mut self.read,
                            ReadState::Prefix {
                                buf: [0; 4],
                                got: 0,
                            },
                        );
                        if let ReadState::Body(res) = done {
                            let frame = res.freeze();
                            out.push(self.match_response(frame)?);
                        }
                    }
                }
            }
        }
    }

    fn match_response(&mut self, frame: Frame) -> Result<Response, ConnError> {
        let got = frame
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(i32::from_be_bytes);
        match self.in_flight.front() {
            Some(req) if Some(req.correlation_id) == got => {
                let req = self.in_flight.pop_front().ok_or(ConnError::Closed)?;
                Ok(Response { req, frame })
            }
            other => Err(ConnError::UnexpectedResponse {
                expected: other.map(|r| r.correlation_id),
                got,
            }),
        }
    }

    /// The earliest deadline among in-flight requests.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.in_flight.iter().map(|r| r.deadline).min()
    }

    /// Check deadlines. An expired request kills the connection (as in the Java
    /// client: the response could still arrive later and desynchronise the stream).
    pub fn check_timeouts(&mut self, now: Instant) -> Result<(), ConnError> {
        // Requests queued while connecting count too, so a connect that hangs fails
        // when the first request's deadline passes.
        if let Some(r) = self.in_flight.iter().find(|r| r.deadline <= now) {
            let e = ConnError::Timeout {
                api_key: r.api_key,
                correlation_id: r.correlation_id,
            };
            return Err(self.die(e));
        }
        Ok(())
    }

    /// Mark the connection dead and hand back every request that will never be
    /// answered, oldest first.
    pub fn fail_all(&mut self, registry: &Registry) -> Vec<InFlight> {
        self.state = State::Closed;
        let _ = self.update_interest(registry);
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        self.write_q.clear();
        self.write_off = 0;
        self.read = ReadState::Prefix {
            buf: [0; 4],
            got: 0,
        };
        self.in_flight.drain(..).collect()
    }
}

/// One read: `Some(n)` bytes (n > 0), `None` on WouldBlock (or an empty buffer),
/// `Err(Closed)` on end of stream. Interrupted reads are retried. With a TLS
/// session the bytes are its plaintext: what it has decrypted already, else what
/// the socket holds, decrypted.
fn read_some(
    stream: &mut TcpStream,
    tls: Option<&mut ClientConnection>,
    buf: &mut [u8],
) -> Result<Option<usize>, ConnError> {
    if buf.is_empty() {
        return Ok(None);
    }
    if let Some(tls) = tls {
        loop {
            match tls.reader().read(buf) {
                // A clean close_notify.
                Ok(0) => return Err(ConnError::Closed),
                Ok(n) => return Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if crate::tls::is_unclean_eof(&e) => return Err(ConnError::Closed),
                Err(e) => return Err(ConnError::Io(e)),
            }
            if tls_read(tls, stream, false)?.is_none() {
                return Ok(None);
            }
        }
    }
    loop {
        match stream.read(buf) {
            Ok(0) => return Err(ConnError::Closed),
            Ok(n) => return Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ConnError::Io(e)),
        }
    }
}

/// Read TLS records off the socket and decrypt them: `Some(n)` socket bytes, `None`
/// when it would block. A TLS error queues an alert for the broker, which is sent
/// (best effort) before the error is returned.
fn tls_read(
    tls: &mut ClientConnection,
    stream: &mut TcpStream,
    handshake: bool,
) -> Result<Option<usize>, ConnError> {
    let n = loop {
        match tls.read_tls(stream) {
            Ok(0) => return Err(ConnError::Closed),
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ConnError::Io(e)),
        }
    };
    if let Err(error) = tls.process_new_packets() {
        let _ = tls_write(tls, stream);
        return Err(ConnError::Tls { error, handshake });
    }
    Ok(Some(n))
}

/// Write the session's pending TLS records: `true` when all are out, `false` when
/// the socket would block.
fn tls_write(tls: &mut ClientConnection, stream: &mut TcpStream) -> Result<bool, ConnError> {
    while tls.wants_write() {
        match tls.write_tls(stream) {
            Ok(0) => return Err(ConnError::Closed),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ConnError::Io(e)),
        }
    }
    Ok(true)
}

/// Move queued request bytes into the TLS session and its records onto the socket,
/// until both are empty or the socket would block. The session takes plaintext up
/// to its buffer limit, so a large request is encrypted as the socket drains.
fn flush_tls(
    tls: &mut ClientConnection,
    stream: &mut TcpStream,
    write_q: &mut VecDeque<Vec<u8>>,
    write_off: &mut usize,
) -> Result<(), ConnError> {
    loop {
        if !tls_write(tls, stream)? {
            return Ok(());
        }
        let Some(front) = write_q.front() else {
            return Ok(());
        };
        let rest = &front[*write_off..];
        let n = if rest.is_empty() {
            0
        } else {
            tls.writer().write(rest).map_err(ConnError::Io)?
        };
        *write_off += n;
        if *write_off == front.len() {
            write_q.pop_front();
            *write_off = 0;
        } else if n == 0 && !tls.wants_write() {
            // Nothing accepted and nothing to send: cannot happen with a buffer
            // limit above zero, but never spin on it.
            return Ok(());
        }
    }
}

/// Exponential reconnect backoff: `reconnect.backoff.ms` doubling up to
/// `reconnect.backoff.max.ms`, with ±20% jitter from a caller-supplied source.
#[derive(Debug, Clone)]
pub struct Backoff {
    base_ms: u64,
    max_ms: u64,
    attempts: u32,
}

impl Backoff {
    /// A backoff starting at `base_ms` and capped at `max_ms`.
    pub fn new(base_ms: u64, max_ms: u64) -> Self {
        Self {
            base_ms: base_ms.max(1),
            max_ms: max_ms.max(base_ms.max(1)),
            attempts: 0,
        }
    }

    /// The delay before the next attempt; `jitter` is any value in `0..=u32::MAX`
    /// (so tests are deterministic). Each call counts one failed attempt.
    pub fn next_delay_ms(&mut self, jitter: u32) -> u64 {
        let shift = self.attempts.min(20);
        self.attempts = self.attempts.saturating_add(1);
        let raw = self.base_ms.saturating_mul(1u64 << shift).min(self.max_ms);
        // Scale into [0.8, 1.2) of raw.
        let frac = u64::from(jitter) * 400 / u64::from(u32::MAX).max(1);
        (raw * (800 + frac) / 1000).clamp(1, self.max_ms)
    }

    /// Forget failures after a successful connection.
    pub fn reset(&mut self) {
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};
    use std::net::TcpListener;
    use std::time::Duration;

    fn frame_of(corr: i32, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        v.extend_from_slice(&corr.to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn req(corr: i32, deadline: Instant) -> InFlight {
        InFlight {
            correlation_id: corr,
            api_key: 1,
            api_version: 12,
            deadline,
            tag: corr as u64,
        }
    }

    /// Drive `conn` until `done` says stop or `limit` passes.
    fn drive(
        poll: &mut Poll,
        conn: &mut Conn,
        ring: &Ring,
        out: &mut Vec<Response>,
        limit: Duration,
        mut done: impl FnMut(&Conn, &[Response]) -> bool,
    ) -> Result<(), ConnError> {
        let end = Instant::now() + limit;
        let mut events = Events::with_capacity(16);
        while Instant::now() < end && !done(conn, out) {
            conn.update_interest(poll.registry())?;
            poll.poll(&mut events, Some(Duration::from_millis(20)))?;
            for ev in events.iter() {
                conn.on_ready(ev.is_readable(), ev.is_writable(), ring, out)?;
            }
            if conn.state() == State::Ready && events.is_empty() {
                // Retry a ring-starved reader.
                conn.on_ready(true, true, ring, out)?;
            }
        }
        Ok(())
    }

    #[test]
    fn request_response_round_trip_with_split_frames() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            // Read two requests of 8 bytes each, answer them byte by byte-ish.
            let mut buf = [0u8; 16];
            s.read_exact(&mut buf).unwrap();
            let mut all = frame_of(0, b"hello");
            all.extend(frame_of(1, &[7u8; 3000]));
            for chunk in all.chunks(7) {
                s.write_all(chunk).unwrap();
                s.flush().unwrap();
            }
            std::thread::sleep(Duration::from_millis(200));
        });
        let mut poll = Poll::new().unwrap();
        let mut conn = Conn::connect(addr, Token(0), poll.registry(), None).unwrap();
        let ring = Ring::new(1 << 16);
        let far = Instant::now() + Duration::from_secs(30);
        for _ in 0..2 {
            let c = conn.next_correlation_id();
            conn.send(req(c, far), vec![0, 0, 0, 4, 0, 0, 0, c as u8])
                .unwrap();
        }
        let mut out = Vec::new();
        drive(
            &mut poll,
            &mut conn,
            &ring,
            &mut out,
            Duration::from_secs(10),
            |_, o| o.len() == 2,
        )
        .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].req.correlation_id, 0);
        assert_eq!(&out[0].frame[4..], b"hello");
        assert_eq!(out[1].req.correlation_id, 1);
        assert_eq!(out[1].frame.len(), 3004);
        assert_eq!(conn.in_flight(), 0);
        server.join().unwrap();
    }

    #[test]
    fn full_ring_stops_reading_until_release() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 16];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&frame_of(0, &[1u8; 996])).unwrap();
            s.write_all(&frame_of(1, &[2u8; 996])).unwrap();
            std::thread::sleep(Duration::from_millis(500));
        });
        let mut poll = Poll::new().unwrap();
        let mut conn = Conn::connect(addr, Token(0), poll.registry(), None).unwrap();
        // Room for exactly one 1000-byte body.
        let ring = Ring::new(1500);
        let far = Instant::now() + Duration::from_secs(30);
        for c in 0..2 {
            assert_eq!(conn.next_correlation_id(), c);
            conn.send(req(c, far), vec![0, 0, 0, 4, 0, 0, 0, c as u8])
                .unwrap();
        }
        let mut out = Vec::new();
        drive(
            &mut poll,
            &mut conn,
            &ring,
            &mut out,
            Duration::from_secs(10),
            |c, o| o.len() == 1 && c.waiting_for_ring(),
        )
        .unwrap();
        assert_eq!(out.len(), 1);
        assert!(conn.waiting_for_ring());
        // Readability is dropped while starved.
        assert_eq!(conn.interest(), None);
        out.clear(); // releases the first frame's region
        drive(
            &mut poll,
            &mut conn,
            &ring,
            &mut out,
            Duration::from_secs(10),
            |_, o| o.len() == 1,
        )
        .unwrap();
        assert_eq!(out[0].req.correlation_id, 1);
        assert!(out[0].frame[4..].iter().all(|&b| b == 2));
        server.join().unwrap();
    }

    #[test]
    fn peer_close_and_mismatched_ids_kill_the_connection_and_fail_requests() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 16];
            s.read_exact(&mut buf).unwrap();
            drop(s);
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 8];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&frame_of(42, b"x")).unwrap();
            std::thread::sleep(Duration::from_millis(300));
        });
        let mut poll = Poll::new().unwrap();
        let ring = Ring::new(1 << 12);
        let far = Instant::now() + Duration::from_secs(30);

        let mut conn = Conn::connect(addr, Token(0), poll.registry(), None).unwrap();
        for c in 0..2 {
            conn.send(req(c, far), vec![0, 0, 0, 4, 0, 0, 0, 0])
                .unwrap();
        }
        let mut out = Vec::new();
        let e = drive(
            &mut poll,
            &mut conn,
            &ring,
            &mut out,
            Duration::from_secs(10),
            |_, _| false,
        )
        .unwrap_err();
        assert!(matches!(e, ConnError::Closed | ConnError::Io(_)), "{e:?}");
        let failed = conn.fail_all(poll.registry());
        assert_eq!(
            failed.iter().map(|r| r.correlation_id).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert_eq!(conn.state(), State::Closed);

        let mut conn = Conn::connect(addr, Token(1), poll.registry(), None).unwrap();
        conn.send(req(0, far), vec![0, 0, 0, 4, 0, 0, 0, 0])
            .unwrap();
        let e = drive(
            &mut poll,
            &mut conn,
            &ring,
            &mut out,
            Duration::from_secs(10),
            |_, _| false,
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                ConnError::UnexpectedResponse {
                    expected: Some(0),
                    got: Some(42)
                }
            ),
            "{e:?}"
        );
        assert_eq!(conn.fail_all(poll.registry()).len(), 1);
        server.join().unwrap();
    }

    #[test]
    fn oversized_and_negative_frames_are_errors() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            for size in [5000i32, -3] {
                let (mut s, _) = listener.accept().unwrap();
                let mut buf = [0u8; 8];
                s.read_exact(&mut buf).unwrap();
                s.write_all(&size.to_be_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let mut poll = Poll::new().unwrap();
        let ring = Ring::new(1000);
        let far = Instant::now() + Duration::from_secs(30);
        let mut out = Vec::new();
        let mut conn = Conn::connect(addr, Token(0), poll.registry(), None).unwrap();
        conn.send(req(0, far), vec![0, 0, 0, 4, 0, 0, 0, 0])
            .unwrap();
        let e = drive(
            &mut poll,
            &mut conn,
            &ring,
            &mut out,
            Duration::from_secs(10),
            |_, _| false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("fetch.max.bytes"), "{e}");
        let mut conn = Conn::connect(addr, Token(1), poll.registry(), None).unwrap();
        conn.send(req(0, far), vec![0, 0, 0, 4, 0, 0, 0, 0])
            .unwrap();
        let e = drive(
            &mut poll,
            &mut conn,
            &ring,
            &mut out,
            Duration::from_secs(10),
            |_, _| false,
        )
        .unwrap_err();
        assert!(matches!(e, ConnError::NegativeFrameSize(-3)), "{e:?}");
        server.join().unwrap();
    }

    #[test]
    fn request_deadline_expires() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_millis(300));
            drop(s);
        });
        let poll = Poll::new().unwrap();
        let mut conn = Conn::connect(addr, Token(0), poll.registry(), None).unwrap();
        let now = Instant::now();
        conn.send(req(0, now + Duration::from_millis(50)), vec![0, 0, 0, 0])
            .unwrap();
        assert_eq!(conn.next_deadline(), Some(now + Duration::from_millis(50)));
        assert!(conn.check_timeouts(now).is_ok());
        let e = conn
            .check_timeouts(now + Duration::from_millis(50))
            .unwrap_err();
        assert!(matches!(
            e,
            ConnError::Timeout {
                correlation_id: 0,
                ..
            }
        ));
        assert!(e.to_string().contains("request.timeout.ms"));
        assert_eq!(conn.fail_all(poll.registry()).len(), 1);
        server.join().unwrap();
    }

    #[test]
    fn connection_refused_is_an_error() {
        // Bind then drop to get a port nobody listens on.
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let mut poll = Poll::new().unwrap();
        let ring = Ring::new(64);
        let mut out = Vec::new();
        match Conn::connect(addr, Token(0), poll.registry(), None) {
            Err(_) => {}
            Ok(mut conn) => {
                let e = drive(
                    &mut poll,
                    &mut conn,
                    &ring,
                    &mut out,
                    Duration::from_secs(5),
                    |_, _| false,
                );
                assert!(e.is_err());
            }
        }
    }

    #[test]
    fn large_write_survives_short_writes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let n = 8 << 20;
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            // Read slowly at first so the client's socket buffer fills.
            std::thread::sleep(Duration::from_millis(100));
            let mut got = vec![0u8; n];
            s.read_exact(&mut got).unwrap();
            assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
            s.write_all(&frame_of(0, b"ok")).unwrap();
            std::thread::sleep(Duration::from_millis(200));
        });
        let mut poll = Poll::new().unwrap();
        let mut conn = Conn::connect(addr, Token(0), poll.registry(), None).unwrap();
        let ring = Ring::new(1 << 12);
        let far = Instant::now() + Duration::from_secs(30);
        let body: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        conn.send(req(0, far), body).unwrap();
        let mut out = Vec::new();
        drive(
            &mut poll,
            &mut conn,
            &ring,
            &mut out,
            Duration::from_secs(20),
            |_, o| o.len() == 1,
        )
        .unwrap();
        assert_eq!(&out[0].frame[4..], b"ok");
        server.join().unwrap();
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let mut b = Backoff::new(50, 1000);
        let mid = 1u32 << 31; // exactly no jitter
        let d: Vec<u64> = (0..7).map(|_| b.next_delay_ms(mid)).collect();
        assert_eq!(d, vec![50, 100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_delay_ms(0), 40);
        let mut b = Backoff::new(50, 1000);
        assert_eq!(b.next_delay_ms(u32::MAX), 60);
    }
}
