//! The hook through which the big matrix products are spread over cores.

/// Runs `f(0..n)`, possibly on several cores at once, and returns only when every call
/// has finished (and its writes are visible to the caller).
///
/// Work items are independent; results never depend on how they are distributed, so a
/// model computes the same bits with any implementation.
pub trait Parallel: Sync {
    /// Calls `f(i)` once for every `i` in `0..n`.
    fn for_each(&self, n: usize, f: &(dyn Fn(usize) + Sync));
}

/// Runs every work item on the calling core, in order.
#[derive(Debug, Default, Clone, Copy)]
pub struct Serial;

impl Parallel for Serial {
    fn for_each(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        for i in 0..n {
            f(i);
        }
    }
}

/// Spreads work items over `threads` OS threads (host only): the calling thread and
/// `threads - 1` persistent workers, which spin briefly between batches and then sleep.
///
/// A batch is open while the caller takes items; a worker joins only an open batch (one
/// compare-and-swap on a word holding the open flag and the count of workers inside) and
/// the caller returns only once every worker that joined has left, so the borrowed item
/// function outlives every use. Items are taken from one shared counter; a worker that
/// wakes late simply finds the batch closed.
#[cfg(feature = "std")]
pub struct StdThreads {
    shared: std::sync::Arc<pool::Shared>,
    workers: std::vec::Vec<std::thread::JoinHandle<()>>,
}

#[cfg(feature = "std")]
impl StdThreads {
    /// Starts `threads - 1` workers (none for 0 or 1).
    pub fn new(threads: usize) -> Self {
        let shared = std::sync::Arc::new(pool::Shared::default());
        let workers = (1..threads.max(1))
            .map(|_| {
                let s = shared.clone();
                std::thread::spawn(move || pool::worker(&s))
            })
            .collect();
        StdThreads { shared, workers }
    }

    /// Threads taking part in a batch (the caller included).
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }
}

#[cfg(feature = "std")]
impl Drop for StdThreads {
    fn drop(&mut self) {
        self.shared.stop();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(feature = "std")]
impl Parallel for StdThreads {
    fn for_each(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        if self.workers.is_empty() || n <= 1 {
            return Serial.for_each(n, f);
        }
        self.shared.run(n, f);
    }
}

#[cfg(feature = "std")]
mod pool {
    use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex};

    type ItemFn<'a> = &'a (dyn Fn(usize) + Sync);

    /// Set in `state` while the caller accepts workers into the batch.
    const OPEN: usize = 1 << (usize::BITS - 1);
    /// Polls of `epoch` before a worker sleeps.
    const SPINS: usize = 1 << 14;

    #[derive(Default)]
    pub struct Shared {
        /// Bumped when a batch opens (and on stop).
        epoch: AtomicUsize,
        /// The caller's `&dyn Fn` local for the open batch.
        job: AtomicPtr<()>,
        n: AtomicUsize,
        next: AtomicUsize,
        /// [`OPEN`] plus the number of workers inside the batch.
        state: AtomicUsize,
        stop: AtomicBool,
        lock: Mutex<()>,
        wake: Condvar,
    }

    fn drain(f: ItemFn<'_>, n: usize, next: &AtomicUsize) {
        loop {
            let i = next.fetch_add(1, Ordering::AcqRel);
            if i >= n {
                break;
            }
            f(i);
        }
    }

    impl Shared {
        pub fn run(&self, n: usize, f: ItemFn<'_>) {
            let fp: *const ItemFn<'_> = &f;
            self.job.store(fp as *mut (), Ordering::Release);
            self.n.store(n, Ordering::Release);
            self.next.store(0, Ordering::Release);
            self.state.store(OPEN, Ordering::Release);
            {
                let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
                self.epoch.fetch_add(1, Ordering::AcqRel);
            }
            self.wake.notify_all();
            drain(f, n, &self.next);
            // Close the batch, then wait for the workers that joined it.
            self.state.fetch_and(!OPEN, Ordering::AcqRel);
            while self.state.load(Ordering::Acquire) != 0 {
                core::hint::spin_loop();
            }
            self.job.store(core::ptr::null_mut(), Ordering::Release);
        }

        pub fn stop(&self) {
            self.stop.store(true, Ordering::Release);
            {
                let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
                self.epoch.fetch_add(1, Ordering::AcqRel);
            }
            self.wake.notify_all();
        }

        /// Joins the open batch, if there is one, and takes items until none is left.
        fn help(&self) {
            let mut s = self.state.load(Ordering::Acquire);
            loop {
                if s & OPEN == 0 {
                    return;
                }
                match self.state.compare_exchange_weak(
                    s,
                    s + 1,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => break,
                    Err(now) => s = now,
                }
            }
            let p = self.job.load(Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: `p` points at the `&dyn Fn` local of the `run` call whose batch
                // this worker joined while it was open; `run` does not return (so the local
                // and the closure stay alive) until the count of workers inside, decremented
                // below after the last use, is back to zero.
                let f: ItemFn<'_> = unsafe { *(p as *const ItemFn<'_>) };
                drain(f, self.n.load(Ordering::Acquire), &self.next);
            }
            self.state.fetch_sub(1, Ordering::AcqRel);
        }
    }

    pub fn worker(s: &Shared) {
        // Starting from 0 rather than the current epoch: a worker that starts late (even
        // after `stop`) looks at the state once instead of waiting for a later bump.
        let mut seen = 0;
        loop {
            let mut spins = 0;
            let mut now = s.epoch.load(Ordering::Acquire);
            while now == seen && spins < SPINS {
                core::hint::spin_loop();
                spins += 1;
                now = s.epoch.load(Ordering::Acquire);
            }
            if now == seen {
                let mut g = s.lock.lock().unwrap_or_else(|e| e.into_inner());
                while s.epoch.load(Ordering::Acquire) == seen && !s.stop.load(Ordering::Acquire) {
                    g = s.wake.wait(g).unwrap_or_else(|e| e.into_inner());
                }
                drop(g);
                now = s.epoch.load(Ordering::Acquire);
            }
            seen = now;
            if s.stop.load(Ordering::Acquire) {
                return;
            }
            s.help();
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use core::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn pool_calls_every_item_once_per_batch() {
        let pool = StdThreads::new(3);
        assert_eq!(pool.threads(), 3);
        let hits: std::vec::Vec<AtomicUsize> = (0..97).map(|_| AtomicUsize::new(0)).collect();
        for batch in 0..300 {
            let n = (batch * 7) % 98;
            pool.for_each(n, &|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            for (i, h) in hits.iter().enumerate() {
                assert_eq!(
                    h.swap(0, Ordering::Relaxed),
                    usize::from(i < n),
                    "batch {batch}"
                );
            }
        }
    }

    #[test]
    fn pool_dropped_before_its_workers_start_stops() {
        // Workers that start after `stop` must still exit (join would hang otherwise).
        for _ in 0..50 {
            drop(StdThreads::new(4));
        }
    }
}
