//! Budget enforcement around a step that cannot be preempted: the loop gives each step the EDF
//! slice, and the virtual-timer tick on the loop's core notices when the slice runs out during
//! the step (`budget_timer_expiries`). The overrun itself is charged to the server when the step
//! ends (CBS rule 4: the server is throttled and pays the debt from its next budgets), so other
//! servers keep their reservations.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use guest_rt::{smp, timer};

use super::SERVICE;

/// The running step's slice, as the timer tick sees it.
pub(super) struct BudgetWatch {
    /// Core running the scheduler loop.
    loop_core: AtomicUsize,
    /// Counter value at which the running step's slice ends (0 = no step running).
    slice_end: AtomicU64,
    /// Whether the tick already counted the running step.
    flagged: AtomicU64,
    /// Steps during which the timer saw the slice end (budget exhausted mid-step).
    expired: AtomicU64,
}

impl BudgetWatch {
    pub(super) const fn new() -> Self {
        BudgetWatch {
            loop_core: AtomicUsize::new(usize::MAX),
            slice_end: AtomicU64::new(0),
            flagged: AtomicU64::new(0),
            expired: AtomicU64::new(0),
        }
    }

    /// A step starts; its slice ends at counter value `end`.
    pub(super) fn start(&self, end: u64) {
        self.flagged.store(0, Ordering::Release);
        self.slice_end.store(end, Ordering::Release);
    }

    /// The step ended.
    pub(super) fn stop(&self) {
        self.slice_end.store(0, Ordering::Release);
    }

    /// Steps that overran their slice, since boot.
    pub(super) fn expiries(&self) -> u64 {
        self.expired.load(Ordering::Relaxed)
    }

    /// The tick (every core, IRQs masked): on the loop's core, counts a step overrunning its
    /// slice once.
    fn on_tick(&self, core: usize) {
        if core != self.loop_core.load(Ordering::Relaxed) {
            return;
        }
        let end = self.slice_end.load(Ordering::Acquire);
        if end != 0 && timer::counter() >= end && self.flagged.swap(1, Ordering::AcqRel) == 0 {
            self.expired.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn tick(core: usize) {
    SERVICE.budget.on_tick(core);
}

/// Boot-time setup on the calling (boot) core, which runs the scheduler loop: the tick hook.
pub fn init() {
    SERVICE
        .budget
        .loop_core
        .store(smp::core_id(), Ordering::Release);
    timer::set_tick_hook(Some(&(tick as timer::TickHook)));
}
