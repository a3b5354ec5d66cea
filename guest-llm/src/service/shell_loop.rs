//! The boot core's loop: the `llm>` shell and the scheduler loop interleaved. Input bytes go
//! to the line editor and submitted lines to the command tables (as `guest_rt::shell::run`
//! does); whenever no input is waiting, one pass runs ([`pass`]: the ring front end's upkeep,
//! then one unit of the service's work), so background and ring jobs progress while the prompt
//! waits, and a keystroke waits at most one bounded step. With neither input nor runnable work
//! the core sleeps in WFI until the next interrupt (timer tick, UART, doorbell).

use core::sync::atomic::{AtomicU64, Ordering};

use guest_rt::console::Console;
use guest_rt::shell::line::{Event, LineEditor};
use guest_rt::shell::{Commands, LINE_MAX};
use guest_rt::{sync, uart};

use super::{budget, ring_jobs, SERVICE};

/// Lines the editor rejected (too long or not UTF-8).
static REJECTED: AtomicU64 = AtomicU64::new(0);

/// Lines this loop rejected since boot.
pub fn rejected_lines() -> u64 {
    REJECTED.load(Ordering::Relaxed)
}

/// One pass of thread-context work: the ring's upkeep and control requests, then one unit of
/// the service's work. Returns whether the service did anything.
fn pass() -> bool {
    ring_jobs::poll();
    SERVICE.poll()
}

/// Sleeps in WFI unless `busy()`; IRQs stay masked from the check to the WFI, so a wake-up
/// that arrives in between ends the WFI at once instead of being lost.
fn idle(busy: impl FnOnce() -> bool) {
    let daif = sync::irq_save();
    if !busy() {
        aarch64_cpu::asm::wfi();
    }
    sync::irq_restore(daif);
}

/// Serves every server (and the ring) until `done()` holds; sleeps when nothing can run. For a
/// shell command waiting for its own job.
pub fn run_until(mut done: impl FnMut() -> bool) {
    while !done() {
        if !pass() {
            idle(|| SERVICE.inbox_pending());
        }
    }
}

/// Runs the shell and the scheduler forever.
pub fn run(prompt: &str, commands: &'static Commands) -> ! {
    budget::init();
    // Ring requests go to the service.
    ring_jobs::install();
    let mut editor = LineEditor::<LINE_MAX>::new();
    guest_rt::print!("{prompt}");
    loop {
        while let Some(b) = uart::get_byte() {
            match editor.feed(b, &mut Console) {
                Event::Line(line) => {
                    commands.execute(line, &mut Console);
                    guest_rt::print!("{prompt}");
                }
                Event::Rejected => {
                    REJECTED.fetch_add(1, Ordering::Relaxed);
                    guest_rt::print!("{prompt}");
                }
                Event::None => {}
            }
        }
        if pass() {
            continue;
        }
        idle(|| uart::has_input() || SERVICE.inbox_pending());
    }
}
