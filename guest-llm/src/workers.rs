//! Worker cores: every core of the partition except the boot core. Each idles in WFE (timer
//! interrupts still tick) and runs jobs posted to its mailbox; this is the hook the engine and
//! scheduler dispatch work through.

use core::fmt;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use guest_rt::smp;
use sis_platform::layout::phys::NUM_CORES;
use sis_platform::BootInfo;

/// A unit of work for a worker core; gets the core index.
pub type Job = fn(usize);

/// Posted job per core (a function address, 0 = empty).
static MAILBOX: [AtomicUsize; NUM_CORES] = [const { AtomicUsize::new(0) }; NUM_CORES];
/// Jobs finished per core.
static DONE: [AtomicU64; NUM_CORES] = [const { AtomicU64::new(0) }; NUM_CORES];
/// Cores running the worker loop.
static WORKERS: AtomicU64 = AtomicU64::new(0);

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
        if let Err(e) = smp::start_core(core, worker_main) {
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
pub fn submit(core: usize, job: Job) -> Result<(), SubmitError> {
    if core >= NUM_CORES || worker_mask() & (1 << core) == 0 {
        return Err(SubmitError::NotAWorker(core));
    }
    MAILBOX[core]
        .compare_exchange(0, job as usize, Ordering::AcqRel, Ordering::Acquire)
        .map_err(|_| SubmitError::Busy(core))?;
    // Wake workers sleeping in WFE (SEV is a broadcast event, never trapped).
    aarch64_cpu::asm::sev();
    Ok(())
}

/// The worker loop a secondary core runs once it is online.
fn worker_main(core: usize) -> ! {
    WORKERS.fetch_or(1 << core, Ordering::AcqRel);
    loop {
        let job = MAILBOX[core].swap(0, Ordering::AcqRel);
        if job == 0 {
            // Wakes on SEV from `submit` or on any interrupt (the timer tick).
            aarch64_cpu::asm::wfe();
            continue;
        }
        // SAFETY: non-zero mailbox values are only ever stored by `submit` from a `Job`.
        let job: Job = unsafe { core::mem::transmute::<usize, Job>(job) };
        job(core);
        DONE[core].fetch_add(1, Ordering::AcqRel);
    }
}
