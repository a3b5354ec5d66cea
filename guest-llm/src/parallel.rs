//! The engine's [`Parallel`] hook over the partition's cores: the calling core (the boot core,
//! running the scheduler loop) and up to [`workers::worker_mask`]'s worker cores take work
//! items from one shared counter until none is left. Items are independent and the engine's
//! arithmetic per item is fixed, so results do not depend on how many cores helped.

use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use sis_engine::Parallel;
use sis_platform::layout::phys::NUM_CORES;

use crate::workers;

/// The item function of the batch in progress, as a pointer to the caller's `&dyn Fn` (null
/// when no batch runs). Valid while [`Pool::for_each`] has not returned, which waits for
/// every helper it posted.
static BATCH_FN: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());
/// Items in the batch.
static BATCH_N: AtomicUsize = AtomicUsize::new(0);
/// Next item to take.
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// Batch state: [`OPEN`] while the calling core accepts helpers, plus the number of helpers
/// inside the batch. One word, changed only by compare-and-swap, so a helper either joins an
/// open batch (and is waited for) or sees it closed and never touches its function.
static STATE: AtomicUsize = AtomicUsize::new(0);
const OPEN: usize = 1 << (usize::BITS - 1);
/// Worker cores to use (0 = the calling core alone); see [`set_workers`].
static WANTED: AtomicUsize = AtomicUsize::new(NUM_CORES);
/// Batches run and helper posts that found the worker busy.
static BATCHES: AtomicUsize = AtomicUsize::new(0);
static BUSY: AtomicUsize = AtomicUsize::new(0);

type ItemFn<'a> = &'a (dyn Fn(usize) + Sync);

/// Takes items until the batch is exhausted.
fn drain(f: ItemFn<'_>, n: usize) {
    loop {
        let i = NEXT.fetch_add(1, Ordering::AcqRel);
        if i >= n {
            break;
        }
        f(i);
    }
}

/// The job a worker core runs: joins the batch in progress, if any is still open.
fn helper(_core: usize) {
    let mut s = STATE.load(Ordering::Acquire);
    loop {
        if s & OPEN == 0 {
            return;
        }
        match STATE.compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => break,
            Err(now) => s = now,
        }
    }
    let p = BATCH_FN.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: `p` points at the `&dyn Fn` local of the `for_each` call whose batch this
        // helper joined while it was open; that call does not return (so the local and the
        // closure stay alive) until the helper count, decremented below after the last use,
        // is back to zero.
        let f: ItemFn<'_> = unsafe { *(p as *const ItemFn<'_>) };
        drain(f, BATCH_N.load(Ordering::Acquire));
    }
    STATE.fetch_sub(1, Ordering::AcqRel);
}

/// Uses at most `n` worker cores besides the calling one (clamped to those running).
pub fn set_workers(n: usize) {
    WANTED.store(n, Ordering::Release);
}

/// Worker cores a batch would use now.
pub fn workers_in_use() -> usize {
    let mask = workers::worker_mask();
    (mask.count_ones() as usize).min(WANTED.load(Ordering::Acquire))
}

/// Worker cores running (the most [`set_workers`] can use).
pub fn workers_available() -> usize {
    workers::worker_mask().count_ones() as usize
}

/// (batches run, helper posts refused because the worker's mailbox was busy).
pub fn stats() -> (usize, usize) {
    (
        BATCHES.load(Ordering::Relaxed),
        BUSY.load(Ordering::Relaxed),
    )
}

/// The pool. Only one core (the scheduler loop's) may call `for_each` at a time, which the
/// single service loop guarantees.
pub struct Pool;

/// The one pool.
pub static POOL: Pool = Pool;

impl Parallel for Pool {
    fn for_each(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        let want = workers_in_use();
        if n <= 1 || want == 0 {
            (0..n).for_each(f);
            return;
        }
        BATCHES.fetch_add(1, Ordering::Relaxed);
        let fref: ItemFn<'_> = f;
        BATCH_N.store(n, Ordering::Release);
        NEXT.store(0, Ordering::Release);
        BATCH_FN.store(&fref as *const ItemFn<'_> as *mut (), Ordering::Release);
        STATE.store(OPEN, Ordering::Release);
        let mask = workers::worker_mask();
        let mut posted = 0;
        for core in (0..NUM_CORES).filter(|c| mask & (1 << c) != 0) {
            if posted == want.min(n - 1) {
                break;
            }
            if workers::submit(core, &(helper as workers::Job)).is_ok() {
                posted += 1;
            } else {
                // Still running (or not yet started) a helper of an earlier batch.
                BUSY.fetch_add(1, Ordering::Relaxed);
            }
        }
        drain(fref, n);
        // Close the batch: helpers that have not joined yet will not; wait for those inside.
        STATE.fetch_and(!OPEN, Ordering::AcqRel);
        while STATE.load(Ordering::Acquire) != 0 {
            guest_rt::sync::spin_yield();
        }
        BATCH_FN.store(core::ptr::null_mut(), Ordering::Release);
    }
}
