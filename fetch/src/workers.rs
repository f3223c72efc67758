//! Partition workers: N threads, each optionally pinned to one core, each owning a
//! fixed set of partitions so records of one partition are handled in order.
//!
//! The reactor sends each worker jobs through an unbounded channel. Unbounded is safe
//! here because every job holds a ring region: the ring's budget, not the channel,
//! bounds what can be queued. Workers report back through a second channel and wake
//! the reactor with a callback (a `mio::Waker` in practice).

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use weir_protocol::compression::Decompressor;

use crate::process::{Chunk, ChunkError, ChunkOutcome, ConsumerRecord, process_chunk};
use crate::reactor::Reactor;

/// Pin the calling thread to `core` (an index into the cores this process may use).
///
/// Returns an error string instead of failing: pinning is an optimisation, and a
/// container or a restricted cpuset can refuse it.
pub fn pin_current_thread(core: usize) -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        if core >= libc::CPU_SETSIZE as usize {
            return Err(format!("could not pin worker to core {core}: no such core"));
        }
        // SAFETY: `cpu_set_t` is a plain bit array for which all-zero is a valid (empty)
        // value; CPU_ZERO/CPU_SET only write inside it (`core` is checked against
        // CPU_SETSIZE above), and sched_setaffinity reads `size_of::<cpu_set_t>()` bytes from a
        // pointer to a live local. pid 0 means the calling thread.
        let rc = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_ZERO(&mut set);
            libc::CPU_SET(core, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(format!(
                "could not pin worker to core {core}: {}",
                std::io::Error::last_os_error()
            ))
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(format!(
            "core pinning is not supported on this OS (core {core})"
        ))
    }
}

/// The number of cores available to this process (at least 1).
pub fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// A pool of worker threads consuming jobs of type `J`.
pub struct WorkerPool<J: Send + 'static> {
    txs: Vec<Sender<J>>,
    handles: Vec<JoinHandle<()>>,
    /// Warnings from pinning (one per worker that could not be pinned).
    pub pin_warnings: Receiver<String>,
}

impl<J: Send + 'static> std::fmt::Debug for WorkerPool<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("workers", &self.txs.len())
            .finish()
    }
}

impl<J: Send + 'static> WorkerPool<J> {
    /// Start `n` workers (at least one). Worker `i` is pinned to core `i % cores` when
    /// `pin` is set, then runs the handler `make(i)` returns on every job until the
    /// pool is dropped.
    pub fn spawn<F, H>(n: usize, pin: bool, mut make: F) -> std::io::Result<Self>
    where
        F: FnMut(usize) -> H,
        H: FnMut(J) + Send + 'static,
    {
        let n = n.max(1);
        let cores = available_cores();
        let (warn_tx, pin_warnings) = mpsc::channel();
        let mut txs = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = mpsc::channel::<J>();
            let mut handler = make(i);
            let warn_tx = warn_tx.clone();
            let h = std::thread::Builder::new()
                .name(format!("weir-worker-{i}"))
                .spawn(move || {
                    if pin && let Err(e) = pin_current_thread(i % cores) {
                        let _ = warn_tx.send(e);
                    }
                    drop(warn_tx);
                    for job in rx {
                        handler(job);
                    }
                })?;
            txs.push(tx);
            handles.push(h);
        }
        Ok(Self {
            txs,
            handles,
            pin_warnings,
        })
    }

    /// How many workers there are.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Always false: a pool has at least one worker.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// Queue `job` on worker `index % len`. Returns the job if that worker has exited
    /// (its handler panicked).
    pub fn send(&self, index: usize, job: J) -> Result<(), J> {
        match self.txs.get(index % self.txs.len().max(1)) {
            Some(tx) => tx.send(job).map_err(|e| e.0),
            None => Err(job),
        }
    }

    /// True when a worker thread has exited while the pool is running (its
    /// handler panicked).
    pub fn any_dead(&self) -> bool {
        self.handles.iter().any(JoinHandle::is_finished)
    }

    /// Stop accepting jobs, let every worker finish its queue, and join them.
    /// Returns how many workers panicked.
    pub fn shutdown(mut self) -> usize {
        self.txs.clear();
        let mut panicked = 0;
        for h in self.handles.drain(..) {
            if h.join().is_err() {
                panicked += 1;
            }
        }
        panicked
    }
}

impl<J: Send + 'static> Drop for WorkerPool<J> {
    fn drop(&mut self) {
        self.txs.clear();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// What a worker reports for each chunk: its partition index, the generation it was
/// fetched at, and how processing went (hand it to [`Reactor::on_processed`]).
pub type Progress = (usize, u64, Result<ChunkOutcome, ChunkError>);

/// Pinned workers processing a reactor's chunks: the one worker loop behind
/// `Consumer::run_workers` and `GroupConsumer::run_workers`. Each worker owns a
/// decompression scratch and a handler, processes every chunk it is given in order,
/// reports [`Progress`], and wakes the reactor.
#[derive(Debug)]
pub struct ChunkWorkers {
    pool: WorkerPool<Chunk>,
    progress: Receiver<Progress>,
}

/// A worker thread died (its handler panicked): its partitions stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerDied;

impl ChunkWorkers {
    /// Spawns `workers` workers for `reactor`'s partitions (pinned when `pin`);
    /// `make(i)` builds worker `i`'s handler.
    pub fn spawn<M, H>(
        reactor: &mut Reactor,
        workers: usize,
        pin: bool,
        mut make: M,
    ) -> std::io::Result<Self>
    where
        M: FnMut(usize) -> H,
        H: FnMut(&ConsumerRecord<'_>) + Send + 'static,
    {
        let (tx, progress) = mpsc::channel::<Progress>();
        let waker = reactor.waker();
        let limit = reactor.config().max_decompressed_batch_bytes;
        reactor.set_workers(workers);
        let pool = WorkerPool::spawn(workers, pin, |i| {
            let mut handler = make(i);
            let tx = tx.clone();
            let waker = Arc::clone(&waker);
            let mut scratch = Decompressor::with_limit(limit);
            move |chunk: Chunk| {
                let res = process_chunk(&chunk, &mut scratch, &mut handler);
                let _ = tx.send((chunk.part_idx, chunk.generation, res));
                // The ring region is released before the reactor is woken to reuse it.
                drop(chunk);
                let _ = waker.wake();
            }
        })?;
        Ok(Self { pool, progress })
    }

    /// Progress reported since the last call.
    pub fn progress(&self) -> impl Iterator<Item = Progress> + '_ {
        self.progress.try_iter()
    }

    /// Hands the reactor's fetched chunks to the workers that own their partitions;
    /// `sent(part_idx)` hears of each one handed over. A paused partition's chunks go
    /// back to the reactor, as do a dead worker's (the data is kept).
    pub fn dispatch(
        &self,
        reactor: &mut Reactor,
        mut sent: impl FnMut(usize),
    ) -> Result<(), WorkerDied> {
        let chunks: Vec<Chunk> = reactor.take_chunks().collect();
        let mut held = Vec::new();
        let mut died = false;
        for c in chunks {
            match reactor.partitions().get(c.part_idx) {
                Some(p) if !p.paused => {
                    let i = c.part_idx;
                    match self.pool.send(p.worker, c) {
                        Ok(()) => sent(i),
                        Err(c) => {
                            held.push(c);
                            died = true;
                        }
                    }
                }
                _ => held.push(c),
            }
        }
        reactor.requeue(held);
        if died || self.pool.any_dead() {
            return Err(WorkerDied);
        }
        Ok(())
    }

    /// Whether a worker thread has died.
    pub fn any_dead(&self) -> bool {
        self.pool.any_dead()
    }

    /// Lets every worker finish what it was given and joins them; returns the pinning
    /// warnings and the progress reported meanwhile.
    pub fn shutdown(self) -> (Vec<String>, Vec<Progress>) {
        let warnings: Vec<String> = self.pool.pin_warnings.try_iter().collect();
        let _ = self.pool.shutdown();
        (warnings, self.progress.try_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn jobs_for_one_worker_run_in_order_and_shutdown_drains() {
        let seen: Arc<Mutex<Vec<Vec<u32>>>> = Arc::new(Mutex::new(vec![Vec::new(); 3]));
        let s = Arc::clone(&seen);
        let pool = WorkerPool::spawn(3, true, move |i| {
            let s = Arc::clone(&s);
            move |job: u32| {
                s.lock().unwrap()[i].push(job);
            }
        })
        .unwrap();
        assert_eq!(pool.len(), 3);
        for j in 0..3000u32 {
            pool.send((j % 3) as usize, j).unwrap();
        }
        assert_eq!(pool.shutdown(), 0);
        let seen = seen.lock().unwrap();
        for (i, v) in seen.iter().enumerate() {
            assert_eq!(v.len(), 1000);
            assert!(v.windows(2).all(|w| w[0] < w[1]), "worker {i} out of order");
            assert!(v.iter().all(|&j| j as usize % 3 == i));
        }
    }

    #[test]
    fn pinning_current_thread_works_or_warns() {
        // Core 0 exists everywhere this test runs; a huge index must fail cleanly.
        let t = std::thread::spawn(|| (pin_current_thread(0), pin_current_thread(100_000)));
        let (a, b) = t.join().unwrap();
        if cfg!(target_os = "linux") {
            assert!(a.is_ok(), "{a:?}");
        }
        assert!(b.is_err());
    }

    #[test]
    fn a_panicking_worker_is_reported() {
        let pool = WorkerPool::spawn(1, false, |_| |j: u32| assert!(j != 7)).unwrap();
        pool.send(0, 1).unwrap();
        pool.send(0, 7).unwrap();
        // Sends may still succeed until the thread has died; shutdown reports it.
        assert_eq!(pool.shutdown(), 1);
    }
}
