//! Worker cores: every core of the partition except the boot core. Each runs jobs posted to its
//! mailbox; this is the hook the engine and scheduler dispatch work through.
//!
//! Between jobs a worker polls its mailbox for a short while (jobs of one token follow each other
//! closely), then sleeps in WFI until [`submit`] wakes it with an SGI. WFE would be cheaper to
//! wake, but an emulator does not sleep on it, so idle workers would each burn a host core.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use guest_rt::hook::Hook;
use guest_rt::smp;
use sis_platform::layout::phys::NUM_CORES;
use sis_platform::BootInfo;

/// A unit of work for a worker core; gets the core index. Posted as `&(function as Job)`.
pub type Job = fn(usize);

/// Posted job per core.
static MAILBOX: [Hook<Job>; NUM_CORES] = [const { Hook::new() }; NUM_CORES];
/// Jobs finished per core.
static DONE: [AtomicU64; NUM_CORES] = [const { AtomicU64::new(0) }; NUM_CORES];
/// Cores running the worker loop.
static WORKERS: AtomicU64 = AtomicU64::new(0);
/// Bit `n` set: worker `n` is about to sleep, or sleeps, in WFI and needs an SGI to wake.
static SLEEPING: AtomicU64 = AtomicU64::new(0);
/// Wake SGIs sent to sleeping workers.
static WAKES: AtomicU64 = AtomicU64::new(0);
/// How long an idle worker polls its mailbox before it sleeps, in microseconds.
const POLL_US: u64 = 2_000;
/// Mailbox checks between two reads of the counter while polling.
const POLL_CHECK: u32 = 64;

/// Why a job was not posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitError {
    /// The core is not a running worker.
    NotAWorker(usize),
    /// The core's previous job has not been taken yet.
    Busy(usize),
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::NotAWorker(c) => write!(f, "core {c} is not a running worker"),
            SubmitError::Busy(c) => write!(f, "core {c} still has a job pending"),
        }
    }
}

/// Starts every core of `info.cpu_mask` other than this one; reports failures and goes on.
pub fn start_all(info: &BootInfo) {
    let me = smp::core_id();
    for core in (0..NUM_CORES).filter(|&c| c != me && info.cpu_mask & (1 << c) != 0) {
        if let Err(e) = smp::start_core(core, &(worker_main as smp::SecondaryMain)) {
            guest_rt::println!("llm: starting core {core}: {e}");
        }
    }
}

/// Bit `n` set: core `n` runs the worker loop.
pub fn worker_mask() -> u64 {
    WORKERS.load(Ordering::Acquire)
}

/// Jobs finished on `core`.
pub fn jobs_done(core: usize) -> u64 {
    DONE.get(core).map_or(0, |d| d.load(Ordering::Acquire))
}

/// Posts `job` to worker `core` and wakes it.
pub fn submit(core: usize, job: &'static Job) -> Result<(), SubmitError> {
    if core >= NUM_CORES || worker_mask() & (1 << core) == 0 {
        return Err(SubmitError::NotAWorker(core));
    }
    MAILBOX[core]
        .set_if_empty(job)
        .map_err(|_| SubmitError::Busy(core))?;
    // The worker announces its sleep before it checks the mailbox a last time (both SeqCst):
    // either it sees this job, or this sees its flag and wakes it.
    if SLEEPING.load(Ordering::SeqCst) & (1 << core) != 0 {
        WAKES.fetch_add(1, Ordering::Relaxed);
        smp::wake(core);
    }
    Ok(())
}

/// Wake SGIs sent to sleeping workers since boot.
pub fn wakes() -> u64 {
    WAKES.load(Ordering::Relaxed)
}

/// Takes the job posted to `core`, polling for up to [`POLL_US`], then sleeping in WFI until
/// [`submit`] wakes the core.
fn next_job(core: usize) -> &'static Job {
    let start = guest_rt::timer::counter();
    let poll = guest_rt::timer::frequency() * POLL_US / 1_000_000;
    let mut spins = 0u32;
    loop {
        // A plain load while the mailbox is empty: the swap in `take` is an exclusive pair,
        // which QEMU's TCG runs as a locked compare-and-exchange helper.
        if MAILBOX[core].get().is_some() {
            if let Some(job) = MAILBOX[core].take() {
                return job;
            }
        }
        spins = spins.wrapping_add(1);
        // The counter only every POLL_CHECK spins: under TCG each read of CNTVCT_EL0 is a
        // helper call into the host clock, which polling cores would otherwise make back to
        // back while the working core needs the host CPU.
        if !spins.is_multiple_of(POLL_CHECK)
            || guest_rt::timer::counter().wrapping_sub(start) < poll
        {
            guest_rt::sync::spin_yield();
            continue;
        }
        // Announce the sleep before the last check (both SeqCst, see `submit`).
        SLEEPING.fetch_or(1 << core, Ordering::SeqCst);
        let job = smp::sleep_unless(|| MAILBOX[core].take());
        SLEEPING.fetch_and(!(1 << core), Ordering::SeqCst);
        if let Some(job) = job {
            return job;
        }
    }
}

/// The worker loop a secondary core runs once it is online.
fn worker_main(core: usize) -> ! {
    if let Err(e) = smp::enable_wake() {
        guest_rt::println!("llm: core {core}: no wake interrupt ({e:?}), not a worker");
        guest_rt::halt_core();
    }
    WORKERS.fetch_or(1 << core, Ordering::AcqRel);
    loop {
        let job = next_job(core);
        job(core);
        DONE[core].fetch_add(1, Ordering::AcqRel);
    }
}
