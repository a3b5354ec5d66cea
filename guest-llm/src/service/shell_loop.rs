//! The boot core's loop: the `llm>` shell (`guest_rt::shell::run_with`) with the scheduler
//! loop interleaved: whenever no input is waiting, one pass runs ([`pass`]: the ring front end's
//! upkeep, then one unit of the service's work), so background and ring jobs progress while the
//! prompt waits, and a keystroke waits at most one bounded step. With neither input nor
//! runnable work the core sleeps in WFI until the next interrupt (timer tick, UART, doorbell).

use guest_rt::shell::Commands;
use guest_rt::sync;

use super::{budget, ring_jobs, SERVICE};

/// One pass of thread-context work: the ring's upkeep and control requests, then one unit of
/// the service's work. Returns whether the service did anything.
fn pass() -> bool {
    ring_jobs::poll();
    SERVICE.poll()
}

/// Serves every server (and the ring) until `done()` holds; sleeps when nothing can run. For a
/// shell command waiting for its own job.
pub fn run_until(mut done: impl FnMut() -> bool) {
    while !done() {
        if !pass() {
            // IRQs stay masked from the check to the WFI, so a wake-up in between is not lost.
            let daif = sync::irq_save();
            if !SERVICE.inbox_pending() {
                aarch64_cpu::asm::wfi();
            }
            sync::irq_restore(daif);
        }
    }
}

/// Runs the shell and the scheduler forever.
pub fn run(prompt: &str, commands: &'static Commands) -> ! {
    budget::init();
    // Ring requests go to the service.
    ring_jobs::install();
    guest_rt::shell::run_with(prompt, commands, pass, || SERVICE.inbox_pending())
}
