//! Fuzz target bodies for weir-protocol, shared by the cargo-fuzz binaries
//! (`fuzz_targets/*.rs`) and the AFL harness (`afl/`).
//!
//! The promise under test: any bytes give a value or a typed error, never a panic, a
//! hang, or an allocation sized by an unchecked length. Each target decodes, then
//! touches every field of what it got and checks the invariants the decoders document
//! (an iterator ends after its error, a batch view lies where the walk says it does,
//! counts match, out-of-range versions are refused), so a silent logic error fails too.
//!
//! Allocation bound: [`CappedAlloc`] is this library's global allocator; any single
//! allocation above [`ALLOC_CAP`] writes a message to stderr and aborts, which both
//! libFuzzer and AFL report as a crash. Legitimate work stays far below it: inputs are
//! at most a few hundred KiB and decompression is capped at [`DECOMPRESS_CAP`].

pub mod consumer;
pub mod records;
pub mod responses;
pub mod roundtrip;
pub mod sasl;
pub mod txn;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The largest single allocation any target may make.
pub const ALLOC_CAP: usize = 32 * 1024 * 1024;

/// The decompressed-size cap every target's `Decompressor` uses.
pub const DECOMPRESS_CAP: usize = 1024 * 1024;

/// The system allocator, refusing (by aborting) any allocation above [`ALLOC_CAP`],
/// and counting the bytes live and their peak, so that a target can bound the total
/// a decoder allocates for its input (many small allocations pass the single cap).
pub struct CappedAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Start measuring: the peak is set to the bytes live now, which are returned.
pub fn reset_peak() -> usize {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    live
}

/// The most bytes live at once since [`reset_peak`].
pub fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}

fn grew(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

fn shrank(size: usize) {
    LIVE.fetch_sub(size, Ordering::Relaxed);
}

#[cold]
fn too_big(size: usize) -> ! {
    // No allocation here: the number is formatted into a stack buffer.
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = size;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut err = std::io::stderr();
    let _ = std::io::Write::write_all(&mut err, b"weir-fuzz: allocation of ");
    let _ = std::io::Write::write_all(&mut err, &digits[i..]);
    let _ = std::io::Write::write_all(&mut err, b" bytes exceeds ALLOC_CAP\n");
    std::process::abort()
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged,
// after a size check that either passes or aborts the process.
unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOC_CAP {
            too_big(layout.size());
        }
        // SAFETY: forwarded as received.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOC_CAP {
            too_big(layout.size());
        }
        // SAFETY: forwarded as received.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > ALLOC_CAP {
            too_big(new_size);
        }
        // SAFETY: forwarded as received.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            grew(new_size);
            shrank(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;

/// An accumulator that makes the optimiser keep every field read.
#[derive(Default)]
pub(crate) struct Touch(u64);

impl Touch {
    #[inline]
    pub(crate) fn int(&mut self, v: impl Into<i128>) {
        let v: i128 = v.into();
        self.0 = self.0.rotate_left(5) ^ (v as u64) ^ ((v >> 64) as u64);
    }
    #[inline]
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.int(b.len() as i64);
        if let (Some(&f), Some(&l)) = (b.first(), b.last()) {
            self.int(i32::from(f) << 8 | i32::from(l));
        }
    }
    #[inline]
    pub(crate) fn opt_bytes(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.int(-1),
            Some(b) => self.bytes(b),
        }
    }
    /// Format `v` with `Debug` (reads every field) into a counting sink.
    pub(crate) fn debug(&mut self, v: &impl std::fmt::Debug) {
        let mut w = CountWriter(0);
        let _ = std::fmt::write(&mut w, format_args!("{v:?}"));
        self.int(w.0 as i64);
    }
    /// Format `v` with `Display` into a counting sink.
    pub(crate) fn display(&mut self, v: &impl std::fmt::Display) {
        let mut w = CountWriter(0);
        let _ = std::fmt::write(&mut w, format_args!("{v}"));
        self.int(w.0 as i64);
    }
    pub(crate) fn finish(self) {
        black_box(self.0);
    }
}

struct CountWriter(usize);

impl std::fmt::Write for CountWriter {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// The targets by name, as cargo-fuzz and the AFL harness know them.
pub mod targets {
    /// A target body.
    pub type Target = fn(&[u8]);

    /// Every target, by name.
    pub const ALL: &[(&str, Target)] = &[
        ("record_batches", record_batches),
        ("record_roundtrip", record_roundtrip),
        ("fetch_response", fetch_response),
        ("responses", responses),
        ("frame", frame),
        ("txn_filter", txn_filter),
        ("consumer_protocol", consumer_protocol),
        ("sasl", sasl),
    ];

    /// Walk a records blob: every batch, CRC, every record and header, all codecs.
    pub fn record_batches(data: &[u8]) {
        crate::records::record_batches(data);
    }
    /// Builder -> bytes -> views -> builder: values and bytes must survive.
    pub fn record_roundtrip(data: &[u8]) {
        crate::roundtrip::record_roundtrip(data);
    }
    /// A Fetch response body (version from the first byte), then its records.
    pub fn fetch_response(data: &[u8]) {
        crate::records::fetch_response(data);
    }
    /// Every other response decoder, API and version from the first bytes.
    pub fn responses(data: &[u8]) {
        crate::responses::responses(data);
    }
    /// Frame splitting and response headers over a byte stream.
    pub fn frame(data: &[u8]) {
        crate::responses::frame(data);
    }
    /// Random aborted lists and batch sequences through the read_committed filter.
    pub fn txn_filter(data: &[u8]) {
        crate::txn::txn_filter(data);
    }
    /// Group members' Subscription and Assignment bytes, and the leader's assignors
    /// over decoded subscriptions.
    pub fn consumer_protocol(data: &[u8]) {
        crate::consumer::consumer_protocol(data);
    }
    /// The broker's SCRAM messages (server-first, server-final) and base64.
    pub fn sasl(data: &[u8]) {
        crate::sasl::sasl(data);
    }
}
