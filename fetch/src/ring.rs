//! The receive ring: a fixed byte budget that every response frame is read into.
//!
//! # Shape
//!
//! One contiguous buffer of `capacity` bytes (`weir.ring.bytes`, default 64 MiB) is
//! carved into *regions* in FIFO order. A region holds exactly one response frame body
//! (the bytes after the 4-byte size prefix), so a frame is always contiguous and can be
//! decoded in place: the Fetch decoder's `records: &[u8]` fields are slices of it.
//!
//! # How a frame gets a region (the wrap rule)
//!
//! A connection reads the 4-byte size prefix into a tiny per-connection array first.
//! Once the size is known it asks the ring for a [`Reservation`] of exactly that many
//! contiguous bytes and reads the body straight into it; no byte is ever moved after
//! the socket read. When the bytes left before the end of the buffer are too few, the
//! reservation starts at offset 0 instead and the unused tail of the buffer is skipped
//! for this lap (it is recorded as padding so the free-space arithmetic stays exact).
//! The price of this rule is one extra 4-byte `read` per frame, which is negligible
//! next to a fetch response of hundreds of kilobytes; the gain is that nothing is ever
//! relocated and several connections can share one ring.
//!
//! # Release
//!
//! A filled reservation becomes a [`Frame`]: a cheaply cloneable, `Send + Sync`
//! handle. The region is reused only after the *last* clone of its frame (and every
//! [`FrameSlice`] cut from it) is dropped. Regions may be released in any order; the
//! free space grows only when the oldest live region goes, so a slow partition holds
//! back reuse of everything allocated after it. That is the backpressure: when
//! [`Ring::reserve`] fails the reactor drops read interest on that socket and TCP
//! pushes back on the broker. [`Ring::set_waker`] registers a callback that fires when
//! space is released while someone is waiting for it.
//!
//! # Memory
//!
//! Peak memory is `capacity` plus one small bookkeeping entry per live region. A frame
//! larger than `capacity` can never fit and is reported as
//! [`RingError::FrameTooLarge`].
//!
//! # Safety argument
//!
//! The buffer is shared between the reactor (the only writer, through a
//! [`Reservation`], which is not `Clone`) and any number of readers (through
//! [`Frame`]). The allocator never hands out a range that overlaps a live region or a
//! live reservation, and a region is handed to readers only after its reservation was
//! consumed, so a byte is never written while a shared reference to it exists. Frames
//! reach other threads through channels, which order the writes before the reads;
//! releases go through the allocator's mutex, which orders the reads before the next
//! writes to the same bytes.

use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, Range};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Why the ring refused a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingError {
    /// The frame can never fit: it is larger than the whole budget.
    FrameTooLarge {
        /// The frame's size in bytes.
        frame: usize,
        /// The ring budget in bytes.
        capacity: usize,
    },
    /// The system refused the ring's memory (see [`Ring::try_new`]).
    Allocation {
        /// The ring budget in bytes.
        capacity: usize,
    },
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FrameTooLarge { frame, capacity } => write!(
                f,
                "a {frame}-byte response does not fit in the {capacity}-byte ring: \
                 fetch.max.bytes exceeds the ring budget, or one record batch is larger \
                 than it (brokers return a first batch whole even past fetch.max.bytes); \
                 raise weir.ring.bytes above both, or lower fetch.max.bytes"
            ),
            Self::Allocation { capacity } => write!(
                f,
                "cannot allocate the {capacity}-byte receive ring: the system refused \
                 the memory; lower weir.ring.bytes"
            ),
        }
    }
}

impl std::error::Error for RingError {}

/// The id of zero-length reservations, which occupy nothing.
const UNTRACKED: u64 = u64::MAX;

/// One allocated span of the buffer, in allocation order.
#[derive(Debug)]
struct Slot {
    id: u64,
    start: usize,
    released: bool,
}

/// The allocator state, behind the mutex.
#[derive(Debug)]
struct Alloc {
    /// Live (or released but not yet reclaimed) spans, oldest first. Padding at the
    /// end of a lap is a span that is released from birth.
    slots: VecDeque<Slot>,
    /// Where the next allocation would start.
    head: usize,
    next_id: u64,
    /// Someone failed to reserve and wants to hear about released space.
    waiting: bool,
}

impl Alloc {
    /// The start of the oldest live span, or `None` when nothing is live.
    fn tail(&self) -> Option<usize> {
        self.slots.front().map(|s| s.start)
    }

    /// Drop released spans from the front; return true if any were reclaimed.
    fn reclaim(&mut self) -> bool {
        let mut any = false;
        while self.slots.front().is_some_and(|s| s.released) {
            self.slots.pop_front();
            any = true;
        }
        if self.slots.is_empty() {
            // Nothing live: start the next lap from the beginning, the best place for
            // the largest possible frame.
            self.head = 0;
        }
        any
    }

    /// Where a `len`-byte span can start, and whether the lap must wrap first.
    fn place(&self, len: usize, capacity: usize) -> Option<(usize, bool)> {
        let Some(tail) = self.tail() else {
            // Empty ring (head was reset to 0 by reclaim or is 0 from the start).
            return (len <= capacity).then_some((self.head, false));
        };
        if self.head > tail {
            // Free space is [head, capacity) and [0, tail).
            if capacity - self.head >= len {
                return Some((self.head, false));
            }
            if tail >= len {
                return Some((0, true));
            }
            None
        } else {
            // head <= tail with live spans: free space is [head, tail).
            if self.head < tail && tail - self.head >= len {
                Some((self.head, false))
            } else {
                None
            }
        }
    }
}

struct Shared {
    buf: NonNull<u8>,
    capacity: usize,
    alloc: Mutex<Alloc>,
    waker: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
    /// Mirrors `Alloc::waiting` so a release can skip the waker lock when nobody waits.
    waiting: AtomicBool,
    live_bytes: AtomicU64,
}

// SAFETY: `buf` is an owned heap allocation (see `Ring::try_new`) that is only accessed
// through the disjoint ranges the allocator hands out (module docs, "Safety argument").
// The allocator state itself is behind a `Mutex`.
unsafe impl Send for Shared {}
// SAFETY: as above; shared access never produces overlapping `&mut` and `&`.
unsafe impl Sync for Shared {}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: `buf` came from `Box::<[u8]>::into_raw` with exactly `capacity`
        // bytes in `Ring::try_new`, and this is the last owner (every Frame and
        // Reservation holds an `Arc<Shared>`), so nothing can observe it any more.
        unsafe {
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                self.buf.as_ptr(),
                self.capacity,
            )));
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Alloc> {
        // A panic while holding this lock leaves the allocator consistent (every
        // mutation is a single push/pop/flag write), so poisoning is ignored.
        self.alloc.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn release(&self, id: u64, len: usize) {
        if id == UNTRACKED {
            return;
        }
        let notify = {
            let mut a = self.lock();
            if let Some(slot) = a.slots.iter_mut().find(|s| s.id == id) {
                slot.released = true;
            }
            let reclaimed = a.reclaim();
            let notify = reclaimed && a.waiting;
            if notify {
                a.waiting = false;
                self.waiting.store(false, Ordering::Release);
            }
            notify
        };
        self.live_bytes.fetch_sub(len as u64, Ordering::Relaxed);
        if notify {
            let w = self.waker.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(w) = w.as_ref() {
                w();
            }
        }
    }
}

/// The receive ring. Cloning gives another handle to the same buffer.
#[derive(Clone)]
pub struct Ring {
    shared: Arc<Shared>,
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.shared.capacity)
            .field("live_bytes", &self.live_bytes())
            .finish()
    }
}

impl Ring {
    /// A ring with a budget of `capacity` bytes (allocated once, here).
    ///
    /// A zero capacity is rounded up to one byte so the allocation is never empty.
    /// Memory the system refuses aborts the process, as for any allocation: a budget
    /// that comes from configuration goes through [`try_new`](Self::try_new).
    pub fn new(capacity: usize) -> Self {
        match Self::try_new(capacity) {
            Ok(r) => r,
            Err(_) => std::alloc::handle_alloc_error(
                std::alloc::Layout::array::<u8>(capacity.max(1))
                    .unwrap_or(std::alloc::Layout::new::<u8>()),
            ),
        }
    }

    /// Like [`new`](Self::new), but memory the system refuses (`weir.ring.bytes` may
    /// be up to 1 TiB) is [`RingError::Allocation`] instead of an abort.
    ///
    /// The buffer is zeroed by the allocator (calloc), so pages are only backed by
    /// memory once fetched data first touches them, as with `vec![0; n]`.
    pub fn try_new(capacity: usize) -> Result<Self, RingError> {
        let capacity = capacity.max(1);
        let refused = RingError::Allocation { capacity };
        let layout = std::alloc::Layout::array::<u8>(capacity).map_err(|_| refused.clone())?;
        // SAFETY: `layout` has a non-zero size (capacity >= 1).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            return Err(refused);
        }
        // SAFETY: `ptr` is a live, zeroed allocation from the global allocator with
        // the layout of a `[u8]` of `capacity` bytes, which is what a `Box<[u8]>` of
        // that length owns and frees (the std docs allow this round trip).
        let boxed: Box<[u8]> =
            unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, capacity)) };
        let raw = Box::into_raw(boxed);
        // SAFETY: `Box::into_raw` never returns null.
        let buf = unsafe { NonNull::new_unchecked(raw.cast::<u8>()) };
        Ok(Self {
            shared: Arc::new(Shared {
                buf,
                capacity,
                alloc: Mutex::new(Alloc {
                    slots: VecDeque::new(),
                    head: 0,
                    next_id: 0,
                    waiting: false,
                }),
                waker: Mutex::new(None),
                waiting: AtomicBool::new(false),
                live_bytes: AtomicU64::new(0),
            }),
        })
    }

    /// The budget in bytes.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Bytes held by live frames and reservations (not counting lap padding).
    pub fn live_bytes(&self) -> u64 {
        self.shared.live_bytes.load(Ordering::Relaxed)
    }

    /// Register the callback run (on the releasing thread) when space is freed after a
    /// [`reserve`](Self::reserve) returned `Ok(None)`. The reactor passes a closure
    /// that wakes its `mio::Waker`.
    pub fn set_waker(&self, f: impl Fn() + Send + Sync + 'static) {
        let mut w = self.shared.waker.lock().unwrap_or_else(|e| e.into_inner());
        *w = Some(Box::new(f));
    }

    /// Reserve `len` contiguous bytes.
    ///
    /// * `Ok(Some(r))`: fill `r` and [`freeze`](Reservation::freeze) it.
    /// * `Ok(None)`: not enough free space now; the waker fires when some is released.
    /// * `Err(FrameTooLarge)`: `len` exceeds the whole budget and never will fit.
    pub fn reserve(&self, len: usize) -> Result<Option<Reservation>, RingError> {
        let capacity = self.shared.capacity;
        if len > capacity {
            return Err(RingError::FrameTooLarge {
                frame: len,
                capacity,
            });
        }
        if len == 0 {
            // Empty bodies take no space and are not tracked (a zero-length span would
            // make `head == tail` ambiguous).
            return Ok(Some(Reservation {
                shared: Arc::clone(&self.shared),
                id: UNTRACKED,
                start: 0,
                len: 0,
                filled: 0,
                done: false,
            }));
        }
        let mut a = self.shared.lock();
        a.reclaim();
        let Some((start, wrap)) = a.place(len, capacity) else {
            a.waiting = true;
            self.shared.waiting.store(true, Ordering::Release);
            return Ok(None);
        };
        if wrap {
            // Pad out the rest of this lap; it is free the moment everything before it
            // is, so it is recorded as already released.
            let id = a.next_id;
            a.next_id += 1;
            let head = a.head;
            a.slots.push_back(Slot {
                id,
                start: head,
                released: true,
            });
        }
        let id = a.next_id;
        a.next_id += 1;
        a.slots.push_back(Slot {
            id,
            start,
            released: false,
        });
        a.head = start + len;
        if a.head == capacity {
            a.head = 0;
        }
        drop(a);
        self.shared
            .live_bytes
            .fetch_add(len as u64, Ordering::Relaxed);
        Ok(Some(Reservation {
            shared: Arc::clone(&self.shared),
            id,
            start,
            len,
            filled: 0,
            done: false,
        }))
    }
}

/// A span of the ring being filled by the reactor. Dropping it unfilled releases it.
pub struct Reservation {
    shared: Arc<Shared>,
    id: u64,
    start: usize,
    len: usize,
    filled: usize,
    done: bool,
}

impl fmt::Debug for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reservation")
            .field("start", &self.start)
            .field("len", &self.len)
            .field("filled", &self.filled)
            .finish()
    }
}

impl Reservation {
    /// The reserved size.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a zero-byte reservation (an empty frame body).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes filled so far.
    pub fn filled(&self) -> usize {
        self.filled
    }

    /// True once every reserved byte has been filled.
    pub fn is_full(&self) -> bool {
        self.filled == self.len
    }

    /// The part not yet filled, for a `read` call.
    pub fn unfilled(&mut self) -> &mut [u8] {
        // SAFETY: [start, start+len) is exclusively ours (module docs), and `&mut self`
        // makes this the only live reference to it; `filled <= len` always.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.shared.buf.as_ptr().add(self.start + self.filled),
                self.len - self.filled,
            )
        }
    }

    /// Record that `n` more bytes were written into [`unfilled`](Self::unfilled).
    pub fn advance(&mut self, n: usize) {
        self.filled = (self.filled + n).min(self.len);
    }

    /// Copy `src` in (tests and small frames); returns how many bytes were taken.
    pub fn fill_from(&mut self, src: &[u8]) -> usize {
        let dst = self.unfilled();
        let n = dst.len().min(src.len());
        dst[..n].copy_from_slice(&src[..n]);
        self.advance(n);
        n
    }

    /// Turn the filled bytes into a shareable frame. Unfilled bytes are not exposed.
    pub fn freeze(mut self) -> Frame {
        self.done = true;
        Frame {
            inner: Arc::new(FrameInner {
                shared: Arc::clone(&self.shared),
                id: self.id,
                start: self.start,
                len: self.filled,
                reserved: self.len,
            }),
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.done {
            self.shared.release(self.id, self.len);
        }
    }
}

struct FrameInner {
    shared: Arc<Shared>,
    id: u64,
    start: usize,
    len: usize,
    reserved: usize,
}

impl Drop for FrameInner {
    fn drop(&mut self) {
        self.shared.release(self.id, self.reserved);
    }
}

/// A received frame body living in the ring. Clones share the region; the region is
/// reused after the last clone (and every [`FrameSlice`]) is dropped.
#[derive(Clone)]
pub struct Frame {
    inner: Arc<FrameInner>,
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("start", &self.inner.start)
            .field("len", &self.inner.len)
            .finish()
    }
}

impl Frame {
    /// The frame's bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the region is live while `inner` is, and no writer touches it after
        // freeze (module docs).
        unsafe {
            std::slice::from_raw_parts(
                self.inner.shared.buf.as_ptr().add(self.inner.start),
                self.inner.len,
            )
        }
    }

    /// A sub-view that keeps the whole region alive. Returns `None` when `range` is not
    /// inside the frame.
    pub fn slice(&self, range: Range<usize>) -> Option<FrameSlice> {
        (range.start <= range.end && range.end <= self.inner.len).then(|| FrameSlice {
            frame: self.clone(),
            range,
        })
    }

    /// The sub-view covering `sub`, which must be a slice of [`bytes`](Self::bytes)
    /// (as a decoder's borrowed `records` field is). `None` if it is not.
    pub fn slice_ref(&self, sub: &[u8]) -> Option<FrameSlice> {
        let base = self.bytes().as_ptr() as usize;
        let p = sub.as_ptr() as usize;
        let off = p.checked_sub(base)?;
        self.slice(off..off.checked_add(sub.len())?)
    }

    /// Offset of the region in the ring (tests and diagnostics).
    pub fn ring_offset(&self) -> usize {
        self.inner.start
    }
}

impl Deref for Frame {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes()
    }
}

/// Part of a [`Frame`] (one partition's records), keeping the region alive.
#[derive(Clone)]
pub struct FrameSlice {
    frame: Frame,
    range: Range<usize>,
}

impl fmt::Debug for FrameSlice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameSlice")
            .field("range", &self.range)
            .finish()
    }
}

impl FrameSlice {
    /// The bytes of the slice.
    pub fn bytes(&self) -> &[u8] {
        &self.frame.bytes()[self.range.clone()]
    }

    /// A view over heap bytes, for tests and for data that did not come off a socket.
    /// It still occupies a ring of its own of exactly its size.
    pub fn from_vec(v: &[u8]) -> Self {
        let ring = Ring::new(v.len().max(1));
        #[allow(clippy::expect_used)]
        let mut r = ring
            .reserve(v.len())
            .ok()
            .flatten()
            // A fresh ring of at least `v.len()` bytes always has room for it.
            .expect("a fresh ring fits its own size");
        r.fill_from(v);
        let frame = r.freeze();
        let len = frame.len();
        Self {
            frame,
            range: 0..len,
        }
    }
}

impl Deref for FrameSlice {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn frame(ring: &Ring, len: usize, fill: u8) -> Frame {
        let mut r = ring.reserve(len).unwrap().unwrap();
        let v = vec![fill; len];
        assert_eq!(r.fill_from(&v), len);
        assert!(r.is_full());
        r.freeze()
    }

    fn overlaps(a: &Frame, b: &Frame) -> bool {
        let (a0, a1) = (a.ring_offset(), a.ring_offset() + a.len());
        let (b0, b1) = (b.ring_offset(), b.ring_offset() + b.len());
        a0 < b1 && b0 < a1
    }

    #[test]
    fn sequential_then_full() {
        let ring = Ring::new(100);
        let a = frame(&ring, 40, 1);
        let b = frame(&ring, 40, 2);
        assert_eq!(a.ring_offset(), 0);
        assert_eq!(b.ring_offset(), 40);
        // 20 left at the end, nothing free at the start: full for 30.
        assert!(ring.reserve(30).unwrap().is_none());
        let c = frame(&ring, 20, 3);
        assert_eq!(c.ring_offset(), 80);
        assert!(ring.reserve(1).unwrap().is_none());
        assert!(a.iter().all(|&x| x == 1));
        assert!(b.iter().all(|&x| x == 2));
        assert!(c.iter().all(|&x| x == 3));
        assert_eq!(ring.live_bytes(), 100);
    }

    #[test]
    fn wrap_around_skips_the_tail_and_starts_at_zero() {
        let ring = Ring::new(100);
        let a = frame(&ring, 50, 1);
        let b = frame(&ring, 30, 2);
        drop(a);
        // 20 at the end is too few for 40: wrap to 0 (50 free there).
        let c = frame(&ring, 40, 3);
        assert_eq!(c.ring_offset(), 0);
        assert!(!overlaps(&b, &c));
        // Free now: [40,50) only (the end tail is padding until b goes).
        assert!(ring.reserve(11).unwrap().is_none());
        let d = frame(&ring, 10, 4);
        assert_eq!(d.ring_offset(), 40);
        drop(b);
        // b and the padding are reclaimed: [50,100) free.
        let e = frame(&ring, 50, 5);
        assert_eq!(e.ring_offset(), 50);
        for (f, v) in [(&c, 3u8), (&d, 4), (&e, 5)] {
            assert!(f.iter().all(|&x| x == v));
        }
    }

    #[test]
    fn out_of_order_release_waits_for_the_oldest() {
        let ring = Ring::new(90);
        let a = frame(&ring, 30, 1);
        let b = frame(&ring, 30, 2);
        let c = frame(&ring, 30, 3);
        drop(b);
        drop(c);
        // a is oldest and live: nothing reusable yet (FIFO reuse).
        assert!(ring.reserve(1).unwrap().is_none());
        drop(a);
        // Everything released: the ring restarts at 0 with the full budget.
        let d = frame(&ring, 90, 4);
        assert_eq!(d.ring_offset(), 0);
    }

    #[test]
    fn clones_and_slices_keep_the_region_alive() {
        let ring = Ring::new(10);
        let a = frame(&ring, 10, 7);
        let s = a.slice(2..5).unwrap();
        let a2 = a.clone();
        drop(a);
        assert!(ring.reserve(1).unwrap().is_none());
        drop(a2);
        assert!(ring.reserve(1).unwrap().is_none());
        assert_eq!(s.bytes(), &[7, 7, 7]);
        drop(s);
        assert!(ring.reserve(10).unwrap().is_some());
        assert!(a_slice_outside_is_rejected(&ring));
    }

    fn a_slice_outside_is_rejected(ring: &Ring) -> bool {
        let f = frame(ring, 4, 0);
        f.slice(2..5).is_none() && f.slice(4..4).is_some() && f.slice_ref(&[1, 2]).is_none()
    }

    #[test]
    fn slice_ref_maps_a_borrowed_subslice() {
        let ring = Ring::new(16);
        let mut r = ring.reserve(8).unwrap().unwrap();
        r.fill_from(&[0, 1, 2, 3, 4, 5, 6, 7]);
        let f = r.freeze();
        let sub = &f.bytes()[3..6];
        let s = f.slice_ref(sub).unwrap();
        assert_eq!(s.bytes(), &[3, 4, 5]);
    }

    #[test]
    fn a_budget_the_allocator_refuses_is_an_error() {
        // No allocator grants isize::MAX bytes, whatever the overcommit policy; past
        // it no layout exists.
        for cap in [isize::MAX as usize, usize::MAX] {
            let e = Ring::try_new(cap).unwrap_err();
            assert_eq!(e, RingError::Allocation { capacity: cap });
            assert!(e.to_string().contains("weir.ring.bytes"), "{e}");
        }
        let r = Ring::try_new(4096).unwrap();
        assert_eq!(r.capacity(), 4096);
        let mut res = r.reserve(8).unwrap().unwrap();
        res.fill_from(&[7; 8]);
        assert_eq!(res.freeze().bytes(), &[7; 8]);
    }

    #[test]
    fn too_large_is_a_clear_error() {
        let ring = Ring::new(64);
        let e = ring.reserve(65).unwrap_err();
        assert_eq!(
            e,
            RingError::FrameTooLarge {
                frame: 65,
                capacity: 64
            }
        );
        let msg = e.to_string();
        assert!(msg.contains("fetch.max.bytes") && msg.contains("weir.ring.bytes"));
        // Exactly the budget fits.
        assert!(ring.reserve(64).unwrap().is_some());
    }

    #[test]
    fn dropped_reservation_is_released_and_partial_freeze_exposes_filled_only() {
        let ring = Ring::new(10);
        let r = ring.reserve(10).unwrap().unwrap();
        drop(r);
        assert_eq!(ring.live_bytes(), 0);
        let mut r = ring.reserve(10).unwrap().unwrap();
        r.fill_from(&[9, 9, 9]);
        let f = r.freeze();
        assert_eq!(f.len(), 3);
        assert!(ring.reserve(1).unwrap().is_none());
        drop(f);
        assert!(ring.reserve(10).unwrap().is_some());
    }

    #[test]
    fn waker_fires_only_after_a_failed_reserve() {
        let ring = Ring::new(10);
        let hits = Arc::new(AtomicUsize::new(0));
        let h = Arc::clone(&hits);
        ring.set_waker(move || {
            h.fetch_add(1, Ordering::SeqCst);
        });
        let a = frame(&ring, 10, 1);
        drop(a);
        assert_eq!(hits.load(Ordering::SeqCst), 0, "nobody was waiting");
        let a = frame(&ring, 10, 1);
        assert!(ring.reserve(5).unwrap().is_none());
        drop(a);
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn zero_length_frames_are_fine() {
        let ring = Ring::new(4);
        let a = frame(&ring, 0, 0);
        let b = frame(&ring, 4, 1);
        assert!(a.is_empty());
        drop(a);
        drop(b);
        assert_eq!(ring.live_bytes(), 0);
    }

    /// A deterministic random walk: reserve random sizes, release random live frames,
    /// and check that live frames never overlap and keep their contents.
    #[test]
    fn random_walk_never_hands_out_overlapping_live_regions() {
        let cap = 1000;
        let ring = Ring::new(cap);
        let mut live: Vec<(Frame, u8)> = Vec::new();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut reserved_ok = 0;
        for step in 0..20_000u32 {
            let r = next();
            if r % 3 != 0 || live.is_empty() {
                let len = (next() % 300) as usize;
                let tag = (step % 251) as u8;
                if let Some(mut res) = ring.reserve(len).unwrap() {
                    res.fill_from(&vec![tag; len]);
                    let f = res.freeze();
                    assert!(f.ring_offset() + f.len() <= cap);
                    for (g, _) in &live {
                        assert!(!overlaps(&f, g), "overlap {f:?} {g:?}");
                    }
                    live.push((f, tag));
                    reserved_ok += 1;
                } else {
                    // Refusal must be justified: with nothing live, any len <= cap fits.
                    assert!(!live.is_empty());
                }
            } else {
                let i = (next() as usize) % live.len();
                let (f, tag) = live.swap_remove(i);
                assert!(f.iter().all(|&x| x == tag), "contents changed");
            }
            let sum: u64 = live.iter().map(|(f, _)| f.len() as u64).sum();
            assert_eq!(sum, ring.live_bytes());
            assert!(sum <= cap as u64);
        }
        assert!(reserved_ok > 5_000);
        live.clear();
        assert_eq!(ring.live_bytes(), 0);
        assert!(ring.reserve(cap).unwrap().is_some());
    }

    #[test]
    fn frames_cross_threads() {
        let ring = Ring::new(1 << 16);
        let (tx, rx) = std::sync::mpsc::channel::<Frame>();
        let t = std::thread::spawn(move || {
            let mut sum = 0u64;
            for f in rx {
                sum += f.iter().map(|&b| u64::from(b)).sum::<u64>();
            }
            sum
        });
        let mut expect = 0u64;
        let mut sent = 0;
        while sent < 2000 {
            let len = 1 + sent % 700;
            if let Some(mut r) = ring.reserve(len).unwrap() {
                let b = (sent % 200) as u8;
                r.fill_from(&vec![b; len]);
                expect += u64::from(b) * len as u64;
                tx.send(r.freeze()).unwrap();
                sent += 1;
            } else {
                std::thread::yield_now();
            }
        }
        drop(tx);
        assert_eq!(t.join().unwrap(), expect);
    }
}
