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

/// Spreads work items over `threads` scoped OS threads (host only).
#[cfg(feature = "std")]
#[derive(Debug, Clone, Copy)]
pub struct StdThreads {
    /// Number of threads to use (at least 1).
    pub threads: usize,
}

#[cfg(feature = "std")]
impl Parallel for StdThreads {
    fn for_each(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        let t = self.threads.max(1).min(n.max(1));
        if t <= 1 {
            return Serial.for_each(n, f);
        }
        let next = core::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..t {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    f(i);
                });
            }
        });
    }
}
